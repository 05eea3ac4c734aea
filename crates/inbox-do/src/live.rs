//! Waiting for mail, and live events.
//!
//! A wait (`GET /api/messages/wait`) that finds nothing stored registers a
//! wake-up in the object's memory ([`Hub`]) and awaits it, raced against its
//! timeout, as idle time: other requests run meanwhile. Every new message
//! (inbound mail, a delivery from another inbox, a send to oneself) wakes
//! every waiter, and each looks again for its own match, so many waiters
//! each get the message and a waiter for `q=subject:code` sleeps on through
//! other mail. The check and the registration are one synchronous step, so
//! no arrival falls between them. A waiter whose client went away is dropped
//! at the next arrival or registration (its receiver is gone), and at most
//! [`MAX_WAITERS`] wait at once. When the object goes away mid-wait (a
//! deploy, a restart) the client gets 503 `unavailable` from the router,
//! and retries with the same `after`: nothing it waited for is lost, since
//! the answer comes from storage.
//!
//! Live events go to the inbox's hibernatable WebSockets through
//! [`Platform::publish`]: `message.received` when mail is stored and
//! `message.sent` when a send leaves the queue. A client's `subscribe`
//! replays what it missed from storage ([`frame`]).

use crate::api::{self, Waiting};
use crate::error::{InboxError, answer};
use crate::ports::Platform;
use crate::search;
use crate::store;
use futures_channel::oneshot;
use futures_util::future::{Either, select};
use protocol::api::{ClientFrame, Direction, LiveEvent, MessageSummary, SendStatus};
use protocol::limits::{MAX_CLIENT_FRAME, MAX_REPLAY, MAX_WAITERS};
use protocol::{ApiError, ErrorCode, Reply};
use schema::{Sql, SqlError, Value};
use std::sync::Mutex;

/// The waits in progress in this object's memory.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    waiters: Mutex<Vec<oneshot::Sender<()>>>,
}

impl Hub {
    /// Message `id` was stored: wakes every waiter and tells the sockets.
    pub(crate) fn arrived<P: Platform>(&self, sql: &dyn Sql, platform: &P, id: u64) {
        for waiter in self.lock().drain(..) {
            // A waiter that went away has dropped its receiver.
            let _ = waiter.send(());
        }
        match store::summary(sql, id) {
            Ok(Some(message)) => publish(
                platform,
                &LiveEvent::Received {
                    message,
                    replay: false,
                },
            ),
            Ok(None) => {}
            Err(error) => log::error!("inbox storage error while announcing mail: {error}"),
        }
    }

    /// How many waits are registered (those whose clients went away
    /// included, until the next arrival).
    pub(crate) fn waiting(&self) -> usize {
        self.lock().len()
    }

