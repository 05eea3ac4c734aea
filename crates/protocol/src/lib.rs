//! The wire between an agent, the router Worker and each inbox's Durable Object.
//!
//! Everything both deployables must agree on lives here and nowhere else: the
//! public API's request and response types and its error shape, the rules for
//! handles and API keys, timestamps, and the vocabulary the router uses to talk
//! to an InboxDO ([`wire::InboxRequest`]). The crate does no I/O, reads no clock
//! and draws no randomness: callers pass `now` and random bytes in.

pub mod address;
pub mod api;
pub mod error;
pub mod filename;
pub mod handle;
pub mod key;
pub mod lifecycle;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod outbound;
pub mod reply;
pub mod search;
pub mod timestamp;
pub mod webhook_signature;
pub mod webhook_url;
pub mod wire;

pub use error::{ApiError, ErrorCode};
pub use handle::{Handle, HandleError};
pub use key::{ApiKey, KeyHash};
pub use reply::Reply;
pub use timestamp::Timestamp;

/// The service name reported by `GET /api/health`.
pub const SERVICE_NAME: &str = "inboxkit";

/// This build's version, reported by `GET /api/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Names shared by the code and the two `wrangler.toml` files. A tidy test
/// checks that the configuration files use exactly these.
pub mod bindings {
    /// The Durable Object namespace binding of InboxDO, in the router Worker.
    pub const INBOX_NAMESPACE: &str = "INBOX";
    /// The class name of the InboxDO, exported by the inbox-do script.
    pub const INBOX_CLASS: &str = "InboxObject";
    /// The Worker script that hosts InboxDO; the router binds it by `script_name`.
    pub const INBOX_SCRIPT: &str = "inboxkit-inbox";
    /// The router Worker's script name.
    pub const ROUTER_SCRIPT: &str = "inboxkit";
    /// The KV namespace holding the routing indexes.
    pub const DIRECTORY_KV: &str = "DIRECTORY";
    /// The variable naming the mail domain (`handle@MAIL_DOMAIN`). It may list
    /// several, comma-separated; the first is the one addresses are given on,
    /// and mail to any of them is accepted.
    pub const MAIL_DOMAIN_VAR: &str = "MAIL_DOMAIN";
    /// The router's development setting: `"true"` lets webhooks use plain
    /// `http` to loopback addresses (never set it in production).
    pub const WEBHOOK_ALLOW_HTTP_LOOPBACK_VAR: &str = "WEBHOOK_ALLOW_HTTP_LOOPBACK";
    /// The inbox script's `send_email` binding: Cloudflare's relay.
    pub const SEND_EMAIL_BINDING: &str = "SEND_EMAIL";
    /// The inbox script's secret selecting the HTTP relay (Resend's API).
    pub const RESEND_API_KEY_VAR: &str = "RESEND_API_KEY";
    /// The HTTP relay's endpoint (default: Resend's own).
    pub const RESEND_API_URL_VAR: &str = "RESEND_API_URL";
    /// The router's signup limit per client address: signups per hour
    /// (default [`crate::limits::SIGNUPS_PER_HOUR`]).
    pub const SIGNUPS_PER_HOUR_VAR: &str = "SIGNUPS_PER_HOUR";
    /// The inbox script's storage cap per inbox, in bytes (default
    /// [`crate::limits::MAX_INBOX_BYTES`]).
    pub const MAX_INBOX_BYTES_VAR: &str = "MAX_INBOX_BYTES";
    /// The inbox script's webhook retry schedule override: comma-separated
    /// seconds between attempts (tests shorten it; the default is
    /// 0,10,60,600,3600,21600).
    pub const WEBHOOK_RETRY_SECONDS_VAR: &str = "WEBHOOK_RETRY_SECONDS";
}

