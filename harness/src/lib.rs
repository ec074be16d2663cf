//! dlp-harness: end-to-end tests of payment-channel backup and restore.
//!
//! - [`network::Network`]: named nodes, their channels and the chain, with verbs (start, stop,
//!   crash, backup, restore, connect, pay, hold at a protocol step, ...) and waits on typed node
//!   events with deadlines.
//! - [`driver`]: how nodes run (in-process tasks or `dlp-node` processes), behind one trait.
//! - [`scenario`]: declarative scenario files, validated before anything starts, and their
//!   interpreter.
//! - [`invariants`]: what must hold at the end of every scenario.
//! - [`sweep`]: the backup-point sweep (every persisted step of a node as a backup point,
//!   judged by an oracle and the ledger).
//! - [`explore`]: seeded random schedules with invariants after every step, shrunk to a
//!   regression scenario when one fails.
//! - [`runner`]: run scenario x backend combinations in fresh run directories (used by the
//!   CLI and by the `scenarios` test target).

pub mod checks;
pub mod client;
pub mod cluster;
pub mod driver;
pub mod error;
pub mod explore;
pub mod model;
pub mod runner;
pub mod scenario;
pub mod sweep;

/// The cluster under its former name, while the scenario layer moves over (removed after).
pub use cluster as network;

pub use error::HarnessError;
