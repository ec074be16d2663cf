//! The verdicts of one gate run, by a key that names what was judged, and the comparison with
//! the committed baseline.
//!
//! Keys: `scenario <test name>` (`scenario audit_failure@sqlite[in-process]`: `passed`,
//! `failed`, `skipped`, `flaky`); `sweep <workload> <backend>/<policy> #<point> <step> on
//! <channel>, channel <judged>` (`resumed`, `held`, ..., `UNSAFE`, `ERROR`); `explore seed <n> <backend>` (`passed` or
//! `failed`). The baseline is this map as JSON, with a header saying what it is.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::GateError;

/// Every verdict of a gate run, by key.
pub type Verdicts = BTreeMap<String, String>;

/// The committed baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// What the file is, for whoever opens it.
    pub about: String,
    pub verdicts: Verdicts,
}

impl Baseline {
    pub fn new(verdicts: Verdicts) -> Self {
        Self {
            about: "The release gate's verdicts (dlp-harness gate): every change to a verdict \
                    fails the gate until this file is rewritten with --accept and reviewed."
                .into(),
            verdicts,
        }
    }

    pub fn load(path: &Path) -> Result<Self, GateError> {
        let text = std::fs::read_to_string(path).map_err(|source| GateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| GateError::Invalid {
            path: path.to_path_buf(),
            detail: format!("not a gate baseline: {e}"),
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), GateError> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| GateError::Invalid {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        text.push('\n');
        std::fs::write(path, text).map_err(|source| GateError::Read {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// One difference between the baseline and this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Changed {
        key: String,
        was: String,
        now: String,
    },
    /// Judged now, not in the baseline.
    New { key: String, now: String },
    /// In the baseline, not judged now.
    Gone { key: String, was: String },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Changed { key, was, now } => write!(f, "{key}: {was} -> {now}"),
            Change::New { key, now } => write!(f, "{key}: (not in the baseline) -> {now}"),
            Change::Gone { key, was } => write!(f, "{key}: {was} -> (not judged)"),
        }
    }
}

/// What changed from `baseline` to `now`, in key order.
pub fn compare(baseline: &Verdicts, now: &Verdicts) -> Vec<Change> {
    let mut out = Vec::new();
    for (key, verdict) in now {
        match baseline.get(key) {
            None => out.push(Change::New {
                key: key.clone(),
                now: verdict.clone(),
            }),
            Some(was) if was != verdict => out.push(Change::Changed {
                key: key.clone(),
                was: was.clone(),
                now: verdict.clone(),
            }),
            Some(_) => {}
        }
    }
    for (key, was) in baseline {
        if !now.contains_key(key) {
            out.push(Change::Gone {
                key: key.clone(),
                was: was.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(pairs: &[(&str, &str)]) -> Verdicts {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_change_is_named_in_the_words_of_the_tables() {
        let baseline = verdicts(&[
            ("scenario a@rocksdb[in-process]", "passed"),
            ("sweep w rocksdb/strict #7 sent:RevokeAndAck#1 bc", "held"),
            ("explore seed 3 sqlite", "passed"),
        ]);
        let now = verdicts(&[
            ("scenario a@rocksdb[in-process]", "passed"),
            ("sweep w rocksdb/strict #7 sent:RevokeAndAck#1 bc", "UNSAFE"),
            ("scenario b@sqlite[in-process]", "passed"),
        ]);
        let changes: Vec<String> = compare(&baseline, &now)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            changes,
            [
                "scenario b@sqlite[in-process]: (not in the baseline) -> passed",
                "sweep w rocksdb/strict #7 sent:RevokeAndAck#1 bc: held -> UNSAFE",
                "explore seed 3 sqlite: passed -> (not judged)",
            ]
        );
        assert!(compare(&now, &now).is_empty());
    }

    #[test]
    fn a_baseline_round_trips_and_a_stranger_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gate-baseline.json");
        let baseline = Baseline::new(verdicts(&[("scenario a@sqlite[process]", "passed")]));
        baseline.write(&path).expect("written");
        assert_eq!(Baseline::load(&path).expect("read"), baseline);
        std::fs::write(&path, "{\"results\": []}").expect("write");
        let err = Baseline::load(&path).expect_err("not a baseline");
        assert!(err.to_string().contains("not a gate baseline"), "{err}");
    }
}
