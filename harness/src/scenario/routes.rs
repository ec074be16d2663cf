//! Route expectations of `pay` and `expect_payment`: `route` (the nodes the payment's last
//! route went through, the payee last) and `attempts` (how many routes the payer tried).
//!
//! A scenario about routing has to be able to say *which way* a payment went, not only that it
//! arrived: a payment that reached Dave through a Stale channel's neighbour on its second try
//! looks the same as one routed around it at once if only the outcome is checked.

use dlp_node_api::{MAX_HOPS, MAX_PAYMENT_ATTEMPTS};

use super::file::{PayExpect, Step};
use crate::cluster::PaymentOutcome;

/// What `check` refuses in a step's route expectation (node names are checked with every
/// other name of the step).
pub(super) fn check(step: &Step) -> Result<(), String> {
    let (verb, expect, to, route, attempts) = match step {
        Step::Pay {
            expect,
            to,
            route,
            attempts,
            ..
        } => ("pay", *expect, Some(to), route, attempts),
        Step::ExpectPayment {
            status,
            route,
            attempts,
            ..
        } => ("expect_payment", *status, None, route, attempts),
        _ => return Ok(()),
    };
    if expect == PayExpect::Any && (route.is_some() || attempts.is_some()) {
        return Err(format!(
            "{verb}: route and attempts need an outcome to look at (expect \"success\" or \"failed\")"
        ));
    }
    if let Some(route) = route {
        if route.is_empty() || route.len() > MAX_HOPS {
            return Err(format!(
                "{verb}: route names {} nodes; a route has 1 to {MAX_HOPS} hops (the payee last)",
                route.len()
            ));
        }
        if let Some(to) = to
            && route.last() != Some(to)
        {
            return Err(format!(
                "{verb}: route must end with the payee {to:?} (it lists the nodes the payment \
                 went through, the payee last)"
            ));
        }
    }
    if let Some(n) = attempts
        && (*n == 0 || *n > MAX_PAYMENT_ATTEMPTS)
    {
        return Err(format!(
            "{verb}: attempts {n} must be 1 to {MAX_PAYMENT_ATTEMPTS} (the most routes a payment tries)"
        ));
    }
    Ok(())
}

/// Whether the outcome took the expected route with the expected number of attempts; the
/// mismatch, described, if not.
pub(super) fn judge(
    what: &str,
    outcome: &PaymentOutcome,
    route: Option<&[String]>,
    attempts: Option<u32>,
) -> Result<(), String> {
    if let Some(want) = route
        && outcome.route != want
    {
        return Err(format!(
            "{what}: expected the route {}, it went {} ({} attempt(s))",
            want.join(" -> "),
            if outcome.route.is_empty() {
                "nowhere".to_string()
            } else {
                outcome.route.join(" -> ")
            },
            outcome.attempts
        ));
    }
    if let Some(want) = attempts
        && outcome.attempts != u64::from(want)
    {
        return Err(format!(
            "{what}: expected {want} attempt(s), the payer tried {} (last route {})",
            outcome.attempts,
            outcome.route.join(" -> ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::error::HarnessError;
    use crate::scenario::Scenario;
    use crate::scenario::test_support::{parse_steps, refused_steps};

    fn outcome(route: &[&str], attempts: u64) -> PaymentOutcome {
        PaymentOutcome {
            status: dlp_node_api::PaymentStatus::Success,
            reason: None,
            route: route.iter().map(|s| s.to_string()).collect(),
            attempts,
        }
    }

    const BASE: &str = "description = \"routes\"\ntopology = { shape = \"line\", nodes = [\"a\", \"b\", \"c\"], \
                        amount = 1000 }\n[nodes.a]\n[nodes.b]\n[nodes.c]\n";

    #[test]
    fn a_route_must_end_at_the_payee_fit_the_hop_limit_name_nodes_and_need_an_outcome() {
        let refused = |step: &str| refused_steps(BASE, &[step]).1;
        assert!(
            refused(r#"pay = { from = "a", to = "c", amount = 1, route = ["b"] }"#)
                .contains("must end with the payee")
        );
        assert!(
            refused(r#"pay = { from = "a", to = "c", amount = 1, route = [] }"#)
                .contains("1 to 20 hops")
        );
        assert!(
            refused(r#"pay = { from = "a", to = "c", amount = 1, expect = "any", attempts = 1 }"#)
                .contains("need an outcome")
        );
        assert!(
            refused(r#"pay = { from = "a", to = "c", amount = 1, attempts = 9 }"#)
                .contains("1 to 8")
        );
        assert!(
            refused(r#"pay = { from = "a", to = "c", amount = 1, route = ["x", "c"] }"#)
                .contains("x")
        );
        let fine =
            r#"pay = { from = "a", to = "c", amount = 1, route = ["b", "c"], attempts = 2 }"#;
        assert!(parse_steps(BASE, &[fine]).is_ok());
    }

    #[test]
    fn a_fee_rate_above_a_million_millionths_is_refused_at_its_node() {
        let text =
            |rate: u64| format!("description = \"d\"\n[nodes.a]\n[nodes.b]\nfee_rate = {rate}\n");
        match Scenario::parse(Path::new("t.toml"), &text(1_000_001)) {
            Err(HarnessError::Invalid { line, message, .. }) => {
                assert_eq!(line, 3, "{message}");
                assert!(message.contains("fee_rate 1000001"), "{message}");
            }
            other => panic!("expected a located refusal, got {other:?}"),
        }
        assert!(Scenario::parse(Path::new("t.toml"), &text(1_000_000)).is_ok());
    }

    #[test]
    fn the_judge_names_the_route_taken_and_the_attempts() {
        let want = vec!["carol".to_string(), "dave".to_string()];
        assert_eq!(
            judge("p", &outcome(&["carol", "dave"], 1), Some(&want), Some(1)),
            Ok(())
        );
        let err =
            judge("p", &outcome(&["bob", "dave"], 1), Some(&want), None).expect_err("other route");
        assert!(
            err.contains("expected the route carol -> dave, it went bob -> dave"),
            "{err}"
        );
        let err = judge("p", &outcome(&["carol", "dave"], 2), None, Some(1)).expect_err("retried");
        assert!(
            err.contains("expected 1 attempt(s), the payer tried 2"),
            "{err}"
        );
    }
}
