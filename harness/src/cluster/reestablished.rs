//! A connection is usable when its channels have finished reestablishing. `connect` returns
//! once both ends saw the connection, but a channel carries no payment until each live end has
//! heard the other's `ReestablishChannel` (dlp-node refuses a payment over a channel that is
//! "reestablishing", as Fiber does). So a scenario that connects and pays at once raced the
//! reestablish: measured, 3 of 18 in-process runs of restore, connect, expect_audit, pay failed
//! with "no route ... is reestablishing". Channel openings wait for gossip for the same reason.
//!
//! Per channel between the pair, by the states both ends listed before the connect:
//! - both live (ChannelReady, ShuttingDown): until each end has heard the other's
//!   ReestablishChannel on this connection;
//! - one live, one Stale (restored): until the Stale end has audited the live end's numbers;
//!   if the audit passed, until the live end has heard the Stale end's answer (a failed audit
//!   never answers: the channel stays blocked, and that is the state the scenario goes on in);
//! - anything else (both Stale: nothing moves before the reveal timers; a channel one end does
//!   not know; an opening; a closed one): nothing to wait for. Nor when either node runs an
//!   earlier build (its wire may differ) or has a hold armed (it may stop in the middle of the
//!   reestablish, which is what such a scenario is about).

use std::time::Duration;

use dlp_chain::{Hash32, Pubkey};
use dlp_node_api::{ChannelState, EventKind, MessageName};

use super::Network;
use crate::driver::NodeBuild;
use crate::error::HarnessError;

/// The states of the channels between two nodes, as each end lists them: `(id, a's, b's)`.
type PairStates = Vec<(Hash32, Option<ChannelState>, Option<ChannelState>)>;

/// What a wait of `connect` for `node` to hear the peer's ReestablishChannel is called.
fn heard(node: &str, id: Hash32) -> String {
    format!("{node} hears the peer's ReestablishChannel on channel {id} after the connect")
}

fn live(state: Option<ChannelState>) -> bool {
    matches!(
        state,
        Some(ChannelState::ChannelReady | ChannelState::ShuttingDown(_))
    )
}

impl Network {
    /// `a` dials `b`; returns when both saw the connection and every channel between them has
    /// finished reestablishing (see the module docs).
    pub async fn connect_usable(&mut self, a: &str, b: &str) -> Result<(), HarnessError> {
        for node in [a, b] {
            // An earlier build may speak another wire (and list channels in another shape); a
            // node with a hold armed may stop in the middle of the reestablish, which is what
            // such a scenario is about: a plain connect.
            if !matches!(self.build_of(node)?, NodeBuild::Current) || self.hold_pending(node)? {
                return self.connect(a, b).await;
            }
        }
        let before = self.pair_states(a, b).await?;
        // Everything published so far is older than this connection.
        self.poll(a, Duration::ZERO).await?;
        self.poll(b, Duration::ZERO).await?;
        let after = (self.last_seq(a)?, self.last_seq(b)?);
        self.connect(a, b).await?;
        self.wait_reestablished((a, after.0), (b, after.1), &before)
            .await
    }

    /// The channels between `a` and `b` and their state on each end (both must answer).
    async fn pair_states(&self, a: &str, b: &str) -> Result<PairStates, HarnessError> {
        let (pa, pb) = (self.pubkey(a)?, self.pubkey(b)?);
        let on = |channels: Vec<dlp_node_api::ChannelInfo>, peer: Pubkey| {
            channels
                .into_iter()
                .filter(move |c| c.pubkey == peer)
                .map(|c| (c.channel_id, c.state))
        };
        let of_a: Vec<_> = on(self.client(a)?.list_channels().await?, pb).collect();
        let of_b: Vec<_> = on(self.client(b)?.list_channels().await?, pa).collect();
        let mut out: PairStates = of_a.iter().map(|(id, s)| (*id, Some(*s), None)).collect();
        for (id, state) in of_b {
            match out.iter_mut().find(|(known, _, _)| *known == id) {
                Some(entry) => entry.2 = Some(state),
                None => out.push((id, None, Some(state))),
            }
        }
        Ok(out)
    }

    /// Wait until every channel between `a` and `b` has finished reestablishing on the
    /// connection made after events `after_a` / `after_b` (see the module docs), given the
    /// states listed before the connect.
    async fn wait_reestablished(
        &mut self,
        (a, after_a): (&str, u64),
        (b, after_b): (&str, u64),
        before: &PairStates,
    ) -> Result<(), HarnessError> {
        for &(id, state_a, state_b) in before {
            let ends = [((a, after_a), state_a), ((b, after_b), state_b)];
            match (live(state_a), live(state_b)) {
                (true, true) => {
                    for ((node, after), _) in ends {
                        self.wait_heard(node, after, id, &heard(node, id)).await?;
                    }
                }
                (true, false) | (false, true) => {
                    let (((live_node, live_after), _), ((stale, stale_after), stale_state)) =
                        if live(state_a) {
                            (ends[0], ends[1])
                        } else {
                            (ends[1], ends[0])
                        };
                    if stale_state != Some(ChannelState::Stale) {
                        continue;
                    }
                    let audit = self
                        .wait_event(
                            stale,
                            stale_after,
                            &format!("{stale} audits channel {id} after the connect"),
                            |k| matches!(k, EventKind::Audit(audit) if audit.channel_id == id),
                        )
                        .await?;
                    if matches!(&audit.kind, EventKind::Audit(audit) if audit.passed()) {
                        self.wait_heard(live_node, live_after, id, &heard(live_node, id))
                            .await?;
                    }
                }
                (false, false) => {}
            }
        }
        Ok(())
    }

    /// Wait until `node` has heard the peer's ReestablishChannel on channel `id` after event
    /// `after` (0: in its current run); `what` names the wait in a timeout's message.
    pub async fn wait_heard(
        &mut self,
        node: &str,
        after: u64,
        id: Hash32,
        what: &str,
    ) -> Result<(), HarnessError> {
        self.wait_event(node, after, what, |k| {
            matches!(k, EventKind::MessageReceived {
                msg_type: MessageName::ReestablishChannel,
                channel_id,
                ..
            } if *channel_id == Some(id))
        })
        .await
        .map(|_| ())
    }
}
