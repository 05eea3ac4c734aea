//! The router → InboxDO vocabulary.
//!
//! The router sends each request as `POST` [`INBOX_RPC_URL`] with the
//! [`InboxRequest`] as JSON, base64url-encoded, in the [`REQUEST_HEADER`]
//! header, and the request's payload (an inbound message's raw bytes) as the
//! body, so a 25 MiB message is streamed through without being re-encoded or
//! held by the router. The InboxDO answers with a [`crate::Reply`] whose body
//! is already the public API's body, so the router forwards it unchanged. The
//! InboxDO trusts nothing in a request: it re-checks the key hash itself.

use crate::api::{KeyScope, RecipientKind};
use crate::{Handle, KeyHash, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The header carrying the encoded [`InboxRequest`].
pub const REQUEST_HEADER: &str = "x-inboxkit-request";

/// The wire's version. Raised when the router starts sending something an
/// InboxDO built before it cannot read (a new variant, or a field an older
/// object would refuse or misread); never for additions only a newer object
/// sends. An inbox script of version N serves every router of version ≤ N
/// (the previous release's requests are kept in
/// `crates/testkit/tests/wire/`), and `cargo xtask deploy router` refuses to
/// put a router in front of an inbox script of a lower version.
pub const WIRE_VERSION: u32 = 1;

/// The request as a header value: base64url (no padding) of its JSON.
pub fn encode_request(request: &InboxRequest) -> String {
    // Serializing our own enum of strings and numbers cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(request).unwrap_or_default())
}

/// Reads a header value written by [`encode_request`].
pub fn decode_request(header: &str) -> Result<InboxRequest, String> {
    let json = URL_SAFE_NO_PAD
        .decode(header.trim())
        .map_err(|e| format!("request header is not base64url: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("request header is not a request: {e}"))
}

/// The URL of every router → InboxDO request. The host is never resolved: a
/// Durable Object stub receives the request directly.
pub const INBOX_RPC_URL: &str = "https://inbox.internal/rpc";

/// How long a signup's claim on a handle holds before it is confirmed. A claim
/// left unconfirmed (the router failed between claiming and publishing the
/// key) expires, and the handle becomes free again.
pub const CLAIM_TTL_MILLIS: i64 = 2 * 60 * 1000;

/// One request from the router to an InboxDO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    clippy::large_enum_variant,
    reason = "one request at a time, decoded and consumed at once: boxing the call saves \
              nothing (the lint fires on 64-bit hosts only, hence not `expect`)"
)]
pub enum InboxRequest {
    /// Signup, step 1: claim this (empty) inbox for `handle` with a key hash.
    /// 201 when claimed, 409 `handle_taken` when the inbox is owned or claimed.
    #[serde(rename_all = "camelCase")]
    Claim {
        /// The handle, which names this Durable Object.
        handle: Handle,
        /// The hash of the new key.
        key_hash: KeyHash,
    },
    /// Signup, step 2: the key is published in KV; make the claim permanent.
    /// 204, or 409 `conflict` when the claim was lost (it expired and another
    /// signup took the handle).
    #[serde(rename_all = "camelCase")]
    Confirm {
        /// The hash given in the claim.
        key_hash: KeyHash,
        /// The key's first characters, for `GET /api/keys` (absent from a
        /// router that predates key listing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
    /// Signup failed after the claim: give the handle back. 204 whether or not
    /// the claim was still held; an active inbox is never released.
    #[serde(rename_all = "camelCase")]
    Release {
        /// The hash given in the claim.
        key_hash: KeyHash,
    },
    /// Store an inbound message; its raw bytes are the payload. 201 with
    /// [`Ingested`] when stored, 200 when it is a redelivery of a stored
    /// message, 404 when this object holds no active inbox, 413 when too large.
    #[serde(rename_all = "camelCase")]
    Ingest {
        /// The envelope sender (SMTP MAIL FROM).
        envelope_from: String,
        /// The envelope recipient, lowercased, with its `+tag`.
        recipient: String,
        /// The recipient's `+tag`.
        tag: Option<String>,
    },
    /// Take one token from this object's rate-limit bucket (the object is
    /// named for what is limited, e.g. signups from one client address): the
    /// bucket holds `limit` tokens and refills `limit` per `window_millis`.
    /// 204 when a token was taken, 429 `rate_limited` with `Retry-After`
    /// when none is left.
    #[serde(rename_all = "camelCase")]
    Throttle {
        /// Tokens per window (and the bucket's size).
        limit: u32,
        /// The window, in milliseconds.
        window_millis: i64,
    },
    /// A deep health check: one SQLite read. 204 when the object and its
    /// database answer.
    Ping,
    /// An authenticated API call on behalf of the key's owner.
    #[serde(rename_all = "camelCase")]
    Api {
        /// The hash of the key the caller presented.
        key_hash: KeyHash,
        /// The deployment's mail domain, for building addresses.
        mail_domain: String,
        /// What is asked.
        call: ApiCall,
    },
}

/// The authenticated calls an InboxDO serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase", deny_unknown_fields)]
pub enum ApiCall {
    /// `GET /api/me`.
    Me,
    /// `GET /api/messages`.
    #[serde(rename_all = "camelCase")]
    ListMessages {
        /// Page size, 1 to [`crate::limits::MAX_PAGE`].
        limit: u32,
        /// Only ids below this.
        cursor: Option<u64>,
        /// Only messages received after this.
        since: Option<Timestamp>,
        /// Only unread messages.
        unread: bool,
    },
    /// `GET /api/messages/search`.
    Search {
        /// The query, as the client wrote it (the inbox parses it).
        q: String,
        /// Page size, 1 to [`crate::limits::MAX_PAGE`].
        limit: u32,
        /// Where the previous page ended (its `nextCursor`).
        cursor: Option<String>,
    },
    /// `GET /api/messages/wait`.
    #[serde(rename_all = "camelCase")]
    Wait {
        /// Only messages with a greater id; the newest id when absent.
        after: Option<u64>,
        /// How long to wait, in milliseconds (1 to 60 s).
        timeout_millis: u64,
        /// Only messages matching this search query.
        q: Option<String>,
    },
    /// `GET /api/events`: the live event socket.
    Events {
        /// The `Sec-WebSocket-Protocol` to echo, when the key came as one.
        protocol: Option<String>,
    },
    /// `GET /api/messages/:id`.
    GetMessage {
        /// The message id.
        id: u64,
    },
    /// `PATCH /api/messages/:id`.
    MarkRead {
        /// The message id.
        id: u64,
        /// The new state.
        read: bool,
    },
    /// `GET /api/messages/:id/raw`.
    GetRaw {
        /// The message id.
        id: u64,
    },
    /// `GET /api/threads`.
    #[serde(rename_all = "camelCase")]
    ListThreads {
        /// Page size, 1 to [`crate::limits::MAX_PAGE`].
        limit: u32,
        /// Only threads whose latest message id is below this.
        cursor: Option<u64>,
        /// Only threads with unread messages.
        unread: bool,
    },
    /// `GET /api/threads/:id`.
    GetThread {
        /// The thread id.
        id: u64,
    },
    /// `DELETE /api/threads/:id`.
    DeleteThread {
        /// The thread id.
        id: u64,
    },
    /// `POST /api/messages`, already validated by the router.
    ///
    /// `to` and `route` keep their first meaning: the first `to` recipient
    /// and how it leaves. The fields after them came later and default to
    /// empty, so a request from a router that predates them still reads
    /// (one recipient, `to`); they are left out when empty, so a send to
    /// that one recipient also reads in an InboxDO that predates them.
    #[serde(rename_all = "camelCase")]
    Send {
        /// The first `to` recipient, as [`crate::outbound::parse_address`]
        /// returns it (the message's summary shows it as `to`).
        to: String,
        /// The subject.
        subject: Option<String>,
        /// The plain-text body.
        text: Option<String>,
        /// The HTML body.
        html: Option<String>,
        /// How `to` leaves.
        route: SendRoute,
        /// The Reply-To addresses.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reply_to: Vec<String>,
        /// Every recipient with its route, `to` first; empty when `to` is
        /// the only one.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recipients: Vec<RoutedRecipient>,
        /// The files attached, whose bytes are the request's payload, one
        /// after the other in this order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<WireAttachment>,
        /// The `Idempotency-Key` the client sent, checked by the router.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// `POST /api/messages/:id/reply`, step 1: who the reply goes to (the
    /// router then routes each address, as for a send). 200 with
    /// [`ReplyPlan`]; 404 when there is no such message; 409 when nobody but
    /// this inbox is left to reply to.
    #[serde(rename_all = "camelCase")]
    ReplyRecipients {
        /// The message answered.
        id: u64,
        /// Also to its To and Cc.
        reply_all: bool,
    },
    /// `POST /api/messages/:id/reply`, step 2: the reply, with every
    /// recipient of the plan routed. Answered as a send.
    #[serde(rename_all = "camelCase")]
    Reply {
        /// The message answered.
        id: u64,
        /// Also to its To and Cc.
        reply_all: bool,
        /// The new plain text.
        text: Option<String>,
        /// The new HTML.
        html: Option<String>,
        /// The plan's recipients, routed, `to` first.
        recipients: Vec<RoutedRecipient>,
        /// The files attached, as for [`ApiCall::Send`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<WireAttachment>,
        /// The `Idempotency-Key` the client sent, checked by the router.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// `POST /api/messages/:id/forward`, already validated and routed by the
    /// router. Answered as a send.
    #[serde(rename_all = "camelCase")]
    Forward {
        /// The message forwarded.
        id: u64,
        /// A note above it, as plain text.
        text: Option<String>,
        /// A note above it, as HTML.
        html: Option<String>,
        /// Every recipient with its route, `to` first.
        recipients: Vec<RoutedRecipient>,
        /// Whether the original's attachments go with it (left out when
        /// they do, as before there was a choice).
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        include_attachments: bool,
        /// More files attached, as for [`ApiCall::Send`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<WireAttachment>,
        /// The `Idempotency-Key` the client sent, checked by the router.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// `GET /api/messages/:id/attachments/:attachmentId`: the decoded bytes,
    /// streamed.
    GetAttachment {
        /// The message id.
        id: u64,
        /// The attachment's id within it (its MIME section number).
        attachment: String,
    },
    /// `PUT /api/webhook`, with the URL already checked by the router.
    #[serde(rename_all = "camelCase")]
    PutWebhook {
        /// The normalized URL.
        url: String,
        /// The new signing secret's text form (`whsec_...`).
        secret: String,
        /// Whether the URL was accepted under the development setting that
        /// allows `http` to loopback; deliveries re-check it the same way.
        allow_http_loopback: bool,
    },
    /// `GET /api/webhook`.
    GetWebhook,
    /// `DELETE /api/webhook`.
    DeleteWebhook,
    /// `GET /api/webhook/deliveries`.
    ListDeliveries,
    /// `DELETE /api/messages/:id`.
    DeleteMessage {
        /// The message id.
        id: u64,
    },
    /// `PATCH /api/me`, with the body checked by the router.
    #[serde(rename_all = "camelCase")]
    UpdateMe {
        /// Days to keep messages; `None` keeps them.
        retention_days: Option<u32>,
    },
    /// `DELETE /api/me`: erases the inbox and leaves its tombstone. 200
    /// with [`Erased`] (read by the router, which then removes the KV
    /// entries and answers 204).
    DeleteInbox,
    /// `GET /api/keys`.
    ListKeys,
    /// `POST /api/keys`, step 1: note a new key, not yet usable. 204; 400
    /// for a bad name; 409 when the inbox has [`crate::limits::MAX_KEYS`].
    #[serde(rename_all = "camelCase")]
    CreateKey {
        /// The new key's hash.
        key_hash: KeyHash,
        /// Its name, checked by the router.
        name: String,
        /// What it may do.
        scope: KeyScope,
        /// Its first characters, to recognise it by.
        prefix: String,
    },
    /// `POST /api/keys`, step 2, once the key is in KV: make it usable.
    /// 201 with its [`crate::api::KeyInfo`]; 409 when it is no longer
    /// pending (it expired and was dropped).
    #[serde(rename_all = "camelCase")]
    ConfirmKey {
        /// The hash given in step 1.
        key_hash: KeyHash,
    },
    /// `POST /api/keys` failed after step 1: forget the pending key. 204
    /// whether or not it was still there; a confirmed key is never dropped
    /// by this.
    #[serde(rename_all = "camelCase")]
    DropKey {
        /// The hash given in step 1.
        key_hash: KeyHash,
    },
    /// `DELETE /api/keys/:id`: 200 with [`KeyRemoved`] (read by the router,
    /// which removes its KV entry and answers 204); 409 for the last `full`
    /// key.
    DeleteKey {
        /// The key's id.
        id: u64,
    },
    /// `GET /api/export`: every message as mboxrd, streamed.
    Export,
}

/// Whether an [`ApiCall`] only reads (a `read` key may make it) or changes
/// something (only a `full` key may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// It changes nothing.
    Read,
    /// It changes something, or starts what does (a reply's first step).
    Write,
}

impl ApiCall {
    /// What the call needs of the key: the InboxDO refuses a write from a
    /// `read` key. The match has no catch-all, so a new call does not
    /// compile without a decision.
    pub fn access(&self) -> Access {
        match self {
            ApiCall::Me
            | ApiCall::ListMessages { .. }
            | ApiCall::Search { .. }
            | ApiCall::Wait { .. }
            | ApiCall::Events { .. }
            | ApiCall::GetMessage { .. }
            | ApiCall::GetRaw { .. }
            | ApiCall::ListThreads { .. }
            | ApiCall::GetThread { .. }
            | ApiCall::GetAttachment { .. }
            | ApiCall::GetWebhook
            | ApiCall::ListDeliveries
            | ApiCall::ListKeys
            | ApiCall::Export => Access::Read,
            ApiCall::MarkRead { .. }
            | ApiCall::DeleteThread { .. }
            | ApiCall::Send { .. }
            | ApiCall::ReplyRecipients { .. }
            | ApiCall::Reply { .. }
            | ApiCall::Forward { .. }
            | ApiCall::PutWebhook { .. }
            | ApiCall::DeleteWebhook
            | ApiCall::DeleteMessage { .. }
            | ApiCall::UpdateMe { .. }
            | ApiCall::DeleteInbox
            | ApiCall::CreateKey { .. }
            | ApiCall::ConfirmKey { .. }
            | ApiCall::DropKey { .. }
            | ApiCall::DeleteKey { .. } => Access::Write,
        }
    }
}

/// The InboxDO's answer to [`ApiCall::DeleteInbox`]: what the router
/// removes from KV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Erased {
    /// The handle the inbox had (its `handle:` entry goes).
    pub handle: Handle,
    /// Every key it had (their `key:` entries go).
    pub key_hashes: Vec<KeyHash>,
}

/// The InboxDO's answer to [`ApiCall::DeleteKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRemoved {
    /// The deleted key's hash (its `key:` entry goes).
    pub key_hash: KeyHash,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// A file attached to a send, checked by the router: its bytes travel as
/// the request's payload (not base64 in the request header), `size` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireAttachment {
    /// The file name (checked by [`crate::filename::check_outbound_name`]).
    pub filename: String,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    /// The Content-ID, without angle brackets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// Shown inline rather than as a file beside the message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
    /// How many bytes of the payload are this file's.
    pub size: u64,
}

/// The InboxDO's answer to [`ApiCall::ReplyRecipients`]: the addresses a
/// reply goes to, each once, never the inbox itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyPlan {
    /// Its To recipients (never empty).
    pub to: Vec<String>,
    /// Its Cc recipients.
    pub cc: Vec<String>,
}

/// One recipient of a send and how it leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoutedRecipient {
    /// The address, as [`crate::outbound::parse_address`] returns it (for
    /// an inbox here, lowercased, with its `+tag`).
    pub address: String,
    /// Whether it is a To, Cc or Bcc recipient.
    pub kind: RecipientKind,
    /// How it leaves.
    pub route: SendRoute,
}

/// How an outbound message leaves this deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "camelCase", deny_unknown_fields)]
pub enum SendRoute {
    /// Through the configured relay (the recipient is elsewhere).
    Relay,
    /// Straight into another inbox of this deployment, with no relay.
    #[serde(rename_all = "camelCase")]
    Direct {
        /// The recipient inbox's handle.
        handle: Handle,
        /// Its Durable Object id (hex).
        object_id: String,
        /// The recipient's `+tag`.
        tag: Option<String>,
    },
}

/// The InboxDO's answer to [`InboxRequest::Ingest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingested {
    /// The stored message's id.
    pub id: u64,
    /// Whether it was already stored (a redelivery).
    pub duplicate: bool,
}
