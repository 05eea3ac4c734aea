//! The request shell: [`InboxService::serve`] and [`InboxService::alarm`].
//!
//! `serve` reads the router's request, migrates the schema on the first call
//! after waking (a rate limiter's `Throttle` never does: see
//! [`crate::throttle`]), dispatches to the room that answers it
//! ([`crate::owner`], [`crate::ingest`], [`crate::api`]), runs a send's first
//! attempt ([`crate::send`]) and sets the alarm when work was queued. `alarm`
//! runs the due jobs of [`crate::jobs`]. Every error becomes a reply in one
//! place, [`InboxError::into_reply`].

use crate::api::{self, Caller, Outcome, Waiting};
use crate::decode::{Layer, Pipeline};
use crate::erase;
use crate::error::{InboxError, answer};
use crate::export::ExportReader;
use crate::idempotency;
use crate::ingest::{self, Inbound};
use crate::jobs::{self, Job};
use crate::live;
use crate::live::Hub;
use crate::owner::{self, authenticate};
use crate::ports::{InboxConfig, Platform};
use crate::search;
use crate::send::{self, Started};
use crate::store;
use crate::threads;
use crate::throttle::{self, Cleanup, Rate};
use crate::webhook;
use protocol::wire::{InboxRequest, decode_request};
use protocol::{ApiError, ErrorCode, Reply, Timestamp};
use schema::{MigrateError, Migration, Sql, SqlError};
use std::sync::atomic::{AtomicBool, Ordering};

/// Jobs one alarm runs at most; more due ones get the next alarm, at once.
const ALARM_BATCH: u32 = 25;

/// One inbox's request handler. It lives as long as its Durable Object instance
/// and remembers whether the schema was brought up to date since it woke.
/// Its methods take `&self` and hold no borrow across an `await`, so requests
/// may interleave at I/O points (as the platform lets them); every step
/// between two `await`s is synchronous and so never interleaved.
#[derive(Debug)]
pub struct InboxService {
    migrations: &'static [Migration],
    /// Atomic only so that testkit can share a service between threads.
    migrated: AtomicBool,
    /// Whether this wake-up has looked for unthreaded mail (see
    /// [`crate::threads::backfill`]).
    backfill_checked: AtomicBool,
    config: InboxConfig,
    /// Waits in progress.
    hub: Hub,
    /// Whether this wake-up has looked for a tombstone, and found one.
    tomb_checked: AtomicBool,
    tombstoned: AtomicBool,
}

/// What a request comes to: a complete reply, or stored bytes for the host
/// to stream one chunk at a time (a raw message, or an attachment decoded
/// from it as its chunks are read), so that a 25 MiB message is never whole
/// in memory. [`InboxService::serve`] collects the latter.
#[derive(Debug)]
pub enum Answer {
    /// The reply, complete.
    Reply(Reply),
    /// A stored raw message, or one of its attachments.
    Raw(RawMessage),
    /// The live event socket: the host accepts a WebSocket (hibernatable,
    /// tagged with `tag`) and answers 101, echoing `protocol`.
    Socket {
        /// The `Sec-WebSocket-Protocol` to echo, when the key came as one.
        protocol: Option<String>,
        /// The key's hash (hex): the sockets of a key can be found by it.
        tag: String,
    },
}

/// Stored bytes to stream: the reply's status and headers, and the raw
/// chunks they come from, read with [`BodyReader::next`] (synchronous SQL,
/// one query per pull).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The HTTP status.
    pub status: u16,
    /// The reply's headers.
    pub headers: Vec<(String, String)>,
    /// The message's id.
    pub message_id: u64,
    /// How many raw chunks the body reads (at least one for a raw message).
    pub chunks: u32,
    /// The first of them.
    first_chunk: u32,
    /// `None` for the raw message as stored; otherwise where the attachment
    /// is in it, decoded as it is read.
    location: Option<Vec<Layer>>,
    /// The whole inbox as mboxrd rather than one message.
    export: bool,
}

impl RawMessage {
    /// The raw message `message_id`, all `chunks` of it.
    pub(crate) fn whole(
        status: u16,
        headers: Vec<(String, String)>,
        message_id: u64,
        chunks: u32,
    ) -> Self {
        RawMessage {
            status,
            headers,
            message_id,
            chunks,
            first_chunk: 0,
            location: None,
            export: false,
        }
    }

