//! Replying and forwarding, through the real router and InboxDO: the built
//! MIME of a reply, a reply-all and a forward (snapshots), who they go to,
//! the thread they join, direct delivery of a reply between two inboxes,
//! and the errors.
#![cfg(not(target_arch = "wasm32"))]

use inbox_do::Relay;
use router_worker::MailVerdict;
use serde_json::{Value as Json, json};
use testkit::TestService;

const ALICE: &str = "alice@agents.test";

fn deliver(service: &TestService, to: &str, raw: &str) -> u64 {
    match service.deliver("outside@example.com", to, raw.as_bytes()) {
        MailVerdict::Accepted(id) => id,
        other => panic!("not stored: {other:?}"),
    }
}

/// Mail from outside: Dana writes to alice and carol, copying alice's
/// tagged address and dave, in a conversation already two messages long.
const FROM_DANA: &str = "From: Dana Outside <dana@example.com>\r\n\
To: alice@agents.test, Carol <carol@example.com>\r\n\
Cc: alice+billing@agents.test, dave@example.com, DANA@example.com\r\n\
Subject: RE: AW: Invoice 7\r\n\
Date: Mon, 30 Nov 2026 09:15:00 +0000\r\n\
Message-ID: <inv7-2@example.com>\r\n\
In-Reply-To: <inv7-1@example.com>\r\n\
References: <inv7-0@example.com> <inv7-1@example.com>\r\n\
\r\n\
Is the invoice paid?\r\n\
\r\n\
Dana\r\n";

fn reply(service: &TestService, key: &str, id: u64, body: Json) -> (u16, Json) {
    service.call(
        "POST",
        &format!("/api/messages/{id}/reply"),
        key,
        Some(body),
    )
}

/// The raw message the fake `send_email` binding was given for `to`.
fn relayed_to(service: &TestService, to: &str) -> String {
    let sent = service.objects().mailer().sent();
    let found: Vec<_> = sent.iter().filter(|m| m.to == to).collect();
    assert_eq!(found.len(), 1, "messages relayed to {to}: {sent:?}");
    String::from_utf8(found[0].raw.clone()).expect("UTF-8 MIME")
}

fn thread_of(service: &TestService, key: &str, id: u64) -> u64 {
    let (status, body) = service.call("GET", &format!("/api/messages/{id}"), key, None);
    assert_eq!(status, 200, "{body}");
    body["threadId"].as_u64().expect("a threadId")
}

#[test]
fn a_reply_is_built_as_mail_clients_build_one() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let original = deliver(&service, ALICE, FROM_DANA);
    let (status, answer) = reply(
        &service,
        &key,
        original,
        json!({"text": "Paid yesterday.", "html": "<p>Paid <b>yesterday</b>.</p>"}),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "sent");
    assert_eq!(
        answer["recipients"],
        json!([{"address": "dana@example.com", "kind": "to", "status": "sent"}])
    );
    // The reply joins the thread of what it answers.
    let id = answer["id"].as_u64().expect("an id");
    assert_eq!(
        answer["threadId"].as_u64(),
        Some(thread_of(&service, &key, original))
    );
    assert_eq!(
        thread_of(&service, &key, id),
        thread_of(&service, &key, original)
    );
    let mime = relayed_to(&service, "dana@example.com");
    insta::assert_snapshot!("reply_mime", mime.replace("\r\n", "\n"));
    // Read back: its own new text is its extractedText.
    let (_, stored) = service.call("GET", &format!("/api/messages/{id}"), &key, None);
    assert_eq!(stored["subject"], "Re: Invoice 7");
    assert_eq!(stored["inReplyTo"], "inv7-2@example.com");
    assert_eq!(
        stored["references"],
        json!([
            "inv7-0@example.com",
            "inv7-1@example.com",
            "inv7-2@example.com"
        ])
    );
    assert_eq!(stored["extractedText"], "Paid yesterday.");
}

#[test]
fn reply_all_goes_to_everyone_once_and_never_to_the_inbox_itself() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let original = deliver(&service, ALICE, FROM_DANA);
    let (status, answer) = reply(
        &service,
        &key,
        original,
        json!({"text": "Adding everyone.", "replyAll": true}),
    );
    assert_eq!(status, 201, "{answer}");
    let recipients: Vec<(String, String)> = answer["recipients"]
        .as_array()
        .expect("recipients")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().expect("a kind").to_owned(),
                r["address"].as_str().expect("an address").to_owned(),
            )
        })
        .collect();
    // Dana (From; her upper-case copy in Cc is the same address), carol
    // (To), dave (Cc); alice and alice+billing are this inbox.
    assert_eq!(
        recipients,
        [
            ("to".to_owned(), "dana@example.com".to_owned()),
            ("to".to_owned(), "carol@example.com".to_owned()),
            ("cc".to_owned(), "dave@example.com".to_owned()),
        ]
    );
    let mime = relayed_to(&service, "carol@example.com");
    insta::assert_snapshot!("reply_all_mime", mime.replace("\r\n", "\n"));
    assert_eq!(service.objects().mailer().sent().len(), 3);
}

