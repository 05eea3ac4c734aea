//! The authenticated API calls: one [`ApiCall`] in, one answer out.
//!
//! `me`, the message list, one message, marking read and the raw message
//! are answered here from [`crate::store`]; the webhook calls are answered by
//! [`crate::webhook`], and a send is started by [`crate::send`] (its first
//! attempt runs after this synchronous step, in the request shell).

use crate::attachments;
use crate::erase;
use crate::error::InboxError;
use crate::idempotency;
use crate::keys::{self, UsedKey};
use crate::owner::Owner;
use crate::ports::InboxConfig;
use crate::reply::{self, Original};
use crate::search::{self, SearchError};
use crate::send::{self, Outgoing, Started};
use crate::service::RawMessage;
use crate::store;
use crate::threads;
use crate::webhook::{self, Webhook};
use protocol::api::{
    KeyScope, Me, Message, MessageList, RecipientKind, Thread, ThreadList, ThreadMessage,
    WaitResult,
};
use protocol::limits::{MAX_THREAD_MESSAGES, MAX_THREAD_TEXT_BYTES, MAX_WAIT_SECONDS};
use protocol::search::Query;
use protocol::wire::{Access, ApiCall, Erased, ReplyPlan, RoutedRecipient};
use protocol::{ApiError, Reply, Timestamp};
use schema::{Sql, Value};

/// What an API call needs after its synchronous step.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The reply, complete.
    Reply(Reply),
    /// A send was stored and its job claimed: attempt it now.
    Send(Started),
    /// A stored raw message, to be read one chunk at a time.
    Raw(RawMessage),
    /// A wait with nothing to answer yet: the shell waits for an arrival.
    Wait(Waiting),
    /// The live event socket, to be accepted by the host.
    Socket {
        /// The `Sec-WebSocket-Protocol` to echo.
        protocol: Option<String>,
    },
    /// The reply, after which the alarm is planned again (a setting it
    /// depends on changed).
    Replan(Reply),
    /// A key was deleted: its live sockets are closed (tag: its hash, hex).
    KeyDeleted { reply: Reply, tag: String },
    /// The inbox was erased: its alarm, waits and sockets end.
    Erased(Reply),
}

/// A wait for mail that has not arrived: what to look for, and until when.
#[derive(Debug)]
pub(crate) struct Waiting {
    /// Only messages matching this.
    pub(crate) query: Option<Query>,
    /// Only ids above this.
    pub(crate) after: u64,
    /// Answer `{message: null}` at this time.
    pub(crate) deadline: Timestamp,
}

/// Message `id` whole, as `GET /api/messages/:id` answers it.
pub(crate) fn message(sql: &dyn Sql, id: u64) -> Result<Option<Message>, InboxError> {
    let (Some(summary), Some(mut detail)) = (store::summary(sql, id)?, store::detail(sql, id)?)
    else {
        return Ok(None);
    };
    detail.attachments = attachments::list(sql, id)?;
    detail.recipients = store::recipients(sql, id)?
        .iter()
        .map(store::RecipientRow::outcome)
        .collect();
    let (codes, links) = search::findings_of(sql, id, summary.subject.as_deref(), &detail)?;
    detail.codes = codes;
    detail.links = links;
    Ok(Some(Message { summary, detail }))
}

/// The answer of a wait: message `id` (gone again already: as if none came),
/// or `{message: null}`.
pub(crate) fn waited(sql: &dyn Sql, after: u64, id: Option<u64>) -> Result<Reply, InboxError> {
    let message = match id {
        Some(id) => message(sql, id)?,
        None => None,
    };
    Ok(Reply::json(200, &WaitResult { message, after }))
}

/// The caller: the inbox's owner, on the deployment's mail domain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller<'a> {
    pub(crate) owner: &'a Owner,
    pub(crate) mail_domain: &'a str,
    /// The key the call came with.
    pub(crate) key: UsedKey,
}

