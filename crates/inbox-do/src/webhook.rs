//! The inbox's webhook: its row, the events queued for it, their signed
//! delivery and retries, and the log of delivery attempts.
//!
//! An event is queued (as a [`crate::jobs`] row) in the same transaction as
//! its message. Each delivery re-checks the URL with the SSRF guard, signs the
//! body both ways (InboxKit's and Standard Webhooks' headers), and records
//! the attempt (the newest [`KEPT_DELIVERIES`]); a failure is retried on
//! [`InboxConfig::retry_seconds`], a 410 removes the webhook, a refused URL is
//! not retried.

use crate::error::InboxError;
use crate::jobs::{self, WebhookJob};
use crate::outbound;
use crate::ports::{HttpCall, InboxConfig, Platform};
use protocol::api::{
    WebhookCreated, WebhookDelivery, WebhookDeliveryList, WebhookEvent, WebhookEventKind,
    WebhookInfo,
};
use protocol::key::sha256_hex;
use protocol::limits::{KEPT_DELIVERIES, WEBHOOK_TIMEOUT_MILLIS};
use protocol::webhook_signature::WebhookSecret;
use protocol::webhook_url::{UrlPolicy, check_webhook_url};
use protocol::{ApiError, Handle, Reply, Timestamp};
use schema::{Row, Sql, SqlError, Value};

/// The inbox's webhook.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub(crate) url: String,
    pub(crate) secret: String,
    pub(crate) allow_http_loopback: bool,
    pub(crate) created_at: Timestamp,
}

/// `PUT /api/webhook`: sets (or replaces) the webhook.
pub(crate) fn put(sql: &dyn Sql, webhook: Webhook) -> Result<Reply, InboxError> {
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
    Ok(Reply::json(
        200,
        &WebhookCreated {
            url: webhook.url,
            secret: webhook.secret,
            created_at: webhook.created_at,
        },
    ))
}

/// `GET /api/webhook`.
pub(crate) fn get(sql: &dyn Sql) -> Result<Reply, InboxError> {
    match load(sql)? {
        Some(webhook) => Ok(Reply::json(
            200,
            &WebhookInfo {
                url: webhook.url,
                created_at: webhook.created_at,
            },
        )),
        None => Err(ApiError::not_found("This inbox has no webhook.").into()),
    }
}

/// `DELETE /api/webhook`: removes the webhook and every event still waiting
/// for it, atomically.
pub(crate) fn delete(sql: &dyn Sql) -> Result<Reply, InboxError> {
    sql.transaction(&mut || remove(sql, None).map(|_| ()))?;
    Ok(Reply::no_content())
}

/// `GET /api/webhook/deliveries`: the newest attempts first.
pub(crate) fn deliveries(sql: &dyn Sql) -> Result<Reply, InboxError> {
    Ok(Reply::json(
        200,
        &WebhookDeliveryList {
            deliveries: attempts(sql)?,
        },
    ))
}

pub(crate) fn load(sql: &dyn Sql) -> Result<Option<Webhook>, SqlError> {
    let rows = sql.exec(
        "SELECT url, secret, allow_http_loopback, created_at FROM webhook WHERE id = 1",
        &[],
    )?;
    let Some(row) = rows.single()? else {
        return Ok(None);
    };
    let read = || -> Result<Webhook, SqlError> {
        Ok(Webhook {
            url: row.text(0)?.to_owned(),
            secret: row.text(1)?.to_owned(),
            allow_http_loopback: row.int(2)? != 0,
            created_at: Timestamp::from_millis(row.int(3)?),
        })
    };
    read().map(Some).map_err(|e| e.context("the webhook row"))
}

