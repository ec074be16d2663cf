//! What a scenario needs of its driver: refused at the line of the first step that needs more.

use std::path::Path;

use crate::capability::Capability::{
    self, DlpChainLedger, PartitionBelowNodes, Pause, StepControl, TypedEvents,
};
use crate::error::HarnessError;
use crate::scenario::VerbFacts;
use crate::steps::{Scenario, Step};
use std::collections::BTreeSet;

const BASE: &str = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";

fn scenario(steps: &str) -> Scenario {
    Scenario::parse(Path::new("caps.toml"), &format!("{BASE}{steps}")).expect("valid")
}

fn refusal(scenario: &Scenario, offered: &[Capability]) -> (usize, String) {
    match scenario.check_capabilities(offered) {
        Err(HarnessError::Invalid {
            path,
            line,
            message,
            ..
        }) => {
            assert_eq!(path, Path::new("caps.toml"));
            (line, message)
        }
        other => panic!("expected a located refusal, got {other:?}"),
    }
}

#[test]
fn a_hold_without_step_control_is_refused_at_its_line() {
    let s = scenario(
        "[[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 10 }\n\
         [[steps]]\nhold = { node = \"bob\", step = \"sent:RevokeAndAck\" }\n\
         [[steps]]\nwait_held = { node = \"bob\" }\n",
    );
    let (line, message) = refusal(&s, &[TypedEvents, DlpChainLedger]);
    assert_eq!(line, 12, "the hold, not the pay before it");
    assert_eq!(
        message,
        "hold: needs step control, which the driver does not offer (it offers: typed \
         events, the dlp-chain ledger)"
    );
    let err = s
        .check_capabilities(&[TypedEvents, DlpChainLedger])
        .expect_err("refused");
    assert!(
        err.to_string()
            .starts_with("caps.toml:12:1: hold: needs step control")
    );
    s.check_capabilities(&Capability::ALL)
        .expect("everything offered");
}

#[test]
fn a_backup_at_and_a_penalty_name_what_they_lack() {
    let s = scenario(
        "[[steps]]\nbackup_at = { node = \"bob\", step = \"sent:AddTlc\", name = \"b\" }\n",
    );
    let (line, message) = refusal(&s, &[TypedEvents, DlpChainLedger]);
    assert_eq!(line, 10);
    assert!(
        message.starts_with("backup_at: needs step control"),
        "{message}"
    );
    let s = Scenario::parse(
        Path::new("caps.toml"),
        &format!(
            "allow_penalties = true\n{BASE}[[steps]]\nexpect_penalty = {{ channel = \"ab\" }}\n"
        ),
    )
    .expect("valid");
    let (line, message) = refusal(&s, &[TypedEvents, StepControl]);
    assert_eq!(
        line, 1,
        "the invariants need the ledger before any step does"
    );
    assert!(
        message.starts_with(
            "the invariants (checked at the end of every scenario) need the dlp-chain ledger"
        ),
        "{message}"
    );
    let (_, message) = refusal(&s, &[]);
    assert!(message.ends_with("(it offers: none)"), "{message}");
}

#[test]
fn the_requirements_are_the_invariants_plus_what_the_steps_use() {
    assert_eq!(
        scenario("[[steps]]\nmine = { blocks = 1 }\n").required_capabilities(),
        BTreeSet::from([TypedEvents, DlpChainLedger])
    );
    assert_eq!(
        scenario("[[steps]]\nhold = { node = \"bob\", step = \"sent:AddTlc\" }\n")
            .required_capabilities(),
        BTreeSet::from([TypedEvents, StepControl, DlpChainLedger])
    );
    // Waits on node events need them; lifecycle verbs need nothing more.
    let (a, b) = ("alice".to_string(), "bob".to_string());
    for waits in [
        Step::Connect(crate::steps::links::Connect {
            from: a.clone(),
            to: b.clone(),
        }),
        Step::WaitQuiescent(crate::steps::network::WaitQuiescent {}),
        Step::WaitReestablished(crate::steps::audit::WaitReestablished {
            node: b.clone(),
            channel: "ab".into(),
        }),
    ] {
        assert!(waits.facts().needs.contains(&TypedEvents), "{waits:?}");
    }
    for plain in [
        Step::Crash(crate::steps::lifecycle::Crash { node: a }),
        Step::Mine(crate::steps::ledger::Mine { blocks: 1 }),
    ] {
        assert!(plain.facts().needs.is_empty(), "{plain:?}");
    }
}

#[test]
fn pausing_needs_the_pause_capability_and_expect_unreachable_partitions_below_the_nodes() {
    use crate::capability::DriverKind;

    let s = scenario(
        "[[steps]]
mine = { blocks = 1 }
         [[steps]]
pause = { node = \"bob\" }
         [[steps]]
resume = { node = \"bob\" }
",
    );
    let (line, message) = refusal(&s, DriverKind::InProcess.capabilities());
    assert_eq!(line, 12, "the pause, not the mine before it");
    assert_eq!(
        message,
        "pause: needs pausing a node, which the driver does not offer (it offers: typed \
         events, step control, the dlp-chain ledger)"
    );
    s.check_capabilities(DriverKind::Process.capabilities())
        .expect("a process can be paused");
    assert_eq!(
        Step::Resume(crate::steps::lifecycle::Resume { node: "bob".into() })
            .facts()
            .needs,
        &[Pause]
    );

    let s = scenario(
        "[[steps]]
partition = { a = \"alice\", b = \"bob\" }
         [[steps]]
expect_unreachable = { from = \"alice\", to = \"bob\" }
",
    );
    for kind in [DriverKind::InProcess, DriverKind::Process] {
        let (line, message) = refusal(&s, kind.capabilities());
        assert_eq!(line, 12, "{kind:?}");
        assert!(
            message.starts_with(
                "expect_unreachable: needs partitions below the nodes, which the driver \
                 does not offer"
            ),
            "{message}"
        );
    }
    s.check_capabilities(&Capability::ALL)
        .expect("a driver that cuts below the nodes");
    assert_eq!(
        s.required_capabilities(),
        BTreeSet::from([TypedEvents, DlpChainLedger, PartitionBelowNodes])
    );
}
