//! The run's record, kept as the session goes (every step's times and outcome, the invariants
//! checked, the failure) and written into the run directory: `run.json` as soon as the network
//! is up and again at teardown, with `ledger.json` (the ledger dies with the run). The report
//! (`report.html`) is made from those files and the nodes' own, never from memory, so
//! `dlp-harness report DIR` later gives the same page.

use std::path::{Path, PathBuf};

use dlp_chain::TxRecord;
use dlp_node_api::Backend;

use super::report::{RunFailure, RunInfo, reproduce};
use crate::capability::DriverKind;
use crate::checks::{Checked, INVARIANTS};
use crate::cluster::Network;
use crate::error::HarnessError;
use crate::report::{
    BackupMeta, ChannelMeta, FORMAT, FailureRecord, InvariantRecord, LEDGER_FILE, LedgerRecord,
    NodeMeta, NoteRecord, RUN_FILE, RunRecord, ScenarioRecord, StepOutcome, StepRecord, write_json,
};
use crate::scenario::StepFormat;
use crate::steps::Scenario;

/// The record of one run, as it goes.
#[derive(Debug)]
pub(super) struct RunLog {
    record: RunRecord,
    dir: PathBuf,
}

fn now() -> u64 {
    dlp_node_api::unix_ms()
}

impl RunLog {
    pub fn new(
        scenario: &Scenario,
        driver: DriverKind,
        backend: Backend,
        seed: u64,
        run_dir: &Path,
    ) -> Self {
        let info = RunInfo {
            scenario,
            driver,
            backend,
            seed,
            run_dir,
        };
        let text = scenario.text();
        let steps = scenario
            .file
            .steps
            .iter()
            .enumerate()
            .map(|(i, spanned)| {
                let line = scenario.step_position(i).map_or(0, |(line, _)| line);
                StepRecord {
                    index: i + 1,
                    line,
                    verb: spanned.get_ref().verb().to_string(),
                    text: text
                        .lines()
                        .nth(line.saturating_sub(1))
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                    step: serde_json::to_value(spanned.get_ref()).unwrap_or_default(),
                    started_ms: None,
                    ended_ms: None,
                    outcome: StepOutcome::NotRun,
                    error: None,
                }
            })
            .collect();
        RunLog {
            record: RunRecord {
                format: FORMAT,
                test_name: scenario.test_name(backend, driver.name()),
                scenario: ScenarioRecord {
                    name: scenario.name.clone(),
                    path: scenario.path.clone(),
                    description: scenario.file.description.clone(),
                    text: text.to_string(),
                },
                backend: backend.to_string(),
                driver: driver.name().to_string(),
                seed,
                reproduce: reproduce(&info),
                started_ms: now(),
                ended_ms: None,
                failure: None,
                notes: Vec::new(),
                steps,
                invariants: INVARIANTS
                    .iter()
                    .map(|(name, rule)| InvariantRecord {
                        name: name.to_string(),
                        rule: rule.to_string(),
                        checks: 0,
                        problems: Vec::new(),
                    })
                    .collect(),
                nodes: Vec::new(),
                channels: Vec::new(),
                backups: Vec::new(),
            },
            dir: run_dir.to_path_buf(),
        }
    }

    pub fn note(&mut self, what: &str) {
        self.note_at(now(), what);
    }

    /// A note of something that happened at `at_ms`.
    pub fn note_at(&mut self, at_ms: u64, what: &str) {
        self.record.notes.push(NoteRecord {
            at_ms,
            what: what.to_string(),
        });
    }

    /// Step `index` (0-based) starts.
    pub fn step_started(&mut self, index: usize) {
        if let Some(s) = self.record.steps.get_mut(index) {
            s.started_ms = Some(now());
        }
    }

    /// Step `index` (0-based) ended so.
    pub fn step_ended(&mut self, index: usize, result: Result<(), &HarnessError>) {
        if let Some(s) = self.record.steps.get_mut(index) {
            s.ended_ms = Some(now());
            match result {
                Ok(()) => s.outcome = StepOutcome::Passed,
                Err(e) => {
                    s.outcome = StepOutcome::Failed;
                    s.error = Some(e.to_string());
                }
            }
        }
    }

    /// One check of the invariants.
    pub fn checked(&mut self, results: &[Checked]) {
        for c in results.iter().filter(|c| c.checked) {
            if let Some(r) = self.record.invariants.iter_mut().find(|r| r.name == c.name) {
                r.checks += 1;
                if !c.problems.is_empty() {
                    r.problems.clone_from(&c.problems);
                }
            }
        }
    }

    /// The run failed (the first failure recorded is the run's).
    pub fn failed(&mut self, failure: &RunFailure, report: String) {
        if self.record.failure.is_none() {
            self.record.failure = Some(FailureRecord {
                kind: failure.kind().to_string(),
                step: failure.step(),
                message: failure.to_string(),
                report,
            });
        }
    }

    pub fn has_failed(&self) -> bool {
        self.record.failure.is_some()
    }

    /// Write `run.json` as it stands.
    pub fn write(&self) {
        if let Err(e) = write_json(&self.dir, RUN_FILE, &self.record) {
            tracing::warn!(error = %e, "cannot write the run record");
        }
    }

    /// What the network knows that the record needs (nodes' keys, channel ids, named backups),
    /// taken before teardown.
    pub fn describe(&mut self, net: &Network) {
        self.record.nodes = net
            .node_names()
            .into_iter()
            .map(|name| NodeMeta {
                home: net
                    .home(&name)
                    .ok()
                    .and_then(|h| h.strip_prefix(&self.dir).ok())
                    .map_or_else(|| PathBuf::from(&name), Path::to_path_buf),
                pubkey: net.pubkey(&name).ok().map(|k| k.to_string()),
                wallet: net.wallet_key(&name).ok().map(|k| k.to_string()),
                name,
            })
            .collect();
        self.record.channels = net
            .channels()
            .iter()
            .map(|(name, c)| ChannelMeta {
                name: name.clone(),
                from: c.from.clone(),
                to: c.to.clone(),
                id: c.id.to_string(),
            })
            .collect();
        self.record.backups = net
            .named_backups()
            .into_iter()
            .map(|(name, node, dir)| BackupMeta { name, node, dir })
            .collect();
    }

    /// The run is over: write `ledger.json` (if the ledger answered) and the final `run.json`.
    pub fn finish(&mut self, ledger: Option<Vec<TxRecord>>) {
        self.record.ended_ms = Some(now());
        if let Some(transactions) = ledger
            && let Err(e) = write_json(&self.dir, LEDGER_FILE, &LedgerRecord { transactions })
        {
            tracing::warn!(error = %e, "cannot write the ledger record");
        }
        self.write();
    }
}
