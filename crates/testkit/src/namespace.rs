//! InboxDO objects hosted in-process.

use crate::gate::{Gate, Holds, Turn};
use crate::outside::lock;
use crate::{FakeClock, FakeMailer, FakeWeb, SqliteDb};
use inbox_do::{HttpAnswer, HttpCall, InboxConfig, InboxService, Platform, PlatformError};
use protocol::key::sha256_hex;
use protocol::wire::{InboxRequest, encode_request};
use protocol::{Reply, Timestamp};
use router_worker::{InboxNamespace, PortError};
use schema::Migration;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One object: its durable database, its in-memory instance (absent while
/// the object sleeps), and its turn to run.
#[derive(Debug)]
struct Object {
    db: Arc<SqliteDb>,
    instance: Option<Arc<InboxService>>,
    turn: Arc<Turn>,
    /// Bumped by each restart: a request that began before it ends.
    epoch: Arc<AtomicU64>,
}

/// What a request needs of its object while it runs.
struct Running {
    db: Arc<SqliteDb>,
    service: Arc<InboxService>,
    turn: Arc<Turn>,
    epoch: Arc<AtomicU64>,
}

/// The InboxDO namespace, in process. Each object runs the real
/// [`InboxService`] over its own [`SqliteDb`]. Requests arrive as bytes,
/// exactly as on the wire.
///
/// Requests to one object interleave as on the platform: one runs at a time,
/// and another may run only while it awaits a call out of the object (HTTP,
/// `send_email`, another object). So futures of several requests and alarms
/// driven together on one thread (the `*_async` methods, joined) interleave
/// at exactly those points, and requests from several threads never run two
/// steps of one object at once. Different objects run in parallel.
///
/// The objects share one [`FakeWeb`] and one [`FakeMailer`], and call each
/// other (direct delivery) through this namespace. Alarms are recorded and run
/// by [`Self::run_alarms`] once the clock has reached them. Calls into an
/// object can be held at its door (see [`Self::hold`]).
#[derive(Debug)]
pub struct InProcessNamespace {
    clock: FakeClock,
    build: Mutex<&'static [Migration]>,
    config: Mutex<InboxConfig>,
    objects: Mutex<BTreeMap<String, Arc<Mutex<Object>>>>,
    alarms: Mutex<BTreeMap<String, Timestamp>>,
    web: FakeWeb,
    mailer: FakeMailer,
    /// Operations (`claim`, `confirm`, `release`, `api`) whose next sends fail.
    failing: Mutex<Vec<(String, u32)>>,
    alarm_failures: Mutex<Vec<String>>,
    holds: Holds,
    /// Every live event an object published, in order (object id, frame).
    published: Mutex<Vec<(String, String)>>,
    /// Whether the objects have a live socket open (see
    /// [`Self::set_listening`]).
    listening: AtomicBool,
    /// Every closing of live sockets an object asked for (object id, the
    /// key hash whose sockets, or `None` for all).
    closed: Mutex<Vec<(String, Option<String>)>>,
    /// Every API call the router sent (the `call` of each `api` request, as
    /// JSON), in order.
    api_calls: Mutex<Vec<serde_json::Value>>,
}

impl InProcessNamespace {
    /// A namespace running the current build (all of [`schema::MIGRATIONS`])
    /// with the default configuration (no relay).
    pub fn new(clock: FakeClock) -> Self {
        InProcessNamespace {
            web: FakeWeb::with_clock(clock.clone()),
            clock,
            build: Mutex::new(schema::MIGRATIONS),
            config: Mutex::new(InboxConfig::default()),
            objects: Mutex::new(BTreeMap::new()),
            alarms: Mutex::new(BTreeMap::new()),
            mailer: FakeMailer::default(),
            failing: Mutex::new(Vec::new()),
            alarm_failures: Mutex::new(Vec::new()),
            holds: Holds::default(),
            published: Mutex::new(Vec::new()),
            listening: AtomicBool::new(true),
            closed: Mutex::new(Vec::new()),
            api_calls: Mutex::new(Vec::new()),
        }
    }

    /// Whether every object has a live event socket open: by default they
    /// do, and every frame is kept for [`Self::published`]; with `false`,
    /// none has one, as for most inboxes on the platform.
    pub fn set_listening(&self, open: bool) {
        self.listening.store(open, Ordering::SeqCst);
    }

    /// Configures the inbox script: objects woken from now on use `config`
    /// (see [`Self::restart`]).
    pub fn configure(&self, config: InboxConfig) {
        *lock(&self.config) = config;
    }

    /// Every API call the router has sent to any object, as JSON (the
    /// `call` of each `api` request), in order; with `clear`, forgotten.
    pub fn api_calls(&self, clear: bool) -> Vec<serde_json::Value> {
        let mut calls = lock(&self.api_calls);
        if clear {
            std::mem::take(&mut *calls)
        } else {
            calls.clone()
        }
    }

    /// The HTTP endpoints the objects call.
    pub fn web(&self) -> &FakeWeb {
        &self.web
    }

    /// The `send_email` binding the objects use.
    pub fn mailer(&self) -> &FakeMailer {
        &self.mailer
    }

    /// When the alarm of object `id` is set for, if it is.
    pub fn alarm_of(&self, id: &str) -> Option<Timestamp> {
        lock(&self.alarms).get(id).copied()
    }

    /// The live events object `id` has published so far (the frames its
    /// sockets would have been sent), oldest first.
    pub fn published(&self, id: &str) -> Vec<String> {
        lock(&self.published)
            .iter()
            .filter(|(object, _)| object == id)
            .map(|(_, frame)| frame.clone())
            .collect()
    }

    /// The closings of live sockets object `id` asked for, in order: the
    /// key hash (hex) whose sockets, or `None` for all of them.
    pub fn closed_sockets(&self, id: &str) -> Vec<Option<String>> {
        lock(&self.closed)
            .iter()
            .filter(|(object, _)| object == id)
            .map(|(_, tag)| tag.clone())
            .collect()
    }

    /// Answers a client frame on one of object `id`'s live sockets, as the
    /// host's `websocket_message` does: the frames sent back.
    pub fn socket_frame(&self, id: &str, text: &str) -> Vec<String> {
        let running = self.wake(id);
        let platform = ObjectPlatform {
            namespace: self,
            id: id.to_owned(),
            turn: &running.turn,
        };
        running.turn.take();
        let frames = running.service.socket_frame(&*running.db, &platform, text);
        running.turn.give();
        frames
    }

    /// How many waits object `id` holds open in memory (0 when it sleeps).
    pub fn waiting(&self, id: &str) -> usize {
        let object = self.object(id);
        let object = lock(&object);
        object
            .instance
            .as_ref()
            .map_or(0, |service| service.waiting())
    }

    /// The errors alarms ended with (each was rescheduled 2 s later).
    pub fn alarm_failures(&self) -> Vec<String> {
        lock(&self.alarm_failures).clone()
    }

    /// Holds every request to object `id` from now on (from the router or
    /// from another object) before it reaches the object, until the gate is
    /// released.
    pub fn hold(&self, id: &str) -> Gate {
        self.holds.hold(id)
    }

    /// Runs every alarm the clock has reached, as the platform would, until
    /// none is due (alarms set while running are run too if already due).
    /// Returns how many ran.
    pub fn run_alarms(&self) -> usize {
        pollster::block_on(self.run_alarms_async())
    }

    /// As [`Self::run_alarms`], as a future that interleaves with requests.
    pub async fn run_alarms_async(&self) -> usize {
        let mut ran = 0;
        // A bound, so a job that keeps itself due cannot hang a test.
        for _ in 0..1000 {
            let now = self.clock.now();
            let due: Vec<String> = {
                let mut alarms = lock(&self.alarms);
                let due: Vec<String> = alarms
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &due {
                    alarms.remove(id);
                }
                due
            };
            if due.is_empty() {
                break;
            }
            for id in due {
                let running = self.wake(&id);
                let platform = ObjectPlatform {
                    namespace: self,
                    id: id.clone(),
                    turn: &running.turn,
                };
                running.turn.take();
                let outcome = running.service.alarm(&*running.db, &platform).await;
                running.turn.give();
                if let Err(error) = outcome {
                    // The platform retries a failed alarm after 2 s.
                    lock(&self.alarms).insert(id, now.plus_millis(2_000));
                    lock(&self.alarm_failures).push(error.to_string());
                }
                ran += 1;
            }
        }
        ran
    }

    /// Runs the alarm of object `id` once, if the clock has reached it;
    /// `false` when it is not set or not due.
    pub fn run_alarm_of(&self, id: &str) -> bool {
        let now = self.clock.now();
        {
            let mut alarms = lock(&self.alarms);
            if alarms.get(id).is_none_or(|at| *at > now) {
                return false;
            }
            alarms.remove(id);
        }
        let running = self.wake(id);
        let platform = ObjectPlatform {
            namespace: self,
            id: id.to_owned(),
            turn: &running.turn,
        };
        running.turn.take();
        let outcome = pollster::block_on(running.service.alarm(&*running.db, &platform));
        running.turn.give();
        if let Err(error) = outcome {
            lock(&self.alarms).insert(id.to_owned(), now.plus_millis(2_000));
            lock(&self.alarm_failures).push(error.to_string());
        }
        true
    }

    /// Object `id`, woken if it sleeps.
    fn wake(&self, id: &str) -> Running {
        let object = self.object(id);
        let mut object = lock(&object);
        let build = *lock(&self.build);
        let config = lock(&self.config).clone();
        let service = Arc::clone(
            object
                .instance
                .get_or_insert_with(|| Arc::new(InboxService::with_config(build, config))),
        );
        Running {
            db: Arc::clone(&object.db),
            service,
            turn: Arc::clone(&object.turn),
            epoch: Arc::clone(&object.epoch),
        }
    }

    /// Deploys a build with `migrations`: objects woken from now on migrate to
    /// its last one. Running objects keep theirs until [`Self::restart`].
    pub fn deploy(&self, migrations: &'static [Migration]) {
        *lock(&self.build) = migrations;
    }

    /// Every object goes to sleep: its instance is dropped, its database kept.
    /// The next request wakes it (and runs pending migrations). A request
    /// still running (a wait) ends: its caller's call fails, as when the
    /// platform resets an object for a deploy.
    pub fn restart(&self) {
        for object in lock(&self.objects).values() {
            let mut object = lock(object);
            object.instance = None;
            object.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Makes the next `times` requests of operation `op` (the wire's `op`:
    /// `claim`, `confirm`, `release`, `api`) fail as an unreachable stub would,
    /// before they reach the object.
    pub fn fail_requests(&self, op: &str, times: u32) {
        lock(&self.failing).push((op.to_owned(), times));
    }

    /// Runs `f` on the database of object `id`, creating the object if
    /// needed (in the object's turn, as one synchronous step).
    pub fn with_db<T>(&self, id: &str, f: impl FnOnce(&SqliteDb) -> T) -> T {
        let (db, turn) = {
            let object = self.object(id);
            let object = lock(&object);
            (Arc::clone(&object.db), Arc::clone(&object.turn))
        };
        turn.take();
        let result = f(&db);
        turn.give();
        result
    }

    /// Runs `f` on the database of the inbox named `handle`.
    pub fn with_db_of<T>(&self, handle: &str, f: impl FnOnce(&SqliteDb) -> T) -> T {
        self.with_db(&object_id(handle), f)
    }

    /// The ids of every object created so far.
    pub fn object_ids(&self) -> Vec<String> {
        lock(&self.objects).keys().cloned().collect()
    }

    fn object(&self, id: &str) -> Arc<Mutex<Object>> {
        let mut objects = lock(&self.objects);
        Arc::clone(objects.entry(id.to_owned()).or_insert_with(|| {
            Arc::new(Mutex::new(Object {
                db: Arc::new(SqliteDb::new()),
                instance: None,
                turn: Arc::new(Turn::default()),
                epoch: Arc::new(AtomicU64::new(0)),
            }))
        }))
    }
}

/// The object id for a name: 64 hex digits, like a Durable Object id.
pub fn object_id(name: &str) -> String {
    sha256_hex(format!("InboxObject:{name}").as_bytes())
}

/// One object's view of the platform. Each call out of the object gives its
/// turn to other requests until the answer is back.
struct ObjectPlatform<'a> {
    namespace: &'a InProcessNamespace,
    id: String,
    turn: &'a Turn,
}

impl ObjectPlatform<'_> {
    async fn outside<T>(&self, call: impl Future<Output = T>) -> T {
        self.turn.give();
        // Taken back when the call ends, and also when it is dropped unfinished
        // (the service gave up on it at its timeout): the object's code goes on.
        let back = TakeBack(self.turn);
        let answer = call.await;
        drop(back);
        answer
    }
}

impl Platform for ObjectPlatform<'_> {
    fn now(&self) -> Timestamp {
        self.namespace.clock.now()
    }

    async fn http(&self, call: &HttpCall) -> Result<HttpAnswer, PlatformError> {
        self.outside(self.namespace.web.call(call))
            .await
            .map_err(PlatformError)
    }

    async fn send_email(&self, from: &str, to: &str, raw: &[u8]) -> Result<(), PlatformError> {
        self.outside(self.namespace.mailer.send(from, to, raw))
            .await
            .map_err(PlatformError)
    }

    async fn call_inbox(
        &self,
        object_id: &str,
        request: &InboxRequest,
        payload: &[u8],
    ) -> Result<Reply, PlatformError> {
        // Boxed: an object's request may lead to another object's.
        let call = Box::pin(
            self.namespace
                .send(object_id, request, Some(payload.to_vec())),
        );
        self.outside(call).await.map_err(|e| PlatformError(e.0))
    }

    async fn set_alarm(&self, at: Timestamp) -> Result<(), PlatformError> {
        lock(&self.namespace.alarms).insert(self.id.clone(), at);
        Ok(())
    }

    async fn idle<T>(&self, until: impl Future<Output = T>) -> T {
        self.outside(until).await
    }

    fn publish(&self, frame: &str) {
        lock(&self.namespace.published).push((self.id.clone(), frame.to_owned()));
    }

    fn listening(&self) -> bool {
        self.namespace.listening.load(Ordering::SeqCst)
    }

    async fn delete_alarm(&self) -> Result<(), PlatformError> {
        lock(&self.namespace.alarms).remove(&self.id);
        Ok(())
    }

    fn close_sockets(&self, tag: Option<&str>) {
        lock(&self.namespace.closed).push((self.id.clone(), tag.map(str::to_owned)));
    }

    /// Resolves once the fake clock has passed `millis` from now (noticed when
    /// next polled: a test that moves the clock lets its join run).
    async fn sleep(&self, millis: u64) {
        let clock = self.namespace.clock.clone();
        let at = clock
            .now()
            .plus_millis(i64::try_from(millis).unwrap_or(i64::MAX));
        std::future::poll_fn(move |_| {
            if clock.now() >= at {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }
}

/// A request's future and the object's turn it runs in. The fields drop
/// in order: the future first (a call out it was awaiting takes the turn
/// back as it goes), then the turn is given back; so a request dropped
/// unfinished (its client went away) never keeps the object's turn.
struct InTurn<'a, F> {
    future: F,
    _turn: GiveBack<'a>,
}

/// Gives an object's turn back when dropped.
struct GiveBack<'a>(&'a Turn);

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        self.0.give();
    }
}

