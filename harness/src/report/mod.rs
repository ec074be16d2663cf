//! The run directory as a report a person reads at a glance: `report.html`, one self-contained
//! page (inline CSS, script and SVG; nothing fetched) made from the directory's files alone, so
//! it is the same whether written at the end of a run or later by `dlp-harness report DIR`.
//!
//! - `record.rs`: what the harness writes next to the nodes' files (`run.json`, `ledger.json`).
//! - `load.rs`: reading a run directory without trusting it (a cut `events.jsonl` still shows
//!   what it holds, and the cut is marked).
//! - `chart.rs`: the message sequence chart's rows, merged from what `marks.rs` (events and
//!   lifecycle steps in words) and `matching.rs` (which send each receive answers) put on the
//!   lanes (`lanes.rs`); `svg.rs` draws it.
//! - `ledger.rs`: who got what, from the ledger's transactions.
//! - `html.rs`: the run report page; `page.rs`: the page shell and escaping every HTML report
//!   shares (the sweep's too).
//! - `junit.rs`: `run --junit` / `--json`.
//!
//! This layer reads files and knows no network, cluster or scenario: the session writes the
//! records, this renders them.

mod chart;
mod error;
mod html;
mod junit;
mod lanes;
mod ledger;
mod load;
mod marks;
mod matching;
mod names;
mod page;
mod record;
mod svg;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::ReportError;
pub use junit::{Outcome as ResultOutcome, RunResult, RunSummary};
pub use load::{RunData, load};
pub use page::{esc, page};
pub use record::{
    BackupMeta, ChannelMeta, FORMAT, FailureRecord, InvariantRecord, LEDGER_FILE, LedgerRecord,
    NodeMeta, NoteRecord, REPORT_FILE, RUN_FILE, RunRecord, ScenarioRecord, StepOutcome,
    StepRecord, write_json,
};

/// The report page of a run directory.
pub fn render(dir: &Path) -> Result<String, ReportError> {
    Ok(html::render(&load(dir)?))
}

/// Write `report.html` into the run directory `dir`; returns its path.
pub fn write_html(dir: &Path) -> Result<PathBuf, ReportError> {
    let html = render(dir)?;
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, html).map_err(|e| ReportError::io(&path, e))?;
    Ok(path)
}
