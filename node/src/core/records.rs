//! Every record the node reads when it starts, decoded exactly as the core decodes it.
//!
//! Restore runs [`RecordCheck`] over every entry of a backup before anything moves, so a backup
//! the node would refuse to start on (or, worse, start on with a wrong value) is refused at
//! restore time with the key that is wrong, instead of after the old store was replaced. The
//! core's own loaders use the same decoders ([`decode_hash_keyed`], [`ChannelRecord::decode`]),
//! so "restore accepted it" and "the node can start on it" cannot drift apart.
//!
//! Beyond "it parses", the checks use what the node knows about its own records: a record's key
//! must name the record it holds (a channel's id, an invoice's or payment's hash), and a stored
//! preimage must hash to the payment hash it is filed under.

use dlp_chain::Hash32;
use serde::de::DeserializeOwned;

use crate::channel_record::{CHANNEL_RECORD_PREFIX, CHANNEL_RECORD_VERSION, ChannelRecord};
use crate::graph::{GRAPH_CHANNEL_PREFIX, GraphChannel};

use super::{
    INVOICE_PREFIX, Invoice, PAYMENT_PREFIX, PEER_SECRET_PREFIX, PREIMAGE_PREFIX, Payment,
    RNG_COUNTER_KEY,
};

/// A record that does not decode, named by its kind and key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} record under key 0x{key} does not decode: {detail}")]
pub struct BadRecord {
    pub(crate) what: &'static str,
    /// The key, hex (at most its first 64 bytes).
    pub(crate) key: String,
    pub(crate) detail: String,
}

/// What a full check counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecordSummary {
    pub(crate) channels: u64,
    /// Of those, records of an earlier version that restore migrates.
    pub(crate) migrated_channels: u64,
    pub(crate) peer_secrets: u64,
    pub(crate) invoices: u64,
    pub(crate) payments: u64,
    pub(crate) preimages: u64,
    /// Channels of the gossip graph (a restore drops them; see `graph`).
    pub(crate) graph_channels: u64,
    pub(crate) rng_counter: bool,
    /// Entries under prefixes this node never reads (kept, not judged).
    pub(crate) unknown: u64,
}

/// Checks entries one at a time (the stores hand them out in key order while they verify the
/// database), counting what it saw.
#[derive(Debug, Default)]
pub(crate) struct RecordCheck {
    summary: RecordSummary,
}

