//! JSON Schemas of the tools, taken from the OpenAPI document the REST API is
//! described by, so a tool's `inputSchema` and `outputSchema` are the REST
//! body's and answer's own: one component with every component it refers
//! to gathered under `$defs` (a self-contained JSON Schema 2020-12 document,
//! which is what OpenAPI 3.1's schemas are).

use crate::router::OPENAPI_JSON;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The OpenAPI document's component schemas, parsed once per isolate.
fn components() -> &'static Map<String, Value> {
    static COMPONENTS: OnceLock<Map<String, Value>> = OnceLock::new();
    COMPONENTS.get_or_init(|| {
        serde_json::from_str::<Value>(OPENAPI_JSON)
            .ok()
            .and_then(|doc| doc["components"]["schemas"].as_object().cloned())
            .unwrap_or_default()
    })
}

const COMPONENT_REF: &str = "#/components/schemas/";

/// The formats JSON Schema 2020-12 defines (the ones kept).
const JSON_SCHEMA_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// The component `name` as a self-contained schema: its references point to
/// `#/$defs/…`, and every component reached is under `$defs`. An object
/// schema (MCP requires `type: object` at the root of both schemas).
pub(super) fn component(name: &str) -> Value {
    let mut schema = components().get(name).cloned().unwrap_or_else(|| {
        log::error!("the OpenAPI document has no component {name}");
        json!({"type": "object"})
    });
    let mut reached = BTreeSet::new();
    let mut pending = Vec::new();
    rewrite(&mut schema, &mut pending);
    let mut defs = Map::new();
    while let Some(next) = pending.pop() {
        if !reached.insert(next.clone()) {
            continue;
        }
        let Some(mut def) = components().get(&next).cloned() else {
            continue;
        };
        rewrite(&mut def, &mut pending);
        defs.insert(next, def);
    }
    if let Some(object) = schema.as_object_mut()
        && !defs.is_empty()
    {
        object.insert("$defs".to_owned(), Value::Object(defs));
    }
    schema
}

/// `component(name)` with more properties (each `(name, schema)`), which are
/// required when `required` says so.
pub(super) fn extended(name: &str, extra: &[(&str, Value, bool)]) -> Value {
    let mut schema = component(name);
    if let Some(object) = schema.as_object_mut() {
        let properties = object
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(properties) = properties {
            for (field, property, _) in extra {
                properties.insert((*field).to_owned(), property.clone());
            }
        }
        let required: Vec<Value> = extra
            .iter()
            .filter(|(_, _, required)| *required)
            .map(|(field, _, _)| json!(field))
            .collect();
        if !required.is_empty()
            && let Some(list) = object
                .entry("required")
                .or_insert_with(|| json!([]))
                .as_array_mut()
        {
            list.extend(required);
        }
    }
    schema
}

/// Points each `$ref` of `schema` at `$defs`, noting the components named;
/// drops what only documents the HTTP form (`examples`).
fn rewrite(schema: &mut Value, pending: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            object.remove("examples");
            // OpenAPI's own formats (`uint64`, `int32`, ...) are not JSON
            // Schema's: validators warn about them, and they add nothing to
            // `type` and `minimum`.
            if object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| !JSON_SCHEMA_FORMATS.contains(&format))
            {
                object.remove("format");
            }
            if let Some(Value::String(reference)) = object.get_mut("$ref")
                && let Some(name) = reference.strip_prefix(COMPONENT_REF)
            {
                pending.push(name.to_owned());
                *reference = format!("#/$defs/{name}");
            }
            for (key, value) in object.iter_mut() {
                // `properties` maps names to schemas; a property may be
                // called `examples` or `$ref`, so its names are not keywords.
                if key == "properties" {
                    if let Value::Object(properties) = value {
                        properties.values_mut().for_each(|p| rewrite(p, pending));
                    }
                } else {
                    rewrite(value, pending);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite(item, pending)),
        _ => {}
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn refs(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(r)) = object.get("$ref") {
                    found.push(r.clone());
                }
                object.values().for_each(|v| refs(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_of_a_component_resolves_inside_it() {
        for name in [
            "Message",
            "WaitResult",
            "Thread",
            "SendRequest",
            "SearchResults",
        ] {
            let schema = component(name);
            assert_eq!(schema["type"], "object", "{name}");
            let mut found = Vec::new();
            refs(&schema, &mut found);
            assert!(!found.is_empty(), "{name} refers to other components");
            for reference in found {
                let def = reference
                    .strip_prefix("#/$defs/")
                    .unwrap_or_else(|| panic!("{name}: {reference} is not local"));
                assert!(schema["$defs"].get(def).is_some(), "{name}: {def} missing");
            }
        }
    }

    #[test]
    fn an_extension_adds_its_properties_and_requirements() {
        let schema = extended("ReplyRequest", &[("id", json!({"type": "integer"}), true)]);
        assert_eq!(schema["properties"]["id"]["type"], "integer");
        let required = schema["required"].as_array().expect("required is a list");
        assert!(required.contains(&json!("id")));
    }
}
