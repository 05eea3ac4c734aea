//! Conversations: which thread a message joins, the thread rows kept with
//! every change to their messages, the thread listing, and the bounded
//! backfill that threads mail stored before threads existed.
//!
//! The rules: a message joins the thread of a stored message (inbound or
//! outbound) whose Message-ID is its own or is named in its In-Reply-To or
//! References; of several such threads, the one with the latest activity.
//! Messages already stored that name this message's id (replies that came
//! before their original) are in threads of their own: those threads are
//! merged into the one this message joins, so that however the mail
//! arrives, it ends in one thread. Otherwise the message starts a thread.
//! Ids that are missing or malformed are skipped; threading never fails an
//! ingest.
//!
//! Every lookup is an index search: `messages_by_message_id` finds a thread
//! by Message-ID, `message_refs` finds the messages naming an id, and
//! `messages_by_thread` walks one thread's messages.

use crate::store;
use protocol::Timestamp;
use protocol::api::ThreadSummary;
use protocol::limits::MAX_PARTICIPANTS;
use schema::{Row, Rows, Sql, SqlError, Value};

/// The most ids of a message's References taken into account: its first
/// (the thread's root) and its latest. Longer chains add nothing a thread
/// needs and would make one ingest do unbounded lookups.
pub(crate) const MAX_REFS: usize = 50;

/// The longest Message-ID kept (RFC 5322 lines are at most 998 characters).
const MAX_ID_LEN: usize = 998;

/// Unthreaded messages one backfill batch threads at most.
pub const BACKFILL_BATCH: u32 = 500;

/// The most detail bytes one backfill batch reads (a batch of very large
/// messages stops early; the next batch goes on).
const BACKFILL_BYTES: usize = 32 * 1024 * 1024;

/// What threading needs to know about a message.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadFacts {
    /// Its own Message-ID, without angle brackets.
    pub(crate) message_id: Option<String>,
    /// The ids it names in In-Reply-To and References.
    pub(crate) refs: Vec<String>,
    /// Its subject, should it start a thread.
    pub(crate) subject: Option<String>,
    /// The addresses in its From, To and Cc.
    pub(crate) participants: Vec<String>,
    /// The start of its new text.
    pub(crate) preview: Option<String>,
    /// The thread it must join, when it still exists (a reply we send joins
    /// its original's, whatever ids the original had).
    pub(crate) thread: Option<u64>,
}

impl ThreadFacts {
    /// The facts from a message's Message-ID, In-Reply-To and References,
    /// normalized and bounded.
    pub(crate) fn new(
        message_id: Option<&str>,
        in_reply_to: Option<&str>,
        references: &[String],
    ) -> ThreadFacts {
        let mut refs: Vec<String> = Vec::new();
        let mut add = |id: &str| {
            if let Some(id) = normalize_id(id)
                && !refs.contains(&id)
            {
                refs.push(id);
            }
        };
        if let Some(id) = in_reply_to {
            add(id);
        }
        // The root, then the latest ones (which are nearer this message).
        if let Some(root) = references.first() {
            add(root);
        }
        let skip = references.len().saturating_sub(MAX_REFS - 2);
        for id in references.iter().skip(skip.max(1)).rev() {
            add(id);
        }
        refs.truncate(MAX_REFS);
        ThreadFacts {
            message_id: message_id.and_then(normalize_id),
            refs,
            ..ThreadFacts::default()
        }
    }
}

/// A Message-ID as stored: trimmed, without angle brackets; `None` when
/// empty, too long, or holding whitespace or brackets inside.
pub(crate) fn normalize_id(id: &str) -> Option<String> {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id).trim();
    let bad = |c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>';
    (!id.is_empty() && id.len() <= MAX_ID_LEN && !id.contains(bad)).then(|| id.to_owned())
}

/// Writes a stored message's own Message-ID and preview into its row (a
/// message stored before threads existed; a new one's insert writes them).
fn stamp(sql: &dyn Sql, id: u64, facts: &ThreadFacts) -> Result<(), SqlError> {
    sql.exec(
        "UPDATE messages SET message_id_header = ?, preview = ? WHERE id = ?",
        &[
            text_or_null(facts.message_id.as_deref()),
            text_or_null(facts.preview.as_deref()),
            Value::Integer(id as i64),
        ],
    )?;
    Ok(())
}

