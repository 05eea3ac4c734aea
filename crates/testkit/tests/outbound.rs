//! Sending mail and webhooks, end to end through the real router and the real
//! InboxDO logic in process: the relays are testkit's fakes, the clock is
//! moved by hand, and alarms run when the test says the time has come.
#![cfg(not(target_arch = "wasm32"))]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use inbox_do::Relay;
use mail_parser::MimeHeaders as _;
use protocol::limits::{SENDS_PER_HOUR, SENDS_PER_MINUTE};
use router_worker::{HttpRequest, MailVerdict};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use testkit::{TestService, WebAnswer, object_id};

const HOOK: &str = "https://hooks.example.com/inboxkit";
const RELAY_URL: &str = "https://relay.example.com/emails";

fn body(bytes: &[u8]) -> Json {
    serde_json::from_slice(bytes).expect("a JSON body")
}

fn send(service: &TestService, key: &str, message: Json) -> (u16, Json) {
    service.call("POST", "/api/messages", key, Some(message))
}

fn raw(service: &TestService, key: &str, id: u64) -> Vec<u8> {
    let reply = service.request(
        &HttpRequest::new("GET", &format!("/api/messages/{id}/raw"))
            .header("authorization", &format!("Bearer {key}")),
    );
    assert_eq!(reply.status, 200);
    reply.body
}

/// HMAC-SHA256 written out from RFC 2104 over sha2, so the signatures are
/// checked by code other than the `hmac` crate the service signs with.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn header<'a>(call: &'a inbox_do::HttpCall, name: &str) -> &'a str {
    call.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

/// Checks both signatures of one delivery against `secret`.
fn assert_signed(call: &inbox_do::HttpCall, secret: &str) {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("a base64 secret");
    assert_eq!(key.len(), 32);
    let hex: String = hmac_sha256(&key, &call.body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        header(call, "x-inboxkit-signature"),
        format!("sha256={hex}")
    );
    let signed = format!(
        "{}.{}.{}",
        header(call, "webhook-id"),
        header(call, "webhook-timestamp"),
        String::from_utf8_lossy(&call.body)
    );
    let expected = format!(
        "v1,{}",
        STANDARD.encode(hmac_sha256(&key, signed.as_bytes()))
    );
    assert_eq!(header(call, "webhook-signature"), expected);
}

const INBOUND: &[u8] =
    b"From: Bob <bob@example.com>\r\nTo: alice@agents.test\r\nSubject: Hello\r\nMessage-ID: <1@example.com>\r\n\r\nHi!\r\n";

#[test]
fn a_send_request_is_checked_field_by_field() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let cases = [
        (json!({ "subject": "x", "text": "y" }), "to"),
        (
            json!({ "to": "bob@example.com\r\nBcc: eve@example.com", "text": "y" }),
            "to",
        ),
        (json!({ "to": "Bob <bob@example.com>", "text": "y" }), "to"),
        (
            json!({ "to": "bob@example.com, eve@example.com", "text": "y" }),
            "to",
        ),
        (json!({ "to": "bob@[127.0.0.1]", "text": "y" }), "to"),
        (json!({ "to": "bob@localhost", "text": "y" }), "to"),
        (
            json!({ "to": "nobody-here@agents.test", "text": "y" }),
            "to",
        ),
        (
            json!({ "to": "bob@example.com", "subject": "a\r\nBcc: eve@example.com", "text": "y" }),
            "subject",
        ),
        (
            json!({ "to": "bob@example.com", "subject": "a\nb", "text": "y" }),
            "subject",
        ),
        (json!({ "to": "bob@example.com", "subject": "x" }), "text"),
        (json!({ "to": "bob@example.com", "text": 5 }), "text"),
        (
            json!({ "to": "bob@example.com", "text": "y", "cc": "eve@example.com" }),
            "cc",
        ),
    ];
    for (request, field) in cases {
        let (status, answer) = send(&service, &key, request.clone());
        assert_eq!(status, 400, "{request} → {answer}");
        assert_eq!(answer["code"], "invalid_request");
        assert!(
            answer["error"].as_str().expect("a string").contains(field),
            "{request}: {answer} should name `{field}`"
        );
    }
    // Not JSON.
    let reply = service.request(
        &HttpRequest::new("POST", "/api/messages")
            .header("authorization", &format!("Bearer {key}"))
            .body("to=bob@example.com"),
    );
    assert_eq!(reply.status, 415);
    // Without a key nothing is looked at.
    let reply = service.request(
        &HttpRequest::new("POST", "/api/messages")
            .header("content-type", "application/json")
            .body(json!({ "to": "bob@example.com", "text": "y" }).to_string()),
    );
    assert_eq!(reply.status, 401);
    assert!(
        service.messages(&key).is_empty(),
        "nothing refused was stored"
    );
    assert!(service.objects().mailer().sent().is_empty());
}

