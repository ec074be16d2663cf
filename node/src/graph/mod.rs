//! The channel graph: what a node knows of other nodes' public channels, learned from gossip.
//!
//! Pathfinding needs to know channels the node is not part of. Every channel is announced once
//! both ends are ChannelReady: a [`ChannelAnnouncement`] signed by both node keys (which are
//! also the keys of the funding 2-of-2), and per direction a [`ChannelUpdate`] signed by the
//! node that forwards in that direction (its fee rate, expiry delta and whether it forwards at
//! all). A node accepts an announcement only when both signatures verify and the ledger holds
//! the funding output it names: confirmed, unspent, locked to exactly those two keys, of exactly
//! that capacity, in a funding transaction for that channel id. An update is accepted only for
//! a known channel, signed by its side's node, and newer (by timestamp) than the one it has.
//!
//! This module is pure (no I/O): the ledger check is done by the core, which owns the chain
//! client, through [`check_funding`]. The graph is persisted (one record per channel under
//! [`GRAPH_CHANNEL_PREFIX`]), survives a restart, and is dropped by a restore: a restored
//! node rebuilds it from what its peers send, so it never prefers the backup's old view to
//! fresh updates.

pub(crate) mod pathfind;

use std::collections::BTreeMap;

use dlp_chain::{Hash32, Lock, OutPoint, Pubkey, Sig, TxKind, TxRecord, hex_u64, verify_digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Key prefix of graph records: `0x70 ++ channel_id`, the JSON of a [`GraphChannel`].
pub(crate) const GRAPH_CHANNEL_PREFIX: u8 = 0x70;
/// Most channels a graph holds; announcements beyond it are refused (bounds memory and disk
/// against a peer that floods valid-looking announcements).
pub(crate) const MAX_GRAPH_CHANNELS: usize = 100_000;

/// A public channel, signed by both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelAnnouncement {
    pub(crate) channel_id: Hash32,
    pub(crate) funding_outpoint: OutPoint,
    #[serde(with = "hex_u64")]
    pub(crate) capacity: u64,
    /// The bytewise-lower node key.
    pub(crate) node_1: Pubkey,
    pub(crate) node_2: Pubkey,
    pub(crate) node_1_signature: Sig,
    pub(crate) node_2_signature: Sig,
}

impl ChannelAnnouncement {
    /// What both nodes sign.
    pub(crate) fn digest(
        channel_id: &Hash32,
        outpoint: &OutPoint,
        capacity: u64,
        node_1: &Pubkey,
        node_2: &Pubkey,
    ) -> Hash32 {
        let mut h = Sha256::new();
        h.update(b"dlp/channel-announcement/v1");
        h.update(channel_id.0);
        h.update(outpoint.txid.0);
        h.update(outpoint.index.to_be_bytes());
        h.update(capacity.to_be_bytes());
        h.update(node_1.0);
        h.update(node_2.0);
        Hash32(h.finalize().into())
    }

    fn own_digest(&self) -> Hash32 {
        Self::digest(
            &self.channel_id,
            &self.funding_outpoint,
            self.capacity,
            &self.node_1,
            &self.node_2,
        )
    }

    /// Both signatures, and the order of the keys.
    pub(crate) fn check_signatures(&self) -> Result<(), GossipError> {
        if self.node_1 >= self.node_2 {
            return Err(GossipError::Forged(
                "node_1 must be the bytewise-lower key of two different keys".into(),
            ));
        }
        let digest = self.own_digest();
        if !verify_digest(&self.node_1, &digest, &self.node_1_signature) {
            return Err(GossipError::Forged(
                "node_1's signature does not verify".into(),
            ));
        }
        if !verify_digest(&self.node_2, &digest, &self.node_2_signature) {
            return Err(GossipError::Forged(
                "node_2's signature does not verify".into(),
            ));
        }
        Ok(())
    }

    /// Whether `node` is one of the ends, and which (0 for node_1, 1 for node_2).
    pub(crate) fn side_of(&self, node: &Pubkey) -> Option<usize> {
        if *node == self.node_1 {
            Some(0)
        } else if *node == self.node_2 {
            Some(1)
        } else {
            None
        }
    }
}

