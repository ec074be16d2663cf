//! Liveness, judged: after a restore the judge leaves the nodes alone within a bound (a few
//! blocks, each followed by quiescence), then observes what became of each channel (its
//! audit, and whether it resumed, was closed on the ledger and by whom, or neither: FROZEN,
//! with what each end waits for), and follows a closed channel on the ledger until every
//! output is in a wallet, with the time to funds unlocked. The judge closes a channel itself
//! only to probe a resumed one (a revoked state is punished) or, with the named option
//! `judge_closes_held`, a held one as it did before liveness was judged.

use std::collections::BTreeMap;

use dlp_chain::{OutPoint, TxKind};
use dlp_node_api::{
    AuditPolicy, ChannelState, EventKind, NodeEvent, OnAuditFailure, OnForceCloseRequest,
};

use crate::error::HarnessError;
use crate::model::resolve::{Ends, Resolution, Side, effective_on_failure};
use crate::run::RunFailure;
use crate::run::{LedgerLook, Session};
use crate::steps::channels::{ExpectState, Shutdown};
use crate::steps::ledger::Mine;
use crate::steps::{ShutdownExpect, Step};

use super::{Behaviour, LedgerFacts, Unlock, Workload, settle};

/// The peer's view of a channel before the restore.
#[derive(Debug, Clone)]
pub(super) struct PeerView {
    pub(super) numbers: Option<(u64, u64)>,
    pub(super) funding: Option<OutPoint>,
    /// What the peer's records promise each side (taken before the restore, so nothing the
    /// restored node says can move the baseline).
    pub(super) owed_peer: u64,
    pub(super) owed_node: u64,
    pub(super) pending_tlcs: usize,
}

