//! The node's config file (`<base>/config.toml` unless `-c` says otherwise).
//!
//! Sections and keys follow fnn's where fnn has them (`rpc.listening_addr`,
//! `rpc.enabled_modules`); unknown keys are rejected so that a typo never silently falls back to
//! a default. A missing file at the default path means "all defaults"; a missing file named with
//! `-c` is an error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub(crate) use dlp_node_api::config::{
    AuditPolicy, Backend, MutualStale, OnAuditFailure, OnForceCloseRequest, RpcModule,
};

use crate::layout::BaseDir;

/// The whole config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    pub rpc: RpcConfig,
    pub chain: ChainConfig,
    pub fiber: FiberConfig,
    pub channel: ChannelConfig,
    pub audit: AuditConfig,
    pub backup: BackupConfig,
    pub dev: DevConfig,
}

/// `[dev]`: test settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevConfig {
    /// Derive temporary channel ids and payment preimages from this seed (and the node key, the
    /// restore epoch and a persisted counter) instead of the OS, so a seeded harness run is
    /// reproducible. Never reuses a value across restarts or restores.
    pub seed: Option<u64>,
}

/// `[chain]`: where dlp-chain is (like fnn's `ckb.rpc_url`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// `http://127.0.0.1:<port>` of `dlp-chain serve`. Required by the `dlp-node` binary; an
    /// embedding (the harness's in-process driver) may hand the node a chain handle instead.
    pub rpc_url: Option<String>,
}

/// `[fiber]`: the peer socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FiberConfig {
    /// Where peers connect. Loopback unless `allow_non_loopback`; port 0 picks a free port (see
    /// `node_info.addresses`).
    pub listening_addr: SocketAddr,
    /// Listen on, and dial, addresses beyond loopback. Off by default: the harness runs nodes
    /// on one host's loopback; it is on only for nodes that live on a private network of their
    /// own, such as the containers of the harness's container driver.
    pub allow_non_loopback: bool,
}

impl Default for FiberConfig {
    fn default() -> Self {
        Self {
            listening_addr: SocketAddr::from(([127, 0, 0, 1], 8228)),
            allow_non_loopback: false,
        }
    }
}

/// `[channel]`: channel parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelConfig {
    /// Incoming channels funded with at least this many shannons are accepted automatically
    /// (as Fiber does); smaller ones wait for `accept_channel`.
    pub auto_accept_min_funding_amount: u64,
    /// Blocks the holder of a commitment waits before sweeping its own balance (what we ask of
    /// the peer when we open; the window in which a revoked commitment can be punished).
    pub to_self_delay: u64,
    /// Blocks added to a TLC's expiry per hop (what we need between a TLC we receive and the
    /// one we forward; announced in our channel updates).
    pub tlc_expiry_delta: u64,
    /// Our forwarding fee, in millionths of the forwarded amount (Fiber's `fee_rate`;
    /// announced in our channel updates). 0 by default, so balances in scenarios stay round.
    pub fee_rate: u64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            auto_accept_min_funding_amount: 1,
            to_self_delay: 6,
            tlc_expiry_delta: 20,
            fee_rate: 0,
        }
    }
}

/// Default of `audit.stale_reveal_after_ms`.
pub(crate) const DEFAULT_STALE_REVEAL_AFTER_MS: u64 = 5_000;
/// The bounds of `audit.stale_reveal_after_ms` (1 ms to one hour).
pub(crate) const STALE_REVEAL_AFTER_MS: std::ops::RangeInclusive<u64> = 1..=3_600_000;

