//! Step control: `hold` (arm a hold right after a protocol step), `wait_held` and `release`.
//! The node's core stops there, so its store is exactly that step's state until released. And
//! `pin_order` / `unpin_order`: the order in which a node handles inputs that race.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb, one};
use crate::capability::Capability::{StepControl, TypedEvents};
use crate::error::HarnessError;
use crate::pinned_input::PinnedInput;
use crate::scenario::{Check, Facts, VerbFacts, protocol_step};
use dlp_node_api::MAX_PINNED_INPUTS;

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

/// From this step on, `node` handles these inputs in this order: a message or command that
/// arrives before its turn waits for it (see `dlp_node_api::order`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PinOrder {
    pub node: String,
    /// `"<Message> from <node>"`, `"<Message> from <node> on <channel>"`, `"rpc <command>"`.
    pub inputs: Vec<PinnedInput>,
}

impl VerbFacts for PinOrder {
    fn facts(&self) -> Facts<'_> {
        let peers = self.inputs.iter().filter_map(|input| match input {
            PinnedInput::Message { from, .. } => Some(from.as_str()),
            PinnedInput::Command(_) => None,
        });
        Facts::new(
            std::iter::once(self.node.as_str()).chain(peers),
            &[StepControl],
        )
        .answering([self.node.as_str()])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        if let Some(version) = cx.node(&self.node).and_then(|d| d.earlier_build()) {
            return Err(format!(
                "pin_order: {} runs the earlier build {version:?}, which cannot pin an order",
                self.node
            ));
        }
        if self.inputs.len() > MAX_PINNED_INPUTS {
            return Err(format!(
                "pin_order: {} inputs; at most {MAX_PINNED_INPUTS} at a time",
                self.inputs.len()
            ));
        }
        for input in &self.inputs {
            let PinnedInput::Message { from, channel, .. } = input else {
                continue;
            };
            if *from == self.node {
                return Err(format!(
                    "pin_order: \"{input}\": {} receives its inputs from its peers, not itself",
                    self.node
                ));
            }
            if let Some(channel) = channel
                && !cx.channels().names.contains(channel)
            {
                return Err(format!(
                    "pin_order: \"{input}\": no channel {channel:?} before this step (leave \
                     `on <channel>` out for a channel opened later)"
                ));
            }
        }
        Ok(())
    }
}

impl Verb for PinOrder {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.pin_order(&self.node, &self.inputs).await
    }
}

/// End `node`'s pinned order; fails unless every pinned input was handled in its turn.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnpinOrder {
    pub node: String,
}

impl VerbFacts for UnpinOrder {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[StepControl]).answering([self.node.as_str()])
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        Ok(())
    }
}

impl Verb for UnpinOrder {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        match cx.net.unpin_order(&self.node).await? {
            None => Ok(()),
            Some(unkept) => Err(HarnessError::Expectation(format!(
                "unpin_order: the pin was not kept: {unkept}"
            ))),
        }
    }
}
