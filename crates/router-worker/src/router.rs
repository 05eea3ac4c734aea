//! Routes, authentication, signup, and the routing of inbound mail.

use crate::log::{Trace, route_of};
use crate::{Directory, Entropy, HttpRequest, InboxNamespace, PortError};
use protocol::address::{Recipient, RecipientError};
use protocol::api::{Health, MarkRead, SendRequest, SignupRequest, SignupResponse, WebhookRequest};
use protocol::key::KEY_RANDOM_BYTES;
use protocol::limits::{DEFAULT_PAGE, MAX_JSON_BODY, MAX_MESSAGE_BYTES, MAX_PAGE};
use protocol::webhook_signature::WebhookSecret;
use protocol::webhook_url::{UrlPolicy, check_webhook_url};
use protocol::wire::{ApiCall, INBOX_RPC_URL, InboxRequest, Ingested, SendRoute};
use protocol::{ApiError, ApiKey, ErrorCode, Handle, KeyHash, Reply, Timestamp};
use serde::de::DeserializeOwned;

/// How many generated handles a signup without one tries before giving up.
/// Each has 50 random bits, so a second try is already vanishingly rare.
const GENERATED_HANDLE_ATTEMPTS: usize = 3;

/// Deployment settings the router reads from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterConfig {
    /// The mail domains, lowercased. Addresses are given on the first; mail to
    /// any of them is accepted. Signup, authenticated calls and inbound mail
    /// answer 503 `not_configured` (mail: a temporary failure) without one.
    pub mail_domains: Vec<String>,
    /// The development setting that lets webhooks use plain `http` to
    /// loopback addresses (`WEBHOOK_ALLOW_HTTP_LOOPBACK = "true"`). Off in
    /// production: webhooks must then be https to a public host.
    pub allow_http_loopback_webhooks: bool,
    /// Signups allowed per client address (IPv4, or IPv6 /64) per hour; 0
    /// turns the limit off. From `SIGNUPS_PER_HOUR`, default 20.
    pub signups_per_hour: u32,
}

impl RouterConfig {
    /// Reads `MAIL_DOMAIN`'s value: comma-separated domains.
    pub fn from_mail_domain_var(value: Option<&str>) -> Self {
        RouterConfig {
            mail_domains: value
                .unwrap_or("")
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            allow_http_loopback_webhooks: false,
            signups_per_hour: protocol::limits::SIGNUPS_PER_HOUR,
        }
    }

    /// Reads the router's variables: `MAIL_DOMAIN`,
    /// `WEBHOOK_ALLOW_HTTP_LOOPBACK` (exactly `"true"` turns it on) and
    /// `SIGNUPS_PER_HOUR` (a number; anything else keeps the default).
    pub fn from_vars(
        mail_domain: Option<&str>,
        allow_http_loopback: Option<&str>,
        signups_per_hour: Option<&str>,
    ) -> Self {
        let defaults = Self::from_mail_domain_var(mail_domain);
        RouterConfig {
            allow_http_loopback_webhooks: allow_http_loopback.map(str::trim) == Some("true"),
            signups_per_hour: signups_per_hour
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(defaults.signups_per_hour),
            ..defaults
        }
    }
}

/// What became of an inbound message. The glue turns `Reject` into a
/// permanent SMTP failure and `Retry` into a temporary one (the sender keeps
/// the message and tries again, as SMTP does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailVerdict {
    /// Stored under this id.
    Accepted(u64),
    /// Already stored under this id (a redelivery); nothing was added.
    Duplicate(u64),
    /// Refused for good, with the reason given to the sender.
    Reject(String),
    /// Not stored this time; the reason is for the log.
    Retry(String),
}

/// The OpenAPI document served at `/api/openapi.json` (generated from the
/// protocol types by `cargo xtask openapi`, checked by a test).
pub const OPENAPI_JSON: &str = include_str!("../../protocol/openapi.json");

/// The plain-text guide served at `/llms.txt`.
pub const LLMS_TXT: &str = include_str!("../llms.txt");

/// KV key of the auth index: `sha256(api key)` → InboxDO id.
pub fn key_index_key(hash: &KeyHash) -> String {
    format!("key:{}", hash.to_hex())
}

/// KV key of the routing index: handle → InboxDO id.
pub fn handle_index_key(handle: &Handle) -> String {
    format!("handle:{handle}")
}

/// The router over its two ports.
#[derive(Debug)]
pub struct Router<D, N> {
    directory: D,
    namespace: N,
    config: RouterConfig,
}

