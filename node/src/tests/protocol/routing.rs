//! Gossip, pathfinding and onions between real nodes: a line learns its channels from
//! announcements checked against the ledger, a payer routes over several hops with fees, a
//! forged announcement or update is refused and not relayed, and an onion that does not decode
//! fails its TLC back without closing the channel.

use dlp_node_api::PaymentStatus;

use crate::channel_record::ChannelState;
use crate::core::Command;
use crate::events::EventKind;
use crate::graph::{ChannelAnnouncement, ChannelUpdate, GraphChannel};
use crate::store::Backend;
use crate::transport::{Connection, Identity, TransportEvent};
use crate::wire::PeerMessage;
use dlp_chain::{Hash32, OutPoint, Pubkey, sign_digest};
use secp256k1::SecretKey;

use super::support::{Net, config};

for_each_backend!(
    a_line_of_four_learns_its_graph_and_pays_over_three_hops_with_fees,
    forged_gossip_is_refused_logged_and_not_relayed,
    an_onion_that_does_not_decode_fails_the_tlc_back_and_the_channel_stays_open,
    a_hop_that_cannot_forward_is_routed_around_on_the_next_attempt,
    the_graph_survives_a_restart_and_a_restored_node_rebuilds_it_from_its_peers,
);

/// Wait until `who` has `n` channels in its graph with both directions' policies (counting
/// its GraphChannelAdded and GraphChannelUpdated events).
async fn wait_graph(net: &Net, who: &str, n: usize) {
    net.wait(
        who,
        0,
        &format!("{n} channels with their policies in the graph"),
        |_| {
            let events = net.events(who, 0);
            let count = |f: fn(&EventKind) -> bool| events.iter().filter(|e| f(&e.kind)).count();
            count(|k| matches!(k, EventKind::GraphChannelAdded { .. })) >= n
                && count(|k| matches!(k, EventKind::GraphChannelUpdated { .. })) >= 2 * n
        },
    )
    .await;
}

async fn graph(net: &Net, who: &str) -> Vec<GraphChannel> {
    net.request(who, |reply| Command::GraphChannels { reply })
        .await
}

async fn local(net: &Net, who: &str, channel: Hash32) -> u64 {
    net.channel(who, channel).await.local_balance
}

async fn a_line_of_four_learns_its_graph_and_pays_over_three_hops_with_fees(backend: Backend) {
    let mut net = Net::new(backend, &["alice"]).await;
    // Bob and Carol forward for 1% (10,000 millionths).
    for name in ["bob", "carol"] {
        let mut forwarding = config(backend);
        forwarding.channel.fee_rate = 10_000;
        net.add(name, forwarding).await;
    }
    net.add("dave", config(backend)).await;
    let line = ["alice", "bob", "carol", "dave"];
    let mut channels = Vec::new();
    for pair in line.windows(2) {
        net.connect(pair[0], pair[1]).await;
        channels.push(net.open_channel(pair[0], pair[1], 1_000_000).await);
    }
    for who in line {
        wait_graph(&net, who, 3).await;
    }
    // Everyone holds the same three announcements, each with both directions' updates.
    for who in line {
        let held = graph(&net, who).await;
        assert_eq!(held.len(), 3, "{who}");
        assert!(
            held.iter().all(|c| c.updates.iter().all(Option::is_some)),
            "{who}: {held:?}"
        );
    }
    let paid = net.pay("alice", "dave", 100_000).await;
    assert_eq!(paid.status, PaymentStatus::Success, "{paid:?}");
    let route: Vec<Pubkey> = paid.route.iter().map(|h| h.node).collect();
    assert_eq!(
        route,
        vec![
            net.node("bob").pubkey,
            net.node("carol").pubkey,
            net.node("dave").pubkey
        ]
    );
    assert_eq!(paid.attempts, 1);
    // Carol charges 1% of 100,000; Bob 1% of 101,000.
    assert_eq!(paid.fee, 1_000 + 1_010);
    for (pair, channel) in line.windows(2).zip(&channels) {
        net.settle(pair[0], pair[1], *channel).await;
    }
    assert_eq!(local(&net, "alice", channels[0]).await, 1_000_000 - 102_010);
    assert_eq!(local(&net, "bob", channels[1]).await, 1_000_000 - 101_000);
    assert_eq!(local(&net, "carol", channels[2]).await, 1_000_000 - 100_000);
    assert_eq!(local(&net, "dave", channels[2]).await, 100_000);
    // A budget below the fees finds no route, and says so.
    let invoice = net.invoice("dave", 100_000).await;
    let mut request = super::support::invoice_request(invoice.address());
    request.max_fee_amount = Some(2_009);
    let refused = net.pay_request("alice", request).await;
    assert_eq!(refused.status, PaymentStatus::Failed);
    let reason = refused.failed_error.unwrap_or_default();
    assert!(
        reason.contains("no route") && reason.contains("fee budget 2009"),
        "{reason}"
    );
    net.shutdown().await;
}

