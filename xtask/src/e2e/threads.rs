//! End-to-end checks of conversations on real workerd: threads formed by
//! mail as it arrives (replies before their original included), their
//! marks, listing and deletion.

use super::{Suite, expect, expect_error};
use crate::Result;
use crate::api::{call, deliver_ok, mark_read};
use serde_json::{Value as Json, json};

/// A message with `id` as its Message-ID, answering `parent` when given.
fn mail(to: &str, id: &str, parent: Option<&str>, subject: &str) -> Vec<u8> {
    let reply = parent
        .map(|p| format!("In-Reply-To: <{p}>\r\nReferences: <{p}>\r\n"))
        .unwrap_or_default();
    format!(
        "From: Someone <someone@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n\
         Message-ID: <{id}>\r\n{reply}\r\nThis is {id}.\r\n\r\nOn Mon, someone wrote:\r\n> older text\r\n"
    )
    .into_bytes()
}

fn thread_id_of(suite: &Suite, key: &str, message: u64) -> Result<u64> {
    let answer = call(
        &suite.client(),
        key,
        "GET",
        &format!("/api/messages/{message}"),
        None,
    )?;
    expect(answer.status == 200, || {
        format!(
            "GET /api/messages/{message}: {} {}",
            answer.status, answer.body
        )
    })?;
    answer.json()["threadId"]
        .as_u64()
        .ok_or_else(|| format!("message {message} has no threadId: {}", answer.body))
}

/// Replies first, then their original: one thread; marks move its unread
/// count; deleting it deletes its messages and nothing else.
pub(super) fn threads_form_and_go(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-threads")?;
    let to = suite.address("e2e-threads");
    let client = suite.client();
    let deliver = |id: &str, parent: Option<&str>, subject: &str| {
        deliver_ok(
            &client,
            "someone@example.com",
            &to,
            &mail(&to, id, parent, subject),
        )
    };
    deliver("r1@e2e", Some("o@e2e"), "Re: Plan")?;
    deliver("r2@e2e", Some("o@e2e"), "Re: Plan")?;
    deliver("other@e2e", None, "Other")?;
    deliver("o@e2e", None, "Plan")?;
    let thread = thread_id_of(suite, &key, 1)?;
    for message in [2, 4] {
        let t = thread_id_of(suite, &key, message)?;
        expect(t == thread, || {
            format!("message {message} is in thread {t}, not {thread}")
        })?;
    }
    let other = thread_id_of(suite, &key, 3)?;
    expect(other != thread, || {
        "the unrelated message joined the thread".into()
    })?;

    let got = call(
        &client,
        &key,
        "GET",
        &format!("/api/threads/{thread}"),
        None,
    )?;
    let body = got.json();
    let ids: Vec<u64> = body["messages"]
        .as_array()
        .ok_or_else(|| format!("GET /api/threads/{thread}: {}", got.body))?
        .iter()
        .map(|m| m["id"].as_u64().ok_or("a message without an id"))
        .collect::<std::result::Result<_, _>>()?;
    expect(
        ids == [1, 2, 4] && body["messageCount"] == 3 && body["unreadCount"] == 3,
        || format!("GET /api/threads/{thread}: {}", got.body),
    )?;
    expect(body["messages"][0]["extractedText"].is_string(), || {
        format!("no extractedText: {}", got.body)
    })?;

    let list = call(&client, &key, "GET", "/api/threads", None)?.json();
    let listed: Vec<&Json> = list["threads"]
        .as_array()
        .ok_or_else(|| format!("GET /api/threads: {list}"))?
        .iter()
        .map(|t| &t["id"])
        .collect();
    expect(listed == [&Json::from(thread), &Json::from(other)], || {
        format!("latest activity first: {list}")
    })?;

    for message in [1, 2, 4] {
        mark_read(&client, &key, message, true)?;
    }
    let unread = call(&client, &key, "GET", "/api/threads?unread=true", None)?.json();
    expect(
        unread["threads"].as_array().map(Vec::len) == Some(1)
            && unread["threads"][0]["id"] == other,
        || format!("GET /api/threads?unread=true: {unread}"),
    )?;

    let deleted = call(
        &client,
        &key,
        "DELETE",
        &format!("/api/threads/{thread}"),
        None,
    )?;
    expect(deleted.status == 204, || {
        format!(
            "DELETE /api/threads/{thread}: {} {}",
            deleted.status, deleted.body
        )
    })?;
    for message in [1, 2, 4] {
        // The raw bytes too: their chunks are gone with the message.
        for path in [
            format!("/api/messages/{message}"),
            format!("/api/messages/{message}/raw"),
        ] {
            let gone = call(&client, &key, "GET", &path, None)?;
            expect_error(&gone, 404, "not_found")?;
        }
    }
    let again = call(
        &client,
        &key,
        "GET",
        &format!("/api/threads/{thread}"),
        None,
    )?;
    expect_error(&again, 404, "not_found")?;
    let me = call(&client, &key, "GET", "/api/me", None)?.json();
    expect(me["messageCount"] == 1, || format!("GET /api/me: {me}"))?;
    let bad = call(&client, &key, "GET", "/api/threads/x", None)?;
    expect_error(&bad, 400, "invalid_request")
}

