//! The container driver: every node, and the chain, in a container of its own on a Docker
//! network made for the run, through testcontainers (async runner) with an image built on this
//! machine (`image.rs`).
//!
//! - Peers dial a node at its address on the run's network; the harness reaches its RPC through
//!   a port mapped to the host's loopback. Nodes listen on fixed ports inside their containers
//!   (`fiber.allow_non_loopback`, `rpc.allow_non_loopback`: the network is the run's own).
//! - A node's home is its directory in the run directory, bind-mounted at `/data`, so it
//!   survives its container: a restart is a new container on the same home, a restore runs
//!   `dlp-node --restore` in a one-shot container on it, and every file a node reports under
//!   `/data` is mapped back to the host.
//! - `crash` is SIGKILL; `pause`/`resume` are `docker pause`/`unpause` (the node's sockets stay
//!   open: its peers see a silent node); a partition is a packet-drop rule in both nodes' network
//!   namespaces (`docker.rs`), kept across restarts, so a node that redials cannot escape it.
//! - Containers carry labels (owner process, run); they are removed when their handle drops
//!   (also on a panic) unless kept (`--keep` or `TESTCONTAINERS_COMMAND=keep`), and those of
//!   dead harness processes are removed when a new run starts. Node output goes to `node.log` in
//!   the node's home, the chain's to `chain.log` in the run directory.

mod docker;
mod image;
mod node;
mod space;

use node::ContainerNode;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dlp_chain::{ChainClient, RemoteChain};
use testcontainers::bollard::Docker;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::{IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

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
/// Where a node's home is mounted in its own container.
const HOME: &str = "/data";
/// Where the run directory (every node's home) is mounted in the chain's container, in which
/// offline restores run.
const RUNS_MOUNT: &str = "/runs";
/// How long a container may take to say it is ready.
const READY: Duration = Duration::from_secs(30);
/// How long a restore in a container of its own may take.
const RESTORE_WITHIN: Duration = Duration::from_secs(120);
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

/// Where each node is now (for partitions), and which pairs are cut.
#[derive(Debug, Default)]
struct Placements {
    /// name -> (container id, address on the run's network)
    nodes: BTreeMap<String, (String, IpAddr)>,
    /// Pairs cut apart (names in order).
    cut: BTreeSet<(String, String)>,
}

/// See the module docs.
pub struct ContainerDriver {
    docker: Option<Docker>,
    image: Option<String>,
    run: String,
    chain: Option<ContainerAsync<GenericImage>>,
    run_dir: PathBuf,
    placements: Arc<Mutex<Placements>>,
    /// Whether the image carries strace (`crash_restore`).
    image_has_strace: bool,
    /// Size-limited backup directories mounted on the host (`space.rs`), unmounted on drop.
    limited: Vec<PathBuf>,
}

impl std::fmt::Debug for ContainerDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerDriver")
            .field("run", &self.run)
            .field("image", &self.image)
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
            image: None,
            run,
            chain: None,
            run_dir: PathBuf::new(),
            placements: Arc::default(),
            image_has_strace: false,
            limited: Vec::new(),
        }
    }

    fn docker(&self) -> Result<&Docker, HarnessError> {
        self.docker
            .as_ref()
            .ok_or_else(|| HarnessError::Setup("start the chain first".into()))
    }

    /// The run's image.
    fn image(&self) -> Result<GenericImage, HarnessError> {
        let tag = self
            .image
            .clone()
            .ok_or_else(|| HarnessError::Setup("start the chain first".into()))?;
        Ok(GenericImage::new(image::IMAGE_NAME.to_string(), tag))
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

    /// Set the drop rules in each of `targets`' network namespaces from the cut pairs and the
    /// nodes' current addresses. A target that is not running is skipped (its next start applies
    /// them); one with no cut pair gets its rules cleared only when `even_uncut` (after a heal).
    async fn apply_cuts(&self, targets: &[String], even_uncut: bool) -> Result<(), HarnessError> {
        let docker = self.docker()?.clone();
        let (nodes, cut) = {
            let p = self.placements.lock().unwrap_or_else(|e| e.into_inner());
            (p.nodes.clone(), p.cut.clone())
        };
        for target in targets {
            let Some((id, _)) = nodes.get(target) else {
                continue;
            };
            let peers: Vec<&String> = cut
                .iter()
                .filter_map(|(a, b)| {
                    if a == target {
                        Some(b)
                    } else if b == target {
                        Some(a)
                    } else {
                        None
                    }
                })
                .collect();
            if peers.is_empty() && !even_uncut {
                continue;
            }
            let blocked: Vec<IpAddr> = peers
                .iter()
                .filter_map(|peer| nodes.get(*peer).map(|(_, ip)| *ip))
                .collect();
            let (pid, _) = docker::pid_and_ip(&docker, id, &self.run).await?;
            docker::set_drop_rules(pid, &blocked).await?;
        }
        Ok(())
    }

    /// `name` and every node it is cut from (their rules name its address, which a new
    /// container may have changed).
    fn cut_with(&self, name: &str) -> Vec<String> {
        let p = self.placements.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = vec![name.to_string()];
        for (a, b) in &p.cut {
            if a == name {
                out.push(b.clone());
            } else if b == name {
                out.push(a.clone());
            }
        }
        out
    }
}

