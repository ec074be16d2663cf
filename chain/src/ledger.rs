//! The ledger: unspent outputs, accepted transactions, blocks and an event log.
//!
//! Accepted transactions wait in the mempool until the next block; outputs of mempool
//! transactions may be spent at once (a penalty can follow a revoked commitment without waiting),
//! except along a timelocked path: the delayed owner path needs its output to be `delay` blocks
//! deep, and a TLC timeout needs the chain at or past the expiry height. The first valid spend of
//! an output wins; any later one is rejected as a double spend. Fees are zero: inputs and outputs
//! must balance exactly, so the sum of all outputs only ever changes by the faucet.
//!
//! Bounds, so that no request can exhaust memory or overflow: one `mine` call mines at most
//! [`MAX_MINE_BLOCKS`] blocks (each block is an event kept forever), and the faucet refuses an
//! amount that would take the ledger's total past `u64::MAX` shannons. Because amounts balance
//! exactly, every sum of outputs (a balance, a transaction's inputs or outputs, the total) is
//! then at most that total. The sums are computed without `+` all the same (checked in
//! validation, saturating in balances), so a broken invariant shows as a rejection or a
//! saturated value, never as a panic or a wrapped number.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::types::{
    Amount, Hash32, Lock, OutPoint, Output, Pubkey, Transaction, TxKind, Txid, Witness, hex_u64,
    verify_digest,
};

/// Most blocks one [`Ledger::mine`] call may mine. The harness mines at most 1,000 at a time
/// (the sweep, to reach delays and TLC expiries) and scenario files at most this many per step;
/// more is a mistake, and would grow the event log by one event per block.
pub const MAX_MINE_BLOCKS: u64 = 10_000;

/// A `mine` call asked for more than [`MAX_MINE_BLOCKS`] blocks; nothing was mined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("mine: at most {MAX_MINE_BLOCKS} blocks per call, asked for {requested}")]
pub struct TooManyBlocks {
    pub requested: u64,
}

/// Why a transaction was rejected. The text is meant for people reading test failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("transaction {txid} rejected: {reason}")]
pub struct Rejection {
    pub txid: Txid,
    pub reason: String,
}

/// A transaction the ledger accepted, with where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    pub txid: Txid,
    pub tx: Transaction,
    /// Height of the block holding it; `None` while in the mempool.
    #[serde(default, with = "crate::types::hex_u64_opt")]
    pub block_height: Option<u64>,
    /// Position in acceptance order (0-based).
    #[serde(with = "hex_u64")]
    pub seq: u64,
}

/// Something that happened on the chain, in order. `seq` numbers are dense from 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChainEvent {
    /// A transaction entered the mempool.
    TxAccepted {
        #[serde(with = "hex_u64")]
        seq: u64,
        txid: Txid,
        tx: Transaction,
    },
    /// A block was mined, confirming `txids`.
    BlockMined {
        #[serde(with = "hex_u64")]
        seq: u64,
        #[serde(with = "hex_u64")]
        height: u64,
        txids: Vec<Txid>,
    },
}

impl ChainEvent {
    pub fn seq(&self) -> u64 {
        match self {
            ChainEvent::TxAccepted { seq, .. } | ChainEvent::BlockMined { seq, .. } => *seq,
        }
    }
}

/// An unspent output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unspent {
    pub outpoint: OutPoint,
    pub output: Output,
    /// Height of the block that created it; `None` while its transaction is in the mempool.
    #[serde(default, with = "crate::types::hex_u64_opt")]
    pub block_height: Option<u64>,
}

/// Funds of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    /// Unspent `Key` outputs in blocks (not spent by a mempool transaction).
    #[serde(with = "hex_u64")]
    pub confirmed: Amount,
    /// Unspent `Key` outputs, mempool included.
    #[serde(with = "hex_u64")]
    pub spendable: Amount,
    /// Outputs the key may get later (delayed, TLC, funding shares are not counted: only
    /// `Delayed` outputs it owns and `Tlc` outputs it may receive).
    #[serde(with = "hex_u64")]
    pub locked: Amount,
}

#[derive(Debug, Clone)]
struct Utxo {
    output: Output,
    block_height: Option<u64>,
}

