//! Passive silence: a channel restored as Stale never speaks first. Until it has received the
//! peer's `ReestablishChannel` on that channel, it sends nothing on it: not its own
//! `ReestablishChannel` (that would tell the peer we lost data, inviting it to cheat), not a
//! retransmission, nothing.
//!
//! One rule, used by the end-of-scenario invariant (`checks::silence`, over every run of every
//! node) and by the `expect_silence` step (over a node's current run).

use dlp_chain::Hash32;
use dlp_node::events::{EventKind, NodeEvent};

/// A message a Stale channel sent before the peer's `ReestablishChannel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// The message's type name (`ReestablishChannel`, `CommitmentSigned`, ...).
    pub message: String,
    /// The sequence number of its `MessageSent` event.
    pub seq: u64,
}

/// Every message sent on `channel` before the peer's `ReestablishChannel` was received on it,
/// in the events of one run of one node (in order).
pub fn breaches<'a>(
    events: impl IntoIterator<Item = &'a NodeEvent>,
    channel: Hash32,
) -> Vec<Breach> {
    let mut heard = false;
    let mut out = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::MessageReceived {
                msg_type,
                channel_id,
                ..
            } if msg_type == "ReestablishChannel" && *channel_id == Some(channel) => {
                heard = true;
            }
            EventKind::MessageSent {
                msg_type,
                channel_id,
                ..
            } if !heard && *channel_id == Some(channel) => out.push(Breach {
                message: msg_type.clone(),
                seq: event.seq,
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlp_chain::Pubkey;

    fn event(seq: u64, kind: EventKind) -> NodeEvent {
        NodeEvent {
            seq,
            at_ms: seq,
            kind,
        }
    }

    fn sent(seq: u64, msg: &str, channel: Hash32) -> NodeEvent {
        event(
            seq,
            EventKind::MessageSent {
                peer: Pubkey([2; 33]),
                msg_type: msg.into(),
                channel_id: Some(channel),
                local: 0,
                remote: 0,
            },
        )
    }

    fn received(seq: u64, msg: &str, channel: Hash32) -> NodeEvent {
        event(
            seq,
            EventKind::MessageReceived {
                peer: Pubkey([2; 33]),
                msg_type: msg.into(),
                channel_id: Some(channel),
                local: 0,
                remote: 0,
            },
        )
    }

    #[test]
    fn only_messages_before_the_peers_reestablish_on_that_channel_break_silence() {
        let (a, b) = (Hash32([1; 32]), Hash32([2; 32]));
        let events = [
            sent(1, "ReestablishChannel", b),
            sent(2, "ReestablishChannel", a),
            received(3, "ReestablishChannel", a),
            sent(4, "ReestablishChannel", a),
        ];
        assert_eq!(
            breaches(&events, a),
            [Breach {
                message: "ReestablishChannel".into(),
                seq: 2
            }]
        );
        assert_eq!(breaches(&events[2..], a), []);
        assert_eq!(breaches(&events, b).len(), 1);
    }
}
