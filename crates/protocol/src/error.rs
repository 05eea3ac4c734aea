//! The one error shape of the API: `{"error": "<sentence>", "code": "<snake_case>"}`.
//!
//! Each domain maps its own errors to an [`ApiError`]; the code decides the HTTP
//! status in exactly one place, [`ErrorCode::status`].

use serde::{Deserialize, Serialize};

/// Machine-readable error codes. The set is part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed; the message names the field and why.
    InvalidRequest,
    /// The API key is missing, malformed or unknown: one answer for all three.
    Unauthorized,
    /// No such route or resource (or not this inbox's).
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The key is valid but its scope does not allow this (a `read` key
    /// asking to change something).
    Forbidden,
    /// The handle asked for at signup belongs to another inbox.
    HandleTaken,
    /// The request conflicts with the resource's current state.
    Conflict,
    /// The body exceeds the documented limit.
    TooLarge,
    /// The body is not in a media type this endpoint accepts.
    UnsupportedMediaType,
    /// Too many requests; retry after the `Retry-After` seconds.
    RateLimited,
    /// The inbox has reached its storage cap; nothing more can be stored.
    StorageFull,
    /// Something failed on our side; details are in the log, not here.
    Internal,
    /// The deployment lacks configuration this request needs.
    NotConfigured,
    /// A dependency is temporarily unavailable; retrying later may succeed.
    Unavailable,
}

impl ErrorCode {
    /// The HTTP status for this code: the single place the mapping is decided.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::HandleTaken | ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::RateLimited => 429,
            ErrorCode::StorageFull => 507,
            ErrorCode::Internal => 500,
            ErrorCode::NotConfigured | ErrorCode::Unavailable => 503,
        }
    }
}

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[error("{code:?}: {error}")]
pub struct ApiError {
    /// A human-readable sentence saying what went wrong and, for bad input, which field.
    pub error: String,
    /// The machine-readable code.
    pub code: ErrorCode,
}

impl ApiError {
    /// An error with the given code and sentence.
    pub fn new(code: ErrorCode, error: impl Into<String>) -> Self {
        ApiError {
            error: error.into(),
            code,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(error: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, error)
    }

    /// 401 `unauthorized`, with the one message used for every auth failure so
    /// that a caller cannot tell a malformed key from an unknown one.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "A valid API key is required: send `Authorization: Bearer ik_...`.",
        )
    }

    /// 403 `forbidden`: a `read` key asked for a write.
    pub fn forbidden() -> Self {
        ApiError::new(
            ErrorCode::Forbidden,
            "This key may only read; use a key with the `full` scope to change anything.",
        )
    }

    /// 404 `not_found`.
    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, error)
    }

    /// 500 `internal`, with a generic message. The caller logs the detail.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "Something went wrong on our side. The request can be retried.",
        )
    }

    /// 503 `unavailable`.
    pub fn unavailable(error: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, error)
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        self.code.status()
    }
}
