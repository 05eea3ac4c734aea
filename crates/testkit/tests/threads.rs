//! Conversations through the router and the real InboxDO: which thread a
//! message joins (replies, out-of-order arrival and the merge, two threads
//! named at once, replies to our own outbound mail, malformed ids), the
//! thread API (listing, paging, unread, one thread, deleting one), and the
//! upgrade of an inbox whose mail was stored before threads existed.
#![cfg(not(target_arch = "wasm32"))]

use schema::{Sql, Value};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use testkit::{SqliteDb, TestService};

const INBOX: &str = "alice@agents.test";

/// A message from `from` with `id` as its Message-ID and the given
/// In-Reply-To and References headers (empty: none).
fn mail(from: &str, id: &str, in_reply_to: &str, references: &str, subject: &str) -> Vec<u8> {
    let mut raw = format!("From: {from}\r\nTo: {INBOX}\r\nSubject: {subject}\r\n");
    if !id.is_empty() {
        raw.push_str(&format!("Message-ID: <{id}>\r\n"));
    }
    if !in_reply_to.is_empty() {
        raw.push_str(&format!("In-Reply-To: {in_reply_to}\r\n"));
    }
    if !references.is_empty() {
        raw.push_str(&format!("References: {references}\r\n"));
    }
    raw.push_str(&format!("\r\nThis is {id}.\r\n"));
    raw.into_bytes()
}

fn deliver(service: &TestService, raw: &[u8]) -> u64 {
    match service.deliver("sender@example.com", INBOX, raw) {
        router_worker::MailVerdict::Accepted(id) => id,
        other => panic!("the message was not accepted: {other:?}"),
    }
}

fn thread_of(service: &TestService, key: &str, message: u64) -> u64 {
    let (status, body) = service.call("GET", &format!("/api/messages/{message}"), key, None);
    assert_eq!(status, 200, "{body}");
    body["threadId"].as_u64().expect("a threadId")
}

fn thread(service: &TestService, key: &str, id: u64) -> Json {
    let (status, body) = service.call("GET", &format!("/api/threads/{id}"), key, None);
    assert_eq!(status, 200, "{body}");
    body
}

/// The message ids of thread `id`, in the order the API gives them.
fn messages_of(service: &TestService, key: &str, id: u64) -> Vec<u64> {
    thread(service, key, id)["messages"]
        .as_array()
        .expect("a thread's messages")
        .iter()
        .map(|m| m["id"].as_u64().expect("a message id"))
        .collect()
}

