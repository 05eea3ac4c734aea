//! The end-to-end suite: both Workers on real workerd (`wrangler dev`), driven
//! over HTTP, started and stopped (by process group) by the suite itself.

use crate::e2e_hostile as hostile;
use crate::e2e_outbound::{self as outbound, E2E_RETRY_SECONDS};
use crate::http::{Client, Response};
use crate::receiver::Receiver;
use crate::tools::Tools;
use crate::wrangler::{DevServer, DevSettings, free_port, mail_domain};
use crate::{Result, root, step};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Shared by the checks: the running server and what earlier checks created.
pub(crate) struct Suite {
    tools: Tools,
    server: Option<DevServer>,
    port: u16,
    state: PathBuf,
    work: PathBuf,
    pub(crate) mail_domain: String,
    starts: u32,
    /// (handle, key) of inboxes created along the way.
    pub(crate) inboxes: Vec<(String, String)>,
    /// What wrangler dev is started with.
    pub(crate) settings: DevSettings,
    /// Webhook receivers and the fake HTTP relay.
    pub(crate) receiver: Receiver,
}

impl Suite {
    pub(crate) fn client(&self) -> Client {
        let base = self
            .server
            .as_ref()
            .map_or(String::new(), |s| s.base.clone());
        Client::new(&base)
    }

    pub(crate) fn start(&mut self) -> Result<f64> {
        self.starts += 1;
        let log = self.work.join(format!("wrangler-{}.log", self.starts));
        let started = Instant::now();
        self.server = Some(DevServer::start(
            &self.tools,
            self.port,
            &self.state,
            &log,
            &self.settings,
        )?);
        Ok(started.elapsed().as_secs_f64())
    }

    /// The output files of every wrangler dev started so far.
    pub(crate) fn logs(&self) -> Result<Vec<PathBuf>> {
        Ok((1..=self.starts)
            .map(|n| self.work.join(format!("wrangler-{n}.log")))
            .collect())
    }

    /// The running server's output file.
    pub(crate) fn log(&self) -> Result<PathBuf> {
        self.server
            .as_ref()
            .map(|s| s.log.clone())
            .ok_or_else(|| "wrangler dev is not running".to_owned())
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
    }

    pub(crate) fn key_of(&self, handle: &str) -> Result<String> {
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
        "inbound fixtures read back as their golden files say, raw bytes identical",
        fixtures_read_back,
    ),
    (
        "unknown recipients and foreign domains are refused",
        unknown_recipients_refused,
    ),
    (
        "a redelivery is stored once; read marks and the unread filter work",
        redelivery_and_marks,
    ),
    (
        "1,000 messages page through without gaps or duplicates",
        thousand_messages_page,
    ),
    (
        "a message just under 25 MiB is stored and read back byte for byte",
        largest_message,
    ),
    (
        "data survives a restart of wrangler dev",
        restart_keeps_data,
    ),
    (
        "hostile input to every endpoint and the mail handler: 4xx in the contract's shape, no 5xx, no panic",
        hostile::hostile_sweep,
    ),
    (
        "random keys, ids and cursors across inboxes never reach another inbox's mail",
        hostile::isolation_fuzz,
    ),
    (
        "mail to an outside address goes through the send_email binding, as wrangler shows it",
        outbound::send_email_binding,
    ),
    (
        "agent A sends to agent B directly; both webhooks get signed events, verified independently",
        outbound::direct_delivery_and_webhooks,
    ),
    (
        "a receiver that fails twice gets the event exactly once more, on schedule",
        outbound::retried_until_delivered,
    ),
    (
        "a receiver that does not answer within 5 s is given up on and retried",
        outbound::slow_receiver_times_out,
    ),
    (
        "a restart of wrangler dev during pending retries still delivers",
        outbound::retries_survive_restart,
    ),
    (
        "signups are limited per client address (3 an hour here): 429 with Retry-After",
        outbound::signup_limit,
    ),
    (
        "the HTTP relay is called in Resend's shape (a local fake) and its refusals recorded",
        outbound::http_relay,
    ),
    // Last: it stops the server to read complete logs.
    (
        "one JSON log line per request and mail; no key, secret or content in any log",
        outbound::logs_are_clean,
    ),
];

