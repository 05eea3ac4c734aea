//! `cargo xtask scale [--inboxes N]`: one inbox is one Durable Object with its
//! own SQLite database, so N users are N databases. This signs up N inboxes
//! (10,000 unless told) on one `wrangler dev`, delivers one message to each and
//! reads it back, in stages (a hundredth, a tenth, all of them), and after each
//! stage samples what the dev server's processes hold (resident memory and open
//! files, read from `/proc` for the session's process group), waits idle and
//! samples again (are idle objects let go?), then reads a spread of the inboxes
//! made so far twice: first with their objects idle (cold), then again (warm).

use crate::api::{deliver, signup_key, small_message};
use crate::http::Client;
use crate::latency::percentile;
use crate::tools::Tools;
use crate::wrangler::{DevSettings, Session, mail_domain};
use crate::{Result, step};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Inboxes when not told otherwise.
pub(crate) const DEFAULT_INBOXES: usize = 10_000;
/// Concurrent clients.
const CLIENTS: usize = 8;
/// Inboxes read after each stage, spread over all made so far.
const PROBES: usize = 400;
/// How long the idle spell after each stage lasts (workerd lets an idle
/// object go well within it).
const IDLE: Duration = Duration::from_secs(60);

/// What the session's processes hold at one moment.
struct Held {
    /// Resident memory of every process in the group, in KiB.
    total_kib: u64,
    /// The largest process (workerd): its resident memory and open files.
    largest_kib: u64,
    largest_name: String,
    largest_files: usize,
}

/// Reads `/proc` for the processes of group `pgid`.
fn held(pgid: u32) -> Result<Held> {
    let mut total_kib = 0;
    let mut largest = (0u64, String::new(), 0usize);
    let entries = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // The process may have gone since the listing: skip it.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which may hold spaces, in parentheses):
        // state, ppid, pgrp.
        let group = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<u32>().ok());
        if group != Some(pgid) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        total_kib += rss;
        if rss > largest.0 {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            let files = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count())
                .unwrap_or(0);
            largest = (rss, name, files);
        }
    }
    if total_kib == 0 {
        return Err(format!("no process of group {pgid} was found in /proc"));
    }
    Ok(Held {
        total_kib,
        largest_kib: largest.0,
        largest_name: largest.1,
        largest_files: largest.2,
    })
}

