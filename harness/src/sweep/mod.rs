//! The backup-point sweep: instead of one hand-picked stale backup, try every one and let the
//! ledger judge.
//!
//! A workload is a scenario file with a `[sweep] node = "..."` table (the node under test).
//! 1. **Discover**: run the workload once; every message the node sent or received on a live
//!    channel right after persisting a new state is a backup point (`steps.rs`).
//! 2. **Per point** (and backend and audit policy): run the workload again with the same seed,
//!    the node backing itself up exactly at that point (`backup_at`), let the workload finish,
//!    restore the backup, let the peers dial it, wait until no message is in flight.
//! 3. **Judge**: the oracle (`oracle.rs`) predicts from the peer's commitment numbers what the
//!    audit must do and how the channel must end up (`model::resolve`). The judge then leaves
//!    the nodes alone within a bound (a few blocks, each followed by quiescence): a channel they
//!    neither resume nor close is FROZEN, funds locked. A channel a node closed is followed on
//!    the ledger until every output is in a wallet (`ledger.rs`), with the time to funds
//!    unlocked (blocks and milliseconds); a resumed one is force-closed by the restored node to
//!    probe it (a penalty on its commitment proves UNSAFE). A wallet short of what the peer's
//!    records promise is LOST, a behaviour or resolution the oracle did not predict is
//!    MISMATCH. Closing held channels for the nodes, the judge's old habit, is a named option
//!    (`JudgeOptions::judge_closes_held`, `sweep --judge-closes-held`), for comparison.
//!
//! Every point's run is a generated scenario file written into its run directory, so a failing
//! point is reproduced with `dlp-harness run <that file>`; UNSAFE points can be written out as
//! regression scenarios (`regressions.rs`). `report.rs` prints the tables; `html.rs` makes them
//! a page (`sweep --html`).

mod damage;
mod expect;
mod html;
mod interleaving;
mod killed;
mod ledger;
mod liveness;
mod oracle;
mod point;
mod point_list;
mod regressions;
mod report;
mod results;
mod steps;
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dlp_chain::Hash32;
use dlp_node_api::{AuditPolicy, Backend};

use crate::capability::DriverKind;
use crate::error::HarnessError;
use crate::run::{RunFailure, Session};

pub use damage::{
    BackendDamage, CaseVerdict, DamageCase, DamageConfig, DamageProgress, DamageReport,
    SWAP_SOURCE, damage_scenario, damage_sweep, write_damage_regressions,
};
pub use expect::{PointRules, point_problems};
pub use html::{render_damage_html, render_html, render_html_body};
pub use interleaving::Interleaving;
use interleaving::Recorder;
pub use killed::{
    KILL_BACKUP, KILL_RESET, KillBackend, KillCount, MAX_KILL_POINTS, RENAME_AND_SYNC,
    kill_every_call,
};
pub use ledger::{Penalty, Settlement, settle};
pub use liveness::{JudgeOptions, RESOLVE_WITHIN_BLOCKS};
pub use oracle::{Behaviour, Expected, LedgerFacts, Resolution, Side, Verdict, classify, predict};
pub use point::PointRun;
use point::run_point;
pub use point_list::{POINTS_SUFFIX, PointList, PointListError, points_path};
pub use regressions::write_regressions;
pub use report::{UNLOCK_HEADER, render_tables, render_text, summary_lines, unlock_rows};
pub use results::compare_backends;
pub use results::{
    ChannelResult, PointResult, Progress, SweepReport, Unlock, same_verdicts, verdict_keys,
};
pub use steps::{BackupPoint, backup_points};
pub use workload::Workload;
use workload::{POINT_BACKUP, point_scenario};

/// Backup name used inside generated point scenarios.
/// How to sweep.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub backends: Vec<Backend>,
    pub policies: Vec<AuditPolicy>,
    pub driver: DriverKind,
    pub seed: u64,
    /// Points run at the same time.
    pub jobs: usize,
    /// Keep every run directory (failed ones are always kept).
    pub keep: bool,
    /// Only these point indices (1-based); all when empty.
    pub only: Vec<usize>,
    /// Where run directories go.
    pub runs_root: PathBuf,
    /// What the judge does with what the nodes leave unresolved (by default nothing: a channel
    /// neither resumed nor closed by the nodes within the bound is FROZEN).
    pub judge: JudgeOptions,
}

/// Why a sweep has no report.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The workload itself failed (or could not start) when run to find the points.
    #[error(
        "the workload {} failed on {backend} before any restore (run it with `dlp-harness run`): {failure}",
        path.display()
    )]
    Discover {
        path: PathBuf,
        backend: Backend,
        failure: RunFailure,
    },
    /// A point's task panicked (a harness bug).
    #[error("a point panicked: {0}")]
    Panicked(String),
}

