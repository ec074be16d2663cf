//! The payer's decisions, made on a payment's record alone.
//!
//! A payment moves through attempts: find a route, offer its first TLC, wait for the TLC's
//! outcome, and on a failure that names a channel route again around it. What happens next is
//! decided here, by [`Attempts`], from facts the core observed ([`Fact`]: a route found or not,
//! a TLC offered or refused, a TLC fulfilled or failed) and returned as what the core must do
//! ([`Intent`]: search a route avoiding these channels, offer this route, announce the outcome).
//! The record's own fields (status, attempts, channels to avoid, failures, the live attempt)
//! change here and nowhere else; the core owns everything outside the record (channels, graph,
//! onions, events, persistence). So the rules are unit-tested without a core:
//! - a hop's failure naming a channel routes again, avoiding every channel that failed;
//! - a failure from the payee ends the payment (another route would be refused too);
//! - at most [`MAX_PAYMENT_ATTEMPTS`] routes are tried;
//! - no route ends the payment with everything that explains it;
//! - only the live attempt's failure counts; a fulfilled TLC is a success, once.

use dlp_chain::Hash32;

use super::payer::{MAX_PAYMENT_ATTEMPTS, Payment, PaymentStatus};
use crate::graph::pathfind::{Route, RouteHop};

/// What the core observed about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Fact {
    /// The payment was just created.
    Created,
    /// The route search found `route`.
    RouteFound(Route),
    /// The route search found nothing: what it said, and why each of our own channels that was
    /// left out could not be used.
    NoRoute {
        search: String,
        unusable: Vec<String>,
    },
    /// The onion for the route could not be built.
    OnionFailed(String),
    /// The route's first TLC was offered on our channel `channel_id` as TLC `tlc_id`.
    Offered {
        route: Route,
        channel_id: Hash32,
        tlc_id: u64,
    },
    /// Our channel `channel_id` could not take the route's first TLC.
    OfferRefused {
        route: Route,
        channel_id: Hash32,
        reason: String,
    },
    /// The peer failed our TLC `tlc_id` on `channel_id`. `failed_channel` names the channel a
    /// hop could not use; `None` when the payee itself refused.
    TlcFailed {
        channel_id: Hash32,
        tlc_id: u64,
        failed_channel: Option<Hash32>,
        message: String,
    },
    /// The peer fulfilled our TLC with `preimage` (off chain, or we learned it on chain).
    TlcFulfilled { preimage: Hash32 },
}

/// What the core must do next for a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Intent {
    /// Search a route that avoids these channels.
    FindRoute { avoid: Vec<Hash32> },
    /// Build the onion for `route` and offer its first TLC (`first`, hop 0 of the route).
    Offer { first: RouteHop, route: Route },
    /// An attempt is in flight (the payment is `Inflight`): announce it, wait for its outcome.
    AwaitOutcome,
    /// The payment failed (it is `Failed`, with this reason): announce it.
    Fail { reason: String },
    /// The payment succeeded (it is `Success`, with its preimage): announce it.
    Succeed,
    /// Nothing changed: the outcome of an attempt that is no longer live, or a repeated one.
    Ignore,
}

/// The payer's decisions for one payment: [`Attempts::on`] applies a fact to the record and
/// says what the core must do next.
#[derive(Debug)]
pub(super) struct Attempts<'a> {
    payment: &'a mut Payment,
}

impl<'a> Attempts<'a> {
    /// The decisions for `payment`.
    pub(super) fn of(payment: &'a mut Payment) -> Self {
        Self { payment }
    }

    /// Apply `fact` to the payment's record and return what the core must do next.
    pub(super) fn on(self, fact: Fact) -> Intent {
        let p = self.payment;
        match fact {
            Fact::Created => route_again(p),
            Fact::RouteFound(route) => match route.hops.first().cloned() {
                Some(first) => Intent::Offer { first, route },
                None => fail(p, "empty route".into()),
            },
            Fact::NoRoute { search, unusable } => {
                // Everything that explains it: earlier attempts, the search, and why our own
                // channels could not be used (a Stale one says so).
                let reason = p
                    .failures
                    .iter()
                    .cloned()
                    .chain([search])
                    .chain(unusable)
                    .collect::<Vec<_>>()
                    .join("; ");
                fail(p, reason)
            }
            Fact::OnionFailed(error) => fail(p, format!("cannot build the onion: {error}")),
            Fact::Offered {
                route,
                channel_id,
                tlc_id,
            } => {
                count_attempt(p, route);
                p.attempt = Some((channel_id, tlc_id));
                p.status = PaymentStatus::Inflight;
                Intent::AwaitOutcome
            }
            Fact::OfferRefused {
                route,
                channel_id,
                reason,
            } => {
                count_attempt(p, route);
                record_failure(p, reason);
                p.avoid.push(channel_id);
                route_again(p)
            }
            Fact::TlcFailed {
                channel_id,
                tlc_id,
                failed_channel,
                message,
            } => {
                // Only the live attempt's failure moves the payment on (a stale or repeated
                // failure must not start a second attempt next to a live one).
                if p.status != PaymentStatus::Inflight || p.attempt != Some((channel_id, tlc_id)) {
                    return Intent::Ignore;
                }
                p.attempt = None;
                record_failure(p, message.clone());
                match failed_channel {
                    // A hop could not use a channel: route around it.
                    Some(channel) => {
                        p.avoid.push(channel);
                        route_again(p)
                    }
                    // The payee refused: another route would be refused too.
                    None => fail(p, message),
                }
            }
            Fact::TlcFulfilled { preimage } => {
                if p.status == PaymentStatus::Success {
                    return Intent::Ignore;
                }
                p.preimage = Some(preimage);
                p.attempt = None;
                p.status = PaymentStatus::Success;
                Intent::Succeed
            }
        }
    }
}

