//! The merged, human timeline of a run: the steps the scenario took and every node's events,
//! ordered by time, one line each (`bob#2  received ReestablishChannel on 0x1234 (L3 R3)`, in
//! the words of the events' own `Display`, `dlp_node_api::describe`).
//! It is what a failure report shows, and what a timeout shows of each node. Gossip messages
//! are left out of both (they flood the network and carry no channel state; the graph events
//! say what they changed): `events.jsonl` and `report.html` keep everything.

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
            at_ms: dlp_node_api::unix_ms(),
            who: "step".into(),
            what: what.into(),
        });
    }

    /// What was noted in the timeline by the harness (steps, and what verbs said they did:
    /// `damaged backup ...`, `bob started on its old store`), in order.
    pub fn step_notes(&self) -> &[TimelineEntry] {
        &self.steps
    }

    /// A merged cross-node timeline of steps and protocol events.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let mut all = self.steps.clone();
        for (name, entry) in &self.nodes {
            for (run, e) in entry
                .history
                .iter()
                .filter(|(_, e)| !e.kind.is_gossip_message())
            {
                all.push(TimelineEntry {
                    at_ms: e.at_ms,
                    who: format!("{name}#{run}"),
                    what: e.kind.to_string(),
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
                .filter(|(_, e)| !e.kind.is_gossip_message())
                .collect();
            for (run, e) in shown.iter().rev().take(n).rev() {
                out.push_str(&format!("    {name}#{run} {e}\n"));
            }
        }
        out
    }
}
