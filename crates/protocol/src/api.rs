//! The public API's request and response bodies (camelCase JSON).

use crate::{Handle, Timestamp};
use serde::{Deserialize, Serialize};

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Health {
    /// Always `true` when the router answers.
    pub ok: bool,
    /// Always `"inboxkit"`.
    pub service: String,
    /// The deployed version.
    pub version: String,
}

/// `POST /api/signup` body. Unknown fields are refused so a misspelt `handle`
/// does not silently produce a generated one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The handle wanted; one is generated when absent or null. It is
    /// lowercased; role names such as postmaster are reserved.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}[A-Za-z0-9]$"))
    )]
    pub handle: Option<String>,
}

/// `POST /api/signup` → 201.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SignupResponse {
    /// The inbox's address, `handle@MAIL_DOMAIN`.
    pub email: String,
    /// The API key, shown only this once.
    pub api_key: String,
}

/// `GET /api/me` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The inbox's address.
    pub email: String,
    /// The inbox's handle.
    pub handle: Handle,
    /// When the inbox was created.
    pub created_at: Timestamp,
    /// How many messages the inbox holds.
    pub message_count: u64,
    /// Messages older than this many days are deleted; null keeps them
    /// until they are deleted by hand (or the inbox is full).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// The scope of the key that asked.
    #[serde(default = "KeyScope::full")]
    pub scope: KeyScope,
}

/// `PATCH /api/me` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateMe {
    /// Delete messages older than this many days (1 to 3650), by the
    /// inbox's alarm, in bounded batches; null keeps them.
    #[serde(deserialize_with = "whole_days")]
    #[cfg_attr(
        feature = "openapi",
        schemars(required, schema_with = "retention_schema")
    )]
    pub retention_days: Option<Option<u32>>,
}

/// `retentionDays`: required, an integer in range or null.
#[cfg(feature = "openapi")]
fn retention_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 3650,
        "description": "Delete messages older than this many days, by the inbox's alarm, in bounded batches; null keeps them."
    })
}

/// `retentionDays` as given: a whole number (`30` or, as JSON Schema allows,
/// `30.0`) or null, wrapped in `Some` (the field is required).
fn whole_days<'de, D>(deserializer: D) -> Result<Option<Option<u32>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let Some(number) = Option::<f64>::deserialize(deserializer)? else {
        return Ok(Some(None));
    };
    if number.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&number) {
        return Err(serde::de::Error::custom(format!(
            "{number} is not a whole number of days from 1 to 3650"
        )));
    }
    Ok(Some(Some(number as u32)))
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Everything the API offers.
    Full,
    /// Only reads: list, get, raw, attachments, search, wait, events,
    /// threads, export, keys' listing; every change is 403 `forbidden`.
    Read,
}

impl KeyScope {
    /// `full`.
    pub fn full() -> Self {
        KeyScope::Full
    }

    /// Its name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Full => "full",
            KeyScope::Read => "read",
        }
    }

    /// The scope named `text`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "full" => Some(KeyScope::Full),
            "read" => Some(KeyScope::Read),
            _ => None,
        }
    }
}

/// One API key of the inbox, as `GET /api/keys` lists it: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// Its id in this inbox (for `DELETE /api/keys/:id`).
    pub id: u64,
    /// The name it was given (`signup` for the key made at signup).
    pub name: String,
    /// What it may do.
    pub scope: KeyScope,
    /// The key's first characters, to recognise it by; null for a key
    /// made before keys were listed.
    pub prefix: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was last used, to the hour (null: never since it was made).
    pub last_used_at: Option<Timestamp>,
}

/// `GET /api/keys` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    /// Oldest first.
    pub keys: Vec<KeyInfo>,
}

/// `POST /api/keys` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// A name to recognise it by (1 to 100 characters, not only spaces, no
    /// control characters; trimmed).
    #[cfg_attr(
        feature = "openapi",
        schemars(
            length(min = 1, max = 100),
            regex(
                pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
            )
        )
    )]
    pub name: String,
    /// What it may do.
    pub scope: KeyScope,
}

