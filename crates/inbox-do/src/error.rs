//! The inbox's one error type, and the one place it becomes a [`Reply`].
//!
//! Every room answers `Result<_, InboxError>`: a refusal the client should
//! see (with any headers it needs, such as `Retry-After`) or a failure of the
//! service itself, which is logged here and answered with a generic body.

use protocol::{ApiError, Reply};
use schema::{MigrateError, SqlError};

/// Why a request was not answered with success.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InboxError {
    /// The answer for the client: its error body, and headers to add.
    #[error("{error}")]
    Refused {
        error: ApiError,
        headers: Vec<(String, String)>,
    },
    /// The database failed: logged, answered 500 `internal`.
    #[error(transparent)]
    Storage(#[from] SqlError),
    /// The schema could not be brought up to date: logged, answered 503.
    #[error(transparent)]
    Migration(#[from] MigrateError),
    /// The router's request could not be read (a bug, or a version skew
    /// between the two scripts): the service's fault, logged, answered 503.
    #[error("unreadable inbox request: {0}")]
    Unreadable(String),
    /// The platform around the inbox failed (the alarm could not be set,
    /// storage could not be deleted).
    #[error("platform failure: {0}")]
    Platform(#[from] crate::ports::PlatformError),
}

impl InboxError {
    /// A refusal with `header` added (`retry-after`, ...).
    pub(crate) fn with_header(self, name: &str, value: impl Into<String>) -> Self {
        match self {
            InboxError::Refused { error, mut headers } => {
                headers.push((name.to_ascii_lowercase(), value.into()));
                InboxError::Refused { error, headers }
            }
            other => other,
        }
    }

    /// The reply for this error; failures of the service are logged here.
    pub(crate) fn into_reply(self) -> Reply {
        match self {
            InboxError::Refused { error, headers } => {
                let mut reply = Reply::error(&error);
                for (name, value) in headers {
                    reply = reply.with_header(&name, value);
                }
                reply
            }
            InboxError::Storage(error) => {
                log::error!("inbox storage error: {error}");
                Reply::error(&ApiError::internal())
            }
            InboxError::Migration(error) => {
                log::error!("inbox schema migration failed: {error}");
                Reply::error(&ApiError::unavailable(
                    "This inbox is being upgraded and cannot serve requests right now. \
                     Retry shortly.",
                ))
            }
            InboxError::Platform(error) => {
                log::error!("inbox platform failure: {error}");
                Reply::error(&ApiError::unavailable(
                    "The inbox could not complete this request. Retry shortly.",
                ))
            }
            InboxError::Unreadable(why) => {
                log::error!("unreadable inbox request: {why}");
                Reply::error(&ApiError::unavailable(
                    "The service is being updated and could not read this request. \
                     Retry shortly.",
                ))
            }
        }
    }
}

impl From<ApiError> for InboxError {
    fn from(error: ApiError) -> Self {
        InboxError::Refused {
            error,
            headers: Vec::new(),
        }
    }
}

/// `Ok(reply)` or the error's reply: the last step of every request.
pub(crate) fn answer(result: Result<Reply, InboxError>) -> Reply {
    result.unwrap_or_else(InboxError::into_reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ErrorCode;

    #[test]
    fn a_refusal_carries_its_headers_and_a_failure_hides_its_detail() {
        let reply = InboxError::from(ApiError::new(ErrorCode::RateLimited, "slow down"))
            .with_header("Retry-After", "7")
            .into_reply();
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("7"));
        let reply = InboxError::Storage(SqlError::new("disk on fire")).into_reply();
        assert_eq!(reply.status, 500);
        assert!(!String::from_utf8_lossy(&reply.body).contains("disk"));
        let reply = InboxError::Unreadable("version skew".into()).into_reply();
        assert_eq!(reply.status, 503);
        let reply = InboxError::from(crate::ports::PlatformError::from(
            "alarm refused: token t0k3n",
        ))
        .into_reply();
        assert_eq!(reply.status, 503);
        assert!(!String::from_utf8_lossy(&reply.body).contains("t0k3n"));
    }
}
