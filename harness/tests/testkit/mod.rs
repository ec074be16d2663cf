//! What the harness's test binaries share (`integration`, `containers`): the `dlp-harness`
//! binary as a command, a child process run to its end within a deadline, and scenario files
//! written into a test's directory. Written once here so that every test that runs a process
//! fails, with what the process wrote, when the process hangs, instead of stalling the suite.

// Each binary uses a part of the kit; the parts one binary leaves unused are not dead.
#![allow(dead_code)]

pub mod killed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

/// How long one `dlp-harness` invocation of a test may take: generous (a CLI sweep of a few
/// points takes a minute on two busy cores), and under nextest's own limit (killed after five
/// minutes), so a hang fails with the command's own output rather than the runner's timeout.
pub const DEADLINE: Duration = Duration::from_secs(240);

/// How long a killed child's output may take to arrive.
const KILLED: Duration = Duration::from_secs(10);

/// The `dlp-harness` binary of this build, as a command to add arguments to.
pub fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dlp-harness"))
}

/// Write `text` to `dir/name` (a scenario file, usually) and return its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// A command run to its end within a deadline.
pub trait OutputWithin {
    /// Runs the command as [`Command::output`] does (stdout and stderr captured; stdin closed,
    /// so nothing waits on a terminal). A child still running after `deadline` is killed
    /// (SIGKILL) and the test fails showing the end of what it wrote.
    fn output_within(&mut self, deadline: Duration) -> Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self, deadline: Duration) -> Output {
        let what = format!("{:?}", self.get_program());
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(deadline) {
            Ok(output) => output.unwrap_or_else(|e| panic!("wait for {what}: {e}")),
            Err(RecvTimeoutError::Disconnected) => panic!("the thread waiting for {what} died"),
            Err(RecvTimeoutError::Timeout) => {
                // kill(1) (no unsafe code here): the child is not reaped before the waiting
                // thread sees it end, so its pid cannot belong to another process yet.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                // What it wrote, unless a process it started still holds its pipes open.
                let stderr = match rx.recv_timeout(KILLED) {
                    Ok(Ok(output)) => String::from_utf8_lossy(&output.stderr).into_owned(),
                    _ => "(its pipes are still open)".to_string(),
                };
                let lines: Vec<&str> = stderr.lines().collect();
                panic!(
                    "{what} did not finish within {deadline:?} (killed); the end of its stderr:\n{}",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                );
            }
        }
    }
}
