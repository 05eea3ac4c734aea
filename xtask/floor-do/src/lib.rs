//! The smallest Rust Durable Object that does what every InboxDO request
//! does at least: wake, read its SQLite once, answer. `cargo xtask latency`
//! times its first request after a restart of `wrangler dev` beside the first
//! request to an inbox, so the cold wake of the inbox script is a ratio to
//! the platform's own. It is built for wasm32 only (natively it is empty).

#![cfg(target_arch = "wasm32")]

// The whole crate is platform glue, so it lives in the glue module.
mod glue;

pub use glue::FloorObject;
