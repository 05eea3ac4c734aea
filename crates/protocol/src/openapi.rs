//! The OpenAPI 3.1 document of the public API, generated from the protocol
//! types (their JSON Schemas come from schemars, so the document cannot drift
//! from what the code serializes). `cargo xtask openapi` writes it to
//! `crates/protocol/openapi.json`, which the router serves; a test checks the
//! file is current.

use crate::api::{
    ClientFrame, CreateKeyRequest, CreatedKey, ForwardRequest, Health, KeyList, LiveEvent,
    MarkRead, Me, Message, MessageList, MessageSummary, ReplyRequest, SearchResults, SendRequest,
    SendResponse, SignupRequest, SignupResponse, Thread, ThreadList, UpdateMe, WaitResult,
    WebhookCreated, WebhookDeliveryList, WebhookEvent, WebhookInfo, WebhookRequest,
};
use crate::limits::{
    DEFAULT_PAGE, DEFAULT_WAIT_SECONDS, HTTP_RELAY_MAX_BYTES, MAX_ATTACHMENT_BODY, MAX_ATTACHMENTS,
    MAX_CLIENT_FRAME, MAX_EVENT_SOCKETS, MAX_JSON_BODY, MAX_KEYS, MAX_MESSAGE_BYTES, MAX_PAGE,
    MAX_QUERY_BYTES, MAX_RECIPIENTS, MAX_REPLAY, MAX_THREAD_MESSAGES, MAX_WAIT_SECONDS,
    MAX_WAITERS, RECIPIENTS_PER_HOUR, RETENTION_BATCH, RETENTION_DAYS, SEND_EMAIL_MAX_BYTES,
    SENDS_PER_HOUR, SENDS_PER_MINUTE,
};
use crate::{ApiError, SERVICE_NAME, VERSION};
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The document, as JSON.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let health = generator.subschema_for::<Health>().to_value();
    let signup_request = generator.subschema_for::<SignupRequest>().to_value();
    let signup_response = generator.subschema_for::<SignupResponse>().to_value();
    let me = generator.subschema_for::<Me>().to_value();
    let list = generator.subschema_for::<MessageList>().to_value();
    let message = generator.subschema_for::<Message>().to_value();
    let summary = generator.subschema_for::<MessageSummary>().to_value();
    let mark_read = generator.subschema_for::<MarkRead>().to_value();
    let thread_list = generator.subschema_for::<ThreadList>().to_value();
    let thread = generator.subschema_for::<Thread>().to_value();
    let send_request = generator.subschema_for::<SendRequest>().to_value();
    let send_response = generator.subschema_for::<SendResponse>().to_value();
    let reply_request = generator.subschema_for::<ReplyRequest>().to_value();
    let forward_request = generator.subschema_for::<ForwardRequest>().to_value();
    let webhook_request = generator.subschema_for::<WebhookRequest>().to_value();
    let webhook_created = generator.subschema_for::<WebhookCreated>().to_value();
    let webhook_info = generator.subschema_for::<WebhookInfo>().to_value();
    let deliveries = generator.subschema_for::<WebhookDeliveryList>().to_value();
    let event = generator.subschema_for::<WebhookEvent>().to_value();
    let search_results = generator.subschema_for::<SearchResults>().to_value();
    let wait_result = generator.subschema_for::<WaitResult>().to_value();
    let live_event = generator.subschema_for::<LiveEvent>().to_value();
    let client_frame = generator.subschema_for::<ClientFrame>().to_value();
    let update_me = generator.subschema_for::<UpdateMe>().to_value();
    let key_list = generator.subschema_for::<KeyList>().to_value();
    let create_key = generator.subschema_for::<CreateKeyRequest>().to_value();
    let created_key = generator.subschema_for::<CreatedKey>().to_value();
    let error = generator.subschema_for::<ApiError>().to_value();
    let schemas = generator.take_definitions(true);

    let json_body =
        |schema: &Value| json!({ "content": { "application/json": { "schema": schema } } });
    let ok = |description: &str, schema: &Value| {
        let mut response = json_body(schema);
        response["description"] = json!(description);
        response
    };
    let errors = |codes: &[(&str, &str)]| -> Map<String, Value> {
        codes
            .iter()
            .map(|(status, description)| {
                let mut response = json_body(&error);
                response["description"] = json!(description);
                ((*status).to_owned(), response)
            })
            .collect()
    };
    let with = |mut responses: Map<String, Value>, status: &str, response: Value| {
        responses.insert(status.to_owned(), response);
        Value::Object(responses)
    };
    let auth_errors = [
        ("401", "The API key is missing, malformed or unknown."),
        (
            "503",
            "A dependency is unavailable, or the deployment is not configured; retry later.",
        ),
    ];
    let id_errors = [
        ("400", "The message id is not a positive integer."),
        ("401", "The API key is missing, malformed or unknown."),
        ("404", "There is no such message in this inbox."),
        ("503", "A dependency is unavailable; retry later."),
    ];
    let id_param = json!({
        "name": "id", "in": "path", "required": true,
        "description": "The message id (per inbox, increasing).",
        "schema": { "type": "integer", "minimum": 1, "maximum": 9_007_199_254_740_991_u64 }
    });
    let thread_errors = [
        ("400", "The thread id is not a positive integer."),
        ("401", "The API key is missing, malformed or unknown."),
        ("404", "There is no such thread in this inbox."),
        ("503", "A dependency is unavailable; retry later."),
    ];
    let thread_param = json!({
        "name": "id", "in": "path", "required": true,
        "description": "The thread id (per inbox). When an original arrives after its replies, their threads become one and the others' ids are gone.",
        "schema": { "type": "integer", "minimum": 1, "maximum": 9_007_199_254_740_991_u64 }
    });
    let bearer = json!([{ "bearerAuth": [] }]);
    let idem_param = json!({
        "name": "Idempotency-Key", "in": "header", "required": false,
        "description": "Makes the request safe to retry: a repeat with the same key within 24 hours answers the first answer (same status and body, with `Idempotent-Replayed: true`) and sends nothing; while the first is still in flight, 409 `conflict` (retry shortly); the same key with another endpoint or body, 409. Only requests that stored a message are remembered (a refused one may be retried with its key).",
        "schema": { "type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[A-Za-z0-9._~-]{1,256}$" }
    });
    let forbidden = (
        "403",
        "The key has the `read` scope, which may not change anything (`forbidden`).",
    );
    let idem_conflict = (
        "409",
        "The Idempotency-Key is in use by a request still in flight, or was used for another request (`conflict`).",
    );
    let key_param = json!({
        "name": "id", "in": "path", "required": true,
        "description": "The key id (from `GET /api/keys`).",
        "schema": { "type": "integer", "minimum": 1, "maximum": 9_007_199_254_740_991_u64 }
    });
    let send_invalid = format!(
        "The body is invalid: an address in `to`, `cc`, `bcc` or `replyTo` is not one plain address \
         (or not an inbox here, for our own domain; the message names it, e.g. `cc[2]`), there is no \
         recipient or more than {MAX_RECIPIENTS}, a header field has CR or LF, there is no body, or an \
         attachment's `filename`, `contentType`, `content` (not base64) or `contentId` is not usable \
         (named, e.g. `attachments[1].content`)."
    );
    let too_large = format!(
        "The body is larger than {MAX_ATTACHMENT_BODY} bytes (or {MAX_JSON_BODY} without attachments, or \
         its fields other than the attachments' content take more than {MAX_JSON_BODY}), or the message \
         with its attachments is larger than the way it leaves takes: the send_email binding \
         {SEND_EMAIL_MAX_BYTES} bytes, the HTTP relay {HTTP_RELAY_MAX_BYTES}, an inbox here {MAX_MESSAGE_BYTES}; \
         or handing it to all its recipients at once would hold more than 64 MiB of copies of it (its size \
         times 1, plus 1 per inbox here and per send_email recipient, plus 4 per HTTP relay call: through \
         the HTTP relay at most 12.8 MiB in effect) \
         (`too_large`, naming `attachments`; for a forward, pointing to `includeAttachments: false`)."
    );
    let attachments_text = format!(
        " `attachments` are files (`filename`, `contentType`, base64 `content`, `contentId` and \
         `disposition: inline` for an image the HTML shows by `cid:`), at most {MAX_ATTACHMENTS}: the body may \
         then be up to {MAX_ATTACHMENT_BODY} bytes. The message is `multipart/mixed` around the body \
         (`multipart/related` for inline images), each file base64 in lines of 76 (a carried message/rfc822 \
         7bit when it can go as it is), non-ASCII names as \
         RFC 2231 parameters. The stored copy lists them, and serves them for download like received ones."
    );

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "InboxKit",
            "version": VERSION,
            "description": format!(
                "Email for AI agents ({SERVICE_NAME}): sign up with one call, receive mail, read it over REST. \
                 Every error is {{\"error\": sentence, \"code\": snake_case}}. JSON bodies are limited to {MAX_JSON_BODY} bytes."
            ),
        },
        "paths": {
            "/api/health": { "get": {
                "operationId": "health", "summary": "Service health.",
                "responses": { "200": ok("The service answers.", &health) }
            }},
            "/api/health/deep": { "get": {
                "operationId": "deepHealth",
                "summary": "Deep health: a Durable Object and its SQLite answer one read.",
                "responses": with(errors(&[
                    ("503", "A Durable Object or its storage is not answering."),
                ]), "200", ok("The service, its Durable Objects and their storage answer.", &health))
            }},
            "/api/signup": { "post": {
                "operationId": "signup",
                "summary": "Create an inbox: returns its address and API key (shown once).",
                "requestBody": { "required": false, "content": { "application/json": { "schema": signup_request } } },
                "responses": with(errors(&[
                    ("400", "Invalid body or handle (the message names the field)."),
                    ("409", "The handle is taken (`handle_taken`)."),
                    ("413", "The body is too large."),
                    ("415", "The body is not JSON."),
                    ("429", "Too many signups from this client address (20 an hour unless configured); retry after `Retry-After` seconds."),
                    ("503", "A dependency is unavailable, or MAIL_DOMAIN is not configured."),
                ]), "201", ok("The inbox was created.", &signup_response))
            }},
            "/api/me": { "get": {
                "operationId": "me", "summary": "The inbox this key belongs to, its retention setting and the key's scope.",
                "security": bearer,
                "responses": with(errors(&auth_errors), "200", ok("The inbox.", &me))
            }, "patch": {
                "operationId": "updateMe",
                "summary": "Set how long messages are kept.",
                "description": format!("`retentionDays` from {} to {}: the inbox's alarm deletes messages received longer ago than that (the oldest first, {RETENTION_BATCH} per pass, passes back to back until none is left); null keeps messages.", RETENTION_DAYS.start(), RETENTION_DAYS.end()),
                "security": bearer,
                "requestBody": { "required": true, "content": { "application/json": { "schema": update_me } } },
                "responses": with(errors(&[
                    ("400", "The body is invalid: `retentionDays` is missing, out of range or not an integer, or a field is unknown."),
                    ("401", "The API key is missing, malformed or unknown."),
                    forbidden,
                    ("415", "The body is not JSON."),
                    ("503", "A dependency is unavailable; retry later."),
                ]), "200", ok("The inbox, as `GET /api/me` shows it.", &me))
            }, "delete": {
                "operationId": "deleteInbox",
                "summary": "Delete the inbox, for good: its mail, webhook, jobs and keys are erased, every key stops working, its live sockets close, mail to its address is refused from then on, and its handle is never given out again. There is no undo.",
                "security": bearer,
                "responses": with(errors(&[
                    ("401", "The API key is missing, malformed or unknown."),
                    forbidden,
                    ("503", "A dependency is unavailable; retry later."),
                ]), "204", json!({ "description": "Deleted." }))
            }},
            "/api/keys": { "get": {
                "operationId": "listKeys", "summary": "The inbox's API keys (never the keys themselves: a name, a scope, a prefix, when made and last used).",
                "security": bearer,
                "responses": with(errors(&auth_errors), "200", ok("The keys, oldest first.", &key_list))
            }, "post": {
                "operationId": "createKey",
                "summary": "Create a key: `full` may do everything, `read` only reads (list, get, raw, attachments, search, wait, events, threads, export, keys). The key is shown only in this answer.",
                "description": format!("At most {MAX_KEYS} keys per inbox. To rotate a key: create a new one, move your agent to it, then delete the old one."),
                "security": bearer,
                "requestBody": { "required": true, "content": { "application/json": { "schema": create_key } } },
                "responses": with(errors(&[
                    ("400", "The body is invalid: `name` is empty, longer than 100 characters or has control characters, or `scope` is not `full` or `read`."),
                    ("401", "The API key is missing, malformed or unknown."),
                    forbidden,
                    ("409", "The inbox already has the most keys it may (`conflict`)."),
                    ("415", "The body is not JSON."),
                    ("503", "A dependency is unavailable; retry later."),
                ]), "201", ok("The key, with `apiKey` shown this once.", &created_key))
            }},
            "/api/keys/{id}": { "delete": {
                "operationId": "deleteKey",
                "summary": "Delete a key: it stops working at once. The inbox's last `full` key cannot be deleted.",
                "security": bearer,
                "parameters": [key_param],
                "responses": with(errors(&[
                    ("400", "The key id is not a positive integer."),
                    ("401", "The API key is missing, malformed or unknown."),
                    forbidden,
                    ("404", "There is no such key in this inbox."),
                    ("409", "It is the inbox's last `full` key (`conflict`)."),
                    ("503", "A dependency is unavailable; retry later."),
                ]), "204", json!({ "description": "Deleted." }))
            }},
            "/api/messages": { "post": {
                "operationId": "sendMessage",
                "summary": "Send a message from this inbox. A recipient that is an inbox of this deployment gets it directly; others go through the configured relay.",
                "description": format!(
                    "`to` is an address or a list; `cc`, `bcc` and `replyTo` likewise. At most {MAX_RECIPIENTS} recipients \
                     in `to`, `cc` and `bcc` together, each delivered once (duplicates, compared without case, keep their first \
                     place). Bcc recipients get the message but no header names them. \
                     The message is stored in this inbox as `direction: \"outbound\"` whatever its fate, with each recipient's \
                     outcome in `recipients` (also on `GET /api/messages/{{id}}`; mail sent before recipients were recorded lists none). \
                     `status` is `queued` while any recipient is, `failed` when every recipient failed, and otherwise `sent`; \
                     when some recipients failed, `statusReason` says how many (\"2 of 3 recipients failed; see recipients.\"). \
                     An inbox may send {SENDS_PER_MINUTE} messages a minute and {SENDS_PER_HOUR} an hour, \
                     to at most {RECIPIENTS_PER_HOUR} recipients an hour in all.{attachments_text}"
                ),
                "security": bearer,
                "parameters": [idem_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": send_request } } },
                "responses": with(errors(&[
                    ("400", send_invalid.as_str()),
                    ("401", "The API key is missing, malformed or unknown."),
                    forbidden, idem_conflict,
                    ("413", too_large.as_str()),
                    ("415", "The body is not JSON."),
                    ("429", "Too many sends (messages a minute or an hour) or recipients an hour; retry after `Retry-After` seconds."),
                    ("503", "No relay is configured for outside addresses (`not_configured`), or a dependency is unavailable."),
                    ("507", "This inbox has reached its storage cap (`storage_full`)."),
                ]), "201", ok("The message was stored; `status` is `sent` or `failed` (or `queued` if interrupted), and each recipient has its own outcome.", &send_response))
            }, "get": {
                "operationId": "listMessages", "summary": "Messages, newest first.",
                "security": bearer,
                "parameters": [
                    { "name": "limit", "in": "query", "description": "Page size.",
                      "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE } },
                    { "name": "cursor", "in": "query", "description": "Only ids below this (the previous page's nextCursor).",
                      "schema": { "type": "integer", "minimum": 1, "maximum": 9_007_199_254_740_991_u64 } },
                    { "name": "since", "in": "query", "description": "Only messages received after this time (RFC 3339).",
                      "schema": { "type": "string", "format": "date-time" } },
                    { "name": "unread", "in": "query", "description": "When true, only unread messages.",
                      "schema": { "type": "boolean", "default": false } }
                ],
                "responses": with(errors(&[
                    ("400", "A query parameter is invalid, unknown or repeated."),
                    auth_errors[0], auth_errors[1],
                ]), "200", ok("A page of messages.", &list))
            }},
            "/api/messages/search": { "get": {
                "operationId": "searchMessages",
                "summary": "Full-text search, best match first.",
                "description": format!(
                    "The query language of mail clients: words (all must match; `word*` is a prefix), `\"a phrase\"`, \
                     `-word` (must not match), `OR` between terms (`a OR b c` is (a or b) and c), `from:`, `to:`, `subject:` \
                     (a word, a prefix or a quoted phrase), `has:attachment`, `is:unread`, `is:read`, `in:inbox`, `in:sent`, \
                     `before:YYYY-MM-DD` (received before that day, UTC), `after:YYYY-MM-DD` (on or after it), `thread:N`. \
                     Case and diacritics are folded (`Muller` finds `Müller`); Chinese, Japanese and Korean words are found \
                     inside unspaced text. Searched: the subject, the sender's name and address, the recipients, the text (or \
                     the HTML's text; its first 128 KiB) and the attachments' names. Ranked by bm25, the subject weighing \
                     most, then the sender; with only filters, newest first. At most {MAX_QUERY_BYTES} bytes and 32 terms. \
                     Any query answers 200 or 400 saying what is wrong. Mail stored before search existed is indexed after \
                     an upgrade in bounded batches: `complete` is false until then. Snippets are untrusted (the sender's text)."
                ),
                "security": bearer,
                "parameters": [
                    { "name": "q", "in": "query", "required": true, "description": "The query (its bytes, UTF-8, at most the maximum given).",
                      "schema": { "type": "string", "minLength": 1, "maxLength": MAX_QUERY_BYTES } },
                    { "name": "limit", "in": "query", "description": "Page size.",
                      "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE } },
                    { "name": "cursor", "in": "query", "description": "The previous page's nextCursor, as it is. A page is a place in the ranking of the messages that existed when the first page was asked for: new mail is not added to a search's pages, though a change meanwhile (new mail, a deletion) may shift the ranking so that a later page repeats or skips a result.",
                      "schema": { "type": "string", "pattern": "^[0-9]{1,16}\\.[0-9]{1,16}$" } }
                ],
                "responses": with(errors(&[
                    ("400", "The query is invalid (the message says what is wrong), or a parameter is invalid, unknown or repeated."),
                    auth_errors[0], auth_errors[1],
                ]), "200", ok("A page of results, each a summary with a snippet.", &search_results))
            }},
            "/api/messages/wait": { "get": {
                "operationId": "waitForMessage",
                "summary": "Wait for the next inbound message (optionally one matching a search query), without polling.",
                "description": format!(
                    "Answers at once with the first inbound message whose id is above `after` and that matches `q`, if one is \
                     stored; otherwise the inbox wakes this request the moment such mail is stored (inbound, or sent by another \
                     inbox here), or answers `{{\"message\": null}}` at the timeout. The message comes whole, with its `codes` \
                     and `links` (untrusted: the sender's), and the `after` the wait used. Wait again with `after` set to the id you \
                     got (or to the answer's `after` after a timeout, or the same `after` after a 503), so nothing is missed. \
                     At most {MAX_WAITERS} waits per inbox at once: one more ends the oldest early, answered as at its timeout \
                     (a wait whose client went away keeps its place until then). A 503 `unavailable` means the inbox \
                     restarted during the wait (a deploy): wait again."
                ),
                "security": bearer,
                "parameters": [
                    { "name": "after", "in": "query", "description": "Only messages with a greater id (0: any). Default: the newest id when the call arrives, so only new mail.",
                      "schema": { "type": "integer", "minimum": 0, "maximum": 9_007_199_254_740_991_u64 } },
                    { "name": "timeout", "in": "query", "description": "Seconds to wait.",
                      "schema": { "type": "integer", "minimum": 1, "maximum": MAX_WAIT_SECONDS, "default": DEFAULT_WAIT_SECONDS } },
                    { "name": "q", "in": "query", "description": "Only messages matching this search query (see searchMessages).",
                      "schema": { "type": "string", "minLength": 1, "maxLength": MAX_QUERY_BYTES } }
                ],
                "responses": with(errors(&[
                    ("400", "`after`, `timeout` or `q` is invalid, or a parameter is unknown or repeated."),
                    auth_errors[0],
                    ("503", "The inbox restarted during the wait, or a dependency is unavailable: wait again."),
                ]), "200", ok("The message, or null at the timeout.", &wait_result))
            }},
            "/api/events": { "get": {
                "operationId": "liveEvents",
                "summary": "Live events over a WebSocket (RFC 6455; OpenAPI can describe only the upgrade).",
                "description": format!(
                    "Connect with `Upgrade: websocket` and the key in `Authorization: Bearer`, or, from a browser, as the \
                     subprotocol `inboxkit.key.<key>` (echoed in `Sec-WebSocket-Protocol`). The server sends text frames \
                     (`LiveEvent`): `message.received` when mail is stored, `message.sent` when a sent message leaves the \
                     queue, each with the message's summary. The client may send (`ClientFrame`) `{{\"type\": \"subscribe\", \
                     \"after\": <id>}}` to be sent the events of messages stored after that id first (oldest first, at most \
                     {MAX_REPLAY}; `subscribed` ends the replay, with `more: true` when there were more: subscribe again from \
                     the last id), and `{{\"type\":\"ping\"}}` (these exact bytes are answered by the runtime without waking the inbox), \
                     answered `{{\"type\":\"pong\"}}`. Sent mail still queued is not replayed: its event comes live. A frame it cannot \
                     take (over {MAX_CLIENT_FRAME} bytes, or unreadable) is answered with `error`; the socket stays open. \
                     The connection is hibernatable: an idle one costs the inbox nothing. At most {MAX_EVENT_SOCKETS} per \
                     inbox (429 beyond). After a disconnect, reconnect and subscribe from the last id seen."
                ),
                "security": bearer,
                "parameters": [
                    { "name": "Upgrade", "in": "header", "required": true, "schema": { "const": "websocket" } },
                    { "name": "Sec-WebSocket-Protocol", "in": "header", "description": "`inboxkit.key.<key>`, for clients that cannot send Authorization.",
                      "schema": { "type": "string" } }
                ],
                "responses": with(errors(&[
                    ("400", "Not a WebSocket upgrade."),
                    ("429", "This inbox already has the most live sockets open."),
                    auth_errors[0], auth_errors[1],
                ]), "101", json!({
                    "description": "Switching protocols: the socket is open. Frames sent: LiveEvent; frames received: ClientFrame.",
                    "x-frames": { "server": live_event, "client": client_frame }
                }))
            }},
            "/api/messages/{id}": {
                "get": {
                    "operationId": "getMessage",
                    "summary": "The whole message. Does not mark it read.",
                    "security": bearer,
                    "parameters": [id_param],
                    "responses": with(errors(&id_errors), "200", ok("The message.", &message))
                },
                "patch": {
                    "operationId": "markMessage", "summary": "Mark a message read or unread.",
                    "security": bearer,
                    "parameters": [id_param],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": mark_read } } },
                    "responses": with(errors(&[
                        ("400", "The id or the body is invalid."),
                        ("401", "The API key is missing, malformed or unknown."),
                        ("404", "There is no such message in this inbox."),
                        ("415", "The body is not JSON."),
                        ("503", "A dependency is unavailable; retry later."),
                    ]), "200", ok("The updated summary.", &summary))
                },
                "delete": {
                    "operationId": "deleteMessage",
                    "summary": "Delete a message: its raw bytes, its detail, its search entry, its place in its thread (a thread left empty goes) and its storage count, at once; its pending webhook events are dropped and a send not yet handed over is cancelled.",
                    "security": bearer,
                    "parameters": [id_param],
                    "responses": with(errors(&[
                        ("400", "The message id is not a positive integer."),
                        ("401", "The API key is missing, malformed or unknown."),
                        forbidden,
                        ("404", "There is no such message in this inbox."),
                        ("503", "A dependency is unavailable; retry later."),
                    ]), "204", json!({ "description": "Deleted." }))
                }
            },
            "/api/messages/{id}/reply": { "post": {
                "operationId": "replyToMessage",
                "summary": "Reply to a message (or, with `replyAll`, to everyone on it). It joins the message's thread.",
                "description": "To is the original's Reply-To, or its From (for a message this inbox sent, its To); `replyAll` adds its To and Cc. This inbox is never a recipient (with or without a `+tag`), and no address twice. The subject is `Re: ` and the original's, with any reply or forward prefixes in common languages (Re:, RE:, AW:, SV:, Fwd:, ...) removed first, so never doubled. In-Reply-To is its Message-ID; References its References and its Message-ID (the thread's root and the latest 19 at most). The original is quoted below the new text as mail clients do, in the text part (`On ..., Name <address> wrote:` and `> ` lines) and, when either has HTML, in an HTML part (a `gmail_quote` blockquote); at most 128 KiB of its text and of its HTML. A reply-all that would reach more than 50 addresses is refused (409). It is then sent like any message (the same limits; an inbox of this deployment gets it directly) and answered likewise. `attachments` as for a send; the original's are not re-attached.",
                "security": bearer,
                "parameters": [id_param, idem_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": reply_request } } },
                "responses": with(errors(&[
                    ("400", "The body or the id is invalid."),
                    ("409", "The message has nobody to reply to but this inbox itself, or a reply-all would reach more than 50 addresses, or the Idempotency-Key is in flight or was used for another request (`conflict`)."),
                    ("401", "The API key is missing, malformed or unknown."),
                    forbidden,
                    ("404", "There is no such message in this inbox."),
                    ("413", too_large.as_str()),
                    ("415", "The body is not JSON."),
                    ("429", "Too many sends; retry after `Retry-After` seconds."),
                    ("503", "No relay is configured for outside addresses (`not_configured`), or a dependency is unavailable."),
                    ("507", "This inbox has reached its storage cap (`storage_full`)."),
                ]), "201", ok("The reply was stored; as for a send.", &send_response))
            }},
            "/api/messages/{id}/forward": { "post": {
                "operationId": "forwardMessage",
                "summary": "Forward a message to new recipients, with an optional note above it. It starts a new thread.",
                "description": "Recipients as for a send (`to`, `cc`, `bcc`). The subject is `Fwd: ` and the original's (an existing forward prefix is not doubled); the body is the note, then Gmail's `---------- Forwarded message ---------` block with the original's From, Date, Subject, To and Cc, then its text (and its HTML, when it has one). The original's attachments go with it, decoded and re-encoded byte for byte (inline ones stay inline, with their Content-ID; a forwarded message it carries goes whole), unless `includeAttachments` is false; `attachments` adds files after them, as for a send.",
                "security": bearer,
                "parameters": [id_param, idem_param],
                "requestBody": { "required": true, "content": { "application/json": { "schema": forward_request } } },
                "responses": with(errors(&[
                    ("400", send_invalid.as_str()),
                    ("401", "The API key is missing, malformed or unknown."),
                    forbidden, idem_conflict,
                    ("404", "There is no such message in this inbox."),
                    ("413", too_large.as_str()),
                    ("415", "The body is not JSON."),
                    ("429", "Too many sends; retry after `Retry-After` seconds."),
                    ("503", "No relay is configured for outside addresses (`not_configured`), or a dependency is unavailable."),
                    ("507", "This inbox has reached its storage cap (`storage_full`)."),
                ]), "201", ok("The forward was stored; as for a send.", &send_response))
            }},
            "/api/messages/{id}/raw": { "get": {
                "operationId": "getRawMessage", "summary": "The message exactly as received (RFC 822 bytes).",
                "security": bearer,
                "parameters": [id_param],
                "responses": with(errors(&id_errors), "200", json!({
                    "description": "The raw message.",
                    "content": { "message/rfc822": { "schema": { "type": "string", "contentMediaType": "message/rfc822" } } }
                }))
            }},
            "/api/messages/{id}/attachments/{attachmentId}": { "get": {
                "operationId": "getAttachment",
                "summary": "An attachment's decoded bytes (base64, quoted-printable, uuencode and 7/8-bit decoded), streamed.",
                "description": format!(
                    "`Content-Type` is the declared type when it is a valid media type (with its charset, for text), \
                     else `application/octet-stream`; `Content-Disposition` is `attachment` with the name cleaned \
                     (path separators, control and bidi characters and leading dots removed, at most 200 bytes) as \
                     `filename` (ASCII) and `filename*` (UTF-8, RFC 5987); `Content-Length` is the decoded size; \
                     `X-Content-Type-Options: nosniff`. Up to {MAX_MESSAGE_BYTES} bytes, decoded from the stored \
                     message as it is read (never buffered whole). The bytes, the name and the type are the \
                     sender's: untrusted."
                ),
                "security": bearer,
                "parameters": [id_param, {
                    "name": "attachmentId", "in": "path", "required": true,
                    "description": "The attachment's `id` from the message: its MIME section number.",
                    "schema": { "type": "string", "pattern": "^[1-9][0-9]{0,5}(\\.[1-9][0-9]{0,5})*$", "maxLength": 64 }
                }],
                "responses": with(errors(&[
                    ("400", "The message id or the attachment id is invalid."),
                    ("401", "The API key is missing, malformed or unknown."),
                    ("404", "There is no such message in this inbox, or it has no such attachment."),
                    ("503", "A dependency is unavailable; retry later."),
                ]), "200", json!({
                    "description": "The attachment's bytes.",
                    "headers": {
                        "Content-Disposition": { "schema": { "type": "string" } },
                        "Content-Length": { "schema": { "type": "integer" } },
                        "X-Content-Type-Options": { "schema": { "type": "string", "const": "nosniff" } }
                    },
                    "content": { "application/octet-stream": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } },
                                 "*/*": { "schema": { "type": "string" } } }
                }))
            }},
            "/api/threads": { "get": {
                "operationId": "listThreads", "summary": "Conversations, latest activity first.",
                "description": "A message joins the thread of a stored message (inbound or outbound) whose Message-ID is its own or is named in its In-Reply-To or References; otherwise it starts one. Previews and subjects are written by senders: untrusted.",
                "security": bearer,
                "parameters": [
                    { "name": "limit", "in": "query", "description": "Page size.",
                      "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE } },
                    { "name": "cursor", "in": "query", "description": "Only threads whose latest message id is below this (the previous page's nextCursor).",
                      "schema": { "type": "integer", "minimum": 1, "maximum": 9_007_199_254_740_991_u64 } },
                    { "name": "unread", "in": "query", "description": "When true, only threads with unread messages.",
                      "schema": { "type": "boolean", "default": false } }
                ],
                "responses": with(errors(&[
                    ("400", "A query parameter is invalid, unknown or repeated."),
                    auth_errors[0], auth_errors[1],
                ]), "200", ok("A page of threads.", &thread_list))
            }},
            "/api/threads/{id}": {
                "get": {
                    "operationId": "getThread",
                    "summary": format!("A thread and its messages, oldest first (the latest {MAX_THREAD_MESSAGES}), each with its extractedText. Marks nothing read."),
                    "security": bearer,
                    "parameters": [thread_param],
                    "responses": with(errors(&thread_errors), "200", ok("The thread.", &thread))
                },
                "delete": {
                    "operationId": "deleteThread",
                    "summary": "Delete a thread and every message of it (their raw bytes, and their pending webhook events and sends).",
                    "security": bearer,
                    "parameters": [thread_param],
                    "responses": with(errors(&thread_errors), "204", json!({ "description": "Deleted." }))
                }
            },
            "/api/webhook": {
                "put": {
                    "operationId": "setWebhook",
                    "summary": "Set (or replace) the webhook. The secret is shown only here.",
                    "security": bearer,
                    "requestBody": { "required": true, "content": { "application/json": { "schema": webhook_request } } },
                    "responses": with(errors(&[
                        ("400", "The URL is not https to a public host (loopback, private, link-local, CGNAT, multicast and metadata addresses are refused in every spelling)."),
                        ("401", "The API key is missing, malformed or unknown."),
                        ("415", "The body is not JSON."),
                        ("503", "A dependency is unavailable; retry later."),
                    ]), "200", ok("The webhook, with its signing secret.", &webhook_created))
                },
                "get": {
                    "operationId": "getWebhook", "summary": "The webhook, without its secret.",
                    "security": bearer,
                    "responses": with(errors(&[
                        ("401", "The API key is missing, malformed or unknown."),
                        ("404", "This inbox has no webhook."),
                        ("503", "A dependency is unavailable; retry later."),
                    ]), "200", ok("The webhook.", &webhook_info))
                },
                "delete": {
                    "operationId": "deleteWebhook", "summary": "Remove the webhook and drop its pending events.",
                    "security": bearer,
                    "responses": with(errors(&auth_errors), "204", json!({ "description": "Removed (or there was none)." }))
                }
            },
            "/api/webhook/deliveries": { "get": {
                "operationId": "listWebhookDeliveries", "summary": "The most recent delivery attempts, newest first.",
                "security": bearer,
                "responses": with(errors(&auth_errors), "200", ok("Up to 100 attempts.", &deliveries))
            }},
            "/api/export": { "get": {
                "operationId": "exportInbox",
                "summary": "Every message's raw bytes as one mbox file (mboxrd), oldest first, streamed.",
                "description": "Each message is a `From <sender> <date>` line, its raw bytes with every line matching `^>*From ` given one more `>` (mboxrd: a reader removes one `>` from such lines to get the bytes back, e.g. Python's `mailbox.mbox` followed by that unquoting), a line break if it did not end with one, and a blank line. Streamed from storage: an inbox of any size is never held in memory. A message deleted while the export runs is left out; should its bytes vanish mid-way the body ends early with an error.",
                "security": bearer,
                "responses": with(errors(&auth_errors), "200", json!({
                    "description": "The mbox file.",
                    "content": { "application/mbox": { "schema": { "type": "string", "format": "binary" } } }
                }))
            }},
            "/api/openapi.json": { "get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": { "200": { "description": "OpenAPI 3.1.", "content": { "application/json": { "schema": { "type": "object" } } } } }
            }},
            "/llms.txt": { "get": {
                "operationId": "llmsTxt", "summary": "The API explained for an agent, in plain text.",
                "responses": { "200": { "description": "Plain text.", "content": { "text/plain": { "schema": { "type": "string" } } } } }
            }}
        },
        "webhooks": {
            "messageEvent": { "post": {
                "summary": "`message.received` or `message.sent`, POSTed to the inbox's webhook URL.",
                "description": "Signed twice with the webhook secret's key: `X-InboxKit-Signature: sha256=<hex HMAC-SHA256(key, body)>`, and Standard Webhooks' `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256(key, \"{id}.{timestamp}.{body}\")>` (the key is the secret after `whsec_`, base64-decoded). Any 2xx ends delivery; anything else, or no answer within 5 s, is retried after 10 s, 1 min, 10 min, 1 h and 6 h; 410 Gone removes the webhook. `eventId` (= `webhook-id`) is stable across retries.",
                "requestBody": { "required": true, "content": { "application/json": { "schema": event } } },
                "responses": { "200": { "description": "Any 2xx acknowledges the event." } }
            }}
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "description": "The apiKey from signup: `ik_` and 43 base64url characters." }
            }
        }
    })
}
