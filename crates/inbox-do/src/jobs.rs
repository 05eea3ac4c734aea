//! Durable work outside the inbox: webhook events and sends, in the `jobs`
//! table, plus the webhook itself and the record of its delivery attempts.
//!
//! A job is written in the same transaction as the message it is about. It
//! becomes runnable once `due_at` has passed and no attempt holds its lease
//! (`lease_until`); claiming it takes the lease and counts the attempt, so an
//! attempt cut short by a crash is retried once the lease runs out, and two
//! runners never take the same job. The alarm is kept at the earliest time a
//! job becomes runnable.

use protocol::api::{WebhookDelivery, WebhookEvent, WebhookEventKind};
use protocol::key::sha256_hex;
use protocol::limits::KEPT_DELIVERIES;
use protocol::wire::SendRoute;
use protocol::{Handle, Timestamp};
use schema::{Sql, SqlError, Value};

/// How long one attempt holds its job, in milliseconds. Longer than any
/// attempt can take (webhooks time out after 5 s, the relay after 30 s).
pub(crate) const LEASE_MILLIS: i64 = 60_000;

/// How many attempts an interrupted send gets before it is marked failed.
pub(crate) const MAX_SEND_ATTEMPTS: u32 = 3;

/// The inbox's webhook.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub(crate) url: String,
    pub(crate) secret: String,
    pub(crate) allow_http_loopback: bool,
    pub(crate) created_at: Timestamp,
}

/// A claimed job.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    Webhook {
        id: i64,
        message_id: u64,
        event: WebhookEventKind,
        event_id: String,
        body: String,
        /// Including this one.
        attempts: u32,
    },
    Send {
        id: i64,
        message_id: u64,
        route: SendRoute,
        fields: SendFields,
        attempts: u32,
    },
}

pub(crate) fn load_webhook(sql: &dyn Sql) -> Result<Option<Webhook>, SqlError> {
    let rows = sql.exec(
        "SELECT url, secret, allow_http_loopback, created_at FROM webhook WHERE id = 1",
        &[],
    )?;
    let Some(row) = rows.single()? else {
        return Ok(None);
    };
    let malformed = || SqlError::new("the webhook row is malformed");
    let text = |i: usize| row.get(i).and_then(Value::as_str).ok_or_else(malformed);
    let int = |i: usize| row.get(i).and_then(Value::as_i64).ok_or_else(malformed);
    Ok(Some(Webhook {
        url: text(0)?.to_owned(),
        secret: text(1)?.to_owned(),
        allow_http_loopback: int(2)? != 0,
        created_at: Timestamp::from_millis(int(3)?),
    }))
}

pub(crate) fn put_webhook(sql: &dyn Sql, webhook: &Webhook) -> Result<(), SqlError> {
    sql.exec(
        "INSERT OR REPLACE INTO webhook (id, url, secret, allow_http_loopback, created_at)
         VALUES (1, ?, ?, ?, ?)",
        &[
            Value::from(webhook.url.as_str()),
            Value::from(webhook.secret.as_str()),
            Value::Integer(i64::from(webhook.allow_http_loopback)),
            Value::Integer(webhook.created_at.millis()),
        ],
    )?;
    Ok(())
}

/// Removes the webhook and every event still waiting for it, atomically;
/// `true` if there was one.
pub(crate) fn delete_webhook(sql: &dyn Sql) -> Result<bool, SqlError> {
    let mut removed = false;
    sql.transaction(&mut || {
        removed = delete_webhook_in_transaction(sql, None)?;
        Ok(())
    })?;
    Ok(removed)
}

/// As [`delete_webhook`], inside the caller's transaction. With `only_url`,
/// only a webhook with that URL is removed (a 410 from an old URL must not
/// remove its replacement).
pub(crate) fn delete_webhook_in_transaction(
    sql: &dyn Sql,
    only_url: Option<&str>,
) -> Result<bool, SqlError> {
    let rows = match only_url {
        Some(url) => sql.exec(
            "DELETE FROM webhook WHERE id = 1 AND url = ? RETURNING id",
            &[Value::from(url)],
        )?,
        None => sql.exec("DELETE FROM webhook WHERE id = 1 RETURNING id", &[])?,
    };
    let removed = !rows.rows.is_empty();
    if removed {
        sql.exec("DELETE FROM jobs WHERE kind = 'webhook'", &[])?;
    }
    Ok(removed)
}

/// The event id: unique across inboxes (it covers the handle) and stable
/// across retries (it is stored with the job).
pub(crate) fn event_id(
    handle: &Handle,
    message_id: u64,
    event: WebhookEventKind,
    at: Timestamp,
) -> String {
    let digest = sha256_hex(
        format!(
            "{handle}\n{message_id}\n{}\n{}",
            event.as_str(),
            at.millis()
        )
        .as_bytes(),
    );
    format!("evt_{}", &digest[..32])
}