#[test]
fn with_no_relay_outside_addresses_are_not_configured_but_inboxes_here_are_reachable() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "carol@example.com", "text": "hi" }),
    );
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("not_configured"))
    );
    assert!(service.messages(&alice).is_empty());

    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "Bob+News@Agents.Test", "subject": "Plans", "text": "See you at 5.", "html": "<p>See you at <b>5</b>.</p>" }),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "sent");
    assert!(answer.get("statusReason").is_none());
    let id = answer["id"].as_u64().expect("a number");

    let sent = service.messages(&alice);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["direction"], "outbound");
    assert_eq!(sent[0]["status"], "sent");
    assert_eq!(sent[0]["from"], "alice@agents.test");
    assert_eq!(sent[0]["to"], "bob+news@agents.test");
    assert_eq!(sent[0]["read"], true, "one's own sent mail is not unread");

    let received = service.messages(&bob);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["direction"], "inbound");
    assert_eq!(received[0]["from"], "alice@agents.test");
    assert_eq!(received[0]["subject"], "Plans");
    assert!(received[0].get("status").is_none());
    assert_eq!(received[0]["read"], false);
    let bob_id = received[0]["id"].as_u64().expect("a number");
    let (_, detail) = service.call("GET", &format!("/api/messages/{bob_id}"), &bob, None);
    assert_eq!(detail["text"], "See you at 5.");
    assert_eq!(detail["html"], "<p>See you at <b>5</b>.</p>");
    assert_eq!(detail["tag"], "News", "the tag as written");
    assert_eq!(detail["envelopeFrom"], "alice@agents.test");

    // Both inboxes hold the same bytes: proper MIME, built by the sender.
    let bytes = raw(&service, &alice, id);
    assert_eq!(bytes, raw(&service, &bob, bob_id));
    let parsed = mail_parser::MessageParser::default()
        .parse(&bytes)
        .expect("a readable message");
    let from = parsed
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    assert_eq!(from, Some("alice@agents.test"));
    let message_id = parsed.message_id().expect("a Message-ID");
    assert!(message_id.ends_with("@agents.test"), "{message_id}");
    assert_eq!(detail["messageId"], message_id);
    assert!(parsed.date().is_some());
    let content_type = parsed
        .content_type()
        .map(|c| (c.ctype().to_owned(), c.subtype().map(str::to_owned)));
    assert_eq!(
        content_type,
        Some(("multipart".into(), Some("alternative".into())))
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("MIME-Version: 1.0\r\n"));
    assert!(
        text.lines().all(|line| line.len() <= 998),
        "no over-long lines"
    );
}

#[test]
fn sending_to_oneself_stores_both_sides() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "alice@agents.test", "text": "note to self" }),
    );
    assert_eq!(
        (status, answer["status"].as_str()),
        (201, Some("sent")),
        "{answer}"
    );
    let list = service.messages(&alice);
    let directions: Vec<&str> = list
        .iter()
        .filter_map(|m| m["direction"].as_str())
        .collect();
    assert_eq!(directions, ["inbound", "outbound"]);
}

