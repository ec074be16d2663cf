//! `dlp-harness gate` from the command line, on a small gate file (two scenarios in process, one
//! explorer seed): `--accept` writes the baseline, the same run then passes against it, and a
//! baseline with one verdict changed fails the gate naming exactly that verdict.

use std::path::Path;

use crate::testkit::{DEADLINE, OutputWithin, harness, write};

fn gate(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = harness()
        .arg("gate")
        .arg(dir.join("gate.toml"))
        .args(args)
        .env("DLP_HARNESS_RUN_DIR", dir)
        .output_within(DEADLINE);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_gate_accepts_a_baseline_passes_against_it_and_names_a_changed_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    write(
        dir.path(),
        "gate.toml",
        &format!(
            "baseline = \"baseline.json\"\n[scenarios]\npaths = [{:?}, {:?}]\n\
             drivers = [\"in-process\"]\n[explore]\nseeds = 1\nsteps = 4\n",
            scenarios.join("audit_success.toml"),
            scenarios.join("paused_node_while_peer_restored.toml"),
        ),
    );
    let (code, stdout, stderr) = gate(dir.path(), &[]);
    assert_eq!(code, Some(2), "no baseline yet\n{stdout}\n{stderr}");
    assert!(stderr.contains("--accept"), "{stderr}");

    let (code, stdout, stderr) = gate(dir.path(), &["--accept"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let baseline = std::fs::read_to_string(dir.path().join("baseline.json")).expect("written");
    for (key, verdict) in [
        ("scenario audit_success@rocksdb[in-process]", "passed"),
        ("scenario audit_success@sqlite[in-process]", "passed"),
        // pause needs a driver that can freeze a node.
        (
            "scenario paused_node_while_peer_restored@sqlite[in-process]",
            "skipped",
        ),
        ("explore seed 1 sqlite", "passed"),
    ] {
        assert!(
            baseline.contains(&format!("\"{key}\": \"{verdict}\"")),
            "{key}: {verdict}\n{baseline}"
        );
    }

    let (code, stdout, stderr) = gate(dir.path(), &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 change(s) against"), "{stdout}");

    // One verdict changed in a copy: the gate fails and names it, in the tables' words.
    let changed = baseline.replace(
        "\"scenario audit_success@sqlite[in-process]\": \"passed\"",
        "\"scenario audit_success@sqlite[in-process]\": \"failed\"",
    );
    assert_ne!(changed, baseline);
    write(dir.path(), "changed.json", &changed);
    let copy = dir.path().join("changed.json");
    let (code, stdout, stderr) = gate(
        dir.path(),
        &["--baseline", copy.to_str().expect("utf-8 path")],
    );
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let changes: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("CHANGED "))
        .collect();
    assert_eq!(
        changes,
        ["CHANGED scenario audit_success@sqlite[in-process]: failed -> passed"],
        "{stdout}"
    );
}
