//! The merged answer for people: the text `dlp-harness merge` prints (each workload's sweep
//! tables as `dlp-harness sweep` prints them, the explorer's seeds, what is missing, failed or
//! conflicting) and one HTML page of it all.

use std::fmt::Write as _;

use super::merge::Merged;
use super::record::Outcome;
use crate::report::{esc, page};
use crate::sweep::{Workload, render_html_body, render_text};

/// At most this many names of a long list are printed (the JSON has them all).
const SHOWN: usize = 20;

impl Merged {
    /// What `dlp-harness merge` prints.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for report in &self.reports {
            out.push_str(&render_text(report));
            let _ = writeln!(
                out,
                "{}: {} point results, {:.1} s of point runs",
                report.workload,
                report.results.len(),
                report.elapsed_ms as f64 / 1000.0
            );
        }
        if !self.explore.is_empty() {
            let failed = self
                .explore
                .iter()
                .filter(|r| !r.problems.is_empty())
                .count();
            let _ = writeln!(
                out,
                "\nexplorer: {} seed runs, {} passed, {failed} failed",
                self.explore.len(),
                self.explore.len() - failed
            );
        }
        let mut list = |title: String, items: &[String]| {
            if items.is_empty() {
                return;
            }
            let _ = writeln!(out, "\n{title}:");
            for item in items.iter().take(SHOWN) {
                let _ = writeln!(out, "  {}", item.replace('\n', "\n    "));
            }
            if items.len() > SHOWN {
                let _ = writeln!(
                    out,
                    "  ... and {} more (all in --json)",
                    items.len() - SHOWN
                );
            }
        };
        list(
            format!("FAILED TESTS ({})", self.failed_tests.len()),
            &self.failed_tests,
        );
        list(
            format!(
                "MISSING ({}: configured, but no shard's results have them; run one with \
                 cargo nextest run -p dlp-harness --test shards -E 'test(=NAME)')",
                self.missing.len()
            ),
            &self.missing,
        );
        list(
            format!("CONFLICTING ({})", self.conflicts.len()),
            &self.conflicts,
        );
        list(
            format!("UNREADABLE ({})", self.unreadable.len()),
            &self.unreadable,
        );
        list(
            format!(
                "stale ({}: results of tests the configuration does not have, ignored)",
                self.stale.len()
            ),
            &self.stale,
        );
        let reasons = self.failure_reasons();
        let _ = writeln!(
            out,
            "\nmerged {} result files: {} verdicts; {}",
            self.files,
            self.verdicts.len(),
            if reasons.is_empty() {
                "passed".to_string()
            } else {
                format!("FAILED: {}", reasons.join("; "))
            }
        );
        out
    }

    /// The merged answer as one page: each workload's sweep section, the explorer's seeds, and
    /// what is missing or conflicting.
    pub fn render_html(&self) -> String {
        let mut body = String::new();
        let failed = self.failed();
        let _ = writeln!(
            body,
            "<header><h1 class=\"verdict-{}\">{} merged shards: {}</h1><dl class=\"meta\">\
             <dt>result files</dt><dd>{}</dd><dt>verdicts</dt><dd>{}</dd></dl></header>",
            if failed { "failed" } else { "passed" },
            if failed { "✗" } else { "✓" },
            if failed { "found problems" } else { "passed" },
            self.files,
            self.verdicts.len()
        );
        let mut list = |title: &str, items: &[String]| {
            if items.is_empty() {
                return;
            }
            let _ = write!(
                body,
                "<div class=\"box failure\"><h2>{} ({})</h2><ul>",
                esc(title),
                items.len()
            );
            for item in items {
                let _ = write!(body, "<li><code>{}</code></li>", esc(item));
            }
            body.push_str("</ul></div>\n");
        };
        list("Failed tests", &self.failed_tests);
        list("Missing", &self.missing);
        list("Conflicting", &self.conflicts);
        list("Unreadable", &self.unreadable);
        for (report, workload) in self.reports.iter().zip(self.report_workloads()) {
            body.push_str("<section class=\"sweep\">");
            body.push_str(&render_html_body(report, workload));
            body.push_str("</section>\n");
        }
        if !self.explore.is_empty() {
            body.push_str(
                "<h2 id=\"explore\">Explorer seeds</h2><table class=\"sweep\"><tr><th>test</th>\
                 <th>nodes</th><th>steps</th><th>outcome</th><th>time</th></tr>",
            );
            for record in &self.explore {
                if let Outcome::Broken { why } = &record.outcome {
                    let _ = write!(
                        body,
                        "<tr><td class=\"name\">{}</td><td></td><td></td>\
                         <td class=\"verdict-ERROR\">{}</td><td></td></tr>",
                        esc(&record.test),
                        esc(why)
                    );
                } else if let Outcome::Explore {
                    nodes,
                    steps,
                    failure,
                    elapsed_ms,
                    ..
                } = &record.outcome
                {
                    let _ = write!(
                        body,
                        "<tr><td class=\"name\">{}</td><td class=\"num\">{nodes}</td>\
                         <td class=\"num\">{steps}</td><td class=\"verdict-{}\">{}</td>\
                         <td class=\"num\">{:.2} s</td></tr>",
                        esc(&record.test),
                        if failure.is_some() {
                            "ERROR"
                        } else {
                            "resumed"
                        },
                        esc(failure.as_deref().unwrap_or("passed")),
                        *elapsed_ms as f64 / 1000.0
                    );
                }
            }
            body.push_str("</table>\n");
        }
        page("merged shards", &body)
    }

    fn report_workloads(&self) -> impl Iterator<Item = &Workload> {
        self.workloads.iter().map(|w| &**w)
    }
}