#[test]
fn the_send_email_binding_gets_the_stored_bytes_and_its_refusals_are_recorded() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "Carol@Example.COM", "subject": "Über", "text": "Grüße" }),
    );
    assert_eq!(
        (status, answer["status"].as_str()),
        (201, Some("sent")),
        "{answer}"
    );
    let id = answer["id"].as_u64().expect("a number");
    let sent = service.objects().mailer().sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].from.as_str(), sent[0].to.as_str()),
        ("alice@agents.test", "Carol@example.com")
    );
    assert_eq!(sent[0].raw, raw(&service, &alice, id));
    assert!(sent[0].raw.is_ascii(), "7-bit clean: non-ASCII is encoded");

    service
        .objects()
        .mailer()
        .refuse_next(["destination address is not verified".to_owned()]);
    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "dave@example.com", "text": "hi" }),
    );
    assert_eq!(status, 201);
    assert_eq!(answer["status"], "failed");
    let reason = answer["statusReason"].as_str().expect("a string");
    assert!(
        reason.contains("destination address is not verified"),
        "{reason}"
    );
    let listed = service.messages(&alice);
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(listed[0]["statusReason"], reason);
}

#[test]
fn the_http_relay_is_called_in_resends_shape_and_its_errors_are_recorded() {
    let service = TestService::with_relay(Relay::Http {
        api_key: "re_test_key".into(),
        url: RELAY_URL.into(),
    });
    let alice = service.signup("alice");
    let web = service.objects().web();
    web.script(
        RELAY_URL,
        [
            WebAnswer::Status(200, r#"{"id":"4ef9a417"}"#.into()),
            WebAnswer::Status(
                422,
                r#"{"statusCode":422,"name":"validation_error","message":"Invalid `to` field."}"#
                    .into(),
            ),
            WebAnswer::Timeout,
        ],
    );
    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "carol@example.com", "subject": "S", "text": "T", "html": "<p>H</p>" }),
    );
    assert_eq!(
        (status, answer["status"].as_str()),
        (201, Some("sent")),
        "{answer}"
    );
    let calls = web.calls_to(RELAY_URL);
    assert_eq!(calls.len(), 1);
    assert_eq!(header(&calls[0], "authorization"), "Bearer re_test_key");
    let sent = body(&calls[0].body);
    assert_eq!(sent["from"], "alice@agents.test");
    assert_eq!(sent["to"], json!(["carol@example.com"]));
    assert_eq!(
        (
            sent["subject"].as_str(),
            sent["text"].as_str(),
            sent["html"].as_str()
        ),
        (Some("S"), Some("T"), Some("<p>H</p>"))
    );
    let id = answer["id"].as_u64().expect("a number");
    let (_, detail) = service.call("GET", &format!("/api/messages/{id}"), &alice, None);
    assert_eq!(
        sent["headers"]["Message-ID"],
        format!("<{}>", detail["messageId"].as_str().expect("a string"))
    );
    assert_eq!(
        header(&calls[0], "idempotency-key"),
        detail["messageId"].as_str().expect("a string")
    );

    let (_, answer) = send(
        &service,
        &alice,
        json!({ "to": "carol@example.com", "text": "T" }),
    );
    assert_eq!(answer["status"], "failed");
    assert_eq!(
        answer["statusReason"],
        "The relay refused the message (422): Invalid `to` field."
    );
    let (_, answer) = send(
        &service,
        &alice,
        json!({ "to": "carol@example.com", "text": "T" }),
    );
    assert_eq!(answer["status"], "failed");
    assert_eq!(
        answer["statusReason"],
        "The relay could not be reached: No complete answer within 30 s."
    );
    assert_eq!(
        service.messages(&alice).len(),
        3,
        "every send is kept, whatever its fate"
    );
}

