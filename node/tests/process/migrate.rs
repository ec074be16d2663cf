//! Kill a node's first start on a home an earlier build wrote (the corpus's `pre-routing`
//! alice, channel records version 1) at every write, sync and rename it makes until it is
//! ready: the store must hold the old records or the migrated ones, never a mix, and the next
//! start must come up with the channel. The migration is one write batch; this shows it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dlp_node::layout::BaseDir;
use dlp_node::store::open_store;
use dlp_node_api::Backend;

use crate::support::{NodeProcess, copy_base, strace, write_config};

for_each_backend!(a_start_killed_while_migrating_leaves_the_old_records_or_the_migrated_ones);

/// Syscalls a kill is injected at, one sweep each.
const SYSCALLS: [&str; 6] = [
    "pwrite64",
    "write",
    "fsync",
    "fdatasync",
    "rename",
    "renameat",
];
/// Bound on kill points per syscall (a start makes far fewer before it is ready).
const MAX_KILL_POINTS: usize = 300;
/// A start that is not ready within this long is a failure.
const READY_WITHIN: Duration = Duration::from_secs(30);

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The entries a migration may change: channel records (`0x00`), payments (`0x30`) and the
/// store's format entry (`0x01`). A start writes other entries of its own (its randomness
/// counter), which are not the migration's.
fn migrated_part(backend: Backend, base: &BaseDir) -> Entries {
    let store = open_store(backend, &base.store_dir()).expect("open store");
    let mut entries = store.prefix_entries(&[0x00]).expect("channels");
    entries.extend(store.prefix_entries(&[0x01]).expect("format"));
    entries.extend(store.prefix_entries(&[0x30]).expect("payments"));
    entries
}

/// A stopped home of the pre-routing build: the corpus's alice, store and keys.
fn pre_routing_home(backend: Backend, at: &Path) -> BaseDir {
    let backup = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/backups/pre-routing")
        .join(backend.to_string())
        .join("peer");
    let base = BaseDir::new(at);
    write_config(&base, backend, &["info"]);
    std::fs::create_dir_all(base.fiber_dir()).expect("fiber");
    std::fs::create_dir_all(base.wallet_key().parent().expect("ckb")).expect("ckb");
    std::fs::copy(backup.join("sk"), base.node_key()).expect("sk");
    std::fs::copy(backup.join("key"), base.wallet_key()).expect("key");
    let store = base.store_dir();
    std::fs::create_dir_all(&store).expect("store");
    let from = match backend {
        Backend::Rocksdb => backup.join(dlp_node_api::ROCKSDB_BACKUP_DIR_NAME),
        Backend::Sqlite => backup.clone(),
    };
    for entry in std::fs::read_dir(&from).expect("backup") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        let keep = match backend {
            Backend::Rocksdb => true,
            Backend::Sqlite => name == dlp_node_api::SQLITE_FILE_NAME,
        };
        if keep && entry.path().is_file() {
            std::fs::copy(entry.path(), store.join(&name)).expect("copy");
        }
    }
    base
}

/// Start the node under strace, killed at the `nth` call of `syscall`. `true`: it was killed
/// before it was ready; `false`: it became ready (the whole group is then killed).
fn start_killed_at(base: &BaseDir, syscall: &str, nth: usize) -> bool {
    // setsid: strace and the node in a process group of their own, killed together.
    let mut child = Command::new("setsid")
        .arg(strace())
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=KILL:when={nth}"))
        .arg(crate::support::node_binary())
        .arg("-d")
        .arg(base.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run strace");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    // Says `true` at the ready line, `false` when stdout closes: every process holding it (the
    // node) is gone, and with it the store's lock.
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with(dlp_node_api::READY_LINE_PREFIX) {
                let _ = tx.send(true);
            }
        }
        let _ = tx.send(false);
    });
    let started = Instant::now();
    let ready = match rx.recv_timeout(READY_WITHIN) {
        Ok(ready) => ready,
        Err(_) => panic!(
            "{syscall} #{nth}: neither ready nor dead after {:?}",
            started.elapsed()
        ),
    };
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = child.wait();
    if ready {
        // Killed now: wait for its stdout to close (the node is gone).
        assert_eq!(
            rx.recv_timeout(READY_WITHIN),
            Ok(false),
            "{syscall} #{nth}: the node ends"
        );
    }
    !ready
}

fn a_start_killed_while_migrating_leaves_the_old_records_or_the_migrated_ones(backend: Backend) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let pristine = pre_routing_home(backend, &scratch.path().join("pristine"));
    let old = migrated_part(backend, &pristine);
    assert!(
        old.iter().any(|(k, v)| k[0] == 0x00 && v[0] == 1),
        "the corpus home holds version-1 channel records"
    );
    let reference = copy_base(&pristine, &scratch.path().join("reference"));
    NodeProcess::start(&reference).terminate();
    let migrated = migrated_part(backend, &reference);
    assert_ne!(old, migrated, "the start migrated the records");
    assert!(
        migrated
            .iter()
            .filter(|(k, _)| k[0] == 0x00)
            .all(|(_, v)| v[0] == 2)
    );

    let (mut runs, mut kept_old, mut got_new) = (0, 0, 0);
    for syscall in SYSCALLS {
        for nth in 1..=MAX_KILL_POINTS {
            let base = copy_base(&pristine, &scratch.path().join(format!("{syscall}-{nth}")));
            let killed = start_killed_at(&base, syscall, nth);
            let left = migrated_part(backend, &base);
            if !killed {
                assert_eq!(
                    left, migrated,
                    "{backend} {syscall} #{nth}: ready, so migrated"
                );
                std::fs::remove_dir_all(base.root()).expect("cleanup");
                break;
            }
            assert!(
                nth < MAX_KILL_POINTS,
                "more than {MAX_KILL_POINTS} {syscall} calls?"
            );
            runs += 1;
            if left == old {
                kept_old += 1;
            } else if left == migrated {
                got_new += 1;
            } else {
                panic!(
                    "{backend}: a start killed at {syscall} #{nth} left neither the old records \
                     nor the migrated ones"
                );
            }
            // The next start comes up, with the channel, migrated.
            NodeProcess::start(&base).terminate();
            assert_eq!(
                migrated_part(backend, &base),
                migrated,
                "{syscall} #{nth}: restarted"
            );
            std::fs::remove_dir_all(base.root()).expect("cleanup");
        }
    }
    eprintln!("{backend}: {runs} kill points: {kept_old} old records, {got_new} migrated");
    assert!(runs >= 10, "only {runs} kill points: is strace injecting?");
    assert!(kept_old > 0 && got_new > 0, "both outcomes occur");
}
