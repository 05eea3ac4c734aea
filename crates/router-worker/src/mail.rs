//! Inbound mail: routing a message by its envelope recipient to its inbox,
//! and what became of it ([`MailVerdict`]).

use crate::error::error_of;
use crate::router::handle_index_key;
use crate::{Directory, InboxNamespace, Router, Trace};
use protocol::address::{Recipient, RecipientError};
use protocol::limits::MAX_MESSAGE_BYTES;
use protocol::wire::{InboxRequest, Ingested};

/// What became of an inbound message. The glue turns `Reject` into a
/// permanent SMTP failure and `Retry` into a temporary one (the sender keeps
/// the message and tries again, as SMTP does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailVerdict {
    /// Stored under this id.
    Accepted(u64),
    /// Already stored under this id (a redelivery); nothing was added.
    Duplicate(u64),
    /// Refused for good, with the reason given to the sender.
    Reject(String),
    /// Not stored this time; the reason is for the log.
    Retry(String),
}

impl<D: Directory, N: InboxNamespace> Router<D, N> {
    /// Routes one inbound message by its envelope recipient and hands its raw
    /// bytes (`payload`, never read here) to the inbox. Unknown recipients and
    /// foreign domains are refused from KV alone, without waking any inbox.
    pub async fn receive_mail(
        &self,
        envelope_from: &str,
        recipient: &str,
        raw_size: u64,
        payload: N::Payload,
        trace: &Trace,
    ) -> MailVerdict {
        let domains = &self.config().mail_domains;
        if domains.is_empty() {
            return MailVerdict::Retry("MAIL_DOMAIN is not configured".into());
        }
        let recipient = match Recipient::parse(recipient, domains) {
            Ok(recipient) => recipient,
            Err(error @ (RecipientError::Malformed | RecipientError::ForeignDomain)) => {
                return MailVerdict::Reject(capitalized(&error.to_string()));
            }
            Err(RecipientError::NoSuchMailbox) => return no_such_mailbox(),
        };
        if raw_size > MAX_MESSAGE_BYTES {
            return MailVerdict::Reject(format!(
                "Message too large: {raw_size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (25 MiB)."
            ));
        }
        let entry = handle_index_key(&recipient.handle);
        let id = match self.index_entry(&entry).await {
            Ok(Some(id)) => id,
            Ok(None) => return no_such_mailbox(),
            Err(error) => return MailVerdict::Retry(format!("KV lookup failed: {error}")),
        };
        trace.inbox(&id);
        let request = InboxRequest::Ingest {
            envelope_from: envelope_from.to_owned(),
            recipient: recipient.address.clone(),
            tag: recipient.tag.clone(),
        };
        let answer = match self.namespace().send(&id, &request, Some(payload)).await {
            Ok(answer) => answer,
            Err(error) => return MailVerdict::Retry(format!("inbox unreachable: {error}")),
        };
        let reply = match N::read(answer).await {
            Ok(reply) => reply,
            Err(error) => return MailVerdict::Retry(format!("inbox answer unread: {error}")),
        };
        match reply.status {
            200 | 201 => match serde_json::from_slice::<Ingested>(&reply.body) {
                Ok(Ingested {
                    id,
                    duplicate: false,
                }) => MailVerdict::Accepted(id),
                Ok(Ingested {
                    id,
                    duplicate: true,
                }) => MailVerdict::Duplicate(id),
                Err(error) => MailVerdict::Retry(format!("unreadable ingest reply: {error}")),
            },
            404 => {
                // No inbox there (deleted, or never confirmed): KV is read
                // again next time.
                self.index_cache().forget(&entry);
                no_such_mailbox()
            }
            413 | 507 => MailVerdict::Reject(error_of(&reply).error),
            status => MailVerdict::Retry(format!(
                "inbox answered {status}: {}",
                error_of(&reply).error
            )),
        }
    }
}

fn no_such_mailbox() -> MailVerdict {
    MailVerdict::Reject("No such mailbox here.".into())
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}
