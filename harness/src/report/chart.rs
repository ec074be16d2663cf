//! The message sequence chart's model, built from a run directory's files: one lane per node
//! run (`bob#1`, `bob#2` after a restore) plus the ledger's, and one row per thing that
//! happened, in time order: a scenario step or setup note (the gutter), a message sent or
//! received, a mark (state change, backup, hold, audit, payment, crash, ...), a transaction
//! broadcast to the ledger or a ledger transaction nobody broadcast (the faucet's).
//!
//! Rows are merged from the per-lane sequences by time, never reordering a lane, and a receive
//! never comes before the send it is matched with (times are milliseconds; many events share
//! one). A receive is matched with the earliest unmatched send of the same message on the
//! same channel from that peer that was sent before it and with no disconnect of the pair in
//! between on either side; a send left unmatched was lost (the chart says so).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use dlp_chain::{Hash32, TxRecord};
use dlp_node_api::EventKind;

use super::lanes::{Item, Lane, Pending, Queue};
use super::load::RunData;
use super::marks::{lifecycle_marks, mark, message_label};
use super::matching::{latest_lane, match_messages};
use super::names::{Names, tx_class, tx_label};

/// One row of the chart.
#[derive(Debug, Clone)]
pub struct Row {
    pub at_ms: u64,
    pub item: Item,
}

/// The chart.
#[derive(Debug, Clone)]
pub struct Chart {
    pub lanes: Vec<Lane>,
    pub rows: Vec<Row>,
    /// The ledger's lane, if there is a ledger.
    pub ledger_lane: Option<usize>,
}

/// Build the chart of a run.
pub fn build(data: &RunData, names: &Names) -> Chart {
    let mut lanes = Vec::new();
    let mut lane_of: BTreeMap<(String, u32), usize> = BTreeMap::new();
    for node in &data.nodes {
        for run in &node.runs {
            lane_of.insert((node.name.clone(), run.run), lanes.len());
            lanes.push(Lane {
                label: format!("{}#{}", node.name, run.run),
                node: node.name.clone(),
                note: None,
                first_row: 0,
                last_row: 0,
            });
        }
    }
    let ledger_lane = data.ledger.as_ref().map(|_| {
        lanes.push(Lane {
            label: "ledger".into(),
            node: "ledger".into(),
            note: None,
            first_row: 0,
            last_row: 0,
        });
        lanes.len() - 1
    });
    let matches = match_messages(data, names, &lane_of);
    let txs: HashMap<Hash32, &TxRecord> = data
        .ledger
        .iter()
        .flat_map(|l| &l.transactions)
        .map(|t| (t.txid, t))
        .collect();
    let mut broadcast: HashSet<Hash32> = HashSet::new();
    // Sources: the gutter, each lane, the ledger.
    let mut queues: Vec<Queue> = (0..=lanes.len()).map(|_| VecDeque::new()).collect();
    queues[0] = gutter(data);
    for node in &data.nodes {
        for run in &node.runs {
            let lane = lane_of[&(node.name.clone(), run.run)];
            let queue = &mut queues[lane + 1];
            for (i, e) in run.events.iter().enumerate() {
                let key = (lane, i);
                if e.kind.is_gossip_message() {
                    continue;
                }
                let pending =
                    match &e.kind {
                        EventKind::MessageSent { .. } => Pending::Send {
                            id: send_id(key),
                            item: Item::Send {
                                lane,
                                to: matches.target.get(&key).copied(),
                                recv_row: None,
                                label: message_label(&e.kind, names, true),
                            },
                        },
                        EventKind::MessageReceived { peer, .. } => Pending::Recv {
                            send: matches.send_of.get(&key).map(|s| send_id(*s)),
                            item: Item::Recv {
                                lane,
                                from: matches.send_of.get(&key).map(|(l, _)| *l).or_else(|| {
                                    latest_lane(&lanes, names.node_of(&peer.to_string()))
                                }),
                                send_row: None,
                                label: message_label(&e.kind, names, false),
                            },
                        },
                        EventKind::TxBroadcast { txid, accepted, .. } => {
                            let first = *accepted && broadcast.insert(*txid);
                            let (class, label) = match (txs.get(txid), accepted) {
                                (Some(t), true) => (
                                    tx_class(&t.tx.kind),
                                    format!(
                                        "{}{}",
                                        tx_label(t, names),
                                        if first { "" } else { " (again)" }
                                    ),
                                ),
                                _ => ("tx rejected", e.kind.describe(names).to_string()),
                            };
                            Pending::Row(Item::Tx { lane, class, label })
                        }
                        other => match mark(other, names) {
                            Some((class, text)) => Pending::Row(Item::Mark { lane, class, text }),
                            None => continue,
                        },
                    };
                queue.push_back((e.at_ms, pending));
            }
        }
    }
    lifecycle_marks(data, &mut lanes, &lane_of, &mut queues);
    if let (Some(lane), Some(ledger)) = (ledger_lane, &data.ledger) {
        let mut at = data.record.started_ms;
        let first_broadcast: HashMap<Hash32, u64> = data
            .nodes
            .iter()
            .flat_map(|n| n.runs.iter().flat_map(|r| &r.events))
            .filter_map(|e| match &e.kind {
                EventKind::TxBroadcast {
                    txid,
                    accepted: true,
                    ..
                } => Some((*txid, e.at_ms)),
                _ => None,
            })
            .fold(HashMap::new(), |mut m, (t, at)| {
                let v = m.entry(t).or_insert(at);
                *v = (*v).min(at);
                m
            });
        for t in &ledger.transactions {
            if let Some(when) = first_broadcast.get(&t.txid) {
                at = at.max(*when);
                continue;
            }
            queues[lane + 1].push_back((
                at,
                Pending::Row(Item::Mark {
                    lane,
                    class: tx_class(&t.tx.kind),
                    text: tx_label(t, names),
                }),
            ));
        }
    }
    for q in &mut queues {
        q.make_contiguous().sort_by_key(|(at, _)| *at);
    }
    let rows = merge(queues);
    let mut chart = Chart {
        lanes,
        rows,
        ledger_lane,
    };
    link_rows(&mut chart);
    chart
}

