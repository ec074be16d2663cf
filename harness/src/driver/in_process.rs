//! Nodes as tasks in the test process. Each starts inside a span naming its `node.log`
//! (`node_log.rs`), so its log lands in its home like a process node's.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use dlp_chain::{ChainClient, InProcessChain};
use dlp_node::config::Config;
use dlp_node::failpoint::Failpoints;
use dlp_node::layout::BaseDir;
use dlp_node::node::{RunningNode, StartOptions};
use dlp_node::restore::{RestoreOptions, restore};

use super::{Digests, Driver, DriverKind, NodeHandle, NodeSpec, RestoreOutcome};
use crate::error::HarnessError;

/// See the module docs of [`crate::driver`].
#[derive(Debug, Default)]
pub struct InProcessDriver {
    chain: Option<InProcessChain>,
}

struct InProcessNode {
    node: RunningNode,
}

/// A task in this process is this build: a named one is refused (the capability check
/// refuses its scenario first; this guards code that builds specs by hand).
fn only_this_build(spec: &NodeSpec) -> Result<(), HarnessError> {
    match &spec.build {
        super::NodeBuild::Current => Ok(()),
        super::NodeBuild::Named(named) => Err(HarnessError::node(
            &spec.name,
            format!(
                "the in-process driver runs only this build, not {} (use the process or \
                 container driver)",
                named.name
            ),
        )),
    }
}

#[async_trait]
impl Driver for InProcessDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::InProcess
    }

    async fn start_chain(
        &mut self,
        _run_dir: &Path,
    ) -> Result<(Arc<dyn ChainClient>, Option<String>), HarnessError> {
        let chain = InProcessChain::new();
        self.chain = Some(chain.clone());
        Ok((Arc::new(chain), None))
    }

    async fn create_node(&mut self, spec: &NodeSpec) -> Result<(), HarnessError> {
        only_this_build(spec)?;
        super::dlp_node::create_home(spec, super::dlp_node::Placement::Loopback)
    }

    async fn start_node(&mut self, spec: &NodeSpec) -> Result<Box<dyn NodeHandle>, HarnessError> {
        only_this_build(spec)?;
        let name = &spec.name;
        let base = BaseDir::new(&spec.home);
        let (config, _) = Config::load(&base, None).map_err(|e| HarnessError::node(name, e))?;
        let chain: Arc<dyn ChainClient> = Arc::new(
            self.chain
                .clone()
                .ok_or_else(|| HarnessError::Setup("start the chain first".into()))?,
        );
        let options = StartOptions {
            chain: Some(chain),
            failpoints: Failpoints::none(),
            name: Some(name.to_string()),
        };
        let log = super::dlp_node::log_path(&spec.home);
        let node = tracing::Instrument::instrument(
            RunningNode::start_with(base, config, options),
            super::node_log::node_span(&log),
        )
        .await
        .map_err(|e| HarnessError::node(name, e))?;
        Ok(Box::new(InProcessNode { node }))
    }

    async fn restore(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
        digests: Digests,
    ) -> Result<RestoreOutcome, HarnessError> {
        let base = BaseDir::new(&spec.home);
        let backend = spec.backend;
        let backup = backup.to_path_buf();
        let options = RestoreOptions {
            accept_undigested: digests == Digests::Bypassed,
            ..RestoreOptions::default()
        };
        let restored =
            tokio::task::spawn_blocking(move || restore(&base, backend, &backup, &options))
                .await
                .map_err(|e| HarnessError::node(&spec.name, e))?;
        // Every error of the library's restore is its refusal: it leaves the home as it was.
        Ok(match restored {
            Ok(_) => RestoreOutcome::Restored,
            Err(e) => RestoreOutcome::Refused {
                reason: e.to_string(),
            },
        })
    }
}

#[async_trait]
impl NodeHandle for InProcessNode {
    fn rpc_addr(&self) -> SocketAddr {
        self.node.rpc_addr()
    }

    async fn stop(self: Box<Self>) -> Result<(), HarnessError> {
        self.node.stop().await;
        Ok(())
    }

    async fn crash(self: Box<Self>) {
        // The core is cancelled where it stands (even held at a step): like SIGKILL, nothing
        // more is processed or sent; the store holds what was durably written.
        self.node.crash().await;
    }
}
