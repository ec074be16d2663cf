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
use dlp_node_api::MessageName;
use serde::{Deserialize, Serialize};

use crate::graph::{ChannelAnnouncement, ChannelUpdate};
use crate::onion::OnionPacket;

/// Current codec version.
///
/// 2: TLCs carry encrypted per-hop onions (`crate::onion`), a failed TLC may name the channel
/// that failed, and channels are gossiped (`AnnouncementSignatures`, `ChannelAnnouncement`,
/// `ChannelUpdate`).
pub(crate) const WIRE_VERSION: u8 = 2;

/// How a TLC is removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum RemoveReason {
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
pub(crate) enum PeerMessage {
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
    /// The message's name, as events and step names spell it (the serde tag of its variant).
    pub(crate) fn name(&self) -> MessageName {
        match self {
            PeerMessage::OpenChannel { .. } => MessageName::OpenChannel,
            PeerMessage::AcceptChannel { .. } => MessageName::AcceptChannel,
            PeerMessage::FundingCreated { .. } => MessageName::FundingCreated,
            PeerMessage::FundingSigned { .. } => MessageName::FundingSigned,
            PeerMessage::ChannelReady { .. } => MessageName::ChannelReady,
            PeerMessage::AddTlc { .. } => MessageName::AddTlc,
            PeerMessage::RemoveTlc { .. } => MessageName::RemoveTlc,
            PeerMessage::CommitmentSigned { .. } => MessageName::CommitmentSigned,
            PeerMessage::RevokeAndAck { .. } => MessageName::RevokeAndAck,
            PeerMessage::ReestablishChannel { .. } => MessageName::ReestablishChannel,
            PeerMessage::Shutdown { .. } => MessageName::Shutdown,
            PeerMessage::ClosingSigned { .. } => MessageName::ClosingSigned,
            PeerMessage::RequestForceClose { .. } => MessageName::RequestForceClose,
            PeerMessage::StaleNotice { .. } => MessageName::StaleNotice,
            PeerMessage::AnnouncementSignatures { .. } => MessageName::AnnouncementSignatures,
            PeerMessage::ChannelAnnouncement { .. } => MessageName::ChannelAnnouncement,
            PeerMessage::ChannelUpdate { .. } => MessageName::ChannelUpdate,
            PeerMessage::Error { .. } => MessageName::Error,
        }
    }

    /// The channel (or temporary channel) id the message is about. Gossip has none: it carries
    /// no channel state, so it is never a channel's protocol step, never counted against a
    /// Stale channel's silence, and flows whatever state the channel is in.
    pub(crate) fn channel_id(&self) -> Option<Hash32> {
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
pub(crate) enum DecodeError {
    #[error("empty frame")]
    Empty,
    #[error(
        "the peer speaks wire version {0} (another build of dlp-node), this node speaks \
         {WIRE_VERSION}: nothing is sent to it"
    )]
    Version(u8),
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// Encode a message into a frame.
pub(crate) fn encode(message: &PeerMessage) -> Vec<u8> {
    let mut frame = vec![WIRE_VERSION];
    // Serialising these plain data types cannot fail.
    frame.extend(serde_json::to_vec(message).unwrap_or_default());
    frame
}

/// Decode a frame.
pub(crate) fn decode(frame: &[u8]) -> Result<PeerMessage, DecodeError> {
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

    /// One message of every variant (a new variant must be added here: the test below
    /// compares these with [`MessageName::ALL`]).
    fn one_of_each() -> Vec<PeerMessage> {
        let id = Hash32([1; 32]);
        let key = Pubkey([2; 33]);
        let sig = Sig([3; 64]);
        let tx = Transaction {
            kind: dlp_chain::TxKind::Funding { channel_id: id },
            inputs: vec![],
            outputs: vec![],
        };
        let outpoint = OutPoint { txid: id, index: 0 };
        vec![
            PeerMessage::OpenChannel {
                temporary_channel_id: id,
                funding_amount: 1,
                funding_pubkey: key,
                payout_pubkey: key,
                to_self_delay: 6,
                revocation_hashes: [id, id],
            },
            PeerMessage::AcceptChannel {
                temporary_channel_id: id,
                funding_pubkey: key,
                payout_pubkey: key,
                revocation_hashes: [id, id],
            },
            PeerMessage::FundingCreated {
                temporary_channel_id: id,
                channel_id: id,
                funding_tx: tx,
                funding_outpoint: outpoint,
                signature: sig,
            },
            PeerMessage::FundingSigned {
                channel_id: id,
                signature: sig,
            },
            PeerMessage::ChannelReady { channel_id: id },
            PeerMessage::AddTlc {
                channel_id: id,
                tlc_id: 0,
                amount: 1,
                payment_hash: id,
                expiry: 9,
                onion: OnionPacket(vec![1, 2, 3]),
            },
            PeerMessage::RemoveTlc {
                channel_id: id,
                tlc_id: 0,
                reason: RemoveReason::Fulfill { preimage: id },
            },
            PeerMessage::CommitmentSigned {
                channel_id: id,
                commitment_number: 1,
                sender_updates: 0,
                receiver_updates: 0,
                signature: sig,
            },
            PeerMessage::RevokeAndAck {
                channel_id: id,
                revoked_number: 0,
                secret: id,
                next_revocation_hash: id,
            },
            PeerMessage::ReestablishChannel {
                channel_id: id,
                local_commitment_number: 1,
                remote_commitment_number: 1,
            },
            PeerMessage::Shutdown { channel_id: id },
            PeerMessage::ClosingSigned {
                channel_id: id,
                signature: sig,
            },
            PeerMessage::RequestForceClose { channel_id: id },
            PeerMessage::StaleNotice { channel_id: id },
            PeerMessage::AnnouncementSignatures {
                channel_id: id,
                signature: sig,
            },
            PeerMessage::ChannelAnnouncement {
                announcement: ChannelAnnouncement {
                    channel_id: id,
                    funding_outpoint: outpoint,
                    capacity: 1,
                    node_1: key,
                    node_2: key,
                    node_1_signature: sig,
                    node_2_signature: sig,
                },
            },
            PeerMessage::ChannelUpdate {
                update: ChannelUpdate {
                    channel_id: id,
                    node: key,
                    timestamp: 1,
                    enabled: true,
                    fee_rate: 0,
                    tlc_expiry_delta: 20,
                    signature: sig,
                },
            },
            PeerMessage::Error {
                channel_id: None,
                message: "boom".into(),
            },
        ]
    }

    #[test]
    fn every_message_is_named_as_its_serde_tag_and_every_name_is_a_message() {
        let messages = one_of_each();
        let names: Vec<MessageName> = messages.iter().map(PeerMessage::name).collect();
        assert_eq!(names, MessageName::ALL, "one message per name, in order");
        for message in &messages {
            let json = serde_json::to_value(message).expect("json");
            let tag = json
                .as_object()
                .and_then(|o| o.keys().next())
                .expect("externally tagged");
            assert_eq!(tag, message.name().as_str());
            assert_eq!(decode(&encode(message)).expect("round trip"), *message);
        }
    }
}
