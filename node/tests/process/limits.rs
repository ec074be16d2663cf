//! The `dlp-node` process at its edges: it exits 74 after a fail-stop, releasing its lock,
//! and warns loudly when its RPC listens beyond loopback.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use dlp_chain::jsonrpc::RpcClient;
use dlp_node::layout::BaseDir;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

/// A `dlp-node` process with its own environment; stdout and stderr lines arrive on channels.
struct Spawned {
    child: Option<Child>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

impl Spawned {
    fn start(base: &BaseDir, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dlp-node"));
        cmd.arg("-d")
            .arg(base.root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn dlp-node");
        let stdout = lines(child.stdout.take().expect("stdout"));
        let stderr = lines(child.stderr.take().expect("stderr"));
        Self {
            child: Some(child),
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Wait for a line of stdout (`err = false`) or stderr matching `pred`.
    fn wait_line(&mut self, err: bool, what: &str, pred: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|l| pred(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let rx = if err { &self.stderr } else { &self.stdout };
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    self.collect_rest();
                    panic!(
                        "dlp-node never printed {what}; output:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    fn rpc_addr(&mut self) -> SocketAddr {
        let line = self.wait_line(false, "its RPC address", |l| {
            dlp_node_api::ready_line_addr(l).is_some()
        });
        dlp_node_api::ready_line_addr(&line)
            .expect("the ready line")
            .parse()
            .expect("rpc address")
    }

    /// Whatever else is buffered on both pipes, without waiting.
    fn collect_rest(&mut self) {
        self.seen.extend(self.stdout.try_iter());
        self.seen.extend(self.stderr.try_iter());
    }

    /// Wait for the process to exit, at most [`DEADLINE`]; on timeout kill it and panic.
    fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("child");
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(status) => status.expect("wait for dlp-node"),
            Err(_) => {
                kill(pid, "KILL");
                self.collect_rest();
                panic!(
                    "dlp-node did not exit within {DEADLINE:?}; output:\n{}",
                    self.seen.join("\n")
                );
            }
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        kill(self.child.as_ref().expect("child").id(), "TERM");
        self.wait_exit()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {pid}")])
        .status();
}

fn lines(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn write_config(base: &BaseDir, rpc_addr: &str, extra_rpc: &str) {
    std::fs::create_dir_all(base.root()).expect("mkdir base");
    let text = format!(
        "[store]\nbackend = \"rocksdb\"\n\
         [rpc]\nlistening_addr = \"{rpc_addr}\"\n{extra_rpc}\
         enabled_modules = [\"info\", \"peer\", \"channel\", \"payment\", \"invoice\", \"admin\", \"dev\"]\n\
         [fiber]\nlistening_addr = \"127.0.0.1:0\"\n"
    );
    std::fs::write(base.default_config(), text).expect("write config");
}

#[test]
fn process_exits_with_code_74_after_a_fail_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = BaseDir::new(dir.path().join("node"));
    write_config(&base, "127.0.0.1:0", "");
    // The first state write fails, as on a full disk.
    let mut node = Spawned::start(&base, &[("DLP_NODE_FAILPOINTS", "core.persist=1")]);
    let rpc = RpcClient::new(node.rpc_addr()).with_timeout(DEADLINE);
    // A new invoice is the first thing the core persists: its write fails, so the answer must
    // be an error (or the connection closing), never the invoice.
    let answer = rpc.call::<Value>("new_invoice", Some(json!({ "amount": "0x64" })));
    assert!(
        answer.is_err(),
        "an invoice that was never stored was answered: {answer:?}"
    );
    let status = node.wait_exit();
    node.collect_rest();
    assert_eq!(
        status.code(),
        Some(i32::from(dlp_node::node::FAIL_STOP_EXIT_CODE)),
        "exit status {status}; output:\n{}",
        node.seen.join("\n")
    );
    assert_eq!(
        dlp_node::node::FAIL_STOP_EXIT_CODE,
        74,
        "the documented code"
    );
    assert!(
        node.seen
            .iter()
            .any(|l| l.contains("fail-stop") && l.contains("store write failed")),
        "no reason on stderr:\n{}",
        node.seen.join("\n")
    );
    // It released its lock (an OS file lock on the base's lock file): it can be taken again.
    let lock = std::fs::File::open(base.lock_file()).expect("lock file");
    lock.try_lock().expect("lock released");
}

#[test]
fn process_warns_loudly_when_rpc_listens_beyond_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = BaseDir::new(dir.path().join("node"));
    // Our own listener on every interface, port 0; nothing connects to it.
    write_config(&base, "0.0.0.0:0", "allow_non_loopback = true\n");
    let mut node = Spawned::start(&base, &[]);
    let addr = node.rpc_addr();
    assert!(addr.ip().is_unspecified(), "{addr}");
    let port = format!(":{}", addr.port());
    let line = node.wait_line(true, "a WARNING line on stderr", |l| {
        l.starts_with("WARNING: ") && l.contains("beyond loopback")
    });
    for part in ["0.0.0.0", port.as_str(), "DANGEROUS", "admin", "dev"] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    node.wait_line(true, "the WARN log line", |l| {
        l.contains("WARN") && !l.starts_with("WARNING: ") && l.contains("DANGEROUS")
    });
    let status = node.terminate();
    assert!(status.success(), "{status}");
}
