//! A network of named nodes, their channels and the chain, with the verbs scenarios use.
//!
//! Everything a test asserts on comes from typed node events (long-polled over `dev_events`,
//! the same on every driver) and from the ledger. Every wait is a predicate with a deadline; on
//! timeout the error carries the last events of every node. The run directory holds each node's
//! base directory (store, backups, `node.log` for processes, `events.jsonl`), and is kept when a
//! scenario fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dlp_chain::{ChainClient, Hash32, Pubkey};
use dlp_node::channel_record::ChannelState;
use dlp_node::config::{AuditPolicy, OnAuditFailure};
use dlp_node::core::ChannelInfo;
use dlp_node::events::{EventKind, NodeEvent};
use dlp_node::store::Backend;
use serde_json::json;

use crate::client::{NodeClient, NodeInfo};
use crate::driver::{Driver, DriverKind, NodeRuntime};
use crate::error::HarnessError;

/// How long any single wait may take.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Wallet funds every node starts with.
pub const WALLET_FUNDS: u64 = 100_000_000_000;

/// Per-node settings a scenario may set.
#[derive(Debug, Clone, Default)]
pub struct NodeSettings {
    pub audit_policy: Option<AuditPolicy>,
    pub on_audit_failure: Option<OnAuditFailure>,
}

/// One line of the merged timeline.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    pub at_ms: u64,
    pub who: String,
    pub what: String,
}

struct NodeEntry {
    base: PathBuf,
    runtime: Option<Box<dyn NodeRuntime>>,
    client: Option<NodeClient>,
    info: Option<NodeInfo>,
    /// Events of the current incarnation (a restart starts a new event log).
    events: Vec<NodeEvent>,
    incarnation: u32,
    /// Channels that were Stale when each incarnation started.
    stale_at_start: BTreeMap<u32, Vec<Hash32>>,
    /// Every event of every incarnation, for the timeline and invariants.
    history: Vec<(u32, NodeEvent)>,
    /// Event seq when the latest hold was armed (a `wait_held` waits for a Held after it).
    hold_armed_at: u64,
}

