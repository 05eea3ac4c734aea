//! The Durable Object class: the only module of inbox-do that names `worker::`.
//!
//! It adapts DO SQLite to the [`Sql`] port (including atomic transactions via
//! `storage.transactionSync`, which workers-rs does not expose), implements the
//! [`Platform`] port (clock, fetch with a timeout, the `send_email` binding,
//! other inboxes, the alarm, timers for the service's own timeouts, and
//! `deleteAll` for limiters that clear themselves), reads the configuration,
//! and hands each request and each alarm to [`InboxService`].

use crate::{
    Answer, HttpAnswer, HttpCall, InboxConfig, InboxService, Platform, PlatformError, RawMessage,
};
use futures_util::StreamExt as _;
use futures_util::future::{Either, select};
use protocol::limits::MAX_EVENT_SOCKETS;
use protocol::wire::{INBOX_RPC_URL, InboxRequest, REQUEST_HEADER, encode_request};
use protocol::{ApiError, ErrorCode, Reply, Timestamp, bindings};
use schema::{Rows, Sql, SqlError, Value};
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::ScopedClosure;
use wasm_bindgen::prelude::*;
use worker::{
    AbortController, Date, Delay, DurableObject, EmailMessage, Env, Fetch, Headers, Method,
    Request, RequestInit, RequestRedirect, Response, ResponseBody, Result, ScheduledTime,
    SqlStorage, SqlStorageValue, State, Storage, WebSocket, WebSocketIncomingMessage,
    WebSocketPair, durable_object,
};

/// The ping frame a live socket's client sends, and the runtime's answer.
const PING: &str = r#"{"type":"ping"}"#;
const PONG: &str = r#"{"type":"pong"}"#;

/// The most of an outbound HTTP answer's body that is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[wasm_bindgen]
extern "C" {
    /// `DurableObjectStorage`, seen only for the method workers-rs lacks.
    #[wasm_bindgen(extends = js_sys::Object)]
    #[derive(Debug, Clone)]
    type TransactionalStorage;

    /// Runs the callback in a transaction; a throw from it rolls everything back.
    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(
        this: &TransactionalStorage,
        body: &ScopedClosure<'_, dyn FnMut() -> std::result::Result<(), JsValue>>,
    ) -> std::result::Result<JsValue, JsValue>;
}

/// The Durable Object hosting one inbox.
#[durable_object]
pub struct InboxObject {
    state: State,
    env: Env,
    service: InboxService,
}

impl std::fmt::Debug for InboxObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxObject").finish_non_exhaustive()
    }
}

