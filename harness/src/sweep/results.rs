//! What a sweep found: per point and channel the oracle's prediction, the observed behaviour
//! and the verdict; the report over all points; and the comparison of the two backends.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dlp_node_api::Backend;
use serde::{Deserialize, Serialize};

use super::{BackupPoint, Behaviour, Expected, LedgerFacts, Resolution, Verdict};

/// The verdict on one of the node's channels at one point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelResult {
    pub channel: String,
    pub peer: String,
    /// The restored node's `(L, R)` (the backup's).
    pub backup: (u64, u64),
    /// The peer's `(PL, PR)` when it reconnected; `None` when the ledger had closed it.
    pub peer_numbers: Option<(u64, u64)>,
    pub expected: Expected,
    pub observed: Behaviour,
    /// How the oracle says the channel ends up when only the nodes act.
    pub expected_resolution: Resolution,
    /// How it ended up.
    pub resolution: Resolution,
    /// The node whose commitment closed it after the restore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// The time to funds unlocked, when the nodes resolved it (resumed or closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unlock: Option<Unlock>,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What the ledger showed when the channel was closed and settled.
    pub ledger: LedgerFacts,
}

/// How long a restored channel's funds stayed locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlock {
    /// Blocks from the reconnection until the last of the channel's outputs was in a wallet
    /// (0 for a channel that resumed: its funds are usable at once).
    pub blocks: u64,
    /// Milliseconds from the resolving end's reconnection to the event that resolved the
    /// channel: its audit passing, or its closing transaction accepted by the chain.
    pub ms: u64,
}

/// One point on one backend under one policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointResult {
    pub point: BackupPoint,
    pub backend: String,
    pub policy: String,
    pub channels: Vec<ChannelResult>,
    /// Why the point has no verdict (the run failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
    /// Kept run directory (with `point.toml`, the scenario that reproduces the point).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
}

impl PointResult {
    /// The point's verdict: its own channel's (ERROR when the run failed). The node's other
    /// channels are judged too ([`worst`](Self::worst)), but their state at this point depends
    /// on how the channels interleaved, so counts and backend comparisons use this one.
    pub fn verdict(&self) -> Verdict {
        if self.error.is_some() {
            return Verdict::Error;
        }
        self.channels
            .iter()
            .find(|c| c.channel == self.point.channel)
            .map_or(Verdict::Error, |c| c.verdict)
    }

    /// The worst verdict over all the node's channels (ERROR when the run failed): any
    /// failure on any channel fails the sweep.
    pub fn worst(&self) -> Verdict {
        if self.error.is_some() {
            return Verdict::Error;
        }
        self.channels
            .iter()
            .map(|c| c.verdict)
            .max_by_key(|v| severity(*v))
            .unwrap_or(Verdict::Error)
    }
}

/// The point's verdicts as the release gate keys them, one per channel of the node:
/// `sweep <workload> <backend>/<policy> #<index> <label>, channel <name>` (`, no channel` when
/// the run failed before any was judged).
pub fn verdict_keys(workload: &str, result: &PointResult) -> Vec<(String, String)> {
    let point = format!(
        "sweep {workload} {}/{} #{} {}",
        result.backend,
        result.policy,
        result.point.index,
        result.point.label()
    );
    if result.channels.is_empty() {
        return vec![(format!("{point}, no channel"), result.worst().to_string())];
    }
    result
        .channels
        .iter()
        .map(|c| {
            (
                format!("{point}, channel {}", c.channel),
                c.verdict.to_string(),
            )
        })
        .collect()
}

fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::Resumed | Verdict::Closed | Verdict::Forgotten => 0,
        Verdict::Held | Verdict::Frozen => 1,
        Verdict::Mismatch => 2,
        Verdict::Lost => 3,
        Verdict::Unsafe => 4,
        Verdict::Error => 5,
    }
}

/// Everything a sweep found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    pub workload: String,
    pub path: PathBuf,
    pub node: String,
    pub seed: u64,
    pub driver: String,
    /// Backup points per backend (they must be the same).
    pub points: BTreeMap<String, Vec<BackupPoint>>,
    pub results: Vec<PointResult>,
    /// Points where the backends disagree (a failure).
    pub disagreements: Vec<String>,
    pub elapsed_ms: u64,
    /// The interleaving every run pinned (per node, its racing inputs in order).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub order: super::Interleaving,
}

impl SweepReport {
    /// The sweep fails: any UNSAFE, LOST, MISMATCH or ERROR on any channel, or the backends
    /// disagree.
    pub fn failed(&self) -> bool {
        !self.disagreements.is_empty() || self.results.iter().any(|r| r.worst().is_failure())
    }

    /// Point verdict counts for one backend and policy (each point by its own channel).
    pub fn counts(&self, backend: &str, policy: &str) -> BTreeMap<Verdict, usize> {
        let mut counts = BTreeMap::new();
        for r in self
            .results
            .iter()
            .filter(|r| r.backend == backend && r.policy == policy)
        {
            *counts.entry(r.verdict()).or_default() += 1;
        }
        counts
    }
}

/// Progress of a sweep, for the CLI.
#[derive(Debug, Clone)]
pub enum Progress {
    Discovered {
        backend: Backend,
        points: usize,
    },
    PointDone {
        done: usize,
        total: usize,
        result: Box<PointResult>,
    },
}

/// Two judgements of one point agree: both failed to run or neither did, and every channel
/// whose backup holds the same numbers in both has the same verdict. The point's own channel
/// always does; another channel's numbers at the point depend on how the node's channels
/// interleaved in that run, and a different state may rightly get a different verdict.
pub fn same_verdicts(a: &PointResult, b: &PointResult) -> bool {
    a.error.is_some() == b.error.is_some()
        && !a.channels.iter().any(|ca| {
            b.channels.iter().any(|cb| {
                ca.channel == cb.channel && ca.backup == cb.backup && ca.verdict != cb.verdict
            })
        })
}

/// Both backends must find the same points and give the same verdict at each. Points are
/// matched by step and own-channel numbers ([`BackupPoint::key`]).
pub fn compare_backends(
    backends: &[Backend],
    points: &BTreeMap<String, Vec<BackupPoint>>,
    results: &[PointResult],
    out: &mut Vec<String>,
) {
    let first = backends[0].to_string();
    for other in backends[1..].iter().map(|b| b.to_string()) {
        // As sets: steps on different channels may come in another order.
        let keys = |backend: &str| -> std::collections::BTreeSet<_> {
            points[backend].iter().map(BackupPoint::key).collect()
        };
        if keys(&first) != keys(&other) {
            let (a, b) = (keys(&first), keys(&other));
            out.push(format!(
                "{first} found {} backup points, {other} {}; only on {first}: {:?}; only on {other}: {:?}",
                a.len(),
                b.len(),
                a.difference(&b).collect::<Vec<_>>(),
                b.difference(&a).collect::<Vec<_>>()
            ));
            continue;
        }
        for a in results.iter().filter(|r| r.backend == first) {
            let Some(b) = results.iter().find(|r| {
                r.backend == other && r.policy == a.policy && r.point.key() == a.point.key()
            }) else {
                continue;
            };
            if !same_verdicts(a, b) {
                out.push(format!(
                    "point {} ({}), policy {}: {first} says {}, {other} says {}",
                    a.point.index,
                    a.point.label(),
                    a.policy,
                    a.verdict(),
                    b.verdict()
                ));
            }
        }
    }
}
