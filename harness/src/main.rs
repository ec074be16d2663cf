//! `dlp-harness run | check | sweep | points | merge | explore | gate | versions | report | schema`:
//! the command line.
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

mod damage_cli;
mod explore_cli;
mod gate_cli;
mod progress_cli;
mod report_cli;
mod run_cli;
mod shards_cli;
mod sweep_cli;
mod versions_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use dlp_harness::HarnessError;
use dlp_harness::capability::DriverKind;
use dlp_harness::run::RunFailure;
use dlp_harness::run::runner::seed_from_env;
use dlp_harness::scenario::discover;
use dlp_harness::steps::Scenario;
use dlp_harness::sweep::SweepError;
use dlp_node_api::{AuditPolicy, Backend};

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
    /// Run scenarios (files or directories of *.toml). A failed run's directory is kept with
    /// its report.html (message sequence chart, steps, ledger, invariants, logs).
    Run(run_cli::Args),
    /// Sweep every backup point of a workload's node under test: back up there, finish the
    /// workload, restore, and let the oracle and the ledger judge. With --damage: damage every
    /// file of each point's backup and classify each restore as refused, benign or SILENT.
    Sweep(sweep_cli::Args),
    /// Discover each sweep workload's backup points (running it once per backend) and print
    /// them, write them beside the workload (`<name>.points.json`, what lists the
    /// one-test-per-point runs) or check the committed list.
    Points(shards_cli::PointsArgs),
    /// Merge the result files of sharded test runs (harness/tests/shards.rs, one test per
    /// sweep point and explorer seed) into the answer one run gives; exit 1 on any UNSAFE,
    /// LOST, MISMATCH, failed test, missing or conflicting result.
    Merge(shards_cli::MergeArgs),
    /// Run seeded random schedules over 2-4 nodes with the invariants checked after every
    /// step; shrink a failing one to a minimal regression scenario.
    Explore(explore_cli::Args),
    /// Validate scenario files (and that the driver offers what they need) without running
    /// them.
    Check(CheckArgs),
    /// Run the release gate (gate.toml: scenarios, sweeps, explorer seeds) and compare every
    /// verdict with the committed baseline; exit 1 on any change or flaky scenario.
    Gate(gate_cli::Args),
    /// The named earlier builds of the node (versions.toml): list them, build them once into
    /// a cache keyed by commit.
    Versions(versions_cli::Args),
    /// Write (again) the report.html of a run directory that dlp-harness kept, from its
    /// files alone.
    Report(report_cli::Args),
    /// Print the JSON Schema of the scenario format (editors validate and complete scenario
    /// files with it: see scenarios/README.md).
    Schema(SchemaArgs),
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

#[derive(Debug, clap::Args)]
struct SchemaArgs {
    /// Compare with this file instead of printing: exit 1, naming the difference's first line,
    /// if it is not exactly the schema (CI's drift check of scenarios/scenario.schema.json).
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

fn schema(args: SchemaArgs) -> Exit {
    let text = dlp_harness::scenario::json_schema::<dlp_harness::steps::Step>();
    let Some(path) = args.check else {
        print!("{text}");
        return Exit::Passed;
    };
    match std::fs::read_to_string(&path) {
        Ok(committed) if committed == text => {
            println!("{}: up to date", path.display());
            Exit::Passed
        }
        Ok(committed) => {
            let line = committed
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(text.lines().count()))
                + 1;
            eprintln!(
                "{}: differs from the scenario types' schema from line {line}; regenerate it with \
                 `cargo run -p dlp-harness -- schema > {}`",
                path.display(),
                path.display()
            );
            Exit::Failed
        }
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            Exit::Invalid
        }
    }
}

/// The scenarios under some paths, for one driver.
pub(crate) struct Selection {
    /// Valid, and the driver offers what they need.
    pub(crate) runnable: Vec<Scenario>,
    /// Valid, found in a directory, and needing a capability the driver lacks: each with its
    /// located refusal.
    pub(crate) skipped: Vec<(Scenario, HarnessError)>,
}

/// Load every scenario under `paths` and check that `driver` offers what each needs; every
/// problem is printed (`invalid: file:line:col: ...`) before giving up. A scenario the driver
/// cannot run is skipped when a directory held it and refused when it was named (see the
/// module docs); a selection of which the driver can run nothing is refused.
pub(crate) fn load_all(paths: &[PathBuf], driver: DriverKind) -> Result<Selection, Exit> {
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

fn main() -> ExitCode {
    // In-process nodes' logs go to their node.log (see `driver::node_log`).
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(dlp_harness::driver::node_log::node_log_layer())
            .init();
    }
    let exit = match Cli::parse().command {
        Cmd::Run(args) => run_cli::main(args),
        Cmd::Check(args) => check(args),
        Cmd::Sweep(args) => sweep_cli::main(args),
        Cmd::Points(args) => shards_cli::points(args),
        Cmd::Merge(args) => shards_cli::merge_main(args),
        Cmd::Explore(args) => explore_cli::main(args),
        Cmd::Gate(args) => gate_cli::main(args),
        Cmd::Versions(args) => versions_cli::main(args),
        Cmd::Report(args) => report_cli::main(args),
        Cmd::Schema(args) => schema(args),
    };
    exit.into()
}