fn threads(service: &TestService, key: &str, query: &str) -> Json {
    let (status, body) = service.call("GET", &format!("/api/threads{query}"), key, None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Every thread of the inbox, as the sets of its message ids (read through
/// the API, paging the list).
fn groups(service: &TestService, key: &str) -> BTreeSet<Vec<u64>> {
    let mut out = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let page = threads(service, key, &format!("?limit=100{cursor}"));
        for t in page["threads"].as_array().expect("a thread list") {
            let id = t["id"].as_u64().expect("a thread id");
            let mut ids = messages_of(service, key, id);
            assert_eq!(t["messageCount"].as_u64(), Some(ids.len() as u64));
            ids.sort_unstable();
            out.insert(ids);
        }
        match page["nextCursor"].as_u64() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return out,
        }
    }
}

#[test]
fn a_reply_joins_the_thread_of_what_it_answers() {
    let service = TestService::new();
    let key = service.signup("alice");
    let original = deliver(&service, &mail("bob@example.com", "o@x", "", "", "Plans"));
    let reply = deliver(
        &service,
        &mail("carol@example.com", "r@x", "<o@x>", "<o@x>", "Re: Plans"),
    );
    let other = deliver(&service, &mail("dan@example.com", "u@x", "", "", "Other"));
    let t = thread_of(&service, &key, original);
    assert_eq!(thread_of(&service, &key, reply), t);
    assert_ne!(thread_of(&service, &key, other), t);

    let body = thread(&service, &key, t);
    assert_eq!(body["subject"], "Plans");
    assert_eq!(body["messageCount"], 2);
    assert_eq!(body["unreadCount"], 2);
    assert_eq!(body["lastMessageId"].as_u64(), Some(reply));
    assert_eq!(
        body["participants"],
        json!(["bob@example.com", INBOX, "carol@example.com"])
    );
    assert_eq!(messages_of(&service, &key, t), vec![original, reply]);
    assert_eq!(body["messages"][1]["extractedText"], "This is r@x.");
    assert_eq!(body["messages"][1]["preview"], "This is r@x.");
    // Latest activity first: the other thread's message is newer.
    let list = threads(&service, &key, "");
    let order: Vec<u64> = list["threads"]
        .as_array()
        .expect("a thread list")
        .iter()
        .map(|t| t["lastMessageId"].as_u64().expect("a lastMessageId"))
        .collect();
    assert_eq!(order, vec![other, reply]);
    assert_eq!(list["nextCursor"], Json::Null);
    // The contract's shapes, reviewed.
    insta::assert_json_snapshot!("thread_list", list);
    insta::assert_json_snapshot!("thread", body);
}

#[test]
fn replies_that_arrive_before_their_original_end_in_one_thread() {
    let service = TestService::new();
    let key = service.signup("alice");
    // Two replies to a message not yet stored: each starts a thread.
    let first = deliver(
        &service,
        &mail("b@example.com", "r1@x", "<o@x>", "<o@x>", "Re: Q"),
    );
    let second = deliver(
        &service,
        &mail("c@example.com", "r2@x", "<o@x>", "<o@x>", "Re: Q"),
    );
    // A reply to the first reply, naming both.
    let third = deliver(
        &service,
        &mail("d@example.com", "r3@x", "<r1@x>", "<o@x> <r1@x>", "Re: Q"),
    );
    assert_eq!(
        thread_of(&service, &key, third),
        thread_of(&service, &key, first)
    );
    assert_ne!(
        thread_of(&service, &key, first),
        thread_of(&service, &key, second)
    );
    // The original comes last: its replies' threads become one.
    let original = deliver(&service, &mail("a@example.com", "o@x", "", "", "Q"));
    let t = thread_of(&service, &key, original);
    for message in [first, second, third] {
        assert_eq!(thread_of(&service, &key, message), t, "message {message}");
    }
    assert_eq!(
        groups(&service, &key),
        BTreeSet::from([vec![first, second, third, original]])
    );
    let body = thread(&service, &key, t);
    assert_eq!(body["messageCount"], 4);
    // The conversation is named by its original, not by the first reply.
    assert_eq!(body["subject"], "Q");
    assert_eq!(body["lastMessageId"].as_u64(), Some(original));
    let participants = body["participants"].as_array().expect("participants");
    for address in [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ] {
        assert!(participants.contains(&json!(address)), "{address}: {body}");
    }
}

#[test]
fn a_message_naming_two_threads_joins_the_newest() {
    let service = TestService::new();
    let key = service.signup("alice");
    let a = deliver(&service, &mail("b@example.com", "a@x", "", "", "A"));
    let b = deliver(&service, &mail("b@example.com", "b@x", "", "", "B"));
    let both = deliver(
        &service,
        &mail("c@example.com", "m@x", "<a@x>", "<a@x> <b@x>", "Re: A"),
    );
    assert_eq!(
        thread_of(&service, &key, both),
        thread_of(&service, &key, b)
    );
    assert_eq!(
        groups(&service, &key),
        BTreeSet::from([vec![a], vec![b, both]])
    );
}

#[test]
fn a_reply_to_our_own_outbound_mail_joins_its_thread() {
    let service = TestService::new();
    let key = service.signup("alice");
    let bob = service.signup("bob");
    let (status, sent) = service.call(
        "POST",
        "/api/messages",
        &key,
        Some(json!({"to": "bob@agents.test", "subject": "Lunch?", "text": "Noon?"})),
    );
    assert_eq!(status, 201, "{sent}");
    let sent_id = sent["id"].as_u64().expect("an id");
    let (_, detail) = service.call("GET", &format!("/api/messages/{sent_id}"), &key, None);
    let message_id = detail["messageId"]
        .as_str()
        .expect("a Message-ID")
        .to_owned();
    // Bob's copy is in a thread of its own inbox.
    let at_bob = service.messages(&bob);
    assert_eq!(at_bob.len(), 1);
    assert!(at_bob[0]["threadId"].as_u64().is_some());

    let answer = deliver(
        &service,
        format!(
            "From: bob@agents.test\r\nTo: {INBOX}\r\nSubject: Re: Lunch?\r\nMessage-ID: <b1@agents.test>\r\nIn-Reply-To: <{message_id}>\r\nReferences: <{message_id}>\r\n\r\nYes.\r\n"
        )
        .as_bytes(),
    );
    let t = thread_of(&service, &key, sent_id);
    assert_eq!(thread_of(&service, &key, answer), t);
    let body = thread(&service, &key, t);
    assert_eq!(body["subject"], "Lunch?");
    // Our own message is not unread; bob's answer is.
    assert_eq!(body["unreadCount"], 1);
    assert_eq!(messages_of(&service, &key, t), vec![sent_id, answer]);
}

#[test]
fn malformed_or_missing_ids_never_fail_ingest() {
    let service = TestService::new();
    let key = service.signup("alice");
    let huge_references: String = (0..5_000).map(|i| format!("<r{i}@x> ")).collect();
    let cases: Vec<Vec<u8>> = vec![
        b"From: a@example.com\r\nSubject: no ids\r\n\r\nx\r\n".to_vec(),
        b"From: a@example.com\r\nMessage-ID: <<>>\r\nIn-Reply-To: a b c\r\n\r\nx\r\n".to_vec(),
        b"From: a@example.com\r\nMessage-ID:\r\nReferences: <\r\n\r\nx\r\n".to_vec(),
        format!("From: a@example.com\r\nMessage-ID: <big@x>\r\nReferences: {huge_references}\r\n\r\nx\r\n")
            .into_bytes(),
        b"Message-ID: <\xff\xfe@x>\r\nIn-Reply-To: <\xff\xfe@x>\r\n\r\n".to_vec(),
        b"\x00\x01garbage".to_vec(),
    ];
    for raw in &cases {
        let id = deliver(&service, raw);
        assert!(thread_of(&service, &key, id) > 0);
    }
    assert_eq!(groups(&service, &key).len(), cases.len());
    // A reply naming the 5,000-reference message's root still joins it.
    let reply = deliver(&service, &mail("b@example.com", "z@x", "<big@x>", "", "Re"));
    assert_eq!(groups(&service, &key).len(), cases.len());
    assert_eq!(
        thread_of(&service, &key, reply),
        thread_of(&service, &key, 4)
    );
}

#[test]
fn marks_move_the_unread_count_and_the_filter() {
    let service = TestService::new();
    let key = service.signup("alice");
    let a = deliver(&service, &mail("b@example.com", "a@x", "", "", "A"));
    let a2 = deliver(
        &service,
        &mail("b@example.com", "a2@x", "<a@x>", "", "Re: A"),
    );
    let b = deliver(&service, &mail("b@example.com", "b@x", "", "", "B"));
    let t = thread_of(&service, &key, a);
    for message in [a, a2] {
        let (status, _) = service.call(
            "PATCH",
            &format!("/api/messages/{message}"),
            &key,
            Some(json!({"read": true})),
        );
        assert_eq!(status, 200);
    }
    assert_eq!(thread(&service, &key, t)["unreadCount"], 0);
    let unread = threads(&service, &key, "?unread=true");
    let listed: Vec<u64> = unread["threads"]
        .as_array()
        .expect("a thread list")
        .iter()
        .map(|t| t["lastMessageId"].as_u64().expect("an id"))
        .collect();
    assert_eq!(listed, vec![b]);
    service.call(
        "PATCH",
        &format!("/api/messages/{a}"),
        &key,
        Some(json!({"read": false})),
    );
    assert_eq!(thread(&service, &key, t)["unreadCount"], 1);
    assert_eq!(
        threads(&service, &key, "?unread=true")["threads"]
            .as_array()
            .expect("a thread list")
            .len(),
        2
    );
}

#[test]
fn threads_page_without_gaps_or_duplicates() {
    let service = TestService::new();
    let key = service.signup("alice");
    let mut expected = BTreeSet::new();
    for n in 0..25 {
        let first = deliver(
            &service,
            &mail("b@example.com", &format!("t{n}@x"), "", "", "T"),
        );
        let second = deliver(
            &service,
            &mail(
                "b@example.com",
                &format!("t{n}r@x"),
                &format!("<t{n}@x>"),
                "",
                "Re: T",
            ),
        );
        expected.insert(vec![first, second]);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = threads(&service, &key, &format!("?limit=10{cursor}"));
        pages += 1;
        for t in page["threads"].as_array().expect("a thread list") {
            seen.push(t["lastMessageId"].as_u64().expect("an id"));
        }
        match page["nextCursor"].as_u64() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "latest activity first");
    assert_eq!(seen.len(), 25);
    assert_eq!(groups(&service, &key), expected);
}

#[test]
fn deleting_a_thread_deletes_its_messages_and_nothing_else() {
    let service = TestService::new();
    let key = service.signup("alice");
    let a = deliver(&service, &mail("b@example.com", "a@x", "", "", "A"));
    let a2 = deliver(
        &service,
        &mail("b@example.com", "a2@x", "<a@x>", "", "Re: A"),
    );
    let b = deliver(&service, &mail("b@example.com", "b@x", "", "", "B"));
    let t = thread_of(&service, &key, a);
    // The deletion must not rest on the database enforcing foreign keys
    // (testkit's SQLite does, as DO SQLite is meant to).
    service.objects().with_db_of("alice", |db| {
        db.exec("PRAGMA foreign_keys = OFF", &[])
            .unwrap_or_else(|e| panic!("{e}"));
    });
    let (status, body) = service.call("DELETE", &format!("/api/threads/{t}"), &key, None);
    assert_eq!(status, 204, "{body}");
    for message in [a, a2] {
        for path in [
            format!("/api/messages/{message}"),
            format!("/api/messages/{message}/raw"),
        ] {
            assert_eq!(service.call("GET", &path, &key, None).0, 404, "{path}");
        }
    }
    assert_eq!(
        service
            .call("GET", &format!("/api/threads/{t}"), &key, None)
            .0,
        404
    );
    assert_eq!(
        service
            .call("DELETE", &format!("/api/threads/{t}"), &key, None)
            .0,
        404
    );
    let (_, me) = service.call("GET", "/api/me", &key, None);
    assert_eq!(me["messageCount"], 1);
    assert_eq!(groups(&service, &key), BTreeSet::from([vec![b]]));
    // Nothing of the deleted messages is left in storage, and the inbox's
    // byte count is that of what remains.
    service.objects().with_db_of("alice", |db| {
        let count = |query: &str| {
            db.exec(query, &[]).unwrap_or_else(|e| panic!("{e}")).rows[0][0]
                .as_i64()
                .expect("a count")
        };
        assert_eq!(
            count("SELECT count(*) FROM message_parts WHERE message_id != 3"),
            0
        );
        assert_eq!(count("SELECT count(*) FROM message_refs"), 0);
        assert_eq!(
            count("SELECT count(*) FROM jobs WHERE message_id NOT IN (SELECT id FROM messages)"),
            0
        );
        assert_eq!(
            count("SELECT stored_bytes FROM inbox"),
            count("SELECT sum(size) FROM messages")
        );
    });
    // A reply to the deleted thread now starts a new one.
    let late = deliver(
        &service,
        &mail("b@example.com", "a3@x", "<a2@x>", "<a@x> <a2@x>", "Re: A"),
    );
    assert_ne!(thread_of(&service, &key, late), t);
}

#[test]
fn thread_ids_and_queries_are_checked() {
    let service = TestService::new();
    let key = service.signup("alice");
    let other = service.signup("bob");
    let mine = deliver(&service, &mail("b@example.com", "a@x", "", "", "A"));
    let t = thread_of(&service, &key, mine);
    let mut answers = serde_json::Map::new();
    for (method, path, who) in [
        ("GET", "/api/threads/0".to_owned(), &key),
        ("GET", "/api/threads/abc".to_owned(), &key),
        ("GET", "/api/threads/99".to_owned(), &key),
        ("DELETE", "/api/threads/99".to_owned(), &key),
        ("PATCH", format!("/api/threads/{t}"), &key),
        ("POST", "/api/threads".to_owned(), &key),
        (
            "GET",
            "/api/threads?since=2026-01-01T00:00:00Z".to_owned(),
            &key,
        ),
        ("GET", "/api/threads?limit=0".to_owned(), &key),
        ("GET", "/api/threads?limit=5&limit=6".to_owned(), &key),
        ("GET", "/api/threads?unread=yes".to_owned(), &key),
        // Another inbox's key never reaches this thread.
        ("GET", format!("/api/threads/{t}"), &other),
        ("DELETE", format!("/api/threads/{t}"), &other),
    ] {
        let (status, body) = service.call(method, &path, who, None);
        let path = path.replace(&format!("/{t}"), "/:mine");
        let who = if who == &key {
            "owner"
        } else {
            "another inbox"
        };
        answers.insert(
            format!("{method} {path} ({who})"),
            json!({"status": status, "body": body}),
        );
    }
    insta::assert_json_snapshot!(answers);
    // The other inbox's delete changed nothing here.
    assert_eq!(messages_of(&service, &key, t), vec![mine]);
}

#[test]
fn the_thread_queries_never_scan_the_whole_table() {
    let db = SqliteDb::new();
    schema::migrate(&db, schema::MIGRATIONS, 0).unwrap_or_else(|e| panic!("{e}"));
    let mut plans = Vec::new();
    let mut show = |query: String, params: Vec<Value>| {
        let steps = db.plan_without_scan(&query, &params);
        plans.push(json!({ "query": query, "plan": steps }));
    };
    for (cursor, unread) in [
        (None, false),
        (Some(50), false),
        (None, true),
        (Some(50), true),
    ] {
        let (query, params) = inbox_do::thread_list_query(20, cursor, unread);
        show(query, params);
    }
    // Finding a thread by Message-ID, the replies naming an id, a thread's
    // messages, and the unthreaded ones.
    for query in [
        "SELECT thread_id FROM messages WHERE message_id_header = 'a@x' AND thread_id IS NOT NULL AND id != 1 ORDER BY id DESC LIMIT 1",
        "SELECT DISTINCT m.thread_id FROM message_refs r JOIN messages m ON m.id = r.message_id WHERE r.ref = 'a@x' AND m.thread_id IS NOT NULL AND m.id != 1",
        "SELECT id FROM messages WHERE thread_id = 1 ORDER BY id DESC LIMIT 200",
        "SELECT 1 FROM messages WHERE thread_id IS NULL LIMIT 1",
        "SELECT id, subject, from_addr, to_addr FROM messages WHERE thread_id IS NULL ORDER BY id LIMIT 500",
    ] {
        show(query.to_owned(), Vec::new());
    }
    insta::assert_json_snapshot!(plans);
}

#[test]
fn mail_stored_before_threads_is_threaded_by_the_backfill_in_bounded_batches() {
    let service = TestService::new();
    let key = service.signup("alice");
    // 1,200 messages: chains of replies, some delivered before their
    // original, and singletons.
    let mut n = 0;
    for chain in 0..300 {
        let root = format!("c{chain}@x");
        let order: Vec<usize> = if chain % 3 == 0 {
            vec![2, 0, 1, 3]
        } else {
            vec![0, 1, 2, 3]
        };
        for step in order {
            let id = format!("c{chain}-{step}@x");
            let raw = match step {
                0 => mail("b@example.com", &root, "", "", "Chain"),
                3 => mail("b@example.com", &id, "", "", "Alone"),
                _ => {
                    let parent = if step == 1 {
                        root.clone()
                    } else {
                        format!("c{chain}-1@x")
                    };
                    mail(
                        "c@example.com",
                        &id,
                        &format!("<{parent}>"),
                        &format!("<{root}> <{parent}>"),
                        "Re: Chain",
                    )
                }
            };
            deliver(&service, &raw);
            n += 1;
        }
    }
    assert_eq!(n, 1_200);
    let fresh = groups(&service, &key);
    assert_eq!(fresh.len(), 600);

    service
        .objects()
        .with_db_of("alice", SqliteDb::as_before_threads);
    service.objects().restart();
    // The first request after the wake sets the alarm; each alarm threads
    // one batch and comes back while mail is left.
    let (_, me) = service.call("GET", "/api/me", &key, None);
    assert_eq!(me["messageCount"], 1_200);
    let (_, listed) = service.call("GET", "/api/messages?limit=1", &key, None);
    assert_eq!(listed["messages"][0]["threadId"], Json::Null);
    let alarms = service.run_alarms();
    assert_eq!(
        alarms,
        1_200_usize.div_ceil(inbox_do::BACKFILL_BATCH as usize)
    );
    assert_eq!(groups(&service, &key), fresh);
    let (_, listed) = service.call("GET", "/api/messages?limit=1", &key, None);
    assert!(listed["messages"][0]["threadId"].as_u64().is_some());
    assert_eq!(listed["messages"][0]["preview"], "This is c299-3@x.");
    // Nothing is left to do: no further alarm.
    assert_eq!(service.run_alarms(), 0);
}

#[test]
fn a_thread_answer_stays_bounded_and_says_what_it_cut() {
    let service = TestService::new();
    let key = service.signup("alice");
    // 100,000 characters of new text, two bytes each in UTF-8.
    let long = "é".repeat(100_000);
    let raw = format!(
        "From: b@example.com\r\nTo: {INBOX}\r\nSubject: long\r\nMessage-ID: <long@x>\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{long}\r\n"
    );
    let id = deliver(&service, raw.as_bytes());
    let short = deliver(
        &service,
        &mail("b@example.com", "s@x", "<long@x>", "", "Re: long"),
    );
    let t = thread_of(&service, &key, id);
    let body = thread(&service, &key, t);
    let first = &body["messages"][0];
    let text = first["extractedText"].as_str().expect("an extractedText");
    assert!(text.len() <= protocol::limits::MAX_THREAD_TEXT_BYTES);
    assert!(text.len() > protocol::limits::MAX_THREAD_TEXT_BYTES - 4);
    assert!(long.starts_with(text));
    assert_eq!(first["extractedTextTruncated"], true);
    // The short one is whole, and says nothing.
    assert_eq!(body["messages"][1]["id"].as_u64(), Some(short));
    assert!(body["messages"][1].get("extractedTextTruncated").is_none());
    // The message itself has all of it.
    let (_, detail) = service.call("GET", &format!("/api/messages/{id}"), &key, None);
    assert_eq!(detail["extractedText"].as_str(), Some(long.as_str()));
}

/// Every thread's counters, as listed, against a recount of its messages
/// read through the API.
fn assert_counters_match_messages(service: &TestService, key: &str) {
    let list = threads(service, key, "?limit=100");
    for t in list["threads"].as_array().expect("a thread list") {
        let id = t["id"].as_u64().expect("a thread id");
        let messages: Vec<Json> = thread(service, key, id)["messages"]
            .as_array()
            .expect("messages")
            .clone();
        let unread = messages.iter().filter(|m| m["read"] == false).count();
        let last = messages.iter().filter_map(|m| m["id"].as_u64()).max();
        assert_eq!(
            t["messageCount"].as_u64(),
            Some(messages.len() as u64),
            "{t}"
        );
        assert_eq!(t["unreadCount"].as_u64(), Some(unread as u64), "{t}");
        assert_eq!(t["lastMessageId"].as_u64(), last, "{t}");
        let newest = messages
            .iter()
            .find(|m| m["id"].as_u64() == last)
            .expect("newest");
        assert_eq!(t["preview"], newest["preview"], "{t}");
    }
}

#[test]
fn thread_counters_kept_by_increments_always_equal_a_recount() {
    let service = TestService::new();
    let key = service.signup("alice");
    let mut ids = Vec::new();
    // Interleaved conversations, replies before originals, marks back and
    // forth (twice the same, too), checked after every step.
    let script: Vec<(&str, &str, &str)> = vec![
        ("a1@x", "", ""),
        ("b2@x", "<b1@x>", "<b1@x>"),
        ("a2@x", "<a1@x>", "<a1@x>"),
        ("b3@x", "<b2@x>", "<b1@x> <b2@x>"),
        ("c1@x", "", ""),
        ("b1@x", "", ""),
        ("a3@x", "<a2@x>", "<a1@x> <a2@x>"),
        ("c2@x", "<c1@x>", ""),
    ];
    for (n, (id, parent, references)) in script.into_iter().enumerate() {
        ids.push(deliver(
            &service,
            &mail("p@example.com", id, parent, references, "S"),
        ));
        let target = ids[n * 7 % ids.len()];
        for read in [true, true, false, true] {
            if (n + usize::from(read)) % 3 == 0 {
                let (status, _) = service.call(
                    "PATCH",
                    &format!("/api/messages/{target}"),
                    &key,
                    Some(json!({"read": read})),
                );
                assert_eq!(status, 200);
            }
        }
        assert_counters_match_messages(&service, &key);
    }
    assert_eq!(groups(&service, &key).len(), 3);
}

#[test]
fn a_thread_with_an_unreadable_detail_still_answers() {
    let service = TestService::new();
    let key = service.signup("alice");
    let a = deliver(&service, &mail("b@example.com", "a@x", "", "", "A"));
    let b = deliver(
        &service,
        &mail("b@example.com", "b@x", "<a@x>", "", "Re: A"),
    );
    service.objects().with_db_of("alice", |db| {
        db.exec(
            "UPDATE message_parts SET data = x'7b6e6f' WHERE message_id = ? AND kind = 'detail'",
            &[Value::Integer(a as i64)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    });
    let t = thread_of(&service, &key, b);
    let body = thread(&service, &key, t);
    assert_eq!(body["messages"][0]["id"].as_u64(), Some(a));
    assert_eq!(body["messages"][0]["extractedText"], Json::Null);
    assert_eq!(body["messages"][1]["extractedText"], "This is b@x.");
}
