//! Drivers: how nodes and the chain are run. The harness sees nodes only through this seam,
//! in its own types, so a scenario runs unchanged on any driver, and a new one is one new file.
//!
//! A driver is a *flavour* (what node: dlp-node today, whose home directory, config and keys
//! are written by [`dlp_node`]; Fiber's `fnn` some day) times a *launcher* (how it runs):
//!
//! - [`InProcessDriver`]: nodes are tasks in this process (real stores in the run directory,
//!   real sockets on loopback), the chain an in-process ledger. The default: fastest.
//! - [`ProcessDriver`]: every node a `dlp-node` process, the chain `dlp-chain serve`; ports are
//!   chosen by the OS (port 0) and read from the processes' ready lines, so parallel tests never
//!   collide; every child is killed when its handle is dropped, also on panic.
//!
//! What the cluster asks of a driver: create a node's home from a [`NodeSpec`], start and stop
//! it, crash it, restore it offline from a backup; of a running node ([`NodeHandle`]): its RPC
//! address, the address its peers dial, and where a path it reports lies on the harness's host
//! (a launcher may run the node under another file system). A driver may cut the network path
//! between two nodes itself ([`Driver::partition`]); one that does not leaves the partition to
//! the cluster's connection-level cut. It declares its [`Capability`]s, which scenarios are checked
//! against before they run.

mod container;
pub mod dlp_node;
mod in_process;
pub mod node_log;
mod process;
mod strace;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use dlp_chain::ChainClient;
use dlp_node_api::{AuditPolicy, Backend, MutualStale, OnAuditFailure, OnForceCloseRequest};

use crate::error::HarnessError;
use crate::versions::{self, Binaries, Catalog, Dialect};

pub use container::{ContainerDriver, keep_containers};
pub use in_process::InProcessDriver;
pub use process::ProcessDriver;

use crate::capability::{Capability, DriverKind};
pub use crate::restore_outcome::{Digests, KillPoint, KilledRestore, RestoreOutcome};

/// The line `dlp-chain serve` prints on stdout once it answers, followed by its address: what
/// the process and container launchers wait for.
const CHAIN_READY_LINE: &str = "dlp-chain listening on ";

/// A fresh driver of this kind.
pub fn create(kind: DriverKind) -> Result<Box<dyn Driver>, HarnessError> {
    Ok(match kind {
        DriverKind::InProcess => Box::new(InProcessDriver::default()),
        DriverKind::Process => Box::new(ProcessDriver::locate()?),
        DriverKind::Container => Box::new(ContainerDriver::new()),
    })
}

/// Audit settings of one node (unset: the node's defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditSettings {
    pub policy: Option<AuditPolicy>,
    pub on_failure: Option<OnAuditFailure>,
    /// What a Stale channel does when the peer is silent too (unset: follows `policy`).
    pub mutual_stale: Option<MutualStale>,
    /// What a live channel does on the peer's `RequestForceClose`.
    pub on_force_close_request: Option<OnForceCloseRequest>,
}

/// Automatic backups of one node (dlp-node's `[backup] auto`; off unless asked for). With them
/// on, the node backs itself up about a second after each start and after channel changes,
/// at most one per [`AUTO_BACKUP_COALESCE_SECS`](self::dlp_node::AUTO_BACKUP_COALESCE_SECS)
/// seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupSettings {
    pub automatic: bool,
    /// A size limit on the backup directory, in bytes (a size-limited filesystem mounted there
    /// by a driver offering [`Capability::BackupSpaceLimit`]).
    pub space_limit: Option<u64>,
}

/// How one node forwards payments (dlp-node's `[channel] fee_rate`; unset: the node's default,
/// no fee).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardingSettings {
    /// Millionths of the forwarded amount.
    pub fee_rate: Option<u64>,
}

/// Everything a driver needs to create and run one node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The scenario's name for it (`alice`): its log label and its directory name.
    pub name: String,
    pub backend: Backend,
    /// The run's seed: node keys and the node's own randomness derive from it and the name.
    pub seed: u64,
    pub audit: AuditSettings,
    /// Where nodes reach the ledger (`chain.rpc_url`), when over RPC.
    pub chain_url: Option<String>,
    /// The node's home on the harness's host (inside the run directory); kept with the run.
    pub home: PathBuf,
    pub backups: BackupSettings,
    pub forwarding: ForwardingSettings,
    /// Which build of dlp-node runs it (`version` in a scenario; `upgrade` changes it).
    pub build: NodeBuild,
}

/// Which build of dlp-node runs a node: this one, or a named earlier one (`versions.toml`,
/// built by `dlp-harness versions build`). Only drivers offering [`Capability::NodeVersions`]
/// run a named one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NodeBuild {
    #[default]
    Current,
    Named(NamedBuild),
}

/// A named earlier build, resolved to its binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedBuild {
    pub name: String,
    pub commit: String,
    pub dialect: Dialect,
    pub binaries: Binaries,
}

