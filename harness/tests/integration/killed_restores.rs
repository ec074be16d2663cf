//! A restore killed at every rename and sync call it makes, on dlp-node processes: after each
//! kill the node starts on its old store or on the complete restored one (the cluster judges
//! which, by what the node reports against the old store's view and a reference restore's),
//! never on an empty or mixed one; the counts say how many kill points each syscall had.

use dlp_harness::capability::DriverKind;
use dlp_node_api::Backend;

use crate::testkit::killed::{check, kill_all};

#[test]
fn a_restore_killed_at_every_rename_and_sync_leaves_one_whole_store_on_processes() {
    for backend in [Backend::Rocksdb, Backend::Sqlite] {
        check(&kill_all(
            "two_node_direct.toml",
            DriverKind::Process,
            backend,
        ));
    }
}
