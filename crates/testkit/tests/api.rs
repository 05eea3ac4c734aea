//! The public API end to end through the real router and the real InboxDO
//! logic, hosted in process by testkit (every router → DO request crosses its
//! serialized wire form). Data-driven: `check` is the one place that calls the
//! API, and the snapshots are the reviewed contract.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use protocol::wire::CLAIM_TTL_MILLIS;
use protocol::{ApiKey, Reply};
use router_worker::{HttpRequest, RouterConfig, key_index_key};
use schema::Sql;
use serde_json::{Value as Json, json};
use testkit::{TEST_MAIL_DOMAIN, TestService, object_id};

fn post_json(path: &str, body: &str) -> HttpRequest {
    HttpRequest::new("POST", path)
        .header("content-type", "application/json")
        .body(body)
}

fn get_with_key(path: &str, key: &str) -> HttpRequest {
    HttpRequest::new("GET", path).header("authorization", &format!("Bearer {key}"))
}

fn signup(handle: &str) -> HttpRequest {
    post_json("/api/signup", &json!({ "handle": handle }).to_string())
}

/// Status and body of one request, as JSON (bodies that are not JSON show as text).
fn check(service: &TestService, request: &HttpRequest) -> Json {
    let reply = service.request(request);
    let body = serde_json::from_slice::<Json>(&reply.body)
        .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&reply.body).into_owned()));
    json!({ "status": reply.status, "body": body })
}

fn key_from(reply: &Reply) -> String {
    serde_json::from_slice::<Json>(&reply.body)
        .ok()
        .and_then(|b| b["apiKey"].as_str().map(str::to_owned))
        .expect("an apiKey in the signup answer")
}

