//! Which nodes can answer at each step, checked before anything starts: a paused node answers
//! nothing (no RPC, no events) until it is resumed, so a step that needs it would hang until
//! its deadline; a located error says so instead.
//!
//! Each node is followed through the steps as running, stopped or paused (every node runs when
//! the steps begin; `start`, `restart` and `restore` leave it running, `stop` and `crash`
//! stopped, `pause` paused, `resume` running). The rules:
//!
//! - `pause` only a running node that is not paused; `resume` only a paused one.
//! - While a node is paused, no step may need its RPC or wait on its events: `start`, `stop`,
//!   `restart`, `restore` (a clean stop needs it to run: resume it first, or `crash` it),
//!   `connect` and `heal` of it either way, `disconnect` from it, `pay` and `send_payment` from
//!   or to it, `expect_payment` of a payment it sends, `backup`, `backup_at`, `hold`,
//!   `wait_held`, `release`, `shutdown`, `expect_state`, `expect_audit`, `wait_reestablished`,
//!   `expect_balance` of it, `expect_unreachable` from or to it (a frozen node never finishes a
//!   handshake, so it would look unreachable without any partition), and a `partition` of two
//!   paused nodes (the connection is dropped by a side that answers); `wait_auto_backup`,
//!   `expect_channels` and `expect_node_info` of it.
//! - Allowed on a paused node: `crash` (it dies frozen), `disconnect` *to* it (its peer drops a
//!   silent connection), `expect_silence` (it has said nothing since its events were last
//!   fetched, before it froze), `expect_wallet_change` (the ledger answers),
//!   `expect_backup_files` (read on the host) and `expect_channels` *with* it as the peer
//!   (named by its key from its start), and every step
//!   that names no node (`wait_quiescent` counts its directions as frozen, `check_invariants`
//!   judges the events fetched before it froze).
//! - `expect_unreachable` needs both nodes running and a `partition` of the pair before it,
//!   not yet healed: without one the step could only fail.
//!
//! Stopped nodes are followed only for these rules (a `pause` or `expect_unreachable` of a
//! stopped node is refused); other steps on a stopped node fail when they run, as before.

use std::collections::{BTreeMap, BTreeSet};

use super::file::Step;

/// A node's state between two steps, with the line of the step that put it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Stopped { line: usize },
    Paused { line: usize },
}

/// The nodes' states as the steps go (see the module docs).
#[derive(Debug)]
pub(super) struct Liveness {
    nodes: BTreeMap<String, State>,
    /// Payment name -> its payer (an `expect_payment` waits on the payer's events).
    payers: BTreeMap<String, String>,
    /// Pairs partitioned and not healed, names in order.
    partitions: BTreeSet<(String, String)>,
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Liveness {
    /// Every node running, as when the steps begin.
    pub(super) fn new<'a>(nodes: impl IntoIterator<Item = &'a String>) -> Self {
        Self {
            nodes: nodes
                .into_iter()
                .map(|n| (n.clone(), State::Running))
                .collect(),
            payers: BTreeMap::new(),
            partitions: BTreeSet::new(),
        }
    }

    fn state(&self, node: &str) -> State {
        self.nodes.get(node).copied().unwrap_or(State::Running)
    }

    fn set(&mut self, node: &str, state: State) {
        self.nodes.insert(node.to_string(), state);
    }

