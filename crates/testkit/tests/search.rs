//! `GET /api/messages/search` on a seeded inbox (results as reviewed
//! snapshots), any query answering 200 or 400, paging, the index kept in
//! step with deletion, and the backfill of mail stored before search
//! existed.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use router_worker::MailVerdict;
use schema::Sql;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use testkit::{TestService, object_id};

/// Percent-encodes a query value (every byte but unreserved ones).
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn deliver(service: &TestService, raw: &str) -> u64 {
    let raw = raw.replace('\n', "\r\n");
    match service.deliver("sender@example.com", "alice@agents.test", raw.as_bytes()) {
        MailVerdict::Accepted(id) => id,
        other => panic!("{other:?}"),
    }
}

fn mail(from: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\nTo: alice@agents.test\nSubject: {subject}\nContent-Type: text/plain; charset=utf-8\n\n{body}\n"
    )
}

/// An inbox with mail in three languages, an attachment and a sent message.
fn seeded() -> (TestService, String) {
    let service = TestService::new();
    let alice = service.signup("alice");
    let _bob = service.signup("bob");
    for (from, subject, body) in [
        (
            "Billing <billing@shop.example>",
            "Your invoice for March",
            "Hello Alice, your invoice INV-2291 is attached. Total due: 120 EUR.",
        ),
        (
            "Jürgen Müller <juergen@firma.example>",
            "Bestellung 4711 versandt",
            "Ihre Bestellung wurde heute an DHL übergeben. Grüße, Jürgen Müller",
        ),
        (
            "経理部 <keiri@kaisha.example>",
            "今月の請求書",
            "今月の請求書をお送りします。ご確認ください。来週の会議で説明します。",
        ),
        (
            "GitHub <noreply@github.example>",
            "Your verification code",
            "Your verification code is 482913. It expires in 10 minutes.",
        ),
        (
            "Newsletter <news@weekly.example>",
            "Weekly digest: invoices, queues and webhooks",
            "This week: how we send an invoice reminder, and why queues matter.",
        ),
        (
            "Carol <carol@example.com>",
            "Lunch?",
            "Are you free for lunch on Friday? The invoice thing can wait.",
        ),
    ] {
        deliver(&service, &mail(from, subject, body));
    }
    deliver(
        &service,
        "From: Dana <dana@example.com>\nTo: alice@agents.test\nSubject: Slides\n\
         Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
         The slides for Friday.\n--b\nContent-Type: application/pdf; name=quarterly-report.pdf\n\
         Content-Disposition: attachment; filename=quarterly-report.pdf\n\
         Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n",
    );
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &alice,
        Some(json!({ "to": "bob@agents.test", "subject": "Re: invoice", "text": "Paid the invoice today." })),
    );
    assert_eq!(status, 201, "{sent}");
    (service, alice)
}

fn search(service: &TestService, key: &str, q: &str) -> Json {
    let (status, answer) = service.call(
        "GET",
        &format!("/api/messages/search?q={}", encode(q)),
        key,
        None,
    );
    assert_eq!(status, 200, "{q}: {answer}");
    answer
}

/// The results as (subject, snippet) pairs, for a reviewed snapshot.
fn hits(answer: &Json) -> Vec<Json> {
    answer["messages"]
        .as_array()
        .expect("a result list")
        .iter()
        .map(|m| json!({ "subject": m["subject"], "snippet": m["snippet"] }))
        .collect()
}

#[test]
fn queries_on_a_seeded_inbox_find_what_they_say() {
    let (service, alice) = seeded();
    let mut results = serde_json::Map::new();
    for q in [
        "invoice",
        "invoice -lunch",
        "invoic*",
        "\"invoice reminder\"",
        "lunch OR slides",
        "from:billing",
        "from:\"Jürgen Müller\"",
        "Muller bestellung",
        "to:bob",
        "subject:invoice",
        "請求書",
        "会議",
        "見積書",
        "quarterly",
        "has:attachment",
        "in:sent",
        "in:inbox invoice",
        "is:read",
        "-invoice",
        "after:2026-03-26 invoice",
        "before:2026-03-26",
        "thread:1",
        "482913",
    ] {
        let answer = search(&service, &alice, q);
        assert_eq!(answer["complete"], true, "{q}");
        assert_eq!(answer["nextCursor"], Json::Null, "{q}");
        results.insert(q.to_owned(), Json::Array(hits(&answer)));
    }
    insta::assert_json_snapshot!("seeded_inbox", results);
}

#[test]
fn the_subject_and_the_sender_rank_above_the_body() {
    let (service, alice) = seeded();
    let answer = search(&service, &alice, "invoice");
    let subjects: Vec<&str> = answer["messages"]
        .as_array()
        .expect("results")
        .iter()
        .map(|m| m["subject"].as_str().expect("a subject"))
        .collect();
    // The two with the word in their subject first; the two that say it
    // only in their body after (no stemming: "invoices" is another word).
    let has_word = |s: &&str| s.split([' ', ':']).any(|w| w == "invoice");
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert!(subjects[..2].iter().all(has_word), "{subjects:?}");
    assert!(!subjects[2..].iter().any(has_word), "{subjects:?}");
}

