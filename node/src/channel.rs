//! The channel model: keys, funding, the two update logs and the commitments built from them.
//!
//! Pure data and functions, no I/O, so the money rules are unit-testable in isolation.
//!
//! ## Updates and commitments
//! Each side proposes updates (add a TLC, remove a TLC the other side offered) into its own log.
//! A commitment is identified by how many updates of each log it includes; its content (balances
//! and pending TLCs) is a pure function of those two counts, so both parties compute the same
//! transaction. `CommitmentSigned` names the counts explicitly. The signer of the holder's next
//! commitment includes all of its own updates and those of the holder's updates that are in the
//! signer's own current commitment (i.e. that the signer has already accepted), which is
//! Lightning's rule expressed with counts.
//!
//! ## Commitment numbers (Fiber's semantics)
//! `local_commitment_number` = RevokeAndAcks received = the peer's current commitment number;
//! `remote_commitment_number` = RevokeAndAcks sent = our current commitment number. Two nodes in
//! sync have `my.local == peer.remote` and `my.remote == peer.local`.
//!
//! ## Compaction
//! Updates included in both current commitments (with nothing pending) are folded into a base
//! state, so a record stays small however many payments went through.

use std::collections::BTreeMap;

use dlp_chain::{
    Hash32, Lock, OutPoint, Output, Pubkey, Sig, Transaction, TxKind, Witness, hex_u64,
};
use serde::{Deserialize, Serialize};

use crate::onion::OnionPacket;
use crate::wire::RemoveReason;

/// One side's keys in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartyKeys {
    /// Signs commitments and the funding 2-of-2 (the node key).
    pub(crate) funding: Pubkey,
    /// Where closed-channel funds go (the wallet key).
    pub(crate) payout: Pubkey,
}

/// Where one of our TLCs came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum TlcOrigin {
    /// Our own payment.
    Payment,
    /// Forwarded from an incoming TLC.
    Forward { channel_id: Hash32, tlc_id: u64 },
}

/// A pending TLC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tlc {
    pub(crate) offered_by_us: bool,
    #[serde(with = "hex_u64")]
    pub(crate) id: u64,
    #[serde(with = "hex_u64")]
    pub(crate) amount: u64,
    pub(crate) payment_hash: Hash32,
    #[serde(with = "hex_u64")]
    pub(crate) expiry: u64,
    pub(crate) onion: OnionPacket,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) origin: Option<TlcOrigin>,
}

/// One proposed change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Update {
    /// A TLC offered by the proposer.
    Add(Tlc),
    /// The proposer removes a TLC the other side offered.
    Remove {
        #[serde(with = "hex_u64")]
        tlc_id: u64,
        reason: RemoveReason,
    },
}

/// Balances and TLCs at some point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChannelBalances {
    #[serde(with = "hex_u64")]
    pub(crate) local: u64,
    #[serde(with = "hex_u64")]
    pub(crate) remote: u64,
    pub(crate) tlcs: Vec<Tlc>,
}

/// A commitment: its number, the update counts it includes, and for ours the peer's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Commitment {
    #[serde(with = "hex_u64")]
    pub(crate) number: u64,
    /// Updates proposed by us that it includes.
    #[serde(with = "hex_u64")]
    pub(crate) ours: u64,
    /// Updates proposed by the peer that it includes.
    #[serde(with = "hex_u64")]
    pub(crate) theirs: u64,
    /// On our commitments: the peer's signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) peer_signature: Option<Sig>,
}

/// Funding transaction details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Funding {
    pub(crate) tx: Transaction,
    pub(crate) outpoint: OutPoint,
    /// Block height of confirmation, once seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) confirmed_at: Option<u64>,
}

/// Cooperative close progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShutdownProgress {
    pub(crate) our_shutdown_sent: bool,
    pub(crate) their_shutdown_received: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) their_closing_signature: Option<Sig>,
    pub(crate) closing_signed_sent: bool,
}

