//! End-to-end checks of attachments on real workerd: a 20 MB attachment
//! through the local email endpoint, downloaded byte for byte and timed
//! against the raw download of the same message; agent to agent with a PDF
//! and an inline image, then forwarded to a third; and a send to the outside
//! read back from the .eml wrangler writes by an independent parser
//! (Python's `email` package).

use super::outbound::written_by_send_email;
use super::{Suite, expect};
use crate::Result;
use crate::api::{call, deliver_ok};
use crate::http::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use protocol::key::sha256_hex;
use serde_json::{Value as Json, json};
use std::process::Command;
use std::time::Instant;

/// Bytes that are no text: every byte value, in a pattern that does not
/// repeat within a base64 line.
fn binary(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed) | 0x9E37_0000;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

fn attachments_of(suite: &Suite, key: &str, id: u64) -> Result<Vec<Json>> {
    let detail = super::message_detail(suite, key, id)?;
    detail["attachments"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("message {id} has no attachments list: {detail}"))
}

fn download(suite: &Suite, key: &str, id: u64, part: &str) -> Result<Response> {
    let answer = suite
        .client()
        .get_with_key(&format!("/api/messages/{id}/attachments/{part}"), key)?;
    expect(answer.status == 200, || {
        format!(
            "GET attachment {part} of {id}: {} {}",
            answer.status,
            answer.body.chars().take(300).collect::<String>()
        )
    })?;
    Ok(answer)
}

fn newest_id(suite: &Suite, key: &str) -> Result<u64> {
    let list = call(&suite.client(), key, "GET", "/api/messages?limit=1", None)?;
    list.parsed()?["messages"][0]["id"]
        .as_u64()
        .ok_or_else(|| format!("no message listed: {}", list.body))
}

