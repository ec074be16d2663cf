//! Passive silence in every run of every node: a channel that was Stale when the run started
//! sent nothing on it before it received the peer's ReestablishChannel (`model::silence`).

use crate::cluster::NodeRecord;
use crate::model::silence::breaches;

pub(super) fn check(records: &[NodeRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    for node in records {
        for (run, stale) in &node.stale_at_start {
            let events = || {
                node.history
                    .iter()
                    .filter(move |(r, _)| r == run)
                    .map(|(_, e)| e)
            };
            for channel in stale {
                for breach in breaches(events(), *channel) {
                    problems.push(format!(
                        "{}#{run} sent {} on Stale channel {channel} before the peer's \
                         ReestablishChannel (event #{})",
                        node.name, breach.message, breach.seq
                    ));
                }
            }
        }
    }
    problems
}
