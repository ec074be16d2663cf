//! The restored channel: `expect_audit` (its passive audit and where the peer stood),
//! `expect_silence` (it said nothing before the peer spoke), `wait_reestablished` (the peer
//! spoke) and `expect_resolution` (the nodes resumed or closed it by themselves, within a bound
//! in blocks: liveness as a checked outcome, as the sweep judges it).

use std::time::Duration;

use dlp_chain::TxKind;
use dlp_node_api::{ChannelState, EventKind, MutualStale};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::{DlpChainLedger, TypedEvents};
use crate::error::HarnessError;
use crate::limits::MAX_RESOLVE_BLOCKS;
use crate::model::silence::{Speaker, audited_or_revealed, breaches, effective_mode};
use crate::scenario::{Check, Facts, VerbFacts};

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
        let what = format!("the peer's ReestablishChannel on {channel}");
        cx.net.wait_heard(node, 0, id, &what).await
    }
}

/// How the nodes resolved a restored channel (`expect_resolution`'s `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionExpect {
    /// Both ends list the channel live (ChannelReady or ShuttingDown).
    Resumed,
    /// A transaction on the ledger spent its funding output: a commitment or a cooperative close.
    Closed,
}

/// The bound of `expect_resolution` when the file gives none, as the sweep's judge uses.
pub const DEFAULT_RESOLVE_WITHIN_BLOCKS: u64 = 6;

/// Leave the nodes alone, at most `within_blocks` blocks each followed by quiescence, until
/// they resolve `channel` by themselves: resumed, or closed (by whose commitment). Neither
/// within the bound fails as FROZEN, naming what each end shows.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectResolution {
    pub channel: String,
    pub outcome: ResolutionExpect,
    /// With `closed`: the node whose commitment closed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// At most this many blocks (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_blocks: Option<u64>,
}

impl VerbFacts for ExpectResolution {
    fn facts(&self) -> Facts<'_> {
        Facts::new(
            self.by.iter().map(String::as_str),
            &[TypedEvents, DlpChainLedger],
        )
        .channel(Some(&self.channel))
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        if let Some(blocks) = self.within_blocks
            && !(1..=MAX_RESOLVE_BLOCKS).contains(&blocks)
        {
            return Err(format!(
                "expect_resolution: within_blocks {blocks} must be 1 to {MAX_RESOLVE_BLOCKS}"
            ));
        }
        if self.by.is_some() && self.outcome != ResolutionExpect::Closed {
            return Err(
                "expect_resolution: `by` names who closed the channel: only with outcome = \"closed\""
                    .to_string(),
            );
        }
        Ok(())
    }
}

/// What the ledger and both ends show of a channel, for `expect_resolution`.
enum Seen {
    Resumed,
    /// By whose commitment (`None`: a cooperative close).
    ClosedBy(Option<String>),
}

impl Verb for ExpectResolution {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let channel = &self.channel;
        let entry = cx.net.channel(channel)?;
        let (id, ends) = (entry.id, [entry.from.clone(), entry.to.clone()]);
        let bound = self.within_blocks.unwrap_or(DEFAULT_RESOLVE_WITHIN_BLOCKS);
        if let Some(by) = &self.by
            && !ends.contains(by)
        {
            return Err(HarnessError::Expectation(format!(
                "expect_resolution: by = {by:?} is not an end of {channel} ({} - {})",
                ends[0], ends[1]
            )));
        }
        await_reveals(cx, id, &ends, channel).await?;
        let mut mined = 0;
        let seen = loop {
            cx.net.wait_quiescent().await?;
            if let Some(seen) = resolution_of(cx, id, &ends).await? {
                break seen;
            }
            if mined == bound {
                return Err(HarnessError::Expectation(format!(
                    "{channel} FROZEN: neither resumed nor closed by the nodes within {bound} \
                     blocks; {}",
                    what_each_end_shows(cx, id, &ends).await?
                )));
            }
            cx.net.mine(1).await?;
            mined += 1;
        };
        let got = match &seen {
            Seen::Resumed => "resumed".to_string(),
            Seen::ClosedBy(Some(who)) => format!("closed by {who}'s commitment"),
            Seen::ClosedBy(None) => "closed cooperatively".to_string(),
        };
        let matches = match (&seen, self.outcome) {
            (Seen::Resumed, ResolutionExpect::Resumed) => true,
            (Seen::ClosedBy(who), ResolutionExpect::Closed) => self.by.is_none() || self.by == *who,
            _ => false,
        };
        if matches {
            return Ok(());
        }
        let want = match (&self.outcome, &self.by) {
            (ResolutionExpect::Resumed, _) => "resumed".to_string(),
            (ResolutionExpect::Closed, None) => "closed".to_string(),
            (ResolutionExpect::Closed, Some(who)) => format!("closed by {who}'s commitment"),
        };
        Err(HarnessError::Expectation(format!(
            "expected {channel} {want}, but the nodes {got} (after {mined} blocks)"
        )))
    }
}

