//! Restores killed at every call of a syscall: for each syscall (`rename`, `fsync`, ...) and
//! n = 1, 2, ... the node's restore of an older backup is killed at the n-th call
//! (`crash_restore`), the node started, and the store it came up on judged (the old one or the
//! complete restored one; anything else fails), until a restore makes fewer than n such calls
//! and finishes. The counts say how many kill points each syscall had and where they left the
//! node, on whatever driver can kill a restore (process, container).
//!
//! The workload runs once after a backup of its node taken at the start (`KILL_BACKUP`), so the
//! old store and the restored one differ; whenever a kill point leaves the node on the restored
//! store, a whole restore of a backup of the end state (`KILL_RESET`) puts a different old
//! store back before the next point.

use std::time::Instant;

use dlp_node_api::Backend;
use serde::Serialize;

use super::Workload;
use crate::capability::DriverKind;
use crate::error::HarnessError;
use crate::restore_outcome::{Digests, KillPoint, KilledRestore, RestoreOutcome, StartedOn};
use crate::run::{RunFailure, Session};
use crate::steps::{self, Scenario, Step};

/// The backup every killed restore restores: taken before the workload.
pub const KILL_BACKUP: &str = "before_workload";
/// The backup of the end state, restored whole to reset the old store.
pub const KILL_RESET: &str = "after_workload";
/// Kill points tried per syscall at most: a restore makes a few dozen calls of any one.
pub const MAX_KILL_POINTS: u32 = 400;

/// The syscalls a restore renames and syncs through (each counted by strace on its own).
pub const RENAME_AND_SYNC: [&str; 5] = ["rename", "renameat", "renameat2", "fsync", "fdatasync"];

/// One syscall's kill points on one backend.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KillCount {
    pub syscall: String,
    /// Kill points (calls the restore made of this syscall).
    pub killed: u32,
    /// After a kill, the node started on its old store / on the complete restored one (the
    /// start finished a decided restore).
    pub old_store: u32,
    pub restored_store: u32,
}

/// One backend's counts.
#[derive(Debug, Clone, Serialize)]
pub struct KillBackend {
    pub backend: String,
    pub counts: Vec<KillCount>,
    pub elapsed_ms: u64,
}

/// Kill every rename and sync of a restore of `workload`'s node on `backend` with `driver`.
/// A start on an empty or mixed store, or any failure, is an error naming the kill point.
pub async fn kill_every_call(
    workload: &Workload,
    backend: Backend,
    driver: DriverKind,
    seed: u64,
    syscalls: &[&str],
    dir: &std::path::Path,
) -> Result<KillBackend, String> {
    let started = Instant::now();
    let mut file = workload.scenario.file.clone();
    file.sweep = None;
    let node = workload.node.clone();
    let spanned = |s: Step| toml::Spanned::new(0..0, s);
    let mut steps = vec![spanned(Step::Backup(steps::backups::Backup::of(
        &node,
        KILL_BACKUP,
    )))];
    steps.append(&mut file.steps);
    steps.push(spanned(Step::WaitQuiescent(
        steps::network::WaitQuiescent {},
    )));
    steps.push(spanned(Step::Backup(steps::backups::Backup::of(
        &node, KILL_RESET,
    ))));
    file.steps = steps;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("killed.toml");
    let scenario = Scenario::generated(&path, &file, "").map_err(|e| e.to_string())?;
    std::fs::write(&path, scenario.text()).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut session = Session::setup(&scenario, driver, backend, &dir.join("run"), seed)
        .await
        .map_err(|f| f.error.to_string())?;
    let result = async {
        session
            .run_steps(0..scenario.file.steps.len())
            .await
            .map_err(|f| f.to_string())?;
        let mut counts = Vec::new();
        for syscall in syscalls {
            counts.push(
                kill_one_syscall(&mut session, &node, syscall)
                    .await
                    .map_err(|e| format!("{syscall}: {e}"))?,
            );
        }
        Ok::<_, String>(counts)
    }
    .await;
    if let Err(e) = &result {
        session.record_failure(&RunFailure::Network {
            during: "killing restores".into(),
            error: HarnessError::Expectation(e.clone()),
        });
    }
    session.teardown().await;
    result.map(|counts| KillBackend {
        backend: backend.to_string(),
        counts,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

async fn kill_one_syscall(
    session: &mut Session<'_>,
    node: &str,
    syscall: &str,
) -> Result<KillCount, HarnessError> {
    let mut count = KillCount {
        syscall: syscall.to_string(),
        ..KillCount::default()
    };
    for nth in 1..=MAX_KILL_POINTS {
        let at = KillPoint {
            syscall: syscall.to_string(),
            nth,
        };
        let outcome = session.kill_restore(node, KILL_BACKUP, &at).await?;
        let on = session.start_node(node).await?;
        match (&outcome, on) {
            (KilledRestore::Killed, Some(StartedOn::OldStore)) => {
                count.killed += 1;
                count.old_store += 1;
                continue;
            }
            (KilledRestore::Killed, Some(StartedOn::RestoredStore)) => {
                count.killed += 1;
                count.restored_store += 1;
            }
            (KilledRestore::Finished, Some(StartedOn::RestoredStore)) => {}
            (outcome, on) => {
                return Err(HarnessError::Expectation(format!(
                    "at {at}: the restore {outcome:?}, then the node started on {on:?}"
                )));
            }
        }
        // On the restored store: a whole restore of the end state gives the next kill point an
        // old store that differs from the restored one.
        match session
            .restore_outcome(node, KILL_RESET, Digests::Required)
            .await?
        {
            RestoreOutcome::Restored => {}
            RestoreOutcome::Refused { reason } => {
                return Err(HarnessError::Expectation(format!(
                    "the reset restore was refused: {reason}"
                )));
            }
        }
        if outcome == KilledRestore::Finished {
            return Ok(count);
        }
    }
    Err(HarnessError::Expectation(format!(
        "more than {MAX_KILL_POINTS} {syscall} calls in one restore"
    )))
}
