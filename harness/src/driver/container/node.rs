//! A node in its container: the handle the cluster holds while the node's process runs. Its RPC
//! and its peer socket are at its container's address on the pool's network (the host reaches
//! that network directly, as it is the project's own); its home has the same path inside as on
//! the host, so paths it reports need no mapping.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use testcontainers::bollard::Docker;

use super::PEER_PORT;
use super::exec::Exec;
use super::procs::signal_in;
use crate::driver::NodeHandle;
use crate::error::HarnessError;

/// How long a node may take to exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(30);
/// How long a SIGKILLed node may take to be gone.
const KILLED_WITHIN: Duration = Duration::from_secs(10);

/// A node's process in its container.
pub(super) struct ContainerNode {
    pub(super) name: String,
    pub(super) docker: Docker,
    /// The container's id.
    pub(super) container: String,
    /// The container's init (host PID): only processes of its namespace are signalled.
    pub(super) init: i64,
    pub(super) exec: Exec,
    pub(super) ip: IpAddr,
    pub(super) rpc: SocketAddr,
    /// Shared with the driver's record of the container (released unpaused).
    pub(super) paused: Arc<AtomicBool>,
}

impl ContainerNode {
    async fn unpause_if_paused(&self) {
        if self.paused.swap(false, Ordering::Relaxed) {
            let _ = self.docker.unpause_container(&self.container).await;
        }
    }
}

#[async_trait]
impl NodeHandle for ContainerNode {
    fn rpc_addr(&self) -> SocketAddr {
        self.rpc
    }

    fn dial_address(&self, advertised: &[String]) -> Option<String> {
        // "/ip4/0.0.0.0/tcp/8228/p2p/<key>": peers dial its address on the pool's network.
        let key = advertised.first()?.rsplit_once("/p2p/")?.1;
        let family = if self.ip.is_ipv4() { "ip4" } else { "ip6" };
        Some(format!("/{family}/{}/tcp/{PEER_PORT}/p2p/{key}", self.ip))
    }

    /// `docker pause`: the whole container is frozen (cgroup freezer); its sockets stay open.
    async fn pause(&self) -> Result<(), HarnessError> {
        self.docker
            .pause_container(&self.container)
            .await
            .map_err(|e| HarnessError::node(&self.name, format!("docker pause: {e}")))?;
        self.paused.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn resume(&self) -> Result<(), HarnessError> {
        self.docker
            .unpause_container(&self.container)
            .await
            .map_err(|e| HarnessError::node(&self.name, format!("docker unpause: {e}")))?;
        self.paused.store(false, Ordering::Relaxed);
        Ok(())
    }

    async fn stop(self: Box<Self>) -> Result<(), HarnessError> {
        self.unpause_if_paused().await;
        signal_in(self.init, &[self.exec.pid], "TERM").await;
        match self.exec.exit(STOP_WITHIN).await {
            Some(Some(0)) => Ok(()),
            Some(code) => Err(HarnessError::node(
                &self.name,
                format!("exited with {code:?} after SIGTERM"),
            )),
            None => {
                signal_in(self.init, &[self.exec.pid], "KILL").await;
                Err(HarnessError::node(
                    &self.name,
                    format!("still running {STOP_WITHIN:?} after SIGTERM (killed)"),
                ))
            }
        }
    }

    /// SIGKILL to the node's process (a paused one dies as it thaws, running nothing more).
    async fn crash(self: Box<Self>) {
        signal_in(self.init, &[self.exec.pid], "KILL").await;
        self.unpause_if_paused().await;
        if self.exec.exit(KILLED_WITHIN).await.is_none() {
            tracing::warn!(node = %self.name, "still running {KILLED_WITHIN:?} after SIGKILL");
        }
    }
}