impl<D: Directory, N: InboxNamespace> Router<D, N> {
    /// A router over `directory` and `namespace`.
    pub fn new(directory: D, namespace: N, config: RouterConfig) -> Self {
        Router {
            directory,
            namespace,
            config,
        }
    }

    /// The directory port (tests inspect it).
    pub fn directory(&self) -> &D {
        &self.directory
    }

    /// The namespace port (tests inspect it).
    pub fn namespace(&self) -> &N {
        &self.namespace
    }

    /// Answers one HTTP request. Never panics and never returns a 5xx for bad
    /// input: every error is in the contract's shape.
    pub async fn handle(&self, request: &HttpRequest, entropy: &mut dyn Entropy) -> Reply {
        self.handle_traced(request, entropy, &Trace::default())
            .await
    }

    /// As [`Self::handle`], noting in `trace` which inbox the request
    /// concerned (for the log line; see [`crate::log`]).
    pub async fn handle_traced(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        trace: &Trace,
    ) -> Reply {
        match self.route(request, entropy, trace).await {
            Ok(reply) => reply,
            Err(error) if error.code == ErrorCode::MethodNotAllowed => {
                // RFC 9110: a 405 says what is allowed.
                let allowed = methods_of(route_of(&request.path)).unwrap_or(&[]);
                Reply::error(&error).with_header("allow", allowed.join(", "))
            }
            Err(error) => Reply::error(&error),
        }
    }

    async fn route(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        trace: &Trace,
    ) -> Result<Reply, ApiError> {
        if request.body.len() > MAX_JSON_BODY {
            return Err(too_large());
        }
        let method = request.method.as_str();
        let route = route_of(&request.path);
        let Some(allowed) = methods_of(route) else {
            return Err(ApiError::not_found(format!(
                "There is no endpoint at {}.",
                printable(&request.path)
            )));
        };
        allow(method, allowed)?;
        match route {
            "/api/health" => Ok(Reply::json(
                200,
                &Health {
                    ok: true,
                    service: protocol::SERVICE_NAME.to_owned(),
                    version: protocol::VERSION.to_owned(),
                },
            )),
            "/api/health/deep" => self.deep_health().await,
            "/api/openapi.json" => Ok(text_reply(OPENAPI_JSON, "application/json; charset=utf-8")),
            "/llms.txt" => Ok(text_reply(LLMS_TXT, "text/plain; charset=utf-8")),
            "/api/signup" => self.signup(request, entropy, trace).await,
            _ => {
                // Every other route belongs to a key's owner: who is asking is
                // settled first, so a request without a valid key gets 401
                // whatever else is wrong with it.
                let caller = self.credentials(request, trace).await?;
                let segments: Vec<&str> = request.path.split('/').skip(1).collect();
                let id = || message_id(segments.get(2).copied().unwrap_or(""));
                let call = match (route, method) {
                    ("/api/me", _) => ApiCall::Me,
                    ("/api/messages", "GET") => list_query(&request.query)?,
                    ("/api/messages", _) => return self.send(request, &caller).await,
                    ("/api/messages/:id", "GET") => ApiCall::GetMessage { id: id()? },
                    ("/api/messages/:id", _) => {
                        let id = id()?;
                        let body: MarkRead = json_body(request)?;
                        ApiCall::MarkRead {
                            id,
                            read: body.read,
                        }
                    }
                    ("/api/messages/:id/raw", _) => ApiCall::GetRaw { id: id()? },
                    ("/api/webhook", "GET") => ApiCall::GetWebhook,
                    ("/api/webhook", "DELETE") => ApiCall::DeleteWebhook,
                    ("/api/webhook", _) => self.webhook_call(request, entropy)?,
                    _ => ApiCall::ListDeliveries,
                };
                self.call_as(&caller, call).await
            }
        }
    }

    /// `GET /api/health/deep`: the router, KV-free, reaches a Durable Object
    /// (the one named `health:probe`, which no handle can name) and its
    /// SQLite answers one read. For monitoring, and the floor of the
    /// end-to-end latency figures.
    async fn deep_health(&self) -> Result<Reply, ApiError> {
        let id = self
            .namespace
            .id_for_handle("health:probe")
            .map_err(unavailable)?;
        let reply = self.call(&id, &InboxRequest::Ping).await?;
        if reply.status != 204 {
            log::error!("deep health: the probe object answered {}", reply.status);
            return Err(ApiError::unavailable(
                "A Durable Object or its storage is not answering. Retry shortly.",
            ));
        }
        Ok(Reply::json(
            200,
            &Health {
                ok: true,
                service: protocol::SERVICE_NAME.to_owned(),
                version: protocol::VERSION.to_owned(),
            },
        ))
    }

