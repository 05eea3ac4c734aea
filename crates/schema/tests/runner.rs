//! The migration runner on SQLite that refuses what DO SQLite refuses.
#![cfg(not(target_arch = "wasm32"))]

use schema::{MIGRATIONS, MigrateError, Migration, Sql, Value, migrate};
use testkit::SqliteDb;

fn leak(list: Vec<Migration>) -> &'static [Migration] {
    Box::leak(list.into_boxed_slice())
}

#[test]
fn a_fresh_database_gets_every_migration_once() {
    let db = SqliteDb::new();
    let report = migrate(&db, MIGRATIONS, 1000).unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.id).collect();
    assert_eq!(report.applied, all);
    assert_eq!(report.version, MIGRATIONS.len() as u32);
    let before = db.dump();
    let again = migrate(&db, MIGRATIONS, 2000).unwrap_or_else(|e| panic!("{e}"));
    assert!(again.applied.is_empty());
    assert_eq!(db.dump(), before, "a second run must change nothing");
}

#[test]
fn an_older_database_is_brought_up_with_its_data_intact() {
    let db = SqliteDb::new();
    let old_build = &MIGRATIONS[..1];
    migrate(&db, old_build, 1000).unwrap_or_else(|e| panic!("{e}"));
    db.exec(
        "INSERT INTO inbox (id, handle, key_hash, state, claimed_at, created_at)
         VALUES (1, 'alice', ?, 'active', 5, 6)",
        &[Value::Text("ab".repeat(32))],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let report = migrate(&db, MIGRATIONS, 2000).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.applied,
        (2..=MIGRATIONS.len() as u32).collect::<Vec<_>>()
    );
    let owner = db
        .exec("SELECT handle, state, created_at FROM inbox", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        owner.rows,
        vec![vec![
            Value::from("alice"),
            Value::from("active"),
            Value::Integer(6)
        ]]
    );
    let ledger = db
        .exec(
            "SELECT id, applied_at FROM schema_migrations ORDER BY id",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ledger.rows[0],
        vec![Value::Integer(1), Value::Integer(1000)]
    );
    assert_eq!(
        ledger.rows[1],
        vec![Value::Integer(2), Value::Integer(2000)]
    );
}

#[test]
fn a_failing_migration_leaves_the_database_as_it_was() {
    let db = SqliteDb::new();
    migrate(&db, &MIGRATIONS[..1], 1000).unwrap_or_else(|e| panic!("{e}"));
    let before = db.dump();
    let mut broken = MIGRATIONS.to_vec();
    broken.push(Migration {
        id: MIGRATIONS.len() as u32 + 1,
        name: "broken",
        statements: &[
            "CREATE TABLE half_done (x INTEGER)",
            "INSERT INTO no_such_table VALUES (1)",
        ],
    });
    let error = migrate(&db, leak(broken), 2000).err();
    assert!(
        matches!(&error, Some(MigrateError::Failed { id, .. }) if *id == MIGRATIONS.len() as u32 + 1),
        "{error:?}"
    );
    // Not even the migrations before the broken one, which succeeded, remain.
    assert_eq!(db.dump(), before);
}

#[test]
fn an_edited_migration_stops_the_run() {
    let db = SqliteDb::new();
    migrate(&db, MIGRATIONS, 1000).unwrap_or_else(|e| panic!("{e}"));
    let before = db.dump();
    let mut edited = MIGRATIONS.to_vec();
    edited[0].statements = &["CREATE TABLE inbox (id INTEGER PRIMARY KEY) STRICT"];
    let error = migrate(&db, leak(edited), 2000).err();
    assert!(
        matches!(error, Some(MigrateError::Edited { id: 1, .. })),
        "{error:?}"
    );
    assert_eq!(db.dump(), before);
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let db = SqliteDb::new();
    migrate(&db, MIGRATIONS, 1000).unwrap_or_else(|e| panic!("{e}"));
    let error = migrate(&db, &MIGRATIONS[..1], 2000).err();
    assert_eq!(
        error,
        Some(MigrateError::Newer {
            found: MIGRATIONS.len() as u32,
            known: 1
        })
    );
}

