//! Reconnection: ReestablishChannel, Fiber's resync rules, the passive audit of Stale
//! channels, the resolution of a channel Stale at both ends, and the answer to a channel we do
//! not know at all.
//!
//! ## Normal channels
//! On connect we send `ReestablishChannel {L, R}` for every ChannelReady / ShuttingDown channel
//! and ignore its other messages until the peer's arrives. With the peer's `PL, PR`:
//! `|PL - R| > 1 || |PR - L| > 1` is an error; if `R == PL + 1` the peer missed our last
//! RevokeAndAck and we resend it; if our CommitmentSigned is unacknowledged and `PR == L` the
//! peer never processed it and we resend it; our updates the peer has not committed are resent
//! before it; both in the order we first sent them. If `PR == L + 1` the peer will resend its
//! RevokeAndAck. A ShuttingDown channel resends Shutdown.
//!
//! ## Stale channels (after a restore)
//! Passive silence: nothing is sent first, neither at start-up nor on reconnect. The peer's
//! ReestablishChannel triggers the audit:
//! - `fiber`: fail if `|PL - R| > 1 || |PR - L| > 1` (Fiber's merged rule).
//! - `strict`: also fail if `PL > R` or `PR > L`. Why this is the safe line: `PL` counts the
//!   RevokeAndAcks the peer received from us, so `PL > R` proves we revoked a commitment our
//!   backup still holds as current (broadcasting it would be punished); `PR` counts the peer's
//!   revocations, so `PR > L` proves the peer moved to a commitment we signed after the backup:
//!   we lack its revocation secret (we could not punish the old one) and its balances (we would
//!   sign on wrong numbers). A peer that is behind (`PL < R` or `PR < L`) is resynced by us, as
//!   in the normal path, so it passes.
//!
//! On pass: an audit event that passed (`audit_passed`), the channel becomes ChannelReady, we send our own
//! ReestablishChannel (unless we already sent it on this connection, below) and run the normal
//! resync once; a channel that was shutting down goes back to ShuttingDown and finishes the
//! cooperative close. On fail: one that failed (`audit_failed`), the channel stays Stale and blocked; with
//! `on_audit_failure = "request_close"` we ask the peer to force-close.
//!
//! ## A channel we do not know
//! A node restored from a backup older than a channel has no record of it, and the peer's
//! ReestablishChannel names it. We answer `RequestForceClose` (the message that already means
//! "I lost data, close with your commitment"), publish `UnknownChannelReestablish` and touch
//! nothing else: there is no record to change. The peer's commitment pays our balance straight
//! to our wallet key, and the chain watcher reports that payment (`RecoveredFromUnknownChannel`,
//! see `onchain`). The peer decides with `audit.on_force_close_request` (`force_close` by
//! default, Lightning's answer to a peer's error on a channel).
//!
//! ## Both ends Stale (`audit.mutual_stale`)
//! When both ends were restored, both wait for the other's ReestablishChannel and the channel
//! is frozen. `mutual_stale = "wait"` keeps it so (passive silence without exception; the
//! default under `policy = "fiber"`). `mutual_stale = "reveal"` (the default under `strict`)
//! resolves it, per connection (everything below is forgotten when the connection ends or is
//! replaced):
//! 1. On connect a Stale channel starts a timer of `stale_reveal_after_ms` (a task that sends
//!    [`CoreInput::StaleRevealDue`](super::CoreInput) tagged with the connection's id, so a
//!    timer of an old connection does nothing).
//! 2. When it runs out, the channel is still Stale and the peer has sent no ReestablishChannel
//!    on this connection, it sends `StaleNotice` (only that it is Stale, no numbers), once.
//! 3. Tie-break: the end whose node key (compressed, 33 bytes) is bytewise lower sends its
//!    ReestablishChannel once it has both sent its StaleNotice and received the peer's; the
//!    other end waits for those numbers.
//! 4. The other end audits them as above and answers with its own ReestablishChannel whether
//!    its audit passed or failed (it stays Stale and blocked on a failure, exactly as in the
//!    one-sided case, but its numbers let the first end audit on its own: when the first end's
//!    backup is the newer one it resumes, and can close the channel). The first end audits
//!    them in turn and does not send its numbers again. So each end sends ReestablishChannel
//!    once and resyncs at most once.
//!
//! A StaleNotice reaching a channel that is not Stale, or one in `wait` mode, is ignored
//! (`MessageIgnored` says why).
//!
//! ### Both ends Stale and both audits fail
//! See `stale_close`: under `on_audit_failure = "request_close"` the newer backup closes.
//!
//! ### Why `reveal` cannot make a one-sided restore unsafe
//! - An honest peer that was not restored sends ReestablishChannel as soon as it is connected,
//!   so our audit runs on its numbers before the timer runs out; the timer then finds the
//!   channel resumed (or the peer's ReestablishChannel heard, after a failed audit) and sends
//!   nothing. Nothing about the one-sided path changes. (Should the peer's ReestablishChannel
//!   take longer than `stale_reveal_after_ms` to arrive, a slow link, the StaleNotice goes out
//!   first and the peer ignores it; it tells the peer we are Stale, never our numbers, and the
//!   audit runs on the peer's ReestablishChannel as always. Hence a wait far above a round trip.)
//! - Only a Stale channel sends StaleNotice, and we send our numbers only after receiving the
//!   peer's StaleNotice. An honest live peer never sends one, so it can never make us reveal our
//!   numbers.
//! - Whoever sends its numbers first still audits the peer's numbers before it resumes: nothing
//!   is signed, sent beyond the ReestablishChannel, or broadcast from the Stale state. The audit
//!   rule, not the order, decides whether a channel may resume, so a peer ahead of our backup
//!   is refused exactly as before.
//!
//! ### The residual risk, and why it is a named option
//! Passive silence hides from the peer that we lost data. Under `reveal`, a peer that stays
//! silent for `stale_reveal_after_ms` learns that we are Stale, and a peer that lies about
//! being Stale (it sends StaleNotice while holding newer state) learns our commitment numbers,
//! which it could use to tell how far behind our backup is, for example to judge whether
//! broadcasting a commitment revoked after our backup would go unpunished. Silence would have
//! told it nothing. The audit still refuses to resume on numbers that are ahead of the backup,
//! but the knowledge itself is what silence protected. Hence an explicit option, off under
//! `fiber` (Fiber's behaviour, unchanged) and on under `strict`, whose audit refuses every peer
//! ahead of the backup.

