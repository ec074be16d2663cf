//! Merge the result files of any number of shards into the answer one run gives: per workload
//! the sweep report `dlp-harness sweep` makes (tables, summary, time to unlock, backend
//! comparison, JSON, HTML), the explorer's seeds, and everything that makes the merged answer
//! incomplete or untrustworthy: a configured test no shard ran (missing), one test with two
//! different verdicts (conflicting), a file that is not a result, a result of a test the
//! configuration does not have or ran with another seed, schedule or point (stale: ignored,
//! named).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use dlp_node_api::{AuditPolicy, Backend};
use serde::Serialize;

use super::record::{Outcome, Record, read_records};
use super::{BACKENDS, ShardTest, ShardsFile};
use crate::sweep::{
    PointList, PointResult, SweepReport, Workload, compare_backends, same_verdicts, verdict_keys,
};

/// What the shards found, together.
#[derive(Debug, Serialize)]
pub struct Merged {
    /// Result files read.
    pub files: usize,
    /// One report per workload that had any result, as a single sweep run makes it.
    pub reports: Vec<SweepReport>,
    /// The explorer's seeds.
    pub explore: Vec<Record>,
    /// Configured tests no shard ran.
    pub missing: Vec<String>,
    /// Tests with two results that disagree.
    pub conflicts: Vec<String>,
    /// Tests that failed (each with its first problem).
    pub failed_tests: Vec<String>,
    /// Results of tests the configuration does not have (ignored).
    pub stale: Vec<String>,
    /// Files that are not results, and configured entries that yield no test.
    pub unreadable: Vec<String>,
    /// Every verdict, keyed as the release gate keys them.
    pub verdicts: BTreeMap<String, String>,
    #[serde(skip)]
    pub(super) workloads: Vec<Arc<Workload>>,
}

/// Which of the configured tests the merge expects (all by default).
#[derive(Debug, Clone, Default)]
pub struct MergeFilter {
    /// Only tests under this policy (sweep points and explorer seeds alike).
    pub policy: Option<AuditPolicy>,
}

impl MergeFilter {
    fn wants(&self, test: &ShardTest) -> bool {
        let policy = match test {
            ShardTest::Sweep { policy, .. } => *policy,
            ShardTest::Explore { spec, .. } => spec.policy,
        };
        self.policy.is_none_or(|p| p == policy)
    }
}

/// The verdicts a record stands for (what two results of one test must agree on).
fn record_verdicts(record: &Record) -> Vec<(String, String)> {
    match &record.outcome {
        Outcome::Sweep { workload, result } => verdict_keys(workload, result),
        Outcome::Explore {
            seed,
            backend,
            failure,
            ..
        } => vec![(
            format!("explore seed {seed} {backend}"),
            if failure.is_some() {
                "failed"
            } else {
                "passed"
            }
            .to_string(),
        )],
        Outcome::Broken { why } => vec![(record.test.clone(), format!("broken: {why}"))],
    }
}

/// Two results of one test agree: a sweep point's by the backend comparison's rule
/// ([`same_verdicts`]: another channel's verdict may differ where the channels interleaved
/// otherwise), anything else by its verdicts.
fn agree(a: &Record, b: &Record) -> bool {
    match (&a.outcome, &b.outcome) {
        (Outcome::Sweep { result: x, .. }, Outcome::Sweep { result: y, .. }) => same_verdicts(x, y),
        _ => record_verdicts(a) == record_verdicts(b),
    }
}

/// How a record's run differs from what the configuration says its test runs now (another
/// seed, schedule size or point): a result of an earlier configuration, not of this one.
fn ran_otherwise(file: &ShardsFile, test: &ShardTest, record: &Record) -> Option<String> {
    match (test, &record.outcome) {
        (ShardTest::Sweep { point, .. }, Outcome::Sweep { result, .. }) => {
            if record.seed != file.seed {
                Some(format!(
                    "with seed {}, the configuration says {}",
                    record.seed, file.seed
                ))
            } else if (&result.point.step, result.point.nth, &result.point.channel)
                != (&point.step, point.nth, &point.channel)
            {
                Some(format!(
                    "at {}, the point list says {}",
                    result.point.label(),
                    point.label()
                ))
            } else {
                None
            }
        }
        (
            ShardTest::Explore { spec, .. },
            Outcome::Explore {
                seed, steps, nodes, ..
            },
        ) => ((*seed, *steps, *nodes) != (spec.seed, spec.steps, spec.nodes)).then(|| {
            format!(
                "seed {seed} with {steps} steps on {nodes} nodes, the configuration says {} steps \
                 on {} nodes",
                spec.steps, spec.nodes
            )
        }),
        (_, Outcome::Broken { .. }) => None,
        _ => Some("as another kind of test".to_string()),
    }
}

