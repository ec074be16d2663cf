//! Closing: cooperative shutdown (Shutdown, ClosingSigned) and force close, including the
//! force close a peer that lost data asks for.

use dlp_chain::{Hash32, Pubkey, sign_digest, verify_digest};
use dlp_node_api::MessageName;

use super::Core;
use crate::channel_record::{ChannelState, flags};
use crate::config::OnForceCloseRequest;
use crate::events::EventKind;
use crate::wire::PeerMessage;

impl Core {
    pub(super) fn shutdown_channel(
        &mut self,
        channel_id: Hash32,
        force: bool,
    ) -> Result<(), String> {
        let state = self
            .state_of(&channel_id)
            .ok_or_else(|| format!("unknown channel {channel_id}"))?;
        if state == ChannelState::Stale {
            return Err(if self.reestablish.audit_failed.contains(&channel_id) {
                format!(
                    "channel {channel_id} is Stale and its audit failed: our state is older than \
                     the peer's, so closing it could broadcast a revoked commitment; refused"
                )
            } else {
                format!(
                    "channel {channel_id} is Stale (restored from a backup); it cannot be closed \
                     before the peer's ReestablishChannel passes the audit"
                )
            });
        }
        if force {
            if !matches!(
                state,
                ChannelState::ChannelReady
                    | ChannelState::ShuttingDown(_)
                    | ChannelState::AwaitingChannelReady(_)
            ) {
                return Err(format!(
                    "channel {channel_id} is {state}; nothing to force-close"
                ));
            }
            return self.force_close(channel_id);
        }
        if state != ChannelState::ChannelReady && !matches!(state, ChannelState::ShuttingDown(_)) {
            return Err(format!("channel {channel_id} is {state}, not ChannelReady"));
        }
        let peer = self.peer_of(&channel_id).ok_or("no peer")?;
        let data = self.data_mut(&channel_id).ok_or("no channel data")?;
        if !data.shutdown.our_shutdown_sent {
            data.shutdown.our_shutdown_sent = true;
            self.mark_dirty(channel_id);
            self.send(peer, PeerMessage::Shutdown { channel_id });
        }
        self.update_shutdown_state(channel_id);
        self.try_closing_signed(channel_id);
        Ok(())
    }

    pub(super) fn update_shutdown_state(&mut self, channel_id: Hash32) {
        let Some(data) = self.data(&channel_id) else {
            return;
        };
        let mut bits = 0;
        if data.shutdown.our_shutdown_sent {
            bits |= flags::OUR_SHUTDOWN_SENT;
        }
        if data.shutdown.their_shutdown_received {
            bits |= flags::THEIR_SHUTDOWN_SENT;
        }
        if bits != 0 {
            self.set_state(channel_id, ChannelState::ShuttingDown(bits));
        }
    }

    pub(super) fn on_shutdown(&mut self, peer: Pubkey, channel_id: Hash32) {
        let Some(data) = self.data_mut(&channel_id) else {
            return;
        };
        data.shutdown.their_shutdown_received = true;
        let send_ours = !data.shutdown.our_shutdown_sent;
        data.shutdown.our_shutdown_sent = true;
        self.mark_dirty(channel_id);
        if send_ours {
            self.send(peer, PeerMessage::Shutdown { channel_id });
        }
        self.update_shutdown_state(channel_id);
        self.try_closing_signed(channel_id);
    }