/// One direction's forwarding policy, signed by the node that forwards in that direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelUpdate {
    pub(crate) channel_id: Hash32,
    /// The node whose outgoing direction this is.
    pub(crate) node: Pubkey,
    /// Milliseconds since the Unix epoch; a newer update replaces an older one.
    #[serde(with = "hex_u64")]
    pub(crate) timestamp: u64,
    /// Whether `node` forwards over this channel now.
    pub(crate) enabled: bool,
    /// Fee in millionths of the forwarded amount (Fiber's `fee_rate`).
    #[serde(with = "hex_u64")]
    pub(crate) fee_rate: u64,
    /// Blocks `node` needs between the incoming and the outgoing TLC's expiry.
    #[serde(with = "hex_u64")]
    pub(crate) tlc_expiry_delta: u64,
    pub(crate) signature: Sig,
}

impl ChannelUpdate {
    /// What `node` signs.
    pub(crate) fn digest(
        channel_id: &Hash32,
        node: &Pubkey,
        timestamp: u64,
        enabled: bool,
        fee_rate: u64,
        tlc_expiry_delta: u64,
    ) -> Hash32 {
        let mut h = Sha256::new();
        h.update(b"dlp/channel-update/v1");
        h.update(channel_id.0);
        h.update(node.0);
        h.update(timestamp.to_be_bytes());
        h.update([u8::from(enabled)]);
        h.update(fee_rate.to_be_bytes());
        h.update(tlc_expiry_delta.to_be_bytes());
        Hash32(h.finalize().into())
    }

    pub(crate) fn check_signature(&self) -> Result<(), GossipError> {
        let digest = Self::digest(
            &self.channel_id,
            &self.node,
            self.timestamp,
            self.enabled,
            self.fee_rate,
            self.tlc_expiry_delta,
        );
        if verify_digest(&self.node, &digest, &self.signature) {
            Ok(())
        } else {
            Err(GossipError::Forged(format!(
                "update of channel {} is not signed by {}",
                self.channel_id, self.node
            )))
        }
    }
}

/// The fee at `fee_rate` millionths for forwarding `amount` (rounded up, saturating).
pub(crate) fn fee_for(fee_rate: u64, amount: u64) -> u64 {
    let fee = (u128::from(amount) * u128::from(fee_rate)).div_ceil(1_000_000);
    u64::try_from(fee).unwrap_or(u64::MAX)
}

/// A channel in the graph: its announcement and the latest update of each direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GraphChannel {
    pub(crate) announcement: ChannelAnnouncement,
    /// `[node_1's, node_2's]`.
    #[serde(default)]
    pub(crate) updates: [Option<ChannelUpdate>; 2],
}

/// Why a gossip message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GossipError {
    #[error("forged: {0}")]
    Forged(String),
    #[error("funding output not on the ledger as announced: {0}")]
    Funding(String),
    #[error("update for channel {0}, which this node has no announcement of")]
    UnknownChannel(Hash32),
    #[error("update from {node}, which is not an end of channel {channel_id}")]
    NotAnEnd { channel_id: Hash32, node: Pubkey },
    #[error("the graph is full ({MAX_GRAPH_CHANNELS} channels)")]
    Full,
}

/// Check an announcement against the ledger: `funding` is the ledger's record of the funding
/// transaction (if any) and `spent` whether its output is spent.
pub(crate) fn check_funding(
    announcement: &ChannelAnnouncement,
    funding: Option<&TxRecord>,
    spent: bool,
) -> Result<(), GossipError> {
    let outpoint = &announcement.funding_outpoint;
    let record = funding.ok_or_else(|| {
        GossipError::Funding(format!("no transaction {} on the ledger", outpoint.txid))
    })?;
    if record.block_height.is_none() {
        return Err(GossipError::Funding(format!(
            "transaction {} is not confirmed",
            outpoint.txid
        )));
    }
    if record.tx.kind
        != (TxKind::Funding {
            channel_id: announcement.channel_id,
        })
    {
        return Err(GossipError::Funding(format!(
            "transaction {} does not fund channel {}",
            outpoint.txid, announcement.channel_id
        )));
    }
    let index = usize::try_from(outpoint.index).unwrap_or(usize::MAX);
    let output = record.tx.outputs.get(index).ok_or_else(|| {
        GossipError::Funding(format!(
            "transaction {} has no output {index}",
            outpoint.txid
        ))
    })?;
    let (n1, n2) = (announcement.node_1, announcement.node_2);
    let locked_to_ends = match output.lock {
        Lock::MultiSig { a, b } => (a == n1 && b == n2) || (a == n2 && b == n1),
        _ => false,
    };
    if !locked_to_ends {
        return Err(GossipError::Funding(
            "the output is not a 2-of-2 of the announced nodes".into(),
        ));
    }
    if output.amount != announcement.capacity {
        return Err(GossipError::Funding(format!(
            "the output holds {}, the announcement says {}",
            output.amount, announcement.capacity
        )));
    }
    if spent {
        return Err(GossipError::Funding("the output is already spent".into()));
    }
    Ok(())
}

