//! [`ChainClient`] over JSON-RPC to `dlp-chain serve`.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::client::{ChainClient, ChainError, Submitted};
use crate::jsonrpc::{RpcCallError, RpcClient};
use crate::ledger::{Balance, ChainEvent, Rejection, TxRecord, Unspent};
use crate::server::{REJECTED, Tip};
use crate::types::{Amount, Hash32, OutPoint, Pubkey, Transaction, Txid};

/// A chain reached over JSON-RPC.
#[derive(Debug, Clone)]
pub struct RemoteChain {
    rpc: RpcClient,
}

/// Why an `rpc_url` could not be used.
#[derive(Debug, thiserror::Error)]
#[error("chain rpc_url {url:?}: {reason}")]
pub struct BadRpcUrl {
    pub url: String,
    pub reason: String,
}

/// Parse `http://HOST:PORT[/]` (an IP literal host) into a socket address.
pub fn parse_rpc_url(url: &str) -> Result<SocketAddr, BadRpcUrl> {
    let bad = |reason: &str| BadRpcUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("expected http://HOST:PORT"))?;
    let authority = rest.trim_end_matches('/');
    authority
        .parse()
        .map_err(|_| bad("expected an IP address and port, e.g. http://127.0.0.1:8114"))
}

impl RemoteChain {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            rpc: RpcClient::new(addr),
        }
    }

    /// A client for an `http://HOST:PORT` URL.
    pub fn from_url(url: &str) -> Result<Self, BadRpcUrl> {
        parse_rpc_url(url).map(Self::new)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, ChainError> {
        self.call_with(&self.rpc, method, params).await
    }

    async fn call_with<T: DeserializeOwned>(
        &self,
        rpc: &RpcClient,
        method: &str,
        params: Value,
    ) -> Result<T, ChainError> {
        rpc.call_async(method, Some(params))
            .await
            .map_err(|e| match &e {
                RpcCallError::Server { error, .. } if error.code == i64::from(REJECTED) => {
                    match error
                        .data
                        .clone()
                        .and_then(|d| serde_json::from_value::<Rejection>(d).ok())
                    {
                        Some(rejection) => ChainError::Rejected(rejection),
                        None => ChainError::Transport(e.to_string()),
                    }
                }
                // The chain was reached and answered an error (a bound, bad params): say so,
                // not "unreachable".
                RpcCallError::Server { error, .. } => ChainError::Refused(error.message.clone()),
                _ => ChainError::Transport(e.to_string()),
            })
    }
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

#[async_trait]
impl ChainClient for RemoteChain {
    async fn submit(&self, tx: Transaction) -> Result<Submitted, ChainError> {
        self.call("send_transaction", json!({ "tx": tx })).await
    }

    async fn fund(&self, pubkey: Pubkey, amount: Amount) -> Result<Txid, ChainError> {
        self.call("fund", json!({ "pubkey": pubkey, "amount": hex(amount) }))
            .await
    }

    async fn mine(&self, blocks: u64) -> Result<u64, ChainError> {
        let tip: Tip = self.call("mine", json!({ "blocks": hex(blocks) })).await?;
        Ok(tip.height)
    }

    async fn height(&self) -> Result<u64, ChainError> {
        let tip: Tip = self.call("get_tip", json!({})).await?;
        Ok(tip.height)
    }

    async fn balance(&self, pubkey: Pubkey) -> Result<Balance, ChainError> {
        self.call("get_balance", json!({ "pubkey": pubkey })).await
    }

    async fn unspent(&self, pubkey: Pubkey) -> Result<Vec<Unspent>, ChainError> {
        self.call("list_unspent", json!({ "pubkey": pubkey })).await
    }

    async fn transaction(&self, txid: Txid) -> Result<Option<TxRecord>, ChainError> {
        self.call("get_transaction", json!({ "txid": txid })).await
    }

    async fn transactions(&self, channel_id: Option<Hash32>) -> Result<Vec<TxRecord>, ChainError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            transactions: Vec<TxRecord>,
        }
        let params = match channel_id {
            Some(id) => json!({ "channel_id": id }),
            None => json!({}),
        };
        let answer: Answer = self.call("get_transactions", params).await?;
        Ok(answer.transactions)
    }

    async fn spender(&self, outpoint: OutPoint) -> Result<Option<Txid>, ChainError> {
        self.call("get_spender", json!({ "outpoint": outpoint }))
            .await
    }

    async fn events_after(
        &self,
        after: u64,
        wait: Duration,
    ) -> Result<Vec<ChainEvent>, ChainError> {
        let rpc = self
            .rpc
            .clone()
            .with_timeout(wait + Duration::from_secs(10));
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.call_with(
            &rpc,
            "get_events",
            json!({ "after": hex(after), "wait_ms": hex(wait_ms) }),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_urls_must_be_http_ip_and_port() {
        assert_eq!(
            parse_rpc_url("http://127.0.0.1:8114/")
                .expect("valid")
                .port(),
            8114
        );
        assert!(parse_rpc_url("https://127.0.0.1:1").is_err());
        assert!(parse_rpc_url("http://localhost:1").is_err());
    }
}
