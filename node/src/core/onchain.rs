//! The chain watcher's half in the core: funding confirmations, closes, penalties and sweeps.
//!
//! Every node replays the chain's event log from the start on every start-up, so nothing here
//! depends on having seen an event live. What we are owed on chain is a list of outpoints per
//! closed channel (`to_claim`); an outpoint leaves the list only when some transaction is seen
//! spending it, and every chain event batch retries the claims whose conditions hold. So a claim
//! rejected for a transient reason, or lost to a crash between persisting and broadcasting, is
//! simply made again; one claim transaction per output, so an output the other side already
//! spent never blocks the others.
//!
//! - A commitment of the peer below its current number is revoked: every output the revocation
//!   path unlocks (its delayed balance, its TLCs) is taken with the secret the peer revealed.
//! - Our own commitment: our delayed balance is swept once `to_self_delay` blocks deep; if our
//!   force close was not accepted (yet), it is broadcast again on every block.
//! - TLC outputs: claimed with the preimage when we know it, or by the offerer at expiry.
//! - A preimage revealed on chain (a TLC claimed by preimage) settles the payment or the
//!   upstream TLC it belongs to, exactly like an off-chain fulfil.
//! - A commitment of a channel we have no record of (restored from a backup older than the
//!   channel) that pays our wallet key is reported (`RecoveredFromUnknownChannel`): the peer
//!   closed the channel we lost, and our balance is in our wallet.

use dlp_chain::{
    ChainEvent, Hash32, Input, Lock, OutPoint, Output, Sig, Transaction, TxKind, Witness,
    sign_digest,
};

use super::Core;
use super::flush::peer_secret_key;
use crate::channel::OnChainClose;
use crate::channel_record::{ChannelState, flags};
use crate::wire::RemoveReason;