/// `[audit]`: how a restored (Stale) channel is judged and resolved, and how we answer a peer
/// that lost its data.
///
/// - `policy` (`"fiber"` default, `"strict"`): the audit rule applied to the peer's
///   ReestablishChannel.
/// - `on_audit_failure` (`"hold"` or `"request_close"`): what a channel whose audit failed
///   does. When not set, the effective value is `"hold"` under `policy = "fiber"` (Fiber's
///   behaviour) and `"request_close"` under `policy = "strict"` (see
///   `AuditConfig::effective_on_audit_failure`): the peer is asked to force-close, and when
///   both ends are Stale the end whose commitment the peer's numbers show unrevoked closes.
/// - `mutual_stale` (`"wait"` or `"reveal"`): what a Stale channel does when the peer says
///   nothing either. When not set, the effective value is `"wait"` under `policy = "fiber"` and
///   `"reveal"` under `policy = "strict"` (see `AuditConfig::effective_mutual_stale`).
/// - `stale_reveal_after_ms` (default 5000, 1 to 3,600,000): how long a Stale channel in
///   `reveal` mode waits on a connection for the peer's ReestablishChannel before it sends its
///   `StaleNotice`. An honest peer that was not restored reestablishes at once, so the wait
///   only has to cover a connection's round trip.
/// - `on_force_close_request` (`"force_close"` default, `"ignore"`): what a live channel does
///   when the peer sends `RequestForceClose` (it lost the channel's state, or the whole
///   channel: a node restored from a backup older than the channel answers the channel's
///   ReestablishChannel with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub policy: AuditPolicy,
    /// Unset: follows `policy` (see `effective_on_audit_failure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_audit_failure: Option<OnAuditFailure>,
    /// Unset: follows `policy` (see `effective_mutual_stale`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutual_stale: Option<MutualStale>,
    pub stale_reveal_after_ms: u64,
    pub on_force_close_request: OnForceCloseRequest,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            policy: AuditPolicy::default(),
            on_audit_failure: None,
            mutual_stale: None,
            stale_reveal_after_ms: DEFAULT_STALE_REVEAL_AFTER_MS,
            on_force_close_request: OnForceCloseRequest::default(),
        }
    }
}

impl AuditConfig {
    /// The effective `mutual_stale`: the configured value, else `wait` under the `fiber` policy
    /// (Fiber's passive silence, unchanged) and `reveal` under `strict` (whose audit refuses
    /// every peer ahead of the backup, so the numbers it reveals buy a lying peer the least).
    pub(crate) fn effective_on_audit_failure(&self) -> OnAuditFailure {
        self.on_audit_failure.unwrap_or(match self.policy {
            AuditPolicy::Fiber => OnAuditFailure::Hold,
            AuditPolicy::Strict => OnAuditFailure::RequestClose,
        })
    }

    /// The effective `mutual_stale`: see `effective_on_audit_failure` for the pattern.
    pub(crate) fn effective_mutual_stale(&self) -> MutualStale {
        self.mutual_stale.unwrap_or(match self.policy {
            AuditPolicy::Fiber => MutualStale::Wait,
            AuditPolicy::Strict => MutualStale::Reveal,
        })
    }
}

/// Default of `backup.keep`: with change-triggered backups at most one a minute, 16 backups
/// span at least a quarter of an hour of channel changes, so one damaged or unlucky backup
/// always has several older ones behind it, while the directory stays bounded.
pub(crate) const DEFAULT_BACKUPS_KEPT: u32 = 16;

/// `[backup]`: automatic backups (off unless `auto = true`) and retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Take automatic backups: shortly after start, after channel changes, and on an interval.
    pub auto: bool,
    /// Every this many hours (none: no periodic backup).
    pub interval_hours: Option<u64>,
    /// At most one change-triggered backup per this many seconds (Fiber: about 60).
    pub coalesce_secs: u64,
    /// How many complete backups `<base>/fiber/backups/` keeps: after each new backup the
    /// oldest beyond this many are deleted. At least 1: the newest is never deleted.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            auto: false,
            interval_hours: None,
            coalesce_secs: 60,
            keep: DEFAULT_BACKUPS_KEPT,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `"rocksdb"` (default) or `"sqlite"`.
    pub backend: Backend,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Rocksdb,
        }
    }
}

/// `[rpc]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Where JSON-RPC listens. Default `127.0.0.1:8227`; port 0 picks a free port (the node
    /// prints the bound address).
    pub listening_addr: SocketAddr,
    /// RPC modules to serve; methods of other modules answer "method not found".
    pub enabled_modules: Vec<RpcModule>,
    /// Must be `true` to listen on a non-loopback address: the RPC has no authentication.
    pub allow_non_loopback: bool,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            listening_addr: SocketAddr::from(([127, 0, 0, 1], 8227)),
            enabled_modules: RpcModule::DEFAULT.to_vec(),
            allow_non_loopback: false,
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {} does not exist", .0.display())]
    Missing(PathBuf),
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error(
        "config file {}: rpc.listening_addr = {addr} is not a loopback address; \
         set rpc.allow_non_loopback = true to expose the unauthenticated RPC",
        path.display()
    )]
    NonLoopback { path: PathBuf, addr: SocketAddr },
}

