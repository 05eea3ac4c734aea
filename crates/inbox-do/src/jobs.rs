//! The durable work queue: webhook events and sends, in the `jobs` table.
//!
//! A job is written in the same transaction as the message it is about. It
//! becomes runnable once `due_at` has passed and no attempt holds its lease
//! (`lease_until`); claiming it takes the lease and counts the attempt, so an
//! attempt cut short by a crash is retried once the lease runs out, and two
//! runners never take the same job. The alarm is kept at the earliest time a
//! job becomes runnable. A row that cannot be read is set aside in
//! `dead_jobs` (with the reason, logged without its content) so that it never
//! blocks the others. What a job does is in [`crate::webhook`] and
//! [`crate::send`]; this module only keeps the queue.

use protocol::api::WebhookEventKind;
use protocol::wire::SendRoute;
use protocol::{Handle, Timestamp};
use schema::{Row, Sql, SqlError, Value};
use serde::{Deserialize, Serialize};

/// How long one attempt holds its job, in milliseconds. Longer than any
/// attempt can take: see [`HANDOVER_TIMEOUT_MILLIS`].
pub(crate) const LEASE_MILLIS: i64 = 60_000;

/// The longest one hand-over of a send may take (to another inbox, to the
/// `send_email` binding or to the HTTP relay), in milliseconds. Below the
/// lease, with room for the storage around it: an attempt that outlasted its
/// lease would be run a second time by the alarm, sending the mail twice.
pub(crate) const HANDOVER_TIMEOUT_MILLIS: u64 = 30_000;

const _: () = assert!((HANDOVER_TIMEOUT_MILLIS as i64) * 3 / 2 <= LEASE_MILLIS);

/// How many attempts an interrupted send gets before it is marked failed.
pub(crate) const MAX_SEND_ATTEMPTS: u32 = 3;

/// A claimed webhook event.
#[derive(Debug, Clone)]
pub(crate) struct WebhookJob {
    pub(crate) id: i64,
    pub(crate) message_id: u64,
    pub(crate) event: WebhookEventKind,
    pub(crate) event_id: String,
    /// The event's JSON, as it is POSTed.
    pub(crate) body: String,
    /// Including this one.
    pub(crate) attempts: u32,
}

/// A claimed send: the delivery of one message to some of its recipients.
#[derive(Debug, Clone)]
pub(crate) struct SendJob {
    pub(crate) id: i64,
    pub(crate) message_id: u64,
    pub(crate) route: SendRoute,
    /// The `seq`s of the message's `message_recipients` rows this job
    /// delivers to. Empty for a job written before recipients had rows: its
    /// one recipient is the message's `to_addr`, and it settles the message.
    pub(crate) recipients: Vec<u32>,
    pub(crate) fields: SendFields,
    /// Including this one.
    pub(crate) attempts: u32,
}

/// A claimed job.
#[derive(Debug, Clone)]
pub(crate) enum Job {
    Webhook(WebhookJob),
    /// Boxed: a send carries its fields, many times a webhook job's size.
    Send(Box<SendJob>),
}

/// A send's fields, kept with its job for relays that take fields rather
/// than MIME (Resend's API). A stored format (the job's `body`): fields may
/// be added, never renamed; missing ones read as empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct SendFields {
    pub(crate) subject: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
    /// The Message-ID, without brackets.
    pub(crate) message_id: String,
    /// The Reply-To addresses.
    pub(crate) reply_to: Vec<String>,
    /// The Message-ID answered, without brackets.
    pub(crate) in_reply_to: Option<String>,
    /// The References ids, without brackets.
    pub(crate) references: Vec<String>,
}

/// A send's route as the job's `route` column keeps it: the wire's
/// [`SendRoute`] JSON, read tolerantly (unknown fields are ignored) and with
/// the recipient's handle taken as stored, so that neither a wire change nor
/// a new handle rule makes a queued send unreadable. The column's object also
/// carries the job's recipients (`"recipients": [seq, ...]`, see
/// [`SendJob::recipients`]), absent in rows written before there were any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "camelCase")]
pub(crate) enum StoredRoute {
    Relay,
    #[serde(rename_all = "camelCase")]
    Direct {
        handle: String,
        object_id: String,
        #[serde(default)]
        tag: Option<String>,
    },
}

impl From<&SendRoute> for StoredRoute {
    fn from(route: &SendRoute) -> Self {
        match route {
            SendRoute::Relay => StoredRoute::Relay,
            SendRoute::Direct {
                handle,
                object_id,
                tag,
            } => StoredRoute::Direct {
                handle: handle.as_str().to_owned(),
                object_id: object_id.clone(),
                tag: tag.clone(),
            },
        }
    }
}

