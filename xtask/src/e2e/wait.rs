//! End-to-end checks of the long poll `GET /api/messages/wait` on real
//! workerd: a waiter woken by mail (and how soon, beside a plain API call),
//! many waiters woken by one message, a stored message answered at once, the
//! query filter, the timeout, and bad parameters.

use super::{Suite, expect, expect_error};
use crate::Result;
use crate::api::{call, deliver_ok, small_message};
use crate::http::{Client, Response};
use serde_json::{Value as Json, json};
use std::time::{Duration, Instant};

/// Rounds of the wake-up measurement (and calls of the plain one).
const ROUNDS: usize = 50;

/// A client whose requests may last a whole 30 s wait and then some.
fn waiting_client(suite: &Suite) -> Client {
    suite.client().with_timeout(Duration::from_secs(45))
}

/// `GET /api/messages/wait` with `query` (already encoded).
fn wait(client: &Client, key: &str, query: &str) -> Result<Response> {
    call(
        client,
        key,
        "GET",
        &format!("/api/messages/wait?{query}"),
        None,
    )
}

/// The message a wait answered with: its id, after checking it is a 200
/// whose `message` is an inbound message's detail; `None` for
/// `{"message": null}`.
fn waited_for(answer: &Response, what: &str) -> Result<Option<u64>> {
    expect(answer.status == 200, || {
        format!("wait {what}: {} {}", answer.status, answer.body)
    })?;
    let body = answer.parsed().map_err(|e| format!("wait {what}: {e}"))?;
    let message = body
        .get("message")
        .ok_or_else(|| format!("wait {what}: no message field in {}", answer.body))?;
    if message.is_null() {
        return Ok(None);
    }
    let id = message["id"]
        .as_u64()
        .ok_or_else(|| format!("wait {what}: the message has no id: {}", answer.body))?;
    expect(
        message["direction"] == "inbound"
            && message["codes"].is_array()
            && message["links"].is_array()
            && message["headers"].is_array(),
        || {
            format!(
                "wait {what}: the message is not an inbound message's detail: {}",
                answer.body
            )
        },
    )?;
    Ok(Some(id))
}

