//! Sending: the synchronous start of a send (checks, building the message,
//! storing it `queued` with its recipients and its claimed jobs) and each
//! attempt to hand it over: to another inbox of this deployment, to the
//! `send_email` binding or to the HTTP relay.
//!
//! A message's recipients are split into jobs: one per recipient delivered
//! directly (an inbox here), and one for all of those the relay takes (in one
//! call to the HTTP relay; one `send_email` call each, as the binding takes
//! one envelope recipient). A job settles only its own recipients' rows in
//! `message_recipients`, each only while it is still `queued`, and in the same
//! transaction the message's status is recomputed from all its rows: `queued`
//! while any is, then `sent` when at least one recipient got it (with a
//! `statusReason` counting the failures, if any) or `failed` when none did.
//! The message leaves `queued` once, so its `message.sent` event is queued
//! once. A job written before recipients had rows (no `recipients` in its
//! route) is the message's one recipient, `to_addr`, and settles the message
//! itself, as it always did.
//!
//! A hand-over is bounded by [`HANDOVER_TIMEOUT_MILLIS`], below the job's
//! lease, and the calls of one job run together, so an attempt never outlasts
//! its lease (which would let the alarm send the mail a second time).
//! Whatever happens, the outcome is recorded (`sent`, or `failed` with a
//! reason) with the job's removal, atomically.

use crate::api::Outcome;
use crate::attachments;
use crate::error::InboxError;
use crate::idempotency::{self, Idempotent};
use crate::ingest::{self, Inbound, storage_full};
use crate::jobs::{self, HANDOVER_TIMEOUT_MILLIS, SendFields, SendJob};
use crate::live::Hub;
use crate::mail::parse_mail;
use crate::outbound::{self, Draft, OutAttachment, RelayRecipients};
use crate::owner::{Owner, load_owner};
use crate::ports::{InboxConfig, Platform, Relay};
use crate::store::{self, NewMessage, RecipientRow};
use crate::webhook::{self, EventFacts};
use futures_util::future::{Either, join_all, select};
use protocol::api::{
    Direction, LiveEvent, MessageSummary, RecipientKind, SendResponse, SendStatus, WebhookEventKind,
};
use protocol::limits::{
    HTTP_RELAY_MAX_BYTES, MAX_MESSAGE_BYTES, RECIPIENTS_PER_HOUR, SEND_EMAIL_MAX_BYTES,
    SENDS_PER_HOUR, SENDS_PER_MINUTE,
};
use protocol::wire::{InboxRequest, RoutedRecipient, SendRoute, WireAttachment};
use protocol::{ApiError, ErrorCode, Handle, Reply, Timestamp};
use schema::{Sql, SqlError};
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;

/// A send as the API call asks for it.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) from: String,
    /// The first `to` recipient: the message's `to` in listings.
    pub(crate) to: String,
    /// Every recipient with its route, `to` first; never empty.
    pub(crate) recipients: Vec<RoutedRecipient>,
    pub(crate) reply_to: Vec<String>,
    /// The Message-ID this message answers, without brackets.
    pub(crate) in_reply_to: Option<String>,
    /// The References ids, without brackets, oldest first.
    pub(crate) references: Vec<String>,
    pub(crate) subject: Option<String>,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
    /// The thread it must join (a reply's: its original's), whatever its
    /// headers say.
    pub(crate) thread: Option<u64>,
    /// The files it carries.
    pub(crate) attachments: Vec<OutFile>,
}

/// A file an outbound message carries: sent with it (from the request's
/// payload), or re-attached from a forwarded original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutFile {
    pub(crate) filename: String,
    /// `type/subtype`, lowercase.
    pub(crate) content_type: String,
    pub(crate) content_id: Option<String>,
    pub(crate) inline: bool,
    pub(crate) content: Vec<u8>,
}

impl OutFile {
    fn attached(&self) -> OutAttachment<'_> {
        OutAttachment {
            filename: &self.filename,
            content_type: &self.content_type,
            content_id: self.content_id.as_deref(),
            inline: self.inline,
            content: &self.content,
        }
    }
}

