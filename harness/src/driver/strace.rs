//! Killing a restore at one syscall, below the node: `strace -f` runs the restore command and
//! injects SIGKILL at the n-th call of one syscall (`--inject=<syscall>:signal=KILL:when=<n>`),
//! so the kill lands on the real process, every thread of it, at exactly that call, whatever
//! node binary it is. The process launcher runs it on the host; the container launcher inside the
//! container the restore runs in (the image carries strace when the host has it).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;

use super::{KillPoint, KilledRestore};
use crate::error::HarnessError;

/// strace on the `PATH`, or why there is none.
pub fn locate() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("strace"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| {
            "strace is not installed: crash_restore kills the restore through it (Debian: \
             apt-get install strace; ci/install-deps.sh installs it)"
                .to_string()
        })
}

/// strace's arguments before the command: follow every thread, print nothing, trace only the
/// syscall and kill the process at its `nth` call.
pub fn kill_args(at: &KillPoint) -> Vec<String> {
    vec![
        "-f".into(),
        "-qq".into(),
        "-o".into(),
        "/dev/null".into(),
        "-e".into(),
        format!("trace={}", at.syscall),
        "-e".into(),
        format!("inject={}:signal=KILL:when={}", at.syscall, at.nth),
    ]
}

/// How the restore under strace ended, from strace's exit (strace exits as its command did, and
/// dies of the command's signal): 0 finished, 1 refused by the node, SIGKILL (or 137 through a
/// shell or `docker exec`) killed at the point.
pub fn outcome(
    node: &str,
    status: Option<ExitStatus>,
    code: Option<i32>,
    stderr: &str,
) -> Result<KilledRestore, HarnessError> {
    if stderr.contains("ptrace") || stderr.contains("Operation not permitted") {
        return Err(HarnessError::node(
            node,
            format!("strace cannot trace the restore here: {}", stderr.trim()),
        ));
    }
    let signal = status.and_then(|s| s.signal());
    match (code, signal) {
        (_, Some(9)) | (Some(137), _) => Ok(KilledRestore::Killed),
        (Some(0), _) => Ok(KilledRestore::Finished),
        (Some(1), _) => Ok(KilledRestore::Refused {
            reason: stderr.trim().to_string(),
        }),
        _ => Err(HarnessError::node(
            node,
            format!(
                "the restore under strace ended oddly (exit {code:?}, signal {signal:?}): {}",
                stderr.trim()
            ),
        )),
    }
}
