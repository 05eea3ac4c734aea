//! The inbox's messages in SQL: one row each for listing, and the raw bytes
//! and the parsed detail in 1 MiB chunks (DO SQLite caps a row at 2 MB).
//!
//! The detail is stored as [`StoredDetail`] JSON, a storage type of its own:
//! the public [`MessageDetail`] may change with the API, while rows already
//! written keep reading (fields may be added; missing ones read as empty).
//! Every insert keeps the inbox row's `stored_bytes` in the same
//! transaction (and triggers keep its `message_count`), so that neither is
//! ever counted from the table.

use crate::attachments;
use crate::mail::ParsedMail;
use crate::quoted::{extracted_text, preview};
use crate::search;
use crate::threads::{self, ThreadFacts};
use protocol::Timestamp;
use protocol::api::{
    Direction, HeaderField, MessageDetail, MessageSummary, RecipientKind, RecipientOutcome,
    SendStatus,
};
use schema::{Row, Rows, Sql, SqlError, Value};
use serde::{Deserialize, Serialize};

/// The largest integer that survives the trip through JavaScript's f64.
pub(crate) const MAX_SAFE_ID: i64 = (1 << 53) - 1;

/// Bytes per stored chunk.
pub(crate) const CHUNK_BYTES: usize = 1024 * 1024;

pub(crate) const SUMMARY_COLUMNS: &str = "id, direction, from_addr, from_name, to_addr, subject, read, received_at, size, has_attachments, send_status, send_reason, thread_id, preview";

/// A new message, ready to store.
pub(crate) struct NewMessage<'a> {
    pub(crate) direction: Direction,
    pub(crate) to: &'a str,
    pub(crate) received_at: Timestamp,
    pub(crate) raw: &'a [u8],
    /// Inbound only: outbound messages are never deduplicated (and a copy
    /// sent to oneself must not collide with the outbound original).
    pub(crate) raw_sha256: Option<String>,
    /// Outbound only.
    pub(crate) send_status: Option<SendStatus>,
    pub(crate) parsed: ParsedMail,
    /// The thread it must join (a reply we send), if any.
    pub(crate) thread: Option<u64>,
}

/// The id of the stored message with these raw bytes, if any.
pub(crate) fn find_by_raw(sql: &dyn Sql, raw_sha256: &str) -> Result<Option<u64>, SqlError> {
    let rows = sql.exec(
        "SELECT id FROM messages WHERE raw_sha256 = ?",
        &[Value::from(raw_sha256)],
    )?;
    match rows.single()? {
        Some(row) => Ok(Some(row.int(0)? as u64)),
        None => Ok(None),
    }
}

