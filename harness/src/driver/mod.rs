//! Drivers: how nodes and the chain are run. One trait in our own types, so a scenario runs
//! unchanged on any of them; a container driver (a later issue) only has to start a node from a
//! base directory and a config file, give back its RPC address, and stop, crash or restore it.
//!
//! - [`InProcessDriver`]: nodes are tasks in this process (real stores in the run directory,
//!   real sockets on loopback), the chain an in-process ledger. The default: fastest.
//! - [`ProcessDriver`]: every node a `dlp-node` process, the chain `dlp-chain serve`; ports are
//!   chosen by the OS (port 0) and read from the processes' ready lines, so parallel tests never
//!   collide; every child is killed when its handle is dropped, also on panic.

mod in_process;
mod process;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use dlp_chain::ChainClient;
use dlp_node::store::Backend;

use crate::error::HarnessError;

pub use in_process::InProcessDriver;
pub use process::ProcessDriver;

/// Which driver: the one list of drivers (the CLI's `--driver` values come from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum DriverKind {
    /// Nodes as tasks in the harness process (default: fastest).
    #[value(name = "in-process")]
    InProcess,
    /// Every node a `dlp-node` process, the chain `dlp-chain serve`.
    Process,
}

/// Something a scenario may need from the nodes beyond their plain RPC. A driver declares what
/// it offers; `check` and `run` refuse a scenario that needs more, naming the step (file:line)
/// and the missing capability, instead of hanging on a wait that can never end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Typed node events (`dev_events`): every wait, the timeline and every invariant.
    TypedEvents,
    /// Step control (`dev_hold`): `hold`, `wait_held`, `release`, `backup_at`.
    StepControl,
    /// The dlp-chain ledger as the oracle: penalties, wallet balances, conservation.
    DlpChainLedger,
}

impl Capability {
    /// Every capability, in order.
    pub const ALL: [Capability; 3] = [
        Capability::TypedEvents,
        Capability::StepControl,
        Capability::DlpChainLedger,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::TypedEvents => "typed events",
            Capability::StepControl => "step control",
            Capability::DlpChainLedger => "the dlp-chain ledger",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl DriverKind {
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::InProcess => "in-process",
            DriverKind::Process => "process",
        }
    }

    /// What nodes on this driver offer (both run dlp-node against dlp-chain: everything).
    pub fn capabilities(self) -> &'static [Capability] {
        match self {
            DriverKind::InProcess | DriverKind::Process => &Capability::ALL,
        }
    }

    /// A fresh driver of this kind.
    pub fn create(self) -> Result<Box<dyn Driver>, HarnessError> {
        Ok(match self {
            DriverKind::InProcess => Box::new(InProcessDriver::default()),
            DriverKind::Process => Box::new(ProcessDriver::locate()?),
        })
    }
}

impl std::str::FromStr for DriverKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "in-process" => Ok(DriverKind::InProcess),
            "process" => Ok(DriverKind::Process),
            other => Err(format!("unknown driver {other:?}: in-process or process")),
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
    /// Start a node from its base directory; `<base>/config.toml` is already written.
    async fn start_node(
        &mut self,
        name: &str,
        base: &Path,
    ) -> Result<Box<dyn NodeRuntime>, HarnessError>;
    /// Restore a stopped node's base directory from a backup.
    async fn restore(
        &mut self,
        name: &str,
        base: &Path,
        backend: Backend,
        backup: &Path,
    ) -> Result<(), HarnessError>;
}

/// A running node.
#[async_trait]
pub trait NodeRuntime: Send + Sync {
    fn rpc_addr(&self) -> SocketAddr;
    /// Stop cleanly (SIGTERM / `RunningNode::stop`).
    async fn stop(self: Box<Self>) -> Result<(), HarnessError>;
    /// Stop abruptly: SIGKILL for a process; for a task, drop everything without the clean stop.
    async fn crash(self: Box<Self>);
}
