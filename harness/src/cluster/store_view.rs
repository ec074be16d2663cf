//! What a node's store holds, seen two ways, so the harness can say which store a node runs on
//! and whether a refused restore touched anything:
//!
//! - [`StoreView`]: what the node itself reports after it starts (its keys, and every channel's
//!   state, commitment numbers, balances and pending TLCs, through `node_info` and
//!   `list_channels`): two starts on the same store give the same view, on any node that speaks
//!   the RPC;
//! - [`HomeSnapshot`]: the bytes of every file of a stopped node's home (a digest each), but the
//!   launcher's logs and the lock file, which change without the state changing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use dlp_node_api::{ChannelInfo, ChannelState, NodeInfo};
use sha2::{Digest, Sha256};

use crate::driver::dlp_node::VOLATILE_HOME_FILES;
use crate::error::HarnessError;

/// One channel as a store view compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelView {
    pub id: String,
    pub state: ChannelState,
    pub local_number: u64,
    pub remote_number: u64,
    pub local_balance: u64,
    pub remote_balance: u64,
    pub pending_tlcs: usize,
}

impl fmt::Display for ChannelView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} L{} R{} balance {}/{} tlcs {}",
            short(&self.id),
            self.state,
            self.local_number,
            self.remote_number,
            self.local_balance,
            self.remote_balance,
            self.pending_tlcs
        )
    }
}

fn short(id: &str) -> &str {
    id.get(..10).unwrap_or(id)
}

/// A node's keys and channels as it reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreView {
    pub node_key: String,
    pub wallet_key: String,
    /// By channel id.
    pub channels: Vec<ChannelView>,
}

impl StoreView {
    pub fn new(info: &NodeInfo, channels: &[ChannelInfo]) -> Self {
        let mut channels: Vec<ChannelView> = channels
            .iter()
            .map(|c| ChannelView {
                id: c.channel_id.to_string(),
                state: c.state,
                local_number: c.local_commitment_number,
                remote_number: c.remote_commitment_number,
                local_balance: c.local_balance,
                remote_balance: c.remote_balance,
                pending_tlcs: c.pending_tlcs.len(),
            })
            .collect();
        channels.sort_by(|a, b| a.id.cmp(&b.id));
        Self {
            node_key: info.pubkey.clone(),
            wallet_key: info.wallet_pubkey.clone(),
            channels,
        }
    }

    /// How `self` differs from `other`, one item per difference (empty: equal).
    pub fn differences(&self, other: &StoreView) -> Vec<String> {
        let mut out = Vec::new();
        if self.node_key != other.node_key {
            out.push(format!(
                "node key {} instead of {}",
                short(&self.node_key),
                short(&other.node_key)
            ));
        }
        if self.wallet_key != other.wallet_key {
            out.push(format!(
                "wallet key {} instead of {}",
                short(&self.wallet_key),
                short(&other.wallet_key)
            ));
        }
        let ours: BTreeMap<&str, &ChannelView> =
            self.channels.iter().map(|c| (c.id.as_str(), c)).collect();
        let theirs: BTreeMap<&str, &ChannelView> =
            other.channels.iter().map(|c| (c.id.as_str(), c)).collect();
        for (id, c) in &ours {
            match theirs.get(id) {
                None => out.push(format!("an extra channel {c}")),
                Some(t) if t != c => out.push(format!("{c} instead of {t}")),
                Some(_) => {}
            }
        }
        for (id, t) in &theirs {
            if !ours.contains_key(id) {
                out.push(format!("no channel {}", short(&t.id)));
            }
        }
        out
    }
}

impl fmt::Display for StoreView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}: ", short(&self.node_key))?;
        if self.channels.is_empty() {
            return f.write_str("no channels");
        }
        let channels: Vec<String> = self.channels.iter().map(ToString::to_string).collect();
        f.write_str(&channels.join("; "))
    }
}

/// Every file and directory of a home, relative, with a SHA-256 of each file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeSnapshot {
    entries: BTreeMap<String, Option<[u8; 32]>>,
}

impl HomeSnapshot {
    /// Read `home` (a stopped node's), leaving out [`VOLATILE_HOME_FILES`] at its top.
    pub fn take(home: &Path) -> Result<Self, HarnessError> {
        let mut entries = BTreeMap::new();
        let mut stack = vec![home.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let listing = std::fs::read_dir(&dir).map_err(|e| HarnessError::io(&dir, e))?;
            for entry in listing {
                let entry = entry.map_err(|e| HarnessError::io(&dir, e))?;
                let path = entry.path();
                let rel = path
                    .strip_prefix(home)
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if VOLATILE_HOME_FILES.contains(&rel.as_str()) {
                    continue;
                }
                let kind = entry.file_type().map_err(|e| HarnessError::io(&path, e))?;
                if kind.is_dir() {
                    entries.insert(rel, None);
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).map_err(|e| HarnessError::io(&path, e))?;
                    entries.insert(rel, Some(Sha256::digest(&bytes).into()));
                }
            }
        }
        Ok(Self { entries })
    }

    /// What changed from `before` to `self`: added, removed and changed paths (empty: the same).
    pub fn changes_since(&self, before: &HomeSnapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (path, digest) in &self.entries {
            match before.entries.get(path) {
                None => out.push(format!("{path} appeared")),
                Some(old) if old != digest => out.push(format!("{path} changed")),
                Some(_) => {}
            }
        }
        for path in before.entries.keys() {
            if !self.entries.contains_key(path) {
                out.push(format!("{path} disappeared"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_every_change_but_the_volatile_files() {
        let home = tempfile::tempdir().expect("test step");
        let root = home.path();
        std::fs::create_dir_all(root.join("fiber/store")).expect("test step");
        std::fs::write(root.join("fiber/store/data.sqlite"), b"one").expect("test step");
        std::fs::write(root.join("node.log"), b"log").expect("test step");
        let before = HomeSnapshot::take(root).expect("test step");
        std::fs::write(root.join("node.log"), b"more log").expect("test step");
        std::fs::write(root.join("node.lock"), b"1234").expect("test step");
        assert!(
            HomeSnapshot::take(root)
                .expect("test step")
                .changes_since(&before)
                .is_empty()
        );
        std::fs::write(root.join("fiber/store/data.sqlite"), b"two").expect("test step");
        std::fs::create_dir(root.join("fiber/store.restoring.1")).expect("test step");
        std::fs::remove_file(root.join("node.log")).expect("test step");
        assert_eq!(
            HomeSnapshot::take(root)
                .expect("test step")
                .changes_since(&before),
            [
                "fiber/store.restoring.1 appeared",
                "fiber/store/data.sqlite changed"
            ]
        );
    }
}
