//! Sending mail and webhooks, end to end through the real router and the real
//! InboxDO logic in process: the relays are testkit's fakes, the clock is
//! moved by hand, and alarms run when the test says the time has come.
#![cfg(not(target_arch = "wasm32"))]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use inbox_do::Relay;
use mail_parser::MimeHeaders as _;
use protocol::limits::{MAX_RECIPIENTS, RECIPIENTS_PER_HOUR, SENDS_PER_HOUR, SENDS_PER_MINUTE};
use protocol::wire::InboxRequest;
use router_worker::InboxNamespace as _;
use router_worker::{HttpRequest, MailVerdict};
use schema::{Sql as _, Value};
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
            json!({ "to": "bob@example.com", "text": "y", "cc": 5 }),
            "cc",
        ),
        (
            json!({ "to": "bob@example.com", "text": "y", "bcc": ["eve@example.com", "eve"] }),
            "bcc[1]",
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

fn recipients_of(answer: &Json) -> Vec<(String, String, String)> {
    answer["recipients"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let field = |name: &str| r[name].as_str().unwrap_or_default().to_owned();
            (field("address"), field("kind"), field("status"))
        })
        .collect()
}

fn triple(address: &str, kind: &str, status: &str) -> (String, String, String) {
    (address.to_owned(), kind.to_owned(), status.to_owned())
}

fn sent_events(service: &TestService, hook: &str) -> Vec<Json> {
    service
        .objects()
        .web()
        .calls_to(hook)
        .iter()
        .map(|c| body(&c.body))
        .filter(|e| e["event"] == "message.sent")
        .collect()
}

#[test]
fn recipients_are_an_address_or_a_list_checked_one_by_one_and_delivered_once() {
    let service = TestService::with_relay(Relay::SendEmail);
    let key = service.signup("alice");
    let many: Vec<String> = (0..=MAX_RECIPIENTS)
        .map(|i| format!("r{i}@example.com"))
        .collect();
    let cases = [
        (json!({ "to": [], "text": "y" }), "`to`", "at least one"),
        (
            json!({ "to": ["bob@example.com", "Bob <b@example.com>"], "text": "y" }),
            "`to[1]`",
            "plain address",
        ),
        (
            json!({ "to": "bob@example.com", "cc": ["c@example.com", "d@example.com", "not an address"], "text": "y" }),
            "`cc[2]`",
            "name@example.com",
        ),
        (
            json!({ "to": "bob@example.com", "bcc": "x@[127.0.0.1]", "text": "y" }),
            "`bcc`",
            "domain",
        ),
        (
            json!({ "to": "bob@example.com", "replyTo": ["ok@example.com", "a\r\nb@example.com"], "text": "y" }),
            "`replyTo[1]`",
            "one line",
        ),
        (
            json!({ "to": "bob@example.com", "cc": ["nobody-here@agents.test"], "text": "y" }),
            "`cc[0]`",
            "no inbox",
        ),
        (
            json!({ "to": many, "text": "y" }),
            "recipients",
            "at most 50",
        ),
        (
            json!({ "to": many[..30].to_vec(), "cc": many[30..40].to_vec(), "bcc": many[40..].to_vec(), "text": "y" }),
            "recipients",
            "51 addresses",
        ),
        (
            json!({ "to": 5, "text": "y" }),
            "`to`",
            "an address or a list of addresses",
        ),
        (
            json!({ "to": "bob@example.com", "cc": { "a": 1 }, "text": "y" }),
            "`cc`",
            "an address or a list of addresses",
        ),
        (
            json!({ "to": "bob@example.com", "reply_to": "desk@example.com", "text": "y" }),
            "reply_to",
            "unknown field",
        ),
    ];
    for (request, field, why) in cases {
        let (status, answer) = send(&service, &key, request.clone());
        assert_eq!(status, 400, "{request} → {answer}");
        assert_eq!(answer["code"], "invalid_request");
        let error = answer["error"].as_str().expect("a string");
        assert!(
            error.contains(field) && error.contains(why),
            "{request}: {answer} should name {field} and say {why}"
        );
    }
    assert!(
        service.messages(&key).is_empty(),
        "nothing refused was stored"
    );
    assert!(service.objects().mailer().sent().is_empty());

    // A string or a list, cc, bcc and replyTo; each address delivered once
    // (the first naming wins, compared without case).
    let (status, answer) = send(
        &service,
        &key,
        json!({
            "to": ["bob@example.com", "BOB@example.com"],
            "cc": ["Bob@Example.com", "carol@example.com"],
            "bcc": "carol@example.com",
            "replyTo": "desk@example.com",
            "text": "y"
        }),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        recipients_of(&answer),
        [
            triple("bob@example.com", "to", "sent"),
            triple("carol@example.com", "cc", "sent")
        ]
    );
    let sent = service.objects().mailer().sent();
    let to: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, ["bob@example.com", "carol@example.com"]);
    let text = String::from_utf8_lossy(&sent[0].raw).into_owned();
    assert!(text.contains("To: <bob@example.com>\r\n"), "{text}");
    assert!(text.contains("Cc: <carol@example.com>\r\n"), "{text}");
    assert!(text.contains("Reply-To: <desk@example.com>\r\n"), "{text}");
    // Exactly the most is fine.
    let (status, answer) = send(
        &service,
        &key,
        json!({ "to": many[..MAX_RECIPIENTS].to_vec(), "text": "y" }),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(recipients_of(&answer).len(), MAX_RECIPIENTS);
}

