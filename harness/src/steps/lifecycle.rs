//! A node's life: `start`, `stop`, `restart`, `crash`, `pause`, `resume`, and
//! `expect_node_info` (the node answers as itself).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::{self, Pause as CanPause, TypedEvents};
use crate::error::HarnessError;
use crate::scenario::{Check, Lifecycle, VerbFacts};

/// Start a stopped node.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Start {
    pub node: String,
}

impl VerbFacts for Start {
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[]
    }
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![self.node.clone()]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        Some((&self.node, Lifecycle::Start))
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        Ok(())
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
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[]
    }
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![self.node.clone()]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        Some((&self.node, Lifecycle::Stop))
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        Ok(())
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
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[]
    }
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![self.node.clone()]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        Some((&self.node, Lifecycle::Restart))
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        Ok(())
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
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[]
    }
    /// A paused node can be crashed: it dies frozen.
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        Some((&self.node, Lifecycle::Crash))
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        Ok(())
    }
}

impl Verb for Crash {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.crash(&self.node).await
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
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    /// Typed events too: the node's last events are fetched before it freezes.
    fn capabilities(&self) -> &'static [Capability] {
        &[CanPause, TypedEvents]
    }
    /// Whether it can be paused is its lifecycle's rule (running, not paused already).
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        Some((&self.node, Lifecycle::Pause))
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        Ok(())
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
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[CanPause]
    }
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        Some((&self.node, Lifecycle::Resume))
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        Ok(())
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
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    /// One RPC call.
    fn capabilities(&self) -> &'static [Capability] {
        &[]
    }
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![self.node.clone()]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        None
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        Ok(())
    }
}

impl Verb for ExpectNodeInfo {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.check_node_info(&self.node).await
    }
}
