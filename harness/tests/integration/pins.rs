//! `pin_order`: a node handles racing inputs in the order it was given. An input that arrives
//! before its turn waits (here: alice's AddTlc and CommitmentSigned wait at bob until bob's own
//! `send_payment`, which the harness sends later, was handled), and an input the pin has no
//! place for ends it, which `unpin_order` reports naming both inputs.

use std::path::Path;

use dlp_harness::capability::DriverKind;
use dlp_harness::run::runner::{runs_root, runtime};
use dlp_harness::run::{RunFailure, Session};
use dlp_harness::steps::Scenario;
use dlp_node_api::{Backend, EventKind, MessageName, OrderedCommand};

/// Bob pinned to take his own payment's command before alice's update, which arrives first.
const REORDERED: &str = r#"
description = "bob handles his send_payment before alice's AddTlc, which arrived earlier"

[nodes.alice]
[nodes.bob]

[[channels]]
name = "ab"
from = "alice"
to = "bob"
amount = 1_000_000

[[steps]]
pay = { from = "alice", to = "bob", amount = 300_000 }
[[steps]]
wait_quiescent = {}
[[steps]]
pin_order = { node = "bob", inputs = ["rpc send_payment", "AddTlc from alice on ab", "CommitmentSigned from alice on ab"] }
[[steps]]
send_payment = { from = "alice", to = "bob", amount = 50_000, name = "to_bob" }
[[steps]]
send_payment = { from = "bob", to = "alice", amount = 80_000, name = "to_alice" }
[[steps]]
expect_payment = { name = "to_bob", status = "success" }
[[steps]]
expect_payment = { name = "to_alice", status = "success" }
[[steps]]
unpin_order = { node = "bob" }
"#;

fn session_run(text: &str, backend: Backend, name: &str) -> (Result<(), String>, Vec<EventKind>) {
    let scenario = Scenario::parse(Path::new(name), text).unwrap_or_else(|e| panic!("{e}"));
    let dir = runs_root().join(format!("pins-{name}-{backend}-{}", std::process::id()));
    runtime().expect("runtime").block_on(async {
        let mut session = Session::setup(&scenario, DriverKind::InProcess, backend, &dir, 1)
            .await
            .unwrap_or_else(|f| panic!("{}", f.report));
        let result = session
            .run_steps(0..scenario.file.steps.len())
            .await
            .map_err(|f| match f {
                RunFailure::Step { error, .. } => error.to_string(),
                other => other.to_string(),
            });
        session
            .fetch_events(Some("bob"))
            .await
            .expect("bob's events");
        let events = session
            .events("bob")
            .expect("bob's events")
            .iter()
            .map(|e| e.kind.clone())
            .collect();
        session.teardown().await;
        let _ = std::fs::remove_dir_all(&dir);
        (result, events)
    })
}

#[test]
fn an_input_that_arrives_before_its_turn_waits_for_it() {
    for backend in [Backend::Rocksdb, Backend::Sqlite] {
        let (result, events) = session_run(REORDERED, backend, "reordered.toml");
        result.unwrap_or_else(|e| panic!("{backend}: {e}"));
        let position = |what: &dyn Fn(&EventKind) -> bool| {
            events
                .iter()
                .rposition(what)
                .unwrap_or_else(|| panic!("{backend}: not in bob's events"))
        };
        let command = position(&|k| {
            matches!(
                k,
                EventKind::CommandHandled {
                    command: OrderedCommand::SendPayment
                }
            )
        });
        // The last AddTlc bob received from alice is the second payment's.
        let add = position(
            &|k| matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::AddTlc),
        );
        assert!(
            command < add,
            "{backend}: bob handled alice's AddTlc (event {add}) before his send_payment (event \
             {command})"
        );
        assert!(
            !events
                .iter()
                .any(|k| matches!(k, EventKind::OrderDiverged { .. })),
            "{backend}: the pin diverged"
        );
    }
}

#[test]
fn a_pin_the_node_cannot_keep_ends_there_and_unpin_names_both_inputs() {
    // Alice's CommitmentSigned cannot come before her AddTlc: one peer's messages come in the
    // order it sent them.
    let text = REORDERED.replace(
        r#"inputs = ["rpc send_payment", "AddTlc from alice on ab", "CommitmentSigned from alice on ab"]"#,
        r#"inputs = ["rpc send_payment", "CommitmentSigned from alice on ab", "AddTlc from alice on ab"]"#,
    );
    let (result, events) = session_run(&text, Backend::Sqlite, "diverged.toml");
    let error = result.expect_err("the pin cannot be kept");
    assert!(
        error.contains(
            "unpin_order: the pin was not kept: bob's pinned order diverged at pinned input 1, \
             waiting for rpc send_payment: AddTlc from alice on ab arrived where the pin expects \
             CommitmentSigned from alice on ab next"
        ),
        "{error}"
    );
    assert!(
        events
            .iter()
            .any(|k| matches!(k, EventKind::OrderDiverged { .. })),
        "bob published the divergence"
    );
}
