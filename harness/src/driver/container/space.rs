//! A size limit on a node's backup directory (`backup_space_kb`): a tmpfs of that size mounted
//! on the host at the node's `fiber/backups`, before its first container starts. Docker's bind
//! mounts are recursive, so the node's container (its home at `/data`) writes its backups onto
//! it and meets a real ENOSPC when one does not fit, while the harness reads and damages them
//! on the host as any other backup. The mount outlives the node's containers (a restart or a
//! restore keeps the earlier backups) and is unmounted when the driver is dropped.
//!
//! The chain's container, where restores run, was started before the mount and does not see it
//! (the host's mounts do not propagate into containers), so a restore of such a node runs in a
//! one-shot container of its own started after it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::HarnessError;

/// Mount a `bytes`-sized tmpfs at `dir` (created). Needs root (`mount`).
pub(super) fn mount_limited(dir: &Path, bytes: u64) -> Result<(), HarnessError> {
    std::fs::create_dir_all(dir).map_err(|e| HarnessError::io(dir, e))?;
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size={bytes},mode=0755"))
        .arg("tmpfs")
        .arg(dir)
        .output()
        .map_err(|e| HarnessError::Setup(format!("cannot run mount: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Setup(format!(
            "backup_space_kb: cannot mount a {bytes}-byte tmpfs at {} ({}); the container driver \
             limits a backup directory with a tmpfs mounted on the host, which needs root",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Unmount what [`mount_limited`] mounted (lazily: a file still open does not keep it).
pub(super) fn unmount(dir: &PathBuf) {
    let _ = Command::new("umount").arg("-l").arg(dir).output();
}