fn send_id((lane, index): (usize, usize)) -> usize {
    lane << 32 | index
}

/// The steps and setup notes, by time.
fn gutter(data: &RunData) -> Queue {
    let mut out: Vec<(u64, Pending)> = data
        .record
        .notes
        .iter()
        .map(|n| {
            (
                n.at_ms,
                Pending::Row(Item::Note {
                    text: n.what.clone(),
                }),
            )
        })
        .collect();
    for (index, s) in data.record.steps.iter().enumerate() {
        if let Some(at) = s.started_ms {
            out.push((at, Pending::Row(Item::Step { index })));
        }
    }
    out.sort_by_key(|(at, _)| *at);
    out.into()
}

/// The k-way merge by time that keeps each source's order and puts every receive after its
/// send (a receive whose send is not placed yet holds its lane back); links each placed pair.
fn merge(mut queues: Vec<Queue>) -> Vec<Row> {
    let mut placed: HashMap<usize, usize> = HashMap::new();
    let mut rows: Vec<Row> = Vec::new();
    loop {
        let blocked = |p: &Pending| matches!(p, Pending::Recv { send: Some(s), .. } if !placed.contains_key(s));
        let pick = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|(at, p)| (i, *at, blocked(p))))
            .filter(|(_, _, b)| !b)
            .min_by_key(|(i, at, _)| (*at, *i))
            .map(|(i, _, _)| i)
            // Only blocked heads left (clocks disagree): take the earliest anyway.
            .or_else(|| {
                queues
                    .iter()
                    .enumerate()
                    .filter_map(|(i, q)| q.front().map(|(at, _)| (i, *at)))
                    .min_by_key(|(i, at)| (*at, *i))
                    .map(|(i, _)| i)
            });
        let Some(i) = pick else { break };
        let Some((at_ms, pending)) = queues[i].pop_front() else {
            break;
        };
        let row = rows.len();
        let item = match pending {
            Pending::Row(item) => item,
            Pending::Send { id, item } => {
                placed.insert(id, row);
                item
            }
            Pending::Recv { send, mut item } => {
                if let Some(s) = send.and_then(|id| placed.get(&id).copied()) {
                    if let Item::Recv { send_row, .. } = &mut item {
                        *send_row = Some(s);
                    }
                    if let Item::Send { recv_row, .. } = &mut rows[s].item {
                        *recv_row = Some(row);
                    }
                }
                item
            }
        };
        rows.push(Row { at_ms, item });
    }
    rows
}

/// Each lane's extent.
fn link_rows(chart: &mut Chart) {
    let mut seen = vec![false; chart.lanes.len()];
    for (r, row) in chart.rows.iter().enumerate() {
        if let Some(l) = row.item.lane() {
            if !seen[l] {
                seen[l] = true;
                chart.lanes[l].first_row = r;
            }
            chart.lanes[l].last_row = r;
        }
    }
    if let Some(l) = chart.ledger_lane {
        chart.lanes[l].first_row = 0;
        chart.lanes[l].last_row = chart.rows.len().saturating_sub(1);
    }
}
