//! The backup-point sweep: instead of one hand-picked stale backup, try every one and let the
//! ledger judge.
//!
//! A workload is a scenario file with a `[sweep] node = "..."` table (the node under test).
//! 1. **Discover**: run the workload once; every message the node sent or received on a live
//!    channel right after persisting a new state is a backup point (`steps.rs`).
//! 2. **Per point** (and backend and audit policy): run the workload again with the same seed,
//!    the node backing itself up exactly at that point (`backup_at`), let the workload finish,
//!    restore the backup, let the peers dial it, wait until no message is in flight.
//! 3. **Judge**: the oracle (`oracle.rs`) predicts from the peer's commitment numbers what must
//!    happen; the restored channel is then force-closed (by the restored node if it resumed,
//!    by the peer if it held) and the ledger is followed until every output is in a wallet
//!    (`ledger.rs`): a penalty on the restored node's commitment proves UNSAFE, a wallet short
//!    of what the peer's records promise is LOST, a behaviour the oracle did not predict is
//!    MISMATCH.
//!
//! Every point's run is a generated scenario file written into its run directory, so a failing
//! point is reproduced with `dlp-harness run <that file>`; UNSAFE points can be written out as
//! regression scenarios (`regressions.rs`).

mod ledger;
mod oracle;
mod regressions;
mod report;
mod steps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dlp_chain::{Hash32, OutPoint};
use dlp_node::channel_record::ChannelState;
use dlp_node::config::AuditPolicy;
use dlp_node::events::EventKind;
use dlp_node::store::Backend;
use serde::Serialize;

use crate::driver::{Capability, DriverKind};
use crate::error::HarnessError;
use crate::network::{DEADLINE, Network};
use crate::scenario::{RunFailure, Scenario, ScenarioFile, Session, Step};

pub use ledger::{Penalty, Settlement, settle};
pub use oracle::{Behaviour, Expected, LedgerFacts, Verdict, classify, predict};
pub use regressions::write_regressions;
pub use report::{render_tables, summary_lines};
pub use steps::{BackupPoint, backup_points};

/// Backup name used inside generated point scenarios.
const POINT_BACKUP: &str = "sweep_point";

/// A sweep workload: a scenario prefix and the node under test.
#[derive(Debug, Clone)]
pub struct Workload {
    pub scenario: Scenario,
    pub node: String,
}

impl Workload {
    /// Load a workload file (a scenario with a `[sweep]` table).
    pub fn load(path: &Path) -> Result<Self, HarnessError> {
        let scenario = Scenario::load(path)?;
        let node = scenario
            .file
            .sweep
            .as_ref()
            .map(|s| s.get_ref().node.clone())
            .ok_or_else(|| HarnessError::Invalid {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: "not a sweep workload: add a [sweep] table naming the node under test \
                          (node = \"bob\")"
                    .into(),
            })?;
        // Points are counted in the node's first run; a workload that restarts it would
        // shift them (and armed steps do not survive a restart).
        for (index, step) in scenario.file.steps.iter().enumerate() {
            let restarts = match step.get_ref() {
                Step::Start { node: n }
                | Step::Stop { node: n }
                | Step::Restart { node: n }
                | Step::Crash { node: n }
                | Step::Restore { node: n, .. } => *n == node,
                _ => false,
            };
            if restarts {
                return Err(scenario.invalid_at_step(
                    index,
                    format!(
                        "{}: a sweep workload may not stop, start or restore its node under test \
                         ({node}); the sweep restores it itself after the workload",
                        step.get_ref().verb()
                    ),
                ));
            }
        }
        Ok(Self { scenario, node })
    }

    pub fn name(&self) -> &str {
        &self.scenario.name
    }

