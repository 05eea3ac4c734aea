//! The end-to-end suite: both Workers on real workerd (`wrangler dev`), driven
//! over HTTP, started and stopped (by process group) by the suite itself.

use crate::http::{Client, Response};
use crate::tools::Tools;
use crate::wrangler::{DevServer, free_port, mail_domain};
use crate::{Result, root, step};
use std::path::PathBuf;
use std::time::Instant;

/// Shared by the checks: the running server and what earlier checks created.
struct Suite {
    tools: Tools,
    server: Option<DevServer>,
    port: u16,
    state: PathBuf,
    work: PathBuf,
    mail_domain: String,
    starts: u32,
    /// (handle, key) of inboxes created along the way.
    inboxes: Vec<(String, String)>,
}

impl Suite {
    fn client(&self) -> Client {
        let base = self
            .server
            .as_ref()
            .map_or(String::new(), |s| s.base.clone());
        Client::new(&base)
    }

    fn start(&mut self) -> Result<f64> {
        self.starts += 1;
        let log = self.work.join(format!("wrangler-{}.log", self.starts));
        let started = Instant::now();
        self.server = Some(DevServer::start(&self.tools, self.port, &self.state, &log)?);
        Ok(started.elapsed().as_secs_f64())
    }

    fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }

    fn key_of(&self, handle: &str) -> Result<String> {
        self.inboxes
            .iter()
            .find(|(h, _)| h == handle)
            .map(|(_, k)| k.clone())
            .ok_or_else(|| format!("no inbox {handle} was created earlier"))
    }
}

type Check = fn(&mut Suite) -> Result<()>;

const CHECKS: &[(&str, Check)] = &[
    ("health answers", health),
    ("signup then /api/me with the key", signup_and_me),
    ("signup without a handle generates one", generated_handle),
    (
        "wrong, missing and malformed keys get one 401",
        auth_failures,
    ),
    (
        "bad input gets clear 4xx in the contract's shape",
        bad_input,
    ),
    ("a taken handle is refused with 409", taken_handle),
    (
        "20 parallel signups of one handle: exactly one wins",
        parallel_signups,
    ),
    (
        "InboxDO is its own script, reached through script_name",
        separate_scripts,
    ),
    (
        "data survives a restart of wrangler dev",
        restart_keeps_data,
    ),
];

/// Runs every check, printing one line each and the summary last.
pub(crate) fn run(tools: &Tools) -> Result<()> {
    step("end-to-end suite on wrangler dev (workerd)");
    let work = root().join("target").join("e2e");
    let state = work.join("state");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&state).map_err(|e| format!("creating {}: {e}", state.display()))?;
    let mut suite = Suite {
        tools: tools.clone(),
        server: None,
        port: free_port()?,
        state,
        work,
        mail_domain: mail_domain()?,
        starts: 0,
        inboxes: Vec::new(),
    };
    let first_start = suite.start()?;
    println!(
        "wrangler dev ready in {first_start:.1}s on port {}",
        suite.port
    );

    let (mut passed, mut failed) = (0, 0);
    for (name, check) in CHECKS {
        let started = Instant::now();
        match check(&mut suite) {
            Ok(()) => {
                passed += 1;
                println!("ok      {name} ({:.2}s)", started.elapsed().as_secs_f64());
            }
            Err(error) => {
                failed += 1;
                println!("FAILED  {name}: {error}");
            }
        }
    }
    let log = suite.server.as_ref().map(|s| s.log.clone());
    suite.stop();
    if failed > 0
        && let Some(log) = log
    {
        println!("(wrangler's output is in {})", log.display());
    }
    println!("e2e: {passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(String::new())
    }
}

fn expect(condition: bool, what: impl FnOnce() -> String) -> Result<()> {
    if condition { Ok(()) } else { Err(what()) }
}

