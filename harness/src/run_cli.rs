//! `dlp-harness run`: every scenario x backend on one driver, `--jobs` runs at a time (default:
//! the machine's cores, as nextest), a line each in the order of the selection (under a progress
//! bar on a terminal: [`Progress`]), a failure's report (and its kept run directory's
//! report.html) in its place, the summary table at the end; with `--junit FILE` / `--json FILE`
//! the same results for CI pages and scripts.
//!
//! Runs are independent (each its own runtime, run directory, ports and, on the container
//! driver, its own network), so they go in parallel on worker threads; a run that ends before an
//! earlier one waits, so the lines read the same whatever the timing.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use dlp_harness::capability::DriverKind;
use dlp_harness::report::{ResultOutcome, RunResult, RunSummary};
use dlp_harness::run::Outcome;
use dlp_harness::run::runner::{run_blocking, runs_root, test_name};
use dlp_harness::steps::Scenario;
use dlp_node_api::Backend;

use crate::progress_cli::Progress;
use crate::{BackendArg, DriverArg, Exit, load_all, seed};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    backend: BackendArg,
    #[command(flatten)]
    driver: DriverArg,
    /// Keep every run directory, not only failed ones, each with its report.html (and, on the
    /// container driver, every container, for inspection; `TESTCONTAINERS_COMMAND=keep` does
    /// the same).
    #[arg(long)]
    keep: bool,
    /// Seed of everything random (node keys and the nodes' own randomness); default
    /// $DLP_HARNESS_SEED, else random. Printed with every failure.
    #[arg(long)]
    seed: Option<u64>,
    /// Also write the results as JUnit XML here: one testcase per scenario x backend x driver,
    /// with the failure's text and the path of its report.html.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Also write the results as JSON here (outcome, failure kind and text, time, run
    /// directory and report.html of each).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Runs at the same time (default: the machine's cores). The lines still come in the order
    /// of the selection.
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<NonZeroUsize>,
}

