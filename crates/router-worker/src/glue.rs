//! The Workers entry points: the only module of router-worker that names `worker::`.
//!
//! It binds the ports to Workers KV and the InboxDO namespace, reads the
//! configuration, reads request bodies within their limit, converts the
//! router's own replies (an InboxDO's answer to an API call goes back as it
//! is), and makes sure no error ever escapes as an `Err` (which would surface
//! as an opaque platform error page).

use crate::http::too_large;
use crate::routes::Route;
use crate::{
    BodyLimit, Directory, Entropy, HttpRequest, InboxNamespace, MailVerdict, Outgoing, PortError,
    Router, RouterConfig, TooLarge, Trace,
};
use futures_util::StreamExt;
use protocol::limits::MAX_JSON_BODY;
use protocol::wire::{ApiCall, INBOX_RPC_URL, InboxRequest, REQUEST_HEADER, encode_request};
use protocol::{ApiError, Reply, bindings};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{
    Context, Date, Env, ForwardableEmailMessage, Headers, KvStore, Method, ObjectNamespace,
    Request, RequestInit, Response, Result, event,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    install_logger();
    let started = Date::now().as_millis();
    // The method as sent: workers-rs's `Method` turns any method it does not
    // know (QUERY, PROPFIND, ...) into GET, which would serve them as GETs.
    let method = req.inner().method();
    let path = req.path();
    let trace = Trace::default();
    let outgoing = match serve(req, &env, &trace).await {
        Ok(outgoing) => outgoing,
        Err(error) => {
            log::error!("router: {error}");
            Outgoing::Reply(Reply::error(&ApiError::internal()))
        }
    };
    let status = outgoing.status::<DoNamespace>();
    let took = Date::now().as_millis().saturating_sub(started);
    worker::console_log!(
        "{}",
        crate::log::request_line(&method, &path, status, took, &trace)
    );
    match outgoing {
        Outgoing::Reply(reply) => into_response(reply),
        // The InboxDO's answer as it is: status, headers, body stream and
        // WebSocket, never read here.
        Outgoing::Inbox(response) => Ok(response),
    }
}

async fn serve(mut req: Request, env: &Env, trace: &Trace) -> Result<Outgoing<Response>> {
    let url = req.url()?;
    // The route decides how much body it takes (10 MiB where a message may
    // carry attachments); an unknown path gets the JSON limit, then its 404.
    let method = req.inner().method();
    let limit = Route::parse(url.path()).map_or(MAX_JSON_BODY, |route| route.body_limit(&method));
    let Ok(body) = read_body(&mut req, limit).await? else {
        return Ok(Outgoing::Reply(Reply::error(&too_large(limit))));
    };
    let request = HttpRequest {
        method: req.inner().method(),
        path: url.path().to_owned(),
        query: url.query().unwrap_or("").to_owned(),
        headers: req.headers().entries().collect(),
        body,
    };
    Ok(router(env)?
        .handle_traced(&request, &mut CryptoEntropy, trace)
        .await)
}

/// Reads the request body through a [`BodyLimit`]: a declared
/// `Content-Length` over the limit is refused unread, and any body (chunked,
/// or longer than it said) is refused as soon as it passes the limit, so no
/// more than the limit is ever held.
async fn read_body(
    req: &mut Request,
    limit: usize,
) -> Result<std::result::Result<Vec<u8>, TooLarge>> {
    let mut limit = BodyLimit::new(limit);
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| limit.refuses_length(len)) {
        return Ok(Err(TooLarge));
    }
    if req.inner().body().is_none() {
        return Ok(Ok(Vec::new()));
    }
    let mut chunks = std::pin::pin!(req.stream()?);
    while let Some(chunk) = chunks.next().await {
        if let Err(refused) = limit.feed(&chunk?) {
            return Ok(Err(refused));
        }
    }
    Ok(Ok(limit.finish()))
}

/// The KV index entries this isolate has read, kept across its requests
/// (see [`crate::IndexCache`]: the InboxDO is the authority, KV and this
/// cache only route).
static INDEX: std::sync::LazyLock<std::sync::Arc<crate::IndexCache>> =
    std::sync::LazyLock::new(std::sync::Arc::default);

fn router(env: &Env) -> Result<Router<KvDirectory, DoNamespace>> {
    let var = |name: &str| env.var(name).ok().map(|v| v.to_string());
    let domains = var(bindings::MAIL_DOMAIN_VAR);
    let loopback = var(bindings::WEBHOOK_ALLOW_HTTP_LOOPBACK_VAR);
    let signups = var(bindings::SIGNUPS_PER_HOUR_VAR);
    Ok(Router::new(
        KvDirectory(env.kv(bindings::DIRECTORY_KV)?),
        DoNamespace(env.durable_object(bindings::INBOX_NAMESPACE)?),
        RouterConfig::from_vars(domains.as_deref(), loopback.as_deref(), signups.as_deref()),
    )
    .with_index_cache(INDEX.clone()))
}

