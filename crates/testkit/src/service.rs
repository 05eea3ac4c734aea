//! The whole service, in process.

use crate::{FakeClock, FakeKv, InProcessNamespace};
use protocol::Reply;
use router_worker::{
    Entropy, HttpRequest, MailVerdict, Outgoing, PortError, Router, RouterConfig, Trace,
};
use std::sync::atomic::{AtomicU64, Ordering};

/// The mail domain every [`TestService`] uses.
pub const TEST_MAIL_DOMAIN: &str = "agents.test";

/// A deterministic random source (SplitMix64). Not for production use.
#[derive(Debug, Clone)]
pub struct SeededEntropy(u64);

impl SeededEntropy {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededEntropy(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), PortError> {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// The real router over a fake KV and the in-process InboxDO namespace.
/// `Sync`: tests may call it from many threads at once. Each blocking method
/// has an `*_async` twin returning a future, for driving several requests
/// and alarms together (joined on one thread) so that they interleave at
/// their awaits, as requests to one Durable Object do.
#[derive(Debug)]
pub struct TestService {
    /// The shared clock of the KV and every object.
    pub clock: FakeClock,
    router: Router<FakeKv, InProcessNamespace>,
    seeds: AtomicU64,
}

impl TestService {
    /// A service whose KV shows writes at once.
    pub fn new() -> Self {
        Self::with_kv_staleness(0)
    }

    /// As [`Self::new`], with inboxes that send through `relay`.
    pub fn with_relay(relay: inbox_do::Relay) -> Self {
        let service = Self::new();
        service.objects().configure(inbox_do::InboxConfig {
            relay,
            ..inbox_do::InboxConfig::default()
        });
        service
    }

    /// A service whose KV hides each write from reads for `millis`.
    pub fn with_kv_staleness(millis: i64) -> Self {
        Self::with_config(
            millis,
            RouterConfig {
                mail_domains: vec![TEST_MAIL_DOMAIN.to_owned()],
                allow_http_loopback_webhooks: false,
                // Tests sign up freely; the limit's own tests turn it on.
                signups_per_hour: 0,
            },
        )
    }

    /// A service with the given KV staleness and router configuration.
    pub fn with_config(kv_staleness_millis: i64, config: RouterConfig) -> Self {
        let clock = FakeClock::default();
        TestService {
            router: Router::new(
                FakeKv::with_staleness(clock.clone(), kv_staleness_millis),
                InProcessNamespace::new(clock.clone()),
                config,
            ),
            clock,
            seeds: AtomicU64::new(1),
        }
    }

    /// Sends one request through the router and waits for the reply.
    pub fn request(&self, request: &HttpRequest) -> Reply {
        self.request_logged(request).0
    }

    /// As [`Self::request`], as a future.
    pub async fn request_async(&self, request: &HttpRequest) -> Reply {
        self.request_logged_async(request).await.0
    }

    /// Signs up `handle` and returns its API key; panics unless that works.
    pub fn signup(&self, handle: &str) -> String {
        let reply = self.request(
            &HttpRequest::new("POST", "/api/signup")
                .header("content-type", "application/json")
                .body(serde_json::json!({ "handle": handle }).to_string()),
        );
        assert_eq!(reply.status, 201, "signup of {handle}: {reply:?}");
        let body: serde_json::Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("signup of {handle} answered no JSON: {e}"));
        body["apiKey"]
            .as_str()
            .unwrap_or_else(|| panic!("signup of {handle} answered no apiKey: {body}"))
            .to_owned()
    }

    /// The messages `key`'s inbox lists first (newest first); panics unless
    /// the list answers 200 with a `messages` array.
    pub fn messages(&self, key: &str) -> Vec<serde_json::Value> {
        let (status, list) = self.call("GET", "/api/messages", key, None);
        assert_eq!(status, 200, "{list}");
        list["messages"].as_array().expect("a message list").clone()
    }

    /// Sets `key`'s webhook to `url` and returns its signing secret; panics
    /// unless that works.
    pub fn set_webhook(&self, key: &str, url: &str) -> String {
        let (status, created) = self.call(
            "PUT",
            "/api/webhook",
            key,
            Some(serde_json::json!({ "url": url })),
        );
        assert_eq!(status, 200, "{created}");
        created["secret"]
            .as_str()
            .expect("a webhook secret")
            .to_owned()
    }