    /// Refuse a workload the driver cannot sweep, before anything starts: what its own steps
    /// and the invariants need, and what the backup every point arms at its step needs
    /// (`backup_at`: step control), named at the `[sweep]` table.
    pub fn check_capabilities(&self, offered: &[Capability]) -> Result<(), HarnessError> {
        self.scenario.check_capabilities(offered)?;
        let armed = Step::BackupAt {
            node: self.node.clone(),
            step: String::new(),
            channel: None,
            nth: 1,
            name: POINT_BACKUP.into(),
        };
        match armed
            .required_capabilities()
            .iter()
            .find(|c| !offered.contains(c))
        {
            None => Ok(()),
            Some(missing) => Err(self.scenario.invalid_at(
                self.scenario
                    .file
                    .sweep
                    .as_ref()
                    .map_or(0, |s| s.span().start),
                format!(
                    "sweep: every point backs {} up at its step (backup_at), which needs \
                     {missing}; the driver does not offer it",
                    self.node
                ),
            )),
        }
    }

    /// The node's channels: name -> peer.
    pub fn channels(&self) -> BTreeMap<String, String> {
        self.scenario
            .file
            .channels
            .iter()
            .map(|c| c.get_ref())
            .filter_map(|c| {
                if c.from == self.node {
                    Some((c.name.clone(), c.to.clone()))
                } else if c.to == self.node {
                    Some((c.name.clone(), c.from.clone()))
                } else {
                    None
                }
            })
            .collect()
    }
}

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
}

/// The verdict on one of the node's channels at one point.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelResult {
    pub channel: String,
    pub peer: String,
    /// The restored node's `(L, R)` (the backup's).
    pub backup: (u64, u64),
    /// The peer's `(PL, PR)` when it reconnected; `None` when the ledger had closed it.
    pub peer_numbers: Option<(u64, u64)>,
    pub expected: Expected,
    pub observed: Behaviour,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What the ledger showed when the channel was closed and settled.
    pub ledger: LedgerFacts,
}

/// One point on one backend under one policy.
#[derive(Debug, Clone, Serialize)]
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

fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::Resumed | Verdict::Closed => 0,
        Verdict::Held => 1,
        Verdict::Mismatch => 2,
        Verdict::Lost => 3,
        Verdict::Unsafe => 4,
        Verdict::Error => 5,
    }
}

/// Everything a sweep found.
#[derive(Debug, Clone, Serialize)]
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

static SWEEP_COUNTER: AtomicU64 = AtomicU64::new(0);

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
    for backend in &config.backends {
        let dir = root.join(format!("discover-{backend}"));
        let found = discover(workload, *backend, config.driver, config.seed, &dir)
            .await
            .map_err(|failure| SweepError::Discover {
                path: workload.scenario.path.clone(),
                backend: *backend,
                failure,
            })?;
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
    let workload = Arc::new(workload.clone());
    let semaphore = Arc::new(tokio::sync::Semaphore::new(config.jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, (backend, policy, point)) in jobs.into_iter().enumerate() {
        let workload = workload.clone();
        let semaphore = semaphore.clone();
        let dir = root.join(format!("{backend}-{policy}-{:03}", point.index));
        let (driver, seed) = (config.driver, config.seed);
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            (
                i,
                run_point(&workload, backend, policy, point, driver, seed, &dir).await,
            )
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
    })
}

