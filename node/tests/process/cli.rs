//! The `dlp-node` binary as a user runs it: help text, a real node process with its layout,
//! RPC and signals, and `--restore` refusing and failing safely.

use std::os::unix::fs::PermissionsExt;

use dlp_chain::hex_u64::parse as parse_hex_u64;
use dlp_chain::jsonrpc::RpcClient;
use dlp_node::channel_record::ChannelRecord;
use dlp_node::keys::NodeKeys;
use dlp_node::layout::BaseDir;
use dlp_node::store::open_store;
use dlp_node_api::{Backend, ChannelState, NodeInfo};

use crate::scratch::{channel, dir_names, fingerprint};
use crate::support::{NodeProcess, run_cli, run_restore_cli, write_config};

for_each_backend!(
    node_creates_fiber_layout_serves_rpc_and_stops_on_sigterm,
    backup_rpc_writes_a_backup_that_cli_restore_applies,
    cli_restore_is_refused_while_the_node_runs,
    cli_restore_copy_failure_exits_non_zero_and_keeps_the_store,
    backup_keep_bounds_the_backups_and_never_deletes_the_newest,
);

#[test]
fn help_documents_running_and_restoring() {
    let out = run_cli(&["--help"], &[]);
    assert!(out.status.success(), "{}", out.stderr);
    for needle in [
        "-d",
        "--restore",
        "BACKUP_DIR",
        "SIGTERM",
        "store.bak",
        "Stale",
        "bench-store",
        "backend",
    ] {
        assert!(
            out.stdout.contains(needle),
            "--help must mention {needle:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn missing_base_dir_and_bad_config_are_clear_errors() {
    let out = run_cli(&[], &[]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("--base-dir"), "{}", out.stderr);

    let dir = tempfile::tempdir().expect("tempdir");
    let base = BaseDir::new(dir.path());
    std::fs::write(base.default_config(), "[store]\nbackend = \"leveldb\"\n").expect("config");
    let out = run_cli(&["-d", dir.path().to_str().expect("utf8")], &[]);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("config.toml") && out.stderr.contains("leveldb"),
        "{}",
        out.stderr
    );
    assert!(!base.fiber_dir().exists(), "a bad config creates nothing");
}

fn base_in(dir: &tempfile::TempDir) -> BaseDir {
    BaseDir::new(dir.path().join("node"))
}

fn node_creates_fiber_layout_serves_rpc_and_stops_on_sigterm(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_in(&dir);
    write_config(&base, backend, &["info"]);
    let node = NodeProcess::start(&base);

    for key in [base.node_key(), base.wallet_key()] {
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    }
    match backend {
        Backend::Rocksdb => assert!(base.store_dir().join("CURRENT").is_file()),
        Backend::Sqlite => assert!(base.store_dir().join("data.sqlite").is_file()),
    }
    let keys = NodeKeys::load(&base).expect("keys");

    let rpc = RpcClient::new(node.rpc);
    let info: NodeInfo = rpc.call("node_info", None).expect("node_info");
    assert_eq!(info.pubkey, keys.node_pubkey_hex());
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.store_backend, backend.as_str());
    assert_eq!(parse_hex_u64(&info.channel_count), Some(0));

    // admin is not enabled: backup does not exist for this node.
    let err = rpc
        .call::<()>("backup", None)
        .expect_err("backup must be unavailable");
    assert_eq!(err.server_error().map(|e| e.code), Some(-32601), "{err}");

    // A second node on the same base dir is refused while the first runs.
    let second = run_cli(&["-d", base.root().to_str().expect("utf8")], &[]);
    assert!(!second.status.success());
    assert!(second.stderr.contains("in use"), "{}", second.stderr);

    let status = node.terminate();
    assert!(status.success());

    // The lock is gone with the process, and a restart keeps the same identity.
    let node = NodeProcess::start(&base);
    let info: NodeInfo = RpcClient::new(node.rpc)
        .call("node_info", None)
        .expect("node_info");
    assert_eq!(info.pubkey, keys.node_pubkey_hex());
    node.terminate();
}

fn backup_rpc_writes_a_backup_that_cli_restore_applies(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_in(&dir);
    write_config(&base, backend, &["info", "admin"]);
    // First start creates the layout; then seed channel records while the node is stopped.
    NodeProcess::start(&base).terminate();
    {
        let store = open_store(backend, &base.store_dir()).expect("open");
        channel(1, ChannelState::ChannelReady)
            .save(store.as_ref())
            .expect("save");
        channel(2, ChannelState::ShuttingDown(1))
            .save(store.as_ref())
            .expect("save");
        channel(3, ChannelState::Closed(1))
            .save(store.as_ref())
            .expect("save");
    }

    let node = NodeProcess::start(&base);
    let rpc = RpcClient::new(node.rpc);
    let result: serde_json::Value = rpc.call("backup", None).expect("backup");
    assert_eq!(result, serde_json::Value::Null, "backup returns null");
    // Fiber's params convention with an explicit empty object works too.
    let _: serde_json::Value = rpc
        .call("backup", Some(serde_json::json!({})))
        .expect("backup {}");
    let backups = dir_names(&base.backups_dir());
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert!(
        backups.iter().all(|b| b.parse::<u64>().is_ok()),
        "named by unix ms: {backups:?}"
    );
    let info: NodeInfo = rpc.call("node_info", None).expect("node_info");
    assert_eq!(parse_hex_u64(&info.channel_count), Some(3));
    node.terminate();

    let backup_dir = base.backups_dir().join(&backups[0]);
    let out = run_restore_cli(&base, &backup_dir, &[]);
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains("channels marked Stale: 2"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("store.bak."), "{}", out.stdout);
    assert!(
        out.stdout.contains("was ShuttingDown(0x1)"),
        "{}",
        out.stdout
    );

    let store = open_store(backend, &base.store_dir()).expect("open");
    let states: Vec<ChannelState> = ChannelRecord::load_all(store.as_ref())
        .expect("load")
        .into_iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(
        states,
        [
            ChannelState::Stale,
            ChannelState::Stale,
            ChannelState::Closed(1)
        ]
    );
}

