//! Every `*.toml` under `scenarios/` x backend is one test, named `<scenario>@<backend>[<driver>]`
//! with the scenario's path below `scenarios/` (`audit_failure@sqlite[in-process]`,
//! `regressions/explore_seed_13_audit_off_by_one@rocksdb[in-process]`,
//! `fiber/test_restore_marks_channel_stale@sqlite[in-process]`), so a result always says which
//! file and driver produced it. The sweep workloads (`sweeps/`) are left to `tests/shards.rs` (a
//! test per backup point) and `tests/integration/shards.rs`, which runs each of them as the sweep
//! finds its points. `DLP_HARNESS_DRIVER=process` runs them on `dlp-node` processes instead of
//! in-process nodes (default `in-process`).
//!
//! A combination the driver cannot run (a `pause` on the in-process driver: it lacks a
//! capability) is listed all the same, marked ignored, so the test output shows it as skipped
//! (nextest's SKIP count, libtest's `ignored`) instead of dropping it. Its reason is the
//! scenario's located refusal: printed when this binary runs without `--list`, and the
//! failure message if it is run anyway (`--run-ignored only` / `--ignored`).
//!
//! In-process nodes log through this process's tracing subscriber, each line tagged with the
//! node's name (`node{name=bob}`); the log is captured in memory (filter: `DLP_HARNESS_LOG`,
//! default `info`) and a failing test prints its tail after the report; each node's lines also
//! go to its `node.log` in the run directory (as process and container nodes write theirs), and
//! a failing test names the kept run directory's `report.html`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::ValueEnum;
use dlp_harness::capability::DriverKind;
use dlp_harness::run::runner::{run_blocking, seed_from_env, test_name};
use dlp_harness::scenario::discover;
use libtest_mimic::{Arguments, Failed, Trial};

/// Captured log lines of this test process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn tail(&self, lines: usize) -> String {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let text = String::from_utf8_lossy(&all);
        let kept: Vec<&str> = text.lines().collect();
        kept[kept.len().saturating_sub(lines)..].join("\n")
    }
}

fn main() {
    let args = Arguments::from_args();
    let captured = Captured::default();
    let sink = captured.clone();
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let filter = tracing_subscriber::EnvFilter::try_from_env("DLP_HARNESS_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(move || sink.clone())
                    .with_filter(filter),
            )
            // Each in-process node's log also goes to its node.log, for the run's report.
            .with(dlp_harness::driver::node_log::node_log_layer())
            .init();
    }
    let driver = match std::env::var("DLP_HARNESS_DRIVER") {
        Ok(name) => <DriverKind as ValueEnum>::from_str(&name, false)
            .unwrap_or_else(|e| panic!("DLP_HARNESS_DRIVER={name:?}: {e}")),
        Err(_) => DriverKind::InProcess,
    };
    let seed = seed_from_env().unwrap_or_else(|e| panic!("{e}"));
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut trials = Vec::new();
    let mut unsupported = Vec::new();
    let found = discover(&[dir]).expect("scenarios directory");
    for found in found.into_iter().filter(|f| !f.name.starts_with("sweeps/")) {
        match found.load() {
            Ok(scenario) => {
                for backend in scenario.backends() {
                    let name = test_name(&scenario, backend, driver);
                    if let Err(refusal) = scenario.check_capabilities(driver.capabilities()) {
                        let why =
                            format!("{name}: not run on the {} driver: {refusal}", driver.name());
                        unsupported.push(why.clone());
                        trials.push(
                            Trial::test(name, move || Err(Failed::from(why)))
                                .with_ignored_flag(true),
                        );
                        continue;
                    }
                    let scenario = scenario.clone();
                    let captured = captured.clone();
                    trials.push(Trial::test(name, move || {
                        let outcome = run_blocking(&scenario, backend, driver, false, seed);
                        match outcome.failure {
                            None => Ok(()),
                            Some(failure) => Err(Failed::from(format!(
                                "{}\n{}node logs (last 150 lines; DLP_HARNESS_LOG sets the filter):\n{}",
                                failure.report,
                                failure
                                    .html
                                    .map(|p| format!("report: {}\n", p.display()))
                                    .unwrap_or_default(),
                                captured.tail(150)
                            ))),
                        }
                    }));
                }
            }
            Err(e) => {
                trials.push(Trial::test(
                    format!("{}@invalid[{}]", found.name, driver.name()),
                    move || Err(Failed::from(e.to_string())),
                ));
            }
        }
    }
    if !args.list {
        for why in &unsupported {
            eprintln!("skipped: {why}");
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
