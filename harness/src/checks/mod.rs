//! Invariants checked at the end of every scenario, after every explorer step, in every sweep
//! point run, and by the `check_invariants` step. One invariant per file; each returns the
//! problems it found, described so that a reader can find them in the timeline:
//!
//! 1. [`silence`]: passive silence (`model::silence`) held in every run of every node;
//! 2. [`penalties`]: no revoked commitment was broadcast (no penalty on the ledger), unless the
//!    scenario allows penalties;
//! 3. [`conservation`]: the ledger's unspent outputs sum to what the faucet created;
//! 4. [`bugs`]: no node reported a bug (an error event marked `bug:`);
//! 5. [`audit_rule`]: every audit decision follows the policy's rule (`model::audit`) applied
//!    to the numbers in the audit event.
//!
//! Checks read the cluster (events, ledger); they never drive it.

mod audit_rule;
mod bugs;
mod conservation;
mod penalties;
mod silence;

use crate::cluster::Network;
use crate::error::HarnessError;

/// What the invariants may accept in this run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Penalty transactions are expected (a scenario proving that a revoked commitment is
    /// punished); otherwise any penalty is a violation.
    pub allow_penalties: bool,
}

/// Fetch every node's latest events, then check every invariant; all problems in one error.
pub async fn check_all(net: &mut Network, policy: Policy) -> Result<(), HarnessError> {
    // A node that stopped answering is reported by the checks that need it, not here.
    for name in net.node_names() {
        let _ = net.poll(&name, std::time::Duration::ZERO).await;
    }
    let records = net.node_records();
    let txs = net
        .chain()
        .transactions(None)
        .await
        .map_err(|e| HarnessError::Chain(e.to_string()))?;
    let mut problems = Vec::new();
    problems.extend(silence::check(&records));
    problems.extend(audit_rule::check(&records));
    problems.extend(bugs::check(&records));
    if !policy.allow_penalties {
        problems.extend(penalties::check(&txs));
    }
    problems.extend(conservation::check(&txs));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(HarnessError::Invariant(problems.join("\n  ")))
    }
}
