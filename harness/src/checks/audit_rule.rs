//! Every audit decision follows the rule: the policy's rule (`model::audit`), applied by the
//! harness to the numbers in the audit event, agrees with what the node decided. A channel more
//! than one apart never resumes; under `strict` neither does one whose peer is ahead; an audit
//! the rule passes does not fail. This is what lets the explorer see a wrong audit without the
//! force close that would prove it on the ledger.

use dlp_node_api::{AuditEvent, EventKind};

use crate::cluster::NodeRecord;
use crate::model::audit::{Behaviour, predict};

pub(super) fn check(records: &[NodeRecord]) -> Vec<String> {
    records
        .iter()
        .flat_map(|node| {
            node.history
                .iter()
                .filter_map(|(run, event)| audit_problem(&node.name, *run, &event.kind))
        })
        .collect()
}

/// An audit decision the rule does not allow, described.
fn audit_problem(node: &str, run: u32, kind: &EventKind) -> Option<String> {
    let EventKind::Audit(audit) = kind else {
        return None;
    };
    let AuditEvent {
        channel_id,
        policy,
        local,
        remote,
        peer_local,
        peer_remote,
        ..
    } = audit;
    let expected = predict(
        *policy,
        (*local, *remote),
        Some((*peer_local, *peer_remote)),
    );
    let should_pass = expected.behaviour == Behaviour::Resumed;
    let passed = audit.passed();
    (passed != should_pass).then(|| {
        format!(
            "{node}#{run} {} the {policy} audit of channel {channel_id} with ours L{local} R{remote}, peer L{peer_local} R{peer_remote}: the rule says it must {}",
            if passed { "passed" } else { "failed" },
            if should_pass { "pass" } else { "stay Stale" }
        )
    })
}
