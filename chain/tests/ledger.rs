//! dlp-chain: what the ledger accepts and rejects, in process and over JSON-RPC.

use std::time::Duration;

use dlp_chain::{
    ChainClient, ChainError, ChainEvent, Hash32, InProcessChain, Lock, MAX_MINE_BLOCKS, OutPoint,
    Output, Pubkey, RemoteChain, Sig, Transaction, TxKind, Witness, sign_digest,
};
use secp256k1::SecretKey;

struct Key {
    sk: SecretKey,
    pk: Pubkey,
}

fn key(byte: u8) -> Key {
    let sk = SecretKey::from_secret_bytes([byte; 32]).expect("valid key");
    Key {
        pk: Pubkey::from(sk.public_key()),
        sk,
    }
}

fn sign(tx: &mut Transaction, witness: impl Fn(Sig) -> Witness, signer: &Key) {
    let sig = sign_digest(&signer.sk, &tx.sighash());
    for input in &mut tx.inputs {
        input.witness = witness(sig);
    }
}

fn pay(prev: OutPoint, amount: u64, to: &Key) -> Transaction {
    Transaction::unsigned(
        TxKind::Transfer,
        &[prev],
        vec![Output {
            amount,
            lock: Lock::Key { pubkey: to.pk },
        }],
    )
}

fn sweep(prev: OutPoint, amount: u64, to: &Key) -> Transaction {
    let mut tx = pay(prev, amount, to);
    tx.kind = TxKind::Sweep {
        channel_id: Hash32([1; 32]),
    };
    tx
}