/// The ledger state. Not thread-safe by itself; [`crate::InProcessChain`] wraps it.
#[derive(Debug, Default)]
pub struct Ledger {
    height: u64,
    utxos: BTreeMap<OutPoint, Utxo>,
    spent_by: HashMap<OutPoint, Txid>,
    txs: Vec<TxRecord>,
    index: HashMap<Txid, usize>,
    mempool: Vec<Txid>,
    events: Vec<ChainEvent>,
    faucet_nonce: u64,
    /// Everything the faucet created (= the sum of unspent outputs: fees are zero). Never
    /// exceeds `u64::MAX`: [`Ledger::fund`] refuses an amount that would take it past that.
    supply: Amount,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Current height (0 before the first block).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Create `amount` for `pubkey` out of thin air (dev faucet). Returns the faucet txid.
    /// Refused (nothing changes) for 0 and for an amount that would take the ledger's total past
    /// `u64::MAX` shannons.
    pub fn fund(&mut self, pubkey: Pubkey, amount: Amount) -> Result<Txid, Rejection> {
        let nonce = self.faucet_nonce + 1;
        let tx = Transaction {
            kind: TxKind::Faucet { nonce },
            inputs: vec![],
            outputs: vec![Output {
                amount,
                lock: Lock::Key { pubkey },
            }],
        };
        let reject = |reason: String| Rejection {
            txid: tx.txid(),
            reason,
        };
        if amount == 0 {
            return Err(reject("faucet amount must be positive".into()));
        }
        let Some(supply) = self.supply.checked_add(amount) else {
            return Err(reject(format!(
                "faucet amount {amount} would take the ledger total from {} past its limit of \
                 {} shannons (u64::MAX); at most {} more can be created",
                self.supply,
                u64::MAX,
                u64::MAX - self.supply
            )));
        };
        self.faucet_nonce = nonce;
        self.supply = supply;
        Ok(self.accept(tx))
    }

    /// Validate and accept a transaction. Re-submitting an accepted transaction is not an error:
    /// it returns `Ok(false)` (already known).
    pub fn submit(&mut self, tx: Transaction) -> Result<(Txid, bool), Rejection> {
        let txid = tx.txid();
        if self.index.contains_key(&txid) {
            return Ok((txid, false));
        }
        self.validate(&tx)
            .map_err(|reason| Rejection { txid, reason })?;
        self.accept(tx);
        Ok((txid, true))
    }

    fn accept(&mut self, tx: Transaction) -> Txid {
        let txid = tx.txid();
        for input in &tx.inputs {
            self.utxos.remove(&input.prev);
            self.spent_by.insert(input.prev, txid);
        }
        for (i, output) in tx.outputs.iter().enumerate() {
            self.utxos.insert(
                OutPoint {
                    txid,
                    index: i as u32,
                },
                Utxo {
                    output: output.clone(),
                    block_height: None,
                },
            );
        }
        let seq = self.txs.len() as u64;
        self.index.insert(txid, self.txs.len());
        self.txs.push(TxRecord {
            txid,
            tx: tx.clone(),
            block_height: None,
            seq,
        });
        self.mempool.push(txid);
        let event_seq = self.events.len() as u64 + 1;
        self.events.push(ChainEvent::TxAccepted {
            seq: event_seq,
            txid,
            tx,
        });
        txid
    }

    fn validate(&self, tx: &Transaction) -> Result<(), String> {
        if matches!(tx.kind, TxKind::Faucet { .. }) {
            return Err("faucet transactions are created by the ledger only".into());
        }
        if tx.inputs.is_empty() {
            return Err("no inputs".into());
        }
        if tx.outputs.is_empty() {
            return Err("no outputs".into());
        }
        if let Some(i) = tx.outputs.iter().position(|o| o.amount == 0) {
            return Err(format!("output {i} has amount 0"));
        }
        let sighash = tx.sighash();
        let mut seen = HashSet::new();
        let mut input_total: Amount = 0;
        let mut spent_locks = Vec::with_capacity(tx.inputs.len());
        for (i, input) in tx.inputs.iter().enumerate() {
            if !seen.insert(input.prev) {
                return Err(format!("input {i} spends {} twice", input.prev));
            }
            let utxo = match self.utxos.get(&input.prev) {
                Some(utxo) => utxo,
                None => {
                    return Err(match self.spent_by.get(&input.prev) {
                        Some(by) => format!(
                            "double spend: input {i} ({}) is already spent by {by}",
                            input.prev
                        ),
                        None => format!("input {i} spends unknown output {}", input.prev),
                    });
                }
            };
            self.check_witness(utxo, &input.witness, &sighash)
                .map_err(|e| format!("input {i} ({}): {e}", input.prev))?;
            input_total = input_total
                .checked_add(utxo.output.amount)
                .ok_or("input total overflows")?;
            spent_locks.push((&utxo.output.lock, &input.witness));
        }
        let output_total = tx
            .outputs
            .iter()
            .try_fold(0u64, |acc, o| acc.checked_add(o.amount))
            .ok_or("output total overflows")?;
        if input_total != output_total {
            return Err(format!(
                "amounts do not balance: inputs {input_total}, outputs {output_total} (fees are zero)"
            ));
        }
        check_kind(&tx.kind, &spent_locks, tx)
    }

