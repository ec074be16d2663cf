//! `dlp-node bench-payments`: node start time, payment throughput direct and over a route of
//! three channels, and the store size after N payments, per backend.
//!
//! Four in-process nodes in a line (alice - bob - carol - dave) share one in-process ledger and
//! talk over real Noise connections on loopback, each with its real store, exactly as in the
//! protocol tests. Direct payments go alice -> bob; routed ones alice -> dave, found on the graph
//! alice learned from gossip, with an onion layer per hop, forwarded by bob and carol.
//! "Sequential" waits for each payment's Success before sending the next (latency-bound: about
//! eight messages and four fsynced writes per side per channel per payment). "Pipelined" sends
//! them all, then waits; the protocol batches updates into fewer commitment rounds.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlp_chain::{ChainClient, Hash32, InProcessChain, Pubkey};

use dlp_node_api::TxKindName;

use crate::bench::{human_bytes, human_duration};
use crate::channel_record::ChannelState;
use crate::config::Config;
use crate::core::{Command, PaymentStatus, SendPaymentRequest};
use crate::events::EventKind;
use crate::layout::BaseDir;
use crate::node::RunningNode;
use crate::store::Backend;

/// What to measure.
#[derive(Debug, Clone)]
pub struct PaymentBenchOptions {
    pub backends: Vec<Backend>,
    /// Payments per mode.
    pub payments: usize,
    /// Restarts measured for the start time (median reported).
    pub starts: usize,
    /// Scratch directory (removed afterwards).
    pub work_dir: PathBuf,
}

