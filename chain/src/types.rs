//! Ledger data types: hashes, keys, outputs with their spending conditions, transactions.
//!
//! A transaction's id is the SHA-256 of its body (kind, spent outpoints, outputs) without the
//! witnesses, so both channel parties can compute and sign a commitment before either holds the
//! other's signature. Every signature signs [`Transaction::sighash`] (all inputs and outputs).
//! Integers are hex strings on the wire, as in Fiber's RPC.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Amounts in shannons (1 CKB = 10^8 shannons).
pub type Amount = u64;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Serde helpers writing `u64` as `0x`-prefixed hex strings (Fiber's convention).
pub mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{n:#x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a 0x-prefixed hex integer, got {text:?}"))
        })
    }

    /// Parse `0x...` into a `u64`.
    pub fn parse(text: &str) -> Option<u64> {
        u64::from_str_radix(text.strip_prefix("0x")?, 16).ok()
    }
}

/// Serde helpers for `Option<u64>` as an optional hex string (absent or null is `None`).
pub mod hex_u64_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => s.serialize_str(&format!("{n:#x}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            super::hex_u64::parse(&t)
                .ok_or_else(|| serde::de::Error::custom(format!("bad hex integer {t:?}")))
        })
        .transpose()
    }
}

fn decode_hex_array<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(digits).map_err(|e| format!("bad hex {text:?}: {e}"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("{len} bytes, expected {N}"))
}

macro_rules! hex_bytes_type {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                decode_hex_array::<$len>(text).map($name)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_bytes_type!(
    /// A 32-byte hash: transaction ids, channel ids, payment and revocation hashes, secrets.
    Hash32,
    32
);
hex_bytes_type!(
    /// A compressed secp256k1 public key.
    Pubkey,
    33
);
hex_bytes_type!(
    /// A compact (r, s) ECDSA signature.
    Sig,
    64
);

impl Hash32 {
    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        Hash32(sha256(data))
    }
}

/// A transaction id.
pub type Txid = Hash32;

impl Pubkey {
    /// Parse into a curve point (fails for bytes that are not a valid key).
    pub fn to_secp(&self) -> Result<secp256k1::PublicKey, secp256k1::Error> {
        secp256k1::PublicKey::from_slice(&self.0)
    }
}

impl From<secp256k1::PublicKey> for Pubkey {
    fn from(pk: secp256k1::PublicKey) -> Self {
        Pubkey(pk.serialize())
    }
}

/// Sign a 32-byte digest.
pub fn sign_digest(secret: &secp256k1::SecretKey, digest: &Hash32) -> Sig {
    let sig = secp256k1::ecdsa::sign(secp256k1::Message::from_digest(digest.0), secret);
    Sig(sig.serialize_compact())
}

/// Check that `sig` is `pubkey`'s signature of `digest`.
pub fn verify_digest(pubkey: &Pubkey, digest: &Hash32, sig: &Sig) -> bool {
    let Ok(pk) = pubkey.to_secp() else {
        return false;
    };
    let Ok(sig) = secp256k1::ecdsa::Signature::from_compact(&sig.0) else {
        return false;
    };
    secp256k1::ecdsa::verify(&sig, secp256k1::Message::from_digest(digest.0), &pk).is_ok()
}

/// A reference to one output of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutPoint {
    pub txid: Txid,
    pub index: u32,
}

impl fmt::Display for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.index)
    }
}

