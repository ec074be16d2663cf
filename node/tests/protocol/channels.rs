//! Open, pay, forward, close: the money paths.

use dlp_node::core::PaymentStatus;
use dlp_node::store::Backend;

use crate::support::Net;

for_each_backend!(open_and_pay_both_ways);

async fn open_and_pay_both_ways(backend: Backend) {
    let net = Net::new(backend, &["alice", "bob"]).await;
    net.connect(0, 1).await;
    let channel = net.open_channel(0, 1, 1_000_000).await;
    let paid = net.pay(0, 1, 100_000).await;
    assert_eq!(paid.status, PaymentStatus::Success, "{paid:?}");
    net.settle(0, 1, channel).await;
    let back = net.pay(1, 0, 30_000).await;
    assert_eq!(back.status, PaymentStatus::Success, "{back:?}");
    net.settle(0, 1, channel).await;
    let a = net.channel(0, channel).await;
    let b = net.channel(1, channel).await;
    assert_eq!((a.local_balance, a.remote_balance), (930_000, 70_000));
    assert_eq!((b.local_balance, b.remote_balance), (70_000, 930_000));
    assert_eq!(a.local_commitment_number, b.remote_commitment_number);
    assert!(a.local_commitment_number >= 2, "{a:?}");
    net.shutdown().await;
}