/// A backup a node takes by itself at a protocol step: its `BackupWritten` event follows
/// `armed_at` in run `incarnation`.
#[derive(Debug, Clone)]
struct PendingBackup {
    node: String,
    incarnation: u32,
    armed_at: u64,
    /// The step whose backup this is (its `BackupWritten` names it).
    step: String,
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
    backend: Backend,
    run_dir: PathBuf,
    nodes: BTreeMap<String, NodeEntry>,
    channels: BTreeMap<String, ChannelEntry>,
    backups: BTreeMap<String, (String, PathBuf)>,
    /// Backups armed with `backup_at`, not yet looked up: name -> where to look.
    pending_backups: BTreeMap<String, PendingBackup>,
    steps: Vec<TimelineEntry>,
    /// Pairs cut apart by `partition` (names in order).
    partitions: std::collections::BTreeSet<(String, String)>,
    seed: u64,
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

fn now_ms() -> u64 {
    dlp_node::fsutil::unix_ms()
}

impl Network {
    /// A network in `run_dir` (created) on `driver` with `backend`.
    /// `seed` drives everything random: node keys (derived from the seed and the node's name)
    /// and the nodes' own randomness (`dev.seed`: temporary channel ids, preimages).
    pub async fn new(
        driver: DriverKind,
        backend: Backend,
        run_dir: &Path,
        seed: u64,
    ) -> Result<Self, HarnessError> {
        std::fs::create_dir_all(run_dir).map_err(|e| HarnessError::io(run_dir, e))?;
        let mut driver = driver.create()?;
        let (chain, chain_url) = driver.start_chain(run_dir).await?;
        Ok(Self {
            driver,
            chain,
            chain_url,
            backend,
            run_dir: run_dir.to_path_buf(),
            nodes: BTreeMap::new(),
            channels: BTreeMap::new(),
            backups: BTreeMap::new(),
            pending_backups: BTreeMap::new(),
            steps: Vec::new(),
            partitions: Default::default(),
            seed,
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

    /// Record a step in the timeline.
    pub fn note_step(&mut self, what: impl Into<String>) {
        self.steps.push(TimelineEntry {
            at_ms: now_ms(),
            who: "step".into(),
            what: what.into(),
        });
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

    /// The RPC client of a running node.
    pub fn client(&self, name: &str) -> Result<&NodeClient, HarnessError> {
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
        self.info(name)?.wallet()
    }

    pub fn pubkey(&self, name: &str) -> Result<Pubkey, HarnessError> {
        self.info(name)?.pubkey()
    }

    /// Names of all nodes.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// A named channel.
    pub fn channel(&self, name: &str) -> Result<&ChannelEntry, HarnessError> {
        self.channels
            .get(name)
            .ok_or_else(|| HarnessError::Setup(format!("no channel named {name:?}")))
    }

    fn write_config(&self, base: &Path, settings: &NodeSettings) -> Result<(), HarnessError> {
        std::fs::create_dir_all(base).map_err(|e| HarnessError::io(base, e))?;
        let mut text = format!(
            "[store]\nbackend = \"{}\"\n\
             [rpc]\nlistening_addr = \"127.0.0.1:0\"\n\
             enabled_modules = [\"info\", \"peer\", \"channel\", \"payment\", \"invoice\", \"admin\", \"dev\"]\n\
             [fiber]\nlistening_addr = \"127.0.0.1:0\"\n",
            self.backend
        );
        if let Some(url) = &self.chain_url {
            text.push_str(&format!("[chain]\nrpc_url = \"{url}\"\n"));
        }
        text.push_str(&format!("[dev]\nseed = {}\n", self.seed));
        // A scenario may restore any backup it named, however many it took since: the node's
        // retention (backup.keep, tested in dlp-node's own tests) must not delete one.
        text.push_str("[backup]\nkeep = 4294967295\n");
        text.push_str("[audit]\n");
        if let Some(policy) = settings.audit_policy {
            text.push_str(&format!("policy = \"{policy}\"\n"));
        }
        if let Some(on_failure) = settings.on_audit_failure {
            let value = match on_failure {
                OnAuditFailure::Hold => "hold",
                OnAuditFailure::RequestClose => "request_close",
            };
            text.push_str(&format!("on_audit_failure = \"{value}\"\n"));
        }
        let path = base.join("config.toml");
        std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))
    }

    /// A secret key derived from the seed, the node's name and a role.
    fn derived_key(&self, name: &str, role: &str) -> secp256k1::SecretKey {
        let mut attempt = 0u32;
        loop {
            let mut data = b"dlp-harness/key/v1".to_vec();
            data.extend_from_slice(&self.seed.to_be_bytes());
            data.extend_from_slice(name.as_bytes());
            data.push(0);
            data.extend_from_slice(role.as_bytes());
            data.extend_from_slice(&attempt.to_be_bytes());
            // A digest is a valid key except with negligible probability; try the next if not.
            if let Ok(key) = secp256k1::SecretKey::from_secret_bytes(Hash32::digest(&data).0) {
                return key;
            }
            attempt += 1;
        }
    }

    /// Add a node, start it and fund its wallet.
    pub async fn add_node(
        &mut self,
        name: &str,
        settings: NodeSettings,
    ) -> Result<(), HarnessError> {
        let base = self.run_dir.join(name);
        self.write_config(&base, &settings)?;
        dlp_node::keys::install_keys(
            &dlp_node::layout::BaseDir::new(&base),
            &self.derived_key(name, "node"),
            &self.derived_key(name, "wallet"),
        )
        .map_err(|e| HarnessError::node(name, e))?;
        self.nodes.insert(
            name.to_string(),
            NodeEntry {
                base,
                runtime: None,
                client: None,
                info: None,
                events: Vec::new(),
                incarnation: 0,
                stale_at_start: BTreeMap::new(),
                history: Vec::new(),
                hold_armed_at: 0,
            },
        );
        self.start(name).await?;
        let wallet = self.info(name)?.wallet()?;
        self.chain
            .fund(wallet, WALLET_FUNDS)
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))?;
        Ok(())
    }

    /// Start a stopped node.
    pub async fn start(&mut self, name: &str) -> Result<(), HarnessError> {
        let base = self.entry(name)?.base.clone();
        if self.entry(name)?.runtime.is_some() {
            return Err(HarnessError::node(name, "is already running"));
        }
        let runtime = self.driver.start_node(name, &base).await?;
        let client = NodeClient::new(name, runtime.rpc_addr());
        let info = client.node_info().await?;
        let stale: Vec<Hash32> = client
            .list_channels()
            .await?
            .into_iter()
            .filter(|c| c.state == ChannelState::Stale)
            .map(|c| c.channel_id)
            .collect();
        let entry = self.entry_mut(name)?;
        entry.runtime = Some(runtime);
        entry.client = Some(client);
        entry.info = Some(info);
        entry.events.clear();
        entry.hold_armed_at = 0;
        entry.incarnation += 1;
        let incarnation = entry.incarnation;
        entry.stale_at_start.insert(incarnation, stale);
        Ok(())
    }

