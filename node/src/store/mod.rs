//! The key-value store every piece of node state lives in.
//!
//! The node never talks to RocksDB or SQLite directly: it talks to [`Store`], and the backend is
//! chosen per node in its config (`store.backend`). Keeping the contract in one trait is what lets
//! the harness run every scenario against both engines and demand that they agree.
//!
//! Both backends keep their files in one directory (`<base>/fiber/store/`), and both can take a
//! consistent *hot* backup of themselves while writers keep going ([`Store::backup_to`]).

mod rocks;
mod sqlite;

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

pub(crate) use dlp_node_api::files::SQLITE_FILE_NAME;
pub(crate) use rocks::RocksStore;
pub(crate) use sqlite::SqliteStore;

pub(crate) use dlp_node_api::config::Backend;
pub(crate) use dlp_node_api::files::ROCKSDB_BACKUP_DIR_NAME;

/// The visitor of [`Store::scan_prefix`]: called with each key and value in order; return
/// [`ControlFlow::Break`] to stop early.
pub type ScanVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> ControlFlow<()> + 'a;

/// Key-value pairs in key order, as returned by [`Store::prefix_entries`].
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One operation of a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BatchOp {
    /// Set `key` to `value`.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Remove `key` (no error if it is absent).
    Delete { key: Vec<u8> },
}

/// A group of writes applied all together or not at all by [`Store::write`].
///
/// Operations apply in the order they were added, so a later put or delete of the same key wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue a put.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(BatchOp::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Queue a delete.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(BatchOp::Delete { key: key.into() });
        self
    }

    /// The queued operations, in order.
    pub(crate) fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    /// Number of queued operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Errors of the storage layer. Every variant names the store (backend and path) involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine reported an error for an operation.
    #[error("{backend} store at {}: {op} failed: {source}", path.display())]
    Engine {
        backend: Backend,
        path: PathBuf,
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A filesystem operation around the engine failed.
    #[error("{backend} store: {op} {}: {source}", path.display())]
    Io {
        backend: Backend,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Keys must be non-empty.
    #[error("{backend} store at {}: empty key rejected (keys must be at least one byte)", path.display())]
    EmptyKey { backend: Backend, path: PathBuf },
    /// A backup target already exists; backups never overwrite.
    #[error("backup target {} already exists; a backup never overwrites an existing path", .0.display())]
    BackupTargetExists(PathBuf),
    /// The engine opened the files but they are not a valid store of this kind.
    #[error("{backend} store at {}: not a valid store: {detail}", path.display())]
    Invalid {
        backend: Backend,
        path: PathBuf,
        detail: String,
    },
}

/// An ordered key-value store: the one storage interface of dlp-node.
///
/// # Contract (checked for every backend by the conformance suite in `tests/storage`)
///
/// - **Keys** are non-empty byte strings; an empty key is rejected with
///   [`StoreError::EmptyKey`]. Values are any byte string, including empty.
/// - **Missing key**: [`get`](Store::get) returns `Ok(None)`; [`delete`](Store::delete) of a
///   missing key succeeds and changes nothing. Neither is an error.
/// - **Overwrite**: [`put`](Store::put) on an existing key replaces its value.
/// - **Batch atomicity**: [`write`](Store::write) applies every operation of the batch or none
///   of them; no reader (and no backup, no crash) ever observes part of a batch. Operations
///   within a batch apply in order, so the last write to a key wins.
/// - **Iteration order**: [`scan_prefix`](Store::scan_prefix) visits exactly the keys that start
///   with the prefix, in ascending unsigned-bytewise order (`memcmp`, shorter first on a tie),
///   which is the same on every backend. An empty prefix visits every key. The visitor may stop
///   early by returning [`ControlFlow::Break`]. The visitor must not call back into the same
///   store (SQLite holds its connection while iterating).
/// - **Durability**: once a write (`put`, `delete`, `write`) returns `Ok`, it is on stable storage:
///   it survives closing and reopening the store and a crash of the process or the machine.
/// - **Hot backup**: [`backup_to`](Store::backup_to) captures one consistent point in time (a
///   whole number of batches) while other threads keep writing.
pub trait Store: Send + Sync + fmt::Debug {
    /// Which engine this is.
    fn backend(&self) -> Backend;

    /// The store's directory.
    fn path(&self) -> &Path;

    /// The value of `key`, or `None` when absent.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Set `key` to `value`, durably.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// Remove `key`, durably; absent keys are fine.
    fn delete(&self, key: &[u8]) -> Result<(), StoreError>;

    /// Apply `batch` atomically and durably.
    fn write(&self, batch: &WriteBatch) -> Result<(), StoreError>;

    /// Visit every entry whose key starts with `prefix`, in ascending key order.
    fn scan_prefix(&self, prefix: &[u8], visit: &mut ScanVisitor<'_>) -> Result<(), StoreError>;

    /// Write a consistent copy of the store into the existing, empty directory `target`:
    /// RocksDB as a checkpoint in `target/db`, SQLite as `target/data.sqlite` (rollback-journal
    /// mode, no `-wal`/`-shm`). Safe while other threads write.
    fn backup_to(&self, target: &Path) -> Result<(), StoreError>;

    /// Every entry under `prefix`, in ascending key order (convenience over
    /// [`scan_prefix`](Store::scan_prefix)).
    fn prefix_entries(&self, prefix: &[u8]) -> Result<Entries, StoreError> {
        let mut out = Vec::new();
        self.scan_prefix(prefix, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}

/// Open (creating if needed) the store of `backend` in directory `dir`.
pub fn open_store(backend: Backend, dir: &Path) -> Result<Box<dyn Store>, StoreError> {
    Ok(match backend {
        Backend::Rocksdb => Box::new(RocksStore::open(dir)?),
        Backend::Sqlite => Box::new(SqliteStore::open(dir)?),
    })
}

/// The smallest key greater than every key starting with `prefix`, or `None` when no such key
/// exists (empty prefix, or all bytes `0xff`). Used as an exclusive upper bound for scans.
pub(crate) fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last != u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_increments_last_non_max_byte() {
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_upper_bound(&[0xff, 0xff]), None);
        assert_eq!(prefix_upper_bound(&[]), None);
    }

    #[test]
    fn backend_parses_its_own_spelling_only() {
        for backend in Backend::ALL {
            assert_eq!(backend.as_str().parse::<Backend>(), Ok(backend));
        }
        let err = "RocksDB".parse::<Backend>().expect_err("must fail");
        assert!(err.contains("\"RocksDB\""), "{err}");
    }
}
