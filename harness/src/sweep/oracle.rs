//! The sweep's verdicts: the oracle's prediction (`model::audit` for the audit, from the peer's
//! numbers and the ledger, never from the restored node; `model::resolve` for how the channel
//! ends up when only the nodes act) set against what was observed and what the ledger showed
//! after the channel was closed, most severe first.

use serde::{Deserialize, Serialize};

pub use crate::model::audit::{Behaviour, Expected, predict};
pub use crate::model::resolve::{Resolution, Side};

/// The verdict on one channel at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verdict {
    /// The audit passed and the channel is live again.
    #[serde(rename = "resumed")]
    Resumed,
    /// The audit failed and the judge closed the channel for the nodes (only with the named
    /// option `--judge-closes-held`, for comparison with the sweeps before liveness was judged).
    #[serde(rename = "held")]
    Held,
    /// Closed on the ledger by one of the two ends on its own (or before the restore), and the
    /// ledger paid both what the peer's records say.
    #[serde(rename = "closed")]
    Closed,
    /// The backup predates the channel; the peer force-closed it when the restored node said
    /// it does not know it, and the ledger paid both.
    #[serde(rename = "forgotten")]
    Forgotten,
    /// Neither resumed nor closed by the nodes within the bound (blocks and seconds): the funds
    /// stay locked until a person acts. Nothing is lost on the ledger, but nothing moves either.
    #[serde(rename = "FROZEN")]
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
            Verdict::Frozen => "FROZEN",
            Verdict::Unsafe => "UNSAFE",
            Verdict::Lost => "LOST",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Error => "ERROR",
        })
    }
}

/// What the ledger showed after the channel was closed (see `ledger.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Classify one channel: most severe first (UNSAFE, LOST, MISMATCH), else how it resolved.
/// `observed` is what the node's audit did, `resolution` how the channel ended up; each is set
/// against the oracle's prediction.
pub fn classify(
    expected: Expected,
    expected_resolution: Resolution,
    observed: Behaviour,
    resolution: Resolution,
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
    if resolution != expected_resolution {
        return (
            Verdict::Mismatch,
            format!("expected the channel {expected_resolution}, it was {resolution}"),
        );
    }
    let verdict = match (observed, resolution) {
        (Behaviour::Forgotten, _) => Verdict::Forgotten,
        (_, Resolution::Resumed) => Verdict::Resumed,
        (_, Resolution::ClosedBy(_) | Resolution::ClosedBefore) => Verdict::Closed,
        (_, Resolution::Frozen) => Verdict::Frozen,
        (_, Resolution::JudgeClosed) => Verdict::Held,
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
        let resumed = |expected, observed, ledger| {
            classify(
                expected,
                Resolution::Resumed,
                observed,
                Resolution::Resumed,
                ledger,
            )
            .0
        };
        assert_eq!(resumed(safe, Behaviour::Resumed, &clean), Verdict::Resumed);
        assert_eq!(resumed(safe, Behaviour::Held, &clean), Verdict::Mismatch);
        assert_eq!(
            resumed(revoked, Behaviour::Resumed, &clean),
            Verdict::Unsafe
        );
        let punished = LedgerFacts {
            restored_punished: Some("0xab".into()),
            ..LedgerFacts::default()
        };
        assert_eq!(
            resumed(safe, Behaviour::Resumed, &punished),
            Verdict::Unsafe
        );
        let short = LedgerFacts {
            shortfalls: vec!["bob: got 1, owed 2".into()],
            ..LedgerFacts::default()
        };
        assert_eq!(resumed(safe, Behaviour::Resumed, &short), Verdict::Lost);
        // Held as predicted: the resolution decides.
        let held = Expected {
            behaviour: Behaviour::Held,
            ..safe
        };
        let by_peer = Resolution::ClosedBy(Side::Peer);
        assert_eq!(
            classify(held, by_peer, Behaviour::Held, by_peer, &clean).0,
            Verdict::Closed
        );
        assert_eq!(
            classify(
                held,
                Resolution::Frozen,
                Behaviour::Held,
                Resolution::Frozen,
                &clean
            )
            .0,
            Verdict::Frozen
        );
        let (verdict, detail) =
            classify(held, by_peer, Behaviour::Held, Resolution::Frozen, &clean);
        assert_eq!(verdict, Verdict::Mismatch);
        assert!(detail.contains("closed by the peer"), "{detail}");
    }
}
