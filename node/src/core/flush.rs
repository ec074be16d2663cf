//! The durability rule of the node: how the effects of one input leave the core.
//!
//! Handling an input (a peer message, chain events, an RPC command, a timer) only changes memory
//! and queues [`Effects`]. [`Core::flush`] then applies them, once per input, in this order:
//! 1. persist every changed record in one atomic batch (`Persisted` events);
//! 2. announce the handled message (`MessageReceived`), which may hold the node;
//! 3. broadcast transactions;
//! 4. send queued messages, one `MessageSent` event each, each of which may hold the node.
//!
//! So no message ever leaves before the state that produced it is on disk, and while the node is
//! held at a step nothing else runs: the core is the store's only writer, so the store is exactly
//! that step's state (a backup taken there is that state too). When the store refuses the batch
//! the core fail-stops: nothing that depends on the unwritten state may leave the node.

use std::collections::BTreeSet;

use dlp_chain::{Hash32, Pubkey, Transaction};
use dlp_node_api::{MessageName, TxKindName};
use serde::Serialize;

use super::{
    Core, FailStop, INVOICE_PREFIX, PAYMENT_PREFIX, PEER_SECRET_PREFIX, PREIMAGE_PREFIX,
    RNG_COUNTER_KEY,
};
use crate::channel_record::{ChannelId, ChannelRecord, ChannelState};
use crate::events::EventKind;
use crate::graph::GRAPH_CHANNEL_PREFIX;
use crate::store::WriteBatch;
use crate::wire::PeerMessage;

/// Effects queued while handling one input.
#[derive(Debug, Default)]
pub(super) struct Effects {
    pub(super) dirty_channels: BTreeSet<Hash32>,
    pub(super) deleted_channels: BTreeSet<Hash32>,
    pub(super) dirty_payments: BTreeSet<Hash32>,
    pub(super) dirty_invoices: BTreeSet<Hash32>,
    pub(super) peer_secrets: Vec<(Hash32, u64, Hash32)>,
    pub(super) preimages: Vec<(Hash32, Hash32)>,
    pub(super) dirty_graph: BTreeSet<Hash32>,
    pub(super) deleted_graph: BTreeSet<Hash32>,
    /// Channels whose state changed (their gossip policy may have to follow).
    pub(super) state_changed: BTreeSet<Hash32>,
    pub(super) rng_counter: Option<u64>,
    pub(super) events: Vec<EventKind>,
    pub(super) txs: Vec<(Transaction, Option<u64>)>,
    pub(super) messages: Vec<(Pubkey, PeerMessage)>,
}

impl Core {
    /// The commitment numbers an event about `channel` carries (`(0, 0)` without a channel).
    fn numbers(&self, channel: Option<Hash32>) -> (u64, u64) {
        channel
            .and_then(|id| self.channels.get(&id))
            .map_or((0, 0), |r| {
                (r.local_commitment_number, r.remote_commitment_number)
            })
    }

    /// Publish a step event (a message received or sent) and act on step control: backups
    /// armed on it are taken, then a hold on it holds the core until released.
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
    pub(super) async fn flush(
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
            if let Some(p) = self.payments.outgoing.get(hash) {
                batch.put(prefixed(PAYMENT_PREFIX, hash), json_bytes(p));
            }
        }
        for hash in &fx.dirty_invoices {
            if let Some(i) = self.payments.invoices.get(hash) {
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
}

pub(super) fn prefixed(prefix: u8, hash: &Hash32) -> Vec<u8> {
    let mut key = vec![prefix];
    key.extend_from_slice(&hash.0);
    key
}

pub(super) fn peer_secret_key(channel: &Hash32, number: u64) -> Vec<u8> {
    let mut key = prefixed(PEER_SECRET_PREFIX, channel);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

pub(super) fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}
