//! What a node says happened: [`NodeEvent`]s, as the `dev_events` RPC answers them and
//! `<base>/events.jsonl` holds them (one JSON object a line, `{"seq", "at_ms", "type", ...}`).
//!
//! Every protocol fact the harness asserts on is an event: messages sent and received (with the
//! channel's commitment numbers after the step), state changes, persistence, transactions
//! broadcast, audit outcomes, payment status, holds. Sequence numbers are dense from 1 per run.
//!
//! The JSON is a contract (old runs' files are read again): the audit is one event in Rust,
//! [`EventKind::Audit`], and two on the wire, `audit_passed` and `audit_failed`, each with the
//! six numbers and the second with its `reason`, exactly as nodes have always written them.

use std::fmt;

use dlp_chain::{Hash32, Pubkey, TxKind, hex_u64};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::channel::ChannelState;
use crate::config::AuditPolicy;
use crate::messages::{Direction, MessageName};
use crate::order::{OrderDivergence, OrderedCommand};
use crate::payments::PaymentStatus;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// `remote = "Self"`: the derive writes inherent `EventKind::serialize` / `deserialize` functions
// for every variant but the audit; the trait impls below route the audit through its wire form
// and everything else through them.
#[serde(remote = "Self")]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The node is up.
    Started {
        pubkey: Pubkey,
    },
    PeerConnected {
        peer: Pubkey,
        inbound: bool,
    },
    PeerDisconnected {
        peer: Pubkey,
        reason: String,
    },
    /// A message went to the transport (its state change was persisted first).
    MessageSent {
        peer: Pubkey,
        msg_type: MessageName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        #[serde(with = "hex_u64")]
        local: u64,
        #[serde(with = "hex_u64")]
        remote: u64,
    },
    /// A message was handled and its effects persisted (replies not yet sent).
    MessageReceived {
        peer: Pubkey,
        msg_type: MessageName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        #[serde(with = "hex_u64")]
        local: u64,
        #[serde(with = "hex_u64")]
        remote: u64,
    },
    /// A message was not acted on (a Stale channel ignores everything but ReestablishChannel;
    /// `reason` says why).
    MessageIgnored {
        peer: Pubkey,
        msg_type: MessageName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        reason: String,
    },
    StateChanged {
        channel_id: Hash32,
        from: ChannelState,
        to: ChannelState,
    },
    /// A channel record was written to the store.
    Persisted {
        channel_id: Hash32,
        #[serde(with = "hex_u64")]
        local: u64,
        #[serde(with = "hex_u64")]
        remote: u64,
    },
    /// We submitted a transaction to the chain.
    TxBroadcast {
        txid: Hash32,
        kind: TxKindName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commitment_number: Option<u64>,
        accepted: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reject_reason: Option<String>,
    },
    /// A Stale channel judged the peer's ReestablishChannel (`audit_passed` / `audit_failed`
    /// on the wire).
    #[serde(skip)]
    Audit(AuditEvent),
    /// The peer sent ReestablishChannel for a channel we have no record of (we were restored
    /// from a backup older than the channel): we answered `RequestForceClose`, so the peer's
    /// commitment pays our balance to our wallet.
    UnknownChannelReestablish {
        peer: Pubkey,
        channel_id: Hash32,
    },
    /// A commitment of a channel we have no record of paid one of our keys on chain (a peer
    /// closed a channel we lost, after our `RequestForceClose`): `amount` is in our wallet.
    RecoveredFromUnknownChannel {
        channel_id: Hash32,
        txid: Hash32,
        #[serde(with = "hex_u64")]
        amount: u64,
    },
    /// A public channel entered our graph (our own once both ends signed it, or a peer's
    /// announcement that verified against the ledger).
    GraphChannelAdded {
        channel_id: Hash32,
        node_1: Pubkey,
        node_2: Pubkey,
        #[serde(with = "hex_u64")]
        capacity: u64,
    },
    /// A newer policy of one direction of a graph channel was stored (`node` forwards in it).
    GraphChannelUpdated {
        channel_id: Hash32,
        node: Pubkey,
        enabled: bool,
    },
    /// A channel left our graph: its funding output was spent.
    GraphChannelRemoved {
        channel_id: Hash32,
    },
    /// A peer's gossip was refused (forged, or not matching the ledger) and not relayed.
    GossipRefused {
        peer: Pubkey,
        msg_type: MessageName,
        reason: String,
    },
    PaymentUpdated {
        payment_hash: Hash32,
        status: PaymentStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The node is held at a step (see [`StepSpec`](crate::StepSpec)).
    Held {
        step: String,
    },
    Released {
        step: String,
    },
    BackupWritten {
        dir: String,
        /// The protocol step that took it (step control's backup action); none for a backup
        /// asked for by RPC or taken automatically.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        /// Taken by the node's own schedule (`backup.auto`: after start, after channel
        /// changes, on an interval), not asked for by RPC or step control.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        automatic: bool,
    },
    /// A command that changes channels or connections was handled (the inputs a pinned
    /// order places among the messages: see [`order`](crate::order)).
    CommandHandled {
        command: OrderedCommand,
    },
    /// A pinned input order could not be kept; the node handles inputs in arrival order from
    /// here on.
    OrderDiverged {
        divergence: OrderDivergence,
    },
    /// A protocol error worth the harness's attention.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_id: Option<Hash32>,
        message: String,
    },
}

