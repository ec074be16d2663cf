//! Open, pay, forward, close: the money paths.

use crate::channel_record::{ChannelState, flags};
use crate::core::Command;
use crate::events::EventKind;
use crate::store::Backend;
use dlp_chain::ChainClient;
use dlp_node_api::{MessageName, PaymentStatus, TxKindName};

use super::support::Net;

for_each_backend!(
    open_and_pay_both_ways,
    multi_hop_payment_through_an_intermediate_node,
    cooperative_close_pays_each_side_on_the_ledger,
    force_close_sweeps_the_delayed_balance_after_the_delay,
    a_revoked_commitment_on_chain_is_punished_by_the_victims_watcher,
    a_peer_that_cannot_prove_the_dialled_key_is_refused,
    small_channels_wait_for_accept_channel,
    every_message_follows_the_persisted_state_it_depends_on,
    automatic_backups_follow_start_up_and_channel_changes,
    settled_updates_are_folded_so_records_stay_small,
    a_failed_store_write_stops_the_node_and_a_restart_resyncs,
    force_close_with_a_pending_tlc_lets_the_payee_claim_it_by_preimage,
    a_preimage_revealed_on_chain_settles_the_upstream_payment,
    seeded_randomness_repeats_across_runs_and_never_after_a_restore,
    a_backup_step_captures_exactly_that_protocol_step,
);

async fn open_and_pay_both_ways(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    let paid = net.pay("alice", "bob", 100_000).await;
    assert_eq!(paid.status, PaymentStatus::Success, "{paid:?}");
    net.settle("alice", "bob", channel).await;
    let back = net.pay("bob", "alice", 30_000).await;
    assert_eq!(back.status, PaymentStatus::Success, "{back:?}");
    net.settle("alice", "bob", channel).await;
    let a = net.channel("alice", channel).await;
    let b = net.channel("bob", channel).await;
    assert_eq!((a.local_balance, a.remote_balance), (930_000, 70_000));
    assert_eq!((b.local_balance, b.remote_balance), (70_000, 930_000));
    assert_eq!(a.local_commitment_number, b.remote_commitment_number);
    assert!(a.local_commitment_number >= 2, "{a:?}");
    net.shutdown().await;
}

async fn multi_hop_payment_through_an_intermediate_node(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob", "carol"]).await;
    net.connect("alice", "bob").await;
    net.connect("bob", "carol").await;
    let ab = net.open_channel("alice", "bob", 1_000_000).await;
    let bc = net.open_channel("bob", "carol", 1_000_000).await;
    let paid = net.pay("alice", "carol", 50_000).await;
    assert_eq!(paid.status, PaymentStatus::Success, "{paid:?}");
    net.settle("alice", "bob", ab).await;
    net.settle("bob", "carol", bc).await;
    assert_eq!(net.channel("alice", ab).await.local_balance, 950_000);
    assert_eq!(net.channel("bob", ab).await.local_balance, 50_000);
    assert_eq!(net.channel("bob", bc).await.local_balance, 950_000);
    assert_eq!(net.channel("carol", bc).await.local_balance, 50_000);
    // A payee nobody can reach fails with a reason.
    let mut lonely = net;
    lonely.add("dave", super::support::config(backend)).await;
    let failed = lonely.pay("alice", "dave", 10).await;
    assert_eq!(failed.status, PaymentStatus::Failed);
    assert!(failed.failed_error.is_some(), "{failed:?}");
    lonely.shutdown().await;
}

