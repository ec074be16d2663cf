//! The interpreter: one step of a scenario as calls of the network's verbs and waits. It knows
//! nothing of files, lines or reports (the session names the failing step); it carries what one
//! step leaves for a later one (wallet marks, started payments) and the run's invariant policy.

use std::collections::BTreeMap;
use std::time::Duration;

use dlp_node_api::{
    Backend, EventKind, MessageName, PaymentStatus, ROCKSDB_BACKUP_DIR_NAME, SQLITE_FILE_NAME,
};

use super::file::{AuditExpect, AuditPeer, PayExpect, ScenarioFile, ShutdownExpect, Step};
use super::routes;
use crate::checks;
use crate::cluster::{Network, UNREACHABLE_WITHIN};
use crate::error::HarnessError;
use crate::model::silence::{Speaker, breaches, effective_mode};

/// What the invariants allow in a run. There is one policy per run, the scenario's
/// (`allow_penalties`): the `check_invariants` step and every check the session makes (at the
/// end of a run, after each explorer step, in a sweep point's judge) use it. The sweep's
/// points expect penalties, so it sets `allow_penalties` on the point's generated file.
pub(crate) fn invariant_policy(file: &ScenarioFile) -> checks::Policy {
    checks::Policy {
        allow_penalties: file.allow_penalties,
    }
}

/// Runs steps one after the other on one network.
#[derive(Debug)]
pub(crate) struct Interpreter {
    invariants: checks::Policy,
    /// Wallet balances at the last `mark_wallets`.
    marks: BTreeMap<String, u64>,
    /// Payments started by `send_payment`: name -> (payer, hash).
    payments: BTreeMap<String, (String, dlp_chain::Hash32)>,
}

impl Interpreter {
    pub(crate) fn new(file: &ScenarioFile) -> Self {
        Self {
            invariants: invariant_policy(file),
            marks: BTreeMap::new(),
            payments: BTreeMap::new(),
        }
    }

    /// The run's invariant policy.
    pub(crate) fn invariants(&self) -> checks::Policy {
        self.invariants
    }

    /// Run one step.
    pub(crate) async fn run(&mut self, net: &mut Network, step: &Step) -> Result<(), HarnessError> {
        run_step(net, step, self).await
    }
}

