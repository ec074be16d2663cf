//! The cluster's handling of faults, on in-process nodes behind a double whose "pause" only
//! records the call (the node keeps answering, so anything the cluster still asked of a paused
//! node would succeed and fail these tests) and whose dial address can be redirected (to a
//! silent listener: a path that swallows the dial, as a cut below the nodes does).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dlp_chain::ChainClient;
use dlp_node_api::Backend;

use super::{Idle, Network};
use crate::capability::{Capability, DriverKind};
use crate::driver::{AuditSettings, BackupSettings, ForwardingSettings};
use crate::driver::{Driver, InProcessDriver, NodeHandle, NodeSpec};
use crate::error::HarnessError;
use crate::limits::UNREACHABLE_WITHIN;
use crate::restore_outcome::{Digests, RestoreOutcome};

type Calls = Arc<Mutex<Vec<String>>>;
/// Where peers dial every node instead of its own address, when set.
type Redirect = Arc<Mutex<Option<SocketAddr>>>;

/// In-process nodes whose "pause" only records the call: the node keeps answering, so
/// anything the cluster still asked of a paused node would succeed and fail these tests.
struct RecordedPause {
    inner: InProcessDriver,
    calls: Calls,
    redirect: Redirect,
}

struct RecordedNode {
    name: String,
    inner: Box<dyn NodeHandle>,
    calls: Calls,
    redirect: Redirect,
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
    async fn start_node(&mut self, spec: &NodeSpec) -> Result<Box<dyn NodeHandle>, HarnessError> {
        Ok(Box::new(RecordedNode {
            name: spec.name.clone(),
            inner: self.inner.start_node(spec).await?,
            calls: self.calls.clone(),
            redirect: self.redirect.clone(),
        }))
    }
    async fn restore(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
        digests: Digests,
    ) -> Result<RestoreOutcome, HarnessError> {
        self.inner.restore(spec, backup, digests).await
    }
}

#[async_trait]
impl NodeHandle for RecordedNode {
    fn rpc_addr(&self) -> SocketAddr {
        self.inner.rpc_addr()
    }
    fn dial_address(&self, advertised: &[String]) -> Option<String> {
        let own = self.inner.dial_address(advertised)?;
        match *self.redirect.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(to) => {
                let (_, key) = dlp_node_api::parse_peer_address(&own, false).ok()?;
                Some(dlp_node_api::format_peer_address(to, &key))
            }
            None => Some(own),
        }
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
    let (net, calls, _) = two_nodes_redirectable(dir).await;
    (net, calls)
}

async fn two_nodes_redirectable(dir: &Path) -> (Network, Calls, Redirect) {
    let (calls, redirect) = (Calls::default(), Redirect::default());
    let driver = RecordedPause {
        inner: InProcessDriver::default(),
        calls: calls.clone(),
        redirect: redirect.clone(),
    };
    let mut net = Network::with_driver(Box::new(driver), Backend::Sqlite, dir, 7)
        .await
        .expect("network");
    for name in ["alice", "bob"] {
        net.add_node(
            name,
            AuditSettings::default(),
            BackupSettings::default(),
            ForwardingSettings::default(),
            crate::driver::NodeBuild::Current,
        )
        .await
        .expect("node");
    }
    net.connect("alice", "bob").await.expect("connect");
    (net, calls, redirect)
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

fn timeline_says(net: &Network, text: &str) -> bool {
    net.timeline().iter().any(|t| t.what.contains(text))
}

#[tokio::test]
async fn a_dial_that_connects_is_seen_as_reachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut net, _, _) = two_nodes_redirectable(dir.path()).await;
    net.disconnect("alice", "bob").await.expect("disconnect");
    let started = Instant::now();
    let connected = net
        .try_dial("alice", "bob", UNREACHABLE_WITHIN)
        .await
        .expect("dial");
    assert!(connected, "alice reaches bob: nothing cuts them");
    assert!(started.elapsed() < UNREACHABLE_WITHIN, "seen at once");
    assert!(timeline_says(&net, "alice dialled bob itself: "));
    net.shutdown_all().await;
}

#[tokio::test]
async fn a_dial_into_a_silent_path_is_unreachable_once_the_bound_has_passed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut net, _, redirect) = two_nodes_redirectable(dir.path()).await;
    net.disconnect("alice", "bob").await.expect("disconnect");
    // Accepts TCP (the kernel's backlog) and never says a word: the handshake hangs, as on a
    // path cut below the nodes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    *redirect.lock().unwrap_or_else(|p| p.into_inner()) = Some(silent.local_addr().expect("addr"));
    let within = Duration::from_millis(800);
    let started = Instant::now();
    let connected = net.try_dial("alice", "bob", within).await.expect("dial");
    let took = started.elapsed();
    assert!(!connected, "nothing answered");
    assert!(
        took >= within && took < within + Duration::from_secs(2),
        "{took:?}"
    );
    assert!(timeline_says(
        &net,
        "alice dialled bob itself: no connection within 800ms"
    ));

    // A refused dial is an answer at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone = closed.local_addr().expect("addr");
    drop(closed);
    *redirect.lock().unwrap_or_else(|p| p.into_inner()) = Some(gone);
    let started = Instant::now();
    let connected = net
        .try_dial("alice", "bob", UNREACHABLE_WITHIN)
        .await
        .expect("dial");
    assert!(!connected);
    assert!(
        started.elapsed() < UNREACHABLE_WITHIN,
        "{:?}",
        started.elapsed()
    );
    assert!(timeline_says(
        &net,
        "alice dialled bob itself: the dial failed"
    ));
    net.shutdown_all().await;
}