    /// Routes one inbound message by its envelope recipient and hands its raw
    /// bytes (`payload`, never read here) to the inbox. Unknown recipients and
    /// foreign domains are refused from KV alone, without waking any inbox.
    pub async fn receive_mail(
        &self,
        envelope_from: &str,
        recipient: &str,
        raw_size: u64,
        payload: N::Payload,
        trace: &Trace,
    ) -> MailVerdict {
        if self.config.mail_domains.is_empty() {
            return MailVerdict::Retry("MAIL_DOMAIN is not configured".into());
        }
        let recipient = match Recipient::parse(recipient, &self.config.mail_domains) {
            Ok(recipient) => recipient,
            Err(error @ (RecipientError::Malformed | RecipientError::ForeignDomain)) => {
                return MailVerdict::Reject(capitalized(&error.to_string()));
            }
            Err(RecipientError::NoSuchMailbox) => return no_such_mailbox(),
        };
        if raw_size > MAX_MESSAGE_BYTES {
            return MailVerdict::Reject(format!(
                "Message too large: {raw_size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (25 MiB)."
            ));
        }
        let id = match self
            .directory
            .get(&handle_index_key(&recipient.handle))
            .await
        {
            Ok(Some(id)) => id,
            Ok(None) => return no_such_mailbox(),
            Err(error) => return MailVerdict::Retry(format!("KV lookup failed: {error}")),
        };
        trace.inbox(&id);
        let request = InboxRequest::Ingest {
            envelope_from: envelope_from.to_owned(),
            recipient: recipient.address.clone(),
            tag: recipient.tag.clone(),
        };
        let reply = match self.namespace.send(&id, &request, Some(payload)).await {
            Ok(reply) => reply,
            Err(error) => return MailVerdict::Retry(format!("inbox unreachable: {error}")),
        };
        match reply.status {
            200 | 201 => match serde_json::from_slice::<Ingested>(&reply.body) {
                Ok(Ingested {
                    id,
                    duplicate: false,
                }) => MailVerdict::Accepted(id),
                Ok(Ingested {
                    id,
                    duplicate: true,
                }) => MailVerdict::Duplicate(id),
                Err(error) => MailVerdict::Retry(format!("unreadable ingest reply: {error}")),
            },
            404 => no_such_mailbox(),
            413 | 507 => MailVerdict::Reject(error_of(&reply).error),
            status => MailVerdict::Retry(format!(
                "inbox answered {status}: {}",
                error_of(&reply).error
            )),
        }
    }

    /// `POST /api/messages`: validates the message and decides its route. A
    /// recipient on one of our domains is delivered inbox to inbox, so it must
    /// be an inbox here; anything else goes through the relay.
    async fn send(&self, request: &HttpRequest, caller: &Caller) -> Result<Reply, ApiError> {
        let body: SendRequest = json_body(request)?;
        let valid = body.validate()?;
        let (to, route) = match Recipient::parse(&valid.to, &self.config.mail_domains) {
            Ok(recipient) => {
                let object_id = self
                    .directory
                    .get(&handle_index_key(&recipient.handle))
                    .await
                    .map_err(unavailable)?
                    .ok_or_else(|| no_inbox_here(&recipient.address))?;
                let route = SendRoute::Direct {
                    handle: recipient.handle,
                    object_id,
                    tag: recipient.tag,
                };
                (recipient.address, route)
            }
            Err(RecipientError::ForeignDomain) => (valid.to, SendRoute::Relay),
            Err(RecipientError::NoSuchMailbox | RecipientError::Malformed) => {
                return Err(no_inbox_here(&valid.to));
            }
        };
        let call = ApiCall::Send {
            to,
            subject: valid.subject,
            text: valid.text,
            html: valid.html,
            route,
        };
        self.call_as(caller, call).await
    }

