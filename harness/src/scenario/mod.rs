//! Scenario files: the format, its validation, and the interpreter (`run`).
//!
//! A scenario is a TOML file (see `scenarios/README.md`): nodes and their settings, channels
//! opened at the start, then `steps`, each a table with exactly one verb. The whole file is
//! checked before anything starts: unknown keys, unknown node, channel or backup names, and
//! steps that cannot apply are errors naming the file, line and column.
//!
//! Every number that drives a loop, an allocation or a sum has a bound, checked before it is
//! used (counts before expansion: a topology's channels are counted, not generated, to be
//! refused), so a file that passes `check` cannot exhaust memory, overflow or run unbounded:
//! [`MAX_NODES`], [`MAX_CHANNELS`], [`MAX_AMOUNT`], [`MAX_NTH`], `mine` at most
//! [`dlp_chain::MAX_MINE_BLOCKS`] blocks per step, and the file itself ([`MAX_FILE_BYTES`],
//! [`MAX_NESTING`], [`MAX_KEY_PARTS`]: see `source.rs`). Each is documented next to its field in
//! `scenarios/README.md`.

mod render;
pub(crate) mod run;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use dlp_chain::MAX_MINE_BLOCKS;
use dlp_node::config::{AuditPolicy, OnAuditFailure};
use dlp_node::rpc::limits::MAX_STEP_LEN;
use dlp_node::store::Backend;
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::HarnessError;
use crate::network::WALLET_FUNDS;
use source::{bound_message, clip, list};

pub use render::render;
pub use run::{Outcome, run};
pub use source::{MAX_FILE_BYTES, MAX_KEY_PARTS, MAX_NESTING};

/// Most nodes in one scenario (each is a running node with its own store). The explorer uses
/// at most 4; a large mesh is the way to hit this.
pub const MAX_NODES: usize = 64;

/// Most channels in one scenario, those listed plus those a topology makes (a mesh of `n` nodes
/// makes `n(n-1)/2`). Every channel is opened and confirmed before the first step.
pub const MAX_CHANNELS: usize = 256;

/// Largest amount in shannons: a channel's funding, a payment, an expected channel balance. It
/// is what the faucet gives each node's wallet, so no channel (nor the sum of one node's
/// channels) can exceed it, and sums of amounts stay far from overflowing.
pub const MAX_AMOUNT: u64 = WALLET_FUNDS;

/// Largest `nth` of a `hold` or `backup_at`: no run sees a protocol step a million times; a
/// larger number is a typo that could only time out.
pub const MAX_NTH: u64 = 1_000_000;

/// Longest node name; a node name is also its directory in the run directory, so it is made of
/// ASCII letters, digits, `_` and `-` only.
pub const MAX_NAME_CHARS: usize = 32;

/// A parsed, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: PathBuf,
    pub name: String,
    pub file: ScenarioFile,
}

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

    fn nodes(&self) -> Vec<&str> {
        match self {
            Step::Start { node }
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

    fn channel(&self) -> Option<&str> {
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

/// The offset of a step's own content: a `[[steps]]` table's span starts at its header, but
/// the verb is on the next line.
pub(crate) fn step_offset(text: &str, span_start: usize) -> usize {
    let rest = &text[span_start.min(text.len())..];
    if rest.starts_with("[[") {
        match rest.find('\n') {
            Some(nl) => span_start + nl + 1,
            None => span_start,
        }
    } else {
        span_start
    }
}

/// Line and column (1-based, the column in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    source::line_col(text.as_bytes(), offset)
}

/// An invalid-file error at `offset`; every value the message quotes is clipped.
fn invalid(path: &Path, text: &str, offset: usize, message: String) -> HarnessError {
    let (line, column) = line_col(text, offset);
    HarnessError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message: bound_message(&message),
    }
}

/// A TOML or serde error as a located message. The toml crate's words for an enum written as a
/// table with no key or several ("wanted exactly 1 element, ...") are, for a step, replaced by
/// what the file must say (a unit test pins the wording down).
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> HarnessError {
    let message = e.message().trim();
    if let Some(span) = e.span() {
        if (message.starts_with("wanted exactly 1 element")
            || message.starts_with("expected table with exactly 1 entry"))
            && let Some((offset, message)) = verb_count_error(text, &span)
        {
            return invalid(path, text, offset, message);
        }
        return invalid(path, text, span.start, message.to_string());
    }
    invalid(path, text, 0, message.to_string())
}

/// If `span` is a step table with no verb or several, where and what to say about it.
fn verb_count_error(text: &str, span: &Range<usize>) -> Option<(usize, String)> {
    let doc = DeTable::parse(text).ok()?;
    let (_, steps) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == "steps")?;
    let DeValue::Array(items) = steps.get_ref() else {
        return None;
    };
    let step = items.iter().find(|item| item.span() == *span)?;
    let DeValue::Table(table) = step.get_ref() else {
        return None;
    };
    let mut keys: Vec<(usize, &str)> = table
        .iter()
        .map(|(k, _)| (k.span().start, k.get_ref().as_ref()))
        .collect();
    keys.sort_unstable();
    let names: Vec<&str> = keys.iter().map(|(_, k)| *k).collect();
    Some(match keys.first() {
        None => (
            span.start,
            format!(
                "a step has exactly one verb; this one has none (verbs: {})",
                step_verbs().join(", ")
            ),
        ),
        Some((first, _)) => (
            *first,
            format!(
                "a step has exactly one verb; this one has {}: {}",
                names.len(),
                list(&names)
            ),
        ),
    })
}

