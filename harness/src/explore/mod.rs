//! The seeded explorer: random schedules over 2-4 nodes, invariants after every step, and a
//! failing schedule shrunk to a minimal scenario file.
//!
//! - `generate.rs` turns a seed into a schedule in the scenario vocabulary.
//! - [`run_schedule`] runs it on a fresh network and checks the invariants (passive silence,
//!   no penalty, ledger conservation, no bug reports) after every step. Its event log (every
//!   node's events, times and backup paths left out) is the same for the same seed.
//! - [`shrink`] removes steps (delta debugging) while the schedule still fails the same way
//!   (same failure signature) and writes the result as a regression scenario; the smallest
//!   failing run is kept (`shrunk/`, with its `report.html`).

mod generate;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dlp_node_api::{Backend, EventKind, MessageName};

use crate::capability::DriverKind;
use crate::error::HarnessError;
use crate::report::REPORT_FILE;
use crate::run::{RunFailure, Session};
use crate::steps::{self, Scenario, ScenarioFile, Step};

pub use generate::{Rng, ScheduleSpec, generate};

/// How one schedule ended.
#[derive(Debug)]
pub struct ScheduleOutcome {
    /// The failure, in full (what [`signature`] reads).
    pub failure: Option<String>,
    /// The same failure, typed (`Some` exactly when `failure` is): whether the harness could
    /// not start, a step failed or an invariant broke.
    pub error: Option<RunFailure>,
    /// Every node's events in order (`node#run seq kind`), without times or paths.
    pub event_log: Vec<String>,
    pub elapsed: Duration,
    /// The run directory's `report.html`, written when the schedule failed.
    pub report: Option<PathBuf>,
    /// What became of the schedule's mid-payment backups (`backup_at`).
    pub mid_payment: MidPaymentBackups,
}

/// The mid-payment backups of a schedule: armed (`backup_at` steps run), fired (the node wrote
/// the backup at its step), restored (restores of one that fired: a backup may be restored more
/// than once), and unreached (restores whose backup never fired: its step was never reached, so
/// the node is restarted instead).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MidPaymentBackups {
    pub armed: usize,
    pub fired: usize,
    pub restored: usize,
    pub unreached: usize,
}

impl std::ops::AddAssign for MidPaymentBackups {
    fn add_assign(&mut self, other: Self) {
        self.armed += other.armed;
        self.fired += other.fired;
        self.restored += other.restored;
        self.unreached += other.unreached;
    }
}

impl ScheduleOutcome {
    /// What kind of failure this is, with names of runs, numbers and hex left out, so a
    /// shrunk schedule can be compared with the original.
    pub fn signature(&self) -> Option<String> {
        self.failure.as_deref().map(signature)
    }
}

/// The kind of a failure: its first line with digits, hex ids and run numbers left out.
pub fn signature(failure: &str) -> String {
    let line = failure.lines().next().unwrap_or_default();
    let mut out = Vec::new();
    for word in line.split_whitespace() {
        let bare = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        let hex = bare.strip_prefix("0x").unwrap_or(bare);
        if hex.len() >= 8 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push("<id>".to_string());
        } else {
            out.push(word.chars().filter(|c| !c.is_ascii_digit()).collect());
        }
    }
    out.join(" ")
}

/// Generate the schedule of `spec`, write it into `dir` as `schedule.toml` (what reproduces it)
/// and run it in `dir/run`.
pub async fn run_spec(
    spec: ScheduleSpec,
    driver: DriverKind,
    backend: Backend,
    dir: &Path,
) -> Result<ScheduleOutcome, HarnessError> {
    let path = dir.join("schedule.toml");
    let scenario = Scenario::generated(&path, &generate(spec), "")?;
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    std::fs::write(&path, scenario.text()).map_err(|e| HarnessError::io(&path, e))?;
    Ok(run_schedule(&scenario, driver, backend, spec.seed, &dir.join("run")).await)
}

