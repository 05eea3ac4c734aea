//! Reading what a request says: its JSON body, the list query, a message id,
//! and request text made safe to echo in an error.

use crate::HttpRequest;
use protocol::limits::{
    DEFAULT_PAGE, DEFAULT_WAIT_SECONDS, MAX_PAGE, MAX_QUERY_BYTES, MAX_WAIT_SECONDS,
};
use protocol::wire::ApiCall;
use protocol::{ApiError, ApiKey, ErrorCode, Timestamp};
use serde::de::DeserializeOwned;

/// Parses a JSON body (already size-checked), checking its media type first.
pub(crate) fn json_body<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, ApiError> {
    let content_type = request.header_value("content-type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The body must be JSON, sent with `Content-Type: application/json`.",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::invalid(format!("The body is not valid JSON: {e}.")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("The body must be a JSON object."));
    }
    // serde_path_to_error names the field that failed, which serde_json's own
    // error loses once the body has been read into a Value.
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::invalid(format!("The body is invalid: {inner}."))
        } else {
            ApiError::invalid(format!("Invalid `{path}`: {inner}."))
        }
    })
}

/// A request-supplied string made safe to echo: at most 100 characters, with
/// control characters replaced.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .take(100)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// The largest id we hand out: ids travel as f64 on DO SQLite, so they stay
/// below 2^53.
const MAX_ID: u64 = (1 << 53) - 1;

/// A message id from the path: a positive decimal integer.
pub(crate) fn message_id(text: &str) -> Result<u64, ApiError> {
    path_id(text, "message")
}

/// A thread id from a path, checked as [`message_id`].
pub(crate) fn thread_id(text: &str) -> Result<u64, ApiError> {
    path_id(text, "thread")
}

/// A key id from a path, checked as [`message_id`].
pub(crate) fn key_id(text: &str) -> Result<u64, ApiError> {
    path_id(text, "key")
}

/// The longest attachment id accepted: far deeper than any real MIME tree.
const MAX_ATTACHMENT_ID: usize = 64;

/// An attachment id from a path: a MIME section number, dot-separated
/// positive integers without leading zeros (`2`, `1.2`, `3.1.4`).
pub(crate) fn attachment_id(text: &str) -> Result<String, ApiError> {
    let valid = text.len() <= MAX_ATTACHMENT_ID
        && text.split('.').all(|n| {
            !n.is_empty()
                && n.len() <= 6
                && !n.starts_with('0')
                && n.bytes().all(|b| b.is_ascii_digit())
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "The attachment id must be a MIME section number such as 2 or 1.2, not '{}'.",
            printable(text)
        )))
    }
}

fn path_id(text: &str, what: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|id| (1..=MAX_ID).contains(id) && !text.starts_with('+'))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "The {what} id must be a positive integer, not '{}'.",
                printable(text)
            ))
        })
}

/// `GET /api/messages` query: `limit`, `cursor`, `since`, `unread`. Unknown
/// or repeated parameters are refused, so a typo is not silently ignored.
pub(crate) fn list_query(query: &str) -> Result<ApiCall, ApiError> {
    let page = page_query(query, true)?;
    Ok(ApiCall::ListMessages {
        limit: page.limit,
        cursor: page.cursor,
        since: page.since,
        unread: page.unread,
    })
}

/// `GET /api/threads` query: `limit`, `cursor` (a thread's
/// `lastMessageId`), `unread`; checked as [`list_query`].
pub(crate) fn thread_list_query(query: &str) -> Result<ApiCall, ApiError> {
    let page = page_query(query, false)?;
    Ok(ApiCall::ListThreads {
        limit: page.limit,
        cursor: page.cursor,
        unread: page.unread,
    })
}

/// A listing's paging parameters.
struct Page {
    limit: u32,
    cursor: Option<u64>,
    since: Option<Timestamp>,
    unread: bool,
}

fn page_query(query: &str, with_since: bool) -> Result<Page, ApiError> {
    let mut limit = None;
    let mut cursor = None;
    let mut since = None;
    let mut unread = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let invalid = |why: &str| {
            ApiError::invalid(format!(
                "Invalid `{name}`: {why}, not '{}'.",
                printable(&value)
            ))
        };
        let repeated = || ApiError::invalid(format!("The parameter `{name}` is given twice."));
        match name.as_ref() {
            "limit" => {
                let n = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| invalid(&format!("must be an integer from 1 to {MAX_PAGE}")))?;
                if limit.replace(n).is_some() {
                    return Err(repeated());
                }
            }
            "cursor" => {
                let id = message_id(&value).map_err(|_| invalid("must be a positive integer"))?;
                if cursor.replace(id).is_some() {
                    return Err(repeated());
                }
            }
            "since" if with_since => {
                let at = Timestamp::parse_rfc3339(&value).ok_or_else(|| {
                    invalid("must be an RFC 3339 time such as 2026-03-26T12:00:00Z")
                })?;
                if since.replace(at).is_some() {
                    return Err(repeated());
                }
            }
            "unread" => {
                let flag = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("must be true or false")),
                };
                if unread.replace(flag).is_some() {
                    return Err(repeated());
                }
            }
            _ => {
                let known = if with_since {
                    "limit, cursor, since or unread"
                } else {
                    "limit, cursor or unread"
                };
                return Err(ApiError::invalid(format!(
                    "Unknown parameter `{}`; use {known}.",
                    printable(&name)
                )));
            }
        }
    }
    Ok(Page {
        limit: limit.unwrap_or(DEFAULT_PAGE),
        cursor,
        since,
        unread: unread.unwrap_or(false),
    })
}