/// Both backends must find the same points and give the same verdict at each. Points are
/// matched by step and own-channel numbers ([`BackupPoint::key`]).
fn compare_backends(
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
            // Compare channels whose backups hold the same numbers on both (the point's own
            // channel always does; another channel's may differ with the interleaving).
            let differs = a.error.is_some() != b.error.is_some()
                || a.channels.iter().any(|ca| {
                    b.channels.iter().any(|cb| {
                        ca.channel == cb.channel
                            && ca.backup == cb.backup
                            && ca.verdict != cb.verdict
                    })
                });
            if differs {
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

/// Names of the node's channels by id, as opened in `net`.
fn channel_names(
    net: &Network,
    workload: &Workload,
) -> Result<BTreeMap<Hash32, String>, HarnessError> {
    workload
        .channels()
        .into_keys()
        .map(|name| Ok((net.channel(&name)?.id, name)))
        .collect()
}

/// Run the workload once and list the node's backup points.
async fn discover(
    workload: &Workload,
    backend: Backend,
    driver: DriverKind,
    seed: u64,
    dir: &Path,
) -> Result<Vec<BackupPoint>, RunFailure> {
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
        let net = session.network();
        let from = net.last_seq(node).map_err(listing)?;
        let names = channel_names(net, workload).map_err(listing)?;
        let start = steps::numbers_in(net.events(node).map_err(listing)?, &names, &BTreeMap::new());
        session.run_steps(0..scenario.file.steps.len()).await?;
        session
            .wait_quiescent("waiting until no message is in flight after the workload")
            .await?;
        let events: Vec<_> = session
            .network()
            .events(node)
            .map_err(listing)?
            .iter()
            .filter(|e| e.seq > from)
            .cloned()
            .collect();
        Ok(backup_points(&events, &names, &start))
    }
    .await;
    session.teardown().await;
    result
}

/// The generated scenario for one point: the workload with the node's policy set, a backup
/// armed at the point, then restore, the peers dialling the node, and quiescence.
fn point_scenario(workload: &Workload, policy: AuditPolicy, point: &BackupPoint) -> ScenarioFile {
    let mut file = workload.scenario.file.clone();
    file.sweep = None;
    file.topology = None;
    let node = workload.node.clone();
    if let Some(decl) = file.nodes.get_mut(&node) {
        decl.audit_policy = Some(policy);
    }
    file.description = format!(
        "Sweep of {} (node {node}, policy {policy}), backup point {}: {}. Generated by \
         `dlp-harness sweep`.",
        workload.name(),
        point.index,
        point.label()
    );
    let spanned = |s: Step| toml::Spanned::new(0..0, s);
    let mut steps = vec![
        spanned(Step::WaitQuiescent {}),
        spanned(Step::BackupAt {
            node: node.clone(),
            step: point.step.clone(),
            channel: Some(point.channel.clone()),
            nth: point.nth,
            name: POINT_BACKUP.into(),
        }),
    ];
    steps.extend(file.steps.iter().cloned());
    steps.push(spanned(Step::WaitQuiescent {}));
    steps.push(spanned(Step::Restore {
        node: node.clone(),
        backup: POINT_BACKUP.into(),
    }));
    let mut peers: Vec<String> = workload.channels().into_values().collect();
    peers.sort();
    peers.dedup();
    for peer in peers {
        steps.push(spanned(Step::Connect {
            from: peer,
            to: node.clone(),
        }));
    }
    steps.push(spanned(Step::WaitQuiescent {}));
    file.steps = steps;
    file
}

/// The peer's view of a channel before the restore.
#[derive(Debug, Clone)]
struct PeerView {
    numbers: Option<(u64, u64)>,
    funding: Option<OutPoint>,
    /// What the peer's records promise each side (taken before the restore, so nothing the
    /// restored node says can move the baseline).
    owed_peer: u64,
    owed_node: u64,
    pending_tlcs: usize,
}

async fn run_point(
    workload: &Workload,
    backend: Backend,
    policy: AuditPolicy,
    point: BackupPoint,
    driver: DriverKind,
    seed: u64,
    dir: &Path,
) -> PointResult {
    let started = Instant::now();
    let mut result = PointResult {
        point: point.clone(),
        backend: backend.to_string(),
        policy: policy.to_string(),
        channels: Vec::new(),
        error: None,
        elapsed_ms: 0,
        run_dir: Some(dir.to_path_buf()),
    };
    match judge_point(workload, backend, policy, &point, driver, seed, dir).await {
        Ok(channels) => result.channels = channels,
        Err(e) => {
            result.error = Some(format!(
                "{e}\nreproduce: dlp-harness run {} --backend {backend} --driver {} --seed {seed}",
                dir.join("point.toml").display(),
                driver.name()
            ))
        }
    }
    result.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

async fn judge_point(
    workload: &Workload,
    backend: Backend,
    policy: AuditPolicy,
    point: &BackupPoint,
    driver: DriverKind,
    seed: u64,
    dir: &Path,
) -> Result<Vec<ChannelResult>, PointError> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    let path = dir.join("point.toml");
    let mut file = point_scenario(workload, policy, point);
    // The judge force-closes the restored channels, and closing a revoked one is punished on
    // the ledger: that is what it measures. So the point's scenario (and with it the one
    // invariant policy of its run) allows penalties.
    file.allow_penalties = true;
    let scenario = Scenario::generated(&path, &file, "")?;
    std::fs::write(&path, scenario.text()).map_err(|e| HarnessError::io(&path, e))?;
    // The point's own channel is deterministic; the node's other channels at that moment
    // depend on how their commitment dances interleaved. Try a few times for the combination
    // discovery saw, then judge whatever the backup holds.
    for attempt in 1..=ATTEMPTS {
        let run_dir = dir.join(if attempt == 1 {
            "run".to_string()
        } else {
            format!("run-{attempt}")
        });
        let mut session = Session::setup(&scenario, driver, backend, &run_dir, seed)
            .await
            .map_err(|failure| failure.error)?;
        let judged = judge_on(&mut session, workload, point, policy, attempt == ATTEMPTS).await;
        session.teardown().await;
        match judged {
            Ok(Some(channels)) => return Ok(channels),
            Ok(None) => {
                let _ = std::fs::remove_dir_all(&run_dir);
            }
            Err(e) => return Err(e),
        }
    }
    Err(PointError::Judge(HarnessError::Setup(
        "no attempt judged the point".into(),
    )))
}

/// Reruns of a point whose other channels interleaved differently from discovery.
const ATTEMPTS: u32 = 3;

/// Why a point has no verdict: its run failed (a step, setup), or judging it did.
#[derive(Debug, thiserror::Error)]
enum PointError {
    #[error(transparent)]
    Run(#[from] RunFailure),
    #[error(transparent)]
    Judge(#[from] HarnessError),
}

async fn judge_on(
    session: &mut Session<'_>,
    workload: &Workload,
    point: &BackupPoint,
    policy: AuditPolicy,
    last_attempt: bool,
) -> Result<Option<Vec<ChannelResult>>, PointError> {
    let node = workload.node.as_str();
    let scenario = session.scenario();
    let restore_at = scenario
        .file
        .steps
        .iter()
        .position(|s| matches!(s.get_ref(), Step::Restore { .. }))
        .ok_or_else(|| HarnessError::Setup("generated point scenario has no restore".into()))?;
    session.run_steps(0..restore_at).await?;
    let net = session.network_mut();
    let actual = check_fired_point(net, workload, point).await?;
    if actual != point.numbers && !last_attempt {
        return Ok(None);
    }
    let channels = workload.channels();
    let mut before = BTreeMap::new();
    for (channel, peer) in &channels {
        let info = net.channel_info(peer, channel).await?;
        let live = !matches!(info.state, ChannelState::Closed(_));
        before.insert(
            channel.clone(),
            PeerView {
                numbers: live
                    .then_some((info.local_commitment_number, info.remote_commitment_number)),
                funding: info.funding_outpoint,
                owed_peer: info.local_balance,
                owed_node: info.remote_balance,
                pending_tlcs: info.pending_tlcs.len(),
            },
        );
    }
    session
        .run_steps(restore_at..scenario.file.steps.len())
        .await?;
    let net = session.network_mut();
    // Observe every channel before closing any (closing one mines blocks).
    let mut observed = BTreeMap::new();
    for channel in channels.keys() {
        observed.insert(channel.clone(), observe(net, node, channel).await?);
    }
    let mut out = Vec::new();
    for (channel, peer) in &channels {
        let view = &before[channel];
        let backup = actual.get(channel).copied().unwrap_or((0, 0));
        let expected = predict(policy, backup, view.numbers);
        let observed = observed[channel];
        let facts =
            close_and_settle(session.network_mut(), node, peer, channel, observed, view).await?;
        let (mut verdict, mut detail) = classify(expected, observed, &facts);
        if let Err(e) = session.check_invariants().await
            && !verdict.is_failure()
        {
            verdict = Verdict::Mismatch;
            detail = e.to_string();
        }
        out.push(ChannelResult {
            channel: channel.clone(),
            peer: peer.clone(),
            backup,
            peer_numbers: view.numbers,
            expected,
            observed,
            verdict,
            detail,
            ledger: facts,
        });
    }
    Ok(Some(out))
}

/// The backup was taken at the point found by discovery: the message event right before
/// `BackupWritten` is the point's message with the point's numbers. Anything else means the
/// rerun went differently (a nondeterministic workload) and the verdict would be meaningless.
/// Returns the numbers the backup holds on each of the node's channels.
async fn check_fired_point(
    net: &mut Network,
    workload: &Workload,
    point: &BackupPoint,
) -> Result<BTreeMap<String, (u64, u64)>, HarnessError> {
    let node = workload.node.as_str();
    net.poll(node, Duration::ZERO).await?;
    if !net.events(node)?.iter().any(
        |e| matches!(&e.kind, EventKind::BackupWritten { step: Some(s), .. } if *s == point.step),
    ) {
        return Err(HarnessError::Expectation(format!(
            "the rerun never reached {} (the workload finished without it): the workload is not \
             deterministic",
            point.label()
        )));
    }
    let (_, dir) = net.backup_dir(POINT_BACKUP).await?;
    let events = net.events(node)?;
    let at = events
        .iter()
        .position(
            |e| matches!(&e.kind, EventKind::BackupWritten { dir: d, .. } if Path::new(d) == dir),
        )
        .ok_or_else(|| {
            HarnessError::Expectation(format!("{node}: no BackupWritten for the point"))
        })?;
    let fired = events[..at]
        .iter()
        .rev()
        .find_map(|e| steps::message_step(&e.kind));
    let channel_id = net.channel(&point.channel)?.id;
    let want = (
        point.step.clone(),
        channel_id,
        point
            .numbers
            .get(&point.channel)
            .copied()
            .unwrap_or_default(),
    );
    let names = channel_names(net, workload)?;
    match fired {
        Some(got) if got == want => Ok(steps::numbers_in(&events[..at], &names, &BTreeMap::new())),
        other => Err(HarnessError::Expectation(format!(
            "the rerun backed up at {other:?}, discovery expected {} with numbers {:?}: the workload is \
             not deterministic (add wait_quiescent between steps that race)",
            point.label(),
            want.2
        ))),
    }
}

/// What the restored node did with a channel in its current run.
async fn observe(net: &mut Network, node: &str, channel: &str) -> Result<Behaviour, HarnessError> {
    let id = net.channel(channel)?.id;
    net.poll(node, Duration::ZERO).await?;
    for e in net.events(node)? {
        match &e.kind {
            EventKind::AuditPassed { channel_id, .. } if *channel_id == id => {
                return Ok(Behaviour::Resumed);
            }
            EventKind::AuditFailed { channel_id, .. } if *channel_id == id => {
                return Ok(Behaviour::Held);
            }
            _ => {}
        }
    }
    let info = net.channel_info(node, channel).await?;
    Ok(match info.state {
        ChannelState::Closed(_) => Behaviour::Closed,
        ChannelState::ChannelReady | ChannelState::ShuttingDown(_) => Behaviour::Resumed,
        _ => Behaviour::Held,
    })
}

/// Close the channel (the restored node force-closes if it resumed, else the peer does),
/// follow the ledger until every output is in a wallet, and compare the takes with what the
/// peer's records promised.
async fn close_and_settle(
    net: &mut Network,
    node: &str,
    peer: &str,
    channel: &str,
    observed: Behaviour,
    before: &PeerView,
) -> Result<LedgerFacts, HarnessError> {
    let funding = before.funding.ok_or_else(|| {
        HarnessError::node(peer, format!("lists no funding outpoint for {channel}"))
    })?;
    let chain = net.chain().clone();
    let ledger = |chain: Arc<dyn dlp_chain::ChainClient>| async move {
        let txs = chain
            .transactions(None)
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))?;
        Ok::<_, HarnessError>(settle(&txs, funding))
    };
    let (owed_node, owed_peer, pending) = (before.owed_node, before.owed_peer, before.pending_tlcs);
    if ledger(chain.clone()).await?.closing.is_none() {
        let who = if observed == Behaviour::Resumed {
            node
        } else {
            peer
        };
        if let Err(refusal) = net.shutdown(who, channel, true).await? {
            return Err(HarnessError::node(
                who,
                format!("refused to force-close {channel}: {refusal}"),
            ));
        }
        let other = if who == node { peer } else { node };
        // The other side saw the commitment (and, if it was revoked, submitted the penalty in
        // the same step: list_channels answers only after that step).
        net.wait_state(other, channel, "Closed").await?;
    }
    let deadline = Instant::now() + DEADLINE;
    let mut after = 0;
    let settlement = loop {
        let s = ledger(chain.clone()).await?;
        if s.is_final() {
            break s;
        }
        if Instant::now() >= deadline {
            return Err(HarnessError::Expectation(format!(
                "channel {channel} not settled on the ledger after {}s: unspent channel outputs {:?}",
                DEADLINE.as_secs(),
                s.unsettled
            )));
        }
        let tip = net
            .chain()
            .height()
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))?;
        if s.closing.is_some() && (s.spendable_at == u64::MAX || s.spendable_at >= tip) {
            let blocks = if s.spendable_at == u64::MAX {
                1
            } else {
                s.spendable_at - tip + 1
            };
            net.mine(blocks.min(1_000)).await?;
        }
        let events = chain
            .events_after(after, Duration::from_millis(200))
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))?;
        if let Some(last) = events.last() {
            after = last.seq();
        }
    };
    let mut facts = LedgerFacts::default();
    let node_key = net.pubkey(node)?;
    for penalty in &settlement.penalties {
        // The punished commitment's holder broadcast a revoked state.
        if penalty.cheater == node_key {
            facts.restored_punished = Some(penalty.txid.to_string());
        } else {
            facts.peer_punished = Some(penalty.txid.to_string());
        }
    }
    let (node_wallet, peer_wallet) = (net.wallet_key(node)?, net.wallet_key(peer)?);
    let (got_node, got_peer) = (settlement.take(&node_wallet), settlement.take(&peer_wallet));
    let short = |who: &str, got: u64, owed: u64| {
        let lacking = if pending == 0 {
            got != owed
        } else {
            got < owed
        };
        lacking.then(|| format!("{who}: got {got} on the ledger, the peer's records say {owed}"))
    };
    facts.shortfalls.extend(short(node, got_node, owed_node));
    facts.shortfalls.extend(short(peer, got_peer, owed_peer));
    if got_node + got_peer != settlement.funding_amount {
        facts.shortfalls.push(format!(
            "of the channel's {}, {node} got {got_node} and {peer} {got_peer}: not all of it went \
             to the two of them",
            settlement.funding_amount
        ));
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_workload_needs_step_control_for_its_points_named_at_the_sweep_table() {
        let text = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n[sweep]\nnode = \"bob\"\n\
            [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n\
            [[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 10 }\n";
        let workload = Workload {
            scenario: Scenario::parse(Path::new("w.toml"), text).expect("valid"),
            node: "bob".into(),
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
            .check_capabilities(&Capability::ALL)
            .expect("everything offered");
    }
}
