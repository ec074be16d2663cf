//! Shared channel helpers (lookups, secrets, errors), `list_channels`, and the dispatch of peer
//! messages to the handlers in `open`, `updates`, `close`, `reestablish` and `payments`.

use dlp_chain::{Hash32, Pubkey};

use super::{ChannelInfo, Core, TlcInfo, pubkey_of};
use crate::channel::ChannelData;
use crate::channel_record::ChannelState;
use crate::crypto::{commitment_secret, revocation_hash};
use crate::events::EventKind;
use crate::wire::PeerMessage;

/// The channel id: a hash of the temporary id and both parties' funding keys (like Fiber, which
/// derives it from both parties' keys rather than from the funding outpoint). Known before the
/// funding transaction exists, so the funding transaction itself can carry it and the ledger
/// lists a channel's funding, commitments and closes under one id.
pub(super) fn derive_channel_id(
    temporary_id: &Hash32,
    opener: &Pubkey,
    acceptor: &Pubkey,
) -> Hash32 {
    let mut data = b"dlp/channel-id/v1".to_vec();
    data.extend_from_slice(&temporary_id.0);
    data.extend_from_slice(&opener.0);
    data.extend_from_slice(&acceptor.0);
    Hash32::digest(&data)
}

impl Core {
    pub(super) fn secret_key(&self) -> secp256k1::SecretKey {
        *self.ctx.keys().node_secret()
    }

    pub(super) fn data(&self, id: &Hash32) -> Option<&ChannelData> {
        self.channels.get(id).and_then(|r| r.data.as_deref())
    }

    pub(super) fn data_mut(&mut self, id: &Hash32) -> Option<&mut ChannelData> {
        self.channels
            .get_mut(id)
            .and_then(|r| r.data.as_deref_mut())
    }

    pub(super) fn state_of(&self, id: &Hash32) -> Option<ChannelState> {
        self.channels.get(id).map(|r| r.state)
    }

    pub(super) fn peer_of(&self, id: &Hash32) -> Option<Pubkey> {
        self.channels.get(id).and_then(pubkey_of)
    }

    /// Our revocation hash for commitment `number` (derived from the temporary id, which is
    /// known from the first message on).
    pub(super) fn our_revocation_hash(&self, data: &ChannelData, number: u64) -> Hash32 {
        revocation_hash(&self.secret_key(), &data.temporary_id, number)
    }

    pub(super) fn our_secret(&self, data: &ChannelData, number: u64) -> Hash32 {
        commitment_secret(&self.secret_key(), &data.temporary_id, number)
    }

    pub(super) fn send_error(&mut self, peer: Pubkey, channel_id: Option<Hash32>, message: String) {
        self.error_event(channel_id, message.clone());
        self.send(
            peer,
            PeerMessage::Error {
                channel_id,
                message,
            },
        );
    }

    pub(super) fn list_channels(
        &self,
        pubkey: Option<Pubkey>,
        include_closed: bool,
    ) -> Vec<ChannelInfo> {
        self.channels
            .iter()
            .filter_map(|(id, record)| {
                let peer = pubkey_of(record)?;
                if pubkey.is_some_and(|p| p != peer) {
                    return None;
                }
                if !include_closed && matches!(record.state, ChannelState::Closed(_)) {
                    return None;
                }
                let data = record.data.as_deref()?;
                let balances = data
                    .balances_at(data.our_commitment.ours, data.our_commitment.theirs)
                    .unwrap_or_default();
                Some(ChannelInfo {
                    channel_id: *id,
                    pubkey: peer,
                    state: record.state,
                    local_balance: balances.local,
                    remote_balance: balances.remote,
                    pending_tlcs: balances
                        .tlcs
                        .iter()
                        .map(|t| TlcInfo {
                            id: t.id,
                            direction: if t.offered_by_us {
                                "offered"
                            } else {
                                "received"
                            }
                            .into(),
                            amount: t.amount,
                            payment_hash: t.payment_hash,
                            expiry: t.expiry,
                        })
                        .collect(),
                    local_commitment_number: record.local_commitment_number,
                    remote_commitment_number: record.remote_commitment_number,
                    is_opener: data.opener,
                    funding_outpoint: data.funding_outpoint(),
                })
            })
            .collect()
    }

