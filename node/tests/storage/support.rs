//! Shared helpers: scratch nodes, directory fingerprints, and a spawned `dlp-node` process
//! whose readiness is awaited on its own stdout (never a sleep).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dlp_node::backup::{BackupInfo, create_backup};
use dlp_node::channel_record::{ChannelId, ChannelRecord, ChannelState};
use dlp_node::keys::NodeKeys;
use dlp_node::layout::BaseDir;
use dlp_node::store::{Backend, Store, open_store};

/// Deadline for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A node base directory with keys and an open store, in a temp dir that lives as long as it.
pub struct ScratchNode {
    pub dir: tempfile::TempDir,
    pub base: BaseDir,
    pub keys: NodeKeys,
    pub backend: Backend,
    pub store: Option<Arc<dyn Store>>,
}

impl ScratchNode {
    pub fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = BaseDir::new(dir.path().join("node"));
        let (keys, created) = NodeKeys::load_or_create(&base).expect("keys");
        assert!(created);
        let store = Arc::from(open_store(backend, &base.store_dir()).expect("open store"));
        Self {
            dir,
            base,
            keys,
            backend,
            store: Some(store),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_deref().expect("store is open")
    }

    /// A shared handle to the open store (for writer threads).
    pub fn shared_store(&self) -> Arc<dyn Store> {
        self.store.clone().expect("store is open")
    }

    pub fn close(&mut self) {
        self.store = None;
    }

    pub fn reopen(&mut self) {
        self.store = Some(Arc::from(
            open_store(self.backend, &self.base.store_dir()).expect("reopen"),
        ));
    }

    /// Hot backup into `<tmp>/<name>`.
    pub fn backup(&self, name: &str) -> BackupInfo {
        create_backup(
            self.store(),
            &self.base,
            &self.keys,
            &self.dir.path().join(name),
        )
        .expect("backup")
    }

    pub fn all_entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.store().prefix_entries(&[]).expect("scan")
    }
}

/// Restore `backup` into a brand-new base directory (no keys, no store: a fresh machine) and
/// return it as an open scratch node.
pub fn restore_into_fresh_base(backend: Backend, backup: &Path) -> ScratchNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = BaseDir::new(dir.path().join("node"));
    dlp_node::restore::restore(&base, backend, backup, &Default::default())
        .unwrap_or_else(|e| panic!("restore of {} failed: {e}", backup.display()));
    let keys = NodeKeys::load(&base).expect("restored keys");
    let store = Arc::from(open_store(backend, &base.store_dir()).expect("open restored store"));
    ScratchNode {
        dir,
        base,
        keys,
        backend,
        store: Some(store),
    }
}

/// One channel record.
pub fn channel(id: u8, state: ChannelState) -> ChannelRecord {
    ChannelRecord {
        channel_id: ChannelId([id; 32]),
        peer_pubkey: format!("02{}", hex::encode([id; 32])),
        state,
        local_commitment_number: u64::from(id) + 10,
        remote_commitment_number: u64::from(id) + 9,
        state_before_stale: None,
        data: None,
    }
}

/// Every regular file under `root` with its full contents, for byte-identity checks.
pub fn fingerprint(root: &Path) -> BTreeMap<String, Vec<u8>> {
    dlp_node::fsutil::list_files(root)
        .expect("list")
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(root.join(&f.relative)).expect("read");
            (f.relative, bytes)
        })
        .collect()
}

/// Names directly inside a directory, sorted.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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

/// Rewrite a backup's manifest so that its sizes and digests describe the files as they are
/// now: damage that happened *before* the backup was written (a damaged source store), which
/// digests cannot see and the deeper checks must.
pub fn redigest_manifest(backup: &Path) {
    let path = backup.join(dlp_node::backup::MANIFEST_FILE);
    let mut manifest = dlp_node::backup::read_manifest(backup).expect("manifest");
    for file in &mut manifest.files {
        let (size, digest) =
            dlp_node::fsutil::sha256_file(&backup.join(&file.path)).expect("digest");
        file.size = size;
        file.sha256 = Some(digest);
    }
    let json = serde_json::to_vec_pretty(&manifest).expect("json");
    std::fs::write(path, json).expect("write manifest");
}

/// Replace `path` (perhaps a hard link shared with a live store) by a private copy of itself,
/// so that damaging it damages only the backup.
pub fn unshare(path: &Path) {
    let bytes = std::fs::read(path).expect("read");
    std::fs::remove_file(path).expect("unlink");
    std::fs::write(path, &bytes).expect("rewrite");
}

/// Overwrite bytes of `path` at `offset`.
pub fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for damage");
    file.seek(SeekFrom::Start(offset)).expect("seek");
    file.write_all(bytes).expect("damage");
}