/// The id of the inbox's newest message (0 when it has none).
fn newest(client: &Client, key: &str) -> Result<u64> {
    let list = call(client, key, "GET", "/api/messages?limit=1", None)?;
    let body = list.parsed()?;
    let messages = body["messages"]
        .as_array()
        .ok_or_else(|| format!("GET /api/messages?limit=1: {}", list.body))?;
    match messages.first() {
        None => Ok(0),
        Some(m) => m["id"]
            .as_u64()
            .ok_or_else(|| format!("a listed message has no id: {m}")),
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A waiter started before the mail is sent gets it, with `after` left to
/// its default; then, over 50 rounds, the time from a delivery's answer to
/// the waiter's, printed beside `GET /api/me` measured in the same run.
pub(super) fn waiter_gets_new_mail(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-wait")?;
    let to = suite.address("e2e-wait");
    let client = waiting_client(suite);
    // One message already stored: the default `after` (the newest id when
    // the call arrives) must pass over it.
    deliver_ok(
        &client,
        "s@example.com",
        &to,
        &small_message(&to, "wait", 0),
    )?;
    let stale = wait(&client, &key, "timeout=1")?;
    expect(waited_for(&stale, "timeout=1")?.is_none(), || {
        format!(
            "a waiter with no after answered with mail stored before it: {}",
            stale.body
        )
    })?;
    let mut last = newest(&client, &key)?;

    // The default `after`: the waiter has a second to be in place first.
    let first = std::thread::scope(|scope| -> Result<Option<u64>> {
        let waiter = scope.spawn(|| wait(&client, &key, "timeout=30"));
        std::thread::sleep(Duration::from_secs(1));
        deliver_ok(
            &client,
            "s@example.com",
            &to,
            &small_message(&to, "wait", 1),
        )?;
        let answer = waiter
            .join()
            .unwrap_or_else(|_| Err("the waiter panicked".into()))?;
        waited_for(&answer, "timeout=30")
    })?;
    expect(first == Some(last + 1), || {
        format!("a waiter started before mail {} got {first:?}", last + 1)
    })?;
    last += 1;

    // The rounds give `after` explicitly, so a waiter that is not in place
    // yet when the mail lands still answers (at once) with the right one.
    // Signed: negative when the waiter answered before the delivery's own
    // answer was back (the wake-up runs as soon as the mail is committed).
    let mut wakes = Vec::new();
    let mut from_start = Vec::new();
    let mut acks = Vec::new();
    for round in 0..ROUNDS {
        let query = format!("after={last}&timeout=30");
        let (answer, answered, acknowledged, sent) = std::thread::scope(|scope| -> Result<_> {
            let waiter = scope.spawn(|| {
                let answer = wait(&client, &key, &query);
                (answer, Instant::now())
            });
            std::thread::sleep(Duration::from_millis(150));
            let raw = small_message(&to, "wait", 2 + round);
            let sent = Instant::now();
            deliver_ok(&client, "s@example.com", &to, &raw)?;
            let acknowledged = Instant::now();
            let (answer, answered) = waiter
                .join()
                .map_err(|_| "the waiter panicked".to_owned())?;
            Ok((answer?, answered, acknowledged, sent))
        })?;
        let got = waited_for(&answer, &query)?;
        expect(got == Some(last + 1), || {
            format!(
                "round {round}: the waiter for mail {} got {got:?}",
                last + 1
            )
        })?;
        last += 1;
        wakes.push(
            ms(answered.saturating_duration_since(acknowledged))
                - ms(acknowledged.saturating_duration_since(answered)),
        );
        from_start.push(ms(answered.saturating_duration_since(sent)));
        acks.push(ms(acknowledged.saturating_duration_since(sent)));
    }
    let mut plain = Vec::new();
    for _ in 0..ROUNDS {
        let began = Instant::now();
        let me = call(&client, &key, "GET", "/api/me", None)?;
        plain.push(ms(began.elapsed()));
        expect(me.status == 200, || {
            format!("GET /api/me: {} {}", me.status, me.body)
        })?;
    }
    for list in [&mut wakes, &mut from_start, &mut acks, &mut plain] {
        list.sort_by(f64::total_cmp);
    }
    println!(
        "        (wait wake, the waiter's answer minus the delivery's acknowledgement: p50 {:+.1} ms \
         p99 {:+.1} ms; from the delivery's start, the waiter answered at p50 {:.1} ms p99 {:.1} ms \
         and the delivery at p50 {:.1} ms p99 {:.1} ms; GET /api/me p50 {:.1} ms p99 {:.1} ms)",
        percentile(&wakes, 0.5),
        percentile(&wakes, 0.99),
        percentile(&from_start, 0.5),
        percentile(&from_start, 0.99),
        percentile(&acks, 0.5),
        percentile(&acks, 0.99),
        percentile(&plain, 0.5),
        percentile(&plain, 0.99)
    );
    Ok(())
}

/// 20 waiters on one inbox all get the one message that arrives.
pub(super) fn many_waiters_one_message(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-wait-many")?;
    let to = suite.address("e2e-wait-many");
    let client = waiting_client(suite);
    let answers: Vec<Result<Option<u64>>> = std::thread::scope(|scope| {
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                scope.spawn(|| {
                    wait(&client, &key, "after=0&timeout=30")
                        .and_then(|a| waited_for(&a, "after=0&timeout=30"))
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1));
        let delivered = deliver_ok(
            &client,
            "s@example.com",
            &to,
            &small_message(&to, "many", 1),
        );
        let mut answers: Vec<Result<Option<u64>>> = waiters
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a waiter panicked".into())))
            .collect();
        if let Err(e) = delivered {
            answers.push(Err(e));
        }
        answers
    });
    let got = answers.into_iter().collect::<Result<Vec<_>>>()?;
    expect(
        got.len() == 20 && got.iter().all(|id| *id == Some(1)),
        || format!("20 waiters for message 1 got {got:?}"),
    )
}

/// A stored message matching the wait answers at once; sent mail is not
/// waited for (inbound only).
pub(super) fn stored_message_at_once(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-wait-stored")?;
    let to = suite.address("e2e-wait-stored");
    let client = waiting_client(suite);
    for n in 1..=2 {
        deliver_ok(
            &client,
            "s@example.com",
            &to,
            &small_message(&to, "stored", n),
        )?;
    }
    let began = Instant::now();
    let answer = wait(&client, &key, "after=0&timeout=30")?;
    let took = began.elapsed();
    let got = waited_for(&answer, "after=0&timeout=30")?;
    expect(got == Some(1) && took < Duration::from_secs(5), || {
        format!(
            "after=0 with messages 1 and 2 stored answered {got:?} in {:.1} s (the first, at once, expected)",
            took.as_secs_f64()
        )
    })?;
    let got = waited_for(&wait(&client, &key, "after=1&timeout=30")?, "after=1")?;
    expect(got == Some(2), || format!("after=1 answered {got:?}"))?;
    // A send from the inbox (id 3) is not what a wait is for.
    let sent = call(
        &client,
        &key,
        "POST",
        "/api/messages",
        Some(&json!({"to": "partner@example.com", "subject": "out", "text": "outbound"})),
    )?;
    expect(sent.status == 201 && sent.json()["id"] == 3, || {
        format!("the send: {} {}", sent.status, sent.body)
    })?;
    let got = waited_for(&wait(&client, &key, "after=2&timeout=1")?, "after=2")?;
    expect(got.is_none(), || {
        format!("after=2 with only a sent message after it answered {got:?}")
    })
}

/// A waiter with `q=subject:code` passes over mail that does not match and
/// gets the next that does.
pub(super) fn wait_query_filters(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-wait-q")?;
    let to = suite.address("e2e-wait-q");
    let client = waiting_client(suite);
    let mail = |id: &str, subject: &str| {
        format!(
            "From: a@example.com\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@example.com>\r\n\r\n\
             The code word is in the body of both.\r\n"
        )
        .into_bytes()
    };
    let query = "after=0&timeout=30&q=subject%3Acode";
    let got = std::thread::scope(|scope| -> Result<Option<u64>> {
        let waiter = scope.spawn(|| wait(&client, &key, query));
        std::thread::sleep(Duration::from_millis(500));
        deliver_ok(
            &client,
            "a@example.com",
            &to,
            &mail("q-1", "Weekly newsletter"),
        )?;
        std::thread::sleep(Duration::from_millis(500));
        deliver_ok(
            &client,
            "a@example.com",
            &to,
            &mail("q-2", "Your login code"),
        )?;
        let answer = waiter
            .join()
            .unwrap_or_else(|_| Err("the waiter panicked".into()))?;
        waited_for(&answer, query)
    })?;
    expect(got == Some(2), || {
        format!("a waiter for subject:code got {got:?}, not message 2 (1 does not match)")
    })
}

/// `timeout=1` with nothing arriving answers `{"message": null, "after"}`
/// (the newest id when it was asked: none yet, 0) after about a second.
pub(super) fn wait_times_out(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-wait-timeout")?;
    let client = waiting_client(suite);
    let began = Instant::now();
    let answer = wait(&client, &key, "timeout=1")?;
    let took = began.elapsed().as_secs_f64();
    let body = answer.parsed()?;
    expect(
        answer.status == 200 && body == json!({"message": Json::Null, "after": 0}),
        || {
            format!(
                "timeout=1 answered {} {} (expected 200 {{\"message\": null, \"after\": 0}})",
                answer.status, answer.body
            )
        },
    )?;
    expect((0.9..=5.0).contains(&took), || {
        format!("timeout=1 answered after {took:.2} s, not about 1 s")
    })
}

/// Bad `timeout`, `after` and `q` are refused with 400 `invalid_request`.
pub(super) fn wait_bad_parameters(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-wait-bad")?;
    let client = waiting_client(suite);
    let mut wrong = Vec::new();
    for query in [
        "timeout=0",
        "timeout=61",
        "timeout=-1",
        "timeout=x",
        "after=x",
        "after=-1",
        "q=%22",
    ] {
        let began = Instant::now();
        let answer = wait(&client, &key, query)?;
        if let Err(e) = expect_error(&answer, 400, "invalid_request") {
            wrong.push(format!("wait?{query}: {e}"));
        } else if began.elapsed() > Duration::from_secs(5) {
            wrong.push(format!(
                "wait?{query} was refused only after {:.1} s",
                began.elapsed().as_secs_f64()
            ));
        }
    }
    expect(wrong.is_empty(), || wrong.join("; "))
}
