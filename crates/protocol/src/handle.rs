//! Handles: the local part of an inbox's address, and the name of its Durable Object.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The shortest and longest handle, in bytes (all handle characters are ASCII).
pub const HANDLE_MIN_LEN: usize = 2;
/// See [`HANDLE_MIN_LEN`].
pub const HANDLE_MAX_LEN: usize = 64;

/// Local parts that are refused at signup: role addresses (RFC 2142), addresses
/// mail systems and certificate authorities treat as privileged, and names that
/// would let an agent impersonate the service.
pub const RESERVED_HANDLES: &[&str] = &[
    "abuse",
    "admin",
    "administrator",
    "api",
    "billing",
    "help",
    "hostmaster",
    "info",
    "inboxkit",
    "mailer-daemon",
    "marketing",
    "no-reply",
    "noc",
    "noreply",
    "null",
    "postmaster",
    "root",
    "sales",
    "security",
    "support",
    "system",
    "webmaster",
    "www",
];

/// A valid, lowercased handle: `^[a-z0-9][a-z0-9._-]{0,62}[a-z0-9]$`, not reserved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Handle(String);

/// Why a string is not a handle. The messages are shown to API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Too short or too long.
    #[error("must be 2 to 64 characters long")]
    Length,
    /// A character outside `a-z 0-9 . _ -`.
    #[error("may contain only letters, digits, '.', '_' and '-'")]
    Character,
    /// Starts or ends with `.`, `_` or `-`.
    #[error("must start and end with a letter or digit")]
    Edge,
    /// On the reserved list.
    #[error("'{0}' is reserved")]
    Reserved(String),
}

impl Handle {
    /// Validates and lowercases `input`. ASCII letters in any case are accepted
    /// and folded; everything else outside the pattern is refused.
    pub fn parse(input: &str) -> Result<Handle, HandleError> {
        if input.len() < HANDLE_MIN_LEN || input.len() > HANDLE_MAX_LEN {
            return Err(HandleError::Length);
        }
        let lower = input.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b))
        {
            return Err(HandleError::Character);
        }
        let edge_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !bytes.first().is_some_and(edge_ok) || !bytes.last().is_some_and(edge_ok) {
            return Err(HandleError::Edge);
        }
        if RESERVED_HANDLES.contains(&lower.as_str()) {
            return Err(HandleError::Reserved(lower));
        }
        Ok(Handle(lower))
    }

    /// Builds a handle from random bytes: `agent-` and 10 base32 characters
    /// (50 bits), for signups that do not name one.
    pub fn generated(random: [u8; 8]) -> Handle {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut bits = u64::from_be_bytes(random);
        let mut out = String::from("agent-");
        for _ in 0..10 {
            out.push(char::from(ALPHABET[(bits & 31) as usize]));
            bits >>= 5;
        }
        Handle(out)
    }

    /// A handle this deployment accepted earlier and stored, taken as it is:
    /// today's rules are not applied again, so that a rule added later (a
    /// newly reserved word) cannot lock an existing inbox out of its own
    /// data. Only for what our own storage holds; anything from a client goes
    /// through [`Handle::parse`].
    pub fn from_stored(stored: &str) -> Handle {
        Handle(stored.to_owned())
    }

    /// The handle as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The inbox's address on `mail_domain`.
    pub fn address(&self, mail_domain: &str) -> String {
        format!("{}@{}", self.0, mail_domain)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Handle::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl schemars::JsonSchema for Handle {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Handle".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9._-]{0,62}[a-z0-9]$",
            "description": "The inbox's handle: the local part of its address. Lowercase; some role names are reserved."
        })
    }
}