async fn cooperative_close_pays_each_side_on_the_ledger(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 250_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    let (alice_before, bob_before) = (
        net.wallet_balance("alice").await,
        net.wallet_balance("bob").await,
    );
    let after = net.last_seq("bob");
    net.shutdown_channel("alice", channel, false)
        .await
        .expect("shutdown accepted");
    net.wait("bob", after, "Closed(COOPERATIVE)", |k| {
        matches!(
            k,
            EventKind::StateChanged {
                to: ChannelState::Closed(flags::COOPERATIVE),
                ..
            }
        )
    })
    .await;
    net.chain.mine(1).await.expect("mine");
    assert_eq!(net.wallet_balance("alice").await, alice_before + 750_000);
    assert_eq!(net.wallet_balance("bob").await, bob_before + 250_000);
    let kinds: Vec<&'static str> = net
        .chain
        .transactions(Some(channel))
        .await
        .expect("txs")
        .iter()
        .map(|t| t.tx.kind.name())
        .collect();
    assert_eq!(
        kinds,
        ["funding", "cooperative_close"],
        "the channel's whole life on the ledger"
    );
    net.shutdown().await;
}

async fn force_close_sweeps_the_delayed_balance_after_the_delay(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 400_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    let (alice_before, bob_before) = (
        net.wallet_balance("alice").await,
        net.wallet_balance("bob").await,
    );
    let after = net.last_seq("alice");
    net.shutdown_channel("alice", channel, true)
        .await
        .expect("force close accepted");
    net.wait("alice", after, "commitment broadcast", |k| {
        matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Commitment)
    })
    .await;
    // Bob's share is immediate; alice's waits for to_self_delay blocks.
    assert_eq!(net.wallet_balance("bob").await, bob_before + 400_000);
    net.chain.mine(1).await.expect("mine");
    assert_eq!(net.wallet_balance("alice").await, alice_before);
    let delay = net.node("alice").config.channel.to_self_delay;
    let after = net.last_seq("alice");
    net.chain.mine(delay).await.expect("mine");
    net.wait(
        "alice",
        after,
        "sweep",
        |k| matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Sweep),
    )
    .await;
    assert_eq!(net.wallet_balance("alice").await, alice_before + 600_000);
    // Settled once alice's watcher sees her sweep on chain.
    net.wait("alice", after, "settled", |k| {
        matches!(k, EventKind::StateChanged { channel_id, to, .. }
            if *channel_id == channel && *to == ChannelState::Closed(flags::UNCOOPERATIVE_LOCAL))
    })
    .await;
    net.shutdown().await;
}

async fn a_revoked_commitment_on_chain_is_punished_by_the_victims_watcher(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 300_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    // Bob keeps his commitment holding 300_000, then receives it back in another payment.
    let old = net.signed_commitment("bob", channel).await;
    assert_eq!(
        net.pay("bob", "alice", 200_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    let (alice_before, bob_before) = (
        net.wallet_balance("alice").await,
        net.wallet_balance("bob").await,
    );
    let after = net.last_seq("alice");
    net.chain
        .submit(old)
        .await
        .expect("the old commitment is valid on chain");
    net.wait(
        "alice",
        after,
        "penalty",
        |k| matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Penalty),
    )
    .await;
    net.chain
        .mine(net.node("alice").config.channel.to_self_delay + 1)
        .await
        .expect("mine");
    // The old commitment pays alice her old 700_000 at once, and the penalty takes bob's
    // delayed 300_000: the whole channel.
    assert_eq!(net.wallet_balance("alice").await, alice_before + 1_000_000);
    assert_eq!(
        net.wallet_balance("bob").await,
        bob_before,
        "the cheater gets nothing"
    );
    net.shutdown().await;
}

async fn a_peer_that_cannot_prove_the_dialled_key_is_refused(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob", "carol"]).await;
    let alice = net.running("alice").protocol();
    let bob = net.running("bob").protocol();
    // Dial bob's socket but expect carol's key: bob proves his own key, so alice refuses.
    let result = crate::transport::dial(
        bob.peer_addr,
        net.node("carol").pubkey,
        &alice.identity,
        alice.core.transport_sender(),
    )
    .await;
    let err = result.expect_err("wrong key refused");
    assert!(err.to_string().contains("was dialled"), "{err}");
    assert!(
        net.request("alice", |reply| Command::ListPeers { reply })
            .await
            .is_empty()
    );
    net.shutdown().await;
}

async fn small_channels_wait_for_accept_channel(backend: Backend) {
    let mut net = Net::new(backend, &["alice"]).await;
    let mut config = super::support::config(backend);
    config.channel.auto_accept_min_funding_amount = 5_000_000;
    net.add("bob", config).await;
    net.connect("alice", "bob").await;
    let after_bob = net.last_seq("bob");
    let pubkey = net.node("bob").pubkey;
    let temporary = net
        .request("alice", |reply| Command::OpenChannel {
            pubkey,
            funding_amount: 1_000_000,
            reply,
        })
        .await
        .expect("open");
    net.wait(
        "bob",
        after_bob,
        "the proposal",
        |k| matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::OpenChannel),
    )
    .await;
    assert!(
        !net.events("bob", after_bob)
            .iter()
            .any(|e| matches!(&e.kind, EventKind::MessageSent { .. })),
        "bob answered a channel below his auto-accept amount"
    );
    let after_alice = net.last_seq("alice");
    net.request("bob", |reply| Command::AcceptChannel {
        temporary_channel_id: temporary,
        reply,
    })
    .await
    .expect("accept");
    net.wait(
        "alice",
        after_alice,
        "funding",
        |k| matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Funding),
    )
    .await;
    net.shutdown().await;
}