/// A Stale channel's audit of the peer's ReestablishChannel: our numbers (from the backup),
/// the peer's, the policy that judged them and what it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub channel_id: Hash32,
    pub policy: AuditPolicy,
    /// Our local and remote commitment numbers.
    pub local: u64,
    pub remote: u64,
    /// The peer's, as its ReestablishChannel said.
    pub peer_local: u64,
    pub peer_remote: u64,
    pub outcome: AuditOutcome,
}

/// What an audit decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// The channel resumes.
    Passed,
    /// The channel stays Stale (and, with `on_audit_failure = "request_close"`, asks the peer
    /// to close).
    Failed { reason: String },
}

impl AuditEvent {
    pub fn passed(&self) -> bool {
        self.outcome == AuditOutcome::Passed
    }

    /// Why it failed, if it did.
    pub fn failure(&self) -> Option<&str> {
        match &self.outcome {
            AuditOutcome::Passed => None,
            AuditOutcome::Failed { reason } => Some(reason),
        }
    }
}

/// The audit's two wire events (see the module docs).
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum AuditWire {
    AuditPassed {
        #[serde(flatten)]
        numbers: AuditNumbers,
    },
    AuditFailed {
        #[serde(flatten)]
        numbers: AuditNumbers,
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct AuditNumbers {
    channel_id: Hash32,
    policy: AuditPolicy,
    #[serde(with = "hex_u64")]
    local: u64,
    #[serde(with = "hex_u64")]
    remote: u64,
    #[serde(with = "hex_u64")]
    peer_local: u64,
    #[serde(with = "hex_u64")]
    peer_remote: u64,
}

/// The wire `type`s of [`AuditWire`].
const AUDIT_TYPES: [&str; 2] = ["audit_passed", "audit_failed"];

impl From<&AuditEvent> for AuditWire {
    fn from(audit: &AuditEvent) -> Self {
        let numbers = AuditNumbers {
            channel_id: audit.channel_id,
            policy: audit.policy,
            local: audit.local,
            remote: audit.remote,
            peer_local: audit.peer_local,
            peer_remote: audit.peer_remote,
        };
        match &audit.outcome {
            AuditOutcome::Passed => AuditWire::AuditPassed { numbers },
            AuditOutcome::Failed { reason } => AuditWire::AuditFailed {
                numbers,
                reason: reason.clone(),
            },
        }
    }
}

impl From<AuditWire> for AuditEvent {
    fn from(wire: AuditWire) -> Self {
        let (numbers, outcome) = match wire {
            AuditWire::AuditPassed { numbers } => (numbers, AuditOutcome::Passed),
            AuditWire::AuditFailed { numbers, reason } => {
                (numbers, AuditOutcome::Failed { reason })
            }
        };
        AuditEvent {
            channel_id: numbers.channel_id,
            policy: numbers.policy,
            local: numbers.local,
            remote: numbers.remote,
            peer_local: numbers.peer_local,
            peer_remote: numbers.peer_remote,
            outcome,
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EventKind::Audit(audit) => AuditWire::from(audit).serialize(s),
            other => EventKind::serialize(other, s),
        }
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let is_audit = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|t| AUDIT_TYPES.contains(&t));
        if is_audit {
            AuditWire::deserialize(value)
                .map(|wire| EventKind::Audit(wire.into()))
                .map_err(D::Error::custom)
        } else {
            EventKind::deserialize(value).map_err(D::Error::custom)
        }
    }
}

impl EventKind {
    /// For a message sent or received: its direction, name and channel.
    pub fn message(&self) -> Option<(Direction, &MessageName, Option<Hash32>)> {
        match self {
            EventKind::MessageSent {
                msg_type,
                channel_id,
                ..
            } => Some((Direction::Sent, msg_type, *channel_id)),
            EventKind::MessageReceived {
                msg_type,
                channel_id,
                ..
            } => Some((Direction::Received, msg_type, *channel_id)),
            _ => None,
        }
    }

    /// A gossip message sent or received: about the graph, not a channel's state. Gossip
    /// floods the network; timelines and charts leave it out (the graph events say what it
    /// changed).
    pub fn is_gossip_message(&self) -> bool {
        self.message().is_some_and(|(_, name, _)| name.is_gossip())
    }
}

/// An event with its place in the node's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvent {
    #[serde(with = "hex_u64")]
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    #[serde(with = "hex_u64")]
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A transaction's kind, by name (`TxBroadcast.kind`): dlp-chain's [`TxKind`] without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxKindName {
    Faucet,
    Transfer,
    Funding,
    Commitment,
    CooperativeClose,
    Penalty,
    Sweep,
}

impl TxKindName {
    pub fn as_str(self) -> &'static str {
        match self {
            TxKindName::Faucet => "faucet",
            TxKindName::Transfer => "transfer",
            TxKindName::Funding => "funding",
            TxKindName::Commitment => "commitment",
            TxKindName::CooperativeClose => "cooperative_close",
            TxKindName::Penalty => "penalty",
            TxKindName::Sweep => "sweep",
        }
    }
}