/// Route again around every channel that failed, unless the attempts are used up.
fn route_again(p: &mut Payment) -> Intent {
    if p.attempts >= MAX_PAYMENT_ATTEMPTS {
        let reason = format!(
            "gave up after {} routes: {}",
            p.attempts,
            p.failures.join("; ")
        );
        return fail(p, reason);
    }
    Intent::FindRoute {
        avoid: p.avoid.clone(),
    }
}

/// A route was tried (its first TLC offered, whether or not our channel took it).
fn count_attempt(p: &mut Payment, route: Route) {
    p.attempts += 1;
    p.route = route.hops;
    p.fee = route.fee;
}

fn record_failure(p: &mut Payment, reason: String) {
    if !p.failures.contains(&reason) {
        p.failures.push(reason);
    }
}

fn fail(p: &mut Payment, reason: String) -> Intent {
    p.attempt = None;
    p.status = PaymentStatus::Failed;
    p.failed_error = Some(reason.clone());
    Intent::Fail { reason }
}

#[cfg(test)]
mod tests {
    use dlp_chain::Pubkey;

    use super::*;

    fn payment() -> Payment {
        Payment {
            payment_hash: Hash32([7; 32]),
            status: PaymentStatus::Created,
            target: Pubkey([3; 33]),
            amount: 1_000,
            preimage: None,
            keysend_preimage: None,
            route_hints: vec![],
            avoid: vec![],
            attempts: 0,
            max_fee_amount: 1_000,
            tlc_expiry_limit: 2_016,
            route: vec![],
            fee: 0,
            failures: vec![],
            failed_error: None,
            attempt: None,
        }
    }

    fn channel(n: u8) -> Hash32 {
        Hash32([n; 32])
    }

    /// A two-hop route: our channel `first` to a hop, then `second` to the payee.
    fn route(first: u8, second: u8) -> Route {
        Route {
            hops: vec![
                RouteHop {
                    node: Pubkey([2; 33]),
                    channel_id: channel(first),
                    amount: 1_001,
                    expiry_delta: 40,
                },
                RouteHop {
                    node: Pubkey([3; 33]),
                    channel_id: channel(second),
                    amount: 1_000,
                    expiry_delta: 20,
                },
            ],
            fee: 1,
        }
    }

    /// From `fact` (which must lead to a route search) to a live TLC `tlc_id` over `route`.
    fn start_attempt(p: &mut Payment, fact: Fact, route: Route, tlc_id: u64) -> (Hash32, u64) {
        let intent = Attempts::of(p).on(fact);
        assert_eq!(
            intent,
            Intent::FindRoute {
                avoid: p.avoid.clone(),
            }
        );
        let first = route.hops[0].clone();
        assert_eq!(
            Attempts::of(p).on(Fact::RouteFound(route.clone())),
            Intent::Offer {
                first: first.clone(),
                route: route.clone(),
            }
        );
        let offered = Fact::Offered {
            route,
            channel_id: first.channel_id,
            tlc_id,
        };
        assert_eq!(Attempts::of(p).on(offered), Intent::AwaitOutcome);
        assert_eq!(p.status, PaymentStatus::Inflight);
        (first.channel_id, tlc_id)
    }

    fn hop_failed(on: (Hash32, u64), failed_channel: Option<Hash32>, message: &str) -> Fact {
        Fact::TlcFailed {
            channel_id: on.0,
            tlc_id: on.1,
            failed_channel,
            message: message.into(),
        }
    }

    #[test]
    fn a_failure_naming_a_channel_routes_again_around_it() {
        let mut p = payment();
        let live = start_attempt(&mut p, Fact::Created, route(1, 2), 0);
        assert_eq!(p.attempts, 1);
        assert_eq!(p.attempt, Some(live));
        let fact = hop_failed(live, Some(channel(2)), "cannot forward: no capacity");
        assert_eq!(
            Attempts::of(&mut p).on(fact),
            Intent::FindRoute {
                avoid: vec![channel(2)],
            }
        );
        assert_eq!(p.attempt, None, "no attempt is live while routing again");
        assert_eq!(p.failures, vec!["cannot forward: no capacity".to_string()]);
        // The next attempt goes another way and succeeds; the avoided channel stays avoided.
        let live = start_attempt(&mut p, Fact::Created, route(1, 4), 1);
        let fulfilled = Fact::TlcFulfilled {
            preimage: Hash32([9; 32]),
        };
        assert_eq!(Attempts::of(&mut p).on(fulfilled.clone()), Intent::Succeed);
        assert_eq!(p.status, PaymentStatus::Success);
        assert_eq!(p.preimage, Some(Hash32([9; 32])));
        assert_eq!((p.attempts, p.attempt, p.fee), (2, None, 1));
        assert_eq!(p.avoid, vec![channel(2)]);
        // A late failure of the finished attempt, or the same fulfilment again, changes nothing.
        let before = p.clone();
        assert_eq!(
            Attempts::of(&mut p).on(hop_failed(live, Some(channel(4)), "late")),
            Intent::Ignore
        );
        assert_eq!(Attempts::of(&mut p).on(fulfilled), Intent::Ignore);
        assert_eq!(p, before);
    }