    /// `PUT /api/webhook`: the URL must pass the SSRF guard; the secret is new.
    fn webhook_call(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
    ) -> Result<ApiCall, ApiError> {
        let body: WebhookRequest = json_body(request)?;
        let policy = UrlPolicy {
            allow_http_loopback: self.config.allow_http_loopback_webhooks,
        };
        let url = check_webhook_url(&body.url, policy)
            .map_err(|refusal| ApiError::invalid(format!("Invalid `url`: it {refusal}.")))?;
        let mut random = [0u8; 32];
        entropy.fill(&mut random).map_err(unavailable)?;
        Ok(ApiCall::PutWebhook {
            url: url.to_string(),
            secret: WebhookSecret::from_random(random).expose(),
            allow_http_loopback: policy.allow_http_loopback,
        })
    }

    fn mail_domain(&self) -> Result<&str, ApiError> {
        self.config
            .mail_domains
            .first()
            .map(String::as_str)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NotConfigured,
                    "This deployment has no MAIL_DOMAIN configured.",
                )
            })
    }

    async fn signup(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        trace: &Trace,
    ) -> Result<Reply, ApiError> {
        let body: SignupRequest = if request.body.iter().all(u8::is_ascii_whitespace) {
            // `curl -X POST .../api/signup` with no body asks for a generated handle.
            SignupRequest::default()
        } else {
            json_body(request)?
        };
        let mail_domain = self.mail_domain()?;
        if let Some(refused) = self.throttle_signup(request).await? {
            return Ok(refused);
        }
        let wanted = match body.handle {
            Some(text) => Some(
                Handle::parse(&text)
                    .map_err(|e| ApiError::invalid(format!("Invalid `handle`: {e}.")))?,
            ),
            None => None,
        };

        let mut key_bytes = [0u8; KEY_RANDOM_BYTES];
        entropy.fill(&mut key_bytes).map_err(unavailable)?;
        let key = ApiKey::from_random(key_bytes);

        let attempts = if wanted.is_some() {
            1
        } else {
            GENERATED_HANDLE_ATTEMPTS
        };
        for attempt in 1..=attempts {
            let handle = match &wanted {
                Some(handle) => handle.clone(),
                None => {
                    let mut bytes = [0u8; 8];
                    entropy.fill(&mut bytes).map_err(unavailable)?;
                    Handle::generated(bytes)
                }
            };
            match self.register(&handle, &key, trace).await {
                Err(error) if error.code == ErrorCode::HandleTaken && attempt < attempts => {
                    continue;
                }
                Err(error) => return Err(error),
                Ok(()) => {
                    return Ok(Reply::json(
                        201,
                        &SignupResponse {
                            email: handle.address(mail_domain),
                            api_key: key.expose().to_owned(),
                        },
                    ));
                }
            }
        }
        Err(ApiError::unavailable(
            "Could not find a free generated handle; try again.",
        ))
    }

    /// Takes a token from the signup bucket of the client's address, held in
    /// the Durable Object named for it (consistent, unlike KV). `Some` is the
    /// 429 to answer. The address is Cloudflare's `CF-Connecting-IP`; IPv6
    /// clients are counted per /64, as one host usually holds a whole /64.
    async fn throttle_signup(&self, request: &HttpRequest) -> Result<Option<Reply>, ApiError> {
        if self.config.signups_per_hour == 0 {
            return Ok(None);
        }
        let name = format!("signup-limit:{}", client_bucket(request));
        let id = self.namespace.id_for_handle(&name).map_err(unavailable)?;
        let reply = self
            .call(
                &id,
                &InboxRequest::Throttle {
                    limit: self.config.signups_per_hour,
                    window_millis: 3_600_000,
                },
            )
            .await?;
        match reply.status {
            204 => Ok(None),
            429 => Ok(Some(reply)),
            _ => Err(error_of(&reply)),
        }
    }

    /// Claims `handle` in its InboxDO for `key`, publishes the key and handle in
    /// KV, then confirms. The DO decides ownership, so concurrent signups for
    /// one handle have exactly one winner whatever KV shows. On any failure after
    /// the claim the claim is released (or, if even that fails, expires), so a
    /// signup either returns working credentials or leaves the handle free.
    async fn register(&self, handle: &Handle, key: &ApiKey, trace: &Trace) -> Result<(), ApiError> {
        let hash = key.hash();
        let id = self
            .namespace
            .id_for_handle(handle.as_str())
            .map_err(unavailable)?;
        trace.inbox(&id);
        let claimed = self
            .call(
                &id,
                &InboxRequest::Claim {
                    handle: handle.clone(),
                    key_hash: hash,
                },
            )
            .await?;
        if !claimed.is_success() {
            return Err(error_of(&claimed));
        }

        let key_entry = key_index_key(&hash);
        if let Err(error) = self.directory.put(&key_entry, &id).await {
            self.abandon(&id, &hash, None).await;
            return Err(unavailable(error));
        }
        // The handle entry is a pure function of the handle (the id is derived
        // from it), so it is correct whoever ends up owning the handle and is
        // never removed on failure: removing it could race with a winner's write.
        if let Err(error) = self.directory.put(&handle_index_key(handle), &id).await {
            self.abandon(&id, &hash, Some(&key_entry)).await;
            return Err(unavailable(error));
        }
        let confirmed = self
            .call(&id, &InboxRequest::Confirm { key_hash: hash })
            .await;
        match confirmed {
            Ok(reply) if reply.is_success() => Ok(()),
            Ok(reply) => {
                self.abandon(&id, &hash, Some(&key_entry)).await;
                let error = error_of(&reply);
                Err(if error.code == ErrorCode::Conflict {
                    ApiError::new(
                        ErrorCode::HandleTaken,
                        format!("The handle '{handle}' is already taken."),
                    )
                } else {
                    error
                })
            }
            Err(error) => {
                self.abandon(&id, &hash, Some(&key_entry)).await;
                Err(error)
            }
        }
    }

    /// Best-effort undo of a failed signup. Whatever fails here is covered by
    /// the claim's expiry and by the DO's own key check.
    async fn abandon(&self, id: &str, hash: &KeyHash, key_entry: Option<&str>) {
        if let Some(entry) = key_entry
            && let Err(error) = self.directory.delete(entry).await
        {
            log::warn!("signup cleanup: deleting the key index entry failed: {error}");
        }
        if let Err(error) = self
            .call(id, &InboxRequest::Release { key_hash: *hash })
            .await
        {
            log::warn!("signup cleanup: releasing the claim failed: {error}");
        }
    }

    /// The caller's inbox (object id), key hash and the mail domain. The
    /// inbox re-checks the hash itself: KV only routes.
    async fn credentials(&self, request: &HttpRequest, trace: &Trace) -> Result<Caller, ApiError> {
        let key = request
            .header_value("authorization")
            .and_then(ApiKey::from_authorization)
            .ok_or_else(ApiError::unauthorized)?;
        let mail_domain = self.mail_domain()?.to_owned();
        let hash = key.hash();
        let id = self
            .directory
            .get(&key_index_key(&hash))
            .await
            .map_err(unavailable)?
            .ok_or_else(ApiError::unauthorized)?;
        trace.inbox(&id);
        Ok(Caller {
            id,
            hash,
            mail_domain,
        })
    }

    /// Sends `call` to the caller's inbox on the caller's behalf.
    async fn call_as(&self, caller: &Caller, call: ApiCall) -> Result<Reply, ApiError> {
        self.call(
            &caller.id,
            &InboxRequest::Api {
                key_hash: caller.hash,
                mail_domain: caller.mail_domain.clone(),
                call,
            },
        )
        .await
    }

    async fn call(&self, id: &str, request: &InboxRequest) -> Result<Reply, ApiError> {
        self.namespace
            .send(id, request, None)
            .await
            .map_err(|error| {
                log::error!("inbox call to {INBOX_RPC_URL} failed: {error}");
                ApiError::unavailable("The inbox could not be reached. Retry shortly.")
            })
    }
}

