//! Passive silence: a channel restored as Stale never speaks first. Until it has received the
//! peer's `ReestablishChannel` on that channel, it sends nothing on it: not its own
//! `ReestablishChannel` (that would tell the peer we lost data, inviting it to cheat), not a
//! retransmission, nothing.
//!
//! One exception, the resolution of a channel Stale at both ends (`mutual_stale = "reveal"`,
//! the default under the `strict` policy), per connection to the channel's peer:
//! - `StaleNotice`, at most once per connection;
//! - its own `ReestablishChannel`, at most once per connection, and only by the end whose node
//!   key (compressed, 33 bytes) is bytewise lower than the peer's, after it sent its own
//!   `StaleNotice` and received the peer's on that connection.
//!
//! Everything else before the peer's `ReestablishChannel` is a breach, in either mode; under
//! `wait` (the default under `fiber`) there is no exception at all.
//!
//! One rule, used by the end-of-scenario invariant (`checks::silence`, over every run of every
//! node) and by the `expect_silence` step (over a node's current run).

use dlp_chain::{Hash32, Pubkey};
use dlp_node_api::{AuditPolicy, EventKind, MessageName, MutualStale, NodeEvent};

/// A message a Stale channel sent before the peer's `ReestablishChannel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// The message (`ReestablishChannel`, `CommitmentSigned`, ...).
    pub message: MessageName,
    /// The sequence number of its `MessageSent` event.
    pub seq: u64,
}

/// The node whose events are judged: its key (for the tie-break) and its effective mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speaker {
    pub me: Pubkey,
    pub mode: MutualStale,
}

/// The effective `mutual_stale` of a node configured with these (unset) values: the mode if
/// set, else `wait` under the `fiber` policy (the default) and `reveal` under `strict`.
pub fn effective_mode(policy: Option<AuditPolicy>, mode: Option<MutualStale>) -> MutualStale {
    mode.unwrap_or(match policy.unwrap_or_default() {
        AuditPolicy::Fiber => MutualStale::Wait,
        AuditPolicy::Strict => MutualStale::Reveal,
    })
}

/// The event after which a Stale channel `id` under `mutual_stale = "reveal"` has left its
/// timer behind: it audited the peer's numbers, or it revealed itself (sent its StaleNotice).
/// What follows is messages, which quiescence covers; the timer before it is not.
pub fn audited_or_revealed(id: Hash32) -> impl Fn(&EventKind) -> bool {
    move |k| {
        matches!(k, EventKind::Audit(audit) if audit.channel_id == id)
            || matches!(k, EventKind::MessageSent {
                msg_type: MessageName::StaleNotice,
                channel_id: Some(c),
                ..
            } if *c == id)
    }
}

/// What the channel said and heard on the current connection.
#[derive(Debug, Default)]
struct Connection {
    notice_sent: bool,
    notice_received: bool,
    numbers_sent: bool,
}

