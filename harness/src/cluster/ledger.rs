//! The ledger, the harness's source of truth about money: mining, penalty transactions of a
//! channel, wallet balances.

use dlp_chain::{Hash32, TxRecord};

use super::{Idle, Network};
use crate::error::HarnessError;

impl Network {
    /// Mine `blocks` blocks; returns the new height.
    pub async fn mine(&mut self, blocks: u64) -> Result<u64, HarnessError> {
        self.chain
            .mine(blocks)
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))
    }

    /// Penalty transactions on the ledger for a named channel.
    pub async fn penalties(&self, channel: &str) -> Result<Vec<Hash32>, HarnessError> {
        let id = self.channel(channel)?.id;
        Ok(self
            .chain
            .transactions(Some(id))
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))?
            .into_iter()
            .filter(|t| t.tx.kind.name() == "penalty")
            .map(|t| t.txid)
            .collect())
    }

    /// Wait until the ledger holds a penalty for a named channel.
    pub async fn wait_penalty(&mut self, channel: &str) -> Result<Hash32, HarnessError> {
        let wait = self.wait_until(format!("a penalty on the ledger for channel {channel}"));
        loop {
            if let Some(txid) = self.penalties(channel).await?.first() {
                return Ok(*txid);
            }
            self.not_yet(&wait, None, Idle::Ledger).await?;
        }
    }

    /// Every transaction on the ledger, in order.
    pub async fn transactions(&self) -> Result<Vec<TxRecord>, HarnessError> {
        self.chain
            .transactions(None)
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))
    }

    /// The ledger's height (its tip).
    pub async fn height(&self) -> Result<u64, HarnessError> {
        self.chain
            .height()
            .await
            .map_err(|e| HarnessError::Chain(e.to_string()))
    }

    /// Wallet balance of a node on the ledger (spendable).
    pub async fn wallet_balance(&self, node: &str) -> Result<u64, HarnessError> {
        let wallet = self.info(node)?.wallet_key().map_err(HarnessError::Setup)?;
        self.chain
            .balance(wallet)
            .await
            .map(|b| b.spendable)
            .map_err(|e| HarnessError::Chain(e.to_string()))
    }

    /// Wait until `node`'s wallet has changed by `change` since it held `base`.
    pub async fn wait_wallet_change(
        &mut self,
        node: &str,
        base: u64,
        change: i64,
    ) -> Result<(), HarnessError> {
        let wait = self.wait_until(format!(
            "{node}'s wallet to change by {change} on the ledger"
        ));
        loop {
            let now = self.wallet_balance(node).await?;
            let changed = i128::from(now) - i128::from(base);
            if changed == i128::from(change) {
                return Ok(());
            }
            self.not_yet(&wait, Some(format!("changed by {changed}")), Idle::Ledger)
                .await?;
        }
    }
}
