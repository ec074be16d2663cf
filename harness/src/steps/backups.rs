//! Backups and restores: `backup` (asked for now), `backup_at` (taken by the node itself right
//! after a protocol step), `wait_auto_backup` (one the node took on its own schedule),
//! `restore`, and `expect_backup_files` (what a backup directory holds).

use std::time::Duration;

use dlp_node_api::{Backend, ROCKSDB_BACKUP_DIR_NAME, SQLITE_FILE_NAME, StepAction, StepSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb, one};
use crate::capability::Capability::{StepControl, TypedEvents};
use crate::error::HarnessError;
use crate::limits::{DEADLINE, MAX_BACKUP_FILES, MAX_BACKUP_PATH, MAX_REASON_BYTES};
use crate::restore_outcome::{Digests, RestoreOutcome};
use crate::scenario::{Check, Facts, Lifecycle, VerbFacts, clip, protocol_step};

/// Hot backup of `node`, remembered as `name`. With `expect = "failed"` the node must refuse to
/// write it (a full disk: its message containing `reason_contains`, if given); nothing is
/// remembered then.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub node: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "BackupExpect::is_default")]
    pub expect: BackupExpect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_contains: Option<String>,
}

impl Backup {
    /// A backup of `node` named `name`, expected to be written.
    pub fn of(node: &str, name: &str) -> Self {
        Self {
            node: node.to_string(),
            name: name.to_string(),
            expect: BackupExpect::Written,
            reason_contains: None,
        }
    }
}

/// What a backup must end in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackupExpect {
    /// Written (the default).
    #[default]
    Written,
    /// Refused by the node (the RPC answers with an error).
    Failed,
}

impl BackupExpect {
    fn is_default(&self) -> bool {
        *self == BackupExpect::Written
    }
}

impl VerbFacts for Backup {
    fn facts(&self) -> Facts<'_> {
        // It waits for the node's `BackupWritten`.
        Facts::new([self.node.as_str()], &[TypedEvents]).answering([self.node.as_str()])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        check_reason(
            "backup",
            self.reason_contains.as_deref(),
            self.expect == BackupExpect::Failed,
            "failed",
        )?;
        match self.expect {
            BackupExpect::Written => cx.name_backup(&self.name, &self.node),
            // Nothing is written: no later step may use the name.
            BackupExpect::Failed => Ok(()),
        }
    }
}

impl Verb for Backup {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        match self.expect {
            BackupExpect::Written => cx.net.backup(&self.node, &self.name).await.map(|_| ()),
            BackupExpect::Failed => {
                let reason = cx.net.backup_failing(&self.node).await?;
                match &self.reason_contains {
                    Some(want) if !reason.contains(want.as_str()) => {
                        Err(HarnessError::Expectation(format!(
                            "{}'s backup failed, but its reason does not contain {want:?}: {reason}",
                            self.node
                        )))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

/// `reason_contains` of `verb`: only with the refusal (`refusal`: whether `expect` asks for
/// it, whose value is `refusal_name`), 1 to [`MAX_REASON_BYTES`] bytes of text.
fn check_reason(
    verb: &str,
    reason: Option<&str>,
    refusal: bool,
    refusal_name: &str,
) -> Result<(), String> {
    let Some(reason) = reason else {
        return Ok(());
    };
    if !refusal {
        return Err(format!(
            "{verb}: reason_contains says what a refusal must say: it needs expect = \"{refusal_name}\""
        ));
    }
    if reason.trim().is_empty() || reason.len() > MAX_REASON_BYTES {
        return Err(format!(
            "{verb}: reason_contains must be 1 to {MAX_REASON_BYTES} bytes of text"
        ));
    }
    Ok(())
}

/// Arm a backup of `node` taken by the node itself right after a protocol step
/// (`sent:X` / `received:X`, optionally on `channel`, the `nth` time), remembered as `name`;
/// the node does not stop there. A later `restore` waits until it is written.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupAt {
    pub node: String,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default = "one")]
    pub nth: u64,
    pub name: String,
}

impl VerbFacts for BackupAt {
    fn facts(&self) -> Facts<'_> {
        // Step control's backup action, marked on the node's events.
        Facts::new([self.node.as_str()], &[StepControl, TypedEvents])
            .channel(self.channel.as_deref())
            .answering([self.node.as_str()])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        cx.name_backup(&self.name, &self.node)?;
        protocol_step::check("backup_at", &self.step, self.nth)
    }
}

impl Verb for BackupAt {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let channel_id = self
            .channel
            .as_ref()
            .map(|c| cx.net.channel(c).map(|c| c.id))
            .transpose()?;
        let spec = StepSpec {
            step: self.step.clone(),
            channel_id,
            nth: self.nth,
            action: StepAction::Backup,
        };
        cx.net.backup_at(&self.node, spec, &self.name).await
    }
}

