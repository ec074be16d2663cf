//! Channel updates: TLCs offered and removed, CommitmentSigned and RevokeAndAck, and the
//! signing and checking of commitment transactions.

use dlp_chain::{Hash32, Pubkey, Transaction, sign_digest, verify_digest};

use super::Core;
use crate::channel::{ChannelData, Commitment, ProtocolViolation, Tlc, Update};
use crate::channel_record::ChannelState;
use crate::wire::{PeerMessage, RemoveReason};

impl Core {
    /// Sign the peer's commitment `number` holding the given update counts (our view).
    pub(super) fn sign_their_commitment(
        &self,
        data: &ChannelData,
        channel_id: Hash32,
        number: u64,
        ours: u64,
        theirs: u64,
    ) -> Result<dlp_chain::Sig, ProtocolViolation> {
        let balances = data.balances_at(ours, theirs)?;
        let hash = *data.their_revocation_hashes.get(&number).ok_or_else(|| {
            ProtocolViolation(format!(
                "no revocation hash for the peer's commitment {number}"
            ))
        })?;
        let tx = data.commitment_tx(channel_id, false, number, &balances, hash)?;
        Ok(sign_digest(&self.secret_key(), &tx.sighash()))
    }

    /// Check the peer's signature of our commitment `number`.
    pub(super) fn verify_our_commitment(
        &self,
        data: &ChannelData,
        channel_id: Hash32,
        number: u64,
        ours: u64,
        theirs: u64,
        signature: &dlp_chain::Sig,
    ) -> Result<(), ProtocolViolation> {
        let balances = data.balances_at(ours, theirs)?;
        let hash = self.our_revocation_hash(data, number);
        let tx = data.commitment_tx(channel_id, true, number, &balances, hash)?;
        if verify_digest(&data.remote_keys.funding, &tx.sighash(), signature) {
            Ok(())
        } else {
            Err(ProtocolViolation(format!(
                "bad signature on our commitment {number}"
            )))
        }
    }

    /// Our current commitment, fully signed, ready to broadcast.
    pub(super) fn our_signed_commitment(
        &self,
        channel_id: Hash32,
    ) -> Result<(Transaction, u64), ProtocolViolation> {
        let data = self
            .data(&channel_id)
            .ok_or_else(|| ProtocolViolation("unknown channel".into()))?;
        let c = data.our_commitment;
        let theirs = c
            .peer_signature
            .ok_or_else(|| ProtocolViolation("no peer signature on our commitment".into()))?;
        let balances = data.balances_at(c.ours, c.theirs)?;
        let hash = self.our_revocation_hash(data, c.number);
        let tx = data.commitment_tx(channel_id, true, c.number, &balances, hash)?;
        let ours = sign_digest(&self.secret_key(), &tx.sighash());
        Ok((data.with_funding_witness(tx, ours, theirs), c.number))
    }

    /// True when the channel can carry new TLCs.
    pub(super) fn usable_for_payments(&self, id: &Hash32) -> Result<(), String> {
        // First what no state can mend: a peer that speaks another wire version (a Stale
        // channel with it waits for a ReestablishChannel that can never come).
        if let Some(peer) = self.peer_of(id)
            && !self.peers.contains_key(&peer)
            && let Some(theirs) = self.other_wire.get(&peer)
        {
            return Err(format!(
                "peer {peer} of channel {id} speaks wire version {theirs} (another build of \
                 dlp-node; this node speaks {}): it cannot carry payments until both run builds \
                 of one wire version",
                crate::wire::WIRE_VERSION
            ));
        }
        match self.state_of(id) {
            Some(ChannelState::ChannelReady) => {}
            Some(ChannelState::Stale) => {
                return Err(if self.reestablish.audit_failed.contains(id) {
                    format!(
                        "channel {id} is Stale and blocked: its audit failed (restored from an \
                         old backup); it will not carry payments"
                    )
                } else {
                    format!(
                        "channel {id} is Stale (restored from a backup) and waits for the \
                         peer's ReestablishChannel"
                    )
                });
            }
            Some(state) => return Err(format!("channel {id} is {state}, not ChannelReady")),
            None => return Err(format!("unknown channel {id}")),
        }
        let peer = self.peer_of(id).ok_or("channel has no peer")?;
        if !self.peers.contains_key(&peer) {
            return Err(format!("peer {peer} of channel {id} is not connected"));
        }
        if self.reestablish.awaiting.contains(id) {
            return Err(format!("channel {id} is reestablishing"));
        }
        Ok(())
    }

