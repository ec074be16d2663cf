//! Invoices, outgoing payments, and what happens to TLCs once they are irrevocably committed:
//! the payee fulfils, a hop forwards, a payer learns the outcome.
//!
//! Routing (`graph::pathfind`): the cheapest route by fee, then hops, over our own usable
//! channels (what we can send now), the public channels of the gossip graph (enabled
//! directions, their fee rates and expiry deltas) and the invoice's route hints (the payee's
//! channel peers, for channels the graph does not know yet). Each hop gets its instructions in
//! an encrypted onion layer (`crate::onion`). When a hop fails the TLC naming a channel, the
//! payment routes again avoiding that channel, at most [`MAX_PAYMENT_ATTEMPTS`] times; a
//! failure from the payee itself (unknown or paid invoice) ends the payment.

use dlp_chain::{Hash32, Pubkey, hex_u64};
use serde::{Deserialize, Serialize};

use super::Core;
use crate::channel::{Tlc, TlcOrigin};
use crate::channel_record::ChannelState;
use crate::events::EventKind;
use crate::graph::pathfind::{Edge, RouteHop, RouteRequest, find_route};
use crate::onion::{HopPayload, OnionPacket, peel};
use crate::wire::RemoveReason;

pub(crate) use dlp_node_api::limits::MAX_PAYMENT_ATTEMPTS;
pub(crate) use dlp_node_api::payments::PaymentStatus;
/// Blocks from now the first TLC of a route may expire at most, unless the payer says
/// (`tlc_expiry_limit`): 20 hops of the default 20-block delta fit four times over.
pub(crate) const DEFAULT_TLC_EXPIRY_LIMIT: u64 = 2_016;

/// Prefix of invoice addresses.
pub(crate) const INVOICE_ADDRESS_PREFIX: &str = "dlpinv1";

/// Longest invoice description, in bytes of UTF-8: BOLT 11's limit (its `d` field's 10-bit
/// length counts 5-bit groups: 1023 * 5 / 8 = 639 bytes). Every invoice is stored and every
/// backup carries it, so free text must be small.
pub(crate) const MAX_DESCRIPTION_BYTES: usize = 639;
/// Most route hints an invoice carries (the payee's channel peers, first in key order). A
/// payment keeps them as route candidates in its record.
pub(crate) const MAX_ROUTE_HINTS: usize = 16;
/// Longest invoice address `send_payment` accepts, in bytes. The largest invoice this node can
/// issue (a description of 639 control characters, each escaped to six bytes of JSON, and
/// [`MAX_ROUTE_HINTS`] hints) is about 10.7 KiB; a unit test keeps it under this limit.
pub(crate) const MAX_INVOICE_ADDRESS_LEN: usize = 16 * 1024;

