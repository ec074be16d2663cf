//! UNSAFE points as plain scenario files: for each distinct unsafe step of a workload under
//! `fiber`, a pair of files replaying exactly that backup point: `*_fiber.toml` asserts the
//! unsafe outcome (the audit passes; a force close from the restored node is punished on the
//! ledger) and `*_strict.toml` the safe one (the audit fails, the channel stays Stale, a force
//! close is refused, no penalty).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dlp_node_api::AuditPolicy;

use super::{ChannelResult, PointResult, SweepReport, Verdict, Workload, point_scenario};
use crate::error::HarnessError;
use crate::scenario::render;
use crate::steps::{self, AuditExpect, Scenario, ShutdownExpect, Step};

/// `sent:RevokeAndAck` -> `sent_revoke_and_ack`.
fn snake(step: &str) -> String {
    let mut out = String::new();
    for c in step.chars() {
        if c == ':' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Write the regression pairs for the report's UNSAFE points under `fiber` into `dir`
/// (one pair per distinct step and channel, the first such point, when the point's own
/// channel is the unsafe one). Returns the files written.
pub fn write_regressions(
    report: &SweepReport,
    workload: &Workload,
    dir: &Path,
) -> Result<Vec<PathBuf>, HarnessError> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    // The regression pins the interleaving its point ran.
    let workload = &workload.clone().pinned(report.order.clone());
    let mut done = BTreeSet::new();
    let mut written = Vec::new();
    let unsafe_points = report
        .results
        .iter()
        .filter(|r| r.policy == AuditPolicy::Fiber.to_string() && r.verdict() == Verdict::Unsafe);
    for result in unsafe_points {
        // The channel judged UNSAFE (in a multi-channel workload not always the point's own).
        // Only the point's own channel: another channel's numbers at the point depend on how
        // the two channels interleaved, so a file built on them would not replay reliably.
        let Some(unsafe_channel) = result
            .channels
            .iter()
            .find(|c| c.verdict == Verdict::Unsafe && c.channel == result.point.channel)
        else {
            continue;
        };
        let key = (
            result.point.step.clone(),
            result.point.channel.clone(),
            unsafe_channel.channel.clone(),
        );
        if !done.insert(key) {
            continue;
        }
        for policy in [AuditPolicy::Fiber, AuditPolicy::Strict] {
            let path = dir.join(format!(
                "{}_{}_{}_{policy}.toml",
                workload.name(),
                snake(&result.point.step),
                if unsafe_channel.channel == result.point.channel {
                    result.point.channel.clone()
                } else {
                    format!("{}_then_{}", result.point.channel, unsafe_channel.channel)
                }
            ));
            let text = regression_text(workload, result, unsafe_channel, policy, report.seed);
            // Never write a file that does not load.
            Scenario::parse(&path, &text)?;
            std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))?;
            written.push(path);
        }
    }
    Ok(written)
}

fn regression_text(
    workload: &Workload,
    result: &PointResult,
    judged: &ChannelResult,
    policy: AuditPolicy,
    seed: u64,
) -> String {
    let point = &result.point;
    let node = &workload.node;
    let channel = &judged.channel;
    let (backup, peer) = (judged.backup, judged.peer_numbers);
    let (pl, pr) = peer.unwrap_or_default();
    let revoked = judged.expected.revoked;
    let mut file = point_scenario(workload, policy, point);
    let spanned = |s: Step| toml::Spanned::new(0..0, s);
    file.description = format!(
        "Found by `dlp-harness sweep {}` (seed {}): {node} backed up at {} and restored after \
         the workload finished. Backup numbers on {channel}: L{} R{}, the peer's L{pl} R{pr}. {}",
        workload.scenario.path.display(),
        seed,
        point.label(),
        backup.0,
        backup.1,
        match policy {
            AuditPolicy::Fiber => format!(
                "Under `fiber` the audit passes (every number within one), although {}; a force \
                 close from {node} is punished.",
                if revoked {
                    "the peer already holds the revocation of the commitment the backup treats as current"
                } else {
                    "the peer moved to a commitment signed after the backup"
                }
            ),
            AuditPolicy::Strict => format!(
                "Under `strict` the audit fails and {node} asks the peer to close: the peer's \
                 latest commitment closes the channel and nothing revoked reaches the ledger \
                 (no penalty)."
            ),
        }
    );
    match policy {
        AuditPolicy::Fiber => {
            file.allow_penalties = revoked;
            file.steps
                .push(spanned(Step::ExpectAudit(steps::audit::ExpectAudit {
                    node: node.clone(),
                    channel: channel.clone(),
                    outcome: AuditExpect::Passed,
                    peer: None,
                })));
            if revoked {
                file.steps
                    .push(spanned(Step::Shutdown(steps::channels::Shutdown {
                        node: node.clone(),
                        channel: channel.clone(),
                        force: true,
                        expect: ShutdownExpect::Ok,
                    })));
                file.steps
                    .push(spanned(Step::ExpectPenalty(steps::ledger::ExpectPenalty {
                        channel: channel.clone(),
                    })));
            }
        }
        AuditPolicy::Strict => {
            file.steps
                .push(spanned(Step::ExpectAudit(steps::audit::ExpectAudit {
                    node: node.clone(),
                    channel: channel.clone(),
                    outcome: AuditExpect::Failed,
                    peer: None,
                })));
            // On the node's request the peer force-closes with its latest commitment; the node
            // sees it on the ledger.
            for who in [peer_of(workload, channel), node.clone()] {
                file.steps
                    .push(spanned(Step::ExpectState(steps::channels::ExpectState {
                        node: who,
                        channel: channel.clone(),
                        state: "Closed".into(),
                    })));
            }
            file.steps.push(spanned(Step::CheckInvariants(
                steps::network::CheckInvariants {},
            )));
        }
    }
    let comment = format!(
        "Regression from the backup-point sweep (see SWEEP.md).\n\
         Sequence: the workload's steps run with {node} backing itself up right after {}\n\
         (backup_at); after the workload {node} is restored from that backup and its peers dial it.\n\
         At that step {node}'s numbers on {channel} were L{} R{}; the peer ends at L{pl} R{pr}:{}",
        point.label(),
        backup.0,
        backup.1,
        if revoked {
            format!(
                " PL {pl} > R {}, so the peer\nholds {node}'s revocation of the commitment the backup treats as current.",
                backup.1
            )
        } else {
            format!(" PR {pr} > L {}.", backup.0)
        }
    );
    render(&file, &comment)
}

/// The node's peer on `channel`.
fn peer_of(workload: &Workload, channel: &str) -> String {
    workload
        .channels()
        .get(channel)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn step_names_become_file_names() {
        assert_eq!(super::snake("sent:RevokeAndAck"), "sent_revoke_and_ack");
        assert_eq!(
            super::snake("received:CommitmentSigned"),
            "received_commitment_signed"
        );
    }
}
