//! A sweep workload (a scenario file with `[sweep] node = "..."`) and the scenario generated
//! for each of its backup points: the workload with the node's policy set, a backup armed at
//! the point (before the steps, or right after the `open_channel` step of a channel opened
//! mid-workload), then restore (of the peers too, from backups of their latest state, with
//! `restore_peers = true`), the peers dialling the node, and quiescence.

use std::collections::BTreeMap;
use std::path::Path;

use dlp_node_api::AuditPolicy;

use crate::capability::Capability;
use crate::error::HarnessError;
use crate::scenario::{StepFormat, VerbFacts};
use crate::steps::{self, Scenario, ScenarioFile, Step};

use super::BackupPoint;
use super::interleaving::{self, Interleaving};

pub(super) const POINT_BACKUP: &str = "sweep_point";

/// A sweep workload: a scenario prefix and the node under test, and the interleaving its
/// runs pin (empty until a discovery recorded one: see `interleaving.rs`).
#[derive(Debug, Clone)]
pub struct Workload {
    pub scenario: Scenario,
    pub node: String,
    pub order: Interleaving,
}

impl Workload {
    /// Load a workload file (a scenario with a `[sweep]` table).
    pub fn load(path: &Path) -> Result<Self, HarnessError> {
        let scenario = Scenario::load(path)?;
        let node = scenario
            .file
            .sweep
            .as_ref()
            .map(|s| s.get_ref().node.clone())
            .ok_or_else(|| HarnessError::Invalid {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: "not a sweep workload: add a [sweep] table naming the node under test \
                          (node = \"bob\")"
                    .into(),
            })?;
        // Points are counted in the node's first run; a workload that restarts it would
        // shift them (and armed steps do not survive a restart).
        for (index, step) in scenario.file.steps.iter().enumerate() {
            let restarts = step
                .get_ref()
                .facts()
                .lifecycle
                .is_some_and(|(n, l)| n == node && l.changes_run());
            if restarts {
                return Err(scenario.invalid_at_step(
                    index,
                    format!(
                        "{}: a sweep workload may not stop, start or restore its node under test \
                         ({node}); the sweep restores it itself after the workload",
                        step.get_ref().verb()
                    ),
                ));
            }
        }
        Ok(Self {
            scenario,
            node,
            order: Interleaving::new(),
        })
    }

    /// The workload with `order` pinned on every run of it.
    pub fn pinned(mut self, order: Interleaving) -> Self {
        self.order = order;
        self
    }

    pub fn name(&self) -> &str {
        &self.scenario.name
    }

    /// Refuse a workload the driver cannot sweep, before anything starts: what its own steps
    /// and the invariants need, and what the backup every point arms at its step needs
    /// (`backup_at`: step control), named at the `[sweep]` table.
    pub fn check_capabilities(&self, offered: &[Capability]) -> Result<(), HarnessError> {
        self.scenario.check_capabilities(offered)?;
        let armed = Step::BackupAt(steps::backups::BackupAt {
            node: self.node.clone(),
            step: String::new(),
            channel: None,
            nth: 1,
            name: POINT_BACKUP.into(),
        });
        match armed.facts().needs.iter().find(|c| !offered.contains(c)) {
            None => Ok(()),
            Some(missing) => Err(self.scenario.invalid_at(
                self.scenario
                    .file
                    .sweep
                    .as_ref()
                    .map_or(0, |s| s.span().start),
                format!(
                    "sweep: every point backs {} up at its step (backup_at), which needs \
                     {missing}; the driver does not offer it",
                    self.node
                ),
            )),
        }
    }

