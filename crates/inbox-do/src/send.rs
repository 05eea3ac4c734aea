//! Sending: the synchronous start of a send (checks, building the message,
//! storing it `queued` with its claimed job) and each attempt to hand it
//! over: to another inbox of this deployment, to the `send_email` binding or
//! to the HTTP relay.
//!
//! A hand-over is bounded by [`HANDOVER_TIMEOUT_MILLIS`], below the job's
//! lease, so an attempt never outlasts its lease (which would let the alarm
//! send the mail a second time). Whatever happens, the outcome is recorded on
//! the message (`sent`, or `failed` with a reason) with the job's removal and
//! the `message.sent` event, atomically.

use crate::api::Outcome;
use crate::error::InboxError;
use crate::ingest::{self, Inbound, storage_full};
use crate::jobs::{self, HANDOVER_TIMEOUT_MILLIS, SendFields, SendJob};
use crate::mail::parse_mail;
use crate::outbound::{self, Draft};
use crate::owner::{Owner, load_owner};
use crate::ports::{InboxConfig, Platform, Relay};
use crate::store::{self, NewMessage};
use crate::webhook::{self, EventFacts};
use futures_util::future::{Either, select};
use protocol::api::{Direction, SendResponse, SendStatus, WebhookEventKind};
use protocol::limits::{SENDS_PER_HOUR, SENDS_PER_MINUTE};
use protocol::wire::{InboxRequest, SendRoute};
use protocol::{ApiError, ErrorCode, Handle, Reply, Timestamp};
use schema::{Sql, SqlError};
use std::future::Future;
use std::pin::pin;

/// A send as the API call asks for it.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) subject: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
    pub(crate) route: SendRoute,
}

/// A send stored with its job claimed for the first attempt, which the
/// request runs at once.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub(crate) job: SendJob,
}

/// The synchronous half of a send: checks the relay and the rate limit,
/// builds the message, and stores it (status `queued`) with its claimed job
/// in one transaction. A message that cannot be built is stored `failed`,
/// with the reason, and not attempted.
pub(crate) fn begin(
    sql: &dyn Sql,
    config: &InboxConfig,
    owner: &Owner,
    outgoing: Outgoing,
    now: Timestamp,
) -> Result<Outcome, InboxError> {
    if outgoing.route == SendRoute::Relay && config.relay == Relay::None {
        return Err(ApiError::new(
            ErrorCode::NotConfigured,
            "This deployment has no mail relay for outside addresses: configure the \
             send_email binding or RESEND_API_KEY. Mail to inboxes of this deployment \
             is delivered directly.",
        )
        .into());
    }
    if let Some(retry_after) = rate_limit(sql, now)? {
        return Err(InboxError::from(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "Too many sends: an inbox may send {SENDS_PER_MINUTE} messages a minute \
                 and {SENDS_PER_HOUR} an hour. Retry in {retry_after} s."
            ),
        ))
        .with_header("retry-after", retry_after.to_string()));
    }
    let Outgoing {
        from,
        to,
        subject,
        text,
        html,
        route,
    } = outgoing;
    let last_id = store::last_id(sql)?;
    let draft = Draft {
        from: &from,
        to: &to,
        subject: subject.as_deref(),
        text: text.as_deref(),
        html: html.as_deref(),
        date: now,
    };
    // Unique to this send: no two sends share a time and a last id.
    let built = outbound::build(&draft, &format!("{}:{last_id}", now.millis()));
    let (raw, message_id, failure) = match built {
        Ok(built) => (built.raw, built.message_id, None),
        Err(why) => (Vec::new(), String::new(), Some(why)),
    };
    let cap = config.max_inbox_bytes;
    if owner.stored_bytes.saturating_add(raw.len() as u64) > cap {
        return Err(storage_full(cap).into());
    }
    let fields = SendFields {
        subject,
        text,
        html,
        message_id,
    };
    let mut parsed = parse_mail(&raw, &from, None);
    if failure.is_some() {
        // Nothing was built to read the subject back from.
        parsed.subject = fields.subject.clone();
    }
    let message = NewMessage {
        direction: Direction::Outbound,
        to: &to,
        received_at: now,
        raw: &raw,
        raw_sha256: None,
        send_status: Some(if failure.is_some() {
            SendStatus::Failed
        } else {
            SendStatus::Queued
        }),
        parsed,
    };
    let mut job_id = None;
    let message_id = store::insert(sql, &message, &mut |id, _| {
        match &failure {
            Some(why) => {
                store::set_send_status(sql, id, SendStatus::Failed, Some(why))?;
            }
            None => job_id = Some(jobs::queue_send(sql, id, &route, &fields, now)?),
        }
        Ok(())
    })?;
    let Some(job_id) = job_id else {
        log::error!("an outbound message could not be built; it was stored as failed");
        return Ok(Outcome::Reply(Reply::json(
            201,
            &SendResponse {
                id: message_id,
                status: SendStatus::Failed,
                status_reason: failure,
            },
        )));
    };
    Ok(Outcome::Send(Started {
        job: SendJob {
            id: job_id,
            message_id,
            route,
            fields,
            attempts: 1,
        },
    }))
}

