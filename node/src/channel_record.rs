//! The persisted channel record, and the restore-time rule that marks channels `Stale`.
//!
//! Records live under Fiber's key prefix `0x00 ++ channel_id` (32-byte id). The value is a
//! version byte followed by the JSON body, so the format can evolve without guessing: a record
//! with a version this build does not know is an error, never silently skipped. The protocol
//! layer adds fields to [`ChannelRecord`]; new fields must be `#[serde(default)]` or come with a
//! version bump and a migration.
//!
//! [`ChannelState`] (Fiber's names and flag bits, serialised in Fiber's RPC shape) is the API
//! crate's: the record stores the same state `list_channels` shows.

use std::fmt;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

pub(crate) use dlp_node_api::channel::{ChannelState, flags};

use crate::store::{Store, StoreError, WriteBatch};

/// First byte of every channel record key.
pub(crate) const CHANNEL_RECORD_PREFIX: u8 = 0x00;
/// Current encoding version (first byte of every channel record value). 2: a TLC's onion is
/// an encrypted packet (`crate::onion`) and a pending failure keeps its whole reason.
pub(crate) const CHANNEL_RECORD_VERSION: u8 = 2;

/// A 32-byte channel id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub [u8; 32]);

impl fmt::Debug for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelId({self})")
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl Serialize for ChannelId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ChannelId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let digits = text.strip_prefix("0x").unwrap_or(&text);
        let bytes = hex::decode(digits).map_err(serde::de::Error::custom)?;
        let id: [u8; 32] = bytes.try_into().map_err(|v: Vec<u8>| {
            serde::de::Error::custom(format!("{} bytes, expected 32", v.len()))
        })?;
        Ok(ChannelId(id))
    }
}

/// One channel as persisted. The protocol layer fills in the rest (balances, TLCs, keys,
/// commitment signatures...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    pub channel_id: ChannelId,
    /// The peer's node public key, compressed, hex.
    pub peer_pubkey: String,
    pub state: ChannelState,
    /// Fiber's `local_commitment_number`: steps when we receive a RevokeAndAck.
    pub local_commitment_number: u64,
    /// Fiber's `remote_commitment_number`: steps when we send a RevokeAndAck.
    pub remote_commitment_number: u64,
    /// The state a restore replaced with `Stale`, so that a channel that was `ShuttingDown`
    /// can go back to finishing its close after a passed audit (a gap in Fiber).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_before_stale: Option<ChannelState>,
    /// The protocol state (keys, funding, balances, TLCs, commitments). Absent only in records
    /// written by the storage layer's own tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Box<crate::channel::ChannelData>>,
}

/// Why a channel record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("channel record key {key} is not 0x00 followed by a 32-byte channel id")]
    BadKey { key: String },
    #[error("channel record {channel}: empty value")]
    Empty { channel: String },
    #[error(
        "channel record {channel}: encoding version {found} is not supported (this build reads {CHANNEL_RECORD_VERSION})"
    )]
    UnknownVersion { channel: String, found: u8 },
    #[error("channel record {channel} holds the record of channel {inside}")]
    KeyMismatch { channel: String, inside: String },
    #[error("channel record {channel}: malformed body: {source}")]
    Malformed {
        channel: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChannelRecord {
    /// A record without protocol data: what the storage layer's tests and the store
    /// benchmark write (enough for a restore to validate it and mark it Stale).
    pub fn new(
        channel_id: ChannelId,
        peer_pubkey: String,
        state: ChannelState,
        local_commitment_number: u64,
        remote_commitment_number: u64,
    ) -> Self {
        Self {
            channel_id,
            peer_pubkey,
            state,
            local_commitment_number,
            remote_commitment_number,
            state_before_stale: None,
            data: None,
        }
    }

    /// The store key of a channel: `0x00 ++ channel_id`.
    pub(crate) fn key(id: &ChannelId) -> Vec<u8> {
        let mut key = Vec::with_capacity(33);
        key.push(CHANNEL_RECORD_PREFIX);
        key.extend_from_slice(&id.0);
        key
    }

    /// Encode as `version ++ json`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![CHANNEL_RECORD_VERSION];
        // Serialising plain data with string map keys cannot fail.
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out
    }

    /// Decode a value stored under `key`.
    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Self, RecordError> {
        let channel = match key {
            [CHANNEL_RECORD_PREFIX, id @ ..] if id.len() == 32 => format!("0x{}", hex::encode(id)),
            _ => {
                return Err(RecordError::BadKey {
                    key: format!("0x{}", hex::encode(key)),
                });
            }
        };
        let record: Self = match value.split_first() {
            None => return Err(RecordError::Empty { channel }),
            Some((&CHANNEL_RECORD_VERSION, body)) => {
                serde_json::from_slice(body).map_err(|source| RecordError::Malformed {
                    channel: channel.clone(),
                    source,
                })?
            }
            Some((&found, _)) => return Err(RecordError::UnknownVersion { channel, found }),
        };
        // The key names the channel: a record filed under another id is damaged, and loading
        // it would attach one channel's state to another's id.
        if key[1..] != record.channel_id.0 {
            return Err(RecordError::KeyMismatch {
                channel,
                inside: format!("0x{}", hex::encode(record.channel_id.0)),
            });
        }
        Ok(record)
    }

    /// Persist this record.
    pub fn save(&self, store: &dyn Store) -> Result<(), StoreError> {
        store.put(&Self::key(&self.channel_id), &self.encode())
    }

    /// Load one record, if present.
    pub fn load(store: &dyn Store, id: &ChannelId) -> Result<Option<Self>, RecordError> {
        let key = Self::key(id);
        store
            .get(&key)?
            .map(|value| Self::decode(&key, &value))
            .transpose()
    }

    /// Every channel record, in channel-id order. Any undecodable record is an error.
    pub fn load_all(store: &dyn Store) -> Result<Vec<Self>, RecordError> {
        let mut records = Vec::new();
        let mut failure = None;
        store.scan_prefix(
            &[CHANNEL_RECORD_PREFIX],
            &mut |key, value| match Self::decode(key, value) {
                Ok(record) => {
                    records.push(record);
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failure = Some(e);
                    ControlFlow::Break(())
                }
            },
        )?;
        match failure {
            Some(e) => Err(e),
            None => Ok(records),
        }
    }
}

