//! dlp-node: the reference payment-channel node of dlp-harness.
//!
//! It implements Fiber's Data Loss Protection design faithfully enough that the harness can
//! catch real bugs in it. This crate holds the storage half: the [`store::Store`] trait and its
//! RocksDB and SQLite backends, hot [`backup`]s, offline [`restore`] with Stale marking, the
//! persisted [`channel_record`], and the running [`node`] with its JSON-RPC server. See
//! ARCHITECTURE.md at the repository root for how the pieces fit.

pub mod backup;
pub mod bench;
pub mod channel_record;
pub mod config;
pub mod failpoint;
pub mod fsutil;
pub mod keys;
pub mod layout;
pub mod lock;
pub mod node;
pub mod restore;
pub mod rpc;
pub mod store;