/// Answers one authenticated call.
pub(crate) fn call(
    sql: &dyn Sql,
    config: &InboxConfig,
    caller: Caller<'_>,
    call: ApiCall,
    payload: &[u8],
    now: Timestamp,
) -> Result<Outcome, InboxError> {
    // The InboxDO decides what a key may do, whatever the router checked.
    if caller.key.scope == KeyScope::Read && call.access() == Access::Write {
        return Err(ApiError::forbidden().into());
    }
    // A repeat of a send with its Idempotency-Key is answered before
    // anything else about it is looked at (its original may be gone).
    let idempotent = idempotency::of(&call, payload)?;
    if let Some(repeat) = &idempotent
        && let Some(reply) = idempotency::replay(sql, repeat, now)?
    {
        return Ok(Outcome::Reply(reply));
    }
    let idempotent = idempotent.as_ref();
    let reply = match call {
        ApiCall::Me => me(caller),
        ApiCall::ListMessages {
            limit,
            cursor,
            since,
            unread,
        } => {
            let (messages, next_cursor) = store::list(sql, limit, cursor, since, unread)?;
            Reply::json(
                200,
                &MessageList {
                    messages,
                    next_cursor,
                },
            )
        }
        ApiCall::GetMessage { id } => match message(sql, id)? {
            Some(message) => Reply::json(200, &message),
            None => return Err(no_such_message(id)),
        },
        ApiCall::Search { q, limit, cursor } => {
            let page = search::Page { limit, cursor };
            match search::search(sql, &q, &page) {
                Ok(results) => Reply::json(200, &results),
                Err(SearchError::Refused(error)) => return Err(error.into()),
                Err(SearchError::Storage(error)) => return Err(error.into()),
            }
        }
        ApiCall::Wait {
            after,
            timeout_millis,
            q,
        } => {
            let query = match q.as_deref().map(Query::parse).transpose() {
                Ok(query) => query,
                Err(error) => return Err(ApiError::invalid(format!("Invalid `q`: {error}")).into()),
            };
            let after = match after {
                Some(after) => after,
                None => store::last_id(sql)?.max(0) as u64,
            };
            if let Some(id) = search::first_arrival(sql, query.as_ref(), after)? {
                return Ok(Outcome::Reply(waited(sql, after, Some(id))?));
            }
            let timeout = timeout_millis.clamp(1_000, MAX_WAIT_SECONDS * 1_000);
            return Ok(Outcome::Wait(Waiting {
                query,
                after,
                deadline: now.plus_millis(i64::try_from(timeout).unwrap_or(i64::MAX)),
            }));
        }
        ApiCall::Events { protocol } => return Ok(Outcome::Socket { protocol }),
        ApiCall::MarkRead { id, read } => match store::set_read(sql, id, read)? {
            Some(summary) => Reply::json(200, &summary),
            None => return Err(no_such_message(id)),
        },
        ApiCall::GetRaw { id } => match store::raw_chunks(sql, id)? {
            Some(chunks) => {
                let headers = vec![
                    ("content-type".to_owned(), "message/rfc822".to_owned()),
                    (
                        "content-disposition".to_owned(),
                        format!("attachment; filename=\"message-{id}.eml\""),
                    ),
                ];
                return Ok(Outcome::Raw(RawMessage::whole(200, headers, id, chunks)));
            }
            None => return Err(no_such_message(id)),
        },
        ApiCall::GetAttachment { id, attachment } => {
            return Ok(Outcome::Raw(attachments::download(sql, id, &attachment)?));
        }
        ApiCall::ListThreads {
            limit,
            cursor,
            unread,
        } => {
            let (threads, next_cursor) = threads::list(sql, limit, cursor, unread)?;
            Reply::json(
                200,
                &ThreadList {
                    threads,
                    next_cursor,
                },
            )
        }
        ApiCall::GetThread { id } => thread(sql, id)?,
        ApiCall::DeleteThread { id } => {
            if !threads::delete(sql, id)? {
                return Err(no_such_thread(id));
            }
            Reply::no_content()
        }
        ApiCall::Send {
            to,
            subject,
            text,
            html,
            route,
            reply_to,
            mut recipients,
            attachments,
            idempotency_key: _,
        } => {
            let attachments = send::files_from(attachments, payload)?;
            if recipients.is_empty() {
                // From a router that predates recipient lists, or a send to
                // one recipient: `to`, by `route`.
                recipients.push(RoutedRecipient {
                    address: to.clone(),
                    kind: RecipientKind::To,
                    route,
                });
            }
            let outgoing = Outgoing {
                from: caller.owner.handle.address(caller.mail_domain),
                to,
                recipients,
                reply_to,
                in_reply_to: None,
                references: Vec::new(),
                subject,
                text,
                html,
                thread: None,
                attachments,
            };
            return send::begin(sql, config, caller.owner, outgoing, idempotent, now);
        }
        ApiCall::ReplyRecipients { id, reply_all } => {
            let original = Original::load(sql, id)?;
            let own = caller.owner.handle.address(caller.mail_domain);
            let planned = reply::recipients(&original, &own, reply_all)?;
            Reply::json(
                200,
                &ReplyPlan {
                    to: planned.to,
                    cc: planned.cc,
                },
            )
        }
        ApiCall::Reply {
            id,
            reply_all,
            text,
            html,
            recipients,
            attachments,
            idempotency_key: _,
        } => {
            let files = send::files_from(attachments, payload)?;
            let original = Original::load(sql, id)?;
            let own = caller.owner.handle.address(caller.mail_domain);
            // The router routed the plan of step 1; a router that answered
            // another plan must not send elsewhere.
            reply::recipients(&original, &own, reply_all)?.check_routed(id, &recipients)?;
            let composed = reply::reply(&original, text.as_deref(), html.as_deref());
            return send::begin(
                sql,
                config,
                caller.owner,
                composed.outgoing(own, recipients, files),
                idempotent,
                now,
            );
        }
        ApiCall::Forward {
            id,
            text,
            html,
            recipients,
            include_attachments,
            attachments: added,
            idempotency_key: _,
        } => {
            let added = send::files_from(added, payload)?;
            let original = Original::load(sql, id)?;
            let own = caller.owner.handle.address(caller.mail_domain);
            let composed = reply::forward(&original, text.as_deref(), html.as_deref());
            // The original's files, decoded from it byte for byte, then the
            // new ones; refused before they are decoded when they would
            // make the forward too large.
            let mut files = if include_attachments {
                let rest = payload.len();
                send::forward_fits(config, &recipients, attachments::files_size(sql, id)?, rest)?;
                attachments::files_of(sql, id)?
            } else {
                Vec::new()
            };
            if let Some(taken) = added.iter().find_map(|file| {
                file.content_id
                    .as_ref()
                    .filter(|cid| files.iter().any(|f| f.content_id.as_ref() == Some(*cid)))
            }) {
                return Err(ApiError::invalid(format!(
                    "Invalid `attachments`: the Content-ID {taken:?} is already the forwarded \
                     message's; choose another."
                ))
                .into());
            }
            files.extend(added);
            return send::begin(
                sql,
                config,
                caller.owner,
                composed.outgoing(own, recipients, files),
                idempotent,
                now,
            );
        }
        ApiCall::PutWebhook {
            url,
            secret,
            allow_http_loopback,
        } => webhook::put(
            sql,
            Webhook {
                url,
                secret,
                allow_http_loopback,
                created_at: now,
            },
        )?,
        ApiCall::GetWebhook => webhook::get(sql)?,
        ApiCall::DeleteWebhook => webhook::delete(sql)?,
        ApiCall::ListDeliveries => webhook::deliveries(sql)?,
        ApiCall::DeleteMessage { id } => {
            if !erase::delete_message(sql, id)? {
                return Err(no_such_message(id));
            }
            Reply::no_content()
        }
        ApiCall::UpdateMe { retention_days } => {
            let days = protocol::lifecycle::check_retention(retention_days)?;
            sql.exec(
                "UPDATE inbox SET retention_days = ? WHERE id = 1",
                &[days.map_or(Value::Null, |d| Value::Integer(i64::from(d)))],
            )?;
            let owner = Owner {
                retention_days: days,
                ..caller.owner.clone()
            };
            return Ok(Outcome::Replan(me(Caller {
                owner: &owner,
                ..caller
            })));
        }
        ApiCall::DeleteInbox => {
            let erased = Erased {
                handle: caller.owner.handle.clone(),
                key_hashes: keys::all_hashes(sql)?,
            };
            erase::erase_inbox(sql, caller.owner.handle.as_str(), now)?;
            return Ok(Outcome::Erased(Reply::json(200, &erased)));
        }
        ApiCall::ListKeys => keys::list(sql)?,
        ApiCall::Export => {
            let headers = vec![
                ("content-type".to_owned(), "application/mbox".to_owned()),
                (
                    "content-disposition".to_owned(),
                    format!("attachment; filename=\"{}.mbox\"", caller.owner.handle),
                ),
            ];
            return Ok(Outcome::Raw(RawMessage::export(headers)));
        }
        ApiCall::CreateKey {
            key_hash,
            name,
            scope,
            prefix,
        } => keys::create(sql, &key_hash, &name, scope, &prefix, now)?,
        ApiCall::ConfirmKey { key_hash } => keys::confirm(sql, &key_hash)?,
        ApiCall::DropKey { key_hash } => keys::drop_pending(sql, &key_hash)?,
        ApiCall::DeleteKey { id } => {
            let (reply, tag) = keys::delete(sql, id)?;
            return Ok(Outcome::KeyDeleted { reply, tag });
        }
    };
    Ok(Outcome::Reply(reply))
}

