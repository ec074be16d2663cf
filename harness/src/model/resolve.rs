//! Liveness: what becomes of a restored channel's funds when nobody but the two nodes acts.
//!
//! The audit (`audit.rs`) says whether a restored channel may resume. This says how the channel
//! ends up, given the nodes' settings: live again, closed on the ledger by one of the two ends
//! (which one), or **frozen**, funds locked until a person intervenes. A channel whose audit
//! failed resolves only with `on_audit_failure = "request_close"` (the default under `strict`):
//! - one end restored: it asks the live peer to force-close, and the peer does unless it is set
//!   to ignore such requests (`on_force_close_request = "ignore"`);
//! - both ends restored and both audits failed: the end whose commitment the other end's
//!   numbers show unrevoked closes, the newer backup first (see [`mutual_closer`]).
//!
//! Written from the protocol (the module docs of dlp-node's `core::reestablish` state the same
//! rule), not borrowed from the node's code, so the sweep's oracle can disagree with a node
//! that gets it wrong.

use dlp_node_api::{AuditPolicy, OnAuditFailure, OnForceCloseRequest};
use serde::{Deserialize, Serialize};

use super::audit::{Behaviour, predict};

/// Which end of a channel: the restored node under test, or its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Node,
    Peer,
}

/// How a restored channel ends up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Live again on the restored node: its funds are usable.
    Resumed,
    /// Closed on the ledger after the restore, by this end, on its own.
    ClosedBy(Side),
    /// The ledger had closed it before the restore (nothing to resolve).
    ClosedBefore,
    /// Nobody closes it and it does not resume: the funds stay locked.
    Frozen,
    /// Held, and closed by the judge for the nodes (only with the sweep's named option
    /// `--judge-closes-held`, the behaviour before liveness was judged).
    JudgeClosed,
}

impl std::fmt::Display for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resolution::Resumed => "resumed",
            Resolution::ClosedBy(Side::Node) => "closed by the node",
            Resolution::ClosedBy(Side::Peer) => "closed by the peer",
            Resolution::ClosedBefore => "closed before the restore",
            Resolution::Frozen => "FROZEN",
            Resolution::JudgeClosed => "held (the judge closed it)",
        })
    }
}

/// The effective `on_audit_failure` of a node with these settings: the configured value, else
/// `hold` under `fiber` (Fiber's behaviour) and `request_close` under `strict`.
pub fn effective_on_failure(
    policy: Option<AuditPolicy>,
    configured: Option<OnAuditFailure>,
) -> OnAuditFailure {
    configured.unwrap_or(match policy.unwrap_or_default() {
        AuditPolicy::Fiber => OnAuditFailure::Hold,
        AuditPolicy::Strict => OnAuditFailure::RequestClose,
    })
}

/// The settings of both ends that decide a resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub policy: AuditPolicy,
    /// The restored node's effective `on_audit_failure`.
    pub node_on_failure: OnAuditFailure,
    /// The peer's (matters when it was restored too).
    pub peer_on_failure: OnAuditFailure,
    /// What the peer does on `RequestForceClose` while its channel is live.
    pub peer_on_request: OnForceCloseRequest,
    /// The node's key sorts below the peer's (the tie-break between equal backups).
    pub node_key_lower: bool,
}

/// Both ends Stale, both audits failed: which end closes, by the numbers both revealed.
/// An end's commitment is safe to broadcast when the other end's `L` (revocations it received
/// from this end) is at most this end's `R`. The newer backup (larger `L + R`; equal: the lower
/// node key) closes when its commitment is safe, else the other one when its own is.
pub fn mutual_closer(node: (u64, u64), peer: (u64, u64), node_key_lower: bool) -> Option<Side> {
    let node_safe = peer.0 <= node.1;
    let peer_safe = node.0 <= peer.1;
    let (node_sum, peer_sum) = (node.0 + node.1, peer.0 + peer.1);
    let node_newer = node_sum > peer_sum || (node_sum == peer_sum && node_key_lower);
    let (newer, newer_safe, older, older_safe) = if node_newer {
        (Side::Node, node_safe, Side::Peer, peer_safe)
    } else {
        (Side::Peer, peer_safe, Side::Node, node_safe)
    };
    if newer_safe {
        Some(newer)
    } else if older_safe {
        Some(older)
    } else {
        None
    }
}

