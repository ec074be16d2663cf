//! The cluster: a network of named nodes, their channels and the chain, with the verbs
//! scenarios use. One file per noun:
//!
//! - [`lifecycle`](self::lifecycle): add, start, stop, crash, shut everything down;
//! - `faults`: pause a node where it stands and resume it;
//! - `links`: connect, disconnect, partition, heal;
//! - `channels`: open, look at, wait for a state, shut down;
//! - `payments`: pay and wait for the outcome;
//! - `backups`: take (now or at a protocol step), find, restore;
//! - `holds`: hold a node at a protocol step, release it;
//! - `pins`: pin the order in which a node handles racing inputs;
//! - `event_log`: every node's typed events, polled from the node, per run (`bob#2`);
//! - `quiescence`: wait until no message is in flight;
//! - `ledger`: mining, penalties and wallets on the ledger;
//! - `timeline`: the merged, human timeline of steps and events;
//! - `wait`: the one deadline loop every wait uses.
//!
//! Everything a test asserts on comes from typed node events (long-polled over `dev_events`,
//! the same on every driver) and from the ledger; every wait is a predicate with a deadline,
//! and a timeout names what was awaited and shows each node's recent events. Nodes are reached
//! only through the [`Driver`] seam. The cluster knows nothing of scenarios, invariants, sweeps
//! or the explorer: they are built on it.

mod backups;
mod channels;
mod event_log;
mod faults;
mod gossip;
mod holds;
mod ledger;
mod lifecycle;
mod links;
mod payments;
mod pins;
mod quiescence;
mod reestablished;
mod restores;
mod store_view;
mod timeline;
mod wait;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dlp_chain::{ChainClient, Hash32, Pubkey};
use dlp_node_api::{Backend, NodeEvent, NodeInfo};

use crate::capability::DriverKind;
use crate::client::NodeClient;
use crate::driver::{Driver, NodeHandle, NodeSpec};
use crate::error::HarnessError;

pub use channels::state_matches;
pub use event_log::NodeRecord;
pub use payments::PaymentOutcome;
pub use store_view::{ChannelView, HomeSnapshot, StoreView};
pub use timeline::TimelineEntry;
pub use wait::{Idle, Wait};

/// One node of the cluster, across its runs.
struct NodeEntry {
    spec: NodeSpec,
    handle: Option<Box<dyn NodeHandle>>,
    client: Option<NodeClient>,
    info: Option<NodeInfo>,
    /// Events of the current run (a restart begins a new event log).
    events: Vec<NodeEvent>,
    /// The current run: 1 for the first start, 2 after a restart or restore, ...
    run: u32,
    /// Channels that were Stale when each run started.
    stale_at_start: BTreeMap<u32, Vec<Hash32>>,
    /// Every event of every run, for the timeline and the invariants.
    history: Vec<(u32, NodeEvent)>,
    /// Event seq when the latest hold was armed (a `wait_held` waits for a Held after it).
    hold_armed_at: u64,
    /// A hold was armed in this run and not released: the node may stop at any step.
    hold_pending: bool,
    /// An input order was pinned in this run (`pins`): a timeout says where it stands.
    pinned: bool,
    /// Frozen by [`Network::pause`] until [`Network::resume`]: asked nothing meanwhile.
    paused: bool,
    /// What it reported of its store when last stopped cleanly (a killed restore's "old store").
    last_view: Option<StoreView>,
    /// What a killed restore left to judge at its next start.
    store_check: Option<restores::PendingStoreCheck>,
}

/// A channel the scenario named.
#[derive(Debug, Clone)]
pub struct ChannelEntry {
    pub from: String,
    pub to: String,
    pub id: Hash32,
}