    /// Stop a node cleanly (after collecting its last events).
    pub async fn stop(&mut self, name: &str) -> Result<(), HarnessError> {
        let _ = self.poll(name, Duration::ZERO).await;
        let entry = self.entry_mut(name)?;
        entry.client = None;
        match entry.runtime.take() {
            Some(runtime) => runtime.stop().await,
            None => Err(HarnessError::node(name, "is not running")),
        }
    }

    /// Kill a node (SIGKILL for processes).
    pub async fn crash(&mut self, name: &str) -> Result<(), HarnessError> {
        let _ = self.poll(name, Duration::ZERO).await;
        let entry = self.entry_mut(name)?;
        entry.client = None;
        match entry.runtime.take() {
            Some(runtime) => {
                runtime.crash().await;
                Ok(())
            }
            None => Err(HarnessError::node(name, "is not running")),
        }
    }

    /// Take a backup through the `backup` RPC; remembers it as `backup_name`.
    pub async fn backup(&mut self, node: &str, backup_name: &str) -> Result<PathBuf, HarnessError> {
        let after = self.last_seq(node)?;
        self.client(node)?.backup().await?;
        let event = self
            .wait_event(node, after, "BackupWritten", |k| {
                matches!(k, EventKind::BackupWritten { step: None, .. })
            })
            .await?;
        let EventKind::BackupWritten { dir, .. } = event.kind else {
            unreachable!("matched above")
        };
        let dir = PathBuf::from(dir);
        self.backups
            .insert(backup_name.to_string(), (node.to_string(), dir.clone()));
        Ok(dir)
    }

    /// Arm a backup `node` takes by itself right after a protocol step (the store is exactly
    /// that step's state); remembered as `backup_name`, looked up when first needed.
    pub async fn backup_at(
        &mut self,
        node: &str,
        spec: dlp_node::steps::StepSpec,
        backup_name: &str,
    ) -> Result<(), HarnessError> {
        self.poll(node, Duration::ZERO).await?;
        let pending = PendingBackup {
            node: node.to_string(),
            incarnation: self.entry(node)?.incarnation,
            armed_at: self.last_seq(node)?,
            step: spec.step.clone(),
        };
        self.client(node)?
            .arm_step(&dlp_node::steps::StepSpec {
                action: dlp_node::steps::StepAction::Backup,
                ..spec
            })
            .await?;
        self.pending_backups
            .insert(backup_name.to_string(), pending);
        Ok(())
    }

    /// The directory of a named backup, waiting for a `backup_at` one to be written if its
    /// node is still in the run that armed it.
    pub async fn backup_dir(
        &mut self,
        backup_name: &str,
    ) -> Result<(String, PathBuf), HarnessError> {
        if let Some(found) = self.backups.get(backup_name) {
            return Ok(found.clone());
        }
        let pending = self
            .pending_backups
            .get(backup_name)
            .cloned()
            .ok_or_else(|| HarnessError::Setup(format!("no backup named {backup_name:?}")))?;
        // Ours names our step (an RPC backup in between has none).
        let step = pending.step.clone();
        let ours = move |k: &EventKind| matches!(k, EventKind::BackupWritten { step: Some(s), .. } if *s == step);
        let written = |entry: &NodeEntry| {
            entry.history.iter().find_map(|(i, e)| match &e.kind {
                EventKind::BackupWritten { dir, .. }
                    if *i == pending.incarnation && e.seq > pending.armed_at && ours(&e.kind) =>
                {
                    Some(PathBuf::from(dir))
                }
                _ => None,
            })
        };
        let dir = match written(self.entry(&pending.node)?) {
            Some(dir) => dir,
            None if self.entry(&pending.node)?.incarnation == pending.incarnation
                && self.entry(&pending.node)?.runtime.is_some() =>
            {
                let event = self
                    .wait_event(
                        &pending.node,
                        pending.armed_at,
                        &format!("backup {backup_name:?} at its step"),
                        &ours,
                    )
                    .await?;
                let EventKind::BackupWritten { dir, .. } = event.kind else {
                    unreachable!("matched above")
                };
                PathBuf::from(dir)
            }
            None => {
                return Err(HarnessError::Expectation(format!(
                    "backup {backup_name:?} was never written: {} did not reach its step before it stopped",
                    pending.node
                )));
            }
        };
        self.pending_backups.remove(backup_name);
        let found = (pending.node, dir);
        self.backups.insert(backup_name.to_string(), found.clone());
        Ok(found)
    }

