//! `cargo xtask rollout`: a schema migration rolled out on real workerd.
//!
//! The previous version of the project (the commit before the newest
//! migration was added, taken from git history, so it ships the first N−1
//! migrations and the code that went with them) is built and served; inboxes
//! are created and filled with it. Then this version is started on the same
//! state. Each inbox must migrate on its first request, with its data intact,
//! while concurrent requests to the waking inbox all succeed: none may see a
//! half-migrated schema (it would show as a 5xx, or as missing data).

use crate::e2e::deliver;
use crate::http::Client;
use crate::tools::Tools;
use crate::wrangler::{DevServer, DevSettings, free_port, mail_domain};
use crate::{Result, build, root, step};
use protocol::key::sha256_hex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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

fn git(args: &[&str]) -> Result<String> {
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

/// The commit before the newest migration was added, checked out (as files)
/// under `target/rollout/previous`.
fn previous_version(work: &Path) -> Result<(String, PathBuf)> {
    let newest = git(&[
        "log",
        "-n",
        "1",
        "--format=%H",
        "--",
        "crates/schema/migrations.lock",
    ])?;
    let previous = git(&["rev-parse", &format!("{newest}^")])?;
    let shipped = migrations_in(&git(&[
        "show",
        &format!("{previous}:crates/schema/migrations.lock"),
    ])?);
    let current = current_migrations()?;
    if shipped + 1 != current {
        return Err(format!(
            "{previous} ships {shipped} migrations; this version has {current}"
        ));
    }
    let dir = work.join("previous");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut archive = Command::new("git")
        .current_dir(root())
        .args(["archive", "--format=tar", &previous])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("git archive: {e}"))?;
    let stdout = archive.stdout.take().ok_or("git archive gave no output")?;
    let untar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&dir)
        .stdin(stdout)
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    let archived = archive.wait().map_err(|e| e.to_string())?;
    if !untar.success() || !archived.success() {
        return Err(format!("extracting {previous} failed"));
    }
    Ok((previous, dir))
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

pub(crate) fn run(tools: &Tools) -> Result<()> {
    step("migration rollout on wrangler dev: the previous version's inboxes wake under this one");
    let work = root().join("target").join("rollout");
    let _ = std::fs::remove_dir_all(&work);
    let state = work.join("state");
    std::fs::create_dir_all(&state).map_err(|e| e.to_string())?;
    if !history_available() {
        return Err(
            "the rollout check needs git history (the previous version is built \
                    from it), and this is not a full git clone"
                .to_owned(),
        );
    }
    let (previous, project) = previous_version(&work)?;
    let version = current_migrations()?;
    println!(
        "previous version: {} ({} migrations)",
        &previous[..12],
        version - 1
    );
    // Its own target directory (kept between runs: only the first is slow).
    build::build_in(
        tools,
        &project,
        &root().join("target").join("rollout-target"),
    )?;
    // Make sure it is the previous version that was built: its inbox script
    // must not know the newest migration.
    let newest = std::fs::read_to_string(root().join("crates/schema/migrations.lock"))
        .map_err(|e| e.to_string())?
        .lines()
        .last()
        .and_then(|l| l.splitn(3, ' ').nth(2))
        .unwrap_or_default()
        .to_owned();
    let wasm = std::fs::read(project.join("crates/inbox-do/build/index_bg.wasm"))
        .map_err(|e| format!("reading the previous inbox script: {e}"))?;
    if newest.is_empty() || wasm.windows(newest.len()).any(|w| w == newest.as_bytes()) {
        return Err(format!(
            "the previous build knows the newest migration ({newest:?}): it is not the previous version"
        ));
    }
    let domain = mail_domain()?;

    // The previous version creates and fills the inboxes.
    let mut settings = DevSettings::local();
    settings.set_router_var(protocol::bindings::SIGNUPS_PER_HOUR_VAR, "0");
    let old_settings = DevSettings {
        project: Some(project.clone()),
        ..settings.clone()
    };
    let mut old = DevServer::start(
        tools,
        free_port()?,
        &state,
        &work.join("previous.log"),
        &old_settings,
    )?;
    let client = Client::new(&old.base);
    let mut inboxes = Vec::new();
    let mut stored: BTreeMap<(usize, u64), String> = BTreeMap::new();
    for i in 0..INBOXES {
        let handle = format!("rollout-{i}");
        let created = client.post_json("/api/signup", &format!(r#"{{"handle":"{handle}"}}"#))?;
        let key = created.json()["apiKey"]
            .as_str()
            .ok_or_else(|| {
                format!(
                    "signup on the previous version: {} {}",
                    created.status, created.body
                )
            })?
            .to_owned();
        for n in 1..=MESSAGES {
            let raw = format!(
                "From: old@example.com\r\nTo: {handle}@{domain}\r\nSubject: before the rollout {n}\r\n\
                 Message-ID: <rollout-{i}-{n}@example.com>\r\n\r\nstored by the previous version\r\n"
            );
            let answer = deliver(
                &client,
                "old@example.com",
                &format!("{handle}@{domain}"),
                raw.as_bytes(),
            )?;
            if answer.status != 200 {
                return Err(format!(
                    "delivery on the previous version: {}",
                    answer.status
                ));
            }
            stored.insert((i, n as u64), sha256_hex(raw.as_bytes()));
        }
        // Mark one read, so the flag's survival is checked too.
        let auth = format!("Bearer {key}");
        client.request(
            "PATCH",
            "/api/messages/1",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(br#"{"read":true}"#),
        )?;
        inboxes.push((handle, key));
    }
    old.stop();

    // This version starts on the same state; every inbox is woken by
    // concurrent requests at once.
    let mut new = DevServer::start(
        tools,
        free_port()?,
        &state,
        &work.join("current.log"),
        &settings,
    )?;
    let client = Client::new(&new.base);
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
            let list = client.get_with_key("/api/messages?limit=100", key)?.json();
            let messages = list["messages"].as_array().cloned().unwrap_or_default();
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
                .cloned()
                .unwrap_or_default();
            if first["read"] != true {
                return Err(format!("{handle}'s read mark was lost"));
            }
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
        let log = std::fs::read_to_string(work.join("current.log")).unwrap_or_default();
        // Each inbox migrated exactly once, however many requests woke it.
        let migrated = log
            .matches(&format!(
                "inbox schema migrated to {version} (applied [{version}])"
            ))
            .count();
        if migrated != INBOXES {
            return Err(format!(
                "{migrated} migrations to {version} were logged for {INBOXES} inboxes"
            ));
        }
        println!(
            "rollout: {INBOXES} inboxes of the previous version, {WAKERS} concurrent requests each at wake-up: \
             all answered, each migrated once to {version} with its {MESSAGES} messages, read marks and bytes intact"
        );
        Ok(())
    })();
    new.stop();
    outcome
}
