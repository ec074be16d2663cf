//! Quiescence: no message in flight between connected running nodes. For every connected pair,
//! the messages one sent on the current connection are compared with those the other handled
//! (both are events); equal both ways means nothing is in flight. No sleeps, a deadline, and
//! the counts on timeout.
//!
//! A paused node is not "running" here: the directions into and out of it are *frozen*, not in
//! flight. A message sent to it waits in its socket until it resumes, and one it sent just
//! before it froze may still sit in its own buffers, so neither can be awaited: quiescence
//! with a paused node says only that everything between the running nodes has been handled.
//! The frozen directions are named when a wait times out.

use dlp_chain::Pubkey;
use dlp_node_api::EventKind;

use super::{Idle, Network, NodeEntry};
use crate::error::HarnessError;

/// One direction with messages in flight: `from` sent `sent` on the connection, `to` handled
/// `handled` of them.
#[derive(Debug, Clone)]
struct InFlight {
    from: String,
    to: String,
    sent: usize,
    handled: usize,
}

impl Network {
    /// Every direction where the receiver has handled fewer messages than the sender sent on
    /// their current connection. Empty when the network is quiescent.
    fn in_flight(&self) -> Vec<InFlight> {
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
        // Paused nodes are left out: their directions are frozen (see the module docs).
        let running: Vec<(&String, &NodeEntry, Pubkey)> = self
            .nodes
            .iter()
            .filter(|(_, e)| e.handle.is_some() && !e.paused)
            .filter_map(|(n, e)| Some((n, e, e.info.as_ref()?.node_key().ok()?)))
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
                    out.push(InFlight {
                        from: (*a).clone(),
                        to: (*b).clone(),
                        sent,
                        handled,
                    });
                }
            }
        }
        out
    }

    /// Wait until no message is in flight between connected running nodes: every message a
    /// node sent on a live connection has been handled by its receiver, and every node has
    /// finished handling it (a node publishes `MessageReceived` before it sends its replies, so
    /// equal counts are confirmed by one round trip through each node's core: `list_channels`
    /// is answered only after the input being handled is done). Directions into and out of a
    /// paused node are frozen, not in flight: they are not awaited, and a paused node gets no
    /// round trip (see the module docs).
    pub async fn wait_quiescent(&mut self) -> Result<(), HarnessError> {
        let wait = self.wait_until("quiescence");
        loop {
            self.poll_all().await?;
            let busy = self.in_flight();
            if let Some(lagging) = busy.first() {
                let detail = busy
                    .iter()
                    .map(|f| {
                        format!(
                            "{} -> {}: {} sent, {} handled",
                            f.from, f.to, f.sent, f.handled
                        )
                    })
                    .chain(self.frozen())
                    .collect::<Vec<_>>()
                    .join("; ");
                // A pinned node holds inputs until their turn: at the deadline, say where.
                let detail = match wait.expired() {
                    true => match self.pins_in_words().await {
                        Some(pins) => format!("{detail}; {pins}"),
                        None => detail,
                    },
                    false => detail,
                };
                // Idle on the lagging receiver's next event.
                let idle = Idle::NodeEvents(lagging.to.clone());
                self.not_yet(&wait, Some(detail), idle).await?;
                continue;
            }
            let before = self.event_counts();
            for name in self.node_names() {
                if !self.is_running(&name) || self.is_paused(&name) || self.is_held(&name)? {
                    continue;
                }
                self.client(&name)?.list_channels().await?;
                self.poll(&name, std::time::Duration::ZERO).await?;
            }
            if self.event_counts() == before && self.in_flight().is_empty() {
                return Ok(());
            }
            // Something happened during the round trips: look again.
            let seen = Some("new events during the round trips".to_string());
            self.not_yet(&wait, seen, Idle::Immediately).await?;
        }
    }

    /// The paused nodes, as frozen directions (for a timeout's detail).
    fn frozen(&self) -> Option<String> {
        let paused: Vec<&str> = self
            .nodes
            .iter()
            .filter(|(_, e)| e.paused)
            .map(|(n, _)| n.as_str())
            .collect();
        (!paused.is_empty()).then(|| {
            format!(
                "frozen, not awaited: everything into and out of {} (paused)",
                paused.join(", ")
            )
        })
    }
}