use std::collections::{HashMap, HashSet};

use dlp_chain::{Hash32, Pubkey};
use dlp_node_api::{AuditEvent, AuditOutcome, MessageName};

use super::{Core, CoreInput};
use crate::channel::Update;
use crate::channel_record::ChannelState;
use crate::config::{AuditPolicy, MutualStale, OnAuditFailure};
use crate::events::EventKind;
use crate::wire::PeerMessage;

/// Reestablish and audit state of the channels on the current connections.
#[derive(Debug, Default)]
pub(super) struct ReestablishState {
    /// Channels whose peer has not yet sent ReestablishChannel on this connection.
    pub(super) awaiting: HashSet<Hash32>,
    /// Stale channels whose audit failed (blocked until restart or a new reestablish).
    pub(super) audit_failed: HashSet<Hash32>,
    /// Per Stale channel, what the mutual-Stale resolution said and heard on the current
    /// connection; forgotten when the connection ends or is replaced.
    pub(super) stale_talk: HashMap<Hash32, StaleTalk>,
}

/// What the mutual-Stale resolution of one Stale channel said and heard on the current
/// connection. Forgotten when the connection ends or is replaced.
#[derive(Debug, Default)]
pub(super) struct StaleTalk {
    /// We sent our StaleNotice.
    notice_sent: bool,
    /// The peer sent its StaleNotice.
    pub(super) notice_received: bool,
    /// We sent our ReestablishChannel first (we hold the lower node key).
    numbers_sent: bool,
    /// The peer sent its ReestablishChannel (the audit ran).
    peer_reestablished: bool,
    /// The reveal timer, aborted when the connection ends.
    timer: Option<tokio::task::AbortHandle>,
}