impl From<StoredRoute> for SendRoute {
    fn from(route: StoredRoute) -> Self {
        match route {
            StoredRoute::Relay => SendRoute::Relay,
            StoredRoute::Direct {
                handle,
                object_id,
                tag,
            } => SendRoute::Direct {
                handle: Handle::from_stored(&handle),
                object_id,
                tag,
            },
        }
    }
}

/// Queues a webhook event due at `now`. Call inside the message's transaction.
pub(crate) fn queue_webhook(
    sql: &dyn Sql,
    message_id: u64,
    event: WebhookEventKind,
    event_id: &str,
    body: &str,
    now: Timestamp,
) -> Result<(), SqlError> {
    sql.exec(
        "INSERT INTO jobs (kind, message_id, event, event_id, body, due_at, created_at)
         VALUES ('webhook', ?, ?, ?, ?, ?, ?)",
        &[
            Value::Integer(message_id as i64),
            Value::from(event.as_str()),
            Value::from(event_id),
            Value::from(body),
            Value::Integer(now.millis()),
            Value::Integer(now.millis()),
        ],
    )?;
    Ok(())
}

/// The `route` column's JSON: the route, and the recipients' `seq`s.
fn stored_route(route: &SendRoute, recipients: &[u32]) -> Result<String, SqlError> {
    let mut value = serde_json::to_value(StoredRoute::from(route))
        .map_err(|e| SqlError::new(format!("serializing a route: {e}")))?;
    if let Some(object) = value.as_object_mut() {
        object.insert("recipients".to_owned(), serde_json::json!(recipients));
    }
    Ok(value.to_string())
}

/// Reads [`stored_route`]'s JSON, and that of jobs written before it (the
/// route alone: no recipients).
fn read_stored_route(text: &str) -> Result<(SendRoute, Vec<u32>), SqlError> {
    let unreadable = |e: serde_json::Error| SqlError::new(format!("the route is unreadable: {e}"));
    let value: serde_json::Value = serde_json::from_str(text).map_err(unreadable)?;
    let recipients = match value.get("recipients") {
        Some(list) => serde_json::from_value::<Vec<u32>>(list.clone()).map_err(unreadable)?,
        None => Vec::new(),
    };
    let route = serde_json::from_value::<StoredRoute>(value).map_err(unreadable)?;
    Ok((route.into(), recipients))
}

/// Queues a send to the message's recipients `recipients` (their `seq`s),
/// already claimed by the caller's first attempt (which runs at once); if
/// that attempt is cut short, the alarm retries it once the lease runs out.
/// Call inside the message's transaction.
pub(crate) fn queue_send(
    sql: &dyn Sql,
    message_id: u64,
    route: &SendRoute,
    recipients: &[u32],
    fields: &SendFields,
    now: Timestamp,
) -> Result<i64, SqlError> {
    let route = stored_route(route, recipients)?;
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
    match rows.single()? {
        Some(row) => row.int(0),
        None => Err(SqlError::new("INSERT returned no job id")),
    }
}

/// Claims up to `limit` runnable jobs, oldest first. A row that cannot be
/// read is set aside (see [`set_aside`]) and the others are claimed.
///
/// The claimed jobs run together, and a send holds copies of its message
/// while it hands it over (see `send::fits_the_route`, which bounds one
/// message's): so of the sends of messages over [`LARGE_SEND_BYTES`], only
/// those of the first such message due are claimed; the others stay due and
/// get the next alarm, at once.
pub(crate) fn claim_due(sql: &dyn Sql, now: Timestamp, limit: u32) -> Result<Vec<Job>, SqlError> {
    let mut jobs = Vec::new();
    sql.transaction(&mut || {
        jobs.clear();
        let candidates = sql.exec(
            "SELECT jobs.id, jobs.kind, jobs.message_id, coalesce(messages.size, 0)
             FROM jobs LEFT JOIN messages ON messages.id = jobs.message_id
             WHERE jobs.due_at <= ? AND jobs.lease_until <= ?
             ORDER BY jobs.due_at, jobs.id LIMIT ?",
            &[
                Value::Integer(now.millis()),
                Value::Integer(now.millis()),
                Value::Integer(i64::from(limit).saturating_mul(4)),
            ],
        )?;
        let mut large: Option<i64> = None;
        let mut chosen = Vec::new();
        for row in &candidates.rows {
            if chosen.len() >= limit as usize {
                break;
            }
            let (id, kind, message, size) =
                (row.int(0)?, row.opt_text(1)?, row.opt_int(2)?, row.int(3)?);
            if kind == Some("send") && size > LARGE_SEND_BYTES {
                match large {
                    None => large = message,
                    Some(first) if Some(first) == message => {}
                    Some(_) => continue,
                }
            }
            chosen.push(id);
        }
        for id in chosen {
            let rows = sql.exec(
                "UPDATE jobs SET attempts = attempts + 1, lease_until = ? WHERE id = ?
                 RETURNING id, kind, message_id, event, event_id, body, route, attempts",
                &[
                    Value::Integer(now.millis() + LEASE_MILLIS),
                    Value::Integer(id),
                ],
            )?;
            for row in &rows.rows {
                match job_of(row) {
                    Ok(job) => jobs.push(job),
                    Err(why) => set_aside(sql, row, &why, now)?,
                }
            }
        }
        Ok(())
    })?;
    Ok(jobs)
}