#[test]
fn pages_visit_every_match_once_and_mail_arriving_between_pages_does_not_shift_them() {
    let service = TestService::new();
    let alice = service.signup("alice");
    for n in 0..25 {
        deliver(
            &service,
            &mail(
                "A <a@example.com>",
                &format!("Report {n}"),
                "the quarterly report",
            ),
        );
    }
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/messages/search?q=report&limit=7&cursor={}", encode(c)),
            None => "/api/messages/search?q=report&limit=7".to_owned(),
        };
        let (status, page) = service.call("GET", &path, &alice, None);
        assert_eq!(status, 200, "{page}");
        for m in page["messages"].as_array().expect("results") {
            assert!(seen.insert(m["id"].as_u64().expect("an id")), "{m} twice");
        }
        pages += 1;
        if pages == 1 {
            // New mail while paging: not in this search's pages.
            deliver(&service, &mail("B <b@example.com>", "Report new", "report"));
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(pages, 4);
    // Filters only: newest first, paged by id.
    let (status, page) = service.call(
        "GET",
        "/api/messages/search?q=is%3Aunread&limit=20",
        &alice,
        None,
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["messages"][0]["subject"], "Report new");
    let next = page["nextCursor"].as_str().expect("a second page");
    let (_, rest) = service.call(
        "GET",
        &format!("/api/messages/search?q=is%3Aunread&cursor={}", encode(next)),
        &alice,
        None,
    );
    assert_eq!(rest["messages"].as_array().map(Vec::len), Some(6));
    for bad in ["x", "1", "1.", ".1", "-1.5", "99999999999999999999.1"] {
        let (status, answer) = service.call(
            "GET",
            &format!("/api/messages/search?q=report&cursor={}", encode(bad)),
            &alice,
            None,
        );
        assert_eq!(status, 400, "{bad}: {answer}");
    }
}

#[test]
fn bad_queries_say_what_is_wrong() {
    let (service, alice) = seeded();
    for (q, says) in [
        ("\"open", "not closed"),
        ("", "empty"),
        ("   ", "empty"),
        ("*", "nothing to search"),
        ("a OR", "OR"),
        ("is:starred", "is:"),
        ("before:yesterday", "before:"),
        ("thread:0", "thread:"),
    ] {
        let (status, answer) = service.call(
            "GET",
            &format!("/api/messages/search?q={}", encode(q)),
            &alice,
            None,
        );
        assert_eq!(status, 400, "{q:?}: {answer}");
        assert_eq!(answer["code"], "invalid_request");
        let error = answer["error"].as_str().expect("a sentence");
        assert!(error.contains(says), "{q:?}: {error}");
    }
    let many = vec!["w"; 10_000].join(" ");
    let (status, answer) = service.call(
        "GET",
        &format!("/api/messages/search?q={}", encode(&many)),
        &alice,
        None,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("1024")));
    let (status, answer) = service.call("GET", "/api/messages/search", &alice, None);
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().is_some_and(|e| e.contains("`q`")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any query, of any bytes, answers 200 or a 400 that says why.
    #[test]
    fn any_query_answers_200_or_400(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let (service, alice) = SEEDED.with(|s| s.clone());
        let q: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
        let (status, answer) = service.call("GET", &format!("/api/messages/search?q={q}"), &alice, None);
        prop_assert!(status == 200 || status == 400, "{status}: {answer}");
        if status == 400 {
            prop_assert_eq!(&answer["code"], "invalid_request");
        } else {
            prop_assert!(answer["messages"].is_array());
        }
    }

    #[test]
    fn any_query_text_answers_200_or_400(q in "[a-z\"*()^:{}\\-+ OR NEAR]{0,40}") {
        let (service, alice) = SEEDED.with(|s| s.clone());
        let (status, answer) = service.call("GET", &format!("/api/messages/search?q={}", encode(&q)), &alice, None);
        prop_assert!(status == 200 || status == 400, "{q:?} {status}: {answer}");
    }
}

thread_local! {
    static SEEDED: (std::rc::Rc<TestService>, String) = {
        let (service, key) = seeded();
        (std::rc::Rc::new(service), key)
    };
}

#[test]
fn a_deleted_thread_is_no_longer_found() {
    let (service, alice) = seeded();
    let answer = search(&service, &alice, "lunch");
    let thread = answer["messages"][0]["threadId"]
        .as_u64()
        .expect("a thread");
    let (status, _) = service.call("DELETE", &format!("/api/threads/{thread}"), &alice, None);
    assert_eq!(status, 204);
    assert_eq!(search(&service, &alice, "lunch")["messages"], json!([]));
    let rows = service.objects().with_db_of("alice", |db| {
        db.exec(
            "SELECT count(*) FROM message_search WHERE rowid NOT IN (SELECT id FROM messages)",
            &[],
        )
        .expect("counting")
        .rows[0][0]
            .as_i64()
            .expect("a count")
    });
    assert_eq!(rows, 0, "no index row outlives its message");
}

