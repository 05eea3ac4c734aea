//! `Idempotency-Key` on send, reply and forward (table `idempotency`,
//! migration 11).
//!
//! The key is written in the transaction that stores the message it
//! creates, with a fingerprint of the call (its endpoint, every field and
//! the attachments' bytes) and, once the first attempt has answered, that
//! answer. A repeat within 24 hours gets the stored answer and sends
//! nothing; a repeat while the first is still in flight gets 409 `conflict`
//! ("in progress": retry shortly) rather than waiting, so that no request
//! holds the inbox's turn for another's hand-over; a repeat with another
//! call or body gets 409. A request refused before its message was stored
//! (bad input, rate limited, storage full) stores nothing, so its retry
//! with the same key runs anew. A first request cut short after storing
//! its message (the object was evicted mid-hand-over) is answered, after
//! [`IDEMPOTENCY_IN_FLIGHT_MILLIS`], from the message's recorded state.
//! The alarm purges keys older than 24 hours.

use crate::error::InboxError;
use crate::send;
use protocol::key::sha256_hex;
use protocol::limits::{IDEMPOTENCY_IN_FLIGHT_MILLIS, IDEMPOTENCY_TTL_MILLIS};
use protocol::wire::ApiCall;
use protocol::{ApiError, ErrorCode, Reply, Timestamp};
use schema::{Row, Sql, SqlError, Value};

/// Keys one alarm purges at most.
const PURGE_BATCH: u32 = 500;

/// A call's idempotency key and the fingerprint of what it asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Idempotent {
    pub(crate) key: String,
    pub(crate) fingerprint: String,
}

/// The key of a send, reply or forward that carries one, with the call's
/// fingerprint: SHA-256 over the call as JSON (its kind and fields, the key
/// left out) and the payload (the attachments' bytes).
pub(crate) fn of(call: &ApiCall, payload: &[u8]) -> Result<Option<Idempotent>, InboxError> {
    let mut bare = call.clone();
    let key = match &mut bare {
        ApiCall::Send {
            idempotency_key, ..
        }
        | ApiCall::Reply {
            idempotency_key, ..
        }
        | ApiCall::Forward {
            idempotency_key, ..
        } => idempotency_key.take(),
        _ => None,
    };
    let Some(key) = key else {
        return Ok(None);
    };
    // Checked by the router; checked again, as everything from it is.
    protocol::lifecycle::check_idempotency_key(&key)?;
    let mut bytes = serde_json::to_vec(&bare)
        .map_err(|e| SqlError::new(format!("serializing a call for its fingerprint: {e}")))?;
    bytes.push(0);
    bytes.extend_from_slice(payload);
    Ok(Some(Idempotent {
        key,
        fingerprint: sha256_hex(&bytes),
    }))
}

/// The answer for a repeat of `call`, if it is one: the stored answer, or
/// 409 while the first is in flight or when the key was used for another
/// call. `None` when the key is new (or expired): the call runs.
pub(crate) fn replay(
    sql: &dyn Sql,
    call: &Idempotent,
    now: Timestamp,
) -> Result<Option<Reply>, InboxError> {
    let rows = sql.exec(
        "SELECT fingerprint, message_id, status, body, created_at FROM idempotency
         WHERE key = ? AND created_at > ?",
        &[
            Value::Text(call.key.clone()),
            Value::Integer(now.millis() - IDEMPOTENCY_TTL_MILLIS),
        ],
    )?;
    let Some(row) = rows.single()? else {
        return Ok(None);
    };
    if row.text(0)? != call.fingerprint {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "This Idempotency-Key was used for another request (another endpoint or body) \
             in the last 24 hours; use a new key for a new request.",
        )
        .into());
    }
    let message_id = row.int(1)? as u64;
    if let (Some(status), Value::Blob(body)) = (row.opt_int(2)?, &row[3]) {
        return Ok(Some(stored_reply(status, body.clone())));
    }
    if row.int(4)? + IDEMPOTENCY_IN_FLIGHT_MILLIS > now.millis() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "A request with this Idempotency-Key is still in progress; retry in a few \
             seconds to get its answer.",
        )
        .into());
    }
    // The first request was cut short after storing its message: answer
    // from what the message records now, and keep that answer.
    match send::outcome_reply(sql, message_id) {
        Ok(reply) => {
            settle(sql, &call.key, &reply)?;
            Ok(Some(reply))
        }
        Err(_) => Err(ApiError::new(
            ErrorCode::Conflict,
            "The message this Idempotency-Key created has been deleted since; use a new key \
             to send again.",
        )
        .into()),
    }
}

/// Notes the key for message `message_id` (inside the message's
/// transaction), its answer still to come.
pub(crate) fn claim(
    sql: &dyn Sql,
    call: &Idempotent,
    message_id: u64,
    now: Timestamp,
) -> Result<(), SqlError> {
    // An expired row with this key may still be there, unpurged.
    sql.exec(
        "INSERT OR REPLACE INTO idempotency (key, fingerprint, message_id, created_at)
         VALUES (?, ?, ?, ?)",
        &[
            Value::Text(call.key.clone()),
            Value::Text(call.fingerprint.clone()),
            Value::Integer(message_id as i64),
            Value::Integer(now.millis()),
        ],
    )?;
    Ok(())
}

/// Keeps `reply` as the answer for `key` (a JSON reply: its status and
/// body; its only header is the content type).
pub(crate) fn settle(sql: &dyn Sql, key: &str, reply: &Reply) -> Result<(), SqlError> {
    sql.exec(
        "UPDATE idempotency SET status = ?, body = ? WHERE key = ? AND status IS NULL",
        &[
            Value::Integer(i64::from(reply.status)),
            Value::Blob(reply.body.clone()),
            Value::from(key),
        ],
    )?;
    Ok(())
}

fn stored_reply(status: i64, body: Vec<u8>) -> Reply {
    Reply {
        status: u16::try_from(status).unwrap_or(500),
        headers: vec![("content-type".to_owned(), protocol::reply::JSON.to_owned())],
        body,
    }
    .with_header("idempotent-replayed", "true")
}

/// Deletes up to a batch of keys older than 24 hours; how many went.
pub(crate) fn purge(sql: &dyn Sql, now: Timestamp) -> Result<u32, SqlError> {
    let rows = sql.exec(
        "DELETE FROM idempotency WHERE key IN
            (SELECT key FROM idempotency WHERE created_at <= ? ORDER BY created_at LIMIT ?)
         RETURNING 1",
        &[
            Value::Integer(now.millis() - IDEMPOTENCY_TTL_MILLIS),
            Value::Integer(i64::from(PURGE_BATCH)),
        ],
    )?;
    Ok(rows.rows.len() as u32)
}

/// When the oldest key expires, if any is kept.
pub(crate) fn next_expiry(sql: &dyn Sql) -> Result<Option<Timestamp>, SqlError> {
    let rows = sql.exec("SELECT min(created_at) FROM idempotency", &[])?;
    Ok(match rows.single()? {
        Some(row) => row
            .opt_int(0)?
            .map(|at| Timestamp::from_millis(at + IDEMPOTENCY_TTL_MILLIS)),
        None => None,
    })
}
