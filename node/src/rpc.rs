//! JSON-RPC 2.0 over HTTP, with Fiber's conventions: params as one object (bare, or as the
//! single element of an array), integers as `0x`-prefixed hex strings. Methods are grouped in
//! Fiber's modules; a method of a module that is not enabled is simply not registered, so it
//! answers JSON-RPC's "method not found" (-32601), exactly like an unknown method.
//!
//! Every free-text or list input has a length limit (`limits.rs`, `core::payments::invoice`),
//! checked before anything changes, and a state-changing method checks everything before it asks
//! the core: an error reply means nothing was persisted. The server's own limits (batch size, body
//! sizes, 413 for an oversize chunked body) are in `limits.rs`.

mod graph;
pub(crate) mod limits;

use std::sync::Arc;

use dlp_chain::jsonrpc::params_object;
use dlp_chain::{Hash32, Pubkey};
use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::Deserialize;
use serde_json::json;

use crate::config::RpcModule as Module;
use crate::core::{Command, CoreGone, SendPaymentRequest};
use crate::node::{NodeContext, Protocol, parse_peer_address};
use crate::steps::StepSpec;

pub(crate) use dlp_chain::jsonrpc::{INVALID_PARAMS, OPERATION_FAILED};

pub(crate) use dlp_node_api::NodeInfo;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectParams {
    address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PubkeyParams {
    pubkey: Pubkey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenParams {
    pubkey: Pubkey,
    #[serde(with = "dlp_chain::hex_u64")]
    funding_amount: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptParams {
    temporary_channel_id: Hash32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListChannelsParams {
    #[serde(default)]
    pubkey: Option<Pubkey>,
    #[serde(default)]
    include_closed: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceParams {
    #[serde(with = "dlp_chain::hex_u64")]
    amount: u64,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentHashParams {
    payment_hash: Hash32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShutdownParams {
    channel_id: Hash32,
    #[serde(default)]
    force: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsParams {
    #[serde(default, with = "dlp_chain::types::hex_u64_opt")]
    after: Option<u64>,
    /// Wait this long for a first event when there is none yet.
    #[serde(default, with = "dlp_chain::types::hex_u64_opt")]
    wait_ms: Option<u64>,
}

fn gone(e: CoreGone) -> ErrorObjectOwned {
    failed(e.to_string())
}

/// Refuse `value` (the field `field`) when it is longer than `max` bytes, without echoing it.
fn check_len(field: &str, value: &str, max: usize) -> Result<(), ErrorObjectOwned> {
    if value.len() > max {
        return Err(ErrorObjectOwned::owned(
            INVALID_PARAMS,
            format!("{field} is {} bytes; the limit is {max}", value.len()),
            None::<()>,
        ));
    }
    Ok(())
}

/// Format an integer the Fiber way.
pub(crate) fn hex_u64(n: u64) -> String {
    format!("{n:#x}")
}

/// Accept the shapes a parameterless Fiber method may receive: no params, `[]`, `{}`, `[{}]`.
fn expect_no_params(params: &Params<'_>) -> Result<(), ErrorObjectOwned> {
    let Some(raw) = params.as_str() else {
        return Ok(());
    };
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| ErrorObjectOwned::owned(INVALID_PARAMS, e.to_string(), None::<()>))?;
    let empty = match &value {
        serde_json::Value::Null => true,
        serde_json::Value::Array(items) => match items.as_slice() {
            [] => true,
            [serde_json::Value::Object(map)] => map.is_empty(),
            _ => false,
        },
        serde_json::Value::Object(map) => map.is_empty(),
        _ => false,
    };
    if empty {
        Ok(())
    } else {
        Err(ErrorObjectOwned::owned(
            INVALID_PARAMS,
            format!("this method takes no parameters, got {value}"),
            None::<()>,
        ))
    }
}

fn failed(message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(OPERATION_FAILED, message, None::<()>)
}

fn payment_json(p: &crate::core::Payment) -> serde_json::Value {
    json!({
        "payment_hash": p.payment_hash,
        "status": p.status,
        "amount": hex_u64(p.amount),
        "target_pubkey": p.target,
        "preimage": p.preimage,
        "failed_error": p.failed_error,
        "fee": hex_u64(p.fee),
        // dlp-node's own: the last route tried (payee last) and how many were tried.
        "route": p.route,
        "attempts": hex_u64(u64::from(p.attempts)),
    })
}

/// What the RPC server holds: weak references, so the server (whose tasks may outlive
/// `RunningNode::stop` by a moment) never keeps the store open after the node stopped.
#[derive(Debug)]
pub(crate) struct RpcContext {
    node: std::sync::Weak<NodeContext>,
    protocol: std::sync::Weak<Protocol>,
}

/// The node, alive for the length of one call.
struct LiveNode {
    node: Arc<NodeContext>,
    protocol: Arc<Protocol>,
}

impl LiveNode {
    fn protocol(&self) -> &Protocol {
        &self.protocol
    }
}

impl RpcContext {
    fn get(&self) -> Result<LiveNode, ErrorObjectOwned> {
        match (self.node.upgrade(), self.protocol.upgrade()) {
            (Some(node), Some(protocol)) => Ok(LiveNode { node, protocol }),
            _ => Err(failed("the node is shutting down".into())),
        }
    }
}

/// Build the RPC module for a node, registering only the enabled modules' methods.
pub(crate) fn build_module(
    node: &Arc<NodeContext>,
    protocol: &Arc<Protocol>,
) -> RpcModule<RpcContext> {
    let config = node.config().clone();
    let mut module = RpcModule::new(RpcContext {
        node: Arc::downgrade(node),
        protocol: Arc::downgrade(protocol),
    });
    // Registration can only fail on a duplicate name; the names below are distinct constants.
    if config.module_enabled(Module::Info) {
        let _ = module.register_method("node_info", |params, ctx, _| {
            let ctx = ctx.get()?;
            expect_no_params(&params)?;
            let channel_count = ctx
                .node
                .channel_count()
                .map_err(|e| failed(e.to_string()))?;
            Ok::<_, ErrorObjectOwned>(NodeInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                pubkey: ctx.node.keys().node_pubkey_hex(),
                store_backend: ctx.node.store().backend().to_string(),
                channel_count: hex_u64(channel_count),
                addresses: vec![ctx.protocol().address()],
                wallet_pubkey: ctx.node.keys().wallet_pubkey_hex(),
            })
        });
    }
    if config.module_enabled(Module::Peer) {
        let _ = module.register_async_method("connect_peer", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: ConnectParams = params_object(&params)?;
            check_len("address", &p.address, limits::MAX_PEER_ADDRESS_LEN)?;
            let allow_non_loopback = ctx.node.config().fiber.allow_non_loopback;
            let (addr, pubkey) = parse_peer_address(&p.address, allow_non_loopback)
                .map_err(|e| ErrorObjectOwned::owned(INVALID_PARAMS, e.to_string(), None::<()>))?;
            let protocol = ctx.protocol();
            if pubkey == protocol.identity.pubkey {
                return Err(failed("cannot connect to ourselves".into()));
            }
            let conn = crate::transport::dial(
                addr,
                pubkey,
                &protocol.identity,
                protocol.core.transport_sender(),
            )
            .await
            .map_err(|e| failed(e.to_string()))?;
            protocol.core.connected(conn).await.map_err(gone)?;
            Ok::<_, ErrorObjectOwned>(())
        });
        let _ = module.register_async_method("disconnect_peer", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: PubkeyParams = params_object(&params)?;
            ctx.protocol()
                .core
                .request(|reply| Command::DisconnectPeer {
                    pubkey: p.pubkey,
                    reply,
                })
                .await
                .map_err(gone)?
                .map_err(failed)
        });
        let _ = module.register_async_method("list_peers", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            expect_no_params(&params)?;
            let peers = ctx
                .protocol()
                .core
                .request(|reply| Command::ListPeers { reply })
                .await
                .map_err(gone)?;
            Ok::<_, ErrorObjectOwned>(json!({ "peers": peers }))
        });
    }
    if config.module_enabled(Module::Channel) {
        let _ = module.register_async_method("open_channel", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: OpenParams = params_object(&params)?;
            let id = ctx
                .protocol()
                .core
                .request(|reply| Command::OpenChannel {
                    pubkey: p.pubkey,
                    funding_amount: p.funding_amount,
                    reply,
                })
                .await
                .map_err(gone)?
                .map_err(failed)?;
            Ok::<_, ErrorObjectOwned>(json!({ "temporary_channel_id": id }))
        });
        let _ = module.register_async_method("accept_channel", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: AcceptParams = params_object(&params)?;
            let id = ctx
                .protocol()
                .core
                .request(|reply| Command::AcceptChannel {
                    temporary_channel_id: p.temporary_channel_id,
                    reply,
                })
                .await
                .map_err(gone)?
                .map_err(failed)?;
            Ok::<_, ErrorObjectOwned>(json!({ "channel_id": id }))
        });
        let _ = module.register_async_method("list_channels", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: ListChannelsParams = params_object(&params)?;
            let channels = ctx
                .protocol()
                .core
                .request(|reply| Command::ListChannels {
                    pubkey: p.pubkey,
                    include_closed: p.include_closed.unwrap_or(false),
                    reply,
                })
                .await
                .map_err(gone)?;
            Ok::<_, ErrorObjectOwned>(json!({ "channels": channels }))
        });
        let _ = module.register_async_method("shutdown_channel", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: ShutdownParams = params_object(&params)?;
            ctx.protocol()
                .core
                .request(|reply| Command::ShutdownChannel {
                    channel_id: p.channel_id,
                    force: p.force.unwrap_or(false),
                    reply,
                })
                .await
                .map_err(gone)?
                .map_err(failed)
        });
    }
    if config.module_enabled(Module::Invoice) {
        let _ = module.register_async_method("new_invoice", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: InvoiceParams = params_object(&params)?;
            crate::core::check_description(p.description.as_deref())
                .map_err(|e| ErrorObjectOwned::owned(INVALID_PARAMS, e, None::<()>))?;
            let invoice = ctx
                .protocol()
                .core
                .request(|reply| Command::NewInvoice {
                    amount: p.amount,
                    description: p.description,
                    reply,
                })
                .await
                .map_err(gone)?
                .map_err(failed)?;
            Ok::<_, ErrorObjectOwned>(json!({
                "invoice_address": invoice.address(),
                "invoice": {
                    "amount": hex_u64(invoice.amount),
                    "payment_hash": invoice.payment_hash,
                    "payee": invoice.payee,
                    "description": invoice.description,
                },
            }))
        });
    }
    if config.module_enabled(Module::Payment) {
        let _ = module.register_async_method("send_payment", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let request: SendPaymentRequest = params_object(&params)?;
            if let Some(invoice) = &request.invoice {
                check_len("invoice", invoice, crate::core::MAX_INVOICE_ADDRESS_LEN)?;
            }
            let payment = ctx
                .protocol()
                .core
                .request(|reply| Command::SendPayment { request, reply })
                .await
                .map_err(gone)?
                .map_err(failed)?;
            Ok::<_, ErrorObjectOwned>(payment_json(&payment))
        });
        let _ = module.register_async_method("get_payment", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: PaymentHashParams = params_object(&params)?;
            let payment = ctx
                .protocol()
                .core
                .request(|reply| Command::GetPayment {
                    payment_hash: p.payment_hash,
                    reply,
                })
                .await
                .map_err(gone)?
                .ok_or_else(|| failed(format!("no payment {}", p.payment_hash)))?;
            Ok::<_, ErrorObjectOwned>(payment_json(&payment))
        });
    }
    if config.module_enabled(Module::Graph) {
        graph::register(&mut module);
    }
    if config.module_enabled(Module::Dev) {
        let _ = module.register_method("dev_hold", |params, ctx, _| {
            let ctx = ctx.get()?;
            let spec: StepSpec = params_object(&params)?;
            check_len("step", &spec.step, limits::MAX_STEP_LEN)?;
            ctx.protocol()
                .steps
                .arm(spec)
                .map_err(|e| ErrorObjectOwned::owned(INVALID_PARAMS, e.to_string(), None::<()>))
        });
        let _ = module.register_method("dev_release", |params, ctx, _| {
            let ctx = ctx.get()?;
            expect_no_params(&params)?;
            Ok::<_, ErrorObjectOwned>(json!({ "was_held": ctx.protocol().steps.release() }))
        });
        let _ = module.register_method("dev_held", |params, ctx, _| {
            let ctx = ctx.get()?;
            expect_no_params(&params)?;
            Ok::<_, ErrorObjectOwned>(json!({ "step": ctx.protocol().steps.held() }))
        });
        let _ = module.register_async_method("dev_pin_order", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: dlp_node_api::PinOrder = params_object(&params)?;
            if p.inputs.len() > limits::MAX_PINNED_INPUTS {
                return Err(ErrorObjectOwned::owned(
                    INVALID_PARAMS,
                    format!(
                        "{} inputs pinned; at most {} at a time",
                        p.inputs.len(),
                        limits::MAX_PINNED_INPUTS
                    ),
                    None::<()>,
                ));
            }
            ctx.protocol()
                .core
                .request(|reply| Command::PinOrder {
                    inputs: p.inputs,
                    reply,
                })
                .await
                .map_err(gone)
        });
        for (method, unpin) in [("dev_order_status", false), ("dev_unpin_order", true)] {
            let _ = module.register_async_method(method, move |params, ctx, _| async move {
                let ctx = ctx.get()?;
                expect_no_params(&params)?;
                ctx.protocol()
                    .core
                    .request(|reply| Command::OrderStatus { unpin, reply })
                    .await
                    .map_err(gone)
            });
        }
        let _ = module.register_async_method("dev_events", |params, ctx, _| async move {
            let ctx = ctx.get()?;
            let p: EventsParams = params_object(&params)?;
            let after = p.after.unwrap_or(0);
            let events = &ctx.protocol().events;
            // Long poll: subscribe before looking so nothing published in between is missed.
            let mut rx = events.subscribe();
            let mut found = events.since(after);
            if found.is_empty()
                && let Some(wait) = p.wait_ms
            {
                let wait = std::time::Duration::from_millis(wait.min(30_000));
                if let Ok(Ok(_)) = tokio::time::timeout(wait, rx.recv()).await {
                    found = events.since(after);
                }
            }
            Ok::<_, ErrorObjectOwned>(json!({ "events": found }))
        });
    }
    if config.module_enabled(Module::Admin) {
        let _ = module.register_blocking_method("backup", |params, ctx, _| {
            let ctx = ctx.get()?;
            expect_no_params(&params)?;
            match ctx.node.backup() {
                Ok(info) => {
                    tracing::info!(dir = %info.dir.display(), bytes = info.total_bytes(), "backup written");
                    Ok::<_, ErrorObjectOwned>(())
                }
                Err(e) => {
                    tracing::error!(error = %e, "backup failed");
                    Err(failed(e.to_string()))
                }
            }
        });
    }
    module
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_integers_round_trip() {
        assert_eq!(hex_u64(0), "0x0");
        assert_eq!(hex_u64(255), "0xff");
    }

    #[test]
    fn parameterless_methods_accept_fibers_empty_shapes_only() {
        for ok in ["[]", "{}", "[{}]", "null"] {
            assert!(expect_no_params(&Params::new(Some(ok))).is_ok(), "{ok}");
        }
        assert!(expect_no_params(&Params::new(None)).is_ok());
        for bad in ["[1]", "{\"a\":1}", "[{\"a\":1}]"] {
            assert!(expect_no_params(&Params::new(Some(bad))).is_err(), "{bad}");
        }
    }
}
