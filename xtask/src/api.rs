//! The service's API and mail endpoint as every workerd run drives them (the
//! end-to-end suite, soak, rollout, latency, bench, schemathesis): signing up,
//! authenticated calls, delivering mail through wrangler's local Email Routing
//! endpoint, filling an inbox, paging through one with the cursor, and
//! searching one.

use crate::Result;
use crate::http::{Client, Response};
use serde_json::Value as Json;

/// `POST /api/signup` for `handle`, the answer as it is.
pub(crate) fn signup(client: &Client, handle: &str) -> Result<Response> {
    client.post_json("/api/signup", &format!(r#"{{"handle":"{handle}"}}"#))
}

/// Signs `handle` up and returns its key; anything but a 201 with a key fails.
pub(crate) fn signup_key(client: &Client, handle: &str) -> Result<String> {
    let created = signup(client, handle)?;
    if created.status != 201 {
        return Err(format!(
            "signup of {handle}: {} {}",
            created.status, created.body
        ));
    }
    created
        .string("apiKey")
        .map_err(|e| format!("signup of {handle}: {e}"))
}

/// An authenticated call, with a JSON body when one is given.
pub(crate) fn call(
    client: &Client,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Json>,
) -> Result<Response> {
    call_with(client, key, method, path, &[], body)
}

/// [`call`] with more request headers.
pub(crate) fn call_with(
    client: &Client,
    key: &str,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: Option<&Json>,
) -> Result<Response> {
    let auth = format!("Bearer {key}");
    let text = body.map(Json::to_string);
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    if text.is_some() {
        headers.push(("content-type", "application/json"));
    }
    client.request(method, path, &headers, text.as_deref().map(str::as_bytes))
}

/// `PATCH /api/messages/:id` setting the read flag; anything but a 200 fails.
pub(crate) fn mark_read(client: &Client, key: &str, id: u64, read: bool) -> Result<Response> {
    let answer = call(
        client,
        key,
        "PATCH",
        &format!("/api/messages/{id}"),
        Some(&serde_json::json!({ "read": read })),
    )?;
    if answer.status != 200 {
        return Err(format!("marking {id}: {} {}", answer.status, answer.body));
    }
    Ok(answer)
}

/// Every message summary of an inbox, newest first, read page by page with
/// `nextCursor` (a page of `limit`). A page that is not a 200 with a
/// `messages` list fails.
pub(crate) fn list_all(client: &Client, key: &str, limit: usize) -> Result<Vec<Json>> {
    let mut messages = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/messages?limit={limit}&cursor={c}"),
            None => format!("/api/messages?limit={limit}"),
        };
        let page = call(client, key, "GET", &path, None)?;
        if page.status != 200 {
            return Err(format!("{path}: {} {}", page.status, page.body));
        }
        let mut body = page.parsed()?;
        let listed = body["messages"]
            .as_array_mut()
            .ok_or_else(|| format!("{path}: no messages list in {}", page.body))?;
        messages.append(listed);
        match &body["nextCursor"] {
            Json::Null => break,
            next => {
                cursor = Some(
                    next.as_u64()
                        .ok_or_else(|| format!("{path}: nextCursor {next} is not a number"))?,
                );
            }
        }
    }
    Ok(messages)
}

/// The ids of message summaries, in their order; a summary without one fails.
pub(crate) fn ids(messages: &[Json]) -> Result<Vec<u64>> {
    messages
        .iter()
        .map(|m| {
            m["id"]
                .as_u64()
                .ok_or_else(|| format!("a listed message has no id: {m}"))
        })
        .collect()
}

/// Whether an answer of wrangler's local email endpoint is its own refusal
/// (it parses every mail before handing it to the Worker): its fixed 400
/// sentences, or a 500 from a crash in its own entry worker.
pub(crate) fn refused_by_wrangler(answer: &Response) -> bool {
    (answer.status == 400
        && [
            "Invalid email.",
            "Email message size is bigger",
            "Email could not be parsed",
        ]
        .iter()
        .any(|s| answer.body.starts_with(s)))
        || (answer.status == 500
            && answer
                .body
                .contains("miniflare/dist/src/workers/core/entry.worker.js"))
}

/// Delivers `raw` through wrangler's local Email Routing endpoint, counted
/// in the client's session.
pub(crate) fn deliver(client: &Client, from: &str, to: &str, raw: &[u8]) -> Result<Response> {
    let path = format!(
        "/cdn-cgi/handler/email?from={}&to={}",
        percent_encode(from),
        percent_encode(to)
    );
    let answer = client.request(
        "POST",
        &path,
        &[("content-type", "message/rfc822")],
        Some(raw),
    );
    client
        .mail_counts()
        .count(answer.as_ref().is_ok_and(refused_by_wrangler));
    answer
}

/// [`deliver`], where anything but a 200 fails.
pub(crate) fn deliver_ok(client: &Client, from: &str, to: &str, raw: &[u8]) -> Result<()> {
    let answer = deliver(client, from, to, raw)?;
    if answer.status != 200 {
        return Err(format!(
            "delivery to {to}: {} {}",
            answer.status, answer.body
        ));
    }
    Ok(())
}

