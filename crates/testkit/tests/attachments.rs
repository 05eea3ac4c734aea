//! Attachments through the real router and InboxDO: the corpus of
//! `tests/attachments/` (every transfer encoding and naming form, each
//! download compared byte for byte with the golden file), ids stable across
//! the upgrade, sending files (checks, limits, the stored copy), forwarding
//! with the originals, the HTTP relay's request, and a property: any bytes
//! our sender attaches download identical from the recipient's inbox.
#![cfg(not(target_arch = "wasm32"))]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use inbox_do::{InboxConfig, Relay};
use protocol::key::sha256_hex;
use protocol::{Reply, limits};
use router_worker::{HttpRequest, MailVerdict};
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use testkit::{TestService, WebAnswer};

const ALICE: &str = "alice@agents.test";

fn deliver(service: &TestService, to: &str, raw: &[u8]) -> u64 {
    match service.deliver("outside@example.com", to, raw) {
        MailVerdict::Accepted(id) => id,
        other => panic!("not stored: {other:?}"),
    }
}

fn get(service: &TestService, key: &str, path: &str) -> Reply {
    service
        .request(&HttpRequest::new("GET", path).header("authorization", &format!("Bearer {key}")))
}

fn message(service: &TestService, key: &str, id: u64) -> Json {
    let (status, body) = service.call("GET", &format!("/api/messages/{id}"), key, None);
    assert_eq!(status, 200, "{body}");
    body
}

fn listed(message: &Json) -> &Vec<Json> {
    message["attachments"]
        .as_array()
        .expect("an attachments list")
}

