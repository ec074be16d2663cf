//! The config values the harness writes into a node's config file and reads back in its
//! results: the audit policies, what a Stale channel does, the RPC modules, the storage
//! backend. The node's config file (`dlp_node::config`) uses these same types; their serde
//! spellings are the config file's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a Stale channel judges the peer's ReestablishChannel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditPolicy {
    /// Fiber's merged rule: fail if either number differs by more than one.
    #[default]
    Fiber,
    /// Also fail whenever the peer is ahead of the backup in either number.
    Strict,
}

impl fmt::Display for AuditPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuditPolicy::Fiber => "fiber",
            AuditPolicy::Strict => "strict",
        })
    }
}

/// What a channel that failed its audit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAuditFailure {
    /// Stay Stale and silent.
    #[default]
    Hold,
    /// Ask the peer to force-close, so our funds come back from its commitment.
    RequestClose,
}

/// What a Stale channel does when its peer is silent too (both ends restored from backups):
/// see `core::reestablish` for the protocol and its safety argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutualStale {
    /// Passive silence, always: never say anything before the peer's ReestablishChannel. When
    /// both ends are Stale, both wait forever (Fiber's behaviour: the channel is frozen).
    Wait,
    /// After `stale_reveal_after_ms` of silence on a connection, say `StaleNotice` (only that we
    /// are Stale, no numbers); when both ends did, the node with the lower node key sends its
    /// numbers first and the other audits them.
    Reveal,
}

impl fmt::Display for MutualStale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MutualStale::Wait => "wait",
            MutualStale::Reveal => "reveal",
        })
    }
}

/// What a live channel does when its peer sends `RequestForceClose` (the peer says it lost its
/// data and asks us to close with our commitment, which pays its balance straight to its
/// wallet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnForceCloseRequest {
    /// Broadcast our latest commitment (Lightning's answer to a peer that lost the channel).
    #[default]
    ForceClose,
    /// Do nothing but report it (`MessageIgnored`): the channel stays open, the peer's funds
    /// stay in it until we close it some other way.
    Ignore,
}

impl fmt::Display for OnForceCloseRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnForceCloseRequest::ForceClose => "force_close",
            OnForceCloseRequest::Ignore => "ignore",
        })
    }
}

/// Fiber's RPC module names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RpcModule {
    Info,
    Peer,
    Channel,
    Payment,
    Invoice,
    Graph,
    Admin,
    Dev,
}

impl RpcModule {
    /// Modules enabled when the config does not say: all but `admin` and `dev` (as in fnn).
    pub const DEFAULT: [RpcModule; 6] = [
        RpcModule::Info,
        RpcModule::Peer,
        RpcModule::Channel,
        RpcModule::Payment,
        RpcModule::Invoice,
        RpcModule::Graph,
    ];
}

impl fmt::Display for RpcModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RpcModule::Info => "info",
            RpcModule::Peer => "peer",
            RpcModule::Channel => "channel",
            RpcModule::Payment => "payment",
            RpcModule::Invoice => "invoice",
            RpcModule::Graph => "graph",
            RpcModule::Admin => "admin",
            RpcModule::Dev => "dev",
        };
        f.write_str(name)
    }
}

/// Which storage engine a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// RocksDB via the `rocksdb` crate; the store directory is the database directory.
    Rocksdb,
    /// SQLite (bundled) in WAL mode; the store directory holds `data.sqlite`.
    Sqlite,
}

impl Backend {
    /// Every backend, in a stable order (used by tests and the benchmark).
    pub const ALL: [Backend; 2] = [Backend::Rocksdb, Backend::Sqlite];

    /// The config-file spelling of this backend.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Rocksdb => "rocksdb",
            Backend::Sqlite => "sqlite",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rocksdb" => Ok(Backend::Rocksdb),
            "sqlite" => Ok(Backend::Sqlite),
            other => Err(format!(
                "unknown store backend {other:?}: expected \"rocksdb\" or \"sqlite\""
            )),
        }
    }
}
