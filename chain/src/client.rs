//! One client trait for the ledger, two implementations: [`InProcessChain`] (a shared handle,
//! for nodes running in one process) and [`crate::RemoteChain`] (JSON-RPC to `dlp-chain serve`).
//! Nodes, watchers and the harness only see [`ChainClient`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::ledger::{Balance, ChainEvent, Ledger, Rejection, TooManyBlocks, TxRecord, Unspent};
use crate::types::{Amount, Hash32, OutPoint, Pubkey, Transaction, Txid};

/// Why a chain call failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The ledger refused the transaction.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The chain refused a request beyond one of its documented bounds (see [`crate::server`]),
    /// or answered another error; nothing changed.
    #[error("chain refused the request: {0}")]
    Refused(String),
    /// The chain could not be reached or answered nonsense.
    #[error("chain unreachable: {0}")]
    Transport(String),
}

/// The result of a submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Submitted {
    pub txid: Txid,
    /// False when the ledger already had this transaction.
    pub newly_accepted: bool,
}

/// Everything a node or the harness needs from the chain.
#[async_trait]
pub trait ChainClient: Send + Sync + std::fmt::Debug {
    /// Validate and accept a transaction.
    async fn submit(&self, tx: Transaction) -> Result<Submitted, ChainError>;
    /// Dev faucet: create `amount` for `pubkey`.
    async fn fund(&self, pubkey: Pubkey, amount: Amount) -> Result<Txid, ChainError>;
    /// Mine `blocks` blocks (at most [`crate::ledger::MAX_MINE_BLOCKS`] per call); returns the
    /// new height.
    async fn mine(&self, blocks: u64) -> Result<u64, ChainError>;
    /// Current height.
    async fn height(&self) -> Result<u64, ChainError>;
    /// Funds of a key.
    async fn balance(&self, pubkey: Pubkey) -> Result<Balance, ChainError>;
    /// Unspent wallet outputs of a key.
    async fn unspent(&self, pubkey: Pubkey) -> Result<Vec<Unspent>, ChainError>;
    /// A transaction by id.
    async fn transaction(&self, txid: Txid) -> Result<Option<TxRecord>, ChainError>;
    /// Transactions in acceptance order, optionally of one channel only.
    async fn transactions(&self, channel_id: Option<Hash32>) -> Result<Vec<TxRecord>, ChainError>;
    /// The transaction that spent `outpoint`, if any.
    async fn spender(&self, outpoint: OutPoint) -> Result<Option<Txid>, ChainError>;
    /// Events with `seq > after`, waiting up to `wait` for the first one if there is none yet.
    async fn events_after(&self, after: u64, wait: Duration)
    -> Result<Vec<ChainEvent>, ChainError>;
}

/// A ledger shared by everything in one process.
#[derive(Debug, Clone, Default)]
pub struct InProcessChain {
    inner: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    ledger: Mutex<Ledger>,
    changed: Notify,
}

impl InProcessChain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lock the ledger for direct inspection (tests, the server).
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panic while holding the lock leaves a ledger that is still consistent per call
        // (every mutation completes before it returns), so recover from poisoning.
        self.inner
            .ledger
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self) {
        self.inner.changed.notify_waiters();
    }

    /// Mine one block every `interval` until the returned handle is dropped or aborted.
    pub fn spawn_auto_miner(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let chain = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                // One block is within the bound.
                let _ = chain.ledger().mine(1);
                chain.notify();
            }
        })
    }

    fn submit_now(&self, tx: Transaction) -> Result<Submitted, Rejection> {
        let result = self.ledger().submit(tx);
        let (txid, newly_accepted) = result?;
        if newly_accepted {
            self.notify();
        }
        Ok(Submitted {
            txid,
            newly_accepted,
        })
    }
}

#[async_trait]
impl ChainClient for InProcessChain {
    async fn submit(&self, tx: Transaction) -> Result<Submitted, ChainError> {
        Ok(self.submit_now(tx)?)
    }

    async fn fund(&self, pubkey: Pubkey, amount: Amount) -> Result<Txid, ChainError> {
        let txid = self.ledger().fund(pubkey, amount)?;
        self.notify();
        Ok(txid)
    }

    async fn mine(&self, blocks: u64) -> Result<u64, ChainError> {
        let height = self
            .ledger()
            .mine(blocks)
            .map_err(|e: TooManyBlocks| ChainError::Refused(e.to_string()))?;
        self.notify();
        Ok(height)
    }

    async fn height(&self) -> Result<u64, ChainError> {
        Ok(self.ledger().height())
    }

    async fn balance(&self, pubkey: Pubkey) -> Result<Balance, ChainError> {
        Ok(self.ledger().balance(&pubkey))
    }

    async fn unspent(&self, pubkey: Pubkey) -> Result<Vec<Unspent>, ChainError> {
        Ok(self.ledger().unspent(&pubkey))
    }

    async fn transaction(&self, txid: Txid) -> Result<Option<TxRecord>, ChainError> {
        Ok(self.ledger().transaction(&txid).cloned())
    }

    async fn transactions(&self, channel_id: Option<Hash32>) -> Result<Vec<TxRecord>, ChainError> {
        Ok(self.ledger().transactions(channel_id))
    }

    async fn spender(&self, outpoint: OutPoint) -> Result<Option<Txid>, ChainError> {
        Ok(self.ledger().spender(&outpoint))
    }

    async fn events_after(
        &self,
        after: u64,
        wait: Duration,
    ) -> Result<Vec<ChainEvent>, ChainError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a change between the look and the wait is
            // not missed.
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let events = self.ledger().events_after(after).to_vec();
            if !events.is_empty() {
                return Ok(events);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
}
