//! The tools: what each is called and says to a model, its schemas, the REST
//! request its arguments make, and how that request's answer becomes the
//! tool's result.
//!
//! A tool call is turned into the very HTTP request a REST client would send
//! (method, path, query, body, `Idempotency-Key`), and that request goes
//! through the REST routes' own code to become an [`ApiCall`]: the two cannot
//! disagree on what a call means, what it checks or what it may change.
//!
//! [`ApiCall`]: protocol::wire::ApiCall

use super::schema::{component, extended};
use crate::HttpRequest;
use crate::error::error_of;
use base64::Engine as _;
use protocol::Reply;
use protocol::lifecycle::IDEMPOTENCY_HEADER;
use protocol::limits::{DEFAULT_PAGE, DEFAULT_WAIT_SECONDS, MAX_PAGE, MAX_WAIT_SECONDS};
use protocol::wire::Access;
use serde_json::{Map, Value, json};

/// How many characters of each body (`text`, `html`, `extractedText`) a
/// message in a tool result carries unless the call asks for fewer or more.
pub const DEFAULT_BODY_CHARS: u64 = 20_000;
/// The most characters of each body one call may ask for.
pub const MAX_BODY_CHARS: u64 = 100_000;
/// The largest attachment `get_attachment` returns (decoded bytes); a larger
/// one is fetched over REST.
pub const MAX_ATTACHMENT_BYTES: usize = 2 * 1024 * 1024;

/// Every tool, in the order `tools/list` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolName {
    /// `whoami`: `GET /api/me`.
    Whoami,
    /// `list_messages`: `GET /api/messages`.
    ListMessages,
    /// `get_message`: `GET /api/messages/:id`.
    GetMessage,
    /// `search_messages`: `GET /api/messages/search`.
    SearchMessages,
    /// `wait_for_message`: `GET /api/messages/wait`.
    WaitForMessage,
    /// `send_message`: `POST /api/messages`.
    SendMessage,
    /// `reply_to_message`: `POST /api/messages/:id/reply`.
    ReplyToMessage,
    /// `forward_message`: `POST /api/messages/:id/forward`.
    ForwardMessage,
    /// `list_threads`: `GET /api/threads`.
    ListThreads,
    /// `get_thread`: `GET /api/threads/:id`.
    GetThread,
    /// `mark_read`: `PATCH /api/messages/:id`.
    MarkRead,
    /// `delete_message`: `DELETE /api/messages/:id`.
    DeleteMessage,
    /// `delete_thread`: `DELETE /api/threads/:id`.
    DeleteThread,
    /// `get_attachment`: `GET /api/messages/:id/attachments/:attachmentId`.
    GetAttachment,
}

/// A tool's behaviour hints (MCP `annotations`).
#[derive(Debug, Clone, Copy)]
struct Hints {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool,
}

const READS: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

/// Sends mail: reaches the outside world; retried safely only with an
/// `idempotencyKey`.
const SENDS: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: false,
    open_world: true,
};

impl ToolName {
    /// Every tool.
    pub const ALL: [ToolName; 14] = [
        ToolName::Whoami,
        ToolName::ListMessages,
        ToolName::GetMessage,
        ToolName::SearchMessages,
        ToolName::WaitForMessage,
        ToolName::SendMessage,
        ToolName::ReplyToMessage,
        ToolName::ForwardMessage,
        ToolName::ListThreads,
        ToolName::GetThread,
        ToolName::MarkRead,
        ToolName::DeleteMessage,
        ToolName::DeleteThread,
        ToolName::GetAttachment,
    ];