    /// Once both sides sent Shutdown and every TLC is settled in both commitments, sign the
    /// closing transaction.
    pub(super) fn try_closing_signed(&mut self, channel_id: Hash32) {
        if !matches!(
            self.state_of(&channel_id),
            Some(ChannelState::ShuttingDown(_))
        ) && !self.closed_cooperatively(&channel_id)
        {
            return;
        }
        let Some(peer) = self.peer_of(&channel_id) else {
            return;
        };
        let Some(data) = self.data(&channel_id) else {
            return;
        };
        let s = &data.shutdown;
        let settled = data.their_pending.is_none()
            && data.our_commitment.ours == data.our_total()
            && data.our_commitment.theirs == data.their_total()
            && data.their_commitment.ours == data.our_total()
            && data.their_commitment.theirs == data.their_total();
        if !(s.our_shutdown_sent && s.their_shutdown_received && settled) {
            return;
        }
        let Ok(balances) = data.latest_balances() else {
            return;
        };
        if !balances.tlcs.is_empty() {
            return;
        }
        let Ok(tx) = data.closing_tx(channel_id, &balances) else {
            return;
        };
        let ours = sign_digest(&self.secret_key(), &tx.sighash());
        let first_time = !data.shutdown.closing_signed_sent;
        let theirs = data.shutdown.their_closing_signature;
        let full = theirs.map(|t| data.with_funding_witness(tx, ours, t));
        if first_time {
            if let Some(d) = self.data_mut(&channel_id) {
                d.shutdown.closing_signed_sent = true;
            }
            self.mark_dirty(channel_id);
            self.send(
                peer,
                PeerMessage::ClosingSigned {
                    channel_id,
                    signature: ours,
                },
            );
        }
        if let Some(full) = full {
            self.broadcast(full, None);
        }
    }

    /// The ledger holds this channel's cooperative close (a late ClosingSigned is then handled
    /// as if it had come first: the identical closing transaction is simply offered again).
    pub(super) fn closed_cooperatively(&self, channel_id: &Hash32) -> bool {
        matches!(self.state_of(channel_id), Some(ChannelState::Closed(bits)) if bits & flags::COOPERATIVE != 0)
            && self
                .data(channel_id)
                .and_then(|d| d.on_chain.as_ref())
                .is_some_and(|c| c.kind == "cooperative_close")
    }

    pub(super) fn on_closing_signed(
        &mut self,
        peer: Pubkey,
        channel_id: Hash32,
        signature: dlp_chain::Sig,
    ) {
        let Some(data) = self.data(&channel_id) else {
            return;
        };
        let valid = data
            .latest_balances()
            .ok()
            .and_then(|b| data.closing_tx(channel_id, &b).ok())
            .is_some_and(|tx| verify_digest(&data.remote_keys.funding, &tx.sighash(), &signature));
        if !valid {
            self.send_error(peer, Some(channel_id), "bad ClosingSigned".into());
            return;
        }
        if let Some(d) = self.data_mut(&channel_id) {
            d.shutdown.their_closing_signature = Some(signature);
        }
        self.mark_dirty(channel_id);
        self.try_closing_signed(channel_id);
    }

    pub(super) fn force_close(&mut self, channel_id: Hash32) -> Result<(), String> {
        let (tx, number) = self
            .our_signed_commitment(channel_id)
            .map_err(|e| format!("cannot force-close {channel_id}: {e}"))?;
        self.set_state(
            channel_id,
            ChannelState::Closed(flags::UNCOOPERATIVE_LOCAL | flags::WAITING_ONCHAIN_SETTLEMENT),
        );
        self.broadcast(tx, Some(number));
        Ok(())
    }

    /// The peer lost data for this channel (its audit failed, or it has no record of the
    /// channel at all) and asks us to close it with our commitment. What a live channel does is
    /// `audit.on_force_close_request`: force-close (default) or report it and stay open.
    pub(super) fn on_request_force_close(&mut self, peer: Pubkey, channel_id: Hash32) {
        let Some(state @ (ChannelState::ChannelReady | ChannelState::ShuttingDown(_))) =
            self.state_of(&channel_id)
        else {
            return;
        };
        match self.config.audit.on_force_close_request {
            OnForceCloseRequest::ForceClose => {
                tracing::info!(%peer, %channel_id, "peer lost data and asks us to force-close");
                if let Err(e) = self.force_close(channel_id) {
                    self.error_event(Some(channel_id), e);
                }
            }
            OnForceCloseRequest::Ignore => {
                let reason = format!(
                    "audit.on_force_close_request = \"ignore\": the peer says it lost data; \
                     channel stays {state}"
                );
                tracing::warn!(%peer, %channel_id, "RequestForceClose ignored: {reason}");
                self.fx.events.push(EventKind::MessageIgnored {
                    peer,
                    msg_type: MessageName::RequestForceClose,
                    channel_id: Some(channel_id),
                    reason,
                });
            }
        }
    }
}