impl DurableObject for InboxObject {
    fn new(state: State, env: Env) -> Self {
        install_logger();
        let var = |name: &str| {
            env.var(name)
                .map(|v| v.to_string())
                .or_else(|_| env.secret(name).map(|v| v.to_string()))
                .ok()
        };
        let has_send_email = env.send_email(bindings::SEND_EMAIL_BINDING).is_ok();
        let config = InboxConfig::from_environment(var, has_send_email);
        // `{"type":"ping"}` is answered by the runtime itself, without
        // waking a hibernating object.
        match worker::worker_sys::WebSocketRequestResponsePair::new(PING, PONG) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(error) => worker::console_error!("inbox: no ping auto-response: {error:?}"),
        }
        InboxObject {
            state,
            env,
            service: InboxService::with_config(schema::MIGRATIONS, config),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // The service holds no borrow across an await; its synchronous steps
        // (a migration among them) never interleave with another request's.
        let request = req
            .headers()
            .get(protocol::wire::REQUEST_HEADER)
            .ok()
            .flatten()
            .unwrap_or_default();
        let body = match req.bytes().await {
            Ok(body) => body,
            Err(error) => {
                worker::console_error!("inbox: reading request body failed: {error}");
                return into_response(Reply::error(&ApiError::internal()));
            }
        };
        let (sql, platform) = self.ports();
        match self
            .service
            .serve_answer(&sql, &platform, &request, &body)
            .await
        {
            Answer::Reply(reply) => into_response(reply),
            Answer::Raw(raw) => stream_response(sql, raw),
            Answer::Socket { protocol, tag } => self.accept_socket(protocol, &tag),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let (sql, platform) = self.ports();
        let frames = match message {
            WebSocketIncomingMessage::String(text) => {
                self.service.socket_frame(&sql, &platform, &text)
            }
            WebSocketIncomingMessage::Binary(_) => {
                self.service.socket_frame(&sql, &platform, "binary")
            }
        };
        for frame in frames {
            // A socket that cannot take it is closing; nothing to do.
            let _ = ws.send_with_str(frame);
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        // Answer the close (wrangler dev has been seen not to); a socket
        // already closed refuses, which is fine. 1005/1006 cannot be sent.
        let code = u16::try_from(code)
            .ok()
            .filter(|c| *c != 1005 && *c != 1006);
        let _ = ws.close(Some(code.unwrap_or(1000)), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, error: worker::Error) -> Result<()> {
        worker::console_warn!("inbox: a live socket failed: {error}");
        let _ = ws.close(Some(1011), Some("error"));
        Ok(())
    }

    async fn alarm(&self) -> Result<Response> {
        let (sql, platform) = self.ports();
        match self.service.alarm(&sql, &platform).await {
            Ok(()) => Response::empty(),
            // The platform retries a failed alarm (from 2 s, up to 6 times);
            // the jobs' own state is in SQL either way.
            Err(error) => Err(worker::Error::RustError(format!("inbox alarm: {error}"))),
        }
    }
}

impl InboxObject {
    /// Accepts a live event socket (hibernatable: an idle one costs the
    /// object nothing) and answers 101, echoing the key's subprotocol.
    fn accept_socket(&self, protocol: Option<String>, tag: &str) -> Result<Response> {
        if self.state.get_websockets().len() >= MAX_EVENT_SOCKETS {
            return into_response(Reply::error(&ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "This inbox already has {MAX_EVENT_SOCKETS} live event sockets open; \
                     close one first."
                ),
            )));
        }
        let pair = WebSocketPair::new()?;
        self.state.accept_websocket_with_tags(&pair.server, &[tag]);
        let response = Response::from_websocket(pair.client)?;
        match protocol {
            Some(protocol) => {
                let headers = Headers::new();
                headers.set("sec-websocket-protocol", &protocol)?;
                Ok(response.with_headers(headers))
            }
            None => Ok(response),
        }
    }

    fn ports(&self) -> (DoSql, DoPlatform<'_>) {
        let storage = self.state.storage();
        let sql = DoSql {
            sql: storage.sql(),
            storage: storage
                .as_raw()
                .unchecked_ref::<TransactionalStorage>()
                .clone(),
        };
        (
            sql,
            DoPlatform {
                storage,
                env: &self.env,
                state: &self.state,
            },
        )
    }
}

/// The Durable Object's runtime behind the [`Platform`] port.
struct DoPlatform<'a> {
    storage: Storage,
    env: &'a Env,
    state: &'a State,
}

