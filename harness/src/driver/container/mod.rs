//! The container driver: every node, and the chain, in a container of its own on a Docker
//! network of the project's, with an image built on this machine (`image.rs`).
//!
//! - A container is a *host* (`pool.rs`): its first process, `dlp-container-init`, starts the
//!   node, the chain and offline restores in it when asked (`exec.rs`). A node keeps its container
//!   for the whole run, so a restart is a new process at the same address; containers are
//!   pooled across runs and harness processes, so a test rarely waits for one to be created.
//! - Peers dial a node at its address on the pool's network, and the harness reaches its RPC and
//!   the chain there too (the host routes to the project's own Docker network). Nodes listen on
//!   fixed ports (`fiber.allow_non_loopback`, `rpc.allow_non_loopback`).
//! - The directory that holds the run is mounted into every container at the same path, so a
//!   node's home, its backups and its log have one path on both sides; a restore runs
//!   `dlp-node --restore` in the node's own container while no node process runs there.
//! - `crash` is SIGKILL to the node's process; `pause`/`resume` are `docker pause`/`unpause`
//!   of its container (its sockets stay open: its peers see a silent node); a partition is a
//!   packet-drop rule in both nodes' network namespaces (`docker.rs`), which outlive the nodes'
//!   processes, so a node that restarts or redials cannot escape it.
//! - Private containers (a run's own, not pooled) carry labels (owner process, run) and are
//!   removed when the run ends (also on a panic) unless kept (`--keep` or
//!   `TESTCONTAINERS_COMMAND=keep`: every container of the run is then private and kept, its
//!   processes running); those of dead harness processes are removed when a new run starts.
//!   Node output goes to `node.log` in the node's home, the chain's to `chain.log` in the run
//!   directory, a restore's to `restore.log` in the node's home.

mod cuts;
mod docker;
mod exec;
mod image;
mod node;
mod pool;
mod procs;
mod restore;
mod space;

use cuts::pair;
use node::ContainerNode;
use pool::{Host, Pool};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dlp_chain::{ChainClient, RemoteChain};
use testcontainers::bollard::Docker;

use super::dlp_node::{Placement, create_home};
use super::{
    Digests, Driver, DriverKind, KillPoint, KilledRestore, NodeHandle, NodeSpec, RestoreOutcome,
};
use crate::error::HarnessError;

/// Ports inside every node container.
const RPC_PORT: u16 = 8227;
const PEER_PORT: u16 = 8228;
/// Port of the chain inside its container.
const CHAIN_PORT: u16 = 8114;
/// How long a node or the chain may take to say it is ready.
const READY: Duration = Duration::from_secs(30);
/// Lines of a node's log shown when it does not start.
const LOG_TAIL: usize = 20;

static KEEP: AtomicBool = AtomicBool::new(false);
/// The image tag of this process's binaries, once made sure of.
static IMAGE: tokio::sync::OnceCell<(String, bool)> = tokio::sync::OnceCell::const_new();
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Keep every container of this process for inspection instead of removing it (`--keep`).
pub fn keep_containers(keep: bool) {
    KEEP.store(keep, Ordering::Relaxed);
}

fn keeping() -> bool {
    KEEP.load(Ordering::Relaxed)
        || std::env::var("TESTCONTAINERS_COMMAND").is_ok_and(|v| v.eq_ignore_ascii_case("keep"))
}

/// See the module docs.
pub struct ContainerDriver {
    docker: Option<Docker>,
    pool: Option<Pool>,
    run: String,
    run_dir: PathBuf,
    /// The chain's container and process.
    chain: Option<(Host, exec::Exec)>,
    /// Each node's container, from its first start or restore to the end of the run.
    hosts: BTreeMap<String, Host>,
    /// Pairs of nodes cut apart (names in order: `cuts.rs`).
    cut: BTreeSet<(String, String)>,
    /// Whether the image carries strace (`crash_restore`).
    image_has_strace: bool,
    /// Size-limited backup directories mounted on the host (`space.rs`), unmounted on drop.
    limited: Vec<PathBuf>,
}