async fn every_message_follows_the_persisted_state_it_depends_on(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    for _ in 0..3 {
        assert_eq!(
            net.pay("alice", "bob", 1_000).await.status,
            PaymentStatus::Success
        );
        assert_eq!(
            net.pay("bob", "alice", 500).await.status,
            PaymentStatus::Success
        );
    }
    net.settle("alice", "bob", channel).await;
    for node in ["alice", "bob"] {
        let mut persisted: Option<(u64, u64)> = None;
        for event in net.events(node, 0) {
            match event.kind {
                EventKind::Persisted {
                    channel_id,
                    local,
                    remote,
                } if channel_id == channel => {
                    persisted = Some((local, remote));
                }
                EventKind::MessageSent {
                    channel_id: Some(id),
                    local,
                    remote,
                    ref msg_type,
                    ..
                } if id == channel => {
                    assert_eq!(
                        persisted,
                        Some((local, remote)),
                        "{msg_type} (#{}) left before its state was persisted",
                        event.seq
                    );
                }
                _ => {}
            }
        }
    }
    net.shutdown().await;
}

async fn automatic_backups_follow_start_up_and_channel_changes(backend: Backend) {
    let mut net = Net::new(backend, &["alice"]).await;
    let mut config = super::support::config(backend);
    config.backup.auto = true;
    config.backup.coalesce_secs = 0;
    net.add("bob", config).await;
    // Marked automatic: a harness tells them from the backups it asks for by RPC.
    let written = |k: &EventKind| {
        matches!(
            k,
            EventKind::BackupWritten {
                automatic: true,
                step: None,
                ..
            }
        )
    };
    let first = net.wait("bob", 0, "the start-up backup", written).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    net.settle("alice", "bob", channel).await;
    let after = net.last_seq("bob");
    assert_eq!(
        net.pay("alice", "bob", 1_000).await.status,
        PaymentStatus::Success
    );
    let change = net
        .wait("bob", after, "a backup after the payment", written)
        .await;
    assert!(change.seq > first.seq);
    let EventKind::BackupWritten { dir, .. } = change.kind else {
        unreachable!()
    };
    // The automatic backup is a real, restorable backup holding the channel.
    let manifest = crate::backup::read_manifest(std::path::Path::new(&dir)).expect("manifest");
    assert_eq!(manifest.backend, backend);
    net.shutdown().await;
}

