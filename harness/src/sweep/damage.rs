//! The damage sweep (`dlp-harness sweep --damage`): does the node notice every damaged backup?
//!
//! For each backend: find the workload's backup points (as the backup-point sweep does), take a
//! seeded sample of them (all by default), and at each run the workload with the node backing
//! itself up at the point, then an RPC backup at the end (what `swap` takes files from). Then,
//! on that one session, for every file of the point's backup, every way of damage ([`How`]) and
//! K seeded places (one for `delete` and `swap`): copy the backup, damage the copy, restore it,
//! and classify the case:
//!
//! - `refused`: the node said no, and its home is byte for byte as it was (the cluster checks;
//!   a refusal that changed the home fails the case as SILENT);
//! - `benign`: it restored, and what the node then reports (keys, each channel's state, numbers,
//!   balances, TLCs) equals what it reports after restoring the undamaged backup;
//! - `SILENT`: it restored with anything different: the failure a release must never ship.
//!
//! The restore's result depends only on the backup (its store replaces the node's, its keys the
//! node's), so the cases run one after another on the same node without resetting its home.
//!
//! With `bypass_digests`, every copy's manifest is rewritten without content digests and
//! restored with the node's explicit acceptance of that: the proof that the sweep finds what the
//! digests exist to catch (it must then report SILENT cases on SQLite).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use dlp_node_api::{AuditPolicy, Backend};
use serde::Serialize;

use super::{BackupPoint, Interleaving, POINT_BACKUP, Workload, point_scenario};
use crate::capability::DriverKind;
use crate::damage::{self, Damage, DamageRng, How, Target};
use crate::error::HarnessError;
use crate::restore_outcome::{Digests, RestoreOutcome};
use crate::run::{RunFailure, Session};
use crate::scenario::render;
use crate::steps::{self, Scenario, Step, faults::DamageBackup};

/// The backup the workload's node takes at its end: where `swap` takes files from.
pub const SWAP_SOURCE: &str = "end_of_workload";

/// How to sweep.
#[derive(Debug, Clone)]
pub struct DamageConfig {
    pub backends: Vec<Backend>,
    pub driver: DriverKind,
    pub seed: u64,
    /// Places per file for the ways that take an offset (flip, truncate, zero).
    pub places: usize,
    /// Try a seeded sample of this many backup points (all when unset or larger).
    pub points: Option<usize>,
    /// Strip the digests and make the node accept that (the proof that the sweep finds bugs).
    pub bypass_digests: bool,
    /// Points run at the same time.
    pub jobs: usize,
    /// Keep every run directory (those with SILENT or failed cases are always kept).
    pub keep: bool,
    pub runs_root: PathBuf,
}

/// What one damaged backup led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseVerdict {
    Refused,
    Benign,
    Silent,
}

impl std::fmt::Display for CaseVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CaseVerdict::Refused => "refused",
            CaseVerdict::Benign => "benign",
            CaseVerdict::Silent => "SILENT",
        })
    }
}

/// One case: a file of one point's backup, damaged one way at one place.
#[derive(Debug, Clone, Serialize)]
pub struct DamageCase {
    pub point: usize,
    pub point_label: String,
    pub file: String,
    pub how: How,
    /// The offset and length used (drawn from the seed), where the way has them.
    pub offset: Option<u64>,
    pub len: Option<u64>,
    /// What was done: `flipped byte 1234 of data.sqlite (0x3a -> 0xc5)`.
    pub damage: String,
    pub verdict: CaseVerdict,
    /// The refusal's first line, or how the restored node differs.
    pub detail: String,
    /// The index of the point scenario's step after which the point's backup was seen written
    /// (the steps after it are not needed to replay a damage that is not a swap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_by_step: Option<usize>,
}

/// One backend's cases.
#[derive(Debug, Clone, Serialize)]
pub struct BackendDamage {
    pub backend: String,
    pub points_found: usize,
    /// The points tried (a seeded sample when asked), in order.
    pub points_tried: Vec<BackupPoint>,
    pub cases: Vec<DamageCase>,
    /// Points (or cases) that could not be judged: the harness's or the workload's failure.
    pub errors: Vec<String>,
    /// Runs kept for inspection (SILENT or errors).
    pub kept: Vec<PathBuf>,
    /// Draws that changed nothing (zeros over zeros, a file swapped for an identical one, an
    /// empty file): not cases.
    pub unchanged: usize,
    pub elapsed_ms: u64,
}