/// Runs every check, printing one line each and the summary last.
pub(crate) fn run(tools: &Tools) -> Result<()> {
    step("end-to-end suite on wrangler dev (workerd)");
    // Counted from here: `cargo xtask test` delivers mail in the soak first.
    DELIVERIES.store(0, std::sync::atomic::Ordering::SeqCst);
    REFUSED_BY_WRANGLER.store(0, std::sync::atomic::Ordering::SeqCst);
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
        // The local settings (http webhooks to loopback; the suite's ~60
        // signups from one address are within its 1,000 an hour), with the
        // webhook retries shortened.
        settings: DevSettings {
            inbox_vars: vec![(
                protocol::bindings::WEBHOOK_RETRY_SECONDS_VAR.to_owned(),
                E2E_RETRY_SECONDS.to_owned(),
            )],
            ..DevSettings::local()
        },
        receiver: Receiver::start()?,
    };
    let first_start = suite.start()?;
    println!(
        "wrangler dev ready in {first_start:.1}s on port {}",
        suite.port
    );

    // `INBOXKIT_E2E_ONLY=a,b` runs only the checks whose names contain one
    // of the patterns (for working on a few; CI runs them all).
    let only = std::env::var("INBOXKIT_E2E_ONLY").unwrap_or_default();
    let patterns: Vec<&str> = only.split(',').filter(|p| !p.is_empty()).collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in CHECKS {
        if !patterns.is_empty() && !patterns.iter().any(|p| name.contains(p)) {
            continue;
        }
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

pub(crate) fn expect(condition: bool, what: impl FnOnce() -> String) -> Result<()> {
    if condition { Ok(()) } else { Err(what()) }
}

pub(crate) fn expect_error(response: &Response, status: u16, code: &str) -> Result<()> {
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

pub(crate) fn signup(client: &Client, handle: &str) -> Result<Response> {
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
    expect_error(&signup(&client, "e2e-alice")?, 409, "handle_taken")?;
    // Mail too: the pager's thousand messages and a fixture's exact bytes.
    let pager = suite.key_of("e2e-pager")?;
    let count = client.get_with_key("/api/me", &pager)?.json()["messageCount"].clone();
    expect(count == 1000, || {
        format!("after restart the pager holds {count} messages")
    })?;
    let raw = client.get_with_key("/api/messages/1/raw", &alice)?;
    let fixture =
        crlf(&std::fs::read(corpus_dir().join(FIRST_FIXTURE)).map_err(|e| e.to_string())?);
    expect(raw.bytes == fixture, || {
        "after restart message 1's raw bytes differ".to_owned()
    })
}

/// The ingest corpus of the native tests, shared by this suite.
pub(crate) fn corpus_dir() -> PathBuf {
    root()
        .join("crates")
        .join("inbox-do")
        .join("tests")
        .join("corpus")
}

/// The fixture delivered first (so it is message 1 of e2e-alice).
const FIRST_FIXTURE: &str = "rfc/base64-body.eml";

/// Fixtures delivered to e2e-alice and compared with their golden files.
fn fixtures() -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for group in ["rfc", "real-world"] {
        let dir = corpus_dir().join(group);
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        files.extend(entries.flatten().map(|e| e.path()));
    }
    files.sort();
    let first = corpus_dir().join(FIRST_FIXTURE);
    files.retain(|f| *f != first);
    files.insert(0, first);
    Ok(files)
}

/// LF line endings turned into CRLF, as mail travels over SMTP.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut previous = 0u8;
    for &byte in raw {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

/// How many mails [`deliver`] has posted, and how many of them wrangler's
/// local endpoint refused itself, before any Worker ran.
pub(crate) static DELIVERIES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);
pub(crate) static REFUSED_BY_WRANGLER: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Whether an answer of wrangler's local email endpoint is its own refusal
/// (it parses every mail before handing it to the Worker): its fixed 400
/// sentences, or a 500 from a crash in its own entry worker.
pub(crate) fn refused_by_wrangler(answer: &Response) -> bool {
    (answer.status == 400
        && [
            "Invalid email.",
            "Email message size is bigger",
            "Email could not be parsed",
        ]
        .iter()
        .any(|s| answer.body.starts_with(s)))
        || (answer.status == 500
            && answer
                .body
                .contains("miniflare/dist/src/workers/core/entry.worker.js"))
}

/// Delivers `raw` through wrangler's local Email Routing endpoint.
pub(crate) fn deliver(client: &Client, from: &str, to: &str, raw: &[u8]) -> Result<Response> {
    use std::sync::atomic::Ordering;
    DELIVERIES.fetch_add(1, Ordering::SeqCst);
    let path = format!(
        "/cdn-cgi/handler/email?from={}&to={}",
        percent_encode(from),
        percent_encode(to)
    );
    let answer = client.request(
        "POST",
        &path,
        &[("content-type", "message/rfc822")],
        Some(raw),
    )?;
    if refused_by_wrangler(&answer) {
        REFUSED_BY_WRANGLER.fetch_add(1, Ordering::SeqCst);
    }
    Ok(answer)
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The golden view of a fixture (its CRLF form) from the native snapshot.
fn golden(fixture: &Path) -> Result<serde_json::Value> {
    let relative = fixture
        .strip_prefix(corpus_dir())
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .replace('/', "__");
    let snapshot = corpus_dir()
        .parent()
        .map(|tests| {
            tests.join("snapshots").join(format!(
                "corpus__corpus_messages_read_back_as_reviewed@{relative}.snap"
            ))
        })
        .ok_or("no snapshot directory")?;
    let text =
        std::fs::read_to_string(&snapshot).map_err(|e| format!("{}: {e}", snapshot.display()))?;
    let json = text.splitn(3, "---").nth(2).ok_or("malformed snapshot")?;
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    Ok(value["crlf"].clone())
}

/// The fields compared between workerd and the golden files, bodies condensed
/// as the golden files condense them (length and first 240 characters).
fn comparable(message: &serde_json::Value, bodies_condensed: bool) -> serde_json::Value {
    let body = |v: &serde_json::Value| match v {
        serde_json::Value::String(text) if !bodies_condensed => serde_json::json!({
            "chars": text.chars().count(),
            "head": text.chars().take(240).collect::<String>(),
        }),
        other => other.clone(),
    };
    let mut view = serde_json::Map::new();
    for field in [
        "from",
        "fromName",
        "subject",
        "toAddresses",
        "cc",
        "replyTo",
        "messageId",
        "inReplyTo",
        "references",
        "date",
        "attachments",
        "hasAttachments",
        "warnings",
        "size",
    ] {
        view.insert(field.to_owned(), message[field].clone());
    }
    view.insert("text".to_owned(), body(&message["text"]));
    view.insert("html".to_owned(), body(&message["html"]));
    serde_json::Value::Object(view)
}

fn fixtures_read_back(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let key = suite.key_of("e2e-alice")?;
    let to = format!("e2e-alice+corpus@{}", suite.mail_domain);
    for (index, fixture) in fixtures()?.iter().enumerate() {
        let raw = crlf(&std::fs::read(fixture).map_err(|e| e.to_string())?);
        let delivered = deliver(&client, "sender@example.net", &to, &raw)?;
        let name = fixture.display();
        expect(delivered.status == 200, || {
            format!(
                "{name}: delivery answered {} {}",
                delivered.status, delivered.body
            )
        })?;
        let id = index + 1;
        let message = client.get_with_key(&format!("/api/messages/{id}"), &key)?;
        expect(message.status == 200, || {
            format!("{name}: GET answered {}", message.status)
        })?;
        let got = comparable(&message.json(), false);
        let want = comparable(&golden(fixture)?, true);
        expect(got == want, || {
            format!("{name}: workerd answered\n{got}\nthe golden file says\n{want}")
        })?;
        let stored = client.get_with_key(&format!("/api/messages/{id}/raw"), &key)?;
        expect(
            stored.bytes == raw && stored.content_type == "message/rfc822",
            || {
                format!(
                    "{name}: the raw bytes came back different ({} vs {} bytes)",
                    stored.bytes.len(),
                    raw.len()
                )
            },
        )?;
    }
    Ok(())
}

fn unknown_recipients_refused(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let raw = b"From: a@example.com\r\nTo: x@example.com\r\nMessage-ID: <refuse@example.com>\r\nSubject: x\r\n\r\nx\r\n";
    for (to, reason) in [
        (
            format!("nobody-here@{}", suite.mail_domain),
            "No such mailbox here.",
        ),
        (
            "e2e-alice@example.com".to_owned(),
            "This server does not accept mail for that domain.",
        ),
    ] {
        let answer = deliver(&client, "a@example.com", &to, raw)?;
        expect(answer.status == 400 && answer.body.contains(reason), || {
            format!(
                "delivery to {to} answered {} {:?}",
                answer.status, answer.body
            )
        })?;
    }
    Ok(())
}

fn redelivery_and_marks(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let key = suite.key_of("e2e-race")?;
    let to = format!("e2e-race@{}", suite.mail_domain);
    let raw = format!(
        "From: a@example.com\r\nTo: {to}\r\nMessage-ID: <twice@example.com>\r\nSubject: twice\r\n\r\nsent twice\r\n"
    );
    for _ in 0..2 {
        let answer = deliver(&client, "a@example.com", &to, raw.as_bytes())?;
        expect(answer.status == 200, || {
            format!("delivery answered {}", answer.status)
        })?;
    }
    let me = client.get_with_key("/api/me", &key)?;
    expect(me.json()["messageCount"] == 1, || {
        format!("stored {} times", me.json()["messageCount"])
    })?;
    let auth = format!("Bearer {key}");
    let marked = client.request(
        "PATCH",
        "/api/messages/1",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(br#"{"read":true}"#),
    )?;
    expect(
        marked.status == 200 && marked.json()["read"] == true,
        || format!("PATCH answered {} {}", marked.status, marked.body),
    )?;
    let unread = client.get_with_key("/api/messages?unread=true", &key)?;
    expect(unread.json()["messages"] == serde_json::json!([]), || {
        format!("unread still lists {}", unread.body)
    })?;
    let read = client.get_with_key("/api/messages/1", &key)?;
    expect(read.json()["read"] == true, || {
        "the mark did not stick".to_owned()
    })
}

fn thousand_messages_page(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let created = signup(&client, "e2e-pager")?;
    expect(created.status == 201, || {
        format!("signup answered {}", created.status)
    })?;
    let key = created.json()["apiKey"].as_str().unwrap_or("").to_owned();
    let to = format!("e2e-pager@{}", suite.mail_domain);
    let failures = deliver_many(&client, &to, 1000, 8, "page");
    expect(failures.is_empty(), || {
        format!(
            "{} deliveries failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        )
    })?;
    let mut seen = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/messages?limit=100&cursor={c}"),
            None => "/api/messages?limit=100".to_owned(),
        };
        let page = client.get_with_key(&path, &key)?;
        expect(page.status == 200, || {
            format!("{path} answered {}", page.status)
        })?;
        let body = page.json();
        seen.extend(
            body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_u64()),
        );
        match body["nextCursor"].as_u64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    expect(seen == (1..=1000).rev().collect::<Vec<u64>>(), || {
        format!(
            "paging saw {} ids; first {:?}",
            seen.len(),
            &seen[..seen.len().min(5)]
        )
    })?;
    suite.inboxes.push(("e2e-pager".into(), key));
    Ok(())
}

/// Delivers `count` distinct small messages to `to` from `threads` threads;
/// returns what failed.
pub(crate) fn deliver_many(
    client: &Client,
    to: &str,
    count: usize,
    threads: usize,
    tag: &str,
) -> Vec<String> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for n in (worker..count).step_by(threads) {
                        let raw = format!(
                            "From: s{n}@example.com\r\nTo: {to}\r\nMessage-ID: <{tag}-{n}@example.com>\r\nSubject: {tag} {n}\r\n\r\nmessage {n}\r\n"
                        );
                        match deliver(client, "s@example.com", to, raw.as_bytes()) {
                            Ok(r) if r.status == 200 => {}
                            Ok(r) => failures.push(format!("{n}: {} {}", r.status, r.body)),
                            Err(e) => failures.push(format!("{n}: {e}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["a thread panicked".into()])
            })
            .collect()
    })
}

fn largest_message(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let key = suite.key_of("e2e-race")?;
    let to = format!("e2e-race@{}", suite.mail_domain);
    let mut raw = format!(
        "From: big@example.com\r\nTo: {to}\r\nMessage-ID: <largest@example.com>\r\nSubject: largest\r\n\r\n"
    )
    .into_bytes();
    // 25 MiB less a little, as Email Routing's limit counts the whole message.
    let size = 25 * 1024 * 1024 - 1024;
    while raw.len() + 78 <= size {
        raw.extend_from_slice(&[b'x'; 76]);
        raw.extend_from_slice(b"\r\n");
    }
    let answer = deliver(&client, "big@example.com", &to, &raw)?;
    expect(answer.status == 200, || {
        format!("delivery answered {} {}", answer.status, answer.body)
    })?;
    let list = client.get_with_key("/api/messages?limit=1", &key)?.json();
    let id = list["messages"][0]["id"].as_u64().unwrap_or(0);
    let size_listed = list["messages"][0]["size"].as_u64().unwrap_or(0);
    expect(size_listed == raw.len() as u64, || {
        format!("listed size {size_listed}, sent {}", raw.len())
    })?;
    let stored = client.get_with_key(&format!("/api/messages/{id}/raw"), &key)?;
    expect(stored.bytes == raw, || {
        format!(
            "the raw bytes came back different ({} vs {} bytes)",
            stored.bytes.len(),
            raw.len()
        )
    })
}
