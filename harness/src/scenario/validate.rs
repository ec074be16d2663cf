//! Everything a scenario file is checked for before anything starts, each error naming the
//! file, line and column and what was expected.
//!
//! Order: the text's nesting (before the TOML parser, whose recursion limit reports no
//! position), the TOML and serde shape (unknown keys, wrong types, a step with no verb or
//! several), the counts that drive allocation (nodes, channels, a topology's pairs: counted
//! before anything is expanded), then, step by step, the names each step uses (unknown nodes and
//! channels), whether the nodes it needs can answer (`liveness.rs`), the verb's own check (its
//! bounds and what earlier steps must have done: [`VerbFacts::check`](super::VerbFacts::check)) and what it does to a
//! node's life.
//!
//! Every number that drives a loop, an allocation or a sum has a bound (`crate::limits`),
//! checked before it is used, so a file that passes `check` cannot exhaust memory, overflow or
//! run unbounded. Each is documented next to its field in `scenarios/README.md`.

use std::collections::BTreeSet;
use std::path::Path;

use dlp_node_api::Backend;
use toml::Spanned;

use super::Scenario;
use super::channels::Channels;
use super::facts::{Answerer, Check, Opening, StepFormat};
use super::file::{ChannelDecl, ScenarioFile};
use super::locate::{invalid, key_offset, line_col, nth_key_offset, step_offset, toml_error};
use super::source::{self, clip, list};
use super::topology::{shape_pair_count, shape_pairs};
use crate::error::HarnessError;
use crate::limits::{BACKUP_SPACE_KB, MAX_CHANNELS, MAX_FEE_RATE, MAX_NAME_CHARS, MAX_NODES};

/// Parse and validate scenario text (`path` names it in errors).
pub(super) fn parse<S: StepFormat>(path: &Path, text: &str) -> Result<Scenario<S>, HarnessError> {
    // Before the TOML parser: its recursion limits report no position for a long dotted
    // key, and the 81st bracket rather than where the nesting starts.
    source::check_nesting(text)
        .map_err(|(offset, message)| invalid(path, text, offset, message))?;
    let mut file: ScenarioFile<S> =
        toml::from_str(text).map_err(|e| toml_error::<S>(path, text, &e))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("scenario")
        .to_string();
    check_counts(path, text, &file)?;
    expand_topology(path, text, &mut file)?;
    let openings = Checker {
        path,
        text,
        file: &file,
    }
    .check()?;
    Ok(Scenario {
        path: path.to_path_buf(),
        name,
        file,
        text: text.to_string(),
        openings,
    })
}

/// The counts that drive allocation and run time, before anything is expanded or run.
fn check_counts<S>(path: &Path, text: &str, file: &ScenarioFile<S>) -> Result<(), HarnessError> {
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
        if let Some(kb) = decl
            .backup_space_kb
            .filter(|kb| !BACKUP_SPACE_KB.contains(kb))
        {
            let at = key_offset(text, "nodes", name).unwrap_or(0);
            return Err(invalid(
                path,
                text,
                at,
                format!(
                    "node {}: backup_space_kb {kb} is not {} to {} (KiB of the backup directory)",
                    clip(name),
                    BACKUP_SPACE_KB.start(),
                    BACKUP_SPACE_KB.end()
                ),
            ));
        }
        if let Some(version) = &decl.version {
            check_version_name(version).map_err(|message| {
                let at = key_offset(text, "nodes", name).unwrap_or(0);
                invalid(path, text, at, format!("node {}: {message}", clip(name)))
            })?;
        }
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
    Ok(())
}

/// Add the topology's channels to `channels`, after counting them (a mesh's pairs grow with
/// the square of its nodes).
fn expand_topology<S>(
    path: &Path,
    text: &str,
    file: &mut ScenarioFile<S>,
) -> Result<(), HarnessError> {
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
struct Checker<'a, S> {
    path: &'a Path,
    text: &'a str,
    file: &'a ScenarioFile<S>,
}

impl<S: StepFormat> Checker<'_, S> {
    fn err(&self, offset: usize, message: String) -> HarnessError {
        invalid(self.path, self.text, offset, message)
    }

    fn known(&self, node: &str) -> bool {
        self.file.nodes.contains_key(node)
    }

    fn node_list(&self) -> String {
        list(&self.file.nodes.keys().collect::<Vec<_>>())
    }

    fn check(&self) -> Result<Vec<Opening>, HarnessError> {
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

    /// Every step: its names are known, the nodes it needs can answer, its verb's own check,
    /// then what it does to a node's life.
    fn check_steps(&self, channels: Channels) -> Result<Vec<Opening>, HarnessError> {
        let mut cx = Check::new(&self.file.nodes, self.file.allow_penalties, channels);
        for (index, step) in self.file.steps.iter().enumerate() {
            let at = step_offset(self.text, step.span().start);
            let err = |message: String| self.err(at, message);
            let s = step.get_ref();
            let verb = s.verb();
            let facts = s.facts();
            for n in &facts.nodes {
                if !self.known(n) {
                    return Err(err(format!(
                        "{verb}: unknown node {n:?} (nodes: {})",
                        self.node_list()
                    )));
                }
            }
            if let Some(c) = facts.channel
                && !cx.channels().names.contains(c)
            {
                return Err(err(format!(
                    "{verb}: unknown channel {c:?} (channels: {})",
                    list(&cx.channels().names.iter().collect::<Vec<_>>())
                )));
            }
            cx.at_step(index, line_col(self.text, at).0);
            let answering: Vec<String> = facts
                .answers
                .iter()
                .filter_map(|a| match a {
                    Answerer::Node(node) => Some(node.to_string()),
                    Answerer::PayerOf(payment) => cx.payer(payment).map(str::to_string),
                })
                .collect();
            cx.liveness()
                .check_answers(
                    verb,
                    &answering,
                    facts.lifecycle.map(|(_, l)| l),
                    facts.paused_hint,
                )
                .map_err(err)?;
            s.check(&mut cx).map_err(err)?;
            if let Some((node, lifecycle)) = facts.lifecycle {
                let line = cx.line();
                cx.liveness_mut()
                    .apply(verb, node, lifecycle, line)
                    .map_err(err)?;
            }
        }
        Ok(cx.into_openings())
    }
}

/// A node name: 1 to [`MAX_NAME_CHARS`] ASCII letters, digits, `_` or `-`.
fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A version name a scenario may use: `current` or a name of the committed `versions.toml`.
pub fn check_version_name(version: &str) -> Result<(), String> {
    if version == crate::versions::CURRENT {
        return Ok(());
    }
    let catalog = crate::versions::Catalog::committed().map_err(|e| e.to_string())?;
    catalog.get(version).map(|_| ()).map_err(|e| e.to_string())
}