    /// Every message of the inbox, as mboxrd (see [`crate::export`]).
    pub(crate) fn export(headers: Vec<(String, String)>) -> Self {
        RawMessage {
            status: 200,
            headers,
            message_id: 0,
            chunks: 0,
            first_chunk: 0,
            location: None,
            export: true,
        }
    }

    /// The part of message `message_id` at `location`, decoded: only the
    /// raw chunks its range covers are read.
    pub(crate) fn part(
        headers: Vec<(String, String)>,
        message_id: u64,
        location: Vec<Layer>,
    ) -> Self {
        let chunk = store::CHUNK_BYTES as u64;
        let (first_chunk, chunks) = match location.first() {
            Some(outer) if outer.end > outer.start => {
                let first = outer.start / chunk;
                let last = (outer.end - 1) / chunk;
                (first, last - first + 1)
            }
            _ => (0, 0),
        };
        RawMessage {
            status: 200,
            headers,
            message_id,
            chunks: u32::try_from(chunks).unwrap_or(u32::MAX),
            first_chunk: u32::try_from(first_chunk).unwrap_or(u32::MAX),
            location: Some(location),
            export: false,
        }
    }

    /// Raw chunk `seq` of the message (from 0). `Err` when it is gone or
    /// the database failed: the host then aborts the body.
    pub fn chunk(&self, sql: &dyn Sql, seq: u32) -> Result<Vec<u8>, SqlError> {
        store::raw_chunk(sql, self.message_id, seq)?
            .ok_or_else(|| SqlError::new("a raw chunk vanished while it was read"))
    }

    /// A reader of the body, from its start.
    pub fn reader(&self) -> BodyReader {
        BodyReader {
            message_id: self.message_id,
            next: self.first_chunk,
            end: self.first_chunk.saturating_add(self.chunks),
            pipeline: self.location.as_deref().map(Pipeline::new),
            finished: false,
            export: self.export.then(ExportReader::default),
        }
    }

    /// The whole body as one reply.
    fn collect(self, sql: &dyn Sql) -> Result<Reply, InboxError> {
        let mut body = Vec::new();
        let mut reader = self.reader();
        while let Some(block) = reader.next(sql)? {
            body.extend_from_slice(&block);
        }
        Ok(Reply {
            status: self.status,
            headers: self.headers,
            body,
        })
    }
}

/// Reads a [`RawMessage`]'s body one raw chunk per call, decoding it when it
/// is an attachment: at most a chunk and what it decodes to are held.
#[derive(Debug)]
pub struct BodyReader {
    message_id: u64,
    next: u32,
    end: u32,
    pipeline: Option<Pipeline>,
    finished: bool,
    export: Option<ExportReader>,
}

