//! Controllable delays, for tests of interleavings: a held call waits at its
//! [`Gate`] until the test releases it, and a test drives several requests at
//! once on one thread (see [`until`]).

use crate::FakeClock;
use crate::outside::lock;
use protocol::Timestamp;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Debug, Default)]
struct GateState {
    open: bool,
    /// Calls that reached the gate, released or not.
    arrived: usize,
    wakers: Vec<Waker>,
}

/// Where held calls wait: every call that reaches a gate before
/// [`Gate::release`] waits for it; calls after it pass straight through.
/// Clones are the same gate. Something joined with the held call must release
/// it: a blocking method (`TestService::request`) held at a gate never returns.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<Mutex<GateState>>);

impl Gate {
    /// Lets every waiting call go on (and every later one pass).
    pub fn release(&self) {
        let wakers = {
            let mut state = lock(&self.0);
            state.open = true;
            std::mem::take(&mut state.wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// How many calls have reached the gate so far.
    pub fn arrived(&self) -> usize {
        lock(&self.0).arrived
    }

    fn is_open(&self) -> bool {
        lock(&self.0).open
    }

    /// Counts one call's arrival, then waits until the gate is open.
    fn pass(&self, deadline: Option<Deadline>) -> Passing {
        lock(&self.0).arrived += 1;
        Passing {
            gate: self.clone(),
            deadline,
        }
    }
}

/// When a waiting call gives up: the platform ends a call at its timeout.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    pub(crate) clock: FakeClock,
    pub(crate) at: Timestamp,
}

/// One call waiting at a gate.
#[derive(Debug)]
struct Passing {
    gate: Gate,
    deadline: Option<Deadline>,
}

impl Future for Passing {
    /// `false` when the deadline came first.
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut state = lock(&self.gate.0);
        if state.open {
            Poll::Ready(true)
        } else if self
            .deadline
            .as_ref()
            .is_some_and(|d| d.clock.now() >= d.at)
        {
            // Noticed when next polled after the clock moved: a test that
            // moves the clock lets the join run (`yield_now`) before going on.
            Poll::Ready(false)
        } else {
            if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                state.wakers.push(cx.waker().clone());
            }
            Poll::Pending
        }
    }
}

/// The gates of one double, by key (a URL, an object id). Only the newest
/// unreleased gate of a key holds its calls.
#[derive(Debug, Default)]
pub(crate) struct Holds(Mutex<Vec<(String, Gate)>>);

impl Holds {
    /// Holds the calls to `key` from now on, until the gate is released.
    pub(crate) fn hold(&self, key: &str) -> Gate {
        let gate = Gate::default();
        let mut holds = lock(&self.0);
        holds.retain(|(_, gate)| !gate.is_open());
        holds.push((key.to_owned(), gate.clone()));
        gate
    }

    /// Waits while a gate holds calls to `key`, or until `deadline`;
    /// `false` if the deadline came first.
    pub(crate) async fn pass(&self, key: &str, deadline: Option<Deadline>) -> bool {
        let gate = lock(&self.0)
            .iter()
            .rev()
            .find(|(k, gate)| k == key && !gate.is_open())
            .map(|(_, gate)| gate.clone());
        match gate {
            Some(gate) => gate.pass(deadline).await,
            None => true,
        }
    }
}

/// Gives the other futures of a join one turn: `Pending` once, waking itself.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Yields (see [`yield_now`]) until `done` holds, so that the other futures
/// of a join run up to where the test wants them (a call reaching a gate).
/// Panics, naming `what`, if that never happens.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        yield_now().await;
    }
    panic!("waited in vain for {what}");
}

/// An object's turn to run: the platform runs one object's code on one thread
/// at a time, and lets another request in only while it awaits I/O. A request
/// takes the turn to run and gives it back at each call out of the object.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    busy: Mutex<bool>,
    free: Condvar,
}

impl Turn {
    /// Waits for the turn (another thread's request may be running a step).
    pub(crate) fn take(&self) {
        let mut busy = lock(&self.busy);
        while *busy {
            let (guard, timeout) = self
                .free
                .wait_timeout(busy, Duration::from_secs(30))
                .unwrap_or_else(|p| p.into_inner());
            busy = guard;
            // On one thread, a turn never given back is a bug of the fake.
            assert!(
                !(timeout.timed_out() && *busy),
                "an object's turn was not given back within 30 s"
            );
        }
        *busy = true;
    }

    /// Gives the turn back.
    pub(crate) fn give(&self) {
        *lock(&self.busy) = false;
        self.free.notify_one();
    }
}
