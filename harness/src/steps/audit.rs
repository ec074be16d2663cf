//! The restored channel: `expect_audit` (its passive audit and where the peer stood),
//! `expect_silence` (it said nothing before the peer spoke) and `wait_reestablished` (the peer
//! spoke).

use std::time::Duration;

use dlp_node_api::{EventKind, MessageName};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::TypedEvents;
use crate::error::HarnessError;
use crate::model::silence::{Speaker, breaches, effective_mode};
use crate::scenario::{Facts, VerbFacts};

/// Expected audit outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditExpect {
    Passed,
    Failed,
}

/// Where the peer's commitment numbers stand against the restored channel's, in an audit
/// (`expect_audit`'s `peer`): with the backup's `(L, R)` and the peer's `(PL, PR)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditPeer {
    /// `PL < R` or `PR < L`, and neither ahead: the peer lags the backup.
    Behind,
    /// `PL == R` and `PR == L`: the numbers agree.
    Level,
    /// `PL > R` or `PR > L`, and neither behind: the peer moved past the backup.
    Ahead,
}

impl AuditPeer {
    /// Where the peer stands, `None` when it is ahead in one number and behind in the other.
    pub fn of(local: u64, remote: u64, peer_local: u64, peer_remote: u64) -> Option<Self> {
        use std::cmp::Ordering::*;
        match (peer_local.cmp(&remote), peer_remote.cmp(&local)) {
            (Equal, Equal) => Some(AuditPeer::Level),
            (Less | Equal, Less | Equal) => Some(AuditPeer::Behind),
            (Greater | Equal, Greater | Equal) => Some(AuditPeer::Ahead),
            _ => None,
        }
    }
}

/// Wait for `node`'s audit of `channel` (in its current run) and check the outcome.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectAudit {
    pub node: String,
    pub channel: String,
    pub outcome: AuditExpect,
    /// Also where the peer's numbers stood against the backup's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<AuditPeer>,
}

impl VerbFacts for ExpectAudit {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[TypedEvents])
            .channel(Some(&self.channel))
            .answering([self.node.as_str()])
    }
}

impl Verb for ExpectAudit {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (node, channel, outcome) = (&self.node, &self.channel, self.outcome);
        let id = cx.net.channel(channel)?.id;
        let event = cx
            .net
            .wait_event(
                node,
                0,
                &format!("the audit of {channel}"),
                |k| matches!(k, EventKind::Audit(audit) if audit.channel_id == id),
            )
            .await?;
        let EventKind::Audit(audit) = &event.kind else {
            unreachable!("matched an audit event above")
        };
        if audit.passed() != (outcome == AuditExpect::Passed) {
            return Err(HarnessError::Expectation(format!(
                "{node}: expected the audit of {channel} to be {outcome:?}, got: {}",
                event.kind
            )));
        }
        let (local, remote, peer_local, peer_remote) = (
            audit.local,
            audit.remote,
            audit.peer_local,
            audit.peer_remote,
        );
        match self.peer {
            Some(want) if AuditPeer::of(local, remote, peer_local, peer_remote) != Some(want) => {
                Err(HarnessError::Expectation(format!(
                    "{node}: expected the peer {want:?} of the backup in the audit of \
                     {channel}, got: {}",
                    event.kind
                )))
            }
            _ => Ok(()),
        }
    }
}

/// `node` has sent nothing on `channel` in its current run, except after the peer's
/// ReestablishChannel.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectSilence {
    pub node: String,
    pub channel: String,
}

impl VerbFacts for ExpectSilence {
    fn facts(&self) -> Facts<'_> {
        // A paused node has said nothing since its events were last fetched, before it froze.
        Facts::new([self.node.as_str()], &[TypedEvents]).channel(Some(&self.channel))
    }
}

impl Verb for ExpectSilence {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (node, channel) = (&self.node, &self.channel);
        let net = &mut *cx.net;
        let id = net.channel(channel)?.id;
        net.poll(node, Duration::ZERO).await?;
        let audit = net.audit_settings(node)?;
        let speaker = Speaker {
            me: net.pubkey(node)?,
            mode: effective_mode(audit.policy, audit.mutual_stale),
        };
        match breaches(net.events(node)?, id, speaker).first() {
            None => Ok(()),
            Some(breach) => Err(HarnessError::Expectation(format!(
                "{node} sent {} on {channel} before the peer's ReestablishChannel (event #{}; \
                 mutual_stale = {})",
                breach.message, breach.seq, speaker.mode
            ))),
        }
    }
}

/// Wait until `node` has heard the peer's ReestablishChannel on `channel` in its current run.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitReestablished {
    pub node: String,
    pub channel: String,
}

impl VerbFacts for WaitReestablished {
    fn facts(&self) -> Facts<'_> {
        Facts::new([self.node.as_str()], &[TypedEvents])
            .channel(Some(&self.channel))
            .answering([self.node.as_str()])
    }
}

impl Verb for WaitReestablished {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let (node, channel) = (&self.node, &self.channel);
        let id = cx.net.channel(channel)?.id;
        cx.net
            .wait_event(
                node,
                0,
                &format!("the peer's ReestablishChannel on {channel}"),
                |k| {
                    matches!(k, EventKind::MessageReceived {
                        msg_type: MessageName::ReestablishChannel,
                        channel_id,
                        ..
                    } if *channel_id == Some(id))
                },
            )
            .await
            .map(|_| ())
    }
}