/// Limits the API enforces, in one place so that docs and tests quote them.
pub mod limits {
    /// The largest JSON request body accepted by any endpoint, in bytes.
    pub const MAX_JSON_BODY: usize = 64 * 1024;
    /// The largest body of a send, reply or forward that carries
    /// `attachments` (their base64 included), in bytes. Its other fields
    /// stay within [`MAX_JSON_BODY`].
    pub const MAX_ATTACHMENT_BODY: usize = 10 * 1024 * 1024;
    /// The most files one message may attach.
    pub const MAX_ATTACHMENTS: usize = 100;
    /// The largest message Cloudflare's `send_email` binding takes, whole
    /// (headers, bodies and base64 attachments): 5 MiB.
    pub const SEND_EMAIL_MAX_BYTES: usize = 5 * 1024 * 1024;
    /// The largest message the HTTP relay (Resend) takes: 40 MB, counting
    /// its attachments after base64.
    pub const HTTP_RELAY_MAX_BYTES: usize = 40 * 1000 * 1000;
    /// The largest inbound message accepted, in bytes (25 MiB, as Cloudflare
    /// Email Routing's own limit).
    pub const MAX_MESSAGE_BYTES: u64 = 25 * 1024 * 1024;
    /// The default page size of `GET /api/messages`.
    pub const DEFAULT_PAGE: u32 = 20;
    /// The largest page size of `GET /api/messages`.
    pub const MAX_PAGE: u32 = 100;
    /// Sends allowed per inbox in any rolling minute.
    pub const SENDS_PER_MINUTE: u32 = 10;
    /// Sends allowed per inbox in any rolling hour.
    pub const SENDS_PER_HOUR: u32 = 100;
    /// Recipients (`to`, `cc` and `bcc` together) of one message, at most.
    pub const MAX_RECIPIENTS: usize = 50;
    /// Recipients an inbox may send to in any rolling hour, counted over all
    /// its messages (each recipient of each message once).
    pub const RECIPIENTS_PER_HOUR: u32 = 500;
    /// Signups allowed per client address per hour, unless configured.
    pub const SIGNUPS_PER_HOUR: u32 = 20;
    /// The storage cap of one inbox (raw message bytes), unless configured:
    /// 1 GiB, a tenth of what one Durable Object may hold.
    pub const MAX_INBOX_BYTES: u64 = 1024 * 1024 * 1024;
    /// The most messages `GET /api/threads/:id` returns (the latest ones).
    pub const MAX_THREAD_MESSAGES: u32 = 200;
    /// The most bytes of a message's `extractedText` that `GET
    /// /api/threads/:id` gives (64 KiB), so a thread's answer stays bounded.
    pub const MAX_THREAD_TEXT_BYTES: usize = 64 * 1024;
    /// The most addresses a thread lists as its participants.
    pub const MAX_PARTICIPANTS: usize = 50;
    /// The most codes a message's detail lists.
    pub const MAX_CODES: usize = 10;
    /// The most links a message's detail lists.
    pub const MAX_LINKS: usize = 100;
    /// The longest `q` of search and wait, in bytes.
    pub const MAX_QUERY_BYTES: usize = 1024;
    /// The default `timeout` of `GET /api/messages/wait`, in seconds.
    pub const DEFAULT_WAIT_SECONDS: u64 = 30;
    /// The longest `timeout` of `GET /api/messages/wait`, in seconds.
    pub const MAX_WAIT_SECONDS: u64 = 60;
    /// Waits one inbox holds open at once; more get 429.
    pub const MAX_WAITERS: usize = 100;
    /// Live event sockets one inbox holds open at once; more get 429.
    pub const MAX_EVENT_SOCKETS: usize = 32;
    /// Events a `subscribe` replays at most.
    pub const MAX_REPLAY: u32 = 100;
    /// The largest frame a client may send on the events socket, in bytes.
    pub const MAX_CLIENT_FRAME: usize = 1024;
    /// Webhook delivery attempts kept per inbox (older ones are dropped).
    pub const KEPT_DELIVERIES: u32 = 100;
    /// How long one webhook delivery attempt may take, in milliseconds.
    pub const WEBHOOK_TIMEOUT_MILLIS: u64 = 5_000;
    /// Keys one inbox holds at most (of either scope).
    pub const MAX_KEYS: usize = 20;
    /// The longest key name, in characters.
    pub const MAX_KEY_NAME_CHARS: usize = 100;
    /// The longest `Idempotency-Key`, in characters.
    pub const MAX_IDEMPOTENCY_KEY: usize = 256;
    /// How long an `Idempotency-Key` is remembered, in milliseconds (24 h).
    pub const IDEMPOTENCY_TTL_MILLIS: i64 = 24 * 60 * 60 * 1000;
    /// How long a repeat of a send still in flight is answered 409 before
    /// it is answered from the message's state (the first request was cut
    /// short), in milliseconds.
    pub const IDEMPOTENCY_IN_FLIGHT_MILLIS: i64 = 60 * 1000;
    /// A key's `lastUsedAt` is written at most once in this long, in
    /// milliseconds (one hour), so a request is not a write.
    pub const LAST_USED_GRANULARITY_MILLIS: i64 = 60 * 60 * 1000;
    /// The shortest and longest `retentionDays`.
    pub const RETENTION_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;
    /// Messages one retention pass of the alarm deletes at most; more wait
    /// for the next pass, at once.
    pub const RETENTION_BATCH: u32 = 200;
}

#[cfg(test)]
mod tests;