fn unavailable(error: PortError) -> ApiError {
    log::error!("platform dependency failed: {error}");
    ApiError::unavailable("A storage dependency is unavailable. Retry shortly.")
}

/// The error an InboxDO answered with, or a generic one when its body is not
/// in the contract's shape.
fn error_of(reply: &Reply) -> ApiError {
    serde_json::from_slice(&reply.body).unwrap_or_else(|_| {
        log::error!("inbox answered {} without an error body", reply.status);
        ApiError::internal()
    })
}

/// Who is calling: the inbox the key routes to, the key's hash, and the mail
/// domain addresses are given on.
#[derive(Debug)]
struct Caller {
    id: String,
    hash: KeyHash,
    mail_domain: String,
}

/// The methods each route answers (its template, as [`route_of`] gives it);
/// `None` for no route. 405 answers carry them in `Allow`.
fn methods_of(route: &str) -> Option<&'static [&'static str]> {
    Some(match route {
        "/api/health" | "/api/health/deep" | "/api/openapi.json" | "/llms.txt" => &["GET", "HEAD"],
        "/api/signup" => &["POST"],
        "/api/me" | "/api/messages/:id/raw" | "/api/webhook/deliveries" => &["GET"],
        "/api/messages" => &["GET", "POST"],
        "/api/messages/:id" => &["GET", "PATCH"],
        "/api/webhook" => &["GET", "PUT", "DELETE"],
        _ => return None,
    })
}