fn download(service: &TestService, key: &str, id: u64, part: &str) -> Reply {
    get(
        service,
        key,
        &format!("/api/messages/{id}/attachments/{part}"),
    )
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attachments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

/// The `filename*` of a `Content-Disposition`, percent-decoded.
fn disposition_name(header: &str) -> String {
    let encoded = header
        .split("filename*=UTF-8''")
        .nth(1)
        .unwrap_or_else(|| panic!("no filename* in {header:?}"))
        .split(';')
        .next()
        .expect("a value");
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
            out.push(u8::from_str_radix(hex, 16).expect("a hex byte"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn every_corpus_attachment_is_listed_and_downloads_byte_for_byte() {
    let service = TestService::new();
    let key = service.signup("alice");
    let files = corpus();
    assert!(files.len() >= 30, "the corpus has {} messages", files.len());
    let mut downloads = 0;
    for eml in &files {
        let raw = std::fs::read(eml).expect("the message");
        let golden: Json = serde_json::from_slice(
            &std::fs::read(eml.with_extension("json")).expect("its golden file"),
        )
        .expect("golden JSON");
        let want = golden["attachments"]
            .as_array()
            .expect("golden attachments");
        let id = deliver(&service, ALICE, &raw);
        let got = message(&service, &key, id);
        let got = listed(&got);
        let name = eml.file_name().expect("a name").to_string_lossy();
        assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
        for (got, want) in got.iter().zip(want) {
            for field in [
                "id",
                "name",
                "contentType",
                "disposition",
                "contentId",
                "size",
            ] {
                assert_eq!(got[field], want[field], "{name}: {field} of {got}");
            }
            let part = want["id"].as_str().expect("an id");
            let reply = download(&service, &key, id, part);
            assert_eq!(reply.status, 200, "{name} {part}");
            assert_eq!(
                sha256_hex(&reply.body),
                want["sha256"].as_str().expect("a sha256"),
                "{name} {part}"
            );
            assert_eq!(
                reply.header("content-length"),
                Some(want["size"].to_string().as_str()),
                "{name} {part}"
            );
            let served = reply.header("content-type").expect("a content type");
            assert_eq!(
                served.split(';').next(),
                want["downloadType"].as_str(),
                "{name} {part}"
            );
            let disposition = reply.header("content-disposition").expect("a disposition");
            assert!(disposition.starts_with("attachment; "), "{disposition}");
            assert!(disposition.is_ascii() && !disposition.contains(['\r', '\n']));
            assert_eq!(
                disposition_name(disposition),
                want["downloadName"].as_str().expect("a download name"),
                "{name} {part}"
            );
            assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
            downloads += 1;
        }
    }
    assert!(downloads >= 40, "only {downloads} downloads");
}

#[test]
fn ids_are_the_same_for_mail_stored_before_attachments_had_rows() {
    let service = TestService::new();
    let key = service.signup("alice");
    let mut fresh = Vec::new();
    let mut ids = Vec::new();
    for eml in corpus() {
        let id = deliver(&service, ALICE, &std::fs::read(eml).expect("the message"));
        fresh.push(message(&service, &key, id)["attachments"].clone());
        ids.push(id);
    }
    // The upgrade: mail stored by the previous build has no rows.
    service
        .objects()
        .with_db_of("alice", |db| db.as_before_attachments());
    for (id, fresh) in ids.iter().zip(&fresh) {
        // A download of an old message indexes it first, as a read does.
        if let Some(first) = fresh.as_array().and_then(|list| list.first()) {
            let part = first["id"].as_str().expect("an id");
            assert_eq!(download(&service, &key, *id, part).status, 200);
        }
        assert_eq!(&message(&service, &key, *id)["attachments"], fresh);
    }
    // A redelivery is the same message, with the same ids.
    let eml = &corpus()[0];
    let again = service.deliver(
        "outside@example.com",
        ALICE,
        &std::fs::read(eml).expect("the message"),
    );
    assert_eq!(again, MailVerdict::Duplicate(ids[0]));
    assert_eq!(message(&service, &key, ids[0])["attachments"], fresh[0]);
}

#[test]
fn a_missing_attachment_or_message_is_404_and_a_bad_id_400() {
    let service = TestService::new();
    let key = service.signup("alice");
    let eml = corpus().into_iter().next().expect("a corpus message");
    let id = deliver(&service, ALICE, &std::fs::read(eml).expect("the message"));
    let reply = download(&service, &key, id, "99");
    assert_eq!(reply.status, 404);
    assert_eq!(download(&service, &key, id + 1, "1").status, 404);
    for bad in ["0", "1..2", "x", "01", "1.", "-1"] {
        assert_eq!(download(&service, &key, id, bad).status, 400, "{bad}");
    }
    // Another inbox's message is not there at all.
    let bob = service.signup("bob");
    assert_eq!(download(&service, &bob, id, "1").status, 404);
    // And without a key, nothing.
    let anonymous = service.request(&HttpRequest::new(
        "GET",
        &format!("/api/messages/{id}/attachments/1"),
    ));
    assert_eq!(anonymous.status, 401);
}

fn send(service: &TestService, key: &str, body: Json) -> (u16, Json) {
    service.call("POST", "/api/messages", key, Some(body))
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Every byte value, and then some.
fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 256) as u8).collect()
}

#[test]
fn files_sent_inbox_to_inbox_download_identical_on_both_sides() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let pdf = binary(70_000);
    let png = binary(3_000);
    let (status, sent) = send(
        &service,
        &alice,
        json!({
            "to": "bob@agents.test",
            "subject": "The report",
            "text": "Attached.",
            "html": "<p>Attached: <img src=\"cid:chart@x\"></p>",
            "attachments": [
                {"filename": "Bericht März.pdf", "contentType": "application/pdf", "content": b64(&pdf)},
                {"filename": "chart.png", "contentType": "image/png", "content": b64(&png),
                 "contentId": "chart@x", "disposition": "inline"},
            ],
        }),
    );
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["status"], "sent");
    let outbound = sent["id"].as_u64().expect("an id");
    let bobs = service.messages(&bob);
    let received = bobs[0]["id"].as_u64().expect("an id");
    assert_eq!(bobs[0]["hasAttachments"], true);
    for (key, id) in [(&alice, outbound), (&bob, received)] {
        let detail = message(&service, key, id);
        let list = listed(&detail);
        // In MIME order: the inline image sits with the HTML, in the
        // multipart/related before the files.
        let names: Vec<_> = list.iter().map(|a| a["name"].clone()).collect();
        assert_eq!(
            names,
            [json!("chart.png"), json!("Bericht März.pdf")],
            "{detail}"
        );
        assert_eq!(list[0]["id"], "1.2");
        assert_eq!(list[0]["disposition"], "inline");
        assert_eq!(list[0]["contentId"], "chart@x");
        assert_eq!(list[1]["id"], "2");
        assert_eq!(list[1]["disposition"], "attachment");
        for (attachment, bytes) in list.iter().zip([&png, &pdf]) {
            let part = attachment["id"].as_str().expect("an id");
            let reply = download(&service, key, id, part);
            assert_eq!(reply.status, 200);
            assert_eq!(&reply.body, bytes, "{part} of message {id}");
        }
        let pdf_reply = download(&service, key, id, "2");
        assert_eq!(pdf_reply.header("content-type"), Some("application/pdf"));
        assert_eq!(
            pdf_reply.header("content-disposition"),
            Some(
                "attachment; filename=\"Bericht M_rz.pdf\"; filename*=UTF-8''Bericht%20M%C3%A4rz.pdf"
            )
        );
    }
}

