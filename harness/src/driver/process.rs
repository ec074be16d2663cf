//! Nodes as `dlp-node` processes, the chain as `dlp-chain serve`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use async_trait::async_trait;
use dlp_chain::{ChainClient, RemoteChain};

use super::{
    Digests, Driver, DriverKind, KillPoint, KilledRestore, NodeBuild, NodeHandle, NodeSpec,
    RestoreOutcome,
};
use crate::error::HarnessError;

/// How long a process may take to print its ready line.
const READY: Duration = Duration::from_secs(30);

/// See the module docs of [`crate::driver`].
#[derive(Debug)]
pub struct ProcessDriver {
    node_bin: PathBuf,
    chain_bin: PathBuf,
    chain: Option<Guard>,
}

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
struct Guard {
    child: Option<Child>,
}

impl Guard {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct ProcessNode {
    guard: Guard,
    rpc: SocketAddr,
}

/// Send `signal` (`STOP`, `CONT`, `TERM`, `KILL`) to `pid` with kill(1) (no unsafe code here).
async fn signal(pid: u32, signal: &str) -> Result<(), HarnessError> {
    let status = tokio::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .await
        .map_err(|e| HarnessError::Setup(format!("cannot run kill -{signal} {pid}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(HarnessError::Setup(format!(
            "kill -{signal} {pid} failed ({status})"
        )))
    }
}

/// Find a binary: `$<ENV>` if set, else next to the running executable's target directory.
pub(super) fn find_binary(env: &str, name: &str) -> Result<PathBuf, HarnessError> {
    if let Ok(path) = std::env::var(env) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| HarnessError::Setup(e.to_string()))?;
    // target/<profile>/dlp-harness or target/<profile>/deps/scenarios-<hash>
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(HarnessError::Setup(format!(
        "cannot find the {name} binary near {}; build it (cargo build --workspace --all-targets) or set {env}",
        exe.display()
    )))
}

/// Spawn `cmd`, wait for a stdout line starting with `prefix`, return the guard and the rest of
/// that line. Output keeps flowing into `log` (stdout and stderr both).
fn spawn_ready(
    mut cmd: Command,
    prefix: &str,
    log: &Path,
    what: &str,
) -> Result<(Guard, String), HarnessError> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| HarnessError::io(log, e))?;
    let err_log = log_file.try_clone().map_err(|e| HarnessError::io(log, e))?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::from(err_log));
    let mut child = cmd
        .spawn()
        .map_err(|e| HarnessError::Setup(format!("cannot start {what}: {e}")))?;
    let stdout = child.stdout.take();
    let guard = Guard { child: Some(child) };
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix_owned = prefix.to_string();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut log_file = log_file;
        let Some(stdout) = stdout else { return };
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = writeln!(log_file, "{line}");
            if let Some(rest) = line.strip_prefix(&prefix_owned) {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    match rx.recv_timeout(READY) {
        Ok(rest) => Ok((guard, rest)),
        Err(RecvTimeoutError::Timeout) => Err(HarnessError::Setup(format!(
            "{what} did not print {prefix:?} within {READY:?}; see {}",
            log.display()
        ))),
        // Its stdout closed: it exited (a refused config or store), and its log says why.
        Err(RecvTimeoutError::Disconnected) => {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let last = lines[lines.len().saturating_sub(5)..].join("\n");
            Err(HarnessError::Setup(format!(
                "{what} exited before printing {prefix:?}; the last lines of {}:\n{last}",
                log.display()
            )))
        }
    }
}

impl ProcessDriver {
    /// Locate `dlp-node` and `dlp-chain` (`DLP_NODE_BIN`, `DLP_CHAIN_BIN`, or next to us).
    pub fn locate() -> Result<Self, HarnessError> {
        Ok(Self {
            node_bin: find_binary("DLP_NODE_BIN", "dlp-node")?,
            chain_bin: find_binary("DLP_CHAIN_BIN", "dlp-chain")?,
            chain: None,
        })
    }

    /// The `dlp-node` of the node's build.
    fn node_binary<'a>(&'a self, spec: &'a NodeSpec) -> &'a Path {
        match &spec.build {
            NodeBuild::Current => &self.node_bin,
            NodeBuild::Named(named) => &named.binaries.node,
        }
    }
}