pub(super) static SWEEP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Run the sweep.
pub async fn sweep(
    workload: &Workload,
    config: &SweepConfig,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<SweepReport, SweepError> {
    let started = Instant::now();
    let root = config.runs_root.join(format!(
        "sweep-{}-{}-{}",
        workload.name(),
        std::process::id(),
        SWEEP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut points = BTreeMap::new();
    // The first backend's discovery runs free and records the interleaving (unless the
    // workload comes with one); every later run (the other backends' discoveries, every
    // point) pins it.
    let mut order = (!workload.order.is_empty()).then(|| workload.order.clone());
    for backend in &config.backends {
        let dir = root.join(format!("discover-{backend}"));
        let found = discover(
            workload,
            *backend,
            config.driver,
            config.seed,
            &dir,
            order.as_ref(),
        )
        .await
        .map_err(|failure| SweepError::Discover {
            path: workload.scenario.path.clone(),
            backend: *backend,
            failure,
        })?;
        order.get_or_insert(found.order);
        let found = found.points;
        if !config.keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
        progress(Progress::Discovered {
            backend: *backend,
            points: found.len(),
        });
        points.insert(backend.to_string(), found);
    }
    let mut disagreements = Vec::new();
    let mut jobs = Vec::new();
    for backend in &config.backends {
        for policy in &config.policies {
            for point in &points[&backend.to_string()] {
                if config.only.is_empty() || config.only.contains(&point.index) {
                    jobs.push((*backend, *policy, point.clone()));
                }
            }
        }
    }
    let total = jobs.len();
    let order = order.unwrap_or_default();
    let workload = Arc::new(workload.clone().pinned(order.clone()));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, (backend, policy, point)) in jobs.into_iter().enumerate() {
        let workload = workload.clone();
        let semaphore = semaphore.clone();
        let dir = root.join(format!("{backend}-{policy}-{:03}", point.index));
        let how = PointRun {
            backend,
            policy,
            driver: config.driver,
            seed: config.seed,
            judge: config.judge,
        };
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            (i, run_point(&workload, how, point, &dir).await)
        });
    }
    let mut results: Vec<Option<PointResult>> = vec![None; total];
    let mut done = 0;
    while let Some(joined) = set.join_next().await {
        let (i, mut result) = joined.map_err(|e| SweepError::Panicked(e.to_string()))?;
        done += 1;
        // Kept when several backends ran: a disagreement needs both sides' runs (the root
        // goes at the end if there was none).
        if !config.keep
            && config.backends.len() == 1
            && !result.worst().is_failure()
            && let Some(dir) = result.run_dir.take()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(dir) = &result.run_dir
            && (config.keep || result.worst().is_failure())
        {
            point_reports(dir);
        }
        progress(Progress::PointDone {
            done,
            total,
            result: Box::new(result.clone()),
        });
        results[i] = Some(result);
    }
    let results: Vec<PointResult> = results.into_iter().flatten().collect();
    if config.backends.len() > 1 {
        compare_backends(&config.backends, &points, &results, &mut disagreements);
    }
    if !config.keep && disagreements.is_empty() && !results.iter().any(|r| r.worst().is_failure()) {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(SweepReport {
        workload: workload.name().to_string(),
        path: workload.scenario.path.clone(),
        node: workload.node.clone(),
        seed: config.seed,
        driver: config.driver.name().to_string(),
        points,
        results,
        disagreements,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        order,
    })
}

/// Judge one backup point on its own (what [`sweep`] does for each point, without finding the
/// points first: they come from the committed [`PointList`]). The run directory `dir` is left
/// in place for the caller to keep (with [`point_reports`]) or remove.
pub async fn sweep_point(
    workload: &Workload,
    how: PointRun,
    point: BackupPoint,
    dir: &Path,
) -> PointResult {
    run_point(workload, how, point, dir).await
}

/// A kept point's runs each get a `report.html` (a failed run wrote its own already).
pub fn point_reports(point_dir: &Path) {
    let runs = std::fs::read_dir(point_dir).into_iter().flatten().flatten();
    for run in runs.map(|e| e.path()) {
        if run.join(crate::report::RUN_FILE).is_file()
            && !run.join(crate::report::REPORT_FILE).is_file()
        {
            crate::run::write_report(&run);
        }
    }
}

/// Names of the node's channels by id, those opened in the session so far.
pub(super) fn channel_names(
    session: &Session<'_>,
    workload: &Workload,
) -> Result<BTreeMap<Hash32, String>, HarnessError> {
    Ok(workload
        .channels()
        .into_keys()
        .filter_map(|name| session.channel_id(&name).ok().map(|id| (id, name)))
        .collect())
}

/// What one discovery run found: the node's backup points, and the interleaving it ran (the
/// one it pinned, or, free, the one it recorded).
pub(super) struct Discovered {
    pub points: Vec<BackupPoint>,
    pub order: Interleaving,
}

/// Run the workload once and list the node's backup points: free (recording the
/// interleaving) or with `pinned`'s pinned (and failing, naming the inputs that raced, when a
/// node could not keep it).
pub(super) async fn discover(
    workload: &Workload,
    backend: Backend,
    driver: DriverKind,
    seed: u64,
    dir: &Path,
    pinned: Option<&Interleaving>,
) -> Result<Discovered, RunFailure> {
    let scenario = &workload.scenario;
    let node = &workload.node;
    let mut session = Session::setup(scenario, driver, backend, dir, seed)
        .await
        .map_err(|failure| failure.error)?;
    let listing = |error| RunFailure::Network {
        during: format!("listing {node}'s backup points"),
        error,
    };
    let result = async {
        session
            .wait_quiescent("waiting until no message is in flight after setup")
            .await?;
        let from = session.last_seq(node).map_err(listing)?;
        let recorder = Recorder::start(&session, scenario).map_err(listing)?;
        if let Some(order) = pinned {
            for step in interleaving::pin_steps(order) {
                session
                    .act(step, "the interleaving discovery pinned")
                    .await
                    .map_err(listing)?;
            }
        }
        let names = channel_names(&session, workload).map_err(listing)?;
        let start = steps::numbers_in(
            session.events(node).map_err(listing)?,
            &names,
            &BTreeMap::new(),
        );
        // A channel opened by a step is counted from right after that step, where its points'
        // backups are armed (see `point_scenario`): quiet first, as there.
        let mut counted_from = BTreeMap::new();
        let mut done = 0;
        let mut opened: Vec<(usize, String)> = workload
            .channels()
            .into_keys()
            .filter_map(|name| workload.opened_at(&name).map(|at| (at, name)))
            .collect();
        opened.sort();
        for (at, name) in opened {
            session.run_steps(done..at + 1).await?;
            done = at + 1;
            session
                .wait_quiescent(&format!(
                    "waiting until no message is in flight after opening {name}"
                ))
                .await?;
            let id = session.channel_id(&name).map_err(listing)?;
            counted_from.insert(id, session.last_seq(node).map_err(listing)?);
        }
        session.run_steps(done..scenario.file.steps.len()).await?;
        session
            .wait_quiescent("waiting until no message is in flight after the workload")
            .await?;
        let order = match pinned {
            Some(order) => {
                for step in interleaving::unpin_steps(scenario, order) {
                    session
                        .act(step, "the workload is over")
                        .await
                        .map_err(listing)?;
                }
                order.clone()
            }
            None => recorder.finish(&session, scenario).map_err(listing)?,
        };
        let names = channel_names(&session, workload).map_err(listing)?;
        let events: Vec<_> = session
            .events(node)
            .map_err(listing)?
            .iter()
            .filter(|e| e.seq > from)
            .cloned()
            .collect();
        Ok(Discovered {
            points: backup_points(&events, &names, &start, &counted_from),
            order,
        })
    }
    .await;
    session.teardown().await;
    result
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::capability::Capability;
    use crate::steps::Scenario;

    #[test]
    fn a_workload_needs_step_control_for_its_points_named_at_the_sweep_table() {
        let text = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n[sweep]\nnode = \"bob\"\n\
            [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n\
            [[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 10 }\n";
        let workload = Workload {
            scenario: Scenario::parse(Path::new("w.toml"), text).expect("valid"),
            node: "bob".into(),
            order: Interleaving::new(),
        };
        let without = [Capability::TypedEvents, Capability::DlpChainLedger];
        workload
            .scenario
            .check_capabilities(&without)
            .expect("the workload alone runs without step control");
        let err = workload
            .check_capabilities(&without)
            .expect_err("its points do not");
        assert!(
            err.to_string()
                .starts_with("w.toml:4:1: sweep: every point backs bob up at its step"),
            "{err}"
        );
        assert!(err.to_string().contains("needs step control"), "{err}");
        workload
            .check_capabilities(DriverKind::InProcess.capabilities())
            .expect("everything offered");
    }
}
