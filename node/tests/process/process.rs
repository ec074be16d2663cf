//! `dlp-node` processes against a JSON-RPC ledger, driven by RPC alone: open a channel, pay,
//! back up, restore (`--restore`), reestablish, pay again (the README shows the same sequence
//! with curl); and a node killed with SIGKILL in the middle of a payment that finishes it after
//! a plain restart.

use std::time::{Duration, Instant};

use dlp_chain::jsonrpc::RpcClient;
use dlp_node::layout::BaseDir;
use dlp_node_api::Backend;
use serde_json::{Value, json};

use crate::support::{NodeProcess, run_restore_cli};

#[test]
fn rocksdb_two_processes_pay_back_up_restore_and_reestablish_over_rpc() {
    pay_back_up_restore(Backend::Rocksdb);
}

#[test]
fn sqlite_two_processes_pay_back_up_restore_and_reestablish_over_rpc() {
    pay_back_up_restore(Backend::Sqlite);
}

#[test]
fn rocksdb_node_killed_mid_payment_finishes_it_after_restart() {
    killed_mid_payment(Backend::Rocksdb);
}

#[test]
fn sqlite_node_killed_mid_payment_finishes_it_after_restart() {
    killed_mid_payment(Backend::Sqlite);
}

const DEADLINE: Duration = Duration::from_secs(30);

/// A ledger served over JSON-RPC and two node processes, alice and bob.
struct Pair {
    _runtime: tokio::runtime::Runtime,
    chain_handle: jsonrpsee::server::ServerHandle,
    chain: RpcClient,
    _dir: tempfile::TempDir,
    bases: [BaseDir; 2],
    procs: [Option<NodeProcess>; 2],
}

impl Pair {
    fn new(backend: Backend) -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (chain_addr, chain_handle) = runtime
            .block_on(dlp_chain::server::serve(
                dlp_chain::InProcessChain::new(),
                "127.0.0.1:0".parse().expect("addr"),
            ))
            .expect("chain serves");
        let dir = tempfile::tempdir().expect("tempdir");
        let bases = [
            BaseDir::new(dir.path().join("alice")),
            BaseDir::new(dir.path().join("bob")),
        ];
        for base in &bases {
            write_config(base, backend, chain_addr);
        }
        let procs = [
            Some(NodeProcess::start(&bases[0])),
            Some(NodeProcess::start(&bases[1])),
        ];
        let pair = Pair {
            _runtime: runtime,
            chain_handle,
            chain: RpcClient::new(chain_addr),
            _dir: dir,
            bases,
            procs,
        };
        for i in 0..2 {
            let wallet = format!(
                "0x{}",
                pair.info(i)["wallet_pubkey"].as_str().expect("wallet")
            );
            let _: String = pair
                .chain
                .call(
                    "fund",
                    Some(json!({ "pubkey": wallet, "amount": "0x2540be400" })),
                )
                .expect("fund");
        }
        pair
    }

    fn rpc(&self, i: usize) -> RpcClient {
        RpcClient::new(self.procs[i].as_ref().expect("node running").rpc)
    }

    fn info(&self, i: usize) -> Value {
        self.rpc(i).call("node_info", None).expect("node_info")
    }

    fn connect(&self, from: usize, to: usize) {
        let address = self.info(to)["addresses"][0]
            .as_str()
            .expect("address")
            .to_string();
        let _: Value = self
            .rpc(from)
            .call("connect_peer", Some(json!({ "address": address })))
            .expect("connect_peer");
    }

    fn mine(&self, blocks: u64) {
        let _: Value = self
            .chain
            .call("mine", Some(json!({ "blocks": format!("{blocks:#x}") })))
            .expect("mine");
    }

    /// alice opens a 100 CKB channel to bob; both reach ChannelReady.
    fn open(&self) {
        let bob = format!("0x{}", self.info(1)["pubkey"].as_str().expect("pubkey"));
        let _: Value = self
            .rpc(0)
            .call(
                "open_channel",
                Some(json!({ "pubkey": bob, "funding_amount": "0x2540be400" })),
            )
            .expect("open_channel");
        wait_event(&self.rpc(0), 0, "funding broadcast", |e| {
            is(e, "tx_broadcast") && e["kind"] == "funding"
        });
        self.mine(1);
        let ready = |e: &Value| is(e, "state_changed") && e["to"]["state_name"] == "ChannelReady";
        wait_event(&self.rpc(0), 0, "alice ChannelReady", ready);
        wait_event(&self.rpc(1), 0, "bob ChannelReady", ready);
    }

    /// Start a payment of an invoice of `payee`; returns its hash.
    fn start_payment(&self, payer: usize, payee: usize, amount: &str) -> Value {
        let invoice: Value = self
            .rpc(payee)
            .call("new_invoice", Some(json!({ "amount": amount })))
            .expect("invoice");
        let payment: Value = self
            .rpc(payer)
            .call(
                "send_payment",
                Some(json!({ "invoice": invoice["invoice_address"] })),
            )
            .expect("send_payment");
        payment["payment_hash"].clone()
    }

    fn wait_success(&self, payer: usize, hash: &Value) {
        wait_event(&self.rpc(payer), 0, "payment success", |e| {
            is(e, "payment_updated") && e["payment_hash"] == *hash && e["status"] == "Success"
        });
        let status: Value = self
            .rpc(payer)
            .call("get_payment", Some(json!({ "payment_hash": hash })))
            .expect("get_payment");
        assert_eq!(status["status"], "Success");
    }

    fn pay(&self, payer: usize, payee: usize, amount: &str) {
        let hash = self.start_payment(payer, payee, amount);
        self.wait_success(payer, &hash);
    }

    /// Wait until the two ends of the channel agree and nothing is pending.
    fn wait_settled(&self) {
        let (a, b) = (self.rpc(0), self.rpc(1));
        let deadline = Instant::now() + DEADLINE;
        let mut cursor = 0;
        loop {
            let (ca, cb) = (first_channel(&a), first_channel(&b));
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
            cursor = wait_event(&b, cursor, "bob persisting more state", |e| {
                is(e, "persisted")
            });
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // NodeProcess kills its child on drop; stop the ledger too.
        let _ = self.chain_handle.stop();
    }
}

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

