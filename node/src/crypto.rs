//! Key derivation for the protocol: per-commitment revocation secrets and the Noise static key.
//!
//! Everything is derived from the node secret key (`fiber/sk`), so a node restored from a
//! backup (which carries `sk`) can recompute every secret it ever revealed or will reveal: the
//! secrets themselves are never stored. Commitment `k` of a channel has secret
//! `SHA-256("dlp/commitment-secret/v1" ‖ sk ‖ channel_id ‖ k)`, and its revocation hash is
//! `SHA-256(secret)`; revealing the secret revokes the commitment.

use dlp_chain::Hash32;
use secp256k1::SecretKey;
use sha2::{Digest, Sha256};

/// The revocation secret of our commitment number `number` on `channel`.
pub(crate) fn commitment_secret(node_secret: &SecretKey, channel: &Hash32, number: u64) -> Hash32 {
    let mut h = Sha256::new();
    h.update(b"dlp/commitment-secret/v1");
    h.update(node_secret.to_secret_bytes());
    h.update(channel.0);
    h.update(number.to_be_bytes());
    Hash32(h.finalize().into())
}

/// The revocation hash of our commitment `number` (what the peer puts in our commitment).
pub(crate) fn revocation_hash(node_secret: &SecretKey, channel: &Hash32, number: u64) -> Hash32 {
    Hash32::digest(&commitment_secret(node_secret, channel, number).0)
}

/// The X25519 static private key for Noise, derived from the node key. The node key itself
/// authenticates the session by signing the handshake hash (see `transport`).
pub(crate) fn noise_static_key(node_secret: &SecretKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"dlp/noise-static/v1");
    h.update(node_secret.to_secret_bytes());
    h.finalize().into()
}

/// A fresh random 32-byte value (payment preimages, temporary channel ids).
pub(crate) fn random_hash32() -> Hash32 {
    let mut bytes = [0u8; 32];
    // getrandom only fails when the OS has no entropy source at all; nothing can run then.
    getrandom::fill(&mut bytes).expect("operating system entropy source");
    Hash32(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_per_number_and_channel_and_hash_to_the_revocation_hash() {
        let sk = SecretKey::from_secret_bytes([3; 32]).expect("key");
        let a = Hash32([1; 32]);
        let b = Hash32([2; 32]);
        assert_ne!(commitment_secret(&sk, &a, 0), commitment_secret(&sk, &a, 1));
        assert_ne!(commitment_secret(&sk, &a, 0), commitment_secret(&sk, &b, 0));
        assert_eq!(
            Hash32::digest(&commitment_secret(&sk, &a, 5).0),
            revocation_hash(&sk, &a, 5)
        );
    }
}
