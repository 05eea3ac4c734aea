//! The world outside an inbox: HTTP endpoints (webhook receivers, the HTTP
//! relay) and Cloudflare's `send_email` binding, recorded and scripted.

use inbox_do::{HttpAnswer, HttpCall, Platform};
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

/// HTTP endpoints in memory. Every call is recorded; each URL answers from its
/// script, in order, and with `200 {}` once the script is used up.
#[derive(Debug, Default)]
pub struct FakeWeb {
    calls: Mutex<Vec<HttpCall>>,
    scripts: Mutex<BTreeMap<String, VecDeque<WebAnswer>>>,
}

impl FakeWeb {
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

    /// Answers one call.
    pub fn call(&self, call: &HttpCall) -> Result<HttpAnswer, String> {
        lock(&self.calls).push(call.clone());
        let answer = lock(&self.scripts)
            .get_mut(&call.url)
            .and_then(VecDeque::pop_front)
            .unwrap_or(WebAnswer::Status(200, "{}".to_owned()));
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
/// refuses when told to.
#[derive(Debug, Default)]
pub struct FakeMailer {
    sent: Mutex<Vec<SentEmail>>,
    refusals: Mutex<VecDeque<String>>,
}

impl FakeMailer {
    /// The next sends throw these errors, one each.
    pub fn refuse_next(&self, errors: impl IntoIterator<Item = String>) {
        lock(&self.refusals).extend(errors);
    }

    /// Everything accepted so far.
    pub fn sent(&self) -> Vec<SentEmail> {
        lock(&self.sent).clone()
    }

    /// Accepts (or refuses) one message.
    pub fn send(&self, from: &str, to: &str, raw: &[u8]) -> Result<(), String> {
        if let Some(error) = lock(&self.refusals).pop_front() {
            return Err(error);
        }
        lock(&self.sent).push(SentEmail {
            from: from.to_owned(),
            to: to.to_owned(),
            raw: raw.to_vec(),
        });
        Ok(())
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

    async fn http(&self, _call: &HttpCall) -> Result<HttpAnswer, String> {
        Err("FixedPlatform has no network".to_owned())
    }

    async fn send_email(&self, _from: &str, _to: &str, _raw: &[u8]) -> Result<(), String> {
        Err("FixedPlatform has no send_email binding".to_owned())
    }

    async fn call_inbox(&self, _: &str, _: &InboxRequest, _: &[u8]) -> Result<Reply, String> {
        Err("FixedPlatform has no other inboxes".to_owned())
    }

    async fn set_alarm(&self, at: Timestamp) -> Result<(), String> {
        *lock(&self.alarm) = Some(at);
        Ok(())
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock has already failed.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
