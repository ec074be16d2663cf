//! Records written by an earlier dlp-node, brought forward: on start, and on restore of an old
//! backup. An upgrade must keep the channels; a downgrade must refuse, never start corrupt.
//!
//! **Store format.** A migration writes the store's new format under [`STORE_FORMAT_KEY`] (a
//! big-endian u32) with the records it changed; a store that needed none is not written at all
//! (a restore brings back exactly the backup). [`STORE_FORMAT`] is this build's. A store of a
//! newer format, or a channel record of a newer version, is refused ([`MigrateError::Newer`],
//! [`MigrateError::NewerRecord`]): a node built before the records it holds would misread them.
//!
//! **Version 1 → 2** (`versions.toml`: `pre-routing`, commit d260f97, wrote version 1). Two
//! things changed in a channel record:
//! - a TLC's onion was cleartext JSON (`{"type": "final", amount, keysend_preimage}` or
//!   `{"type": "forward", next, amount, expiry, inner}`); it is now an encrypted packet ([`crate::onion`]). The migration seals
//!   the same instructions layer by layer for the same hops: the receiver of the TLC (the peer
//!   for a TLC we offered, this node for one it offered us), then each `next`. A version-1
//!   forward named no channel; the migrated layer names none (all zeroes) and forwarding picks
//!   any channel to `next` that can carry the amount, which is what version 1 did. The layers'
//!   ephemeral keys are derived from the TLC (channel, direction, id, layer), so every copy of a
//!   TLC in a record (base, logs, pending fails) becomes the same packet and a rerun of a killed
//!   migration writes the same bytes.
//! - a pending failure kept only its message; it is now the whole reason (`{"type": "fail",
//!   "message": ...}`, no failed channel).
//!
//! A payment record of version 1 has `candidates` (dropped: the next attempt routes on the
//! graph) and no expiry limit (set to the default the payer uses today).
//!
//! **Crash safety.** Everything a migration changes, and the new format, go into one write
//! batch: RocksDB's WriteBatch and SQLite's transaction are atomic, so a kill at any point
//! leaves either the old records or the migrated ones, and the next start migrates again from
//! the old. `node/tests/process/crash.rs` kills a start at each write and sync to show it.

use std::ops::ControlFlow;

use dlp_chain::{Hash32, Pubkey};
use serde_json::{Map, Value};

use crate::channel_record::{CHANNEL_RECORD_PREFIX, CHANNEL_RECORD_VERSION, ChannelRecord};
use crate::core::PAYMENT_PREFIX;
use crate::onion::{self, HopPayload};
use crate::store::{Store, StoreError, WriteBatch};

/// The key of the store's format (outside every record prefix).
pub(crate) const STORE_FORMAT_KEY: [u8; 1] = [0x01];
/// The store format this build writes: that of its channel records.
pub(crate) const STORE_FORMAT: u32 = CHANNEL_RECORD_VERSION as u32;

/// The earliest record version a migration starts from, and the build that wrote it.
const OLDEST_MIGRATED: u8 = 1;
const WRITER_OF_V1: &str = "dlp-node of commit d260f97 (versions.toml: pre-routing)";

/// Why a store could not be brought forward.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "this store was written by a newer dlp-node (store format {found}; this build reads up \
         to {STORE_FORMAT}): start the build that wrote it, or restore a backup this build wrote"
    )]
    Newer { found: u32 },
    #[error("the store's format entry is malformed ({0} bytes, expected a big-endian u32)")]
    BadFormat(usize),
    #[error(
        "channel record {channel}: encoding version {found} is newer than this build's \
         ({CHANNEL_RECORD_VERSION}): start the build that wrote it"
    )]
    NewerRecord { channel: String, found: u8 },
    #[error(
        "channel record {channel}: encoding version {found} cannot be migrated (this build \
         migrates from version {OLDEST_MIGRATED})"
    )]
    TooOld { channel: String, found: u8 },
    #[error(
        "channel record {channel} (version 1) cannot be migrated to version \
         {CHANNEL_RECORD_VERSION}: {detail}; the {WRITER_OF_V1} reads it"
    )]
    Record { channel: String, detail: String },
    #[error("payment record {key} (version 1) cannot be migrated: {detail}")]
    Payment { key: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a migration changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The format the store had (1 when it had no format entry and held version-1 records).
    pub from: u32,
    pub channels: u64,
    pub payments: u64,
}