    /// Restore a node from a named backup: stop it if running, restore, start it again.
    pub async fn restore(&mut self, node: &str, backup_name: &str) -> Result<(), HarnessError> {
        let (owner, dir) = self.backup_dir(backup_name).await?;
        if owner != node {
            return Err(HarnessError::Setup(format!(
                "backup {backup_name:?} belongs to {owner}, not {node}"
            )));
        }
        if self.entry(node)?.runtime.is_some() {
            self.stop(node).await?;
        }
        let base = self.entry(node)?.base.clone();
        self.driver.restore(node, &base, self.backend, &dir).await?;
        self.start(node).await
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        if a <= b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        }
    }

    /// Cut `a` and `b` apart: drop their connection (if any) and refuse `connect` between them
    /// until [`heal`](Self::heal). (dlp-node never redials by itself, so no lower-level block
    /// is needed on loopback.)
    pub async fn partition(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        self.partitions.insert(Self::pair(a, b));
        let pb = self.pubkey(b)?;
        if self.entry(a)?.client.is_some() {
            // Not connected is fine: the pair is cut either way.
            let _ = self.client(a)?.disconnect_peer(&pb).await?;
        }
        Ok(())
    }

    /// Undo a partition; `a` dials `b` again.
    pub async fn heal(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        self.partitions.remove(&Self::pair(a, b));
        self.connect(a, b).await
    }

    /// Open channels by shape over `nodes` (named `<from>-<to>`), each funded with `amount`.
    pub async fn topology(
        &mut self,
        shape: crate::scenario::Shape,
        nodes: &[String],
        amount: u64,
    ) -> Result<(), HarnessError> {
        for (from, to) in crate::scenario::shape_pairs(shape, nodes) {
            self.connect(&from, &to).await?;
            self.open_channel(&format!("{from}-{to}"), &from, &to, amount)
                .await?;
        }
        Ok(())
    }

    /// Connect `a` to `b` (a dials) and wait until both see the connection.
    pub async fn connect(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        if self.partitions.contains(&Self::pair(a, b)) {
            return Err(HarnessError::Setup(format!(
                "{a} and {b} are partitioned; heal them first"
            )));
        }
        let (after_a, after_b) = (self.last_seq(a)?, self.last_seq(b)?);
        let address = self
            .info(b)?
            .addresses
            .first()
            .cloned()
            .ok_or_else(|| HarnessError::node(b, "has no address"))?;
        let (pa, pb) = (self.pubkey(a)?, self.pubkey(b)?);
        self.client(a)?.connect_peer(&address).await?;
        self.wait_event(
            a,
            after_a,
            &format!("{a} connected to {b}"),
            |k| matches!(k, EventKind::PeerConnected { peer, .. } if *peer == pb),
        )
        .await?;
        self.wait_event(
            b,
            after_b,
            &format!("{b} connected to {a}"),
            |k| matches!(k, EventKind::PeerConnected { peer, .. } if *peer == pa),
        )
        .await?;
        Ok(())
    }

    /// Disconnect `a` from `b`.
    pub async fn disconnect(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        let pb = self.pubkey(b)?;
        match self.client(a)?.disconnect_peer(&pb).await? {
            Ok(_) => Ok(()),
            Err(refusal) => Err(HarnessError::node(a, refusal)),
        }
    }

    /// Open a channel `from` -> `to` funded with `amount`, mine its funding, wait until both
    /// ends are ChannelReady; remember it as `name`.
    pub async fn open_channel(
        &mut self,
        name: &str,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<Hash32, HarnessError> {
        let (after_a, after_b) = (self.last_seq(from)?, self.last_seq(to)?);
        let peer = self.pubkey(to)?;
        self.client(from)?.open_channel(&peer, amount).await?;
        self.wait_event(from, after_a, "the funding broadcast", |k| {
            matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if kind == "funding")
        })
        .await?;
        self.mine(1).await?;
        let ready = self
            .wait_event(from, after_a, &format!("{from} ChannelReady"), |k| {
                matches!(
                    k,
                    EventKind::StateChanged {
                        to: ChannelState::ChannelReady,
                        ..
                    }
                )
            })
            .await?;
        let EventKind::StateChanged { channel_id, .. } = ready.kind else {
            unreachable!("matched above")
        };
        self.wait_event(to, after_b, &format!("{to} ChannelReady"), |k| {
            matches!(k, EventKind::StateChanged { channel_id: id, to: ChannelState::ChannelReady, .. } if *id == channel_id)
        })
        .await?;
        self.channels.insert(
            name.to_string(),
            ChannelEntry {
                from: from.to_string(),
                to: to.to_string(),
                id: channel_id,
            },
        );
        Ok(channel_id)
    }

