//! What each route of a key's owner asks of the caller's inbox: the
//! [`ApiCall`] built from the request, with the checks only the router can
//! make (a send's route, which needs the domains and KV; a webhook URL's
//! SSRF guard and its new secret).

use crate::error::RouterError;
use crate::extract::{
    events_call, json_body, list_query, printable, search_query, thread_list_query, wait_query,
};
use crate::http::too_large;
use crate::router::{Caller, handle_index_key};
use crate::routes::{Method, OwnerRoute};
use crate::{Directory, Entropy, HttpRequest, InboxNamespace, Router};
use protocol::address::{Recipient, RecipientError};
use protocol::api::{
    ForwardRequest, MarkRead, NewAttachment, RecipientKind, ReplyRequest, SendRequest, UpdateMe,
    WebhookRequest,
};
use protocol::lifecycle::{IDEMPOTENCY_HEADER, check_idempotency_key, check_retention};
use protocol::limits::MAX_JSON_BODY;
use protocol::outbound::{self, Attached, ValidRecipient, bodies};
use protocol::webhook_signature::WebhookSecret;
use protocol::webhook_url::{UrlPolicy, check_webhook_url};
use protocol::wire::{ApiCall, ReplyPlan, RoutedRecipient, SendRoute};
use protocol::{ApiError, ErrorCode};

impl<D: Directory, N: InboxNamespace> Router<D, N> {
    /// The call `route` makes with `method` (one of the route's methods),
    /// and its payload: the bytes of the files a message attaches (empty
    /// for every other call).
    pub(crate) async fn owner_call(
        &self,
        route: &OwnerRoute,
        method: Method,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
        caller: &Caller,
    ) -> Result<(ApiCall, Vec<u8>), RouterError> {
        let with_files = |(call, attached): (ApiCall, Attached)| (call, attached.payload);
        Ok(match route {
            OwnerRoute::Messages if method == Method::Post => {
                with_files(self.send_call(request).await?)
            }
            OwnerRoute::MessageReply(id) => {
                with_files(self.reply_call(id.id()?, request, caller).await?)
            }
            OwnerRoute::MessageForward(id) => {
                with_files(self.forward_call(id.id()?, request).await?)
            }
            route => (
                self.plain_call(route, method, request, entropy)?,
                Vec::new(),
            ),
        })
    }

    /// The call of a route that carries no files.
    fn plain_call(
        &self,
        route: &OwnerRoute,
        method: Method,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
    ) -> Result<ApiCall, RouterError> {
        // Each route answers only the methods `Route::methods` lists; the
        // last arm of a method match is never reached, and answers as if.
        let refused = || RouterError::method_not_allowed(request, route.methods());
        Ok(match route {
            OwnerRoute::Me => match method {
                Method::Get => ApiCall::Me,
                Method::Patch => {
                    // `retentionDays` is required (null included): a body
                    // without it is refused while it is read.
                    let body: UpdateMe = json_body(request)?;
                    ApiCall::UpdateMe {
                        retention_days: check_retention(body.retention_days.flatten())?,
                    }
                }
                // DELETE is answered by `lifecycle_call`.
                _ => return Err(refused()),
            },
            OwnerRoute::Keys => match method {
                Method::Get => ApiCall::ListKeys,
                // POST is answered by `lifecycle_call`.
                _ => return Err(refused()),
            },
            // Answered by `lifecycle_call`.
            OwnerRoute::Key(_) => return Err(refused()),
            OwnerRoute::Messages => match method {
                Method::Get => list_query(&request.query)?,
                _ => return Err(refused()),
            },
            OwnerRoute::Message(id) => match method {
                Method::Get => ApiCall::GetMessage { id: id.id()? },
                Method::Patch => {
                    let id = id.id()?;
                    let body: MarkRead = json_body(request)?;
                    ApiCall::MarkRead {
                        id,
                        read: body.read,
                    }
                }
                Method::Delete => ApiCall::DeleteMessage { id: id.id()? },
                _ => return Err(refused()),
            },
            OwnerRoute::Search => search_query(&request.query)?,
            OwnerRoute::Wait => wait_query(&request.query)?,
            OwnerRoute::Events => events_call(request)?,
            OwnerRoute::MessageRaw(id) => ApiCall::GetRaw { id: id.id()? },
            OwnerRoute::MessageAttachment(id, part) => ApiCall::GetAttachment {
                id: id.id()?,
                attachment: part.id()?,
            },
            // Answered by `owner_call`, with their files.
            OwnerRoute::MessageReply(_) | OwnerRoute::MessageForward(_) => return Err(refused()),
            OwnerRoute::Threads => thread_list_query(&request.query)?,
            OwnerRoute::Thread(id) => match method {
                Method::Get => ApiCall::GetThread { id: id.id()? },
                Method::Delete => ApiCall::DeleteThread { id: id.id()? },
                _ => return Err(refused()),
            },
            OwnerRoute::Webhook => match method {
                Method::Get => ApiCall::GetWebhook,
                Method::Put => self.webhook_call(request, entropy)?,
                Method::Delete => ApiCall::DeleteWebhook,
                _ => return Err(refused()),
            },
            OwnerRoute::WebhookDeliveries => ApiCall::ListDeliveries,
            OwnerRoute::Export => ApiCall::Export,
        })
    }

