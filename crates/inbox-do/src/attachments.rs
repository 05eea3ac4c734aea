//! Attachments: their rows, written with their message; the rows of mail
//! stored before there were any, made when it is first read; the API's list;
//! downloads, decoded from the raw message's chunks as they are read; and
//! the files a forward or the HTTP relay needs, decoded whole.
//!
//! The bytes are never stored twice: a row keeps where the attachment's
//! encoded bytes are in the raw message (see [`crate::decode::Layer`]), and
//! a download reads only the chunks that range covers, decoding one chunk at
//! a time. So a 20 MB attachment costs a 1 MiB chunk and what it decodes to
//! in memory, and counts against the storage cap once, as part of its
//! message.

use crate::error::InboxError;
use crate::mail::{self, PartRecord, parse_mail};
use crate::send::OutFile;
use crate::service::RawMessage;
use crate::store;
use crate::threads;
use protocol::ApiError;
use protocol::api::{Attachment, Disposition};
use protocol::filename::{
    check_content_id, check_outbound_name, content_disposition, download_name, media_type,
};
use schema::{Row, Sql, SqlError, Value};

/// The `Content-Type` a download of `record` answers: the declared type
/// when it is a valid media type (with its charset, for text), else
/// `application/octet-stream`, so that a browser never guesses.
fn served_type(record: &PartRecord) -> String {
    match media_type(&record.content_type) {
        Some(valid) => match &record.charset {
            Some(charset) if valid.starts_with("text/") => format!("{valid}; charset={charset}"),
            _ => valid,
        },
        None => "application/octet-stream".to_owned(),
    }
}

const COLUMNS: &str = "part, name, content_type, charset, disposition, content_id, size, location";

fn read_row(row: &[Value]) -> Result<PartRecord, SqlError> {
    let disposition = row.text(4)?;
    let location = row.text(7)?;
    Ok(PartRecord {
        part: row.text(0)?.to_owned(),
        name: row.opt_text(1)?.map(str::to_owned),
        content_type: row.text(2)?.to_owned(),
        charset: row.opt_text(3)?.map(str::to_owned),
        disposition: Disposition::parse(disposition)
            .ok_or_else(|| SqlError::new("an attachment's disposition is unknown"))?,
        content_id: row.opt_text(5)?.map(str::to_owned),
        size: u64::try_from(row.int(6)?).unwrap_or(0),
        location: serde_json::from_str(location)
            .map_err(|e| SqlError::new(format!("an attachment's location does not read: {e}")))?,
    })
}

/// Writes the rows of message `message_id`, inside the caller's
/// transaction: the message's insert, which marks it indexed itself, or
/// [`ensure`]'s.
pub(crate) fn insert(
    sql: &dyn Sql,
    message_id: u64,
    records: &[PartRecord],
) -> Result<(), SqlError> {
    for (seq, record) in records.iter().enumerate() {
        let location = serde_json::to_string(&record.location)
            .map_err(|e| SqlError::new(format!("serializing a location: {e}")))?;
        sql.exec(
            "INSERT INTO attachments (message_id, seq, part, name, content_type, charset,
                                      disposition, content_id, size, location)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                Value::Integer(message_id as i64),
                Value::Integer(seq as i64),
                Value::from(record.part.as_str()),
                optional(record.name.as_deref()),
                Value::from(record.content_type.as_str()),
                optional(record.charset.as_deref()),
                Value::from(record.disposition.as_str()),
                optional(record.content_id.as_deref()),
                Value::Integer(i64::try_from(record.size).unwrap_or(i64::MAX)),
                Value::from(location.as_str()),
            ],
        )?;
    }
    Ok(())
}

fn optional(text: Option<&str>) -> Value {
    text.map_or(Value::Null, Value::from)
}

/// Makes sure message `message_id` has its attachment rows: mail stored
/// before them is parsed again (by the rules of today's ingest, so its ids
/// are the ones it would have been given) and its rows written. `false`
/// when there is no such message.
pub(crate) fn ensure(sql: &dyn Sql, message_id: u64) -> Result<bool, SqlError> {
    let rows = sql.exec(
        "SELECT attachments_indexed FROM messages WHERE id = ?",
        &[Value::Integer(message_id as i64)],
    )?;
    match rows.single()? {
        None => Ok(false),
        Some(row) if row.int(0)? != 0 => Ok(true),
        Some(_) => {
            let Some(raw) = store::raw(sql, message_id)? else {
                return Ok(false);
            };
            let records = parse_mail(&raw, "", None).attachments;
            sql.transaction(&mut || {
                // Two readers of the same old message may both get here;
                // the second finds the rows written.
                sql.exec(
                    "DELETE FROM attachments WHERE message_id = ?",
                    &[Value::Integer(message_id as i64)],
                )?;
                insert(sql, message_id, &records)?;
                // Today's rules may find attachments the old ones did not:
                // the message and its thread say so.
                let rows = sql.exec(
                    "UPDATE messages SET attachments_indexed = 1, has_attachments = ?
                     WHERE id = ? RETURNING thread_id",
                    &[
                        Value::Integer(i64::from(!records.is_empty())),
                        Value::Integer(message_id as i64),
                    ],
                )?;
                if let Some(thread) = rows
                    .single()?
                    .map(|row| row.opt_int(0))
                    .transpose()?
                    .flatten()
                {
                    threads::refresh(sql, thread as u64)?;
                }
                Ok(())
            })?;
            Ok(true)
        }
    }
}

