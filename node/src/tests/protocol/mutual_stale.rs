//! Both ends of a channel restored (both Stale): `audit.mutual_stale = "reveal"` resolves it
//! (StaleNotice both ways, the lower node key sends its numbers first, both audits pass), `wait`
//! keeps passive silence (a StaleNotice is ignored, nothing resumes), and a one-sided restore
//! under `reveal` behaves exactly as before (the honest peer speaks first; no StaleNotice).

use crate::channel_record::ChannelState;
use crate::config::MutualStale;
use crate::core::PaymentStatus;
use crate::events::{EventKind, NodeEvent};
use crate::store::Backend;
use dlp_chain::Hash32;
use dlp_node_api::MessageName;

use super::support::Net;

for_each_backend!(
    both_ends_restored_resume_under_reveal,
    reveal_meets_wait_and_nothing_resumes,
    one_sided_restore_under_reveal_sends_no_stale_notice,
);

/// How long a Stale channel waits before its StaleNotice in these tests.
const REVEAL_AFTER_MS: u64 = 200;

fn set_mode(net: &mut Net, i: usize, mode: MutualStale) {
    net.nodes[i].config.audit.mutual_stale = Some(mode);
    net.nodes[i].config.audit.stale_reveal_after_ms = REVEAL_AFTER_MS;
}

fn audit_passed_on(channel: Hash32) -> impl Fn(&EventKind) -> bool {
    move |k| matches!(k, EventKind::Audit(audit) if audit.passed() && audit.channel_id == channel)
}

fn sent_on(events: &[NodeEvent], channel: Hash32) -> Vec<MessageName> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::MessageSent {
                msg_type,
                channel_id,
                ..
            } if *channel_id == Some(channel) => Some(msg_type.clone()),
            _ => None,
        })
        .collect()
}

fn count(messages: &[MessageName], name: MessageName) -> usize {
    messages.iter().filter(|m| **m == name).count()
}

/// Position of the first event matching `pred`.
fn position(events: &[NodeEvent], pred: impl Fn(&EventKind) -> bool) -> usize {
    events
        .iter()
        .position(|e| pred(&e.kind))
        .expect("event present")
}

/// A channel alice -> bob with a payment, both backed up at the same latest state and both
/// restored from those backups (not connected afterwards).
async fn both_restored(net: &mut Net) -> Hash32 {
    net.connect(0, 1).await;
    let channel = net.open_channel(0, 1, 1_000_000).await;
    assert_eq!(net.pay(0, 1, 100_000).await.status, PaymentStatus::Success);
    net.settle(0, 1, channel).await;
    let backup_alice = net.backup(0).await;
    let backup_bob = net.backup(1).await;
    net.restore(0, &backup_alice).await;
    net.restore(1, &backup_bob).await;
    for i in [0, 1] {
        assert_eq!(net.channel(i, channel).await.state, ChannelState::Stale);
    }
    channel
}

async fn both_ends_restored_resume_under_reveal(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    set_mode(&mut net, 0, MutualStale::Reveal);
    set_mode(&mut net, 1, MutualStale::Reveal);
    let channel = both_restored(&mut net).await;
    net.connect(0, 1).await;
    net.wait(0, 0, "alice's audit passes", audit_passed_on(channel))
        .await;
    net.wait(1, 0, "bob's audit passes", audit_passed_on(channel))
        .await;
    net.settle(0, 1, channel).await;
    assert_eq!(net.pay(0, 1, 30_000).await.status, PaymentStatus::Success);
    assert_eq!(net.pay(1, 0, 70_000).await.status, PaymentStatus::Success);
    net.settle(0, 1, channel).await;
    assert_eq!(net.channel(0, channel).await.local_balance, 940_000);
    assert_eq!(net.channel(1, channel).await.local_balance, 60_000);
    // Each side: one StaleNotice, one ReestablishChannel, one audit (no ping-pong).
    let lower = if net.nodes[0].pubkey.0 < net.nodes[1].pubkey.0 {
        0
    } else {
        1
    };
    for i in [0, 1] {
        let events = net.events(i, 0);
        let sent = sent_on(&events, channel);
        assert_eq!(
            count(&sent, MessageName::StaleNotice),
            1,
            "{}: {sent:?}",
            net.nodes[i].name
        );
        assert_eq!(
            count(&sent, MessageName::ReestablishChannel),
            1,
            "{}: {sent:?}",
            net.nodes[i].name
        );
        let audits = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Audit(_)))
            .count();
        assert_eq!(audits, 1, "{}", net.nodes[i].name);
        // The lower key sent its numbers before it heard the peer's; the other after.
        let sent_numbers = position(
            &events,
            |k| matches!(k, EventKind::MessageSent { msg_type, .. } if *msg_type == MessageName::ReestablishChannel),
        );
        let heard_numbers = position(
            &events,
            |k| matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::ReestablishChannel),
        );
        let heard_notice = position(
            &events,
            |k| matches!(k, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::StaleNotice),
        );
        let sent_notice = position(
            &events,
            |k| matches!(k, EventKind::MessageSent { msg_type, .. } if *msg_type == MessageName::StaleNotice),
        );
        if i == lower {
            assert!(
                sent_notice < sent_numbers && heard_notice < sent_numbers,
                "the lower key speaks after both notices"
            );
            assert!(sent_numbers < heard_numbers, "the lower key speaks first");
        } else {
            assert!(heard_numbers < sent_numbers, "the higher key answers");
        }
    }
    net.shutdown().await;
}

