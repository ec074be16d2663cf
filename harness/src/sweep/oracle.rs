//! The oracle: what must happen when a node is restored from a backup taken at a given step,
//! predicted from what the peer and the ledger know, never from the restored node.
//!
//! Commitment numbers (Fiber's): a node's `L` counts the peer's revocations it received, `R`
//! its own revocations it sent; in sync, `L == PR` and `R == PL`. With `(L, R)` the backup's
//! numbers and `(PL, PR)` the peer's at reconnection:
//! - `PL > R`: the peer holds our revocation of the commitment the backup treats as current:
//!   the backup's latest commitment is **revoked** (broadcasting it is punished).
//! - `PR > L`: the peer revoked a commitment the backup treats as the peer's current, and moved
//!   to one we signed after the backup: the backup's view is **superseded** (we lack that
//!   revocation secret and the balances the peer now holds).
//! - Fiber's audit fails only when a number is more than one apart; `strict` also fails on
//!   either condition above. A channel the ledger already closed is never reestablished.
//!
//! This model is written from the protocol, independently of dlp-node's audit code, so a bug
//! in the node's audit shows up as a MISMATCH (or worse) instead of agreeing with itself.

use dlp_node::config::AuditPolicy;
use serde::Serialize;

/// What a restored channel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// The audit passed; the channel is live again.
    Resumed,
    /// The audit failed; the channel stays Stale and silent.
    Held,
    /// The ledger had closed the channel before the restore; nothing to reestablish.
    Closed,
}

impl std::fmt::Display for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Behaviour::Resumed => "resumed",
            Behaviour::Held => "held",
            Behaviour::Closed => "closed",
        })
    }
}

/// The oracle's prediction for one channel at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expected {
    pub behaviour: Behaviour,
    /// The backup's latest commitment is already revoked (`PL > R`).
    pub revoked: bool,
    /// The peer moved past the backup's view of its commitment (`PR > L`).
    pub superseded: bool,
}

impl Expected {
    /// Resuming with this backup would be unsafe.
    pub fn dangerous(&self) -> bool {
        self.revoked || self.superseded
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.behaviour)?;
        match (self.revoked, self.superseded) {
            (true, true) => f.write_str(" (revoked, superseded)"),
            (true, false) => f.write_str(" (revoked)"),
            (false, true) => f.write_str(" (superseded)"),
            (false, false) => Ok(()),
        }
    }
}

/// Predict: `backup` is the restored node's `(L, R)`, `peer` the peer's `(PL, PR)` when it
/// reconnects (`None` when the ledger already closed the channel).
pub fn predict(policy: AuditPolicy, backup: (u64, u64), peer: Option<(u64, u64)>) -> Expected {
    let Some((pl, pr)) = peer else {
        return Expected {
            behaviour: Behaviour::Closed,
            revoked: false,
            superseded: false,
        };
    };
    let (l, r) = backup;
    let revoked = pl > r;
    let superseded = pr > l;
    let far = pl.abs_diff(r) > 1 || pr.abs_diff(l) > 1;
    let held = far
        || match policy {
            AuditPolicy::Fiber => false,
            AuditPolicy::Strict => revoked || superseded,
        };
    Expected {
        behaviour: if held {
            Behaviour::Held
        } else {
            Behaviour::Resumed
        },
        revoked,
        superseded,
    }
}

/// The verdict on one channel at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Verdict {
    #[serde(rename = "resumed")]
    Resumed,
    #[serde(rename = "held")]
    Held,
    #[serde(rename = "closed")]
    Closed,
    /// Resumed while holding a revoked or superseded commitment (a penalty on the ledger
    /// proves the revoked case).
    #[serde(rename = "UNSAFE")]
    Unsafe,
    /// Someone's funds on the ledger fell short of what the peer's records promise.
    #[serde(rename = "LOST")]
    Lost,
    /// The behaviour differs from the oracle's prediction.
    #[serde(rename = "MISMATCH")]
    Mismatch,
    /// The run itself failed (a timeout, a refused step): no verdict.
    #[serde(rename = "ERROR")]
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Verdict::Resumed,
        Verdict::Held,
        Verdict::Closed,
        Verdict::Unsafe,
        Verdict::Lost,
        Verdict::Mismatch,
        Verdict::Error,
    ];

    /// A verdict that fails the sweep.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Verdict::Unsafe | Verdict::Lost | Verdict::Mismatch | Verdict::Error
        )
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Resumed => "resumed",
            Verdict::Held => "held",
            Verdict::Closed => "closed",
            Verdict::Unsafe => "UNSAFE",
            Verdict::Lost => "LOST",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Error => "ERROR",
        })
    }
}

