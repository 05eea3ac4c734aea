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
    /// The handle wanted; one is generated when absent or null.
    #[serde(default)]
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

/// One header as received: its name and its unfolded value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct HeaderField {
    /// The header's name, as written.
    pub name: String,
    /// Its value, unfolded and trimmed, decoded where it was RFC 2047 encoded.
    pub value: String,
}

/// An attachment's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The file name (RFC 2231 / 2047 decoded), when given.
    pub name: Option<String>,
    /// `type/subtype`, lowercased.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
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
    /// The plain-text body, decoded to UTF-8.
    pub text: Option<String>,
    /// The HTML body, decoded to UTF-8.
    pub html: Option<String>,
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

/// `PATCH /api/messages/:id` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The new read state.
    pub read: bool,
}
