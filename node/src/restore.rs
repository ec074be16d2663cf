//! Offline restore: replace a stopped node's store with a backup, safely.
//!
//! Order of work, chosen so that every failure leaves the node exactly as it was:
//!
//! 1. Take the base-directory lock (a running node holds it: refuse, nothing changed).
//! 2. Validate the backup without modifying it: manifest present and readable, backend matches
//!    the node's config, every listed file present with its recorded size, key copies belong to
//!    the manifest's node, the backup belongs to this node (not a foreign one), and the database
//!    opens read-only and reads back whole (RocksDB checksums / SQLite `quick_check`).
//! 3. Copy the database into a staging directory next to the store, fsync it, open it, and mark
//!    every `ChannelReady` / `ShuttingDown(_)` channel `Stale` there (persisted).
//! 4. Swap: rename the current store to `store.bak.<unix_ms>` (never deleted), rename staging to
//!    `store`. If the second rename fails, the first is undone.
//! 5. Restore `sk` and `key` (atomically each) when the backup has both; on failure the old key
//!    files and the old store are put back.
//!
//! Until step 4 the original store is never touched, so "put the original back untouched" holds
//! trivially for the expensive part (the copy), and a crash at any point leaves either the old
//! store or the complete, Stale-marked new one at `store/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backup::{
    BACKUP_NODE_KEY, BACKUP_WALLET_KEY, BackupManifest, MANIFEST_FILE, ManifestError, read_manifest,
};
use crate::channel_record::{RecordError, StaleMark, mark_channels_stale};
use crate::failpoint::Failpoints;
use crate::fsutil::{self, FileEntry};
use crate::keys::{self, KEY_FILE_MODE};
use crate::layout::BaseDir;
use crate::lock::{BaseDirLock, LockError};
use crate::store::{
    Backend, ROCKSDB_BACKUP_DIR_NAME, RocksStore, SQLITE_FILE_NAME, SqliteStore, StoreError,
    open_store,
};

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
    /// each database file copy), `restore.mark_stale`, `restore.move_aside`, `restore.swap`,
    /// `restore.keys`.
    pub failpoints: Failpoints,
}

/// A backup that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedBackup {
    pub dir: PathBuf,
    pub manifest: BackupManifest,
    /// Entries in the database, as read during verification.
    pub entries: u64,
    /// Database files to copy, relative to [`db_root`](Self::db_root).
    pub db_files: Vec<FileEntry>,
    /// Directory the database files are relative to.
    pub db_root: PathBuf,
    /// True when both `sk` and `key` are present and match the manifest.
    pub has_key_pair: bool,
    /// Files in the backup that its manifest does not list (ignored).
    pub unlisted_files: Vec<String>,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub backup_dir: PathBuf,
    pub backend: Backend,
    pub store_dir: PathBuf,
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
    pub validate_time: Duration,
    pub copy_time: Duration,
    pub mark_and_swap_time: Duration,
}

/// Check a backup without modifying it. `this_node` is the current node's public key (hex),
/// when the base directory has a readable one.
pub fn validate_backup(
    backup_dir: &Path,
    configured: Backend,
    this_node: Option<&str>,
) -> Result<ValidatedBackup, RestoreError> {
    if !backup_dir.is_dir() {
        return Err(RestoreError::BackupNotFound(backup_dir.to_path_buf()));
    }
    let manifest = read_manifest(backup_dir)?;
    if manifest.backend != configured {
        return Err(RestoreError::BackendMismatch {
            dir: backup_dir.to_path_buf(),
            backup: manifest.backend,
            configured,
        });
    }

    let present = fsutil::list_files(backup_dir).map_err(|source| RestoreError::Unreadable {
        dir: backup_dir.to_path_buf(),
        source,
    })?;
    for listed in &manifest.files {
        let path = backup_dir.join(&listed.path);
        let is_key_copy = listed.path == BACKUP_NODE_KEY || listed.path == BACKUP_WALLET_KEY;
        match present.iter().find(|f| f.relative == listed.path) {
            // Key copies are optional: without both, restore keeps the node's current keys.
            None if is_key_copy => {}
            None => {
                return Err(RestoreError::FileMissing {
                    path,
                    size: listed.size,
                });
            }
            Some(found) if found.size != listed.size => {
                return Err(RestoreError::FileSizeMismatch {
                    path,
                    expected: listed.size,
                    actual: found.size,
                });
            }
            Some(_) => {}
        }
    }
    let unlisted_files: Vec<String> = present
        .iter()
        .filter(|f| f.relative != MANIFEST_FILE)
        .filter(|f| !manifest.files.iter().any(|l| l.path == f.relative))
        .map(|f| f.relative.clone())
        .collect();

    let (db_root, db_files) = database_files(backup_dir, &manifest)?;

    let has_key_pair = check_keys(backup_dir, &manifest)?;
    if let Some(this_node) = this_node
        && this_node != manifest.node_pubkey
    {
        return Err(RestoreError::ForeignNode {
            dir: backup_dir.to_path_buf(),
            backup_node: manifest.node_pubkey.clone(),
            this_node: this_node.to_string(),
        });
    }

    let entries = match manifest.backend {
        Backend::Rocksdb => RocksStore::verify_readonly(&db_root),
        Backend::Sqlite => SqliteStore::verify_readonly(&db_root.join(SQLITE_FILE_NAME)),
    }
    .map_err(RestoreError::CorruptDatabase)?;

    Ok(ValidatedBackup {
        dir: backup_dir.to_path_buf(),
        manifest,
        entries,
        db_files,
        db_root,
        has_key_pair,
        unlisted_files,
    })
}

