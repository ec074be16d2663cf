//! Pinned input order: the order in which a node must handle the inputs that race (messages of
//! different peers, and the commands that change channels). What the `dev_pin_order` RPC takes,
//! what `dev_order_status` / `dev_unpin_order` answer, and how a pin that could not be kept
//! (`order_diverged` event) is described.
//!
//! Why: a node handles one input at a time, and messages of one peer arrive in the order that
//! peer sent them, so a run of a workload is fixed by the order in which each node took inputs
//! of *different* sources (peer A's AddTlc before peer B's RevokeAndAck, a `send_payment` before
//! or after a message that was in flight). The harness records that order from a run's
//! `message_received` and `command_handled` events and pins it on the next run: an input that
//! arrives before its turn waits, so the same seed reaches the same states again, concurrent
//! payments included. Chain events, connections and timers are not pinned.

use std::fmt;

use dlp_chain::{Hash32, Pubkey};
use serde::{Deserialize, Serialize};

use crate::describe::{Naming, ShortIds};
use crate::messages::MessageName;

/// A command that changes channels or connections: the commands a pinned order places among
/// the messages (read-only commands, invoices and backups are never held).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderedCommand {
    SendPayment,
    OpenChannel,
    AcceptChannel,
    ShutdownChannel,
    ConnectPeer,
    DisconnectPeer,
}

impl OrderedCommand {
    pub const ALL: [OrderedCommand; 6] = [
        OrderedCommand::SendPayment,
        OrderedCommand::OpenChannel,
        OrderedCommand::AcceptChannel,
        OrderedCommand::ShutdownChannel,
        OrderedCommand::ConnectPeer,
        OrderedCommand::DisconnectPeer,
    ];

    /// The RPC method's name (`send_payment`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderedCommand::SendPayment => "send_payment",
            OrderedCommand::OpenChannel => "open_channel",
            OrderedCommand::AcceptChannel => "accept_channel",
            OrderedCommand::ShutdownChannel => "shutdown_channel",
            OrderedCommand::ConnectPeer => "connect_peer",
            OrderedCommand::DisconnectPeer => "disconnect_peer",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for OrderedCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One input of a pinned order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case", deny_unknown_fields)]
pub enum OrderedInput {
    /// A message received from `peer` (of `channel_id` when given; without it, any channel).
    Message {
        peer: Pubkey,
        msg_type: MessageName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
    },
    /// A command, by its RPC method.
    Command { command: OrderedCommand },
}

/// Where an input comes from: inputs of one source arrive in their own order (a peer's
/// messages over its connection, the caller's commands one step after the other), so a pin
/// only ever decides between sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputSource {
    Peer(Pubkey),
    Commands,
}

impl OrderedInput {
    pub fn source(&self) -> InputSource {
        match self {
            OrderedInput::Message { peer, .. } => InputSource::Peer(*peer),
            OrderedInput::Command { .. } => InputSource::Commands,
        }
    }

    /// Whether `actual` (an input as it arrived, its channel known) is this pinned input: a
    /// pinned message without a channel matches the message on any channel.
    pub fn admits(&self, actual: &OrderedInput) -> bool {
        match (self, actual) {
            (
                OrderedInput::Message {
                    peer,
                    msg_type,
                    channel_id,
                },
                OrderedInput::Message {
                    peer: p,
                    msg_type: m,
                    channel_id: c,
                },
            ) => peer == p && msg_type == m && (channel_id.is_none() || channel_id == c),
            (OrderedInput::Command { command }, OrderedInput::Command { command: c }) => {
                command == c
            }
            _ => false,
        }
    }

    /// The input in words, naming peers and channels with `names` (`AddTlc from alice on ab`,
    /// `rpc send_payment`).
    pub fn named(&self, names: &(impl Naming + ?Sized)) -> String {
        match self {
            OrderedInput::Message {
                peer,
                msg_type,
                channel_id,
            } => {
                let on = channel_id
                    .map(|id| format!(" on {}", names.channel(&id)))
                    .unwrap_or_default();
                format!("{msg_type} from {}{on}", names.node(peer))
            }
            OrderedInput::Command { command } => format!("rpc {command}"),
        }
    }
}

impl fmt::Display for OrderedInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.named(&ShortIds))
    }
}

/// What `dev_pin_order` takes: the inputs, in the order they must be handled.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinOrder {
    pub inputs: Vec<OrderedInput>,
}

/// A pin that could not be kept: an input arrived that the pin has no place for (its source's
/// next pinned input is another one, or the source has none left). The node stops pinning
/// there and handles everything in arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDivergence {
    /// 0-based position in the pin of the input the node was waiting for.
    pub position: u64,
    /// The input whose turn it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<OrderedInput>,
    /// What the pin expected next from the arriving input's source (none: nothing more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<OrderedInput>,
    /// What arrived.
    pub got: OrderedInput,
}

impl OrderDivergence {
    /// The divergence in words, naming peers and channels with `names`.
    pub fn named(&self, names: &(impl Naming + ?Sized)) -> String {
        let waiting = match &self.waiting_for {
            Some(w) => format!(", waiting for {}", w.named(names)),
            None => String::new(),
        };
        let expected = match (&self.expected, &self.got) {
            (Some(e), _) => format!("{} next", e.named(names)),
            (None, OrderedInput::Message { peer, .. }) => {
                format!("nothing more from {}", names.node(peer))
            }
            (None, OrderedInput::Command { .. }) => "no more commands".to_string(),
        };
        format!(
            "at pinned input {}{waiting}: {} arrived where the pin expects {expected}",
            self.position + 1,
            self.got.named(names)
        )
    }
}

impl fmt::Display for OrderDivergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.named(&ShortIds))
    }
}

/// Where a pin stands (`dev_order_status`, and `dev_unpin_order`'s answer as it ends one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OrderStatus {
    /// Whether a pin is in force (armed, not yet finished or diverged).
    pub pinned: bool,
    /// Pinned inputs handled so far, of `total`.
    pub handled: u64,
    pub total: u64,
    /// The input whose turn it is, if the pin is in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<OrderedInput>,
    /// Inputs that arrived before their turn and wait, in arrival order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parked: Vec<OrderedInput>,
    /// How the last pin ended early, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<OrderDivergence>,
}

impl OrderStatus {
    /// Every pinned input handled, none diverged.
    pub fn finished(&self) -> bool {
        self.diverged.is_none() && self.handled == self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_round_trip_as_tagged_json_and_match_by_peer_type_and_channel() {
        let peer = Pubkey([2; 33]);
        let pinned = OrderedInput::Message {
            peer,
            msg_type: MessageName::AddTlc,
            channel_id: None,
        };
        let json = serde_json::to_string(&pinned).expect("json");
        assert!(json.starts_with(r#"{"input":"message","peer":"#), "{json}");
        assert_eq!(
            serde_json::from_str::<OrderedInput>(&json).expect("parse"),
            pinned
        );
        let on = |c| OrderedInput::Message {
            peer,
            msg_type: MessageName::AddTlc,
            channel_id: Some(Hash32([c; 32])),
        };
        assert!(pinned.admits(&on(1)), "no channel pinned: any channel");
        assert!(on(1).admits(&on(1)));
        assert!(!on(1).admits(&on(2)));
        let command = OrderedInput::Command {
            command: OrderedCommand::SendPayment,
        };
        assert_eq!(
            serde_json::to_string(&command).expect("json"),
            r#"{"input":"command","command":"send_payment"}"#
        );
        assert!(!command.admits(&pinned));
        for c in OrderedCommand::ALL {
            assert_eq!(OrderedCommand::parse(c.as_str()), Some(c));
        }
    }
}
