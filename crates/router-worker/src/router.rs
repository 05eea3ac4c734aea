//! The router's shell: a request's route and method, who is calling, and the
//! answer; the rooms it dispatches to are [`crate::signup`],
//! [`crate::calls`] and, for inbound mail, [`crate::mail`].

use crate::error::RouterError;
use crate::extract::printable;
use crate::http::too_large;
use crate::index_cache::IndexCache;
use crate::routes::{Method, OwnerRoute, Route};
use crate::{
    Directory, Entropy, HttpRequest, InboxNamespace, Outgoing, PortError, RouterConfig, Trace,
};
use protocol::api::Health;
use protocol::limits::MAX_JSON_BODY;
use protocol::wire::{ApiCall, INBOX_RPC_URL, InboxRequest};
use protocol::{ApiError, ApiKey, ErrorCode, Handle, KeyHash, Reply};
use std::sync::Arc;

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
    index: Arc<IndexCache>,
}

impl<D: Directory, N: InboxNamespace> Router<D, N> {
    /// A router over `directory` and `namespace`, with an index cache of
    /// its own (see [`IndexCache`]).
    pub fn new(directory: D, namespace: N, config: RouterConfig) -> Self {
        Router {
            directory,
            namespace,
            config,
            index: Arc::default(),
        }
    }

    /// The same router keeping the KV index entries it reads in `index`,
    /// which outlives it (a Worker makes a router per request and keeps one
    /// cache for the isolate).
    pub fn with_index_cache(self, index: Arc<IndexCache>) -> Self {
        Router { index, ..self }
    }

    /// The index entries kept from KV.
    pub fn index_cache(&self) -> &IndexCache {
        &self.index
    }

    /// A routing index entry (`key:` or `handle:`): as kept from an earlier
    /// read, or read from KV and kept when found. Both indexes' values never
    /// change once written, and the InboxDO is the authority on what they
    /// route (see [`IndexCache`]).
    pub(crate) async fn index_entry(&self, key: &str) -> Result<Option<String>, PortError> {
        if let Some(value) = self.index.get(key) {
            return Ok(Some(value));
        }
        let found = self.directory.get(key).await?;
        if let Some(value) = &found {
            self.index.keep(key, value);
        }
        Ok(found)
    }

    /// Deletes a routing index entry from KV, and from the cache.
    pub(crate) async fn delete_index_entry(&self, key: &str) -> Result<(), PortError> {
        self.index.forget(key);
        self.directory.delete(key).await
    }

    /// The directory port (tests inspect it).
    pub fn directory(&self) -> &D {
        &self.directory
    }

    /// The namespace port (tests inspect it).
    pub fn namespace(&self) -> &N {
        &self.namespace
    }

    pub(crate) fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Answers one HTTP request. Never panics and never returns a 5xx for bad
    /// input: every error is in the contract's shape. An authenticated API
    /// call's answer is the InboxDO's, passed through as it is.
    pub async fn handle(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
    ) -> Outgoing<N::Answer> {
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
    ) -> Outgoing<N::Answer> {
        match self.dispatch(request, entropy, trace).await {
            Ok(outgoing) => outgoing,
            Err(error) => Outgoing::Reply(error.into_reply()),
        }
    }

    async fn dispatch(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        trace: &Trace,
    ) -> Result<Outgoing<N::Answer>, RouterError> {
        let parsed = Route::parse(&request.path);
        let limit = parsed
            .as_ref()
            .map_or(MAX_JSON_BODY, |route| route.body_limit(&request.method));
        if request.body.len() > limit {
            return Err(too_large(limit).into());
        }
        let Some(route) = parsed else {
            return Err(ApiError::not_found(format!(
                "There is no endpoint at {}.",
                printable(&request.path)
            ))
            .into());
        };
        let allowed = route.methods();
        let Some(method) = Method::parse(&request.method).filter(|m| allowed.contains(m)) else {
            return Err(RouterError::method_not_allowed(request, allowed));
        };
        let reply = match route {
            Route::Health => health(),
            Route::DeepHealth => self.deep_health().await?,
            Route::OpenApi => text_reply(OPENAPI_JSON, "application/json; charset=utf-8"),
            Route::LlmsTxt => text_reply(LLMS_TXT, "text/plain; charset=utf-8"),
            Route::Console(asset) => {
                crate::console::reply(asset, request.header_value("if-none-match"))
            }
            Route::Signup => self.signup(request, entropy, trace).await?,
            Route::Mcp => self.mcp(request, entropy, trace).await?,
            Route::Owner(route) => {
                // Who is asking is settled first, so a request without a
                // valid key gets 401 whatever else is wrong with it.
                let caller = self.credentials(request, trace).await?;
                return self
                    .owner_answer(&route, method, request, entropy, &caller)
                    .await;
            }
        };
        Ok(Outgoing::Reply(reply))
    }

    /// `GET /api/health/deep`: the router, KV-free, reaches a Durable Object
    /// (the one named `health:probe`, which no handle can name) and its
    /// SQLite answers one read. For monitoring, and the floor of the
    /// end-to-end latency figures.
    async fn deep_health(&self) -> Result<Reply, RouterError> {
        let id = self.namespace.id_for_handle("health:probe")?;
        let reply = self.call(&id, &InboxRequest::Ping).await?;
        if reply.status != 204 {
            log::error!("deep health: the probe object answered {}", reply.status);
            return Err(ApiError::unavailable(
                "A Durable Object or its storage is not answering. Retry shortly.",
            )
            .into());
        }
        Ok(health())
    }

