//! Starting and stopping `wrangler dev` with both Workers.

use crate::build::WORKERS;
use crate::http::Client;
use crate::tools::Tools;
use crate::{Result, root};
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take before we give up (it is ~2 s when warm).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A free TCP port on 127.0.0.1 (bound, read and released).
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding a port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn dev_command(tools: &Tools, port: u16, state: &Path) -> Result<Command> {
    let mut command = tools.wrangler();
    command.arg("dev");
    for (_, config) in WORKERS {
        command.args(["--config", config]);
    }
    command
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port()?.to_string()])
        .arg("--persist-to")
        .arg(state)
        .arg("--show-interactive-dev-session=false");
    Ok(command)
}

/// `wrangler dev` running in its own process group, stopped (by group id)
/// when dropped.
#[derive(Debug)]
pub(crate) struct DevServer {
    child: Child,
    /// The base URL, `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// Where its output goes.
    pub(crate) log: PathBuf,
}

impl DevServer {
    /// Starts wrangler dev on `port` with state in `state` and waits until the
    /// router answers `/api/health`.
    pub(crate) fn start(tools: &Tools, port: u16, state: &Path, log: &Path) -> Result<DevServer> {
        let out = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = dev_command(tools, port, state)?
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting wrangler dev: {e}"))?;
        let mut server = DevServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log: log.to_owned(),
        };
        if let Err(error) = server.wait_ready() {
            let output = std::fs::read_to_string(log).unwrap_or_default();
            server.stop();
            return Err(format!("{error}\n--- wrangler output ---\n{output}"));
        }
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let client = Client::new(&self.base);
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("wrangler dev exited early ({status})"));
            }
            if client.get("/api/health").is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "wrangler dev was not ready within {READY_TIMEOUT:?}"
        ))
    }

    /// The process group id (the child leads its own group).
    pub(crate) fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after 5 s.
    pub(crate) fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        signal_group(self.pgid(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                // workerd may outlive wrangler briefly; make sure the group is gone.
                signal_group(self.pgid(), "KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        signal_group(self.pgid(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `signal` to process group `pgid` (never by name).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// `cargo xtask dev`: serve in the foreground until Ctrl-C (wrangler shares our
/// process group, so the terminal's Ctrl-C stops it too).
pub(crate) fn serve_foreground(tools: &Tools, port: u16, state: &Path) -> Result<()> {
    std::fs::create_dir_all(state).map_err(|e| format!("creating {}: {e}", state.display()))?;
    let mail_domain = mail_domain()?;
    let mut child = dev_command(tools, port, state)?
        .spawn()
        .map_err(|e| format!("starting wrangler dev: {e}"))?;
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new(&base);
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("wrangler dev exited ({status})"));
        }
        if client.get("/api/health").is_ok_and(|r| r.status == 200) {
            break;
        }
        if started.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            return Err(format!(
                "wrangler dev was not ready within {READY_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "
InboxKit is running.
  base URL     {base}
  mail domain  {mail_domain}
  state        {state}

Sign up:
  curl -s -X POST {base}/api/signup -H 'content-type: application/json' -d '{{\"handle\":\"my-agent\"}}'

Who am I (use the apiKey printed by signup):
  curl -s {base}/api/me -H 'authorization: Bearer ik_...'

Deliver a test mail to my-agent@{mail_domain} (wrangler's local email endpoint):
  curl -s -X POST '{base}/cdn-cgi/handler/email?from=sender@example.com&to=my-agent@{mail_domain}' \\
    --data-binary $'From: sender@example.com\\r\\nTo: my-agent@{mail_domain}\\r\\nMessage-ID: <1@example.com>\\r\\nSubject: hello\\r\\n\\r\\nHi there\\r\\n'

Press Ctrl-C to stop.",
        state = state.display()
    );
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("wrangler dev exited ({status})"))
    }
}

/// MAIL_DOMAIN from the router's wrangler.toml.
pub(crate) fn mail_domain() -> Result<String> {
    let config = std::fs::read_to_string(root().join("wrangler.toml"))
        .map_err(|e| format!("reading wrangler.toml: {e}"))?;
    config
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once('=')?;
            (name.trim() == protocol::bindings::MAIL_DOMAIN_VAR)
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .ok_or_else(|| "MAIL_DOMAIN is not set in wrangler.toml".to_owned())
}