/// Run a schedule: a fresh network in `dir`, quiet before the first step, invariants after
/// every step.
pub async fn run_schedule(
    scenario: &Scenario,
    driver: DriverKind,
    backend: Backend,
    seed: u64,
    dir: &Path,
) -> ScheduleOutcome {
    let started = Instant::now();
    let mut mid_payment = MidPaymentBackups::default();
    let (result, event_log, report) = match Session::setup(scenario, driver, backend, dir, seed)
        .await
    {
        Err(failure) => (Err(failure.error), Vec::new(), failure.html),
        Ok(mut session) => {
            let result = run_one_by_one(&mut session, &mut mid_payment).await;
            if let Err(failure) = &result {
                session.record_failure(failure);
            }
            let event_log = session.event_log();
            // Fired: a node announced a backup written at a protocol step (step control's
            // backup action).
            mid_payment.fired = scenario
                .file
                .nodes
                .keys()
                .filter_map(|node| session.history(node).ok())
                .flatten()
                .filter(|(_, e)| matches!(e.kind, EventKind::BackupWritten { step: Some(_), .. }))
                .count();
            let report = session.teardown().await;
            (result, event_log, report)
        }
    };
    let error = result.err();
    ScheduleOutcome {
        failure: error.as_ref().map(ToString::to_string),
        error,
        event_log,
        elapsed: started.elapsed(),
        report,
        mid_payment,
    }
}

/// Every step on its own, each followed by the invariants; counts what became of the
/// mid-payment backups in `mid_payment` (all but `fired`, which the nodes' events tell).
async fn run_one_by_one(
    session: &mut Session<'_>,
    mid_payment: &mut MidPaymentBackups,
) -> Result<(), RunFailure> {
    session
        .wait_quiescent("waiting until no message is in flight after setup")
        .await?;
    let steps = &session.scenario().file.steps;
    let mid_payment_names: std::collections::BTreeSet<String> = steps
        .iter()
        .filter_map(|s| match s.get_ref() {
            Step::BackupAt(b) => Some(b.name.clone()),
            _ => None,
        })
        .collect();
    for i in 0..session.scenario().file.steps.len() {
        if matches!(
            session.scenario().file.steps[i].get_ref(),
            Step::BackupAt(_)
        ) {
            mid_payment.armed += 1;
        }
        // A `backup_at` fires only if a later payment passes its step; every step is followed
        // by quiescence, so one not written by the time of its restore never will be. Its
        // restore becomes a restart of the node (what the generator's model expects of a
        // restore: the node running, its connections dropped), noted in the timeline: not a
        // finding, and the same seed does the same every time.
        if let Step::Restore(steps::backups::Restore { node, backup, .. }) =
            session.scenario().file.steps[i].get_ref()
        {
            let instead = async {
                session.fetch_events(None).await?;
                if session.backup_written_now(backup)? {
                    return Ok(false);
                }
                let why = format!(
                    "#{} restore of {node} from {backup}: its backup_at step was never reached; \
                     restarting {node} instead",
                    i + 1
                );
                let node = node.clone();
                let restart = if session.is_running(&node) {
                    Step::Restart(steps::lifecycle::Restart { node })
                } else {
                    Step::Start(steps::lifecycle::Start { node })
                };
                session.act(restart, &why).await?;
                Ok(true)
            };
            let restarted = instead.await.map_err(|error| RunFailure::Step {
                index: i + 1,
                line: session
                    .scenario()
                    .step_position(i)
                    .map_or(0, |(line, _)| line),
                verb: "restore",
                error,
            })?;
            if mid_payment_names.contains(backup) {
                match restarted {
                    true => mid_payment.unreached += 1,
                    false => mid_payment.restored += 1,
                }
            }
            if restarted {
                session.check_invariants().await?;
                continue;
            }
        }
        session.run_steps(i..i + 1).await?;
        session.check_invariants().await?;
    }
    Ok(())
}

