//! SQLite backend: one file `data.sqlite` in WAL mode inside the store directory, table
//! `kv_store(key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID` (the layout Fiber uses).
//!
//! `synchronous = FULL` makes every committed transaction durable, as the [`Store`] contract
//! demands (WAL's usual `NORMAL` may lose the last commits on power loss). Writes go through one
//! connection behind a mutex. Hot backups use the online backup API from a *separate* read-only
//! connection in a single `step(-1)`: the step reads one WAL snapshot, so writers on the main
//! connection keep going and the copy never restarts (an incremental backup restarts on every
//! concurrent write).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{Backend, BatchOp, SQLITE_FILE_NAME, ScanVisitor, Store, StoreError, WriteBatch};
use crate::fsutil;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on backup steps that report Busy/Locked before giving up.
const MAX_BACKUP_RETRIES: u32 = 1000;

/// A SQLite-backed [`Store`].
#[derive(Debug)]
pub(crate) struct SqliteStore {
    dir: PathBuf,
    file: PathBuf,
    conn: Mutex<Connection>,
}

fn engine_err(path: &Path, op: &'static str, source: rusqlite::Error) -> StoreError {
    StoreError::Engine {
        backend: Backend::Sqlite,
        path: path.to_path_buf(),
        op,
        source: Box::new(source),
    }
}