    /// `POST /api/messages`: validates the message and decides each
    /// recipient's route. A recipient on one of our domains is delivered
    /// inbox to inbox, so it must be an inbox here; anything else goes
    /// through the relay.
    async fn send_call(&self, request: &HttpRequest) -> Result<(ApiCall, Attached), RouterError> {
        let mut body: SendRequest = json_body(request)?;
        within_limits(request, &mut body, |b| &mut b.attachments)?;
        let valid = body.validate()?;
        let mut recipients = self.routed(valid.recipients).await?;
        let first = recipients
            .first()
            .cloned()
            .ok_or_else(|| ApiError::invalid("Invalid `to`: give at least one address."))?;
        // One recipient travels as before, so an InboxDO that predates
        // recipient lists reads it too.
        if recipients.len() == 1 {
            recipients.clear();
        }
        let call = ApiCall::Send {
            to: first.address,
            subject: valid.subject,
            text: valid.text,
            html: valid.html,
            route: first.route,
            reply_to: valid.reply_to,
            recipients,
            attachments: valid.attachments.files.clone(),
            idempotency_key: idempotency_key(request)?,
        };
        Ok((call, valid.attachments))
    }

    /// `POST /api/messages/:id/reply`: the inbox says who the reply goes to
    /// (it holds the original), the router routes each address as for a
    /// send, and the inbox sends it.
    async fn reply_call(
        &self,
        id: u64,
        request: &HttpRequest,
        caller: &Caller,
    ) -> Result<(ApiCall, Attached), RouterError> {
        let mut body: ReplyRequest = json_body(request)?;
        within_limits(request, &mut body, |b| &mut b.attachments)?;
        bodies(body.text.as_deref(), body.html.as_deref(), true)?;
        // Checked before the inbox is asked anything.
        let attached = outbound::attachments(&body.attachments)?;
        let plan = ApiCall::ReplyRecipients {
            id,
            reply_all: body.reply_all,
        };
        let answer = self.ask_as(caller, plan).await?;
        if answer.status != 200 {
            return Err(RouterError::from_inbox(&answer));
        }
        let plan: ReplyPlan = serde_json::from_slice(&answer.body).map_err(|e| {
            log::error!("the inbox answered a reply plan that does not read: {e}");
            ApiError::unavailable("The inbox could not be reached. Retry shortly.")
        })?;
        // An address of the original that is not one plain address (or is
        // an inbox here that no longer exists) cannot be answered.
        let named = |list: Vec<String>, kind: RecipientKind| {
            list.into_iter().map(move |address| ValidRecipient {
                address,
                kind,
                field: format!("the original's {}", kind.as_str()),
            })
        };
        let planned = named(plan.to, RecipientKind::To)
            .chain(named(plan.cc, RecipientKind::Cc))
            .collect();
        let recipients = self.routed(planned).await?;
        let call = ApiCall::Reply {
            id,
            reply_all: body.reply_all,
            text: body.text,
            html: body.html,
            recipients,
            attachments: attached.files.clone(),
            idempotency_key: idempotency_key(request)?,
        };
        Ok((call, attached))
    }

    /// `POST /api/messages/:id/forward`: its recipients checked and routed
    /// as a send's.
    async fn forward_call(
        &self,
        id: u64,
        request: &HttpRequest,
    ) -> Result<(ApiCall, Attached), RouterError> {
        let mut body: ForwardRequest = json_body(request)?;
        within_limits(request, &mut body, |b| &mut b.attachments)?;
        let valid = outbound::recipients(&body.to, body.cc.as_ref(), body.bcc.as_ref())?;
        bodies(body.text.as_deref(), body.html.as_deref(), false)?;
        let attached = outbound::attachments(&body.attachments)?;
        let recipients = self.routed(valid).await?;
        let call = ApiCall::Forward {
            id,
            text: body.text,
            html: body.html,
            recipients,
            include_attachments: body.include_attachments.unwrap_or(true),
            attachments: attached.files.clone(),
            idempotency_key: idempotency_key(request)?,
        };
        Ok((call, attached))
    }

