//! What the node refuses and how it says so: RPC batches over the limit, oversize fields
//! (refused before anything is stored), an oversize chunked body (HTTP 413, not 500), a
//! fail-stop the node reports, and the warning text for an RPC server exposed beyond loopback
//! (the process's exit code and its stderr are `tests/process/limits.rs`).
//!
//! Raw HTTP goes only to the node under test on 127.0.0.1; every loop is bounded in count and
//! time, and every wait has a deadline and reports what it saw.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dlp_chain::jsonrpc::RpcClient;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::core::INVOICE_PREFIX;
use crate::layout::BaseDir;
use crate::node::RunningNode;
use crate::store::Backend;

const DEADLINE: Duration = Duration::from_secs(30);

for_each_backend!(
    a_batch_over_the_limit_is_refused_and_runs_nothing,
    an_oversize_description_is_refused_and_nothing_is_stored,
    an_oversize_chunked_body_gets_413,
    a_command_whose_write_failed_answers_an_error_and_the_node_reports_the_fail_stop,
);

/// A node with a private ledger, its RPC on a loopback port.
struct Scratch {
    node: RunningNode,
    _dir: tempfile::TempDir,
}

impl Scratch {
    async fn start(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = BaseDir::new(dir.path().join("node"));
        let node = RunningNode::start(base, super::support::config(backend))
            .await
            .expect("node starts");
        Self { node, _dir: dir }
    }

    fn addr(&self) -> SocketAddr {
        self.node.rpc_addr()
    }

    fn invoice_records(&self) -> usize {
        self.node
            .context()
            .store()
            .prefix_entries(&[INVOICE_PREFIX])
            .expect("scan invoices")
            .len()
    }
}

/// An HTTP response: status and body.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// Split a raw HTTP/1.1 response (read to the end) into status and body.
fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Reply {
        status,
        body: body.to_string(),
    })
}

/// POST `body` with a Content-Length over a fresh connection and read the whole answer. The
/// body is written concurrently, so an early answer (413) is read even if the server stops
/// reading.
async fn post(addr: SocketAddr, body: Vec<u8>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        // The server may answer and close before it read everything: not an error here.
        if wr.write_all(head.as_bytes()).await.is_ok() {
            let _ = wr.write_all(&body).await;
        }
        wr
    });
    let raw = read_answer(&mut rd).await;
    writer.abort();
    parse_reply(&raw).unwrap_or_else(|| {
        panic!(
            "no HTTP answer; got {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(500)])
        )
    })
}

/// Read until EOF (or a reset after an answer), at most [`DEADLINE`].
async fn read_answer(rd: &mut tokio::net::tcp::OwnedReadHalf) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return raw,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "no complete HTTP answer within {DEADLINE:?}; got {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(500)])
            ),
        }
    }
}

fn call(id: usize, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": [params] })
}

async fn a_batch_over_the_limit_is_refused_and_runs_nothing(backend: Backend) {
    let node = Scratch::start(backend).await;
    let limit = usize::try_from(crate::rpc::limits::MAX_BATCH_CALLS).expect("usize");
    // One call over the limit, every call one that would store an invoice.
    let batch: Vec<Value> = (0..=limit)
        .map(|i| call(i, "new_invoice", json!({ "amount": "0x1" })))
        .collect();
    let reply = post(node.addr(), serde_json::to_vec(&batch).expect("encode")).await;
    let answer = reply.json();
    assert!(
        answer.is_object() && answer["error"]["code"] == json!(-32010),
        "a batch of {} calls was not refused as a whole: {} {}",
        limit + 1,
        reply.status,
        &reply.body[..reply.body.len().min(300)]
    );
    assert_eq!(node.invoice_records(), 0, "a refused batch stored invoices");
    // At the limit every call runs and answers.
    let batch: Vec<Value> = (0..limit)
        .map(|i| call(i, "node_info", json!({})))
        .collect();
    let answer = post(node.addr(), serde_json::to_vec(&batch).expect("encode"))
        .await
        .json();
    let results = answer.as_array().expect("an array of answers");
    assert_eq!(results.len(), limit);
    assert!(results.iter().all(|r| r["result"]["pubkey"].is_string()));
    node.node.stop().await;
}

async fn an_oversize_description_is_refused_and_nothing_is_stored(backend: Backend) {
    let node = Scratch::start(backend).await;
    let rpc = RpcClient::new(node.addr());
    let max = crate::core::MAX_DESCRIPTION_BYTES;
    // Megabytes of description (the reported case: an error reply, yet megabytes stored, which
    // every backup then carries): an error, and nothing stored.
    let huge = call(
        1,
        "new_invoice",
        json!({ "amount": "0x64", "description": "d".repeat(4_000_000) }),
    );
    let reply = post(node.addr(), serde_json::to_vec(&huge).expect("encode")).await;
    assert!(
        reply.json()["error"].is_object(),
        "a 4 MB description was accepted: {} {}",
        reply.status,
        &reply.body[..reply.body.len().min(300)]
    );
    assert_eq!(node.invoice_records(), 0, "the refused invoice was stored");
    assert_eq!(reply.status, 413, "{}", reply.body);
    // One byte over the limit: a JSON-RPC error naming the limit, and no invoice record.
    let err = rpc
        .call_async::<Value>(
            "new_invoice",
            Some(json!({ "amount": "0x64", "description": "d".repeat(max + 1) })),
        )
        .await
        .expect_err("a description over the limit was accepted");
    let error = err.server_error().expect("a JSON-RPC error");
    assert_eq!(error.code, -32602, "{error:?}");
    assert!(error.message.contains("limit is 639"), "{error:?}");
    assert_eq!(node.invoice_records(), 0, "the refused invoice was stored");
    // At the limit it is accepted and stored once.
    let invoice: Value = rpc
        .call_async(
            "new_invoice",
            Some(json!({ "amount": "0x64", "description": "d".repeat(max) })),
        )
        .await
        .expect("a description at the limit");
    assert_eq!(
        invoice["invoice"]["description"].as_str().map(str::len),
        Some(max)
    );
    assert_eq!(node.invoice_records(), 1);
    node.node.stop().await;
}

