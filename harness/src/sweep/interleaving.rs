//! The interleaving of a workload: per node, the order in which it handled the inputs that
//! race (its peers' messages, the commands that change channels), recorded from the discovery
//! run's events and pinned (`pin_order`) on every later run of the workload: the other
//! backends' discoveries and every point's rerun. So a concurrent workload (two payments in
//! flight through the node at once, both ends updating a channel together) reaches each of its
//! backup points again, exactly, and every backend sees the same run.
//!
//! Recorded from the arming point (after setup, quiet) to the end of the workload (quiet), for
//! every node of this build (a node of a named earlier version has no `dev_pin_order`), until
//! that node's first restart (a restart ends a pin). A channel opened by a step has no id yet
//! where the pin is set, so its inputs are pinned without `on <channel>` (a peer's messages come
//! in their own order; the channel only checks them).

use std::collections::BTreeMap;

use dlp_chain::{Hash32, Pubkey};
use dlp_node_api::EventKind;

use crate::error::HarnessError;
use crate::pinned_input::PinnedInput;
use crate::run::Session;
use crate::scenario::{Lifecycle, VerbFacts};
use crate::steps::holds::{PinOrder, UnpinOrder};
use crate::steps::{Scenario, Step};

/// Per node, its pinned inputs in order.
pub type Interleaving = BTreeMap<String, Vec<PinnedInput>>;

/// A recording in progress: where each pinnable node's events stood at the arming point (its
/// run and last sequence number), and the channels known there (the names a pin set there may
/// use).
pub(super) struct Recorder {
    from: BTreeMap<String, (u32, u64)>,
    channels: BTreeMap<Hash32, String>,
}

impl Recorder {
    /// Start at the arming point (the network quiet).
    pub(super) fn start(session: &Session<'_>, workload: &Scenario) -> Result<Self, HarnessError> {
        let mut from = BTreeMap::new();
        for node in pinned_nodes(workload) {
            if session.is_running(&node) {
                from.insert(
                    node.clone(),
                    (session.run_of(&node)?, session.last_seq(&node)?),
                );
            }
        }
        let channels = all_channels(workload)
            .into_iter()
            .filter_map(|name| session.channel_id(&name).ok().map(|id| (id, name)))
            .collect();
        Ok(Self { from, channels })
    }

    /// The inputs each node handled in its run of the start, after the start (the network
    /// quiet again; a restart ends a node's recording, as it ends a pin). Peers are named among
    /// every node of the workload that has started, channels among those known at the start.
    pub(super) fn finish(
        &self,
        session: &Session<'_>,
        workload: &Scenario,
    ) -> Result<Interleaving, HarnessError> {
        let nodes: BTreeMap<Pubkey, String> = workload
            .file
            .nodes
            .keys()
            .filter_map(|name| session.pubkey(name).ok().map(|key| (key, name.clone())))
            .collect();
        let mut order = Interleaving::new();
        for (node, (run, from)) in &self.from {
            let mut inputs = Vec::new();
            let events = session
                .history(node)?
                .iter()
                .filter(|(r, e)| r == run && e.seq > *from);
            for (_, event) in events {
                match &event.kind {
                    EventKind::MessageReceived {
                        peer,
                        msg_type,
                        channel_id,
                        ..
                    } => {
                        let from = nodes.get(peer).ok_or_else(|| {
                            HarnessError::Setup(format!(
                                "recording {node}'s input order: {msg_type} from {peer}, which \
                                 is no node of the workload"
                            ))
                        })?;
                        inputs.push(PinnedInput::Message {
                            msg_type: msg_type.clone(),
                            from: from.clone(),
                            channel: channel_id.and_then(|id| self.channels.get(&id).cloned()),
                        });
                    }
                    EventKind::CommandHandled { command } => {
                        inputs.push(PinnedInput::Command(*command));
                    }
                    _ => {}
                }
            }
            order.insert(node.clone(), inputs);
        }
        Ok(order)
    }
}

/// The nodes a pin applies to: those of this build.
fn pinned_nodes(workload: &Scenario) -> Vec<String> {
    workload
        .file
        .nodes
        .iter()
        .filter(|(_, decl)| decl.earlier_build().is_none())
        .map(|(name, _)| name.clone())
        .collect()
}

/// Every channel of the workload: listed (or a topology's), then opened by steps.
fn all_channels(workload: &Scenario) -> Vec<String> {
    let listed = workload
        .file
        .channels
        .iter()
        .map(|c| c.get_ref().name.clone());
    let opened = workload.openings().iter().map(|o| o.name.clone());
    listed.chain(opened).collect()
}

/// The steps that pin `order` at the arming point (nodes with nothing to pin get no step).
pub(super) fn pin_steps(order: &Interleaving) -> Vec<Step> {
    order
        .iter()
        .filter(|(_, inputs)| !inputs.is_empty())
        .map(|(node, inputs)| {
            Step::PinOrder(PinOrder {
                node: node.clone(),
                inputs: inputs.clone(),
            })
        })
        .collect()
}

/// The steps that end the pins after the workload, each failing if its pin was not kept: for
/// the pinned nodes whose run the workload does not end (a restart ended the pin already) and
/// that it does not leave paused (a paused node answers nothing).
pub(super) fn unpin_steps(workload: &Scenario, order: &Interleaving) -> Vec<Step> {
    order
        .iter()
        .filter(|(_, inputs)| !inputs.is_empty())
        .filter(|(node, _)| {
            let lifecycle: Vec<Lifecycle> = workload
                .file
                .steps
                .iter()
                .filter_map(|step| step.get_ref().facts().lifecycle)
                .filter(|(n, _)| *n == node.as_str())
                .map(|(_, l)| l)
                .collect();
            !lifecycle.iter().any(|l| l.changes_run())
                && lifecycle.last() != Some(&Lifecycle::Pause)
        })
        .map(|(node, _)| Step::UnpinOrder(UnpinOrder { node: node.clone() }))
        .collect()
}
