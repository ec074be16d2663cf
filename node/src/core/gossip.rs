//! Gossip: announcing our channels, learning and relaying everyone else's, keeping the graph.
//!
//! - **Announcing.** When a channel becomes ChannelReady (and is not in the graph yet), each
//!   end sends `AnnouncementSignatures`: its signature of the announcement (channel id, funding
//!   outpoint, capacity, both node keys). An end that receives the peer's signature has both,
//!   checks the announcement like any other, adds it to the graph and sends it with its own
//!   `ChannelUpdate` to every peer. A signature lost to a disconnect is sent again on the next
//!   connection.
//! - **Learning.** An announcement is accepted when its signatures verify and the ledger holds
//!   its funding output as announced (`graph::check_funding`); an update when it is signed by
//!   its end and newer than the one held. What is refused is logged and published
//!   (`GossipRefused`), and not relayed. What is new is stored and relayed to every other peer;
//!   what is known is dropped, so a flood ends.
//! - **Syncing.** A new connection gets every announcement and update we hold, so a node that
//!   was offline, or restored (a restore drops the graph), catches up from its peers.
//! - **Our own policy.** Whenever one of our announced channels starts or stops being able to
//!   forward (ChannelReady or not), we sign and send a new update with `enabled` set to match.
//! - **Pruning.** A transaction spending a graph channel's funding output removes the channel.
//!
//! Gossip carries no channel state: its messages have no channel id (`PeerMessage::channel_id`),
//! flow whatever state the channel is in, and are never a Stale channel's breach of silence.

use dlp_chain::{Hash32, Pubkey, Transaction, sign_digest, verify_digest};
use dlp_node_api::MessageName;

use super::Core;
use crate::channel_record::ChannelState;
use crate::events::EventKind;
use crate::graph::{ChannelAnnouncement, ChannelUpdate, GossipError, check_funding};
use crate::wire::PeerMessage;

impl Core {
    /// The announcement of our channel `id` without signatures: its digest and its two ends in
    /// order. None for a channel without confirmed funding.
    fn announcement_parts(
        &self,
        id: &Hash32,
    ) -> Option<(Hash32, Pubkey, Pubkey, ChannelAnnouncement)> {
        let data = self.data(id)?;
        let funding = data.funding.as_ref()?;
        funding.confirmed_at?;
        let peer = self.peer_of(id)?;
        let (node_1, node_2) = if self.me < peer {
            (self.me, peer)
        } else {
            (peer, self.me)
        };
        let digest = ChannelAnnouncement::digest(
            id,
            &funding.outpoint,
            data.funding_amount,
            &node_1,
            &node_2,
        );
        let unsigned = ChannelAnnouncement {
            channel_id: *id,
            funding_outpoint: funding.outpoint,
            capacity: data.funding_amount,
            node_1,
            node_2,
            node_1_signature: dlp_chain::Sig([0; 64]),
            node_2_signature: dlp_chain::Sig([0; 64]),
        };
        Some((digest, node_1, node_2, unsigned))
    }

    /// Send our announcement signature for channel `id` if it is ChannelReady and unannounced.
    pub(super) fn send_announcement_signatures(&mut self, id: Hash32) {
        if self.graph.contains(&id) || self.state_of(&id) != Some(ChannelState::ChannelReady) {
            return;
        }
        let (Some(peer), Some((digest, ..))) = (self.peer_of(&id), self.announcement_parts(&id))
        else {
            return;
        };
        let signature = sign_digest(&self.secret_key(), &digest);
        self.send(
            peer,
            PeerMessage::AnnouncementSignatures {
                channel_id: id,
                signature,
            },
        );
    }

    /// On a new connection: our signatures for channels still unannounced, then everything we
    /// know of the graph.
    pub(super) fn gossip_on_connect(&mut self, peer: Pubkey) {
        let ours: Vec<Hash32> = self
            .channels
            .keys()
            .filter(|id| self.peer_of(id) == Some(peer))
            .copied()
            .collect();
        for id in ours {
            self.send_announcement_signatures(id);
        }
        let (announcements, updates): (Vec<_>, Vec<_>) = self
            .graph
            .channels()
            .map(|c| (c.announcement.clone(), c.updates.clone()))
            .unzip();
        for announcement in announcements {
            self.send(peer, PeerMessage::ChannelAnnouncement { announcement });
        }
        for update in updates.into_iter().flatten().flatten() {
            self.send(peer, PeerMessage::ChannelUpdate { update });
        }
    }

