//! The chain watcher's half in the core: funding confirmations, closes, penalties and sweeps.
//!
//! Every node replays the chain's event log from the start on every start-up, so nothing here
//! depends on having seen an event live: submissions are idempotent (the chain answers "already
//! known") and a claim that lost a race is rejected as a double spend and dropped.
//!
//! - A commitment of the peer with a number below the peer's current one is revoked: we take
//!   every output the revocation path unlocks (its delayed balance and its TLCs) with the secret
//!   the peer revealed. That is the penalty.
//! - Our own commitment: our delayed balance is swept once `to_self_delay` blocks deep.
//! - TLC outputs: claimed with the preimage when we know it, or after expiry when we offered it.

use dlp_chain::{
    ChainEvent, Hash32, Input, Lock, OutPoint, Output, Transaction, TxKind, Witness, sign_digest,
};

use super::{Core, peer_secret_key};
use crate::channel::OnChainClose;
use crate::channel_record::{ChannelState, flags};

impl Core {
    pub(super) async fn on_chain_events(&mut self, events: Vec<ChainEvent>) {
        for event in events {
            match event {
                ChainEvent::TxAccepted { tx, txid, .. } => self.on_tx_seen(txid, &tx),
                ChainEvent::BlockMined { height, txids, .. } => {
                    self.height = height;
                    self.on_block(height, &txids);
                }
            }
        }
    }

    fn channel_spending(&self, tx: &Transaction) -> Option<Hash32> {
        self.channels.iter().find_map(|(id, r)| {
            let outpoint = r.data.as_deref()?.funding_outpoint()?;
            tx.inputs.iter().any(|i| i.prev == outpoint).then_some(*id)
        })
    }

    fn on_tx_seen(&mut self, txid: Hash32, tx: &Transaction) {
        let Some(id) = self.channel_spending(tx) else {
            return;
        };
        if self.data(&id).is_some_and(|d| d.on_chain.is_some()) {
            return;
        }
        match &tx.kind {
            TxKind::CooperativeClose { .. } => {
                self.record_close(id, tx, "cooperative_close", vec![]);
                self.set_state(id, ChannelState::Closed(flags::COOPERATIVE));
            }
            TxKind::Commitment { holder, number, .. } => {
                let holder_is_us = *holder == self.me;
                let claims: Vec<OutPoint> = (0..tx.outputs.len() as u32)
                    .map(|index| OutPoint { txid, index })
                    .filter(|op| {
                        let lock = &tx.outputs[op.index as usize].lock;
                        matches!(lock, Lock::Delayed { owner, .. } if *owner == self.me)
                            || matches!(lock, Lock::Tlc { .. })
                    })
                    .collect();
                let their_current = self.data(&id).map_or(0, |d| d.their_commitment.number);
                if holder_is_us {
                    self.record_close(id, tx, "commitment", claims.clone());
                    self.set_state(
                        id,
                        ChannelState::Closed(
                            flags::UNCOOPERATIVE_LOCAL | flags::WAITING_ONCHAIN_SETTLEMENT,
                        ),
                    );
                } else if *number < their_current {
                    self.punish(id, txid, tx, *number);
                } else {
                    self.record_close(id, tx, "commitment", claims.clone());
                    self.set_state(
                        id,
                        ChannelState::Closed(
                            flags::UNCOOPERATIVE_REMOTE | flags::WAITING_ONCHAIN_SETTLEMENT,
                        ),
                    );
                }
                self.try_claims(id, Some(tx.clone()));
            }
            _ => {}
        }
    }

    fn record_close(&mut self, id: Hash32, tx: &Transaction, kind: &str, to_claim: Vec<OutPoint>) {
        let txid = tx.txid();
        if let Some(d) = self.data_mut(&id) {
            d.on_chain = Some(OnChainClose {
                txid,
                kind: kind.into(),
                confirmed_at: None,
                to_claim,
                tx: Some(tx.clone()),
            });
        }
        self.mark_dirty(id);
    }

