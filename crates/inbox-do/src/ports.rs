//! What an inbox needs from outside itself, and how it is configured.

use protocol::wire::InboxRequest;
use protocol::{Reply, Timestamp};
use std::fmt;

/// One outbound HTTP request (a webhook delivery or a call to the HTTP relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// The absolute URL.
    pub url: String,
    /// Request headers (the method is always POST).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Give up after this long with no complete answer.
    pub timeout_millis: u64,
}

/// The answer to an [`HttpCall`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The body (only the relay's is read, for its error message).
    pub body: Vec<u8>,
}

/// A failure of the platform around the inbox (a fetch, the `send_email`
/// binding, another object, the alarm, storage): a sentence for the inbox's
/// records or its log, never with a secret or a URL's query in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlatformError(pub String);

impl From<String> for PlatformError {
    fn from(text: String) -> Self {
        PlatformError(text)
    }
}

impl From<&str> for PlatformError {
    fn from(text: &str) -> Self {
        PlatformError(text.to_owned())
    }
}

/// The platform around an inbox: the Durable Object's runtime in production,
/// testkit's doubles in tests. Every method but [`Platform::now`] is I/O; an
/// `Err` is a [`PlatformError`].
#[allow(async_fn_in_trait)] // single-threaded on Workers; no Send bound wanted
pub trait Platform {
    /// The current time. It may move across every `await`.
    fn now(&self) -> Timestamp;
    /// POSTs `call`; `Err` when no answer came (network failure, timeout).
    async fn http(&self, call: &HttpCall) -> Result<HttpAnswer, PlatformError>;
    /// Hands `raw` to Cloudflare's `send_email` binding.
    async fn send_email(&self, from: &str, to: &str, raw: &[u8]) -> Result<(), PlatformError>;
    /// Sends `request` with `payload` to another inbox of this deployment.
    async fn call_inbox(
        &self,
        object_id: &str,
        request: &InboxRequest,
        payload: &[u8],
    ) -> Result<Reply, PlatformError>;
    /// Wakes this inbox (its `alarm`) at `at`, replacing any earlier setting.
    async fn set_alarm(&self, at: Timestamp) -> Result<(), PlatformError>;
    /// Resolves once `millis` have passed on the platform's clock; the inbox
    /// races its hand-overs (`call_inbox`, `send_email`) against it. The
    /// default never resolves: a platform without timers bounds nothing.
    async fn sleep(&self, millis: u64) {
        let _ = millis;
        std::future::pending::<()>().await;
    }
    /// Awaits `until` as idle time: other requests to the object run
    /// meanwhile (a wait for mail). On the platform every await is such
    /// time; testkit hands the object's turn to other requests.
    async fn idle<T>(&self, until: impl Future<Output = T>) -> T {
        until.await
    }
    /// Sends `frame` (a JSON text) to every live event socket of this inbox;
    /// one that cannot take it is dropped by the platform. Synchronous: the
    /// frame is queued, not awaited. The default has no sockets.
    fn publish(&self, frame: &str) {
        let _ = frame;
    }
    /// Whether a frame published now would reach a live event socket: when
    /// none is open, an event need not be made at all. The default has no
    /// sockets.
    fn listening(&self) -> bool {
        false
    }
    /// Cancels this inbox's alarm, if one is set. The default does
    /// nothing.
    async fn delete_alarm(&self) -> Result<(), PlatformError> {
        Ok(())
    }
    /// Closes this inbox's live event sockets: those opened with the key
    /// whose hash (hex) is `tag`, or every one when `tag` is `None`. The
    /// default has no sockets.
    fn close_sockets(&self, tag: Option<&str>) {
        let _ = tag;
    }
    /// Deletes everything this object stores (a rate limiter whose bucket is
    /// full again leaves nothing behind). Its SQL tables are already dropped
    /// by the caller; the default does nothing more.
    async fn delete_all_storage(&self) -> Result<(), PlatformError> {
        Ok(())
    }
}

