//! How an offline restore ends, as plain types every layer may use: the driver reports them,
//! the cluster judges them, the steps and the damage sweep expect them.

/// Whether a restore verifies the backup's content digests (always, but for the damage sweep's
/// proof that it finds what digests hide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Digests {
    #[default]
    Required,
    /// The backup's manifest was rewritten without digests (the dlp-node flavour's `strip_digests`) and
    /// the node is told to accept that (`--accept-undigested-backup`).
    Bypassed,
}

/// How an offline restore ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    Restored,
    /// The node refused (exit code 1, or the library's error): its message.
    Refused {
        reason: String,
    },
}

/// Where a restore is killed: at the `nth` call of the kernel's `syscall` (`rename`, `fsync`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillPoint {
    pub syscall: String,
    pub nth: u32,
}

impl std::fmt::Display for KillPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.syscall, self.nth)
    }
}

/// How a restore run under a kill point ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KilledRestore {
    /// Killed at the point.
    Killed,
    /// It made fewer such calls and finished: restored.
    Finished,
    /// It finished before the point by refusing the backup.
    Refused { reason: String },
}

/// Which store a node started on after a killed restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartedOn {
    OldStore,
    /// The complete restored one (the restore finished, or the start completed it).
    RestoredStore,
}
