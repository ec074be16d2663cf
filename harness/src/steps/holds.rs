//! Step control: `hold` (arm a hold right after a protocol step), `wait_held` and `release`.
//! The node's core stops there, so its store is exactly that step's state until released.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb, one};
use crate::capability::Capability::{self, StepControl, TypedEvents};
use crate::error::HarnessError;
use crate::scenario::{Check, Lifecycle, VerbFacts, protocol_step};

/// Arm a hold after a protocol step (`sent:X` / `received:X`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    pub node: String,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default = "one")]
    pub nth: u64,
}

impl VerbFacts for Hold {
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }
    /// Typed events too: the hold is marked on the node's events.
    fn capabilities(&self) -> &'static [Capability] {
        &[StepControl, TypedEvents]
    }
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![self.node.clone()]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        None
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        protocol_step::check("hold", &self.step, self.nth)?;
        cx.arm_hold(&self.node);
        Ok(())
    }
}

impl Verb for Hold {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net
            .hold(&self.node, &self.step, self.channel.as_deref(), self.nth)
            .await
    }
}

/// Wait until `node` is held.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitHeld {
    pub node: String,
}

impl VerbFacts for WaitHeld {
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    /// It awaits the node's `Held` event.
    fn capabilities(&self) -> &'static [Capability] {
        &[StepControl, TypedEvents]
    }
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![self.node.clone()]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        None
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        armed("wait_held", &self.node, cx)
    }
}

impl Verb for WaitHeld {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.wait_held(&self.node).await
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub node: String,
}

impl VerbFacts for Release {
    fn nodes(&self) -> Vec<&str> {
        vec![&self.node]
    }
    fn channel(&self) -> Option<&str> {
        None
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[StepControl]
    }
    fn answers(&self, _: &Check<'_>) -> Vec<String> {
        vec![self.node.clone()]
    }
    fn lifecycle(&self) -> Option<(&str, Lifecycle)> {
        None
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        armed("release", &self.node, cx)
    }
}

impl Verb for Release {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.release(&self.node).await
    }
}

/// Some hold of `node` was armed before this step of `verb`.
fn armed(verb: &str, node: &str, cx: &Check<'_>) -> Result<(), String> {
    if cx.has_hold(node) {
        Ok(())
    } else {
        Err(format!("{verb}: {node} has no hold armed before this step"))
    }
}
