//! The node core: one task that owns every channel and processes one input at a time (a peer
//! message, a chain event, an RPC command).
//!
//! Handling an input only changes memory and queues effects. [`Core::flush`] then applies them
//! in a fixed order that is the durability rule of the node:
//! 1. persist every changed record in one atomic batch (`Persisted` events);
//! 2. announce the handled message (`MessageReceived`), which may hold the node;
//! 3. broadcast transactions;
//! 4. send queued messages, one `MessageSent` event each, each of which may hold the node.
//!
//! So no message ever leaves before the state that produced it is on disk, and while the node is
//! held at a step nothing else runs: the store is exactly that step's state.

mod api;
mod channels;
mod close;
mod gossip;
mod onchain;
mod open;
mod payments;
pub(crate) mod records;
mod reestablish;
mod updates;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use dlp_chain::{ChainClient, ChainEvent, Hash32, OutPoint, Pubkey, Transaction};
use dlp_node_api::{MessageName, TxKindName};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::channel_record::{ChannelId, ChannelRecord, ChannelState};
use crate::config::Config;
use crate::events::{EventBus, EventKind};
use crate::graph::{GRAPH_CHANNEL_PREFIX, Graph, GraphChannel};
use crate::node::NodeContext;
use crate::steps::StepControl;
use crate::store::WriteBatch;
use crate::transport::{Connection, TransportEvent};
use crate::wire::PeerMessage;

pub use api::FailStop;
pub(crate) use api::{ChannelInfo, Command, CoreGone, CoreHandle, CoreInput, PeerInfo, TlcInfo};
#[cfg(test)]
pub(crate) use payments::MAX_DESCRIPTION_BYTES;
pub(crate) use payments::{
    Invoice, MAX_INVOICE_ADDRESS_LEN, Payment, SendPaymentRequest, check_description,
};

/// Key prefix of the peer's revealed commitment secrets: `0x10 ++ channel ++ be64(number)`.
pub(crate) const PEER_SECRET_PREFIX: u8 = 0x10;
/// Key prefix of invoices: `0x20 ++ payment_hash`.
pub(crate) const INVOICE_PREFIX: u8 = 0x20;
/// Key prefix of outgoing payments: `0x30 ++ payment_hash`.
pub(crate) const PAYMENT_PREFIX: u8 = 0x30;
/// Key prefix of preimages learned while forwarding: `0x50 ++ payment_hash`.
pub(crate) const PREIMAGE_PREFIX: u8 = 0x50;
/// Key of the seeded-randomness counter (`dev.seed`): `0x60`, a big-endian u64.
pub(crate) const RNG_COUNTER_KEY: [u8; 1] = [0x60];

/// An input, unboxed (a short-lived local value, so its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Either {
    Transport(TransportEvent),
    Chain(Vec<ChainEvent>),
    Command(Command),
    StaleRevealDue {
        peer: Pubkey,
        conn_id: u64,
        channel_id: Hash32,
    },
}

/// Effects queued while handling one input.
#[derive(Debug, Default)]
struct Effects {
    dirty_channels: BTreeSet<Hash32>,
    deleted_channels: BTreeSet<Hash32>,
    dirty_payments: BTreeSet<Hash32>,
    dirty_invoices: BTreeSet<Hash32>,
    peer_secrets: Vec<(Hash32, u64, Hash32)>,
    preimages: Vec<(Hash32, Hash32)>,
    dirty_graph: BTreeSet<Hash32>,
    deleted_graph: BTreeSet<Hash32>,
    /// Channels whose state changed (their gossip policy may have to follow).
    state_changed: BTreeSet<Hash32>,
    rng_counter: Option<u64>,
    events: Vec<EventKind>,
    txs: Vec<(Transaction, Option<u64>)>,
    messages: Vec<(Pubkey, PeerMessage)>,
}

