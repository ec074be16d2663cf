//! The `graph` module: what the node knows of the network's public channels (`crate::graph`),
//! in Fiber's shapes. `graph_channels` and `graph_nodes` page with `limit` and `after` (the
//! `last_cursor` of the previous page), in channel id and node key order.

use dlp_chain::jsonrpc::params_object;
use dlp_chain::{Hash32, Pubkey};
use jsonrpsee::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{RpcContext, gone, hex_u64};
use crate::core::Command;
use crate::graph::{ChannelUpdate, GraphChannel};

/// Page size when the caller does not say, and the most one page holds.
const DEFAULT_LIMIT: u64 = 500;
const MAX_LIMIT: u64 = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    #[serde(default, with = "dlp_chain::types::hex_u64_opt")]
    limit: Option<u64>,
    /// Hex of the last channel id (or node key) of the previous page.
    #[serde(default)]
    after: Option<String>,
}

impl PageParams {
    fn limit(&self) -> Result<usize, ErrorObjectOwned> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ErrorObjectOwned::owned(
                super::INVALID_PARAMS,
                format!("limit must be 1 to {MAX_LIMIT}"),
                None::<()>,
            ));
        }
        Ok(usize::try_from(limit).unwrap_or(usize::MAX))
    }
}

/// A page's `limit` and its `after` cursor, parsed as `K` (`what` names it in the error);
/// no params at all is the first page at the default size.
fn page_of<K: std::str::FromStr>(
    params: &jsonrpsee::types::Params<'_>,
    what: &str,
) -> Result<(usize, Option<K>), ErrorObjectOwned> {
    let p: PageParams = if super::expect_no_params(params).is_ok() {
        PageParams::default()
    } else {
        params_object(params)?
    };
    let after = p
        .after
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|_| {
            ErrorObjectOwned::owned(
                super::INVALID_PARAMS,
                format!("after must be {what}"),
                None::<()>,
            )
        })?;
    Ok((p.limit()?, after))
}

fn update_info(update: Option<&ChannelUpdate>) -> Value {
    match update {
        None => Value::Null,
        Some(u) => json!({
            "timestamp": hex_u64(u.timestamp),
            "enabled": u.enabled,
            "fee_rate": hex_u64(u.fee_rate),
            "tlc_expiry_delta": hex_u64(u.tlc_expiry_delta),
        }),
    }
}

fn channel_json(channel: &GraphChannel) -> Value {
    let a = &channel.announcement;
    json!({
        "channel_id": a.channel_id,
        "channel_outpoint": a.funding_outpoint,
        "node1": a.node_1,
        "node2": a.node_2,
        "capacity": hex_u64(a.capacity),
        "update_info_of_node1": update_info(channel.updates[0].as_ref()),
        "update_info_of_node2": update_info(channel.updates[1].as_ref()),
    })
}

async fn graph_of(ctx: &RpcContext) -> Result<Vec<GraphChannel>, ErrorObjectOwned> {
    let ctx = ctx.get()?;
    ctx.protocol()
        .core
        .request(|reply| Command::GraphChannels { reply })
        .await
        .map_err(gone)
}

pub(super) fn register(module: &mut RpcModule<RpcContext>) {
    let _ = module.register_async_method("graph_channels", |params, ctx, _| async move {
        let (limit, after) = page_of::<Hash32>(&params, "a channel id")?;
        let page: Vec<GraphChannel> = graph_of(&ctx)
            .await?
            .into_iter()
            .filter(|c| after.is_none_or(|a| c.announcement.channel_id > a))
            .take(limit)
            .collect();
        let last = page.last().map(|c| c.announcement.channel_id.to_string());
        let channels: Vec<Value> = page.iter().map(channel_json).collect();
        Ok::<_, ErrorObjectOwned>(json!({ "channels": channels, "last_cursor": last }))
    });
    let _ = module.register_async_method("graph_nodes", |params, ctx, _| async move {
        let (limit, after) = page_of::<Pubkey>(&params, "a node key")?;
        let mut counts: std::collections::BTreeMap<Pubkey, u64> = std::collections::BTreeMap::new();
        for channel in graph_of(&ctx).await? {
            for node in [channel.announcement.node_1, channel.announcement.node_2] {
                *counts.entry(node).or_default() += 1;
            }
        }
        let page: Vec<(Pubkey, u64)> = counts
            .into_iter()
            .filter(|(node, _)| after.is_none_or(|a| *node > a))
            .take(limit)
            .collect();
        let last = page.last().map(|(node, _)| node.to_string());
        let nodes: Vec<Value> = page
            .iter()
            .map(|(node, count)| json!({ "node_id": node, "channel_count": hex_u64(*count) }))
            .collect();
        Ok::<_, ErrorObjectOwned>(json!({ "nodes": nodes, "last_cursor": last }))
    });
}
