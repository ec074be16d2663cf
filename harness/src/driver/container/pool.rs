//! The containers the driver runs processes in, and the pool that keeps them between runs.
//!
//! Creating, starting and removing a container costs the Docker daemon several times what a
//! `docker exec` does (measured here: `docker run` 0.5-0.7 s, `rm -f` 0.1-0.25 s, a network
//! 0.2 s each way, `exec` 0.1-0.2 s), and a scenario restarts nodes many times. So a container
//! here is a *host*: its first process is `dlp-container-init`, and the node, the chain and
//! offline restores are processes the init starts in it when the driver asks on its socket
//! (`exec.rs`; cheaper again than `docker exec`). A node keeps its
//! container for the whole run: a restart is a new process in it, at the same address, in the
//! same network namespace with the same drop rules.
//!
//! Hosts are pooled across runs and across harness processes (nextest runs every test in a
//! process of its own). A pooled container carries the label [`POOL_LABEL`] with the pool's key
//! (the image's tag and the directory mounted into it), sits on the pool's network, and has a
//! lock file and a socket in the pool's directory on the host, mounted into it at the same path.
//! A run claims
//! a container by taking an exclusive `flock` on that file (never blocking: a held one is
//! someone else's), and holds it until the run ends; the kernel lets go of it when the process
//! dies, however it dies. Before use, a claimed container is made clean: unpaused, every process
//! but its init killed (a run that died cannot clean up after itself), its drop rules cleared.
//! With no free container, the run creates one. An unclaimed container's init exits after
//! [`IDLE_SECS`], and the daemon removes it (auto-remove), so nothing outlives a test session
//! by more than that. The pool's network stays (one per mounted directory, whatever the image:
//! an idle network costs nothing).
//!
//! The host directory that holds the runs is mounted at the same path inside (`root`), so a
//! node's home, a backup and a log have one path on both sides. Mounts made on the host after a
//! container started are not seen inside it (the host's mounts are private): a node whose backup
//! directory is a size-limited tmpfs gets a *private* host created after that mount, removed when
//! the run ends, and so do `--keep` runs (kept, with their processes, for inspection).

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};

use super::procs::{processes_in, signal_in};
use super::{docker, image};
use crate::error::HarnessError;

/// Label of a pooled container: the pool's key.
pub(super) const POOL_LABEL: &str = "dlp-harness.pool";
/// Seconds an unclaimed pooled container waits for a claim before it ends.
const IDLE_SECS: u64 = 30;
/// How long the processes a dead run left in a container may take to go.
const LEFTOVERS_GONE_WITHIN: Duration = Duration::from_secs(10);

static CREATED: AtomicU64 = AtomicU64::new(0);

/// A container the driver runs processes in (see the module docs).
#[derive(Debug)]
pub(super) struct Host {
    pub id: String,
    pub name: String,
    /// Its address on the pool's network.
    pub ip: IpAddr,
    /// Its init's PID on the host (its network namespace is entered through it).
    pub pid: i64,
    /// Where its init listens for commands to start (`exec.rs`).
    pub socket: PathBuf,
    /// Whether `docker pause` holds it now.
    pub paused: Arc<AtomicBool>,
    /// How many of the run's size-limited mounts existed when it was created (it sees those).
    pub sees_mounts: usize,
    /// Held while this run owns a pooled container; `None` for a private one.
    lock: Option<File>,
}

impl Host {
    fn private(&self) -> bool {
        self.lock.is_none()
    }
}

/// The pool of one image and one mounted directory.
#[derive(Debug, Clone)]
pub(super) struct Pool {
    docker: Docker,
    /// `repository:tag`
    image: String,
    key: String,
    /// On the host, mounted at the same path: the lock files.
    lock_dir: PathBuf,
    /// On the host, mounted at the same path: where the runs are.
    root: PathBuf,
    pub network: String,
    /// The network's id, once made sure of (attached by id: a name can be ambiguous).
    network_id: Arc<tokio::sync::OnceCell<String>>,
}

impl Pool {
    /// The pool for `image_tag` whose containers see `root`.
    pub fn new(docker: Docker, image_tag: &str, root: &Path) -> Result<Self, HarnessError> {
        let short = |parts: &[&[u8]]| {
            let mut hash = Sha256::new();
            for part in parts {
                hash.update(part);
                hash.update([0]);
            }
            hex::encode(&hash.finalize()[..6])
        };
        let root_bytes = root.as_os_str().as_encoded_bytes();
        let key = short(&[image_tag.as_bytes(), root_bytes]);
        let lock_dir = std::env::temp_dir().join("dlp-harness-pool").join(&key);
        std::fs::create_dir_all(&lock_dir).map_err(|e| HarnessError::io(&lock_dir, e))?;
        Ok(Self {
            docker,
            image: format!("{}:{image_tag}", image::IMAGE_NAME),
            // One network per mounted directory, whatever the image: a build of new binaries
            // makes a new pool, not a new network (the daemon has room for a few dozen).
            network: format!("dlp-harness-pool-{}", short(&[root_bytes])),
            network_id: Arc::default(),
            key,
            lock_dir,
            root: root.to_path_buf(),
        })
    }

