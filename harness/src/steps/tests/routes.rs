//! Route expectations of `pay` and `expect_payment`.

use std::path::Path;

use crate::cluster::PaymentOutcome;
use crate::steps::payments::judge_route as judge;

use super::support::{parse_steps, refused_steps};
use crate::error::HarnessError;
use crate::steps::Scenario;

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
        refused(r#"pay = { from = "a", to = "c", amount = 1, attempts = 9 }"#).contains("1 to 8")
    );
    assert!(
        refused(r#"pay = { from = "a", to = "c", amount = 1, route = ["x", "c"] }"#).contains("x")
    );
    let fine = r#"pay = { from = "a", to = "c", amount = 1, route = ["b", "c"], attempts = 2 }"#;
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
