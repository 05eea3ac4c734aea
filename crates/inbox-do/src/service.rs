//! The inbox's request handling, over the Sql and Platform ports.

use crate::jobs::{self, EventFacts, Job, SendFields, Webhook};
use crate::mail::parse_mail;
use crate::outbound::{self, Draft};
use crate::ports::{InboxConfig, Platform, Relay};
use crate::store::{self, NewMessage};
use protocol::api::{
    Direction, Me, Message, MessageList, SendResponse, SendStatus, WebhookCreated, WebhookDelivery,
    WebhookDeliveryList, WebhookEventKind, WebhookInfo,
};
use protocol::key::sha256_hex;
use protocol::limits::{
    MAX_MESSAGE_BYTES, SENDS_PER_HOUR, SENDS_PER_MINUTE, WEBHOOK_TIMEOUT_MILLIS,
};
use protocol::webhook_signature::WebhookSecret;
use protocol::webhook_url::{UrlPolicy, check_webhook_url};
use protocol::wire::{
    ApiCall, CLAIM_TTL_MILLIS, InboxRequest, Ingested, SendRoute, decode_request,
};
use protocol::{ApiError, ErrorCode, Handle, KeyHash, Reply, Timestamp};
use schema::{MigrateError, Migration, Sql, SqlError, Value};
use std::sync::atomic::{AtomicBool, Ordering};

/// Jobs one alarm runs at most; more due ones get the next alarm, at once.
const ALARM_BATCH: u32 = 25;

/// One inbox's request handler. It lives as long as its Durable Object instance
/// and remembers whether the schema was brought up to date since it woke.
/// Its methods take `&self` and hold no borrow across an `await`, so requests
/// may interleave at I/O points (as the platform lets them); every step
/// between two `await`s is synchronous and so never interleaved.
#[derive(Debug)]
pub struct InboxService {
    migrations: &'static [Migration],
    /// Atomic only so that testkit can share a service between threads.
    migrated: AtomicBool,
    config: InboxConfig,
}

/// The inbox's owner row.
struct Owner {
    handle: Handle,
    key_hash: KeyHash,
    active: bool,
    claimed_at: Timestamp,
    created_at: Timestamp,
    stored_bytes: u64,
}

/// What a request needs after its synchronous part.
enum Step {
    /// The answer; `wake` when jobs were queued and the alarm must be set.
    Reply { reply: Reply, wake: bool },
    /// A send was stored and its job claimed: attempt it now.
    Send {
        job_id: i64,
        message_id: u64,
        route: SendRoute,
        fields: SendFields,
    },
}

impl Step {
    fn reply(reply: Reply) -> Step {
        Step::Reply { reply, wake: false }
    }
}

/// What one webhook attempt came to.
enum Attempt {
    Answered(u16),
    NoAnswer(String),
    Refused(String),
}

impl InboxService {
    /// A service that will bring the schema up to the last of `migrations`
    /// (normally [`schema::MIGRATIONS`]) before serving its first request,
    /// with the default configuration (no relay).
    pub fn new(migrations: &'static [Migration]) -> Self {
        Self::with_config(migrations, InboxConfig::default())
    }

    /// As [`Self::new`], with `config`.
    pub fn with_config(migrations: &'static [Migration], config: InboxConfig) -> Self {
        InboxService {
            migrations,
            migrated: AtomicBool::new(false),
            config,
        }
    }

