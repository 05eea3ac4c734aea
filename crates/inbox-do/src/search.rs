//! Full-text search, and the codes and links found in each message.
//!
//! Every message has one row in the FTS5 table `message_search` (its rowid
//! the message id: subject, sender, recipients, body, attachment names) and
//! one in `message_findings` (its codes and links as JSON), both written in
//! the message's insert transaction and deleted with it. Mail stored before
//! migration 10 has neither (`search_indexed = 0`) until [`backfill`], run by
//! the alarm, reaches it: a bounded batch per alarm, oldest first.
//!
//! Queries come parsed ([`protocol::search::Query`]); the FTS5 expression it
//! builds is bound as a parameter, and every filter is a bound value, so no
//! user text reaches SQL or FTS5 syntax. Ranking is bm25 with the subject
//! weighing most, then the sender; a page is a position in that ranking
//! over the messages that existed when the first page was asked for, so mail
//! arriving between pages does not shift them.
//!
//! Tokenizer: unicode61 (case and diacritics folded: `Muller` finds
//! `Müller`). It keeps a run of CJK characters as one token, so CJK text is
//! indexed and searched a character at a time ([`index_text`]) and a CJK
//! word is a phrase of its characters: `請求書` is found inside an unspaced
//! sentence. Trigram was the other choice; it cannot find words of fewer
//! than three characters (most Chinese and Japanese words are two) and
//! makes every Latin query a substring search.

use crate::findings::{self, Findings};
use crate::quoted::html_to_text;
use crate::store;
use protocol::ApiError;
use protocol::api::{Code, Link, MessageDetail, MessageSummary, SearchHit, SearchResults};
use protocol::limits::{MAX_CODES, MAX_LINKS};
use protocol::search::{Filter, Query, index_text, readable};
use schema::{Row, Sql, SqlError, Value};

/// The most bytes of a message's body that go into the index: 128 KiB of
/// text (the raw message keeps everything; a word past it is not found).
pub(crate) const MAX_INDEXED_BODY: usize = 128 * 1024;

/// Messages one backfill batch indexes at most.
pub const SEARCH_BACKFILL_BATCH: u32 = 200;

/// Bytes of stored detail one backfill batch reads at most (a batch ends
/// after the message that passes it).
const BACKFILL_BYTES: usize = 16 * 1024 * 1024;

/// bm25 weights, per column: subject, sender, recipients, body, attachments.
const RANK: &str = "bm25(message_search, 10.0, 5.0, 2.0, 1.0, 2.0)";

/// What one message puts into the index.
pub(crate) struct Document<'a> {
    pub(crate) from: &'a str,
    pub(crate) from_name: Option<&'a str>,
    /// The address it was delivered to (inbound) or sent to (outbound).
    pub(crate) to: &'a str,
    pub(crate) subject: Option<&'a str>,
    pub(crate) detail: &'a MessageDetail,
}

