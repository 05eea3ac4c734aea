//! The inbox's API keys (table `api_keys`, migration 11): each stored only
//! as its SHA-256, with a name and a scope. The InboxDO is the authority:
//! KV's `key:` entries only route, and a request is served only when its
//! hash is an `active` row here.
//!
//! A key is made in two steps around the router's KV write, as a signup is:
//! [`create`] notes it `pending` (it grants nothing yet), the router
//! publishes it in KV, then [`confirm`] makes it `active`. A failure between
//! the two leaves a pending row that never works and is dropped by the
//! router's undo ([`drop_pending`]) or, failing that, by the next [`create`]
//! once it is older than the claim TTL. The key text itself reaches the
//! client only after [`confirm`] answered, so no key is ever handed out
//! that does not work, and none that works is lost.

use crate::error::InboxError;
use protocol::api::{KeyInfo, KeyList, KeyScope};
use protocol::limits::{LAST_USED_GRANULARITY_MILLIS, MAX_KEYS};
use protocol::wire::{CLAIM_TTL_MILLIS, KeyRemoved};
use protocol::{ApiError, ErrorCode, KeyHash, Reply, Timestamp};
use schema::{Row, Sql, SqlError, Value};

const COLUMNS: &str = "id, key_hash, name, scope, prefix, created_at, last_used_at";

/// An active key that authenticated a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UsedKey {
    /// What it may do.
    pub(crate) scope: KeyScope,
}

/// The active key whose hash is `hash`, if any; its `lastUsedAt` is
/// written when the stored one is more than an hour old (so a request is
/// not a write). The stored hash is compared in constant time.
pub(crate) fn find_active(
    sql: &dyn Sql,
    hash: &KeyHash,
    now: Timestamp,
) -> Result<Option<UsedKey>, SqlError> {
    let rows = sql.exec(
        "SELECT id, key_hash, scope, last_used_at FROM api_keys
         WHERE key_hash = ? AND state = 'active'",
        &[Value::Text(hash.to_hex())],
    )?;
    let Some(row) = rows.single()? else {
        return Ok(None);
    };
    let stored = KeyHash::from_hex(row.text(1)?)
        .ok_or_else(|| SqlError::new("a stored key hash is not hex"))?;
    if stored != *hash {
        return Ok(None);
    }
    let id = row.int(0)?;
    let scope = KeyScope::parse(row.text(2)?)
        .ok_or_else(|| SqlError::new("a stored key scope is unknown"))?;
    let stale = row
        .opt_int(3)?
        .is_none_or(|at| at.saturating_add(LAST_USED_GRANULARITY_MILLIS) <= now.millis());
    if stale {
        // To the hour: the most a key's use costs is one write an hour.
        let hour = now.millis() - now.millis().rem_euclid(LAST_USED_GRANULARITY_MILLIS);
        sql.exec(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
            &[Value::Integer(hour), Value::Integer(id)],
        )?;
    }
    Ok(Some(UsedKey { scope }))
}

/// Adds the signup key as the inbox's first `full` key (when the signup is
/// confirmed); a retried confirm adds nothing.
pub(crate) fn add_signup_key(
    sql: &dyn Sql,
    hash: &KeyHash,
    prefix: Option<&str>,
    now: Timestamp,
) -> Result<(), SqlError> {
    sql.exec(
        "INSERT INTO api_keys (key_hash, name, scope, state, prefix, created_at)
         VALUES (?, 'signup', 'full', 'active', ?, ?)
         ON CONFLICT (key_hash) DO NOTHING",
        &[
            Value::Text(hash.to_hex()),
            prefix.map_or(Value::Null, Value::from),
            Value::Integer(now.millis()),
        ],
    )?;
    Ok(())
}

/// `GET /api/keys`: the active keys, oldest first.
pub(crate) fn list(sql: &dyn Sql) -> Result<Reply, InboxError> {
    let rows = sql.exec(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE state = 'active' ORDER BY id"),
        &[],
    )?;
    let keys = rows
        .rows
        .iter()
        .map(|row| info_of(row).map_err(|e| e.context("a key row")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::json(200, &KeyList { keys }))
}

/// `POST /api/keys`, step 1: notes the key as pending (204). Pending keys
/// older than the claim TTL are dropped first; the inbox holds at most
/// [`MAX_KEYS`] keys, pending ones included (409 beyond).
pub(crate) fn create(
    sql: &dyn Sql,
    hash: &KeyHash,
    name: &str,
    scope: KeyScope,
    prefix: &str,
    now: Timestamp,
) -> Result<Reply, InboxError> {
    let name = protocol::lifecycle::check_key_name(name)?;
    let mut full = false;
    sql.transaction(&mut || {
        sql.exec(
            "DELETE FROM api_keys WHERE state = 'pending' AND created_at <= ?",
            &[Value::Integer(now.millis() - CLAIM_TTL_MILLIS)],
        )?;
        let rows = sql.exec("SELECT count(*) FROM api_keys", &[])?;
        let count = match rows.single()? {
            Some(row) => row.int(0)?,
            None => 0,
        };
        if count >= MAX_KEYS as i64 {
            full = true;
            return Ok(());
        }
        sql.exec(
            "INSERT INTO api_keys (key_hash, name, scope, state, prefix, created_at)
             VALUES (?, ?, ?, 'pending', ?, ?)
             ON CONFLICT (key_hash) DO NOTHING",
            &[
                Value::Text(hash.to_hex()),
                Value::Text(name.clone()),
                Value::from(scope.as_str()),
                Value::from(prefix),
                Value::Integer(now.millis()),
            ],
        )?;
        Ok(())
    })?;
    if full {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("This inbox already has {MAX_KEYS} keys; delete one first."),
        )
        .into());
    }
    Ok(Reply::no_content())
}

