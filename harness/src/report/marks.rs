//! What each event, and each lifecycle step of the scenario, puts on a lane: message labels
//! with commitment numbers, marks for states, audits, backups, holds, payments and errors,
//! and where a run ended (crash, stop, restore) or its file was cut.

use std::collections::BTreeMap;

use dlp_chain::Hash32;
use dlp_node::events::EventKind;

use super::chart::{Item, Lane, Pending, Queue};
use super::load::RunData;
use super::names::Names;
use super::record::StepRecord;

/// Whether the event is a gossip message sent or received. The chart leaves them out: a
/// channel's announcement and policies flood the whole network (hundreds of arrows on a line
/// of ten), carry no channel state, and the graph marks say what they changed.
pub(super) fn is_gossip_message(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::MessageSent { msg_type, .. } | EventKind::MessageReceived { msg_type, .. }
            if dlp_node::wire::PeerMessage::GOSSIP_TYPE_NAMES.contains(&msg_type.as_str())
    )
}

/// `RevokeAndAck ab  L2 R3` at the send; `L3 R2` at the receive.
pub(super) fn message_label(kind: &EventKind, names: &Names, sent: bool) -> String {
    match kind {
        EventKind::MessageSent {
            msg_type,
            channel_id,
            local,
            remote,
            ..
        }
        | EventKind::MessageReceived {
            msg_type,
            channel_id,
            local,
            remote,
            ..
        } => {
            let channel = channel_id
                .map(|c| format!(" {}", names.channel(&c)))
                .unwrap_or_default();
            if sent {
                format!("{msg_type}{channel}  L{local} R{remote}")
            } else {
                format!("{msg_type}  L{local} R{remote}")
            }
        }
        _ => String::new(),
    }
}

