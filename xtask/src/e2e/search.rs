//! End-to-end checks of search (`GET /api/messages/search`) on real
//! workerd: mail in English, German and Japanese found by its words, each
//! operator narrowing as it says, paging by `nextCursor`, hostile queries
//! answered 200 or 400 (never a 5xx), and the codes and links a new
//! message's detail carries.

use super::{Suite, expect, expect_error};
use crate::Result;
use crate::api::{
    call, deliver_many, deliver_ok, ids, list_all, mark_read, search, search_all, search_page_of,
};
use crate::http::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use std::collections::BTreeSet;

/// `text` in base64, in lines of 76, each ending in CRLF.
fn base64_lines(text: &[u8]) -> String {
    STANDARD
        .encode(text)
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\r\n", String::from_utf8_lossy(line)))
        .collect()
}

/// `text` as an RFC 2047 encoded word (for a header that is not ASCII).
fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", STANDARD.encode(text))
}

/// A single-part UTF-8 message, its body in base64 (wrangler's endpoint
/// and every parser take that, whatever they make of 8-bit bodies).
fn utf8_mail(to: &str, from: &str, id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        encoded_word(subject),
        base64_lines(body.as_bytes())
    )
    .into_bytes()
}

fn plain_mail(to: &str, from: &str, id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The URL the verification mail links to, as its HTML writes it (`&amp;`)
/// and as it must be read back.
const VERIFY_HREF: &str = "https://example.com/verify?token=abc123&amp;user=7";
const VERIFY_URL: &str = "https://example.com/verify?token=abc123&user=7";
const VERIFY_CODE: &str = "483920";

/// The mail of the searched inbox, in delivery order (ids 1 to 6), then a
/// send from it (id 7). Returns nothing: the ids are their positions.
fn fill(suite: &Suite, key: &str, to: &str) -> Result<()> {
    let client = suite.client();
    let pdf = base64_lines(b"%PDF-1.4\n% a small contract\n%%EOF\n");
    let verification = format!(
        "From: Accounts <noreply@accounts.example>\r\nTo: {to}\r\nSubject: Your verification code\r\n\
         Message-ID: <search-verify@accounts.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
         Your verification code is {VERIFY_CODE}\r\n\r\nIt expires in ten minutes.\r\n\
         --alt\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n\
         <html><body><p>Your verification code is <b>{VERIFY_CODE}</b></p>\r\n\
         <p><a href=\"{VERIFY_HREF}\">Verify your email</a></p></body></html>\r\n\
         --alt--\r\n"
    );
    let mails: Vec<(&str, Vec<u8>)> = vec![
        (
            "alice@example.com",
            plain_mail(
                to,
                "Alice <alice@example.com>",
                "search-1@example.com",
                "Quarterly invoice",
                "Please find the quarterly invoice for March attached.\r\n\r\nKind regards,\r\nAlice",
            ),
        ),
        (
            "versand@shop.example",
            utf8_mail(
                to,
                "Shop <versand@shop.example>",
                "search-2@shop.example",
                "Versandbestätigung",
                "Sehr geehrter Herr Müller,\r\n\r\nIhre Bestellung Nr. 4711 wurde heute versandt.\r\n",
            ),
        ),
        (
            "tanaka@example.jp",
            utf8_mail(
                to,
                "Tanaka <tanaka@example.jp>",
                "search-3@example.jp",
                "お知らせ",
                "今月の請求書をお送りします。ご確認ください。\r\n",
            ),
        ),
        (
            "bob@example.com",
            format!(
                "From: Bob <bob@example.com>\r\nTo: {to}\r\nSubject: Contract draft\r\n\
                 Message-ID: <search-4@example.com>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n\
                 --mix\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
                 Here is the contract draft we discussed, with the invoice terms.\r\n\
                 --mix\r\nContent-Type: application/pdf; name=\"contract.pdf\"\r\n\
                 Content-Disposition: attachment; filename=\"contract.pdf\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n{pdf}--mix--\r\n"
            )
            .into_bytes(),
        ),
        ("noreply@accounts.example", verification.into_bytes()),
        (
            "alice@example.com",
            plain_mail(
                to,
                "Alice <alice@example.com>",
                "search-6@example.com",
                "Lunch on Friday",
                "Shall we have lunch on Friday? The invoice can wait.",
            ),
        ),
    ];
    for (from, raw) in &mails {
        deliver_ok(&client, from, to, raw)?;
    }
    let sent = call(
        &client,
        key,
        "POST",
        "/api/messages",
        Some(&json!({
            "to": "partner@example.com",
            "subject": "Invoice question",
            "text": "Is the invoice paid?"
        })),
    )?;
    expect(sent.status == 201 && sent.json()["id"] == 7, || {
        format!(
            "the send from the searched inbox: {} {}",
            sent.status, sent.body
        )
    })?;
    let stored = ids(&list_all(&client, key, 100)?)?;
    expect(stored == [7, 6, 5, 4, 3, 2, 1], || {
        format!("the searched inbox holds {stored:?}, not ids 1 to 7")
    })
}

/// Every query here and the ids it must find (in any order: ranking is the
/// server's), once each.
const NARROWING: &[(&str, &[u64])] = &[
    ("invoice", &[1, 4, 6, 7]),
    ("INVOICE", &[1, 4, 6, 7]),
    ("quarterly invoice", &[1]),
    ("invo*", &[1, 4, 6, 7]),
    ("\"contract draft\"", &[4]),
    ("\"draft contract\"", &[]),
    ("Müller", &[2]),
    ("müller", &[2]),
    ("Muller", &[2]),
    ("Bestellung", &[2]),
    ("請求書", &[3]),
    ("見積書", &[]),
    ("from:alice@example.com", &[1, 6]),
    ("from:bob@example.com invoice", &[4]),
    ("to:partner@example.com", &[7]),
    ("subject:invoice", &[1, 7]),
    ("subject:lunch", &[6]),
    ("invoice -lunch", &[1, 4, 7]),
    ("lunch OR contract", &[4, 6]),
    // Message 1 is marked read; one's own sent mail is never unread.
    ("is:unread invoice", &[4, 6]),
    ("is:read invoice", &[1, 7]),
    ("has:attachment", &[4]),
    ("has:attachment invoice", &[4]),
    ("in:inbox invoice", &[1, 4, 6]),
    ("in:sent invoice", &[7]),
    ("verification", &[5]),
    ("nothingmatchesthisword", &[]),
];

/// Mail in three languages is found by its words; every operator narrows as
/// it says; `complete` is true on an inbox made by this version.
pub(super) fn search_finds_and_narrows(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-search")?;
    let to = suite.address("e2e-search");
    let client = suite.client();
    fill(suite, &key, &to)?;
    mark_read(&client, &key, 1, true)?;
    let mut wrong = Vec::new();
    for (q, want) in NARROWING {
        let (found, complete) = search_all(&client, &key, q, 100)?;
        let unique: BTreeSet<u64> = found.iter().copied().collect();
        let want: BTreeSet<u64> = want.iter().copied().collect();
        if unique.len() != found.len() {
            wrong.push(format!("{q:?} lists a message twice: {found:?}"));
        } else if unique != want {
            wrong.push(format!("{q:?} found {found:?}, not {want:?}"));
        }
        if !complete {
            wrong.push(format!(
                "{q:?} answered complete: false on a new inbox (nothing is left to index)"
            ));
        }
    }
    expect(wrong.is_empty(), || wrong.join("; "))
}

/// `limit=2` pages visit every match once; the default page and the limit's
/// bounds hold.
pub(super) fn search_pages(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-search-pages")?;
    let to = suite.address("e2e-search-pages");
    let client = suite.client();
    let failures = deliver_many(&client, &to, 9, 1, "searchpage");
    expect(failures.is_empty(), || {
        format!("deliveries failed: {failures:?}")
    })?;
    // Something that does not match, between them in ids.
    deliver_ok(
        &client,
        "other@example.com",
        &to,
        &plain_mail(
            &to,
            "other@example.com",
            "search-other@example.com",
            "other",
            "unrelated",
        ),
    )?;
    let (paged, complete) = search_all(&client, &key, "searchpage", 2)?;
    let unique: BTreeSet<u64> = paged.iter().copied().collect();
    expect(
        paged.len() == 9 && unique == (1..=9).collect::<BTreeSet<u64>>() && complete,
        || {
            format!(
                "paging by 2 visited {paged:?} (complete: {complete}), not ids 1 to 9 once each"
            )
        },
    )?;
    let first = search(&client, &key, "searchpage", Some(2), None)?;
    expect(first.ids.len() == 2 && first.next_cursor.is_some(), || {
        format!(
            "the first page of 2 of 9 matches: {:?}, nextCursor {:?}",
            first.ids, first.next_cursor
        )
    })?;
    // The default limit (20) takes all nine in one page.
    let whole = search(&client, &key, "searchpage", None, None)?;
    let whole_set: BTreeSet<u64> = whole.ids.iter().copied().collect();
    expect(
        whole.ids.len() == 9 && whole_set == unique && whole.next_cursor.is_none(),
        || {
            format!(
                "the default page: {:?}, nextCursor {:?}",
                whole.ids, whole.next_cursor
            )
        },
    )?;
    for limit in ["0", "101", "x"] {
        let answer = call(
            &client,
            &key,
            "GET",
            &format!("/api/messages/search?q=searchpage&limit={limit}"),
            None,
        )?;
        expect_error(&answer, 400, "invalid_request")
            .map_err(|e| format!("search with limit={limit}: {e}"))?;
    }
    Ok(())
}

/// Whether a search answer is one the contract allows for any query: a 200
/// in the search shape, or a 400 `invalid_request` with an error sentence.
fn allowed_answer(answer: &Response, what: &str) -> Result<()> {
    if answer.status == 400 {
        return expect_error(answer, 400, "invalid_request").map_err(|e| format!("{what}: {e}"));
    }
    expect(answer.status == 200, || {
        format!(
            "{what}: answered {} (only 200 or 400 invalid_request may be): {}",
            answer.status,
            answer.body.chars().take(300).collect::<String>()
        )
    })?;
    search_page_of(answer, what).map(drop)
}

/// Hostile queries: each is answered 200 or 400 `invalid_request`, never
/// anything else; the inbox still searches after them.
pub(super) fn search_hostile_queries(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-search-hostile")?;
    let to = suite.address("e2e-search-hostile");
    let client = suite.client();
    deliver_ok(
        &client,
        "a@example.com",
        &to,
        &plain_mail(
            &to,
            "a@example.com",
            "hostile-1@example.com",
            "hostile target",
            "a word to find",
        ),
    )?;
    let texts = [
        "\"unclosed",
        "NEAR(",
        "NEAR(a b, 3)",
        "*",
        "^",
        "^word",
        "{subject}: x",
        "subject:",
        "from:",
        ":",
        "-",
        "--",
        "- -word",
        "OR",
        "word OR",
        "OR OR OR",
        "AND",
        "NOT word",
        "(((",
        ")",
        "\"\"",
        "\"",
        "a\"b",
        "'",
        "word*",
        "**",
        "*word",
        "before:2024-13-45",
        "after:yesterday",
        "before:",
        "thread:x",
        "thread:-1",
        "thread:99999999999999999999",
        "has:nothing",
        "is:maybe",
        "in:trash",
        "rowid:1",
        "messages MATCH 'x'",
        "x'); DROP TABLE messages; --",
        "\\",
        "%",
        "\u{0}",
        "\u{202e}word",
        "😀",
    ];
    let mut queries: Vec<(String, String)> = texts
        .iter()
        .map(|t| (format!("{t:?}"), crate::api::percent_encode(t)))
        .collect();
    // Bytes no text holds: a NUL, invalid UTF-8, a cut percent escape.
    for raw in ["%00", "%FF", "%FF%FE", "word%00word", "%C3", "%zz", "%", ""] {
        queries.push((format!("q={raw} (raw)"), raw.to_owned()));
    }
    // 10,000 terms, separated by `+` (a space in a query string): 2 bytes a
    // term, so the request line (~20 KB) stays within what the runtime
    // takes, and what is judged is the server's answer to the query.
    let many: Vec<&str> = (0..10_000)
        .map(|n| &"abcdefghijklmnopqrstuvwxyz"[n % 26..n % 26 + 1])
        .collect();
    queries.push(("10,000 terms".to_owned(), many.join("+")));
    let mut wrong = Vec::new();
    for (what, encoded) in &queries {
        let path = format!("/api/messages/search?q={encoded}");
        match call(&client, &key, "GET", &path, None) {
            Ok(answer) => {
                if let Err(e) = allowed_answer(&answer, &format!("search {what}")) {
                    wrong.push(if what == "10,000 terms" {
                        format!("{e} (the request's URL was {} bytes)", path.len())
                    } else {
                        e
                    });
                }
            }
            Err(e) => wrong.push(format!("search {what}: {e}")),
        }
    }
    // No `q` at all, and a cursor that no search gave.
    for path in [
        "/api/messages/search".to_owned(),
        "/api/messages/search?q=word&cursor=garbage".to_owned(),
        "/api/messages/search?q=word&cursor=%00".to_owned(),
        "/api/messages/search?q=word&q=word".to_owned(),
    ] {
        let answer = call(&client, &key, "GET", &path, None)?;
        if let Err(e) = allowed_answer(&answer, &path) {
            wrong.push(e);
        }
    }
    expect(wrong.is_empty(), || wrong.join("; "))?;
    let after = search(&client, &key, "word", None, None)?;
    expect(after.ids == [1] && after.complete, || {
        format!(
            "after the hostile queries, \"word\" finds {:?} (complete: {})",
            after.ids, after.complete
        )
    })
}

/// A verification mail's detail carries its code and its link; a mail with
/// neither carries empty lists.
pub(super) fn codes_and_links(suite: &mut Suite) -> Result<()> {
    let key = suite.inbox("e2e-codes")?;
    let to = suite.address("e2e-codes");
    fill(suite, &key, &to)?;
    let verification = super::message_detail(suite, &key, 5)?;
    let codes = verification["codes"].as_array().ok_or_else(|| {
        format!("the verification mail's detail has no codes list: {verification}")
    })?;
    expect(
        codes.len() == 1
            && codes[0]["value"] == VERIFY_CODE
            && codes[0]["context"]
                .as_str()
                .is_some_and(|c| !c.trim().is_empty()),
        || {
            format!(
                "the verification mail's codes are {}, not one {VERIFY_CODE:?} with its context",
                verification["codes"]
            )
        },
    )?;
    let links = verification["links"].as_array().ok_or_else(|| {
        format!("the verification mail's detail has no links list: {verification}")
    })?;
    expect(
        links == &[json!({"url": VERIFY_URL, "text": "Verify your email"})],
        || {
            format!(
                "the verification mail's links are {}, not the one to {VERIFY_URL} (its href's &amp; read as &) with its text",
                verification["links"]
            )
        },
    )?;
    let plain = super::message_detail(suite, &key, 1)?;
    expect(
        plain["codes"] == json!([]) && plain["links"] == json!([]),
        || {
            format!(
                "a mail with no code and no link has codes {} and links {}",
                plain["codes"], plain["links"]
            )
        },
    )
}