/// The database files listed in the manifest, relative to the directory they are copied from.
fn database_files(
    backup_dir: &Path,
    manifest: &BackupManifest,
) -> Result<(PathBuf, Vec<FileEntry>), RestoreError> {
    let (root, prefix, expected) = match manifest.backend {
        Backend::Rocksdb => (
            backup_dir.join(ROCKSDB_BACKUP_DIR_NAME),
            format!("{ROCKSDB_BACKUP_DIR_NAME}/"),
            format!("{ROCKSDB_BACKUP_DIR_NAME}/CURRENT"),
        ),
        Backend::Sqlite => (
            backup_dir.to_path_buf(),
            String::new(),
            SQLITE_FILE_NAME.to_string(),
        ),
    };
    let files: Vec<FileEntry> = manifest
        .files
        .iter()
        .filter(|f| match manifest.backend {
            Backend::Rocksdb => f.path.starts_with(&prefix),
            Backend::Sqlite => f.path == SQLITE_FILE_NAME,
        })
        .map(|f| FileEntry {
            relative: f.path[prefix.len()..].to_string(),
            size: f.size,
        })
        .collect();
    if !manifest.files.iter().any(|f| f.path == expected) {
        return Err(RestoreError::NoDatabase {
            dir: backup_dir.to_path_buf(),
            expected,
        });
    }
    Ok((root, files))
}

/// True when both key copies are present and belong to the manifest's node and wallet.
fn check_keys(backup_dir: &Path, manifest: &BackupManifest) -> Result<bool, RestoreError> {
    let sk_path = backup_dir.join(BACKUP_NODE_KEY);
    let key_path = backup_dir.join(BACKUP_WALLET_KEY);
    if !(sk_path.is_file() && key_path.is_file()) {
        return Ok(false);
    }
    let mismatch = |detail: String| RestoreError::KeysMismatch { detail };
    let node = keys::read_secret_key(&sk_path).map_err(|e| mismatch(e.to_string()))?;
    let wallet = keys::read_secret_key(&key_path).map_err(|e| mismatch(e.to_string()))?;
    let node_pub = hex::encode(node.public_key().serialize());
    let wallet_pub = hex::encode(wallet.public_key().serialize());
    if node_pub != manifest.node_pubkey {
        return Err(mismatch(format!(
            "{} is the key of node {node_pub}, the manifest says node {}",
            sk_path.display(),
            manifest.node_pubkey
        )));
    }
    if wallet_pub != manifest.wallet_pubkey {
        return Err(mismatch(format!(
            "{} is the key of wallet {wallet_pub}, the manifest says wallet {}",
            key_path.display(),
            manifest.wallet_pubkey
        )));
    }
    Ok(true)
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

    let started = Instant::now();
    let this_node = keys::read_secret_key(&base.node_key())
        .ok()
        .map(|k| hex::encode(k.public_key().serialize()));
    let backup = validate_backup(backup_dir, backend, this_node.as_deref())?;
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
    let marked = mark_stale_in(backend, &staging, &options.failpoints);
    let stale_marked = match marked {
        Ok(marks) => marks,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(failed("marking channels Stale", e));
        }
    };

    // 4. Swap.
    let previous_store = if store_dir.exists() {
        let bak = base.store_bak(ms);
        let moved = options
            .failpoints
            .check("restore.move_aside")
            .and_then(|()| std::fs::rename(&store_dir, &bak));
        if let Err(e) = moved {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(failed("moving the current store aside", Box::new(e)));
        }
        Some(bak)
    } else {
        None
    };
    let swapped = options
        .failpoints
        .check("restore.swap")
        .and_then(|()| std::fs::rename(&staging, &store_dir))
        .and_then(|()| fsutil::sync_dir(&base.fiber_dir()));
    if let Err(e) = swapped {
        let step = "moving the restored store into place";
        return Err(
            match undo_swap(base, &staging, previous_store.as_deref(), false) {
                Ok(()) => failed(step, Box::new(e)),
                Err(rollback) => rollback_failed(base, step, Box::new(e), rollback, previous_store),
            },
        );
    }

    // 5. Keys.
    let (keys_restored, keys_note) = if backup.has_key_pair {
        if let Err(e) = restore_keys(base, backup_dir, &options.failpoints) {
            let step = "restoring the key files";
            return Err(
                match undo_swap(base, &staging, previous_store.as_deref(), true) {
                    Ok(()) => failed(step, e),
                    Err(rollback) => rollback_failed(base, step, e, rollback, previous_store),
                },
            );
        }
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

    // 6. Count this restore in the base directory's restore epoch (never part of a backup, so
    // it only grows; seeded randomness mixes it in so a restored node never replays a value).
    // Done last so that every failed restore leaves the base directory exactly as it was.
    let epoch = base.read_restore_epoch() + 1;
    if let Err(e) = fsutil::write_atomic(
        &base.restore_epoch(),
        format!("{epoch}\n").as_bytes(),
        0o644,
    ) {
        tracing::error!(error = %e, "could not record the restore epoch; seeded test randomness may repeat");
    }
    Ok(RestoreReport {
        backup_dir: backup_dir.to_path_buf(),
        backend,
        store_dir,
        previous_store,
        keys_restored,
        keys_note,
        stale_marked,
        files_copied: backup.db_files.len(),
        bytes_copied,
        entries: backup.entries,
        validate_time,
        copy_time,
        mark_and_swap_time: swap_started.elapsed(),
    })
}

