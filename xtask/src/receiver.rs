//! A local HTTP endpoint for the end-to-end suite: it plays webhook receivers
//! and the HTTP relay (Resend's API), records every request, answers from a
//! script, and checks webhook signatures with code that is not the service's
//! (the `hmac-sha256` crate rather than RustCrypto's `hmac`).

use crate::Result;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    /// Names lowercased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON): for comparisons, where
    /// a body that is not JSON shows as a mismatch.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Per path: the answers (delay, status, body) to give, in order; then 200.
    scripts: BTreeMap<String, VecDeque<(Duration, u16, String)>>,
}

/// The endpoint, listening on 127.0.0.1 until dropped.
pub(crate) struct Receiver {
    pub(crate) base: String,
    state: Arc<Mutex<State>>,
    stopping: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) fn start() -> Result<Receiver> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("binding the receiver: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let state = Arc::new(Mutex::new(State::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (shared, stop) = (Arc::clone(&state), Arc::clone(&stopping));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let shared = Arc::clone(&shared);
                    std::thread::spawn(move || {
                        let _ = serve(stream, &shared);
                    });
                }
            }
        });
        Ok(Receiver {
            base: format!("http://127.0.0.1:{port}"),
            state,
            stopping,
        })
    }

    /// The next requests to `path` get these answers.
    pub(crate) fn script(&self, path: &str, answers: &[(u16, &str)]) {
        lock(&self.state)
            .scripts
            .entry(path.to_owned())
            .or_default()
            .extend(
                answers
                    .iter()
                    .map(|(s, b)| (Duration::ZERO, *s, (*b).to_owned())),
            );
    }

    /// The next request to `path` is answered 200, but only after `delay`.
    pub(crate) fn script_slow(&self, path: &str, delay: Duration) {
        lock(&self.state)
            .scripts
            .entry(path.to_owned())
            .or_default()
            .push_back((delay, 200, "{}".to_owned()));
    }

    /// The requests to `path` so far.
    pub(crate) fn received(&self, path: &str) -> Vec<Received> {
        lock(&self.state)
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` has had `count` requests (or more), for at most `limit`.
    pub(crate) fn wait_for(
        &self,
        path: &str,
        count: usize,
        limit: Duration,
    ) -> Result<Vec<Received>> {
        let started = Instant::now();
        loop {
            let received = self.received(path);
            if received.len() >= count {
                return Ok(received);
            }
            if started.elapsed() > limit {
                return Err(format!(
                    "{path} got {} request(s) within {limit:?}, expected {count}",
                    received.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads one HTTP/1.1 request (Content-Length framing), records it, answers.
fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (delay, status, answer) = {
        let mut state = lock(state);
        state.received.push(Received {
            path: path.clone(),
            headers,
            body,
        });
        state
            .scripts
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .unwrap_or((Duration::ZERO, 200, "{}".to_owned()))
    };
    std::thread::sleep(delay);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    stream.flush()
}

/// Checks both signatures of a webhook delivery against the secret
/// (`whsec_` + base64 key), recomputing them independently.
pub(crate) fn verify_signatures(delivery: &Received, secret: &str) -> Result<()> {
    let key = secret
        .strip_prefix("whsec_")
        .ok_or_else(|| format!("the secret {secret:?} does not start with whsec_"))
        .and_then(|k| {
            STANDARD
                .decode(k)
                .map_err(|e| format!("the secret is not whsec_ + base64: {e}"))
        })?;
    let hex: String = hmac_sha256::HMAC::mac(&delivery.body, &key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let inboxkit = delivery.header("x-inboxkit-signature");
    if inboxkit != format!("sha256={hex}") {
        return Err(format!(
            "X-InboxKit-Signature {inboxkit:?} does not match the body"
        ));
    }
    let id = delivery.header("webhook-id");
    let timestamp = delivery.header("webhook-timestamp");
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(&delivery.body);
    let expected = STANDARD.encode(hmac_sha256::HMAC::mac(&signed, &key));
    let standard = delivery.header("webhook-signature");
    // The header may carry several space-separated signatures.
    if !standard.split(' ').any(|s| s == format!("v1,{expected}")) {
        return Err(format!("webhook-signature {standard:?} does not match"));
    }
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| format!("webhook-timestamp {timestamp:?}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if (now - seconds).abs() > 300 {
        return Err(format!(
            "webhook-timestamp {seconds} is not within 5 minutes of now ({now})"
        ));
    }
    Ok(())
}
