//! The explorer: the same seed must give the same schedule and the same event log (each node
//! run's events compared as a multiset: see `canonical_log`). The seeds that must run clean on
//! both backends are tests of their own (`shards.toml`'s `[explore]`, `harness/tests/shards.rs`).

use dlp_harness::capability::DriverKind;
use dlp_harness::explore::{ScheduleSpec, canonical_log, generate, run_schedule};
use dlp_harness::run::RunFailure;
use dlp_harness::run::runner::runs_root;
use dlp_harness::scenario::render;
use dlp_harness::steps::{Scenario, ShutdownExpect, Step};
use dlp_node_api::{AuditPolicy, Backend};

fn spec(seed: u64, nodes: usize) -> ScheduleSpec {
    ScheduleSpec {
        seed,
        steps: 16,
        nodes,
        policy: AuditPolicy::Strict,
    }
}

fn run(spec: ScheduleSpec, backend: Backend, tag: &str) -> dlp_harness::explore::ScheduleOutcome {
    let dir = runs_root().join(format!(
        "explore-test-{tag}-{}-{backend}-{}",
        spec.seed,
        std::process::id()
    ));
    let text = render(&generate(spec), "");
    let scenario = Scenario::parse(&dir.join("schedule.toml"), &text).expect("valid schedule");
    let runtime = dlp_harness::run::runner::runtime().expect("runtime");
    let outcome = runtime.block_on(run_schedule(
        &scenario,
        DriverKind::InProcess,
        backend,
        spec.seed,
        &dir,
    ));
    if outcome.failure.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

#[test]
fn the_same_seed_gives_the_same_event_log() {
    for (seed, backend) in [(7, Backend::Rocksdb), (11, Backend::Sqlite)] {
        let first = run(spec(seed, 3), backend, "a");
        let second = run(spec(seed, 3), backend, "b");
        assert!(first.failure.is_none(), "{:?}", first.failure);
        assert!(first.event_log.len() > 50, "a real schedule ran");
        let (a, b) = (
            canonical_log(&first.event_log),
            canonical_log(&second.event_log),
        );
        if a != b {
            let at = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            panic!(
                "seed {seed} on {backend}: event logs differ at line {at}:\n  {:?}\n  {:?}",
                a.get(at),
                b.get(at)
            );
        }
        let exact = first.event_log == second.event_log;
        eprintln!("seed {seed} on {backend}: same events; same order too: {exact}");
        assert_eq!(
            first.mid_payment, second.mid_payment,
            "seed {seed} on {backend}"
        );
    }
}

/// The explorer counts its mid-payment backups: armed, fired at their step, restored (or, never
/// written, replaced by a restart), consistent with each other and with the schedule.
#[test]
fn mid_payment_backups_are_counted_armed_fired_and_restored() {
    let mut total = dlp_harness::explore::MidPaymentBackups::default();
    for seed in 1..=8 {
        let armed = generate(spec(seed, 3))
            .steps
            .iter()
            .filter(|s| matches!(s.get_ref(), Step::BackupAt(_)))
            .count();
        let outcome = run(spec(seed, 3), Backend::Sqlite, "mid");
        assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
        let m = outcome.mid_payment;
        assert_eq!(m.armed, armed, "seed {seed}: {m:?}");
        assert!(m.fired <= m.armed, "seed {seed}: {m:?}");
        assert!(m.fired > 0 || m.restored == 0, "seed {seed}: {m:?}");
        total += m;
    }
    assert!(
        total.fired > 0 && total.restored > 0,
        "8 seeds of 16 steps fire and restore some: {total:?}"
    );
}

/// A generated schedule was never a file anyone wrote, yet a failing step names its own line
/// in the rendered text (it used to say line 1).
#[test]
fn a_failing_step_of_a_generated_schedule_names_its_line() {
    let mut file = generate(spec(3, 2));
    let channel = file.channels[0].get_ref().name.clone();
    let step = |s: Step| toml::Spanned::new(0..0, s);
    // A cooperative shutdown of a live channel is accepted: expecting a refusal fails at once.
    file.steps = vec![
        step(Step::Mine(dlp_harness::steps::ledger::Mine { blocks: 1 })),
        step(Step::WaitQuiescent(
            dlp_harness::steps::network::WaitQuiescent {},
        )),
        step(Step::Shutdown(dlp_harness::steps::channels::Shutdown {
            node: "alice".into(),
            channel,
            force: false,
            expect: ShutdownExpect::Refused,
        })),
        step(Step::WaitQuiescent(
            dlp_harness::steps::network::WaitQuiescent {},
        )),
    ];
    let dir = runs_root().join(format!("explore-test-line-{}", std::process::id()));
    let scenario =
        Scenario::generated(&dir.join("schedule.toml"), &file, "").expect("valid schedule");
    let (line, _) = scenario.step_position(2).expect("the shutdown");
    assert_eq!(
        scenario
            .text()
            .lines()
            .nth(line - 1)
            .map(|l| l.starts_with("shutdown = ")),
        Some(true),
        "{}",
        scenario.text()
    );
    let runtime = dlp_harness::run::runner::runtime().expect("runtime");
    let outcome = runtime.block_on(run_schedule(
        &scenario,
        DriverKind::InProcess,
        Backend::Sqlite,
        3,
        &dir,
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let failure = outcome.failure.expect("the shutdown was accepted");
    assert!(
        failure.starts_with(&format!("step 3 (shutdown, line {line}): ")),
        "{failure}"
    );
    assert!(line > 1);
    assert!(
        matches!(
            outcome.error,
            Some(RunFailure::Step { index: 3, line: l, verb: "shutdown", .. }) if l == line
        ),
        "{:?}",
        outcome.error
    );
}
