//! What a step names: its verb as written, the nodes it is about and the channel it is about.
//! Validation (unknown names, liveness, capabilities) reads a step through these, so a new verb
//! or field is named in one place.

use super::file::Step;

impl Step {
    /// The verb, as written in the file.
    pub fn verb(&self) -> &'static str {
        match self {
            Step::Start { .. } => "start",
            Step::Stop { .. } => "stop",
            Step::Restart { .. } => "restart",
            Step::Crash { .. } => "crash",
            Step::Connect { .. } => "connect",
            Step::Partition { .. } => "partition",
            Step::Heal { .. } => "heal",
            Step::Disconnect { .. } => "disconnect",
            Step::Pause { .. } => "pause",
            Step::Resume { .. } => "resume",
            Step::ExpectUnreachable { .. } => "expect_unreachable",
            Step::OpenChannel { .. } => "open_channel",
            Step::Pay { .. } => "pay",
            Step::SendPayment { .. } => "send_payment",
            Step::ExpectPayment { .. } => "expect_payment",
            Step::Backup { .. } => "backup",
            Step::BackupAt { .. } => "backup_at",
            Step::Restore { .. } => "restore",
            Step::Mine { .. } => "mine",
            Step::Hold { .. } => "hold",
            Step::WaitHeld { .. } => "wait_held",
            Step::Release { .. } => "release",
            Step::Shutdown { .. } => "shutdown",
            Step::ExpectState { .. } => "expect_state",
            Step::ExpectAudit { .. } => "expect_audit",
            Step::ExpectSilence { .. } => "expect_silence",
            Step::WaitReestablished { .. } => "wait_reestablished",
            Step::ExpectBalance { .. } => "expect_balance",
            Step::MarkWallets {} => "mark_wallets",
            Step::ExpectWalletChange { .. } => "expect_wallet_change",
            Step::CheckInvariants {} => "check_invariants",
            Step::WaitQuiescent {} => "wait_quiescent",
            Step::ExpectPenalty { .. } => "expect_penalty",
            Step::WaitAutoBackup { .. } => "wait_auto_backup",
            Step::ExpectBackupFiles { .. } => "expect_backup_files",
            Step::ExpectChannels { .. } => "expect_channels",
            Step::ExpectNodeInfo { .. } => "expect_node_info",
        }
    }

    pub(crate) fn nodes(&self) -> Vec<&str> {
        match self {
            Step::Start { node }
            | Step::Pause { node }
            | Step::Resume { node }
            | Step::Stop { node }
            | Step::Restart { node }
            | Step::Crash { node }
            | Step::Backup { node, .. }
            | Step::BackupAt { node, .. }
            | Step::Restore { node, .. }
            | Step::Hold { node, .. }
            | Step::WaitHeld { node }
            | Step::Release { node }
            | Step::Shutdown { node, .. }
            | Step::ExpectState { node, .. }
            | Step::ExpectAudit { node, .. }
            | Step::ExpectSilence { node, .. }
            | Step::WaitReestablished { node, .. }
            | Step::ExpectBalance { node, .. }
            | Step::ExpectWalletChange { node, .. } => vec![node],
            Step::Partition { a, b } | Step::Heal { a, b } => vec![a, b],
            Step::Connect { from, to }
            | Step::Disconnect { from, to }
            | Step::ExpectUnreachable { from, to }
            | Step::OpenChannel { from, to, .. }
            | Step::SendPayment { from, to, .. } => vec![from, to],
            Step::Pay {
                from, to, route, ..
            } => [from, to]
                .into_iter()
                .chain(route.iter().flatten())
                .map(String::as_str)
                .collect(),
            Step::ExpectPayment { route, .. } => {
                route.iter().flatten().map(String::as_str).collect()
            }
            Step::Mine { .. }
            | Step::MarkWallets {}
            | Step::CheckInvariants {}
            | Step::WaitQuiescent {}
            | Step::ExpectPenalty { .. } => vec![],
            Step::WaitAutoBackup { node, .. }
            | Step::ExpectBackupFiles { node, .. }
            | Step::ExpectNodeInfo { node } => vec![node],
            Step::ExpectChannels { node, peer, .. } => std::iter::once(node)
                .chain(peer)
                .map(String::as_str)
                .collect(),
        }
    }

    pub(crate) fn channel(&self) -> Option<&str> {
        match self {
            Step::Shutdown { channel, .. }
            | Step::ExpectState { channel, .. }
            | Step::ExpectAudit { channel, .. }
            | Step::ExpectSilence { channel, .. }
            | Step::WaitReestablished { channel, .. }
            | Step::ExpectBalance { channel, .. }
            | Step::ExpectPenalty { channel } => Some(channel),
            Step::Hold { channel, .. } | Step::BackupAt { channel, .. } => channel.as_deref(),
            _ => None,
        }
    }
}