/// Every id `q` finds, through every page.
fn all_ids(service: &TestService, key: &str, q: &str) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = service.call(
            "GET",
            &format!("/api/messages/search?q={}&limit=100{cursor}", encode(q)),
            key,
            None,
        );
        assert_eq!(status, 200, "{page}");
        for m in page["messages"].as_array().expect("results") {
            assert!(ids.insert(m["id"].as_u64().expect("an id")));
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={}", encode(next)),
            None => return ids,
        }
    }
}

fn unindexed(service: &TestService) -> i64 {
    service.objects().with_db_of("alice", |db| {
        db.exec(
            "SELECT count(*) FROM messages WHERE search_indexed = 0",
            &[],
        )
        .expect("counting")
        .rows[0][0]
            .as_i64()
            .expect("a count")
    })
}

#[test]
fn mail_stored_before_search_is_indexed_by_the_alarm_in_bounded_batches() {
    let service = TestService::new();
    let alice = service.signup("alice");
    let batch = inbox_do::SEARCH_BACKFILL_BATCH as usize;
    let total = batch * 2 + 50;
    for n in 0..total {
        let body = if n % 50 == 0 {
            format!("Your verification code is {}.", 100_000 + n)
        } else {
            "the weekly report".to_owned()
        };
        deliver(
            &service,
            &mail("A <a@example.com>", &format!("Mail {n}"), &body),
        );
    }
    let fresh = all_ids(&service, &alice, "report");
    assert_eq!(fresh.len(), total - total.div_ceil(50));
    service
        .objects()
        .with_db_of("alice", |db| db.as_before_search());
    service.objects().restart();
    // Before the backfill: the answer says it is incomplete, and old mail
    // still shows its codes (found on read).
    let answer = search(&service, &alice, "report");
    assert_eq!(answer["complete"], false, "{answer}");
    assert_eq!(answer["messages"], json!([]));
    let (status, old) = service.call("GET", "/api/messages/1", &alice, None);
    assert_eq!(status, 200);
    assert_eq!(old["codes"][0]["value"], "100000");
    // The first request of the wake set the alarm; each alarm indexes one
    // bounded batch, oldest first, and sets the next.
    let id = object_id("alice");
    let mut alarms = 0;
    while unindexed(&service) > 0 {
        let before = unindexed(&service);
        assert!(
            service.objects().alarm_of(&id).is_some(),
            "an alarm is set while mail is left"
        );
        assert!(service.objects().run_alarm_of(&id), "the alarm was due");
        let done = before - unindexed(&service);
        assert!(done > 0 && done <= batch as i64, "{done} in one alarm");
        alarms += 1;
    }
    assert_eq!(alarms, total.div_ceil(batch));
    assert_eq!(search(&service, &alice, "report")["complete"], true);
    assert_eq!(
        all_ids(&service, &alice, "report"),
        fresh,
        "all found again"
    );
    let (_, old) = service.call("GET", "/api/messages/1", &alice, None);
    assert_eq!(old["codes"][0]["value"], "100000", "stored by the backfill");
    let found = search(&service, &alice, "100050");
    assert_eq!(found["messages"][0]["subject"], "Mail 50");
    assert_eq!(found["messages"].as_array().map(Vec::len), Some(1));
}

#[test]
fn date_filters_split_mail_at_midnight_utc() {
    let service = TestService::new();
    let alice = service.signup("alice");
    // The fake clock starts at 2026-03-26T12:00:00Z.
    deliver(
        &service,
        &mail("A <a@example.com>", "On the 26th", "report"),
    );
    service.clock.advance(12 * 3_600_000); // 2026-03-27T00:00:00Z
    deliver(
        &service,
        &mail("A <a@example.com>", "At midnight", "report"),
    );
    service.clock.advance(36 * 3_600_000); // 2026-03-28T12:00:00Z
    deliver(
        &service,
        &mail("A <a@example.com>", "On the 28th", "report"),
    );
    let subjects = |q: &str| -> Vec<String> {
        let mut found: Vec<String> = search(&service, &alice, q)["messages"]
            .as_array()
            .expect("results")
            .iter()
            .map(|m| m["subject"].as_str().expect("a subject").to_owned())
            .collect();
        found.sort();
        found
    };
    assert_eq!(subjects("before:2026-03-27"), ["On the 26th"]);
    assert_eq!(subjects("after:2026-03-27"), ["At midnight", "On the 28th"]);
    assert_eq!(
        subjects("after:2026-03-27 before:2026-03-28 report"),
        ["At midnight"]
    );
    assert_eq!(subjects("after:2026-03-29").len(), 0);
    assert_eq!(subjects("before:2026-03-26").len(), 0);
}