/// Indexes message `id` and stores its findings (inside the caller's
/// transaction).
pub(crate) fn index(sql: &dyn Sql, id: u64, doc: &Document<'_>) -> Result<(), SqlError> {
    let detail = doc.detail;
    let sender = match doc.from_name {
        Some(name) => format!("{name} {}", doc.from),
        None => doc.from.to_owned(),
    };
    let mut recipients = vec![doc.to];
    recipients.extend(detail.to_addresses.iter().map(String::as_str));
    recipients.extend(detail.cc.iter().map(String::as_str));
    recipients.dedup();
    let body = body_text(detail);
    let names: Vec<&str> = detail
        .attachments
        .iter()
        .filter_map(|a| a.name.as_deref())
        .collect();
    let column = |text: &str| Value::from(index_text(text).as_ref());
    sql.exec(
        "INSERT INTO message_search (rowid, subject, sender, recipients, body, attachments)
         VALUES (?, ?, ?, ?, ?, ?)",
        &[
            Value::Integer(id as i64),
            column(doc.subject.unwrap_or("")),
            column(&sender),
            column(&recipients.join(" ")),
            column(&body),
            column(&names.join(" ")),
        ],
    )?;
    let found = findings::find(doc.subject, detail.text.as_deref(), detail.html.as_deref());
    let (codes, links) = to_api(found);
    sql.exec(
        "INSERT OR REPLACE INTO message_findings (message_id, codes, links) VALUES (?, ?, ?)",
        &[
            Value::Integer(id as i64),
            Value::Text(to_json(&codes)?),
            Value::Text(to_json(&links)?),
        ],
    )?;
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, SqlError> {
    serde_json::to_string(value).map_err(|e| SqlError::new(format!("findings: {e}")))
}

/// The text a message is searched by: its text, or its HTML as text, cut
/// at [`MAX_INDEXED_BODY`] on a character boundary.
fn body_text(detail: &MessageDetail) -> String {
    let mut body = match (&detail.text, &detail.html) {
        (Some(text), _) => text.clone(),
        (None, Some(html)) => html_to_text(html),
        (None, None) => String::new(),
    };
    if body.len() > MAX_INDEXED_BODY {
        let mut end = MAX_INDEXED_BODY;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    body
}

fn to_api(found: Findings) -> (Vec<Code>, Vec<Link>) {
    let codes = found
        .codes
        .into_iter()
        .take(MAX_CODES)
        .map(|c| Code {
            value: c.value,
            context: c.context,
        })
        .collect();
    let links = found
        .links
        .into_iter()
        .take(MAX_LINKS)
        .map(|l| Link {
            url: l.url,
            text: l.text,
        })
        .collect();
    (codes, links)
}

/// The codes and links of message `id`: as stored at ingest, or, for mail
/// the backfill has not reached yet, found now in its detail.
pub(crate) fn findings_of(
    sql: &dyn Sql,
    id: u64,
    subject: Option<&str>,
    detail: &MessageDetail,
) -> Result<(Vec<Code>, Vec<Link>), SqlError> {
    let rows = sql.exec(
        "SELECT codes, links FROM message_findings WHERE message_id = ?",
        &[Value::Integer(id as i64)],
    )?;
    if let Some(row) = rows.single()? {
        // A row that cannot be read (a future format) is found again.
        let codes = serde_json::from_str(row.text(0)?);
        let links = serde_json::from_str(row.text(1)?);
        if let (Ok(codes), Ok(links)) = (codes, links) {
            return Ok((codes, links));
        }
    }
    Ok(to_api(findings::find(
        subject,
        detail.text.as_deref(),
        detail.html.as_deref(),
    )))
}

/// Removes messages from the index, with their findings (inside the
/// caller's transaction): those `condition` selects from `messages`, with
/// `params`.
pub(crate) fn forget(sql: &dyn Sql, condition: &str, params: &[Value]) -> Result<(), SqlError> {
    sql.exec(
        &format!(
            "DELETE FROM message_search WHERE rowid IN (SELECT id FROM messages WHERE {condition})"
        ),
        params,
    )?;
    sql.exec(
        &format!(
            "DELETE FROM message_findings WHERE message_id IN (SELECT id FROM messages WHERE {condition})"
        ),
        params,
    )?;
    Ok(())
}

/// Whether mail stored before search existed is left to index.
pub(crate) fn backfill_pending(sql: &dyn Sql) -> Result<bool, SqlError> {
    let rows = sql.exec(
        "SELECT 1 FROM messages WHERE search_indexed = 0 LIMIT 1",
        &[],
    )?;
    Ok(rows.single()?.is_some())
}

/// Indexes one bounded batch of the mail stored before search existed,
/// oldest first, in one transaction: at most [`SEARCH_BACKFILL_BATCH`]
/// messages or about 16 MiB of their details. Returns how many.
pub(crate) fn backfill(sql: &dyn Sql) -> Result<usize, SqlError> {
    let mut done = 0;
    sql.transaction(&mut || {
        done = 0;
        let rows = sql.exec(
            "SELECT id FROM messages WHERE search_indexed = 0 ORDER BY id LIMIT ?",
            &[Value::Integer(i64::from(SEARCH_BACKFILL_BATCH))],
        )?;
        let mut read = 0;
        for row in &rows.rows {
            let id = row.int(0)? as u64;
            let summary = store::summary(sql, id)?;
            let (detail, bytes) = store::detail_sized(sql, id)?;
            read += bytes;
            // (None should be there; a stray row would refuse the insert.)
            sql.exec(
                "DELETE FROM message_search WHERE rowid = ?",
                &[Value::Integer(id as i64)],
            )?;
            if let Some(summary) = summary {
                // A detail that cannot be read is searched by its listing.
                let detail = detail.unwrap_or_default();
                index(sql, id, &document(&summary, &detail))?;
            }
            sql.exec(
                "UPDATE messages SET search_indexed = 1 WHERE id = ?",
                &[Value::Integer(id as i64)],
            )?;
            done += 1;
            if read >= BACKFILL_BYTES {
                break;
            }
        }
        Ok(())
    })?;
    Ok(done)
}

fn document<'a>(summary: &'a MessageSummary, detail: &'a MessageDetail) -> Document<'a> {
    Document {
        from: &summary.from,
        from_name: summary.from_name.as_deref(),
        to: &summary.to,
        subject: summary.subject.as_deref(),
        detail,
    }
}

/// A page of search results.
pub(crate) struct Page {
    pub(crate) limit: u32,
    pub(crate) cursor: Option<String>,
}

/// Where a page starts: how many results of the ranking come before it, and
/// the newest message the search covers (the first page's newest id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    offset: u64,
    max_id: u64,
}

impl Cursor {
    fn parse(text: &str) -> Result<Cursor, ApiError> {
        let bad = || {
            ApiError::invalid(
                "Invalid `cursor`: pass the `nextCursor` of the previous page as it is.",
            )
        };
        let (offset, max_id) = text.split_once('.').ok_or_else(bad)?;
        let number = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|n| *n <= store::MAX_SAFE_ID as u64 && !s.starts_with('+'))
        };
        Ok(Cursor {
            offset: number(offset).ok_or_else(bad)?,
            max_id: number(max_id).ok_or_else(bad)?,
        })
    }

    fn render(self) -> String {
        format!("{}.{}", self.offset, self.max_id)
    }
}

