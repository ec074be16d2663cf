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

/// Which driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    InProcess,
    Process,
}

impl DriverKind {
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::InProcess => "in-process",
            DriverKind::Process => "process",
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