/// Who may spend an output, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Lock {
    /// Spendable by `pubkey`'s signature: wallet funds.
    Key { pubkey: Pubkey },
    /// A channel's funding output: both parties must sign.
    MultiSig { a: Pubkey, b: Pubkey },
    /// The commitment holder's own balance. The holder (`owner`) may spend it once the output
    /// is `delay` blocks deep; the counterparty (`revoker`) may spend it at any time by showing
    /// the preimage of `revocation_hash`, which the holder reveals when it revokes the commitment.
    Delayed {
        owner: Pubkey,
        #[serde(with = "hex_u64")]
        delay: u64,
        revoker: Pubkey,
        revocation_hash: Hash32,
    },
    /// A pending TLC in a commitment: the `receiver` claims it with the payment preimage, the
    /// `offerer` takes it back once the chain reaches `expiry`, and the commitment holder's
    /// counterparty (`revoker`) takes it with the revocation secret if the commitment is revoked.
    Tlc {
        offerer: Pubkey,
        receiver: Pubkey,
        payment_hash: Hash32,
        #[serde(with = "hex_u64")]
        expiry: u64,
        revoker: Pubkey,
        revocation_hash: Hash32,
    },
}

impl Lock {
    /// The keys with some claim on this output.
    pub fn parties(&self) -> Vec<Pubkey> {
        match self {
            Lock::Key { pubkey } => vec![*pubkey],
            Lock::MultiSig { a, b } => vec![*a, *b],
            Lock::Delayed { owner, revoker, .. } => vec![*owner, *revoker],
            Lock::Tlc {
                offerer,
                receiver,
                revoker,
                ..
            } => vec![*offerer, *receiver, *revoker],
        }
    }
}

/// An output: an amount and its lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    #[serde(with = "hex_u64")]
    pub amount: Amount,
    pub lock: Lock,
}

/// The proof that unlocks an input; must match the spent output's [`Lock`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Witness {
    /// For [`Lock::Key`].
    Key { sig: Sig },
    /// For [`Lock::MultiSig`]: signatures of `a` and `b`, in that order.
    MultiSig { sig_a: Sig, sig_b: Sig },
    /// For [`Lock::Delayed`], the owner's path (after the delay).
    DelayedOwner { sig: Sig },
    /// For [`Lock::Delayed`] and [`Lock::Tlc`], the revoker's path: the revocation secret.
    Revocation { sig: Sig, secret: Hash32 },
    /// For [`Lock::Tlc`], the receiver's path.
    TlcPreimage { sig: Sig, preimage: Hash32 },
    /// For [`Lock::Tlc`], the offerer's path (at or after expiry).
    TlcTimeout { sig: Sig },
}

/// A spent output and the proof that unlocks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub prev: OutPoint,
    pub witness: Witness,
}

/// What a transaction is for. Part of the signed body, so nobody can relabel it; the ledger
/// checks the structural rules of each kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TxKind {
    /// Dev faucet money (only the ledger creates these).
    Faucet {
        #[serde(with = "hex_u64")]
        nonce: u64,
    },
    /// Wallet to wallet.
    Transfer,
    /// Creates a channel's 2-of-2 output.
    Funding { channel_id: Hash32 },
    /// A channel party's commitment: spends the funding output.
    Commitment {
        channel_id: Hash32,
        holder: Pubkey,
        #[serde(with = "hex_u64")]
        number: u64,
    },
    /// Spends the funding output with both signatures, paying each side its balance.
    CooperativeClose { channel_id: Hash32 },
    /// Takes a revoked commitment's outputs with its revocation secret.
    Penalty { channel_id: Hash32 },
    /// Moves settled channel outputs (delayed balance, TLCs) to a wallet.
    Sweep { channel_id: Hash32 },
}

impl TxKind {
    /// The channel this transaction belongs to, if any.
    pub fn channel_id(&self) -> Option<Hash32> {
        match self {
            TxKind::Faucet { .. } | TxKind::Transfer => None,
            TxKind::Funding { channel_id }
            | TxKind::Commitment { channel_id, .. }
            | TxKind::CooperativeClose { channel_id }
            | TxKind::Penalty { channel_id }
            | TxKind::Sweep { channel_id } => Some(*channel_id),
        }
    }

    /// Short name: `funding`, `commitment`, ...
    pub fn name(&self) -> &'static str {
        match self {
            TxKind::Faucet { .. } => "faucet",
            TxKind::Transfer => "transfer",
            TxKind::Funding { .. } => "funding",
            TxKind::Commitment { .. } => "commitment",
            TxKind::CooperativeClose { .. } => "cooperative_close",
            TxKind::Penalty { .. } => "penalty",
            TxKind::Sweep { .. } => "sweep",
        }
    }
}

