//! Everything a scenario file is checked for before anything starts, each error naming the
//! file, line and column and what was expected.
//!
//! Order: the text's nesting (before the TOML parser, whose recursion limit reports no
//! position), the TOML and serde shape (unknown keys, wrong types, a step with no verb or
//! several), the counts that drive allocation (nodes, channels, a topology's pairs: counted
//! before anything is expanded), then names and step preconditions (unknown nodes, channels,
//! backups and payments; a `wait_held` without a `hold`; a `restore` before its backup; what
//! a paused node cannot do, and `expect_unreachable` without a partition: `liveness.rs`; the
//! inspection verbs' backups, paths and states: `inspect.rs`).
//!
//! Every number that drives a loop, an allocation or a sum has a bound, checked before it is
//! used, so a file that passes `check` cannot exhaust memory, overflow or run unbounded:
//! [`MAX_NODES`], [`MAX_CHANNELS`], [`MAX_AMOUNT`], [`MAX_NTH`], `mine` at most
//! [`dlp_chain::MAX_MINE_BLOCKS`] blocks per step, and the file itself (`source.rs`). Each is
//! documented next to its field in `scenarios/README.md`.

use std::collections::BTreeSet;
use std::path::Path;

use dlp_chain::MAX_MINE_BLOCKS;
use dlp_node_api::{Backend, MAX_STEP_LEN, MessageName};
use toml::Spanned;

use super::Scenario;
use super::channels::Channels;
use super::file::{ChannelDecl, PayExpect, ScenarioFile, Step, shape_pair_count, shape_pairs};
use super::inspect::Inspections;
use super::liveness::Liveness;
use super::locate::{invalid, key_offset, line_col, nth_key_offset, step_offset, toml_error};
use super::source::{self, clip, list};
use crate::cluster::WALLET_FUNDS;
use crate::error::HarnessError;

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

/// Largest `fee_rate` of a node: a million millionths, a fee as large as what it forwards.
const MAX_FEE_RATE: u64 = 1_000_000;

/// Longest node name; a node name is also its directory in the run directory, so it is made of
/// ASCII letters, digits, `_` and `-` only.
pub const MAX_NAME_CHARS: usize = 32;

/// Parse and validate scenario text (`path` names it in errors).
pub(super) fn parse(path: &Path, text: &str) -> Result<Scenario, HarnessError> {
    // Before the TOML parser: its recursion limits report no position for a long dotted
    // key, and the 81st bracket rather than where the nesting starts.
    source::check_nesting(text)
        .map_err(|(offset, message)| invalid(path, text, offset, message))?;
    let mut file: ScenarioFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    check_counts(path, text, &file)?;
    expand_topology(path, text, &mut file)?;
    let scenario = Scenario {
        path: path.to_path_buf(),
        name,
        file,
        text: text.to_string(),
    };
    Checker {
        path,
        text,
        file: &scenario.file,
    }
    .check()?;
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
    for (name, decl) in &file.nodes {
        if let Some(rate) = decl.fee_rate.filter(|r| *r > MAX_FEE_RATE) {
            let at = key_offset(text, "nodes", name).unwrap_or(0);
            return Err(invalid(
                path,
                text,
                at,
                format!(
                    "node {}: fee_rate {rate} is more than {MAX_FEE_RATE} millionths (a fee as \
                     large as the amount forwarded)",
                    clip(name)
                ),
            ));
        }
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
    let opened_in_steps = file
        .steps
        .iter()
        .filter(|s| matches!(s.get_ref(), Step::OpenChannel { .. }));
    if let Some(extra) = opened_in_steps
        .clone()
        .nth(MAX_CHANNELS.saturating_sub(file.channels.len()))
    {
        return Err(invalid(
            path,
            text,
            step_offset(text, extra.span().start),
            format!(
                "{} channels with the {} of open_channel steps; a scenario has at most \
                 {MAX_CHANNELS} (the {}th is opened here)",
                file.channels.len() + opened_in_steps.count(),
                file.channels.len(),
                MAX_CHANNELS + 1
            ),
        ));
    }
    Ok(())
}

/// Add the topology's channels to `channels`, after counting them (a mesh's pairs grow with
/// the square of its nodes).
fn expand_topology(path: &Path, text: &str, file: &mut ScenarioFile) -> Result<(), HarnessError> {
    let Some(topology) = &file.topology else {
        return Ok(());
    };
    let span = topology.span();
    let t = topology.get_ref();
    let err = |message: String| invalid(path, text, span.start, message);
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
            "topology: a {} of {n} nodes makes {pairs} channels, {} with the {listed} under \
             [[channels]]; a scenario has at most {MAX_CHANNELS}",
            t.shape.name(),
            listed + pairs
        )));
    }
    let expanded: Vec<Spanned<ChannelDecl>> = shape_pairs(t.shape, &t.nodes)
        .into_iter()
        .map(|(from, to)| {
            Spanned::new(
                span.clone(),
                ChannelDecl {
                    name: format!("{from}-{to}"),
                    from,
                    to,
                    amount: t.amount,
                },
            )
        })
        .collect();
    file.channels.extend(expanded);
    Ok(())
}

