//! The end-to-end check of the logs: one JSON line per request and per mail,
//! and no key, webhook secret or message content in any of them, over every
//! log of the session (those of the checks before this one included).

use super::outbound::{CONTENT_MARKERS, set_webhook};
use super::{Suite, expect};
use crate::Result;
use crate::api::{call, deliver_ok};
use serde_json::{Value as Json, json};

/// Words of this check's own mail (its bodies), which must not reach a log.
const OWN_MARKER: &str = "the vault code is 4417";

/// Every request and mail got a JSON log line, and no log holds a key, a
/// webhook secret or a message's words.
pub(super) fn logs_are_clean(suite: &mut Suite) -> Result<()> {
    // Lines of its own to look for, whatever ran before: a key, a secret,
    // a received and a sent message.
    let client = suite.client();
    let key = suite.inbox("e2e-logs")?;
    let secret = set_webhook(suite, &key, "/hooks/logs")?;
    let raw = format!(
        "From: a@example.com\r\nTo: {to}\r\nMessage-ID: <logs@example.com>\r\nSubject: logs\r\n\r\n{OWN_MARKER}\r\n",
        to = suite.address("e2e-logs")
    );
    deliver_ok(
        &client,
        "a@example.com",
        &suite.address("e2e-logs"),
        raw.as_bytes(),
    )?;
    let sent = call(
        &client,
        &key,
        "POST",
        "/api/messages",
        Some(&json!({ "to": "frank@example.com", "subject": "logs", "text": OWN_MARKER })),
    )?;
    expect(sent.status == 201, || {
        format!("POST /api/messages: {} {}", sent.status, sent.body)
    })?;
    suite
        .receiver
        .wait_for("/hooks/logs", 2, std::time::Duration::from_secs(20))?;

    // Stopped first, so every line is written out.
    suite.stop();
    // wrangler logs each HTTP request it serves (not the email endpoint's).
    let (mut requests, mut mails, mut served) = (0, 0, 0);
    let words: Vec<&str> = CONTENT_MARKERS
        .iter()
        .copied()
        .chain([OWN_MARKER])
        .collect();
    for log in suite.session().logs() {
        let text =
            std::fs::read_to_string(&log).map_err(|e| format!("reading {}: {e}", log.display()))?;
        for line in text.lines() {
            let line = line.trim();
            if line
                .strip_prefix("[wrangler:info] ")
                .and_then(|rest| rest.split_once(' '))
                .is_some_and(|(method, rest)| {
                    method.chars().all(|c| c.is_ascii_uppercase()) && rest.starts_with('/')
                })
            {
                served += 1;
            }
            // wrangler dev prefixes what a Worker logs with its name.
            if let Some(object) = line.strip_prefix("[inboxkit] ") {
                let parsed: Json = serde_json::from_str(object)
                    .map_err(|e| format!("a log line is not JSON ({e}): {line}"))?;
                match parsed["event"].as_str() {
                    Some("request") => requests += 1,
                    Some("mail") => mails += 1,
                    _ => {}
                }
            }
            for secret_value in [key.as_str(), secret.as_str()] {
                expect(!line.contains(secret_value), || {
                    format!("{} shows this check's key or secret: {line}", log.display())
                })?;
            }
            for marker in ["ik_", "whsec_"] {
                if let Some(at) = line.find(marker) {
                    // Only when a key or secret follows.
                    let rest = &line[at + marker.len()..];
                    let leaked = rest
                        .chars()
                        .take(20)
                        .filter(char::is_ascii_alphanumeric)
                        .count()
                        >= 20;
                    expect(!leaked, || {
                        format!("{} shows {marker:?}: {line}", log.display())
                    })?;
                }
            }
            for word in &words {
                expect(!line.contains(word), || {
                    format!("{} shows {word:?}: {line}", log.display())
                })?;
            }
        }
    }
    let (delivered, refused) = suite.session().mail_counts();
    expect(requests == served, || {
        format!("{requests} request log lines for {served} requests served")
    })?;
    // Every mail that reached the Worker has its line; those wrangler's own
    // endpoint refused never reached it.
    expect(mails > 0 && mails == delivered - refused, || {
        format!(
            "{mails} mail log lines for {delivered} mails delivered, {refused} of them refused by wrangler itself"
        )
    })?;
    println!(
        "        ({requests} request and {mails} mail lines, all JSON, none with a key, secret or content)"
    );
    Ok(())
}