/// The files a send's payload carries, as `files` describes them (the
/// router put their bytes one after the other).
pub(crate) fn files_from(
    files: Vec<WireAttachment>,
    payload: &[u8],
) -> Result<Vec<OutFile>, InboxError> {
    let mut rest = payload;
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let size = usize::try_from(file.size).unwrap_or(usize::MAX);
        if size > rest.len() {
            return Err(InboxError::Unreadable(
                "the attachments' sizes exceed the payload".to_owned(),
            ));
        }
        let (content, after) = rest.split_at(size);
        rest = after;
        out.push(OutFile {
            filename: file.filename,
            content_type: file.content_type,
            content_id: file.content_id,
            inline: file.inline,
            content: content.to_vec(),
        });
    }
    if !rest.is_empty() {
        return Err(InboxError::Unreadable(
            "the payload holds more than the attachments".to_owned(),
        ));
    }
    Ok(out)
}

/// A send stored with its jobs claimed for their first attempts, which the
/// request runs at once.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub(crate) message_id: u64,
    pub(crate) jobs: Vec<SendJob>,
    /// The send's Idempotency-Key, whose answer is kept once its first
    /// attempts have run.
    pub(crate) idempotency_key: Option<String>,
}

/// The synchronous half of a send: checks the relay and the rate limits,
/// builds the message, and stores it (status `queued`) with its recipients
/// and its claimed jobs in one transaction. A message that cannot be built is
/// stored `failed`, with the reason, and not attempted.
pub(crate) fn begin(
    sql: &dyn Sql,
    config: &InboxConfig,
    owner: &Owner,
    outgoing: Outgoing,
    idempotent: Option<&Idempotent>,
    now: Timestamp,
) -> Result<Outcome, InboxError> {
    let relayed = outgoing
        .recipients
        .iter()
        .any(|r| r.route == SendRoute::Relay);
    if relayed && config.relay == Relay::None {
        return Err(ApiError::new(
            ErrorCode::NotConfigured,
            "This deployment has no mail relay for outside addresses: configure the \
             send_email binding or RESEND_API_KEY. Mail to inboxes of this deployment \
             is delivered directly.",
        )
        .into());
    }
    if let Some(retry_after) = rate_limit(sql, now)? {
        return Err(rate_limited(
            format!(
                "Too many sends: an inbox may send {SENDS_PER_MINUTE} messages a minute \
             and {SENDS_PER_HOUR} an hour. Retry in {retry_after} s."
            ),
            retry_after,
        ));
    }
    let wanted = u32::try_from(outgoing.recipients.len()).unwrap_or(u32::MAX);
    if let Some(retry_after) = recipient_limit(sql, now, wanted)? {
        return Err(rate_limited(
            format!(
                "Too many recipients: an inbox may send to {RECIPIENTS_PER_HOUR} recipients \
             an hour (to, cc and bcc of every message), and this message has {wanted}. \
             Retry in {retry_after} s."
            ),
            retry_after,
        ));
    }
    let Outgoing {
        from,
        to,
        recipients,
        reply_to,
        in_reply_to,
        references,
        subject,
        text,
        html,
        thread,
        attachments,
    } = outgoing;
    let named = |kind: RecipientKind| -> Vec<String> {
        recipients
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.address.clone())
            .collect()
    };
    let (to_header, cc_header) = (named(RecipientKind::To), named(RecipientKind::Cc));
    let last_id = store::last_id(sql)?;
    let attached: Vec<OutAttachment<'_>> = attachments.iter().map(OutFile::attached).collect();
    let draft = Draft {
        from: &from,
        to: &to_header,
        cc: &cc_header,
        reply_to: &reply_to,
        in_reply_to: in_reply_to.as_deref(),
        references: &references,
        subject: subject.as_deref(),
        text: text.as_deref(),
        html: html.as_deref(),
        attachments: &attached,
        date: now,
    };
    // Unique to this send: no two sends share a time and a last id.
    let built = outbound::build(&draft, &format!("{}:{last_id}", now.millis()));
    drop(attached);
    drop(attachments);
    let (raw, message_id, failure) = match built {
        Ok(built) => (built.raw, built.message_id, None),
        Err(why) => (Vec::new(), String::new(), Some(why)),
    };
    fits_the_route(config, &recipients, raw.len())?;
    let cap = config.max_inbox_bytes;
    if owner.stored_bytes.saturating_add(raw.len() as u64) > cap {
        return Err(storage_full(cap).into());
    }
    let fields = SendFields {
        subject,
        text,
        html,
        message_id,
        reply_to,
        in_reply_to,
        references,
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
        thread,
    };
    let listed: Vec<(&str, RecipientKind)> = recipients
        .iter()
        .map(|r| (r.address.as_str(), r.kind))
        .collect();
    // One job per recipient delivered directly, one for all the relay takes.
    let mut groups: Vec<(SendRoute, Vec<u32>)> = Vec::new();
    let mut relay_seqs = Vec::new();
    for (seq, recipient) in (0u32..).zip(&recipients) {
        match recipient.route {
            SendRoute::Relay => relay_seqs.push(seq),
            SendRoute::Direct { .. } => groups.push((recipient.route.clone(), vec![seq])),
        }
    }
    if !relay_seqs.is_empty() {
        groups.push((SendRoute::Relay, relay_seqs));
    }
    let mut jobs = Vec::new();
    let message_id = store::insert(sql, &message, &mut |id, at| {
        jobs.clear();
        if let Some(idempotent) = idempotent {
            idempotency::claim(sql, idempotent, id, now)?;
        }
        match &failure {
            Some(why) => {
                store::insert_recipients(sql, id, &listed, SendStatus::Failed, Some(why), at)?;
                store::set_send_status(sql, id, SendStatus::Failed, Some(why))?;
            }
            None => {
                store::insert_recipients(sql, id, &listed, SendStatus::Queued, None, at)?;
                for (route, seqs) in &groups {
                    let job_id = jobs::queue_send(sql, id, route, seqs, &fields, now)?;
                    jobs.push(SendJob {
                        id: job_id,
                        message_id: id,
                        route: route.clone(),
                        recipients: seqs.clone(),
                        fields: fields.clone(),
                        attempts: 1,
                    });
                }
            }
        }
        Ok(())
    })?;
    if failure.is_some() {
        log::error!("an outbound message could not be built; it was stored as failed");
        let reply = outcome_reply(sql, message_id)?;
        if let Some(idempotent) = idempotent {
            idempotency::settle(sql, &idempotent.key, &reply)?;
        }
        return Ok(Outcome::Reply(reply));
    }
    Ok(Outcome::Send(Started {
        message_id,
        jobs,
        idempotency_key: idempotent.map(|i| i.key.clone()),
    }))
}

