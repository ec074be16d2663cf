//! Where things live in a node's base directory. The layout is Fiber's (`fnn -d <base>`):
//!
//! ```text
//! <base>/config.toml            default config path
//! <base>/node.lock              exclusive lock held while the node runs (or a restore works)
//! <base>/fiber/sk               node secret key (32 raw bytes, 0600)
//! <base>/ckb/key                wallet secret key (hex, 0600)
//! <base>/fiber/store/           the database (RocksDB files, or data.sqlite)
//! <base>/fiber/store.bak.<ms>/  the store a restore replaced (never deleted by us)
//! <base>/fiber/backups/<ms>/    backups taken by the node
//! ```

use std::path::{Path, PathBuf};

/// Paths inside one node's base directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDir {
    root: PathBuf,
}

impl BaseDir {
    /// Wrap a base directory path (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The base directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<base>/config.toml`.
    pub fn default_config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// `<base>/node.lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("node.lock")
    }

    /// `<base>/fiber`.
    pub fn fiber_dir(&self) -> PathBuf {
        self.root.join("fiber")
    }

    /// `<base>/ckb`.
    pub(crate) fn ckb_dir(&self) -> PathBuf {
        self.root.join("ckb")
    }

    /// `<base>/fiber/sk`: the node's secret key.
    /// `fiber/restore_epoch`: how many restores this base directory has seen. Never part of a
    /// backup, so it only grows; seeded randomness mixes it in (see `core`).
    pub(crate) fn restore_epoch(&self) -> PathBuf {
        self.fiber_dir().join("restore_epoch")
    }

    /// Read the restore epoch (0 when absent or unreadable).
    pub(crate) fn read_restore_epoch(&self) -> u64 {
        std::fs::read_to_string(self.restore_epoch())
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn node_key(&self) -> PathBuf {
        self.fiber_dir().join("sk")
    }

    /// `<base>/ckb/key`: the wallet's secret key.
    pub fn wallet_key(&self) -> PathBuf {
        self.ckb_dir().join("key")
    }

    /// `<base>/fiber/store`.
    pub fn store_dir(&self) -> PathBuf {
        self.fiber_dir().join("store")
    }

    /// `<base>/fiber/store.bak.<ms>`: where restore moves the replaced store.
    pub fn store_bak(&self, unix_ms: u64) -> PathBuf {
        self.fiber_dir().join(format!("store.bak.{unix_ms}"))
    }

    /// `<base>/fiber/store.restoring.<ms>`: restore's staging copy before the swap.
    pub(crate) fn store_staging(&self, unix_ms: u64) -> PathBuf {
        self.fiber_dir().join(format!("store.restoring.{unix_ms}"))
    }

    /// `<base>/fiber/backups`.
    pub fn backups_dir(&self) -> PathBuf {
        self.fiber_dir().join("backups")
    }
}