impl BackendDamage {
    pub fn count(&self, verdict: CaseVerdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }
}

/// The damage sweep's report.
#[derive(Debug, Clone, Serialize)]
pub struct DamageReport {
    pub workload: String,
    pub path: PathBuf,
    pub node: String,
    pub seed: u64,
    pub driver: String,
    pub places: usize,
    pub bypass_digests: bool,
    pub backends: Vec<BackendDamage>,
    pub elapsed_ms: u64,
    /// The interleaving every run pinned (see `interleaving.rs`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub order: Interleaving,
}

impl DamageReport {
    /// `damage <workload> <backend>: <cases> cases, <refused> refused, <benign> benign,
    /// <silent> SILENT`, one per backend (`, <n> errors` when some could not be judged).
    pub fn summary_lines(&self) -> Vec<String> {
        self.backends
            .iter()
            .map(|b| {
                let errors = match b.errors.len() {
                    0 => String::new(),
                    n => format!(", {n} errors"),
                };
                format!(
                    "damage {} {}: {} cases, {} refused, {} benign, {} SILENT{errors}",
                    self.workload,
                    b.backend,
                    b.cases.len(),
                    b.count(CaseVerdict::Refused),
                    b.count(CaseVerdict::Benign),
                    b.count(CaseVerdict::Silent),
                )
            })
            .collect()
    }

    pub fn silent(&self) -> usize {
        self.backends
            .iter()
            .map(|b| b.count(CaseVerdict::Silent))
            .sum()
    }

    /// SILENT anywhere, or a point or case that could not be judged.
    pub fn failed(&self) -> bool {
        self.silent() > 0 || self.backends.iter().any(|b| !b.errors.is_empty())
    }

    pub fn cases(&self) -> usize {
        self.backends.iter().map(|b| b.cases.len()).sum()
    }

    /// A Markdown table per backend: one row per file and way, the verdicts counted.
    pub fn tables(&self) -> String {
        let mut out = String::new();
        for b in &self.backends {
            out.push_str(&format!(
                "\n{} on {} ({} of {} backup points: {}; {} places per file; {} draws changed \
                 nothing and are not cases)\n\n",
                self.workload,
                b.backend,
                b.points_tried.len(),
                b.points_found,
                b.points_tried
                    .iter()
                    .map(|p| format!("#{}", p.index))
                    .collect::<Vec<_>>()
                    .join(" "),
                self.places,
                b.unchanged
            ));
            out.push_str(
                "| file | how | cases | refused | benign | SILENT |\n|---|---|---|---|---|---|\n",
            );
            let mut rows: Vec<(String, How)> = b
                .cases
                .iter()
                .map(|c| (file_kind(&c.file), c.how))
                .collect();
            rows.sort_by(|a, b| (&a.0, a.1.name()).cmp(&(&b.0, b.1.name())));
            rows.dedup();
            for (file, how) in rows {
                let of: Vec<&DamageCase> = b
                    .cases
                    .iter()
                    .filter(|c| file_kind(&c.file) == file && c.how == how)
                    .collect();
                let n = |v| of.iter().filter(|c| c.verdict == v).count();
                out.push_str(&format!(
                    "| `{file}` | {how} | {} | {} | {} | {} |\n",
                    of.len(),
                    n(CaseVerdict::Refused),
                    n(CaseVerdict::Benign),
                    n(CaseVerdict::Silent)
                ));
            }
        }
        out
    }
}

/// A backup's file by kind, for the table: RocksDB's numbered files as `db/*.sst`,
/// `db/MANIFEST-*`, `db/OPTIONS-*`, `db/*.log`.
fn file_kind(file: &str) -> String {
    let Some(name) = file.strip_prefix("db/") else {
        return file.to_string();
    };
    if let Some((_, ext)) = name.rsplit_once('.')
        && name
            .split('.')
            .next()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
    {
        return format!("db/*.{ext}");
    }
    match name.split_once('-') {
        Some((prefix, _)) => format!("db/{prefix}-*"),
        None => file.to_string(),
    }
}

/// What the sweep says as it goes.
#[derive(Debug, Clone)]
pub enum DamageProgress {
    /// The points of a backend were found and sampled.
    Points {
        backend: Backend,
        found: usize,
        tried: Vec<usize>,
    },
    /// One point's cases are done.
    PointDone {
        backend: Backend,
        point: usize,
        label: String,
        cases: Vec<DamageCase>,
        error: Option<String>,
        elapsed_ms: u64,
    },
}