#[test]
fn an_interrupted_send_is_finished_by_the_alarm() {
    let service = TestService::with_relay(Relay::Http {
        api_key: "re_test_key".into(),
        url: RELAY_URL.into(),
    });
    let alice = service.signup("alice");
    // The first attempt hands the message over but cannot record it, as if
    // the object were evicted right after the relay's answer.
    service.objects().with_db_of("alice", |db| {
        db.fail_statements("UPDATE messages SET send_status", 0, 1)
    });
    let (status, _) = send(
        &service,
        &alice,
        json!({ "to": "carol@example.com", "text": "T" }),
    );
    assert_eq!(status, 500);
    let listed = service.messages(&alice);
    assert_eq!(listed[0]["status"], "queued");
    // Its job is leased for a minute, and the alarm is set for then.
    assert_eq!(service.run_alarms(), 0);
    service.clock.advance(60_000);
    assert_eq!(service.run_alarms(), 1);
    assert_eq!(service.messages(&alice)[0]["status"], "sent");
    let calls = service.objects().web().calls_to(RELAY_URL);
    assert_eq!(calls.len(), 2, "at least once: the relay saw it twice...");
    assert_eq!(
        header(&calls[0], "idempotency-key"),
        header(&calls[1], "idempotency-key"),
        "...with one idempotency key, so it delivers once"
    );
    service.clock.advance(3_600_000);
    assert_eq!(service.run_alarms(), 0, "nothing is left to do");
}

#[test]
fn sends_are_rate_limited_per_inbox() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    for _ in 0..SENDS_PER_MINUTE {
        let (status, _) = send(
            &service,
            &alice,
            json!({ "to": "bob@agents.test", "text": "hi" }),
        );
        assert_eq!(status, 201);
        service.clock.advance(1_000);
    }
    let reply = service.request(
        &HttpRequest::new("POST", "/api/messages")
            .header("authorization", &format!("Bearer {alice}"))
            .header("content-type", "application/json")
            .body(json!({ "to": "bob@agents.test", "text": "hi" }).to_string()),
    );
    assert_eq!(reply.status, 429);
    assert_eq!(body(&reply.body)["code"], "rate_limited");
    // The oldest send of the window was 10 s ago: it leaves it in 50 s.
    assert_eq!(reply.header("retry-after"), Some("50"));
    // Another inbox is not affected.
    let (status, _) = send(
        &service,
        &bob,
        json!({ "to": "alice@agents.test", "text": "hi" }),
    );
    assert_eq!(status, 201);
    service.clock.advance(50_000);
    let (status, _) = send(
        &service,
        &alice,
        json!({ "to": "bob@agents.test", "text": "hi" }),
    );
    assert_eq!(status, 201);
    // The hourly limit holds too.
    let mut sent = SENDS_PER_MINUTE + 1;
    while sent < SENDS_PER_HOUR {
        service.clock.advance(7_000);
        let (status, answer) = send(
            &service,
            &alice,
            json!({ "to": "bob@agents.test", "text": "hi" }),
        );
        assert_eq!(status, 201, "send {sent}: {answer}");
        sent += 1;
    }
    service.clock.advance(7_000);
    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "bob@agents.test", "text": "hi" }),
    );
    assert_eq!(
        (status, answer["code"].as_str()),
        (429, Some("rate_limited"))
    );
}

#[test]
fn webhooks_are_set_read_and_removed_and_their_urls_checked() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let (status, _) = service.call("GET", "/api/webhook", &alice, None);
    assert_eq!(status, 404);
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://2130706433/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:192.168.0.1]/x",
        "https://100.64.0.1/x",
        "https://localhost/x",
        "https://user:pass@hooks.example.com/x",
        "not a url",
    ] {
        let (status, answer) =
            service.call("PUT", "/api/webhook", &alice, Some(json!({ "url": url })));
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("invalid_request")),
            "{url}"
        );
        assert!(
            answer["error"]
                .as_str()
                .expect("a string")
                .contains("`url`")
        );
    }
    let secret = service.set_webhook(&alice, HOOK);
    assert!(secret.starts_with("whsec_"));
    let (status, info) = service.call("GET", "/api/webhook", &alice, None);
    assert_eq!(status, 200);
    assert_eq!(info["url"], HOOK);
    assert!(info.get("secret").is_none(), "the secret is shown once");
    // A new PUT replaces it, with a new secret.
    assert_ne!(service.set_webhook(&alice, HOOK), secret);
    let (status, _) = service.call("DELETE", "/api/webhook", &alice, None);
    assert_eq!(status, 204);
    let (status, _) = service.call("GET", "/api/webhook", &alice, None);
    assert_eq!(status, 404);
    // Another inbox never sees it.
    let bob = service.signup("bob");
    service.set_webhook(&alice, HOOK);
    let (status, _) = service.call("GET", "/api/webhook", &bob, None);
    assert_eq!(status, 404);
}