/// A channel that `mark_channels_stale` (restore) changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleMark {
    pub channel_id: ChannelId,
    pub peer_pubkey: String,
    pub previous: ChannelState,
}

/// Mark every `ChannelReady` / `ShuttingDown(_)` channel `Stale` in one atomic batch, and
/// persist it (Fiber's #1333 was forgetting the persist), dropping the gossip graph in the same
/// batch. Returns what changed.
pub(crate) fn mark_channels_stale(store: &dyn Store) -> Result<Vec<StaleMark>, RecordError> {
    let mut batch = WriteBatch::new();
    let mut marks = Vec::new();
    for mut record in ChannelRecord::load_all(store)? {
        if record.state.becomes_stale_on_restore() {
            marks.push(StaleMark {
                channel_id: record.channel_id,
                peer_pubkey: record.peer_pubkey.clone(),
                previous: record.state,
            });
            record.state_before_stale = Some(record.state);
            record.state = ChannelState::Stale;
            batch.put(ChannelRecord::key(&record.channel_id), record.encode());
        }
    }
    // In the same batch, the gossip graph goes: it is the backup's old view of the network,
    // and the restored node rebuilds it from what its peers send (`crate::graph`).
    store.scan_prefix(&[crate::graph::GRAPH_CHANNEL_PREFIX], &mut |key, _| {
        batch.delete(key.to_vec());
        std::ops::ControlFlow::Continue(())
    })?;
    if !batch.is_empty() {
        store.write(&batch)?;
    }
    Ok(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: ChannelState) -> ChannelRecord {
        ChannelRecord {
            channel_id: ChannelId([9; 32]),
            peer_pubkey: "02ab".into(),
            state,
            local_commitment_number: 5,
            remote_commitment_number: 4,
            state_before_stale: None,
            data: None,
        }
    }

    #[test]
    fn record_round_trips_and_carries_its_version() {
        let rec = record(ChannelState::ChannelReady);
        let bytes = rec.encode();
        assert_eq!(bytes[0], CHANNEL_RECORD_VERSION);
        let back =
            ChannelRecord::decode(&ChannelRecord::key(&rec.channel_id), &bytes).expect("decode");
        assert_eq!(back, rec);
    }

    #[test]
    fn unknown_version_and_bad_keys_are_errors() {
        let rec = record(ChannelState::ChannelReady);
        let key = ChannelRecord::key(&rec.channel_id);
        let mut bytes = rec.encode();
        bytes[0] = 99;
        let err = ChannelRecord::decode(&key, &bytes).expect_err("must fail");
        assert!(
            matches!(err, RecordError::UnknownVersion { found: 99, .. }),
            "{err}"
        );
        let err = ChannelRecord::decode(&[0, 1, 2], &rec.encode()).expect_err("must fail");
        assert!(matches!(err, RecordError::BadKey { .. }), "{err}");
    }
}
