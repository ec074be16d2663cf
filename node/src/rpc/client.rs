//! A minimal blocking JSON-RPC client over plain HTTP/1.1, for tests, the CLI and the harness.
//!
//! It speaks exactly the wire format a Fiber client would (one POST per call, params as a
//! one-element array holding an object), so tests exercise the real server path, and it needs no
//! HTTP stack beyond `std`. Loopback use only: no TLS, no keep-alive.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A JSON-RPC error returned by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcErrorObject {
    pub code: i64,
    pub message: String,
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

/// Client for one node's RPC address.
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

    /// Call `method` with `params` (an object, sent as `[params]`; `None` sends `[]`).
    pub fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> Result<T, RpcCallError> {
        let body = json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": method,
            "params": params.map_or_else(|| json!([]), |p| json!([p])),
        })
        .to_string();
        let raw = self.post(&body).map_err(|source| RpcCallError::Transport {
            method: method.into(),
            addr: self.addr,
            source,
        })?;
        let bad = |detail: String| RpcCallError::BadResponse {
            method: method.into(),
            addr: self.addr,
            detail,
        };
        let response: Value = serde_json::from_str(&raw).map_err(|e| bad(format!("{e}: {raw}")))?;
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
                },
            });
        }
        let result = response
            .get("result")
            .cloned()
            .ok_or_else(|| bad(format!("no result: {raw}")))?;
        serde_json::from_value(result).map_err(|e| bad(format!("{e}: {raw}")))
    }

    fn post(&self, body: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.addr,
            body.len(),
            body
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP header end")
        })?;
        let status_ok = head
            .lines()
            .next()
            .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"));
        if !status_ok {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("HTTP error: {}", head.lines().next().unwrap_or_default()),
            ));
        }
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return dechunk(body);
        }
        Ok(body.to_string())
    }
}

fn dechunk(mut body: &str) -> std::io::Result<String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n").ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "truncated chunk")
        })?;
        let size = usize::from_str_radix(size_line.trim(), 16)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "short chunk"))?;
        out.push_str(chunk);
        body = rest.get(size + 2..).unwrap_or_default();
    }
}
