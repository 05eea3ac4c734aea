//! Lifecycle and keys through the router and the real InboxDO: idempotent
//! sends (repeat, concurrent repeat, mismatch, expiry, reply and forward),
//! deleting a message (everything that refers to it, atomically), deleting
//! the inbox (the tombstone, with KV stale and KV writes failing), keys and
//! their scopes on every route, and retention in bounded batches.
#![cfg(not(target_arch = "wasm32"))]

use futures_util::join;
use router_worker::{HttpRequest, MailVerdict};
use schema::{Sql, Value};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use testkit::{TestService, object_id, until};

const DAY: i64 = 24 * 60 * 60 * 1000;

fn inbound(n: u32, subject: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.com>\r\nTo: alice@agents.test\r\nSubject: {subject}\r\n\
         Message-ID: <m{n}@example.com>\r\n\r\nYour code is 4{n:05}. Body {n}.\r\n"
    )
    .into_bytes()
}

fn deliver(service: &TestService, n: u32, subject: &str) -> u64 {
    match service.deliver("bob@example.com", "alice@agents.test", &inbound(n, subject)) {
        MailVerdict::Accepted(id) => id,
        other => panic!("not accepted: {other:?}"),
    }
}

fn with_key(method: &str, path: &str, key: &str, idem: Option<&str>, body: &Json) -> HttpRequest {
    let mut request = HttpRequest::new(method, path)
        .header("authorization", &format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(idem) = idem {
        request = request.header("idempotency-key", idem);
    }
    request
}

fn answer(service: &TestService, request: &HttpRequest) -> (u16, Json) {
    let reply = service.request(request);
    let body = serde_json::from_slice(&reply.body).unwrap_or(Json::Null);
    (reply.status, body)
}

fn count_rows(service: &TestService, handle: &str, table: &str) -> i64 {
    service.objects().with_db_of(handle, |db| {
        let rows = db
            .exec(&format!("SELECT count(*) FROM {table}"), &[])
            .expect("a count");
        match &rows.rows[0][0] {
            Value::Integer(n) => *n,
            other => panic!("a count is an integer: {other:?}"),
        }
    })
}

fn dump(service: &TestService, handle: &str) -> String {
    service.objects().with_db_of(handle, |db| db.dump())
}

// ---------------------------------------------------------------- idempotency

#[test]
fn a_repeated_send_answers_the_first_answer_and_sends_once() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let body = json!({ "to": "bob@agents.test", "subject": "Once", "text": "only once" });
    let first = answer(
        &service,
        &with_key("POST", "/api/messages", &alice, Some("k-1"), &body),
    );
    assert_eq!(first.0, 201, "{}", first.1);
    let reply = service.request(&with_key(
        "POST",
        "/api/messages",
        &alice,
        Some("k-1"),
        &body,
    ));
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("idempotent-replayed"), Some("true"));
    let again: Json = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(again, first.1, "the same answer, byte for byte in meaning");
    assert_eq!(service.messages(&bob).len(), 1, "bob got it once");
    assert_eq!(service.messages(&alice).len(), 1, "one outbound message");
    // Another body with the key: 409. Another endpoint with it: 409.
    let other = json!({ "to": "bob@agents.test", "subject": "Once", "text": "changed" });
    let (status, error) = answer(
        &service,
        &with_key("POST", "/api/messages", &alice, Some("k-1"), &other),
    );
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("conflict")),
        "{error}"
    );
    let id = first.1["id"].as_u64().expect("an id");
    let (status, error) = answer(
        &service,
        &with_key(
            "POST",
            &format!("/api/messages/{id}/forward"),
            &alice,
            Some("k-1"),
            &json!({ "to": "bob@agents.test" }),
        ),
    );
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("conflict")),
        "{error}"
    );
    assert_eq!(service.messages(&bob).len(), 1);
    // A new key sends anew.
    let (status, _) = answer(
        &service,
        &with_key("POST", "/api/messages", &alice, Some("k-2"), &body),
    );
    assert_eq!(status, 201);
    assert_eq!(service.messages(&bob).len(), 2);
}

#[test]
fn empty_or_invalid_keys_are_refused_and_nothing_is_sent() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let body = json!({ "to": "bob@agents.test", "text": "x" });
    for bad in ["", "has space", "slash/no", &"x".repeat(257), "ünï"] {
        let (status, error) = answer(
            &service,
            &with_key("POST", "/api/messages", &alice, Some(bad), &body),
        );
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad:?}"
        );
        assert!(
            error["error"]
                .as_str()
                .expect("a sentence")
                .contains("Idempotency-Key"),
            "{error}"
        );
    }
    assert!(service.messages(&bob).is_empty());
}

