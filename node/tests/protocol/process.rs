//! Two `dlp-node` processes against a JSON-RPC ledger, driven by RPC alone: open a channel,
//! pay, back up, restore (`--restore`), reestablish, pay again. The README shows the same
//! sequence with curl.

use std::time::{Duration, Instant};

use dlp_node::layout::BaseDir;
use dlp_node::rpc::client::RpcClient;
use dlp_node::store::Backend;
use serde_json::{Value, json};

use crate::process_support::{NodeProcess, run_restore_cli};

#[test]
fn rocksdb_two_processes_pay_back_up_restore_and_reestablish_over_rpc() {
    two_processes(Backend::Rocksdb);
}

#[test]
fn sqlite_two_processes_pay_back_up_restore_and_reestablish_over_rpc() {
    two_processes(Backend::Sqlite);
}

const DEADLINE: Duration = Duration::from_secs(30);

fn write_config(base: &BaseDir, backend: Backend, chain: std::net::SocketAddr) {
    std::fs::create_dir_all(base.root()).expect("mkdir base");
    let text = format!(
        "[store]\nbackend = \"{backend}\"\n\
         [rpc]\nlistening_addr = \"127.0.0.1:0\"\n\
         enabled_modules = [\"info\", \"peer\", \"channel\", \"payment\", \"invoice\", \"admin\", \"dev\"]\n\
         [fiber]\nlistening_addr = \"127.0.0.1:0\"\n\
         [chain]\nrpc_url = \"http://{chain}\"\n"
    );
    std::fs::write(base.default_config(), text).expect("write config");
}

/// Long-poll a node's events until one matches `pred`; panics with what was seen.
fn wait_event(rpc: &RpcClient, after: u64, what: &str, pred: impl Fn(&Value) -> bool) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    let mut cursor = after;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let answer: Value = rpc
            .call(
                "dev_events",
                Some(json!({ "after": format!("{cursor:#x}"), "wait_ms": "0x3e8" })),
            )
            .expect("dev_events");
        for event in answer["events"].as_array().cloned().unwrap_or_default() {
            let seq = u64::from_str_radix(
                event["seq"]
                    .as_str()
                    .unwrap_or("0x0")
                    .trim_start_matches("0x"),
                16,
            )
            .unwrap_or(0);
            cursor = cursor.max(seq);
            if pred(&event) {
                return seq;
            }
            seen.push(event);
        }
    }
    let tail: Vec<String> = seen
        .iter()
        .rev()
        .take(30)
        .rev()
        .map(Value::to_string)
        .collect();
    panic!(
        "timed out waiting for {what}; last events:\n{}",
        tail.join("\n")
    );
}

fn first_channel(rpc: &RpcClient) -> Value {
    let list: Value = rpc
        .call("list_channels", Some(json!({})))
        .expect("list_channels");
    list["channels"][0].clone()
}

/// Wait until the two ends of the first channel agree and nothing is pending.
fn wait_settled(a: &RpcClient, b: &RpcClient) {
    let deadline = Instant::now() + DEADLINE;
    let mut cursor = 0;
    loop {
        let (ca, cb) = (first_channel(a), first_channel(b));
        if ca["local_commitment_number"] == cb["remote_commitment_number"]
            && ca["remote_commitment_number"] == cb["local_commitment_number"]
            && ca["pending_tlcs"].as_array().is_some_and(Vec::is_empty)
            && cb["pending_tlcs"].as_array().is_some_and(Vec::is_empty)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "channel never settled: {ca} vs {cb}"
        );
        cursor = wait_event(b, cursor, "bob persisting more state", |e| {
            is(e, "persisted")
        });
    }
}

fn is(event: &Value, kind: &str) -> bool {
    event["type"] == kind
}

