//! Receiving and reading mail, end to end through the router's email path and
//! the public API, over testkit (every router → DO request in its wire form).
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use router_worker::{HttpRequest, MailVerdict};
use serde_json::{Value as Json, json};
use testkit::{SqliteDb, TestService};

fn mail(n: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.com>\r\nTo: alice@agents.test\r\n\
         Subject: {subject}\r\nMessage-ID: <{n}.{subject}@example.com>\r\n\
         Date: Thu, 26 Mar 2026 12:00:00 +0000\r\n\r\nBody {n}\r\n"
    )
    .into_bytes()
}

fn accepted(verdict: MailVerdict) -> u64 {
    match verdict {
        MailVerdict::Accepted(id) => id,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[test]
fn a_delivered_message_is_listed_read_and_marked() {
    let service = TestService::new();
    let key = service.signup("alice");
    service.clock.advance(250);
    let raw = b"From: \"Bob Example\" <bob@example.com>\r\nTo: alice@agents.test, carol@example.org\r\n\
Cc: dave@example.net\r\nReply-To: replies@example.com\r\nSubject: =?UTF-8?B?SGVsbG8g8J+RiyB3b3JsZA==?=\r\n\
Message-ID: <m1@example.com>\r\nIn-Reply-To: <m0@example.com>\r\nReferences: <a@example.com> <m0@example.com>\r\n\
Date: Thu, 26 Mar 2026 11:59:00 +0000\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Hi Alice\r\n--b1\r\nContent-Type: text/csv; name=\"rates.csv\"\r\nContent-Disposition: attachment; filename=\"rates.csv\"\r\n\r\n\
a,b\r\n1,2\r\n--b1--\r\n";
    let id = accepted(service.deliver("bounce@example.com", "Alice+News@agents.test", raw));
    assert_eq!(id, 1);

    let (status, list) = service.call("GET", "/api/messages", &key, None);
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("list_one", list);
    let (status, message) = service.call("GET", "/api/messages/1", &key, None);
    assert_eq!(status, 200);
    insta::assert_json_snapshot!("get_one", message);

    // Reading does not mark read; PATCH does, and answers the summary.
    assert_eq!(message["read"], false);
    let (status, summary) = service.call(
        "PATCH",
        "/api/messages/1",
        &key,
        Some(json!({"read": true})),
    );
    assert_eq!((status, &summary["read"]), (200, &json!(true)));
    assert_eq!(
        service
            .call("GET", "/api/messages?unread=true", &key, None)
            .1["messages"],
        json!([])
    );
    let (_, summary) = service.call(
        "PATCH",
        "/api/messages/1",
        &key,
        Some(json!({"read": false})),
    );
    assert_eq!(summary["read"], false);

    let reply = service.request(
        &HttpRequest::new("GET", "/api/messages/1/raw")
            .header("authorization", &format!("Bearer {key}")),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("message/rfc822"));
    assert_eq!(reply.body, raw.to_vec());
    assert_eq!(
        service.call("GET", "/api/me", &key, None).1["messageCount"],
        1
    );
}

#[test]
fn recipients_are_routed_by_handle_and_domain() {
    let service = TestService::new();
    let _key = service.signup("alice");
    let objects_before = service.objects().object_ids().len();
    let cases = [
        ("alice@agents.test", true),
        ("ALICE@Agents.Test", true),
        ("alice+tag+more@agents.test", true),
        ("<alice@agents.test>", true),
        ("alice@example.com", false),
        ("alice@sub.agents.test", false),
        ("bob@agents.test", false),
        ("postmaster@agents.test", false),
        ("-x@agents.test", false),
        ("no-at-sign", false),
        ("@agents.test", false),
    ];
    for (n, (recipient, ok)) in cases.iter().enumerate() {
        let verdict = service.deliver("s@example.com", recipient, &mail(n, "routing"));
        match (ok, &verdict) {
            (true, MailVerdict::Accepted(_)) | (false, MailVerdict::Reject(_)) => {}
            _ => panic!("{recipient}: {verdict:?}"),
        }
    }
    // Unknown handles and foreign domains were refused without waking (or
    // creating) any inbox object.
    assert_eq!(service.objects().object_ids().len(), objects_before);
}

#[test]
fn the_tag_is_kept_and_rejections_say_why() {
    let service = TestService::new();
    let key = service.signup("alice");
    accepted(service.deliver(
        "s@example.com",
        "alice+Receipts@agents.test",
        &mail(1, "tag"),
    ));
    let (_, message) = service.call("GET", "/api/messages/1", &key, None);
    assert_eq!(message["tag"], "Receipts");
    assert_eq!(message["to"], "alice+receipts@agents.test");
    let reasons: Vec<String> = ["bob@agents.test", "alice@example.com"]
        .iter()
        .map(|r| match service.deliver("s@example.com", r, b"x") {
            MailVerdict::Reject(reason) => reason,
            other => panic!("{other:?}"),
        })
        .collect();
    insta::assert_json_snapshot!(reasons, @r#"
    [
      "No such mailbox here.",
      "This server does not accept mail for that domain."
    ]
    "#);
}

#[test]
fn oversized_mail_is_refused_before_it_is_read() {
    let service = TestService::new();
    let _key = service.signup("alice");
    // Email Routing reports `rawSize` before the stream is read: a tiny
    // payload claiming one byte over 25 MiB is refused on the claim alone.
    let verdict = service.deliver_claiming_size(
        "s@example.com",
        "alice@agents.test",
        25 * 1024 * 1024 + 1,
        b"tiny",
    );
    match verdict {
        MailVerdict::Reject(reason) => assert!(reason.contains("too large"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_redelivery_is_stored_once() {
    let service = TestService::new();
    let key = service.signup("alice");
    let raw = mail(1, "again");
    let first = accepted(service.deliver("s@example.com", "alice@agents.test", &raw));
    assert_eq!(
        service.deliver("s@example.com", "alice@agents.test", &raw),
        MailVerdict::Duplicate(first)
    );
    // Same Message-ID but different bytes is a different message.
    let mut changed = raw.clone();
    changed.extend_from_slice(b"P.S.\r\n");
    accepted(service.deliver("s@example.com", "alice@agents.test", &changed));
    assert_eq!(
        service.call("GET", "/api/me", &key, None).1["messageCount"],
        2
    );
}

#[test]
fn transient_failures_ask_the_sender_to_retry_and_store_nothing() {
    let service = TestService::new();
    let key = service.signup("alice");
    service.objects().fail_requests("ingest", 1);
    assert!(matches!(
        service.deliver("s@example.com", "alice@agents.test", &mail(1, "x")),
        MailVerdict::Retry(_)
    ));
    // A failure half-way through storing a 3 MiB message (its third chunk)
    // rolls the whole message back.
    let mut big = mail(2, "big");
    big.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
    let before = service.objects().with_db_of("alice", SqliteDb::dump);
    service.objects().with_db_of("alice", |db| {
        db.fail_statements("INSERT INTO message_parts", 2, 1)
    });
    assert!(matches!(
        service.deliver("s@example.com", "alice@agents.test", &big),
        MailVerdict::Retry(_)
    ));
    assert_eq!(
        service.objects().with_db_of("alice", SqliteDb::dump),
        before
    );
    // The sender's retry succeeds, whole.
    let id = accepted(service.deliver("s@example.com", "alice@agents.test", &big));
    let reply = service.request(
        &HttpRequest::new("GET", &format!("/api/messages/{id}/raw"))
            .header("authorization", &format!("Bearer {key}")),
    );
    assert_eq!(reply.body, big);
}

#[test]
fn paging_visits_every_message_once_newest_first() {
    let service = TestService::new();
    let key = service.signup("alice");
    for n in 0..250 {
        service.clock.advance(1000);
        accepted(service.deliver("s@example.com", "alice@agents.test", &mail(n, "page")));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<u64> = None;
    let mut pages = 0;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/messages?limit=100&cursor={c}"),
            None => "/api/messages?limit=100".to_owned(),
        };
        let (status, page) = service.call("GET", &path, &key, None);
        assert_eq!(status, 200);
        pages += 1;
        seen.extend(
            page["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_u64()),
        );
        match page["nextCursor"].as_u64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=250).rev().collect::<Vec<u64>>());

    // The default page is 20; `since` keeps only later arrivals.
    let (_, page) = service.call("GET", "/api/messages", &key, None);
    assert_eq!(page["messages"].as_array().map(Vec::len), Some(20));
    let since = page["messages"][4]["receivedAt"]
        .as_str()
        .expect("a string")
        .to_owned();
    let (_, page) = service.call(
        "GET",
        &format!("/api/messages?since={since}&limit=100"),
        &key,
        None,
    );
    let ids: Vec<u64> = page["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![250, 249, 248, 247]);
    assert_eq!(page["nextCursor"], Json::Null);
}

#[test]
fn bad_reads_get_clear_errors() {
    let service = TestService::new();
    let key = service.signup("alice");
    accepted(service.deliver("s@example.com", "alice@agents.test", &mail(1, "x")));
    let cases = [
        ("GET", "/api/messages?limit=0", None),
        ("GET", "/api/messages?limit=101", None),
        ("GET", "/api/messages?limit=ten", None),
        ("GET", "/api/messages?cursor=-1", None),
        ("GET", "/api/messages?cursor=99999999999999999999", None),
        ("GET", "/api/messages?since=yesterday", None),
        ("GET", "/api/messages?unread=yes", None),
        ("GET", "/api/messages?limt=5", None),
        ("GET", "/api/messages?limit=5&limit=6", None),
        ("GET", "/api/messages/abc", None),
        ("GET", "/api/messages/0", None),
        ("GET", "/api/messages/..%2F..%2Fetc", None),
        ("GET", "/api/messages/%00", None),
        ("GET", "/api/messages/2", None),
        ("GET", "/api/messages/2/raw", None),
        ("PATCH", "/api/messages/2", Some(json!({"read": true}))),
        ("PATCH", "/api/messages/1", Some(json!({"read": "yes"}))),
        ("PATCH", "/api/messages/1", Some(json!({}))),
        (
            "PATCH",
            "/api/messages/1",
            Some(json!({"read": true, "starred": true})),
        ),
        ("PUT", "/api/messages/1", None),
        ("POST", "/api/messages/1/raw", None),
    ];
    let answers: serde_json::Map<String, Json> = cases
        .iter()
        .map(|(method, path, request_body)| {
            let (status, body) = service.call(method, path, &key, request_body.clone());
            assert!((400..500).contains(&status), "{method} {path}: {status}");
            let label = request_body
                .as_ref()
                .map(|b| format!(" {b}"))
                .unwrap_or_default();
            (
                format!("{method} {path}{label}"),
                json!({"status": status, "body": body}),
            )
        })
        .collect();
    insta::assert_json_snapshot!(answers);
}

#[test]
fn the_list_queries_never_scan_the_whole_table() {
    let db = SqliteDb::new();
    schema::migrate(&db, schema::MIGRATIONS, 0).unwrap_or_else(|e| panic!("{e}"));
    let mut plans = Vec::new();
    for (cursor, since, unread) in [
        (None, None, false),
        (Some(50), None, false),
        (None, Some(1_000), false),
        (None, None, true),
        (Some(50), Some(1_000), true),
    ] {
        let (query, params) = inbox_do::list_query(
            20,
            cursor,
            since.map(protocol::Timestamp::from_millis),
            unread,
        );
        let steps = db.plan_without_scan(&query, &params);
        plans.push(json!({ "query": query, "plan": steps }));
    }
    insta::assert_json_snapshot!(plans);
}

#[test]
fn no_key_reaches_another_inboxs_messages() {
    let service = TestService::new();
    let handles = ["alice", "bob", "carol"];
    let keys: Vec<String> = handles.iter().map(|h| service.signup(h)).collect();
    for (i, handle) in handles.iter().enumerate() {
        for n in 0..=i {
            let raw = format!(
                "From: x@example.com\r\nSubject: for {handle}\r\nMessage-ID: <{handle}{n}@x>\r\n\r\n{handle}'s secret {n}\r\n"
            );
            accepted(service.deliver(
                "x@example.com",
                &format!("{handle}@agents.test"),
                raw.as_bytes(),
            ));
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let own = format!("{}@agents.test", handles[i]);
        for id in 1..=4u64 {
            for path in [
                format!("/api/messages/{id}"),
                format!("/api/messages/{id}/raw"),
            ] {
                let (status, body) = service.call("GET", &path, key, None);
                let text = body.to_string();
                match status {
                    200 => {
                        for (j, other) in handles.iter().enumerate() {
                            if j != i {
                                assert!(
                                    !text.contains(&format!("{other}'s secret")),
                                    "{path} leaked {other}'s mail to {own}"
                                );
                            }
                        }
                    }
                    404 => assert!(id as usize > i + 1),
                    other => panic!("{path}: {other}"),
                }
            }
            let (status, _) = service.call(
                "PATCH",
                &format!("/api/messages/{id}"),
                key,
                Some(json!({"read": true})),
            );
            assert_eq!(status == 200, id as usize <= i + 1);
        }
        let (_, list) = service.call("GET", "/api/messages", key, None);
        for m in list["messages"].as_array().into_iter().flatten() {
            assert_eq!(m["to"], own.as_str());
        }
    }
    // Marking in one inbox never touched another's.
    let unread = |k: &str| {
        service.call("GET", "/api/messages?unread=true", k, None).1["messages"]
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(
        keys.iter().map(|k| unread(k)).collect::<Vec<_>>(),
        vec![Some(0), Some(0), Some(0)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any bytes at all are stored, listed, and returned byte for byte.
    #[test]
    fn any_bytes_are_stored_whole(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let service = TestService::new();
        let key = service.signup("alice");
        let id = match service.deliver("s@example.com", "alice@agents.test", &raw) {
            MailVerdict::Accepted(id) => id,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        let (status, message) = service.call("GET", &format!("/api/messages/{id}"), &key, None);
        prop_assert_eq!(status, 200);
        prop_assert_eq!(message["size"].as_u64(), Some(raw.len() as u64));
        let reply = service.request(&HttpRequest::new("GET", &format!("/api/messages/{id}/raw")).header("authorization", &format!("Bearer {key}")));
        prop_assert_eq!(reply.body, raw);
    }
}

#[test]
fn several_mail_domains_are_accepted_and_the_first_names_addresses() {
    let config =
        router_worker::RouterConfig::from_mail_domain_var(Some(" Agents.Test, other.example ,"));
    assert_eq!(
        config.mail_domains,
        vec!["agents.test".to_owned(), "other.example".to_owned()]
    );
    let service = TestService::with_config(0, config);
    let key = service.signup("alice");
    let (_, me) = service.call("GET", "/api/me", &key, None);
    assert_eq!(me["email"], "alice@agents.test");
    for (n, to) in ["alice@other.example", "alice@agents.test"]
        .iter()
        .enumerate()
    {
        accepted(service.deliver("s@example.com", to, &mail(n, "domains")));
    }
    assert!(matches!(
        service.deliver("s@example.com", "alice@third.example", &mail(9, "x")),
        MailVerdict::Reject(_)
    ));
    // Without any domain, mail is deferred (a temporary failure), not refused.
    let unconfigured = TestService::with_config(0, router_worker::RouterConfig::default());
    assert!(matches!(
        unconfigured.deliver("s@example.com", "alice@agents.test", &mail(1, "x")),
        MailVerdict::Retry(_)
    ));
}