/// Stores a message, its raw bytes and its detail, atomically: a failure
/// anywhere leaves nothing behind. `also` runs inside the same transaction
/// with the new row's id and arrival time (to queue the work the message
/// brings, such as its webhook event).
pub(crate) fn insert(
    sql: &dyn Sql,
    message: &NewMessage<'_>,
    also: &mut dyn FnMut(u64, Timestamp) -> Result<(), SqlError>,
) -> Result<u64, SqlError> {
    let detail = serde_json::to_vec(&StoredDetail::from(&message.parsed.detail))
        .map_err(|e| SqlError::new(format!("serializing the detail: {e}")))?;
    let parsed = &message.parsed;
    let mut facts = thread_facts(&parsed.from, parsed.subject.as_deref(), &parsed.detail);
    facts.thread = message.thread;
    let mut id = None;
    sql.transaction(&mut || {
        // Arrival times never go backwards, even if the clock does: the list's
        // `since` filter relies on it. (The row takes its own Message-ID and
        // preview here, which threading reads.)
        let rows = sql.exec(
            "INSERT INTO messages (direction, received_at, read, size, from_addr, from_name,
                                   to_addr, subject, has_attachments, raw_sha256, send_status,
                                   attachments_indexed, search_indexed, message_id_header,
                                   preview)
             VALUES (?, coalesce(max(?, (SELECT max(received_at) FROM messages)), ?),
                     ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)
             RETURNING id, received_at",
            &[
                Value::from(message.direction.as_str()),
                Value::Integer(message.received_at.millis()),
                Value::Integer(message.received_at.millis()),
                // One's own sent mail is not news: it never shows as unread.
                Value::Integer(i64::from(message.direction == Direction::Outbound)),
                Value::Integer(message.raw.len() as i64),
                Value::from(message.parsed.from.as_str()),
                optional_text(message.parsed.from_name.as_deref()),
                Value::from(message.to),
                optional_text(message.parsed.subject.as_deref()),
                Value::Integer(i64::from(message.parsed.has_attachments)),
                optional_text(message.raw_sha256.as_deref()),
                optional_text(message.send_status.map(SendStatus::as_str)),
                optional_text(facts.message_id.as_deref()),
                optional_text(facts.preview.as_deref()),
            ],
        )?;
        let (new_id, received_at) = match rows.single()? {
            Some(row) => (row.int(0)?, row.int(1)?),
            None => return Err(SqlError::new("INSERT returned no id")),
        };
        put_chunks(sql, new_id, "raw", message.raw)?;
        put_chunks(sql, new_id, "detail", &detail)?;
        // (The row says its attachments are indexed, and that it is
        // searchable: both are done here.)
        attachments::insert(sql, new_id as u64, &message.parsed.attachments)?;
        search::index(
            sql,
            new_id as u64,
            &search::Document {
                from: &parsed.from,
                from_name: parsed.from_name.as_deref(),
                to: message.to,
                subject: parsed.subject.as_deref(),
                detail: &parsed.detail,
            },
        )?;
        threads::thread_message(sql, new_id as u64, &facts, message.received_at)?;
        sql.exec(
            // (message_count is kept by a trigger.)
            "UPDATE inbox SET stored_bytes = stored_bytes + ? WHERE id = 1",
            &[Value::Integer(message.raw.len() as i64)],
        )?;
        also(new_id as u64, Timestamp::from_millis(received_at))?;
        id = Some(new_id as u64);
        Ok(())
    })?;
    id.ok_or_else(|| SqlError::new("the transaction did not run"))
}

fn put_chunks(sql: &dyn Sql, id: i64, kind: &str, bytes: &[u8]) -> Result<(), SqlError> {
    // An empty message still gets one (empty) chunk, so "no chunks" always
    // means "no such message".
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[]]
    } else {
        bytes.chunks(CHUNK_BYTES).collect()
    };
    for (seq, chunk) in chunks.into_iter().enumerate() {
        sql.exec(
            "INSERT INTO message_parts (message_id, kind, seq, data) VALUES (?, ?, ?, ?)",
            &[
                Value::Integer(id),
                Value::from(kind),
                Value::Integer(seq as i64),
                Value::Blob(chunk.to_vec()),
            ],
        )?;
    }
    Ok(())
}

/// The chunks of `kind` for message `id`, joined; `None` when there are none.
fn get_chunks(sql: &dyn Sql, id: u64, kind: &str) -> Result<Option<Vec<u8>>, SqlError> {
    let rows = sql.exec(
        "SELECT data FROM message_parts WHERE message_id = ? AND kind = ? ORDER BY seq",
        &[Value::Integer(id as i64), Value::from(kind)],
    )?;
    if rows.rows.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for row in &rows.rows {
        out.extend_from_slice(row.blob(0).map_err(|e| e.context("a message part"))?);
    }
    Ok(Some(out))
}

/// What threading needs from a message: its sender, subject and detail.
fn thread_facts(from: &str, subject: Option<&str>, detail: &MessageDetail) -> ThreadFacts {
    let mut facts = ThreadFacts::new(
        detail.message_id.as_deref(),
        detail.in_reply_to.as_deref(),
        &detail.references,
    );
    facts.subject = subject.map(str::to_owned);
    facts.participants = std::iter::once(from)
        .chain(detail.to_addresses.iter().map(String::as_str))
        .chain(detail.cc.iter().map(String::as_str))
        .map(str::to_owned)
        .collect();
    facts.preview =
        preview(extracted_text(detail.text.as_deref(), detail.html.as_deref()).as_deref());
    facts
}