/// Bytes under `dir` (the dev server's state: every object's SQLite file).
fn bytes_under(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// Runs `work(i)` for every `i` in `range` from [`CLIENTS`] threads; each
/// call's latency in ms, sorted.
fn timed_all(
    range: std::ops::Range<usize>,
    work: &(dyn Fn(usize) -> Result<()> + Sync),
) -> Result<Vec<f64>> {
    crate::latency::timed_all(CLIENTS, range, work)
}

fn handle_of(i: usize) -> String {
    format!("scale-{i:05}")
}

/// Reads inbox `i`'s listing: exactly the one message delivered to it.
fn read_back(client: &Client, key: &str, i: usize) -> Result<()> {
    let answer = client.get_with_key("/api/messages?limit=5", key)?;
    if answer.status != 200 {
        return Err(format!(
            "reading {}: {} {}",
            handle_of(i),
            answer.status,
            answer.body
        ));
    }
    let body = answer.parsed()?;
    let messages = body["messages"]
        .as_array()
        .ok_or_else(|| format!("reading {}: no messages list: {body}", handle_of(i)))?;
    let subject = format!("scale {i}");
    if messages.len() != 1 || messages[0]["subject"].as_str() != Some(subject.as_str()) {
        return Err(format!(
            "reading {}: expected one message {subject:?}, got {body}",
            handle_of(i)
        ));
    }
    Ok(())
}

/// One line of the curve.
struct Stage {
    inboxes: usize,
    signup: Vec<f64>,
    deliver: Vec<f64>,
    read: Vec<f64>,
    /// The spread read with its objects idle, then again at once.
    cold: Vec<f64>,
    warm: Vec<f64>,
    /// Held at the end of the stage's work, and after the idle spell.
    held: Held,
    idle: Held,
    disk: u64,
    seconds: f64,
}

pub(crate) fn run(tools: &Tools, inboxes: usize) -> Result<()> {
    if inboxes < 100 {
        return Err("scale needs at least 100 inboxes".into());
    }
    step(&format!(
        "scale: {inboxes} inboxes on one wrangler dev, memory and latency as the count grows"
    ));
    let mut session = Session::new(tools, "scale", DevSettings::unlimited())?;
    session.start()?;
    let client = session.client();
    let domain = mail_domain()?;
    let pgid = session.pgid()?;
    let state = session.state().to_path_buf();
    let keys: Vec<OnceLock<String>> = (0..inboxes).map(|_| OnceLock::new()).collect();

    let before = held(pgid)?;
    let mut stages = Vec::new();
    let mut made = 0;
    for target in [inboxes / 100, inboxes / 10, inboxes] {
        let started = Instant::now();
        let range = made..target;
        let signups = timed_all(range.clone(), &|i| {
            keys[i]
                .set(signup_key(&client, &handle_of(i))?)
                .map_err(|_| format!("{} signed up twice", handle_of(i)))
        })?;
        let deliveries = timed_all(range.clone(), &|i| {
            let to = format!("{}@{domain}", handle_of(i));
            let answer = deliver(
                &client,
                "s@example.com",
                &to,
                &small_message(&to, "scale", i),
            )?;
            if answer.status != 200 {
                return Err(format!(
                    "delivery to {to}: {} {}",
                    answer.status, answer.body
                ));
            }
            Ok(())
        })?;
        let reads = timed_all(range, &|i| read_back(&client, key_of(&keys, i)?, i))?;
        made = target;
        let busy = held(pgid)?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "  {made} inboxes: {seconds:.0} s for this stage, workerd {} MiB; idle for {} s",
            busy.largest_kib / 1024,
            IDLE.as_secs()
        );
        std::thread::sleep(IDLE);
        let idle = held(pgid)?;
        let cold = probe(&client, &keys, made)?;
        let warm = probe(&client, &keys, made)?;
        stages.push(Stage {
            inboxes: made,
            signup: signups,
            deliver: deliveries,
            read: reads,
            cold,
            warm,
            held: busy,
            idle,
            disk: bytes_under(&state),
            seconds,
        });
    }
    session.stop();

    println!(
        "\n{inboxes} inboxes, one message each, {CLIENTS} clients; latencies p50 / p99 in ms; \
         memory is resident (VmRSS) of workerd and of all the dev server's processes\n"
    );
    println!(
        "| inboxes | signup | deliver | read back | workerd RSS (all processes) | open files | \
         after {} s idle: RSS, open files | read {PROBES} spread over all: idle objects | \
         the same again | state on disk | the stage's work took |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        IDLE.as_secs()
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    let pair = |v: &[f64]| format!("{:.1} / {:.1}", percentile(v, 0.5), percentile(v, 0.99));
    println!(
        "| 0 (started) | | | | {:.0} MiB ({:.0}) | {} | | | | | |",
        mib(before.largest_kib),
        mib(before.total_kib),
        before.largest_files,
    );
    for s in &stages {
        println!(
            "| {} | {} | {} | {} | {:.0} MiB ({:.0}) | {} | {:.0} MiB, {} | {} | {} | {:.0} MiB | {:.0} s |",
            s.inboxes,
            pair(&s.signup),
            pair(&s.deliver),
            pair(&s.read),
            mib(s.held.largest_kib),
            mib(s.held.total_kib),
            s.held.largest_files,
            mib(s.idle.largest_kib),
            s.idle.largest_files,
            pair(&s.cold),
            pair(&s.warm),
            s.disk as f64 / 1_048_576.0,
            s.seconds
        );
    }
    let (first, last) = (
        stages.first().ok_or("no stage")?,
        stages.last().ok_or("no stage")?,
    );
    let grown = last.held.largest_kib.saturating_sub(first.held.largest_kib);
    let ratio =
        |of: fn(&Stage) -> &Vec<f64>| percentile(of(last), 0.5) / percentile(of(first), 0.5);
    println!(
        "\nlargest process: {}; it grew {:.1} KiB per inbox from {} to {} inboxes; \
         p50 at {} over p50 at {}: signup {:.2}x, deliver {:.2}x, idle-object read {:.2}x, \
         warm read {:.2}x",
        last.held.largest_name,
        grown as f64 / (last.inboxes - first.inboxes) as f64,
        first.inboxes,
        last.inboxes,
        last.inboxes,
        first.inboxes,
        ratio(|s| &s.signup),
        ratio(|s| &s.deliver),
        ratio(|s| &s.cold),
        ratio(|s| &s.warm),
    );
    Ok(())
}

/// Reads [`PROBES`] inboxes spread evenly over the first `made` (with
/// repeats when there are fewer), each must hold its one message.
fn probe(client: &Client, keys: &[OnceLock<String>], made: usize) -> Result<Vec<f64>> {
    timed_all(0..PROBES, &|n| {
        let i = (n * made / PROBES + n % 7) % made;
        read_back(client, key_of(keys, i)?, i)
    })
}

/// Inbox `i`'s key, which its signup set.
fn key_of(keys: &[OnceLock<String>], i: usize) -> Result<&str> {
    keys[i]
        .get()
        .map(String::as_str)
        .ok_or_else(|| format!("{} has no key", handle_of(i)))
}