/// The longest search cursor accepted (two integers and a dot).
const MAX_CURSOR: usize = 40;

/// `GET /api/messages/search` query: `q` (required), `limit`, `cursor`.
/// The inbox parses `q`: its errors come from there, as for a wait's.
pub(crate) fn search_query(query: &str) -> Result<ApiCall, ApiError> {
    let mut q = None;
    let mut limit = None;
    let mut cursor = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let repeated = || ApiError::invalid(format!("The parameter `{name}` is given twice."));
        match name.as_ref() {
            "q" => {
                if q.replace(bounded_query(&value)?).is_some() {
                    return Err(repeated());
                }
            }
            "limit" => {
                if limit.replace(page_limit(&value)?).is_some() {
                    return Err(repeated());
                }
            }
            "cursor" => {
                if value.len() > MAX_CURSOR || value.is_empty() {
                    return Err(ApiError::invalid(
                        "Invalid `cursor`: pass the `nextCursor` of the previous page as it is.",
                    ));
                }
                if cursor.replace(value.into_owned()).is_some() {
                    return Err(repeated());
                }
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "Unknown parameter `{}`; use q, limit or cursor.",
                    printable(&name)
                )));
            }
        }
    }
    let q = q.ok_or_else(|| {
        ApiError::invalid("The parameter `q` is required: the search query (see /llms.txt).")
    })?;
    Ok(ApiCall::Search {
        q,
        limit: limit.unwrap_or(DEFAULT_PAGE),
        cursor,
    })
}

/// `GET /api/messages/wait` query: `after` (a message id, or 0), `timeout`
/// (whole seconds, 1 to 60), `q` (a search query).
pub(crate) fn wait_query(query: &str) -> Result<ApiCall, ApiError> {
    let mut after = None;
    let mut timeout = None;
    let mut q = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let invalid = |why: &str| {
            ApiError::invalid(format!(
                "Invalid `{name}`: {why}, not '{}'.",
                printable(&value)
            ))
        };
        let repeated = || ApiError::invalid(format!("The parameter `{name}` is given twice."));
        match name.as_ref() {
            "after" => {
                let id = value
                    .parse::<u64>()
                    .ok()
                    .filter(|id| *id <= MAX_ID && !value.starts_with('+'))
                    .ok_or_else(|| invalid("must be a message id (0 for any message)"))?;
                if after.replace(id).is_some() {
                    return Err(repeated());
                }
            }
            "timeout" => {
                let seconds = value
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=MAX_WAIT_SECONDS).contains(s) && !value.starts_with('+'))
                    .ok_or_else(|| {
                        invalid(&format!(
                            "must be whole seconds from 1 to {MAX_WAIT_SECONDS}"
                        ))
                    })?;
                if timeout.replace(seconds).is_some() {
                    return Err(repeated());
                }
            }
            "q" => {
                if q.replace(bounded_query(&value)?).is_some() {
                    return Err(repeated());
                }
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "Unknown parameter `{}`; use after, timeout or q.",
                    printable(&name)
                )));
            }
        }
    }
    Ok(ApiCall::Wait {
        after,
        timeout_millis: timeout.unwrap_or(DEFAULT_WAIT_SECONDS) * 1000,
        q,
    })
}

/// `GET /api/events`: a WebSocket upgrade (the key checked already, from
/// `Authorization` or a subprotocol, which is then echoed).
pub(crate) fn events_call(request: &HttpRequest) -> Result<ApiCall, ApiError> {
    let upgrade = request
        .header_value("upgrade")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return Err(ApiError::invalid(
            "GET /api/events is a WebSocket: connect with a WebSocket client (Upgrade: websocket).",
        ));
    }
    let protocol = request
        .header_value("sec-websocket-protocol")
        .and_then(ApiKey::from_websocket_protocols)
        .map(|(_, protocol)| protocol);
    Ok(ApiCall::Events { protocol })
}

fn bounded_query(value: &str) -> Result<String, ApiError> {
    if value.len() > MAX_QUERY_BYTES {
        return Err(ApiError::invalid(format!(
            "Invalid `q`: it is {} bytes; the limit is {MAX_QUERY_BYTES}.",
            value.len()
        )));
    }
    Ok(value.to_owned())
}

fn page_limit(value: &str) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n) && !value.starts_with('+'))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid `limit`: must be an integer from 1 to {MAX_PAGE}, not '{}'.",
                printable(value)
            ))
        })
}