/// `GET /api/messages/search`.
pub(crate) fn search(sql: &dyn Sql, q: &str, page: &Page) -> Result<SearchResults, SearchError> {
    let query = Query::parse(q)
        .map_err(|e| SearchError::Refused(ApiError::invalid(format!("Invalid `q`: {e}"))))?;
    let cursor = match &page.cursor {
        Some(text) => Cursor::parse(text).map_err(SearchError::Refused)?,
        None => Cursor {
            offset: 0,
            max_id: store::last_id(sql)?.max(0) as u64,
        },
    };
    let limit = i64::from(page.limit);
    let mut params = Vec::new();
    let ranked = query.match_expression();
    let sql_text = match &ranked {
        Some(expression) => {
            params.push(Value::from(expression.as_str()));
            params.push(Value::Integer(cursor.max_id as i64));
            let filters = filter_sql(&query.filters, &mut params);
            params.push(Value::Integer(limit + 1));
            params.push(Value::Integer(cursor.offset as i64));
            format!(
                "SELECT {}, snippet(message_search, -1, '', '', '…', 16)
                 FROM message_search JOIN messages m ON m.id = message_search.rowid
                 WHERE message_search MATCH ? AND message_search.rowid <= ?{filters}
                 ORDER BY {RANK}, m.id DESC LIMIT ? OFFSET ?",
                columns()
            )
        }
        None => {
            // Only filters (and words that must not match): newest first,
            // paged by id.
            params.push(Value::Integer(cursor.max_id as i64));
            let mut excluded = String::new();
            if let Some(expression) = query.excluded_expression() {
                excluded = " AND m.id NOT IN
                    (SELECT rowid FROM message_search WHERE message_search MATCH ?)"
                    .to_owned();
                params.push(Value::from(expression.as_str()));
            }
            let filters = filter_sql(&query.filters, &mut params);
            params.push(Value::Integer(limit + 1));
            format!(
                "SELECT {}, m.preview FROM messages m
                 WHERE m.id <= ?{excluded}{filters}
                 ORDER BY m.id DESC LIMIT ?",
                columns()
            )
        }
    };
    let rows = sql.exec(&sql_text, &params)?;
    let mut messages = Vec::new();
    for row in rows.rows.iter().take(page.limit as usize) {
        let summary = store::summary_of(&row[..row.len() - 1])?;
        let snippet = row
            .opt_text(row.len() - 1)?
            .map(|s| readable(s.trim()))
            .filter(|s| !s.is_empty());
        messages.push(SearchHit { summary, snippet });
    }
    let more = rows.rows.len() > page.limit as usize;
    let next_cursor = match (more, &ranked, messages.last()) {
        (true, Some(_), _) => Some(
            Cursor {
                offset: cursor.offset + u64::from(page.limit),
                max_id: cursor.max_id,
            }
            .render(),
        ),
        (true, None, Some(last)) => Some(
            Cursor {
                offset: 0,
                max_id: last.summary.id.saturating_sub(1),
            }
            .render(),
        ),
        _ => None,
    };
    Ok(SearchResults {
        messages,
        next_cursor,
        complete: !backfill_pending(sql)?,
    })
}

