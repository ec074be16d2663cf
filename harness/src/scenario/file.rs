//! The scenario format: the types a scenario file deserialises into (serde with
//! `deny_unknown_fields`, positions kept with `toml::Spanned`), the step verbs, and the shapes
//! a topology expands into. What a file may say is decided here; whether what it says can run
//! (names, bounds, preconditions) is `validate.rs`; what a step does is `interpret.rs`.

use std::collections::BTreeMap;

use dlp_node::config::{AuditPolicy, MutualStale, OnAuditFailure, OnForceCloseRequest};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The file's shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// One paragraph: what the scenario proves.
    pub description: String,
    /// Backends to run on (default: both).
    #[serde(default)]
    pub backends: Option<Vec<Spanned<String>>>,
    /// The scenario expects penalty transactions on the ledger (default: none allowed).
    #[serde(default)]
    pub allow_penalties: bool,
    pub nodes: BTreeMap<String, NodeDecl>,
    /// Channels by shape (expanded into `channels` named `<from>-<to>`).
    #[serde(default)]
    pub topology: Option<Spanned<TopologyDecl>>,
    #[serde(default)]
    pub channels: Vec<Spanned<ChannelDecl>>,
    #[serde(default)]
    pub steps: Vec<Spanned<Step>>,
    /// Makes the file a sweep workload (`dlp-harness sweep`): the node under test.
    #[serde(default)]
    pub sweep: Option<Spanned<SweepDecl>>,
}

/// `[sweep]`: what `dlp-harness sweep` needs beyond the scenario prefix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepDecl {
    /// The node whose every persisted step is backed up, restored and judged.
    pub node: String,
}

/// `[nodes.<name>]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDecl {
    #[serde(default)]
    pub audit_policy: Option<AuditPolicy>,
    #[serde(default)]
    pub on_audit_failure: Option<OnAuditFailure>,
    /// `"wait"` or `"reveal"`: what a Stale channel does when its peer is Stale too (unset:
    /// `wait` under the `fiber` policy, `reveal` under `strict`).
    #[serde(default)]
    pub mutual_stale: Option<MutualStale>,
    /// `"force_close"` or `"ignore"`: what a live channel does on the peer's
    /// `RequestForceClose` (unset: `force_close`).
    #[serde(default)]
    pub on_force_close_request: Option<OnForceCloseRequest>,
}

/// `topology = { shape = "line", nodes = [...], amount = N }`: channels by shape, each opened
/// by the earlier node of the pair: `line` a-b, b-c, ...; `star` the first node to each other;
/// `mesh` every pair.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyDecl {
    pub shape: Shape,
    pub nodes: Vec<String>,
    pub amount: u64,
}

/// Topology shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Line,
    Star,
    Mesh,
}

impl Shape {
    /// The shape as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Line => "line",
            Shape::Star => "star",
            Shape::Mesh => "mesh",
        }
    }
}

/// How many (from, to) pairs [`shape_pairs`] makes over `n` nodes, without making them.
pub fn shape_pair_count(shape: Shape, n: usize) -> usize {
    match shape {
        Shape::Line | Shape::Star => n.saturating_sub(1),
        Shape::Mesh => n.saturating_mul(n.saturating_sub(1)) / 2,
    }
}

/// The (from, to) pairs of a shape over `nodes`.
pub fn shape_pairs(shape: Shape, nodes: &[String]) -> Vec<(String, String)> {
    match shape {
        Shape::Line => nodes
            .windows(2)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect(),
        Shape::Star => nodes
            .iter()
            .skip(1)
            .map(|leaf| (nodes[0].clone(), leaf.clone()))
            .collect(),
        Shape::Mesh => nodes
            .iter()
            .enumerate()
            .flat_map(|(i, a)| nodes[i + 1..].iter().map(move |b| (a.clone(), b.clone())))
            .collect(),
    }
}

/// `[[channels]]`: opened (and confirmed) before the first step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelDecl {
    pub name: String,
    pub from: String,
    pub to: String,
    /// Funding in shannons (the opener funds it all).
    pub amount: u64,
}

/// Expected payment outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayExpect {
    #[default]
    Success,
    Failed,
    /// Either outcome (the explorer's payments: a Stale or offline route fails legitimately).
    Any,
}

/// Expected answer to a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownExpect {
    #[default]
    Ok,
    Refused,
    /// Either answer.
    Any,
}

/// Expected audit outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditExpect {
    Passed,
    Failed,
}

fn one() -> u64 {
    1
}

