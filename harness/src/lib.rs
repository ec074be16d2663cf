//! dlp-harness: end-to-end tests of payment-channel backup and restore, in one-way layers
//! (each imports only those below it; `ci/check-layers.py` checks it against the allow-list
//! `ci/layers.toml`):
//!
//! ```text
//! sweep/, explore/   judge through the run's Session (steps and typed views)
//! run/               session, run record, failure report, runner
//! steps/             one file per verb family: fields, facts, check and run together
//! checks/  model/    invariants (on the cluster) / protocol rules    report/ run dir -> HTML
//! cluster/           the Network of named nodes, its waits and its verbs
//! scenario/          the file format, generic over its steps: knows no cluster
//! driver/            how nodes run (the only layer that uses dlp-node's library)
//! client.rs          the nodes' JSON-RPC      capability.rs, limits.rs, error.rs: leaves
//! damage.rs          backup damage on disk    restore_outcome.rs: how a restore ends (leaves)
//! ```
//!
//! - [`scenario`]: declarative scenario files, validated before anything starts (including
//!   against the driver's capabilities), generic over the step type.
//! - [`steps`]: the verbs, one family per file, and the [`steps::Step`] enum (one line each).
//! - [`run`]: the [`run::Session`] every run goes through (setup, steps, invariants, teardown,
//!   report), and the runner of scenario x backend combinations.
//! - [`cluster`]: the [`cluster::Network`] of named nodes, their channels and the chain, with
//!   the verbs steps use and waits on typed node events with deadlines.
//! - [`driver`]: how nodes run (in-process tasks, `dlp-node` processes, containers), behind one
//!   trait; [`capability`] names the drivers and what each offers.
//! - [`checks`]: the invariants, one per file. [`model`]: the protocol rules judges apply.
//! - [`sweep`]: the backup-point sweep (every persisted step of a node as a backup point,
//!   judged by an oracle and the ledger).
//! - [`explore`]: seeded random schedules with invariants after every step, shrunk to a
//!   regression scenario when one fails.
//! - [`shards`]: every sweep point and explorer seed as a test of its own (for nextest's
//!   partitions over several machines), their result files, and the merge of any number of
//!   shards into one answer.
//! - [`gate`]: the release gate: scenarios, sweeps and explorer seeds, every verdict compared
//!   with a committed baseline.
//! - [`report`]: a run directory as `report.html` (message sequence chart, steps, ledger,
//!   invariants, logs), and `run --junit`/`--json`.
//! - [`limits`]: every bound and deadline. [`client`]: the nodes' JSON-RPC.
//! - [`damage`]: damage to a backup on disk (flip, truncate, delete, zero, swap), seeded.
//!   [`restore_outcome`]: how a restore ended (restored, refused, killed at a syscall).
//!   [`seeded`]: the one seeded generator (SplitMix64).

pub mod capability;
pub mod checks;
pub mod client;
pub mod cluster;
pub mod corpus;
pub mod damage;
pub mod driver;
pub mod error;
pub mod explore;
pub mod gate;
pub mod limits;
pub mod model;
pub mod pinned_input;
pub mod report;
pub mod restore_outcome;
pub mod run;
pub mod scenario;
pub mod seeded;
pub mod shards;
pub mod steps;
pub mod sweep;
pub mod versions;

pub use error::HarnessError;
