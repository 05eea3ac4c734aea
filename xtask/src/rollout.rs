//! `cargo xtask rollout`: a schema migration rolled out on real workerd.
//!
//! The previous version of the project (the last commit that ships fewer
//! migrations than this one, taken from git history, with the code that went
//! with them) is built and served; inboxes
//! are created and filled with it. Then this version is started on the same
//! state. Each inbox must migrate on its first request, with its data intact,
//! while concurrent requests to the waking inbox all succeed: none may see a
//! half-migrated schema (it would show as a 5xx, or as missing data).

use crate::api::{deliver, deliver_ok, list_all, mark_read, search_all, signup_key};
use crate::http::Client;
use crate::tools::Tools;
use crate::wrangler::{DevSettings, Session, mail_domain};
use crate::{Result, build, root, step};
use protocol::key::sha256_hex;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const INBOXES: usize = 6;
const MESSAGES: usize = 12;
const WAKERS: usize = 8;

/// How many migrations a `migrations.lock` text pins.
fn migrations_in(lock: &str) -> usize {
    lock.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

/// How many migrations this version ships.
fn current_migrations() -> Result<usize> {
    std::fs::read_to_string(root().join("crates/schema/migrations.lock"))
        .map(|lock| migrations_in(&lock))
        .map_err(|e| format!("reading migrations.lock: {e}"))
}

pub(crate) fn git(args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .current_dir(root())
        .args(args)
        .output()
        .map_err(|e| format!("git {args:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// How many migrations `commit` ships.
fn shipped_by(commit: &str) -> Result<usize> {
    Ok(migrations_in(&git(&[
        "show",
        &format!("{commit}:crates/schema/migrations.lock"),
    ])?))
}

/// The last commit that ships fewer migrations than this version (the parent
/// of the newest commit that added one; a change may add several, and a
/// migration not yet shipped may be edited in later commits), checked out (as
/// files) under `target/rollout-previous` (emptied first).
fn previous_version() -> Result<(String, PathBuf)> {
    let current = current_migrations()?;
    let touching = git(&["log", "--format=%H", "--", "crates/schema/migrations.lock"])?;
    let mut previous = None;
    for commit in touching.lines() {
        let parent = git(&["rev-parse", &format!("{commit}^")])?;
        if shipped_by(&parent)? < current {
            previous = Some(parent);
            break;
        }
    }
    let previous =
        previous.ok_or("no commit in git history ships fewer migrations than this one")?;
    let shipped = shipped_by(&previous)?;
    if shipped == 0 || shipped >= current {
        return Err(format!(
            "{previous} ships {shipped} migrations; this version has {current}"
        ));
    }
    let dir = root().join("target").join("rollout-previous");
    extract(&previous, &dir)?;
    Ok((previous, dir))
}

/// The files of `commit`, extracted into `dir` (emptied first).
pub(crate) fn extract(commit: &str, dir: &std::path::Path) -> Result<()> {
    let previous = commit;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut archive = Command::new("git")
        .current_dir(root())
        .args(["archive", "--format=tar", previous])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("git archive: {e}"))?;
    let stdout = archive.stdout.take().ok_or("git archive gave no output")?;
    let untar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(stdout)
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    let archived = archive.wait().map_err(|e| e.to_string())?;
    if !untar.success() || !archived.success() {
        return Err(format!("extracting {previous} failed"));
    }
    Ok(())
}

/// Whether the previous version can be had: it comes from git history, which
/// a shallow clone lacks (then its history is fetched, if the remote allows).
pub(crate) fn history_available() -> bool {
    match git(&["rev-parse", "--is-shallow-repository"]) {
        Ok(shallow) if shallow == "true" => git(&["fetch", "--quiet", "--unshallow"]).is_ok(),
        Ok(_) => true,
        Err(_) => false,
    }
}

fn require_history() -> Result<()> {
    if history_available() {
        Ok(())
    } else {
        Err(
            "the rollout check needs git history (the previous version is built \
             from it), and this is not a full git clone"
                .to_owned(),
        )
    }
}

/// Its own target directory (kept between runs: only the first is slow; it
/// must not be this version's, see [`build::build_in`]).
pub(crate) fn previous_target() -> PathBuf {
    root().join("target").join("rollout-target")
}

/// The previous version, checked out (as files) and built.
#[derive(Debug)]
pub(crate) struct Previous {
    commit: String,
    project: PathBuf,
}

/// The previous version, extracted, and its build under way in the
/// background.
#[derive(Debug)]
pub(crate) struct PreviousBuild(build::BackgroundBuild);

impl PreviousBuild {
    /// Extracts the previous version and starts building it.
    pub(crate) fn start(tools: &Tools) -> Result<PreviousBuild> {
        require_history()?;
        let (commit, project) = previous_version()?;
        Ok(PreviousBuild(build::BackgroundBuild::start(
            tools,
            "the rollout's previous version",
            commit,
            project,
            &build::WORKERS.map(|(package, _)| package),
            previous_target(),
            root().join("target").join("rollout-previous-build.log"),
        )))
    }

    /// Waits for the build; returns the built version and how long its
    /// build took, in seconds.
    pub(crate) fn finish(self) -> Result<(Previous, f64)> {
        let (commit, project, seconds) = self.0.finish()?;
        Ok((Previous { commit, project }, seconds))
    }
}

/// Waits until every message the previous version stored has a thread,
/// then checks they are one thread of all of them.
fn threaded_after_the_rollout(client: &Client, key: &str, handle: &str) -> Result<()> {
    let started = std::time::Instant::now();
    let old = loop {
        let messages = list_all(client, key, 100)?;
        let old: Vec<Json> = messages
            .into_iter()
            .filter(|m| m["id"].as_u64().is_some_and(|id| id <= MESSAGES as u64))
            .collect();
        if old.iter().all(|m| m["threadId"].is_u64()) {
            break old;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            return Err(format!(
                "{handle}: mail stored before threads was not threaded within 20 s"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let thread = &old[0]["threadId"];
    if old.iter().any(|m| &m["threadId"] != thread) {
        let ids: Vec<&Json> = old.iter().map(|m| &m["threadId"]).collect();
        return Err(format!("{handle}: the old conversation is split: {ids:?}"));
    }
    let answer = client.get_with_key(&format!("/api/threads/{thread}"), key)?;
    let body = answer.json();
    if answer.status != 200 || body["messageCount"] != MESSAGES {
        return Err(format!(
            "{handle}: GET /api/threads/{thread}: {} {}",
            answer.status, answer.body
        ));
    }
    Ok(())
}

/// A word every message the previous version stored holds (in its body),
/// and no other message does.
const OLD_WORD: &str = "previous";

/// Waits (up to 30 s) until a search for [`OLD_WORD`] says `complete`
/// (mail stored before search existed is indexed by the alarm), then checks
/// it finds exactly the messages the previous version stored; and that
/// their detail has the `codes` and `links` lists.
fn searchable_after_the_rollout(client: &Client, key: &str, handle: &str) -> Result<()> {
    let old: Vec<u64> = (1..=MESSAGES as u64).collect();
    let started = std::time::Instant::now();
    loop {
        let (mut found, complete) = search_all(client, key, OLD_WORD, 100)
            .map_err(|e| format!("{handle} after the rollout: {e}"))?;
        found.sort_unstable();
        // Whatever the backfill has reached, it finds old mail only, once.
        if found.windows(2).any(|w| w[0] == w[1]) || found.iter().any(|id| !old.contains(id)) {
            return Err(format!(
                "{handle}: a search for {OLD_WORD:?} found {found:?}; only messages 1 to {MESSAGES} hold it"
            ));
        }
        if complete {
            if found != old {
                return Err(format!(
                    "{handle}: a complete search for {OLD_WORD:?} found {found:?}, not the {MESSAGES} messages stored before the rollout"
                ));
            }
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            return Err(format!(
                "{handle}: search was not complete within 30 s of the rollout (it found {found:?} so far)"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    for id in &old {
        let answer = client.get_with_key(&format!("/api/messages/{id}"), key)?;
        let body = answer.parsed()?;
        if answer.status != 200 || !body["codes"].is_array() || !body["links"].is_array() {
            return Err(format!(
                "{handle}: message {id} from before the rollout has no codes and links lists: {} {}",
                answer.status, answer.body
            ));
        }
    }
    Ok(())
}

/// Runs the rollout check, with the previous version built earlier
/// ([`PreviousBuild`]), or built here when there is none.
pub(crate) fn run(tools: &Tools, previous: Option<Previous>) -> Result<()> {
    step("migration rollout on wrangler dev: the previous version's inboxes wake under this one");
    require_history()?;
    let (previous, project) = match previous {
        Some(built) => (built.commit, built.project),
        None => {
            let (previous, project) = previous_version()?;
            build::build_in(tools, &project, &previous_target())?;
            (previous, project)
        }
    };
    let version = current_migrations()?;
    let shipped = shipped_by(&previous)?;
    println!(
        "previous version: {} ({shipped} migrations; this one has {version})",
        &previous[..12],
    );
    // Make sure it is the previous version that was built: its inbox script
    // must not know the newest migration.
    let lock = std::fs::read_to_string(root().join("crates/schema/migrations.lock"))
        .map_err(|e| format!("reading migrations.lock: {e}"))?;
    let newest = lock
        .lines()
        .last()
        .and_then(|l| l.splitn(3, ' ').nth(2))
        .ok_or_else(|| format!("no newest migration in migrations.lock: {lock:?}"))?
        .to_owned();
    let wasm = std::fs::read(project.join("crates/inbox-do/build/index_bg.wasm"))
        .map_err(|e| format!("reading the previous inbox script: {e}"))?;
    if newest.is_empty() || wasm.windows(newest.len()).any(|w| w == newest.as_bytes()) {
        return Err(format!(
            "the previous build knows the newest migration ({newest:?}): it is not the previous version"
        ));
    }
    let domain = mail_domain()?;

    // The previous version creates and fills the inboxes (on the session's
    // first start, wrangler-1.log; this version is its second).
    let settings = DevSettings::unlimited();
    let mut session = Session::new(
        tools,
        "rollout",
        DevSettings {
            project: Some(project.clone()),
            ..settings.clone()
        },
    )?;
    session.start()?;
    let client = session.client();
    let mut inboxes = Vec::new();
    let mut stored: BTreeMap<(usize, u64), String> = BTreeMap::new();
    for i in 0..INBOXES {
        let handle = format!("rollout-{i}");
        let key =
            signup_key(&client, &handle).map_err(|e| format!("on the previous version: {e}"))?;
        for n in 1..=MESSAGES {
            // Every later message answers the first: one conversation,
            // which this version must find in mail stored before it.
            let reply = if n > 1 {
                format!("In-Reply-To: <rollout-{i}-1@example.com>\r\n")
            } else {
                String::new()
            };
            let raw = format!(
                "From: old@example.com\r\nTo: {handle}@{domain}\r\nSubject: before the rollout {n}\r\n\
                 Message-ID: <rollout-{i}-{n}@example.com>\r\n{reply}\r\nstored by the previous version\r\n"
            );
            deliver_ok(
                &client,
                "old@example.com",
                &format!("{handle}@{domain}"),
                raw.as_bytes(),
            )
            .map_err(|e| format!("on the previous version: {e}"))?;
            stored.insert((i, n as u64), sha256_hex(raw.as_bytes()));
        }
        // Mark one read, so the flag's survival is checked too.
        mark_read(&client, &key, 1, true).map_err(|e| format!("on the previous version: {e}"))?;
        inboxes.push((handle, key));
    }
    session.stop();

    // This version starts on the same state; every inbox is woken by
    // concurrent requests at once.
    session.set_settings(settings);
    session.start()?;
    let log = session.log()?;
    let failures: Vec<String> = std::thread::scope(|scope| {
        let mut workers = Vec::new();
        for (i, (handle, key)) in inboxes.iter().enumerate() {
            for w in 0..WAKERS {
                let (client, domain) = (&client, &domain);
                workers.push(scope.spawn(move || -> Option<String> {
                    let answer = match w % 4 {
                        0 => client.get_with_key("/api/messages?limit=100", key),
                        1 => client.get_with_key(&format!("/api/messages/{}/raw", 1 + w % MESSAGES), key),
                        2 => client.get_with_key("/api/me", key),
                        _ => {
                            let raw = format!(
                                "From: new@example.com\r\nTo: {handle}@{domain}\r\nSubject: during the rollout {w}\r\n\
                                 Message-ID: <rollout-new-{i}-{w}@example.com>\r\n\r\nstored while waking\r\n"
                            );
                            deliver(client, "new@example.com", &format!("{handle}@{domain}"), raw.as_bytes())
                        }
                    };
                    match answer {
                        Ok(a) if a.status == 200 => None,
                        Ok(a) => Some(format!("{handle} request {w}: {} {}", a.status, a.body)),
                        Err(e) => Some(format!("{handle} request {w}: {e}")),
                    }
                }));
            }
        }
        workers
            .into_iter()
            .filter_map(|w| {
                w.join()
                    .unwrap_or_else(|_| Some("a thread panicked".into()))
            })
            .collect()
    });
    let outcome = (|| {
        if !failures.is_empty() {
            return Err(format!(
                "{} of {} concurrent requests to waking inboxes failed, e.g. {}",
                failures.len(),
                INBOXES * WAKERS,
                failures[0]
            ));
        }
        // Everything the previous version stored is there, as it was.
        for (i, (handle, key)) in inboxes.iter().enumerate() {
            let messages = list_all(&client, key, 100)?;
            let arrived_during = (0..WAKERS).filter(|w| w % 4 == 3).count();
            if messages.len() != MESSAGES + arrived_during {
                return Err(format!("{handle} lists {} messages", messages.len()));
            }
            for n in 1..=MESSAGES as u64 {
                let raw = client.get_with_key(&format!("/api/messages/{n}/raw"), key)?;
                if stored.get(&(i, n)) != Some(&sha256_hex(&raw.bytes)) {
                    return Err(format!("{handle}'s message {n} changed"));
                }
            }
            let first = messages
                .iter()
                .find(|m| m["id"] == 1)
                .ok_or_else(|| format!("{handle} no longer lists message 1"))?;
            if first["read"] != true {
                return Err(format!("{handle}'s read mark was lost"));
            }
            // The old mail is threaded by the backfill after the wake: its
            // messages become one thread (within a few seconds: the alarm).
            threaded_after_the_rollout(&client, key, handle)?;
            // And indexed for search by the backfill, found by its words.
            searchable_after_the_rollout(&client, key, handle)?;
            // And what the new migration brought works.
            let auth = format!("Bearer {key}");
            let sent = client.request(
                "POST",
                "/api/messages",
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                Some(
                    format!(r#"{{"to":"{handle}@{domain}","text":"after the rollout"}}"#)
                        .as_bytes(),
                ),
            )?;
            if sent.status != 201 {
                return Err(format!(
                    "{handle} cannot send after the rollout: {} {}",
                    sent.status, sent.body
                ));
            }
        }
        let log =
            std::fs::read_to_string(&log).map_err(|e| format!("reading {}: {e}", log.display()))?;
        // Each inbox migrated exactly once, however many requests woke it,
        // applying every migration the previous version lacked in that one run.
        let applied: Vec<usize> = (shipped + 1..=version).collect();
        let migrated = log
            .matches(&format!(
                "inbox schema migrated to {version} (applied {applied:?})"
            ))
            .count();
        if migrated != INBOXES {
            return Err(format!(
                "{migrated} migrations to {version} were logged for {INBOXES} inboxes"
            ));
        }
        println!(
            "rollout: {INBOXES} inboxes of the previous version, {WAKERS} concurrent requests each at wake-up: \
             all answered, each migrated once to {version} with its {MESSAGES} messages, read marks and bytes intact, \
             threaded and found by search"
        );
        Ok(())
    })();
    session.stop();
    outcome
}