/// Puts message `id` (just stored, with no thread yet, its row holding the
/// Message-ID and preview of `facts`) in its thread, and returns the
/// thread's id. Runs inside the caller's transaction.
///
/// The common cases are few statements: a message that starts a thread
/// inserts the thread whole, counted from its row; one that joins a thread
/// updates its participants and counts in one statement.
pub(crate) fn thread_message(
    sql: &dyn Sql,
    id: u64,
    facts: &ThreadFacts,
    now: Timestamp,
) -> Result<u64, SqlError> {
    let message = Value::Integer(id as i64);
    for reference in &facts.refs {
        sql.exec(
            "INSERT OR IGNORE INTO message_refs (ref, message_id) VALUES (?, ?)",
            &[Value::from(reference.as_str()), message.clone()],
        )?;
    }
    // Threads of the messages this one names (or that share its id).
    let mut named = Vec::new();
    for reference in facts.refs.iter().chain(facts.message_id.iter()) {
        let rows = sql.exec(
            "SELECT thread_id FROM messages
             WHERE message_id_header = ? AND thread_id IS NOT NULL AND id != ?
             ORDER BY id DESC LIMIT 1",
            &[Value::from(reference.as_str()), message.clone()],
        )?;
        if let Some(row) = rows.single()? {
            push_new(&mut named, row.int(0)? as u64);
        }
    }
    // Threads of the messages that name this one: replies stored first.
    let mut naming = Vec::new();
    if let Some(own) = &facts.message_id {
        let rows = sql.exec(
            "SELECT DISTINCT m.thread_id FROM message_refs r JOIN messages m ON m.id = r.message_id
             WHERE r.ref = ? AND m.thread_id IS NOT NULL AND m.id != ?",
            &[Value::from(own.as_str()), message.clone()],
        )?;
        for row in &rows.rows {
            push_new(&mut naming, row.int(0)? as u64);
        }
    }
    let hinted = match facts.thread {
        Some(thread) => sql
            .exec(
                "SELECT id FROM threads WHERE id = ?",
                &[Value::Integer(thread as i64)],
            )?
            .single()?
            .map(|row| row.int(0))
            .transpose()?
            .map(|t| t as u64),
        None => None,
    };
    let target = match hinted.or(latest(sql, &named)?) {
        Some(thread) => thread,
        None => match latest(sql, &naming)? {
            // An original arriving after its replies: the conversation
            // takes its subject, not the first reply's "Re: …".
            Some(thread) => {
                if let Some(subject) = &facts.subject {
                    sql.exec(
                        "UPDATE threads SET subject = ? WHERE id = ?",
                        &[Value::from(subject.as_str()), Value::Integer(thread as i64)],
                    )?;
                }
                thread
            }
            None => return start(sql, id, facts, now),
        },
    };
    set_thread(sql, id, target)?;
    let mut participants = participants_of(sql, target)?;
    let mut merged = false;
    for other in naming.into_iter().filter(|&t| t != target) {
        // Bounded: once the list is full, no other thread's is read.
        if participants.len() < MAX_PARTICIPANTS {
            for address in participants_of(sql, other)? {
                push_participant(&mut participants, address);
            }
        }
        sql.exec(
            "UPDATE messages SET thread_id = ? WHERE thread_id = ?",
            &[Value::Integer(target as i64), Value::Integer(other as i64)],
        )?;
        sql.exec(
            "DELETE FROM threads WHERE id = ?",
            &[Value::Integer(other as i64)],
        )?;
        merged = true;
    }
    let participants = with_participants(participants, facts)?;
    if merged {
        // Rare (an original after its replies): recount from the messages.
        sql.exec(
            "UPDATE threads SET participants = ? WHERE id = ?",
            &[
                Value::from(participants.as_str()),
                Value::Integer(target as i64),
            ],
        )?;
        refresh(sql, target)?;
    } else {
        // The common case costs the same in a thread of any size.
        count_in(sql, target, id, &participants)?;
    }
    Ok(target)
}

/// `list` with the addresses of `facts` added (lower-cased, once each,
/// bounded), as the JSON a thread row keeps.
fn with_participants(mut list: Vec<String>, facts: &ThreadFacts) -> Result<String, SqlError> {
    for address in &facts.participants {
        push_participant(&mut list, address.to_lowercase());
    }
    serde_json::to_string(&list)
        .map_err(|e| SqlError::new(format!("serializing participants: {e}")))
}

fn set_thread(sql: &dyn Sql, message: u64, thread: u64) -> Result<(), SqlError> {
    sql.exec(
        "UPDATE messages SET thread_id = ? WHERE id = ?",
        &[
            Value::Integer(thread as i64),
            Value::Integer(message as i64),
        ],
    )?;
    Ok(())
}

