//! Step control: `hold` (arm a hold right after a protocol step), `wait_held` and `release`.
//! The node's core stops there, so its store is exactly that step's state until released.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb, one};
use crate::capability::Capability::{StepControl, TypedEvents};
use crate::error::HarnessError;
use crate::scenario::{Check, Facts, VerbFacts, protocol_step};

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
    fn facts(&self) -> Facts<'_> {
        // Typed events too: the hold is marked on the node's events.
        Facts::new([self.node.as_str()], &[StepControl, TypedEvents])
            .channel(self.channel.as_deref())
            .answering([self.node.as_str()])
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
    fn facts(&self) -> Facts<'_> {
        // It awaits the node's `Held` event.
        Facts::new([self.node.as_str()], &[StepControl, TypedEvents])
            .answering([self.node.as_str()])
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
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[StepControl]).answering([self.node.as_str()])
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