/// Why a search gave no page.
#[derive(Debug)]
pub(crate) enum SearchError {
    /// The query or cursor is wrong: a 400.
    Refused(ApiError),
    /// The database failed.
    Storage(SqlError),
}

impl From<SqlError> for SearchError {
    fn from(error: SqlError) -> Self {
        SearchError::Storage(error)
    }
}

/// The first inbound message with an id above `after` that `query` (all
/// of them when `None`) matches.
pub(crate) fn first_arrival(
    sql: &dyn Sql,
    query: Option<&Query>,
    after: u64,
) -> Result<Option<u64>, SqlError> {
    let mut params = Vec::new();
    let sql_text = match query.and_then(Query::match_expression) {
        Some(expression) => {
            params.push(Value::from(expression.as_str()));
            params.push(Value::Integer(after as i64));
            let filters = filter_sql(query.map_or(&[][..], |q| &q.filters), &mut params);
            format!(
                "SELECT m.id FROM message_search JOIN messages m ON m.id = message_search.rowid
                 WHERE message_search MATCH ? AND message_search.rowid > ?
                   AND m.direction = 'inbound'{filters}
                 ORDER BY m.id LIMIT 1"
            )
        }
        None => {
            params.push(Value::Integer(after as i64));
            let mut excluded = String::new();
            if let Some(expression) = query.and_then(Query::excluded_expression) {
                excluded = " AND m.id NOT IN (SELECT rowid FROM message_search
                    WHERE message_search MATCH ? AND rowid > ?)"
                    .to_owned();
                params.push(Value::from(expression.as_str()));
                params.push(Value::Integer(after as i64));
            }
            let filters = filter_sql(query.map_or(&[][..], |q| &q.filters), &mut params);
            format!(
                "SELECT m.id FROM messages m WHERE m.id > ? AND m.direction = 'inbound'{excluded}{filters}
                 ORDER BY m.id LIMIT 1"
            )
        }
    };
    let rows = sql.exec(&sql_text, &params)?;
    Ok(match rows.single()? {
        Some(row) => Some(row.int(0)? as u64),
        None => None,
    })
}

/// The SQL of `filters` (each ` AND …` on `messages m`), their values
/// pushed onto `params`.
fn filter_sql(filters: &[Filter], params: &mut Vec<Value>) -> String {
    let mut out = String::new();
    for filter in filters {
        let (condition, value) = match *filter {
            Filter::HasAttachment => ("m.has_attachments = 1", None),
            Filter::Unread => ("m.read = 0", None),
            Filter::Read => ("m.read = 1", None),
            Filter::Inbox => ("m.direction = 'inbound'", None),
            Filter::Sent => ("m.direction = 'outbound'", None),
            Filter::Before(at) => ("m.received_at < ?", Some(at.millis())),
            Filter::After(at) => ("m.received_at >= ?", Some(at.millis())),
            Filter::Thread(id) => (
                "m.thread_id = ?",
                Some(i64::try_from(id).unwrap_or(i64::MAX)),
            ),
        };
        out.push_str(" AND ");
        out.push_str(condition);
        if let Some(value) = value {
            params.push(Value::Integer(value));
        }
    }
    out
}

/// The summary columns, of `messages m`.
fn columns() -> String {
    store::SUMMARY_COLUMNS
        .split(", ")
        .map(|c| format!("m.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
