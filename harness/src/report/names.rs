//! What events and ledger transactions carry, in words a reader knows: channels by the
//! scenario's names, keys by their nodes, transactions as `commitment ab #3 by bob`.

use std::collections::HashMap;

use dlp_chain::{Hash32, Pubkey, TxKind, TxRecord};
use dlp_node_api::{EventKind, Naming};

use super::load::RunData;

/// Names for what events and transactions carry: channels by id, nodes by key, backups by
/// their directory's name.
pub struct Names {
    channels: HashMap<String, String>,
    keys: HashMap<String, String>,
    backups: HashMap<std::ffi::OsString, String>,
}

impl Names {
    pub fn of(data: &RunData) -> Self {
        let channels = data
            .record
            .channels
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        let mut keys = HashMap::new();
        for n in &data.record.nodes {
            for key in [&n.pubkey, &n.wallet].into_iter().flatten() {
                keys.insert(key.clone(), n.name.clone());
            }
        }
        for node in &data.nodes {
            for run in &node.runs {
                for e in &run.events {
                    if let EventKind::Started { pubkey } = &e.kind {
                        keys.entry(pubkey.to_string())
                            .or_insert_with(|| node.name.clone());
                    }
                }
            }
        }
        // By the backup's own directory name: a container reports it under its path.
        let backups = data
            .record
            .backups
            .iter()
            .filter_map(|b| Some((b.dir.file_name()?.to_os_string(), b.name.clone())))
            .collect();
        Names {
            channels,
            keys,
            backups,
        }
    }

    /// A channel's name, else its id's first bytes.
    pub fn channel(&self, id: &Hash32) -> String {
        let id = id.to_string();
        self.channels
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.chars().take(10).collect())
    }

    /// A node's (or wallet's) name by key, else the key's first bytes.
    pub fn key(&self, key: &str) -> String {
        self.keys
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.chars().take(10).collect())
    }

    pub(super) fn node_of(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }
}

/// How the report's marks name what events carry (the words are the events' own).
impl Naming for Names {
    fn channel(&self, id: &Hash32) -> String {
        Names::channel(self, id)
    }

    fn node(&self, key: &Pubkey) -> String {
        self.key(&key.to_string())
    }

    /// `"before-payment"` for a backup the scenario named, else the directory's name.
    fn backup(&self, dir: &str) -> String {
        let file_name = std::path::Path::new(dir).file_name();
        match file_name.and_then(|f| self.backups.get(f)) {
            Some(name) => format!("\"{name}\""),
            None => file_name.map_or_else(|| dir.to_string(), |f| f.to_string_lossy().into_owned()),
        }
    }
}

pub(super) fn tx_class(kind: &TxKind) -> &'static str {
    match kind {
        TxKind::Penalty { .. } => "tx penalty",
        TxKind::Commitment { .. } => "tx commitment",
        TxKind::Faucet { .. } => "tx faucet",
        _ => "tx",
    }
}

/// `commitment ab #3 by bob`, `funding ab`, `faucet → alice`.
pub fn tx_label(t: &TxRecord, names: &Names) -> String {
    let ch = |c: &Hash32| names.channel(c);
    match &t.tx.kind {
        TxKind::Faucet { .. } => {
            let to: Vec<String> =
                t.tx.outputs
                    .iter()
                    .flat_map(|o| o.lock.parties())
                    .map(|k| names.key(&k.to_string()))
                    .collect();
            format!("faucet → {}", to.join(", "))
        }
        TxKind::Transfer => "transfer".into(),
        TxKind::Funding { channel_id } => format!("funding {}", ch(channel_id)),
        TxKind::Commitment {
            channel_id,
            holder,
            number,
        } => format!(
            "commitment {} #{number} by {}",
            ch(channel_id),
            names.key(&holder.to_string())
        ),
        TxKind::CooperativeClose { channel_id } => format!("cooperative close {}", ch(channel_id)),
        TxKind::Penalty { channel_id } => format!("PENALTY {}", ch(channel_id)),
        TxKind::Sweep { channel_id } => format!("sweep {}", ch(channel_id)),
    }
}
