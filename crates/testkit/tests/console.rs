//! The web console, as the whole service serves it: its page and files at
//! `/` and `/console/...` with the strict policy, nothing else under
//! `/console/`, and a console that calls documented API operations only.
//! (The console's behaviour in a browser is the e2e `console` check.)
#![cfg(not(target_arch = "wasm32"))]

use router_worker::HttpRequest;
use router_worker::console::{ASSETS, index};
use serde_json::Value as Json;
use testkit::TestService;

#[test]
fn the_console_is_served_at_the_root_and_under_console() {
    let service = TestService::new();
    for path in ["/", "/console", "/console/"] {
        let reply = service.request(&HttpRequest::new("GET", path));
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.body, index().body.as_bytes(), "{path}");
        assert_eq!(
            reply.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let csp = reply
            .header("content-security-policy")
            .expect("the page's policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
    }
    for asset in ASSETS {
        let reply = service.request(&HttpRequest::new("GET", asset.path));
        assert_eq!(reply.status, 200, "{}", asset.path);
        assert_eq!(reply.header("content-type"), Some(asset.content_type));
        let tag = reply.header("etag").expect("an etag").to_owned();
        let again =
            service.request(&HttpRequest::new("GET", asset.path).header("if-none-match", &tag));
        assert_eq!(again.status, 304, "{}", asset.path);
        let head = service.request(&HttpRequest::new("HEAD", asset.path));
        assert_eq!(head.status, 200, "{}", asset.path);
    }
}

#[test]
fn only_the_console_s_files_are_served_and_only_read() {
    let service = TestService::new();
    for path in [
        "/console/nope.js",
        "/console/../Cargo.toml",
        "/console/index.html",
        "/index.html",
    ] {
        let reply = service.request(&HttpRequest::new("GET", path));
        assert_eq!(reply.status, 404, "{path}");
        let body: Json = serde_json::from_slice(&reply.body).expect("a JSON error");
        assert_eq!(
            body["code"].as_str().expect("a code"),
            "not_found",
            "{path}"
        );
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let reply = service.request(&HttpRequest::new(method, "/console/app.js"));
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }
}

/// The `/api/...` paths a console module spells, with each `${…}` as `*`
/// and any query cut off.
fn api_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for (at, _) in text.match_indices("/api/") {
        let mut path = String::new();
        let mut rest = text[at..].chars().peekable();
        while let Some(c) = rest.next() {
            match c {
                '$' if rest.peek() == Some(&'{') => {
                    for inner in rest.by_ref() {
                        if inner == '}' {
                            break;
                        }
                    }
                    path.push('*');
                }
                'a'..='z' | 'A'..='Z' | '0'..='9' | '/' | '_' | '.' | '-' => path.push(c),
                _ => break,
            }
        }
        paths.push(path);
    }
    paths
}

#[test]
fn the_console_calls_documented_operations_only() {
    let document = protocol::openapi::document();
    let templates: Vec<Vec<String>> = document["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(|p| p.split('/').map(str::to_owned).collect())
        .collect();
    let documented = |path: &str| {
        let segments: Vec<&str> = path.split('/').collect();
        templates.iter().any(|template| {
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && *s == "*"))
        })
    };
    let mut seen = 0;
    for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
        for path in api_paths(asset.body) {
            seen += 1;
            assert!(
                documented(&path),
                "{} calls {path}, which is not in the OpenAPI document",
                asset.path
            );
        }
    }
    // Messages, threads, search, keys, webhook and its log, me, events...
    assert!(
        seen >= 15,
        "only {seen} API paths found: has the extraction drifted?"
    );
    assert!(api_paths("fetch(`/api/messages/${id}/raw`)") == ["/api/messages/*/raw"]);
}