/// What the ledger showed after the channel was closed (see `ledger.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LedgerFacts {
    /// The restored node's commitment was punished (txid of the penalty).
    pub restored_punished: Option<String>,
    /// The peer's commitment was punished.
    pub peer_punished: Option<String>,
    /// Shortfalls against what the peer's records promised: `who: got X, owed Y`.
    pub shortfalls: Vec<String>,
}

/// A txid shortened for tables (the JSON report carries it whole).
fn short(txid: &str) -> String {
    txid.chars().take(12).collect()
}

/// Classify one channel: most severe first (UNSAFE, LOST, MISMATCH), else the behaviour.
pub fn classify(
    expected: Expected,
    observed: Behaviour,
    ledger: &LedgerFacts,
) -> (Verdict, String) {
    if let Some(txid) = &ledger.restored_punished {
        return (
            Verdict::Unsafe,
            format!(
                "the restored node's force close was punished (penalty {})",
                short(txid)
            ),
        );
    }
    if observed == Behaviour::Resumed && expected.dangerous() {
        let what = if expected.revoked {
            "resumed holding a revoked commitment (its force close happened not to be punished)"
        } else {
            "resumed without the revocation secret of the peer's previous commitment (the peer \
             revoked it after the backup): a broadcast of that commitment could not be punished"
        };
        return (Verdict::Unsafe, what.to_string());
    }
    if let Some(txid) = &ledger.peer_punished {
        return (
            Verdict::Lost,
            format!(
                "the peer's commitment was punished (penalty {})",
                short(txid)
            ),
        );
    }
    if !ledger.shortfalls.is_empty() {
        return (Verdict::Lost, ledger.shortfalls.join("; "));
    }
    if observed != expected.behaviour {
        return (
            Verdict::Mismatch,
            format!("expected {expected}, observed {observed}"),
        );
    }
    let verdict = match observed {
        Behaviour::Resumed => Verdict::Resumed,
        Behaviour::Held => Verdict::Held,
        Behaviour::Closed => Verdict::Closed,
    };
    (verdict, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_follows_the_numbers() {
        use AuditPolicy::{Fiber, Strict};
        let p = |policy, b, peer| predict(policy, b, Some(peer));
        // In sync: both resume.
        assert_eq!(p(Fiber, (3, 3), (3, 3)).behaviour, Behaviour::Resumed);
        assert_eq!(p(Strict, (3, 3), (3, 3)).behaviour, Behaviour::Resumed);
        // Peer one ahead on our revocations: fiber resumes a revoked state, strict holds.
        let fiber = p(Fiber, (3, 3), (4, 3));
        assert_eq!(fiber.behaviour, Behaviour::Resumed);
        assert!(fiber.revoked && !fiber.superseded);
        assert_eq!(p(Strict, (3, 3), (4, 3)).behaviour, Behaviour::Held);
        // Peer one ahead on its own revocations: superseded.
        assert!(p(Fiber, (3, 3), (3, 4)).superseded);
        assert_eq!(p(Strict, (3, 3), (3, 4)).behaviour, Behaviour::Held);
        // Peer behind: both resume (we resync it), nothing dangerous.
        let behind = p(Strict, (4, 4), (3, 3));
        assert_eq!(behind.behaviour, Behaviour::Resumed);
        assert!(!behind.dangerous());
        // Two apart: both hold.
        assert_eq!(p(Fiber, (3, 3), (5, 3)).behaviour, Behaviour::Held);
        // Closed on the ledger.
        assert_eq!(predict(Fiber, (3, 3), None).behaviour, Behaviour::Closed);
    }

    #[test]
    fn classification_puts_the_worst_first() {
        let safe = Expected {
            behaviour: Behaviour::Resumed,
            revoked: false,
            superseded: false,
        };
        let revoked = Expected {
            revoked: true,
            ..safe
        };
        let clean = LedgerFacts::default();
        assert_eq!(
            classify(safe, Behaviour::Resumed, &clean).0,
            Verdict::Resumed
        );
        assert_eq!(classify(safe, Behaviour::Held, &clean).0, Verdict::Mismatch);
        assert_eq!(
            classify(revoked, Behaviour::Resumed, &clean).0,
            Verdict::Unsafe
        );
        let punished = LedgerFacts {
            restored_punished: Some("0xab".into()),
            ..LedgerFacts::default()
        };
        assert_eq!(
            classify(safe, Behaviour::Resumed, &punished).0,
            Verdict::Unsafe
        );
        let short = LedgerFacts {
            shortfalls: vec!["bob: got 1, owed 2".into()],
            ..LedgerFacts::default()
        };
        assert_eq!(classify(safe, Behaviour::Resumed, &short).0, Verdict::Lost);
    }
}