impl Config {
    /// Load the config for `base`: `explicit` if given (must exist), else `<base>/config.toml`
    /// if it exists, else defaults. Returns the config and the path it came from, if any.
    pub fn load(
        base: &BaseDir,
        explicit: Option<&Path>,
    ) -> Result<(Self, Option<PathBuf>), ConfigError> {
        let path = match explicit {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_path_buf())),
            Some(path) => path.to_path_buf(),
            None => {
                let default = base.default_config();
                if !default.exists() {
                    return Ok((Self::default(), None));
                }
                default
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let config = Self::parse(&path, &text)?;
        Ok((config, Some(path)))
    }

    /// Parse config text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if !config.fiber.listening_addr.ip().is_loopback() && !config.fiber.allow_non_loopback {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "fiber.listening_addr = {} is not a loopback address; peers listen on \
                     loopback unless fiber.allow_non_loopback = true (a node on a private \
                     network of its own, such as a container)",
                    config.fiber.listening_addr
                ),
            });
        }
        if !STALE_REVEAL_AFTER_MS.contains(&config.audit.stale_reveal_after_ms) {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "audit.stale_reveal_after_ms = {}: must be {} to {} (milliseconds a Stale \
                     channel waits for the peer's ReestablishChannel before its StaleNotice)",
                    config.audit.stale_reveal_after_ms,
                    STALE_REVEAL_AFTER_MS.start(),
                    STALE_REVEAL_AFTER_MS.end()
                ),
            });
        }
        if config.backup.keep == 0 {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: "backup.keep = 0: at least the newest backup is always kept (use 1 or \
                          more)"
                    .into(),
            });
        }
        let addr = config.rpc.listening_addr;
        if !addr.ip().is_loopback() && !config.rpc.allow_non_loopback {
            return Err(ConfigError::NonLoopback {
                path: path.to_path_buf(),
                addr,
            });
        }
        Ok(config)
    }

    /// True when `module` is enabled.
    pub(crate) fn module_enabled(&self, module: RpcModule) -> bool {
        self.rpc.enabled_modules.contains(&module)
    }
}

impl FromStr for Config {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(Path::new("<inline>"), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_fnn() {
        let config: Config = "".parse().expect("empty config");
        assert_eq!(config.store.backend, Backend::Rocksdb);
        assert_eq!(config.rpc.listening_addr.to_string(), "127.0.0.1:8227");
        assert!(config.module_enabled(RpcModule::Info));
        assert!(!config.module_enabled(RpcModule::Admin));
        assert!(!config.module_enabled(RpcModule::Dev));
    }

    #[test]
    fn reads_backend_and_modules() {
        let config: Config =
            "[store]\nbackend = \"sqlite\"\n[rpc]\nenabled_modules = [\"info\", \"admin\"]\n"
                .parse()
                .expect("valid config");
        assert_eq!(config.store.backend, Backend::Sqlite);
        assert_eq!(
            config.rpc.enabled_modules,
            [RpcModule::Info, RpcModule::Admin]
        );
    }

    #[test]
    fn unknown_keys_and_values_are_errors_with_position() {
        let err = "[store]\nbackend = \"leveldb\"\n"
            .parse::<Config>()
            .expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("leveldb"), "{msg}");
        let err = "[rpc]\nlistening_adr = \"127.0.0.1:1\"\n"
            .parse::<Config>()
            .expect_err("must fail");
        assert!(err.to_string().contains("listening_adr"), "{err}");
    }

    #[test]
    fn on_audit_failure_follows_the_policy_unless_set() {
        let fiber: Config = "".parse().expect("empty config");
        assert_eq!(
            fiber.audit.effective_on_audit_failure(),
            OnAuditFailure::Hold
        );
        let strict: Config = "[audit]\npolicy = \"strict\"\n".parse().expect("valid");
        assert_eq!(
            strict.audit.effective_on_audit_failure(),
            OnAuditFailure::RequestClose
        );
        let strict_hold: Config = "[audit]\npolicy = \"strict\"\non_audit_failure = \"hold\"\n"
            .parse()
            .expect("valid");
        assert_eq!(
            strict_hold.audit.effective_on_audit_failure(),
            OnAuditFailure::Hold
        );
        let fiber_close: Config = "[audit]\non_audit_failure = \"request_close\"\n"
            .parse()
            .expect("valid");
        assert_eq!(
            fiber_close.audit.effective_on_audit_failure(),
            OnAuditFailure::RequestClose
        );
    }

