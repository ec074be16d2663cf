//! What the format asks of a step type: the facts of each verb (the nodes and channel it names,
//! what it needs of a driver, which nodes must answer, what it does to a node's life) and its
//! own checks, made against [`Check`], what the steps before it established.
//!
//! The format is generic over its step type ([`StepFormat`]): the verbs themselves live one
//! family per file in `steps/`, next to how each runs on the cluster, so adding a verb touches
//! that file and one line of the step enum, and the format never learns what a cluster is.
//! Every fact is a required method: a new verb cannot slip past a rule by a wildcard.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::channels::Channels;
use super::file::NodeDecl;
use super::liveness::{Lifecycle, Liveness};
use crate::capability::Capability;

/// A node that must answer (its RPC or its events) for a step to run: none of them may be
/// paused there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer<'a> {
    /// This node.
    Node(&'a str),
    /// The payer of the payment started under this name (`expect_payment`).
    PayerOf(&'a str),
}

/// Everything the format knows of one step, declared by its verb in one place: the nodes and
/// channel it names, what it needs of a driver, which nodes must answer, and what it does to a
/// node's life. The nodes and the capabilities are always given ([`Facts::new`]); the rest is
/// said where it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    /// The nodes the step names: each must be a node of the scenario.
    pub nodes: Vec<&'a str>,
    /// What the step needs of a driver beyond the nodes' plain RPC.
    pub needs: &'static [Capability],
    /// The channel the step is about: it must be known at this step.
    pub channel: Option<&'a str>,
    /// The nodes whose RPC or events the step needs.
    pub answers: Vec<Answerer<'a>>,
    /// What the step does to a node's life.
    pub lifecycle: Option<(&'a str, Lifecycle)>,
    /// What to say instead of "resume it first" when a node it needs is paused.
    pub paused_hint: Option<&'static str>,
}

impl<'a> Facts<'a> {
    /// A step naming `nodes` and needing `needs` of its driver.
    pub fn new(nodes: impl IntoIterator<Item = &'a str>, needs: &'static [Capability]) -> Self {
        Self {
            nodes: nodes.into_iter().collect(),
            needs,
            channel: None,
            answers: Vec::new(),
            lifecycle: None,
            paused_hint: None,
        }
    }

    /// About `channel`, if any.
    pub fn channel(mut self, channel: Option<&'a str>) -> Self {
        self.channel = channel;
        self
    }

    /// `nodes` must answer.
    pub fn answering(mut self, nodes: impl IntoIterator<Item = &'a str>) -> Self {
        self.answers.extend(nodes.into_iter().map(Answerer::Node));
        self
    }

    /// The payer of the payment named `payment` must answer.
    pub fn answering_payer_of(mut self, payment: &'a str) -> Self {
        self.answers.push(Answerer::PayerOf(payment));
        self
    }

    /// It does `what` to `node`'s life.
    pub fn lifecycle(mut self, node: &'a str, what: Lifecycle) -> Self {
        self.lifecycle = Some((node, what));
        self
    }

    /// What to say when a node it needs is paused.
    pub fn paused_hint(mut self, hint: &'static str) -> Self {
        self.paused_hint = Some(hint);
        self
    }
}

/// The facts and checks of one verb, as the format needs them. Implemented by each verb's
/// struct in `steps/` (next to how it runs) and by the step enum, which dispatches.
pub trait VerbFacts {
    /// What the step names, needs and does ([`Facts`]).
    fn facts(&self) -> Facts<'_>;
    /// Everything else a file must get right about the step (bounds, what earlier steps must
    /// have done), checked after its names are known and its nodes can answer; it records what
    /// later steps may rely on (a backup's name, an armed hold, a channel it opens). `Err` is
    /// the message, located at the step by the caller. Most verbs have nothing more to check.
    fn check(&self, _cx: &mut Check<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// A scenario's step type: a table with exactly one verb, with the facts of that verb.
pub trait StepFormat:
    VerbFacts + Debug + Clone + Serialize + DeserializeOwned + JsonSchema
{
    /// The verb, as written in the file.
    fn verb(&self) -> &'static str;
    /// Every verb, as written in a file (listed in the error about an unknown one).
    fn verbs() -> &'static [&'static str];
}

/// A channel a step opens (`open_channel`): the step's index and the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// 0-based index of the step that opens it.
    pub step: usize,
    pub name: String,
    pub from: String,
    pub to: String,
}

/// What the steps before the one being checked established: the file's nodes, the channels
/// known so far, the named backups and their owners, armed holds, started payments, and each
/// node's liveness.
#[derive(Debug)]
pub struct Check<'a> {
    nodes: &'a BTreeMap<String, NodeDecl>,
    allow_penalties: bool,
    channels: Channels,
    /// Backup name -> the node it is of.
    backups: BTreeMap<String, String>,
    /// Nodes with a hold armed.
    holds: BTreeSet<String>,
    /// Payment name -> its payer.
    payments: BTreeMap<String, String>,
    liveness: Liveness,
    /// Channels opened by steps so far.
    openings: Vec<Opening>,
    /// The index and line of the step being checked.
    step: usize,
    line: usize,
}

