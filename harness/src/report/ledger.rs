//! Who got what on the ledger, from `ledger.json` alone: per wallet what the faucet gave and
//! what it holds at the end, per channel how it was funded, how it ended and where its money
//! went (wallet outputs of its closing, penalty and sweep transactions; what is still locked).

use std::collections::{BTreeMap, HashSet};

use dlp_chain::{Hash32, Lock, OutPoint, TxKind, TxRecord};

use super::names::{Names, tx_label};

/// One wallet (node) on the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    pub node: String,
    pub funded: u64,
    /// Unspent outputs spendable by the wallet key alone.
    pub balance: u64,
}

/// One channel on the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    pub channel: String,
    pub funding: u64,
    /// `open`, or the transactions that ended it (`commitment ab #3 by bob`, `PENALTY ab`).
    pub ended: Vec<String>,
    /// Wallet outputs its transactions created, per owner.
    pub paid: BTreeMap<String, u64>,
    /// Outputs of its transactions not yet spent and not in a wallet (delayed, TLCs, funding).
    pub locked: u64,
    pub penalty: bool,
}

/// The ledger's tables.
#[derive(Debug, Clone, Default)]
pub struct LedgerView {
    pub wallets: Vec<WalletRow>,
    pub channels: Vec<ChannelRow>,
    /// Everything created by the faucet, and everything unspent (equal when conserved).
    pub faucet_total: u128,
    pub unspent_total: u128,
}

pub fn view(txs: &[TxRecord], names: &Names, nodes: &[(String, Option<String>)]) -> LedgerView {
    let spent: HashSet<OutPoint> = txs
        .iter()
        .flat_map(|t| t.tx.inputs.iter().map(|i| i.prev))
        .collect();
    let unspent = |t: &TxRecord, index: usize| {
        !spent.contains(&OutPoint {
            txid: t.txid,
            index: u32::try_from(index).unwrap_or(u32::MAX),
        })
    };
    let mut view = LedgerView::default();
    for (node, wallet) in nodes {
        let Some(wallet) = wallet else { continue };
        let mut row = WalletRow {
            node: node.clone(),
            funded: 0,
            balance: 0,
        };
        for t in txs {
            for (i, o) in t.tx.outputs.iter().enumerate() {
                let Lock::Key { pubkey } = &o.lock else {
                    continue;
                };
                if pubkey.to_string() != *wallet {
                    continue;
                }
                if matches!(t.tx.kind, TxKind::Faucet { .. }) {
                    row.funded += o.amount;
                }
                if unspent(t, i) {
                    row.balance += o.amount;
                }
            }
        }
        view.wallets.push(row);
    }
    let mut by_channel: BTreeMap<Hash32, Vec<&TxRecord>> = BTreeMap::new();
    for t in txs {
        if let Some(c) = t.tx.kind.channel_id() {
            by_channel.entry(c).or_default().push(t);
        }
    }
    for (id, list) in by_channel {
        let mut row = ChannelRow {
            channel: names.channel(&id),
            funding: 0,
            ended: Vec::new(),
            paid: BTreeMap::new(),
            locked: 0,
            penalty: false,
        };
        for t in &list {
            match &t.tx.kind {
                TxKind::Funding { .. } => {
                    for (i, o) in t.tx.outputs.iter().enumerate() {
                        if matches!(o.lock, Lock::MultiSig { .. }) {
                            row.funding += o.amount;
                            if unspent(t, i) {
                                row.locked += o.amount;
                            }
                        }
                    }
                    continue;
                }
                TxKind::Penalty { .. } => row.penalty = true,
                _ => {}
            }
            if !matches!(t.tx.kind, TxKind::Sweep { .. }) {
                row.ended.push(tx_label(t, names));
            }
            for (i, o) in t.tx.outputs.iter().enumerate() {
                match &o.lock {
                    Lock::Key { pubkey } => {
                        *row.paid.entry(names.key(&pubkey.to_string())).or_default() += o.amount;
                    }
                    _ if unspent(t, i) => row.locked += o.amount,
                    _ => {}
                }
            }
        }
        view.channels.push(row);
    }
    view.faucet_total = txs
        .iter()
        .filter(|t| matches!(t.tx.kind, TxKind::Faucet { .. }))
        .map(|t| u128::from(t.tx.output_total()))
        .sum();
    view.unspent_total = txs
        .iter()
        .flat_map(|t| {
            t.tx.outputs
                .iter()
                .enumerate()
                .filter(|(i, _)| unspent(t, *i))
                .map(|(_, o)| u128::from(o.amount))
                .collect::<Vec<_>>()
        })
        .sum();
    view
}
