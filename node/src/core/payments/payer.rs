//! The payer: outgoing payments, their routes and their retries.
//!
//! Routing (`graph::pathfind`): the cheapest route by fee, then hops, over our own usable
//! channels (what we can send now), the public channels of the gossip graph (enabled
//! directions, their fee rates and expiry deltas) and the invoice's route hints (the payee's
//! channel peers, for channels the graph does not know yet). Each hop gets its instructions in
//! an encrypted onion layer (`crate::onion`). When a hop fails the TLC naming a channel, the
//! payment routes again avoiding that channel, at most [`MAX_PAYMENT_ATTEMPTS`] times; a
//! failure from the payee itself (unknown or paid invoice) ends the payment.
//!
//! Those decisions are made on the payment's record alone, in `attempts.rs`; this file carries
//! them out (route search, onion, offer) and announces each change of status.

use dlp_chain::{Hash32, Pubkey, hex_u64};
use serde::{Deserialize, Serialize};

use super::Invoice;
use super::attempts::{Attempts, Fact, Intent};
use crate::channel::{Tlc, TlcOrigin};
use crate::channel_record::ChannelState;
use crate::core::Core;
use crate::events::EventKind;
use crate::graph::pathfind::{Edge, Route, RouteHop, RouteRequest, find_route};
use crate::onion::{HopPayload, OnionPacket};
use crate::wire::RemoveReason;

pub(crate) use dlp_node_api::limits::MAX_PAYMENT_ATTEMPTS;
pub(crate) use dlp_node_api::payments::PaymentStatus;
/// Blocks from now the first TLC of a route may expire at most, unless the payer says
/// (`tlc_expiry_limit`): 20 hops of the default 20-block delta fit four times over.
pub(crate) const DEFAULT_TLC_EXPIRY_LIMIT: u64 = 2_016;

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

impl Core {
    pub(in crate::core) fn send_payment(
        &mut self,
        request: SendPaymentRequest,
    ) -> Result<Payment, String> {
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
        if let Some(existing) = self.payments.outgoing.get(&payment_hash)
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
        self.payments.outgoing.insert(payment_hash, payment);
        self.fx.dirty_payments.insert(payment_hash);
        self.drive_payment(payment_hash, Fact::Created);
        self.payments
            .outgoing
            .get(&payment_hash)
            .cloned()
            .ok_or_else(|| "payment vanished".into())
    }

    /// Carry out the payer's decisions ([`Attempts`]) for payment `hash`, starting from `fact`,
    /// until it waits for a TLC's outcome or ends: search routes, build onions, offer TLCs, and
    /// announce each change of status.
    fn drive_payment(&mut self, hash: Hash32, fact: Fact) {
        let mut fact = fact;
        loop {
            let Some(payment) = self.payments.outgoing.get_mut(&hash) else {
                return;
            };
            fact = match Attempts::of(payment).on(fact) {
                Intent::FindRoute { avoid } => {
                    let payment = payment.clone();
                    self.find_payment_route(&payment, &avoid)
                }
                Intent::Offer { first, route } => {
                    let payment = payment.clone();
                    self.offer_attempt(&payment, first, route)
                }
                Intent::AwaitOutcome | Intent::Succeed => return self.announce_payment(hash, None),
                Intent::Fail { reason } => return self.announce_payment(hash, Some(reason)),
                Intent::Ignore => return,
            };
        }
    }

    /// The payment's record changed to its current status (`reason`: why it failed).
    fn announce_payment(&mut self, hash: Hash32, reason: Option<String>) {
        if let Some(p) = self.payments.outgoing.get(&hash) {
            self.fx.dirty_payments.insert(hash);
            self.fx.events.push(EventKind::PaymentUpdated {
                payment_hash: hash,
                status: p.status,
                reason,
            });
        }
    }

    /// Search a route for `payment` that avoids `avoid`.
    fn find_payment_route(&self, payment: &Payment, avoid: &[Hash32]) -> Fact {
        let request = RouteRequest {
            source: self.me,
            target: payment.target,
            amount: payment.amount,
            final_expiry_delta: self.config.channel.tlc_expiry_delta,
            max_fee: payment.max_fee_amount,
            max_expiry_delta: payment.tlc_expiry_limit,
        };
        let (edges, unusable) = self.route_edges(payment, avoid);
        match find_route(&edges, &request) {
            Ok(route) => Fact::RouteFound(route),
            Err(e) => Fact::NoRoute {
                search: e.to_string(),
                unusable,
            },
        }
    }

    /// Build the onion for `route` and offer its first TLC (`first`) on our channel.
    fn offer_attempt(&mut self, payment: &Payment, first: RouteHop, route: Route) -> Fact {
        let onion = match self.build_onion(payment, &route.hops) {
            // Tests corrupt an onion here to see a hop fail it back (failpoint
            // `payment.corrupt_onion`: the payer flips the onion's last byte).
            Ok(mut onion) if self.failpoints.check("payment.corrupt_onion").is_err() => {
                if let Some(last) = onion.0.last_mut() {
                    *last ^= 1;
                }
                onion
            }
            Ok(onion) => onion,
            Err(e) => return Fact::OnionFailed(e.to_string()),
        };
        let offered = self.offer_tlc(
            first.channel_id,
            first.amount,
            payment.payment_hash,
            self.height + first.expiry_delta,
            onion,
            TlcOrigin::Payment,
        );
        match offered {
            Ok(tlc_id) => Fact::Offered {
                route,
                channel_id: first.channel_id,
                tlc_id,
            },
            Err(reason) => Fact::OfferRefused {
                route,
                channel_id: first.channel_id,
                reason,
            },
        }
    }

    /// Every channel direction the payment may use: our own usable channels (with what we can
    /// send now), the graph's enabled directions between other nodes, and the invoice's hints
    /// for payee channels the graph does not have; never a channel in `avoid`. Also why each
    /// of our open channels that is left out cannot be used (for the failure reason).
    fn route_edges(&self, payment: &Payment, avoid: &[Hash32]) -> (Vec<Edge>, Vec<String>) {
        let avoid = |id: &Hash32| avoid.contains(id);
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

    /// Our TLC of a payment attempt was removed by the peer: the payment succeeds, routes
    /// again around the channel a hop named, or fails.
    pub(super) fn on_payment_tlc_resolved(
        &mut self,
        channel_id: Hash32,
        tlc: &Tlc,
        reason: &RemoveReason,
    ) {
        let fact = match reason {
            RemoveReason::Fulfill { preimage } => Fact::TlcFulfilled {
                preimage: *preimage,
            },
            RemoveReason::Fail {
                message,
                failed_channel,
            } => Fact::TlcFailed {
                channel_id,
                tlc_id: tlc.id,
                failed_channel: *failed_channel,
                message: message.clone(),
            },
        };
        self.drive_payment(tlc.payment_hash, fact);
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
