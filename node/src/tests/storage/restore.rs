//! Offline restore: exact contents, refusals before anything moves, rollback on failure, and
//! Stale marking that survives a reopen.

use crate::backup::{BackupInfo, MANIFEST_FILE};
use crate::channel_record::{ChannelRecord, ChannelState, flags};
use crate::failpoint::Failpoints;
use crate::layout::BaseDir;
use crate::lock::BaseDirLock;
use crate::restore::{RestoreError, RestoreOptions, restore};
use crate::store::{Backend, WriteBatch};

use super::scratch::{
    ScratchNode, channel, dir_names, fingerprint, overwrite, redigest_manifest,
    restore_into_fresh_base, unshare,
};

for_each_backend!(
    backup_more_writes_restore_brings_back_exactly_the_backup,
    a_failure_at_any_restore_step_leaves_the_original_byte_identical,
    restore_against_a_locked_base_dir_is_refused_and_changes_nothing,
    corrupt_backup_is_refused_before_anything_moves,
    truncated_backup_is_refused_before_anything_moves,
    wrong_backend_backup_is_refused_before_anything_moves,
    foreign_node_backup_is_refused_before_anything_moves,
    incomplete_or_mismatched_backups_are_refused,
    ready_and_shutting_down_channels_become_stale_and_stay_so_after_reopen,
    keys_are_restored_only_when_both_are_in_the_backup,
    the_same_backup_restores_twice,
    a_changed_byte_the_engine_does_not_check_is_refused_by_its_digest,
    a_record_the_node_cannot_decode_is_refused_before_anything_moves,
    backups_without_digests_are_refused_unless_accepted_explicitly,
    every_single_byte_change_in_any_backup_file_is_refused,
);

/// A node with some data and a backup of it; the store is closed afterwards (restore is
/// offline), and more writes happened after the backup.
fn node_with_backup(backend: Backend) -> (ScratchNode, BackupInfo) {
    let mut node = ScratchNode::new(backend);
    let store = node.store();
    for i in 0..100u32 {
        store
            .put(format!("data/{i:03}").as_bytes(), &i.to_be_bytes())
            .expect("put");
    }
    channel(1, ChannelState::ChannelReady)
        .save(store)
        .expect("channel");
    let backup = node.backup("backup");
    node.store().put(b"data/after", b"later").expect("put");
    node.store().delete(b"data/000").expect("delete");
    node.close();
    (node, backup)
}

/// What must not change when a restore is refused or fails.
#[derive(Debug, PartialEq)]
struct Untouched {
    store: std::collections::BTreeMap<String, Vec<u8>>,
    fiber_dir: Vec<String>,
    sk: Vec<u8>,
    key: Vec<u8>,
}

fn snapshot(base: &BaseDir) -> Untouched {
    Untouched {
        store: fingerprint(&base.store_dir()),
        fiber_dir: dir_names(&base.fiber_dir()),
        sk: std::fs::read(base.node_key()).expect("sk"),
        key: std::fs::read(base.wallet_key()).expect("key"),
    }
}

fn restore_default(node: &ScratchNode, backup: &std::path::Path) -> Result<(), RestoreError> {
    restore(&node.base, node.backend, backup, &RestoreOptions::default()).map(drop)
}

fn backup_more_writes_restore_brings_back_exactly_the_backup(backend: Backend) {
    let mut node = ScratchNode::new(backend);
    for i in 0..500u32 {
        node.store()
            .put(format!("k/{i:04}").as_bytes(), &[i as u8; 100])
            .expect("put");
    }
    let expected = node.all_entries();
    let backup = node.backup("backup");
    let mut batch = WriteBatch::new();
    batch
        .put(b"k/new".to_vec(), b"x".to_vec())
        .delete(b"k/0001".to_vec());
    node.store().write(&batch).expect("batch");
    node.store().put(b"k/0002", b"overwritten").expect("put");
    assert_ne!(node.all_entries(), expected);
    node.close();

    let report =
        restore(&node.base, backend, &backup.dir, &RestoreOptions::default()).expect("restore");
    let bak = report
        .previous_store
        .expect("the old store was moved aside");
    assert!(
        bak.file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with("store.bak.")
    );
    assert!(bak.is_dir(), "the replaced store is kept");
    node.reopen();
    assert_eq!(node.all_entries(), expected);
}

