//! What a gate run leaves for CI and for a reviewer besides its lines: JUnit (one test case per
//! verdict; a changed, new, gone, flaky or unjudged one is a failure saying what changed) and
//! one self-contained HTML page (the changes first, then every verdict in a table).

use std::fmt::Write as _;

use super::verdicts::{Change, Verdicts};

/// A verdict's key, the key's change (if any) against the baseline.
fn change_of<'a>(changes: &'a [Change], key: &str) -> Option<&'a Change> {
    changes.iter().find(|c| match c {
        Change::Changed { key: k, .. }
        | Change::New { key: k, .. }
        | Change::Gone { key: k, .. } => k == key,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The JUnit report: suite `dlp-harness gate`, a case per verdict (and per verdict the baseline
/// had that this run did not judge), class = the key's kind (`scenario`, `sweep`, `explore`,
/// ...). `errors` (what could not be judged) are failed cases of their own.
pub fn junit(verdicts: &Verdicts, changes: &[Change], errors: &[String], seconds: f64) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    let mut case = |key: &str, failure: Option<String>| {
        let class = key.split_whitespace().next().unwrap_or("gate");
        let _ = write!(
            cases,
            "    <testcase classname=\"gate.{}\" name=\"{}\"",
            escape(class),
            escape(key)
        );
        match failure {
            None => cases.push_str("/>\n"),
            Some(message) => {
                failures += 1;
                let _ = writeln!(
                    cases,
                    ">\n      <failure message=\"{}\"/>\n    </testcase>",
                    escape(&message)
                );
            }
        }
    };
    for (key, verdict) in verdicts {
        let failure = match (verdict.as_str(), change_of(changes, key)) {
            ("flaky", _) => Some("flaky: failed, then passed with the same seed".to_string()),
            (_, Some(change)) => Some(format!("CHANGED {change}")),
            _ => None,
        };
        case(key, failure);
    }
    for change in changes {
        if let Change::Gone { key, .. } = change {
            case(key, Some(format!("CHANGED {change}")));
        }
    }
    for (i, error) in errors.iter().enumerate() {
        case(&format!("error {}", i + 1), Some(error.clone()));
    }
    let total = verdicts.len()
        + changes
            .iter()
            .filter(|c| matches!(c, Change::Gone { .. }))
            .count()
        + errors.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"dlp-harness gate\" \
         tests=\"{total}\" failures=\"{failures}\" time=\"{seconds:.3}\">\n  <testsuite \
         name=\"dlp-harness gate\" tests=\"{total}\" failures=\"{failures}\" \
         time=\"{seconds:.3}\">\n{cases}  </testsuite>\n</testsuites>\n"
    )
}

/// One HTML page: the outcome, the changes against the baseline, what could not be judged, then
/// every verdict (changed ones marked).
pub fn html(
    verdicts: &Verdicts,
    changes: &[Change],
    errors: &[String],
    baseline: &str,
    seconds: f64,
) -> String {
    let flaky = verdicts.values().filter(|v| *v == "flaky").count();
    let passed = changes.is_empty() && errors.is_empty() && flaky == 0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>dlp-harness gate</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:13px}}\
         .changed{{background:#fdd}}.ok{{color:#070}}.bad{{color:#b00}}</style></head><body>\n\
         <h1>dlp-harness gate: <span class=\"{}\">{}</span></h1>\n<p>{} verdicts in {:.1} s, \
         compared with {}: {} change(s), {} flaky, {} not judged.</p>\n",
        if passed { "ok" } else { "bad" },
        if passed { "passed" } else { "FAILED" },
        verdicts.len(),
        seconds,
        escape(baseline),
        changes.len(),
        flaky,
        errors.len()
    );
    if !changes.is_empty() {
        out.push_str("<h2>Changes</h2>\n<ul>\n");
        for change in changes {
            let _ = writeln!(out, "<li>{}</li>", escape(&change.to_string()));
        }
        out.push_str("</ul>\n");
    }
    if !errors.is_empty() {
        out.push_str("<h2>Not judged</h2>\n<ul>\n");
        for error in errors {
            let _ = writeln!(out, "<li><pre>{}</pre></li>", escape(error));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Verdicts</h2>\n<table><tr><th>what</th><th>verdict</th></tr>\n");
    for (key, verdict) in verdicts {
        let changed = change_of(changes, key).is_some() || verdict == "flaky";
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td></tr>",
            if changed { " class=\"changed\"" } else { "" },
            escape(key),
            escape(verdict)
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::compare;

    #[test]
    fn a_changed_verdict_is_a_junit_failure_and_marked_on_the_page() {
        let baseline: Verdicts = [
            (
                "scenario a@rocksdb[process]".to_string(),
                "passed".to_string(),
            ),
            ("sweep w #1".to_string(), "held".to_string()),
        ]
        .into();
        let now: Verdicts = [
            (
                "scenario a@rocksdb[process]".to_string(),
                "passed".to_string(),
            ),
            ("sweep w #1".to_string(), "UNSAFE".to_string()),
        ]
        .into();
        let changes = compare(&baseline, &now);
        let xml = junit(&now, &changes, &["a crash".into()], 1.5);
        assert!(xml.contains("tests=\"3\" failures=\"2\""), "{xml}");
        assert!(
            xml.contains("<failure message=\"CHANGED sweep w #1: held -&gt; UNSAFE\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"scenario a@rocksdb[process]\"/>"),
            "{xml}"
        );
        let page = html(&now, &changes, &[], "gate-baseline.json", 1.5);
        assert!(page.contains("FAILED"), "{page}");
        assert!(
            page.contains("<tr class=\"changed\"><td>sweep w #1</td><td>UNSAFE</td></tr>"),
            "{page}"
        );
        let same = html(&baseline, &[], &[], "gate-baseline.json", 1.0);
        assert!(
            same.contains("passed") && !same.contains("class=\"changed\""),
            "{same}"
        );
    }
}
