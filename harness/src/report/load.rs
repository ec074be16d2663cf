//! Reading a run directory for its report: the run record, the ledger, every node's events
//! split into its runs (`bob#1`, `bob#2`: a node's event numbers start again at each start),
//! and the logs. Nothing here trusts the files: a cut `events.jsonl` (the last line without
//! its newline, as a killed writer leaves it) still gives every complete event and says where
//! it was cut; an unreadable line is skipped and named; a missing ledger or log is noted.

use std::path::{Path, PathBuf};

use dlp_node_api::NodeEvent;

use super::error::ReportError;
use super::record::{LEDGER_FILE, LedgerRecord, RUN_FILE, RunRecord};

/// Most log lines shown per file (its last ones; the file in the run directory has them all).
pub const MAX_LOG_LINES: usize = 4000;
/// Most bytes read of a log file (its end).
const MAX_LOG_BYTES: u64 = 8 << 20;

/// A run directory, read.
#[derive(Debug)]
pub struct RunData {
    pub dir: PathBuf,
    pub record: RunRecord,
    /// `None` when the run did not reach its teardown.
    pub ledger: Option<LedgerRecord>,
    pub nodes: Vec<NodeData>,
    /// The chain's log, where the driver writes one.
    pub chain_log: Option<LogText>,
    /// What could not be read as expected, one sentence each.
    pub problems: Vec<String>,
}

/// One node's files.
#[derive(Debug)]
pub struct NodeData {
    pub name: String,
    /// Its runs in order; `runs[i].run == i + 1`.
    pub runs: Vec<NodeRun>,
    /// Where its `events.jsonl` was cut, if it was.
    pub cut: Option<Cut>,
    pub log: Option<LogText>,
}

#[derive(Debug)]
pub struct NodeRun {
    /// 1 for the first start.
    pub run: u32,
    pub events: Vec<NodeEvent>,
}

/// An `events.jsonl` whose last line is incomplete.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Line number (1-based) of the incomplete line.
    pub line: usize,
    /// Its length in bytes.
    pub bytes: usize,
    /// Complete events before it.
    pub events: usize,
}

/// The end of a log file.
#[derive(Debug)]
pub struct LogText {
    pub path: PathBuf,
    pub lines: Vec<String>,
    /// Lines (or, past [`MAX_LOG_BYTES`], the bytes' worth of lines) not shown.
    pub omitted: usize,
}

/// Read the run directory `dir`. Refused with [`ReportError::NotARunDir`] when `dir` is not a
/// directory or holds no `run.json`.
pub fn load(dir: &Path) -> Result<RunData, ReportError> {
    let not_run_dir = |reason: &str| ReportError::NotARunDir {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    let meta = std::fs::metadata(dir).map_err(|e| not_run_dir(&e.to_string()))?;
    if !meta.is_dir() {
        return Err(not_run_dir("it is not a directory"));
    }
    let run_path = dir.join(RUN_FILE);
    if !run_path.is_file() {
        return Err(not_run_dir(
            "it holds no run.json (a run directory is what dlp-harness keeps of a run: \
             run.json, ledger.json, a directory per node with its events.jsonl)",
        ));
    }
    let text = std::fs::read(&run_path).map_err(|e| ReportError::io(&run_path, e))?;
    let record: RunRecord = serde_json::from_slice(&text).map_err(|e| ReportError::Record {
        path: run_path.clone(),
        detail: format!("not a run record: {e}"),
    })?;
    let mut problems = Vec::new();
    if record.ended_ms.is_none() {
        problems.push(
            "the run did not finish: its harness stopped before the teardown (no ledger, steps \
             after the last recorded one unknown)"
                .to_string(),
        );
    }
    let ledger_path = dir.join(LEDGER_FILE);
    let ledger = match std::fs::read(&ledger_path) {
        Ok(bytes) => match serde_json::from_slice::<LedgerRecord>(&bytes) {
            Ok(l) => Some(l),
            Err(e) => {
                problems.push(format!("{LEDGER_FILE} is unreadable: {e}"));
                None
            }
        },
        Err(_) => None,
    };
    let mut names: Vec<String> = record.nodes.iter().map(|n| n.name.clone()).collect();
    if names.is_empty() {
        names = node_dirs(dir);
    }
    let mut nodes = Vec::new();
    for name in names {
        let home = record
            .nodes
            .iter()
            .find(|n| n.name == name)
            .map_or_else(|| dir.join(&name), |n| dir.join(&n.home));
        let (runs, cut) = read_events(
            &home.join(dlp_node_api::EVENTS_FILE_NAME),
            &name,
            &mut problems,
        );
        if let Some(cut) = &cut {
            problems.push(format!(
                "{name}/events.jsonl is cut: line {} ({} bytes) is incomplete; the report shows \
                 the {} events before it",
                cut.line, cut.bytes, cut.events
            ));
        }
        let log = read_log(&home.join("node.log"));
        nodes.push(NodeData {
            name,
            runs,
            cut,
            log,
        });
    }
    let chain_log = read_log(&dir.join("chain.log"));
    Ok(RunData {
        dir: dir.to_path_buf(),
        record,
        ledger,
        nodes,
        chain_log,
        problems,
    })
}

/// Subdirectories holding an `events.jsonl`, by name (a record without its nodes).
fn node_dirs(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().join(dlp_node_api::EVENTS_FILE_NAME).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// A node's events split into runs, and where the file was cut.
fn read_events(path: &Path, name: &str, problems: &mut Vec<String>) -> (Vec<NodeRun>, Option<Cut>) {
    let Ok(bytes) = std::fs::read(path) else {
        problems.push(format!("{name} has no events.jsonl (it never started)"));
        return (Vec::new(), None);
    };
    parse_events(&bytes, name, problems)
}

/// [`read_events`] on the file's bytes.
pub(super) fn parse_events(
    bytes: &[u8],
    name: &str,
    problems: &mut Vec<String>,
) -> (Vec<NodeRun>, Option<Cut>) {
    let mut runs: Vec<NodeRun> = Vec::new();
    let mut cut = None;
    let mut count = 0;
    let complete = bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        if i == last && !complete {
            cut = Some(Cut {
                line: i + 1,
                bytes: line.len(),
                events: count,
            });
            break;
        }
        let event: NodeEvent = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!(
                    "{name}/events.jsonl line {}: not an event ({e}); skipped",
                    i + 1
                ));
                continue;
            }
        };
        count += 1;
        let new_run = runs
            .last()
            .and_then(|r| r.events.last())
            .is_none_or(|prev| event.seq <= prev.seq);
        if new_run {
            let run = u32::try_from(runs.len() + 1).unwrap_or(u32::MAX);
            runs.push(NodeRun {
                run,
                events: Vec::new(),
            });
        }
        if let Some(r) = runs.last_mut() {
            r.events.push(event);
        }
    }
    (runs, cut)
}

/// The last [`MAX_LOG_LINES`] lines of a log file, if there is one.
fn read_log(path: &Path) -> Option<LogText> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let skip = len.saturating_sub(MAX_LOG_BYTES);
    file.seek(SeekFrom::Start(skip)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut omitted = 0;
    if skip > 0 && !lines.is_empty() {
        // The first line read is a piece of one.
        lines.remove(0);
        omitted += 1;
    }
    if lines.len() > MAX_LOG_LINES {
        omitted += lines.len() - MAX_LOG_LINES;
        lines.drain(..lines.len() - MAX_LOG_LINES);
    }
    Some(LogText {
        path: path.to_path_buf(),
        lines,
        omitted,
    })
}