    /// Offer a TLC on a channel (we pay `amount`). Returns the TLC id.
    pub(super) fn offer_tlc(
        &mut self,
        channel_id: Hash32,
        amount: u64,
        payment_hash: Hash32,
        expiry: u64,
        onion: crate::onion::OnionPacket,
        origin: crate::channel::TlcOrigin,
    ) -> Result<u64, String> {
        self.usable_for_payments(&channel_id)?;
        let peer = self.peer_of(&channel_id).ok_or("no peer")?;
        let data = self.data_mut(&channel_id).ok_or("no channel data")?;
        if amount == 0 {
            return Err("amount must be positive".into());
        }
        let available = data.latest_balances().map_err(|e| e.to_string())?.local;
        if available < amount {
            return Err(format!(
                "channel {channel_id} has {available} shannons available, {amount} needed"
            ));
        }
        let id = data.next_tlc_id;
        data.next_tlc_id += 1;
        data.our_log.push(Update::Add(Tlc {
            offered_by_us: true,
            id,
            amount,
            payment_hash,
            expiry,
            onion: onion.clone(),
            origin: Some(origin),
        }));
        self.mark_dirty(channel_id);
        self.send(
            peer,
            PeerMessage::AddTlc {
                channel_id,
                tlc_id: id,
                amount,
                payment_hash,
                expiry,
                onion,
            },
        );
        self.maybe_send_commitment(channel_id);
        Ok(id)
    }

    /// Remove a TLC the peer offered (fulfil or fail it).
    pub(super) fn remove_their_tlc(
        &mut self,
        channel_id: Hash32,
        tlc_id: u64,
        reason: RemoveReason,
    ) {
        let Some(peer) = self.peer_of(&channel_id) else {
            return;
        };
        let Some(data) = self.data_mut(&channel_id) else {
            return;
        };
        let pending_remove = data
            .our_log
            .iter()
            .any(|u| matches!(u, Update::Remove { tlc_id: id, .. } if *id == tlc_id));
        if pending_remove || data.find_tlc(false, tlc_id).is_none() {
            return;
        }
        data.our_log.push(Update::Remove {
            tlc_id,
            reason: reason.clone(),
        });
        self.mark_dirty(channel_id);
        if let RemoveReason::Fulfill { preimage } = &reason {
            // Kept for an on-chain claim should the channel close with the TLC in it.
            if let Some(tlc) = self
                .data(&channel_id)
                .and_then(|d| d.find_tlc(false, tlc_id))
            {
                self.payments.preimages.insert(tlc.payment_hash, *preimage);
                self.fx.preimages.push((tlc.payment_hash, *preimage));
            }
        }
        // On a channel that is not live and reestablished (Stale, reestablishing, offline) the
        // update waits in the log: the resync after ReestablishChannel sends it. A Stale channel
        // never speaks first.
        if !self.can_send_updates(&channel_id, &peer) {
            return;
        }
        self.send(
            peer,
            PeerMessage::RemoveTlc {
                channel_id,
                tlc_id,
                reason,
            },
        );
        self.maybe_send_commitment(channel_id);
    }

    /// True when update messages may go out on the channel now.
    pub(super) fn can_send_updates(&self, channel_id: &Hash32, peer: &Pubkey) -> bool {
        matches!(
            self.state_of(channel_id),
            Some(ChannelState::ChannelReady | ChannelState::ShuttingDown(_))
        ) && !self.reestablish.awaiting.contains(channel_id)
            && self.data(channel_id).is_some_and(|d| d.on_chain.is_none())
            && self.peers.contains_key(peer)
    }

