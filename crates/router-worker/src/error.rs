//! The router's one error type. Everything that makes the router answer an
//! error is a [`RouterError`]: the contract's error body plus the headers
//! that go with it (`Allow` on a 405, `Retry-After` on a 429). It becomes a
//! reply in one place, [`RouterError::into_reply`].

use crate::extract::printable;
use crate::routes::Method;
use crate::{HttpRequest, PortError};
use protocol::{ApiError, ErrorCode, Reply};

/// An error answer: the contract's error and its extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouterError {
    error: ApiError,
    headers: Vec<(&'static str, String)>,
}

impl RouterError {
    /// The answer to a method `route` does not accept: 405, with what is
    /// allowed both in the sentence and in `Allow` (RFC 9110).
    pub(crate) fn method_not_allowed(request: &HttpRequest, allowed: &[Method]) -> Self {
        let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        RouterError::from(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!(
                "This endpoint does not accept {}; use {}.",
                printable(&request.method),
                names.join(" or ")
            ),
        ))
        .with_header("allow", names.join(", "))
    }

    /// The error an InboxDO answered with, and its `Retry-After` if it gave
    /// one (a limiter object's 429).
    pub(crate) fn from_inbox(reply: &Reply) -> Self {
        let error = RouterError::from(error_of(reply));
        match reply.header("retry-after") {
            Some(seconds) => error.with_header("retry-after", seconds.to_owned()),
            None => error,
        }
    }

    /// The error's code.
    pub(crate) fn code(&self) -> ErrorCode {
        self.error.code
    }

    /// A 401 that says how to authenticate (`WWW-Authenticate: Bearer`,
    /// RFC 6750), as MCP clients expect; any other error as it is.
    pub(crate) fn bearer_challenge(self) -> Self {
        if self.error.code == ErrorCode::Unauthorized {
            self.with_header("www-authenticate", "Bearer".to_owned())
        } else {
            self
        }
    }

    fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The reply: the contract's error body, with the status its code
    /// implies, and the extra headers.
    pub(crate) fn into_reply(self) -> Reply {
        self.headers
            .into_iter()
            .fold(Reply::error(&self.error), |reply, (name, value)| {
                reply.with_header(name, value)
            })
    }
}

impl std::fmt::Display for RouterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl From<ApiError> for RouterError {
    fn from(error: ApiError) -> Self {
        RouterError {
            error,
            headers: Vec::new(),
        }
    }
}

/// A platform dependency (KV, the random source) failed: 503, the detail to
/// the log only.
impl From<PortError> for RouterError {
    fn from(error: PortError) -> Self {
        log::error!("platform dependency failed: {error}");
        ApiError::unavailable("A storage dependency is unavailable. Retry shortly.").into()
    }
}

/// The error an InboxDO answered with, or a generic one when its body is not
/// in the contract's shape.
pub(crate) fn error_of(reply: &Reply) -> ApiError {
    serde_json::from_slice(&reply.body).unwrap_or_else(|_| {
        log::error!("inbox answered {} without an error body", reply.status);
        ApiError::internal()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_405_lists_the_methods_in_allow_and_in_its_sentence() {
        let request = HttpRequest::new("DELETE", "/api/messages");
        let reply =
            RouterError::method_not_allowed(&request, &[Method::Get, Method::Post]).into_reply();
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("allow"), Some("GET, POST"));
        assert_eq!(
            String::from_utf8(reply.body).expect("utf-8"),
            r#"{"error":"This endpoint does not accept DELETE; use GET or POST.","code":"method_not_allowed"}"#
        );
    }

    #[test]
    fn an_inbox_429_keeps_its_body_and_retry_after_byte_for_byte() {
        let inbox = Reply::error(&ApiError::new(ErrorCode::RateLimited, "Slow down."))
            .with_header("retry-after", "42");
        assert_eq!(RouterError::from_inbox(&inbox).into_reply(), inbox);
    }

    #[test]
    fn an_inbox_error_without_its_body_is_internal() {
        let inbox = Reply {
            status: 502,
            headers: Vec::new(),
            body: b"Bad gateway".to_vec(),
        };
        let reply = RouterError::from_inbox(&inbox).into_reply();
        assert_eq!(reply, Reply::error(&ApiError::internal()));
    }

    #[test]
    fn a_port_failure_is_a_503_without_its_detail() {
        let reply = RouterError::from(PortError("kv: secret detail".into())).into_reply();
        assert_eq!(reply.status, 503);
        assert!(!String::from_utf8_lossy(&reply.body).contains("secret"));
    }
}
