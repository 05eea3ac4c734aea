//! Inboxes across builds, through the router: an inbox created by an older
//! build migrates on wake with its data; a failing migration answers 503 and
//! changes nothing.
#![cfg(not(target_arch = "wasm32"))]

use protocol::{ApiKey, Reply};
use router_worker::HttpRequest;
use schema::{MIGRATIONS, Migration, Sql, Value};
use serde_json::Value as Json;
use testkit::{SqliteDb, TestService};

fn leak(list: Vec<Migration>) -> &'static [Migration] {
    Box::leak(list.into_boxed_slice())
}

fn me(service: &TestService, key: &str) -> Reply {
    service.request(
        &HttpRequest::new("GET", "/api/me").header("authorization", &format!("Bearer {key}")),
    )
}

fn code(reply: &Reply) -> String {
    serde_json::from_slice::<Json>(&reply.body).expect("a JSON answer")["code"]
        .as_str()
        .expect("an error code")
        .to_owned()
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
    let body: Json = serde_json::from_slice(&reply.body).expect("a JSON answer");
    assert_eq!(body["handle"], "alice");
    assert_eq!(body["createdAt"], "2026-03-26T12:00:00Z");
    assert_eq!(body["messageCount"], 0);
    assert_eq!(version(&service), Some(MIGRATIONS.len() as i64));
}

#[test]
fn a_failing_migration_answers_503_and_changes_nothing() {
    let service = TestService::new();
    let key = service.signup("alice");
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