impl BodyReader {
    /// The next piece of the body (never empty), or `None` at its end.
    /// `Err` when a chunk is gone or the database failed.
    pub fn next(&mut self, sql: &dyn Sql) -> Result<Option<Vec<u8>>, SqlError> {
        if let Some(export) = &mut self.export {
            return export.next(sql);
        }
        loop {
            if self.finished {
                return Ok(None);
            }
            let done = self.next >= self.end || self.pipeline.as_ref().is_some_and(Pipeline::done);
            if done {
                self.finished = true;
                let mut rest = Vec::new();
                if let Some(pipeline) = &mut self.pipeline {
                    pipeline.finish(&mut rest);
                }
                if rest.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(rest));
            }
            let seq = self.next;
            self.next += 1;
            let chunk = store::raw_chunk(sql, self.message_id, seq)?
                .ok_or_else(|| SqlError::new("a raw chunk vanished while it was read"))?;
            let Some(pipeline) = &mut self.pipeline else {
                return Ok(Some(chunk));
            };
            let mut out = Vec::new();
            pipeline.feed(u64::from(seq) * store::CHUNK_BYTES as u64, &chunk, &mut out);
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

/// What a request needs after its synchronous part.
enum Step {
    /// The answer; `wake` when jobs were queued and the alarm must be set.
    Reply { reply: Reply, wake: bool },
    /// A send was stored and its job claimed: attempt it now.
    Send(Started),
    /// A raw message to stream.
    Raw(RawMessage),
    /// A message was stored: wake the waiters and tell the sockets.
    Stored {
        reply: Reply,
        wake: bool,
        id: Option<u64>,
    },
    /// A wait with nothing to answer yet.
    Wait(Waiting),
    /// A key was deleted: close its sockets (tag: its hash, hex).
    KeyDeleted { reply: Reply, tag: String },
    /// The inbox was erased: cancel the alarm, end the waits, close the
    /// sockets.
    Erased(Reply),
    /// The live event socket.
    Socket {
        protocol: Option<String>,
        tag: String,
    },
    /// A rate limiter's answer, and when its bucket is full again (its alarm
    /// then clears the limiter's storage).
    Throttled {
        reply: Reply,
        wake_at: Option<Timestamp>,
    },
}

impl InboxService {
    /// A service that will bring the schema up to the last of `migrations`
    /// (normally [`schema::MIGRATIONS`]) before serving its first request,
    /// with the default configuration (no relay).
    pub fn new(migrations: &'static [Migration]) -> Self {
        Self::with_config(migrations, InboxConfig::default())
    }

    /// As [`Self::new`], with `config`.
    pub fn with_config(migrations: &'static [Migration], config: InboxConfig) -> Self {
        InboxService {
            migrations,
            migrated: AtomicBool::new(false),
            backfill_checked: AtomicBool::new(false),
            config,
            hub: Hub::default(),
            tomb_checked: AtomicBool::new(false),
            tombstoned: AtomicBool::new(false),
        }
    }

    /// Serves one router request: `request` is the encoded [`InboxRequest`]
    /// (the `x-inboxkit-request` header) and `payload` the request body.
    ///
    /// The first call after waking runs pending migrations atomically; if that
    /// fails, the database is untouched, the call answers 503 `unavailable`, and
    /// the next call tries again. A request that cannot be read (a version
    /// skew between the router and this script) is the service's fault: 503.
    pub async fn serve<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        request: &str,
        payload: &[u8],
    ) -> Reply {
        match self.serve_answer(sql, platform, request, payload).await {
            Answer::Reply(reply) => reply,
            Answer::Raw(raw) => answer(raw.collect(sql)),
            // Without a host that holds sockets: the upgrade's status and
            // protocol, for tests of what leads to it.
            Answer::Socket { protocol, .. } => {
                let reply = Reply {
                    status: 101,
                    headers: Vec::new(),
                    body: Vec::new(),
                };
                match protocol {
                    Some(protocol) => reply.with_header("sec-websocket-protocol", protocol),
                    None => reply,
                }
            }
        }
    }

    /// As [`Self::serve`], leaving a raw message to be streamed by the host
    /// (see [`Answer::Raw`]).
    pub async fn serve_answer<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        request: &str,
        payload: &[u8],
    ) -> Answer {
        let now = platform.now();
        let request = match decode_request(request) {
            Ok(request) => request,
            Err(why) => return Answer::Reply(InboxError::Unreadable(why).into_reply()),
        };
        // A rate limiter never migrates: it keeps only its bucket.
        let limiter = matches!(request, InboxRequest::Throttle { .. });
        if !limiter {
            match self.is_tombstone(sql) {
                Ok(true) => return Answer::Reply(tombstone_reply(&request)),
                Ok(false) => {}
                Err(error) => return Answer::Reply(InboxError::from(error).into_reply()),
            }
            if let Err(error) = self.migrate(sql, now) {
                return Answer::Reply(InboxError::from(error).into_reply());
            }
            self.start_backfill(sql, platform, now).await;
        }
        let reply = match self.dispatch(sql, request, payload, now) {
            Err(error) => error.into_reply(),
            Ok(Step::Raw(raw)) => return Answer::Raw(raw),
            Ok(Step::Socket { protocol, tag }) => return Answer::Socket { protocol, tag },
            Ok(Step::Wait(waiting)) => self.hub.wait(sql, platform, waiting).await,
            Ok(Step::KeyDeleted { reply, tag }) => {
                platform.close_sockets(Some(&tag));
                reply
            }
            Ok(Step::Erased(reply)) => {
                // The tables are gone already; what is left is in memory
                // and the platform.
                self.tombstoned.store(true, Ordering::Release);
                self.tomb_checked.store(true, Ordering::Release);
                self.migrated.store(false, Ordering::Release);
                self.hub.close();
                platform.close_sockets(None);
                if let Err(error) = platform.delete_alarm().await {
                    // An alarm that still fires finds the tombstone and
                    // does nothing.
                    log::error!("cancelling a deleted inbox's alarm failed: {error}");
                }
                reply
            }
            Ok(Step::Stored { reply, wake, id }) => {
                if let Some(id) = id {
                    self.hub.arrived(sql, platform, id);
                }
                if wake {
                    self.set_alarm(sql, platform).await;
                }
                reply
            }
            Ok(Step::Throttled { reply, wake_at }) => {
                if let Some(at) = wake_at {
                    set_alarm_at(platform, at).await;
                }
                reply
            }
            Ok(Step::Reply { reply, wake }) => {
                if wake {
                    self.set_alarm(sql, platform).await;
                }
                reply
            }
            Ok(Step::Send(started)) => {
                // The jobs are claimed for these attempts; should one be cut
                // short, the alarm picks its job up when its lease ends.
                self.set_alarm(sql, platform).await;
                let Started {
                    message_id,
                    jobs,
                    idempotency_key,
                } = started;
                let raws = send::Raws::default();
                let ports = self.ports();
                let attempts = jobs
                    .into_iter()
                    .map(|job| send::attempt(sql, platform, &ports, job, &raws));
                let outcome = futures_util::future::join_all(attempts)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<()>, SqlError>>();
                self.set_alarm(sql, platform).await;
                let reply = outcome
                    .map_err(InboxError::from)
                    .and_then(|_| send::outcome_reply(sql, message_id));
                if let (Ok(reply), Some(key)) = (&reply, idempotency_key)
                    && let Err(error) = idempotency::settle(sql, &key, reply)
                {
                    // A repeat is answered from the message's state instead.
                    log::error!("keeping a send's idempotent answer failed: {error}");
                }
                answer(reply)
            }
        };
        Answer::Reply(reply)
    }

