//! Reports end to end, through the binary: a real failing scenario leaves `report.html` in its
//! kept run directory, `--junit` and `--json` name the failure and the report, `dlp-harness
//! report` writes it again, still renders a cut `events.jsonl` (marking the cut), and refuses a
//! directory that is not a run directory; `sweep --html` writes the points' table with each
//! point's scenario.

use std::path::Path;

use crate::testkit::{DEADLINE, OutputWithin, harness};

/// Wrong on purpose: a restore from the latest backup passes the audit, not fails it.
const WRONG: &str = "description = \"d\"\nbackends = [\"sqlite\"]\n[nodes.alice]\n[nodes.bob]\n\
    [[channels]]\nname = \"ab\"\nfrom = \"alice\"\nto = \"bob\"\namount = 100_000\n\
    [[steps]]\npay = { from = \"alice\", to = \"bob\", amount = 1_000 }\n\
    [[steps]]\nbackup = { node = \"bob\", name = \"b\" }\n\
    [[steps]]\nrestore = { node = \"bob\", backup = \"b\" }\n\
    [[steps]]\nconnect = { from = \"alice\", to = \"bob\" }\n\
    [[steps]]\nexpect_audit = { node = \"bob\", channel = \"ab\", outcome = \"failed\" }\n\
    [[steps]]\nmine = { blocks = 1 }\n";

#[test]
fn a_failing_run_leaves_a_report_that_junit_json_and_the_report_command_agree_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("wrong.toml");
    std::fs::write(&path, WRONG).expect("scenario");
    let (junit, json) = (dir.path().join("junit.xml"), dir.path().join("r.json"));
    let out = harness()
        .args(["run", "--seed", "5"])
        .arg(&path)
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
        .output_within(DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The terminal table as before.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| wrong@sqlite[in-process] | FAILED |"),
        "{stdout}"
    );

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    assert_eq!(results["failed"], 1);
    let result = &results["results"][0];
    assert_eq!(result["name"], "wrong@sqlite[in-process]");
    assert_eq!(result["outcome"], "failed");
    assert_eq!(result["kind"], "step");
    assert!(
        result["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("step 5 (expect_audit, line 19)")),
        "{result}"
    );
    let report = Path::new(result["report"].as_str().expect("a report path")).to_path_buf();
    let run_dir = report.parent().expect("run dir").to_path_buf();
    assert_eq!(result["run_dir"].as_str(), run_dir.to_str());
    assert!(
        stderr.contains(&format!("report: {}", report.display())),
        "{stderr}"
    );

    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert_eq!(xml.matches("<testcase ").count(), 1, "{xml}");
    assert!(xml.contains("name=\"wrong@sqlite[in-process]\""), "{xml}");
    assert!(
        xml.contains("<failure type=\"step\" message=\"step 5 (expect_audit"),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("report: {}", report.display())),
        "{xml}"
    );

    // The report, from the run directory's real files.
    let html = std::fs::read_to_string(&report).expect("report.html");
    for lane in ["alice#1", "bob#1", "bob#2"] {
        assert!(
            html.contains(&format!("data-lane=\"{lane}\"")),
            "lane {lane}"
        );
    }
    assert!(html.contains("<g class=\"arrow\""), "message arrows");
    assert!(html.contains("RevokeAndAck ab  L"), "labelled with numbers");
    assert!(
        html.contains("audit PASSED (fiber) on ab: ours L"),
        "the audit, both sides"
    );
    assert!(html.contains("<g class=\"step failed\" id=\"chart-step-5\">"));
    assert!(html.contains("<tr class=\"step-row not-run\" id=\"step-6\">"));
    assert!(html.contains("--seed 5"), "the reproduce command");
    assert!(html.contains("funding ab"), "a ledger transaction");
    assert!(
        html.contains("<details class=\"log\" data-node=\"bob\">"),
        "bob's log"
    );
    for file in [
        "run.json",
        "ledger.json",
        "bob/events.jsonl",
        "bob/node.log",
    ] {
        assert!(run_dir.join(file).is_file(), "{file}");
    }

    // Again after the fact, and with bob's events cut in the middle of their last line.
    std::fs::remove_file(&report).expect("rm");
    let events = run_dir.join("bob/events.jsonl");
    let text = std::fs::read(&events).expect("events");
    std::fs::write(&events, &text[..text.len() - 10]).expect("cut");
    let out = harness()
        .arg("report")
        .arg(&run_dir)
        .output_within(DEADLINE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        report.display().to_string()
    );
    let html = std::fs::read_to_string(&report).expect("report.html again");
    assert!(html.contains("bob/events.jsonl is cut"), "the cut is named");
    assert!(
        html.contains("<g class=\"mark cut\""),
        "and marked on the lane"
    );
    assert!(
        html.contains("data-lane=\"bob#2\""),
        "what came before it is there"
    );

    let out = harness()
        .arg("report")
        .arg(dir.path())
        .output_within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a run directory"), "{stderr}");
}

#[test]
fn sweep_html_marks_unsafe_points_and_links_each_to_its_scenario_and_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("sweep.html");
    let workload =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/sweeps/two_node_direct.toml");
    // Points 14 and 15 of this workload are UNSAFE under fiber (SWEEP.md), point 16 resumes.
    let out = harness()
        .arg("sweep")
        .arg(&workload)
        .args([
            "--backend",
            "sqlite",
            "--policy",
            "fiber",
            "--only",
            "14,15,16",
            "--jobs",
            "2",
        ])
        .arg("--html")
        .arg(&html)
        .env("DLP_HARNESS_RUN_DIR", dir.path().join("runs"))
        .output_within(DEADLINE);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).expect("sweep.html");
    assert_eq!(
        page.matches("<td class=\"verdict-UNSAFE\">").count(),
        2,
        "{page}"
    );
    assert_eq!(page.matches("<td class=\"verdict-resumed\">").count(), 1);
    for point in [14, 15, 16] {
        assert!(page.contains(&format!(
            "<a href=\"#scenario-two_node_direct-fiber-{point}\">point {point}</a>"
        )));
        assert!(page.contains(&format!(
            "<details class=\"toml\" id=\"scenario-two_node_direct-fiber-{point}\">"
        )));
    }
    assert!(
        page.contains("node = &quot;bob&quot;, nth = 5, step = &quot;received:RevokeAndAck&quot;")
    );
    // The unsafe points' runs are kept, each with its report, linked from the table.
    assert_eq!(page.matches(">report.html</a>").count(), 2, "{page}");
}
