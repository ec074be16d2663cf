//! Run one test: a sweep point judged on its own (as `dlp-harness sweep` judges each point) and
//! held to the per-point rules (`sweep::point_problems`), or an explorer seed run with its
//! invariants. Blocking: each test gets a runtime of its own (nextest runs each test in a
//! process of its own anyway). A failed test keeps its run directory; a passed one removes it.

use std::path::Path;
use std::time::Instant;

use super::record::{Outcome, Record};
use super::{ShardTest, ShardsFile};
use crate::capability::DriverKind;
use crate::explore::run_spec;
use crate::run::runner::runtime;
use crate::sweep::{
    JudgeOptions, PointResult, PointRun, point_problems, point_reports, sweep_point,
};

/// Run `test` on `driver` and say what it found. The sweep points run with the configuration's
/// seed (their points were discovered with it); the explorer seeds with their own. `also`
/// adds rules of the caller's for a judged point (what a shipped workload was written to show);
/// a point that breaks any rule keeps its run directory, named in its problems.
pub fn run_test(
    file: &ShardsFile,
    test: &ShardTest,
    driver: DriverKind,
    runs_root: &Path,
    also: &dyn Fn(&str, &PointResult) -> Vec<String>,
) -> Record {
    let name = test.name();
    let dir = runs_root.join(format!(
        "shard-{}-{}",
        Record::file_name(&name).trim_end_matches(".json"),
        std::process::id()
    ));
    let seed = match test {
        ShardTest::Sweep { .. } => file.seed,
        ShardTest::Explore { spec, .. } => spec.seed,
    };
    let broken = |why: String| Record {
        test: name.clone(),
        driver: driver.name().to_string(),
        seed,
        outcome: Outcome::Broken { why: why.clone() },
        problems: vec![why],
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return broken(format!("cannot start a runtime: {e}")),
    };
    match test {
        ShardTest::Sweep {
            workload,
            backend,
            policy,
            point,
            rules,
        } => {
            let how = PointRun {
                backend: *backend,
                policy: *policy,
                driver,
                seed: file.seed,
                judge: JudgeOptions::default(),
            };
            let mut result = rt.block_on(sweep_point(workload, how, point.clone(), &dir));
            let mut problems = point_problems(&result, *rules);
            problems.extend(also(workload.name(), &result));
            if problems.is_empty() {
                let _ = std::fs::remove_dir_all(&dir);
                result.run_dir = None;
            } else {
                point_reports(&dir);
                problems.push(format!(
                    "kept: {} (point.toml reproduces it with dlp-harness run; report.html per run)",
                    dir.display()
                ));
            }
            Record {
                test: name,
                driver: driver.name().to_string(),
                seed: file.seed,
                outcome: Outcome::Sweep {
                    workload: workload.name().to_string(),
                    result: Box::new(result),
                },
                problems,
            }
        }
        ShardTest::Explore { spec, backend } => {
            let started = Instant::now();
            let outcome = match rt.block_on(run_spec(*spec, driver, *backend, &dir)) {
                Ok(outcome) => outcome,
                Err(e) => return broken(format!("cannot run the schedule: {e}")),
            };
            let mut problems = Vec::new();
            if let Some(failure) = &outcome.failure {
                problems.push(format!(
                    "seed {} on {backend} failed (reproduce: {}; kept: {}):\n{failure}",
                    spec.seed,
                    spec.reproduce(backend),
                    dir.display()
                ));
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Record {
                test: name,
                driver: driver.name().to_string(),
                seed: spec.seed,
                outcome: Outcome::Explore {
                    seed: spec.seed,
                    backend: backend.to_string(),
                    policy: spec.policy.to_string(),
                    steps: spec.steps,
                    nodes: spec.nodes,
                    failure: outcome
                        .failure
                        .as_deref()
                        .map(|f| f.lines().next().unwrap_or_default().to_string()),
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                },
                problems,
            }
        }
    }
}
