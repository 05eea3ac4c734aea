//! Applies pending migrations atomically and records them.

use crate::{MIGRATIONS, Migration, Rows, Sql, SqlError, Value, baseline};

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Ids applied by this run, in order (empty when the schema was current).
    pub applied: Vec<u32>,
    /// The schema version after the run.
    pub version: u32,
}

/// Why the schema could not be brought up to date. Whatever the reason, the
/// database is left exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrateError {
    /// A migration this database applied has since been edited.
    #[error("migration {id} was edited after it was applied (recorded {recorded}, now {current})")]
    Edited {
        /// The migration's id.
        id: u32,
        /// The checksum recorded when it was applied.
        recorded: String,
        /// Its checksum in this build.
        current: String,
    },
    /// The database is at a version this build does not know: it was migrated
    /// by a newer build. Serving it with older code could corrupt it.
    #[error("database is at migration {found}, newer than this build's {known}")]
    Newer {
        /// The highest applied id.
        found: u32,
        /// The highest id this build has.
        known: u32,
    },
    /// A statement failed.
    #[error("migration {id} failed: {error}")]
    Failed {
        /// The migration's id (0 for the bookkeeping table itself).
        id: u32,
        /// The engine's error.
        error: SqlError,
    },
}

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT";

/// Brings the database up to the last of `migrations`, atomically: either every
/// pending migration is applied and recorded, or nothing changes.
///
/// `migrations` is normally [`crate::MIGRATIONS`]; tests pass prefixes of it
/// (an older build) or lists with a failing step. `now_millis` is recorded as
/// each migration's `applied_at`.
pub fn migrate(
    sql: &dyn Sql,
    migrations: &[Migration],
    now_millis: i64,
) -> Result<MigrationReport, MigrateError> {
    let mut outcome: Option<Result<MigrationReport, MigrateError>> = None;
    let result = sql.transaction(&mut || {
        let run = apply_pending(sql, migrations, now_millis);
        let failed = run.is_err();
        outcome = Some(run);
        if failed {
            // Abort the transaction; the real error is kept in `outcome`.
            Err(SqlError::new("migration aborted"))
        } else {
            Ok(())
        }
    });
    match (outcome, result) {
        (Some(Ok(report)), Ok(())) => Ok(report),
        (Some(Err(error)), _) => Err(error),
        // The body succeeded but the commit failed, or the body never ran.
        (_, Err(error)) => Err(MigrateError::Failed { id: 0, error }),
        (None, Ok(())) => Err(MigrateError::Failed {
            id: 0,
            error: SqlError::new("transaction did not run its body"),
        }),
    }
}

fn apply_pending(
    sql: &dyn Sql,
    migrations: &[Migration],
    now_millis: i64,
) -> Result<MigrationReport, MigrateError> {
    let ledger_failed = |error| MigrateError::Failed { id: 0, error };
    sql.exec(CREATE_LEDGER, &[]).map_err(ledger_failed)?;
    let recorded: Rows = sql
        .exec(
            "SELECT id, checksum FROM schema_migrations ORDER BY id",
            &[],
        )
        .map_err(ledger_failed)?;

    let known = migrations.last().map_or(0, |m| m.id);
    let highest = recorded
        .rows
        .iter()
        .filter_map(|row| row.first().and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    if highest > i64::from(known) {
        return Err(MigrateError::Newer {
            found: u32::try_from(highest).unwrap_or(u32::MAX),
            known,
        });
    }
    let mut version = 0;
    for row in &recorded.rows {
        let (Some(id), Some(checksum)) = (
            row.first().and_then(Value::as_i64),
            row.get(1).and_then(Value::as_str),
        ) else {
            return Err(ledger_failed(SqlError::new(
                "schema_migrations holds a malformed row",
            )));
        };
        let id = u32::try_from(id)
            .map_err(|_| ledger_failed(SqlError::new("schema_migrations id out of range")))?;
        let Some(migration) = migrations.iter().find(|m| m.id == id) else {
            return Err(MigrateError::Newer { found: id, known });
        };
        let current = migration.checksum();
        if current != checksum {
            return Err(MigrateError::Edited {
                id,
                recorded: checksum.to_owned(),
                current,
            });
        }
        version = version.max(id);
    }

    let mut applied = Vec::new();
    let mut start = version;
    if recorded.rows.is_empty() && baseline_fits(migrations) && is_empty(sql)? {
        // A new database: the schema of the migrations the baseline holds,
        // each object created once, and those migrations recorded as
        // applied (see `crate::baseline`).
        for statement in baseline::STATEMENTS {
            sql.exec(statement, &[])
                .map_err(|error| MigrateError::Failed {
                    id: baseline::THROUGH,
                    error,
                })?;
        }
        for migration in migrations.iter().take_while(|m| m.id <= baseline::THROUGH) {
            record(sql, migration, now_millis)?;
            applied.push(migration.id);
        }
        start = baseline::THROUGH;
        version = baseline::THROUGH;
    }
    for migration in migrations.iter().filter(|m| m.id > start) {
        let failed = |error| MigrateError::Failed {
            id: migration.id,
            error,
        };
        for statement in migration.statements {
            sql.exec(statement, &[]).map_err(failed)?;
        }
        record(sql, migration, now_millis)?;
        applied.push(migration.id);
        version = migration.id;
    }
    Ok(MigrationReport { applied, version })
}

/// Records `migration` as applied.
fn record(sql: &dyn Sql, migration: &Migration, now_millis: i64) -> Result<(), MigrateError> {
    sql.exec(
        "INSERT INTO schema_migrations (id, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
        &[
            Value::Integer(i64::from(migration.id)),
            Value::from(migration.name),
            Value::Text(migration.checksum()),
            Value::Integer(now_millis),
        ],
    )
    .map_err(|error| MigrateError::Failed {
        id: migration.id,
        error,
    })?;
    Ok(())
}

/// Whether `migrations` begins with the shipped migrations 1 to
/// `baseline::THROUGH`, unchanged: only then is the baseline their schema (a
/// test's shorter or altered list is applied step by step).
fn baseline_fits(migrations: &[Migration]) -> bool {
    let through = baseline::THROUGH as usize;
    migrations.len() >= through
        && MIGRATIONS.len() >= through
        && migrations[..through]
            .iter()
            .zip(&MIGRATIONS[..through])
            .all(|(m, shipped)| {
                m.id == shipped.id && m.name == shipped.name && m.statements == shipped.statements
            })
}

/// Whether the database holds nothing of ours but the (empty) ledger
/// (SQLite's own objects and the platform's `_cf_` tables aside).
fn is_empty(sql: &dyn Sql) -> Result<bool, MigrateError> {
    let rows = sql
        .exec(
            "SELECT count(*) FROM sqlite_master
             WHERE name != 'schema_migrations' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
               AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
            &[],
        )
        .map_err(|error| MigrateError::Failed { id: 0, error })?;
    Ok(rows
        .rows
        .first()
        .and_then(|row| row.first())
        .and_then(Value::as_i64)
        == Some(0))
}
