//! What a judge may look at and do between the steps of a session: the sweep's judge (which
//! classifies a restored node against the oracle and the ledger) and the explorer (which
//! compares event logs and restarts a node whose backup was never written). They act through
//! steps, the scenario's own verbs, noted in the timeline and the run record like any step, and
//! they look through these typed views; neither reaches the network, a driver or a node's RPC
//! itself, so a judge sees exactly what a scenario could.

use dlp_chain::{Hash32, Pubkey, TxRecord};
use dlp_node_api::{ChannelInfo, EventKind, NodeEvent};

use super::Session;
use crate::cluster::{Idle, StoreView};
use crate::damage::{Applied, Damage};
use crate::error::HarnessError;
use crate::restore_outcome::{Digests, KillPoint, KilledRestore, RestoreOutcome, StartedOn};
use crate::scenario::StepFormat;
use crate::steps::Step;

impl Session<'_> {
    /// Run `step`, which is not one of the scenario's: the judge's own action, noted (with
    /// `why`) in the timeline and the run record. Its failure is the caller's to report.
    pub async fn act(&mut self, step: Step, why: &str) -> Result<(), HarnessError> {
        self.note(&format!("judge: {} ({why})", step.verb()));
        step.run(&mut self.net, &mut self.state).await
    }

    /// The id of a channel the scenario named (opened at setup or by a step so far).
    pub fn channel_id(&self, channel: &str) -> Result<Hash32, HarnessError> {
        Ok(self.net.channel(channel)?.id)
    }

    /// A node's public key (from its start: also while it is stopped).
    pub fn pubkey(&self, node: &str) -> Result<Pubkey, HarnessError> {
        self.net.pubkey(node)
    }

    /// A node's wallet key on the ledger.
    pub fn wallet_key(&self, node: &str) -> Result<Pubkey, HarnessError> {
        self.net.wallet_key(node)
    }

    /// Whether a node is running now.
    pub fn is_running(&self, node: &str) -> bool {
        self.net.is_running(node)
    }

    /// The events of a node's current run fetched so far (see [`fetch_events`]).
    ///
    /// [`fetch_events`]: Self::fetch_events
    pub fn events(&self, node: &str) -> Result<&[NodeEvent], HarnessError> {
        self.net.events(node)
    }

    /// Every event of every run of a node fetched so far, each with its run.
    pub fn history(&self, node: &str) -> Result<&[(u32, NodeEvent)], HarnessError> {
        self.net.history(node)
    }

    /// A node's current run (1 for its first start).
    pub fn run_of(&self, node: &str) -> Result<u32, HarnessError> {
        self.net.run_of(node)
    }

    /// The sequence number of a node's last event fetched so far.
    pub fn last_seq(&self, node: &str) -> Result<u64, HarnessError> {
        self.net.last_seq(node)
    }

    /// Every node's events in order, one line each, without times or paths: the same for the
    /// same seed and schedule.
    pub fn event_log(&self) -> Vec<String> {
        self.net.event_log()
    }

    /// Fetch what a node (or, with `None`, every running node) has published since the last
    /// fetch, without waiting.
    pub async fn fetch_events(&mut self, node: Option<&str>) -> Result<(), HarnessError> {
        match node {
            Some(node) => self
                .net
                .poll(node, std::time::Duration::ZERO)
                .await
                .map(drop),
            None => self.net.poll_all().await,
        }
    }

    /// Wait for an event of `node`'s current run matching `pred` (`what` names it in the
    /// timeout).
    pub async fn wait_event(
        &mut self,
        node: &str,
        what: &str,
        pred: impl Fn(&EventKind) -> bool,
    ) -> Result<NodeEvent, HarnessError> {
        self.net.wait_event(node, 0, what, pred).await
    }

    /// Every channel a node lists now (its `list_channels`).
    pub async fn list_channels(&self, node: &str) -> Result<Vec<ChannelInfo>, HarnessError> {
        self.net.client(node)?.list_channels().await
    }

    /// A node's view of a named channel now.
    pub async fn channel_info(
        &self,
        node: &str,
        channel: &str,
    ) -> Result<ChannelInfo, HarnessError> {
        self.net.channel_info(node, channel).await
    }

    /// The node and directory of a named backup (a `backup_at` one is awaited if its node is
    /// still in the run that armed it).
    pub async fn backup_dir(
        &mut self,
        backup: &str,
    ) -> Result<(String, std::path::PathBuf), HarnessError> {
        self.net.backup_dir(backup).await
    }

    /// Whether a named backup has been written by now, without waiting.
    pub fn backup_written_now(&self, backup: &str) -> Result<bool, HarnessError> {
        self.net.backup_written_now(backup)
    }

    /// What a running node reports of its store: keys, and each channel's state, numbers,
    /// balances and pending TLCs.
    pub async fn store_view(&self, node: &str) -> Result<StoreView, HarnessError> {
        self.net.store_view(node).await
    }

    /// Copy a named backup of `node` as `copy` (damage to the copy leaves the original as it
    /// was).
    pub async fn copy_backup(
        &mut self,
        node: &str,
        backup: &str,
        copy: &str,
    ) -> Result<std::path::PathBuf, HarnessError> {
        self.net.copy_backup(node, backup, copy).await
    }

    /// Take a backup made outside the run (a corpus backup) as `node`'s backup named `name`.
    pub fn adopt_backup(
        &mut self,
        node: &str,
        name: &str,
        from: &std::path::Path,
    ) -> Result<std::path::PathBuf, HarnessError> {
        self.net.adopt_backup(node, name, from)
    }

    /// Forget a copy and remove its files.
    pub fn drop_backup_copy(&mut self, copy: &str) {
        self.net.drop_backup_copy(copy)
    }

    /// Damage a named backup of `node`, drawing what is random from the run's seed and `label`;
    /// noted in the timeline like the `damage_backup` step.
    pub async fn damage_backup(
        &mut self,
        node: &str,
        backup: &str,
        damage: &Damage,
        with: Option<&str>,
        label: &str,
    ) -> Result<Applied, HarnessError> {
        self.net
            .damage_backup(node, backup, damage, with, Some(label))
            .await
    }

    /// Rewrite a named backup's manifest without content digests.
    pub async fn strip_digests(&mut self, node: &str, backup: &str) -> Result<(), HarnessError> {
        self.net.strip_digests(node, backup).await
    }

    /// Restore `node` from a named backup as the `restore` step does, and say how it ended
    /// instead of judging it: a refusal is checked to have left the home as it was (else an
    /// error) and the node is started again either way.
    pub async fn restore_outcome(
        &mut self,
        node: &str,
        backup: &str,
        digests: Digests,
    ) -> Result<RestoreOutcome, HarnessError> {
        self.note(&format!("judge: restore {node} from {backup:?}"));
        self.net.restore_with(node, backup, digests).await
    }

    /// Kill a restore of `node` from a named backup at `at`, as the `crash_restore` step does
    /// (noted), and say how it ended.
    pub async fn kill_restore(
        &mut self,
        node: &str,
        backup: &str,
        at: &KillPoint,
    ) -> Result<KilledRestore, HarnessError> {
        self.note(&format!(
            "judge: crash_restore {node} from {backup:?} at {at}"
        ));
        self.net.crash_restore(node, backup, at).await
    }

    /// Start a stopped node; after a killed restore, which store it came up on (a mixed or
    /// empty one is an error).
    pub async fn start_node(&mut self, node: &str) -> Result<Option<StartedOn>, HarnessError> {
        self.note(&format!("judge: start {node}"));
        self.net.start_judged(node).await
    }

    /// The ledger's height (its tip).
    pub async fn height(&self) -> Result<u64, HarnessError> {
        self.net.height().await
    }

    /// Every transaction on the ledger, in order.
    pub async fn transactions(&self) -> Result<Vec<TxRecord>, HarnessError> {
        self.net.transactions().await
    }

    /// Follow the ledger until `look` (given every transaction and the tip's height) finds
    /// what is awaited, mining the blocks it says are needed; `what` names it in the timeout.
    pub async fn follow_ledger<T>(
        &mut self,
        what: impl Into<String>,
        mut look: impl FnMut(&[TxRecord], u64) -> LedgerLook<T>,
    ) -> Result<T, HarnessError> {
        let wait = self.net.wait_until(what);
        loop {
            let txs = self.net.transactions().await?;
            let tip = self.net.height().await?;
            let seen = match look(&txs, tip) {
                LedgerLook::Done(found) => return Ok(found),
                LedgerLook::Mine { blocks, seen } => {
                    self.net.mine(blocks).await?;
                    seen
                }
                LedgerLook::Wait { seen } => seen,
            };
            self.net.not_yet(&wait, Some(seen), Idle::Ledger).await?;
        }
    }
}

/// What one look at the ledger found, for [`Session::follow_ledger`].
#[derive(Debug)]
pub enum LedgerLook<T> {
    /// What was awaited is there.
    Done(T),
    /// Not yet, and it needs blocks: mine this many, then look again (`seen` says what was
    /// seen, for the timeout).
    Mine { blocks: u64, seen: String },
    /// Not yet: look again at the ledger's next event.
    Wait { seen: String },
}