#[test]
fn each_recipient_has_its_own_outcome_in_the_answer_and_on_the_message() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let carol = service.signup("carol");
    // An inbox KV still names but that holds no mailbox (a stale entry):
    // routed directly, refused there.
    service.kv().insert("handle:ghost", &object_id("ghost"));
    service
        .objects()
        .mailer()
        .refuse_address("dave@example.com", "destination address is not verified");
    let hook = "https://alice.example.com/hook";
    service.set_webhook(&alice, hook);
    let (status, answer) = send(
        &service,
        &alice,
        json!({
            "to": ["bob@agents.test", "erin@example.com"],
            "cc": ["ghost@agents.test", "dave@example.com"],
            "bcc": ["carol@agents.test"],
            "subject": "Plans",
            "text": "See you at 5."
        }),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "sent", "{answer}");
    assert_eq!(
        answer["statusReason"],
        "2 of 5 recipients failed; see recipients."
    );
    assert_eq!(
        recipients_of(&answer),
        [
            triple("bob@agents.test", "to", "sent"),
            triple("erin@example.com", "to", "sent"),
            triple("ghost@agents.test", "cc", "failed"),
            triple("dave@example.com", "cc", "failed"),
            triple("carol@agents.test", "bcc", "sent"),
        ]
    );
    assert_eq!(
        answer["recipients"][2]["statusReason"],
        "There is no inbox ghost@agents.test on this deployment."
    );
    assert_eq!(
        answer["recipients"][3]["statusReason"],
        "The send_email binding refused the message: destination address is not verified"
    );
    assert!(answer["recipients"][0].get("statusReason").is_none());
    // The stored message keeps them.
    let id = answer["id"].as_u64().expect("an id");
    let (_, detail) = service.call("GET", &format!("/api/messages/{id}"), &alice, None);
    assert_eq!(detail["recipients"], answer["recipients"]);
    assert_eq!(detail["status"], "sent");
    assert_eq!(detail["statusReason"], answer["statusReason"]);
    assert_eq!(detail["to"], "bob@agents.test", "the first `to` is listed");
    let listed = service.messages(&alice);
    assert_eq!(listed[0]["statusReason"], answer["statusReason"]);
    // Delivered: directly to bob and carol, through the relay to erin.
    assert_eq!(service.messages(&bob).len(), 1);
    assert_eq!(service.messages(&carol).len(), 1);
    let relayed: Vec<String> = service
        .objects()
        .mailer()
        .sent()
        .into_iter()
        .map(|m| m.to)
        .collect();
    assert_eq!(relayed, ["erin@example.com"]);

    // When every recipient fails, the message has failed.
    let (status, answer) = send(
        &service,
        &alice,
        json!({ "to": "ghost@agents.test", "cc": "dave@example.com", "text": "x" }),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "failed");
    assert_eq!(
        answer["statusReason"],
        "All 2 recipients failed; see recipients."
    );
    // One recipient that fails: its own reason.
    let (_, answer) = send(
        &service,
        &alice,
        json!({ "to": "dave@example.com", "text": "x" }),
    );
    assert_eq!(
        (answer["status"].as_str(), answer["statusReason"].as_str()),
        (
            Some("failed"),
            Some("The send_email binding refused the message: destination address is not verified")
        )
    );
    // `message.sent` once for the message some got, none for the others.
    service.run_alarms();
    let events = sent_events(&service, hook);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["messageId"], id);
}

