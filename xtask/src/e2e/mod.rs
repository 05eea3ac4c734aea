//! The end-to-end suite: both Workers on real workerd (`wrangler dev`), driven
//! over HTTP. This module is the harness: one [`Session`] for the whole suite
//! (started, restarted and stopped by process group), the named checks run one
//! after another, and the summary line `e2e: N passed, M failed`, which is
//! always the last line printed.
//!
//! Each check creates the inboxes it needs and leaves the server as the suite
//! runs it (or the harness restarts it so before the next check), so checks
//! do not depend on each other's order and any of them runs alone
//! (`INBOXKIT_E2E_ONLY=a,b` runs those whose names contain a pattern).

mod attachments;
mod basics;
mod console;
mod corpus;
mod events;
mod hostile;
mod lifecycle;
mod logs;
mod mail;
mod mcp;
mod outbound;
mod search;
mod threads;
mod wait;

use crate::api;
use crate::http::{Client, Response};
use crate::receiver::Receiver;
use crate::tools::Tools;
use crate::wrangler::{DevSettings, Session, mail_domain};
use crate::{Result, step};
use std::path::PathBuf;
use std::time::Instant;

pub(crate) use corpus::corpus_dir;

/// What the checks share: the session (never its state: each check makes its
/// own inboxes), the mail domain and the local webhook receiver.
pub(crate) struct Suite {
    session: Session,
    /// What the server runs with between checks.
    defaults: DevSettings,
    pub(crate) mail_domain: String,
    /// Webhook receivers and the fake HTTP relay.
    pub(crate) receiver: Receiver,
}

impl Suite {
    pub(crate) fn client(&self) -> Client {
        self.session.client()
    }

    /// `handle@` the mail domain.
    pub(crate) fn address(&self, handle: &str) -> String {
        format!("{handle}@{}", self.mail_domain)
    }

    /// A new inbox for `handle`; returns its key.
    pub(crate) fn inbox(&self, handle: &str) -> Result<String> {
        api::signup_key(&self.client(), handle)
    }

    /// The suite's settings, to change for one check ([`Suite::restart_with`]).
    pub(crate) fn defaults(&self) -> DevSettings {
        self.defaults.clone()
    }

    /// Restarts wrangler dev on the same state, port and settings; returns
    /// how long the start took, in seconds.
    pub(crate) fn restart(&mut self) -> Result<f64> {
        self.session.start()
    }

    /// Restarts wrangler dev with `settings` (the harness goes back to the
    /// suite's own before the next check).
    pub(crate) fn restart_with(&mut self, settings: DevSettings) -> Result<f64> {
        self.session.set_settings(settings);
        self.session.start()
    }

    /// Stops wrangler dev (the next check gets it started again).
    pub(crate) fn stop(&mut self) {
        self.session.stop();
    }