impl NodeBuild {
    /// The build named `name` (`None` or `"current"`: this one), with its binaries; an
    /// unknown name, or one not built yet, is an error saying what to do.
    pub fn resolve(name: Option<&str>) -> Result<Self, HarnessError> {
        let Some(name) = name.filter(|n| *n != versions::CURRENT) else {
            return Ok(NodeBuild::Current);
        };
        let setup = |e: versions::VersionsError| HarnessError::Setup(e.to_string());
        let catalog = Catalog::committed().map_err(setup)?;
        let version = catalog.get(name).map_err(setup)?;
        Ok(NodeBuild::Named(NamedBuild {
            name: version.name.clone(),
            commit: version.commit.clone(),
            dialect: version.dialect,
            binaries: catalog.binaries(version).map_err(setup)?,
        }))
    }

    /// Its name in scenarios (`current` for this build).
    pub fn name(&self) -> &str {
        match self {
            NodeBuild::Current => versions::CURRENT,
            NodeBuild::Named(named) => &named.name,
        }
    }

    /// How the harness configures and drives it.
    pub fn dialect(&self) -> Dialect {
        match self {
            NodeBuild::Current => Dialect::Current,
            NodeBuild::Named(named) => named.dialect,
        }
    }
}

/// Runs the chain and nodes.
#[async_trait]
pub trait Driver: Send + Sync {
    fn kind(&self) -> DriverKind;
    /// What this driver's nodes offer (see [`Capability`]).
    fn capabilities(&self) -> &'static [Capability] {
        self.kind().capabilities()
    }
    /// Start the ledger. Returns a client for the harness and the URL nodes use
    /// (`chain.rpc_url`), if the nodes reach it over RPC.
    async fn start_chain(
        &mut self,
        run_dir: &Path,
    ) -> Result<(Arc<dyn ChainClient>, Option<String>), HarnessError>;
    /// Create a node's home (config, keys, layout) from its spec; it does not start.
    async fn create_node(&mut self, spec: &NodeSpec) -> Result<(), HarnessError>;
    /// Start a created node.
    async fn start_node(&mut self, spec: &NodeSpec) -> Result<Box<dyn NodeHandle>, HarnessError>;
    /// Restore a stopped node from a backup (`backup` is a path on the harness's host). The
    /// node's own refusal (it said no, on purpose) is `Ok(Refused)`; `Err` is the harness or the
    /// launcher failing.
    async fn restore(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
        digests: Digests,
    ) -> Result<RestoreOutcome, HarnessError>;
    /// Run the restore of a stopped node and kill it (SIGKILL, below the node: `strace
    /// --inject`) at the `at.nth` call of syscall `at.syscall`; the node is left stopped.
    /// Only where the driver declares [`Capability::KillRestore`].
    async fn crash_restore(
        &mut self,
        spec: &NodeSpec,
        _backup: &Path,
        _at: &KillPoint,
    ) -> Result<KilledRestore, HarnessError> {
        Err(HarnessError::node(
            &spec.name,
            "this driver cannot kill a restore at a syscall (no kill-restore capability)",
        ))
    }
    /// Cut the network path between `a` and `b` below the nodes, so neither can reach the
    /// other even by redialling. `Ok(false)`: this driver cannot, and the cluster cuts the pair
    /// at the connection level instead (disconnect, and refuse `connect` until healed).
    async fn partition(&mut self, _a: &NodeSpec, _b: &NodeSpec) -> Result<bool, HarnessError> {
        Ok(false)
    }
    /// Rewrite a stopped node's config for its (changed) build, keeping its home: the
    /// `upgrade` verb. The next start runs `spec.build`.
    async fn reconfigure_node(&mut self, spec: &NodeSpec) -> Result<(), HarnessError> {
        dlp_node::write_config(spec, dlp_node::Placement::Loopback)
    }
    /// Undo [`partition`](Self::partition); `Ok(false)` when the driver did not cut it.
    async fn heal(&mut self, _a: &NodeSpec, _b: &NodeSpec) -> Result<bool, HarnessError> {
        Ok(false)
    }
}

/// A running node.
#[async_trait]
pub trait NodeHandle: Send + Sync {
    /// Where the harness reaches the node's RPC.
    fn rpc_addr(&self) -> SocketAddr;
    /// The address its peers dial, given the addresses it advertises (`node_info.addresses`).
    /// On the host's loopback they are the same; a container's peers dial its network address.
    fn dial_address(&self, advertised: &[String]) -> Option<String> {
        advertised.first().cloned()
    }
    /// A path the node reported (a backup directory) as a path on the harness's host.
    fn host_path(&self, reported: &str) -> PathBuf {
        PathBuf::from(reported)
    }
    /// Freeze the node where it stands (its sockets stay open, nothing is processed): SIGSTOP,
    /// `docker pause`. Only where the driver declares [`Capability::Pause`].
    async fn pause(&self) -> Result<(), HarnessError> {
        Err(HarnessError::Setup(
            "this driver cannot pause a node (no pause capability)".into(),
        ))
    }
    /// Thaw a paused node.
    async fn resume(&self) -> Result<(), HarnessError> {
        Err(HarnessError::Setup(
            "this driver cannot resume a node (no pause capability)".into(),
        ))
    }
    /// Stop cleanly (SIGTERM / `RunningNode::stop`). Never called on a paused node: the cluster
    /// resumes it first.
    async fn stop(self: Box<Self>) -> Result<(), HarnessError>;
    /// Stop abruptly: SIGKILL for a process; for a task, drop everything without the clean stop.
    /// Also called on a paused node, which must then die without running again.
    async fn crash(self: Box<Self>);
}
