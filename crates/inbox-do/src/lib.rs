//! InboxDO: everything one inbox knows, in its own SQLite database.
//!
//! [`InboxService`] is the whole behaviour, written over the [`schema::Sql`]
//! port with `now` passed in, so it runs natively in tests (over testkit's
//! SQLite) exactly as it runs in a Durable Object. [`glue`] (wasm32 only) is the
//! Durable Object class that hosts it.
//!
//! One room per module: `service` (the request shell), `owner` (the owner
//! row and the signup protocol), `ingest`, `api` (the authenticated calls),
//! `send`, `threads` (conversations), `webhook` (delivery, retries, the
//! webhook and its attempt log), `throttle` (rate-limiter objects), `jobs`
//! (the durable queue), `store` (messages in SQL), `mail` and `outbound`
//! (reading and building mail), `quoted` (a message's new text, without quoted
//! history or signature), `findings` (one-time codes and links, for agents),
//! `compose` and `reply` (a reply's or a forward's subject, recipients, threading ids
//! and quoted bodies, as pure functions), `error` (the one error type, made
//! a reply in one place) and `ports`.

mod api;
mod attachments;
mod compose;
mod decode;
mod erase;
mod error;
mod export;
mod findings;
mod idempotency;
mod ingest;
mod jobs;
mod keys;
mod live;
mod mail;
mod outbound;
mod owner;
mod ports;
mod quoted;
mod reply;
mod search;
mod send;
mod service;
mod store;
mod threads;
mod throttle;
mod webhook;

pub use error::InboxError;
pub use findings::{Findings, FoundCode, FoundLink, find, find_in_raw};
pub use ports::{
    DEFAULT_RETRY_SECONDS, HttpAnswer, HttpCall, InboxConfig, Platform, PlatformError,
    RESEND_API_URL, Relay,
};
pub use quoted::{extracted_text, preview};
pub use search::SEARCH_BACKFILL_BATCH;
pub use service::{Answer, BodyReader, InboxService, RawMessage};
pub use store::list_query;
pub use threads::{BACKFILL_BATCH, list_query as thread_list_query};

#[cfg(target_arch = "wasm32")]
mod glue;
