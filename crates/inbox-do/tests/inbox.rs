//! InboxDO behaviour, the object alone fed wire requests: its own authority
//! over its owner and key whatever it is sent, set-aside jobs, the message
//! count, limiter objects, bounded hand-overs and raw answers in chunks.
//! (Migrations on wake through the router are in testkit's tests/upgrade.rs.)
#![cfg(not(target_arch = "wasm32"))]

use inbox_do::{InboxService, PlatformError};
use protocol::wire::{ApiCall, CLAIM_TTL_MILLIS, InboxRequest};
use protocol::{ApiKey, Handle, KeyHash, Reply, Timestamp};
use schema::{MIGRATIONS, Rows, Sql, Value};
use serde_json::Value as Json;
use testkit::{FixedPlatform, SqliteDb};

fn code(reply: &Reply) -> String {
    serde_json::from_slice::<Json>(&reply.body).expect("a JSON answer")["code"]
        .as_str()
        .expect("an error code")
        .to_owned()
}

/// The service alone, fed wire requests directly.
struct Object {
    db: SqliteDb,
    service: InboxService,
    now: Timestamp,
}

impl Object {
    fn new() -> Self {
        Object {
            db: SqliteDb::new(),
            service: InboxService::new(MIGRATIONS),
            now: Timestamp::from_millis(1_000_000),
        }
    }

    fn send(&mut self, request: &InboxRequest) -> Reply {
        let header = protocol::wire::encode_request(request);
        self.serve(&header)
    }

    fn serve(&self, header: &str) -> Reply {
        let platform = FixedPlatform::at(self.now);
        pollster::block_on(self.service.serve(&self.db, &platform, header, b""))
    }

    fn state(&self) -> Vec<Vec<Value>> {
        self.db
            .exec("SELECT handle, state FROM inbox", &[])
            .expect("the inbox table reads")
            .rows
    }
}

fn hash(seed: u8) -> KeyHash {
    ApiKey::from_random([seed; 32]).hash()
}

fn claim(seed: u8) -> InboxRequest {
    InboxRequest::Claim {
        handle: Handle::parse("alice").unwrap_or_else(|e| panic!("{e}")),
        key_hash: hash(seed),
    }
}

fn api(seed: u8) -> InboxRequest {
    InboxRequest::Api {
        key_hash: hash(seed),
        mail_domain: "agents.test".into(),
        call: ApiCall::Me,
    }
}

#[test]
fn the_object_decides_ownership() {
    let mut object = Object::new();
    assert_eq!(object.send(&claim(1)).status, 201);
    // Retrying the same claim is fine; a different key is refused.
    assert_eq!(object.send(&claim(1)).status, 201);
    let other = object.send(&claim(2));
    assert_eq!((other.status, code(&other).as_str()), (409, "handle_taken"));
    // Not usable until confirmed.
    assert_eq!(object.send(&api(1)).status, 401);
    // Only the claimant can confirm.
    let wrong = object.send(&InboxRequest::Confirm {
        key_hash: hash(2),
        prefix: None,
    });
    assert_eq!((wrong.status, code(&wrong).as_str()), (409, "conflict"));
    assert_eq!(
        object
            .send(&InboxRequest::Confirm {
                key_hash: hash(1),
                prefix: None
            })
            .status,
        204
    );
    assert_eq!(object.send(&api(1)).status, 200);
    assert_eq!(object.send(&api(2)).status, 401);
    // An active inbox is never released, and never re-claimed, however late.
    assert_eq!(
        object
            .send(&InboxRequest::Release { key_hash: hash(1) })
            .status,
        204
    );
    object.now = object.now.plus_millis(CLAIM_TTL_MILLIS * 10);
    assert_eq!(object.send(&claim(2)).status, 409);
    assert_eq!(
        object.state(),
        vec![vec![Value::from("alice"), Value::from("active")]]
    );
}

#[test]
fn an_unconfirmed_claim_can_be_released_or_expires() {
    let mut object = Object::new();
    assert_eq!(object.send(&claim(1)).status, 201);
    // Someone else's release does nothing.
    assert_eq!(
        object
            .send(&InboxRequest::Release { key_hash: hash(2) })
            .status,
        204
    );
    assert_eq!(object.state().len(), 1);
    assert_eq!(
        object
            .send(&InboxRequest::Release { key_hash: hash(1) })
            .status,
        204
    );
    assert!(object.state().is_empty());

    assert_eq!(object.send(&claim(1)).status, 201);
    object.now = object.now.plus_millis(CLAIM_TTL_MILLIS - 1);
    assert_eq!(object.send(&claim(2)).status, 409);
    object.now = object.now.plus_millis(1);
    assert_eq!(object.send(&claim(2)).status, 201);
    // The first claimant, back late, has lost it.
    assert_eq!(
        object
            .send(&InboxRequest::Confirm {
                key_hash: hash(1),
                prefix: None
            })
            .status,
        409
    );
}

