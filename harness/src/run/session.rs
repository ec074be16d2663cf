//! One run of a scenario: setup (the network, its nodes and channels) -> steps -> invariants ->
//! teardown -> report. `dlp-harness run`, the sweep (discovery and every point's judge) and the
//! explorer (one step at a time, invariants after each) all run through a [`Session`], so
//! capability checks, the invariant policy, step failures with their lines and the report are
//! the same everywhere. This is the only place that builds a [`Network`].

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dlp_node_api::Backend;

use super::record::RunLog;
use super::report::{Failure, RunFailure, RunInfo, render};
use crate::capability::DriverKind;
use crate::cluster::Network;
use crate::driver::{AuditSettings, BackupSettings, Driver, ForwardingSettings, NodeBuild};
use crate::scenario::StepFormat;
use crate::steps::{RunState, Scenario};

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    pub run_dir: PathBuf,
    /// `None` on success.
    pub failure: Option<Failure>,
}

/// Run `scenario` on `driver` with `backend` in `run_dir`, everything random derived from
/// `seed`: setup, every step, the invariants, teardown.
pub async fn run(
    scenario: &Scenario,
    driver: DriverKind,
    backend: Backend,
    run_dir: &Path,
    seed: u64,
) -> Outcome {
    let started = Instant::now();
    match Session::setup(scenario, driver, backend, run_dir, seed).await {
        Ok(mut session) => {
            let result = session.run_to_end().await;
            session.finish(result).await
        }
        Err(failure) => Outcome {
            elapsed: started.elapsed(),
            run_dir: run_dir.to_path_buf(),
            failure: Some(failure),
        },
    }
}

/// A scenario's network, set up and ready for its steps.
#[derive(Debug)]
pub struct Session<'a> {
    scenario: &'a Scenario,
    driver: DriverKind,
    pub(super) net: Network,
    /// What earlier steps left for later ones, and the invariant policy.
    pub(super) state: RunState,
    /// The step [`run_to_end`](Self::run_to_end) starts from.
    next_step: usize,
    /// 1-based index of the last step run, for invariant failures.
    last_step: Option<usize>,
    started: Instant,
    /// What the run directory's `run.json` says (see `record.rs`).
    log: RunLog,
}