    fn check_witness(
        &self,
        utxo: &Utxo,
        witness: &Witness,
        sighash: &Hash32,
    ) -> Result<(), String> {
        let signed = |pk: &Pubkey, sig| {
            if verify_digest(pk, sighash, sig) {
                Ok(())
            } else {
                Err(format!("bad signature for key {pk}"))
            }
        };
        match (&utxo.output.lock, witness) {
            (Lock::Key { pubkey }, Witness::Key { sig }) => signed(pubkey, sig),
            (Lock::MultiSig { a, b }, Witness::MultiSig { sig_a, sig_b }) => {
                signed(a, sig_a)?;
                signed(b, sig_b)
            }
            (Lock::Delayed { owner, delay, .. }, Witness::DelayedOwner { sig }) => {
                signed(owner, sig)?;
                let Some(at) = utxo.block_height else {
                    return Err(format!(
                        "timelock: output is unconfirmed, spendable {delay} blocks after confirmation"
                    ));
                };
                let depth = self.height - at;
                if depth < *delay {
                    return Err(format!(
                        "timelock: output is {depth} blocks deep, owner may spend after {delay}"
                    ));
                }
                Ok(())
            }
            (
                Lock::Delayed {
                    revoker,
                    revocation_hash,
                    ..
                }
                | Lock::Tlc {
                    revoker,
                    revocation_hash,
                    ..
                },
                Witness::Revocation { sig, secret },
            ) => {
                signed(revoker, sig)?;
                if Hash32::digest(&secret.0) != *revocation_hash {
                    return Err(format!(
                        "revocation secret does not match revocation hash {revocation_hash}"
                    ));
                }
                Ok(())
            }
            (
                Lock::Tlc {
                    receiver,
                    payment_hash,
                    ..
                },
                Witness::TlcPreimage { sig, preimage },
            ) => {
                signed(receiver, sig)?;
                if Hash32::digest(&preimage.0) != *payment_hash {
                    return Err(format!(
                        "preimage does not match payment hash {payment_hash}"
                    ));
                }
                Ok(())
            }
            (
                Lock::Tlc {
                    offerer, expiry, ..
                },
                Witness::TlcTimeout { sig },
            ) => {
                signed(offerer, sig)?;
                if self.height < *expiry {
                    return Err(format!(
                        "timelock: TLC expires at height {expiry}, chain is at {}",
                        self.height
                    ));
                }
                Ok(())
            }
            (lock, witness) => Err(format!(
                "witness {} does not fit lock {}",
                witness_name(witness),
                lock_name(lock)
            )),
        }
    }

    /// Mine `blocks` blocks (at most [`MAX_MINE_BLOCKS`]); the first confirms the mempool.
    /// Returns the new height.
    pub fn mine(&mut self, blocks: u64) -> Result<u64, TooManyBlocks> {
        if blocks > MAX_MINE_BLOCKS {
            return Err(TooManyBlocks { requested: blocks });
        }
        for _ in 0..blocks {
            self.height += 1;
            let txids = std::mem::take(&mut self.mempool);
            for txid in &txids {
                if let Some(&i) = self.index.get(txid) {
                    self.txs[i].block_height = Some(self.height);
                    for index in 0..self.txs[i].tx.outputs.len() {
                        if let Some(utxo) = self.utxos.get_mut(&OutPoint {
                            txid: *txid,
                            index: index as u32,
                        }) {
                            utxo.block_height = Some(self.height);
                        }
                    }
                }
            }
            let seq = self.events.len() as u64 + 1;
            self.events.push(ChainEvent::BlockMined {
                seq,
                height: self.height,
                txids,
            });
        }
        Ok(self.height)
    }

    /// A transaction by id.
    pub fn transaction(&self, txid: &Txid) -> Option<&TxRecord> {
        self.index.get(txid).map(|&i| &self.txs[i])
    }

    /// Transactions in acceptance order, optionally only those of one channel.
    pub fn transactions(&self, channel_id: Option<Hash32>) -> Vec<TxRecord> {
        self.txs
            .iter()
            .filter(|r| channel_id.is_none() || r.tx.kind.channel_id() == channel_id)
            .cloned()
            .collect()
    }