/// Why a point has no verdict: its run failed (a step, setup), or judging it did.
#[derive(Debug, thiserror::Error)]
pub(super) enum PointError {
    #[error(transparent)]
    Run(#[from] RunFailure),
    #[error(transparent)]
    Judge(#[from] HarnessError),
}

/// How the judge treats what the nodes leave unresolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JudgeOptions {
    /// The behaviour before liveness was judged, for comparison: a channel whose audit failed
    /// and that nobody closed is closed by the judge on the peer's behalf (verdict `held`).
    pub judge_closes_held: bool,
    /// Blocks the judge mines, one at a time, while a channel is neither resumed nor closed
    /// (a node that acts on the chain's height gets the chance; each block is followed by
    /// quiescence, which bounds the seconds).
    pub resolve_within_blocks: u64,
}

impl Default for JudgeOptions {
    fn default() -> Self {
        Self {
            judge_closes_held: false,
            resolve_within_blocks: RESOLVE_WITHIN_BLOCKS,
        }
    }
}

/// The bound, in blocks, within which the nodes must resolve a restored channel by themselves.
pub const RESOLVE_WITHIN_BLOCKS: u64 = crate::steps::audit::DEFAULT_RESOLVE_WITHIN_BLOCKS;

/// The settings of the node and its peer that decide how a failed audit resolves.
pub(super) fn ends_of(
    session: &Session<'_>,
    workload: &Workload,
    policy: AuditPolicy,
    peer: &str,
) -> Result<Ends, HarnessError> {
    let nodes = &session.scenario().file.nodes;
    let node_decl = nodes.get(&workload.node);
    let peer_decl = nodes.get(peer);
    // A restored peer audits under the sweep's policy too (see `point_scenario`).
    let peer_policy = if workload.restores_peers() {
        Some(policy)
    } else {
        peer_decl.and_then(|d| d.audit_policy)
    };
    Ok(Ends {
        policy,
        node_on_failure: effective_on_failure(
            Some(policy),
            node_decl.and_then(|d| d.on_audit_failure),
        ),
        peer_on_failure: effective_on_failure(
            peer_policy,
            peer_decl.and_then(|d| d.on_audit_failure),
        ),
        peer_on_request: peer_decl
            .and_then(|d| d.on_force_close_request)
            .unwrap_or_default(),
        node_key_lower: session.pubkey(&workload.node)?.0 < session.pubkey(peer)?.0,
    })
}

/// Whether the nodes have resolved a channel: the ledger closed it, or the restored node
/// lists it live again.
pub(super) async fn resolved(
    session: &Session<'_>,
    node: &str,
    channel: &str,
    view: &PeerView,
) -> Result<bool, HarnessError> {
    if let Some(funding) = view.funding
        && settle(&session.transactions().await?, funding)
            .closing
            .is_some()
    {
        return Ok(true);
    }
    let id = session.channel_id(channel)?;
    Ok(session.list_channels(node).await?.iter().any(|c| {
        c.channel_id == id
            && matches!(
                c.state,
                ChannelState::ChannelReady | ChannelState::ShuttingDown(_)
            )
    }))
}

/// Leave the nodes alone within the bound: while a channel is unresolved, mine one block and
/// wait for quiescence, at most `resolve_within_blocks` times. The judge does nothing else.
pub(super) async fn give_the_nodes_time(
    session: &mut Session<'_>,
    node: &str,
    channels: &BTreeMap<String, String>,
    before: &BTreeMap<String, PeerView>,
    options: JudgeOptions,
) -> Result<(), PointError> {
    for _ in 0..options.resolve_within_blocks {
        let mut open = false;
        for channel in channels.keys() {
            open |= !resolved(session, node, channel, &before[channel]).await?;
        }
        if !open {
            break;
        }
        session
            .act(
                Step::Mine(Mine { blocks: 1 }),
                "a block for the nodes to resolve the restored channels on their own",
            )
            .await?;
        session
            .wait_quiescent("waiting until no message is in flight after a block")
            .await?;
    }
    Ok(())
}

/// What became of one channel after the restore, as the judge saw it before acting.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    /// What the restored node's audit did.
    pub(super) behaviour: Behaviour,
    pub(super) resolution: Resolution,
    /// When a node resolved it: milliseconds from the resolving end's reconnection to the
    /// event that resolved it (the audit that passed, the closing transaction accepted).
    pub(super) resolved_after_ms: Option<u64>,
    /// For a frozen channel: what each end is waiting for.
    pub(super) waiting: String,
}

