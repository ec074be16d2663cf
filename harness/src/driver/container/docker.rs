//! What the container driver asks of Docker besides its containers' lifecycle (`pool.rs`): is a
//! daemon there (fast, with a clear way out when not),
//! the leftovers of earlier runs, and packet-drop rules inside a container's network namespace
//! (the kernel here has no `netem`, so a partition is a drop, not a delay).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};

use crate::error::HarnessError;

/// Label naming the harness process that made a container (leftovers of a dead one are removed).
pub(super) const OWNER_LABEL: &str = "dlp-harness.owner-pid";
/// Label of a container kept for inspection (`--keep`, `TESTCONTAINERS_COMMAND=keep`).
pub(super) const KEEP_LABEL: &str = "dlp-harness.keep";
/// Label naming the run a container belongs to.
pub(super) const RUN_LABEL: &str = "dlp-harness.run";
/// How long the daemon may take to answer a ping.
const PING: Duration = Duration::from_secs(2);
/// The nftables table the driver owns inside a node's network namespace.
const TABLE: &str = "dlp_harness_partition";

/// Connect to the local Docker daemon, or say plainly why not.
pub(super) async fn connect() -> Result<Docker, HarnessError> {
    let unavailable = |detail: String| {
        HarnessError::Setup(format!(
            "the container driver cannot start: no Docker daemon answers ({detail}). Start \
             Docker (for example `systemctl start docker` or `dockerd &`), check that this user \
             may use /var/run/docker.sock (or DOCKER_HOST), or run with --driver in-process or \
             --driver process"
        ))
    };
    let docker = Docker::connect_with_local_defaults().map_err(|e| unavailable(e.to_string()))?;
    match tokio::time::timeout(PING, docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(unavailable(e.to_string())),
        Err(_) => Err(unavailable(format!("no answer within {PING:?}"))),
    }
}

/// Remove containers (and their networks) left by harness processes that no longer exist:
/// a SIGKILLed test process cannot clean up after itself, and there is no reaper container.
/// Kept containers stay.
pub(super) async fn remove_leftovers(docker: &Docker) {
    let filters: HashMap<&str, Vec<&str>> = HashMap::from([("label", vec![OWNER_LABEL])]);
    let Ok(containers) = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
    else {
        return;
    };
    let mut networks = BTreeSet::new();
    for c in containers {
        let labels = c.labels.unwrap_or_default();
        if labels.contains_key(KEEP_LABEL) {
            continue;
        }
        let owner_alive = labels
            .get(OWNER_LABEL)
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if owner_alive {
            continue;
        }
        if let Some(id) = c.id {
            let removed = docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptionsBuilder::new().force(true).build()),
                )
                .await;
            if removed.is_ok() {
                tracing::info!(container = %id, "removed a container left by an earlier run");
            }
        }
        if let Some(run) = labels.get(RUN_LABEL) {
            networks.insert(run.clone());
        }
    }
    // Networks are named `dlp-harness-<owner pid>-...` (testcontainers creates them without
    // labels); those of dead owners go too, also when no container of theirs is left.
    let filters: HashMap<&str, Vec<&str>> = HashMap::from([("name", vec!["dlp-harness-"])]);
    if let Ok(found) = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new().filters(&filters).build(),
        ))
        .await
    {
        for name in found.into_iter().filter_map(|n| n.name) {
            let owner = name
                .strip_prefix("dlp-harness-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if owner.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()) {
                networks.insert(name);
            }
        }
    }
    for network in networks {
        // Fails while another container still uses it; that one's owner removes it.
        if docker.remove_network(&network).await.is_ok() {
            tracing::info!(%network, "removed a network left by an earlier run");
        }
    }
}

/// Make `pid`'s network namespace drop every packet to and from `blocked` (replacing what the
/// driver set there before; an empty set removes the table).
pub(super) async fn set_drop_rules(pid: i64, blocked: &[IpAddr]) -> Result<(), HarnessError> {
    // Never the host's own network namespace: a number whose container ended may be reused.
    if !super::procs::is_container_init(pid) {
        return Err(HarnessError::Setup(format!(
            "cannot set drop rules: process {pid} is no longer a container's init (did the container end?)"
        )));
    }
    let mut script = format!("table inet {TABLE}\ndelete table inet {TABLE}\n");
    if !blocked.is_empty() {
        let set = blocked
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        script.push_str(&format!(
            "table inet {TABLE} {{\n\
               chain input {{ type filter hook input priority -10; policy accept; ip saddr {{ {set} }} drop; }}\n\
               chain output {{ type filter hook output priority -10; policy accept; ip daddr {{ {set} }} drop; }}\n\
             }}\n"
        ));
    }
    let mut child = tokio::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            HarnessError::Setup(format!(
                "cannot cut the network below the nodes: nsenter/nft: {e} (install util-linux and \
                 nftables; the harness must run as root to enter a container's network namespace)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| HarnessError::Setup(format!("nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| HarnessError::Setup(format!("nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Setup(format!(
            "nft in the network namespace of process {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
