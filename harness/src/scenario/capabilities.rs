//! What a scenario needs from its driver beyond the nodes' plain RPC, and the check that
//! refuses it before anything starts when the driver offers less: a `hold` on a driver without
//! step control would otherwise wait out its deadline, and a penalty check without the
//! dlp-chain ledger would have nothing to read.
//!
//! The mapping (also in `scenarios/README.md`):
//! - every wait on the nodes needs [`Capability::TypedEvents`] (`connect`, `heal`, `pay`,
//!   `expect_payment`, `backup`, `expect_state`, `expect_audit`, `expect_silence`,
//!   `wait_reestablished`, `expect_balance`, `wait_quiescent`);
//! - `hold`, `wait_held`, `release` and `backup_at` need [`Capability::StepControl`] (and, but
//!   for `release`, typed events: they mark or await the node's events);
//! - `expect_penalty`, `mark_wallets` and `expect_wallet_change` need
//!   [`Capability::DlpChainLedger`] (`expect_wallet_change` waits on events too);
//! - the invariants, checked at the end of every scenario and by `check_invariants`, need
//!   typed events (passive silence, the audit rule, bug reports) and the dlp-chain ledger (no
//!   penalty, conservation), so every scenario needs those two;
//! - `pause` and `resume` need [`Capability::Pause`] (and `pause` typed events: the node's
//!   last events are fetched before it freezes);
//! - `expect_unreachable` needs [`Capability::PartitionBelowNodes`] (a connection-level cut
//!   does not stop a node that dials by itself, so the step could only fail) and typed events
//!   (it watches both nodes for a connection);
//! - `start`, `stop`, `restart`, `crash`, `disconnect`, `partition`, `send_payment`,
//!   `shutdown`, `mine` and `restore` need nothing more (`restore` of a `backup_at` backup waits
//!   for it, but that `backup_at` already needs step control and events);
//! - `wait_auto_backup` and `expect_channels` wait on the node's events (typed events);
//!   `expect_backup_files` (it reads the backup through the host path every driver maps) and
//!   `expect_node_info` (one RPC call) need nothing more.

use std::collections::BTreeSet;

use super::Scenario;
use super::file::Step;
use crate::capability::Capability::{
    self, DlpChainLedger, PartitionBelowNodes, Pause, StepControl, TypedEvents,
};
use crate::error::HarnessError;

/// What the invariants need (see the module docs).
pub const INVARIANT_CAPABILITIES: &[Capability] = &[TypedEvents, DlpChainLedger];

impl Step {
    /// What this step needs beyond the nodes' plain RPC (see the module docs).
    pub fn required_capabilities(&self) -> &'static [Capability] {
        match self {
            Step::Start { .. }
            | Step::Stop { .. }
            | Step::Restart { .. }
            | Step::Crash { .. }
            | Step::Disconnect { .. }
            | Step::Partition { .. }
            | Step::SendPayment { .. }
            | Step::Shutdown { .. }
            | Step::Mine { .. }
            | Step::Restore { .. } => &[],
            Step::OpenChannel { .. } => &[TypedEvents, DlpChainLedger],
            Step::Connect { .. }
            | Step::Heal { .. }
            | Step::Pay { .. }
            | Step::ExpectPayment { .. }
            | Step::Backup { .. }
            | Step::ExpectState { .. }
            | Step::ExpectAudit { .. }
            | Step::ExpectSilence { .. }
            | Step::WaitReestablished { .. }
            | Step::ExpectBalance { .. }
            | Step::WaitQuiescent {} => &[TypedEvents],
            Step::Release { .. } => &[StepControl],
            Step::Pause { .. } => &[Pause, TypedEvents],
            Step::Resume { .. } => &[Pause],
            Step::ExpectUnreachable { .. } => &[PartitionBelowNodes, TypedEvents],
            Step::Hold { .. } | Step::WaitHeld { .. } | Step::BackupAt { .. } => {
                &[StepControl, TypedEvents]
            }
            Step::ExpectPenalty { .. } | Step::MarkWallets {} => &[DlpChainLedger],
            Step::ExpectWalletChange { .. } => &[DlpChainLedger, TypedEvents],
            Step::CheckInvariants {} => INVARIANT_CAPABILITIES,
            Step::WaitAutoBackup { .. } | Step::ExpectChannels { .. } => &[TypedEvents],
            Step::ExpectBackupFiles { .. } | Step::ExpectNodeInfo { .. } => &[],
        }
    }
}

impl Scenario {
    /// Every capability the scenario needs: its steps' and the invariants'.
    pub fn required_capabilities(&self) -> BTreeSet<Capability> {
        self.file
            .steps
            .iter()
            .flat_map(|s| s.get_ref().required_capabilities())
            .chain(INVARIANT_CAPABILITIES)
            .copied()
            .collect()
    }

    /// Refuse the scenario if it needs a capability that is not `offered`: the error names the
    /// file, the line of what needs it (the first step, in file order; the invariants, which
    /// every scenario has, at line 1), that verb and the capability.
    pub fn check_capabilities(&self, offered: &[Capability]) -> Result<(), HarnessError> {
        let lacking = |needed: &[Capability]| needed.iter().find(|c| !offered.contains(c)).copied();
        let offers = if offered.is_empty() {
            "none".to_string()
        } else {
            offered
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(missing) = lacking(INVARIANT_CAPABILITIES) {
            return Err(self.invalid_at(
                0,
                format!(
                    "the invariants (checked at the end of every scenario) need {missing}, which \
                     the driver does not offer (it offers: {offers})"
                ),
            ));
        }
        for (index, step) in self.file.steps.iter().enumerate() {
            let step = step.get_ref();
            if let Some(missing) = lacking(step.required_capabilities()) {
                return Err(self.invalid_at_step(
                    index,
                    format!(
                        "{}: needs {missing}, which the driver does not offer (it offers: \
                         {offers})",
                        step.verb()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

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
            Step::Connect {
                from: a.clone(),
                to: b.clone(),
            },
            Step::WaitQuiescent {},
            Step::WaitReestablished {
                node: b.clone(),
                channel: "ab".into(),
            },
        ] {
            assert!(
                waits.required_capabilities().contains(&TypedEvents),
                "{waits:?}"
            );
        }
        for plain in [Step::Crash { node: a }, Step::Mine { blocks: 1 }] {
            assert!(plain.required_capabilities().is_empty(), "{plain:?}");
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
            Step::Resume { node: "bob".into() }.required_capabilities(),
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
}