#[test]
fn a_forward_starts_a_new_thread_with_the_original_below() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let original = deliver(&service, ALICE, FROM_DANA);
    let (status, answer) = service.call(
        "POST",
        &format!("/api/messages/{original}/forward"),
        &key,
        Some(json!({"to": "accounts@example.com", "bcc": ["audit@example.com"], "text": "For your records."})),
    );
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_u64().expect("an id");
    assert_ne!(
        thread_of(&service, &key, id),
        thread_of(&service, &key, original)
    );
    let mime = relayed_to(&service, "accounts@example.com");
    assert!(!mime.contains("audit@example.com"), "Bcc leaked:\n{mime}");
    insta::assert_snapshot!("forward_mime", mime.replace("\r\n", "\n"));
    // The blind copy got the same message.
    assert_eq!(relayed_to(&service, "audit@example.com"), mime);
    let (_, stored) = service.call("GET", &format!("/api/messages/{id}"), &key, None);
    assert_eq!(stored["subject"], "Fwd: RE: AW: Invoice 7");
    // A forward keeps its whole text as its new text.
    assert!(
        stored["extractedText"]
            .as_str()
            .is_some_and(|t| t.contains("Is the invoice paid?")),
        "{stored}"
    );
}

#[test]
fn a_reply_between_two_inboxes_is_delivered_directly_into_the_same_thread() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &alice,
        Some(json!({"to": "bob@agents.test", "subject": "Lunch?", "text": "Noon?"})),
    );
    assert_eq!(status, 201, "{sent}");
    let at_bob = service.messages(&bob);
    let copy = at_bob[0]["id"].as_u64().expect("an id");
    // No relay is configured: a reply to an inbox here needs none.
    let (status, answer) = reply(&service, &bob, copy, json!({"text": "Yes, noon."}));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "sent", "{answer}");
    let at_alice = service.messages(&alice);
    assert_eq!(at_alice.len(), 2);
    let (first, second) = (&at_alice[1], &at_alice[0]);
    assert_eq!(second["subject"], "Re: Lunch?");
    assert_eq!(second["threadId"], first["threadId"]);
    assert_eq!(second["preview"], "Yes, noon.");
    // And alice's reply to that stays in the thread, at both ends.
    let id = second["id"].as_u64().expect("an id");
    let (status, again) = reply(&service, &alice, id, json!({"text": "See you."}));
    assert_eq!(status, 201, "{again}");
    let thread = |key: &str| -> Vec<Json> {
        let list = service.call("GET", "/api/threads", key, None).1;
        assert_eq!(list["threads"].as_array().map(Vec::len), Some(1), "{list}");
        let id = list["threads"][0]["id"].as_u64().expect("a thread id");
        service
            .call("GET", &format!("/api/threads/{id}"), key, None)
            .1["messages"]
            .as_array()
            .expect("messages")
            .clone()
    };
    for key in [&alice, &bob] {
        assert_eq!(thread(key).len(), 3);
    }
    let texts: Vec<Json> = thread(&bob)
        .iter()
        .map(|m| m["extractedText"].clone())
        .collect();
    assert_eq!(
        texts,
        [json!("Noon?"), json!("Yes, noon."), json!("See you.")]
    );
}

