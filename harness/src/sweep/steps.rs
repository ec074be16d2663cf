//! Which protocol steps of the node under test are backup points.
//!
//! A step is a message the node sent or received on one of its channels at which its store
//! holds a state it had not held at the previous step: a `Persisted` event of that channel came
//! since the channel's previous message event. (The channel's state is not looked at: whether
//! a cooperative close's last message or the ledger's close arrives first is a race, and a
//! point list must not depend on it. A backup of a closed channel restores as closed.) The core persists before it publishes the message events of the
//! same input, so a backup armed at that step (`backup_at`, `nth` counted from the arming
//! point) holds exactly that state.

use std::collections::{BTreeMap, BTreeSet};

use dlp_chain::Hash32;
use dlp_node_api::{EventKind, NodeEvent, ProtocolStep};
use serde::{Deserialize, Serialize};

/// One backup point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPoint {
    /// 1-based position in the sweep.
    pub index: usize,
    /// `sent:<Message>` / `received:<Message>`.
    pub step: String,
    /// The channel's name in the workload.
    pub channel: String,
    /// Which occurrence of `step` on `channel` since the arming point.
    pub nth: u64,
    /// The node's `(L, R)` on every one of its channels at this step, by channel name.
    pub numbers: BTreeMap<String, (u64, u64)>,
}

impl BackupPoint {
    /// `sent:CommitmentSigned#2 on ab`.
    pub fn label(&self) -> String {
        format!("{}#{} on {}", self.step, self.nth, self.channel)
    }

    /// What identifies the point across runs and backends: the step, and the numbers of its
    /// own channel (the node's other channels may have interleaved differently).
    pub fn key(&self) -> (String, Option<(u64, u64)>) {
        (self.label(), self.numbers.get(&self.channel).copied())
    }
}

/// The message event's `(step, channel, numbers)` if it is a message on a channel.
pub(crate) fn message_step(event: &EventKind) -> Option<(String, Hash32, (u64, u64))> {
    let (direction, message, id) = event.message()?;
    let (EventKind::MessageSent { local, remote, .. }
    | EventKind::MessageReceived { local, remote, .. }) = event
    else {
        return None;
    };
    let step = ProtocolStep {
        direction,
        message: message.clone(),
    };
    Some((step.to_string(), id?, (*local, *remote)))
}

/// The node's numbers on each named channel as of the events given (latest wins).
pub(crate) fn numbers_in<'a>(
    events: impl IntoIterator<Item = &'a NodeEvent>,
    channels: &BTreeMap<Hash32, String>,
    start: &BTreeMap<String, (u64, u64)>,
) -> BTreeMap<String, (u64, u64)> {
    let mut numbers = start.clone();
    for event in events {
        let found = match &event.kind {
            EventKind::Persisted {
                channel_id,
                local,
                remote,
            } => Some((*channel_id, (*local, *remote))),
            other => message_step(other).map(|(_, id, n)| (id, n)),
        };
        if let Some((id, n)) = found
            && let Some(name) = channels.get(&id)
        {
            numbers.insert(name.clone(), n);
        }
    }
    numbers
}

/// The backup points among `events` (the node's events after the arming point).
/// `channels` names the node's channels; `start` holds their numbers at the arming point. A
/// channel opened by a step is counted only after `counted_from[channel]` (the event sequence
/// number right after its opening step, where its points' backups are armed).
pub fn backup_points(
    events: &[NodeEvent],
    channels: &BTreeMap<Hash32, String>,
    start: &BTreeMap<String, (u64, u64)>,
    counted_from: &BTreeMap<Hash32, u64>,
) -> Vec<BackupPoint> {
    let mut points = Vec::new();
    let mut seen: BTreeMap<(String, Hash32), u64> = BTreeMap::new();
    let mut persisted: BTreeSet<Hash32> = BTreeSet::new();
    let before_counting = |id: &Hash32, seq: u64| counted_from.get(id).is_some_and(|f| seq <= *f);
    for (i, event) in events.iter().enumerate() {
        match &event.kind {
            EventKind::Persisted { channel_id, .. } if before_counting(channel_id, event.seq) => {}
            other
                if message_step(other)
                    .is_some_and(|(_, id, _)| before_counting(&id, event.seq)) => {}
            EventKind::Persisted { channel_id, .. } => {
                persisted.insert(*channel_id);
            }
            other => {
                let Some((step, id, _)) = message_step(other) else {
                    continue;
                };
                let nth = seen.entry((step.clone(), id)).or_default();
                *nth += 1;
                let Some(name) = channels.get(&id) else {
                    continue;
                };
                if persisted.remove(&id) {
                    points.push(BackupPoint {
                        index: points.len() + 1,
                        step,
                        channel: name.clone(),
                        nth: *nth,
                        numbers: numbers_in(&events[..=i], channels, start),
                    });
                }
            }
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use dlp_chain::Pubkey;
    use dlp_node_api::MessageName;

    fn ev(seq: u64, kind: EventKind) -> NodeEvent {
        NodeEvent {
            seq,
            at_ms: 0,
            kind,
        }
    }

    #[test]
    fn only_messages_after_a_persist_of_their_channel_are_points() {
        let ab = Hash32([1; 32]);
        let peer = Pubkey([2; 33]);
        let persisted = |seq, local, remote| {
            ev(
                seq,
                EventKind::Persisted {
                    channel_id: ab,
                    local,
                    remote,
                },
            )
        };
        let sent = |seq, msg: MessageName, local, remote| {
            ev(
                seq,
                EventKind::MessageSent {
                    peer,
                    msg_type: msg,
                    channel_id: Some(ab),
                    local,
                    remote,
                },
            )
        };
        let received = |seq, msg: MessageName, local, remote| {
            ev(
                seq,
                EventKind::MessageReceived {
                    peer,
                    msg_type: msg,
                    channel_id: Some(ab),
                    local,
                    remote,
                },
            )
        };
        let events = vec![
            persisted(1, 1, 1),
            sent(2, MessageName::AddTlc, 1, 1),
            sent(3, MessageName::CommitmentSigned, 1, 1), // same flush: no new state
            persisted(4, 2, 1),
            received(5, MessageName::RevokeAndAck, 2, 1),
            received(6, MessageName::CommitmentSigned, 2, 1), // nothing persisted: not a point
            persisted(7, 2, 2),
            received(8, MessageName::CommitmentSigned, 2, 2),
            sent(9, MessageName::RevokeAndAck, 2, 2),
        ];
        let channels = BTreeMap::from([(ab, "ab".to_string())]);
        let start = BTreeMap::from([("ab".to_string(), (1, 1))]);
        let points = backup_points(&events, &channels, &start, &BTreeMap::new());
        let labels: Vec<String> = points.iter().map(BackupPoint::label).collect();
        assert_eq!(
            labels,
            [
                "sent:AddTlc#1 on ab",
                "received:RevokeAndAck#1 on ab",
                "received:CommitmentSigned#2 on ab"
            ]
        );
        assert_eq!(points[2].numbers["ab"], (2, 2));
        assert_eq!(points[1].numbers["ab"], (2, 1));
    }
}
