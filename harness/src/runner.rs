//! Running one scenario on one backend and driver in a fresh run directory, kept on failure.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use dlp_node::store::Backend;

use crate::driver::DriverKind;
use crate::scenario::{Outcome, Scenario};

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where runs go: `$DLP_HARNESS_RUN_DIR` or `$TMPDIR/dlp-harness-runs`.
pub fn runs_root() -> PathBuf {
    std::env::var_os("DLP_HARNESS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("dlp-harness-runs"))
}

/// The test name of a scenario on a backend: `audit_failure@rocksdb`.
pub fn test_name(scenario: &Scenario, backend: Backend) -> String {
    format!("{}@{}", scenario.name, backend)
}

/// Run one combination on a fresh multi-threaded runtime. The run directory is removed on
/// success unless `keep`.
pub fn run_blocking(
    scenario: &Scenario,
    backend: Backend,
    driver: DriverKind,
    keep: bool,
) -> Outcome {
    let run_dir = runs_root().join(format!(
        "{}-{}-{}-{}",
        test_name(scenario, backend),
        driver.name(),
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Outcome {
                elapsed: std::time::Duration::ZERO,
                run_dir,
                failure: Some(format!("the harness could not start a runtime: {e}")),
            };
        }
    };
    let outcome = runtime.block_on(crate::scenario::run(scenario, driver, backend, &run_dir));
    drop(runtime);
    if outcome.failure.is_none() && !keep {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    outcome
}
