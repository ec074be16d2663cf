//! A small in-process network for protocol tests: nodes with real stores in a temp dir, one
//! shared ledger, waits on typed events with deadlines (no sleeps).

use std::sync::Arc;
use std::time::Duration;

use crate::channel_record::ChannelState;
use crate::config::{AuditPolicy, Config, OnAuditFailure};
use crate::core::{ChannelInfo, Command, Invoice, Payment, SendPaymentRequest};
use crate::events::{EventKind, NodeEvent};
use crate::layout::BaseDir;
use crate::node::RunningNode;
use crate::restore::{RestoreOptions, restore};
use crate::steps::StepSpec;
use crate::store::Backend;
use dlp_chain::{ChainClient, Hash32, InProcessChain, Pubkey, Transaction};
use dlp_node_api::{PaymentStatus, TxKindName};

/// How long any single wait may take before the test fails with what it saw.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);
/// Wallet funds every node starts with.
pub(crate) const WALLET: u64 = 10_000_000_000;

pub(crate) struct Node {
    pub(crate) name: &'static str,
    pub(crate) base: BaseDir,
    pub(crate) config: Config,
    pub(crate) running: Option<RunningNode>,
    pub(crate) pubkey: Pubkey,
    pub(crate) wallet: Pubkey,
}

pub(crate) struct Net {
    pub(crate) backend: Backend,
    pub(crate) chain: InProcessChain,
    /// In the order added; looked up by name ([`Net::node`]).
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

pub(crate) fn config(backend: Backend) -> Config {
    let mut config: Config = "".parse().expect("empty config");
    config.store.backend = backend;
    config.rpc.listening_addr = "127.0.0.1:0".parse().expect("addr");
    config.fiber.listening_addr = "127.0.0.1:0".parse().expect("addr");
    config
        .rpc
        .enabled_modules
        .push(crate::config::RpcModule::Admin);
    config
        .rpc
        .enabled_modules
        .push(crate::config::RpcModule::Dev);
    config
}

/// A `send_payment` request for an invoice address.
pub(crate) fn invoice_request(address: String) -> SendPaymentRequest {
    SendPaymentRequest {
        invoice: Some(address),
        target_pubkey: None,
        amount: None,
        keysend: None,
        max_fee_amount: None,
        tlc_expiry_limit: None,
    }
}

impl Net {
    pub(crate) async fn new(backend: Backend, names: &[&'static str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut net = Net {
            backend,
            chain: InProcessChain::new(),
            nodes: vec![],
            _dir: dir,
        };
        for name in names {
            net.add(name, config(backend)).await;
        }
        net
    }

    /// The home a node named `name` gets (prepare it before `add` to start on a given store).
    pub(crate) fn home(&self, name: &str) -> BaseDir {
        BaseDir::new(self._dir.path().join(name))
    }

    pub(crate) async fn add(&mut self, name: &'static str, config: Config) {
        self.add_with(name, config, crate::failpoint::Failpoints::none())
            .await
    }

    /// Add a node with failpoints armed.
    pub(crate) async fn add_with(
        &mut self,
        name: &'static str,
        config: Config,
        failpoints: crate::failpoint::Failpoints,
    ) {
        let base = BaseDir::new(self._dir.path().join(name));
        let running = RunningNode::start_with(
            base.clone(),
            config.clone(),
            crate::node::StartOptions {
                chain: Some(self.chain_arc()),
                failpoints,
                name: None,
            },
        )
        .await
        .expect("node starts");
        let keys = running.context().keys().clone();
        let pubkey = Pubkey::from(keys.node_pubkey());
        let wallet = Pubkey::from(keys.wallet_secret().public_key());
        self.chain.fund(wallet, WALLET).await.expect("fund");
        assert!(
            self.nodes.iter().all(|n| n.name != name),
            "two nodes named {name}"
        );
        self.nodes.push(Node {
            name,
            base,
            config,
            running: Some(running),
            pubkey,
            wallet,
        });
    }