/// Appends a container's output to a log file.
fn log_to(path: PathBuf) -> impl Fn(&LogFrame) + Send + Sync + 'static {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()
        .map(Mutex::new);
    move |frame: &LogFrame| {
        if let Some(file) = &file {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = file.write_all(frame.bytes());
        }
    }
}

/// The last lines of a log file, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
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
        self.docker = Some(docker);
        self.image = Some(tag.0);
        self.image_has_strace = tag.1;
        self.run_dir = run_dir.to_path_buf();
        let request = self
            .image()?
            .with_exposed_port(CHAIN_PORT.tcp())
            .with_wait_for(WaitFor::message_on_stdout(super::CHAIN_READY_LINE))
            .with_cmd([
                image::CHAIN_BIN.to_string(),
                "serve".into(),
                "--listen".into(),
                format!("0.0.0.0:{CHAIN_PORT}"),
                "--allow-non-loopback".into(),
            ])
            .with_mount(Mount::bind_mount(
                run_dir.to_string_lossy().into_owned(),
                RUNS_MOUNT,
            ))
            .with_network(self.run.clone())
            .with_container_name(format!("{}-chain", self.run))
            .with_labels(self.labels())
            .with_startup_timeout(READY)
            .with_log_consumer(log_to(run_dir.join("chain.log")));
        let chain = request.start().await.map_err(|e| {
            HarnessError::Setup(format!(
                "the chain container did not start: {e}\n{}",
                tail(&run_dir.join("chain.log"))
            ))
        })?;
        let port = chain
            .get_host_port_ipv4(CHAIN_PORT.tcp())
            .await
            .map_err(|e| HarnessError::Setup(format!("chain port: {e}")))?;
        let (_, ip) = docker::pid_and_ip(self.docker()?, chain.id(), &self.run).await?;
        self.chain = Some(chain);
        let client = RemoteChain::new(SocketAddr::from(([127, 0, 0, 1], port)));
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
        let log = super::dlp_node::log_path(&spec.home);
        let home = spec.home.to_string_lossy().into_owned();
        let container_name = format!(
            "{}-{name}-{}",
            self.run,
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let request = self
            .image()?
            .with_exposed_port(RPC_PORT.tcp())
            .with_wait_for(WaitFor::message_on_stdout(
                dlp_node_api::READY_LINE_PREFIX.trim_end(),
            ))
            .with_cmd([image::node_bin(&spec.build), "-d".into(), HOME.into()])
            .with_mount(Mount::bind_mount(home, HOME))
            .with_network(self.run.clone())
            .with_container_name(container_name)
            .with_labels(self.labels())
            .with_startup_timeout(READY)
            .with_log_consumer(log_to(log.clone()));
        let container = request.start().await.map_err(|e| {
            HarnessError::node(
                name,
                format!(
                    "its container did not start: {e}\nlast lines of {}:\n{}",
                    log.display(),
                    tail(&log)
                ),
            )
        })?;
        let port = container
            .get_host_port_ipv4(RPC_PORT.tcp())
            .await
            .map_err(|e| HarnessError::node(name, format!("rpc port: {e}")))?;
        let docker = self.docker()?.clone();
        let (_, ip) = docker::pid_and_ip(&docker, container.id(), &self.run).await?;
        self.placements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .nodes
            .insert(name.clone(), (container.id().to_string(), ip));
        let affected = self.cut_with(name);
        self.apply_cuts(&affected, false).await?;
        tracing::debug!(node = %name, ms = started.elapsed().as_millis(), "container started");
        Ok(Box::new(ContainerNode {
            name: name.clone(),
            container: Some(container),
            docker,
            rpc: SocketAddr::from(([127, 0, 0, 1], port)),
            ip,
            home: spec.home.clone(),
            placements: self.placements.clone(),
            keep: keeping(),
        }))
    }

    /// `dlp-node --restore` on the stopped node's home, run in the chain's container (same
    /// image, the run directory mounted at `/runs`): an exec costs a fraction of a container.
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
    /// container: `docker exec` reports the kill as exit 137.
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
        self.placements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cut
            .insert(pair(&a.name, &b.name));
        self.apply_cuts(&[a.name.clone(), b.name.clone()], true)
            .await?;
        Ok(true)
    }

    async fn heal(&mut self, a: &NodeSpec, b: &NodeSpec) -> Result<bool, HarnessError> {
        self.placements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cut
            .remove(&pair(&a.name, &b.name));
        self.apply_cuts(&[a.name.clone(), b.name.clone()], true)
            .await?;
        Ok(true)
    }
}