impl RecordCheck {
    /// Decode one entry as the core would.
    pub(crate) fn check(&mut self, key: &[u8], value: &[u8]) -> Result<(), BadRecord> {
        let bad = |what: &'static str, detail: String| BadRecord {
            what,
            key: hex::encode(&key[..key.len().min(64)]),
            detail,
        };
        let s = &mut self.summary;
        match key.first().copied() {
            Some(CHANNEL_RECORD_PREFIX) => {
                // A record of an earlier version passes when it migrates (restore brings it
                // forward in the staging copy; see `crate::migrate`).
                match value.first() {
                    Some(&version) if version != CHANNEL_RECORD_VERSION => {
                        crate::migrate::check_channel_record(key, value)
                            .map_err(|e| bad("channel", e.to_string()))?;
                        s.migrated_channels += 1;
                    }
                    _ => {
                        ChannelRecord::decode(key, value)
                            .map_err(|e| bad("channel", e.to_string()))?;
                    }
                }
                s.channels += 1;
            }
            Some(PEER_SECRET_PREFIX) => {
                if key.len() != 1 + 32 + 8 {
                    return Err(bad(
                        "peer secret",
                        format!(
                            "key is {} bytes, expected 0x10 ++ channel ++ be64 number (41)",
                            key.len()
                        ),
                    ));
                }
                if value.len() != 32 {
                    return Err(bad(
                        "peer secret",
                        format!("value is {} bytes, expected a 32-byte secret", value.len()),
                    ));
                }
                s.peer_secrets += 1;
            }
            Some(INVOICE_PREFIX) => {
                let (hash, invoice) =
                    decode_hash_keyed::<Invoice>(key, value).map_err(|d| bad("invoice", d))?;
                if invoice.payment_hash != hash {
                    return Err(bad(
                        "invoice",
                        "its payment_hash is not the hash it is filed under".into(),
                    ));
                }
                if let Some(preimage) = invoice.preimage
                    && Hash32::digest(&preimage.0) != hash
                {
                    return Err(bad(
                        "invoice",
                        "its preimage does not hash to its payment_hash".into(),
                    ));
                }
                s.invoices += 1;
            }
            Some(PAYMENT_PREFIX) => {
                let (hash, payment) =
                    decode_hash_keyed::<Payment>(key, value).map_err(|d| bad("payment", d))?;
                if payment.payment_hash != hash {
                    return Err(bad(
                        "payment",
                        "its payment_hash is not the hash it is filed under".into(),
                    ));
                }
                s.payments += 1;
            }
            Some(PREIMAGE_PREFIX) => {
                let (hash, preimage) =
                    decode_hash_keyed::<Hash32>(key, value).map_err(|d| bad("preimage", d))?;
                if Hash32::digest(&preimage.0) != hash {
                    return Err(bad(
                        "preimage",
                        "it does not hash to the payment hash it is filed under".into(),
                    ));
                }
                s.preimages += 1;
            }
            Some(GRAPH_CHANNEL_PREFIX) => {
                let (id, channel) = decode_hash_keyed::<GraphChannel>(key, value)
                    .map_err(|d| bad("graph channel", d))?;
                if channel.announcement.channel_id != id {
                    return Err(bad(
                        "graph channel",
                        "its channel_id is not the id it is filed under".into(),
                    ));
                }
                s.graph_channels += 1;
            }
            Some(_) if key == crate::migrate::STORE_FORMAT_KEY => {
                let format = <[u8; 4]>::try_from(value)
                    .map(u32::from_be_bytes)
                    .map_err(|_| {
                        bad(
                            "store format",
                            format!("value is {} bytes, expected a big-endian u32", value.len()),
                        )
                    })?;
                if format > crate::migrate::STORE_FORMAT {
                    return Err(bad(
                        "store format",
                        format!(
                            "format {format} was written by a newer dlp-node (this build reads up \
                             to {}): restore it with the build that wrote it",
                            crate::migrate::STORE_FORMAT
                        ),
                    ));
                }
            }
            Some(_) if key == RNG_COUNTER_KEY => {
                if value.len() != 8 {
                    return Err(bad(
                        "randomness counter",
                        format!("value is {} bytes, expected a big-endian u64", value.len()),
                    ));
                }
                s.rng_counter = true;
            }
            _ => s.unknown += 1,
        }
        Ok(())
    }

    /// What was seen.
    pub(crate) fn finish(self) -> RecordSummary {
        self.summary
    }
}

/// Decode a JSON record filed under `prefix ++ 32-byte hash`.
pub(crate) fn decode_hash_keyed<T: DeserializeOwned>(
    key: &[u8],
    value: &[u8],
) -> Result<(Hash32, T), String> {
    let hash = key
        .get(1..)
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| format!("key {} is not prefix + 32 bytes", hex::encode(key)))?;
    let parsed = serde_json::from_slice::<T>(value).map_err(|e| e.to_string())?;
    Ok((Hash32(hash), parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(prefix: u8, hash: &Hash32) -> Vec<u8> {
        let mut k = vec![prefix];
        k.extend_from_slice(&hash.0);
        k
    }

    #[test]
    fn preimages_must_hash_to_their_key() {
        let preimage = Hash32([7; 32]);
        let hash = Hash32::digest(&preimage.0);
        let value = serde_json::to_vec(&preimage).expect("json");
        let mut check = RecordCheck::default();
        check
            .check(&key(PREIMAGE_PREFIX, &hash), &value)
            .expect("ok");
        let err = check
            .check(&key(PREIMAGE_PREFIX, &Hash32([1; 32])), &value)
            .expect_err("wrong hash");
        assert_eq!(err.what, "preimage");
        assert_eq!(check.finish().preimages, 1);
    }

    #[test]
    fn malformed_and_mis_sized_records_are_named() {
        let mut check = RecordCheck::default();
        let err = check
            .check(&key(INVOICE_PREFIX, &Hash32([2; 32])), b"{not json")
            .expect_err("invoice");
        assert_eq!(err.what, "invoice");
        assert!(err.to_string().contains("0x20020202"), "{err}");
        let err = check
            .check(&[PEER_SECRET_PREFIX, 1, 2], &[0; 32])
            .expect_err("short key");
        assert_eq!(err.what, "peer secret");
        let err = check.check(&RNG_COUNTER_KEY, &[0; 7]).expect_err("counter");
        assert_eq!(err.what, "randomness counter");
        let err = check
            .check(&[CHANNEL_RECORD_PREFIX; 33], &[9, b'{'])
            .expect_err("channel version");
        assert_eq!(err.what, "channel");
        check.check(b"data/1", b"anything").expect("unknown prefix");
        assert_eq!(check.finish().unknown, 1);
    }
}