/// What threading needs from a stored message (its detail read back, with
/// the `from` and `subject` of its row), and how many detail bytes were
/// read; `None` when its detail cannot be read.
pub(crate) fn thread_facts_of_stored(
    sql: &dyn Sql,
    id: u64,
    from: &str,
    subject: Option<&str>,
) -> Result<(Option<ThreadFacts>, usize), SqlError> {
    let Some(bytes) = get_chunks(sql, id, "detail")? else {
        return Ok((None, 0));
    };
    let facts = serde_json::from_slice::<StoredDetail>(&bytes)
        .ok()
        .map(|stored| thread_facts(from, subject, &MessageDetail::from(stored)));
    Ok((facts, bytes.len()))
}

/// A page of summaries, newest first: ids below `cursor`, received after
/// `since`, unread only if asked; one more than `limit` is read to tell
/// whether another page follows.
pub(crate) fn list(
    sql: &dyn Sql,
    limit: u32,
    cursor: Option<u64>,
    since: Option<Timestamp>,
    unread: bool,
) -> Result<(Vec<MessageSummary>, Option<u64>), SqlError> {
    let (query, params) = list_query(limit, cursor, since, unread);
    let rows = sql.exec(&query, &params)?;
    let mut messages = summaries(rows)?;
    let next = if messages.len() > limit as usize {
        messages.truncate(limit as usize);
        messages.last().map(|m| m.id)
    } else {
        None
    };
    Ok((messages, next))
}

/// The listing query and its parameters (public so a test can show its plan).
pub fn list_query(
    limit: u32,
    cursor: Option<u64>,
    since: Option<Timestamp>,
    unread: bool,
) -> (String, Vec<Value>) {
    // An upper id bound is always given, so the primary key bounds every
    // scan. Without a cursor it is the largest id DO SQLite can carry exactly.
    let mut query = format!("SELECT {SUMMARY_COLUMNS} FROM messages WHERE id <= ?");
    let mut params = vec![Value::Integer(
        cursor.map_or(MAX_SAFE_ID, |c| (c as i64).saturating_sub(1)),
    )];
    if let Some(since) = since {
        // `received_at` never decreases with `id` (see `insert`), so `since`
        // is also a lower bound on ids, found in O(log n) through the
        // received_at index: the scan never walks past older messages.
        query.push_str(
            " AND id > coalesce((SELECT id FROM messages WHERE received_at <= ?
                ORDER BY received_at DESC, id DESC LIMIT 1), 0) AND received_at > ?",
        );
        params.push(Value::Integer(since.millis()));
        params.push(Value::Integer(since.millis()));
    }
    if unread {
        query.push_str(" AND read = 0");
    }
    query.push_str(" ORDER BY id DESC LIMIT ?");
    params.push(Value::Integer(i64::from(limit) + 1));
    (query, params)
}

/// One message's summary.
pub(crate) fn summary(sql: &dyn Sql, id: u64) -> Result<Option<MessageSummary>, SqlError> {
    let rows = sql.exec(
        &format!("SELECT {SUMMARY_COLUMNS} FROM messages WHERE id = ?"),
        &[Value::Integer(id as i64)],
    )?;
    Ok(summaries(rows)?.into_iter().next())
}

/// One message's detail.
pub(crate) fn detail(sql: &dyn Sql, id: u64) -> Result<Option<MessageDetail>, SqlError> {
    match get_chunks(sql, id, "detail")? {
        Some(bytes) => serde_json::from_slice::<StoredDetail>(&bytes)
            .map(|stored| {
                let mut detail = MessageDetail::from(stored);
                // Computed on read, so that mail stored before it existed
                // has it, and better rules reach every message.
                detail.extracted_text =
                    extracted_text(detail.text.as_deref(), detail.html.as_deref());
                Some(detail)
            })
            .map_err(|e| SqlError::new(format!("stored detail of {id} is unreadable: {e}"))),
        None => Ok(None),
    }
}