impl From<&TxKind> for TxKindName {
    fn from(kind: &TxKind) -> Self {
        match kind {
            TxKind::Faucet { .. } => TxKindName::Faucet,
            TxKind::Transfer => TxKindName::Transfer,
            TxKind::Funding { .. } => TxKindName::Funding,
            TxKind::Commitment { .. } => TxKindName::Commitment,
            TxKind::CooperativeClose { .. } => TxKindName::CooperativeClose,
            TxKind::Penalty { .. } => TxKindName::Penalty,
            TxKind::Sweep { .. } => TxKindName::Sweep,
        }
    }
}

impl fmt::Display for TxKindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_kind_names_are_the_chains() {
        let id = Hash32([1; 32]);
        let kinds = [
            TxKind::Faucet { nonce: 1 },
            TxKind::Transfer,
            TxKind::Funding { channel_id: id },
            TxKind::Commitment {
                channel_id: id,
                holder: Pubkey([2; 33]),
                number: 3,
            },
            TxKind::CooperativeClose { channel_id: id },
            TxKind::Penalty { channel_id: id },
            TxKind::Sweep { channel_id: id },
        ];
        for kind in &kinds {
            let name = TxKindName::from(kind);
            assert_eq!(name.as_str(), kind.name());
            assert_eq!(
                serde_json::to_string(&name).expect("json"),
                format!("\"{}\"", kind.name())
            );
        }
    }

    #[test]
    fn an_unknown_message_name_does_not_fail_the_event() {
        let line = r#"{"seq":"0x1","at_ms":"0x2","type":"message_sent","peer":"0x020202020202020202020202020202020202020202020202020202020202020202","msg_type":"SpliceInit","local":"0x0","remote":"0x0"}"#;
        let event: NodeEvent = serde_json::from_str(line).expect("parses");
        assert!(matches!(
            &event.kind,
            EventKind::MessageSent { msg_type: MessageName::Unknown(name), .. } if name == "SpliceInit"
        ));
        assert_eq!(serde_json::to_string(&event).expect("json"), line);
    }

    #[test]
    fn a_malformed_event_says_what_is_wrong() {
        let err = serde_json::from_str::<NodeEvent>(
            r#"{"seq":"0x1","at_ms":"0x2","type":"persisted","channel_id":"0x00"}"#,
        )
        .expect_err("malformed");
        assert!(err.to_string().contains("32"), "{err}");
        let err = serde_json::from_str::<NodeEvent>(
            r#"{"seq":"0x1","at_ms":"0x2","type":"audit_failed","channel_id":"0x0101010101010101010101010101010101010101010101010101010101010101","policy":"lenient","local":"0x0","remote":"0x0","peer_local":"0x0","peer_remote":"0x0","reason":"r"}"#,
        )
        .expect_err("malformed");
        assert!(err.to_string().contains("lenient"), "{err}");
    }
}
