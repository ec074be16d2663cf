//! `sweep --html FILE`: the sweep as one self-contained page: per backend and policy the table
//! of backup points (step, numbers, expected, outcome) with UNSAFE, LOST, MISMATCH and ERROR
//! cells marked, each point linking to its generated scenario (embedded in the page, so the
//! link works after the run directories are gone) and, when its run directory was kept, to the
//! run's `report.html`. `sweep --damage --html FILE`: the damage sweep's cases, SILENT marked.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use dlp_node_api::AuditPolicy;

use super::report::{combos, row, summary_lines};
use super::workload::point_scenario;
use super::{CaseVerdict, DamageReport, PointResult, SweepReport, Workload};
use crate::report::{REPORT_FILE, esc, page};
use crate::steps::Scenario;

/// The page.
pub fn render_html(report: &SweepReport, workload: &Workload) -> String {
    page(
        &format!("sweep {}", report.workload),
        &render_html_body(report, workload),
    )
}

/// The page's body: a section of its own on a page of several sweeps (`dlp-harness merge`).
pub fn render_html_body(report: &SweepReport, workload: &Workload) -> String {
    let failed = report.failed();
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><h1 class=\"verdict-{}\">{} sweep of {} (node {}) {}</h1><dl class=\"meta\">\
         <dt>workload</dt><dd class=\"mono\">{}</dd><dt>driver</dt><dd>{}</dd><dt>seed</dt><dd>{}</dd>\
         <dt>point runs</dt><dd>{} in {:.1} s</dd></dl></header>\n<ul class=\"summary\">",
        if failed { "failed" } else { "passed" },
        if failed { "✗" } else { "✓" },
        esc(&report.workload),
        esc(&report.node),
        if failed { "found problems" } else { "passed" },
        esc(&report.path.display().to_string()),
        esc(&report.driver),
        report.seed,
        report.results.len(),
        report.elapsed_ms as f64 / 1000.0
    );
    for line in summary_lines(report) {
        let _ = write!(body, "<li>{}</li>", esc(&line));
    }
    body.push_str("</ul>\n");
    for d in &report.disagreements {
        let _ = write!(
            body,
            "<p class=\"box failure\">BACKENDS DISAGREE: {}</p>",
            esc(d)
        );
    }
    for (backend, policy) in combos(report) {
        let rows: Vec<&PointResult> = report
            .results
            .iter()
            .filter(|r| r.backend == backend && r.policy == policy)
            .collect();
        let _ = writeln!(
            body,
            "<h2 id=\"{}-{backend}-{policy}\">{} @ {}, policy {}: {} backup points</h2>\
             <table class=\"sweep\"><tr><th>#</th><th>step</th><th>channel</th><th>backup L/R</th>\
             <th>peer PL/PR</th><th>expected</th><th>outcome</th><th>time</th><th>scenario</th>\
             <th>run</th></tr>",
            esc(&report.workload),
            esc(&report.workload),
            esc(&backend),
            esc(&policy),
            rows.len()
        );
        for r in rows {
            point_rows(&mut body, &report.workload, r);
        }
        body.push_str("</table>\n");
    }
    scenarios(&mut body, report, workload);
    body
}

