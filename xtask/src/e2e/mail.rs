//! End-to-end checks of inbound mail: refusals, redelivery, read marks,
//! paging, the largest message, and data across a restart of wrangler dev.

use super::basics::race_for;
use super::corpus::fixture_crlf;
use super::{Suite, expect, expect_error};
use crate::Result;
use crate::api::{call, deliver, deliver_ok, filled_inbox, ids, list_all, mark_read, signup};

pub(super) fn unknown_recipients_refused(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let raw = b"From: a@example.com\r\nTo: x@example.com\r\nMessage-ID: <refuse@example.com>\r\nSubject: x\r\n\r\nx\r\n";
    for (to, reason) in [
        (suite.address("nobody-here"), "No such mailbox here."),
        (
            "e2e-alice@example.com".to_owned(),
            "This server does not accept mail for that domain.",
        ),
    ] {
        let answer = deliver(&client, "a@example.com", &to, raw)?;
        expect(answer.status == 400 && answer.body.contains(reason), || {
            format!(
                "delivery to {to} answered {} {:?}",
                answer.status, answer.body
            )
        })?;
    }
    Ok(())
}

pub(super) fn redelivery_and_marks(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let key = suite.inbox("e2e-twice")?;
    let to = suite.address("e2e-twice");
    let raw = format!(
        "From: a@example.com\r\nTo: {to}\r\nMessage-ID: <twice@example.com>\r\nSubject: twice\r\n\r\nsent twice\r\n"
    );
    for _ in 0..2 {
        deliver_ok(&client, "a@example.com", &to, raw.as_bytes())?;
    }
    let count = client
        .get_with_key("/api/me", &key)?
        .number("messageCount")?;
    expect(count == 1, || format!("stored {count} times"))?;
    let marked = mark_read(&client, &key, 1, true)?;
    expect(marked.json()["read"] == true, || {
        format!("PATCH answered {}", marked.body)
    })?;
    let unread = client.get_with_key("/api/messages?unread=true", &key)?;
    expect(
        unread.parsed()?["messages"] == serde_json::json!([]),
        || format!("unread still lists {}", unread.body),
    )?;
    let read = client.get_with_key("/api/messages/1", &key)?;
    expect(read.parsed()?["read"] == true, || {
        format!("the mark did not stick: {}", read.body)
    })
}

pub(super) fn thousand_messages_page(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let key = filled_inbox(&client, "e2e-pager", &suite.mail_domain, 1000, 8, "page")?;
    let seen = ids(&list_all(&client, &key, 100)?)?;
    expect(seen == (1..=1000).rev().collect::<Vec<u64>>(), || {
        format!(
            "paging saw {} ids; first {:?}",
            seen.len(),
            &seen[..seen.len().min(5)]
        )
    })
}

pub(super) fn largest_message(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let key = suite.inbox("e2e-largest")?;
    let to = suite.address("e2e-largest");
    let mut raw = format!(
        "From: big@example.com\r\nTo: {to}\r\nMessage-ID: <largest@example.com>\r\nSubject: largest\r\n\r\n"
    )
    .into_bytes();
    // 25 MiB less a little, as Email Routing's limit counts the whole message.
    let size = 25 * 1024 * 1024 - 1024;
    while raw.len() + 78 <= size {
        raw.extend_from_slice(&[b'x'; 76]);
        raw.extend_from_slice(b"\r\n");
    }
    deliver_ok(&client, "big@example.com", &to, &raw)?;
    let list = call(&client, &key, "GET", "/api/messages?limit=1", None)?.parsed()?;
    let listed = &list["messages"][0];
    let (id, size_listed) = listed["id"]
        .as_u64()
        .zip(listed["size"].as_u64())
        .ok_or_else(|| format!("the listing shows {list}"))?;
    expect(size_listed == raw.len() as u64, || {
        format!("listed size {size_listed}, sent {}", raw.len())
    })?;
    let stored = client.get_with_key(&format!("/api/messages/{id}/raw"), &key)?;
    expect(stored.bytes == raw, || {
        format!(
            "the raw bytes came back different ({} vs {} bytes)",
            stored.bytes.len(),
            raw.len()
        )
    })
}

/// The fixture stored first in the restarted inbox.
const FIRST_FIXTURE: &str = "rfc/base64-body.eml";
/// Messages in the restarted inbox besides it.
const RESTART_MESSAGES: usize = 300;

pub(super) fn restart_keeps_data(suite: &mut Suite) -> Result<()> {
    let client = suite.client();
    let key = suite.inbox("e2e-restart")?;
    let fixture = fixture_crlf(FIRST_FIXTURE)?;
    deliver_ok(
        &client,
        "sender@example.net",
        &suite.address("e2e-restart"),
        &fixture,
    )?;
    let failures = crate::api::deliver_many(
        &client,
        &suite.address("e2e-restart"),
        RESTART_MESSAGES,
        8,
        "restart",
    );
    expect(failures.is_empty(), || {
        format!("deliveries failed: {failures:?}")
    })?;
    mark_read(&client, &key, 1, true)?;
    // A key won in a race, too: its KV entries were written under contention.
    let raced = race_for(suite, "e2e-restart-race", 5)?;
    let before = client.get_with_key("/api/me", &key)?;

    let seconds = suite.restart()?;
    println!("        (restarted on the same state in {seconds:.1}s)");
    let after = client.get_with_key("/api/me", &key)?;
    expect(after.status == 200 && after.body == before.body, || {
        format!(
            "after restart /api/me answered {} {} (before: {})",
            after.status, after.body, before.body
        )
    })?;
    let me = client.get_with_key("/api/me", &raced)?;
    expect(me.status == 200, || {
        format!("the race winner's key failed after restart: {}", me.status)
    })?;
    expect_error(&signup(&client, "e2e-restart")?, 409, "handle_taken")?;
    let listed = list_all(&client, &key, 100)?;
    let seen = ids(&listed)?;
    let expected: Vec<u64> = (1..=1 + RESTART_MESSAGES as u64).rev().collect();
    expect(seen == expected, || {
        format!("after restart the inbox lists {} messages", seen.len())
    })?;
    expect(listed.last().is_some_and(|m| m["read"] == true), || {
        "after restart message 1 is no longer read".to_owned()
    })?;
    let raw = client.get_with_key("/api/messages/1/raw", &key)?;
    expect(raw.bytes == fixture, || {
        "after restart message 1's raw bytes differ".to_owned()
    })
}
