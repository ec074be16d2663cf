//! `dlp-harness explore`: run seeded random schedules (one or many seeds, on each backend),
//! report failures with their seed and reproduce command, shrink the first failure per backend
//! and write it as a scenario: into the failure's run directory, or where `--write-regression`
//! says (the source tree only when asked). Every failing run keeps its `report.html`, the
//! shrunk one too (printed as `report:` next to the regression it reproduces).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use dlp_harness::explore::{
    MidPaymentBackups, ScheduleSpec, generate, run_schedule, shrink, write_regression,
};
use dlp_harness::report::REPORT_FILE;
use dlp_harness::run::runner::runs_root;
use dlp_harness::scenario::render;
use dlp_harness::steps::Scenario;
use dlp_node_api::{AuditPolicy, Backend};

use crate::progress_cli::Progress;
use crate::{BackendArg, DriverArg, Exit, PolicyArg, PolicyChoice, usage_error};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many seeds (seed, seed+1, ...).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Steps per schedule.
    #[arg(long, default_value_t = 12)]
    steps: usize,
    /// Nodes (2-4; default varies with the seed).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=4))]
    nodes: Option<usize>,
    #[command(flatten)]
    backend: BackendArg,
    #[command(flatten)]
    policy: PolicyArg,
    #[command(flatten)]
    driver: DriverArg,
    /// Schedules run at the same time.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Do not shrink failures.
    #[arg(long)]
    no_shrink: bool,
    /// Runs a shrink may spend.
    #[arg(long, default_value_t = 200)]
    max_shrink_runs: usize,
    /// Write each shrunk failure here as a regression scenario (e.g. scenarios/regressions).
    /// Without it, the shrunk scenario goes into the failure's kept run directory only:
    /// nothing is written into the source tree unless asked.
    #[arg(long, value_name = "DIR")]
    write_regression: Option<PathBuf>,
}

/// A schedule that failed.
struct Failure {
    spec: ScheduleSpec,
    backend: Backend,
    signature: String,
    failure: String,
    /// The exit code this failure calls for (3 when the harness could not start).
    exit: Exit,
    dir: PathBuf,
}

/// One schedule's run, as a task hands it back.
struct ScheduleRun {
    spec: ScheduleSpec,
    backend: Backend,
    dir: PathBuf,
    /// The failure's text and what it calls for; `None` when the schedule passed.
    failure: Option<(String, Exit)>,
    secs: f64,
    /// Audits passed, audits failed, penalties broadcast.
    stats: [usize; 3],
    mid_payment: MidPaymentBackups,
}