    /// The running server's output file.
    pub(crate) fn log(&self) -> Result<PathBuf> {
        self.session.log()
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// Starts the server with the suite's settings unless it runs with them.
    fn ensure_defaults(&mut self) -> Result<()> {
        if self.session.running_with() != Some(&self.defaults) {
            self.session.set_settings(self.defaults.clone());
            let seconds = self.session.start()?;
            println!("        (wrangler dev started with the suite's settings in {seconds:.1}s)");
        }
        Ok(())
    }
}

type Check = fn(&mut Suite) -> Result<()>;

const CHECKS: &[(&str, Check)] = &[
    ("health answers", basics::health),
    ("signup then /api/me with the key", basics::signup_and_me),
    (
        "signup without a handle generates one",
        basics::generated_handle,
    ),
    (
        "wrong, missing and malformed keys get one 401",
        basics::auth_failures,
    ),
    (
        "bad input gets clear 4xx in the contract's shape",
        basics::bad_input,
    ),
    ("a taken handle is refused with 409", basics::taken_handle),
    (
        "20 parallel signups of one handle: exactly one wins",
        basics::parallel_signups,
    ),
    (
        "InboxDO is its own script, reached through script_name",
        basics::separate_scripts,
    ),
    (
        "inbound fixtures read back as their golden files say, raw bytes identical",
        corpus::fixtures_read_back,
    ),
    (
        "malformed fixtures read back as their golden files say, raw bytes identical",
        corpus::malformed_read_back,
    ),
    (
        "unknown recipients and foreign domains are refused",
        mail::unknown_recipients_refused,
    ),
    (
        "a redelivery is stored once; read marks and the unread filter work",
        mail::redelivery_and_marks,
    ),
    (
        "1,000 messages page through without gaps or duplicates",
        mail::thousand_messages_page,
    ),
    (
        "a message just under 25 MiB is stored and read back byte for byte",
        mail::largest_message,
    ),
    (
        "data survives a restart of wrangler dev",
        mail::restart_keeps_data,
    ),
    (
        "hostile input to every endpoint and the mail handler: 4xx in the contract's shape, no 5xx, no panic",
        hostile::hostile_sweep,
    ),
    (
        "a chunked body past its limit (64 KiB, 10 MiB for a send) with no Content-Length is refused with 413 while it is read",
        hostile::chunked_body_over_the_limit,
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
    (
        "a send retried with its Idempotency-Key after the client gave up is sent once",
        lifecycle::idempotent_retry_sends_once,
    ),
    (
        "an inbox of 10,000 messages is deleted: its key, its mail and its handle are refused, across a restart",
        lifecycle::deleted_inbox_stays_deleted,
    ),
    (
        "a read key lists and waits but cannot send or change anything",
        lifecycle::read_key_reads_but_cannot_send,
    ),
    (
        "a rotated key works and the old one is refused; the last full key stays",
        lifecycle::rotated_key,
    ),
    (
        "an export of 500 messages reads back byte for byte with Python's mailbox",
        lifecycle::export_reads_back_with_python,
    ),
    (
        "replies before their original end in one thread; marks, the unread filter and deleting a thread work",
        threads::threads_form_and_go,
    ),
    (
        "A writes to B with C on Cc, B and A reply to all: all three see one thread, read back through the API",
        threads::reply_all_across_three_inboxes,
    ),
    (
        "a reply to outside mail goes through the send_email binding with Re:, In-Reply-To and References",
        threads::reply_to_outside_mail,
    ),
    (
        "a 20 MB attachment arrives by mail and downloads byte for byte with its headers",
        attachments::twenty_megabytes_download,
    ),
    (
        "A sends B a PDF and an inline image, B forwards them to C: every download is identical",
        attachments::agent_files_and_forward,
    ),
    (
        "a send to the outside with files, read back from wrangler's .eml by Python's email package",
        attachments::outside_send_read_by_python,
    ),
    (
        "search finds English, German (Müller, Muller) and Japanese (請求書) mail; every operator narrows",
        search::search_finds_and_narrows,
    ),
    (
        "search pages of 2 visit every match once; the limit's bounds are refused with 400",
        search::search_pages,
    ),
    (
        "hostile search queries (unclosed quotes, NEAR(, *, 10,000 terms, NUL, invalid UTF-8) get 200 or 400, never a 5xx",
        search::search_hostile_queries,
    ),
    (
        "a verification mail's detail carries its code and its link",
        search::codes_and_links,
    ),
    (
        "a waiter started before the mail gets it; wake-up time beside GET /api/me",
        wait::waiter_gets_new_mail,
    ),
    (
        "20 concurrent waiters on one inbox all get the same message",
        wait::many_waiters_one_message,
    ),
    (
        "a wait for a stored message answers at once; sent mail is not waited for",
        wait::stored_message_at_once,
    ),
    (
        "a wait with q=subject:code passes over mail that does not match",
        wait::wait_query_filters,
    ),
    (
        "a wait with timeout=1 answers {\"message\": null} after about a second",
        wait::wait_times_out,
    ),
    (
        "a wait with a bad timeout, after or q is refused with 400",
        wait::wait_bad_parameters,
    ),
    (
        "the event socket refuses a bad or missing key with 401 before the upgrade",
        events::events_refuse_a_bad_key,
    ),
    (
        "the event socket: live events by header and by subprotocol, ping, bad frames, replay after a reconnection and across a restart",
        events::events_live_and_replayed,
    ),
    (
        "MCP: the official TypeScript SDK lists the tools, calls each one and waits for mail delivered meanwhile",
        mcp::typescript_sdk,
    ),
    (
        "MCP: the official Python SDK does the same, by server/discover (2026-07-28) and by the initialize handshake",
        mcp::python_sdk,
    ),
    (
        "MCP: the Inspector's CLI lists the tools",
        mcp::inspector_cli,
    ),
    (
        "MCP: the conformance suite in server mode passes all but the scenarios of the reference server's own features",
        mcp::conformance,
    ),
    (
        "the web console in Chromium: live mail, code copied, reply with an attachment, search, a read key, 30+ hostile mails inert, axe on every page",
        console::in_a_browser,
    ),
    // Last, so that the logs it reads are those of every check before it
    // (it holds wherever it runs: it makes the lines it looks for itself).
    (
        "one JSON log line per request and mail; no key, secret or content in any log",
        logs::logs_are_clean,
    ),
];

/// How a run of the suite went; [`Summary::finish`] prints its line.
#[derive(Debug)]
pub(crate) struct Summary {
    passed: usize,
    failed: usize,
}

impl Summary {
    /// Both runs' counts, for one summary line.
    pub(crate) fn and(self, other: Summary) -> Summary {
        Summary {
            passed: self.passed + other.passed,
            failed: self.failed + other.failed,
        }
    }

    /// Prints the summary line (it must be the last line printed) and turns
    /// a failure into an already-reported error.
    pub(crate) fn finish(&self) -> Result<()> {
        println!("e2e: {} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 {
            Ok(())
        } else {
            Err(String::new())
        }
    }
}

/// Kills a client's process group (by group id, never by name) if it is
/// still running after a time limit; [`Watchdog::stop`] once it has ended.
pub(super) struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    /// Watches the process group `pid` leads, for `limit`.
    pub(super) fn start(pid: u32, limit: std::time::Duration) -> Watchdog {
        use std::sync::atomic::{AtomicBool, Ordering};
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let thread = {
            let done = done.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                while !done.load(Ordering::SeqCst) {
                    if started.elapsed() > limit {
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", "--", &format!("-{pid}")])
                            .status();
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            })
        };
        Watchdog { done, thread }
    }

    /// The client has ended: stop watching.
    pub(super) fn stop(self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

/// Checks that need this version's router, not only its inbox script: left
/// out of the mixed-version run (the previous router has no console).
const NEEDS_THIS_ROUTER: &[&str] = &["the web console in Chromium"];

/// Runs every check (or those `INBOXKIT_E2E_ONLY` names), printing one line
/// each; the caller prints the summary with [`Summary::finish`].
pub(crate) fn run(tools: &Tools) -> Result<Summary> {
    step("end-to-end suite on wrangler dev (workerd)");
    run_suite(tools, "e2e", None)
}

/// The suite again, with the previous release's router (checked out at
/// `router_project`) in front of this version's inbox script: a staged
/// deploy's window. Every check but those of [`NEEDS_THIS_ROUTER`] runs.
pub(crate) fn run_mixed(tools: &Tools, router_project: PathBuf) -> Result<Summary> {
    step("end-to-end suite through the previous release's router, in front of this inbox script");
    run_suite(tools, "e2e-mixed", Some(router_project))
}

fn run_suite(tools: &Tools, name: &str, router_project: Option<PathBuf>) -> Result<Summary> {
    let mixed = router_project.is_some();
    // The local settings (http webhooks to loopback; the suite's signups from
    // one address are within its 1,000 an hour), with the webhook retries
    // shortened.
    let mut defaults = DevSettings::local();
    defaults.set_inbox_var(
        protocol::bindings::WEBHOOK_RETRY_SECONDS_VAR,
        outbound::E2E_RETRY_SECONDS,
    );
    defaults.router_project = router_project;
    let mut suite = Suite {
        session: Session::new(tools, name, defaults.clone())?,
        defaults,
        mail_domain: mail_domain()?,
        receiver: Receiver::start()?,
    };
    let first_start = suite.session.start()?;
    println!(
        "wrangler dev ready in {first_start:.1}s on port {}",
        suite.session.port()
    );

    if mixed {
        // The router answering is the previous release's: it has no console
        // (this version's answers 200 at /).
        let root_page = suite.client().request("GET", "/", &[], None)?;
        if root_page.status != 404 {
            return Err(format!(
                "the mixed run's router answered {} at /: it is not the previous release's",
                root_page.status
            ));
        }
        println!("        (the router is the previous release's: / is a 404 there)");
    }
    let only = std::env::var("INBOXKIT_E2E_ONLY").unwrap_or_default();
    let patterns: Vec<&str> = only.split(',').filter(|p| !p.is_empty()).collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in CHECKS {
        if !patterns.is_empty() && !patterns.iter().any(|p| name.contains(p)) {
            continue;
        }
        if mixed && NEEDS_THIS_ROUTER.iter().any(|p| name.starts_with(p)) {
            println!("skipped {name} (it needs this version's router)");
            continue;
        }
        let started = Instant::now();
        match suite.ensure_defaults().and_then(|()| check(&mut suite)) {
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
    suite.session.stop();
    if failed > 0 {
        println!(
            "(wrangler's output is in {})",
            suite.session.work().display()
        );
    }
    if passed + failed == 0 {
        return Err(format!("INBOXKIT_E2E_ONLY={only} names no check"));
    }
    Ok(Summary { passed, failed })
}

/// `GET /api/messages/:id` as JSON, which must answer 200.
pub(crate) fn message_detail(suite: &Suite, key: &str, id: u64) -> Result<serde_json::Value> {
    let answer = api::call(
        &suite.client(),
        key,
        "GET",
        &format!("/api/messages/{id}"),
        None,
    )?;
    expect(answer.status == 200, || {
        format!("GET /api/messages/{id}: {} {}", answer.status, answer.body)
    })?;
    answer.parsed()
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