fn expect_error(response: &Response, status: u16, code: &str) -> Result<()> {
    expect(
        response.status == status
            && response.code() == code
            && response.json()["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
            && response.content_type.starts_with("application/json"),
        || {
            format!(
                "expected {status} {code} with an error sentence, got {} {:?} {}",
                response.status, response.content_type, response.body
            )
        },
    )
}

fn signup(client: &Client, handle: &str) -> Result<Response> {
    client.post_json("/api/signup", &format!(r#"{{"handle":"{handle}"}}"#))
}

fn health(suite: &mut Suite) -> Result<()> {
    let response = suite.client().get("/api/health")?;
    let body = response.json();
    expect(
        response.status == 200
            && body["ok"] == true
            && body["service"] == "inboxkit"
            && body["version"] == protocol::VERSION,
        || {
            format!(
                "unexpected health answer: {} {}",
                response.status, response.body
            )
        },
    )
}

fn signup_and_me(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let response = signup(&client, "E2E-Alice")?;
    let body = response.json();
    let email = format!("e2e-alice@{}", suite.mail_domain);
    let key = body["apiKey"].as_str().unwrap_or("").to_owned();
    expect(
        response.status == 201 && body["email"] == email.as_str(),
        || format!("signup answered {} {}", response.status, response.body),
    )?;
    expect(key.starts_with("ik_") && key.len() == 46, || {
        format!("the key {key:?} is not ik_ and 43 base64url characters")
    })?;
    let me = client.get_with_key("/api/me", &key)?;
    let body = me.json();
    expect(
        me.status == 200
            && body["email"] == email.as_str()
            && body["handle"] == "e2e-alice"
            && body["messageCount"] == 0
            && body["createdAt"]
                .as_str()
                .is_some_and(|t| protocol::Timestamp::parse_rfc3339(t).is_some()),
        || format!("/api/me answered {} {}", me.status, me.body),
    )?;
    suite.inboxes.push(("e2e-alice".into(), key));
    Ok(())
}

fn generated_handle(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let response = client.request("POST", "/api/signup", &[], None)?;
    let body = response.json();
    let email = body["email"].as_str().unwrap_or("").to_owned();
    expect(
        response.status == 201
            && email.starts_with("agent-")
            && email.ends_with(&format!("@{}", suite.mail_domain)),
        || {
            format!(
                "signup without a body answered {} {}",
                response.status, response.body
            )
        },
    )?;
    let key = body["apiKey"].as_str().unwrap_or("");
    let me = client.get_with_key("/api/me", key)?;
    expect(
        me.status == 200 && me.json()["email"] == email.as_str(),
        || {
            format!(
                "the generated inbox's key did not work: {} {}",
                me.status, me.body
            )
        },
    )
}

fn auth_failures(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let alice = suite.key_of("e2e-alice")?;
    // Same format, one character changed: a key nobody holds.
    let mut forged = alice.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).map_err(|e| e.to_string())?;
    let unknown = format!("ik_{}", "A".repeat(43));
    let mut answers = vec![
        client.get_with_key("/api/me", &forged)?,
        client.get_with_key("/api/me", &unknown)?,
        client.get_with_key("/api/me", "ik_short")?,
        client.request("GET", "/api/me", &[], None)?,
        client.request(
            "GET",
            "/api/me",
            &[("authorization", "Basic Zm9vOmJhcg==")],
            None,
        )?,
    ];
    let first = answers.remove(0);
    expect_error(&first, 401, "unauthorized")?;
    for other in answers {
        expect_error(&other, 401, "unauthorized")?;
        expect(other.body == first.body, || {
            "401 answers differ between kinds of bad key".to_owned()
        })?;
    }
    Ok(())
}

fn bad_input(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    expect_error(
        &signup(&client, "-starts-with-dash")?,
        400,
        "invalid_request",
    )?;
    let reserved = signup(&client, "postmaster")?;
    expect_error(&reserved, 400, "invalid_request")?;
    expect(reserved.body.contains("reserved"), || {
        format!(
            "the reserved-handle error does not say so: {}",
            reserved.body
        )
    })?;
    expect_error(
        &client.post_json("/api/signup", "{\"handle\":")?,
        400,
        "invalid_request",
    )?;
    expect_error(
        &client.post_json("/api/signup", r#"{"handel":"x1"}"#)?,
        400,
        "invalid_request",
    )?;
    expect_error(
        &client.post_json("/api/signup", r#"{"handle":7}"#)?,
        400,
        "invalid_request",
    )?;
    expect_error(
        &client.request(
            "POST",
            "/api/signup",
            &[("content-type", "text/plain")],
            Some(br#"{"handle":"plain-text"}"#),
        )?,
        415,
        "unsupported_media_type",
    )?;
    let huge = format!(r#"{{"handle":"{}"}}"#, "a".repeat(100 * 1024));
    expect_error(&client.post_json("/api/signup", &huge)?, 413, "too_large")?;
    expect_error(&client.get("/api/signup")?, 405, "method_not_allowed")?;
    expect_error(&client.get("/api/nothing-here")?, 404, "not_found")?;
    expect_error(&client.get("/%00/../etc")?, 404, "not_found")
}

fn taken_handle(suite: &mut Suite) -> Result<()> {
    expect_error(&signup(&suite.client(), "e2e-alice")?, 409, "handle_taken")
}

fn parallel_signups(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let answers: Vec<Result<Response>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| signup(&client, "e2e-race")))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            .collect()
    });
    let answers = answers.into_iter().collect::<Result<Vec<_>>>()?;
    let winners: Vec<&Response> = answers.iter().filter(|r| r.status == 201).collect();
    let losers = answers
        .iter()
        .filter(|r| r.status == 409 && r.code() == "handle_taken")
        .count();
    expect(winners.len() == 1 && losers == 19, || {
        let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        format!("expected one 201 and nineteen 409, got {statuses:?}")
    })?;
    let key = winners[0].json()["apiKey"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let me = client.get_with_key("/api/me", &key)?;
    expect(
        me.status == 200 && me.json()["handle"] == "e2e-race",
        || format!("the winner's key did not work: {} {}", me.status, me.body),
    )?;
    suite.inboxes.push(("e2e-race".into(), key));
    Ok(())
}

fn separate_scripts(suite: &mut Suite) -> Result<()> {
    let read = |path: &str| {
        std::fs::read_to_string(root().join(path)).map_err(|e| format!("reading {path}: {e}"))
    };
    let router = read("crates/router-worker/build/index.js")?;
    let inbox = read("crates/inbox-do/build/index.js")?;
    expect(
        !router.contains("InboxObject") && inbox.contains("InboxObject"),
        || "the InboxObject class must be exported by the inbox script only".to_owned(),
    )?;
    let config = read("wrangler.toml")?;
    expect(
        config.contains(&format!(
            "script_name = \"{}\"",
            protocol::bindings::INBOX_SCRIPT
        )),
        || "the router must bind InboxObject by script_name".to_owned(),
    )?;
    // And the router really reaches it: the checks above went through it.
    let key = suite.key_of("e2e-alice")?;
    let me = suite.client().get_with_key("/api/me", &key)?;
    expect(me.status == 200, || {
        format!("/api/me answered {}", me.status)
    })
}

fn restart_keeps_data(suite: &mut Suite) -> Result<()> {
    let alice = suite.key_of("e2e-alice")?;
    let before = suite.client().get_with_key("/api/me", &alice)?;
    suite.stop();
    let seconds = suite.start()?;
    println!("        (restarted on the same state in {seconds:.1}s)");
    let client = suite.client();
    let after = client.get_with_key("/api/me", &alice)?;
    expect(after.status == 200 && after.body == before.body, || {
        format!(
            "after restart /api/me answered {} {} (before: {})",
            after.status, after.body, before.body
        )
    })?;
    let race = suite.key_of("e2e-race")?;
    let me = client.get_with_key("/api/me", &race)?;
    expect(me.status == 200, || {
        format!("the race winner's key failed after restart: {}", me.status)
    })?;
    expect_error(&signup(&client, "e2e-alice")?, 409, "handle_taken")
}
