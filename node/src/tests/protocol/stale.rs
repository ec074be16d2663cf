//! Stale channels after a restore: passive silence, the audit under both policies, blocking,
//! isolation between channels, ShuttingDown recovery, request_close.

use crate::channel_record::{ChannelState, flags};
use crate::config::{AuditPolicy, OnAuditFailure};
use crate::core::SendPaymentRequest;
use crate::events::{EventKind, NodeEvent};
use crate::store::Backend;
use dlp_chain::{ChainClient, Hash32};
use dlp_node_api::{AuditEvent, AuditOutcome, MessageName, PaymentStatus, TxKindName};

use super::support::Net;

for_each_backend!(
    restored_node_is_silent_at_start_up_and_resumes_after_a_passed_audit,
    restored_node_stays_silent_when_it_reconnects_first,
    audit_fails_after_two_payments_and_the_channel_stays_blocked,
    peer_one_step_ahead_passes_fiber_and_fails_strict,
    peer_two_steps_ahead_fails_both_policies,
    two_channels_of_one_node_are_audited_independently,
    shutting_down_channel_completes_its_close_after_restore,
    request_close_gets_the_funds_back_on_the_ledger,
    strict_asks_the_peer_to_close_by_default,
);

fn audit_passed(k: &EventKind) -> bool {
    matches!(k, EventKind::Audit(audit) if audit.passed())
}

fn heard_reestablish(k: &EventKind) -> bool {
    matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::ReestablishChannel)
}

fn audit_failed(k: &EventKind) -> bool {
    matches!(k, EventKind::Audit(audit) if !audit.passed())
}

/// Assert a node sent nothing on `channel` before it received the peer's ReestablishChannel.
fn assert_silent_until_peer_spoke(events: &[NodeEvent], channel: Hash32) {
    let heard = events
        .iter()
        .position(|e| {
            matches!(&e.kind, EventKind::MessageReceived { msg_type, channel_id, .. }
                if *msg_type == MessageName::ReestablishChannel && *channel_id == Some(channel))
        })
        .expect("the peer's ReestablishChannel was received");
    let early: Vec<_> = events[..heard]
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::MessageSent { channel_id, .. } if *channel_id == Some(channel)))
        .collect();
    assert!(early.is_empty(), "Stale channel spoke first: {early:?}");
}

async fn state(net: &Net, who: &str, channel: Hash32) -> ChannelState {
    net.channel(who, channel).await.state
}

