//! Which nodes can answer at each step: what a paused node may and may not be asked.

use crate::error::HarnessError;
use crate::steps::Scenario;

/// Steps start at line 10.
const BASE: &str = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";

fn parse(steps: &[&str]) -> Result<Scenario, HarnessError> {
    super::support::parse_steps(BASE, steps)
}

/// The line and message of the refusal.
fn refused(steps: &[&str]) -> (usize, String) {
    super::support::refused_steps(BASE, steps)
}

/// Line of step `n` (1-based) in a file built by [`parse`].
fn line(n: usize) -> usize {
    8 + 2 * n
}

#[test]
fn a_paused_node_may_only_be_crashed_disconnected_from_and_looked_at_until_resumed() {
    parse(&[
        "pause = { node = \"bob\" }",
        "wait_quiescent = {}",
        "expect_silence = { node = \"bob\", channel = \"ab\" }",
        "mine = { blocks = 1 }",
        "mark_wallets = {}",
        "expect_wallet_change = { node = \"bob\", amount = 0 }",
        "check_invariants = {}",
        "expect_state = { node = \"alice\", channel = \"ab\", state = \"ChannelReady\" }",
        "resume = { node = \"bob\" }",
        "pay = { from = \"alice\", to = \"bob\", amount = 10 }",
        "pause = { node = \"bob\" }",
        "disconnect = { from = \"alice\", to = \"bob\" }",
        "crash = { node = \"bob\" }",
        "start = { node = \"bob\" }",
        "pause = { node = \"bob\" }",
    ])
    .expect("valid: a paused node left paused at the end is resumed at teardown");
}

#[test]
fn steps_that_need_a_paused_node_are_refused_at_their_line_naming_the_pause() {
    let pause = "pause = { node = \"bob\" }";
    for (step, hint) in [
        (
            "pay = { from = \"alice\", to = \"bob\", amount = 10 }",
            "resume it first",
        ),
        (
            "pay = { from = \"bob\", to = \"alice\", amount = 10 }",
            "resume it first",
        ),
        (
            "backup = { node = \"bob\", name = \"b\" }",
            "resume it first",
        ),
        (
            "hold = { node = \"bob\", step = \"sent:AddTlc\" }",
            "resume it first",
        ),
        (
            "connect = { from = \"alice\", to = \"bob\" }",
            "resume it first",
        ),
        ("heal = { a = \"alice\", b = \"bob\" }", "resume it first"),
        (
            "disconnect = { from = \"bob\", to = \"alice\" }",
            "resume it first",
        ),
        (
            "expect_balance = { node = \"bob\", channel = \"ab\", local = 0 }",
            "resume it first",
        ),
        (
            "wait_reestablished = { node = \"bob\", channel = \"ab\" }",
            "resume it first",
        ),
        ("stop = { node = \"bob\" }", "(or crash it)"),
        ("restart = { node = \"bob\" }", "(or crash it)"),
        ("start = { node = \"bob\" }", "resume it first"),
    ] {
        let (at, message) = refused(&[pause, "mine = { blocks = 1 }", step]);
        assert_eq!(at, line(3), "{step}");
        let verb = step.split(' ').next().unwrap_or_default();
        assert!(
            message.starts_with(&format!(
                "{verb}: bob is paused (since line {}) and answers nothing until a resume \
                 step",
                line(1)
            )),
            "{step}: {message}"
        );
        assert!(message.ends_with(hint), "{step}: {message}");
    }
    // A restore, and the payer of a started payment.
    let (at, message) = refused(&[
        "backup = { node = \"bob\", name = \"b\" }",
        pause,
        "restore = { node = \"bob\", backup = \"b\" }",
    ]);
    assert_eq!(at, line(3));
    assert!(message.starts_with("restore: bob is paused"), "{message}");
    let (at, message) = refused(&[
        "send_payment = { from = \"alice\", to = \"bob\", amount = 5, name = \"p\" }",
        "pause = { node = \"alice\" }",
        "expect_payment = { name = \"p\", status = \"success\" }",
    ]);
    assert_eq!(at, line(3));
    assert!(
        message.starts_with("expect_payment: alice is paused"),
        "{message}"
    );
    // Resumed, the same steps are fine.
    parse(&[
        pause,
        "resume = { node = \"bob\" }",
        "pay = { from = \"alice\", to = \"bob\", amount = 10 }",
        "stop = { node = \"bob\" }",
    ])
    .expect("valid after resume");
}

#[test]
fn pause_needs_a_running_unpaused_node_and_resume_a_paused_one() {
    let (at, message) = refused(&["pause = { node = \"bob\" }", "pause = { node = \"bob\" }"]);
    assert_eq!(
        (at, message.as_str()),
        (line(2), "pause: bob is paused already (since line 10)")
    );
    let (at, message) = refused(&["resume = { node = \"bob\" }"]);
    assert_eq!(
        (at, message.as_str()),
        (
            line(1),
            "resume: bob is not paused here (resume follows a pause of it)"
        )
    );
    let (at, message) = refused(&["stop = { node = \"bob\" }", "pause = { node = \"bob\" }"]);
    assert_eq!(at, line(2));
    assert!(
        message.starts_with("pause: bob is not running here (stopped at line 10)"),
        "{message}"
    );
    let (_, message) = refused(&[
        "pause = { node = \"bob\" }",
        "crash = { node = \"bob\" }",
        "resume = { node = \"bob\" }",
    ]);
    assert!(
        message.starts_with("resume: bob is not paused"),
        "{message}"
    );
}

#[test]
fn expect_unreachable_needs_a_partition_in_force_and_two_running_unpaused_nodes() {
    let unreachable = "expect_unreachable = { from = \"alice\", to = \"bob\" }";
    parse(&["partition = { a = \"bob\", b = \"alice\" }", unreachable]).expect("valid");
    let (at, message) = refused(&[unreachable]);
    assert_eq!(at, line(1));
    assert!(
        message.starts_with("expect_unreachable: alice and bob are not partitioned here"),
        "{message}"
    );
    let (at, _) = refused(&[
        "partition = { a = \"alice\", b = \"bob\" }",
        "heal = { a = \"alice\", b = \"bob\" }",
        unreachable,
    ]);
    assert_eq!(at, line(3), "healed: no partition any more");
    let (at, message) = refused(&[
        "partition = { a = \"alice\", b = \"bob\" }",
        "pause = { node = \"bob\" }",
        unreachable,
    ]);
    assert_eq!(at, line(3));
    assert!(
        message.contains("bob is paused") && message.contains("never finishes a handshake"),
        "{message}"
    );
    let (_, message) = refused(&[
        "partition = { a = \"alice\", b = \"bob\" }",
        "stop = { node = \"bob\" }",
        unreachable,
    ]);
    assert!(
        message.starts_with("expect_unreachable: bob is not running here (stopped at line 12)"),
        "{message}"
    );
    let (at, message) = refused(&[
        "pause = { node = \"alice\" }",
        "pause = { node = \"bob\" }",
        "partition = { a = \"alice\", b = \"bob\" }",
    ]);
    assert_eq!(at, line(3));
    assert!(
        message.starts_with("partition: alice and bob are both paused"),
        "{message}"
    );
}
