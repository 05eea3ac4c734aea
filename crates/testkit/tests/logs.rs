//! The Worker's log lines: one JSON object per request and per inbound mail,
//! with the route template, status, duration and an inbox reference, and
//! nothing secret or personal. Drives a whole session through the real router
//! and checks every line it would print.
#![cfg(not(target_arch = "wasm32"))]

use protocol::key::sha256_hex;
use router_worker::HttpRequest;
use serde_json::{Value as Json, json};
use testkit::{TestService, object_id};

fn json_request(method: &str, path: &str, key: Option<&str>, body: &Json) -> HttpRequest {
    let mut request = HttpRequest::new(method, path)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("authorization", &format!("Bearer {key}"));
    }
    request
}

#[test]
fn every_request_and_mail_gets_one_line_and_no_line_tells_a_secret() {
    let service = TestService::new();
    let mut lines = Vec::new();
    let mut log = |(reply, line): (protocol::Reply, String)| {
        lines.push(line);
        reply
    };
    let created = log(service.request_logged(&json_request(
        "POST",
        "/api/signup",
        None,
        &json!({ "handle": "secret-agent" }),
    )));
    let key = serde_json::from_slice::<Json>(&created.body).expect("a JSON body")["apiKey"]
        .as_str()
        .expect("a string")
        .to_owned();
    let hook = log(service.request_logged(&json_request(
        "PUT",
        "/api/webhook",
        Some(&key),
        &json!({ "url": "https://hooks.example.com/token-in-path-7f3a" }),
    )));
    let secret = serde_json::from_slice::<Json>(&hook.body).expect("a JSON body")["secret"]
        .as_str()
        .expect("a string")
        .to_owned();
    log(service.request_logged(&json_request(
        "POST",
        "/api/messages",
        Some(&key),
        &json!({ "to": "secret-agent@agents.test", "subject": "Quarterly numbers", "text": "The password is hunter2." }),
    )));
    log(service.request_logged(
        &HttpRequest::new("GET", "/api/messages/2")
            .header("authorization", &format!("Bearer {key}")),
    ));
    log(service.request_logged(
        &HttpRequest::new("GET", "/api/messages/2/raw")
            .header("authorization", &format!("Bearer {key}")),
    ));
    log(service.request_logged(
        &HttpRequest::new("GET", "/api/me").header("authorization", "Bearer ik_wrong"),
    ));
    log(service.request_logged(&HttpRequest::new("BREW", "/coffee/pot-7")));
    let raw = b"From: Carol <carol@example.com>\r\nTo: secret-agent@agents.test\r\nSubject: Merger plans\r\nMessage-ID: <m@example.com>\r\n\r\nConfidential.\r\n";
    let (_, mail_line) = service.deliver_logged(
        "carol@example.com",
        "secret-agent+x@agents.test",
        raw.len() as u64,
        raw,
    );
    let (_, refused_line) = service.deliver_logged(
        "carol@example.com",
        "nobody@agents.test",
        raw.len() as u64,
        raw,
    );
    lines.push(mail_line);
    lines.push(refused_line);

    let parsed: Vec<Json> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    let reference = router_worker::log::inbox_ref(&object_id("secret-agent"));
    let expected = json!([
        { "event": "request", "method": "POST", "route": "/api/signup", "status": 201, "durationMs": 0, "inbox": reference },
        { "event": "request", "method": "PUT", "route": "/api/webhook", "status": 200, "durationMs": 0, "inbox": reference },
        { "event": "request", "method": "POST", "route": "/api/messages", "status": 201, "durationMs": 0, "inbox": reference },
        { "event": "request", "method": "GET", "route": "/api/messages/:id", "status": 200, "durationMs": 0, "inbox": reference },
        { "event": "request", "method": "GET", "route": "/api/messages/:id/raw", "status": 200, "durationMs": 0, "inbox": reference },
        { "event": "request", "method": "GET", "route": "/api/me", "status": 401, "durationMs": 0, "inbox": null },
        { "event": "request", "method": "OTHER", "route": "other", "status": 404, "durationMs": 0, "inbox": null },
        { "event": "mail", "outcome": "accepted", "sizeBytes": raw.len(), "durationMs": 0, "inbox": reference },
        { "event": "mail", "outcome": "rejected", "sizeBytes": raw.len(), "durationMs": 0, "inbox": null },
    ]);
    assert_eq!(Json::Array(parsed), expected);

    let key_hash = protocol::ApiKey::from_authorization(&format!("Bearer {key}"))
        .map(|k| k.hash().to_hex())
        .expect("a well-formed key");
    let forbidden = [
        key.as_str(),
        &key[3..15],
        secret.as_str(),
        &secret[6..18],
        &key_hash[..16],
        &object_id("secret-agent")[..16],
        &sha256_hex(b"secret-agent")[..16],
        "secret-agent",
        "carol",
        "example.com",
        "token-in-path",
        "Quarterly",
        "hunter2",
        "Merger",
        "Confidential",
        "coffee",
    ];
    for line in &lines {
        for word in forbidden {
            assert!(!line.contains(word), "{line} gives away {word:?}");
        }
    }
}