/// `GET /api/me`: the counters come from the owner row, never from a count
/// over the messages.
fn me(caller: Caller<'_>) -> Reply {
    let owner = caller.owner;
    Reply::json(
        200,
        &Me {
            email: owner.handle.address(caller.mail_domain),
            handle: owner.handle.clone(),
            created_at: owner.created_at,
            message_count: owner.message_count,
            retention_days: owner.retention_days,
            scope: caller.key.scope,
        },
    )
}

/// `GET /api/threads/:id`: the thread and its latest messages, oldest
/// first, each with its new text, cut at `MAX_THREAD_TEXT_BYTES` so that
/// the answer stays bounded (200 messages of 64 KiB at most). Details are
/// read one at a time.
fn thread(sql: &dyn Sql, id: u64) -> Result<Reply, InboxError> {
    let Some(summary) = threads::summary(sql, id)? else {
        return Err(no_such_thread(id));
    };
    let mut messages = Vec::new();
    for message in threads::message_ids(sql, id, MAX_THREAD_MESSAGES)? {
        if let Some(summary) = store::summary(sql, message)? {
            // A detail that cannot be read (the message is still listed
            // and its raw bytes readable) gives no text, not a failed thread.
            let mut extracted_text = match store::detail(sql, message) {
                Ok(detail) => detail.and_then(|d| d.extracted_text),
                Err(error) => {
                    log::error!("a message detail in a thread is unreadable: {error}");
                    None
                }
            };
            let mut extracted_text_truncated = false;
            if let Some(text) = &mut extracted_text
                && text.len() > MAX_THREAD_TEXT_BYTES
            {
                let mut cut = MAX_THREAD_TEXT_BYTES;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                extracted_text_truncated = true;
            }
            messages.push(ThreadMessage {
                summary,
                extracted_text,
                extracted_text_truncated,
            });
        }
    }
    Ok(Reply::json(200, &Thread { summary, messages }))
}

fn no_such_thread(id: u64) -> InboxError {
    ApiError::not_found(format!("There is no thread {id} in this inbox.")).into()
}

fn no_such_message(id: u64) -> InboxError {
    ApiError::not_found(format!("There is no message {id} in this inbox.")).into()
}