/// What happened on chain to a closed channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OnChainClose {
    /// The transaction that spent the funding output.
    pub(crate) txid: Hash32,
    pub(crate) kind: String,
    /// Block height of that transaction, once confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) confirmed_at: Option<u64>,
    /// Outputs of it that we still have to claim.
    #[serde(default)]
    pub(crate) to_claim: Vec<OutPoint>,
    /// The transaction itself (to build claims from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tx: Option<Transaction>,
    /// For a revoked commitment of the peer: its number (whose secret we hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revoked_number: Option<u64>,
}

/// Everything the protocol keeps about a channel (persisted inside the channel record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChannelData {
    pub(crate) opener: bool,
    pub(crate) temporary_id: Hash32,
    #[serde(with = "hex_u64")]
    pub(crate) funding_amount: u64,
    /// Blocks a commitment holder waits before sweeping its own balance.
    #[serde(with = "hex_u64")]
    pub(crate) to_self_delay: u64,
    pub(crate) local_keys: PartyKeys,
    pub(crate) remote_keys: PartyKeys,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) funding: Option<Funding>,
    /// Folded state and how many updates of each log it holds.
    pub(crate) base: ChannelBalances,
    #[serde(with = "hex_u64")]
    pub(crate) base_ours: u64,
    #[serde(with = "hex_u64")]
    pub(crate) base_theirs: u64,
    /// Our updates after the base.
    pub(crate) our_log: Vec<Update>,
    /// The peer's updates after the base.
    pub(crate) their_log: Vec<Update>,
    /// Our current commitment (the peer signed it).
    pub(crate) our_commitment: Commitment,
    /// The peer's current commitment as far as we know (the peer revoked its predecessor).
    pub(crate) their_commitment: Commitment,
    /// The peer's next commitment, signed by us, before its RevokeAndAck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) their_pending: Option<Commitment>,
    /// Revocation hashes the peer gave for its commitments (current and next).
    pub(crate) their_revocation_hashes: BTreeMap<u64, Hash32>,
    /// When our last CommitmentSigned and RevokeAndAck were both unacknowledged: true if the
    /// CommitmentSigned went first (resend order on reestablish).
    #[serde(default)]
    pub(crate) commitment_sent_first: bool,
    #[serde(with = "hex_u64")]
    pub(crate) next_tlc_id: u64,
    #[serde(default)]
    pub(crate) our_channel_ready_sent: bool,
    #[serde(default)]
    pub(crate) their_channel_ready_received: bool,
    #[serde(default)]
    pub(crate) shutdown: ShutdownProgress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) on_chain: Option<OnChainClose>,
    /// Ids of the peer's TLCs we already acted on (fulfilled, failed or forwarded).
    #[serde(default)]
    pub(crate) handled_incoming: std::collections::BTreeSet<u64>,
    /// Our TLCs the peer failed, waiting until that removal is in both current commitments
    /// before we act on it (fail upstream or retry): until then the peer could still broadcast
    /// a commitment holding the TLC and claim it.
    #[serde(default)]
    pub(crate) pending_fails: BTreeMap<u64, (Tlc, RemoveReason)>,
}

/// An invalid update, commitment or count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ProtocolViolation(pub(crate) String);

fn violation(text: impl Into<String>) -> ProtocolViolation {
    ProtocolViolation(text.into())
}

impl ChannelData {
    /// A new single-funded channel: the opener holds the whole `funding_amount`, no updates,
    /// both commitments at number 0.
    pub(crate) fn new(
        opener: bool,
        temporary_id: Hash32,
        funding_amount: u64,
        to_self_delay: u64,
        local_keys: PartyKeys,
        remote_keys: PartyKeys,
        their_revocation_hashes: BTreeMap<u64, Hash32>,
    ) -> Self {
        let first = Commitment {
            number: 0,
            ours: 0,
            theirs: 0,
            peer_signature: None,
        };
        let (local, remote) = if opener {
            (funding_amount, 0)
        } else {
            (0, funding_amount)
        };
        ChannelData {
            opener,
            temporary_id,
            funding_amount,
            to_self_delay,
            local_keys,
            remote_keys,
            funding: None,
            base: ChannelBalances {
                local,
                remote,
                tlcs: vec![],
            },
            base_ours: 0,
            base_theirs: 0,
            our_log: vec![],
            their_log: vec![],
            our_commitment: first,
            their_commitment: first,
            their_pending: None,
            their_revocation_hashes,
            commitment_sent_first: false,
            next_tlc_id: 0,
            our_channel_ready_sent: false,
            their_channel_ready_received: false,
            shutdown: ShutdownProgress::default(),
            on_chain: None,
            handled_incoming: Default::default(),
            pending_fails: BTreeMap::new(),
        }
    }

