//! Every node's typed events, fetched from the node (`dev_events`, a long poll) and kept per
//! run: `bob#2` is bob's second run (after a restart or restore), whose event numbers start
//! again. The current run's events answer waits; the history of every run feeds the timeline,
//! the invariants and the determinism check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use dlp_chain::{Hash32, Pubkey};
use dlp_node_api::{EventKind, NodeEvent};

use super::{Idle, Network};
use crate::driver::AuditSettings;
use crate::error::HarnessError;

/// A node's events and the channels that were Stale at each start, for the invariants.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub name: String,
    /// Its node key (none if it never started).
    pub pubkey: Option<Pubkey>,
    /// Its audit settings (what its Stale channels may say: see `model::silence`).
    pub audit: AuditSettings,
    /// `(run, event)` for every run, in order.
    pub history: Vec<(u32, NodeEvent)>,
    /// Per run, the channels that were Stale when it started.
    pub stale_at_start: BTreeMap<u32, Vec<Hash32>>,
}

impl Network {
    /// The sequence number of a node's latest event in its current run (0: none yet).
    pub fn last_seq(&self, node: &str) -> Result<u64, HarnessError> {
        Ok(self.entry(node)?.events.last().map_or(0, |e| e.seq))
    }

    /// Fetch new events of a node (waiting up to `wait` for the first).
    pub async fn poll(&mut self, node: &str, wait: Duration) -> Result<usize, HarnessError> {
        let after = self.last_seq(node)?;
        self.poll_after(node, after, wait).await
    }

    /// Fetch the new events of every running node, without waiting (a paused node is skipped:
    /// see [`poll_after`](Self::poll_after)).
    pub async fn poll_all(&mut self) -> Result<(), HarnessError> {
        for name in self.node_names() {
            self.poll(&name, Duration::ZERO).await?;
        }
        Ok(())
    }

    /// Fetch events after `after` (waiting up to `wait` for the first). Paths in them are
    /// mapped to the harness's host (a driver may run the node under another file system).
    /// A stopped node has nothing to fetch, and a paused one is not asked (it would answer
    /// only once resumed): both give no events. A wait that needs a paused node's events fails
    /// in [`not_yet`](Self::not_yet) instead.
    pub(super) async fn poll_after(
        &mut self,
        node: &str,
        after: u64,
        wait: Duration,
    ) -> Result<usize, HarnessError> {
        let entry = self.entry(node)?;
        if entry.paused {
            return Ok(0);
        }
        let Some(client) = entry.client.clone() else {
            return Ok(0);
        };
        let fresh = client.events(after, wait).await?;
        let entry = self.entry_mut(node)?;
        let run = entry.run;
        let mut added = 0;
        for mut event in fresh {
            if entry
                .events
                .last()
                .is_some_and(|last| event.seq <= last.seq)
            {
                continue;
            }
            if let (EventKind::BackupWritten { dir, .. }, Some(handle)) =
                (&mut event.kind, &entry.handle)
            {
                *dir = handle.host_path(dir).display().to_string();
            }
            entry.history.push((run, event.clone()));
            entry.events.push(event);
            added += 1;
        }
        Ok(added)
    }

    /// Wait for an event of `node`'s current run with `seq > after` matching `pred`.
    pub async fn wait_event(
        &mut self,
        node: &str,
        after: u64,
        what: &str,
        pred: impl Fn(&EventKind) -> bool,
    ) -> Result<NodeEvent, HarnessError> {
        let wait = self.wait_until(format!("{node}: {what}"));
        loop {
            let found = self
                .entry(node)?
                .events
                .iter()
                .find(|e| e.seq > after && pred(&e.kind))
                .cloned();
            if let Some(event) = found {
                return Ok(event);
            }
            self.not_yet(&wait, None, Idle::NodeEvents(node.to_string()))
                .await?;
        }
    }

    /// A node's audit settings, as its spec says.
    pub fn audit_settings(&self, node: &str) -> Result<AuditSettings, HarnessError> {
        Ok(self.entry(node)?.spec.audit)
    }

    /// Events of a node's current run.
    pub fn events(&self, node: &str) -> Result<&[NodeEvent], HarnessError> {
        Ok(&self.entry(node)?.events)
    }

    /// Every event of every run of a node fetched so far, each with its run (1 for the first).
    pub fn history(&self, node: &str) -> Result<&[(u32, NodeEvent)], HarnessError> {
        Ok(&self.entry(node)?.history)
    }

    /// A node's current run (1 for its first start; a restart or restore begins the next).
    pub fn run_of(&self, node: &str) -> Result<u32, HarnessError> {
        Ok(self.entry(node)?.run)
    }

    /// What the invariants look at, per node.
    pub fn node_records(&self) -> Vec<NodeRecord> {
        self.nodes
            .iter()
            .map(|(name, e)| NodeRecord {
                name: name.clone(),
                pubkey: e.info.as_ref().and_then(|i| i.node_key().ok()),
                audit: e.spec.audit,
                history: e.history.clone(),
                stale_at_start: e.stale_at_start.clone(),
            })
            .collect()
    }

    /// The backup directory a `BackupWritten` event of `node`'s run `run` after `after`
    /// reported, if one matching `pred` is already in the history.
    pub(super) fn backup_written(
        &self,
        node: &str,
        run: u32,
        after: u64,
        pred: &dyn Fn(&EventKind) -> bool,
    ) -> Result<Option<PathBuf>, HarnessError> {
        Ok(self
            .entry(node)?
            .history
            .iter()
            .find_map(|(r, e)| match &e.kind {
                EventKind::BackupWritten { dir, .. }
                    if *r == run && e.seq > after && pred(&e.kind) =>
                {
                    Some(PathBuf::from(dir))
                }
                _ => None,
            }))
    }

    /// Every node's events in order, one line each (`bob#2 17 {...}`), without times and with
    /// backup directories left out: the same for the same seed and schedule.
    pub fn event_log(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, entry) in &self.nodes {
            for (run, e) in &entry.history {
                let kind = match &e.kind {
                    EventKind::BackupWritten {
                        step, automatic, ..
                    } => format!(
                        "backup written {step:?}{}",
                        if *automatic { " (automatic)" } else { "" }
                    ),
                    // How a connection ended (closed, reset) depends on timing, not on the run.
                    EventKind::PeerDisconnected { peer, .. } => format!("disconnected {peer}"),
                    other => serde_json::to_string(other).unwrap_or_else(|_| other.to_string()),
                };
                out.push(format!("{name}#{run} {} {kind}", e.seq));
            }
        }
        out
    }

    /// Events seen per node (a change means something happened).
    pub(super) fn event_counts(&self) -> Vec<usize> {
        self.nodes.values().map(|e| e.history.len()).collect()
    }
}