    /// A wake-up for the next arrival, or `None` when [`MAX_WAITERS`] wait.
    fn register(&self) -> Option<oneshot::Receiver<()>> {
        let mut waiters = self.lock();
        waiters.retain(|w| !w.is_canceled());
        if waiters.len() >= MAX_WAITERS {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        waiters.push(sender);
        Some(receiver)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<oneshot::Sender<()>>> {
        // Nothing panics while holding it; a poisoned list is still a list.
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the first inbound message `waiting` looks for, until its
    /// deadline: `{message}` when it comes, `{message: null}` at the end.
    pub(crate) async fn wait<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        waiting: Waiting,
    ) -> Reply {
        loop {
            // One synchronous step: the look and the registration.
            let found = search::first_arrival(sql, waiting.query.as_ref(), waiting.after);
            match found {
                Ok(Some(id)) => return answer(api::waited(sql, Some(id))),
                Ok(None) => {}
                Err(error) => return InboxError::from(error).into_reply(),
            }
            let left = waiting.deadline.millis() - platform.now().millis();
            if left <= 0 {
                return answer(api::waited(sql, None));
            }
            let Some(woken) = self.register() else {
                return InboxError::from(ApiError::new(
                    ErrorCode::RateLimited,
                    format!("This inbox already has {MAX_WAITERS} waits open; retry shortly."),
                ))
                .with_header("retry-after", "1")
                .into_reply();
            };
            let timeout = std::pin::pin!(platform.sleep(left as u64));
            match platform.idle(select(woken, timeout)).await {
                // Something arrived: look again.
                Either::Left((Ok(()), _)) => {}
                // The hub is gone (the object is going away).
                Either::Left((Err(oneshot::Canceled), _)) => {
                    return Reply::error(&ApiError::unavailable(
                        "The inbox restarted during the wait. Wait again with the same `after`.",
                    ))
                    .with_header("retry-after", "1");
                }
                // The deadline: one last look, then null.
                Either::Right(((), _)) => {}
            }
        }
    }
}

/// Sends `event` to the inbox's live sockets.
pub(crate) fn publish<P: Platform>(platform: &P, event: &LiveEvent) {
    match serde_json::to_string(event) {
        Ok(frame) => platform.publish(&frame),
        Err(error) => log::error!("a live event could not be written: {error}"),
    }
}

/// The frames to send back for a client's frame `text` on its live socket:
/// a `subscribe`'s replay and `subscribed`, a `pong`, or an `error` (the
/// socket stays open).
pub(crate) fn frame(sql: &dyn Sql, text: &str) -> Result<Vec<String>, SqlError> {
    let refuse = |why: String| -> Result<Vec<String>, SqlError> {
        Ok(vec![render(&LiveEvent::Error { error: why })])
    };
    if text.len() > MAX_CLIENT_FRAME {
        return refuse(format!(
            "A frame is at most {MAX_CLIENT_FRAME} bytes; send {{\"type\": \"subscribe\", \"after\": <id>}} or {{\"type\": \"ping\"}}."
        ));
    }
    let frame = match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => frame,
        Err(error) => {
            return refuse(format!(
                "Unreadable frame ({error}); send {{\"type\": \"subscribe\", \"after\": <id>}} or {{\"type\": \"ping\"}}."
            ));
        }
    };
    let after = match frame {
        ClientFrame::Ping => return Ok(vec![render(&LiveEvent::Pong)]),
        ClientFrame::Subscribe { after } => after,
    };
    let (missed, more) = replay(sql, after)?;
    let mut frames: Vec<String> = missed.iter().map(render).collect();
    frames.push(render(&LiveEvent::Subscribed {
        after,
        replayed: missed.len() as u32,
        more,
    }));
    Ok(frames)
}

/// The events of the messages stored after `after`, oldest first (at most
/// [`MAX_REPLAY`]), and whether more follow. A sent message still in the
/// queue has had no `message.sent` yet and is left out.
fn replay(sql: &dyn Sql, after: u64) -> Result<(Vec<LiveEvent>, bool), SqlError> {
    let rows = sql.exec(
        &format!(
            "SELECT {} FROM messages WHERE id > ? ORDER BY id LIMIT ?",
            store::SUMMARY_COLUMNS
        ),
        &[
            Value::Integer(i64::try_from(after).unwrap_or(i64::MAX)),
            Value::Integer(i64::from(MAX_REPLAY) + 1),
        ],
    )?;
    let more = rows.rows.len() > MAX_REPLAY as usize;
    let mut events = Vec::new();
    for row in rows.rows.iter().take(MAX_REPLAY as usize) {
        let message: MessageSummary = store::summary_of(row)?;
        events.push(match message.direction {
            Direction::Inbound => LiveEvent::Received {
                message,
                replay: true,
            },
            Direction::Outbound if message.status == Some(SendStatus::Queued) => continue,
            Direction::Outbound => LiveEvent::Sent {
                message,
                replay: true,
            },
        });
    }
    Ok((events, more))
}

fn render(event: &LiveEvent) -> String {
    // A LiveEvent always serializes; the fallback is never sent in practice.
    serde_json::to_string(event)
        .unwrap_or_else(|_| r#"{"type":"error","error":"internal"}"#.to_owned())
}