/// Stop `node` if running, restore the named backup, start it again. With `expect =
/// "refused"` the node must refuse the backup (its message containing `reason_contains`, if
/// given) and leave its home byte for byte as it was; it is then started again on its old store.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    pub node: String,
    pub backup: String,
    #[serde(default, skip_serializing_if = "RestoreExpect::is_default")]
    pub expect: RestoreExpect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_contains: Option<String>,
    /// Accept a backup whose manifest has no content digests (one an earlier build wrote,
    /// manifest format 1): dlp-node's `--accept-undigested-backup`, which an operator passes
    /// knowingly. Its files' structure and records are still checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_undigested: bool,
}

impl Restore {
    /// A plain restore of `node` from `backup`, expected to succeed.
    pub fn of(node: &str, backup: &str) -> Self {
        Self {
            node: node.to_string(),
            backup: backup.to_string(),
            expect: RestoreExpect::Restored,
            reason_contains: None,
            accept_undigested: false,
        }
    }
}

/// What a restore must end in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestoreExpect {
    /// The node restores the backup (the default).
    #[default]
    Restored,
    /// The node refuses it and changes nothing.
    Refused,
}

impl RestoreExpect {
    fn is_default(&self) -> bool {
        *self == RestoreExpect::Restored
    }
}

impl VerbFacts for Restore {
    fn facts(&self) -> Facts<'_> {
        // A restore of a `backup_at` backup waits for it, but that `backup_at` already needs step
        // control and events.
        Facts::new([self.node.as_str()], &[])
            .answering([self.node.as_str()])
            .lifecycle(&self.node, Lifecycle::Restore)
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        check_own_backup(cx, "restore", &self.node, &self.backup)?;
        check_reason(
            "restore",
            self.reason_contains.as_deref(),
            self.expect == RestoreExpect::Refused,
            "refused",
        )
    }
}

impl Verb for Restore {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (node, backup) = (&self.node, &self.backup);
        let digests = if self.accept_undigested {
            Digests::Bypassed
        } else {
            Digests::Required
        };
        let outcome = cx.net.restore_with(node, backup, digests).await?;
        match (self.expect, outcome) {
            (RestoreExpect::Restored, RestoreOutcome::Restored) => Ok(()),
            (RestoreExpect::Restored, RestoreOutcome::Refused { reason }) => {
                Err(HarnessError::Expectation(format!(
                    "{node} refused backup {backup:?} (it was started again on its old store): {reason}"
                )))
            }
            (RestoreExpect::Refused, RestoreOutcome::Restored) => {
                Err(HarnessError::Expectation(format!(
                    "{node} restored backup {backup:?}, which the scenario expects it to refuse: \
                     whatever was wrong with it went unnoticed"
                )))
            }
            (RestoreExpect::Refused, RestoreOutcome::Refused { reason }) => {
                match &self.reason_contains {
                    Some(want) if !reason.contains(want.as_str()) => {
                        Err(HarnessError::Expectation(format!(
                            "{node} refused backup {backup:?}, but its reason does not contain \
                             {want:?}: {reason}"
                        )))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

/// `backup` was named by an earlier step, as a backup of `node`.
pub(super) fn check_own_backup(
    cx: &Check<'_>,
    verb: &str,
    node: &str,
    backup: &str,
) -> Result<(), String> {
    match cx.backup_owner(backup) {
        None => Err(format!("{verb}: no earlier backup step named {backup:?}")),
        Some(owner) if owner != node => Err(format!(
            "{verb}: backup {backup:?} is {owner}'s, not {node}'s"
        )),
        Some(_) => Ok(()),
    }
}

/// Wait until `node` has written an automatic backup (one it took on its own schedule: it
/// needs `auto_backup = true`) in its current run, newer than any named before; remembered
/// as `name`. With `within_ms`, it must come that soon after the step starts.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitAutoBackup {
    pub node: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_ms: Option<u64>,
}

impl VerbFacts for WaitAutoBackup {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[TypedEvents]).answering([self.node.as_str()])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        let node = &self.node;
        if !cx.node(node).is_some_and(|n| n.auto_backup) {
            return Err(format!(
                "wait_auto_backup: {node} takes no automatic backups (set auto_backup = true \
                 under [nodes.{node}])"
            ));
        }
        let deadline = DEADLINE.as_millis() as u64;
        if let Some(ms) = self.within_ms
            && !(1..=deadline).contains(&ms)
        {
            return Err(format!(
                "wait_auto_backup: within_ms {ms} must be 1 to {deadline} (every wait ends at \
                 the {} s deadline)",
                DEADLINE.as_secs()
            ));
        }
        cx.name_backup(&self.name, node)
    }
}

impl Verb for WaitAutoBackup {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net
            .wait_auto_backup(
                &self.node,
                &self.name,
                self.within_ms.map(Duration::from_millis),
            )
            .await
            .map(|_| ())
    }
}

/// The named backup of `node` holds `files` (paths relative to the backup's directory; one
/// ending in `/` is a directory), and with `store = true` the store of the run's backend
/// (`db/CURRENT` on RocksDB, `data.sqlite` on SQLite).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectBackupFiles {
    pub node: String,
    pub backup: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub store: bool,
}

