//! A shared, manually advanced clock.

use protocol::Timestamp;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A clock that moves only when told. Clones share the same time.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<AtomicI64>);

impl FakeClock {
    /// A clock at `start`.
    pub fn new(start: Timestamp) -> Self {
        FakeClock(Arc::new(AtomicI64::new(start.millis())))
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Default for FakeClock {
    /// 2026-03-26T12:00:00Z, the contract's example instant.
    fn default() -> Self {
        FakeClock::new(Timestamp::from_millis(1_774_526_400_000))
    }
}
