//! The restore intent: a small journal that makes the store swap crash-proof.
//!
//! Swapping a store takes two renames (current store aside, staging copy into place) plus the
//! key files and the restore epoch. A process killed between the two renames used to leave no
//! `fiber/store` at all, and the next start silently created an empty store: the node forgot
//! its channels, and nothing watched them for penalties.
//!
//! So before the first rename, restore writes `fiber/restore.intent` (atomically, fsynced,
//! 0600): the staging directory, where the old store goes, the key files' bytes and the restore
//! epoch to record. From then on the restore is *decided*: every step after it is idempotent
//! and can be re-run from what is on disk ([`roll_forward`]), and the next `dlp-node` start or
//! `--restore` completes it before anything else. The intent is written only once the staging
//! copy is complete, fsynced and Stale-marked, so rolling forward never installs a partial
//! store; before the intent exists, a crash leaves the old store in place and a garbage
//! staging directory that the next restore removes. The intent is removed last.
//!
//! A restore that fails (an error, not a crash) after writing the intent rolls back
//! ([`roll_back`]) and removes the intent only once the old store is back, so a crash during
//! the rollback rolls forward instead: either way the node ends on one complete store.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::failpoint::Failpoints;
use crate::fsutil;
use crate::keys::KEY_FILE_MODE;
use crate::layout::BaseDir;

/// File name of the intent inside `<base>/fiber/`.
pub const INTENT_FILE: &str = "restore.intent";
const INTENT_FORMAT: u32 = 1;
/// Files that `fsutil::write_atomic` may leave half-written as `.<name>.tmp-<pid>` when killed.
const ATOMIC_WRITE_NAMES: [&str; 4] = [INTENT_FILE, "sk", "key", "restore_epoch"];

/// What an interrupted restore still has to do, as written before its first rename.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestoreIntent {
    pub format: u32,
    /// The complete, Stale-marked staging copy: a directory name inside `fiber/`.
    pub staging: String,
    /// Where the current store goes (a name inside `fiber/`); `None` when there was none.
    pub previous: Option<String>,
    /// The backup being restored (for messages only; nothing is read from it any more).
    pub backup_dir: PathBuf,
    /// Bytes of the backup's `sk` and `key`, hex, when the backup has both.
    pub node_key: Option<String>,
    pub wallet_key: Option<String>,
    /// The restore epoch to record.
    pub restore_epoch: u64,
    pub created_at_unix_ms: u64,
}

/// Why an interrupted restore could not be completed, or why a node must not start.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(
        "{} records an interrupted restore but cannot be read ({detail}); nothing was changed: \
         inspect {} by hand (the old store is fiber/store or fiber/store.bak.*, the restored \
         one fiber/store or fiber/store.restoring.*)",
        path.display(),
        fiber_dir.display()
    )]
    BadIntent {
        path: PathBuf,
        fiber_dir: PathBuf,
        detail: String,
    },
    #[error("completing the interrupted restore recorded in {} failed while {step}: {source}", intent.display())]
    Io {
        intent: PathBuf,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the interrupted restore recorded in {} cannot be completed: {detail}; nothing was \
         changed, inspect the directory by hand",
        intent.display()
    )]
    Inconsistent { intent: PathBuf, detail: String },
    #[error(
        "refusing to start: {} is missing but {} exist(s): an interrupted restore or a store \
         moved by hand. Starting would create an empty store and forget every channel. Run \
         `dlp-node --restore <backup>` again, or move the store you want back to {}, or remove \
         those directories to start empty on purpose",
        store.display(),
        leftovers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        store.display()
    )]
    StoreMissing {
        store: PathBuf,
        leftovers: Vec<PathBuf>,
    },
}

/// What `complete_interrupted` (every start and restore) did: the restore it finished.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    pub(crate) intent: RestoreIntent,
}

impl RecoveryReport {
    /// The backup the interrupted restore was restoring.
    pub fn backup_dir(&self) -> &Path {
        &self.intent.backup_dir
    }
}

