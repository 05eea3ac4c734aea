//! End-to-end checks of the event socket (`GET /api/events`, a WebSocket) on
//! real workerd, through a real WebSocket client (tungstenite): both ways to
//! authenticate, a bad key refused before the upgrade, live events of mail
//! received and sent, replay after a reconnection, ping, invalid frames, and
//! replay across a restart of wrangler dev.

use super::{Suite, expect};
use crate::Result;
use crate::api::{call, deliver_ok, small_message};
use crate::http::Client;
use serde_json::{Value as Json, json};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

/// How long an expected frame may take to come.
const FRAME_WITHIN: Duration = Duration::from_secs(10);

/// How a socket authenticates.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    /// `Authorization: Bearer <key>`.
    Bearer(&'a str),
    /// `Sec-WebSocket-Protocol: inboxkit.key.<key>`, as a browser must.
    Subprotocol(&'a str),
    /// No key at all.
    Nothing,
}

/// An open event socket.
struct Socket {
    ws: WebSocket<TcpStream>,
    /// The `Sec-WebSocket-Protocol` the server answered the upgrade with.
    protocol: Option<String>,
}

/// How an upgrade went: a socket, or the HTTP answer that refused it.
enum Upgrade {
    Open(Box<Socket>),
    Refused { status: u16, body: String },
}

/// `ws://` for the client's `http://` base URL, on `/api/events`.
fn events_url(client: &Client) -> Result<String> {
    client
        .base()
        .strip_prefix("http://")
        .map(|host| format!("ws://{host}/api/events"))
        .ok_or_else(|| format!("the base URL {} is not http://", client.base()))
}

/// Opens `/api/events` with `auth`. The TCP stream reads with a timeout, so
/// that a server that never answers fails instead of hanging.
fn upgrade(client: &Client, auth: Auth<'_>) -> Result<Upgrade> {
    let url = events_url(client)?;
    let host = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    let address: SocketAddr = host
        .parse()
        .map_err(|e| format!("the address {host:?}: {e}"))?;
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .map_err(|e| format!("connecting to {host}: {e}"))?;
    stream
        .set_read_timeout(Some(FRAME_WITHIN))
        .and_then(|()| stream.set_write_timeout(Some(FRAME_WITHIN)))
        .map_err(|e| format!("setting socket timeouts: {e}"))?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("the request for {url}: {e}"))?;
    let header = match auth {
        Auth::Bearer(key) => Some(("authorization", format!("Bearer {key}"))),
        Auth::Subprotocol(key) => Some(("sec-websocket-protocol", format!("inboxkit.key.{key}"))),
        Auth::Nothing => None,
    };
    if let Some((name, value)) = header {
        request.headers_mut().insert(
            name,
            HeaderValue::from_str(&value).map_err(|e| format!("the {name} header: {e}"))?,
        );
    }
    match tungstenite::client(request, stream) {
        Ok((ws, response)) => Ok(Upgrade::Open(Box::new(Socket {
            ws,
            protocol: response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }))),
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => Ok(Upgrade::Refused {
            status: response.status().as_u16(),
            body: response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        }),
        Err(HandshakeError::Failure(e)) => Err(format!("the upgrade of {url} failed: {e}")),
        Err(HandshakeError::Interrupted(_)) => Err(format!(
            "the upgrade of {url} got no answer within {} s",
            FRAME_WITHIN.as_secs()
        )),
    }
}

/// Opens `/api/events` with `auth`; a refusal fails.
fn connect(client: &Client, auth: Auth<'_>) -> Result<Socket> {
    match upgrade(client, auth)? {
        Upgrade::Open(socket) => Ok(*socket),
        Upgrade::Refused { status, body } => Err(format!(
            "the upgrade of /api/events ({auth:?}) was refused: {status} {body}"
        )),
    }
}

impl Socket {
    fn send_text(&mut self, text: &str) -> Result<()> {
        self.ws
            .send(Message::text(text))
            .map_err(|e| format!("sending {text:?}: {e}"))
    }

