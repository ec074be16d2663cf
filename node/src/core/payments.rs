//! Invoices, outgoing payments, and what happens to TLCs once they are irrevocably committed:
//! the payee fulfils, a hop forwards, a payer learns the outcome.
//!
//! Routing: a direct ChannelReady channel to the payee if one can carry the amount, else a
//! single intermediate hop (A pays C through B): candidates are the payee's route hints from the
//! invoice (its channel peers), then every other peer we have a channel with. A failed attempt
//! moves on to the next candidate; when none is left the payment fails with every reason seen.

use dlp_chain::{Hash32, Pubkey, hex_u64};
use serde::{Deserialize, Serialize};

use super::Core;
use crate::channel::{Tlc, TlcOrigin};
use crate::channel_record::ChannelState;
use crate::events::EventKind;
use crate::wire::{Onion, RemoveReason};

/// Prefix of invoice addresses.
pub const INVOICE_ADDRESS_PREFIX: &str = "dlpinv1";

/// Longest invoice description, in bytes of UTF-8: BOLT 11's limit (its `d` field's 10-bit
/// length counts 5-bit groups: 1023 * 5 / 8 = 639 bytes). Every invoice is stored and every
/// backup carries it, so free text must be small.
pub const MAX_DESCRIPTION_BYTES: usize = 639;
/// Most route hints an invoice carries (the payee's channel peers, first in key order). A
/// payment keeps them as route candidates in its record.
pub const MAX_ROUTE_HINTS: usize = 16;
/// Longest invoice address `send_payment` accepts, in bytes. The largest invoice this node can
/// issue (a description of 639 control characters, each escaped to six bytes of JSON, and
/// [`MAX_ROUTE_HINTS`] hints) is about 10.7 KiB; a unit test keeps it under this limit.
pub const MAX_INVOICE_ADDRESS_LEN: usize = 16 * 1024;

/// Refuse a description over [`MAX_DESCRIPTION_BYTES`] (without echoing it).
pub fn check_description(description: Option<&str>) -> Result<(), String> {
    match description {
        Some(text) if text.len() > MAX_DESCRIPTION_BYTES => Err(format!(
            "description is {} bytes; the limit is {MAX_DESCRIPTION_BYTES}",
            text.len()
        )),
        _ => Ok(()),
    }
}

/// An invoice we issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub payee: Pubkey,
    #[serde(with = "hex_u64")]
    pub amount: u64,
    pub payment_hash: Hash32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Peers the payee has channels with (single-hop route hints).
    #[serde(default)]
    pub route_hints: Vec<Pubkey>,
    /// Only in our own records, never in the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preimage: Option<Hash32>,
    #[serde(default)]
    pub paid: bool,
}

impl Invoice {
    /// The shareable address: prefix + hex of the public fields.
    pub fn address(&self) -> String {
        let public = Invoice {
            preimage: None,
            paid: false,
            ..self.clone()
        };
        format!(
            "{INVOICE_ADDRESS_PREFIX}{}",
            hex::encode(serde_json::to_vec(&public).unwrap_or_default())
        )
    }

    /// Parse an address.
    pub fn parse_address(address: &str) -> Result<Self, String> {
        if address.len() > MAX_INVOICE_ADDRESS_LEN {
            return Err(format!(
                "invoice address is {} bytes; the limit is {MAX_INVOICE_ADDRESS_LEN}",
                address.len()
            ));
        }
        let body = address
            .strip_prefix(INVOICE_ADDRESS_PREFIX)
            .ok_or_else(|| format!("invoice must start with {INVOICE_ADDRESS_PREFIX}"))?;
        let bytes = hex::decode(body).map_err(|e| format!("invoice is not hex: {e}"))?;
        let invoice: Invoice =
            serde_json::from_slice(&bytes).map_err(|e| format!("malformed invoice: {e}"))?;
        if invoice.preimage.is_some() {
            return Err("an invoice address must not carry a preimage".into());
        }
        check_description(invoice.description.as_deref())?;
        if invoice.route_hints.len() > MAX_ROUTE_HINTS {
            return Err(format!(
                "invoice carries {} route hints; the limit is {MAX_ROUTE_HINTS}",
                invoice.route_hints.len()
            ));
        }
        Ok(invoice)
    }
}

