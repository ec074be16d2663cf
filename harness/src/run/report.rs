//! How a run fails, typed, and the report a person reads: what failed and where (the step and
//! its line), the seed, the kept run directory, the command that reproduces the run, and the
//! merged timeline of steps and every node's events.
//!
//! The type is what callers decide on (the CLI's exit code, the sweep's ERROR, the explorer's
//! "could not start"); the report is only ever printed. Nothing matches the report's text.

use std::fmt::Write as _;

use dlp_node_api::Backend;

use crate::capability::DriverKind;
use crate::cluster::Network;
use crate::error::HarnessError;
use crate::steps::Scenario;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// The harness could not start: the run directory, the driver, the chain (or a runtime).
    /// Nothing of the scenario ran.
    #[error("the harness could not start: {0}")]
    Setup(HarnessError),
    /// The scenario cannot run as given: an invalid (generated) file, or a step that needs a
    /// capability the driver does not offer. Nothing of the scenario ran.
    #[error("{0}")]
    InvalidFile(HarnessError),
    /// The network failed outside any step: adding a node, opening a channel, waiting for
    /// quiet after setup, or a check a caller runs between steps. `during` says which.
    #[error("{during}: {error}")]
    Network { during: String, error: HarnessError },
    /// A step failed: its 1-based index, the line of its verb in the scenario's text, its verb.
    #[error("step {index} ({verb}, line {line}): {error}")]
    Step {
        index: usize,
        line: usize,
        verb: &'static str,
        error: HarnessError,
    },
    /// An invariant does not hold; `after_step` is the 1-based index of the last step run.
    #[error("{}{error}", after_step.map(|n| format!("after step {n}: ")).unwrap_or_default())]
    Invariant {
        after_step: Option<usize>,
        error: HarnessError,
    },
}

impl RunFailure {
    /// Its kind, as the run record and `run --json` name it: `setup`, `invalid_file`,
    /// `network`, `step`, `invariant`.
    pub fn kind(&self) -> &'static str {
        match self {
            RunFailure::Setup(_) => "setup",
            RunFailure::InvalidFile(_) => "invalid_file",
            RunFailure::Network { .. } => "network",
            RunFailure::Step { .. } => "step",
            RunFailure::Invariant { .. } => "invariant",
        }
    }

    /// The failed step's 1-based index, for a step failure.
    pub fn step(&self) -> Option<usize> {
        match self {
            RunFailure::Step { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// A failed run: the typed failure and its report.
#[derive(Debug)]
pub struct Failure {
    pub error: RunFailure,
    /// What a person reads: the failure, seed, run directory, reproduce command, timeline.
    pub report: String,
    /// The run directory's `report.html`, once written.
    pub html: Option<std::path::PathBuf>,
}

/// What the report says about the run besides the failure.
pub(crate) struct RunInfo<'a> {
    pub scenario: &'a Scenario,
    pub driver: DriverKind,
    pub backend: Backend,
    pub seed: u64,
    pub run_dir: &'a std::path::Path,
}

/// The command that runs the combination again with the same seed.
pub(crate) fn reproduce(info: &RunInfo<'_>) -> String {
    format!(
        "cargo run -p dlp-harness -- run {} --backend {} --driver {} --seed {}",
        info.scenario.path.display(),
        info.backend,
        info.driver.name(),
        info.seed
    )
}

/// The report of a failed run; `net` is the network, if it was built (its timeline).
pub(crate) fn render(info: &RunInfo<'_>, net: Option<&Network>, failure: &RunFailure) -> String {
    let RunInfo {
        scenario,
        driver,
        backend,
        seed,
        run_dir,
    } = info;
    let path = scenario.path.display();
    let mut out = format!(
        "scenario {path} failed ({}, seed {seed})\n{failure}\n\n",
        scenario.test_name(*backend, driver.name()),
    );
    // A run refused before it started (a capability, the harness) made no directory.
    if run_dir.exists() {
        let _ = writeln!(out, "run directory (kept): {}", run_dir.display());
    }
    let _ = writeln!(
        out,
        "reproduce: {}\n(or DLP_HARNESS_SEED={seed} with cargo nextest)",
        reproduce(info)
    );
    let Some(net) = net else {
        return out;
    };
    out.push_str("\ntimeline:\n");
    let timeline = net.timeline();
    let start = timeline.first().map_or(0, |t| t.at_ms);
    for entry in timeline {
        let _ = writeln!(
            out,
            "  +{:>6} ms  {:<10} {}",
            entry.at_ms.saturating_sub(start),
            entry.who,
            entry.what
        );
    }
    out
}