fn rejected(result: Result<dlp_chain::Submitted, ChainError>) -> String {
    match result {
        Err(ChainError::Rejected(r)) => r.reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

async fn funded(chain: &dyn ChainClient, owner: &Key, amount: u64) -> OutPoint {
    let txid = chain.fund(owner.pk, amount).await.expect("fund");
    OutPoint { txid, index: 0 }
}

/// The ledger's rules, run against any client (in process or remote).
async fn rules(chain: &dyn ChainClient) {
    let alice = key(1);
    let bob = key(2);
    let coin = funded(chain, &alice, 100).await;

    // Only the owner's signature spends a wallet output.
    let mut theft = pay(coin, 100, &bob);
    sign(&mut theft, |sig| Witness::Key { sig }, &bob);
    assert!(rejected(chain.submit(theft).await).contains("bad signature"));

    // Amounts must balance exactly.
    let mut inflate = pay(coin, 101, &bob);
    sign(&mut inflate, |sig| Witness::Key { sig }, &alice);
    assert!(rejected(chain.submit(inflate).await).contains("do not balance"));

    let mut good = pay(coin, 100, &bob);
    sign(&mut good, |sig| Witness::Key { sig }, &alice);
    let accepted = chain.submit(good.clone()).await.expect("valid transfer");
    assert!(accepted.newly_accepted);
    assert!(
        !chain.submit(good).await.expect("resubmit").newly_accepted,
        "resubmitting is idempotent"
    );

    // No double spend.
    let mut again = pay(coin, 100, &alice);
    sign(&mut again, |sig| Witness::Key { sig }, &alice);
    assert!(rejected(chain.submit(again).await).contains("double spend"));

    let balance = chain.balance(bob.pk).await.expect("balance");
    assert_eq!((balance.spendable, balance.confirmed), (100, 0));
    chain.mine(1).await.expect("mine");
    assert_eq!(chain.balance(bob.pk).await.expect("balance").confirmed, 100);

    // A delayed, revocable output: the owner waits, the revoker needs the secret.
    let secret = Hash32([9; 32]);
    let coin = funded(chain, &alice, 50).await;
    let mut lock_up = Transaction::unsigned(
        TxKind::Transfer,
        &[coin],
        vec![Output {
            amount: 50,
            lock: Lock::Delayed {
                owner: alice.pk,
                delay: 3,
                revoker: bob.pk,
                revocation_hash: Hash32::digest(&secret.0),
            },
        }],
    );
    sign(&mut lock_up, |sig| Witness::Key { sig }, &alice);
    let delayed = OutPoint {
        txid: chain.submit(lock_up).await.expect("lock").txid,
        index: 0,
    };
    let mut early = sweep(delayed, 50, &alice);
    sign(&mut early, |sig| Witness::DelayedOwner { sig }, &alice);
    assert!(rejected(chain.submit(early.clone()).await).contains("timelock"));
    chain.mine(1).await.expect("mine");
    assert!(rejected(chain.submit(early.clone()).await).contains("timelock"));
    let mut wrong_secret = sweep(delayed, 50, &bob);
    sign(
        &mut wrong_secret,
        |sig| Witness::Revocation {
            sig,
            secret: Hash32([8; 32]),
        },
        &bob,
    );
    assert!(rejected(chain.submit(wrong_secret).await).contains("revocation secret"));
    let mut penalty = pay(delayed, 50, &bob);
    penalty.kind = TxKind::Penalty {
        channel_id: Hash32([1; 32]),
    };
    sign(
        &mut penalty,
        |sig| Witness::Revocation { sig, secret },
        &bob,
    );
    chain
        .submit(penalty)
        .await
        .expect("the revoker takes it with the secret");
    chain.mine(3).await.expect("mine");
    assert!(rejected(chain.submit(early).await).contains("double spend"));

    // A TLC: preimage for the receiver, timeout for the offerer.
    let preimage = Hash32([5; 32]);
    let coin = funded(chain, &alice, 20).await;
    let height = chain.height().await.expect("height");
    let mut offer = Transaction::unsigned(
        TxKind::Transfer,
        &[coin],
        vec![
            Output {
                amount: 10,
                lock: Lock::Tlc {
                    offerer: alice.pk,
                    receiver: bob.pk,
                    payment_hash: Hash32::digest(&preimage.0),
                    expiry: height + 5,
                    revoker: bob.pk,
                    revocation_hash: Hash32([0; 32]),
                },
            },
            Output {
                amount: 10,
                lock: Lock::Tlc {
                    offerer: alice.pk,
                    receiver: bob.pk,
                    payment_hash: Hash32::digest(&preimage.0),
                    expiry: height + 5,
                    revoker: bob.pk,
                    revocation_hash: Hash32([0; 32]),
                },
            },
        ],
    );
    sign(&mut offer, |sig| Witness::Key { sig }, &alice);
    let offer_id = chain.submit(offer).await.expect("offer").txid;
    let mut mislabelled = pay(
        OutPoint {
            txid: offer_id,
            index: 0,
        },
        10,
        &bob,
    );
    sign(
        &mut mislabelled,
        |sig| Witness::TlcPreimage { sig, preimage },
        &bob,
    );
    assert!(rejected(chain.submit(mislabelled).await).contains("wallet outputs only"));
    let mut claim = sweep(
        OutPoint {
            txid: offer_id,
            index: 0,
        },
        10,
        &bob,
    );
    sign(
        &mut claim,
        |sig| Witness::TlcPreimage { sig, preimage },
        &bob,
    );
    chain
        .submit(claim)
        .await
        .expect("receiver claims with the preimage");
    let mut refund = sweep(
        OutPoint {
            txid: offer_id,
            index: 1,
        },
        10,
        &alice,
    );
    sign(&mut refund, |sig| Witness::TlcTimeout { sig }, &alice);
    assert!(rejected(chain.submit(refund.clone()).await).contains("expires"));
    chain.mine(5).await.expect("mine");
    chain
        .submit(refund)
        .await
        .expect("offerer takes it back after expiry");

    // The 2-of-2 funding output needs both signatures.
    let coin = funded(chain, &alice, 30).await;
    let mut fund = Transaction::unsigned(
        TxKind::Funding {
            channel_id: Hash32([3; 32]),
        },
        &[coin],
        vec![Output {
            amount: 30,
            lock: Lock::MultiSig {
                a: alice.pk,
                b: bob.pk,
            },
        }],
    );
    sign(&mut fund, |sig| Witness::Key { sig }, &alice);
    let funding = OutPoint {
        txid: chain.submit(fund).await.expect("funding").txid,
        index: 0,
    };
    let mut close = Transaction::unsigned(
        TxKind::CooperativeClose {
            channel_id: Hash32([3; 32]),
        },
        &[funding],
        vec![Output {
            amount: 30,
            lock: Lock::Key { pubkey: alice.pk },
        }],
    );
    let sig_a = sign_digest(&alice.sk, &close.sighash());
    close.inputs[0].witness = Witness::MultiSig {
        sig_a,
        sig_b: sig_a,
    };
    assert!(rejected(chain.submit(close.clone()).await).contains("bad signature"));
    let sig_b = sign_digest(&bob.sk, &close.sighash());
    close.inputs[0].witness = Witness::MultiSig { sig_a, sig_b };
    chain.submit(close).await.expect("both signatures");
    let history = chain
        .transactions(Some(Hash32([3; 32])))
        .await
        .expect("history");
    assert_eq!(history.len(), 2, "funding and close of that channel");
}

/// The documented bounds, against any client: a `mine` of more than [`MAX_MINE_BLOCKS`] is
/// refused naming the limit and mines nothing (it used to loop, one event per block, for 2^64
/// blocks); a faucet amount that would take the total past `u64::MAX` is refused, so balances
/// stay exact (funding `u64::MAX` twice used to make `balance` panic on overflow).
async fn bounds(chain: &dyn ChainClient) {
    let alice = key(1);
    let bob = key(2);
    let refused = |result: Result<u64, ChainError>| match result {
        Err(ChainError::Refused(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    for blocks in [MAX_MINE_BLOCKS + 1, u64::MAX] {
        let message = refused(chain.mine(blocks).await);
        assert!(
            message.contains("at most 10000 blocks per call")
                && message.contains(&blocks.to_string()),
            "{message}"
        );
    }
    assert_eq!(chain.height().await.expect("height"), 0, "nothing mined");
    assert_eq!(
        chain.mine(MAX_MINE_BLOCKS).await.expect("the limit itself"),
        MAX_MINE_BLOCKS
    );

    chain
        .fund(alice.pk, u64::MAX)
        .await
        .expect("the whole range");
    let fund_refusal = |result: Result<dlp_chain::Txid, ChainError>| match result {
        Err(ChainError::Rejected(r)) => r.reason,
        other => panic!("expected a rejection, got {other:?}"),
    };
    let reason = fund_refusal(chain.fund(alice.pk, u64::MAX).await);
    assert!(
        reason.contains("u64::MAX") && reason.contains("at most 0 more"),
        "{reason}"
    );
    let reason = fund_refusal(chain.fund(bob.pk, 1).await);
    assert!(reason.contains("u64::MAX"), "{reason}");
    chain.mine(1).await.expect("mine");
    let balance = chain.balance(alice.pk).await.expect("balance answers");
    assert_eq!((balance.spendable, balance.confirmed), (u64::MAX, u64::MAX));
    assert_eq!(chain.balance(bob.pk).await.expect("balance").spendable, 0);
}

#[tokio::test]
async fn bounds_in_process() {
    let chain = InProcessChain::new();
    bounds(&chain).await;
    assert_eq!(chain.ledger().total_supply(), u64::MAX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounds_over_json_rpc() {
    let chain = InProcessChain::new();
    let (addr, handle) = dlp_chain::server::serve(chain, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    bounds(&RemoteChain::new(addr)).await;
    let _ = handle.stop();
}

#[tokio::test]
async fn ledger_rules_in_process() {
    rules(&InProcessChain::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_rules_over_json_rpc() {
    let chain = InProcessChain::new();
    let (addr, handle) = dlp_chain::server::serve(chain, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("serve");
    rules(&RemoteChain::new(addr)).await;
    let _ = handle.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_wait_for_events_in_order() {
    let chain = InProcessChain::new();
    let (addr, handle) =
        dlp_chain::server::serve(chain.clone(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("serve");
    let remote = RemoteChain::new(addr);
    let none = remote
        .events_after(0, Duration::from_millis(50))
        .await
        .expect("poll");
    assert!(none.is_empty());
    // A waiting watcher wakes when something happens.
    let waiter = tokio::spawn({
        let remote = remote.clone();
        async move { remote.events_after(0, Duration::from_secs(20)).await }
    });
    chain.fund(key(1).pk, 5).await.expect("fund");
    let events = waiter.await.expect("join").expect("events");
    assert!(matches!(
        events.first(),
        Some(ChainEvent::TxAccepted { seq: 1, .. })
    ));
    chain.mine(2).await.expect("mine");
    let all = remote
        .events_after(0, Duration::ZERO)
        .await
        .expect("events");
    let seqs: Vec<u64> = all.iter().map(ChainEvent::seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    let _ = handle.stop();
}