/// A 20 MB file (sent `binary`: in base64 it would pass the 25 MiB limit on
/// inbound mail) arrives through the local email endpoint and downloads
/// byte for byte, with its headers; so does an 18 MB one in base64, the
/// largest that fits; each time is printed beside the raw download of the
/// same message.
pub(super) fn twenty_megabytes_download(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-big-file")?;
    let to = suite.address("e2e-big-file");
    let file = binary(20_000_000, 7);
    let mut raw = format!(
        "From: Scanner <scanner@example.com>\r\nTo: {to}\r\nSubject: Scan\r\n\
         Message-ID: <scan-20mb@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b20\"\r\n\r\n\
         --b20\r\nContent-Type: text/plain\r\n\r\nThe scan.\r\n\
         --b20\r\nContent-Type: application/octet-stream; name=\"scan.bin\"\r\n\
         Content-Disposition: attachment; filename=\"scan.bin\"\r\n\
         Content-Transfer-Encoding: binary\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(&file);
    raw.extend_from_slice(b"\r\n--b20--\r\n");
    deliver_ok(&suite.client(), "scanner@example.com", &to, &raw)?;
    let id = newest_id(suite, &key)?;
    let listed = attachments_of(suite, &key, id)?;
    expect(
        listed.len() == 1 && listed[0]["size"] == 20_000_000 && listed[0]["id"] == "2",
        || format!("listed: {listed:?}"),
    )?;
    let got = timed_beside_raw(suite, &key, (id, "2"), &file, &raw, "20 MB attachment")?;
    let headers = [
        ("content-length", "20000000"),
        ("content-type", "application/octet-stream"),
        (
            "content-disposition",
            "attachment; filename=\"scan.bin\"; filename*=UTF-8''scan.bin",
        ),
        ("x-content-type-options", "nosniff"),
    ];
    for (name, want) in headers {
        expect(got.header(name) == Some(want), || {
            format!("{name}: {:?}, not {want:?}", got.header(name))
        })?;
    }
    // The largest file that fits in base64 (18 MB: 24.3 MB encoded), decoded
    // by the inbox as it streams.
    let file = binary(18_000_000, 8);
    let encoded = STANDARD.encode(&file);
    let mut raw = format!(
        "From: Scanner <scanner@example.com>\r\nTo: {to}\r\nSubject: Scan 2\r\n\
         Message-ID: <scan-18mb@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    for line in encoded.as_bytes().chunks(76) {
        raw.extend_from_slice(line);
        raw.extend_from_slice(b"\r\n");
    }
    deliver_ok(&suite.client(), "scanner@example.com", &to, &raw)?;
    let id = newest_id(suite, &key)?;
    let what = "18 MB attachment from base64";
    let got = timed_beside_raw(suite, &key, (id, "1"), &file, &raw, what)?;
    expect(got.header("content-length") == Some("18000000"), || {
        format!("content-length: {:?}", got.header("content-length"))
    })?;
    Ok(())
}

/// Downloads attachment `part` of message `id`, which must be `file`, then
/// the raw message, which must be `raw`, and prints both times and their
/// ratio; returns the attachment's answer, for its headers.
fn timed_beside_raw(
    suite: &Suite,
    key: &str,
    (id, part): (u64, &str),
    file: &[u8],
    raw: &[u8],
    what: &str,
) -> Result<Response> {
    let started = Instant::now();
    let got = download(suite, key, id, part)?;
    let attachment_took = started.elapsed();
    expect(sha256_hex(&got.bytes) == sha256_hex(file), || {
        format!("the {what} differs: {} bytes", got.bytes.len())
    })?;
    let started = Instant::now();
    let whole = suite
        .client()
        .get_with_key(&format!("/api/messages/{id}/raw"), key)?;
    let raw_took = started.elapsed();
    expect(whole.bytes == raw, || "the raw download differs".into())?;
    println!(
        "        ({what}: {:.0} ms; the raw message, {:.1} MB: {:.0} ms; ratio {:.2})",
        attachment_took.as_secs_f64() * 1000.0,
        raw.len() as f64 / 1e6,
        raw_took.as_secs_f64() * 1000.0,
        attachment_took.as_secs_f64() / raw_took.as_secs_f64()
    );
    Ok(got)
}

/// A sends B a PDF and an inline image; B downloads both identical and
/// forwards the message to C, who downloads the same bytes.
pub(super) fn agent_files_and_forward(suite: &mut Suite) -> Result<()> {
    let alice = suite.inbox("e2e-files-a")?;
    let bob = suite.inbox("e2e-files-b")?;
    let carol = suite.inbox("e2e-files-c")?;
    let client = suite.client();
    let pdf = [b"%PDF-1.7\n".as_slice(), &binary(300_000, 1)].concat();
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &binary(20_000, 2)].concat();
    let sent = call(
        &client,
        &alice,
        "POST",
        "/api/messages",
        Some(&json!({
            "to": suite.address("e2e-files-b"),
            "subject": "Invoice",
            "text": "The invoice, and our logo.",
            "html": "<p>The invoice.</p><img src=\"cid:logo@e2e\">",
            "attachments": [
                {"filename": "Rechnung Nr. 7 – März.pdf", "contentType": "application/pdf",
                 "content": STANDARD.encode(&pdf)},
                {"filename": "logo.png", "contentType": "image/png", "content": STANDARD.encode(&png),
                 "contentId": "logo@e2e", "disposition": "inline"},
            ],
        })),
    )?;
    expect(
        sent.status == 201 && sent.json()["status"] == "sent",
        || format!("POST /api/messages: {} {}", sent.status, sent.body),
    )?;
    let at_bob = newest_id(suite, &bob)?;
    let listed = attachments_of(suite, &bob, at_bob)?;
    // In MIME order: the inline image sits with the HTML, before the file.
    let want = [
        ("logo.png", "inline", &png),
        ("Rechnung Nr. 7 – März.pdf", "attachment", &pdf),
    ];
    expect(listed.len() == 2, || format!("B lists {listed:?}"))?;
    for (attachment, (name, disposition, bytes)) in listed.iter().zip(want) {
        expect(
            attachment["name"] == name && attachment["disposition"] == disposition,
            || format!("B lists {attachment}"),
        )?;
        let part = attachment["id"]
            .as_str()
            .ok_or("an attachment without an id")?;
        let got = download(suite, &bob, at_bob, part)?;
        expect(got.bytes == *bytes, || format!("B's {name} differs"))?;
    }
    expect(listed[0]["contentId"] == "logo@e2e", || {
        format!("the image's contentId: {}", listed[0])
    })?;
    let forwarded = call(
        &client,
        &bob,
        "POST",
        &format!("/api/messages/{at_bob}/forward"),
        Some(&json!({"to": suite.address("e2e-files-c"), "text": "For you."})),
    )?;
    expect(forwarded.status == 201, || {
        format!("the forward: {} {}", forwarded.status, forwarded.body)
    })?;
    let at_carol = newest_id(suite, &carol)?;
    let listed = attachments_of(suite, &carol, at_carol)?;
    expect(listed.len() == 2, || format!("C lists {listed:?}"))?;
    for (attachment, (name, _, bytes)) in listed.iter().zip(want) {
        expect(attachment["name"] == name, || {
            format!("C lists {attachment}")
        })?;
        let part = attachment["id"]
            .as_str()
            .ok_or("an attachment without an id")?;
        let got = download(suite, &carol, at_carol, part)?;
        expect(sha256_hex(&got.bytes) == sha256_hex(bytes), || {
            format!("C's {name} differs from what A sent")
        })?;
    }
    Ok(())
}

