//! Step control: hold a node right after a named protocol step (`sent:CommitmentSigned`), wait
//! until it is held, release it. While a node is held its core processes nothing, so its store
//! is exactly that step's state: the moment a mid-payment backup is taken.

use std::time::Duration;

use dlp_node_api::{EventKind, NodeEvent};

use super::Network;
use crate::error::HarnessError;

impl Network {
    /// Hold a node after a step (optionally on one channel, at its `nth` occurrence).
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
        let entry = self.entry_mut(node)?;
        entry.hold_armed_at = armed_at;
        entry.hold_pending = true;
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
        self.client(node)?.release().await?;
        self.entry_mut(node)?.hold_pending = false;
        Ok(())
    }

    /// A hold was armed in the node's current run and not released yet.
    pub(super) fn hold_pending(&self, node: &str) -> Result<bool, HarnessError> {
        Ok(self.entry(node)?.hold_pending)
    }

    /// True when the node's current run is held at a step.
    pub(super) fn is_held(&self, node: &str) -> Result<bool, HarnessError> {
        Ok(held_now(&self.entry(node)?.events))
    }
}

/// Held now: a `Held` with no `Released` after it.
fn held_now(events: &[NodeEvent]) -> bool {
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
