//! End-to-end checks of sending and webhooks on real workerd: the
//! `send_email` binding as wrangler simulates it, direct delivery between two
//! inboxes, webhooks verified by an independent HMAC implementation, retries
//! through the DO alarm (across a restart of wrangler dev), and the HTTP relay
//! against a local fake of Resend's API.

use super::{Suite, expect, expect_error};
use crate::Result;
use crate::api::{call, deliver};
use crate::receiver::{Received, verify_signatures};
use serde_json::{Value as Json, json};
use std::time::{Duration, Instant};

/// The e2e's webhook retry schedule (seconds): the default's shape, shortened
/// so that retries happen within the suite.
pub(super) const E2E_RETRY_SECONDS: &str = "0,2,4,8,16,32";

/// Words of the messages these checks send, which no log may show.
pub(super) const CONTENT_MARKERS: [&str; 3] =
    ["Sent through the send_email binding", "At 5?", "Meeting"];

/// Sets a webhook to the receiver's `path`; returns its secret.
pub(super) fn set_webhook(suite: &Suite, key: &str, path: &str) -> Result<String> {
    let url = format!("{}{path}", suite.receiver.base);
    let set = call(
        &suite.client(),
        key,
        "PUT",
        "/api/webhook",
        Some(&json!({ "url": url })),
    )?;
    expect(set.status == 200 && set.json()["url"] == url, || {
        format!("PUT /api/webhook: {} {}", set.status, set.body)
    })?;
    set.string("secret")
}

fn verified(deliveries: &[Received], secret: &str) -> Result<()> {
    for delivery in deliveries {
        verify_signatures(delivery, secret)?;
        let event = delivery.json();
        expect(event["eventId"] == delivery.header("webhook-id"), || {
            format!(
                "eventId {} differs from webhook-id {}",
                event["eventId"],
                delivery.header("webhook-id")
            )
        })?;
    }
    Ok(())
}

const WAIT: Duration = Duration::from_secs(20);

fn message(handle: &str, domain: &str, n: u32) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.com>\r\nTo: {handle}@{domain}\r\nSubject: webhook test {n}\r\n\
         Message-ID: <hook-{handle}-{n}@example.com>\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

/// `send_email`: wrangler writes the message to a file and prints its path.
pub(super) fn send_email_binding(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-sender")?;
    let client = suite.client();
    let sent = call(
        &client,
        &key,
        "POST",
        "/api/messages",
        Some(&json!({
            "to": "carol@example.com", "subject": "Hello from e2e", "text": "Sent through the send_email binding."
        })),
    )?;
    expect(
        sent.status == 201 && sent.json()["status"] == "sent",
        || format!("POST /api/messages: {} {}", sent.status, sent.body),
    )?;
    let id = sent.number("id")?;
    let stored = call(
        &client,
        &key,
        "GET",
        &format!("/api/messages/{id}/raw"),
        None,
    )?;
    let (path, written) = written_file(suite, "Sent through the send_email binding.")?;
    // Wrangler gives the message a Message-ID of its own; all else is ours.
    let without_id = |raw: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(raw)
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("message-id:"))
            .map(str::to_owned)
            .collect()
    };
    expect(without_id(&written) == without_id(&stored.bytes), || {
        format!(
            "{path} differs from the stored message:\n{}\n---\n{}",
            String::from_utf8_lossy(&written),
            stored.body
        )
    })?;
    println!("        (wrangler wrote the message to {path})");
    Ok(())
}

/// Every message wrangler's `send_email` simulation wrote so far (it prints
/// each file's path), newest first: its path and bytes.
pub(super) fn send_email_files(suite: &Suite) -> Result<Vec<(String, Vec<u8>)>> {
    let log = suite.log()?;
    let text =
        std::fs::read_to_string(&log).map_err(|e| format!("reading {}: {e}", log.display()))?;
    if !text.contains("send_email binding called with the following message") {
        return Ok(Vec::new());
    }
    text.lines()
        .rev()
        .filter_map(|l| l.trim().strip_prefix("Email: "))
        .map(|path| {
            let written = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
            Ok((path.to_owned(), written))
        })
        .collect()
}

