//! Which send each receive answers: the earliest unmatched send of the same message on the
//! same channel from that peer, sent before the receive, with no disconnect of the pair in
//! between on either side (a message in flight when a connection drops is lost, and what a
//! reconnect resends is a new send). A send left unmatched was lost; it still points at the
//! peer's run of that time.

use std::collections::{BTreeMap, HashMap, HashSet};

use dlp_node_api::{EventKind, NodeEvent};

use super::lanes::Lane;
use super::load::RunData;
use super::names::Names;

/// Which send each receive answers (and so which lane each send goes to).
pub(super) struct Matches {
    /// receive (lane, index) -> send (lane, index)
    pub send_of: HashMap<(usize, usize), (usize, usize)>,
    /// send (lane, index) -> receiving lane
    pub target: HashMap<(usize, usize), usize>,
}

pub(super) fn match_messages(
    data: &RunData,
    names: &Names,
    lane_of: &BTreeMap<(String, u32), usize>,
) -> Matches {
    struct Msg<'a> {
        key: (usize, usize),
        node: &'a str,
        peer: String,
        event: &'a NodeEvent,
    }
    let mut sends = Vec::new();
    let mut recvs = Vec::new();
    // Disconnects per (node, peer node), by time.
    let mut disconnects: HashMap<(&str, String), Vec<u64>> = HashMap::new();
    for node in &data.nodes {
        for run in &node.runs {
            let lane = lane_of[&(node.name.clone(), run.run)];
            for (i, e) in run.events.iter().enumerate() {
                if e.kind.is_gossip_message() {
                    continue;
                }
                let msg = |peer: String| Msg {
                    key: (lane, i),
                    node: &node.name,
                    peer,
                    event: e,
                };
                match &e.kind {
                    EventKind::MessageSent { peer, .. } => {
                        sends.push(msg(names.key(&peer.to_string())));
                    }
                    EventKind::MessageReceived { peer, .. } => {
                        recvs.push(msg(names.key(&peer.to_string())));
                    }
                    EventKind::PeerDisconnected { peer, .. } => disconnects
                        .entry((&node.name, names.key(&peer.to_string())))
                        .or_default()
                        .push(e.at_ms),
                    _ => {}
                }
            }
        }
    }
    recvs.sort_by_key(|m| m.event.at_ms);
    let same = |a: &EventKind, b: &EventKind| match (a, b) {
        (
            EventKind::MessageSent {
                msg_type: t1,
                channel_id: c1,
                ..
            },
            EventKind::MessageReceived {
                msg_type: t2,
                channel_id: c2,
                ..
            },
        ) => t1 == t2 && c1 == c2,
        _ => false,
    };
    let cut_between = |node: &str, peer: &str, from: u64, to: u64| {
        disconnects
            .get(&(node, peer.to_string()))
            .is_some_and(|ts| ts.iter().any(|t| *t >= from && *t < to))
    };
    let mut used = HashSet::new();
    let mut out = Matches {
        send_of: HashMap::new(),
        target: HashMap::new(),
    };
    for r in &recvs {
        let found = sends
            .iter()
            .filter(|s| {
                !used.contains(&s.key)
                    && s.node == r.peer
                    && s.peer == r.node
                    && s.event.at_ms <= r.event.at_ms
                    && same(&s.event.kind, &r.event.kind)
                    && !cut_between(s.node, &s.peer, s.event.at_ms, r.event.at_ms)
                    && !cut_between(r.node, &r.peer, s.event.at_ms, r.event.at_ms)
            })
            .min_by_key(|s| (s.event.at_ms, s.key));
        if let Some(s) = found {
            used.insert(s.key);
            out.send_of.insert(r.key, s.key);
            out.target.insert(s.key, r.key.0);
        }
    }
    // A lost send still points at the peer: its run at that time.
    for s in &sends {
        if out.target.contains_key(&s.key) {
            continue;
        }
        let lane = data.nodes.iter().find(|n| n.name == s.peer).and_then(|n| {
            n.runs
                .iter()
                .rfind(|r| r.events.first().is_some_and(|e| e.at_ms <= s.event.at_ms))
                .or(n.runs.first())
                .map(|r| lane_of[&(n.name.clone(), r.run)])
        });
        if let Some(lane) = lane {
            out.target.insert(s.key, lane);
        }
    }
    out
}

/// The last lane of `node` (for a receive whose send is not in the files).
pub(super) fn latest_lane(lanes: &[Lane], node: Option<&str>) -> Option<usize> {
    let node = node?;
    lanes.iter().rposition(|l| l.node == node)
}