/// Observe one channel: the node's audit (a channel it does not list is forgotten; in a
/// both-ends restore, held while the peer did not resume is "both held"), then how it was
/// resolved: the ledger's closing transaction (whose commitment), a live channel, or neither.
pub(super) async fn observe(
    session: &mut Session<'_>,
    workload: &Workload,
    peer: &str,
    channel: &str,
    view: &PeerView,
    options: JudgeOptions,
    ends: Ends,
) -> Result<Seen, HarnessError> {
    let node = workload.node.as_str();
    let id = session.channel_id(channel)?;
    session.fetch_events(Some(node)).await?;
    session.fetch_events(Some(peer)).await?;
    let audit_of = |events: &[NodeEvent]| {
        events.iter().find_map(|e| match &e.kind {
            EventKind::Audit(audit) if audit.channel_id == id => Some((audit.passed(), e.at_ms)),
            _ => None,
        })
    };
    let node_audit = audit_of(session.events(node)?);
    let peer_audit = audit_of(session.events(peer)?);
    let listed = session.list_channels(node).await?;
    let info = listed.into_iter().find(|c| c.channel_id == id);
    let mut behaviour = match (&info, node_audit) {
        (None, _) => Behaviour::Forgotten,
        (Some(_), Some((true, _))) => Behaviour::Resumed,
        (Some(_), Some((false, _))) => Behaviour::Held,
        (Some(info), None) => match info.state {
            // Closed before the restore. (Closed after it without an audit: the peer's close
            // reached the node before the peer's numbers did; it never resumed: held.)
            ChannelState::Closed(_) if view.numbers.is_none() => Behaviour::Closed,
            ChannelState::ChannelReady | ChannelState::ShuttingDown(_) => Behaviour::Resumed,
            _ => Behaviour::Held,
        },
    };
    if behaviour == Behaviour::Held
        && workload.restores_peers()
        && !peer_audit.is_some_and(|(passed, _)| passed)
    {
        behaviour = Behaviour::Frozen;
    }
    let closing = match view.funding {
        Some(funding) => closing_side(session, funding, node, peer).await?,
        None => None,
    };
    let live = info.as_ref().is_some_and(|c| {
        matches!(
            c.state,
            ChannelState::ChannelReady | ChannelState::ShuttingDown(_)
        )
    });
    let resolution = match closing {
        _ if view.numbers.is_none() => Resolution::ClosedBefore,
        // A resumed ShuttingDown channel finishing its cooperative close: live until it closed.
        Some(None) if behaviour == Behaviour::Resumed => Resolution::Resumed,
        Some(None) => Resolution::ClosedBy(Side::Peer),
        Some(Some(side)) => Resolution::ClosedBy(side),
        None if live => Resolution::Resumed,
        None if options.judge_closes_held && behaviour == Behaviour::Held => {
            Resolution::JudgeClosed
        }
        None => Resolution::Frozen,
    };
    let resolved_after_ms = match resolution {
        Resolution::Resumed => node_audit
            .filter(|(passed, _)| *passed)
            .and_then(|(_, at)| since_connected(session.events(node).ok()?, peer, at, session)),
        Resolution::ClosedBy(side) => {
            let (closer, other) = match side {
                Side::Node => (node, peer),
                Side::Peer => (peer, node),
            };
            // The broadcast of the very transaction that spent the funding (not a later claim).
            let closing = match view.funding {
                Some(funding) => settle(&session.transactions().await?, funding).closing,
                None => None,
            };
            let events = session.events(closer)?;
            events
                .iter()
                .find_map(|e| match &e.kind {
                    EventKind::TxBroadcast {
                        txid,
                        accepted: true,
                        ..
                    } if closing.as_ref().is_some_and(|(t, _)| t == txid) => Some(e.at_ms),
                    _ => None,
                })
                .and_then(|at| since_connected(events, other, at, session))
        }
        _ => None,
    };
    let waiting = if resolution == Resolution::Frozen {
        waiting_for(session, node, peer, id, node_audit, peer_audit, ends).await?
    } else {
        String::new()
    };
    Ok(Seen {
        behaviour,
        resolution,
        resolved_after_ms,
        waiting,
    })
}

/// Milliseconds from the last connection to `other` (before `at`) in `events` to `at`.
fn since_connected(
    events: &[NodeEvent],
    other: &str,
    at: u64,
    session: &Session<'_>,
) -> Option<u64> {
    let other = session.pubkey(other).ok()?;
    events
        .iter()
        .rev()
        .filter(|e| e.at_ms <= at)
        .find_map(|e| match &e.kind {
            EventKind::PeerConnected { peer, .. } if *peer == other => Some(at - e.at_ms),
            _ => None,
        })
}

/// Who broadcast the transaction that spent the funding: `Some(Some(side))` for a commitment
/// of that side's, `Some(None)` for a cooperative close, `None` while unspent.
async fn closing_side(
    session: &Session<'_>,
    funding: OutPoint,
    node: &str,
    peer: &str,
) -> Result<Option<Option<Side>>, HarnessError> {
    let txs = session.transactions().await?;
    let Some((txid, _)) = settle(&txs, funding).closing else {
        return Ok(None);
    };
    let holder = txs
        .iter()
        .find(|t| t.txid == txid)
        .and_then(|t| match &t.tx.kind {
            TxKind::Commitment { holder, .. } => Some(*holder),
            _ => None,
        });
    Ok(Some(match holder {
        Some(key) if key == session.pubkey(node)? => Some(Side::Node),
        Some(key) if key == session.pubkey(peer)? => Some(Side::Peer),
        _ => None,
    }))
}