    /// Start paying an invoice of `to` from `from`; returns the payment hash.
    pub async fn start_payment(
        &mut self,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<Hash32, HarnessError> {
        let invoice = self.client(to)?.new_invoice(amount).await?;
        match self
            .client(from)?
            .send_payment(json!({ "invoice": invoice }))
            .await?
        {
            Ok(p) => Ok(p.payment_hash),
            Err(refusal) => Err(HarnessError::node(
                from,
                format!("send_payment refused: {refusal}"),
            )),
        }
    }

    /// Wait for a payment's final status ("Success"/"Failed") and failure reason. Looks at the
    /// payer's current run (a restarted payer reports through `get_payment`).
    pub async fn payment_outcome(
        &mut self,
        from: &str,
        hash: Hash32,
    ) -> Result<(String, Option<String>), HarnessError> {
        let view = self.client(from)?.get_payment(&hash).await?;
        if view.status == "Success" || view.status == "Failed" {
            return Ok((view.status, view.failed_error));
        }
        self.wait_event(from, 0, "the payment's outcome", |k| {
            matches!(k, EventKind::PaymentUpdated { payment_hash, status, .. }
                if *payment_hash == hash && (status == "Success" || status == "Failed"))
        })
        .await?;
        let view = self.client(from)?.get_payment(&hash).await?;
        Ok((view.status, view.failed_error))
    }

    /// Pay an invoice of `to` from `from` and wait; returns the final status
    /// ("Success"/"Failed") and the failure reason.
    pub async fn pay(
        &mut self,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<(String, Option<String>), HarnessError> {
        let invoice = self.client(to)?.new_invoice(amount).await?;
        let payment = match self
            .client(from)?
            .send_payment(json!({ "invoice": invoice }))
            .await?
        {
            Ok(p) => p,
            Err(refusal) => return Ok(("Failed".into(), Some(refusal))),
        };
        if payment.status == "Failed" {
            return Ok((payment.status, payment.failed_error));
        }
        self.payment_outcome(from, payment.payment_hash).await
    }

    pub async fn mine(&mut self, blocks: u64) -> Result<u64, HarnessError> {
        self.chain
            .mine(blocks)
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))
    }

    /// A node's view of a named channel.
    pub async fn channel_info(
        &self,
        node: &str,
        channel: &str,
    ) -> Result<ChannelInfo, HarnessError> {
        let id = self.channel(channel)?.id;
        self.client(node)?
            .list_channels()
            .await?
            .into_iter()
            .find(|c| c.channel_id == id)
            .ok_or_else(|| HarnessError::node(node, format!("does not list channel {channel}")))
    }