/// The core's state.
pub(crate) struct Core {
    ctx: Arc<NodeContext>,
    config: Config,
    chain: Arc<dyn ChainClient>,
    me: Pubkey,
    wallet: Pubkey,
    events: Arc<EventBus>,
    steps: Arc<StepControl>,
    channels: BTreeMap<Hash32, ChannelRecord>,
    peers: HashMap<Pubkey, Connection>,
    /// Channels whose peer has not yet sent ReestablishChannel on this connection.
    awaiting_reestablish: HashSet<Hash32>,
    /// Stale channels whose audit failed (blocked until restart or a new reestablish).
    audit_failed: HashSet<Hash32>,
    /// Per Stale channel, what the mutual-Stale resolution said and heard on the current
    /// connection (see `reestablish`); forgotten when the connection ends or is replaced.
    stale_talk: HashMap<Hash32, reestablish::StaleTalk>,
    /// The core's own input queue, for its timers (weak: the core never keeps itself alive).
    inputs: mpsc::WeakUnboundedSender<CoreInput>,
    /// Incoming channel proposals waiting for `accept_channel`.
    proposals: HashMap<Hash32, (Pubkey, PeerMessage)>,
    invoices: HashMap<Hash32, Invoice>,
    payments: HashMap<Hash32, Payment>,
    preimages: HashMap<Hash32, Hash32>,
    /// The channel graph learned from gossip (`gossip`), persisted.
    graph: Graph,
    reserved_outpoints: HashSet<OutPoint>,
    /// Transactions submitted by this run (claims are retried on every chain event; each is
    /// submitted once per run, and again after a restart).
    submitted: HashSet<Hash32>,
    height: u64,
    fx: Effects,
    failpoints: Arc<crate::failpoint::Failpoints>,
    rng: Option<SeededRng>,
    /// Set when a store write fails (see [`Core::flush`]); watched through [`CoreHandle`].
    fail_stop: watch::Sender<Option<FailStop>>,
}

/// Seeded randomness (`dev.seed`): value `n` is H(seed, node key, restore epoch, purpose, n).
/// The counter is persisted with the state that uses the value, and the restore epoch (kept
/// outside the store, see `BaseDir::restore_epoch`) changes with every restore, so a value
/// (a temporary channel id, from which commitment secrets derive) is never produced twice.
#[derive(Debug)]
struct SeededRng {
    seed: u64,
    node: Pubkey,
    epoch: u64,
    counter: u64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("me", &self.me)
            .field("channels", &self.channels.len())
            .field("peers", &self.peers.len())
            .finish()
    }
}