    /// The next text frame, as JSON, within [`FRAME_WITHIN`] (`what` names
    /// it in the error). Control frames are passed over; a binary frame, a
    /// close, a frame that is not JSON, or nothing in time fails.
    fn next(&mut self, what: &str) -> Result<Json> {
        let deadline = Instant::now() + FRAME_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "no frame within {} s while waiting for {what}",
                    FRAME_WITHIN.as_secs()
                ));
            }
            self.ws
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| format!("setting the read timeout: {e}"))?;
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str()).map_err(|e| {
                        format!("waiting for {what}, a frame that is not JSON ({e}): {text:?}")
                    });
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Binary(bytes)) => {
                    return Err(format!(
                        "waiting for {what}, a binary frame of {} bytes",
                        bytes.len()
                    ));
                }
                Ok(Message::Close(frame)) => {
                    return Err(format!(
                        "waiting for {what}, the server closed the socket: {frame:?}"
                    ));
                }
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("waiting for {what}: {e}")),
            }
        }
    }

    /// The next frame, which must be the event `kind` of message `id`, live
    /// (no `replay: true`) or replayed as `replay` says.
    fn event(&mut self, kind: &str, id: u64, replay: bool) -> Result<()> {
        let what = format!(
            "{}{kind} of message {id}",
            if replay { "the replayed " } else { "" }
        );
        let frame = self.next(&what)?;
        let direction = if kind == "message.sent" {
            "outbound"
        } else {
            "inbound"
        };
        let replay_ok = if replay {
            frame["replay"] == true
        } else {
            frame.get("replay").is_none() || frame["replay"] == false
        };
        expect(
            frame["type"] == kind
                && frame["message"]["id"] == id
                && frame["message"]["direction"] == direction
                && frame["message"]["receivedAt"].is_string()
                && replay_ok,
            || format!("waiting for {what}, got {frame}"),
        )
    }

    /// Sends `subscribe` after `after`; the next frames must be the events
    /// `replayed` (kind and id, oldest first, each with `replay: true`),
    /// then `subscribed`.
    fn subscribe(&mut self, after: u64, replayed: &[(&str, u64)]) -> Result<()> {
        self.send_text(&json!({"type": "subscribe", "after": after}).to_string())?;
        for (kind, id) in replayed {
            self.event(kind, *id, true)?;
        }
        let done = self.next("subscribed")?;
        expect(
            done == json!({"type": "subscribed", "after": after, "replayed": replayed.len(), "more": false}),
            || {
                format!(
                    "after the {} replayed events for subscribe after {after}, got {done} (expected subscribed, replayed {}, more false)",
                    replayed.len(),
                    replayed.len()
                )
            },
        )
    }

    /// `{"type":"ping"}` (exactly: the runtime's auto-response matches the
    /// text) answers `{"type":"pong"}`.
    fn ping(&mut self) -> Result<()> {
        self.send_text(r#"{"type":"ping"}"#)?;
        let pong = self.next("pong")?;
        expect(pong == json!({"type": "pong"}), || {
            format!("a ping was answered {pong}")
        })
    }

    fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}

/// The id of the inbox's newest message.
fn newest(client: &Client, key: &str) -> Result<u64> {
    let list = call(client, key, "GET", "/api/messages?limit=1", None)?;
    list.parsed()?["messages"][0]["id"]
        .as_u64()
        .ok_or_else(|| format!("no message listed: {}", list.body))
}

/// A bad key is refused with 401 before the upgrade, whichever way it comes.
pub(super) fn events_refuse_a_bad_key(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let unknown = format!("ik_{}", "A".repeat(43));
    for auth in [
        Auth::Bearer(&unknown),
        Auth::Subprotocol(&unknown),
        Auth::Bearer("ik_short"),
        Auth::Nothing,
    ] {
        match upgrade(&client, auth)? {
            Upgrade::Refused { status: 401, .. } => {}
            Upgrade::Refused { status, body } => {
                return Err(format!(
                    "the upgrade with {auth:?} answered {status} {body}, not 401"
                ));
            }
            Upgrade::Open(socket) => {
                socket.close();
                return Err(format!("the upgrade with {auth:?} was accepted"));
            }
        }
    }
    Ok(())
}

