//! dlp-chain: a small validating ledger that plays the blockchain for dlp-node, and the
//! harness's source of truth about money.
//!
//! - [`types`]: outputs and their locks (wallet key, 2-of-2 funding, delayed-and-revocable
//!   holder balance, TLC), witnesses, transactions.
//! - [`ledger`]: validation (signatures of the right keys, revocation secrets, preimages,
//!   timelocks, no double spend, amounts balance), mempool, blocks, an ordered event log.
//! - [`client`]: the [`ChainClient`] trait nodes use, and [`InProcessChain`], a shared handle.
//! - [`server`] and [`remote`]: the same ledger over JSON-RPC (`dlp-chain serve`).
//! - [`jsonrpc`]: the small HTTP JSON-RPC client every crate of the workspace uses.

pub mod client;
pub mod jsonrpc;
pub mod ledger;
pub mod remote;
pub mod server;
pub mod types;

pub use client::{ChainClient, ChainError, InProcessChain, Submitted};
pub use ledger::{
    Balance, ChainEvent, Ledger, MAX_MINE_BLOCKS, Rejection, TooManyBlocks, TxRecord, Unspent,
};
pub use remote::RemoteChain;
pub use types::{
    Amount, Hash32, Input, Lock, OutPoint, Output, Pubkey, Sig, Transaction, TxKind, Txid, Witness,
    hex_u64, sign_digest, verify_digest,
};
