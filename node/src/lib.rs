//! dlp-node: the reference payment-channel node of dlp-harness.
//!
//! It implements Fiber's Data Loss Protection design faithfully enough that the harness can
//! catch real bugs in it. What it says and is asked (events, channel and peer info, step
//! control, config enums, limits, names) is the API crate's, re-exported as [`api`]. Beyond
//! that the library exports what its binary and embedders need: a running [`node`] with its
//! [`config`] and [`layout`], offline [`restore`], injected [`failpoint`]s, [`keys`], and the
//! storage layer the `bench-store` benchmark and the process tests drive ([`store`], hot
//! [`backup`]s, the persisted [`channel_record`], [`fsutil`]). The protocol (the channel model,
//! the single-task core, transport, wire codec, gossip graph, onions, RPC) is the crate's own.
//! See ARCHITECTURE.md at the repository root for how the pieces fit.

pub use dlp_node_api as api;

pub mod backup;
pub mod channel_record;
pub mod config;
pub mod failpoint;
pub mod fsutil;
pub mod keys;
pub mod layout;
pub mod migrate;
pub mod node;
pub mod restore;
pub mod store;

pub(crate) mod auto_backup;
pub(crate) mod channel;
pub(crate) mod core;
pub(crate) mod crypto;
pub(crate) mod events;
pub(crate) mod graph;
pub(crate) mod lock;
pub(crate) mod onion;
pub(crate) mod order;
pub(crate) mod rpc;
pub(crate) mod steps;
pub(crate) mod transport;
pub(crate) mod wire;

/// The library's own tests name its items as the process tests do (`dlp_node::...`) in the
/// helpers both share (`tests/storage/scratch.rs`).
#[cfg(test)]
extern crate self as dlp_node;

#[cfg(test)]
mod tests;
