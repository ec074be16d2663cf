//! Per-hop payment instructions that each hop alone can read (an onion).
//!
//! A payer that routes a TLC over several hops must tell every hop what to do with it (forward
//! so much, with such an expiry, over such a channel to such a node; or: you are the payee)
//! without telling any hop more than its own part. Each layer is encrypted to one hop's node
//! key:
//!
//! ```text
//! layer     = version (1) ‖ ephemeral pubkey (33) ‖ ChaCha20-Poly1305(key, nonce 0, plaintext)
//! key       = SHA-256("dlp/onion/v1" ‖ ECDH(ephemeral secret, hop's node key))
//! plaintext = be32(len) ‖ JSON of the hop's [`HopPayload`] (len bytes) ‖ next layer (opaque)
//! ```
//!
//! A hop decrypts its layer with its node key, reads its payload and passes the rest, opaque,
//! to the next hop. Every layer has a fresh ephemeral key, so a key (and the zero nonce) is
//! never reused. The AEAD tag makes a layer that was altered or meant for another node fail to
//! decode; such a TLC is failed back (the channel stays open).
//!
//! Unlike Lightning's Sphinx, packets are not padded to a fixed size: a hop can tell roughly
//! how many hops follow it from the length. The harness needs what each hop *learns* to be
//! exactly its own instructions, not a hidden route length.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use dlp_chain::{Hash32, Pubkey, hex_u64};
use secp256k1::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Layer format version (the first byte of every layer).
pub(crate) const ONION_VERSION: u8 = 1;
pub(crate) use dlp_node_api::limits::MAX_HOPS;
/// Largest packet accepted, in bytes: 20 layers of a forward payload are about 5 KiB.
pub(crate) const MAX_PACKET_BYTES: usize = 16 * 1024;
/// Bytes a layer adds around its plaintext: version, ephemeral key and AEAD tag.
const LAYER_OVERHEAD: usize = 1 + 33 + 16;

/// What one hop is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum HopPayload {
    /// The receiver is the payee. `keysend_preimage` is set for spontaneous payments.
    Final {
        #[serde(with = "hex_u64")]
        amount: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keysend_preimage: Option<Hash32>,
    },
    /// The receiver forwards `amount` with `expiry` to `next`, preferably over `channel_id`.
    Forward {
        next: Pubkey,
        channel_id: Hash32,
        #[serde(with = "hex_u64")]
        amount: u64,
        #[serde(with = "hex_u64")]
        expiry: u64,
    },
}

/// An encrypted onion: the layers still to be peeled, outermost first. Hex in JSON.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct OnionPacket(pub Vec<u8>);

impl std::fmt::Debug for OnionPacket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OnionPacket({} bytes)", self.0.len())
    }
}

impl Serialize for OnionPacket {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for OnionPacket {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() > 2 * MAX_PACKET_BYTES {
            return Err(serde::de::Error::custom(format!(
                "onion of {} bytes; the limit is {MAX_PACKET_BYTES}",
                text.len() / 2
            )));
        }
        hex::decode(&text)
            .map(OnionPacket)
            .map_err(serde::de::Error::custom)
    }
}

/// Why an onion could not be built or peeled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OnionError {
    #[error("a route needs 1 to {MAX_HOPS} hops, got {0}")]
    HopCount(usize),
    #[error("hop key {0} is not a valid public key")]
    BadHopKey(Pubkey),
    #[error("onion of {0} bytes is too short or too long")]
    Size(usize),
    #[error("unknown onion version {0}")]
    Version(u8),
    #[error("onion layer does not decrypt with this node's key")]
    Decrypt,
    #[error("onion payload is malformed: {0}")]
    Payload(String),
}

/// A decrypted layer: this hop's instructions and the packet for the next hop (none at the
/// payee).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peeled {
    pub(crate) payload: HopPayload,
    pub(crate) next: Option<OnionPacket>,
}

