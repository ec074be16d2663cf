//! Hot backups: consistency under concurrent writers, never overwriting, and their contents.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;

use crate::backup::{
    BackupError, DigestCache, MANIFEST_FILE, create_backup, create_backup_with, read_manifest,
};
use crate::store::{Backend, Store, WriteBatch};

use super::scratch::{DEADLINE, ScratchNode, dir_names, restore_into_fresh_base};

for_each_backend!(
    hot_backup_during_concurrent_batches_holds_whole_batches_only,
    backup_into_an_existing_directory_is_refused,
    backup_holds_manifest_keys_and_a_self_contained_database,
    every_listed_file_carries_the_digest_of_its_content_with_or_without_the_cache,
);

const KEYS_PER_BATCH: u32 = 50;

fn batch_key(batch: u32, i: u32) -> Vec<u8> {
    format!("batch/{batch:08}/{i:04}").into_bytes()
}

/// A writer thread commits numbered batches of 50 keys as fast as it can; backups are taken in
/// the middle of it. Each backup, restored and opened, must hold batches 0..n whole and nothing
/// of any later batch.
fn hot_backup_during_concurrent_batches_holds_whole_batches_only(backend: Backend) {
    let node = ScratchNode::new(backend);
    let store: Arc<dyn Store> = node.shared_store();
    let stop = Arc::new(AtomicBool::new(false));
    let (progress_tx, progress_rx) = channel();
    let writer = {
        let store = store.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Bounded in count as well as by the stop flag.
            for batch in 0..100_000u32 {
                if stop.load(Ordering::SeqCst) {
                    return batch;
                }
                let mut wb = WriteBatch::new();
                for i in 0..KEYS_PER_BATCH {
                    wb.put(batch_key(batch, i), batch.to_be_bytes().to_vec());
                }
                wb.put(b"batch/last".to_vec(), batch.to_be_bytes().to_vec());
                store.write(&wb).expect("writer batch");
                let _ = progress_tx.send(batch);
            }
            100_000
        })
    };

    let mut backups = Vec::new();
    for round in 0..3u32 {
        // Wait (on the writer's own progress reports) until it is well into its work.
        let want = (round + 1) * 20;
        loop {
            let done = progress_rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
                panic!("writer did not reach batch {want} within {DEADLINE:?}")
            });
            if done >= want {
                break;
            }
        }
        let target = node.dir.path().join(format!("hot-{round}"));
        backups.push(
            create_backup(store.as_ref(), &node.base, &node.keys, &target).expect("hot backup"),
        );
    }
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().expect("writer");
    drop(progress_rx);

    let mut previous_last = None;
    for backup in &backups {
        let restored = restore_into_fresh_base(backend, &backup.dir);
        let entries = restored.store().prefix_entries(b"batch/0").expect("scan");
        let last = restored
            .store()
            .get(b"batch/last")
            .expect("get")
            .map(|v| u32::from_be_bytes(v[..4].try_into().expect("u32")))
            .expect("at least one batch in the backup");
        assert_eq!(
            entries.len() as u32,
            (last + 1) * KEYS_PER_BATCH,
            "backup {} must hold batches 0..={last} whole and nothing else",
            backup.dir.display()
        );
        for (n, (key, value)) in entries.iter().enumerate() {
            let batch = n as u32 / KEYS_PER_BATCH;
            assert_eq!(key, &batch_key(batch, n as u32 % KEYS_PER_BATCH));
            assert_eq!(value, &batch.to_be_bytes().to_vec());
        }
        assert!(
            previous_last.is_none_or(|p| last >= p),
            "later backups are not older"
        );
        previous_last = Some(last);
    }
    assert!(
        written > previous_last.expect("three backups") + 1,
        "the writer kept committing after the last backup (written {written})"
    );
}

fn backup_into_an_existing_directory_is_refused(backend: Backend) {
    let node = ScratchNode::new(backend);
    node.store().put(b"k", b"v").expect("put");
    let target = node.dir.path().join("existing");
    std::fs::create_dir(&target).expect("mkdir");
    std::fs::write(target.join("precious"), b"do not touch").expect("write");
    let err =
        create_backup(node.store(), &node.base, &node.keys, &target).expect_err("must refuse");
    assert!(
        matches!(err, BackupError::TargetExists(ref p) if p == &target),
        "{err}"
    );
    assert!(
        err.to_string().contains(&target.display().to_string()),
        "{err}"
    );
    assert_eq!(dir_names(&target), ["precious"]);
    assert_eq!(
        std::fs::read(target.join("precious")).expect("read"),
        b"do not touch"
    );

    let empty = node.dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let err = create_backup(node.store(), &node.base, &node.keys, &empty).expect_err("must refuse");
    assert!(matches!(err, BackupError::TargetExists(_)), "{err}");
    assert!(
        dir_names(&empty).is_empty(),
        "an existing empty directory stays empty"
    );
}

