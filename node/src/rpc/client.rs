//! The JSON-RPC client used by tests, the CLI and the harness. It lives in `dlp-chain` (which
//! also needs it to reach `dlp-chain serve`); re-exported here so node users find it.

pub use dlp_chain::jsonrpc::{RpcCallError, RpcClient, RpcErrorObject};
