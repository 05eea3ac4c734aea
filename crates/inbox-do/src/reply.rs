//! Replies and forwards of a stored message: who a reply goes to, and the
//! subject, threading ids and bodies of a reply or a forward, composed from
//! the original with the rules of [`crate::compose`]. The message then
//! leaves like any other send ([`crate::send`]).

use crate::compose::{
    self, ForwardedFacts, OriginalAddrs, Recipients, attribution, forward_subject, reply_subject,
};
use crate::error::InboxError;
use crate::quoted::html_to_text;
use crate::send::Outgoing;
use crate::store;
use protocol::api::{MessageDetail, MessageSummary, RecipientKind};
use protocol::wire::RoutedRecipient;
use protocol::{ApiError, ErrorCode};
use schema::Sql;

/// A stored message being answered or forwarded.
pub(crate) struct Original {
    pub(crate) summary: MessageSummary,
    pub(crate) detail: MessageDetail,
}

impl Original {
    /// Message `id`, or 404.
    pub(crate) fn load(sql: &dyn Sql, id: u64) -> Result<Original, InboxError> {
        match (store::summary(sql, id)?, store::detail(sql, id)?) {
            (Some(summary), Some(detail)) => Ok(Original { summary, detail }),
            _ => {
                Err(ApiError::not_found(format!("There is no message {id} in this inbox.")).into())
            }
        }
    }

    /// Its text, or its HTML as text when it has no text part.
    fn text(&self) -> Option<String> {
        match (&self.detail.text, &self.detail.html) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(html)) => Some(html_to_text(html)),
            (None, None) => None,
        }
    }

    /// The To addresses it was sent to: its To header, or (a message without
    /// one) the address it came to.
    fn to(&self) -> Vec<String> {
        if self.detail.to_addresses.is_empty() {
            vec![self.summary.to.clone()]
        } else {
            self.detail.to_addresses.clone()
        }
    }
}

/// Who a reply to `original` goes to, from the inbox at `own`: its Reply-To
/// or From (and, for reply-all, its To and Cc), never the inbox itself and
/// never twice. 409 `conflict` when nobody is left (a message from oneself to oneself).
pub(crate) fn recipients(
    original: &Original,
    own: &str,
    reply_all: bool,
) -> Result<Recipients, InboxError> {
    let to = original.to();
    let addrs = OriginalAddrs {
        from: &original.summary.from,
        reply_to: &original.detail.reply_to,
        to: &to,
        cc: &original.detail.cc,
    };
    let recipients = compose::reply_recipients(own, &addrs, reply_all);
    if recipients.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "Message {} has nobody to reply to but this inbox itself.",
                original.summary.id
            ),
        )
        .into());
    }
    Ok(recipients)
}

/// A reply or a forward, composed: what the send path needs besides its
/// recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Composed {
    pub(crate) subject: String,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
    pub(crate) in_reply_to: Option<String>,
    pub(crate) references: Vec<String>,
}

impl Composed {
    /// The send of it, from the inbox at `from`, to `recipients` (routed,
    /// `to` first).
    pub(crate) fn outgoing(self, from: String, recipients: Vec<RoutedRecipient>) -> Outgoing {
        let to = recipients
            .iter()
            .find(|r| r.kind == RecipientKind::To)
            .or(recipients.first())
            .map(|r| r.address.clone())
            .unwrap_or_default();
        Outgoing {
            from,
            to,
            recipients,
            reply_to: Vec::new(),
            in_reply_to: self.in_reply_to,
            references: self.references,
            subject: Some(self.subject),
            text: self.text,
            html: self.html,
        }
    }
}

/// A reply to `original` with the new `text` and `html`: `Re:` its subject
/// (never doubled), In-Reply-To its Message-ID, References its References
/// and its Message-ID (within limits), and the original quoted below the
/// new text as mail clients do (in the HTML part too when either has HTML).
pub(crate) fn reply(original: &Original, text: Option<&str>, html: Option<&str>) -> Composed {
    let summary = &original.summary;
    let detail = &original.detail;
    let date = detail.date.or(Some(summary.received_at));
    let from_name = summary.from_name.as_deref();
    let original_text = original.text();
    let line = attribution(date, from_name, &summary.from);
    Composed {
        subject: reply_subject(summary.subject.as_deref()),
        text: Some(compose::reply_text(
            text,
            original_text.as_deref(),
            date,
            from_name,
            &summary.from,
        )),
        html: compose::reply_html(
            html,
            text,
            detail.html.as_deref(),
            original_text.as_deref(),
            &line,
        ),
        in_reply_to: compose::references_for_reply(&[], detail.message_id.as_deref())
            .into_iter()
            .next(),
        references: compose::references_for_reply(&detail.references, detail.message_id.as_deref()),
    }
}

/// A forward of `original` with the new `text` and `html` above it: `Fwd:`
/// its subject, its header lines and its body below (not quoted), and no
/// threading ids: a forward starts a new conversation.
pub(crate) fn forward(original: &Original, text: Option<&str>, html: Option<&str>) -> Composed {
    let summary = &original.summary;
    let detail = &original.detail;
    let to = original.to();
    let original_text = original.text();
    let facts = ForwardedFacts {
        from: &summary.from,
        from_name: summary.from_name.as_deref(),
        date: detail.date.or(Some(summary.received_at)),
        subject: summary.subject.as_deref(),
        to: &to,
        cc: &detail.cc,
        text: original_text.as_deref(),
        html: detail.html.as_deref(),
    };
    Composed {
        subject: forward_subject(summary.subject.as_deref()),
        text: Some(compose::forward_text(text, &facts)),
        html: compose::forward_html(html, text, &facts),
        in_reply_to: None,
        references: Vec::new(),
    }
}
