//! Typed node events for the harness: an in-process subscription, an in-memory history for the
//! `dev_events` RPC, and a JSON-lines file (`<base>/events.jsonl`) for separate processes.
//!
//! Every protocol fact the harness asserts on is an event: messages sent and received (with the
//! channel's commitment numbers after the step), state changes, persistence, transactions
//! broadcast, audit outcomes, payment status, holds. Sequence numbers are dense from 1 per run.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use dlp_chain::{Hash32, Pubkey, hex_u64};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::channel_record::ChannelState;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The node is up.
    Started {
        pubkey: Pubkey,
    },
    PeerConnected {
        peer: Pubkey,
        inbound: bool,
    },
    PeerDisconnected {
        peer: Pubkey,
        reason: String,
    },
    /// A message went to the transport (its state change was persisted first).
    MessageSent {
        peer: Pubkey,
        msg_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        #[serde(with = "hex_u64")]
        local: u64,
        #[serde(with = "hex_u64")]
        remote: u64,
    },
    /// A message was handled and its effects persisted (replies not yet sent).
    MessageReceived {
        peer: Pubkey,
        msg_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        #[serde(with = "hex_u64")]
        local: u64,
        #[serde(with = "hex_u64")]
        remote: u64,
    },
    /// A message was not acted on (a Stale channel ignores everything but ReestablishChannel;
    /// `reason` says why).
    MessageIgnored {
        peer: Pubkey,
        msg_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        reason: String,
    },
    StateChanged {
        channel_id: Hash32,
        from: ChannelState,
        to: ChannelState,
    },
    /// A channel record was written to the store.
    Persisted {
        channel_id: Hash32,
        #[serde(with = "hex_u64")]
        local: u64,
        #[serde(with = "hex_u64")]
        remote: u64,
    },
    /// We submitted a transaction to the chain.
    TxBroadcast {
        txid: Hash32,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commitment_number: Option<u64>,
        accepted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reject_reason: Option<String>,
    },
    AuditPassed {
        channel_id: Hash32,
        policy: String,
        #[serde(with = "hex_u64")]
        local: u64,
        #[serde(with = "hex_u64")]
        remote: u64,
        #[serde(with = "hex_u64")]
        peer_local: u64,
        #[serde(with = "hex_u64")]
        peer_remote: u64,
    },
    AuditFailed {
        channel_id: Hash32,
        policy: String,
        #[serde(with = "hex_u64")]
        local: u64,
        #[serde(with = "hex_u64")]
        remote: u64,
        #[serde(with = "hex_u64")]
        peer_local: u64,
        #[serde(with = "hex_u64")]
        peer_remote: u64,
        reason: String,
    },
    /// The peer sent ReestablishChannel for a channel we have no record of (we were restored
    /// from a backup older than the channel): we answered `RequestForceClose`, so the peer's
    /// commitment pays our balance to our wallet.
    UnknownChannelReestablish {
        peer: Pubkey,
        channel_id: Hash32,
    },
    /// A commitment of a channel we have no record of paid one of our keys on chain (a peer
    /// closed a channel we lost, after our `RequestForceClose`): `amount` is in our wallet.
    RecoveredFromUnknownChannel {
        channel_id: Hash32,
        txid: Hash32,
        #[serde(with = "hex_u64")]
        amount: u64,
    },
    /// A public channel entered our graph (our own once both ends signed it, or a peer's
    /// announcement that verified against the ledger).
    GraphChannelAdded {
        channel_id: Hash32,
        node_1: Pubkey,
        node_2: Pubkey,
        #[serde(with = "hex_u64")]
        capacity: u64,
    },
    /// A newer policy of one direction of a graph channel was stored (`node` forwards in it).
    GraphChannelUpdated {
        channel_id: Hash32,
        node: Pubkey,
        enabled: bool,
    },
    /// A channel left our graph: its funding output was spent.
    GraphChannelRemoved {
        channel_id: Hash32,
    },
    /// A peer's gossip was refused (forged, or not matching the ledger) and not relayed.
    GossipRefused {
        peer: Pubkey,
        msg_type: String,
        reason: String,
    },
    PaymentUpdated {
        payment_hash: Hash32,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The node is held at a step (see `steps`).
    Held {
        step: String,
    },
    Released {
        step: String,
    },
    BackupWritten {
        dir: String,
        /// The protocol step that took it (step control's backup action); none for a backup
        /// asked for by RPC or taken automatically.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        /// Taken by the node's own schedule (`backup.auto`: after start, after channel
        /// changes, on an interval), not asked for by RPC or step control.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        automatic: bool,
    },
    /// A protocol error worth the harness's attention.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        message: String,
    },
}

/// An event with its place in the node's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvent {
    #[serde(with = "hex_u64")]
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    #[serde(with = "hex_u64")]
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// How many events the in-memory history keeps.
pub const HISTORY: usize = 100_000;

/// Publishes events.
#[derive(Debug)]
pub struct EventBus {
    sender: broadcast::Sender<NodeEvent>,
    state: Mutex<BusState>,
}

#[derive(Debug)]
struct BusState {
    next_seq: u64,
    history: std::collections::VecDeque<NodeEvent>,
    file: Option<std::fs::File>,
    file_path: Option<PathBuf>,
}

impl EventBus {
    /// A bus that also appends to `file` (JSON lines) when given.
    pub fn new(file: Option<PathBuf>) -> std::io::Result<Self> {
        let handle = match &file {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => None,
        };
        let (sender, _) = broadcast::channel(16_384);
        Ok(Self {
            sender,
            state: Mutex::new(BusState {
                next_seq: 1,
                history: Default::default(),
                file: handle,
                file_path: file,
            }),
        })
    }

    /// Publish an event; returns it with its sequence number.
    pub fn publish(&self, kind: EventKind) -> NodeEvent {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let event = NodeEvent {
            seq: state.next_seq,
            at_ms: crate::fsutil::unix_ms(),
            kind,
        };
        state.next_seq += 1;
        if let Some(file) = state.file.as_mut() {
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            if let Err(e) = file.write_all(&line) {
                tracing::warn!(error = %e, path = ?state.file_path, "cannot append to the event file");
            }
        }
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(event.clone());
        drop(state);
        let _ = self.sender.send(event.clone());
        tracing::debug!(target: "dlp_node::events", event = ?event.kind, seq = event.seq);
        event
    }

    /// Subscribe to future events.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.sender.subscribe()
    }

    /// Events with `seq > after` still in the history.
    pub fn since(&self, after: u64) -> Vec<NodeEvent> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .history
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect()
    }
}
