//! `POST /api/signup`: the throttle on the client's address, then the signup
//! protocol (claim the handle's InboxDO, publish the key and handle in KV
//! together, confirm), undone on any failure after the claim.

use crate::error::RouterError;
use crate::extract::json_body;
use crate::router::{handle_index_key, key_index_key};
use crate::{Directory, Entropy, HttpRequest, InboxNamespace, Router, Trace};
use protocol::api::{SignupRequest, SignupResponse};
use protocol::key::KEY_RANDOM_BYTES;
use protocol::wire::InboxRequest;
use protocol::{ApiError, ApiKey, ErrorCode, Handle, KeyHash, Reply};

/// How many generated handles a signup without one tries before giving up.
/// Each has 50 random bits, so a second try is already vanishingly rare.
const GENERATED_HANDLE_ATTEMPTS: usize = 3;

impl<D: Directory, N: InboxNamespace> Router<D, N> {
    pub(crate) async fn signup(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        trace: &Trace,
    ) -> Result<Reply, RouterError> {
        let body: SignupRequest = if request.body.iter().all(u8::is_ascii_whitespace) {
            // `curl -X POST .../api/signup` with no body asks for a generated handle.
            SignupRequest::default()
        } else {
            json_body(request)?
        };
        let mail_domain = self.mail_domain()?;
        self.throttle_signup(request).await?;
        let wanted = match body.handle {
            Some(text) => Some(
                Handle::parse(&text)
                    .map_err(|e| ApiError::invalid(format!("Invalid `handle`: {e}.")))?,
            ),
            None => None,
        };

        let mut key_bytes = [0u8; KEY_RANDOM_BYTES];
        entropy.fill(&mut key_bytes)?;
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
                    entropy.fill(&mut bytes)?;
                    Handle::generated(bytes)
                }
            };
            match self.register(&handle, &key, trace).await {
                Err(error) if error.code() == ErrorCode::HandleTaken && attempt < attempts => {
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
        Err(ApiError::unavailable("Could not find a free generated handle; try again.").into())
    }

    /// Takes a token from the signup bucket of the client's address, held in
    /// the Durable Object named for it (consistent, unlike KV); without one
    /// the limiter's 429, with its `Retry-After`, is the answer. The address
    /// is Cloudflare's `CF-Connecting-IP`; IPv6 clients are counted per /64,
    /// as one host usually holds a whole /64.
    async fn throttle_signup(&self, request: &HttpRequest) -> Result<(), RouterError> {
        let limit = self.config().signups_per_hour;
        if limit == 0 {
            return Ok(());
        }
        let name = format!("signup-limit:{}", client_bucket(request));
        let id = self.namespace().id_for_handle(&name)?;
        let reply = self
            .call(
                &id,
                &InboxRequest::Throttle {
                    limit,
                    window_millis: 3_600_000,
                },
            )
            .await?;
        match reply.status {
            204 => Ok(()),
            _ => Err(RouterError::from_inbox(&reply)),
        }
    }

    /// Claims `handle` in its InboxDO for `key`, publishes the key and handle in
    /// KV, then confirms. The DO decides ownership, so concurrent signups for
    /// one handle have exactly one winner whatever KV shows. On any failure after
    /// the claim the claim is released (or, if even that fails, expires), so a
    /// signup either returns working credentials or leaves the handle free.
    async fn register(
        &self,
        handle: &Handle,
        key: &ApiKey,
        trace: &Trace,
    ) -> Result<(), RouterError> {
        let hash = key.hash();
        let id = self.namespace().id_for_handle(handle.as_str())?;
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
            return Err(RouterError::from_inbox(&claimed));
        }

        // The two KV entries are written together: one round trip, not two.
        // The handle entry is a pure function of the handle (the id is derived
        // from it), so it is correct whoever ends up owning the handle and is
        // never removed on failure: removing it could race with a winner's write.
        // If either write fails the key entry is deleted (it may have landed).
        let key_entry = key_index_key(&hash);
        let handle_entry = handle_index_key(handle);
        let (key_written, handle_written) = futures_util::future::join(
            self.directory().put(&key_entry, &id),
            self.directory().put(&handle_entry, &id),
        )
        .await;
        if let Err(error) = key_written.and(handle_written) {
            self.abandon(&id, &hash, Some(&key_entry)).await;
            return Err(error.into());
        }
        let confirmed = self
            .call(
                &id,
                &InboxRequest::Confirm {
                    key_hash: hash,
                    prefix: Some(key.prefix().to_owned()),
                },
            )
            .await;
        match confirmed {
            Ok(reply) if reply.is_success() => Ok(()),
            Ok(reply) => {
                self.abandon(&id, &hash, Some(&key_entry)).await;
                let error = RouterError::from_inbox(&reply);
                Err(if error.code() == ErrorCode::Conflict {
                    ApiError::new(
                        ErrorCode::HandleTaken,
                        format!("The handle '{handle}' is already taken."),
                    )
                    .into()
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
            && let Err(error) = self.delete_index_entry(entry).await
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
