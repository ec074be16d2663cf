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
use testcontainers::core::wait::ExitWaitStrategy;
use testcontainers::core::{IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::dlp_node::{Placement, create_home};
use super::{Driver, DriverKind, NodeHandle, NodeSpec};
use crate::error::HarnessError;

/// Ports inside every node container.
const RPC_PORT: u16 = 8227;
const PEER_PORT: u16 = 8228;
/// Port of the chain inside its container.
const CHAIN_PORT: u16 = 8114;
/// Where a node's home is mounted.
const HOME: &str = "/data";
/// How long a container may take to say it is ready.
const READY: Duration = Duration::from_secs(30);
/// Lines of a node's log shown when it does not start.
const LOG_TAIL: usize = 20;

static KEEP: AtomicBool = AtomicBool::new(false);
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
    placements: Arc<Mutex<Placements>>,
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
            dlp_node::fsutil::unix_ms() % 1_000_000
        );
        Self {
            docker: None,
            image: None,
            run,
            chain: None,
            placements: Arc::default(),
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

    /// Apply the cut pairs to `name`'s network namespace (and, since its address may have
    /// changed, to every node it is cut from).
    async fn apply_cuts(&self, name: &str) -> Result<(), HarnessError> {
        let docker = self.docker()?.clone();
        let (targets, placements) = {
            let p = self.placements.lock().unwrap_or_else(|e| e.into_inner());
            let mut targets: BTreeSet<String> = BTreeSet::from([name.to_string()]);
            for (a, b) in &p.cut {
                if a == name {
                    targets.insert(b.clone());
                }
                if b == name {
                    targets.insert(a.clone());
                }
            }
            (targets, (p.nodes.clone(), p.cut.clone()))
        };
        let (nodes, cut) = placements;
        for target in targets {
            let Some((id, _)) = nodes.get(&target) else {
                continue; // not running: its next start applies the rules
            };
            let blocked: Vec<IpAddr> = cut
                .iter()
                .filter_map(|(a, b)| match (a == &target, b == &target) {
                    (true, _) => nodes.get(b).map(|(_, ip)| *ip),
                    (_, true) => nodes.get(a).map(|(_, ip)| *ip),
                    _ => None,
                })
                .collect();
            let (pid, _) = docker::pid_and_ip(&docker, id, &self.run).await?;
            docker::set_drop_rules(pid, &blocked).await?;
        }
        Ok(())
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
        docker::remove_leftovers(&docker).await;
        let image = image::ensure(&docker).await?;
        if image.built {
            tracing::info!(tag = %image.tag, ms = image.build_ms, "built the container image");
        }
        self.docker = Some(docker);
        self.image = Some(image.tag);
        let request = self
            .image()?
            .with_exposed_port(CHAIN_PORT.tcp())
            .with_wait_for(WaitFor::message_on_stdout("dlp-chain listening on"))
            .with_cmd([
                image::CHAIN_BIN.to_string(),
                "serve".into(),
                "--listen".into(),
                format!("0.0.0.0:{CHAIN_PORT}"),
                "--allow-non-loopback".into(),
            ])
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
            .with_wait_for(WaitFor::message_on_stdout("rpc listening on"))
            .with_cmd([image::NODE_BIN.to_string(), "-d".into(), HOME.into()])
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
        self.apply_cuts(name).await?;
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

    async fn restore(&mut self, spec: &NodeSpec, backup: &Path) -> Result<(), HarnessError> {
        let name = &spec.name;
        let inside = backup
            .strip_prefix(&spec.home)
            .map(|rel| Path::new(HOME).join(rel))
            .map_err(|_| {
                HarnessError::node(
                    name,
                    format!(
                        "backup {} is not in the node's home {}",
                        backup.display(),
                        spec.home.display()
                    ),
                )
            })?;
        let log = spec.home.join("restore.log");
        let request = self
            .image()?
            .with_wait_for(WaitFor::Exit(ExitWaitStrategy::new()))
            .with_cmd([
                image::NODE_BIN.to_string(),
                "-d".into(),
                HOME.into(),
                "--restore".into(),
                inside.to_string_lossy().into_owned(),
            ])
            .with_mount(Mount::bind_mount(
                spec.home.to_string_lossy().into_owned(),
                HOME,
            ))
            .with_labels(self.labels())
            .with_startup_timeout(READY)
            .with_log_consumer(log_to(log.clone()));
        let container = request
            .start()
            .await
            .map_err(|e| HarnessError::node(name, format!("restore container: {e}")))?;
        let code = container
            .exit_code()
            .await
            .map_err(|e| HarnessError::node(name, format!("restore container: {e}")))?;
        let _ = container.rm().await;
        match code {
            Some(0) => Ok(()),
            other => Err(HarnessError::node(
                name,
                format!("--restore failed (exit {other:?}):\n{}", tail(&log)),
            )),
        }
    }

    async fn partition(&mut self, a: &NodeSpec, b: &NodeSpec) -> Result<bool, HarnessError> {
        let pair = if a.name <= b.name {
            (a.name.clone(), b.name.clone())
        } else {
            (b.name.clone(), a.name.clone())
        };
        self.placements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cut
            .insert(pair);
        self.apply_cuts(&a.name).await?;
        Ok(true)
    }

    async fn heal(&mut self, a: &NodeSpec, b: &NodeSpec) -> Result<bool, HarnessError> {
        let pair = if a.name <= b.name {
            (a.name.clone(), b.name.clone())
        } else {
            (b.name.clone(), a.name.clone())
        };
        self.placements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cut
            .remove(&pair);
        self.apply_cuts(&a.name).await?;
        self.apply_cuts(&b.name).await?;
        Ok(true)
    }
}

impl Drop for ContainerDriver {
    fn drop(&mut self) {
        if keeping()
            && let Some(chain) = self.chain.take()
        {
            // Kept for inspection: never removed by this process.
            std::mem::forget(chain);
        }
    }
}

/// A node in its container.
struct ContainerNode {
    name: String,
    container: Option<ContainerAsync<GenericImage>>,
    docker: Docker,
    rpc: SocketAddr,
    ip: IpAddr,
    home: PathBuf,
    placements: Arc<Mutex<Placements>>,
    keep: bool,
}

impl ContainerNode {
    fn container(&self) -> Result<&ContainerAsync<GenericImage>, HarnessError> {
        self.container
            .as_ref()
            .ok_or_else(|| HarnessError::node(&self.name, "its container is gone"))
    }

    /// The node is gone: forget where it was, and drop (remove) or keep its container.
    fn retire(&mut self) {
        self.placements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .nodes
            .remove(&self.name);
        if let Some(container) = self.container.take()
            && self.keep
        {
            std::mem::forget(container);
        }
    }
}

#[async_trait]
impl NodeHandle for ContainerNode {
    fn rpc_addr(&self) -> SocketAddr {
        self.rpc
    }

    fn dial_address(&self, advertised: &[String]) -> Option<String> {
        // "/ip4/0.0.0.0/tcp/8228/p2p/<key>": peers dial its address on the run's network.
        let key = advertised.first()?.rsplit_once("/p2p/")?.1;
        let family = if self.ip.is_ipv4() { "ip4" } else { "ip6" };
        Some(format!("/{family}/{}/tcp/{PEER_PORT}/p2p/{key}", self.ip))
    }

    fn host_path(&self, reported: &str) -> PathBuf {
        match Path::new(reported).strip_prefix(HOME) {
            Ok(rest) => self.home.join(rest),
            Err(_) => PathBuf::from(reported),
        }
    }

    async fn pause(&self) -> Result<(), HarnessError> {
        self.container()?
            .pause()
            .await
            .map_err(|e| HarnessError::node(&self.name, format!("docker pause: {e}")))
    }

    async fn resume(&self) -> Result<(), HarnessError> {
        self.container()?
            .unpause()
            .await
            .map_err(|e| HarnessError::node(&self.name, format!("docker unpause: {e}")))
    }

    async fn stop(mut self: Box<Self>) -> Result<(), HarnessError> {
        let container = self.container()?;
        let stopped = container.stop_with_timeout(Some(30)).await;
        let code = container.exit_code().await.ok().flatten();
        self.retire();
        match (stopped, code) {
            (Ok(()), Some(0)) => Ok(()),
            (Ok(()), code) => Err(HarnessError::node(
                &self.name,
                format!("exited with {code:?} after SIGTERM"),
            )),
            (Err(e), _) => Err(HarnessError::node(&self.name, format!("docker stop: {e}"))),
        }
    }

    async fn crash(mut self: Box<Self>) {
        if let Ok(container) = self.container() {
            let id = container.id().to_string();
            if let Err(e) = docker::kill(&self.docker, &id).await {
                tracing::warn!(node = %self.name, error = %e, "SIGKILL failed");
            }
        }
        self.retire();
    }
}