/// Refuses a forward whose original's files would make it larger than a
/// way it leaves takes, before they are decoded: `files` is their decoded
/// size, `added` the rest's.
pub(crate) fn forward_fits(
    config: &InboxConfig,
    recipients: &[RoutedRecipient],
    files: u64,
    added: usize,
) -> Result<(), InboxError> {
    // A lower bound (the files as they are, before any base64), so that no
    // forward that would fit is refused here; the built message's exact size
    // is checked again as for any send.
    let files = usize::try_from(files).unwrap_or(usize::MAX);
    fits_the_route(config, recipients, files.saturating_add(added)).map_err(|_| {
        ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "The forward with the original's attachments ({files} bytes) and yours is \
                 too large for the way it leaves (see the limits of attachments); forward \
                 it with `includeAttachments: false`, or to fewer recipients."
            ),
        )
        .into()
    })
}

/// Refuses a message larger than a way it leaves can take: the
/// `send_email` binding takes 5 MiB, the HTTP relay 40 MB, an inbox here
/// what inbound mail may be (25 MiB). Only attachments make a message this
/// large, so the error names them.
fn fits_the_route(
    config: &InboxConfig,
    recipients: &[RoutedRecipient],
    size: usize,
) -> Result<(), InboxError> {
    let relayed = recipients.iter().any(|r| r.route == SendRoute::Relay);
    let direct = recipients.iter().any(|r| r.route != SendRoute::Relay);
    let mut limits = Vec::new();
    if relayed {
        match config.relay {
            Relay::SendEmail => limits.push((SEND_EMAIL_MAX_BYTES, "the send_email binding")),
            Relay::Http { .. } => limits.push((HTTP_RELAY_MAX_BYTES, "the HTTP relay")),
            Relay::None => {}
        }
    }
    if direct {
        let inbound = usize::try_from(MAX_MESSAGE_BYTES).unwrap_or(usize::MAX);
        limits.push((inbound, "an inbox of this deployment"));
    }
    if let Some((limit, by)) = limits.into_iter().find(|(limit, _)| size > *limit) {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "Invalid `attachments`: with them the message is {size} bytes (base64 \
                 included), and {by} takes at most {limit}."
            ),
        )
        .into());
    }
    let copies = handover_copies(config, recipients);
    let held = size.saturating_mul(copies);
    if held > HANDOVER_MEMORY {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "Invalid `attachments`: the message is {size} bytes, and handing it to these \
                 recipients at once holds {copies} copies of it ({held} bytes); an inbox \
                 holds at most {HANDOVER_MEMORY}. Send it to fewer recipients per message."
            ),
        )
        .into());
    }
    Ok(())
}

