//! Processes the driver runs in its containers, started by the container's init
//! (`dlp-container-init`, over its Unix socket: see its `spawn.rs` for the protocol) rather than
//! by `docker exec`, which costs the daemon and runc ~0.1 s of CPU per process. The init forks
//! the command, so it is in the container's namespaces and cgroup (`docker pause` freezes it),
//! and relays its output; here it goes to a log file as it comes, a long-running process (a node,
//! the chain) is up when it prints its ready line, its PID on the host is what signals reach
//! (the driver runs as root, as the drop rules already need), and its end is the init's report
//! of its exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch};

use crate::error::HarnessError;

/// How long a new container's init may take to listen.
const LISTENING_WITHIN: Duration = Duration::from_secs(10);
/// Largest frame accepted from an init.
const MAX_FRAME: usize = 1 << 20;

/// What the init said of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    Pid(u32),
    Output(Vec<u8>),
    /// Exit code (128 + n for a signal, as a shell and `docker exec` say).
    Exit(Option<i64>),
    Refused(String),
}

fn parse_exit(text: &str) -> Option<i64> {
    match text.strip_prefix("signal ") {
        Some(signal) => signal.parse::<i64>().ok().map(|n| 128 + n),
        None => text.parse().ok(),
    }
}

async fn read_frame(stream: &mut UnixStream) -> Option<Frame> {
    let tag = stream.read_u8().await.ok()?;
    let len = stream.read_u32().await.ok()? as usize;
    if len > MAX_FRAME {
        return None;
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.ok()?;
    let text = || String::from_utf8_lossy(&payload).into_owned();
    Some(match tag {
        b'P' => Frame::Pid(text().parse().ok()?),
        b'O' => Frame::Output(payload),
        b'X' => Frame::Exit(parse_exit(&text())),
        b'E' => Frame::Refused(text()),
        _ => return None,
    })
}

/// Connect to a container's init (waiting for a new one to listen) and ask it to run `cmd`.
async fn ask(socket: &Path, cmd: &[String]) -> Result<UnixStream, String> {
    // An empty argument ends a request; a NUL would split one.
    if cmd.is_empty() || cmd.iter().any(|arg| arg.is_empty() || arg.contains('\0')) {
        return Err(format!("a command line the init cannot carry: {cmd:?}"));
    }
    let deadline = Instant::now() + LISTENING_WITHIN;
    let mut stream = loop {
        match UnixStream::connect(socket).await {
            Ok(stream) => break stream,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(format!("the container's init at {}: {e}", socket.display())),
        }
    };
    let mut request = Vec::new();
    for arg in cmd {
        request.extend_from_slice(arg.as_bytes());
        request.push(0);
    }
    request.push(0);
    stream
        .write_all(&request)
        .await
        .map_err(|e| format!("the container's init at {}: {e}", socket.display()))?;
    Ok(stream)
}

/// A process running in a container.
#[derive(Debug)]
pub(super) struct Exec {
    /// Its PID on the host.
    pub pid: u32,
    /// Its exit once the init reported it (`Some(None)`: it ended, the code unknown).
    ended: watch::Receiver<Option<Option<i64>>>,
}

/// Why a process did not come up.
#[derive(Debug)]
pub(super) enum NotReady {
    /// It ended before printing its ready line (exit code, if known).
    Exited(Option<i64>),
    /// Still running, silent, after the wait (it was killed).
    Silent(Duration),
    /// It could not be started.
    Failed(String),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Exited(code) => write!(f, "exited (code {code:?}) before it was ready"),
            NotReady::Silent(wait) => write!(f, "did not print that it was ready within {wait:?}"),
            NotReady::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// Run `cmd` in the container whose init listens on `socket` (and is `init` on the host),
/// appending its output to `log`, and wait until it prints a line starting with `ready` (at
/// most `within`).
pub(super) async fn spawn(
    socket: &Path,
    init: i64,
    cmd: Vec<String>,
    log: &Path,
    ready: &str,
    within: Duration,
) -> Result<Exec, NotReady> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| NotReady::Failed(format!("{}: {e}", log.display())))?;
    let mut stream = ask(socket, &cmd).await.map_err(NotReady::Failed)?;
    let inside = match read_frame(&mut stream).await {
        Some(Frame::Pid(pid)) => pid,
        Some(Frame::Refused(why)) => return Err(NotReady::Failed(why)),
        other => {
            return Err(NotReady::Failed(format!(
                "the container's init answered {other:?} instead of a PID"
            )));
        }
    };
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let (ended_tx, ended) = watch::channel(None);
    let prefix = ready.as_bytes().to_vec();
    tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        let mut line = Vec::new();
        let mut exit = None;
        while let Some(frame) = read_frame(&mut stream).await {
            match frame {
                Frame::Output(bytes) => {
                    let _ = file.write_all(&bytes);
                    if ready_tx.is_none() {
                        continue;
                    }
                    for byte in bytes {
                        if byte != b'\n' {
                            line.push(byte);
                            continue;
                        }
                        if line.starts_with(&prefix)
                            && let Some(tx) = ready_tx.take()
                        {
                            let _ = tx.send(());
                        }
                        line.clear();
                    }
                }
                Frame::Exit(code) => exit = code,
                Frame::Pid(_) | Frame::Refused(_) => {}
            }
        }
        let _ = ended_tx.send(Some(exit));
    });
    let Some(pid) = super::procs::host_pid(init, inside) else {
        // Gone already (a node that refuses its config exits within a millisecond): its exit.
        let gone = Exec { pid: 0, ended };
        return Err(match gone.exit(LISTENING_WITHIN).await {
            Some(code) => NotReady::Exited(code),
            None => NotReady::Failed(format!(
                "process {inside} of the container is not among its processes on the host"
            )),
        });
    };
    let exec = Exec { pid, ended };
    match tokio::time::timeout(within, ready_rx).await {
        Ok(Ok(())) => Ok(exec),
        Ok(Err(_)) => Err(NotReady::Exited(exec.exit(Duration::ZERO).await.flatten())),
        Err(_) => {
            super::procs::signal_in(init, &[pid], "KILL").await;
            Err(NotReady::Silent(within))
        }
    }
}