/// `text` as a query value: unreserved bytes as they are, every other byte
/// (space, `"`, `:`, UTF-8 bytes) as `%XX`.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A small distinct message: the `n`-th of series `tag`, to `to`.
pub(crate) fn small_message(to: &str, tag: &str, n: usize) -> Vec<u8> {
    format!(
        "From: s{n}@example.com\r\nTo: {to}\r\nMessage-ID: <{tag}-{n}@example.com>\r\nSubject: {tag} {n}\r\n\r\nmessage {n}\r\n"
    )
    .into_bytes()
}

/// Delivers `count` distinct small messages ([`small_message`]) to `to` from
/// `threads` threads; returns what failed.
pub(crate) fn deliver_many(
    client: &Client,
    to: &str,
    count: usize,
    threads: usize,
    tag: &str,
) -> Vec<String> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for n in (worker..count).step_by(threads) {
                        let raw = small_message(to, tag, n);
                        match deliver(client, "s@example.com", to, &raw) {
                            Ok(r) if r.status == 200 => {}
                            Ok(r) => failures.push(format!("{n}: {} {}", r.status, r.body)),
                            Err(e) => failures.push(format!("{n}: {e}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["a thread panicked".into()])
            })
            .collect()
    })
}

/// Signs `handle` up on `domain` and fills its inbox with `count` small
/// messages (series `tag`, from `threads` threads); returns its key.
pub(crate) fn filled_inbox(
    client: &Client,
    handle: &str,
    domain: &str,
    count: usize,
    threads: usize,
    tag: &str,
) -> Result<String> {
    let key = signup_key(client, handle)?;
    let failures = deliver_many(client, &format!("{handle}@{domain}"), count, threads, tag);
    if !failures.is_empty() {
        return Err(format!(
            "filling {handle}: {} of {count} deliveries failed, e.g. {:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        ));
    }
    Ok(key)
}

/// One page of `GET /api/messages/search`, read strictly: a 200 with a
/// `messages` list (each with an id and a snippet), `nextCursor` a string or
/// null, and `complete` a boolean.
#[derive(Debug)]
pub(crate) struct SearchPage {
    pub(crate) ids: Vec<u64>,
    pub(crate) next_cursor: Option<String>,
    pub(crate) complete: bool,
}

/// The path of a search for `q` (percent-encoded), with `limit` and
/// `cursor` when given.
pub(crate) fn search_path(q: &str, limit: Option<usize>, cursor: Option<&str>) -> String {
    let mut path = format!("/api/messages/search?q={}", percent_encode(q));
    if let Some(limit) = limit {
        path.push_str(&format!("&limit={limit}"));
    }
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={}", percent_encode(cursor)));
    }
    path
}

/// Reads a search answer as a [`SearchPage`]; anything else fails, naming
/// `what` (the query) and the answer.
pub(crate) fn search_page_of(answer: &Response, what: &str) -> Result<SearchPage> {
    if answer.status != 200 {
        return Err(format!("search {what}: {} {}", answer.status, answer.body));
    }
    let body = answer.parsed().map_err(|e| format!("search {what}: {e}"))?;
    let messages = body["messages"]
        .as_array()
        .cloned()
        .ok_or_else(|| format!("search {what}: no messages list in {}", answer.body))?;
    for m in &messages {
        // A message summary, with its snippet.
        if !m["snippet"].is_string() || !m["direction"].is_string() || !m["read"].is_boolean() {
            return Err(format!(
                "search {what}: a result that is not a summary with a snippet string: {m}"
            ));
        }
    }
    let next_cursor = match body.get("nextCursor") {
        None => {
            return Err(format!("search {what}: no nextCursor in {}", answer.body));
        }
        Some(Json::Null) => None,
        Some(Json::String(c)) => Some(c.clone()),
        Some(other) => {
            return Err(format!(
                "search {what}: nextCursor is {other}, not a string or null, in {}",
                answer.body
            ));
        }
    };
    let complete = body["complete"]
        .as_bool()
        .ok_or_else(|| format!("search {what}: no boolean complete in {}", answer.body))?;
    Ok(SearchPage {
        ids: ids(&messages).map_err(|e| format!("search {what}: {e}"))?,
        next_cursor,
        complete,
    })
}

/// One page of a search for `q`.
pub(crate) fn search(
    client: &Client,
    key: &str,
    q: &str,
    limit: Option<usize>,
    cursor: Option<&str>,
) -> Result<SearchPage> {
    let path = search_path(q, limit, cursor);
    let answer = call(client, key, "GET", &path, None)?;
    search_page_of(&answer, &format!("{q:?}"))
}

/// Every match of a search for `q`, page by page with `nextCursor` (pages of
/// `limit`), in the order given; and whether every page said `complete`.
/// More than 1,000 pages fails (a cursor that never ends).
pub(crate) fn search_all(
    client: &Client,
    key: &str,
    q: &str,
    limit: usize,
) -> Result<(Vec<u64>, bool)> {
    let mut seen = Vec::new();
    let mut complete = true;
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page = search(client, key, q, Some(limit), cursor.as_deref())?;
        if page.ids.len() > limit {
            return Err(format!(
                "search {q:?} with limit={limit} gave a page of {}",
                page.ids.len()
            ));
        }
        seen.extend(page.ids);
        complete &= page.complete;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok((seen, complete)),
        }
    }
    Err(format!(
        "search {q:?}: still a nextCursor after 1,000 pages"
    ))
}
