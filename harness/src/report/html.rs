//! The run report page: what failed and how to reproduce it, the message sequence chart, the
//! steps with outcome and time, who got what on the ledger, the invariants checked, and every
//! node's log (folded, filterable by node and text).

use std::fmt::Write as _;

use super::chart;
use super::load::{LogText, RunData};
use super::names::{self, Names};
use super::page::esc;
use super::record::StepOutcome;
use super::{ledger, page, svg};

/// The whole report of a run directory, as one self-contained HTML page.
pub fn render(data: &RunData) -> String {
    let record = &data.record;
    let names = Names::of(data);
    let chart = chart::build(data, &names);
    let status = record.status();
    let mut body = String::new();
    let sign = match status {
        "failed" => "✗",
        "passed" => "✓",
        _ => "…",
    };
    let _ = write!(
        body,
        "<header><h1 class=\"verdict-{status}\">{sign} {} {status}</h1>\
         <p>{}</p><dl class=\"meta\">",
        esc(&record.test_name),
        esc(&record.scenario.description)
    );
    let duration = record
        .ended_ms
        .map(|end| {
            format!(
                "{:.2} s",
                end.saturating_sub(record.started_ms) as f64 / 1000.0
            )
        })
        .unwrap_or_else(|| "unfinished".into());
    for (k, v) in [
        ("scenario", record.scenario.path.display().to_string()),
        ("backend", record.backend.clone()),
        ("driver", record.driver.clone()),
        ("seed", record.seed.to_string()),
        ("duration", duration),
        ("run directory", data.dir.display().to_string()),
    ] {
        let _ = write!(body, "<dt>{k}</dt><dd class=\"mono\">{}</dd>", esc(&v));
    }
    let _ = writeln!(
        body,
        "<dt>reproduce</dt><dd><code id=\"reproduce\">{}</code></dd></dl></header>",
        esc(&record.reproduce)
    );
    if let Some(failure) = &record.failure {
        let _ = writeln!(
            body,
            "<section class=\"box failure\" id=\"failure\"><strong>{} failure{}</strong>\
             <pre>{}</pre></section>",
            esc(&failure.kind.replace('_', " ")),
            failure
                .step
                .map(|s| format!(" at step {s}"))
                .unwrap_or_default(),
            esc(&failure.message)
        );
    }
    if !data.problems.is_empty() {
        body.push_str(
            "<section class=\"box problems\" id=\"problems\"><strong>What this report could \
             not read as expected</strong><ul>",
        );
        for p in &data.problems {
            let _ = write!(body, "<li>{}</li>", esc(p));
        }
        body.push_str("</ul></section>\n");
    }
    body.push_str(
        "<nav class=\"toc\"><a href=\"#chart-section\">chart</a><a href=\"#steps\">steps</a>\
         <a href=\"#ledger\">ledger</a><a href=\"#invariants\">invariants</a>\
         <a href=\"#logs\">logs</a><a href=\"#text-report\">text report</a></nav>\n",
    );
    let _ = writeln!(
        body,
        "<section id=\"chart-section\"><h2>Message sequence chart</h2><p class=\"legend\">\
         {} lanes (one per node run; <code>bob#2</code> is bob after a restart or restore), {} rows. \
         <span><i class=\"swatch\" style=\"background:#1f5fa8\"></i>message with the sender's and \
         the receiver's commitment numbers (L local, R remote)</span>\
         <span><i class=\"swatch\" style=\"background:#84adea\"></i>state</span>\
         <span><i class=\"swatch\" style=\"background:#6fcf97\"></i>audit passed</span>\
         <span><i class=\"swatch\" style=\"background:#f97066\"></i>audit failed</span>\
         <span><i class=\"swatch\" style=\"background:#9e77ed\"></i>backup</span>\
         <span><i class=\"swatch\" style=\"background:#fdb022\"></i>hold, ledger transaction</span>\
         <span><i class=\"swatch\" style=\"background:#fbe3e4\"></i>the failing step</span></p>",
        chart.lanes.len(),
        chart.rows.len()
    );
    body.push_str(&svg::render(&chart, record));
    body.push_str("</section>\n");
    steps(&mut body, data);
    ledger_section(&mut body, data, &names);
    invariants(&mut body, data);
    logs(&mut body, data);
    if let Some(failure) = &record.failure
        && !failure.report.is_empty()
    {
        let _ = writeln!(
            body,
            "<section id=\"text-report\"><h2>Text report</h2><details><summary>as printed \
             (failure, reproduce command, merged timeline)</summary><pre>{}</pre></details></section>",
            esc(&failure.report)
        );
    }
    let _ = write!(
        body,
        "<section><h2>Scenario file</h2><details class=\"toml\"><summary>{}</summary><pre>{}</pre>\
         </details></section>",
        esc(&record.scenario.path.display().to_string()),
        esc(&record.scenario.text)
    );
    page(&format!("{} {status}", record.test_name), &body)
}

