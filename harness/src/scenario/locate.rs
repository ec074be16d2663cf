//! Where things are in a scenario's text, and errors that say so: line and column of an
//! offset, where a step's verb is written, TOML errors located (and reworded for a step with no
//! verb or several), where a key of a table is. Every message is bounded (`source.rs`).

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::facts::StepFormat;
use super::source::{self, bound_message, list};
use crate::error::HarnessError;

/// The offset of a step's own content: a `[[steps]]` table's span starts at its header, but
/// the verb is on the next line.
pub(crate) fn step_offset(text: &str, span_start: usize) -> usize {
    let rest = &text[span_start.min(text.len())..];
    if rest.starts_with("[[") {
        match rest.find('\n') {
            Some(nl) => span_start + nl + 1,
            None => span_start,
        }
    } else {
        span_start
    }
}

/// Line and column (1-based, the column in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    source::line_col(text.as_bytes(), offset)
}

/// An invalid-file error at `offset`; every value the message quotes is clipped.
pub(crate) fn invalid(path: &Path, text: &str, offset: usize, message: String) -> HarnessError {
    let (line, column) = line_col(text, offset);
    HarnessError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message: bound_message(&message),
    }
}

/// A TOML or serde error as a located message. The toml crate's words for an enum written as a
/// table with no key or several ("wanted exactly 1 element, ...") are, for a step, replaced by
/// what the file must say (a unit test pins the wording down).
pub(super) fn toml_error<S: StepFormat>(
    path: &Path,
    text: &str,
    e: &toml::de::Error,
) -> HarnessError {
    let message = e.message().trim();
    if let Some(span) = e.span() {
        if (message.starts_with("wanted exactly 1 element")
            || message.starts_with("expected table with exactly 1 entry"))
            && let Some((offset, message)) = verb_count_error(text, &span, S::verbs())
        {
            return invalid(path, text, offset, message);
        }
        return invalid(path, text, span.start, message.to_string());
    }
    invalid(path, text, 0, message.to_string())
}

/// If `span` is a step table with no verb or several, where and what to say about it.
fn verb_count_error(text: &str, span: &Range<usize>, verbs: &[&str]) -> Option<(usize, String)> {
    let doc = DeTable::parse(text).ok()?;
    let (_, steps) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == "steps")?;
    let DeValue::Array(items) = steps.get_ref() else {
        return None;
    };
    let step = items.iter().find(|item| item.span() == *span)?;
    let DeValue::Table(table) = step.get_ref() else {
        return None;
    };
    let mut keys: Vec<(usize, &str)> = table
        .iter()
        .map(|(k, _)| (k.span().start, k.get_ref().as_ref()))
        .collect();
    keys.sort_unstable();
    let names: Vec<&str> = keys.iter().map(|(_, k)| *k).collect();
    Some(match keys.first() {
        None => (
            span.start,
            format!(
                "a step has exactly one verb; this one has none (verbs: {})",
                verbs.join(", ")
            ),
        ),
        Some((first, _)) => (
            *first,
            format!(
                "a step has exactly one verb; this one has {}: {}",
                names.len(),
                list(&names)
            ),
        ),
    })
}

/// Where the `n`th (0-based) key of the top-level table `table` is written, in file order.
pub(super) fn nth_key_offset(text: &str, table: &str, n: usize) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let (_, value) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == table)?;
    let DeValue::Table(t) = value.get_ref() else {
        return None;
    };
    let mut offsets: Vec<usize> = t.iter().map(|(k, _)| k.span().start).collect();
    offsets.sort_unstable();
    offsets.get(n).copied()
}

/// Where key `key` of the top-level table `table` is written.
pub(super) fn key_offset(text: &str, table: &str, key: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let (_, value) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == table)?;
    let DeValue::Table(t) = value.get_ref() else {
        return None;
    };
    t.iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(k, _)| k.span().start)
}
