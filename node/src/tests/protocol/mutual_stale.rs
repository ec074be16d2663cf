//! Both ends of a channel restored (both Stale): `audit.mutual_stale = "reveal"` resolves it
//! (StaleNotice both ways, the lower node key sends its numbers first, both audits pass), `wait`
//! keeps passive silence (a StaleNotice is ignored, nothing resumes), and a one-sided restore
//! under `reveal` behaves exactly as before (the honest peer speaks first; no StaleNotice).

use crate::channel_record::ChannelState;
use crate::channel_record::flags;
use crate::config::{AuditPolicy, MutualStale};
use crate::events::{EventKind, NodeEvent};
use crate::store::Backend;
use dlp_chain::{ChainClient, Hash32};
use dlp_node_api::{MessageName, PaymentStatus, TxKindName};

use super::support::Net;

for_each_backend!(
    both_ends_restored_resume_under_reveal,
    both_ends_restored_far_apart_the_newer_end_closes,
    reveal_meets_wait_and_nothing_resumes,
    one_sided_restore_under_reveal_sends_no_stale_notice,
);

/// How long a Stale channel waits before its StaleNotice in these tests.
const REVEAL_AFTER_MS: u64 = 200;

fn set_mode(net: &mut Net, who: &str, mode: MutualStale) {
    let audit = &mut net.node_mut(who).config.audit;
    audit.mutual_stale = Some(mode);
    audit.stale_reveal_after_ms = REVEAL_AFTER_MS;
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
    net.connect("alice", "bob").await;
    let channel = net.open_channel("alice", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 100_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    let backup_alice = net.backup("alice").await;
    let backup_bob = net.backup("bob").await;
    net.restore("alice", &backup_alice).await;
    net.restore("bob", &backup_bob).await;
    for who in ["alice", "bob"] {
        assert_eq!(net.channel(who, channel).await.state, ChannelState::Stale);
    }
    channel
}

async fn both_ends_restored_resume_under_reveal(backend: Backend) {
    let mut net = Net::new(backend, &["alice", "bob"]).await;
    set_mode(&mut net, "alice", MutualStale::Reveal);
    set_mode(&mut net, "bob", MutualStale::Reveal);
    let channel = both_restored(&mut net).await;
    net.connect("alice", "bob").await;
    net.wait("alice", 0, "alice's audit passes", audit_passed_on(channel))
        .await;
    net.wait("bob", 0, "bob's audit passes", audit_passed_on(channel))
        .await;
    net.settle("alice", "bob", channel).await;
    assert_eq!(
        net.pay("alice", "bob", 30_000).await.status,
        PaymentStatus::Success
    );
    assert_eq!(
        net.pay("bob", "alice", 70_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", channel).await;
    assert_eq!(net.channel("alice", channel).await.local_balance, 940_000);
    assert_eq!(net.channel("bob", channel).await.local_balance, 60_000);
    // Each side: one StaleNotice, one ReestablishChannel, one audit (no ping-pong).
    let lower = if net.node("alice").pubkey.0 < net.node("bob").pubkey.0 {
        "alice"
    } else {
        "bob"
    };
    for who in ["alice", "bob"] {
        let events = net.events(who, 0);
        let sent = sent_on(&events, channel);
        assert_eq!(count(&sent, MessageName::StaleNotice), 1, "{who}: {sent:?}");
        assert_eq!(
            count(&sent, MessageName::ReestablishChannel),
            1,
            "{who}: {sent:?}"
        );
        let audits = events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Audit(_)))
            .count();
        assert_eq!(audits, 1, "{who}");
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
        if who == lower {
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

/// Both ends restored under `strict` (whose defaults are `reveal` and `request_close`), from
/// backups three payments apart: both audits fail (more than one apart), and the end with the
/// newer backup closes with its commitment, which pays the older end what the newer records
/// say at once. Both tie-break positions: the newer end once with each node key.
async fn both_ends_restored_far_apart_the_newer_end_closes(backend: Backend) {
    for (newer, older) in [("alice", "bob"), ("bob", "alice")] {
        let mut net = Net::new(backend, &["alice", "bob"]).await;
        for who in ["alice", "bob"] {
            let audit = &mut net.node_mut(who).config.audit;
            audit.policy = AuditPolicy::Strict;
            audit.stale_reveal_after_ms = REVEAL_AFTER_MS;
        }
        net.connect("alice", "bob").await;
        let channel = net.open_channel("alice", "bob", 1_000_000).await;
        assert_eq!(
            net.pay("alice", "bob", 100_000).await.status,
            PaymentStatus::Success
        );
        net.settle("alice", "bob", channel).await;
        let old_backup = net.backup(older).await;
        for _ in 0..3 {
            assert_eq!(
                net.pay("alice", "bob", 50_000).await.status,
                PaymentStatus::Success
            );
        }
        net.settle("alice", "bob", channel).await;
        let new_backup = net.backup(newer).await;
        net.restore(older, &old_backup).await;
        net.restore(newer, &new_backup).await;
        let older_before = net.wallet_balance(older).await;
        net.connect("alice", "bob").await;
        // The newer end's audit fails (more than one apart) and it closes at once; the older end
        // audits the newer's numbers too, unless the close reaches it from the chain first.
        net.wait(newer, 0, "the newer end's audit fails", |k| {
            matches!(k, EventKind::Audit(audit) if !audit.passed() && audit.channel_id == channel)
        })
        .await;
        net.wait(newer, 0, "the newer end broadcasts its commitment", |k| {
            matches!(k, EventKind::TxBroadcast { kind, accepted: true, .. } if *kind == TxKindName::Commitment)
        })
        .await;
        net.wait(older, 0, "the older end sees the close", |k| {
            matches!(k, EventKind::StateChanged { channel_id, to: ChannelState::Closed(f), .. }
                if *channel_id == channel && f & flags::UNCOOPERATIVE_REMOTE != 0)
        })
        .await;
        // The older end never broadcast anything of its own.
        assert!(
            !net.events(older, 0)
                .iter()
                .any(|e| matches!(e.kind, EventKind::TxBroadcast { .. })),
            "{older} broadcast"
        );
        net.chain.mine(1).await.expect("mine");
        let owed = if older == "bob" { 250_000 } else { 750_000 };
        assert_eq!(net.wallet_balance(older).await, older_before + owed);
        net.shutdown().await;
    }
}

async fn reveal_meets_wait_and_nothing_resumes(backend: Backend) {
    // Both tie-break positions: the revealing side once with the lower key, once the higher.
    for (reveal, waiting) in [("alice", "bob"), ("bob", "alice")] {
        let mut net = Net::new(backend, &["alice", "bob"]).await;
        set_mode(&mut net, reveal, MutualStale::Reveal);
        set_mode(&mut net, waiting, MutualStale::Wait);
        let channel = both_restored(&mut net).await;
        net.connect("alice", "bob").await;
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
        for who in ["alice", "bob"] {
            assert_eq!(net.channel(who, channel).await.state, ChannelState::Stale);
            let events = net.events(who, 0);
            let expected = if who == reveal {
                vec![MessageName::StaleNotice]
            } else {
                vec![]
            };
            assert_eq!(sent_on(&events, channel), expected, "{who}");
            assert!(
                !events.iter().any(|e| matches!(e.kind, EventKind::Audit(_))),
                "{who}: an audit ran"
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
    for who in ["alice", "bob", "carol"] {
        set_mode(&mut net, who, MutualStale::Reveal);
    }
    net.connect("alice", "bob").await;
    net.connect("carol", "bob").await;
    let ab = net.open_channel("alice", "bob", 1_000_000).await;
    let cb = net.open_channel("carol", "bob", 1_000_000).await;
    assert_eq!(
        net.pay("alice", "bob", 10_000).await.status,
        PaymentStatus::Success
    );
    net.settle("alice", "bob", ab).await;
    let backup_bob = net.backup("bob").await;
    let backup_carol = net.backup("carol").await;
    net.restore("bob", &backup_bob).await;
    net.restore("carol", &backup_carol).await;
    net.connect("alice", "bob").await;
    net.wait("bob", 0, "ab passes its audit", audit_passed_on(ab))
        .await;
    net.connect("carol", "bob").await;
    net.wait("bob", 0, "bob's StaleNotice on cb", |k| {
        matches!(k, EventKind::MessageSent { msg_type, channel_id, .. }
            if *msg_type == MessageName::StaleNotice && *channel_id == Some(cb))
    })
    .await;
    let events = net.events("bob", 0);
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
        !net.events("alice", 0)
            .iter()
            .any(|e| matches!(&e.kind, EventKind::MessageReceived { msg_type, .. } if *msg_type == MessageName::StaleNotice))
    );
    net.settle("alice", "bob", ab).await;
    assert_eq!(
        net.pay("bob", "alice", 4_000).await.status,
        PaymentStatus::Success
    );
    // cb resolves as a mutual restore.
    net.wait("bob", 0, "cb passes its audit", audit_passed_on(cb))
        .await;
    net.wait("carol", 0, "carol's audit passes", audit_passed_on(cb))
        .await;
    net.shutdown().await;
}
