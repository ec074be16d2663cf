//! One backup point, judged: run its generated scenario up to the restore, take the peers'
//! views, finish it, give the nodes their bound to resolve each of the node's channels, observe
//! and settle them (`liveness.rs`); then classify against the oracle.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use dlp_node_api::{AuditPolicy, Backend, ChannelState, EventKind, MutualStale};

use crate::capability::DriverKind;
use crate::error::HarnessError;
use crate::run::{RunFailure, Session};
use crate::steps::{Scenario, Step};

use super::liveness::{
    JudgeOptions, PeerView, PointError, close_and_settle, ends_of, give_the_nodes_time, observe,
    unlock_of,
};
use super::{
    BackupPoint, Behaviour, ChannelResult, Expected, POINT_BACKUP, PointResult, Verdict, Workload,
    channel_names, classify, point_scenario, predict, steps,
};
use crate::model::audit::{predict_forgotten, predict_mutual};
use crate::model::resolve::{Resolution, Side, resolve_mutual, resolve_one_sided};
use crate::model::silence::{audited_or_revealed, effective_mode};

/// How one point is run: on which backend, policy and driver, with which seed and judge.
#[derive(Debug, Clone, Copy)]
pub struct PointRun {
    pub backend: Backend,
    pub policy: AuditPolicy,
    pub driver: DriverKind,
    pub seed: u64,
    pub judge: JudgeOptions,
}

pub(super) async fn run_point(
    workload: &Workload,
    how: PointRun,
    point: BackupPoint,
    dir: &Path,
) -> PointResult {
    let PointRun {
        backend,
        policy,
        driver,
        seed,
        ..
    } = how;
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
    match judge_point(workload, how, &point, dir).await {
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
    how: PointRun,
    point: &BackupPoint,
    dir: &Path,
) -> Result<Vec<ChannelResult>, PointError> {
    let PointRun {
        backend,
        policy,
        driver,
        seed,
        judge: options,
    } = how;
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
    // depend on how their commitment dances interleaved, which the pinned interleaving fixes
    // (see `interleaving.rs`). Should an input a pin does not order still move them, try a few
    // times for the combination discovery saw, then judge whatever the backup holds.
    for attempt in 1..=ATTEMPTS {
        let run_dir = dir.join(if attempt == 1 {
            "run".to_string()
        } else {
            format!("run-{attempt}")
        });
        let mut session = Session::setup(&scenario, driver, backend, &run_dir, seed)
            .await
            .map_err(|failure| failure.error)?;
        let judged = judge_on(
            &mut session,
            workload,
            point,
            policy,
            options,
            attempt == ATTEMPTS,
        )
        .await;
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

/// Reruns of a point whose other channels ended up otherwise than in discovery (with the
/// interleaving pinned, only through an input a pin does not order).
const ATTEMPTS: u32 = 3;

async fn judge_on(
    session: &mut Session<'_>,
    workload: &Workload,
    point: &BackupPoint,
    policy: AuditPolicy,
    options: JudgeOptions,
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
    let reconnected_at = session.height().await?;
    give_the_nodes_time(session, node, &channels, &before, options).await?;
    // Observe every channel before closing any (closing one mines blocks).
    let mut observed = BTreeMap::new();
    for (channel, peer) in &channels {
        let ends = ends_of(session, workload, policy, peer)?;
        let seen = observe(
            session,
            workload,
            peer,
            channel,
            &before[channel],
            options,
            ends,
        )
        .await?;
        observed.insert(channel.clone(), seen);
    }
    let mut out = Vec::new();
    for (channel, peer) in &channels {
        let view = &before[channel];
        let known = actual.get(channel).copied();
        let backup = known.unwrap_or((0, 0));
        let ends = ends_of(session, workload, policy, peer)?;
        let (expected, expected_resolution) = match known {
            // The backup predates the channel: the peer closes it when asked, unless it was
            // restored too (then it is Stale and waits: nobody can close).
            None if view.numbers.is_some() && workload.restores_peers() => (
                Expected {
                    behaviour: Behaviour::Frozen,
                    ..predict_forgotten()
                },
                Resolution::Frozen,
            ),
            None if view.numbers.is_some() => (
                predict_forgotten(),
                resolve_one_sided(Behaviour::Forgotten, ends),
            ),
            _ if workload.restores_peers() => {
                let expected = predict_mutual(policy, reveal, backup, view.numbers).0;
                let resolution = match view.numbers {
                    None => Resolution::ClosedBefore,
                    Some(_) if !reveal => Resolution::Frozen,
                    Some(peer_numbers) => resolve_mutual(backup, peer_numbers, ends),
                };
                (expected, resolution)
            }
            _ => {
                let expected = predict(policy, backup, view.numbers);
                (expected, resolve_one_sided(expected.behaviour, ends))
            }
        };
        // With the named option the judge closes what the nodes left held (not what neither
        // end audited: nobody may close that one).
        let expected_resolution = match expected_resolution {
            Resolution::Frozen
                if options.judge_closes_held && expected.behaviour == Behaviour::Held =>
            {
                Resolution::JudgeClosed
            }
            other => other,
        };
        let seen = observed[channel].clone();
        let facts = close_and_settle(session, node, peer, channel, &seen, view).await?;
        let (mut verdict, mut detail) = classify(
            expected,
            expected_resolution,
            seen.behaviour,
            seen.resolution,
            &facts.ledger,
        );
        if verdict == Verdict::Frozen {
            detail = seen.waiting.clone();
        }
        if let Err(e) = session.check_invariants().await
            && !verdict.is_failure()
        {
            verdict = Verdict::Mismatch;
            detail = e.to_string();
        }
        let unlock = unlock_of(&seen, facts.settled_at, reconnected_at);
        out.push(ChannelResult {
            channel: channel.clone(),
            peer: peer.clone(),
            backup,
            peer_numbers: view.numbers,
            expected,
            observed: seen.behaviour,
            expected_resolution,
            resolution: seen.resolution,
            closed_by: match seen.resolution {
                Resolution::ClosedBy(Side::Node) => Some(node.to_string()),
                Resolution::ClosedBy(Side::Peer) => Some(peer.clone()),
                _ => None,
            },
            unlock,
            verdict,
            detail,
            ledger: facts.ledger,
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
            "the rerun backed up at {other:?}, discovery expected {} with numbers {:?}: {}",
            point.label(),
            want.2,
            if workload.order.is_empty() {
                "the workload is not deterministic and no interleaving was pinned"
            } else {
                "an input the pinned interleaving does not order raced (a chain event, a \
                 connection, a timer: add wait_quiescent before the step that starts it), or a \
                 node's pin ended early (a restart ends it)"
            }
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
                .wait_event(
                    who,
                    &format!("{channel} audited or revealed"),
                    audited_or_revealed(id),
                )
                .await?;
        }
    }
    Ok(())
}
