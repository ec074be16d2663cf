//! `dlp-harness run --jobs N`: runs go in parallel, yet the lines come one per run in the order
//! of the selection, a failure's report in its place, and the summary, JUnit and JSON list the
//! runs in that order too.

use crate::testkit::{DEADLINE, OutputWithin, harness, write};

const TWO_NODES: &str = "backends = [\"sqlite\"]\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 100_000\n";

/// A scenario that pays `payments` times, then checks bob's balance.
fn scenario(payments: usize) -> String {
    let mut text = format!("description = \"d\"\n{TWO_NODES}");
    for _ in 0..payments {
        text.push_str("[[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 1_000 }\n");
    }
    let local = payments * 1_000;
    text.push_str(&format!(
        "[[steps]]\nexpect_balance = {{ node = \"bob\", channel = \"ab\", local = {local} }}\n"
    ));
    text
}

#[test]
fn parallel_runs_print_in_the_order_of_the_selection() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The longest first, so with 3 jobs the others finish before it; the failure is second (bob
    // pays with nothing on his side: the payment fails at once).
    write(dir.path(), "a_long.toml", &scenario(12));
    write(
        dir.path(),
        "b_fails.toml",
        &format!(
            "description = \"d\"\n{TWO_NODES}[[steps]]\npay = {{ from = \"bob\", to = \"alice\", amount = 5_000 }}\n"
        ),
    );
    write(dir.path(), "c_short.toml", &scenario(1));
    write(dir.path(), "d_short.toml", &scenario(0));
    let json = dir.path().join("results.json");
    let out = harness()
        .args(["run", "-j", "3", "--json"])
        .arg(&json)
        .arg(dir.path())
        .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
        .output_within(DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    for (line, (n, name, result)) in lines.iter().zip([
        (1, "a_long", "ok"),
        (2, "b_fails", "FAILED"),
        (3, "c_short", "ok"),
        (4, "d_short", "ok"),
    ]) {
        assert!(
            line.starts_with(&format!("[{n}/4] {name}@sqlite[in-process] ... {result}")),
            "line {n}: {line}\n{stderr}"
        );
    }
    // The failure's report sits right under its line, before the third run's line.
    let failed = stderr.find("[2/4] b_fails").expect("failed line");
    let third = stderr.find("[3/4] c_short").expect("third line");
    let report = stderr.find("step 1 (pay").expect("the failure's report");
    assert!(failed < report && report < third, "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    let names: Vec<&str> = json["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "a_long@sqlite[in-process]",
            "b_fails@sqlite[in-process]",
            "c_short@sqlite[in-process]",
            "d_short@sqlite[in-process]"
        ]
    );
}

#[test]
fn jobs_must_be_a_positive_number() {
    let out = harness()
        .args(["run", "-j", "0", "scenarios"])
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--jobs"), "{stderr}");
}