/// The mark an event makes, if any (`Persisted` makes none: every step persists).
pub(super) fn mark(
    kind: &EventKind,
    names: &Names,
    data: &RunData,
) -> Option<(&'static str, String)> {
    let ch = |c: &Hash32| names.channel(c);
    Some(match kind {
        EventKind::Started { .. } => ("start", "started".to_string()),
        EventKind::PeerConnected { peer, inbound } => (
            "conn",
            format!(
                "connected {} {}",
                if *inbound { "from" } else { "to" },
                names.key(&peer.to_string())
            ),
        ),
        EventKind::PeerDisconnected { peer, reason } => (
            "conn",
            format!(
                "disconnected from {} ({reason})",
                names.key(&peer.to_string())
            ),
        ),
        EventKind::StateChanged {
            channel_id,
            from,
            to,
        } => ("state", format!("{}: {from} → {to}", ch(channel_id))),
        EventKind::AuditPassed {
            channel_id,
            policy,
            local,
            remote,
            peer_local,
            peer_remote,
        } => (
            "audit passed",
            format!(
                "audit PASSED ({policy}) {}: ours L{local} R{remote} · peer L{peer_local} R{peer_remote}",
                ch(channel_id)
            ),
        ),
        EventKind::AuditFailed {
            channel_id,
            policy,
            local,
            remote,
            peer_local,
            peer_remote,
            reason,
        } => (
            "audit failed",
            format!(
                "audit FAILED ({policy}) {}: ours L{local} R{remote} · peer L{peer_local} R{peer_remote}: {reason}",
                ch(channel_id)
            ),
        ),
        EventKind::BackupWritten {
            dir,
            step,
            automatic,
        } => {
            let named = data
                .record
                .backups
                .iter()
                // By the backup's own directory name: a container reports it under its path.
                .find(|b| b.dir.file_name() == std::path::Path::new(dir).file_name())
                .map(|b| format!(" \"{}\"", b.name))
                .unwrap_or_default();
            let how = match (step, automatic) {
                (Some(step), _) => format!(" at {step}"),
                (None, true) => " (automatic)".to_string(),
                (None, false) => String::new(),
            };
            ("backup", format!("backup{named}{how}"))
        }
        EventKind::Held { step } => ("hold", format!("HELD at {step}")),
        EventKind::Released { step } => ("hold", format!("released from {step}")),
        EventKind::PaymentUpdated {
            payment_hash,
            status,
            reason,
        } => (
            "payment",
            format!(
                "payment {} {status}{}",
                payment_hash
                    .to_string()
                    .chars()
                    .take(10)
                    .collect::<String>(),
                reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ),
        EventKind::MessageIgnored {
            msg_type, reason, ..
        } => ("warn", format!("ignored {msg_type}: {reason}")),
        EventKind::UnknownChannelReestablish { peer, channel_id } => (
            "warn",
            format!(
                "unknown channel {} reestablished by {}: asked it to force-close",
                ch(channel_id),
                names.key(&peer.to_string())
            ),
        ),
        EventKind::RecoveredFromUnknownChannel {
            channel_id, amount, ..
        } => (
            "payment",
            format!("recovered {amount} from unknown channel {}", ch(channel_id)),
        ),
        EventKind::Error {
            channel_id,
            message,
        } => (
            "error",
            format!(
                "ERROR{}: {message}",
                channel_id
                    .map(|c| format!(" on {}", ch(&c)))
                    .unwrap_or_default()
            ),
        ),
        EventKind::GossipRefused {
            peer,
            msg_type,
            reason,
        } => (
            "warn",
            format!(
                "refused {msg_type} from {}: {reason}",
                names.key(&peer.to_string())
            ),
        ),
        EventKind::GraphChannelUpdated {
            channel_id,
            node,
            enabled: false,
        } => (
            "graph",
            format!(
                "graph: {} disabled by {}",
                ch(channel_id),
                names.key(&node.to_string())
            ),
        ),
        EventKind::GraphChannelRemoved { channel_id } => {
            ("conn", format!("graph − {} (closed)", ch(channel_id)))
        }
        // Every node learns every channel and its policies: a mark each would bury the
        // protocol; a disabled direction, a removal or a refusal is worth one.
        EventKind::GraphChannelAdded { .. }
        | EventKind::GraphChannelUpdated { .. }
        | EventKind::Persisted { .. }
        | EventKind::MessageSent { .. }
        | EventKind::MessageReceived { .. }
        | EventKind::TxBroadcast { .. } => return None,
    })
}

/// Crashes, stops and restores from the steps: a mark where the lane ends, and what started
/// the next run.
pub(super) fn lifecycle_marks(
    data: &RunData,
    lanes: &mut [Lane],
    lane_of: &BTreeMap<(String, u32), usize>,
    queues: &mut [Queue],
) {
    for step in &data.record.steps {
        let Some(at) = step.started_ms else { continue };
        let Some((verb, fields)) = step_fields(step) else {
            continue;
        };
        let Some(node) = fields.get("node").and_then(|v| v.as_str()) else {
            continue;
        };
        let Some(data_node) = data.nodes.iter().find(|n| n.name == node) else {
            continue;
        };
        // The run live when the step started, and the one it started (if any).
        let live = data_node
            .runs
            .iter()
            .rfind(|r| r.events.first().is_some_and(|e| e.at_ms <= at));
        let next = data_node.runs.iter().find(|r| {
            r.events
                .first()
                .is_some_and(|e| e.at_ms >= at && step.ended_ms.is_none_or(|end| e.at_ms <= end))
        });
        let (class, text) = match verb.as_str() {
            "crash" => ("crash", "✕ crashed (killed where it stood)".to_string()),
            "stop" => ("stop", "stopped".to_string()),
            "restart" => ("stop", "stopped for a restart".to_string()),
            "restore" => ("stop", "stopped for a restore".to_string()),
            "pause" => ("hold", "paused (frozen)".to_string()),
            "resume" => ("hold", "resumed".to_string()),
            _ => continue,
        };
        if let Some(run) = live
            && lane_of.contains_key(&(node.to_string(), run.run))
            && next.is_none_or(|n| n.run != run.run)
        {
            let lane = lane_of[&(node.to_string(), run.run)];
            let last = run.events.last().map_or(at, |e| e.at_ms);
            let when = if matches!(verb.as_str(), "pause" | "resume") {
                at
            } else {
                at.max(last)
            };
            queues[lane + 1].push_back((when, Pending::Row(Item::Mark { lane, class, text })));
        }
        if let Some(run) = next
            && let Some(lane) = lane_of.get(&(node.to_string(), run.run))
        {
            lanes[*lane].note = Some(match (verb.as_str(), fields.get("backup")) {
                ("restore", Some(b)) => format!("restored from {b}"),
                (v, _) => format!("after {v}"),
            });
        }
    }
    for node in &data.nodes {
        if let (Some(cut), Some(run)) = (&node.cut, node.runs.last()) {
            let lane = lane_of[&(node.name.clone(), run.run)];
            let at = run
                .events
                .last()
                .map_or(data.record.started_ms, |e| e.at_ms);
            queues[lane + 1].push_back((
                at,
                Pending::Row(Item::Mark {
                    lane,
                    class: "cut",
                    text: format!(
                        "✂ events.jsonl cut here (line {}, {} bytes incomplete)",
                        cut.line, cut.bytes
                    ),
                }),
            ));
            lanes[lane].note = Some("its events.jsonl is cut".into());
        }
    }
}

/// A step's verb and fields from its record (`{"restore": {"node": "bob", ...}}`).
pub fn step_fields(
    step: &StepRecord,
) -> Option<(String, serde_json::Map<String, serde_json::Value>)> {
    let object = step.step.as_object()?;
    let (verb, fields) = object.iter().next()?;
    Some((
        verb.clone(),
        fields.as_object().cloned().unwrap_or_default(),
    ))
}
