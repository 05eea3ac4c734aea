//! What the router needs from the platform.

/// A failure of a platform dependency (KV, a Durable Object stub). Its message
/// goes to the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortError(pub String);

impl std::fmt::Display for PortError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The routing indexes (Workers KV): eventually consistent, never authoritative.
#[allow(async_fn_in_trait)] // single-threaded on Workers; no Send bound wanted
pub trait Directory {
    /// The value at `key`, if visible here.
    async fn get(&self, key: &str) -> Result<Option<String>, PortError>;
    /// Sets `key` to `value`.
    async fn put(&self, key: &str, value: &str) -> Result<(), PortError>;
    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<(), PortError>;
}

/// The InboxDO namespace.
#[allow(async_fn_in_trait)]
pub trait InboxNamespace {
    /// A request payload (an inbound message's bytes) as the platform holds
    /// it; the router passes it through without reading it.
    type Payload;
    /// An InboxDO's answer as the platform holds it (on Workers its
    /// `Response`: status, headers, body stream, WebSocket), handed back to
    /// the client untouched.
    type Answer;
    /// The Durable Object id (hex) of the inbox named `handle`.
    fn id_for_handle(&self, handle: &str) -> Result<String, PortError>;
    /// Sends `request`, in its wire form (see [`protocol::wire`]), with an
    /// optional payload to the object `id`, and returns its answer.
    async fn send(
        &self,
        id: &str,
        request: &protocol::wire::InboxRequest,
        payload: Option<Self::Payload>,
    ) -> Result<Self::Answer, PortError>;
    /// A payload of bytes the router made (the files a send attaches).
    fn payload_of(bytes: Vec<u8>) -> Self::Payload;
    /// The answer's HTTP status.
    fn status(answer: &Self::Answer) -> u16;
    /// Reads an answer whole, for the router's own protocol calls (signup's
    /// claim, confirm and release, ingest verdicts, throttle, deep health).
    async fn read(answer: Self::Answer) -> Result<protocol::Reply, PortError>;
}

/// A source of secure random bytes, passed in so the router core never reads
/// one itself (tests pass a seeded one).
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), PortError>;
}