fn first_error(status: u16, body: &Json) -> (u16, String) {
    (
        status,
        body["error"].as_str().expect("an error message").to_owned(),
    )
}

#[test]
fn a_bad_file_is_refused_naming_its_field() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let file = |overrides: Json| {
        let mut file = json!({"filename": "a.txt", "content": "aGk="});
        for (k, v) in overrides.as_object().expect("an object") {
            file[k] = v.clone();
        }
        json!({"to": "bob@example.com", "text": "x", "attachments": [{"filename": "ok.txt", "content": ""}, file]})
    };
    for (overrides, field) in [
        (json!({"content": "not base64!"}), "attachments[1].content"),
        (json!({"content": "aGk"}), ""), // unpadded: accepted
        (json!({"filename": ""}), "attachments[1].filename"),
        (
            json!({"filename": "../etc/passwd"}),
            "attachments[1].filename",
        ),
        (json!({"filename": ".hidden"}), "attachments[1].filename"),
        (json!({"filename": "a\r\nb.txt"}), "attachments[1].filename"),
        (json!({"contentType": "pdf"}), "attachments[1].contentType"),
        (json!({"contentId": "<x@y>"}), "attachments[1].contentId"),
    ] {
        let (status, body) = send(&service, &key, file(overrides.clone()));
        if field.is_empty() {
            assert_eq!(status, 201, "{overrides}: {body}");
            continue;
        }
        let (status, error) = first_error(status, &body);
        assert_eq!(status, 400, "{overrides}: {error}");
        assert!(
            error.contains(&format!("`{field}`")),
            "{overrides}: {error}"
        );
    }
    // Unknown fields of a file are refused too.
    let (status, body) = send(&service, &key, file(json!({"size": 3})));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn the_body_may_be_ten_mib_only_for_attachments() {
    let service = TestService::with_relay(Relay::Http {
        api_key: "re_test".to_owned(),
        url: "https://relay.test/emails".to_owned(),
    });
    service.objects().web().script(
        "https://relay.test/emails",
        [WebAnswer::Status(200, r#"{"id":"r1"}"#.into())],
    );
    let key = service.signup("alice");
    // 64 KiB of text without attachments: refused as before.
    let long = "x".repeat(limits::MAX_JSON_BODY);
    let (status, body) = send(
        &service,
        &key,
        json!({"to": "bob@example.com", "text": long}),
    );
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")));
    // With attachments, the text must still fit 64 KiB...
    let (status, body) = send(
        &service,
        &key,
        json!({"to": "bob@example.com", "text": long,
               "attachments": [{"filename": "a.bin", "content": b64(&binary(10))}]}),
    );
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]
            .as_str()
            .expect("an error")
            .contains("but the attachments"),
        "{body}"
    );
    // ... and 7 MiB of file (9.3 MiB of base64) goes through.
    let file = binary(7 * 1024 * 1024);
    let (status, body) = send(
        &service,
        &key,
        json!({"to": "bob@example.com", "text": "big",
               "attachments": [{"filename": "big.bin", "content": b64(&file)}]}),
    );
    assert_eq!(status, 201, "{body}");
    let relayed = service
        .objects()
        .web()
        .calls_to("https://relay.test/emails");
    let request: Json =
        serde_json::from_slice(&relayed.last().expect("a relay call").body).expect("JSON");
    let sent = STANDARD
        .decode(
            request["attachments"][0]["content"]
                .as_str()
                .expect("base64"),
        )
        .expect("base64");
    assert_eq!(sent, file);
    assert_eq!(request["attachments"][0]["filename"], "big.bin");
    // Past 10 MiB the body is refused unread.
    let huge = "A".repeat(limits::MAX_ATTACHMENT_BODY);
    let (status, _) = send(
        &service,
        &key,
        json!({"to": "bob@example.com", "text": "x",
               "attachments": [{"filename": "a.bin", "content": huge}]}),
    );
    assert_eq!(status, 413);
}

