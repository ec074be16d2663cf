//! One backup point, judged: run its generated scenario up to the restore, take the peers'
//! views, finish it, observe each of the node's channels, close them and follow the ledger
//! until every output is in a wallet; then classify against the oracle.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use dlp_chain::OutPoint;
use dlp_node_api::{AuditPolicy, Backend, ChannelState, EventKind, MessageName, MutualStale};

use crate::capability::DriverKind;
use crate::error::HarnessError;
use crate::run::{LedgerLook, RunFailure, Session};
use crate::steps::channels::{ExpectState, Shutdown};
use crate::steps::{Scenario, ShutdownExpect, Step};

use super::{
    BackupPoint, Behaviour, ChannelResult, Expected, LedgerFacts, POINT_BACKUP, PointResult,
    Verdict, Workload, channel_names, classify, point_scenario, predict, settle, steps,
};
use crate::model::audit::{predict_forgotten, predict_mutual};
use crate::model::silence::effective_mode;

/// The peer's view of a channel before the restore.
#[derive(Debug, Clone)]
struct PeerView {
    numbers: Option<(u64, u64)>,
    funding: Option<OutPoint>,
    /// What the peer's records promise each side (taken before the restore, so nothing the
    /// restored node says can move the baseline).
    owed_peer: u64,
    owed_node: u64,
    pending_tlcs: usize,
}

pub(super) async fn run_point(
    workload: &Workload,
    backend: Backend,
    policy: AuditPolicy,
    point: BackupPoint,
    driver: DriverKind,
    seed: u64,
    dir: &Path,
) -> PointResult {
    let started = Instant::now();
    let mut result = PointResult {
        point: point.clone(),
        backend: backend.to_string(),
        policy: policy.to_string(),
        channels: Vec::new(),
        error: None,
        elapsed_ms: 0,
        run_dir: Some(dir.to_path_buf()),
    };
    match judge_point(workload, backend, policy, &point, driver, seed, dir).await {
        Ok(channels) => result.channels = channels,
        Err(e) => {
            result.error = Some(format!(
                "{e}\nreproduce: dlp-harness run {} --backend {backend} --driver {} --seed {seed}",
                dir.join("point.toml").display(),
                driver.name()
            ))
        }
    }
    result.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

async fn judge_point(
    workload: &Workload,
    backend: Backend,
    policy: AuditPolicy,
    point: &BackupPoint,
    driver: DriverKind,
    seed: u64,
    dir: &Path,
) -> Result<Vec<ChannelResult>, PointError> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    let path = dir.join("point.toml");
    let mut file = point_scenario(workload, policy, point);
    // The judge force-closes the restored channels, and closing a revoked one is punished on
    // the ledger: that is what it measures. So the point's scenario (and with it the one
    // invariant policy of its run) allows penalties.
    file.allow_penalties = true;
    let scenario = Scenario::generated(&path, &file, "")?;
    std::fs::write(&path, scenario.text()).map_err(|e| HarnessError::io(&path, e))?;
    // The point's own channel is deterministic; the node's other channels at that moment
    // depend on how their commitment dances interleaved. Try a few times for the combination
    // discovery saw, then judge whatever the backup holds.
    for attempt in 1..=ATTEMPTS {
        let run_dir = dir.join(if attempt == 1 {
            "run".to_string()
        } else {
            format!("run-{attempt}")
        });
        let mut session = Session::setup(&scenario, driver, backend, &run_dir, seed)
            .await
            .map_err(|failure| failure.error)?;
        let judged = judge_on(&mut session, workload, point, policy, attempt == ATTEMPTS).await;
        // A point that could not be judged keeps its run directory with a report saying why.
        let judged = match judged {
            Err(PointError::Judge(error)) => {
                let failure = RunFailure::Network {
                    during: "judging the point".into(),
                    error,
                };
                session.record_failure(&failure);
                match failure {
                    RunFailure::Network { error, .. } => Err(PointError::Judge(error)),
                    other => Err(PointError::Run(other)),
                }
            }
            Err(PointError::Run(failure)) => {
                session.record_failure(&failure);
                Err(PointError::Run(failure))
            }
            ok => ok,
        };
        session.teardown().await;
        match judged {
            Ok(Some(channels)) => return Ok(channels),
            Ok(None) => {
                let _ = std::fs::remove_dir_all(&run_dir);
            }
            Err(e) => return Err(e),
        }
    }
    Err(PointError::Judge(HarnessError::Setup(
        "no attempt judged the point".into(),
    )))
}

/// Reruns of a point whose other channels interleaved differently from discovery.
const ATTEMPTS: u32 = 3;

