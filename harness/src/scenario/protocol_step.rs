//! A protocol step as step control names it (`hold`, `backup_at`): `sent:<Message>` or
//! `received:<Message>`, the `nth` time. A misspelt message would never fire: the step would
//! wait out its deadline (or the backup never be written), so the format refuses it, listing
//! the messages there are.

use dlp_node_api::{MAX_STEP_LEN, MessageName};

use super::source::clip;
use crate::limits::MAX_NTH;

/// Check `step` and `nth` of a `verb`: the step names a message the node sends or receives,
/// at most [`MAX_STEP_LEN`] bytes (what the node's `dev_hold` accepts), and `nth` is 1 to
/// [`MAX_NTH`].
pub fn check(verb: &str, step: &str, nth: u64) -> Result<(), String> {
    let messages = MessageName::list;
    if step.len() > MAX_STEP_LEN {
        return Err(format!(
            "{verb}: step {} is longer than {MAX_STEP_LEN} bytes",
            clip(step)
        ));
    }
    match step.split_once(':') {
        Some(("sent" | "received", message)) if MessageName::from(message).is_known() => {}
        Some(("sent" | "received", message)) => {
            return Err(format!(
                "{verb}: step {}: no message named {}; messages: {}",
                clip(step),
                clip(message),
                messages()
            ));
        }
        _ => {
            return Err(format!(
                "{verb}: step {} must be sent:<Message> or received:<Message>; messages: {}",
                clip(step),
                messages()
            ));
        }
    }
    if !(1..=MAX_NTH).contains(&nth) {
        return Err(format!("{verb}: nth {nth} must be 1 to {MAX_NTH}"));
    }
    Ok(())
}