impl Drop for StaleTalk {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

/// The audit rule: `Err(reason)` when the channel must stay Stale.
pub(crate) fn audit(
    policy: AuditPolicy,
    local: u64,
    remote: u64,
    peer_local: u64,
    peer_remote: u64,
) -> Result<(), String> {
    if peer_local.abs_diff(remote) > 1 || peer_remote.abs_diff(local) > 1 {
        return Err(format!(
            "commitment numbers more than one apart: Local(L:{local}, R:{remote}), \
             Peer(L:{peer_local}, R:{peer_remote})"
        ));
    }
    if policy == AuditPolicy::Strict {
        if peer_local > remote {
            return Err(format!(
                "peer received {peer_local} revocations from us, our backup knows {remote}: our \
                 latest commitment is already revoked"
            ));
        }
        if peer_remote > local {
            return Err(format!(
                "peer revoked {peer_remote} commitments, our backup knows {local}: the peer holds \
                 a commitment we signed after this backup"
            ));
        }
    }
    Ok(())
}

impl Core {
    /// On connect: send ReestablishChannel for live channels; Stale channels stay silent.
    pub(super) fn start_reestablish(&mut self, peer: Pubkey) {
        let ids: Vec<Hash32> = self
            .channels
            .iter()
            .filter(|(id, _)| self.peer_of(id) == Some(peer))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            match self.state_of(&id) {
                Some(ChannelState::ChannelReady | ChannelState::ShuttingDown(_)) => {
                    self.send_reestablish(peer, id);
                }
                // Resend ChannelReady if we had sent it (the peer may have missed it).
                Some(ChannelState::AwaitingChannelReady(_))
                    if self.data(&id).is_some_and(|d| d.our_channel_ready_sent) =>
                {
                    self.send(peer, PeerMessage::ChannelReady { channel_id: id });
                }
                Some(ChannelState::Stale) => {
                    // Passive silence: the peer must speak first (in `reveal` mode, unless it
                    // stays silent too: see the module docs).
                    self.reestablish.awaiting.remove(&id);
                    if self.config.audit.effective_mutual_stale() == MutualStale::Reveal {
                        self.arm_stale_reveal(peer, id);
                    }
                }
                _ => {}
            }
        }
    }

    fn reestablish_message(&self, id: Hash32) -> Option<PeerMessage> {
        let data = self.data(&id)?;
        Some(PeerMessage::ReestablishChannel {
            channel_id: id,
            local_commitment_number: data.local_commitment_number(),
            remote_commitment_number: data.remote_commitment_number(),
        })
    }

    fn send_reestablish(&mut self, peer: Pubkey, id: Hash32) {
        let Some(message) = self.reestablish_message(id) else {
            return;
        };
        self.reestablish.awaiting.insert(id);
        self.send(peer, message);
    }

    /// Forget what the mutual-Stale resolution said and heard on the connection to `peer`
    /// (it ended, or a new one replaced it); its timers are aborted.
    pub(super) fn forget_stale_talk(&mut self, peer: Pubkey) {
        let ids: Vec<Hash32> = self
            .reestablish
            .stale_talk
            .keys()
            .filter(|id| self.peer_of(id) == Some(peer))
            .copied()
            .collect();
        for id in ids {
            self.reestablish.stale_talk.remove(&id);
        }
    }

    /// Start the reveal timer of a Stale channel for the current connection to `peer`.
    fn arm_stale_reveal(&mut self, peer: Pubkey, id: Hash32) {
        let Some(conn_id) = self.peers.get(&peer).map(|c| c.conn_id) else {
            return;
        };
        let after = std::time::Duration::from_millis(self.config.audit.stale_reveal_after_ms);
        let inputs = self.inputs.clone();
        let timer = tokio::spawn(tracing::Instrument::in_current_span(async move {
            tokio::time::sleep(after).await;
            if let Some(inputs) = inputs.upgrade() {
                let _ = inputs.send(CoreInput::StaleRevealDue {
                    peer,
                    conn_id,
                    channel_id: id,
                });
            }
        }));
        let talk = self.reestablish.stale_talk.entry(id).or_default();
        if let Some(old) = talk.timer.replace(timer.abort_handle()) {
            old.abort();
        }
    }

