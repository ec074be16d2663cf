//! The scenario format: the types a scenario file deserialises into (serde with
//! `deny_unknown_fields`, positions kept with `toml::Spanned`). The steps are of a type given
//! by the layer above (`steps/`, one file per verb family, each verb's fields, facts, checks and
//! run together); the shapes a topology expands into are `topology.rs`. What a file may say is
//! decided here and by each verb's fields; whether what it says can run (names, bounds,
//! preconditions) is `validate.rs` with each verb's own check.

use std::collections::BTreeMap;

use dlp_node_api::{AuditPolicy, MutualStale, OnAuditFailure, OnForceCloseRequest};
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::settings::{
    AuditPolicyName, MutualStaleName, OnAuditFailureName, OnForceCloseRequestName,
};

use super::topology::TopologyDecl;

/// The file's shape.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound(deserialize = "S: Deserialize<'de>"))]
#[schemars(rename = "ScenarioFile", bound = "S: JsonSchema + serde::Serialize")]
pub struct ScenarioFile<S> {
    /// One paragraph: what the scenario proves.
    pub description: String,
    /// Backends to run on (default: both).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub backends: Option<Vec<Spanned<String>>>,
    /// The scenario expects penalty transactions on the ledger (default: none allowed).
    #[serde(default)]
    pub allow_penalties: bool,
    pub nodes: BTreeMap<String, NodeDecl>,
    /// Channels by shape (expanded into `channels` named `<from>-<to>`).
    #[serde(default)]
    #[schemars(with = "Option<TopologyDecl>")]
    pub topology: Option<Spanned<TopologyDecl>>,
    #[serde(default)]
    #[schemars(with = "Vec<ChannelDecl>")]
    pub channels: Vec<Spanned<ChannelDecl>>,
    #[serde(default)]
    #[schemars(with = "Vec<S>")]
    pub steps: Vec<Spanned<S>>,
    /// Makes the file a sweep workload (`dlp-harness sweep`): the node under test.
    #[serde(default)]
    #[schemars(with = "Option<SweepDecl>")]
    pub sweep: Option<Spanned<SweepDecl>>,
}

/// `[sweep]`: what `dlp-harness sweep` needs beyond the scenario prefix.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepDecl {
    /// The node whose every persisted step is backed up, restored and judged.
    pub node: String,
    /// Restore the node's peers too, each from a backup of its own latest state taken after
    /// the workload: both ends of every channel come back Stale (the mutual-restore case).
    #[serde(default)]
    pub restore_peers: bool,
}

/// `[nodes.<name>]`
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeDecl {
    #[serde(default)]
    #[schemars(with = "Option<AuditPolicyName>")]
    pub audit_policy: Option<AuditPolicy>,
    #[serde(default)]
    #[schemars(with = "Option<OnAuditFailureName>")]
    pub on_audit_failure: Option<OnAuditFailure>,
    /// The node backs itself up on its own schedule (dlp-node's `[backup] auto = true`): about
    /// a second after each start and after channel changes (see `wait_auto_backup`).
    #[serde(default)]
    pub auto_backup: bool,
    /// The size of the node's backup directory, in KiB (16 to 1,048,576): a size-limited
    /// filesystem below the node, so a backup that does not fit meets a real full disk (ENOSPC).
    /// Needs a driver that can limit it (the container driver).
    #[serde(default)]
    pub backup_space_kb: Option<u64>,
    /// `"wait"` or `"reveal"`: what a Stale channel does when its peer is Stale too (unset:
    /// `wait` under the `fiber` policy, `reveal` under `strict`).
    #[serde(default)]
    #[schemars(with = "Option<MutualStaleName>")]
    pub mutual_stale: Option<MutualStale>,
    /// The node's forwarding fee in millionths of the forwarded amount (0 to 1,000,000; unset:
    /// 0): dlp-node's `[channel] fee_rate`, announced in its channel updates, so payers route
    /// around it when a cheaper route exists and pay it when not.
    #[serde(default)]
    pub fee_rate: Option<u64>,
    /// `"force_close"` or `"ignore"`: what a live channel does on the peer's
    /// `RequestForceClose` (unset: `force_close`).
    #[serde(default)]
    #[schemars(with = "Option<OnForceCloseRequestName>")]
    pub on_force_close_request: Option<OnForceCloseRequest>,
    /// The build of dlp-node the node runs: a name of the repository's `versions.toml` (built
    /// by `dlp-harness versions build`) or `"current"` (the default: this build). Needs a
    /// driver that runs other builds (process, container); `upgrade` swaps it later.
    #[serde(default)]
    pub version: Option<String>,
}

impl NodeDecl {
    /// The earlier build the node starts as, if any (`None`: this build).
    pub fn earlier_build(&self) -> Option<&str> {
        self.version
            .as_deref()
            .filter(|v| *v != crate::versions::CURRENT)
    }
}

/// `[[channels]]`: opened (and confirmed) before the first step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelDecl {
    pub name: String,
    pub from: String,
    pub to: String,
    /// Funding in shannons (the opener funds it all).
    pub amount: u64,
}