#[test]
fn send_email_takes_five_mib_and_the_refusal_names_the_attachments() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let (status, body) = send(
        &service,
        &key,
        json!({"to": "bob@example.com", "text": "big",
               "attachments": [{"filename": "big.bin", "content": b64(&binary(4 * 1024 * 1024))}]}),
    );
    let (status, error) = first_error(status, &body);
    assert_eq!(status, 413, "{error}");
    assert!(
        error.contains("`attachments`") && error.contains("send_email"),
        "{error}"
    );
    assert!(service.objects().mailer().sent().is_empty());
    assert!(service.messages(&key).is_empty(), "nothing stored");
    // 3 MiB (4 MiB of base64) fits.
    let (status, body) = send(
        &service,
        &key,
        json!({"to": "bob@example.com", "text": "fits",
               "attachments": [{"filename": "ok.bin", "content": b64(&binary(3 * 1024 * 1024))}]}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(service.objects().mailer().sent().len(), 1);
}

#[test]
fn attachments_count_against_the_storage_cap() {
    let service = TestService::new();
    service.objects().configure(InboxConfig {
        max_inbox_bytes: 2 * 1024 * 1024,
        ..InboxConfig::default()
    });
    let alice = service.signup("alice");
    service.signup("bob");
    let (status, body) = send(
        &service,
        &alice,
        json!({"to": "bob@agents.test", "text": "x",
               "attachments": [{"filename": "a.bin", "content": b64(&binary(2 * 1024 * 1024))}]}),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (507, Some("storage_full")),
        "{body}"
    );
}

#[test]
fn a_forward_carries_the_originals_byte_for_byte_unless_told_not_to() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let eml = corpus()
        .into_iter()
        .find(|path| {
            let golden: Json = serde_json::from_slice(
                &std::fs::read(path.with_extension("json")).expect("golden"),
            )
            .expect("JSON");
            golden["attachments"]
                .as_array()
                .is_some_and(|a| a.len() >= 2)
        })
        .expect("a corpus message with two attachments");
    let original = deliver(&service, ALICE, &std::fs::read(&eml).expect("the message"));
    let theirs = message(&service, &alice, original);
    let sums = |key: &str, id: u64, detail: &Json| -> Vec<(Json, String)> {
        listed(detail)
            .iter()
            .map(|a| {
                let part = a["id"].as_str().expect("an id");
                (
                    a["contentType"].clone(),
                    sha256_hex(&download(&service, key, id, part).body),
                )
            })
            .collect()
    };
    let before = sums(&alice, original, &theirs);
    let (status, body) = service.call(
        "POST",
        &format!("/api/messages/{original}/forward"),
        &alice,
        Some(json!({"to": "bob@agents.test", "text": "FYI",
                    "attachments": [{"filename": "note.txt", "contentType": "text/plain", "content": b64(b"extra")}]})),
    );
    assert_eq!(status, 201, "{body}");
    let forwarded = service.messages(&bob)[0]["id"].as_u64().expect("an id");
    let at_bob = message(&service, &bob, forwarded);
    let after = sums(&bob, forwarded, &at_bob);
    // The original's files, then the new one.
    assert_eq!(after.len(), before.len() + 1, "{at_bob}");
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(after[before.len()].1, sha256_hex(b"extra"));
    let (status, body) = service.call(
        "POST",
        &format!("/api/messages/{original}/forward"),
        &alice,
        Some(json!({"to": "bob@agents.test", "includeAttachments": false})),
    );
    assert_eq!(status, 201, "{body}");
    let bare = service.messages(&bob)[0]["id"].as_u64().expect("an id");
    assert_eq!(listed(&message(&service, &bob, bare)).len(), 0);
}