/// One step. Every step is a table with exactly one of these keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start a stopped node.
    Start {
        node: String,
    },
    /// Stop a node cleanly.
    Stop {
        node: String,
    },
    /// Stop and start a node.
    Restart {
        node: String,
    },
    /// Kill a node (SIGKILL on the process driver).
    Crash {
        node: String,
    },
    /// `from` dials `to`.
    Connect {
        from: String,
        to: String,
    },
    /// Cut `a` and `b` apart: drop their connection and refuse `connect` between them until
    /// `heal`.
    Partition {
        a: String,
        b: String,
    },
    /// Undo a partition and reconnect (`a` dials).
    Heal {
        a: String,
        b: String,
    },
    Disconnect {
        from: String,
        to: String,
    },
    /// Freeze `node` where it stands (SIGSTOP on the process driver, `docker pause`): its
    /// sockets stay open, so its peers see a silent node, not a closed connection. Until
    /// `resume` no step may need its RPC or wait on its events (validated), quiescence counts
    /// its directions as frozen, and a `crash` kills it frozen. Needs a driver that can pause.
    Pause {
        node: String,
    },
    /// Thaw a paused node: it goes on from where it stood (the same run; a hold it was at
    /// still holds).
    Resume {
        node: String,
    },
    /// `from` dials `to` itself (its own `connect_peer`, past the cluster's partition
    /// bookkeeping); passes only if no connection between them is made within 3 s. The proof
    /// that a partition cut below the nodes holds against a node that redials: needs an earlier
    /// `partition` of the pair (not healed) and a driver that cuts partitions below the nodes.
    ExpectUnreachable {
        from: String,
        to: String,
    },
    /// Pay an invoice of `to` from `from` (direct or through one hop).
    Pay {
        from: String,
        to: String,
        amount: u64,
        #[serde(default)]
        expect: PayExpect,
        /// With `expect = "failed"`: text the failure reason must contain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason_contains: Option<String>,
    },
    /// Start a payment without waiting for it; remembered as `name` (see `expect_payment`).
    SendPayment {
        from: String,
        to: String,
        amount: u64,
        name: String,
    },
    /// Wait for a payment started with `send_payment` to end with `status`.
    ExpectPayment {
        name: String,
        status: PayExpect,
    },
    /// Hot backup of `node`, remembered as `name`.
    Backup {
        node: String,
        name: String,
    },
    /// Arm a backup of `node` taken by the node itself right after a protocol step
    /// (`sent:X` / `received:X`, optionally on `channel`, the `nth` time), remembered as `name`;
    /// the node does not stop there. A later `restore` waits until it is written.
    BackupAt {
        node: String,
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(default = "one")]
        nth: u64,
        name: String,
    },
    /// Stop `node` if running, restore the named backup, start it again.
    Restore {
        node: String,
        backup: String,
    },
    Mine {
        blocks: u64,
    },
    /// Arm a hold after a protocol step (`sent:X` / `received:X`).
    Hold {
        node: String,
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(default = "one")]
        nth: u64,
    },
    /// Wait until `node` is held.
    WaitHeld {
        node: String,
    },
    Release {
        node: String,
    },
    /// `shutdown_channel` from `node`.
    Shutdown {
        node: String,
        channel: String,
        #[serde(default)]
        force: bool,
        #[serde(default)]
        expect: ShutdownExpect,
    },
    /// Wait until `node` lists `channel` in `state` (`Stale`, `ChannelReady`, `Closed(0x1)`...).
    ExpectState {
        node: String,
        channel: String,
        state: String,
    },
    /// Wait for `node`'s audit of `channel` (in its current run) and check the outcome.
    ExpectAudit {
        node: String,
        channel: String,
        outcome: AuditExpect,
    },
    /// `node` has sent nothing on `channel` in its current run, except after the peer's
    /// ReestablishChannel.
    ExpectSilence {
        node: String,
        channel: String,
    },
    /// Wait until `node` has heard the peer's ReestablishChannel on `channel` in its current run.
    WaitReestablished {
        node: String,
        channel: String,
    },
    /// Wait until `node`'s committed local balance on `channel` is `local`.
    ExpectBalance {
        node: String,
        channel: String,
        local: u64,
    },
    /// Remember every wallet balance on the ledger (for `expect_wallet_change`).
    MarkWallets {},
    /// Wait until `node`'s wallet changed by `amount` since `mark_wallets` (mines as needed is
    /// not implied: mine first).
    ExpectWalletChange {
        node: String,
        amount: i64,
    },
    /// Check the invariants now (they are always checked at the end).
    CheckInvariants {},
    /// Wait until every message sent between connected running nodes has been handled by
    /// its receiver (no message in flight).
    WaitQuiescent {},
    /// Wait until the ledger holds a penalty transaction for `channel` (someone broadcast a
    /// revoked commitment of it and was punished). Needs `allow_penalties = true`.
    ExpectPenalty {
        channel: String,
    },
}