#[test]
fn a_repeat_while_the_first_is_in_flight_is_409_and_never_a_second_send() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let body = json!({ "to": "bob@agents.test", "text": "racing" });
    let request = with_key("POST", "/api/messages", &alice, Some("race"), &body);
    let gate = service.objects().hold(&object_id("bob"));
    let (first, second) = pollster::block_on(async {
        let first = service.request_async(&request);
        let second = async {
            until("the first send at bob's door", || gate.arrived() == 1).await;
            let reply = service.request_async(&request).await;
            gate.release();
            reply
        };
        join!(first, second)
    });
    assert_eq!(first.status, 201);
    let error: Json = serde_json::from_slice(&second.body).expect("JSON");
    assert_eq!(
        (second.status, error["code"].as_str()),
        (409, Some("conflict"))
    );
    assert!(
        error["error"]
            .as_str()
            .expect("a sentence")
            .contains("in progress")
    );
    // Once the first has answered, the repeat gets its answer.
    let third = service.request(&request);
    assert_eq!(
        (third.status, third.body.as_slice()),
        (201, first.body.as_slice())
    );
    assert_eq!(gate.arrived(), 1, "one hand-over to bob");
    assert_eq!(service.messages(&bob).len(), 1);
}

#[test]
fn keys_expire_after_a_day_and_the_alarm_purges_them() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let body = json!({ "to": "bob@agents.test", "text": "x" });
    let request = with_key("POST", "/api/messages", &alice, Some("daily"), &body);
    assert_eq!(service.request(&request).status, 201);
    service.clock.advance(DAY - 1_000);
    assert_eq!(
        service.request(&request).header("idempotent-replayed"),
        Some("true")
    );
    assert_eq!(count_rows(&service, "alice", "idempotency"), 1);
    let alarm = service.objects().alarm_of(&object_id("alice"));
    assert!(alarm.is_some(), "the alarm comes back to purge the key");
    service.clock.advance(2_000);
    service.run_alarms();
    assert_eq!(count_rows(&service, "alice", "idempotency"), 0, "purged");
    // Expired: the same key sends again.
    let reply = service.request(&request);
    assert_eq!(
        (reply.status, reply.header("idempotent-replayed")),
        (201, None)
    );
    assert_eq!(service.messages(&bob).len(), 2);
}

#[test]
fn reply_and_forward_are_idempotent_too() {
    let service = TestService::with_relay(inbox_do::Relay::SendEmail);
    let alice = service.signup("alice");
    let bob = service.signup("bob");
    let id = deliver(&service, 1, "Question");
    let reply_body = json!({ "text": "Answer" });
    let path = format!("/api/messages/{id}/reply");
    let first = answer(
        &service,
        &with_key("POST", &path, &alice, Some("r1"), &reply_body),
    );
    assert_eq!(first.0, 201, "{}", first.1);
    let again = answer(
        &service,
        &with_key("POST", &path, &alice, Some("r1"), &reply_body),
    );
    assert_eq!(again, first);
    let forward = json!({ "to": "bob@agents.test", "text": "FYI" });
    let path = format!("/api/messages/{id}/forward");
    let first = answer(
        &service,
        &with_key("POST", &path, &alice, Some("f1"), &forward),
    );
    assert_eq!(first.0, 201, "{}", first.1);
    let again = answer(
        &service,
        &with_key("POST", &path, &alice, Some("f1"), &forward),
    );
    assert_eq!(again, first);
    assert_eq!(service.messages(&bob).len(), 1, "one forward reached bob");
    assert_eq!(service.objects().mailer().sent().len(), 1, "one reply left");
    let outbound = service
        .messages(&alice)
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .count();
    assert_eq!(outbound, 2, "one reply and one forward stored");
    // The reply's key on the forward: 409, nothing sent.
    let (status, _) = answer(
        &service,
        &with_key("POST", &path, &alice, Some("r1"), &forward),
    );
    assert_eq!(status, 409);
    assert_eq!(service.messages(&bob).len(), 1);
}

// ------------------------------------------------------------ deleting a message

