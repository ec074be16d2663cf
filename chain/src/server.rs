//! `dlp-chain serve`: the ledger behind JSON-RPC, for nodes that run as separate processes.
//!
//! Methods (params as one object, integers as hex strings): `fund {pubkey, amount}`,
//! `mine {blocks}`, `get_tip {}`, `get_balance {pubkey}`, `list_unspent {pubkey}`,
//! `get_transaction {txid}`, `get_transactions {channel_id?}`, `get_spender {outpoint}`,
//! `send_transaction {tx}`, `get_events {after, wait_ms?}` (long poll, at most 30 s).
//! A rejected transaction answers error [`REJECTED`] with `data = {txid, reason}`.
//!
//! Bounds, so that one request can neither exhaust the server's memory nor overflow its sums
//! (each is refused with an error naming the limit, and nothing changes):
//! - `mine`: at most [`MAX_MINE_BLOCKS`](crate::ledger::MAX_MINE_BLOCKS) (10,000) blocks per
//!   call, else error [`INVALID_PARAMS`](crate::jsonrpc::INVALID_PARAMS). Every block is an
//!   event kept for watchers, so an unbounded count grew memory without limit; nothing in the
//!   workspace mines more than 1,000 at once.
//! - `fund`: the ledger's total (everything the faucet created) stays at most `u64::MAX`
//!   shannons; a `fund` that would pass it is [`REJECTED`] with the amount still available.
//!   Since amounts balance exactly, every balance and sum the ledger answers then fits a `u64`.
//! - `get_events`: waits at most [`MAX_EVENT_WAIT`].

use std::net::SocketAddr;
use std::time::Duration;

use jsonrpsee::RpcModule;
use jsonrpsee::server::{Server, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};

use crate::client::{ChainClient, ChainError, InProcessChain};
use crate::jsonrpc::{failed, invalid_params, params_object};
use crate::types::{Hash32, OutPoint, Pubkey, Transaction, Txid, hex_u64};

/// Error code of a rejected transaction.
pub const REJECTED: i32 = -32010;
/// Longest a `get_events` call waits.
pub const MAX_EVENT_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FundParams {
    pub pubkey: Pubkey,
    #[serde(with = "hex_u64")]
    pub amount: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MineParams {
    #[serde(with = "hex_u64")]
    pub blocks: u64,
}

/// Result of `mine` and `get_tip`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tip {
    #[serde(with = "hex_u64")]
    pub height: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PubkeyParams {
    pub pubkey: Pubkey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TxidParams {
    pub txid: Txid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelParams {
    #[serde(default)]
    pub channel_id: Option<Hash32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutPointParams {
    pub outpoint: OutPoint,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendParams {
    pub tx: Transaction,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventParams {
    #[serde(with = "hex_u64")]
    pub after: u64,
    #[serde(default, with = "crate::types::hex_u64_opt")]
    pub wait_ms: Option<u64>,
}

fn to_rpc_error(e: ChainError) -> ErrorObjectOwned {
    match e {
        ChainError::Rejected(rejection) => {
            ErrorObjectOwned::owned(REJECTED, rejection.to_string(), Some(rejection))
        }
        ChainError::Refused(message) => invalid_params(message),
        ChainError::Transport(message) => failed(message),
    }
}

/// The RPC module over an in-process chain.
pub fn build_module(chain: InProcessChain) -> RpcModule<InProcessChain> {
    let mut module = RpcModule::new(chain);
    // Registration only fails on duplicate names; these are distinct.
    let _ = module.register_async_method("fund", |params, chain, _| async move {
        let p: FundParams = params_object(&params)?;
        chain.fund(p.pubkey, p.amount).await.map_err(to_rpc_error)
    });
    let _ = module.register_async_method("mine", |params, chain, _| async move {
        let p: MineParams = params_object(&params)?;
        let height = chain.mine(p.blocks).await.map_err(to_rpc_error)?;
        Ok::<_, ErrorObjectOwned>(Tip { height })
    });
    let _ = module.register_async_method("get_tip", |params, chain, _| async move {
        let _: serde_json::Map<String, serde_json::Value> = params_object(&params)?;
        let height = chain.height().await.map_err(to_rpc_error)?;
        Ok::<_, ErrorObjectOwned>(Tip { height })
    });
    let _ = module.register_async_method("get_balance", |params, chain, _| async move {
        let p: PubkeyParams = params_object(&params)?;
        chain.balance(p.pubkey).await.map_err(to_rpc_error)
    });
    let _ = module.register_async_method("list_unspent", |params, chain, _| async move {
        let p: PubkeyParams = params_object(&params)?;
        chain.unspent(p.pubkey).await.map_err(to_rpc_error)
    });
    let _ = module.register_async_method("get_transaction", |params, chain, _| async move {
        let p: TxidParams = params_object(&params)?;
        chain.transaction(p.txid).await.map_err(to_rpc_error)
    });
    let _ = module.register_async_method("get_transactions", |params, chain, _| async move {
        let p: ChannelParams = params_object(&params)?;
        let transactions = chain
            .transactions(p.channel_id)
            .await
            .map_err(to_rpc_error)?;
        Ok::<_, ErrorObjectOwned>(serde_json::json!({ "transactions": transactions }))
    });
    let _ = module.register_async_method("get_spender", |params, chain, _| async move {
        let p: OutPointParams = params_object(&params)?;
        chain.spender(p.outpoint).await.map_err(to_rpc_error)
    });
    let _ = module.register_async_method("send_transaction", |params, chain, _| async move {
        let p: SendParams = params_object(&params)?;
        chain.submit(p.tx).await.map_err(to_rpc_error)
    });
    let _ = module.register_async_method("get_events", |params, chain, _| async move {
        let p: EventParams = params_object(&params)?;
        let wait = Duration::from_millis(p.wait_ms.unwrap_or(0)).min(MAX_EVENT_WAIT);
        chain
            .events_after(p.after, wait)
            .await
            .map_err(to_rpc_error)
    });
    module
}

/// Serve `chain` on `listen`. Returns the bound address and the server handle (drop or `stop`
/// it to shut down).
pub async fn serve(
    chain: InProcessChain,
    listen: SocketAddr,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let server = Server::builder().build(listen).await?;
    let addr = server.local_addr()?;
    let handle = server.start(build_module(chain));
    Ok((addr, handle))
}