    /// The tool called `name`.
    pub fn parse(name: &str) -> Option<ToolName> {
        ToolName::ALL.into_iter().find(|tool| tool.as_str() == name)
    }

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::Whoami => "whoami",
            ToolName::ListMessages => "list_messages",
            ToolName::GetMessage => "get_message",
            ToolName::SearchMessages => "search_messages",
            ToolName::WaitForMessage => "wait_for_message",
            ToolName::SendMessage => "send_message",
            ToolName::ReplyToMessage => "reply_to_message",
            ToolName::ForwardMessage => "forward_message",
            ToolName::ListThreads => "list_threads",
            ToolName::GetThread => "get_thread",
            ToolName::MarkRead => "mark_read",
            ToolName::DeleteMessage => "delete_message",
            ToolName::DeleteThread => "delete_thread",
            ToolName::GetAttachment => "get_attachment",
        }
    }

    /// What a key needs to call it: a `read` key is shown only the tools
    /// that read (the inbox refuses the others from it in any case).
    pub fn access(self) -> Access {
        match self {
            ToolName::Whoami
            | ToolName::ListMessages
            | ToolName::GetMessage
            | ToolName::SearchMessages
            | ToolName::WaitForMessage
            | ToolName::ListThreads
            | ToolName::GetThread
            | ToolName::GetAttachment => Access::Read,
            ToolName::SendMessage
            | ToolName::ReplyToMessage
            | ToolName::ForwardMessage
            | ToolName::MarkRead
            | ToolName::DeleteMessage
            | ToolName::DeleteThread => Access::Write,
        }
    }

    fn title(self) -> &'static str {
        match self {
            ToolName::Whoami => "Who am I",
            ToolName::ListMessages => "List messages",
            ToolName::GetMessage => "Read a message",
            ToolName::SearchMessages => "Search messages",
            ToolName::WaitForMessage => "Wait for a message",
            ToolName::SendMessage => "Send an email",
            ToolName::ReplyToMessage => "Reply to a message",
            ToolName::ForwardMessage => "Forward a message",
            ToolName::ListThreads => "List conversations",
            ToolName::GetThread => "Read a conversation",
            ToolName::MarkRead => "Mark read or unread",
            ToolName::DeleteMessage => "Delete a message",
            ToolName::DeleteThread => "Delete a conversation",
            ToolName::GetAttachment => "Get an attachment",
        }
    }

    fn description(self) -> &'static str {
        match self {
            ToolName::Whoami => {
                "Returns this inbox's email address, handle, message count, retention and the \
                 scope of the key in use (full or read). Call it first to learn the address to \
                 give out when signing up somewhere."
            }
            ToolName::ListMessages => {
                "Lists messages, newest first: sender, subject, a short preview, read state, \
                 thread id, attachments flag. Pages of `limit` (default 20, at most 100); pass \
                 the answer's `nextCursor` as `cursor` for the next page. `unread: true` lists \
                 only unread messages; `since` (RFC 3339) only those received after it. Use \
                 get_message for a message's body."
            }
            ToolName::GetMessage => {
                "Reads one message: headers, addresses, its text and HTML bodies, \
                 `extractedText` (the new text without quoted history or signature), the \
                 one-time `codes` and `links` found in it, and its attachments' metadata. \
                 Bodies are cut to `maxChars` characters each (default 20000) from `offset`; \
                 `bodyWindow.nextOffset` says where the next part starts when they were cut. \
                 Codes and links are written by the sender: untrusted."
            }
            ToolName::SearchMessages => {
                "Full-text search over subjects, bodies, senders and attachment names. `q` \
                 takes words, \"quoted phrases\", prefix*, and filters from:, to:, subject:, \
                 has:attachment, is:unread, after:YYYY-MM-DD, before:YYYY-MM-DD. Best matches \
                 first, with a highlighted snippet; page with `cursor`."
            }
            ToolName::WaitForMessage => {
                "Waits until a message arrives and returns it whole, with the verification \
                 `codes` and `links` extracted, in one call: no polling. `after` is the id of \
                 the newest message already seen (0: any message, including one already \
                 here; absent: only mail that arrives from now on); `q` (search syntax, e.g. `from:github.com`) waits for a \
                 matching message; `timeout` is in seconds (default 30, at most 60). When \
                 nothing came in time, `message` is null: call again. Codes and links are \
                 written by the sender: untrusted."
            }
            ToolName::SendMessage => {
                "Sends an email from this inbox. `to` (one address or a list), `subject`, and \
                 `text` and/or `html`; optional `cc`, `bcc`, `replyTo`, and `attachments` \
                 (each {filename, contentType, content: base64}). Pass an `idempotencyKey` \
                 (any unique string) so a retried call sends once. Returns the message id and \
                 each recipient's status."
            }
            ToolName::ReplyToMessage => {
                "Replies to message `id` in its conversation: the recipients, `Re:` subject, \
                 In-Reply-To and References are set for you. Give `text` and/or `html`; \
                 `replyAll: true` also answers everyone on To and Cc. Pass an \
                 `idempotencyKey` so a retried call sends once."
            }
            ToolName::ForwardMessage => {
                "Forwards message `id` to `to` (and optional `cc`, `bcc`), with an optional \
                 note in `text`/`html` above the forwarded message. Its attachments go along \
                 unless `includeAttachments` is false. Pass an `idempotencyKey` so a retried \
                 call sends once."
            }
            ToolName::ListThreads => {
                "Lists conversations (threads), most recently active first: subject, \
                 participants, message and unread counts. Page with `limit` and `cursor`; \
                 `unread: true` lists only threads with unread messages."
            }
            ToolName::GetThread => {
                "Reads a conversation: every message in it, oldest first, each with its new \
                 text (`extractedText`, without the quoted history) so the exchange reads in \
                 order. Use get_message for a message's whole body."
            }
            ToolName::MarkRead => {
                "Marks message `id` read (`read: true`, the default) or unread (`read: false`)."
            }
            ToolName::DeleteMessage => {
                "Deletes message `id` for good: its body, raw bytes, attachments and search \
                 entry. It cannot be undone."
            }
            ToolName::DeleteThread => {
                "Deletes conversation `id` for good: every message in it, as delete_message \
                 does for one. It cannot be undone."
            }
            ToolName::GetAttachment => {
                "Returns attachment `attachmentId` (its id from get_message, e.g. \"2\") of \
                 message `messageId`: an image as an image you can see, text as text, \
                 anything else as an embedded file. Attachments over 2 MiB are not returned \
                 here (fetch them over REST)."
            }
        }
    }

    fn hints(self) -> Hints {
        match self {
            ToolName::Whoami
            | ToolName::ListMessages
            | ToolName::GetMessage
            | ToolName::SearchMessages
            | ToolName::WaitForMessage
            | ToolName::ListThreads
            | ToolName::GetThread
            | ToolName::GetAttachment => READS,
            ToolName::SendMessage | ToolName::ReplyToMessage | ToolName::ForwardMessage => SENDS,
            ToolName::MarkRead => Hints {
                read_only: false,
                destructive: false,
                idempotent: true,
                open_world: false,
            },
            ToolName::DeleteMessage | ToolName::DeleteThread => Hints {
                read_only: false,
                destructive: true,
                idempotent: true,
                open_world: false,
            },
        }
    }

    /// The tool's `inputSchema`.
    pub fn input_schema(self) -> Value {
        let id = |what: &str| json!({"type": "integer", "minimum": 1, "description": what});
        let limit = json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE,
            "default": DEFAULT_PAGE, "description": "How many to return."});
        let cursor = json!({"type": "integer", "minimum": 1,
            "description": "The previous page's `nextCursor`."});
        let unread = json!({"type": "boolean", "default": false,
            "description": "Only unread ones."});
        let idempotency = (
            "idempotencyKey",
            json!({"type": "string", "minLength": 1, "maxLength": 255,
                "description": "A unique string: a retry with the same key and arguments \
                                within 24 hours returns the first result and sends nothing."}),
            false,
        );
        let window = [
            (
                "offset",
                json!({"type": "integer", "minimum": 0, "default": 0,
                "description": "The first character of each body to return (see \
                                `bodyWindow.nextOffset`)."}),
                false,
            ),
            (
                "maxChars",
                json!({"type": "integer", "minimum": 1, "maximum": MAX_BODY_CHARS,
                "default": DEFAULT_BODY_CHARS,
                "description": "The most characters of each body to return."}),
                false,
            ),
        ];
        let object = |properties: Value, required: &[&str]| {
            json!({"type": "object", "properties": properties, "required": required,
                "additionalProperties": false})
        };
        match self {
            ToolName::Whoami => object(json!({}), &[]),
            ToolName::ListMessages => object(
                json!({"limit": limit, "cursor": cursor, "unread": unread,
                    "since": {"type": "string", "format": "date-time",
                        "description": "Only messages received after this RFC 3339 time."}}),
                &[],
            ),
            ToolName::GetMessage => {
                let mut schema = object(json!({"id": id("The message id.")}), &["id"]);
                for (name, property, _) in window {
                    schema["properties"][name] = property;
                }
                schema
            }
            ToolName::SearchMessages => object(
                json!({"q": {"type": "string", "minLength": 1,
                        "description": "The search query (see the tool's description)."},
                    "limit": limit,
                    "cursor": {"type": "string",
                        "description": "The previous page's `nextCursor`."}}),
                &["q"],
            ),
            ToolName::WaitForMessage => {
                let mut schema = object(
                    json!({"after": {"type": "integer", "minimum": 0,
                            "description": "The newest message id already seen; 0 for any (absent: only new mail)."},
                        "timeout": {"type": "integer", "minimum": 1,
                            "maximum": MAX_WAIT_SECONDS, "default": DEFAULT_WAIT_SECONDS,
                            "description": "Seconds to wait."},
                        "q": {"type": "string",
                            "description": "Wait for a message matching this search query."}}),
                    &[],
                );
                for (name, property, _) in window {
                    schema["properties"][name] = property;
                }
                schema
            }
            ToolName::SendMessage => extended("SendRequest", &[idempotency]),
            ToolName::ReplyToMessage => extended(
                "ReplyRequest",
                &[("id", id("The message to reply to."), true), idempotency],
            ),
            ToolName::ForwardMessage => extended(
                "ForwardRequest",
                &[("id", id("The message to forward."), true), idempotency],
            ),
            ToolName::ListThreads => object(
                json!({"limit": limit, "cursor": cursor, "unread": unread}),
                &[],
            ),
            ToolName::GetThread => object(json!({"id": id("The thread id.")}), &["id"]),
            ToolName::MarkRead => object(
                json!({"id": id("The message id."),
                    "read": {"type": "boolean", "default": true,
                        "description": "true: read; false: unread."}}),
                &["id"],
            ),
            ToolName::DeleteMessage => object(json!({"id": id("The message id.")}), &["id"]),
            ToolName::DeleteThread => object(json!({"id": id("The thread id.")}), &["id"]),
            ToolName::GetAttachment => object(
                json!({"messageId": id("The message id."),
                    "attachmentId": {"type": "string", "minLength": 1,
                        "description": "The attachment's `id` in get_message (a MIME part \
                                        number such as \"2\" or \"1.2\")."}}),
                &["messageId", "attachmentId"],
            ),
        }
    }

    /// The tool's `outputSchema`: the REST answer's schema (a message's
    /// bodies windowed).
    pub fn output_schema(self) -> Value {
        match self {
            ToolName::Whoami => component("Me"),
            ToolName::ListMessages => component("MessageList"),
            ToolName::GetMessage => windowed(component("Message")),
            ToolName::SearchMessages => component("SearchResults"),
            ToolName::WaitForMessage => windowed(component("WaitResult")),
            ToolName::SendMessage | ToolName::ReplyToMessage | ToolName::ForwardMessage => {
                component("SendResponse")
            }
            ToolName::ListThreads => component("ThreadList"),
            ToolName::GetThread => component("Thread"),
            ToolName::MarkRead => component("MessageSummary"),
            ToolName::DeleteMessage | ToolName::DeleteThread => json!({
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "description": "The message or thread deleted."},
                    "deleted": {"const": true}
                },
                "required": ["id", "deleted"]
            }),
            ToolName::GetAttachment => json!({
                "type": "object",
                "properties": {
                    "messageId": {"type": "integer"},
                    "attachmentId": {"type": "string"},
                    "contentType": {"type": "string"},
                    "size": {"type": "integer", "description": "Decoded bytes."},
                    "returnedAs": {"enum": ["image", "text", "resource"],
                        "description": "The kind of content block the attachment is in."}
                },
                "required": ["messageId", "attachmentId", "contentType", "size", "returnedAs"]
            }),
        }
    }

    /// The tool's entry in `tools/list`; `title` and `outputSchema` only for
    /// a revision that has them (2025-06-18 on).
    pub fn definition(self, structured: bool) -> Value {
        let hints = self.hints();
        let mut tool = json!({
            "name": self.as_str(),
            "description": self.description(),
            "inputSchema": self.input_schema(),
            "annotations": {
                "title": self.title(),
                "readOnlyHint": hints.read_only,
                "destructiveHint": hints.destructive,
                "idempotentHint": hints.idempotent,
                "openWorldHint": hints.open_world,
            },
        });
        if structured {
            tool["title"] = json!(self.title());
            tool["outputSchema"] = self.output_schema();
        }
        tool
    }

    /// The REST request `arguments` make, or why they cannot (a message for
    /// the model: a tool error, not a protocol error).
    pub fn request(self, arguments: &Map<String, Value>) -> Result<HttpRequest, String> {
        let args = Args(arguments);
        let get = |path: String, query: String| {
            let mut request = HttpRequest::new("GET", &path);
            request.query = query;
            request
        };
        Ok(match self {
            ToolName::Whoami => {
                args.only(&[])?;
                get("/api/me".to_owned(), String::new())
            }
            ToolName::ListMessages => {
                args.only(&["limit", "cursor", "unread", "since"])?;
                get(
                    "/api/messages".to_owned(),
                    args.query(&["limit", "cursor", "unread", "since"])?,
                )
            }
            ToolName::GetMessage => {
                args.only(&["id", "offset", "maxChars"])?;
                args.window()?;
                get(format!("/api/messages/{}", args.id("id")?), String::new())
            }
            ToolName::SearchMessages => {
                args.only(&["q", "limit", "cursor"])?;
                args.required("q")?;
                get(
                    "/api/messages/search".to_owned(),
                    args.query(&["q", "limit", "cursor"])?,
                )
            }
            ToolName::WaitForMessage => {
                args.only(&["after", "timeout", "q", "offset", "maxChars"])?;
                args.window()?;
                get(
                    "/api/messages/wait".to_owned(),
                    args.query(&["after", "timeout", "q"])?,
                )
            }
            ToolName::SendMessage => args.post("/api/messages".to_owned(), &[])?,
            ToolName::ReplyToMessage => {
                args.post(format!("/api/messages/{}/reply", args.id("id")?), &["id"])?
            }
            ToolName::ForwardMessage => {
                args.post(format!("/api/messages/{}/forward", args.id("id")?), &["id"])?
            }
            ToolName::ListThreads => {
                args.only(&["limit", "cursor", "unread"])?;
                get(
                    "/api/threads".to_owned(),
                    args.query(&["limit", "cursor", "unread"])?,
                )
            }
            ToolName::GetThread => {
                args.only(&["id"])?;
                get(format!("/api/threads/{}", args.id("id")?), String::new())
            }
            ToolName::MarkRead => {
                args.only(&["id", "read"])?;
                let read = match arguments.get("read") {
                    None => true,
                    Some(Value::Bool(read)) => *read,
                    Some(_) => return Err("Invalid `read`: must be true or false.".to_owned()),
                };
                json_request(
                    "PATCH",
                    format!("/api/messages/{}", args.id("id")?),
                    &json!({ "read": read }),
                )
            }
            ToolName::DeleteMessage => {
                args.only(&["id"])?;
                HttpRequest::new("DELETE", &format!("/api/messages/{}", args.id("id")?))
            }
            ToolName::DeleteThread => {
                args.only(&["id"])?;
                HttpRequest::new("DELETE", &format!("/api/threads/{}", args.id("id")?))
            }
            ToolName::GetAttachment => {
                args.only(&["messageId", "attachmentId"])?;
                let part = args.string("attachmentId")?.ok_or_else(|| {
                    "The argument `attachmentId` is required (an id from get_message).".to_owned()
                })?;
                // The path segment is the id as written: a REST path
                // checks it, and an id with a `/` or `%` is no id.
                if part.contains(['/', '%', '?', '#']) {
                    return Err(format!(
                        "Invalid `attachmentId`: '{}' is not an attachment id such as \"2\".",
                        crate::extract::printable(part)
                    ));
                }
                get(
                    format!("/api/messages/{}/attachments/{part}", args.id("messageId")?),
                    String::new(),
                )
            }
        })
    }

    /// The tool's result for the REST answer `reply` to the request made
    /// from `arguments`.
    pub fn result(self, arguments: &Map<String, Value>, reply: &Reply) -> ToolResult {
        if reply.status >= 400 {
            return ToolResult::failure(reply);
        }
        let parsed = || serde_json::from_slice::<Value>(&reply.body);
        let args = Args(arguments);
        match self {
            ToolName::DeleteMessage | ToolName::DeleteThread => ToolResult::json(json!({
                "id": arguments.get("id").cloned().unwrap_or(Value::Null),
                "deleted": true,
            })),
            ToolName::GetAttachment => attachment(arguments, reply),
            ToolName::GetMessage => match parsed() {
                Ok(mut message) => {
                    let (offset, max) = args.window().unwrap_or((0, DEFAULT_BODY_CHARS));
                    window(&mut message, offset, max);
                    ToolResult::json(message)
                }
                Err(_) => ToolResult::unreadable(),
            },
            ToolName::WaitForMessage => match parsed() {
                Ok(mut waited) => {
                    let (offset, max) = args.window().unwrap_or((0, DEFAULT_BODY_CHARS));
                    if let Some(message) = waited.get_mut("message").filter(|m| m.is_object()) {
                        window(message, offset, max);
                    }
                    ToolResult::json(waited)
                }
                Err(_) => ToolResult::unreadable(),
            },
            _ => match parsed() {
                Ok(value) => ToolResult::json(value),
                Err(_) => ToolResult::unreadable(),
            },
        }
    }
}

