//! The JSON Schema of the step enum, written out rather than derived: each verb's struct
//! carries its own doc comment and fields, and the schema shows each verb as a table with
//! exactly that one key, described by the verb's doc (exactly what the format accepts, and what
//! editors show).

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

/// One verb's alternative: `{ "<verb>": { ...its fields... } }`, nothing else, described by the
/// verb's own doc comment.
pub(super) fn variant<T: JsonSchema>(generator: &mut SchemaGenerator, verb: &str) -> Value {
    let mut fields = T::json_schema(generator).to_value();
    let description = fields
        .as_object_mut()
        .and_then(|fields| fields.remove("description"));
    let mut alternative = Map::new();
    if let Some(description) = description {
        alternative.insert("description".into(), description);
    }
    alternative.insert("type".into(), "object".into());
    let mut properties = Map::new();
    properties.insert(verb.to_string(), fields);
    alternative.insert("properties".into(), Value::Object(properties));
    alternative.insert("additionalProperties".into(), false.into());
    alternative.insert("required".into(), Value::Array(vec![verb.into()]));
    Value::Object(alternative)
}

/// Exactly one of `alternatives`, described.
pub(super) fn one_of(description: &str, alternatives: Vec<Value>) -> Schema {
    schemars::json_schema!({
        "description": description,
        "oneOf": alternatives,
    })
}