impl<'a> Check<'a> {
    pub(super) fn new(
        nodes: &'a BTreeMap<String, NodeDecl>,
        allow_penalties: bool,
        channels: Channels,
    ) -> Self {
        Self {
            nodes,
            allow_penalties,
            channels,
            backups: BTreeMap::new(),
            holds: BTreeSet::new(),
            payments: BTreeMap::new(),
            liveness: Liveness::new(nodes.keys()),
            openings: Vec::new(),
            step: 0,
            line: 0,
        }
    }

    /// The line of the step being checked.
    pub fn line(&self) -> usize {
        self.line
    }

    pub(super) fn at_step(&mut self, step: usize, line: usize) {
        self.step = step;
        self.line = line;
    }

    /// The channels steps opened, in step order.
    pub(super) fn into_openings(self) -> Vec<Opening> {
        self.openings
    }

    /// The declaration of `node` (known: names are checked before a step's own check).
    pub fn node(&self, node: &str) -> Option<&NodeDecl> {
        self.nodes.get(node)
    }

    /// How many nodes the scenario has.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the scenario expects penalties (`allow_penalties`).
    pub fn allows_penalties(&self) -> bool {
        self.allow_penalties
    }

    /// The channels known so far.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// A channel the step being checked opens (`Err` is the message after "channel ").
    pub fn open_channel(
        &mut self,
        name: &str,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<(), String> {
        self.channels.add(name, from, to, amount)?;
        self.openings.push(Opening {
            step: self.step,
            name: name.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        });
        Ok(())
    }

    /// A backup of `node` named `name`; names are unique across every verb that names one.
    pub fn name_backup(&mut self, name: &str, node: &str) -> Result<(), String> {
        if self.backups.contains_key(name) {
            return Err(format!("backup name {name:?} used twice"));
        }
        self.backups.insert(name.to_string(), node.to_string());
        Ok(())
    }

    /// The node a backup named so far is of.
    pub fn backup_owner(&self, name: &str) -> Option<&str> {
        self.backups.get(name).map(String::as_str)
    }

    /// A hold armed on `node`.
    pub fn arm_hold(&mut self, node: &str) {
        self.holds.insert(node.to_string());
    }

    /// Whether some hold was armed on `node` before.
    pub fn has_hold(&self, node: &str) -> bool {
        self.holds.contains(node)
    }

    /// A payment started by `payer`, named `name` (unique).
    pub fn name_payment(&mut self, name: &str, payer: &str) -> Result<(), String> {
        if self.payments.contains_key(name) {
            return Err(format!("payment name {name:?} used twice"));
        }
        self.payments.insert(name.to_string(), payer.to_string());
        Ok(())
    }

    /// The payer of a payment started so far.
    pub fn payer(&self, name: &str) -> Option<&str> {
        self.payments.get(name).map(String::as_str)
    }

    /// Each node's liveness here.
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
    }

    pub fn liveness_mut(&mut self) -> &mut Liveness {
        &mut self.liveness
    }
}
