//! Staged deploys: the inbox script is deployed before the router, so for a
//! few minutes the previous router talks to the new InboxDO. Every request
//! that router sends is kept, as it encoded it, in `tests/wire/` (one file
//! per release; entries are never edited). Each must still decode and be
//! answered as it was, in order, on one real inbox; and every kind of
//! request the wire has must appear in the newest file, so a new variant
//! cannot ship without its fixture.
#![cfg(not(target_arch = "wasm32"))]

use base64::Engine as _;
use protocol::key::sha256_hex;
use protocol::wire::{ApiCall, InboxRequest, decode_request};
use router_worker::InboxNamespace as _;
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet};
use testkit::{TestService, object_id};

const FIXTURES: &[(&str, &str)] = &[(
    "requests-2026-12-02.json",
    include_str!("wire/requests-2026-12-02.json"),
)];

/// The name of a request's kind. No catch-all: a new variant does not
/// compile until it is named here, and the test then fails until a fixture
/// has it.
fn kind(request: &InboxRequest) -> &'static str {
    match request {
        InboxRequest::Claim { .. } => "claim",
        InboxRequest::Confirm { .. } => "confirm",
        InboxRequest::Release { .. } => "release",
        InboxRequest::Ingest { .. } => "ingest",
        InboxRequest::Throttle { .. } => "throttle",
        InboxRequest::Ping => "ping",
        InboxRequest::Api { call, .. } => match call {
            ApiCall::Me => "me",
            ApiCall::ListMessages { .. } => "listMessages",
            ApiCall::Search { .. } => "search",
            ApiCall::Wait { .. } => "wait",
            ApiCall::Events { .. } => "events",
            ApiCall::GetMessage { .. } => "getMessage",
            ApiCall::MarkRead { .. } => "markRead",
            ApiCall::GetRaw { .. } => "getRaw",
            ApiCall::ListThreads { .. } => "listThreads",
            ApiCall::GetThread { .. } => "getThread",
            ApiCall::DeleteThread { .. } => "deleteThread",
            ApiCall::Send { .. } => "send",
            ApiCall::ReplyRecipients { .. } => "replyRecipients",
            ApiCall::Reply { .. } => "reply",
            ApiCall::Forward { .. } => "forward",
            ApiCall::GetAttachment { .. } => "getAttachment",
            ApiCall::PutWebhook { .. } => "putWebhook",
            ApiCall::GetWebhook => "getWebhook",
            ApiCall::DeleteWebhook => "deleteWebhook",
            ApiCall::ListDeliveries => "listDeliveries",
            ApiCall::DeleteMessage { .. } => "deleteMessage",
            ApiCall::UpdateMe { .. } => "updateMe",
            ApiCall::DeleteInbox => "deleteInbox",
            ApiCall::ListKeys => "listKeys",
            ApiCall::CreateKey { .. } => "createKey",
            ApiCall::ConfirmKey { .. } => "confirmKey",
            ApiCall::DropKey { .. } => "dropKey",
            ApiCall::DeleteKey { .. } => "deleteKey",
            ApiCall::Export => "export",
        },
    }
}

const KINDS: usize = 35;

fn fill(text: &str, values: &BTreeMap<&str, String>) -> String {
    // Longest names first, so `$BOBS_THREAD` is not read as `$BOBS`.
    let mut names: Vec<&&str> = values.keys().collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.len()));
    names.into_iter().fold(text.to_owned(), |text, name| {
        text.replace(&format!("${name}"), &values[*name])
    })
}

fn mail() -> Vec<u8> {
    let file = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 fixture\n");
    format!(
        "From: Outside <outside@example.com>\r\nTo: alice@agents.test\r\nSubject: hello from the wire\r\n\
         Message-ID: <wire-fixture@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
         hello, your code is 123456\r\n--b\r\nContent-Type: application/pdf; name=a.pdf\r\n\
         Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {file}\r\n--b--\r\n"
    )
    .into_bytes()
}

