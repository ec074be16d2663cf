//! Reading a scenario file without trusting it, and saying what is wrong with it in a located,
//! bounded message.
//!
//! `check` runs on whatever a directory holds: a FIFO or a device named `x.toml`, a
//! multi-megabyte paste, a binary file, a value nested thousands deep. None of that may block
//! `check`, exhaust its memory, overflow its stack or flood the terminal, so:
//! - only regular files are opened (opening a FIFO for reading blocks until a writer appears),
//!   and at most [`MAX_FILE_BYTES`] are read;
//! - bytes are decoded here, so invalid UTF-8 is an invalid file at its line and column, not an
//!   I/O error;
//! - a small scan counts the nesting of arrays and inline tables and the parts of dotted keys
//!   before the TOML parser sees the text (the parser's own recursion limit reports no position);
//! - every value echoed in a message is clipped to [`ECHO_CHARS`] characters.

use std::io::Read;
use std::path::Path;

use crate::error::HarnessError;
use crate::limits::{MAX_FILE_BYTES, MAX_KEY_PARTS, MAX_NESTING};

/// Longest echo of a value from the file in a message, in characters.
pub(crate) const ECHO_CHARS: usize = 80;

/// Longest message, as a last resort for text not clipped value by value.
const MAX_MESSAGE: usize = 1000;

/// Read a scenario file: a regular file of at most [`MAX_FILE_BYTES`].
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, HarnessError> {
    // `metadata` follows symlinks without opening anything, so a FIFO is refused before an
    // `open` could block on it.
    let meta = std::fs::metadata(path).map_err(|e| HarnessError::io(path, e))?;
    if !meta.is_file() {
        return Err(not_a_scenario(
            path,
            format!(
                "not a regular file ({}); a scenario is a regular *.toml file",
                kind(&meta.file_type())
            ),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large(path, &format!("{} bytes", meta.len())));
    }
    let file = std::fs::File::open(path).map_err(|e| HarnessError::io(path, e))?;
    let mut bytes = Vec::new();
    // The file may grow after the look: read one byte past the bound, never more.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| HarnessError::io(path, e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(path, "grew while read"));
    }
    Ok(bytes)
}

fn not_a_scenario(path: &Path, reason: String) -> HarnessError {
    HarnessError::NotAScenario {
        path: path.to_path_buf(),
        reason,
    }
}

fn too_large(path: &Path, size: &str) -> HarnessError {
    not_a_scenario(
        path,
        format!("{size}; a scenario file is at most {MAX_FILE_BYTES} bytes (1 MiB)"),
    )
}

fn kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_char_device() {
        "a character device"
    } else {
        "not a file"
    }
}

/// The text of a file, or an invalid-file error at the first byte that is not UTF-8.
pub(crate) fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, HarnessError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let (line, column) = line_col(bytes, offset);
        HarnessError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message: format!(
                "not UTF-8 (byte 0x{:02x} at offset {offset}); scenario files are UTF-8 text",
                bytes[offset]
            ),
        }
    })
}

/// Line and column (1-based, the column in characters) of a byte offset; any offset works,
/// also one inside a character or past the end.
pub(crate) fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Count characters by their first byte (UTF-8 continuation bytes are 0b10xx_xxxx).
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

/// Refuse arrays and inline tables nested more than [`MAX_NESTING`] deep, and dotted keys of
/// more than [`MAX_KEY_PARTS`] parts, at the position where the nesting or the key starts.
/// Returns the offset and the message. A scan, not a parse: strings and comments are skipped,
/// everything else is left for the TOML parser to judge.
pub(crate) fn check_nesting(text: &str) -> Result<(), (usize, String)> {
    let b = text.as_bytes();
    // Open brackets: b'[' array, b'{' inline table, b'h' table header.
    let mut open: Vec<u8> = Vec::new();
    let mut in_key = true;
    let mut key_start: Option<usize> = None;
    let mut key_parts = 1;
    let mut nesting_start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                if in_key && key_start.is_none() {
                    key_start = Some(i);
                }
                i = skip_string(b, i);
                continue;
            }
            b'\n' if open.is_empty() => {
                in_key = true;
                key_start = None;
                key_parts = 1;
            }
            b'=' if in_key => {
                in_key = false;
                key_start = None;
                key_parts = 1;
            }
            b'.' if in_key => {
                key_parts += 1;
                if key_parts > MAX_KEY_PARTS {
                    return Err((
                        key_start.unwrap_or(i),
                        format!("a key with more than {MAX_KEY_PARTS} dotted parts"),
                    ));
                }
            }
            b'[' if in_key && open.is_empty() => {
                // `[table]` or `[[array of tables]]`: a header, whose key follows.
                open.push(b'h');
                if b.get(i + 1) == Some(&b'[') {
                    i += 1;
                }
                key_start = None;
                key_parts = 1;
            }
            b'[' | b'{' => {
                let values = open.iter().filter(|&&o| o != b'h').count();
                if values == 0 {
                    nesting_start = i;
                }
                if values + 1 > MAX_NESTING {
                    return Err((
                        nesting_start,
                        format!(
                            "arrays and inline tables nested more than {MAX_NESTING} deep \
                             (the nesting starts here)"
                        ),
                    ));
                }
                open.push(c);
                in_key = c == b'{';
                key_start = None;
                key_parts = 1;
            }
            b',' if open.last() == Some(&b'{') => {
                in_key = true;
                key_start = None;
                key_parts = 1;
            }
            b']' | b'}' => {
                if open.pop() == Some(b'h') && b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
                in_key = false;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => {
                if in_key && key_start.is_none() {
                    key_start = Some(i);
                }
            }
        }
        i += 1;
    }
    Ok(())
}