    /// The reveal timer ran out: send StaleNotice if the channel is still Stale and the peer
    /// stayed silent on this connection.
    pub(super) fn on_stale_reveal_due(&mut self, peer: Pubkey, conn_id: u64, id: Hash32) {
        if self.peers.get(&peer).map(|c| c.conn_id) != Some(conn_id)
            || self.state_of(&id) != Some(ChannelState::Stale)
            || self.config.audit.effective_mutual_stale() != MutualStale::Reveal
        {
            return;
        }
        let talk = self.reestablish.stale_talk.entry(id).or_default();
        talk.timer = None;
        if talk.peer_reestablished || talk.notice_sent {
            return;
        }
        talk.notice_sent = true;
        tracing::info!(
            channel = %id,
            %peer,
            "Stale channel {id}: no ReestablishChannel from the peer after {} ms; sending StaleNotice",
            self.config.audit.stale_reveal_after_ms
        );
        self.send(peer, PeerMessage::StaleNotice { channel_id: id });
        self.maybe_send_stale_numbers(peer, id);
    }

    /// The peer says its end of the channel is Stale too.
    pub(super) fn on_stale_notice(&mut self, peer: Pubkey, id: Hash32) {
        let reason = match self.state_of(&id) {
            None => Some("unknown channel".to_string()),
            Some(ChannelState::Stale)
                if self.config.audit.effective_mutual_stale() == MutualStale::Wait =>
            {
                Some(
                    "audit.mutual_stale = \"wait\": passive silence, waiting for the peer's \
                     ReestablishChannel"
                        .to_string(),
                )
            }
            Some(ChannelState::Stale) => None,
            Some(other) => Some(format!(
                "channel is {other}, not Stale: a StaleNotice only matters to a Stale channel"
            )),
        };
        if let Some(reason) = reason {
            tracing::info!(channel = %id, %peer, "StaleNotice ignored: {reason}");
            self.fx.events.push(EventKind::MessageIgnored {
                peer,
                msg_type: MessageName::StaleNotice,
                channel_id: Some(id),
                reason,
            });
            return;
        }
        tracing::info!(channel = %id, %peer, "the peer's end of Stale channel {id} is Stale too");
        self.reestablish
            .stale_talk
            .entry(id)
            .or_default()
            .notice_received = true;
        self.maybe_send_stale_numbers(peer, id);
    }

    /// Both ends said StaleNotice on this connection: the lower node key sends its numbers
    /// first, once; the other end waits for them.
    fn maybe_send_stale_numbers(&mut self, peer: Pubkey, id: Hash32) {
        let me = self.me;
        let Some(talk) = self.reestablish.stale_talk.get_mut(&id) else {
            return;
        };
        if !(talk.notice_sent && talk.notice_received)
            || talk.numbers_sent
            || talk.peer_reestablished
            || me.0 >= peer.0
        {
            return;
        }
        talk.numbers_sent = true;
        let Some(message) = self.reestablish_message(id) else {
            return;
        };
        tracing::info!(
            channel = %id,
            %peer,
            "both ends of channel {id} are Stale; ours is the lower node key: sending our numbers first"
        );
        self.send(peer, message);
    }

