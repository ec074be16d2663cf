//! Running the `dlp-node` binary: to completion with a deadline (`run_cli`), or as a node
//! process whose readiness is awaited on its own stdout (never a sleep).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dlp_node::layout::BaseDir;
use dlp_node_api::Backend;

use crate::scratch::DEADLINE;

/// strace on the PATH (`ci/install-deps.sh` installs it): the crash tests kill the node at a
/// chosen syscall through it.
pub fn strace() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("strace"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "strace is not installed: ci/install-deps.sh installs it (apt-get install strace); \
             the crash tests kill the node at a syscall through it"
        )
    })
}

/// A copy of a whole base directory at `to`.
pub fn copy_base(from: &BaseDir, to: &Path) -> BaseDir {
    let files = dlp_node::fsutil::list_files(from.root()).expect("list");
    dlp_node::fsutil::copy_files(from.root(), to, &files, &mut |_| Ok(())).expect("copy base");
    BaseDir::new(to)
}

/// Path of the built `dlp-node` binary.
pub fn node_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dlp-node"))
}

/// Write a config for `backend` listening on an OS-chosen loopback port.
pub fn write_config(base: &BaseDir, backend: Backend, modules: &[&str]) {
    std::fs::create_dir_all(base.root()).expect("mkdir base");
    let modules = modules
        .iter()
        .map(|m| format!("{m:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "[store]\nbackend = \"{backend}\"\n\
         [rpc]\nlistening_addr = \"127.0.0.1:0\"\nenabled_modules = [{modules}]\n\
         [fiber]\nlistening_addr = \"127.0.0.1:0\"\n"
    );
    std::fs::write(base.default_config(), text).expect("write config");
}

/// Output of a finished `dlp-node` invocation.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run `dlp-node` with `args` to completion (with a deadline) and capture its output.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut cmd = Command::new(node_binary());
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn dlp-node");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = wait_with_deadline(child, &format!("dlp-node {args:?}"));
    Finished {
        status,
        stdout: stdout.join().expect("stdout thread"),
        stderr: stderr.join().expect("stderr thread"),
    }
}

/// Wait for `child` to exit, at most [`DEADLINE`]; on timeout kill it and panic.
fn wait_with_deadline(mut child: Child, what: &str) -> ExitStatus {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(status) => status.expect("wait for dlp-node"),
        Err(_) => {
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -KILL {pid}")])
                .status();
            panic!("{what} did not exit within {DEADLINE:?}");
        }
    }
}

/// Run `dlp-node -d <base> --restore <backup>` with extra environment.
pub fn run_restore_cli(base: &BaseDir, backup: &Path, env: &[(&str, &str)]) -> Finished {
    let base = base.root().to_str().expect("utf8 base path");
    let backup = backup.to_str().expect("utf8 backup path");
    run_cli(&["-d", base, "--restore", backup], env)
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// A `dlp-node` process serving RPC. Killed on drop if still running.
pub struct NodeProcess {
    child: Option<Child>,
    pub rpc: SocketAddr,
    stdout: Receiver<String>,
    pub stdout_seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl NodeProcess {
    /// Start `dlp-node -d <base>` and wait until it prints its RPC address.
    pub fn start(base: &BaseDir) -> Self {
        let mut child = Command::new(node_binary())
            .arg("-d")
            .arg(base.root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dlp-node");
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().expect("stderr sink");
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut node = Self {
            child: Some(child),
            rpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            stdout: rx,
            stdout_seen: Vec::new(),
            stderr,
        };
        let line = node.wait_for_line(dlp_node_api::READY_LINE_PREFIX);
        node.rpc = dlp_node_api::ready_line_addr(&line)
            .expect("the ready line")
            .parse()
            .expect("rpc address");
        node
    }

    /// Wait for a stdout line starting with `prefix`; on timeout or exit, panic showing all
    /// output seen.
    pub fn wait_for_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    self.stdout_seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "dlp-node never printed {prefix:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout_seen.join("\n"),
                    self.stderr.lock().expect("stderr")
                ),
            }
        }
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.as_ref().expect("child").id().to_string();
        let status = Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -TERM {pid} failed");
        let child = self.take_child();
        let status = wait_with_deadline(child, "dlp-node after SIGTERM");
        if !status.success() {
            panic!(
                "dlp-node exited with {status} after SIGTERM\nstderr:\n{}",
                self.stderr()
            );
        }
        status
    }

    fn take_child(&mut self) -> Child {
        self.child.take().expect("child still owned")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