#[test]
fn a_reply_carries_its_own_files_not_the_originals() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let (status, sent) = send(
        &service,
        &bob,
        json!({"to": ALICE, "text": "Here", "attachments": [{"filename": "a.pdf", "content": b64(b"%PDF-a")}]}),
    );
    assert_eq!(status, 201, "{sent}");
    let at_alice = service.messages(&alice)[0]["id"].as_u64().expect("an id");
    let (status, body) = service.call(
        "POST",
        &format!("/api/messages/{at_alice}/reply"),
        &alice,
        Some(json!({"text": "Signed", "attachments": [{"filename": "signed.pdf", "content": b64(b"%PDF-b")}]})),
    );
    assert_eq!(status, 201, "{body}");
    let reply = service.messages(&bob)[0]["id"].as_u64().expect("an id");
    let list = message(&service, &bob, reply);
    let list = listed(&list);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["name"], "signed.pdf");
    let part = list[0]["id"].as_str().expect("an id");
    assert_eq!(download(&service, &bob, reply, part).body, b"%PDF-b");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Whatever bytes our sender attaches, under whatever safe name,
        /// the recipient's inbox lists that name and downloads those bytes.
        #[test]
        fn any_bytes_sent_inbox_to_inbox_download_identical(
            files in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..5000), "[a-zA-Z0-9äöüßéñ中_-][a-zA-Z0-9äöüßéñ中 _-]{0,19}\\.[a-z]{1,4}"),
                1..4,
            ),
            inline in any::<bool>(),
        ) {
            let service = TestService::new();
            let alice = service.signup("alice");
            let bob = service.signup("bob");
            let attachments: Vec<Json> = files
                .iter()
                .enumerate()
                .map(|(i, (bytes, name))| {
                    let mut file = json!({"filename": name, "content": b64(bytes)});
                    if inline && i == 0 {
                        file["disposition"] = json!("inline");
                        file["contentId"] = json!("first@x");
                    }
                    file
                })
                .collect();
            let (status, sent) = send(&service, &alice, json!({
                "to": "bob@agents.test", "text": "files", "html": "<p>files</p>",
                "attachments": attachments,
            }));
            prop_assert_eq!(status, 201, "{}", sent);
            let id = service.messages(&bob)[0]["id"].as_u64().expect("an id");
            let detail = message(&service, &bob, id);
            let list = listed(&detail);
            prop_assert_eq!(list.len(), files.len(), "{}", detail);
            for ((bytes, name), listed) in files.iter().zip(list) {
                prop_assert_eq!(listed["name"].as_str(), Some(name.as_str()));
                let part = listed["id"].as_str().expect("an id");
                let reply = download(&service, &bob, id, part);
                prop_assert_eq!(&reply.body, bytes);
            }
        }
    }
}

