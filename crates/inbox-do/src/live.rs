//! Waiting for mail, and live events.
//!
//! A wait (`GET /api/messages/wait`) that finds nothing stored registers a
//! wake-up in the object's memory ([`Hub`]) and awaits it, raced against its
//! timeout, as idle time: other requests run meanwhile. Every new message
//! (inbound mail, a delivery from another inbox, a send to oneself) wakes
//! every waiter, and each looks again for its own match, so many waiters
//! each get the message and a waiter for `q=subject:code` sleeps on through
//! other mail. The check and the registration are one synchronous step, so
//! no arrival falls between them. At most [`MAX_WAITERS`] wait at once: one
//! more ends the oldest early, answered `{message: null}` as at a timeout,
//! so a crowd of waits whose clients went away (workerd does not tell an
//! object that its caller left: such a wait keeps its place until its
//! timeout) can never lock real ones out. A wait whose future is dropped
//! (natively) is dropped at the next registration or arrival. When the
//! object goes away mid-wait (a deploy, a restart) the client gets 503
//! `unavailable` from the router and waits again with the same `after`
//! (every answer says which it used): nothing is lost, since the answer
//! comes from storage.
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
use protocol::api::{ClientFrame, Direction, LiveEvent, MessageSummary};
use protocol::limits::{MAX_CLIENT_FRAME, MAX_REPLAY, MAX_WAITERS};
use protocol::{ApiError, Reply};
use schema::{Sql, SqlError, Value};
use std::sync::Mutex;

/// The waits in progress in this object's memory, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    waiters: Mutex<Vec<oneshot::Sender<Wake>>>,
}

/// Why a wait was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// A message was stored: look again.
    Arrived,
    /// Too many waits: the oldest ends now, as at its timeout.
    Evicted,
    /// The inbox was deleted: the wait ends as its key no longer works.
    Gone,
}

impl Hub {
    /// Message `id` was stored: wakes every waiter and tells the sockets.
    pub(crate) fn arrived<P: Platform>(&self, sql: &dyn Sql, platform: &P, id: u64) {
        for waiter in self.lock().drain(..) {
            // A waiter that went away has dropped its receiver.
            let _ = waiter.send(Wake::Arrived);
        }
        // No socket to tell: the summary is not read.
        if !platform.listening() {
            return;
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

    /// The inbox was deleted: every wait ends now, answered 401.
    pub(crate) fn close(&self) {
        for waiter in self.lock().drain(..) {
            let _ = waiter.send(Wake::Gone);
        }
    }

    /// How many waits are registered (those whose clients went away
    /// included, until the next arrival).
    pub(crate) fn waiting(&self) -> usize {
        self.lock().len()
    }

    /// A wake-up for the next arrival; when [`MAX_WAITERS`] wait already,
    /// the oldest is ended first.
    fn register(&self) -> oneshot::Receiver<Wake> {
        let mut waiters = self.lock();
        waiters.retain(|w| !w.is_canceled());
        while waiters.len() >= MAX_WAITERS {
            let oldest = waiters.remove(0);
            let _ = oldest.send(Wake::Evicted);
        }
        let (sender, receiver) = oneshot::channel();
        waiters.push(sender);
        receiver
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<oneshot::Sender<Wake>>> {
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
            let after = waiting.after;
            match found {
                Ok(Some(id)) => return answer(api::waited(sql, after, Some(id))),
                Ok(None) => {}
                Err(error) => return InboxError::from(error).into_reply(),
            }
            let left = waiting.deadline.millis() - platform.now().millis();
            if left <= 0 {
                return answer(api::waited(sql, after, None));
            }
            let woken = self.register();
            let timeout = std::pin::pin!(platform.sleep(left as u64));
            match platform.idle(select(woken, timeout)).await {
                // Something arrived: look again.
                Either::Left((Ok(Wake::Arrived), _)) => {}
                Either::Left((Ok(Wake::Gone), _)) => {
                    return Reply::error(&ApiError::unauthorized());
                }
                // Ended early for a newer wait: as at the timeout.
                Either::Left((Ok(Wake::Evicted), _)) => {
                    return answer(api::waited(sql, after, None));
                }
                // The hub is gone (the object is being torn down).
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
/// queue has had no `message.sent` yet and is left out (in the query, so a
/// long queue cannot fill a replay with nothing): its event comes live when
/// it leaves the queue.
fn replay(sql: &dyn Sql, after: u64) -> Result<(Vec<LiveEvent>, bool), SqlError> {
    let rows = sql.exec(
        &format!(
            "SELECT {} FROM messages
             WHERE id > ? AND NOT (direction = 'outbound' AND send_status = 'queued')
             ORDER BY id LIMIT ?",
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
