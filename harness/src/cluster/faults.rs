//! Faults a node suffers without stopping: a pause freezes it where it stands (a SIGSTOPped
//! process, a paused container) until it is resumed. Its sockets stay open and its peers see a
//! silent node, not a closed connection; nothing in it runs, its RPC included.
//!
//! So the cluster never asks a paused node anything: its events are fetched once more just
//! before it freezes and then not again until it resumes (every poll skips it: the invariants'
//! final look, quiescence, a stop's last look), its RPC client is refused with
//! [`HarnessError::Paused`] naming it, and a wait that idles on its events fails at once with
//! the same error instead of waiting out the deadline. Quiescence counts the directions into
//! and out of a paused node as frozen, not in flight (`quiescence.rs`). A paused node is
//! crashed as it is (SIGKILL ends a stopped process), but stopped cleanly only once resumed (a
//! stopped process does not act on SIGTERM until SIGCONT): `shutdown_all` resumes it first,
//! [`Network::stop`] refuses.

use std::time::Duration;

use super::Network;
use crate::error::HarnessError;

impl Network {
    /// Freeze a running node where it stands (the driver must offer pausing).
    pub async fn pause(&mut self, node: &str) -> Result<(), HarnessError> {
        if self.is_paused(node) {
            return Err(HarnessError::node(node, "is paused already"));
        }
        if !self.is_running(node) {
            return Err(HarnessError::node(node, "is not running"));
        }
        // Its last events before it freezes: nothing can be fetched from it afterwards.
        self.poll(node, Duration::ZERO).await?;
        let entry = self.entry_mut(node)?;
        let handle = entry
            .handle
            .as_ref()
            .ok_or_else(|| HarnessError::node(node, "is not running"))?;
        handle.pause().await?;
        entry.paused = true;
        Ok(())
    }

    /// Thaw a paused node; it goes on from where it stood (the same run).
    pub async fn resume(&mut self, node: &str) -> Result<(), HarnessError> {
        let entry = self.entry_mut(node)?;
        if !entry.paused {
            return Err(HarnessError::node(node, "is not paused"));
        }
        let handle = entry
            .handle
            .as_ref()
            .ok_or_else(|| HarnessError::node(node, "is not running"))?;
        handle.resume().await?;
        entry.paused = false;
        Ok(())
    }

    /// True while the node is paused.
    pub fn is_paused(&self, node: &str) -> bool {
        self.nodes.get(node).is_some_and(|e| e.paused)
    }

    /// [`HarnessError::Paused`] if `node` is paused: `what` needs it to answer.
    pub(super) fn refuse_paused(&self, node: &str, what: &str) -> Result<(), HarnessError> {
        if self.is_paused(node) {
            Err(HarnessError::Paused {
                node: node.to_string(),
                what: what.to_string(),
            })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use async_trait::async_trait;
    use dlp_chain::ChainClient;
    use dlp_node::store::Backend;

    use super::*;
    use crate::cluster::{Idle, NodeSettings};
    use crate::driver::{Capability, Driver, DriverKind, InProcessDriver, NodeHandle, NodeSpec};

    type Calls = Arc<Mutex<Vec<String>>>;

    /// In-process nodes whose "pause" only records the call: the node keeps answering, so
    /// anything the cluster still asked of a paused node would succeed and fail these tests.
    struct RecordedPause {
        inner: InProcessDriver,
        calls: Calls,
    }

    struct RecordedNode {
        name: String,
        inner: Box<dyn NodeHandle>,
        calls: Calls,
    }

    impl RecordedNode {
        fn record(&self, what: &str) {
            self.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("{what} {}", self.name));
        }
    }

    #[async_trait]
    impl Driver for RecordedPause {
        fn kind(&self) -> DriverKind {
            DriverKind::InProcess
        }
        fn capabilities(&self) -> &'static [Capability] {
            &Capability::ALL
        }
        async fn start_chain(
            &mut self,
            run_dir: &Path,
        ) -> Result<(Arc<dyn ChainClient>, Option<String>), HarnessError> {
            self.inner.start_chain(run_dir).await
        }
        async fn create_node(&mut self, spec: &NodeSpec) -> Result<(), HarnessError> {
            self.inner.create_node(spec).await
        }
        async fn start_node(
            &mut self,
            spec: &NodeSpec,
        ) -> Result<Box<dyn NodeHandle>, HarnessError> {
            Ok(Box::new(RecordedNode {
                name: spec.name.clone(),
                inner: self.inner.start_node(spec).await?,
                calls: self.calls.clone(),
            }))
        }
        async fn restore(&mut self, spec: &NodeSpec, backup: &Path) -> Result<(), HarnessError> {
            self.inner.restore(spec, backup).await
        }
    }