impl RestoreIntent {
    pub(crate) fn path(base: &BaseDir) -> PathBuf {
        base.fiber_dir().join(INTENT_FILE)
    }

    /// Write the intent durably (temporary file, fsync, rename, fsync of `fiber/`).
    pub(crate) fn write(&self, base: &BaseDir) -> std::io::Result<()> {
        // Plain data with string fields cannot fail to serialise.
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        fsutil::write_atomic(&Self::path(base), &json, KEY_FILE_MODE)
    }

    /// The intent of an interrupted restore, if there is one.
    pub(crate) fn read(base: &BaseDir) -> Result<Option<Self>, RecoveryError> {
        let path = Self::path(base);
        let bad = |detail: String| RecoveryError::BadIntent {
            path: path.clone(),
            fiber_dir: base.fiber_dir(),
            detail,
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let intent: Self = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if intent.format != INTENT_FORMAT {
            return Err(bad(format!(
                "format {} (this build reads {INTENT_FORMAT})",
                intent.format
            )));
        }
        for name in std::iter::once(&intent.staging).chain(intent.previous.as_ref()) {
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(bad(format!(
                    "{name:?} is not a directory name inside fiber/"
                )));
            }
        }
        Ok(Some(intent))
    }

    fn staging_dir(&self, base: &BaseDir) -> PathBuf {
        base.fiber_dir().join(&self.staging)
    }

    fn previous_dir(&self, base: &BaseDir) -> Option<PathBuf> {
        self.previous.as_ref().map(|p| base.fiber_dir().join(p))
    }
}

/// Run what remains of `intent`. Every step checks the disk first, so running it again after a
/// crash at any point continues where the last run stopped. Failpoints: `restore.move_aside`,
/// `restore.swap` (before each rename), `restore.keys` (before each key file).
pub(crate) fn roll_forward(
    base: &BaseDir,
    intent: &RestoreIntent,
    failpoints: &Failpoints,
) -> Result<(), RecoveryError> {
    let path = RestoreIntent::path(base);
    let io = |step: &'static str| {
        let intent = path.clone();
        move |source| RecoveryError::Io {
            intent,
            step,
            source,
        }
    };
    let fiber = base.fiber_dir();
    let store = base.store_dir();
    let staging = intent.staging_dir(base);
    let previous = intent.previous_dir(base);
    if staging.exists() {
        if store.exists() {
            match &previous {
                Some(previous) if !previous.exists() => {
                    failpoints
                        .check("restore.move_aside")
                        .and_then(|()| std::fs::rename(&store, previous))
                        .and_then(|()| fsutil::sync_dir(&fiber))
                        .map_err(io("moving the current store aside"))?;
                }
                _ => {
                    return Err(RecoveryError::Inconsistent {
                        intent: path,
                        detail: format!(
                            "{} and {} both exist and the current store has nowhere to go",
                            store.display(),
                            staging.display()
                        ),
                    });
                }
            }
        }
        failpoints
            .check("restore.swap")
            .and_then(|()| std::fs::rename(&staging, &store))
            .and_then(|()| fsutil::sync_dir(&fiber))
            .map_err(io("moving the restored store into place"))?;
    } else if !store.exists() {
        return Err(RecoveryError::Inconsistent {
            intent: path,
            detail: format!(
                "neither the restored store {} nor {} exists",
                store.display(),
                staging.display()
            ),
        });
    }
    for (hex_bytes, to) in [
        (&intent.node_key, base.node_key()),
        (&intent.wallet_key, base.wallet_key()),
    ] {
        let Some(hex_bytes) = hex_bytes else { continue };
        let bytes = hex::decode(hex_bytes).map_err(|e| RecoveryError::BadIntent {
            path: path.clone(),
            fiber_dir: fiber.clone(),
            detail: format!("key bytes are not hex: {e}"),
        })?;
        failpoints
            .check("restore.keys")
            .and_then(|()| match to.parent() {
                Some(parent) => std::fs::create_dir_all(parent),
                None => Ok(()),
            })
            .and_then(|()| fsutil::write_atomic(&to, &bytes, KEY_FILE_MODE))
            .map_err(io("restoring the key files"))?;
    }
    // Counted in the base directory, never in a backup: seeded randomness mixes it in so a
    // restored node never replays a value.
    fsutil::write_atomic(
        &base.restore_epoch(),
        format!("{}\n", intent.restore_epoch).as_bytes(),
        0o644,
    )
    .map_err(io("recording the restore epoch"))?;
    remove_intent(base).map_err(io("removing the finished intent"))
}

