//! The sweep's verdicts: the oracle's prediction (`model::audit`, from the peer's numbers and
//! the ledger, never from the restored node) set against what was observed and what the ledger
//! showed after the channel was closed, most severe first.

use serde::Serialize;

pub use crate::model::audit::{Behaviour, Expected, predict};

/// The verdict on one channel at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Verdict {
    #[serde(rename = "resumed")]
    Resumed,
    #[serde(rename = "held")]
    Held,
    #[serde(rename = "closed")]
    Closed,
    /// The backup predates the channel; the peer force-closed it when the restored node said
    /// it does not know it, and the ledger paid both.
    #[serde(rename = "forgotten")]
    Forgotten,
    /// Both ends restored and Stale, neither audited: nobody can close the channel (Fiber's
    /// passive silence on both sides). Nothing is lost on the ledger, but nothing moves either.
    #[serde(rename = "frozen")]
    Frozen,
    /// Resumed while holding a revoked or superseded commitment (a penalty on the ledger
    /// proves the revoked case).
    #[serde(rename = "UNSAFE")]
    Unsafe,
    /// Someone's funds on the ledger fell short of what the peer's records promise.
    #[serde(rename = "LOST")]
    Lost,
    /// The behaviour differs from the oracle's prediction.
    #[serde(rename = "MISMATCH")]
    Mismatch,
    /// The run itself failed (a timeout, a refused step): no verdict.
    #[serde(rename = "ERROR")]
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 9] = [
        Verdict::Resumed,
        Verdict::Held,
        Verdict::Closed,
        Verdict::Forgotten,
        Verdict::Frozen,
        Verdict::Unsafe,
        Verdict::Lost,
        Verdict::Mismatch,
        Verdict::Error,
    ];

    /// A verdict that fails the sweep.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Verdict::Unsafe | Verdict::Lost | Verdict::Mismatch | Verdict::Error
        )
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Resumed => "resumed",
            Verdict::Held => "held",
            Verdict::Closed => "closed",
            Verdict::Forgotten => "forgotten",
            Verdict::Frozen => "frozen",
            Verdict::Unsafe => "UNSAFE",
            Verdict::Lost => "LOST",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Error => "ERROR",
        })
    }
}

/// What the ledger showed after the channel was closed (see `ledger.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LedgerFacts {
    /// The restored node's commitment was punished (txid of the penalty).
    pub restored_punished: Option<String>,
    /// The peer's commitment was punished.
    pub peer_punished: Option<String>,
    /// Shortfalls against what the peer's records promised: `who: got X, owed Y`.
    pub shortfalls: Vec<String>,
}

/// A txid shortened for tables (the JSON report carries it whole).
fn short(txid: &str) -> String {
    txid.chars().take(12).collect()
}

/// Classify one channel: most severe first (UNSAFE, LOST, MISMATCH), else the behaviour.
pub fn classify(
    expected: Expected,
    observed: Behaviour,
    ledger: &LedgerFacts,
) -> (Verdict, String) {
    if let Some(txid) = &ledger.restored_punished {
        return (
            Verdict::Unsafe,
            format!(
                "the restored node's force close was punished (penalty {})",
                short(txid)
            ),
        );
    }
    if observed == Behaviour::Resumed && expected.dangerous() {
        let what = if expected.revoked {
            "resumed holding a revoked commitment (its force close happened not to be punished)"
        } else {
            "resumed without the revocation secret of the peer's previous commitment (the peer \
             revoked it after the backup): a broadcast of that commitment could not be punished"
        };
        return (Verdict::Unsafe, what.to_string());
    }
    if let Some(txid) = &ledger.peer_punished {
        return (
            Verdict::Lost,
            format!(
                "the peer's commitment was punished (penalty {})",
                short(txid)
            ),
        );
    }
    if !ledger.shortfalls.is_empty() {
        return (Verdict::Lost, ledger.shortfalls.join("; "));
    }
    if observed != expected.behaviour {
        return (
            Verdict::Mismatch,
            format!("expected {expected}, observed {observed}"),
        );
    }
    let verdict = match observed {
        Behaviour::Resumed => Verdict::Resumed,
        Behaviour::Held => Verdict::Held,
        Behaviour::Closed => Verdict::Closed,
        Behaviour::Forgotten => Verdict::Forgotten,
        Behaviour::Frozen => Verdict::Frozen,
    };
    (verdict, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_puts_the_worst_first() {
        let safe = Expected {
            behaviour: Behaviour::Resumed,
            revoked: false,
            superseded: false,
        };
        let revoked = Expected {
            revoked: true,
            ..safe
        };
        let clean = LedgerFacts::default();
        assert_eq!(
            classify(safe, Behaviour::Resumed, &clean).0,
            Verdict::Resumed
        );
        assert_eq!(classify(safe, Behaviour::Held, &clean).0, Verdict::Mismatch);
        assert_eq!(
            classify(revoked, Behaviour::Resumed, &clean).0,
            Verdict::Unsafe
        );
        let punished = LedgerFacts {
            restored_punished: Some("0xab".into()),
            ..LedgerFacts::default()
        };
        assert_eq!(
            classify(safe, Behaviour::Resumed, &punished).0,
            Verdict::Unsafe
        );
        let short = LedgerFacts {
            shortfalls: vec!["bob: got 1, owed 2".into()],
            ..LedgerFacts::default()
        };
        assert_eq!(classify(safe, Behaviour::Resumed, &short).0, Verdict::Lost);
    }
}
