//! Pinned input orders: make a node handle racing inputs (messages of different peers,
//! commands that change channels) in a given order (`dev_pin_order`), see where the pin stands,
//! end it. The inputs come by the scenario's names; they are resolved here to the node's keys
//! and channel ids. A pin lasts for the node's current run (a restart ends it).

use dlp_chain::{Hash32, Pubkey};
use dlp_node_api::{Naming, OrderStatus, OrderedInput};

use super::Network;
use crate::error::HarnessError;
use crate::pinned_input::PinnedInput;

impl Network {
    /// From now, `node` handles `inputs` in this order (an input that arrives before its turn
    /// waits). A channel named in an input must be known now.
    pub async fn pin_order(
        &mut self,
        node: &str,
        inputs: &[PinnedInput],
    ) -> Result<(), HarnessError> {
        let resolved = inputs
            .iter()
            .map(|input| self.resolve_input(input))
            .collect::<Result<Vec<_>, _>>()?;
        self.entry_mut(node)?.pinned = true;
        self.client(node)?.pin_order(resolved).await
    }

    /// End `node`'s pin: where it stood, in words, if it was not kept to the end (diverged,
    /// or inputs never handled).
    pub async fn unpin_order(&mut self, node: &str) -> Result<Option<String>, HarnessError> {
        let status = self.client(node)?.unpin_order().await?;
        self.entry_mut(node)?.pinned = false;
        Ok((!status.finished()).then(|| self.describe_pin(node, &status)))
    }

    /// Where every pinned node's pin stands, for a timeout's detail (none pinned: `None`).
    pub(super) async fn pins_in_words(&self) -> Option<String> {
        let mut parts = Vec::new();
        for (name, entry) in &self.nodes {
            if !entry.pinned || entry.paused {
                continue;
            }
            let Some(client) = entry.client.as_ref() else {
                continue;
            };
            match client.order_status().await {
                Ok(status) if status.pinned || status.diverged.is_some() => {
                    parts.push(self.describe_pin(name, &status));
                }
                Ok(_) => {}
                Err(e) => parts.push(format!("{name}'s pin: {e}")),
            }
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    fn describe_pin(&self, node: &str, status: &OrderStatus) -> String {
        let names = ClusterNames(self);
        if let Some(divergence) = &status.diverged {
            return format!(
                "{node}'s pinned order diverged {}",
                divergence.named(&names)
            );
        }
        let mut text = format!(
            "{node} handled {} of its {} pinned inputs",
            status.handled, status.total
        );
        if let Some(next) = &status.waiting_for {
            text.push_str(&format!(" and waits for {}", next.named(&names)));
        }
        if !status.parked.is_empty() {
            let parked: Vec<String> = status.parked.iter().map(|p| p.named(&names)).collect();
            text.push_str(&format!(", holding {} until then", parked.join(", ")));
        }
        text
    }

    fn resolve_input(&self, input: &PinnedInput) -> Result<OrderedInput, HarnessError> {
        Ok(match input {
            PinnedInput::Message {
                msg_type,
                from,
                channel,
            } => OrderedInput::Message {
                peer: self.pubkey(from)?,
                msg_type: msg_type.clone(),
                channel_id: channel
                    .as_deref()
                    .map(|c| self.channel(c).map(|c| c.id))
                    .transpose()?,
            },
            PinnedInput::Command(command) => OrderedInput::Command { command: *command },
        })
    }
}

/// The cluster's names for keys and channel ids (a node's or channel's short id when it has
/// none).
struct ClusterNames<'a>(&'a Network);

impl Naming for ClusterNames<'_> {
    fn channel(&self, id: &Hash32) -> String {
        self.0
            .channels
            .iter()
            .find(|(_, c)| c.id == *id)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| dlp_node_api::describe::short(&id.to_string()))
    }

    fn node(&self, key: &Pubkey) -> String {
        self.0
            .nodes
            .iter()
            .find(|(_, e)| e.info.as_ref().and_then(|i| i.node_key().ok()) == Some(*key))
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| dlp_node_api::describe::short(&key.to_string()))
    }
}