    /// Each checked recipient with its route, in order (see [`Self::route_of`]).
    async fn routed(
        &self,
        recipients: Vec<ValidRecipient>,
    ) -> Result<Vec<RoutedRecipient>, RouterError> {
        let mut routed = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            let (address, route) = self.route_of(&recipient.address, &recipient.field).await?;
            routed.push(RoutedRecipient {
                address,
                kind: recipient.kind,
                route,
            });
        }
        Ok(routed)
    }

    /// The address (normalized for an inbox here) and route of a recipient
    /// given in `field`.
    async fn route_of(
        &self,
        address: &str,
        field: &str,
    ) -> Result<(String, SendRoute), RouterError> {
        match Recipient::parse(address, &self.config().mail_domains) {
            Ok(recipient) => {
                let object_id = self
                    .index_entry(&handle_index_key(&recipient.handle))
                    .await?
                    .ok_or_else(|| no_inbox_here(field, &recipient.address))?;
                let route = SendRoute::Direct {
                    handle: recipient.handle,
                    object_id,
                    tag: recipient.tag,
                };
                Ok((recipient.address, route))
            }
            Err(RecipientError::ForeignDomain) => Ok((address.to_owned(), SendRoute::Relay)),
            Err(RecipientError::NoSuchMailbox | RecipientError::Malformed) => {
                Err(no_inbox_here(field, address).into())
            }
        }
    }

    /// `PUT /api/webhook`: the URL must pass the SSRF guard; the secret is new.
    fn webhook_call(
        &self,
        request: &HttpRequest,
        entropy: &mut dyn Entropy,
    ) -> Result<ApiCall, RouterError> {
        let body: WebhookRequest = json_body(request)?;
        let policy = UrlPolicy {
            allow_http_loopback: self.config().allow_http_loopback_webhooks,
        };
        let url = check_webhook_url(&body.url, policy)
            .map_err(|refusal| ApiError::invalid(format!("Invalid `url`: it {refusal}.")))?;
        let mut random = [0u8; 32];
        entropy.fill(&mut random)?;
        Ok(ApiCall::PutWebhook {
            url: url.to_string(),
            secret: WebhookSecret::from_random(random).expose(),
            allow_http_loopback: policy.allow_http_loopback,
        })
    }
}

/// A body over [`MAX_JSON_BODY`] is taken only for its attachments: without
/// any it is refused as any other, and with some, what is not their content
/// must still fit [`MAX_JSON_BODY`] (the text and HTML travel to the inbox
/// in a request header, the files as its payload). That is measured on the
/// parsed fields, written again without the contents, so escapes a client
/// put in the base64 (`\/`) count for nothing.
fn within_limits<T: serde::Serialize>(
    request: &HttpRequest,
    body: &mut T,
    files: fn(&mut T) -> &mut Vec<NewAttachment>,
) -> Result<(), ApiError> {
    if request.body.len() <= MAX_JSON_BODY {
        return Ok(());
    }
    if files(body).is_empty() {
        return Err(too_large(MAX_JSON_BODY));
    }
    let contents: Vec<String> = files(body)
        .iter_mut()
        .map(|file| std::mem::take(&mut file.content))
        .collect();
    let rest = serde_json::to_vec(&*body).map_or(usize::MAX, |rest| rest.len());
    for (file, content) in files(body).iter_mut().zip(contents) {
        file.content = content;
    }
    if rest > MAX_JSON_BODY {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "Everything but the attachments' content (text, html, names) takes {rest} \
                 bytes; the limit is {MAX_JSON_BODY}."
            ),
        ));
    }
    Ok(())
}

fn no_inbox_here(field: &str, address: &str) -> ApiError {
    ApiError::invalid(format!(
        "Invalid `{field}`: there is no inbox {} on this deployment.",
        printable(address)
    ))
}

/// The `Idempotency-Key` of a send, reply or forward, when it has one: 400
/// when it is empty or malformed (a client that sends the header means it).
fn idempotency_key(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    match request.header_value(IDEMPOTENCY_HEADER) {
        None => Ok(None),
        Some(text) => check_idempotency_key(text).map(|key| Some(key.to_owned())),
    }
}