/// Mallory: a node key and a live connection to `who`.
async fn mallory(
    net: &Net,
    who: &str,
) -> (
    Connection,
    tokio::sync::mpsc::UnboundedReceiver<TransportEvent>,
    SecretKey,
) {
    let secret = SecretKey::from_secret_bytes([7; 32]).expect("key");
    let identity = Identity {
        secret,
        pubkey: Pubkey::from(secret.public_key()),
    };
    let (events, heard) = tokio::sync::mpsc::unbounded_channel();
    let target = net.running(who).protocol();
    let mut conn =
        crate::transport::dial(target.peer_addr, net.node(who).pubkey, &identity, events)
            .await
            .expect("dial");
    conn.start_reading();
    (conn, heard, secret)
}

fn signed_announcement(
    channel_id: Hash32,
    outpoint: OutPoint,
    capacity: u64,
    a: &SecretKey,
    b: &SecretKey,
) -> ChannelAnnouncement {
    let (ka, kb) = (Pubkey::from(a.public_key()), Pubkey::from(b.public_key()));
    let ((n1, s1), (n2, s2)) = if ka < kb {
        ((ka, a), (kb, b))
    } else {
        ((kb, b), (ka, a))
    };
    let digest = ChannelAnnouncement::digest(&channel_id, &outpoint, capacity, &n1, &n2);
    ChannelAnnouncement {
        channel_id,
        funding_outpoint: outpoint,
        capacity,
        node_1: n1,
        node_2: n2,
        node_1_signature: sign_digest(s1, &digest),
        node_2_signature: sign_digest(s2, &digest),
    }
}

