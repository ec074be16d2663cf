//! The audit rule, as the harness understands it from the protocol: what a channel restored
//! with commitment numbers `(L, R)` must do when its peer reconnects with `(PL, PR)`.
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
//! Written from the protocol, independently of dlp-node's audit code, so a bug in the node's
//! audit shows up as a disagreement instead of agreeing with itself. Used by the audit-rule
//! invariant (`checks::audit_rule`), the sweep's oracle and, through both, the explorer.

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
}
