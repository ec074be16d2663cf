//! A hop: forwarding the peer's TLCs onwards, and settling them back once the outgoing TLC is
//! resolved. The payer chose the outgoing channel; a hop may use another one to the same next
//! node when the chosen one cannot carry the amount (non-strict forwarding).

use dlp_chain::{Hash32, Pubkey};

use crate::channel::{Tlc, TlcOrigin};
use crate::channel_record::ChannelState;
use crate::core::Core;
use crate::onion::OnionPacket;
use crate::wire::RemoveReason;

use super::fail;

/// What the payer's onion tells a hop: the next node, the channel it chose, what to send on and
/// until when, and the onion for the next hop.
#[derive(Debug)]
pub(super) struct Onward {
    pub(super) next: Pubkey,
    pub(super) channel_id: Hash32,
    pub(super) amount: u64,
    pub(super) expiry: u64,
    pub(super) onion: OnionPacket,
}

/// A hop forwards only what it receives, less its fee, and only with time to claim upstream:
/// the outgoing amount plus `fee_rate`'s fee on it may not exceed the incoming one, and the
/// outgoing expiry must be in the future and at least `delta` blocks before the incoming one,
/// so that a preimage revealed downstream at the last moment can still be used upstream.
pub(crate) fn check_forward(
    incoming: &Tlc,
    amount: u64,
    expiry: u64,
    height: u64,
    delta: u64,
    fee_rate: u64,
) -> Result<(), String> {
    let fee = crate::graph::fee_for(fee_rate, amount);
    if amount == 0 || amount.saturating_add(fee) > incoming.amount {
        return Err(format!(
            "asked to forward {amount} with a fee of {fee}, received {}",
            incoming.amount
        ));
    }
    if expiry <= height {
        return Err(format!(
            "outgoing expiry {expiry} is not after the chain height {height}"
        ));
    }
    if expiry.saturating_add(delta) > incoming.expiry {
        return Err(format!(
            "outgoing expiry {expiry} + delta {delta} exceeds the incoming expiry {}",
            incoming.expiry
        ));
    }
    Ok(())
}

impl Core {
    /// Pass the peer's TLC `tlc` (on `channel_id`) onwards as the onion says, or say why not
    /// (naming the outgoing channel, so the payer routes around it). `None`: offered onwards;
    /// the TLC is settled when the outgoing one is (`on_forwarded_tlc_resolved`).
    pub(super) fn forward(
        &mut self,
        channel_id: Hash32,
        tlc: &Tlc,
        onward: Onward,
    ) -> Option<RemoveReason> {
        let Onward {
            next,
            channel_id: out_channel,
            amount,
            expiry,
            onion,
        } = onward;
        let delta = self.config.channel.tlc_expiry_delta;
        let fee_rate = self.config.channel.fee_rate;
        let forwarded = check_forward(tlc, amount, expiry, self.height, delta, fee_rate)
            .and_then(|()| self.forward_channel(out_channel, next, amount))
            .and_then(|out| {
                self.offer_tlc(
                    out,
                    amount,
                    tlc.payment_hash,
                    expiry,
                    onion,
                    TlcOrigin::Forward {
                        channel_id,
                        tlc_id: tlc.id,
                    },
                )
            });
        match forwarded {
            Ok(_) => None,
            Err(e) => Some(fail(
                format!("cannot forward to {next}: {e}"),
                Some(out_channel),
            )),
        }
    }

    /// The TLC we forwarded was removed downstream: remove the one it came from the same way
    /// (keeping a preimage for an on-chain claim should that channel close with the TLC).
    pub(super) fn on_forwarded_tlc_resolved(
        &mut self,
        in_channel: Hash32,
        in_tlc: u64,
        payment_hash: Hash32,
        reason: &RemoveReason,
    ) {
        if let RemoveReason::Fulfill { preimage } = reason {
            self.payments.preimages.insert(payment_hash, *preimage);
            self.fx.preimages.push((payment_hash, *preimage));
        }
        self.remove_their_tlc(in_channel, in_tlc, reason.clone());
    }

    /// The channel to forward over: the one the payer chose if it is ours with `next` and can
    /// carry `amount` now, else any of ours with `next` that can (non-strict forwarding).
    fn forward_channel(&self, chosen: Hash32, next: Pubkey, amount: u64) -> Result<Hash32, String> {
        let chosen_fits = self.peer_of(&chosen) == Some(next)
            && self.usable_for_payments(&chosen).is_ok()
            && self
                .data(&chosen)
                .and_then(|d| d.latest_balances().ok())
                .is_some_and(|b| b.local >= amount);
        if chosen_fits {
            return Ok(chosen);
        }
        self.pick_channel(next, amount)
    }

    /// A channel with `peer` that can carry `amount` now, or why none can.
    fn pick_channel(&self, peer: Pubkey, amount: u64) -> Result<dlp_chain::Hash32, String> {
        let mut reasons = Vec::new();
        for (id, record) in &self.channels {
            if self.peer_of(id) != Some(peer) || matches!(record.state, ChannelState::Closed(_)) {
                continue;
            }
            if let Err(e) = self.usable_for_payments(id) {
                reasons.push(e);
                continue;
            }
            let available = self
                .data(id)
                .and_then(|d| d.latest_balances().ok())
                .map_or(0, |b| b.local);
            if available >= amount {
                return Ok(*id);
            }
            reasons.push(format!(
                "channel {id} has {available} available, {amount} needed"
            ));
        }
        if reasons.is_empty() {
            Err(format!("no channel with {peer}"))
        } else {
            Err(reasons.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(amount: u64, expiry: u64) -> Tlc {
        Tlc {
            offered_by_us: false,
            id: 0,
            amount,
            payment_hash: Hash32([1; 32]),
            expiry,
            onion: OnionPacket(vec![]),
            origin: None,
        }
    }

    #[test]
    fn a_hop_never_forwards_more_or_later_than_it_received() {
        let tlc = incoming(1_000, 140);
        assert!(check_forward(&tlc, 1_000, 120, 100, 20, 0).is_ok());
        assert!(
            check_forward(&tlc, 999, 110, 100, 20, 0).is_ok(),
            "a fee is fine"
        );
        assert!(
            check_forward(&tlc, 1_001, 120, 100, 20, 0).is_err(),
            "draining the hop"
        );
        assert!(
            check_forward(&tlc, 1_000, 121, 100, 20, 0).is_err(),
            "no time to claim upstream"
        );
        assert!(
            check_forward(&tlc, 1_000, 100, 100, 20, 0).is_err(),
            "already expired"
        );
        assert!(check_forward(&tlc, 0, 120, 100, 20, 0).is_err());
        // A 1% fee: forwarding 990 of 1,000 is fine, 991 leaves less than the fee.
        assert!(check_forward(&tlc, 990, 120, 100, 20, 10_000).is_ok());
        assert!(
            check_forward(&tlc, 991, 120, 100, 20, 10_000).is_err(),
            "short of the hop's fee"
        );
    }
}