impl std::fmt::Debug for ContainerDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerDriver")
            .field("run", &self.run)
            .field("pool", &self.pool.as_ref().map(|p| p.network.clone()))
            .finish()
    }
}

impl Default for ContainerDriver {
    fn default() -> Self {
        Self::new()
    }
}

impl ContainerDriver {
    /// A driver for one run (nothing touches Docker until the chain starts).
    pub fn new() -> Self {
        let run = format!(
            "dlp-harness-{}-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed),
            dlp_node_api::unix_ms() % 1_000_000
        );
        Self {
            docker: None,
            pool: None,
            run,
            run_dir: PathBuf::new(),
            chain: None,
            hosts: BTreeMap::new(),
            cut: BTreeSet::new(),
            image_has_strace: false,
            limited: Vec::new(),
        }
    }

    fn docker(&self) -> Result<&Docker, HarnessError> {
        self.docker
            .as_ref()
            .ok_or_else(|| HarnessError::Setup("start the chain first".into()))
    }

    fn pool(&self) -> Result<&Pool, HarnessError> {
        self.pool
            .as_ref()
            .ok_or_else(|| HarnessError::Setup("start the chain first".into()))
    }

    fn labels(&self) -> Vec<(String, String)> {
        let mut labels = vec![
            (
                docker::OWNER_LABEL.to_string(),
                std::process::id().to_string(),
            ),
            (docker::RUN_LABEL.to_string(), self.run.clone()),
            (image::IMAGE_LABEL.to_string(), "node".to_string()),
        ];
        if keeping() {
            labels.push((docker::KEEP_LABEL.to_string(), "1".to_string()));
        }
        labels
    }

    /// A container for `what` of this run: from the pool, or a private one when the run keeps
    /// its containers or `private` (it must see the size-limited mounts made so far).
    async fn new_host(&self, what: &str, private: bool) -> Result<Host, HarnessError> {
        let pool = self.pool()?;
        if private || keeping() {
            let name = format!(
                "{}-{what}-{}",
                self.run,
                RUNS.fetch_add(1, Ordering::Relaxed)
            );
            pool.create_private(&name, self.labels(), self.limited.len())
                .await
        } else {
            pool.claim().await
        }
    }

    /// `spec`'s container, claimed (or created) at its first use in the run.
    async fn host_of(&mut self, spec: &NodeSpec) -> Result<&Host, HarnessError> {
        let name = &spec.name;
        if !self.hosts.contains_key(name) {
            let started = Instant::now();
            let host = self
                .new_host(name, spec.backups.space_limit.is_some())
                .await
                .map_err(|e| HarnessError::node(name, format!("no container: {e}")))?;
            tracing::debug!(node = %name, container = %host.name, ms = started.elapsed().as_millis(), "container claimed");
            self.hosts.insert(name.clone(), host);
            // A partition set before this node had a container: its rules, and those of the
            // nodes cut from it (they name its address).
            let affected = self.cut_with(name);
            self.apply_cuts(&affected, false).await?;
        }
        self.hosts
            .get(name)
            .ok_or_else(|| HarnessError::node(name, "no container"))
    }

    /// `path` as the containers see it: the same path, which must lie in the mounted directory.
    fn visible(&self, name: &str, path: &Path) -> Result<PathBuf, HarnessError> {
        let pool = self.pool()?;
        let canonical = std::fs::canonicalize(path).map_err(|e| HarnessError::io(path, e))?;
        if canonical.starts_with(pool.root()) {
            Ok(canonical)
        } else {
            Err(HarnessError::node(
                name,
                format!(
                    "{} is not under {}, the directory mounted into the run's containers",
                    path.display(),
                    pool.root().display()
                ),
            ))
        }
    }
}