/// The network.
pub struct Network {
    driver: Box<dyn Driver>,
    chain: Arc<dyn ChainClient>,
    chain_url: Option<String>,
    /// The last ledger event seen while idling on the ledger.
    ledger_cursor: u64,
    backend: Backend,
    run_dir: PathBuf,
    nodes: BTreeMap<String, NodeEntry>,
    channels: BTreeMap<String, ChannelEntry>,
    backups: backups::Backups,
    steps: Vec<TimelineEntry>,
    /// Pairs cut apart (names in order), and whether the driver cut the path below the nodes
    /// (`true`) or the cluster cuts the pair at the connection level (`false`).
    partitions: BTreeMap<(String, String), bool>,
    seed: u64,
    /// `damage_backup` steps so far (each draws from its own seeded generator).
    damages: u64,
    /// (node, backup) -> (the old store's view, the view after restoring the backup over it):
    /// a killed restore's reference, computed once per old store.
    reference_views: BTreeMap<(String, String), (StoreView, StoreView)>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("driver", &self.driver.kind().name())
            .field("backend", &self.backend)
            .field("run_dir", &self.run_dir)
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Network {
    /// A network in `run_dir` (created) on a fresh driver of `kind` with `backend`.
    /// `seed` drives everything random: node keys (derived from the seed and the node's name)
    /// and the nodes' own randomness (`dev.seed`: temporary channel ids, preimages).
    pub async fn new(
        kind: DriverKind,
        backend: Backend,
        run_dir: &Path,
        seed: u64,
    ) -> Result<Self, HarnessError> {
        Self::with_driver(crate::driver::create(kind)?, backend, run_dir, seed).await
    }

    /// A network on a given driver (tests use doubles).
    pub async fn with_driver(
        mut driver: Box<dyn Driver>,
        backend: Backend,
        run_dir: &Path,
        seed: u64,
    ) -> Result<Self, HarnessError> {
        std::fs::create_dir_all(run_dir).map_err(|e| HarnessError::io(run_dir, e))?;
        let (chain, chain_url) = driver.start_chain(run_dir).await?;
        Ok(Self {
            driver,
            chain,
            chain_url,
            ledger_cursor: 0,
            backend,
            run_dir: run_dir.to_path_buf(),
            nodes: BTreeMap::new(),
            channels: BTreeMap::new(),
            backups: backups::Backups::default(),
            steps: Vec::new(),
            partitions: BTreeMap::new(),
            seed,
            damages: 0,
            reference_views: BTreeMap::new(),
        })
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn chain(&self) -> &Arc<dyn ChainClient> {
        &self.chain
    }

    fn entry(&self, name: &str) -> Result<&NodeEntry, HarnessError> {
        self.nodes
            .get(name)
            .ok_or_else(|| HarnessError::Setup(format!("no node named {name:?}")))
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut NodeEntry, HarnessError> {
        self.nodes
            .get_mut(name)
            .ok_or_else(|| HarnessError::Setup(format!("no node named {name:?}")))
    }

    /// The RPC client of a running node; a paused node's is refused ([`HarnessError::Paused`]),
    /// since it would answer nothing until resumed.
    pub fn client(&self, name: &str) -> Result<&NodeClient, HarnessError> {
        self.refuse_paused(name, "a call to its RPC")?;
        self.entry(name)?
            .client
            .as_ref()
            .ok_or_else(|| HarnessError::node(name, "is not running"))
    }

    fn info(&self, name: &str) -> Result<&NodeInfo, HarnessError> {
        self.entry(name)?
            .info
            .as_ref()
            .ok_or_else(|| HarnessError::node(name, "has never started"))
    }

    /// A node's wallet key (where its channel payouts go on the ledger).
    pub fn wallet_key(&self, name: &str) -> Result<Pubkey, HarnessError> {
        self.info(name)?.wallet_key().map_err(HarnessError::Setup)
    }

    pub fn pubkey(&self, name: &str) -> Result<Pubkey, HarnessError> {
        self.info(name)?.node_key().map_err(HarnessError::Setup)
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// True when the node runs now (a paused node runs, frozen).
    pub fn is_running(&self, name: &str) -> bool {
        self.nodes.get(name).is_some_and(|e| e.handle.is_some())
    }

    /// Every channel named so far, by name.
    pub fn channels(&self) -> &BTreeMap<String, ChannelEntry> {
        &self.channels
    }

    /// A node's home directory on the host.
    pub fn home(&self, name: &str) -> Result<&Path, HarnessError> {
        Ok(&self.entry(name)?.spec.home)
    }

    /// A named channel.
    pub fn channel(&self, name: &str) -> Result<&ChannelEntry, HarnessError> {
        self.channels
            .get(name)
            .ok_or_else(|| HarnessError::Setup(format!("no channel named {name:?}")))
    }
}