/// Names and preconditions of a parsed, counted file.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    file: &'a ScenarioFile,
}

impl Checker<'_> {
    fn err(&self, offset: usize, message: String) -> HarnessError {
        invalid(self.path, self.text, offset, message)
    }

    fn known(&self, node: &str) -> bool {
        self.file.nodes.contains_key(node)
    }

    fn node_list(&self) -> String {
        list(&self.file.nodes.keys().collect::<Vec<_>>())
    }

    fn check(&self) -> Result<(), HarnessError> {
        if self.file.nodes.is_empty() {
            return Err(self.err(
                0,
                "a scenario needs at least one node under [nodes.<name>]".into(),
            ));
        }
        if let Some(list) = &self.file.backends {
            for b in list {
                if b.get_ref().parse::<Backend>().is_err() {
                    return Err(self.err(
                        b.span().start,
                        format!(
                            "unknown backend {:?}: expected \"rocksdb\" or \"sqlite\"",
                            b.get_ref()
                        ),
                    ));
                }
            }
        }
        let mut channels = Channels::default();
        for ch in &self.file.channels {
            let c = ch.get_ref();
            for n in [&c.from, &c.to] {
                if !self.known(n) {
                    return Err(self.err(
                        ch.span().start,
                        format!(
                            "channel {:?}: unknown node {n:?} (nodes: {})",
                            c.name,
                            self.node_list()
                        ),
                    ));
                }
            }
            channels
                .add(&c.name, &c.from, &c.to, c.amount)
                .map_err(|message| self.err(ch.span().start, format!("channel {message}")))?;
        }
        self.check_sweep()?;
        self.check_steps(channels)
    }

    /// A sweep workload's node under test exists and has a channel.
    fn check_sweep(&self) -> Result<(), HarnessError> {
        let Some(sweep) = &self.file.sweep else {
            return Ok(());
        };
        let node = &sweep.get_ref().node;
        if !self.known(node) {
            return Err(self.err(
                sweep.span().start,
                format!("sweep: unknown node {node:?} (nodes: {})", self.node_list()),
            ));
        }
        if !self
            .file
            .channels
            .iter()
            .any(|c| &c.get_ref().from == node || &c.get_ref().to == node)
        {
            return Err(self.err(
                sweep.span().start,
                format!("sweep: {node} has no channel to sweep"),
            ));
        }
        Ok(())
    }

    /// Every step: known names, bounds, and what earlier steps must have done.
    fn check_steps(&self, mut channels: Channels) -> Result<(), HarnessError> {
        let mut backups = BTreeSet::new();
        let mut held = BTreeSet::new();
        let mut payments = BTreeSet::new();
        let mut liveness = Liveness::new(self.file.nodes.keys());
        let mut inspections = Inspections::default();
        let nodes = self.file.nodes.len();
        for step in &self.file.steps {
            let at = step_offset(self.text, step.span().start);
            let err = |message: String| self.err(at, message);
            let s = step.get_ref();
            for n in s.nodes() {
                if !self.known(n) {
                    return Err(err(format!(
                        "{}: unknown node {n:?} (nodes: {})",
                        s.verb(),
                        self.node_list()
                    )));
                }
            }
            if let Some(c) = s.channel()
                && !channels.names.contains(c)
            {
                return Err(err(format!(
                    "{}: unknown channel {c:?} (channels: {})",
                    s.verb(),
                    list(&channels.names.iter().collect::<Vec<_>>())
                )));
            }
            match s {
                Step::OpenChannel {
                    name,
                    from,
                    to,
                    amount,
                } => channels
                    .add(name, from, to, *amount)
                    .map_err(|message| err(format!("open_channel: channel {message}")))?,
                Step::SendPayment { name, .. } if !payments.insert(name.clone()) => {
                    return Err(err(format!("payment name {name:?} used twice")));
                }
                Step::ExpectPayment { name, .. } if !payments.contains(name) => {
                    return Err(err(format!(
                        "expect_payment: no earlier send_payment named {name:?}"
                    )));
                }
                Step::Backup { name, .. } | Step::BackupAt { name, .. }
                    if !backups.insert(name.clone()) =>
                {
                    return Err(err(format!("backup name {name:?} used twice")));
                }
                Step::BackupAt { step, nth, .. } => {
                    check_step_control(s.verb(), step, *nth).map_err(err)?
                }
                Step::ExpectPenalty { .. } if !self.file.allow_penalties => {
                    return Err(err(
                        "expect_penalty: the scenario must set allow_penalties = true".into(),
                    ));
                }
                Step::Restore { backup, .. } if !backups.contains(backup) => {
                    return Err(err(format!(
                        "restore: no earlier backup step named {backup:?}"
                    )));
                }
                Step::Hold {
                    node, step, nth, ..
                } => {
                    check_step_control(s.verb(), step, *nth).map_err(err)?;
                    held.insert(node.clone());
                }
                Step::WaitHeld { node } | Step::Release { node } if !held.contains(node) => {
                    return Err(err(format!(
                        "{}: {node} has no hold armed before this step",
                        s.verb()
                    )));
                }
                Step::Pay { amount, .. } | Step::SendPayment { amount, .. }
                    if *amount == 0 || *amount > MAX_AMOUNT =>
                {
                    return Err(err(format!(
                        "{}: amount {amount} must be 1 to {MAX_AMOUNT} shannons (a node's wallet)",
                        s.verb()
                    )));
                }
                Step::Mine { blocks } if *blocks == 0 || *blocks > MAX_MINE_BLOCKS => {
                    return Err(err(format!(
                        "mine: blocks {blocks} must be 1 to {MAX_MINE_BLOCKS} (the ledger's \
                         limit per call; add more mine steps for more)"
                    )));
                }
                Step::ExpectBalance { local, .. } if *local > MAX_AMOUNT => {
                    return Err(err(format!(
                        "expect_balance: local {local} is more than any channel holds \
                         ({MAX_AMOUNT} shannons at most)"
                    )));
                }
                Step::ExpectWalletChange { amount, .. }
                    if amount.unsigned_abs() > wallet_change_bound(nodes) =>
                {
                    return Err(err(format!(
                        "expect_wallet_change: amount {amount} is more than the faucet gave \
                         all {nodes} nodes (at most {} shannons either way)",
                        wallet_change_bound(nodes)
                    )));
                }
                Step::Pay { from, to, .. } if from == to => {
                    return Err(err(format!("pay: {from} cannot pay itself")));
                }
                Step::Pay {
                    expect: PayExpect::Success,
                    reason_contains: Some(_),
                    ..
                } => {
                    return Err(err("pay: reason_contains needs expect = \"failed\"".into()));
                }
                _ => {}
            }
            super::routes::check(s).map_err(err)?;
            inspections.step(self.file, s, &mut backups).map_err(err)?;
            liveness.step(s, line_col(self.text, at).0).map_err(err)?;
        }
        Ok(())
    }
}

