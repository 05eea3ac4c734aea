//! InboxDO behaviour: migrations on wake, and the DO's own authority over its
//! owner and key, whatever the router sends it.
#![cfg(not(target_arch = "wasm32"))]

use inbox_do::InboxService;
use protocol::wire::{ApiCall, CLAIM_TTL_MILLIS, InboxRequest};
use protocol::{ApiKey, Handle, KeyHash, Reply, Timestamp};
use router_worker::HttpRequest;
use schema::{MIGRATIONS, Migration, Sql, Value};
use serde_json::Value as Json;
use testkit::{FixedPlatform, SqliteDb, TestService};

fn leak(list: Vec<Migration>) -> &'static [Migration] {
    Box::leak(list.into_boxed_slice())
}

fn me(service: &TestService, key: &str) -> Reply {
    service.request(
        &HttpRequest::new("GET", "/api/me").header("authorization", &format!("Bearer {key}")),
    )
}

fn signed_up(service: &TestService, handle: &str) -> String {
    let reply = service.request(
        &HttpRequest::new("POST", "/api/signup")
            .header("content-type", "application/json")
            .body(format!(r#"{{"handle":"{handle}"}}"#)),
    );
    assert_eq!(reply.status, 201);
    serde_json::from_slice::<Json>(&reply.body)
        .ok()
        .and_then(|b| b["apiKey"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn code(reply: &Reply) -> String {
    serde_json::from_slice::<Json>(&reply.body)
        .ok()
        .and_then(|b| b["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn an_inbox_created_by_an_older_build_migrates_on_wake_with_its_data() {
    let service = TestService::new();
    // The database exactly as the first build left it: only migration 1, and
    // an active owner. (The code of today needs today's schema, so the old
    // build's work is written here as it wrote it.)
    let key = ApiKey::from_random([9; 32]);
    let id = testkit::object_id("alice");
    service.objects().with_db(&id, |db| {
        schema::migrate(db, &MIGRATIONS[..1], 1_000).unwrap_or_else(|e| panic!("{e}"));
        db.exec(
            "INSERT INTO inbox (id, handle, key_hash, state, claimed_at, created_at)
             VALUES (1, 'alice', ?, 'active', 1774526400000, 1774526400000)",
            &[Value::Text(key.hash().to_hex())],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    });
    service
        .kv()
        .insert(&router_worker::key_index_key(&key.hash()), &id);
    service.kv().insert("handle:alice", &id);
    let version = |service: &TestService| {
        service.objects().with_db_of("alice", |db| {
            db.exec("SELECT max(id) FROM schema_migrations", &[])
                .ok()
                .and_then(|r| r.rows[0][0].as_i64())
        })
    };
    assert_eq!(version(&service), Some(1));

    // Today's build wakes it: every later migration runs, the data stays.
    let reply = me(&service, key.expose());
    assert_eq!(reply.status, 200);
    let body: Json = serde_json::from_slice(&reply.body).unwrap_or_default();
    assert_eq!(body["handle"], "alice");
    assert_eq!(body["createdAt"], "2026-03-26T12:00:00Z");
    assert_eq!(body["messageCount"], 0);
    assert_eq!(version(&service), Some(MIGRATIONS.len() as i64));
}

#[test]
fn a_failing_migration_answers_503_and_changes_nothing() {
    let service = TestService::new();
    let key = signed_up(&service, "alice");
    let before = service.objects().with_db_of("alice", SqliteDb::dump);

    let mut broken = MIGRATIONS.to_vec();
    broken.push(Migration {
        id: MIGRATIONS.len() as u32 + 1,
        name: "broken",
        statements: &[
            "ALTER TABLE inbox ADD COLUMN x TEXT",
            "SELECT * FROM nowhere",
        ],
    });
    service.objects().deploy(leak(broken));
    service.objects().restart();
    for _ in 0..2 {
        let reply = me(&service, &key);
        assert_eq!((reply.status, code(&reply).as_str()), (503, "unavailable"));
    }
    assert_eq!(
        service.objects().with_db_of("alice", SqliteDb::dump),
        before
    );

    // A fixed build serves again, from the untouched database.
    service.objects().deploy(MIGRATIONS);
    service.objects().restart();
    assert_eq!(me(&service, &key).status, 200);
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
            .map(|r| r.rows)
            .unwrap_or_default()
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
    let wrong = object.send(&InboxRequest::Confirm { key_hash: hash(2) });
    assert_eq!((wrong.status, code(&wrong).as_str()), (409, "conflict"));
    assert_eq!(
        object
            .send(&InboxRequest::Confirm { key_hash: hash(1) })
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
            .send(&InboxRequest::Confirm { key_hash: hash(1) })
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
