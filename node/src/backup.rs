//! Hot backups and their manifest.
//!
//! A backup directory holds the database copy (`db/` for RocksDB, `data.sqlite` for SQLite),
//! copies of the key files (`key`, `sk`), and `dlp-backup.json`, the manifest. The manifest is
//! written last and fsynced: a directory without it is an interrupted backup, and restore
//! refuses it. It records what restore needs to validate the backup before touching anything:
//! format version, backend, the node's public keys, and every file with its size (so a truncated
//! or missing file is caught by name, cheaply, even at 1 GB).
//!
//! A backup never overwrites: the target directory must not exist. If a backup fails midway,
//! the directory it created is removed, so no half backup is left that looks usable.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::keys::{KEY_FILE_MODE, NodeKeys};
use crate::layout::BaseDir;
use crate::store::{Backend, Store, StoreError};

/// File name of the manifest inside a backup directory.
pub const MANIFEST_FILE: &str = "dlp-backup.json";
/// Manifest format this build writes and reads.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;
/// Name of the node key copy inside a backup (Fiber's).
pub const BACKUP_NODE_KEY: &str = "sk";
/// Name of the wallet key copy inside a backup (Fiber's).
pub const BACKUP_WALLET_KEY: &str = "key";

/// The manifest of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    pub format_version: u32,
    pub backend: Backend,
    /// Compressed node public key, hex: which node this backup belongs to.
    pub node_pubkey: String,
    /// Compressed wallet public key, hex.
    pub wallet_pubkey: String,
    pub created_at_unix_ms: u64,
    /// Version of dlp-node that wrote it.
    pub node_version: String,
    /// Every file of the backup except the manifest, sorted by path.
    pub files: Vec<ManifestFile>,
}

/// One file listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Path relative to the backup directory, `/`-separated.
    pub path: String,
    pub size: u64,
}

/// A finished backup.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    pub dir: PathBuf,
    pub manifest: BackupManifest,
}

impl BackupInfo {
    /// Total bytes of the backup's files (hard-linked RocksDB files included).
    pub fn total_bytes(&self) -> u64 {
        self.manifest.files.iter().map(|f| f.size).sum()
    }
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup target {} already exists; a backup never overwrites an existing path", .0.display())]
    TargetExists(PathBuf),
    #[error("backup to {}: {op}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("backup to {}: {source}", dir.display())]
    Store {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
}

/// Take a hot backup of `store` and `base`'s key files into `target`, which must not exist.
///
/// Safe while other threads write to `store`: the database copy is one consistent point in time
/// (see [`Store::backup_to`]).
pub fn create_backup(
    store: &dyn Store,
    base: &BaseDir,
    keys: &NodeKeys,
    target: &Path,
) -> Result<BackupInfo, BackupError> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|source| BackupError::Io {
            op: "create parent directory",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    match std::fs::create_dir(target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::TargetExists(target.to_path_buf()));
        }
        Err(source) => {
            return Err(BackupError::Io {
                op: "create backup directory",
                path: target.to_path_buf(),
                source,
            });
        }
    }
    let result = fill_backup(store, base, keys, target);
    if result.is_err() {
        // We created the directory a moment ago; nothing else can be in it.
        let _ = std::fs::remove_dir_all(target);
    }
    result
}

fn fill_backup(
    store: &dyn Store,
    base: &BaseDir,
    keys: &NodeKeys,
    target: &Path,
) -> Result<BackupInfo, BackupError> {
    let created_at_unix_ms = fsutil::unix_ms();
    store.backup_to(target).map_err(|source| match source {
        StoreError::BackupTargetExists(path) => BackupError::TargetExists(path),
        source => BackupError::Store {
            dir: target.to_path_buf(),
            source,
        },
    })?;
    for (from, name) in [
        (base.node_key(), BACKUP_NODE_KEY),
        (base.wallet_key(), BACKUP_WALLET_KEY),
    ] {
        let bytes = std::fs::read(&from).map_err(|source| BackupError::Io {
            op: "read key file",
            path: from.clone(),
            source,
        })?;
        let to = target.join(name);
        fsutil::write_new(&to, &bytes, KEY_FILE_MODE).map_err(|source| BackupError::Io {
            op: "write key copy",
            path: to,
            source,
        })?;
    }
    let files = fsutil::list_files(target)
        .map_err(|source| BackupError::Io {
            op: "list backup files",
            path: target.to_path_buf(),
            source,
        })?
        .into_iter()
        .map(|f| ManifestFile {
            path: f.relative,
            size: f.size,
        })
        .collect();
    let manifest = BackupManifest {
        format_version: MANIFEST_FORMAT_VERSION,
        backend: store.backend(),
        node_pubkey: keys.node_pubkey_hex(),
        wallet_pubkey: keys.wallet_pubkey_hex(),
        created_at_unix_ms,
        node_version: env!("CARGO_PKG_VERSION").to_string(),
        files,
    };
    let manifest_path = target.join(MANIFEST_FILE);
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    fsutil::write_new(&manifest_path, &json, 0o644).map_err(|source| BackupError::Io {
        op: "write manifest",
        path: manifest_path,
        source,
    })?;
    fsutil::sync_dir(target).map_err(|source| BackupError::Io {
        op: "sync backup directory",
        path: target.to_path_buf(),
        source,
    })?;
    Ok(BackupInfo {
        dir: target.to_path_buf(),
        manifest,
    })
}

/// Names node backups `<base>/fiber/backups/<unix_ms>/`, strictly increasing even when two
/// backups are asked for within one millisecond (the second gets the next free millisecond
/// rather than failing on an existing directory).
#[derive(Debug, Default)]
pub struct BackupNamer {
    last_ms: Mutex<u64>,
}

impl BackupNamer {
    /// The next backup directory under `base`.
    pub fn next_dir(&self, base: &BaseDir) -> PathBuf {
        let mut last = self.last_ms.lock().unwrap_or_else(|p| p.into_inner());
        let ms = fsutil::unix_ms().max(*last + 1);
        *last = ms;
        base.backups_dir().join(ms.to_string())
    }
}

/// Read and parse a backup's manifest.
pub fn read_manifest(backup_dir: &Path) -> Result<BackupManifest, ManifestError> {
    let path = backup_dir.join(MANIFEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ManifestError::Missing(path));
        }
        Err(source) => return Err(ManifestError::Read { path, source }),
    };
    let manifest: BackupManifest =
        serde_json::from_slice(&bytes).map_err(|e| ManifestError::Malformed {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    if manifest.format_version != MANIFEST_FORMAT_VERSION {
        return Err(ManifestError::UnsupportedVersion {
            path,
            found: manifest.format_version,
        });
    }
    Ok(manifest)
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "{} is missing: not a dlp-node backup, or a backup that was interrupted before it finished",
        .0.display()
    )]
    Missing(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid backup manifest: {detail}", path.display())]
    Malformed { path: PathBuf, detail: String },
    #[error("{}: manifest format {found} is not supported (this build reads {MANIFEST_FORMAT_VERSION})", path.display())]
    UnsupportedVersion { path: PathBuf, found: u32 },
}
