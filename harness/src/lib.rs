//! dlp-harness: end-to-end tests of payment-channel backup and restore, in one-way layers
//! (each imports only those below it; `ci/check-layers.py` enforces it):
//!
//! ```text
//! scenario/ (file, validate, interpret, session)  ->  cluster/ (the Network)  ->  driver/
//! checks/ (one invariant per file)  ->  cluster/, model/
//! sweep/, explore/  ->  scenario::Session          model/ (the audit and silence rules)
//! ```
//!
//! - [`scenario`]: declarative scenario files, validated before anything starts (including
//!   against the driver's capabilities), their interpreter, and the [`scenario::Session`] that
//!   every run goes through (setup, steps, invariants, teardown, report).
//! - [`cluster`]: the [`cluster::Network`] of named nodes, their channels and the chain, with
//!   the verbs scenarios use and waits on typed node events with deadlines.
//! - [`driver`]: how nodes run (in-process tasks, `dlp-node` processes), behind one trait.
//! - [`checks`]: the invariants, one per file. [`model`]: the protocol rules judges apply.
//! - [`sweep`]: the backup-point sweep (every persisted step of a node as a backup point,
//!   judged by an oracle and the ledger).
//! - [`explore`]: seeded random schedules with invariants after every step, shrunk to a
//!   regression scenario when one fails.
//! - [`report`]: a run directory as `report.html` (message sequence chart, steps, ledger,
//!   invariants, logs), and `run --junit`/`--json`.
//! - [`runner`]: run scenario x backend combinations in fresh run directories (used by the
//!   CLI and by the `scenarios` test target). [`client`]: the nodes' JSON-RPC.

pub mod capability;
pub mod checks;
pub mod client;
pub mod cluster;
pub mod driver;
pub mod error;
pub mod explore;
pub mod limits;
pub mod model;
pub mod report;
pub mod run;
pub mod scenario;
pub mod steps;
pub mod sweep;

pub use error::HarnessError;
