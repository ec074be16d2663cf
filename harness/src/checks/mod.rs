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

/// One invariant's result in one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub name: &'static str,
    /// The rule, in one sentence.
    pub rule: &'static str,
    /// False when the run's policy waives it (penalties a scenario allows).
    pub checked: bool,
    pub problems: Vec<String>,
}

/// Every invariant, by name, with its rule (in the order they are checked).
pub const INVARIANTS: [(&str, &str); 5] = [
    (
        "passive silence",
        "a channel Stale at start sent nothing before the peer's ReestablishChannel (but what its mutual_stale mode allows)",
    ),
    (
        "audit rule",
        "every audit decision follows the policy's rule applied to the numbers in the audit event",
    ),
    (
        "no bugs",
        "no node reported a bug (an error event marked bug:)",
    ),
    (
        "no penalty",
        "no revoked commitment was broadcast: no penalty transaction on the ledger (unless the scenario allows penalties)",
    ),
    (
        "conservation",
        "the ledger's unspent outputs sum to everything the faucet created",
    ),
];

/// Fetch every node's latest events, then check every invariant; all problems in one error.
pub async fn check_all(net: &mut Network, policy: Policy) -> Result<(), HarnessError> {
    failures(&check_each(net, policy).await?)
}

/// The error of a check's results: every problem, or `Ok` when there is none.
pub fn failures(results: &[Checked]) -> Result<(), HarnessError> {
    let problems: Vec<&str> = results
        .iter()
        .flat_map(|c| c.problems.iter().map(String::as_str))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(HarnessError::Invariant(problems.join("\n  ")))
    }
}

/// Fetch every node's latest events, then check every invariant; each one's problems.
pub async fn check_each(net: &mut Network, policy: Policy) -> Result<Vec<Checked>, HarnessError> {
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
    let found = [
        Some(silence::check(&records)),
        Some(audit_rule::check(&records)),
        Some(bugs::check(&records)),
        (!policy.allow_penalties).then(|| penalties::check(&txs)),
        Some(conservation::check(&txs)),
    ];
    Ok(INVARIANTS
        .iter()
        .zip(found)
        .map(|((name, rule), problems)| Checked {
            name,
            rule,
            checked: problems.is_some(),
            problems: problems.unwrap_or_default(),
        })
        .collect())
}