/// The most memory the copies of one message may take while it is handed
/// over (a Durable Object has 128 MB in all).
pub(crate) const HANDOVER_MEMORY: usize = 64 * 1024 * 1024;

/// How many copies of a message its hand-overs hold at once, all running
/// together: the stored bytes (read once for all, see [`Raws`]), one per
/// inbox here and per `send_email` recipient (the platform copies the bytes
/// into each call), and for an HTTP relay call its files decoded, their
/// base64, the JSON and the call's own copy (four), once for all its
/// recipients or once per blind copy when only blind copies go out.
fn handover_copies(config: &InboxConfig, recipients: &[RoutedRecipient]) -> usize {
    let direct = recipients
        .iter()
        .filter(|r| r.route != SendRoute::Relay)
        .count();
    let relayed: Vec<&RoutedRecipient> = recipients
        .iter()
        .filter(|r| r.route == SendRoute::Relay)
        .collect();
    let relay = match config.relay {
        Relay::None => 0,
        Relay::SendEmail => relayed.len(),
        Relay::Http { .. } if relayed.is_empty() => 0,
        Relay::Http { .. } if relayed.iter().all(|r| r.kind == RecipientKind::Bcc) => {
            4 * relayed.len()
        }
        Relay::Http { .. } => 4,
    };
    1 + direct + relay
}

fn rate_limited(message: String, retry_after: u64) -> InboxError {
    InboxError::from(ApiError::new(ErrorCode::RateLimited, message))
        .with_header("retry-after", retry_after.to_string())
}

/// The reply to a send whose first attempts have run: what became of it
/// and of each recipient.
pub(crate) fn outcome_reply(sql: &dyn Sql, message_id: u64) -> Result<Reply, InboxError> {
    match store::summary(sql, message_id)? {
        Some(summary) => Ok(Reply::json(
            201,
            &SendResponse {
                id: message_id,
                thread_id: summary.thread_id,
                status: summary.status.unwrap_or(SendStatus::Queued),
                status_reason: summary.status_reason,
                recipients: store::recipients(sql, message_id)?
                    .iter()
                    .map(RecipientRow::outcome)
                    .collect(),
            },
        )),
        None => Err(ApiError::new(
            ErrorCode::Conflict,
            "The message was deleted while it was being sent; recipients it had already \
             reached keep it.",
        )
        .into()),
    }
}