#[test]
fn bcc_recipients_get_the_message_and_no_header_names_them() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let dave = service.signup("dave");
    let (status, answer) = send(
        &service,
        &alice,
        json!({
            "to": "bob@agents.test",
            "cc": "carol@example.com",
            "bcc": ["dave@agents.test", "erin@example.com"],
            "replyTo": ["desk@agents.test"],
            "text": "for all of you"
        }),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "sent", "{answer}");
    let id = answer["id"].as_u64().expect("an id");
    let stored = raw(&service, &alice, id);
    let text = String::from_utf8_lossy(&stored).to_ascii_lowercase();
    assert!(!text.contains("bcc"), "{text}");
    assert!(!text.contains("dave") && !text.contains("erin"), "{text}");
    assert!(text.contains("to: <bob@agents.test>\r\n"), "{text}");
    assert!(text.contains("cc: <carol@example.com>\r\n"), "{text}");
    assert!(text.contains("reply-to: <desk@agents.test>\r\n"), "{text}");
    // The relay got the same bytes for each of its envelope recipients.
    let sent = service.objects().mailer().sent();
    let envelope: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(envelope, ["carol@example.com", "erin@example.com"]);
    assert!(sent.iter().all(|m| m.raw == stored));
    // So did the inboxes here, the blind copy's included.
    for (key, delivered_to) in [(&bob, "bob@agents.test"), (&dave, "dave@agents.test")] {
        let received = service.messages(key);
        assert_eq!(received.len(), 1);
        assert_eq!(received[0]["to"], delivered_to);
        let received_id = received[0]["id"].as_u64().expect("an id");
        assert_eq!(raw(&service, key, received_id), stored);
        let (_, detail) = service.call("GET", &format!("/api/messages/{received_id}"), key, None);
        assert_eq!(detail["cc"], json!(["carol@example.com"]));
        assert_eq!(detail["replyTo"], json!(["desk@agents.test"]));
        assert!(detail.get("recipients").is_none(), "inbound: {detail}");
    }
}

#[test]
fn the_http_relay_takes_every_outside_recipient_in_one_call() {
    let service = TestService::with_relay(Relay::Http {
        api_key: "re_test_key".into(),
        url: RELAY_URL.into(),
    });
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let web = service.objects().web();
    let (status, answer) = send(
        &service,
        &alice,
        json!({
            "to": ["bob@agents.test", "xavier@example.com"],
            "cc": "carol@example.com",
            "bcc": ["dave@example.com", "erin@example.com"],
            "replyTo": "desk@example.com",
            "subject": "S",
            "text": "T"
        }),
    );
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["status"], "sent");
    assert!(answer.get("statusReason").is_none(), "{answer}");
    let calls = web.calls_to(RELAY_URL);
    assert_eq!(calls.len(), 1, "one call for every outside recipient");
    let call = body(&calls[0].body);
    assert_eq!(call["to"], json!(["xavier@example.com"]));
    assert_eq!(call["cc"], json!(["carol@example.com"]));
    assert_eq!(call["bcc"], json!(["dave@example.com", "erin@example.com"]));
    assert_eq!(call["reply_to"], json!(["desk@example.com"]));
    assert_eq!(service.messages(&bob).len(), 1, "bob's copy went directly");

    // A refusal fails the relay's recipients, not the inbox here.
    web.script(
        RELAY_URL,
        [WebAnswer::Status(
            422,
            r#"{"message":"Invalid `to` field."}"#.into(),
        )],
    );
    let (_, answer) = send(
        &service,
        &alice,
        json!({ "to": ["bob@agents.test", "xavier@example.com"], "cc": "carol@example.com", "text": "T" }),
    );
    assert_eq!(answer["status"], "sent");
    assert_eq!(
        answer["statusReason"],
        "2 of 3 recipients failed; see recipients."
    );
    assert_eq!(
        recipients_of(&answer),
        [
            triple("bob@agents.test", "to", "sent"),
            triple("xavier@example.com", "to", "failed"),
            triple("carol@example.com", "cc", "failed"),
        ]
    );
    assert_eq!(
        answer["recipients"][1]["statusReason"],
        "The relay refused the message (422): Invalid `to` field."
    );

    // Only blind copies outside: each gets a call addressed to itself, so
    // none learns of another.
    let before = web.calls_to(RELAY_URL).len();
    let (_, answer) = send(
        &service,
        &alice,
        json!({ "to": "bob@agents.test", "bcc": ["dave@example.com", "erin@example.com"], "text": "T" }),
    );
    assert_eq!(answer["status"], "sent", "{answer}");
    let calls = web.calls_to(RELAY_URL);
    let blind: Vec<Json> = calls[before..].iter().map(|c| body(&c.body)).collect();
    let mut addressed: Vec<String> = blind.iter().map(|c| c["to"].to_string()).collect();
    addressed.sort();
    assert_eq!(
        addressed,
        [r#"["dave@example.com"]"#, r#"["erin@example.com"]"#]
    );
    assert!(
        blind
            .iter()
            .all(|c| c.get("bcc").is_none() && c.get("cc").is_none())
    );
    let keys: Vec<&str> = calls[before..]
        .iter()
        .map(|c| header(c, "idempotency-key"))
        .collect();
    assert_ne!(keys[0], keys[1], "each call its own idempotency key");
}

