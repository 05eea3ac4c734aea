//! The router Worker: stateless, it authenticates, routes and forwards.
//!
//! [`Router`] is the whole behaviour over two ports: a [`Directory`] (the KV
//! routing indexes) and an [`InboxNamespace`] (stubs of InboxDO). It never
//! stores anything authoritative: KV is an index that may be stale, and each
//! InboxDO re-checks every key itself. [`glue`] (wasm32 only) binds the ports to
//! Workers KV and the Durable Object namespace.

mod http;
pub mod log;
mod ports;
mod router;

pub use http::HttpRequest;
pub use log::Trace;
pub use ports::{Directory, Entropy, InboxNamespace, PortError};
pub use router::{
    LLMS_TXT, MailVerdict, OPENAPI_JSON, Router, RouterConfig, handle_index_key, key_index_key,
};

#[cfg(target_arch = "wasm32")]
mod glue;