/// `POST /api/keys` → 201: the key, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// The key's description.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The API key itself. Store it now: only its hash is kept.
    pub api_key: String,
}

/// Whether a message came in or went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received by this inbox.
    Inbound,
    /// Sent from this inbox.
    Outbound,
}

impl Direction {
    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// One message in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MessageSummary {
    /// Per-inbox id, increasing with arrival.
    pub id: u64,
    /// In or out.
    pub direction: Direction,
    /// The sender's address (the From header; the envelope sender when the
    /// header is missing or unreadable).
    pub from: String,
    /// The sender's display name, when given.
    pub from_name: Option<String>,
    /// For inbound mail, the address it was delivered to (with its `+tag`);
    /// for outbound, the recipient.
    pub to: String,
    /// The decoded subject, when there is one.
    pub subject: Option<String>,
    /// Whether it has been marked read.
    pub read: bool,
    /// When it arrived (or was sent).
    pub received_at: Timestamp,
    /// Its size in bytes, as received.
    pub size: u64,
    /// Whether it carries attachments.
    pub has_attachments: bool,
    /// The conversation it belongs to (see `GET /api/threads/:id`). Null
    /// only briefly, for mail stored before threads existed, until the
    /// upgrade's backfill reaches it.
    pub thread_id: Option<u64>,
    /// The first 200 characters of its `extractedText`, whitespace collapsed.
    /// Untrusted: written by the sender.
    pub preview: Option<String>,
    /// Outbound messages only: what became of the send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SendStatus>,
    /// Outbound messages only: why a send failed (or what the relay said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// `GET /api/messages` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MessageList {
    /// Newest first.
    pub messages: Vec<MessageSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<u64>,
}

/// A one-time code found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Code {
    /// The code as written (4 to 10 characters: digits, or letter and digit
    /// groups such as `G-123456` or `A7K-93Q`).
    pub value: String,
    /// The line it was found in, whitespace collapsed (at most 100
    /// characters).
    pub context: String,
}

/// A link found in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Link {
    /// The URL exactly as written (http or https; at most 2048 bytes).
    pub url: String,
    /// Its anchor text in the HTML (at most 200 characters); null for a bare
    /// URL in the text.
    pub text: Option<String>,
}

/// A search result: the summary and where it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SearchHit {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: MessageSummary,
    /// A few words around the best match (the preview when the query has
    /// only filters). Untrusted: written by the sender.
    pub snippet: Option<String>,
}

/// `GET /api/messages/search` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    /// Best match first (newest first when the query has no words).
    pub messages: Vec<SearchHit>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// False while mail stored before search existed is still being indexed
    /// (a few seconds per 10,000 messages after an upgrade): some of it may
    /// be missing from the results until then.
    pub complete: bool,
}

/// `GET /api/messages/wait` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct WaitResult {
    /// The first inbound message after `after` that matches `q`; null when
    /// none arrived before the timeout.
    pub message: Option<Message>,
    /// The `after` this wait used (the newest id when it arrived, if none
    /// was given): pass it again after a null answer, so nothing is missed.
    pub after: u64,
}

/// A frame the server sends on `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(tag = "type")]
pub enum LiveEvent {
    /// A message was stored.
    #[serde(rename = "message.received")]
    Received {
        /// Its listing fields.
        message: MessageSummary,
        /// True when sent in answer to a `subscribe` (mail stored before).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replay: bool,
    },
    /// A sent message left the queue (sent, or failed for every recipient).
    #[serde(rename = "message.sent")]
    Sent {
        /// Its listing fields, with its `status`.
        message: MessageSummary,
        /// True when sent in answer to a `subscribe`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replay: bool,
    },
    /// The end of a `subscribe`'s replay.
    #[serde(rename = "subscribed")]
    Subscribed {
        /// The `after` asked for.
        after: u64,
        /// How many events were replayed.
        replayed: u32,
        /// True when more were missed than one replay sends: subscribe again
        /// with the last id replayed (or page `GET /api/messages`).
        more: bool,
    },
    /// The answer to `{"type": "ping"}`.
    #[serde(rename = "pong")]
    Pong,
    /// A frame the server could not take; the socket stays open.
    #[serde(rename = "error")]
    Error {
        /// What was wrong.
        error: String,
    },
}

