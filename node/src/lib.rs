//! dlp-node: the reference payment-channel node of dlp-harness.
//!
//! It implements Fiber's Data Loss Protection design faithfully enough that the harness can
//! catch real bugs in it. Storage: the [`store::Store`] trait and its RocksDB and SQLite
//! backends, hot [`backup`]s, offline [`restore`] with Stale marking, the persisted
//! [`channel_record`]. Protocol: the [`channel`] model, the single-task [`core`] (durability
//! order, reestablish, passive audit, payments, on-chain watcher), the Noise [`transport`] and
//! [`wire`] codec, typed [`events`] and [`steps`] control for the harness, and the running
//! [`node`] with its JSON-RPC server. See
//! ARCHITECTURE.md at the repository root for how the pieces fit.

pub mod auto_backup;
pub mod backup;
pub mod bench;
pub mod bench_payments;
pub mod channel;
pub mod channel_record;
pub mod config;
pub mod core;
pub mod crypto;
pub mod events;
pub mod failpoint;
pub mod fsutil;
pub mod graph;
pub mod keys;
pub mod layout;
pub mod lock;
pub mod node;
pub mod onion;
pub mod restore;
pub mod rpc;
pub mod steps;
pub mod store;
pub mod transport;
pub mod wire;