async fn an_oversize_chunked_body_gets_413(backend: Backend) {
    let node = Scratch::start(backend).await;
    let addr = node.addr();
    const CHUNK: usize = 64 * 1024;
    const MAX_BYTES: usize = 100 * 1024 * 1024;
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        // A well-formed start (jsonrpsee rejects a body that does not begin like JSON), then
        // filler: at most 100 MB, in at most 1,600 chunks.
        let mut first = br#"{"jsonrpc":"2.0","id":1,"method":"node_info","params":{"x":""#.to_vec();
        first.resize(CHUNK, b'a');
        let filler = vec![b'a'; CHUNK];
        for n in 0..MAX_BYTES / CHUNK {
            let data = if n == 0 { &first } else { &filler };
            let frame = [format!("{CHUNK:x}\r\n").as_bytes(), data, b"\r\n"].concat();
            if wr.write_all(&frame).await.is_err() {
                return;
            }
            counter.fetch_add(CHUNK, Ordering::Relaxed);
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
    });
    let raw = read_answer(&mut rd).await;
    writer.abort();
    let sent = sent.load(Ordering::Relaxed);
    eprintln!("chunked body: {sent} bytes written before the answer");
    let reply = parse_reply(&raw).unwrap_or_else(|| {
        panic!(
            "no HTTP answer after {sent} bytes; got {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(500)])
        )
    });
    assert_eq!(
        reply.status, 413,
        "a chunked body over the limit: {} {}",
        reply.status, reply.body
    );
    assert_eq!(
        reply.json()["error"]["code"],
        json!(-32007),
        "{}",
        reply.body
    );
    // The server is still fine.
    let info: Value = RpcClient::new(addr)
        .call_async("node_info", None)
        .await
        .expect("node_info after the 413");
    assert!(info["pubkey"].is_string());
    node.node.stop().await;
}

async fn a_command_whose_write_failed_answers_an_error_and_the_node_reports_the_fail_stop(
    backend: Backend,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = BaseDir::new(dir.path().join("node"));
    let options = crate::node::StartOptions {
        chain: None,
        failpoints: crate::failpoint::Failpoints::none().arm("core.persist", 1),
        name: None,
    };
    let node = RunningNode::start_with(base, super::support::config(backend), options)
        .await
        .expect("node starts");
    // The invoice is the first state the core writes, and that write fails.
    let answer = node
        .protocol()
        .core
        .request(|reply| crate::core::Command::NewInvoice {
            amount: 100,
            description: None,
            reply,
        })
        .await;
    match &answer {
        Err(crate::core::CoreGone::FailStopped(fail)) => {
            assert!(fail.reason.contains("store write failed"), "{fail}");
        }
        other => panic!("an invoice that is not on disk was answered: {other:?}"),
    }
    let fail = tokio::time::timeout(DEADLINE, node.fail_stopped())
        .await
        .expect("fail_stopped resolves")
        .expect("a fail-stop, not a plain stop");
    assert!(fail.reason.contains("injected failure"), "{fail}");
    assert_eq!(
        node.context()
            .store()
            .prefix_entries(&[INVOICE_PREFIX])
            .expect("scan")
            .len(),
        0
    );
    node.stop().await;
}

#[test]
fn the_exposure_warning_names_the_address_and_the_dangerous_modules() {
    let mut config = super::support::config(Backend::Rocksdb);
    let loopback: SocketAddr = "127.0.0.1:8227".parse().expect("addr");
    assert_eq!(crate::node::rpc_exposure_warning(&config, loopback), None);
    let wide: SocketAddr = "0.0.0.0:8227".parse().expect("addr");
    let warning = crate::node::rpc_exposure_warning(&config, wide).expect("a warning");
    for part in ["0.0.0.0:8227", "DANGEROUS", "admin", "dev", "payment"] {
        assert!(warning.contains(part), "{part:?} missing from {warning:?}");
    }
    config.rpc.enabled_modules.retain(|m| {
        !matches!(
            m,
            crate::config::RpcModule::Admin | crate::config::RpcModule::Dev
        )
    });
    let warning = crate::node::rpc_exposure_warning(&config, wide).expect("a warning");
    assert!(!warning.contains("DANGEROUS"), "{warning}");
}
