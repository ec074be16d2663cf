//! Backups by the scenario's names: taken now (the `backup` RPC), or by the node itself right
//! after a protocol step (`backup_at`, step control's backup action: the store is exactly that
//! step's state) or on its own schedule (automatic backups), looked up when first needed,
//! listed, and restored offline by the driver. Backup directories are host paths (the event
//! log maps what a node reports).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use dlp_node_api::{EventKind, NodeEvent, StepAction, StepSpec};

use super::{Idle, Network};
use crate::error::HarnessError;
use crate::limits::MAX_LISTED;

/// Named backups, and those armed with `backup_at` but not yet looked up.
#[derive(Debug, Default)]
pub(super) struct Backups {
    /// name -> (node, directory on the host).
    pub(super) taken: BTreeMap<String, (String, PathBuf)>,
    pending: BTreeMap<String, PendingBackup>,
    /// node -> (run, event seq) of the newest automatic backup named (`wait_auto_backup`).
    automatic: BTreeMap<String, (u32, u64)>,
}

/// A backup a node takes by itself at a protocol step: its `BackupWritten` event (naming the
/// step) follows `armed_at` in run `run` of `node`.
#[derive(Debug, Clone)]
struct PendingBackup {
    node: String,
    run: u32,
    armed_at: u64,
    step: String,
}

impl Network {
    /// Every backup named so far: `(name, node, directory on the host)`.
    pub fn named_backups(&self) -> Vec<(String, String, PathBuf)> {
        self.backups
            .taken
            .iter()
            .map(|(name, (node, dir))| (name.clone(), node.clone(), dir.clone()))
            .collect()
    }

    /// Take a backup through the `backup` RPC; remembers it as `backup_name`.
    pub async fn backup(&mut self, node: &str, backup_name: &str) -> Result<PathBuf, HarnessError> {
        let after = self.last_seq(node)?;
        self.client(node)?.backup().await?;
        let event = self
            .wait_event(node, after, "BackupWritten", |k| {
                // Not one the node took by itself meanwhile (`auto_backup`).
                matches!(
                    k,
                    EventKind::BackupWritten {
                        step: None,
                        automatic: false,
                        ..
                    }
                )
            })
            .await?;
        self.remember_backup(node, backup_name, event)
    }

    /// Ask for a backup that is expected to fail (a full disk): the node's error message, or
    /// an `Expectation` error when the backup was written after all.
    pub async fn backup_failing(&mut self, node: &str) -> Result<String, HarnessError> {
        match self.client(node)?.try_backup().await? {
            Err(reason) => {
                self.note_step(format!("{node}'s backup failed: {reason}"));
                Ok(reason)
            }
            Ok(()) => Err(HarnessError::Expectation(format!(
                "{node} wrote the backup, which the scenario expects to fail"
            ))),
        }
    }

    /// Remember the backup a `BackupWritten` event of `node` names as `backup_name`.
    fn remember_backup(
        &mut self,
        node: &str,
        backup_name: &str,
        event: NodeEvent,
    ) -> Result<PathBuf, HarnessError> {
        let EventKind::BackupWritten { dir, .. } = event.kind else {
            return Err(HarnessError::node(
                node,
                "a backup event without a directory",
            ));
        };
        let dir = PathBuf::from(dir);
        self.backups
            .taken
            .insert(backup_name.to_string(), (node.to_string(), dir.clone()));
        Ok(dir)
    }

    /// Arm a backup `node` takes by itself right after a protocol step (the store is exactly
    /// that step's state); remembered as `backup_name`, looked up when first needed.
    pub async fn backup_at(
        &mut self,
        node: &str,
        spec: StepSpec,
        backup_name: &str,
    ) -> Result<(), HarnessError> {
        self.poll(node, std::time::Duration::ZERO).await?;
        let pending = PendingBackup {
            node: node.to_string(),
            run: self.entry(node)?.run,
            armed_at: self.last_seq(node)?,
            step: spec.step.clone(),
        };
        self.client(node)?
            .arm_step(&StepSpec {
                action: StepAction::Backup,
                ..spec
            })
            .await?;
        self.backups
            .pending
            .insert(backup_name.to_string(), pending);
        Ok(())
    }

    /// Whether a named backup has been written by now (an RPC backup always; a `backup_at`
    /// one once its node reached the step), without waiting.
    pub fn backup_written_now(&self, backup_name: &str) -> Result<bool, HarnessError> {
        if self.backups.taken.contains_key(backup_name) {
            return Ok(true);
        }
        let Some(pending) = self.backups.pending.get(backup_name) else {
            return Err(HarnessError::Setup(format!(
                "no backup named {backup_name:?}"
            )));
        };
        let step = pending.step.clone();
        let ours = move |k: &EventKind| matches!(k, EventKind::BackupWritten { step: Some(s), .. } if *s == step);
        Ok(self
            .backup_written(&pending.node, pending.run, pending.armed_at, &ours)?
            .is_some())
    }