/// Removes the webhook and its waiting events, inside the caller's
/// transaction; `true` if there was one. With `only_url`, only a webhook
/// with that URL is removed (a 410 from an old URL must not remove its
/// replacement).
fn remove(sql: &dyn Sql, only_url: Option<&str>) -> Result<bool, SqlError> {
    let rows = match only_url {
        Some(url) => sql.exec(
            "DELETE FROM webhook WHERE id = 1 AND url = ? RETURNING id",
            &[Value::from(url)],
        )?,
        None => sql.exec("DELETE FROM webhook WHERE id = 1 RETURNING id", &[])?,
    };
    let removed = !rows.rows.is_empty();
    if removed {
        jobs::delete_webhook_jobs(sql)?;
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
    let payload = WebhookEvent {
        event: facts.event,
        event_id: event_id(handle, facts.message_id, facts.event, facts.at),
        message_id: facts.message_id,
        from: facts.from.to_owned(),
        to: facts.to.to_owned(),
        subject: facts.subject.map(str::to_owned),
        received_at: facts.at,
    };
    let body = serde_json::to_string(&payload)
        .map_err(|e| SqlError::new(format!("serializing an event: {e}")))?;
    jobs::queue_webhook(
        sql,
        facts.message_id,
        facts.event,
        &payload.event_id,
        &body,
        now,
    )?;
    Ok(true)
}

/// What one delivery attempt came to.
enum Attempt {
    Answered(u16),
    NoAnswer(String),
    Refused(String),
}

/// Runs one claimed event: delivers it, then records the attempt and the
/// job's next state atomically. An `Err` is a storage failure: the job keeps
/// its lease and is retried when the lease ends.
pub(crate) async fn run<P: Platform>(
    sql: &dyn Sql,
    platform: &P,
    config: &InboxConfig,
    job: WebhookJob,
) -> Result<(), SqlError> {
    let Some(webhook) = load(sql)? else {
        // Removed since the event was queued.
        return jobs::delete_job(sql, job.id);
    };
    let started = platform.now();
    let attempt = deliver(platform, &webhook, &job, started).await;
    let now = platform.now();
    let record = WebhookDelivery {
        event_id: job.event_id.clone(),
        event: job.event,
        message_id: job.message_id,
        attempt: job.attempts,
        at: started,
        status_code: None,
        error: None,
        duration_ms: u64::try_from(now.millis() - started.millis()).unwrap_or(0),
        next_attempt_at: None,
    };
    let delivered = Delivered {
        job_id: job.id,
        url: &webhook.url,
        attempt,
        record,
        now,
    };
    finish(sql, config, &delivered)
}

/// One finished attempt, to record.
struct Delivered<'a> {
    job_id: i64,
    /// The URL it went to (a 410 removes only a webhook still at it).
    url: &'a str,
    attempt: Attempt,
    /// The attempt's log entry, completed by [`finish`].
    record: WebhookDelivery,
    /// When it ended.
    now: Timestamp,
}

/// POSTs one event, signed both ways.
async fn deliver<P: Platform>(
    platform: &P,
    webhook: &Webhook,
    job: &WebhookJob,
    now: Timestamp,
) -> Attempt {
    let policy = UrlPolicy {
        allow_http_loopback: webhook.allow_http_loopback,
    };
    if let Err(refusal) = check_webhook_url(&webhook.url, policy) {
        return Attempt::Refused(refusal.to_string());
    }
    let Some(secret) = WebhookSecret::parse(&webhook.secret) else {
        return Attempt::Refused("its stored secret is unreadable; set the webhook again".into());
    };
    let signed = secret.sign(
        &job.event_id,
        now.millis().div_euclid(1000),
        job.body.as_bytes(),
    );
    let call = HttpCall {
        url: webhook.url.clone(),
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), outbound::user_agent()),
            ("x-inboxkit-event".to_owned(), job.event.as_str().to_owned()),
            ("x-inboxkit-signature".to_owned(), signed.inboxkit),
            ("webhook-id".to_owned(), signed.webhook_id),
            ("webhook-timestamp".to_owned(), signed.webhook_timestamp),
            ("webhook-signature".to_owned(), signed.webhook_signature),
        ],
        body: job.body.as_bytes().to_vec(),
        timeout_millis: WEBHOOK_TIMEOUT_MILLIS,
    };
    match platform.http(&call).await {
        Ok(answer) => Attempt::Answered(answer.status),
        Err(why) => Attempt::NoAnswer(why.0),
    }
}

