//! End-to-end checks of conversations on real workerd: threads formed by
//! mail as it arrives (replies before their original included), their
//! marks, listing and deletion.

use super::{Suite, expect, expect_error};
use crate::Result;
use crate::api::{call, deliver_ok, mark_read};
use serde_json::Value as Json;

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
        let gone = call(
            &client,
            &key,
            "GET",
            &format!("/api/messages/{message}"),
            None,
        )?;
        expect_error(&gone, 404, "not_found")?;
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