/// A frame a client sends on `GET /api/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientFrame {
    /// Send me the events of messages stored after `after` (oldest first, at
    /// most 100), then `subscribed`.
    Subscribe {
        /// A message id; 0 for everything.
        after: u64,
    },
    /// Answered `{"type": "pong"}`.
    Ping,
}

/// One header as received: its name and its unfolded value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HeaderField {
    /// The header's name, as written.
    pub name: String,
    /// Its value, unfolded and trimmed, decoded where it was RFC 2047 encoded.
    pub value: String,
}

/// An attachment's metadata. Everything in it is written by the sender:
/// untrusted (a name may say `../../x` or carry control characters; the
/// download's `Content-Disposition` carries a cleaned one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// Its id within the message, stable (the MIME part's section number,
    /// as IMAP numbers it: `2`, `1.2`, `3.1` inside a forwarded message):
    /// download it at `/api/messages/:id/attachments/:attachmentId`.
    pub id: String,
    /// The file name (RFC 2231 / 2047 decoded), when given.
    pub name: Option<String>,
    /// `type/subtype`, lowercased, as declared.
    pub content_type: String,
    /// Decoded size in bytes: what the download answers.
    pub size: u64,
    /// `inline` (shown in the message, usually referenced from its HTML by
    /// `cid:`) or `attachment`.
    pub disposition: Disposition,
    /// Its Content-ID, without angle brackets, when it has one.
    pub content_id: Option<String>,
}

/// How an attached file is meant to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// A file beside the message.
    Attachment,
    /// Part of the message's content (an image its HTML shows by `cid:`).
    Inline,
}

impl Disposition {
    /// The stored (and serialized) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Attachment => "attachment",
            Disposition::Inline => "inline",
        }
    }

    /// Reads [`Self::as_str`]'s spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "attachment" => Some(Disposition::Attachment),
            "inline" => Some(Disposition::Inline),
            _ => None,
        }
    }
}

/// A file to send with a message (`attachments` of `POST /api/messages`,
/// `.../reply` and `.../forward`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAttachment {
    /// The file name the recipient sees: 1 to 255 bytes, no `/` or `\`, no
    /// control characters, not starting with a dot. Non-ASCII names are
    /// written as RFC 2231 parameters.
    #[cfg_attr(
        feature = "openapi",
        schemars(
            length(min = 1, max = 255),
            regex(
                pattern = r"^[^.\u0000-\u001F\u007F-\u009F/\\\u200E\u200F\u202A-\u202E\u2066-\u2069][^\u0000-\u001F\u007F-\u009F/\\\u200E\u200F\u202A-\u202E\u2066-\u2069]*$"
            )
        )
    )]
    pub filename: String,
    /// `type/subtype`; `application/octet-stream` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schemars(regex(
            pattern = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"
        ))
    )]
    pub content_type: Option<String>,
    /// The file's bytes, base64 (standard alphabet, padded; line breaks
    /// between its characters are ignored).
    #[cfg_attr(
        feature = "openapi",
        schemars(regex(
            pattern = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
        ))
    )]
    pub content: String,
    /// A Content-ID (without angle brackets) for the HTML to show it by
    /// `cid:`: 1 to 127 of `A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schemars(regex(
            pattern = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~@-][A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{0,125}[A-Za-z0-9!#$%&'*+/=?^_`{|}~@-]$|^[A-Za-z0-9!#$%&'*+/=?^_`{|}~@-]$"
        ))
    )]
    pub content_id: Option<String>,
    /// `attachment` (the default) or `inline` (shown in the HTML by its
    /// `contentId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
}