    #[test]
    fn our_channel_refusing_the_first_tlc_counts_as_an_attempt_and_is_avoided() {
        let mut p = payment();
        assert!(matches!(
            Attempts::of(&mut p).on(Fact::Created),
            Intent::FindRoute { .. }
        ));
        let refused = Fact::OfferRefused {
            route: route(1, 2),
            channel_id: channel(1),
            reason: "channel is not ready".into(),
        };
        assert_eq!(
            Attempts::of(&mut p).on(refused),
            Intent::FindRoute {
                avoid: vec![channel(1)],
            }
        );
        assert_eq!(p.attempts, 1);
        assert_eq!(p.route, route(1, 2).hops);
        assert_eq!(p.status, PaymentStatus::Created, "nothing was in flight");
    }

    #[test]
    fn the_payer_gives_up_after_max_attempts_naming_every_failure() {
        let mut p = payment();
        let mut fact = Fact::Created;
        for n in 0..MAX_PAYMENT_ATTEMPTS {
            let hop = u8::try_from(n + 10).expect("small");
            let live = start_attempt(&mut p, fact, route(1, hop), u64::from(n));
            fact = hop_failed(live, Some(channel(hop)), &format!("hop {hop} failed"));
        }
        let Intent::Fail { reason } = Attempts::of(&mut p).on(fact) else {
            panic!("the last failure must end the payment");
        };
        assert!(
            reason.starts_with(&format!("gave up after {MAX_PAYMENT_ATTEMPTS} routes: ")),
            "{reason}"
        );
        assert!(
            reason.contains("hop 10 failed") && reason.contains("hop 17 failed"),
            "{reason}"
        );
        assert_eq!(p.status, PaymentStatus::Failed);
        assert_eq!(p.failed_error.as_deref(), Some(reason.as_str()));
        assert_eq!(p.attempts, MAX_PAYMENT_ATTEMPTS);
        assert_eq!(
            p.avoid.len(),
            usize::try_from(MAX_PAYMENT_ATTEMPTS).expect("small")
        );
    }

    #[test]
    fn a_failure_from_the_payee_ends_the_payment() {
        let mut p = payment();
        let live = start_attempt(&mut p, Fact::Created, route(1, 2), 5);
        assert_eq!(
            Attempts::of(&mut p).on(hop_failed(live, None, "unknown payment hash")),
            Intent::Fail {
                reason: "unknown payment hash".into(),
            }
        );
        assert_eq!(p.status, PaymentStatus::Failed);
        assert_eq!(p.failed_error.as_deref(), Some("unknown payment hash"));
        assert_eq!((p.attempts, p.attempt), (1, None));
        assert!(p.avoid.is_empty(), "no channel is to blame");
    }

    #[test]
    fn no_route_fails_naming_why() {
        let mut p = payment();
        let live = start_attempt(&mut p, Fact::Created, route(1, 2), 0);
        let failed = hop_failed(live, Some(channel(2)), "hop: no capacity");
        assert!(matches!(
            Attempts::of(&mut p).on(failed),
            Intent::FindRoute { .. }
        ));
        let none = Fact::NoRoute {
            search: "no route to the payee".into(),
            unusable: vec!["channel 01.. is Stale".into()],
        };
        let reason = "hop: no capacity; no route to the payee; channel 01.. is Stale";
        assert_eq!(
            Attempts::of(&mut p).on(none),
            Intent::Fail {
                reason: reason.into(),
            }
        );
        assert_eq!(p.status, PaymentStatus::Failed);
        assert_eq!(p.failed_error.as_deref(), Some(reason));
        assert_eq!(
            p.attempts, 1,
            "a search that finds nothing is not an attempt"
        );
    }

    #[test]
    fn an_empty_route_or_an_onion_that_cannot_be_built_ends_the_payment() {
        let mut p = payment();
        let empty = Route {
            hops: vec![],
            fee: 0,
        };
        assert_eq!(
            Attempts::of(&mut p).on(Fact::RouteFound(empty)),
            Intent::Fail {
                reason: "empty route".into(),
            }
        );
        let mut p = payment();
        assert_eq!(
            Attempts::of(&mut p).on(Fact::OnionFailed("too many hops".into())),
            Intent::Fail {
                reason: "cannot build the onion: too many hops".into(),
            }
        );
        assert_eq!((p.status, p.attempts), (PaymentStatus::Failed, 0));
    }
}