/// What Python's `email` package reads in a message: each attachment's
/// name, type and SHA-256.
const PYTHON_READER: &str = r#"
import email, email.policy, hashlib, json, sys
message = email.message_from_bytes(open(sys.argv[1], "rb").read(), policy=email.policy.default)
print(json.dumps({
    "structure": [part.get_content_type() for part in message.walk()],
    "files": [
        {"filename": part.get_filename(), "type": part.get_content_type(),
         "disposition": part.get_content_disposition(), "cid": part.get("Content-ID"),
         "sha256": hashlib.sha256(part.get_payload(decode=True)).hexdigest()}
        for part in message.walk() if not part.is_multipart() and part.get_filename()
    ],
}))
"#;

/// A send to the outside with a file and an inline image, read back from
/// the .eml wrangler's `send_email` simulation writes, parsed by Python.
pub(super) fn outside_send_read_by_python(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-files-out")?;
    let report = binary(50_000, 3);
    let chart = binary(4_000, 4);
    let sent = call(
        &suite.client(),
        &key,
        "POST",
        "/api/messages",
        Some(&json!({
            "to": "partner@example.com",
            "subject": "Quarterly report e2e-py",
            "text": "See the report.",
            "html": "<p>See the chart: <img src=\"cid:chart@e2e\"></p>",
            "attachments": [
                {"filename": "Q3 Übersicht.xlsx", "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 "content": STANDARD.encode(&report)},
                {"filename": "chart.png", "contentType": "image/png", "content": STANDARD.encode(&chart),
                 "contentId": "chart@e2e", "disposition": "inline"},
            ],
        })),
    )?;
    expect(
        sent.status == 201 && sent.json()["status"] == "sent",
        || format!("POST /api/messages: {} {}", sent.status, sent.body),
    )?;
    let written = written_by_send_email(suite, "Quarterly report e2e-py")?;
    let path = std::env::temp_dir().join(format!("inboxkit-e2e-{}.eml", std::process::id()));
    std::fs::write(&path, &written).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let output = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_READER)
        .arg(&path)
        .output()
        .map_err(|e| format!("running python3: {e}"));
    let _ = std::fs::remove_file(&path);
    let output = output?;
    expect(output.status.success(), || {
        format!("python3: {}", String::from_utf8_lossy(&output.stderr))
    })?;
    let read: Json = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("python3's answer is not JSON ({e})"))?;
    let xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let want = json!({
        "structure": ["multipart/mixed", "multipart/related", "multipart/alternative",
                      "text/plain", "text/html", "image/png", xlsx],
        "files": [
            {"filename": "chart.png", "type": "image/png", "disposition": "inline",
             "cid": "<chart@e2e>", "sha256": sha256_hex(&chart)},
            {"filename": "Q3 Übersicht.xlsx", "type": xlsx, "disposition": "attachment",
             "cid": null, "sha256": sha256_hex(&report)},
        ],
    });
    expect(read == want, || format!("Python read {read}, not {want}"))?;
    Ok(())
}
