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

use dlp_node::events::EventKind;

use crate::error::HarnessError;
use crate::network::Network;

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
