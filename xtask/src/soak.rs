//! `cargo xtask soak`: the promise that mail is never lost, proven under load
//! and a crash on real workerd. Against a `wrangler dev` it starts itself:
//!
//! 1. concurrent signups: racers for the same handles (exactly one winner
//!    each) and many distinct handles; every winner's key works, and KV holds
//!    exactly the winners' entries (no orphan);
//! 2. concurrent ingest across many inboxes through the local email endpoint,
//!    with reads and marks running at the same time; afterwards every
//!    acknowledged message is present exactly once in its inbox, raw bytes
//!    intact;
//! 3. a crash: the workerd process group is killed with SIGKILL in the middle
//!    of another such run and restarted on the same state; every message
//!    acknowledged before the kill is present exactly once, those in flight
//!    are counted (stored or not: the sender's to retry, as SMTP does), the
//!    retries store each exactly once, and the service answers normally.
//!
//! `cargo xtask test` runs the short profile; `cargo xtask soak` the full one.

use crate::api::{deliver, ids, list_all};
use crate::http::Client;
use crate::tools::Tools;
use crate::wrangler::{DevSettings, Session, mail_domain};
use crate::{Result, step};
use protocol::ApiKey;
use protocol::key::sha256_hex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How hard to push.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile {
    name: &'static str,
    /// Distinct inboxes, signed up concurrently.
    inboxes: usize,
    /// Handles raced for, and racers per handle.
    races: usize,
    racers: usize,
    /// Messages in the steady run, spread over the inboxes.
    messages: usize,
    /// Messages in the run that is cut by SIGKILL.
    crash_messages: usize,
    /// Concurrent senders.
    concurrency: usize,
}

/// `cargo xtask soak`.
pub(crate) const FULL: Profile = Profile {
    name: "full",
    inboxes: 100,
    races: 20,
    racers: 8,
    messages: 5_000,
    crash_messages: 3_000,
    concurrency: 16,
};

/// The profile `cargo xtask test` runs.
pub(crate) const SHORT: Profile = Profile {
    name: "short",
    inboxes: 20,
    races: 5,
    racers: 8,
    messages: 400,
    crash_messages: 600,
    concurrency: 16,
};

/// One message the soak sent: to which inbox, and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Sent {
    inbox: usize,
    sha256: String,
}

struct Soak {
    tools: Tools,
    session: Session,
    domain: String,
    /// (handle, key) of the inboxes mail goes to.
    inboxes: Vec<(String, String)>,
}

impl Soak {
    fn client(&self) -> Client {
        self.session.client()
    }

    fn raw(&self, inbox: usize, batch: &str, n: usize) -> Vec<u8> {
        let handle = &self.inboxes[inbox].0;
        format!(
            "From: Soak <soak-{n}@example.com>\r\nTo: {handle}@{domain}\r\nSubject: {batch} {n}\r\n\
             Message-ID: <{batch}-{n}@soak.example.com>\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\n\
             {batch} message {n} for {handle}\r\n",
            domain = self.domain
        )
        .into_bytes()
    }
}

pub(crate) fn run(tools: &Tools, profile: Profile) -> Result<()> {
    step(&format!(
        "soak ({} profile): {} inboxes, {} + {} messages at concurrency {}, a SIGKILL",
        profile.name,
        profile.inboxes,
        profile.messages,
        profile.crash_messages,
        profile.concurrency
    ));
    let started = Instant::now();
    let mut soak = Soak {
        tools: tools.clone(),
        // All the load comes from this one machine.
        session: Session::new(tools, "soak", DevSettings::unlimited())?,
        domain: mail_domain()?,
        inboxes: Vec::new(),
    };
    soak.session.start()?;
    let outcome = phases(&mut soak, profile);
    soak.session.stop();
    match outcome {
        Ok(()) => {
            println!("soak: passed in {:.0}s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Err(error) => Err(format!(
            "soak failed: {error}\n(wrangler's output is in {})",
            soak.session.work().display()
        )),
    }
}

