//! Test doubles for hermetic, native tests of the whole service.
//!
//! - [`SqliteDb`]: in-memory SQLite behind the [`schema::Sql`] port, made to
//!   refuse what Durable Object SQLite refuses and to enforce its limits.
//! - [`FakeKv`]: the router's [`router_worker::Directory`], with an optional
//!   staleness window (eventual consistency) and injectable failures.
//! - [`InProcessNamespace`]: the router's [`router_worker::InboxNamespace`],
//!   hosting the real [`inbox_do::InboxService`] per object, with every request
//!   passed in its serialized wire form.
//! - [`FakeWeb`] and [`FakeMailer`]: the outside world of an inbox (webhook
//!   receivers, the HTTP relay, the `send_email` binding), scripted and
//!   recorded; [`FixedPlatform`] for driving one inbox alone.
//! - [`TestService`]: all of the above wired into a real [`router_worker::Router`].
//! - [`Gate`], [`until`]: for interleavings. The fakes' calls can be held at
//!   a gate, and the `*_async` methods of [`TestService`] and
//!   [`InProcessNamespace`] return futures that a test joins on one thread,
//!   so several requests and alarms to one object interleave at their awaits
//!   as on workerd.

mod clock;
mod gate;
mod kv;
mod namespace;
mod outside;
mod service;
mod sqlite;

pub use clock::FakeClock;
pub use gate::{Gate, until, yield_now};
pub use kv::FakeKv;
pub use namespace::InProcessNamespace;
pub use namespace::object_id;
pub use outside::{FakeMailer, FakeWeb, FixedPlatform, SentEmail, WebAnswer};
pub use service::{SeededEntropy, TEST_MAIL_DOMAIN, TestService};
pub use sqlite::{MAX_PARAMS, MAX_STATEMENT_BYTES, MAX_VALUE_BYTES, REFUSED, SqliteDb};