/// One restored end (the peer live): from the audit's prediction for the node.
pub fn resolve_one_sided(audit: Behaviour, ends: Ends) -> Resolution {
    match audit {
        Behaviour::Resumed => Resolution::Resumed,
        Behaviour::Closed => Resolution::ClosedBefore,
        // The peer closes a channel the node does not know, when asked.
        Behaviour::Forgotten if ends.peer_on_request == OnForceCloseRequest::ForceClose => {
            Resolution::ClosedBy(Side::Peer)
        }
        Behaviour::Held
            if ends.node_on_failure == OnAuditFailure::RequestClose
                && ends.peer_on_request == OnForceCloseRequest::ForceClose =>
        {
            Resolution::ClosedBy(Side::Peer)
        }
        Behaviour::Held | Behaviour::Forgotten | Behaviour::Frozen => Resolution::Frozen,
    }
}

/// Both ends restored, both revealed (`reveal`): `node` and `peer` are the two backups'
/// numbers; each end audits the other's.
pub fn resolve_mutual(node: (u64, u64), peer: (u64, u64), ends: Ends) -> Resolution {
    let node_passes = predict(ends.policy, node, Some(peer)).behaviour == Behaviour::Resumed;
    let peer_passes = predict(ends.policy, peer, Some(node)).behaviour == Behaviour::Resumed;
    match (node_passes, peer_passes) {
        (true, true) => Resolution::Resumed,
        // The failing end asks the resumed one to close.
        (true, false) if ends.peer_on_failure == OnAuditFailure::RequestClose => {
            Resolution::ClosedBy(Side::Node)
        }
        (true, false) => Resolution::Resumed,
        (false, true)
            if ends.node_on_failure == OnAuditFailure::RequestClose
                && ends.peer_on_request == OnForceCloseRequest::ForceClose =>
        {
            Resolution::ClosedBy(Side::Peer)
        }
        (false, true) => Resolution::Frozen,
        (false, false) => {
            let closer = mutual_closer(node, peer, ends.node_key_lower);
            let willing = |side: Side| match side {
                Side::Node => ends.node_on_failure == OnAuditFailure::RequestClose,
                Side::Peer => ends.peer_on_failure == OnAuditFailure::RequestClose,
            };
            match closer {
                Some(side) if willing(side) => Resolution::ClosedBy(side),
                _ => Resolution::Frozen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(policy: AuditPolicy) -> Ends {
        let on_failure = effective_on_failure(Some(policy), None);
        Ends {
            policy,
            node_on_failure: on_failure,
            peer_on_failure: on_failure,
            peer_on_request: OnForceCloseRequest::ForceClose,
            node_key_lower: true,
        }
    }

    #[test]
    fn a_failed_one_sided_audit_resolves_only_under_request_close() {
        use AuditPolicy::{Fiber, Strict};
        assert_eq!(
            resolve_one_sided(Behaviour::Held, ends(Strict)),
            Resolution::ClosedBy(Side::Peer)
        );
        assert_eq!(
            resolve_one_sided(Behaviour::Held, ends(Fiber)),
            Resolution::Frozen
        );
        let ignoring = Ends {
            peer_on_request: OnForceCloseRequest::Ignore,
            ..ends(Strict)
        };
        assert_eq!(
            resolve_one_sided(Behaviour::Held, ignoring),
            Resolution::Frozen
        );
        assert_eq!(
            resolve_one_sided(Behaviour::Resumed, ends(Fiber)),
            Resolution::Resumed
        );
    }

    #[test]
    fn both_restored_the_newer_backup_closes_whatever_the_distance() {
        let strict = ends(AuditPolicy::Strict);
        // Far apart: the peer's (newer) commitment is safe by the node's numbers.
        assert_eq!(
            resolve_mutual((1, 1), (6, 6), strict),
            Resolution::ClosedBy(Side::Peer)
        );
        assert_eq!(
            resolve_mutual((6, 6), (1, 1), strict),
            Resolution::ClosedBy(Side::Node)
        );
        // Same numbers: both resume.
        assert_eq!(resolve_mutual((3, 3), (3, 3), strict), Resolution::Resumed);
        // Under fiber (hold): frozen.
        assert_eq!(
            resolve_mutual((1, 1), (6, 6), ends(AuditPolicy::Fiber)),
            Resolution::Frozen
        );
    }
}
