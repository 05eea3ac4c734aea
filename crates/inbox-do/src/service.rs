//! The inbox's request handling, over the Sql port.

use crate::mail::parse_mail;
use crate::store::{self, NewMessage};
use protocol::api::{Direction, Me, Message, MessageList};
use protocol::key::sha256_hex;
use protocol::limits::MAX_MESSAGE_BYTES;
use protocol::wire::{ApiCall, CLAIM_TTL_MILLIS, InboxRequest, Ingested, decode_request};
use protocol::{ApiError, ErrorCode, Handle, KeyHash, Reply, Timestamp};
use schema::{MigrateError, Migration, Sql, SqlError, Value};

/// One inbox's request handler. It lives as long as its Durable Object instance
/// and remembers whether the schema was brought up to date since it woke.
#[derive(Debug)]
pub struct InboxService {
    migrations: &'static [Migration],
    migrated: bool,
}

/// The inbox's owner row.
struct Owner {
    handle: Handle,
    key_hash: KeyHash,
    active: bool,
    claimed_at: Timestamp,
    created_at: Timestamp,
}

impl InboxService {
    /// A service that will bring the schema up to the last of `migrations`
    /// (normally [`schema::MIGRATIONS`]) before serving its first request.
    pub fn new(migrations: &'static [Migration]) -> Self {
        InboxService {
            migrations,
            migrated: false,
        }
    }

    /// Serves one router request: `request` is the encoded [`InboxRequest`]
    /// (the `x-inboxkit-request` header) and `payload` the request body.
    ///
    /// The first call after waking runs pending migrations atomically; if that
    /// fails, the database is untouched, the call answers 503 `unavailable`, and
    /// the next call tries again.
    pub fn serve(&mut self, sql: &dyn Sql, request: &str, payload: &[u8], now: Timestamp) -> Reply {
        if !self.migrated {
            match schema::migrate(sql, self.migrations, now.millis()) {
                Ok(report) => {
                    if !report.applied.is_empty() {
                        log::info!(
                            "inbox schema migrated to {} (applied {:?})",
                            report.version,
                            report.applied
                        );
                    }
                    self.migrated = true;
                }
                Err(error) => return migration_failed(&error),
            }
        }
        let request = match decode_request(request) {
            Ok(request) => request,
            Err(error) => {
                // Only the router speaks to us; a request we cannot read is a
                // bug or a version skew between the two scripts.
                log::error!("unreadable inbox request: {error}");
                return Reply::error(&ApiError::invalid("The inbox request is malformed."));
            }
        };
        match dispatch(sql, request, payload, now) {
            Ok(reply) => reply,
            Err(error) => {
                log::error!("inbox storage error: {error}");
                Reply::error(&ApiError::internal())
            }
        }
    }
}

fn dispatch(
    sql: &dyn Sql,
    request: InboxRequest,
    payload: &[u8],
    now: Timestamp,
) -> Result<Reply, SqlError> {
    match request {
        InboxRequest::Claim { handle, key_hash } => claim(sql, &handle, &key_hash, now),
        InboxRequest::Confirm { key_hash } => confirm(sql, &key_hash),
        InboxRequest::Release { key_hash } => release(sql, &key_hash),
        InboxRequest::Ingest {
            envelope_from,
            recipient,
            tag,
        } => ingest(sql, &envelope_from, &recipient, tag, payload, now),
        InboxRequest::Api {
            key_hash,
            mail_domain,
            call,
        } => {
            // The DO is the authority: a stale or forged KV entry can route a
            // request here, but only the stored hash grants access.
            let Some(owner) = load_owner(sql)?.filter(|o| o.active && o.key_hash == key_hash)
            else {
                return Ok(Reply::error(&ApiError::unauthorized()));
            };
            match call {
                ApiCall::Me => me(sql, &owner, &mail_domain),
                ApiCall::ListMessages {
                    limit,
                    cursor,
                    since,
                    unread,
                } => {
                    let (messages, next_cursor) = store::list(sql, limit, cursor, since, unread)?;
                    Ok(Reply::json(
                        200,
                        &MessageList {
                            messages,
                            next_cursor,
                        },
                    ))
                }
                ApiCall::GetMessage { id } => {
                    match (store::summary(sql, id)?, store::detail(sql, id)?) {
                        (Some(summary), Some(detail)) => {
                            Ok(Reply::json(200, &Message { summary, detail }))
                        }
                        _ => Ok(no_such_message(id)),
                    }
                }
                ApiCall::MarkRead { id, read } => match store::set_read(sql, id, read)? {
                    Some(summary) => Ok(Reply::json(200, &summary)),
                    None => Ok(no_such_message(id)),
                },
                ApiCall::GetRaw { id } => match store::raw(sql, id)? {
                    Some(raw) => Ok(Reply {
                        status: 200,
                        headers: vec![
                            ("content-type".to_owned(), "message/rfc822".to_owned()),
                            (
                                "content-disposition".to_owned(),
                                format!("attachment; filename=\"message-{id}.eml\""),
                            ),
                        ],
                        body: raw,
                    }),
                    None => Ok(no_such_message(id)),
                },
            }
        }
    }
}

