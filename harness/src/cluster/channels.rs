//! Channels by the scenario's names: open one (funding mined, both ends ChannelReady, its
//! announcement known to every node that can hear of it), look at a node's view of it, wait
//! for a state, shut it down.

use dlp_chain::Hash32;
use dlp_node_api::{ChannelInfo, ChannelState, EventKind, TxKindName};

use super::{ChannelEntry, Idle, Network};
use crate::error::HarnessError;

impl Network {
    /// Open a channel `from` -> `to` funded with `amount`, mine its funding, wait until both
    /// ends are ChannelReady and the channel's announcement has reached every node that can
    /// hear of it (`gossip`); remember it as `name`.
    pub async fn open_channel(
        &mut self,
        name: &str,
        from: &str,
        to: &str,
        amount: u64,
    ) -> Result<Hash32, HarnessError> {
        let (after_a, after_b) = (self.last_seq(from)?, self.last_seq(to)?);
        let mut before = std::collections::BTreeMap::new();
        for node in self.node_names() {
            if self.is_running(&node) {
                before.insert(node.clone(), self.last_seq(&node)?);
            }
        }
        let peer = self.pubkey(to)?;
        self.client(from)?.open_channel(&peer, amount).await?;
        self.wait_event(from, after_a, "the funding broadcast", |k| {
            matches!(
                k,
                EventKind::TxBroadcast {
                    kind: TxKindName::Funding,
                    accepted: true,
                    ..
                }
            )
        })
        .await?;
        self.mine(1).await?;
        let ready = self
            .wait_event(from, after_a, &format!("{from} ChannelReady"), |k| {
                // A new channel's first ChannelReady: not a Stale channel resuming meanwhile.
                matches!(
                    k,
                    EventKind::StateChanged {
                        from: ChannelState::AwaitingChannelReady(_),
                        to: ChannelState::ChannelReady,
                        ..
                    }
                )
            })
            .await?;
        let EventKind::StateChanged { channel_id, .. } = ready.kind else {
            return Err(HarnessError::node(from, "ChannelReady without a channel"));
        };
        self.wait_event(to, after_b, &format!("{to} ChannelReady"), |k| {
            matches!(k, EventKind::StateChanged { channel_id: id, to: ChannelState::ChannelReady, .. } if *id == channel_id)
        })
        .await?;
        self.wait_announced(channel_id, from, &before).await?;
        self.channels.insert(
            name.to_string(),
            ChannelEntry {
                from: from.to_string(),
                to: to.to_string(),
                id: channel_id,
            },
        );
        Ok(channel_id)
    }

    /// A node's view of a named channel.
    pub async fn channel_info(
        &self,
        node: &str,
        channel: &str,
    ) -> Result<ChannelInfo, HarnessError> {
        let id = self.channel(channel)?.id;
        self.client(node)?
            .list_channels()
            .await?
            .into_iter()
            .find(|c| c.channel_id == id)
            .ok_or_else(|| HarnessError::node(node, format!("does not list channel {channel}")))
    }

    /// Wait until a node lists `channel` in state `want` (compared by name and flags as given).
    pub async fn wait_state(
        &mut self,
        node: &str,
        channel: &str,
        want: &str,
    ) -> Result<(), HarnessError> {
        let wait = self.wait_until(format!("{node}: channel {channel} in state {want}"));
        loop {
            let info = self.channel_info(node, channel).await?;
            if state_matches(&info.state, want) {
                return Ok(());
            }
            let seen = format!("it is {}", info.state);
            self.not_yet(&wait, Some(seen), Idle::NodeEvents(node.to_string()))
                .await?;
        }
    }

    /// Wait until `node`'s local balance on `channel` is `local` with no TLC pending.
    pub async fn wait_balance(
        &mut self,
        node: &str,
        channel: &str,
        local: u64,
    ) -> Result<(), HarnessError> {
        let wait = self.wait_until(format!(
            "{node}: local balance {local} on {channel} with no pending TLC"
        ));
        loop {
            let info = self.channel_info(node, channel).await?;
            if info.local_balance == local && info.pending_tlcs.is_empty() {
                return Ok(());
            }
            let seen = format!(
                "local balance {} with {} pending TLCs",
                info.local_balance,
                info.pending_tlcs.len()
            );
            self.not_yet(&wait, Some(seen), Idle::NodeEvents(node.to_string()))
                .await?;
        }
    }

    /// Shut a channel down from `node`: `Ok(Err(refusal))` when the node refused.
    pub async fn shutdown(
        &mut self,
        node: &str,
        channel: &str,
        force: bool,
    ) -> Result<Result<(), String>, HarnessError> {
        let id = self.channel(channel)?.id;
        Ok(self
            .client(node)?
            .shutdown_channel(&id, force)
            .await?
            .map(|_| ()))
    }
}

impl Network {
    /// Wait until `node` lists exactly `count` channels that are not closed (only those with
    /// `peer`, named by the key it had at its start, if given), each matching `state` if given.
    pub async fn wait_channels(
        &mut self,
        node: &str,
        peer: Option<&str>,
        count: u64,
        state: Option<&str>,
    ) -> Result<(), HarnessError> {
        let key = peer.map(|p| self.pubkey(p)).transpose()?;
        let with = peer.map(|p| format!(" with {p}")).unwrap_or_default();
        let all = state.map(|s| format!(", each {s}")).unwrap_or_default();
        let wait = self.wait_until(format!(
            "{node}: exactly {count} channels{with} that are not closed{all}"
        ));
        loop {
            let listed = self.client(node)?.open_channels_with(key.as_ref()).await?;
            let fits = listed
                .iter()
                .all(|c| state.is_none_or(|s| state_matches(&c.state, s)));
            if listed.len() as u64 == count && fits {
                return Ok(());
            }
            let seen: Vec<String> = listed
                .iter()
                .map(|c| format!("{} {}", short(&c.channel_id), c.state))
                .collect();
            let seen = format!("{} listed: [{}]", listed.len(), seen.join(", "));
            self.not_yet(&wait, Some(seen), Idle::NodeEvents(node.to_string()))
                .await?;
        }
    }
}

/// A channel id as the timeline shows it.
fn short(id: &Hash32) -> String {
    format!("{id}").chars().take(10).collect()
}

/// `state` matches `want`: a state name (`"Stale"`, `"ChannelReady"`, `"Closed"`), optionally
/// with flags in parentheses as the node prints them (`"Closed(0x1)"`).
pub fn state_matches(state: &ChannelState, want: &str) -> bool {
    if want.contains('(') {
        state.to_string() == want
    } else {
        state.name() == want
    }
}