/// What `GET /api/messages/:id` adds to the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MessageDetail {
    /// Every address in the To header.
    pub to_addresses: Vec<String>,
    /// Every address in the Cc header.
    pub cc: Vec<String>,
    /// Every address in the Reply-To header.
    pub reply_to: Vec<String>,
    /// The Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The first id in In-Reply-To.
    pub in_reply_to: Option<String>,
    /// The ids in References, oldest first.
    pub references: Vec<String>,
    /// The Date header, when it parses.
    pub date: Option<Timestamp>,
    /// The plain-text body, decoded to UTF-8: at most 1 MiB (a longer one is
    /// cut at a character boundary and named in `warnings`; the raw message
    /// keeps every byte).
    pub text: Option<String>,
    /// The HTML body, decoded to UTF-8, bounded as `text` is.
    pub html: Option<String>,
    /// The new text of the message: its text (or its HTML as text) without
    /// quoted history ("On … wrote:" blocks, `>` quotes, forwarded and
    /// original-message dividers, mail clients' quote containers) and
    /// without a trailing signature; the whole text when it is all quote or a
    /// forward. Untrusted: written by the sender.
    pub extracted_text: Option<String>,
    /// One-time codes (verification codes, PINs, passcodes) found in the
    /// subject and the body, most likely first (at most 10). Untrusted:
    /// written by the sender, who may plant a code that is not one.
    #[serde(default)]
    pub codes: Vec<Code>,
    /// The http(s) links of the text and the HTML, each once, in the order
    /// they first appear (at most 100; tracking wrappers as they are).
    /// Untrusted: written by the sender; never follow one blindly.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Every header, in order.
    pub headers: Vec<HeaderField>,
    /// Attachment metadata.
    pub attachments: Vec<Attachment>,
    /// The `+tag` of the address it was delivered to, when there was one.
    pub tag: Option<String>,
    /// The envelope sender (SMTP MAIL FROM).
    pub envelope_from: Option<String>,
    /// What could not be read: the message is still stored whole and its raw
    /// bytes are available at `/api/messages/:id/raw`.
    pub warnings: Vec<String>,
    /// Outbound messages only: each recipient (Bcc included) and what became
    /// of its delivery. Absent for mail sent before recipients were recorded
    /// one by one: its one recipient is `to`, and its outcome `status`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientOutcome>,
}

/// `GET /api/messages/:id` → 200: the summary and the detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Message {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: MessageSummary,
    /// The rest.
    #[serde(flatten)]
    pub detail: MessageDetail,
}

/// One conversation in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ThreadSummary {
    /// Per-inbox id. When two threads turn out to be one (an original
    /// arrived after its reply), one id stays and the other is gone.
    pub id: u64,
    /// The subject of its first message: of the original, even when replies
    /// to it were stored before it.
    pub subject: Option<String>,
    /// Every address seen in its From, To and Cc (lowercased, first seen
    /// first; at most 50).
    pub participants: Vec<String>,
    /// How many messages it holds.
    pub message_count: u64,
    /// How many of them are unread.
    pub unread_count: u64,
    /// When its latest message arrived (or was sent).
    pub last_message_at: Timestamp,
    /// The id of its latest message.
    pub last_message_id: u64,
    /// The latest message's preview. Untrusted: written by the sender.
    pub preview: Option<String>,
    /// Whether any of its messages carries attachments.
    pub has_attachments: bool,
}

/// `GET /api/threads` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ThreadList {
    /// Latest activity first.
    pub threads: Vec<ThreadSummary>,
    /// Pass as `cursor` for the next page (a `lastMessageId`); null on the
    /// last page.
    pub next_cursor: Option<u64>,
}

/// A message of a thread: its summary and its new text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ThreadMessage {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: MessageSummary,
    /// As in the message's detail, cut at
    /// [`crate::limits::MAX_THREAD_TEXT_BYTES`] bytes here (on a character
    /// boundary; `GET /api/messages/:id` has all of it). Untrusted: written
    /// by the sender.
    pub extracted_text: Option<String>,
    /// Present and true when `extractedText` was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extracted_text_truncated: bool,
}