impl ContainerDriver {
    /// A host path in the run directory, as the chain's container sees it.
    fn inside(&self, name: &str, host: &Path) -> Result<String, HarnessError> {
        host.strip_prefix(&self.run_dir)
            .map(|rel| {
                Path::new(RUNS_MOUNT)
                    .join(rel)
                    .to_string_lossy()
                    .into_owned()
            })
            .map_err(|_| {
                HarnessError::node(
                    name,
                    format!(
                        "{} is not in the run directory {}",
                        host.display(),
                        self.run_dir.display()
                    ),
                )
            })
    }

    /// `dlp-node --restore` of `spec`'s home from `backup`, paths as the chain's container sees
    /// them.
    fn restore_command(
        &self,
        spec: &NodeSpec,
        backup: &Path,
        digests: Digests,
    ) -> Result<Vec<String>, HarnessError> {
        let (home, backup) = (
            self.inside(&spec.name, &spec.home)?,
            self.inside(&spec.name, backup)?,
        );
        let mut command = vec![image::node_bin(&spec.build)];
        command.extend(
            super::dlp_node::restore_args(
                spec.build.dialect(),
                Path::new(&home),
                Path::new(&backup),
                digests,
            )?
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned()),
        );
        Ok(command)
    }

    /// Run a restore `command` of `spec`'s node from `backup` in the chain's container, or, when
    /// the home or the backup is on a size-limited mount the chain's container cannot see, in a
    /// one-shot container; its output is appended to the node's `restore.log`.
    async fn exec_logged(
        &self,
        spec: &NodeSpec,
        backup: &Path,
        command: Vec<String>,
    ) -> Result<(Option<i64>, String), HarnessError> {
        let on_limited = self
            .limited
            .iter()
            .any(|dir| backup.starts_with(dir) || dir.starts_with(&spec.home));
        let (code, output) = if on_limited {
            self.run_once(&spec.name, command).await?
        } else {
            let chain = self
                .chain
                .as_ref()
                .ok_or_else(|| HarnessError::Setup("start the chain first".into()))?;
            docker::exec(self.docker()?, chain.id(), command).await?
        };
        let log = spec.home.join("restore.log");
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            let _ = file.write_all(output.as_bytes());
        }
        Ok((code, output))
    }
}

impl ContainerDriver {
    /// Run `command` in a container of its own (the run directory at `/runs`, as in the
    /// chain's), wait for it to exit: its exit code and whole output.
    async fn run_once(
        &self,
        name: &str,
        command: Vec<String>,
    ) -> Result<(Option<i64>, String), HarnessError> {
        use testcontainers::core::wait::ExitWaitStrategy;
        let container_name = format!(
            "{}-{name}-restore-{}",
            self.run,
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let request = self
            .image()?
            .with_wait_for(WaitFor::exit(
                ExitWaitStrategy::new().with_poll_interval(Duration::from_millis(50)),
            ))
            .with_cmd(command)
            .with_mount(Mount::bind_mount(
                self.run_dir.to_string_lossy().into_owned(),
                RUNS_MOUNT,
            ))
            .with_network(self.run.clone())
            .with_container_name(container_name)
            .with_labels(self.labels())
            .with_startup_timeout(RESTORE_WITHIN);
        let container = request.start().await.map_err(|e| {
            HarnessError::node(name, format!("the restore's container did not run: {e}"))
        })?;
        let code = container
            .exit_code()
            .await
            .map_err(|e| HarnessError::node(name, format!("restore container: {e}")))?;
        let output = docker::logs(self.docker()?, container.id()).await?;
        Ok((code, output))
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Drop for ContainerDriver {
    fn drop(&mut self) {
        for dir in &self.limited {
            space::unmount(dir);
        }
        let Some(chain) = self.chain.take() else {
            return;
        };
        if keeping() {
            // Kept for inspection: never removed by this process.
            std::mem::forget(chain);
            return;
        }
        // Removes the chain's container (testcontainers, synchronously).
        drop(chain);
        // The run's network goes with its last container, but not always (a node whose
        // container failed to start can keep a reference to it): remove it explicitly. A
        // thread of its own, so this works whatever runtime (if any) is dropping us.
        let (docker, network) = (self.docker.clone(), self.run.clone());
        if let Some(docker) = docker {
            let removal = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async {
                    let _ = docker.remove_network(&network).await;
                });
            });
            let _ = removal.join();
        }
    }
}