/// Bring `store` forward to [`STORE_FORMAT`] in one atomic batch. `own` is this node's key
/// (the receiver of the TLCs its peers offered). `Ok(None)`: the store was current, and nothing
/// was written.
pub fn bring_forward(store: &dyn Store, own: &Pubkey) -> Result<Option<Migrated>, MigrateError> {
    let format = match store.get(&STORE_FORMAT_KEY)? {
        None => None,
        Some(bytes) => {
            let array: [u8; 4] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| MigrateError::BadFormat(bytes.len()))?;
            Some(u32::from_be_bytes(array))
        }
    };
    if let Some(found) = format
        && found > STORE_FORMAT
    {
        return Err(MigrateError::Newer { found });
    }
    let mut batch = WriteBatch::new();
    let mut migrated = Migrated {
        from: format.unwrap_or(STORE_FORMAT),
        ..Migrated::default()
    };
    let mut failure = None;
    store.scan_prefix(&[CHANNEL_RECORD_PREFIX], &mut |key, value| {
        match value.first().copied() {
            Some(CHANNEL_RECORD_VERSION) | None => {}
            Some(found) => match upgrade_channel_record(key, value, &Sealer::For(*own)) {
                Ok(upgraded) => {
                    batch.put(key.to_vec(), upgraded);
                    migrated.channels += 1;
                    migrated.from = migrated.from.min(u32::from(found));
                }
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            },
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    // A version-1 payment in flight has a version-1 channel record, so payments are scanned
    // only with one: a current store (which has no format entry) is not scanned at each start.
    if migrated.channels > 0 {
        store.scan_prefix(&[PAYMENT_PREFIX], &mut |key, value| {
            match upgrade_payment(value) {
                Ok(Some(upgraded)) => {
                    batch.put(key.to_vec(), upgraded);
                    migrated.payments += 1;
                }
                Ok(None) => {}
                Err(detail) => {
                    failure = Some(MigrateError::Payment {
                        key: format!("0x{}", hex::encode(key)),
                        detail,
                    });
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    // A store already current is left byte for byte as it is (a restore brings back exactly
    // the backup); the format entry is written with the records a migration changed.
    let changed = migrated.channels > 0 || migrated.payments > 0;
    if changed {
        batch.put(
            STORE_FORMAT_KEY.to_vec(),
            STORE_FORMAT.to_be_bytes().to_vec(),
        );
        store.write(&batch)?;
    }
    Ok(changed.then_some(migrated))
}

/// Whether a channel record value of another version would migrate (restore checks a backup
/// with this before anything moves): the record decodes once brought forward.
pub(crate) fn check_channel_record(key: &[u8], value: &[u8]) -> Result<(), MigrateError> {
    upgrade_channel_record(key, value, &Sealer::CheckOnly).map(|_| ())
}

/// How migrated onions are sealed.
enum Sealer {
    /// For real: `own` is this node's key.
    For(Pubkey),
    /// Only to check that the record would decode: an empty packet stands for each onion.
    CheckOnly,
}

/// A channel record value of an earlier version, as this build encodes it.
fn upgrade_channel_record(
    key: &[u8],
    value: &[u8],
    sealer: &Sealer,
) -> Result<Vec<u8>, MigrateError> {
    let channel = format!("0x{}", hex::encode(key.get(1..).unwrap_or_default()));
    let (found, body) = match value.split_first() {
        Some((found, body)) => (*found, body),
        None => {
            return Err(MigrateError::Record {
                channel,
                detail: "the value is empty".into(),
            });
        }
    };
    if found > CHANNEL_RECORD_VERSION {
        return Err(MigrateError::NewerRecord { channel, found });
    }
    if found < OLDEST_MIGRATED {
        return Err(MigrateError::TooOld { channel, found });
    }
    let bad = |detail: String| MigrateError::Record {
        channel: channel.clone(),
        detail,
    };
    let mut record: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    // The peer receives the TLCs we offered (a record without protocol data has no TLCs, and
    // its peer field need not be a key).
    let peer: Result<Pubkey, String> = record
        .get("peer_pubkey")
        .cloned()
        .ok_or_else(|| "no peer_pubkey".to_string())
        .and_then(|v| serde_json::from_value(v).map_err(|e| format!("peer_pubkey: {e}")));
    let channel_id = key.get(1..).unwrap_or_default().to_vec();
    if let Some(data) = record.get_mut("data").and_then(Value::as_object_mut) {
        let seal_tlc = |tlc: &mut Map<String, Value>| -> Result<(), String> {
            let offered_by_us = tlc
                .get("offered_by_us")
                .and_then(Value::as_bool)
                .ok_or("a TLC without offered_by_us")?;
            let id = tlc.get("id").cloned().ok_or("a TLC without id")?;
            let onion = tlc.remove("onion").ok_or("a TLC without onion")?;
            let receiver = if offered_by_us {
                Some(peer.clone()?)
            } else {
                None
            };
            let packet = seal_v1_onion(
                onion,
                receiver,
                sealer,
                &[
                    &channel_id,
                    &[u8::from(offered_by_us)],
                    id.to_string().as_bytes(),
                ],
            )?;
            tlc.insert("onion".into(), Value::String(packet));
            Ok(())
        };
        if let Some(tlcs) = data
            .get_mut("base")
            .and_then(|b| b.get_mut("tlcs"))
            .and_then(Value::as_array_mut)
        {
            for tlc in tlcs {
                let tlc = tlc
                    .as_object_mut()
                    .ok_or_else(|| bad("a TLC is not an object".into()))?;
                seal_tlc(tlc).map_err(&bad)?;
            }
        }
        for log in ["our_log", "their_log"] {
            if let Some(updates) = data.get_mut(log).and_then(Value::as_array_mut) {
                for update in updates {
                    let update = update
                        .as_object_mut()
                        .ok_or_else(|| bad(format!("an update of {log} is not an object")))?;
                    if update.get("type").and_then(Value::as_str) == Some("add") {
                        seal_tlc(update).map_err(&bad)?;
                    }
                }
            }
        }
        if let Some(fails) = data.get_mut("pending_fails").and_then(Value::as_object_mut) {
            for (id, entry) in fails.iter_mut() {
                let pair = entry
                    .as_array_mut()
                    .filter(|pair| pair.len() == 2)
                    .ok_or_else(|| bad(format!("pending fail {id} is not [tlc, message]")))?;
                let tlc = pair[0]
                    .as_object_mut()
                    .ok_or_else(|| bad(format!("pending fail {id}: the TLC is not an object")))?;
                seal_tlc(tlc).map_err(&bad)?;
                let message = pair[1]
                    .as_str()
                    .ok_or_else(|| bad(format!("pending fail {id}: the reason is not a message")))?
                    .to_string();
                pair[1] = serde_json::json!({"type": "fail", "message": message});
            }
        }
    }
    let mut out = vec![CHANNEL_RECORD_VERSION];
    out.extend(serde_json::to_vec(&record).map_err(|e| bad(e.to_string()))?);
    // What was written must be what this build reads: decode it exactly as the core does.
    ChannelRecord::decode(key, &out).map_err(|e| bad(e.to_string()))?;
    Ok(out)
}

/// Seal a version-1 cleartext onion for its hops. `receiver`: the node the TLC was offered to
/// (`None`: this node). `salt` names the TLC, for the layers' ephemeral keys.
fn seal_v1_onion(
    onion: Value,
    receiver: Option<Pubkey>,
    sealer: &Sealer,
    salt: &[&[u8]],
) -> Result<String, String> {
    let mut hops: Vec<(Option<Pubkey>, HopPayload)> = Vec::new();
    let mut layer = onion;
    let mut hop = receiver;
    loop {
        if hops.len() > onion::MAX_HOPS {
            return Err(format!("an onion of more than {} layers", onion::MAX_HOPS));
        }
        let body = match layer {
            Value::Object(map) => map,
            other => return Err(format!("an onion that is not version 1's: {other}")),
        };
        let kind = body
            .get("type")
            .and_then(Value::as_str)
            .ok_or("an onion layer without a type")?
            .to_string();
        let field = |name: &str| {
            body.get(name)
                .cloned()
                .ok_or(format!("onion {kind} without {name}"))
        };
        match kind.as_str() {
            "final" => {
                let amount = serde_json::from_value::<HexU64>(field("amount")?)
                    .map_err(|e| format!("onion amount: {e}"))?
                    .0;
                let keysend_preimage = match body.get("keysend_preimage") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        serde_json::from_value::<Hash32>(v.clone())
                            .map_err(|e| format!("onion keysend_preimage: {e}"))?,
                    ),
                };
                hops.push((
                    hop,
                    HopPayload::Final {
                        amount,
                        keysend_preimage,
                    },
                ));
                break;
            }
            "forward" => {
                let next: Pubkey = serde_json::from_value(field("next")?)
                    .map_err(|e| format!("onion next: {e}"))?;
                let amount = serde_json::from_value::<HexU64>(field("amount")?)
                    .map_err(|e| format!("onion amount: {e}"))?
                    .0;
                let expiry = serde_json::from_value::<HexU64>(field("expiry")?)
                    .map_err(|e| format!("onion expiry: {e}"))?
                    .0;
                hops.push((
                    hop,
                    HopPayload::Forward {
                        next,
                        channel_id: Hash32([0; 32]),
                        amount,
                        expiry,
                    },
                ));
                hop = Some(next);
                layer = field("inner")?;
            }
            other => return Err(format!("an onion layer of kind {other:?}")),
        }
    }
    let own = match sealer {
        Sealer::CheckOnly => return Ok(String::new()),
        Sealer::For(own) => *own,
    };
    let hops: Vec<(Pubkey, HopPayload)> = hops
        .into_iter()
        .map(|(hop, payload)| (hop.unwrap_or(own), payload))
        .collect();
    let packet = onion::build(&hops, |i| {
        let mut data = b"dlp/migrate/v1-v2/onion".to_vec();
        for part in salt {
            data.extend_from_slice(&(part.len() as u32).to_be_bytes());
            data.extend_from_slice(part);
        }
        data.extend_from_slice(&(i as u32).to_be_bytes());
        Hash32::digest(&data)
    })
    .map_err(|e| format!("cannot seal the onion: {e}"))?;
    Ok(hex::encode(packet.0))
}

/// A payment record of version 1 as this build writes it, or `None` when it is current.
fn upgrade_payment(value: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut payment: Value = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    let map = payment.as_object_mut().ok_or("not an object")?;
    let was_v1 = map.remove("candidates").is_some() || !map.contains_key("tlc_expiry_limit");
    if !was_v1 {
        return Ok(None);
    }
    map.entry("tlc_expiry_limit")
        .or_insert_with(|| Value::String(format!("{:#x}", crate::core::DEFAULT_TLC_EXPIRY_LIMIT)));
    serde_json::to_vec(&payment)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A `0x`-hex u64 as the records write them.
#[derive(serde::Deserialize)]
struct HexU64(#[serde(with = "dlp_chain::hex_u64")] u64);

#[cfg(test)]
mod tests {
    use secp256k1::SecretKey;
    use serde_json::json;

    use super::*;
    use crate::channel::Tlc;
    use crate::channel_record::ChannelId;
    use crate::store::{Backend, open_store};
    use crate::wire::RemoveReason;

    fn secret(n: u8) -> SecretKey {
        SecretKey::from_secret_bytes([n; 32]).expect("key")
    }

    fn pubkey(n: u8) -> Pubkey {
        Pubkey::from(secret(n).public_key())
    }

    fn hash(n: u8) -> Value {
        serde_json::to_value(Hash32([n; 32])).expect("hash")
    }

    fn key_json(n: u8) -> Value {
        serde_json::to_value(pubkey(n)).expect("pubkey")
    }

    /// A TLC as version 1 wrote it.
    fn v1_tlc(offered_by_us: bool, id: u64, onion: Value) -> Value {
        json!({
            "offered_by_us": offered_by_us,
            "id": format!("{id:#x}"),
            "amount": "0x3e8",
            "payment_hash": hash(9),
            "expiry": "0x64",
            "onion": onion,
        })
    }

    fn v1_final(amount: u64) -> Value {
        json!({"type": "final", "amount": format!("{amount:#x}"), "keysend_preimage": null})
    }

    /// A channel record as d260f97 (`pre-routing`) wrote it: we (key 1) have a channel with
    /// key 2; we offered TLC 0 onwards to key 3 through it, key 2 offered us TLC 7, and TLC 5
    /// we offered was failed back and waits in `pending_fails`.
    fn v1_record(channel: [u8; 32], onion_of_ours: Value) -> Vec<u8> {
        let commitment = json!({"number": "0x3", "ours": "0x1", "theirs": "0x1"});
        let data = json!({
            "opener": true,
            "temporary_id": hash(4),
            "funding_amount": "0xf4240",
            "to_self_delay": "0x90",
            "local_keys": {"funding": key_json(1), "payout": key_json(1)},
            "remote_keys": {"funding": key_json(2), "payout": key_json(2)},
            "base": {
                "local": "0x1",
                "remote": "0x2",
                "tlcs": [v1_tlc(true, 0, onion_of_ours)],
            },
            "base_ours": "0x1",
            "base_theirs": "0x0",
            "our_log": [],
            "their_log": [{"type": "add", "offered_by_us": false, "id": "0x7", "amount": "0x3e8",
                           "payment_hash": hash(9), "expiry": "0x64", "onion": v1_final(1000)}],
            "our_commitment": commitment,
            "their_commitment": commitment,
            "their_revocation_hashes": {},
            "next_tlc_id": "0x6",
            "pending_fails": {"5": [v1_tlc(true, 5, v1_final(1000)), "no route to the payee"]},
        });
        let record = json!({
            "channel_id": format!("0x{}", hex::encode(channel)),
            "peer_pubkey": key_json(2),
            "state": {"state_name": "ChannelReady"},
            "local_commitment_number": 3,
            "remote_commitment_number": 3,
            "data": data,
        });
        let mut bytes = vec![1];
        bytes.extend(serde_json::to_vec(&record).expect("json"));
        bytes
    }

    fn forward_to_3() -> Value {
        json!({"type": "forward", "next": key_json(3), "amount": "0x3e0", "expiry": "0x50",
               "inner": v1_final(992)})
    }

    fn record_key(channel: [u8; 32]) -> Vec<u8> {
        ChannelRecord::key(&ChannelId(channel))
    }

    fn peel(tlc: &Tlc, secret: &SecretKey) -> onion::Peeled {
        onion::peel(&tlc.onion, secret).expect("peels with the hop's key")
    }

    #[test]
    fn version_1_records_are_brought_forward_on_both_backends_and_their_onions_peel_per_hop() {
        for backend in [Backend::Rocksdb, Backend::Sqlite] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = open_store(backend, dir.path()).expect("store");
            let mut batch = WriteBatch::new();
            batch.put(record_key([8; 32]), v1_record([8; 32], forward_to_3()));
            let payment = json!({"payment_hash": hash(9), "status": "Inflight",
                                 "target": key_json(3), "amount": "0x3e8", "candidates": []});
            let mut payment_key = vec![PAYMENT_PREFIX];
            payment_key.extend([9; 32]);
            batch.put(
                payment_key.clone(),
                serde_json::to_vec(&payment).expect("json"),
            );
            store.write(&batch).expect("write");

            let done = bring_forward(store.as_ref(), &pubkey(1)).expect("migrates");
            assert_eq!(
                done,
                Some(Migrated {
                    from: 1,
                    channels: 1,
                    payments: 1
                }),
                "{backend}"
            );
            let value = store
                .get(&record_key([8; 32]))
                .expect("get")
                .expect("record");
            assert_eq!(value[0], CHANNEL_RECORD_VERSION);
            let record = ChannelRecord::decode(&record_key([8; 32]), &value).expect("decodes");
            let data = record.data.expect("data");
            // Ours went to key 2, which forwards to key 3 (no channel named: any to key 3).
            let first = peel(&data.base.tlcs[0], &secret(2));
            assert_eq!(
                first.payload,
                HopPayload::Forward {
                    next: pubkey(3),
                    channel_id: Hash32([0; 32]),
                    amount: 0x3e0,
                    expiry: 0x50
                }
            );
            let inner = Tlc {
                onion: first.next.expect("a layer for key 3"),
                ..data.base.tlcs[0].clone()
            };
            let last = peel(&inner, &secret(3));
            assert_eq!(
                (last.payload, last.next),
                (
                    HopPayload::Final {
                        amount: 992,
                        keysend_preimage: None
                    },
                    None
                )
            );
            // The peer's TLC is sealed to us.
            let crate::channel::Update::Add(theirs) = &data.their_log[0] else {
                panic!("an add: {:?}", data.their_log[0]);
            };
            assert!(onion::peel(&theirs.onion, &secret(2)).is_err());
            assert_eq!(
                peel(theirs, &secret(1)).payload,
                HopPayload::Final {
                    amount: 1000,
                    keysend_preimage: None
                }
            );
            let (failed, reason) = &data.pending_fails[&5];
            assert_eq!(
                *reason,
                RemoveReason::Fail {
                    message: "no route to the payee".into(),
                    failed_channel: None
                }
            );
            assert_eq!(failed.id, 5);
            let payment: Value =
                serde_json::from_slice(&store.get(&payment_key).expect("get").expect("payment"))
                    .expect("json");
            assert!(payment.get("candidates").is_none());
            assert_eq!(payment["tlc_expiry_limit"], json!("0x7e0"));
            assert_eq!(
                store.get(&STORE_FORMAT_KEY).expect("get"),
                Some(STORE_FORMAT.to_be_bytes().to_vec())
            );
            // Done once: a second start changes nothing, and writes the same bytes if rerun
            // from the old records (a killed migration starts over).
            assert_eq!(
                bring_forward(store.as_ref(), &pubkey(1)).expect("again"),
                None
            );
            let again = upgrade_channel_record(
                &record_key([8; 32]),
                &v1_record([8; 32], forward_to_3()),
                &Sealer::For(pubkey(1)),
            )
            .expect("upgrade");
            assert_eq!(again, value, "deterministic");
        }
    }

    #[test]
    fn a_record_that_cannot_migrate_leaves_every_record_as_it_was_and_names_its_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(Backend::Sqlite, dir.path()).expect("store");
        let good = v1_record([1; 32], forward_to_3());
        let bad = v1_record([2; 32], json!({"type": "teleport"}));
        let mut batch = WriteBatch::new();
        batch.put(record_key([1; 32]), good.clone());
        batch.put(record_key([2; 32]), bad.clone());
        store.write(&batch).expect("write");
        let err = bring_forward(store.as_ref(), &pubkey(1)).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("cannot be migrated") && text.contains("d260f97"),
            "{text}"
        );
        assert!(text.contains("teleport"), "{text}");
        assert_eq!(store.get(&record_key([1; 32])).expect("get"), Some(good));
        assert_eq!(store.get(&record_key([2; 32])).expect("get"), Some(bad));
        assert_eq!(store.get(&STORE_FORMAT_KEY).expect("get"), None);
        assert!(
            check_channel_record(&record_key([1; 32]), &v1_record([1; 32], forward_to_3())).is_ok()
        );
    }

    #[test]
    fn a_store_of_a_newer_build_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(Backend::Sqlite, dir.path()).expect("store");
        let mut batch = WriteBatch::new();
        batch.put(STORE_FORMAT_KEY.to_vec(), 3u32.to_be_bytes().to_vec());
        store.write(&batch).expect("write");
        let err = bring_forward(store.as_ref(), &pubkey(1)).expect_err("newer");
        assert!(matches!(err, MigrateError::Newer { found: 3 }), "{err}");
        assert!(err.to_string().contains("newer dlp-node"), "{err}");
        // A record of a newer version, without a format entry, is refused as well.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(Backend::Sqlite, dir.path()).expect("store");
        let mut newer = v1_record([1; 32], forward_to_3());
        newer[0] = CHANNEL_RECORD_VERSION + 1;
        let mut batch = WriteBatch::new();
        batch.put(record_key([1; 32]), newer);
        store.write(&batch).expect("write");
        let err = bring_forward(store.as_ref(), &pubkey(1)).expect_err("newer record");
        assert!(
            matches!(err, MigrateError::NewerRecord { found: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_current_store_is_left_as_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(Backend::Rocksdb, dir.path()).expect("store");
        let record = ChannelRecord::new(
            ChannelId([1; 32]),
            "peer".into(),
            crate::channel_record::ChannelState::ChannelReady,
            1,
            1,
        );
        record.save(store.as_ref()).expect("save");
        let before = store.prefix_entries(&[]).expect("entries");
        assert_eq!(bring_forward(store.as_ref(), &pubkey(1)).expect("ok"), None);
        assert_eq!(store.prefix_entries(&[]).expect("entries"), before);
        let value = store
            .get(&record_key([1; 32]))
            .expect("get")
            .expect("record");
        assert_eq!(
            ChannelRecord::decode(&record_key([1; 32]), &value).expect("ok"),
            record
        );
    }
}
