//! No node reported a bug: dlp-node publishes an error event starting with `bug:` when one of
//! its own safety nets fires (a message queued on a Stale channel and stopped at the door).

use dlp_node_api::EventKind;

use crate::cluster::NodeRecord;

pub(super) fn check(records: &[NodeRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    for node in records {
        for (run, event) in &node.history {
            if let EventKind::Error { message, .. } = &event.kind
                && message.starts_with("bug:")
            {
                problems.push(format!("{}#{run} reported a bug: {message}", node.name));
            }
        }
    }
    problems
}