fn no_such_message(id: u64) -> Reply {
    Reply::error(&ApiError::not_found(format!(
        "There is no message {id} in this inbox."
    )))
}

/// Stores an inbound message: once, whole, atomically.
fn ingest(
    sql: &dyn Sql,
    envelope_from: &str,
    recipient: &str,
    tag: Option<String>,
    raw: &[u8],
    now: Timestamp,
) -> Result<Reply, SqlError> {
    if !load_owner(sql)?.is_some_and(|o| o.active) {
        return Ok(Reply::error(&ApiError::not_found("No such mailbox here.")));
    }
    if raw.len() as u64 > MAX_MESSAGE_BYTES {
        return Ok(Reply::error(&ApiError::new(
            ErrorCode::TooLarge,
            format!("Message too large: the limit is {MAX_MESSAGE_BYTES} bytes (25 MiB)."),
        )));
    }
    let raw_sha256 = sha256_hex(raw);
    if let Some(id) = store::find_by_raw(sql, &raw_sha256)? {
        return Ok(Reply::json(
            200,
            &Ingested {
                id,
                duplicate: true,
            },
        ));
    }
    let id = store::insert(
        sql,
        &NewMessage {
            direction: Direction::Inbound,
            to: recipient,
            received_at: now,
            raw,
            raw_sha256,
            parsed: parse_mail(raw, envelope_from, tag),
        },
    )?;
    Ok(Reply::json(
        201,
        &Ingested {
            id,
            duplicate: false,
        },
    ))
}

fn migration_failed(error: &MigrateError) -> Reply {
    log::error!("inbox schema migration failed: {error}");
    Reply::error(&ApiError::unavailable(
        "This inbox is being upgraded and cannot serve requests right now. Retry shortly.",
    ))
}

fn load_owner(sql: &dyn Sql) -> Result<Option<Owner>, SqlError> {
    let rows = sql.exec(
        "SELECT handle, key_hash, state, claimed_at, created_at FROM inbox WHERE id = 1",
        &[],
    )?;
    let Some(row) = rows.single()? else {
        return Ok(None);
    };
    let malformed = || SqlError::new("inbox row is malformed");
    let text = |i: usize| row.get(i).and_then(Value::as_str).ok_or_else(malformed);
    let int = |i: usize| row.get(i).and_then(Value::as_i64).ok_or_else(malformed);
    Ok(Some(Owner {
        handle: Handle::parse(text(0)?).map_err(|_| malformed())?,
        key_hash: KeyHash::from_hex(text(1)?).ok_or_else(malformed)?,
        active: text(2)? == "active",
        claimed_at: Timestamp::from_millis(int(3)?),
        created_at: Timestamp::from_millis(int(4)?),
    }))
}

fn claim(
    sql: &dyn Sql,
    handle: &Handle,
    key_hash: &KeyHash,
    now: Timestamp,
) -> Result<Reply, SqlError> {
    if let Some(owner) = load_owner(sql)? {
        if owner.key_hash == *key_hash && owner.handle == *handle {
            // The same signup retrying its claim.
            return Ok(status_only(201));
        }
        let expired = !owner.active && owner.claimed_at.plus_millis(CLAIM_TTL_MILLIS) <= now;
        if !expired {
            return Ok(Reply::error(&ApiError::new(
                ErrorCode::HandleTaken,
                format!("The handle '{handle}' is already taken."),
            )));
        }
    }
    // Either no owner, or an abandoned claim: (re)claim in one statement.
    sql.exec(
        "INSERT OR REPLACE INTO inbox (id, handle, key_hash, state, claimed_at, created_at)
         VALUES (1, ?, ?, 'claimed', ?, ?)",
        &[
            Value::from(handle.as_str()),
            Value::Text(key_hash.to_hex()),
            Value::Integer(now.millis()),
            Value::Integer(now.millis()),
        ],
    )?;
    Ok(status_only(201))
}

fn confirm(sql: &dyn Sql, key_hash: &KeyHash) -> Result<Reply, SqlError> {
    match load_owner(sql)? {
        Some(owner) if owner.key_hash == *key_hash => {
            if !owner.active {
                sql.exec("UPDATE inbox SET state = 'active' WHERE id = 1", &[])?;
            }
            Ok(status_only(204))
        }
        _ => Ok(Reply::error(&ApiError::new(
            ErrorCode::Conflict,
            "The signup's claim on this handle was lost.",
        ))),
    }
}

fn release(sql: &dyn Sql, key_hash: &KeyHash) -> Result<Reply, SqlError> {
    if let Some(owner) = load_owner(sql)?
        && !owner.active
        && owner.key_hash == *key_hash
    {
        sql.exec("DELETE FROM inbox WHERE id = 1 AND state = 'claimed'", &[])?;
    }
    Ok(status_only(204))
}

fn me(sql: &dyn Sql, owner: &Owner, mail_domain: &str) -> Result<Reply, SqlError> {
    Ok(Reply::json(
        200,
        &Me {
            email: owner.handle.address(mail_domain),
            handle: owner.handle.clone(),
            created_at: owner.created_at,
            message_count: store::count(sql)?,
        },
    ))
}

fn status_only(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}
