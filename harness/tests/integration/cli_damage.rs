//! `dlp-harness sweep --damage` from the command line: the summary line per backend, the exit
//! code, the JSON report, and the regression it writes for a SILENT case, which then runs green
//! against the node with its digest check (the restore it replays is refused).

use std::path::Path;

use crate::testkit::{DEADLINE, OutputWithin, harness};

fn workload() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/sweeps/two_node_direct.toml")
}

#[test]
fn a_damage_sweep_prints_its_counts_per_backend_and_exits_0_without_silent_cases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("damage.json");
    let out = harness()
        .args([
            "sweep", "--damage", "--points", "1", "--places", "1", "--json",
        ])
        .arg(&json)
        .arg(workload())
        .env("DLP_HARNESS_RUN_DIR", dir.path())
        .output_within(DEADLINE);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for backend in ["rocksdb", "sqlite"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("damage two_node_direct {backend}: ")))
            .unwrap_or_else(|| panic!("no summary line for {backend}\n{stdout}"));
        assert!(line.ends_with(" benign, 0 SILENT"), "{line}");
    }
    assert!(stdout.contains(" cases/s)"), "{stdout}");
    // The sample is said, with the points it drew.
    assert!(
        stderr.contains("16 backup points, trying 1 (seeded sample: #"),
        "{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(report["backends"][1]["backend"], "sqlite");
    assert!(report["backends"][1]["cases"][0]["verdict"].is_string());
}

#[test]
fn without_digests_it_exits_1_and_its_regression_replays_the_damage_and_passes_with_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let regressions = dir.path().join("regressions");
    let out = harness()
        .args([
            "sweep",
            "--damage",
            "--bypass-digests",
            "--backend",
            "sqlite",
            "--points",
            "1",
            "--places",
            "1",
            "--write-regressions",
        ])
        .arg(&regressions)
        .arg(workload())
        .env("DLP_HARNESS_RUN_DIR", dir.path())
        .output_within(DEADLINE);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("DIGESTS BYPASSED"), "{stderr}");
    let written: Vec<_> = std::fs::read_dir(&regressions)
        .expect("regressions written")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!written.is_empty(), "{stdout}\n{stderr}");
    // With the digests in place, each replayed damage is refused.
    let run = harness()
        .arg("run")
        .args(&written)
        .env("DLP_HARNESS_RUN_DIR", dir.path())
        .output_within(DEADLINE);
    assert!(
        run.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn damage_options_need_damage() {
    for args in [
        vec!["sweep", "--points", "2"],
        vec!["sweep", "--bypass-digests"],
        vec!["sweep", "--damage", "--only", "1"],
        vec!["sweep", "--damage", "--places", "0"],
    ] {
        let out = harness()
            .args(&args)
            .arg(workload())
            .output_within(DEADLINE);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
