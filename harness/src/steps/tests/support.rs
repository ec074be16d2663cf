//! Helpers the format's unit tests share: a scenario made of a base text and steps,
//! and the located refusal of one.

use std::path::Path;

use crate::error::HarnessError;
use crate::steps::Scenario;

/// Parse `base` followed by each of `steps` as its own `[[steps]]` table.
pub(crate) fn parse_steps(base: &str, steps: &[&str]) -> Result<Scenario, HarnessError> {
    let steps: String = steps.iter().map(|s| format!("[[steps]]\n{s}\n")).collect();
    Scenario::parse(Path::new("t.toml"), &format!("{base}{steps}"))
}

/// The line and message of the refusal of `base` with `steps`.
pub(crate) fn refused_steps(base: &str, steps: &[&str]) -> (usize, String) {
    match parse_steps(base, steps) {
        Err(HarnessError::Invalid { line, message, .. }) => (line, message),
        other => panic!("expected a located refusal, got {other:?}"),
    }
}

/// Each step of `scenario` as its debug text: what a round trip through `render` must keep.
pub(crate) fn step_texts(scenario: &Scenario) -> Vec<String> {
    scenario
        .file
        .steps
        .iter()
        .map(|s| format!("{:?}", s.get_ref()))
        .collect()
}