    pub(super) fn on_reestablish(
        &mut self,
        peer: Pubkey,
        id: Hash32,
        peer_local: u64,
        peer_remote: u64,
    ) {
        let Some(state) = self.state_of(&id) else {
            // Restored from a backup older than the channel: ask the peer to close it with its
            // commitment, which pays our balance to our wallet. Nothing else is touched.
            tracing::warn!(
                channel = %id,
                %peer,
                "peer reestablishes channel {id}, of which we have no record (restored from an \
                 older backup?); asking it to force-close"
            );
            self.fx.events.push(EventKind::UnknownChannelReestablish {
                peer,
                channel_id: id,
            });
            self.send(peer, PeerMessage::RequestForceClose { channel_id: id });
            return;
        };
        let Some(data) = self.data(&id) else {
            return;
        };
        let (local, remote) = (
            data.local_commitment_number(),
            data.remote_commitment_number(),
        );
        match state {
            ChannelState::Stale => {
                let talk = self.reestablish.stale_talk.entry(id).or_default();
                talk.peer_reestablished = true;
                let numbers_sent = talk.numbers_sent;
                let policy = self.config.audit.policy;
                match audit(policy, local, remote, peer_local, peer_remote) {
                    Ok(()) => {
                        tracing::info!(channel = %id, "Passive audit passed for channel {id}. Resuming to Ready.");
                        self.reestablish.audit_failed.remove(&id);
                        self.fx.events.push(EventKind::Audit(AuditEvent {
                            channel_id: id,
                            policy,
                            local,
                            remote,
                            peer_local,
                            peer_remote,
                            outcome: AuditOutcome::Passed,
                        }));
                        if let Some(record) = self.channels.get_mut(&id) {
                            record.state_before_stale = None;
                        }
                        self.set_state(id, ChannelState::ChannelReady);
                        self.reestablish.stale_talk.remove(&id);
                        // Both ends were Stale and we sent our numbers first: the peer has
                        // them already (sending them again would start a ping-pong).
                        if !numbers_sent {
                            self.send_reestablish(peer, id);
                        }
                        self.resync(peer, id, peer_local, peer_remote);
                    }
                    Err(reason) => {
                        tracing::warn!(
                            channel = %id,
                            "Audit Failed for Stale channel: Local(L:{local}, R:{remote}), Peer(L:{peer_local}, R:{peer_remote}): {reason}"
                        );
                        self.reestablish.audit_failed.insert(id);
                        self.fx.events.push(EventKind::Audit(AuditEvent {
                            channel_id: id,
                            policy,
                            local,
                            remote,
                            peer_local,
                            peer_remote,
                            outcome: AuditOutcome::Failed { reason },
                        }));
                        // Both ends Stale and the peer spoke first: answer with our numbers
                        // all the same, so the peer audits them on its own (its backup may be
                        // the newer one; then it resumes and can close). We stay Stale; the
                        // peer already knows we are, and it told us its numbers first.
                        let answer = self
                            .reestablish
                            .stale_talk
                            .get(&id)
                            .is_some_and(|talk| talk.notice_received && !talk.numbers_sent);
                        if answer && let Some(message) = self.reestablish_message(id) {
                            if let Some(talk) = self.reestablish.stale_talk.get_mut(&id) {
                                talk.numbers_sent = true;
                            }
                            self.send(peer, message);
                        }
                        if self.config.audit.effective_on_audit_failure()
                            == OnAuditFailure::RequestClose
                        {
                            self.resolve_failed_audit(
                                peer,
                                id,
                                (local, remote),
                                (peer_local, peer_remote),
                            );
                        }
                    }
                }
            }
            ChannelState::ChannelReady | ChannelState::ShuttingDown(_) => {
                if !self.reestablish.awaiting.contains(&id) {
                    // The peer reestablished without us having sent ours (it reconnected to
                    // us and spoke first): answer, then resync.
                    self.send_reestablish(peer, id);
                }
                self.resync(peer, id, peer_local, peer_remote);
            }
            other => {
                self.fx.events.push(EventKind::MessageIgnored {
                    peer,
                    msg_type: MessageName::ReestablishChannel,
                    channel_id: Some(id),
                    reason: format!("channel is {other}"),
                });
            }
        }
    }