/// Only the router speaks to an object: a request it cannot read is a version
/// skew between the two scripts, the service's fault, not the client's.
#[test]
fn an_unreadable_wire_request_is_the_services_fault() {
    let object = Object::new();
    let encoded = |json: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    };
    for header in [
        String::new(),
        "not base64!".to_owned(),
        encoded("{"),
        encoded(r#"{"op":"nope"}"#),
        encoded(r#"{"op":"confirm","keyHash":"12"}"#),
    ] {
        let reply = object.serve(&header);
        assert_eq!((reply.status, code(&reply).as_str()), (503, "unavailable"));
    }
}

fn active(object: &mut Object) {
    assert_eq!(object.send(&claim(1)).status, 201);
    assert_eq!(
        object
            .send(&InboxRequest::Confirm {
                key_hash: hash(1),
                prefix: None
            })
            .status,
        204
    );
}

fn json(reply: &Reply) -> Json {
    serde_json::from_slice(&reply.body).expect("a JSON body")
}

fn tables(db: &SqliteDb) -> Vec<String> {
    db.exec(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        &[],
    )
    .expect("sqlite_master reads")
    .rows
    .iter()
    .map(|r| r[0].as_str().expect("a name").to_owned())
    .collect()
}

#[test]
fn a_stored_handle_that_todays_rules_refuse_still_serves() {
    let mut object = Object::new();
    active(&mut object);
    // A later build reserves the word the inbox was created with.
    object
        .db
        .exec("UPDATE inbox SET handle = 'admin' WHERE id = 1", &[])
        .expect("update");
    let reply = object.send(&api(1));
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(json(&reply)["handle"], "admin");
    let ingest = InboxRequest::Ingest {
        envelope_from: "bob@example.com".into(),
        recipient: "admin@agents.test".into(),
        tag: None,
    };
    let header = protocol::wire::encode_request(&ingest);
    let platform = FixedPlatform::at(object.now);
    let reply = pollster::block_on(object.service.serve(
        &object.db,
        &platform,
        &header,
        b"Subject: hi\r\n\r\nhello\r\n",
    ));
    assert_eq!(reply.status, 201, "mail is stored, not deferred");
}

#[test]
fn an_unreadable_job_is_set_aside_and_the_others_run() {
    let mut object = Object::new();
    active(&mut object);
    let db = &object.db;
    let exec = |q: &str| db.exec(q, &[]).expect("setup statement");
    exec("INSERT INTO messages (direction, received_at, size) VALUES ('inbound', 1, 0)");
    exec(
        "INSERT INTO messages (direction, received_at, size, send_status)
         VALUES ('outbound', 2, 0, 'queued')",
    );
    exec(
        "INSERT INTO webhook (id, url, secret, allow_http_loopback, created_at)
         VALUES (1, 'https://example.com/hook', 'whsec_unreadable', 0, 1)",
    );
    // Oldest first: the unreadable ones come before the good one.
    exec(
        "INSERT INTO jobs (kind, message_id, event, event_id, body, due_at, created_at)
         VALUES ('webhook', 1, 'message.exploded', 'evt_1', '{}', 1, 1)",
    );
    exec(
        "INSERT INTO jobs (kind, message_id, route, body, due_at, created_at)
         VALUES ('send', 2, '{\"via\":\"pigeon\"}', '{}', 2, 2)",
    );
    exec(
        "INSERT INTO jobs (kind, message_id, event, event_id, body, due_at, created_at)
         VALUES ('webhook', 1, 'message.received', 'evt_2', '{}', 3, 3)",
    );
    let platform = FixedPlatform::at(object.now);
    pollster::block_on(object.service.alarm(&object.db, &platform))
        .expect("the alarm runs despite the unreadable rows");
    let count = |q: &str| object.db.exec(q, &[]).expect("count").rows[0][0].as_i64();
    assert_eq!(count("SELECT count(*) FROM dead_jobs"), Some(2));
    assert_eq!(
        count("SELECT count(*) FROM webhook_attempts WHERE event_id = 'evt_2'"),
        Some(1),
        "the good job was attempted"
    );
    let reason = object
        .db
        .exec("SELECT reason FROM dead_jobs ORDER BY id", &[])
        .expect("reasons");
    assert!(
        reason.rows[0][0]
            .as_str()
            .expect("text")
            .contains("event kind")
    );
    // The send whose job was set aside is failed, not queued forever.
    let status = object
        .db
        .exec("SELECT send_status FROM messages WHERE id = 2", &[])
        .expect("status");
    assert_eq!(status.rows[0][0], Value::from("failed"));
    assert_eq!(
        count("SELECT count(*) FROM jobs WHERE event_id IN ('evt_1')"),
        Some(0)
    );
    object.now = object.now.plus_millis(1);
}

#[test]
fn me_reads_the_message_count_without_counting_the_table() {
    let mut object = Object::new();
    active(&mut object);
    for n in 0..2 {
        let ingest = InboxRequest::Ingest {
            envelope_from: "bob@example.com".into(),
            recipient: "alice@agents.test".into(),
            tag: None,
        };
        let header = protocol::wire::encode_request(&ingest);
        let platform = FixedPlatform::at(object.now);
        let raw = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
        let reply = pollster::block_on(object.service.serve(
            &object.db,
            &platform,
            &header,
            raw.as_bytes(),
        ));
        assert_eq!(reply.status, 201);
    }
    // A count over the messages would fail now.
    object.db.fail_statements("FROM messages", 0, 100);
    let reply = object.send(&api(1));
    assert_eq!(reply.status, 200, "GET /api/me does not read the messages");
    assert_eq!(json(&reply)["messageCount"], 2);
}

#[test]
fn an_inbox_upgraded_to_the_message_count_reports_its_messages() {
    let mut object = Object::new();
    // As the build before the counter left it.
    schema::migrate(&object.db, &MIGRATIONS[..6], 1_000).expect("older schema");
    let exec = |q: &str, params: &[Value]| object.db.exec(q, params).expect("setup");
    exec(
        "INSERT INTO inbox (id, handle, key_hash, state, claimed_at, created_at)
         VALUES (1, 'alice', ?, 'active', 1, 1)",
        &[Value::Text(hash(1).to_hex())],
    );
    for _ in 0..3 {
        exec(
            "INSERT INTO messages (direction, received_at, size) VALUES ('inbound', 1, 0)",
            &[],
        );
    }
    let reply = object.send(&api(1));
    assert_eq!(reply.status, 200);
    assert_eq!(json(&reply)["messageCount"], 3);
}

fn throttle(limit: u32) -> InboxRequest {
    InboxRequest::Throttle {
        limit,
        window_millis: 60_000,
    }
}

#[test]
fn a_rate_limiter_keeps_only_its_bucket_and_clears_itself_once_full() {
    let object = Object::new();
    let header = protocol::wire::encode_request(&throttle(2));
    let platform = FixedPlatform::at(object.now);
    let take = || pollster::block_on(object.service.serve(&object.db, &platform, &header, b""));
    assert_eq!(take().status, 204);
    assert_eq!(tables(&object.db), vec!["limiter_bucket".to_owned()]);
    // Full again half a window after the first token of two was taken.
    assert_eq!(platform.alarm(), Some(object.now.plus_millis(30_000)));
    assert_eq!(take().status, 204);
    assert_eq!(platform.alarm(), Some(object.now.plus_millis(60_000)));
    let refused = take();
    assert_eq!(
        (refused.status, code(&refused).as_str()),
        (429, "rate_limited")
    );
    assert_eq!(refused.header("retry-after"), Some("30"));

    // An early alarm (a token taken since it was set) waits for the refill.
    let early = FixedPlatform::at(object.now.plus_millis(30_000));
    pollster::block_on(object.service.alarm(&object.db, &early)).expect("alarm");
    assert_eq!(early.alarm(), Some(object.now.plus_millis(60_000)));
    assert_eq!(tables(&object.db), vec!["limiter_bucket".to_owned()]);

    let full = FixedPlatform::at(object.now.plus_millis(60_000));
    pollster::block_on(object.service.alarm(&object.db, &full)).expect("alarm");
    assert!(tables(&object.db).is_empty(), "{:?}", tables(&object.db));
    assert_eq!(full.alarm(), None);
    // And it limits again, from a full bucket.
    let later = FixedPlatform::at(object.now.plus_millis(60_000));
    let reply = pollster::block_on(object.service.serve(&object.db, &later, &header, b""));
    assert_eq!(reply.status, 204);
}

#[test]
fn a_limiter_left_by_an_older_build_with_the_inbox_schema_clears_itself() {
    let object = Object::new();
    schema::migrate(&object.db, &MIGRATIONS[..5], 1_000).expect("older schema");
    let header = protocol::wire::encode_request(&throttle(1));
    let platform = FixedPlatform::at(object.now);
    let reply = pollster::block_on(object.service.serve(&object.db, &platform, &header, b""));
    assert_eq!(reply.status, 204);
    let at = platform.alarm().expect("an alarm is set");
    let full = FixedPlatform::at(at);
    pollster::block_on(object.service.alarm(&object.db, &full)).expect("alarm");
    assert!(
        tables(&object.db).iter().all(|t| t == "sqlite_sequence"),
        "{:?}",
        tables(&object.db)
    );
}

/// A platform whose other inboxes never answer and whose timers fire at once.
struct Stuck(FixedPlatform);

impl inbox_do::Platform for Stuck {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
    async fn http(&self, call: &inbox_do::HttpCall) -> Result<inbox_do::HttpAnswer, PlatformError> {
        self.0.http(call).await
    }
    async fn send_email(&self, _: &str, _: &str, _: &[u8]) -> Result<(), PlatformError> {
        std::future::pending().await
    }
    async fn call_inbox(
        &self,
        _: &str,
        _: &InboxRequest,
        _: &[u8],
    ) -> Result<Reply, PlatformError> {
        std::future::pending().await
    }
    async fn set_alarm(&self, at: Timestamp) -> Result<(), PlatformError> {
        self.0.set_alarm(at).await
    }
    async fn sleep(&self, _millis: u64) {}
}

#[test]
fn a_hand_over_that_never_answers_fails_within_the_lease() {
    let mut object = Object::new();
    active(&mut object);
    let send = InboxRequest::Api {
        key_hash: hash(1),
        mail_domain: "agents.test".into(),
        call: ApiCall::Send {
            to: "bob@agents.test".into(),
            subject: Some("Hi".into()),
            text: Some("hello".into()),
            html: None,
            route: protocol::wire::SendRoute::Direct {
                handle: Handle::parse("bob").expect("a handle"),
                object_id: testkit::object_id("bob"),
                tag: None,
            },
            reply_to: Vec::new(),
            recipients: Vec::new(),
            attachments: Vec::new(),
            idempotency_key: None,
        },
    };
    let header = protocol::wire::encode_request(&send);
    let platform = Stuck(FixedPlatform::at(object.now));
    let reply = pollster::block_on(object.service.serve(&object.db, &platform, &header, b""));
    assert_eq!(reply.status, 201);
    let body = json(&reply);
    assert_eq!(body["status"], "failed");
    assert!(
        body["statusReason"]
            .as_str()
            .expect("a reason")
            .contains("did not answer within 30 s"),
        "{body}"
    );
}

#[test]
fn a_raw_message_is_answered_chunk_by_chunk_and_serve_joins_them() {
    let mut object = Object::new();
    active(&mut object);
    let mut raw = b"Subject: big\r\n\r\n".to_vec();
    raw.resize(1024 * 1024 + 10, b'x');
    let ingest = InboxRequest::Ingest {
        envelope_from: "bob@example.com".into(),
        recipient: "alice@agents.test".into(),
        tag: None,
    };
    let platform = FixedPlatform::at(object.now);
    let header = protocol::wire::encode_request(&ingest);
    let stored = pollster::block_on(object.service.serve(&object.db, &platform, &header, &raw));
    let id = json(&stored)["id"].as_u64().expect("an id");
    let get = protocol::wire::encode_request(&InboxRequest::Api {
        key_hash: hash(1),
        mail_domain: "agents.test".into(),
        call: ApiCall::GetRaw { id },
    });
    let answer = pollster::block_on(
        object
            .service
            .serve_answer(&object.db, &platform, &get, b""),
    );
    let inbox_do::Answer::Raw(message) = answer else {
        panic!("a raw answer: {answer:?}");
    };
    assert_eq!((message.status, message.chunks), (200, 2));
    let mut joined = Vec::new();
    for seq in 0..message.chunks {
        joined.extend(message.chunk(&object.db, seq).expect("a chunk"));
    }
    assert_eq!(joined, raw);
    assert!(message.chunk(&object.db, 2).is_err());
    let whole = pollster::block_on(object.service.serve(&object.db, &platform, &get, b""));
    assert_eq!(whole.body, raw);
    assert_eq!(whole.header("content-type"), Some("message/rfc822"));
}

/// Every statement one request runs, through the real store: what the
/// ingest's cost is made of, kept in a snapshot so that a statement added
/// to the path of every message shows in review.
struct Counting<'a> {
    db: &'a SqliteDb,
    statements: std::cell::RefCell<Vec<String>>,
}