fn steps(body: &mut String, data: &RunData) {
    let record = &data.record;
    body.push_str(
        "<section id=\"steps\"><h2>Steps</h2><table class=\"steps\"><tr><th>#</th><th>line</th>\
         <th>step</th><th>outcome</th><th>started</th><th>took</th></tr>\n",
    );
    for s in &record.steps {
        let (class, outcome) = match s.outcome {
            StepOutcome::Passed => ("passed", "passed"),
            StepOutcome::Failed => ("failed", "FAILED"),
            StepOutcome::NotRun => ("not-run", "not run"),
        };
        let started = s
            .started_ms
            .map(|t| format!("+{} ms", t.saturating_sub(record.started_ms)))
            .unwrap_or_default();
        let took = match (s.started_ms, s.ended_ms) {
            (Some(a), Some(b)) => format!("{} ms", b.saturating_sub(a)),
            _ => String::new(),
        };
        let _ = writeln!(
            body,
            "<tr class=\"step-row {class}\" id=\"step-{0}\"><td class=\"num\"><a href=\"#chart-step-{0}\">{0}</a></td>\
             <td class=\"num\">{1}</td><td><code>{2}</code></td><td class=\"outcome-{class}\">{outcome}</td>\
             <td class=\"num\">{started}</td><td class=\"num\">{took}</td></tr>",
            s.index,
            s.line,
            esc(&s.text)
        );
        if let Some(error) = &s.error {
            let _ = writeln!(
                body,
                "<tr class=\"failed\"><td></td><td colspan=\"5\"><pre>{}</pre></td></tr>",
                esc(error)
            );
        }
    }
    body.push_str("</table></section>\n");
}

fn amount(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('_');
        }
        out.push(c);
    }
    out
}

fn ledger_section(body: &mut String, data: &RunData, names: &Names) {
    body.push_str("<section id=\"ledger\"><h2>Ledger: who got what</h2>");
    let Some(ledger) = &data.ledger else {
        body.push_str(
            "<p>No ledger.json: the run did not reach its teardown, where the ledger is saved.</p>\
             </section>\n",
        );
        return;
    };
    let nodes: Vec<(String, Option<String>)> = data
        .record
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.wallet.clone()))
        .collect();
    let view = ledger::view(&ledger.transactions, names, &nodes);
    let _ = write!(
        body,
        "<p>{} transactions. The faucet created {}; unspent outputs hold {} ({}).</p>",
        ledger.transactions.len(),
        view.faucet_total,
        view.unspent_total,
        if view.faucet_total == view.unspent_total {
            "conserved"
        } else {
            "NOT conserved"
        }
    );
    body.push_str(
        "<table class=\"wallets\"><tr><th>wallet</th><th>from the faucet</th><th>in the wallet \
         at the end</th><th>change</th></tr>",
    );
    for w in &view.wallets {
        let change = i128::from(w.balance) - i128::from(w.funded);
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{change:+}</td></tr>",
            esc(&w.node),
            amount(w.funded),
            amount(w.balance)
        );
    }
    body.push_str(
        "</table><table class=\"channels\"><tr><th>channel</th><th>funding</th><th>ended by</th>\
         <th>paid to wallets</th><th>still locked</th></tr>",
    );
    for c in &view.channels {
        let paid: Vec<String> = c
            .paid
            .iter()
            .map(|(who, n)| format!("{who}: {}", amount(*n)))
            .collect();
        let ended = if c.ended.is_empty() {
            "open".to_string()
        } else {
            c.ended.join("; ")
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"{}\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&c.channel),
            amount(c.funding),
            if c.penalty { "bad" } else { "" },
            esc(&ended),
            esc(&paid.join(", ")),
            amount(c.locked)
        );
    }
    body.push_str("</table><details><summary>every transaction</summary><table><tr><th>#</th><th>block</th><th>transaction</th><th>outputs</th></tr>");
    for t in &ledger.transactions {
        let outputs: Vec<String> =
            t.tx.outputs
                .iter()
                .map(|o| {
                    let who: Vec<String> = o
                        .lock
                        .parties()
                        .iter()
                        .map(|k| names.key(&k.to_string()))
                        .collect();
                    format!("{} → {}", amount(o.amount), who.join("/"))
                })
                .collect();
        let _ = write!(
            body,
            "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            t.seq,
            t.block_height
                .map_or_else(|| "mempool".to_string(), |h| h.to_string()),
            esc(&names::tx_label(t, names)),
            esc(&outputs.join(", "))
        );
    }
    body.push_str("</table></details></section>\n");
}

