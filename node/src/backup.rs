//! Hot backups and their manifest.
//!
//! A backup directory holds the database copy (`db/` for RocksDB, `data.sqlite` for SQLite),
//! copies of the key files (`key`, `sk`), and `dlp-backup.json`, the manifest. The manifest is
//! written last and fsynced: a directory without it is an interrupted backup, and restore
//! refuses it. It records what restore needs to validate the backup before touching anything:
//! format version, backend, the node's public keys, and every file with its size and SHA-256
//! digest. The size catches a truncated or missing file by name, cheaply; the digest catches
//! damage the engines do not: a flipped byte inside a live SQLite record passes SQLite's
//! structural checks and would restore a wrong balance, commitment number or payout key, and
//! RocksDB's block checksums do not cover its OPTIONS file. Format 1 manifests (sizes only)
//! are still read, and restore refuses them unless told otherwise (see `restore`).
//!
//! A backup never overwrites: the target directory must not exist. If a backup fails midway,
//! the directory it created is removed, so no half backup is left that looks usable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::keys::{KEY_FILE_MODE, NodeKeys};
use crate::layout::BaseDir;
use crate::store::{Backend, Store, StoreError};

/// File name of the manifest inside a backup directory.
pub const MANIFEST_FILE: &str = dlp_node_api::BACKUP_MANIFEST_FILE;
/// Manifest format this build writes: 2 = every file with its SHA-256 digest.
pub(crate) const MANIFEST_FORMAT_VERSION: u32 = 2;
/// The older format this build still reads: sizes only, no digests.
pub const MANIFEST_FORMAT_WITHOUT_DIGESTS: u32 = 1;
/// Name of the node key copy inside a backup (Fiber's).
pub(crate) const BACKUP_NODE_KEY: &str = "sk";
/// Name of the wallet key copy inside a backup (Fiber's).
pub(crate) const BACKUP_WALLET_KEY: &str = "key";

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

impl BackupManifest {
    /// True when every file carries a content digest (format 2 and later).
    pub(crate) fn has_digests(&self) -> bool {
        self.format_version >= MANIFEST_FORMAT_VERSION
    }
}

/// One file listed in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Path relative to the backup directory, `/`-separated.
    pub path: String,
    pub size: u64,
    /// SHA-256 of the file's content, lower-case hex (format 2; absent in format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A finished backup.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    pub dir: PathBuf,
    pub manifest: BackupManifest,
    /// Time spent computing the files' digests (part of the backup's time).
    pub digest_time: std::time::Duration,
}

impl BackupInfo {
    /// Total bytes of the backup's files (hard-linked RocksDB files included).
    pub(crate) fn total_bytes(&self) -> u64 {
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

/// Digests of immutable files by identity, so that repeated backups of a large RocksDB store
/// hash only what is new since the last one.
///
/// A RocksDB checkpoint hard-links the store's SST files, which RocksDB never modifies after
/// writing them: the same inode with the same size and mtime has the same content. Only files
/// named `*.sst` are cached; everything else (MANIFEST, OPTIONS, WAL, SQLite's copy) is hashed
/// every time. The cache keeps only the files of the latest backup, so it stays as small as the
/// store's file count. A cached digest is the content as first seen: if an SST later rots on
/// disk, restore's verification refuses it instead of trusting the damage.
#[derive(Debug, Default)]
pub struct DigestCache {
    known: Mutex<HashMap<FileIdentity, String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
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
    create_backup_with(store, base, keys, target, None)
}

/// [`create_backup`] reusing the digests of unchanged immutable files from earlier backups.
pub fn create_backup_with(
    store: &dyn Store,
    base: &BaseDir,
    keys: &NodeKeys,
    target: &Path,
    cache: Option<&DigestCache>,
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
    let result = fill_backup(store, base, keys, target, cache);
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
    cache: Option<&DigestCache>,
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
    let listed = fsutil::list_files(target).map_err(|source| BackupError::Io {
        op: "list backup files",
        path: target.to_path_buf(),
        source,
    })?;
    let digest_started = std::time::Instant::now();
    let mut known = cache.map(|c| c.known.lock().unwrap_or_else(|p| p.into_inner()));
    let mut seen = HashMap::new();
    let mut files = Vec::with_capacity(listed.len());
    for f in listed {
        let path = target.join(&f.relative);
        let digest_err = |source| BackupError::Io {
            op: "compute the digest of",
            path: path.clone(),
            source,
        };
        let identity = match &known {
            Some(_) if f.relative.ends_with(".sst") => Some(FileIdentity::of(
                &std::fs::metadata(&path).map_err(digest_err)?,
            )),
            _ => None,
        };
        let cached = identity
            .and_then(|id| known.as_ref().and_then(|k| k.get(&id)).cloned())
            .map(|digest| (f.size, digest));
        let (size, sha256) = match cached {
            Some(hit) => hit,
            None => fsutil::sha256_file(&path).map_err(digest_err)?,
        };
        if let Some(id) = identity {
            seen.insert(id, sha256.clone());
        }
        // The copy must not change under us: a size that moved since the listing means some
        // other process is writing into the backup.
        if size != f.size {
            return Err(BackupError::Io {
                op: "compute the digest of",
                path,
                source: std::io::Error::other(format!(
                    "file changed while the backup was written ({} then {size} bytes)",
                    f.size
                )),
            });
        }
        files.push(ManifestFile {
            path: f.relative,
            size,
            sha256: Some(sha256),
        });
    }
    if let Some(known) = known.as_mut() {
        **known = seen;
    }
    drop(known);
    let digest_time = digest_started.elapsed();
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
        digest_time,
    })
}