/// Records `attempt` and moves its job on: done, rescheduled, or given up.
fn finish(sql: &dyn Sql, config: &InboxConfig, delivered: &Delivered<'_>) -> Result<(), SqlError> {
    let Delivered {
        job_id,
        url,
        attempt,
        record,
        now,
    } = delivered;
    let (job_id, now) = (*job_id, *now);
    let attempts = record.attempt;
    sql.transaction(&mut || {
        let mut record = record.clone();
        match attempt {
            Attempt::Answered(status) if (200..300).contains(status) => {
                record.status_code = Some(*status);
                jobs::delete_job(sql, job_id)?;
            }
            Attempt::Answered(410) => {
                record.status_code = Some(410);
                record.error =
                    Some("The receiver answered 410 Gone, so the webhook was removed.".to_owned());
                if !remove(sql, Some(url))? {
                    jobs::delete_job(sql, job_id)?;
                }
            }
            Attempt::Refused(why) => {
                record.error = Some(format!("The webhook URL is refused: {why}. Not retried."));
                jobs::delete_job(sql, job_id)?;
            }
            Attempt::Answered(_) | Attempt::NoAnswer(_) => {
                let mut error = match attempt {
                    Attempt::Answered(status) => {
                        record.status_code = Some(*status);
                        format!("The receiver answered HTTP {status}.")
                    }
                    Attempt::NoAnswer(why) | Attempt::Refused(why) => why.clone(),
                };
                match config.retry_seconds.get(attempts as usize) {
                    Some(seconds) => {
                        let next = now.plus_millis(i64::try_from(*seconds).unwrap_or(0) * 1000);
                        if jobs::reschedule_job(sql, job_id, next)? {
                            record.next_attempt_at = Some(next);
                        } else {
                            error.push_str(
                                " The webhook was removed meanwhile, so it is not retried.",
                            );
                        }
                    }
                    None => {
                        error.push_str(&format!(" Gave up after {attempts} attempts."));
                        jobs::delete_job(sql, job_id)?;
                    }
                }
                record.error = Some(error);
            }
        }
        record_attempt(sql, &record)
    })
}

/// Records one delivery attempt and keeps only the newest [`KEPT_DELIVERIES`].
fn record_attempt(sql: &dyn Sql, attempt: &WebhookDelivery) -> Result<(), SqlError> {
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
fn attempts(sql: &dyn Sql) -> Result<Vec<WebhookDelivery>, SqlError> {
    let rows = sql.exec(
        "SELECT event_id, event, message_id, attempt, at, status_code, error, duration_ms,
                next_attempt_at
         FROM webhook_attempts ORDER BY id DESC LIMIT ?",
        &[Value::Integer(i64::from(KEPT_DELIVERIES))],
    )?;
    rows.rows
        .iter()
        .map(|row| {
            let read = || -> Result<WebhookDelivery, SqlError> {
                Ok(WebhookDelivery {
                    event_id: row.text(0)?.to_owned(),
                    event: WebhookEventKind::parse(row.text(1)?)
                        .ok_or_else(|| SqlError::new("the event kind is unknown"))?,
                    message_id: row.int(2)? as u64,
                    attempt: u32::try_from(row.int(3)?)
                        .map_err(|_| SqlError::new("attempt is out of range"))?,
                    at: Timestamp::from_millis(row.int(4)?),
                    status_code: row.opt_int(5)?.and_then(|s| u16::try_from(s).ok()),
                    error: row.opt_text(6)?.map(str::to_owned),
                    duration_ms: row.int(7)?.max(0) as u64,
                    next_attempt_at: row.opt_int(8)?.map(Timestamp::from_millis),
                })
            };
            read().map_err(|e| e.context("a webhook attempt row"))
        })
        .collect()
}
