//! In-memory SQLite that behaves like Durable Object SQLite where it matters.

use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};
use rusqlite::{Connection, params_from_iter};
use schema::{Rows, Sql, SqlError, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// DO SQLite's limit on one string or BLOB (and on a row), in bytes.
pub const MAX_VALUE_BYTES: usize = 2 * 1024 * 1024;
/// DO SQLite's limit on bound parameters per statement.
pub const MAX_PARAMS: usize = 100;
/// DO SQLite's limit on a statement's text, in bytes.
pub const MAX_STATEMENT_BYTES: usize = 100 * 1024;
/// Prepared statements kept for reuse (the inbox runs a few dozen texts).
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// An in-memory database behind the [`Sql`] port. Like DO SQLite it refuses
/// `BEGIN`/`SAVEPOINT`/`COMMIT`/`ROLLBACK` and `PRAGMA user_version` from
/// queries, refuses names starting `_cf_`, has foreign keys on, and enforces
/// the value, parameter and statement limits; transactions are only available
/// through [`Sql::transaction`], as `transactionSync` is on the platform.
/// A refused statement fails with a message starting [`REFUSED`].
///
/// `Sync`, so that requests to one object may share it: each statement runs
/// alone, and the caller (the object's input gate, see
/// [`crate::InProcessNamespace`]) keeps other callers out of a transaction.
#[derive(Debug)]
pub struct SqliteDb {
    conn: Mutex<Connection>,
    /// Set while [`Sql::transaction`] itself issues BEGIN/COMMIT/ROLLBACK.
    internal: Arc<AtomicBool>,
    /// Statements containing `.0` fail, `.1` more times, after `.2` matches
    /// have been let through (see [`SqliteDb::fail_statements`]).
    faults: Mutex<Vec<(String, u32, u32)>>,
}

impl SqliteDb {
    /// A new, empty database.
    pub fn new() -> Self {
        let conn = match Connection::open_in_memory() {
            Ok(conn) => conn,
            // Opening an in-memory database only fails when out of memory.
            Err(error) => panic!("opening in-memory SQLite failed: {error}"),
        };
        if let Err(error) = conn.execute_batch("PRAGMA foreign_keys = ON") {
            panic!("enabling foreign keys failed: {error}");
        }
        // As on Durable Objects: FTS5's shadow tables cannot be written
        // directly.
        if let Err(error) = conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true) {
            panic!("enabling defensive mode failed: {error}");
        }
        // As on Durable Objects, whose `sql.exec` keeps the statements it
        // prepared (up to 1 MiB of SQL text) for the next call with the same text.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        let internal = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&internal);
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            refuse_like_cloudflare(&ctx, flag.load(Ordering::SeqCst))
        }));
        SqliteDb {
            conn: Mutex::new(conn),
            internal,
            faults: Mutex::new(Vec::new()),
        }
    }

    /// Makes statements containing `fragment` fail: the first `skip` of them
    /// run, the next `times` fail (for proving that a failure half-way through
    /// a multi-statement write leaves nothing behind).
    pub fn fail_statements(&self, fragment: &str, skip: u32, times: u32) {
        lock(&self.faults).push((fragment.to_owned(), times, skip));
    }

    fn injected_fault(&self, query: &str) -> Option<SqlError> {
        let mut faults = lock(&self.faults);
        let rule = faults
            .iter_mut()
            .find(|(fragment, times, _)| *times > 0 && query.contains(fragment.as_str()))?;
        if rule.2 > 0 {
            rule.2 -= 1;
            return None;
        }
        rule.1 -= 1;
        Some(SqlError::new(format!("injected failure of: {}", rule.0)))
    }

    /// Puts an inbox's database back as a build before threads left it:
    /// migration 8 adds its columns empty and its tables empty, so an inbox
    /// upgraded from before threads is exactly this (its backfill has all
    /// to do).
    pub fn as_before_threads(&self) {
        for statement in [
            "UPDATE messages SET thread_id = NULL, preview = NULL, message_id_header = NULL",
            "DELETE FROM message_refs",
            "DELETE FROM threads",
        ] {
            self.exec(statement, &[]).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Puts every message back as mail stored before migration 9 left it:
    /// no attachment rows, none indexed.
    pub fn as_before_attachments(&self) {
        for statement in [
            "DELETE FROM attachments",
            "UPDATE messages SET attachments_indexed = 0",
        ] {
            self.exec(statement, &[]).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Puts every message back as mail stored before migration 10 left it:
    /// not in the search index, no findings, none indexed (its backfill has
    /// all to do). The index is then merged, so that its shadow tables hold
    /// no deletions either, as a new index's do.
    pub fn as_before_search(&self) {
        for statement in [
            "DELETE FROM message_search",
            "INSERT INTO message_search (message_search) VALUES ('optimize')",
            "DELETE FROM message_findings",
            "UPDATE messages SET search_indexed = 0",
        ] {
            self.exec(statement, &[]).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// The steps of `query`'s plan (`EXPLAIN QUERY PLAN`), as SQLite words
    /// them; panics if one is a full-table `SCAN`, so a test of an indexed
    /// query fails when it stops being one.
    pub fn plan_without_scan(&self, query: &str, params: &[Value]) -> Vec<String> {
        let plan = self
            .exec(&format!("EXPLAIN QUERY PLAN {query}"), params)
            .unwrap_or_else(|e| panic!("{e}"));
        let steps: Vec<String> = plan
            .rows
            .iter()
            .filter_map(|row| row.last().and_then(|v| v.as_str()).map(str::to_owned))
            .collect();
        assert!(
            steps.iter().all(|s| !s.starts_with("SCAN")),
            "a full scan for {query}: {steps:?}"
        );
        steps
    }

    /// Everything in the database as text: each schema object and every row of
    /// every table, in name order, so "left exactly as it was" can be asserted.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let objects = self
            .exec(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
                &[],
            )
            .unwrap_or_else(|e| panic!("dump: {e}"));
        for row in &objects.rows {
            out.push_str(&format!("{row:?}\n"));
            if row.first() == Some(&Value::from("table"))
                && let Some(name) = row.get(1).and_then(Value::as_str)
            {
                let rows = self
                    .exec(&format!("SELECT * FROM \"{name}\""), &[])
                    .unwrap_or_else(|e| panic!("dump: {e}"));
                out.push_str(&format!("  {:?}\n", rows.rows));
            }
        }
        out
    }

    fn control(&self, statement: &str) -> Result<(), SqlError> {
        let conn = lock(&self.conn);
        self.internal.store(true, Ordering::SeqCst);
        let result = conn.execute_batch(statement);
        self.internal.store(false, Ordering::SeqCst);
        result.map_err(|e| sql_error(&e))
    }
}

impl Default for SqliteDb {
    fn default() -> Self {
        Self::new()
    }
}

/// How the message of a statement refused as DO SQLite refuses it begins
/// (SQLite's own words for an authorizer's denial).
pub const REFUSED: &str = "not authorized";

fn sql_error(error: &rusqlite::Error) -> SqlError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::AuthorizationForStatementDenied) => SqlError::new(format!(
            "{REFUSED}: Durable Object SQLite refuses this statement"
        )),
        _ => SqlError::new(error.to_string()),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock has already failed.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn refuse_like_cloudflare(ctx: &AuthContext<'_>, internal: bool) -> Authorization {
    let reserved = |name: &str| name.to_ascii_lowercase().starts_with("_cf_");
    match ctx.action {
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } if !internal => {
            Authorization::Deny
        }
        AuthAction::Pragma { pragma_name, .. }
            if pragma_name.eq_ignore_ascii_case("user_version") =>
        {
            Authorization::Deny
        }
        // Virtual tables of these modules only; TEMP tables never.
        AuthAction::CreateVtable { module_name, .. }
            if !["fts5", "fts5vocab", "rtree"]
                .iter()
                .any(|m| module_name.eq_ignore_ascii_case(m)) =>
        {
            Authorization::Deny
        }
        AuthAction::CreateTempTable { .. } | AuthAction::CreateTempIndex { .. } => {
            Authorization::Deny
        }
        AuthAction::CreateTable { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
        | AuthAction::Read { table_name, .. }
        | AuthAction::AlterTable { table_name, .. }
            if reserved(table_name) =>
        {
            Authorization::Deny
        }
        AuthAction::CreateIndex { index_name, .. } if reserved(index_name) => Authorization::Deny,
        AuthAction::CreateTrigger { trigger_name, .. } if reserved(trigger_name) => {
            Authorization::Deny
        }
        AuthAction::CreateView { view_name } if reserved(view_name) => Authorization::Deny,
        _ => Authorization::Allow,
    }
}

impl Sql for SqliteDb {
    fn exec(&self, query: &str, params: &[Value]) -> Result<Rows, SqlError> {
        if let Some(error) = self.injected_fault(query) {
            return Err(error);
        }
        if query.len() > MAX_STATEMENT_BYTES {
            return Err(SqlError::new(format!(
                "statement too long: {} bytes (limit {MAX_STATEMENT_BYTES})",
                query.len()
            )));
        }
        if params.len() > MAX_PARAMS {
            return Err(SqlError::new(format!(
                "too many SQL variables: {} (limit {MAX_PARAMS})",
                params.len()
            )));
        }
        for value in params {
            let len = match value {
                Value::Text(s) => s.len(),
                Value::Blob(b) => b.len(),
                _ => 0,
            };
            if len > MAX_VALUE_BYTES {
                return Err(SqlError::new(format!(
                    "string or blob too big: {len} bytes (limit {MAX_VALUE_BYTES})"
                )));
            }
        }
        let error = |e: rusqlite::Error| sql_error(&e);
        let conn = lock(&self.conn);
        let mut statement = conn.prepare_cached(query).map_err(error)?;
        let columns: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut cursor = statement
            .query(params_from_iter(params.iter().map(to_sqlite)))
            .map_err(error)?;
        let mut rows = Vec::new();
        while let Some(row) = cursor.next().map_err(error)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(from_sqlite(row.get_ref(i).map_err(error)?));
            }
            rows.push(values);
        }
        Ok(Rows { columns, rows })
    }

    fn transaction(&self, body: &mut dyn FnMut() -> Result<(), SqlError>) -> Result<(), SqlError> {
        self.control("BEGIN IMMEDIATE")?;
        match body() {
            Ok(()) => self.control("COMMIT").inspect_err(|_| {
                let _ = self.control("ROLLBACK");
            }),
            Err(error) => {
                self.control("ROLLBACK")?;
                Err(error)
            }
        }
    }
}

fn to_sqlite(value: &Value) -> ToSqlOutput<'_> {
    ToSqlOutput::Owned(match value {
        Value::Null => SqliteValue::Null,
        Value::Integer(i) => SqliteValue::Integer(*i),
        Value::Real(f) => SqliteValue::Real(*f),
        Value::Text(s) => SqliteValue::Text(s.clone()),
        Value::Blob(b) => SqliteValue::Blob(b.clone()),
    })
}

fn from_sqlite(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        // DO SQLite hands back a whole-number REAL as an integer.
        ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
            Value::Integer(f as i64)
        }
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
