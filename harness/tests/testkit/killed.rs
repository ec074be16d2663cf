//! Killing a restore at every rename and sync call, on a driver that can (process, container):
//! the run and its checks, shared by the `integration` and `containers` binaries.

use dlp_harness::capability::DriverKind;
use dlp_harness::run::runner::runs_root;
use dlp_harness::sweep::{KillBackend, RENAME_AND_SYNC, Workload, kill_every_call};
use dlp_node_api::Backend;

/// Every rename and sync of a restore of `workload`'s node, killed, on `driver`.
pub fn kill_all(workload: &str, driver: DriverKind, backend: Backend) -> KillBackend {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/sweeps")
        .join(workload);
    let workload = Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let dir = runs_root().join(format!(
        "killed-{}-{backend}-{}-{}",
        driver.name(),
        std::process::id(),
        dlp_node_api::unix_ms()
    ));
    let runtime = dlp_harness::run::runner::runtime().expect("runtime");
    let counts = runtime
        .block_on(kill_every_call(
            &workload,
            backend,
            driver,
            1,
            &RENAME_AND_SYNC,
            &dir,
        ))
        .unwrap_or_else(|e| panic!("{backend}: {e}\nrun kept in {}", dir.display()));
    let _ = std::fs::remove_dir_all(&dir);
    counts
}

/// The counts, one line per syscall, and the checks every driver must pass: some rename and
/// some sync was killed (else the sweep tested nothing).
pub fn check(result: &KillBackend) {
    let mut lines = String::new();
    for c in &result.counts {
        lines.push_str(&format!(
            "{} {}: {} kill points, {} on the old store, {} on the restored store\n",
            result.backend, c.syscall, c.killed, c.old_store, c.restored_store
        ));
    }
    eprint!("{lines}");
    let killed = |names: &[&str]| -> u32 {
        result
            .counts
            .iter()
            .filter(|c| names.contains(&c.syscall.as_str()))
            .map(|c| c.killed)
            .sum()
    };
    assert!(
        killed(&["rename", "renameat", "renameat2"]) > 0,
        "no rename killed\n{lines}"
    );
    assert!(
        killed(&["fsync", "fdatasync"]) > 0,
        "no sync killed\n{lines}"
    );
    for c in &result.counts {
        assert_eq!(c.killed, c.old_store + c.restored_store, "{lines}");
    }
}