async fn forged_gossip_is_refused_logged_and_not_relayed(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    wait_graph(&net, "alice", 1).await;
    wait_graph(&net, "bob", 1).await;
    let real = graph(&net, "bob").await.remove(0).announcement;
    let (conn, _heard, mallory_key) = mallory(&net, "bob").await;
    let accomplice = SecretKey::from_secret_bytes([8; 32]).expect("key");
    let (alice_before, bob_before) = (net.last_seq("alice"), net.last_seq("bob"));
    // 1. A real funding output claimed for a channel of Mallory's.
    let stolen = signed_announcement(
        Hash32([1; 32]),
        real.funding_outpoint,
        real.capacity,
        &mallory_key,
        &accomplice,
    );
    // 2. Valid signatures over a funding output that does not exist.
    let unfunded = signed_announcement(
        Hash32([2; 32]),
        OutPoint {
            txid: Hash32([9; 32]),
            index: 0,
        },
        5_000,
        &mallory_key,
        &accomplice,
    );
    // 3. The real channel's announcement under a new id, signatures no longer matching.
    let resigned = ChannelAnnouncement {
        channel_id: Hash32([3; 32]),
        ..real.clone()
    };
    // 4. An update of the real channel signed by Mallory, who is not one of its ends.
    let digest = ChannelUpdate::digest(
        &channel,
        &Pubkey::from(mallory_key.public_key()),
        u64::MAX,
        false,
        0,
        20,
    );
    let hijack = ChannelUpdate {
        channel_id: channel,
        node: Pubkey::from(mallory_key.public_key()),
        timestamp: u64::MAX,
        enabled: false,
        fee_rate: 0,
        tlc_expiry_delta: 20,
        signature: sign_digest(&mallory_key, &digest),
    };
    for announcement in [stolen, unfunded, resigned] {
        assert!(conn.send(&PeerMessage::ChannelAnnouncement { announcement }));
    }
    assert!(conn.send(&PeerMessage::ChannelUpdate { update: hijack }));
    let reasons: Vec<String> = {
        net.wait("bob", bob_before, "four refusals", |_| {
            net.events("bob", bob_before)
                .iter()
                .filter(|e| matches!(e.kind, EventKind::GossipRefused { .. }))
                .count()
                >= 4
        })
        .await;
        net.events("bob", bob_before)
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::GossipRefused { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    };
    assert!(reasons[0].contains("does not fund channel"), "{reasons:?}");
    assert!(reasons[1].contains("no transaction"), "{reasons:?}");
    assert!(reasons[2].contains("forged"), "{reasons:?}");
    assert!(reasons[3].contains("not an end"), "{reasons:?}");
    // Bob's graph is as it was.
    assert_eq!(graph(&net, "bob").await.len(), 1);
    assert_eq!(graph(&net, "bob").await[0].announcement, real);
    // Nothing was relayed: a payment's messages from Bob reach Alice after anything Bob sent
    // her while he handled the forgeries (one connection, in order), and Alice, who would
    // refuse a relayed forgery too, refused nothing.
    assert_eq!(
        net.pay("alice", "bob", 1_000).await.status,
        PaymentStatus::Success
    );
    assert!(
        !net.events("alice", alice_before)
            .iter()
            .any(|e| matches!(e.kind, EventKind::GossipRefused { .. })),
        "bob relayed forged gossip to alice"
    );
    assert_eq!(graph(&net, "alice").await.len(), 1);
    // The channel is untouched.
    assert_eq!(
        net.channel("bob", channel).await.state,
        ChannelState::ChannelReady
    );
    drop(conn);
    net.shutdown().await;
}

async fn an_onion_that_does_not_decode_fails_the_tlc_back_and_the_channel_stays_open(
    backend: Backend,
) {
    let mut net = Net::new(backend, &["bob", "carol"]).await;
    // Alice corrupts the onion of her first payment attempt.
    net.add_with(
        "alice",
        config(backend),
        crate::failpoint::Failpoints::none().arm("payment.corrupt_onion", 1),
    )
    .await;
    net.connect("alice", "bob").await;
    let ab = net.open_channel("alice", "bob", 1_000_000).await;
    net.connect("bob", "carol").await;
    let bc = net.open_channel("bob", "carol", 1_000_000).await;
    wait_graph(&net, "alice", 2).await;
    let bob_before = net.last_seq("bob");
    let failed = net.pay("alice", "carol", 10_000).await;
    assert_eq!(failed.status, PaymentStatus::Failed);
    let reason = failed.failed_error.clone().unwrap_or_default();
    assert!(reason.contains("invalid onion"), "{reason}");
    net.wait(
        "bob",
        bob_before,
        "bob reports the onion",
        |k| matches!(k, EventKind::Error { message, .. } if message.contains("does not decode")),
    )
    .await;
    // Nothing moved and both channels stay open: the next payment goes through.
    net.settle("alice", "bob", ab).await;
    assert_eq!(
        net.channel("alice", ab).await.state,
        ChannelState::ChannelReady
    );
    assert_eq!(
        net.channel("bob", ab).await.state,
        ChannelState::ChannelReady
    );
    assert_eq!(local(&net, "alice", ab).await, 1_000_000);
    let paid = net.pay("alice", "carol", 10_000).await;
    assert_eq!(paid.status, PaymentStatus::Success, "{paid:?}");
    net.settle("bob", "carol", bc).await;
    assert_eq!(local(&net, "carol", bc).await, 10_000);
    net.shutdown().await;
}

async fn a_hop_that_cannot_forward_is_routed_around_on_the_next_attempt(backend: Backend) {
    // alice - bob - dave is free but bob holds nothing on his side of bob-dave (dave funded it);
    // alice - carol - dave costs carol's 1%.
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    let mut charging = config(backend);
    charging.channel.fee_rate = 10_000;
    net.add("carol", charging).await;
    net.add("dave", config(backend)).await;
    net.connect("alice", "bob").await;
    net.open_channel("alice", "bob", 1_000_000).await;
    net.connect("dave", "bob").await;
    let db = net.open_channel("dave", "bob", 1_000_000).await;
    net.connect("alice", "carol").await;
    net.open_channel("alice", "carol", 1_000_000).await;
    net.connect("carol", "dave").await;
    let cd = net.open_channel("carol", "dave", 1_000_000).await;
    wait_graph(&net, "alice", 4).await;
    let paid = net.pay("alice", "dave", 50_000).await;
    assert_eq!(paid.status, PaymentStatus::Success, "{paid:?}");
    assert_eq!(paid.attempts, 2, "{paid:?}");
    let route: Vec<Pubkey> = paid.route.iter().map(|h| h.node).collect();
    assert_eq!(
        route,
        vec![net.node("carol").pubkey, net.node("dave").pubkey]
    );
    assert_eq!(paid.fee, 500);
    assert!(
        paid.failures.iter().any(|f| f.contains("cannot forward")),
        "{:?}",
        paid.failures
    );
    // The failed attempt moved nothing on bob-dave; the second paid dave through carol.
    net.settle("dave", "bob", db).await;
    assert_eq!(local(&net, "dave", db).await, 1_000_000);
    net.settle("carol", "dave", cd).await;
    assert_eq!(local(&net, "dave", cd).await, 50_000);
    net.shutdown().await;
}

async fn the_graph_survives_a_restart_and_a_restored_node_rebuilds_it_from_its_peers(
    backend: Backend,
) {
    let mut net = Net::new(backend, &["alice", "bob", "carol"]).await;
    net.connect("alice", "bob").await;
    net.open_channel("alice", "bob", 1_000_000).await;
    net.connect("bob", "carol").await;
    net.open_channel("bob", "carol", 1_000_000).await;
    wait_graph(&net, "alice", 2).await;
    let backup = net.backup("alice").await;
    // A restart keeps the graph: alice knows both channels before anyone connects.
    net.stop("alice").await;
    net.start("alice").await;
    assert_eq!(graph(&net, "alice").await.len(), 2);
    // A restore drops it; bob's sync on the new connection brings it back.
    net.restore("alice", &backup).await;
    assert!(
        graph(&net, "alice").await.is_empty(),
        "a restored node starts without a graph"
    );
    net.connect("bob", "alice").await;
    wait_graph(&net, "alice", 2).await;
    let rebuilt = graph(&net, "alice").await;
    assert_eq!(rebuilt.len(), 2);
    assert!(
        rebuilt
            .iter()
            .all(|c| c.updates.iter().all(Option::is_some))
    );
    // Bob's channel with the restored alice is announced as it stands; carol's is unchanged.
    assert_eq!(graph(&net, "carol").await.len(), 2);
    net.shutdown().await;
}
