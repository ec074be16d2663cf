//! No revoked commitment was broadcast: a penalty transaction on the ledger means someone
//! broadcast a commitment whose revocation secret the peer held. Scenarios that prove the
//! penalty works say so (`allow_penalties = true`) and are not checked by this.

use dlp_chain::TxRecord;

pub(super) fn check(txs: &[TxRecord]) -> Vec<String> {
    txs.iter()
        .filter(|t| t.tx.kind.name() == "penalty")
        .map(|t| {
            format!(
                "a revoked commitment was broadcast and punished: penalty {} on the ledger",
                t.txid
            )
        })
        .collect()
}
