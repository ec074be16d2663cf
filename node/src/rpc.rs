//! JSON-RPC 2.0 over HTTP, with Fiber's conventions: params as one object (bare, or as the
//! single element of an array), integers as `0x`-prefixed hex strings. Methods are grouped in
//! Fiber's modules; a method of a module that is not enabled is simply not registered, so it
//! answers JSON-RPC's "method not found" (-32601), exactly like an unknown method.

pub mod client;

use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::{Deserialize, Serialize};

use crate::config::RpcModule as Module;
use crate::node::NodeContext;

/// JSON-RPC code for invalid params.
pub const INVALID_PARAMS: i32 = -32602;
/// Application error code used for failed operations (backup failed, ...).
pub const OPERATION_FAILED: i32 = -32000;

/// Result of `node_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// dlp-node version.
    pub version: String,
    /// Node public key, compressed, hex (Fiber's node id).
    pub pubkey: String,
    /// `"rocksdb"` or `"sqlite"`.
    pub store_backend: String,
    /// Number of persisted channels, as a hex string.
    pub channel_count: String,
}

/// Format an integer the Fiber way.
pub fn hex_u64(n: u64) -> String {
    format!("{n:#x}")
}

/// Parse a Fiber hex integer.
pub fn parse_hex_u64(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
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

/// Build the RPC module for a node, registering only the enabled modules' methods.
pub fn build_module(ctx: Arc<NodeContext>) -> RpcModule<Arc<NodeContext>> {
    let config = ctx.config().clone();
    let mut module = RpcModule::new(ctx);
    // Registration can only fail on a duplicate name; the names below are distinct constants.
    if config.module_enabled(Module::Info) {
        let _ = module.register_method("node_info", |params, ctx, _| {
            expect_no_params(&params)?;
            let channel_count = ctx.channel_count().map_err(|e| failed(e.to_string()))?;
            Ok::<_, ErrorObjectOwned>(NodeInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                pubkey: ctx.keys().node_pubkey_hex(),
                store_backend: ctx.store().backend().to_string(),
                channel_count: hex_u64(channel_count),
            })
        });
    }
    if config.module_enabled(Module::Admin) {
        let _ = module.register_blocking_method("backup", |params, ctx, _| {
            expect_no_params(&params)?;
            match ctx.backup() {
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
        assert_eq!(parse_hex_u64("0xff"), Some(255));
        assert_eq!(parse_hex_u64("ff"), None);
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
