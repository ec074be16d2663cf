//! The node's two secret keys, in Fiber's files: `<base>/fiber/sk` (node identity, 32 raw
//! bytes) and `<base>/ckb/key` (wallet, hex text). Both are created 0600 on first start and are
//! what a backup copies next to the database, because channel state is useless without them.

use std::path::{Path, PathBuf};

use secp256k1::{PublicKey, SecretKey};

use crate::fsutil;
use crate::layout::BaseDir;

/// Permission bits of key files.
pub(crate) const KEY_FILE_MODE: u32 = 0o600;

/// Why a key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write key file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {} is not a secp256k1 secret key: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error("no randomness for key generation: {0}")]
    Random(String),
}

/// A node's secret keys.
#[derive(Clone)]
pub struct NodeKeys {
    node: SecretKey,
    wallet: SecretKey,
}

impl std::fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKeys")
            .field("node_pubkey", &self.node_pubkey_hex())
            .field("wallet_pubkey", &self.wallet_pubkey_hex())
            .finish()
    }
}

impl NodeKeys {
    /// Load both keys from `base`, creating whichever is missing. Returns the keys and whether
    /// anything was created.
    pub fn load_or_create(base: &BaseDir) -> Result<(Self, bool), KeyError> {
        let mut created = false;
        let node = load_or_create_key(&base.node_key(), KeyFormat::Raw, &mut created)?;
        let wallet = load_or_create_key(&base.wallet_key(), KeyFormat::Hex, &mut created)?;
        Ok((Self { node, wallet }, created))
    }

    /// Load both keys; fails if either is missing.
    pub fn load(base: &BaseDir) -> Result<Self, KeyError> {
        Ok(Self {
            node: read_secret_key(&base.node_key())?,
            wallet: read_secret_key(&base.wallet_key())?,
        })
    }

    /// The node's secret key.
    pub(crate) fn node_secret(&self) -> &SecretKey {
        &self.node
    }

    /// The wallet's secret key (`ckb/key`): signs wallet spends on the chain.
    pub(crate) fn wallet_secret(&self) -> &SecretKey {
        &self.wallet
    }

    /// The node's public key (its identity, Fiber's node id).
    pub(crate) fn node_pubkey(&self) -> PublicKey {
        self.node.public_key()
    }

    /// The node's public key, compressed, as hex.
    pub fn node_pubkey_hex(&self) -> String {
        hex::encode(self.node_pubkey().serialize())
    }

    /// The wallet's public key, compressed, as hex.
    pub(crate) fn wallet_pubkey_hex(&self) -> String {
        hex::encode(self.wallet.public_key().serialize())
    }
}

/// Write both key files from given keys (a harness with a seed makes node identities
/// reproducible this way). Fails if either file exists.
pub fn install_keys(base: &BaseDir, node: &SecretKey, wallet: &SecretKey) -> Result<(), KeyError> {
    for (path, key, format) in [
        (base.node_key(), node, KeyFormat::Raw),
        (base.wallet_key(), wallet, KeyFormat::Hex),
    ] {
        let bytes = match format {
            KeyFormat::Raw => key.to_secret_bytes().to_vec(),
            KeyFormat::Hex => format!("{}\n", hex::encode(key.to_secret_bytes())).into_bytes(),
        };
        let write_err = |source| KeyError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        fsutil::write_new(&path, &bytes, KEY_FILE_MODE).map_err(write_err)?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum KeyFormat {
    /// 32 raw bytes (`fiber/sk`).
    Raw,
    /// 64 hex characters and a newline (`ckb/key`).
    Hex,
}

fn load_or_create_key(
    path: &Path,
    format: KeyFormat,
    created: &mut bool,
) -> Result<SecretKey, KeyError> {
    if path.exists() {
        return read_secret_key(path);
    }
    let key = random_secret_key()?;
    let bytes = match format {
        KeyFormat::Raw => key.to_secret_bytes().to_vec(),
        KeyFormat::Hex => format!("{}\n", hex::encode(key.to_secret_bytes())).into_bytes(),
    };
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_err)?;
    }
    fsutil::write_new(path, &bytes, KEY_FILE_MODE).map_err(write_err)?;
    *created = true;
    Ok(key)
}

/// Parse a secret key file: 32 raw bytes, or 64 hex digits (optional `0x`, surrounding
/// whitespace allowed).
pub(crate) fn parse_secret_key(path: &Path, bytes: &[u8]) -> Result<SecretKey, KeyError> {
    let invalid = |detail: String| KeyError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let raw: [u8; 32] = if bytes.len() == 32 {
        bytes.try_into().map_err(|_| invalid("length".into()))?
    } else {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            invalid(format!(
                "{} bytes, neither 32 raw bytes nor hex",
                bytes.len()
            ))
        })?;
        let text = text.trim();
        let text = text.strip_prefix("0x").unwrap_or(text);
        let decoded = hex::decode(text).map_err(|e| invalid(format!("bad hex: {e}")))?;
        decoded
            .try_into()
            .map_err(|v: Vec<u8>| invalid(format!("{} bytes of hex, expected 32", v.len())))?
    };
    SecretKey::from_secret_bytes(raw).map_err(|e| invalid(e.to_string()))
}

/// Read and parse one secret key file.
pub(crate) fn read_secret_key(path: &Path) -> Result<SecretKey, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_secret_key(path, &bytes)
}

fn random_secret_key() -> Result<SecretKey, KeyError> {
    // A uniformly random 32-byte string is a valid key except with probability ~2^-128;
    // a few tries bound the loop.
    for _ in 0..8 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        if let Ok(key) = SecretKey::from_secret_bytes(bytes) {
            return Ok(key);
        }
    }
    Err(KeyError::Random(
        "8 random draws were not valid keys".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_and_hex_forms_of_the_same_key() {
        let raw = [7u8; 32];
        let from_raw = parse_secret_key(Path::new("sk"), &raw).expect("raw");
        let hex_text = format!("0x{}\n", hex::encode(raw));
        let from_hex = parse_secret_key(Path::new("key"), hex_text.as_bytes()).expect("hex");
        assert_eq!(from_raw, from_hex);
    }

    #[test]
    fn rejects_short_and_zero_keys_naming_the_file() {
        let err = parse_secret_key(Path::new("/x/sk"), b"abcd").expect_err("must fail");
        assert!(err.to_string().contains("/x/sk"), "{err}");
        assert!(parse_secret_key(Path::new("sk"), &[0u8; 32]).is_err());
    }
}
