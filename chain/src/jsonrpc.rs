//! A minimal JSON-RPC 2.0 over HTTP/1.1 client (blocking and async), and the server-side helper
//! for Fiber's parameter shape. Shared by dlp-chain, dlp-node and the harness.
//!
//! It speaks exactly the wire format a Fiber client would (one POST per call, params as a
//! one-element array holding an object), so tests exercise the real server path, and it needs no
//! HTTP stack beyond `std` and tokio. Loopback use only: no TLS, no keep-alive.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// JSON-RPC code for invalid params.
pub const INVALID_PARAMS: i32 = -32602;
/// Application error code for failed operations.
pub const OPERATION_FAILED: i32 = -32000;

/// A JSON-RPC error returned by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcErrorObject {
    pub code: i64,
    pub message: String,
    /// The error's `data` member, if any.
    pub data: Option<Value>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcCallError {
    #[error("RPC {method} to {addr}: transport: {source}")]
    Transport {
        method: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("RPC {method} to {addr}: bad response: {detail}")]
    BadResponse {
        method: String,
        addr: SocketAddr,
        detail: String,
    },
    #[error("RPC {method} to {addr}: error {}: {}", error.code, error.message)]
    Server {
        method: String,
        addr: SocketAddr,
        error: RpcErrorObject,
    },
}

impl RpcCallError {
    /// The server's error object, when the server answered with one.
    pub fn server_error(&self) -> Option<&RpcErrorObject> {
        match self {
            RpcCallError::Server { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Client for one server address.
#[derive(Debug, Clone)]
pub struct RpcClient {
    addr: SocketAddr,
    timeout: Duration,
}

impl RpcClient {
    /// A client for `addr` with a 30 s per-call timeout.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            timeout: Duration::from_secs(30),
        }
    }

    /// The same client with another per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Call `method` with `params` (an object, sent as `[params]`; `None` sends `[]`), blocking.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> Result<T, RpcCallError> {
        let body = request_body(method, params);
        let raw = self
            .post_blocking(&body)
            .map_err(|source| self.transport(method, source))?;
        self.decode(method, &raw)
    }

    /// Call `method` from async code.
    pub async fn call_async<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> Result<T, RpcCallError> {
        let body = request_body(method, params);
        let raw = match tokio::time::timeout(self.timeout, self.post_async(&body)).await {
            Ok(result) => result.map_err(|source| self.transport(method, source))?,
            Err(_) => {
                return Err(self.transport(
                    method,
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "call timed out"),
                ));
            }
        };
        self.decode(method, &raw)
    }

    fn transport(&self, method: &str, source: std::io::Error) -> RpcCallError {
        RpcCallError::Transport {
            method: method.into(),
            addr: self.addr,
            source,
        }
    }

    fn decode<T: DeserializeOwned>(&self, method: &str, raw: &str) -> Result<T, RpcCallError> {
        let bad = |detail: String| RpcCallError::BadResponse {
            method: method.into(),
            addr: self.addr,
            detail,
        };
        let response: Value = serde_json::from_str(raw).map_err(|e| bad(format!("{e}: {raw}")))?;
        if let Some(error) = response.get("error") {
            return Err(RpcCallError::Server {
                method: method.into(),
                addr: self.addr,
                error: RpcErrorObject {
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    data: error.get("data").cloned(),
                },
            });
        }
        let result = response
            .get("result")
            .cloned()
            .ok_or_else(|| bad(format!("no result: {raw}")))?;
        serde_json::from_value(result).map_err(|e| bad(format!("{e}: {raw}")))
    }

    fn request_head(&self, body: &str) -> String {
        format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.addr,
            body.len(),
            body
        )
    }

    fn post_blocking(&self, body: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.write_all(self.request_head(body).as_bytes())?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        http_body(&response)
    }

    async fn post_async(&self, body: &str) -> std::io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await?;
        stream.write_all(self.request_head(body).as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        http_body(&response)
    }
}

fn request_body(method: &str, params: Option<Value>) -> String {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": method,
        "params": params.map_or_else(|| json!([]), |p| json!([p])),
    })
    .to_string()
}

fn invalid_data(detail: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, detail.into())
}

fn http_body(response: &[u8]) -> std::io::Result<String> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid_data("no HTTP header end"))?;
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"));
    if !status_ok {
        return Err(invalid_data(format!(
            "HTTP error: {}",
            head.lines().next().unwrap_or_default()
        )));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return dechunk(body);
    }
    Ok(body.to_string())
}

fn dechunk(mut body: &str) -> std::io::Result<String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body
            .split_once("\r\n")
            .ok_or_else(|| invalid_data("truncated chunk"))?;
        let size = usize::from_str_radix(size_line.trim(), 16).map_err(invalid_data_err)?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| invalid_data("short chunk"))?;
        out.push_str(chunk);
        body = rest.get(size + 2..).unwrap_or_default();
    }
}

fn invalid_data_err(e: impl std::fmt::Display) -> std::io::Error {
    invalid_data(e.to_string())
}

/// Parse Fiber-shaped params (one object, bare or as the single element of an array; absent or
/// empty means `{}`) into `T`.
pub fn params_object<T: DeserializeOwned>(params: &Params<'_>) -> Result<T, ErrorObjectOwned> {
    let value: Value = match params.as_str() {
        None => Value::Object(Default::default()),
        Some(raw) => serde_json::from_str(raw).map_err(|e| invalid_params(e.to_string()))?,
    };
    let object = match value {
        Value::Null => Value::Object(Default::default()),
        Value::Array(mut items) if items.len() <= 1 => items
            .pop()
            .unwrap_or_else(|| Value::Object(Default::default())),
        Value::Object(_) => value,
        other => {
            return Err(invalid_params(format!(
                "params must be one object or [object], got {other}"
            )));
        }
    };
    serde_json::from_value(object).map_err(|e| invalid_params(e.to_string()))
}

/// An "invalid params" error object.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS, message.into(), None::<()>)
}

/// An "operation failed" error object.
pub fn failed(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(OPERATION_FAILED, message.into(), None::<()>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct P {
        #[serde(default)]
        a: Option<u32>,
    }

    #[test]
    fn params_accept_fibers_shapes() {
        for (raw, want) in [
            (None, None),
            (Some("[]"), None),
            (Some("{}"), None),
            (Some("[{\"a\":1}]"), Some(1)),
            (Some("{\"a\":2}"), Some(2)),
        ] {
            let p: P = params_object(&Params::new(raw)).expect("valid");
            assert_eq!(p.a, want, "{raw:?}");
        }
        for bad in ["[1,2]", "{\"b\":1}", "7"] {
            assert!(
                params_object::<P>(&Params::new(Some(bad))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn chunked_bodies_are_reassembled() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(http_body(raw).expect("body"), "abcde");
        assert!(http_body(b"HTTP/1.1 500 Oops\r\n\r\n").is_err());
    }
}