impl Platform for DoPlatform<'_> {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(i64::try_from(Date::now().as_millis()).unwrap_or(0))
    }

    async fn http(&self, call: &HttpCall) -> std::result::Result<HttpAnswer, PlatformError> {
        let headers = Headers::new();
        for (name, value) in &call.headers {
            headers.set(name, value).map_err(|e| e.to_string())?;
        }
        let body = js_sys::Uint8Array::from(call.body.as_slice());
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.into()))
            // A redirect is an answer (not 2xx), never followed: following it
            // could lead past the URL check to an internal address.
            .with_redirect(RequestRedirect::Manual);
        let request = Request::new_with_init(&call.url, &init).map_err(|e| e.to_string())?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = Box::pin(async move {
            let mut response = Fetch::Request(request).send_with_signal(&signal).await?;
            let status = response.status_code();
            // Only a relay's error message is ever read: keep the first
            // MAX_ANSWER_BYTES, whatever the other side sends.
            let mut body = Vec::new();
            let mut stream = response.stream()?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_ANSWER_BYTES {
                    break;
                }
            }
            Ok::<_, worker::Error>(HttpAnswer { status, body })
        });
        let timeout = Delay::from(Duration::from_millis(call.timeout_millis));
        match select(exchange, timeout).await {
            Either::Left((Ok(answer), _)) => Ok(answer),
            // No URL in the message: it may carry a token in its query.
            Either::Left((Err(error), _)) => Err(format!("The request failed: {error}").into()),
            Either::Right(((), _)) => {
                controller.abort();
                Err(format!(
                    "No complete answer within {} s.",
                    call.timeout_millis / 1000
                )
                .into())
            }
        }
    }

    async fn send_email(
        &self,
        from: &str,
        to: &str,
        raw: &[u8],
    ) -> std::result::Result<(), PlatformError> {
        let binding = self
            .env
            .send_email(bindings::SEND_EMAIL_BINDING)
            .map_err(|e| e.to_string())?;
        // Our messages are built 7-bit clean, so this is lossless.
        let raw = String::from_utf8_lossy(raw);
        let message = EmailMessage::new(from, to, &raw).map_err(|e| format!("{e:?}"))?;
        binding
            .send(&message)
            .await
            .map(|_| ())
            .map_err(|e| PlatformError(js_message(&e.into())))
    }

    async fn call_inbox(
        &self,
        object_id: &str,
        request: &InboxRequest,
        payload: &[u8],
    ) -> std::result::Result<Reply, PlatformError> {
        let stub = self
            .env
            .durable_object(bindings::INBOX_NAMESPACE)
            .and_then(|ns| ns.id_from_string(object_id)?.get_stub())
            .map_err(|e| e.to_string())?;
        let headers = Headers::new();
        headers
            .set(REQUEST_HEADER, &encode_request(request))
            .map_err(|e| e.to_string())?;
        let body = js_sys::Uint8Array::from(payload);
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.into()));
        let request = Request::new_with_init(INBOX_RPC_URL, &init).map_err(|e| e.to_string())?;
        let mut response = stub
            .fetch_with_request(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Reply {
            status: response.status_code(),
            headers: Vec::new(),
            body: response.bytes().await.map_err(|e| e.to_string())?,
        })
    }

    async fn sleep(&self, millis: u64) {
        Delay::from(Duration::from_millis(millis)).await;
    }

    fn publish(&self, frame: &str) {
        for socket in self.state.get_websockets() {
            // A socket that is closing refuses; the others still get it.
            let _ = socket.send_with_str(frame);
        }
    }

    fn listening(&self) -> bool {
        !self.state.get_websockets().is_empty()
    }

    async fn delete_alarm(&self) -> std::result::Result<(), PlatformError> {
        self.storage
            .delete_alarm()
            .await
            .map_err(|e| PlatformError(e.to_string()))
    }

    fn close_sockets(&self, tag: Option<&str>) {
        let sockets = match tag {
            Some(tag) => self.state.get_websockets_with_tag(tag),
            None => self.state.get_websockets(),
        };
        for socket in sockets {
            // 1008: policy violation — the key (or the inbox) is gone. One
            // already closing refuses, which is fine.
            let _ = socket.close(Some(1008), Some("key deleted"));
        }
    }

    async fn delete_all_storage(&self) -> std::result::Result<(), PlatformError> {
        self.storage
            .delete_all()
            .await
            .map_err(|e| PlatformError(e.to_string()))
    }

    async fn set_alarm(&self, at: Timestamp) -> std::result::Result<(), PlatformError> {
        // An absolute time: `set_alarm` with a bare integer is an offset.
        let date = js_sys::Date::new(&JsValue::from_f64(at.millis() as f64));
        self.storage
            .set_alarm(ScheduledTime::new(date))
            .await
            .map_err(|e| PlatformError(e.to_string()))
    }
}