/// What a node knows of the public channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Graph {
    channels: BTreeMap<Hash32, GraphChannel>,
}

impl Graph {
    pub(crate) fn from_channels(channels: impl IntoIterator<Item = GraphChannel>) -> Self {
        Self {
            channels: channels
                .into_iter()
                .map(|c| (c.announcement.channel_id, c))
                .collect(),
        }
    }

    pub(crate) fn get(&self, channel_id: &Hash32) -> Option<&GraphChannel> {
        self.channels.get(channel_id)
    }

    pub(crate) fn contains(&self, channel_id: &Hash32) -> bool {
        self.channels.contains_key(channel_id)
    }

    pub(crate) fn channels(&self) -> impl Iterator<Item = &GraphChannel> {
        self.channels.values()
    }

    /// Add a checked announcement (signatures and funding already verified). `Ok(false)` when
    /// it was known.
    pub(crate) fn add_announcement(
        &mut self,
        announcement: ChannelAnnouncement,
    ) -> Result<bool, GossipError> {
        if self.channels.contains_key(&announcement.channel_id) {
            return Ok(false);
        }
        if self.channels.len() >= MAX_GRAPH_CHANNELS {
            return Err(GossipError::Full);
        }
        self.channels.insert(
            announcement.channel_id,
            GraphChannel {
                announcement,
                updates: [None, None],
            },
        );
        Ok(true)
    }

    /// Apply an update (its signature is checked here). `Ok(false)` when it is not newer than
    /// the one held.
    pub(crate) fn apply_update(&mut self, update: ChannelUpdate) -> Result<bool, GossipError> {
        let channel = self
            .channels
            .get_mut(&update.channel_id)
            .ok_or(GossipError::UnknownChannel(update.channel_id))?;
        let side = channel
            .announcement
            .side_of(&update.node)
            .ok_or(GossipError::NotAnEnd {
                channel_id: update.channel_id,
                node: update.node,
            })?;
        update.check_signature()?;
        if channel.updates[side]
            .as_ref()
            .is_some_and(|held| held.timestamp >= update.timestamp)
        {
            return Ok(false);
        }
        channel.updates[side] = Some(update);
        Ok(true)
    }

    /// Forget a channel (closed on the ledger). Returns it if it was known.
    pub(crate) fn remove(&mut self, channel_id: &Hash32) -> Option<GraphChannel> {
        self.channels.remove(channel_id)
    }