/// Every message sent on `channel` before the peer's `ReestablishChannel` was received on it
/// that the rule above does not allow, in the events of one run of one node (in order).
pub fn breaches<'a>(
    events: impl IntoIterator<Item = &'a NodeEvent>,
    channel: Hash32,
    speaker: Speaker,
) -> Vec<Breach> {
    let reveal = speaker.mode == MutualStale::Reveal;
    let mut heard = false;
    // The channel's peer, once a message on the channel names it.
    let mut peer: Option<Pubkey> = None;
    let mut conn = Connection::default();
    let mut out = Vec::new();
    for event in events {
        if heard {
            break;
        }
        match &event.kind {
            EventKind::PeerConnected { peer: p, .. }
            | EventKind::PeerDisconnected { peer: p, .. }
                if peer == Some(*p) =>
            {
                conn = Connection::default();
            }
            EventKind::MessageReceived {
                peer: p,
                msg_type,
                channel_id,
                ..
            } if *channel_id == Some(channel) => {
                peer = Some(*p);
                match msg_type {
                    MessageName::ReestablishChannel => heard = true,
                    MessageName::StaleNotice => conn.notice_received = true,
                    _ => {}
                }
            }
            EventKind::MessageSent {
                peer: p,
                msg_type,
                channel_id,
                ..
            } if *channel_id == Some(channel) => {
                peer = Some(*p);
                let allowed = reveal
                    && match msg_type {
                        MessageName::StaleNotice => !std::mem::replace(&mut conn.notice_sent, true),
                        MessageName::ReestablishChannel => {
                            speaker.me.0 < p.0
                                && conn.notice_sent
                                && conn.notice_received
                                && !std::mem::replace(&mut conn.numbers_sent, true)
                        }
                        _ => false,
                    };
                if !allowed {
                    out.push(Breach {
                        message: msg_type.clone(),
                        seq: event.seq,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: Pubkey = Pubkey([2; 33]);
    const HIGH: Pubkey = Pubkey([3; 33]);

    fn event(seq: u64, kind: EventKind) -> NodeEvent {
        NodeEvent {
            seq,
            at_ms: seq,
            kind,
        }
    }

    fn sent_to(seq: u64, peer: Pubkey, msg: MessageName, channel: Hash32) -> NodeEvent {
        event(
            seq,
            EventKind::MessageSent {
                peer,
                msg_type: msg,
                channel_id: Some(channel),
                local: 0,
                remote: 0,
            },
        )
    }

    fn received_from(seq: u64, peer: Pubkey, msg: MessageName, channel: Hash32) -> NodeEvent {
        event(
            seq,
            EventKind::MessageReceived {
                peer,
                msg_type: msg,
                channel_id: Some(channel),
                local: 0,
                remote: 0,
            },
        )
    }

    fn connected(seq: u64, peer: Pubkey) -> NodeEvent {
        event(
            seq,
            EventKind::PeerConnected {
                peer,
                inbound: false,
            },
        )
    }

    fn sent(seq: u64, msg: MessageName, channel: Hash32) -> NodeEvent {
        sent_to(seq, HIGH, msg, channel)
    }

    fn received(seq: u64, msg: MessageName, channel: Hash32) -> NodeEvent {
        received_from(seq, HIGH, msg, channel)
    }

    fn speaker(me: Pubkey, mode: MutualStale) -> Speaker {
        Speaker { me, mode }
    }

    fn names(breaches: &[Breach]) -> Vec<(MessageName, u64)> {
        breaches
            .iter()
            .map(|b| (b.message.clone(), b.seq))
            .collect()
    }

    #[test]
    fn only_messages_before_the_peers_reestablish_on_that_channel_break_silence() {
        let (a, b) = (Hash32([1; 32]), Hash32([2; 32]));
        let events = [
            sent(1, MessageName::ReestablishChannel, b),
            sent(2, MessageName::ReestablishChannel, a),
            received(3, MessageName::ReestablishChannel, a),
            sent(4, MessageName::ReestablishChannel, a),
        ];
        for mode in [MutualStale::Wait, MutualStale::Reveal] {
            let who = speaker(LOW, mode);
            assert_eq!(
                breaches(&events, a, who),
                [Breach {
                    message: MessageName::ReestablishChannel,
                    seq: 2
                }],
                "{mode}"
            );
            assert_eq!(breaches(&events[2..], a, who), []);
            assert_eq!(breaches(&events, b, who).len(), 1);
        }
    }

    /// The resolution as the lower key runs it: notice, peer's notice, numbers, peer's numbers.
    fn lower_key_resolution(channel: Hash32) -> Vec<NodeEvent> {
        vec![
            connected(1, HIGH),
            sent(2, MessageName::StaleNotice, channel),
            received(3, MessageName::StaleNotice, channel),
            sent(4, MessageName::ReestablishChannel, channel),
            received(5, MessageName::ReestablishChannel, channel),
            sent(6, MessageName::RevokeAndAck, channel),
        ]
    }

    #[test]
    fn reveal_allows_the_notice_and_the_lower_keys_numbers_after_both_notices() {
        let c = Hash32([1; 32]);
        let events = lower_key_resolution(c);
        assert_eq!(breaches(&events, c, speaker(LOW, MutualStale::Reveal)), []);
        // The same events are breaches under `wait`: no exception at all.
        assert_eq!(
            names(&breaches(&events, c, speaker(LOW, MutualStale::Wait))),
            [
                (MessageName::StaleNotice, 2),
                (MessageName::ReestablishChannel, 4)
            ]
        );
        // And by the higher key: it must wait for the peer's numbers.
        let higher = [
            connected(1, LOW),
            sent_to(2, LOW, MessageName::StaleNotice, c),
            received_from(3, LOW, MessageName::StaleNotice, c),
            sent_to(4, LOW, MessageName::ReestablishChannel, c),
        ];
        assert_eq!(
            names(&breaches(&higher, c, speaker(HIGH, MutualStale::Reveal))),
            [(MessageName::ReestablishChannel, 4)]
        );
        // The higher key answering the lower key's numbers is no breach.
        let answer = [
            sent_to(2, LOW, MessageName::StaleNotice, c),
            received_from(3, LOW, MessageName::StaleNotice, c),
            received_from(4, LOW, MessageName::ReestablishChannel, c),
            sent_to(5, LOW, MessageName::ReestablishChannel, c),
        ];
        assert_eq!(breaches(&answer, c, speaker(HIGH, MutualStale::Reveal)), []);
    }

    #[test]
    fn reveal_still_breaches_everything_else() {
        let c = Hash32([1; 32]);
        let who = speaker(LOW, MutualStale::Reveal);
        // Numbers without the peer's notice, or before our own.
        let no_peer_notice = [
            sent(1, MessageName::StaleNotice, c),
            sent(2, MessageName::ReestablishChannel, c),
        ];
        assert_eq!(
            names(&breaches(&no_peer_notice, c, who)),
            [(MessageName::ReestablishChannel, 2)]
        );
        let before_ours = [
            received(1, MessageName::StaleNotice, c),
            sent(2, MessageName::ReestablishChannel, c),
            sent(3, MessageName::StaleNotice, c),
        ];
        assert_eq!(
            names(&breaches(&before_ours, c, who)),
            [(MessageName::ReestablishChannel, 2)]
        );
        // Twice on one connection.
        let twice = [
            sent(1, MessageName::StaleNotice, c),
            sent(2, MessageName::StaleNotice, c),
            received(3, MessageName::StaleNotice, c),
            sent(4, MessageName::ReestablishChannel, c),
            sent(5, MessageName::ReestablishChannel, c),
        ];
        assert_eq!(
            names(&breaches(&twice, c, who)),
            [
                (MessageName::StaleNotice, 2),
                (MessageName::ReestablishChannel, 5)
            ]
        );
        // Anything else, even after both notices.
        let other = [
            sent(1, MessageName::StaleNotice, c),
            received(2, MessageName::StaleNotice, c),
            sent(3, MessageName::CommitmentSigned, c),
            sent(4, MessageName::RequestForceClose, c),
        ];
        assert_eq!(
            names(&breaches(&other, c, who)),
            [
                (MessageName::CommitmentSigned, 3),
                (MessageName::RequestForceClose, 4)
            ]
        );
    }

    #[test]
    fn a_new_connection_starts_the_resolution_again() {
        let c = Hash32([1; 32]);
        let who = speaker(LOW, MutualStale::Reveal);
        // The peer's notice on the first connection does not count on the second.
        let events = [
            connected(1, HIGH),
            sent(2, MessageName::StaleNotice, c),
            received(3, MessageName::StaleNotice, c),
            connected(4, HIGH),
            sent(5, MessageName::ReestablishChannel, c),
            sent(6, MessageName::StaleNotice, c),
            received(7, MessageName::StaleNotice, c),
            sent(8, MessageName::ReestablishChannel, c),
        ];
        assert_eq!(
            names(&breaches(&events, c, who)),
            [(MessageName::ReestablishChannel, 5)]
        );
        // Another peer's connection changes nothing.
        let other_peer = [
            sent(1, MessageName::StaleNotice, c),
            connected(2, Pubkey([9; 33])),
            sent(3, MessageName::StaleNotice, c),
        ];
        assert_eq!(
            names(&breaches(&other_peer, c, who)),
            [(MessageName::StaleNotice, 3)]
        );
    }

    #[test]
    fn the_effective_mode_follows_the_policy_unless_set() {
        assert_eq!(effective_mode(None, None), MutualStale::Wait);
        assert_eq!(
            effective_mode(Some(AuditPolicy::Fiber), None),
            MutualStale::Wait
        );
        assert_eq!(
            effective_mode(Some(AuditPolicy::Strict), None),
            MutualStale::Reveal
        );
        assert_eq!(
            effective_mode(Some(AuditPolicy::Strict), Some(MutualStale::Wait)),
            MutualStale::Wait
        );
        assert_eq!(
            effective_mode(None, Some(MutualStale::Reveal)),
            MutualStale::Reveal
        );
    }
}
