//! The ledger's verdict on a closed channel: who ended up with what.
//!
//! Starting from the funding output, follow every channel-locked output (the closing
//! transaction's delayed balances and TLCs) to the transaction that spent it, until only wallet
//! outputs (`Key` locks) remain. What each wallet key received is its take; a penalty among the
//! spenders names whose commitment was punished. Nothing here asks a node: the ledger alone
//! judges.

use std::collections::{BTreeMap, HashMap};

use dlp_chain::{Hash32, Lock, OutPoint, Pubkey, TxKind, TxRecord};

/// A punished commitment: its holder broadcast a revoked state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Penalty {
    pub txid: Hash32,
    /// Holder of the commitment the penalty spent.
    pub cheater: Pubkey,
    pub commitment_number: u64,
}

/// How a channel's funding output was settled so far.
#[derive(Debug, Clone, Default)]
pub struct Settlement {
    /// The transaction that spent the funding output, and its kind.
    pub closing: Option<(Hash32, String)>,
    /// The funding output's amount.
    pub funding_amount: u64,
    /// Wallet key -> amount received from the channel.
    pub takes: BTreeMap<Pubkey, u64>,
    pub penalties: Vec<Penalty>,
    /// Channel-locked outputs nobody spent yet.
    pub unsettled: Vec<OutPoint>,
    /// The height at which every unsettled output can be spent by someone without a secret
    /// (a delayed balance by its owner, a TLC by its offerer at expiry).
    pub spendable_at: u64,
    /// The highest block holding a transaction followed so far (the closing one and its
    /// spenders); `None` while one of them is in the mempool or nothing closed the channel.
    pub settled_at: Option<u64>,
}

impl Settlement {
    /// Everything is back in wallets.
    pub fn is_final(&self) -> bool {
        self.closing.is_some() && self.unsettled.is_empty()
    }

    pub fn take(&self, wallet: &Pubkey) -> u64 {
        self.takes.get(wallet).copied().unwrap_or(0)
    }
}

/// Follow `funding` through `txs` (the whole ledger).
pub fn settle(txs: &[TxRecord], funding: OutPoint) -> Settlement {
    let by_id: HashMap<Hash32, &TxRecord> = txs.iter().map(|t| (t.txid, t)).collect();
    let mut spender: HashMap<OutPoint, &TxRecord> = HashMap::new();
    for t in txs {
        for input in &t.tx.inputs {
            spender.insert(input.prev, t);
        }
    }
    let mut out = Settlement {
        funding_amount: by_id
            .get(&funding.txid)
            .and_then(|t| t.tx.outputs.get(funding.index as usize))
            .map_or(0, |o| o.amount),
        ..Settlement::default()
    };
    let Some(closing) = spender.get(&funding) else {
        return out;
    };
    out.closing = Some((closing.txid, closing.tx.kind.name().to_string()));
    let mut queue = vec![closing.txid];
    let mut heights = Some(0u64);
    while let Some(txid) = queue.pop() {
        let Some(record) = by_id.get(&txid) else {
            continue;
        };
        heights = heights.zip(record.block_height).map(|(a, b)| a.max(b));
        for (index, output) in record.tx.outputs.iter().enumerate() {
            let outpoint = OutPoint {
                txid,
                index: index as u32,
            };
            match &output.lock {
                Lock::Key { pubkey } => *out.takes.entry(*pubkey).or_default() += output.amount,
                Lock::Delayed { .. } | Lock::Tlc { .. } => match spender.get(&outpoint) {
                    Some(next) => {
                        if let TxKind::Penalty { .. } = next.tx.kind
                            && let TxKind::Commitment { holder, number, .. } = &record.tx.kind
                        {
                            out.penalties.push(Penalty {
                                txid: next.txid,
                                cheater: *holder,
                                commitment_number: *number,
                            });
                        }
                        queue.push(next.txid);
                    }
                    None => {
                        let at = match &output.lock {
                            Lock::Delayed { delay, .. } => {
                                record.block_height.map_or(u64::MAX, |h| h + delay)
                            }
                            Lock::Tlc { expiry, .. } => *expiry,
                            _ => 0,
                        };
                        out.spendable_at = out.spendable_at.max(at);
                        out.unsettled.push(outpoint);
                    }
                },
                // A channel output that is not ours to follow (another funding): stop here.
                Lock::MultiSig { .. } => {}
            }
        }
    }
    out.settled_at = heights;
    out.penalties.sort_by_key(|p| p.txid);
    out.penalties.dedup();
    out
}