async fn settled_updates_are_folded_so_records_stay_small(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    let record_size = |who: &str| {
        let store = net.running(who).context().store().clone();
        let record = crate::channel_record::ChannelRecord::load(
            store.as_ref(),
            &crate::channel_record::ChannelId(channel.0),
        )
        .expect("readable")
        .expect("present");
        let data = record.data.as_deref().expect("protocol data");
        (
            record.encode().len(),
            data.our_log.len() + data.their_log.len(),
        )
    };
    let (before, _) = record_size("alice");
    for _ in 0..20 {
        assert_eq!(
            net.pay("alice", "bob", 1_000).await.status,
            PaymentStatus::Success
        );
        assert_eq!(
            net.pay("bob", "alice", 10).await.status,
            PaymentStatus::Success
        );
    }
    net.settle("alice", "bob", channel).await;
    for node in ["alice", "bob"] {
        let (size, pending) = record_size(node);
        assert_eq!(pending, 0, "node {node}: settled updates left in the logs");
        assert!(
            size < before + 512,
            "node {node}: record grew from {before} to {size} bytes"
        );
        eprintln!("node {node}: channel record {size} bytes after 40 payments ({before} before)");
    }
    net.shutdown().await;
}

async fn a_failed_store_write_stops_the_node_and_a_restart_resyncs(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 1_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    // Restart bob with his 2nd store write failing (a full disk, say).
    net.stop("bob").await;
    let base = net.node("bob").base.clone();
    let running = crate::node::RunningNode::start_with(
        base,
        net.node("bob").config.clone(),
        crate::node::StartOptions {
            chain: Some(net.chain_arc()),
            failpoints: crate::failpoint::Failpoints::none().arm("core.persist", 2),
            name: None,
        },
    )
    .await
    .expect("bob starts");
    net.node_mut("bob").running = Some(running);
    net.connect("alice", "bob").await;
    let invoice = net.invoice("alice", 500).await;
    let after = net.last_seq("bob");
    let request = super::support::invoice_request(invoice.address());
    let failed = net.wait(
        "bob",
        after,
        "the injected write failure",
        |k| matches!(k, EventKind::Error { message, .. } if message.contains("store write failed")),
    );
    let _ = net
        .running("bob")
        .protocol()
        .core
        .request(|reply| Command::SendPayment { request, reply })
        .await;
    let failure = failed.await;
    // Whoever runs the node can see that it stopped, and why.
    let fail = tokio::time::timeout(super::support::DEADLINE, net.running("bob").fail_stopped())
        .await
        .expect("fail_stopped resolves")
        .expect("a fail-stop, not a plain stop");
    assert!(fail.reason.contains("store write failed"), "{fail}");
    // Nothing left bob after the failed write, and the core refuses further work.
    assert!(
        !net.events("bob", failure.seq)
            .iter()
            .any(|e| matches!(e.kind, EventKind::MessageSent { .. })),
        "a message left after its state failed to persist"
    );
    assert!(
        net.running("bob")
            .protocol()
            .core
            .request(|reply| Command::ListPeers { reply })
            .await
            .is_err()
    );
    // A plain restart reloads the durable state; reestablish brings both sides back in sync.
    net.stop("bob").await;
    net.start("bob").await;
    net.connect("alice", "bob").await;
    net.wait("bob", 0, "alice's ReestablishChannel", |k| {
        matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::ReestablishChannel)
    })
    .await;
    net.wait("alice", 0, "bob's ReestablishChannel", |k| {
        matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::ReestablishChannel)
    })
    .await;
    assert_eq!(
        net.pay("bob", "alice", 300).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    net.shutdown().await;
}