fn thread_messages(suite: &Suite, key: &str, thread: u64) -> Result<Vec<Json>> {
    let got = call(
        &suite.client(),
        key,
        "GET",
        &format!("/api/threads/{thread}"),
        None,
    )?;
    expect(got.status == 200, || {
        format!("GET /api/threads/{thread}: {} {}", got.status, got.body)
    })?;
    got.json()["messages"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("GET /api/threads/{thread}: {}", got.body))
}

/// The only thread of an inbox, and its messages.
fn only_thread(suite: &Suite, key: &str, who: &str) -> Result<Vec<Json>> {
    let list = call(&suite.client(), key, "GET", "/api/threads", None)?.json();
    let threads = list["threads"]
        .as_array()
        .ok_or_else(|| format!("{who}: GET /api/threads: {list}"))?;
    expect(threads.len() == 1, || format!("{who} has threads {list}"))?;
    let id = threads[0]["id"]
        .as_u64()
        .ok_or_else(|| format!("{who}: a thread without an id: {list}"))?;
    thread_messages(suite, key, id)
}

fn subjects(messages: &[Json]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or("(none)").to_owned())
        .collect()
}

/// A writes to B with C on Cc; B replies to all; A replies to all: A, B
/// and C each see one thread of the three messages, in order, read back
/// through the API (the replies quote what they answer; their new text is
/// their extractedText).
pub(super) fn reply_all_across_three_inboxes(suite: &mut Suite) -> Result<()> {
    let a = suite.inbox("e2e-conv-a")?;
    let b = suite.inbox("e2e-conv-b")?;
    let c = suite.inbox("e2e-conv-c")?;
    let (b_addr, c_addr) = (suite.address("e2e-conv-b"), suite.address("e2e-conv-c"));
    let client = suite.client();
    let sent = call(
        &client,
        &a,
        "POST",
        "/api/messages",
        Some(&json!({
            "to": b_addr, "cc": [c_addr], "subject": "Supplier question",
            "text": "Can you ship 40 units by Friday?"
        })),
    )?;
    expect(
        sent.status == 201 && sent.json()["status"] == "sent",
        || format!("A's send: {} {}", sent.status, sent.body),
    )?;
    let at_b = only_thread(suite, &b, "B")?;
    let b_copy = at_b[0]["id"].as_u64().ok_or("B's copy has no id")?;
    let replied = call(
        &client,
        &b,
        "POST",
        &format!("/api/messages/{b_copy}/reply"),
        Some(&json!({"text": "Yes, 40 units by Friday.", "replyAll": true})),
    )?;
    expect(
        replied.status == 201 && replied.json()["status"] == "sent",
        || format!("B's reply-all: {} {}", replied.status, replied.body),
    )?;
    let at_a = only_thread(suite, &a, "A")?;
    expect(at_a.len() == 2, || {
        format!("A's thread: {:?}", subjects(&at_a))
    })?;
    let b_reply = at_a[1]["id"].as_u64().ok_or("B's reply has no id at A")?;
    let detail = call(
        &client,
        &a,
        "GET",
        &format!("/api/messages/{b_reply}"),
        None,
    )?
    .json();
    expect(
        detail["subject"] == "Re: Supplier question"
            && detail["extractedText"] == "Yes, 40 units by Friday."
            && detail["cc"] == json!([c_addr])
            && detail["text"]
                .as_str()
                .is_some_and(|t| t.contains("> Can you ship 40 units by Friday?")),
        || format!("B's reply as A reads it: {detail}"),
    )?;
    let all = call(
        &client,
        &a,
        "POST",
        &format!("/api/messages/{b_reply}/reply"),
        Some(&json!({"text": "Great, thank you.", "replyAll": true})),
    )?;
    expect(all.status == 201 && all.json()["status"] == "sent", || {
        format!("A's reply-all: {} {}", all.status, all.body)
    })?;
    let recipients = all.json()["recipients"].clone();
    expect(
        recipients.as_array().map(Vec::len) == Some(2)
            && recipients[0]["address"] == b_addr
            && recipients[1]["address"] == c_addr,
        || format!("A's reply-all went to {recipients} (never to A itself)"),
    )?;
    let expected = [
        "Supplier question",
        "Re: Supplier question",
        "Re: Supplier question",
    ];
    for (who, key) in [("A", &a), ("B", &b), ("C", &c)] {
        let thread = only_thread(suite, key, who)?;
        expect(subjects(&thread) == expected, || {
            format!("{who}'s thread: {:?}", subjects(&thread))
        })?;
        let texts: Vec<&Json> = thread.iter().map(|m| &m["extractedText"]).collect();
        expect(
            texts
                == [
                    &json!("Can you ship 40 units by Friday?"),
                    &json!("Yes, 40 units by Friday."),
                    &json!("Great, thank you."),
                ],
            || format!("{who}'s thread reads {texts:?}"),
        )?;
    }
    Ok(())
}