    /// The node named `who` (`alice`, `bob`, ...).
    pub(crate) fn node(&self, who: &str) -> &Node {
        let i = self.index(who);
        &self.nodes[i]
    }

    pub(crate) fn node_mut(&mut self, who: &str) -> &mut Node {
        let i = self.index(who);
        &mut self.nodes[i]
    }

    fn index(&self, who: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == who)
            .unwrap_or_else(|| panic!("no node named {who}; the network has {:?}", self.names()))
    }

    /// Every node's name, in the order added.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.nodes.iter().map(|n| n.name).collect()
    }

    pub(crate) fn chain_arc(&self) -> Arc<dyn ChainClient> {
        Arc::new(self.chain.clone())
    }

    pub(crate) fn running(&self, who: &str) -> &RunningNode {
        self.node(who).running.as_ref().expect("node is running")
    }

    pub(crate) async fn request<T>(
        &self,
        who: &str,
        build: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Command,
    ) -> T {
        let call = self.running(who).protocol().core.request(build);
        match tokio::time::timeout(DEADLINE, call).await {
            Ok(reply) => reply.expect("core alive"),
            Err(_) => {
                self.dump();
                panic!(
                    "{}: no reply to a command within {DEADLINE:?}",
                    self.node(who).name
                );
            }
        }
    }

    pub(crate) fn last_seq(&self, who: &str) -> u64 {
        self.running(who)
            .protocol()
            .events
            .since(0)
            .last()
            .map_or(0, |e| e.seq)
    }

    /// Wait for an event of node `i` with `seq > after` matching `pred`.
    pub(crate) async fn wait(
        &self,
        who: &str,
        after: u64,
        what: &str,
        pred: impl Fn(&EventKind) -> bool,
    ) -> NodeEvent {
        let protocol = self.running(who).protocol();
        let mut rx = protocol.events.subscribe();
        if let Some(e) = protocol
            .events
            .since(after)
            .into_iter()
            .find(|e| pred(&e.kind))
        {
            return e;
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Ok(e)) if e.seq > after && pred(&e.kind) => return e,
                Ok(Ok(_)) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    if let Some(e) = protocol
                        .events
                        .since(after)
                        .into_iter()
                        .find(|e| pred(&e.kind))
                    {
                        return e;
                    }
                }
                Ok(Err(_)) | Err(_) => {
                    self.dump();
                    panic!(
                        "{}: timed out after {DEADLINE:?} waiting for {what}",
                        self.node(who).name
                    );
                }
            }
        }
    }

    /// Print the last events of every node (on failure).
    pub(crate) fn dump(&self) {
        for node in &self.nodes {
            let Some(running) = &node.running else {
                eprintln!("--- {}: stopped", node.name);
                continue;
            };
            let events = running.protocol().events.since(0);
            eprintln!("--- {} ({} events), last 40:", node.name, events.len());
            for e in events.iter().rev().take(40).rev() {
                eprintln!("  {e}");
            }
        }
    }

    pub(crate) async fn connect(&self, a: &str, b: &str) {
        let after_a = self.last_seq(a);
        let after_b = self.last_seq(b);
        let target = self.running(b).protocol();
        let me = self.running(a).protocol();
        let conn = crate::transport::dial(
            target.peer_addr,
            target.identity.pubkey,
            &me.identity,
            me.core.transport_sender(),
        )
        .await
        .expect("dial");
        me.core.connected(conn).await.expect("core alive");
        let pa = self.node(a).pubkey;
        let pb = self.node(b).pubkey;
        self.wait(
            a,
            after_a,
            "peer connected",
            |k| matches!(k, EventKind::PeerConnected { peer, .. } if *peer == pb),
        )
        .await;
        self.wait(
            b,
            after_b,
            "peer connected",
            |k| matches!(k, EventKind::PeerConnected { peer, .. } if *peer == pa),
        )
        .await;
    }

    pub(crate) async fn disconnect(&self, a: &str, b: &str) {
        let after_b = self.last_seq(b);
        let pb = self.node(b).pubkey;
        let pa = self.node(a).pubkey;
        self.request(a, |reply| Command::DisconnectPeer { pubkey: pb, reply })
            .await
            .expect("disconnect");
        if self.running(b).protocol().steps.held().is_some() {
            // A held node notices after its release.
            return;
        }
        self.wait(
            b,
            after_b,
            "peer disconnected",
            |k| matches!(k, EventKind::PeerDisconnected { peer, .. } if *peer == pa),
        )
        .await;
    }

    /// Open a channel from `a` to `b` and wait until both see ChannelReady. Returns its id.
    pub(crate) async fn open_channel(&self, a: &str, b: &str, amount: u64) -> Hash32 {
        let after_a = self.last_seq(a);
        let after_b = self.last_seq(b);
        let pb = self.node(b).pubkey;
        self.request(a, |reply| Command::OpenChannel {
            pubkey: pb,
            funding_amount: amount,
            reply,
        })
        .await
        .expect("open_channel");
        let funded = self
            .wait(a, after_a, "funding broadcast", |k| matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Funding))
            .await;
        let _ = funded;
        self.chain.mine(1).await.expect("mine");
        let ready = |k: &EventKind| {
            matches!(
                k,
                EventKind::StateChanged {
                    to: ChannelState::ChannelReady,
                    ..
                }
            )
        };
        let e = self.wait(a, after_a, "ChannelReady", ready).await;
        self.wait(b, after_b, "ChannelReady", ready).await;
        match e.kind {
            EventKind::StateChanged { channel_id, .. } => channel_id,
            _ => unreachable!(),
        }
    }

    pub(crate) async fn channels(&self, who: &str) -> Vec<ChannelInfo> {
        self.request(who, |reply| Command::ListChannels {
            pubkey: None,
            include_closed: true,
            reply,
        })
        .await
    }

    pub(crate) async fn channel(&self, who: &str, id: Hash32) -> ChannelInfo {
        self.channels(who)
            .await
            .into_iter()
            .find(|c| c.channel_id == id)
            .expect("channel listed")
    }

    pub(crate) async fn invoice(&self, who: &str, amount: u64) -> Invoice {
        self.request(who, |reply| Command::NewInvoice {
            amount,
            description: None,
            reply,
        })
        .await
        .expect("invoice")
    }

    /// Start paying a fresh invoice of `payee` from `payer`; returns at once (the payment may
    /// be held up by a step hold).
    pub(crate) async fn start_payment(&self, payer: &str, payee: &str, amount: u64) -> Payment {
        let invoice = self.invoice(payee, amount).await;
        self.request(payer, |reply| Command::SendPayment {
            request: invoice_request(invoice.address()),
            reply,
        })
        .await
        .expect("payment started")
    }

    /// `shutdown_channel` from node `i`.
    pub(crate) async fn shutdown_channel(
        &self,
        who: &str,
        channel: Hash32,
        force: bool,
    ) -> Result<(), String> {
        self.request(who, |reply| Command::ShutdownChannel {
            channel_id: channel,
            force,
            reply,
        })
        .await
    }

    /// Pay an invoice of `payee` from `payer` and wait for the final status.
    pub(crate) async fn pay(&self, payer: &str, payee: &str, amount: u64) -> Payment {
        let invoice = self.invoice(payee, amount).await;
        self.pay_request(payer, invoice_request(invoice.address()))
            .await
    }

    pub(crate) async fn pay_request(&self, payer: &str, request: SendPaymentRequest) -> Payment {
        let after = self.last_seq(payer);
        let payment = self
            .request(payer, |reply| Command::SendPayment { request, reply })
            .await
            .expect("send_payment accepted");
        let hash = payment.payment_hash;
        if payment.status == PaymentStatus::Failed {
            return payment;
        }
        self.wait(payer, after, "payment final", |k| {
            matches!(k, EventKind::PaymentUpdated { payment_hash, status, .. }
                if *payment_hash == hash && status.is_final())
        })
        .await;
        self.request(payer, |reply| Command::GetPayment {
            payment_hash: hash,
            reply,
        })
        .await
        .expect("payment exists")
    }

    /// Wait until both ends of `channel` are at rest: numbers crossed, nothing pending.
    pub(crate) async fn settle(&self, a: &str, b: &str, channel: Hash32) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut rx_a = self.running(a).protocol().events.subscribe();
        let mut rx_b = self.running(b).protocol().events.subscribe();
        loop {
            let ca = self.channel(a, channel).await;
            let cb = self.channel(b, channel).await;
            if ca.local_commitment_number == cb.remote_commitment_number
                && ca.remote_commitment_number == cb.local_commitment_number
                && ca.pending_tlcs.is_empty()
                && cb.pending_tlcs.is_empty()
                && ca.local_balance == cb.remote_balance
            {
                return;
            }
            // Look again after the next event of either node.
            let next = async {
                tokio::select! {
                    _ = rx_a.recv() => {}
                    _ = rx_b.recv() => {}
                }
            };
            if tokio::time::timeout_at(deadline, next).await.is_err() {
                self.dump();
                panic!("channel did not settle: {ca:?} vs {cb:?}");
            }
        }
    }

    pub(crate) async fn backup(&self, who: &str) -> std::path::PathBuf {
        self.running(who).context().backup().expect("backup").dir
    }

    pub(crate) async fn stop(&mut self, who: &str) {
        if let Some(running) = self.node_mut(who).running.take() {
            running.stop().await;
        }
    }

    pub(crate) async fn start(&mut self, who: &str) {
        let node = self.node(who);
        let running = RunningNode::start_with_chain(
            node.base.clone(),
            node.config.clone(),
            Some(self.chain_arc()),
        )
        .await
        .expect("node restarts");
        self.node_mut(who).running = Some(running);
    }

    /// Stop node `i`, restore `backup`, start it again.
    pub(crate) async fn restore(&mut self, who: &str, backup: &std::path::Path) {
        self.stop(who).await;
        restore(
            &self.node(who).base,
            self.backend,
            backup,
            &RestoreOptions::default(),
        )
        .expect("restore");
        self.start(who).await;
    }

    pub(crate) fn set_audit(&mut self, who: &str, policy: AuditPolicy, on_failure: OnAuditFailure) {
        let audit = &mut self.node_mut(who).config.audit;
        audit.policy = policy;
        audit.on_audit_failure = Some(on_failure);
    }

    pub(crate) fn hold(&self, who: &str, step: &str) {
        self.running(who)
            .protocol()
            .steps
            .arm(StepSpec {
                step: step.into(),
                channel_id: None,
                nth: 1,
                action: Default::default(),
            })
            .expect("valid step");
    }

    pub(crate) async fn wait_held(&self, who: &str) -> String {
        match self.running(who).protocol().steps.wait_held(DEADLINE).await {
            Some(step) => step,
            None => {
                self.dump();
                panic!("{} never reached its hold", self.node(who).name);
            }
        }
    }

    pub(crate) fn release(&self, who: &str) {
        self.running(who).protocol().steps.release();
    }

    pub(crate) async fn signed_commitment(&self, who: &str, channel: Hash32) -> Transaction {
        self.request(who, |reply| Command::DevSignedCommitment {
            channel_id: channel,
            reply,
        })
        .await
        .expect("signed commitment")
    }

    pub(crate) async fn wallet_balance(&self, who: &str) -> u64 {
        self.chain
            .balance(self.node(who).wallet)
            .await
            .expect("balance")
            .spendable
    }

    /// Events of node `i` after `after`.
    pub(crate) fn events(&self, who: &str, after: u64) -> Vec<NodeEvent> {
        self.running(who).protocol().events.since(after)
    }

    pub(crate) async fn shutdown(self) {
        for node in self.nodes {
            if let Some(running) = node.running {
                running.stop().await;
            }
        }
    }
}