/// What a send's attempt needs of the service: its configuration, and the
/// waits a send to oneself wakes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) config: &'a InboxConfig,
    pub(crate) hub: &'a Hub,
}

/// One attempt at a send job: hand the message over to the job's recipients
/// still queued, then record what became of each (and of the message, and
/// queue `message.sent`) with the job's removal, atomically. An `Err` is a
/// storage failure: the job keeps its lease and is retried when the lease
/// ends.
pub(crate) async fn attempt<P: Platform>(
    sql: &dyn Sql,
    platform: &P,
    ctx: &Context<'_>,
    job: SendJob,
    raws: &Raws,
) -> Result<(), SqlError> {
    let Some(summary) = store::summary(sql, job.message_id)? else {
        // Gone.
        return jobs::delete_job(sql, job.id);
    };
    // A job from before recipients had rows delivers to the message's `to`.
    let legacy = job.recipients.is_empty();
    let pending: Vec<RecipientRow> = if legacy {
        match summary.status {
            Some(SendStatus::Queued) => vec![RecipientRow {
                seq: 0,
                address: summary.to.clone(),
                kind: RecipientKind::To,
                status: SendStatus::Queued,
                reason: None,
            }],
            _ => Vec::new(),
        }
    } else {
        store::recipients(sql, job.message_id)?
            .into_iter()
            .filter(|r| r.status == SendStatus::Queued && job.recipients.contains(&r.seq))
            .collect()
    };
    if pending.is_empty() {
        // Already settled by an earlier attempt.
        return jobs::delete_job(sql, job.id);
    }
    // Read once, before the hand-over: it needs the own handle (a send to
    // oneself) and so does the `message.sent` event after it.
    let owner = load_owner(sql)?;
    let outcomes: Vec<(u32, Result<(), String>)> = if job.attempts > jobs::MAX_SEND_ATTEMPTS {
        let why = format!(
            "The send was interrupted {} times and was not attempted again.",
            job.attempts - 1
        );
        pending.iter().map(|r| (r.seq, Err(why.clone()))).collect()
    } else {
        match raws.get(sql, job.message_id)? {
            Some(raw) => {
                let handover = Handover {
                    own: owner.as_ref().map(|o| &o.handle),
                    message_id: job.message_id,
                    from: &summary.from,
                    raw: &raw,
                    fields: &job.fields,
                };
                hand_over(sql, platform, ctx, &handover, &job.route, &pending).await
            }
            None => {
                let why = "The stored message is missing, so it was not sent.";
                pending
                    .iter()
                    .map(|r| (r.seq, Err(why.to_owned())))
                    .collect()
            }
        }
    };
    let now = platform.now();
    let mut left_queue = None;
    sql.transaction(&mut || {
        left_queue = None;
        let was_queued = store::summary(sql, job.message_id)?
            .is_some_and(|s| s.status == Some(SendStatus::Queued));
        if legacy {
            let (status, reason) = match outcomes.first().map(|(_, o)| o) {
                Some(Ok(())) => (SendStatus::Sent, None),
                Some(Err(reason)) => (SendStatus::Failed, Some(reason.as_str())),
                None => return Err(SqlError::new("a send attempt had no outcome")),
            };
            // Settled only if still queued: an attempt that outlived its
            // lease may race the alarm's, and only the first to finish
            // records its outcome and its `message.sent`.
            let settled = store::set_send_status(sql, job.message_id, status, reason)?.is_some();
            if settled && status == SendStatus::Sent {
                announce(sql, owner.as_ref(), &summary, now)?;
            }
        } else {
            for (seq, outcome) in &outcomes {
                let (status, reason) = match outcome {
                    Ok(()) => (SendStatus::Sent, None),
                    Err(reason) => (SendStatus::Failed, Some(reason.as_str())),
                };
                // Only while still queued, as above, recipient by recipient.
                store::settle_recipient(sql, job.message_id, *seq, status, reason)?;
            }
            settle_message(sql, owner.as_ref(), &summary, now)?;
        }
        if was_queued {
            left_queue = store::summary(sql, job.message_id)?
                .filter(|s| s.status != Some(SendStatus::Queued));
        }
        jobs::delete_job(sql, job.id)
    })?;
    // The live event, once the outcome is stored: only the attempt that
    // took the message out of the queue tells.
    if let Some(message) = left_queue {
        crate::live::publish(
            platform,
            &LiveEvent::Sent {
                message,
                replay: false,
            },
        );
    }
    Ok(())
}