fn phases(soak: &mut Soak, profile: Profile) -> Result<()> {
    let mut winners = signups(soak, profile)?;
    let sent = ingest(soak, profile)?;
    verify(soak, &sent, &[])?;
    println!("  every acknowledged message is present exactly once, raw bytes intact");
    winners.push(crash(soak, profile, sent)?);
    kv_has_no_orphans(soak, &winners)
}

/// Phase 1: racers and distinct signups. Returns every winner's (handle, key).
fn signups(soak: &mut Soak, profile: Profile) -> Result<Vec<(String, String)>> {
    let client = soak.client();
    let started = Instant::now();
    // (status, the key when it is a 201).
    let signup = |handle: &str| -> Result<(u16, String)> {
        let answer = crate::api::signup(&client, handle)?;
        let key = match answer.status {
            201 => answer.string("apiKey")?,
            _ => String::new(),
        };
        Ok((answer.status, key))
    };
    let mut winners = Vec::new();
    // Racers: all at once for each handle.
    for race in 0..profile.races {
        let handle = format!("soak-race-{race}");
        let answers: Vec<Result<(u16, String)>> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..profile.racers)
                .map(|_| scope.spawn(|| signup(&handle)))
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().unwrap_or_else(|_| Err("a racer panicked".into())))
                .collect()
        });
        let mut won = Vec::new();
        for answer in answers {
            match answer? {
                (201, key) => won.push(key),
                (409, _) => {}
                (status, _) => return Err(format!("a racer for {handle} got {status}")),
            }
        }
        if won.len() != 1 {
            return Err(format!("{} racers won {handle}", won.len()));
        }
        winners.push((handle, won.remove(0)));
    }
    // Distinct handles, concurrently.
    let handles: Vec<String> = (0..profile.inboxes)
        .map(|i| format!("soak-{i:03}"))
        .collect();
    let created: Vec<Result<(u16, String)>> = std::thread::scope(|scope| {
        let chunks: Vec<_> = handles
            .chunks(handles.len().div_ceil(profile.concurrency).max(1))
            .map(|chunk| scope.spawn(|| chunk.iter().map(|h| signup(h)).collect::<Vec<_>>()))
            .collect();
        chunks
            .into_iter()
            .flat_map(|c| {
                c.join()
                    .unwrap_or_else(|_| vec![Err("a thread panicked".into())])
            })
            .collect()
    });
    for (handle, answer) in handles.iter().zip(created) {
        match answer? {
            (201, key) => {
                winners.push((handle.clone(), key.clone()));
                soak.inboxes.push((handle.clone(), key));
            }
            (status, _) => return Err(format!("signup of {handle} got {status}")),
        }
    }
    // Every winner's key works, for its own inbox.
    for (handle, key) in &winners {
        let me = client.get_with_key("/api/me", key)?;
        if me.status != 200 || me.json()["handle"] != handle.as_str() {
            return Err(format!("{handle}'s key: {} {}", me.status, me.body));
        }
    }
    println!(
        "  signups: {} handles raced by {} each, one winner each; {} distinct; all {} keys work ({:.1}s)",
        profile.races,
        profile.racers,
        profile.inboxes,
        winners.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(winners)
}

/// What one batch of deliveries came to.
#[derive(Debug, Default)]
struct Batch {
    /// Acknowledged (200): (n, message).
    acked: Vec<(usize, Sent)>,
    /// No answer, a 5xx, or anything after the server was killed: fate unknown.
    unanswered: Vec<(usize, Sent)>,
    /// Each acknowledged delivery's latency, in ms.
    latencies: Vec<f64>,
    /// Refused (4xx) before any kill: always a failure.
    refused: Vec<String>,
}