/// The default of `--jobs`: the machine's cores, as nextest's test threads.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub fn main(args: Args) -> Exit {
    let seed = match seed(args.seed, None) {
        Ok(seed) => seed,
        Err(exit) => return exit,
    };
    let driver = args.driver.kind();
    let selection = match load_all(&args.paths, driver) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let only = args.backend.backends();
    let combinations = |s: &'_ Scenario| -> Vec<Backend> {
        s.backends()
            .into_iter()
            .filter(|b| only.contains(b))
            .collect()
    };
    let jobs: Vec<(&Scenario, Backend)> = selection
        .runnable
        .iter()
        .flat_map(|s| combinations(s).into_iter().map(move |b| (s, b)))
        .collect();
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for (scenario, why) in &selection.skipped {
        eprintln!("skip  {why}");
        for b in combinations(scenario) {
            let name = test_name(scenario, b, driver);
            skipped.push(name.clone());
            results.push(RunResult {
                name,
                scenario: scenario.path.clone(),
                backend: b.to_string(),
                driver: driver.name().to_string(),
                outcome: ResultOutcome::Skipped {
                    reason: why.to_string(),
                },
                elapsed_ms: 0,
                run_dir: None,
                report: None,
            });
        }
    }
    eprintln!(
        "running {} scenario runs on the {} driver, seed {seed} (run directories under {})",
        jobs.len(),
        driver.name(),
        runs_root().display()
    );
    dlp_harness::driver::keep_containers(args.keep);
    let started = Instant::now();
    let parallel = args
        .jobs
        .map_or_else(default_jobs, NonZeroUsize::get)
        .min(jobs.len().max(1));
    let mut printer = Printer {
        progress: Progress::new(jobs.len()),
        keep: args.keep,
        driver,
        total: jobs.len(),
        width: jobs.len().to_string().len(),
        results,
        rows: Vec::new(),
        exit: Exit::Passed,
    };
    let next = AtomicUsize::new(0);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Outcome)>();
    let keep = args.keep;
    let (jobs_ref, next_ref) = (&jobs, &next);
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            let done_tx = done_tx.clone();
            scope.spawn(move || {
                loop {
                    let i = next_ref.fetch_add(1, Ordering::Relaxed);
                    let Some((scenario, backend)) = jobs_ref.get(i) else {
                        break;
                    };
                    let outcome = run_blocking(scenario, *backend, driver, keep, seed);
                    if done_tx.send((i, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        // A run that ends before an earlier one waits here until that one is printed.
        let mut finished: BTreeMap<usize, Outcome> = BTreeMap::new();
        let mut printed = 0;
        for (i, outcome) in done_rx {
            finished.insert(i, outcome);
            while let Some(outcome) = finished.remove(&printed) {
                let (scenario, backend) = jobs[printed];
                printer.record(printed, scenario, backend, outcome);
                printed += 1;
            }
            let started_runs = next.load(Ordering::Relaxed).min(jobs.len());
            let running: Vec<String> = (printed..started_runs)
                .filter(|j| !finished.contains_key(j))
                .map(|j| test_name(jobs[j].0, jobs[j].1, driver))
                .collect();
            printer.progress.running(running.join(", "));
        }
    });
    let Printer {
        progress,
        results,
        rows,
        mut exit,
        ..
    } = printer;
    drop(progress);
    println!("\n| scenario | result | time |\n|---|---|---:|");
    for (name, result, elapsed) in &rows {
        println!("| {name} | {result} | {:.2} s |", elapsed.as_secs_f64());
    }
    for name in &skipped {
        println!("| {name} | skipped (the driver cannot run it) | |");
    }
    let failed = rows.iter().filter(|(_, r, _)| *r != "ok").count();
    println!(
        "\n{} passed, {failed} failed, {} skipped, {:.1} s in all",
        rows.len() - failed,
        skipped.len(),
        started.elapsed().as_secs_f64()
    );
    let summary = RunSummary::new(driver.name(), seed, results, ms(started.elapsed()));
    for (path, text) in [
        (&args.junit, args.junit.as_ref().map(|_| summary.junit())),
        (
            &args.json,
            args.json
                .as_ref()
                .map(|_| serde_json::to_string_pretty(&summary).unwrap_or_default()),
        ),
    ] {
        if let (Some(path), Some(text)) = (path, text) {
            exit = exit.max(write(path, &text));
        }
    }
    exit
}

/// Prints each run's line (and a failure's report) in the order of the selection and keeps its
/// result for the summary, the JUnit and the JSON.
struct Printer {
    progress: Progress,
    keep: bool,
    driver: DriverKind,
    total: usize,
    width: usize,
    results: Vec<RunResult>,
    rows: Vec<(String, &'static str, std::time::Duration)>,
    exit: Exit,
}

impl Printer {
    fn record(&mut self, i: usize, scenario: &Scenario, backend: Backend, outcome: Outcome) {
        let (driver, width, progress) = (self.driver, self.width, &self.progress);
        let name = test_name(scenario, backend, driver);
        let done = format!("[{:>width$}/{}] {name} ...", i + 1, self.total);
        let (result, kept) = match &outcome.failure {
            None => {
                progress.line(&format!(
                    "{done} ok ({:.2} s)",
                    outcome.elapsed.as_secs_f64()
                ));
                ("ok", self.keep)
            }
            Some(failure) => {
                self.exit = self.exit.max(Exit::of(&failure.error));
                progress.line(&format!("{done} FAILED\n{}", failure.report));
                if let Some(html) = &failure.html {
                    progress.line(&format!("report: {}", html.display()));
                }
                ("FAILED", outcome.run_dir.exists())
            }
        };
        progress.advance();
        let report = outcome.run_dir.join(dlp_harness::report::REPORT_FILE);
        self.results.push(RunResult {
            name: name.clone(),
            scenario: scenario.path.clone(),
            backend: backend.to_string(),
            driver: driver.name().to_string(),
            outcome: match &outcome.failure {
                None => ResultOutcome::Passed,
                Some(f) => ResultOutcome::Failed {
                    kind: f.error.kind().to_string(),
                    message: f.error.to_string(),
                },
            },
            elapsed_ms: ms(outcome.elapsed),
            run_dir: kept.then(|| outcome.run_dir.clone()),
            report: (kept && report.is_file()).then_some(report),
        });
        self.rows.push((name, result, outcome.elapsed));
    }
}

/// Write a results file; a failure to is a failed run (CI would miss the results).
fn write(path: &Path, text: &str) -> Exit {
    match std::fs::write(path, text) {
        Ok(()) => {
            eprintln!("wrote {}", path.display());
            Exit::Passed
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            Exit::Failed
        }
    }
}