/// For a frozen channel, what each end is waiting for, in the words of its state and audit.
async fn waiting_for(
    session: &Session<'_>,
    node: &str,
    peer: &str,
    id: dlp_chain::Hash32,
    node_audit: Option<(bool, u64)>,
    peer_audit: Option<(bool, u64)>,
    ends: Ends,
) -> Result<String, HarnessError> {
    let mut parts = Vec::new();
    let sides = [
        (node, peer, node_audit, ends.node_on_failure, None),
        (
            peer,
            node,
            peer_audit,
            ends.peer_on_failure,
            Some(ends.peer_on_request),
        ),
    ];
    for (who, other, audit, on_failure, on_request) in sides {
        let state = session
            .list_channels(who)
            .await?
            .into_iter()
            .find(|c| c.channel_id == id)
            .map(|c| c.state);
        let what = match (state, audit) {
            (None, _) => "does not know the channel".to_string(),
            (Some(ChannelState::Stale), None) => {
                format!("Stale, never audited: waits for {other}'s ReestablishChannel")
            }
            (Some(ChannelState::Stale), Some((false, _))) => match on_failure {
                OnAuditFailure::Hold => "Stale, its audit failed: holds, waits for a person \
                                         (on_audit_failure = \"hold\")"
                    .to_string(),
                OnAuditFailure::RequestClose => format!(
                    "Stale, its audit failed: asked for a close that did not come \
                     (on_audit_failure = \"request_close\"; {other} ignored the request, or \
                     neither commitment is safe to broadcast)"
                ),
            },
            (Some(state), _) if on_request == Some(OnForceCloseRequest::Ignore) => {
                format!("{state}: ignores a request to close (on_force_close_request = \"ignore\")")
            }
            (Some(state), _) => format!("{state}: nobody asked it to close"),
        };
        parts.push(format!("{who}: {what}"));
    }
    Ok(parts.join("; "))
}

/// The time to funds unlocked: for a channel closed by a node, the blocks from the
/// reconnection to the last of its outputs in a wallet; for a resumed one, none.
pub(super) fn unlock_of(
    seen: &Seen,
    settled_at: Option<u64>,
    reconnected_at: u64,
) -> Option<Unlock> {
    let ms = seen.resolved_after_ms?;
    match seen.resolution {
        Resolution::Resumed => Some(Unlock { blocks: 0, ms }),
        Resolution::ClosedBy(_) => Some(Unlock {
            blocks: settled_at?.saturating_sub(reconnected_at),
            ms,
        }),
        _ => None,
    }
}

/// What settling a channel showed: the ledger's facts, and the height at which the last of its
/// outputs reached a wallet.
pub(super) struct Settled {
    pub(super) ledger: LedgerFacts,
    pub(super) settled_at: Option<u64>,
}

