//! Replies and forwards of a stored message: who a reply goes to, and the
//! subject, threading ids and bodies of a reply or a forward, composed from
//! the original with the rules of [`crate::compose`]. The message then
//! leaves like any other send ([`crate::send`]).

use crate::compose::{
    self, ForwardedFacts, OriginalAddrs, Recipients, attribution, forward_subject, reply_subject,
};
use crate::error::InboxError;
use crate::quoted::html_to_text;
use crate::send::{OutFile, Outgoing};
use crate::store;
use protocol::api::{MessageDetail, MessageSummary, RecipientKind};
use protocol::limits::MAX_RECIPIENTS;
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

    /// Its text, or its HTML as text when it has no text part; at most
    /// [`MAX_QUOTED_BYTES`] of it, with a line saying so when cut.
    fn text(&self) -> Option<String> {
        let text = match (&self.detail.text, &self.detail.html) {
            (Some(text), _) => text.clone(),
            (None, Some(html)) => html_to_text(html),
            (None, None) => return None,
        };
        Some(match cut(&text) {
            Some(head) => format!(
                "{head}\n[The rest of this message, past {} KiB, is not repeated here.]",
                MAX_QUOTED_BYTES / 1024
            ),
            None => text,
        })
    }

    /// Its HTML, at most [`MAX_QUOTED_BYTES`] of it.
    fn html(&self) -> Option<&str> {
        let html = self.detail.html.as_deref()?;
        Some(cut(html).unwrap_or(html))
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

/// The most bytes of the original's text, and of its HTML, that a reply
/// quotes or a forward repeats: a stored body may be 1 MiB, and a send's
/// fields are kept in its job row (DO SQLite rows are at most 2 MB).
pub(crate) const MAX_QUOTED_BYTES: usize = 128 * 1024;

/// `text` cut to [`MAX_QUOTED_BYTES`] on a character boundary, when longer.
fn cut(text: &str) -> Option<&str> {
    if text.len() <= MAX_QUOTED_BYTES {
        return None;
    }
    let mut end = MAX_QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(&text[..end])
}

/// Who a reply to `original` goes to, from the inbox at `own`: its Reply-To
/// or From (and, for reply-all, its To and Cc), never the inbox itself and
/// never twice (a plan with no To gets its Cc as To), at most
/// `MAX_RECIPIENTS`. 409 `conflict` when nobody is left, or too many (a message from oneself to oneself).
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
    let mut recipients = compose::reply_recipients(own, &addrs, reply_all);
    // A reply-all to our own message sent only to ourselves and a Cc: the
    // Cc become its To, so that it has one.
    if recipients.to.is_empty() {
        recipients.to = std::mem::take(&mut recipients.cc);
    }
    let count = recipients.to.len() + recipients.cc.len();
    if count > MAX_RECIPIENTS {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "A reply to message {} would go to {count} addresses; a message may have at \
                 most {MAX_RECIPIENTS}. Reply without `replyAll`, or send to the ones you choose.",
                original.summary.id
            ),
        )
        .into());
    }
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

impl Recipients {
    /// That the router routed exactly these recipients (in order, each as To
    /// or Cc as here; addresses compared without case, as the router may
    /// normalize them): 409 `conflict` otherwise, for reply `id`.
    pub(crate) fn check_routed(
        &self,
        id: u64,
        routed: &[RoutedRecipient],
    ) -> Result<(), InboxError> {
        let expected = self
            .to
            .iter()
            .map(|a| (RecipientKind::To, a))
            .chain(self.cc.iter().map(|a| (RecipientKind::Cc, a)));
        let same = self.to.len() + self.cc.len() == routed.len()
            && expected.zip(routed).all(|((kind, address), r)| {
                kind == r.kind && address.eq_ignore_ascii_case(&r.address)
            });
        if same {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::Conflict,
            format!("The recipients of a reply to message {id} changed; try again."),
        )
        .into())
    }
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
    /// The thread it joins: a reply's original's; none for a forward.
    pub(crate) thread: Option<u64>,
}

impl Composed {
    /// The send of it, from the inbox at `from`, to `recipients` (routed,
    /// `to` first).
    pub(crate) fn outgoing(
        self,
        from: String,
        recipients: Vec<RoutedRecipient>,
        attachments: Vec<OutFile>,
    ) -> Outgoing {
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
            thread: self.thread,
            attachments,
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
        html: compose::reply_html(html, text, original.html(), original_text.as_deref(), &line),
        in_reply_to: compose::references_for_reply(&[], detail.message_id.as_deref())
            .into_iter()
            .next(),
        references: compose::references_for_reply(&detail.references, detail.message_id.as_deref()),
        // Joined explicitly: an original without a usable Message-ID still
        // has its reply in its thread.
        thread: summary.thread_id,
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
        html: original.html(),
    };
    Composed {
        subject: forward_subject(summary.subject.as_deref()),
        text: Some(compose::forward_text(text, &facts)),
        html: compose::forward_html(html, text, &facts),
        in_reply_to: None,
        references: Vec::new(),
        thread: None,
    }
}
