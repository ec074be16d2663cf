//! Peer messages and their versioned encoding.
//!
//! A frame is one byte of codec version ([`WIRE_VERSION`]) followed by the JSON of a
//! [`PeerMessage`], an externally tagged enum (`{"AddTlc": {...}}`): the type is always explicit,
//! never guessed (no serde `untagged`). A frame with another version, or a message type this
//! build does not know, is a decode error and the peer is disconnected.
//!
//! Versioning: a change to an existing message's encoding needs a new [`WIRE_VERSION`]; a new
//! message type does not, as long as it is only ever sent to a peer that asked for it or that
//! can do without it. `StaleNotice` is such a type: only a Stale channel in
//! `audit.mutual_stale = "reveal"` mode sends it, and a build without it drops the connection
//! (the unknown-type rule above), which leaves both ends exactly where passive silence leaves
//! them.

use dlp_chain::{Hash32, OutPoint, Pubkey, Sig, Transaction, hex_u64};
use serde::{Deserialize, Serialize};

use crate::graph::{ChannelAnnouncement, ChannelUpdate};
use crate::onion::OnionPacket;

/// Current codec version.
///
/// 2: TLCs carry encrypted per-hop onions (`crate::onion`), a failed TLC may name the channel
/// that failed, and channels are gossiped (`AnnouncementSignatures`, `ChannelAnnouncement`,
/// `ChannelUpdate`).
pub const WIRE_VERSION: u8 = 2;

/// How a TLC is removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RemoveReason {
    /// Paid: the preimage of the payment hash.
    Fulfill { preimage: Hash32 },
    /// Not paid; the amount goes back to the offerer. `failed_channel` names the channel a hop
    /// could not use (its outgoing channel, or the incoming one when the onion did not decode),
    /// so the payer can route around it; none when the payee itself refused.
    Fail {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failed_channel: Option<Hash32>,
    },
}

/// Every message two nodes exchange after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PeerMessage {
    /// Opener proposes a channel it funds alone.
    OpenChannel {
        temporary_channel_id: Hash32,
        #[serde(with = "hex_u64")]
        funding_amount: u64,
        funding_pubkey: Pubkey,
        payout_pubkey: Pubkey,
        #[serde(with = "hex_u64")]
        to_self_delay: u64,
        /// Revocation hashes of the opener's commitments 0 and 1.
        revocation_hashes: [Hash32; 2],
    },
    /// Acceptor agrees.
    AcceptChannel {
        temporary_channel_id: Hash32,
        funding_pubkey: Pubkey,
        payout_pubkey: Pubkey,
        revocation_hashes: [Hash32; 2],
    },
    /// Opener shows the funding transaction (unsigned inputs) and signs the acceptor's first
    /// commitment. The channel id is the hash of the funding outpoint.
    FundingCreated {
        temporary_channel_id: Hash32,
        channel_id: Hash32,
        funding_tx: Transaction,
        funding_outpoint: OutPoint,
        signature: Sig,
    },
    /// Acceptor signs the opener's first commitment; the opener may now broadcast the funding.
    FundingSigned { channel_id: Hash32, signature: Sig },
    /// The funding is confirmed on our side.
    ChannelReady { channel_id: Hash32 },
    /// A new TLC offered by the sender.
    AddTlc {
        channel_id: Hash32,
        #[serde(with = "hex_u64")]
        tlc_id: u64,
        #[serde(with = "hex_u64")]
        amount: u64,
        payment_hash: Hash32,
        #[serde(with = "hex_u64")]
        expiry: u64,
        onion: OnionPacket,
    },
    /// The sender removes a TLC the receiver offered.
    RemoveTlc {
        channel_id: Hash32,
        #[serde(with = "hex_u64")]
        tlc_id: u64,
        reason: RemoveReason,
    },
    /// The sender's signature of the receiver's commitment `commitment_number`, which includes
    /// the first `sender_updates` updates the sender proposed and the first `receiver_updates`
    /// the receiver proposed.
    CommitmentSigned {
        channel_id: Hash32,
        #[serde(with = "hex_u64")]
        commitment_number: u64,
        #[serde(with = "hex_u64")]
        sender_updates: u64,
        #[serde(with = "hex_u64")]
        receiver_updates: u64,
        signature: Sig,
    },
    /// The sender revokes its commitment `revoked_number` by revealing its secret, and gives the
    /// revocation hash of its commitment `revoked_number + 2`.
    RevokeAndAck {
        channel_id: Hash32,
        #[serde(with = "hex_u64")]
        revoked_number: u64,
        secret: Hash32,
        next_revocation_hash: Hash32,
    },
    /// After a reconnect: the sender's commitment numbers (Fiber's semantics).
    ReestablishChannel {
        channel_id: Hash32,
        #[serde(with = "hex_u64")]
        local_commitment_number: u64,
        #[serde(with = "hex_u64")]
        remote_commitment_number: u64,
    },
    /// The sender wants to close cooperatively.
    Shutdown { channel_id: Hash32 },
    /// The sender's signature of the cooperative close transaction.
    ClosingSigned { channel_id: Hash32, signature: Sig },
    /// The sender lost state for this channel and asks the receiver to force-close it, so the
    /// sender's funds come back from the receiver's commitment (data-loss protection).
    RequestForceClose { channel_id: Hash32 },
    /// The sender's channel is Stale (restored from a backup) and it has waited in vain for our
    /// ReestablishChannel on this connection (`audit.mutual_stale = "reveal"`). It carries no
    /// commitment numbers; see `core::reestablish` for what follows.
    StaleNotice { channel_id: Hash32 },
    /// Gossip: the sender's signature of the announcement of a channel both ends have made
    /// ChannelReady (BOLT 7's `announcement_signatures`; see `core::gossip`).
    AnnouncementSignatures { channel_id: Hash32, signature: Sig },
    /// Gossip: a public channel, signed by both ends, relayed to every peer.
    ChannelAnnouncement { announcement: ChannelAnnouncement },
    /// Gossip: one direction's forwarding policy, signed by its node, relayed to every peer.
    ChannelUpdate { update: ChannelUpdate },
    /// Something went wrong with a channel.
    Error {
        #[serde(default)]
        channel_id: Option<Hash32>,
        message: String,
    },
}