/// The outcome of a tool call, before it is written for a protocol revision.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolResult {
    /// The structured result; its text block is the same JSON.
    Json(Value),
    /// The structured result and the content blocks that carry the payload
    /// (an attachment).
    Content(Value, Vec<Value>),
    /// A failure the model should see: `isError: true` with this text.
    Error(String),
}

impl ToolResult {
    fn json(value: Value) -> Self {
        ToolResult::Json(value)
    }

    /// The API's error answer as it is (its `error` and `code`), and how
    /// long to wait when it said so.
    fn failure(reply: &Reply) -> Self {
        let error = error_of(reply);
        let mut body = serde_json::to_value(&error).unwrap_or_else(|_| json!({}));
        if let Some(seconds) = reply
            .header("retry-after")
            .and_then(|s| s.parse::<u64>().ok())
        {
            body["retryAfterSeconds"] = json!(seconds);
        }
        ToolResult::Error(body.to_string())
    }

    fn unreadable() -> Self {
        log::error!("an inbox answer to a tool call is not JSON");
        ToolResult::Error(
            json!({"error": "Something went wrong on our side.", "code": "internal"}).to_string(),
        )
    }

    /// The `tools/call` result: content blocks, and `structuredContent` when
    /// the revision has it.
    pub fn into_value(self, structured: bool) -> Value {
        match self {
            ToolResult::Json(value) => {
                let mut result = json!({
                    "content": [{"type": "text", "text": value.to_string()}],
                    "isError": false,
                });
                if structured {
                    result["structuredContent"] = value;
                }
                result
            }
            ToolResult::Content(value, mut blocks) => {
                blocks.insert(0, json!({"type": "text", "text": value.to_string()}));
                let mut result = json!({"content": blocks, "isError": false});
                if structured {
                    result["structuredContent"] = value;
                }
                result
            }
            ToolResult::Error(text) => json!({
                "content": [{"type": "text", "text": text}],
                "isError": true,
            }),
        }
    }
}

