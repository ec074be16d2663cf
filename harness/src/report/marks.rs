//! What each event, and each lifecycle step of the scenario, puts on a lane: message labels
//! with commitment numbers, marks for states, audits, backups, holds, payments and errors (in
//! the events' own words), and where a run ended (crash, stop, restore) or its file was cut.

use std::collections::BTreeMap;

use dlp_node_api::EventKind;

use super::lanes::{Item, Lane, Pending, Queue};
use super::load::RunData;
use super::names::Names;
use super::record::StepRecord;

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

/// The mark an event makes, if any, in the events' own words (`dlp_node_api::describe`) with
/// the scenario's names. `Persisted` makes none (every step persists), nor do messages (they
/// are arrows) and transactions (they go to the ledger lane); every node learns every channel
/// and its policies, so only a disabled direction, a removal or a refusal is worth a mark.
pub(super) fn mark(kind: &EventKind, names: &Names) -> Option<(&'static str, String)> {
    let class = match kind {
        EventKind::Started { .. } => "start",
        EventKind::PeerConnected { .. }
        | EventKind::PeerDisconnected { .. }
        | EventKind::GraphChannelRemoved { .. } => "conn",
        EventKind::StateChanged { .. } => "state",
        EventKind::Audit(audit) if audit.passed() => "audit passed",
        EventKind::Audit(_) => "audit failed",
        EventKind::BackupWritten { .. } => "backup",
        EventKind::Held { .. } | EventKind::Released { .. } => "hold",
        EventKind::PaymentUpdated { .. } | EventKind::RecoveredFromUnknownChannel { .. } => {
            "payment"
        }
        EventKind::MessageIgnored { .. }
        | EventKind::UnknownChannelReestablish { .. }
        | EventKind::GossipRefused { .. } => "warn",
        EventKind::Error { .. } | EventKind::OrderDiverged { .. } => "error",
        EventKind::GraphChannelUpdated { enabled: false, .. } => "graph",
        EventKind::GraphChannelAdded { .. }
        | EventKind::GraphChannelUpdated { .. }
        | EventKind::Persisted { .. }
        | EventKind::MessageSent { .. }
        | EventKind::MessageReceived { .. }
        | EventKind::CommandHandled { .. }
        | EventKind::TxBroadcast { .. } => return None,
    };
    Some((class, kind.describe(names).to_string()))
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