#[test]
fn every_request_of_a_previous_router_still_decodes_and_is_answered_as_before() {
    for (file, text) in FIXTURES {
        let fixtures: Json = serde_json::from_str(
            // The unquoted placeholders (ids) make the file JSON only once
            // filled: read its shape with them as zeros.
            &text
                .replace("$MSG", "0")
                .replace("$THREAD", "0")
                .replace("$BOBS_THREAD", "0")
                .replace("$BOBS", "0")
                .replace("$KEY_ID", "0"),
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let entries = fixtures["requests"].as_array().expect("a request list");
        let service = TestService::new();
        let alice = service.signup("alice");
        let bob = service.signup("bob");
        let (status, _) = service.call(
            "POST",
            "/api/messages",
            &bob,
            Some(json!({"to": "alice@agents.test", "subject": "from bob", "text": "hi alice"})),
        );
        assert_eq!(status, 201);
        let bobs = service.messages(&alice)[0].clone();
        let mut values: BTreeMap<&str, String> = BTreeMap::from([
            ("ALICE", sha256_hex(alice.as_bytes())),
            ("CAROL", sha256_hex(b"carol's key")),
            ("ERIN", sha256_hex(b"erin's key")),
            ("NEW_KEY", sha256_hex(b"a new key")),
            ("DROPPED_KEY", sha256_hex(b"a dropped key")),
            ("BOB_OBJECT", object_id("bob")),
            ("BOBS", bobs["id"].to_string()),
            ("BOBS_THREAD", bobs["threadId"].to_string()),
        ]);
        let mut seen = BTreeSet::new();
        for (index, entry) in entries.iter().enumerate() {
            let name = entry["name"].as_str().expect("a name");
            // What is decoded is the file's own text of the request (but for
            // the placeholders), sent as the router sends it: base64url in
            // the request header.
            let json = fill(&original_request(text, index), &values);
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&json);
            let request = decode_request(&header)
                .unwrap_or_else(|e| panic!("{file} / {name}: no longer decodes: {e}\n{json}"));
            seen.insert(kind(&request));
            let to = match entry["to"].as_str().expect("a target") {
                "limiter" => object_id("limiter:wire-fixture"),
                handle => object_id(handle),
            };
            let payload = (entry["payload"] == "mail").then(mail);
            let reply = pollster::block_on(service.objects().send(&to, &request, payload))
                .unwrap_or_else(|e| panic!("{file} / {name}: {e}"));
            let expected = entry["status"].as_u64().expect("a status");
            assert_eq!(
                u64::from(reply.status),
                expected,
                "{file} / {name}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            let body: Json = serde_json::from_slice(&reply.body).unwrap_or(Json::Null);
            match name {
                "ingest" => {
                    values.insert("MSG", body["id"].to_string());
                }
                "getMessage" => {
                    values.insert("THREAD", body["threadId"].to_string());
                    values.insert(
                        "PART",
                        body["attachments"][0]["id"]
                            .as_str()
                            .expect("a part")
                            .to_owned(),
                    );
                }
                "listKeys" => {
                    let keys = body["keys"].as_array().expect("a key list");
                    let ci = keys
                        .iter()
                        .find(|k| k["name"] == "ci")
                        .expect("the new key");
                    values.insert("KEY_ID", ci["id"].to_string());
                }
                _ => {}
            }
        }
        if *file == FIXTURES[FIXTURES.len() - 1].0 {
            assert_eq!(seen.len(), KINDS, "{file} lacks some kind: has {seen:?}");
        }
    }
}

/// The text of entry `index`'s `request` as the file writes it.
fn original_request(text: &str, index: usize) -> String {
    let starts: Vec<usize> = text
        .match_indices("\"request\": ")
        .map(|(at, _)| at + 11)
        .collect();
    let start = starts[index];
    // The request object ends where its braces balance.
    let mut depth = 0i32;
    for (offset, byte) in text[start..].bytes().enumerate() {
        match byte {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return text[start..=start + offset].to_owned();
                }
            }
            _ => {}
        }
    }
    panic!("entry {index} has no end");
}