    /// Total updates we ever proposed.
    pub(crate) fn our_total(&self) -> u64 {
        self.base_ours + self.our_log.len() as u64
    }

    /// Total updates the peer ever proposed (that we still know).
    pub(crate) fn their_total(&self) -> u64 {
        self.base_theirs + self.their_log.len() as u64
    }

    /// Fiber's local commitment number.
    pub(crate) fn local_commitment_number(&self) -> u64 {
        self.their_commitment.number
    }

    /// Fiber's remote commitment number.
    pub(crate) fn remote_commitment_number(&self) -> u64 {
        self.our_commitment.number
    }

    /// Balances and TLCs with `ours` of our updates and `theirs` of the peer's applied.
    pub(crate) fn balances_at(
        &self,
        ours: u64,
        theirs: u64,
    ) -> Result<ChannelBalances, ProtocolViolation> {
        if ours < self.base_ours || theirs < self.base_theirs {
            return Err(violation(format!(
                "counts ({ours}, {theirs}) are below the settled base ({}, {})",
                self.base_ours, self.base_theirs
            )));
        }
        if ours > self.our_total() || theirs > self.their_total() {
            return Err(violation(format!(
                "counts ({ours}, {theirs}) exceed the known updates ({}, {})",
                self.our_total(),
                self.their_total()
            )));
        }
        let mine = &self.our_log[..(ours - self.base_ours) as usize];
        let peers = &self.their_log[..(theirs - self.base_theirs) as usize];
        apply_updates(&self.base, mine, peers)
    }

    /// Balances after every known update (what the next commitments will hold at most).
    pub(crate) fn latest_balances(&self) -> Result<ChannelBalances, ProtocolViolation> {
        self.balances_at(self.our_total(), self.their_total())
    }

    /// The funding outpoint (set once the funding transaction exists).
    pub(crate) fn funding_outpoint(&self) -> Option<OutPoint> {
        self.funding.as_ref().map(|f| f.outpoint)
    }

    fn opener_keys(&self) -> (&PartyKeys, &PartyKeys) {
        if self.opener {
            (&self.local_keys, &self.remote_keys)
        } else {
            (&self.remote_keys, &self.local_keys)
        }
    }

    /// The funding output's lock.
    pub(crate) fn funding_lock(&self) -> Lock {
        let (a, b) = self.opener_keys();
        Lock::MultiSig {
            a: a.funding,
            b: b.funding,
        }
    }

    /// The commitment transaction of `holder_is_us ? us : peer` with the given content.
    /// `revocation_hash` is the holder's hash for `number`.
    pub(crate) fn commitment_tx(
        &self,
        channel_id: Hash32,
        holder_is_us: bool,
        number: u64,
        balances: &ChannelBalances,
        revocation_hash: Hash32,
    ) -> Result<Transaction, ProtocolViolation> {
        let funding = self
            .funding_outpoint()
            .ok_or_else(|| violation("no funding transaction yet"))?;
        let (holder, other, holder_balance, other_balance) = if holder_is_us {
            (
                &self.local_keys,
                &self.remote_keys,
                balances.local,
                balances.remote,
            )
        } else {
            (
                &self.remote_keys,
                &self.local_keys,
                balances.remote,
                balances.local,
            )
        };
        let mut outputs = Vec::new();
        if holder_balance > 0 {
            outputs.push(Output {
                amount: holder_balance,
                lock: Lock::Delayed {
                    owner: holder.funding,
                    delay: self.to_self_delay,
                    revoker: other.funding,
                    revocation_hash,
                },
            });
        }
        if other_balance > 0 {
            outputs.push(Output {
                amount: other_balance,
                lock: Lock::Key {
                    pubkey: other.payout,
                },
            });
        }
        let mut tlcs: Vec<&Tlc> = balances.tlcs.iter().collect();
        let offerer_key = |t: &Tlc| {
            if t.offered_by_us {
                self.local_keys.funding
            } else {
                self.remote_keys.funding
            }
        };
        tlcs.sort_by_key(|t| (offerer_key(t), t.id));
        for tlc in tlcs {
            let (offerer, receiver) = if tlc.offered_by_us {
                (self.local_keys.funding, self.remote_keys.funding)
            } else {
                (self.remote_keys.funding, self.local_keys.funding)
            };
            outputs.push(Output {
                amount: tlc.amount,
                lock: Lock::Tlc {
                    offerer,
                    receiver,
                    payment_hash: tlc.payment_hash,
                    expiry: tlc.expiry,
                    revoker: other.funding,
                    revocation_hash,
                },
            });
        }
        Ok(Transaction::unsigned(
            TxKind::Commitment {
                channel_id,
                holder: holder.funding,
                number,
            },
            &[funding],
            outputs,
        ))
    }

