//! Opening a channel: proposal and acceptance, the funding transaction, the first
//! commitments, ChannelReady after confirmation.

use std::collections::{BTreeMap, HashMap, HashSet};

use dlp_chain::{
    Hash32, Lock, OutPoint, Output, Pubkey, Transaction, TxKind, Witness, sign_digest,
};

use super::Core;
use super::channels::derive_channel_id;
use crate::channel::{ChannelData, PartyKeys};
use crate::channel_record::{ChannelId, ChannelRecord, ChannelState, flags};
use crate::wire::PeerMessage;

/// Channels being opened, as far as this run knows (not persisted: a proposal ends with its
/// connection, a reservation with the run).
#[derive(Debug, Default)]
pub(super) struct OpenState {
    /// Incoming channel proposals waiting for `accept_channel`.
    pub(super) proposals: HashMap<Hash32, (Pubkey, PeerMessage)>,
    /// Wallet outputs a funding transaction of this run spends: never offered to another.
    pub(super) reserved_outpoints: HashSet<OutPoint>,
}

impl Core {
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
            .filter(|u| !self.opening.reserved_outpoints.contains(&u.outpoint))
            .map(|u| u.output.amount)
            .sum();
        if spendable < funding_amount {
            return Err(format!(
                "wallet {} has {spendable} shannons available, {funding_amount} needed",
                self.wallet
            ));
        }
        let temporary_id = self.random32("temporary_channel_id");
        let data = ChannelData::new(
            true,
            temporary_id,
            funding_amount,
            self.config.channel.to_self_delay,
            PartyKeys {
                funding: self.me,
                payout: self.wallet,
            },
            // The acceptor's keys arrive with AcceptChannel.
            PartyKeys {
                funding: peer,
                payout: peer,
            },
            BTreeMap::new(),
        );
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

    pub(super) fn insert_channel(
        &mut self,
        id: Hash32,
        peer: Pubkey,
        state: ChannelState,
        data: ChannelData,
    ) {
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
    pub(super) fn rekey(&mut self, from: Hash32, to: Hash32) {
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
            self.opening.proposals.insert(id, (peer, message));
            if let Err(e) = self.accept_proposal(id) {
                self.send_error(peer, Some(id), e);
            }
        } else {
            tracing::info!(%peer, temporary_channel_id = %id, "channel proposal waits for accept_channel");
            self.opening.proposals.insert(id, (peer, message));
        }
    }

    pub(super) fn accept_proposal(&mut self, temporary_id: Hash32) -> Result<Hash32, String> {
        let (peer, message) = self
            .opening
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
        let data = ChannelData::new(
            false,
            temporary_id,
            funding_amount,
            to_self_delay,
            PartyKeys {
                funding: self.me,
                payout: self.wallet,
            },
            PartyKeys {
                funding: funding_pubkey,
                payout: payout_pubkey,
            },
            their_revocation_hashes,
        );
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
            if self.opening.reserved_outpoints.contains(&u.outpoint) {
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
            self.opening.reserved_outpoints.insert(*input);
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

    pub(super) fn fail_funding(&mut self, peer: Pubkey, temp: Hash32, reason: String) {
        self.set_state(temp, ChannelState::Closed(flags::FUNDING_ABORTED));
        self.send_error(peer, Some(temp), format!("funding aborted: {reason}"));
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
        self.broadcast(tx, None);
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
}
