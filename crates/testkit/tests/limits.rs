//! Abuse limits: signups per client address (a token bucket held in a Durable
//! Object, not KV) and the storage cap of an inbox. (The cap's accounting is
//! backfilled by migration 5: see schema's runner tests.)
#![cfg(not(target_arch = "wasm32"))]

use inbox_do::InboxConfig;
use router_worker::{HttpRequest, MailVerdict, RouterConfig};
use schema::{Sql, Value};
use serde_json::{Value as Json, json};
use testkit::{TEST_MAIL_DOMAIN, TestService};

fn signup_from(
    service: &TestService,
    handle: &str,
    address: Option<&str>,
) -> (u16, Option<String>) {
    let mut request = HttpRequest::new("POST", "/api/signup")
        .header("content-type", "application/json")
        .body(json!({ "handle": handle }).to_string());
    if let Some(address) = address {
        request = request.header("cf-connecting-ip", address);
    }
    let reply = service.request(&request);
    (reply.status, reply.header("retry-after").map(str::to_owned))
}

#[test]
fn signups_are_limited_per_client_address() {
    let service = TestService::with_config(
        0,
        RouterConfig {
            signups_per_hour: 3,
            ..RouterConfig::from_mail_domain_var(Some(TEST_MAIL_DOMAIN))
        },
    );
    for n in 0..3 {
        assert_eq!(
            signup_from(&service, &format!("a{n}"), Some("203.0.113.5")).0,
            201
        );
    }
    // One token comes back every 20 minutes.
    assert_eq!(
        signup_from(&service, "a3", Some("203.0.113.5")),
        (429, Some("1200".to_owned()))
    );
    // The refusal left the handle free, and other addresses are not affected.
    assert_eq!(signup_from(&service, "a3", Some("203.0.113.6")).0, 201);
    // One IPv6 /64 is one client; an IPv4-mapped address is its IPv4 one.
    for n in 0..3 {
        assert_eq!(
            signup_from(
                &service,
                &format!("b{n}"),
                Some(&format!("2001:db8:1:2::{n}"))
            )
            .0,
            201
        );
    }
    assert_eq!(
        signup_from(&service, "b3", Some("2001:db8:1:2:ffff::1")).0,
        429
    );
    assert_eq!(signup_from(&service, "b4", Some("2001:db8:1:3::1")).0, 201);
    assert_eq!(
        signup_from(&service, "c0", Some("::ffff:203.0.113.5")).0,
        429
    );
    // Without the header (not behind Cloudflare) all share one bucket.
    for n in 0..3 {
        assert_eq!(signup_from(&service, &format!("d{n}"), None).0, 201);
    }
    assert_eq!(signup_from(&service, "d3", Some("not an address")).0, 429);
    // Time refills the bucket, one token per 20 minutes.
    service.clock.advance(19 * 60 * 1000);
    assert_eq!(signup_from(&service, "a4", Some("203.0.113.5")).0, 429);
    service.clock.advance(60 * 1000);
    assert_eq!(signup_from(&service, "a4", Some("203.0.113.5")).0, 201);
    assert_eq!(signup_from(&service, "a5", Some("203.0.113.5")).0, 429);
    // An idle day later the bucket is full again, not more than full.
    service.clock.advance(24 * 3600 * 1000);
    for n in 5..8 {
        assert_eq!(
            signup_from(&service, &format!("a{n}"), Some("203.0.113.5")).0,
            201
        );
    }
    assert_eq!(signup_from(&service, "a8", Some("203.0.113.5")).0, 429);
    // The limiter never becomes an inbox, nor takes a handle.
    let reply = service
        .request(&HttpRequest::new("GET", "/api/me").header("authorization", "Bearer ik_nothing"));
    assert_eq!(reply.status, 401);
}

fn message(n: usize, body: usize) -> Vec<u8> {
    format!(
        "From: s@example.com\r\nTo: full@agents.test\r\nMessage-ID: <{n}@example.com>\r\nSubject: {n}\r\n\r\n{}\r\n",
        "x".repeat(body)
    )
    .into_bytes()
}

#[test]
fn an_inbox_stops_at_its_storage_cap_and_says_so() {
    let service = TestService::new();
    service.objects().configure(InboxConfig {
        max_inbox_bytes: 10_000,
        ..InboxConfig::default()
    });
    let key = service.signup("full");
    let mut stored = 0;
    let mut n = 0;
    loop {
        let raw = message(n, 900);
        match service.deliver("s@example.com", "full@agents.test", &raw) {
            MailVerdict::Accepted(_) => stored += raw.len(),
            MailVerdict::Reject(reason) => {
                assert_eq!(
                    reason,
                    "This inbox is full: it holds at most 10000 bytes of mail."
                );
                assert!(stored + raw.len() > 10_000 && stored <= 10_000);
                break;
            }
            other => panic!("{other:?}"),
        }
        n += 1;
    }
    // A redelivery of a stored message is still recognised, not refused.
    assert!(matches!(
        service.deliver("s@example.com", "full@agents.test", &message(0, 900)),
        MailVerdict::Duplicate(_)
    ));
    // Sending would store too: 507 `storage_full`.
    let reply = service.request(
        &HttpRequest::new("POST", "/api/messages")
            .header("authorization", &format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(json!({ "to": "full@agents.test", "text": "y".repeat(2000) }).to_string()),
    );
    assert_eq!(reply.status, 507);
    assert_eq!(
        serde_json::from_slice::<Json>(&reply.body).expect("a JSON body")["code"],
        "storage_full"
    );
    // The accounting is the sum of what is stored.
    service.objects().with_db_of("full", |db| {
        let rows = db
            .exec(
                "SELECT stored_bytes, (SELECT sum(size) FROM messages) FROM inbox",
                &[],
            )
            .map(|r| r.rows)
            .expect("the accounting query");
        assert_eq!(
            rows,
            [[Value::Integer(stored as i64), Value::Integer(stored as i64)]]
        );
    });
}