fn point_rows(body: &mut String, workload: &str, r: &PointResult) {
    let cells = row(r);
    let span = cells.len();
    for (i, [channel, backup, peer, expected, outcome]) in cells.into_iter().enumerate() {
        let verdict = outcome
            .split(|c: char| c == ':' || c.is_whitespace())
            .next()
            .unwrap_or_default()
            .to_string();
        body.push_str("<tr>");
        if i == 0 {
            let _ = write!(
                body,
                "<td class=\"num\" rowspan=\"{span}\">{}</td><td rowspan=\"{span}\"><code>{}#{}</code></td>",
                r.point.index,
                esc(&r.point.step),
                r.point.nth
            );
        }
        let _ = write!(
            body,
            "<td class=\"name\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"name\">{}</td>\
             <td class=\"verdict-{}\">{}</td>",
            esc(&channel),
            esc(&backup),
            esc(&peer),
            esc(&expected),
            esc(&verdict),
            esc(&outcome)
        );
        if i == 0 {
            let run = r
                .run_dir
                .as_ref()
                .and_then(|d| {
                    ["run", "run-2", "run-3"]
                        .iter()
                        .map(|n| d.join(n).join(REPORT_FILE))
                        .rfind(|p| p.is_file())
                })
                .map(|p| {
                    format!(
                        "<a href=\"file://{}\">report.html</a>",
                        esc(&p.display().to_string())
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                body,
                "<td class=\"num\" rowspan=\"{span}\">{:.2} s</td><td rowspan=\"{span}\">\
                 <a href=\"#scenario-{}-{}-{}\">point {}</a></td><td rowspan=\"{span}\">{run}</td>",
                r.elapsed_ms as f64 / 1000.0,
                esc(workload),
                esc(&r.policy),
                r.point.index,
                r.point.index
            );
        }
        body.push_str("</tr>\n");
    }
}

/// Every point's generated scenario, once per policy (the backends run the same file).
fn scenarios(body: &mut String, report: &SweepReport, workload: &Workload) {
    body.push_str(&format!(
        "<h2 id=\"scenarios-{0}\">Generated scenarios of {0}</h2><p>Each point's scenario, as \
             the sweep wrote it into the point's run directory (<code>point.toml</code>); run one \
             with <code>dlp-harness run point.toml --backend B --seed S</code>.</p>\n",
        esc(&report.workload)
    ));
    let workload = &workload.clone().pinned(report.order.clone());
    let mut done = BTreeSet::new();
    for r in &report.results {
        if !done.insert((r.policy.clone(), r.point.index)) {
            continue;
        }
        let Ok(policy) =
            serde_json::from_value::<AuditPolicy>(serde_json::Value::String(r.policy.clone()))
        else {
            continue;
        };
        let mut file = point_scenario(workload, policy, &r.point);
        file.allow_penalties = true;
        let text = Scenario::generated(std::path::Path::new("point.toml"), &file, "").map_or_else(
            |e| format!("(cannot render: {e})"),
            |s| s.text().to_string(),
        );
        let _ = writeln!(
            body,
            "<details class=\"toml\" id=\"scenario-{}-{}-{}\"><summary>point {} under {}: {}</summary>\
             <pre>{}</pre></details>",
            esc(&report.workload),
            esc(&r.policy),
            r.point.index,
            r.point.index,
            esc(&r.policy),
            esc(&r.point.label()),
            esc(&text)
        );
    }
}

/// `sweep --damage --html FILE`: the damage sweep's summary lines, its table per backend (file
/// and way, cases counted by verdict) and every SILENT case with what was done and how the
/// restored node differed.
pub fn render_damage_html(report: &DamageReport) -> String {
    let failed = report.failed();
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><h1 class=\"verdict-{}\">{} damage sweep of {} (node {}){}</h1><dl class=\"meta\">\
         <dt>workload</dt><dd class=\"mono\">{}</dd><dt>driver</dt><dd>{}</dd><dt>seed</dt><dd>{}</dd>\
         <dt>cases</dt><dd>{} in {:.1} s</dd></dl></header>\n<ul class=\"summary\">",
        if failed { "failed" } else { "passed" },
        if failed { "✗" } else { "✓" },
        esc(&report.workload),
        esc(&report.node),
        if report.bypass_digests {
            " with digests bypassed"
        } else {
            ""
        },
        esc(&report.path.display().to_string()),
        esc(&report.driver),
        report.seed,
        report.cases(),
        report.elapsed_ms as f64 / 1000.0
    );
    for line in report.summary_lines() {
        let _ = write!(body, "<li>{}</li>", esc(&line));
    }
    body.push_str("</ul>\n");
    for b in &report.backends {
        let _ = writeln!(
            body,
            "<h2 id=\"{0}\">{0}: {1} of {2} backup points</h2>\
             <table class=\"sweep\"><tr><th>point</th><th>file</th><th>how</th><th>damage</th>\
             <th>verdict</th><th>detail</th></tr>",
            esc(&b.backend),
            b.points_tried.len(),
            b.points_found
        );
        for c in &b.cases {
            let class = match c.verdict {
                CaseVerdict::Silent => " class=\"verdict-failed\"",
                CaseVerdict::Refused | CaseVerdict::Benign => "",
            };
            let _ = writeln!(
                body,
                "<tr{class}><td>#{} {}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                c.point,
                esc(&c.point_label),
                esc(&c.file),
                c.how,
                esc(&c.damage),
                c.verdict,
                esc(&c.detail)
            );
        }
        body.push_str("</table>\n");
        for e in &b.errors {
            let _ = write!(body, "<p class=\"box failure\">ERROR: {}</p>", esc(e));
        }
    }
    page(&format!("damage sweep {}", report.workload), &body)
}
