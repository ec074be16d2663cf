//! Passive silence in every run of every node: a channel that was Stale when the run started
//! sent nothing on it before it received the peer's ReestablishChannel, but what the node's
//! `mutual_stale` mode allows (`model::silence`).

use crate::cluster::NodeRecord;
use crate::model::silence::{Speaker, breaches, effective_mode};

pub(super) fn check(records: &[NodeRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    for node in records {
        let Some(me) = node.pubkey else {
            // Never started: no run, no events.
            continue;
        };
        let speaker = Speaker {
            me,
            mode: effective_mode(node.audit.policy, node.audit.mutual_stale),
        };
        for (run, stale) in &node.stale_at_start {
            let events = || {
                node.history
                    .iter()
                    .filter(move |(r, _)| r == run)
                    .map(|(_, e)| e)
            };
            for channel in stale {
                for breach in breaches(events(), *channel, speaker) {
                    problems.push(format!(
                        "{}#{run} sent {} on Stale channel {channel} before the peer's \
                         ReestablishChannel (event #{}; mutual_stale = {})",
                        node.name, breach.message, breach.seq, speaker.mode
                    ));
                }
            }
        }
    }
    problems
}
