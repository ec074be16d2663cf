//! The node settings a scenario file may set, as the format describes them: dlp-node's own
//! enums know nothing of schemas, so they are described here by mirrors whose names are checked
//! against the node's serialisation (the conversions are exhaustive matches, so a new variant
//! there fails to compile here until it is mirrored).

use dlp_node_api::{AuditPolicy, MutualStale, OnAuditFailure, OnForceCloseRequest};
use schemars::JsonSchema;
use serde::Serialize;

/// `audit_policy`: how a Stale channel judges the peer's ReestablishChannel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuditPolicyName {
    /// Fiber's merged rule: fail if either number differs by more than one.
    Fiber,
    /// Also fail whenever the peer is ahead of the backup in either number.
    Strict,
}

impl From<AuditPolicy> for AuditPolicyName {
    fn from(v: AuditPolicy) -> Self {
        match v {
            AuditPolicy::Fiber => Self::Fiber,
            AuditPolicy::Strict => Self::Strict,
        }
    }
}

/// `on_audit_failure`: what a channel that failed its audit does (unset: `hold` under
/// `fiber`, `request_close` under `strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnAuditFailureName {
    /// Stay Stale and silent: the funds stay locked until a person acts.
    Hold,
    /// Get the channel closed: ask a live peer to force-close (our funds come back from its
    /// commitment); when both ends are Stale, the end with the newer backup closes with its
    /// commitment if the other's numbers show it unrevoked.
    RequestClose,
}

impl From<OnAuditFailure> for OnAuditFailureName {
    fn from(v: OnAuditFailure) -> Self {
        match v {
            OnAuditFailure::Hold => Self::Hold,
            OnAuditFailure::RequestClose => Self::RequestClose,
        }
    }
}

/// `mutual_stale`: what a Stale channel does when its peer is Stale too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MutualStaleName {
    /// Passive silence, always (both ends restored: the channel is frozen).
    Wait,
    /// After a short silence say StaleNotice; when both did, the lower node key sends its
    /// numbers first and the other audits them.
    Reveal,
}

impl From<MutualStale> for MutualStaleName {
    fn from(v: MutualStale) -> Self {
        match v {
            MutualStale::Wait => Self::Wait,
            MutualStale::Reveal => Self::Reveal,
        }
    }
}

/// `on_force_close_request`: what a live channel does on the peer's RequestForceClose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnForceCloseRequestName {
    /// Broadcast our latest commitment.
    ForceClose,
    /// Report it and stay open.
    Ignore,
}

impl From<OnForceCloseRequest> for OnForceCloseRequestName {
    fn from(v: OnForceCloseRequest) -> Self {
        match v {
            OnForceCloseRequest::ForceClose => Self::ForceClose,
            OnForceCloseRequest::Ignore => Self::Ignore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_name<N: Serialize, M: Serialize>(node: N, mirror: M) {
        assert_eq!(
            serde_json::to_value(&node).ok(),
            serde_json::to_value(&mirror).ok(),
            "a mirror names a setting as dlp-node does"
        );
    }

    #[test]
    fn the_mirrors_name_every_setting_as_the_node_does() {
        for v in [AuditPolicy::Fiber, AuditPolicy::Strict] {
            same_name(v, AuditPolicyName::from(v));
        }
        for v in [OnAuditFailure::Hold, OnAuditFailure::RequestClose] {
            same_name(v, OnAuditFailureName::from(v));
        }
        for v in [MutualStale::Wait, MutualStale::Reveal] {
            same_name(v, MutualStaleName::from(v));
        }
        for v in [OnForceCloseRequest::ForceClose, OnForceCloseRequest::Ignore] {
            same_name(v, OnForceCloseRequestName::from(v));
        }
    }
}