/// A new thread holding message `message` alone: its row written whole from
/// the message's (its counts, latest message, preview and attachments
/// flag, as [`count_in`] would count them into an empty thread).
fn start(
    sql: &dyn Sql,
    message: u64,
    facts: &ThreadFacts,
    now: Timestamp,
) -> Result<u64, SqlError> {
    let participants = with_participants(Vec::new(), facts)?;
    let rows = sql.exec(
        "INSERT INTO threads (subject, participants, message_count, unread_count,
                              last_message_id, last_message_at, preview, has_attachments,
                              created_at)
         SELECT ?, ?, 1, read = 0, id, received_at, preview, has_attachments, ?
         FROM messages WHERE id = ?
         RETURNING id",
        &[
            text_or_null(facts.subject.as_deref()),
            Value::from(participants.as_str()),
            Value::Integer(now.millis()),
            Value::Integer(message as i64),
        ],
    )?;
    let thread = match rows.single()? {
        Some(row) => row.int(0)? as u64,
        None => return Err(SqlError::new("no message to start a thread with")),
    };
    set_thread(sql, message, thread)?;
    Ok(thread)
}

/// Adds `address` to a thread's participants, unless it is there or the
/// list is full.
fn push_participant(list: &mut Vec<String>, address: String) {
    if list.len() < MAX_PARTICIPANTS && !list.contains(&address) {
        list.push(address);
    }
}

/// Counts message `message`, just put in thread `thread`, into the thread's
/// row (its counts, latest message, preview and attachments flag), from the
/// row's old values: no walk of the thread; and sets its participants.
fn count_in(sql: &dyn Sql, thread: u64, message: u64, participants: &str) -> Result<(), SqlError> {
    sql.exec(
        "UPDATE threads SET
            participants = ?3,
            message_count = message_count + 1,
            unread_count = unread_count + (SELECT read = 0 FROM messages WHERE id = ?2),
            has_attachments = max(has_attachments,
                (SELECT has_attachments FROM messages WHERE id = ?2)),
            last_message_at = max(last_message_at,
                (SELECT received_at FROM messages WHERE id = ?2)),
            preview = CASE WHEN ?2 > last_message_id
                THEN (SELECT preview FROM messages WHERE id = ?2) ELSE preview END,
            last_message_id = max(last_message_id, ?2)
         WHERE id = ?1",
        &[
            Value::Integer(thread as i64),
            Value::Integer(message as i64),
            Value::from(participants),
        ],
    )?;
    Ok(())
}

