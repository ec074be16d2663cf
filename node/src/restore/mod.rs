//! Offline restore: replace a stopped node's store with a backup, safely.
//!
//! Order of work, chosen so that every failure leaves the node exactly as it was and a crash at
//! any instruction leaves either the old store or the complete new one:
//!
//! 1. Take the base-directory lock (a running node holds it: refuse, nothing changed), then
//!    finish any earlier restore that a crash interrupted after it was decided (`intent.rs`).
//! 2. Validate the backup without modifying it (`validate.rs`): manifest, backend, sizes,
//!    SHA-256 digests of every file, keys, owner, and the database read back whole with every
//!    record decoded as the node will decode it at start.
//! 3. Copy the database into a staging directory next to the store, fsync it, open it, and mark
//!    every `ChannelReady` / `ShuttingDown(_)` channel `Stale` there (persisted).
//! 4. Write the restore intent (fsynced): from here the restore is decided.
//! 5. Roll forward: rename the current store to `store.bak.<unix_ms>` (never deleted), rename
//!    staging to `store`, restore `sk` and `key` when the backup has both, record the restore
//!    epoch, remove the intent. An error here rolls back; a crash here is completed by the
//!    next start or restore.
//!
//! Until step 5 the original store is never touched, so "put the original back untouched" holds
//! trivially for the expensive part (the copy).

pub(crate) mod intent;
pub(crate) mod validate;

pub use self::intent::{INTENT_FILE, RecoveryError, RecoveryReport};
pub use crate::core::records::BadRecord;
pub use crate::lock::LockError;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::channel_record::{RecordError, StaleMark, mark_channels_stale};
use crate::failpoint::Failpoints;
use crate::fsutil;
use crate::layout::BaseDir;
use crate::lock::BaseDirLock;
use crate::store::{Backend, StoreError, open_store};

use self::intent::RestoreIntent;
pub(crate) use self::intent::{check_store_present, complete_interrupted};
pub(crate) use self::validate::{ValidateOptions, validate_backup};
use crate::backup::{BACKUP_NODE_KEY, BACKUP_WALLET_KEY, ManifestError};

/// Why a restore was refused or failed. Unless the variant says otherwise, nothing in the base
/// directory was changed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("refusing to restore: {0}")]
    NodeRunning(#[source] LockError),
    #[error("backup directory {} does not exist or is not a directory", .0.display())]
    BackupNotFound(PathBuf),
    #[error("refusing backup: {0}")]
    Manifest(#[from] ManifestError),
    #[error(
        "refusing backup {}: it is a {backup} backup but this node's config says store.backend = \"{configured}\"",
        dir.display()
    )]
    BackendMismatch {
        dir: PathBuf,
        backup: Backend,
        configured: Backend,
    },
    #[error("refusing backup {}: it holds no database ({expected} is not listed in its manifest)", dir.display())]
    NoDatabase { dir: PathBuf, expected: String },
    #[error("refusing backup: {} is missing (listed in the manifest with {size} bytes)", path.display())]
    FileMissing { path: PathBuf, size: u64 },
    #[error(
        "refusing backup: {} is {actual} bytes but the manifest says {expected}: truncated or altered",
        path.display()
    )]
    FileSizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("refusing backup {}: {source}", dir.display())]
    Unreadable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing backup: its database is unreadable or corrupt: {0}")]
    CorruptDatabase(#[source] StoreError),
    #[error(
        "refusing backup {}: its manifest (format {format}) records no content digests, so \
         damage inside its files cannot be detected. Take a new backup with this version, or \
         pass --accept-undigested-backup to restore it with structural checks only",
        dir.display()
    )]
    NoDigests { dir: PathBuf, format: u32 },
    #[error(
        "refusing backup: {} does not match its manifest's SHA-256 (expected {expected}, found \
         {actual}): the file was damaged or altered after the backup was written",
        path.display()
    )]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(
        "refusing backup {}: {record}; the node could not start on it (or would start on a \
         wrong value)",
        dir.display()
    )]
    BadRecord { dir: PathBuf, record: BadRecord },
    #[error("{0}")]
    Recovery(#[source] RecoveryError),
    #[error("refusing backup: key copies do not belong to it: {detail}")]
    KeysMismatch { detail: String },
    #[error(
        "refusing backup {}: it belongs to node {backup_node} but this base directory is node {this_node}",
        dir.display()
    )]
    ForeignNode {
        dir: PathBuf,
        backup_node: String,
        this_node: String,
    },
    #[error(
        "refusing backup {}: it has no complete key pair (sk and key) and {} has no node key, \
         so the restored channels would belong to no key",
        dir.display(),
        node_key.display()
    )]
    NoKeys { dir: PathBuf, node_key: PathBuf },
    #[error("restore failed while {step}; the original store at {} is untouched: {source}", store.display())]
    Failed {
        step: &'static str,
        store: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "restore failed while {step} ({source}) and ROLLBACK ALSO FAILED ({rollback}): \
         the original store is at {}, inspect {} by hand",
        original.display(),
        base.display()
    )]
    RollbackFailed {
        step: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
        rollback: String,
        original: PathBuf,
        base: PathBuf,
    },
}

