//! `cargo xtask schemathesis`: an independent test generator (Schemathesis,
//! from PyPI) run against `/api/openapi.json` on a `wrangler dev` this command
//! starts, with a real key and a stored message so that authenticated
//! operations are reached. It installs Schemathesis (pinned) into
//! `.inboxkit/schemathesis` once, and reuses it after.

use crate::api::{deliver_ok, signup_key};
use crate::tools::Tools;
use crate::wrangler::{DevSettings, Session, mail_domain};
use crate::{Result, root, run, step};
use std::path::PathBuf;
use std::process::Command;

/// The version whose results are recorded in BENCHMARKS.md.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

fn venv() -> PathBuf {
    root().join(".inboxkit").join("schemathesis")
}

fn ensure_installed() -> Result<PathBuf> {
    let bin = venv().join("bin").join("schemathesis");
    let marker = venv().join(format!(".installed-{SCHEMATHESIS}"));
    if !bin.exists() || !marker.exists() {
        step(&format!(
            "installing {SCHEMATHESIS} into .inboxkit/schemathesis (once)"
        ));
        run(Command::new("python3").args(["-m", "venv"]).arg(venv()))?;
        run(Command::new(venv().join("bin").join("pip")).args([
            "install",
            "--quiet",
            SCHEMATHESIS,
        ]))?;
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    }
    Ok(bin)
}

pub(crate) fn run_against_dev(tools: &Tools) -> Result<()> {
    let schemathesis = ensure_installed()?;
    step("schemathesis against /api/openapi.json on wrangler dev");
    let mut session = Session::new(tools, "schemathesis", DevSettings::unlimited())?;
    session.start()?;
    let work = session.work().to_owned();
    let client = session.client();
    let base = client.base().to_owned();
    let key = signup_key(&client, "schemathesis")?;
    let domain = mail_domain()?;
    deliver_ok(
        &client,
        "someone@example.com",
        &format!("schemathesis@{domain}"),
        b"From: someone@example.com\r\nMessage-ID: <1@example.com>\r\nSubject: hi\r\n\r\nhello\r\n",
    )?;
    // The served document, with one change for this run only: a wait's
    // `timeout` always given and at most 2 s (it may be 60, and 30 when
    // absent), so that a hundred generated waits, most for mail that never
    // comes, take minutes, not an hour.
    let mut document = client.get("/api/openapi.json")?.parsed()?;
    let timeout = document["paths"]["/api/messages/wait"]["get"]["parameters"]
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == "timeout"))
        .ok_or("the document has no wait timeout parameter")?;
    timeout["schema"]["maximum"] = serde_json::json!(2);
    timeout["required"] = serde_json::json!(true);
    let spec = work.join("openapi-for-schemathesis.json");
    std::fs::write(&spec, document.to_string())
        .map_err(|e| format!("writing {}: {e}", spec.display()))?;
    // The calls that would take the run's own key or inbox away (a created
    // full key lets a generated DELETE /api/keys/1 delete the signup key;
    // DELETE /api/me deletes the inbox) run last, against an inbox of
    // their own.
    let lifecycle_key = signup_key(&client, "schemathesis-lifecycle")?;
    let run_with = |key: &str, extra: &[&str]| -> Result<bool> {
        Command::new(&schemathesis)
            .current_dir(&work)
            .arg("run")
            .arg(&spec)
            .args(["--url", &base])
            .args(["-H", &format!("Authorization: Bearer {key}")])
            .args(["--checks", "all", "-n", "100", "--generation-deterministic"])
            .args(extra)
            .status()
            .map(|s| s.success())
            .map_err(|e| format!("running schemathesis: {e}"))
    };
    let schemathesis_run = |extra: &[&str]| run_with(&key, extra);
    // Every operation with every check, except where a rule cannot be
    // written as a JSON Schema, so that schema-valid data may still be
    // refused with a 400: a webhook URL's SSRF rules (no private, loopback,
    // unspecified ... address in any spelling) for PUT /api/webhook, and
    // for a send, reply or forward that Content-IDs are unique among a
    // message's attachments (RFC 2392), and the search query language
    // for a search and a wait (an unclosed quote is a string the schema
    // allows). Those operations run apart, without the "schema-valid data
    // is accepted" check only; a wait, whose timeout this run narrows
    // below what the service takes, also without "schema-violating data is
    // refused" (its bounds are checked by the native and end-to-end tests).
    //
    // For POST /api/messages/{id}/forward, whose body holds three address
    // lists under the address pattern, the generator's own health check
    // finds too few of its random bodies valid ("filter_too_much"): a limit
    // of the generator, not a finding. That health check is suppressed (no
    // check is: every body it does generate is still sent and checked).
    //
    // GET /api/events is a WebSocket upgrade, which an HTTP generator cannot
    // hold open: it is left to the end-to-end suite's WebSocket client.
    let others = schemathesis_run(&[
        "--exclude-operation-id",
        "setWebhook",
        "--exclude-operation-id",
        "sendMessage",
        "--exclude-operation-id",
        "replyToMessage",
        "--exclude-operation-id",
        "forwardMessage",
        "--exclude-operation-id",
        "liveEvents",
        "--exclude-operation-id",
        "searchMessages",
        "--exclude-operation-id",
        "waitForMessage",
        "--exclude-operation-id",
        "createKey",
        "--exclude-operation-id",
        "deleteKey",
        "--exclude-operation-id",
        "deleteInbox",
    ])?;
    let apart = schemathesis_run(&[
        "--include-operation-id",
        "setWebhook",
        "--include-operation-id",
        "sendMessage",
        "--include-operation-id",
        "replyToMessage",
        "--include-operation-id",
        "forwardMessage",
        "--include-operation-id",
        "searchMessages",
        "--exclude-checks",
        "positive_data_acceptance",
        "--suppress-health-check",
        "filter_too_much",
    ])?;
    // (Requests generated without a timeout wait the service's default
    // 30 s for nothing: the client gives them 35 s, there are fewer, and a
    // wait's slow answer is its point, not a response-time failure.)
    let waits = schemathesis_run(&[
        "--include-operation-id",
        "waitForMessage",
        "--exclude-checks",
        "positive_data_acceptance,negative_data_rejection",
        "--request-timeout",
        "35",
        "--max-response-time",
        "35",
        "-n",
        "40",
    ])?;
    let lifecycle = run_with(
        &lifecycle_key,
        &[
            "--include-operation-id",
            "createKey",
            "--include-operation-id",
            "deleteKey",
            "--include-operation-id",
            "deleteInbox",
        ],
    )?;
    session.stop();
    if others && apart && waits && lifecycle {
        println!("schemathesis: no failures");
        Ok(())
    } else {
        Err("schemathesis reported failures; see its summaries above".to_owned())
    }
}
