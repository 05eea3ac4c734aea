//! The public API's request and response bodies (camelCase JSON).

use crate::{Handle, Timestamp};
use serde::{Deserialize, Serialize};

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The handle wanted; one is generated when absent or null.
    #[serde(default)]
    pub handle: Option<String>,
}

/// `POST /api/signup` → 201.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignupResponse {
    /// The inbox's address, `handle@MAIL_DOMAIN`.
    pub email: String,
    /// The API key, shown only this once.
    pub api_key: String,
}

/// `GET /api/me` → 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