    /// The peer broadcast its revoked commitment `number`: take everything with its secret.
    fn punish(&mut self, id: Hash32, txid: Hash32, tx: &Transaction, number: u64) {
        let secret = self
            .ctx
            .store()
            .get(&peer_secret_key(&id, number))
            .ok()
            .flatten()
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            .map(Hash32);
        let Some(secret) = secret else {
            self.error_event(
                Some(id),
                format!(
                    "peer broadcast revoked commitment {number} but its secret is not in our store"
                ),
            );
            return;
        };
        let prevs: Vec<(OutPoint, u64)> = tx
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| match &o.lock {
                Lock::Delayed { revoker, .. } | Lock::Tlc { revoker, .. } => *revoker == self.me,
                _ => false,
            })
            .map(|(i, o)| {
                (
                    OutPoint {
                        txid,
                        index: i as u32,
                    },
                    o.amount,
                )
            })
            .collect();
        self.record_close(id, tx, "revoked_commitment", vec![]);
        self.set_state(id, ChannelState::Closed(flags::UNCOOPERATIVE_REMOTE));
        if prevs.is_empty() {
            return;
        }
        let outpoints: Vec<OutPoint> = prevs.iter().map(|(o, _)| *o).collect();
        let total: u64 = prevs.iter().map(|(_, a)| *a).sum();
        let mut penalty = Transaction::unsigned(
            TxKind::Penalty { channel_id: id },
            &outpoints,
            vec![Output {
                amount: total,
                lock: Lock::Key {
                    pubkey: self.wallet,
                },
            }],
        );
        let sig = sign_digest(&self.secret_key(), &penalty.sighash());
        for input in &mut penalty.inputs {
            input.witness = Witness::Revocation { sig, secret };
        }
        tracing::warn!(channel = %id, number, "peer broadcast a revoked commitment: penalty");
        self.fx.txs.push((penalty, Some(number)));
    }

    fn on_block(&mut self, height: u64, txids: &[Hash32]) {
        let ids: Vec<Hash32> = self.channels.keys().copied().collect();
        for id in ids {
            let Some(data) = self.data(&id) else {
                continue;
            };
            let funding = data.funding.as_ref().map(|f| (f.tx.txid(), f.confirmed_at));
            if let Some((funding_txid, None)) = funding
                && txids.contains(&funding_txid)
            {
                self.on_funding_confirmed(id, height);
            }
            if let Some(close) = self.data(&id).and_then(|d| d.on_chain.clone()) {
                if close.confirmed_at.is_none() && txids.contains(&close.txid) {
                    if let Some(d) = self.data_mut(&id)
                        && let Some(c) = d.on_chain.as_mut()
                    {
                        c.confirmed_at = Some(height);
                    }
                    self.mark_dirty(id);
                }
                if !close.to_claim.is_empty() {
                    self.try_claims(id, None);
                }
            }
        }
    }

    /// Claim whatever of the close transaction's outputs we can now; keep the rest for later.
    fn try_claims(&mut self, id: Hash32, tx: Option<Transaction>) {
        let Some(close) = self.data(&id).and_then(|d| d.on_chain.clone()) else {
            return;
        };
        if close.to_claim.is_empty() {
            return;
        }
        let Some(tx) = tx.or(close.tx) else {
            return;
        };
        let depth = close.confirmed_at.map(|h| self.height.saturating_sub(h));
        let mut remaining = Vec::new();
        for outpoint in close.to_claim {
            let Some(output) = tx.outputs.get(outpoint.index as usize) else {
                continue;
            };
            let witness_builder: Option<Box<dyn Fn(dlp_chain::Sig) -> Witness>> = match &output.lock
            {
                Lock::Delayed { owner, delay, .. } if *owner == self.me => {
                    if depth.is_some_and(|d| d >= *delay) {
                        Some(Box::new(|sig| Witness::DelayedOwner { sig }))
                    } else {
                        remaining.push(outpoint);
                        None
                    }
                }
                Lock::Tlc {
                    receiver,
                    offerer,
                    payment_hash,
                    expiry,
                    ..
                } => {
                    let preimage = self
                        .preimages
                        .get(payment_hash)
                        .copied()
                        .or_else(|| self.invoices.get(payment_hash).and_then(|i| i.preimage))
                        .or_else(|| self.payments.get(payment_hash).and_then(|p| p.preimage));
                    if *receiver == self.me && preimage.is_some() {
                        let preimage = preimage.unwrap_or(Hash32([0; 32]));
                        Some(Box::new(move |sig| Witness::TlcPreimage { sig, preimage }))
                    } else if *offerer == self.me
                        && self.height >= *expiry
                        && close.confirmed_at.is_some()
                    {
                        Some(Box::new(|sig| Witness::TlcTimeout { sig }))
                    } else {
                        if *offerer == self.me || *receiver == self.me {
                            remaining.push(outpoint);
                        }
                        None
                    }
                }
                _ => None,
            };
            if let Some(build) = witness_builder {
                let mut sweep = Transaction {
                    kind: TxKind::Sweep { channel_id: id },
                    inputs: vec![Input {
                        prev: outpoint,
                        witness: Witness::Key {
                            sig: dlp_chain::Sig([0; 64]),
                        },
                    }],
                    outputs: vec![Output {
                        amount: output.amount,
                        lock: Lock::Key {
                            pubkey: self.wallet,
                        },
                    }],
                };
                let sig = sign_digest(&self.secret_key(), &sweep.sighash());
                sweep.inputs[0].witness = build(sig);
                self.fx.txs.push((sweep, None));
            }
        }
        let settled = remaining.is_empty();
        if let Some(d) = self.data_mut(&id)
            && let Some(c) = d.on_chain.as_mut()
        {
            c.to_claim = remaining;
        }
        self.mark_dirty(id);
        if settled
            && let Some(ChannelState::Closed(bits)) = self.state_of(&id)
            && bits & flags::WAITING_ONCHAIN_SETTLEMENT != 0
        {
            self.set_state(
                id,
                ChannelState::Closed(bits & !flags::WAITING_ONCHAIN_SETTLEMENT),
            );
        }
    }
}