/// A tool's arguments, read strictly: a model that misspells an argument
/// is told so rather than silently ignored.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|name| !allowed.contains(&name.as_str())) {
            None => Ok(()),
            Some(name) if allowed.is_empty() => Err(format!(
                "Unknown argument `{}`: this tool takes none.",
                crate::extract::printable(name)
            )),
            Some(name) => Err(format!(
                "Unknown argument `{}`; use {}.",
                crate::extract::printable(name),
                allowed.join(", ")
            )),
        }
    }

    fn required(&self, name: &str) -> Result<(), String> {
        match self.0.get(name) {
            Some(_) => Ok(()),
            None => Err(format!("The argument `{name}` is required.")),
        }
    }

    /// A path id: a JSON integer, checked further by the REST route.
    fn id(&self, name: &str) -> Result<u64, String> {
        match self.0.get(name) {
            Some(value) => value.as_u64().filter(|id| *id >= 1).ok_or_else(|| {
                format!("Invalid `{name}`: must be a positive integer id, not {value}.")
            }),
            None => Err(format!("The argument `{name}` is required.")),
        }
    }

    fn string(&self, name: &str) -> Result<Option<&str>, String> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format!("Invalid `{name}`: must be a string, not {other}.")),
        }
    }

    /// The REST query of the arguments `names` (those given): each as the
    /// query spells it, so the REST route's checks and messages apply.
    fn query(&self, names: &[&str]) -> Result<String, String> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for name in names {
            let Some(value) = self.0.get(*name) else {
                continue;
            };
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Bool(flag) => flag.to_string(),
                Value::Number(n) if n.is_u64() => n.to_string(),
                other => {
                    return Err(format!(
                        "Invalid `{name}`: {other} is not a value it takes (see the schema)."
                    ));
                }
            };
            query.append_pair(name, &text);
        }
        Ok(query.finish())
    }

    /// `offset` and `maxChars`, checked.
    fn window(&self) -> Result<(u64, u64), String> {
        let number =
            |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| match self.0.get(name)
            {
                None => Ok(default),
                Some(value) => value.as_u64().filter(|n| range.contains(n)).ok_or_else(|| {
                    format!(
                        "Invalid `{name}`: must be an integer from {} to {}, not {value}.",
                        range.start(),
                        range.end()
                    )
                }),
            };
        Ok((
            number("offset", 0, 0..=u64::from(u32::MAX))?,
            number("maxChars", DEFAULT_BODY_CHARS, 1..=MAX_BODY_CHARS)?,
        ))
    }

    /// A send, reply or forward: the arguments but `path_fields` and the
    /// idempotency key are the REST body, which the route reads (and
    /// refuses) as it reads any client's.
    fn post(&self, path: String, path_fields: &[&str]) -> Result<HttpRequest, String> {
        let mut body = self.0.clone();
        for field in path_fields {
            body.remove(*field);
        }
        let key = match body.remove("idempotencyKey") {
            None => None,
            Some(Value::String(key)) => Some(key),
            Some(other) => {
                return Err(format!(
                    "Invalid `idempotencyKey`: must be a string, not {other}."
                ));
            }
        };
        let request = json_request("POST", path, &Value::Object(body));
        Ok(match key {
            Some(key) => request.header(IDEMPOTENCY_HEADER, &key),
            None => request,
        })
    }
}

