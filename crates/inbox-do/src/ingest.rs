//! Ingest: storing one inbound message, once, whole and atomically, with its
//! `message.received` event when the inbox has a webhook.
//!
//! The raw bytes are kept unchanged whatever they hold; a redelivery of the
//! same bytes answers the stored id (`duplicate: true`); the inbox's storage
//! cap ([`InboxConfig::max_inbox_bytes`]) and the per-message limit refuse
//! what would not fit.

use crate::error::InboxError;
use crate::mail::parse_mail;
use crate::owner::load_owner;
use crate::ports::InboxConfig;
use crate::store::{self, NewMessage};
use crate::webhook::{self, EventFacts};
use protocol::api::{Direction, WebhookEventKind};
use protocol::key::sha256_hex;
use protocol::limits::MAX_MESSAGE_BYTES;
use protocol::wire::Ingested;
use protocol::{ApiError, ErrorCode, Reply, Timestamp};
use schema::Sql;

/// One inbound message, as the router (or a sending inbox) hands it over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inbound<'a> {
    pub(crate) envelope_from: &'a str,
    pub(crate) recipient: &'a str,
    pub(crate) tag: Option<&'a str>,
    pub(crate) raw: &'a [u8],
}

/// What an ingest came to: the reply, whether an event was queued (the
/// alarm must then be set), and the new message's id (none for a
/// duplicate: waiters and live sockets hear of new mail only).
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) reply: Reply,
    pub(crate) queued: bool,
    pub(crate) new_id: Option<u64>,
}

/// Stores `mail` (201), or answers its duplicate's id (200), or refuses it.
pub(crate) fn ingest(
    sql: &dyn Sql,
    config: &InboxConfig,
    mail: Inbound<'_>,
    now: Timestamp,
) -> Result<Stored, InboxError> {
    let Some(owner) = load_owner(sql)?.filter(|o| o.active) else {
        return Err(ApiError::not_found("No such mailbox here.").into());
    };
    if mail.raw.len() as u64 > MAX_MESSAGE_BYTES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("Message too large: the limit is {MAX_MESSAGE_BYTES} bytes (25 MiB)."),
        )
        .into());
    }
    let raw_sha256 = sha256_hex(mail.raw);
    if let Some(id) = store::find_by_raw(sql, &raw_sha256)? {
        let ingested = Ingested {
            id,
            duplicate: true,
        };
        return Ok(Stored {
            reply: Reply::json(200, &ingested),
            queued: false,
            new_id: None,
        });
    }
    let cap = config.max_inbox_bytes;
    if owner.stored_bytes.saturating_add(mail.raw.len() as u64) > cap {
        return Err(storage_full(cap).into());
    }
    let parsed = parse_mail(mail.raw, mail.envelope_from, mail.tag.map(str::to_owned));
    let mut queued = false;
    let message = NewMessage {
        direction: Direction::Inbound,
        to: mail.recipient,
        received_at: now,
        raw: mail.raw,
        raw_sha256: Some(raw_sha256),
        send_status: None,
        parsed,
        thread: None,
    };
    let id = store::insert(sql, &message, &mut |id, at| {
        queued = webhook::queue_event(
            sql,
            &owner.handle,
            &EventFacts {
                event: WebhookEventKind::Received,
                message_id: id,
                from: &message.parsed.from,
                to: mail.recipient,
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
    Ok(Stored {
        reply: Reply::json(201, &ingested),
        queued,
        new_id: Some(id),
    })
}

/// 507 `storage_full`: the inbox holds `cap` bytes at most.
pub(crate) fn storage_full(cap: u64) -> ApiError {
    ApiError::new(
        ErrorCode::StorageFull,
        format!("This inbox is full: it holds at most {cap} bytes of mail."),
    )
}