async fn run_step(
    net: &mut Network,
    step: &Step,
    run: &mut Interpreter,
) -> Result<(), HarnessError> {
    let marks = &mut run.marks;
    match step {
        Step::SendPayment {
            from,
            to,
            amount,
            name,
        } => {
            let hash = net.start_payment(from, to, *amount).await?;
            run.payments.insert(name.clone(), (from.clone(), hash));
            Ok(())
        }
        Step::ExpectPayment {
            name,
            status,
            route,
            attempts,
        } => {
            let (payer, hash) = run
                .payments
                .get(name)
                .cloned()
                .ok_or_else(|| HarnessError::Expectation(format!("no payment named {name}")))?;
            let outcome = net.payment_outcome(&payer, hash).await?;
            let (got, reason) = (outcome.status, outcome.reason.clone());
            let want = match status {
                PayExpect::Success => "Success",
                PayExpect::Failed => "Failed",
                PayExpect::Any => "Success or Failed",
            };
            let matched = match status {
                PayExpect::Success => got == PaymentStatus::Success,
                PayExpect::Failed => got == PaymentStatus::Failed,
                PayExpect::Any => true,
            };
            if matched {
                routes::judge(
                    &format!("payment {name}"),
                    &outcome,
                    route.as_deref(),
                    *attempts,
                )
                .map_err(HarnessError::Expectation)
            } else {
                Err(HarnessError::Expectation(format!(
                    "payment {name}: expected {want}, got {got}{}",
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                )))
            }
        }
        Step::Start { node } => net.start(node).await,
        Step::Stop { node } => net.stop(node).await,
        Step::Restart { node } => {
            net.stop(node).await?;
            net.start(node).await
        }
        Step::Crash { node } => net.crash(node).await,
        Step::Connect { from, to } => net.connect(from, to).await,
        Step::OpenChannel {
            name,
            from,
            to,
            amount,
        } => {
            // Dial only when they are not connected: a second dial would replace a live
            // connection (and reestablish every channel between them) for nothing.
            if !net.connected(from, to).await? {
                net.connect(from, to).await?;
            }
            net.open_channel(name, from, to, *amount).await.map(|_| ())
        }
        Step::Partition { a, b } => net.partition(a, b).await,
        Step::Heal { a, b } => net.heal(a, b).await,
        Step::Disconnect { from, to } => net.disconnect(from, to).await,
        Step::Pause { node } => net.pause(node).await,
        Step::Resume { node } => net.resume(node).await,
        Step::ExpectUnreachable { from, to } => {
            if net.try_dial(from, to, UNREACHABLE_WITHIN).await? {
                Err(HarnessError::Expectation(format!(
                    "{from} reached {to} across their partition (it dialled and a connection \
                     was made within {} s): the partition does not hold against a node that \
                     redials",
                    UNREACHABLE_WITHIN.as_secs()
                )))
            } else {
                Ok(())
            }
        }
        Step::Pay {
            from,
            to,
            amount,
            expect,
            reason_contains,
            route,
            attempts,
        } => {
            if *expect == PayExpect::Any {
                // Either outcome: start it (a refusal is an outcome too) and wait until no
                // message is in flight; a payment stuck behind a silent Stale peer stays so.
                net.pay_and_forget(from, to, *amount).await?;
                return net.wait_quiescent().await;
            }
            let outcome = net.pay(from, to, *amount).await?;
            let (status, reason) = (outcome.status, outcome.reason.clone());
            let ok = match expect {
                PayExpect::Success => status == PaymentStatus::Success,
                PayExpect::Any => true,
                PayExpect::Failed => {
                    status == PaymentStatus::Failed
                        && reason_contains.as_ref().is_none_or(|want| {
                            reason
                                .as_deref()
                                .unwrap_or_default()
                                .contains(want.as_str())
                        })
                }
            };
            if ok {
                let what = format!("payment {from} -> {to} of {amount}");
                routes::judge(&what, &outcome, route.as_deref(), *attempts)
                    .map_err(HarnessError::Expectation)
            } else {
                Err(HarnessError::Expectation(format!(
                    "payment {from} -> {to} of {amount}: expected {expect:?}{}, got {status}{}",
                    reason_contains
                        .as_ref()
                        .map(|r| format!(" mentioning {r:?}"))
                        .unwrap_or_default(),
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                )))
            }
        }
        Step::Backup { node, name } => net.backup(node, name).await.map(|_| ()),
        Step::BackupAt {
            node,
            step,
            channel,
            nth,
            name,
        } => {
            let channel_id = channel
                .as_ref()
                .map(|c| net.channel(c).map(|c| c.id))
                .transpose()?;
            let spec = dlp_node_api::StepSpec {
                step: step.clone(),
                channel_id,
                nth: *nth,
                action: dlp_node_api::StepAction::Backup,
            };
            net.backup_at(node, spec, name).await
        }
        Step::WaitQuiescent {} => net.wait_quiescent().await,
        Step::ExpectPenalty { channel } => net.wait_penalty(channel).await.map(|_| ()),
        Step::Restore { node, backup } => net.restore(node, backup).await,
        Step::Mine { blocks } => net.mine(*blocks).await.map(|_| ()),
        Step::Hold {
            node,
            step,
            channel,
            nth,
        } => net.hold(node, step, channel.as_deref(), *nth).await,
        Step::WaitHeld { node } => net.wait_held(node).await,
        Step::Release { node } => net.release(node).await,
        Step::Shutdown {
            node,
            channel,
            force,
            expect,
        } => match (net.shutdown(node, channel, *force).await?, expect) {
            (Ok(()), ShutdownExpect::Ok | ShutdownExpect::Any)
            | (Err(_), ShutdownExpect::Refused | ShutdownExpect::Any) => Ok(()),
            (Ok(()), ShutdownExpect::Refused) => Err(HarnessError::Expectation(format!(
                "{node} accepted shutdown of {channel} (force = {force}); expected a refusal"
            ))),
            (Err(refusal), ShutdownExpect::Ok) => Err(HarnessError::Expectation(format!(
                "{node} refused shutdown of {channel}: {refusal}"
            ))),
        },
        Step::ExpectState {
            node,
            channel,
            state,
        } => net.wait_state(node, channel, state).await,
        Step::ExpectAudit {
            node,
            channel,
            outcome,
            peer,
        } => {
            let id = net.channel(channel)?.id;
            let event = net
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
            if audit.passed() != (*outcome == AuditExpect::Passed) {
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
            match peer {
                Some(want)
                    if AuditPeer::of(local, remote, peer_local, peer_remote) != Some(*want) =>
                {
                    Err(HarnessError::Expectation(format!(
                        "{node}: expected the peer {want:?} of the backup in the audit of \
                         {channel}, got: {}",
                        event.kind
                    )))
                }
                _ => Ok(()),
            }
        }
        Step::ExpectSilence { node, channel } => {
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
        Step::WaitReestablished { node, channel } => {
            let id = net.channel(channel)?.id;
            net.wait_event(
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
        Step::ExpectBalance {
            node,
            channel,
            local,
        } => net.wait_balance(node, channel, *local).await,
        Step::MarkWallets {} => {
            marks.clear();
            let names: Vec<String> = net.node_names();
            for name in names {
                let balance = net.wallet_balance(&name).await?;
                marks.insert(name, balance);
            }
            Ok(())
        }
        Step::ExpectWalletChange { node, amount } => {
            let base = *marks.get(node).ok_or_else(|| {
                HarnessError::Expectation(
                    "expect_wallet_change needs an earlier mark_wallets".into(),
                )
            })?;
            net.wait_wallet_change(node, base, *amount).await
        }
        Step::CheckInvariants {} => checks::check_all(net, run.invariants).await,
        Step::WaitAutoBackup {
            node,
            name,
            within_ms,
        } => net
            .wait_auto_backup(node, name, within_ms.map(Duration::from_millis))
            .await
            .map(|_| ()),
        Step::ExpectBackupFiles {
            node,
            backup,
            files,
            store,
        } => expect_backup_files(net, node, backup, files, *store).await,
        Step::ExpectChannels {
            node,
            peer,
            count,
            state,
        } => {
            net.wait_channels(node, peer.as_deref(), *count, state.as_deref())
                .await
        }
        Step::ExpectNodeInfo { node } => net.check_node_info(node).await,
    }
}

/// The store a backup of the run's backend holds: `db/CURRENT` (a RocksDB checkpoint names
/// its manifest there) or `data.sqlite`.
pub(crate) fn backup_store_file(backend: Backend) -> String {
    match backend {
        Backend::Rocksdb => format!("{ROCKSDB_BACKUP_DIR_NAME}/CURRENT"),
        Backend::Sqlite => SQLITE_FILE_NAME.to_string(),
    }
}

/// `expect_backup_files`: every listed path is there (a path ending in `/` as a directory,
/// any other as a file); the failure names what is missing and lists what is there.
async fn expect_backup_files(
    net: &mut Network,
    node: &str,
    backup: &str,
    files: &[String],
    store: bool,
) -> Result<(), HarnessError> {
    let (owner, dir, entries) = net.backup_listing(backup).await?;
    if owner != node {
        return Err(HarnessError::Expectation(format!(
            "backup {backup:?} is {owner}'s, not {node}'s"
        )));
    }
    let store_file = store.then(|| backup_store_file(net.backend()));
    let missing: Vec<&str> = files
        .iter()
        .chain(&store_file)
        .map(String::as_str)
        .filter(|want| !entries.iter().any(|e| e == want))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(HarnessError::Expectation(format!(
        "backup {backup:?} of {node} ({}) lacks {}; it holds: {}",
        dir.display(),
        missing.join(", "),
        if entries.is_empty() {
            "nothing".to_string()
        } else {
            entries.join(", ")
        }
    )))
}