/// `POST /api/keys`, step 2: the pending key becomes active (201 with its
/// description); 409 when it is no longer pending.
pub(crate) fn confirm(sql: &dyn Sql, hash: &KeyHash) -> Result<Reply, InboxError> {
    let hex = Value::Text(hash.to_hex());
    sql.exec(
        "UPDATE api_keys SET state = 'active' WHERE key_hash = ? AND state = 'pending'",
        std::slice::from_ref(&hex),
    )?;
    let rows = sql.exec(
        &format!("SELECT {COLUMNS} FROM api_keys WHERE key_hash = ? AND state = 'active'"),
        &[hex],
    )?;
    match rows.single()? {
        Some(row) => Ok(Reply::json(
            201,
            &info_of(row).map_err(|e| e.context("a key row"))?,
        )),
        None => Err(ApiError::new(
            ErrorCode::Conflict,
            "The new key was lost before it was confirmed; create it again.",
        )
        .into()),
    }
}

/// Undoes step 1 of a creation that failed: the pending key goes (204);
/// an active key is never dropped by this.
pub(crate) fn drop_pending(sql: &dyn Sql, hash: &KeyHash) -> Result<Reply, InboxError> {
    sql.exec(
        "DELETE FROM api_keys WHERE key_hash = ? AND state = 'pending'",
        &[Value::Text(hash.to_hex())],
    )?;
    Ok(Reply::no_content())
}

/// `DELETE /api/keys/:id`: the key stops working at once (200 with its hash,
/// for the router to remove from KV); 404 when there is no such key, 409
/// when it is the inbox's last `full` key.
pub(crate) fn delete(sql: &dyn Sql, id: u64) -> Result<(Reply, String), InboxError> {
    let mut outcome: Result<String, ApiError> = Err(no_such_key(id));
    sql.transaction(&mut || {
        let rows = sql.exec(
            "SELECT key_hash, scope FROM api_keys WHERE id = ? AND state = 'active'",
            &[Value::Integer(id as i64)],
        )?;
        let Some(row) = rows.single()? else {
            outcome = Err(no_such_key(id));
            return Ok(());
        };
        let hash = row.text(0)?.to_owned();
        if row.text(1)? == "full" {
            let rows = sql.exec(
                "SELECT count(*) FROM api_keys WHERE scope = 'full' AND state = 'active'",
                &[],
            )?;
            let fulls = match rows.single()? {
                Some(row) => row.int(0)?,
                None => 0,
            };
            if fulls <= 1 {
                outcome = Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "Key {id} is this inbox's last `full` key; create another `full` key \
                         before deleting it (or delete the inbox)."
                    ),
                ));
                return Ok(());
            }
        }
        sql.exec(
            "DELETE FROM api_keys WHERE id = ?",
            &[Value::Integer(id as i64)],
        )?;
        outcome = Ok(hash);
        Ok(())
    })?;
    let hex = outcome?;
    let key_hash =
        KeyHash::from_hex(&hex).ok_or_else(|| SqlError::new("a stored key hash is not hex"))?;
    Ok((Reply::json(200, &KeyRemoved { key_hash }), hex))
}

/// The hashes of every key the inbox has (pending ones included).
pub(crate) fn all_hashes(sql: &dyn Sql) -> Result<Vec<KeyHash>, SqlError> {
    let rows = sql.exec("SELECT key_hash FROM api_keys ORDER BY id", &[])?;
    rows.rows
        .iter()
        .map(|row| {
            KeyHash::from_hex(row.text(0)?)
                .ok_or_else(|| SqlError::new("a stored key hash is not hex"))
        })
        .collect()
}

fn info_of(row: &[Value]) -> Result<KeyInfo, SqlError> {
    Ok(KeyInfo {
        id: row.int(0)? as u64,
        name: row.text(2)?.to_owned(),
        scope: KeyScope::parse(row.text(3)?)
            .ok_or_else(|| SqlError::new("a stored key scope is unknown"))?,
        prefix: row.opt_text(4)?.map(str::to_owned),
        created_at: Timestamp::from_millis(row.int(5)?),
        last_used_at: row.opt_int(6)?.map(Timestamp::from_millis),
    })
}

fn no_such_key(id: u64) -> ApiError {
    ApiError::not_found(format!("There is no key {id} in this inbox."))
}