#[test]
fn a_large_message_to_many_inboxes_is_refused_before_it_would_exhaust_memory() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let names: Vec<String> = (0..12).map(|i| format!("agent{i}")).collect();
    for name in &names {
        service.signup(name);
    }
    let file = b64(&binary(4 * 1024 * 1024));
    let to = |n: usize| -> Vec<String> {
        names[..n]
            .iter()
            .map(|h| format!("{h}@agents.test"))
            .collect()
    };
    // 12 inboxes and the stored copy: 13 copies of 5.5 MB, past 64 MiB.
    let (status, body) = send(
        &service,
        &alice,
        json!({"to": to(12), "text": "x", "attachments": [{"filename": "a.bin", "content": file}]}),
    );
    let (status, error) = first_error(status, &body);
    assert_eq!(status, 413, "{error}");
    assert!(
        error.contains("`attachments`") && error.contains("fewer recipients"),
        "{error}"
    );
    assert!(service.messages(&alice).is_empty(), "nothing stored");
    // Ten fit.
    let (status, body) = send(
        &service,
        &alice,
        json!({"to": to(10), "text": "x", "attachments": [{"filename": "a.bin", "content": file}]}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "sent", "{body}");
}

#[test]
fn a_forward_too_large_for_its_way_out_is_refused_before_it_is_built() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    let file = binary(8 * 1024 * 1024);
    let mut raw = b"From: big@example.com\r\nTo: alice@agents.test\r\nSubject: scan\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Type: text/plain\r\n\r\nThe scan.\r\n--b\r\n\
        Content-Type: application/octet-stream; name=scan.bin\r\n\
        Content-Transfer-Encoding: binary\r\n\r\n"
        .to_vec();
    raw.extend_from_slice(&file);
    raw.extend_from_slice(b"\r\n--b--\r\n");
    let original = deliver(&service, ALICE, &raw);
    let forward = |body: Json| {
        service.call(
            "POST",
            &format!("/api/messages/{original}/forward"),
            &alice,
            Some(body),
        )
    };
    let (status, body) = forward(json!({"to": "bob@example.com"}));
    let (status, error) = first_error(status, &body);
    assert_eq!(status, 413, "{error}");
    assert!(error.contains("includeAttachments"), "{error}");
    assert!(service.objects().mailer().sent().is_empty());
    let (status, body) = forward(json!({"to": "bob@example.com", "includeAttachments": false}));
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_forwarded_base64_message_lists_each_of_its_many_parts_with_its_size() {
    let service = TestService::new();
    let key = service.signup("alice");
    let mut inner = String::from(
        "From: a@example.com\r\nSubject: inner\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\nHi.\r\n",
    );
    for i in 0..300 {
        inner.push_str(&format!(
            "--in\r\nContent-Type: application/octet-stream; name=f{i}.bin\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(&vec![i as u8; i + 1])
        ));
    }
    inner.push_str("--in--\r\n");
    let encoded = b64(inner.as_bytes());
    let mut raw = String::from(
        "From: b@example.com\r\nTo: alice@agents.test\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n\
         --out\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    for line in encoded.as_bytes().chunks(76) {
        raw.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        raw.push_str("\r\n");
    }
    raw.push_str("--out--\r\n");
    let id = deliver(&service, ALICE, raw.as_bytes());
    let detail = message(&service, &key, id);
    let list = listed(&detail);
    assert_eq!(list.len(), 301, "the message and its 300 files");
    assert_eq!(list[0]["id"], "2");
    assert_eq!(list[0]["size"], inner.len());
    for (i, attachment) in list[1..].iter().enumerate() {
        assert_eq!(attachment["id"], format!("2.{}", i + 2));
        assert_eq!(attachment["size"], i + 1);
    }
    let last = download(&service, &key, id, "2.301");
    // f299.bin: 300 bytes of 299 mod 256.
    assert_eq!(last.body, vec![43u8; 300]);
    assert_eq!(download(&service, &key, id, "2").body, inner.as_bytes());
}

