//! The release gate (`dlp-harness gate`): run what a release must pass (the scenario matrix on
//! the drivers the gate file lists, sweep workloads under their policies, a fixed budget of
//! explorer seeds), collect every verdict in the words the tables use, and compare them with a
//! committed baseline. A release is gated against the last one by that comparison, not by "it
//! passed": a scenario that starts failing, a sweep point that moves from `held` to `UNSAFE`, an
//! explorer seed that now breaks an invariant are each a named change ("four_node_route point 7
//! bob-carol, strict: held -> UNSAFE"), and the baseline is rewritten only on purpose
//! (`--accept`), so the change is reviewed in git.
//!
//! - `file.rs`: the gate file (`gate.toml`), checked before anything runs.
//! - `verdicts.rs`: the verdicts of one gate run, the baseline on disk, and the comparison.
//! - `compatibility.rs`: COMPATIBILITY.md, generated from the verdicts.
//! - `output.rs`: JUnit (a case per verdict) and one HTML page, for CI and reviewers.
//! - `run.rs`: running the gate, with a line per verdict as it comes; a scenario that fails is
//!   run once more, and one that then passes is `flaky` (which fails the gate).

mod compatibility;
mod file;
mod output;
mod run;
mod verdicts;

pub use compatibility::compatibility_page;
pub use file::{GateError, GateFile};
pub use output::{html, junit};
pub use run::{GateProgress, run_gate};
pub use verdicts::{Baseline, Change, Verdicts, compare};
