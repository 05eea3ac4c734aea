//! The schema a new database is given in one step: what migrations 1 to
//! [`THROUGH`] leave, written out as SQLite itself keeps it (each object's
//! `sql` in `sqlite_master`, in creation order; a column added by
//! `ALTER TABLE` shows where SQLite appended it).
//!
//! Why: a new inbox (every signup) used to replay every migration, sixteen
//! `ALTER TABLE`s among them, each of which makes SQLite rewrite and reload
//! its schema; the baseline creates each object once. An existing database
//! never takes this path: it is upgraded by the migrations themselves, and a
//! new one still records every migration 1 to [`THROUGH`] in its ledger, so
//! later migrations apply to both alike.
//!
//! Kept honest by a test (`tests/runner.rs`): a database made from the
//! baseline and one brought up migration by migration must dump the same,
//! object for object and row for row. A new migration is appended to
//! [`crate::MIGRATIONS`] as before and runs after the baseline; this list
//! need not change with it.

/// The last migration the baseline holds.
pub(crate) const THROUGH: u32 = 11;

/// The statements, in order.
pub(crate) const STATEMENTS: &[&str] = &[
    // table inbox
    r#"CREATE TABLE inbox (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                handle TEXT NOT NULL,
                key_hash TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('claimed', 'active')),
                claimed_at INTEGER NOT NULL,
                created_at INTEGER NOT NULL
            , stored_bytes INTEGER NOT NULL DEFAULT 0
                CHECK (stored_bytes >= 0), message_count INTEGER NOT NULL DEFAULT 0
                CHECK (message_count >= 0), retention_days INTEGER
                CHECK (retention_days BETWEEN 1 AND 3650)) STRICT"#,
    // table messages
    r#"CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
                received_at INTEGER NOT NULL,
                read INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
                size INTEGER NOT NULL CHECK (size >= 0)
            , from_addr TEXT NOT NULL DEFAULT '', from_name TEXT, to_addr TEXT NOT NULL DEFAULT '', subject TEXT, has_attachments INTEGER NOT NULL DEFAULT 0
                CHECK (has_attachments IN (0, 1)), raw_sha256 TEXT, send_status TEXT
                CHECK (send_status IN ('queued', 'sent', 'failed')), send_reason TEXT, message_id_header TEXT, thread_id INTEGER, preview TEXT, attachments_indexed INTEGER NOT NULL DEFAULT 0
                CHECK (attachments_indexed IN (0, 1)), search_indexed INTEGER NOT NULL DEFAULT 0
                CHECK (search_indexed IN (0, 1))) STRICT"#,
    // index messages_unread
    r#"CREATE INDEX messages_unread ON messages (id) WHERE read = 0"#,
    // index messages_by_raw
    r#"CREATE UNIQUE INDEX messages_by_raw ON messages (raw_sha256)
                WHERE raw_sha256 IS NOT NULL"#,
    // index messages_by_received
    r#"CREATE INDEX messages_by_received ON messages (received_at)"#,
    // table message_parts
    r#"CREATE TABLE message_parts (
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                kind TEXT NOT NULL CHECK (kind IN ('raw', 'detail')),
                seq INTEGER NOT NULL CHECK (seq >= 0),
                data BLOB NOT NULL,
                PRIMARY KEY (message_id, kind, seq)
            ) STRICT"#,
    // index messages_outbound
    r#"CREATE INDEX messages_outbound ON messages (received_at)
                WHERE direction = 'outbound'"#,
    // table webhook
    r#"CREATE TABLE webhook (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                url TEXT NOT NULL,
                secret TEXT NOT NULL,
                allow_http_loopback INTEGER NOT NULL CHECK (allow_http_loopback IN (0, 1)),
                created_at INTEGER NOT NULL
            ) STRICT"#,
    // table jobs
    r#"CREATE TABLE jobs (
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
            ) STRICT"#,
    // index jobs_by_due
    r#"CREATE INDEX jobs_by_due ON jobs (due_at)"#,
    // table webhook_attempts
    r#"CREATE TABLE webhook_attempts (
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
            ) STRICT"#,
    // table throttle
    r#"CREATE TABLE throttle (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                milli_tokens INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT"#,
    // table dead_jobs
    r#"CREATE TABLE dead_jobs (
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
            ) STRICT"#,
    // trigger messages_counted_in
    r#"CREATE TRIGGER messages_counted_in AFTER INSERT ON messages BEGIN
                UPDATE inbox SET message_count = message_count + 1 WHERE id = 1;
            END"#,
    // trigger messages_counted_out
    r#"CREATE TRIGGER messages_counted_out AFTER DELETE ON messages BEGIN
                UPDATE inbox SET message_count = max(message_count - 1, 0) WHERE id = 1;
            END"#,
    // index messages_by_message_id
    r#"CREATE INDEX messages_by_message_id ON messages (message_id_header)
                WHERE message_id_header IS NOT NULL"#,
    // index messages_by_thread
    r#"CREATE INDEX messages_by_thread ON messages (thread_id, id)"#,
    // table message_refs
    r#"CREATE TABLE message_refs (
                ref TEXT NOT NULL,
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                PRIMARY KEY (ref, message_id)
            ) STRICT"#,
    // index message_refs_by_message
    r#"CREATE INDEX message_refs_by_message ON message_refs (message_id)"#,
    // table threads
    r#"CREATE TABLE threads (
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
            ) STRICT"#,
    // index threads_by_last
    r#"CREATE INDEX threads_by_last ON threads (last_message_id)"#,
    // index threads_unread
    r#"CREATE INDEX threads_unread ON threads (last_message_id) WHERE unread_count > 0"#,
    // table message_recipients
    r#"CREATE TABLE message_recipients (
                message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL CHECK (seq >= 0),
                address TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('to', 'cc', 'bcc')),
                status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
                reason TEXT,
                at INTEGER NOT NULL,
                PRIMARY KEY (message_id, seq)
            ) STRICT"#,
    // index message_recipients_by_at
    r#"CREATE INDEX message_recipients_by_at ON message_recipients (at)"#,
    // table attachments
    r#"CREATE TABLE attachments (
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
            ) STRICT"#,
    // index attachments_by_part
    r#"CREATE UNIQUE INDEX attachments_by_part ON attachments (message_id, part)"#,
    // table message_search
    r#"CREATE VIRTUAL TABLE message_search USING fts5(
                subject, sender, recipients, body, attachments,
                tokenize = 'unicode61 remove_diacritics 2'
            )"#,
    // index messages_unsearched
    r#"CREATE INDEX messages_unsearched ON messages (id) WHERE search_indexed = 0"#,
    // table message_findings
    r#"CREATE TABLE message_findings (
                message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
                codes TEXT NOT NULL,
                links TEXT NOT NULL
            ) STRICT"#,
    // table api_keys
    r#"CREATE TABLE api_keys (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                key_hash TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                scope TEXT NOT NULL CHECK (scope IN ('full', 'read')),
                state TEXT NOT NULL CHECK (state IN ('pending', 'active')),
                prefix TEXT,
                created_at INTEGER NOT NULL,
                last_used_at INTEGER
            ) STRICT"#,
    // table idempotency
    r#"CREATE TABLE idempotency (
                key TEXT PRIMARY KEY,
                fingerprint TEXT NOT NULL,
                message_id INTEGER NOT NULL,
                status INTEGER,
                body BLOB,
                created_at INTEGER NOT NULL
            ) STRICT"#,
    // index idempotency_by_age
    r#"CREATE INDEX idempotency_by_age ON idempotency (created_at)"#,
];
