//! The OpenAPI 3.1 document of the public API, generated from the protocol
//! types (their JSON Schemas come from schemars, so the document cannot drift
//! from what the code serializes). `cargo xtask openapi` writes it to
//! `crates/protocol/openapi.json`, which the router serves; a test checks the
//! file is current.

use crate::api::{
    Health, MarkRead, Me, Message, MessageList, MessageSummary, SignupRequest, SignupResponse,
};
use crate::limits::{DEFAULT_PAGE, MAX_JSON_BODY, MAX_PAGE};
use crate::{ApiError, SERVICE_NAME, VERSION};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The document, as JSON.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let health = generator.subschema_for::<Health>().to_value();
    let signup_request = generator.subschema_for::<SignupRequest>().to_value();
    let signup_response = generator.subschema_for::<SignupResponse>().to_value();
    let me = generator.subschema_for::<Me>().to_value();
    let list = generator.subschema_for::<MessageList>().to_value();
    let message = generator.subschema_for::<Message>().to_value();
    let summary = generator.subschema_for::<MessageSummary>().to_value();
    let mark_read = generator.subschema_for::<MarkRead>().to_value();
    let error = generator.subschema_for::<ApiError>().to_value();
    let schemas = generator.take_definitions(true);

    let json_body =
        |schema: &Value| json!({ "content": { "application/json": { "schema": schema } } });
    let ok = |description: &str, schema: &Value| {
        let mut response = json_body(schema);
        response["description"] = json!(description);
        response
    };
    let errors = |codes: &[(&str, &str)]| -> Map<String, Value> {
        codes
            .iter()
            .map(|(status, description)| {
                let mut response = json_body(&error);
                response["description"] = json!(description);
                ((*status).to_owned(), response)
            })
            .collect()
    };
    let with = |mut responses: Map<String, Value>, status: &str, response: Value| {
        responses.insert(status.to_owned(), response);
        Value::Object(responses)
    };
    let auth_errors = [
        ("401", "The API key is missing, malformed or unknown."),
        (
            "503",
            "A dependency is unavailable, or the deployment is not configured; retry later.",
        ),
    ];
    let id_errors = [
        ("400", "The message id is not a positive integer."),
        ("401", "The API key is missing, malformed or unknown."),
        ("404", "There is no such message in this inbox."),
        ("503", "A dependency is unavailable; retry later."),
    ];
    let id_param = json!({
        "name": "id", "in": "path", "required": true,
        "description": "The message id (per inbox, increasing).",
        "schema": { "type": "integer", "minimum": 1, "maximum": 9_007_199_254_740_991_u64 }
    });
    let bearer = json!([{ "bearerAuth": [] }]);

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "InboxKit",
            "version": VERSION,
            "description": format!(
                "Email for AI agents ({SERVICE_NAME}): sign up with one call, receive mail, read it over REST. \
                 Every error is {{\"error\": sentence, \"code\": snake_case}}. JSON bodies are limited to {MAX_JSON_BODY} bytes."
            ),
        },
        "paths": {
            "/api/health": { "get": {
                "operationId": "health", "summary": "Service health.",
                "responses": { "200": ok("The service answers.", &health) }
            }},
            "/api/signup": { "post": {
                "operationId": "signup",
                "summary": "Create an inbox: returns its address and API key (shown once).",
                "requestBody": { "required": false, "content": { "application/json": { "schema": signup_request } } },
                "responses": with(errors(&[
                    ("400", "Invalid body or handle (the message names the field)."),
                    ("409", "The handle is taken (`handle_taken`)."),
                    ("413", "The body is too large."),
                    ("415", "The body is not JSON."),
                    ("503", "A dependency is unavailable, or MAIL_DOMAIN is not configured."),
                ]), "201", ok("The inbox was created.", &signup_response))
            }},
            "/api/me": { "get": {
                "operationId": "me", "summary": "The inbox this key belongs to.",
                "security": bearer,
                "responses": with(errors(&auth_errors), "200", ok("The inbox.", &me))
            }},
            "/api/messages": { "get": {
                "operationId": "listMessages", "summary": "Messages, newest first.",
                "security": bearer,
                "parameters": [
                    { "name": "limit", "in": "query", "description": "Page size.",
                      "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE } },
                    { "name": "cursor", "in": "query", "description": "Only ids below this (the previous page's nextCursor).",
                      "schema": { "type": "integer", "minimum": 1 } },
                    { "name": "since", "in": "query", "description": "Only messages received after this time (RFC 3339).",
                      "schema": { "type": "string", "format": "date-time" } },
                    { "name": "unread", "in": "query", "description": "When true, only unread messages.",
                      "schema": { "type": "boolean", "default": false } }
                ],
                "responses": with(errors(&[
                    ("400", "A query parameter is invalid, unknown or repeated."),
                    auth_errors[0], auth_errors[1],
                ]), "200", ok("A page of messages.", &list))
            }},
            "/api/messages/{id}": {
                "get": {
                    "operationId": "getMessage",
                    "summary": "The whole message. Does not mark it read.",
                    "security": bearer,
                    "parameters": [id_param],
                    "responses": with(errors(&id_errors), "200", ok("The message.", &message))
                },
                "patch": {
                    "operationId": "markMessage", "summary": "Mark a message read or unread.",
                    "security": bearer,
                    "parameters": [id_param],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": mark_read } } },
                    "responses": with(errors(&[
                        ("400", "The id or the body is invalid."),
                        ("401", "The API key is missing, malformed or unknown."),
                        ("404", "There is no such message in this inbox."),
                        ("415", "The body is not JSON."),
                        ("503", "A dependency is unavailable; retry later."),
                    ]), "200", ok("The updated summary.", &summary))
                }
            },
            "/api/messages/{id}/raw": { "get": {
                "operationId": "getRawMessage", "summary": "The message exactly as received (RFC 822 bytes).",
                "security": bearer,
                "parameters": [id_param],
                "responses": with(errors(&id_errors), "200", json!({
                    "description": "The raw message.",
                    "content": { "message/rfc822": { "schema": { "type": "string", "contentMediaType": "message/rfc822" } } }
                }))
            }},
            "/api/openapi.json": { "get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": { "200": { "description": "OpenAPI 3.1.", "content": { "application/json": { "schema": { "type": "object" } } } } }
            }},
            "/llms.txt": { "get": {
                "operationId": "llmsTxt", "summary": "The API explained for an agent, in plain text.",
                "responses": { "200": { "description": "Plain text.", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            }}
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": "The apiKey from signup: `ik_` and 43 base64url characters." }
            }
        }
    })
}