/// Undo a restore that failed (with an error, not a crash) after its intent was written: the
/// restored store goes back to staging, the previous one back to `store/`, the key files get
/// `original_keys` back; then the intent is removed and staging deleted. Until the intent is
/// removed a crash rolls forward instead, which is also a complete store.
pub(crate) fn roll_back(
    base: &BaseDir,
    intent: &RestoreIntent,
    original_keys: &[(PathBuf, Option<Vec<u8>>)],
) -> std::io::Result<()> {
    let fiber = base.fiber_dir();
    let store = base.store_dir();
    let staging = intent.staging_dir(base);
    let previous = intent.previous_dir(base);
    let restored_in_place =
        !staging.exists() && store.exists() && previous.as_ref().is_none_or(|p| p.exists());
    if restored_in_place {
        std::fs::rename(&store, &staging)?;
    }
    if let Some(previous) = &previous
        && previous.exists()
        && !store.exists()
    {
        std::fs::rename(previous, &store)?;
    }
    fsutil::sync_dir(&fiber)?;
    for (path, original) in original_keys {
        match original {
            Some(bytes) => fsutil::write_atomic(path, bytes, KEY_FILE_MODE)?,
            None => match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
        }
    }
    remove_intent(base)?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}

fn remove_intent(base: &BaseDir) -> std::io::Result<()> {
    match std::fs::remove_file(RestoreIntent::path(base)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fsutil::sync_dir(&base.fiber_dir())
}

/// Complete a restore that a crash interrupted after it was decided, if there is one. Called
/// with the base directory locked, by every node start and every restore, before anything else.
pub(crate) fn complete_interrupted(
    base: &BaseDir,
) -> Result<Option<RecoveryReport>, RecoveryError> {
    remove_dead_temporaries(base);
    let Some(intent) = RestoreIntent::read(base)? else {
        return Ok(None);
    };
    tracing::warn!(
        backup = %intent.backup_dir.display(),
        "completing a restore that was interrupted after it was decided"
    );
    roll_forward(base, &intent, &Failpoints::none())?;
    Ok(Some(RecoveryReport { intent }))
}

/// What a node start must check after [`complete_interrupted`]: a missing store is a first
/// start only when nothing suggests a store existed. Leftover `store.bak.*` or
/// `store.restoring.*` directories mean it was lost, and starting would silently begin empty.
pub(crate) fn check_store_present(base: &BaseDir) -> Result<(), RecoveryError> {
    let store = base.store_dir();
    if store.exists() {
        return Ok(());
    }
    let leftovers = leftover_stores(base);
    if leftovers.is_empty() {
        Ok(())
    } else {
        Err(RecoveryError::StoreMissing { store, leftovers })
    }
}

/// `store.bak.*` and `store.restoring.*` directories in `fiber/`, sorted.
pub(crate) fn leftover_stores(base: &BaseDir) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base.fiber_dir()) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("store.bak.") || name.starts_with("store.restoring.")
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// Remove half-written temporaries of `write_atomic` for the files restore writes (a kill
/// between writing and renaming one leaves `.<name>.tmp-<pid>`).
fn remove_dead_temporaries(base: &BaseDir) {
    for dir in [base.fiber_dir(), base.ckb_dir()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let dead = ATOMIC_WRITE_NAMES
                .iter()
                .any(|n| name.starts_with(&format!(".{n}.tmp-")));
            if dead {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Is `path` inside `fiber/` and named like a staging directory? (For the restore's cleanup of
/// garbage staging copies that no intent refers to.)
pub(crate) fn is_staging_name(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("store.restoring."))
}