/// The reply to a send whose first attempt has run: what became of it.
pub(crate) fn outcome_reply(sql: &dyn Sql, message_id: u64) -> Result<Reply, InboxError> {
    match store::summary(sql, message_id)? {
        Some(summary) => Ok(Reply::json(
            201,
            &SendResponse {
                id: message_id,
                status: summary.status.unwrap_or(SendStatus::Queued),
                status_reason: summary.status_reason,
            },
        )),
        None => Err(SqlError::new("a sent message vanished").into()),
    }
}

/// One attempt at a send: hand the message over, then record what became
/// of it (and queue `message.sent`) with the job's removal, atomically. An
/// `Err` is a storage failure: the job keeps its lease and is retried when
/// the lease ends.
pub(crate) async fn attempt<P: Platform>(
    sql: &dyn Sql,
    platform: &P,
    config: &InboxConfig,
    job: SendJob,
) -> Result<(), SqlError> {
    let summary = match store::summary(sql, job.message_id)? {
        Some(summary) if summary.status == Some(SendStatus::Queued) => summary,
        // Gone, or already settled by an earlier attempt.
        _ => return jobs::delete_job(sql, job.id),
    };
    // Read once, before the hand-over: it needs the own handle (a send to
    // oneself) and so does the `message.sent` event after it.
    let owner = load_owner(sql)?;
    let outcome = if job.attempts > jobs::MAX_SEND_ATTEMPTS {
        Err(format!(
            "The send was interrupted {} times and was not attempted again.",
            job.attempts - 1
        ))
    } else {
        match store::raw(sql, job.message_id)? {
            Some(raw) => {
                let handover = Handover {
                    own: owner.as_ref().map(|o| &o.handle),
                    from: &summary.from,
                    to: &summary.to,
                    raw: &raw,
                    route: &job.route,
                    fields: &job.fields,
                };
                hand_over(sql, platform, config, &handover).await
            }
            None => Err("The stored message is missing, so it was not sent.".to_owned()),
        }
    };
    let now = platform.now();
    sql.transaction(&mut || {
        let (status, reason) = match &outcome {
            Ok(()) => (SendStatus::Sent, None),
            Err(reason) => (SendStatus::Failed, Some(reason.as_str())),
        };
        // Settled only if still queued: an attempt that outlived its lease
        // may race the alarm's, and only the first to finish records its
        // outcome and its `message.sent`.
        let settled = store::set_send_status(sql, job.message_id, status, reason)?.is_some();
        if settled
            && status == SendStatus::Sent
            && let Some(owner) = &owner
        {
            webhook::queue_event(
                sql,
                &owner.handle,
                &EventFacts {
                    event: WebhookEventKind::Sent,
                    message_id: job.message_id,
                    from: &summary.from,
                    to: &summary.to,
                    subject: summary.subject.as_deref(),
                    at: summary.received_at,
                },
                now,
            )?;
        }
        jobs::delete_job(sql, job.id)
    })
}