    /// Serves one router request: `request` is the encoded [`InboxRequest`]
    /// (the `x-inboxkit-request` header) and `payload` the request body.
    ///
    /// The first call after waking runs pending migrations atomically; if that
    /// fails, the database is untouched, the call answers 503 `unavailable`, and
    /// the next call tries again.
    pub async fn serve<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        request: &str,
        payload: &[u8],
    ) -> Reply {
        let now = platform.now();
        if let Err(error) = self.migrate(sql, now) {
            return migration_failed(&error);
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
        let step = match self.dispatch(sql, request, payload, now) {
            Ok(step) => step,
            Err(error) => return storage_failed(&error),
        };
        match step {
            Step::Reply { reply, wake } => {
                if wake {
                    self.set_alarm(sql, platform).await;
                }
                reply
            }
            Step::Send {
                job_id,
                message_id,
                route,
                fields,
            } => {
                // The job is claimed for this attempt; should the attempt be
                // cut short, the alarm picks the job up when its lease ends.
                self.set_alarm(sql, platform).await;
                let job = Job::Send {
                    id: job_id,
                    message_id,
                    route,
                    fields,
                    attempts: 1,
                };
                let outcome = self.run_job(sql, platform, job).await;
                self.set_alarm(sql, platform).await;
                match outcome {
                    Ok(()) => match store::summary(sql, message_id) {
                        Ok(Some(summary)) => Reply::json(
                            201,
                            &SendResponse {
                                id: message_id,
                                status: summary.status.unwrap_or(SendStatus::Queued),
                                status_reason: summary.status_reason,
                            },
                        ),
                        Ok(None) => storage_failed(&SqlError::new("a sent message vanished")),
                        Err(error) => storage_failed(&error),
                    },
                    Err(error) => storage_failed(&error),
                }
            }
        }
    }

    /// The Durable Object alarm: runs the jobs that are due, then sets the
    /// alarm for the next. An `Err` makes the platform retry the alarm.
    pub async fn alarm<P: Platform>(&self, sql: &dyn Sql, platform: &P) -> Result<(), String> {
        let now = platform.now();
        self.migrate(sql, now).map_err(|e| e.to_string())?;
        let jobs = jobs::claim_due(sql, now, ALARM_BATCH).map_err(|e| e.to_string())?;
        let runs = jobs.into_iter().map(|job| self.run_job(sql, platform, job));
        for outcome in futures_util::future::join_all(runs).await {
            if let Err(error) = outcome {
                // The job keeps its lease and runs again when it ends.
                log::error!("inbox storage error while running a job: {error}");
            }
        }
        self.set_alarm(sql, platform).await;
        Ok(())
    }

    fn migrate(&self, sql: &dyn Sql, now: Timestamp) -> Result<(), MigrateError> {
        if !self.migrated.load(Ordering::Acquire) {
            let report = schema::migrate(sql, self.migrations, now.millis())?;
            if !report.applied.is_empty() {
                log::info!(
                    "inbox schema migrated to {} (applied {:?})",
                    report.version,
                    report.applied
                );
            }
            self.migrated.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Sets the alarm to when the next job becomes runnable, if one is pending.
    async fn set_alarm<P: Platform>(&self, sql: &dyn Sql, platform: &P) {
        match jobs::next_wake(sql) {
            Ok(Some(at)) => {
                if let Err(error) = platform.set_alarm(at).await {
                    log::error!("setting the inbox alarm failed: {error}");
                }
            }
            Ok(None) => {}
            Err(error) => log::error!("inbox storage error while planning the alarm: {error}"),
        }
    }

    fn dispatch(
        &self,
        sql: &dyn Sql,
        request: InboxRequest,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<Step, SqlError> {
        match request {
            InboxRequest::Claim { handle, key_hash } => {
                claim(sql, &handle, &key_hash, now).map(Step::reply)
            }
            InboxRequest::Confirm { key_hash } => confirm(sql, &key_hash).map(Step::reply),
            InboxRequest::Release { key_hash } => release(sql, &key_hash).map(Step::reply),
            InboxRequest::Ingest {
                envelope_from,
                recipient,
                tag,
            } => {
                let cap = self.config.max_inbox_bytes;
                let (reply, wake) =
                    ingest(sql, &envelope_from, &recipient, tag, payload, now, cap)?;
                Ok(Step::Reply { reply, wake })
            }
            InboxRequest::Throttle {
                limit,
                window_millis,
            } => throttle(sql, limit, window_millis, now).map(Step::reply),
            InboxRequest::Ping => {
                sql.exec("SELECT count(*) FROM schema_migrations", &[])?;
                Ok(Step::reply(Reply::no_content()))
            }
            InboxRequest::Api {
                key_hash,
                mail_domain,
                call,
            } => {
                // The DO is the authority: a stale or forged KV entry can route a
                // request here, but only the stored hash grants access.
                let Some(owner) = load_owner(sql)?.filter(|o| o.active && o.key_hash == key_hash)
                else {
                    return Ok(Step::reply(Reply::error(&ApiError::unauthorized())));
                };
                self.api(sql, &owner, &mail_domain, call, now)
            }
        }
    }

    fn api(
        &self,
        sql: &dyn Sql,
        owner: &Owner,
        mail_domain: &str,
        call: ApiCall,
        now: Timestamp,
    ) -> Result<Step, SqlError> {
        let reply = match call {
            ApiCall::Me => me(sql, owner, mail_domain)?,
            ApiCall::ListMessages {
                limit,
                cursor,
                since,
                unread,
            } => {
                let (messages, next_cursor) = store::list(sql, limit, cursor, since, unread)?;
                Reply::json(
                    200,
                    &MessageList {
                        messages,
                        next_cursor,
                    },
                )
            }
            ApiCall::GetMessage { id } => {
                match (store::summary(sql, id)?, store::detail(sql, id)?) {
                    (Some(summary), Some(detail)) => Reply::json(200, &Message { summary, detail }),
                    _ => no_such_message(id),
                }
            }
            ApiCall::MarkRead { id, read } => match store::set_read(sql, id, read)? {
                Some(summary) => Reply::json(200, &summary),
                None => no_such_message(id),
            },
            ApiCall::GetRaw { id } => match store::raw(sql, id)? {
                Some(raw) => Reply {
                    status: 200,
                    headers: vec![
                        ("content-type".to_owned(), "message/rfc822".to_owned()),
                        (
                            "content-disposition".to_owned(),
                            format!("attachment; filename=\"message-{id}.eml\""),
                        ),
                    ],
                    body: raw,
                },
                None => no_such_message(id),
            },
            ApiCall::Send {
                to,
                subject,
                text,
                html,
                route,
            } => {
                let from = owner.handle.address(mail_domain);
                let fields = SendFields {
                    subject,
                    text,
                    html,
                    message_id: String::new(),
                };
                return self.begin_send(sql, owner, &from, &to, fields, route, now);
            }
            ApiCall::PutWebhook {
                url,
                secret,
                allow_http_loopback,
            } => {
                let webhook = Webhook {
                    url,
                    secret,
                    allow_http_loopback,
                    created_at: now,
                };
                jobs::put_webhook(sql, &webhook)?;
                Reply::json(
                    200,
                    &WebhookCreated {
                        url: webhook.url,
                        secret: webhook.secret,
                        created_at: webhook.created_at,
                    },
                )
            }
            ApiCall::GetWebhook => match jobs::load_webhook(sql)? {
                Some(webhook) => Reply::json(
                    200,
                    &WebhookInfo {
                        url: webhook.url,
                        created_at: webhook.created_at,
                    },
                ),
                None => Reply::error(&ApiError::not_found("This inbox has no webhook.")),
            },
            ApiCall::DeleteWebhook => {
                jobs::delete_webhook(sql)?;
                Reply::no_content()
            }
            ApiCall::ListDeliveries => Reply::json(
                200,
                &WebhookDeliveryList {
                    deliveries: jobs::attempts(sql)?,
                },
            ),
        };
        Ok(Step::reply(reply))
    }

    /// The synchronous half of a send: checks the relay and the rate limit,
    /// builds the message, and stores it (status `queued`) with its claimed
    /// job in one transaction.
    #[allow(clippy::too_many_arguments)]
    fn begin_send(
        &self,
        sql: &dyn Sql,
        owner: &Owner,
        from: &str,
        to: &str,
        mut fields: SendFields,
        route: SendRoute,
        now: Timestamp,
    ) -> Result<Step, SqlError> {
        if route == SendRoute::Relay && self.config.relay == Relay::None {
            return Ok(Step::reply(Reply::error(&ApiError::new(
                ErrorCode::NotConfigured,
                "This deployment has no mail relay for outside addresses: configure the \
                 send_email binding or RESEND_API_KEY. Mail to inboxes of this deployment \
                 is delivered directly.",
            ))));
        }
        if let Some(retry_after) = send_rate_limit(sql, now)? {
            return Ok(Step::reply(
                Reply::error(&ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "Too many sends: an inbox may send {SENDS_PER_MINUTE} messages a minute \
                         and {SENDS_PER_HOUR} an hour. Retry in {retry_after} s."
                    ),
                ))
                .with_header("retry-after", retry_after.to_string()),
            ));
        }
        let last_id = store::last_id(sql)?;
        let draft = Draft {
            from,
            to,
            subject: fields.subject.as_deref(),
            text: fields.text.as_deref(),
            html: fields.html.as_deref(),
            date: now,
        };
        // Unique to this send: no two sends share a time and a last id.
        let built = outbound::build(&draft, &format!("{}:{last_id}", now.millis()));
        let cap = self.config.max_inbox_bytes;
        if owner.stored_bytes.saturating_add(built.raw.len() as u64) > cap {
            return Ok(Step::reply(Reply::error(&storage_full(cap))));
        }
        fields.message_id = built.message_id.clone();
        let message = NewMessage {
            direction: Direction::Outbound,
            to,
            received_at: now,
            raw: &built.raw,
            raw_sha256: None,
            send_status: Some(SendStatus::Queued),
            parsed: parse_mail(&built.raw, from, None),
        };
        let mut job_id = None;
        let message_id = store::insert(sql, &message, &mut |id, _| {
            job_id = Some(jobs::queue_send(sql, id, &route, &fields, now)?);
            Ok(())
        })?;
        let job_id = job_id.ok_or_else(|| SqlError::new("the send job was not queued"))?;
        Ok(Step::Send {
            job_id,
            message_id,
            route,
            fields,
        })
    }

    /// Runs one claimed job to its next state. An `Err` is a storage failure:
    /// the job keeps its lease and is retried when the lease ends.
    async fn run_job<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        job: Job,
    ) -> Result<(), SqlError> {
        match job {
            Job::Webhook {
                id,
                message_id,
                event,
                event_id,
                body,
                attempts,
            } => {
                let Some(webhook) = jobs::load_webhook(sql)? else {
                    // Removed since the event was queued.
                    return jobs::delete_job(sql, id);
                };
                let started = platform.now();
                let attempt = deliver(platform, &webhook, event, &event_id, &body, started).await;
                let now = platform.now();
                let record = WebhookDelivery {
                    event_id,
                    event,
                    message_id,
                    attempt: attempts,
                    at: started,
                    status_code: None,
                    error: None,
                    duration_ms: u64::try_from(now.millis() - started.millis()).unwrap_or(0),
                    next_attempt_at: None,
                };
                self.finish_delivery(sql, id, &webhook.url, attempt, record, now)
            }
            Job::Send {
                id,
                message_id,
                route,
                fields,
                attempts,
            } => {
                self.send(sql, platform, id, message_id, route, fields, attempts)
                    .await
            }
        }
    }

    fn finish_delivery(
        &self,
        sql: &dyn Sql,
        job_id: i64,
        url: &str,
        attempt: Attempt,
        record: WebhookDelivery,
        now: Timestamp,
    ) -> Result<(), SqlError> {
        let attempts = record.attempt;
        sql.transaction(&mut || {
            let mut record = record.clone();
            match &attempt {
                Attempt::Answered(status) if (200..300).contains(status) => {
                    record.status_code = Some(*status);
                    jobs::delete_job(sql, job_id)?;
                }
                Attempt::Answered(410) => {
                    record.status_code = Some(410);
                    record.error = Some(
                        "The receiver answered 410 Gone, so the webhook was removed.".to_owned(),
                    );
                    if !jobs::delete_webhook_in_transaction(sql, Some(url))? {
                        jobs::delete_job(sql, job_id)?;
                    }
                }
                Attempt::Refused(why) => {
                    record.error = Some(format!("The webhook URL is refused: {why}. Not retried."));
                    jobs::delete_job(sql, job_id)?;
                }
                Attempt::Answered(_) | Attempt::NoAnswer(_) => {
                    let mut error = match &attempt {
                        Attempt::Answered(status) => {
                            record.status_code = Some(*status);
                            format!("The receiver answered HTTP {status}.")
                        }
                        Attempt::NoAnswer(why) => why.clone(),
                        Attempt::Refused(why) => why.clone(),
                    };
                    match self.config.retry_seconds.get(attempts as usize) {
                        Some(seconds) => {
                            let next = now.plus_millis(i64::try_from(*seconds).unwrap_or(0) * 1000);
                            record.next_attempt_at = Some(next);
                            jobs::reschedule_job(sql, job_id, next)?;
                        }
                        None => {
                            error.push_str(&format!(" Gave up after {attempts} attempts."));
                            jobs::delete_job(sql, job_id)?;
                        }
                    }
                    record.error = Some(error);
                }
            }
            jobs::record_attempt(sql, &record)
        })
    }

    /// One attempt at a send: hand the message over, then record what became
    /// of it (and queue `message.sent`) with the job's removal, atomically.
    #[allow(clippy::too_many_arguments)]
    async fn send<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        job_id: i64,
        message_id: u64,
        route: SendRoute,
        fields: SendFields,
        attempts: u32,
    ) -> Result<(), SqlError> {
        let summary = match store::summary(sql, message_id)? {
            Some(summary) if summary.status == Some(SendStatus::Queued) => summary,
            // Gone, or already settled by an earlier attempt.
            _ => return jobs::delete_job(sql, job_id),
        };
        let outcome = if attempts > jobs::MAX_SEND_ATTEMPTS {
            Err(format!(
                "The send was interrupted {} times and was not attempted again.",
                attempts - 1
            ))
        } else {
            let raw = store::raw(sql, message_id)?.unwrap_or_default();
            self.hand_over(
                sql,
                platform,
                &summary.from,
                &summary.to,
                &raw,
                &route,
                &fields,
            )
            .await
        };
        let now = platform.now();
        let owner = load_owner(sql)?;
        sql.transaction(&mut || {
            let (status, reason) = match &outcome {
                Ok(()) => (SendStatus::Sent, None),
                Err(reason) => (SendStatus::Failed, Some(reason.as_str())),
            };
            store::set_send_status(sql, message_id, status, reason)?;
            if status == SendStatus::Sent
                && let Some(owner) = &owner
            {
                jobs::queue_event(
                    sql,
                    &owner.handle,
                    &EventFacts {
                        event: WebhookEventKind::Sent,
                        message_id,
                        from: &summary.from,
                        to: &summary.to,
                        subject: summary.subject.as_deref(),
                        at: summary.received_at,
                    },
                    now,
                )?;
            }
            jobs::delete_job(sql, job_id)
        })
    }

    /// Hands a stored outbound message to its route. `Err` is the reason it
    /// failed, for the message's `statusReason`.
    #[allow(clippy::too_many_arguments)]
    async fn hand_over<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        from: &str,
        to: &str,
        raw: &[u8],
        route: &SendRoute,
        fields: &SendFields,
    ) -> Result<(), String> {
        match route {
            SendRoute::Direct {
                handle,
                object_id,
                tag,
            } => {
                let own = load_owner(sql)
                    .map_err(|e| format!("Storage failed: {e}"))?
                    .map(|o| o.handle);
                let reply = if own.as_ref() == Some(handle) {
                    // To oneself: calling one's own object would wait on itself.
                    let cap = self.config.max_inbox_bytes;
                    ingest(sql, from, to, tag.clone(), raw, platform.now(), cap)
                        .map(|(reply, _)| reply)
                        .map_err(|e| format!("Storage failed: {e}"))?
                } else {
                    let request = InboxRequest::Ingest {
                        envelope_from: from.to_owned(),
                        recipient: to.to_owned(),
                        tag: tag.clone(),
                    };
                    platform
                        .call_inbox(object_id, &request, raw)
                        .await
                        .map_err(|e| format!("The recipient's inbox could not be reached: {e}"))?
                };
                match reply.status {
                    200 | 201 => Ok(()),
                    404 => Err(format!("There is no inbox {to} on this deployment.")),
                    413 => {
                        Err("The recipient's inbox refused the message as too large.".to_owned())
                    }
                    status => Err(format!("The recipient's inbox answered {status}.")),
                }
            }
            SendRoute::Relay => match &self.config.relay {
                Relay::None => Err("No relay is configured for outside addresses.".to_owned()),
                Relay::SendEmail => platform
                    .send_email(from, to, raw)
                    .await
                    .map_err(|e| format!("The send_email binding refused the message: {e}")),
                Relay::Http { api_key, url } => {
                    let draft = Draft {
                        from,
                        to,
                        subject: fields.subject.as_deref(),
                        text: fields.text.as_deref(),
                        html: fields.html.as_deref(),
                        date: platform.now(),
                    };
                    let call = outbound::relay_call(&draft, &fields.message_id, url, api_key);
                    match platform.http(&call).await {
                        Ok(answer) => outbound::relay_outcome(&answer),
                        Err(why) => Err(format!("The relay could not be reached: {why}")),
                    }
                }
            },
        }
    }
}

