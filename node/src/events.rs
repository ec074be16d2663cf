//! Where the node's events go: an in-process subscription, an in-memory history for the
//! `dev_events` RPC, and a JSON-lines file (`<base>/events.jsonl`) for separate processes.
//! The events themselves ([`EventKind`], [`NodeEvent`]) are the API crate's
//! (`dlp_node_api::events`): the contract the harness reads.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub(crate) use dlp_node_api::events::{EventKind, NodeEvent};
use tokio::sync::broadcast;

/// How many events the in-memory history keeps.
pub(crate) const HISTORY: usize = 100_000;

/// Publishes events.
#[derive(Debug)]
pub(crate) struct EventBus {
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
    pub(crate) fn new(file: Option<PathBuf>) -> std::io::Result<Self> {
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
    pub(crate) fn publish(&self, kind: EventKind) -> NodeEvent {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let event = NodeEvent {
            seq: state.next_seq,
            at_ms: dlp_node_api::unix_ms(),
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
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.sender.subscribe()
    }

    /// Events with `seq > after` still in the history.
    pub(crate) fn since(&self, after: u64) -> Vec<NodeEvent> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .history
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect()
    }
}
