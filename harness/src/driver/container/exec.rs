//! A long-running process (a node, the chain) that the driver runs in one of its containers with
//! `docker exec`: its output goes to a log file as it comes, its start is the line it prints
//! when ready, its PID on the host is what signals reach (the driver runs as root, as the drop
//! rules already need), and its end is the end of its output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::container::LogOutput;
use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};
use tokio::sync::{oneshot, watch};

/// How long the daemon may take to record an exec's PID once it printed, or its exit once its
/// output ended.
const EXIT_RECORDED_WITHIN: Duration = Duration::from_secs(5);

/// A process running in a container.
#[derive(Debug)]
pub(super) struct Exec {
    pub id: String,
    /// Its PID on the host.
    pub pid: u32,
    /// Becomes true when its output ended (it exited).
    ended: watch::Receiver<bool>,
}

/// Why a process did not come up.
#[derive(Debug)]
pub(super) enum NotReady {
    /// It ended before printing its ready line (exit code, if the daemon had it).
    Exited(Option<i64>),
    /// Still running, silent, after the wait.
    Silent(Duration),
    Docker(String),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Exited(code) => write!(f, "exited (code {code:?}) before it was ready"),
            NotReady::Silent(wait) => write!(f, "did not print that it was ready within {wait:?}"),
            NotReady::Docker(e) => write!(f, "{e}"),
        }
    }
}

/// Run `cmd` in container `container` (whose init is `init`), appending its stdout and stderr to `log`, and wait
/// until it prints a stdout line starting with `ready` (at most `within`).
pub(super) async fn spawn(
    docker: &Docker,
    container: &str,
    init: i64,
    cmd: Vec<String>,
    log: &Path,
    ready: &str,
    within: Duration,
) -> Result<Exec, NotReady> {
    let failed = |e: testcontainers::bollard::errors::Error| {
        NotReady::Docker(format!("docker exec in {container}: {e}"))
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| NotReady::Docker(format!("{}: {e}", log.display())))?;
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(failed)?;
    let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await.map_err(failed)?
    else {
        return Err(NotReady::Docker("docker exec started detached".into()));
    };
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let (ended_tx, ended) = watch::channel(false);
    let prefix = ready.as_bytes().to_vec();
    tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        let mut line = Vec::new();
        while let Some(Ok(chunk)) = output.next().await {
            let stdout = matches!(chunk, LogOutput::StdOut { .. });
            let bytes = chunk.into_bytes();
            let _ = file.write_all(&bytes);
            if !stdout || ready_tx.is_none() {
                continue;
            }
            for byte in bytes.iter() {
                if *byte != b'\n' {
                    line.push(*byte);
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
        let _ = ended_tx.send(true);
    });
    let exec = |pid| Exec {
        id: created.id.clone(),
        pid,
        ended: ended.clone(),
    };
    match tokio::time::timeout(within, ready_rx).await {
        Ok(Ok(())) => {
            // The daemon records the PID after the process started, and the process may have
            // printed before that: until then it reports 0.
            let deadline = Instant::now() + EXIT_RECORDED_WITHIN;
            loop {
                let info = docker.inspect_exec(&created.id).await.map_err(failed)?;
                if let Some(pid) = info.pid.and_then(|pid| u32::try_from(pid).ok())
                    && pid > 0
                {
                    return Ok(exec(pid));
                }
                if Instant::now() >= deadline {
                    return Err(NotReady::Docker(format!(
                        "docker exec in {container}: no PID recorded within {EXIT_RECORDED_WITHIN:?}"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(Err(_)) => Err(NotReady::Exited(exit_code(docker, &exec(0)).await)),
        Err(_) => {
            if let Ok(info) = docker.inspect_exec(&created.id).await
                && let Some(pid) = info.pid.and_then(|pid| u32::try_from(pid).ok())
            {
                super::pool::signal_in(init, &[pid], "KILL").await;
            }
            Err(NotReady::Silent(within))
        }
    }
}

impl Exec {
    /// Wait until it exited (its output ended), at most `within`: whether it did.
    pub async fn ended(&self, within: Duration) -> bool {
        let mut ended = self.ended.clone();
        tokio::time::timeout(within, ended.wait_for(|done| *done))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// The exit code of an exec whose output ended, once the daemon has recorded it.
pub(super) async fn exit_code(docker: &Docker, exec: &Exec) -> Option<i64> {
    let deadline = Instant::now() + EXIT_RECORDED_WITHIN;
    loop {
        let info = docker.inspect_exec(&exec.id).await.ok()?;
        if info.running != Some(true) || Instant::now() >= deadline {
            return info.exit_code;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The last `lines` lines of a log file, for a failure message.
pub(super) fn tail(path: &PathBuf, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