#[test]
fn deleting_a_message_takes_everything_that_refers_to_it() {
    let service = TestService::new();
    let alice = service.signup("alice");
    service.set_webhook(&alice, "https://hooks.example.com/h");
    let first = deliver(&service, 1, "Alpha zebra");
    let second = deliver(&service, 2, "Beta");
    let stored = |service: &TestService| {
        service.objects().with_db_of("alice", |db| {
            let rows = db
                .exec("SELECT stored_bytes FROM inbox", &[])
                .expect("a row");
            match &rows.rows[0][0] {
                Value::Integer(n) => *n,
                other => panic!("{other:?}"),
            }
        })
    };
    let before = stored(&service);
    assert_eq!(
        count_rows(&service, "alice", "jobs"),
        2,
        "two pending events"
    );
    let (status, _) = service.call("DELETE", &format!("/api/messages/{first}"), &alice, None);
    assert_eq!(status, 204);
    let (status, _) = service.call("GET", &format!("/api/messages/{first}"), &alice, None);
    assert_eq!(status, 404);
    let (status, _) = service.call("GET", &format!("/api/messages/{first}/raw"), &alice, None);
    assert_eq!(status, 404);
    let (_, found) = service.call("GET", "/api/messages/search?q=zebra", &alice, None);
    assert_eq!(
        found["messages"].as_array().expect("a list").len(),
        0,
        "{found}"
    );
    for (table, left) in [
        ("message_parts WHERE message_id = 1", 0),
        ("message_findings WHERE message_id = 1", 0),
        ("message_recipients WHERE message_id = 1", 0),
        ("message_refs WHERE message_id = 1", 0),
        ("jobs", 1),
    ] {
        assert_eq!(count_rows(&service, "alice", table), left, "{table}");
    }
    assert!(stored(&service) < before, "the storage count went down");
    let (_, me) = service.call("GET", "/api/me", &alice, None);
    assert_eq!(me["messageCount"], 1);
    // Its thread went with it; the other's is intact.
    let (_, threads) = service.call("GET", "/api/threads", &alice, None);
    let threads = threads["threads"].as_array().expect("threads");
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0]["lastMessageId"], second);
    // Again: 404.
    let (status, body) = service.call("DELETE", &format!("/api/messages/{first}"), &alice, None);
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[test]
fn deleting_one_message_of_a_thread_updates_its_counts() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let original = deliver(&service, 1, "Plans");
    let reply = "From: bob@example.com\r\nTo: alice@agents.test\r\nSubject: Re: Plans\r\n\
         Message-ID: <m2@example.com>\r\nIn-Reply-To: <m1@example.com>\r\n\r\nSure.\r\n";
    let MailVerdict::Accepted(second) =
        service.deliver("bob@example.com", "alice@agents.test", reply.as_bytes())
    else {
        panic!("not accepted");
    };
    let (_, message) = service.call("GET", &format!("/api/messages/{second}"), &alice, None);
    let thread = message["threadId"].as_u64().expect("a thread");
    let (status, _) = service.call("DELETE", &format!("/api/messages/{second}"), &alice, None);
    assert_eq!(status, 204);
    let (_, t) = service.call("GET", &format!("/api/threads/{thread}"), &alice, None);
    assert_eq!(t["messageCount"], 1, "{t}");
    assert_eq!(t["unreadCount"], 1);
    assert_eq!(t["lastMessageId"], original);
    service.call("DELETE", &format!("/api/messages/{original}"), &alice, None);
    let (status, _) = service.call("GET", &format!("/api/threads/{thread}"), &alice, None);
    assert_eq!(status, 404, "an empty thread goes");
}

#[test]
fn a_message_deletion_that_fails_half_way_changes_nothing() {
    for fragment in [
        "UPDATE inbox SET stored_bytes",
        "DELETE FROM message_search",
        "DELETE FROM message_findings",
        "DELETE FROM message_parts",
        "DELETE FROM message_recipients",
        "DELETE FROM attachments",
        "DELETE FROM jobs",
        "DELETE FROM messages",
        "UPDATE threads SET",
    ] {
        let service = TestService::new();
        let alice = service.signup("alice");
        service.set_webhook(&alice, "https://hooks.example.com/h");
        deliver(&service, 1, "One");
        let reply = "From: bob@example.com\r\nTo: alice@agents.test\r\nSubject: Re: One\r\n\
                     Message-ID: <m2@example.com>\r\nIn-Reply-To: <m1@example.com>\r\n\r\nTwo.\r\n";
        service.deliver("bob@example.com", "alice@agents.test", reply.as_bytes());
        let before = dump(&service, "alice");
        service
            .objects()
            .with_db_of("alice", |db| db.fail_statements(fragment, 0, 1));
        let (status, body) = service.call("DELETE", "/api/messages/2", &alice, None);
        assert_eq!(status, 500, "{fragment}: {body}");
        assert_eq!(
            dump(&service, "alice"),
            before,
            "{fragment}: nothing changed"
        );
        let (status, _) = service.call("DELETE", "/api/messages/2", &alice, None);
        assert_eq!(status, 204, "{fragment}: the retry deletes it");
    }
}

#[test]
fn deleting_a_message_mid_send_cancels_what_is_left_of_it() {
    const RELAY: &str = "https://relay.example.com/emails";
    let service = TestService::with_relay(inbox_do::Relay::Http {
        api_key: "re_test".into(),
        url: RELAY.into(),
    });
    let alice = service.signup("alice");
    // The hand-over is held at the relay; the message is deleted meanwhile.
    let gate = service.objects().web().hold(RELAY);
    let (sent, deleted) = pollster::block_on(async {
        let send = service.call_async(
            "POST",
            "/api/messages",
            &alice,
            Some(json!({ "to": "carol@example.com", "text": "later" })),
        );
        let delete = async {
            until("the attempt at the relay", || gate.arrived() == 1).await;
            assert_eq!(count_rows(&service, "alice", "jobs WHERE kind = 'send'"), 1);
            let deleted = service
                .call_async("DELETE", "/api/messages/1", &alice, None)
                .await;
            gate.release();
            deleted
        };
        join!(send, delete)
    });
    assert_eq!(deleted.0, 204);
    assert_eq!(
        (sent.0, sent.1["code"].as_str()),
        (409, Some("conflict")),
        "{}",
        sent.1
    );
    // Nothing came back: no row, no job, no second hand-over.
    assert!(service.messages(&alice).is_empty());
    assert_eq!(count_rows(&service, "alice", "jobs"), 0);
    assert_eq!(count_rows(&service, "alice", "message_recipients"), 0);
    service.clock.advance(DAY);
    service.run_alarms();
    assert_eq!(service.objects().web().calls_to(RELAY).len(), 1);
}

