//! The JSON Schema of the scenario format, generated from the types a file deserialises into
//! (`file.rs`, `topology.rs`; their doc comments become the descriptions editors show), so it
//! cannot say something the harness does not accept. It is committed as
//! `scenarios/scenario.schema.json` for TOML editors (taplo, Even Better TOML: see
//! `.taplo.toml`); `dlp-harness schema --check FILE` and a test fail when the two drift apart.
//!
//! The node's settings enums live in dlp-node, which knows nothing of schemas: they are
//! described here by mirrors whose names are checked against dlp-node's own serialisation
//! (the conversions below are exhaustive matches, so a new variant there fails to compile
//! here until it is mirrored).

use dlp_node_api::{AuditPolicy, MutualStale, OnAuditFailure, OnForceCloseRequest};
use schemars::JsonSchema;
use serde::Serialize;

use super::ScenarioFile;

/// The schema as committed: pretty JSON with a trailing newline.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(ScenarioFile);
    schema.insert(
        "title".into(),
        "dlp-harness scenario (scenarios/*.toml)".into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

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

/// `on_audit_failure`: what a channel that failed its audit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnAuditFailureName {
    /// Stay Stale and silent.
    Hold,
    /// Ask the peer to force-close, so our funds come back from its commitment.
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

    /// The committed schema is the types' schema (regenerate with
    /// `cargo run -p dlp-harness -- schema > scenarios/scenario.schema.json`).
    #[test]
    fn the_committed_schema_is_up_to_date() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/scenario.schema.json"
        );
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == json_schema(),
            "{path} differs from the scenario types' schema: regenerate it with \
             `cargo run -p dlp-harness -- schema > scenarios/scenario.schema.json`"
        );
    }

    #[test]
    fn the_schema_knows_every_verb_and_refuses_unknown_keys() {
        let schema: serde_json::Value =
            serde_json::from_str(&json_schema()).expect("the schema is JSON");
        let text = schema.to_string();
        for verb in crate::scenario::step_verbs() {
            assert!(
                text.contains(&format!("\"{verb}\"")),
                "{verb} is in the schema"
            );
        }
        assert_eq!(
            schema["additionalProperties"],
            serde_json::Value::Bool(false)
        );
        assert!(text.contains("\"request_close\""));
        assert!(text.contains("\"mesh\""));
    }
}