async fn force_close_with_a_pending_tlc_lets_the_payee_claim_it_by_preimage(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    // Bob holds right after the TLC became irrevocable (alice's RevokeAndAck), before he
    // fulfils it: alice's current commitment carries the TLC.
    net.hold("bob", "received:RevokeAndAck");
    let payment = net.start_payment("alice", "bob", 123_000).await;
    net.wait_held("bob").await;
    let pending = net.channel("alice", channel).await.pending_tlcs;
    assert_eq!(pending.len(), 1, "the TLC is in alice's commitment");
    let (alice_before, bob_before) = (
        net.wallet_balance("alice").await,
        net.wallet_balance("bob").await,
    );
    let after = net.last_seq("bob");
    let closed_at = net.last_seq("alice");
    net.shutdown_channel("alice", channel, true)
        .await
        .expect("force close");
    net.release("bob");
    // Bob, released, sends his fulfil and a CommitmentSigned for alice's next commitment; alice
    // has broadcast her commitment and must never revoke it.
    net.wait("alice", closed_at, "alice ignoring bob's CommitmentSigned", |k| {
        matches!(k, EventKind::MessageIgnored { msg_type, .. } if *msg_type == MessageName::CommitmentSigned)
    })
    .await;
    let revoked_after_close = net.events("alice", closed_at).into_iter().any(|e| {
        matches!(&e.kind, EventKind::MessageSent { msg_type, .. } if *msg_type == MessageName::RevokeAndAck)
    });
    assert!(
        !revoked_after_close,
        "alice revoked the commitment she broadcast"
    );
    // Bob's watcher claims the TLC output with the preimage of his invoice.
    net.wait(
        "bob",
        after,
        "bob's TLC claim",
        |k| matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Sweep),
    )
    .await;
    assert_eq!(net.wallet_balance("bob").await, bob_before + 123_000);
    let delay = net.node("alice").config.channel.to_self_delay;
    let after = net.last_seq("alice");
    net.chain.mine(delay + 1).await.expect("mine");
    net.wait(
        "alice",
        after,
        "alice's delayed sweep",
        |k| matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Sweep),
    )
    .await;
    assert_eq!(
        net.wallet_balance("alice").await,
        alice_before + 1_000_000 - 123_000
    );
    let kinds: Vec<&str> = net
        .chain
        .transactions(Some(channel))
        .await
        .expect("txs")
        .iter()
        .map(|t| t.tx.kind.name())
        .collect();
    assert!(
        !kinds.contains(&"penalty"),
        "nobody was punished: {kinds:?}"
    );
    let _ = payment;
    net.shutdown().await;
}

async fn a_preimage_revealed_on_chain_settles_the_upstream_payment(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob", "carol"]).await;
    net.connect("alice", "bob").await;
    net.connect("bob", "carol").await;
    let ab = net.open_channel("alice", "bob", 1_000_000).await;
    let bc = net.open_channel("bob", "carol", 1_000_000).await;
    // Carol holds once the TLC from bob is irrevocable, before she fulfils off-chain.
    net.hold("carol", "received:RevokeAndAck");
    let after_alice = net.last_seq("alice");
    let payment = net.start_payment("alice", "carol", 40_000).await;
    net.wait_held("carol").await;
    // Bob force-closes towards carol: carol can only get paid on chain, by revealing the
    // preimage there; bob must learn it from the chain and claim upstream from alice.
    let carol_before = net.wallet_balance("carol").await;
    net.shutdown_channel("bob", bc, true)
        .await
        .expect("force close");
    net.release("carol");
    let hash = payment.payment_hash;
    net.wait("alice", after_alice, "alice's payment succeeds", |k| {
        matches!(k, EventKind::PaymentUpdated { payment_hash, status, .. }
            if *payment_hash == hash && *status == PaymentStatus::Success)
    })
    .await;
    assert_eq!(net.wallet_balance("carol").await, carol_before + 40_000);
    net.settle("alice", "bob", ab).await;
    assert_eq!(
        net.channel("bob", ab).await.local_balance,
        40_000,
        "bob was paid upstream"
    );
    net.shutdown().await;
}