/// What an event says about its message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventFacts<'a> {
    pub(crate) event: WebhookEventKind,
    pub(crate) message_id: u64,
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    pub(crate) subject: Option<&'a str>,
    /// The message's arrival (or sending) time.
    pub(crate) at: Timestamp,
}

/// Queues an event for the webhook, if the inbox has one, due at `now`. Call
/// inside the message's transaction. Returns whether a job was queued.
pub(crate) fn queue_event(
    sql: &dyn Sql,
    handle: &Handle,
    facts: &EventFacts<'_>,
    now: Timestamp,
) -> Result<bool, SqlError> {
    let exists = sql.exec("SELECT 1 FROM webhook WHERE id = 1", &[])?;
    if exists.rows.is_empty() {
        return Ok(false);
    }
    let event = &facts.event;
    let message_id = facts.message_id;
    let payload = WebhookEvent {
        event: *event,
        event_id: event_id(handle, message_id, *event, facts.at),
        message_id,
        from: facts.from.to_owned(),
        to: facts.to.to_owned(),
        subject: facts.subject.map(str::to_owned),
        received_at: facts.at,
    };
    let body = serde_json::to_string(&payload)
        .map_err(|e| SqlError::new(format!("serializing an event: {e}")))?;
    sql.exec(
        "INSERT INTO jobs (kind, message_id, event, event_id, body, due_at, created_at)
         VALUES ('webhook', ?, ?, ?, ?, ?, ?)",
        &[
            Value::Integer(message_id as i64),
            Value::from(event.as_str()),
            Value::from(payload.event_id.as_str()),
            Value::from(body.as_str()),
            Value::Integer(now.millis()),
            Value::Integer(now.millis()),
        ],
    )?;
    Ok(true)
}

/// A send's fields, kept with its job for relays that take fields rather
/// than MIME (Resend's API).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SendFields {
    pub(crate) subject: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
    /// The Message-ID, without brackets.
    pub(crate) message_id: String,
}

/// Queues a send, already claimed by the caller's first attempt (which runs
/// at once); if that attempt is cut short, the alarm retries it once the
/// lease runs out. Call inside the message's transaction.
pub(crate) fn queue_send(
    sql: &dyn Sql,
    message_id: u64,
    route: &SendRoute,
    fields: &SendFields,
    now: Timestamp,
) -> Result<i64, SqlError> {
    let route = serde_json::to_string(route)
        .map_err(|e| SqlError::new(format!("serializing a route: {e}")))?;
    let fields = serde_json::to_string(fields)
        .map_err(|e| SqlError::new(format!("serializing a send: {e}")))?;
    let rows = sql.exec(
        "INSERT INTO jobs (kind, message_id, route, body, attempts, due_at, lease_until, created_at)
         VALUES ('send', ?, ?, ?, 1, ?, ?, ?) RETURNING id",
        &[
            Value::Integer(message_id as i64),
            Value::from(route.as_str()),
            Value::from(fields.as_str()),
            Value::Integer(now.millis()),
            Value::Integer(now.millis() + LEASE_MILLIS),
            Value::Integer(now.millis()),
        ],
    )?;
    rows.single()?
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .ok_or_else(|| SqlError::new("INSERT returned no job id"))
}

/// Claims up to `limit` runnable jobs, oldest first.
pub(crate) fn claim_due(sql: &dyn Sql, now: Timestamp, limit: u32) -> Result<Vec<Job>, SqlError> {
    let mut jobs = Vec::new();
    sql.transaction(&mut || {
        jobs.clear();
        let rows = sql.exec(
            "UPDATE jobs SET attempts = attempts + 1, lease_until = ?
             WHERE id IN (SELECT id FROM jobs WHERE due_at <= ? AND lease_until <= ?
                          ORDER BY due_at, id LIMIT ?)
             RETURNING id, kind, message_id, event, event_id, body, route, attempts",
            &[
                Value::Integer(now.millis() + LEASE_MILLIS),
                Value::Integer(now.millis()),
                Value::Integer(now.millis()),
                Value::Integer(i64::from(limit)),
            ],
        )?;
        for row in &rows.rows {
            jobs.push(job_of(row)?);
        }
        Ok(())
    })?;
    Ok(jobs)
}