/// A send of a message larger than this counts as large for
/// [`claim_due`]: an alarm runs the sends of one large message at most.
pub(crate) const LARGE_SEND_BYTES: i64 = 256 * 1024;

/// Moves an unreadable job row to `dead_jobs` with `why`, inside the
/// caller's transaction; a send's message is marked failed (it would
/// otherwise stay `queued` forever). The log line names the job, not its
/// content.
fn set_aside(sql: &dyn Sql, row: &[Value], why: &SqlError, now: Timestamp) -> Result<(), SqlError> {
    let id = row.int(0)?;
    let kind = row.opt_text(1).ok().flatten().unwrap_or("?").to_owned();
    log::error!("job {id} ({kind}) cannot be read and was set aside in dead_jobs");
    sql.exec(
        "INSERT OR REPLACE INTO dead_jobs (id, kind, message_id, event, event_id, body, route,
                                           attempts, created_at, set_aside_at, reason)
         SELECT id, kind, message_id, event, event_id, body, route, attempts, created_at, ?, ?
         FROM jobs WHERE id = ?",
        &[
            Value::Integer(now.millis()),
            Value::from(why.message.as_str()),
            Value::Integer(id),
        ],
    )?;
    delete_job(sql, id)?;
    if kind == "send"
        && let Ok(message_id) = row.int(2)
    {
        crate::send::abandon(
            sql,
            message_id as u64,
            "The send's stored job could not be read, so it was not attempted again.",
            now,
        )?;
    }
    Ok(())
}

fn job_of(row: &[Value]) -> Result<Job, SqlError> {
    let id = row.int(0)?;
    let message_id = row.int(2)? as u64;
    let attempts =
        u32::try_from(row.int(7)?).map_err(|_| SqlError::new("attempts is out of range"))?;
    match row.text(1)? {
        "webhook" => Ok(Job::Webhook(WebhookJob {
            id,
            message_id,
            event: WebhookEventKind::parse(row.text(3)?)
                .ok_or_else(|| SqlError::new("the event kind is unknown"))?,
            event_id: row.text(4)?.to_owned(),
            body: row.text(5)?.to_owned(),
            attempts,
        })),
        "send" => {
            let (route, recipients) = read_stored_route(row.text(6)?)?;
            Ok(Job::Send(Box::new(SendJob {
                id,
                message_id,
                route,
                recipients,
                fields: serde_json::from_str(row.text(5)?)
                    .map_err(|e| SqlError::new(format!("the send's fields are unreadable: {e}")))?,
                attempts,
            })))
        }
        _ => Err(SqlError::new("the job kind is unknown")),
    }
    .map_err(|e| e.context("a job row"))
}

pub(crate) fn delete_job(sql: &dyn Sql, id: i64) -> Result<(), SqlError> {
    sql.exec("DELETE FROM jobs WHERE id = ?", &[Value::Integer(id)])?;
    Ok(())
}

/// Removes every webhook event still waiting (the webhook is gone).
pub(crate) fn delete_webhook_jobs(sql: &dyn Sql) -> Result<(), SqlError> {
    sql.exec("DELETE FROM jobs WHERE kind = 'webhook'", &[])?;
    Ok(())
}

/// Puts a job back to run at `due_at`, releasing its lease; `false` when the
/// job is gone (its webhook was removed while the attempt was in flight).
pub(crate) fn reschedule_job(sql: &dyn Sql, id: i64, due_at: Timestamp) -> Result<bool, SqlError> {
    let rows = sql.exec(
        "UPDATE jobs SET due_at = ?, lease_until = 0 WHERE id = ? RETURNING id",
        &[Value::Integer(due_at.millis()), Value::Integer(id)],
    )?;
    Ok(!rows.rows.is_empty())
}