/// The relay that carries mail to recipients outside this deployment.
#[derive(Clone, PartialEq, Eq)]
pub enum Relay {
    /// None configured: only inboxes of this deployment can be written to.
    None,
    /// Cloudflare's `send_email` binding.
    SendEmail,
    /// An HTTP API in Resend's shape (`POST {url}` with a bearer key).
    Http {
        /// The API key (a secret: never printed).
        api_key: String,
        /// The endpoint, `https://api.resend.com/emails` unless overridden.
        url: String,
    },
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Relay::None => f.write_str("None"),
            Relay::SendEmail => f.write_str("SendEmail"),
            Relay::Http { url, .. } => write!(f, "Http {{ url: {url:?}, api_key: <redacted> }}"),
        }
    }
}

/// Resend's endpoint, the HTTP relay's default.
pub const RESEND_API_URL: &str = "https://api.resend.com/emails";

/// Seconds to wait before each webhook delivery attempt: the first at once,
/// then after 10 s, 1 min, 10 min, 1 h and 6 h. Six attempts in all.
pub const DEFAULT_RETRY_SECONDS: [u64; 6] = [0, 10, 60, 600, 3600, 21600];

/// An inbox script's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxConfig {
    /// The outbound relay.
    pub relay: Relay,
    /// Seconds before each webhook attempt (see [`DEFAULT_RETRY_SECONDS`]).
    pub retry_seconds: Vec<u64>,
    /// The most raw mail bytes one inbox holds (inbound and outbound).
    pub max_inbox_bytes: u64,
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            relay: Relay::None,
            retry_seconds: DEFAULT_RETRY_SECONDS.to_vec(),
            max_inbox_bytes: protocol::limits::MAX_INBOX_BYTES,
        }
    }
}

impl InboxConfig {
    /// Reads the settings from the script's variables (`var`) and whether it
    /// has a `send_email` binding. `RESEND_API_KEY` wins over the binding: a
    /// deployment that sets it asked for that relay. A retry schedule that
    /// does not parse is ignored (with a log line) in favour of the default.
    pub fn from_environment(var: impl Fn(&str) -> Option<String>, has_send_email: bool) -> Self {
        use protocol::bindings::{
            MAX_INBOX_BYTES_VAR, RESEND_API_KEY_VAR, RESEND_API_URL_VAR, WEBHOOK_RETRY_SECONDS_VAR,
        };
        let relay = match var(RESEND_API_KEY_VAR).filter(|k| !k.trim().is_empty()) {
            Some(api_key) => Relay::Http {
                api_key: api_key.trim().to_owned(),
                url: var(RESEND_API_URL_VAR)
                    .filter(|u| !u.trim().is_empty())
                    .unwrap_or_else(|| RESEND_API_URL.to_owned()),
            },
            None if has_send_email => Relay::SendEmail,
            None => Relay::None,
        };
        let retry_seconds = match var(WEBHOOK_RETRY_SECONDS_VAR) {
            Some(text) => match parse_schedule(&text) {
                Some(schedule) => schedule,
                None => {
                    log::error!(
                        "{WEBHOOK_RETRY_SECONDS_VAR} is not a comma-separated list of seconds; using the default"
                    );
                    DEFAULT_RETRY_SECONDS.to_vec()
                }
            },
            None => DEFAULT_RETRY_SECONDS.to_vec(),
        };
        let max_inbox_bytes = match var(MAX_INBOX_BYTES_VAR) {
            Some(text) => text.trim().parse::<u64>().unwrap_or_else(|_| {
                log::error!("{MAX_INBOX_BYTES_VAR} is not a number of bytes; using the default");
                protocol::limits::MAX_INBOX_BYTES
            }),
            None => protocol::limits::MAX_INBOX_BYTES,
        };
        InboxConfig {
            relay,
            retry_seconds,
            max_inbox_bytes,
        }
    }
}

/// `"0,10,60"` → `[0, 10, 60]`; at least one entry, none over a day.
fn parse_schedule(text: &str) -> Option<Vec<u64>> {
    let schedule = text
        .split(',')
        .map(|part| part.trim().parse::<u64>().ok().filter(|s| *s <= 86_400))
        .collect::<Option<Vec<_>>>()?;
    (!schedule.is_empty()).then_some(schedule)
}