/// `GET /api/threads/:id` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Thread {
    /// The listing fields.
    #[serde(flatten)]
    pub summary: ThreadSummary,
    /// Its messages, oldest first: the latest
    /// [`crate::limits::MAX_THREAD_MESSAGES`] of them when it holds more
    /// (`messageCount` says how many it holds).
    pub messages: Vec<ThreadMessage>,
}

/// `PATCH /api/messages/:id` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The new read state.
    pub read: bool,
}

/// One plain address, or a list of them, as `POST /api/messages` takes
/// `to`, `cc`, `bcc` and `replyTo`. Each address is `local@domain` (no display
/// name): a dot-atom local part and a dotted domain name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(untagged, expecting = "an address or a list of addresses")]
pub enum AddressList {
    /// One address.
    One(
        #[cfg_attr(
            feature = "openapi",
            schemars(regex(pattern = ADDRESS_PATTERN), length(max = 254))
        )]
        String,
    ),
    /// Several (at most 50 recipients in `to`, `cc` and `bcc` together).
    Many(
        #[cfg_attr(
            feature = "openapi",
            schemars(
                length(max = crate::limits::MAX_RECIPIENTS),
                inner(regex(pattern = ADDRESS_PATTERN), length(max = 254))
            )
        )]
        Vec<String>,
    ),
}

/// What the OpenAPI document says of a `to`: as [`AddressList`], with at
/// least one address.
#[cfg(feature = "openapi")]
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "a schema only: never built")]
enum ToAddressList {
    /// One address.
    One(#[schemars(regex(pattern = ADDRESS_PATTERN), length(max = 254))] String),
    /// Several (at most 50 recipients in `to`, `cc` and `bcc` together).
    Many(
        #[schemars(
            length(min = 1, max = crate::limits::MAX_RECIPIENTS),
            inner(regex(pattern = ADDRESS_PATTERN), length(max = 254))
        )]
        Vec<String>,
    ),
}

/// A plain address as the OpenAPI document describes it (the check itself is
/// [`crate::outbound::parse_address`]).
#[cfg(feature = "openapi")]
const ADDRESS_PATTERN: &str = r"^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$";

impl Default for AddressList {
    fn default() -> Self {
        AddressList::Many(Vec::new())
    }
}

impl AddressList {
    /// The addresses, as given.
    pub fn as_slice(&self) -> &[String] {
        match self {
            AddressList::One(address) => std::slice::from_ref(address),
            AddressList::Many(addresses) => addresses,
        }
    }

    /// The name of item `index` in field `field` for an error: `to` for a
    /// single address, `to[2]` in a list.
    pub fn item_name(&self, field: &str, index: usize) -> String {
        match self {
            AddressList::One(_) => field.to_owned(),
            AddressList::Many(_) => format!("{field}[{index}]"),
        }
    }
}

/// `POST /api/messages` body: one message to up to 50 recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "openapi",
    schemars(extend("anyOf" = [
        { "properties": { "text": { "type": "string" } }, "required": ["text"] },
        { "properties": { "html": { "type": "string" } }, "required": ["html"] }
    ]))
)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The recipient, or a list of them (at least one). Each is one plain
    /// address, `local@domain` (no display name).
    #[cfg_attr(feature = "openapi", schemars(with = "ToAddressList"))]
    pub to: AddressList,
    /// Copies, named in the Cc header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<AddressList>,
    /// Blind copies: delivered, never named in the message's headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bcc: Option<AddressList>,
    /// Where replies should go (the Reply-To header).
    #[serde(rename = "replyTo", default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<AddressList>,
    /// The subject, one line: no control characters but tab.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schemars(
            regex(pattern = r"^[^\u0000-\u0008\u000A-\u001F\u007F-\u009F]*$"),
            length(max = 998)
        )
    )]
    pub subject: Option<String>,
    /// The plain-text body. At least one of `text` and `html` is required.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(regex(pattern = r"^[^\u0000]*$")))]
    pub text: Option<String>,
    /// The HTML body. Both bodies make a multipart/alternative message.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(regex(pattern = r"^[^\u0000]*$")))]
    pub html: Option<String>,
    /// Files to attach (at most 100). With attachments the body may be up
    /// to 10 MiB; the fields other than `attachments` stay within 64 KiB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "openapi",
        schemars(length(max = crate::limits::MAX_ATTACHMENTS))
    )]
    pub attachments: Vec<NewAttachment>,
}