/// When the next job becomes runnable, if any is pending.
pub(crate) fn next_wake(sql: &dyn Sql) -> Result<Option<Timestamp>, SqlError> {
    let rows = sql.exec("SELECT min(max(due_at, lease_until)) FROM jobs", &[])?;
    match rows.single()? {
        Some(row) => Ok(row.opt_int(0)?.map(Timestamp::from_millis)),
        None => Ok(None),
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_claims_the_sends_of_one_large_message_at_most() {
        let db = testkit::SqliteDb::new();
        schema::migrate(&db, schema::MIGRATIONS, 0).expect("migrates");
        let message = |size: i64| -> u64 {
            let rows = db
                .exec(
                    "INSERT INTO messages (direction, received_at, read, size, from_addr, to_addr)
                     VALUES ('outbound', 0, 1, ?, 'a@agents.test', 'b@example.com') RETURNING id",
                    &[Value::Integer(size)],
                )
                .expect("a message");
            rows.rows[0].int(0).expect("an id") as u64
        };
        let (big_a, big_b, small) = (message(5_000_000), message(6_000_000), message(2_000));
        let now = Timestamp::from_millis(1_000);
        let fields = SendFields::default();
        for (id, seq) in [(big_a, 0), (big_b, 0), (small, 0), (big_a, 1), (big_b, 1)] {
            queue_send(&db, id, &SendRoute::Relay, &[seq], &fields, now).expect("queued");
        }
        // Past their first attempts' leases: all five are due.
        let later = now.plus_millis(LEASE_MILLIS + 1);
        // The messages whose sends an alarm claims, in order.
        let claimed = || -> Vec<u64> {
            claim_due(&db, later, 25)
                .expect("claims")
                .into_iter()
                .map(|job| match job {
                    Job::Send(send) => send.message_id,
                    Job::Webhook(_) => 0,
                })
                .collect()
        };
        assert_eq!(claimed(), vec![big_a, small, big_a]);
        // The other large message's get the next alarm.
        assert_eq!(claimed(), vec![big_b, big_b]);
    }

    #[test]
    fn a_route_in_todays_stored_format_still_reads() {
        // Exactly what queue_send wrote before StoredRoute existed (the wire
        // type's JSON), plus a field a later version might add.
        let direct = r#"{"via":"direct","handle":"bob","objectId":"ab12","tag":"x"}"#;
        let read: SendRoute = serde_json::from_str::<StoredRoute>(direct)
            .expect("today's direct route")
            .into();
        assert_eq!(
            read,
            SendRoute::Direct {
                handle: Handle::from_stored("bob"),
                object_id: "ab12".into(),
                tag: Some("x".into()),
            }
        );
        let relay: SendRoute = serde_json::from_str::<StoredRoute>(r#"{"via":"relay"}"#)
            .expect("today's relay route")
            .into();
        assert_eq!(relay, SendRoute::Relay);
        let later = r#"{"via":"direct","handle":"admin","objectId":"ab12","tag":null,"new":1}"#;
        assert!(serde_json::from_str::<StoredRoute>(later).is_ok());
        // And what is written now is what the wire type reads.
        let written = serde_json::to_string(&StoredRoute::from(&read)).expect("serializes");
        assert_eq!(
            serde_json::from_str::<SendRoute>(&written).expect("the wire reads it"),
            read
        );
    }

    #[test]
    fn a_route_column_reads_with_its_recipients_or_without() {
        let written = stored_route(&SendRoute::Relay, &[1, 3]).expect("serializes");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&written).expect("JSON"),
            serde_json::json!({ "via": "relay", "recipients": [1, 3] })
        );
        assert_eq!(
            read_stored_route(&written).expect("reads"),
            (SendRoute::Relay, vec![1, 3])
        );
        // A row written before recipients existed: the route alone.
        let old = r#"{"via":"direct","handle":"bob","objectId":"ab12","tag":null}"#;
        let (route, recipients) = read_stored_route(old).expect("reads");
        assert!(matches!(route, SendRoute::Direct { .. }));
        assert!(recipients.is_empty());
        assert!(read_stored_route(r#"{"via":"relay","recipients":"x"}"#).is_err());
    }

    #[test]
    fn send_fields_in_todays_stored_format_still_read() {
        let today = r#"{"subject":"Hi","text":"x","html":null,"message_id":"m@d"}"#;
        let fields: SendFields = serde_json::from_str(today).expect("today's fields");
        assert_eq!(fields.subject.as_deref(), Some("Hi"));
        assert_eq!(fields.message_id, "m@d");
        assert!(fields.reply_to.is_empty() && fields.references.is_empty());
        let later = r#"{"subject":null,"message_id":"m@d","cc":["a@b"]}"#;
        assert!(serde_json::from_str::<SendFields>(later).is_ok());
    }
}