impl SqliteStore {
    /// Open or create `dir/data.sqlite`.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            backend: Backend::Sqlite,
            op: "create store directory",
            path: dir.to_path_buf(),
            source,
        })?;
        let file = dir.join(SQLITE_FILE_NAME);
        let conn = Connection::open(&file).map_err(|e| engine_err(&file, "open", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| engine_err(&file, "set busy timeout", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| engine_err(&file, "enable WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid {
                backend: Backend::Sqlite,
                path: file,
                detail: format!("journal_mode is {mode:?} after asking for WAL"),
            });
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS kv_store (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID;",
        )
        .map_err(|e| engine_err(&file, "initialise schema", e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            conn: Mutex::new(conn),
        })
    }

    /// Open an existing database file read-only, run `PRAGMA quick_check`, check that it has
    /// the `kv_store` table, and hand every entry to `visit` in key order (it may stop the read
    /// early). Returns the number of entries read. `quick_check` is structural only: it does not
    /// see a changed byte inside a record, which is why backups also carry content digests.
    ///
    /// This is how restore decides that a backup's `data.sqlite` is whole before anything moves.
    pub(crate) fn verify_readonly(
        file: &Path,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<u64, StoreError> {
        let invalid = |detail: String| StoreError::Invalid {
            backend: Backend::Sqlite,
            path: file.to_path_buf(),
            detail,
        };
        let header = fsutil::read_prefix(file, 16).map_err(|source| StoreError::Io {
            backend: Backend::Sqlite,
            op: "read header of",
            path: file.to_path_buf(),
            source,
        })?;
        if header != b"SQLite format 3\0" {
            return Err(invalid(
                "missing the SQLite header: not a SQLite database".into(),
            ));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(file, flags)
            .map_err(|e| engine_err(file, "open read-only", e))?;
        let mut check = conn
            .prepare("PRAGMA quick_check")
            .map_err(|e| engine_err(file, "integrity check", e))?;
        let problems: Vec<String> = check
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| engine_err(file, "integrity check", e))?;
        if problems != ["ok"] {
            return Err(invalid(format!(
                "integrity check failed: {}",
                problems.join("; ")
            )));
        }
        let table: Option<String> = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kv_store'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| engine_err(file, "read schema", e))?;
        if table.is_none() {
            return Err(invalid("no kv_store table: not a dlp-node store".into()));
        }
        let mut stmt = conn
            .prepare("SELECT key, value FROM kv_store ORDER BY key")
            .map_err(|e| engine_err(file, "read every entry", e))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| engine_err(file, "read every entry", e))?;
        let mut entries = 0u64;
        while let Some(row) = rows
            .next()
            .map_err(|e| engine_err(file, "read every entry", e))?
        {
            // A key or value stored as another SQLite type is damage, not a record.
            let blob = |i: usize| {
                row.get_ref(i)
                    .and_then(|v| v.as_blob().map_err(Into::into))
                    .map_err(|e| engine_err(file, "read every entry", e))
            };
            let (key, value) = (blob(0)?, blob(1)?);
            entries += 1;
            if visit(key, value).is_break() {
                break;
            }
        }
        Ok(entries)
    }

    fn check_key(&self, key: &[u8]) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::EmptyKey {
                backend: Backend::Sqlite,
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is still safe to use.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

const PUT_SQL: &str = "INSERT INTO kv_store (key, value) VALUES (?1, ?2)
                       ON CONFLICT(key) DO UPDATE SET value = excluded.value";
const DELETE_SQL: &str = "DELETE FROM kv_store WHERE key = ?1";

impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_key(key)?;
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT value FROM kv_store WHERE key = ?1")
            .map_err(|e| engine_err(&self.file, "get", e))?;
        stmt.query_row(params![key], |row| row.get::<_, Vec<u8>>(0))
            .optional()
            .map_err(|e| engine_err(&self.file, "get", e))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.check_key(key)?;
        let conn = self.conn();
        conn.prepare_cached(PUT_SQL)
            .and_then(|mut stmt| stmt.execute(params![key, value]))
            .map(drop)
            .map_err(|e| engine_err(&self.file, "put", e))
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.check_key(key)?;
        let conn = self.conn();
        conn.prepare_cached(DELETE_SQL)
            .and_then(|mut stmt| stmt.execute(params![key]))
            .map(drop)
            .map_err(|e| engine_err(&self.file, "delete", e))
    }

    fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        for op in batch.ops() {
            match op {
                BatchOp::Put { key, .. } | BatchOp::Delete { key } => self.check_key(key)?,
            }
        }
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(|e| engine_err(&self.file, "begin batch", e))?;
        {
            let mut put = tx
                .prepare_cached(PUT_SQL)
                .map_err(|e| engine_err(&self.file, "write batch", e))?;
            let mut delete = tx
                .prepare_cached(DELETE_SQL)
                .map_err(|e| engine_err(&self.file, "write batch", e))?;
            for op in batch.ops() {
                let result = match op {
                    BatchOp::Put { key, value } => put.execute(params![key, value]),
                    BatchOp::Delete { key } => delete.execute(params![key]),
                };
                result.map_err(|e| engine_err(&self.file, "write batch", e))?;
            }
        }
        // Dropping `tx` without commit (on any error above) rolls the whole batch back.
        tx.commit()
            .map_err(|e| engine_err(&self.file, "commit batch", e))
    }

    fn scan_prefix(&self, prefix: &[u8], visit: &mut ScanVisitor<'_>) -> Result<(), StoreError> {
        let conn = self.conn();
        let upper = super::prefix_upper_bound(prefix);
        // BLOB comparison in SQLite is memcmp then length: the same order as RocksDB's
        // bytewise comparator.
        let sql = if upper.is_some() {
            "SELECT key, value FROM kv_store WHERE key >= ?1 AND key < ?2 ORDER BY key"
        } else {
            "SELECT key, value FROM kv_store WHERE key >= ?1 ORDER BY key"
        };
        let mut stmt = conn
            .prepare_cached(sql)
            .map_err(|e| engine_err(&self.file, "scan prefix", e))?;
        let mut rows = match &upper {
            Some(upper) => stmt.query(params![prefix, upper]),
            None => stmt.query(params![prefix]),
        }
        .map_err(|e| engine_err(&self.file, "scan prefix", e))?;
        while let Some(row) = rows
            .next()
            .map_err(|e| engine_err(&self.file, "scan prefix", e))?
        {
            let key = row
                .get_ref(0)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(|e| engine_err(&self.file, "scan prefix", e))?;
            let value = row
                .get_ref(1)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(|e| engine_err(&self.file, "scan prefix", e))?;
            if visit(key, value).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn backup_to(&self, target: &Path) -> Result<(), StoreError> {
        let dest_file = target.join(SQLITE_FILE_NAME);
        if dest_file.exists() {
            return Err(StoreError::BackupTargetExists(dest_file));
        }
        let io_err = |op: &'static str, path: &Path, source: std::io::Error| StoreError::Io {
            backend: Backend::Sqlite,
            op,
            path: path.to_path_buf(),
            source,
        };
        let source = Connection::open_with_flags(
            &self.file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| engine_err(&self.file, "open backup source", e))?;
        source
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| engine_err(&self.file, "open backup source", e))?;
        let mut dest =
            Connection::open(&dest_file).map_err(|e| engine_err(&dest_file, "create backup", e))?;
        {
            let backup =
                Backup::new(&source, &mut dest).map_err(|e| engine_err(&dest_file, "backup", e))?;
            let mut retries = 0;
            loop {
                match backup
                    .step(-1)
                    .map_err(|e| engine_err(&dest_file, "backup step", e))?
                {
                    StepResult::Done => break,
                    StepResult::More => continue,
                    StepResult::Busy | StepResult::Locked => {
                        retries += 1;
                        if retries > MAX_BACKUP_RETRIES {
                            return Err(StoreError::Invalid {
                                backend: Backend::Sqlite,
                                path: self.file.clone(),
                                detail: format!(
                                    "online backup stayed busy/locked after {MAX_BACKUP_RETRIES} tries"
                                ),
                            });
                        }
                        std::thread::yield_now();
                    }
                    _ => continue,
                }
            }
        }
        // The copy carries the source's WAL flag in its header; a backup is a single
        // self-contained file, so switch it to a rollback journal (this also removes -wal/-shm).
        let mode: String = dest
            .query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))
            .map_err(|e| engine_err(&dest_file, "set backup journal mode", e))?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(StoreError::Invalid {
                backend: Backend::Sqlite,
                path: dest_file,
                detail: format!("backup journal_mode is {mode:?}, expected delete"),
            });
        }
        dest.close()
            .map_err(|(_, e)| engine_err(&dest_file, "close backup", e))?;
        drop(source);
        fsutil::sync_file(&dest_file).map_err(|e| io_err("sync", &dest_file, e))?;
        fsutil::sync_dir(target).map_err(|e| io_err("sync", target, e))
    }
}