fn a_failure_at_any_restore_step_leaves_the_original_byte_identical(backend: Backend) {
    let (node, backup) = node_with_backup(backend);
    let before = snapshot(&node.base);
    for point in [
        "restore.copy_file",
        "restore.mark_stale",
        "restore.intent",
        "restore.move_aside",
        "restore.swap",
        "restore.keys",
    ] {
        let options = RestoreOptions {
            failpoints: Failpoints::none().arm(point, 1),
            ..RestoreOptions::default()
        };
        let err = restore(&node.base, backend, &backup.dir, &options).expect_err(point);
        assert!(
            matches!(err, RestoreError::Failed { .. }),
            "{point}: expected a clean failure, got {err}"
        );
        assert!(
            err.to_string().contains("injected failure"),
            "{point}: {err}"
        );
        assert_eq!(snapshot(&node.base), before, "{point} changed the node");
    }
    // After all that, a clean restore still works.
    restore_default(&node, &backup.dir).expect("restore after failed attempts");
}

fn restore_against_a_locked_base_dir_is_refused_and_changes_nothing(backend: Backend) {
    let (node, backup) = node_with_backup(backend);
    let before = snapshot(&node.base);
    let lock = BaseDirLock::acquire(&node.base).expect("play the running node");
    let err = restore_default(&node, &backup.dir).expect_err("must refuse");
    assert!(matches!(err, RestoreError::NodeRunning(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("in use") && msg.contains(&std::process::id().to_string()),
        "{msg}"
    );
    drop(lock);
    assert_eq!(snapshot(&node.base), before);
}

fn corrupt_backup_is_refused_before_anything_moves(backend: Backend) {
    let (node, backup) = node_with_backup(backend);
    let before = snapshot(&node.base);
    // Overwrite bytes in the middle of the data (same size, so only content checks catch it).
    let victim = match backend {
        Backend::Rocksdb => crate::fsutil::list_files(&backup.dir.join("db"))
            .expect("list")
            .into_iter()
            .find(|f| f.relative.ends_with(".sst"))
            .map(|f| backup.dir.join("db").join(f.relative))
            .expect("the checkpoint holds an SST file"),
        Backend::Sqlite => backup.dir.join("data.sqlite"),
    };
    // Hard-linked checkpoint files are shared with the (closed) live store: break the link so
    // the corruption stays in the backup.
    unshare(&victim);
    let offset = match backend {
        Backend::Rocksdb => 16,
        Backend::Sqlite => 4096 + 8,
    };
    overwrite(&victim, offset, &[0xA5; 64]);

    // The digest sees it first, naming the file.
    let err = restore_default(&node, &backup.dir).expect_err("must refuse");
    match &err {
        RestoreError::DigestMismatch { path, .. } => assert_eq!(path, &victim),
        other => panic!("expected a digest mismatch, got {other}"),
    }
    assert_eq!(snapshot(&node.base), before);

    // Damage the digest cannot see (the source store was already damaged when the backup was
    // written): the engine's own checks still refuse it.
    redigest_manifest(&backup.dir);
    let err = restore_default(&node, &backup.dir).expect_err("must refuse");
    assert!(matches!(err, RestoreError::CorruptDatabase(_)), "{err}");
    assert_eq!(snapshot(&node.base), before);
}

fn truncated_backup_is_refused_before_anything_moves(backend: Backend) {
    let (node, backup) = node_with_backup(backend);
    let before = snapshot(&node.base);
    let manifest = crate::backup::read_manifest(&backup.dir).expect("manifest");
    let biggest = manifest.files.iter().max_by_key(|f| f.size).expect("files");
    let path = backup.dir.join(&biggest.path);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::remove_file(&path).expect("unlink hard link");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");

    let err = restore_default(&node, &backup.dir).expect_err("must refuse");
    match &err {
        RestoreError::FileSizeMismatch {
            path: p,
            expected,
            actual,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*expected, biggest.size);
            assert_eq!(*actual, biggest.size / 2);
        }
        other => panic!("expected a size mismatch, got {other}"),
    }
    assert!(err.to_string().contains(&biggest.path), "{err}");
    assert_eq!(snapshot(&node.base), before);
}

fn wrong_backend_backup_is_refused_before_anything_moves(backend: Backend) {
    let (node, backup) = node_with_backup(backend);
    let other = match backend {
        Backend::Rocksdb => Backend::Sqlite,
        Backend::Sqlite => Backend::Rocksdb,
    };
    let before = snapshot(&node.base);
    let err = restore(&node.base, other, &backup.dir, &RestoreOptions::default())
        .expect_err("must refuse");
    match &err {
        RestoreError::BackendMismatch {
            backup: b,
            configured,
            ..
        } => {
            assert_eq!((*b, *configured), (backend, other));
        }
        other => panic!("expected a backend mismatch, got {other}"),
    }
    assert!(err.to_string().contains("store.backend"), "{err}");
    assert_eq!(snapshot(&node.base), before);
}

fn foreign_node_backup_is_refused_before_anything_moves(backend: Backend) {
    let (node, _) = node_with_backup(backend);
    let stranger = ScratchNode::new(backend);
    stranger.store().put(b"their", b"data").expect("put");
    let foreign = stranger.backup("foreign");
    let before = snapshot(&node.base);
    let err = restore_default(&node, &foreign.dir).expect_err("must refuse");
    match &err {
        RestoreError::ForeignNode {
            backup_node,
            this_node,
            ..
        } => {
            assert_eq!(backup_node, &stranger.keys.node_pubkey_hex());
            assert_eq!(this_node, &node.keys.node_pubkey_hex());
        }
        other => panic!("expected a foreign-node refusal, got {other}"),
    }
    assert_eq!(snapshot(&node.base), before);
}

fn incomplete_or_mismatched_backups_are_refused(backend: Backend) {
    let (node, backup) = node_with_backup(backend);
    let before = snapshot(&node.base);

    let missing = node.dir.path().join("no-such-backup");
    let err = restore_default(&node, &missing).expect_err("missing dir");
    assert!(matches!(err, RestoreError::BackupNotFound(_)), "{err}");

    let copy = |name: &str| {
        let dir = node.dir.path().join(name);
        let files = crate::fsutil::list_files(&backup.dir).expect("list");
        crate::fsutil::copy_files(&backup.dir, &dir, &files, &mut |_| Ok(())).expect("copy");
        dir
    };

    let no_manifest = copy("no-manifest");
    std::fs::remove_file(no_manifest.join(MANIFEST_FILE)).expect("rm");
    let err = restore_default(&node, &no_manifest).expect_err("no manifest");
    assert!(err.to_string().contains("interrupted"), "{err}");

    let garbage_manifest = copy("garbage-manifest");
    std::fs::write(garbage_manifest.join(MANIFEST_FILE), b"{not json").expect("write");
    let err = restore_default(&node, &garbage_manifest).expect_err("bad manifest");
    assert!(
        err.to_string().contains("not a valid backup manifest"),
        "{err}"
    );

    let missing_file = copy("missing-file");
    let db_file = match backend {
        Backend::Rocksdb => "db/CURRENT",
        Backend::Sqlite => "data.sqlite",
    };
    std::fs::remove_file(missing_file.join(db_file)).expect("rm");
    let err = restore_default(&node, &missing_file).expect_err("missing file");
    assert!(matches!(err, RestoreError::FileMissing { .. }), "{err}");

    // A key copy swapped for another node's key: the keys no longer belong to the manifest.
    let swapped_key = copy("swapped-key");
    let stranger = ScratchNode::new(backend);
    std::fs::copy(stranger.base.node_key(), swapped_key.join("sk")).expect("swap sk");
    let err = restore_default(&node, &swapped_key).expect_err("mismatched key");
    assert!(matches!(err, RestoreError::DigestMismatch { .. }), "{err}");
    // Keep the manifest's recorded size and digest honest so the key check fires.
    redigest_manifest(&swapped_key);
    let err = restore_default(&node, &swapped_key).expect_err("mismatched key");
    assert!(matches!(err, RestoreError::KeysMismatch { .. }), "{err}");

    assert_eq!(snapshot(&node.base), before);
}

fn ready_and_shutting_down_channels_become_stale_and_stay_so_after_reopen(backend: Backend) {
    let mut node = ScratchNode::new(backend);
    let states = [
        ChannelState::NegotiatingFunding(flags::OUR_INIT_SENT),
        ChannelState::CollaboratingFundingTx(flags::THEIR_INIT_SENT),
        ChannelState::SigningCommitment(flags::OUR_INIT_SENT | flags::THEIR_INIT_SENT),
        ChannelState::AwaitingTxSignatures(flags::OUR_INIT_SENT),
        ChannelState::AwaitingChannelReady(flags::OUR_CHANNEL_READY),
        ChannelState::ChannelReady,
        ChannelState::ShuttingDown(flags::OUR_SHUTDOWN_SENT),
        ChannelState::ShuttingDown(flags::AWAITING_PENDING_TLCS),
        ChannelState::ShuttingDown(flags::WAITING_COMMITMENT_CONFIRMATION),
        ChannelState::Closed(flags::COOPERATIVE),
        ChannelState::Closed(flags::UNCOOPERATIVE_LOCAL),
        ChannelState::Stale,
    ];
    let originals: Vec<ChannelRecord> = states
        .iter()
        .enumerate()
        .map(|(i, s)| channel(i as u8 + 1, *s))
        .collect();
    for record in &originals {
        record.save(node.store()).expect("save");
    }
    let backup = node.backup("backup");
    node.close();

    let report =
        restore(&node.base, backend, &backup.dir, &RestoreOptions::default()).expect("restore");
    let mut marked: Vec<ChannelState> = report.stale_marked.iter().map(|m| m.previous).collect();
    marked.sort_by_key(|s| s.to_string());
    assert_eq!(
        marked,
        [
            ChannelState::ChannelReady,
            ChannelState::ShuttingDown(flags::OUR_SHUTDOWN_SENT),
            ChannelState::ShuttingDown(flags::AWAITING_PENDING_TLCS),
            ChannelState::ShuttingDown(flags::WAITING_COMMITMENT_CONFIRMATION),
        ]
    );

    for round in ["after restore", "after a second reopen"] {
        node.reopen();
        let stored = ChannelRecord::load_all(node.store()).expect("load");
        assert_eq!(stored.len(), originals.len(), "{round}");
        for (original, now) in originals.iter().zip(&stored) {
            assert_eq!(now.channel_id, original.channel_id);
            assert_eq!(
                (now.local_commitment_number, now.remote_commitment_number),
                (
                    original.local_commitment_number,
                    original.remote_commitment_number
                ),
                "{round}: commitment numbers are kept"
            );
            if original.state.becomes_stale_on_restore() {
                assert_eq!(
                    now.state,
                    ChannelState::Stale,
                    "{round}: {}",
                    original.state
                );
                assert_eq!(now.state_before_stale, Some(original.state), "{round}");
            } else {
                assert_eq!(
                    now.state, original.state,
                    "{round}: {} must not change",
                    original.state
                );
                assert_eq!(now.state_before_stale, None, "{round}");
            }
        }
        node.close();
    }
}

fn keys_are_restored_only_when_both_are_in_the_backup(backend: Backend) {
    // Full pair: a fresh machine gets the node's identity back.
    let (node, backup) = node_with_backup(backend);
    let fresh = restore_into_fresh_base(backend, &backup.dir);
    assert_eq!(
        std::fs::read(fresh.base.node_key()).expect("sk"),
        std::fs::read(node.base.node_key()).expect("sk")
    );
    assert_eq!(fresh.keys.node_pubkey_hex(), node.keys.node_pubkey_hex());
    use std::os::unix::fs::PermissionsExt;
    for path in [fresh.base.node_key(), fresh.base.wallet_key()] {
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }

    // Only `sk` present: keys are left alone, the database is still restored.
    let (mut node, backup) = node_with_backup(backend);
    std::fs::remove_file(backup.dir.join("key")).expect("rm key");
    std::fs::write(
        node.base.wallet_key(),
        b"0x0101010101010101010101010101010101010101010101010101010101010101\n",
    )
    .expect("replace wallet key");
    let wallet_before = std::fs::read(node.base.wallet_key()).expect("key");
    let report =
        restore(&node.base, backend, &backup.dir, &RestoreOptions::default()).expect("restore");
    assert!(!report.keys_restored);
    assert!(report.keys_note.is_some());
    assert_eq!(
        std::fs::read(node.base.wallet_key()).expect("key"),
        wallet_before
    );
    node.reopen();
    assert!(
        node.store().get(b"data/000").expect("get").is_some(),
        "database restored"
    );

    // Neither key and no key on the machine: refused, channels would belong to nobody.
    let (_owner, backup) = node_with_backup(backend);
    std::fs::remove_file(backup.dir.join("key")).expect("rm key");
    std::fs::remove_file(backup.dir.join("sk")).expect("rm sk");
    let dir = tempfile::tempdir().expect("tempdir");
    let empty_base = BaseDir::new(dir.path().join("node"));
    let err = restore(
        &empty_base,
        backend,
        &backup.dir,
        &RestoreOptions::default(),
    )
    .expect_err("no keys");
    assert!(matches!(err, RestoreError::NoKeys { .. }), "{err}");
    assert!(!empty_base.store_dir().exists());
}

fn the_same_backup_restores_twice(backend: Backend) {
    let (mut node, backup) = node_with_backup(backend);
    let backup_before = fingerprint(&backup.dir);
    restore_default(&node, &backup.dir).expect("first");
    assert_eq!(
        fingerprint(&backup.dir),
        backup_before,
        "restore must not modify the backup"
    );
    node.reopen();
    node.store().put(b"data/between", b"x").expect("put");
    node.close();
    restore_default(&node, &backup.dir).expect("second");
    node.reopen();
    assert_eq!(node.store().get(b"data/between").expect("get"), None);
    let baks = dir_names(&node.base.fiber_dir())
        .into_iter()
        .filter(|n| n.starts_with("store.bak."))
        .count();
    assert_eq!(baks, 2, "each restore keeps the store it replaced");
}

/// A single changed byte that keeps the database readable: inside a live SQLite record (a
/// commitment number), or in RocksDB's OPTIONS file, which its block checksums do not cover.
/// Before digests both restored "successfully".
fn a_changed_byte_the_engine_does_not_check_is_refused_by_its_digest(backend: Backend) {
    let (node, backup) = node_with_backup(backend);
    let before = snapshot(&node.base);
    let (victim, offset, byte) = match backend {
        Backend::Sqlite => {
            // channel(1) has local_commitment_number 11: make it 19.
            let file = backup.dir.join("data.sqlite");
            let bytes = std::fs::read(&file).expect("read");
            let needle = b"\"local_commitment_number\":11";
            let at = bytes
                .windows(needle.len())
                .position(|w| w == needle)
                .expect("the channel record is in the file");
            (file, (at + needle.len() - 1) as u64, b'9')
        }
        Backend::Rocksdb => {
            let file = crate::fsutil::list_files(&backup.dir.join("db"))
                .expect("list")
                .into_iter()
                .find(|f| f.relative.starts_with("OPTIONS-"))
                .map(|f| backup.dir.join("db").join(f.relative))
                .expect("the checkpoint has an OPTIONS file");
            let bytes = std::fs::read(&file).expect("read");
            // A comment line: the file still parses, with a changed byte.
            let at = bytes.iter().position(|b| *b == b'#').expect("a comment");
            (file, at as u64 + 1, b'X')
        }
    };
    unshare(&victim);
    overwrite(&victim, offset, &[byte]);

    let err = restore_default(&node, &backup.dir).expect_err("must refuse");
    match &err {
        RestoreError::DigestMismatch {
            path,
            expected,
            actual,
        } => {
            assert_eq!(path, &victim);
            assert_ne!(expected, actual);
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert_eq!(snapshot(&node.base), before, "nothing moved");

    // The same damage with an honest manifest (a backup of a damaged store) shows why the
    // digest is needed: the engine accepts it.
    redigest_manifest(&backup.dir);
    let report = restore_default(&node, &backup.dir);
    assert!(
        report.is_ok(),
        "the engine's own checks do not see this damage: {report:?}"
    );
}

/// A record the node reads at start that does not decode: before, restore accepted it and the
/// node then refused to start (with the old store already replaced).
fn a_record_the_node_cannot_decode_is_refused_before_anything_moves(backend: Backend) {
    use crate::core::INVOICE_PREFIX;
    let mut node = ScratchNode::new(backend);
    channel(1, ChannelState::ChannelReady)
        .save(node.store())
        .expect("channel");
    let mut key = vec![INVOICE_PREFIX];
    key.extend_from_slice(&[0x42; 32]);
    node.store()
        .put(&key, b"{\"payee\": 7")
        .expect("corrupt invoice");
    let backup = node.backup("backup");
    node.close();
    let before = snapshot(&node.base);

    let err = restore_default(&node, &backup.dir).expect_err("must refuse");
    match &err {
        RestoreError::BadRecord { record, .. } => {
            assert_eq!(record.what, "invoice");
            assert!(record.key.starts_with("204242"), "{}", record.key);
        }
        other => panic!("expected a bad record, got {other}"),
    }
    assert!(err.to_string().contains("invoice record"), "{err}");
    assert_eq!(snapshot(&node.base), before);
}

/// Format 1 manifests (sizes only) are refused with a message saying how to proceed, and
/// restored only when the caller accepts them explicitly.
fn backups_without_digests_are_refused_unless_accepted_explicitly(backend: Backend) {
    let (mut node, backup) = node_with_backup(backend);
    let path = backup.dir.join(MANIFEST_FILE);
    let mut manifest = crate::backup::read_manifest(&backup.dir).expect("manifest");
    manifest.format_version = 1;
    for file in &mut manifest.files {
        file.sha256 = None;
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    let before = snapshot(&node.base);

    let err = restore_default(&node, &backup.dir).expect_err("must refuse");
    assert!(
        matches!(err, RestoreError::NoDigests { format: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("--accept-undigested-backup"),
        "{err}"
    );
    assert_eq!(snapshot(&node.base), before);

    let options = RestoreOptions {
        accept_undigested: true,
        ..RestoreOptions::default()
    };
    let report = restore(&node.base, backend, &backup.dir, &options).expect("accepted");
    assert!(!report.digests_verified);
    node.reopen();
    assert!(node.store().get(b"data/000").expect("get").is_some());
}

/// The probe that found the defect, as a test: change one byte (xor 0x5A) at spread positions
/// of every file the manifest lists (first and last byte included) and try to restore. Every
/// attempt must be refused before anything moves. The manifest itself is left alone: some of
/// its bytes (the creation time) are harmless to change.
fn every_single_byte_change_in_any_backup_file_is_refused(backend: Backend) {
    let (node, backup) = node_with_backup(backend);
    let before = snapshot(&node.base);
    let manifest = crate::backup::read_manifest(&backup.dir).expect("manifest");
    const POSITIONS_PER_FILE: u64 = 16;
    let mut attempts = 0;
    for file in &manifest.files {
        let path = backup.dir.join(&file.path);
        unshare(&path);
        let original = std::fs::read(&path).expect("read");
        let len = original.len() as u64;
        let mut positions: Vec<u64> = (0..POSITIONS_PER_FILE)
            .map(|i| i * len / POSITIONS_PER_FILE)
            .chain([len.saturating_sub(1)])
            .filter(|at| *at < len) // an empty file (a fresh WAL) has no byte to change
            .collect();
        positions.dedup();
        for at in positions {
            overwrite(&path, at, &[original[at as usize] ^ 0x5A]);
            attempts += 1;
            match restore_default(&node, &backup.dir) {
                Err(RestoreError::DigestMismatch { path: p, .. }) => assert_eq!(p, path),
                Err(other) => panic!(
                    "{}@{at}: refused, but not by its digest: {other}",
                    file.path
                ),
                Ok(()) => panic!("{}@{at}: a changed byte was restored", file.path),
            }
            overwrite(&path, at, &[original[at as usize]]);
        }
    }
    assert!(attempts >= 3 * POSITIONS_PER_FILE, "{attempts} attempts");
    eprintln!("{backend}: {attempts} single-byte changes, all refused");
    assert_eq!(snapshot(&node.base), before);
    // Undamaged again, it restores.
    restore_default(&node, &backup.dir).expect("intact backup");
}