/// Takes an object's turn back when dropped.
struct TakeBack<'a>(&'a Turn);

impl Drop for TakeBack<'_> {
    fn drop(&mut self) {
        self.0.take();
    }
}

impl InboxNamespace for InProcessNamespace {
    type Payload = Vec<u8>;
    type Answer = Reply;

    fn payload_of(bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    fn id_for_handle(&self, handle: &str) -> Result<String, PortError> {
        Ok(object_id(handle))
    }

    async fn send(
        &self,
        id: &str,
        request: &InboxRequest,
        payload: Option<Vec<u8>>,
    ) -> Result<Reply, PortError> {
        let wire = serde_json::to_value(request).unwrap_or_default();
        let op = wire["op"].as_str().map(str::to_owned).unwrap_or_default();
        if op == "api" {
            lock(&self.api_calls).push(wire["call"].clone());
        }
        if let Some(rule) = lock(&self.failing)
            .iter_mut()
            .find(|(name, times)| *times > 0 && *name == op)
        {
            rule.1 -= 1;
            return Err(PortError(format!(
                "injected: {op} could not reach the object"
            )));
        }
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PortError(format!("not a Durable Object id: {id:?}")));
        }
        self.holds.pass(id, None).await;
        // The request crosses in its wire form, as it does on the platform.
        let header = encode_request(request);
        let running = self.wake(id);
        let platform = ObjectPlatform {
            namespace: self,
            id: id.to_owned(),
            turn: &running.turn,
        };
        let payload = payload.unwrap_or_default();
        // A restart while the request runs ends it, as a deploy does on the
        // platform: the caller's stub call fails.
        let epoch = running.epoch.load(Ordering::SeqCst);
        let reset = std::future::poll_fn(|_| {
            if running.epoch.load(Ordering::SeqCst) == epoch {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        });
        running.turn.take();
        let mut request = InTurn {
            future: Box::pin(futures_util::future::select(
                Box::pin(
                    running
                        .service
                        .serve(&*running.db, &platform, &header, &payload),
                ),
                Box::pin(reset),
            )),
            _turn: GiveBack(&running.turn),
        };
        let reply = match (&mut request.future).await {
            futures_util::future::Either::Left((reply, _)) => Some(reply),
            futures_util::future::Either::Right(((), unfinished)) => {
                drop(unfinished);
                None
            }
        };
        drop(request);
        reply.ok_or_else(|| {
            PortError("the object was reset while the request ran (a restart or deploy)".into())
        })
    }

    fn status(answer: &Reply) -> u16 {
        answer.status
    }

    async fn read(answer: Reply) -> Result<Reply, PortError> {
        Ok(answer)
    }
}
