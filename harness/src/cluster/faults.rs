//! Faults a node suffers without stopping: a pause freezes it where it stands (a SIGSTOPped
//! process, a paused container) until it is resumed. Its sockets stay open and its peers see a
//! silent node, not a closed connection; nothing in it runs, its RPC included.
//!
//! So the cluster never asks a paused node anything: its events are fetched once more just
//! before it freezes and then not again until it resumes (every poll skips it: the invariants'
//! final look, quiescence, a stop's last look), its RPC client is refused with
//! [`HarnessError::Paused`] naming it, and a wait that idles on its events fails at once with
//! the same error instead of waiting out the deadline. Quiescence counts the directions into
//! and out of a paused node as frozen, not in flight (`quiescence.rs`). A paused node is
//! crashed as it is (SIGKILL ends a stopped process), but stopped cleanly only once resumed (a
//! stopped process does not act on SIGTERM until SIGCONT): `shutdown_all` resumes it first,
//! [`Network::stop`] refuses.

use std::time::Duration;

use super::Network;
use crate::error::HarnessError;

impl Network {
    /// Freeze a running node where it stands (the driver must offer pausing).
    pub async fn pause(&mut self, node: &str) -> Result<(), HarnessError> {
        if self.is_paused(node) {
            return Err(HarnessError::node(node, "is paused already"));
        }
        if !self.is_running(node) {
            return Err(HarnessError::node(node, "is not running"));
        }
        // Its last events before it freezes: nothing can be fetched from it afterwards.
        self.poll(node, Duration::ZERO).await?;
        let entry = self.entry_mut(node)?;
        let handle = entry
            .handle
            .as_ref()
            .ok_or_else(|| HarnessError::node(node, "is not running"))?;
        handle.pause().await?;
        entry.paused = true;
        Ok(())
    }

    /// Thaw a paused node; it goes on from where it stood (the same run).
    pub async fn resume(&mut self, node: &str) -> Result<(), HarnessError> {
        let entry = self.entry_mut(node)?;
        if !entry.paused {
            return Err(HarnessError::node(node, "is not paused"));
        }
        let handle = entry
            .handle
            .as_ref()
            .ok_or_else(|| HarnessError::node(node, "is not running"))?;
        handle.resume().await?;
        entry.paused = false;
        Ok(())
    }

    /// True while the node is paused.
    pub fn is_paused(&self, node: &str) -> bool {
        self.nodes.get(node).is_some_and(|e| e.paused)
    }

    /// [`HarnessError::Paused`] if `node` is paused: `what` needs it to answer.
    pub(super) fn refuse_paused(&self, node: &str, what: &str) -> Result<(), HarnessError> {
        if self.is_paused(node) {
            Err(HarnessError::Paused {
                node: node.to_string(),
                what: what.to_string(),
            })
        } else {
            Ok(())
        }
    }
}
