//! `dlp-harness run | check | sweep | explore`.
//!
//! The options every subcommand shares are defined and parsed once, here: `--driver`
//! ([`DriverArg`], every subcommand), `--backend` ([`BackendArg`]: run, sweep, explore) and
//! `--policy` ([`PolicyArg`]: sweep, explore), each a clap `ValueEnum`, so a misspelt value is
//! a usage error with the valid values listed.
//!
//! Exit codes are decided by [`Exit`], from typed values only (a run's [`RunFailure`], a
//! [`SweepError`], a load error), never from text: 0 passed (all valid, nothing unsafe); 1 a
//! scenario failed, or the sweep or the explorer found something; 2 invalid input (a scenario
//! file, a scenario named on the command line that needs a capability the driver lacks, paths
//! holding no scenario or none the driver can run, a bad option or `DLP_HARNESS_SEED`; clap's
//! usage errors exit 2 too); 3 the harness could not start.
//!
//! `check` and `run` of a directory skip, visibly, the scenarios in it that the driver cannot
//! run (each printed as `skip  file:line:col: <verb>: needs <capability>...`, and counted in
//! `run`'s summary): a directory holds scenarios for every driver (`pause` needs one that can
//! pause a node). A file named on the command line is asked for, so it is refused instead.

mod explore_cli;
mod sweep_cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use dlp_harness::HarnessError;
use dlp_harness::driver::DriverKind;
use dlp_harness::runner::{run_blocking, runs_root, seed_from_env, test_name};
use dlp_harness::scenario::{RunFailure, Scenario, discover};
use dlp_harness::sweep::SweepError;
use dlp_node::config::AuditPolicy;
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
    Run(RunArgs),
    /// Sweep every backup point of a workload's node under test: back up there, finish the
    /// workload, restore, and let the oracle and the ledger judge.
    Sweep(sweep_cli::Args),
    /// Run seeded random schedules over 2-4 nodes with the invariants checked after every
    /// step; shrink a failing one to a minimal regression scenario.
    Explore(explore_cli::Args),
    /// Validate scenario files (and that the driver offers what they need) without running
    /// them.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    backend: BackendArg,
    #[command(flatten)]
    driver: DriverArg,
    /// Keep every run directory, not only failed ones (and, on the container driver, every
    /// container, for inspection; `TESTCONTAINERS_COMMAND=keep` does the same).
    #[arg(long)]
    keep: bool,
    /// Seed of everything random (node keys and the nodes' own randomness); default
    /// $DLP_HARNESS_SEED, else random. Printed with every failure.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    driver: DriverArg,
}

/// `--driver`, for every subcommand.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct DriverArg {
    /// How nodes run.
    #[arg(long, value_enum, default_value_t = DriverKind::InProcess)]
    driver: DriverKind,
}

impl DriverArg {
    pub(crate) fn kind(self) -> DriverKind {
        self.driver
    }
}

/// `--backend`, for the subcommands that run nodes.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct BackendArg {
    /// Storage backend (run: `all` means what each file says, else both).
    #[arg(long, value_enum, default_value_t = BackendChoice::All)]
    backend: BackendChoice,
}

impl BackendArg {
    pub(crate) fn backends(self) -> Vec<Backend> {
        self.backend.backends()
    }
}

/// `--policy`, for the subcommands that set the nodes' audit policy.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct PolicyArg {
    /// Audit policy of the nodes (default: sweep all, explore strict; explore runs one).
    #[arg(long, value_enum)]
    policy: Option<PolicyChoice>,
}

