//! One JSON line per request and per inbound mail, for `wrangler tail` and
//! Workers Logs. A line names the route by its template (never the path with
//! its ids), the status or outcome, the duration, and a non-reversible
//! reference to the inbox concerned; never a key, a secret, an address, a
//! handle or anything of a message. The glue measures the duration and prints
//! the line; what goes into it is decided here, where a test can check it.

use crate::{MailVerdict, Route};
use protocol::key::sha256_hex;
use serde_json::json;
use std::cell::RefCell;

/// What the router learns about a request while handling it.
#[derive(Debug, Default)]
pub struct Trace {
    inbox: RefCell<Option<String>>,
}

impl Trace {
    /// Notes the inbox (Durable Object id) the request concerned.
    pub fn inbox(&self, object_id: &str) {
        *self.inbox.borrow_mut() = Some(inbox_ref(object_id));
    }

    /// The inbox's log reference, if the request reached one.
    pub fn inbox_ref(&self) -> Option<String> {
        self.inbox.borrow().clone()
    }
}

/// A stable, non-reversible reference to an inbox: the same for every line
/// about it, and useless for finding its handle or its key.
pub fn inbox_ref(object_id: &str) -> String {
    format!(
        "ib_{}",
        &sha256_hex(format!("inboxkit log reference\n{object_id}").as_bytes())[..16]
    )
}

/// The route template of a request path (`/api/messages/:id`), or `other`.
pub fn route_of(path: &str) -> &'static str {
    Route::parse(path).map_or("other", |route| route.template())
}

/// The log line of one request.
pub fn request_line(
    method: &str,
    path: &str,
    status: u16,
    duration_ms: u64,
    trace: &Trace,
) -> String {
    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let method = METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("OTHER");
    json!({
        "event": "request",
        "method": method,
        "route": route_of(path),
        "status": status,
        "durationMs": duration_ms,
        "inbox": trace.inbox_ref(),
    })
    .to_string()
}

/// The log line of one inbound mail.
pub fn mail_line(verdict: &MailVerdict, size: u64, duration_ms: u64, trace: &Trace) -> String {
    let outcome = match verdict {
        MailVerdict::Accepted(_) => "accepted",
        MailVerdict::Duplicate(_) => "duplicate",
        MailVerdict::Reject(_) => "rejected",
        MailVerdict::Retry(_) => "retry",
    };
    json!({
        "event": "mail",
        "outcome": outcome,
        "sizeBytes": size,
        "durationMs": duration_ms,
        "inbox": trace.inbox_ref(),
    })
    .to_string()
}