/// The message of a thrown JavaScript value.
fn js_message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// Stored bytes as a streamed body: each pull of the body reads one raw
/// chunk with one synchronous query (and decodes it, for an attachment), so
/// the message is never whole in memory here. With a `Content-Length` (an
/// attachment's decoded size) the body is a `FixedLengthStream`, so the
/// length reaches the client instead of a chunked body.
fn stream_response(sql: DoSql, raw: RawMessage) -> Result<Response> {
    let headers = worker::Headers::new();
    for (name, value) in &raw.headers {
        headers.set(name, value)?;
    }
    let status = raw.status;
    let length = raw
        .headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<u64>().ok());
    let reader = raw.reader();
    let pieces = futures_util::stream::try_unfold((sql, reader), |(sql, mut reader)| async move {
        let piece = reader.next(&sql).map_err(|error| {
            worker::console_error!("inbox: reading a raw chunk failed: {error}");
            worker::Error::RustError("reading the message failed".to_owned())
        })?;
        Ok::<_, worker::Error>(piece.map(|piece| (piece, (sql, reader))))
    });
    let response = match length {
        Some(length) => {
            let fixed: worker::worker_sys::FixedLengthStream =
                worker::FixedLengthStream::wrap(pieces, length).into();
            Response::from_body(ResponseBody::Stream(fixed.readable()))?
        }
        None => Response::from_stream(pieces)?,
    };
    Ok(response.with_status(status).with_headers(headers))
}

fn into_response(reply: Reply) -> Result<Response> {
    let headers = worker::Headers::new();
    for (name, value) in &reply.headers {
        headers.set(name, value)?;
    }
    // An empty body is sent as no body at all (a 204 must not carry one).
    let response = if reply.body.is_empty() {
        Response::empty()?
    } else {
        Response::from_bytes(reply.body)?
    };
    Ok(response.with_status(reply.status).with_headers(headers))
}

/// DO SQLite behind the [`Sql`] port.
struct DoSql {
    sql: SqlStorage,
    storage: TransactionalStorage,
}

impl Sql for DoSql {
    fn exec(&self, query: &str, params: &[Value]) -> std::result::Result<Rows, SqlError> {
        let bindings = params.iter().map(to_storage_value).collect::<Vec<_>>();
        let cursor = self
            .sql
            .exec(query, bindings)
            .map_err(|e| SqlError::new(e.to_string()))?;
        let columns = cursor.column_names();
        let mut rows = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(|e| SqlError::new(e.to_string()))?;
            rows.push(row.into_iter().map(from_storage_value).collect());
        }
        Ok(Rows { columns, rows })
    }

    fn transaction(
        &self,
        body: &mut dyn FnMut() -> std::result::Result<(), SqlError>,
    ) -> std::result::Result<(), SqlError> {
        let mut failure: Option<SqlError> = None;
        let mut run = || match body() {
            Ok(()) => Ok(()),
            Err(error) => {
                failure = Some(error);
                // Throwing is how transactionSync learns to roll back.
                Err(JsValue::from_str("transaction body failed"))
            }
        };
        let closure = ScopedClosure::borrow_mut(&mut run);
        let outcome = self.storage.transaction_sync(&closure);
        drop(closure);
        match (outcome, failure) {
            (_, Some(error)) => Err(error),
            (Ok(_), None) => Ok(()),
            (Err(thrown), None) => Err(SqlError::new(format!("{thrown:?}"))),
        }
    }
}

fn to_storage_value(value: &Value) -> SqlStorageValue {
    match value {
        Value::Null => SqlStorageValue::Null,
        Value::Integer(i) => SqlStorageValue::Integer(*i),
        Value::Real(f) => SqlStorageValue::Float(*f),
        Value::Text(s) => SqlStorageValue::String(s.clone()),
        Value::Blob(b) => SqlStorageValue::Blob(b.clone()),
    }
}

fn from_storage_value(value: SqlStorageValue) -> Value {
    match value {
        SqlStorageValue::Null => Value::Null,
        // We never bind booleans (they would be stored as text); map defensively.
        SqlStorageValue::Boolean(b) => Value::Integer(i64::from(b)),
        SqlStorageValue::Integer(i) => Value::Integer(i),
        SqlStorageValue::Float(f) => Value::Real(f),
        SqlStorageValue::String(s) => Value::Text(s),
        SqlStorageValue::Blob(b) => Value::Blob(b),
    }
}

/// Sends `log` records to the Workers console (which `wrangler tail` and the
/// dashboard show). Installed once per isolate.
struct ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            match record.level() {
                log::Level::Error => worker::console_error!("{}", record.args()),
                log::Level::Warn => worker::console_warn!("{}", record.args()),
                _ => worker::console_log!("{}", record.args()),
            }
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger;

fn install_logger() {
    // Fails only when already installed in this isolate, which is fine.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
