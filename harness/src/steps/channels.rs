//! Channels: `open_channel`, `shutdown`, and what a node lists (`expect_state`,
//! `expect_balance`, `expect_channels`).

use dlp_node_api::ChannelState;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::{DlpChainLedger, TypedEvents};
use crate::error::HarnessError;
use crate::limits::{MAX_AMOUNT, MAX_CHANNELS};
use crate::scenario::{Check, Facts, NodeState, VerbFacts, clip};

/// Open a channel `from` -> `to` funded with `amount` by `from` (connecting them first if
/// they are not), mine its funding and wait until both ends are ChannelReady; later steps
/// name it `name`. The same as a `[[channels]]` entry, at any point of the steps.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenChannel {
    pub name: String,
    pub from: String,
    pub to: String,
    pub amount: u64,
}

impl VerbFacts for OpenChannel {
    fn facts(&self) -> Facts<'_> {
        // It names a new channel, not a known one; it mines the funding and waits for both ends
        // (and gossip) on their events.
        let (from, to) = (self.from.as_str(), self.to.as_str());
        Facts::new([from, to], &[TypedEvents, DlpChainLedger]).answering([from, to])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        let (from, to) = (&self.from, &self.to);
        cx.open_channel(&self.name, from, to, self.amount)
            .map_err(|message| format!("open_channel: channel {message}"))?;
        for node in [from, to] {
            if let NodeState::Stopped { line: since } = cx.liveness().state(node) {
                return Err(format!(
                    "open_channel: {node} is not running here (stopped at line {since}); both \
                     ends must run to open a channel"
                ));
            }
        }
        if cx.liveness().partitioned(from, to) {
            return Err(format!(
                "open_channel: {from} and {to} are partitioned here; heal them first"
            ));
        }
        Ok(())
    }
}

impl Verb for OpenChannel {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (from, to) = (&self.from, &self.to);
        // Dial only when they are not connected: a second dial would replace a live
        // connection (and reestablish every channel between them) for nothing.
        if !cx.net.connected(from, to).await? {
            cx.net.connect(from, to).await?;
        }
        cx.net
            .open_channel(&self.name, from, to, self.amount)
            .await
            .map(|_| ())
    }
}

/// Expected answer to a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownExpect {
    #[default]
    Ok,
    Refused,
    /// Either answer.
    Any,
}

/// `shutdown_channel` from `node`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    pub node: String,
    pub channel: String,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub expect: ShutdownExpect,
}

impl VerbFacts for Shutdown {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[])
            .channel(Some(&self.channel))
            .answering([self.node.as_str()])
    }
}

impl Verb for Shutdown {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (node, channel, force) = (&self.node, &self.channel, self.force);
        match (cx.net.shutdown(node, channel, force).await?, self.expect) {
            (Ok(()), ShutdownExpect::Ok | ShutdownExpect::Any)
            | (Err(_), ShutdownExpect::Refused | ShutdownExpect::Any) => Ok(()),
            (Ok(()), ShutdownExpect::Refused) => Err(HarnessError::Expectation(format!(
                "{node} accepted shutdown of {channel} (force = {force}); expected a refusal"
            ))),
            (Err(refusal), ShutdownExpect::Ok) => Err(HarnessError::Expectation(format!(
                "{node} refused shutdown of {channel}: {refusal}"
            ))),
        }
    }
}

/// Wait until `node` lists `channel` in `state` (`Stale`, `ChannelReady`, `Closed(0x1)`...).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectState {
    pub node: String,
    pub channel: String,
    pub state: String,
}

impl VerbFacts for ExpectState {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[TypedEvents])
            .channel(Some(&self.channel))
            .answering([self.node.as_str()])
    }
}

impl Verb for ExpectState {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net
            .wait_state(&self.node, &self.channel, &self.state)
            .await
    }
}

/// Wait until `node`'s committed local balance on `channel` is `local`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectBalance {
    pub node: String,
    pub channel: String,
    pub local: u64,
}

impl VerbFacts for ExpectBalance {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[TypedEvents])
            .channel(Some(&self.channel))
            .answering([self.node.as_str()])
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        let local = self.local;
        if local > MAX_AMOUNT {
            return Err(format!(
                "expect_balance: local {local} is more than any channel holds ({MAX_AMOUNT} \
                 shannons at most)"
            ));
        }
        Ok(())
    }
}

impl Verb for ExpectBalance {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net
            .wait_balance(&self.node, &self.channel, self.local)
            .await
    }
}

/// Wait until `node` lists exactly `count` channels that are not closed (only those with
/// `peer`, if given), each in `state` if given (as `expect_state` compares it).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectChannels {
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl VerbFacts for ExpectChannels {
    fn facts(&self) -> Facts<'_> {
        // The peer is named by the key it had at start: it need not answer.
        let nodes = std::iter::once(&self.node)
            .chain(&self.peer)
            .map(String::as_str);
        Facts::new(nodes, &[TypedEvents]).answering([self.node.as_str()])
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        let (node, count) = (&self.node, self.count);
        if self.peer.as_ref() == Some(node) {
            return Err(format!(
                "expect_channels: peer {node} is the node itself (a node has no channel with \
                 itself)"
            ));
        }
        if count > MAX_CHANNELS as u64 {
            return Err(format!(
                "expect_channels: count {count} is more than a scenario opens (at most \
                 {MAX_CHANNELS})"
            ));
        }
        match &self.state {
            Some(state) => check_state(state),
            None => Ok(()),
        }
    }
}

impl Verb for ExpectChannels {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net
            .wait_channels(
                &self.node,
                self.peer.as_deref(),
                self.count,
                self.state.as_deref(),
            )
            .await
    }
}

/// A state `expect_channels` can see: a state name (flags in parentheses allowed), not
/// `Closed` (closed channels are not counted).
fn check_state(state: &str) -> Result<(), String> {
    let names: Vec<&str> = [
        ChannelState::NegotiatingFunding(0),
        ChannelState::CollaboratingFundingTx(0),
        ChannelState::SigningCommitment(0),
        ChannelState::AwaitingTxSignatures(0),
        ChannelState::AwaitingChannelReady(0),
        ChannelState::ChannelReady,
        ChannelState::ShuttingDown(0),
        ChannelState::Stale,
    ]
    .iter()
    .map(ChannelState::name)
    .collect();
    let name = state.split_once('(').map_or(state, |(name, _)| name);
    if name == ChannelState::Closed(0).name() {
        return Err(
            "expect_channels: closed channels are not counted, so none can be Closed (use \
             expect_state for a closed channel)"
                .into(),
        );
    }
    if !names.contains(&name) {
        return Err(format!(
            "expect_channels: unknown state {}; states: {}",
            clip(state),
            names.join(", ")
        ));
    }
    Ok(())
}
