//! The inbox schema, as an append-only list of numbered migrations.
//!
//! Never edit or reorder a migration that has shipped: every inbox that ran it
//! keeps its checksum, and a mismatch stops that inbox from serving (see
//! [`crate::MigrateError::Edited`]). `migrations.lock` beside this crate's
//! manifest pins each checksum, and a test fails when one changes. To change the
//! schema, append a migration and its lock line.
//!
//! Each statement is listed separately rather than split from a script, so that
//! a statement containing `;` (a trigger body) is never cut in two.

use sha2::{Digest, Sha256};

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3, ... without gaps.
    pub id: u32,
    /// A short description, recorded with the id.
    pub name: &'static str,
    /// The statements, run in order inside one transaction.
    pub statements: &'static [&'static str],
}

impl Migration {
    /// SHA-256 over the name and statements, in lowercase hex.
    pub fn checksum(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.name.as_bytes());
        for statement in self.statements {
            hasher.update([0u8]);
            hasher.update(statement.as_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Every migration, in order. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: 1,
        name: "inbox owner",
        statements: &[
            // One row: this Durable Object's inbox. `state` is 'claimed' while a
            // signup is publishing the key and 'active' once it has; a claim
            // older than the protocol's CLAIM_TTL may be taken over.
            "CREATE TABLE inbox (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                handle TEXT NOT NULL,
                key_hash TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('claimed', 'active')),
                claimed_at INTEGER NOT NULL,
                created_at INTEGER NOT NULL
            ) STRICT",
        ],
    },
    Migration {
        id: 2,
        name: "messages",
        statements: &[
            // Ids are per inbox and increasing (AUTOINCREMENT: never reused,
            // even after the newest message is deleted).
            "CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
                received_at INTEGER NOT NULL,
                read INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
                size INTEGER NOT NULL CHECK (size >= 0)
            ) STRICT",
            "CREATE INDEX messages_unread ON messages (id) WHERE read = 0",
        ],
    },
    Migration {
        id: 3,
        name: "message contents",
        statements: &[
            // The listing fields live on the row (bounded in size); everything
            // else, and the raw message, lives in `message_parts` in chunks
            // under DO SQLite's 2 MB row limit.
            "ALTER TABLE messages ADD COLUMN from_addr TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE messages ADD COLUMN from_name TEXT",
            "ALTER TABLE messages ADD COLUMN to_addr TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE messages ADD COLUMN subject TEXT",
            "ALTER TABLE messages ADD COLUMN has_attachments INTEGER NOT NULL DEFAULT 0
                CHECK (has_attachments IN (0, 1))",
            // SHA-256 of the raw bytes: a redelivery (same Message-ID, same
            // bytes) is recognised and stored once.
            "ALTER TABLE messages ADD COLUMN raw_sha256 TEXT",
            "CREATE UNIQUE INDEX messages_by_raw ON messages (raw_sha256)
                WHERE raw_sha256 IS NOT NULL",
            "CREATE INDEX messages_by_received ON messages (received_at)",
            "CREATE TABLE message_parts (
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                kind TEXT NOT NULL CHECK (kind IN ('raw', 'detail')),
                seq INTEGER NOT NULL CHECK (seq >= 0),
                data BLOB NOT NULL,
                PRIMARY KEY (message_id, kind, seq)
            ) STRICT",
        ],
    },
    Migration {
        id: 4,
        name: "outbound mail and webhooks",
        statements: &[
            // Outbound messages carry what became of their send.
            "ALTER TABLE messages ADD COLUMN send_status TEXT
                CHECK (send_status IN ('queued', 'sent', 'failed'))",
            "ALTER TABLE messages ADD COLUMN send_reason TEXT",
            // The send rate limit counts recent outbound messages.
            "CREATE INDEX messages_outbound ON messages (received_at)
                WHERE direction = 'outbound'",
            // At most one webhook. The secret signs deliveries, so it is kept
            // as given (it is not a credential to this API).
            "CREATE TABLE webhook (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                url TEXT NOT NULL,
                secret TEXT NOT NULL,
                allow_http_loopback INTEGER NOT NULL CHECK (allow_http_loopback IN (0, 1)),
                created_at INTEGER NOT NULL
            ) STRICT",
            // Work to do outside the inbox, durably: webhook events and sends.
            // A job is written in the same transaction as its message, runs
            // once `due_at` has passed and no attempt holds its lease, and is
            // deleted when done. The DO alarm is set to the earliest such time.
            "CREATE TABLE jobs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL CHECK (kind IN ('webhook', 'send')),
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                event TEXT,
                event_id TEXT,
                body TEXT,
                route TEXT,
                attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                due_at INTEGER NOT NULL,
                lease_until INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL
            ) STRICT",
            "CREATE INDEX jobs_by_due ON jobs (due_at)",
            // Recent webhook delivery attempts, for `GET /api/webhook/deliveries`.
            "CREATE TABLE webhook_attempts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id TEXT NOT NULL,
                event TEXT NOT NULL,
                message_id INTEGER NOT NULL,
                attempt INTEGER NOT NULL,
                at INTEGER NOT NULL,
                status_code INTEGER,
                error TEXT,
                duration_ms INTEGER NOT NULL,
                next_attempt_at INTEGER
            ) STRICT",
        ],
    },
    Migration {
        id: 5,
        name: "storage accounting and rate limits",
        statements: &[
            // The bytes of raw mail the inbox holds, kept with every insert
            // so that the storage cap costs nothing to check. Backfilled.
            "ALTER TABLE inbox ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0
                CHECK (stored_bytes >= 0)",
            "UPDATE inbox SET stored_bytes = (SELECT coalesce(sum(size), 0) FROM messages)",
            // A token bucket, for objects that serve as rate limiters (named
            // for what they limit, such as signups from one address). Tokens
            // are counted in thousandths.
            "CREATE TABLE throttle (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                milli_tokens INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT",
        ],
    },
    Migration {
        id: 6,
        name: "jobs set aside",
        statements: &[
            // A job row that cannot be read (written by another version, or
            // damaged) is moved here, as it was, with the reason, so that it
            // neither blocks the queue nor is lost. No CHECKs: whatever the
            // row held must fit.
            "CREATE TABLE dead_jobs (
                id INTEGER PRIMARY KEY,
                kind TEXT,
                message_id INTEGER,
                event TEXT,
                event_id TEXT,
                body TEXT,
                route TEXT,
                attempts INTEGER,
                created_at INTEGER,
                set_aside_at INTEGER NOT NULL,
                reason TEXT NOT NULL
            ) STRICT",
        ],
    },
    Migration {
        id: 7,
        name: "message count",
        statements: &[
            // How many messages the inbox holds, so that GET /api/me does not
            // count the table. Backfilled, then kept by triggers in the
            // transaction of every insert and every delete, whoever writes.
            "ALTER TABLE inbox ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0
                CHECK (message_count >= 0)",
            "UPDATE inbox SET message_count = (SELECT count(*) FROM messages)",
            "CREATE TRIGGER messages_counted_in AFTER INSERT ON messages BEGIN
                UPDATE inbox SET message_count = message_count + 1 WHERE id = 1;
            END",
            "CREATE TRIGGER messages_counted_out AFTER DELETE ON messages BEGIN
                UPDATE inbox SET message_count = max(message_count - 1, 0) WHERE id = 1;
            END",
        ],
    },
    Migration {
        id: 8,
        name: "threads and recipients",
        statements: &[
            // The message's own Message-ID (without angle brackets), so that
            // a reply finds the thread of what it answers.
            "ALTER TABLE messages ADD COLUMN message_id_header TEXT",
            // The conversation it belongs to. NULL only for mail stored
            // before this migration, until the bounded backfill after it
            // (in batches, oldest first) reaches the message.
            "ALTER TABLE messages ADD COLUMN thread_id INTEGER",
            // The start of its new text (quoted history and signature
            // removed), for listings; NULL until threaded.
            "ALTER TABLE messages ADD COLUMN preview TEXT",
            "CREATE INDEX messages_by_message_id ON messages (message_id_header)
                WHERE message_id_header IS NOT NULL",
            // A thread's messages in order; also finds the unthreaded ones
            // (NULL sorts first) without a scan.
            "CREATE INDEX messages_by_thread ON messages (thread_id, id)",
            // The ids a message names in In-Reply-To and References, so that
            // an original arriving after its reply finds the reply's thread
            // (and the two threads become one).
            "CREATE TABLE message_refs (
                ref TEXT NOT NULL,
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                PRIMARY KEY (ref, message_id)
            ) STRICT",
            "CREATE INDEX message_refs_by_message ON message_refs (message_id)",
            // One row per conversation, kept with every change to its
            // messages. Listed by its latest message id, which orders by
            // latest activity (arrival times never decrease with ids).
            "CREATE TABLE threads (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                subject TEXT,
                participants TEXT NOT NULL DEFAULT '[]',
                message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
                unread_count INTEGER NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
                last_message_id INTEGER NOT NULL,
                last_message_at INTEGER NOT NULL,
                preview TEXT,
                has_attachments INTEGER NOT NULL DEFAULT 0 CHECK (has_attachments IN (0, 1)),
                created_at INTEGER NOT NULL
            ) STRICT",
            "CREATE INDEX threads_by_last ON threads (last_message_id)",
            "CREATE INDEX threads_unread ON threads (last_message_id) WHERE unread_count > 0",
            // Each recipient of an outbound message and what became of it.
            // Mail sent before this migration has none: its one recipient is
            // the message's `to_addr` and its outcome the message's.
            "CREATE TABLE message_recipients (
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL CHECK (seq >= 0),
                address TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('to', 'cc', 'bcc')),
                status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
                reason TEXT,
                at INTEGER NOT NULL,
                PRIMARY KEY (message_id, seq)
            ) STRICT",
            // The per-hour recipient limit counts recent rows.
            "CREATE INDEX message_recipients_by_at ON message_recipients (at)",
        ],
    },
    Migration {
        id: 9,
        name: "attachment locations",
        statements: &[
            // Whether the message's attachments have rows below. Mail stored
            // before this migration has none until it is first read: its
            // raw message is parsed again then, by the same rules, so its
            // attachment ids are the ones it would have had.
            "ALTER TABLE messages ADD COLUMN attachments_indexed INTEGER NOT NULL DEFAULT 0
                CHECK (attachments_indexed IN (0, 1))",
            // Each attachment of a message: what the API lists, and where
            // its encoded bytes are in the raw message (`location`: the JSON
            // list of layers, byte ranges and transfer encodings), so that a
            // download decodes it from the raw chunks as they are read.
            "CREATE TABLE attachments (
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL CHECK (seq >= 0),
                part TEXT NOT NULL,
                name TEXT,
                content_type TEXT NOT NULL,
                charset TEXT,
                disposition TEXT NOT NULL CHECK (disposition IN ('attachment', 'inline')),
                content_id TEXT,
                size INTEGER NOT NULL CHECK (size >= 0),
                location TEXT NOT NULL,
                PRIMARY KEY (message_id, seq)
            ) STRICT",
            "CREATE UNIQUE INDEX attachments_by_part ON attachments (message_id, part)",
        ],
    },
    Migration {
        id: 10,
        name: "full-text search with codes and links",
        statements: &[
            // The search index: one row per message, its rowid the message
            // id, kept in the message's own insert and delete transactions.
            // A plain FTS5 table (it keeps its copy of the text, for
            // `snippet`); unicode61 folds case and diacritics, and CJK text
            // is indexed a character at a time (see `inbox_do::search`).
            "CREATE VIRTUAL TABLE message_search USING fts5(
                subject, sender, recipients, body, attachments,
                tokenize = 'unicode61 remove_diacritics 2'
            )",
            // Whether the message is in the index and has its findings.
            // Mail stored before this migration is not, until the alarm's
            // backfill reaches it (a bounded batch per alarm).
            "ALTER TABLE messages ADD COLUMN search_indexed INTEGER NOT NULL DEFAULT 0
                CHECK (search_indexed IN (0, 1))",
            "CREATE INDEX messages_unsearched ON messages (id) WHERE search_indexed = 0",
            // The one-time codes and links found in a message at ingest (JSON
            // lists), so a read never searches the body again.
            "CREATE TABLE message_findings (
                message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
                codes TEXT NOT NULL,
                links TEXT NOT NULL
            ) STRICT",
        ],
    },
    Migration {
        id: 11,
        name: "keys, idempotency and retention",
        statements: &[
            // Every key of the inbox, as its SHA-256 only. A key is
            // `pending` from the first step of its creation until it is in
            // KV; only an `active` key grants anything. The signup key
            // (`inbox.key_hash`, which the signup protocol keeps using) is
            // copied in as the first `full` key.
            "CREATE TABLE api_keys (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                key_hash TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                scope TEXT NOT NULL CHECK (scope IN ('full', 'read')),
                state TEXT NOT NULL CHECK (state IN ('pending', 'active')),
                prefix TEXT,
                created_at INTEGER NOT NULL,
                last_used_at INTEGER
            ) STRICT",
            "INSERT INTO api_keys (key_hash, name, scope, state, created_at)
                SELECT key_hash, 'signup', 'full', 'active', created_at
                FROM inbox WHERE state = 'active'",
            // The answers of sends made with an Idempotency-Key, written in
            // the message's own transaction (`status` and `body` stay NULL
            // until its first attempt has answered), kept 24 hours.
            "CREATE TABLE idempotency (
                key TEXT PRIMARY KEY,
                fingerprint TEXT NOT NULL,
                message_id INTEGER NOT NULL,
                status INTEGER,
                body BLOB,
                created_at INTEGER NOT NULL
            ) STRICT",
            "CREATE INDEX idempotency_by_age ON idempotency (created_at)",
            // Messages older than this many days are deleted by the alarm.
            "ALTER TABLE inbox ADD COLUMN retention_days INTEGER
                CHECK (retention_days BETWEEN 1 AND 3650)",
        ],
    },
];
