//! `/mcp` on workerd, driven by the official clients: the TypeScript SDK's
//! `Client` (npm `@modelcontextprotocol/sdk`), the Python SDK (`mcp` from
//! PyPI, installed into `.inboxkit/mcp-python`), the Inspector's CLI and the
//! conformance suite in server mode (through a local proxy that adds the
//! key, since it has no header option). The client scripts are in
//! `xtask/mcp/`.

use super::{Suite, Watchdog, expect};
use crate::api::{call, deliver_ok};
use crate::{Result, root, run, step};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Python SDK's version (the one whose results BENCHMARKS.md records).
const PYTHON_MCP: &str = "mcp==2.3.0";
const TOOLS: usize = 14;
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn scripts() -> PathBuf {
    root().join("xtask").join("mcp")
}

/// What a client script is told the inbox holds.
struct Plan {
    key: String,
    plan: Json,
    to: String,
}

/// An inbox with a verification mail carrying an image, a text file and a
/// PDF, and a message from a peer inbox (a reply goes to it directly).
fn prepare(suite: &Suite, handle: &str) -> Result<Plan> {
    let client = suite.client();
    let key = suite.inbox(handle)?;
    let peer_handle = format!("{handle}-peer");
    let peer_key = suite.inbox(&peer_handle)?;
    let to = suite.address(handle);
    let peer = suite.address(&peer_handle);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let raw = format!(
        "From: GitHub <noreply@github.com>\r\nTo: {to}\r\nSubject: Your verification code\r\n\
         Message-ID: <mcp-{handle}@github.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Your verification code is 482913.\r\nOr open https://github.com/verify?t=abc\r\n\
         --b\r\nContent-Type: image/png; name=dot.png\r\nContent-Disposition: attachment; filename=dot.png\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
         --b\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\n\
         plain notes\r\n\
         --b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        b64(PNG),
        b64(b"%PDF-1.4 not really\n"),
    );
    deliver_ok(&client, "noreply@github.com", &to, raw.as_bytes())?;
    let sent = call(
        &client,
        &peer_key,
        "POST",
        "/api/messages",
        Some(&json!({"to": to, "subject": "question", "text": "are you there?"})),
    )?;
    expect(sent.status == 201, || {
        format!("the peer's send: {}", sent.body)
    })?;
    let list = call(&client, &key, "GET", "/api/messages", None)?.parsed()?;
    let messages = list["messages"].as_array().ok_or("no message list")?;
    let id_of = |subject: &str| {
        messages
            .iter()
            .find(|m| m["subject"] == subject)
            .and_then(|m| m["id"].as_u64())
            .ok_or_else(|| format!("no message '{subject}' in {list}"))
    };
    let message = id_of("Your verification code")?;
    let from_peer = id_of("question")?;
    let detail = call(
        &client,
        &key,
        "GET",
        &format!("/api/messages/{message}"),
        None,
    )?
    .parsed()?;
    let parts: Vec<Json> = detail["attachments"]
        .as_array()
        .ok_or("no attachments")?
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    expect(parts.len() == 3, || format!("three attachments: {detail}"))?;
    Ok(Plan {
        key,
        plan: json!({"message": message, "fromPeer": from_peer, "peer": peer, "parts": parts}),
        to,
    })
}

fn mcp_url(suite: &Suite) -> String {
    format!("{}/mcp", suite.client().base())
}

/// Runs a client script: when it says it waits, a mail with a new code is
/// delivered; its last line is its report. Killed (its process group)
/// after two minutes.
fn drive(suite: &Suite, mut command: Command, to: &str, what: &str) -> Result<Json> {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting {what}: {e}"))?;
    let pid = child.id();
    let watchdog = Watchdog::start(pid, Duration::from_secs(120));
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut report = None;
    let mut delivered = Ok(());
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("{what}: {e}"))?;
        let Ok(event) = serde_json::from_str::<Json>(&line) else {
            continue;
        };
        match event["event"].as_str() {
            Some("waiting") => {
                // The client's call is on its way: give it a moment to be
                // in place, then send the mail it waits for.
                std::thread::sleep(Duration::from_millis(500));
                let raw = format!(
                    "From: Acme <login@acme.example>\r\nTo: {to}\r\nSubject: Your sign-in code\r\n\
                     Message-ID: <code-{}@acme.example>\r\n\r\nYour sign-in code is 731946.\r\n",
                    event["after"]
                );
                delivered = deliver_ok(&suite.client(), "login@acme.example", to, raw.as_bytes());
            }
            Some("done") => report = Some(event),
            _ => {}
        }
    }
    let status = child.wait().map_err(|e| format!("{what}: {e}"))?;
    watchdog.stop();
    let errors = errors.join().unwrap_or_default();
    delivered?;
    if !status.success() {
        return Err(format!("{what} exited {status}: {}", tail(&errors)));
    }
    report.ok_or_else(|| format!("{what} gave no report: {}", tail(&errors)))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// What every client's report must show.