/// A stored outbound message, ready to hand over.
struct Handover<'a> {
    /// This inbox's handle, when it has an owner.
    own: Option<&'a Handle>,
    from: &'a str,
    to: &'a str,
    raw: &'a [u8],
    route: &'a SendRoute,
    fields: &'a SendFields,
}

/// Hands a stored outbound message to its route. `Err` is the reason it
/// failed, for the message's `statusReason`.
async fn hand_over<P: Platform>(
    sql: &dyn Sql,
    platform: &P,
    config: &InboxConfig,
    handover: &Handover<'_>,
) -> Result<(), String> {
    let Handover {
        own,
        from,
        to,
        raw,
        route,
        fields,
    } = *handover;
    match route {
        SendRoute::Direct {
            handle,
            object_id,
            tag,
        } => {
            let status = if own == Some(handle) {
                // To oneself: calling one's own object would wait on itself.
                let mail = Inbound {
                    envelope_from: from,
                    recipient: to,
                    tag: tag.as_deref(),
                    raw,
                };
                match ingest::ingest(sql, config, mail, platform.now()) {
                    Ok(stored) => stored.reply.status,
                    Err(InboxError::Refused { error, .. }) => error.status(),
                    Err(other) => return Err(format!("Storage failed: {other}")),
                }
            } else {
                let request = InboxRequest::Ingest {
                    envelope_from: from.to_owned(),
                    recipient: to.to_owned(),
                    tag: tag.clone(),
                };
                let call = platform.call_inbox(object_id, &request, raw);
                match bounded(platform, call).await {
                    Ok(Ok(reply)) => reply.status,
                    Ok(Err(e)) => {
                        return Err(format!("The recipient's inbox could not be reached: {e}"));
                    }
                    Err(TimedOut) => {
                        return Err(format!(
                            "The recipient's inbox did not answer within {} s.",
                            HANDOVER_TIMEOUT_MILLIS / 1000
                        ));
                    }
                }
            };
            match status {
                200 | 201 => Ok(()),
                404 => Err(format!("There is no inbox {to} on this deployment.")),
                413 => Err("The recipient's inbox refused the message as too large.".to_owned()),
                status => Err(format!("The recipient's inbox answered {status}.")),
            }
        }
        SendRoute::Relay => match &config.relay {
            Relay::None => Err("No relay is configured for outside addresses.".to_owned()),
            Relay::SendEmail => match bounded(platform, platform.send_email(from, to, raw)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("The send_email binding refused the message: {e}")),
                Err(TimedOut) => Err(format!(
                    "The send_email binding did not answer within {} s; the message may \
                     have been sent.",
                    HANDOVER_TIMEOUT_MILLIS / 1000
                )),
            },
            Relay::Http { api_key, url } => {
                let draft = Draft {
                    from,
                    to,
                    subject: fields.subject.as_deref(),
                    text: fields.text.as_deref(),
                    html: fields.html.as_deref(),
                    date: platform.now(),
                };
                let call = outbound::relay_call(&draft, &fields.message_id, url, api_key)?;
                match platform.http(&call).await {
                    Ok(answer) => outbound::relay_outcome(&answer),
                    Err(why) => Err(format!("The relay could not be reached: {why}")),
                }
            }
        },
    }
}

/// The hand-over took longer than [`HANDOVER_TIMEOUT_MILLIS`].
struct TimedOut;

/// Runs `work` for at most [`HANDOVER_TIMEOUT_MILLIS`] of the platform's time.
async fn bounded<P: Platform, T>(
    platform: &P,
    work: impl Future<Output = T>,
) -> Result<T, TimedOut> {
    let work = pin!(work);
    let timer = pin!(platform.sleep(HANDOVER_TIMEOUT_MILLIS));
    match select(work, timer).await {
        Either::Left((done, _)) => Ok(done),
        Either::Right(((), _)) => Err(TimedOut),
    }
}

/// Seconds until another send is allowed, when one is not.
fn rate_limit(sql: &dyn Sql, now: Timestamp) -> Result<Option<u64>, SqlError> {
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
