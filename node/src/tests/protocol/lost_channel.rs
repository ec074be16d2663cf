//! A node restored from a backup older than a channel: it has no record of the channel when
//! the peer reestablishes it. It answers `RequestForceClose`, the peer closes with its
//! commitment (or ignores the request, `audit.on_force_close_request = "ignore"`), and the
//! restored node recognises the payment to its wallet on chain.

use crate::channel_record::ChannelState;
use crate::config::OnForceCloseRequest;
use crate::events::EventKind;
use crate::store::Backend;
use crate::transport::{Identity, TransportEvent};
use crate::wire::PeerMessage;
use dlp_chain::{ChainClient, Hash32, Pubkey};
use dlp_node_api::{MessageName, PaymentStatus, TxKindName};

use super::support::{DEADLINE, Net};

for_each_backend!(
    a_node_that_lost_the_channel_gets_its_balance_through_the_peers_force_close,
    a_force_close_request_is_ignored_when_configured,
    a_reestablish_for_an_unknown_channel_touches_no_other_channel,
);

fn unknown_reestablish(k: &EventKind) -> bool {
    matches!(k, EventKind::UnknownChannelReestablish { .. })
}

fn received(k: &EventKind, msg: MessageName) -> bool {
    matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == msg)
}

/// Alice opens a channel to bob and pays him `paid`; bob is then restored from a backup taken
/// before the channel existed. Returns the channel and both wallets before the channel.
async fn bob_loses_the_channel(net: &mut Net, paid: u64) -> (Hash32, u64, u64) {
    net.connect("alice", "bob").await;
    let (alice_before, bob_before) = (
        net.wallet_balance("alice").await,
        net.wallet_balance("bob").await,
    );
    let backup = net.backup("bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", paid).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    net.restore("bob", &backup).await;
    assert!(
        net.channels("bob").await.is_empty(),
        "bob's backup predates it"
    );
    (channel, alice_before, bob_before)
}

async fn a_node_that_lost_the_channel_gets_its_balance_through_the_peers_force_close(
    backend: Backend,
) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    let paid = 130_000;
    let (channel, alice_before, bob_before) = bob_loses_the_channel(&mut net, paid).await;
    net.connect("alice", "bob").await;
    let asked = net
        .wait(
            "bob",
            0,
            "bob meets the unknown channel",
            unknown_reestablish,
        )
        .await;
    assert_eq!(
        asked.kind,
        EventKind::UnknownChannelReestablish {
            peer: net.node("alice").pubkey,
            channel_id: channel,
        }
    );
    net.wait("bob", 0, "bob answers RequestForceClose", |k| {
        matches!(k, EventKind::MessageSent { msg_type, channel_id, .. }
            if *msg_type == MessageName::RequestForceClose && *channel_id == Some(channel))
    })
    .await;
    let broadcast = net
        .wait("alice", 0, "alice broadcasts her commitment", |k| {
            matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Commitment)
        })
        .await;
    let EventKind::TxBroadcast { txid, .. } = broadcast.kind else {
        unreachable!()
    };
    // Bob recognises the payment to his wallet key, though he knows no such channel.
    let recovered = net
        .wait("bob", 0, "bob recognises his payout", |k| {
            matches!(k, EventKind::RecoveredFromUnknownChannel { .. })
        })
        .await;
    assert_eq!(
        recovered.kind,
        EventKind::RecoveredFromUnknownChannel {
            channel_id: channel,
            txid,
            amount: paid,
        }
    );
    // Alice sweeps her delayed balance after to_self_delay blocks.
    let after = net.last_seq("alice");
    net.chain.mine(1).await.expect("mine");
    net.chain
        .mine(net.node("alice").config.channel.to_self_delay)
        .await
        .expect("mine");
    net.wait(
        "alice",
        after,
        "alice sweeps her balance",
        |k| matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Sweep),
    )
    .await;
    net.chain.mine(1).await.expect("mine");
    assert_eq!(net.wallet_balance("alice").await, alice_before - paid);
    assert_eq!(net.wallet_balance("bob").await, bob_before + paid);
    let txs = net.chain.transactions(Some(channel)).await.expect("txs");
    assert!(
        txs.iter().all(|t| t.tx.kind.name() != "penalty"),
        "nobody was punished: {txs:?}"
    );
    net.shutdown().await;
}

