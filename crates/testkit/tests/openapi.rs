//! `GET /api/openapi.json`: generated from the protocol types, current,
//! a valid OpenAPI 3.1 document, covering every endpoint, and describing the
//! bodies the service really sends.
#![cfg(not(target_arch = "wasm32"))]

use router_worker::{HttpRequest, LLMS_TXT, MailVerdict, OPENAPI_JSON};
use serde_json::{Value as Json, json};
use testkit::TestService;

fn document() -> Json {
    serde_json::from_str(OPENAPI_JSON).unwrap_or_else(|e| panic!("openapi.json: {e}"))
}

#[test]
fn the_served_document_is_generated_from_the_protocol_types() {
    assert_eq!(
        document(),
        protocol::openapi::document(),
        "crates/protocol/openapi.json is stale: run `cargo xtask openapi` and review the diff"
    );
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let spec = oas3::from_json(OPENAPI_JSON).unwrap_or_else(|e| panic!("not OpenAPI 3.1: {e}"));
    assert_eq!(spec.openapi, "3.1.0");
    // Every $ref resolves.
    let doc = document();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {reference}");
    }
    // Each component schema is itself a valid JSON Schema (2020-12).
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert!(
            jsonschema::meta::is_valid(schema),
            "schema {name} is not valid JSON Schema"
        );
    }
}