/// Sends `count` messages (`batch`-n to inbox n % inboxes) from
/// `concurrency` threads until done or `stop` is set.
fn send_batch(
    soak: &Soak,
    client: &Client,
    batch: &str,
    count: usize,
    concurrency: usize,
    stop: &AtomicBool,
    acked_count: &AtomicUsize,
) -> Batch {
    let to = |inbox: usize| format!("{}@{}", soak.inboxes[inbox].0, soak.domain);
    let results = Mutex::new(Batch::default());
    std::thread::scope(|scope| {
        for worker in 0..concurrency {
            let results = &results;
            scope.spawn(move || {
                for n in (worker..count).step_by(concurrency) {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let inbox = n % soak.inboxes.len();
                    let raw = soak.raw(inbox, batch, n);
                    let sent = Sent {
                        inbox,
                        sha256: sha256_hex(&raw),
                    };
                    let began = Instant::now();
                    let answer = deliver(client, "soak@example.com", &to(inbox), &raw);
                    let took = began.elapsed().as_secs_f64() * 1000.0;
                    let mut results = results.lock().unwrap_or_else(|p| p.into_inner());
                    match answer {
                        Ok(r) if r.status == 200 => {
                            results.acked.push((n, sent));
                            results.latencies.push(took);
                            acked_count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) if r.status >= 500 || stop.load(Ordering::SeqCst) => {
                            results.unanswered.push((n, sent))
                        }
                        Ok(r) => results
                            .refused
                            .push(format!("{batch}-{n}: {} {}", r.status, r.body)),
                        Err(_) => results.unanswered.push((n, sent)),
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Phase 2: steady ingest with readers and markers alongside.
fn ingest(soak: &mut Soak, profile: Profile) -> Result<Vec<Sent>> {
    let client = soak.client();
    let done = AtomicBool::new(false);
    let acked = AtomicUsize::new(0);
    let reads = AtomicUsize::new(0);
    let read_failures = Mutex::new(Vec::new());
    let started = Instant::now();
    let Batch {
        acked: sent,
        unanswered,
        latencies,
        refused,
    } = std::thread::scope(|scope| {
        for reader in 0..2 {
            let (client, done, reads, read_failures, soak) =
                (&client, &done, &reads, &read_failures, &*soak);
            scope.spawn(move || {
                let mut turn = reader;
                while !done.load(Ordering::SeqCst) {
                    turn += 7;
                    let (_, key) = &soak.inboxes[turn % soak.inboxes.len()];
                    let outcome = read_and_mark(client, key, turn);
                    reads.fetch_add(1, Ordering::SeqCst);
                    if let Err(error) = outcome {
                        read_failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(error);
                    }
                }
            });
        }
        let outcome = send_batch(
            soak,
            &client,
            "steady",
            profile.messages,
            profile.concurrency,
            &AtomicBool::new(false),
            &acked,
        );
        done.store(true, Ordering::SeqCst);
        outcome
    });
    let seconds = started.elapsed().as_secs_f64();
    let failures = read_failures
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    if !failures.is_empty() {
        return Err(format!(
            "{} of the concurrent reads failed, e.g. {}",
            failures.len(),
            failures[0]
        ));
    }
    if !unanswered.is_empty() || !refused.is_empty() {
        return Err(format!(
            "{} deliveries got no answer and {} were refused, e.g. {:?}",
            unanswered.len(),
            refused.len(),
            refused.first()
        ));
    }
    let (p50, p99) = percentiles(&latencies);
    println!(
        "  ingest: {} messages to {} inboxes in {seconds:.1}s ({:.0}/s), latency p50 {p50:.1} ms, p99 {p99:.1} ms; {} concurrent reads and marks",
        sent.len(),
        soak.inboxes.len(),
        sent.len() as f64 / seconds,
        reads.load(Ordering::SeqCst)
    );
    Ok(sent.into_iter().map(|(_, s)| s).collect())
}

/// Lists an inbox, reads one message and flips its read flag.
fn read_and_mark(client: &Client, key: &str, turn: usize) -> Result<()> {
    let list = client.get_with_key("/api/messages?limit=20", key)?;
    if list.status != 200 {
        return Err(format!("list: {} {}", list.status, list.body));
    }
    let listed = ids(list.parsed()?["messages"]
        .as_array()
        .ok_or_else(|| format!("list: no messages in {}", list.body))?)?;
    let Some(&id) = listed.get(turn % listed.len().max(1)) else {
        return Ok(());
    };
    let read = client.get_with_key(&format!("/api/messages/{id}"), key)?;
    if read.status != 200 {
        return Err(format!("read {id}: {} {}", read.status, read.body));
    }
    crate::api::mark_read(client, key, id, turn.is_multiple_of(2))?;
    Ok(())
}

/// Every message in `acked` is present exactly once in its inbox with its
/// bytes; those in `maybe` (sent, fate unknown) at most once; nothing else is
/// there. Returns how many of `maybe` are present.
fn verify(soak: &Soak, acked: &[Sent], maybe: &[Sent]) -> Result<usize> {
    let client = soak.client();
    let stored: Vec<Result<Vec<Sent>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..soak.inboxes.len())
            .collect::<Vec<_>>()
            .chunks(soak.inboxes.len().div_ceil(8).max(1))
            .map(|chunk| {
                let (client, soak) = (&client, soak);
                let chunk = chunk.to_vec();
                scope.spawn(move || -> Result<Vec<Sent>> {
                    let mut found = Vec::new();
                    for inbox in chunk {
                        found.extend(stored_in(client, soak, inbox)?);
                    }
                    Ok(found)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect()
    });
    let mut present: BTreeMap<Sent, usize> = BTreeMap::new();
    for inbox in stored {
        for sent in inbox? {
            *present.entry(sent).or_default() += 1;
        }
    }
    for sent in acked {
        match present.remove(sent) {
            Some(1) => {}
            Some(n) => {
                return Err(format!(
                    "an acknowledged message is stored {n} times: {sent:?}"
                ));
            }
            None => return Err(format!("an acknowledged message is missing: {sent:?}")),
        }
    }
    let mut found_maybe = 0;
    for sent in maybe {
        match present.remove(sent) {
            Some(1) => found_maybe += 1,
            Some(n) => return Err(format!("a message is stored {n} times: {sent:?}")),
            None => {}
        }
    }
    if let Some((extra, _)) = present.into_iter().next() {
        return Err(format!("a message nobody sent is stored: {extra:?}"));
    }
    Ok(found_maybe)
}

/// Every message stored in `inbox`, read page by page, each raw download
/// hashed. Ids must not repeat.
fn stored_in(client: &Client, soak: &Soak, inbox: usize) -> Result<Vec<Sent>> {
    let key = &soak.inboxes[inbox].1;
    let ids = list_all(client, key, 100)
        .and_then(|listed| ids(&listed))
        .map_err(|e| format!("listing inbox {inbox}: {e}"))?;
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    if unique.len() != ids.len() {
        return Err(format!("inbox {inbox} lists an id twice"));
    }
    let mut found = Vec::new();
    for id in ids {
        let raw = client.get_with_key(&format!("/api/messages/{id}/raw"), key)?;
        if raw.status != 200 {
            return Err(format!("raw {id} of inbox {inbox}: {}", raw.status));
        }
        found.push(Sent {
            inbox,
            sha256: sha256_hex(&raw.bytes),
        });
    }
    Ok(found)
}

/// Phase 3: SIGKILL in the middle of a run, restart, verify, retry. Returns
/// the inbox signed up afterwards.
fn crash(soak: &mut Soak, profile: Profile, steady: Vec<Sent>) -> Result<(String, String)> {
    let client = soak.client();
    let stop = AtomicBool::new(false);
    let acked = AtomicUsize::new(0);
    let pgid = soak.session.pgid()?;
    let kill_after = profile.crash_messages / 3;
    let Batch {
        acked: sent,
        unanswered,
        refused,
        ..
    } = std::thread::scope(|scope| {
        let (stop, acked) = (&stop, &acked);
        scope.spawn(move || {
            let began = Instant::now();
            while acked.load(Ordering::SeqCst) < kill_after
                && began.elapsed() < Duration::from_secs(120)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            crate::wrangler::signal_group(pgid, "KILL");
            stop.store(true, Ordering::SeqCst);
        });
        send_batch(
            soak,
            &client,
            "crash",
            profile.crash_messages,
            profile.concurrency,
            stop,
            acked,
        )
    });
    if !refused.is_empty() {
        return Err(format!(
            "deliveries were refused: {:?}",
            &refused[..refused.len().min(3)]
        ));
    }
    // Reaps the killed process (its group is already gone).
    soak.session.stop();
    let acked_before_kill: Vec<Sent> = sent.iter().map(|(_, s)| s.clone()).collect();
    let in_flight: Vec<Sent> = unanswered.iter().map(|(_, s)| s.clone()).collect();
    let seconds = soak.session.start()?;
    let mut all_acked = steady;
    all_acked.extend(acked_before_kill.iter().cloned());
    let stored_in_flight = verify(soak, &all_acked, &in_flight)?;
    println!(
        "  crash: SIGKILL after {} acknowledged deliveries; restarted in {seconds:.1}s; all {} acknowledged present once; \
         {} unanswered at the kill: {} stored, {} not (the sender's to retry)",
        acked_before_kill.len(),
        all_acked.len(),
        in_flight.len(),
        stored_in_flight,
        in_flight.len() - stored_in_flight
    );
    // The senders retry what got no answer: each ends up stored once.
    let client = soak.client();
    for (n, sent) in &unanswered {
        let raw = soak.raw(sent.inbox, "crash", *n);
        let to = format!("{}@{}", soak.inboxes[sent.inbox].0, soak.domain);
        let answer = deliver(&client, "soak@example.com", &to, &raw)?;
        if answer.status != 200 {
            return Err(format!(
                "a retry after the crash got {} {}",
                answer.status, answer.body
            ));
        }
    }
    all_acked.extend(in_flight);
    verify(soak, &all_acked, &[])?;
    // And the service answers normally.
    let health = client.get("/api/health")?;
    let key = crate::api::signup_key(&client, "soak-after-crash")
        .map_err(|e| format!("after the crash: {e}"))?;
    let me = client.get_with_key("/api/me", &key)?;
    if health.status != 200 || me.status != 200 {
        return Err(format!(
            "after the crash: health {}, me {}",
            health.status, me.status
        ));
    }
    println!(
        "  after the retries every message is present exactly once; the service answers normally"
    );
    Ok(("soak-after-crash".to_owned(), key))
}

/// KV holds exactly the winners' `key:` and `handle:` entries (read from the
/// local state after stopping, with `wrangler kv key list --local`).
fn kv_has_no_orphans(soak: &mut Soak, winners: &[(String, String)]) -> Result<()> {
    soak.session.stop();
    let listed = kv_keys(&soak.tools, soak.session.state())?;
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for (handle, key) in winners {
        let hash = ApiKey::from_authorization(&format!("Bearer {key}"))
            .map(|k| k.hash().to_hex())
            .ok_or_else(|| format!("{handle}'s key is malformed"))?;
        expected.insert(format!("key:{hash}"));
        expected.insert(format!("handle:{handle}"));
    }
    if listed != expected {
        let missing: Vec<&String> = expected.difference(&listed).collect();
        let orphans: Vec<&String> = listed.difference(&expected).collect();
        return Err(format!("KV: missing {missing:?}, orphaned {orphans:?}"));
    }
    println!(
        "  KV: exactly the {} winners' key and handle entries ({} in all), no orphan",
        winners.len(),
        listed.len()
    );
    Ok(())
}

fn kv_keys(tools: &Tools, state: &Path) -> Result<BTreeSet<String>> {
    let output = tools
        .wrangler()
        .args([
            "kv",
            "key",
            "list",
            "--binding",
            protocol::bindings::DIRECTORY_KV,
            "--local",
        ])
        .arg("--persist-to")
        .arg(state)
        .args(["-c", "wrangler.toml"])
        .output()
        .map_err(|e| format!("wrangler kv key list: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text
        .find('[')
        .ok_or_else(|| format!("wrangler kv key list printed: {text}"))?;
    let keys: serde_json::Value = serde_json::from_str(&text[start..])
        .map_err(|e| format!("wrangler kv key list printed no JSON ({e}): {text}"))?;
    Ok(keys
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["name"].as_str().map(str::to_owned))
        .collect())
}

/// The median and 99th percentile.
fn percentiles(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (at(0.5), at(0.99))
}
