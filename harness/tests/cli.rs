//! The `dlp-harness` binary: `check` validates with located errors, `run` reports a failing
//! scenario with its timeline and keeps its run directory, and the exit codes tell "a scenario
//! failed" (1) from "a file is invalid" (2).

use std::path::Path;
use std::process::Command;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dlp-harness"))
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}

const TWO_NODES: &str = "description = \"d\"\nbackends = [\"sqlite\"]\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 100_000\n";

#[test]
fn check_accepts_the_shipped_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = harness().arg("check").arg(&dir).output().expect("run");
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
    let out = harness().arg("check").arg(&path).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:11:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("unknown node \"dave\""), "{stderr}");
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
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("step 4 (expect_audit, line 17)"),
        "{stderr}"
    );
    assert!(stderr.contains("audit PASSED"), "{stderr}");
    assert!(stderr.contains("timeline:"), "{stderr}");
    assert!(stderr.contains("run directory (kept)"), "{stderr}");
    let kept: Vec<_> = std::fs::read_dir(&runs).expect("runs dir").collect();
    assert_eq!(kept.len(), 1, "the failed run's directory is kept");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| wrong@sqlite | FAILED |"), "{stdout}");
}

#[test]
fn sweep_refuses_a_file_without_a_sweep_table_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "plain.toml", TWO_NODES);
    let out = harness().arg("sweep").arg(&path).output().expect("run");
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
        .output()
        .expect("run");
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
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(report["results"][0]["channels"][0]["verdict"], "resumed");
    assert_eq!(report["node"], "bob");
}

#[test]
fn explore_rejects_bad_options_with_exit_3() {
    let out = harness()
        .args(["explore", "--nodes", "5"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nodes 5: 2 to 4"));
}

#[test]
fn sweep_refuses_a_workload_that_restarts_its_node_and_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "restarts.toml",
        &format!("{TWO_NODES}[sweep]\nnode = \"bob\"\n[[steps]]\nrestart = {{ node = \"bob\" }}\n"),
    );
    let out = harness().arg("sweep").arg(&path).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("restarts.toml:13:") && stderr.contains("may not stop, start or restore"),
        "{stderr}"
    );
}
