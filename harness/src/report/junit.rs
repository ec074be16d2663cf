//! `dlp-harness run --junit FILE` and `--json FILE`: the results of a run of scenarios for CI
//! pages outside nextest. One JUnit testcase per scenario x backend x driver (named as the
//! test, `audit_failure@sqlite[in-process]`), with the failure's text and the path of its
//! report; the JSON says the same for scripts.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

/// How one combination ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed {
        /// `setup`, `invalid_file`, `network`, `step`, `invariant`.
        kind: String,
        /// The failure (its first line is the JUnit message).
        message: String,
    },
    /// The driver cannot run it (the located refusal).
    Skipped {
        reason: String,
    },
}

/// One scenario x backend x driver.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// `audit_failure@sqlite[in-process]`.
    pub name: String,
    pub scenario: PathBuf,
    pub backend: String,
    pub driver: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<PathBuf>,
    /// The run's `report.html`, when its directory was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<PathBuf>,
}

/// Everything `--json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub driver: String,
    pub seed: u64,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub elapsed_ms: u64,
    pub results: Vec<RunResult>,
}

impl RunSummary {
    pub fn new(driver: &str, seed: u64, results: Vec<RunResult>, elapsed_ms: u64) -> Self {
        let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
        RunSummary {
            driver: driver.to_string(),
            seed,
            passed: count(|o| matches!(o, Outcome::Passed)),
            failed: count(|o| matches!(o, Outcome::Failed { .. })),
            skipped: count(|o| matches!(o, Outcome::Skipped { .. })),
            elapsed_ms,
            results,
        }
    }

    /// The JUnit XML document.
    pub fn junit(&self) -> String {
        let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"dlp-harness\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{}\">",
            self.results.len(),
            self.failed,
            self.skipped,
            secs(self.elapsed_ms)
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"dlp-harness run ({} driver, seed {})\" tests=\"{}\" failures=\"{}\" \
             errors=\"0\" skipped=\"{}\" time=\"{}\">",
            xml(&self.driver),
            self.seed,
            self.results.len(),
            self.failed,
            self.skipped,
            secs(self.elapsed_ms)
        );
        for r in &self.results {
            let _ = write!(
                out,
                "    <testcase classname=\"dlp-harness.{}.{}\" name=\"{}\" file=\"{}\" time=\"{}\"",
                xml(&r.driver),
                xml(&r.backend),
                xml(&r.name),
                xml(&r.scenario.display().to_string()),
                secs(r.elapsed_ms)
            );
            let report = r
                .report
                .as_ref()
                .map(|p| format!("report: {}", p.display()))
                .unwrap_or_default();
            match &r.outcome {
                Outcome::Passed => out.push_str("/>\n"),
                Outcome::Failed { kind, message } => {
                    let _ = write!(
                        out,
                        ">\n      <failure type=\"{}\" message=\"{}\">{}{}</failure>\n",
                        xml(kind),
                        xml(message.lines().next().unwrap_or_default()),
                        xml(message),
                        xml(&if report.is_empty() {
                            String::new()
                        } else {
                            format!("\n{report}")
                        })
                    );
                    if !report.is_empty() {
                        let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&report));
                    }
                    out.push_str("    </testcase>\n");
                }
                Outcome::Skipped { reason } => {
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml(reason)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// Escape for XML text and attributes; characters XML 1.0 cannot hold at all (most control
/// characters) become U+FFFD.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, outcome: Outcome) -> RunResult {
        RunResult {
            name: name.into(),
            scenario: PathBuf::from("scenarios/x.toml"),
            backend: "sqlite".into(),
            driver: "in-process".into(),
            outcome,
            elapsed_ms: 1234,
            run_dir: None,
            report: None,
        }
    }

    #[test]
    fn junit_has_one_testcase_per_result_with_failure_text_and_report_path() {
        let mut failed = result(
            "x@sqlite[in-process]",
            Outcome::Failed {
                kind: "step".into(),
                message: "step 4 (expect_audit, line 20): got <PASSED> & \u{1b}[31m\nmore".into(),
            },
        );
        failed.report = Some(PathBuf::from("/tmp/run/report.html"));
        let summary = RunSummary::new(
            "in-process",
            42,
            vec![
                result("ok@rocksdb[in-process]", Outcome::Passed),
                failed,
                result(
                    "p@sqlite[in-process]",
                    Outcome::Skipped {
                        reason: "p.toml:3:1: pause: needs pausing a node".into(),
                    },
                ),
            ],
            5000,
        );
        let xml = summary.junit();
        assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"x@sqlite[in-process]\""), "{xml}");
        assert!(
            xml.contains(
                "message=\"step 4 (expect_audit, line 20): got &lt;PASSED&gt; &amp; \u{FFFD}[31m\""
            ),
            "{xml}"
        );
        assert!(
            xml.contains("report: /tmp/run/report.html</failure>"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"p.toml:3:1: pause"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}'), "no control characters in XML");
        let json = serde_json::to_value(&summary).expect("json");
        assert_eq!(json["failed"], 1);
        assert_eq!(json["results"][1]["outcome"], "failed");
        assert_eq!(json["results"][1]["kind"], "step");
        assert_eq!(json["results"][1]["report"], "/tmp/run/report.html");
        assert_eq!(json["results"][2]["outcome"], "skipped");
    }
}
