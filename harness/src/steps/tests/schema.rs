//! The committed JSON Schema is the types' schema.

fn json_schema() -> String {
    crate::scenario::json_schema::<crate::steps::Step>()
}

/// The committed schema is the types' schema (regenerate with
/// `cargo run -p dlp-harness -- schema > scenarios/scenario.schema.json`).
#[test]
fn the_committed_schema_is_up_to_date() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/scenario.schema.json"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == json_schema(),
        "{path} differs from the scenario types' schema: regenerate it with \
         `cargo run -p dlp-harness -- schema > scenarios/scenario.schema.json`"
    );
}

#[test]
fn the_schema_knows_every_verb_and_refuses_unknown_keys() {
    let schema: serde_json::Value =
        serde_json::from_str(&json_schema()).expect("the schema is JSON");
    let text = schema.to_string();
    for verb in crate::steps::VERBS {
        assert!(
            text.contains(&format!("\"{verb}\"")),
            "{verb} is in the schema"
        );
    }
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false)
    );
    assert!(text.contains("\"request_close\""));
    assert!(text.contains("\"mesh\""));
}
