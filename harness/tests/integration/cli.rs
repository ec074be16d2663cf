//! The `dlp-harness` binary: `check` validates with located errors, `run` reports a failing
//! scenario with its timeline and keeps its run directory, and the exit codes tell "a scenario
//! failed" (1) from "the input is invalid" (2, usage errors included) from "the harness could
//! not start" (3).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::testkit::{DEADLINE, OutputWithin, harness, write};

const TWO_NODES: &str = "description = \"d\"\nbackends = [\"sqlite\"]\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 100_000\n";

#[test]
fn check_accepts_the_shipped_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = harness().arg("check").arg(&dir).output_within(DEADLINE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(listed >= 10, "only {listed} scenarios listed");
}

#[test]
fn check_names_file_line_and_column_of_an_invalid_step_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "bad.toml",
        &format!("{TWO_NODES}[[steps]]\npay = {{ from = \"alice\", to = \"dave\", amount = 5 }}\n"),
    );
    let out = harness().arg("check").arg(&path).output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:11:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("unknown node \"dave\""), "{stderr}");
}

/// Under the fiber policy a failed audit holds (`on_audit_failure = "hold"`): nobody closes, and
/// `expect_resolution` says FROZEN after its bound, naming what each end shows.
#[test]
fn expect_resolution_reports_a_held_channel_as_frozen_with_each_ends_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "frozen.toml",
        &format!(
            "{TWO_NODES}[[steps]]\nwait_quiescent = {{}}\n\
             [[steps]]\nbackup = {{ node = \"bob\", name = \"old\" }}\n\
             [[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 10_000 }}\n\
             [[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 10_000 }}\n\
             [[steps]]\nrestore = {{ node = \"bob\", backup = \"old\" }}\n\
             [[steps]]\nconnect = {{ from = \"alice\", to = \"bob\" }}\n\
             [[steps]]\nexpect_audit = {{ node = \"bob\", channel = \"ab\", outcome = \"failed\" }}\n\
             [[steps]]\nexpect_resolution = {{ channel = \"ab\", outcome = \"closed\", within_blocks = 2 }}\n"
        ),
    );
    let out = harness()
        .args(["run", "--backend", "sqlite"])
        .arg(&path)
        .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("step 8 (expect_resolution, line 25)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ab FROZEN: neither resumed nor closed by the nodes within 2 blocks"),
        "{stderr}"
    );
    assert!(
        stderr.contains("alice: ChannelReady, never audited; bob: Stale, its audit failed"),
        "{stderr}"
    );
}

#[test]
fn a_failing_scenario_exits_1_with_a_timeline_and_keeps_its_run_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Wrong on purpose: a restore from the latest backup passes the audit, not fails it.
    let path = write(
        dir.path(),
        "wrong.toml",
        &format!(
            "{TWO_NODES}[[steps]]\nbackup = {{ node = \"bob\", name = \"b\" }}\n\
             [[steps]]\nrestore = {{ node = \"bob\", backup = \"b\" }}\n\
             [[steps]]\nconnect = {{ from = \"alice\", to = \"bob\" }}\n\
             [[steps]]\nexpect_audit = {{ node = \"bob\", channel = \"ab\", outcome = \"failed\" }}\n"
        ),
    );
    let runs = dir.path().join("runs");
    let out = harness()
        .args(["run", "--backend", "sqlite"])
        .arg(&path)
        .env("DLP_HARNESS_RUN_DIR", &runs)
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("step 4 (expect_audit, line 17)"),
        "{stderr}"
    );
    assert!(stderr.contains("audit PASSED"), "{stderr}");
    assert!(stderr.contains("timeline:"), "{stderr}");
    assert!(stderr.contains("run directory (kept)"), "{stderr}");
    // stderr is no terminal here: the progress is plain lines, one per finished run, without
    // a bar's escape codes or carriage returns.
    assert!(
        stderr.contains("\n[1/1] wrong@sqlite[in-process] ... FAILED\n"),
        "{stderr}"
    );
    assert!(!stderr.contains(['\u{1b}', '\r']), "{stderr:?}");
    let kept: Vec<_> = std::fs::read_dir(&runs).expect("runs dir").collect();
    assert_eq!(kept.len(), 1, "the failed run's directory is kept");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| wrong@sqlite[in-process] | FAILED |"),
        "{stdout}"
    );
    assert!(
        stderr.contains("scenario ") && stderr.contains("failed (wrong@sqlite[in-process], seed "),
        "{stderr}"
    );
}

#[test]
fn sweep_refuses_a_file_without_a_sweep_table_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "plain.toml", TWO_NODES);
    let out = harness().arg("sweep").arg(&path).output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a sweep workload") && stderr.contains("plain.toml"),
        "{stderr}"
    );
}

