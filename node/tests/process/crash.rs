//! Kill the restore at every rename, fsync and unlink it makes, then start the node: the store
//! must be the old one, untouched, or the complete restored one; never missing, never half.
//!
//! Done the way the defect was found: `strace` injects SIGKILL at the N-th call of one syscall
//! into the real `dlp-node --restore` process (all its threads, RocksDB's included), for
//! N = 1, 2, ... until a run completes without reaching N. Then the real node starts on the
//! base directory (completing an interrupted restore if one was decided) and the store's
//! entries are compared with both possible outcomes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use dlp_node::layout::BaseDir;
use dlp_node::restore::INTENT_FILE;
use dlp_node::store::open_store;
use dlp_node_api::{Backend, ChannelState};

use crate::scratch::{ScratchNode, channel};
use crate::support::{NodeProcess, copy_base, run_restore_cli, strace, write_config};

for_each_backend!(
    a_restore_killed_at_any_rename_fsync_or_unlink_leaves_one_whole_store,
    a_node_refuses_to_start_on_a_store_that_a_restore_lost,
);

/// Syscalls a kill is injected at, one sweep each (strace counts each syscall separately).
const SYSCALLS: [&str; 7] = [
    "rename",
    "renameat",
    "renameat2",
    "fsync",
    "fdatasync",
    "unlink",
    "unlinkat",
];
/// Bound on kill points per syscall: a restore of this size makes far fewer calls.
const MAX_KILL_POINTS: usize = 400;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn entries_of(backend: Backend, base: &BaseDir) -> Entries {
    let store = open_store(backend, &base.store_dir()).expect("open store");
    store.prefix_entries(&[]).expect("scan")
}

/// A stopped node with a channel, a backup of it, and more changes after the backup.
fn pristine(backend: Backend) -> (ScratchNode, PathBuf) {
    let mut node = ScratchNode::new(backend);
    channel(1, ChannelState::ChannelReady)
        .save(node.store())
        .expect("channel 1");
    for i in 0..50u32 {
        node.store()
            .put(format!("data/{i:03}").as_bytes(), &i.to_be_bytes())
            .expect("put");
    }
    let backup = node.backup("backup").dir;
    channel(2, ChannelState::ChannelReady)
        .save(node.store())
        .expect("channel 2 (after the backup)");
    node.store().delete(b"data/000").expect("delete");
    node.close();
    write_config(&node.base, backend, &["info"]);
    (node, backup)
}

fn a_restore_killed_at_any_rename_fsync_or_unlink_leaves_one_whole_store(backend: Backend) {
    let strace = strace();
    let (node, backup) = pristine(backend);
    let old = entries_of(backend, &node.base);
    let keys_before = (
        std::fs::read(node.base.node_key()).expect("sk"),
        std::fs::read(node.base.wallet_key()).expect("key"),
    );
    // The outcome of an uninterrupted restore.
    let scratch = tempfile::tempdir().expect("tempdir");
    let reference = copy_base(&node.base, &scratch.path().join("reference"));
    let out = run_restore_cli(&reference, &backup, &[]);
    assert!(out.status.success(), "reference restore: {}", out.stderr);
    let restored = entries_of(backend, &reference);
    assert_ne!(old, restored);

    let mut tally: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut completed_by_start = 0;
    for syscall in SYSCALLS {
        for nth in 1..=MAX_KILL_POINTS {
            let base = copy_base(&node.base, &scratch.path().join(format!("{syscall}-{nth}")));
            let status = Command::new(&strace)
                .args(["-f", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("trace={syscall}"))
                .arg("-e")
                .arg(format!("inject={syscall}:signal=KILL:when={nth}"))
                .arg(crate::support::node_binary())
                .arg("-d")
                .arg(base.root())
                .arg("--restore")
                .arg(&backup)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .expect("run strace");
            if status.status.success() {
                // The restore made fewer than `nth` such calls: this sweep is done.
                let entries = entries_of(backend, &base);
                assert_eq!(entries, restored, "{syscall} #{nth}: uninterrupted restore");
                std::fs::remove_dir_all(base.root()).expect("cleanup");
                break;
            }
            let stderr = String::from_utf8_lossy(&status.stderr);
            assert!(
                nth < MAX_KILL_POINTS,
                "more than {MAX_KILL_POINTS} {syscall} calls in one restore?"
            );
            assert!(
                !stderr.contains("ptrace") && !stderr.contains("Operation not permitted"),
                "strace cannot trace here: {stderr}"
            );

            // Start the real node on what the kill left; a decided restore is completed first.
            let intent = base.fiber_dir().join(INTENT_FILE);
            let decided = intent.exists();
            NodeProcess::start(&base).terminate();
            if decided {
                completed_by_start += 1;
                assert!(
                    !intent.exists(),
                    "{syscall} #{nth}: the start completed the intent"
                );
            }
            let entries = entries_of(backend, &base);
            let outcome = tally.entry(syscall).or_default();
            outcome.0 += 1;
            if entries == old {
                outcome.1 += 1;
            } else if entries == restored {
                outcome.2 += 1;
            } else {
                panic!(
                    "{backend}: restore killed at {syscall} #{nth} left neither the old store \
                     nor the restored one:\n{} entries, expected {} (old) or {} (restored)",
                    entries.len(),
                    old.len(),
                    restored.len()
                );
            }
            assert_eq!(
                (
                    std::fs::read(base.node_key()).expect("sk"),
                    std::fs::read(base.wallet_key()).expect("key")
                ),
                keys_before,
                "{syscall} #{nth}: the node's keys"
            );
            std::fs::remove_dir_all(base.root()).expect("cleanup");
        }
    }
    eprintln!("{backend}: kill points (runs, old store, restored store): {tally:?}");
    eprintln!("{backend}: runs a node start completed: {completed_by_start}");
    let (runs, kept_old, got_new) = tally
        .values()
        .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    assert!(runs >= 10, "only {runs} kill points: is strace injecting?");
    assert!(
        kept_old > 0 && got_new > 0,
        "both outcomes occur: {tally:?}"
    );
    assert!(
        completed_by_start > 0,
        "some kills fall after the restore was decided, and the start completes them"
    );
}

/// The node used to start on an empty store when `fiber/store` was gone, forgetting every
/// channel. With earlier stores lying next to it, it must refuse and name them.
fn a_node_refuses_to_start_on_a_store_that_a_restore_lost(backend: Backend) {
    let (node, _backup) = pristine(backend);
    let lost = node.base.store_bak(1234);
    std::fs::rename(node.base.store_dir(), &lost).expect("lose the store");

    let out = crate::support::run_cli(&["-d", node.base.root().to_str().expect("utf8")], &[]);
    assert!(!out.status.success(), "must not start: {}", out.stdout);
    assert!(out.stderr.contains("refusing to start"), "{}", out.stderr);
    assert!(out.stderr.contains("store.bak.1234"), "{}", out.stderr);
    assert!(
        !node.base.store_dir().exists(),
        "no empty store was created"
    );

    // Put back by hand, it starts with its channels.
    std::fs::rename(&lost, node.base.store_dir()).expect("put back");
    NodeProcess::start(&node.base).terminate();
    let channels = dlp_node::channel_record::ChannelRecord::load_all(
        open_store(backend, &node.base.store_dir())
            .expect("open")
            .as_ref(),
    )
    .expect("load");
    assert_eq!(channels.len(), 2);
}