/// The raw bytes of the messages that attempts running together hand over,
/// each read once and shared: the jobs of one send (one per recipient here)
/// would otherwise each hold a copy of the message while they wait.
#[derive(Debug, Default)]
pub(crate) struct Raws(RefCell<Vec<(u64, Rc<Vec<u8>>)>>);

impl Raws {
    fn get(&self, sql: &dyn Sql, message_id: u64) -> Result<Option<Rc<Vec<u8>>>, SqlError> {
        if let Some((_, raw)) = self.0.borrow().iter().find(|(id, _)| *id == message_id) {
            return Ok(Some(Rc::clone(raw)));
        }
        let Some(raw) = store::raw(sql, message_id)? else {
            return Ok(None);
        };
        let raw = Rc::new(raw);
        self.0.borrow_mut().push((message_id, Rc::clone(&raw)));
        Ok(Some(raw))
    }
}

/// Gives up on a send whose job row cannot be read (see
/// [`jobs::claim_due`]): which of its recipients the job was for is unknown,
/// so those still queued fail with `why`, and the message is settled from its
/// rows (one sent before recipients had rows simply fails). Inside the
/// caller's transaction.
pub(crate) fn abandon(
    sql: &dyn Sql,
    message_id: u64,
    why: &str,
    now: Timestamp,
) -> Result<(), SqlError> {
    store::fail_queued_recipients(sql, message_id, why)?;
    match store::summary(sql, message_id)? {
        Some(summary) if !store::recipients(sql, message_id)?.is_empty() => {
            let owner = load_owner(sql)?;
            settle_message(sql, owner.as_ref(), &summary, now)
        }
        _ => {
            store::set_send_status(sql, message_id, SendStatus::Failed, Some(why))?;
            Ok(())
        }
    }
}

/// Recomputes a message's status from its recipients' rows, once none is
/// queued: it leaves `queued` once (the update is conditional on it), and
/// then, if any recipient got it, `message.sent` is queued. Inside the
/// caller's transaction.
fn settle_message(
    sql: &dyn Sql,
    owner: Option<&Owner>,
    summary: &MessageSummary,
    now: Timestamp,
) -> Result<(), SqlError> {
    let rows = store::recipients(sql, summary.id)?;
    if rows.is_empty() || rows.iter().any(|r| r.status == SendStatus::Queued) {
        return Ok(());
    }
    let (status, reason) = message_outcome(&rows);
    let settled = store::set_send_status(sql, summary.id, status, reason.as_deref())?.is_some();
    if settled && status == SendStatus::Sent {
        announce(sql, owner, summary, now)?;
    }
    Ok(())
}

/// The message's status once every recipient is settled: `sent` when any
/// got it (with "N of M recipients failed; see recipients." when some did
/// not), `failed` when none did (with their reason when they share one).
fn message_outcome(rows: &[RecipientRow]) -> (SendStatus, Option<String>) {
    let failed: Vec<&RecipientRow> = rows
        .iter()
        .filter(|r| r.status == SendStatus::Failed)
        .collect();
    let total = rows.len();
    match failed.as_slice() {
        [] => (SendStatus::Sent, None),
        all if all.len() == total => {
            let first = all[0].reason.clone();
            let shared = all.iter().all(|r| r.reason == first);
            let reason = match first {
                Some(reason) if shared => reason,
                _ => format!("All {total} recipients failed; see recipients."),
            };
            (SendStatus::Failed, Some(reason))
        }
        some => (
            SendStatus::Sent,
            Some(format!(
                "{} of {total} recipients failed; see recipients.",
                some.len()
            )),
        ),
    }
}

