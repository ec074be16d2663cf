//! `dlp-harness run [PATHS...] [--backend ...] [--driver ...] [--keep]`,
//! `dlp-harness check PATHS...` and `dlp-harness sweep WORKLOAD [--policy ...]`.
//!
//! Exit codes: 0 all passed / all valid / nothing unsafe; 1 a scenario failed or the sweep found
//! UNSAFE, LOST, MISMATCH or ERROR points (or the backends disagreed); 2 a file is invalid (or
//! the paths hold no scenario file at all); 3 the harness could not start.

mod explore_cli;
mod sweep_cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use dlp_harness::driver::DriverKind;
use dlp_harness::runner::{run_blocking, runs_root, test_name};
use dlp_harness::scenario::{RunFailure, Scenario, discover};
use dlp_node::store::Backend;

#[derive(Debug, Parser)]
#[command(
    name = "dlp-harness",
    version,
    about = "End-to-end payment-channel backup/restore scenarios"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run scenarios (files or directories of *.toml).
    Run {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
        /// rocksdb, sqlite or all (default: what each file says, else both).
        #[arg(long, default_value = "all")]
        backend: String,
        /// in-process or process.
        #[arg(long, default_value = "in-process")]
        driver: String,
        /// Keep every run directory, not only failed ones.
        #[arg(long)]
        keep: bool,
        /// Seed of everything random (node keys and the nodes' own randomness); default
        /// $DLP_HARNESS_SEED, else random. Printed with every failure.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Sweep every backup point of a workload's node under test: back up there, finish the
    /// workload, restore, and let the oracle and the ledger judge.
    Sweep(sweep_cli::Args),
    /// Run seeded random schedules over 2-4 nodes with the invariants checked after every
    /// step; shrink a failing one to a minimal regression scenario.
    Explore(explore_cli::Args),
    /// Validate scenario files without running them.
    Check {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
    },
}

const FAILED: u8 = 1;
const INVALID: u8 = 2;
const CANNOT_START: u8 = 3;

/// The exit code for a failed run, chosen by what failed (never by the report's text).
pub(crate) fn exit_code(failure: &RunFailure) -> u8 {
    match failure {
        RunFailure::Setup(_) => CANNOT_START,
        RunFailure::InvalidFile(_) => INVALID,
        RunFailure::Network { .. } | RunFailure::Step { .. } | RunFailure::Invariant { .. } => {
            FAILED
        }
    }
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, ExitCode> {
    let files = match discover(paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(INVALID));
        }
    };
    let mut scenarios = Vec::new();
    let mut invalid = false;
    for file in files {
        match Scenario::load(&file) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                eprintln!("invalid: {e}");
                invalid = true;
            }
        }
    }
    if invalid {
        Err(ExitCode::from(INVALID))
    } else {
        Ok(scenarios)
    }
}

/// `--backend`: `rocksdb`, `sqlite` or `all` (both).
fn backends_arg(text: &str) -> Result<Vec<Backend>, String> {
    match text {
        "all" => Ok(vec![Backend::Rocksdb, Backend::Sqlite]),
        other => other
            .parse()
            .map(|b| vec![b])
            .map_err(|_| format!("--backend {other}: rocksdb, sqlite or all")),
    }
}

/// `[#####-----] 5/10`: how far the run is, before each scenario starts.
fn progress_bar(done: usize, total: usize) -> String {
    const WIDTH: usize = 20;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    format!(
        "[{}{}] {}/{}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        done + 1,
        total
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Explore(args) => explore_cli::main(args),
        Cmd::Sweep(args) => sweep_cli::main(args),
        Cmd::Check { paths } => match load_all(&paths) {
            Ok(scenarios) => {
                for s in &scenarios {
                    println!("ok  {} ({} steps)", s.path.display(), s.file.steps.len());
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::Run {
            paths,
            backend,
            driver,
            keep,
            seed,
        } => {
            let seed = match seed
                .map(Ok)
                .unwrap_or_else(|| dlp_harness::runner::seed_from_env().map_err(|e| e.to_string()))
            {
                Ok(seed) => seed,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(CANNOT_START);
                }
            };
            let driver: DriverKind = match driver.parse() {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: --driver: {e}");
                    return ExitCode::from(CANNOT_START);
                }
            };
            let only: Option<Backend> = match backend.as_str() {
                "all" => None,
                other => match other.parse() {
                    Ok(b) => Some(b),
                    Err(_) => {
                        eprintln!("error: --backend {other}: rocksdb, sqlite or all");
                        return ExitCode::from(CANNOT_START);
                    }
                },
            };
            let scenarios = match load_all(&paths) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let jobs: Vec<(&Scenario, Backend)> = scenarios
                .iter()
                .flat_map(|s| s.backends().into_iter().map(move |b| (s, b)))
                .filter(|(_, b)| only.is_none_or(|o| o == *b))
                .collect();
            eprintln!(
                "running {} scenario runs on the {} driver, seed {seed} (run directories under {})",
                jobs.len(),
                driver.name(),
                runs_root().display()
            );
            let started = Instant::now();
            let mut rows = Vec::new();
            let mut failed = 0;
            let mut code = 0;
            for (i, (scenario, backend)) in jobs.iter().enumerate() {
                let name = test_name(scenario, *backend);
                eprint!("{} {name} ... ", progress_bar(i, jobs.len()));
                let outcome = run_blocking(scenario, *backend, driver, keep, seed);
                let result = match &outcome.failure {
                    None => "ok",
                    Some(failure) => {
                        failed += 1;
                        code = code.max(exit_code(&failure.error));
                        eprintln!("FAILED\n{}", failure.report);
                        "FAILED"
                    }
                };
                if outcome.failure.is_none() {
                    eprintln!("ok ({:.2} s)", outcome.elapsed.as_secs_f64());
                }
                rows.push((name, result, outcome.elapsed));
            }
            println!("\n| scenario | result | time |\n|---|---|---:|");
            for (name, result, elapsed) in &rows {
                println!("| {name} | {result} | {:.2} s |", elapsed.as_secs_f64());
            }
            println!(
                "\n{} passed, {failed} failed, {:.1} s in all",
                rows.len() - failed,
                started.elapsed().as_secs_f64()
            );
            ExitCode::from(code)
        }
    }
}