impl PeerMessage {
    /// The message type name, as used in events and step names.
    /// Every message's [`type_name`](Self::type_name), in declaration order: the names step
    /// control (`sent:<Message>`, `received:<Message>`) and the harness accept.
    pub const TYPE_NAMES: [&'static str; 18] = [
        "OpenChannel",
        "AcceptChannel",
        "FundingCreated",
        "FundingSigned",
        "ChannelReady",
        "AddTlc",
        "RemoveTlc",
        "CommitmentSigned",
        "RevokeAndAck",
        "ReestablishChannel",
        "Shutdown",
        "ClosingSigned",
        "RequestForceClose",
        "StaleNotice",
        "AnnouncementSignatures",
        "ChannelAnnouncement",
        "ChannelUpdate",
        "Error",
    ];

    /// The message's name (keep [`TYPE_NAMES`](Self::TYPE_NAMES) in step).
    pub fn type_name(&self) -> &'static str {
        match self {
            PeerMessage::OpenChannel { .. } => "OpenChannel",
            PeerMessage::AcceptChannel { .. } => "AcceptChannel",
            PeerMessage::FundingCreated { .. } => "FundingCreated",
            PeerMessage::FundingSigned { .. } => "FundingSigned",
            PeerMessage::ChannelReady { .. } => "ChannelReady",
            PeerMessage::AddTlc { .. } => "AddTlc",
            PeerMessage::RemoveTlc { .. } => "RemoveTlc",
            PeerMessage::CommitmentSigned { .. } => "CommitmentSigned",
            PeerMessage::RevokeAndAck { .. } => "RevokeAndAck",
            PeerMessage::ReestablishChannel { .. } => "ReestablishChannel",
            PeerMessage::Shutdown { .. } => "Shutdown",
            PeerMessage::ClosingSigned { .. } => "ClosingSigned",
            PeerMessage::RequestForceClose { .. } => "RequestForceClose",
            PeerMessage::StaleNotice { .. } => "StaleNotice",
            PeerMessage::AnnouncementSignatures { .. } => "AnnouncementSignatures",
            PeerMessage::ChannelAnnouncement { .. } => "ChannelAnnouncement",
            PeerMessage::ChannelUpdate { .. } => "ChannelUpdate",
            PeerMessage::Error { .. } => "Error",
        }
    }

    /// The gossip messages' type names (about the graph, not a channel's state).
    pub const GOSSIP_TYPE_NAMES: [&'static str; 3] = [
        "AnnouncementSignatures",
        "ChannelAnnouncement",
        "ChannelUpdate",
    ];

    /// Whether the message is gossip (about the graph, not a channel's state).
    pub fn is_gossip(&self) -> bool {
        Self::GOSSIP_TYPE_NAMES.contains(&self.type_name())
    }

    /// The channel (or temporary channel) id the message is about. Gossip has none: it carries
    /// no channel state, so it is never a channel's protocol step, never counted against a
    /// Stale channel's silence, and flows whatever state the channel is in.
    pub fn channel_id(&self) -> Option<Hash32> {
        match self {
            PeerMessage::OpenChannel {
                temporary_channel_id,
                ..
            }
            | PeerMessage::AcceptChannel {
                temporary_channel_id,
                ..
            } => Some(*temporary_channel_id),
            PeerMessage::FundingCreated { channel_id, .. }
            | PeerMessage::FundingSigned { channel_id, .. }
            | PeerMessage::ChannelReady { channel_id }
            | PeerMessage::AddTlc { channel_id, .. }
            | PeerMessage::RemoveTlc { channel_id, .. }
            | PeerMessage::CommitmentSigned { channel_id, .. }
            | PeerMessage::RevokeAndAck { channel_id, .. }
            | PeerMessage::ReestablishChannel { channel_id, .. }
            | PeerMessage::Shutdown { channel_id }
            | PeerMessage::ClosingSigned { channel_id, .. }
            | PeerMessage::RequestForceClose { channel_id }
            | PeerMessage::StaleNotice { channel_id } => Some(*channel_id),
            PeerMessage::Error { channel_id, .. } => *channel_id,
            PeerMessage::AnnouncementSignatures { .. }
            | PeerMessage::ChannelAnnouncement { .. }
            | PeerMessage::ChannelUpdate { .. } => None,
        }
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty frame")]
    Empty,
    #[error("wire version {0}, this node speaks {WIRE_VERSION}")]
    Version(u8),
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Encode a message into a frame.
pub fn encode(message: &PeerMessage) -> Vec<u8> {
    let mut frame = vec![WIRE_VERSION];
    // Serialising these plain data types cannot fail.
    frame.extend(serde_json::to_vec(message).unwrap_or_default());
    frame
}

/// Decode a frame.
pub fn decode(frame: &[u8]) -> Result<PeerMessage, DecodeError> {
    let (&version, body) = frame.split_first().ok_or(DecodeError::Empty)?;
    if version != WIRE_VERSION {
        return Err(DecodeError::Version(version));
    }
    Ok(serde_json::from_slice(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_other_versions_and_unknown_types() {
        let msg = PeerMessage::ReestablishChannel {
            channel_id: Hash32([1; 32]),
            local_commitment_number: 3,
            remote_commitment_number: 4,
        };
        let frame = encode(&msg);
        assert_eq!(decode(&frame).expect("decodes"), msg);
        let mut other = frame.clone();
        other[0] = 1;
        assert!(matches!(decode(&other), Err(DecodeError::Version(1))));
        let mut unknown = vec![WIRE_VERSION];
        unknown.extend_from_slice(br#"{"Gossip":{}}"#);
        assert!(matches!(decode(&unknown), Err(DecodeError::Malformed(_))));
        assert!(matches!(decode(&[]), Err(DecodeError::Empty)));
    }

    #[test]
    fn every_listed_type_name_is_a_message() {
        for name in PeerMessage::TYPE_NAMES {
            let mut frame = vec![WIRE_VERSION];
            frame.extend_from_slice(format!("{{\"{name}\":{{}}}}").as_bytes());
            // A real variant fails on its missing fields, an unknown one on its name.
            match decode(&frame) {
                Err(DecodeError::Malformed(detail)) => {
                    let detail = detail.to_string();
                    assert!(!detail.contains("unknown variant"), "{name}: {detail}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