/// Follow the channel on the ledger until every output is in a wallet, and compare the takes
/// with what the peer's records promised. The judge closes it only to probe a resumed channel
/// (the restored node force-closes: a revoked state is punished) or, with the named option, a
/// held one (the peer force-closes); a channel the nodes closed is followed as they left it,
/// and a frozen one is not touched.
pub(super) async fn close_and_settle(
    session: &mut Session<'_>,
    node: &str,
    peer: &str,
    channel: &str,
    seen: &Seen,
    before: &PeerView,
) -> Result<Settled, HarnessError> {
    let funding = before.funding.ok_or_else(|| {
        HarnessError::node(peer, format!("lists no funding outpoint for {channel}"))
    })?;
    let (owed_node, owed_peer, pending) = (before.owed_node, before.owed_peer, before.pending_tlcs);
    let closed = |node: &str| {
        Step::ExpectState(ExpectState {
            node: node.to_string(),
            channel: channel.to_string(),
            state: "Closed".into(),
        })
    };
    match seen.resolution {
        // Nobody closed it: the ledger must not have moved either.
        Resolution::Frozen => {
            let mut facts = LedgerFacts::default();
            if let Some((txid, kind)) = settle(&session.transactions().await?, funding).closing {
                facts.shortfalls.push(format!(
                    "{channel} is frozen, yet a {kind} ({txid}) closed it on the ledger"
                ));
            }
            return Ok(Settled {
                ledger: facts,
                settled_at: None,
            });
        }
        // A node closed it: the other side sees the commitment (and, if it was revoked,
        // submits the penalty in the same step: list_channels answers only after that step).
        Resolution::ClosedBy(side) => {
            let other = match side {
                Side::Node => peer,
                Side::Peer => node,
            };
            if seen.behaviour != Behaviour::Forgotten {
                session
                    .act(closed(other), "the other side sees the commitment")
                    .await?;
            }
        }
        Resolution::Resumed | Resolution::JudgeClosed
            if settle(&session.transactions().await?, funding)
                .closing
                .is_none() =>
        {
            let who = if seen.resolution == Resolution::Resumed {
                node
            } else {
                peer
            };
            let close = Step::Shutdown(Shutdown {
                node: who.to_string(),
                channel: channel.to_string(),
                force: true,
                expect: ShutdownExpect::Ok,
            });
            let why = if who == node {
                "the judge closes the resumed channel to follow it on the ledger"
            } else {
                "the judge closes the held channel for the nodes (--judge-closes-held)"
            };
            session.act(close, why).await?;
            let other = if who == node { peer } else { node };
            session
                .act(closed(other), "the other side sees the commitment")
                .await?;
        }
        _ => {}
    }
    let settlement = session
        .follow_ledger(
            format!("channel {channel} settled on the ledger"),
            |txs, tip| {
                let s = settle(txs, funding);
                if s.is_final() && s.settled_at.is_some() {
                    return LedgerLook::Done(s);
                }
                if s.is_final() {
                    // Every output is spent, the last spends still in the mempool: one block
                    // puts them in (the time to unlock counts the block they are in).
                    return LedgerLook::Mine {
                        blocks: 1,
                        seen: "the last claims in the mempool".into(),
                    };
                }
                let seen = format!("unspent channel outputs {:?}", s.unsettled);
                if s.closing.is_some() && (s.spendable_at == u64::MAX || s.spendable_at >= tip) {
                    let blocks = if s.spendable_at == u64::MAX {
                        1
                    } else {
                        s.spendable_at - tip + 1
                    };
                    LedgerLook::Mine {
                        blocks: blocks.min(1_000),
                        seen,
                    }
                } else {
                    LedgerLook::Wait { seen }
                }
            },
        )
        .await?;
    let mut facts = LedgerFacts::default();
    let node_key = session.pubkey(node)?;
    for penalty in &settlement.penalties {
        // The punished commitment's holder broadcast a revoked state.
        if penalty.cheater == node_key {
            facts.restored_punished = Some(penalty.txid.to_string());
        } else {
            facts.peer_punished = Some(penalty.txid.to_string());
        }
    }
    let (node_wallet, peer_wallet) = (session.wallet_key(node)?, session.wallet_key(peer)?);
    let (got_node, got_peer) = (settlement.take(&node_wallet), settlement.take(&peer_wallet));
    let short = |who: &str, got: u64, owed: u64| {
        let lacking = if pending == 0 {
            got != owed
        } else {
            got < owed
        };
        lacking.then(|| format!("{who}: got {got} on the ledger, the peer's records say {owed}"))
    };
    facts.shortfalls.extend(short(node, got_node, owed_node));
    facts.shortfalls.extend(short(peer, got_peer, owed_peer));
    if got_node + got_peer != settlement.funding_amount {
        facts.shortfalls.push(format!(
            "of the channel's {}, {node} got {got_node} and {peer} {got_peer}: not all of it went \
             to the two of them",
            settlement.funding_amount
        ));
    }
    Ok(Settled {
        ledger: facts,
        settled_at: settlement.settled_at,
    })
}