fn collect_refs(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", Json::String(reference)) => out.push(reference.clone()),
                    _ => collect_refs(item, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

/// Validates `instance` against the schema the document gives for `path`,
/// `method` and `status`, resolving references within the document.
fn check_against(path: &str, method: &str, status: u16, instance: &Json) {
    let doc = document();
    let pointer = format!(
        "/paths/{}/{method}/responses/{status}/content/application~1json/schema",
        path.replace('~', "~0").replace('/', "~1")
    );
    let schema = doc
        .pointer(&pointer)
        .unwrap_or_else(|| panic!("no schema documented for {method} {path} {status}"));
    let mut root = doc.clone();
    // As a URI fragment, the pointer's braces must be percent-encoded.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    root["$ref"] = Json::String(format!("#{fragment}"));
    let validator = jsonschema::draft202012::new(&root).unwrap_or_else(|e| panic!("{e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: {errors:?}\n{instance}\nschema {schema}"
    );
}

fn send(service: &TestService, request: HttpRequest) -> (u16, Json) {
    let reply = service.request(&request);
    (
        reply.status,
        serde_json::from_slice(&reply.body).unwrap_or(Json::Null),
    )
}

#[test]
fn real_answers_match_their_documented_schemas() {
    let service = TestService::new();
    let (status, health) = send(&service, HttpRequest::new("GET", "/api/health"));
    check_against("/api/health", "get", status, &health);
    let signup = |body: &str| {
        HttpRequest::new("POST", "/api/signup")
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    let (status, created) = send(&service, signup(r#"{"handle":"alice"}"#));
    check_against("/api/signup", "post", status, &created);
    let (status, taken) = send(&service, signup(r#"{"handle":"alice"}"#));
    check_against("/api/signup", "post", status, &taken);
    let (status, invalid) = send(&service, signup(r#"{"handle":"-"}"#));
    check_against("/api/signup", "post", status, &invalid);

    let key = created["apiKey"].as_str().expect("a string").to_owned();
    let auth = |method: &str, path: &str| {
        HttpRequest::new(method, path).header("authorization", &format!("Bearer {key}"))
    };
    let raw = b"From: Bob <bob@example.com>\r\nSubject: hi\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n";
    assert!(matches!(
        service.deliver("b@example.com", "alice@agents.test", raw),
        MailVerdict::Accepted(1)
    ));
    for (method, path, doc_path) in [
        ("GET", "/api/me", "/api/me"),
        ("GET", "/api/messages", "/api/messages"),
        ("GET", "/api/messages?limit=0", "/api/messages"),
        ("GET", "/api/messages/1", "/api/messages/{id}"),
        ("GET", "/api/messages/9", "/api/messages/{id}"),
        ("GET", "/api/threads", "/api/threads"),
        ("GET", "/api/threads?unread=maybe", "/api/threads"),
        ("GET", "/api/threads/1", "/api/threads/{id}"),
        ("GET", "/api/threads/9", "/api/threads/{id}"),
        ("GET", "/api/threads/x", "/api/threads/{id}"),
        ("DELETE", "/api/threads/9", "/api/threads/{id}"),
    ] {
        let (status, body) = send(&service, auth(method, path));
        check_against(doc_path, &method.to_lowercase(), status, &body);
    }
    let (status, body) = send(
        &service,
        auth("PATCH", "/api/messages/1")
            .header("content-type", "application/json")
            .body(json!({"read": true}).to_string()),
    );
    check_against("/api/messages/{id}", "patch", status, &body);
    for (path, doc_path, request_body) in [
        // No relay here: a reply to outside mail is 503 `not_configured`.
        (
            "/api/messages/1/reply",
            "/api/messages/{id}/reply",
            json!({"text": "x"}),
        ),
        (
            "/api/messages/1/reply",
            "/api/messages/{id}/reply",
            json!({}),
        ),
        (
            "/api/messages/9/reply",
            "/api/messages/{id}/reply",
            json!({"text": "x"}),
        ),
        (
            "/api/messages/1/forward",
            "/api/messages/{id}/forward",
            json!({"to": "alice@agents.test", "text": "fyi"}),
        ),
        (
            "/api/messages/1/forward",
            "/api/messages/{id}/forward",
            json!({"to": []}),
        ),
    ] {
        let (status, body) = send(
            &service,
            auth("POST", path)
                .header("content-type", "application/json")
                .body(request_body.to_string()),
        );
        check_against(doc_path, "post", status, &body);
    }
    // A send to several recipients, and the sent message with their outcomes.
    let bob = service.signup("bob");
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &key,
        Some(json!({ "to": ["alice@agents.test"], "cc": "bob@agents.test", "bcc": ["ghost@agents.test"], "text": "x" })),
    );
    check_against("/api/messages", "post", status, &sent);
    service
        .kv()
        .insert("handle:ghost", &testkit::object_id("ghost"));
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &key,
        Some(json!({ "to": ["alice@agents.test"], "cc": "bob@agents.test", "bcc": ["ghost@agents.test"], "text": "x" })),
    );
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["recipients"].as_array().map(Vec::len), Some(3));
    check_against("/api/messages", "post", status, &sent);
    let path = format!("/api/messages/{}", sent["id"]);
    let (status, message) = service.call("GET", &path, &key, None);
    assert_eq!(message["recipients"], sent["recipients"]);
    check_against("/api/messages/{id}", "get", status, &message);
    let (status, _) = service.call("GET", "/api/me", &bob, None);
    assert_eq!(status, 200);
    let (status, body) = send(&service, HttpRequest::new("GET", "/api/me"));
    check_against("/api/me", "get", status, &body);
}

#[test]
fn every_documented_operation_is_served() {
    let service = TestService::new();
    let doc = document();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item
            .as_object()
            .into_iter()
            .flatten()
            .map(|(m, _)| m.to_uppercase())
        {
            operations += 1;
            let concrete = path.replace("{id}", "1").replace("{attachmentId}", "1");
            let reply = service.request(&HttpRequest::new(&method, &concrete));
            // Every error answer is JSON; the documents are served as they are.
            let code = match serde_json::from_slice::<Json>(&reply.body) {
                Ok(body) => body["code"].clone(),
                Err(_) => {
                    assert_eq!(reply.status, 200, "{method} {path} answered no JSON");
                    Json::Null
                }
            };
            assert!(
                code != "not_found" && code != "method_not_allowed",
                "{method} {path} is documented but not served: {code}"
            );
        }
    }
    assert_eq!(operations, 31);
}

#[test]
fn the_agent_guide_and_the_document_are_served_as_is() {
    let service = TestService::new();
    let reply = service.request(&HttpRequest::new("GET", "/api/openapi.json"));
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, OPENAPI_JSON.as_bytes())
    );
    let reply = service.request(&HttpRequest::new("GET", "/llms.txt"));
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(reply.body, LLMS_TXT.as_bytes());
    // The guide mentions every documented path.
    for path in document()["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(p, _)| p)
    {
        let spoken = path
            .replace("{id}", "<id>")
            .replace("{attachmentId}", "<attachmentId>");
        assert!(
            LLMS_TXT.contains(&spoken),
            "llms.txt does not explain {path}"
        );
    }
}