/// The event log in a form two runs of the same seed must share: each node run's events as a
/// sorted multiset (sequence numbers dropped), state changes by state name. A node hears the
/// ledger and its peers on separate connections, so the order of a ledger event and a peer's
/// message can legitimately differ: both ends see the funding confirm and send ChannelReady,
/// and which one a node handles first decides only the transient flags of
/// `AwaitingChannelReady` (ours sent or theirs received first). Gossip (its messages and the
/// policies stored on the way) is left out: its flood order is timing, and the graph it settles
/// on is what routes see. What happened may not differ.
pub fn canonical_log(log: &[String]) -> Vec<String> {
    let mut groups: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for line in log {
        let mut parts = line.splitn(3, ' ');
        let (Some(run), Some(_seq), Some(kind)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if let Some(kind) = canonical_kind(kind) {
            groups.entry(run).or_default().push(kind);
        }
    }
    let mut out = Vec::new();
    for (run, mut kinds) in groups {
        kinds.sort_unstable();
        out.extend(kinds.into_iter().map(|k| format!("{run} {k}")));
    }
    out
}

/// A state change reduced to state names; `None` for a flags-only change.
fn canonical_kind(kind: &str) -> Option<String> {
    let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str::<serde_json::Value>(kind)
    else {
        return Some(kind.to_string());
    };
    // Gossip is left out: which copy of an announcement a node hears first, whom it relays to
    // and how many policies it stores on the way depend on timing, not on the schedule (the
    // graph every node holds once the network is quiet does not).
    let kind_type = map.get("type").and_then(|t| t.as_str()).unwrap_or_default();
    let gossip_message = matches!(kind_type, "message_sent" | "message_received")
        && map
            .get("msg_type")
            .and_then(|m| m.as_str())
            .is_some_and(|m| MessageName::from(m).is_gossip());
    if gossip_message || kind_type == "graph_channel_updated" {
        return None;
    }
    if kind_type != "state_changed" {
        return Some(kind.to_string());
    }
    let name = |v: Option<&serde_json::Value>| {
        v.and_then(|s| s.get("state_name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let (from, to) = (name(map.get("from")), name(map.get("to")));
    if from == to {
        return None;
    }
    map.insert("from".into(), from.into());
    map.insert("to".into(), to.into());
    Some(serde_json::Value::Object(map).to_string())
}

/// The schedule's steps without the `wait_quiescent` between them.
fn core_steps(file: &ScenarioFile) -> Vec<Step> {
    file.steps
        .iter()
        .map(|s| s.get_ref().clone())
        .filter(|s| !matches!(s, Step::WaitQuiescent(steps::network::WaitQuiescent {})))
        .collect()
}

/// A file with `steps`, each followed by `wait_quiescent`.
fn with_steps(file: &ScenarioFile, steps: &[Step]) -> ScenarioFile {
    let mut out = file.clone();
    out.steps = steps
        .iter()
        .flat_map(|s| {
            [
                s.clone(),
                Step::WaitQuiescent(steps::network::WaitQuiescent {}),
            ]
        })
        .map(|s| toml::Spanned::new(0..0, s))
        .collect();
    out
}

/// Where a shrink stands, for progress output.
#[derive(Debug, Clone)]
pub struct ShrinkProgress {
    pub tries: usize,
    pub steps: usize,
}

/// Delta debugging (ddmin) over the schedule's steps: the smallest schedule found that still
/// fails with the same signature. Candidates that are not valid scenarios (a restore whose
/// backup was removed) are skipped. Bounded by `max_tries` runs.
#[allow(clippy::too_many_arguments)]
pub async fn shrink(
    file: &ScenarioFile,
    want: &str,
    driver: DriverKind,
    backend: Backend,
    seed: u64,
    dir: &Path,
    max_tries: usize,
    progress: &(dyn Fn(ShrinkProgress) + Sync),
) -> Result<(ScenarioFile, ScheduleOutcome), HarnessError> {
    let mut steps = core_steps(file);
    let mut best: Option<ScheduleOutcome> = None;
    let mut tries = 0;
    let mut chunks = 2usize;
    while steps.len() >= 2 && tries < max_tries {
        let size = steps.len().div_ceil(chunks);
        let mut reduced = false;
        let mut start = 0;
        while start < steps.len() && tries < max_tries {
            let mut candidate = steps.clone();
            candidate.drain(start..(start + size).min(steps.len()));
            let path = dir.join("candidate.toml");
            let Ok(scenario) = Scenario::generated(&path, &with_steps(file, &candidate), "") else {
                start += size;
                continue;
            };
            tries += 1;
            let run_dir = dir.join(format!("try-{tries}"));
            let mut outcome = run_schedule(&scenario, driver, backend, seed, &run_dir).await;
            let kept = outcome.signature().as_deref() == Some(want);
            if kept {
                // The smallest failing run so far is kept as `shrunk`, with its report.
                let shrunk = dir.join("shrunk");
                let _ = std::fs::remove_dir_all(&shrunk);
                let moved = std::fs::rename(&run_dir, &shrunk).is_ok();
                outcome.report = outcome
                    .report
                    .take()
                    .filter(|_| moved)
                    .map(|_| shrunk.join(REPORT_FILE));
            }
            let _ = std::fs::remove_dir_all(&run_dir);
            if kept {
                steps = candidate;
                best = Some(outcome);
                reduced = true;
                progress(ShrinkProgress {
                    tries,
                    steps: steps.len(),
                });
                chunks = (chunks - 1).max(2);
                break;
            }
            start += size;
        }
        if !reduced {
            if size <= 1 {
                break;
            }
            chunks = (chunks * 2).min(steps.len());
        }
    }
    let shrunk = with_steps(file, &steps);
    let outcome = match best {
        Some(o) => o,
        None => {
            let scenario = Scenario::generated(&dir.join("candidate.toml"), &shrunk, "")?;
            run_schedule(&scenario, driver, backend, seed, &dir.join("final")).await
        }
    };
    Ok((shrunk, outcome))
}

/// Write a shrunk schedule as a regression scenario; returns its path.
pub fn write_regression(
    file: &ScenarioFile,
    outcome: &ScheduleOutcome,
    spec: ScheduleSpec,
    backend: Backend,
    dir: &Path,
) -> Result<PathBuf, HarnessError> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    let path = dir.join(format!("explore_seed_{}_{backend}.toml", spec.seed));
    let mut file = file.clone();
    file.description = format!(
        "Found by the explorer (seed {}, {} steps over {} nodes, policy {}) and shrunk to {} \
         steps. Passes when dlp-node is right; it failed with: {}",
        spec.seed,
        spec.steps,
        spec.nodes,
        spec.policy,
        core_steps(&file).len(),
        outcome
            .failure
            .as_deref()
            .and_then(|f| f.lines().next())
            .unwrap_or_default()
    );
    let comment = format!(
        "Regression found by `dlp-harness explore --seed {} --steps {} --nodes {} --backend {backend} --policy {}`\n\
         and shrunk by delta debugging. The failure it reproduced:\n{}",
        spec.seed,
        spec.steps,
        spec.nodes,
        spec.policy,
        outcome
            .failure
            .as_deref()
            .unwrap_or_default()
            .lines()
            .take(6)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Never write a file that does not load.
    let scenario = Scenario::generated(&path, &file, &comment)?;
    std::fs::write(&path, scenario.text()).map_err(|e| HarnessError::io(&path, e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_ignore_numbers_and_ids() {
        let a = "after step 7: invariant violated: bob (start #2) sent CommitmentSigned on Stale channel 0x1b4b9c0de2 before the peer's ReestablishChannel (event #3)";
        let b = "after step 3: invariant violated: bob (start #3) sent CommitmentSigned on Stale channel 0xffffeeee01 before the peer's ReestablishChannel (event #9)";
        assert_eq!(super::signature(a), super::signature(b));
        assert!(super::signature(a).contains("sent CommitmentSigned on Stale channel"));
    }
}
