//! The corpus of old backups (`fixtures/backups/<version>/<backend>/`, written by earlier
//! builds through `dlp-harness versions corpus`): this build must read every one of them as the
//! build that wrote it did.
//!
//! For each backup of bob: restored by this build (a manifest without digests accepted with
//! `--accept-undigested-backup`'s option, its records migrated), bob lists exactly the channels
//! the corpus describes (ids, Stale, balances, commitment numbers, pending TLCs). Alice's backup
//! (`peer/`) is started as a live home written by the earlier build (its store migrated on
//! start) and lists her channels as described; she connects, and bob's audit has the outcome
//! the earlier build's had.

use std::path::{Path, PathBuf};

use dlp_node_api::ChannelInfo;
use serde_json::Value;

use super::support::{Net, config};
use crate::events::EventKind;
use crate::layout::BaseDir;
use crate::restore::{RestoreOptions, restore};
use crate::store::Backend;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/backups")
}

/// Every `<version>/<backend>/corpus.json` for `backend`.
fn descriptions(backend: Backend) -> Vec<(PathBuf, Value)> {
    let mut found = Vec::new();
    let Ok(versions) = std::fs::read_dir(corpus_root()) else {
        return found;
    };
    for version in versions.filter_map(Result::ok) {
        let dir = version.path().join(backend.to_string());
        let file = dir.join("corpus.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            let value: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            found.push((dir, value));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

fn channels_of(value: &Value) -> Vec<ChannelInfo> {
    serde_json::from_value(value["channels"].clone()).expect("channels")
}

/// What the corpus compares: everything a restore must keep.
fn key_facts(c: &ChannelInfo) -> (String, String, u64, u64, u64, u64, usize) {
    (
        c.channel_id.to_string(),
        c.state.to_string(),
        c.local_balance,
        c.remote_balance,
        c.local_commitment_number,
        c.remote_commitment_number,
        c.pending_tlcs.len(),
    )
}

/// A live home from a backup's store and keys, as if the writing build had stopped there.
fn live_home_from(backup: &Path, home: &BaseDir, backend: Backend) {
    std::fs::create_dir_all(home.fiber_dir()).expect("fiber dir");
    std::fs::create_dir_all(home.ckb_dir()).expect("ckb dir");
    std::fs::copy(backup.join("sk"), home.node_key()).expect("node key");
    std::fs::copy(backup.join("key"), home.wallet_key()).expect("wallet key");
    let store = home.store_dir();
    std::fs::create_dir_all(&store).expect("store dir");
    match backend {
        Backend::Rocksdb => {
            for entry in std::fs::read_dir(backup.join(dlp_node_api::ROCKSDB_BACKUP_DIR_NAME))
                .expect("checkpoint")
            {
                let entry = entry.expect("entry");
                std::fs::copy(entry.path(), store.join(entry.file_name())).expect("copy");
            }
        }
        Backend::Sqlite => {
            std::fs::copy(
                backup.join(dlp_node_api::SQLITE_FILE_NAME),
                store.join(dlp_node_api::SQLITE_FILE_NAME),
            )
            .expect("sqlite file");
        }
    }
}

async fn every_corpus_backup_restores_as_its_writer_read_it(backend: Backend) {
    let corpus = descriptions(backend);
    assert!(
        corpus.len() >= 2,
        "the corpus holds {} version(s) on {backend} under {}; regenerate it with \
         `dlp-harness versions corpus`",
        corpus.len(),
        corpus_root().display()
    );
    for (dir, description) in corpus {
        let version = description["version"]
            .as_str()
            .expect("version")
            .to_string();
        let peer = &description["peer"];
        for restored in description["restored"].as_array().expect("restored") {
            let state = restored["state"].as_str().expect("state");
            let what = format!("{version} {backend} {state}");
            let mut net = Net::new(backend, &[]).await;
            // Alice: the earlier build's live home, started by this build.
            live_home_from(&dir.join("peer"), &net.home("alice"), backend);
            net.add("alice", config(backend)).await;
            let alice: Vec<_> = net.channels("alice").await.iter().map(key_facts).collect();
            let want: Vec<_> = channels_of(peer).iter().map(key_facts).collect();
            assert_eq!(
                alice, want,
                "{what}: alice's home as the earlier build left it"
            );
            // Bob: restored by this build from the earlier build's backup.
            let bob = net.home("bob");
            std::fs::create_dir_all(bob.root()).expect("bob's home");
            let undigested = restored["manifest_format"].as_u64() == Some(1);
            restore(
                &bob,
                backend,
                &dir.join(state),
                &RestoreOptions {
                    accept_undigested: undigested,
                    ..RestoreOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{what}: this build refused the backup: {e}"));
            net.add("bob", config(backend)).await;
            let got: Vec<_> = net.channels("bob").await.iter().map(key_facts).collect();
            let want: Vec<_> = channels_of(restored).iter().map(key_facts).collect();
            assert_eq!(
                got, want,
                "{what}: bob's channels after this build restored it"
            );
            assert!(
                got.iter().all(|c| c.1 == "Stale"),
                "{what}: every restored channel is Stale: {got:?}"
            );
            let after = net.last_seq("bob");
            net.connect("alice", "bob").await;
            let audit = net
                .wait("bob", after, "bob's audit", |k| {
                    matches!(k, EventKind::Audit(_))
                })
                .await;
            let outcome = match &audit.kind {
                EventKind::Audit(a) if a.passed() => "passed",
                _ => "failed",
            };
            assert_eq!(
                outcome,
                restored["audit"].as_str().expect("audit"),
                "{what}: bob's audit against alice, as the earlier build had it"
            );
            net.shutdown().await;
        }
    }
}

for_each_backend!(every_corpus_backup_restores_as_its_writer_read_it);