    /// Status and JSON body of a request made with `key`, with `body` sent as
    /// JSON when given (a body that is not JSON reads as a JSON string).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        pollster::block_on(self.call_async(method, path, key, body))
    }

    /// As [`Self::call`], as a future.
    pub async fn call_async(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request =
            HttpRequest::new(method, path).header("authorization", &format!("Bearer {key}"));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let reply = self.request_async(&request).await;
        let body = serde_json::from_slice(&reply.body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&reply.body).into_owned())
        });
        (reply.status, body)
    }

    /// As [`Self::request`], with the log line the Worker would print for it
    /// (its duration is 0 here).
    pub fn request_logged(&self, request: &HttpRequest) -> (Reply, String) {
        pollster::block_on(self.request_logged_async(request))
    }

    /// As [`Self::request_logged`], as a future.
    pub async fn request_logged_async(&self, request: &HttpRequest) -> (Reply, String) {
        let mut entropy = SeededEntropy::new(self.seeds.fetch_add(1, Ordering::SeqCst));
        let trace = Trace::default();
        let reply = match self
            .router
            .handle_traced(request, &mut entropy, &trace)
            .await
        {
            Outgoing::Reply(reply) => reply,
            Outgoing::Inbox(answer) => answer,
        };
        let line = router_worker::log::request_line(
            &request.method,
            &request.path,
            reply.status,
            0,
            &trace,
        );
        (reply, line)
    }

    /// Delivers one inbound message through the router's email path.
    pub fn deliver(&self, envelope_from: &str, recipient: &str, raw: &[u8]) -> MailVerdict {
        self.deliver_claiming_size(envelope_from, recipient, raw.len() as u64, raw)
    }

    /// Delivers `raw` while Email Routing reports `size` bytes (which the
    /// router checks before the message is read).
    pub fn deliver_claiming_size(
        &self,
        envelope_from: &str,
        recipient: &str,
        size: u64,
        raw: &[u8],
    ) -> MailVerdict {
        self.deliver_logged(envelope_from, recipient, size, raw).0
    }

    /// As [`Self::deliver`], as a future.
    pub async fn deliver_async(
        &self,
        envelope_from: &str,
        recipient: &str,
        raw: &[u8],
    ) -> MailVerdict {
        let size = raw.len() as u64;
        self.deliver_logged_async(envelope_from, recipient, size, raw)
            .await
            .0
    }

    /// As [`Self::deliver_claiming_size`], with the Worker's log line.
    pub fn deliver_logged(
        &self,
        envelope_from: &str,
        recipient: &str,
        size: u64,
        raw: &[u8],
    ) -> (MailVerdict, String) {
        pollster::block_on(self.deliver_logged_async(envelope_from, recipient, size, raw))
    }

    /// As [`Self::deliver_logged`], as a future.
    pub async fn deliver_logged_async(
        &self,
        envelope_from: &str,
        recipient: &str,
        size: u64,
        raw: &[u8],
    ) -> (MailVerdict, String) {
        let trace = Trace::default();
        let verdict = self
            .router
            .receive_mail(envelope_from, recipient, size, raw.to_vec(), &trace)
            .await;
        let line = router_worker::log::mail_line(&verdict, size, 0, &trace);
        (verdict, line)
    }

    /// The fake KV.
    pub fn kv(&self) -> &FakeKv {
        self.router.directory()
    }

    /// The KV index entries the router keeps (an isolate's cache; tests
    /// plant stale ones, as another isolate would still hold them).
    pub fn index_cache(&self) -> &router_worker::IndexCache {
        self.router.index_cache()
    }

    /// Points KV's entry `key` at `value`, and the router's kept entry too:
    /// a stale or forged index wherever the router reads it.
    pub fn forge_index(&self, key: &str, value: &str) {
        self.kv().insert(key, value);
        self.index_cache().keep(key, value);
    }

    /// The in-process namespace.
    pub fn objects(&self) -> &InProcessNamespace {
        self.router.namespace()
    }

    /// Runs the inboxes' alarms that are due (see
    /// [`InProcessNamespace::run_alarms`]).
    pub fn run_alarms(&self) -> usize {
        self.objects().run_alarms()
    }

    /// As [`Self::run_alarms`], as a future.
    pub async fn run_alarms_async(&self) -> usize {
        self.objects().run_alarms_async().await
    }
}

impl Default for TestService {
    fn default() -> Self {
        Self::new()
    }
}