/// As [`detail`], without `extractedText`, with the bytes read: `None`
/// when there is none or it cannot be read (for the search backfill,
/// which indexes such a message by its listing).
pub(crate) fn detail_sized(
    sql: &dyn Sql,
    id: u64,
) -> Result<(Option<MessageDetail>, usize), SqlError> {
    let Some(bytes) = get_chunks(sql, id, "detail")? else {
        return Ok((None, 0));
    };
    let detail = serde_json::from_slice::<StoredDetail>(&bytes)
        .ok()
        .map(MessageDetail::from);
    Ok((detail, bytes.len()))
}

/// How many raw chunks message `id` has; `None` when there is no such
/// message. A range search on the parts' primary key.
pub(crate) fn raw_chunks(sql: &dyn Sql, id: u64) -> Result<Option<u32>, SqlError> {
    let rows = sql.exec(
        "SELECT count(*) FROM message_parts WHERE message_id = ? AND kind = 'raw'",
        &[Value::Integer(id as i64)],
    )?;
    let count = match rows.single()? {
        Some(row) => row.int(0)?,
        None => 0,
    };
    Ok((count > 0).then(|| u32::try_from(count).unwrap_or(u32::MAX)))
}

/// Raw chunk `seq` of message `id`; `None` when there is none.
pub(crate) fn raw_chunk(sql: &dyn Sql, id: u64, seq: u32) -> Result<Option<Vec<u8>>, SqlError> {
    let rows = sql.exec(
        "SELECT data FROM message_parts WHERE message_id = ? AND kind = 'raw' AND seq = ?",
        &[Value::Integer(id as i64), Value::Integer(i64::from(seq))],
    )?;
    match rows.single()? {
        Some(row) => Ok(Some(row.blob(0)?.to_vec())),
        None => Ok(None),
    }
}

/// One message's raw bytes.
pub(crate) fn raw(sql: &dyn Sql, id: u64) -> Result<Option<Vec<u8>>, SqlError> {
    get_chunks(sql, id, "raw")
}

/// Sets the read flag and returns the updated summary; `None` when there is
/// no such message.
pub(crate) fn set_read(
    sql: &dyn Sql,
    id: u64,
    read: bool,
) -> Result<Option<MessageSummary>, SqlError> {
    let mut updated = None;
    sql.transaction(&mut || {
        // Only a change moves the thread's unread count, by one.
        let rows = sql.exec(
            &format!(
                "UPDATE messages SET read = ? WHERE id = ? AND read != ? RETURNING {SUMMARY_COLUMNS}"
            ),
            &[
                Value::Integer(i64::from(read)),
                Value::Integer(id as i64),
                Value::Integer(i64::from(read)),
            ],
        )?;
        updated = summaries(rows)?.into_iter().next();
        match updated.as_ref() {
            Some(changed) => {
                if let Some(thread) = changed.thread_id {
                    threads::count_read(sql, thread, read)?;
                }
            }
            // Unchanged (or no such message): as it is.
            None => updated = summary(sql, id)?,
        }
        Ok(())
    })?;
    Ok(updated)
}

/// The highest message id so far (0 when there is none): O(1) on the
/// primary key.
pub(crate) fn last_id(sql: &dyn Sql) -> Result<i64, SqlError> {
    let rows = sql.exec("SELECT max(id) FROM messages", &[])?;
    match rows.single()? {
        Some(row) => Ok(row.opt_int(0)?.unwrap_or(0)),
        None => Ok(0),
    }
}

fn optional_text(text: Option<&str>) -> Value {
    text.map_or(Value::Null, Value::from)
}

fn summaries(rows: Rows) -> Result<Vec<MessageSummary>, SqlError> {
    rows.rows.into_iter().map(|row| summary_of(&row)).collect()
}