/// Build the onion for `hops` (node key and payload, in route order; the payee last, with a
/// [`HopPayload::Final`]). `ephemeral` gives the secret of layer `i` (callers draw it from the
/// node's randomness, so a seeded run builds the same onion).
pub(crate) fn build(
    hops: &[(Pubkey, HopPayload)],
    mut ephemeral: impl FnMut(usize) -> Hash32,
) -> Result<OnionPacket, OnionError> {
    if hops.is_empty() || hops.len() > MAX_HOPS {
        return Err(OnionError::HopCount(hops.len()));
    }
    let mut inner: Vec<u8> = Vec::new();
    for (i, (hop, payload)) in hops.iter().enumerate().rev() {
        let hop_key = hop.to_secp().map_err(|_| OnionError::BadHopKey(*hop))?;
        let secret = ephemeral_secret(ephemeral(i));
        let payload =
            serde_json::to_vec(payload).map_err(|e| OnionError::Payload(e.to_string()))?;
        let len = u32::try_from(payload.len()).map_err(|_| OnionError::Size(payload.len()))?;
        let mut plaintext = Vec::with_capacity(4 + payload.len() + inner.len());
        plaintext.extend_from_slice(&len.to_be_bytes());
        plaintext.extend_from_slice(&payload);
        plaintext.extend_from_slice(&inner);
        let cipher = layer_cipher(&secret, &hop_key);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&[0; 12]), plaintext.as_slice())
            .map_err(|_| OnionError::Decrypt)?;
        let mut layer = Vec::with_capacity(LAYER_OVERHEAD + plaintext.len());
        layer.push(ONION_VERSION);
        layer.extend_from_slice(&PublicKey::from_secret_key(&secret).serialize());
        layer.extend_from_slice(&sealed);
        inner = layer;
    }
    if inner.len() > MAX_PACKET_BYTES {
        return Err(OnionError::Size(inner.len()));
    }
    Ok(OnionPacket(inner))
}

/// Peel our layer of `packet` with our node secret.
pub(crate) fn peel(packet: &OnionPacket, node_secret: &SecretKey) -> Result<Peeled, OnionError> {
    let bytes = &packet.0;
    if bytes.len() < LAYER_OVERHEAD + 4 || bytes.len() > MAX_PACKET_BYTES {
        return Err(OnionError::Size(bytes.len()));
    }
    if bytes[0] != ONION_VERSION {
        return Err(OnionError::Version(bytes[0]));
    }
    let ephemeral = PublicKey::from_slice(&bytes[1..34]).map_err(|_| OnionError::Decrypt)?;
    let cipher = layer_cipher(node_secret, &ephemeral);
    let plaintext = cipher
        .decrypt(Nonce::from_slice(&[0; 12]), &bytes[34..])
        .map_err(|_| OnionError::Decrypt)?;
    let len = u32::from_be_bytes([plaintext[0], plaintext[1], plaintext[2], plaintext[3]]);
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(4))
        .filter(|end| *end <= plaintext.len())
        .ok_or_else(|| OnionError::Payload(format!("payload length {len} runs past the layer")))?;
    let payload: HopPayload = serde_json::from_slice(&plaintext[4..end])
        .map_err(|e| OnionError::Payload(e.to_string()))?;
    let rest = &plaintext[end..];
    let next = match (&payload, rest.is_empty()) {
        (HopPayload::Final { .. }, true) => None,
        (HopPayload::Forward { .. }, false) => Some(OnionPacket(rest.to_vec())),
        (HopPayload::Final { .. }, false) => {
            return Err(OnionError::Payload(
                "a final payload is followed by more layers".into(),
            ));
        }
        (HopPayload::Forward { .. }, true) => {
            return Err(OnionError::Payload(
                "a forward payload has no layer for the next hop".into(),
            ));
        }
    };
    Ok(Peeled { payload, next })
}

/// A valid secret key from 32 random bytes (re-hashed in the negligible case they are not one).
fn ephemeral_secret(mut seed: Hash32) -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_secret_bytes(seed.0) {
            return key;
        }
        seed = Hash32::digest(&seed.0);
    }
}