    /// The channel whose funding output is `outpoint`.
    pub(crate) fn channel_funded_by(&self, outpoint: &OutPoint) -> Option<Hash32> {
        self.channels
            .values()
            .find(|c| c.announcement.funding_outpoint == *outpoint)
            .map(|c| c.announcement.channel_id)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dlp_chain::{Output, Transaction, sign_digest};
    use secp256k1::{PublicKey, SecretKey};

    pub(crate) fn secret(n: u8) -> SecretKey {
        SecretKey::from_secret_bytes([n; 32]).expect("key")
    }

    pub(crate) fn public(secret: &SecretKey) -> Pubkey {
        Pubkey(PublicKey::from_secret_key(secret).serialize())
    }

    /// A funding transaction, and the announcement of its channel signed by `a` and `b`.
    pub(crate) fn announced(
        a: &SecretKey,
        b: &SecretKey,
        capacity: u64,
        id: u8,
    ) -> (TxRecord, ChannelAnnouncement) {
        let channel_id = Hash32([id; 32]);
        let (ka, kb) = (public(a), public(b));
        let tx = Transaction::unsigned(
            TxKind::Funding { channel_id },
            &[],
            vec![Output {
                amount: capacity,
                lock: Lock::MultiSig { a: ka, b: kb },
            }],
        );
        let outpoint = tx.outpoint(0);
        let ((n1, s1), (n2, s2)) = if ka < kb {
            ((ka, a), (kb, b))
        } else {
            ((kb, b), (ka, a))
        };
        let digest = ChannelAnnouncement::digest(&channel_id, &outpoint, capacity, &n1, &n2);
        let record = TxRecord {
            txid: tx.txid(),
            tx,
            block_height: Some(3),
            seq: 1,
        };
        let announcement = ChannelAnnouncement {
            channel_id,
            funding_outpoint: outpoint,
            capacity,
            node_1: n1,
            node_2: n2,
            node_1_signature: sign_digest(s1, &digest),
            node_2_signature: sign_digest(s2, &digest),
        };
        (record, announcement)
    }

    pub(crate) fn update(
        by: &SecretKey,
        channel: Hash32,
        timestamp: u64,
        enabled: bool,
        fee_rate: u64,
    ) -> ChannelUpdate {
        let node = public(by);
        let digest = ChannelUpdate::digest(&channel, &node, timestamp, enabled, fee_rate, 20);
        ChannelUpdate {
            channel_id: channel,
            node,
            timestamp,
            enabled,
            fee_rate,
            tlc_expiry_delta: 20,
            signature: sign_digest(by, &digest),
        }
    }

    #[test]
    fn an_announcement_needs_both_signatures_and_the_funding_output_as_announced() {
        let (a, b, mallory) = (secret(1), secret(2), secret(3));
        let (record, good) = announced(&a, &b, 5_000, 9);
        assert_eq!(good.check_signatures(), Ok(()));
        assert_eq!(check_funding(&good, Some(&record), false), Ok(()));

        let mut forged = good.clone();
        forged.node_2_signature = forged.node_1_signature;
        assert!(matches!(
            forged.check_signatures(),
            Err(GossipError::Forged(_))
        ));
        let mut bigger = good.clone();
        bigger.capacity += 1;
        assert!(bigger.check_signatures().is_err(), "the capacity is signed");

        // Mallory signs an announcement of her own over Alice and Bob's funding output.
        let (_, mallorys) = announced(&a, &mallory, 5_000, 9);
        let stolen = ChannelAnnouncement {
            funding_outpoint: good.funding_outpoint,
            ..mallorys
        };
        assert!(stolen.check_signatures().is_err());
        let (_, self_signed) = announced(&a, &mallory, 5_000, 9);
        assert!(matches!(
            check_funding(&self_signed, Some(&record), false),
            Err(GossipError::Funding(_))
        ));

        assert!(
            check_funding(&good, None, false).is_err(),
            "unknown funding"
        );
        assert!(check_funding(&good, Some(&record), true).is_err(), "closed");
        let unconfirmed = TxRecord {
            block_height: None,
            ..record.clone()
        };
        assert!(check_funding(&good, Some(&unconfirmed), false).is_err());
        let (other_record, _) = announced(&a, &b, 5_000, 10);
        assert!(
            check_funding(&good, Some(&other_record), false).is_err(),
            "another channel's funding"
        );
    }

    #[test]
    fn updates_apply_only_when_signed_by_their_end_and_newer() {
        let (a, b, c) = (secret(1), secret(2), secret(3));
        let (_, ann) = announced(&a, &b, 5_000, 9);
        let id = ann.channel_id;
        let mut graph = Graph::default();
        assert_eq!(
            graph.apply_update(update(&a, id, 10, true, 0)),
            Err(GossipError::UnknownChannel(id))
        );
        assert_eq!(graph.add_announcement(ann.clone()), Ok(true));
        assert_eq!(graph.add_announcement(ann), Ok(false));
        assert_eq!(graph.apply_update(update(&a, id, 10, true, 0)), Ok(true));
        assert_eq!(
            graph.apply_update(update(&a, id, 10, false, 0)),
            Ok(false),
            "not newer"
        );
        assert_eq!(
            graph.apply_update(update(&a, id, 9, false, 0)),
            Ok(false),
            "older"
        );
        assert_eq!(graph.apply_update(update(&a, id, 11, false, 0)), Ok(true));
        assert!(matches!(
            graph.apply_update(update(&c, id, 12, true, 0)),
            Err(GossipError::NotAnEnd { .. })
        ));
        let mut forged = update(&a, id, 13, true, 0);
        forged.fee_rate = 1;
        assert!(matches!(
            graph.apply_update(forged),
            Err(GossipError::Forged(_))
        ));
        let held = graph.get(&id).expect("channel");
        let side = held.announcement.side_of(&public(&a)).expect("side");
        assert_eq!(held.updates[side].as_ref().map(|u| u.enabled), Some(false));
        assert!(graph.remove(&id).is_some());
        assert_eq!(graph.channels().count(), 0);
    }

    #[test]
    fn fees_round_up_and_saturate() {
        assert_eq!(fee_for(0, 1_000_000), 0);
        assert_eq!(fee_for(1_000, 1_000_000), 1_000);
        assert_eq!(fee_for(1, 1), 1);
        assert_eq!(fee_for(u64::MAX, u64::MAX), u64::MAX);
    }
}
