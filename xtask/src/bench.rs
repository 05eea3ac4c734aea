//! `cargo xtask bench`: the native criterion benchmarks, then an end-to-end
//! load on `wrangler dev` — emails per second into one inbox and across 50,
//! each as a ratio to a floor measured in the same run (mail to an unknown
//! recipient, which the router refuses after one KV read without waking any
//! inbox). Medians of three rounds; the machine is noisy.

use crate::api::{deliver, signup_key};
use crate::http::Client;
use crate::tools::Tools;
use crate::wrangler::{DevSettings, Session, mail_domain};
use crate::{Result, cargo, root, run, step};
use std::time::Instant;

const ROUNDS: usize = 3;

/// The recipient of the n-th message of a round, on a mail domain.
type Recipient = fn(usize, &str) -> String;
const MAILS_PER_ROUND: usize = 600;
const CONCURRENCY: usize = 16;
const INBOXES: usize = 50;

/// What `cargo xtask bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parts {
    /// The native benchmarks, the load and the latency.
    All,
    /// The load and the latency (`--workerd`).
    Workerd,
    /// The load alone (`--load`), for comparing two builds back to back.
    Load,
}

pub(crate) fn run_all(tools: &Tools, parts: Parts) -> Result<()> {
    if parts == Parts::All {
        step("native benchmarks (criterion): cargo bench -p inbox-do");
        run(cargo().args(["bench", "-p", "inbox-do", "--bench", "inbox", "--locked"]))?;
        print_criterion_medians()?;
    }
    crate::build::build_all(tools)?;
    load(tools)?;
    if parts == Parts::Load {
        return Ok(());
    }
    crate::latency::run(tools, crate::latency::DEFAULT_STORED)
}

