//! The names of the messages two nodes exchange, and the protocol steps named after them.
//!
//! A [`MessageName`] has one variant per variant of the node's wire `PeerMessage`, spelt the
//! same (the node's tests check every wire variant's tag against [`MessageName::as_str`]).
//! Events carry it (`msg_type`), step control names it (`sent:CommitmentSigned`), the harness
//! compares it. A name this build does not know (a newer node's message) still parses, as
//! [`MessageName::Unknown`] kept as written, so reading another version's events never fails
//! on a name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A peer message's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageName {
    OpenChannel,
    AcceptChannel,
    FundingCreated,
    FundingSigned,
    ChannelReady,
    AddTlc,
    RemoveTlc,
    CommitmentSigned,
    RevokeAndAck,
    ReestablishChannel,
    Shutdown,
    ClosingSigned,
    RequestForceClose,
    StaleNotice,
    AnnouncementSignatures,
    ChannelAnnouncement,
    ChannelUpdate,
    Error,
    /// A name this build does not know (another node version's message), as written.
    Unknown(String),
}

impl MessageName {
    /// Every message this build knows, in the wire enum's declaration order: the names step
    /// control (`sent:<Message>`, `received:<Message>`) and the harness accept.
    pub const ALL: [MessageName; 18] = [
        MessageName::OpenChannel,
        MessageName::AcceptChannel,
        MessageName::FundingCreated,
        MessageName::FundingSigned,
        MessageName::ChannelReady,
        MessageName::AddTlc,
        MessageName::RemoveTlc,
        MessageName::CommitmentSigned,
        MessageName::RevokeAndAck,
        MessageName::ReestablishChannel,
        MessageName::Shutdown,
        MessageName::ClosingSigned,
        MessageName::RequestForceClose,
        MessageName::StaleNotice,
        MessageName::AnnouncementSignatures,
        MessageName::ChannelAnnouncement,
        MessageName::ChannelUpdate,
        MessageName::Error,
    ];

    /// The name as the wire and the events spell it.
    pub fn as_str(&self) -> &str {
        match self {
            MessageName::OpenChannel => "OpenChannel",
            MessageName::AcceptChannel => "AcceptChannel",
            MessageName::FundingCreated => "FundingCreated",
            MessageName::FundingSigned => "FundingSigned",
            MessageName::ChannelReady => "ChannelReady",
            MessageName::AddTlc => "AddTlc",
            MessageName::RemoveTlc => "RemoveTlc",
            MessageName::CommitmentSigned => "CommitmentSigned",
            MessageName::RevokeAndAck => "RevokeAndAck",
            MessageName::ReestablishChannel => "ReestablishChannel",
            MessageName::Shutdown => "Shutdown",
            MessageName::ClosingSigned => "ClosingSigned",
            MessageName::RequestForceClose => "RequestForceClose",
            MessageName::StaleNotice => "StaleNotice",
            MessageName::AnnouncementSignatures => "AnnouncementSignatures",
            MessageName::ChannelAnnouncement => "ChannelAnnouncement",
            MessageName::ChannelUpdate => "ChannelUpdate",
            MessageName::Error => "Error",
            MessageName::Unknown(name) => name,
        }
    }

    /// Whether the message is gossip: about the graph, not a channel's state (never a
    /// channel's protocol step, never counted against a Stale channel's silence).
    pub fn is_gossip(&self) -> bool {
        matches!(
            self,
            MessageName::AnnouncementSignatures
                | MessageName::ChannelAnnouncement
                | MessageName::ChannelUpdate
        )
    }

    /// Whether this build knows the message.
    pub fn is_known(&self) -> bool {
        !matches!(self, MessageName::Unknown(_))
    }

    /// Every known name, comma separated (for error messages listing what is accepted).
    pub fn list() -> String {
        Self::ALL
            .iter()
            .map(MessageName::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for MessageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for MessageName {
    fn from(name: &str) -> Self {
        Self::ALL
            .iter()
            .find(|known| known.as_str() == name)
            .cloned()
            .unwrap_or_else(|| MessageName::Unknown(name.to_string()))
    }
}

impl FromStr for MessageName {
    type Err = std::convert::Infallible;

    /// Never fails: a name this build does not know is [`MessageName::Unknown`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(MessageName::from(name))
    }
}

impl Serialize for MessageName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(MessageName::from(name.as_ref()))
    }
}

/// Whether a step is a message leaving the node or one it handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol step as step control names it: `sent:CommitmentSigned`, `received:AddTlc`.
/// On the wire (the `dev_hold` RPC, `Held` events) it stays that string; this is its parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProtocolStep {
    pub direction: Direction,
    pub message: MessageName,
}

/// Why a text is not a protocol step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad step {0:?}: expected sent:<MessageType> or received:<MessageType>")]
pub struct BadProtocolStep(pub String);

impl FromStr for ProtocolStep {
    type Err = BadProtocolStep;

    /// `sent:<Message>` or `received:<Message>` with a non-empty message name; a name this
    /// build does not know parses as [`MessageName::Unknown`] (the caller decides whether to
    /// accept it: the node does, a step that never fires just never fires; the harness's
    /// scenario validation refuses it).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadProtocolStep(text.to_string());
        let (direction, message) = text.split_once(':').ok_or_else(bad)?;
        let direction = match direction {
            "sent" => Direction::Sent,
            "received" => Direction::Received,
            _ => return Err(bad()),
        };
        if message.is_empty() {
            return Err(bad());
        }
        Ok(ProtocolStep {
            direction,
            message: MessageName::from(message),
        })
    }
}

impl fmt::Display for ProtocolStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.direction, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_kept_as_written() {
        for name in MessageName::ALL {
            assert_eq!(MessageName::from(name.as_str()), name);
            let json = serde_json::to_string(&name).expect("json");
            assert_eq!(json, format!("\"{name}\""));
            let back: MessageName = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, name);
        }
        let future: MessageName = serde_json::from_str("\"SpliceInit\"").expect("parses");
        assert_eq!(future, MessageName::Unknown("SpliceInit".into()));
        assert_eq!(future.to_string(), "SpliceInit");
        assert!(!future.is_known() && !future.is_gossip());
        assert_eq!(
            serde_json::to_string(&future).expect("json"),
            "\"SpliceInit\""
        );
    }

    #[test]
    fn all_lists_every_known_name_once_and_the_gossip_set() {
        let mut names: Vec<&str> = MessageName::ALL.iter().map(MessageName::as_str).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), MessageName::ALL.len());
        let gossip: Vec<_> = MessageName::ALL.iter().filter(|m| m.is_gossip()).collect();
        assert_eq!(
            gossip,
            [
                &MessageName::AnnouncementSignatures,
                &MessageName::ChannelAnnouncement,
                &MessageName::ChannelUpdate
            ]
        );
    }

    #[test]
    fn protocol_steps_parse_and_print_as_step_control_writes_them() {
        let step: ProtocolStep = "sent:CommitmentSigned".parse().expect("valid");
        assert_eq!(
            step,
            ProtocolStep {
                direction: Direction::Sent,
                message: MessageName::CommitmentSigned
            }
        );
        assert_eq!(step.to_string(), "sent:CommitmentSigned");
        let later: ProtocolStep = "received:SpliceAck".parse().expect("parses");
        assert_eq!(later.message, MessageName::Unknown("SpliceAck".into()));
        for bad in ["CommitmentSigned", "sideways:AddTlc", "sent:", ""] {
            assert!(bad.parse::<ProtocolStep>().is_err(), "{bad}");
        }
    }
}
