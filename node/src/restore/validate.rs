//! Validation of a backup before anything moves: every check restore can make without
//! modifying the backup or the node.
//!
//! Order, cheapest first, each refusal naming what is wrong:
//! 1. the manifest is present, of a known format, and (unless the caller explicitly accepts
//!    format 1) carries a SHA-256 digest for every file;
//! 2. its backend is the node's configured one;
//! 3. every listed file is present with its recorded size (truncation is named by file);
//! 4. every present listed file hashes to its recorded digest (any changed byte, in any file,
//!    including the parts of a database its engine does not checksum);
//! 5. the key copies belong to the manifest's node and wallet, and the backup to this node;
//! 6. the database opens read-only and reads back whole (RocksDB: every block checksummed;
//!    SQLite: `quick_check`), and every entry decodes as the node will decode it at start
//!    ([`RecordCheck`]).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::backup::{BACKUP_NODE_KEY, BACKUP_WALLET_KEY, BackupManifest, read_manifest};
use crate::core::records::RecordCheck;
use crate::fsutil::{self, FileEntry};
use crate::keys;
use crate::store::{Backend, ROCKSDB_BACKUP_DIR_NAME, RocksStore, SQLITE_FILE_NAME, SqliteStore};

use super::RestoreError;

/// A backup that passed validation.
#[derive(Debug, Clone)]
pub(crate) struct ValidatedBackup {
    /// Entries in the database, as read during verification.
    pub entries: u64,
    /// Database files to copy, relative to [`db_root`](Self::db_root).
    pub db_files: Vec<FileEntry>,
    /// Directory the database files are relative to.
    pub db_root: PathBuf,
    /// True when both `sk` and `key` are present and match the manifest.
    pub has_key_pair: bool,
    /// True when the files' content was checked against digests (false only for a format 1
    /// manifest accepted with [`ValidateOptions::accept_undigested`]).
    pub digests_verified: bool,
    /// Bytes hashed to verify the digests, and the time it took.
    pub bytes_verified: u64,
    pub digest_time: std::time::Duration,
}

/// Knobs of validation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ValidateOptions {
    /// Accept a format 1 manifest (sizes only, no digests): its files' content cannot be
    /// checked, so damage that keeps a database readable goes unnoticed. Off by default; the
    /// CLI's `--accept-undigested-backup`.
    pub accept_undigested: bool,
}

/// Check a backup without modifying it. `this_node` is the current node's public key (hex),
/// when the base directory has a readable one.
pub(crate) fn validate_backup(
    backup_dir: &Path,
    configured: Backend,
    this_node: Option<&str>,
    options: ValidateOptions,
) -> Result<ValidatedBackup, RestoreError> {
    if !backup_dir.is_dir() {
        return Err(RestoreError::BackupNotFound(backup_dir.to_path_buf()));
    }
    let manifest = read_manifest(backup_dir)?;
    if !manifest.has_digests() && !options.accept_undigested {
        return Err(RestoreError::NoDigests {
            dir: backup_dir.to_path_buf(),
            format: manifest.format_version,
        });
    }
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
    let mut to_hash = Vec::new();
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
            Some(_) => to_hash.push((path, listed)),
        }
    }
    let digest_started = std::time::Instant::now();
    let mut bytes_verified = 0;
    for (path, listed) in &to_hash {
        let Some(expected) = listed.sha256.as_deref() else {
            continue;
        };
        let (size, actual) =
            fsutil::sha256_file(path).map_err(|source| RestoreError::Unreadable {
                dir: path.clone(),
                source,
            })?;
        bytes_verified += size;
        if actual != expected {
            return Err(RestoreError::DigestMismatch {
                path: path.clone(),
                expected: expected.to_string(),
                actual,
            });
        }
    }

    let digest_time = digest_started.elapsed();
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

    let mut check = RecordCheck::default();
    let mut bad_record = None;
    let mut visit = |key: &[u8], value: &[u8]| match check.check(key, value) {
        Ok(()) => ControlFlow::Continue(()),
        Err(bad) => {
            bad_record = Some(bad);
            ControlFlow::Break(())
        }
    };
    let entries = match manifest.backend {
        Backend::Rocksdb => RocksStore::verify_readonly(&db_root, &mut visit),
        Backend::Sqlite => {
            SqliteStore::verify_readonly(&db_root.join(SQLITE_FILE_NAME), &mut visit)
        }
    }
    .map_err(RestoreError::CorruptDatabase)?;
    if let Some(bad) = bad_record {
        return Err(RestoreError::BadRecord {
            dir: backup_dir.to_path_buf(),
            record: bad,
        });
    }
    let records = check.finish();
    tracing::debug!(backup = %backup_dir.display(), ?records, "every record of the backup decodes");

    Ok(ValidatedBackup {
        digests_verified: manifest.has_digests(),
        entries,
        db_files,
        db_root,
        has_key_pair,
        bytes_verified,
        digest_time,
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