fn mark_stale_in(
    backend: Backend,
    staging: &Path,
    failpoints: &Failpoints,
) -> Result<Vec<StaleMark>, Box<dyn std::error::Error + Send + Sync>> {
    failpoints.check("restore.mark_stale")?;
    let store = open_store(backend, staging)?;
    let marks = mark_channels_stale(store.as_ref()).map_err(|e: RecordError| Box::new(e))?;
    drop(store);
    fsutil::sync_dir(staging)?;
    Ok(marks)
}

fn rollback_failed(
    base: &BaseDir,
    step: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
    rollback: std::io::Error,
    previous_store: Option<PathBuf>,
) -> RestoreError {
    RestoreError::RollbackFailed {
        step,
        source,
        rollback: rollback.to_string(),
        original: previous_store.unwrap_or_else(|| base.store_dir()),
        base: base.root().to_path_buf(),
    }
}

/// Put the original store back after a failed swap or key restore. `restored_in_place` says
/// whether the restored store already sits at `store/` (it is moved back to `staging`, then
/// removed).
fn undo_swap(
    base: &BaseDir,
    staging: &Path,
    previous_store: Option<&Path>,
    restored_in_place: bool,
) -> std::io::Result<()> {
    let store_dir = base.store_dir();
    let result = (|| -> std::io::Result<()> {
        if restored_in_place {
            std::fs::rename(&store_dir, staging)?;
        }
        if let Some(previous) = previous_store {
            std::fs::rename(previous, &store_dir)?;
        }
        fsutil::sync_dir(&base.fiber_dir())
    })();
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(staging);
    }
    result
}

/// Write `sk` and `key` from the backup; on failure put back the old bytes (or remove the files
/// if there were none).
fn restore_keys(
    base: &BaseDir,
    backup_dir: &Path,
    failpoints: &Failpoints,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let targets = [
        (backup_dir.join(BACKUP_NODE_KEY), base.node_key()),
        (backup_dir.join(BACKUP_WALLET_KEY), base.wallet_key()),
    ];
    let originals: Vec<Option<Vec<u8>>> = targets
        .iter()
        .map(|(_, to)| std::fs::read(to).ok())
        .collect();
    let result = (|| -> std::io::Result<()> {
        for (from, to) in &targets {
            let bytes = std::fs::read(from)?;
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            failpoints.check("restore.keys")?;
            fsutil::write_atomic(to, &bytes, KEY_FILE_MODE)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        for ((_, to), original) in targets.iter().zip(&originals) {
            let _ = match original {
                Some(bytes) => fsutil::write_atomic(to, bytes, KEY_FILE_MODE),
                None => std::fs::remove_file(to),
            };
        }
        return Err(Box::new(e));
    }
    Ok(())
}

/// Remove `store.restoring.*` directories left by an interrupted restore. They are only ever
/// created by restore, which holds the lock, so none can be in use.
fn remove_leftover_staging(base: &BaseDir) {
    let Ok(entries) = std::fs::read_dir(base.fiber_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("store.restoring.")
        {
            tracing::warn!(path = %entry.path().display(), "removing staging directory of an interrupted restore");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