    /// Wait until a node lists `channel` in state `want` (compared by name and flags as given).
    pub async fn wait_state(
        &mut self,
        node: &str,
        channel: &str,
        want: &str,
    ) -> Result<(), HarnessError> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let info = self.channel_info(node, channel).await?;
            if state_matches(&info.state, want) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.timeout(&format!(
                    "{node}: channel {channel} in state {want} (it is {})",
                    info.state
                )));
            }
            // Wait for the next event of that node before looking again.
            let after = self.last_seq(node)?;
            let _ = self
                .poll_wait(node, after, Duration::from_millis(500))
                .await;
        }
    }

    pub fn last_seq(&self, node: &str) -> Result<u64, HarnessError> {
        Ok(self.entry(node)?.events.last().map_or(0, |e| e.seq))
    }

    /// Fetch new events of a node (waiting up to `wait` for the first).
    pub async fn poll(&mut self, node: &str, wait: Duration) -> Result<usize, HarnessError> {
        let after = self.last_seq(node)?;
        self.poll_wait(node, after, wait).await
    }

    async fn poll_wait(
        &mut self,
        node: &str,
        after: u64,
        wait: Duration,
    ) -> Result<usize, HarnessError> {
        let Some(client) = self.entry(node)?.client.clone() else {
            return Ok(0);
        };
        let fresh = client.events(after, wait).await?;
        let entry = self.entry_mut(node)?;
        let incarnation = entry.incarnation;
        let mut added = 0;
        for event in fresh {
            if entry.events.last().is_none_or(|last| event.seq > last.seq) {
                entry.history.push((incarnation, event.clone()));
                entry.events.push(event);
                added += 1;
            }
        }
        Ok(added)
    }

    /// Wait for an event of `node` with `seq > after` matching `pred`.
    pub async fn wait_event(
        &mut self,
        node: &str,
        after: u64,
        what: &str,
        pred: impl Fn(&EventKind) -> bool,
    ) -> Result<NodeEvent, HarnessError> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(e) = self
                .entry(node)?
                .events
                .iter()
                .find(|e| e.seq > after && pred(&e.kind))
            {
                return Ok(e.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout(&format!("{node}: {what}")));
            }
            self.poll(node, left.min(Duration::from_secs(5))).await?;
        }
    }

    /// Events of a node's current incarnation.
    pub fn events(&self, node: &str) -> Result<&[NodeEvent], HarnessError> {
        Ok(&self.entry(node)?.events)
    }

    fn timeout(&self, what: &str) -> HarnessError {
        HarnessError::Timeout {
            what: what.to_string(),
            seconds: DEADLINE.as_secs(),
            seen: self.recent_events(12),
        }
    }

    /// The last `n` events of every node, for error messages.
    pub fn recent_events(&self, n: usize) -> String {
        let mut out = String::new();
        for (name, entry) in &self.nodes {
            out.push_str(&format!("  last events of {name}:\n"));
            for (_, e) in entry.history.iter().rev().take(n).rev() {
                out.push_str(&format!("    #{} {}\n", e.seq, describe(&e.kind)));
            }
        }
        out
    }

    /// Hold a node after a step.
    pub async fn hold(
        &mut self,
        node: &str,
        step: &str,
        channel: Option<&str>,
        nth: u64,
    ) -> Result<(), HarnessError> {
        // Everything published so far is older than this hold.
        self.poll(node, Duration::ZERO).await?;
        let armed_at = self.last_seq(node)?;
        self.entry_mut(node)?.hold_armed_at = armed_at;
        let id = channel.map(|c| self.channel(c).map(|c| c.id)).transpose()?;
        self.client(node)?.hold(step, id.as_ref(), nth).await
    }

    /// Wait until a node reports it is held (after its latest `hold`).
    pub async fn wait_held(&mut self, node: &str) -> Result<(), HarnessError> {
        let after = self.entry(node)?.hold_armed_at;
        self.wait_event(node, after, "the hold", |k| {
            matches!(k, EventKind::Held { .. })
        })
        .await
        .map(|_| ())
    }

    pub async fn release(&mut self, node: &str) -> Result<(), HarnessError> {
        self.client(node)?.release().await
    }

    /// Shut a channel down from `node`: `Ok(Err(refusal))` when the node refused.
    pub async fn shutdown(
        &mut self,
        node: &str,
        channel: &str,
        force: bool,
    ) -> Result<Result<(), String>, HarnessError> {
        let id = self.channel(channel)?.id;
        Ok(self
            .client(node)?
            .shutdown_channel(&id, force)
            .await?
            .map(|_| ()))
    }

    /// Messages in flight between connected running nodes: `(from, to, sent, handled)` for
    /// every direction where the receiver has handled fewer messages than the sender sent on
    /// their current connection. Empty when the network is quiescent.
    fn in_flight(&self) -> Vec<(String, String, usize, usize)> {
        // Per node and peer: events after the latest PeerConnected, if still connected.
        let since_connect = |entry: &NodeEntry, peer: Pubkey| -> Option<usize> {
            let mut from = None;
            for (i, e) in entry.events.iter().enumerate() {
                match &e.kind {
                    EventKind::PeerConnected { peer: p, .. } if *p == peer => from = Some(i),
                    EventKind::PeerDisconnected { peer: p, .. } if *p == peer => from = None,
                    _ => {}
                }
            }
            from
        };
        let running: Vec<(&String, &NodeEntry, Pubkey)> = self
            .nodes
            .iter()
            .filter(|(_, e)| e.runtime.is_some())
            .filter_map(|(n, e)| Some((n, e, e.info.as_ref()?.pubkey().ok()?)))
            .collect();
        let mut out = Vec::new();
        for (a, ea, ka) in &running {
            for (b, eb, kb) in &running {
                if a == b {
                    continue;
                }
                let (Some(fa), Some(fb)) = (since_connect(ea, *kb), since_connect(eb, *ka)) else {
                    continue;
                };
                let sent = ea.events[fa..]
                    .iter()
                    .filter(
                        |e| matches!(&e.kind, EventKind::MessageSent { peer, .. } if peer == kb),
                    )
                    .count();
                let handled = eb.events[fb..]
                    .iter()
                    .filter(|e| matches!(&e.kind, EventKind::MessageReceived { peer, .. } if peer == ka))
                    .count();
                if handled < sent {
                    out.push(((*a).clone(), (*b).clone(), sent, handled));
                }
            }
        }
        out
    }

    /// Wait until no message is in flight between connected running nodes: every message a
    /// node sent on a live connection has been handled by its receiver, and every node has
    /// finished handling it (a node publishes `MessageReceived` before it sends its replies, so
    /// equal counts are confirmed by one round trip through each node's core: `list_channels`
    /// is answered only after the input being handled is done).
    pub async fn wait_quiescent(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + DEADLINE;
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        loop {
            for name in &names {
                self.poll(name, Duration::ZERO).await?;
            }
            let busy = self.in_flight();
            let Some((_, to, _, _)) = busy.first().cloned() else {
                let before = self.event_counts();
                for name in &names {
                    let entry = self.entry(name)?;
                    if entry.runtime.is_none() || is_held(&entry.events) {
                        continue;
                    }
                    if let Some(client) = entry.client.clone() {
                        client.list_channels().await?;
                    }
                    self.poll(name, Duration::ZERO).await?;
                }
                if self.event_counts() == before && self.in_flight().is_empty() {
                    return Ok(());
                }
                continue;
            };
            if Instant::now() >= deadline {
                let detail = busy
                    .iter()
                    .map(|(a, b, s, h)| format!("{a} -> {b}: {s} sent, {h} handled"))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(self.timeout(&format!("quiescence ({detail})")));
            }
            // Wait for the lagging receiver's next event.
            let after = self.last_seq(&to)?;
            self.poll_wait(&to, after, Duration::from_millis(200))
                .await?;
        }
    }

    /// Events seen per node (a change means something happened).
    fn event_counts(&self) -> Vec<usize> {
        self.nodes.values().map(|e| e.history.len()).collect()
    }

    /// Penalty transactions on the ledger for a named channel.
    pub async fn penalties(&self, channel: &str) -> Result<Vec<Hash32>, HarnessError> {
        let id = self.channel(channel)?.id;
        Ok(self
            .chain
            .transactions(Some(id))
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))?
            .into_iter()
            .filter(|t| t.tx.kind.name() == "penalty")
            .map(|t| t.txid)
            .collect())
    }

    /// Wait until the ledger holds a penalty for a named channel.
    pub async fn wait_penalty(&mut self, channel: &str) -> Result<Hash32, HarnessError> {
        let deadline = Instant::now() + DEADLINE;
        let mut after = 0;
        loop {
            if let Some(txid) = self.penalties(channel).await?.first() {
                return Ok(*txid);
            }
            if Instant::now() >= deadline {
                return Err(self.timeout(&format!("a penalty on the ledger for channel {channel}")));
            }
            let events = self
                .chain
                .events_after(after, Duration::from_millis(500))
                .await
                .map_err(|e| HarnessError::Chain(e.to_string()))?;
            if let Some(last) = events.last() {
                after = last.seq();
            }
        }
    }

    /// Wallet balance of a node on the ledger (spendable).
    pub async fn wallet_balance(&self, node: &str) -> Result<u64, HarnessError> {
        let wallet = self.info(node)?.wallet()?;
        self.chain
            .balance(wallet)
            .await
            .map(|b| b.spendable)
            .map_err(|e| HarnessError::Chain(e.to_string()))
    }

    /// Check the end-of-scenario invariants.
    pub async fn check_invariants(&mut self, allow_penalties: bool) -> Result<(), HarnessError> {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in &names {
            let _ = self.poll(name, Duration::ZERO).await;
        }
        crate::invariants::check(self, allow_penalties).await
    }

    /// What the invariants look at, per node.
    pub(crate) fn node_records(&self) -> Vec<NodeRecord> {
        self.nodes
            .iter()
            .map(|(name, e)| NodeRecord {
                name: name.clone(),
                history: e.history.clone(),
                stale_at_start: e.stale_at_start.clone(),
            })
            .collect()
    }

    /// Every node's events in order, one line each (`bob#2 17 {...}`), without times and with
    /// backup directories left out: the same for the same seed and schedule.
    pub fn event_log(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, entry) in &self.nodes {
            for (incarnation, e) in &entry.history {
                let kind = match &e.kind {
                    EventKind::BackupWritten { step, .. } => format!("backup written {step:?}"),
                    // How a connection ended (closed, reset) depends on timing, not on the run.
                    EventKind::PeerDisconnected { peer, .. } => format!("disconnected {peer}"),
                    other => serde_json::to_string(other).unwrap_or_else(|_| describe(other)),
                };
                out.push(format!("{name}#{incarnation} {} {kind}", e.seq));
            }
        }
        out
    }

    /// A merged cross-node timeline of steps and protocol events.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let mut all = self.steps.clone();
        for (name, entry) in &self.nodes {
            for (incarnation, e) in &entry.history {
                all.push(TimelineEntry {
                    at_ms: e.at_ms,
                    who: format!("{name}#{incarnation}"),
                    what: describe(&e.kind),
                });
            }
        }
        all.sort_by_key(|t| t.at_ms);
        all
    }

    /// Stop every node and the chain.
    pub async fn shutdown_all(&mut self) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            if self.entry(&name).is_ok_and(|e| e.runtime.is_some()) {
                let _ = self.stop(&name).await;
            }
        }
    }
}

