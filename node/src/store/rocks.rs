//! RocksDB backend: the store directory is the database directory.
//!
//! Every write uses `sync = true` so that a returned `Ok` means the write-ahead log reached
//! stable storage (the durability point of the [`Store`] contract). Hot backups use RocksDB's
//! Checkpoint: hard links to the immutable SST files plus a copy of the small live files, so a
//! backup costs about a millisecond at any store size and no extra space until compaction.

use std::path::{Path, PathBuf};

use rocksdb::{DB, IteratorMode, Options, ReadOptions, WriteOptions, checkpoint::Checkpoint};

use super::{
    Backend, BatchOp, ROCKSDB_BACKUP_DIR_NAME, ScanVisitor, Store, StoreError, WriteBatch,
};
use crate::fsutil;

/// A RocksDB-backed [`Store`].
pub(crate) struct RocksStore {
    path: PathBuf,
    db: DB,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.path)
            .finish()
    }
}

fn engine_err(path: &Path, op: &'static str, source: rocksdb::Error) -> StoreError {
    StoreError::Engine {
        backend: Backend::Rocksdb,
        path: path.to_path_buf(),
        op,
        source: Box::new(source),
    }
}

fn base_options() -> Options {
    let mut opts = Options::default();
    opts.set_paranoid_checks(true);
    // Keep RocksDB's own info LOG small: stores are many and short-lived in tests.
    opts.set_keep_log_file_num(2);
    opts
}

impl RocksStore {
    /// Open or create the database in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        let mut opts = base_options();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir).map_err(|e| engine_err(dir, "open", e))?;
        Ok(Self {
            path: dir.to_path_buf(),
            db,
        })
    }

    /// Open an existing database read-only and read every entry with checksum verification,
    /// handing each to `visit` in key order (it may stop the read early).
    ///
    /// This is how restore decides that a backup's `db/` is a whole, uncorrupted database
    /// before anything is moved. Returns the number of entries read.
    pub(crate) fn verify_readonly(
        dir: &Path,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<u64, StoreError> {
        if !dir.join("CURRENT").is_file() {
            return Err(StoreError::Invalid {
                backend: Backend::Rocksdb,
                path: dir.to_path_buf(),
                detail: "no CURRENT file: not a RocksDB database directory".into(),
            });
        }
        // Even a read-only open writes an info LOG into the database directory; send it to a
        // scratch directory so verifying a backup leaves the backup byte-for-byte unchanged.
        let log_dir = tempfile::tempdir().map_err(|source| StoreError::Io {
            backend: Backend::Rocksdb,
            op: "create scratch log directory for",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut opts = base_options();
        opts.create_if_missing(false);
        opts.set_db_log_dir(log_dir.path());
        let db = DB::open_for_read_only(&opts, dir, false)
            .map_err(|e| engine_err(dir, "open read-only", e))?;
        let mut read_opts = ReadOptions::default();
        read_opts.set_verify_checksums(true);
        read_opts.fill_cache(false);
        let mut entries = 0u64;
        for item in db.iterator_opt(IteratorMode::Start, read_opts) {
            let (key, value) =
                item.map_err(|e| engine_err(dir, "read every entry (checksum verification)", e))?;
            entries += 1;
            if visit(&key, &value).is_break() {
                break;
            }
        }
        Ok(entries)
    }

    fn sync_writes() -> WriteOptions {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        opts
    }

    fn check_key(&self, key: &[u8]) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::EmptyKey {
                backend: Backend::Rocksdb,
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}

impl Store for RocksStore {
    fn backend(&self) -> Backend {
        Backend::Rocksdb
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_key(key)?;
        self.db
            .get(key)
            .map_err(|e| engine_err(&self.path, "get", e))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.check_key(key)?;
        self.db
            .put_opt(key, value, &Self::sync_writes())
            .map_err(|e| engine_err(&self.path, "put", e))
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.check_key(key)?;
        self.db
            .delete_opt(key, &Self::sync_writes())
            .map_err(|e| engine_err(&self.path, "delete", e))
    }

    fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.ops() {
            match op {
                BatchOp::Put { key, value } => {
                    self.check_key(key)?;
                    rocks_batch.put(key, value);
                }
                BatchOp::Delete { key } => {
                    self.check_key(key)?;
                    rocks_batch.delete(key);
                }
            }
        }
        self.db
            .write_opt(rocks_batch, &Self::sync_writes())
            .map_err(|e| engine_err(&self.path, "write batch", e))
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut ScanVisitor<'_>) -> Result<(), StoreError> {
        let mut read_opts = ReadOptions::default();
        if let Some(bound) = super::prefix_upper_bound(prefix) {
            read_opts.set_iterate_upper_bound(bound);
        }
        let mode = IteratorMode::From(prefix, rocksdb::Direction::Forward);
        for item in self.db.iterator_opt(mode, read_opts) {
            let (key, value) = item.map_err(|e| engine_err(&self.path, "scan prefix", e))?;
            if !key.starts_with(prefix) {
                break;
            }
            if visit(&key, &value).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn backup_to(&self, target: &Path) -> Result<(), StoreError> {
        let checkpoint_dir = target.join(ROCKSDB_BACKUP_DIR_NAME);
        if checkpoint_dir.exists() {
            return Err(StoreError::BackupTargetExists(checkpoint_dir));
        }
        let checkpoint = Checkpoint::new(&self.db)
            .map_err(|e| engine_err(&self.path, "prepare checkpoint", e))?;
        // log_size_for_flush = 0 (the default) flushes the memtable first, so the checkpoint
        // holds SST files only plus an empty WAL: the smallest consistent copy.
        checkpoint
            .create_checkpoint(&checkpoint_dir)
            .map_err(|e| engine_err(&self.path, "create checkpoint", e))?;
        fsutil::sync_dir(target).map_err(|source| StoreError::Io {
            backend: Backend::Rocksdb,
            op: "sync backup directory",
            path: target.to_path_buf(),
            source,
        })
    }
}