/// Inbound mail (Cloudflare Email Routing). Exported by hand rather than with
/// `#[event(email)]`: that macro panics on `Err`, which kills the isolate.
/// Here a permanent failure is `setReject` (the sender gets a bounce) and a
/// temporary one is a rejected promise, which Email Routing answers with a
/// temporary SMTP failure so the sender retries later. Nothing is accepted and
/// then lost.
#[wasm_bindgen(
    js_name = "email",
    wasm_bindgen_futures = worker::wasm_bindgen_futures,
    js_sys = worker::js_sys
)]
#[allow(unreachable_pub)] // exported to JavaScript, not to Rust
pub async fn email(
    message: ForwardableEmailMessage,
    env: Env,
    _ctx: worker::worker_sys::Context,
) -> std::result::Result<JsValue, JsValue> {
    install_logger();
    let router = match router(&env) {
        Ok(router) => router,
        Err(error) => {
            log::error!("email: configuration error: {error}");
            return Err(js_error("temporary failure: the service is misconfigured"));
        }
    };
    let from = message.from();
    let to = message.to();
    let size = message.raw_size();
    let size = if size.is_finite() && size >= 0.0 {
        size as u64
    } else {
        u64::MAX
    };
    // The raw stream goes to the inbox as the request body, unread here.
    let payload: JsValue = message.raw().into();
    let started = Date::now().as_millis();
    let trace = Trace::default();
    let verdict = router.receive_mail(&from, &to, size, payload, &trace).await;
    let took = Date::now().as_millis().saturating_sub(started);
    worker::console_log!("{}", crate::log::mail_line(&verdict, size, took, &trace));
    match verdict {
        MailVerdict::Accepted(_) | MailVerdict::Duplicate(_) => Ok(JsValue::UNDEFINED),
        MailVerdict::Reject(reason) => {
            message.set_reject(&reason);
            Ok(JsValue::UNDEFINED)
        }
        MailVerdict::Retry(reason) => {
            log::error!("email: temporary failure: {reason}");
            Err(js_error("temporary failure; please retry"))
        }
    }
}

fn js_error(message: &str) -> JsValue {
    worker::js_sys::Error::new(message).into()
}

fn into_response(reply: Reply) -> Result<Response> {
    let headers = Headers::new();
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

struct KvDirectory(KvStore);

impl Directory for KvDirectory {
    async fn get(&self, key: &str) -> std::result::Result<Option<String>, PortError> {
        self.0.get(key).text().await.map_err(port_error)
    }

    async fn put(&self, key: &str, value: &str) -> std::result::Result<(), PortError> {
        self.0
            .put(key, value)
            .map_err(port_error)?
            .execute()
            .await
            .map_err(port_error)
    }

    async fn delete(&self, key: &str) -> std::result::Result<(), PortError> {
        self.0.delete(key).await.map_err(port_error)
    }
}

struct DoNamespace(ObjectNamespace);

impl InboxNamespace for DoNamespace {
    /// A `ReadableStream` (an inbound message's raw bytes).
    type Payload = JsValue;
    /// The object's `Response`, unread.
    type Answer = Response;

    fn id_for_handle(&self, handle: &str) -> std::result::Result<String, PortError> {
        Ok(self.0.id_from_name(handle).map_err(port_error)?.to_string())
    }

    async fn send(
        &self,
        id: &str,
        request: &InboxRequest,
        payload: Option<JsValue>,
    ) -> std::result::Result<Response, PortError> {
        let stub = self
            .0
            .id_from_string(id)
            .and_then(|id| id.get_stub())
            .map_err(port_error)?;
        let headers = Headers::new();
        headers
            .set(REQUEST_HEADER, &encode_request(request))
            .map_err(port_error)?;
        let mut init = RequestInit::new();
        // The event socket is an upgrade all the way to the object, which
        // the runtime lets only a GET with `Upgrade: websocket` answer 101.
        let upgrade = matches!(
            request,
            InboxRequest::Api {
                call: ApiCall::Events { .. },
                ..
            }
        );
        if upgrade {
            headers.set("upgrade", "websocket").map_err(port_error)?;
            init.with_method(Method::Get).with_headers(headers);
        } else {
            init.with_method(Method::Post)
                .with_headers(headers)
                .with_body(payload);
        }
        let request = Request::new_with_init(INBOX_RPC_URL, &init).map_err(port_error)?;
        stub.fetch_with_request(request).await.map_err(port_error)
    }

    fn payload_of(bytes: Vec<u8>) -> JsValue {
        worker::js_sys::Uint8Array::from(bytes.as_slice()).into()
    }

    fn status(answer: &Response) -> u16 {
        answer.status_code()
    }

    async fn read(mut answer: Response) -> std::result::Result<Reply, PortError> {
        Ok(Reply {
            status: answer.status_code(),
            // Framing headers belong to that response, not to a reply built
            // from it.
            headers: answer
                .headers()
                .entries()
                .filter(|(name, _)| name != "content-length" && name != "transfer-encoding")
                .collect(),
            body: answer.bytes().await.map_err(port_error)?,
        })
    }
}

struct CryptoEntropy;

impl Entropy for CryptoEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> std::result::Result<(), PortError> {
        getrandom::getrandom(buf).map_err(|e| PortError(format!("random source failed: {e}")))
    }
}

fn port_error(error: impl std::fmt::Display) -> PortError {
    PortError(error.to_string())
}

/// Sends `log` records to the Workers console. Installed once per isolate.
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
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
