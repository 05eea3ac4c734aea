//! Live events: what the inbox publishes to its sockets when mail is stored
//! and when a send leaves the queue, what a client's frame is answered, and
//! how the router authenticates the upgrade (the socket itself is the
//! host's: natively the object's answer is the 101 it would upgrade with).
#![cfg(not(target_arch = "wasm32"))]

use router_worker::HttpRequest;
use serde_json::{Value as Json, json};
use testkit::{TestService, object_id};

fn frames(list: Vec<String>) -> Vec<Json> {
    list.iter()
        .map(|f| serde_json::from_str(f).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect()
}

fn published(service: &TestService, handle: &str) -> Vec<Json> {
    frames(service.objects().published(&object_id(handle)))
}

fn deliver(service: &TestService, subject: &str) -> u64 {
    let raw = format!(
        "From: Carol <carol@example.com>\r\nTo: alice@agents.test\r\nSubject: {subject}\r\n\r\nHi\r\n"
    );
    match service.deliver("carol@example.com", "alice@agents.test", raw.as_bytes()) {
        router_worker::MailVerdict::Accepted(id) => id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn stored_mail_and_a_settled_send_are_published_once_each() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let _bob = service.signup("bob");
    let id = deliver(&service, "Hello");
    // A redelivery of the same bytes stores nothing, and tells nothing.
    let raw =
        "From: Carol <carol@example.com>\r\nTo: alice@agents.test\r\nSubject: Hello\r\n\r\nHi\r\n";
    service.deliver("carol@example.com", "alice@agents.test", raw.as_bytes());
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &alice,
        Some(json!({ "to": "bob@agents.test", "subject": "Out", "text": "t" })),
    );
    assert_eq!(status, 201, "{sent}");
    let events = published(&service, "alice");
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["type"], "message.received");
    assert_eq!(events[0]["message"]["id"], id);
    assert_eq!(events[0]["message"]["subject"], "Hello");
    assert!(
        events[0].get("replay").is_none(),
        "live events are not replays"
    );
    assert_eq!(events[1]["type"], "message.sent");
    assert_eq!(events[1]["message"]["id"], sent["id"]);
    assert_eq!(events[1]["message"]["status"], "sent");
    // Bob's inbox told its own sockets of the mail it got.
    let bobs = published(&service, "bob");
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    assert_eq!(bobs[0]["type"], "message.received");
    assert_eq!(bobs[0]["message"]["subject"], "Out");
}