#[test]
fn migration_5_backfills_the_storage_accounting() {
    let db = SqliteDb::new();
    let before_5 = &MIGRATIONS[..4];
    migrate(&db, before_5, 1000).unwrap_or_else(|e| panic!("{e}"));
    db.exec(
        "INSERT INTO inbox (id, handle, key_hash, state, claimed_at, created_at)
         VALUES (1, 'alice', ?, 'active', 5, 6)",
        &[Value::Text("ab".repeat(32))],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for size in [100, 2_000, 30_000] {
        db.exec(
            "INSERT INTO messages (direction, received_at, size) VALUES ('inbound', 7, ?)",
            &[Value::Integer(size)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    migrate(&db, MIGRATIONS, 2000).unwrap_or_else(|e| panic!("{e}"));
    let rows = db
        .exec("SELECT stored_bytes FROM inbox", &[])
        .map(|r| r.rows)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows, [[Value::Integer(32_100)]]);
}

/// Every statement a migration run executes, by its text.
struct Traced<'a> {
    db: &'a SqliteDb,
    statements: std::cell::RefCell<Vec<String>>,
}

impl Sql for Traced<'_> {
    fn exec(&self, query: &str, params: &[Value]) -> Result<schema::Rows, schema::SqlError> {
        self.statements.borrow_mut().push(query.to_owned());
        self.db.exec(query, params)
    }

    fn transaction(
        &self,
        body: &mut dyn FnMut() -> Result<(), schema::SqlError>,
    ) -> Result<(), schema::SqlError> {
        self.db.transaction(body)
    }
}

fn traced_migrate(db: &SqliteDb, migrations: &[Migration]) -> Vec<String> {
    let traced = Traced {
        db,
        statements: Default::default(),
    };
    migrate(&traced, migrations, 1000).unwrap_or_else(|e| panic!("{e}"));
    traced.statements.into_inner()
}

fn alters(statements: &[String]) -> usize {
    statements
        .iter()
        .filter(|s| s.trim_start().starts_with("ALTER TABLE"))
        .count()
}

#[test]
fn a_new_database_takes_the_baseline_and_dumps_as_one_migrated_step_by_step() {
    // A new database: the baseline, no ALTER TABLE at all, every migration
    // recorded.
    let fresh = SqliteDb::new();
    let statements = traced_migrate(&fresh, MIGRATIONS);
    assert_eq!(
        alters(&statements),
        0,
        "a new database replayed the migrations"
    );
    let all: Vec<i64> = MIGRATIONS.iter().map(|m| i64::from(m.id)).collect();
    let recorded: Vec<i64> = fresh
        .exec("SELECT id FROM schema_migrations ORDER BY id", &[])
        .expect("the ledger reads")
        .rows
        .iter()
        .map(|r| r[0].as_i64().expect("an id"))
        .collect();
    assert_eq!(recorded, all);

    // An older database brought up by the migrations themselves.
    let stepped = SqliteDb::new();
    traced_migrate(&stepped, &MIGRATIONS[..1]);
    let statements = traced_migrate(&stepped, MIGRATIONS);
    assert!(
        alters(&statements) > 0,
        "the upgrade did not run the migrations"
    );

    // The same schema, object for object (each one's SQL as SQLite keeps
    // it), and the same rows, the ledger's included.
    assert_eq!(fresh.dump(), stepped.dump());
}

#[test]
fn a_list_that_is_not_the_shipped_one_is_applied_step_by_step() {
    // An older build's shorter list, and one whose early migration differs:
    // the baseline is not theirs.
    let db = SqliteDb::new();
    assert!(alters(&traced_migrate(&db, &MIGRATIONS[..MIGRATIONS.len() - 1])) > 0);
    let mut edited: Vec<Migration> = MIGRATIONS.to_vec();
    edited[1].name = "an edited name";
    let db = SqliteDb::new();
    assert!(alters(&traced_migrate(&db, leak(edited))) > 0);
}
