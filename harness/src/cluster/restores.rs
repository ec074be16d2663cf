//! Restores and the faults in them: damage to a named backup, a restore the node may refuse (it
//! must then leave the home byte for byte as it was, and the node starts again on its old
//! store), and a restore killed at a syscall, after which the next start must find the old store
//! or the complete restored one, never an empty or mixed one.
//!
//! Which store a node runs on is judged by what it reports ([`StoreView`]): the view before the
//! killed restore is the old store's; the new store's is that of a reference node, started on a
//! copy of the home after an uninterrupted restore of the same backup (isolated: nobody dials
//! it, and a Stale channel stays silent).

use std::path::{Path, PathBuf};

use super::Network;
use super::store_view::{HomeSnapshot, StoreView};
use crate::client::NodeClient;
use crate::damage::{self, Applied, Damage, DamageRng};
use crate::driver::NodeSpec;
use crate::error::HarnessError;
use crate::restore_outcome::{Digests, KillPoint, KilledRestore, RestoreOutcome, StartedOn};

/// What a killed restore left to judge at the node's next start.
#[derive(Debug, Clone)]
pub(super) struct PendingStoreCheck {
    backup: String,
    at: KillPoint,
    outcome: KilledRestore,
    old: StoreView,
    new: StoreView,
}

impl Network {
    /// What `node` reports of its store now (it must be running).
    pub async fn store_view(&self, node: &str) -> Result<StoreView, HarnessError> {
        let client = self.client(node)?;
        let info = client.node_info().await?;
        let channels = client.list_channels().await?;
        Ok(StoreView::new(&info, &channels))
    }

    /// Damage the named backup of `node` in place (`with`: the backup a swap takes files from);
    /// what was done, in one line.
    /// What is random is drawn from the run's seed and `label` (unset: the step's ordinal in
    /// the run).
    pub async fn damage_backup(
        &mut self,
        node: &str,
        backup: &str,
        damage: &Damage,
        with: Option<&str>,
        label: Option<&str>,
    ) -> Result<Applied, HarnessError> {
        let dir = self.owned_backup(node, backup).await?;
        self.reference_views.retain(|(_, named), _| named != backup);
        let with_dir = match with {
            Some(with) => Some(self.owned_backup(node, with).await?),
            None => None,
        };
        self.damages += 1;
        let label = match label {
            Some(label) => label.to_string(),
            None => format!("damage_backup #{} {node} {backup}", self.damages),
        };
        let mut rng = DamageRng::new(self.seed, &label);
        let applied = damage::apply(&dir, self.backend, damage, with_dir.as_deref(), &mut rng)
            .map_err(|e| HarnessError::Setup(format!("damage_backup {backup:?}: {e}")))?;
        self.note_step(format!(
            "damaged backup {backup:?} of {node}: {}",
            applied.description
        ));
        Ok(applied)
    }

    /// Copy a named backup of `node` (the files as they are now) into the run directory, named
    /// `copy`: damage to the copy leaves the original as it was.
    pub async fn copy_backup(
        &mut self,
        node: &str,
        backup: &str,
        copy: &str,
    ) -> Result<PathBuf, HarnessError> {
        let from = self.owned_backup(node, backup).await?;
        let to = self.run_dir.join("backup-copies").join(copy);
        let _ = std::fs::remove_dir_all(&to);
        copy_tree(&from, &to)?;
        self.backups
            .taken
            .insert(copy.to_string(), (node.to_string(), to.clone()));
        Ok(to)
    }

    /// Take a backup made elsewhere (a corpus backup an earlier build wrote) as `node`'s backup
    /// named `name`: it is copied into the run directory, so a restore of it changes nothing
    /// outside the run.
    pub fn adopt_backup(
        &mut self,
        node: &str,
        name: &str,
        from: &Path,
    ) -> Result<PathBuf, HarnessError> {
        self.entry(node)?;
        let to = self.run_dir.join("adopted-backups").join(name);
        let _ = std::fs::remove_dir_all(&to);
        copy_tree(from, &to)?;
        self.backups
            .taken
            .insert(name.to_string(), (node.to_string(), to.clone()));
        Ok(to)
    }