/// Every attachment of message `message_id`, in MIME order (the message must
/// exist; see [`ensure`]).
pub(crate) fn all(sql: &dyn Sql, message_id: u64) -> Result<Vec<PartRecord>, SqlError> {
    let rows = sql.exec(
        &format!("SELECT {COLUMNS} FROM attachments WHERE message_id = ? ORDER BY seq"),
        &[Value::Integer(message_id as i64)],
    )?;
    rows.rows.iter().map(|row| read_row(row)).collect()
}

/// What `GET /api/messages/:id` lists.
pub(crate) fn list(sql: &dyn Sql, message_id: u64) -> Result<Vec<Attachment>, SqlError> {
    ensure(sql, message_id)?;
    Ok(all(sql, message_id)?
        .iter()
        .map(PartRecord::listed)
        .collect())
}

/// `GET /api/messages/:id/attachments/:attachmentId`: the decoded bytes, to
/// stream (see [`RawMessage::part`]).
pub(crate) fn download(
    sql: &dyn Sql,
    message_id: u64,
    part: &str,
) -> Result<RawMessage, InboxError> {
    if !ensure(sql, message_id)? {
        return Err(ApiError::not_found(format!(
            "There is no message {message_id} in this inbox."
        ))
        .into());
    }
    let rows = sql.exec(
        &format!("SELECT {COLUMNS} FROM attachments WHERE message_id = ? AND part = ?"),
        &[Value::Integer(message_id as i64), Value::from(part)],
    )?;
    let Some(stored) = rows.single()?.map(read_row).transpose()? else {
        return Err(
            ApiError::not_found(format!("Message {message_id} has no attachment {part}.")).into(),
        );
    };
    let headers = vec![
        ("content-type".to_owned(), served_type(&stored)),
        ("content-length".to_owned(), stored.size.to_string()),
        (
            "content-disposition".to_owned(),
            content_disposition(&download_name(stored.name.as_deref())),
        ),
        // Written by the sender: never sniffed, never run as a page of ours.
        ("x-content-type-options".to_owned(), "nosniff".to_owned()),
        (
            "content-security-policy".to_owned(),
            "default-src 'none'; sandbox".to_owned(),
        ),
        ("cache-control".to_owned(), "private, no-store".to_owned()),
    ];
    Ok(RawMessage::part(headers, message_id, stored.location))
}

/// The files of message `message_id` a forward re-attaches, decoded whole
/// from its raw message: every attachment but those inside a forwarded
/// message it carries (they travel inside it). Each keeps its name (made
/// safe to send), type, disposition and Content-ID.
pub(crate) fn files_of(sql: &dyn Sql, message_id: u64) -> Result<Vec<OutFile>, SqlError> {
    match store::raw(sql, message_id)? {
        Some(raw) => files_in(sql, message_id, &raw),
        None => Ok(Vec::new()),
    }
}

/// As [`files_of`], with the message's raw bytes at hand.
pub(crate) fn files_in(
    sql: &dyn Sql,
    message_id: u64,
    raw: &[u8],
) -> Result<Vec<OutFile>, SqlError> {
    let mut content_ids: Vec<String> = Vec::new();
    let mut files = Vec::new();
    for s in outermost(sql, message_id)? {
        // The sender's Content-ID goes out again only if ours would take
        // it, and once.
        let content_id = s
            .content_id
            .clone()
            .filter(|id| check_content_id(id).is_ok() && !content_ids.contains(id));
        if let Some(id) = &content_id {
            content_ids.push(id.clone());
        }
        files.push(OutFile {
            // A name we would send as it is (ours, for a sent message)
            // stays as it is; any other is cleaned as for a download.
            filename: match s.name.as_deref() {
                Some(name) if check_outbound_name(name).is_ok() => name.to_owned(),
                other => download_name(other),
            },
            content_type: media_type(&s.content_type)
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            content_id,
            inline: s.disposition == Disposition::Inline,
            content: mail::decoded(raw, &s.location),
        });
    }
    Ok(files)
}

/// The decoded size of the files [`files_of`] would give, from the rows
/// alone (nothing is decoded): to refuse a forward too large before it is
/// built.
pub(crate) fn files_size(sql: &dyn Sql, message_id: u64) -> Result<u64, SqlError> {
    Ok(outermost(sql, message_id)?.iter().map(|s| s.size).sum())
}

/// The attachments of message `message_id` that are not inside another
/// listed one. A part is inside another listed one only when that one is a
/// forwarded message (nothing else listed has listed parts): it travels
/// inside it.
fn outermost(sql: &dyn Sql, message_id: u64) -> Result<Vec<PartRecord>, SqlError> {
    ensure(sql, message_id)?;
    let stored = all(sql, message_id)?;
    let prefixes: Vec<String> = stored.iter().map(|s| format!("{}.", s.part)).collect();
    Ok(stored
        .into_iter()
        .filter(|s| {
            !prefixes
                .iter()
                .any(|prefix| s.part.starts_with(prefix.as_str()))
        })
        .collect())
}
