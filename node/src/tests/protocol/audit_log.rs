//! The log lines an operator reads when a restored channel is audited are Fiber's own wording
//! ("Passive audit passed for channel .. Resuming to Ready.", "Audit Failed for Stale channel:
//! Local(L:.., R:..), Peer(L:.., R:..)"), with both sides' numbers, so tools and habits built
//! on fnn's logs work on dlp-node's. Asserted on the captured log (tracing-test), per backend.

use crate::events::EventKind;
use crate::store::Backend;
use dlp_node_api::{AuditEvent, PaymentStatus};

use super::support::Net;

macro_rules! traced_per_backend {
    ($($name:ident),* $(,)?) => {
        mod rocksdb {
            use tracing_test::traced_test;
            $(
                #[traced_test]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::store::Backend::Rocksdb, &|s| logs_contain(s)).await }
            )*
        }
        mod sqlite {
            use tracing_test::traced_test;
            $(
                #[traced_test]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name(crate::store::Backend::Sqlite, &|s| logs_contain(s)).await }
            )*
        }
    };
}

traced_per_backend!(
    a_passed_audit_logs_fibers_resume_line,
    a_failed_audit_logs_fibers_line_with_both_sides_numbers,
);

type Logged<'a> = &'a (dyn Fn(&str) -> bool + Sync);

async fn a_passed_audit_logs_fibers_resume_line(backend: Backend, logged: Logged<'_>) {
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
    assert!(
        !logged("Passive audit passed"),
        "no audit before the peer speaks"
    );
    net.connect("alice", "bob").await;
    net.wait(
        "bob",
        0,
        "audit passed",
        |k| matches!(k, EventKind::Audit(audit) if audit.passed()),
    )
    .await;
    assert!(logged(&format!(
        "Passive audit passed for channel {channel}. Resuming to Ready."
    )));
    assert!(!logged("Audit Failed for Stale channel"));
    net.shutdown().await;
}

async fn a_failed_audit_logs_fibers_line_with_both_sides_numbers(
    backend: Backend,
    logged: Logged<'_>,
) {
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
    let failed = net
        .wait(
            "bob",
            0,
            "audit failed",
            |k| matches!(k, EventKind::Audit(audit) if !audit.passed()),
        )
        .await;
    let EventKind::Audit(AuditEvent {
        local,
        remote,
        peer_local,
        peer_remote,
        ..
    }) = failed.kind
    else {
        unreachable!("matched above")
    };
    assert!(logged(&format!(
        "Audit Failed for Stale channel: Local(L:{local}, R:{remote}), Peer(L:{peer_local}, R:{peer_remote})"
    )));
    assert!(!logged("Passive audit passed"));
    net.shutdown().await;
}
