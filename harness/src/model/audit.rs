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

use dlp_node_api::AuditPolicy;
use serde::{Deserialize, Serialize};

/// What a restored channel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// The audit passed; the channel is live again.
    Resumed,
    /// The audit failed; the channel stays Stale and silent.
    Held,
    /// The ledger had closed the channel before the restore; nothing to reestablish.
    Closed,
    /// The backup predates the channel: the restored node does not know it, answers the peer's
    /// ReestablishChannel with RequestForceClose, and the peer force-closes.
    Forgotten,
    /// Both ends restored and both Stale, neither audits (`mutual_stale = "wait"`, Fiber's
    /// passive silence on both sides): the channel is frozen, nobody can close it.
    Frozen,
}

impl std::fmt::Display for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Behaviour::Resumed => "resumed",
            Behaviour::Held => "held",
            Behaviour::Closed => "closed",
            Behaviour::Forgotten => "forgotten",
            Behaviour::Frozen => "frozen",
        })
    }
}

/// The oracle's prediction for one channel at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The prediction for a channel the backup does not know (it predates the channel): the peer
/// force-closes when asked, nothing of the restored node's is at risk.
pub fn predict_forgotten() -> Expected {
    Expected {
        behaviour: Behaviour::Forgotten,
        revoked: false,
        superseded: false,
    }
}

/// Predict a channel restored on both ends (both Stale): `backup` is the node's `(L, R)`,
/// `peer` the peer's numbers in its own backup (`None`: the ledger had closed the channel).
/// With `reveal` (`mutual_stale = "reveal"`) both reveal that they are Stale after a while,
/// the tie-break decides who sends numbers first, and the other answers with its own whatever
/// its audit said: each end audits the other's numbers exactly as in a one-sided restore.
/// Without it both wait forever: frozen. Returns the node's expectation and whether the peer
/// resumes.
pub fn predict_mutual(
    policy: AuditPolicy,
    reveal: bool,
    backup: (u64, u64),
    peer: Option<(u64, u64)>,
) -> (Expected, bool) {
    let Some(peer_numbers) = peer else {
        return (predict(policy, backup, None), false);
    };
    let node_view = predict(policy, backup, Some(peer_numbers));
    let peer_resumes =
        reveal && predict(policy, peer_numbers, Some(backup)).behaviour == Behaviour::Resumed;
    let behaviour = match (reveal, node_view.behaviour, peer_resumes) {
        (false, _, _) => Behaviour::Frozen,
        (true, Behaviour::Resumed, _) => Behaviour::Resumed,
        (true, _, true) => Behaviour::Held,
        (true, _, false) => Behaviour::Frozen,
    };
    (
        Expected {
            behaviour,
            ..node_view
        },
        peer_resumes,
    )
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
    fn a_mutual_restore_resumes_only_as_far_as_both_audits_go() {
        use AuditPolicy::Strict;
        // Passive silence on both ends: frozen, whatever the numbers.
        let (e, peer) = predict_mutual(Strict, false, (3, 3), Some((3, 3)));
        assert_eq!((e.behaviour, peer), (Behaviour::Frozen, false));
        // Same numbers: both resume.
        let (e, peer) = predict_mutual(Strict, true, (3, 3), Some((3, 3)));
        assert_eq!((e.behaviour, peer), (Behaviour::Resumed, true));
        // The node's backup is older by one: the peer (a peer behind is fine) resumes, the
        // node (peer ahead: strict) holds, so the peer can close.
        let (e, peer) = predict_mutual(Strict, true, (3, 3), Some((3, 4)));
        assert_eq!((e.behaviour, peer), (Behaviour::Held, true));
        assert!(e.superseded);
        // Two apart: nobody resumes.
        let (e, peer) = predict_mutual(Strict, true, (3, 3), Some((5, 5)));
        assert_eq!((e.behaviour, peer), (Behaviour::Frozen, false));
    }
}