    /// The cooperative close transaction for the latest settled balances.
    pub(crate) fn closing_tx(
        &self,
        channel_id: Hash32,
        balances: &ChannelBalances,
    ) -> Result<Transaction, ProtocolViolation> {
        let funding = self
            .funding_outpoint()
            .ok_or_else(|| violation("no funding transaction yet"))?;
        if !balances.tlcs.is_empty() {
            return Err(violation("cannot close with pending TLCs"));
        }
        let (opener, acceptor) = self.opener_keys();
        let (opener_amount, acceptor_amount) = if self.opener {
            (balances.local, balances.remote)
        } else {
            (balances.remote, balances.local)
        };
        let mut outputs = Vec::new();
        for (keys, amount) in [(opener, opener_amount), (acceptor, acceptor_amount)] {
            if amount > 0 {
                outputs.push(Output {
                    amount,
                    lock: Lock::Key {
                        pubkey: keys.payout,
                    },
                });
            }
        }
        Ok(Transaction::unsigned(
            TxKind::CooperativeClose { channel_id },
            &[funding],
            outputs,
        ))
    }

    /// Put both signatures on a transaction spending the funding output.
    pub(crate) fn with_funding_witness(
        &self,
        mut tx: Transaction,
        ours: Sig,
        theirs: Sig,
    ) -> Transaction {
        let (sig_a, sig_b) = if self.opener {
            (ours, theirs)
        } else {
            (theirs, ours)
        };
        if let Some(input) = tx.inputs.first_mut() {
            input.witness = Witness::MultiSig { sig_a, sig_b };
        }
        tx
    }

    /// Fold updates that both current commitments include into the base.
    pub(crate) fn compact(&mut self) {
        if self.their_pending.is_some() {
            return;
        }
        let ours = self.our_commitment.ours.min(self.their_commitment.ours);
        let theirs = self.our_commitment.theirs.min(self.their_commitment.theirs);
        if ours == self.base_ours && theirs == self.base_theirs {
            return;
        }
        let Ok(base) = self.balances_at(ours, theirs) else {
            return;
        };
        self.our_log.drain(..(ours - self.base_ours) as usize);
        self.their_log.drain(..(theirs - self.base_theirs) as usize);
        self.base = base;
        self.base_ours = ours;
        self.base_theirs = theirs;
        self.drop_spent_onions();
    }

    /// Forget the onions no one will read again: those of folded TLCs we offered (in both
    /// commitments, so never offered again) and of folded peer TLCs we already acted on. An
    /// onion is the biggest part of a TLC (about 0.5 KiB a hop, hex in the record), and a
    /// record is rewritten at every step of the channel, so a channel with many TLCs in flight
    /// would otherwise carry every route's onion through every write.
    pub(crate) fn drop_spent_onions(&mut self) {
        for tlc in &mut self.base.tlcs {
            if (tlc.offered_by_us || self.handled_incoming.contains(&tlc.id))
                && !tlc.onion.0.is_empty()
            {
                tlc.onion = OnionPacket(Vec::new());
            }
        }
    }