    /// The Durable Object alarm: runs the jobs that are due, then sets the
    /// alarm for the next. A rate limiter's alarm deletes its storage once
    /// its bucket is full. An `Err` makes the platform retry the alarm.
    pub async fn alarm<P: Platform>(&self, sql: &dyn Sql, platform: &P) -> Result<(), InboxError> {
        let now = platform.now();
        match throttle::cleanup(sql, now)? {
            Cleanup::NotALimiter => {}
            Cleanup::Cleared => {
                // Nothing is left, the schema included.
                self.migrated.store(false, Ordering::Release);
                return Ok(platform.delete_all_storage().await?);
            }
            Cleanup::Later(at) => return Ok(platform.set_alarm(at).await?),
        }
        if self.is_tombstone(sql)? {
            // A deleted inbox does nothing more.
            return Ok(platform.delete_alarm().await?);
        }
        self.migrate(sql, now)?;
        let jobs = jobs::claim_due(sql, now, ALARM_BATCH)?;
        let raws = send::Raws::default();
        let runs = jobs
            .into_iter()
            .map(|job| self.run_job(sql, platform, job, &raws));
        for outcome in futures_util::future::join_all(runs).await {
            if let Err(error) = outcome {
                // The job keeps its lease and runs again when it ends.
                log::error!("inbox storage error while running a job: {error}");
            }
        }
        // Mail stored before threads (or search) existed is threaded (or
        // indexed) a batch per alarm; `set_alarm` comes back at once while
        // some is left.
        let purged = idempotency::purge(sql, now)?;
        if purged > 0 {
            log::info!("forgot {purged} idempotency keys older than 24 hours");
        }
        if let Some(days) = owner::load_owner(sql)?.and_then(|o| o.retention_days) {
            let (deleted, _) = erase::retention_pass(sql, days, now)?;
            if deleted > 0 {
                log::info!("deleted {deleted} messages older than {days} days");
            }
        }
        if threads::backfill_pending(sql)? {
            let done = threads::backfill(sql, platform.now())?;
            log::info!("threaded {done} messages stored before threads existed");
        } else if search::backfill_pending(sql)? {
            let done = search::backfill(sql)?;
            log::info!("indexed {done} messages stored before search existed");
        }
        self.set_alarm(sql, platform).await;
        Ok(())
    }

