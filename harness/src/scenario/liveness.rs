//! Which nodes can answer at each step, checked before anything starts: a paused node answers
//! nothing (no RPC, no events) until it is resumed, so a step that needs it would hang until
//! its deadline; a located error says so instead.
//!
//! Each node is followed through the steps as running, stopped or paused (every node runs when
//! the steps begin), by what each step does to it ([`Lifecycle`]: `start`, `restart` and
//! `restore` leave it running, `stop` and `crash` stopped, `pause` paused, `resume` running).
//! The rules, for every verb alike:
//!
//! - no step may need the RPC or the events of a paused node (each verb says which nodes must
//!   answer: [`Facts::answers`](super::Facts::answers));
//! - `pause` only a running node that is not paused; `resume` only a paused one;
//! - a verb's own rules about liveness (a partition of two paused nodes, `expect_unreachable`
//!   of a stopped node or without a partition, `open_channel` between stopped or partitioned
//!   nodes) are in its `check`, asking this module where each node stands.
//!
//! Stopped nodes are followed only for these rules; other steps on a stopped node fail when
//! they run.

use std::collections::{BTreeMap, BTreeSet};

/// What a step does to one node's life. The liveness check follows every node through the
/// steps with it (a paused node answers nothing; a stopped one cannot be paused), and the sweep
/// refuses a workload that ends a run of its node under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Starts a stopped node.
    Start,
    /// Stops it cleanly (it must answer: a paused node cannot be stopped cleanly).
    Stop,
    /// Stops and starts it: a new run.
    Restart,
    /// Kills it (a paused node too, frozen).
    Crash,
    /// Stops it if running, restores a backup, starts it: a new run.
    Restore,
    /// Stops it if running and kills a restore of it midway: it is left stopped.
    CrashRestore,
    /// Freezes it where it stands.
    Pause,
    /// Thaws a paused node: the same run goes on.
    Resume,
    /// Swaps a stopped node's build, keeping its home: it must be stopped and stays so.
    Upgrade,
}

impl Lifecycle {
    /// Whether the node's run changes here: it ends (stop, crash) or a new one begins (start,
    /// restart, restore; its events start again). A pause and a resume keep the same run.
    pub fn changes_run(self) -> bool {
        match self {
            Lifecycle::Start
            | Lifecycle::Stop
            | Lifecycle::Restart
            | Lifecycle::Crash
            | Lifecycle::Restore
            | Lifecycle::CrashRestore => true,
            Lifecycle::Pause | Lifecycle::Resume | Lifecycle::Upgrade => false,
        }
    }

    /// Whether the step begins with a clean stop of a running node (it needs the node to
    /// answer, so a paused node must be resumed first).
    pub fn stops_cleanly(self) -> bool {
        match self {
            Lifecycle::Stop | Lifecycle::Restart | Lifecycle::Restore | Lifecycle::CrashRestore => {
                true
            }
            Lifecycle::Start
            | Lifecycle::Crash
            | Lifecycle::Pause
            | Lifecycle::Resume
            | Lifecycle::Upgrade => false,
        }
    }
}

/// A node's state between two steps, with the line of the step that put it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Stopped { line: usize },
    Paused { line: usize },
}

/// The nodes' states and the partitions in force as the steps go.
#[derive(Debug)]
pub struct Liveness {
    nodes: BTreeMap<String, NodeState>,
    partitions: BTreeSet<(String, String)>,
}

/// A pair of nodes, in name order.
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
                .map(|n| (n.clone(), NodeState::Running))
                .collect(),
            partitions: BTreeSet::new(),
        }
    }

    /// Where `node` stands before the step being checked.
    pub fn state(&self, node: &str) -> NodeState {
        self.nodes.get(node).copied().unwrap_or(NodeState::Running)
    }

    /// Whether `node` is paused here.
    pub fn paused(&self, node: &str) -> bool {
        matches!(self.state(node), NodeState::Paused { .. })
    }

    /// `a` and `b` are cut apart from here on.
    pub fn partition(&mut self, a: &str, b: &str) {
        self.partitions.insert(pair(a, b));
    }

    /// `a` and `b` are no longer cut apart.
    pub fn heal(&mut self, a: &str, b: &str) {
        self.partitions.remove(&pair(a, b));
    }

    /// Whether `a` and `b` are partitioned here.
    pub fn partitioned(&self, a: &str, b: &str) -> bool {
        self.partitions.contains(&pair(a, b))
    }

    /// Refuse a step of `verb` that needs `answering` when one of them is paused; `hint` says
    /// what to do instead (unset: resume it first).
    pub(super) fn check_answers(
        &self,
        verb: &str,
        answering: &[String],
        lifecycle: Option<Lifecycle>,
        hint: Option<&str>,
    ) -> Result<(), String> {
        for node in answering {
            if let NodeState::Paused { line: since } = self.state(node) {
                let hint = match (hint, lifecycle) {
                    (Some(hint), _) => hint,
                    (None, Some(l)) if l.stops_cleanly() => {
                        "a clean stop needs it to run: resume it first (or crash it)"
                    }
                    (None, _) => "resume it first",
                };
                return Err(format!(
                    "{verb}: {node} is paused (since line {since}) and answers nothing until a \
                     resume step; {hint}"
                ));
            }
        }
        Ok(())
    }

    /// Apply what `verb` (at `line`) does to `node`, refusing a pause of a node that is not
    /// running and a resume of one that is not paused.
    pub(super) fn apply(
        &mut self,
        verb: &str,
        node: &str,
        lifecycle: Lifecycle,
        line: usize,
    ) -> Result<(), String> {
        let next = match lifecycle {
            Lifecycle::Start | Lifecycle::Restart | Lifecycle::Restore => NodeState::Running,
            Lifecycle::Stop | Lifecycle::Crash | Lifecycle::CrashRestore => {
                NodeState::Stopped { line }
            }
            Lifecycle::Pause => match self.state(node) {
                NodeState::Running => NodeState::Paused { line },
                NodeState::Paused { line: since } => {
                    return Err(format!(
                        "{verb}: {node} is paused already (since line {since})"
                    ));
                }
                NodeState::Stopped { line: since } => {
                    return Err(format!(
                        "{verb}: {node} is not running here (stopped at line {since}); only a \
                         running node can be paused"
                    ));
                }
            },
            Lifecycle::Upgrade => match self.state(node) {
                stopped @ NodeState::Stopped { .. } => stopped,
                _ => {
                    return Err(format!(
                        "{verb}: {node} is running here; an upgrade swaps the build of a stopped \
                         node (stop it first)"
                    ));
                }
            },
            Lifecycle::Resume => match self.state(node) {
                NodeState::Paused { .. } => NodeState::Running,
                _ => {
                    return Err(format!(
                        "{verb}: {node} is not paused here (resume follows a pause of it)"
                    ));
                }
            },
        };
        self.nodes.insert(node.to_string(), next);
        Ok(())
    }
}