/// Run the damage sweep.
pub async fn damage_sweep(
    workload: &Workload,
    config: &DamageConfig,
    progress: &(dyn Fn(DamageProgress) + Sync),
) -> Result<DamageReport, super::SweepError> {
    let started = Instant::now();
    let root = config.runs_root.join(format!(
        "damage-{}-{}-{}",
        workload.name(),
        std::process::id(),
        super::SWEEP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut backends = Vec::new();
    // As in `sweep`: the first discovery records the interleaving, every later run pins it.
    let mut order = (!workload.order.is_empty()).then(|| workload.order.clone());
    for &backend in &config.backends {
        let backend_started = Instant::now();
        let dir = root.join(format!("discover-{backend}"));
        let found = super::discover(
            workload,
            backend,
            config.driver,
            config.seed,
            &dir,
            order.as_ref(),
        )
        .await
        .map_err(|failure| super::SweepError::Discover {
            path: workload.scenario.path.clone(),
            backend,
            failure,
        })?;
        order.get_or_insert(found.order);
        let found = found.points;
        let _ = std::fs::remove_dir_all(&dir);
        let sample = sample_points(&found, config.points, config.seed);
        progress(DamageProgress::Points {
            backend,
            found: found.len(),
            tried: sample.iter().map(|p| p.index).collect(),
        });
        let mut result = BackendDamage {
            backend: backend.to_string(),
            points_found: found.len(),
            points_tried: sample.clone(),
            cases: Vec::new(),
            errors: Vec::new(),
            kept: Vec::new(),
            unchanged: 0,
            elapsed_ms: 0,
        };
        let semaphore = Arc::new(tokio::sync::Semaphore::new(config.jobs.max(1)));
        let workload_shared = Arc::new(workload.clone().pinned(order.clone().unwrap_or_default()));
        let mut set = tokio::task::JoinSet::new();
        for point in sample {
            let (workload, semaphore, config) =
                (workload_shared.clone(), semaphore.clone(), config.clone());
            let dir = root.join(format!("{backend}-{:03}", point.index));
            set.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let point_started = Instant::now();
                let judged = damage_point(&workload, backend, &point, &config, &dir).await;
                (point, dir, judged, point_started.elapsed())
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (point, dir, judged, took) =
                joined.map_err(|e| super::SweepError::Panicked(e.to_string()))?;
            let (cases, error) = match judged {
                Ok((cases, unchanged)) => {
                    result.unchanged += unchanged;
                    (cases, None)
                }
                Err(e) => (Vec::new(), Some(e)),
            };
            let keep = config.keep
                || error.is_some()
                || cases.iter().any(|c| c.verdict == CaseVerdict::Silent);
            if keep {
                result.kept.push(dir.clone());
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            progress(DamageProgress::PointDone {
                backend,
                point: point.index,
                label: point.label(),
                cases: cases.clone(),
                error: error.clone(),
                elapsed_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            });
            done.push((point.index, cases, error));
        }
        done.sort_by_key(|(index, _, _)| *index);
        for (index, cases, error) in done {
            result.cases.extend(cases);
            if let Some(error) = error {
                result.errors.push(format!("point #{index}: {error}"));
            }
        }
        result.elapsed_ms = u64::try_from(backend_started.elapsed().as_millis()).unwrap_or(0);
        backends.push(result);
    }
    if !config.keep && backends.iter().all(|b| b.kept.is_empty()) {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(DamageReport {
        workload: workload.name().to_string(),
        path: workload.scenario.path.clone(),
        node: workload.node.clone(),
        seed: config.seed,
        driver: config.driver.name().to_string(),
        places: config.places,
        bypass_digests: config.bypass_digests,
        backends,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        order: order.unwrap_or_default(),
    })
}

/// `n` of the points drawn from the seed, in their order (all when `n` is unset or not less).
fn sample_points(points: &[BackupPoint], n: Option<usize>, seed: u64) -> Vec<BackupPoint> {
    let Some(n) = n.filter(|n| *n < points.len()) else {
        return points.to_vec();
    };
    let mut rng = DamageRng::new(seed, "damage sweep points");
    let mut indices: Vec<usize> = (0..points.len()).collect();
    // A seeded partial Fisher-Yates shuffle.
    for i in 0..n {
        let j = i + rng.below((indices.len() - i) as u64) as usize;
        indices.swap(i, j);
    }
    let mut chosen: Vec<usize> = indices[..n].to_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| points[i].clone()).collect()
}

/// The point's scenario: the workload with the node backing itself up at the point, then a
/// backup at its end (the swap source); no restore (the cases do that).
pub fn damage_scenario(workload: &Workload, point: &BackupPoint) -> steps::ScenarioFile {
    let mut file = point_scenario(workload, AuditPolicy::default(), point);
    let first_restore = file
        .steps
        .iter()
        .position(|s| matches!(s.get_ref(), Step::Restore(_)))
        .unwrap_or(file.steps.len());
    file.steps.truncate(first_restore);
    file.steps.push(toml::Spanned::new(
        0..0,
        Step::Backup(steps::backups::Backup::of(&workload.node, SWAP_SOURCE)),
    ));
    file.description = format!(
        "Damage sweep of {} (node {}), backup point {}: {}. Generated by `dlp-harness sweep \
         --damage`.",
        workload.name(),
        workload.node,
        point.index,
        point.label()
    );
    file
}

/// Every case of one point, on one session.
async fn damage_point(
    workload: &Workload,
    backend: Backend,
    point: &BackupPoint,
    config: &DamageConfig,
    dir: &Path,
) -> Result<(Vec<DamageCase>, usize), String> {
    let reproduce = |e: String| {
        format!(
            "{e}\nreproduce the point's run: dlp-harness run {} --backend {backend} --driver {} \
             --seed {}",
            dir.join("point.toml").display(),
            config.driver.name(),
            config.seed
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("point.toml");
    let file = damage_scenario(workload, point);
    let scenario = Scenario::generated(&path, &file, "").map_err(|e| e.to_string())?;
    std::fs::write(&path, scenario.text()).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut session = Session::setup(
        &scenario,
        config.driver,
        backend,
        &dir.join("run"),
        config.seed,
    )
    .await
    .map_err(|failure| reproduce(failure.error.to_string()))?;
    let judged = async {
        // Step by step, to know after which one the point's backup exists (a regression
        // replaying the damage needs no step after it).
        let mut written_by_step = None;
        for index in 0..scenario.file.steps.len() {
            session
                .run_steps(index..index + 1)
                .await
                .map_err(|f| f.to_string())?;
            // Before the step that arms it, the backup has no name yet: not written.
            if written_by_step.is_none()
                && session.backup_written_now(POINT_BACKUP).unwrap_or(false)
            {
                written_by_step = Some(index);
            }
        }
        let (mut cases, unchanged) = run_cases(&mut session, workload, backend, point, config)
            .await
            .map_err(|e| e.to_string())?;
        for case in &mut cases {
            case.written_by_step = written_by_step;
        }
        Ok::<_, String>((cases, unchanged))
    }
    .await;
    if let Err(e) = &judged {
        session.record_failure(&RunFailure::Network {
            during: "judging the damage cases".into(),
            error: HarnessError::Setup(e.clone()),
        });
    }
    session.teardown().await;
    judged.map_err(reproduce)
}

/// The point's cases, and how many draws changed nothing (no case).
async fn run_cases(
    session: &mut Session<'_>,
    workload: &Workload,
    backend: Backend,
    point: &BackupPoint,
    config: &DamageConfig,
) -> Result<(Vec<DamageCase>, usize), HarnessError> {
    let node = workload.node.as_str();
    let digests = if config.bypass_digests {
        Digests::Bypassed
    } else {
        Digests::Required
    };
    let (_, backup_dir) = session.backup_dir(POINT_BACKUP).await?;
    let (_, swap_dir) = session.backup_dir(SWAP_SOURCE).await?;
    let listing =
        |dir: &Path| damage::list_files(dir).map_err(|e| HarnessError::Setup(e.to_string()));
    let (files, swap_files) = (listing(&backup_dir)?, listing(&swap_dir)?);

    // What the undamaged backup restores to.
    session.copy_backup(node, POINT_BACKUP, "undamaged").await?;
    if config.bypass_digests {
        session.strip_digests(node, "undamaged").await?;
    }
    match session.restore_outcome(node, "undamaged", digests).await? {
        RestoreOutcome::Restored => {}
        RestoreOutcome::Refused { reason } => {
            return Err(HarnessError::Expectation(format!(
                "the undamaged backup at point {} was refused: {reason}",
                point.index
            )));
        }
    }
    let reference = session.store_view(node).await?;
    session.drop_backup_copy("undamaged");

    let mut cases = Vec::new();
    let mut unchanged = 0usize;
    let mut n = 0usize;
    for file in &files {
        for how in How::ALL {
            if how == How::Swap && !swap_files.contains(file) {
                continue;
            }
            let places = if how.takes_offset() { config.places } else { 1 };
            for place in 0..places {
                n += 1;
                let copy = format!("case-{n}");
                let label = format!(
                    "damage sweep {backend} point {} {file} {how} place {place}",
                    point.index
                );
                let copy_dir = session.copy_backup(node, POINT_BACKUP, &copy).await?;
                if config.bypass_digests {
                    // Before the damage: the copy's manifest is still whole.
                    session.strip_digests(node, &copy).await?;
                }
                let offset = match how {
                    // Place 0 cuts in half (the default); the others where the seed says.
                    How::Truncate if place > 0 => {
                        let size = std::fs::metadata(copy_dir.join(file))
                            .map(|m| m.len())
                            .unwrap_or(0);
                        Some(DamageRng::new(config.seed, &label).below(size.max(1)))
                    }
                    _ => None,
                };
                let damage = Damage {
                    target: Target::File(file.clone()),
                    how,
                    offset,
                    len: None,
                };
                let with = (how == How::Swap).then_some(SWAP_SOURCE);
                let applied = match session
                    .damage_backup(node, &copy, &damage, with, &label)
                    .await
                {
                    Ok(applied) => applied,
                    // An empty file has no byte to flip or zero: no case.
                    Err(HarnessError::Setup(e)) if is_not_applicable(&e) => {
                        unchanged += 1;
                        session.drop_backup_copy(&copy);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if !applied.changed {
                    // Zeros over zeros, a file swapped for an identical one: no damage, no case.
                    unchanged += 1;
                    session.drop_backup_copy(&copy);
                    continue;
                }
                let (verdict, detail) = match session.restore_outcome(node, &copy, digests).await {
                    Ok(RestoreOutcome::Refused { reason }) => {
                        (CaseVerdict::Refused, first_line(&reason))
                    }
                    Ok(RestoreOutcome::Restored) => {
                        let view = session.store_view(node).await?;
                        let differences = view.differences(&reference);
                        if differences.is_empty() {
                            (CaseVerdict::Benign, String::new())
                        } else {
                            (CaseVerdict::Silent, differences.join("; "))
                        }
                    }
                    // A refusal that changed the home: as bad as a silent restore.
                    Err(HarnessError::Expectation(e)) if e.contains("changed its home") => {
                        (CaseVerdict::Silent, first_line(&e))
                    }
                    Err(e) => return Err(e),
                };
                session.drop_backup_copy(&copy);
                cases.push(DamageCase {
                    point: point.index,
                    point_label: point.label(),
                    file: file.clone(),
                    how,
                    offset: applied.offset,
                    len: applied.len,
                    damage: applied.description,
                    verdict,
                    detail,
                    written_by_step: None,
                });
            }
        }
    }
    Ok((cases, unchanged))
}

fn is_not_applicable(error: &str) -> bool {
    error.contains("is empty: there is no byte")
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// For each SILENT case (one per point, file and way), a scenario replaying it: the point's
/// workload up to the step after which its backup existed (the whole workload for a swap, whose
/// files come from the end-of-workload backup), the same damage written out (file, way, offset),
/// and a restore that must be refused. Returns the files written.
pub fn write_damage_regressions(
    report: &DamageReport,
    workload: &Workload,
    dir: &Path,
) -> Result<Vec<PathBuf>, HarnessError> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    let workload = &workload.clone().pinned(report.order.clone());
    let mut written = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for b in &report.backends {
        for case in b.cases.iter().filter(|c| c.verdict == CaseVerdict::Silent) {
            let key = (case.point, case.file.clone(), case.how);
            if !seen.insert(key) {
                continue;
            }
            let Some(point) = b.points_tried.iter().find(|p| p.index == case.point) else {
                continue;
            };
            let mut file = damage_scenario(workload, point);
            // Shrunk: past the step after which the backup existed, nothing is needed to
            // replay damage to it (a swap needs the end-of-workload backup, so all of it).
            let shrunk = match case.written_by_step {
                Some(last) if case.how != How::Swap && last + 1 < file.steps.len() => {
                    file.steps.truncate(last + 1);
                    true
                }
                _ => false,
            };
            // The damaged file is one of this backend's.
            file.backends = Some(vec![toml::Spanned::new(0..0, b.backend.clone())]);
            let node = workload.node.clone();
            file.description = format!(
                "Found by `dlp-harness sweep --damage {}` (seed {}, {}): {node}'s backup at {} \
                 with {} was restored{}: {}. The node must refuse it.{}",
                workload.scenario.path.display(),
                report.seed,
                b.backend,
                point.label(),
                case.damage,
                if report.bypass_digests {
                    " (digests bypassed)"
                } else {
                    ""
                },
                case.detail,
                if shrunk {
                    " The workload's steps after the one that wrote the backup are left out."
                } else {
                    ""
                }
            );
            let spanned = |s: Step| toml::Spanned::new(0..0, s);
            file.steps.push(spanned(Step::DamageBackup(DamageBackup {
                node: node.clone(),
                backup: POINT_BACKUP.into(),
                file: Some(case.file.clone()),
                store: false,
                how: case.how,
                offset: case.offset,
                len: case.len,
                with: (case.how == How::Swap).then(|| SWAP_SOURCE.to_string()),
            })));
            file.steps
                .push(spanned(Step::Restore(steps::backups::Restore {
                    node,
                    backup: POINT_BACKUP.into(),
                    expect: steps::backups::RestoreExpect::Refused,
                    reason_contains: None,
                    accept_undigested: false,
                })));
            let name = format!(
                "damage_{}_{}_point{}_{}_{}.toml",
                workload.name(),
                b.backend,
                case.point,
                case.how,
                case.file.replace(['/', '.', '-'], "_")
            );
            let path = dir.join(name);
            let text = render(&file, "");
            // Never write a file that does not load.
            Scenario::parse(&path, &text)?;
            std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn report(how: How, written_by_step: Option<usize>) -> (DamageReport, Workload) {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/sweeps/two_node_direct.toml");
        let workload = Workload::load(&path).expect("workload");
        let point = BackupPoint {
            index: 3,
            step: "received:RevokeAndAck".into(),
            channel: "ab".into(),
            nth: 1,
            numbers: BTreeMap::new(),
        };
        let case = DamageCase {
            point: 3,
            point_label: point.label(),
            file: "data.sqlite".into(),
            how,
            offset: how.takes_offset().then_some(1234),
            len: None,
            damage: "flipped byte 1234 of data.sqlite (0x00 -> 0x01)".into(),
            verdict: CaseVerdict::Silent,
            detail: "balance differs".into(),
            written_by_step,
        };
        let report = DamageReport {
            workload: "two_node_direct".into(),
            path,
            node: "bob".into(),
            seed: 1,
            driver: "in-process".into(),
            places: 1,
            bypass_digests: true,
            order: Interleaving::new(),
            backends: vec![BackendDamage {
                backend: "sqlite".into(),
                points_found: 16,
                points_tried: vec![point],
                cases: vec![case],
                errors: Vec::new(),
                kept: Vec::new(),
                unchanged: 0,
                elapsed_ms: 0,
            }],
            elapsed_ms: 0,
        };
        (report, workload)
    }

    fn written(how: How, written_by_step: Option<usize>) -> Scenario {
        let (report, workload) = report(how, written_by_step);
        let dir = tempfile::tempdir().expect("tempdir");
        let files = write_damage_regressions(&report, &workload, dir.path()).expect("written");
        assert_eq!(files.len(), 1);
        Scenario::load(&files[0]).expect("the regression loads")
    }

    #[test]
    fn a_regression_replays_the_damage_on_its_backend_with_the_steps_it_needs() {
        let full = damage_scenario(
            &report(How::Flip, None).1,
            &report(How::Flip, None).0.backends[0].points_tried[0],
        );
        let shrunk = written(How::Flip, Some(2));
        // Steps 0..=2 of the point's scenario, then the damage and the refused restore.
        assert_eq!(shrunk.file.steps.len(), 3 + 2);
        assert!(full.steps.len() > 5);
        let steps: Vec<&Step> = shrunk.file.steps.iter().map(|s| s.get_ref()).collect();
        assert!(matches!(
            steps[3],
            Step::DamageBackup(DamageBackup {
                how: How::Flip,
                offset: Some(1234),
                ..
            })
        ));
        assert!(matches!(
            steps[4],
            Step::Restore(steps::backups::Restore {
                expect: steps::backups::RestoreExpect::Refused,
                ..
            })
        ));
        assert_eq!(shrunk.backends(), vec![Backend::Sqlite]);
        // A swap takes its files from the end-of-workload backup: nothing is left out.
        let swap = written(How::Swap, Some(2));
        assert_eq!(swap.file.steps.len(), full.steps.len() + 2);
    }
}
