//! What every sweep point must show, whatever the workload: the per-point half of what the
//! shipped sweeps assert, shared by the whole-workload tests and the one-test-per-point runs
//! (`harness/tests/shards.rs`), so that a point judged alone is held to the same rules.
//!
//! Nothing LOST, MISMATCH or ERROR on any channel; UNSAFE exactly where the oracle says the
//! backup is revoked or superseded and the audit still resumes (Fiber's +/-1 gap), a revoked one
//! proven by a penalty on the ledger; `strict` never UNSAFE and never FROZEN (it must be safe
//! and live).

use super::{Behaviour, PointResult, Verdict};

/// How strictly to hold a point to the rules.
#[derive(Debug, Clone, Copy)]
pub struct PointRules {
    /// Every revoked resume must be proven by a penalty on the ledger. Not where the resync
    /// after a resume completes a payment the backup held half done: the restored node's
    /// commitment is current again before the judge's force close, so the ledger cannot show
    /// what the oracle knows from the numbers.
    pub penalty_proof: bool,
}

impl Default for PointRules {
    fn default() -> Self {
        Self {
            penalty_proof: true,
        }
    }
}

/// Every rule the point breaks, each a sentence naming the channel (empty: it holds).
pub fn point_problems(r: &PointResult, rules: PointRules) -> Vec<String> {
    let mut out = Vec::new();
    let at = format!(
        "{} {} point {} ({})",
        r.backend,
        r.policy,
        r.point.index,
        r.point.label()
    );
    let verdict = r.worst();
    if matches!(verdict, Verdict::Lost | Verdict::Mismatch | Verdict::Error) {
        out.push(format!(
            "{at}: {verdict}{}",
            r.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    for c in &r.channels {
        if matches!(c.verdict, Verdict::Lost | Verdict::Mismatch) {
            out.push(format!(
                "{at} channel {}: {}: {}",
                c.channel, c.verdict, c.detail
            ));
        }
        let oracle_unsafe = c.expected.behaviour == Behaviour::Resumed && c.expected.dangerous();
        if (c.verdict == Verdict::Unsafe) != oracle_unsafe {
            out.push(format!(
                "{at} channel {}: verdict {} but the oracle predicted {}",
                c.channel, c.verdict, c.expected
            ));
        }
        if rules.penalty_proof
            && c.verdict == Verdict::Unsafe
            && c.expected.revoked
            && !c.detail.contains("penalty")
        {
            out.push(format!(
                "{at} channel {}: a revoked resume must be proven by a penalty: {}",
                c.channel, c.detail
            ));
        }
        if r.policy == "strict" && matches!(c.verdict, Verdict::Unsafe | Verdict::Frozen) {
            out.push(format!(
                "{at} channel {}: strict must be safe and live, but it is {}: {}",
                c.channel, c.verdict, c.detail
            ));
        }
    }
    out
}
