//! The run: one scenario x backend x driver, from setup through its steps and invariants to
//! teardown and the report. `dlp-harness run`, the sweep (discovery and every point's judge)
//! and the explorer all run through the [`Session`], so capability checks, the invariant
//! policy, step failures with their lines and the report are the same everywhere.
//!
//! - `session.rs`: one run (the only place that builds a `Network`), and the verbs a judge
//!   uses between steps;
//! - `record.rs`: the run record written into the run directory (`run.json`, `ledger.json`),
//!   from which `report.html` is made;
//! - `report.rs`: how a run fails, typed, and the text report a person reads;
//! - `runner.rs`: scenario x backend combinations in fresh run directories (the CLI's `run`
//!   and the `scenarios` test target).

mod judge;
mod record;
mod report;
pub mod runner;
mod session;

pub use judge::LedgerLook;
pub use report::{Failure, RunFailure};
pub use session::{Outcome, Session, run, write_report};