/// Names node backups `<base>/fiber/backups/<unix_ms>/`, strictly increasing even when two
/// backups are asked for within one millisecond (the second gets the next free millisecond
/// rather than failing on an existing directory).
#[derive(Debug, Default)]
pub(crate) struct BackupNamer {
    last_ms: Mutex<u64>,
}

impl BackupNamer {
    /// The next backup directory under `base`.
    pub(crate) fn next_dir(&self, base: &BaseDir) -> PathBuf {
        let mut last = self.last_ms.lock().unwrap_or_else(|p| p.into_inner());
        let ms = fsutil::unix_ms().max(*last + 1);
        *last = ms;
        base.backups_dir().join(ms.to_string())
    }
}

/// Retention: delete the oldest complete backups in `<base>/fiber/backups/` beyond the newest
/// `keep` (at least one is always kept, so the newest is never deleted). A backup is a
/// directory named by its unix-ms stamp with a manifest; anything else there (an interrupted
/// backup without a manifest, a directory an operator put there) is never touched. Returns the
/// directories removed, oldest first.
pub(crate) fn prune_backups(base: &BaseDir, keep: u32) -> Result<Vec<PathBuf>, BackupError> {
    let dir = base.backups_dir();
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| BackupError::Io { op, path, source }
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list backups in", &dir)(e)),
    };
    let mut complete: Vec<(u64, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io("list backups in", &dir))?;
        let path = entry.path();
        let Some(stamp) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if path.join(MANIFEST_FILE).is_file() {
            complete.push((stamp, path));
        }
    }
    complete.sort();
    let excess = complete.len().saturating_sub(keep.max(1) as usize);
    let mut removed = Vec::with_capacity(excess);
    for (_, path) in complete.into_iter().take(excess) {
        // The manifest goes first: a deletion cut short leaves a directory without one, which
        // restore refuses as interrupted instead of trusting half a backup.
        std::fs::remove_file(path.join(MANIFEST_FILE))
            .map_err(io("remove the manifest of old backup", &path))?;
        std::fs::remove_dir_all(&path).map_err(io("remove old backup", &path))?;
        tracing::info!(dir = %path.display(), keep, "old backup removed (backup.keep)");
        removed.push(path);
    }
    if !removed.is_empty() {
        fsutil::sync_dir(&dir).map_err(io("sync", &dir))?;
    }
    Ok(removed)
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
    match manifest.format_version {
        MANIFEST_FORMAT_VERSION => {
            for file in &manifest.files {
                let well_formed = file.sha256.as_deref().is_some_and(|d| {
                    d.len() == 64 && d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                });
                if !well_formed {
                    return Err(ManifestError::Malformed {
                        path,
                        detail: format!(
                            "file {:?} has no well-formed sha256 (64 lower-case hex digits)",
                            file.path
                        ),
                    });
                }
            }
        }
        MANIFEST_FORMAT_WITHOUT_DIGESTS => {
            if let Some(file) = manifest.files.iter().find(|f| f.sha256.is_some()) {
                return Err(ManifestError::Malformed {
                    path,
                    detail: format!(
                        "format 1 has no digests, but file {:?} carries one",
                        file.path
                    ),
                });
            }
        }
        found => return Err(ManifestError::UnsupportedVersion { path, found }),
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
    #[error(
        "{}: manifest format {found} is not supported (this build reads formats \
         {MANIFEST_FORMAT_WITHOUT_DIGESTS} and {MANIFEST_FORMAT_VERSION})",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
}
