//! Nodes coming and going: add (create, start, fund), start, stop cleanly, crash, and stop
//! everything at the end. Each start begins a new run of the node, with its own event log and
//! the list of channels that were Stale when it started (what passive silence is checked on).

use std::collections::BTreeMap;
use std::time::Duration;

use dlp_chain::Hash32;
use dlp_node_api::ChannelState;

use super::{Network, NodeEntry};
use crate::client::NodeClient;
use crate::driver::{AuditSettings, BackupSettings, ForwardingSettings, NodeBuild, NodeSpec};
use crate::error::HarnessError;
use crate::limits::WALLET_FUNDS;
use crate::restore_outcome::StartedOn;

/// How long a clean stop waits for the node's view of its store before stopping it anyway.
const STOP_VIEW_WITHIN: Duration = Duration::from_secs(2);

impl Network {
    /// Add a node: the driver creates its home from its spec, it starts, its wallet is funded.
    pub async fn add_node(
        &mut self,
        name: &str,
        audit: AuditSettings,
        backups: BackupSettings,
        forwarding: ForwardingSettings,
        build: NodeBuild,
    ) -> Result<(), HarnessError> {
        if self.nodes.contains_key(name) {
            return Err(HarnessError::Setup(format!("node {name:?} exists already")));
        }
        let spec = NodeSpec {
            name: name.to_string(),
            backend: self.backend,
            seed: self.seed,
            audit,
            chain_url: self.chain_url.clone(),
            home: self.run_dir.join(name),
            backups,
            forwarding,
            build,
        };
        self.driver.create_node(&spec).await?;
        self.nodes.insert(
            name.to_string(),
            NodeEntry {
                spec,
                handle: None,
                client: None,
                info: None,
                events: Vec::new(),
                run: 0,
                stale_at_start: BTreeMap::new(),
                history: Vec::new(),
                hold_armed_at: 0,
                hold_pending: false,
                pinned: false,
                paused: false,
                last_view: None,
                store_check: None,
            },
        );
        self.start(name).await?;
        let wallet = self.info(name)?.wallet_key().map_err(HarnessError::Setup)?;
        self.chain
            .fund(wallet, WALLET_FUNDS)
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))?;
        Ok(())
    }

    /// Start a stopped node (a new run).
    pub async fn start(&mut self, name: &str) -> Result<(), HarnessError> {
        self.start_judged(name).await.map(|_| ())
    }

    /// [`start`](Self::start), saying which store the node came up on when a killed restore
    /// preceded it (`None` otherwise).
    pub async fn start_judged(&mut self, name: &str) -> Result<Option<StartedOn>, HarnessError> {
        let entry = self.entry(name)?;
        if entry.handle.is_some() {
            return Err(HarnessError::node(name, "is already running"));
        }
        let spec = entry.spec.clone();
        let handle = self.driver.start_node(&spec).await?;
        let client = NodeClient::new(name, handle.rpc_addr());
        let info = client.node_info().await?;
        let stale: Vec<Hash32> = client
            .list_channels()
            .await?
            .into_iter()
            .filter(|c| c.state == ChannelState::Stale)
            .map(|c| c.channel_id)
            .collect();
        let entry = self.entry_mut(name)?;
        entry.handle = Some(handle);
        entry.client = Some(client);
        entry.info = Some(info);
        entry.events.clear();
        entry.hold_armed_at = 0;
        entry.hold_pending = false;
        entry.pinned = false;
        entry.paused = false;
        entry.run += 1;
        let run = entry.run;
        entry.stale_at_start.insert(run, stale);
        self.judge_store_after_killed_restore(name).await
    }

    /// Swap a stopped node's build, keeping its home (LND's backwards-compatibility test, done
    /// declaratively): its config is rewritten in the keys the new build reads, and its next
    /// start runs the new build on the store the old one wrote.
    pub async fn upgrade(&mut self, name: &str, build: NodeBuild) -> Result<(), HarnessError> {
        if self.is_running(name) {
            return Err(HarnessError::node(
                name,
                "is running: stop it before swapping its build (an upgrade keeps the home of a \
                 stopped node)",
            ));
        }
        let mut spec = self.entry(name)?.spec.clone();
        spec.build = build;
        self.driver.reconfigure_node(&spec).await?;
        self.entry_mut(name)?.spec = spec;
        Ok(())
    }

    /// [`upgrade`](Self::upgrade) to the build named `version` (`versions.toml`, or `current`).
    pub async fn upgrade_to(&mut self, name: &str, version: &str) -> Result<(), HarnessError> {
        let build = NodeBuild::resolve(Some(version))?;
        self.upgrade(name, build).await
    }

    /// The build a node runs (`current` for this one).
    pub fn build_of(&self, name: &str) -> Result<&NodeBuild, HarnessError> {
        Ok(&self.entry(name)?.spec.build)
    }

    /// Ask a running node's `node_info` now: it must answer, with the key it started with.
    pub async fn check_node_info(&mut self, name: &str) -> Result<(), HarnessError> {
        let answer = self.client(name)?.node_info().await?;
        let known = self.pubkey(name)?;
        if answer.node_key().map_err(HarnessError::Setup)? != known {
            return Err(HarnessError::Expectation(format!(
                "{name}: node_info answered with key {}, but it started as {known}",
                answer.pubkey
            )));
        }
        Ok(())
    }

    /// Stop a node cleanly (after collecting its last events). A paused node is refused: it
    /// cannot stop cleanly until resumed.
    pub async fn stop(&mut self, name: &str) -> Result<(), HarnessError> {
        self.refuse_paused(name, "a clean stop")?;
        let _ = self.poll(name, Duration::ZERO).await;
        // What its store held, for a killed restore that may follow. Best effort and bounded: a
        // node that does not answer soon (held at a step, say) is stopped all the same, and a
        // `crash_restore` after it then says its old store is unknown.
        let view = match self.is_running(name) {
            true => tokio::time::timeout(STOP_VIEW_WITHIN, self.store_view(name))
                .await
                .ok()
                .and_then(Result::ok),
            false => None,
        };
        let entry = self.entry_mut(name)?;
        entry.last_view = view;
        entry.client = None;
        match entry.handle.take() {
            Some(handle) => handle.stop().await,
            None => Err(HarnessError::node(name, "is not running")),
        }
    }

    /// Kill a node (SIGKILL for processes), paused or not: a paused node dies frozen, without
    /// running again (its events are those fetched before it was paused).
    pub async fn crash(&mut self, name: &str) -> Result<(), HarnessError> {
        let _ = self.poll(name, Duration::ZERO).await;
        let entry = self.entry_mut(name)?;
        entry.last_view = None;
        entry.client = None;
        entry.paused = false;
        match entry.handle.take() {
            Some(handle) => {
                handle.crash().await;
                Ok(())
            }
            None => Err(HarnessError::node(name, "is not running")),
        }
    }

    /// Stop every running node (the chain stops with the driver). A paused node is resumed
    /// first: a frozen process does not act on SIGTERM until it is thawed.
    pub async fn shutdown_all(&mut self) {
        let mut stopping = tokio::task::JoinSet::new();
        for name in self.node_names() {
            if self.is_paused(&name) && self.resume(&name).await.is_err() {
                // It cannot be thawed: end it as it is.
                let _ = self.crash(&name).await;
                continue;
            }
            if !self.is_running(&name) {
                continue;
            }
            let _ = self.poll(&name, Duration::ZERO).await;
            if let Ok(entry) = self.entry_mut(&name) {
                entry.client = None;
                if let Some(handle) = entry.handle.take() {
                    // Every node stops at once: a container's stop and removal take a few
                    // hundred milliseconds each, and nothing orders them at the end of a run.
                    stopping.spawn(async move {
                        if let Err(e) = handle.stop().await {
                            tracing::warn!(node = %name, error = %e, "stopping at teardown");
                        }
                    });
                }
            }
        }
        while stopping.join_next().await.is_some() {}
    }
}