impl<'a> Session<'a> {
    /// Build the network in `run_dir` (created) on a fresh driver of kind `driver` with
    /// `backend`, add (start and fund) every node and open (and confirm) every channel.
    /// Refused before anything starts when a step needs a capability the driver lacks. On
    /// failure whatever started is stopped again, and the failure carries its report.
    pub async fn setup(
        scenario: &'a Scenario,
        driver: DriverKind,
        backend: Backend,
        run_dir: &Path,
        seed: u64,
    ) -> Result<Session<'a>, Failure> {
        let failed = failure_of(scenario, driver, backend, seed, run_dir);
        // Refused before a driver (a process, a container) is even made.
        scenario
            .check_capabilities(driver.capabilities())
            .map_err(|e| failed(RunFailure::InvalidFile(e)))?;
        let made = crate::driver::create(driver).map_err(|e| failed(RunFailure::Setup(e)))?;
        Self::setup_on(scenario, made, backend, run_dir, seed).await
    }

    /// [`setup`](Self::setup) on a given driver (tests use doubles).
    pub async fn setup_on(
        scenario: &'a Scenario,
        driver: Box<dyn Driver>,
        backend: Backend,
        run_dir: &Path,
        seed: u64,
    ) -> Result<Session<'a>, Failure> {
        let started = Instant::now();
        let kind = driver.kind();
        let failed = failure_of(scenario, kind, backend, seed, run_dir);
        scenario
            .check_capabilities(driver.capabilities())
            .map_err(|e| failed(RunFailure::InvalidFile(e)))?;
        let net = Network::with_driver(driver, backend, run_dir, seed)
            .await
            .map_err(|e| failed(RunFailure::Setup(e)))?;
        let driver = kind;
        let log = RunLog::new(scenario, driver, backend, seed, run_dir);
        log.write();
        let mut session = Session {
            scenario,
            driver,
            net,
            state: RunState::new(&scenario.file),
            next_step: 0,
            last_step: None,
            started,
            log,
        };
        match session.build().await {
            Ok(()) => Ok(session),
            Err(error) => {
                let report = session.record_failure(&error);
                let html = session.teardown().await;
                Err(Failure {
                    error,
                    report,
                    html,
                })
            }
        }
    }

    /// Add the nodes, then open the channels.
    async fn build(&mut self) -> Result<(), RunFailure> {
        let file = &self.scenario.file;
        for (name, decl) in &file.nodes {
            let during = format!("add node {name}");
            self.note(&during);
            let settings = AuditSettings {
                policy: decl.audit_policy,
                on_failure: decl.on_audit_failure,
                mutual_stale: decl.mutual_stale,
                on_force_close_request: decl.on_force_close_request,
            };
            let backups = BackupSettings {
                automatic: decl.auto_backup,
                space_limit: decl.backup_space_kb.map(|kb| kb * 1024),
            };
            let forwarding = ForwardingSettings {
                fee_rate: decl.fee_rate,
            };
            let build = NodeBuild::resolve(decl.version.as_deref()).map_err(|error| {
                RunFailure::Network {
                    during: during.clone(),
                    error,
                }
            })?;
            self.net
                .add_node(name, settings, backups, forwarding, build)
                .await
                .map_err(|error| RunFailure::Network { during, error })?;
        }
        for channel in &file.channels {
            let c = channel.get_ref();
            let during = format!(
                "open channel {} {} -> {} ({})",
                c.name, c.from, c.to, c.amount
            );
            self.note(&during);
            let opened = async {
                self.net.connect(&c.from, &c.to).await?;
                self.net
                    .open_channel(&c.name, &c.from, &c.to, c.amount)
                    .await
            };
            opened
                .await
                .map_err(|error| RunFailure::Network { during, error })?;
        }
        Ok(())
    }

    /// Note what the harness does outside the steps, in the timeline and the run record.
    pub fn note(&mut self, what: &str) {
        self.net.note_step(what.to_string());
        self.log.note(what);
    }

    /// Record that the run failed so (the first failure recorded is the run's: its report is
    /// written at teardown); returns the text report of it.
    pub fn record_failure(&mut self, failure: &RunFailure) -> String {
        let report = self.report(failure);
        self.log.failed(failure, report.clone());
        report
    }

    pub fn scenario(&self) -> &'a Scenario {
        self.scenario
    }

    /// Wait until no message is in flight; a timeout is a [`RunFailure::Network`] `during`
    /// what the caller says it was doing.
    pub async fn wait_quiescent(&mut self, during: &str) -> Result<(), RunFailure> {
        let result = self
            .net
            .wait_quiescent()
            .await
            .map_err(|error| RunFailure::Network {
                during: during.to_string(),
                error,
            });
        if let Err(failure) = &result {
            self.record_failure(failure);
        }
        result
    }

    /// Run the steps in `steps` (0-based indices into the scenario's steps), in order. A
    /// failure names the step, its verb and its line.
    pub async fn run_steps(&mut self, steps: Range<usize>) -> Result<(), RunFailure> {
        let scenario = self.scenario;
        for index in steps.clone() {
            let Some(spanned) = scenario.file.steps.get(index) else {
                break;
            };
            let step = spanned.get_ref();
            self.net.note_step(format!("#{} {step:?}", index + 1));
            self.log.step_started(index);
            let noted = self.net.step_notes().len();
            let ran = step.run(&mut self.net, &mut self.state).await;
            // What the step said it did (damage done, a refusal, which store a node started
            // on) goes into the run record too, so the report shows it.
            for said in &self.net.step_notes()[noted..] {
                self.log.note_at(said.at_ms, &said.what);
            }
            self.log.step_ended(index, ran.as_ref().map(|_| ()));
            self.last_step = Some(index + 1);
            self.next_step = index + 1;
            if let Err(error) = ran {
                let failure = RunFailure::Step {
                    index: index + 1,
                    line: scenario.step_position(index).map_or(0, |(line, _)| line),
                    verb: step.verb(),
                    error,
                };
                self.record_failure(&failure);
                return Err(failure);
            }
        }
        Ok(())
    }

    /// Check the invariants now, under the scenario's policy (see [`RunState`]).
    pub async fn check_invariants(&mut self) -> Result<(), RunFailure> {
        let checked = crate::checks::check_each(&mut self.net, self.state.invariants())
            .await
            .and_then(|results| {
                self.log.checked(&results);
                crate::checks::failures(&results)
            });
        let result = checked.map_err(|error| RunFailure::Invariant {
            after_step: self.last_step,
            error,
        });
        if let Err(failure) = &result {
            self.record_failure(failure);
        }
        result
    }

    /// Run every step not run yet, then check the invariants.
    pub async fn run_to_end(&mut self) -> Result<(), RunFailure> {
        self.run_steps(self.next_step..self.scenario.file.steps.len())
            .await?;
        self.check_invariants().await
    }

    /// The report of `failure` in this run (with the network's timeline so far).
    pub fn report(&self, failure: &RunFailure) -> String {
        let info = RunInfo {
            scenario: self.scenario,
            driver: self.driver,
            backend: self.net.backend(),
            seed: self.net.seed(),
            run_dir: self.net.run_dir(),
        };
        render(&info, Some(&self.net), failure)
    }

    /// Stop every node and the chain, and write the run record (`run.json`, `ledger.json`);
    /// when the run failed, also `report.html`, whose path is returned.
    pub async fn teardown(mut self) -> Option<PathBuf> {
        self.log.describe(&self.net);
        let ledger = self.net.chain().transactions(None).await.ok();
        self.net.shutdown_all().await;
        self.log.finish(ledger);
        if !self.log.has_failed() {
            return None;
        }
        write_report(self.net.run_dir())
    }

    /// Report `result` (if it failed), tear down, and say how the run ended.
    pub async fn finish(mut self, result: Result<(), RunFailure>) -> Outcome {
        let failure = result.err().map(|error| Failure {
            report: self.record_failure(&error),
            error,
            html: None,
        });
        let (started, run_dir) = (self.started, self.net.run_dir().to_path_buf());
        let html = self.teardown().await;
        Outcome {
            elapsed: started.elapsed(),
            run_dir,
            failure: failure.map(|f| Failure { html, ..f }),
        }
    }
}

