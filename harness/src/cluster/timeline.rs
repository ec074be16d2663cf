//! The merged, human timeline of a run: the steps the scenario took and every node's events,
//! ordered by time, one line each (`bob#2  received ReestablishChannel on 0x1234 (L3 R3)`).
//! It is what a failure report shows, and what a timeout shows of each node. Gossip messages
//! are left out of both (they flood the network and carry no channel state; the graph events
//! say what they changed): `events.jsonl` and `report.html` keep everything.

use dlp_chain::{Hash32, Pubkey};
use dlp_node::events::EventKind;

use super::Network;

/// One line of the merged timeline.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    pub at_ms: u64,
    /// `step`, or the node's run (`bob#2`).
    pub who: String,
    pub what: String,
}

impl Network {
    /// Record a scenario step in the timeline.
    pub fn note_step(&mut self, what: impl Into<String>) {
        self.steps.push(TimelineEntry {
            at_ms: dlp_node::fsutil::unix_ms(),
            who: "step".into(),
            what: what.into(),
        });
    }

    /// A merged cross-node timeline of steps and protocol events.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let mut all = self.steps.clone();
        for (name, entry) in &self.nodes {
            for (run, e) in entry
                .history
                .iter()
                .filter(|(_, e)| !is_gossip_message(&e.kind))
            {
                all.push(TimelineEntry {
                    at_ms: e.at_ms,
                    who: format!("{name}#{run}"),
                    what: describe(&e.kind),
                });
            }
        }
        all.sort_by_key(|t| t.at_ms);
        all
    }

    /// The last `n` events of every node, for error messages (read from what was fetched: a
    /// paused node is not asked, and is said to be paused).
    pub fn recent_events(&self, n: usize) -> String {
        let mut out = String::new();
        for (name, entry) in &self.nodes {
            let paused = if entry.paused {
                " (paused: nothing fetched since)"
            } else {
                ""
            };
            out.push_str(&format!("  last events of {name}{paused}:\n"));
            let shown: Vec<_> = entry
                .history
                .iter()
                .filter(|(_, e)| !is_gossip_message(&e.kind))
                .collect();
            for (run, e) in shown.iter().rev().take(n).rev() {
                out.push_str(&format!(
                    "    {name}#{run} #{} {}\n",
                    e.seq,
                    describe(&e.kind)
                ));
            }
        }
        out
    }
}

/// A gossip message sent or received (see the module docs).
pub fn is_gossip_message(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::MessageSent { msg_type, .. } | EventKind::MessageReceived { msg_type, .. }
            if dlp_node::wire::PeerMessage::GOSSIP_TYPE_NAMES.contains(&msg_type.as_str())
    )
}

/// One line describing an event.
pub fn describe(kind: &EventKind) -> String {
    let short = |h: &Hash32| format!("{}", h).chars().take(10).collect::<String>();
    match kind {
        EventKind::MessageSent {
            msg_type,
            channel_id,
            local,
            remote,
            ..
        } => format!(
            "sent {msg_type}{} (L{local} R{remote})",
            channel_id
                .map(|c| format!(" on {}", short(&c)))
                .unwrap_or_default()
        ),
        EventKind::MessageReceived {
            msg_type,
            channel_id,
            local,
            remote,
            ..
        } => format!(
            "received {msg_type}{} (L{local} R{remote})",
            channel_id
                .map(|c| format!(" on {}", short(&c)))
                .unwrap_or_default()
        ),
        EventKind::StateChanged {
            channel_id,
            from,
            to,
        } => {
            format!("{} {from} -> {to}", short(channel_id))
        }
        EventKind::AuditPassed {
            channel_id,
            policy,
            local,
            remote,
            peer_local,
            peer_remote,
        } => format!(
            "audit PASSED ({policy}) on {}: ours L{local} R{remote}, peer L{peer_local} R{peer_remote}",
            short(channel_id)
        ),
        EventKind::AuditFailed {
            channel_id,
            policy,
            reason,
            ..
        } => {
            format!("audit FAILED ({policy}) on {}: {reason}", short(channel_id))
        }
        EventKind::TxBroadcast {
            kind,
            accepted,
            reject_reason,
            ..
        } => format!(
            "broadcast {kind} {}",
            if *accepted {
                "accepted".to_string()
            } else {
                format!("REJECTED: {}", reject_reason.clone().unwrap_or_default())
            }
        ),
        EventKind::Persisted {
            channel_id,
            local,
            remote,
        } => {
            format!("persisted {} (L{local} R{remote})", short(channel_id))
        }
        EventKind::Started { pubkey } => format!("started as {}", short_key(pubkey)),
        EventKind::PeerConnected { peer, inbound } => format!(
            "connected {} {}",
            if *inbound { "from" } else { "to" },
            short_key(peer)
        ),
        EventKind::PeerDisconnected { peer, reason } => {
            format!("disconnected from {} ({reason})", short_key(peer))
        }
        EventKind::MessageIgnored {
            msg_type,
            channel_id,
            reason,
            ..
        } => format!(
            "IGNORED {msg_type}{}: {reason}",
            channel_id
                .map(|c| format!(" on {}", short(&c)))
                .unwrap_or_default()
        ),
        EventKind::UnknownChannelReestablish { peer, channel_id } => format!(
            "UNKNOWN channel {} reestablished by {}: asked it to force-close",
            short(channel_id),
            short_key(peer)
        ),
        EventKind::RecoveredFromUnknownChannel {
            channel_id,
            txid,
            amount,
        } => format!(
            "recovered {amount} from unknown channel {} (tx {})",
            short(channel_id),
            short(txid)
        ),
        EventKind::GraphChannelAdded {
            channel_id,
            node_1,
            node_2,
            capacity,
        } => format!(
            "graph + {} ({} - {}, {capacity})",
            short(channel_id),
            short_key(node_1),
            short_key(node_2)
        ),
        EventKind::GraphChannelUpdated {
            channel_id,
            node,
            enabled,
        } => format!(
            "graph ~ {} ({} {})",
            short(channel_id),
            short_key(node),
            if *enabled { "forwards" } else { "DISABLED" }
        ),
        EventKind::GraphChannelRemoved { channel_id } => {
            format!("graph - {} (funding spent)", short(channel_id))
        }
        EventKind::GossipRefused {
            peer,
            msg_type,
            reason,
        } => format!("REFUSED {msg_type} from {}: {reason}", short_key(peer)),
        EventKind::PaymentUpdated {
            payment_hash,
            status,
            reason,
        } => format!(
            "payment {} {status}{}",
            short(payment_hash),
            reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        EventKind::Held { step } => format!("HELD at {step}"),
        EventKind::Released { step } => format!("released from {step}"),
        EventKind::BackupWritten {
            dir,
            step,
            automatic,
        } => match (step, automatic) {
            (Some(step), _) => format!("backup written to {dir} at {step}"),
            (None, true) => format!("automatic backup written to {dir}"),
            (None, false) => format!("backup written to {dir}"),
        },
        EventKind::Error {
            channel_id,
            message,
        } => format!(
            "ERROR{}: {message}",
            channel_id
                .map(|c| format!(" on {}", short(&c)))
                .unwrap_or_default()
        ),
    }
}

fn short_key(key: &Pubkey) -> String {
    format!("{key}").chars().take(10).collect()
}