/// A message of thread `thread` was marked `read` (it was not before).
pub(crate) fn count_read(sql: &dyn Sql, thread: u64, read: bool) -> Result<(), SqlError> {
    sql.exec(
        "UPDATE threads SET unread_count = max(unread_count + ?, 0) WHERE id = ?",
        &[
            Value::Integer(if read { -1 } else { 1 }),
            Value::Integer(thread as i64),
        ],
    )?;
    Ok(())
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Of `threads`, the one with the latest activity.
fn latest(sql: &dyn Sql, threads: &[u64]) -> Result<Option<u64>, SqlError> {
    let mut best: Option<(i64, u64)> = None;
    for &thread in threads {
        let rows = sql.exec(
            "SELECT last_message_id FROM threads WHERE id = ?",
            &[Value::Integer(thread as i64)],
        )?;
        if let Some(row) = rows.single()? {
            let last = row.int(0)?;
            if best.is_none_or(|(b, _)| last > b) {
                best = Some((last, thread));
            }
        }
    }
    Ok(best.map(|(_, thread)| thread))
}

fn participants_of(sql: &dyn Sql, thread: u64) -> Result<Vec<String>, SqlError> {
    let rows = sql.exec(
        "SELECT participants FROM threads WHERE id = ?",
        &[Value::Integer(thread as i64)],
    )?;
    let Some(row) = rows.single()? else {
        return Ok(Vec::new());
    };
    // A list this code wrote; should it ever not read, it is rebuilt from
    // what comes next rather than failing the message.
    Ok(serde_json::from_str(row.text(0)?).unwrap_or_default())
}

/// Recomputes thread `id`'s counts and latest message from its messages (a
/// walk of `messages_by_thread`: after a merge only), and deletes it when it
/// has none left.
pub(crate) fn refresh(sql: &dyn Sql, id: u64) -> Result<(), SqlError> {
    let thread = Value::Integer(id as i64);
    let rows = sql.exec(
        "SELECT count(*), coalesce(sum(read = 0), 0), max(id), max(received_at),
                coalesce(max(has_attachments), 0)
         FROM messages WHERE thread_id = ?",
        std::slice::from_ref(&thread),
    )?;
    let Some(row) = rows.single()? else {
        return Ok(());
    };
    let count = row.int(0)?;
    if count == 0 {
        sql.exec("DELETE FROM threads WHERE id = ?", &[thread])?;
        return Ok(());
    }
    let last_id = row.int(2)?;
    sql.exec(
        "UPDATE threads SET message_count = ?, unread_count = ?, last_message_id = ?,
                last_message_at = ?, has_attachments = ?,
                preview = (SELECT preview FROM messages WHERE id = ?)
         WHERE id = ?",
        &[
            Value::Integer(count),
            Value::Integer(row.int(1)?),
            Value::Integer(last_id),
            Value::Integer(row.int(3)?),
            Value::Integer(row.int(4)?),
            Value::Integer(last_id),
            thread,
        ],
    )?;
    Ok(())
}

const THREAD_COLUMNS: &str = "id, subject, participants, message_count, unread_count, last_message_at, last_message_id, preview, has_attachments";

/// A page of threads, latest activity first: those whose latest message id
/// is below `cursor`, with unread messages only if asked. One more than
/// `limit` is read to tell whether another page follows.
pub(crate) fn list(
    sql: &dyn Sql,
    limit: u32,
    cursor: Option<u64>,
    unread: bool,
) -> Result<(Vec<ThreadSummary>, Option<u64>), SqlError> {
    let (query, params) = list_query(limit, cursor, unread);
    let mut threads = summaries(sql.exec(&query, &params)?)?;
    let next = if threads.len() > limit as usize {
        threads.truncate(limit as usize);
        threads.last().map(|t| t.last_message_id)
    } else {
        None
    };
    Ok((threads, next))
}

/// The thread listing query and its parameters (public so a test can show
/// its plan): a range search on `threads_by_last` (or `threads_unread`).
pub fn list_query(limit: u32, cursor: Option<u64>, unread: bool) -> (String, Vec<Value>) {
    let mut query = format!("SELECT {THREAD_COLUMNS} FROM threads WHERE last_message_id <= ?");
    let params = vec![
        Value::Integer(cursor.map_or(store::MAX_SAFE_ID, |c| (c as i64).saturating_sub(1))),
        Value::Integer(i64::from(limit) + 1),
    ];
    if unread {
        query.push_str(" AND unread_count > 0");
    }
    query.push_str(" ORDER BY last_message_id DESC LIMIT ?");
    (query, params)
}

/// One thread's summary.
pub(crate) fn summary(sql: &dyn Sql, id: u64) -> Result<Option<ThreadSummary>, SqlError> {
    let rows = sql.exec(
        &format!("SELECT {THREAD_COLUMNS} FROM threads WHERE id = ?"),
        &[Value::Integer(id as i64)],
    )?;
    Ok(summaries(rows)?.into_iter().next())
}

/// The ids of thread `id`'s latest `limit` messages, oldest first.
pub(crate) fn message_ids(sql: &dyn Sql, id: u64, limit: u32) -> Result<Vec<u64>, SqlError> {
    let rows = sql.exec(
        "SELECT id FROM messages WHERE thread_id = ? ORDER BY id DESC LIMIT ?",
        &[Value::Integer(id as i64), Value::Integer(i64::from(limit))],
    )?;
    let mut ids = rows
        .rows
        .iter()
        .map(|row| row.int(0).map(|id| id as u64))
        .collect::<Result<Vec<_>, _>>()?;
    ids.reverse();
    Ok(ids)
}

/// Deletes thread `id` and every message of it (their parts, references,
/// recipients and pending jobs, each deleted by name), atomically. `false` when
/// there is no such thread.
pub(crate) fn delete(sql: &dyn Sql, id: u64) -> Result<bool, SqlError> {
    let thread = Value::Integer(id as i64);
    let rows = sql.exec(
        "SELECT 1 FROM threads WHERE id = ?",
        std::slice::from_ref(&thread),
    )?;
    if rows.single()?.is_none() {
        return Ok(false);
    }
    // The thread goes with its last message (see `refresh`); one left
    // with none would go here.
    crate::erase::delete_messages(sql, "thread_id = ?", std::slice::from_ref(&thread))?;
    sql.exec("DELETE FROM threads WHERE id = ?", &[thread])?;
    Ok(true)
}

fn summaries(rows: Rows) -> Result<Vec<ThreadSummary>, SqlError> {
    rows.rows
        .iter()
        .map(|row| summary_of(row).map_err(|e| e.context("a thread row")))
        .collect()
}

fn summary_of(row: &[Value]) -> Result<ThreadSummary, SqlError> {
    Ok(ThreadSummary {
        id: row.int(0)? as u64,
        subject: row.opt_text(1)?.map(str::to_owned),
        participants: serde_json::from_str(row.text(2)?).unwrap_or_default(),
        message_count: row.int(3)? as u64,
        unread_count: row.int(4)? as u64,
        last_message_at: Timestamp::from_millis(row.int(5)?),
        last_message_id: row.int(6)? as u64,
        preview: row.opt_text(7)?.map(str::to_owned),
        has_attachments: row.int(8)? != 0,
    })
}

/// Whether some message still has no thread (mail stored before threads
/// existed): an index search.
pub(crate) fn backfill_pending(sql: &dyn Sql) -> Result<bool, SqlError> {
    let rows = sql.exec(
        "SELECT 1 FROM messages WHERE thread_id IS NULL LIMIT 1",
        &[],
    )?;
    Ok(rows.single()?.is_some())
}

/// Threads the oldest unthreaded messages, at most [`BACKFILL_BATCH`] of
/// them and about [`BACKFILL_BYTES`] of their details, in one transaction;
/// returns how many it threaded. Oldest first, by the same rules as a new
/// message, so replies stored before their original are merged the same
/// way.
pub(crate) fn backfill(sql: &dyn Sql, now: Timestamp) -> Result<u32, SqlError> {
    let mut done = 0;
    sql.transaction(&mut || {
        done = 0;
        let rows = sql.exec(
            "SELECT id, subject, from_addr, to_addr FROM messages
             WHERE thread_id IS NULL ORDER BY id LIMIT ?",
            &[Value::Integer(i64::from(BACKFILL_BATCH))],
        )?;
        let mut bytes = 0usize;
        for row in &rows.rows {
            let id = row.int(0)? as u64;
            let (subject, from) = (row.opt_text(1)?, row.text(2)?);
            let (facts, read) = store::thread_facts_of_stored(sql, id, from, subject)?;
            // A detail that cannot be read threads the message on its own,
            // by what its row says, rather than stopping the backfill.
            let facts = match facts {
                Some(facts) => facts,
                None => ThreadFacts {
                    subject: subject.map(str::to_owned),
                    participants: vec![from.to_owned(), row.text(3)?.to_owned()],
                    ..ThreadFacts::default()
                },
            };
            stamp(sql, id, &facts)?;
            thread_message(sql, id, &facts, now)?;
            done += 1;
            bytes += read;
            if bytes >= BACKFILL_BYTES {
                break;
            }
        }
        Ok(())
    })?;
    Ok(done)
}

fn text_or_null(text: Option<&str>) -> Value {
    text.map_or(Value::Null, Value::from)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn ids_are_normalized_and_malformed_ones_skipped() {
        assert_eq!(normalize_id(" <a@b> ").as_deref(), Some("a@b"));
        assert_eq!(normalize_id("a@b").as_deref(), Some("a@b"));
        assert_eq!(normalize_id("<>"), None);
        assert_eq!(normalize_id("a b@c"), None);
        assert_eq!(normalize_id("<a<b@c>"), None);
        assert_eq!(normalize_id(&"x".repeat(MAX_ID_LEN + 1)), None);
    }

    #[test]
    fn references_keep_the_root_and_the_latest() {
        let references: Vec<String> = (0..200).map(|i| format!("r{i}@x")).collect();
        let facts = ThreadFacts::new(Some("<me@x>"), Some("<parent@x>"), &references);
        assert_eq!(facts.message_id.as_deref(), Some("me@x"));
        assert_eq!(facts.refs.len(), MAX_REFS);
        assert_eq!(facts.refs[0], "parent@x");
        assert_eq!(facts.refs[1], "r0@x");
        assert_eq!(facts.refs[2], "r199@x");
        // An In-Reply-To also in References is named once.
        let facts = ThreadFacts::new(None, Some("<r199@x>"), &references);
        assert_eq!(facts.refs.iter().filter(|r| *r == "r199@x").count(), 1);
        assert!(!facts.refs.contains(&"r100@x".to_owned()));
    }
}