    /// The node's channels, those opened before the steps and those an `open_channel` step
    /// opens: name -> peer.
    pub fn channels(&self) -> BTreeMap<String, String> {
        let file = &self.scenario.file;
        let listed = file
            .channels
            .iter()
            .map(|c| c.get_ref())
            .map(|c| (&c.name, &c.from, &c.to));
        let opened = self
            .scenario
            .openings()
            .iter()
            .map(|o| (&o.name, &o.from, &o.to));
        listed
            .chain(opened)
            .filter_map(|(name, from, to)| {
                if *from == self.node {
                    Some((name.clone(), to.clone()))
                } else if *to == self.node {
                    Some((name.clone(), from.clone()))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The index of the step that opens `channel`, if a step does (`None`: opened before the
    /// steps).
    pub fn opened_at(&self, channel: &str) -> Option<usize> {
        self.scenario
            .openings()
            .iter()
            .find(|o| o.name == channel)
            .map(|o| o.step)
    }

    /// Whether the node's peers are restored too (`[sweep] restore_peers = true`).
    pub fn restores_peers(&self) -> bool {
        self.scenario
            .file
            .sweep
            .as_ref()
            .is_some_and(|s| s.get_ref().restore_peers)
    }

    /// The node's peers, each once, in name order.
    pub fn peers(&self) -> Vec<String> {
        let mut peers: Vec<String> = self.channels().into_values().collect();
        peers.sort();
        peers.dedup();
        peers
    }
}

/// The backup each peer takes of its latest state when the workload restores peers too.
pub(super) fn peer_backup(peer: &str) -> String {
    format!("sweep_peer_{peer}")
}

/// The generated scenario for one point: the workload with the node's policy set, a backup
/// armed at the point, then restore, the peers dialling the node, and quiescence.
pub(super) fn point_scenario(
    workload: &Workload,
    policy: AuditPolicy,
    point: &BackupPoint,
) -> ScenarioFile {
    let mut file = workload.scenario.file.clone();
    file.sweep = None;
    file.topology = None;
    let node = workload.node.clone();
    if let Some(decl) = file.nodes.get_mut(&node) {
        decl.audit_policy = Some(policy);
    }
    if workload.restores_peers() {
        // Restored peers audit too: under the same policy (and so the same mutual-Stale
        // behaviour) as the node.
        for peer in workload.peers() {
            if let Some(decl) = file.nodes.get_mut(&peer) {
                decl.audit_policy = Some(policy);
            }
        }
    }
    file.description = format!(
        "Sweep of {} (node {node}, policy {policy}), backup point {}: {}. Generated by \
         `dlp-harness sweep`.",
        workload.name(),
        point.index,
        point.label()
    );
    let spanned = |s: Step| toml::Spanned::new(0..0, s);
    let arm = spanned(Step::BackupAt(steps::backups::BackupAt {
        node: node.clone(),
        step: point.step.clone(),
        channel: Some(point.channel.clone()),
        nth: point.nth,
        name: POINT_BACKUP.into(),
    }));
    // Armed before the steps, or right after the step that opens the point's channel, where
    // the discovery counts that channel's steps from; quiet after every opening of one of the
    // node's channels, as in the discovery.
    // The interleaving is pinned at the same place as the discovery recorded it: after
    // setup, quiet.
    let node_channels = workload.channels();
    let mut steps = vec![spanned(Step::WaitQuiescent(
        steps::network::WaitQuiescent {},
    ))];
    steps.extend(
        interleaving::pin_steps(&workload.order)
            .into_iter()
            .map(spanned),
    );
    if workload.opened_at(&point.channel).is_none() {
        steps.push(arm.clone());
    }
    for (index, step) in file.steps.iter().enumerate() {
        steps.push(step.clone());
        if let Some(name) = workload
            .scenario
            .openings()
            .iter()
            .find(|o| o.step == index)
            .map(|o| &o.name)
            && node_channels.contains_key(name)
        {
            steps.push(spanned(Step::WaitQuiescent(
                steps::network::WaitQuiescent {},
            )));
            if *name == point.channel {
                steps.push(arm.clone());
            }
        }
    }
    steps.push(spanned(Step::WaitQuiescent(
        steps::network::WaitQuiescent {},
    )));
    steps.extend(
        interleaving::unpin_steps(&workload.scenario, &workload.order)
            .into_iter()
            .map(spanned),
    );
    let peers = workload.peers();
    if workload.restores_peers() {
        for peer in &peers {
            steps.push(spanned(Step::Backup(steps::backups::Backup::of(
                peer,
                &peer_backup(peer),
            ))));
        }
    }
    steps.push(spanned(Step::Restore(steps::backups::Restore::of(
        &node,
        POINT_BACKUP,
    ))));
    if workload.restores_peers() {
        for peer in &peers {
            steps.push(spanned(Step::Restore(steps::backups::Restore::of(
                peer,
                &peer_backup(peer),
            ))));
        }
    }
    for peer in peers {
        steps.push(spanned(Step::Connect(steps::links::Connect {
            from: peer,
            to: node.clone(),
        })));
    }
    steps.push(spanned(Step::WaitQuiescent(
        steps::network::WaitQuiescent {},
    )));
    file.steps = steps;
    file
}