fn job_of(row: &[Value]) -> Result<Job, SqlError> {
    let malformed = || SqlError::new("a job row is malformed");
    let int = |i: usize| row.get(i).and_then(Value::as_i64).ok_or_else(malformed);
    let text = |i: usize| row.get(i).and_then(Value::as_str).ok_or_else(malformed);
    let id = int(0)?;
    let message_id = int(2)? as u64;
    let attempts = u32::try_from(int(7)?).map_err(|_| malformed())?;
    match text(1)? {
        "webhook" => Ok(Job::Webhook {
            id,
            message_id,
            event: WebhookEventKind::parse(text(3)?).ok_or_else(malformed)?,
            event_id: text(4)?.to_owned(),
            body: text(5)?.to_owned(),
            attempts,
        }),
        "send" => Ok(Job::Send {
            id,
            message_id,
            route: serde_json::from_str(text(6)?).map_err(|_| malformed())?,
            fields: serde_json::from_str(text(5)?).map_err(|_| malformed())?,
            attempts,
        }),
        _ => Err(malformed()),
    }
}

pub(crate) fn delete_job(sql: &dyn Sql, id: i64) -> Result<(), SqlError> {
    sql.exec("DELETE FROM jobs WHERE id = ?", &[Value::Integer(id)])?;
    Ok(())
}

/// Puts a job back to run at `due_at`, releasing its lease.
pub(crate) fn reschedule_job(sql: &dyn Sql, id: i64, due_at: Timestamp) -> Result<(), SqlError> {
    sql.exec(
        "UPDATE jobs SET due_at = ?, lease_until = 0 WHERE id = ?",
        &[Value::Integer(due_at.millis()), Value::Integer(id)],
    )?;
    Ok(())
}

/// When the next job becomes runnable, if any is pending.
pub(crate) fn next_wake(sql: &dyn Sql) -> Result<Option<Timestamp>, SqlError> {
    let rows = sql.exec("SELECT min(max(due_at, lease_until)) FROM jobs", &[])?;
    Ok(rows
        .single()?
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .map(Timestamp::from_millis))
}

/// Records one delivery attempt and keeps only the newest [`KEPT_DELIVERIES`].
pub(crate) fn record_attempt(sql: &dyn Sql, attempt: &WebhookDelivery) -> Result<(), SqlError> {
    sql.exec(
        "INSERT INTO webhook_attempts (event_id, event, message_id, attempt, at, status_code,
                                       error, duration_ms, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::from(attempt.event_id.as_str()),
            Value::from(attempt.event.as_str()),
            Value::Integer(attempt.message_id as i64),
            Value::Integer(i64::from(attempt.attempt)),
            Value::Integer(attempt.at.millis()),
            attempt
                .status_code
                .map_or(Value::Null, |s| Value::Integer(i64::from(s))),
            attempt.error.as_deref().map_or(Value::Null, Value::from),
            Value::Integer(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX)),
            attempt
                .next_attempt_at
                .map_or(Value::Null, |t| Value::Integer(t.millis())),
        ],
    )?;
    sql.exec(
        "DELETE FROM webhook_attempts WHERE id <=
            (SELECT id FROM webhook_attempts ORDER BY id DESC LIMIT 1 OFFSET ?)",
        &[Value::Integer(i64::from(KEPT_DELIVERIES))],
    )?;
    Ok(())
}

/// The newest attempts first.
pub(crate) fn attempts(sql: &dyn Sql) -> Result<Vec<WebhookDelivery>, SqlError> {
    let rows = sql.exec(
        "SELECT event_id, event, message_id, attempt, at, status_code, error, duration_ms,
                next_attempt_at
         FROM webhook_attempts ORDER BY id DESC LIMIT ?",
        &[Value::Integer(i64::from(KEPT_DELIVERIES))],
    )?;
    rows.rows
        .iter()
        .map(|row| {
            let malformed = || SqlError::new("a webhook attempt row is malformed");
            let int = |i: usize| row.get(i).and_then(Value::as_i64).ok_or_else(malformed);
            let text = |i: usize| row.get(i).and_then(Value::as_str).ok_or_else(malformed);
            Ok(WebhookDelivery {
                event_id: text(0)?.to_owned(),
                event: WebhookEventKind::parse(text(1)?).ok_or_else(malformed)?,
                message_id: int(2)? as u64,
                attempt: u32::try_from(int(3)?).map_err(|_| malformed())?,
                at: Timestamp::from_millis(int(4)?),
                status_code: row
                    .get(5)
                    .and_then(Value::as_i64)
                    .and_then(|s| u16::try_from(s).ok()),
                error: row.get(6).and_then(Value::as_str).map(str::to_owned),
                duration_ms: int(7)?.max(0) as u64,
                next_attempt_at: row
                    .get(8)
                    .and_then(Value::as_i64)
                    .map(Timestamp::from_millis),
            })
        })
        .collect()
}