/// POSTs one event, signed both ways.
async fn deliver<P: Platform>(
    platform: &P,
    webhook: &Webhook,
    event: WebhookEventKind,
    event_id: &str,
    body: &str,
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
    let signed = secret.sign(event_id, now.millis().div_euclid(1000), body.as_bytes());
    let call = crate::ports::HttpCall {
        url: webhook.url.clone(),
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), outbound::user_agent()),
            ("x-inboxkit-event".to_owned(), event.as_str().to_owned()),
            ("x-inboxkit-signature".to_owned(), signed.inboxkit),
            ("webhook-id".to_owned(), signed.webhook_id),
            ("webhook-timestamp".to_owned(), signed.webhook_timestamp),
            ("webhook-signature".to_owned(), signed.webhook_signature),
        ],
        body: body.as_bytes().to_vec(),
        timeout_millis: WEBHOOK_TIMEOUT_MILLIS,
    };
    match platform.http(&call).await {
        Ok(answer) => Attempt::Answered(answer.status),
        Err(why) => Attempt::NoAnswer(why),
    }
}

/// Seconds until another send is allowed, when one is not.
fn send_rate_limit(sql: &dyn Sql, now: Timestamp) -> Result<Option<u64>, SqlError> {
    for (window, max) in [(60_000, SENDS_PER_MINUTE), (3_600_000, SENDS_PER_HOUR)] {
        let (count, oldest) = store::outbound_since(sql, now.plus_millis(-window))?;
        if count >= max {
            let frees_at = oldest.map_or(now.millis() + window, |t| t.millis() + window);
            let wait = (frees_at - now.millis()).max(1);
            return Ok(Some(u64::try_from(wait).unwrap_or(1).div_ceil(1000)));
        }
    }
    Ok(None)
}

