//! Faults in the backup itself: `damage_backup` (a named backup changed on disk before it is
//! restored: a byte flipped, a file cut short, deleted, zeroed, or taken from another backup)
//! and `crash_restore` (a restore killed at the n-th call of a syscall, below the node).
//! A following `restore` says whether the node must refuse; the `start` after a killed restore
//! checks which store the node came up on.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::backups::{check_backup_path, check_own_backup};
use super::{Ctx, Verb};
use crate::capability::Capability::KillRestore;
use crate::damage::{Damage, How, Target};
use crate::error::HarnessError;
use crate::limits::{MAX_DAMAGE_BYTES, MAX_KILL_NTH};
use crate::restore_outcome::KillPoint;
use crate::scenario::{Check, Facts, Lifecycle, VerbFacts, clip};

/// Change the named backup of `node` on disk before it is restored: `file` (a path in the
/// backup, as `expect_backup_files` names it) or `store = true` (the run's backend's store
/// files), damaged `how`: "flip" one byte at `offset`, "truncate" to `offset` bytes, "delete",
/// "zero" `len` bytes from `offset`, or "swap" with the same file(s) of backup `with` of the same
/// node. An offset left out is drawn from the run's seed (truncate: half the file).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DamageBackup {
    pub node: String,
    pub backup: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub store: bool,
    pub how: How,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<String>,
}

impl DamageBackup {
    fn damage(&self) -> Damage {
        Damage {
            target: match &self.file {
                Some(file) => Target::File(file.clone()),
                None => Target::Store,
            },
            how: self.how,
            offset: self.offset,
            len: self.len,
        }
    }
}

impl VerbFacts for DamageBackup {
    fn facts(&self) -> Facts<'_> {
        // Files on the host, through the path every driver maps: the node need not answer.
        Facts::new([self.node.as_str()], &[])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        const VERB: &str = "damage_backup";
        check_own_backup(cx, VERB, &self.node, &self.backup)?;
        match (&self.file, self.store) {
            (Some(_), true) => {
                return Err(format!(
                    "{VERB}: give either file or store = true, not both"
                ));
            }
            (None, false) => {
                return Err(format!(
                    "{VERB}: what to damage? give file = \"...\" (a path in the backup, like \
                     \"sk\" or \"db/CURRENT\") or store = true"
                ));
            }
            (Some(file), false) => {
                check_backup_path(VERB, file)?;
                if file.ends_with('/') {
                    return Err(format!(
                        "{VERB}: file {} is a directory; name one file, or store = true",
                        clip(file)
                    ));
                }
            }
            (None, true) => {}
        }
        match (self.how, &self.with) {
            (How::Swap, None) => {
                return Err(format!(
                    "{VERB}: how = \"swap\" needs with = \"<backup>\": another backup of {} to \
                     take the files from",
                    self.node
                ));
            }
            (How::Swap, Some(with)) => {
                check_own_backup(cx, VERB, &self.node, with)?;
                if *with == self.backup {
                    return Err(format!(
                        "{VERB}: with names the damaged backup itself; swap takes files from \
                         another backup"
                    ));
                }
            }
            (how, Some(_)) => {
                return Err(format!(
                    "{VERB}: with is only for how = \"swap\", not \"{how}\""
                ));
            }
            (_, None) => {}
        }
        if self.offset.is_some() && !self.how.takes_offset() {
            return Err(format!(
                "{VERB}: offset means nothing for how = \"{}\" (only flip, truncate and zero)",
                self.how
            ));
        }
        if self.len.is_some() && self.how != How::Zero {
            return Err(format!("{VERB}: len is only for how = \"zero\""));
        }
        if self.len == Some(0) {
            return Err(format!("{VERB}: len must be at least 1"));
        }
        for (field, value) in [("offset", self.offset), ("len", self.len)] {
            if value.is_some_and(|v| v > MAX_DAMAGE_BYTES) {
                return Err(format!(
                    "{VERB}: {field} must be at most {MAX_DAMAGE_BYTES} bytes"
                ));
            }
        }
        Ok(())
    }
}

impl Verb for DamageBackup {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net
            .damage_backup(
                &self.node,
                &self.backup,
                &self.damage(),
                self.with.as_deref(),
                None,
            )
            .await
            .map(|_| ())
    }
}

/// Stop `node` if running, run its restore of the named backup and kill it (SIGKILL, below the
/// node) at the n-th call of a syscall, `at = "<syscall>:<n>"` (`"rename:2"`, `"fsync:1"`;
/// names as the kernel's); the node is left stopped. Its next `start` must come up on its old
/// store or the complete restored one (the harness checks which and says so in the timeline).
/// A restore that finishes before the n-th call is reported as such.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrashRestore {
    pub node: String,
    pub backup: String,
    pub at: String,
}

/// `"rename:2"` as a kill point, or what is wrong with it.
pub fn parse_kill_point(at: &str) -> Result<KillPoint, String> {
    let bad = |why: String| {
        Err(format!(
            "crash_restore: at = {} {why} (expected \"<syscall>:<n>\", like \"rename:2\" or \
             \"fsync:1\")",
            clip(at)
        ))
    };
    let Some((syscall, nth)) = at.split_once(':') else {
        return bad("has no ':'".into());
    };
    let valid_name = !syscall.is_empty()
        && syscall.len() <= 32
        && syscall
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && syscall.as_bytes()[0].is_ascii_lowercase();
    if !valid_name {
        return bad("does not name a syscall (lower-case letters, digits, '_')".into());
    }
    match nth.parse::<u32>() {
        Ok(n) if (1..=MAX_KILL_NTH).contains(&n) => Ok(KillPoint {
            syscall: syscall.to_string(),
            nth: n,
        }),
        _ => bad(format!("has no call number from 1 to {MAX_KILL_NTH}")),
    }
}

impl VerbFacts for CrashRestore {
    fn facts(&self) -> Facts<'_> {
        // A running node is stopped cleanly first (it must answer), and left stopped.
        Facts::new([self.node.as_str()], &[KillRestore])
            .answering([self.node.as_str()])
            .lifecycle(&self.node, Lifecycle::CrashRestore)
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        check_own_backup(cx, "crash_restore", &self.node, &self.backup)?;
        parse_kill_point(&self.at).map(|_| ())
    }
}

impl Verb for CrashRestore {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let at = parse_kill_point(&self.at).map_err(HarnessError::Setup)?;
        cx.net
            .crash_restore(&self.node, &self.backup, &at)
            .await
            .map(|_| ())
    }
}