#[test]
fn escapes_in_the_base64_count_toward_the_files_not_the_rest() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    // As PHP's json_encode writes base64: every `/` escaped.
    let bytes: Vec<u8> = (0..200_000)
        .map(|i| if i % 3 == 2 { 0xFF } else { 0xFE })
        .collect();
    let content = b64(&bytes).replace('/', "\\/");
    assert!(content.matches("\\/").count() > 70_000);
    let body = format!(
        r#"{{"to":"bob@example.com","text":"x","attachments":[{{"filename":"a.bin","content":"{content}"}}]}}"#
    );
    let reply = service.request(
        &HttpRequest::new("POST", "/api/messages")
            .header("authorization", &format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(body.into_bytes()),
    );
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    // A GET with a large body is refused at the JSON limit, not taken up to
    // 10 MiB: only a send carries attachments.
    let reply = service.request(
        &HttpRequest::new("GET", "/api/messages")
            .header("authorization", &format!("Bearer {key}"))
            .body(vec![b' '; limits::MAX_JSON_BODY + 1]),
    );
    assert_eq!(reply.status, 413);
}

#[test]
fn a_forwarded_message_it_carries_goes_whole_and_unencoded() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attachments");
    let raw = std::fs::read(dir.join("27-rfc822-7bit.eml")).expect("the corpus message");
    let original = deliver(&service, ALICE, &raw);
    let theirs = message(&service, &alice, original);
    let (status, body) = service.call(
        "POST",
        &format!("/api/messages/{original}/forward"),
        &alice,
        Some(json!({"to": "bob@agents.test"})),
    );
    assert_eq!(status, 201, "{body}");
    let at_bob = service.messages(&bob)[0]["id"].as_u64().expect("an id");
    let ours = message(&service, &bob, at_bob);
    // The forwarded message and the file inside it, as in the original.
    let summary = |detail: &Json| -> Vec<(Json, Json)> {
        listed(detail)
            .iter()
            .map(|a| (a["contentType"].clone(), a["size"].clone()))
            .collect()
    };
    assert_eq!(summary(&ours), summary(&theirs), "{ours}");
    let inner_there = download(&service, &alice, original, "2").body;
    let inner_here = download(&service, &bob, at_bob, "2").body;
    assert_eq!(inner_here, inner_there);
    // Sent as RFC 2046 wants a message/rfc822: not base64.
    let sent = get(
        &service,
        &alice,
        &format!("/api/messages/{}/raw", body["id"]),
    );
    let text = String::from_utf8_lossy(&sent.body);
    let part = text
        .split("Content-Type: message/rfc822")
        .nth(1)
        .expect("a message/rfc822 part");
    let headers = part.split("\r\n\r\n").next().expect("its headers");
    assert!(
        headers.contains("Content-Transfer-Encoding: 7bit"),
        "{headers}"
    );
}

#[test]
fn a_forwarded_message_whose_decoding_is_ambiguous_is_listed_whole_only() {
    let service = TestService::new();
    let key = service.signup("alice");
    // Quoted-printable with a lone CR: mail-parser drops it, our decoder
    // keeps it, so the offsets mail-parser found inside would be off by one.
    let raw = "From: b@example.com\r\nTo: alice@agents.test\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: text/plain\r\n\r\nBelow.\r\n\
        --out\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        From: a@example.com\rX\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n\
        --in\r\nContent-Type: text/plain\r\n\r\nHi.\r\n--in\r\nContent-Type: application/octet-stream; name=f.bin\r\n\r\n\
        0123456789\r\n--in--\r\n--out--\r\n";
    let id = deliver(&service, ALICE, raw.as_bytes());
    let detail = message(&service, &key, id);
    let list = listed(&detail);
    assert_eq!(list.len(), 1, "{detail}");
    assert_eq!(list[0]["contentType"], "message/rfc822");
    let whole = download(&service, &key, id, "2");
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.header("content-length"),
        Some(whole.body.len().to_string().as_str())
    );
    assert!(String::from_utf8_lossy(&whole.body).contains("0123456789"));
    let warnings = detail["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("forwarded message 2"))),
        "{warnings:?}"
    );
}