/// The newest message wrangler's `send_email` simulation wrote that
/// contains `marker`: its path and bytes.
fn written_file(suite: &Suite, marker: &str) -> Result<(String, Vec<u8>)> {
    let started = Instant::now();
    loop {
        let found = send_email_files(suite)?
            .into_iter()
            .find(|(_, written)| String::from_utf8_lossy(written).contains(marker));
        if let Some(found) = found {
            return Ok(found);
        }
        if started.elapsed() > WAIT {
            return Err(format!(
                "wrangler did not report a send_email message containing {marker:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bytes of the newest `send_email` message containing `marker`.
pub(super) fn written_by_send_email(suite: &Suite, marker: &str) -> Result<Vec<u8>> {
    written_file(suite, marker).map(|(_, bytes)| bytes)
}

/// A sends to B on the same deployment; both webhooks are told, signed.
pub(super) fn direct_delivery_and_webhooks(suite: &mut Suite) -> Result<()> {
    let alice = suite.inbox("e2e-agent-a")?;
    let bob = suite.inbox("e2e-agent-b")?;
    let alice_secret = set_webhook(suite, &alice, "/hooks/a")?;
    let bob_secret = set_webhook(suite, &bob, "/hooks/b")?;
    let client = suite.client();
    let to = format!("e2e-agent-b@{}", suite.mail_domain);
    let sent = call(
        &client,
        &alice,
        "POST",
        "/api/messages",
        Some(&json!({
            "to": to, "subject": "Meeting", "text": "At 5?", "html": "<p>At <b>5</b>?</p>"
        })),
    )?;
    expect(
        sent.status == 201 && sent.json()["status"] == "sent",
        || format!("POST /api/messages: {} {}", sent.status, sent.body),
    )?;
    let to_alice = suite.receiver.wait_for("/hooks/a", 1, WAIT)?;
    let to_bob = suite.receiver.wait_for("/hooks/b", 1, WAIT)?;
    verified(&to_alice, &alice_secret)?;
    verified(&to_bob, &bob_secret)?;
    let (sent_event, received_event) = (to_alice[0].json(), to_bob[0].json());
    expect(
        sent_event["event"] == "message.sent" && received_event["event"] == "message.received",
        || format!("events: {sent_event} / {received_event}"),
    )?;
    expect(
        received_event["from"] == format!("e2e-agent-a@{}", suite.mail_domain)
            && received_event["subject"] == "Meeting",
        || format!("B's event: {received_event}"),
    )?;
    let inbox = call(&client, &bob, "GET", "/api/messages", None)?.json();
    let first = &inbox["messages"][0];
    expect(
        first["direction"] == "inbound" && first["id"] == received_event["messageId"],
        || format!("B's inbox: {inbox}"),
    )?;
    let read = call(
        &client,
        &bob,
        "GET",
        &format!("/api/messages/{}", first["id"]),
        None,
    )?
    .json();
    expect(
        read["text"] == "At 5?" && read["html"] == "<p>At <b>5</b>?</p>",
        || format!("B reads: {read}"),
    )?;
    let outbox = call(&client, &alice, "GET", "/api/messages", None)?.json();
    expect(
        outbox["messages"][0]["direction"] == "outbound"
            && outbox["messages"][0]["status"] == "sent",
        || format!("A's inbox: {outbox}"),
    )
}

/// A receiver failing twice gets the event exactly once more.
pub(super) fn retried_until_delivered(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-flaky")?;
    let secret = set_webhook(suite, &key, "/hooks/flaky")?;
    suite
        .receiver
        .script("/hooks/flaky", &[(500, "{}"), (503, "{}")]);
    let client = suite.client();
    let delivered = deliver(
        &client,
        "sender@example.com",
        &format!("e2e-flaky@{}", suite.mail_domain),
        &message("e2e-flaky", &suite.mail_domain, 1),
    )?;
    expect(delivered.status < 300, || {
        format!("delivery: {} {}", delivered.status, delivered.body)
    })?;
    let started = Instant::now();
    let attempts = suite.receiver.wait_for("/hooks/flaky", 3, WAIT)?;
    let took = started.elapsed();
    // Attempt 4 would come 8 s after the third, had the third failed.
    std::thread::sleep(Duration::from_secs(10));
    let attempts_after = suite.receiver.received("/hooks/flaky");
    expect(attempts_after.len() == 3, || {
        format!("{} attempts, expected exactly 3", attempts_after.len())
    })?;
    verified(&attempts, &secret)?;
    expect(
        attempts.iter().all(|a| {
            a.body == attempts[0].body && a.header("webhook-id") == attempts[0].header("webhook-id")
        }),
        || "the retries differ from the first attempt".to_owned(),
    )?;
    let record = call(&client, &key, "GET", "/api/webhook/deliveries", None)?.json();
    let codes: Vec<Json> = record["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["statusCode"].clone())
        .collect();
    expect(codes == [json!(200), json!(503), json!(500)], || {
        format!("deliveries: {record}")
    })?;
    println!(
        "        (3 attempts in {:.1}s: at once, +2 s, +4 s)",
        took.as_secs_f64()
    );
    Ok(())
}

/// A receiver that does not answer within 5 s is given up on, and retried.
pub(super) fn slow_receiver_times_out(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-slow-hook")?;
    let secret = set_webhook(suite, &key, "/hooks/slow")?;
    suite
        .receiver
        .script_slow("/hooks/slow", Duration::from_secs(8));
    let client = suite.client();
    deliver(
        &client,
        "sender@example.com",
        &format!("e2e-slow-hook@{}", suite.mail_domain),
        &message("e2e-slow-hook", &suite.mail_domain, 1),
    )?;
    let attempts = suite.receiver.wait_for("/hooks/slow", 2, WAIT)?;
    verified(&attempts, &secret)?;
    let record = call(&client, &key, "GET", "/api/webhook/deliveries", None)?.json();
    let first = &record["deliveries"][1];
    let took = first["durationMs"].as_u64();
    expect(
        first["error"] == "No complete answer within 5 s."
            && first["statusCode"].is_null()
            && took.is_some_and(|t| (5_000..10_000).contains(&t))
            && record["deliveries"][0]["statusCode"] == 200,
        || format!("deliveries: {record}"),
    )
}

/// Pending retries survive a restart of wrangler dev.
pub(super) fn retries_survive_restart(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-restart-hook")?;
    let secret = set_webhook(suite, &key, "/hooks/restart")?;
    // Fails until after the restart: the first three attempts (0, +2 s, +6 s).
    suite
        .receiver
        .script("/hooks/restart", &[(500, "{}"), (500, "{}"), (500, "{}")]);
    let client = suite.client();
    deliver(
        &client,
        "sender@example.com",
        &format!("e2e-restart-hook@{}", suite.mail_domain),
        &message("e2e-restart-hook", &suite.mail_domain, 1),
    )?;
    suite.receiver.wait_for("/hooks/restart", 1, WAIT)?;
    let seconds = suite.restart()?;
    println!("        (restarted with a retry pending, in {seconds:.1}s)");
    // Nothing wakes the inbox but its alarm.
    let attempts = suite
        .receiver
        .wait_for("/hooks/restart", 4, Duration::from_secs(60))?;
    verified(&attempts, &secret)?;
    expect(attempts.len() == 4, || {
        format!("{} attempts", attempts.len())
    })
}

/// Signups are limited per client address, in a Durable Object.
pub(super) fn signup_limit(suite: &mut Suite) -> Result<()> {
    let mut limited = suite.defaults();
    limited.set_router_var(protocol::bindings::SIGNUPS_PER_HOUR_VAR, "3");
    suite.restart_with(limited)?;
    let client = suite.client();
    let from = |handle: &str, address: &str| {
        client.request(
            "POST",
            "/api/signup",
            &[
                ("content-type", "application/json"),
                ("cf-connecting-ip", address),
            ],
            Some(format!(r#"{{"handle":"{handle}"}}"#).as_bytes()),
        )
    };
    for n in 0..3 {
        let created = from(&format!("e2e-limit-{n}"), "198.51.100.7")?;
        expect(created.status == 201, || {
            format!("signup {n}: {} {}", created.status, created.body)
        })?;
    }
    let refused = from("e2e-limit-3", "198.51.100.7")?;
    expect_error(&refused, 429, "rate_limited")?;
    let retry_after = refused.header("retry-after");
    expect(retry_after == Some("1200"), || {
        format!("Retry-After: {retry_after:?}")
    })?;
    let other = from("e2e-limit-3", "198.51.100.8")?;
    expect(other.status == 201, || {
        format!("another address: {} {}", other.status, other.body)
    })
}

/// The HTTP relay, against a local fake of Resend's API.
pub(super) fn http_relay(suite: &mut Suite) -> Result<()> {
    let relay_url = format!("{}/emails", suite.receiver.base);
    let mut relayed = suite.defaults();
    relayed.set_inbox_var("RESEND_API_KEY", "re_e2e_test_key");
    relayed.set_inbox_var("RESEND_API_URL", &relay_url);
    suite.restart_with(relayed)?;
    let key = suite.inbox("e2e-relay-sender")?;
    suite.receiver.script("/emails", &[
        (200, r#"{"id":"49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}"#),
        (422, r#"{"statusCode":422,"name":"validation_error","message":"The domain is not verified."}"#),
    ]);
    let client = suite.client();
    let sent = call(
        &client,
        &key,
        "POST",
        "/api/messages",
        Some(&json!({
            "to": "dave@example.com", "subject": "Via the relay", "text": "plain", "html": "<p>rich</p>"
        })),
    )?;
    expect(
        sent.status == 201 && sent.json()["status"] == "sent",
        || format!("first send: {} {}", sent.status, sent.body),
    )?;
    let calls = suite.receiver.received("/emails");
    let request = calls.first().ok_or("the relay was not called")?;
    let body = request.json();
    expect(
        request.header("authorization") == "Bearer re_e2e_test_key"
            && body["from"] == suite.address("e2e-relay-sender")
            && body["to"] == json!(["dave@example.com"])
            && body["subject"] == "Via the relay"
            && body["text"] == "plain"
            && body["html"] == "<p>rich</p>",
        || {
            format!(
                "the relay got {body} with authorization {:?}",
                request.header("authorization")
            )
        },
    )?;
    let refused = call(
        &client,
        &key,
        "POST",
        "/api/messages",
        Some(&json!({ "to": "erin@example.com", "text": "x" })),
    )?;
    expect(
        refused.status == 201
            && refused.json()["status"] == "failed"
            && refused.json()["statusReason"]
                .as_str()
                .is_some_and(|r| r.contains("The domain is not verified.")),
        || format!("second send: {} {}", refused.status, refused.body),
    )?;
    Ok(())
}