/// Fiber's payment statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    Created,
    Inflight,
    Success,
    Failed,
}

/// An outgoing payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub payment_hash: Hash32,
    pub status: PaymentStatus,
    pub target: Pubkey,
    #[serde(with = "hex_u64")]
    pub amount: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preimage: Option<Hash32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keysend_preimage: Option<Hash32>,
    /// Hops still to try (first hop peers; the target itself for a direct attempt).
    #[serde(default)]
    pub candidates: Vec<Pubkey>,
    /// Why attempts failed.
    #[serde(default)]
    pub failures: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_error: Option<String>,
    /// Channel and TLC of the attempt in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<(Hash32, u64)>,
}

/// `send_payment` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendPaymentRequest {
    #[serde(default)]
    pub invoice: Option<String>,
    #[serde(default)]
    pub target_pubkey: Option<Pubkey>,
    #[serde(default, with = "dlp_chain::types::hex_u64_opt")]
    pub amount: Option<u64>,
    #[serde(default)]
    pub keysend: Option<bool>,
}

/// A hop forwards only what it receives, and only with time to claim upstream: the outgoing
/// amount may not exceed the incoming one (the difference is the hop's fee), and the outgoing
/// expiry must be in the future and at least `delta` blocks before the incoming one, so that a
/// preimage revealed downstream at the last moment can still be used upstream.
pub fn check_forward(
    incoming: &Tlc,
    amount: u64,
    expiry: u64,
    height: u64,
    delta: u64,
) -> Result<(), String> {
    if amount == 0 || amount > incoming.amount {
        return Err(format!(
            "asked to forward {amount}, received {}",
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
    pub(super) fn new_invoice(
        &mut self,
        amount: u64,
        description: Option<String>,
    ) -> Result<Invoice, String> {
        // Everything is checked before anything changes: an error reply means nothing was
        // persisted (not even the seeded-randomness counter).
        if amount == 0 {
            return Err("amount must be positive".into());
        }
        check_description(description.as_deref())?;
        let preimage = self.random32("invoice_preimage");
        let payment_hash = Hash32::digest(&preimage.0);
        let mut route_hints: Vec<Pubkey> = self
            .channels
            .iter()
            .filter(|(_, r)| r.state == ChannelState::ChannelReady)
            .filter_map(|(id, _)| self.peer_of(id))
            .collect();
        route_hints.sort();
        route_hints.dedup();
        route_hints.truncate(MAX_ROUTE_HINTS);
        let invoice = Invoice {
            payee: self.me,
            amount,
            payment_hash,
            description,
            route_hints,
            preimage: Some(preimage),
            paid: false,
        };
        self.invoices.insert(payment_hash, invoice.clone());
        self.fx.dirty_invoices.insert(payment_hash);
        Ok(invoice)
    }

    pub(super) fn send_payment(&mut self, request: SendPaymentRequest) -> Result<Payment, String> {
        let (target, amount, payment_hash, keysend_preimage, hints) =
            match (&request.invoice, request.target_pubkey) {
                (Some(address), None) => {
                    let invoice = Invoice::parse_address(address)?;
                    if request.amount.is_some_and(|a| a != invoice.amount) {
                        return Err("amount differs from the invoice's".into());
                    }
                    (
                        invoice.payee,
                        invoice.amount,
                        invoice.payment_hash,
                        None,
                        invoice.route_hints,
                    )
                }
                (None, Some(target)) => {
                    if request.keysend != Some(true) {
                        return Err("a payment without an invoice needs keysend: true".into());
                    }
                    let amount = request.amount.ok_or("keysend needs an amount")?;
                    // Checked here as well as below: the preimage draws (and persists) the
                    // seeded-randomness counter, and an error reply must persist nothing.
                    if target == self.me {
                        return Err("cannot pay ourselves".into());
                    }
                    if amount == 0 {
                        return Err("amount must be positive".into());
                    }
                    let preimage = self.random32("keysend_preimage");
                    (
                        target,
                        amount,
                        Hash32::digest(&preimage.0),
                        Some(preimage),
                        vec![],
                    )
                }
                _ => {
                    return Err(
                        "give either invoice or target_pubkey (with amount and keysend: true)"
                            .into(),
                    );
                }
            };
        if target == self.me {
            return Err("cannot pay ourselves".into());
        }
        if amount == 0 {
            return Err("amount must be positive".into());
        }
        if let Some(existing) = self.payments.get(&payment_hash)
            && existing.status != PaymentStatus::Failed
        {
            return Err(format!(
                "payment {payment_hash} already exists ({:?})",
                existing.status
            ));
        }
        let mut candidates = vec![target];
        for hop in hints {
            if hop != self.me && !candidates.contains(&hop) {
                candidates.push(hop);
            }
        }
        let mut peers: Vec<Pubkey> = self
            .channels
            .keys()
            .filter_map(|id| self.peer_of(id))
            .collect();
        peers.sort();
        for peer in peers {
            if !candidates.contains(&peer) {
                candidates.push(peer);
            }
        }
        let payment = Payment {
            payment_hash,
            status: PaymentStatus::Created,
            target,
            amount,
            preimage: None,
            keysend_preimage,
            candidates,
            failures: vec![],
            failed_error: None,
            attempt: None,
        };
        self.payments.insert(payment_hash, payment);
        self.fx.dirty_payments.insert(payment_hash);
        self.try_next_route(payment_hash);
        self.payments
            .get(&payment_hash)
            .cloned()
            .ok_or_else(|| "payment vanished".into())
    }

    fn set_payment_status(&mut self, hash: Hash32, status: PaymentStatus, reason: Option<String>) {
        if let Some(p) = self.payments.get_mut(&hash) {
            p.status = status;
            if status == PaymentStatus::Failed {
                p.failed_error = reason.clone();
            }
            self.fx.dirty_payments.insert(hash);
            self.fx.events.push(EventKind::PaymentUpdated {
                payment_hash: hash,
                status: format!("{status:?}"),
                reason,
            });
        }
    }

    /// Try the next route candidate; fail the payment when none is left.
    fn try_next_route(&mut self, hash: Hash32) {
        loop {
            let Some(payment) = self.payments.get_mut(&hash) else {
                return;
            };
            if payment.candidates.is_empty() {
                let reason = if payment.failures.is_empty() {
                    "no route".to_string()
                } else {
                    payment.failures.join("; ")
                };
                payment.attempt = None;
                self.set_payment_status(hash, PaymentStatus::Failed, Some(reason));
                return;
            }
            let hop = payment.candidates.remove(0);
            let (target, amount, keysend) =
                (payment.target, payment.amount, payment.keysend_preimage);
            self.fx.dirty_payments.insert(hash);
            let final_onion = Onion::Final {
                amount,
                keysend_preimage: keysend,
            };
            let delta = self.config.channel.tlc_expiry_delta;
            let (onion, expiry) = if hop == target {
                (final_onion, self.height + delta)
            } else {
                (
                    Onion::Forward {
                        next: target,
                        amount,
                        expiry: self.height + delta,
                        inner: Box::new(final_onion),
                    },
                    self.height + 2 * delta,
                )
            };
            match self.pick_channel(hop, amount) {
                Ok(channel_id) => {
                    match self.offer_tlc(
                        channel_id,
                        amount,
                        hash,
                        expiry,
                        onion,
                        TlcOrigin::Payment,
                    ) {
                        Ok(tlc_id) => {
                            if let Some(p) = self.payments.get_mut(&hash) {
                                p.attempt = Some((channel_id, tlc_id));
                            }
                            self.set_payment_status(hash, PaymentStatus::Inflight, None);
                            return;
                        }
                        Err(e) => self.record_failure(hash, e),
                    }
                }
                Err(e) => self.record_failure(hash, e),
            }
        }
    }

    fn record_failure(&mut self, hash: Hash32, reason: String) {
        if let Some(p) = self.payments.get_mut(&hash)
            && !p.failures.contains(&reason)
        {
            p.failures.push(reason);
        }
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

    /// Our TLC was removed by the peer: settle the payment or the forward it belongs to.
    pub(super) fn on_outgoing_tlc_resolved(
        &mut self,
        channel_id: Hash32,
        tlc: &Tlc,
        reason: &RemoveReason,
    ) {
        match (&tlc.origin, reason) {
            (Some(TlcOrigin::Payment), RemoveReason::Fulfill { preimage }) => {
                let Some(p) = self.payments.get_mut(&tlc.payment_hash) else {
                    return;
                };
                if p.status == PaymentStatus::Success {
                    return;
                }
                p.preimage = Some(*preimage);
                p.attempt = None;
                self.set_payment_status(tlc.payment_hash, PaymentStatus::Success, None);
            }
            (Some(TlcOrigin::Payment), RemoveReason::Fail { message }) => {
                // Only the live attempt's failure moves the payment on (a stale or repeated
                // failure must not start a second attempt next to a live one).
                let Some(p) = self.payments.get_mut(&tlc.payment_hash) else {
                    return;
                };
                if p.status != PaymentStatus::Inflight || p.attempt != Some((channel_id, tlc.id)) {
                    return;
                }
                p.attempt = None;
                self.record_failure(tlc.payment_hash, message.clone());
                self.try_next_route(tlc.payment_hash);
            }
            (Some(TlcOrigin::Forward { channel_id, tlc_id }), reason) => {
                if let RemoveReason::Fulfill { preimage } = reason {
                    self.preimages.insert(tlc.payment_hash, *preimage);
                    self.fx.preimages.push((tlc.payment_hash, *preimage));
                }
                self.remove_their_tlc(*channel_id, *tlc_id, reason.clone());
            }
            (None, _) => {}
        }
    }

    /// Act on the peer's TLCs that both current commitments include.
    pub(super) fn process_committed_incoming(&mut self, channel_id: Hash32) {
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
            if before != d.handled_incoming.len() || !todo.is_empty() {
                self.mark_dirty(channel_id);
            }
        }
        for tlc in todo {
            self.resolve_incoming(channel_id, tlc);
        }
    }

    fn resolve_incoming(&mut self, channel_id: Hash32, tlc: Tlc) {
        let fail = |message: String| RemoveReason::Fail { message };
        let decision = match &tlc.onion {
            Onion::Final {
                amount,
                keysend_preimage,
            } => {
                if *amount != tlc.amount {
                    Some(fail(format!(
                        "final amount {amount} differs from the TLC's {}",
                        tlc.amount
                    )))
                } else if tlc.expiry <= self.height {
                    Some(fail(format!(
                        "TLC expires at {}, the chain is at {}",
                        tlc.expiry, self.height
                    )))
                } else if let Some(preimage) = keysend_preimage {
                    if Hash32::digest(&preimage.0) == tlc.payment_hash {
                        Some(RemoveReason::Fulfill {
                            preimage: *preimage,
                        })
                    } else {
                        Some(fail("keysend preimage does not match".into()))
                    }
                } else {
                    match self.invoices.get_mut(&tlc.payment_hash) {
                        // A second payment of a paid invoice would pay twice: refuse it.
                        Some(invoice) if invoice.paid => Some(fail("invoice already paid".into())),
                        Some(invoice) if invoice.amount <= tlc.amount => {
                            let preimage = invoice.preimage;
                            invoice.paid = true;
                            self.fx.dirty_invoices.insert(tlc.payment_hash);
                            preimage.map(|preimage| RemoveReason::Fulfill { preimage })
                        }
                        Some(invoice) => Some(fail(format!(
                            "amount {} below the invoice's {}",
                            tlc.amount, invoice.amount
                        ))),
                        None => Some(fail("unknown payment hash".into())),
                    }
                }
            }
            Onion::Forward {
                next,
                amount,
                expiry,
                inner,
            } => {
                let delta = self.config.channel.tlc_expiry_delta;
                let forwarded = check_forward(&tlc, *amount, *expiry, self.height, delta)
                    .and_then(|()| self.pick_channel(*next, *amount))
                    .and_then(|out| {
                        self.offer_tlc(
                            out,
                            *amount,
                            tlc.payment_hash,
                            *expiry,
                            (**inner).clone(),
                            TlcOrigin::Forward {
                                channel_id,
                                tlc_id: tlc.id,
                            },
                        )
                    });
                match forwarded {
                    Ok(_) => None,
                    Err(e) => Some(fail(format!("cannot forward to {next}: {e}"))),
                }
            }
        };
        if let Some(reason) = decision {
            self.remove_their_tlc(channel_id, tlc.id, reason);
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
            onion: Onion::Final {
                amount,
                keysend_preimage: None,
            },
            origin: None,
        }
    }

    #[test]
    fn a_hop_never_forwards_more_or_later_than_it_received() {
        let tlc = incoming(1_000, 140);
        assert!(check_forward(&tlc, 1_000, 120, 100, 20).is_ok());
        assert!(
            check_forward(&tlc, 999, 110, 100, 20).is_ok(),
            "a fee is fine"
        );
        assert!(
            check_forward(&tlc, 1_001, 120, 100, 20).is_err(),
            "draining the hop"
        );
        assert!(
            check_forward(&tlc, 1_000, 121, 100, 20).is_err(),
            "no time to claim upstream"
        );
        assert!(
            check_forward(&tlc, 1_000, 100, 100, 20).is_err(),
            "already expired"
        );
        assert!(check_forward(&tlc, 0, 120, 100, 20).is_err());
    }

    fn invoice(description: Option<String>, hints: usize) -> Invoice {
        Invoice {
            payee: Pubkey([2; 33]),
            amount: u64::MAX,
            payment_hash: Hash32([0xff; 32]),
            description,
            route_hints: (0..hints)
                .map(|i| Pubkey([u8::try_from(i % 256).unwrap_or(0); 33]))
                .collect(),
            preimage: None,
            paid: false,
        }
    }

    #[test]
    fn the_largest_invoice_we_issue_fits_the_address_limit_and_parses_back() {
        // Control characters are escaped to six bytes of JSON each: the worst case.
        let worst = invoice(Some("\u{1}".repeat(MAX_DESCRIPTION_BYTES)), MAX_ROUTE_HINTS);
        let address = worst.address();
        assert!(
            address.len() <= MAX_INVOICE_ADDRESS_LEN,
            "{} > {MAX_INVOICE_ADDRESS_LEN}",
            address.len()
        );
        assert_eq!(Invoice::parse_address(&address), Ok(worst));
    }

    #[test]
    fn oversize_invoices_are_refused_without_echoing_them() {
        let long = invoice(Some("x".repeat(MAX_DESCRIPTION_BYTES + 1)), 0);
        let err = Invoice::parse_address(&long.address()).expect_err("long description");
        assert!(err.contains("640 bytes"), "{err}");
        let hints = invoice(None, MAX_ROUTE_HINTS + 1);
        assert!(Invoice::parse_address(&hints.address()).is_err());
        let huge = format!(
            "{INVOICE_ADDRESS_PREFIX}{}",
            "0".repeat(MAX_INVOICE_ADDRESS_LEN)
        );
        let err = Invoice::parse_address(&huge).expect_err("huge address");
        assert!(err.len() < 100, "the error echoes the input: {err}");
        assert!(
            check_description(Some(&"é".repeat(320))).is_err(),
            "640 bytes"
        );
        assert!(check_description(Some(&"x".repeat(MAX_DESCRIPTION_BYTES))).is_ok());
    }
}
