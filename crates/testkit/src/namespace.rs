//! InboxDO objects hosted in-process.

use crate::{FakeClock, SqliteDb};
use inbox_do::InboxService;
use protocol::Reply;
use protocol::key::sha256_hex;
use protocol::wire::{InboxRequest, encode_request};
use router_worker::{InboxNamespace, PortError};
use schema::Migration;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One object: its durable database and its in-memory instance (absent while
/// the object sleeps).
#[derive(Debug)]
struct Object {
    db: SqliteDb,
    instance: Option<InboxService>,
}

/// The InboxDO namespace, in process. Each object runs the real
/// [`InboxService`] over its own [`SqliteDb`]; requests to one object are
/// serialized (as the platform's input gate serializes them), while different
/// objects run in parallel. Requests arrive as bytes, exactly as on the wire.
#[derive(Debug)]
pub struct InProcessNamespace {
    clock: FakeClock,
    build: Mutex<&'static [Migration]>,
    objects: Mutex<BTreeMap<String, Arc<Mutex<Object>>>>,
    /// Operations (`claim`, `confirm`, `release`, `api`) whose next sends fail.
    failing: Mutex<Vec<(String, u32)>>,
}

impl InProcessNamespace {
    /// A namespace running the current build (all of [`schema::MIGRATIONS`]).
    pub fn new(clock: FakeClock) -> Self {
        InProcessNamespace {
            clock,
            build: Mutex::new(schema::MIGRATIONS),
            objects: Mutex::new(BTreeMap::new()),
            failing: Mutex::new(Vec::new()),
        }
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock has already failed.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl InboxNamespace for InProcessNamespace {
    type Payload = Vec<u8>;

    fn id_for_handle(&self, handle: &str) -> Result<String, PortError> {
        Ok(object_id(handle))
    }

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
        let build = *lock(&self.build);
        let object = self.object(id);
        let mut guard = lock(&object);
        let Object { db, instance } = &mut *guard;
        let service = instance.get_or_insert_with(|| InboxService::new(build));
        Ok(service.serve(db, &header, &payload.unwrap_or_default(), self.clock.now()))
    }
}