fn cli_restore_is_refused_while_the_node_runs(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_in(&dir);
    write_config(&base, backend, &["info", "admin"]);
    let node = NodeProcess::start(&base);
    let _: serde_json::Value = RpcClient::new(node.rpc)
        .call("backup", None)
        .expect("backup");
    let backup_dir = base.backups_dir().join(&dir_names(&base.backups_dir())[0]);
    let fiber_before = dir_names(&base.fiber_dir());
    let sk_before = std::fs::read(base.node_key()).expect("sk");

    let out = run_restore_cli(&base, &backup_dir, &[]);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("refusing to restore") && out.stderr.contains("stop the running node"),
        "{}",
        out.stderr
    );
    assert_eq!(dir_names(&base.fiber_dir()), fiber_before, "nothing moved");
    assert_eq!(std::fs::read(base.node_key()).expect("sk"), sk_before);
    // The node is unharmed.
    let _: NodeInfo = RpcClient::new(node.rpc)
        .call("node_info", None)
        .expect("still serving");
    node.terminate();
}

fn cli_restore_copy_failure_exits_non_zero_and_keeps_the_store(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_in(&dir);
    write_config(&base, backend, &["info", "admin"]);
    let node = NodeProcess::start(&base);
    let _: serde_json::Value = RpcClient::new(node.rpc)
        .call("backup", None)
        .expect("backup");
    node.terminate();
    let backup_dir = base.backups_dir().join(&dir_names(&base.backups_dir())[0]);
    let store_before = fingerprint(&base.store_dir());
    let fiber_before = dir_names(&base.fiber_dir());

    // Fail on the third file of a RocksDB checkpoint (mid-copy), on SQLite's only file.
    let failpoint = match backend {
        Backend::Rocksdb => "restore.copy_file=3",
        Backend::Sqlite => "restore.copy_file=1",
    };
    let out = run_restore_cli(&base, &backup_dir, &[("DLP_NODE_FAILPOINTS", failpoint)]);
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(out.stderr.contains("injected failure"), "{}", out.stderr);
    assert!(out.stderr.contains("original store"), "{}", out.stderr);
    assert_eq!(
        fingerprint(&base.store_dir()),
        store_before,
        "store byte-identical"
    );
    assert_eq!(
        dir_names(&base.fiber_dir()),
        fiber_before,
        "no staging or store.bak left"
    );
}

/// `backup.keep = 3`: after each `backup` call at most three complete backups remain, always
/// the newest ones; a directory without a manifest (an interrupted backup) and one that is not
/// named by a stamp are never touched. Before retention, 101 calls made 101 directories.
fn backup_keep_bounds_the_backups_and_never_deletes_the_newest(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = base_in(&dir);
    write_config(&base, backend, &["info", "admin"]);
    let mut config = std::fs::read_to_string(base.default_config()).expect("config");
    config.push_str("[backup]\nkeep = 3\n");
    std::fs::write(base.default_config(), config).expect("config");
    std::fs::create_dir_all(base.backups_dir().join("1")).expect("interrupted backup");
    std::fs::create_dir_all(base.backups_dir().join("by-hand")).expect("operator's dir");

    let node = NodeProcess::start(&base);
    let rpc = RpcClient::new(node.rpc);
    let complete = || -> Vec<u64> {
        let mut stamps: Vec<u64> = dir_names(&base.backups_dir())
            .into_iter()
            .filter(|n| {
                base.backups_dir()
                    .join(n)
                    .join(dlp_node::backup::MANIFEST_FILE)
                    .is_file()
            })
            .map(|n| n.parse().expect("stamp"))
            .collect();
        stamps.sort();
        stamps
    };
    let mut taken = Vec::new();
    for call in 1..=6 {
        let _: serde_json::Value = rpc.call("backup", None).expect("backup");
        let now = complete();
        let newest = *now.last().expect("a backup");
        assert!(!taken.contains(&newest), "call {call}: a new backup");
        taken.push(newest);
        assert_eq!(now.len(), call.min(3), "call {call}: {now:?}");
        assert_eq!(now, taken[taken.len() - now.len()..], "the newest are kept");
    }
    node.terminate();
    let names = dir_names(&base.backups_dir());
    assert!(names.contains(&"1".to_string()), "{names:?}");
    assert!(names.contains(&"by-hand".to_string()), "{names:?}");

    // keep = 0 would delete the newest: refused at start.
    let text = std::fs::read_to_string(base.default_config())
        .expect("config")
        .replace("keep = 3", "keep = 0");
    std::fs::write(base.default_config(), text).expect("config");
    let out = run_cli(&["-d", base.root().to_str().expect("utf8")], &[]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("backup.keep"), "{}", out.stderr);
}