/// How a recipient was named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    /// In `to` (the To header).
    To,
    /// In `cc` (the Cc header).
    Cc,
    /// In `bcc`: delivered, never named in the headers.
    Bcc,
}

impl RecipientKind {
    /// The stored (and serialized) spelling, which is also the field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::To => "to",
            RecipientKind::Cc => "cc",
            RecipientKind::Bcc => "bcc",
        }
    }

    /// Reads [`Self::as_str`]'s spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "to" => Some(RecipientKind::To),
            "cc" => Some(RecipientKind::Cc),
            "bcc" => Some(RecipientKind::Bcc),
            _ => None,
        }
    }
}

/// One recipient of a sent message and what became of its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RecipientOutcome {
    /// The address, as delivered to.
    pub address: String,
    /// Whether it was named in `to`, `cc` or `bcc`.
    pub kind: RecipientKind,
    /// `sent` once the recipient's inbox here or the relay took it.
    pub status: SendStatus,
    /// Why its delivery failed (or what the relay said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// What became of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SendStatus {
    /// Stored and not yet handed over (an interrupted send is retried).
    Queued,
    /// Accepted by the relay, or stored in the recipient's inbox here.
    Sent,
    /// Refused by the relay or the recipient; `statusReason` says why.
    Failed,
}

impl SendStatus {
    /// The stored (and serialized) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Queued => "queued",
            SendStatus::Sent => "sent",
            SendStatus::Failed => "failed",
        }
    }

    /// Reads [`Self::as_str`]'s spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(SendStatus::Queued),
            "sent" => Some(SendStatus::Sent),
            "failed" => Some(SendStatus::Failed),
            _ => None,
        }
    }
}

/// `POST /api/messages` → 201.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SendResponse {
    /// The outbound message's id in the sender's inbox.
    pub id: u64,
    /// The conversation the message belongs to (a reply joins the thread of
    /// what it answers; a new message or a forward starts one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u64>,
    /// What became of it: `sent` when at least one recipient got it and none
    /// is still `queued` (then `statusReason` says how many failed, if any),
    /// `failed` when every recipient failed, `queued` while any is pending.
    pub status: SendStatus,
    /// Why it failed, or how many of its recipients did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Each recipient and what became of it, in the order given (to, cc,
    /// bcc; duplicates listed once).
    #[serde(default)]
    pub recipients: Vec<RecipientOutcome>,
}

/// `POST /api/messages/:id/reply` body. The recipients, subject and
/// threading headers come from the message answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "openapi",
    schemars(extend("anyOf" = [
        { "properties": { "text": { "type": "string" } }, "required": ["text"] },
        { "properties": { "html": { "type": "string" } }, "required": ["html"] }
    ]))
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplyRequest {
    /// The new plain text; the original is quoted below it. At least one of
    /// `text` and `html` is required.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(regex(pattern = r"^[^\u0000]*$")))]
    pub text: Option<String>,
    /// The new HTML; the original is quoted below it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(regex(pattern = r"^[^\u0000]*$")))]
    pub html: Option<String>,
    /// Also to the original's To and Cc (never to this inbox itself).
    #[serde(default)]
    pub reply_all: bool,
    /// Files to attach, as for a send (the original's are not re-attached).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "openapi",
        schemars(length(max = crate::limits::MAX_ATTACHMENTS))
    )]
    pub attachments: Vec<NewAttachment>,
}