#[test]
fn recipients_per_hour_are_limited_across_messages() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    let per_message = u32::try_from(MAX_RECIPIENTS).expect("small");
    let batch = |n: u32, tag: u32| -> Json {
        let to: Vec<String> = (0..n).map(|i| format!("r{tag}-{i}@example.com")).collect();
        json!({ "to": to, "text": "hi" })
    };
    let messages = RECIPIENTS_PER_HOUR / per_message;
    for round in 0..messages {
        let (status, answer) = send(&service, &alice, batch(per_message, round));
        assert_eq!(status, 201, "message {round}: {answer}");
        // Slow enough for the per-minute message limit.
        service.clock.advance(10_000);
    }
    let over = || {
        service.request(
            &HttpRequest::new("POST", "/api/messages")
                .header("authorization", &format!("Bearer {alice}"))
                .header("content-type", "application/json")
                .body(batch(1, 999).to_string()),
        )
    };
    let reply = over();
    assert_eq!(reply.status, 429);
    let refused = body(&reply.body);
    assert_eq!(refused["code"], "rate_limited");
    let error = refused["error"].as_str().expect("a sentence");
    assert!(error.contains("500 recipients an hour"), "{error}");
    // The first 50 leave the window an hour after they were sent, 100 s ago.
    assert_eq!(reply.header("retry-after"), Some("3500"));
    assert_eq!(
        service.messages(&alice).len(),
        messages as usize,
        "nothing stored"
    );
    service.clock.advance(3_499_000);
    assert_eq!(over().status, 429);
    service.clock.advance(1_000);
    assert_eq!(over().status, 201);
}

