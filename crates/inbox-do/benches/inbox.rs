//! The InboxDO's own cost, natively (no workerd): ingest of a 2 KB plain
//! message and of 5 KB, 1 MB and 20 MB ones with an attachment (the small
//! ones into an awake inbox and into a new one) and listing at 1,000 and 100,000 messages, each beside a
//! floor measured in the same run (SHA-256 of the message for ingest, which
//! deduplication must do anyway; a primary-key lookup for listing), plus the
//! peak heap use of one ingest, and of ingesting and reading back the worst
//! case for the stored detail (25 MiB of control characters), the thread
//! list beside the message list at the same sizes, and the backfill that
//! threads 10,000 messages stored before threads existed, and attachment
//! downloads of 1 MB and 20 MB beside the raw download of the same message,
//! with their peak heap; search at 1,000 and 100,000 messages beside the
//! message list, the search backfill of 10,000 (and once 100,000) messages
//! stored before search existed with its longest alarm, and the index's
//! size beside the mail's. Run with `cargo bench -p inbox-do` (or
//! `cargo xtask bench`); figures are in BENCHMARKS.md.

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

// The benchmark needs testkit's SQLite, which is native only; compiled for
// wasm32 (by `clippy --all-targets`) it is an empty program.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use criterion::measurement::{Measurement, WallTime};
    use criterion::{BatchSize, Criterion, Throughput, criterion_group};
    use inbox_do::InboxService;
    use peak_alloc::PeakAlloc;
    use protocol::wire::{ApiCall, InboxRequest, encode_request};
    use protocol::{ApiKey, Handle, Reply, Timestamp};
    use schema::{Sql, Value};
    use sha2::{Digest, Sha256};
    use std::cell::OnceCell;
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
            InboxRequest::Confirm {
                key_hash: hash,
                prefix: None,
            },
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

    /// A plain-text message of about `size` bytes (no MIME parts), as most
    /// mail an agent is sent is: a notification, a code, a reply.
    fn plain_message(size: usize) -> Vec<u8> {
        let mut raw = b"From: Sender <sender@example.com>\r\nTo: bench@agents.test\r\n\
    Subject: Your sign-in code\r\nMessage-ID: <bench@example.com>\r\nDate: Thu, 26 Mar 2026 12:00:00 +0000\r\n\
    MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour code is 482913.\r\n\r\n"
            .to_vec();
        let line = b"The quick brown fox jumps over the lazy dog, and then it reads its mail.\r\n";
        while raw.len() + line.len() < size {
            raw.extend_from_slice(line);
        }
        raw
    }

    /// `raw` with its Message-ID made unique by `n` (so that de-duplication
    /// does not answer for it), the same size give or take a few bytes.
    fn numbered(raw: &[u8], n: u64) -> Vec<u8> {
        let text = std::str::from_utf8(raw).unwrap_or_else(|e| panic!("{e}"));
        text.replacen(
            "<bench@example.com>",
            &format!("<bench-{n}@example.com>"),
            1,
        )
        .into_bytes()
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

    /// A warm inbox is replaced by a new one after this many messages (in
    /// the untimed setup), so that the in-memory database stays small.
    const WARM_INBOX_MESSAGES: u64 = 2_000;

    /// Ingest into an inbox that is awake (its object has served mail, so its
    /// statements are prepared, as DO SQLite keeps them), each message new.
    fn bench_warm_ingest(group: &mut criterion::BenchmarkGroup<'_, WallTime>, raw: &[u8]) {
        let warm: std::cell::RefCell<Option<(SqliteDb, InboxService)>> = Default::default();
        let count = std::cell::Cell::new(0u64);
        group.bench_function("ingest", |b| {
            b.iter_batched(
                || {
                    let n = count.get();
                    count.set(n + 1);
                    let mut slot = warm.borrow_mut();
                    if n.is_multiple_of(WARM_INBOX_MESSAGES) {
                        let (db, service) = inbox();
                        ingest(&db, &service, &numbered(raw, u64::MAX - n));
                        *slot = Some((db, service));
                    }
                    numbered(raw, n)
                },
                |message| {
                    let slot = warm.borrow();
                    let (db, service) = slot.as_ref().unwrap_or_else(|| panic!("no inbox"));
                    ingest(db, service, black_box(&message));
                },
                BatchSize::SmallInput,
            )
        });
    }

    /// The floor of an ingest: the SHA-256 of its bytes, which
    /// de-duplication computes anyway.
    fn bench_sha256_floor(group: &mut criterion::BenchmarkGroup<'_, WallTime>, raw: &[u8]) {
        group.bench_function("floor: sha256", |b| {
            b.iter(|| Sha256::digest(black_box(raw)))
        });
    }

    /// Ingest of `raw` into a new inbox each time (made in the untimed setup).
    fn bench_new_inbox_ingest(
        group: &mut criterion::BenchmarkGroup<'_, WallTime>,
        name: &str,
        raw: &[u8],
    ) {
        group.bench_function(name, |b| {
            b.iter_batched(
                inbox,
                // The inbox is returned so that dropping it is not timed.
                |(db, service)| {
                    ingest(&db, &service, black_box(raw));
                    (db, service)
                },
                BatchSize::PerIteration,
            )
        });
    }

    fn bench_ingest(c: &mut Criterion) {
        let small: [(&str, Vec<u8>); 2] = [
            ("2 KB plain", plain_message(2 * 1024)),
            ("5 KB", message(5 * 1024)),
        ];
        for (name, raw) in &small {
            let mut group = c.benchmark_group(format!("ingest {name}"));
            group.throughput(Throughput::Bytes(raw.len() as u64));
            bench_sha256_floor(&mut group, raw);
            bench_warm_ingest(&mut group, raw);
            // The method of the first figures: each message into a new inbox
            // (every statement prepared for the first time).
            bench_new_inbox_ingest(&mut group, "ingest into a new inbox", raw);
            group.finish();
        }
        for (name, size) in &SIZES[1..] {
            let raw = message(*size);
            let mut group = c.benchmark_group(format!("ingest {name}"));
            group.throughput(Throughput::Bytes(raw.len() as u64));
            if *size > 1024 * 1024 {
                group
                    .sample_size(10)
                    .measurement_time(Duration::from_secs(20));
            }
            bench_sha256_floor(&mut group, &raw);
            bench_new_inbox_ingest(&mut group, "ingest", &raw);
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

    /// `GET /api/export` of 50 messages of 200 KiB with `From ` lines,
    /// against reading the same raw messages one by one (the floor: the
    /// chunks without quoting or separators).
    fn bench_export(c: &mut Criterion) {
        const MESSAGES: u64 = 50;
        let (db, service) = inbox();
        let mut total = 0u64;
        for n in 0..MESSAGES {
            let mut raw = message(200 * 1024);
            raw.extend_from_slice(format!("From the sender, {n}\r\n>From quoted\r\n").as_bytes());
            total += raw.len() as u64;
            ingest(&db, &service, &raw);
        }
        let mut group = c.benchmark_group(format!("export of {MESSAGES} x 200 KiB"));
        group.throughput(Throughput::Bytes(total));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(10));
        group.bench_function("floor: each raw message", |b| {
            b.iter(|| {
                (1..=MESSAGES)
                    .map(|id| stream(&db, &service, ApiCall::GetRaw { id }))
                    .sum::<u64>()
            })
        });
        group.bench_function("export", |b| {
            b.iter(|| assert!(stream(&db, &service, ApiCall::Export) > total))
        });
        group.finish();
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

    /// A seeded generator (SplitMix64), so every run fills the same mail.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in `0..n`.
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        /// In `0..n`, rank `k` drawn about `1 / (k + 1)` as often as rank
        /// 0 (Zipf's law, as words and correspondents are in real mail).
        fn zipf(&mut self, n: usize) -> usize {
            let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
            ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
        }
    }

    /// English words, roughly most frequent first, so that [`Rng::zipf`]
    /// over them gives text with a few very common words and many rare ones.
    const WORDS: &[&str] = &[
        "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
        "are", "with", "as", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had",
        "by", "not", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all",
        "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do",
        "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would",
        "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look",
        "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people",
        "my", "over", "know", "water", "than", "call", "first", "who", "may", "down", "side",
        "been", "now", "find", "any", "new", "work", "part", "take", "get", "place", "made",
        "live", "where", "after", "back", "little", "only", "round", "man", "year", "came", "show",
        "every", "good", "me", "give", "our", "under", "name", "very", "through", "just", "form",
        "sentence", "great", "think", "say", "help", "low", "line", "differ", "turn", "cause",
        "much", "mean", "before", "move", "right", "boy", "old", "too", "same", "tell", "does",
        "set", "three", "want", "air", "well", "also", "play", "small", "end", "put", "home",
        "read", "hand", "port", "large", "spell", "add", "even", "land", "here", "must", "big",
        "high", "such", "follow", "act", "why", "ask", "men", "change", "went", "light", "kind",
        "off", "need", "house", "picture", "try", "us", "again", "animal", "point", "mother",
        "world", "near", "build", "self", "earth", "father", "head", "stand", "own", "page",
        "should", "country", "found", "answer", "school", "grow", "study", "still", "learn",
        "plant", "cover", "food", "sun", "four", "between", "state", "keep", "eye", "never",
        "last", "let", "thought", "city", "tree", "cross", "farm", "hard", "start", "might",
        "story", "saw", "far", "sea", "draw", "left", "late", "run", "while", "press", "close",
        "night", "real", "life", "few", "north", "open", "seem", "together", "next", "white",
        "children", "begin", "got", "walk", "example", "ease", "paper", "group", "always", "music",
        "those", "both", "mark", "often", "letter", "until", "mile", "river", "car", "feet",
        "care", "second", "book", "carry", "took", "science", "eat", "room", "friend", "began",
        "idea", "fish", "mountain", "stop", "once", "base", "hear", "horse", "cut", "sure",
        "watch", "color", "face", "wood", "main", "enough", "plain", "girl", "usual", "young",
        "ready", "above", "ever", "red", "list", "though", "feel", "talk", "bird", "soon", "body",
        "dog", "family", "direct", "pose", "leave", "song", "measure", "door", "product", "black",
        "short", "numeral", "class", "wind", "question", "happen", "complete", "ship", "area",
        "half", "rock", "order", "fire", "south", "problem", "piece", "told", "knew", "pass",
        "since", "top", "whole", "king", "space", "heard", "best", "hour", "better", "true",
        "during", "hundred", "five", "remember", "step", "early", "hold", "west", "ground",
        "interest", "reach", "fast", "verb", "sing", "listen", "six", "table", "travel", "less",
        "morning", "ten", "simple", "several", "vowel", "toward", "war", "lay", "against",
        "pattern", "slow", "center", "love", "person", "money", "serve", "appear", "road", "map",
        "rain", "rule", "govern", "pull", "cold", "notice", "voice", "unit", "power", "town",
        "fine", "certain", "fly", "fall", "lead", "cry", "dark", "machine", "note", "wait", "plan",
        "figure", "star", "box", "noun", "field", "rest", "correct", "able", "pound", "done",
        "beauty", "drive", "stood", "contain", "front", "teach", "week", "final", "gave", "green",
        "oh", "quick", "develop", "ocean", "warm", "free", "minute", "strong", "special", "mind",
        "behind", "clear", "tail", "produce", "fact", "street", "inch", "multiply", "nothing",
        "course", "stay", "wheel", "full", "force", "blue", "object", "decide", "surface", "deep",
        "moon", "island", "foot", "system", "busy", "test", "record", "boat", "common", "gold",
        "possible", "plane", "stead", "dry", "wonder", "laugh", "thousand", "ago", "ran", "check",
        "game", "shape", "equate", "hot", "miss", "brought", "heat", "snow", "tire", "bring",
        "yes", "distant", "fill", "east", "paint", "language", "among", "meeting", "report",
        "schedule", "budget", "project", "deadline", "review", "contract", "shipment", "account",
        "password", "delivery",
    ];

    const FIRST: [&str; 24] = [
        "Alice", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Grace", "Hiro", "Ines", "Jonas",
        "Kavya", "Liam", "Maya", "Nikolai", "Olga", "Pedro", "Quinn", "Rosa", "Sanjay", "Tess",
        "Umar", "Vera", "Wei", "Yusuf",
    ];
    const LAST: [&str; 25] = [
        "Nguyen", "Okafor", "Schmidt", "Garcia", "Kowalski", "Haddad", "Tanaka", "Silva", "Murphy",
        "Rossi", "Ivanova", "Patel", "Dubois", "Larsen", "Moreau", "Cohen", "Jensen", "Novak",
        "Reyes", "Fischer", "Ali", "Brown", "Kim", "Lopez", "Berg",
    ];

    /// The name and address of correspondent `rank` (600 distinct ones).
    fn sender(rank: usize) -> (String, String) {
        let (first, last) = (FIRST[rank % FIRST.len()], LAST[rank % LAST.len()]);
        let domain = ["example.com", "mail.test", "corp.example", "shop.test"][rank % 4];
        (
            format!("{first} {last}"),
            format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase()),
        )
    }

    /// In exactly 10 of the messages of any inbox the bench fills (and not in
    /// [`WORDS`]).
    const RARE_WORD: &str = "zanzibar";
    /// In 30% of them (and not in [`WORDS`]).
    const COMMON_WORD: &str = "invoice";

    /// `count` words of [`WORDS`] in sentences, Zipf-distributed.
    fn sentences(rng: &mut Rng, count: usize, extra: &[&str]) -> String {
        let mut words: Vec<&str> = (0..count).map(|_| WORDS[rng.zipf(WORDS.len())]).collect();
        for word in extra {
            let at = rng.below(words.len() + 1);
            words.insert(at, word);
        }
        let mut text = String::new();
        let mut line = 0;
        let mut sentence = 0;
        for word in words {
            if sentence == 0 {
                let mut chars = word.chars();
                if let Some(c) = chars.next() {
                    text.extend(c.to_uppercase());
                    text.push_str(chars.as_str());
                }
                sentence = 6 + rng.below(12);
            } else {
                text.push_str(word);
            }
            sentence -= 1;
            if sentence == 0 {
                text.push('.');
            }
            line += word.len() + 1;
            if line > 70 {
                text.push_str("\r\n");
                line = 0;
            } else {
                text.push(' ');
            }
        }
        text.push_str("\r\n");
        text
    }

    /// Message `i` of an inbox of `count`: a varied sender (Zipf over 600),
    /// subject and body (30 to 250 words), one in eight with a small
    /// attachment; [`RARE_WORD`] in 10 of them, [`COMMON_WORD`] in 30%.
    fn varied_message(rng: &mut Rng, i: usize, count: usize) -> (String, Vec<u8>) {
        let (name, addr) = sender(rng.zipf(600));
        let mut extra = Vec::new();
        if i % (count / 10) == 7 {
            extra.push(RARE_WORD);
        }
        if i % 10 < 3 {
            extra.push(COMMON_WORD);
        }
        let subject_words = 2 + rng.below(6);
        let subject: Vec<&str> = (0..subject_words)
            .map(|_| WORDS[30 + rng.zipf(WORDS.len() - 30)])
            .collect();
        let subject = format!(
            "{}{}",
            if rng.below(4) == 0 { "Re: " } else { "" },
            subject.join(" ")
        );
        let body_words = 30 + rng.below(221);
        let body = sentences(rng, body_words, &extra);
        let mut raw = format!(
            "From: {name} <{addr}>\r\nTo: bench@agents.test\r\nSubject: {subject}\r\n\
             Message-ID: <varied-{i}@example.com>\r\nDate: Thu, 26 Mar 2026 12:00:00 +0000\r\n\
             MIME-Version: 1.0\r\n"
        );
        if rng.below(8) == 0 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{body}--b\r\n\
                 Content-Type: application/pdf; name=report-{i}.pdf\r\n\
                 Content-Disposition: attachment; filename=report-{i}.pdf\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n--b--\r\n"
            ));
        } else {
            raw.push_str(&format!(
                "Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
            ));
        }
        (addr, raw.into_bytes())
    }

    /// An inbox of `count` such messages, each ingested as mail arrives (so
    /// indexed at ingest), every third one then marked read.
    fn searchable(count: usize) -> (SqliteDb, InboxService) {
        let (db, service) = inbox();
        let mut rng = Rng(0x5EA2C4);
        for i in 0..count {
            let (from, raw) = varied_message(&mut rng, i, count);
            let request = InboxRequest::Ingest {
                envelope_from: from,
                recipient: "bench@agents.test".into(),
                tag: None,
            };
            let reply = serve(&service, &db, &encode_request(&request), &raw);
            assert_eq!(
                reply.status,
                201,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
        }
        db.exec("UPDATE messages SET read = 1 WHERE id % 3 = 0", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        (db, service)
    }

    /// The four searches timed, each with its `q`.
    fn search_cases() -> [(&'static str, String); 4] {
        let (name, _) = sender(3);
        [
            ("rare word (10 matches)", RARE_WORD.to_owned()),
            ("common word (30% match)", COMMON_WORD.to_owned()),
            (
                "from: a sender + a word",
                format!("from:\"{name}\" {COMMON_WORD}"),
            ),
            (
                "filters only: is:unread has:attachment",
                "is:unread has:attachment".to_owned(),
            ),
        ]
    }

    /// How many messages `q` matches (counted in SQL, not paged).
    fn matches(db: &SqliteDb, q: &str) -> i64 {
        let query = protocol::search::Query::parse(q).unwrap_or_else(|e| panic!("{e}"));
        let rows = match query.match_expression() {
            Some(expression) => db.exec(
                "SELECT count(*) FROM message_search WHERE message_search MATCH ?",
                &[Value::from(expression.as_str())],
            ),
            None => db.exec(
                "SELECT count(*) FROM messages WHERE read = 0 AND has_attachments = 1",
                &[],
            ),
        };
        rows.unwrap_or_else(|e| panic!("{e}")).rows[0][0]
            .as_i64()
            .unwrap_or_else(|| panic!("no count"))
    }

    /// A search's first page of 20, answered by the InboxDO.
    fn search_request(q: &str) -> String {
        encode_request(&InboxRequest::Api {
            key_hash: key().hash(),
            mail_domain: "agents.test".into(),
            call: ApiCall::Search {
                q: q.to_owned(),
                limit: 20,
                cursor: None,
            },
        })
    }

    /// Criterion's median for `bench` of `group` in this run, in
    /// nanoseconds, read back from where criterion keeps its estimates
    /// (`$CRITERION_HOME`, or `criterion/` in the target directory).
    fn median_ns(group: &str, bench: &str) -> Option<f64> {
        let safe = |s: &str| {
            s.replace(
                &['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'][..],
                "_",
            )
        };
        let home = match std::env::var_os("CRITERION_HOME") {
            Some(home) => std::path::PathBuf::from(home),
            None => match std::env::var_os("CARGO_TARGET_DIR") {
                Some(target) => std::path::PathBuf::from(target).join("criterion"),
                // This binary is target/<profile>/deps/<name>.
                None => std::env::current_exe()
                    .ok()?
                    .parent()?
                    .parent()?
                    .parent()?
                    .join("criterion"),
            },
        };
        let path = home
            .join(safe(group))
            .join(safe(bench))
            .join("new/estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
        estimates["median"]["point_estimate"].as_f64()
    }

    /// `ns` as criterion words a time.
    fn duration(ns: f64) -> String {
        match ns {
            n if n >= 1e9 => format!("{:.2} s", n / 1e9),
            n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
            n if n >= 1e3 => format!("{:.1} µs", n / 1e3),
            n => format!("{n:.0} ns"),
        }
    }

    /// Prints each bench of `group` as its median and its ratio to the
    /// floor's (the first name), when criterion measured them in this run.
    fn print_ratios(group: &str, names: &[&str], notes: &[String]) {
        let Some((floor, rest)) = names.split_first() else {
            return;
        };
        let Some(floor_ns) = median_ns(group, floor) else {
            return;
        };
        println!("\n{group}: medians, and each one's ratio to the floor");
        println!("  {floor:<42} {:>10}", duration(floor_ns));
        for (i, name) in rest.iter().enumerate() {
            if let Some(ns) = median_ns(group, name) {
                let note = notes.get(i).map_or("", String::as_str);
                println!(
                    "  {name:<42} {:>10} {:>7.1}x  {note}",
                    duration(ns),
                    ns / floor_ns
                );
            }
        }
        println!();
    }

    /// Search at 1,000 and 100,000 messages: a rare word, a common one,
    /// `from:` and a word (each the first page of 20 ranked results with
    /// snippets), and filters only, beside the floor of the message list's
    /// newest 20 in the same inbox. The inbox is filled only when a bench of
    /// the group is selected.
    fn bench_search(c: &mut Criterion) {
        let hash = key().hash();
        for count in [1_000usize, 100_000] {
            let name = format!("search at {count} messages");
            let filled = OnceCell::new();
            let fill = || {
                let (db, service) = searchable(count);
                // Each query finds what it is meant to.
                for (case, q) in search_cases() {
                    let reply = serve(&service, &db, &search_request(&q), b"");
                    assert_eq!(reply.status, 200, "{case}");
                    let results: protocol::api::SearchResults =
                        serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{e}"));
                    let want = usize::try_from(matches(&db, &q).min(20)).unwrap_or(20);
                    assert_eq!(results.messages.len(), want, "{case}");
                    assert!(results.complete);
                }
                assert_eq!(matches(&db, RARE_WORD), 10);
                (db, service)
            };
            let mut group = c.benchmark_group(&name);
            const FLOOR: &str = "floor: list newest 20";
            let list = encode_request(&InboxRequest::Api {
                key_hash: hash,
                mail_domain: "agents.test".into(),
                call: ApiCall::ListMessages {
                    limit: 20,
                    cursor: None,
                    since: None,
                    unread: false,
                },
            });
            group.bench_function(FLOOR, |b| {
                let (db, service) = filled.get_or_init(fill);
                b.iter(|| {
                    let reply = serve(service, db, black_box(&list), b"");
                    assert_eq!(reply.status, 200);
                    reply
                })
            });
            let cases = search_cases();
            for (case, q) in &cases {
                let request = search_request(q);
                group.bench_function(*case, |b| {
                    let (db, service) = filled.get_or_init(fill);
                    b.iter(|| {
                        let reply = serve(service, db, black_box(&request), b"");
                        assert_eq!(reply.status, 200);
                        reply
                    })
                });
            }
            group.finish();
            if let Some((db, _)) = filled.get() {
                let mut names = vec![FLOOR];
                names.extend(cases.iter().map(|(case, _)| *case));
                let notes: Vec<String> = cases
                    .iter()
                    .map(|(_, q)| format!("q={q:?}: {} matches", matches(db, q)))
                    .collect();
                print_ratios(&name, &names, &notes);
            }
        }
    }

    /// Whether any message is still outside the search index.
    fn search_pending(db: &SqliteDb) -> bool {
        !db.exec(
            "SELECT 1 FROM messages WHERE search_indexed = 0 LIMIT 1",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .rows
        .is_empty()
    }

    /// Runs alarms until every message is indexed; returns how many ran.
    fn run_search_backfill(db: &SqliteDb, service: &InboxService) -> u32 {
        let platform = FixedPlatform::at(NOW);
        let mut alarms = 0;
        while search_pending(db) {
            pollster::block_on(service.alarm(db, &platform)).unwrap_or_else(|e| panic!("{e}"));
            alarms += 1;
        }
        alarms
    }

    /// The search backfill of `db` (put back before migration 10 first),
    /// each alarm timed by criterion's wall clock: prints the number of
    /// alarms, their total, median and longest.
    fn report_search_backfill(db: &SqliteDb, service: &InboxService, messages: usize) {
        db.as_before_search();
        // As a new index: only FTS5's few bookkeeping pages.
        let left = stored_bytes(db, "message_search%");
        let platform = FixedPlatform::at(NOW);
        let clock = WallTime;
        let mut times = Vec::new();
        while search_pending(db) {
            let start = clock.start();
            pollster::block_on(service.alarm(db, &platform)).unwrap_or_else(|e| panic!("{e}"));
            times.push(clock.end(start));
        }
        let total: Duration = times.iter().sum();
        times.sort();
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        let longest = times.last().copied().unwrap_or_default();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "search backfill of {messages} messages, each alarm timed once: {} alarms, \
             {:.0} ms in all ({:.0} ms per 10,000), one alarm: median {:.1} ms, max {:.1} ms \
             ({:.2}% of the 30 s CPU limit of one invocation); the index before it: {left} bytes",
            times.len(),
            ms(total),
            ms(total) * 10_000.0 / messages as f64,
            ms(median),
            ms(longest),
            longest.as_secs_f64() / 30.0 * 100.0
        );
        assert!(!search_pending(db));
        assert_eq!(matches(db, RARE_WORD), 10);
    }

    /// Bytes of the tables and indexes whose names are `pattern` (LIKE), by
    /// SQLite's `dbstat` (pages, as stored).
    fn stored_bytes(db: &SqliteDb, pattern: &str) -> i64 {
        db.exec(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE ?",
            &[Value::from(pattern)],
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .rows[0][0]
            .as_i64()
            .unwrap_or_else(|| panic!("no size"))
    }

    /// The search index and the findings as a share of the mail stored.
    fn report_index_size(db: &SqliteDb, messages: usize) {
        let raw = db
            .exec("SELECT sum(size) FROM messages", &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .rows[0][0]
            .as_i64()
            .unwrap_or_else(|| panic!("no size"));
        let everything = stored_bytes(db, "%");
        let index = stored_bytes(db, "message_search%");
        let findings = stored_bytes(db, "message_findings");
        let mib = |bytes: i64| bytes as f64 / (1024.0 * 1024.0);
        let share = |bytes: i64| bytes as f64 / raw as f64 * 100.0;
        println!(
            "\nsearch index size at {messages} messages (dbstat pages; the mail: {:.1} MiB raw, \
             the whole database {:.1} MiB):",
            mib(raw),
            mib(everything)
        );
        println!(
            "  message_search (FTS5 and its shadow tables): {index} bytes, {:.1} MiB, \
             {:.1}% of the raw mail",
            mib(index),
            share(index)
        );
        println!(
            "  message_findings: {findings} bytes, {:.2} MiB, {:.1}% of the raw mail",
            mib(findings),
            share(findings)
        );
        // Where the bytes are: the index's parts, and the largest others.
        let largest = db
            .exec(
                "SELECT name, sum(pgsize), sum(payload) FROM dbstat GROUP BY name
                 ORDER BY name LIKE 'message_search%' DESC, sum(pgsize) DESC LIMIT 10",
                &[],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        for row in &largest.rows {
            let bytes = |i: usize| row[i].as_i64().unwrap_or_default();
            println!(
                "    {:<28} {:>6.2} MiB in pages ({:>6.2} MiB of payload), {:>5.1}% of the raw mail",
                row[0].as_str().unwrap_or("?"),
                mib(bytes(1)),
                mib(bytes(2)),
                share(bytes(1))
            );
        }
        println!();
    }

    /// The backfill that indexes 10,000 messages stored before search
    /// existed (each alarm indexes at most `SEARCH_BACKFILL_BATCH`), beside
    /// an alarm with nothing to do; then the size of the index, each alarm
    /// of that backfill timed, and the same for 100,000 messages once.
    fn bench_search_backfill(c: &mut Criterion) {
        const MESSAGES: usize = 10_000;
        let mut group = c.benchmark_group(format!("search backfill of {MESSAGES} messages"));
        group.sample_size(10);
        let platform = FixedPlatform::at(NOW);
        group.bench_function("floor: an alarm with nothing to do", |b| {
            let (db, service) = inbox();
            b.iter(|| {
                pollster::block_on(service.alarm(&db, &platform)).unwrap_or_else(|e| panic!("{e}"))
            })
        });
        let filled = OnceCell::new();
        group.bench_function("every message indexed", |b| {
            let (db, service) = filled.get_or_init(|| {
                let inbox = searchable(MESSAGES);
                report_index_size(&inbox.0, MESSAGES);
                inbox
            });
            b.iter_batched(
                || db.as_before_search(),
                |()| {
                    let alarms = run_search_backfill(db, service);
                    let batch = inbox_do::SEARCH_BACKFILL_BATCH as usize;
                    assert_eq!(alarms as usize, MESSAGES.div_ceil(batch));
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
        let Some((db, service)) = filled.get() else {
            return;
        };
        print_ratios(
            &format!("search backfill of {MESSAGES} messages"),
            &[
                "floor: an alarm with nothing to do",
                "every message indexed",
            ],
            &[],
        );
        report_search_backfill(db, service, MESSAGES);
        let (db, service) = searchable(100_000);
        report_search_backfill(&db, &service, 100_000);
        println!();
    }

    criterion_group!(
        benches,
        bench_ingest,
        bench_list,
        bench_backfill,
        bench_download,
        bench_export,
        bench_search,
        bench_search_backfill
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