    /// Check `step` (at `line`) against the states before it, then apply it. Node names are
    /// known (checked before).
    pub(super) fn step(&mut self, step: &Step, line: usize) -> Result<(), String> {
        let verb = step.verb();
        for node in needs_answer(step, &self.payers) {
            if let State::Paused { line: since } = self.state(node) {
                let hint = match step {
                    Step::Stop { .. } | Step::Restart { .. } | Step::Restore { .. } => {
                        "; a clean stop needs it to run: resume it first (or crash it)"
                    }
                    Step::ExpectUnreachable { .. } => {
                        "; a frozen node never finishes a handshake, so it would look \
                         unreachable without any partition"
                    }
                    _ => "; resume it first",
                };
                return Err(format!(
                    "{verb}: {node} is paused (since line {since}) and answers nothing until a \
                     resume step{hint}"
                ));
            }
        }
        match step {
            Step::Pause { node } => match self.state(node) {
                State::Running => self.set(node, State::Paused { line }),
                State::Paused { line: since } => {
                    return Err(format!(
                        "pause: {node} is paused already (since line {since})"
                    ));
                }
                State::Stopped { line: since } => {
                    return Err(format!(
                        "pause: {node} is not running here (stopped at line {since}); only a \
                         running node can be paused"
                    ));
                }
            },
            Step::Resume { node } => match self.state(node) {
                State::Paused { .. } => self.set(node, State::Running),
                _ => {
                    return Err(format!(
                        "resume: {node} is not paused here (resume follows a pause of it)"
                    ));
                }
            },
            Step::Partition { a, b } => {
                let paused = |n: &str| matches!(self.state(n), State::Paused { .. });
                if paused(a) && paused(b) {
                    return Err(format!(
                        "partition: {a} and {b} are both paused; the connection is dropped by a \
                         side that answers: resume one of them first"
                    ));
                }
                self.partitions.insert(pair(a, b));
            }
            Step::Heal { a, b } => {
                self.partitions.remove(&pair(a, b));
            }
            Step::ExpectUnreachable { from, to } => {
                for node in [from, to] {
                    if let State::Stopped { line: since } = self.state(node) {
                        return Err(format!(
                            "expect_unreachable: {node} is not running here (stopped at line \
                             {since}); the step dials from a running node to a running node"
                        ));
                    }
                }
                if !self.partitions.contains(&pair(from, to)) {
                    return Err(format!(
                        "expect_unreachable: {from} and {to} are not partitioned here (it needs \
                         an earlier partition of the pair, not healed; otherwise the dial \
                         succeeds)"
                    ));
                }
            }
            Step::OpenChannel { from, to, .. } => {
                for node in [from, to] {
                    if let State::Stopped { line: since } = self.state(node) {
                        return Err(format!(
                            "open_channel: {node} is not running here (stopped at line {since}); \
                             both ends must run to open a channel"
                        ));
                    }
                }
                if self.partitions.contains(&pair(from, to)) {
                    return Err(format!(
                        "open_channel: {from} and {to} are partitioned here; heal them first"
                    ));
                }
            }
            Step::SendPayment { from, name, .. } => {
                self.payers.insert(name.clone(), from.clone());
            }
            Step::Start { node } | Step::Restart { node } | Step::Restore { node, .. } => {
                self.set(node, State::Running)
            }
            Step::Stop { node } | Step::Crash { node } => self.set(node, State::Stopped { line }),
            _ => {}
        }
        Ok(())
    }
}

/// The nodes whose RPC or events `step` needs (see the module docs).
fn needs_answer<'s>(step: &'s Step, payers: &'s BTreeMap<String, String>) -> Vec<&'s str> {
    match step {
        Step::Start { node }
        | Step::Stop { node }
        | Step::Restart { node }
        | Step::Restore { node, .. }
        | Step::Backup { node, .. }
        | Step::BackupAt { node, .. }
        | Step::Hold { node, .. }
        | Step::WaitHeld { node }
        | Step::Release { node }
        | Step::Shutdown { node, .. }
        | Step::ExpectState { node, .. }
        | Step::ExpectAudit { node, .. }
        | Step::WaitReestablished { node, .. }
        | Step::ExpectBalance { node, .. } => vec![node],
        Step::Connect { from, to }
        | Step::OpenChannel { from, to, .. }
        | Step::Pay { from, to, .. }
        | Step::SendPayment { from, to, .. }
        | Step::ExpectUnreachable { from, to } => vec![from, to],
        Step::Heal { a, b } => vec![a, b],
        Step::Disconnect { from, .. } => vec![from],
        Step::ExpectPayment { name, .. } => {
            payers.get(name).map(String::as_str).into_iter().collect()
        }
        Step::Pause { .. }
        | Step::Resume { .. }
        | Step::Crash { .. }
        | Step::Partition { .. }
        | Step::ExpectSilence { .. }
        | Step::ExpectWalletChange { .. }
        | Step::Mine { .. }
        | Step::MarkWallets {}
        | Step::CheckInvariants {}
        | Step::WaitQuiescent {}
        | Step::ExpectPenalty { .. } => vec![],
        // The peer of expect_channels is named by the key it had at start: it need not answer.
        // A backup's files are read on the host.
        Step::WaitAutoBackup { node, .. }
        | Step::ExpectChannels { node, .. }
        | Step::ExpectNodeInfo { node } => vec![node],
        Step::ExpectBackupFiles { .. } => vec![],
    }
}

#[cfg(test)]
mod tests {
    use crate::error::HarnessError;
    use crate::scenario::Scenario;

    /// Steps start at line 10.
    const BASE: &str = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
        [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";

    fn parse(steps: &[&str]) -> Result<Scenario, HarnessError> {
        crate::scenario::test_support::parse_steps(BASE, steps)
    }

    /// The line and message of the refusal.
    fn refused(steps: &[&str]) -> (usize, String) {
        crate::scenario::test_support::refused_steps(BASE, steps)
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
}