#[test]
fn subscribe_replays_what_was_missed_then_says_subscribed() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let _bob = service.signup("bob");
    let first = deliver(&service, "One");
    let second = deliver(&service, "Two");
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &alice,
        Some(json!({ "to": "bob@agents.test", "subject": "Three", "text": "t" })),
    );
    assert_eq!(status, 201, "{sent}");
    let socket = |text: &str| frames(service.objects().socket_frame(&object_id("alice"), text));
    let replay = socket(&json!({ "type": "subscribe", "after": first }).to_string());
    assert_eq!(replay.len(), 3, "{replay:?}");
    assert_eq!(replay[0]["type"], "message.received");
    assert_eq!(replay[0]["message"]["id"], second);
    assert_eq!(replay[0]["replay"], true);
    assert_eq!(replay[1]["type"], "message.sent");
    assert_eq!(replay[1]["message"]["id"], sent["id"]);
    assert_eq!(
        replay[2],
        json!({ "type": "subscribed", "after": first, "replayed": 2, "more": false })
    );
    assert_eq!(
        socket(r#"{"type":"ping"}"#),
        vec![json!({ "type": "pong" })]
    );
    for bad in [
        "not json",
        "{}",
        r#"{"type":"nonsense"}"#,
        r#"{"type":"subscribe","after":"x"}"#,
        r#"{"type":"subscribe","after":-1}"#,
        r#"{"type":"subscribe","after":1,"extra":true}"#,
        "binary",
    ] {
        let answer = socket(bad);
        assert_eq!(answer.len(), 1, "{bad}: {answer:?}");
        assert_eq!(answer[0]["type"], "error", "{bad}");
        assert!(answer[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let long = format!(
        r#"{{"type":"subscribe","after":1,"pad":"{}"}}"#,
        "x".repeat(2000)
    );
    assert!(
        socket(&long)[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("1024 bytes"))
    );
}

#[test]
fn a_replay_is_bounded_and_says_more_follows() {
    let service = TestService::new();
    let _alice = service.signup("alice");
    for n in 0..105 {
        deliver(&service, &format!("Mail {n}"));
    }
    let socket = |after: u64| {
        frames(service.objects().socket_frame(
            &object_id("alice"),
            &json!({ "type": "subscribe", "after": after }).to_string(),
        ))
    };
    let first = socket(0);
    assert_eq!(first.len(), 101);
    let end = first.last().expect("subscribed");
    assert_eq!(end["replayed"], 100);
    assert_eq!(end["more"], true);
    let last_id = first[99]["message"]["id"].as_u64().expect("an id");
    let rest = socket(last_id);
    assert_eq!(rest.len(), 6);
    assert_eq!(rest[5]["more"], false);
}

#[test]
fn the_upgrade_takes_the_key_from_authorization_or_the_subprotocol() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let upgrade = |request: HttpRequest| service.request(&request.header("upgrade", "websocket"));
    let reply = upgrade(
        HttpRequest::new("GET", "/api/events").header("authorization", &format!("Bearer {alice}")),
    );
    assert_eq!(reply.status, 101);
    assert_eq!(reply.header("sec-websocket-protocol"), None);
    let protocols = format!("json, inboxkit.key.{alice}");
    let reply = upgrade(
        HttpRequest::new("GET", "/api/events").header("sec-websocket-protocol", &protocols),
    );
    assert_eq!(reply.status, 101);
    assert_eq!(
        reply.header("sec-websocket-protocol"),
        Some(format!("inboxkit.key.{alice}").as_str()),
        "the key's protocol is echoed, and only it"
    );
    for bad in [
        "inboxkit.key.ik_nope",
        "inboxkit.key.",
        "json",
        "inboxkit.key.ik_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let reply =
            upgrade(HttpRequest::new("GET", "/api/events").header("sec-websocket-protocol", bad));
        assert_eq!(reply.status, 401, "{bad}");
    }
    // The subprotocol carries a key for the event socket only.
    let reply = service.request(
        &HttpRequest::new("GET", "/api/me")
            .header("sec-websocket-protocol", &format!("inboxkit.key.{alice}")),
    );
    assert_eq!(reply.status, 401);
    // Without the upgrade, a clear 400.
    let (status, answer) = service.call("GET", "/api/events", &alice, None);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("WebSocket"))
    );
}

#[test]
fn a_replay_leaves_out_queued_sends_without_losing_its_place() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let _bob = service.signup("bob");
    for n in 0..3 {
        let (status, sent) = service.call(
            "POST",
            "/api/messages",
            &alice,
            Some(json!({ "to": "bob@agents.test", "subject": format!("Out {n}"), "text": "t" })),
        );
        assert_eq!(status, 201, "{sent}");
    }
    // As if the three were still waiting for a relay.
    service.objects().with_db_of("alice", |db| {
        schema::Sql::exec(db, "UPDATE messages SET send_status = 'queued'", &[])
            .expect("marking them queued");
    });
    let inbound = deliver(&service, "After the sends");
    let replay = frames(
        service
            .objects()
            .socket_frame(&object_id("alice"), r#"{"type":"subscribe","after":0}"#),
    );
    assert_eq!(replay.len(), 2, "{replay:?}");
    assert_eq!(replay[0]["message"]["id"], inbound);
    assert_eq!(replay[1]["replayed"], 1);
    assert_eq!(replay[1]["more"], false);
}