impl Exec {
    /// Wait until it exited, at most `within`: its exit (`None`: still running; `Some(None)`:
    /// ended, its code unknown).
    pub async fn exit(&self, within: Duration) -> Option<Option<i64>> {
        let mut ended = self.ended.clone();
        match tokio::time::timeout(within, ended.wait_for(Option::is_some)).await {
            Ok(Ok(exit)) => *exit,
            _ => None,
        }
    }
}

/// Run `cmd` to its end in the container whose init listens on `socket` (and is `init` on the
/// host): its exit code and its whole output (stdout and stderr, as they came). One still
/// running after `within` is killed, and that is an error.
pub(super) async fn run(
    socket: &Path,
    init: i64,
    cmd: Vec<String>,
    within: Duration,
) -> Result<(Option<i64>, String), HarnessError> {
    let failed = |e: String| HarnessError::Setup(format!("{}: {e}", cmd[0]));
    let mut stream = ask(socket, &cmd).await.map_err(failed)?;
    let (mut output, mut exit, mut inside) = (Vec::new(), None, None);
    let read_all = async {
        while let Some(frame) = read_frame(&mut stream).await {
            match frame {
                Frame::Output(bytes) => output.extend_from_slice(&bytes),
                Frame::Exit(code) => exit = code,
                Frame::Refused(why) => return Err(failed(why)),
                Frame::Pid(pid) => inside = Some(pid),
            }
        }
        Ok(())
    };
    let outcome = tokio::time::timeout(within, read_all).await;
    match outcome {
        Ok(result) => result?,
        Err(_) => {
            if let Some(pid) = inside.and_then(|inside| super::procs::host_pid(init, inside)) {
                super::procs::signal_in(init, &[pid], "KILL").await;
            }
            return Err(failed(format!(
                "still running after {within:?} (killed); its output so far:\n{}",
                String::from_utf8_lossy(&output)
            )));
        }
    }
    Ok((exit, String::from_utf8_lossy(&output).into_owned()))
}

/// The last `lines` lines of a log file, for a failure message.
pub(super) fn tail(path: &PathBuf, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_codes_and_signals_are_128_plus_their_number() {
        assert_eq!(parse_exit("0"), Some(0));
        assert_eq!(parse_exit("1"), Some(1));
        assert_eq!(parse_exit("signal 9"), Some(137));
        assert_eq!(parse_exit("unknown"), None);
    }
}