impl Sql for Counting<'_> {
    fn exec(&self, query: &str, params: &[Value]) -> Result<Rows, schema::SqlError> {
        // The statement's text only (no values: they are the mail's).
        let words: Vec<&str> = query.split_whitespace().collect();
        self.statements.borrow_mut().push(words.join(" "));
        self.db.exec(query, params)
    }

    fn transaction(
        &self,
        body: &mut dyn FnMut() -> Result<(), schema::SqlError>,
    ) -> Result<(), schema::SqlError> {
        self.statements.borrow_mut().push("BEGIN".into());
        let result = self.db.transaction(body);
        self.statements.borrow_mut().push("COMMIT".into());
        result
    }
}

fn ingest_counted(object: &Object, raw: &[u8]) -> Vec<String> {
    let counting = Counting {
        db: &object.db,
        statements: Default::default(),
    };
    let header = protocol::wire::encode_request(&InboxRequest::Ingest {
        envelope_from: "sender@example.com".into(),
        recipient: "alice@agents.test".into(),
        tag: None,
    });
    let platform = FixedPlatform::at(object.now);
    let reply = pollster::block_on(object.service.serve(&counting, &platform, &header, raw));
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    counting.statements.into_inner()
}

#[test]
fn a_plain_message_costs_a_known_list_of_statements() {
    let mut object = Object::new();
    active(&mut object);
    let original = b"From: Sender <sender@example.com>\r\nTo: alice@agents.test\r\n\
Subject: Your code\r\nMessage-ID: <one@example.com>\r\n\r\nYour code is 482913.\r\n";
    let reply = b"From: Sender <sender@example.com>\r\nTo: alice@agents.test\r\n\
Subject: Re: Your code\r\nMessage-ID: <two@example.com>\r\nIn-Reply-To: <one@example.com>\r\n\
\r\nAnd again: 771204.\r\n";
    let starts = ingest_counted(&object, original);
    let joins = ingest_counted(&object, reply);
    insta::assert_snapshot!(
        "ingest_statements",
        format!(
            "a message that starts a thread ({} statements):\n{}\n\n\
             a reply that joins it ({} statements):\n{}\n",
            starts.len(),
            starts.join("\n"),
            joins.len(),
            joins.join("\n")
        )
    );
    // And the thread they make is whole: both messages, counted once each,
    // the latest's preview, both unread, one participant.
    let rows = object
        .db
        .exec(
            "SELECT message_count, unread_count, last_message_id, preview, participants, subject
             FROM threads",
            &[],
        )
        .expect("threads read")
        .rows;
    assert_eq!(rows.len(), 1, "one thread: {rows:?}");
    let thread = &rows[0];
    assert_eq!(thread[0], Value::Integer(2));
    assert_eq!(thread[1], Value::Integer(2));
    assert_eq!(thread[2], Value::Integer(2));
    assert_eq!(thread[3].as_str(), Some("And again: 771204."));
    assert_eq!(
        thread[4].as_str(),
        Some(r#"["sender@example.com","alice@agents.test"]"#)
    );
    assert_eq!(thread[5].as_str(), Some("Your code"));
}

#[test]
fn arrival_times_never_go_backwards_when_the_clock_does() {
    let mut object = Object::new();
    active(&mut object);
    let mail = |n: u32| {
        format!("From: a@example.com\r\nTo: alice@agents.test\r\nSubject: {n}\r\n\r\nBody {n}.\r\n")
    };
    object.now = Timestamp::from_millis(2_000_000);
    ingest_counted(&object, mail(1).as_bytes());
    // The clock steps back: the next message is stored at the latest time
    // seen, not before it.
    object.now = Timestamp::from_millis(1_500_000);
    ingest_counted(&object, mail(2).as_bytes());
    object.now = Timestamp::from_millis(3_000_000);
    ingest_counted(&object, mail(3).as_bytes());
    let times: Vec<Value> = object
        .db
        .exec("SELECT received_at FROM messages ORDER BY id", &[])
        .expect("messages read")
        .rows
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect();
    assert_eq!(
        times,
        [2_000_000, 2_000_000, 3_000_000]
            .map(Value::Integer)
            .to_vec()
    );
}
