//! The router Worker: stateless, it authenticates, routes and forwards.
//!
//! [`Router`] is the whole behaviour over two ports: a [`Directory`] (the KV
//! routing indexes) and an [`InboxNamespace`] (stubs of InboxDO). It never
//! stores anything authoritative: KV is an index that may be stale, and each
//! InboxDO re-checks every key itself. [`glue`] (wasm32 only) binds the ports to
//! Workers KV and the Durable Object namespace.
//!
//! The modules: `router` (the shell: route, method, caller, answer), `routes`
//! (the route table), `extract` (bodies, queries, ids), `calls` (each owner
//! route's call to its inbox), `signup`, `mail` (inbound mail), `config`,
//! `error` (the one error type), `http` (request, answer, body limit), `log`,
//! `index_cache` (the KV index entries an isolate has found).

mod calls;
mod config;
pub mod console;
mod error;
mod extract;
mod http;
pub mod index_cache;
mod lifecycle;
pub mod log;
mod mail;
pub mod mcp;
mod ports;
mod router;
mod routes;
mod signup;

pub use config::RouterConfig;
pub use http::{BodyLimit, HttpRequest, Outgoing, TooLarge};
pub use index_cache::IndexCache;
pub use log::Trace;
pub use mail::MailVerdict;
pub use ports::{Directory, Entropy, InboxNamespace, PortError};
pub use router::{LLMS_TXT, OPENAPI_JSON, Router, handle_index_key, key_index_key};
pub use routes::{MessageRef, Method, OwnerRoute, Route};

#[cfg(target_arch = "wasm32")]
mod glue;