    /// Sign the peer's next commitment if it lacks anything and nothing is in flight.
    pub(super) fn maybe_send_commitment(&mut self, channel_id: Hash32) {
        if !matches!(
            self.state_of(&channel_id),
            Some(ChannelState::ChannelReady | ChannelState::ShuttingDown(_))
        ) || self.reestablish.awaiting.contains(&channel_id)
        {
            return;
        }
        let Some(peer) = self.peer_of(&channel_id) else {
            return;
        };
        if !self.peers.contains_key(&peer) {
            return;
        }
        let Some(data) = self.data(&channel_id) else {
            return;
        };
        if data.their_pending.is_some() {
            return;
        }
        let ours = data.our_total();
        let theirs = data.our_commitment.theirs;
        if (ours, theirs) == (data.their_commitment.ours, data.their_commitment.theirs) {
            return;
        }
        let number = data.their_commitment.number + 1;
        let signature = match self.sign_their_commitment(data, channel_id, number, ours, theirs) {
            Ok(sig) => sig,
            Err(e) => {
                self.error_event(Some(channel_id), format!("cannot sign commitment: {e}"));
                return;
            }
        };
        if let Some(data) = self.data_mut(&channel_id) {
            data.their_pending = Some(Commitment {
                number,
                ours,
                theirs,
                peer_signature: None,
            });
            data.commitment_sent_first = false;
        }
        self.mark_dirty(channel_id);
        self.send(
            peer,
            PeerMessage::CommitmentSigned {
                channel_id,
                commitment_number: number,
                sender_updates: ours,
                receiver_updates: theirs,
                signature,
            },
        );
    }

    pub(super) fn on_add_tlc(&mut self, peer: Pubkey, message: PeerMessage) {
        let PeerMessage::AddTlc {
            channel_id,
            tlc_id,
            amount,
            payment_hash,
            expiry,
            onion,
        } = message
        else {
            return;
        };
        if self.state_of(&channel_id) != Some(ChannelState::ChannelReady) {
            self.send_error(
                peer,
                Some(channel_id),
                "AddTlc on a channel that is not ready".into(),
            );
            return;
        }
        let Some(data) = self.data_mut(&channel_id) else {
            return;
        };
        let duplicate = data.find_tlc(false, tlc_id).is_some()
            || data
                .their_log
                .iter()
                .any(|u| matches!(u, Update::Add(t) if t.id == tlc_id));
        let available = data.latest_balances().map(|b| b.remote).unwrap_or(0);
        if duplicate || amount == 0 || amount > available {
            let reason = format!(
                "invalid AddTlc {tlc_id}: duplicate, zero or above the peer's balance {available}"
            );
            self.send_error(peer, Some(channel_id), reason);
            return;
        }
        data.their_log.push(Update::Add(Tlc {
            offered_by_us: false,
            id: tlc_id,
            amount,
            payment_hash,
            expiry,
            onion,
            origin: None,
        }));
        self.mark_dirty(channel_id);
    }

    pub(super) fn on_remove_tlc(
        &mut self,
        peer: Pubkey,
        channel_id: Hash32,
        tlc_id: u64,
        reason: RemoveReason,
    ) {
        let Some(data) = self.data_mut(&channel_id) else {
            return;
        };
        let Some(tlc) = data.find_tlc(true, tlc_id) else {
            self.send_error(
                peer,
                Some(channel_id),
                format!("RemoveTlc of unknown TLC {tlc_id}"),
            );
            return;
        };
        if let RemoveReason::Fulfill { preimage } = &reason
            && Hash32::digest(&preimage.0) != tlc.payment_hash
        {
            self.send_error(
                peer,
                Some(channel_id),
                format!("wrong preimage for TLC {tlc_id}"),
            );
            return;
        }
        data.their_log.push(Update::Remove {
            tlc_id,
            reason: reason.clone(),
        });
        self.mark_dirty(channel_id);
        match reason {
            // A preimage is ours at once: claim upstream / report success now.
            RemoveReason::Fulfill { .. } => {
                self.on_outgoing_tlc_resolved(channel_id, &tlc, &reason);
            }
            // A failure only counts once irrevocably committed (see `process_committed_fails`).
            RemoveReason::Fail { .. } => {
                if let Some(data) = self.data_mut(&channel_id) {
                    data.pending_fails.insert(tlc_id, (tlc, reason));
                }
            }
        }
    }

