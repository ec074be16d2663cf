//! What `node_info` answers.

use dlp_chain::Pubkey;
use serde::{Deserialize, Serialize};

/// Result of `node_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// dlp-node version.
    pub version: String,
    /// Node public key, compressed, hex (Fiber's node id).
    pub pubkey: String,
    /// `"rocksdb"` or `"sqlite"`.
    pub store_backend: String,
    /// Number of persisted channels, as a hex string.
    pub channel_count: String,
    /// Addresses `connect_peer` accepts for this node.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The wallet key (`ckb/key`), where closed-channel funds go.
    #[serde(default)]
    pub wallet_pubkey: String,
}

impl NodeInfo {
    /// The node key, parsed.
    pub fn node_key(&self) -> Result<Pubkey, String> {
        self.pubkey
            .parse()
            .map_err(|e| format!("bad pubkey {}: {e}", self.pubkey))
    }

    /// The wallet key, parsed.
    pub fn wallet_key(&self) -> Result<Pubkey, String> {
        self.wallet_pubkey
            .parse()
            .map_err(|e| format!("bad wallet key {}: {e}", self.wallet_pubkey))
    }
}
