//! Payments: what happens to TLCs once they are irrevocably committed, by role.
//! - [`payer`]: outgoing payments, routing, and retries around channels that failed them;
//! - [`forwarding`]: a hop passing a TLC on, and settling it back;
//! - [`payee`]: invoices, and the final TLCs that pay them;
//! - [`invoice`]: the invoice and its address, which both ends read.
//!
//! Here: the peer's committed TLCs, peeled and handed to the payee or the forwarding hop, and
//! our resolved TLCs, handed to the payer or the forwarding hop they belong to.

mod attempts;
mod forwarding;
mod invoice;
mod payee;
mod payer;

use std::collections::HashMap;

use dlp_chain::Hash32;

use super::Core;
use crate::channel::{Tlc, TlcOrigin};
use crate::onion::{HopPayload, peel};
use crate::wire::RemoveReason;
use forwarding::Onward;

#[cfg(test)]
pub(crate) use invoice::MAX_DESCRIPTION_BYTES;
pub(crate) use invoice::{Invoice, MAX_INVOICE_ADDRESS_LEN, MAX_ROUTE_HINTS, check_description};
pub(crate) use payer::{DEFAULT_TLC_EXPIRY_LIMIT, Payment, SendPaymentRequest};

/// What the payment roles keep, persisted (loaded at start, written by `flush`).
#[derive(Debug, Default)]
pub(in crate::core) struct PaymentState {
    /// Invoices we issued (the payee), by payment hash.
    pub(in crate::core) invoices: HashMap<Hash32, Invoice>,
    /// Our outgoing payments (the payer), by payment hash.
    pub(in crate::core) outgoing: HashMap<Hash32, Payment>,
    /// Preimages of TLCs we were paid or forwarded, kept for on-chain claims.
    pub(in crate::core) preimages: HashMap<Hash32, Hash32>,
}

/// A TLC failed back with `message`; `failed_channel` names the channel the payer should route
/// around, `None` when the payee itself refuses (another route would be refused too).
fn fail(message: String, failed_channel: Option<Hash32>) -> RemoveReason {
    RemoveReason::Fail {
        message,
        failed_channel,
    }
}

impl Core {
    /// Our TLC was removed by the peer: settle the payment or the forward it belongs to.
    pub(in crate::core) fn on_outgoing_tlc_resolved(
        &mut self,
        channel_id: Hash32,
        tlc: &Tlc,
        reason: &RemoveReason,
    ) {
        match &tlc.origin {
            Some(TlcOrigin::Payment) => self.on_payment_tlc_resolved(channel_id, tlc, reason),
            Some(TlcOrigin::Forward { channel_id, tlc_id }) => {
                self.on_forwarded_tlc_resolved(*channel_id, *tlc_id, tlc.payment_hash, reason);
            }
            None => {}
        }
    }

    /// Act on the peer's TLCs that both current commitments include.
    pub(in crate::core) fn process_committed_incoming(&mut self, channel_id: Hash32) {
        let Some(data) = self.data(&channel_id) else {
            return;
        };
        let ours = data.our_commitment.ours.min(data.their_commitment.ours);
        let theirs = data.our_commitment.theirs.min(data.their_commitment.theirs);
        let Ok(committed) =
            data.balances_at(ours.max(data.base_ours), theirs.max(data.base_theirs))
        else {
            return;
        };
        let latest = data.latest_balances().unwrap_or_default();
        let todo: Vec<Tlc> = committed
            .tlcs
            .into_iter()
            .filter(|t| !t.offered_by_us && !data.handled_incoming.contains(&t.id))
            .filter(|t| latest.tlcs.iter().any(|l| !l.offered_by_us && l.id == t.id))
            .collect();
        // Forget handled ids that are gone for good.
        let live: std::collections::BTreeSet<u64> = latest
            .tlcs
            .iter()
            .filter(|t| !t.offered_by_us)
            .map(|t| t.id)
            .collect();
        if let Some(d) = self.data_mut(&channel_id) {
            let before = d.handled_incoming.len();
            d.handled_incoming.retain(|id| live.contains(id));
            for t in &todo {
                d.handled_incoming.insert(t.id);
            }
            // `todo` holds its own copies: what is handled now needs its onion no more.
            d.drop_spent_onions();
            if before != d.handled_incoming.len() || !todo.is_empty() {
                self.mark_dirty(channel_id);
            }
        }
        for tlc in todo {
            self.resolve_incoming(channel_id, tlc);
        }
    }

    fn resolve_incoming(&mut self, channel_id: Hash32, tlc: Tlc) {
        let peeled = match peel(&tlc.onion, &self.secret_key()) {
            Ok(peeled) => peeled,
            Err(e) => {
                // Not ours to read (or altered): fail it back, naming the channel it came on so
                // the payer routes around it. The channel itself is fine.
                self.error_event(
                    Some(channel_id),
                    format!("TLC {} carries an onion that does not decode: {e}", tlc.id),
                );
                let reason = fail(format!("invalid onion: {e}"), Some(channel_id));
                self.remove_their_tlc(channel_id, tlc.id, reason);
                return;
            }
        };
        let decision = match (peeled.payload, peeled.next) {
            (
                HopPayload::Final {
                    amount,
                    keysend_preimage,
                },
                _,
            ) => self.receive_final(&tlc, amount, keysend_preimage),
            (
                HopPayload::Forward {
                    next,
                    channel_id: out_channel,
                    amount,
                    expiry,
                },
                Some(onion),
            ) => self.forward(
                channel_id,
                &tlc,
                Onward {
                    next,
                    channel_id: out_channel,
                    amount,
                    expiry,
                    onion,
                },
            ),
            // `peel` returns the next layer exactly for a forward payload.
            (HopPayload::Forward { .. }, None) => Some(fail(
                "invalid onion: no layer for the next hop".into(),
                Some(channel_id),
            )),
        };
        if let Some(reason) = decision {
            self.remove_their_tlc(channel_id, tlc.id, reason);
        }
    }
}
