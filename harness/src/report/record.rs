//! What a run directory holds besides the nodes' own files, so that a report can be made from
//! the directory alone, during the run's teardown or long after it (`dlp-harness report`):
//!
//! - `run.json` ([`RunRecord`]): the scenario (name, path, its text), backend, driver, seed, the
//!   reproduce command, every step with its line, times and outcome, the failure, the
//!   invariants checked, the nodes, channels and named backups. Written when the network is up
//!   (so a run whose harness was killed is still recognisable) and again at teardown.
//! - `ledger.json` ([`LedgerRecord`]): every transaction on the ledger at teardown (the chain
//!   dies with the run; the report's "who got what" is computed from this).
//!
//! The nodes write the rest: `<node>/events.jsonl` (typed events, one per line, every run of
//! the node appended), `<node>/node.log`, and the chain's `chain.log` where a driver has one.

use std::path::{Path, PathBuf};

use dlp_chain::TxRecord;
use serde::{Deserialize, Serialize};

use super::error::ReportError;

/// The run's record file, in the run directory.
pub const RUN_FILE: &str = "run.json";
/// The ledger at teardown, in the run directory.
pub const LEDGER_FILE: &str = "ledger.json";
/// The report, in the run directory.
pub const REPORT_FILE: &str = "report.html";
/// Version of [`RunRecord`]'s shape.
pub const FORMAT: u32 = 1;

/// Everything the harness knows about a run that the nodes' files do not say.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: u32,
    /// `audit_failure@sqlite[in-process]`.
    pub test_name: String,
    pub scenario: ScenarioRecord,
    pub backend: String,
    pub driver: String,
    pub seed: u64,
    /// The command that runs this combination again with the same seed.
    pub reproduce: String,
    pub started_ms: u64,
    /// `None` while the run goes on (or when its harness died before the teardown).
    #[serde(default)]
    pub ended_ms: Option<u64>,
    #[serde(default)]
    pub failure: Option<FailureRecord>,
    /// What the harness did outside the steps (adding nodes, opening channels), in order.
    #[serde(default)]
    pub notes: Vec<NoteRecord>,
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub invariants: Vec<InvariantRecord>,
    #[serde(default)]
    pub nodes: Vec<NodeMeta>,
    #[serde(default)]
    pub channels: Vec<ChannelMeta>,
    #[serde(default)]
    pub backups: Vec<BackupMeta>,
}

impl RunRecord {
    /// Passed, failed, or not finished.
    pub fn status(&self) -> &'static str {
        match (&self.failure, self.ended_ms) {
            (Some(_), _) => "failed",
            (None, Some(_)) => "passed",
            (None, None) => "unfinished",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioRecord {
    /// As its test names it (`fiber/test_restore_marks_channel_stale`).
    pub name: String,
    pub path: PathBuf,
    pub description: String,
    /// The text the scenario was parsed from: every line a step names is in it.
    pub text: String,
}

/// Why the run failed: the typed failure's kind and text, and the text report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailureRecord {
    /// `setup`, `invalid_file`, `network`, `step`, `invariant`.
    pub kind: String,
    /// The failed step's 1-based index, for a step failure.
    #[serde(default)]
    pub step: Option<usize>,
    pub message: String,
    /// The text report (failure, seed, reproduce command, merged timeline).
    #[serde(default)]
    pub report: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoteRecord {
    pub at_ms: u64,
    pub what: String,
}

/// One step of the scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based.
    pub index: usize,
    /// Line of its verb in the scenario's text.
    pub line: usize,
    pub verb: String,
    /// The step as written (its line of the file, trimmed).
    pub text: String,
    /// The step's fields (`{"restore": {"node": "bob", "backup": "old"}}`).
    #[serde(default)]
    pub step: serde_json::Value,
    #[serde(default)]
    pub started_ms: Option<u64>,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    pub outcome: StepOutcome,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Passed,
    Failed,
    NotRun,
}

/// One invariant, as checked in this run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvariantRecord {
    pub name: String,
    /// The rule, in one sentence.
    pub rule: String,
    /// How often it was checked (after every explorer step; once at the end of a scenario).
    pub checks: usize,
    /// Problems of the last check that found any (empty: it held every time).
    #[serde(default)]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeMeta {
    pub name: String,
    /// Its home, relative to the run directory.
    pub home: PathBuf,
    #[serde(default)]
    pub pubkey: Option<String>,
    #[serde(default)]
    pub wallet: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelMeta {
    pub name: String,
    pub from: String,
    pub to: String,
    /// The channel id, `0x...`.
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupMeta {
    pub name: String,
    pub node: String,
    pub dir: PathBuf,
}

/// The ledger at teardown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerRecord {
    pub transactions: Vec<TxRecord>,
}

/// Write `value` as pretty JSON to `dir/name`, atomically (a reader never sees half a file).
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), ReportError> {
    let path = dir.join(name);
    let text = serde_json::to_vec_pretty(value).map_err(|e| ReportError::Record {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| ReportError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| ReportError::io(&path, e))
}
