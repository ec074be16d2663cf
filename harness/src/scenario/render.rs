//! Writing a scenario back out as a file: the sweep and the explorer turn what they ran into
//! plain scenario files (`scenarios/regressions/`), which `dlp-harness run` runs like any
//! other. Every step is one `[[steps]]` table with one verb and an inline table of fields.

use std::fmt::Write as _;

use dlp_node_api::OnAuditFailure;
use serde_json::Value;

use super::facts::StepFormat;
use super::file::ScenarioFile;

/// The TOML text of a scenario; `comment` (any number of lines) goes at the top as `#` lines.
/// Channels are written as `[[channels]]` (a topology is already expanded).
pub fn render<S: StepFormat>(file: &ScenarioFile<S>, comment: &str) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            let _ = writeln!(out, "# {line}");
        }
    }
    if !comment.is_empty() {
        out.push('\n');
    }
    let description = file.description.trim_end();
    if description.contains("'''") {
        let _ = writeln!(out, "description = {}", inline(&Value::from(description)));
    } else {
        // A literal string: no escapes to get wrong.
        let _ = writeln!(out, "description = '''\n{description}'''");
    }
    if let Some(backends) = &file.backends {
        let names: Vec<String> = backends
            .iter()
            .map(|b| format!("\"{}\"", b.get_ref()))
            .collect();
        let _ = writeln!(out, "backends = [{}]", names.join(", "));
    }
    if file.allow_penalties {
        out.push_str("allow_penalties = true\n");
    }
    for (name, node) in &file.nodes {
        let _ = writeln!(out, "\n[nodes.{name}]");
        if let Some(policy) = node.audit_policy {
            let _ = writeln!(out, "audit_policy = \"{policy}\"");
        }
        if let Some(on_failure) = node.on_audit_failure {
            let value = match on_failure {
                OnAuditFailure::Hold => "hold",
                OnAuditFailure::RequestClose => "request_close",
            };
            let _ = writeln!(out, "on_audit_failure = \"{value}\"");
        }
        if node.auto_backup {
            out.push_str("auto_backup = true\n");
        }
        if let Some(kb) = node.backup_space_kb {
            let _ = writeln!(out, "backup_space_kb = {kb}");
        }
        if let Some(mode) = node.mutual_stale {
            let _ = writeln!(out, "mutual_stale = \"{mode}\"");
        }
        if let Some(answer) = node.on_force_close_request {
            let _ = writeln!(out, "on_force_close_request = \"{answer}\"");
        }
        if let Some(rate) = node.fee_rate {
            let _ = writeln!(out, "fee_rate = {rate}");
        }
        if let Some(version) = &node.version {
            let _ = writeln!(out, "version = \"{version}\"");
        }
    }
    if let Some(sweep) = &file.sweep {
        let sweep = sweep.get_ref();
        let _ = writeln!(out, "\n[sweep]\nnode = \"{}\"", sweep.node);
        if sweep.restore_peers {
            let _ = writeln!(out, "restore_peers = true");
        }
    }
    for channel in &file.channels {
        let c = channel.get_ref();
        let _ = writeln!(
            out,
            "\n[[channels]]\nname = \"{}\"\nfrom = \"{}\"\nto = \"{}\"\namount = {}",
            c.name, c.from, c.to, c.amount
        );
    }
    if !file.steps.is_empty() {
        out.push('\n');
    }
    for step in &file.steps {
        let _ = writeln!(out, "[[steps]]\n{}", step_line(step.get_ref()));
    }
    out
}

/// `verb = { field = value, ... }` for one step.
fn step_line<S: StepFormat>(step: &S) -> String {
    let value = serde_json::to_value(step).unwrap_or(Value::Null);
    let Value::Object(outer) = value else {
        return format!("{} = {{}}", step.verb());
    };
    let mut line = String::new();
    for (verb, fields) in outer {
        let _ = write!(line, "{verb} = {}", inline(&fields));
    }
    line
}

fn inline(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            if map.is_empty() {
                return "{}".into();
            }
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k} = {}", inline(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(text) => {
            serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
        }
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "\"\"".into(),
    }
}