    /// Fiber's resync for a live channel, given the peer's numbers.
    fn resync(&mut self, peer: Pubkey, id: Hash32, peer_local: u64, peer_remote: u64) {
        self.reestablish.awaiting.remove(&id);
        let Some(data) = self.data(&id).cloned() else {
            return;
        };
        let (local, remote) = (
            data.local_commitment_number(),
            data.remote_commitment_number(),
        );
        if peer_local.abs_diff(remote) > 1 || peer_remote.abs_diff(local) > 1 {
            self.send_error(
                peer,
                Some(id),
                format!(
                    "cannot reestablish: Local(L:{local}, R:{remote}), Peer(L:{peer_local}, R:{peer_remote}) \
                     are more than one apart"
                ),
            );
            return;
        }
        let resend_revoke = remote == peer_local + 1;
        let resend_commitment = data.their_pending.is_some() && peer_remote == local;
        // Updates of ours the peer holds: those in commitments it has processed.
        let processed_ours = match data.their_pending {
            Some(p) if peer_remote == local + 1 => p.ours,
            _ => data.their_commitment.ours,
        }
        .max(data.our_commitment.ours);
        let mut messages = Vec::new();
        let revoke = if resend_revoke && remote > 0 {
            Some(PeerMessage::RevokeAndAck {
                channel_id: id,
                revoked_number: remote - 1,
                secret: self.our_secret(&data, remote - 1),
                next_revocation_hash: self.our_revocation_hash(&data, remote + 1),
            })
        } else {
            None
        };
        let update_message = |index: u64| -> Option<PeerMessage> {
            let update = data
                .our_log
                .get(index.checked_sub(data.base_ours)? as usize)?;
            Some(match update {
                Update::Add(tlc) => PeerMessage::AddTlc {
                    channel_id: id,
                    tlc_id: tlc.id,
                    amount: tlc.amount,
                    payment_hash: tlc.payment_hash,
                    expiry: tlc.expiry,
                    onion: tlc.onion.clone(),
                },
                Update::Remove { tlc_id, reason } => PeerMessage::RemoveTlc {
                    channel_id: id,
                    tlc_id: *tlc_id,
                    reason: reason.clone(),
                },
            })
        };
        if let (true, Some(pending)) = (resend_commitment, data.their_pending) {
            let commitment = match self.sign_their_commitment(
                &data,
                id,
                pending.number,
                pending.ours,
                pending.theirs,
            ) {
                Ok(signature) => PeerMessage::CommitmentSigned {
                    channel_id: id,
                    commitment_number: pending.number,
                    sender_updates: pending.ours,
                    receiver_updates: pending.theirs,
                    signature,
                },
                Err(e) => {
                    self.error_event(Some(id), format!("cannot re-sign commitment: {e}"));
                    return;
                }
            };
            let before: Vec<PeerMessage> = (processed_ours..pending.ours)
                .filter_map(update_message)
                .collect();
            if data.commitment_sent_first || revoke.is_none() {
                messages.extend(before);
                messages.push(commitment);
                messages.extend(revoke);
            } else {
                messages.extend(revoke);
                messages.extend(before);
                messages.push(commitment);
            }
            messages.extend((pending.ours..data.our_total()).filter_map(update_message));
        } else {
            messages.extend(revoke);
            messages.extend((processed_ours..data.our_total()).filter_map(update_message));
        }
        for message in messages {
            self.send(peer, message);
        }
        // Resume a close in progress.
        let shutdown = data.shutdown.clone();
        if shutdown.our_shutdown_sent {
            self.update_shutdown_state(id);
            self.send(peer, PeerMessage::Shutdown { channel_id: id });
            if shutdown.closing_signed_sent
                && let Some(d) = self.data_mut(&id)
            {
                // Re-sign on the resumed connection.
                d.shutdown.closing_signed_sent = false;
            }
        } else if shutdown.their_shutdown_received {
            self.update_shutdown_state(id);
        }
        self.maybe_send_commitment(id);
        self.after_commitment_progress(id);
        self.mark_dirty(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiber_policy_tolerates_one_either_way() {
        assert!(audit(AuditPolicy::Fiber, 5, 5, 5, 5).is_ok());
        assert!(audit(AuditPolicy::Fiber, 5, 5, 6, 5).is_ok());
        assert!(audit(AuditPolicy::Fiber, 5, 5, 4, 6).is_ok());
        assert!(audit(AuditPolicy::Fiber, 5, 5, 7, 5).is_err());
        assert!(audit(AuditPolicy::Fiber, 5, 5, 5, 3).is_err());
    }

    #[test]
    fn strict_policy_refuses_a_peer_ahead_of_the_backup() {
        assert!(audit(AuditPolicy::Strict, 5, 5, 5, 5).is_ok());
        assert!(
            audit(AuditPolicy::Strict, 5, 5, 4, 4).is_ok(),
            "peer behind: we resync it"
        );
        assert!(
            audit(AuditPolicy::Strict, 5, 5, 6, 5).is_err(),
            "our latest is revoked"
        );
        assert!(
            audit(AuditPolicy::Strict, 5, 5, 5, 6).is_err(),
            "peer has a newer commitment"
        );
    }
}