    /// Answers a client's frame `text` on a live event socket (the host
    /// calls this from its `websocket_message`): the frames to send back.
    /// A storage failure is one `error` frame; the socket stays open.
    pub fn socket_frame<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        text: &str,
    ) -> Vec<String> {
        if !matches!(self.is_tombstone(sql), Ok(false)) {
            // A deleted inbox (its sockets are being closed) answers nothing.
            return Vec::new();
        }
        let frames = self
            .migrate(sql, platform.now())
            .map_err(|e| e.to_string())
            .and_then(|()| live::frame(sql, text).map_err(|e| e.to_string()));
        match frames {
            Ok(frames) => frames,
            Err(error) => {
                log::error!("inbox storage error on a live socket: {error}");
                vec![
                    r#"{"type":"error","error":"The inbox could not answer; retry shortly."}"#
                        .to_owned(),
                ]
            }
        }
    }

    /// How many waits this object holds open (for tests and the log).
    pub fn waiting(&self) -> usize {
        self.hub.waiting()
    }

    /// What a send's attempt needs of the service.
    fn ports(&self) -> send::Context<'_> {
        send::Context {
            config: &self.config,
            hub: &self.hub,
        }
    }

    /// Whether this object is a deleted inbox's tombstone: looked up once
    /// per wake-up (a tombstone stays one).
    fn is_tombstone(&self, sql: &dyn Sql) -> Result<bool, SqlError> {
        if self.tomb_checked.load(Ordering::Acquire) {
            return Ok(self.tombstoned.load(Ordering::Acquire));
        }
        let tombstoned = erase::is_tombstone(sql)?;
        self.tombstoned.store(tombstoned, Ordering::Release);
        self.tomb_checked.store(true, Ordering::Release);
        Ok(tombstoned)
    }

    /// Runs pending migrations once per wake-up.
    fn migrate(&self, sql: &dyn Sql, now: Timestamp) -> Result<(), MigrateError> {
        if self.migrated.load(Ordering::Acquire) {
            return Ok(());
        }
        let report = schema::migrate(sql, self.migrations, now.millis())?;
        if !report.applied.is_empty() {
            log::info!(
                "inbox schema migrated to {} (applied {:?})",
                report.version,
                report.applied
            );
        }
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    /// Sets the alarm to when the next job becomes runnable, if one is
    /// pending, or to now while mail is left to thread.
    async fn set_alarm<P: Platform>(&self, sql: &dyn Sql, platform: &P) {
        let next = jobs::next_wake(sql).and_then(|next| {
            if backfill_pending(sql)? {
                return Ok(Some(platform.now()));
            }
            let expiries = [
                idempotency::next_expiry(sql)?,
                match owner::load_owner(sql)?.and_then(|o| o.retention_days) {
                    Some(days) => erase::next_expiry(sql, days)?,
                    None => None,
                },
            ];
            Ok(expiries.into_iter().flatten().chain(next).min())
        });
        match next {
            Ok(Some(at)) => set_alarm_at(platform, at).await,
            Ok(None) => {}
            Err(error) => log::error!("inbox storage error while planning the alarm: {error}"),
        }
    }

    /// Once per wake-up: when mail stored before threads existed is still
    /// unthreaded, sets the alarm that threads it, a bounded batch at a time
    /// (never inside a request, whose time it would take).
    async fn start_backfill<P: Platform>(&self, sql: &dyn Sql, platform: &P, now: Timestamp) {
        if self.backfill_checked.swap(true, Ordering::AcqRel) {
            return;
        }
        match backfill_pending(sql) {
            Ok(true) => set_alarm_at(platform, now).await,
            Ok(false) => {}
            Err(error) => {
                self.backfill_checked.store(false, Ordering::Release);
                log::error!("inbox storage error while looking for unthreaded mail: {error}");
            }
        }
    }

    fn dispatch(
        &self,
        sql: &dyn Sql,
        request: InboxRequest,
        payload: &[u8],
        now: Timestamp,
    ) -> Result<Step, InboxError> {
        let reply = match request {
            InboxRequest::Claim { handle, key_hash } => owner::claim(sql, &handle, &key_hash, now)?,
            InboxRequest::Confirm { key_hash, prefix } => {
                owner::confirm(sql, &key_hash, prefix.as_deref(), now)?
            }
            InboxRequest::Release { key_hash } => owner::release(sql, &key_hash)?,
            InboxRequest::Ingest {
                envelope_from,
                recipient,
                tag,
            } => {
                let mail = Inbound {
                    envelope_from: &envelope_from,
                    recipient: &recipient,
                    tag: tag.as_deref(),
                    raw: payload,
                };
                let stored = ingest::ingest(sql, &self.config, mail, now)?;
                return Ok(Step::Stored {
                    reply: stored.reply,
                    wake: stored.queued,
                    id: stored.new_id,
                });
            }
            InboxRequest::Throttle {
                limit,
                window_millis,
            } => {
                // Reached without migrating (see `serve_answer`).
                let rate = Rate {
                    limit,
                    window_millis,
                };
                let (reply, wake_at) = throttle::serve(sql, rate, now)?;
                return Ok(Step::Throttled { reply, wake_at });
            }
            InboxRequest::Ping => {
                sql.exec("SELECT count(*) FROM schema_migrations", &[])?;
                Reply::no_content()
            }
            InboxRequest::Api {
                key_hash,
                mail_domain,
                call,
            } => {
                let (owner, key) = authenticate(sql, &key_hash, now)?;
                let caller = Caller {
                    owner: &owner,
                    mail_domain: &mail_domain,
                    key,
                };
                return Ok(
                    match api::call(sql, &self.config, caller, call, payload, now)? {
                        Outcome::Reply(reply) => Step::Reply { reply, wake: false },
                        Outcome::Replan(reply) => Step::Reply { reply, wake: true },
                        Outcome::KeyDeleted { reply, tag } => Step::KeyDeleted { reply, tag },
                        Outcome::Erased(reply) => Step::Erased(reply),
                        Outcome::Send(started) => Step::Send(started),
                        Outcome::Raw(raw) => Step::Raw(raw),
                        Outcome::Wait(waiting) => Step::Wait(waiting),
                        Outcome::Socket { protocol } => Step::Socket {
                            protocol,
                            tag: key_hash.to_hex(),
                        },
                    },
                );
            }
        };
        Ok(Step::Reply { reply, wake: false })
    }

    /// Runs one claimed job to its next state. An `Err` is a storage failure:
    /// the job keeps its lease and is retried when the lease ends.
    async fn run_job<P: Platform>(
        &self,
        sql: &dyn Sql,
        platform: &P,
        job: Job,
        raws: &send::Raws,
    ) -> Result<(), SqlError> {
        match job {
            Job::Webhook(job) => webhook::run(sql, platform, &self.config, job).await,
            Job::Send(job) => send::attempt(sql, platform, &self.ports(), *job, raws).await,
        }
    }
}