/// A reply to mail from outside goes through the `send_email` binding with
/// `Re:`, In-Reply-To and References, as the .eml wrangler writes shows.
pub(super) fn reply_to_outside_mail(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-reply-out")?;
    let to = suite.address("e2e-reply-out");
    let client = suite.client();
    let raw = format!(
        "From: Dana Outside <dana@example.com>\r\nTo: {to}\r\nSubject: RE: Invoice 7\r\n\
         Message-ID: <inv7-2@example.com>\r\nReferences: <inv7-1@example.com>\r\n\
         In-Reply-To: <inv7-1@example.com>\r\n\r\nIs the invoice paid?\r\n"
    );
    deliver_ok(&client, "dana@example.com", &to, raw.as_bytes())?;
    let replied = call(
        &client,
        &key,
        "POST",
        "/api/messages/1/reply",
        Some(&json!({"text": "Paid yesterday."})),
    )?;
    expect(
        replied.status == 201 && replied.json()["status"] == "sent",
        || format!("the reply: {} {}", replied.status, replied.body),
    )?;
    let written = super::outbound::written_by_send_email(suite, "Paid yesterday.")?;
    let text = String::from_utf8_lossy(&written).replace("\r\n", "\n");
    let header = |name: &str| {
        text.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    expect(
        header("Subject") == "Re: Invoice 7"
            && header("In-Reply-To") == "<inv7-2@example.com>"
            && header("References") == "<inv7-1@example.com> <inv7-2@example.com>"
            && header("To").contains("dana@example.com")
            && text.contains("> Is the invoice paid?"),
        || format!("the .eml wrangler wrote:\n{text}"),
    )?;
    // The reply is in the thread of what it answers.
    let thread = only_thread(suite, &key, "the inbox")?;
    expect(thread.len() == 2, || {
        format!("the thread: {:?}", subjects(&thread))
    })
}
