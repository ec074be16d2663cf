//! Gossip settling: after a channel opens, every node that can hear of it has it in its graph
//! before the scenario goes on, so a routed payment in the next step does not race the
//! announcement (a real network settles the same way, just slower).
//!
//! "Can hear of it" is the connected component of the channel's ends over the live connections
//! the nodes' own events show (PeerConnected not followed by PeerDisconnected), through nodes
//! that relay: running, not paused, not held at a step. A node outside it (stopped, cut off,
//! frozen) learns of the channel on its next connection, from its peers' sync; it is not
//! awaited here. A node of a build without gossip (the pre-routing dialect) neither relays nor
//! keeps a graph: it is not awaited either.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use dlp_chain::{Hash32, Pubkey};
use dlp_node_api::EventKind;

use super::{Idle, Network};
use crate::error::HarnessError;

impl Network {
    /// The nodes that relay now, and who each is connected to, by name.
    fn relaying_links(&self) -> Result<BTreeMap<String, BTreeSet<String>>, HarnessError> {
        let mut by_key: BTreeMap<Pubkey, String> = BTreeMap::new();
        let mut relaying = Vec::new();
        for name in self.node_names() {
            if !self.is_running(&name)
                || self.is_paused(&name)
                || self.is_held(&name)?
                || !self.gossips(&name)?
            {
                continue;
            }
            if let Ok(key) = self.pubkey(&name) {
                by_key.insert(key, name.clone());
                relaying.push(name);
            }
        }
        let mut links: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for name in relaying {
            let mut peers = BTreeSet::new();
            for event in self.events(&name)? {
                match &event.kind {
                    EventKind::PeerConnected { peer, .. } => {
                        peers.insert(*peer);
                    }
                    EventKind::PeerDisconnected { peer, .. } => {
                        peers.remove(peer);
                    }
                    _ => {}
                }
            }
            let names = peers
                .iter()
                .filter_map(|k| by_key.get(k).cloned())
                .collect();
            links.insert(name, names);
        }
        Ok(links)
    }

    /// Whether a node's build gossips (one of the pre-routing dialect has no graph at all).
    fn gossips(&self, name: &str) -> Result<bool, HarnessError> {
        Ok(self.build_of(name)?.dialect() != crate::versions::Dialect::PreRouting)
    }

    /// Wait until every node that can hear of channel `id` (see the module docs) has added it
    /// to its graph with both ends' policies (without them no route uses it). `after` is each
    /// node's last event before the channel was opened.
    pub(super) async fn wait_announced(
        &mut self,
        id: Hash32,
        origin: &str,
        after: &BTreeMap<String, u64>,
    ) -> Result<(), HarnessError> {
        let links = self.relaying_links()?;
        let mut reached = BTreeSet::new();
        let mut queue = VecDeque::from([origin.to_string()]);
        while let Some(node) = queue.pop_front() {
            if !links.contains_key(&node) || !reached.insert(node.clone()) {
                continue;
            }
            for (other, peers) in &links {
                // A link counts from either side's events (one may not have seen it yet).
                if links[&node].contains(other) || peers.contains(&node) {
                    queue.push_back(other.clone());
                }
            }
        }
        for node in reached {
            let since = after.get(&node).copied().unwrap_or(0);
            let wait = self.wait_until(format!(
                "{node}: channel {id} in its graph with both ends' policies"
            ));
            loop {
                let (mut added, mut policies) = (false, BTreeSet::new());
                for event in self.events(&node)?.iter().filter(|e| e.seq > since) {
                    match &event.kind {
                        EventKind::GraphChannelAdded { channel_id, .. } if *channel_id == id => {
                            added = true;
                        }
                        EventKind::GraphChannelUpdated {
                            channel_id, node, ..
                        } if *channel_id == id => {
                            policies.insert(*node);
                        }
                        _ => {}
                    }
                }
                if added && policies.len() >= 2 {
                    break;
                }
                let seen = format!(
                    "announcement {}, policies of {} end(s)",
                    if added { "held" } else { "not yet" },
                    policies.len()
                );
                self.not_yet(&wait, Some(seen), Idle::NodeEvents(node.clone()))
                    .await?;
            }
        }
        Ok(())
    }
}