fn backup_holds_manifest_keys_and_a_self_contained_database(backend: Backend) {
    let node = ScratchNode::new(backend);
    node.store().put(b"k", b"v").expect("put");
    let info = node.backup("b");
    let names = dir_names(&info.dir);
    let db = match backend {
        Backend::Rocksdb => "db",
        Backend::Sqlite => "data.sqlite",
    };
    assert_eq!(names, [db, MANIFEST_FILE, "key", "sk"]);
    let manifest = read_manifest(&info.dir).expect("manifest");
    assert_eq!(manifest.backend, backend);
    assert_eq!(manifest.node_pubkey, node.keys.node_pubkey_hex());
    assert_eq!(manifest.wallet_pubkey, node.keys.wallet_pubkey_hex());
    assert!(manifest.files.iter().any(|f| f.path == "sk"));
    assert_eq!(
        std::fs::read(info.dir.join("sk")).expect("sk copy"),
        std::fs::read(node.base.node_key()).expect("sk")
    );
    match backend {
        Backend::Rocksdb => assert!(info.dir.join("db/CURRENT").is_file()),
        Backend::Sqlite => {
            // The live store runs in WAL mode; the backup must be one self-contained file.
            assert!(node.base.store_dir().join("data.sqlite-wal").exists());
            let header = std::fs::read(info.dir.join("data.sqlite")).expect("read");
            assert_eq!(&header[..16], b"SQLite format 3\0");
            assert_eq!(
                (header[18], header[19]),
                (1, 1),
                "rollback-journal mode, not WAL"
            );
        }
    }
    use std::os::unix::fs::PermissionsExt;
    for key in ["sk", "key"] {
        let mode = std::fs::metadata(info.dir.join(key))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key} copy must be 0600");
    }
}

/// Each file in the manifest (database files and key copies) carries the SHA-256 of exactly its
/// content, also when a later backup reuses cached digests of unchanged SST files.
fn every_listed_file_carries_the_digest_of_its_content_with_or_without_the_cache(backend: Backend) {
    let node = ScratchNode::new(backend);
    let cache = DigestCache::default();
    let mut backups = Vec::new();
    for round in 0..3u32 {
        for i in 0..200u32 {
            node.store()
                .put(
                    format!("round/{round}/{i:04}").as_bytes(),
                    &[round as u8; 512],
                )
                .expect("put");
        }
        let target = node.dir.path().join(format!("cached-{round}"));
        backups.push(
            create_backup_with(node.store(), &node.base, &node.keys, &target, Some(&cache))
                .expect("backup"),
        );
    }
    backups.push(node.backup("uncached"));
    for info in &backups {
        let manifest = read_manifest(&info.dir).expect("manifest");
        assert_eq!(manifest.format_version, 2);
        let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        assert!(
            listed.contains(&"sk") && listed.contains(&"key"),
            "{listed:?}"
        );
        for file in &manifest.files {
            let (size, digest) =
                crate::fsutil::sha256_file(&info.dir.join(&file.path)).expect("digest");
            assert_eq!(size, file.size, "{}", file.path);
            assert_eq!(
                file.sha256.as_deref(),
                Some(digest.as_str()),
                "{} in {}",
                file.path,
                info.dir.display()
            );
        }
    }
    if backend == Backend::Rocksdb {
        // The cache matters because later checkpoints share SST files with earlier ones.
        let ssts = |dir: &std::path::Path| -> Vec<String> {
            dir_names(&dir.join("db"))
                .into_iter()
                .filter(|n| n.ends_with(".sst"))
                .collect()
        };
        let first = ssts(&backups[0].dir);
        assert!(!first.is_empty());
        assert!(first.iter().all(|n| ssts(&backups[2].dir).contains(n)));
    }
    // The last cached backup restores.
    restore_into_fresh_base(backend, &backups[2].dir);
}