    /// Forget a copy made by [`copy_backup`](Self::copy_backup) and remove its files.
    pub fn drop_backup_copy(&mut self, copy: &str) {
        if let Some((_, dir)) = self.backups.taken.remove(copy) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Rewrite a named backup's manifest without content digests (the node flavour's format
    /// before digests), for a restore with [`Digests::Bypassed`].
    pub async fn strip_digests(&mut self, node: &str, backup: &str) -> Result<(), HarnessError> {
        let dir = self.owned_backup(node, backup).await?;
        crate::driver::dlp_node::strip_digests(&dir)
    }

    /// The directory of a backup that must be `node`'s.
    async fn owned_backup(&mut self, node: &str, backup: &str) -> Result<PathBuf, HarnessError> {
        let (owner, dir) = self.backup_dir(backup).await?;
        if owner != node {
            return Err(HarnessError::Setup(format!(
                "backup {backup:?} belongs to {owner}, not {node}"
            )));
        }
        Ok(dir)
    }

    /// Restore a node from a named backup: stop it if running, restore offline, start it again.
    /// A refusal is the node's answer (`Ok(Refused)`), after which the harness checks that the
    /// home is byte for byte as it was and starts the node again on its old store.
    pub async fn restore(
        &mut self,
        node: &str,
        backup_name: &str,
    ) -> Result<RestoreOutcome, HarnessError> {
        self.restore_with(node, backup_name, Digests::Required)
            .await
    }

    /// [`restore`](Self::restore), with the digest check bypassed when asked (the damage
    /// sweep's proof).
    pub async fn restore_with(
        &mut self,
        node: &str,
        backup_name: &str,
        digests: Digests,
    ) -> Result<RestoreOutcome, HarnessError> {
        let dir = self.owned_backup(node, backup_name).await?;
        if self.is_running(node) {
            self.stop(node).await?;
        }
        // A whole restore supersedes a killed one (it completes a decided intent first): the
        // start after it is not the killed restore's to judge.
        if let Some(check) = self.entry_mut(node)?.store_check.take() {
            self.note_step(format!(
                "the restore of {node} killed at {} is superseded by this restore",
                check.at
            ));
        }
        let spec = self.entry(node)?.spec.clone();
        let before = HomeSnapshot::take(&spec.home)?;
        let outcome = self.driver.restore(&spec, &dir, digests).await?;
        if let RestoreOutcome::Refused { reason } = &outcome {
            let changes = HomeSnapshot::take(&spec.home)?.changes_since(&before);
            if !changes.is_empty() {
                return Err(HarnessError::Expectation(format!(
                    "{node} refused backup {backup_name:?} but changed its home: {}\nits reason: {reason}",
                    changes.join(", ")
                )));
            }
            self.note_step(format!(
                "{node} refused backup {backup_name:?}, its home unchanged: {}",
                first_line(reason)
            ));
        }
        self.start(node).await?;
        Ok(outcome)
    }

    /// Kill a restore of `node` from the named backup at `at` (the node is stopped first if it
    /// runs, and left stopped). Its next start is judged: it must run on the old store or the
    /// complete restored one.
    pub async fn crash_restore(
        &mut self,
        node: &str,
        backup_name: &str,
        at: &KillPoint,
    ) -> Result<KilledRestore, HarnessError> {
        let dir = self.owned_backup(node, backup_name).await?;
        if let Some(check) = &self.entry(node)?.store_check {
            return Err(HarnessError::Setup(format!(
                "crash_restore: {node}'s restore killed at {} is judged when it starts: start it \
                 (or restore it) before killing another",
                check.at
            )));
        }
        if self.is_running(node) {
            // `stop` keeps what the store held.
            self.stop(node).await?;
        }
        let old = self.entry(node)?.last_view.clone().ok_or_else(|| {
            HarnessError::Setup(format!(
                "crash_restore: {node} was not stopped cleanly, so what its store held before \
                 is unknown: let crash_restore stop it, or stop it with a stop step"
            ))
        })?;
        let spec = self.entry(node)?.spec.clone();
        // The restored store depends only on the backup and the home it lands in: the same
        // backup over the same old store gives the same view.
        let key = (node.to_string(), backup_name.to_string());
        let new = match self.reference_views.get(&key) {
            Some((before, new)) if *before == old => new.clone(),
            _ => {
                let new = self.reference_view(&spec, &dir).await?;
                self.reference_views.insert(key, (old.clone(), new.clone()));
                new
            }
        };
        let outcome = self.driver.crash_restore(&spec, &dir, at).await?;
        let said = match &outcome {
            KilledRestore::Killed => {
                format!("restore of {node} from {backup_name:?} killed at {at}")
            }
            KilledRestore::Finished => format!(
                "restore of {node} from {backup_name:?} finished before {at} (it made fewer \
                 such calls): not killed"
            ),
            KilledRestore::Refused { reason } => format!(
                "restore of {node} from {backup_name:?} refused before {at}: {}",
                first_line(reason)
            ),
        };
        self.note_step(said);
        self.entry_mut(node)?.store_check = Some(PendingStoreCheck {
            backup: backup_name.to_string(),
            at: at.clone(),
            outcome: outcome.clone(),
            old,
            new,
        });
        Ok(outcome)
    }

    /// The view of the store an uninterrupted restore of `backup` gives `spec`'s node: restored
    /// on a copy of its (stopped) home, started there alone, asked, stopped, removed.
    async fn reference_view(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
    ) -> Result<StoreView, HarnessError> {
        // A name no scenario node can have (names are letters, digits, `_` and `-`).
        let name = format!("{}.reference", spec.name);
        let home = self.run_dir.join(&name);
        let _ = std::fs::remove_dir_all(&home);
        copy_tree(&spec.home, &home)?;
        let reference = NodeSpec {
            name: name.clone(),
            home: home.clone(),
            ..spec.clone()
        };
        let viewed = async {
            match self
                .driver
                .restore(&reference, backup, Digests::Required)
                .await?
            {
                RestoreOutcome::Restored => {}
                RestoreOutcome::Refused { reason } => {
                    return Err(HarnessError::node(
                        &spec.name,
                        format!(
                            "the reference restore (uninterrupted) refused the backup: {reason}"
                        ),
                    ));
                }
            }
            let handle = self.driver.start_node(&reference).await?;
            let client = NodeClient::new(&name, handle.rpc_addr());
            let view = async {
                let info = client.node_info().await?;
                let channels = client.list_channels().await?;
                Ok::<_, HarnessError>(StoreView::new(&info, &channels))
            }
            .await;
            handle.stop().await?;
            view
        }
        .await;
        let _ = std::fs::remove_dir_all(&home);
        viewed
    }

    /// After a start: if a killed restore left a check for `node`, judge which store it started
    /// on (a mixed or empty one fails the run).
    pub(super) async fn judge_store_after_killed_restore(
        &mut self,
        node: &str,
    ) -> Result<Option<StartedOn>, HarnessError> {
        let Some(check) = self.entry_mut(node)?.store_check.take() else {
            return Ok(None);
        };
        let view = self.store_view(node).await?;
        let restored = check.outcome == KilledRestore::Finished;
        let (on, said) = if view == check.old && !restored {
            (
                StartedOn::OldStore,
                "on its old store (the killed restore had not been decided)",
            )
        } else if view == check.new {
            (StartedOn::RestoredStore, "on the complete restored store")
        } else {
            let against = if restored { &check.new } else { &check.old };
            return Err(HarnessError::Expectation(format!(
                "{node} started on neither its old store nor the complete restore of {:?} after \
                 the restore was {} at {}: it reports {view}\n  differences from the {}: {}\n  \
                 old store: {}\n  restored store: {}",
                check.backup,
                match check.outcome {
                    KilledRestore::Killed => "killed",
                    KilledRestore::Finished => "finished",
                    KilledRestore::Refused { .. } => "refused",
                },
                check.at,
                if restored {
                    "restored store"
                } else {
                    "old store"
                },
                view.differences(against).join("; "),
                check.old,
                check.new,
            )));
        };
        self.note_step(format!("{node} started {said}"));
        Ok(Some(on))
    }
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// Copy a directory tree (a stopped node's home, a backup), leaving out a node's log.
fn copy_tree(from: &Path, to: &Path) -> Result<(), HarnessError> {
    std::fs::create_dir_all(to).map_err(|e| HarnessError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| HarnessError::io(from, e))? {
        let entry = entry.map_err(|e| HarnessError::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| HarnessError::io(&src, e))?;
        if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else if kind.is_file() && entry.file_name() != "node.log" {
            std::fs::copy(&src, &dst).map_err(|e| HarnessError::io(&src, e))?;
        }
    }
    Ok(())
}