fn json_request(method: &str, path: String, body: &Value) -> HttpRequest {
    HttpRequest::new(method, &path)
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// The window of a message's bodies a result carries.
fn windowed(mut schema: Value) -> Value {
    let window = json!({
        "type": "object",
        "description": "Which characters of `text`, `html` and `extractedText` this result \
                        carries: each body is cut to `maxChars` characters from `offset`.",
        "properties": {
            "offset": {"type": "integer"},
            "maxChars": {"type": "integer"},
            "textChars": {"type": "integer", "description": "The whole text's length."},
            "htmlChars": {"type": "integer", "description": "The whole HTML's length."},
            "extractedTextChars": {"type": "integer"},
            "truncated": {"type": "boolean", "description": "Whether any body was cut."},
            "nextOffset": {"type": ["integer", "null"],
                "description": "The `offset` of the next part; null when nothing is left."}
        },
        "required": ["offset", "maxChars", "truncated", "nextOffset"]
    });
    let message = if schema.pointer("/$defs/Message").is_some() {
        schema.pointer_mut("/$defs/Message")
    } else {
        Some(&mut schema)
    };
    if let Some(properties) = message
        .and_then(|m| m.get_mut("properties"))
        .and_then(Value::as_object_mut)
    {
        properties.insert("bodyWindow".to_owned(), window);
    }
    schema
}

/// Cuts `text`, `html` and `extractedText` of `message` to `max`
/// characters from `offset`, and says so in `bodyWindow`.
fn window(message: &mut Value, offset: u64, max: u64) {
    let mut info = json!({"offset": offset, "maxChars": max});
    let mut longest = 0u64;
    for field in ["text", "html", "extractedText"] {
        if let Some(Value::String(body)) = message.get_mut(field) {
            let total = body.chars().count() as u64;
            longest = longest.max(total);
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let take = usize::try_from(max).unwrap_or(usize::MAX);
            *body = body.chars().skip(start).take(take).collect();
            info[format!("{field}Chars")] = json!(total);
        }
    }
    let end = offset.saturating_add(max);
    info["truncated"] = json!(offset > 0 || longest > end);
    info["nextOffset"] = if longest > end {
        json!(end)
    } else {
        Value::Null
    };
    if let Some(object) = message.as_object_mut() {
        object.insert("bodyWindow".to_owned(), info);
    }
}

/// An attachment as a model can take it: an image it can see, text as text,
/// anything else as an embedded file.
fn attachment(arguments: &Map<String, Value>, reply: &Reply) -> ToolResult {
    let content_type = reply
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_owned();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let message_id = arguments.get("messageId").cloned().unwrap_or(Value::Null);
    let part = arguments
        .get("attachmentId")
        .and_then(Value::as_str)
        .unwrap_or("");
    let size = reply.body.len();
    if size > MAX_ATTACHMENT_BYTES {
        return ToolResult::Error(
            json!({
                "error": format!(
                    "The attachment is {size} bytes; get_attachment returns at most \
                     {MAX_ATTACHMENT_BYTES}. Fetch it over REST: \
                     GET /api/messages/{message_id}/attachments/{part}."
                ),
                "code": "too_large",
            })
            .to_string(),
        );
    }
    let seen = matches!(
        media_type.as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    );
    let texty = media_type.starts_with("text/")
        || matches!(
            media_type.as_str(),
            "application/json" | "application/xml" | "image/svg+xml" | "text/calendar"
        );
    let base64 = || base64::engine::general_purpose::STANDARD.encode(&reply.body);
    let (kind, block) = match std::str::from_utf8(&reply.body) {
        _ if seen => (
            "image",
            json!({"type": "image", "data": base64(), "mimeType": media_type}),
        ),
        Ok(text) if texty => ("text", json!({"type": "text", "text": text})),
        _ => (
            "resource",
            json!({"type": "resource", "resource": {
                "uri": format!("inboxkit:/messages/{message_id}/attachments/{part}"),
                "mimeType": media_type,
                "blob": base64(),
            }}),
        ),
    };
    ToolResult::Content(
        json!({
            "messageId": message_id,
            "attachmentId": part,
            "contentType": content_type,
            "size": size,
            "returnedAs": kind,
        }),
        vec![block],
    )
}
