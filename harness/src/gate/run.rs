//! Running the gate: the scenario matrix (each scenario on each listed driver and each backend
//! it names; one the driver cannot run is `skipped`, one that fails is run once more and is
//! `flaky` if it then passes), the sweep workloads under the listed policies (a verdict per
//! point and channel), and the explorer seeds on both backends. Blocking: each scenario run and
//! each sweep or schedule gets a runtime of its own.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use dlp_node_api::Backend;

use super::GateError;
use super::file::GateFile;
use super::verdicts::Verdicts;
use crate::capability::DriverKind;
use crate::explore::{ScheduleSpec, run_spec};
use crate::run::runner::{run_blocking, runs_root, runtime, test_name};
use crate::scenario::discover;
use crate::steps::Scenario;
use crate::sweep::{JudgeOptions, PointList, SweepConfig, Workload, sweep, verdict_keys};

static GATE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What the gate says as it goes.
#[derive(Debug, Clone)]
pub enum GateProgress {
    /// A verdict, as it is reached.
    Verdict { key: String, verdict: String },
    /// Something could not be judged at all (a workload that does not load, say): the gate
    /// fails on it.
    Error(String),
}

/// Run the gate file's parts; every verdict by key, and what could not be judged.
pub fn run_gate(
    gate: &GateFile,
    progress: &dyn Fn(GateProgress),
) -> Result<(Verdicts, Vec<String>), GateError> {
    let mut verdicts = Verdicts::new();
    let mut errors = Vec::new();
    let mut say = |key: String, verdict: String| {
        progress(GateProgress::Verdict {
            key: key.clone(),
            verdict: verdict.clone(),
        });
        verdicts.insert(key, verdict);
    };
    let mut fail = |what: String| {
        progress(GateProgress::Error(what.clone()));
        errors.push(what);
    };

    // The scenario matrix.
    // No [scenarios] table: nothing to discover (discovering nothing is an error elsewhere).
    let found = if gate.scenario_paths.is_empty() {
        Vec::new()
    } else {
        discover(&gate.scenario_paths).map_err(|e| GateError::Invalid {
            path: gate.path.clone(),
            detail: format!("[scenarios] paths: {e}"),
        })?
    };
    for found in &found {
        let scenario: Scenario = match found.load() {
            Ok(s) => s,
            Err(e) => {
                fail(format!("scenario {}: {e}", found.name));
                continue;
            }
        };
        for &driver in &gate.scenario_drivers {
            for backend in scenario.backends() {
                let key = format!("scenario {}", test_name(&scenario, backend, driver));
                if scenario.check_capabilities(driver.capabilities()).is_err() {
                    say(key, "skipped".into());
                    continue;
                }
                let verdict = judge_scenario(|| {
                    run_blocking(&scenario, backend, driver, false, gate.seed)
                        .failure
                        .is_none()
                });
                say(key, verdict.into());
            }
        }
    }

    // The sweeps.
    for path in &gate.sweep_workloads {
        let workload = match Workload::load(path) {
            Ok(w) => w,
            Err(e) => {
                fail(format!("sweep {}: {e}", path.display()));
                continue;
            }
        };
        // The interleaving committed with the workload's points is pinned, so a workload whose
        // nodes take racing inputs (a hub's two channels, concurrent payments) gives the same
        // verdicts run after run; without a committed one (or for another seed) the sweep
        // records its own.
        let workload = match PointList::load(path) {
            Ok(list) if list.seed == gate.seed => workload.pinned(list.order),
            _ => workload,
        };
        let config = SweepConfig {
            backends: vec![Backend::Rocksdb, Backend::Sqlite],
            policies: gate.sweep_policies.clone(),
            driver: gate.sweep_driver,
            seed: gate.seed,
            jobs: 2,
            keep: false,
            only: Vec::new(),
            runs_root: runs_root(),
            judge: JudgeOptions::default(),
        };
        let swept = runtime().map_err(|e| e.to_string()).and_then(|rt| {
            rt.block_on(sweep(&workload, &config, &|_| {}))
                .map_err(|e| e.to_string())
        });
        let report = match swept {
            Ok(report) => report,
            Err(e) => {
                fail(format!("sweep {}: {e}", workload.name()));
                continue;
            }
        };
        for result in &report.results {
            for (key, verdict) in verdict_keys(workload.name(), result) {
                say(key, verdict);
            }
        }
        for disagreement in &report.disagreements {
            fail(format!(
                "sweep {}: backends disagree: {disagreement}",
                workload.name()
            ));
        }
    }

    // The explorer seeds.
    let root = runs_root().join(format!(
        "gate-explore-{}-{}",
        std::process::id(),
        GATE_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    for seed in gate.seed..gate.seed + gate.explore_seeds {
        for backend in [Backend::Rocksdb, Backend::Sqlite] {
            let spec = ScheduleSpec::of_seed(seed, gate.explore_steps, gate.explore_policy);
            let key = format!("explore seed {seed} {backend}");
            let dir = root.join(format!("seed-{seed}-{backend}"));
            match explore_one(spec, backend, &dir) {
                Ok(true) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    say(key, "passed".into());
                }
                Ok(false) => say(key, "failed".into()),
                Err(e) => fail(format!("{key}: {e}")),
            }
        }
    }
    let _ = std::fs::remove_dir(&root);

    // The corpus of old backups, each restored by this build.
    if let Some(dir) = &gate.corpus_dir {
        match crate::corpus::load_all(dir) {
            Err(e) => fail(format!("corpus {}: {e}", dir.display())),
            Ok(entries) => {
                for (entry_dir, description) in entries {
                    let run_dir = runs_root().join(format!(
                        "gate-corpus-{}-{}",
                        std::process::id(),
                        GATE_COUNTER.fetch_add(1, Ordering::Relaxed)
                    ));
                    let checked = runtime().map_err(|e| e.to_string()).and_then(|rt| {
                        rt.block_on(crate::corpus::check(
                            &entry_dir,
                            &description,
                            gate.corpus_driver,
                            &run_dir,
                        ))
                        .map_err(|e| e.to_string())
                    });
                    match checked {
                        Ok(judged) => {
                            let _ = std::fs::remove_dir_all(&run_dir);
                            for (key, verdict) in judged {
                                say(key, verdict);
                            }
                        }
                        Err(e) => fail(format!(
                            "corpus {} {}: {e}",
                            description.version, description.backend
                        )),
                    }
                }
            }
        }
    }
    Ok((verdicts, errors))
}

/// A scenario's verdict from `run` (whether one run passed): `passed`; `failed` twice; or
/// failed, then passed with the same seed: `flaky`, which is not a pass.
fn judge_scenario(mut run: impl FnMut() -> bool) -> &'static str {
    if run() {
        "passed"
    } else if run() {
        "flaky"
    } else {
        "failed"
    }
}

/// Whether one schedule passed (its run directory is kept when not).
fn explore_one(spec: ScheduleSpec, backend: Backend, dir: &Path) -> Result<bool, String> {
    let rt = runtime().map_err(|e| e.to_string())?;
    let outcome = rt
        .block_on(run_spec(spec, DriverKind::InProcess, backend, dir))
        .map_err(|e| e.to_string())?;
    Ok(outcome.failure.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_that_fails_then_passes_is_flaky_not_passed() {
        let runs = |outcomes: &[bool]| {
            let mut left = outcomes.iter().copied();
            let mut ran = 0;
            let verdict = judge_scenario(|| {
                ran += 1;
                left.next().expect("no more runs than outcomes")
            });
            (verdict, ran)
        };
        assert_eq!(runs(&[true]), ("passed", 1));
        assert_eq!(runs(&[false, true]), ("flaky", 2));
        assert_eq!(runs(&[false, false]), ("failed", 2));
    }
}