/// A transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    pub kind: TxKind,
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
}

#[derive(Serialize)]
struct TxBody<'a> {
    domain: &'static str,
    kind: &'a TxKind,
    inputs: Vec<OutPoint>,
    outputs: &'a [Output],
}

impl Transaction {
    /// A transaction with the given body and no witnesses yet (to compute ids and sign).
    pub fn unsigned(kind: TxKind, prevs: &[OutPoint], outputs: Vec<Output>) -> Self {
        Transaction {
            kind,
            inputs: prevs
                .iter()
                .map(|prev| Input {
                    prev: *prev,
                    witness: Witness::Key { sig: Sig([0; 64]) },
                })
                .collect(),
            outputs,
        }
    }

    /// The id: SHA-256 of the body without witnesses.
    pub fn txid(&self) -> Txid {
        let body = TxBody {
            domain: "dlp-chain/tx/v1",
            kind: &self.kind,
            inputs: self.inputs.iter().map(|i| i.prev).collect(),
            outputs: &self.outputs,
        };
        // Serialising plain data into a Vec cannot fail.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        Hash32::digest(&bytes)
    }

    /// The digest every input signature signs.
    pub fn sighash(&self) -> Hash32 {
        let mut data = b"dlp-chain/sighash/v1".to_vec();
        data.extend_from_slice(&self.txid().0);
        Hash32::digest(&data)
    }

    /// Outpoint of output `index` of this transaction.
    pub fn outpoint(&self, index: u32) -> OutPoint {
        OutPoint {
            txid: self.txid(),
            index,
        }
    }

    /// Sum of the outputs.
    pub fn output_total(&self) -> Amount {
        self.outputs.iter().map(|o| o.amount).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> (secp256k1::SecretKey, Pubkey) {
        let sk = secp256k1::SecretKey::from_secret_bytes([byte; 32]).expect("valid key");
        let pk = Pubkey::from(sk.public_key());
        (sk, pk)
    }

    #[test]
    fn txid_ignores_witnesses_and_covers_the_body() {
        let (_, pk) = key(1);
        let out = vec![Output {
            amount: 5,
            lock: Lock::Key { pubkey: pk },
        }];
        let prev = OutPoint {
            txid: Hash32([7; 32]),
            index: 0,
        };
        let mut tx = Transaction::unsigned(TxKind::Transfer, &[prev], out);
        let id = tx.txid();
        tx.inputs[0].witness = Witness::Key { sig: Sig([9; 64]) };
        assert_eq!(tx.txid(), id);
        tx.outputs[0].amount = 6;
        assert_ne!(tx.txid(), id);
    }

    #[test]
    fn signatures_verify_only_for_the_signer_and_digest() {
        let (sk, pk) = key(1);
        let (_, other) = key(2);
        let digest = Hash32::digest(b"m");
        let sig = sign_digest(&sk, &digest);
        assert!(verify_digest(&pk, &digest, &sig));
        assert!(!verify_digest(&other, &digest, &sig));
        assert!(!verify_digest(&pk, &Hash32::digest(b"n"), &sig));
    }

    #[test]
    fn wire_shapes_use_hex_and_tags() {
        let (_, pk) = key(1);
        let out = Output {
            amount: 255,
            lock: Lock::Key { pubkey: pk },
        };
        let json = serde_json::to_value(&out).expect("serialise");
        assert_eq!(json["amount"], "0xff");
        assert_eq!(json["lock"]["type"], "key");
        let back: Output = serde_json::from_value(json).expect("parse");
        assert_eq!(back, out);
        assert!(
            serde_json::from_str::<Output>(r#"{"amount":"12","lock":{"type":"key"}}"#).is_err()
        );
    }
}