fn storage_full(cap: u64) -> ApiError {
    ApiError::new(
        ErrorCode::StorageFull,
        format!("This inbox is full: it holds at most {cap} bytes of mail."),
    )
}

/// Takes a token from this object's bucket (see [`InboxRequest::Throttle`]).
fn throttle(
    sql: &dyn Sql,
    limit: u32,
    window_millis: i64,
    now: Timestamp,
) -> Result<Reply, SqlError> {
    const ONE: i64 = 1000;
    let capacity = i64::from(limit.max(1)) * ONE;
    let window = window_millis.max(1);
    let rows = sql.exec(
        "SELECT milli_tokens, updated_at FROM throttle WHERE id = 1",
        &[],
    )?;
    let tokens = match rows.single()? {
        Some(row) => {
            let held = row.first().and_then(Value::as_i64).unwrap_or(capacity);
            let at = row.get(1).and_then(Value::as_i64).unwrap_or(now.millis());
            let elapsed = (now.millis() - at).max(0);
            // i128: a long-idle bucket must not overflow on its way to full.
            let refill = i128::from(elapsed) * i128::from(capacity) / i128::from(window);
            i64::try_from((i128::from(held) + refill).min(i128::from(capacity))).unwrap_or(capacity)
        }
        None => capacity,
    };
    if tokens >= ONE {
        sql.exec(
            "INSERT OR REPLACE INTO throttle (id, milli_tokens, updated_at) VALUES (1, ?, ?)",
            &[Value::Integer(tokens - ONE), Value::Integer(now.millis())],
        )?;
        return Ok(Reply::no_content());
    }
    let wait_millis = ((ONE - tokens) * window + capacity - 1) / capacity;
    let seconds = u64::try_from(wait_millis)
        .unwrap_or(1)
        .div_ceil(1000)
        .max(1);
    Ok(Reply::error(&ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "Too many requests from here: {limit} per {} s. Retry in {seconds} s.",
            window / 1000
        ),
    ))
    .with_header("retry-after", seconds.to_string()))
}

