//! The InboxDO's own cost, natively (no workerd): ingest of 5 KB, 1 MB and
//! 20 MB messages and listing at 1,000 and 100,000 messages, each beside a
//! floor measured in the same run (SHA-256 of the message for ingest, which
//! deduplication must do anyway; a primary-key lookup for listing), plus the
//! peak heap use of one ingest, and of ingesting and reading back the worst
//! case for the stored detail (25 MiB of control characters), the thread
//! list beside the message list at the same sizes, and the backfill that
//! threads 10,000 messages stored before threads existed, and attachment
//! downloads of 1 MB and 20 MB beside the raw download of the same message,
//! with their peak heap. Run with `cargo bench -p inbox-do` (or
//! `cargo xtask bench`); figures are in BENCHMARKS.md.

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

// The benchmark needs testkit's SQLite, which is native only; compiled for
// wasm32 (by `clippy --all-targets`) it is an empty program.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use criterion::{BatchSize, Criterion, Throughput, criterion_group};
    use inbox_do::InboxService;
    use peak_alloc::PeakAlloc;
    use protocol::wire::{ApiCall, InboxRequest, encode_request};
    use protocol::{ApiKey, Handle, Reply, Timestamp};
    use schema::{Sql, Value};
    use sha2::{Digest, Sha256};
    use std::hint::black_box;
    use std::time::Duration;
    use testkit::{FixedPlatform, SqliteDb};

    #[global_allocator]
    static PEAK: PeakAlloc = PeakAlloc;

    const NOW: Timestamp = Timestamp::from_millis(1_774_526_400_000);

    fn key() -> ApiKey {
        ApiKey::from_random([7; 32])
    }

    /// Serves one request at the benchmark's fixed instant.
    fn serve(service: &InboxService, db: &SqliteDb, request: &str, payload: &[u8]) -> Reply {
        let platform = FixedPlatform::at(NOW);
        pollster::block_on(service.serve(db, &platform, request, payload))
    }

    /// A migrated inbox with an active owner.
    fn inbox() -> (SqliteDb, InboxService) {
        let db = SqliteDb::new();
        let service = InboxService::new(schema::MIGRATIONS);
        let hash = key().hash();
        let handle = Handle::parse("bench").unwrap_or_else(|e| panic!("{e}"));
        for request in [
            InboxRequest::Claim {
                handle,
                key_hash: hash,
            },
            InboxRequest::Confirm { key_hash: hash },
        ] {
            let reply = serve(&service, &db, &encode_request(&request), b"");
            assert!(reply.is_success(), "{}", reply.status);
        }
        (db, service)
    }

    /// A message of about `size` bytes: a short text part and a base64 attachment.
    fn message(size: usize) -> Vec<u8> {
        let mut raw = b"From: Sender <sender@example.com>\r\nTo: bench@agents.test\r\n\
    Subject: benchmark\r\nMessage-ID: <bench@example.com>\r\nDate: Thu, 26 Mar 2026 12:00:00 +0000\r\n\
    MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
    Content-Type: text/plain; charset=utf-8\r\n\r\nHello, this is the body of a benchmark message.\r\n\
    --b\r\nContent-Type: application/octet-stream; name=data.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            .to_vec();
        let line =
            b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
        while raw.len() + line.len() + 8 < size {
            raw.extend_from_slice(line);
        }
        raw.extend_from_slice(b"--b--\r\n");
        raw
    }

    fn ingest(db: &SqliteDb, service: &InboxService, raw: &[u8]) {
        let request = InboxRequest::Ingest {
            envelope_from: "sender@example.com".into(),
            recipient: "bench@agents.test".into(),
            tag: None,
        };
        let reply = serve(service, db, &encode_request(&request), raw);
        assert_eq!(reply.status, 201);
    }

    const SIZES: [(&str, usize); 3] = [
        ("5 KB", 5 * 1024),
        ("1 MB", 1024 * 1024),
        ("20 MB", 20 * 1024 * 1024),
    ];

    fn bench_ingest(c: &mut Criterion) {
        for (name, size) in SIZES {
            let raw = message(size);
            let mut group = c.benchmark_group(format!("ingest {name}"));
            group.throughput(Throughput::Bytes(raw.len() as u64));
            if size > 1024 * 1024 {
                group
                    .sample_size(10)
                    .measurement_time(Duration::from_secs(20));
            }
            group.bench_function("floor: sha256", |b| {
                b.iter(|| Sha256::digest(black_box(&raw)))
            });
            group.bench_function("ingest", |b| {
                b.iter_batched(
                    inbox,
                    // The inbox is returned so that dropping it is not timed.
                    |(db, service)| {
                        ingest(&db, &service, black_box(&raw));
                        (db, service)
                    },
                    BatchSize::PerIteration,
                )
            });
            group.finish();
        }
    }

    /// An inbox holding `count` messages (listing rows only: listing never reads
    /// the chunks), every third one read.
    fn filled(count: u32) -> (SqliteDb, InboxService) {
        let (db, service) = inbox();
        db.exec(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
             INSERT INTO messages (direction, received_at, read, size, from_addr, to_addr, subject)
             SELECT 'inbound', 1774526400000 + i * 1000, i % 3 = 0, 5000,
                    'sender' || i || '@example.com', 'bench@agents.test', 'Subject ' || i FROM n",
            &[Value::Integer(i64::from(count))],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Threads of two messages each, as ingest would have kept them.
        for statement in [
            "UPDATE messages SET thread_id = (id + 1) / 2, preview = 'Preview of ' || id",
            "INSERT INTO threads (id, subject, participants, message_count, unread_count,
                                  last_message_id, last_message_at, preview, created_at)
             SELECT thread_id, min(subject), '[\"sender@example.com\"]', count(*),
                    sum(read = 0), max(id), max(received_at), 'Preview of ' || max(id), 0
             FROM messages GROUP BY thread_id",
        ] {
            db.exec(statement, &[]).unwrap_or_else(|e| panic!("{e}"));
        }
        (db, service)
    }

    fn bench_list(c: &mut Criterion) {
        let hash = key().hash();
        for count in [1_000u32, 100_000] {
            let (db, service) = filled(count);
            let mut group = c.benchmark_group(format!("list at {count} messages"));
            group.bench_function("floor: primary-key lookup", |b| {
                b.iter(|| {
                    db.exec(
                        "SELECT id FROM messages WHERE id = ?",
                        &[Value::Integer(black_box(7))],
                    )
                    .unwrap_or_else(|e| panic!("{e}"))
                })
            });
            let cases = [
                ("newest 20", None, None, false),
                (
                    "20 from the middle (cursor)",
                    Some(u64::from(count / 2)),
                    None,
                    false,
                ),
                ("20 unread", None, None, true),
                (
                    "since an hour before the newest",
                    None,
                    Some(Timestamp::from_millis(
                        1_774_526_400_000 + i64::from(count) * 1000 - 3_600_000,
                    )),
                    false,
                ),
            ];
            let thread_cases = [
                ("threads: newest 20", None, false),
                (
                    "threads: 20 from the middle (cursor)",
                    Some(u64::from(count / 2)),
                    false,
                ),
                ("threads: 20 unread", None, true),
            ];
            for (name, cursor, unread) in thread_cases {
                let request = encode_request(&InboxRequest::Api {
                    key_hash: hash,
                    mail_domain: "agents.test".into(),
                    call: ApiCall::ListThreads {
                        limit: 20,
                        cursor,
                        unread,
                    },
                });
                group.bench_function(name, |b| {
                    b.iter(|| {
                        let reply = serve(&service, &db, black_box(&request), b"");
                        assert_eq!(reply.status, 200);
                        reply
                    })
                });
            }
            for (name, cursor, since, unread) in cases {
                let request = encode_request(&InboxRequest::Api {
                    key_hash: hash,
                    mail_domain: "agents.test".into(),
                    call: ApiCall::ListMessages {
                        limit: 20,
                        cursor,
                        since,
                        unread,
                    },
                });
                group.bench_function(name, |b| {
                    b.iter(|| {
                        let reply = serve(&service, &db, black_box(&request), b"");
                        assert_eq!(reply.status, 200);
                        reply
                    })
                });
            }
            group.finish();
        }
    }

    /// Peak heap growth during one ingest of each size (criterion measures time only).
    fn report_peak_memory() {
        println!("\npeak heap during one ingest (above the idle inbox):");
        for (name, size) in SIZES {
            let raw = message(size);
            let (db, service) = inbox();
            let idle = PEAK.current_usage();
            PEAK.reset_peak_usage();
            ingest(&db, &service, &raw);
            let peak = PEAK.peak_usage().saturating_sub(idle);
            println!(
                "  {name:>6}: {:>9.1} KiB, {:.1}x the message",
                peak as f64 / 1024.0,
                peak as f64 / raw.len() as f64
            );
        }
        println!();
        report_worst_case_body();
    }

    /// The worst case for the stored detail: a message of the largest size
    /// accepted whose body is all control characters, which JSON escapes to
    /// six bytes each (`\u0001`). The detail keeps at most
    /// `MAX_BODY_TEXT` (1 MiB) of it.
    fn control_character_message() -> Vec<u8> {
        let mut raw = b"From: Sender <sender@example.com>\r\nTo: bench@agents.test\r\n\
    Subject: control characters\r\nMessage-ID: <worst@example.com>\r\n\
    MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
    Content-Transfer-Encoding: 8bit\r\n\r\n"
            .to_vec();
        let mut line = vec![0x01u8; 998];
        line.extend_from_slice(b"\r\n");
        let limit = usize::try_from(protocol::limits::MAX_MESSAGE_BYTES).unwrap_or(usize::MAX);
        while raw.len() + line.len() <= limit {
            raw.extend_from_slice(&line);
        }
        raw
    }

    /// Peak heap growth of ingesting and then reading back the worst-case body.
    fn report_worst_case_body() {
        let raw = control_character_message();
        let (db, service) = inbox();
        let idle = PEAK.current_usage();
        PEAK.reset_peak_usage();
        ingest(&db, &service, &raw);
        let ingest_peak = PEAK.peak_usage().saturating_sub(idle);
        let idle = PEAK.current_usage();
        PEAK.reset_peak_usage();
        let request = encode_request(&InboxRequest::Api {
            key_hash: key().hash(),
            mail_domain: "agents.test".into(),
            call: ApiCall::GetMessage { id: 1 },
        });
        let reply = serve(&service, &db, &request, b"");
        assert_eq!(reply.status, 200);
        let read_peak = PEAK.peak_usage().saturating_sub(idle);
        let mib = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);
        println!(
            "worst-case body ({:.1} MiB of control characters):",
            mib(raw.len())
        );
        println!(
            "  ingest: peak heap {:>6.1} MiB ({:.1}x the message)",
            mib(ingest_peak),
            ingest_peak as f64 / raw.len() as f64
        );
        println!(
            "  GET /api/messages/:id: peak heap {:>6.1} MiB, reply {:.1} MiB",
            mib(read_peak),
            mib(reply.body.len())
        );
        println!();
    }

    /// A message carrying one file of `size` bytes, `encoding` base64 or
    /// binary (a 20 MB file fits the 25 MiB inbound limit only unencoded).
    fn with_file(size: usize, base64: bool) -> Vec<u8> {
        use base64::Engine as _;
        let file: Vec<u8> = (0..size).map(|i| (i * 31 + i / 977) as u8).collect();
        let (encoding, body) = if base64 {
            let text = base64::engine::general_purpose::STANDARD.encode(&file);
            let mut wrapped = Vec::with_capacity(text.len() * 78 / 76 + 2);
            for line in text.as_bytes().chunks(76) {
                wrapped.extend_from_slice(line);
                wrapped.extend_from_slice(b"\r\n");
            }
            ("base64", wrapped)
        } else {
            ("binary", file)
        };
        let mut raw = format!(
            "From: Sender <sender@example.com>\r\nTo: bench@agents.test\r\nSubject: a file\r\n\
             Message-ID: <file-{size}-{encoding}@example.com>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
             The file.\r\n--b\r\nContent-Type: application/octet-stream; name=f.bin\r\n\
             Content-Disposition: attachment; filename=f.bin\r\n\
             Content-Transfer-Encoding: {encoding}\r\n\r\n"
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        raw.extend_from_slice(b"\r\n--b--\r\n");
        raw
    }

    const FILES: [(&str, usize, bool); 3] = [
        ("1 MB base64", 1_000_000, true),
        ("18 MB base64", 18_000_000, true),
        ("20 MB binary", 20_000_000, false),
    ];

    /// Streams the body of `call` as the Durable Object's glue does, one
    /// piece per pull, keeping none of it; returns how many bytes came.
    fn stream(db: &SqliteDb, service: &InboxService, call: ApiCall) -> u64 {
        let request = encode_request(&InboxRequest::Api {
            key_hash: key().hash(),
            mail_domain: "agents.test".into(),
            call,
        });
        let platform = FixedPlatform::at(NOW);
        let answer = pollster::block_on(service.serve_answer(db, &platform, &request, b""));
        let inbox_do::Answer::Raw(body) = answer else {
            panic!("not a streamed answer: {answer:?}");
        };
        let mut reader = body.reader();
        let mut total = 0u64;
        while let Some(piece) = reader.next(db).unwrap_or_else(|e| panic!("{e}")) {
            total += black_box(piece).len() as u64;
        }
        total
    }

    fn bench_download(c: &mut Criterion) {
        for (name, size, base64) in FILES {
            let raw = with_file(size, base64);
            let (db, service) = inbox();
            ingest(&db, &service, &raw);
            let mut group = c.benchmark_group(format!("download {name}"));
            group.throughput(Throughput::Bytes(size as u64));
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(10));
            group.bench_function("floor: the raw message", |b| {
                b.iter(|| stream(&db, &service, ApiCall::GetRaw { id: 1 }))
            });
            group.bench_function("attachment", |b| {
                b.iter(|| {
                    let got = stream(
                        &db,
                        &service,
                        ApiCall::GetAttachment {
                            id: 1,
                            attachment: "2".into(),
                        },
                    );
                    assert_eq!(got, size as u64);
                })
            });
            group.finish();
        }
    }

    /// Peak heap growth while an attachment is streamed out, beside its size.
    fn report_download_memory() {
        println!("peak heap while an attachment downloads (above the idle inbox):");
        for (name, size, base64) in FILES {
            let raw = with_file(size, base64);
            let (db, service) = inbox();
            ingest(&db, &service, &raw);
            // Its rows exist; the first download would otherwise index it.
            let idle = PEAK.current_usage();
            PEAK.reset_peak_usage();
            let got = stream(
                &db,
                &service,
                ApiCall::GetAttachment {
                    id: 1,
                    attachment: "2".into(),
                },
            );
            let peak = PEAK.peak_usage().saturating_sub(idle);
            assert_eq!(got, size as u64);
            println!(
                "  {name:>13}: {:>7.1} KiB ({:.3}x the file)",
                peak as f64 / 1024.0,
                peak as f64 / size as f64
            );
        }
        println!();
    }

    /// An inbox of `messages` messages stored before threads existed:
    /// chains of a message and three replies, a third of them delivered
    /// before their original, ingested and then stripped of their threads as
    /// migration 8 finds an old inbox.
    fn unthreaded(messages: u32) -> (SqliteDb, InboxService) {
        let (db, service) = inbox();
        for chain in 0..messages / 4 {
            let order: [u32; 4] = if chain % 3 == 0 {
                [2, 0, 1, 3]
            } else {
                [0, 1, 2, 3]
            };
            for step in order {
                let headers = match step {
                    0 => String::new(),
                    1 => format!("In-Reply-To: <c{chain}-0@x>\r\nReferences: <c{chain}-0@x>\r\n"),
                    n => format!(
                        "In-Reply-To: <c{chain}-{}@x>\r\nReferences: <c{chain}-0@x> <c{chain}-{}@x>\r\n",
                        n - 1,
                        n - 1
                    ),
                };
                let raw = format!(
                    "From: s@example.com\r\nTo: bench@agents.test\r\nSubject: chain {chain}\r\n\
                     Message-ID: <c{chain}-{step}@x>\r\n{headers}\r\nOn the chain, step {step}.\r\n"
                );
                ingest(&db, &service, raw.as_bytes());
            }
        }
        db.as_before_threads();
        (db, service)
    }

    /// The backfill of 10,000 such messages: alarms until none is left
    /// unthreaded (each alarm threads at most `BACKFILL_BATCH`), beside the
    /// floor of one alarm with nothing to do.
    fn bench_backfill(c: &mut Criterion) {
        const MESSAGES: u32 = 10_000;
        let mut group = c.benchmark_group(format!("backfill of {MESSAGES} messages"));
        group.sample_size(10);
        let platform = FixedPlatform::at(NOW);
        group.bench_function("floor: an alarm with nothing to do", |b| {
            let (db, service) = inbox();
            b.iter(|| {
                pollster::block_on(service.alarm(&db, &platform)).unwrap_or_else(|e| panic!("{e}"))
            })
        });
        group.bench_function("every message threaded", |b| {
            b.iter_batched(
                || unthreaded(MESSAGES),
                |(db, service)| {
                    let mut alarms = 0;
                    while !db
                        .exec(
                            "SELECT 1 FROM messages WHERE thread_id IS NULL LIMIT 1",
                            &[],
                        )
                        .unwrap_or_else(|e| panic!("{e}"))
                        .rows
                        .is_empty()
                    {
                        pollster::block_on(service.alarm(&db, &platform))
                            .unwrap_or_else(|e| panic!("{e}"));
                        alarms += 1;
                    }
                    assert_eq!(alarms, MESSAGES.div_ceil(inbox_do::BACKFILL_BATCH));
                    let threads = db
                        .exec("SELECT count(*) FROM threads", &[])
                        .unwrap_or_else(|e| panic!("{e}"))
                        .rows[0][0]
                        .as_i64();
                    assert_eq!(threads, Some(i64::from(MESSAGES / 4)));
                    db
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }

    criterion_group!(
        benches,
        bench_ingest,
        bench_list,
        bench_backfill,
        bench_download
    );

    pub(crate) fn main() {
        report_peak_memory();
        report_download_memory();
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
}

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    native::main();
}