    pub(crate) fn mail_domain(&self) -> Result<&str, ApiError> {
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

    /// The caller's inbox (object id), key hash and the mail domain. The
    /// inbox re-checks the hash itself: KV only routes.
    pub(crate) async fn credentials(
        &self,
        request: &HttpRequest,
        trace: &Trace,
    ) -> Result<Caller, RouterError> {
        // A browser's WebSocket cannot send Authorization: the key may come
        // as a subprotocol of the event socket.
        let key = request
            .header_value("authorization")
            .and_then(ApiKey::from_authorization)
            .or_else(|| {
                request
                    .header_value("sec-websocket-protocol")
                    .filter(|_| {
                        Route::parse(&request.path) == Some(Route::Owner(OwnerRoute::Events))
                    })
                    .and_then(ApiKey::from_websocket_protocols)
                    .map(|(key, _)| key)
            })
            .ok_or_else(ApiError::unauthorized)?;
        let mail_domain = self.mail_domain()?.to_owned();
        let hash = key.hash();
        let id = self
            .index_entry(&key_index_key(&hash))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        trace.inbox(&id);
        Ok(Caller {
            id,
            hash,
            mail_domain,
        })
    }

    /// Sends `call` to the caller's inbox on the caller's behalf; its answer
    /// goes back to the client unread.
    async fn call_with(
        &self,
        caller: &Caller,
        call: ApiCall,
        payload: Vec<u8>,
    ) -> Result<N::Answer, RouterError> {
        let request = InboxRequest::Api {
            key_hash: caller.hash,
            mail_domain: caller.mail_domain.clone(),
            call,
        };
        let payload = (!payload.is_empty()).then(|| N::payload_of(payload));
        let answer = self
            .namespace
            .send(&caller.id, &request, payload)
            .await
            .map_err(unreachable)?;
        if N::status(&answer) == 401 {
            // The inbox refused the key (deleted, or its inbox deleted): the
            // next request reads KV again.
            self.index.forget(&key_index_key(&caller.hash));
        }
        Ok(answer)
    }

    /// What an owner route answers `caller`: the router's own reply (a key
    /// or an inbox created or deleted) or the InboxDO's answer to the
    /// route's call. REST and MCP tool calls both come through here.
    pub(crate) async fn owner_answer(
        &self,
        route: &OwnerRoute,
        method: Method,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        caller: &Caller,
    ) -> Result<Outgoing<N::Answer>, RouterError> {
        if let Some(reply) = self
            .lifecycle_call(route, method, request, entropy, caller)
            .await?
        {
            return Ok(Outgoing::Reply(reply));
        }
        let (call, payload) = self
            .owner_call(route, method, request, entropy, caller)
            .await?;
        Ok(Outgoing::Inbox(
            self.call_with(caller, call, payload).await?,
        ))
    }

    /// An answer read whole (a tool call's, whose result the router writes).
    pub(crate) async fn read_whole(
        &self,
        outgoing: Outgoing<N::Answer>,
    ) -> Result<Reply, RouterError> {
        match outgoing {
            Outgoing::Reply(reply) => Ok(reply),
            Outgoing::Inbox(answer) => N::read(answer).await.map_err(unreachable),
        }
    }

    /// A call made on the caller's behalf whose answer the router reads
    /// itself (the first step of a reply).
    pub(crate) async fn ask_as(
        &self,
        caller: &Caller,
        call: ApiCall,
    ) -> Result<Reply, RouterError> {
        let answer = self.call_with(caller, call, Vec::new()).await?;
        N::read(answer).await.map_err(unreachable)
    }

    /// One of the router's own protocol calls (signup, throttle, probe): its
    /// answer is read whole.
    pub(crate) async fn call(
        &self,
        id: &str,
        request: &InboxRequest,
    ) -> Result<Reply, RouterError> {
        let answer = self
            .namespace
            .send(id, request, None)
            .await
            .map_err(unreachable)?;
        N::read(answer).await.map_err(unreachable)
    }
}

/// An inbox that could not be reached (or whose answer could not be read).
fn unreachable(error: crate::PortError) -> RouterError {
    log::error!("inbox call to {INBOX_RPC_URL} failed: {error}");
    ApiError::unavailable("The inbox could not be reached. Retry shortly.").into()
}

/// Who is calling: the inbox the key routes to, the key's hash, and the mail
/// domain addresses are given on.
#[derive(Debug)]
pub(crate) struct Caller {
    id: String,
    hash: KeyHash,
    mail_domain: String,
}

impl Caller {
    /// The caller's InboxDO (its id, hex).
    pub(crate) fn object_id(&self) -> &str {
        &self.id
    }
}

fn health() -> Reply {
    Reply::json(
        200,
        &Health {
            ok: true,
            service: protocol::SERVICE_NAME.to_owned(),
            version: protocol::VERSION.to_owned(),
        },
    )
}

fn text_reply(text: &str, content_type: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type".to_owned(), content_type.to_owned())],
        body: text.as_bytes().to_vec(),
    }
}