    #[async_trait]
    impl NodeHandle for RecordedNode {
        fn rpc_addr(&self) -> SocketAddr {
            self.inner.rpc_addr()
        }
        async fn pause(&self) -> Result<(), HarnessError> {
            self.record("pause");
            Ok(())
        }
        async fn resume(&self) -> Result<(), HarnessError> {
            self.record("resume");
            Ok(())
        }
        async fn stop(self: Box<Self>) -> Result<(), HarnessError> {
            self.record("stop");
            self.inner.stop().await
        }
        async fn crash(self: Box<Self>) {
            self.record("crash");
            self.inner.crash().await
        }
    }

    async fn two_nodes(dir: &Path) -> (Network, Calls) {
        let calls = Calls::default();
        let driver = RecordedPause {
            inner: InProcessDriver::default(),
            calls: calls.clone(),
        };
        let mut net = Network::with_driver(Box::new(driver), Backend::Sqlite, dir, 7)
            .await
            .expect("network");
        for name in ["alice", "bob"] {
            net.add_node(name, NodeSettings::default())
                .await
                .expect("node");
        }
        net.connect("alice", "bob").await.expect("connect");
        (net, calls)
    }

    fn paused_node(error: &HarnessError) -> &str {
        match error {
            HarnessError::Paused { node, .. } => node,
            other => panic!("expected a paused-node error, got {other}"),
        }
    }

    #[tokio::test]
    async fn waits_and_calls_that_need_a_paused_node_fail_at_once_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut net, calls) = two_nodes(dir.path()).await;
        net.pause("bob").await.expect("pause");
        assert!(net.is_paused("bob") && net.is_running("bob"));

        let started = Instant::now();
        let after = net.last_seq("bob").expect("seq");
        let waited = net
            .wait_event("bob", after, "a message from alice", |_| false)
            .await
            .expect_err("bob is paused");
        assert_eq!(paused_node(&waited), "bob");
        assert_eq!(
            waited.to_string(),
            "bob is paused: waiting for bob: a message from alice cannot go on until it is \
             resumed"
        );
        let wait = net.wait_until("anything of bob");
        let idled = net
            .not_yet(&wait, None, Idle::NodeEvents("bob".into()))
            .await
            .expect_err("bob is paused");
        assert_eq!(paused_node(&idled), "bob");
        let called = net.client("bob").map(drop).expect_err("no RPC");
        assert_eq!(paused_node(&called), "bob");
        let stopped = net.stop("bob").await.expect_err("no clean stop");
        assert_eq!(paused_node(&stopped), "bob");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "failed at once, not at a deadline: {:?}",
            started.elapsed()
        );
        // The running node is still asked, and quiescence does not wait on the paused one.
        net.client("alice").expect("alice answers");
        net.wait_quiescent().await.expect("quiescent");
        assert!(
            net.recent_events(3)
                .contains("last events of bob (paused: nothing fetched since):")
        );

        net.resume("bob").await.expect("resume");
        net.client("bob").expect("bob answers again");
        net.shutdown_all().await;
        assert_eq!(
            *calls.lock().unwrap_or_else(|p| p.into_inner()),
            ["pause bob", "resume bob", "stop alice", "stop bob"]
        );
    }

    #[tokio::test]
    async fn teardown_resumes_a_paused_node_before_stopping_it_and_a_crash_needs_no_resume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut net, calls) = two_nodes(dir.path()).await;
        net.pause("alice").await.expect("pause alice");
        net.pause("bob").await.expect("pause bob");
        assert!(net.pause("bob").await.is_err(), "paused already");
        net.crash("bob").await.expect("crash a paused node");
        assert!(!net.is_paused("bob") && !net.is_running("bob"));
        assert!(net.resume("bob").await.is_err(), "bob is not paused");
        net.shutdown_all().await;
        assert_eq!(
            *calls.lock().unwrap_or_else(|p| p.into_inner()),
            [
                "pause alice",
                "pause bob",
                "crash bob",
                "resume alice",
                "stop alice"
            ]
        );
    }
}