impl PolicyArg {
    /// The choice, or `default` when none was given.
    pub(crate) fn or(self, default: PolicyChoice) -> PolicyChoice {
        self.policy.unwrap_or(default)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendChoice {
    Rocksdb,
    Sqlite,
    All,
}

impl BackendChoice {
    pub(crate) fn backends(self) -> Vec<Backend> {
        match self {
            BackendChoice::Rocksdb => vec![Backend::Rocksdb],
            BackendChoice::Sqlite => vec![Backend::Sqlite],
            BackendChoice::All => vec![Backend::Rocksdb, Backend::Sqlite],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PolicyChoice {
    Fiber,
    Strict,
    All,
}

impl PolicyChoice {
    pub(crate) fn policies(self) -> Vec<AuditPolicy> {
        match self {
            PolicyChoice::Fiber => vec![AuditPolicy::Fiber],
            PolicyChoice::Strict => vec![AuditPolicy::Strict],
            PolicyChoice::All => vec![AuditPolicy::Fiber, AuditPolicy::Strict],
        }
    }
}

/// How the process ends. Ordered by precedence: when several runs end differently, the
/// highest wins (a harness that could not start says so even if other runs failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Exit {
    Passed = 0,
    Failed = 1,
    Invalid = 2,
    CannotStart = 3,
}

impl Exit {
    /// What a failed run calls for.
    pub(crate) fn of(failure: &RunFailure) -> Self {
        match failure {
            RunFailure::Setup(_) => Exit::CannotStart,
            RunFailure::InvalidFile(_) => Exit::Invalid,
            RunFailure::Network { .. } | RunFailure::Step { .. } | RunFailure::Invariant { .. } => {
                Exit::Failed
            }
        }
    }

    /// What a sweep without a report calls for.
    pub(crate) fn of_sweep(error: &SweepError) -> Self {
        match error {
            SweepError::Discover { failure, .. } => Exit::of(failure),
            SweepError::Panicked(_) => Exit::Failed,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A usage error clap cannot express as a value's type (a combination of options): printed
/// the way clap prints its own, exit 2.
pub(crate) fn usage_error(message: impl std::fmt::Display) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

/// The seed: `--seed`, else `$DLP_HARNESS_SEED`, else `default` (random if `None`).
pub(crate) fn seed(given: Option<u64>, default: Option<u64>) -> Result<u64, Exit> {
    if let Some(seed) = given {
        return Ok(seed);
    }
    match (std::env::var_os("DLP_HARNESS_SEED"), default) {
        (None, Some(default)) => Ok(default),
        _ => seed_from_env().map_err(|e| {
            eprintln!("error: {e}");
            Exit::Invalid
        }),
    }
}

/// The scenarios under some paths, for one driver.
struct Selection {
    /// Valid, and the driver offers what they need.
    runnable: Vec<Scenario>,
    /// Valid, found in a directory, and needing a capability the driver lacks: each with its
    /// located refusal.
    skipped: Vec<(Scenario, HarnessError)>,
}

/// Load every scenario under `paths` and check that `driver` offers what each needs; every
/// problem is printed (`invalid: file:line:col: ...`) before giving up. A scenario the driver
/// cannot run is skipped when a directory held it and refused when it was named (see the
/// module docs); a selection of which the driver can run nothing is refused.
fn load_all(paths: &[PathBuf], driver: DriverKind) -> Result<Selection, Exit> {
    let files = discover(paths).map_err(|e| {
        eprintln!("error: {e}");
        Exit::Invalid
    })?;
    let mut selection = Selection {
        runnable: Vec::new(),
        skipped: Vec::new(),
    };
    let mut invalid = false;
    for file in files {
        let scenario = match file.load() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("invalid: {e}");
                invalid = true;
                continue;
            }
        };
        match scenario.check_capabilities(driver.capabilities()) {
            Ok(()) => selection.runnable.push(scenario),
            Err(e) if paths.contains(&file.path) => {
                eprintln!("invalid: {e}");
                invalid = true;
            }
            Err(e) => selection.skipped.push((scenario, e)),
        }
    }
    if invalid {
        return Err(Exit::Invalid);
    }
    if selection.runnable.is_empty() {
        for (_, why) in &selection.skipped {
            eprintln!("invalid: {why}");
        }
        eprintln!(
            "error: none of the {} scenarios can run on the {} driver",
            selection.skipped.len(),
            driver.name()
        );
        return Err(Exit::Invalid);
    }
    Ok(selection)
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

fn check(args: CheckArgs) -> Exit {
    match load_all(&args.paths, args.driver.kind()) {
        Ok(selection) => {
            for s in &selection.runnable {
                println!("ok  {} ({} steps)", s.path.display(), s.file.steps.len());
            }
            for (_, why) in &selection.skipped {
                println!("skip  {why}");
            }
            Exit::Passed
        }
        Err(exit) => exit,
    }
}

fn run(args: RunArgs) -> Exit {
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
    let mut skipped = Vec::new();
    for (scenario, why) in &selection.skipped {
        eprintln!("skip  {why}");
        skipped.extend(
            combinations(scenario)
                .into_iter()
                .map(|b| test_name(scenario, b, driver)),
        );
    }
    eprintln!(
        "running {} scenario runs on the {} driver, seed {seed} (run directories under {})",
        jobs.len(),
        driver.name(),
        runs_root().display()
    );
    dlp_harness::driver::keep_containers(args.keep);
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut exit = Exit::Passed;
    for (i, (scenario, backend)) in jobs.iter().enumerate() {
        let name = test_name(scenario, *backend, driver);
        eprint!("{} {name} ... ", progress_bar(i, jobs.len()));
        let outcome = run_blocking(scenario, *backend, driver, args.keep, seed);
        let result = match &outcome.failure {
            None => {
                eprintln!("ok ({:.2} s)", outcome.elapsed.as_secs_f64());
                "ok"
            }
            Some(failure) => {
                exit = exit.max(Exit::of(&failure.error));
                eprintln!("FAILED\n{}", failure.report);
                "FAILED"
            }
        };
        rows.push((name, result, outcome.elapsed));
    }
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
    exit
}

fn main() -> ExitCode {
    let exit = match Cli::parse().command {
        Cmd::Run(args) => run(args),
        Cmd::Check(args) => check(args),
        Cmd::Sweep(args) => sweep_cli::main(args),
        Cmd::Explore(args) => explore_cli::main(args),
    };
    exit.into()
}