#[test]
fn sweep_of_one_point_prints_its_table_and_writes_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let workload =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/sweeps/two_node_direct.toml");
    let json = dir.path().join("report.json");
    let out = harness()
        .args([
            "sweep",
            "--backend",
            "sqlite",
            "--policy",
            "strict",
            "--only",
            "16",
            "--json",
        ])
        .arg(&json)
        .arg(&workload)
        .env("DLP_HARNESS_RUN_DIR", dir.path())
        .output_within(DEADLINE);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("two_node_direct sqlite/strict: 1 points: 1 resumed"),
        "{stdout}"
    );
    // The point's progress line, plain (stderr is no terminal here).
    let stderr = String::from_utf8_lossy(&out.stderr);
    let points: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[   1/1] sqlite/strict #16 "))
        .collect();
    assert!(
        points.len() == 1 && points[0].contains(" resumed ("),
        "{stderr}"
    );
    assert!(!stderr.contains(['\u{1b}', '\r']), "{stderr:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(report["results"][0]["channels"][0]["verdict"], "resumed");
    assert_eq!(report["node"], "bob");
}

#[test]
fn explore_rejects_bad_options_with_exit_2() {
    let out = harness()
        .args(["explore", "--nodes", "5"])
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'5'") && stderr.contains("--nodes") && stderr.contains("2..=4"),
        "{stderr}"
    );
    let out = harness()
        .args(["explore", "--policy", "all"])
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("explore: --policy all"), "{stderr}");
}

#[test]
fn usage_errors_exit_2_listing_the_valid_values() {
    for (args, valid) in [
        (
            &["run", "--driver", "docker"][..],
            "in-process, process, container",
        ),
        (
            &["check", "--driver", "proces"][..],
            "in-process, process, container",
        ),
        (
            &["run", "--backend", "postgres"][..],
            "rocksdb, sqlite, all",
        ),
        (
            &["sweep", "w.toml", "--policy", "lax"][..],
            "fiber, strict, all",
        ),
        (
            &["explore", "--driver", "inprocess"][..],
            "in-process, process, container",
        ),
        (&["frobnicate"][..], "unrecognized subcommand"),
    ] {
        let out = harness().args(args).output_within(DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(valid), "{args:?}: {stderr}");
    }
}

#[test]
fn an_invalid_seed_in_the_environment_exits_2() {
    let out = harness()
        .args(["run", "--backend", "sqlite"])
        .env("DLP_HARNESS_SEED", "forty-two")
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DLP_HARNESS_SEED=\"forty-two\" is not an unsigned integer"),
        "{stderr}"
    );
}

#[test]
fn a_harness_that_cannot_start_its_chain_exits_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "ok.toml", TWO_NODES);
    let missing = dir.path().join("no-such-binary");
    let out = harness()
        .args(["run", "--driver", "process"])
        .arg(&path)
        .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
        .env("DLP_CHAIN_BIN", &missing)
        .env("DLP_NODE_BIN", &missing)
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the harness could not start: setup: cannot start dlp-chain serve"),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_misspelt_step_message_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "typo.toml",
        &format!(
            "{TWO_NODES}[[steps]]\nhold = {{ node = \"bob\", step = \"sent:CommitmentSinged\" }}\n"
        ),
    );
    let out = harness().arg("check").arg(&path).output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:11:1: hold: step \"sent:CommitmentSinged\": no message named \"CommitmentSinged\"; \
             messages: OpenChannel,",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn sweep_refuses_a_workload_that_restarts_its_node_and_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "restarts.toml",
        &format!("{TWO_NODES}[sweep]\nnode = \"bob\"\n[[steps]]\nrestart = {{ node = \"bob\" }}\n"),
    );
    let out = harness().arg("sweep").arg(&path).output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("restarts.toml:13:") && stderr.contains("may not stop, start or restore"),
        "{stderr}"
    );
}

#[test]
fn check_and_run_of_a_directory_without_scenarios_exit_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "README.md", "no scenarios here");
    for verb in ["check", "run"] {
        let out = harness()
            .arg(verb)
            .arg(dir.path())
            .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
            .output_within(DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{verb}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "no scenario files (*.toml) in {}",
                dir.path().display()
            )),
            "{verb}: {stderr}"
        );
    }
}

