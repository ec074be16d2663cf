//! Reconnection: the three resync cases of Fiber's ReestablishChannel handling.

use crate::core::Command;
use crate::events::EventKind;
use crate::store::Backend;
use dlp_node_api::{MessageName, PaymentStatus};

use super::support::Net;

for_each_backend!(
    equal_numbers_reconnect_and_keep_paying,
    peer_missed_our_revoke_and_ack_gets_it_resent,
    lost_tlc_update_and_commitment_are_resent_after_reconnect,
);

fn received_reestablish(k: &EventKind) -> bool {
    matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::ReestablishChannel)
}

fn sent(k: &EventKind, msg: MessageName) -> bool {
    matches!(k, EventKind::MessageSent { msg_type, .. } if *msg_type == msg)
}

async fn equal_numbers_reconnect_and_keep_paying(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 10_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    net.disconnect("alice", "bob").await;
    let after = net.last_seq("bob");
    net.connect("bob", "alice").await;
    net.wait("bob", after, "bob sends ReestablishChannel", |k| {
        sent(k, MessageName::ReestablishChannel)
    })
    .await;
    net.wait("bob", after, "bob hears alice's ReestablishChannel", |k| {
        matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::ReestablishChannel)
    })
    .await;
    assert_eq!(
        net.pay("bob", "alice", 4_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    assert_eq!(net.channel("alice", channel).await.local_balance, 994_000);
    net.shutdown().await;
}

async fn wait_payment(
    net: &Net,
    payer: &str,
    hash: dlp_chain::Hash32,
    after: u64,
) -> PaymentStatus {
    net.wait(payer, after, "payment final", |k| {
        matches!(k, EventKind::PaymentUpdated { payment_hash, status, .. }
            if *payment_hash == hash && status.is_final())
    })
    .await;
    net.request(payer, |reply| Command::GetPayment {
        payment_hash: hash,
        reply,
    })
    .await
    .expect("payment")
    .status
}

async fn peer_missed_our_revoke_and_ack_gets_it_resent(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    // Bob processes alice's CommitmentSigned and persists; his RevokeAndAck is lost.
    net.hold("bob", "received:CommitmentSigned");
    let after_alice = net.last_seq("alice");
    let payment = net.start_payment("alice", "bob", 20_000).await;
    net.wait_held("bob").await;
    let held = net.channel("alice", channel).await;
    net.disconnect("alice", "bob").await;
    let before_release = net.last_seq("bob");
    net.release("bob");
    net.wait("bob", before_release, "bob notices the disconnect", |k| {
        matches!(k, EventKind::PeerDisconnected { .. })
    })
    .await;
    // Bob is one revocation ahead of what alice has seen: after alice's ReestablishChannel he
    // must send the RevokeAndAck again.
    let after_bob = net.last_seq("bob");
    net.connect("alice", "bob").await;
    let heard = net
        .wait(
            "bob",
            after_bob,
            "alice's ReestablishChannel",
            received_reestablish,
        )
        .await;
    net.wait("bob", heard.seq, "bob resends RevokeAndAck", |k| {
        sent(k, MessageName::RevokeAndAck)
    })
    .await;
    assert_eq!(
        wait_payment(&net, "alice", payment.payment_hash, after_alice).await,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    let now = net.channel("alice", channel).await;
    assert!(now.local_commitment_number > held.local_commitment_number);
    assert_eq!(now.local_balance, 980_000);
    net.shutdown().await;
}

async fn lost_tlc_update_and_commitment_are_resent_after_reconnect(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    // Alice holds right after sending AddTlc: her CommitmentSigned is persisted as pending
    // but goes to a connection bob has closed.
    net.hold("alice", "sent:AddTlc");
    let invoice = net.invoice("bob", 30_000).await;
    let after_alice = net.last_seq("alice");
    // The command's reply comes after alice's flush, which the hold pauses: run both.
    let (payment, ()) = tokio::join!(
        net.request("alice", |reply| Command::SendPayment {
            request: super::support::invoice_request(invoice.address()),
            reply
        }),
        async {
            net.wait_held("alice").await;
            net.disconnect("bob", "alice").await;
            net.release("alice");
        }
    );
    let payment = payment.expect("payment started");
    net.wait("alice", after_alice, "alice notices the disconnect", |k| {
        matches!(k, EventKind::PeerDisconnected { .. })
    })
    .await;
    let after = net.last_seq("alice");
    net.connect("bob", "alice").await;
    let heard = net
        .wait(
            "alice",
            after,
            "bob's ReestablishChannel",
            received_reestablish,
        )
        .await;
    let add = net
        .wait("alice", heard.seq, "alice resends AddTlc", |k| {
            sent(k, MessageName::AddTlc)
        })
        .await;
    net.wait("alice", add.seq, "then CommitmentSigned", |k| {
        sent(k, MessageName::CommitmentSigned)
    })
    .await;
    assert_eq!(
        wait_payment(&net, "alice", payment.payment_hash, after_alice).await,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    assert_eq!(net.channel("bob", channel).await.local_balance, 30_000);
    net.shutdown().await;
}
