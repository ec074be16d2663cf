//! A node's life: `start`, `stop`, `restart`, `crash`, `pause`, `resume`, and
//! `expect_node_info` (the node answers as itself).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::{NodeVersions, Pause as CanPause, TypedEvents};
use crate::error::HarnessError;
use crate::scenario::{Facts, Lifecycle, VerbFacts};

/// Start a stopped node.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Start {
    pub node: String,
}

impl VerbFacts for Start {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[])
            .answering([self.node.as_str()])
            .lifecycle(&self.node, Lifecycle::Start)
    }
}

impl Verb for Start {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.start(&self.node).await
    }
}

/// Stop a node cleanly.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    pub node: String,
}

impl VerbFacts for Stop {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[])
            .answering([self.node.as_str()])
            .lifecycle(&self.node, Lifecycle::Stop)
    }
}

impl Verb for Stop {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.stop(&self.node).await
    }
}

/// Stop and start a node.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    pub node: String,
}

impl VerbFacts for Restart {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[])
            .answering([self.node.as_str()])
            .lifecycle(&self.node, Lifecycle::Restart)
    }
}

impl Verb for Restart {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.stop(&self.node).await?;
        cx.net.start(&self.node).await
    }
}

/// Kill a node (SIGKILL on the process driver).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    pub node: String,
}

impl VerbFacts for Crash {
    fn facts(&self) -> Facts<'_> {
        // A paused node can be crashed: it dies frozen.
        Facts::new([self.node.as_str()], &[]).lifecycle(&self.node, Lifecycle::Crash)
    }
}

impl Verb for Crash {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.crash(&self.node).await
    }
}

/// Swap a stopped node's build of dlp-node, keeping its home (its store, keys and backups):
/// `version` is a name of the repository's `versions.toml` or `"current"`. Its config is
/// rewritten in the keys the new build reads; the next `start` runs the new build on the store
/// the old one wrote (this build migrates earlier records forward; an earlier build refuses a
/// store it cannot read). Needs a driver that runs other builds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upgrade {
    pub node: String,
    pub version: String,
}

impl VerbFacts for Upgrade {
    fn facts(&self) -> Facts<'_> {
        let needs = match crate::scenario::version_needs(&self.version) {
            [] => &[NodeVersions][..],
            needs => needs,
        };
        Facts::new([self.node.as_str()], needs).lifecycle(&self.node, Lifecycle::Upgrade)
    }

    fn check(&self, _cx: &mut crate::scenario::Check<'_>) -> Result<(), String> {
        crate::scenario::check_version_name(&self.version)
    }
}

impl Verb for Upgrade {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.upgrade_to(&self.node, &self.version).await
    }
}

/// Freeze `node` where it stands (SIGSTOP on the process driver, `docker pause`): its
/// sockets stay open, so its peers see a silent node, not a closed connection. Until
/// `resume` no step may need its RPC or wait on its events (validated), quiescence counts
/// its directions as frozen, and a `crash` kills it frozen. Needs a driver that can pause.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    pub node: String,
}

impl VerbFacts for Pause {
    fn facts(&self) -> Facts<'_> {
        // Typed events: the node's last events are fetched before it freezes. Whether it can be
        // paused (running, not paused already) is its lifecycle's rule.
        Facts::new([self.node.as_str()], &[CanPause, TypedEvents])
            .lifecycle(&self.node, Lifecycle::Pause)
    }
}

impl Verb for Pause {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.pause(&self.node).await
    }
}

/// Thaw a paused node: it goes on from where it stood (the same run; a hold it was at
/// still holds).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    pub node: String,
}

impl VerbFacts for Resume {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[CanPause]).lifecycle(&self.node, Lifecycle::Resume)
    }
}

impl Verb for Resume {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.resume(&self.node).await
    }
}

/// `node_info` of `node` answers, with the node's own public key.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectNodeInfo {
    pub node: String,
}

impl VerbFacts for ExpectNodeInfo {
    fn facts(&self) -> Facts<'_> {
        // One RPC call.
        Facts::new([self.node.as_str()], &[]).answering([self.node.as_str()])
    }
}

impl Verb for ExpectNodeInfo {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.check_node_info(&self.node).await
    }
}
