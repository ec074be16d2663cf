//! A node in its container: the handle the cluster holds while it runs. Its RPC is reached
//! through the mapped port, its peers dial its address on the run's network, paths it reports
//! under `/data` are its home on the host.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use testcontainers::bollard::Docker;
use testcontainers::{ContainerAsync, GenericImage};

use super::{HOME, PEER_PORT, Placements, docker};
use crate::driver::NodeHandle;
use crate::error::HarnessError;

/// A node in its container.
pub(super) struct ContainerNode {
    pub(super) name: String,
    pub(super) container: Option<ContainerAsync<GenericImage>>,
    pub(super) docker: Docker,
    pub(super) rpc: SocketAddr,
    pub(super) ip: IpAddr,
    pub(super) home: PathBuf,
    pub(super) placements: Arc<Mutex<Placements>>,
    pub(super) keep: bool,
}

impl ContainerNode {
    fn container(&self) -> Result<&ContainerAsync<GenericImage>, HarnessError> {
        self.container
            .as_ref()
            .ok_or_else(|| HarnessError::node(&self.name, "its container is gone"))
    }

    /// The node is gone: forget where it was, and drop (remove) or keep its container.
    fn retire(&mut self) {
        self.placements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .nodes
            .remove(&self.name);
        if let Some(container) = self.container.take()
            && self.keep
        {
            std::mem::forget(container);
        }
    }
}

#[async_trait]
impl NodeHandle for ContainerNode {
    fn rpc_addr(&self) -> SocketAddr {
        self.rpc
    }

    fn dial_address(&self, advertised: &[String]) -> Option<String> {
        // "/ip4/0.0.0.0/tcp/8228/p2p/<key>": peers dial its address on the run's network.
        let key = advertised.first()?.rsplit_once("/p2p/")?.1;
        let family = if self.ip.is_ipv4() { "ip4" } else { "ip6" };
        Some(format!("/{family}/{}/tcp/{PEER_PORT}/p2p/{key}", self.ip))
    }

    fn host_path(&self, reported: &str) -> PathBuf {
        match Path::new(reported).strip_prefix(HOME) {
            Ok(rest) => self.home.join(rest),
            Err(_) => PathBuf::from(reported),
        }
    }

    async fn pause(&self) -> Result<(), HarnessError> {
        self.container()?
            .pause()
            .await
            .map_err(|e| HarnessError::node(&self.name, format!("docker pause: {e}")))
    }

    async fn resume(&self) -> Result<(), HarnessError> {
        self.container()?
            .unpause()
            .await
            .map_err(|e| HarnessError::node(&self.name, format!("docker unpause: {e}")))
    }

    async fn stop(mut self: Box<Self>) -> Result<(), HarnessError> {
        let container = self.container()?;
        let stopped = container.stop_with_timeout(Some(30)).await;
        let code = container.exit_code().await.ok().flatten();
        self.retire();
        match (stopped, code) {
            (Ok(()), Some(0)) => Ok(()),
            (Ok(()), code) => Err(HarnessError::node(
                &self.name,
                format!("exited with {code:?} after SIGTERM"),
            )),
            (Err(e), _) => Err(HarnessError::node(&self.name, format!("docker stop: {e}"))),
        }
    }

    async fn crash(mut self: Box<Self>) {
        if let Ok(container) = self.container() {
            let id = container.id().to_string();
            if let Err(e) = docker::kill(&self.docker, &id).await {
                tracing::warn!(node = %self.name, error = %e, "SIGKILL failed");
            }
        }
        self.retire();
    }
}