#[test]
fn a_received_message_is_announced_once_signed_both_ways() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let secret = service.set_webhook(&alice, HOOK);
    assert!(matches!(
        service.deliver("bob@example.com", "alice@agents.test", INBOUND),
        MailVerdict::Accepted(1)
    ));
    // Queued with the message; sent after the response, by the alarm.
    assert!(service.objects().web().calls().is_empty());
    assert_eq!(
        service.objects().alarm_of(&object_id("alice")),
        Some(service.clock.now())
    );
    assert_eq!(service.run_alarms(), 1);
    let calls = service.objects().web().calls_to(HOOK);
    assert_eq!(calls.len(), 1);
    assert_signed(&calls[0], &secret);
    let event = body(&calls[0].body);
    assert_eq!(event["event"], "message.received");
    assert_eq!(event["messageId"], 1);
    assert_eq!(event["from"], "bob@example.com");
    assert_eq!(event["to"], "alice@agents.test");
    assert_eq!(event["subject"], "Hello");
    assert_eq!(event["receivedAt"], "2026-03-26T12:00:00Z");
    assert_eq!(event["eventId"], header(&calls[0], "webhook-id"));
    assert!(header(&calls[0], "webhook-id").starts_with("evt_"));
    assert_eq!(header(&calls[0], "webhook-timestamp"), "1774526400");
    assert_eq!(header(&calls[0], "content-type"), "application/json");
    // A redelivery of the same message is not a new event.
    assert!(matches!(
        service.deliver("bob@example.com", "alice@agents.test", INBOUND),
        MailVerdict::Duplicate(1)
    ));
    service.clock.advance(86_400_000);
    service.run_alarms();
    assert_eq!(service.objects().web().calls_to(HOOK).len(), 1);
    let (_, deliveries) = service.call("GET", "/api/webhook/deliveries", &alice, None);
    assert_eq!(deliveries["deliveries"].as_array().map(Vec::len), Some(1));
    assert_eq!(deliveries["deliveries"][0]["statusCode"], 200);
    assert_eq!(deliveries["deliveries"][0]["attempt"], 1);
}

#[test]
fn failed_deliveries_are_retried_on_the_schedule_with_the_same_event() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let secret = service.set_webhook(&alice, HOOK);
    let web = service.objects().web();
    web.script(
        HOOK,
        [
            WebAnswer::Status(500, String::new()),
            WebAnswer::Timeout,
            WebAnswer::Unreachable,
        ],
    );
    service.deliver("bob@example.com", "alice@agents.test", INBOUND);
    let start = service.clock.now();
    let mut times = Vec::new();
    for _ in 0..100 {
        if service.run_alarms() > 0 {
            times.push((service.clock.now().millis() - start.millis()) / 1000);
        }
        if web.calls_to(HOOK).len() == 4 {
            break;
        }
        service.clock.advance(1_000);
        // Survives the object going to sleep between attempts.
        service.objects().restart();
    }
    assert_eq!(
        times,
        [0, 10, 70],
        "first at once, then after 10 s and 1 min"
    );
    for _ in 0..600 {
        service.clock.advance(1_000);
        service.run_alarms();
    }
    let calls = web.calls_to(HOOK);
    assert_eq!(
        calls.len(),
        4,
        "the fourth attempt (after 10 min) succeeded"
    );
    for call in &calls {
        assert_eq!(call.body, calls[0].body, "the same bytes every time");
        assert_eq!(header(call, "webhook-id"), header(&calls[0], "webhook-id"));
        assert_signed(call, &secret);
    }
    let (_, deliveries) = service.call("GET", "/api/webhook/deliveries", &alice, None);
    let attempts: Vec<(u64, Json, bool)> = deliveries["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap_or(0),
                d["statusCode"].clone(),
                d["nextAttemptAt"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            (4, json!(200), false),
            (3, Json::Null, true),
            (2, Json::Null, true),
            (1, json!(500), true)
        ]
    );
    let errors: Vec<&str> = deliveries["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["error"].as_str())
        .collect();
    assert_eq!(
        errors,
        [
            "The request failed: connection refused",
            "No complete answer within 5 s.",
            "The receiver answered HTTP 500.",
        ]
    );
}

