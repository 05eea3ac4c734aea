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
        Ok(self.lock().entries.get(key).and_then(|e| {
            if e.visible_at <= now {
                e.current.clone()
            } else {
                e.previous.clone()
            }
        }))
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.write(key, Some(value.to_owned()))
    }

    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.write(key, None)
    }
}