/// Live events by both ways in, replay after a reconnection, ping, invalid
/// frames, and replay across a restart of wrangler dev.
pub(super) fn events_live_and_replayed(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-events")?;
    let to = suite.address("e2e-events");
    let client = suite.client();
    let deliver = |n: usize| {
        deliver_ok(
            &client,
            "s@example.com",
            &to,
            &small_message(&to, "events", n),
        )
    };

    // (a) By the Authorization header: mail received, mail sent.
    let mut bearer = connect(&client, Auth::Bearer(&key))?;
    deliver(1)?;
    let received = newest(&client, &key)?;
    bearer.event("message.received", received, false)?;
    let sent = call(
        &client,
        &key,
        "POST",
        "/api/messages",
        Some(&json!({"to": "partner@example.com", "subject": "events", "text": "sent"})),
    )?;
    expect(sent.status == 201, || {
        format!("the send: {} {}", sent.status, sent.body)
    })?;
    let sent_id = sent.number("id")?;
    bearer.event("message.sent", sent_id, false)?;

    // (b) By the subprotocol, as a browser must: echoed back; both sockets
    // get the next event.
    let mut browser = connect(&client, Auth::Subprotocol(&key))?;
    let offered = format!("inboxkit.key.{key}");
    expect(
        browser.protocol.as_deref() == Some(offered.as_str()),
        || {
            format!(
                "the upgrade by subprotocol answered Sec-WebSocket-Protocol {:?}, not the one offered",
                browser.protocol
            )
        },
    )?;
    deliver(2)?;
    let mut last = newest(&client, &key)?;
    bearer.event("message.received", last, false)?;
    browser.event("message.received", last, false)?;
    browser.close();

    // Ping, and frames the server does not take: an error each, and the
    // socket still works.
    bearer.ping()?;
    for bad in [
        "not json",
        "{}",
        r#"{"type":"nonsense"}"#,
        r#"{"type":"subscribe","after":"x"}"#,
        r#"{"type":"subscribe","after":-1}"#,
        "[]",
    ] {
        bearer.send_text(bad)?;
        let answer = bearer.next(&format!("the error for {bad:?}"))?;
        expect(
            answer["type"] == "error" && answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            || format!("the client frame {bad:?} was answered {answer}"),
        )?;
    }
    bearer
        .ws
        .send(Message::binary(vec![0u8, 159, 146, 150]))
        .map_err(|e| format!("sending a binary frame: {e}"))?;
    let answer = bearer.next("the error for a binary frame")?;
    expect(answer["type"] == "error", || {
        format!("a binary client frame was answered {answer}")
    })?;
    bearer.ping()?;
    deliver(3)?;
    last = newest(&client, &key)?;
    bearer.event("message.received", last, false)?;
    bearer.close();

    // Disconnected: three mails; reconnected, a subscribe replays them.
    for n in 4..=6 {
        deliver(n)?;
    }
    let mut again = connect(&client, Auth::Bearer(&key))?;
    again.subscribe(
        last,
        &[
            ("message.received", last + 1),
            ("message.received", last + 2),
            ("message.received", last + 3),
        ],
    )?;
    again.close();
    last += 3;
    // From further back, the sent message replays as message.sent.
    let mut whole = connect(&client, Auth::Subprotocol(&key))?;
    let history: Vec<(&str, u64)> = (received + 1..=last)
        .map(|id| {
            let kind = if id == sent_id {
                "message.sent"
            } else {
                "message.received"
            };
            (kind, id)
        })
        .collect();
    whole.subscribe(received, &history)?;
    whole.close();

    // Across a restart: one mail before it, one after; the reconnected
    // socket replays both, then gets the next live.
    deliver(7)?;
    let seconds = suite.restart()?;
    println!("        (restarted with the socket closed, in {seconds:.1}s)");
    let client = suite.client();
    deliver_ok(
        &client,
        "s@example.com",
        &to,
        &small_message(&to, "events", 8),
    )?;
    let started = Instant::now();
    let mut after_restart = loop {
        match connect(&client, Auth::Bearer(&key)) {
            Ok(socket) => break socket,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                return Err(format!("no event socket within 30 s of the restart: {e}"));
            }
        }
    };
    after_restart.subscribe(
        last,
        &[
            ("message.received", last + 1),
            ("message.received", last + 2),
        ],
    )?;
    deliver_ok(
        &client,
        "s@example.com",
        &to,
        &small_message(&to, "events", 9),
    )?;
    after_restart.event("message.received", last + 3, false)?;
    after_restart.close();
    Ok(())
}