/// A protocol step for step control (`hold`, `backup_at`): `sent:<Message>` or
/// `received:<Message>` naming a message the node sends or receives
/// ([`MessageName::ALL`]), at most [`MAX_STEP_LEN`] bytes (what the node's `dev_hold`
/// accepts), and its `nth` 1 to [`MAX_NTH`]. A misspelt message would never fire: the step
/// would wait out its deadline (or the backup never be written), so it is refused here.
fn check_step_control(verb: &str, step: &str, nth: u64) -> Result<(), String> {
    let messages = MessageName::list;
    if step.len() > MAX_STEP_LEN {
        return Err(format!(
            "{verb}: step {} is longer than {MAX_STEP_LEN} bytes",
            clip(step)
        ));
    }
    match step.split_once(':') {
        Some(("sent" | "received", message)) if MessageName::from(message).is_known() => {}
        Some(("sent" | "received", message)) => {
            return Err(format!(
                "{verb}: step {}: no message named {}; messages: {}",
                clip(step),
                clip(message),
                messages()
            ));
        }
        _ => {
            return Err(format!(
                "{verb}: step {} must be sent:<Message> or received:<Message>; messages: {}",
                clip(step),
                messages()
            ));
        }
    }
    if !(1..=MAX_NTH).contains(&nth) {
        return Err(format!("{verb}: nth {nth} must be 1 to {MAX_NTH}"));
    }
    Ok(())
}

/// Most a wallet can change by: everything the faucet gave the scenario's nodes.
fn wallet_change_bound(nodes: usize) -> u64 {
    MAX_AMOUNT.saturating_mul(nodes as u64)
}

/// A node name: 1 to [`MAX_NAME_CHARS`] ASCII letters, digits, `_` or `-`.
fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