fn check_report(report: &Json, what: &str) -> Result<()> {
    let tools = report["tools"].as_array().ok_or("no tool list")?;
    expect(tools.len() == TOOLS, || format!("{what} listed {report}"))?;
    let mut called: Vec<&str> = report["called"]
        .as_array()
        .ok_or("no called list")?
        .iter()
        .filter_map(Json::as_str)
        .collect();
    called.sort_unstable();
    called.dedup();
    expect(called.len() == TOOLS, || {
        format!("{what} called only {called:?}")
    })?;
    expect(report["code"] == "482913", || {
        format!("{what}: code {report}")
    })?;
    expect(report["waited"]["code"] == "731946", || {
        format!("{what}: the mail delivered while it waited: {report}")
    })?;
    let kinds = report["attachments"].as_object().ok_or("no attachments")?;
    let mut kinds: Vec<&str> = kinds.values().filter_map(Json::as_str).collect();
    kinds.sort_unstable();
    expect(kinds == ["image", "resource", "text"], || {
        format!("{what}: attachment blocks {kinds:?}")
    })?;
    expect(report["deletedIsError"] == true, || {
        format!("{what}: a deleted message reads as a tool error: {report}")
    })
}

pub(super) fn typescript_sdk(suite: &mut Suite) -> Result<()> {
    let plan = prepare(suite, "e2e-mcp-ts")?;
    let tools = suite.session().tools();
    let mut command = Command::new(tools.node_bin.join("node"));
    command
        .current_dir(root())
        .env("PATH", tools.path_with_node())
        .arg(scripts().join("ts-client.mjs"))
        .args([mcp_url(suite), plan.key.clone(), plan.plan.to_string()]);
    let report = drive(suite, command, &plan.to, "the TypeScript SDK client")?;
    check_report(&report, "the TypeScript SDK")?;
    let latency = &report["latency"];
    println!(
        "        TypeScript SDK negotiated {}; median of {} rounds: tools/call whoami {:.1} ms, \
         GET /api/me {:.1} ms; wait_for_message answered {} ms after it was called",
        report["negotiated"],
        latency["rounds"],
        latency["mcpWhoamiMs"].as_f64().unwrap_or(f64::NAN),
        latency["restMeMs"].as_f64().unwrap_or(f64::NAN),
        report["waited"]["ms"],
    );
    expect(report["negotiated"] == "2025-11-25", || {
        format!("negotiated {}", report["negotiated"])
    })
}

fn python() -> Result<PathBuf> {
    let venv = root().join(".inboxkit").join("mcp-python");
    let bin = venv.join("bin").join("python");
    let marker = venv.join(format!(".installed-{PYTHON_MCP}"));
    if !bin.exists() || !marker.exists() {
        step(&format!(
            "installing {PYTHON_MCP} into .inboxkit/mcp-python (once)"
        ));
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", PYTHON_MCP]))?;
        std::fs::write(&marker, b"").map_err(|e| e.to_string())?;
    }
    Ok(bin)
}

pub(super) fn python_sdk(suite: &mut Suite) -> Result<()> {
    let python = python()?;
    let mut negotiated = Vec::new();
    for (mode, handle, wanted) in [
        ("auto", "e2e-mcp-py", "2026-07-28"),
        ("legacy", "e2e-mcp-py-legacy", "2025-11-25"),
    ] {
        let plan = prepare(suite, handle)?;
        let mut command = Command::new(&python);
        command
            .current_dir(root())
            .arg(scripts().join("py_client.py"))
            .args([mcp_url(suite), plan.key.clone(), plan.plan.to_string()])
            .arg(mode);
        let what = format!("the Python SDK client (mode={mode})");
        let report = drive(suite, command, &plan.to, &what)?;
        check_report(&report, &what)?;
        expect(report["negotiated"] == wanted, || {
            format!("{what} negotiated {}, not {wanted}", report["negotiated"])
        })?;
        negotiated.push(format!("{mode}: {}", report["negotiated"]));
    }
    println!(
        "        Python SDK ({PYTHON_MCP}) negotiated {}",
        negotiated.join(", ")
    );
    Ok(())
}

