//! Scenario files: the format, its validation, and the interpreter (`run`).
//!
//! A scenario is a TOML file (see `scenarios/README.md`): nodes and their settings, channels
//! opened at the start, then `steps`, each a table with exactly one verb. The whole file is
//! checked before anything starts: unknown keys, unknown node, channel or backup names, and
//! steps that cannot apply are errors naming the file, line and column.

mod render;
pub(crate) mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dlp_node::config::{AuditPolicy, OnAuditFailure};
use dlp_node::store::Backend;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::HarnessError;

pub use render::render;
pub use run::{Outcome, run};

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

/// Line and column (1-based) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

fn invalid(path: &Path, text: &str, offset: usize, message: String) -> HarnessError {
    let (line, column) = line_col(text, offset);
    HarnessError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

impl Scenario {
    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Self, HarnessError> {
        let text = std::fs::read_to_string(path).map_err(|e| HarnessError::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Parse and validate scenario text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, HarnessError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            invalid(path, text, offset, e.message().trim().to_string())
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario")
            .to_string();
        let mut file = file;
        if let Some(topology) = &file.topology {
            let span = topology.span();
            let t = topology.get_ref();
            for n in &t.nodes {
                if !file.nodes.contains_key(n) {
                    return Err(invalid(
                        path,
                        text,
                        span.start,
                        format!("topology: unknown node {n:?}"),
                    ));
                }
            }
            if t.nodes.len() < 2 {
                return Err(invalid(
                    path,
                    text,
                    span.start,
                    "topology: needs at least two nodes".into(),
                ));
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
        let node_list = || {
            self.file
                .nodes
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut channels = BTreeSet::new();
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
            if c.amount == 0 {
                return Err(err(
                    ch.span().start,
                    format!("channel {:?}: amount must be positive", c.name),
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
                        channels.iter().cloned().collect::<Vec<_>>().join(", ")
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
                Step::BackupAt { step, nth, .. } if !valid_step(step) || *nth == 0 => {
                    return Err(err(
                        at,
                        format!(
                            "backup_at: step {step:?} must be sent:<Message> or received:<Message>, nth >= 1"
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
                    if !valid_step(step) || *nth == 0 {
                        return Err(err(
                            at,
                            format!(
                                "hold: step {step:?} must be sent:<Message> or received:<Message>, nth >= 1"
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
                Step::Pay { amount: 0, .. } => {
                    return Err(err(at, "pay: amount must be positive".into()));
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

/// `sent:<Message>` or `received:<Message>`.
fn valid_step(step: &str) -> bool {
    step.split_once(':')
        .is_some_and(|(d, m)| matches!(d, "sent" | "received") && !m.is_empty())
}

/// Every `*.toml` under `paths` (files as given, directories searched one level deep).
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
}