    pub(super) async fn on_gossip(&mut self, from: Pubkey, message: PeerMessage) {
        match message {
            PeerMessage::AnnouncementSignatures {
                channel_id,
                signature,
            } => {
                self.on_announcement_signatures(from, channel_id, signature)
                    .await
            }
            PeerMessage::ChannelAnnouncement { announcement } => {
                self.on_channel_announcement(Some(from), announcement).await;
            }
            PeerMessage::ChannelUpdate { update } => self.on_channel_update(Some(from), update),
            _ => {}
        }
    }

    async fn on_announcement_signatures(
        &mut self,
        from: Pubkey,
        id: Hash32,
        theirs: dlp_chain::Sig,
    ) {
        if self.graph.contains(&id) {
            return;
        }
        if self.peer_of(&id) != Some(from) {
            self.refuse_gossip(
                from,
                MessageName::AnnouncementSignatures,
                format!("channel {id} is not ours with this peer"),
            );
            return;
        }
        let Some((digest, node_1, _, unsigned)) = self.announcement_parts(&id) else {
            // Not confirmed on our side yet: the peer sends it again on the next connection, and
            // we send ours when the channel becomes ready.
            tracing::debug!(channel = %id, "announcement signature before our funding confirmed");
            return;
        };
        if !verify_digest(&from, &digest, &theirs) {
            self.refuse_gossip(
                from,
                MessageName::AnnouncementSignatures,
                format!("signature for channel {id} does not verify"),
            );
            return;
        }
        let ours = sign_digest(&self.secret_key(), &digest);
        let (node_1_signature, node_2_signature) = if node_1 == self.me {
            (ours, theirs)
        } else {
            (theirs, ours)
        };
        let announcement = ChannelAnnouncement {
            node_1_signature,
            node_2_signature,
            ..unsigned
        };
        self.on_channel_announcement(None, announcement).await;
    }