pub(crate) fn summary_of(row: &[Value]) -> Result<MessageSummary, SqlError> {
    let read = || -> Result<MessageSummary, SqlError> {
        Ok(MessageSummary {
            id: row.int(0)? as u64,
            direction: match row.text(1)? {
                "outbound" => Direction::Outbound,
                _ => Direction::Inbound,
            },
            from: row.text(2)?.to_owned(),
            from_name: row.opt_text(3)?.map(str::to_owned),
            to: row.text(4)?.to_owned(),
            subject: row.opt_text(5)?.map(str::to_owned),
            read: row.int(6)? != 0,
            received_at: Timestamp::from_millis(row.int(7)?),
            size: row.int(8)? as u64,
            has_attachments: row.int(9)? != 0,
            status: row.opt_text(10)?.and_then(SendStatus::parse),
            status_reason: row.opt_text(11)?.map(str::to_owned),
            thread_id: row.opt_int(12)?.map(|t| t as u64),
            preview: row.opt_text(13)?.map(str::to_owned),
        })
    };
    read().map_err(|e| e.context("a message row"))
}

/// Records what became of an outbound message's send and returns its
/// summary; `None` when it is not (or no longer) `queued`, so that of two
/// attempts racing to settle one send, only the first settles it.
pub(crate) fn set_send_status(
    sql: &dyn Sql,
    id: u64,
    status: SendStatus,
    reason: Option<&str>,
) -> Result<Option<MessageSummary>, SqlError> {
    let rows = sql.exec(
        &format!(
            "UPDATE messages SET send_status = ?, send_reason = ?
             WHERE id = ? AND direction = 'outbound' AND send_status = 'queued'
             RETURNING {SUMMARY_COLUMNS}"
        ),
        &[
            Value::from(status.as_str()),
            optional_text(reason),
            Value::Integer(id as i64),
        ],
    )?;
    Ok(summaries(rows)?.into_iter().next())
}

/// One row of `message_recipients`: a recipient of an outbound message and
/// what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecipientRow {
    pub(crate) seq: u32,
    pub(crate) address: String,
    pub(crate) kind: RecipientKind,
    pub(crate) status: SendStatus,
    pub(crate) reason: Option<String>,
}

impl RecipientRow {
    pub(crate) fn outcome(&self) -> RecipientOutcome {
        RecipientOutcome {
            address: self.address.clone(),
            kind: self.kind,
            status: self.status,
            status_reason: self.reason.clone(),
        }
    }
}

/// Records the recipients of outbound message `id`, numbered from 0 in the
/// order given, all with `status` (and `reason`), at `at`.
pub(crate) fn insert_recipients(
    sql: &dyn Sql,
    id: u64,
    recipients: &[(&str, RecipientKind)],
    status: SendStatus,
    reason: Option<&str>,
    at: Timestamp,
) -> Result<(), SqlError> {
    for (seq, (address, kind)) in recipients.iter().enumerate() {
        sql.exec(
            "INSERT INTO message_recipients (message_id, seq, address, kind, status, reason, at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            &[
                Value::Integer(id as i64),
                Value::Integer(seq as i64),
                Value::from(*address),
                Value::from(kind.as_str()),
                Value::from(status.as_str()),
                optional_text(reason),
                Value::Integer(at.millis()),
            ],
        )?;
    }
    Ok(())
}

/// The recipients of message `id`, in order (none for an inbound message,
/// or for one sent before recipients were recorded). A range search on the
/// table's primary key.
pub(crate) fn recipients(sql: &dyn Sql, id: u64) -> Result<Vec<RecipientRow>, SqlError> {
    let rows = sql.exec(
        "SELECT seq, address, kind, status, reason FROM message_recipients
         WHERE message_id = ? ORDER BY seq",
        &[Value::Integer(id as i64)],
    )?;
    rows.rows
        .iter()
        .map(|row| {
            let read = || -> Result<RecipientRow, SqlError> {
                Ok(RecipientRow {
                    seq: u32::try_from(row.int(0)?)
                        .map_err(|_| SqlError::new("seq is out of range"))?,
                    address: row.text(1)?.to_owned(),
                    kind: RecipientKind::parse(row.text(2)?)
                        .ok_or_else(|| SqlError::new("the recipient kind is unknown"))?,
                    status: SendStatus::parse(row.text(3)?)
                        .ok_or_else(|| SqlError::new("the recipient status is unknown"))?,
                    reason: row.opt_text(4)?.map(str::to_owned),
                })
            };
            read().map_err(|e| e.context("a recipient row"))
        })
        .collect()
}