/// Merge the result files under `inputs` against the tests `file` configures.
pub fn merge(file: &ShardsFile, inputs: &[PathBuf], filter: &MergeFilter) -> Merged {
    let (tests, broken) = file.tests();
    let (records, mut unreadable) = read_records(inputs);
    unreadable.extend(broken.into_iter().map(|b| format!("{}: {}", b.name, b.why)));
    let all: BTreeSet<String> = tests.iter().map(ShardTest::name).collect();
    let wanted: BTreeMap<String, &ShardTest> = tests
        .iter()
        .filter(|t| filter.wants(t))
        .map(|t| (t.name(), t))
        .collect();
    let files = records.len();
    let mut found: BTreeMap<String, (PathBuf, Record)> = BTreeMap::new();
    let (mut conflicts, mut stale) = (Vec::new(), Vec::new());
    for (path, record) in records {
        let Some(test) = wanted.get(&record.test) else {
            if !all.contains(&record.test) {
                stale.push(format!("{} ({})", record.test, path.display()));
            }
            continue;
        };
        if let Some(other) = ran_otherwise(file, test, &record) {
            stale.push(format!("{} ({}): ran {other}", record.test, path.display()));
            continue;
        }
        match found.get(&record.test) {
            Some((first, earlier)) => {
                if !agree(earlier, &record) {
                    conflicts.push(format!(
                        "{}: {} says {:?}, {} says {:?}",
                        record.test,
                        first.display(),
                        record_verdicts(earlier),
                        path.display(),
                        record_verdicts(&record)
                    ));
                }
            }
            None => {
                found.insert(record.test.clone(), (path, record));
            }
        }
    }
    let missing: Vec<String> = wanted
        .keys()
        .filter(|name| !found.contains_key(*name))
        .cloned()
        .collect();
    let failed_tests = found
        .values()
        .filter_map(|(_, r)| r.problems.first().map(|p| format!("{}: {p}", r.test)))
        .collect();
    let mut verdicts = BTreeMap::new();
    for (_, record) in found.values() {
        verdicts.extend(record_verdicts(record));
    }

    // Per workload, in the configuration's order: the report a single sweep run makes.
    let mut reports = Vec::new();
    let mut workloads: Vec<Arc<Workload>> = Vec::new();
    for test in &tests {
        if let ShardTest::Sweep { workload, .. } = test
            && !workloads.iter().any(|w| Arc::ptr_eq(w, workload))
        {
            workloads.push(workload.clone());
        }
    }
    workloads.retain(|workload| {
        let results: Vec<(&ShardTest, &Record)> = tests
            .iter()
            .filter(
                |t| matches!(t, ShardTest::Sweep { workload: w, .. } if Arc::ptr_eq(w, workload)),
            )
            .filter_map(|t| found.get(&t.name()).map(|(_, r)| (t, r)))
            .collect();
        if results.is_empty() {
            return false;
        }
        reports.push(sweep_report(file, workload, &results));
        true
    });
    let explore = tests
        .iter()
        .filter(|t| matches!(t, ShardTest::Explore { .. }))
        .filter_map(|t| found.get(&t.name()).map(|(_, r)| r.clone()))
        .collect();
    Merged {
        files,
        reports,
        explore,
        missing,
        conflicts,
        failed_tests,
        stale,
        unreadable,
        verdicts,
        workloads,
    }
}

fn sweep_report(
    file: &ShardsFile,
    workload: &Workload,
    results: &[(&ShardTest, &Record)],
) -> SweepReport {
    let mut drivers = BTreeSet::new();
    let mut points_results: Vec<PointResult> = Vec::new();
    for (_, record) in results {
        drivers.insert(record.driver.clone());
        if let Outcome::Sweep { result, .. } = &record.outcome {
            points_results.push((**result).clone());
        }
    }
    let list = PointList::load(&workload.scenario.path).ok();
    let present: Vec<Backend> = BACKENDS
        .into_iter()
        .filter(|b| points_results.iter().any(|r| r.backend == b.to_string()))
        .collect();
    let points: BTreeMap<String, Vec<_>> = present
        .iter()
        .map(|b| {
            (
                b.to_string(),
                list.as_ref().map(|l| l.of(*b).to_vec()).unwrap_or_default(),
            )
        })
        .collect();
    let mut disagreements = Vec::new();
    if present.len() > 1 {
        compare_backends(&present, &points, &points_results, &mut disagreements);
    }
    SweepReport {
        workload: workload.name().to_string(),
        path: workload.scenario.path.clone(),
        node: workload.node.clone(),
        seed: file.seed,
        driver: drivers.into_iter().collect::<Vec<_>>().join("+"),
        points,
        elapsed_ms: points_results.iter().map(|r| r.elapsed_ms).sum(),
        results: points_results,
        disagreements,
        order: list.map(|l| l.order).unwrap_or_default(),
    }
}