    /// Check, store and relay an announcement (`from` is None for our own).
    async fn on_channel_announcement(
        &mut self,
        from: Option<Pubkey>,
        announcement: ChannelAnnouncement,
    ) {
        let id = announcement.channel_id;
        if self.graph.contains(&id) {
            return;
        }
        if let Err(e) = self.check_announcement(&announcement).await {
            self.refuse_gossip_from(from, MessageName::ChannelAnnouncement, e.to_string());
            return;
        }
        match self.graph.add_announcement(announcement.clone()) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                self.refuse_gossip_from(from, MessageName::ChannelAnnouncement, e.to_string());
                return;
            }
        }
        self.fx.dirty_graph.insert(id);
        self.fx.events.push(EventKind::GraphChannelAdded {
            channel_id: id,
            node_1: announcement.node_1,
            node_2: announcement.node_2,
            capacity: announcement.capacity,
        });
        self.relay(from, PeerMessage::ChannelAnnouncement { announcement });
        // Our own channel: our policy for it follows its announcement everywhere.
        if self.channels.contains_key(&id) {
            self.publish_own_update(id);
        }
    }

    async fn check_announcement(
        &self,
        announcement: &ChannelAnnouncement,
    ) -> Result<(), GossipError> {
        announcement.check_signatures()?;
        let outpoint = announcement.funding_outpoint;
        let funding = self
            .chain
            .transaction(outpoint.txid)
            .await
            .map_err(|e| GossipError::Funding(format!("ledger unreachable: {e}")))?;
        let spent = self
            .chain
            .spender(outpoint)
            .await
            .map_err(|e| GossipError::Funding(format!("ledger unreachable: {e}")))?
            .is_some();
        check_funding(announcement, funding.as_ref(), spent)
    }

    fn on_channel_update(&mut self, from: Option<Pubkey>, update: ChannelUpdate) {
        let id = update.channel_id;
        match self.graph.apply_update(update.clone()) {
            Ok(true) => {
                self.fx.dirty_graph.insert(id);
                self.fx.events.push(EventKind::GraphChannelUpdated {
                    channel_id: id,
                    node: update.node,
                    enabled: update.enabled,
                });
                self.relay(from, PeerMessage::ChannelUpdate { update });
            }
            Ok(false) => {}
            // Updates may overtake their announcement across different peers; the sync on the
            // next connection brings both in order.
            Err(GossipError::UnknownChannel(_)) => {
                tracing::debug!(channel = %id, "update of a channel not in the graph; dropped");
            }
            Err(e) => self.refuse_gossip_from(from, MessageName::ChannelUpdate, e.to_string()),
        }
    }

    /// Sign and send our update of channel `id` if its `enabled` (ChannelReady or not) differs
    /// from the one the graph holds, or if we have none yet.
    pub(super) fn publish_own_update(&mut self, id: Hash32) {
        let Some(channel) = self.graph.get(&id) else {
            return;
        };
        let Some(side) = channel.announcement.side_of(&self.me) else {
            return;
        };
        let enabled = self.state_of(&id) == Some(ChannelState::ChannelReady)
            && !self.reestablish.audit_failed.contains(&id);
        let held = channel.updates[side].as_ref();
        let fee_rate = self.config.channel.fee_rate;
        let delta = self.config.channel.tlc_expiry_delta;
        if held.is_some_and(|u| {
            u.enabled == enabled && u.fee_rate == fee_rate && u.tlc_expiry_delta == delta
        }) {
            return;
        }
        let timestamp = crate::fsutil::unix_ms().max(held.map_or(0, |u| u.timestamp + 1));
        let digest = ChannelUpdate::digest(&id, &self.me, timestamp, enabled, fee_rate, delta);
        let update = ChannelUpdate {
            channel_id: id,
            node: self.me,
            timestamp,
            enabled,
            fee_rate,
            tlc_expiry_delta: delta,
            signature: sign_digest(&self.secret_key(), &digest),
        };
        self.on_channel_update(None, update);
    }

    /// A transaction spent a graph channel's funding output: the channel is gone.
    pub(super) fn prune_spent(&mut self, tx: &Transaction) {
        for input in &tx.inputs {
            if let Some(id) = self.graph.channel_funded_by(&input.prev)
                && self.graph.remove(&id).is_some()
            {
                self.fx.dirty_graph.remove(&id);
                self.fx.deleted_graph.insert(id);
                self.fx
                    .events
                    .push(EventKind::GraphChannelRemoved { channel_id: id });
            }
        }
    }

    /// After an input: our announced channels whose ability to forward changed get a new
    /// update (called once per input, before the effects are flushed).
    pub(super) fn refresh_own_updates(&mut self) {
        let changed: Vec<Hash32> = self.fx.state_changed.iter().copied().collect();
        for id in changed {
            if self.state_of(&id) == Some(ChannelState::ChannelReady) && !self.graph.contains(&id) {
                self.send_announcement_signatures(id);
            }
            self.publish_own_update(id);
        }
    }

    /// Send to every connected peer but `except`.
    fn relay(&mut self, except: Option<Pubkey>, message: PeerMessage) {
        let mut peers: Vec<Pubkey> = self
            .peers
            .keys()
            .filter(|p| Some(**p) != except)
            .copied()
            .collect();
        peers.sort();
        for peer in peers {
            self.send(peer, message.clone());
        }
    }

    fn refuse_gossip_from(&mut self, from: Option<Pubkey>, msg_type: MessageName, reason: String) {
        match from {
            Some(peer) => self.refuse_gossip(peer, msg_type, reason),
            None => self.error_event(None, format!("our own {msg_type} was refused: {reason}")),
        }
    }

    fn refuse_gossip(&mut self, peer: Pubkey, msg_type: MessageName, reason: String) {
        tracing::warn!(%peer, msg = %msg_type, %reason, "gossip refused");
        self.fx.events.push(EventKind::GossipRefused {
            peer,
            msg_type,
            reason,
        });
    }
}
