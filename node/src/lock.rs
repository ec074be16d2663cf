//! The exclusive lock on a base directory.
//!
//! A running node holds it for its whole life; an offline restore takes it too, so a restore
//! can never run against a live node and a node can never start in the middle of a restore.
//! It is an OS file lock (`flock`) on `<base>/node.lock`: it disappears with the process, so a
//! crashed node leaves no stale lock behind. The holder's pid is written into the file for the
//! error message only.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::layout::BaseDir;

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process (or another handle in this one) holds the lock.
    #[error(
        "base directory {} is in use: {} is locked{}; stop the running node first",
        base.display(),
        path.display(),
        holder.as_deref().map(|h| format!(" by pid {h}")).unwrap_or_default()
    )]
    Held {
        base: PathBuf,
        path: PathBuf,
        holder: Option<String>,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held base-directory lock; released when dropped.
#[derive(Debug)]
pub(crate) struct BaseDirLock {
    _file: File,
}

impl BaseDirLock {
    /// Take the lock on `base`, creating the base directory and lock file if needed.
    pub(crate) fn acquire(base: &BaseDir) -> Result<Self, LockError> {
        let path = base.lock_file();
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(base.root()).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().to_string();
                return Err(LockError::Held {
                    base: base.root().to_path_buf(),
                    path,
                    holder: (!holder.is_empty()).then_some(holder),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        write!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(Self { _file: file })
    }
}