/// Rewrites alice's stored sends into the previous build's form: each job's
/// route without recipients and its fields without the later ones, and no
/// `message_recipients` rows.
fn as_the_previous_build_left_them(service: &TestService) {
    service.objects().with_db_of("alice", |db| {
        let jobs = db
            .exec("SELECT id, route, body FROM jobs WHERE kind = 'send'", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!jobs.rows.is_empty());
        for row in &jobs.rows {
            let text = |i: usize| row[i].as_str().map(str::to_owned).unwrap_or_default();
            let mut route: Json = serde_json::from_str(&text(1)).expect("a route");
            assert!(route["recipients"].is_array(), "{route}");
            route.as_object_mut().map(|o| o.remove("recipients"));
            let fields: Json = serde_json::from_str(&text(2)).expect("fields");
            let old = json!({
                "subject": fields["subject"],
                "text": fields["text"],
                "html": fields["html"],
                "message_id": fields["message_id"],
            });
            db.exec(
                "UPDATE jobs SET route = ?, body = ? WHERE id = ?",
                &[
                    Value::Text(route.to_string()),
                    Value::Text(old.to_string()),
                    row[0].clone(),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        db.exec("DELETE FROM message_recipients", &[])
            .unwrap_or_else(|e| panic!("{e}"));
    });
}

#[test]
fn a_send_job_left_by_the_previous_build_is_finished_as_before() {
    let service = TestService::with_relay(Relay::Http {
        api_key: "re_test_key".into(),
        url: RELAY_URL.into(),
    });
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let hook = "https://alice.example.com/hook";
    service.set_webhook(&alice, hook);
    // Two sends interrupted after their hand-over, as the previous build
    // would have left them: one through the relay, one to an inbox here.
    service.objects().with_db_of("alice", |db| {
        db.fail_statements("UPDATE messages SET send_status", 0, 2)
    });
    for to in ["carol@example.com", "bob@agents.test"] {
        let (status, _) = send(&service, &alice, json!({ "to": to, "text": "T" }));
        assert_eq!(status, 500);
    }
    as_the_previous_build_left_them(&service);
    assert_eq!(service.messages(&bob).len(), 1, "handed over once already");
    service.clock.advance(60_000);
    assert!(service.run_alarms() >= 1);
    let listed = service.messages(&alice);
    let statuses: Vec<&str> = listed.iter().filter_map(|m| m["status"].as_str()).collect();
    assert_eq!(statuses, ["sent", "sent"]);
    for message in &listed {
        let id = message["id"].as_u64().expect("an id");
        let (_, detail) = service.call("GET", &format!("/api/messages/{id}"), &alice, None);
        assert!(
            detail.get("recipients").is_none(),
            "no rows, none listed: {detail}"
        );
    }
    let calls = service.objects().web().calls_to(RELAY_URL);
    assert_eq!(calls.len(), 2, "the relay's recipient, again");
    assert_eq!(body(&calls[1].body)["to"], json!(["carol@example.com"]));
    // Bob's inbox got the same bytes again, and stores them once.
    assert_eq!(service.messages(&bob).len(), 1);
    service.run_alarms();
    assert_eq!(sent_events(&service, hook).len(), 2, "once per message");
    service.clock.advance(3_600_000);
    assert_eq!(service.run_alarms(), 0, "nothing is left to do");
}

#[test]
fn a_send_from_a_router_that_predates_recipient_lists_is_served() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    let hash = protocol::ApiKey::parse(&alice).expect("a key").hash();
    // Exactly what the previous router sent.
    let old = format!(
        r#"{{"op":"api","keyHash":"{}","mailDomain":"agents.test","call":{{"call":"send","to":"carol@example.com","subject":"Hi","text":"x","html":null,"route":{{"via":"relay"}}}}}}"#,
        hash.to_hex()
    );
    let request: InboxRequest = serde_json::from_str(&old).expect("reads");
    let reply = pollster::block_on(service.objects().send(&object_id("alice"), &request, None))
        .expect("the object answers");
    assert_eq!(reply.status, 201);
    let answer = body(&reply.body);
    assert_eq!(answer["status"], "sent");
    assert_eq!(
        recipients_of(&answer),
        [triple("carol@example.com", "to", "sent")]
    );
    assert_eq!(service.objects().mailer().sent().len(), 1);
}

#[test]
fn a_job_that_cannot_be_read_fails_only_the_recipients_still_queued() {
    let service = TestService::with_relay(Relay::SendEmail);
    let alice = service.signup("alice");
    service.signup("bob");
    let hook = "https://alice.example.com/hook";
    service.set_webhook(&alice, hook);
    // Of the two jobs, the second to finish cannot record its outcome.
    service.objects().with_db_of("alice", |db| {
        db.fail_statements("UPDATE messages SET send_status", 0, 1)
    });
    let (status, _) = send(
        &service,
        &alice,
        json!({ "to": "bob@agents.test", "cc": "carol@example.com", "text": "T" }),
    );
    assert_eq!(status, 500);
    // And its row is then found unreadable.
    service.objects().with_db_of("alice", |db| {
        db.exec(
            "UPDATE jobs SET route = 'not json' WHERE kind = 'send'",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    });
    service.clock.advance(60_000);
    service.run_alarms();
    let id = service.messages(&alice)[0]["id"].as_u64().expect("an id");
    let (_, detail) = service.call("GET", &format!("/api/messages/{id}"), &alice, None);
    assert_eq!(detail["status"], "sent", "{detail}");
    assert_eq!(
        detail["statusReason"],
        "1 of 2 recipients failed; see recipients."
    );
    let reasons: Vec<&str> = detail["recipients"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["statusReason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["The send's stored job could not be read, so it was not attempted again."]
    );
    service.run_alarms();
    assert_eq!(sent_events(&service, hook).len(), 1);
}