/// Why the core could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("reading channel records: {0}")]
    Records(#[from] crate::channel_record::RecordError),
    #[error("reading node records: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("corrupt {what} record: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

fn to_hash(id: &ChannelId) -> Hash32 {
    Hash32(id.0)
}

fn pubkey_of(record: &ChannelRecord) -> Option<Pubkey> {
    record.peer_pubkey.parse().ok()
}

impl Core {
    /// Load state from the store and spawn the core task, the chain watcher and the listener
    /// event pump. Returns the handle.
    pub(crate) fn spawn(
        ctx: Arc<NodeContext>,
        chain: Arc<dyn ChainClient>,
        events: Arc<EventBus>,
        steps: Arc<StepControl>,
        failpoints: Arc<crate::failpoint::Failpoints>,
    ) -> Result<(CoreHandle, tokio::task::JoinHandle<()>), CoreError> {
        let store = ctx.store().clone();
        let mut channels = BTreeMap::new();
        for mut record in ChannelRecord::load_all(store.as_ref())? {
            // Every connection is new after a start: the peer will resend whatever updates of
            // its our commitments do not include yet, exactly as after a disconnect.
            if let Some(data) = record.data.as_deref_mut() {
                data.forget_uncommitted_peer_updates();
            }
            channels.insert(to_hash(&record.channel_id), record);
        }
        let invoices: HashMap<Hash32, Invoice> =
            load_json_prefix(store.as_ref(), INVOICE_PREFIX, "invoice")?;
        let payments: HashMap<Hash32, Payment> =
            load_json_prefix(store.as_ref(), PAYMENT_PREFIX, "payment")?;
        let preimages: HashMap<Hash32, Hash32> =
            load_json_prefix(store.as_ref(), PREIMAGE_PREFIX, "preimage")?;
        let graph_channels: HashMap<Hash32, GraphChannel> =
            load_json_prefix(store.as_ref(), GRAPH_CHANNEL_PREFIX, "graph channel")?;
        let graph = Graph::from_channels(graph_channels.into_values());
        let me = Pubkey::from(ctx.keys().node_pubkey());
        let wallet = Pubkey::from(ctx.keys().wallet_secret().public_key());
        let (inputs_tx, mut inputs_rx) = mpsc::unbounded_channel();
        let (transport_tx, mut transport_rx) = mpsc::unbounded_channel::<TransportEvent>();
        let (fail_stop, fail_stop_rx) = watch::channel(None);
        let handle = CoreHandle {
            inputs: inputs_tx.clone(),
            transport: transport_tx,
            fail_stop: fail_stop_rx,
        };
        // Transport events are funnelled into the core's single input queue.
        let pump_inputs = inputs_tx.clone();
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            while let Some(event) = transport_rx.recv().await {
                if pump_inputs
                    .send(CoreInput::Transport(Box::new(event)))
                    .is_err()
                {
                    break;
                }
            }
        }));
        // The chain watcher: every chain event since the beginning, in order.
        let watch_chain = chain.clone();
        let own_inputs = inputs_tx.downgrade();
        let watch_inputs = inputs_tx;
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            let mut after = 0;
            loop {
                match watch_chain
                    .events_after(after, Duration::from_secs(10))
                    .await
                {
                    Ok(events) => {
                        if let Some(last) = events.last() {
                            after = last.seq();
                            if watch_inputs.send(CoreInput::Chain(events)).is_err() {
                                break;
                            }
                        } else if watch_inputs.is_closed() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "chain watcher: retrying");
                        if watch_inputs.is_closed() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }));
        let config = ctx.config().clone();
        let mut core = Core {
            ctx,
            config,
            chain,
            me,
            wallet,
            events,
            steps,
            channels,
            peers: HashMap::new(),
            awaiting_reestablish: HashSet::new(),
            audit_failed: HashSet::new(),
            stale_talk: HashMap::new(),
            inputs: own_inputs,
            proposals: HashMap::new(),
            invoices,
            payments,
            preimages,
            graph,
            reserved_outpoints: HashSet::new(),
            submitted: HashSet::new(),
            height: 0,
            fx: Effects::default(),
            failpoints,
            rng: None,
            fail_stop,
        };
        if let Some(seed) = core.config.dev.seed {
            let counter = core
                .ctx
                .store()
                .get(&RNG_COUNTER_KEY)?
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map_or(0, u64::from_be_bytes);
            core.rng = Some(SeededRng {
                seed,
                node: core.me,
                epoch: core.ctx.base().read_restore_epoch(),
                counter,
            });
        }
        let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
            core.events.publish(EventKind::Started { pubkey: core.me });
            while let Some(input) = inputs_rx.recv().await {
                if matches!(input, CoreInput::Stop) {
                    break;
                }
                if core.handle(input).await.is_break() {
                    break;
                }
            }
            // Connections close when dropped.
            core.peers.clear();
        }));
        Ok((handle, task))
    }

    async fn handle(&mut self, input: CoreInput) -> std::ops::ControlFlow<()> {
        let mut received = None;
        let mut replies: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
        let input = match input {
            CoreInput::Transport(event) => Either::Transport(*event),
            CoreInput::Chain(events) => Either::Chain(events),
            CoreInput::Command(command) => Either::Command(command),
            CoreInput::StaleRevealDue {
                peer,
                conn_id,
                channel_id,
            } => Either::StaleRevealDue {
                peer,
                conn_id,
                channel_id,
            },
            CoreInput::Stop => return std::ops::ControlFlow::Break(()),
        };
        match input {
            Either::Transport(TransportEvent::Connected(conn)) => self.on_connected(*conn),
            Either::Transport(TransportEvent::Message {
                conn_id,
                pubkey,
                message,
            }) => {
                if self.peers.get(&pubkey).map(|c| c.conn_id) == Some(conn_id) {
                    received = Some((pubkey, message.name(), message.channel_id()));
                    self.on_message(pubkey, *message).await;
                }
            }
            Either::Transport(TransportEvent::Disconnected {
                conn_id,
                pubkey,
                reason,
            }) => {
                if self.peers.get(&pubkey).map(|c| c.conn_id) == Some(conn_id) {
                    self.peers.remove(&pubkey);
                    self.on_disconnected(pubkey, reason);
                }
            }
            Either::Chain(events) => self.on_chain_events(events).await,
            Either::Command(command) => self.on_command(command, &mut replies).await,
            Either::StaleRevealDue {
                peer,
                conn_id,
                channel_id,
            } => self.on_stale_reveal_due(peer, conn_id, channel_id),
        }
        self.refresh_own_updates();
        let flow = self.flush(received).await;
        // After a failed write nothing of this input is durable: the replies are dropped, so
        // their callers get `CoreGone::FailStopped` instead of a success that is not on disk.
        if flow.is_continue() {
            for reply in replies {
                reply();
            }
        }
        flow
    }

    fn numbers(&self, channel: Option<Hash32>) -> (u64, u64) {
        channel
            .and_then(|id| self.channels.get(&id))
            .map_or((0, 0), |r| {
                (r.local_commitment_number, r.remote_commitment_number)
            })
    }

    fn publish(&self, kind: EventKind) {
        self.events.publish(kind);
    }

    async fn publish_step(&self, kind: EventKind) {
        let fired = self.steps.check(&kind);
        self.events.publish(kind);
        // Backups first: a hold on the same step then holds with them written.
        for (step, action) in &fired {
            if *action == crate::steps::StepAction::Backup {
                // The core is the store's only writer and it is here: the backup is exactly
                // this step's state. It publishes BackupWritten naming the step.
                if let Err(e) = self.ctx.backup_at_step(step) {
                    self.events.publish(EventKind::Error {
                        channel_id: None,
                        message: format!("backup at step {step} failed: {e}"),
                    });
                }
            }
        }
        if let Some((step, _)) = fired
            .into_iter()
            .find(|(_, a)| *a == crate::steps::StepAction::Hold)
        {
            tracing::info!(%step, "held at step");
            self.events.publish(EventKind::Held { step: step.clone() });
            self.steps.wait_release().await;
            self.events.publish(EventKind::Released { step });
        }
    }

    /// Apply the queued effects. `Break` when the store refused a write: the core stops
    /// (fail-stop), because memory is now ahead of disk and no message may depend on it; a
    /// restart reloads the last durable state and reestablish resyncs the peers.
    async fn flush(
        &mut self,
        received: Option<(Pubkey, MessageName, Option<Hash32>)>,
    ) -> std::ops::ControlFlow<()> {
        let fx = std::mem::take(&mut self.fx);
        // 1. Persist.
        let mut batch = WriteBatch::new();
        for id in &fx.deleted_channels {
            batch.delete(ChannelRecord::key(&ChannelId(id.0)));
        }
        for id in &fx.dirty_channels {
            if let Some(record) = self.channels.get_mut(id) {
                if let Some(data) = record.data.as_deref() {
                    record.local_commitment_number = data.local_commitment_number();
                    record.remote_commitment_number = data.remote_commitment_number();
                }
                batch.put(ChannelRecord::key(&record.channel_id), record.encode());
            }
        }
        for (channel, number, secret) in &fx.peer_secrets {
            batch.put(peer_secret_key(channel, *number), secret.0.to_vec());
        }
        for hash in &fx.dirty_payments {
            if let Some(p) = self.payments.get(hash) {
                batch.put(prefixed(PAYMENT_PREFIX, hash), json_bytes(p));
            }
        }
        for hash in &fx.dirty_invoices {
            if let Some(i) = self.invoices.get(hash) {
                batch.put(prefixed(INVOICE_PREFIX, hash), json_bytes(i));
            }
        }
        for id in &fx.deleted_graph {
            batch.delete(prefixed(GRAPH_CHANNEL_PREFIX, id));
        }
        for id in &fx.dirty_graph {
            if let Some(channel) = self.graph.get(id) {
                batch.put(prefixed(GRAPH_CHANNEL_PREFIX, id), json_bytes(channel));
            }
        }
        if let Some(counter) = fx.rng_counter {
            batch.put(RNG_COUNTER_KEY.to_vec(), counter.to_be_bytes().to_vec());
        }
        for (hash, preimage) in &fx.preimages {
            batch.put(prefixed(PREIMAGE_PREFIX, hash), json_bytes(preimage));
        }
        if !batch.is_empty() {
            let written = self
                .failpoints
                .check("core.persist")
                .map_err(|e| e.to_string())
                .and_then(|()| self.ctx.store().write(&batch).map_err(|e| e.to_string()));
            if let Err(e) = written {
                // Nothing that depends on this state may leave the node: drop the effects.
                tracing::error!(error = %e, "persisting state failed; stopping the node core");
                self.fail_stop.send_replace(Some(FailStop {
                    reason: format!("store write failed: {e}"),
                }));
                self.publish(EventKind::Error {
                    channel_id: None,
                    message: format!(
                        "store write failed: {e}; the node stopped processing (restart it once \
                         the store is writable again)"
                    ),
                });
                return std::ops::ControlFlow::Break(());
            }
            for id in &fx.dirty_channels {
                let (local, remote) = self.numbers(Some(*id));
                self.publish(EventKind::Persisted {
                    channel_id: *id,
                    local,
                    remote,
                });
            }
        }
        for event in fx.events {
            self.publish(event);
        }
        // 2. The handled message.
        if let Some((peer, msg_type, channel_id)) = received {
            let (local, remote) = self.numbers(channel_id);
            self.publish_step(EventKind::MessageReceived {
                peer,
                msg_type,
                channel_id,
                local,
                remote,
            })
            .await;
        }
        // 3. Transactions.
        for (tx, number) in fx.txs {
            let txid = tx.txid();
            let kind = TxKindName::from(&tx.kind);
            let channel_id = tx.kind.channel_id();
            let result = self.chain.submit(tx).await;
            if let Err(e) = &result {
                tracing::warn!(%txid, %kind, error = %e, "transaction not accepted");
            }
            self.publish(EventKind::TxBroadcast {
                txid,
                kind,
                channel_id,
                commitment_number: number,
                accepted: result.is_ok(),
                reject_reason: result.err().map(|e| e.to_string()),
            });
        }
        // 4. Messages.
        for (peer, message) in fx.messages {
            let channel_id = message.channel_id();
            // Safety net for passive silence: a Stale channel says nothing but its answer to
            // the peer's ReestablishChannel (and a request to close, after a failed audit), and
            // in `mutual_stale = "reveal"` mode its StaleNotice and its numbers (`reestablish`).
            if let Some(id) = channel_id
                && self.state_of(&id) == Some(ChannelState::Stale)
                && !matches!(
                    message,
                    PeerMessage::ReestablishChannel { .. }
                        | PeerMessage::RequestForceClose { .. }
                        | PeerMessage::StaleNotice { .. }
                )
            {
                self.publish(EventKind::Error {
                    channel_id: Some(id),
                    message: format!(
                        "bug: {} queued on a Stale channel; not sent",
                        message.name()
                    ),
                });
                continue;
            }
            let Some(conn) = self.peers.get(&peer) else {
                tracing::debug!(%peer, msg = %message.name(), "peer offline; not sent");
                continue;
            };
            if !conn.send(&message) {
                continue;
            }
            let (local, remote) = self.numbers(channel_id);
            self.publish_step(EventKind::MessageSent {
                peer,
                msg_type: message.name(),
                channel_id,
                local,
                remote,
            })
            .await;
        }
        std::ops::ControlFlow::Continue(())
    }

    /// A fresh 32-byte value for `purpose`: seeded when `dev.seed` is set, else from the OS.
    pub(super) fn random32(&mut self, purpose: &str) -> Hash32 {
        let Some(rng) = self.rng.as_mut() else {
            return crate::crypto::random_hash32();
        };
        rng.counter += 1;
        let mut data = b"dlp/seeded/v1".to_vec();
        data.extend_from_slice(&rng.seed.to_be_bytes());
        data.extend_from_slice(&rng.node.0);
        data.extend_from_slice(&rng.epoch.to_be_bytes());
        data.extend_from_slice(purpose.as_bytes());
        data.extend_from_slice(&rng.counter.to_be_bytes());
        self.fx.rng_counter = Some(rng.counter);
        Hash32::digest(&data)
    }

    fn send(&mut self, peer: Pubkey, message: PeerMessage) {
        self.fx.messages.push((peer, message));
    }

    fn mark_dirty(&mut self, id: Hash32) {
        self.fx.dirty_channels.insert(id);
    }

    fn set_state(&mut self, id: Hash32, state: ChannelState) {
        if let Some(record) = self.channels.get_mut(&id)
            && record.state != state
        {
            let from = record.state;
            record.state = state;
            self.fx.events.push(EventKind::StateChanged {
                channel_id: id,
                from,
                to: state,
            });
            self.fx.state_changed.insert(id);
            self.fx.dirty_channels.insert(id);
        }
    }

    fn error_event(&mut self, channel_id: Option<Hash32>, message: String) {
        tracing::warn!(channel = ?channel_id, %message, "protocol error");
        self.fx.events.push(EventKind::Error {
            channel_id,
            message,
        });
    }

    fn on_connected(&mut self, mut conn: Connection) {
        conn.start_reading();
        let peer = conn.pubkey;
        let inbound = conn.inbound;
        if let Some(old) = self.peers.insert(peer, conn) {
            old.close();
        }
        // A replaced connection reports no disconnect of its own: its state ends here.
        self.forget_stale_talk(peer);
        self.fx
            .events
            .push(EventKind::PeerConnected { peer, inbound });
        self.start_reestablish(peer);
        self.gossip_on_connect(peer);
    }

    fn on_disconnected(&mut self, peer: Pubkey, reason: String) {
        self.fx
            .events
            .push(EventKind::PeerDisconnected { peer, reason });
        let ids: Vec<Hash32> = self
            .channels
            .iter()
            .filter(|(_, r)| pubkey_of(r) == Some(peer))
            .map(|(id, _)| *id)
            .collect();
        self.forget_stale_talk(peer);
        for id in ids {
            self.awaiting_reestablish.remove(&id);
            if let Some(data) = self
                .channels
                .get_mut(&id)
                .and_then(|r| r.data.as_deref_mut())
            {
                let before = data.their_log.len();
                data.forget_uncommitted_peer_updates();
                if data.their_log.len() != before {
                    self.fx.dirty_channels.insert(id);
                }
            }
        }
        // Proposals from a peer that left are dropped.
        self.proposals.retain(|_, (p, _)| *p != peer);
    }

    async fn on_command(&mut self, command: Command, replies: &mut Vec<Box<dyn FnOnce() + Send>>) {
        fn later<T: Send + 'static>(
            replies: &mut Vec<Box<dyn FnOnce() + Send>>,
            reply: oneshot::Sender<T>,
            value: T,
        ) {
            replies.push(Box::new(move || {
                let _ = reply.send(value);
            }));
        }
        match command {
            Command::DisconnectPeer { pubkey, reply } => {
                let result = match self.peers.remove(&pubkey) {
                    Some(conn) => {
                        conn.close();
                        self.on_disconnected(pubkey, "disconnect_peer".into());
                        Ok(())
                    }
                    None => Err(format!("peer {pubkey} is not connected")),
                };
                later(replies, reply, result);
            }
            Command::ListPeers { reply } => {
                let peers = self
                    .peers
                    .values()
                    .map(|c| PeerInfo {
                        pubkey: c.pubkey,
                        address: c.addr.to_string(),
                        inbound: c.inbound,
                    })
                    .collect();
                later(replies, reply, peers);
            }
            Command::OpenChannel {
                pubkey,
                funding_amount,
                reply,
            } => {
                let result = self.open_channel(pubkey, funding_amount).await;
                later(replies, reply, result);
            }
            Command::AcceptChannel {
                temporary_channel_id,
                reply,
            } => {
                let result = self.accept_proposal(temporary_channel_id);
                later(replies, reply, result);
            }
            Command::ListChannels {
                pubkey,
                include_closed,
                reply,
            } => {
                let list = self.list_channels(pubkey, include_closed);
                later(replies, reply, list);
            }
            Command::NewInvoice {
                amount,
                description,
                reply,
            } => {
                let result = self.new_invoice(amount, description);
                later(replies, reply, result);
            }
            Command::SendPayment { request, reply } => {
                let result = self.send_payment(request);
                later(replies, reply, result);
            }
            Command::GetPayment {
                payment_hash,
                reply,
            } => {
                let payment = self.payments.get(&payment_hash).cloned();
                later(replies, reply, payment);
            }
            Command::ShutdownChannel {
                channel_id,
                force,
                reply,
            } => {
                let result = self.shutdown_channel(channel_id, force);
                later(replies, reply, result);
            }
            Command::AddConnection { conn, reply } => {
                self.on_connected(*conn);
                later(replies, reply, ());
            }
            Command::GraphChannels { reply } => {
                let channels = self.graph.channels().cloned().collect();
                later(replies, reply, channels);
            }
            #[cfg(test)]
            Command::DevSignedCommitment { channel_id, reply } => {
                let result = self
                    .our_signed_commitment(channel_id)
                    .map(|(tx, _)| tx)
                    .map_err(|e| e.to_string());
                later(replies, reply, result);
            }
        }
    }
}

fn prefixed(prefix: u8, hash: &Hash32) -> Vec<u8> {
    let mut key = vec![prefix];
    key.extend_from_slice(&hash.0);
    key
}

fn peer_secret_key(channel: &Hash32, number: u64) -> Vec<u8> {
    let mut key = prefixed(PEER_SECRET_PREFIX, channel);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn load_json_prefix<T: serde::de::DeserializeOwned>(
    store: &dyn crate::store::Store,
    prefix: u8,
    what: &'static str,
) -> Result<HashMap<Hash32, T>, CoreError> {
    let mut out = HashMap::new();
    let mut error = None;
    store.scan_prefix(
        &[prefix],
        &mut |key, value| match records::decode_hash_keyed::<T>(key, value) {
            Ok((k, v)) => {
                out.insert(k, v);
                std::ops::ControlFlow::Continue(())
            }
            Err(detail) => {
                error = Some(detail);
                std::ops::ControlFlow::Break(())
            }
        },
    )?;
    match error {
        Some(detail) => Err(CoreError::Corrupt { what, detail }),
        None => Ok(out),
    }
}
