//! Signing webhook deliveries, twice, with one key:
//!
//! - InboxKit-compatible: `X-InboxKit-Signature: sha256=<hex HMAC-SHA256(key, body)>`;
//! - Standard Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp`
//!   and `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
//!
//! The secret handed to the user is `whsec_` and the key in standard base64,
//! as Standard Webhooks libraries expect.

use crate::key::hex;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The prefix of a secret's text form.
pub const SECRET_PREFIX: &str = "whsec_";

/// A webhook signing key. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret([u8; 32]);

/// The headers that sign one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// `X-InboxKit-Signature`: `sha256=<hex>`.
    pub inboxkit: String,
    /// `webhook-id`.
    pub webhook_id: String,
    /// `webhook-timestamp`: seconds since the epoch.
    pub webhook_timestamp: String,
    /// `webhook-signature`: `v1,<base64>`.
    pub webhook_signature: String,
}

impl WebhookSecret {
    /// A secret from 32 bytes of a secure random source.
    pub fn from_random(random: [u8; 32]) -> Self {
        WebhookSecret(random)
    }

    /// Reads the text form (`whsec_` and standard base64 of 32 bytes).
    pub fn parse(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix(SECRET_PREFIX)?;
        let bytes = STANDARD.decode(encoded).ok()?;
        Some(WebhookSecret(bytes.try_into().ok()?))
    }

    /// The text form, shown to the user once.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(self.0))
    }

    /// Signs one delivery of `body` with event id `id` at `timestamp_secs`.
    pub fn sign(&self, id: &str, timestamp_secs: i64, body: &[u8]) -> SignatureHeaders {
        let inboxkit = self.mac().chain_update(body).finalize().into_bytes();
        let standard = self
            .mac()
            .chain_update(format!("{id}.{timestamp_secs}.").as_bytes())
            .chain_update(body)
            .finalize()
            .into_bytes();
        SignatureHeaders {
            inboxkit: format!("sha256={}", hex(&inboxkit)),
            webhook_id: id.to_owned(),
            webhook_timestamp: timestamp_secs.to_string(),
            webhook_signature: format!("v1,{}", STANDARD.encode(standard)),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes cannot be refused.
        match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts every key length"),
        }
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}
