//! Routes, authentication and signup.

use crate::{Directory, Entropy, HttpRequest, InboxNamespace, PortError};
use protocol::api::{Health, SignupRequest, SignupResponse};
use protocol::key::KEY_RANDOM_BYTES;
use protocol::limits::MAX_JSON_BODY;
use protocol::wire::{ApiCall, INBOX_RPC_URL, InboxRequest};
use protocol::{ApiError, ApiKey, ErrorCode, Handle, KeyHash, Reply};
use serde::de::DeserializeOwned;

/// How many generated handles a signup without one tries before giving up.
/// Each has 50 random bits, so a second try is already vanishingly rare.
const GENERATED_HANDLE_ATTEMPTS: usize = 3;

/// Deployment settings the router reads from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterConfig {
    /// The domain of every inbox's address. Signup and authenticated calls
    /// answer 503 `not_configured` without it.
    pub mail_domain: Option<String>,
}

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
        match self.route(request, entropy).await {
            Ok(reply) => reply,
            Err(error) => Reply::error(&error),
        }
    }

    async fn route(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
    ) -> Result<Reply, ApiError> {
        if request.body.len() > MAX_JSON_BODY {
            return Err(too_large());
        }
        let method = request.method.as_str();
        match request.path.as_str() {
            "/api/health" => {
                allow(method, &["GET", "HEAD"])?;
                Ok(Reply::json(
                    200,
                    &Health {
                        ok: true,
                        service: protocol::SERVICE_NAME.to_owned(),
                        version: protocol::VERSION.to_owned(),
                    },
                ))
            }
            "/api/signup" => {
                allow(method, &["POST"])?;
                self.signup(request, entropy).await
            }
            "/api/me" => {
                allow(method, &["GET"])?;
                self.authenticated(request, ApiCall::Me).await
            }
            _ => Err(ApiError::not_found(format!(
                "There is no endpoint at {}.",
                printable(&request.path)
            ))),
        }
    }

    fn mail_domain(&self) -> Result<&str, ApiError> {
        self.config.mail_domain.as_deref().ok_or_else(|| {
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
    ) -> Result<Reply, ApiError> {
        let body: SignupRequest = if request.body.iter().all(u8::is_ascii_whitespace) {
            // `curl -X POST .../api/signup` with no body asks for a generated handle.
            SignupRequest::default()
        } else {
            json_body(request)?
        };
        let mail_domain = self.mail_domain()?;
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
            match self.register(&handle, &key).await {
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

    /// Claims `handle` in its InboxDO for `key`, publishes the key and handle in
    /// KV, then confirms. The DO decides ownership, so concurrent signups for
    /// one handle have exactly one winner whatever KV shows. On any failure after
    /// the claim the claim is released (or, if even that fails, expires), so a
    /// signup either returns working credentials or leaves the handle free.
    async fn register(&self, handle: &Handle, key: &ApiKey) -> Result<(), ApiError> {
        let hash = key.hash();
        let id = self
            .namespace
            .id_for_handle(handle.as_str())
            .map_err(unavailable)?;
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

    async fn authenticated(&self, request: &HttpRequest, call: ApiCall) -> Result<Reply, ApiError> {
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
        self.call(
            &id,
            &InboxRequest::Api {
                key_hash: hash,
                mail_domain,
                call,
            },
        )
        .await
    }

    async fn call(&self, id: &str, request: &InboxRequest) -> Result<Reply, ApiError> {
        let body = serde_json::to_vec(request).map_err(|error| {
            log::error!("serializing an inbox request failed: {error}");
            ApiError::internal()
        })?;
        self.namespace.send(id, body).await.map_err(|error| {
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
