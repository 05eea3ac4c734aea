//! Latency and throughput of the API on `wrangler dev`, each as a ratio to a
//! floor measured in the same run: `GET /api/health/deep`, the smallest round
//! trip through the router to a Durable Object and one read of its SQLite.
//! Also the time to the first response after a start, and the first request
//! to an inbox after a restart (every object cold) and after an idle spell,
//! beside the cold-wake floor: the first request to the smallest Rust Durable
//! Object (`xtask/floor-do`) after a restart of its own `wrangler dev`.

use crate::api::{deliver, filled_inbox, signup_key};
use crate::http::{Client, Response};
use crate::tools::Tools;
use crate::wrangler::{DevSettings, Session, mail_domain};
use crate::{Result, step};
use std::time::{Duration, Instant};

/// Requests per scenario per round.
const REQUESTS: usize = 400;
/// Concurrent clients.
const CLIENTS: usize = 8;
/// Rounds; every figure is the median over them.
const ROUNDS: usize = 3;
/// Messages in the inbox that is listed and read, when not told otherwise.
pub(crate) const DEFAULT_STORED: usize = 100_000;
/// Restarts for the cold-wake figures (each gives one cold request).
const RESTARTS: usize = 5;

/// A scenario: its name, the status every answer must have, and the request
/// (given the round and the request's number).
type Scenario<'a> = (
    &'static str,
    u16,
    Box<dyn Fn(usize, usize) -> Result<Response> + Sync + 'a>,
);