fn invariants(body: &mut String, data: &RunData) {
    body.push_str("<section id=\"invariants\"><h2>Invariants</h2>");
    if data.record.invariants.is_empty() {
        body.push_str(
            "<p>None were checked: the run ended before its first check.</p></section>\n",
        );
        return;
    }
    body.push_str("<table><tr><th>invariant</th><th>rule</th><th>result</th></tr>");
    for inv in &data.record.invariants {
        let (class, result) = match (inv.checks, inv.problems.is_empty()) {
            (0, _) => ("", "not checked".to_string()),
            (n, true) => (
                "good",
                format!("held ({n} check{})", if n == 1 { "" } else { "s" }),
            ),
            (_, false) => ("bad", format!("VIOLATED: {}", inv.problems.join("; "))),
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            esc(&inv.name),
            esc(&inv.rule),
            esc(&result)
        );
    }
    body.push_str("</table></section>\n");
}

fn logs(body: &mut String, data: &RunData) {
    body.push_str("<section id=\"logs\"><h2>Logs</h2><p class=\"filters\">show: ");
    let mut any = false;
    for node in &data.nodes {
        if node.log.is_some() {
            any = true;
            let _ = write!(
                body,
                "<label><input type=\"checkbox\" value=\"{0}\" checked> {0}</label>",
                esc(&node.name)
            );
        }
    }
    if data.chain_log.is_some() {
        body.push_str("<label><input type=\"checkbox\" value=\"chain\" checked> chain</label>");
    }
    body.push_str("<input type=\"search\" placeholder=\"filter lines\"></p>");
    if !any {
        body.push_str("<p>No node wrote a log file in this run directory.</p>");
    }
    for node in &data.nodes {
        if let Some(log) = &node.log {
            log_block(body, &node.name, log);
        }
    }
    if let Some(log) = &data.chain_log {
        log_block(body, "chain", log);
    }
    body.push_str("</section>\n");
}

fn log_block(body: &mut String, node: &str, log: &LogText) {
    let _ = write!(
        body,
        "<details class=\"log\" data-node=\"{}\"><summary>{} — {} ({} lines{})</summary><div class=\"lines\">",
        esc(node),
        esc(node),
        esc(&log.path.display().to_string()),
        log.lines.len(),
        if log.omitted > 0 {
            ", earlier ones in the file"
        } else {
            ""
        }
    );
    for line in &log.lines {
        let class = if line.contains(" ERROR ") {
            "ll error"
        } else if line.contains(" WARN ") {
            "ll warn"
        } else {
            "ll"
        };
        let _ = write!(body, "<div class=\"{class}\">{}</div>", esc(line));
    }
    body.push_str("</div></details>\n");
}