pub(super) fn inspector_cli(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-mcp-inspector")?;
    let tools = suite.session().tools();
    // Through a proxy that only watches, to see the version it speaks (the
    // key goes as the CLI's own --header).
    let proxy = Proxy::start(suite.session().port(), None)?;
    let url = format!("http://127.0.0.1:{}/mcp", proxy.port);
    let output = Command::new(tools.node_bin.join("mcp-inspector"))
        .current_dir(root())
        .env("PATH", tools.path_with_node())
        .env(
            "MCP_CATALOG_PATH",
            root().join(".inboxkit").join("mcp-inspector.json"),
        )
        .args([
            "--cli",
            &url,
            "--transport",
            "http",
            "--method",
            "tools/list",
        ])
        .arg("--header")
        .arg(format!("Authorization: Bearer {key}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("starting the inspector: {e}"))?;
    let versions = proxy.stop();
    println!("        Inspector CLI sent MCP-Protocol-Version {versions:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    expect(output.status.success(), || {
        format!(
            "the inspector exited {}: {}{}",
            output.status,
            tail(&stdout),
            tail(&String::from_utf8_lossy(&output.stderr))
        )
    })?;
    let listed: Json = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("the inspector printed no JSON ({e}): {}", tail(&stdout)))?;
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .ok_or_else(|| format!("no tools in {listed}"))?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    expect(
        names.len() == TOOLS && names.contains(&"wait_for_message"),
        || format!("the inspector listed {names:?}"),
    )
}

pub(super) fn conformance(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-mcp-conformance")?;
    let proxy = Proxy::start(suite.session().port(), Some(&key))?;
    let tools = suite.session().tools();
    let results = suite.session().work().join("conformance");
    let output = Command::new(tools.node_bin.join("conformance"))
        .current_dir(root())
        .env("PATH", tools.path_with_node())
        .args([
            "server",
            "--url",
            &format!("http://127.0.0.1:{}/mcp", proxy.port),
        ])
        .arg("--expected-failures")
        .arg(scripts().join("conformance-expected-failures.yaml"))
        .arg("--output-dir")
        .arg(&results)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("starting the conformance suite: {e}"))?;
    let versions = proxy.stop();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("passed") || l.contains("failed") || l.contains("Total"))
        .collect();
    println!("        conformance: {}", summary.join(" | "));
    println!("        conformance sent MCP-Protocol-Version {versions:?}");
    expect(output.status.success(), || {
        format!(
            "the conformance suite exited {} (results in {}): {}{}",
            output.status,
            results.display(),
            tail(&stdout),
            tail(&String::from_utf8_lossy(&output.stderr))
        )
    })
}

/// A local HTTP proxy on 127.0.0.1 (one request per connection) that notes
/// each `MCP-Protocol-Version` a client sends and, given a key, puts it in
/// every request in place of the client's `Authorization`.
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    versions: Arc<Mutex<BTreeSet<String>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Proxy {
    fn start(upstream: u16, key: Option<&str>) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let versions = Arc::new(Mutex::new(BTreeSet::new()));
        let auth = key.map(|key| format!("Bearer {key}"));
        let thread = {
            let stop = stop.clone();
            let versions = versions.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let auth = auth.clone();
                            let versions = versions.clone();
                            std::thread::spawn(move || {
                                let _ = forward(stream, upstream, auth.as_deref(), &versions);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Ok(Proxy {
            port,
            stop,
            versions,
            thread,
        })
    }

    /// Stops it; the protocol versions the client sent.
    fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
        let seen = self.versions.lock().map(|v| v.clone()).unwrap_or_default();
        seen.into_iter().collect()
    }
}

fn forward(
    mut client: TcpStream,
    upstream: u16,
    auth: Option<&str>,
    versions: &Mutex<BTreeSet<String>>,
) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(90)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut length = 0usize;
    let mut headers = String::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name == "content-length" {
            length = value.parse().unwrap_or(0);
        }
        if name == "mcp-protocol-version"
            && let Ok(mut seen) = versions.lock()
        {
            seen.insert(value.to_owned());
        }
        let replaced = name == "authorization" && auth.is_some();
        if name == "connection" || name == "keep-alive" || replaced {
            continue;
        }
        headers.push_str(line);
        headers.push_str("\r\n");
    }
    let mut body = vec![0u8; length];
    client.read_exact(&mut body)?;
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    let auth = auth.map_or(String::new(), |auth| format!("authorization: {auth}\r\n"));
    write!(
        server,
        "{request_line}\r\n{headers}{auth}connection: close\r\n\r\n"
    )?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    client.write_all(&answer)?;
    client.shutdown(std::net::Shutdown::Both)
}