/// The node is held at a step now (a `Held` with no `Released` after it).
fn is_held(events: &[NodeEvent]) -> bool {
    events
        .iter()
        .rev()
        .find_map(|e| match e.kind {
            EventKind::Held { .. } => Some(true),
            EventKind::Released { .. } => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

/// A node's events and the channels that were Stale at each start, for the invariants.
#[derive(Debug, Clone)]
pub(crate) struct NodeRecord {
    pub name: String,
    pub history: Vec<(u32, NodeEvent)>,
    pub stale_at_start: BTreeMap<u32, Vec<Hash32>>,
}

/// `state` matches `want`: a state name (`"Stale"`, `"ChannelReady"`, `"Closed"`), optionally
/// with flags in parentheses as the node prints them (`"Closed(0x1)"`).
pub fn state_matches(state: &ChannelState, want: &str) -> bool {
    if want.contains('(') {
        state.to_string() == want
    } else {
        state.name() == want
    }
}

/// One line describing an event.
pub fn describe(kind: &EventKind) -> String {
    let short = |h: &Hash32| format!("{}", h).chars().take(10).collect::<String>();
    match kind {
        EventKind::MessageSent {
            msg_type,
            channel_id,
            local,
            remote,
            ..
        } => format!(
            "sent {msg_type}{} (L{local} R{remote})",
            channel_id
                .map(|c| format!(" on {}", short(&c)))
                .unwrap_or_default()
        ),
        EventKind::MessageReceived {
            msg_type,
            channel_id,
            local,
            remote,
            ..
        } => format!(
            "received {msg_type}{} (L{local} R{remote})",
            channel_id
                .map(|c| format!(" on {}", short(&c)))
                .unwrap_or_default()
        ),
        EventKind::StateChanged {
            channel_id,
            from,
            to,
        } => {
            format!("{} {from} -> {to}", short(channel_id))
        }
        EventKind::AuditPassed {
            channel_id,
            policy,
            local,
            remote,
            peer_local,
            peer_remote,
        } => format!(
            "audit PASSED ({policy}) on {}: ours L{local} R{remote}, peer L{peer_local} R{peer_remote}",
            short(channel_id)
        ),
        EventKind::AuditFailed {
            channel_id,
            policy,
            reason,
            ..
        } => {
            format!("audit FAILED ({policy}) on {}: {reason}", short(channel_id))
        }
        EventKind::TxBroadcast {
            kind,
            accepted,
            reject_reason,
            ..
        } => format!(
            "broadcast {kind} {}",
            if *accepted {
                "accepted".to_string()
            } else {
                format!("REJECTED: {}", reject_reason.clone().unwrap_or_default())
            }
        ),
        EventKind::Persisted {
            channel_id,
            local,
            remote,
        } => {
            format!("persisted {} (L{local} R{remote})", short(channel_id))
        }
        EventKind::Started { pubkey } => format!("started as {}", short_key(pubkey)),
        EventKind::PeerConnected { peer, inbound } => format!(
            "connected {} {}",
            if *inbound { "from" } else { "to" },
            short_key(peer)
        ),
        EventKind::PeerDisconnected { peer, reason } => {
            format!("disconnected from {} ({reason})", short_key(peer))
        }
        EventKind::MessageIgnored {
            msg_type,
            channel_id,
            reason,
            ..
        } => format!(
            "IGNORED {msg_type}{}: {reason}",
            channel_id
                .map(|c| format!(" on {}", short(&c)))
                .unwrap_or_default()
        ),
        EventKind::PaymentUpdated {
            payment_hash,
            status,
            reason,
        } => format!(
            "payment {} {status}{}",
            short(payment_hash),
            reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        EventKind::Held { step } => format!("HELD at {step}"),
        EventKind::Released { step } => format!("released from {step}"),
        EventKind::BackupWritten { dir, step } => match step {
            Some(step) => format!("backup written to {dir} at {step}"),
            None => format!("backup written to {dir}"),
        },
        EventKind::Error {
            channel_id,
            message,
        } => format!(
            "ERROR{}: {message}",
            channel_id
                .map(|c| format!(" on {}", short(&c)))
                .unwrap_or_default()
        ),
    }
}

fn short_key(key: &Pubkey) -> String {
    format!("{key}").chars().take(10).collect()
}