#[test]
fn health() {
    let service = TestService::new();
    let mut answer = check(&service, &HttpRequest::new("GET", "/api/health"));
    assert_eq!(answer["body"]["version"], protocol::VERSION);
    answer["body"]["version"] = "[version]".into();
    insta::assert_json_snapshot!(answer, @r#"
    {
      "body": {
        "ok": true,
        "service": "inboxkit",
        "version": "[version]"
      },
      "status": 200
    }
    "#);
}

#[test]
fn signup_then_me() {
    let service = TestService::new();
    let signup = check(&service, &signup("Alice"));
    let key = signup["body"]["apiKey"]
        .as_str()
        .expect("a string")
        .to_owned();
    assert!(ApiKey::parse(&key).is_some(), "{key:?}");
    insta::assert_json_snapshot!(signup, { ".body.apiKey" => "[key]" }, @r#"
    {
      "body": {
        "apiKey": "[key]",
        "email": "alice@agents.test"
      },
      "status": 201
    }
    "#);
    service.clock.advance(5_000);
    insta::assert_json_snapshot!(check(&service, &get_with_key("/api/me", &key)), @r#"
    {
      "body": {
        "createdAt": "2026-03-26T12:00:00Z",
        "email": "alice@agents.test",
        "handle": "alice",
        "messageCount": 0,
        "retentionDays": null,
        "scope": "full"
      },
      "status": 200
    }
    "#);
}

#[test]
fn signup_without_a_handle_generates_one() {
    let service = TestService::new();
    for request in [
        HttpRequest::new("POST", "/api/signup"),
        HttpRequest::new("POST", "/api/signup").body(" \r\n"),
        post_json("/api/signup", "{}"),
        post_json("/api/signup", r#"{"handle":null}"#),
    ] {
        let reply = service.request(&request);
        assert_eq!(reply.status, 201);
        let body: Json = serde_json::from_slice(&reply.body).expect("a JSON body");
        let email = body["email"].as_str().expect("a string");
        assert!(
            email.starts_with("agent-") && email.ends_with("@agents.test"),
            "{email}"
        );
        let me = check(&service, &get_with_key("/api/me", &key_from(&reply)));
        assert_eq!(me["body"]["email"], email);
    }
}

#[test]
fn bad_requests_get_clear_errors() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let cases: Vec<(&str, HttpRequest)> = vec![
        ("handle too short", signup("a")),
        ("handle with a space", signup("a b")),
        ("handle starting with a dot", signup(".alice")),
        ("reserved handle", signup("Postmaster")),
        ("taken handle", signup("ALICE")),
        ("malformed json", post_json("/api/signup", "{\"handle\":")),
        ("json of the wrong type", post_json("/api/signup", "[1,2]")),
        (
            "handle of the wrong type",
            post_json("/api/signup", r#"{"handle":7}"#),
        ),
        (
            "unknown field",
            post_json("/api/signup", r#"{"handel":"bob"}"#),
        ),
        (
            "text/plain body",
            HttpRequest::new("POST", "/api/signup")
                .header("content-type", "text/plain")
                .body("{}"),
        ),
        (
            "body without a content type",
            HttpRequest::new("POST", "/api/signup").body("{}"),
        ),
        (
            "oversized body",
            post_json(
                "/api/signup",
                &format!("{{\"handle\":\"{}\"}}", "a".repeat(70_000)),
            ),
        ),
        ("GET on signup", HttpRequest::new("GET", "/api/signup")),
        ("PUT on me", HttpRequest::new("PUT", "/api/me")),
        ("unknown path", HttpRequest::new("GET", "/api/nope")),
        (
            "path with control characters",
            HttpRequest::new("GET", "/api/\u{0}\u{1b}[31m"),
        ),
        ("me without a key", HttpRequest::new("GET", "/api/me")),
        ("me with a garbage key", get_with_key("/api/me", "hunter2")),
        (
            "me with an unknown key",
            get_with_key("/api/me", ApiKey::from_random([0; 32]).expose()),
        ),
        (
            "me with basic auth",
            HttpRequest::new("GET", "/api/me").header("authorization", &format!("Basic {alice}")),
        ),
    ];
    let answers: serde_json::Map<String, Json> = cases
        .iter()
        .map(|(name, request)| ((*name).to_owned(), check(&service, request)))
        .collect();
    insta::assert_json_snapshot!(answers);
}

#[test]
fn invalid_utf8_in_a_body_is_a_400() {
    let service = TestService::new();
    let request = HttpRequest::new("POST", "/api/signup")
        .header("content-type", "application/json")
        .body(b"{\"handle\":\"\xff\xfe\"}".to_vec());
    let answer = check(&service, &request);
    assert_eq!(answer["status"], 400);
    assert_eq!(answer["body"]["code"], "invalid_request");
}

#[test]
fn without_a_mail_domain_signup_and_me_are_not_configured() {
    let service = TestService::with_config(0, RouterConfig::default());
    let answer = check(&service, &signup("alice"));
    assert_eq!(answer["status"], 503);
    assert_eq!(answer["body"]["code"], "not_configured");
    assert!(
        service.objects().object_ids().is_empty(),
        "nothing may be claimed"
    );
    let answer = check(
        &service,
        &get_with_key("/api/me", ApiKey::from_random([1; 32]).expose()),
    );
    assert_eq!(answer["body"]["code"], "not_configured");
}

#[test]
fn concurrent_signups_for_one_handle_have_exactly_one_winner() {
    // Fresh KV and a KV that hides every write for a minute: the DO decides.
    for staleness in [0, 60_000] {
        let service = TestService::with_kv_staleness(staleness);
        let replies: Vec<Reply> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..20)
                .map(|_| scope.spawn(|| service.request(&signup("race"))))
                .collect();
            threads.into_iter().filter_map(|t| t.join().ok()).collect()
        });
        let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 201).collect();
        let losers = replies.iter().filter(|r| r.status == 409).count();
        assert_eq!((winners.len(), losers), (1, 19), "staleness {staleness}");
        service.clock.advance(staleness);
        let me = check(&service, &get_with_key("/api/me", &key_from(winners[0])));
        assert_eq!(me["body"]["handle"], "race");
        // Exactly one key entry: the losers left nothing behind.
        let keys = service
            .kv()
            .snapshot()
            .keys()
            .filter(|k| k.starts_with("key:"))
            .count();
        assert_eq!(keys, 1);
    }
}

#[test]
fn a_new_key_works_once_kv_shows_it() {
    let service = TestService::with_kv_staleness(60_000);
    let key = service.signup("alice");
    assert_eq!(
        check(&service, &get_with_key("/api/me", &key))["status"],
        401
    );
    service.clock.advance(60_000);
    assert_eq!(
        check(&service, &get_with_key("/api/me", &key))["status"],
        200
    );
}

#[test]
fn a_stale_or_forged_kv_entry_routes_but_never_grants() {
    let service = TestService::new();
    let _alice = service.signup("alice");
    let bob = service.signup("bob");
    // Bob's key has been used: the router keeps its entry.
    assert_eq!(
        check(&service, &get_with_key("/api/me", &bob))["status"],
        200
    );
    // Point Bob's key at Alice's inbox, as a stale or tampered index might,
    // in KV and in the router's kept entries.
    let bob_hash = ApiKey::parse(&bob)
        .map(|k| k.hash())
        .unwrap_or_else(|| panic!("bad key"));
    let entry = key_index_key(&bob_hash);
    service.forge_index(&entry, &object_id("alice"));
    let answer = check(&service, &get_with_key("/api/me", &bob));
    assert_eq!(answer["status"], 401);
    assert_eq!(answer["body"]["code"], "unauthorized");
    // The refused entry is no longer kept; KV's, read again, still grants
    // nothing.
    assert_eq!(service.index_cache().get(&entry), None);
    assert_eq!(
        check(&service, &get_with_key("/api/me", &bob))["status"],
        401
    );
    // And an entry naming something that is no inbox at all.
    service.forge_index(&entry, "not-an-id");
    assert_eq!(
        check(&service, &get_with_key("/api/me", &bob))["status"],
        503
    );
}

/// A failure at each step after the claim: the signup answers 503, leaves no
/// key entry behind, and the handle is free for the next signup.
#[test]
fn a_failed_signup_leaves_the_handle_free() {
    type Arrange = fn(&TestService);
    let failures: [(&str, Arrange); 5] = [
        ("claim unreachable", |s| {
            s.objects().fail_requests("claim", 1)
        }),
        ("key index write", |s| s.kv().fail_writes("key:", 1)),
        ("handle index write", |s| s.kv().fail_writes("handle:", 1)),
        ("both index writes", |s| {
            s.kv().fail_writes("key:", 1);
            s.kv().fail_writes("handle:", 1);
        }),
        ("confirm unreachable", |s| {
            s.objects().fail_requests("confirm", 1)
        }),
    ];
    for (name, arrange) in failures {
        let service = TestService::new();
        arrange(&service);
        let answer = check(&service, &signup("alice"));
        assert_eq!(answer["status"], 503, "{name}: {answer}");
        assert_eq!(answer["body"]["code"], "unavailable", "{name}");
        let leftovers: Vec<String> = service
            .kv()
            .snapshot()
            .into_keys()
            .filter(|k| k.starts_with("key:"))
            .collect();
        assert!(leftovers.is_empty(), "{name}: {leftovers:?}");
        let key = service.signup("alice");
        assert_eq!(
            check(&service, &get_with_key("/api/me", &key))["status"],
            200,
            "{name}"
        );
    }
}

/// The signup's two KV writes are one round trip: in flight together.
#[test]
fn a_signup_writes_its_two_kv_entries_at_once() {
    let service = TestService::new();
    let key = service.signup("alice");
    assert_eq!(service.kv().most_writes_at_once(), 2);
    let entries = service.kv().snapshot();
    assert_eq!(entries.get("handle:alice"), Some(&object_id("alice")));
    assert_eq!(
        check(&service, &get_with_key("/api/me", &key))["body"]["handle"],
        "alice"
    );
}

#[test]
fn an_abandoned_claim_expires() {
    let service = TestService::new();
    // Confirm fails and so does the release that would undo the claim.
    service.objects().fail_requests("confirm", 1);
    service.objects().fail_requests("release", 1);
    assert_eq!(check(&service, &signup("alice"))["status"], 503);
    assert_eq!(check(&service, &signup("alice"))["status"], 409);
    service.clock.advance(CLAIM_TTL_MILLIS);
    let key = service.signup("alice");
    assert_eq!(
        check(&service, &get_with_key("/api/me", &key))["body"]["handle"],
        "alice"
    );
}

#[test]
fn me_counts_the_inbox_messages() {
    let service = TestService::new();
    let key = service.signup("alice");
    let _bob = service.signup("bob");
    service.objects().with_db_of("alice", |db| {
        for _ in 0..3 {
            db.exec(
                "INSERT INTO messages (direction, received_at, size) VALUES ('inbound', 1, 10)",
                &[],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    });
    assert_eq!(
        check(&service, &get_with_key("/api/me", &key))["body"]["messageCount"],
        3
    );
}

#[test]
fn keys_are_stored_only_as_hashes() {
    let service = TestService::new();
    let key = service.signup("alice");
    let hash = ApiKey::parse(&key)
        .map(|k| k.hash().to_hex())
        .expect("a well-formed key");
    let kv = format!("{:?}", service.kv().snapshot());
    let stored = service.objects().with_db_of("alice", |db| {
        format!(
            "{:?}",
            db.exec("SELECT * FROM inbox", &[])
                .unwrap_or_else(|e| panic!("{e}"))
                .rows
        )
    });
    for place in [&kv, &stored] {
        assert!(
            !place.contains(&key[3..]),
            "the key itself was stored: {place}"
        );
        assert!(place.contains(&hash), "the hash is missing: {place}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// No body, however malformed, gets a 5xx or a body outside the contract.
    #[test]
    fn any_signup_body_gets_a_contract_answer(body in proptest::collection::vec(any::<u8>(), 0..300), json_type in any::<bool>()) {
        let service = TestService::new();
        let mut request = HttpRequest::new("POST", "/api/signup").body(body);
        if json_type {
            request = request.header("content-type", "application/json");
        }
        let reply = service.request(&request);
        prop_assert!(reply.status < 500, "{}", reply.status);
        let parsed: Json = serde_json::from_slice(&reply.body).expect("a JSON body");
        if reply.status == 201 {
            prop_assert!(parsed["email"].as_str().is_some_and(|e| e.ends_with(TEST_MAIL_DOMAIN)));
        } else {
            prop_assert!(parsed["code"].is_string() && parsed["error"].is_string(), "{parsed}");
        }
    }

    /// Across many inboxes, every key sees only its own inbox, even when the
    /// index points it at another's.
    #[test]
    fn a_key_never_reaches_another_inbox(count in 2usize..6, pick in any::<(usize, usize)>()) {
        let service = TestService::new();
        let keys: Vec<String> = (0..count).map(|i| service.signup(&format!("inbox-{i}"))).collect();
        for (i, key) in keys.iter().enumerate() {
            let me = check(&service, &get_with_key("/api/me", key));
            prop_assert_eq!(&me["body"]["handle"], &json!(format!("inbox-{i}")));
        }
        let (from, to) = (pick.0 % count, pick.1 % count);
        prop_assume!(from != to);
        let hash = ApiKey::parse(&keys[from]).map(|k| k.hash()).unwrap_or_else(|| panic!("bad key"));
        service.forge_index(&key_index_key(&hash), &object_id(&format!("inbox-{to}")));
        prop_assert_eq!(&check(&service, &get_with_key("/api/me", &keys[from]))["status"], &json!(401));
    }
}

#[test]
fn a_405_says_what_is_allowed_and_a_missing_key_comes_before_a_bad_body() {
    let service = TestService::new();
    for (method, path, allowed) in [
        ("TRACE", "/api/health", "GET, HEAD"),
        ("DELETE", "/api/signup", "POST"),
        ("PUT", "/api/messages", "GET, POST"),
        ("POST", "/api/messages/7", "GET, PATCH, DELETE"),
        ("PUT", "/api/keys", "GET, POST"),
        ("GET", "/api/keys/1", "DELETE"),
        ("PATCH", "/api/webhook", "GET, PUT, DELETE"),
        ("POST", "/api/webhook/deliveries", "GET"),
    ] {
        let reply = service.request(&HttpRequest::new(method, path));
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some(allowed), "{method} {path}");
    }
    // Who is asking is settled before what is asked: no key, 401, even for a
    // body that is wrong in every way.
    for (method, path) in [
        ("POST", "/api/messages"),
        ("PUT", "/api/webhook"),
        ("PATCH", "/api/messages/0"),
        ("GET", "/api/messages?limit=0"),
    ] {
        let answer = check(
            &service,
            &HttpRequest::new(method, path)
                .header("content-type", "text/plain")
                .body("{"),
        );
        assert_eq!(answer["status"], 401, "{method} {path}: {answer}");
        assert_eq!(answer["body"]["code"], "unauthorized");
    }
}

#[test]
fn deep_health_reaches_a_durable_object_and_its_storage() {
    let service = TestService::new();
    let answer = check(&service, &HttpRequest::new("GET", "/api/health/deep"));
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"]["ok"], true);
    // It is the probe object that answered, and it never became an inbox.
    let probe = object_id("health:probe");
    assert_eq!(service.objects().object_ids(), std::slice::from_ref(&probe));
    service.objects().with_db(&probe, |db| {
        let owners = db.exec("SELECT count(*) FROM inbox", &[]).map(|r| r.rows);
        assert_eq!(owners.ok(), Some(vec![vec![schema::Value::Integer(0)]]));
    });
    service.objects().fail_requests("ping", 1);
    let answer = check(&service, &HttpRequest::new("GET", "/api/health/deep"));
    assert_eq!(
        (answer["status"].as_u64(), answer["body"]["code"].as_str()),
        (Some(503), Some("unavailable"))
    );
}