/// `ab UNSAFE (backup 2/1), bc resumed (backup 1/1)`.
fn channel_verdicts(r: &PointResult) -> String {
    if let Some(error) = &r.error {
        return format!("ERROR ({})", error.lines().next().unwrap_or_default());
    }
    r.channels
        .iter()
        .map(|c| {
            format!(
                "{} {} (backup {}/{})",
                c.channel, c.verdict, c.backup.0, c.backup.1
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Merged {
    /// The merged answer fails: any sweep failure (UNSAFE, LOST, MISMATCH, ERROR, backends
    /// disagreeing), a failed explorer seed or test, a missing or conflicting result, a file
    /// that is not a result.
    pub fn failed(&self) -> bool {
        self.reports.iter().any(SweepReport::failed)
            || !self.failed_tests.is_empty()
            || !self.missing.is_empty()
            || !self.conflicts.is_empty()
            || !self.unreadable.is_empty()
    }

    /// Why the merged answer fails, one line each (empty when it passes).
    pub fn failure_reasons(&self) -> Vec<String> {
        let mut out = Vec::new();
        for report in self.reports.iter().filter(|r| r.failed()) {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for r in report.results.iter().filter(|r| r.worst().is_failure()) {
                *counts
                    .entry(format!("{} {}/{}", r.worst(), r.backend, r.policy))
                    .or_default() += 1;
            }
            let mut parts: Vec<String> = counts
                .into_iter()
                .map(|(what, n)| format!("{n} {what}"))
                .collect();
            if !report.disagreements.is_empty() {
                parts.push(format!(
                    "{} backend disagreements",
                    report.disagreements.len()
                ));
            }
            out.push(format!("{}: {}", report.workload, parts.join(", ")));
        }
        for (what, n) in [
            ("failed tests", self.failed_tests.len()),
            ("missing results", self.missing.len()),
            ("conflicting results", self.conflicts.len()),
            ("unreadable files or broken entries", self.unreadable.len()),
        ] {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        }
        out
    }

    /// Where this merged answer and `other` (the same tests, run elsewhere: one unpartitioned
    /// run, say) say different things: a point judged differently (the rule of
    /// [`same_verdicts`], the one the backends are compared by), an explorer seed that passed
    /// in one and failed in the other, a result only one of them has.
    pub fn differences(&self, other: &Merged) -> Vec<String> {
        let mut out = Vec::new();
        let index = |m: &Merged| -> BTreeMap<(String, String, String, usize), PointResult> {
            m.reports
                .iter()
                .flat_map(|rep| {
                    rep.results.iter().map(|r| {
                        (
                            (
                                rep.workload.clone(),
                                r.backend.clone(),
                                r.policy.clone(),
                                r.point.index,
                            ),
                            r.clone(),
                        )
                    })
                })
                .collect()
        };
        let (mine, theirs) = (index(self), index(other));
        for key in mine.keys().chain(theirs.keys()).collect::<BTreeSet<_>>() {
            let (workload, backend, policy, point) = key;
            let at = format!("{workload} {backend}/{policy} #{point}");
            match (mine.get(key), theirs.get(key)) {
                (Some(a), Some(b)) if !same_verdicts(a, b) => out.push(format!(
                    "{at}: {} here, {} there",
                    channel_verdicts(a),
                    channel_verdicts(b)
                )),
                (Some(_), None) => out.push(format!("{at}: only here")),
                (None, Some(_)) => out.push(format!("{at}: only there")),
                _ => {}
            }
        }
        let seeds = |m: &Merged| -> BTreeMap<String, bool> {
            m.explore
                .iter()
                .map(|r| (r.test.clone(), r.problems.is_empty()))
                .collect()
        };
        let (mine, theirs) = (seeds(self), seeds(other));
        for test in mine.keys().chain(theirs.keys()).collect::<BTreeSet<_>>() {
            let say = |p: Option<&bool>| match p {
                Some(true) => "passed",
                Some(false) => "failed",
                None => "not run",
            };
            if mine.get(test) != theirs.get(test) {
                out.push(format!(
                    "{test}: {} here, {} there",
                    say(mine.get(test)),
                    say(theirs.get(test))
                ));
            }
        }
        out
    }
}