/// The directory mounted into the run's containers: the system's temporary directory when the
/// run lies in it (every run there shares one pool), else the run directory's parent.
fn mount_root(run_dir: &Path) -> Result<PathBuf, HarnessError> {
    let run = std::fs::canonicalize(run_dir).map_err(|e| HarnessError::io(run_dir, e))?;
    let temp = std::fs::canonicalize(std::env::temp_dir()).ok();
    Ok(match temp {
        Some(temp) if run.starts_with(&temp) => temp,
        _ => run.parent().map(Path::to_path_buf).unwrap_or(run),
    })
}

#[async_trait]
impl Driver for ContainerDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Container
    }

    async fn start_chain(
        &mut self,
        run_dir: &Path,
    ) -> Result<(Arc<dyn ChainClient>, Option<String>), HarnessError> {
        let docker = docker::connect().await?;
        // Once per process: the leftovers of dead runs are gone after the first look, and the
        // binaries (so the image) cannot change under a running harness; a sweep or a `run`
        // of many scenarios starts many runs.
        let tag = IMAGE
            .get_or_try_init(|| async {
                docker::remove_leftovers(&docker).await;
                let image = image::ensure(&docker).await?;
                if image.built {
                    tracing::info!(tag = %image.tag, ms = image.build_ms, "built the container image");
                }
                Ok::<_, HarnessError>((image.tag, image.has_strace))
            })
            .await?
            .clone();
        self.pool = Some(Pool::new(docker.clone(), &tag.0, &mount_root(run_dir)?)?);
        self.docker = Some(docker);
        self.image_has_strace = tag.1;
        self.run_dir = run_dir.to_path_buf();
        let host = self.new_host("chain", false).await?;
        let log = run_dir.join("chain.log");
        let cmd = vec![
            image::CHAIN_BIN.to_string(),
            "serve".into(),
            "--listen".into(),
            format!("0.0.0.0:{CHAIN_PORT}"),
            "--allow-non-loopback".into(),
        ];
        let started = exec::spawn(
            &host.socket,
            host.pid,
            cmd,
            &log,
            super::CHAIN_READY_LINE,
            READY,
        )
        .await;
        let ip = host.ip;
        let process = match started {
            Ok(process) => process,
            Err(e) => {
                self.pool()?.release(host, keeping()).await;
                return Err(HarnessError::Setup(format!(
                    "the chain did not start: {e}\n{}",
                    exec::tail(&log, LOG_TAIL)
                )));
            }
        };
        self.chain = Some((host, process));
        let client = RemoteChain::new(SocketAddr::new(ip, CHAIN_PORT));
        Ok((Arc::new(client), Some(format!("http://{ip}:{CHAIN_PORT}"))))
    }

    async fn create_node(&mut self, spec: &NodeSpec) -> Result<(), HarnessError> {
        create_home(
            spec,
            Placement::PrivateNetwork {
                rpc_port: RPC_PORT,
                peer_port: PEER_PORT,
            },
        )?;
        if let Some(bytes) = spec.backups.space_limit {
            let dir = super::dlp_node::backups_dir(&spec.home);
            space::mount_limited(&dir, bytes)?;
            self.limited.push(dir);
        }
        Ok(())
    }

    async fn reconfigure_node(&mut self, spec: &NodeSpec) -> Result<(), HarnessError> {
        super::dlp_node::write_config(
            spec,
            Placement::PrivateNetwork {
                rpc_port: RPC_PORT,
                peer_port: PEER_PORT,
            },
        )
    }

    async fn start_node(&mut self, spec: &NodeSpec) -> Result<Box<dyn NodeHandle>, HarnessError> {
        let started = Instant::now();
        let name = &spec.name;
        let home = self.visible(name, &spec.home)?;
        let log = super::dlp_node::log_path(&spec.home);
        let docker = self.docker()?.clone();
        let host = self.host_of(spec).await?;
        let cmd = vec![
            image::node_bin(&spec.build),
            "-d".into(),
            home.to_string_lossy().into_owned(),
        ];
        let process = exec::spawn(
            &host.socket,
            host.pid,
            cmd,
            &log,
            dlp_node_api::READY_LINE_PREFIX.trim_end(),
            READY,
        )
        .await
        .map_err(|e| {
            HarnessError::node(
                name,
                format!(
                    "it did not start in its container: {e}\nlast lines of {}:\n{}",
                    log.display(),
                    exec::tail(&log, LOG_TAIL)
                ),
            )
        })?;
        tracing::debug!(node = %name, ms = started.elapsed().as_millis(), "node started");
        Ok(Box::new(ContainerNode {
            name: name.clone(),
            docker,
            container: host.id.clone(),
            init: host.pid,
            exec: process,
            ip: host.ip,
            rpc: SocketAddr::new(host.ip, RPC_PORT),
            paused: host.paused.clone(),
        }))
    }

    /// `dlp-node --restore` on the stopped node's home, run in the node's own container.
    async fn restore(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
        digests: Digests,
    ) -> Result<RestoreOutcome, HarnessError> {
        let command = self.restore_command(spec, backup, digests)?;
        let (code, output) = self.exec_logged(spec, backup, command).await?;
        match code {
            Some(0) => Ok(RestoreOutcome::Restored),
            Some(1) => Ok(RestoreOutcome::Refused {
                reason: output.trim().to_string(),
            }),
            other => Err(HarnessError::node(
                &spec.name,
                format!("--restore failed (exit {other:?}):\n{}", output.trim()),
            )),
        }
    }

    /// The restore of [`restore`](Self::restore) under the image's strace, in the same
    /// container: the init reports the kill as exit 137 (strace exits as its tracee did).
    async fn crash_restore(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
        at: &KillPoint,
    ) -> Result<KilledRestore, HarnessError> {
        if !self.image_has_strace {
            return Err(HarnessError::node(
                &spec.name,
                "the container image has no strace (the host had none when it was built): \
                 install strace (ci/install-deps.sh does) and run again to rebuild the image",
            ));
        }
        let mut command = vec![image::STRACE_BIN.to_string()];
        command.extend(super::strace::kill_args(at));
        command.extend(self.restore_command(spec, backup, Digests::Required)?);
        let (code, output) = self.exec_logged(spec, backup, command).await?;
        let code = code.map(|c| c as i32);
        super::strace::outcome(&spec.name, None, code, &output)
    }

    async fn partition(&mut self, a: &NodeSpec, b: &NodeSpec) -> Result<bool, HarnessError> {
        self.cut.insert(pair(&a.name, &b.name));
        self.apply_cuts(&[a.name.clone(), b.name.clone()], true)
            .await?;
        Ok(true)
    }

    async fn heal(&mut self, a: &NodeSpec, b: &NodeSpec) -> Result<bool, HarnessError> {
        self.cut.remove(&pair(&a.name, &b.name));
        self.apply_cuts(&[a.name.clone(), b.name.clone()], true)
            .await?;
        Ok(true)
    }
}

impl Drop for ContainerDriver {
    /// Every container of the run back to the pool (its processes killed) or removed; kept
    /// ones stay. A thread of its own, so this works whatever runtime (if any) is dropping us.
    fn drop(&mut self) {
        let mut hosts: Vec<Host> = std::mem::take(&mut self.hosts).into_values().collect();
        if let Some((host, _)) = self.chain.take() {
            hosts.push(host);
        }
        if let Some(pool) = self.pool.clone()
            && !hosts.is_empty()
        {
            let keep = keeping();
            let release = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async {
                    for host in hosts {
                        pool.release(host, keep).await;
                    }
                });
            });
            let _ = release.join();
        }
        for dir in &self.limited {
            space::unmount(dir);
        }
    }
}
