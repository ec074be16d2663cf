//! The ledger, the harness's source of truth about money: `mine`, `mark_wallets`,
//! `expect_wallet_change` and `expect_penalty`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ctx, Verb};
use crate::capability::Capability::{DlpChainLedger, TypedEvents};
use crate::error::HarnessError;
use crate::limits::{MAX_AMOUNT, MAX_MINE_BLOCKS};
use crate::scenario::{Check, Facts, VerbFacts};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mine {
    pub blocks: u64,
}

impl VerbFacts for Mine {
    fn facts(&self) -> Facts<'_> {
        Facts::new([], &[])
    }
    fn check(&self, _: &mut Check<'_>) -> Result<(), String> {
        let blocks = self.blocks;
        if blocks == 0 || blocks > MAX_MINE_BLOCKS {
            return Err(format!(
                "mine: blocks {blocks} must be 1 to {MAX_MINE_BLOCKS} (the ledger's limit per \
                 call; add more mine steps for more)"
            ));
        }
        Ok(())
    }
}

impl Verb for Mine {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.mine(self.blocks).await.map(|_| ())
    }
}

/// Remember every wallet balance on the ledger (for `expect_wallet_change`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkWallets {}

impl VerbFacts for MarkWallets {
    fn facts(&self) -> Facts<'_> {
        Facts::new([], &[DlpChainLedger])
    }
}

impl Verb for MarkWallets {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.state.marks.clear();
        for name in cx.net.node_names() {
            let balance = cx.net.wallet_balance(&name).await?;
            cx.state.marks.insert(name, balance);
        }
        Ok(())
    }
}

/// Wait until `node`'s wallet changed by `amount` since `mark_wallets` (mines as needed is
/// not implied: mine first).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectWalletChange {
    pub node: String,
    pub amount: i64,
}

impl VerbFacts for ExpectWalletChange {
    fn facts(&self) -> Facts<'_> {
        // It waits on the ledger's events; the ledger answers, not the node.
        Facts::new([self.node.as_str()], &[DlpChainLedger, TypedEvents])
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        // Most a wallet can change by: everything the faucet gave the scenario's nodes.
        let (amount, nodes) = (self.amount, cx.node_count());
        let bound = MAX_AMOUNT.saturating_mul(nodes as u64);
        if amount.unsigned_abs() > bound {
            return Err(format!(
                "expect_wallet_change: amount {amount} is more than the faucet gave all {nodes} \
                 nodes (at most {bound} shannons either way)"
            ));
        }
        Ok(())
    }
}

impl Verb for ExpectWalletChange {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        let base = *cx.state.marks.get(&self.node).ok_or_else(|| {
            HarnessError::Expectation("expect_wallet_change needs an earlier mark_wallets".into())
        })?;
        cx.net
            .wait_wallet_change(&self.node, base, self.amount)
            .await
    }
}

/// Wait until the ledger holds a penalty transaction for `channel` (someone broadcast a
/// revoked commitment of it and was punished). Needs `allow_penalties = true`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectPenalty {
    pub channel: String,
}

impl VerbFacts for ExpectPenalty {
    fn facts(&self) -> Facts<'_> {
        Facts::new([], &[DlpChainLedger]).channel(Some(&self.channel))
    }
    fn check(&self, cx: &mut Check<'_>) -> Result<(), String> {
        if !cx.allows_penalties() {
            return Err("expect_penalty: the scenario must set allow_penalties = true".into());
        }
        Ok(())
    }
}

impl Verb for ExpectPenalty {
    async fn run(&self, cx: &mut Ctx<'_>) -> Result<(), HarnessError> {
        cx.net.wait_penalty(&self.channel).await.map(|_| ())
    }
}