#[test]
fn replies_and_forwards_refuse_what_they_cannot_do() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let bob = service.signup("bob");
    let original = deliver(&service, ALICE, FROM_DANA);
    // A message from this inbox to itself has nobody else to answer.
    let (status, own) = service.call(
        "POST",
        "/api/messages",
        &key,
        Some(json!({"to": ALICE, "text": "note to self"})),
    );
    assert_eq!(status, 201, "{own}");
    let own = own["id"].as_u64().expect("an id");
    let cases: Vec<(&str, String, &str, Option<Json>)> = vec![
        (
            "no such message",
            "/api/messages/99/reply".into(),
            "owner",
            Some(json!({"text": "x"})),
        ),
        (
            "no body",
            format!("/api/messages/{original}/reply"),
            "owner",
            Some(json!({})),
        ),
        (
            "unknown field",
            format!("/api/messages/{original}/reply"),
            "owner",
            Some(json!({"text": "x", "to": "a@b.c"})),
        ),
        (
            "NUL",
            format!("/api/messages/{original}/reply"),
            "owner",
            Some(json!({"text": "a\u{0}b"})),
        ),
        (
            "to oneself only",
            format!("/api/messages/{own}/reply"),
            "owner",
            Some(json!({"text": "x"})),
        ),
        (
            "bad id",
            "/api/messages/x/reply".into(),
            "owner",
            Some(json!({"text": "x"})),
        ),
        (
            "another inbox's message",
            format!("/api/messages/{original}/reply"),
            "bob",
            Some(json!({"text": "x"})),
        ),
        (
            "forward: no to",
            format!("/api/messages/{original}/forward"),
            "owner",
            Some(json!({"text": "x"})),
        ),
        (
            "forward: bad cc",
            format!("/api/messages/{original}/forward"),
            "owner",
            Some(json!({"to": "a@example.com", "cc": ["ok@example.com", "not an address"]})),
        ),
        (
            "forward: no such inbox here",
            format!("/api/messages/{original}/forward"),
            "owner",
            Some(json!({"to": "ghost@agents.test"})),
        ),
        (
            "forward: no such message",
            "/api/messages/99/forward".into(),
            "owner",
            Some(json!({"to": "a@example.com"})),
        ),
    ];
    let mut answers = serde_json::Map::new();
    for (name, path, who, body) in cases {
        let caller = if who == "bob" { &bob } else { &key };
        let (status, answer) = service.call("POST", &path, caller, body);
        assert!((400..500).contains(&status), "{name}: {status} {answer}");
        if name == "to oneself only" {
            assert_eq!(status, 409, "{answer}");
        }
        answers.insert(name.to_owned(), json!({"status": status, "body": answer}));
    }
    insta::assert_json_snapshot!(answers);
    // Nothing was sent by any of them (the note to self was delivered
    // directly, not relayed).
    assert!(service.objects().mailer().sent().is_empty());
    let (_, me) = service.call("GET", "/api/me", &key, None);
    assert_eq!(me["messageCount"], 3);
    // GET is not a way to reply.
    let (status, _) = service.call(
        "GET",
        &format!("/api/messages/{original}/reply"),
        &key,
        None,
    );
    assert_eq!(status, 405);
}

/// The second step of a reply, sent to the inbox as a router would.
fn reply_step(
    service: &TestService,
    key: &str,
    id: u64,
    recipients: Vec<protocol::wire::RoutedRecipient>,
) -> (u16, Json) {
    let hash = protocol::ApiKey::parse(key).expect("a key").hash();
    let request = protocol::wire::InboxRequest::Api {
        key_hash: hash,
        mail_domain: "agents.test".into(),
        call: protocol::wire::ApiCall::Reply {
            id,
            reply_all: false,
            text: Some("x".into()),
            html: None,
            recipients,
            attachments: Vec::new(),
            idempotency_key: None,
        },
    };
    let reply = pollster::block_on(router_worker::InboxNamespace::send(
        service.objects(),
        &testkit::object_id("alice"),
        &request,
        None,
    ))
    .expect("the object answers");
    let body = serde_json::from_slice(&reply.body).expect("a JSON answer");
    (reply.status, body)
}

