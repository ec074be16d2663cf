//! Ledger conservation: the unspent outputs sum to everything the faucet created. Amounts
//! balance exactly in every transaction (zero fees), so any difference is money created or
//! destroyed by a transaction the ledger should have refused.

use std::collections::HashMap;

use dlp_chain::TxRecord;

pub(super) fn check(txs: &[TxRecord]) -> Vec<String> {
    let faucet: u128 = txs
        .iter()
        .filter(|t| t.tx.kind.name() == "faucet")
        .map(|t| u128::from(t.tx.output_total()))
        .sum();
    let created: u128 = txs.iter().map(|t| u128::from(t.tx.output_total())).sum();
    let by_id: HashMap<_, _> = txs.iter().map(|t| (t.txid, &t.tx)).collect();
    let spent: u128 = txs
        .iter()
        .flat_map(|t| &t.tx.inputs)
        .filter_map(|i| by_id.get(&i.prev.txid)?.outputs.get(i.prev.index as usize))
        .map(|o| u128::from(o.amount))
        .sum();
    let unspent = created.saturating_sub(spent);
    if unspent == faucet {
        Vec::new()
    } else {
        vec![format!(
            "ledger not conserved: unspent outputs {unspent} != faucet total {faucet}"
        )]
    }
}