/// Knobs of a restore.
#[derive(Debug, Default)]
pub struct RestoreOptions {
    /// Injected failures (tests and `DLP_NODE_FAILPOINTS`). Points: `restore.copy_file` (before
    /// each database file copy), `restore.mark_stale`, `restore.intent`, `restore.move_aside`,
    /// `restore.swap`, `restore.keys`.
    pub failpoints: Failpoints,
    /// Accept a manifest without content digests (format 1). See `validate.rs`.
    pub accept_undigested: bool,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub backup_dir: PathBuf,
    pub backend: Backend,
    pub store_dir: PathBuf,
    /// An earlier, interrupted restore this one completed first.
    pub completed_first: Option<RecoveryReport>,
    /// Where the replaced store went (`None` when there was no store).
    pub previous_store: Option<PathBuf>,
    /// Whether `sk` and `key` were restored from the backup.
    pub keys_restored: bool,
    /// Why keys were not restored, when they were not.
    pub keys_note: Option<String>,
    pub stale_marked: Vec<StaleMark>,
    pub files_copied: usize,
    pub bytes_copied: u64,
    pub entries: u64,
    /// Whether every file's content matched its digest (false only when a format 1 backup was
    /// accepted explicitly), and how many bytes that read.
    pub digests_verified: bool,
    pub bytes_verified: u64,
    /// Validation in all, and the part of it spent verifying digests.
    pub validate_time: Duration,
    pub digest_time: Duration,
    pub copy_time: Duration,
    pub mark_and_swap_time: Duration,
}