/// Builds the witness of a claim from its signature.
type WitnessFn = Box<dyn Fn(Sig) -> Witness>;

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
        self.retry_claims();
    }

    fn channel_spending(&self, tx: &Transaction) -> Option<Hash32> {
        self.channels.iter().find_map(|(id, r)| {
            let outpoint = r.data.as_deref()?.funding_outpoint()?;
            tx.inputs.iter().any(|i| i.prev == outpoint).then_some(*id)
        })
    }

    fn on_tx_seen(&mut self, txid: Hash32, tx: &Transaction) {
        self.prune_spent(tx);
        self.learn_preimages(tx);
        self.note_spent_claims(tx);
        let Some(id) = self.channel_spending(tx) else {
            self.recognise_unknown_channel_payout(txid, tx);
            return;
        };
        if self.data(&id).is_some_and(|d| d.on_chain.is_some()) {
            return;
        }
        let outpoints = |pred: &dyn Fn(&Lock) -> bool| -> Vec<OutPoint> {
            tx.outputs
                .iter()
                .enumerate()
                .filter(|(_, o)| pred(&o.lock))
                .map(|(i, _)| OutPoint {
                    txid,
                    index: i as u32,
                })
                .collect()
        };
        let me = self.me;
        match &tx.kind {
            TxKind::CooperativeClose { .. } => {
                self.record_close(id, tx, "cooperative_close", vec![], None);
                self.set_state(id, ChannelState::Closed(flags::COOPERATIVE));
            }
            TxKind::Commitment { holder, number, .. } => {
                let their_current = self.data(&id).map_or(0, |d| d.their_commitment.number);
                if *holder == me {
                    let claims = outpoints(&|l| match l {
                        Lock::Delayed { owner, .. } => *owner == me,
                        Lock::Tlc { .. } => true,
                        _ => false,
                    });
                    self.record_close(id, tx, "commitment", claims, None);
                    self.set_state(
                        id,
                        ChannelState::Closed(
                            flags::UNCOOPERATIVE_LOCAL | flags::WAITING_ONCHAIN_SETTLEMENT,
                        ),
                    );
                } else if *number < their_current {
                    let claims = outpoints(&|l| match l {
                        Lock::Delayed { revoker, .. } | Lock::Tlc { revoker, .. } => *revoker == me,
                        _ => false,
                    });
                    tracing::warn!(channel = %id, number, "peer broadcast a revoked commitment: penalty");
                    self.record_close(id, tx, "revoked_commitment", claims, Some(*number));
                    self.set_state(
                        id,
                        ChannelState::Closed(
                            flags::UNCOOPERATIVE_REMOTE | flags::WAITING_ONCHAIN_SETTLEMENT,
                        ),
                    );
                } else {
                    let claims = outpoints(&|l| matches!(l, Lock::Tlc { .. }));
                    self.record_close(id, tx, "commitment", claims, None);
                    self.set_state(
                        id,
                        ChannelState::Closed(
                            flags::UNCOOPERATIVE_REMOTE | flags::WAITING_ONCHAIN_SETTLEMENT,
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    /// A commitment of a channel we have no record of (we were restored from a backup older
    /// than it) that pays our wallet key: our balance came back, most likely because we answered
    /// the channel's ReestablishChannel with `RequestForceClose`. Nothing to claim (a key output
    /// is ours at once), but the operator should hear of it.
    fn recognise_unknown_channel_payout(&mut self, txid: Hash32, tx: &Transaction) {
        let TxKind::Commitment { channel_id, .. } = &tx.kind else {
            return;
        };
        if self.channels.contains_key(channel_id) {
            return;
        }
        let amount: u64 = tx
            .outputs
            .iter()
            .filter(|o| matches!(&o.lock, Lock::Key { pubkey } if *pubkey == self.wallet))
            .map(|o| o.amount)
            .sum();
        if amount == 0 {
            return;
        }
        tracing::info!(
            channel = %channel_id,
            %txid,
            amount,
            "commitment of channel {channel_id}, of which we have no record, paid {amount} to our \
             wallet"
        );
        self.fx
            .events
            .push(crate::events::EventKind::RecoveredFromUnknownChannel {
                channel_id: *channel_id,
                txid,
                amount,
            });
    }

    fn record_close(
        &mut self,
        id: Hash32,
        tx: &Transaction,
        kind: &str,
        to_claim: Vec<OutPoint>,
        revoked_number: Option<u64>,
    ) {
        let txid = tx.txid();
        if let Some(d) = self.data_mut(&id) {
            d.on_chain = Some(OnChainClose {
                txid,
                kind: kind.into(),
                confirmed_at: None,
                to_claim,
                tx: Some(tx.clone()),
                revoked_number,
            });
        }
        self.mark_dirty(id);
    }

    /// A TLC claimed on chain with its preimage settles what that TLC was for.
    fn learn_preimages(&mut self, tx: &Transaction) {
        for input in &tx.inputs {
            let Witness::TlcPreimage { preimage, .. } = &input.witness else {
                continue;
            };
            let hash = Hash32::digest(&preimage.0);
            let offered: Vec<(Hash32, crate::channel::Tlc)> = self
                .channels
                .iter()
                .filter_map(|(id, r)| Some((*id, r.data.as_deref()?)))
                .filter_map(|(id, d)| {
                    let balances = d.latest_balances().ok()?;
                    let tlc = balances
                        .tlcs
                        .into_iter()
                        .find(|t| t.offered_by_us && t.payment_hash == hash)?;
                    Some((id, tlc))
                })
                .collect();
            for (channel_id, tlc) in offered {
                self.payments.preimages.insert(hash, *preimage);
                self.fx.preimages.push((hash, *preimage));
                self.on_outgoing_tlc_resolved(
                    channel_id,
                    &tlc,
                    &RemoveReason::Fulfill {
                        preimage: *preimage,
                    },
                );
            }
        }
    }

    /// Outpoints we were waiting to claim that this transaction spends are settled, whoever
    /// spent them.
    fn note_spent_claims(&mut self, tx: &Transaction) {
        let spent: Vec<OutPoint> = tx.inputs.iter().map(|i| i.prev).collect();
        let ids: Vec<Hash32> = self
            .channels
            .iter()
            .filter(|(_, r)| {
                r.data
                    .as_deref()
                    .and_then(|d| d.on_chain.as_ref())
                    .is_some_and(|c| c.to_claim.iter().any(|o| spent.contains(o)))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(c) = self.data_mut(&id).and_then(|d| d.on_chain.as_mut()) {
                c.to_claim.retain(|o| !spent.contains(o));
            }
            self.mark_dirty(id);
            self.clear_settlement_flag(id);
        }
    }

    fn clear_settlement_flag(&mut self, id: Hash32) {
        let settled = self
            .data(&id)
            .and_then(|d| d.on_chain.as_ref())
            .is_some_and(|c| c.to_claim.is_empty());
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

    fn on_block(&mut self, height: u64, txids: &[Hash32]) {
        let ids: Vec<Hash32> = self.channels.keys().copied().collect();
        for id in ids {
            let Some(data) = self.data(&id) else {
                continue;
            };
            let funding = data.funding.as_ref().map(|f| (f.tx.txid(), f.confirmed_at));
            let close = data.on_chain.clone();
            if let Some((funding_txid, None)) = funding
                && txids.contains(&funding_txid)
            {
                self.on_funding_confirmed(id, height);
            }
            match close {
                Some(close) if close.confirmed_at.is_none() && txids.contains(&close.txid) => {
                    if let Some(c) = self.data_mut(&id).and_then(|d| d.on_chain.as_mut()) {
                        c.confirmed_at = Some(height);
                    }
                    self.mark_dirty(id);
                }
                Some(_) => {}
                None => {
                    // Our force close is not on chain yet (rejected, or lost to a crash between
                    // persisting and broadcasting): broadcast it again.
                    if let Some(ChannelState::Closed(bits)) = self.state_of(&id)
                        && bits & flags::UNCOOPERATIVE_LOCAL != 0
                        && let Ok((tx, number)) = self.our_signed_commitment(id)
                    {
                        self.broadcast(tx, Some(number));
                    }
                }
            }
        }
    }

    /// Queue a transaction unless this run already submitted the same one.
    pub(super) fn broadcast(&mut self, tx: Transaction, number: Option<u64>) {
        if self.submitted.insert(tx.txid()) {
            self.fx.txs.push((tx, number));
        }
    }

    /// Build and queue every claim whose conditions hold now.
    fn retry_claims(&mut self) {
        let pending: Vec<(Hash32, OnChainClose)> = self
            .channels
            .iter()
            .filter_map(|(id, r)| {
                let close = r.data.as_deref()?.on_chain.clone()?;
                (!close.to_claim.is_empty()).then_some((*id, close))
            })
            .collect();
        for (id, close) in pending {
            let Some(tx) = close.tx.clone() else {
                continue;
            };
            let secret = close.revoked_number.and_then(|n| self.peer_secret(&id, n));
            if close.revoked_number.is_some() && secret.is_none() {
                self.error_event(
                    Some(id),
                    "peer broadcast a revoked commitment but its secret is not in our store".into(),
                );
                continue;
            }
            for outpoint in &close.to_claim {
                let Some(output) = tx.outputs.get(outpoint.index as usize) else {
                    continue;
                };
                if let Some((witness, kind)) = self.claim_witness(id, &close, output, secret) {
                    let claim = self.claim_tx(*outpoint, output.amount, witness, kind);
                    self.broadcast(claim, close.revoked_number);
                }
            }
        }
    }

    fn peer_secret(&self, id: &Hash32, number: u64) -> Option<Hash32> {
        self.ctx
            .store()
            .get(&peer_secret_key(id, number))
            .ok()
            .flatten()
            .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
            .map(Hash32)
    }

    /// How we may spend `output` of the close now, if at all: a witness builder and the kind
    /// of the claiming transaction.
    fn claim_witness(
        &self,
        id: Hash32,
        close: &OnChainClose,
        output: &Output,
        revocation_secret: Option<Hash32>,
    ) -> Option<(WitnessFn, TxKind)> {
        let sweep = TxKind::Sweep { channel_id: id };
        if let Some(secret) = revocation_secret {
            return Some((
                Box::new(move |sig| Witness::Revocation { sig, secret }),
                TxKind::Penalty { channel_id: id },
            ));
        }
        let depth = close.confirmed_at.map(|h| self.height.saturating_sub(h));
        match &output.lock {
            Lock::Delayed { owner, delay, .. } if *owner == self.me => depth
                .is_some_and(|d| d >= *delay)
                .then(|| (Box::new(|sig| Witness::DelayedOwner { sig }) as _, sweep)),
            Lock::Tlc {
                receiver,
                offerer,
                payment_hash,
                expiry,
                ..
            } => {
                let preimage = self
                    .payments
                    .preimages
                    .get(payment_hash)
                    .copied()
                    .or_else(|| {
                        self.payments
                            .invoices
                            .get(payment_hash)
                            .and_then(|i| i.preimage)
                    })
                    .or_else(|| {
                        self.payments
                            .outgoing
                            .get(payment_hash)
                            .and_then(|p| p.preimage)
                    })
                    .or_else(|| {
                        self.payments
                            .outgoing
                            .get(payment_hash)
                            .and_then(|p| p.keysend_preimage)
                    });
                if *receiver == self.me
                    && let Some(preimage) = preimage
                {
                    Some((
                        Box::new(move |sig| Witness::TlcPreimage { sig, preimage }),
                        sweep,
                    ))
                } else if *offerer == self.me && self.height >= *expiry {
                    Some((Box::new(|sig| Witness::TlcTimeout { sig }), sweep))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn claim_tx(
        &self,
        outpoint: OutPoint,
        amount: u64,
        witness: WitnessFn,
        kind: TxKind,
    ) -> Transaction {
        let mut claim = Transaction {
            kind,
            inputs: vec![Input {
                prev: outpoint,
                witness: Witness::Key { sig: Sig([0; 64]) },
            }],
            outputs: vec![Output {
                amount,
                lock: Lock::Key {
                    pubkey: self.wallet,
                },
            }],
        };
        let sig = sign_digest(&self.secret_key(), &claim.sighash());
        claim.inputs[0].witness = witness(sig);
        claim
    }
}