async fn restored_node_is_silent_at_start_up_and_resumes_after_a_passed_audit(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 100_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    let backup = net.backup("bob").await;
    net.restore("bob", &backup).await;
    assert_eq!(state(&net, "bob", channel).await, ChannelState::Stale);
    // Alice is online but not connected yet: bob says nothing. Then alice connects.
    net.connect("alice", "bob").await;
    net.wait("bob", 0, "audit passed", audit_passed).await;
    net.wait("bob", 0, "the peer's ReestablishChannel", heard_reestablish)
        .await;
    assert_silent_until_peer_spoke(&net.events("bob", 0), channel);
    net.wait("alice", 0, "bob's ReestablishChannel", heard_reestablish)
        .await;
    net.settle("alice", "bob", channel).await;
    assert_eq!(
        state(&net, "bob", channel).await,
        ChannelState::ChannelReady
    );
    assert_eq!(
        net.pay("bob", "alice", 40_000).await.status,
        PaymentStatus::Success
    );
    assert_eq!(
        net.pay("alice", "bob", 5_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    assert_eq!(net.channel("bob", channel).await.local_balance, 65_000);
    assert_eq!(net.channel("alice", channel).await.local_balance, 935_000);
    net.shutdown().await;
}

async fn restored_node_stays_silent_when_it_reconnects_first(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    let backup = net.backup("bob").await;
    net.restore("bob", &backup).await;
    // Bob dials: Fiber would send its own ReestablishChannel here; we must not.
    net.connect("bob", "alice").await;
    net.wait("bob", 0, "audit passed", audit_passed).await;
    net.wait("bob", 0, "the peer's ReestablishChannel", heard_reestablish)
        .await;
    assert_silent_until_peer_spoke(&net.events("bob", 0), channel);
    // Alice resumes once she hears bob's ReestablishChannel, sent after his audit passed.
    net.wait("alice", 0, "bob's ReestablishChannel", heard_reestablish)
        .await;
    net.settle("alice", "bob", channel).await;
    assert_eq!(
        net.pay("alice", "bob", 1_000).await.status,
        PaymentStatus::Success
    );
    net.shutdown().await;
}

async fn keysend(net: &Net, payer: &str, payee: &str, amount: u64) -> crate::core::Payment {
    net.pay_request(
        payer,
        SendPaymentRequest {
            invoice: None,
            target_pubkey: Some(net.node(payee).pubkey),
            amount: Some(amount),
            keysend: Some(true),
            max_fee_amount: None,
            tlc_expiry_limit: None,
        },
    )
    .await
}

async fn audit_fails_after_two_payments_and_the_channel_stays_blocked(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    let backup = net.backup("bob").await;
    assert_eq!(
        net.pay("alice", "bob", 100_000).await.status,
        PaymentStatus::Success
    );
    assert_eq!(
        net.pay("alice", "bob", 100_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    net.restore("bob", &backup).await;
    net.connect("alice", "bob").await;
    let failed = net.wait("bob", 0, "audit failed", audit_failed).await;
    assert!(
        matches!(failed.kind, EventKind::Audit(ref audit) if audit.policy == AuditPolicy::Fiber && !audit.passed())
    );
    assert_eq!(state(&net, "bob", channel).await, ChannelState::Stale);
    net.wait("bob", 0, "the peer's ReestablishChannel", heard_reestablish)
        .await;
    for force in [false, true] {
        let refused = net
            .shutdown_channel("bob", channel, force)
            .await
            .expect_err("shutdown of a blocked Stale channel is refused");
        assert!(refused.contains("Stale"), "{refused}");
    }
    let payment = keysend(&net, "bob", "alice", 1_000).await;
    assert_eq!(payment.status, PaymentStatus::Failed);
    let reason = payment.failed_error.unwrap_or_default();
    assert!(reason.contains("Stale"), "{reason}");
    // Bob never spoke on the channel and never broadcast anything.
    let events = net.events("bob", 0);
    assert_silent_until_peer_spoke(&events, channel);
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::TxBroadcast { .. })),
        "a blocked node broadcast something"
    );
    assert!(
        !events.iter().any(|e| matches!(&e.kind, EventKind::MessageSent { channel_id, .. } if *channel_id == Some(channel))),
        "a blocked channel sent a message"
    );
    let commitments = net.chain.transactions(Some(channel)).await.expect("txs");
    assert!(commitments.iter().all(|t| t.tx.kind.name() != "commitment"));
    // The node itself stays healthy.
    assert_eq!(net.invoice("bob", 10).await.amount, 10);
    net.shutdown().await;
}

/// Back up bob while a payment to him is one commitment step from complete.
async fn backup_one_step_behind(net: &mut Net, channel: Hash32) -> std::path::PathBuf {
    // Bob's second CommitmentSigned (after his fulfil) is the last step where both numbers
    // trail the final ones by exactly one.
    net.running("bob")
        .protocol()
        .steps
        .arm(crate::steps::StepSpec {
            step: "sent:CommitmentSigned".into(),
            channel_id: Some(channel),
            nth: 2,
            action: Default::default(),
        })
        .expect("valid step");
    let after = net.last_seq("alice");
    let payment = net.start_payment("alice", "bob", 70_000).await;
    net.wait_held("bob").await;
    let backup = net.backup("bob").await;
    net.release("bob");
    let hash = payment.payment_hash;
    net.wait("alice", after, "payment done", |k| {
        matches!(k, EventKind::PaymentUpdated { payment_hash, status, .. } if *payment_hash == hash && *status == PaymentStatus::Success)
    })
    .await;
    net.settle("alice", "bob", channel).await;
    backup
}

async fn peer_one_step_ahead_passes_fiber_and_fails_strict(backend: Backend) {
    for policy in [AuditPolicy::Fiber, AuditPolicy::Strict] {
        let mut net = Net::new(backend, &["alice", "bob"]).await;
        net.set_audit("bob", policy, OnAuditFailure::Hold);
        net.connect("alice", "bob").await;
        let channel = net.open_channel("alice", "bob", 1_000_000).await;
        let backup = backup_one_step_behind(&mut net, channel).await;
        net.restore("bob", &backup).await;
        net.connect("alice", "bob").await;
        let outcome = net
            .wait("bob", 0, "an audit outcome", |k| {
                audit_passed(k) || audit_failed(k)
            })
            .await;
        match (policy, &outcome.kind) {
            (
                AuditPolicy::Fiber,
                EventKind::Audit(AuditEvent {
                    local,
                    remote,
                    peer_local,
                    peer_remote,
                    outcome: AuditOutcome::Passed,
                    ..
                }),
            ) => {
                assert_eq!((peer_local - remote, peer_remote - local), (1, 1));
            }
            (
                AuditPolicy::Strict,
                EventKind::Audit(AuditEvent {
                    outcome: AuditOutcome::Failed { reason },
                    ..
                }),
            ) => {
                assert!(reason.contains("revoked"), "{reason}");
                assert_eq!(state(&net, "bob", channel).await, ChannelState::Stale);
            }
            (policy, other) => panic!("{policy:?}: unexpected outcome {other:?}"),
        }
        net.shutdown().await;
    }
}

async fn peer_two_steps_ahead_fails_both_policies(backend: Backend) {
    for policy in [AuditPolicy::Fiber, AuditPolicy::Strict] {
        let mut net = Net::new(backend, &["alice", "bob"]).await;
        net.set_audit("bob", policy, OnAuditFailure::Hold);
        net.connect("alice", "bob").await;
        let channel = net.open_channel("alice", "bob", 1_000_000).await;
        let backup = net.backup("bob").await;
        // One payment moves both numbers by two.
        assert_eq!(
            net.pay("alice", "bob", 1_000).await.status,
            PaymentStatus::Success
        );
        net.settle("alice", "bob", channel).await;
        net.restore("bob", &backup).await;
        net.connect("alice", "bob").await;
        net.wait("bob", 0, "audit failed", audit_failed).await;
        assert_eq!(state(&net, "bob", channel).await, ChannelState::Stale);
        net.shutdown().await;
    }
}

async fn two_channels_of_one_node_are_audited_independently(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob", "carol"]).await;
    net.connect("alice", "bob").await;
    net.connect("alice", "carol").await;
    let with_bob = net.open_channel("alice", "bob", 1_000_000).await;
    let with_carol = net.open_channel("alice", "carol", 1_000_000).await;
    let backup = net.backup("alice").await;
    assert_eq!(
        net.pay("alice", "bob", 10_000).await.status,
        PaymentStatus::Success
    );
    assert_eq!(
        net.pay("alice", "bob", 10_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", with_bob).await;
    net.restore("alice", &backup).await;
    net.connect("bob", "alice").await;
    net.connect("carol", "alice").await;
    net.wait(
        "alice",
        0,
        "bob channel fails",
        |k| matches!(k, EventKind::Audit(audit) if !audit.passed() && audit.channel_id == with_bob),
    )
    .await;
    net.wait(
        "alice",
        0,
        "carol channel passes",
        |k| matches!(k, EventKind::Audit(audit) if audit.passed() && audit.channel_id == with_carol),
    )
    .await;
    net.settle("alice", "carol", with_carol).await;
    assert_eq!(
        net.pay("alice", "carol", 25_000).await.status,
        PaymentStatus::Success
    );
    assert_eq!(state(&net, "alice", with_bob).await, ChannelState::Stale);
    assert_eq!(
        state(&net, "alice", with_carol).await,
        ChannelState::ChannelReady
    );
    net.shutdown().await;
}

async fn shutting_down_channel_completes_its_close_after_restore(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 300_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    // Bob starts a cooperative close while alice is away, and is backed up ShuttingDown.
    net.disconnect("alice", "bob").await;
    net.shutdown_channel("bob", channel, false)
        .await
        .expect("shutdown accepted");
    assert_eq!(
        state(&net, "bob", channel).await,
        ChannelState::ShuttingDown(flags::OUR_SHUTDOWN_SENT)
    );
    let backup = net.backup("bob").await;
    net.restore("bob", &backup).await;
    assert_eq!(state(&net, "bob", channel).await, ChannelState::Stale);
    let (alice_before, bob_before) = (
        net.wallet_balance("alice").await,
        net.wallet_balance("bob").await,
    );
    net.connect("alice", "bob").await;
    net.wait("bob", 0, "audit passed", audit_passed).await;
    let closed = |k: &EventKind| {
        matches!(
            k,
            EventKind::StateChanged {
                to: ChannelState::Closed(flags::COOPERATIVE),
                ..
            }
        )
    };
    net.wait("bob", 0, "bob closed", closed).await;
    net.wait("alice", 0, "alice closed", closed).await;
    net.chain.mine(1).await.expect("mine");
    assert_eq!(net.wallet_balance("alice").await, alice_before + 700_000);
    assert_eq!(net.wallet_balance("bob").await, bob_before + 300_000);
    net.shutdown().await;
}

async fn request_close_gets_the_funds_back_on_the_ledger(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    net.set_audit("bob", AuditPolicy::Fiber, OnAuditFailure::RequestClose);
    // Alice force-closes on request; her commitment pays bob's current 300_000 at once.
    restored_behind_is_closed_by_the_peer(net, &[150_000, 50_000]).await;
}

/// Under `strict` a failed audit asks the peer to close without any `on_audit_failure` set: the
/// peer's commitment pays the restored node its current balance.
async fn strict_asks_the_peer_to_close_by_default(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    net.node_mut("bob").config.audit.policy = AuditPolicy::Strict;
    assert_eq!(net.node("bob").config.audit.on_audit_failure, None);
    restored_behind_is_closed_by_the_peer(net, &[40_000]).await;
}

/// Alice pays bob 100_000, bob is backed up, alice pays him `later` too, bob is restored and
/// reconnected: his audit fails, alice broadcasts her commitment, and one block later bob's
/// wallet holds his current balance (not his backup's).
async fn restored_behind_is_closed_by_the_peer(mut net: Net, later: &[u64]) {
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 100_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    let backup = net.backup("bob").await;
    for amount in later {
        assert_eq!(
            net.pay("alice", "bob", *amount).await.status,
            PaymentStatus::Success
        );
    }
    net.settle("alice", "bob", channel).await;
    net.restore("bob", &backup).await;
    let bob_before = net.wallet_balance("bob").await;
    net.connect("alice", "bob").await;
    net.wait("bob", 0, "audit failed", audit_failed).await;
    net.wait("alice", 0, "alice broadcasts her commitment", |k| {
        matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Commitment)
    })
    .await;
    net.chain.mine(1).await.expect("mine");
    let current = 100_000 + later.iter().sum::<u64>();
    assert_eq!(net.wallet_balance("bob").await, bob_before + current);
    net.shutdown().await;
}