/// Where the `n`th (0-based) key of the top-level table `table` is written, in file order.
fn nth_key_offset(text: &str, table: &str, n: usize) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let (_, value) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == table)?;
    let DeValue::Table(t) = value.get_ref() else {
        return None;
    };
    let mut offsets: Vec<usize> = t.iter().map(|(k, _)| k.span().start).collect();
    offsets.sort_unstable();
    offsets.get(n).copied()
}

/// Where key `key` of the top-level table `table` is written.
fn key_offset(text: &str, table: &str, key: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let (_, value) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == table)?;
    let DeValue::Table(t) = value.get_ref() else {
        return None;
    };
    t.iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(k, _)| k.span().start)
}

/// A node name: 1 to [`MAX_NAME_CHARS`] ASCII letters, digits, `_` or `-`.
fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Scenario {
    /// Read, parse and validate a scenario file. Only a regular file of at most
    /// [`MAX_FILE_BYTES`] is read (a FIFO is refused without being opened), and it must be
    /// UTF-8.
    pub fn load(path: &Path) -> Result<Self, HarnessError> {
        let bytes = source::read(path)?;
        let text = source::decode(path, &bytes)?;
        Self::parse(path, text)
    }

    /// Parse and validate scenario text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, HarnessError> {
        // Before the TOML parser: its recursion limits report no position for a long dotted
        // key, and the 81st bracket rather than where the nesting starts.
        source::check_nesting(text)
            .map_err(|(offset, message)| invalid(path, text, offset, message))?;
        let file: ScenarioFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario")
            .to_string();
        let mut file = file;
        Self::check_counts(path, text, &file)?;
        if let Some(topology) = &file.topology {
            let span = topology.span();
            let t = topology.get_ref();
            let err = |message: String| invalid(path, text, span.start, message);
            // Count before expanding: a mesh's pairs grow with the square of its nodes.
            let n = t.nodes.len();
            if n > MAX_NODES {
                return Err(err(format!(
                    "topology: {n} nodes; a scenario has at most {MAX_NODES}"
                )));
            }
            if n < 2 {
                return Err(err("topology: needs at least two nodes".into()));
            }
            let mut seen = BTreeSet::new();
            for node in &t.nodes {
                if !file.nodes.contains_key(node) {
                    return Err(err(format!(
                        "topology: unknown node {} (nodes: {})",
                        clip(node),
                        list(&file.nodes.keys().collect::<Vec<_>>())
                    )));
                }
                if !seen.insert(node) {
                    return Err(err(format!("topology: node {} listed twice", clip(node))));
                }
            }
            let pairs = shape_pair_count(t.shape, n);
            let listed = file.channels.len();
            if listed.saturating_add(pairs) > MAX_CHANNELS {
                return Err(err(format!(
                    "topology: a {} of {n} nodes makes {pairs} channels, {} with the \
                     {listed} under [[channels]]; a scenario has at most {MAX_CHANNELS}",
                    t.shape.name(),
                    listed + pairs
                )));
            }
            for (from, to) in shape_pairs(t.shape, &t.nodes) {
                file.channels.push(Spanned::new(
                    span.clone(),
                    ChannelDecl {
                        name: format!("{from}-{to}"),
                        from,
                        to,
                        amount: t.amount,
                    },
                ));
            }
        }
        let scenario = Scenario {
            path: path.to_path_buf(),
            name,
            file,
        };
        scenario.validate(text)?;
        Ok(scenario)
    }

    /// The counts that drive allocation and run time, before anything is expanded or run.
    fn check_counts(path: &Path, text: &str, file: &ScenarioFile) -> Result<(), HarnessError> {
        let nodes = file.nodes.len();
        if nodes > MAX_NODES {
            let at = nth_key_offset(text, "nodes", MAX_NODES).unwrap_or(0);
            return Err(invalid(
                path,
                text,
                at,
                format!(
                    "{nodes} nodes; a scenario has at most {MAX_NODES} (the {}th is here)",
                    MAX_NODES + 1
                ),
            ));
        }
        for name in file.nodes.keys() {
            if !valid_node_name(name) {
                let at = key_offset(text, "nodes", name).unwrap_or(0);
                return Err(invalid(
                    path,
                    text,
                    at,
                    format!(
                        "node name {}: 1 to {MAX_NAME_CHARS} ASCII letters, digits, '_' or '-' \
                         (it names the node's directory)",
                        clip(name)
                    ),
                ));
            }
        }
        if let Some(extra) = file.channels.get(MAX_CHANNELS) {
            return Err(invalid(
                path,
                text,
                extra.span().start,
                format!(
                    "{} channels; a scenario has at most {MAX_CHANNELS} (the {}th is here)",
                    file.channels.len(),
                    MAX_CHANNELS + 1
                ),
            ));
        }
        Ok(())
    }

    /// The backends this scenario runs on.
    pub fn backends(&self) -> Vec<Backend> {
        match &self.file.backends {
            None => vec![Backend::Rocksdb, Backend::Sqlite],
            Some(list) => list
                .iter()
                .filter_map(|b| b.get_ref().parse().ok())
                .collect(),
        }
    }

    fn validate(&self, text: &str) -> Result<(), HarnessError> {
        let err = |offset: usize, message: String| invalid(&self.path, text, offset, message);
        if self.file.nodes.is_empty() {
            return Err(err(
                0,
                "a scenario needs at least one node under [nodes.<name>]".into(),
            ));
        }
        if let Some(list) = &self.file.backends {
            for b in list {
                if b.get_ref().parse::<Backend>().is_err() {
                    return Err(err(
                        b.span().start,
                        format!(
                            "unknown backend {:?}: expected \"rocksdb\" or \"sqlite\"",
                            b.get_ref()
                        ),
                    ));
                }
            }
        }
        let known = |name: &str| self.file.nodes.contains_key(name);
        let node_list = || list(&self.file.nodes.keys().collect::<Vec<_>>());
        let mut channels = BTreeSet::new();
        // What each node funds in all: it opens its channels from one faucet payment.
        let mut funded: BTreeMap<&str, u64> = BTreeMap::new();
        for ch in &self.file.channels {
            let c = ch.get_ref();
            for n in [&c.from, &c.to] {
                if !known(n) {
                    return Err(err(
                        ch.span().start,
                        format!(
                            "channel {:?}: unknown node {n:?} (nodes: {})",
                            c.name,
                            node_list()
                        ),
                    ));
                }
            }
            if c.from == c.to {
                return Err(err(
                    ch.span().start,
                    format!("channel {:?} connects {} to itself", c.name, c.from),
                ));
            }
            if c.amount == 0 || c.amount > MAX_AMOUNT {
                return Err(err(
                    ch.span().start,
                    format!(
                        "channel {:?}: amount {} must be 1 to {MAX_AMOUNT} shannons (a node's \
                         wallet)",
                        c.name, c.amount
                    ),
                ));
            }
            let total = funded.entry(&c.from).or_default();
            *total = total.saturating_add(c.amount);
            if *total > MAX_AMOUNT {
                return Err(err(
                    ch.span().start,
                    format!(
                        "channel {:?}: {} opens {} shannons of channels with it, more than its \
                         wallet of {MAX_AMOUNT}",
                        c.name, c.from, *total
                    ),
                ));
            }
            if !channels.insert(c.name.clone()) {
                return Err(err(
                    ch.span().start,
                    format!("channel name {:?} used twice", c.name),
                ));
            }
        }
        if let Some(sweep) = &self.file.sweep {
            let node = &sweep.get_ref().node;
            if !known(node) {
                return Err(err(
                    sweep.span().start,
                    format!("sweep: unknown node {node:?} (nodes: {})", node_list()),
                ));
            }
            if !self
                .file
                .channels
                .iter()
                .any(|c| &c.get_ref().from == node || &c.get_ref().to == node)
            {
                return Err(err(
                    sweep.span().start,
                    format!("sweep: {node} has no channel to sweep"),
                ));
            }
        }
        let mut backups = BTreeSet::new();
        let mut held = BTreeSet::new();
        let mut payments = BTreeSet::new();
        for step in &self.file.steps {
            let at = step_offset(text, step.span().start);
            let s = step.get_ref();
            for n in s.nodes() {
                if !known(n) {
                    return Err(err(
                        at,
                        format!("{}: unknown node {n:?} (nodes: {})", s.verb(), node_list()),
                    ));
                }
            }
            if let Some(c) = s.channel()
                && !channels.contains(c)
            {
                return Err(err(
                    at,
                    format!(
                        "{}: unknown channel {c:?} (channels: {})",
                        s.verb(),
                        list(&channels.iter().collect::<Vec<_>>())
                    ),
                ));
            }
            match s {
                Step::SendPayment { name, .. } if !payments.insert(name.clone()) => {
                    return Err(err(at, format!("payment name {name:?} used twice")));
                }
                Step::ExpectPayment { name, .. } if !payments.contains(name) => {
                    return Err(err(
                        at,
                        format!("expect_payment: no earlier send_payment named {name:?}"),
                    ));
                }
                Step::Backup { name, .. } | Step::BackupAt { name, .. }
                    if !backups.insert(name.clone()) =>
                {
                    return Err(err(at, format!("backup name {name:?} used twice")));
                }
                Step::BackupAt { step, nth, .. } if !valid_step(step) || !valid_nth(*nth) => {
                    return Err(err(
                        at,
                        format!(
                            "backup_at: step {step:?} must be sent:<Message> or received:<Message> \
                             (at most {MAX_STEP_LEN} bytes), nth 1 to {MAX_NTH} (got {nth})"
                        ),
                    ));
                }
                Step::ExpectPenalty { .. } if !self.file.allow_penalties => {
                    return Err(err(
                        at,
                        "expect_penalty: the scenario must set allow_penalties = true".into(),
                    ));
                }
                Step::Restore { backup, .. } if !backups.contains(backup) => {
                    return Err(err(
                        at,
                        format!("restore: no earlier backup step named {backup:?}"),
                    ));
                }
                Step::Hold {
                    node, step, nth, ..
                } => {
                    if !valid_step(step) || !valid_nth(*nth) {
                        return Err(err(
                            at,
                            format!(
                                "hold: step {step:?} must be sent:<Message> or received:<Message> \
                                 (at most {MAX_STEP_LEN} bytes), nth 1 to {MAX_NTH} (got {nth})"
                            ),
                        ));
                    }
                    held.insert(node.clone());
                }
                Step::WaitHeld { node } | Step::Release { node } if !held.contains(node) => {
                    return Err(err(
                        at,
                        format!("{}: {node} has no hold armed before this step", s.verb()),
                    ));
                }
                Step::Pay { amount, .. } | Step::SendPayment { amount, .. }
                    if *amount == 0 || *amount > MAX_AMOUNT =>
                {
                    return Err(err(
                        at,
                        format!(
                            "{}: amount {amount} must be 1 to {MAX_AMOUNT} shannons (a node's \
                             wallet)",
                            s.verb()
                        ),
                    ));
                }
                Step::Mine { blocks } if *blocks == 0 || *blocks > MAX_MINE_BLOCKS => {
                    return Err(err(
                        at,
                        format!(
                            "mine: blocks {blocks} must be 1 to {MAX_MINE_BLOCKS} (the ledger's \
                             limit per call; add more mine steps for more)"
                        ),
                    ));
                }
                Step::ExpectBalance { local, .. } if *local > MAX_AMOUNT => {
                    return Err(err(
                        at,
                        format!(
                            "expect_balance: local {local} is more than any channel holds \
                             ({MAX_AMOUNT} shannons at most)"
                        ),
                    ));
                }
                Step::ExpectWalletChange { amount, .. }
                    if amount.unsigned_abs() > wallet_change_bound(self.file.nodes.len()) =>
                {
                    return Err(err(
                        at,
                        format!(
                            "expect_wallet_change: amount {amount} is more than the faucet gave \
                             all {} nodes (at most {} shannons either way)",
                            self.file.nodes.len(),
                            wallet_change_bound(self.file.nodes.len())
                        ),
                    ));
                }
                Step::Pay { from, to, .. } if from == to => {
                    return Err(err(at, format!("pay: {from} cannot pay itself")));
                }
                Step::Pay {
                    expect: PayExpect::Success,
                    reason_contains: Some(_),
                    ..
                } => {
                    return Err(err(
                        at,
                        "pay: reason_contains needs expect = \"failed\"".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// An `nth` of a hold or backup_at: 1 to [`MAX_NTH`].
fn valid_nth(nth: u64) -> bool {
    (1..=MAX_NTH).contains(&nth)
}

/// Most a wallet can change by: everything the faucet gave the scenario's nodes.
fn wallet_change_bound(nodes: usize) -> u64 {
    MAX_AMOUNT.saturating_mul(nodes as u64)
}

/// `sent:<Message>` or `received:<Message>`, at most [`MAX_STEP_LEN`] bytes (what the node's
/// `dev_hold` accepts).
fn valid_step(step: &str) -> bool {
    step.len() <= MAX_STEP_LEN
        && step
            .split_once(':')
            .is_some_and(|(d, m)| matches!(d, "sent" | "received") && !m.is_empty())
}

/// Every `*.toml` under `paths` (files as given, directories searched one level deep). Entries
/// named `*.toml` that are not regular files are listed too, for [`Scenario::load`] to refuse
/// by name; finding nothing at all is an error, not an empty success.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, HarnessError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| HarnessError::io(path, e))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    if out.is_empty() {
        return Err(HarnessError::NoScenarios {
            paths: paths.to_vec(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, HarnessError> {
        Scenario::parse(Path::new("t.toml"), text)
    }

    const BASE: &str = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
        [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n";

    #[test]
    fn a_valid_scenario_parses() {
        let s = parse(&format!(
            "{BASE}[[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 10 }}\n\
             [[steps]]\nbackup = {{ node = \"bob\", name = \"b1\" }}\n\
             [[steps]]\nrestore = {{ node = \"bob\", backup = \"b1\" }}\n"
        ))
        .expect("valid");
        assert_eq!(s.file.steps.len(), 3);
        assert_eq!(s.backends(), vec![Backend::Rocksdb, Backend::Sqlite]);
    }

    fn error_at(text: &str) -> (usize, String) {
        match parse(text) {
            Err(HarnessError::Invalid { line, message, .. }) => (line, message),
            other => panic!("expected an invalid-file error, got {other:?}"),
        }
    }

    #[test]
    fn topologies_expand_into_named_channels() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let pairs = |shape| shape_pairs(shape, &names).len();
        assert_eq!(
            (pairs(Shape::Line), pairs(Shape::Star), pairs(Shape::Mesh)),
            (3, 3, 6)
        );
        let s = parse(
            "description = \"d\"\n[nodes.a]\n[nodes.b]\n[nodes.c]\n\
             topology = { shape = \"line\", nodes = [\"a\", \"b\", \"c\"], amount = 5 }\n\
             [[steps]]\nexpect_state = { node = \"b\", channel = \"b-c\", state = \"ChannelReady\" }\n",
        );
        let err = s.expect_err("topology after a table header belongs to [nodes.c]");
        assert!(err.to_string().contains("topology"), "{err}");
        let s = parse(
            "description = \"d\"\n\
             topology = { shape = \"line\", nodes = [\"a\", \"b\", \"c\"], amount = 5 }\n\
             [nodes.a]\n[nodes.b]\n[nodes.c]\n\
             [[steps]]\nexpect_state = { node = \"b\", channel = \"b-c\", state = \"ChannelReady\" }\n",
        )
        .expect("valid");
        let channels: Vec<String> = s
            .file
            .channels
            .iter()
            .map(|c| c.get_ref().name.clone())
            .collect();
        assert_eq!(channels, ["a-b", "b-c"]);
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let (line, msg) = error_at(&format!(
            "{BASE}[[steps]]\npay = {{ from = \"alice\", to = \"carol\", amount = 1 }}\n"
        ));
        assert_eq!(line, 10);
        assert!(msg.contains("unknown node \"carol\""), "{msg}");
        let (line, msg) = error_at(&format!(
            "{BASE}[[steps]]\nrestore = {{ node = \"bob\", backup = \"nope\" }}\n"
        ));
        assert_eq!(line, 10);
        assert!(msg.contains("no earlier backup"), "{msg}");
        let (_, msg) = error_at(&format!(
            "{BASE}[[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 1, colour = 2 }}\n"
        ));
        assert!(msg.contains("colour"), "{msg}");
        let (_, msg) = error_at(&format!(
            "{BASE}[[steps]]\nteleport = {{ node = \"bob\" }}\n"
        ));
        assert!(msg.contains("teleport"), "{msg}");
        let (_, msg) = error_at(&format!(
            "{BASE}[[steps]]\nwait_held = {{ node = \"bob\" }}\n"
        ));
        assert!(msg.contains("no hold armed"), "{msg}");
        let (line, msg) = error_at("description = \"d\"\nnodez = 1\n");
        assert_eq!(line, 2);
        assert!(msg.contains("nodez"), "{msg}");
    }

    fn error_at_column(text: &str) -> (usize, usize, String) {
        match parse(text) {
            Err(HarnessError::Invalid {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected an invalid-file error, got {other:?}"),
        }
    }

    #[test]
    fn a_step_with_several_verbs_or_none_says_so_at_its_line() {
        let (line, msg) = error_at(&format!(
            "{BASE}[[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 1 }}\n\
             mine = {{ blocks = 1 }}\n"
        ));
        assert_eq!(line, 10);
        assert_eq!(
            msg,
            "a step has exactly one verb; this one has 2: pay, mine"
        );
        let (line, msg) = error_at(&format!(
            "{BASE}[[steps]]\n[[steps]]\nmine = {{ blocks = 1 }}\n"
        ));
        assert_eq!(line, 9, "the empty step's header");
        assert!(
            msg.starts_with("a step has exactly one verb; this one has none (verbs: start, stop,")
                && msg.contains("mine")
                && msg.contains("expect_penalty"),
            "{msg}"
        );
        let (line, msg) = error_at(
            "description = \"d\"\nsteps = [{ mine = { blocks = 1 }, crash = { node = \"a\" } }]\n\
             [nodes.a]\n",
        );
        assert_eq!(line, 2);
        assert!(msg.ends_with("has 2: mine, crash"), "{msg}");
    }

    #[test]
    fn deep_nesting_is_refused_where_it_starts_without_overflowing_the_stack() {
        let (line, column, msg) = error_at_column(&format!("{BASE}x = {}\n", "[".repeat(100_000)));
        assert_eq!((line, column), (9, 5), "{msg}");
        assert!(msg.contains("nested more than 32 deep"), "{msg}");
        let (line, column, msg) =
            error_at_column(&format!("{BASE}{} = 1\n", vec!["k"; 100].join(".")));
        assert_eq!((line, column), (9, 1), "{msg}");
        assert!(msg.contains("more than 32 dotted parts"), "{msg}");
        let (line, _, msg) = error_at_column(&format!(
            "{BASE}[[steps]]\nmine = {}\n",
            "{ a = ".repeat(50_000)
        ));
        assert_eq!(line, 10, "{msg}");
    }

    #[test]
    fn values_quoted_in_errors_are_clipped() {
        let huge = "x".repeat(1 << 20);
        for text in [
            format!("{BASE}[[steps]]\nmine = {{ blocks = \"{huge}\" }}\n"),
            format!("{BASE}[[steps]]\npay = {{ from = \"{huge}\", to = \"bob\", amount = 1 }}\n"),
            format!("{BASE}\"{huge}\" = 1\n"),
            format!("{BASE}[[steps]]\nhold = {{ node = \"bob\", step = \"{huge}\" }}\n"),
            format!(
                "{BASE}[[steps]]\nexpect_state = {{ node = \"bob\", channel = \"{huge}\", state = \"x\" }}\n"
            ),
        ] {
            let err = parse(&text).expect_err("invalid");
            let shown = err.to_string();
            assert!(
                shown.len() < 300 && shown.contains("1048576 bytes"),
                "{} bytes: {}",
                shown.len(),
                &shown[..shown.len().min(400)]
            );
        }
        // An unknown verb is echoed clipped, followed by every verb there is.
        let err = parse(&format!("{BASE}[[steps]]\n{huge} = {{ node = \"bob\" }}\n"))
            .expect_err("unknown verb");
        let shown = err.to_string();
        assert!(
            shown.len() < 700 && shown.contains("1048576 bytes") && shown.contains("`mine`"),
            "{} bytes: {}",
            shown.len(),
            &shown[..shown.len().min(800)]
        );
    }

    #[test]
    fn non_utf8_is_an_invalid_file_at_its_line_and_byte() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bin.toml");
        std::fs::write(&path, b"description = \"d\"\n[nodes.a\xffb]\n").expect("write");
        match Scenario::load(&path) {
            Err(HarnessError::Invalid {
                line,
                column,
                message,
                ..
            }) => {
                assert_eq!((line, column), (2, 9));
                assert_eq!(
                    message,
                    "not UTF-8 (byte 0xff at offset 26); scenario files are UTF-8 text"
                );
            }
            other => panic!("expected an invalid-file error, got {other:?}"),
        }
    }

    #[test]
    fn only_regular_files_of_at_most_1_mib_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("dir.toml");
        std::fs::create_dir(&sub).expect("mkdir");
        let socket = dir.path().join("sock.toml");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        for (path, kind) in [
            (sub, "a directory"),
            (socket, "a socket"),
            (PathBuf::from("/dev/null"), "a character device"),
        ] {
            let err = Scenario::load(&path).expect_err("not a regular file");
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: not a regular file ({kind}); a scenario is a regular *.toml file",
                    path.display()
                )
            );
        }
        let big = dir.path().join("big.toml");
        let text = format!("description = \"{}\"\n[nodes.a]\n", "x".repeat(1 << 20));
        std::fs::write(&big, &text).expect("write");
        let err = Scenario::load(&big).expect_err("too large");
        assert!(
            err.to_string()
                .contains("a scenario file is at most 1048576 bytes (1 MiB)"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_selection_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("notes.txt"), "not a scenario").expect("write");
        let err = discover(&[dir.path().to_path_buf()]).expect_err("nothing to check");
        assert_eq!(
            err.to_string(),
            format!("no scenario files (*.toml) in {}", dir.path().display())
        );
    }

    #[test]
    fn mine_is_bounded_by_the_ledgers_limit_per_call() {
        let mine = |blocks: &str| format!("{BASE}[[steps]]\nmine = {{ blocks = {blocks} }}\n");
        parse(&mine("10_000")).expect("the limit itself");
        for blocks in ["4294967296", "10_001", "0"] {
            let (line, msg) = error_at(&mine(blocks));
            assert_eq!(line, 10);
            assert!(msg.contains("must be 1 to 10000"), "{msg}");
        }
    }

    #[test]
    fn counts_are_checked_before_a_topology_is_expanded() {
        let nodes = |n: usize| {
            (0..n)
                .map(|i| format!("\"n{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let declared = |n: usize| {
            (0..n)
                .map(|i| format!("[nodes.n{i}]\n"))
                .collect::<String>()
        };
        // The file: 3,000 names in a mesh (4.5 million pairs) is refused at once.
        let (line, msg) = error_at(&format!(
            "description = \"d\"\ntopology = {{ shape = \"mesh\", nodes = [{}], amount = 5 }}\n{}",
            nodes(3000),
            declared(3000)
        ));
        assert!(
            msg.contains("3000 nodes; a scenario has at most 64"),
            "{msg}"
        );
        assert_eq!(line, 67, "the 65th node");
        // The same names over two declared nodes: refused for the count, not by expanding.
        let (_, msg) = error_at(&format!(
            "description = \"d\"\ntopology = {{ shape = \"mesh\", nodes = [{}], amount = 5 }}\n{}",
            nodes(3000),
            declared(2)
        ));
        assert!(
            msg.contains("topology: 3000 nodes; a scenario has at most 64"),
            "{msg}"
        );
        // 24 nodes are allowed, but their mesh makes 276 channels.
        let (line, msg) = error_at(&format!(
            "description = \"d\"\ntopology = {{ shape = \"mesh\", nodes = [{}], amount = 5 }}\n{}",
            nodes(24),
            declared(24)
        ));
        assert_eq!(line, 2);
        assert!(
            msg.contains("a mesh of 24 nodes makes 276 channels"),
            "{msg}"
        );
        parse(&format!(
            "description = \"d\"\ntopology = {{ shape = \"line\", nodes = [{}], amount = 5 }}\n{}",
            nodes(64),
            declared(64)
        ))
        .expect("64 nodes in a line");
        let (line, msg) = error_at(&format!("description = \"d\"\n{}", declared(65)));
        assert_eq!(line, 66, "the 65th node");
        assert!(msg.contains("65 nodes; a scenario has at most 64"), "{msg}");
        let (_, msg) = error_at(&format!(
            "description = \"d\"\ntopology = {{ shape = \"line\", nodes = [\"n0\", \"n1\", \"n0\"], amount = 5 }}\n{}",
            declared(2)
        ));
        assert!(msg.contains("node \"n0\" listed twice"), "{msg}");
    }

    #[test]
    fn names_and_amounts_are_bounded() {
        let (line, msg) = error_at("description = \"d\"\n[nodes.alice]\n[nodes.\"../x\"]\n");
        assert_eq!(line, 3);
        assert!(msg.contains("node name \"../x\""), "{msg}");
        let channel = |amount: &str| {
            format!(
                "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
                 [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = {amount}\n"
            )
        };
        parse(&channel("100_000_000_000")).expect("a whole wallet");
        let (_, msg) = error_at(&channel("100_000_000_001"));
        assert!(msg.contains("must be 1 to 100000000000"), "{msg}");
        // Two channels of a whole wallet each: their sum is more than one wallet.
        let (line, msg) = error_at(&format!(
            "{}[[channels]]\nname = \"ab2\"\nfrom = \"alice\"\nto = \"bob\"\namount = 100_000_000_000\n",
            channel("100_000_000_000")
        ));
        assert_eq!(line, 9);
        assert!(msg.contains("alice opens 200000000000 shannons"), "{msg}");
        for step in [
            "pay = { from = \"alice\", to = \"bob\", amount = 9223372036854775807 }",
            "send_payment = { from = \"alice\", to = \"bob\", amount = 0, name = \"p\" }",
            "hold = { node = \"bob\", step = \"sent:X\", nth = 9223372036854775807 }",
            "backup_at = { node = \"bob\", step = \"sent:X\", nth = 1_000_001, name = \"b\" }",
            "expect_balance = { node = \"bob\", channel = \"ab\", local = 9223372036854775807 }",
            "expect_wallet_change = { node = \"bob\", amount = -9223372036854775808 }",
            &format!(
                "hold = {{ node = \"bob\", step = \"sent:{}\" }}",
                "X".repeat(124)
            ),
        ] {
            let (line, msg) = error_at(&format!("{BASE}[[steps]]\n{step}\n"));
            assert_eq!(line, 10, "{step}: {msg}");
        }
    }
}