/// One backend's results.
#[derive(Debug, Clone)]
pub struct PaymentBenchRow {
    pub backend: Backend,
    pub first_start: Duration,
    pub restart_median: Duration,
    pub payments: usize,
    pub sequential: Duration,
    pub pipelined: Duration,
    /// The same payments alice -> dave over three channels.
    pub routed_sequential: Duration,
    pub routed_pipelined: Duration,
    pub payer_store_bytes: u64,
    pub payee_store_bytes: u64,
    /// Sum of key and value sizes in the payer's store (what the engine holds live).
    pub payer_live_bytes: u64,
    pub payer_entries: u64,
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
#[error("bench-payments: {0}")]
pub struct PaymentBenchError(String);

fn err(e: impl std::fmt::Display) -> PaymentBenchError {
    PaymentBenchError(e.to_string())
}

const DEADLINE: Duration = Duration::from_secs(600);

fn config(backend: Backend) -> Config {
    let mut config = Config::default();
    config.store.backend = backend;
    config.rpc.listening_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.fiber.listening_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config
}

async fn start(
    base: &BaseDir,
    backend: Backend,
    chain: &InProcessChain,
) -> Result<RunningNode, PaymentBenchError> {
    let chain: Arc<dyn ChainClient> = Arc::new(chain.clone());
    RunningNode::start_with_chain(base.clone(), config(backend), Some(chain))
        .await
        .map_err(err)
}

async fn request<T>(
    node: &RunningNode,
    build: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
) -> Result<T, PaymentBenchError> {
    node.protocol().core.request(build).await.map_err(err)
}

/// Wait until every hash in `pending` reached Success on `node` (fails on a Failed payment).
async fn wait_payments(
    rx: &mut tokio::sync::broadcast::Receiver<crate::events::NodeEvent>,
    mut pending: HashSet<Hash32>,
) -> Result<(), PaymentBenchError> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !pending.is_empty() {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .map_err(|_| {
                err(format!(
                    "{} payments still pending after {DEADLINE:?}",
                    pending.len()
                ))
            })?
            .map_err(err)?;
        if let EventKind::PaymentUpdated {
            payment_hash,
            status,
            reason,
        } = event.kind
        {
            match status {
                PaymentStatus::Success => {
                    pending.remove(&payment_hash);
                }
                PaymentStatus::Failed => {
                    return Err(err(format!("payment {payment_hash} failed: {reason:?}")));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

async fn send(payer: &RunningNode, payee: &RunningNode) -> Result<Hash32, PaymentBenchError> {
    let invoice = request(payee, |reply| Command::NewInvoice {
        amount: 1_000,
        description: None,
        reply,
    })
    .await?
    .map_err(err)?;
    let payment = request(payer, |reply| Command::SendPayment {
        request: SendPaymentRequest {
            invoice: Some(invoice.address()),
            target_pubkey: None,
            amount: None,
            keysend: None,
            max_fee_amount: None,
            tlc_expiry_limit: None,
        },
        reply,
    })
    .await?
    .map_err(err)?;
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
    payer: &RunningNode,
    payee: &RunningNode,
    events: &mut tokio::sync::broadcast::Receiver<crate::events::NodeEvent>,
) -> Result<Duration, PaymentBenchError> {
    let t = Instant::now();
    for _ in 0..n {
        let hash = send(payer, payee).await?;
        wait_payments(events, HashSet::from([hash])).await?;
    }
    Ok(t.elapsed())
}

/// `n` payments from `payer` to `payee`, all sent, then all awaited.
async fn pay_pipelined(
    n: usize,
    payer: &RunningNode,
    payee: &RunningNode,
    events: &mut tokio::sync::broadcast::Receiver<crate::events::NodeEvent>,
) -> Result<Duration, PaymentBenchError> {
    let t = Instant::now();
    let mut pending = HashSet::new();
    for _ in 0..n {
        pending.insert(send(payer, payee).await?);
    }
    wait_payments(events, pending).await?;
    Ok(t.elapsed())
}

/// Connect `opener` to `peer`, open a channel it funds, mine the funding, wait until ready.
async fn open_channel(
    chain: &InProcessChain,
    opener: &RunningNode,
    peer: &RunningNode,
) -> Result<(), PaymentBenchError> {
    let wallet = Pubkey::from(opener.context().keys().wallet_secret().public_key());
    chain.fund(wallet, 10_000_000_000).await.map_err(err)?;
    let (peer_proto, opener_proto) = (peer.protocol(), opener.protocol());
    let conn = crate::transport::dial(
        peer_proto.peer_addr,
        peer_proto.identity.pubkey,
        &opener_proto.identity,
        opener_proto.core.transport_sender(),
    )
    .await
    .map_err(err)?;
    opener_proto.core.connected(conn).await.map_err(err)?;
    let mut events = opener_proto.events.subscribe();
    let peer_key = peer_proto.identity.pubkey;
    request(opener, |reply| Command::OpenChannel {
        pubkey: peer_key,
        funding_amount: 5_000_000_000,
        reply,
    })
    .await?
    .map_err(err)?;
    // Funding is broadcast once the peer signed our first commitment; mine when it is there.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| err("channel never became ready"))?
            .map_err(err)?;
        match event.kind {
            EventKind::TxBroadcast {
                kind: TxKindName::Funding,
                ..
            } => {
                chain.mine(1).await.map_err(err)?;
            }
            EventKind::StateChanged {
                to: ChannelState::ChannelReady,
                ..
            } => return Ok(()),
            _ => {}
        }
    }
}

/// Wait until `events` (the payer's) showed `channels` channels entering its graph.
async fn wait_graph(
    events: &mut tokio::sync::broadcast::Receiver<crate::events::NodeEvent>,
    channels: usize,
) -> Result<(), PaymentBenchError> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut seen = 0;
    while seen < channels {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| {
                err(format!(
                    "the payer's graph has {seen} of {channels} channels"
                ))
            })?
            .map_err(err)?;
        if matches!(event.kind, EventKind::GraphChannelAdded { .. }) {
            seen += 1;
        }
    }
    Ok(())
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
    let node = start(&base, backend, &chain).await?;
    let first_start = t.elapsed();
    node.stop().await;
    let mut restarts = Vec::new();
    for _ in 0..options.starts.max(1) {
        let t = Instant::now();
        let node = start(&base, backend, &chain).await?;
        restarts.push(t.elapsed());
        node.stop().await;
    }
    restarts.sort();
    let restart_median = restarts[restarts.len() / 2];
    progress(format!(
        "{backend}: start {} (first {})",
        human_duration(restart_median),
        human_duration(first_start)
    ));

    // The line: alice - bob - carol - dave, each channel funded by its left end.
    let mut nodes = Vec::new();
    let mut bases = Vec::new();
    for name in ["alice", "bob", "carol", "dave"] {
        let base = BaseDir::new(dir.join(name));
        nodes.push(start(&base, backend, &chain).await?);
        bases.push(base);
    }
    let mut alice_events = nodes[0].protocol().events.subscribe();
    for pair in nodes.windows(2) {
        open_channel(&chain, &pair[0], &pair[1]).await?;
    }
    wait_graph(&mut alice_events, 3).await?;
    let (alice, bob, dave) = (&nodes[0], &nodes[1], &nodes[3]);
    let (alice_base, bob_base) = (&bases[0], &bases[1]);
    progress(format!(
        "{backend}: line of four ready; {} sequential payments",
        options.payments
    ));

    let sequential = pay_sequentially(options.payments, alice, bob, &mut alice_events).await?;
    let payer_store_bytes = crate::fsutil::tree_size(&alice_base.store_dir()).map_err(err)?;
    let payee_store_bytes = crate::fsutil::tree_size(&bob_base.store_dir()).map_err(err)?;
    let (mut payer_live_bytes, mut payer_entries) = (0u64, 0u64);
    alice
        .context()
        .store()
        .scan_prefix(&[], &mut |k, v| {
            payer_live_bytes += (k.len() + v.len()) as u64;
            payer_entries += 1;
            std::ops::ControlFlow::Continue(())
        })
        .map_err(err)?;
    progress(format!(
        "{backend}: {} pipelined payments",
        options.payments
    ));

    let pipelined = pay_pipelined(options.payments, alice, bob, &mut alice_events).await?;
    progress(format!(
        "{backend}: {} routed payments over three channels, sequential then pipelined",
        options.payments
    ));
    let routed_sequential =
        pay_sequentially(options.payments, alice, dave, &mut alice_events).await?;
    let routed_pipelined = pay_pipelined(options.payments, alice, dave, &mut alice_events).await?;
    for node in nodes {
        node.stop().await;
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
pub async fn run(
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
pub fn render_table(rows: &[PaymentBenchRow]) -> String {
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
