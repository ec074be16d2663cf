//! The node core: one task that owns every channel and processes one input at a time (a peer
//! message, a chain event, an RPC command).
//!
//! Handling an input only changes memory and queues effects; `flush.rs` applies them in the
//! fixed order that is the durability rule of the node (persist, then announce, then broadcast,
//! then send), so no message ever leaves before the state that produced it is on disk.

mod api;
mod channels;
mod close;
mod commands;
mod flush;
mod gossip;
mod onchain;
mod open;
mod order;
mod payments;
pub(crate) mod records;
mod reestablish;
mod stale_close;
mod updates;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use dlp_chain::{ChainClient, ChainEvent, Hash32, Pubkey};
use tokio::sync::{mpsc, watch};

use crate::channel_record::{ChannelId, ChannelRecord, ChannelState};
use crate::config::Config;
use crate::events::{EventBus, EventKind};
use crate::graph::{GRAPH_CHANNEL_PREFIX, Graph, GraphChannel};
use crate::node::NodeContext;
use crate::order::OrderGate;
use crate::steps::StepControl;
use crate::transport::{Connection, TransportEvent};
use crate::wire::PeerMessage;
use flush::Effects;

pub use api::FailStop;
pub(crate) use api::{ChannelInfo, Command, CoreGone, CoreHandle, CoreInput, PeerInfo, TlcInfo};
#[cfg(test)]
pub(crate) use payments::MAX_DESCRIPTION_BYTES;
pub(crate) use payments::{
    DEFAULT_TLC_EXPIRY_LIMIT, Invoice, MAX_INVOICE_ADDRESS_LEN, Payment, SendPaymentRequest,
    check_description,
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

/// The core's state: its surroundings (context, config, chain, keys, events, step control),
/// then by concern: channels and their connections, reestablish and audits, channels being
/// opened, payments, the gossip graph, what it did on chain, and the effects of the input being
/// handled. Each concern's file works mostly on its own part.
pub(crate) struct Core {
    ctx: Arc<NodeContext>,
    config: Config,
    chain: Arc<dyn ChainClient>,
    me: Pubkey,
    wallet: Pubkey,
    events: Arc<EventBus>,
    steps: Arc<StepControl>,
    /// Every channel, persisted (the records `flush` writes).
    channels: BTreeMap<Hash32, ChannelRecord>,
    /// The live connection to each peer.
    peers: HashMap<Pubkey, Connection>,
    /// Peers whose last connection ended because they speak another wire version (another
    /// build of dlp-node), with that version: their channels say so when they cannot be used.
    other_wire: HashMap<Pubkey, u8>,
    /// Reestablish and audit state of the channels on the current connections (`reestablish`).
    reestablish: reestablish::ReestablishState,
    /// The core's own input queue, for its timers (weak: the core never keeps itself alive).
    inputs: mpsc::WeakUnboundedSender<CoreInput>,
    /// Channels being opened: proposals and the wallet outputs their fundings spend (`open`).
    opening: open::OpenState,
    /// Invoices, outgoing payments and learned preimages (`payments`), persisted.
    payments: payments::PaymentState,
    /// The channel graph learned from gossip (`gossip`), persisted.
    graph: Graph,
    /// Transactions submitted by this run (claims are retried on every chain event; each is
    /// submitted once per run, and again after a restart).
    submitted: HashSet<Hash32>,
    /// The chain's height, as of the last block the chain watcher reported.
    height: u64,
    /// What handling the current input queued (see `flush`).
    fx: Effects,
    failpoints: Arc<crate::failpoint::Failpoints>,
    rng: Option<SeededRng>,
    /// Set when a store write fails (see [`Core::flush`]); watched through [`CoreHandle`].
    fail_stop: watch::Sender<Option<FailStop>>,
    /// The pinned order of racing inputs, and the inputs waiting for their turn (`order`).
    order: OrderGate<CoreInput>,
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
        steps: Arc<StepControl>,
        failpoints: Arc<crate::failpoint::Failpoints>,
    ) -> Result<(CoreHandle, tokio::task::JoinHandle<()>), CoreError> {
        let store = ctx.store().clone();
        let events = ctx.events().clone();
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
            reestablish: reestablish::ReestablishState::default(),
            inputs: own_inputs,
            opening: open::OpenState::default(),
            payments: payments::PaymentState {
                invoices,
                outgoing: payments,
                preimages,
            },
            graph,
            submitted: HashSet::new(),
            other_wire: HashMap::new(),
            height: 0,
            fx: Effects::default(),
            failpoints,
            rng: None,
            fail_stop,
            order: OrderGate::default(),
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
            'inputs: while let Some(input) = inputs_rx.recv().await {
                if matches!(input, CoreInput::Stop) {
                    break;
                }
                // The pinned-order gate decides what is handled now (`crate::order`).
                for ready in core.admit(input) {
                    if core.handle(ready).await.is_break() {
                        break 'inputs;
                    }
                }
            }
            // Connections close when dropped.
            core.peers.clear();
        }));
        Ok((handle, task))
    }

    async fn handle(&mut self, input: CoreInput) -> std::ops::ControlFlow<()> {
        let mut received = None;
        let mut replies = commands::Replies::new();
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
                other_wire_version,
            }) => {
                if self.peers.get(&pubkey).map(|c| c.conn_id) == Some(conn_id) {
                    self.peers.remove(&pubkey);
                    match other_wire_version {
                        Some(version) => self.other_wire.insert(pubkey, version),
                        None => self.other_wire.remove(&pubkey),
                    };
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

    fn publish(&self, kind: EventKind) {
        self.events.publish(kind);
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
            self.reestablish.awaiting.remove(&id);
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
        self.opening.proposals.retain(|_, (p, _)| *p != peer);
    }
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