/// Refuse a description over [`MAX_DESCRIPTION_BYTES`] (without echoing it).
pub(crate) fn check_description(description: Option<&str>) -> Result<(), String> {
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
pub(crate) struct Invoice {
    pub(crate) payee: Pubkey,
    #[serde(with = "hex_u64")]
    pub(crate) amount: u64,
    pub(crate) payment_hash: Hash32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// Peers the payee has channels with (single-hop route hints).
    #[serde(default)]
    pub(crate) route_hints: Vec<Pubkey>,
    /// Only in our own records, never in the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preimage: Option<Hash32>,
    #[serde(default)]
    pub(crate) paid: bool,
}

impl Invoice {
    /// The shareable address: prefix + hex of the public fields.
    pub(crate) fn address(&self) -> String {
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
    pub(crate) fn parse_address(address: &str) -> Result<Self, String> {
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

/// An outgoing payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Payment {
    pub(crate) payment_hash: Hash32,
    pub(crate) status: PaymentStatus,
    pub(crate) target: Pubkey,
    #[serde(with = "hex_u64")]
    pub(crate) amount: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) preimage: Option<Hash32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) keysend_preimage: Option<Hash32>,
    /// The payee's channel peers from the invoice (used as route hints on every attempt).
    #[serde(default)]
    pub(crate) route_hints: Vec<Pubkey>,
    /// Channels a hop failed this payment on: later attempts route around them.
    #[serde(default)]
    pub(crate) avoid: Vec<Hash32>,
    /// Routes tried so far.
    #[serde(default)]
    pub(crate) attempts: u32,
    /// Most fees the payer pays in all.
    #[serde(with = "hex_u64", default)]
    pub(crate) max_fee_amount: u64,
    /// Most blocks from the attempt until its first TLC expires.
    #[serde(with = "hex_u64", default)]
    pub(crate) tlc_expiry_limit: u64,
    /// The route of the attempt in flight (or the last one), hop 0 our peer.
    #[serde(default)]
    pub(crate) route: Vec<RouteHop>,
    /// Fees of that route.
    #[serde(with = "hex_u64", default)]
    pub(crate) fee: u64,
    /// Why attempts failed.
    #[serde(default)]
    pub(crate) failures: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failed_error: Option<String>,
    /// Channel and TLC of the attempt in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) attempt: Option<(Hash32, u64)>,
}

/// `send_payment` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendPaymentRequest {
    #[serde(default)]
    pub(crate) invoice: Option<String>,
    #[serde(default)]
    pub(crate) target_pubkey: Option<Pubkey>,
    #[serde(default, with = "dlp_chain::types::hex_u64_opt")]
    pub(crate) amount: Option<u64>,
    #[serde(default)]
    pub(crate) keysend: Option<bool>,
    /// Most fees to pay in all (Fiber's name); default: the amount itself.
    #[serde(default, with = "dlp_chain::types::hex_u64_opt")]
    pub(crate) max_fee_amount: Option<u64>,
    /// Most blocks until the first TLC expires (Fiber's name); default
    /// [`DEFAULT_TLC_EXPIRY_LIMIT`].
    #[serde(default, with = "dlp_chain::types::hex_u64_opt")]
    pub(crate) tlc_expiry_limit: Option<u64>,
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
        let mut route_hints: Vec<Pubkey> = hints.into_iter().filter(|h| *h != self.me).collect();
        route_hints.sort();
        route_hints.dedup();
        let payment = Payment {
            payment_hash,
            status: PaymentStatus::Created,
            target,
            amount,
            preimage: None,
            keysend_preimage,
            route_hints,
            avoid: vec![],
            attempts: 0,
            max_fee_amount: request.max_fee_amount.unwrap_or(amount),
            tlc_expiry_limit: request.tlc_expiry_limit.unwrap_or(DEFAULT_TLC_EXPIRY_LIMIT),
            route: vec![],
            fee: 0,
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
                status,
                reason,
            });
        }
    }

    /// Route the payment again (avoiding every channel that failed it) and offer its first
    /// TLC; fail the payment when there is no route or the attempts are used up.
    fn try_next_route(&mut self, hash: Hash32) {
        loop {
            let Some(payment) = self.payments.get(&hash).cloned() else {
                return;
            };
            if payment.attempts >= MAX_PAYMENT_ATTEMPTS {
                let reason = format!(
                    "gave up after {} routes: {}",
                    payment.attempts,
                    payment.failures.join("; ")
                );
                self.end_attempts(hash, reason);
                return;
            }
            let request = RouteRequest {
                source: self.me,
                target: payment.target,
                amount: payment.amount,
                final_expiry_delta: self.config.channel.tlc_expiry_delta,
                max_fee: payment.max_fee_amount,
                max_expiry_delta: payment.tlc_expiry_limit,
            };
            let (edges, unusable) = self.route_edges(&payment);
            let route = match find_route(&edges, &request) {
                Ok(route) => route,
                Err(e) => {
                    // Everything that explains it: earlier attempts, the search, and why our
                    // own channels could not be used (a Stale one says so).
                    let reason = payment
                        .failures
                        .iter()
                        .cloned()
                        .chain([e.to_string()])
                        .chain(unusable)
                        .collect::<Vec<_>>()
                        .join("; ");
                    self.end_attempts(hash, reason);
                    return;
                }
            };
            let Some(first) = route.hops.first().cloned() else {
                self.end_attempts(hash, "empty route".into());
                return;
            };
            let onion = match self.build_onion(&payment, &route.hops) {
                // Tests corrupt an onion here to see a hop fail it back (failpoint
                // `payment.corrupt_onion`: the payer flips the onion's last byte).
                Ok(mut onion) if self.failpoints.check("payment.corrupt_onion").is_err() => {
                    if let Some(last) = onion.0.last_mut() {
                        *last ^= 1;
                    }
                    onion
                }
                Ok(onion) => onion,
                Err(e) => {
                    self.end_attempts(hash, format!("cannot build the onion: {e}"));
                    return;
                }
            };
            if let Some(p) = self.payments.get_mut(&hash) {
                p.attempts += 1;
                p.route = route.hops.clone();
                p.fee = route.fee;
            }
            self.fx.dirty_payments.insert(hash);
            let offered = self.offer_tlc(
                first.channel_id,
                first.amount,
                hash,
                self.height + first.expiry_delta,
                onion,
                TlcOrigin::Payment,
            );
            match offered {
                Ok(tlc_id) => {
                    if let Some(p) = self.payments.get_mut(&hash) {
                        p.attempt = Some((first.channel_id, tlc_id));
                    }
                    self.set_payment_status(hash, PaymentStatus::Inflight, None);
                    return;
                }
                Err(e) => {
                    self.record_failure(hash, e);
                    if let Some(p) = self.payments.get_mut(&hash) {
                        p.avoid.push(first.channel_id);
                    }
                }
            }
        }
    }

    fn end_attempts(&mut self, hash: Hash32, reason: String) {
        if let Some(p) = self.payments.get_mut(&hash) {
            p.attempt = None;
        }
        self.set_payment_status(hash, PaymentStatus::Failed, Some(reason));
    }

    /// Every channel direction the payment may use: our own usable channels (with what we can
    /// send now), the graph's enabled directions between other nodes, and the invoice's hints
    /// for payee channels the graph does not have; never a channel in `payment.avoid`. Also
    /// why each of our open channels that is left out cannot be used (for the failure reason).
    fn route_edges(&self, payment: &Payment) -> (Vec<Edge>, Vec<String>) {
        let avoid = |id: &Hash32| payment.avoid.contains(id);
        let mut edges = Vec::new();
        let mut unusable = Vec::new();
        for (id, record) in &self.channels {
            if avoid(id) || matches!(record.state, ChannelState::Closed(_)) {
                continue;
            }
            if let Err(why) = self.usable_for_payments(id) {
                unusable.push(why);
                continue;
            }
            let (Some(peer), Some(capacity)) = (
                self.peer_of(id),
                self.data(id)
                    .and_then(|d| d.latest_balances().ok())
                    .map(|b| b.local),
            ) else {
                continue;
            };
            edges.push(Edge {
                channel_id: *id,
                from: self.me,
                to: peer,
                capacity,
                fee_rate: 0,
                tlc_expiry_delta: 0,
            });
        }
        for channel in self.graph.channels() {
            let a = &channel.announcement;
            // Our own channels are judged by what we know, not by gossip.
            if avoid(&a.channel_id) || a.side_of(&self.me).is_some() {
                continue;
            }
            for (side, (from, to)) in [(a.node_1, a.node_2), (a.node_2, a.node_1)]
                .into_iter()
                .enumerate()
            {
                if let Some(update) = channel.updates[side].as_ref().filter(|u| u.enabled) {
                    edges.push(Edge {
                        channel_id: a.channel_id,
                        from,
                        to,
                        capacity: a.capacity,
                        fee_rate: update.fee_rate,
                        tlc_expiry_delta: update.tlc_expiry_delta,
                    });
                }
            }
        }
        for hint in &payment.route_hints {
            // Only for a channel nobody told us of: one the graph (or we) know is judged by
            // what is known of it, even when that is "avoid" or "disabled".
            let known = self.graph.channels().any(|c| {
                let a = &c.announcement;
                a.side_of(hint).is_some() && a.side_of(&payment.target).is_some()
            }) || (*hint == self.me
                && self
                    .channels
                    .keys()
                    .any(|id| self.peer_of(id) == Some(payment.target)));
            let id = hint_channel_id(hint, &payment.target);
            if !known && !avoid(&id) && *hint != payment.target {
                edges.push(Edge {
                    channel_id: id,
                    from: *hint,
                    to: payment.target,
                    capacity: u64::MAX,
                    fee_rate: 0,
                    tlc_expiry_delta: self.config.channel.tlc_expiry_delta,
                });
            }
        }
        (edges, unusable)
    }

    /// The onion for `hops`: each forwarding hop learns the next hop, its channel, amount and
    /// expiry; the payee learns the amount (and a keysend preimage).
    fn build_onion(
        &mut self,
        payment: &Payment,
        hops: &[RouteHop],
    ) -> Result<OnionPacket, crate::onion::OnionError> {
        let mut layers = Vec::with_capacity(hops.len());
        for (i, hop) in hops.iter().enumerate() {
            let payload = match hops.get(i + 1) {
                Some(next) => HopPayload::Forward {
                    next: next.node,
                    channel_id: next.channel_id,
                    amount: next.amount,
                    expiry: self.height + next.expiry_delta,
                },
                None => HopPayload::Final {
                    amount: payment.amount,
                    keysend_preimage: payment.keysend_preimage,
                },
            };
            layers.push((hop.node, payload));
        }
        let secrets: Vec<Hash32> = (0..layers.len())
            .map(|_| self.random32("onion_ephemeral"))
            .collect();
        crate::onion::build(&layers, |i| secrets[i])
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
            (
                Some(TlcOrigin::Payment),
                RemoveReason::Fail {
                    message,
                    failed_channel,
                },
            ) => {
                // Only the live attempt's failure moves the payment on (a stale or repeated
                // failure must not start a second attempt next to a live one).
                let Some(p) = self.payments.get_mut(&tlc.payment_hash) else {
                    return;
                };
                if p.status != PaymentStatus::Inflight || p.attempt != Some((channel_id, tlc.id)) {
                    return;
                }
                p.attempt = None;
                let failed_channel = *failed_channel;
                if let Some(channel) = failed_channel {
                    p.avoid.push(channel);
                }
                self.record_failure(tlc.payment_hash, message.clone());
                match failed_channel {
                    // A hop could not use a channel: route around it.
                    Some(_) => self.try_next_route(tlc.payment_hash),
                    // The payee refused: another route would be refused too.
                    None => self.end_attempts(tlc.payment_hash, message.clone()),
                }
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
        let fail = |message: String, failed_channel: Option<Hash32>| RemoveReason::Fail {
            message,
            failed_channel,
        };
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
            ) => {
                if amount != tlc.amount {
                    Some(fail(
                        format!(
                            "final amount {amount} differs from the TLC's {}",
                            tlc.amount
                        ),
                        None,
                    ))
                } else if tlc.expiry <= self.height {
                    Some(fail(
                        format!(
                            "TLC expires at {}, the chain is at {}",
                            tlc.expiry, self.height
                        ),
                        None,
                    ))
                } else if let Some(preimage) = keysend_preimage {
                    if Hash32::digest(&preimage.0) == tlc.payment_hash {
                        Some(RemoveReason::Fulfill { preimage })
                    } else {
                        Some(fail("keysend preimage does not match".into(), None))
                    }
                } else {
                    match self.invoices.get_mut(&tlc.payment_hash) {
                        // A second payment of a paid invoice would pay twice: refuse it.
                        Some(invoice) if invoice.paid => {
                            Some(fail("invoice already paid".into(), None))
                        }
                        Some(invoice) if invoice.amount <= tlc.amount => {
                            let preimage = invoice.preimage;
                            invoice.paid = true;
                            self.fx.dirty_invoices.insert(tlc.payment_hash);
                            preimage.map(|preimage| RemoveReason::Fulfill { preimage })
                        }
                        Some(invoice) => Some(fail(
                            format!(
                                "amount {} below the invoice's {}",
                                tlc.amount, invoice.amount
                            ),
                            None,
                        )),
                        None => Some(fail("unknown payment hash".into(), None)),
                    }
                }
            }
            (
                HopPayload::Forward {
                    next,
                    channel_id: out_channel,
                    amount,
                    expiry,
                },
                Some(inner),
            ) => {
                let delta = self.config.channel.tlc_expiry_delta;
                let fee_rate = self.config.channel.fee_rate;
                let forwarded = check_forward(&tlc, amount, expiry, self.height, delta, fee_rate)
                    .and_then(|()| self.forward_channel(out_channel, next, amount))
                    .and_then(|out| {
                        self.offer_tlc(
                            out,
                            amount,
                            tlc.payment_hash,
                            expiry,
                            inner,
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
}

/// The id a route hint's edge (payee peer -> payee, a channel the graph does not know) goes by
/// in a route, in its onion and in `Payment::avoid`.
fn hint_channel_id(hint: &Pubkey, payee: &Pubkey) -> Hash32 {
    let mut data = b"dlp/route-hint/v1".to_vec();
    data.extend_from_slice(&hint.0);
    data.extend_from_slice(&payee.0);
    Hash32::digest(&data)
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