async fn seeded_randomness_repeats_across_runs_and_never_after_a_restore(backend: Backend) {
    use crate::layout::BaseDir;
    use crate::node::RunningNode;
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = dlp_chain::InProcessChain::new();
    let mut config = super::support::config(backend);
    config.dev.seed = Some(7);
    let node_key = secp256k1::SecretKey::from_secret_bytes([5; 32]).expect("key");
    let wallet_key = secp256k1::SecretKey::from_secret_bytes([6; 32]).expect("key");
    let start = |name: &str| {
        let base = BaseDir::new(dir.path().join(name));
        let config = config.clone();
        let chain: std::sync::Arc<dyn dlp_chain::ChainClient> = std::sync::Arc::new(chain.clone());
        async move {
            if !base.node_key().exists() {
                crate::keys::install_keys(&base, &node_key, &wallet_key).expect("keys");
            }
            (
                base.clone(),
                RunningNode::start_with_chain(base, config, Some(chain))
                    .await
                    .expect("start"),
            )
        }
    };
    let invoice = |node: &RunningNode| {
        let core = node.protocol().core.clone();
        async move {
            core.request(|reply| Command::NewInvoice {
                amount: 1,
                description: None,
                reply,
            })
            .await
            .expect("core")
            .expect("invoice")
            .payment_hash
        }
    };
    let (_, first) = start("first").await;
    let a1 = invoice(&first).await;
    first.stop().await;
    let (base, second) = start("second").await;
    assert_eq!(
        invoice(&second).await,
        a1,
        "same seed, same keys: same first value"
    );
    let backup = second.context().backup().expect("backup").dir;
    let after_backup = invoice(&second).await;
    second.stop().await;
    crate::restore::restore(&base, backend, &backup, &Default::default()).expect("restore");
    let restored = RunningNode::start_with_chain(
        base.clone(),
        config.clone(),
        Some(std::sync::Arc::new(chain.clone())),
    )
    .await
    .expect("restart");
    let after_restore = invoice(&restored).await;
    assert_ne!(
        after_restore, after_backup,
        "a restore must never replay a value"
    );
    restored.stop().await;
}

async fn a_backup_step_captures_exactly_that_protocol_step(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    net.running("bob")
        .protocol()
        .steps
        .arm(crate::steps::StepSpec {
            step: "sent:RevokeAndAck".into(),
            channel_id: Some(channel),
            nth: 1,
            action: crate::steps::StepAction::Backup,
        })
        .expect("valid step");
    let after = net.last_seq("bob");
    assert_eq!(
        net.pay("alice", "bob", 5_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    // The backup is announced right after bob's first RevokeAndAck, with no hold in between.
    let events = net.events("bob", after);
    let sent = events
        .iter()
        .position(|e| matches!(&e.kind, EventKind::MessageSent { msg_type, .. } if *msg_type == MessageName::RevokeAndAck))
        .expect("bob revoked");
    let EventKind::BackupWritten { dir, .. } = &events[sent + 1].kind else {
        panic!(
            "expected the backup right after the RevokeAndAck, got {:?}",
            events[sent + 1].kind
        );
    };
    let EventKind::MessageSent { local, remote, .. } = events[sent].kind else {
        unreachable!()
    };
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Held { .. }))
    );
    // Its store holds exactly that step's numbers.
    let restored = tempfile::tempdir().expect("tempdir");
    let base = crate::layout::BaseDir::new(restored.path());
    let record_numbers = {
        crate::restore::restore(
            &base,
            backend,
            std::path::Path::new(dir),
            &Default::default(),
        )
        .expect("restore into a fresh base");
        let store = crate::store::open_store(backend, &base.store_dir()).expect("open");
        let record = crate::channel_record::ChannelRecord::load(
            store.as_ref(),
            &crate::channel_record::ChannelId(channel.0),
        )
        .expect("readable")
        .expect("present");
        (
            record.local_commitment_number,
            record.remote_commitment_number,
        )
    };
    assert_eq!(record_numbers, (local, remote));
    net.shutdown().await;
}