/// Every step verb, as serde spells it (the variant names of [`Step`], in declaration order).
pub fn step_verbs() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    use std::cell::Cell;

    /// A deserializer that only records the variant names serde asks an enum for.
    struct Capture<'a>(&'a Cell<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not an enum"))
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(variants);
            Err(de::Error::custom("variants recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
            ignored_any
        }
    }
    let variants = Cell::new(&[][..]);
    let _ = Step::deserialize(Capture(&variants));
    variants.get()
}

impl Step {
    /// The verb, as written in the file.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::Start { .. } => "start",
            Step::Stop { .. } => "stop",
            Step::Restart { .. } => "restart",
            Step::Crash { .. } => "crash",
            Step::Connect { .. } => "connect",
            Step::Partition { .. } => "partition",
            Step::Heal { .. } => "heal",
            Step::Disconnect { .. } => "disconnect",
            Step::Pause { .. } => "pause",
            Step::Resume { .. } => "resume",
            Step::ExpectUnreachable { .. } => "expect_unreachable",
            Step::Pay { .. } => "pay",
            Step::SendPayment { .. } => "send_payment",
            Step::ExpectPayment { .. } => "expect_payment",
            Step::Backup { .. } => "backup",
            Step::BackupAt { .. } => "backup_at",
            Step::Restore { .. } => "restore",
            Step::Mine { .. } => "mine",
            Step::Hold { .. } => "hold",
            Step::WaitHeld { .. } => "wait_held",
            Step::Release { .. } => "release",
            Step::Shutdown { .. } => "shutdown",
            Step::ExpectState { .. } => "expect_state",
            Step::ExpectAudit { .. } => "expect_audit",
            Step::ExpectSilence { .. } => "expect_silence",
            Step::WaitReestablished { .. } => "wait_reestablished",
            Step::ExpectBalance { .. } => "expect_balance",
            Step::MarkWallets {} => "mark_wallets",
            Step::ExpectWalletChange { .. } => "expect_wallet_change",
            Step::CheckInvariants {} => "check_invariants",
            Step::WaitQuiescent {} => "wait_quiescent",
            Step::ExpectPenalty { .. } => "expect_penalty",
        }
    }

    pub(crate) fn nodes(&self) -> Vec<&str> {
        match self {
            Step::Start { node }
            | Step::Pause { node }
            | Step::Resume { node }
            | Step::Stop { node }
            | Step::Restart { node }
            | Step::Crash { node }
            | Step::Backup { node, .. }
            | Step::BackupAt { node, .. }
            | Step::Restore { node, .. }
            | Step::Hold { node, .. }
            | Step::WaitHeld { node }
            | Step::Release { node }
            | Step::Shutdown { node, .. }
            | Step::ExpectState { node, .. }
            | Step::ExpectAudit { node, .. }
            | Step::ExpectSilence { node, .. }
            | Step::WaitReestablished { node, .. }
            | Step::ExpectBalance { node, .. }
            | Step::ExpectWalletChange { node, .. } => vec![node],
            Step::Partition { a, b } | Step::Heal { a, b } => vec![a, b],
            Step::Connect { from, to }
            | Step::Disconnect { from, to }
            | Step::ExpectUnreachable { from, to }
            | Step::Pay { from, to, .. }
            | Step::SendPayment { from, to, .. } => vec![from, to],
            Step::Mine { .. }
            | Step::MarkWallets {}
            | Step::CheckInvariants {}
            | Step::WaitQuiescent {}
            | Step::ExpectPenalty { .. }
            | Step::ExpectPayment { .. } => vec![],
        }
    }

    pub(crate) fn channel(&self) -> Option<&str> {
        match self {
            Step::Shutdown { channel, .. }
            | Step::ExpectState { channel, .. }
            | Step::ExpectAudit { channel, .. }
            | Step::ExpectSilence { channel, .. }
            | Step::WaitReestablished { channel, .. }
            | Step::ExpectBalance { channel, .. }
            | Step::ExpectPenalty { channel } => Some(channel),
            Step::Hold { channel, .. } | Step::BackupAt { channel, .. } => channel.as_deref(),
            _ => None,
        }
    }
}
