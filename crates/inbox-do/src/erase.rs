//! Deleting mail and whole inboxes.
//!
//! [`delete_messages`] takes messages away with everything that refers to
//! them, in one transaction: their raw chunks and details, recipients,
//! references, attachment rows, search entries and findings, pending jobs
//! (webhook events not yet delivered, sends not yet handed over: cancelled),
//! the storage count, and their threads' counts (a thread left empty goes).
//! Deleting a message, a thread and the retention pass all use it.
//!
//! [`erase_inbox`] drops every table of the object and leaves in their place
//! one table, `tombstone`, with the handle and when it was deleted, in one
//! transaction: nothing of the inbox is left, and the object (which the
//! handle names, so every later signup, delivery and request for it reaches
//! it) refuses a claim, mail and every key for good. The tombstone lives in
//! the object rather than in KV because the object is the authority: a
//! stale or failed KV write cannot bring the handle back.

use protocol::Timestamp;
use protocol::limits::RETENTION_BATCH;
use schema::{Row, Sql, SqlError, Value};

/// The table a deleted inbox leaves.
const TOMBSTONE: &str = "tombstone";

/// Deletes the messages `condition` (over `messages`) selects with `params`,
/// and all that refers to them, in one transaction. Returns how many went.
pub(crate) fn delete_messages(
    sql: &dyn Sql,
    condition: &str,
    params: &[Value],
) -> Result<u64, SqlError> {
    let mut deleted = 0;
    sql.transaction(&mut || {
        let threads = sql.exec(
            &format!(
                "SELECT DISTINCT thread_id FROM messages
                 WHERE ({condition}) AND thread_id IS NOT NULL"
            ),
            params,
        )?;
        let threads: Vec<i64> = threads
            .rows
            .iter()
            .map(|row| row.int(0))
            .collect::<Result<_, _>>()?;
        sql.exec(
            &format!(
                "UPDATE inbox SET stored_bytes = max(stored_bytes -
                    (SELECT coalesce(sum(size), 0) FROM messages WHERE {condition}), 0)
                 WHERE id = 1"
            ),
            params,
        )?;
        // What refers to the messages goes first, by name, rather than by
        // `ON DELETE CASCADE`: the deletion must not depend on the database
        // enforcing foreign keys (a raw chunk left behind would still be
        // served).
        crate::search::forget(sql, condition, params)?;
        for table in [
            "message_parts",
            "message_refs",
            "message_recipients",
            "attachments",
            "jobs",
        ] {
            sql.exec(
                &format!(
                    "DELETE FROM {table} WHERE message_id IN
                        (SELECT id FROM messages WHERE {condition})"
                ),
                params,
            )?;
        }
        // (message_count is kept by a trigger.)
        let gone = sql.exec(
            &format!("DELETE FROM messages WHERE {condition} RETURNING id"),
            params,
        )?;
        deleted = gone.rows.len() as u64;
        for thread in &threads {
            crate::threads::refresh(sql, *thread as u64)?;
        }
        Ok(())
    })?;
    Ok(deleted)
}

/// Deletes message `id`; `false` when there is none.
pub(crate) fn delete_message(sql: &dyn Sql, id: u64) -> Result<bool, SqlError> {
    Ok(delete_messages(sql, "id = ?", &[Value::Integer(id as i64)])? > 0)
}

/// One retention pass: deletes the oldest messages received before
/// `retention_days` ago, [`RETENTION_BATCH`] at most. Returns how many
/// went, and whether older ones are left (the alarm comes back at once).
pub(crate) fn retention_pass(
    sql: &dyn Sql,
    retention_days: u32,
    now: Timestamp,
) -> Result<(u64, bool), SqlError> {
    let cutoff = Value::Integer(cutoff(retention_days, now));
    let deleted = delete_messages(
        sql,
        "id IN (SELECT id FROM messages WHERE received_at < ? ORDER BY id LIMIT ?)",
        &[cutoff.clone(), Value::Integer(i64::from(RETENTION_BATCH))],
    )?;
    let left = sql.exec(
        "SELECT 1 FROM messages WHERE received_at < ? LIMIT 1",
        &[cutoff],
    )?;
    Ok((deleted, left.single()?.is_some()))
}

/// When the oldest message falls out of `retention_days`, if there is one.
pub(crate) fn next_expiry(
    sql: &dyn Sql,
    retention_days: u32,
) -> Result<Option<Timestamp>, SqlError> {
    let rows = sql.exec("SELECT min(received_at) FROM messages", &[])?;
    Ok(match rows.single()? {
        Some(row) => row
            .opt_int(0)?
            .map(|at| Timestamp::from_millis(at + days_millis(retention_days) + 1)),
        None => None,
    })
}

fn days_millis(days: u32) -> i64 {
    i64::from(days) * 24 * 60 * 60 * 1000
}

fn cutoff(days: u32, now: Timestamp) -> i64 {
    now.millis() - days_millis(days)
}

/// Erases the inbox: every table is dropped and the tombstone written, in
/// one transaction (a failure anywhere leaves the inbox as it was).
pub(crate) fn erase_inbox(sql: &dyn Sql, handle: &str, now: Timestamp) -> Result<(), SqlError> {
    sql.transaction(&mut || {
        drop_every_table(sql)?;
        sql.exec(
            "CREATE TABLE tombstone (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                handle TEXT NOT NULL,
                deleted_at INTEGER NOT NULL
            ) STRICT",
            &[],
        )?;
        sql.exec(
            "INSERT INTO tombstone (id, handle, deleted_at) VALUES (1, ?, ?)",
            &[Value::from(handle), Value::Integer(now.millis())],
        )?;
        Ok(())
    })
}

/// Drops every table of the object (virtual ones with their shadow tables)
/// and forgets the AUTOINCREMENT counters, inside the caller's transaction.
pub(crate) fn drop_every_table(sql: &dyn Sql) -> Result<(), SqlError> {
    // Virtual tables first: dropping one drops its shadow tables.
    let virtuals = sql.exec(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'",
        &[],
    )?;
    for row in &virtuals.rows {
        drop_table(sql, row.text(0)?)?;
    }
    let tables = sql.exec(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
        &[],
    )?;
    for row in &tables.rows {
        drop_table(sql, row.text(0)?)?;
    }
    if has_table(sql, "sqlite_sequence")? {
        sql.exec("DELETE FROM sqlite_sequence", &[])?;
    }
    Ok(())
}

fn drop_table(sql: &dyn Sql, name: &str) -> Result<(), SqlError> {
    let name = name.replace('"', "\"\"");
    sql.exec(&format!("DROP TABLE IF EXISTS \"{name}\""), &[])?;
    Ok(())
}

/// Whether this object is a deleted inbox's tombstone.
pub(crate) fn is_tombstone(sql: &dyn Sql) -> Result<bool, SqlError> {
    has_table(sql, TOMBSTONE)
}

/// Whether the object has a table named `name`.
pub(crate) fn has_table(sql: &dyn Sql, name: &str) -> Result<bool, SqlError> {
    let rows = sql.exec(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        &[Value::from(name)],
    )?;
    Ok(!rows.rows.is_empty())
}