    /// Drop the peer's updates that no commitment we hold includes (on disconnect: the peer
    /// will resend them).
    pub(crate) fn forget_uncommitted_peer_updates(&mut self) {
        let keep = self
            .our_commitment
            .theirs
            .max(self.their_commitment.theirs)
            .max(self.their_pending.map_or(0, |c| c.theirs));
        let keep = keep.saturating_sub(self.base_theirs) as usize;
        self.their_log.truncate(keep.min(self.their_log.len()));
        // Fails that were forgotten will be sent again.
        let log = &self.their_log;
        self.pending_fails.retain(|id, _| {
            log.iter()
                .any(|u| matches!(u, Update::Remove { tlc_id, .. } if tlc_id == id))
        });
    }

    /// Whether the peer's removal of our TLC `tlc_id` is in both current commitments.
    pub(crate) fn removal_committed(&self, tlc_id: u64) -> bool {
        let committed = self.our_commitment.theirs.min(self.their_commitment.theirs);
        match self
            .their_log
            .iter()
            .position(|u| matches!(u, Update::Remove { tlc_id: id, .. } if *id == tlc_id))
        {
            Some(pos) => self.base_theirs + (pos as u64) < committed,
            // Folded into the base: committed, provided the TLC is gone.
            None => !self
                .base
                .tlcs
                .iter()
                .any(|t| t.offered_by_us && t.id == tlc_id),
        }
    }

    /// A TLC pending in the latest state, by who offered it and its id.
    pub(crate) fn find_tlc(&self, offered_by_us: bool, id: u64) -> Option<Tlc> {
        self.latest_balances().ok().and_then(|b| {
            b.tlcs
                .into_iter()
                .find(|t| t.offered_by_us == offered_by_us && t.id == id)
        })
    }
}