fn two_processes(backend: Backend) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let chain = dlp_chain::InProcessChain::new();
    let (chain_addr, chain_handle) = runtime
        .block_on(dlp_chain::server::serve(
            chain,
            "127.0.0.1:0".parse().expect("addr"),
        ))
        .expect("chain serves");
    let chain_rpc = RpcClient::new(chain_addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let alice_base = BaseDir::new(dir.path().join("alice"));
    let bob_base = BaseDir::new(dir.path().join("bob"));
    write_config(&alice_base, backend, chain_addr);
    write_config(&bob_base, backend, chain_addr);
    let alice = NodeProcess::start(&alice_base);
    let bob = NodeProcess::start(&bob_base);
    let (a, b) = (RpcClient::new(alice.rpc), RpcClient::new(bob.rpc));
    let info = |rpc: &RpcClient| -> Value { rpc.call("node_info", None).expect("node_info") };
    let (alice_info, bob_info) = (info(&a), info(&b));
    for who in [&alice_info, &bob_info] {
        let _: String = chain_rpc
            .call("fund", Some(json!({ "pubkey": format!("0x{}", who["wallet_pubkey"].as_str().expect("wallet")), "amount": "0x2540be400" })))
            .expect("fund");
    }
    let bob_pubkey = format!("0x{}", bob_info["pubkey"].as_str().expect("pubkey"));
    let bob_address = bob_info["addresses"][0]
        .as_str()
        .expect("address")
        .to_string();

    let _: Value = a
        .call("connect_peer", Some(json!({ "address": bob_address })))
        .expect("connect");
    let _: Value = a
        .call(
            "open_channel",
            Some(json!({ "pubkey": bob_pubkey, "funding_amount": "0x5f5e100" })),
        )
        .expect("open_channel");
    wait_event(&a, 0, "funding broadcast", |e| {
        is(e, "tx_broadcast") && e["kind"] == "funding"
    });
    let _: Value = chain_rpc
        .call("mine", Some(json!({ "blocks": "0x1" })))
        .expect("mine");
    let ready = |e: &Value| is(e, "state_changed") && e["to"]["state_name"] == "ChannelReady";
    wait_event(&a, 0, "alice ChannelReady", ready);
    wait_event(&b, 0, "bob ChannelReady", ready);

    let pay = |payer: &RpcClient, payee: &RpcClient, amount: &str| {
        let invoice: Value = payee
            .call("new_invoice", Some(json!({ "amount": amount })))
            .expect("invoice");
        let payment: Value = payer
            .call(
                "send_payment",
                Some(json!({ "invoice": invoice["invoice_address"] })),
            )
            .expect("send_payment");
        let hash = payment["payment_hash"].clone();
        wait_event(payer, 0, "payment success", |e| {
            is(e, "payment_updated") && e["payment_hash"] == hash && e["status"] == "Success"
        });
        let status: Value = payer
            .call("get_payment", Some(json!({ "payment_hash": hash })))
            .expect("get_payment");
        assert_eq!(status["status"], "Success");
    };
    pay(&a, &b, "0x989680"); // 10_000_000

    // Back up bob at the latest state, stop him, restore, start again.
    wait_settled(&a, &b);
    let _: Value = b.call("backup", None).expect("backup");
    let backups = std::fs::read_dir(bob_base.root().join("fiber/backups"))
        .expect("backups dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect::<Vec<_>>();
    assert_eq!(backups.len(), 1, "one backup: {backups:?}");
    bob.terminate();
    let restored = run_restore_cli(&bob_base, &backups[0], &[]);
    assert!(
        restored.status.success(),
        "restore failed: {}",
        restored.stderr
    );
    let bob = NodeProcess::start(&bob_base);
    let b = RpcClient::new(bob.rpc);
    assert_eq!(first_channel(&b)["state"]["state_name"], "Stale");
    // Bob's peer port was OS-chosen again: ask him where he listens now.
    let bob_address = info(&b)["addresses"][0]
        .as_str()
        .expect("address")
        .to_string();
    let _: Value = a
        .call("connect_peer", Some(json!({ "address": bob_address })))
        .expect("reconnect");
    wait_event(&b, 0, "audit passed", |e| is(e, "audit_passed"));
    wait_event(&a, 0, "bob's ReestablishChannel", |e| {
        is(e, "message_received") && e["msg_type"] == "ReestablishChannel"
    });
    assert_eq!(first_channel(&b)["state"]["state_name"], "ChannelReady");
    pay(&b, &a, "0x4c4b40"); // 5_000_000 back
    wait_settled(&a, &b);
    assert_eq!(first_channel(&b)["local_balance"], "0x4c4b40");
    drop(alice);
    drop(bob);
    let _ = chain_handle.stop();
}
