//! Channel lifecycle: open and funding, updates and commitments, cooperative and forced close.

use std::collections::BTreeMap;

use dlp_chain::{
    Hash32, Lock, Output, Pubkey, Transaction, TxKind, Witness, sign_digest, verify_digest,
};

use super::{ChannelInfo, Core, TlcInfo, pubkey_of};
use crate::channel::{
    ChannelBalances, ChannelData, Commitment, PartyKeys, ProtocolViolation, ShutdownProgress, Tlc,
    Update,
};
use crate::channel_record::{ChannelId, ChannelRecord, ChannelState, flags};
use crate::crypto::{commitment_secret, random_hash32, revocation_hash};
use crate::events::EventKind;
use crate::wire::{PeerMessage, RemoveReason};

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

    // ---------------------------------------------------------------- open and funding

    pub(super) async fn open_channel(
        &mut self,
        peer: Pubkey,
        funding_amount: u64,
    ) -> Result<Hash32, String> {
        if !self.peers.contains_key(&peer) {
            return Err(format!("peer {peer} is not connected; connect_peer first"));
        }
        if funding_amount == 0 {
            return Err("funding_amount must be positive".into());
        }
        let spendable: u64 = self
            .chain
            .unspent(self.wallet)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .filter(|u| !self.reserved_outpoints.contains(&u.outpoint))
            .map(|u| u.output.amount)
            .sum();
        if spendable < funding_amount {
            return Err(format!(
                "wallet {} has {spendable} shannons available, {funding_amount} needed",
                self.wallet
            ));
        }
        let temporary_id = random_hash32();
        let data = ChannelData {
            opener: true,
            temporary_id,
            funding_amount,
            to_self_delay: self.config.channel.to_self_delay,
            local_keys: PartyKeys {
                funding: self.me,
                payout: self.wallet,
            },
            remote_keys: PartyKeys {
                funding: peer,
                payout: peer,
            },
            funding: None,
            base: ChannelBalances {
                local: funding_amount,
                remote: 0,
                tlcs: vec![],
            },
            base_ours: 0,
            base_theirs: 0,
            our_log: vec![],
            their_log: vec![],
            our_commitment: Commitment {
                number: 0,
                ours: 0,
                theirs: 0,
                peer_signature: None,
            },
            their_commitment: Commitment {
                number: 0,
                ours: 0,
                theirs: 0,
                peer_signature: None,
            },
            their_pending: None,
            their_revocation_hashes: BTreeMap::new(),
            commitment_sent_first: false,
            next_tlc_id: 0,
            our_channel_ready_sent: false,
            their_channel_ready_received: false,
            shutdown: ShutdownProgress::default(),
            on_chain: None,
            handled_incoming: Default::default(),
        };
        let message = PeerMessage::OpenChannel {
            temporary_channel_id: temporary_id,
            funding_amount,
            funding_pubkey: self.me,
            payout_pubkey: self.wallet,
            to_self_delay: data.to_self_delay,
            revocation_hashes: [
                self.our_revocation_hash(&data, 0),
                self.our_revocation_hash(&data, 1),
            ],
        };
        self.insert_channel(
            temporary_id,
            peer,
            ChannelState::NegotiatingFunding(flags::OUR_INIT_SENT),
            data,
        );
        self.send(peer, message);
        Ok(temporary_id)
    }

    fn insert_channel(&mut self, id: Hash32, peer: Pubkey, state: ChannelState, data: ChannelData) {
        let peer_hex = hex::encode(peer.0);
        self.channels.insert(
            id,
            ChannelRecord {
                channel_id: ChannelId(id.0),
                peer_pubkey: peer_hex,
                state,
                local_commitment_number: 0,
                remote_commitment_number: 0,
                state_before_stale: None,
                data: Some(Box::new(data)),
            },
        );
        self.mark_dirty(id);
    }

    /// Move a record from its temporary id to its channel id.
    fn rekey(&mut self, from: Hash32, to: Hash32) {
        if let Some(mut record) = self.channels.remove(&from) {
            record.channel_id = ChannelId(to.0);
            self.channels.insert(to, record);
            self.fx.dirty_channels.remove(&from);
            self.fx.deleted_channels.insert(from);
            self.mark_dirty(to);
        }
    }

    pub(super) fn on_open_channel(&mut self, peer: Pubkey, message: PeerMessage) {
        let PeerMessage::OpenChannel {
            temporary_channel_id,
            funding_amount,
            ..
        } = &message
        else {
            return;
        };
        if self.channels.contains_key(temporary_channel_id) {
            self.send_error(
                peer,
                Some(*temporary_channel_id),
                "duplicate channel id".into(),
            );
            return;
        }
        let id = *temporary_channel_id;
        if *funding_amount >= self.config.channel.auto_accept_min_funding_amount {
            self.proposals.insert(id, (peer, message));
            if let Err(e) = self.accept_proposal(id) {
                self.send_error(peer, Some(id), e);
            }
        } else {
            tracing::info!(%peer, temporary_channel_id = %id, "channel proposal waits for accept_channel");
            self.proposals.insert(id, (peer, message));
        }
    }

    pub(super) fn accept_proposal(&mut self, temporary_id: Hash32) -> Result<Hash32, String> {
        let (peer, message) = self
            .proposals
            .remove(&temporary_id)
            .ok_or_else(|| format!("no pending channel proposal {temporary_id}"))?;
        let PeerMessage::OpenChannel {
            funding_amount,
            funding_pubkey,
            payout_pubkey,
            to_self_delay,
            revocation_hashes,
            ..
        } = message
        else {
            return Err("not an OpenChannel".into());
        };
        if funding_pubkey != peer {
            return Err("funding key must be the peer's node key".into());
        }
        let mut their_revocation_hashes = BTreeMap::new();
        their_revocation_hashes.insert(0, revocation_hashes[0]);
        their_revocation_hashes.insert(1, revocation_hashes[1]);
        let data = ChannelData {
            opener: false,
            temporary_id,
            funding_amount,
            to_self_delay,
            local_keys: PartyKeys {
                funding: self.me,
                payout: self.wallet,
            },
            remote_keys: PartyKeys {
                funding: funding_pubkey,
                payout: payout_pubkey,
            },
            funding: None,
            base: ChannelBalances {
                local: 0,
                remote: funding_amount,
                tlcs: vec![],
            },
            base_ours: 0,
            base_theirs: 0,
            our_log: vec![],
            their_log: vec![],
            our_commitment: Commitment {
                number: 0,
                ours: 0,
                theirs: 0,
                peer_signature: None,
            },
            their_commitment: Commitment {
                number: 0,
                ours: 0,
                theirs: 0,
                peer_signature: None,
            },
            their_pending: None,
            their_revocation_hashes,
            commitment_sent_first: false,
            next_tlc_id: 0,
            our_channel_ready_sent: false,
            their_channel_ready_received: false,
            shutdown: ShutdownProgress::default(),
            on_chain: None,
            handled_incoming: Default::default(),
        };
        let reply = PeerMessage::AcceptChannel {
            temporary_channel_id: temporary_id,
            funding_pubkey: self.me,
            payout_pubkey: self.wallet,
            revocation_hashes: [
                self.our_revocation_hash(&data, 0),
                self.our_revocation_hash(&data, 1),
            ],
        };
        self.insert_channel(
            temporary_id,
            peer,
            ChannelState::CollaboratingFundingTx(flags::OUR_INIT_SENT | flags::THEIR_INIT_SENT),
            data,
        );
        self.send(peer, reply);
        Ok(temporary_id)
    }

    pub(super) async fn on_accept_channel(&mut self, peer: Pubkey, message: PeerMessage) {
        let PeerMessage::AcceptChannel {
            temporary_channel_id: temp,
            funding_pubkey,
            payout_pubkey,
            revocation_hashes,
        } = message
        else {
            return;
        };
        let Some(data) = self.data(&temp).cloned() else {
            self.send_error(peer, Some(temp), "unknown channel".into());
            return;
        };
        if !data.opener || data.funding.is_some() || funding_pubkey != peer {
            self.send_error(peer, Some(temp), "unexpected AcceptChannel".into());
            return;
        }
        // Select wallet outputs for the funding.
        let unspent = match self.chain.unspent(self.wallet).await {
            Ok(u) => u,
            Err(e) => {
                self.fail_funding(peer, temp, format!("wallet query failed: {e}"));
                return;
            }
        };
        let mut inputs = Vec::new();
        let mut total = 0u64;
        for u in unspent {
            if total >= data.funding_amount {
                break;
            }
            if self.reserved_outpoints.contains(&u.outpoint) {
                continue;
            }
            total += u.output.amount;
            inputs.push(u.outpoint);
        }
        if total < data.funding_amount {
            self.fail_funding(peer, temp, "insufficient wallet funds".into());
            return;
        }
        let mut data = data;
        data.remote_keys = PartyKeys {
            funding: funding_pubkey,
            payout: payout_pubkey,
        };
        data.their_revocation_hashes.insert(0, revocation_hashes[0]);
        data.their_revocation_hashes.insert(1, revocation_hashes[1]);
        let mut outputs = vec![Output {
            amount: data.funding_amount,
            lock: data.funding_lock(),
        }];
        if total > data.funding_amount {
            outputs.push(Output {
                amount: total - data.funding_amount,
                lock: Lock::Key {
                    pubkey: self.wallet,
                },
            });
        }
        let channel_id = derive_channel_id(&temp, &self.me, &funding_pubkey);
        let funding_tx = Transaction::unsigned(TxKind::Funding { channel_id }, &inputs, outputs);
        let outpoint = funding_tx.outpoint(0);
        data.funding = Some(crate::channel::Funding {
            tx: funding_tx.clone(),
            outpoint,
            confirmed_at: None,
        });
        let their_first = match self.sign_their_commitment(&data, channel_id, 0, 0, 0) {
            Ok(sig) => sig,
            Err(e) => {
                self.fail_funding(peer, temp, e.to_string());
                return;
            }
        };
        for input in &inputs {
            self.reserved_outpoints.insert(*input);
        }
        if let Some(slot) = self.data_mut(&temp) {
            *slot = data;
        }
        self.rekey(temp, channel_id);
        self.set_state(
            channel_id,
            ChannelState::SigningCommitment(flags::OUR_INIT_SENT),
        );
        self.send(
            peer,
            PeerMessage::FundingCreated {
                temporary_channel_id: temp,
                channel_id,
                funding_tx,
                funding_outpoint: outpoint,
                signature: their_first,
            },
        );
    }

    fn fail_funding(&mut self, peer: Pubkey, temp: Hash32, reason: String) {
        self.set_state(temp, ChannelState::Closed(flags::FUNDING_ABORTED));
        self.send_error(peer, Some(temp), format!("funding aborted: {reason}"));
    }

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
    fn verify_our_commitment(
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

    pub(super) fn on_funding_created(&mut self, peer: Pubkey, message: PeerMessage) {
        let PeerMessage::FundingCreated {
            temporary_channel_id: temp,
            channel_id,
            funding_tx,
            funding_outpoint,
            signature,
        } = message
        else {
            return;
        };
        let Some(mut data) = self.data(&temp).cloned() else {
            self.send_error(peer, Some(temp), "unknown channel".into());
            return;
        };
        let output = funding_tx.outputs.get(funding_outpoint.index as usize);
        let valid = !data.opener
            && data.funding.is_none()
            && funding_tx.outpoint(funding_outpoint.index) == funding_outpoint
            && channel_id == derive_channel_id(&temp, &data.remote_keys.funding, &self.me)
            && funding_tx.kind == TxKind::Funding { channel_id }
            && output
                .is_some_and(|o| o.amount == data.funding_amount && o.lock == data.funding_lock());
        if !valid {
            self.send_error(
                peer,
                Some(temp),
                "funding transaction does not match the channel".into(),
            );
            return;
        }
        data.funding = Some(crate::channel::Funding {
            tx: funding_tx,
            outpoint: funding_outpoint,
            confirmed_at: None,
        });
        if let Err(e) = self.verify_our_commitment(&data, channel_id, 0, 0, 0, &signature) {
            self.send_error(peer, Some(temp), e.to_string());
            return;
        }
        data.our_commitment.peer_signature = Some(signature);
        let reply = match self.sign_their_commitment(&data, channel_id, 0, 0, 0) {
            Ok(sig) => sig,
            Err(e) => {
                self.send_error(peer, Some(temp), e.to_string());
                return;
            }
        };
        if let Some(slot) = self.data_mut(&temp) {
            *slot = data;
        }
        self.rekey(temp, channel_id);
        self.set_state(channel_id, ChannelState::AwaitingChannelReady(0));
        self.send(
            peer,
            PeerMessage::FundingSigned {
                channel_id,
                signature: reply,
            },
        );
    }

    pub(super) fn on_funding_signed(
        &mut self,
        peer: Pubkey,
        channel_id: Hash32,
        signature: dlp_chain::Sig,
    ) {
        let Some(data) = self.data(&channel_id).cloned() else {
            self.send_error(peer, Some(channel_id), "unknown channel".into());
            return;
        };
        if !data.opener || data.our_commitment.peer_signature.is_some() {
            self.send_error(peer, Some(channel_id), "unexpected FundingSigned".into());
            return;
        }
        if let Err(e) = self.verify_our_commitment(&data, channel_id, 0, 0, 0, &signature) {
            self.send_error(peer, Some(channel_id), e.to_string());
            return;
        }
        let Some(funding) = data.funding.clone() else {
            return;
        };
        // We hold a signed commitment now: the funding is safe to broadcast.
        let mut tx = funding.tx;
        let sighash = tx.sighash();
        let sig = sign_digest(self.ctx.keys().wallet_secret(), &sighash);
        for input in &mut tx.inputs {
            input.witness = Witness::Key { sig };
        }
        if let Some(d) = self.data_mut(&channel_id) {
            d.our_commitment.peer_signature = Some(signature);
        }
        self.set_state(channel_id, ChannelState::AwaitingChannelReady(0));
        self.fx.txs.push((tx, None));
    }

    /// The funding confirmed (seen by the chain watcher): say ChannelReady.
    pub(super) fn on_funding_confirmed(&mut self, channel_id: Hash32, height: u64) {
        let Some(peer) = self.peer_of(&channel_id) else {
            return;
        };
        let Some(data) = self.data_mut(&channel_id) else {
            return;
        };
        if let Some(f) = data.funding.as_mut() {
            f.confirmed_at = Some(height);
        }
        if data.our_channel_ready_sent {
            return;
        }
        data.our_channel_ready_sent = true;
        let theirs = data.their_channel_ready_received;
        if theirs {
            self.set_state(channel_id, ChannelState::ChannelReady);
        } else {
            self.set_state(
                channel_id,
                ChannelState::AwaitingChannelReady(flags::OUR_CHANNEL_READY),
            );
        }
        self.mark_dirty(channel_id);
        self.send(peer, PeerMessage::ChannelReady { channel_id });
    }

    pub(super) fn on_channel_ready(&mut self, peer: Pubkey, channel_id: Hash32) {
        let Some(data) = self.data_mut(&channel_id) else {
            self.send_error(peer, Some(channel_id), "unknown channel".into());
            return;
        };
        data.their_channel_ready_received = true;
        let ours = data.our_channel_ready_sent;
        if ours {
            if matches!(
                self.state_of(&channel_id),
                Some(ChannelState::AwaitingChannelReady(_))
            ) {
                self.set_state(channel_id, ChannelState::ChannelReady);
            }
        } else {
            self.set_state(
                channel_id,
                ChannelState::AwaitingChannelReady(flags::THEIR_CHANNEL_READY),
            );
        }
        self.mark_dirty(channel_id);
    }

    // ---------------------------------------------------------------- updates

    /// True when the channel can carry new TLCs.
    pub(super) fn usable_for_payments(&self, id: &Hash32) -> Result<(), String> {
        match self.state_of(id) {
            Some(ChannelState::ChannelReady) => {}
            Some(ChannelState::Stale) => {
                return Err(if self.audit_failed.contains(id) {
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
        if self.awaiting_reestablish.contains(id) {
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
        onion: crate::wire::Onion,
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

    /// Sign the peer's next commitment if it lacks anything and nothing is in flight.
    pub(super) fn maybe_send_commitment(&mut self, channel_id: Hash32) {
        if !matches!(
            self.state_of(&channel_id),
            Some(ChannelState::ChannelReady | ChannelState::ShuttingDown(_))
        ) || self.awaiting_reestablish.contains(&channel_id)
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
        self.on_outgoing_tlc_resolved(channel_id, &tlc, &reason);
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
    fn after_commitment_progress(&mut self, channel_id: Hash32) {
        self.process_committed_incoming(channel_id);
        self.try_closing_signed(channel_id);
    }

    // ---------------------------------------------------------------- closing

    pub(super) fn shutdown_channel(
        &mut self,
        channel_id: Hash32,
        force: bool,
    ) -> Result<(), String> {
        let state = self
            .state_of(&channel_id)
            .ok_or_else(|| format!("unknown channel {channel_id}"))?;
        if state == ChannelState::Stale {
            return Err(if self.audit_failed.contains(&channel_id) {
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
        ) {
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
            self.fx.txs.push((full, None));
        }
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
        self.fx.txs.push((tx, Some(number)));
        Ok(())
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
        // Stale channels hear nothing but the peer's ReestablishChannel; reestablishing ones
        // wait for it before anything else (Fiber ignores other messages meanwhile).
        if let Some(id) = channel_id
            && !matches!(
                message,
                PeerMessage::ReestablishChannel { .. }
                    | PeerMessage::Error { .. }
                    | PeerMessage::RequestForceClose { .. }
            )
        {
            let reason = if self.state_of(&id) == Some(ChannelState::Stale) {
                Some("channel is Stale: waiting for the peer's ReestablishChannel")
            } else if self.awaiting_reestablish.contains(&id) {
                Some("channel is reestablishing: waiting for the peer's ReestablishChannel")
            } else {
                None
            };
            if let Some(reason) = reason {
                self.fx.events.push(EventKind::MessageIgnored {
                    peer,
                    msg_type: message.type_name().into(),
                    channel_id: Some(id),
                    reason: reason.into(),
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

    fn on_request_force_close(&mut self, peer: Pubkey, channel_id: Hash32) {
        if let Some(ChannelState::ChannelReady | ChannelState::ShuttingDown(_)) =
            self.state_of(&channel_id)
        {
            tracing::info!(%peer, %channel_id, "peer lost data and asks us to force-close");
            if let Err(e) = self.force_close(channel_id) {
                self.error_event(Some(channel_id), e);
            }
        }
    }
}
