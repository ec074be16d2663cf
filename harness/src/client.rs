//! A typed async client for one node's JSON-RPC. Both drivers talk to nodes through it, so a
//! scenario exercises the same RPC surface whether the node is a task or a process.

use std::net::SocketAddr;
use std::time::Duration;

use dlp_chain::jsonrpc::RpcClient;
use dlp_chain::{Hash32, Pubkey};
use dlp_node_api::{ChannelInfo, NodeEvent, NodeInfo, PaymentStatus};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::HarnessError;

/// RPC client for one named node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    name: String,
    rpc: RpcClient,
}

/// A payment as `get_payment` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentView {
    pub payment_hash: Hash32,
    pub status: PaymentStatus,
    #[serde(default)]
    pub failed_error: Option<String>,
    /// The hops of the payment's last route, the payee last.
    #[serde(default)]
    pub route: Vec<RouteHopView>,
    /// Routes tried.
    #[serde(default, with = "dlp_chain::types::hex_u64_opt")]
    pub attempts: Option<u64>,
}

/// One hop of a payment's route, as `get_payment` reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteHopView {
    pub node: Pubkey,
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

impl NodeClient {
    pub fn new(name: &str, addr: SocketAddr) -> Self {
        Self {
            name: name.to_string(),
            rpc: RpcClient::new(addr),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, HarnessError> {
        self.rpc
            .call_async(method, Some(params))
            .await
            .map_err(|e| HarnessError::node(&self.name, e))
    }

    /// Call and return the server's error message instead of failing (for refusals the
    /// scenario expects).
    async fn call_or_refusal(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, String>, HarnessError> {
        match self.rpc.call_async::<Value>(method, Some(params)).await {
            Ok(v) => Ok(Ok(v)),
            Err(e) => match e.server_error() {
                Some(err) => Ok(Err(err.message.clone())),
                None => Err(HarnessError::node(&self.name, e)),
            },
        }
    }

    pub async fn node_info(&self) -> Result<NodeInfo, HarnessError> {
        self.call("node_info", json!({})).await
    }

    pub async fn connect_peer(&self, address: &str) -> Result<(), HarnessError> {
        let _: Value = self
            .call("connect_peer", json!({ "address": address }))
            .await?;
        Ok(())
    }

    /// The node's connected peers.
    pub async fn list_peers(&self) -> Result<Vec<dlp_node_api::PeerInfo>, HarnessError> {
        #[derive(Deserialize)]
        struct List {
            peers: Vec<dlp_node_api::PeerInfo>,
        }
        let list: List = self.call("list_peers", json!({})).await?;
        Ok(list.peers)
    }

    pub async fn disconnect_peer(
        &self,
        pubkey: &Pubkey,
    ) -> Result<Result<Value, String>, HarnessError> {
        self.call_or_refusal("disconnect_peer", json!({ "pubkey": pubkey }))
            .await
    }

    pub async fn open_channel(&self, pubkey: &Pubkey, amount: u64) -> Result<Hash32, HarnessError> {
        #[derive(Deserialize)]
        struct Opened {
            temporary_channel_id: Hash32,
        }
        let opened: Opened = self
            .call(
                "open_channel",
                json!({ "pubkey": pubkey, "funding_amount": hex(amount) }),
            )
            .await?;
        Ok(opened.temporary_channel_id)
    }

    pub async fn list_channels(&self) -> Result<Vec<ChannelInfo>, HarnessError> {
        #[derive(Deserialize)]
        struct List {
            channels: Vec<ChannelInfo>,
        }
        let list: List = self
            .call("list_channels", json!({ "include_closed": true }))
            .await?;
        Ok(list.channels)
    }

    /// The channels the node lists that are not closed, only those with `peer` if given: the
    /// node filters them itself (`list_channels` with `pubkey`, `include_closed = false`).
    pub async fn open_channels_with(
        &self,
        peer: Option<&Pubkey>,
    ) -> Result<Vec<ChannelInfo>, HarnessError> {
        #[derive(Deserialize)]
        struct List {
            channels: Vec<ChannelInfo>,
        }
        let mut params = json!({ "include_closed": false });
        if let Some(peer) = peer {
            params["pubkey"] = json!(peer);
        }
        let list: List = self.call("list_channels", params).await?;
        Ok(list.channels)
    }

    pub async fn new_invoice(&self, amount: u64) -> Result<String, HarnessError> {
        let invoice: Value = self
            .call("new_invoice", json!({ "amount": hex(amount) }))
            .await?;
        invoice["invoice_address"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| HarnessError::node(&self.name, "new_invoice without an address"))
    }

    /// Start a payment; `Err(refusal)` when the node refused it outright.
    pub async fn send_payment(
        &self,
        params: Value,
    ) -> Result<Result<PaymentView, String>, HarnessError> {
        match self.call_or_refusal("send_payment", params).await? {
            Ok(v) => serde_json::from_value(v).map(Ok).map_err(|e| {
                HarnessError::node(&self.name, format!("bad send_payment answer: {e}"))
            }),
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    pub async fn get_payment(&self, hash: &Hash32) -> Result<PaymentView, HarnessError> {
        self.call("get_payment", json!({ "payment_hash": hash }))
            .await
    }

    pub async fn shutdown_channel(
        &self,
        channel: &Hash32,
        force: bool,
    ) -> Result<Result<Value, String>, HarnessError> {
        self.call_or_refusal(
            "shutdown_channel",
            json!({ "channel_id": channel, "force": force }),
        )
        .await
    }

    pub async fn backup(&self) -> Result<(), HarnessError> {
        let _: Value = self.call("backup", json!({})).await?;
        Ok(())
    }

    /// `backup`, its refusal (the node's error message: a full disk, say) as `Ok(Err)`.
    pub async fn try_backup(&self) -> Result<Result<(), String>, HarnessError> {
        Ok(self.call_or_refusal("backup", json!({})).await?.map(|_| ()))
    }

    pub async fn hold(
        &self,
        step: &str,
        channel: Option<&Hash32>,
        nth: u64,
    ) -> Result<(), HarnessError> {
        let mut params = json!({ "step": step, "nth": nth });
        if let Some(channel) = channel {
            params["channel_id"] = json!(channel);
        }
        let _: Value = self.call("dev_hold", params).await?;
        Ok(())
    }

    /// Arm a step action (hold or backup) exactly as given.
    pub async fn arm_step(&self, spec: &dlp_node_api::StepSpec) -> Result<(), HarnessError> {
        let params = serde_json::to_value(spec)
            .map_err(|e| HarnessError::Setup(format!("cannot encode step {spec:?}: {e}")))?;
        let _: Value = self.call("dev_hold", params).await?;
        Ok(())
    }

    /// Pin the order of racing inputs (`dev_pin_order`).
    pub async fn pin_order(
        &self,
        inputs: Vec<dlp_node_api::OrderedInput>,
    ) -> Result<(), HarnessError> {
        let params = serde_json::to_value(dlp_node_api::PinOrder { inputs })
            .map_err(|e| HarnessError::Setup(format!("cannot encode a pinned order: {e}")))?;
        let _: Value = self.call("dev_pin_order", params).await?;
        Ok(())
    }

    /// Where the pinned order stands (`dev_order_status`).
    pub async fn order_status(&self) -> Result<dlp_node_api::OrderStatus, HarnessError> {
        self.call("dev_order_status", json!({})).await
    }

    /// End the pinned order, with where it stood (`dev_unpin_order`).
    pub async fn unpin_order(&self) -> Result<dlp_node_api::OrderStatus, HarnessError> {
        self.call("dev_unpin_order", json!({})).await
    }

    pub async fn release(&self) -> Result<(), HarnessError> {
        let _: Value = self.call("dev_release", json!({})).await?;
        Ok(())
    }

    /// Events after `after`, waiting up to `wait` for the first.
    pub async fn events(&self, after: u64, wait: Duration) -> Result<Vec<NodeEvent>, HarnessError> {
        #[derive(Deserialize)]
        struct Events {
            events: Vec<NodeEvent>,
        }
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let events: Events = self
            .call(
                "dev_events",
                json!({ "after": hex(after), "wait_ms": hex(wait_ms) }),
            )
            .await?;
        Ok(events.events)
    }
}
