//! The web console in a real browser: Debian's Chromium (installed through
//! apt when missing) driven by `playwright-core` from npm, against this
//! `wrangler dev`. The script is `xtask/console/console-test.mjs`; the
//! hostile mails it opens are `xtask/console/hostile/*.eml`.

use super::{Suite, Watchdog, expect};
use crate::api::call;
use crate::tools::ensure_chromium;
use crate::{Result, root};
use serde_json::{Value as Json, json};
use std::io::Read;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The whole browser run may take this long before its process group is killed.
const DEADLINE: Duration = Duration::from_secs(300);

pub(super) fn in_a_browser(suite: &mut Suite) -> Result<()> {
    let chromium = ensure_chromium()?;
    let client = suite.client();
    let full = suite.inbox("e2e-console")?;
    suite.inbox("e2e-console-peer")?;
    let created = call(
        &client,
        &full,
        "POST",
        "/api/keys",
        Some(&json!({"name": "viewer", "scope": "read"})),
    )?;
    expect(created.status == 201, || {
        format!("creating a read key: {} {}", created.status, created.body)
    })?;
    let read = created.string("apiKey")?;
    let shots = root().join("target").join("console-screenshots");
    let plan = json!({
        "base": client.base(),
        "full": full,
        "read": read,
        "address": suite.address("e2e-console"),
        "peer": suite.address("e2e-console-peer"),
        "hostile": root().join("xtask").join("console").join("hostile"),
        "shots": shots,
        "axe": root().join("node_modules").join("axe-core").join("axe.min.js"),
        "chromium": chromium,
    });
    let tools = suite.session().tools();
    let mut command = Command::new(tools.node_bin.join("node"));
    command
        .current_dir(root())
        .env("PATH", tools.path_with_node())
        .arg(
            root()
                .join("xtask")
                .join("console")
                .join("console-test.mjs"),
        )
        .arg(plan.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let (report, delivered) = drive(command);
    // Counted whatever the outcome: the log check compares them with the log.
    for _ in 0..delivered {
        client.mail_counts().count(false);
    }
    let report = report?;
    let hostile = report["hostile"].as_array().ok_or("no hostile results")?;
    expect(hostile.len() >= 30, || {
        format!("{} hostile mails opened", hostile.len())
    })?;
    let screenshots = report["screenshots"].as_array().ok_or("no screenshots")?;
    expect(screenshots.len() >= 6, || {
        format!("screenshots: {screenshots:?}")
    })?;
    let axe = report["axe"].as_object().ok_or("no axe results")?;
    let pages: Vec<&str> = axe.keys().map(String::as_str).collect();
    for page in [
        "sign-in", "threads", "message", "compose", "search", "messages", "settings",
    ] {
        expect(pages.contains(&page), || {
            format!("axe did not check {page}: {pages:?}")
        })?;
    }
    let minor: u64 = axe.values().filter_map(|v| v["violations"].as_u64()).sum();
    let found: Vec<String> = axe
        .iter()
        .filter(|(_, v)| v["violations"].as_u64().is_some_and(|n| n > 0))
        .map(|(page, v)| format!("{page}: {}", v["ids"]))
        .collect();
    println!(
        "        {} hostile mails opened (no script, no request off the deployment); \
         {} policy or sandbox reports of something stopped; axe on {} pages: 0 serious, \
         {minor} minor or moderate; {} screenshots in {}",
        hostile.len(),
        report["blockedReports"],
        pages.len(),
        screenshots.len(),
        root().join("target").join("console-screenshots").display(),
    );
    if !found.is_empty() {
        println!(
            "        axe's minor or moderate findings: {}",
            found.join("; ")
        );
    }
    Ok(())
}

/// Runs the browser script, killing its process group after [`DEADLINE`];
/// its last stdout line is its report. Also answers how many mails it
/// delivered (each announced on a line of its own).
fn drive(command: Command) -> (Result<Json>, usize) {
    let mut delivered = 0;
    let report = drive_counting(command, &mut delivered);
    (report, delivered)
}

/// [`drive`], counting the mails the script says it delivered.
fn drive_counting(mut command: Command, delivered: &mut usize) -> Result<Json> {
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting the browser check: {e}"))?;
    let pid = child.id();
    let watchdog = Watchdog::start(pid, DEADLINE);
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut out = String::new();
    let _ = stdout.read_to_string(&mut out);
    *delivered = out
        .lines()
        .filter(|line| line.trim() == r#"{"event":"delivered"}"#)
        .count();
    let status = child
        .wait()
        .map_err(|e| format!("the browser check: {e}"))?;
    watchdog.stop();
    // Chromium may leave helpers behind in the group: end them too.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = errors.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "the browser check failed ({status}):\n{}",
            tail.join("\n")
        ));
    }
    let last = out
        .lines()
        .last()
        .ok_or("the browser check printed no report")?;
    serde_json::from_str(last).map_err(|e| format!("the browser check's report: {e}: {last}"))
}
