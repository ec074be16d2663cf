//! The `dlp-chain serve` binary: prints its address, serves JSON-RPC within its documented
//! bounds, refuses non-loopback addresses, exits 0 on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use dlp_chain::jsonrpc::RpcClient;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_dlp-chain")
}

#[test]
fn serve_answers_rpc_mines_and_stops_cleanly_on_sigterm() {
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dlp-chain");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = match rx.recv_timeout(DEADLINE) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
            let _ = child.kill();
            panic!("dlp-chain never printed its address");
        }
    };
    let addr = line
        .strip_prefix("dlp-chain listening on ")
        .expect("ready line")
        .parse()
        .expect("address");
    let rpc = RpcClient::new(addr);
    let key = "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let _: String = rpc
        .call("fund", Some(json!({ "pubkey": key, "amount": "0x64" })))
        .expect("fund");
    let tip: Value = rpc
        .call("mine", Some(json!({ "blocks": "0x2" })))
        .expect("mine");
    assert_eq!(tip["height"], "0x2");
    let balance: Value = rpc
        .call("get_balance", Some(json!({ "pubkey": key })))
        .expect("balance");
    assert_eq!(balance["confirmed"], "0x64");
    let bad = rpc
        .call::<Value>("fund", Some(json!({ "pubkey": key, "amount": 100 })))
        .expect_err("amounts are hex strings");
    assert_eq!(bad.server_error().map(|e| e.code), Some(-32602));

    // Bounds (see the server's module doc): the faucet never takes the total past u64::MAX, so
    // `get_balance` still answers exactly; `mine` takes at most 10,000 blocks per call.
    let max = "0xffffffffffffffff";
    let remaining = format!("{:#x}", u64::MAX - 100);
    let _: String = rpc
        .call("fund", Some(json!({ "pubkey": key, "amount": remaining })))
        .expect("fund up to u64::MAX");
    let over = rpc
        .call::<Value>("fund", Some(json!({ "pubkey": key, "amount": max })))
        .expect_err("the total would overflow");
    let error = over.server_error().expect("an error answer");
    assert_eq!(error.code, -32010, "{error:?}");
    assert!(error.message.contains("u64::MAX"), "{error:?}");
    let balance: Value = rpc
        .call("get_balance", Some(json!({ "pubkey": key })))
        .expect("balance answers");
    assert_eq!(balance["spendable"], max);
    for blocks in ["0x2711", max] {
        let refused = rpc
            .call::<Value>("mine", Some(json!({ "blocks": blocks })))
            .expect_err("beyond the bound");
        let error = refused.server_error().expect("an error answer");
        assert_eq!(error.code, -32602, "{error:?}");
        assert!(
            error.message.contains("at most 10000 blocks per call"),
            "{error:?}"
        );
    }
    let tip: Value = rpc.call("get_tip", Some(json!({}))).expect("tip");
    assert_eq!(tip["height"], "0x2", "nothing mined by the refused calls");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let exit = done_rx
        .recv_timeout(DEADLINE)
        .expect("dlp-chain exits after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "{exit}");
}

#[test]
fn serve_refuses_a_non_loopback_address() {
    let output = Command::new(binary())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .expect("run dlp-chain");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