    #[test]
    fn mutual_stale_follows_the_policy_unless_set() {
        let config: Config = "".parse().expect("empty config");
        assert_eq!(config.audit.effective_mutual_stale(), MutualStale::Wait);
        assert_eq!(config.audit.stale_reveal_after_ms, 5_000);
        assert_eq!(
            config.audit.on_force_close_request,
            OnForceCloseRequest::ForceClose
        );
        let strict: Config = "[audit]\npolicy = \"strict\"\n".parse().expect("valid");
        assert_eq!(strict.audit.effective_mutual_stale(), MutualStale::Reveal);
        let set: Config = "[audit]\npolicy = \"strict\"\nmutual_stale = \"wait\"\n\
                           on_force_close_request = \"ignore\"\nstale_reveal_after_ms = 300\n"
            .parse()
            .expect("valid");
        assert_eq!(set.audit.effective_mutual_stale(), MutualStale::Wait);
        assert_eq!(
            set.audit.on_force_close_request,
            OnForceCloseRequest::Ignore
        );
        assert_eq!(set.audit.stale_reveal_after_ms, 300);
        let fiber_reveal: Config = "[audit]\nmutual_stale = \"reveal\"\n"
            .parse()
            .expect("valid");
        assert_eq!(
            fiber_reveal.audit.effective_mutual_stale(),
            MutualStale::Reveal
        );
    }

    #[test]
    fn stale_reveal_after_ms_is_bounded() {
        for bad in [0u64, 3_600_001] {
            let err = format!("[audit]\nstale_reveal_after_ms = {bad}\n")
                .parse::<Config>()
                .expect_err("out of bounds");
            let msg = err.to_string();
            assert!(msg.contains("audit.stale_reveal_after_ms"), "{msg}");
            assert!(msg.contains("1 to 3600000"), "{msg}");
        }
        for good in [1u64, 3_600_000] {
            assert!(
                format!("[audit]\nstale_reveal_after_ms = {good}\n")
                    .parse::<Config>()
                    .is_ok()
            );
        }
        let err = "[audit]\nmutual_stale = \"shout\"\n"
            .parse::<Config>()
            .expect_err("unknown value");
        assert!(err.to_string().contains("shout"), "{err}");
    }

    #[test]
    fn non_loopback_needs_explicit_opt_in() {
        let err = "[rpc]\nlistening_addr = \"0.0.0.0:8227\"\n"
            .parse::<Config>()
            .expect_err("must fail");
        assert!(matches!(err, ConfigError::NonLoopback { .. }), "{err}");
        let ok = "[rpc]\nlistening_addr = \"0.0.0.0:8227\"\nallow_non_loopback = true\n"
            .parse::<Config>();
        assert!(ok.is_ok());
        // The peer socket has its own opt-in.
        let err = "[fiber]\nlistening_addr = \"0.0.0.0:8228\"\n"
            .parse::<Config>()
            .expect_err("must fail");
        assert!(
            err.to_string().contains("fiber.allow_non_loopback"),
            "{err}"
        );
        let ok = "[fiber]\nlistening_addr = \"0.0.0.0:8228\"\nallow_non_loopback = true\n"
            .parse::<Config>()
            .expect("opted in");
        assert!(ok.fiber.allow_non_loopback);
    }

    #[test]
    fn peers_beyond_loopback_are_dialled_only_when_opted_in() {
        let key = format!("02{}", "11".repeat(32));
        let far = format!("/ip4/172.18.0.2/tcp/8228/p2p/{key}");
        let near = format!("/ip4/127.0.0.1/tcp/8228/p2p/{key}");
        let err = dlp_node_api::parse_peer_address(&far, false).expect_err("refused");
        assert!(
            err.to_string().contains("fiber.allow_non_loopback"),
            "{err}"
        );
        let (addr, _) = dlp_node_api::parse_peer_address(&far, true).expect("allowed");
        assert_eq!(addr.to_string(), "172.18.0.2:8228");
        assert!(dlp_node_api::parse_peer_address(&near, false).is_ok());
    }
}