/// What a deleted inbox's tombstone answers: its handle is never claimed
/// again, no mail is taken, and no key works.
fn tombstone_reply(request: &InboxRequest) -> Reply {
    let gone = || {
        ApiError::new(
            ErrorCode::HandleTaken,
            "This handle belonged to an inbox that was deleted; it is never given out again.",
        )
    };
    match request {
        InboxRequest::Claim { .. } => Reply::error(&gone()),
        InboxRequest::Confirm { .. } => Reply::error(&ApiError::new(
            ErrorCode::Conflict,
            "The signup's claim on this handle was lost.",
        )),
        InboxRequest::Release { .. } | InboxRequest::Ping | InboxRequest::Throttle { .. } => {
            Reply::no_content()
        }
        InboxRequest::Ingest { .. } => Reply::error(&ApiError::not_found(
            "This inbox was deleted; it takes no mail.",
        )),
        InboxRequest::Api { .. } => Reply::error(&ApiError::unauthorized()),
    }
}

/// Whether mail stored before threads or search existed is left to
/// backfill.
fn backfill_pending(sql: &dyn Sql) -> Result<bool, SqlError> {
    Ok(threads::backfill_pending(sql)? || search::backfill_pending(sql)?)
}

async fn set_alarm_at<P: Platform>(platform: &P, at: Timestamp) {
    if let Err(error) = platform.set_alarm(at).await {
        log::error!("setting the inbox alarm failed: {error}");
    }
}