pub fn main(args: Args) -> Exit {
    let backends = args.backend.backends();
    let policy = match args.policy.or(PolicyChoice::Strict) {
        PolicyChoice::Strict => AuditPolicy::Strict,
        PolicyChoice::Fiber => AuditPolicy::Fiber,
        PolicyChoice::All => usage_error(
            "explore: --policy all: every schedule runs under one policy, fiber or strict",
        ),
    };
    let driver = args.driver.kind();
    let runtime = match dlp_harness::run::runner::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return Exit::CannotStart;
        }
    };
    let root = runs_root().join(format!("explore-{}-{}", args.seed, std::process::id()));
    eprintln!(
        "exploring seeds {}..{} ({} steps, {} nodes, policy {policy}) on {} with the {} driver, {} at a time",
        args.seed,
        args.seed + args.seeds,
        args.steps,
        args.nodes
            .map_or_else(|| "2-4".to_string(), |n| n.to_string()),
        backends
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join("+"),
        driver.name(),
        args.jobs
    );
    let started = Instant::now();
    let specs: Vec<(ScheduleSpec, Backend)> = (args.seed..args.seed + args.seeds)
        .flat_map(|seed| {
            let mut spec = ScheduleSpec::of_seed(seed, args.steps, policy);
            if let Some(nodes) = args.nodes {
                spec.nodes = nodes;
            }
            backends.iter().map(move |b| (spec, *b))
        })
        .collect();
    let total = specs.len();
    let failures: Vec<Failure> = runtime.block_on(async {
        let semaphore = Arc::new(tokio::sync::Semaphore::new(args.jobs.max(1)));
        let mut set = tokio::task::JoinSet::new();
        // Which schedule each task runs, to report a panic with its seed.
        let mut tasks = std::collections::HashMap::new();
        for (spec, backend) in specs {
            let semaphore = semaphore.clone();
            let dir = root.join(format!("seed-{}-{backend}", spec.seed));
            let task_dir = dir.clone();
            let handle = set.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let path = dir.join("schedule.toml");
                let scenario = match Scenario::generated(&path, &generate(spec), "") {
                    Ok(s) => s,
                    Err(e) => {
                        let failure = format!("generated an invalid schedule: {e}");
                        return ScheduleRun { spec, backend, dir, failure: Some((failure, Exit::Failed)), secs: 0.0, stats: [0; 3], mid_payment: MidPaymentBackups::default() };
                    }
                };
                // Kept with a failure, for `dlp-harness run`.
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(&path, scenario.text());
                let outcome = run_schedule(&scenario, driver, backend, spec.seed, &dir.join("run")).await;
                let count = |what: &str| outcome.event_log.iter().filter(|l| l.contains(what)).count();
                let stats = [count("\"audit_passed\""), count("\"audit_failed\""), count("\"penalty\"")];
                let failure = outcome.error.map(|error| (error.to_string(), Exit::of(&error)));
                ScheduleRun { spec, backend, dir, failure, secs: outcome.elapsed.as_secs_f64(), stats, mid_payment: outcome.mid_payment }
            });
            tasks.insert(handle.id(), (spec, backend, task_dir));
        }
        let progress = Progress::new(total);
        let mut failures = Vec::new();
        let mut done = 0;
        let mut times = Vec::new();
        let mut totals = [0usize; 3];
        let mut mid_payment = MidPaymentBackups::default();
        while let Some(joined) = set.join_next_with_id().await {
            done += 1;
            let ScheduleRun { spec, backend, dir, failure, secs, stats, mid_payment: mid } = match joined {
                Ok((id, finished)) => {
                    tasks.remove(&id);
                    finished
                }
                Err(e) => {
                    let Some((spec, backend, dir)) = tasks.remove(&e.id()) else {
                        progress.line(&format!("a schedule panicked and cannot be named: {e}"));
                        progress.advance();
                        continue;
                    };
                    let failure = format!("the harness panicked: {e}");
                    ScheduleRun { spec, backend, dir, failure: Some((failure, Exit::Failed)), secs: 0.0, stats: [0; 3], mid_payment: MidPaymentBackups::default() }
                }
            };
            times.push(secs);
            mid_payment += mid;
            for (total, n) in totals.iter_mut().zip(stats) {
                *total += n;
            }
            match failure {
                None => {
                    let _ = std::fs::remove_dir_all(&dir);
                    // A terminal has the bar; a log a line now and then.
                    if !progress.on_terminal() && (done % 50 == 0 || done == total) {
                        progress.line(&format!(
                            "[{done:>5}/{total}] {} failed so far, {:.0} s",
                            failures.len(),
                            started.elapsed().as_secs_f64()
                        ));
                    }
                }
                Some((failure, exit)) => {
                    progress.line(&format!(
                        "[{done:>5}/{total}] seed {} on {backend} FAILED:\n  {}\n  reproduce: {}\n  schedule: {}\n  report: {}",
                        spec.seed,
                        failure.lines().take(8).collect::<Vec<_>>().join("\n  "),
                        spec.reproduce(backend),
                        dir.join("schedule.toml").display(),
                        dir.join("run").join(REPORT_FILE).display()
                    ));
                    failures.push(Failure {
                        spec,
                        backend,
                        signature: dlp_harness::explore::signature(&failure),
                        failure,
                        exit,
                        dir,
                    });
                }
            }
            progress.advance();
            progress.running(format!("{} failed", failures.len()));
        }
        drop(progress);
        eprintln!(
            "audits seen: {} passed, {} failed; penalty broadcasts: {}",
            totals[0], totals[1], totals[2]
        );
        eprintln!(
            "mid-payment backups (backup_at): {} armed, {} fired, {} restores of them; {} \
             restores found theirs never written (the node restarted instead)",
            mid_payment.armed, mid_payment.fired, mid_payment.restored, mid_payment.unreached
        );
        times.sort_by(f64::total_cmp);
        if let Some(median) = times.get(times.len() / 2) {
            eprintln!(
                "median {median:.2} s per schedule, slowest {:.2} s",
                times.last().copied().unwrap_or_default()
            );
        }
        failures
    });
    println!(
        "{total} schedules ({} seeds x {} backends) in {:.1} s: {} failed",
        args.seeds,
        backends.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&root);
        return Exit::Passed;
    }
    if !args.no_shrink {
        let mut shrunk_backends = Vec::new();
        // A harness that could not start says nothing about the schedule: nothing to shrink.
        for f in failures.iter().filter(|f| f.exit != Exit::CannotStart) {
            if shrunk_backends.contains(&f.backend) {
                continue;
            }
            shrunk_backends.push(f.backend);
            eprintln!(
                "shrinking seed {} on {} (signature: {})",
                f.spec.seed, f.backend, f.signature
            );
            let file = generate(f.spec);
            let progress = |p: dlp_harness::explore::ShrinkProgress| {
                eprintln!(
                    "  run {}: {} steps still fail the same way",
                    p.tries, p.steps
                );
            };
            let shrunk = runtime.block_on(shrink(
                &file,
                &f.signature,
                driver,
                f.backend,
                f.spec.seed,
                &f.dir.join("shrink"),
                args.max_shrink_runs,
                &progress,
            ));
            match shrunk {
                Ok((file, outcome)) => {
                    let text = render(&file, "");
                    let dir = args.write_regression.as_deref().unwrap_or(&f.dir);
                    match write_regression(&file, &outcome, f.spec, f.backend, dir) {
                        Ok(path) => println!(
                            "seed {} on {}: shrunk to {} steps, written to {}\n  reproduce: dlp-harness run {} --backend {} --seed {}\n  report: {}\n  failure: {}\n{text}",
                            f.spec.seed,
                            f.backend,
                            file.steps.len() / 2,
                            path.display(),
                            path.display(),
                            f.backend,
                            f.spec.seed,
                            outcome.report.as_ref().map_or_else(
                                || "(the shrunk run left no report)".to_string(),
                                |p| p.display().to_string()
                            ),
                            outcome
                                .failure
                                .as_deref()
                                .unwrap_or("(did not fail again)")
                                .lines()
                                .next()
                                .unwrap_or_default()
                        ),
                        Err(e) => eprintln!("error: writing the regression: {e}"),
                    }
                }
                Err(e) => eprintln!("error: shrinking: {e}"),
            }
        }
    }
    for f in &failures {
        println!(
            "FAILED seed {} on {}: {}",
            f.spec.seed,
            f.backend,
            f.failure.lines().next().unwrap_or_default()
        );
    }
    failures
        .iter()
        .map(|f| f.exit)
        .max()
        .unwrap_or(Exit::Failed)
}