#[test]
fn check_refuses_a_fifo_named_toml_without_opening_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("pipe.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    write(dir.path(), "ok.toml", TWO_NODES);
    // A check that opened the FIFO would block on it for ever.
    let out = harness()
        .arg("check")
        .arg(dir.path())
        .output_within(Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: not a regular file (a FIFO); a scenario is a regular *.toml file",
            fifo.display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_locates_bytes_that_are_not_utf8_and_steps_with_two_verbs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"description = \"d\"\n[nodes.a\xffb]\n").expect("write");
    let two = write(
        dir.path(),
        "two.toml",
        &format!(
            "{TWO_NODES}[[steps]]\npay = {{ from = \"alice\", to = \"bob\", amount = 5 }}\n\
             mine = {{ blocks = 1 }}\n"
        ),
    );
    let out = harness()
        .arg("check")
        .arg(dir.path())
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2:9: not UTF-8 (byte 0xff at offset 26)",
            binary.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("I/O"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:11:1: a step has exactly one verb; this one has 2: pay, mine",
            two.display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_refuses_deep_nesting_huge_values_and_unbounded_counts_with_short_located_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes: Vec<String> = (0..3000).map(|i| format!("\"n{i}\"")).collect();
    let declared: String = (0..3000).map(|i| format!("[nodes.n{i}]\n")).collect();
    let cases = [
        (
            "deep.toml",
            format!("{TWO_NODES}x = {}\n", "[".repeat(100_000)),
            ":10:5: arrays and inline tables nested more than 32 deep",
        ),
        (
            "huge.toml",
            format!(
                "{TWO_NODES}[[steps]]\nmine = {{ blocks = \"{}\" }}\n",
                "9".repeat(1_000_000)
            ),
            ":11:",
        ),
        (
            "blocks.toml",
            format!("{TWO_NODES}[[steps]]\nmine = {{ blocks = 4294967296 }}\n"),
            ":11:1: mine: blocks 4294967296 must be 1 to 10000",
        ),
        (
            "mesh.toml",
            format!(
                "description = \"d\"\ntopology = {{ shape = \"mesh\", nodes = [{}], amount = 5 }}\n{declared}",
                nodes.join(", ")
            ),
            ":131:8: 3000 nodes; a scenario has at most 128",
        ),
    ];
    for (name, text, expected) in cases {
        let path = write(dir.path(), name, &text);
        let out = harness()
            .arg("check")
            .arg(&path)
            .output_within(Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("{}{expected}", path.display())),
            "{name}: {}",
            &stderr[..stderr.len().min(1000)]
        );
        let message = stderr
            .trim_end()
            .rsplit(".toml:")
            .next()
            .unwrap_or_default();
        assert!(
            message.len() < 300,
            "{name}: a message of {} bytes",
            message.len()
        );
    }
}

#[test]
fn explore_that_cannot_start_exits_3_and_writes_nothing_where_it_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-binary");
    let out = harness()
        .args([
            "explore",
            "--driver",
            "process",
            "--backend",
            "sqlite",
            "--steps",
            "2",
        ])
        .current_dir(dir.path())
        .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
        .env("DLP_CHAIN_BIN", &missing)
        .env("DLP_NODE_BIN", &missing)
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED seed 1 on sqlite: the harness could not start"),
        "{stdout}"
    );
    let written: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|name| name != "runs")
        .collect();
    assert!(written.is_empty(), "written where it ran: {written:?}");
}

#[test]
fn a_scenario_the_driver_cannot_run_is_refused_when_named_and_skipped_in_a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pausing = write(
        dir.path(),
        "pausing.toml",
        &format!(
            "{TWO_NODES}[[steps]]\npause = {{ node = \"bob\" }}\n\
             [[steps]]\nresume = {{ node = \"bob\" }}\n"
        ),
    );
    let refusal = format!(
        "{}:11:1: pause: needs pausing a node, which the driver does not offer",
        pausing.display()
    );
    // Named: asked for, so refused (exit 2) at the step's line.
    let out = harness().arg("check").arg(&pausing).output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("invalid: {refusal}")), "{stderr}");
    // The process driver can pause a node.
    let out = harness()
        .args(["check", "--driver", "process"])
        .arg(&pausing)
        .output_within(DEADLINE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Alone in a directory: nothing the driver can run is an error too.
    let out = harness()
        .arg("check")
        .arg(dir.path())
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("none of the 1 scenarios can run on the in-process driver"),
        "{stderr}"
    );
    // Next to a scenario it can run: skipped, with its reason, by check and by run.
    write(dir.path(), "plain.toml", TWO_NODES);
    let out = harness()
        .arg("check")
        .arg(dir.path())
        .output_within(DEADLINE);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("plain.toml (0 steps)"), "{stdout}");
    assert!(stdout.contains(&format!("skip  {refusal}")), "{stdout}");
    let out = harness()
        .args(["run", "--backend", "sqlite"])
        .arg(dir.path())
        .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
        .output_within(DEADLINE);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("skip  {refusal}")), "{stderr}");
    assert!(
        stdout.contains("| pausing@sqlite[in-process] | skipped (the driver cannot run it) | |"),
        "{stdout}"
    );
    assert!(stdout.contains("1 passed, 0 failed, 1 skipped"), "{stdout}");
}