/// Apply updates (all adds first, then all removes) to a base state.
pub(crate) fn apply_updates(
    base: &ChannelBalances,
    ours: &[Update],
    theirs: &[Update],
) -> Result<ChannelBalances, ProtocolViolation> {
    let mut state = base.clone();
    for (by_us, log) in [(true, ours), (false, theirs)] {
        for update in log {
            if let Update::Add(tlc) = update {
                if tlc.offered_by_us != by_us {
                    return Err(violation("TLC direction does not match its log"));
                }
                let balance = if by_us {
                    &mut state.local
                } else {
                    &mut state.remote
                };
                *balance = balance.checked_sub(tlc.amount).ok_or_else(|| {
                    violation(format!(
                        "TLC {} of {} exceeds the offerer's balance",
                        tlc.id, tlc.amount
                    ))
                })?;
                state.tlcs.push(tlc.clone());
            }
        }
    }
    for (by_us, log) in [(true, ours), (false, theirs)] {
        for update in log {
            if let Update::Remove { tlc_id, reason } = update {
                // We remove TLCs the peer offered, and vice versa.
                let offered_by_us = !by_us;
                let pos = state
                    .tlcs
                    .iter()
                    .position(|t| t.offered_by_us == offered_by_us && t.id == *tlc_id)
                    .ok_or_else(|| violation(format!("remove of unknown TLC {tlc_id}")))?;
                let tlc = state.tlcs.remove(pos);
                let paid = matches!(reason, RemoveReason::Fulfill { .. });
                let to_local = offered_by_us != paid;
                if to_local {
                    state.local += tlc.amount;
                } else {
                    state.remote += tlc.amount;
                }
            }
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(by_us: bool, id: u64, amount: u64) -> Update {
        Update::Add(Tlc {
            offered_by_us: by_us,
            id,
            amount,
            payment_hash: Hash32([id as u8; 32]),
            expiry: 100,
            onion: OnionPacket(vec![]),
            origin: None,
        })
    }

    fn fulfill(id: u64) -> Update {
        Update::Remove {
            tlc_id: id,
            reason: RemoveReason::Fulfill {
                preimage: Hash32([0; 32]),
            },
        }
    }

    fn fail(id: u64) -> Update {
        Update::Remove {
            tlc_id: id,
            reason: RemoveReason::Fail {
                message: "no".into(),
                failed_channel: None,
            },
        }
    }

    fn base(local: u64, remote: u64) -> ChannelBalances {
        ChannelBalances {
            local,
            remote,
            tlcs: vec![],
        }
    }

    #[test]
    fn compaction_forgets_the_onions_no_one_reads_again() {
        let keys = PartyKeys {
            funding: Pubkey([2; 33]),
            payout: Pubkey([3; 33]),
        };
        let mut data =
            ChannelData::new(true, Hash32([1; 32]), 1_000, 6, keys, keys, BTreeMap::new());
        let with_onion = |by_us: bool, id: u64| {
            let Update::Add(mut tlc) = add(by_us, id, 10) else {
                unreachable!()
            };
            tlc.onion = OnionPacket(vec![7; 100]);
            Update::Add(tlc)
        };
        data.our_log = vec![with_onion(true, 0)];
        // The peer's TLCs 0 and 1; we acted on 0 only. (The peer needs a balance to offer.)
        data.base.remote = 100;
        data.base.local = 900;
        data.their_log = vec![with_onion(false, 0), with_onion(false, 1)];
        data.handled_incoming.insert(0);
        let both = Commitment {
            number: 1,
            ours: 1,
            theirs: 2,
            peer_signature: None,
        };
        data.our_commitment = both;
        data.their_commitment = both;
        data.compact();
        let onion_of = |data: &ChannelData, by_us: bool, id: u64| {
            data.base
                .tlcs
                .iter()
                .find(|t| t.offered_by_us == by_us && t.id == id)
                .map(|t| t.onion.0.len())
        };
        assert_eq!(
            onion_of(&data, true, 0),
            Some(0),
            "ours, in both commitments"
        );
        assert_eq!(onion_of(&data, false, 0), Some(0), "theirs, acted on");
        assert_eq!(
            onion_of(&data, false, 1),
            Some(100),
            "theirs, still to be read"
        );
        data.handled_incoming.insert(1);
        data.drop_spent_onions();
        assert_eq!(onion_of(&data, false, 1), Some(0));
    }

    #[test]
    fn fulfilled_tlcs_move_money_and_failed_ones_return_it() {
        let s = apply_updates(&base(100, 0), &[add(true, 0, 30)], &[]).expect("valid");
        assert_eq!((s.local, s.remote, s.tlcs.len()), (70, 0, 1));
        let paid = apply_updates(&base(100, 0), &[add(true, 0, 30)], &[fulfill(0)]).expect("valid");
        assert_eq!((paid.local, paid.remote, paid.tlcs.len()), (70, 30, 0));
        let failed = apply_updates(&base(100, 0), &[add(true, 0, 30)], &[fail(0)]).expect("valid");
        assert_eq!((failed.local, failed.remote), (100, 0));
        // Incoming TLC we fulfil: the money is ours.
        let incoming =
            apply_updates(&base(50, 50), &[fulfill(4)], &[add(false, 4, 20)]).expect("ok");
        assert_eq!((incoming.local, incoming.remote), (70, 30));
    }

    #[test]
    fn overspending_and_unknown_removes_are_violations() {
        assert!(apply_updates(&base(10, 0), &[add(true, 0, 11)], &[]).is_err());
        assert!(apply_updates(&base(10, 0), &[], &[fulfill(3)]).is_err());
        // A remove of our TLC must come from the peer's log, not ours.
        assert!(apply_updates(&base(10, 0), &[add(true, 0, 5), fulfill(0)], &[]).is_err());
    }

    #[test]
    fn applying_in_two_steps_equals_applying_at_once() {
        let ours = [add(true, 0, 10), add(true, 1, 5), fulfill(0)];
        let theirs = [add(false, 0, 7), fulfill(1), fail(0)];
        let all = apply_updates(&base(50, 50), &ours, &theirs).expect("valid");
        let first = apply_updates(&base(50, 50), &ours[..2], &theirs[..1]).expect("valid");
        let second = apply_updates(&first, &ours[2..], &theirs[1..]).expect("valid");
        assert_eq!(all, second);
    }
}
