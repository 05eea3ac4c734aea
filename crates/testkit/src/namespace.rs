//! InboxDO objects hosted in-process.

use crate::outside::lock;
use crate::{FakeClock, FakeMailer, FakeWeb, SqliteDb};
use inbox_do::{HttpAnswer, HttpCall, InboxConfig, InboxService, Platform};
use protocol::key::sha256_hex;
use protocol::wire::{InboxRequest, encode_request};
use protocol::{Reply, Timestamp};
use router_worker::{InboxNamespace, PortError};
use schema::Migration;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One object: its durable database and its in-memory instance (absent while
/// the object sleeps).
#[derive(Debug)]
struct Object {
    db: SqliteDb,
    instance: Option<Arc<InboxService>>,
}

/// The InboxDO namespace, in process. Each object runs the real
/// [`InboxService`] over its own [`SqliteDb`]; requests to one object are
/// serialized (as the platform's input gate serializes them), while different
/// objects run in parallel. Requests arrive as bytes, exactly as on the wire.
///
/// The objects share one [`FakeWeb`] and one [`FakeMailer`], and call each
/// other (direct delivery) through this namespace. Alarms are recorded and run
/// by [`Self::run_alarms`] once the clock has reached them. An object holds
/// its lock while it calls another, so two objects calling each other at the
/// same moment from two threads would deadlock here (the platform interleaves
/// them instead): tests keep such calls on one thread.
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
}

impl InProcessNamespace {
    /// A namespace running the current build (all of [`schema::MIGRATIONS`])
    /// with the default configuration (no relay).
    pub fn new(clock: FakeClock) -> Self {
        InProcessNamespace {
            clock,
            build: Mutex::new(schema::MIGRATIONS),
            config: Mutex::new(InboxConfig::default()),
            objects: Mutex::new(BTreeMap::new()),
            alarms: Mutex::new(BTreeMap::new()),
            web: FakeWeb::default(),
            mailer: FakeMailer::default(),
            failing: Mutex::new(Vec::new()),
            alarm_failures: Mutex::new(Vec::new()),
        }
    }

    /// Configures the inbox script: objects woken from now on use `config`
    /// (see [`Self::restart`]).
    pub fn configure(&self, config: InboxConfig) {
        *lock(&self.config) = config;
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

    /// The errors alarms ended with (each was rescheduled 2 s later).
    pub fn alarm_failures(&self) -> Vec<String> {
        lock(&self.alarm_failures).clone()
    }

    /// Runs every alarm the clock has reached, as the platform would, until
    /// none is due (alarms set while running are run too if already due).
    /// Returns how many ran.
    pub fn run_alarms(&self) -> usize {
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
                let object = self.object(&id);
                let mut guard = lock(&object);
                let service = self.instance(&mut guard);
                let platform = ObjectPlatform {
                    namespace: self,
                    id: id.clone(),
                };
                if let Err(error) = pollster::block_on(service.alarm(&guard.db, &platform)) {
                    // The platform retries a failed alarm after 2 s.
                    lock(&self.alarms).insert(id, now.plus_millis(2_000));
                    lock(&self.alarm_failures).push(error);
                }
                ran += 1;
            }
        }
        ran
    }

    fn instance(&self, object: &mut Object) -> Arc<InboxService> {
        let build = *lock(&self.build);
        let config = lock(&self.config).clone();
        Arc::clone(
            object
                .instance
                .get_or_insert_with(|| Arc::new(InboxService::with_config(build, config))),
        )
    }

    /// Deploys a build with `migrations`: objects woken from now on migrate to
    /// its last one. Running objects keep theirs until [`Self::restart`].
    pub fn deploy(&self, migrations: &'static [Migration]) {
        *lock(&self.build) = migrations;
    }

    /// Every object goes to sleep: its instance is dropped, its database kept.
    /// The next request wakes it (and runs pending migrations).
    pub fn restart(&self) {
        for object in lock(&self.objects).values() {
            lock(object).instance = None;
        }
    }

    /// Makes the next `times` requests of operation `op` (the wire's `op`:
    /// `claim`, `confirm`, `release`, `api`) fail as an unreachable stub would,
    /// before they reach the object.
    pub fn fail_requests(&self, op: &str, times: u32) {
        lock(&self.failing).push((op.to_owned(), times));
    }

    /// Runs `f` on the database of object `id`, creating the object if needed.
    pub fn with_db<T>(&self, id: &str, f: impl FnOnce(&SqliteDb) -> T) -> T {
        let object = self.object(id);
        let guard = lock(&object);
        f(&guard.db)
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
                db: SqliteDb::new(),
                instance: None,
            }))
        }))
    }
}

/// The object id for a name: 64 hex digits, like a Durable Object id.
pub fn object_id(name: &str) -> String {
    sha256_hex(format!("InboxObject:{name}").as_bytes())
}

/// One object's view of the platform.
struct ObjectPlatform<'a> {
    namespace: &'a InProcessNamespace,
    id: String,
}

impl Platform for ObjectPlatform<'_> {
    fn now(&self) -> Timestamp {
        self.namespace.clock.now()
    }

    async fn http(&self, call: &HttpCall) -> Result<HttpAnswer, String> {
        self.namespace.web.call(call)
    }

    async fn send_email(&self, from: &str, to: &str, raw: &[u8]) -> Result<(), String> {
        self.namespace.mailer.send(from, to, raw)
    }

    async fn call_inbox(
        &self,
        object_id: &str,
        request: &InboxRequest,
        payload: &[u8],
    ) -> Result<Reply, String> {
        // Boxed: an object's request may lead to another object's.
        Box::pin(
            self.namespace
                .send(object_id, request, Some(payload.to_vec())),
        )
        .await
        .map_err(|e| e.0)
    }

    async fn set_alarm(&self, at: Timestamp) -> Result<(), String> {
        lock(&self.namespace.alarms).insert(self.id.clone(), at);
        Ok(())
    }
}

impl InboxNamespace for InProcessNamespace {
    type Payload = Vec<u8>;
    type Answer = Reply;

    fn id_for_handle(&self, handle: &str) -> Result<String, PortError> {
        Ok(object_id(handle))
    }

    // The object's lock is held across the request on purpose: it is the
    // object's input gate, serializing requests to it as the platform does.
    #[allow(clippy::await_holding_lock)]
    async fn send(
        &self,
        id: &str,
        request: &InboxRequest,
        payload: Option<Vec<u8>>,
    ) -> Result<Reply, PortError> {
        let op = serde_json::to_value(request)
            .ok()
            .and_then(|v| v["op"].as_str().map(str::to_owned))
            .unwrap_or_default();
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
        // The request crosses in its wire form, as it does on the platform.
        let header = encode_request(request);
        let object = self.object(id);
        let mut guard = lock(&object);
        let service = self.instance(&mut guard);
        let platform = ObjectPlatform {
            namespace: self,
            id: id.to_owned(),
        };
        Ok(service
            .serve(&guard.db, &platform, &header, &payload.unwrap_or_default())
            .await)
    }

    fn status(answer: &Reply) -> u16 {
        answer.status
    }

    async fn read(answer: Reply) -> Result<Reply, PortError> {
        Ok(answer)
    }
}