// ------------------------------------------------------------- deleting the inbox

fn delete_inbox_refuses_everything_after(service: &TestService) {
    let alice = service.signup("alice");
    deliver(service, 1, "Keep?");
    let (status, _) = service.call("DELETE", "/api/me", &alice, None);
    assert_eq!(status, 204);
    // Nothing of the inbox is left: one table, the tombstone.
    let dump = dump(service, "alice");
    assert!(dump.contains("tombstone"), "{dump}");
    for table in [
        "messages",
        "inbox",
        "api_keys",
        "message_parts",
        "jobs",
        "message_search",
    ] {
        assert!(
            !dump.contains(&format!("TABLE {table} ")),
            "{table} is gone: {dump}"
        );
    }
    assert_eq!(service.objects().alarm_of(&object_id("alice")), None);
    // The old key: 401. Mail: refused for good. The handle: taken forever.
    let (status, _) = service.call("GET", "/api/me", &alice, None);
    assert_eq!(status, 401);
    match service.deliver("bob@example.com", "alice@agents.test", &inbound(2, "Again")) {
        MailVerdict::Reject(_) => {}
        other => panic!("mail to a deleted inbox: {other:?}"),
    }
    let signup = HttpRequest::new("POST", "/api/signup")
        .header("content-type", "application/json")
        .body(r#"{"handle":"alice"}"#);
    let (status, body) = answer(service, &signup);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("handle_taken")),
        "{body}"
    );
    // Across a restart of every object.
    service.objects().restart();
    let (status, _) = answer(service, &signup);
    assert_eq!(status, 409);
    let (status, _) = service.call("GET", "/api/messages", &alice, None);
    assert_eq!(status, 401);
    let dump_after = self::dump(service, "alice");
    assert_eq!(dump_after, dump, "nothing woke the tombstone into an inbox");
}

#[test]
fn a_deleted_inbox_refuses_its_key_its_mail_and_its_handle() {
    let service = TestService::new();
    delete_inbox_refuses_everything_after(&service);
    let kv = service.kv().snapshot();
    assert!(
        kv.keys()
            .all(|k| !k.starts_with("key:") && k != "handle:alice"),
        "its KV entries are gone: {kv:?}"
    );
}