    /// Act on the peer's failures of our TLCs that both current commitments now include.
    fn process_committed_fails(&mut self, channel_id: Hash32) {
        let Some(data) = self.data(&channel_id) else {
            return;
        };
        let ready: Vec<u64> = data
            .pending_fails
            .keys()
            .copied()
            .filter(|id| data.removal_committed(*id))
            .collect();
        for id in ready {
            let Some((tlc, reason)) = self
                .data_mut(&channel_id)
                .and_then(|d| d.pending_fails.remove(&id))
            else {
                continue;
            };
            self.mark_dirty(channel_id);
            self.on_outgoing_tlc_resolved(channel_id, &tlc, &reason);
        }
    }

    pub(super) fn on_commitment_signed(&mut self, peer: Pubkey, message: PeerMessage) {
        let PeerMessage::CommitmentSigned {
            channel_id,
            commitment_number,
            sender_updates: theirs,
            receiver_updates: ours,
            signature,
        } = message
        else {
            return;
        };
        let Some(data) = self.data(&channel_id).cloned() else {
            return;
        };
        let expected = data.our_commitment.number + 1;
        let check = if commitment_number != expected {
            Err(ProtocolViolation(format!(
                "CommitmentSigned for commitment {commitment_number}, expected {expected}"
            )))
        } else if ours < data.our_commitment.ours || theirs < data.our_commitment.theirs {
            Err(ProtocolViolation("commitment goes back in updates".into()))
        } else {
            self.verify_our_commitment(
                &data,
                channel_id,
                commitment_number,
                ours,
                theirs,
                &signature,
            )
        };
        if let Err(e) = check {
            self.send_error(peer, Some(channel_id), e.to_string());
            return;
        }
        let revoked = data.our_commitment.number;
        let secret = self.our_secret(&data, revoked);
        let next_revocation_hash = self.our_revocation_hash(&data, commitment_number + 1);
        if let Some(d) = self.data_mut(&channel_id) {
            d.our_commitment = Commitment {
                number: commitment_number,
                ours,
                theirs,
                peer_signature: Some(signature),
            };
            d.commitment_sent_first = d.their_pending.is_some();
            d.compact();
        }
        self.mark_dirty(channel_id);
        self.send(
            peer,
            PeerMessage::RevokeAndAck {
                channel_id,
                revoked_number: revoked,
                secret,
                next_revocation_hash,
            },
        );
        self.maybe_send_commitment(channel_id);
        self.after_commitment_progress(channel_id);
    }

    pub(super) fn on_revoke_and_ack(&mut self, peer: Pubkey, message: PeerMessage) {
        let PeerMessage::RevokeAndAck {
            channel_id,
            revoked_number,
            secret,
            next_revocation_hash,
        } = message
        else {
            return;
        };
        let Some(data) = self.data(&channel_id) else {
            return;
        };
        let Some(pending) = data.their_pending else {
            self.send_error(
                peer,
                Some(channel_id),
                "RevokeAndAck without a pending commitment".into(),
            );
            return;
        };
        let expected_hash = data.their_revocation_hashes.get(&revoked_number).copied();
        if revoked_number != data.their_commitment.number
            || expected_hash != Some(Hash32::digest(&secret.0))
        {
            self.send_error(
                peer,
                Some(channel_id),
                format!("invalid revocation of commitment {revoked_number}"),
            );
            return;
        }
        self.fx
            .peer_secrets
            .push((channel_id, revoked_number, secret));
        if let Some(d) = self.data_mut(&channel_id) {
            d.their_commitment = pending;
            d.their_pending = None;
            d.their_revocation_hashes
                .insert(pending.number + 1, next_revocation_hash);
            d.their_revocation_hashes
                .retain(|n, _| *n >= pending.number);
            d.compact();
        }
        self.mark_dirty(channel_id);
        self.maybe_send_commitment(channel_id);
        self.after_commitment_progress(channel_id);
    }

    /// After a commitment step: act on newly irrevocable TLCs, and continue a shutdown.
    pub(super) fn after_commitment_progress(&mut self, channel_id: Hash32) {
        self.process_committed_fails(channel_id);
        self.process_committed_incoming(channel_id);
        self.try_closing_signed(channel_id);
    }
}
