//! Golden outputs for a corpus of real, RFC and malformed mail: each message is
//! delivered through the router's email path into its InboxDO, read back over
//! the API, and the answer compared with a reviewed snapshot, in LF and CRLF
//! forms. The raw bytes must come back unchanged. It lives in testkit because
//! it drives the router and the inbox together, through `TestService`.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use router_worker::{HttpRequest, MailVerdict};
use serde_json::{Value as Json, json};
use std::path::Path;
use testkit::TestService;

fn get(service: &TestService, key: &str, path: &str) -> (u16, Vec<u8>) {
    let reply = service
        .request(&HttpRequest::new("GET", path).header("authorization", &format!("Bearer {key}")));
    (reply.status, reply.body)
}

/// Delivers `raw` to a fresh inbox and returns the API's view of it.
fn ingest_and_read(raw: &[u8]) -> Json {
    let service = TestService::new();
    let key = service.signup("alice");
    let id = match service.deliver("sender@example.net", "alice+corpus@agents.test", raw) {
        MailVerdict::Accepted(id) => id,
        other => panic!("not stored: {other:?}"),
    };
    let (status, body) = get(&service, &key, &format!("/api/messages/{id}/raw"));
    assert_eq!(status, 200);
    assert!(body == raw, "the raw bytes changed");
    let (status, body) = get(&service, &key, &format!("/api/messages/{id}"));
    assert_eq!(status, 200);
    let message: Json = serde_json::from_slice(&body).expect("a JSON message");
    let (_, list) = get(&service, &key, "/api/messages");
    let listed: Json = serde_json::from_slice(&list).expect("a JSON listing");
    assert_eq!(listed["messages"][0]["id"], id, "not listed");
    condensed(message)
}

/// The API's answer with long text shortened for review: bodies show their
/// length in characters, the SHA-256 of their UTF-8 bytes (so a change past
/// the beginning is still seen) and their first 240 characters; header values
/// show their first 160 characters. The e2e compares the same format.
fn condensed(mut message: Json) -> Json {
    for field in ["text", "html", "extractedText"] {
        if let Some(text) = message[field].as_str() {
            let head: String = text.chars().take(240).collect();
            let sha256 = protocol::key::sha256_hex(text.as_bytes());
            message[field] =
                json!({ "chars": text.chars().count(), "sha256": sha256, "head": head });
        }
    }
    if let Some(headers) = message["headers"].as_array_mut() {
        for header in headers {
            if let Some(value) = header["value"].as_str()
                && value.chars().count() > 160
            {
                let head: String = value.chars().take(160).collect();
                header["value"] = json!(format!("{head}… ({} chars)", value.chars().count()));
            }
        }
    }
    message
}

/// LF line endings turned into CRLF (existing CRLFs kept).
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut previous = 0u8;
    for &byte in raw {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

/// LF-only form (CRLF → LF).
fn lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().peekable();
    while let Some(&byte) = bytes.next() {
        if byte == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(byte);
    }
    out
}

#[test]
fn the_corpus_is_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut count = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "eml") {
                count += 1;
            }
        }
    }
    assert!(count >= 130, "only {count} .eml files found");
}

#[test]
fn corpus_messages_read_back_as_reviewed() {
    insta::glob!("corpus/**/*.eml", |path| {
        let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let answer = json!({
            "lf": ingest_and_read(&lf(&raw)),
            "crlf": ingest_and_read(&crlf(&raw)),
        });
        insta::assert_json_snapshot!(answer);
    });
}

fn corpus_file() -> impl Strategy<Value = Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/rfc");
    let files: Vec<Vec<u8>> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    proptest::sample::select(files)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Fixtures with bytes flipped, cut short, or spliced: never a panic,
    /// always stored whole.
    #[test]
    fn mutated_fixtures_are_stored_whole(
        file in corpus_file(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut raw = file;
        for (at, byte) in flips {
            if !raw.is_empty() {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
        }
        let keep = cut.index(raw.len() + 1);
        raw.truncate(keep.max(raw.len() / 2));
        let _ = ingest_and_read(&raw);
    }
}
