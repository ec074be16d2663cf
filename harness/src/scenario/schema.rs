//! The JSON Schema of the scenario format, generated from the types a file deserialises into
//! (`file.rs`, `topology.rs`; their doc comments become the descriptions editors show), so it
//! cannot say something the harness does not accept. It is committed as
//! `scenarios/scenario.schema.json` for TOML editors (taplo, Even Better TOML: see
//! `.taplo.toml`); `dlp-harness schema --check FILE` and a test fail when the two drift apart.
//!
//! The node's settings enums are described by mirrors (`settings.rs`).

use schemars::JsonSchema;

use super::ScenarioFile;

/// The schema of scenarios with steps of type `S`, as committed: pretty JSON with a trailing
/// newline.
pub fn json_schema<S: JsonSchema + serde::Serialize>() -> String {
    let mut schema = schemars::schema_for!(ScenarioFile<S>);
    schema.insert(
        "title".into(),
        "dlp-harness scenario (scenarios/*.toml)".into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