/// `POST /api/messages/:id/forward` body: the recipients (as for a send),
/// and an optional note above the forwarded message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardRequest {
    /// One address or a list; at least one.
    #[cfg_attr(feature = "openapi", schemars(with = "ToAddressList"))]
    pub to: AddressList,
    /// Copy recipients.
    #[serde(default)]
    pub cc: Option<AddressList>,
    /// Blind copy recipients (never written into the message).
    #[serde(default)]
    pub bcc: Option<AddressList>,
    /// A note above the forwarded message, as plain text.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(regex(pattern = r"^[^\u0000]*$")))]
    pub text: Option<String>,
    /// A note above the forwarded message, as HTML.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schemars(regex(pattern = r"^[^\u0000]*$")))]
    pub html: Option<String>,
    /// Whether the original's attachments go with it, byte for byte (the
    /// default); `false` sends only its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_attachments: Option<bool>,
    /// More files to attach, after the original's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "openapi",
        schemars(length(max = crate::limits::MAX_ATTACHMENTS))
    )]
    pub attachments: Vec<NewAttachment>,
}

/// `PUT /api/webhook` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where events are POSTed: https, on a public host (loopback, private,
    /// link-local, CGNAT, multicast and metadata addresses are refused),
    /// written in ASCII (an international host in its xn-- form; no
    /// percent-encoding in the host).
    #[cfg_attr(
        feature = "openapi",
        schemars(
            regex(
                pattern = r#"^https://[!"$&-.0->A-\[\]-~]+\.[!"$&-.0->A-\[\]-~]+([/?#][!-~]*)?$"#
            ),
            length(max = 2048)
        )
    )]
    pub url: String,
}

/// `PUT /api/webhook` → 200: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookCreated {
    /// The webhook URL, as normalized.
    pub url: String,
    /// The signing secret, `whsec_` and base64 of 32 bytes.
    pub secret: String,
    /// When this webhook was set.
    pub created_at: Timestamp,
}

/// `GET /api/webhook` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookInfo {
    /// The webhook URL.
    pub url: String,
    /// When it was set.
    pub created_at: Timestamp,
}

/// The events a webhook is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub enum WebhookEventKind {
    /// A message arrived in the inbox.
    #[serde(rename = "message.received")]
    Received,
    /// The inbox sent a message.
    #[serde(rename = "message.sent")]
    Sent,
}

impl WebhookEventKind {
    /// The event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventKind::Received => "message.received",
            WebhookEventKind::Sent => "message.sent",
        }
    }

    /// Reads [`Self::as_str`]'s spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "message.received" => Some(WebhookEventKind::Received),
            "message.sent" => Some(WebhookEventKind::Sent),
            _ => None,
        }
    }
}

/// The body POSTed to a webhook. The same bytes are sent on every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    /// What happened.
    pub event: WebhookEventKind,
    /// Unique and stable across retries (also sent as `webhook-id`): a
    /// receiver deduplicates on it.
    pub event_id: String,
    /// The message's id in this inbox.
    pub message_id: u64,
    /// The sender's address.
    pub from: String,
    /// The recipient's address.
    pub to: String,
    /// The subject.
    pub subject: Option<String>,
    /// When the message arrived (or was sent).
    pub received_at: Timestamp,
}

/// One delivery attempt of a webhook event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    /// The event's id (`webhook-id`).
    pub event_id: String,
    /// The event.
    pub event: WebhookEventKind,
    /// The message it is about.
    pub message_id: u64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When the attempt was made.
    pub at: Timestamp,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed (a non-2xx, a timeout, a refused URL), if it did.
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: u64,
    /// When the next attempt is due, if another is scheduled.
    pub next_attempt_at: Option<Timestamp>,
}

/// `GET /api/webhook/deliveries` → 200: the most recent attempts first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryList {
    /// Up to 100 attempts, newest first.
    pub deliveries: Vec<WebhookDelivery>,
}