    /// The host directory mounted at the same path in every container of the pool.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A pooled container for this run: a free one made clean, or a new one.
    pub async fn claim(&self) -> Result<Host, HarnessError> {
        let filters: HashMap<&str, Vec<String>> =
            HashMap::from([("label", vec![format!("{POOL_LABEL}={}", self.key)])]);
        let listed = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(|e| HarnessError::Setup(format!("docker ps: {e}")))?;
        let mut names: Vec<(String, String)> = listed
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_string();
                Some((name, c.id?))
            })
            .collect();
        names.sort();
        for (name, id) in names {
            let Some(lock) = try_claim(&self.lock_path(&name)) else {
                continue;
            };
            match self.make_clean(&id, &name).await {
                Ok((pid, ip)) => {
                    return Ok(Host {
                        socket: self.socket_path(&name),
                        id,
                        name,
                        ip,
                        pid,
                        paused: Arc::default(),
                        sees_mounts: 0,
                        lock: Some(lock),
                    });
                }
                // Gone under us (its init just retired it), or broken: holding its lock, we
                // remove it (with its files) so nobody meets it again, and take the next one.
                Err(e) => {
                    tracing::info!(container = %name, error = %e, "removing a pooled container that cannot be cleaned");
                    self.remove(&id).await;
                    let _ = std::fs::remove_file(self.socket_path(&name));
                    let _ = std::fs::remove_file(self.lock_path(&name));
                    drop(lock);
                }
            }
        }
        self.create_pooled().await
    }

    fn lock_path(&self, name: &str) -> PathBuf {
        self.lock_dir.join(format!("{name}.lock"))
    }

    /// Where the init of container `name` listens: a short name, as a Unix socket's path is
    /// at most 107 bytes.
    fn socket_path(&self, name: &str) -> PathBuf {
        let hash = Sha256::digest(name.as_bytes());
        self.lock_dir
            .join(format!("{}.sock", hex::encode(&hash[..6])))
    }

    /// Make a claimed container as a fresh one: running, only its init in it, no drop rules;
    /// its init's PID and its address.
    async fn make_clean(&self, id: &str, name: &str) -> Result<(i64, IpAddr), HarnessError> {
        let (pid, ip, paused) = inspect(&self.docker, id, &self.network).await?;
        if paused {
            self.docker
                .unpause_container(id)
                .await
                .map_err(|e| HarnessError::Setup(format!("docker unpause {name}: {e}")))?;
        }
        let leftovers = processes_in(pid);
        if !leftovers.is_empty() {
            tracing::info!(container = %name, count = leftovers.len(), "killing what a dead run left running");
            signal_in(pid, &leftovers, "KILL").await;
            let deadline = Instant::now() + LEFTOVERS_GONE_WITHIN;
            loop {
                let left = processes_in(pid);
                if left.is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(HarnessError::Setup(format!(
                        "container {name}: processes {left:?} still running {LEFTOVERS_GONE_WITHIN:?} after SIGKILL"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        docker::set_drop_rules(pid, &[]).await?;
        Ok((pid, ip))
    }

    async fn create_pooled(&self) -> Result<Host, HarnessError> {
        // PIDs come back: the time keeps a name from meeting one of an earlier process's that
        // is still there (or its lock file).
        let name = format!(
            "dlp-harness-pool-{}-{}-{}-{}",
            self.key,
            std::process::id(),
            dlp_node_api::unix_ms(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.lock_path(&name);
        let lock = File::create_new(&path).map_err(|e| HarnessError::io(&path, e))?;
        lock.lock().map_err(|e| HarnessError::io(&path, e))?;
        let labels = HashMap::from([
            (POOL_LABEL.to_string(), self.key.clone()),
            (image::IMAGE_LABEL.to_string(), "node".to_string()),
        ]);
        let cmd = vec![
            image::INIT_BIN.to_string(),
            "--socket".into(),
            self.socket_path(&name).to_string_lossy().into_owned(),
            "--lock".into(),
            path.to_string_lossy().into_owned(),
            "--idle-secs".into(),
            IDLE_SECS.to_string(),
        ];
        match self.create(&name, cmd, labels, true, 0).await {
            Ok(mut host) => {
                host.lock = Some(lock);
                Ok(host)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// A container of this run alone (`name`), removed at its end unless kept; it sees the
    /// `sees_mounts` size-limited mounts made so far.
    pub async fn create_private(
        &self,
        name: &str,
        labels: Vec<(String, String)>,
        sees_mounts: usize,
    ) -> Result<Host, HarnessError> {
        let cmd = vec![
            image::INIT_BIN.to_string(),
            "--socket".into(),
            self.socket_path(name).to_string_lossy().into_owned(),
        ];
        self.create(name, cmd, labels.into_iter().collect(), false, sees_mounts)
            .await
    }

    async fn create(
        &self,
        name: &str,
        cmd: Vec<String>,
        labels: HashMap<String, String>,
        auto_remove: bool,
        sees_mounts: usize,
    ) -> Result<Host, HarnessError> {
        let network = self.network_id().await?;
        let mut binds = vec![format!("{0}:{0}", self.root.display())];
        if !self.lock_dir.starts_with(&self.root) {
            binds.push(format!("{0}:{0}", self.lock_dir.display()));
        }
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(cmd),
            labels: Some(labels),
            host_config: Some(HostConfig {
                binds: Some(binds),
                network_mode: Some(network),
                auto_remove: Some(auto_remove),
                ..Default::default()
            }),
            ..Default::default()
        };
        let failed = |e: testcontainers::bollard::errors::Error| {
            HarnessError::Setup(format!("cannot start container {name}: {e}"))
        };
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name(name).build()),
                body,
            )
            .await
            .map_err(failed)?;
        let started = async {
            self.docker
                .start_container(&created.id, None)
                .await
                .map_err(failed)?;
            inspect(&self.docker, &created.id, &self.network).await
        }
        .await;
        let (pid, ip, _) = match started {
            Ok(found) => found,
            Err(e) => {
                // A pooled container has no owner label: nobody else would remove it.
                self.remove(&created.id).await;
                return Err(e);
            }
        };
        tracing::debug!(container = %name, "created");
        Ok(Host {
            id: created.id,
            name: name.to_string(),
            ip,
            pid,
            socket: self.socket_path(name),
            paused: Arc::default(),
            sees_mounts,
            lock: None,
        })
    }

    /// The pool's network, created when missing. The daemon lets two networks have one name
    /// (and then refuses to attach by that name), so the look-and-create runs under a file lock
    /// across processes, and a duplicate found is removed.
    async fn network_id(&self) -> Result<String, HarnessError> {
        self.network_id
            .get_or_try_init(|| self.ensure_network())
            .await
            .cloned()
    }

    async fn ensure_network(&self) -> Result<String, HarnessError> {
        let path = self
            .lock_dir
            .with_file_name(format!("{}.lock", self.network));
        let guard = File::create(&path).map_err(|e| HarnessError::io(&path, e))?;
        let locked = tokio::task::spawn_blocking(move || guard.lock().map(|()| guard))
            .await
            .map_err(|e| HarnessError::Setup(format!("network lock: {e}")))?
            .map_err(|e| HarnessError::io(&path, e))?;
        let filters: HashMap<&str, Vec<&str>> =
            HashMap::from([("name", vec![self.network.as_str()])]);
        let found = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::new().filters(&filters).build(),
            ))
            .await
            .map_err(|e| HarnessError::Setup(format!("docker network ls: {e}")))?;
        // The name filter matches substrings: keep the exact name.
        let mut same: Vec<String> = found
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(self.network.as_str()))
            .filter_map(|n| n.id)
            .collect();
        same.sort();
        for extra in same.iter().skip(1) {
            let _ = self.docker.remove_network(extra).await;
        }
        let id = match same.first() {
            Some(id) => id.clone(),
            None => {
                self.docker
                    .create_network(NetworkCreateRequest {
                        name: self.network.clone(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| {
                        HarnessError::Setup(format!(
                            "cannot create the network {}: {e}",
                            self.network
                        ))
                    })?
                    .id
            }
        };
        drop(locked);
        Ok(id)
    }

    /// Remove a container at once (its processes with it).
    async fn remove(&self, id: &str) {
        let _ = self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::new().force(true).build()),
            )
            .await;
    }

    /// The run is done with `host`: unpaused, its processes killed, then back to the pool
    /// (the lock let go) or, a private one, removed; kept as it is when `keep`.
    pub async fn release(&self, host: Host, keep: bool) {
        if keep && host.private() {
            return;
        }
        if host.paused.load(Ordering::Relaxed) {
            let _ = self.docker.unpause_container(&host.id).await;
        }
        if host.private() {
            self.remove(&host.id).await;
            let _ = std::fs::remove_file(&host.socket);
            return;
        }
        signal_in(host.pid, &processes_in(host.pid), "KILL").await;
        // The next claimant waits for them to be gone; the lock goes with `host`.
        drop(host);
    }
}

/// The lock of a pooled container, if it is free now and still the container's (not removed by
/// its retiring init in the meantime).
fn try_claim(path: &Path) -> Option<File> {
    let file = File::open(path).ok()?;
    file.try_lock().ok()?;
    let still_there = std::fs::metadata(path).ok()?.ino() == file.metadata().ok()?.ino();
    still_there.then_some(file)
}

/// A running container's init PID, address on `network` and whether it is paused.
async fn inspect(
    docker: &Docker,
    id: &str,
    network: &str,
) -> Result<(i64, IpAddr, bool), HarnessError> {
    let info = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .map_err(|e| HarnessError::Setup(format!("docker inspect {id}: {e}")))?;
    let state = info.state.unwrap_or_default();
    let pid = state
        .pid
        .filter(|pid| *pid > 0)
        .ok_or_else(|| HarnessError::Setup(format!("container {id} is not running")))?;
    let ip = info
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut n| n.remove(network))
        .and_then(|n| n.ip_address)
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(|| {
            HarnessError::Setup(format!("container {id} has no address on {network}"))
        })?;
    Ok((pid, ip, state.paused.unwrap_or(false)))
}
