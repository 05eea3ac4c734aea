//! End-to-end checks of lifecycle and keys on real workerd: a send retried
//! with its Idempotency-Key after the client gave up is sent once (counted
//! in the files wrangler's `send_email` writes); a deleted inbox refuses its
//! key, its mail and its handle, across a restart of wrangler dev (and how
//! long deleting 10,000 messages takes); a `read` key reads and waits but
//! cannot send; a rotated key works and the old one is refused.

use super::{Suite, expect, expect_error};
use crate::Result;
use crate::api::{call, deliver, filled_inbox, refused_by_wrangler, small_message};
use crate::http::Response;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The files wrangler's `send_email` simulation wrote that contain
/// `marker`, each once.
fn written_with(suite: &Suite, marker: &str) -> Result<BTreeSet<String>> {
    Ok(super::outbound::send_email_files(suite)?
        .into_iter()
        .filter(|(_, written)| String::from_utf8_lossy(written).contains(marker))
        .map(|(path, _)| path)
        .collect())
}

fn send_with_key(
    client: &crate::http::Client,
    key: &str,
    idem: &str,
    body: &Json,
) -> Result<Response> {
    let extra = [("idempotency-key", idem)];
    crate::api::call_with(client, key, "POST", "/api/messages", &extra, Some(body))
}