#[test]
fn the_tombstone_holds_while_kv_is_stale() {
    // Every KV write stays invisible for a minute: the old key and handle
    // entries still route to the object, which refuses them.
    let service = TestService::with_kv_staleness(60_000);
    let alice = service.signup("alice");
    service.clock.advance(61_000);
    let (status, _) = service.call("DELETE", "/api/me", &alice, None);
    assert_eq!(status, 204);
    let (status, _) = service.call("GET", "/api/me", &alice, None);
    assert_eq!(status, 401, "the stale key entry reaches the tombstone");
    match service.deliver("bob@example.com", "alice@agents.test", &inbound(1, "x")) {
        MailVerdict::Reject(_) => {}
        other => panic!("{other:?}"),
    }
    let signup = HttpRequest::new("POST", "/api/signup").body(r#"{"handle":"alice"}"#);
    let signup = signup.header("content-type", "application/json");
    assert_eq!(answer(&service, &signup).0, 409);
}

#[test]
fn the_tombstone_holds_when_kv_writes_fail() {
    let service = TestService::new();
    let alice = service.signup("alice");
    service.kv().fail_writes("key:", 5);
    service.kv().fail_writes("handle:", 5);
    let (status, _) = service.call("DELETE", "/api/me", &alice, None);
    assert_eq!(
        status, 204,
        "the deletion is done once the object has erased itself"
    );
    let kv = service.kv().snapshot();
    assert!(
        kv.keys().any(|k| k.starts_with("key:")),
        "the entries stayed: {kv:?}"
    );
    let (status, _) = service.call("GET", "/api/me", &alice, None);
    assert_eq!(status, 401);
    match service.deliver("bob@example.com", "alice@agents.test", &inbound(1, "x")) {
        MailVerdict::Reject(_) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_signup_racing_a_deletion_never_gets_the_handle() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let signup = HttpRequest::new("POST", "/api/signup")
        .header("content-type", "application/json")
        .body(r#"{"handle":"alice"}"#);
    // The deletion's KV clean-up is held (the object has erased itself);
    // a signup for the handle runs meanwhile, and after.
    let gate = service.objects().hold(&object_id("alice"));
    let (deleted, during) = pollster::block_on(async {
        let delete = service.call_async("DELETE", "/api/me", &alice, None);
        let race = async {
            until("the deletion at the door", || gate.arrived() == 1).await;
            // The signup's claim queues behind the deletion at the door.
            let signup = service.request_async(&signup);
            let release = async {
                until("the signup at the door", || gate.arrived() == 2).await;
                gate.release();
            };
            join!(signup, release).0
        };
        join!(delete, race)
    });
    assert_eq!(deleted.0, 204);
    assert_eq!(
        during.status,
        409,
        "{}",
        String::from_utf8_lossy(&during.body)
    );
    assert_eq!(answer(&service, &signup).0, 409, "and after");
}

#[test]
fn waits_end_when_the_inbox_is_deleted() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let (wait, deleted) = pollster::block_on(async {
        let wait = service.call_async("GET", "/api/messages/wait?timeout=30", &alice, None);
        let delete = async {
            until("the wait", || {
                service.objects().waiting(&object_id("alice")) == 1
            })
            .await;
            service.call_async("DELETE", "/api/me", &alice, None).await
        };
        join!(wait, delete)
    });
    assert_eq!(deleted.0, 204);
    assert_eq!(wait.0, 401, "{}", wait.1);
    assert_eq!(
        service.objects().closed_sockets(&object_id("alice")),
        vec![None],
        "every live socket is closed"
    );
}

// ------------------------------------------------------------------------ keys

fn create_key(service: &TestService, key: &str, name: &str, scope: &str) -> (u16, Json) {
    service.call(
        "POST",
        "/api/keys",
        key,
        Some(json!({ "name": name, "scope": scope })),
    )
}

#[test]
fn keys_are_listed_created_scoped_and_deleted() {
    let service = TestService::new();
    let full = service.signup("alice");
    let (status, list) = service.call("GET", "/api/keys", &full, None);
    assert_eq!(status, 200);
    let keys = list["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["name"], "signup");
    assert_eq!(keys[0]["scope"], "full");
    assert_eq!(keys[0]["prefix"].as_str(), Some(&full[..9]));
    let (status, created) = create_key(&service, &full, "monitor", "read");
    assert_eq!(status, 201, "{created}");
    let read = created["apiKey"].as_str().expect("the key").to_owned();
    assert_eq!(created["prefix"].as_str(), Some(&read[..9]));
    assert_eq!(created["scope"], "read");
    let (status, me) = service.call("GET", "/api/me", &read, None);
    assert_eq!((status, me["scope"].as_str()), (200, Some("read")));
    // Only hashes are kept.
    let kept = dump(&service, "alice");
    assert!(
        !kept.contains(&read) && !kept.contains(&full),
        "no key in storage"
    );
    assert!(service.kv().snapshot().keys().all(|k| !k.contains(&read)));
    // A read key cannot make keys, nor delete them.
    let (status, body) = create_key(&service, &read, "sneaky", "full");
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let signup_id = keys[0]["id"].as_u64().expect("an id");
    let (status, _) = service.call("DELETE", &format!("/api/keys/{signup_id}"), &read, None);
    assert_eq!(status, 403);
    // The last full key stays.
    let (status, body) = service.call("DELETE", &format!("/api/keys/{signup_id}"), &full, None);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    // Rotation: a new full key, then the old one goes.
    let (_, rotated) = create_key(&service, &full, "rotated", "full");
    let new = rotated["apiKey"].as_str().expect("the key").to_owned();
    let (status, _) = service.call("DELETE", &format!("/api/keys/{signup_id}"), &new, None);
    assert_eq!(status, 204);
    assert_eq!(
        service.call("GET", "/api/me", &full, None).0,
        401,
        "the old key"
    );
    assert_eq!(
        service.call("GET", "/api/me", &new, None).0,
        200,
        "the new key"
    );
    let (_, list) = service.call("GET", "/api/keys", &new, None);
    let names: Vec<&str> = list["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["monitor", "rotated"]);
    // Bad bodies.
    for body in [
        json!({ "name": "", "scope": "read" }),
        json!({ "name": "x", "scope": "admin" }),
        json!({ "name": "x" }),
        json!({ "name": "a\u{7}b", "scope": "read" }),
    ] {
        let (status, error) = service.call("POST", "/api/keys", &new, Some(body.clone()));
        assert_eq!(status, 400, "{body}: {error}");
    }
    let (status, _) = service.call("DELETE", "/api/keys/999", &new, None);
    assert_eq!(status, 404);
}

#[test]
fn a_key_creation_that_fails_half_way_leaves_no_working_key() {
    let service = TestService::new();
    let full = service.signup("alice");
    let kv_before = service.kv().snapshot();
    service.kv().fail_writes("key:", 1);
    let (status, body) = create_key(&service, &full, "x", "read");
    assert_eq!(status, 503, "{body}");
    assert!(body.get("apiKey").is_none());
    assert_eq!(service.kv().snapshot(), kv_before, "nothing published");
    assert_eq!(
        count_rows(&service, "alice", "api_keys"),
        1,
        "the pending key was dropped"
    );
    // The confirm step fails: the KV entry and the pending key go.
    service.objects().fail_requests("api", 0);
    let (status, created) = create_key(&service, &full, "y", "read");
    assert_eq!(status, 201, "{created}");
    let (_, list) = service.call("GET", "/api/keys", &full, None);
    assert_eq!(list["keys"].as_array().expect("keys").len(), 2);
}

#[test]
fn last_used_is_kept_to_the_hour_without_a_write_per_request() {
    let service = TestService::new();
    let key = service.signup("alice");
    service.call("GET", "/api/me", &key, None);
    let at = |service: &TestService| -> Json {
        let (_, list) = service.call("GET", "/api/keys", &key, None);
        list["keys"][0]["lastUsedAt"].clone()
    };
    let first = at(&service);
    assert!(first.is_string(), "{first}");
    assert!(
        first.as_str().expect("a time").ends_with(":00:00Z"),
        "to the hour: {first}"
    );
    service.clock.advance(10 * 60 * 1000);
    let before = dump(&service, "alice");
    service.call("GET", "/api/me", &key, None);
    assert_eq!(
        dump(&service, "alice"),
        before,
        "a request within the hour writes nothing"
    );
    service.clock.advance(60 * 60 * 1000);
    assert_ne!(at(&service), first, "the next hour is noted");
}

/// Every documented operation × every scope: a `read` key is refused (403)
/// exactly the operations that change something, by the InboxDO. The table
/// must name every operation the OpenAPI document has (and so every route
/// the router serves: another test checks each is documented), so a new
/// route without a decision here fails.
#[test]
fn every_route_has_a_scope_decision() {
    // (method, path, a valid body, whether a read key may do it)
    let table: Vec<(&str, &str, Option<Json>, bool)> = vec![
        ("GET", "/api/health", None, true),
        ("GET", "/api/health/deep", None, true),
        ("POST", "/api/signup", None, true),
        ("GET", "/api/me", None, true),
        (
            "PATCH",
            "/api/me",
            Some(json!({ "retentionDays": 30 })),
            false,
        ),
        ("DELETE", "/api/me", None, false),
        ("GET", "/api/keys", None, true),
        (
            "POST",
            "/api/keys",
            Some(json!({ "name": "k", "scope": "read" })),
            false,
        ),
        ("DELETE", "/api/keys/{id}", None, false),
        ("GET", "/api/messages", None, true),
        (
            "POST",
            "/api/messages",
            Some(json!({ "to": "alice@agents.test", "text": "x" })),
            false,
        ),
        ("GET", "/api/messages/search", None, true),
        ("GET", "/api/messages/wait", None, true),
        ("GET", "/api/events", None, true),
        ("GET", "/api/messages/{id}", None, true),
        (
            "PATCH",
            "/api/messages/{id}",
            Some(json!({ "read": true })),
            false,
        ),
        ("DELETE", "/api/messages/{id}", None, false),
        (
            "POST",
            "/api/messages/{id}/reply",
            Some(json!({ "text": "x" })),
            false,
        ),
        (
            "POST",
            "/api/messages/{id}/forward",
            Some(json!({ "to": "alice@agents.test" })),
            false,
        ),
        ("GET", "/api/messages/{id}/raw", None, true),
        (
            "GET",
            "/api/messages/{id}/attachments/{attachmentId}",
            None,
            true,
        ),
        ("GET", "/api/threads", None, true),
        ("GET", "/api/threads/{id}", None, true),
        ("DELETE", "/api/threads/{id}", None, false),
        (
            "PUT",
            "/api/webhook",
            Some(json!({ "url": "https://hooks.example.com/h" })),
            false,
        ),
        ("GET", "/api/webhook", None, true),
        ("DELETE", "/api/webhook", None, false),
        ("GET", "/api/webhook/deliveries", None, true),
        ("GET", "/api/export", None, true),
        ("GET", "/api/openapi.json", None, true),
        ("GET", "/llms.txt", None, true),
    ];
    let documented: BTreeSet<(String, String)> = protocol::openapi::document()["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(move |m| (m.to_ascii_uppercase(), path.clone()))
        })
        .collect();
    let decided: BTreeSet<(String, String)> = table
        .iter()
        .map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(decided, documented, "every operation has a scope decision");

    let service = TestService::new();
    let full = service.signup("alice");
    let (_, created) = create_key(&service, &full, "reader", "read");
    let read = created["apiKey"].as_str().expect("a key").to_owned();
    deliver(&service, 1, "Hello");
    for (method, path, body, readable) in &table {
        let concrete = path
            .replace("/api/keys/{id}", "/api/keys/1")
            .replace("{id}", "1")
            .replace("{attachmentId}", "2")
            .replace("/wait", "/wait?after=0")
            .replace("/search", "/search?q=hello");
        let mut request =
            HttpRequest::new(method, &concrete).header("authorization", &format!("Bearer {read}"));
        if *path == "/api/events" {
            request = request
                .header("upgrade", "websocket")
                .header("connection", "Upgrade")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
                .header("sec-websocket-version", "13");
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let reply = service.request(&request);
        if *readable {
            assert!(
                reply.status != 403 && reply.status != 401,
                "{method} {path} with a read key: {}",
                reply.status
            );
        } else {
            let error: Json = serde_json::from_slice(&reply.body).expect("JSON");
            assert_eq!(
                (reply.status, error["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path} with a read key"
            );
        }
    }
    // Nothing changed for the read key's trying.
    assert_eq!(service.call("GET", "/api/me", &full, None).0, 200);
    let (_, message) = service.call("GET", "/api/messages/1", &full, None);
    assert_eq!(message["read"], false);
    assert_eq!(service.messages(&full).len(), 1);
}

/// The InboxDO checks the scope itself: a router that forwarded a write
/// with a read key's hash is refused there.
#[test]
fn the_inbox_refuses_a_write_from_a_read_key_whatever_the_router_did() {
    let service = TestService::new();
    let full = service.signup("alice");
    let (_, created) = create_key(&service, &full, "reader", "read");
    let read = protocol::ApiKey::parse(created["apiKey"].as_str().expect("a key")).expect("a key");
    let request = protocol::wire::InboxRequest::Api {
        key_hash: read.hash(),
        mail_domain: "agents.test".into(),
        call: protocol::wire::ApiCall::DeleteInbox,
    };
    let reply = pollster::block_on(router_worker::InboxNamespace::send(
        service.objects(),
        &object_id("alice"),
        &request,
        None,
    ))
    .expect("an answer");

    assert_eq!(reply.status, 403);
    assert_eq!(service.call("GET", "/api/me", &full, None).0, 200);
}

// ------------------------------------------------ the router's kept KV entries

/// The KV key of `key`'s index entry.
fn key_entry(key: &str) -> String {
    let hash = protocol::ApiKey::parse(key)
        .map(|k| k.hash())
        .expect("a well-formed key");
    router_worker::key_index_key(&hash)
}

#[test]
fn the_router_reads_each_found_index_entry_once_and_never_keeps_an_absent_one() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let reads = || service.kv().reads();
    let before = reads();
    for _ in 0..3 {
        assert_eq!(service.call("GET", "/api/me", &alice, None).0, 200);
    }
    assert_eq!(reads() - before, 1, "one KV read for three requests");
    for n in 0..3 {
        deliver(&service, n, "Kept");
    }
    assert_eq!(reads() - before, 2, "one more for three mails");
    // A send to a local inbox reads its handle's entry: the same one mail used.
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &alice,
        Some(json!({ "to": ["alice@agents.test"], "text": "to myself" })),
    );
    assert_eq!(status, 201, "{sent}");
    assert_eq!(reads() - before, 2, "the send found the handle kept");
    // What KV does not hold is read again each time: a key published a
    // moment from now must work at once.
    let unknown = protocol::ApiKey::from_random([7; protocol::key::KEY_RANDOM_BYTES]);
    for _ in 0..2 {
        assert_eq!(
            service.call("GET", "/api/me", unknown.expose(), None).0,
            401
        );
    }
    match service.deliver("bob@example.com", "nobody@agents.test", &inbound(9, "?")) {
        MailVerdict::Reject(_) => {}
        other => panic!("mail to no inbox: {other:?}"),
    }
    assert_eq!(reads() - before, 5, "absent entries are not kept");
    assert_eq!(service.index_cache().len(), 2, "alice's key and handle");
}

/// Another isolate may still keep entries this one deleted: what they route
/// is refused by the inbox, and a refused entry is dropped.
#[test]
fn kept_entries_of_a_deleted_key_or_inbox_grant_nothing() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let (status, created) = create_key(&service, &alice, "second", "full");
    assert_eq!(status, 201, "{created}");
    let second = created["apiKey"].as_str().expect("the key").to_owned();
    assert_eq!(service.call("GET", "/api/me", &second, None).0, 200);
    let id = created["id"].as_u64().expect("an id");
    let (status, _) = service.call("DELETE", &format!("/api/keys/{id}"), &alice, None);
    assert_eq!(status, 204);
    let entry = key_entry(&second);
    assert_eq!(service.index_cache().get(&entry), None, "forgotten here");
    assert_eq!(service.call("GET", "/api/me", &second, None).0, 401);
    // As another isolate would still hold it:
    service.index_cache().keep(&entry, &object_id("alice"));
    let (status, body) = service.call("GET", "/api/messages", &second, None);
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(
        service.index_cache().get(&entry),
        None,
        "dropped once refused"
    );

    // The whole inbox deleted, while another isolate keeps its key and handle.
    deliver(&service, 1, "Before");
    let (status, _) = service.call("DELETE", "/api/me", &alice, None);
    assert_eq!(status, 204);
    let (alice_entry, handle_entry) = (key_entry(&alice), "handle:alice".to_owned());
    assert_eq!(service.index_cache().len(), 0, "this isolate forgot both");
    service
        .index_cache()
        .keep(&alice_entry, &object_id("alice"));
    service
        .index_cache()
        .keep(&handle_entry, &object_id("alice"));
    let (status, _) = service.call("GET", "/api/messages", &alice, None);
    assert_eq!(status, 401);
    match service.deliver("bob@example.com", "alice@agents.test", &inbound(2, "After")) {
        MailVerdict::Reject(_) => {}
        other => panic!("mail to a deleted inbox: {other:?}"),
    }
    assert!(
        service.index_cache().is_empty(),
        "both dropped once refused"
    );
}

// ------------------------------------------------------------------- retention

#[test]
fn retention_deletes_old_mail_in_bounded_batches() {
    let service = TestService::new();
    let alice = service.signup("alice");
    for n in 0..450 {
        deliver(&service, n, "Old");
    }
    service.clock.advance(3 * DAY);
    let recent = deliver(&service, 1000, "Recent");
    let (status, me) = service.call(
        "PATCH",
        "/api/me",
        &alice,
        Some(json!({ "retentionDays": 2 })),
    );
    assert_eq!(
        (status, me["retentionDays"].as_u64()),
        (200, Some(2)),
        "{me}"
    );
    assert_eq!(
        service.call("GET", "/api/me", &alice, None).1["retentionDays"],
        2
    );
    let id = object_id("alice");
    let mut counts = Vec::new();
    for _ in 0..3 {
        assert!(service.objects().run_alarm_of(&id), "an alarm was due");
        counts.push(count_rows(&service, "alice", "messages"));
    }
    assert_eq!(counts, [251, 51, 1], "200 a pass");
    let (_, left) = service.call("GET", "/api/messages", &alice, None);
    assert_eq!(left["messages"][0]["id"], recent);
    assert_eq!(
        service.call("GET", "/api/me", &alice, None).1["messageCount"],
        1
    );
    // The alarm comes back when the recent one falls out.
    let at = service
        .objects()
        .alarm_of(&id)
        .expect("an alarm for the next expiry");
    assert!(at.millis() > service.clock.now().millis() + DAY);
    // Bad values; null clears it.
    for bad in [
        json!({ "retentionDays": 0 }),
        json!({ "retentionDays": 3651 }),
        json!({}),
        json!({ "retentionDays": "7" }),
    ] {
        assert_eq!(
            service
                .call("PATCH", "/api/me", &alice, Some(bad.clone()))
                .0,
            400,
            "{bad}"
        );
    }
    let (_, me) = service.call(
        "PATCH",
        "/api/me",
        &alice,
        Some(json!({ "retentionDays": null })),
    );
    assert_eq!(me["retentionDays"], Json::Null);
    let (status, me) = service.call(
        "PATCH",
        "/api/me",
        &alice,
        Some(json!({ "retentionDays": 5.0 })),
    );
    assert_eq!(
        (status, me["retentionDays"].as_u64()),
        (200, Some(5)),
        "a whole number written 5.0"
    );
    for bad in [
        json!({ "retentionDays": 5.5 }),
        json!({ "retentionDays": -1 }),
    ] {
        assert_eq!(
            service
                .call("PATCH", "/api/me", &alice, Some(bad.clone()))
                .0,
            400,
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------- export

/// An mboxrd file split as Python's `mailbox.mbox` does (at lines starting
/// `From `, the blank line before each dropped), each unquoted.
fn read_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            if let Some(last) = messages.last_mut() {
                assert_eq!(
                    last.pop(),
                    Some(b'\n'),
                    "a blank line before each separator"
                );
            }
            messages.push(Vec::new());
        } else {
            messages
                .last_mut()
                .expect("a separator first")
                .extend_from_slice(line);
        }
    }
    if let Some(last) = messages.last_mut() {
        assert_eq!(last.pop(), Some(b'\n'), "a blank line at the end");
    }
    messages
        .iter()
        .map(|m| {
            let mut out = Vec::new();
            for line in m.split_inclusive(|&b| b == b'\n') {
                let arrows = line.iter().take_while(|&&b| b == b'>').count();
                if arrows > 0 && line[arrows..].starts_with(b"From ") {
                    out.extend_from_slice(&line[1..]);
                } else {
                    out.extend_from_slice(line);
                }
            }
            out
        })
        .collect()
}

#[test]
fn the_export_is_every_message_oldest_first_and_reads_back_identical() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let empty = service.request(&with_key("GET", "/api/export", &alice, None, &Json::Null));
    assert_eq!((empty.status, empty.body.len()), (200, 0));
    assert_eq!(empty.header("content-type"), Some("application/mbox"));
    let big_body: String = (0..200_000)
        .map(|n| {
            if n % 7 == 0 {
                "From the deep\r\n".to_owned()
            } else {
                format!(">From {n}\r\n")
            }
        })
        .collect();
    let raws: Vec<Vec<u8>> = vec![
        b"From: a@example.com\r\nTo: alice@agents.test\r\nSubject: one\r\n\r\nFrom here on\r\n>From there\r\n".to_vec(),
        format!("From: b@example.com\r\nTo: alice@agents.test\r\nSubject: big\r\n\r\n{big_body}").into_bytes(),
        b"From: c@example.com\r\nTo: alice@agents.test\r\nSubject: three\r\n\r\nends\n\n".to_vec(),
    ];
    for raw in &raws {
        assert!(matches!(
            service.deliver("s@example.com", "alice@agents.test", raw),
            MailVerdict::Accepted(_)
        ));
    }
    assert!(raws[1].len() > 2 * 1024 * 1024, "crosses chunk boundaries");
    let reply = service.request(&with_key("GET", "/api/export", &alice, None, &Json::Null));
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .starts_with(b"From a@example.com Thu Mar 26 12:00:00 2026\n"),
        "{:?}",
        &reply.body[..40]
    );
    assert_eq!(read_mbox(&reply.body), raws);
    // A read key may export; no key may not.
    let (_, created) = create_key(&service, &alice, "reader", "read");
    let read = created["apiKey"].as_str().expect("a key");
    let by_reader = service.request(&with_key("GET", "/api/export", read, None, &Json::Null));
    assert_eq!(by_reader.body, reply.body);
    assert_eq!(
        service
            .request(&HttpRequest::new("GET", "/api/export"))
            .status,
        401
    );
}
