//! The owner calls that change what KV holds, so the router takes part:
//! `POST /api/keys` (claim in the InboxDO, publish in KV, confirm, as a
//! signup does), `DELETE /api/keys/:id` and `DELETE /api/me` (the InboxDO
//! decides and forgets first; KV's entries go after). KV only routes: an
//! entry left behind by a failure reaches an InboxDO that no longer knows
//! the key, and is refused there.

use crate::error::RouterError;
use crate::extract::json_body;
use crate::router::{Caller, handle_index_key, key_index_key};
use crate::routes::{Method, OwnerRoute};
use crate::{Directory, Entropy, HttpRequest, InboxNamespace, Router};
use protocol::api::{CreateKeyRequest, CreatedKey, KeyInfo};
use protocol::key::KEY_RANDOM_BYTES;
use protocol::lifecycle::check_key_name;
use protocol::wire::{ApiCall, Erased, KeyRemoved};
use protocol::{ApiError, ApiKey, KeyHash, Reply};
use serde::de::DeserializeOwned;

impl<D: Directory, N: InboxNamespace> Router<D, N> {
    /// The answer of a route and method that needs the router's part, or
    /// `None` for every other (a plain call).
    pub(crate) async fn lifecycle_call(
        &self,
        route: &OwnerRoute,
        method: Method,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        caller: &Caller,
    ) -> Result<Option<Reply>, RouterError> {
        Ok(Some(match (route, method) {
            (OwnerRoute::Keys, Method::Post) => self.create_key(request, entropy, caller).await?,
            (OwnerRoute::Key(id), Method::Delete) => self.delete_key(id.id()?, caller).await?,
            (OwnerRoute::Me, Method::Delete) => self.delete_inbox(caller).await?,
            _ => return Ok(None),
        }))
    }

    /// `POST /api/keys`: the key is noted pending in the InboxDO (which
    /// refuses a `read` caller before anything is written), published in
    /// KV, then confirmed; a failure after the first step undoes what was
    /// done, and the key is shown only once it works.
    async fn create_key(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        caller: &Caller,
    ) -> Result<Reply, RouterError> {
        let body: CreateKeyRequest = json_body(request)?;
        let name = check_key_name(&body.name)?;
        let mut bytes = [0u8; KEY_RANDOM_BYTES];
        entropy.fill(&mut bytes)?;
        let key = ApiKey::from_random(bytes);
        let hash = key.hash();
        let noted = self
            .ask_as(
                caller,
                ApiCall::CreateKey {
                    key_hash: hash,
                    name,
                    scope: body.scope,
                    prefix: key.prefix().to_owned(),
                },
            )
            .await?;
        if !noted.is_success() {
            return Err(RouterError::from_inbox(&noted));
        }
        let entry = key_index_key(&hash);
        if let Err(error) = self.directory().put(&entry, caller.object_id()).await {
            self.undo_key(caller, &hash, None).await;
            return Err(error.into());
        }
        let confirmed = match self
            .ask_as(caller, ApiCall::ConfirmKey { key_hash: hash })
            .await
        {
            Ok(reply) if reply.status == 201 => reply,
            Ok(reply) => {
                self.undo_key(caller, &hash, Some(&entry)).await;
                return Err(RouterError::from_inbox(&reply));
            }
            Err(error) => {
                self.undo_key(caller, &hash, Some(&entry)).await;
                return Err(error);
            }
        };
        let info: KeyInfo = read_answer(&confirmed)?;
        Ok(Reply::json(
            201,
            &CreatedKey {
                info,
                api_key: key.expose().to_owned(),
            },
        ))
    }

    /// Best-effort undo of a key creation that failed half-way: whatever
    /// fails here grants nothing (a pending key never works, and expires).
    async fn undo_key(&self, caller: &Caller, hash: &KeyHash, entry: Option<&str>) {
        if let Some(entry) = entry
            && let Err(error) = self.delete_index_entry(entry).await
        {
            log::warn!("key creation cleanup: deleting the key index entry failed: {error}");
        }
        if let Err(error) = self
            .ask_as(caller, ApiCall::DropKey { key_hash: *hash })
            .await
        {
            log::warn!("key creation cleanup: dropping the pending key failed: {error}");
        }
    }

    /// `DELETE /api/keys/:id`: the InboxDO forgets the key (it stops
    /// working at once), then its KV entry goes.
    async fn delete_key(&self, id: u64, caller: &Caller) -> Result<Reply, RouterError> {
        let answer = self.ask_as(caller, ApiCall::DeleteKey { id }).await?;
        if answer.status != 200 {
            return Err(RouterError::from_inbox(&answer));
        }
        let removed: KeyRemoved = read_answer(&answer)?;
        if let Err(error) = self
            .delete_index_entry(&key_index_key(&removed.key_hash))
            .await
        {
            log::warn!("deleting a key: its KV entry stays (the inbox refuses it): {error}");
        }
        Ok(Reply::no_content())
    }

    /// `DELETE /api/me`: the InboxDO erases itself and keeps its tombstone,
    /// then the KV entries of its handle and keys go (so mail to it is
    /// refused from KV alone, without waking anything).
    async fn delete_inbox(&self, caller: &Caller) -> Result<Reply, RouterError> {
        let answer = self.ask_as(caller, ApiCall::DeleteInbox).await?;
        if answer.status != 200 {
            return Err(RouterError::from_inbox(&answer));
        }
        let erased: Erased = read_answer(&answer)?;
        let entries = erased
            .key_hashes
            .iter()
            .map(key_index_key)
            .chain([handle_index_key(&erased.handle)]);
        for entry in entries {
            if let Err(error) = self.delete_index_entry(&entry).await {
                log::warn!(
                    "deleting an inbox: a KV entry stays (its tombstone refuses it): {error}"
                );
            }
        }
        Ok(Reply::no_content())
    }
}

/// An InboxDO answer the router reads itself.
fn read_answer<T: DeserializeOwned>(reply: &Reply) -> Result<T, ApiError> {
    serde_json::from_slice(&reply.body).map_err(|e| {
        log::error!("the inbox answered a lifecycle call that does not read: {e}");
        ApiError::unavailable("The inbox could not be reached. Retry shortly.")
    })
}