async fn reveal_meets_wait_and_nothing_resumes(backend: Backend) {
    // Both tie-break positions: the revealing side once with the lower key, once the higher.
    for reveal in [0, 1] {
        let waiting = 1 - reveal;
        let mut net = Net::new(backend, &["alice", "bob"]).await;
        set_mode(&mut net, reveal, MutualStale::Reveal);
        set_mode(&mut net, waiting, MutualStale::Wait);
        let channel = both_restored(&mut net).await;
        net.connect(0, 1).await;
        let ignored = net
            .wait(waiting, 0, "the wait side ignores the StaleNotice", |k| {
                matches!(k, EventKind::MessageIgnored { msg_type, .. } if *msg_type == MessageName::StaleNotice)
            })
            .await;
        let EventKind::MessageIgnored { reason, .. } = &ignored.kind else {
            unreachable!()
        };
        assert!(reason.contains("wait"), "{reason}");
        // The revealing side said its StaleNotice and waits for one that never comes; the
        // waiting side said nothing. Both stay Stale, no audit ran.
        for i in [0, 1] {
            assert_eq!(net.channel(i, channel).await.state, ChannelState::Stale);
            let events = net.events(i, 0);
            let expected = if i == reveal {
                vec![MessageName::StaleNotice]
            } else {
                vec![]
            };
            assert_eq!(sent_on(&events, channel), expected, "{}", net.nodes[i].name);
            assert!(
                !events.iter().any(|e| matches!(e.kind, EventKind::Audit(_))),
                "{}: an audit ran",
                net.nodes[i].name
            );
        }
        net.shutdown().await;
    }
}

async fn one_sided_restore_under_reveal_sends_no_stale_notice(backend: Backend) {
    // Bob is restored with two channels: ab (alice was not restored: she reestablishes at
    // once) and cb (carol was restored too). cb's StaleNotice is the clock: bob's reveal timer
    // for ab was armed earlier, so by then it has run out too, and ab must have said nothing.
    let mut net = Net::new(backend, &["alice", "bob", "carol"]).await;
    for i in [0, 1, 2] {
        set_mode(&mut net, i, MutualStale::Reveal);
    }
    net.connect(0, 1).await;
    net.connect(2, 1).await;
    let ab = net.open_channel(0, 1, 1_000_000).await;
    let cb = net.open_channel(2, 1, 1_000_000).await;
    assert_eq!(net.pay(0, 1, 10_000).await.status, PaymentStatus::Success);
    net.settle(0, 1, ab).await;
    let backup_bob = net.backup(1).await;
    let backup_carol = net.backup(2).await;
    net.restore(1, &backup_bob).await;
    net.restore(2, &backup_carol).await;
    net.connect(0, 1).await;
    net.wait(1, 0, "ab passes its audit", audit_passed_on(ab))
        .await;
    net.connect(2, 1).await;
    net.wait(1, 0, "bob's StaleNotice on cb", |k| {
        matches!(k, EventKind::MessageSent { msg_type, channel_id, .. }
            if *msg_type == MessageName::StaleNotice && *channel_id == Some(cb))
    })
    .await;
    let events = net.events(1, 0);
    let heard = position(&events, |k| {
        matches!(k, EventKind::MessageReceived { msg_type, channel_id, .. }
            if *msg_type == MessageName::ReestablishChannel && *channel_id == Some(ab))
    });
    let sent = sent_on(&events, ab);
    assert_eq!(count(&sent, MessageName::StaleNotice), 0, "{sent:?}");
    assert_eq!(count(&sent, MessageName::ReestablishChannel), 1, "{sent:?}");
    assert!(
        sent_on(&events[..heard], ab).is_empty(),
        "bob spoke on ab before alice"
    );
    // Alice never saw a StaleNotice, and the channel works as before.
    assert!(
        !net.events(0, 0)
            .iter()
            .any(|e| matches!(&e.kind, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::StaleNotice))
    );
    net.settle(0, 1, ab).await;
    assert_eq!(net.pay(1, 0, 4_000).await.status, PaymentStatus::Success);
    // cb resolves as a mutual restore.
    net.wait(1, 0, "cb passes its audit", audit_passed_on(cb))
        .await;
    net.wait(2, 0, "carol's audit passes", audit_passed_on(cb))
        .await;
    net.shutdown().await;
}