/// Why a point has no verdict: its run failed (a step, setup), or judging it did.
#[derive(Debug, thiserror::Error)]
enum PointError {
    #[error(transparent)]
    Run(#[from] RunFailure),
    #[error(transparent)]
    Judge(#[from] HarnessError),
}

async fn judge_on(
    session: &mut Session<'_>,
    workload: &Workload,
    point: &BackupPoint,
    policy: AuditPolicy,
    last_attempt: bool,
) -> Result<Option<Vec<ChannelResult>>, PointError> {
    let node = workload.node.as_str();
    let scenario = session.scenario();
    let restore_at = scenario
        .file
        .steps
        .iter()
        .position(|s| matches!(s.get_ref(), Step::Restore(_)))
        .ok_or_else(|| HarnessError::Setup("generated point scenario has no restore".into()))?;
    session.run_steps(0..restore_at).await?;
    let actual = check_fired_point(session, workload, point).await?;
    if actual != point.numbers && !last_attempt {
        return Ok(None);
    }
    let channels = workload.channels();
    let mut before = BTreeMap::new();
    for (channel, peer) in &channels {
        let info = session.channel_info(peer, channel).await?;
        let live = !matches!(info.state, ChannelState::Closed(_));
        before.insert(
            channel.clone(),
            PeerView {
                numbers: live
                    .then_some((info.local_commitment_number, info.remote_commitment_number)),
                funding: info.funding_outpoint,
                owed_peer: info.local_balance,
                owed_node: info.remote_balance,
                pending_tlcs: info.pending_tlcs.len(),
            },
        );
    }
    session
        .run_steps(restore_at..scenario.file.steps.len())
        .await?;
    let configured = scenario.file.nodes.get(node).and_then(|d| d.mutual_stale);
    let reveal = effective_mode(Some(policy), configured) == MutualStale::Reveal;
    if workload.restores_peers() && reveal {
        await_reveals(session, node, &channels).await?;
        session
            .wait_quiescent("waiting until no message is in flight after the reveals")
            .await?;
    }
    // Observe every channel before closing any (closing one mines blocks).
    let mut observed = BTreeMap::new();
    for (channel, peer) in &channels {
        observed.insert(
            channel.clone(),
            observe(session, node, peer, channel).await?,
        );
    }
    let mut out = Vec::new();
    for (channel, peer) in &channels {
        let view = &before[channel];
        let known = actual.get(channel).copied();
        let backup = known.unwrap_or((0, 0));
        let expected = match known {
            // The backup predates the channel: the peer closes it when asked, unless it was
            // restored too (then it is Stale and waits: nobody can close).
            None if view.numbers.is_some() && workload.restores_peers() => Expected {
                behaviour: Behaviour::Frozen,
                ..predict_forgotten()
            },
            None if view.numbers.is_some() => predict_forgotten(),
            _ if workload.restores_peers() => {
                predict_mutual(policy, reveal, backup, view.numbers).0
            }
            _ => predict(policy, backup, view.numbers),
        };
        let observed = observed[channel];
        let facts = close_and_settle(session, node, peer, channel, observed, view).await?;
        let (mut verdict, mut detail) = classify(expected, observed, &facts);
        if let Err(e) = session.check_invariants().await
            && !verdict.is_failure()
        {
            verdict = Verdict::Mismatch;
            detail = e.to_string();
        }
        out.push(ChannelResult {
            channel: channel.clone(),
            peer: peer.clone(),
            backup,
            peer_numbers: view.numbers,
            expected,
            observed,
            verdict,
            detail,
            ledger: facts,
        });
    }
    Ok(Some(out))
}

/// The backup was taken at the point found by discovery: the message event right before
/// `BackupWritten` is the point's message with the point's numbers. Anything else means the
/// rerun went differently (a nondeterministic workload) and the verdict would be meaningless.
/// Returns the numbers the backup holds on each of the node's channels.
async fn check_fired_point(
    session: &mut Session<'_>,
    workload: &Workload,
    point: &BackupPoint,
) -> Result<BTreeMap<String, (u64, u64)>, HarnessError> {
    let node = workload.node.as_str();
    session.fetch_events(Some(node)).await?;
    if !session.events(node)?.iter().any(
        |e| matches!(&e.kind, EventKind::BackupWritten { step: Some(s), .. } if *s == point.step),
    ) {
        return Err(HarnessError::Expectation(format!(
            "the rerun never reached {} (the workload finished without it): the workload is not \
             deterministic",
            point.label()
        )));
    }
    let (_, dir) = session.backup_dir(POINT_BACKUP).await?;
    let events = session.events(node)?;
    let at = events
        .iter()
        .position(
            |e| matches!(&e.kind, EventKind::BackupWritten { dir: d, .. } if Path::new(d) == dir),
        )
        .ok_or_else(|| {
            HarnessError::Expectation(format!("{node}: no BackupWritten for the point"))
        })?;
    let fired = events[..at]
        .iter()
        .rev()
        .find_map(|e| steps::message_step(&e.kind));
    let channel_id = session.channel_id(&point.channel)?;
    let want = (
        point.step.clone(),
        channel_id,
        point
            .numbers
            .get(&point.channel)
            .copied()
            .unwrap_or_default(),
    );
    let names = channel_names(session, workload)?;
    match fired {
        Some(got) if got == want => Ok(steps::numbers_in(&events[..at], &names, &BTreeMap::new())),
        other => Err(HarnessError::Expectation(format!(
            "the rerun backed up at {other:?}, discovery expected {} with numbers {:?}: the workload is \
             not deterministic (add wait_quiescent between steps that race)",
            point.label(),
            want.2
        ))),
    }
}

/// Both ends restored under `mutual_stale = "reveal"`: a Stale end reveals itself when its
/// timer runs out, an input quiescence cannot see. Wait until each end that is still Stale has
/// either audited the channel or sent its StaleNotice; what follows (numbers, audits) is
/// messages, which the caller's quiescence covers.
async fn await_reveals(
    session: &mut Session<'_>,
    node: &str,
    channels: &BTreeMap<String, String>,
) -> Result<(), HarnessError> {
    for (channel, peer) in channels {
        let id = session.channel_id(channel)?;
        for who in [node, peer.as_str()] {
            let listed = session.list_channels(who).await?;
            if !listed
                .iter()
                .any(|c| c.channel_id == id && c.state == ChannelState::Stale)
            {
                continue;
            }
            session
                .wait_event(who, &format!("{channel} audited or revealed"), |k| {
                    matches!(k, EventKind::Audit(audit) if audit.channel_id == id)
                        || matches!(k, EventKind::MessageSent {
                            msg_type: MessageName::StaleNotice,
                            channel_id: Some(c),
                            ..
                        } if *c == id)
                })
                .await?;
        }
    }
    Ok(())
}

/// What the restored node did with a channel in its current run: a channel it does not list
/// is forgotten (its backup predates it); one held while the peer is Stale too is frozen.
async fn observe(
    session: &mut Session<'_>,
    node: &str,
    peer: &str,
    channel: &str,
) -> Result<Behaviour, HarnessError> {
    let id = session.channel_id(channel)?;
    session.fetch_events(Some(node)).await?;
    let audited = session.events(node)?.iter().find_map(|e| match &e.kind {
        EventKind::Audit(audit) if audit.channel_id == id && audit.passed() => {
            Some(Behaviour::Resumed)
        }
        EventKind::Audit(audit) if audit.channel_id == id => Some(Behaviour::Held),
        _ => None,
    });
    let listed = session.list_channels(node).await?;
    let Some(info) = listed.into_iter().find(|c| c.channel_id == id) else {
        return Ok(Behaviour::Forgotten);
    };
    let behaviour = audited.unwrap_or(match info.state {
        ChannelState::Closed(_) => Behaviour::Closed,
        ChannelState::ChannelReady | ChannelState::ShuttingDown(_) => Behaviour::Resumed,
        _ => Behaviour::Held,
    });
    if behaviour == Behaviour::Held
        && session.channel_info(peer, channel).await?.state == ChannelState::Stale
    {
        return Ok(Behaviour::Frozen);
    }
    Ok(behaviour)
}

/// Close the channel (the restored node force-closes if it resumed, else the peer does),
/// follow the ledger until every output is in a wallet, and compare the takes with what the
/// peer's records promised.
async fn close_and_settle(
    session: &mut Session<'_>,
    node: &str,
    peer: &str,
    channel: &str,
    observed: Behaviour,
    before: &PeerView,
) -> Result<LedgerFacts, HarnessError> {
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
    match observed {
        // Both ends Stale: nobody may close it. The ledger must not have moved either.
        Behaviour::Frozen => {
            let mut facts = LedgerFacts::default();
            if let Some((txid, kind)) = settle(&session.transactions().await?, funding).closing {
                facts.shortfalls.push(format!(
                    "{channel} is Stale on both ends, yet a {kind} ({txid}) closed it on the ledger"
                ));
            }
            return Ok(facts);
        }
        // The peer force-closes on the restored node's request, on its own.
        Behaviour::Forgotten => {
            session
                .act(closed(peer), "the peer closes a channel the node forgot")
                .await?
        }
        _ => {}
    }
    if settle(&session.transactions().await?, funding)
        .closing
        .is_none()
    {
        let who = if observed == Behaviour::Resumed {
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
        session
            .act(
                close,
                "the judge closes the channel to follow it on the ledger",
            )
            .await?;
        let other = if who == node { peer } else { node };
        // The other side saw the commitment (and, if it was revoked, submitted the penalty in
        // the same step: list_channels answers only after that step).
        session
            .act(closed(other), "the other side sees the commitment")
            .await?;
    }
    let settlement = session
        .follow_ledger(
            format!("channel {channel} settled on the ledger"),
            |txs, tip| {
                let s = settle(txs, funding);
                if s.is_final() {
                    return LedgerLook::Done(s);
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
    Ok(facts)
}