    /// The node and directory of a named backup, waiting for a `backup_at` one to be written
    /// if its node is still in the run that armed it.
    pub async fn backup_dir(
        &mut self,
        backup_name: &str,
    ) -> Result<(String, PathBuf), HarnessError> {
        if let Some(found) = self.backups.taken.get(backup_name) {
            return Ok(found.clone());
        }
        let pending = self
            .backups
            .pending
            .get(backup_name)
            .cloned()
            .ok_or_else(|| HarnessError::Setup(format!("no backup named {backup_name:?}")))?;
        // Ours names our step (an RPC backup in between has none).
        let step = pending.step.clone();
        let ours = move |k: &EventKind| matches!(k, EventKind::BackupWritten { step: Some(s), .. } if *s == step);
        let written = self.backup_written(&pending.node, pending.run, pending.armed_at, &ours)?;
        let dir = match written {
            Some(dir) => dir,
            None if self.entry(&pending.node)?.run == pending.run
                && self.is_running(&pending.node) =>
            {
                let event = self
                    .wait_event(
                        &pending.node,
                        pending.armed_at,
                        &format!("backup {backup_name:?} at its step"),
                        &ours,
                    )
                    .await?;
                let EventKind::BackupWritten { dir, .. } = event.kind else {
                    return Err(HarnessError::node(
                        &pending.node,
                        "a backup event without a directory",
                    ));
                };
                PathBuf::from(dir)
            }
            None => {
                return Err(HarnessError::Expectation(format!(
                    "backup {backup_name:?} was never written: {} did not reach its step before it stopped",
                    pending.node
                )));
            }
        };
        self.backups.pending.remove(backup_name);
        let found = (pending.node, dir);
        self.backups
            .taken
            .insert(backup_name.to_string(), found.clone());
        Ok(found)
    }

    /// Wait until `node` has written an automatic backup (taken on its own schedule, not by
    /// RPC or step control) in its current run, newer than the last one named here; remember
    /// it as `backup_name`. One already written counts. `within`: it must be there that soon
    /// (an expectation, not the deadline), else up to the deadline.
    pub async fn wait_auto_backup(
        &mut self,
        node: &str,
        backup_name: &str,
        within: Option<Duration>,
    ) -> Result<PathBuf, HarnessError> {
        let run = self.entry(node)?.run;
        let after = match self.backups.automatic.get(node) {
            Some(&(named_run, seq)) if named_run == run => seq,
            _ => 0,
        };
        let automatic = |k: &EventKind| {
            matches!(
                k,
                EventKind::BackupWritten {
                    automatic: true,
                    ..
                }
            )
        };
        let since = if after == 0 {
            "in its current run".to_string()
        } else {
            format!("after event #{after} of its current run (the last one named)")
        };
        let what = format!("an automatic backup {since}");
        let event = match within {
            None => self.wait_event(node, after, &what, automatic).await?,
            Some(within) => {
                let wait = self.wait_within(format!("{node}: {what}"), within);
                loop {
                    let found = self
                        .events(node)?
                        .iter()
                        .find(|e| e.seq > after && automatic(&e.kind))
                        .cloned();
                    if let Some(event) = found {
                        break event;
                    }
                    if !self
                        .idle_within(&wait, Idle::NodeEvents(node.to_string()))
                        .await?
                    {
                        return Err(HarnessError::Expectation(format!(
                            "{node} wrote no automatic backup {since} within {} ms",
                            within.as_millis()
                        )));
                    }
                }
            }
        };
        self.backups
            .automatic
            .insert(node.to_string(), (run, event.seq));
        self.remember_backup(node, backup_name, event)
    }

    /// What a named backup's directory holds: its owner, the directory, and every entry under
    /// it as a path relative to it (`sk`, `db/`, `db/CURRENT`: directories end in `/`), sorted;
    /// at most [`MAX_LISTED`](crate::limits::MAX_LISTED) entries.
    pub async fn backup_listing(
        &mut self,
        backup_name: &str,
    ) -> Result<(String, PathBuf, Vec<String>), HarnessError> {
        let (owner, dir) = self.backup_dir(backup_name).await?;
        let mut entries = Vec::new();
        let mut todo = vec![dir.clone()];
        while let Some(at) = todo.pop() {
            let read = std::fs::read_dir(&at).map_err(|e| HarnessError::io(&at, e))?;
            for entry in read {
                let entry = entry.map_err(|e| HarnessError::io(&at, e))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| HarnessError::io(&path, e))?;
                let relative = path
                    .strip_prefix(&dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                if kind.is_dir() {
                    entries.push(format!("{relative}/"));
                    todo.push(path);
                } else {
                    entries.push(relative);
                }
                if entries.len() >= MAX_LISTED {
                    todo.clear();
                    break;
                }
            }
        }
        entries.sort();
        Ok((owner, dir, entries))
    }
}