#[test]
fn the_inbox_sends_a_reply_only_to_the_recipients_it_named() {
    use protocol::api::RecipientKind;
    use protocol::wire::{RoutedRecipient, SendRoute};
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let original = deliver(&service, ALICE, FROM_DANA);
    let routed = |address: &str, kind| RoutedRecipient {
        address: address.to_owned(),
        kind,
        route: SendRoute::Relay,
    };
    // A router (or a race) that routed other recipients than the inbox
    // named: an added one, a changed kind, a missing one.
    for recipients in [
        vec![
            routed("dana@example.com", RecipientKind::To),
            routed("eve@example.com", RecipientKind::Cc),
        ],
        vec![routed("dana@example.com", RecipientKind::Cc)],
        vec![],
        vec![routed("eve@example.com", RecipientKind::To)],
    ] {
        let (status, answer) = reply_step(&service, &key, original, recipients);
        assert_eq!(
            (status, answer["code"].as_str()),
            (409, Some("conflict")),
            "{answer}"
        );
    }
    assert!(service.objects().mailer().sent().is_empty());
    // The message deleted between the two steps: 404, nothing sent.
    let thread = thread_of(&service, &key, original);
    let (status, _) = service.call("DELETE", &format!("/api/threads/{thread}"), &key, None);
    assert_eq!(status, 204);
    let (status, answer) = reply_step(
        &service,
        &key,
        original,
        vec![routed("dana@example.com", RecipientKind::To)],
    );
    assert_eq!(
        (status, answer["code"].as_str()),
        (404, Some("not_found")),
        "{answer}"
    );
    assert!(service.objects().mailer().sent().is_empty());
    // The address compares without case, as the router may normalize it.
    let again = deliver(&service, ALICE, &FROM_DANA.replace("inv7-2@", "inv7-3@"));
    let (status, answer) = reply_step(
        &service,
        &key,
        again,
        vec![routed("Dana@Example.com", RecipientKind::To)],
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(service.objects().mailer().sent().len(), 1);
}

#[test]
fn a_reply_all_past_the_recipient_limit_is_refused_and_a_plain_reply_is_not() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let cc: Vec<String> = (0..60).map(|n| format!("person{n}@example.com")).collect();
    let raw = format!(
        "From: dana@example.com\r\nTo: {ALICE}\r\nCc: {}\r\nSubject: all hands\r\nMessage-ID: <many@x>\r\n\r\nHello all.\r\n",
        cc.join(", ")
    );
    let original = deliver(&service, ALICE, &raw);
    let (status, answer) = reply(
        &service,
        &key,
        original,
        json!({"text": "x", "replyAll": true}),
    );
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("conflict")),
        "{answer}"
    );
    assert!(service.objects().mailer().sent().is_empty());
    let (status, answer) = reply(&service, &key, original, json!({"text": "Only to you."}));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(service.objects().mailer().sent().len(), 1);
}

#[test]
fn a_reply_all_to_a_note_to_self_with_a_cc_goes_to_the_cc_as_to() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &key,
        Some(json!({"to": ALICE, "cc": ["bob@example.com"], "text": "note"})),
    );
    assert_eq!(status, 201, "{sent}");
    let id = sent["id"].as_u64().expect("an id");
    let (status, answer) = reply(&service, &key, id, json!({"text": "x", "replyAll": true}));
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["recipients"],
        json!([{"address": "bob@example.com", "kind": "to", "status": "sent"}])
    );
    // Bob got the note (as Cc) and then the reply (as To).
    let sent = service.objects().mailer().sent();
    let last = sent.last().expect("the reply was relayed");
    assert_eq!(last.to, "bob@example.com");
    let mime = String::from_utf8_lossy(&last.raw);
    assert!(mime.contains("\r\nTo: <bob@example.com>\r\n"), "{mime}");
    assert!(mime.contains("\r\nSubject: Re:\r\n"), "{mime}");
}

#[test]
fn a_reply_joins_its_originals_thread_even_without_a_message_id() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let long_id = format!("{}@x", "i".repeat(400));
    for raw in [
        "From: bot@example.com\r\nTo: alice@agents.test\r\nSubject: alert\r\n\r\nDisk full.\r\n"
            .to_owned(),
        format!(
            "From: bot@example.com\r\nTo: alice@agents.test\r\nSubject: alert 2\r\nMessage-ID: <{long_id}>\r\n\r\nDisk full.\r\n"
        ),
    ] {
        let original = deliver(&service, ALICE, &raw);
        let (status, answer) = reply(&service, &key, original, json!({"text": "On it."}));
        assert_eq!(status, 201, "{answer}");
        let t = thread_of(&service, &key, original);
        assert_eq!(answer["threadId"].as_u64(), Some(t));
        assert_eq!(
            thread_of(&service, &key, answer["id"].as_u64().expect("an id")),
            t
        );
    }
}

#[test]
fn a_reply_quotes_at_most_128_kib_of_a_long_original_and_says_so() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let body = "line of a long message\r\n".repeat(20_000);
    let raw = format!(
        "From: dana@example.com\r\nTo: {ALICE}\r\nSubject: long\r\nMessage-ID: <long@x>\r\n\r\n{body}"
    );
    let original = deliver(&service, ALICE, &raw);
    let (status, answer) = reply(&service, &key, original, json!({"text": "Read it."}));
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_u64().expect("an id");
    let (_, stored) = service.call("GET", &format!("/api/messages/{id}"), &key, None);
    let text = stored["text"].as_str().expect("a text");
    assert!(text.len() < 200 * 1024, "{} bytes", text.len());
    assert!(
        text.contains("is not repeated here."),
        "{}",
        &text[text.len() - 200..]
    );
    assert!(text.starts_with("Read it."));
}