/// Records what became of recipient `seq` of message `id`; `false` when it
/// is not (or no longer) `queued`, so that of two attempts racing to settle
/// it, only the first does.
pub(crate) fn settle_recipient(
    sql: &dyn Sql,
    id: u64,
    seq: u32,
    status: SendStatus,
    reason: Option<&str>,
) -> Result<bool, SqlError> {
    let rows = sql.exec(
        "UPDATE message_recipients SET status = ?, reason = ?
         WHERE message_id = ? AND seq = ? AND status = 'queued' RETURNING seq",
        &[
            Value::from(status.as_str()),
            optional_text(reason),
            Value::Integer(id as i64),
            Value::Integer(i64::from(seq)),
        ],
    )?;
    Ok(!rows.rows.is_empty())
}

/// Fails every recipient of message `id` that is still queued, with `reason`.
pub(crate) fn fail_queued_recipients(sql: &dyn Sql, id: u64, reason: &str) -> Result<(), SqlError> {
    sql.exec(
        "UPDATE message_recipients SET status = 'failed', reason = ?
         WHERE message_id = ? AND status = 'queued'",
        &[Value::from(reason), Value::Integer(id as i64)],
    )?;
    Ok(())
}

/// How many recipients were recorded after `after`. A range search on the
/// `at` index.
pub(crate) fn recipients_since(sql: &dyn Sql, after: Timestamp) -> Result<u32, SqlError> {
    let rows = sql.exec(
        "SELECT count(*) FROM message_recipients WHERE at > ?",
        &[Value::Integer(after.millis())],
    )?;
    let count = match rows.single()? {
        Some(row) => row.int(0)?,
        None => 0,
    };
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// The `at` of the recipient recorded after `after` in position `offset`
/// (0 is the oldest), if there is one: when the window passes it, that many
/// and one more have left. A range search on the `at` index.
pub(crate) fn recipient_at(
    sql: &dyn Sql,
    after: Timestamp,
    offset: u32,
) -> Result<Option<Timestamp>, SqlError> {
    let rows = sql.exec(
        "SELECT at FROM message_recipients WHERE at > ? ORDER BY at LIMIT 1 OFFSET ?",
        &[
            Value::Integer(after.millis()),
            Value::Integer(i64::from(offset)),
        ],
    )?;
    match rows.single()? {
        Some(row) => Ok(Some(Timestamp::from_millis(row.int(0)?))),
        None => Ok(None),
    }
}

/// Outbound messages created after `after`, and the oldest of their times.
pub(crate) fn outbound_since(
    sql: &dyn Sql,
    after: Timestamp,
) -> Result<(u32, Option<Timestamp>), SqlError> {
    let rows = sql.exec(
        "SELECT count(*), min(received_at) FROM messages
         WHERE direction = 'outbound' AND received_at > ?",
        &[Value::Integer(after.millis())],
    )?;
    let Some(row) = rows.single()? else {
        return Ok((0, None));
    };
    let count = row.int(0)?;
    let oldest = row.opt_int(1)?.map(Timestamp::from_millis);
    Ok((u32::try_from(count).unwrap_or(u32::MAX), oldest))
}

/// A message's detail as its `detail` chunks keep it: today the same JSON as
/// the API's [`MessageDetail`], read tolerantly (unknown fields ignored,
/// missing ones empty), so that the API type can change without a data
/// migration. Convert at the edge, both ways.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct StoredDetail {
    to_addresses: Vec<String>,
    cc: Vec<String>,
    reply_to: Vec<String>,
    message_id: Option<String>,
    in_reply_to: Option<String>,
    references: Vec<String>,
    date: Option<Timestamp>,
    text: Option<String>,
    html: Option<String>,
    headers: Vec<StoredHeader>,
    attachments: Vec<StoredAttachment>,
    tag: Option<String>,
    envelope_from: Option<String>,
    warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct StoredHeader {
    name: String,
    value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct StoredAttachment {
    name: Option<String>,
    content_type: String,
    size: u64,
}

impl From<&MessageDetail> for StoredDetail {
    fn from(d: &MessageDetail) -> Self {
        StoredDetail {
            to_addresses: d.to_addresses.clone(),
            cc: d.cc.clone(),
            reply_to: d.reply_to.clone(),
            message_id: d.message_id.clone(),
            in_reply_to: d.in_reply_to.clone(),
            references: d.references.clone(),
            date: d.date,
            text: d.text.clone(),
            html: d.html.clone(),
            headers: d
                .headers
                .iter()
                .map(|h| StoredHeader {
                    name: h.name.clone(),
                    value: h.value.clone(),
                })
                .collect(),
            attachments: d
                .attachments
                .iter()
                .map(|a| StoredAttachment {
                    name: a.name.clone(),
                    content_type: a.content_type.clone(),
                    size: a.size,
                })
                .collect(),
            tag: d.tag.clone(),
            envelope_from: d.envelope_from.clone(),
            warnings: d.warnings.clone(),
        }
    }
}

impl From<StoredDetail> for MessageDetail {
    fn from(d: StoredDetail) -> Self {
        MessageDetail {
            to_addresses: d.to_addresses,
            cc: d.cc,
            reply_to: d.reply_to,
            message_id: d.message_id,
            in_reply_to: d.in_reply_to,
            references: d.references,
            date: d.date,
            text: d.text,
            html: d.html,
            extracted_text: None,
            // Found at ingest and kept apart (see `search::findings_of`).
            codes: Vec::new(),
            links: Vec::new(),
            headers: d
                .headers
                .into_iter()
                .map(|h| HeaderField {
                    name: h.name,
                    value: h.value,
                })
                .collect(),
            // Listed from the `attachments` rows, which know each one's id
            // and decoded size (see `crate::attachments`); the stored list is
            // kept for the builds before them.
            attachments: Vec::new(),
            tag: d.tag,
            envelope_from: d.envelope_from,
            warnings: d.warnings,
            // Not stored with the detail: read from `message_recipients`.
            recipients: Vec::new(),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// A detail exactly as today's build writes it (the API type's JSON).
    const TODAY: &str = r#"{"toAddresses":["alice@agents.test"],"cc":[],"replyTo":[],"messageId":"m1@example.com","inReplyTo":null,"references":[],"date":"2026-03-26T12:00:00Z","text":"Hello","html":null,"headers":[{"name":"Subject","value":"Hi"}],"attachments":[{"name":"a.txt","contentType":"text/plain","size":3}],"tag":null,"envelopeFrom":"bob@example.com","warnings":[]}"#;

    #[test]
    fn a_detail_in_todays_stored_format_still_reads() {
        let stored: StoredDetail = serde_json::from_str(TODAY).expect("today's format reads");
        assert_eq!(stored.attachments[0].content_type, "text/plain");
        let detail = MessageDetail::from(stored.clone());
        assert_eq!(detail.text.as_deref(), Some("Hello"));
        assert_eq!(detail.headers[0].name, "Subject");
        // The storage type writes what the API type reads, and back (but for
        // `extractedText`, computed on read and never stored, the
        // attachments, listed from their own rows, and the codes and links,
        // kept in `message_findings`).
        let mut api_json = serde_json::to_value(&detail).expect("serializes");
        let api = api_json.as_object_mut().expect("an object");
        for field in ["extractedText", "attachments", "codes", "links"] {
            api.remove(field).expect("a field of the API's detail");
        }
        let mut stored_json = serde_json::to_value(&stored).expect("serializes");
        stored_json
            .as_object_mut()
            .expect("an object")
            .remove("attachments");
        assert_eq!(api_json, stored_json);
        let without_attachments = StoredDetail {
            attachments: Vec::new(),
            ..stored
        };
        assert_eq!(StoredDetail::from(&detail), without_attachments);
    }

    #[test]
    fn a_detail_with_fields_added_or_missing_still_reads() {
        let later = TODAY.replacen('{', r#"{"threadId":"t1","#, 1);
        assert!(serde_json::from_str::<StoredDetail>(&later).is_ok());
        let older: StoredDetail = serde_json::from_str(r#"{"text":"x"}"#).expect("reads");
        assert_eq!(MessageDetail::from(older).text.as_deref(), Some("x"));
    }
}
