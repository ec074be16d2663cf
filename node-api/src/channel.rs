//! Channels and peers as the node reports them: Fiber's [`ChannelState`] (names and flag
//! bits), one channel of `list_channels` ([`ChannelInfo`]), one peer of `list_peers`
//! ([`PeerInfo`]).
//!
//! [`ChannelState`]'s serde form is Fiber's RPC shape, `{"state_name": "...", "state_flags":
//! N}` (flags omitted for flagless states); the node's channel records store it the same way.

use std::fmt;

use dlp_chain::{Hash32, OutPoint, Pubkey, hex_u64};
use serde::{Deserialize, Serialize};

/// Flag bits of the flagged states, with Fiber's values.
pub mod flags {
    /// `NegotiatingFunding` / `CollaboratingFundingTx` / `SigningCommitment` /
    /// `AwaitingTxSignatures`: who has sent their part.
    pub const OUR_INIT_SENT: u32 = 1;
    pub const THEIR_INIT_SENT: u32 = 2;
    /// `AwaitingChannelReady`.
    pub const OUR_CHANNEL_READY: u32 = 1;
    pub const THEIR_CHANNEL_READY: u32 = 2;
    /// `ShuttingDown`.
    pub const OUR_SHUTDOWN_SENT: u32 = 1;
    pub const THEIR_SHUTDOWN_SENT: u32 = 2;
    pub const AWAITING_PENDING_TLCS: u32 = 3;
    pub const DROPPING_PENDING: u32 = 4;
    pub const WAITING_COMMITMENT_CONFIRMATION: u32 = 8;
    /// `Closed`.
    pub const COOPERATIVE: u32 = 1;
    pub const UNCOOPERATIVE_LOCAL: u32 = 2;
    pub const ABANDONED: u32 = 4;
    pub const FUNDING_ABORTED: u32 = 8;
    pub const UNCOOPERATIVE_REMOTE: u32 = 16;
    pub const WAITING_ONCHAIN_SETTLEMENT: u32 = 32;
}

/// Fiber's `ChannelState`, with `Stale` appended last as in Fiber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "state_name", content = "state_flags")]
pub enum ChannelState {
    NegotiatingFunding(u32),
    CollaboratingFundingTx(u32),
    SigningCommitment(u32),
    AwaitingTxSignatures(u32),
    AwaitingChannelReady(u32),
    ChannelReady,
    ShuttingDown(u32),
    Closed(u32),
    /// Set by restore: "our copy of this channel may be old". See DESIGN.md.
    Stale,
}

impl ChannelState {
    /// Fiber's state name.
    pub fn name(&self) -> &'static str {
        match self {
            ChannelState::NegotiatingFunding(_) => "NegotiatingFunding",
            ChannelState::CollaboratingFundingTx(_) => "CollaboratingFundingTx",
            ChannelState::SigningCommitment(_) => "SigningCommitment",
            ChannelState::AwaitingTxSignatures(_) => "AwaitingTxSignatures",
            ChannelState::AwaitingChannelReady(_) => "AwaitingChannelReady",
            ChannelState::ChannelReady => "ChannelReady",
            ChannelState::ShuttingDown(_) => "ShuttingDown",
            ChannelState::Closed(_) => "Closed",
            ChannelState::Stale => "Stale",
        }
    }

    /// True for the states restore must mark `Stale`: `ChannelReady` and any `ShuttingDown`.
    /// Funding-phase and `Closed` channels keep their state (nothing revocable exists yet, or
    /// nothing is left to protect).
    pub fn becomes_stale_on_restore(&self) -> bool {
        matches!(
            self,
            ChannelState::ChannelReady | ChannelState::ShuttingDown(_)
        )
    }
}

impl fmt::Display for ChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelState::NegotiatingFunding(b)
            | ChannelState::CollaboratingFundingTx(b)
            | ChannelState::SigningCommitment(b)
            | ChannelState::AwaitingTxSignatures(b)
            | ChannelState::AwaitingChannelReady(b)
            | ChannelState::ShuttingDown(b)
            | ChannelState::Closed(b) => write!(f, "{}({b:#x})", self.name()),
            ChannelState::ChannelReady | ChannelState::Stale => f.write_str(self.name()),
        }
    }
}

/// A connected peer, as `list_peers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub pubkey: Pubkey,
    pub address: String,
    pub inbound: bool,
}

/// A pending TLC as shown by `list_channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlcInfo {
    #[serde(with = "hex_u64")]
    pub id: u64,
    /// `offered` (by us) or `received`.
    pub direction: String,
    #[serde(with = "hex_u64")]
    pub amount: u64,
    pub payment_hash: Hash32,
    #[serde(with = "hex_u64")]
    pub expiry: u64,
}

/// One channel as shown by `list_channels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub channel_id: Hash32,
    pub pubkey: Pubkey,
    pub state: ChannelState,
    #[serde(with = "hex_u64")]
    pub local_balance: u64,
    #[serde(with = "hex_u64")]
    pub remote_balance: u64,
    pub pending_tlcs: Vec<TlcInfo>,
    #[serde(with = "hex_u64")]
    pub local_commitment_number: u64,
    #[serde(with = "hex_u64")]
    pub remote_commitment_number: u64,
    pub is_opener: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding_outpoint: Option<OutPoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_serialises_in_fibers_shape() {
        let json = serde_json::to_value(ChannelState::ShuttingDown(flags::AWAITING_PENDING_TLCS))
            .expect("json");
        assert_eq!(
            json,
            serde_json::json!({"state_name": "ShuttingDown", "state_flags": 3})
        );
        let json = serde_json::to_value(ChannelState::Stale).expect("json");
        assert_eq!(json, serde_json::json!({"state_name": "Stale"}));
        assert_eq!(
            ChannelState::Closed(flags::COOPERATIVE).to_string(),
            "Closed(0x1)"
        );
        assert_eq!(ChannelState::ChannelReady.to_string(), "ChannelReady");
    }

    #[test]
    fn only_ready_and_shutting_down_become_stale() {
        use ChannelState::*;
        let stale: Vec<_> = [
            NegotiatingFunding(1),
            CollaboratingFundingTx(1),
            SigningCommitment(3),
            AwaitingTxSignatures(1),
            AwaitingChannelReady(3),
            ChannelReady,
            ShuttingDown(1),
            ShuttingDown(8),
            Closed(1),
            Stale,
        ]
        .into_iter()
        .filter(ChannelState::becomes_stale_on_restore)
        .collect();
        assert_eq!(stale, [ChannelReady, ShuttingDown(1), ShuttingDown(8)]);
    }
}
