//! A fake Workers KV.

use crate::FakeClock;
use router_worker::{Directory, PortError};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Entry {
    /// What a read sees after `visible_at`.
    current: Option<String>,
    /// What a read sees before it (KV's stale view).
    previous: Option<String>,
    visible_at: i64,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    /// Keys whose next writes fail, with how many more times to fail.
    failing_writes: Vec<(String, u32)>,
    /// Writes started and not yet finished, and the most there ever were.
    writes_in_flight: u32,
    most_writes_in_flight: u32,
    /// Reads (gets) answered so far.
    reads: u64,
}

/// Workers KV in memory. With a staleness window, a write becomes visible to
/// reads only once the shared [`FakeClock`] has moved past it, as KV's
/// eventual consistency allows (up to 60 s or more on the platform).
#[derive(Debug)]
pub struct FakeKv {
    clock: FakeClock,
    staleness_millis: i64,
    state: Mutex<State>,
}

impl FakeKv {
    /// A KV where writes are visible at once.
    pub fn new(clock: FakeClock) -> Self {
        Self::with_staleness(clock, 0)
    }

    /// A KV where each write stays invisible to reads for `millis`.
    pub fn with_staleness(clock: FakeClock, millis: i64) -> Self {
        FakeKv {
            clock,
            staleness_millis: millis,
            state: Mutex::new(State::default()),
        }
    }

    /// Makes the next `times` writes (put or delete) of keys starting with
    /// `prefix` fail.
    pub fn fail_writes(&self, prefix: &str, times: u32) {
        self.lock().failing_writes.push((prefix.to_owned(), times));
    }

    /// The most writes (puts and deletes) that were ever in flight at once:
    /// each write yields once before it lands, as a real KV write is a round
    /// trip, so writes awaited together overlap and writes in a row do not.
    pub fn most_writes_at_once(&self) -> u32 {
        self.lock().most_writes_in_flight
    }

    /// How many reads (gets) KV has answered: the router's index cache
    /// should spare all but the first of a key's or a handle's.
    pub fn reads(&self) -> u64 {
        self.lock().reads
    }

    /// Every key and the value that will eventually be visible (for asserting
    /// that nothing orphaned was left behind).
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.lock()
            .entries
            .iter()
            .filter_map(|(k, e)| e.current.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    /// Sets a value directly, visible at once (for arranging test state).
    pub fn insert(&self, key: &str, value: &str) {
        self.lock().entries.insert(
            key.to_owned(),
            Entry {
                current: Some(value.to_owned()),
                previous: None,
                visible_at: i64::MIN,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One write as a round trip: in flight across one yield, then applied.
    async fn write_after_a_yield(&self, key: &str, value: Option<String>) -> Result<(), PortError> {
        {
            let mut state = self.lock();
            state.writes_in_flight += 1;
            state.most_writes_in_flight = state.most_writes_in_flight.max(state.writes_in_flight);
        }
        YieldOnce(false).await;
        let outcome = self.write(key, value);
        self.lock().writes_in_flight -= 1;
        outcome
    }

    fn write(&self, key: &str, value: Option<String>) -> Result<(), PortError> {
        let now = self.clock.now().millis();
        let mut state = self.lock();
        if let Some(rule) = state
            .failing_writes
            .iter_mut()
            .find(|(prefix, times)| *times > 0 && key.starts_with(prefix.as_str()))
        {
            rule.1 -= 1;
            return Err(PortError(format!("injected KV write failure for {key}")));
        }
        let previous = state.entries.get(key).and_then(|e| {
            if e.visible_at <= now {
                e.current.clone()
            } else {
                e.previous.clone()
            }
        });
        state.entries.insert(
            key.to_owned(),
            Entry {
                current: value,
                previous,
                visible_at: now.saturating_add(self.staleness_millis),
            },
        );
        Ok(())
    }
}

impl Directory for FakeKv {
    async fn get(&self, key: &str) -> Result<Option<String>, PortError> {
        let now = self.clock.now().millis();
        let mut state = self.lock();
        state.reads += 1;
        Ok(state.entries.get(key).and_then(|e| {
            if e.visible_at <= now {
                e.current.clone()
            } else {
                e.previous.clone()
            }
        }))
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.write_after_a_yield(key, Some(value.to_owned())).await
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.write_after_a_yield(key, None).await
    }
}

/// A future that is pending once (waking itself at once), then ready: the
/// point where other futures awaited beside it run.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        context.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