fn storage_failed(error: &SqlError) -> Reply {
    log::error!("inbox storage error: {error}");
    Reply::error(&ApiError::internal())
}

fn no_such_message(id: u64) -> Reply {
    Reply::error(&ApiError::not_found(format!(
        "There is no message {id} in this inbox."
    )))
}

/// Stores an inbound message: once, whole, atomically, with its
/// `message.received` event when the inbox has a webhook. The flag says
/// whether an event was queued.
fn ingest(
    sql: &dyn Sql,
    envelope_from: &str,
    recipient: &str,
    tag: Option<String>,
    raw: &[u8],
    now: Timestamp,
    max_inbox_bytes: u64,
) -> Result<(Reply, bool), SqlError> {
    let Some(owner) = load_owner(sql)?.filter(|o| o.active) else {
        return Ok((
            Reply::error(&ApiError::not_found("No such mailbox here.")),
            false,
        ));
    };
    if raw.len() as u64 > MAX_MESSAGE_BYTES {
        return Ok((
            Reply::error(&ApiError::new(
                ErrorCode::TooLarge,
                format!("Message too large: the limit is {MAX_MESSAGE_BYTES} bytes (25 MiB)."),
            )),
            false,
        ));
    }
    let raw_sha256 = sha256_hex(raw);
    if let Some(id) = store::find_by_raw(sql, &raw_sha256)? {
        let ingested = Ingested {
            id,
            duplicate: true,
        };
        return Ok((Reply::json(200, &ingested), false));
    }
    if owner.stored_bytes.saturating_add(raw.len() as u64) > max_inbox_bytes {
        return Ok((Reply::error(&storage_full(max_inbox_bytes)), false));
    }
    let parsed = parse_mail(raw, envelope_from, tag);
    let mut queued = false;
    let message = NewMessage {
        direction: Direction::Inbound,
        to: recipient,
        received_at: now,
        raw,
        raw_sha256: Some(raw_sha256),
        send_status: None,
        parsed,
    };
    let id = store::insert(sql, &message, &mut |id, at| {
        queued = jobs::queue_event(
            sql,
            &owner.handle,
            &EventFacts {
                event: WebhookEventKind::Received,
                message_id: id,
                from: &message.parsed.from,
                to: recipient,
                subject: message.parsed.subject.as_deref(),
                at,
            },
            now,
        )?;
        Ok(())
    })?;
    let ingested = Ingested {
        id,
        duplicate: false,
    };
    Ok((Reply::json(201, &ingested), queued))
}

fn migration_failed(error: &MigrateError) -> Reply {
    log::error!("inbox schema migration failed: {error}");
    Reply::error(&ApiError::unavailable(
        "This inbox is being upgraded and cannot serve requests right now. Retry shortly.",
    ))
}

fn load_owner(sql: &dyn Sql) -> Result<Option<Owner>, SqlError> {
    let rows = sql.exec(
        "SELECT handle, key_hash, state, claimed_at, created_at, stored_bytes FROM inbox WHERE id = 1",
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
        stored_bytes: u64::try_from(int(5)?).unwrap_or(0),
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