fn parse_hex(value: &Value) -> u64 {
    value
        .as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

/// Long-poll a node's events after `after` until one matches `pred`; returns its seq. Panics
/// with the events seen on timeout.
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
            let seq = parse_hex(&event["seq"]);
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

fn is(event: &Value, kind: &str) -> bool {
    event["type"] == kind
}

fn first_channel(rpc: &RpcClient) -> Value {
    let list: Value = rpc
        .call("list_channels", Some(json!({})))
        .expect("list_channels");
    list["channels"][0].clone()
}

fn pay_back_up_restore(backend: Backend) {
    let mut pair = Pair::new(backend);
    pair.connect(0, 1);
    pair.open();
    pair.pay(0, 1, "0x989680"); // 10_000_000
    pair.wait_settled();

    // Back up bob at the latest state, stop him, restore, start again.
    let _: Value = pair.rpc(1).call("backup", None).expect("backup");
    let backups: Vec<_> = std::fs::read_dir(pair.bases[1].root().join("fiber/backups"))
        .expect("backups dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(backups.len(), 1, "one backup: {backups:?}");
    pair.procs[1].take().expect("bob").terminate();
    let restored = run_restore_cli(&pair.bases[1], &backups[0], &[]);
    assert!(
        restored.status.success(),
        "restore failed: {}",
        restored.stderr
    );
    pair.procs[1] = Some(NodeProcess::start(&pair.bases[1]));
    assert_eq!(first_channel(&pair.rpc(1))["state"]["state_name"], "Stale");
    pair.connect(0, 1);
    wait_event(&pair.rpc(1), 0, "audit passed", |e| is(e, "audit_passed"));
    wait_event(&pair.rpc(0), 0, "bob's ReestablishChannel", |e| {
        is(e, "message_received") && e["msg_type"] == "ReestablishChannel"
    });
    assert_eq!(
        first_channel(&pair.rpc(1))["state"]["state_name"],
        "ChannelReady"
    );
    pair.pay(1, 0, "0x4c4b40"); // 5_000_000 back
    pair.wait_settled();
    assert_eq!(first_channel(&pair.rpc(1))["local_balance"], "0x4c4b40");
}

fn killed_mid_payment(backend: Backend) {
    let mut pair = Pair::new(backend);
    pair.connect(0, 1);
    pair.open();
    // Bob stops right after his first RevokeAndAck of the payment, and dies there.
    let _: Value = pair
        .rpc(1)
        .call("dev_hold", Some(json!({ "step": "sent:RevokeAndAck" })))
        .expect("dev_hold");
    let hash = pair.start_payment(0, 1, "0x2faf080"); // 50_000_000
    wait_event(&pair.rpc(1), 0, "bob held", |e| is(e, "held"));
    drop(pair.procs[1].take()); // SIGKILL
    pair.procs[1] = Some(NodeProcess::start(&pair.bases[1]));
    // Bob restarted from his own store (no restore): the channel is live, not Stale.
    assert_eq!(
        first_channel(&pair.rpc(1))["state"]["state_name"],
        "ChannelReady"
    );
    pair.connect(1, 0);
    pair.wait_success(0, &hash);
    pair.wait_settled();
    assert_eq!(first_channel(&pair.rpc(1))["local_balance"], "0x2faf080");
}
