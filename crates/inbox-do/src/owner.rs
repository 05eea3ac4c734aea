//! The inbox's owner row and the signup protocol over it.
//!
//! The owner is the one row of the `inbox` table: `claimed` while a signup
//! publishes the key in KV, then `active`. `Claim`, `Confirm` and `Release`
//! are the router's three steps; the object alone decides who wins a handle.
//! The row also keeps the inbox's counters, in each message's own
//! transaction: `stored_bytes` by [`crate::store`], `message_count` by
//! triggers on the `messages` table (migration 7).

use crate::error::InboxError;
use crate::keys::{self, UsedKey};
use protocol::wire::CLAIM_TTL_MILLIS;
use protocol::{ApiError, ErrorCode, Handle, KeyHash, Reply, Timestamp};
use schema::{Row, Sql, SqlError, Value};

/// The inbox's owner row.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub(crate) handle: Handle,
    pub(crate) key_hash: KeyHash,
    pub(crate) active: bool,
    pub(crate) claimed_at: Timestamp,
    pub(crate) created_at: Timestamp,
    pub(crate) stored_bytes: u64,
    pub(crate) message_count: u64,
    pub(crate) retention_days: Option<u32>,
}

/// The owner, if the inbox has one. The stored handle is taken as stored:
/// it passed the rules of the day it was claimed, and a rule added since
/// (a newly reserved word) must not lock the inbox out of its own data.
pub(crate) fn load_owner(sql: &dyn Sql) -> Result<Option<Owner>, SqlError> {
    let rows = sql.exec(
        "SELECT handle, key_hash, state, claimed_at, created_at, stored_bytes, message_count,
                retention_days
         FROM inbox WHERE id = 1",
        &[],
    )?;
    let Some(row) = rows.single()? else {
        return Ok(None);
    };
    let read = || -> Result<Owner, SqlError> {
        Ok(Owner {
            handle: Handle::from_stored(row.text(0)?),
            key_hash: KeyHash::from_hex(row.text(1)?)
                .ok_or_else(|| SqlError::new("the key hash is not hex"))?,
            active: row.text(2)? == "active",
            claimed_at: Timestamp::from_millis(row.int(3)?),
            created_at: Timestamp::from_millis(row.int(4)?),
            stored_bytes: u64::try_from(row.int(5)?).unwrap_or(0),
            message_count: u64::try_from(row.int(6)?).unwrap_or(0),
            retention_days: row.opt_int(7)?.and_then(|d| u32::try_from(d).ok()),
        })
    };
    read().map(Some).map_err(|e| e.context("the inbox row"))
}

/// The owner of an authenticated call, and the key it came with: the inbox
/// is active and the key is one of its active keys.
pub(crate) fn authenticate(
    sql: &dyn Sql,
    key_hash: &KeyHash,
    now: Timestamp,
) -> Result<(Owner, UsedKey), InboxError> {
    // The DO is the authority: a stale or forged KV entry can route a request
    // here, but only a stored hash grants access.
    let Some(owner) = load_owner(sql)?.filter(|o| o.active) else {
        return Err(ApiError::unauthorized().into());
    };
    match keys::find_active(sql, key_hash, now)? {
        Some(key) => Ok((owner, key)),
        None => Err(ApiError::unauthorized().into()),
    }
}

/// Claims the handle for a signup's key (201), unless someone else holds it
/// (409 `handle_taken`). An unconfirmed claim expires after
/// [`CLAIM_TTL_MILLIS`].
pub(crate) fn claim(
    sql: &dyn Sql,
    handle: &Handle,
    key_hash: &KeyHash,
    now: Timestamp,
) -> Result<Reply, InboxError> {
    if let Some(owner) = load_owner(sql)? {
        if owner.key_hash == *key_hash && owner.handle == *handle {
            // The same signup retrying its claim.
            return Ok(status_only(201));
        }
        let expired = !owner.active && owner.claimed_at.plus_millis(CLAIM_TTL_MILLIS) <= now;
        if !expired {
            return Err(ApiError::new(
                ErrorCode::HandleTaken,
                format!("The handle '{handle}' is already taken."),
            )
            .into());
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

/// Makes the claim of `key_hash` the inbox's owner, its key the first
/// `full` key (204), or 409 `conflict` when that claim was lost.
pub(crate) fn confirm(
    sql: &dyn Sql,
    key_hash: &KeyHash,
    prefix: Option<&str>,
    now: Timestamp,
) -> Result<Reply, InboxError> {
    match load_owner(sql)? {
        Some(owner) if owner.key_hash == *key_hash => {
            if !owner.active {
                sql.transaction(&mut || {
                    sql.exec("UPDATE inbox SET state = 'active' WHERE id = 1", &[])?;
                    keys::add_signup_key(sql, key_hash, prefix, now)
                })?;
            }
            Ok(status_only(204))
        }
        _ => Err(ApiError::new(
            ErrorCode::Conflict,
            "The signup's claim on this handle was lost.",
        )
        .into()),
    }
}

/// Drops an unconfirmed claim of `key_hash`; an active inbox is never
/// released. Always 204.
pub(crate) fn release(sql: &dyn Sql, key_hash: &KeyHash) -> Result<Reply, InboxError> {
    if let Some(owner) = load_owner(sql)?
        && !owner.active
        && owner.key_hash == *key_hash
    {
        sql.exec("DELETE FROM inbox WHERE id = 1 AND state = 'claimed'", &[])?;
    }
    Ok(status_only(204))
}

fn status_only(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}