/// One round of one scenario: each request's latency (ms) and the wall time.
struct Round {
    latencies: Vec<f64>,
    seconds: f64,
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Runs `work(i)` for every `i` in `range`, spread over `clients` threads;
/// returns each call's latency in ms, sorted. The first failure fails all.
pub(crate) fn timed_all(
    clients: usize,
    range: std::ops::Range<usize>,
    work: &(dyn Fn(usize) -> Result<()> + Sync),
) -> Result<Vec<f64>> {
    let outcomes: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|client| {
                let range = range.clone();
                scope.spawn(move || -> Result<Vec<f64>> {
                    let mut latencies = Vec::new();
                    for i in (range.start + client..range.end).step_by(clients) {
                        let began = Instant::now();
                        work(i)?;
                        latencies.push(began.elapsed().as_secs_f64() * 1000.0);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a client panicked".into())))
            .collect()
    });
    let mut all = Vec::new();
    for outcome in outcomes {
        all.extend(outcome?);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

/// Runs `REQUESTS` calls of `request(n)` from `CLIENTS` threads; every answer
/// must have status `expected`.
fn round(request: &(dyn Fn(usize) -> Result<Response> + Sync), expected: u16) -> Result<Round> {
    let started = Instant::now();
    let latencies = timed_all(CLIENTS, 0..REQUESTS, &|n| {
        let answer = request(n)?;
        if answer.status != expected {
            return Err(format!("request {n}: {} {}", answer.status, answer.body));
        }
        Ok(())
    })?;
    Ok(Round {
        latencies,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub(crate) fn run(tools: &Tools, stored: usize) -> Result<()> {
    step("latency on wrangler dev: p50, p99 and throughput, against a router → DO → SQLite floor");
    // Built first, so that no build runs beside a measurement.
    let floor_worker = crate::build::build_floor(tools)?;
    // The deployed defaults (no http webhooks), without the signup limit.
    let mut settings = DevSettings::default();
    settings.set_router_var(protocol::bindings::SIGNUPS_PER_HOUR_VAR, "0");
    let mut session = Session::new(tools, "latency", settings)?;

    let ready = session.start()?;
    let client = session.client();
    let cold_probe = timed(|| client.get("/api/health/deep"))?;
    let domain = mail_domain()?;

    // An inbox with `stored` messages to list and read, and one to deliver to.
    let filling = Instant::now();
    let reader = filled_inbox(&client, "lat-reader", &domain, stored, 16, "lat")?;
    println!(
        "filled an inbox with {stored} messages in {:.0} s",
        filling.elapsed().as_secs_f64()
    );
    // The inbox mail is delivered to; after a restart its list is the
    // second cold object's (see below).
    let second = signup_key(&client, "lat-ingest")?;

    let auth = format!("Bearer {reader}");
    let scenarios: Vec<Scenario<'_>> = vec![
        (
            "floor: GET /api/health/deep",
            200,
            Box::new(|_, _| client.get("/api/health/deep")),
        ),
        (
            "signup",
            201,
            Box::new(|round, n| {
                client.post_json(
                    "/api/signup",
                    &format!(r#"{{"handle":"lat-s{round}-{n}"}}"#),
                )
            }),
        ),
        (
            "ingest (local email endpoint)",
            200,
            Box::new(|round, n| {
                let raw = format!(
                    "From: l@example.com\r\nTo: lat-ingest@{domain}\r\nSubject: {round} {n}\r\n\
                     Message-ID: <lat-{round}-{n}@example.com>\r\n\r\nlatency {round} {n}\r\n"
                );
                deliver(
                    &client,
                    "l@example.com",
                    &format!("lat-ingest@{domain}"),
                    raw.as_bytes(),
                )
            }),
        ),
        (
            "list (20 of the stored)",
            200,
            Box::new(|_, _| {
                client.request(
                    "GET",
                    "/api/messages?limit=20",
                    &[("authorization", &auth)],
                    None,
                )
            }),
        ),
        (
            "get one message",
            200,
            Box::new(|_, n| {
                client.request(
                    "GET",
                    &format!("/api/messages/{}", 1 + n * 7919 % stored),
                    &[("authorization", &auth)],
                    None,
                )
            }),
        ),
    ];
    // Rounds interleave the scenarios, so drift on a noisy machine touches all.
    let mut results: Vec<Vec<Round>> = scenarios.iter().map(|_| Vec::new()).collect();
    for r in 0..ROUNDS {
        for (i, (name, expected, request)) in scenarios.iter().enumerate() {
            let one = round(&|n| request(r, n), *expected)
                .map_err(|e| format!("{name}, round {}: {e}", r + 1))?;
            results[i].push(one);
        }
    }

    let in_a_row = one_client_in_a_row(&client)?;

    // Restarts: every object is cold after each. Then an idle spell.
    let mut restarts = Vec::new();
    let (mut cold_inbox, mut warm_inbox, mut cold_health) = (Vec::new(), Vec::new(), Vec::new());
    let mut cold_second = Vec::new();
    for _ in 0..RESTARTS {
        // The readiness poll (`/api/health`, router only) has woken the
        // Worker, as the floor's wakes its Worker: what is cold is the object.
        restarts.push(session.start()?);
        cold_health.push(timed(|| client.get("/api/health/deep"))?);
        cold_inbox.push(timed(|| {
            client.get_with_key("/api/messages?limit=20", &reader)
        })?);
        // The same request to another cold object, once the code it runs
        // has run: what is left is the object's own wake (its SQLite opened,
        // the schema read, the migration check), not the first use of code.
        cold_second.push(timed(|| {
            client.get_with_key("/api/messages?limit=20", &second)
        })?);
        warm_inbox.push(timed(|| {
            client.get_with_key("/api/messages?limit=20", &reader)
        })?);
    }
    std::thread::sleep(Duration::from_secs(30));
    let after_idle = timed(|| client.get_with_key("/api/messages?limit=20", &reader))?;
    session.stop();

    // The floor: the smallest Rust Durable Object, on its own wrangler dev.
    let mut floor_session = Session::new(
        tools,
        "latency-floor",
        DevSettings {
            alone: Some(floor_worker),
            ..DevSettings::default()
        },
    )?;
    floor_session.start()?;
    let floor_client = floor_session.client();
    timed(|| floor_client.get("/floor"))?;
    let (mut cold_floor, mut warm_floor) = (Vec::new(), Vec::new());
    for _ in 0..RESTARTS {
        floor_session.start()?;
        cold_floor.push(timed(|| floor_client.get("/floor"))?);
        warm_floor.push(timed(|| floor_client.get("/floor"))?);
    }
    floor_session.stop();
    let ready_again = median(&mut restarts);
    let cold_second = median(&mut cold_second);
    let (cold_inbox, warm_inbox, cold_health) = (
        median(&mut cold_inbox),
        median(&mut warm_inbox),
        median(&mut cold_health),
    );
    let (cold_floor, warm_floor) = (median(&mut cold_floor), median(&mut warm_floor));

    let floor = stats(&results[0]);
    println!(
        "\n{REQUESTS} requests per round from {CLIENTS} clients, {ROUNDS} rounds; medians over the rounds\n"
    );
    println!(
        "| scenario | p50 | p99 | requests/s | p50 ratio | throughput ratio |\n|---|---:|---:|---:|---:|---:|"
    );
    for ((name, _, _), rounds) in scenarios.iter().zip(&results) {
        let s = stats(rounds);
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.0} | {:.2}x | {:.2}x |",
            s.p50,
            s.p99,
            s.throughput,
            s.p50 / floor.p50,
            s.throughput / floor.throughput
        );
    }
    println!("\n{in_a_row}");
    println!(
        "\n| first responses | time |\n|---|---:|\n\
         | start of wrangler dev to the first answer (polled every 200 ms) | {:.1} s |\n\
         | then the first deep health (a new object: migrations run) | {cold_probe:.1} ms |\n\
         | restart on the same state to the first answer (median of {RESTARTS}) | {:.1} s |\n\
         | first deep health after a restart (its object cold) | {cold_health:.1} ms ({:.2}x the floor) |\n\
         | then the first list of an inbox (its object cold) | {cold_inbox:.1} ms ({:.2}x the floor) |\n\
         | then the first list of a second inbox (its object cold, the code run before) | {cold_second:.1} ms ({:.2}x the floor) |\n\
         | the same list again (object warm) | {warm_inbox:.1} ms |\n\
         | the same list after 30 s idle | {after_idle:.1} ms |\n\
         | floor: first request to the smallest Rust DO after a restart | {cold_floor:.1} ms |\n\
         | floor: the same request again (warm) | {warm_floor:.1} ms |",
        ready,
        ready_again,
        cold_health / cold_floor,
        cold_inbox / cold_floor,
        cold_second / cold_floor
    );
    Ok(())
}

struct Stats {
    p50: f64,
    p99: f64,
    throughput: f64,
}

fn stats(rounds: &[Round]) -> Stats {
    let mut p50: Vec<f64> = rounds
        .iter()
        .map(|r| percentile(&r.latencies, 0.5))
        .collect();
    let mut p99: Vec<f64> = rounds
        .iter()
        .map(|r| percentile(&r.latencies, 0.99))
        .collect();
    let mut throughput: Vec<f64> = rounds
        .iter()
        .map(|r| r.latencies.len() as f64 / r.seconds)
        .collect();
    Stats {
        p50: median(&mut p50),
        p99: median(&mut p99),
        throughput: median(&mut throughput),
    }
}

/// Requests made one after another by one client, for each step of a signup.
const IN_A_ROW: usize = 24;

/// Signups, deep healths, key checks and key creations from one client in
/// a row (no queue in front of workerd's one thread): a signup beside the
/// same three steps on an inbox that exists (create a key: the inbox, a KV
/// write, the inbox again), so that their difference is what a new object
/// costs. Returns the table to print.
fn one_client_in_a_row(client: &Client) -> Result<String> {
    let (mut signups, mut deep, mut me, mut keys) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut key = String::new();
    for n in 0..IN_A_ROW {
        let began = Instant::now();
        let created = client.post_json("/api/signup", &format!(r#"{{"handle":"lat-row-{n}"}}"#))?;
        if created.status != 201 {
            return Err(format!(
                "signup in a row: {} {}",
                created.status, created.body
            ));
        }
        signups.push(began.elapsed().as_secs_f64() * 1000.0);
        // An inbox holds 20 keys: each gets 8 new ones.
        if n % 8 == 0 {
            key = created.string("apiKey")?;
        }
        deep.push(timed(|| client.get("/api/health/deep"))?);
        me.push(timed(|| client.get_with_key("/api/me", &key))?);
        let auth = format!("Bearer {key}");
        let body = format!(r#"{{"name":"row-{n}","scope":"read"}}"#);
        keys.push(timed_with(201, || {
            client.request(
                "POST",
                "/api/keys",
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ],
                Some(body.as_bytes()),
            )
        })?);
    }
    let floor = median(&mut deep);
    let row = |name: &str, values: &mut Vec<f64>| {
        let p50 = median(values);
        format!("| {name} | {p50:.1} ms | {:.2}x |\n", p50 / floor)
    };
    Ok(format!(
        "| one client, {IN_A_ROW} of each in a row | p50 | ratio |\n|---|---:|---:|\n\
         | floor: GET /api/health/deep | {floor:.1} ms | 1.00x |\n{}{}{}",
        row("GET /api/me (a key check)", &mut me),
        row(
            "create a key (the inbox, a KV write, the inbox again)",
            &mut keys
        ),
        row(
            "signup (a new object's first request, the KV writes, the confirm)",
            &mut signups
        ),
    ))
}

fn timed(request: impl Fn() -> Result<Response>) -> Result<f64> {
    timed_with(200, request)
}

fn timed_with(status: u16, request: impl Fn() -> Result<Response>) -> Result<f64> {
    let began = Instant::now();
    let answer = request()?;
    if answer.status != status {
        return Err(format!("{} {}", answer.status, answer.body));
    }
    Ok(began.elapsed().as_secs_f64() * 1000.0)
}