/// The client gives up on a send before its answer; its retry with the same
/// key gets the first answer, and wrangler wrote the message once.
pub(super) fn idempotent_retry_sends_once(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-idem")?;
    let marker = "Idempotent e2e 7c1f";
    let body = json!({ "to": "carol@example.com", "subject": "Once", "text": marker });
    let impatient = suite.client().with_timeout(Duration::from_millis(5));
    let first = send_with_key(&impatient, &key, "e2e-retry-1", &body);
    println!(
        "        (the impatient first try: {})",
        match &first {
            Ok(r) => format!("answered {}", r.status),
            Err(_) => "timed out".to_owned(),
        }
    );
    let client = suite.client();
    let started = Instant::now();
    let answer = loop {
        let answer = send_with_key(&client, &key, "e2e-retry-1", &body)?;
        // 409 while the first is still in flight: retry, as documented.
        if answer.status != 409 || started.elapsed() > Duration::from_secs(20) {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    expect(
        answer.status == 201 && answer.json()["status"] == "sent",
        || format!("the retry: {} {}", answer.status, answer.body),
    )?;
    let again = send_with_key(&client, &key, "e2e-retry-1", &body)?;
    expect(
        again.status == 201
            && again.header("idempotent-replayed") == Some("true")
            && again.json() == answer.json(),
        || format!("a third try: {} {}", again.status, again.body),
    )?;
    let other = send_with_key(
        &client,
        &key,
        "e2e-retry-1",
        &json!({ "to": "carol@example.com", "text": "other" }),
    )?;
    expect_error(&other, 409, "conflict")?;
    let bad = send_with_key(&client, &key, "not valid!", &body)?;
    expect_error(&bad, 400, "invalid_request")?;
    std::thread::sleep(Duration::from_millis(500));
    let files = written_with(suite, marker)?;
    expect(files.len() == 1, || {
        format!(
            "wrangler wrote {} messages for one send: {files:?}",
            files.len()
        )
    })?;
    let listed = call(&client, &key, "GET", "/api/messages", None)?;
    let count = listed.json()["messages"].as_array().map(Vec::len);
    expect(count == Some(1), || format!("stored: {}", listed.body))?;
    println!(
        "        (sent once: {})",
        files.iter().next().map_or("", String::as_str)
    );
    Ok(())
}

fn refused_mail(suite: &Suite, to: &str) -> Result<()> {
    let raw = small_message(to, "after-deletion", 1);
    let answer = deliver(&suite.client(), "s@example.com", to, &raw)?;
    expect(
        answer.status != 200 && !refused_by_wrangler(&answer),
        || format!("mail to a deleted inbox: {} {}", answer.status, answer.body),
    )
}

/// An inbox of 10,000 messages is deleted: then its key is 401, mail to it
/// is refused and its handle cannot be signed up, also after a restart.
pub(super) fn deleted_inbox_stays_deleted(suite: &mut Suite) -> Result<()> {
    let handle = "e2e-deleted";
    let address = suite.address(handle);
    let client = suite.client();
    let started = Instant::now();
    let key = filled_inbox(&client, handle, &suite.mail_domain, 10_000, 4, "del")?;
    println!(
        "        (filled with 10,000 messages in {:.1}s)",
        started.elapsed().as_secs_f64()
    );
    let me = call(&client, &key, "GET", "/api/me", None)?;
    expect(me.json()["messageCount"] == 10_000, || {
        format!("GET /api/me: {}", me.body)
    })?;
    let started = Instant::now();
    let deleted = call(&client, &key, "DELETE", "/api/me", None)?;
    let took = started.elapsed();
    expect(deleted.status == 204, || {
        format!("DELETE /api/me: {} {}", deleted.status, deleted.body)
    })?;
    println!(
        "        (deleting the inbox of 10,000 messages took {:.0} ms on workerd)",
        took.as_secs_f64() * 1000.0
    );
    let check = |suite: &Suite| -> Result<()> {
        let client = suite.client();
        let me = call(&client, &key, "GET", "/api/me", None)?;
        expect_error(&me, 401, "unauthorized")?;
        refused_mail(suite, &address)?;
        let signup = crate::api::signup(&client, handle)?;
        expect_error(&signup, 409, "handle_taken")
    };
    check(suite)?;
    suite.restart()?;
    check(suite)
}

fn create_key(suite: &Suite, key: &str, name: &str, scope: &str) -> Result<(String, u64)> {
    let created = call(
        &suite.client(),
        key,
        "POST",
        "/api/keys",
        Some(&json!({ "name": name, "scope": scope })),
    )?;
    expect(created.status == 201, || {
        format!("POST /api/keys: {} {}", created.status, created.body)
    })?;
    Ok((created.string("apiKey")?, created.number("id")?))
}

/// A `read` key lists, reads and waits; every change is 403.
pub(super) fn read_key_reads_but_cannot_send(suite: &mut Suite) -> Result<()> {
    let full = suite.inbox("e2e-reader")?;
    let (read, _) = create_key(suite, &full, "monitor", "read")?;
    let client = suite.client();
    let address = suite.address("e2e-reader");
    let raw = small_message(&address, "reader", 1);
    crate::api::deliver_ok(&client, "s@example.com", &address, &raw)?;
    let listed = call(&client, &read, "GET", "/api/messages", None)?;
    expect(
        listed.status == 200 && listed.json()["messages"].as_array().map(Vec::len) == Some(1),
        || format!("list with a read key: {} {}", listed.status, listed.body),
    )?;
    let waited = call(
        &client,
        &read,
        "GET",
        "/api/messages/wait?after=0&timeout=2",
        None,
    )?;
    expect(
        waited.status == 200 && waited.json()["message"]["id"] == 1,
        || format!("wait with a read key: {} {}", waited.status, waited.body),
    )?;
    let sent = call(
        &client,
        &read,
        "POST",
        "/api/messages",
        Some(&json!({ "to": address, "text": "no" })),
    )?;
    expect_error(&sent, 403, "forbidden")?;
    let marked = call(
        &client,
        &read,
        "PATCH",
        "/api/messages/1",
        Some(&json!({ "read": true })),
    )?;
    expect_error(&marked, 403, "forbidden")?;
    let gone = call(&client, &read, "DELETE", "/api/me", None)?;
    expect_error(&gone, 403, "forbidden")?;
    let still = call(&client, &full, "GET", "/api/messages/1", None)?;
    expect(still.status == 200 && still.json()["read"] == false, || {
        format!("after the read key's tries: {}", still.body)
    })
}

/// Rotation: a new full key, then the old one deleted: the new works, the
/// old is 401.
pub(super) fn rotated_key(suite: &mut Suite) -> Result<()> {
    let old = suite.inbox("e2e-rotate")?;
    let client = suite.client();
    let keys = call(&client, &old, "GET", "/api/keys", None)?;
    let old_id = keys.json()["keys"][0]["id"]
        .as_u64()
        .ok_or_else(|| format!("GET /api/keys: {}", keys.body))?;
    let (new, _) = create_key(suite, &old, "rotated", "full")?;
    let deleted = call(
        &client,
        &new,
        "DELETE",
        &format!("/api/keys/{old_id}"),
        None,
    )?;
    expect(deleted.status == 204, || {
        format!(
            "DELETE /api/keys/{old_id}: {} {}",
            deleted.status, deleted.body
        )
    })?;
    let refused = call(&client, &old, "GET", "/api/me", None)?;
    expect_error(&refused, 401, "unauthorized")?;
    let works = call(&client, &new, "GET", "/api/me", None)?;
    expect(works.status == 200, || {
        format!("the new key: {} {}", works.status, works.body)
    })?;
    let last = call(&client, &new, "GET", "/api/keys", None)?;
    let new_id = last.json()["keys"][0]["id"]
        .as_u64()
        .ok_or_else(|| format!("GET /api/keys: {}", last.body))?;
    let kept = call(
        &client,
        &new,
        "DELETE",
        &format!("/api/keys/{new_id}"),
        None,
    )?;
    expect_error(&kept, 409, "conflict")
}

/// A message of about 20 KB for the export, with lines an mbox reader
/// would take for separators unless quoted.
fn export_message(to: &str, n: usize) -> Vec<u8> {
    let mut raw = format!(
        "From: s{n}@example.com\r\nTo: {to}\r\nMessage-ID: <export-{n}@example.com>\r\n\
         Subject: export {n}\r\n\r\nFrom the top, message {n}\r\n>From quoted\r\n"
    );
    while raw.len() < 20_000 {
        raw.push_str(
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n",
        );
    }
    raw.push_str(">>From deeper\r\nthe end\r\n");
    raw.into_bytes()
}

/// 500 messages exported as mboxrd read back byte for byte with Python's
/// `mailbox.mbox` (then mboxrd's unquoting); the throughput is printed.
pub(super) fn export_reads_back_with_python(suite: &mut Suite) -> Result<()> {
    const COUNT: usize = 500;
    let handle = "e2e-export";
    let key = suite.inbox(handle)?;
    let to = suite.address(handle);
    let client = suite.client();
    let dir = std::env::temp_dir().join(format!("inboxkit-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (client, to) = (&client, &to);
                scope.spawn(move || -> Result<()> {
                    for n in (w..COUNT).step_by(4) {
                        crate::api::deliver_ok(
                            client,
                            "s@example.com",
                            to,
                            &export_message(to, n),
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "a delivery thread panicked".to_owned())??;
        }
        Ok(())
    })?;
    let started = Instant::now();
    let export = call(&client, &key, "GET", "/api/export", None)?;
    let seconds = started.elapsed().as_secs_f64();
    expect(
        export.status == 200 && export.content_type == "application/mbox",
        || format!("GET /api/export: {} {}", export.status, export.content_type),
    )?;
    let mbox = dir.join("inbox.mbox");
    std::fs::write(&mbox, &export.bytes).map_err(|e| format!("{}: {e}", mbox.display()))?;
    // The messages in id order (oldest first), each as stored.
    for id in 1..=COUNT {
        let raw = call(
            &client,
            &key,
            "GET",
            &format!("/api/messages/{id}/raw"),
            None,
        )?;
        expect(raw.status == 200, || format!("raw {id}: {}", raw.status))?;
        let path = dir.join(format!("{id}.eml"));
        std::fs::write(&path, &raw.bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let script = r#"
import mailbox, re, sys, pathlib
d = pathlib.Path(sys.argv[1])
box = mailbox.mbox(str(d / "inbox.mbox"))
keys = list(box.keys())
assert len(keys) == int(sys.argv[2]), f"{len(keys)} messages in the mbox"
for i, key in enumerate(keys, 1):
    raw = re.sub(rb"(?m)^>(>*From )", rb"\1", box.get_bytes(key))
    want = (d / f"{i}.eml").read_bytes()
    assert raw == want, f"message {i} differs"
print(len(keys))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&dir)
        .arg(COUNT.to_string())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    expect(out.status.success(), || {
        format!("python's mailbox: {}", String::from_utf8_lossy(&out.stderr))
    })?;
    let megabytes = export.bytes.len() as f64 / 1_000_000.0;
    println!(
        "        (export: {COUNT} messages, {megabytes:.1} MB in {seconds:.2} s = {:.1} MB/s on workerd; \
         Python's mailbox read every message back byte for byte)",
        megabytes / seconds
    );
    Ok(())
}
