//! Running one scenario on one backend and driver in a fresh run directory, kept (with its
//! `report.html`) on failure or when asked:
//! what `dlp-harness run` and the `scenarios` test target share (run directories, the seed, the
//! runtime).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use dlp_node_api::Backend;

use super::{Failure, Outcome, RunFailure};
use crate::capability::DriverKind;
use crate::error::HarnessError;
use crate::steps::Scenario;

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where runs go: `$DLP_HARNESS_RUN_DIR` or `$TMPDIR/dlp-harness-runs`.
pub fn runs_root() -> PathBuf {
    std::env::var_os("DLP_HARNESS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("dlp-harness-runs"))
}

/// The runtime every harness entry point runs on (two workers: the machines have two cores).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// The test name of a scenario on a backend and driver: `audit_failure@rocksdb[in-process]`
/// (see [`Scenario::test_name`]).
pub fn test_name(scenario: &Scenario, backend: Backend, driver: DriverKind) -> String {
    scenario.test_name(backend, driver.name())
}

/// `DLP_HARNESS_SEED` is set but is not a seed.
#[derive(Debug, thiserror::Error)]
#[error("DLP_HARNESS_SEED={0:?} is not an unsigned integer")]
pub struct InvalidSeed(pub String);

/// The seed: `$DLP_HARNESS_SEED` if set, else a fresh random one (printed with any failure).
pub fn seed_from_env() -> Result<u64, InvalidSeed> {
    match std::env::var("DLP_HARNESS_SEED") {
        Ok(text) => text.parse().map_err(|_| InvalidSeed(text)),
        Err(_) => Ok(random_seed()),
    }
}

/// A random seed (from the OS-seeded hasher keys).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(dlp_node_api::unix_ms());
    hasher.finish()
}

/// Run one combination on a fresh multi-threaded runtime, everything random derived from
/// `seed`. The run directory is removed on success unless `keep`.
pub fn run_blocking(
    scenario: &Scenario,
    backend: Backend,
    driver: DriverKind,
    keep: bool,
    seed: u64,
) -> Outcome {
    // `audit_failure@rocksdb-in-process-<pid>-<n>`: no brackets in a path a shell may glob, and
    // one directory per run (`fiber/x` runs in `fiber.x@...`).
    let run_dir = runs_root().join(format!(
        "{}@{backend}-{}-{}-{}",
        scenario.name.replace('/', "."),
        driver.name(),
        std::process::id(),
        RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            let error =
                RunFailure::Setup(HarnessError::Setup(format!("cannot start a runtime: {e}")));
            return Outcome {
                elapsed: std::time::Duration::ZERO,
                run_dir,
                failure: Some(Failure {
                    report: error.to_string(),
                    error,
                    html: None,
                }),
            };
        }
    };
    let outcome = runtime.block_on(super::run(scenario, driver, backend, &run_dir, seed));
    drop(runtime);
    if outcome.failure.is_none() {
        if keep {
            // A kept directory is a report, passed or not (a failed run wrote its own).
            super::write_report(&run_dir);
        } else {
            let _ = std::fs::remove_dir_all(&run_dir);
        }
    }
    outcome
}
