//! The heavy work, one test each (configured by `shards.toml` at the workspace's root): every
//! sweep point (`sweep/<workload>/<NN>-<step>#<nth>-<channel>@<backend>/<policy>`) and every
//! explorer seed (`explore/seed-<NNN>@<backend>/<policy>`), so nextest can partition them over
//! machines (`--partition hash:k/n`) and one reproduces alone with
//! `cargo nextest run -p dlp-harness --test shards -E 'test(=NAME)'`.
//!
//! A sweep point passes when it holds to the per-point rules (`sweep::point_problems`: nothing
//! LOST, MISMATCH or ERROR, UNSAFE exactly where the oracle predicts Fiber's gap, `strict` safe
//! and live); an explorer seed when its invariants held at every step. Either way the test
//! writes its verdict as a result file into `$DLP_SHARD_RESULTS` (default
//! `target/shard-results` in the workspace) for `dlp-harness merge`. Listing reads the committed
//! point lists only: it never runs a workload.
//!
//! `DLP_HARNESS_DRIVER` chooses the driver, as for the scenario matrix (default `in-process`);
//! a test the driver cannot run is listed as ignored (`--run-ignored only` shows why), so it
//! writes no result and a merge of that run names it MISSING. A failed point keeps its run
//! directory (named in the failure), with the nodes' logs and `report.html`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::ValueEnum;
use dlp_harness::capability::DriverKind;
use dlp_harness::run::runner::runs_root;
use dlp_harness::shards::{RESULTS_ENV, SHARDS_FILE, ShardTest, ShardsFile, run_test};
use dlp_harness::sweep::{PointResult, Verdict};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let filter = tracing_subscriber::EnvFilter::try_from_env("DLP_HARNESS_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            // Each in-process node's log goes to its node.log, for a kept run's report.
            .with(dlp_harness::driver::node_log::node_log_layer())
            .init();
    }
    // Read at run time: run from a nextest archive, CARGO_MANIFEST_DIR is the remapped checkout
    // (`--workspace-remap`), not where the binary was built.
    let workspace = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("..");
    let file =
        Arc::new(ShardsFile::load(&workspace.join(SHARDS_FILE)).unwrap_or_else(|e| panic!("{e}")));
    let driver = match std::env::var("DLP_HARNESS_DRIVER") {
        Ok(name) => <DriverKind as ValueEnum>::from_str(&name, false)
            .unwrap_or_else(|e| panic!("DLP_HARNESS_DRIVER={name:?}: {e}")),
        Err(_) => DriverKind::InProcess,
    };
    let results = std::env::var_os(RESULTS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target").join("shard-results"));
    let (tests, broken) = file.tests();
    let mut trials = Vec::with_capacity(tests.len() + broken.len());
    for test in tests {
        let name = test.name();
        if let ShardTest::Sweep { workload, .. } = &test
            && let Err(refusal) = workload.check_capabilities(driver.capabilities())
        {
            let why = format!("{name}: not run on the {} driver: {refusal}", driver.name());
            trials.push(Trial::test(name, move || Err(Failed::from(why))).with_ignored_flag(true));
            continue;
        }
        let (file, results) = (file.clone(), results.clone());
        trials.push(Trial::test(name, move || {
            let record = run_test(&file, &test, driver, &runs_root(), &workload_rules);
            let written = record
                .write(&results)
                .map_err(|e| Failed::from(format!("cannot write the result file: {e}")))?;
            if record.problems.is_empty() {
                Ok(())
            } else {
                Err(Failed::from(format!(
                    "{}\nresult: {}",
                    record.problems.join("\n"),
                    written.display()
                )))
            }
        }));
    }
    for b in broken {
        trials.push(Trial::test(b.name, move || Err(Failed::from(b.why))));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// What the shipped workloads show at every point, beyond the rules every point holds to (what
/// each workload was written to exercise).
fn workload_rules(workload: &str, result: &PointResult) -> Vec<String> {
    if result.error.is_some() {
        return Vec::new(); // already a problem of its own
    }
    let own = result
        .channels
        .iter()
        .find(|c| c.channel == result.point.channel);
    let mut out = Vec::new();
    let mut expect = |holds: bool, what: &str| {
        if !holds {
            out.push(format!("{workload}: {what}: {:?}", result.channels));
        }
    };
    match workload {
        "two_node_direct" => {
            // Nobody acts for the nodes: nothing is held (closed by the judge); under strict the
            // peer closes on the restored node's request, with a time to unlock.
            expect(
                result.channels.iter().all(|c| c.verdict != Verdict::Held),
                "nothing is held: the judge does not act for the nodes",
            );
            if result.verdict() == Verdict::Closed {
                expect(
                    own.is_some_and(|c| {
                        c.closed_by.as_deref() == Some("alice") && c.unlock.is_some()
                    }),
                    "a closed point is closed by alice, with its time to unlock",
                );
            }
        }
        "three_node_multi_hop" | "four_node_route" => expect(
            result.channels.len() == 2,
            "both of the hop's channels are judged at every point",
        ),
        "payment_then_shutdown" => expect(
            result.verdict() == Verdict::Closed,
            "every backup restores into a channel the ledger already closed",
        ),
        "two_node_direct_both_restored" => {
            for c in &result.channels {
                if result.policy == "fiber" {
                    expect(
                        c.verdict == Verdict::Frozen,
                        "under fiber (mutual_stale = wait) both ends stay silent: FROZEN",
                    );
                } else if c.verdict == Verdict::Closed {
                    expect(
                        c.closed_by.as_deref() == Some(c.peer.as_str()),
                        "under strict the end with the newer backup (the peer) closes",
                    );
                }
            }
        }
        _ => {}
    }
    out
}