fn allow(method: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&method) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!(
                "This endpoint does not accept {}; use {}.",
                printable(method),
                allowed.join(" or ")
            ),
        ))
    }
}

/// Parses a JSON body (already size-checked), checking its media type first.
fn json_body<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, ApiError> {
    let content_type = request.header_value("content-type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The body must be JSON, sent with `Content-Type: application/json`.",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::invalid(format!("The body is not valid JSON: {e}.")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("The body must be a JSON object."));
    }
    // serde_path_to_error names the field that failed, which serde_json's own
    // error loses once the body has been read into a Value.
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            ApiError::invalid(format!("The body is invalid: {inner}."))
        } else {
            ApiError::invalid(format!("Invalid `{path}`: {inner}."))
        }
    })
}

/// 413 for a body over [`MAX_JSON_BODY`].
fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("The body exceeds the limit of {MAX_JSON_BODY} bytes."),
    )
}

/// A request-supplied string made safe to echo: at most 100 characters, with
/// control characters replaced.
fn printable(text: &str) -> String {
    text.chars()
        .take(100)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// The client address a signup is counted against: IPv4, or IPv6's /64.
/// Names of limiter objects contain `:`, which no handle can, so they never
/// collide with an inbox.
fn client_bucket(request: &HttpRequest) -> String {
    match request
        .header_value("cf-connecting-ip")
        .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
    {
        Some(std::net::IpAddr::V4(ip)) => format!("v4:{ip}"),
        Some(std::net::IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("v4:{v4}"),
            None => {
                let s = ip.segments();
                format!("v6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_owned(),
    }
}

fn no_inbox_here(address: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid `to`: there is no inbox {} on this deployment.",
        printable(address)
    ))
}

fn no_such_mailbox() -> MailVerdict {
    MailVerdict::Reject("No such mailbox here.".into())
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}

fn text_reply(text: &str, content_type: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type".to_owned(), content_type.to_owned())],
        body: text.as_bytes().to_vec(),
    }
}

/// The largest id we hand out: ids travel as f64 on DO SQLite, so they stay
/// below 2^53.
const MAX_ID: u64 = (1 << 53) - 1;

/// A message id from the path: a positive decimal integer.
fn message_id(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|id| (1..=MAX_ID).contains(id) && !text.starts_with('+'))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "The message id must be a positive integer, not '{}'.",
                printable(text)
            ))
        })
}

/// `GET /api/messages` query: `limit`, `cursor`, `since`, `unread`. Unknown
/// or repeated parameters are refused, so a typo is not silently ignored.
fn list_query(query: &str) -> Result<ApiCall, ApiError> {
    let mut limit = None;
    let mut cursor = None;
    let mut since = None;
    let mut unread = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let invalid = |why: &str| {
            ApiError::invalid(format!(
                "Invalid `{name}`: {why}, not '{}'.",
                printable(&value)
            ))
        };
        let repeated = || ApiError::invalid(format!("The parameter `{name}` is given twice."));
        match name.as_ref() {
            "limit" => {
                let n = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| invalid(&format!("must be an integer from 1 to {MAX_PAGE}")))?;
                if limit.replace(n).is_some() {
                    return Err(repeated());
                }
            }
            "cursor" => {
                let id = message_id(&value).map_err(|_| invalid("must be a positive integer"))?;
                if cursor.replace(id).is_some() {
                    return Err(repeated());
                }
            }
            "since" => {
                let at = Timestamp::parse_rfc3339(&value).ok_or_else(|| {
                    invalid("must be an RFC 3339 time such as 2026-03-26T12:00:00Z")
                })?;
                if since.replace(at).is_some() {
                    return Err(repeated());
                }
            }
            "unread" => {
                let flag = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("must be true or false")),
                };
                if unread.replace(flag).is_some() {
                    return Err(repeated());
                }
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "Unknown parameter `{}`; use limit, cursor, since or unread.",
                    printable(&name)
                )));
            }
        }
    }
    Ok(ApiCall::ListMessages {
        limit: limit.unwrap_or(DEFAULT_PAGE),
        cursor,
        since,
        unread: unread.unwrap_or(false),
    })
}