/// Restore `backup_dir` into the stopped node at `base`, whose config says `backend`.
pub fn restore(
    base: &BaseDir,
    backend: Backend,
    backup_dir: &Path,
    options: &RestoreOptions,
) -> Result<RestoreReport, RestoreError> {
    let _lock = BaseDirLock::acquire(base).map_err(|e| match e {
        held @ LockError::Held { .. } => RestoreError::NodeRunning(held),
        other => RestoreError::Failed {
            step: "locking the base directory",
            store: base.store_dir(),
            source: Box::new(other),
        },
    })?;
    let completed_first = complete_interrupted(base).map_err(RestoreError::Recovery)?;

    let started = Instant::now();
    let this_node = crate::keys::read_secret_key(&base.node_key())
        .ok()
        .map(|k| hex::encode(k.public_key().serialize()));
    let backup = validate_backup(
        backup_dir,
        backend,
        this_node.as_deref(),
        ValidateOptions {
            accept_undigested: options.accept_undigested,
        },
    )?;
    if !backup.has_key_pair && this_node.is_none() {
        return Err(RestoreError::NoKeys {
            dir: backup_dir.to_path_buf(),
            node_key: base.node_key(),
        });
    }
    let validate_time = started.elapsed();

    let store_dir = base.store_dir();
    let failed = |step: &'static str, source: Box<dyn std::error::Error + Send + Sync>| {
        RestoreError::Failed {
            step,
            store: store_dir.clone(),
            source,
        }
    };
    std::fs::create_dir_all(base.fiber_dir())
        .map_err(|e| failed("creating the fiber directory", Box::new(e)))?;
    // No intent refers to them (the one that could was completed above): copies that a crash
    // or an error interrupted before the restore was decided.
    remove_leftover_staging(base);
    // A free millisecond stamp: two restores within one millisecond must not collide on
    // `store.bak.<ms>` (renaming onto an existing empty directory would silently replace it).
    let mut ms = fsutil::unix_ms();
    while base.store_bak(ms).exists() || base.store_staging(ms).exists() {
        ms += 1;
    }
    let staging = base.store_staging(ms);

    // 3a. Copy into staging.
    let copy_started = Instant::now();
    let copy_result = fsutil::copy_files(&backup.db_root, &staging, &backup.db_files, &mut |_| {
        options.failpoints.check("restore.copy_file")
    });
    let bytes_copied = match copy_result {
        Ok(bytes) => bytes,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(failed("copying the backup's database", Box::new(e)));
        }
    };
    let copy_time = copy_started.elapsed();

    // 3b. Mark channels Stale in the staging copy.
    let swap_started = Instant::now();
    // The node the restored store belongs to: the backup's key when it has one (its peers'
    // TLC onions of an earlier version are sealed to it when migrated).
    let restored_node = if backup.has_key_pair {
        crate::keys::read_secret_key(&backup_dir.join(BACKUP_NODE_KEY))
            .ok()
            .map(|k| dlp_chain::Pubkey::from(k.public_key()))
    } else {
        crate::keys::read_secret_key(&base.node_key())
            .ok()
            .map(|k| dlp_chain::Pubkey::from(k.public_key()))
    };
    let stale_marked = match mark_stale_in(
        backend,
        &staging,
        restored_node.as_ref(),
        &options.failpoints,
    ) {
        Ok(marks) => marks,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(failed("marking channels Stale", e));
        }
    };

    // 4. Decide: the intent says everything that is left to do.
    let previous_store = store_dir.exists().then(|| base.store_bak(ms));
    let read_key = |name: &str| -> Result<Option<String>, RestoreError> {
        if !backup.has_key_pair {
            return Ok(None);
        }
        let path = backup_dir.join(name);
        std::fs::read(&path)
            .map(|b| Some(hex::encode(b)))
            .map_err(|source| RestoreError::Unreadable {
                dir: path.clone(),
                source,
            })
    };
    let intent = RestoreIntent {
        format: 1,
        staging: dir_name(&staging),
        previous: previous_store.as_deref().map(dir_name),
        backup_dir: backup_dir.to_path_buf(),
        node_key: read_key(BACKUP_NODE_KEY)?,
        wallet_key: read_key(BACKUP_WALLET_KEY)?,
        restore_epoch: base.read_restore_epoch() + 1,
        created_at_unix_ms: fsutil::unix_ms(),
    };
    let original_keys: Vec<(PathBuf, Option<Vec<u8>>)> = [base.node_key(), base.wallet_key()]
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).ok();
            (path, bytes)
        })
        .collect();
    let written = options
        .failpoints
        .check("restore.intent")
        .and_then(|()| intent.write(base));
    if let Err(e) = written {
        // Not decided: an intent that did not reach the disk whole is ignored or absent.
        let _ = std::fs::remove_file(RestoreIntent::path(base));
        let _ = std::fs::remove_dir_all(&staging);
        return Err(failed("writing the restore intent", Box::new(e)));
    }

    // 5. Roll forward; on an error, back.
    if let Err(e) = intent::roll_forward(base, &intent, &options.failpoints) {
        let step = match &e {
            RecoveryError::Io { step, .. } => *step,
            _ => "completing the swap",
        };
        return Err(match intent::roll_back(base, &intent, &original_keys) {
            Ok(()) => failed(step, Box::new(e)),
            Err(rollback) => RestoreError::RollbackFailed {
                step,
                source: Box::new(e),
                rollback: rollback.to_string(),
                original: previous_store.unwrap_or_else(|| base.store_dir()),
                base: base.root().to_path_buf(),
            },
        });
    }

    let (keys_restored, keys_note) = if backup.has_key_pair {
        (true, None)
    } else {
        (
            false,
            Some(
                "the backup does not hold both sk and key; the node's current keys were kept"
                    .into(),
            ),
        )
    };
    Ok(RestoreReport {
        backup_dir: backup_dir.to_path_buf(),
        backend,
        store_dir,
        completed_first,
        previous_store,
        keys_restored,
        keys_note,
        stale_marked,
        files_copied: backup.db_files.len(),
        bytes_copied,
        entries: backup.entries,
        digests_verified: backup.digests_verified,
        bytes_verified: backup.bytes_verified,
        validate_time,
        digest_time: backup.digest_time,
        copy_time,
        mark_and_swap_time: swap_started.elapsed(),
    })
}

fn dir_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Bring the staging copy's records forward (a backup of an earlier build) and mark its
/// channels Stale.
fn mark_stale_in(
    backend: Backend,
    staging: &Path,
    node: Option<&dlp_chain::Pubkey>,
    failpoints: &Failpoints,
) -> Result<Vec<StaleMark>, Box<dyn std::error::Error + Send + Sync>> {
    failpoints.check("restore.mark_stale")?;
    let store = open_store(backend, staging)?;
    if let Some(node) = node {
        crate::migrate::bring_forward(store.as_ref(), node).map_err(Box::new)?;
    }
    let marks = mark_channels_stale(store.as_ref()).map_err(|e: RecordError| Box::new(e))?;
    drop(store);
    fsutil::sync_dir(staging)?;
    Ok(marks)
}

/// Remove `store.restoring.*` directories left by an interrupted restore. They are only ever
/// created by restore, which holds the lock, so none can be in use; and none is referred to by
/// an intent, because the caller completed any intent first.
fn remove_leftover_staging(base: &BaseDir) {
    for path in intent::leftover_stores(base) {
        if intent::is_staging_name(&path) {
            tracing::warn!(path = %path.display(), "removing staging directory of an interrupted restore");
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