/// Queues `message.sent` for the message (when the inbox has an owner).
fn announce(
    sql: &dyn Sql,
    owner: Option<&Owner>,
    summary: &MessageSummary,
    now: Timestamp,
) -> Result<(), SqlError> {
    let Some(owner) = owner else {
        return Ok(());
    };
    webhook::queue_event(
        sql,
        &owner.handle,
        &EventFacts {
            event: WebhookEventKind::Sent,
            message_id: summary.id,
            from: &summary.from,
            to: &summary.to,
            subject: summary.subject.as_deref(),
            at: summary.received_at,
        },
        now,
    )?;
    Ok(())
}

/// A stored outbound message, ready to hand over.
struct Handover<'a> {
    /// This inbox's handle, when it has an owner.
    own: Option<&'a Handle>,
    message_id: u64,
    from: &'a str,
    raw: &'a [u8],
    fields: &'a SendFields,
}

/// Hands a stored outbound message to `recipients` by `route`, all at once.
/// Each recipient's `Err` is the reason it failed, for its `statusReason`.
async fn hand_over<P: Platform>(
    sql: &dyn Sql,
    platform: &P,
    ctx: &Context<'_>,
    handover: &Handover<'_>,
    route: &SendRoute,
    recipients: &[RecipientRow],
) -> Vec<(u32, Result<(), String>)> {
    let each = |outcome: Result<(), String>| -> Vec<(u32, Result<(), String>)> {
        recipients
            .iter()
            .map(|r| (r.seq, outcome.clone()))
            .collect()
    };
    match route {
        SendRoute::Direct { .. } => {
            let deliveries = recipients.iter().map(|r| async move {
                (
                    r.seq,
                    hand_to_inbox(sql, platform, ctx, handover, &r.address, route).await,
                )
            });
            join_all(deliveries).await
        }
        SendRoute::Relay => match &ctx.config.relay {
            Relay::None => each(Err(
                "No relay is configured for outside addresses.".to_owned()
            )),
            // One envelope recipient per call, each with the same bytes.
            Relay::SendEmail => {
                let calls = recipients.iter().map(|r| async move {
                    let call = platform.send_email(handover.from, &r.address, handover.raw);
                    let outcome = match bounded(platform, call).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => {
                            Err(format!("The send_email binding refused the message: {e}"))
                        }
                        Err(TimedOut) => Err(format!(
                            "The send_email binding did not answer within {} s; the message \
                             may have been sent.",
                            HANDOVER_TIMEOUT_MILLIS / 1000
                        )),
                    };
                    (r.seq, outcome)
                });
                join_all(calls).await
            }
            Relay::Http { api_key, url } => {
                let named = |kind: RecipientKind| -> Vec<&str> {
                    recipients
                        .iter()
                        .filter(|r| r.kind == kind)
                        .map(|r| r.address.as_str())
                        .collect()
                };
                let mut list = RelayRecipients {
                    to: named(RecipientKind::To),
                    cc: named(RecipientKind::Cc),
                    bcc: named(RecipientKind::Bcc),
                };
                let fields = handover.fields;
                // The relay builds its own MIME: it is given the files, as
                // the stored message has them.
                let files = match attachments::files_in(sql, handover.message_id, handover.raw) {
                    Ok(files) => files,
                    Err(error) => {
                        log::error!("reading a sent message's attachments failed: {error}");
                        return each(Err(
                            "The message's attachments could not be read.".to_owned()
                        ));
                    }
                };
                let attached: Vec<OutAttachment<'_>> =
                    files.iter().map(OutFile::attached).collect();
                let attached = &attached;
                let call = |list: &RelayRecipients<'_>, key: &str| {
                    let draft = Draft {
                        from: handover.from,
                        to: &[],
                        cc: &[],
                        reply_to: &fields.reply_to,
                        in_reply_to: fields.in_reply_to.as_deref(),
                        references: &fields.references,
                        subject: fields.subject.as_deref(),
                        text: fields.text.as_deref(),
                        html: fields.html.as_deref(),
                        attachments: attached,
                        date: platform.now(),
                    };
                    let call =
                        outbound::relay_call(&draft, list, &fields.message_id, key, url, api_key);
                    async move {
                        match call {
                            Ok(call) => match platform.http(&call).await {
                                Ok(answer) => outbound::relay_outcome(&answer),
                                Err(why) => Err(format!("The relay could not be reached: {why}")),
                            },
                            Err(why) => Err(why),
                        }
                    }
                };
                if list.to.is_empty() && list.cc.is_empty() {
                    // Only blind copies: the relay needs a To, and naming
                    // one blind recipient to another would reveal it, so
                    // each gets a call of its own, addressed to itself.
                    let calls = recipients.iter().map(|r| {
                        let own = RelayRecipients {
                            to: vec![r.address.as_str()],
                            ..RelayRecipients::default()
                        };
                        let key = format!("{}/{}", fields.message_id, r.seq);
                        async move { (r.seq, call(&own, &key).await) }
                    });
                    join_all(calls).await
                } else {
                    if list.to.is_empty() {
                        // The relay needs a To: the copies stand in.
                        list.to = std::mem::take(&mut list.cc);
                    }
                    each(call(&list, &fields.message_id).await)
                }
            }
        },
    }
}