/// The offset just past the string starting at `start` (basic or literal, single- or
/// multi-line); an unterminated string ends at its line (or the text's) end, for the parser to
/// report.
fn skip_string(b: &[u8], start: usize) -> usize {
    let quote = b[start];
    let escapes = quote == b'"';
    let triple = [quote; 3];
    if b[start..].starts_with(&triple) {
        let mut i = start + 3;
        while i < b.len() {
            if escapes && b[i] == b'\\' {
                i += 2;
            } else if b[i..].starts_with(&triple) {
                i += 3;
                // Up to two more quotes are part of the string (`"""a""""`).
                let mut extra = 0;
                while extra < 2 && b.get(i) == Some(&quote) {
                    i += 1;
                    extra += 1;
                }
                return i;
            } else {
                i += 1;
            }
        }
        return b.len();
    }
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            b'\n' => return i,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// `value` quoted as in a message, at most [`ECHO_CHARS`] characters of it, with its size when
/// clipped: `"aaaa…"… (1048576 bytes)`.
pub fn clip(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &value[..end], value.len()),
    }
}

/// Names for a message: at most eight, each clipped, then how many there are in all.
pub(crate) fn list<S: AsRef<str>>(names: &[S]) -> String {
    const SHOWN: usize = 8;
    let mut out: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|n| {
            let n = n.as_ref();
            if n.chars().count() > ECHO_CHARS {
                clip(n)
            } else {
                n.to_string()
            }
        })
        .collect();
    if names.len() > SHOWN {
        out.push(format!("… ({} in all)", names.len()));
    }
    out.join(", ")
}

/// `message` with every quoted value (`"..."` or `` `...` ``, as serde and `{:?}` quote them)
/// clipped to [`ECHO_CHARS`] characters, and the whole at most [`MAX_MESSAGE`] bytes.
pub(crate) fn bound_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest.as_bytes()[open];
        out.push_str(&rest[..open]);
        let inner_start = open + 1;
        let Some(len) = quoted_len(&rest[inner_start..], quote) else {
            // Unterminated: leave it to the overall bound.
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &rest[inner_start..inner_start + len];
        let q = quote as char;
        match inner.char_indices().nth(ECHO_CHARS) {
            None => {
                out.push(q);
                out.push_str(inner);
                out.push(q);
            }
            Some((end, _)) => {
                let mut shown = &inner[..end];
                // Do not leave half an escape just before the closing quote.
                let backslashes = shown.len() - shown.trim_end_matches('\\').len();
                if backslashes % 2 == 1 {
                    shown = &shown[..shown.len() - 1];
                }
                out.push(q);
                out.push_str(shown);
                out.push(q);
                out.push_str(&format!("… ({} bytes)", inner.len()));
            }
        }
        rest = &rest[inner_start + len + 1..];
    }
    out.push_str(rest);
    if out.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        let total = out.len();
        out.truncate(end);
        out.push_str(&format!("… (message of {total} bytes)"));
    }
    out
}

/// Length of the quoted text up to its closing `quote` (a `"` may be escaped with `\`).
fn quoted_len(text: &str, quote: u8) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if quote == b'"' => i += 2,
            c if c == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_at_any_offset() {
        let text = "ab\nçd\n".as_bytes();
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 5), (2, 2), "ç is one character of two bytes");
        assert_eq!(line_col(text, 4), (2, 2), "inside a character");
        assert_eq!(line_col(text, 99), (3, 1), "past the end");
    }

    #[test]
    fn the_nesting_scan_skips_strings_and_comments_and_knows_headers() {
        let ok = "a = \"[[[[\" # [[[[\n[[steps]]\nb = { c = [1, [2]], d.e = 'x.y' }\n\
                  s = '''\n[[[\n'''\nt = \"\"\"q\"\"\"\"\n[nodes.alice]\n";
        assert_eq!(check_nesting(ok), Ok(()));
        let deep = format!("a = 1\nb = {}", "[".repeat(100_000));
        let (offset, message) = check_nesting(&deep).expect_err("too deep");
        assert_eq!(offset, 10, "where the nesting starts");
        assert!(message.contains("nested more than 32 deep"), "{message}");
        let dotted = format!("x = 1\n{} = 1\n", vec!["k"; 100].join("."));
        let (offset, message) = check_nesting(&dotted).expect_err("too many parts");
        assert_eq!(offset, 6);
        assert!(message.contains("more than 32 dotted parts"), "{message}");
        let header = format!("[{}]\n", vec!["k"; 100].join("."));
        assert!(check_nesting(&header).is_err());
        // Floats and dates are values, not keys.
        assert_eq!(check_nesting("a = 1.5\nb = { c = 2.5, d = 3.5 }\n"), Ok(()));
    }

    #[test]
    fn messages_clip_every_quoted_value() {
        let huge = "x".repeat(1 << 20);
        let message = bound_message(&format!(
            "invalid type: string {huge:?}, expected u64; unknown field `{huge}`"
        ));
        assert!(message.len() < 300, "{} bytes: {message}", message.len());
        assert!(message.contains("(1048576 bytes)"), "{message}");
        assert!(message.ends_with("expected u64; unknown field `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`… (1048576 bytes)"), "{message}");
        assert_eq!(bound_message("short \"q\" `b`"), "short \"q\" `b`");
        let unquoted = bound_message(&"y".repeat(5000));
        assert!(unquoted.len() < MAX_MESSAGE + 40, "{}", unquoted.len());
        assert!(clip(&huge).len() < 120);
        assert_eq!(clip("bob"), "\"bob\"");
        let many: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
        assert_eq!(
            list(&many),
            "n0, n1, n2, n3, n4, n5, n6, n7, … (100 in all)"
        );
    }
}