    /// Which transaction spent an output, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spent_by.get(outpoint).copied()
    }

    /// Unspent `Key` outputs of `pubkey`.
    pub fn unspent(&self, pubkey: &Pubkey) -> Vec<Unspent> {
        self.utxos
            .iter()
            .filter(|(_, u)| matches!(&u.output.lock, Lock::Key { pubkey: p } if p == pubkey))
            .map(|(outpoint, u)| Unspent {
                outpoint: *outpoint,
                output: u.output.clone(),
                block_height: u.block_height,
            })
            .collect()
    }

    /// Balance of `pubkey`. Each sum is at most the ledger's total, which fits in a `u64`
    /// (see [`Ledger::fund`]); it saturates rather than wraps should that ever be broken.
    pub fn balance(&self, pubkey: &Pubkey) -> Balance {
        let mut balance = Balance::default();
        for utxo in self.utxos.values() {
            let amount = utxo.output.amount;
            match &utxo.output.lock {
                Lock::Key { pubkey: p } if p == pubkey => {
                    balance.spendable = balance.spendable.saturating_add(amount);
                    if utxo.block_height.is_some() {
                        balance.confirmed = balance.confirmed.saturating_add(amount);
                    }
                }
                Lock::Delayed { owner, .. } if owner == pubkey => {
                    balance.locked = balance.locked.saturating_add(amount);
                }
                Lock::Tlc { receiver, .. } if receiver == pubkey => {
                    balance.locked = balance.locked.saturating_add(amount);
                }
                _ => {}
            }
        }
        balance
    }

    /// Events with `seq > after`.
    pub fn events_after(&self, after: u64) -> &[ChainEvent] {
        let start = (after as usize).min(self.events.len());
        &self.events[start..]
    }

    /// Sequence number of the newest event (0 when none).
    pub fn last_event_seq(&self) -> u64 {
        self.events.len() as u64
    }

    /// Sum of all unspent outputs: equals everything the faucet ever created, at most
    /// `u64::MAX` (saturating rather than wrapping should that ever be broken).
    pub fn total_supply(&self) -> Amount {
        self.utxos
            .values()
            .fold(0, |sum: Amount, u| sum.saturating_add(u.output.amount))
    }
}

fn witness_name(w: &Witness) -> &'static str {
    match w {
        Witness::Key { .. } => "key",
        Witness::MultiSig { .. } => "multi_sig",
        Witness::DelayedOwner { .. } => "delayed_owner",
        Witness::Revocation { .. } => "revocation",
        Witness::TlcPreimage { .. } => "tlc_preimage",
        Witness::TlcTimeout { .. } => "tlc_timeout",
    }
}

fn lock_name(l: &Lock) -> &'static str {
    match l {
        Lock::Key { .. } => "key",
        Lock::MultiSig { .. } => "multi_sig",
        Lock::Delayed { .. } => "delayed",
        Lock::Tlc { .. } => "tlc",
    }
}

/// Structural rules per transaction kind.
fn check_kind(kind: &TxKind, spent: &[(&Lock, &Witness)], tx: &Transaction) -> Result<(), String> {
    let spends_funding = spent
        .iter()
        .any(|(l, _)| matches!(l, Lock::MultiSig { .. }));
    match kind {
        TxKind::Faucet { .. } => Err("faucet transactions are created by the ledger only".into()),
        TxKind::Transfer => {
            if spent.iter().all(|(l, _)| matches!(l, Lock::Key { .. })) {
                Ok(())
            } else {
                Err("a transfer spends wallet outputs only".into())
            }
        }
        TxKind::Funding { .. } => {
            if !spent.iter().all(|(l, _)| matches!(l, Lock::Key { .. })) {
                return Err("funding spends wallet outputs only".into());
            }
            if tx
                .outputs
                .iter()
                .filter(|o| matches!(o.lock, Lock::MultiSig { .. }))
                .count()
                != 1
            {
                return Err("funding must create exactly one 2-of-2 output".into());
            }
            Ok(())
        }
        TxKind::Commitment { .. } | TxKind::CooperativeClose { .. } => {
            if spent.len() != 1 || !spends_funding {
                return Err(format!(
                    "a {} spends exactly one funding output",
                    kind.name()
                ));
            }
            Ok(())
        }
        TxKind::Penalty { .. } => {
            if spent
                .iter()
                .all(|(_, w)| matches!(w, Witness::Revocation { .. }))
            {
                Ok(())
            } else {
                Err("a penalty spends with revocation secrets only".into())
            }
        }
        TxKind::Sweep { .. } => {
            if spends_funding {
                Err("a sweep cannot spend a funding output".into())
            } else {
                Ok(())
            }
        }
    }
}
