//! The doubles refuse what the platform refuses, so that tests passing here
//! mean something on Cloudflare.

use router_worker::Directory;
use schema::{Sql, SqlError, Value};
use testkit::{FakeClock, FakeKv, MAX_PARAMS, MAX_VALUE_BYTES, REFUSED, SqliteDb};

/// Whether `query` was refused as DO SQLite refuses it: failing is not enough
/// (`COMMIT` with no transaction open fails anyway, with SQLite's own "no
/// transaction is active").
fn refused(db: &SqliteDb, query: &str) -> bool {
    match db.exec(query, &[]) {
        Ok(_) => false,
        Err(error) => {
            assert!(
                error.message.starts_with(REFUSED),
                "{query:?} failed, but not as refused: {}",
                error.message
            );
            true
        }
    }
}

#[test]
fn sqlite_refuses_what_durable_objects_refuse() {
    let db = SqliteDb::new();
    for query in [
        "BEGIN",
        "begin transaction",
        "  BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT s1",
        "RELEASE s1",
        "PRAGMA user_version",
        "PRAGMA user_version = 3",
        "CREATE TABLE _cf_mine (x)",
        "CREATE TABLE _CF_Mine (x)",
    ] {
        assert!(refused(&db, query), "accepted {query:?}");
    }
    // Inside a transaction too, where COMMIT, ROLLBACK and RELEASE would
    // otherwise succeed.
    db.transaction(&mut || {
        db.exec("CREATE TABLE inside (x)", &[])?;
        for query in ["COMMIT", "END", "ROLLBACK", "SAVEPOINT s2", "RELEASE s2"] {
            assert!(refused(&db, query), "accepted {query:?} in a transaction");
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(db.exec("SELECT x FROM inside", &[]).is_ok());
    db.exec("CREATE TABLE t (x INTEGER)", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(refused(&db, "CREATE INDEX _cf_i ON t (x)"));
    // Foreign keys are enforced, as on the platform.
    db.exec("CREATE TABLE parent (id INTEGER PRIMARY KEY)", &[])
        .and_then(|_| db.exec("CREATE TABLE child (p INTEGER REFERENCES parent(id))", &[]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(db.exec("INSERT INTO child VALUES (42)", &[]).is_err());
}

#[test]
fn sqlite_enforces_the_platform_limits() {
    let db = SqliteDb::new();
    db.exec("CREATE TABLE t (v)", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let at_limit = Value::Blob(vec![0; MAX_VALUE_BYTES]);
    assert!(db.exec("INSERT INTO t VALUES (?)", &[at_limit]).is_ok());
    let over = Value::Text("x".repeat(MAX_VALUE_BYTES + 1));
    assert!(db.exec("INSERT INTO t VALUES (?)", &[over]).is_err());

    let placeholders = vec!["?"; MAX_PARAMS + 1].join(",");
    let params = vec![Value::Integer(1); MAX_PARAMS + 1];
    let query = format!("SELECT {placeholders}");
    assert!(db.exec(&query, &params).is_err());
    let query = format!("SELECT {}", vec!["?"; MAX_PARAMS].join(","));
    assert!(db.exec(&query, &params[..MAX_PARAMS]).is_ok());

    let long = format!("SELECT '{}'", "x".repeat(100 * 1024));
    assert!(db.exec(&long, &[]).is_err());
}

#[test]
fn transactions_commit_or_roll_back_whole() {
    let db = SqliteDb::new();
    db.exec("CREATE TABLE t (v INTEGER)", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let count = |db: &SqliteDb| {
        db.exec("SELECT count(*) FROM t", &[])
            .ok()
            .and_then(|r| r.rows.first().and_then(|row| row[0].as_i64()))
    };
    let failed = db.transaction(&mut || {
        db.exec("INSERT INTO t VALUES (1)", &[])?;
        db.exec("INSERT INTO t VALUES (2)", &[])?;
        Err(SqlError::new("stop"))
    });
    assert_eq!(failed, Err(SqlError::new("stop")));
    assert_eq!(count(&db), Some(0));

    // A failing statement inside: nothing before it survives either.
    let failed = db.transaction(&mut || {
        db.exec("INSERT INTO t VALUES (1)", &[])?;
        db.exec("INSERT INTO missing VALUES (2)", &[])?;
        Ok(())
    });
    assert!(failed.is_err());
    assert_eq!(count(&db), Some(0));

    let ok = db.transaction(&mut || {
        db.exec("INSERT INTO t VALUES (1)", &[])?;
        db.exec("INSERT INTO t VALUES (2)", &[])?;
        Ok(())
    });
    assert_eq!(ok, Ok(()));
    assert_eq!(count(&db), Some(2));
}

#[test]
fn whole_reals_read_back_as_integers_like_do_sqlite() {
    let db = SqliteDb::new();
    let rows = db
        .exec("SELECT 2.0, 2.5", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.rows[0], vec![Value::Integer(2), Value::Real(2.5)]);
}

#[test]
fn kv_staleness_hides_fresh_writes_until_the_window_passes() {
    let clock = FakeClock::default();
    let kv = FakeKv::with_staleness(clock.clone(), 60_000);
    pollster::block_on(async {
        kv.put("a", "1").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kv.get("a").await, Ok(None));
        clock.advance(59_999);
        assert_eq!(kv.get("a").await, Ok(None));
        clock.advance(1);
        assert_eq!(kv.get("a").await, Ok(Some("1".into())));
        // An overwrite: the old value stays visible for the window.
        kv.put("a", "2").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kv.get("a").await, Ok(Some("1".into())));
        kv.delete("a").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kv.get("a").await, Ok(Some("1".into())));
        clock.advance(60_000);
        assert_eq!(kv.get("a").await, Ok(None));
    });
}

#[test]
fn kv_write_failures_can_be_injected() {
    let kv = FakeKv::new(FakeClock::default());
    kv.fail_writes("key:", 1);
    pollster::block_on(async {
        assert!(kv.put("key:1", "x").await.is_err());
        assert!(kv.put("handle:1", "x").await.is_ok());
        assert!(kv.put("key:1", "x").await.is_ok());
    });
    assert_eq!(kv.snapshot().len(), 2);
}
