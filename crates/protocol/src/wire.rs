//! The router → InboxDO vocabulary.
//!
//! The router sends each request as `POST` [`INBOX_RPC_URL`] with a JSON
//! [`InboxRequest`] body; the InboxDO answers with a [`crate::Reply`] whose body
//! is already the public API's body, so the router forwards it unchanged.
//! The InboxDO trusts nothing in a request: it re-checks the key hash itself.

use crate::{Handle, KeyHash};
use serde::{Deserialize, Serialize};

/// The URL of every router → InboxDO request. The host is never resolved: a
/// Durable Object stub receives the request directly.
pub const INBOX_RPC_URL: &str = "https://inbox.internal/rpc";

/// How long a signup's claim on a handle holds before it is confirmed. A claim
/// left unconfirmed (the router failed between claiming and publishing the
/// key) expires, and the handle becomes free again.
pub const CLAIM_TTL_MILLIS: i64 = 2 * 60 * 1000;

/// One request from the router to an InboxDO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum InboxRequest {
    /// Signup, step 1: claim this (empty) inbox for `handle` with a key hash.
    /// 201 when claimed, 409 `handle_taken` when the inbox is owned or claimed.
    #[serde(rename_all = "camelCase")]
    Claim {
        /// The handle, which names this Durable Object.
        handle: Handle,
        /// The hash of the new key.
        key_hash: KeyHash,
    },
    /// Signup, step 2: the key is published in KV; make the claim permanent.
    /// 204, or 409 `conflict` when the claim was lost (it expired and another
    /// signup took the handle).
    #[serde(rename_all = "camelCase")]
    Confirm {
        /// The hash given in the claim.
        key_hash: KeyHash,
    },
    /// Signup failed after the claim: give the handle back. 204 whether or not
    /// the claim was still held; an active inbox is never released.
    #[serde(rename_all = "camelCase")]
    Release {
        /// The hash given in the claim.
        key_hash: KeyHash,
    },
    /// An authenticated API call on behalf of the key's owner.
    #[serde(rename_all = "camelCase")]
    Api {
        /// The hash of the key the caller presented.
        key_hash: KeyHash,
        /// The deployment's mail domain, for building addresses.
        mail_domain: String,
        /// What is asked.
        call: ApiCall,
    },
}

/// The authenticated calls an InboxDO serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase", deny_unknown_fields)]
pub enum ApiCall {
    /// `GET /api/me`.
    Me,
}
