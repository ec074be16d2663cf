//! `dlp-node bench-payments`: node start time, payment throughput direct and over a route of
//! three channels, and the store size after N payments, per backend.
//!
//! Four in-process nodes in a line (alice - bob - carol - dave) share one in-process ledger and
//! talk over real Noise connections on loopback, each with its real store, exactly as in the
//! protocol tests. The benchmark drives them through their JSON-RPC, as the harness does (a
//! call is a loopback HTTP request; events come from `dev_events`). Direct payments go alice -> bob; routed ones alice -> dave, found on the graph
//! alice learned from gossip, with an onion layer per hop, forwarded by bob and carol.
//! "Sequential" waits for each payment's Success before sending the next (latency-bound: about
//! eight messages and four fsynced writes per side per channel per payment). "Pipelined" sends
//! them all, then waits; the protocol batches updates into fewer commitment rounds.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlp_chain::jsonrpc::RpcClient;
use dlp_chain::{ChainClient, Hash32, InProcessChain, Pubkey};
use dlp_node::config::Config;
use dlp_node::layout::BaseDir;
use dlp_node::node::RunningNode;
use dlp_node::store::open_store;
use dlp_node_api::{
    Backend, ChannelState, EventKind, NodeEvent, NodeInfo, PaymentStatus, RpcModule, TxKindName,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{human_bytes, human_duration};

/// What to measure.
#[derive(Debug, Clone)]
pub(crate) struct PaymentBenchOptions {
    pub(crate) backends: Vec<Backend>,
    /// Payments per mode.
    pub(crate) payments: usize,
    /// Restarts measured for the start time (median reported).
    pub(crate) starts: usize,
    /// Scratch directory (removed afterwards).
    pub(crate) work_dir: PathBuf,
}

/// One backend's results.
#[derive(Debug, Clone)]
pub(crate) struct PaymentBenchRow {
    pub(crate) backend: Backend,
    pub(crate) first_start: Duration,
    pub(crate) restart_median: Duration,
    pub(crate) payments: usize,
    pub(crate) sequential: Duration,
    pub(crate) pipelined: Duration,
    /// The same payments alice -> dave over three channels.
    pub(crate) routed_sequential: Duration,
    pub(crate) routed_pipelined: Duration,
    pub(crate) payer_store_bytes: u64,
    pub(crate) payee_store_bytes: u64,
    /// Sum of key and value sizes in the payer's store (what the engine holds live).
    pub(crate) payer_live_bytes: u64,
    pub(crate) payer_entries: u64,
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
#[error("bench-payments: {0}")]
pub(crate) struct PaymentBenchError(String);

fn err(e: impl std::fmt::Display) -> PaymentBenchError {
    PaymentBenchError(e.to_string())
}

const DEADLINE: Duration = Duration::from_secs(600);
/// How long one `dev_events` call waits for the next event.
const EVENT_POLL: Duration = Duration::from_secs(5);

fn config(backend: Backend) -> Config {
    let mut config = Config::default();
    config.store.backend = backend;
    config.rpc.listening_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.fiber.listening_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    // `dev` for the event feed, `admin` for the backup the live data is measured on.
    config.rpc.enabled_modules.push(RpcModule::Dev);
    config.rpc.enabled_modules.push(RpcModule::Admin);
    config
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

/// One running node and its RPC, with the events it has not yet shown the benchmark.
struct Node {
    node: RunningNode,
    rpc: RpcClient,
    info: NodeInfo,
    /// The last event sequence number fetched.
    fetched: u64,
    /// Fetched events not yet looked at, in order.
    pending: VecDeque<NodeEvent>,
}

impl Node {
    async fn start(
        base: &BaseDir,
        backend: Backend,
        chain: &InProcessChain,
    ) -> Result<Self, PaymentBenchError> {
        let chain: Arc<dyn ChainClient> = Arc::new(chain.clone());
        let node = RunningNode::start_with_chain(base.clone(), config(backend), Some(chain))
            .await
            .map_err(err)?;
        let rpc = RpcClient::new(node.rpc_addr()).with_timeout(DEADLINE);
        let info = rpc
            .call_async::<NodeInfo>("node_info", Some(json!({})))
            .await
            .map_err(err)?;
        Ok(Self {
            node,
            rpc,
            info,
            fetched: 0,
            pending: VecDeque::new(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, PaymentBenchError> {
        self.rpc
            .call_async(method, Some(params))
            .await
            .map_err(|e| err(format!("{method}: {e}")))
    }

    /// Fetch the events published since the last fetch, waiting up to `wait` for the first.
    async fn fetch(&mut self, wait: Duration) -> Result<(), PaymentBenchError> {
        #[derive(Deserialize)]
        struct Events {
            events: Vec<NodeEvent>,
        }
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let answer: Events = self
            .call(
                "dev_events",
                json!({ "after": hex(self.fetched), "wait_ms": hex(wait_ms) }),
            )
            .await?;
        if let Some(last) = answer.events.last() {
            self.fetched = last.seq;
        }
        self.pending.extend(answer.events);
        Ok(())
    }

    /// Forget every event published so far: what follows only looks at what happens next.
    async fn skip_past(&mut self) -> Result<(), PaymentBenchError> {
        self.fetch(Duration::ZERO).await?;
        self.pending.clear();
        Ok(())
    }

    /// Look at events one at a time until `done` says so, at most [`DEADLINE`].
    async fn until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&EventKind) -> Result<bool, PaymentBenchError>,
    ) -> Result<(), PaymentBenchError> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            while let Some(event) = self.pending.pop_front() {
                if done(&event.kind)? {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(err(format!("{what}: not within {DEADLINE:?}")));
            }
            self.fetch(EVENT_POLL).await?;
        }
    }

    fn wallet(&self) -> Result<Pubkey, PaymentBenchError> {
        self.info.wallet_key().map_err(err)
    }
}

/// Wait until every hash in `pending` reached Success on the payer (fails on a Failed one).
async fn wait_payments(
    payer: &mut Node,
    mut pending: HashSet<Hash32>,
) -> Result<(), PaymentBenchError> {
    let what = format!("{} payments", pending.len());
    if pending.is_empty() {
        return Ok(());
    }
    payer
        .until(&what, |kind| {
            if let EventKind::PaymentUpdated {
                payment_hash,
                status,
                reason,
            } = kind
            {
                match status {
                    PaymentStatus::Success => {
                        pending.remove(payment_hash);
                    }
                    PaymentStatus::Failed => {
                        return Err(err(format!("payment {payment_hash} failed: {reason:?}")));
                    }
                    PaymentStatus::Created | PaymentStatus::Inflight => {}
                }
            }
            Ok(pending.is_empty())
        })
        .await
}

async fn send(payer: &Node, payee: &Node) -> Result<Hash32, PaymentBenchError> {
    #[derive(Deserialize)]
    struct Invoice {
        invoice_address: String,
    }
    #[derive(Deserialize)]
    struct Payment {
        payment_hash: Hash32,
        status: PaymentStatus,
        #[serde(default)]
        failed_error: Option<String>,
    }
    let invoice: Invoice = payee
        .call("new_invoice", json!({ "amount": hex(1_000) }))
        .await?;
    let payment: Payment = payer
        .call(
            "send_payment",
            json!({ "invoice": invoice.invoice_address }),
        )
        .await?;
    if payment.status == PaymentStatus::Failed {
        return Err(err(format!(
            "payment failed at once: {:?}",
            payment.failed_error
        )));
    }
    Ok(payment.payment_hash)
}

/// `n` payments from `payer` to `payee`, each awaited before the next.
async fn pay_sequentially(
    n: usize,
    payer: &mut Node,
    payee: &Node,
) -> Result<Duration, PaymentBenchError> {
    let t = Instant::now();
    for _ in 0..n {
        let hash = send(payer, payee).await?;
        wait_payments(payer, HashSet::from([hash])).await?;
    }
    Ok(t.elapsed())
}

/// `n` payments from `payer` to `payee`, all sent, then all awaited.
async fn pay_pipelined(
    n: usize,
    payer: &mut Node,
    payee: &Node,
) -> Result<Duration, PaymentBenchError> {
    let t = Instant::now();
    let mut pending = HashSet::new();
    for _ in 0..n {
        pending.insert(send(payer, payee).await?);
    }
    wait_payments(payer, pending).await?;
    Ok(t.elapsed())
}

/// Connect `opener` to `peer`, open a channel it funds, mine the funding, wait until ready.
async fn open_channel(
    chain: &InProcessChain,
    opener: &mut Node,
    peer: &Node,
) -> Result<(), PaymentBenchError> {
    chain
        .fund(opener.wallet()?, 10_000_000_000)
        .await
        .map_err(err)?;
    let address = peer
        .info
        .addresses
        .first()
        .ok_or_else(|| err("the peer lists no address"))?;
    // Only what this channel does from here on (the opener may have opened one before).
    opener.skip_past().await?;
    let _: Value = opener
        .call("connect_peer", json!({ "address": address }))
        .await?;
    let _: Value = opener
        .call(
            "open_channel",
            json!({ "pubkey": peer.info.node_key().map_err(err)?, "funding_amount": hex(5_000_000_000) }),
        )
        .await?;
    // Funding is broadcast once the peer signed our first commitment; mine when it is there.
    let mut funded = None;
    opener
        .until("the funding broadcast", |kind| {
            if let EventKind::TxBroadcast {
                kind: TxKindName::Funding,
                channel_id,
                ..
            } = kind
            {
                funded = *channel_id;
            }
            Ok(funded.is_some())
        })
        .await?;
    chain.mine(1).await.map_err(err)?;
    opener
        .until("the channel's ChannelReady", |kind| {
            Ok(matches!(kind, EventKind::StateChanged {
                channel_id,
                to: ChannelState::ChannelReady,
                ..
            } if Some(*channel_id) == funded))
        })
        .await
}

/// Wait until the payer showed `channels` channels entering its graph (counted over all of its
/// events: its own channel entered the graph while it was opening it).
async fn wait_graph(payer: &mut Node, channels: usize) -> Result<(), PaymentBenchError> {
    payer.fetched = 0;
    payer.pending.clear();
    let mut seen = 0;
    payer
        .until(
            &format!("{channels} channels in the payer's graph"),
            |kind| {
                if matches!(kind, EventKind::GraphChannelAdded { .. }) {
                    seen += 1;
                }
                Ok(seen >= channels)
            },
        )
        .await
}

/// The payer's live data (sum of key and value sizes, entries): read from a hot backup of its
/// store (the same state; the running node holds its store open).
async fn live_data(node: &mut Node, backend: Backend) -> Result<(u64, u64), PaymentBenchError> {
    let _: Value = node.call("backup", json!({})).await?;
    let mut dir = None;
    node.until("the backup", |kind| {
        if let EventKind::BackupWritten { dir: written, .. } = kind {
            dir = Some(PathBuf::from(written));
        }
        Ok(dir.is_some())
    })
    .await?;
    let dir = dir.ok_or_else(|| err("no backup written"))?;
    let store_dir = match backend {
        Backend::Rocksdb => dir.join(dlp_node_api::ROCKSDB_BACKUP_DIR_NAME),
        Backend::Sqlite => dir.clone(),
    };
    let (mut bytes, mut entries) = (0u64, 0u64);
    {
        let store = open_store(backend, &store_dir).map_err(err)?;
        store
            .scan_prefix(&[], &mut |k, v| {
                bytes += (k.len() + v.len()) as u64;
                entries += 1;
                std::ops::ControlFlow::Continue(())
            })
            .map_err(err)?;
    }
    std::fs::remove_dir_all(&dir).map_err(err)?;
    Ok((bytes, entries))
}

async fn run_backend(
    options: &PaymentBenchOptions,
    backend: Backend,
    progress: &mut dyn FnMut(String),
) -> Result<PaymentBenchRow, PaymentBenchError> {
    let dir = options.work_dir.join(backend.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let chain = InProcessChain::new();
    // Start time: a first start (creates keys and the store), then restarts.
    let base = BaseDir::new(dir.join("starts"));
    let t = Instant::now();
    let node = Node::start(&base, backend, &chain).await?;
    let first_start = t.elapsed();
    node.node.stop().await;
    let mut restarts = Vec::new();
    for _ in 0..options.starts.max(1) {
        let t = Instant::now();
        let node = Node::start(&base, backend, &chain).await?;
        restarts.push(t.elapsed());
        node.node.stop().await;
    }
    restarts.sort();
    let restart_median = restarts[restarts.len() / 2];
    progress(format!(
        "{backend}: start {} (first {})",
        human_duration(restart_median),
        human_duration(first_start)
    ));

    // The line: alice - bob - carol - dave, each channel funded by its left end.
    let mut bases = Vec::new();
    let mut line = Vec::new();
    for name in ["alice", "bob", "carol", "dave"] {
        let base = BaseDir::new(dir.join(name));
        line.push(Node::start(&base, backend, &chain).await?);
        bases.push(base);
    }
    let [mut alice, mut bob, mut carol, dave] =
        <[Node; 4]>::try_from(line).map_err(|_| err("four nodes"))?;
    open_channel(&chain, &mut alice, &bob).await?;
    open_channel(&chain, &mut bob, &carol).await?;
    open_channel(&chain, &mut carol, &dave).await?;
    wait_graph(&mut alice, 3).await?;
    let (alice_base, bob_base) = (&bases[0], &bases[1]);
    progress(format!(
        "{backend}: line of four ready; {} sequential payments",
        options.payments
    ));

    let sequential = pay_sequentially(options.payments, &mut alice, &bob).await?;
    let payer_store_bytes = dlp_node::fsutil::tree_size(&alice_base.store_dir()).map_err(err)?;
    let payee_store_bytes = dlp_node::fsutil::tree_size(&bob_base.store_dir()).map_err(err)?;
    let (payer_live_bytes, payer_entries) = live_data(&mut alice, backend).await?;
    progress(format!(
        "{backend}: {} pipelined payments",
        options.payments
    ));

    let pipelined = pay_pipelined(options.payments, &mut alice, &bob).await?;
    progress(format!(
        "{backend}: {} routed payments over three channels, sequential then pipelined",
        options.payments
    ));
    let routed_sequential = pay_sequentially(options.payments, &mut alice, &dave).await?;
    let routed_pipelined = pay_pipelined(options.payments, &mut alice, &dave).await?;
    for node in [alice, bob, carol, dave] {
        node.node.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(PaymentBenchRow {
        backend,
        first_start,
        restart_median,
        payments: options.payments,
        sequential,
        pipelined,
        routed_sequential,
        routed_pipelined,
        payer_store_bytes,
        payee_store_bytes,
        payer_live_bytes,
        payer_entries,
    })
}

/// Run the benchmark for every backend.
pub(crate) async fn run(
    options: &PaymentBenchOptions,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<PaymentBenchRow>, PaymentBenchError> {
    if options.payments == 0 {
        return Err(err("--payments must be at least 1"));
    }
    let mut rows = Vec::new();
    for backend in &options.backends {
        rows.push(run_backend(options, *backend, progress).await?);
    }
    Ok(rows)
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:.0}/s", n as f64 / d.as_secs_f64().max(f64::EPSILON))
}

/// Render rows as a Markdown table.
pub(crate) fn render_table(rows: &[PaymentBenchRow]) -> String {
    let mut out = String::from(
        "| backend | node start (median restart) | first start | payments | direct sequential | direct pipelined | 3-hop sequential | 3-hop pipelined | payer store on disk | payer live data | payee store on disk |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} ({}) | {} ({}) | {} ({}) | {} ({}) | {} | {} in {} entries | {} |\n",
            r.backend,
            human_duration(r.restart_median),
            human_duration(r.first_start),
            r.payments,
            rate(r.payments, r.sequential),
            human_duration(r.sequential),
            rate(r.payments, r.pipelined),
            human_duration(r.pipelined),
            rate(r.payments, r.routed_sequential),
            human_duration(r.routed_sequential),
            rate(r.payments, r.routed_pipelined),
            human_duration(r.routed_pipelined),
            human_bytes(r.payer_store_bytes),
            human_bytes(r.payer_live_bytes),
            r.payer_entries,
            human_bytes(r.payee_store_bytes),
        ));
    }
    out
}