async fn a_force_close_request_is_ignored_when_configured(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    net.node_mut("alice").config.audit.on_force_close_request = OnForceCloseRequest::Ignore;
    net.stop("alice").await;
    net.start("alice").await;
    let (channel, alice_before, _) = bob_loses_the_channel(&mut net, 50_000).await;
    let after = net.last_seq("alice");
    net.connect("alice", "bob").await;
    net.wait(
        "bob",
        0,
        "bob meets the unknown channel",
        unknown_reestablish,
    )
    .await;
    let ignored = net
        .wait("alice", 0, "alice ignores the request", |k| {
            matches!(k, EventKind::MessageIgnored { msg_type, .. } if *msg_type == MessageName::RequestForceClose)
        })
        .await;
    let EventKind::MessageIgnored { reason, .. } = &ignored.kind else {
        unreachable!()
    };
    assert!(reason.contains("on_force_close_request"), "{reason}");
    net.wait("alice", 0, "alice handled the request", |k| {
        received(k, MessageName::RequestForceClose)
    })
    .await;
    // The list answers after the request's input was handled completely (one core, in order).
    assert_eq!(
        net.channel("alice", channel).await.state,
        ChannelState::ChannelReady
    );
    assert!(
        !net.events("alice", after)
            .iter()
            .any(|e| matches!(e.kind, EventKind::TxBroadcast { .. })),
        "alice broadcast something after the request"
    );
    let txs = net.chain.transactions(Some(channel)).await.expect("txs");
    assert!(txs.iter().all(|t| t.tx.kind.name() == "funding"), "{txs:?}");
    assert_eq!(net.wallet_balance("alice").await, alice_before - 1_000_000);
    net.shutdown().await;
}

async fn a_reestablish_for_an_unknown_channel_touches_no_other_channel(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 10_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    let before = net.channels("bob").await;
    let record_before = stored_record(&net, "bob", channel);
    // A peer with no channel at all reestablishes a random id.
    let secret = secp256k1::SecretKey::from_secret_bytes([7; 32]).expect("key");
    let mallory = Identity {
        secret,
        pubkey: Pubkey::from(secret.public_key()),
    };
    let (events, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let bob = net.running("bob").protocol();
    let after = net.last_seq("bob");
    let mut conn = crate::transport::dial(bob.peer_addr, net.node("bob").pubkey, &mallory, events)
        .await
        .expect("dial");
    conn.start_reading();
    let random = Hash32::digest(b"a channel nobody has");
    assert!(conn.send(&PeerMessage::ReestablishChannel {
        channel_id: random,
        local_commitment_number: 5,
        remote_commitment_number: 5,
    }));
    let answer = tokio::time::timeout(DEADLINE, async {
        loop {
            match heard.recv().await {
                // Bob's gossip (his graph, sent to every new connection) is not the answer.
                Some(TransportEvent::Message { message, .. }) if !message.name().is_gossip() => {
                    return *message;
                }
                Some(_) => {}
                None => panic!("connection closed without an answer"),
            }
        }
    })
    .await
    .expect("bob answers within the deadline");
    assert_eq!(
        answer,
        PeerMessage::RequestForceClose { channel_id: random }
    );
    let asked = net
        .wait(
            "bob",
            after,
            "bob meets the unknown channel",
            unknown_reestablish,
        )
        .await;
    assert_eq!(
        asked.kind,
        EventKind::UnknownChannelReestablish {
            peer: mallory.pubkey,
            channel_id: random,
        }
    );
    net.wait("bob", after, "bob handled it", |k| {
        received(k, MessageName::ReestablishChannel)
    })
    .await;
    // Nothing of bob's real channel changed: not its listing, not its record, no event on it.
    assert_eq!(net.channels("bob").await, before);
    assert_eq!(stored_record(&net, "bob", channel), record_before);
    let touched: Vec<_> = net
        .events("bob", after)
        .into_iter()
        .filter(|e| {
            matches!(&e.kind,
                EventKind::Persisted { .. } | EventKind::StateChanged { .. } | EventKind::TxBroadcast { .. })
                || matches!(&e.kind, EventKind::MessageSent { channel_id, .. } if *channel_id == Some(channel))
        })
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    // And it still works.
    assert_eq!(
        net.pay("alice", "bob", 1_000).await.status,
        PaymentStatus::Success
    );
    drop(conn);
    net.shutdown().await;
}

/// The channel's record as stored (bytes).
fn stored_record(net: &Net, who: &str, channel: Hash32) -> Option<Vec<u8>> {
    let key =
        crate::channel_record::ChannelRecord::key(&crate::channel_record::ChannelId(channel.0));
    net.running(who)
        .context()
        .store()
        .get(&key)
        .expect("store readable")
}