/// Write the run directory's `report.html`; a failure to write it is logged, not the run's.
pub fn write_report(run_dir: &Path) -> Option<PathBuf> {
    match crate::report::write_html(run_dir) {
        Ok(path) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, "cannot write the run's report");
            None
        }
    }
}

/// A failure of setting `scenario` up, with its report (no network to show yet).
fn failure_of<'s>(
    scenario: &'s Scenario,
    driver: DriverKind,
    backend: Backend,
    seed: u64,
    run_dir: &'s Path,
) -> impl Fn(RunFailure) -> Failure + 's {
    move |error: RunFailure| {
        let info = RunInfo {
            scenario,
            driver,
            backend,
            seed,
            run_dir,
        };
        Failure {
            report: render(&info, None, &error),
            error,
            html: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use dlp_chain::ChainClient;

    use super::*;
    use crate::capability::Capability;
    use crate::driver::{NodeHandle, NodeSpec};
    use crate::error::HarnessError;
    use crate::restore_outcome::{Digests, RestoreOutcome};

    /// A driver whose nodes have no step control (think of a node implementation without
    /// `dev_hold`), counting every call that would start something.
    struct NoStepControl {
        calls: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Driver for NoStepControl {
        fn kind(&self) -> DriverKind {
            DriverKind::InProcess
        }
        fn capabilities(&self) -> &'static [Capability] {
            &[Capability::TypedEvents, Capability::DlpChainLedger]
        }
        async fn start_chain(
            &mut self,
            _run_dir: &Path,
        ) -> Result<(Arc<dyn ChainClient>, Option<String>), HarnessError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(HarnessError::Setup("the double starts nothing".into()))
        }
        async fn create_node(&mut self, _spec: &NodeSpec) -> Result<(), HarnessError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn start_node(
            &mut self,
            _spec: &NodeSpec,
        ) -> Result<Box<dyn NodeHandle>, HarnessError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(HarnessError::Setup("the double starts nothing".into()))
        }
        async fn restore(
            &mut self,
            _spec: &NodeSpec,
            _backup: &Path,
            _digests: Digests,
        ) -> Result<RestoreOutcome, HarnessError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(RestoreOutcome::Restored)
        }
    }

    const HOLDING: &str = "description = \"d\"\n[nodes.alice]\n[nodes.bob]\n\
        [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 1000\n\
        [[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 10 }\n\
        [[steps]]\nhold = { node = \"bob\", step = \"sent:CommitmentSigned\" }\n";

    #[tokio::test]
    async fn a_scenario_needing_step_control_is_refused_on_a_driver_without_it() {
        let scenario = Scenario::parse(Path::new("holding.toml"), HOLDING).expect("valid");
        let calls = Arc::new(AtomicUsize::new(0));
        let driver = Box::new(NoStepControl {
            calls: calls.clone(),
        });
        let run_dir = tempfile::tempdir().expect("tempdir");
        let refused = Session::setup_on(
            &scenario,
            driver,
            Backend::Rocksdb,
            &run_dir.path().join("run"),
            1,
        )
        .await
        .expect_err("refused");
        let message = refused.error.to_string();
        assert!(
            matches!(refused.error, RunFailure::InvalidFile(_)),
            "{message}"
        );
        assert!(message.contains("holding.toml:12:"), "{message}");
        assert!(message.contains("step control"), "{message}");
        assert!(message.contains("hold"), "{message}");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing was started");
        assert!(!run_dir.path().join("run").exists(), "no run directory");

        // Without the hold the same double is asked to start the chain.
        let fine = HOLDING.replace(
            "[[steps]]\nhold = { node = \"bob\", step = \"sent:CommitmentSigned\" }\n",
            "",
        );
        let scenario = Scenario::parse(Path::new("fine.toml"), &fine).expect("valid");
        let driver = Box::new(NoStepControl {
            calls: calls.clone(),
        });
        let failed = Session::setup_on(&scenario, driver, Backend::Rocksdb, run_dir.path(), 1)
            .await
            .expect_err("the double cannot start a chain");
        assert!(
            matches!(failed.error, RunFailure::Setup(_)),
            "{}",
            failed.error
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