#[test]
fn delivery_gives_up_after_six_attempts_and_410_removes_the_webhook() {
    let service = TestService::new();
    let alice = service.signup("alice");
    service.set_webhook(&alice, HOOK);
    let web = service.objects().web();
    web.script(HOOK, (0..10).map(|_| WebAnswer::Status(503, String::new())));
    service.deliver("bob@example.com", "alice@agents.test", INBOUND);
    service.run_alarms();
    for seconds in [10, 60, 600, 3600, 21600, 86400] {
        service.clock.advance(seconds * 1000);
        service.run_alarms();
    }
    assert_eq!(web.calls_to(HOOK).len(), 6);
    let (_, deliveries) = service.call("GET", "/api/webhook/deliveries", &alice, None);
    let last = &deliveries["deliveries"][0];
    assert_eq!(last["attempt"], 6);
    assert_eq!(
        last["error"],
        "The receiver answered HTTP 503. Gave up after 6 attempts."
    );
    assert_eq!(
        service.objects().alarm_of(&object_id("alice")),
        None,
        "nothing is pending"
    );

    // 410 Gone: the webhook is removed, and with it what was pending.
    let other = "https://hooks.example.com/gone";
    service.set_webhook(&alice, other);
    web.script(other, [WebAnswer::Status(410, String::new())]);
    let second = INBOUND
        .to_vec()
        .into_iter()
        .chain(b"more\r\n".iter().copied())
        .collect::<Vec<u8>>();
    service.deliver("bob@example.com", "alice@agents.test", &second);
    service.run_alarms();
    let (status, _) = service.call("GET", "/api/webhook", &alice, None);
    assert_eq!(status, 404);
    let third = [second.as_slice(), b"again\r\n"].concat();
    service.deliver("bob@example.com", "alice@agents.test", &third);
    service.clock.advance(86_400_000);
    service.run_alarms();
    assert_eq!(web.calls_to(other).len(), 1);
}

#[test]
fn deleting_the_webhook_drops_its_pending_events() {
    let service = TestService::new();
    let alice = service.signup("alice");
    service.set_webhook(&alice, HOOK);
    let web = service.objects().web();
    web.script(HOOK, [WebAnswer::Status(500, String::new())]);
    service.deliver("bob@example.com", "alice@agents.test", INBOUND);
    service.run_alarms();
    service.call("DELETE", "/api/webhook", &alice, None);
    service.clock.advance(86_400_000);
    service.run_alarms();
    assert_eq!(web.calls_to(HOOK).len(), 1);
}

#[test]
fn a_send_between_inboxes_tells_both_webhooks() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let alice_secret = service.set_webhook(&alice, "https://alice.example.com/hook");
    let bob_secret = service.set_webhook(&bob, "https://bob.example.com/hook");
    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "bob@agents.test", "subject": "Ping", "text": "ping" }),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(service.run_alarms(), 2);
    let web = service.objects().web();
    let to_alice = web.calls_to("https://alice.example.com/hook");
    let to_bob = web.calls_to("https://bob.example.com/hook");
    assert_eq!((to_alice.len(), to_bob.len()), (1, 1));
    assert_signed(&to_alice[0], &alice_secret);
    assert_signed(&to_bob[0], &bob_secret);
    let sent = body(&to_alice[0].body);
    let received = body(&to_bob[0].body);
    assert_eq!(
        (sent["event"].as_str(), received["event"].as_str()),
        (Some("message.sent"), Some("message.received"))
    );
    assert_eq!(sent["messageId"], answer["id"]);
    assert_eq!(
        (sent["from"].as_str(), sent["to"].as_str()),
        (Some("alice@agents.test"), Some("bob@agents.test"))
    );
    assert_eq!(
        (received["from"].as_str(), received["subject"].as_str()),
        (Some("alice@agents.test"), Some("Ping"))
    );
    assert_ne!(sent["eventId"], received["eventId"]);
}