/// Criterion's median estimates from `target/criterion`, per group, each with
/// its ratio to the group's floor.
fn print_criterion_medians() -> Result<()> {
    let base = root().join("target").join("criterion");
    let mut groups: Vec<_> = std::fs::read_dir(&base)
        .map_err(|e| format!("{}: {e}", base.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "report"))
        .collect();
    groups.sort();
    println!(
        "
medians (criterion), ratio to the floor measured in the same run:"
    );
    for group in groups {
        let mut rows = Vec::new();
        for function in std::fs::read_dir(&group)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let estimates = function.path().join("new").join("estimates.json");
            let Ok(text) = std::fs::read_to_string(&estimates) else {
                continue;
            };
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            // The benchmark's own name (directory names have ':' replaced).
            let name = std::fs::read_to_string(function.path().join("new").join("benchmark.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|b| b["function_id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| function.file_name().to_string_lossy().into_owned());
            if let Some(nanos) = json["median"]["point_estimate"].as_f64() {
                rows.push((name, nanos));
            }
        }
        rows.sort_by(|a, b| {
            b.0.starts_with("floor")
                .cmp(&a.0.starts_with("floor"))
                .then(a.0.cmp(&b.0))
        });
        let floor = rows
            .iter()
            .find(|(n, _)| n.starts_with("floor"))
            .map(|r| r.1);
        println!(
            "  {}",
            group
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        for (name, nanos) in rows {
            let ratio = floor
                .map(|f| format!("{:.1}x", nanos / f))
                .unwrap_or_default();
            println!("    {name:<40} {:>12}  {ratio}", human(nanos));
        }
    }
    Ok(())
}

fn human(nanos: f64) -> String {
    if nanos >= 1e6 {
        format!("{:.2} ms", nanos / 1e6)
    } else if nanos >= 1e3 {
        format!("{:.1} µs", nanos / 1e3)
    } else {
        format!("{nanos:.0} ns")
    }
}

fn load(tools: &Tools) -> Result<()> {
    step("end-to-end load on wrangler dev");
    // A load comes from one address: no signup limit.
    let mut settings = DevSettings::default();
    settings.set_router_var(protocol::bindings::SIGNUPS_PER_HOUR_VAR, "0");
    let mut session = Session::new(tools, "bench", settings)?;
    session.start()?;
    let client = session.client();
    let domain = mail_domain()?;
    for handle in
        std::iter::once("load-one".to_owned()).chain((0..INBOXES).map(|i| format!("load-{i:02}")))
    {
        signup_key(&client, &handle)?;
    }
    let scenarios: [(&str, Recipient, u16); 3] = [
        (
            "floor: refused by the router (KV only)",
            |_, d| format!("nobody@{d}"),
            400,
        ),
        ("one inbox", |_, d| format!("load-one@{d}"), 200),
        (
            "50 inboxes",
            |n, d| format!("load-{:02}@{d}", n % INBOXES),
            200,
        ),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    for round in 0..ROUNDS {
        for (index, (name, recipient, expected)) in scenarios.iter().enumerate() {
            let started = Instant::now();
            let failures = blast(&client, &domain, *recipient, *expected, round, index)?;
            let seconds = started.elapsed().as_secs_f64();
            if failures > 0 {
                return Err(format!(
                    "{name}: {failures} deliveries did not answer {expected}"
                ));
            }
            rates[index].push(MAILS_PER_ROUND as f64 / seconds);
        }
    }
    let medians: Vec<f64> = rates.iter().map(|r| median(r)).collect();
    println!(
        "\nemails/second on wrangler dev ({MAILS_PER_ROUND} small messages per round, concurrency {CONCURRENCY}, median of {ROUNDS} rounds):"
    );
    for ((name, _, _), (median, all)) in scenarios.iter().zip(medians.iter().zip(&rates)) {
        let shown: Vec<String> = all.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "  {name:<40} {median:>7.0}/s  ({:.2}x the floor; rounds {})",
            median / medians[0],
            shown.join(", ")
        );
    }
    large_messages(&client, &domain)?;
    session.stop();
    Ok(())
}

/// Time to deliver one 20 MB message into an inbox, beside the floor of the
/// same message refused by the router (which still pays wrangler's own
/// parsing of it). Medians of three.
fn large_messages(client: &Client, domain: &str) -> Result<()> {
    let mut stored = Vec::new();
    let mut refused = Vec::new();
    for round in 0..ROUNDS {
        for (to, expected, times) in [
            (format!("nobody@{domain}"), 400, &mut refused),
            (format!("load-one@{domain}"), 200, &mut stored),
        ] {
            let raw = large_message(round, &to, 20 * 1024 * 1024);
            let started = Instant::now();
            let answer = deliver(client, "load@example.com", &to, &raw)?;
            times.push(started.elapsed().as_secs_f64());
            if answer.status != expected {
                return Err(format!("20 MB delivery to {to} answered {}", answer.status));
            }
        }
    }
    let (floor, ingest) = (median(&refused), median(&stored));
    println!(
        "
one 20 MB message on wrangler dev (median of {ROUNDS}):"
    );
    println!(
        "  floor: refused by the router               {:>7.0} ms",
        floor * 1000.0
    );
    println!(
        "  stored in an inbox                          {:>7.0} ms  ({:.2}x the floor)",
        ingest * 1000.0,
        ingest / floor
    );
    Ok(())
}

/// A distinct message of about `size` bytes with a base64 attachment.
fn large_message(round: usize, to: &str, size: usize) -> Vec<u8> {
    let mut raw = format!(
        "From: load@example.com\r\nTo: {to}\r\nMessage-ID: <large-{round}@example.com>\r\n\
Subject: large {round}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nround {round}\r\n--b\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while raw.len() + line.len() + 8 < size {
        raw.extend_from_slice(line);
    }
    raw.extend_from_slice(b"--b--\r\n");
    raw
}

/// Sends one round of mail; returns how many answers were not `expected`.
fn blast(
    client: &Client,
    domain: &str,
    recipient: Recipient,
    expected: u16,
    round: usize,
    scenario: usize,
) -> Result<usize> {
    let failures: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CONCURRENCY)
            .map(|worker| {
                scope.spawn(move || {
                    let mut failures = 0;
                    for n in (worker..MAILS_PER_ROUND).step_by(CONCURRENCY) {
                        let to = recipient(n, domain);
                        let raw = format!(
                            "From: load@example.com\r\nTo: {to}\r\nMessage-ID: <{round}.{scenario}.{n}@example.com>\r\nSubject: load {n}\r\n\r\nround {round} message {n}\r\n"
                        );
                        match deliver(client, "load@example.com", &to, raw.as_bytes()) {
                            Ok(r) if r.status == expected => {}
                            _ => failures += 1,
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or(MAILS_PER_ROUND))
            .sum()
    });
    Ok(failures)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}