#[async_trait]
impl Driver for ProcessDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Process
    }

    async fn start_chain(
        &mut self,
        run_dir: &Path,
    ) -> Result<(Arc<dyn ChainClient>, Option<String>), HarnessError> {
        let mut cmd = Command::new(&self.chain_bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        let (guard, addr) = spawn_ready(
            cmd,
            super::CHAIN_READY_LINE,
            &run_dir.join("chain.log"),
            "dlp-chain serve",
        )?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| HarnessError::Setup(format!("dlp-chain address {addr:?}: {e}")))?;
        self.chain = Some(guard);
        Ok((
            Arc::new(RemoteChain::new(addr)),
            Some(format!("http://{addr}")),
        ))
    }

    async fn create_node(&mut self, spec: &NodeSpec) -> Result<(), HarnessError> {
        super::dlp_node::create_home(spec, super::dlp_node::Placement::Loopback)
    }

    async fn start_node(&mut self, spec: &NodeSpec) -> Result<Box<dyn NodeHandle>, HarnessError> {
        let name = &spec.name;
        let mut cmd = Command::new(self.node_binary(spec));
        cmd.arg("-d").arg(&spec.home);
        let log = super::dlp_node::log_path(&spec.home);
        let (guard, rpc) = spawn_ready(
            cmd,
            dlp_node_api::READY_LINE_PREFIX,
            &log,
            &format!("dlp-node {name}"),
        )?;
        let rpc: SocketAddr = rpc
            .parse()
            .map_err(|e| HarnessError::node(name, format!("rpc address {rpc:?}: {e}")))?;
        Ok(Box::new(ProcessNode { guard, rpc }))
    }

    async fn restore(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
        digests: Digests,
    ) -> Result<RestoreOutcome, HarnessError> {
        let name = &spec.name;
        let mut cmd = tokio::process::Command::new(self.node_binary(spec));
        cmd.args(super::dlp_node::restore_args(
            spec.build.dialect(),
            &spec.home,
            backup,
            digests,
        )?);
        let output = cmd
            .output()
            .await
            .map_err(|e| HarnessError::node(name, format!("cannot run --restore: {e}")))?;
        restore_outcome(name, &output)
    }

    /// `strace -f -e inject=<syscall>:signal=KILL:when=<n>` around `dlp-node --restore`: the
    /// kill lands on every thread of the real restore (RocksDB's included) at exactly that call.
    async fn crash_restore(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
        at: &KillPoint,
    ) -> Result<KilledRestore, HarnessError> {
        let name = &spec.name;
        let strace = super::strace::locate().map_err(|e| HarnessError::node(name, e))?;
        let mut cmd = tokio::process::Command::new(strace);
        cmd.args(super::strace::kill_args(at))
            .arg(self.node_binary(spec))
            .args(super::dlp_node::restore_args(
                spec.build.dialect(),
                &spec.home,
                backup,
                Digests::Required,
            )?);
        let output = cmd
            .output()
            .await
            .map_err(|e| HarnessError::node(name, format!("cannot run strace: {e}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        super::strace::outcome(name, Some(output.status), output.status.code(), &stderr)
    }
}

/// What a finished `dlp-node --restore` said: exit 0 restored, exit 1 refused (its stderr says
/// why); anything else (a signal, a bad command line) is the launcher's failure.
fn restore_outcome(
    name: &str,
    output: &std::process::Output,
) -> Result<RestoreOutcome, HarnessError> {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    match output.status.code() {
        Some(0) => Ok(RestoreOutcome::Restored),
        Some(1) => Ok(RestoreOutcome::Refused { reason: stderr }),
        _ => Err(HarnessError::node(
            name,
            format!("--restore failed ({}): {stderr}", output.status),
        )),
    }
}

#[async_trait]
impl NodeHandle for ProcessNode {
    fn rpc_addr(&self) -> SocketAddr {
        self.rpc
    }

    /// SIGSTOP: every thread stops where it stands; the kernel keeps its sockets open (peers'
    /// writes fill its buffers, nothing is read or answered).
    async fn pause(&self) -> Result<(), HarnessError> {
        let pid = self
            .guard
            .pid()
            .ok_or_else(|| HarnessError::Setup("the dlp-node process is gone".into()))?;
        signal(pid, "STOP").await
    }

    /// SIGCONT: it goes on from where it stood.
    async fn resume(&self) -> Result<(), HarnessError> {
        let pid = self
            .guard
            .pid()
            .ok_or_else(|| HarnessError::Setup("the dlp-node process is gone".into()))?;
        signal(pid, "CONT").await
    }

    async fn stop(mut self: Box<Self>) -> Result<(), HarnessError> {
        let Some(pid) = self.guard.pid() else {
            return Ok(());
        };
        let _ = signal(pid, "TERM").await;
        let Some(mut child) = self.guard.child.take() else {
            return Ok(());
        };
        let waited = tokio::task::spawn_blocking(move || child.wait());
        match tokio::time::timeout(Duration::from_secs(30), waited).await {
            Ok(Ok(Ok(status))) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(HarnessError::Setup(format!(
                "dlp-node exited with {status:?} after SIGTERM"
            ))),
            Ok(Err(e)) => Err(HarnessError::Setup(e.to_string())),
            Err(_) => {
                // Never leave an orphan: SIGKILL (the waiting thread then reaps it).
                let _ = signal(pid, "KILL").await;
                Err(HarnessError::Setup(
                    "dlp-node did not exit within 30 s of SIGTERM; killed".into(),
                ))
            }
        }
    }

    async fn crash(self: Box<Self>) {
        // Dropping the guard sends SIGKILL and reaps the child (a paused one too: SIGKILL ends
        // a stopped process without thawing it).
        drop(self);
    }
}