impl VerbFacts for ExpectBackupFiles {
    fn facts(&self) -> Facts<'_> {
        // It reads the backup on the host, through the path every driver maps: the node need not
        // answer.
        Facts::new([self.node.as_str()], &[])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        let (node, backup) = (&self.node, &self.backup);
        let Some(owner) = cx.backup_owner(backup) else {
            return Err(format!(
                "expect_backup_files: no earlier backup step named {backup:?}"
            ));
        };
        if owner != node {
            return Err(format!(
                "expect_backup_files: backup {backup:?} is {owner}'s, not {node}'s"
            ));
        }
        if self.files.is_empty() && !self.store {
            return Err(
                "expect_backup_files: nothing to check: list files or set store = true".into(),
            );
        }
        if self.files.len() > MAX_BACKUP_FILES {
            return Err(format!(
                "expect_backup_files: {} files; at most {MAX_BACKUP_FILES}",
                self.files.len()
            ));
        }
        for path in &self.files {
            check_backup_path("expect_backup_files", path)?;
        }
        Ok(())
    }
}

impl Verb for ExpectBackupFiles {
    /// Every listed path is there (a path ending in `/` as a directory, any other as a file);
    /// the failure names what is missing and lists what is there.
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (node, backup) = (&self.node, &self.backup);
        let (owner, dir, entries) = cx.net.backup_listing(backup).await?;
        if owner != *node {
            return Err(HarnessError::Expectation(format!(
                "backup {backup:?} is {owner}'s, not {node}'s"
            )));
        }
        let store_file = self.store.then(|| backup_store_file(cx.net.backend()));
        let missing: Vec<&str> = self
            .files
            .iter()
            .chain(&store_file)
            .map(String::as_str)
            .filter(|want| !entries.iter().any(|e| e == want))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(HarnessError::Expectation(format!(
            "backup {backup:?} of {node} ({}) lacks {}; it holds: {}",
            dir.display(),
            missing.join(", "),
            if entries.is_empty() {
                "nothing".to_string()
            } else {
                entries.join(", ")
            }
        )))
    }
}

/// The store a backup of the run's backend holds: `db/CURRENT` (a RocksDB checkpoint names
/// its manifest there) or `data.sqlite`.
pub fn backup_store_file(backend: Backend) -> String {
    match backend {
        Backend::Rocksdb => format!("{ROCKSDB_BACKUP_DIR_NAME}/CURRENT"),
        Backend::Sqlite => SQLITE_FILE_NAME.to_string(),
    }
}

/// A path inside a backup directory: relative, no `.` or `..` or empty parts (a trailing `/`
/// marks a directory), at most [`MAX_BACKUP_PATH`] bytes.
pub(super) fn check_backup_path(verb: &str, path: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{verb}: path {} {why} (paths are relative to the backup directory, \
             like \"sk\" or \"db/CURRENT\"; a trailing / marks a directory)",
            clip(path)
        ))
    };
    if path.len() > MAX_BACKUP_PATH {
        return bad(&format!("is longer than {MAX_BACKUP_PATH} bytes"));
    }
    if path.is_empty() || path == "/" {
        return bad("is empty");
    }
    if path.starts_with('/') {
        return bad("is absolute");
    }
    let inner = path.strip_suffix('/').unwrap_or(path);
    if inner
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return bad("has an empty, . or .. part");
    }
    Ok(())
}
