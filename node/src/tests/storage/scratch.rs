//! Scratch nodes (a base directory with keys and an open store), channel records, directory
//! fingerprints and backup damage: the storage tests' helpers. Shared with the process tests
//! (`tests/process/` includes this file), so it names the library's items as they do,
//! `dlp_node::...`, and uses only what the library exports.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dlp_node::backup::{BackupInfo, create_backup};
use dlp_node::channel_record::{ChannelId, ChannelRecord};
use dlp_node::keys::NodeKeys;
use dlp_node::layout::BaseDir;
use dlp_node::store::{Store, open_store};
use dlp_node_api::{Backend, ChannelState};

/// Deadline for anything a test waits on.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// A node base directory with keys and an open store, in a temp dir that lives as long as it.
pub(crate) struct ScratchNode {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) base: BaseDir,
    pub(crate) keys: NodeKeys,
    pub(crate) backend: Backend,
    pub(crate) store: Option<Arc<dyn Store>>,
}

impl ScratchNode {
    pub(crate) fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = BaseDir::new(dir.path().join("node"));
        let (keys, created) = NodeKeys::load_or_create(&base).expect("keys");
        assert!(created);
        let store = Arc::from(open_store(backend, &base.store_dir()).expect("open store"));
        Self {
            dir,
            base,
            keys,
            backend,
            store: Some(store),
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_deref().expect("store is open")
    }

    /// A shared handle to the open store (for writer threads).
    pub(crate) fn shared_store(&self) -> Arc<dyn Store> {
        self.store.clone().expect("store is open")
    }

    pub(crate) fn close(&mut self) {
        self.store = None;
    }

    pub(crate) fn reopen(&mut self) {
        self.store = Some(Arc::from(
            open_store(self.backend, &self.base.store_dir()).expect("reopen"),
        ));
    }

    /// Hot backup into `<tmp>/<name>`.
    pub(crate) fn backup(&self, name: &str) -> BackupInfo {
        create_backup(
            self.store(),
            &self.base,
            &self.keys,
            &self.dir.path().join(name),
        )
        .expect("backup")
    }

    pub(crate) fn all_entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.store().prefix_entries(&[]).expect("scan")
    }
}

/// Restore `backup` into a brand-new base directory (no keys, no store: a fresh machine) and
/// return it as an open scratch node.
pub(crate) fn restore_into_fresh_base(backend: Backend, backup: &Path) -> ScratchNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = BaseDir::new(dir.path().join("node"));
    dlp_node::restore::restore(&base, backend, backup, &Default::default())
        .unwrap_or_else(|e| panic!("restore of {} failed: {e}", backup.display()));
    let keys = NodeKeys::load(&base).expect("restored keys");
    let store = Arc::from(open_store(backend, &base.store_dir()).expect("open restored store"));
    ScratchNode {
        dir,
        base,
        keys,
        backend,
        store: Some(store),
    }
}

/// One channel record.
pub(crate) fn channel(id: u8, state: ChannelState) -> ChannelRecord {
    ChannelRecord::new(
        ChannelId([id; 32]),
        format!("02{}", hex::encode([id; 32])),
        state,
        u64::from(id) + 10,
        u64::from(id) + 9,
    )
}

/// Every regular file under `root` with its full contents, for byte-identity checks.
pub(crate) fn fingerprint(root: &Path) -> BTreeMap<String, Vec<u8>> {
    dlp_node::fsutil::list_files(root)
        .expect("list")
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(root.join(&f.relative)).expect("read");
            (f.relative, bytes)
        })
        .collect()
}

/// Names directly inside a directory, sorted.
pub(crate) fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Rewrite a backup's manifest so that its sizes and digests describe the files as they are
/// now: damage that happened *before* the backup was written (a damaged source store), which
/// digests cannot see and the deeper checks must.
pub(crate) fn redigest_manifest(backup: &Path) {
    let path = backup.join(dlp_node::backup::MANIFEST_FILE);
    let mut manifest = dlp_node::backup::read_manifest(backup).expect("manifest");
    for file in &mut manifest.files {
        let (size, digest) =
            dlp_node::fsutil::sha256_file(&backup.join(&file.path)).expect("digest");
        file.size = size;
        file.sha256 = Some(digest);
    }
    let json = serde_json::to_vec_pretty(&manifest).expect("json");
    std::fs::write(path, json).expect("write manifest");
}

/// Replace `path` (perhaps a hard link shared with a live store) by a private copy of itself,
/// so that damaging it damages only the backup.
pub(crate) fn unshare(path: &Path) {
    let bytes = std::fs::read(path).expect("read");
    std::fs::remove_file(path).expect("unlink");
    std::fs::write(path, &bytes).expect("rewrite");
}

/// Overwrite bytes of `path` at `offset`.
pub(crate) fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for damage");
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.write_all(bytes).expect("damage");
}