fn layer_cipher(secret: &SecretKey, point: &PublicKey) -> ChaCha20Poly1305 {
    let shared = secp256k1::ecdh::SharedSecret::new(point, secret);
    let mut h = Sha256::new();
    h.update(b"dlp/onion/v1");
    h.update(shared.to_secret_bytes());
    let key: [u8; 32] = h.finalize().into();
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_secret_bytes([n; 32]).expect("key")
    }

    fn pubkey(secret: &SecretKey) -> Pubkey {
        Pubkey(PublicKey::from_secret_key(secret).serialize())
    }

    fn forward(next: &SecretKey, amount: u64) -> HopPayload {
        HopPayload::Forward {
            next: pubkey(next),
            channel_id: Hash32([amount as u8; 32]),
            amount,
            expiry: 100 + amount,
        }
    }

    #[test]
    fn each_hop_reads_only_its_own_layer_and_passes_the_rest_on() {
        let (bob, carol, dave) = (key(2), key(3), key(4));
        let final_payload = HopPayload::Final {
            amount: 1_000,
            keysend_preimage: None,
        };
        let route = vec![
            (pubkey(&bob), forward(&carol, 1_010)),
            (pubkey(&carol), forward(&dave, 1_000)),
            (pubkey(&dave), final_payload.clone()),
        ];
        let onion = build(&route, |i| Hash32([i as u8 + 7; 32])).expect("build");
        let at_bob = peel(&onion, &bob).expect("bob");
        assert_eq!(at_bob.payload, forward(&carol, 1_010));
        // Bob cannot read Carol's layer.
        let for_carol = at_bob.next.expect("carol's layer");
        assert_eq!(peel(&for_carol, &bob), Err(OnionError::Decrypt));
        let at_carol = peel(&for_carol, &carol).expect("carol");
        assert_eq!(at_carol.payload, forward(&dave, 1_000));
        let at_dave = peel(&at_carol.next.expect("dave's layer"), &dave).expect("dave");
        assert_eq!(at_dave.payload, final_payload);
        assert_eq!(at_dave.next, None);
    }

    #[test]
    fn a_tampered_truncated_or_foreign_onion_does_not_decode() {
        let bob = key(2);
        let route = vec![(
            pubkey(&bob),
            HopPayload::Final {
                amount: 5,
                keysend_preimage: None,
            },
        )];
        let onion = build(&route, |_| Hash32([9; 32])).expect("build");
        let mut flipped = onion.clone();
        let last = flipped.0.len() - 1;
        flipped.0[last] ^= 1;
        assert_eq!(peel(&flipped, &bob), Err(OnionError::Decrypt));
        assert!(matches!(
            peel(&OnionPacket(onion.0[..20].to_vec()), &bob),
            Err(OnionError::Size(20))
        ));
        assert_eq!(peel(&onion, &key(3)), Err(OnionError::Decrypt));
        let mut versioned = onion.clone();
        versioned.0[0] = 9;
        assert_eq!(peel(&versioned, &bob), Err(OnionError::Version(9)));
        assert!(peel(&OnionPacket(vec![0xab; 200]), &bob).is_err());
    }

    #[test]
    fn routes_are_bounded_and_the_longest_fits_the_packet_limit() {
        assert_eq!(
            build(&[], |_| Hash32([1; 32])),
            Err(OnionError::HopCount(0))
        );
        let hops: Vec<SecretKey> = (1..=MAX_HOPS as u8).map(key).collect();
        let mut route: Vec<(Pubkey, HopPayload)> = hops
            .windows(2)
            .map(|w| (pubkey(&w[0]), forward(&w[1], u64::MAX / 2)))
            .collect();
        route.push((
            pubkey(&hops[MAX_HOPS - 1]),
            HopPayload::Final {
                amount: u64::MAX / 2,
                keysend_preimage: Some(Hash32([0xee; 32])),
            },
        ));
        let onion = build(&route, |i| Hash32([i as u8 + 1; 32])).expect("longest route");
        assert!(onion.0.len() <= MAX_PACKET_BYTES, "{}", onion.0.len());
        let json = serde_json::to_string(&onion).expect("json");
        assert_eq!(
            serde_json::from_str::<OnionPacket>(&json).expect("parses"),
            onion
        );
        route.push(route[0].clone());
        assert_eq!(
            build(&route, |_| Hash32([1; 32])),
            Err(OnionError::HopCount(MAX_HOPS + 1))
        );
    }
}