/// Both ends Stale: an end with `mutual_stale = "reveal"` sends its StaleNotice when a timer
/// runs out, which quiescence cannot see. Wait until each such end has audited the channel or
/// revealed; what follows is messages, which quiescence covers. (One end Stale: its audit
/// follows the live peer's ReestablishChannel, a message too.)
async fn await_reveals(
    cx: &mut Ctx<'_>,
    id: dlp_chain::Hash32,
    ends: &[String; 2],
    channel: &str,
) -> Result<(), HarnessError> {
    let mut revealing = Vec::new();
    for end in ends {
        if state_of(cx, end, id).await? != Some(ChannelState::Stale) {
            return Ok(());
        }
        let audit = cx.net.audit_settings(end)?;
        if effective_mode(audit.policy, audit.mutual_stale) == MutualStale::Reveal {
            revealing.push(end);
        }
    }
    for end in revealing {
        cx.net
            .wait_event(
                end,
                0,
                &format!("{end} to audit or reveal on {channel}"),
                audited_or_revealed(id),
            )
            .await?;
    }
    Ok(())
}

/// The channel's resolution so far: a transaction spending its funding on the ledger (a
/// commitment names its holder), or both ends live; `None` while neither.
async fn resolution_of(
    cx: &mut Ctx<'_>,
    id: dlp_chain::Hash32,
    ends: &[String; 2],
) -> Result<Option<Seen>, HarnessError> {
    for record in cx.net.transactions().await? {
        match record.tx.kind {
            TxKind::Commitment {
                channel_id, holder, ..
            } if channel_id == id => {
                let mut who = None;
                for end in ends {
                    if cx.net.pubkey(end)? == holder {
                        who = Some(end.clone());
                    }
                }
                return Ok(Some(Seen::ClosedBy(who)));
            }
            TxKind::CooperativeClose { channel_id } if channel_id == id => {
                return Ok(Some(Seen::ClosedBy(None)));
            }
            _ => {}
        }
    }
    for end in ends {
        let state = state_of(cx, end, id).await?;
        if !matches!(
            state,
            Some(ChannelState::ChannelReady | ChannelState::ShuttingDown(_))
        ) {
            return Ok(None);
        }
    }
    Ok(Some(Seen::Resumed))
}

/// The state `end` lists channel `id` in now, `None` when it does not list it.
async fn state_of(
    cx: &Ctx<'_>,
    end: &str,
    id: dlp_chain::Hash32,
) -> Result<Option<ChannelState>, HarnessError> {
    Ok(cx
        .net
        .client(end)?
        .list_channels()
        .await?
        .into_iter()
        .find(|c| c.channel_id == id)
        .map(|c| c.state))
}

/// For a FROZEN channel: each end's state and its last audit in its current run.
async fn what_each_end_shows(
    cx: &mut Ctx<'_>,
    id: dlp_chain::Hash32,
    ends: &[String; 2],
) -> Result<String, HarnessError> {
    let mut parts = Vec::new();
    for end in ends {
        let state = state_of(cx, end, id)
            .await?
            .map_or_else(|| "does not list it".to_string(), |s| s.to_string());
        cx.net.poll(end, Duration::ZERO).await?;
        let audit = cx
            .net
            .events(end)?
            .iter()
            .rev()
            .find_map(|e| match &e.kind {
                EventKind::Audit(audit) if audit.channel_id == id => Some(if audit.passed() {
                    "its audit passed"
                } else {
                    "its audit failed"
                }),
                _ => None,
            });
        parts.push(format!(
            "{end}: {state}, {}",
            audit.unwrap_or("never audited")
        ));
    }
    Ok(parts.join("; "))
}
