//! The world outside an inbox: HTTP endpoints (webhook receivers, the HTTP
//! relay) and Cloudflare's `send_email` binding, recorded and scripted.

use crate::FakeClock;
use crate::gate::{Deadline, Gate, Holds};
use inbox_do::{HttpAnswer, HttpCall, Platform, PlatformError};
use protocol::wire::InboxRequest;
use protocol::{Reply, Timestamp};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// How a [`FakeWeb`] endpoint answers one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebAnswer {
    /// This status, with this body.
    Status(u16, String),
    /// No answer within the call's timeout.
    Timeout,
    /// The connection failed.
    Unreachable,
}

/// HTTP endpoints in memory. Every call is recorded as it arrives; each URL
/// answers from its script, in order, and with `200 {}` once the script is
/// used up. A URL can be held (see [`FakeWeb::hold`]).
#[derive(Debug, Default)]
pub struct FakeWeb {
    calls: Mutex<Vec<HttpCall>>,
    scripts: Mutex<BTreeMap<String, VecDeque<WebAnswer>>>,
    holds: Holds,
    clock: Option<FakeClock>,
}

impl FakeWeb {
    /// Endpoints whose held calls time out when `clock` passes their
    /// timeout, as the platform ends them.
    pub fn with_clock(clock: FakeClock) -> Self {
        FakeWeb {
            clock: Some(clock),
            ..FakeWeb::default()
        }
    }

    /// Queues `answers` for calls to `url`.
    pub fn script(&self, url: &str, answers: impl IntoIterator<Item = WebAnswer>) {
        lock(&self.scripts)
            .entry(url.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<HttpCall> {
        lock(&self.calls).clone()
    }

    /// The calls so far to `url`.
    pub fn calls_to(&self, url: &str) -> Vec<HttpCall> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.url == url)
            .cloned()
            .collect()
    }

    /// Holds the calls to `url` from now on: each is recorded when it
    /// arrives and takes its scripted answer then, but is answered only once
    /// the gate is released. With a clock ([`Self::with_clock`]), a held call
    /// that sees the clock past its timeout ends as timed out instead.
    pub fn hold(&self, url: &str) -> Gate {
        self.holds.hold(url)
    }

    /// Answers one call.
    pub async fn call(&self, call: &HttpCall) -> Result<HttpAnswer, String> {
        lock(&self.calls).push(call.clone());
        let answer = lock(&self.scripts)
            .get_mut(&call.url)
            .and_then(VecDeque::pop_front)
            .unwrap_or(WebAnswer::Status(200, "{}".to_owned()));
        let deadline = self.clock.as_ref().map(|clock| Deadline {
            clock: clock.clone(),
            at: clock
                .now()
                .plus_millis(i64::try_from(call.timeout_millis).unwrap_or(i64::MAX)),
        });
        let answer = match self.holds.pass(&call.url, deadline).await {
            true => answer,
            false => WebAnswer::Timeout,
        };
        match answer {
            WebAnswer::Status(status, body) => Ok(HttpAnswer {
                status,
                body: body.into_bytes(),
            }),
            WebAnswer::Timeout => Err(format!(
                "No complete answer within {} s.",
                call.timeout_millis / 1000
            )),
            WebAnswer::Unreachable => Err("The request failed: connection refused".to_owned()),
        }
    }
}

/// One message handed to the fake `send_email` binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    /// Envelope sender.
    pub from: String,
    /// Envelope recipient.
    pub to: String,
    /// The message.
    pub raw: Vec<u8>,
}

/// Cloudflare's `send_email` binding in memory: records what it is given and
/// refuses when told to; it can be held (see [`FakeMailer::hold`]).
#[derive(Debug, Default)]
pub struct FakeMailer {
    sent: Mutex<Vec<SentEmail>>,
    refusals: Mutex<VecDeque<String>>,
    refused_addresses: Mutex<BTreeMap<String, String>>,
    holds: Holds,
}

impl FakeMailer {
    /// The next sends throw these errors, one each.
    pub fn refuse_next(&self, errors: impl IntoIterator<Item = String>) {
        lock(&self.refusals).extend(errors);
    }

    /// Every send to envelope recipient `to` from now on throws `error`
    /// (as the binding does for an address the account may not write to).
    pub fn refuse_address(&self, to: &str, error: &str) {
        lock(&self.refused_addresses).insert(to.to_owned(), error.to_owned());
    }

    /// Everything accepted so far.
    pub fn sent(&self) -> Vec<SentEmail> {
        lock(&self.sent).clone()
    }

    /// Holds every send from now on: each is accepted (or refused) and
    /// recorded when it arrives, but returns only once the gate is released.
    pub fn hold(&self) -> Gate {
        self.holds.hold("")
    }

    /// Accepts (or refuses) one message.
    pub async fn send(&self, from: &str, to: &str, raw: &[u8]) -> Result<(), String> {
        let refusal = lock(&self.refused_addresses)
            .get(to)
            .cloned()
            .or_else(|| lock(&self.refusals).pop_front());
        if refusal.is_none() {
            lock(&self.sent).push(SentEmail {
                from: from.to_owned(),
                to: to.to_owned(),
                raw: raw.to_vec(),
            });
        }
        self.holds.pass("", None).await;
        refusal.map_or(Ok(()), Err)
    }
}

/// A [`Platform`] for driving one [`inbox_do::InboxService`] directly: a
/// fixed clock, and no outside world (every I/O call fails, alarms are
/// recorded). For benchmarks and tests of one inbox alone.
#[derive(Debug)]
pub struct FixedPlatform {
    now: Timestamp,
    alarm: Mutex<Option<Timestamp>>,
}

impl FixedPlatform {
    /// A platform whose clock reads `now`.
    pub fn at(now: Timestamp) -> Self {
        FixedPlatform {
            now,
            alarm: Mutex::new(None),
        }
    }

    /// The alarm last set.
    pub fn alarm(&self) -> Option<Timestamp> {
        *lock(&self.alarm)
    }
}

impl Platform for FixedPlatform {
    fn now(&self) -> Timestamp {
        self.now
    }

    async fn http(&self, _call: &HttpCall) -> Result<HttpAnswer, PlatformError> {
        Err("FixedPlatform has no network".into())
    }

    async fn send_email(&self, _from: &str, _to: &str, _raw: &[u8]) -> Result<(), PlatformError> {
        Err("FixedPlatform has no send_email binding".into())
    }

    async fn call_inbox(
        &self,
        _: &str,
        _: &InboxRequest,
        _: &[u8],
    ) -> Result<Reply, PlatformError> {
        Err("FixedPlatform has no other inboxes".into())
    }

    async fn set_alarm(&self, at: Timestamp) -> Result<(), PlatformError> {
        *lock(&self.alarm) = Some(at);
        Ok(())
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock has already failed.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
