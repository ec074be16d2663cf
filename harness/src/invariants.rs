//! Invariants checked at the end of every scenario (and available as a step).
//!
//! 1. **Passive silence**: in every incarnation of a node, a channel that was Stale at start-up
//!    sent nothing before it received the peer's ReestablishChannel.
//! 2. **No revoked commitment broadcast**: the ledger holds no penalty transaction (a penalty
//!    means someone broadcast a revoked commitment) unless the scenario says it expects one.
//! 3. **Ledger conservation**: the ledger's unspent outputs sum to everything the faucet created
//!    (nothing created or destroyed by any transaction).
//! 4. **No bug reports**: no node published an error event marked as a bug (e.g. a message
//!    queued on a Stale channel and stopped by the node's own safety net).
//! 5. **Audits follow the rule**: every audit decision matches the policy's rule applied to the
//!    numbers in the audit event (the harness's own model of the rule, `sweep::predict`): a
//!    channel more than one apart never resumes, under `strict` neither does one whose peer is
//!    ahead, and an audit the rule passes does not fail.

use dlp_node::config::AuditPolicy;
use dlp_node::events::EventKind;

use crate::sweep::{Behaviour, predict};

use crate::error::HarnessError;
use crate::network::Network;

/// An audit decision the rule does not allow, described.
fn audit_problem(node: &str, incarnation: u32, kind: &EventKind) -> Option<String> {
    let (passed, channel_id, policy, local, remote, peer_local, peer_remote) = match kind {
        EventKind::AuditPassed {
            channel_id,
            policy,
            local,
            remote,
            peer_local,
            peer_remote,
        } => (
            true,
            channel_id,
            policy,
            local,
            remote,
            peer_local,
            peer_remote,
        ),
        EventKind::AuditFailed {
            channel_id,
            policy,
            local,
            remote,
            peer_local,
            peer_remote,
            ..
        } => (
            false,
            channel_id,
            policy,
            local,
            remote,
            peer_local,
            peer_remote,
        ),
        _ => return None,
    };
    let rule = match policy.as_str() {
        "fiber" => AuditPolicy::Fiber,
        "strict" => AuditPolicy::Strict,
        other => {
            return Some(format!(
                "{node} (start #{incarnation}) audited channel {channel_id} under an unknown \
                 policy {other:?}: the harness cannot check it"
            ));
        }
    };
    let expected = predict(rule, (*local, *remote), Some((*peer_local, *peer_remote)));
    let should_pass = expected.behaviour == Behaviour::Resumed;
    (passed != should_pass).then(|| {
        format!(
            "{node} (start #{incarnation}) {} the {policy} audit of channel {channel_id} with ours L{local} R{remote}, peer L{peer_local} R{peer_remote}: the rule says it must {}",
            if passed { "passed" } else { "failed" },
            if should_pass { "pass" } else { "stay Stale" }
        )
    })
}

pub(crate) async fn check(net: &Network, allow_penalties: bool) -> Result<(), HarnessError> {
    let mut problems = Vec::new();
    for node in net.node_records() {
        for (incarnation, stale) in &node.stale_at_start {
            for channel in stale {
                let mut heard = false;
                for (_, event) in node.history.iter().filter(|(i, _)| i == incarnation) {
                    match &event.kind {
                        EventKind::MessageReceived {
                            msg_type,
                            channel_id,
                            ..
                        } if msg_type == "ReestablishChannel" && *channel_id == Some(*channel) => {
                            heard = true;
                        }
                        EventKind::MessageSent {
                            msg_type,
                            channel_id,
                            ..
                        } if *channel_id == Some(*channel) && !heard => {
                            problems.push(format!(
                                "{} (start #{incarnation}) sent {msg_type} on Stale channel {channel} \
                                 before the peer's ReestablishChannel (event #{})",
                                node.name, event.seq
                            ));
                        }
                        _ => {}
                    }
                }
            }
        }
        for (incarnation, event) in &node.history {
            if let Some(problem) = audit_problem(&node.name, *incarnation, &event.kind) {
                problems.push(problem);
            }
            if let EventKind::Error { message, .. } = &event.kind
                && message.starts_with("bug:")
            {
                problems.push(format!(
                    "{} (start #{incarnation}) reported a bug: {message}",
                    node.name
                ));
            }
        }
    }
    let txs = net
        .chain()
        .transactions(None)
        .await
        .map_err(|e| HarnessError::Chain(e.to_string()))?;
    if !allow_penalties {
        for tx in txs.iter().filter(|t| t.tx.kind.name() == "penalty") {
            problems.push(format!(
                "a revoked commitment was broadcast and punished: penalty {} on the ledger",
                tx.txid
            ));
        }
    }
    let faucet: u64 = txs
        .iter()
        .filter(|t| t.tx.kind.name() == "faucet")
        .map(|t| t.tx.output_total())
        .sum();
    let created: u64 = txs.iter().map(|t| t.tx.output_total()).sum();
    let by_id: std::collections::HashMap<_, _> = txs.iter().map(|t| (t.txid, &t.tx)).collect();
    let spent: u64 = txs
        .iter()
        .flat_map(|t| &t.tx.inputs)
        .filter_map(|i| by_id.get(&i.prev.txid)?.outputs.get(i.prev.index as usize))
        .map(|o| o.amount)
        .sum();
    if created - spent != faucet {
        problems.push(format!(
            "ledger not conserved: unspent outputs {} != faucet total {faucet}",
            created - spent
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(HarnessError::Invariant(problems.join("\n  ")))
    }
}
