//! InboxDO: everything one inbox knows, in its own SQLite database.
//!
//! [`InboxService`] is the whole behaviour, written over the [`schema::Sql`]
//! port with `now` passed in, so it runs natively in tests (over testkit's
//! SQLite) exactly as it runs in a Durable Object. [`glue`] (wasm32 only) is the
//! Durable Object class that hosts it.

mod api;
mod error;
mod ingest;
mod jobs;
mod mail;
mod outbound;
mod owner;
mod ports;
mod send;
mod service;
mod store;
mod throttle;
mod webhook;

pub use ports::{
    DEFAULT_RETRY_SECONDS, HttpAnswer, HttpCall, InboxConfig, Platform, RESEND_API_URL, Relay,
};
pub use service::InboxService;
pub use store::list_query;

#[cfg(target_arch = "wasm32")]
mod glue;