    /// Why `message` must not be acted on in the channel's current state, if so. Updates,
    /// commitments, revocations and closing messages need a live channel (ChannelReady or
    /// ShuttingDown) with nothing of it on chain: above all, once we have broadcast a commitment
    /// we must never revoke it (the peer could then take everything with the penalty path).
    fn refuse_in_state(&self, id: &Hash32, message: &PeerMessage) -> Option<String> {
        let state = self.state_of(id)?;
        let live = matches!(
            state,
            ChannelState::ChannelReady | ChannelState::ShuttingDown(_)
        ) && self.data(id).is_some_and(|d| d.on_chain.is_none());
        let allowed = match message {
            PeerMessage::AddTlc { .. } => live && state == ChannelState::ChannelReady,
            PeerMessage::RemoveTlc { .. }
            | PeerMessage::CommitmentSigned { .. }
            | PeerMessage::RevokeAndAck { .. }
            | PeerMessage::Shutdown { .. } => live,
            // The peer's ClosingSigned and the closing transaction it completes race (the peer
            // broadcasts before it sends); accept it either way, so the outcome does not depend
            // on which arrives first.
            PeerMessage::ClosingSigned { .. } => live || self.closed_cooperatively(id),
            PeerMessage::ChannelReady { .. } => matches!(
                state,
                ChannelState::AwaitingChannelReady(_) | ChannelState::ChannelReady
            ),
            _ => true,
        };
        (!allowed).then(|| format!("channel is {state}: {} not accepted", message.name()))
    }

    pub(super) async fn on_message(&mut self, peer: Pubkey, message: PeerMessage) {
        let channel_id = message.channel_id();
        // Channel messages must come from the channel's peer.
        if let Some(id) = channel_id
            && let Some(owner) = self.peer_of(&id)
            && owner != peer
        {
            self.send_error(peer, Some(id), "not your channel".into());
            return;
        }
        // Stale channels hear nothing but the peer's ReestablishChannel (and its StaleNotice,
        // which `reestablish` judges); reestablishing ones wait for it before anything else
        // (Fiber ignores other messages meanwhile).
        if let Some(id) = channel_id
            && !matches!(
                message,
                PeerMessage::ReestablishChannel { .. }
                    | PeerMessage::Error { .. }
                    | PeerMessage::RequestForceClose { .. }
                    | PeerMessage::StaleNotice { .. }
            )
        {
            let reason = if self.state_of(&id) == Some(ChannelState::Stale) {
                Some("channel is Stale: waiting for the peer's ReestablishChannel".to_string())
            } else if self.reestablish.awaiting.contains(&id) {
                Some(
                    "channel is reestablishing: waiting for the peer's ReestablishChannel"
                        .to_string(),
                )
            } else {
                self.refuse_in_state(&id, &message)
            };
            if let Some(reason) = reason {
                self.fx.events.push(EventKind::MessageIgnored {
                    peer,
                    msg_type: message.name(),
                    channel_id: Some(id),
                    reason,
                });
                return;
            }
        }
        match message {
            m @ PeerMessage::OpenChannel { .. } => self.on_open_channel(peer, m),
            m @ PeerMessage::AcceptChannel { .. } => self.on_accept_channel(peer, m).await,
            m @ PeerMessage::FundingCreated { .. } => self.on_funding_created(peer, m),
            PeerMessage::FundingSigned {
                channel_id,
                signature,
            } => self.on_funding_signed(peer, channel_id, signature),
            PeerMessage::ChannelReady { channel_id } => self.on_channel_ready(peer, channel_id),
            m @ PeerMessage::AddTlc { .. } => self.on_add_tlc(peer, m),
            PeerMessage::RemoveTlc {
                channel_id,
                tlc_id,
                reason,
            } => self.on_remove_tlc(peer, channel_id, tlc_id, reason),
            m @ PeerMessage::CommitmentSigned { .. } => self.on_commitment_signed(peer, m),
            m @ PeerMessage::RevokeAndAck { .. } => self.on_revoke_and_ack(peer, m),
            PeerMessage::ReestablishChannel {
                channel_id,
                local_commitment_number,
                remote_commitment_number,
            } => self.on_reestablish(
                peer,
                channel_id,
                local_commitment_number,
                remote_commitment_number,
            ),
            PeerMessage::Shutdown { channel_id } => self.on_shutdown(peer, channel_id),
            PeerMessage::ClosingSigned {
                channel_id,
                signature,
            } => self.on_closing_signed(peer, channel_id, signature),
            PeerMessage::RequestForceClose { channel_id } => {
                self.on_request_force_close(peer, channel_id)
            }
            PeerMessage::StaleNotice { channel_id } => self.on_stale_notice(peer, channel_id),
            m @ (PeerMessage::AnnouncementSignatures { .. }
            | PeerMessage::ChannelAnnouncement { .. }
            | PeerMessage::ChannelUpdate { .. }) => self.on_gossip(peer, m).await,
            PeerMessage::Error {
                channel_id,
                message,
            } => {
                self.fx.events.push(EventKind::Error {
                    channel_id,
                    message: format!("peer {peer} reported: {message}"),
                });
            }
        }
    }
}