/// Delivers the message to `to`, an inbox of this deployment, by its
/// `route` (a [`SendRoute::Direct`]).
async fn hand_to_inbox<P: Platform>(
    sql: &dyn Sql,
    platform: &P,
    ctx: &Context<'_>,
    handover: &Handover<'_>,
    to: &str,
    route: &SendRoute,
) -> Result<(), String> {
    let SendRoute::Direct {
        handle,
        object_id,
        tag,
    } = route
    else {
        return Err("The recipient is not an inbox of this deployment.".to_owned());
    };
    let status = if handover.own == Some(handle) {
        // To oneself: calling one's own object would wait on itself.
        let mail = Inbound {
            envelope_from: handover.from,
            recipient: to,
            tag: tag.as_deref(),
            raw: handover.raw,
        };
        match ingest::ingest(sql, ctx.config, mail, platform.now()) {
            Ok(stored) => {
                if let Some(id) = stored.new_id {
                    ctx.hub.arrived(sql, platform, id);
                }
                stored.reply.status
            }
            Err(InboxError::Refused { error, .. }) => error.status(),
            Err(other) => return Err(format!("Storage failed: {other}")),
        }
    } else {
        let request = InboxRequest::Ingest {
            envelope_from: handover.from.to_owned(),
            recipient: to.to_owned(),
            tag: tag.clone(),
        };
        let call = platform.call_inbox(object_id, &request, handover.raw);
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

/// Seconds until `wanted` more recipients are allowed, when they are not:
/// at most [`RECIPIENTS_PER_HOUR`] in any rolling hour, counted from the
/// `message_recipients` rows (mail sent before they were kept counts none).
fn recipient_limit(sql: &dyn Sql, now: Timestamp, wanted: u32) -> Result<Option<u64>, SqlError> {
    let window = 3_600_000;
    let after = now.plus_millis(-window);
    let count = store::recipients_since(sql, after)?;
    let Some(excess) = count
        .saturating_add(wanted)
        .checked_sub(RECIPIENTS_PER_HOUR)
        .filter(|e| *e > 0)
    else {
        return Ok(None);
    };
    // Room is made once `excess` of the recent ones have left the window:
    // when the window passes the `excess`-th oldest.
    let leaves = store::recipient_at(sql, after, excess - 1)?;
    let frees_at = leaves.map_or(now.millis() + window, |t| t.millis() + window);
    let wait = (frees_at - now.millis()).max(1);
    Ok(Some(u64::try_from(wait).unwrap_or(1).div_ceil(1000)))
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
