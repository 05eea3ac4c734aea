//! End-to-end checks of the basics: health, signup and its refusals, keys,
//! bad input, and that the InboxDO is a script of its own.

use super::{Suite, expect, expect_error};
use crate::api::signup;
use crate::http::Response;
use crate::{Result, root};

pub(super) fn health(suite: &mut Suite) -> Result<()> {
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

pub(super) fn signup_and_me(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let response = signup(&client, "E2E-Alice")?;
    let email = suite.address("e2e-alice");
    expect(
        response.status == 201 && response.json()["email"] == email.as_str(),
        || format!("signup answered {} {}", response.status, response.body),
    )?;
    let key = response.string("apiKey")?;
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
    )
}

pub(super) fn generated_handle(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let response = client.request("POST", "/api/signup", &[], None)?;
    expect(response.status == 201, || {
        format!(
            "signup without a body answered {} {}",
            response.status, response.body
        )
    })?;
    let email = response.string("email")?;
    expect(
        email.starts_with("agent-") && email.ends_with(&format!("@{}", suite.mail_domain)),
        || format!("the generated address is {email:?}"),
    )?;
    let me = client.get_with_key("/api/me", &response.string("apiKey")?)?;
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

pub(super) fn auth_failures(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let real = suite.inbox("e2e-auth")?;
    // Same format, one character changed: a key nobody holds.
    let mut forged = real.into_bytes();
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

pub(super) fn bad_input(suite: &mut Suite) -> Result<()> {
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

pub(super) fn taken_handle(suite: &mut Suite) -> Result<()> {
    suite.inbox("e2e-taken")?;
    expect_error(&signup(&suite.client(), "e2e-taken")?, 409, "handle_taken")?;
    // Case does not make another handle.
    expect_error(&signup(&suite.client(), "E2E-Taken")?, 409, "handle_taken")
}

/// `racers` signups of `handle` at once: exactly one must win; returns its key.
pub(super) fn race_for(suite: &Suite, handle: &str, racers: usize) -> Result<String> {
    let client = suite.client();
    let answers: Vec<Result<Response>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..racers)
            .map(|_| scope.spawn(|| signup(&client, handle)))
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
    expect(winners.len() == 1 && losers == racers - 1, || {
        let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        format!("expected one 201 and {} 409, got {statuses:?}", racers - 1)
    })?;
    let key = winners[0].string("apiKey")?;
    let me = client.get_with_key("/api/me", &key)?;
    expect(me.status == 200 && me.json()["handle"] == handle, || {
        format!("the winner's key did not work: {} {}", me.status, me.body)
    })?;
    Ok(key)
}

pub(super) fn parallel_signups(suite: &mut Suite) -> Result<()> {
    race_for(suite, "e2e-race", 20).map(drop)
}

pub(super) fn separate_scripts(suite: &mut Suite) -> Result<()> {
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
    // And the router really reaches it: a new inbox answers through it.
    let key = suite.inbox("e2e-scripts")?;
    let me = suite.client().get_with_key("/api/me", &key)?;
    expect(me.status == 200, || {
        format!("/api/me answered {}", me.status)
    })
}
