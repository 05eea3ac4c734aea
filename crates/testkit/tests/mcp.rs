//! `POST /mcp` through the real router and InboxDO: the JSON-RPC surface as
//! a table (every method, every error path, version negotiation,
//! notifications, batches), every tool called on real mail with its
//! `structuredContent` validated against its `outputSchema`, and every tool
//! making exactly the `ApiCall`s its REST route makes.
#![cfg(not(target_arch = "wasm32"))]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::join;
use protocol::wire::{Access, ApiCall};
use protocol::{Reply, key::sha256_hex};
use router_worker::HttpRequest;
use router_worker::mcp::{ToolName, Version};
use serde_json::{Value as Json, json};
use std::cell::Cell;
use testkit::{TestService, object_id, until, yield_now};

const ALICE: &str = "alice@agents.test";
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn post(key: Option<&str>, version: Option<&str>, body: &str) -> HttpRequest {
    let mut request = HttpRequest::new("POST", "/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("host", "inbox.example")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("authorization", &format!("Bearer {key}"));
    }
    if let Some(version) = version {
        request = request.header("mcp-protocol-version", version);
    }
    request
}

fn json_of(reply: &Reply) -> Json {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&reply.body)))
}

/// A request's JSON-RPC answer (status 200), at `version`.
fn rpc(
    service: &TestService,
    key: &str,
    version: Option<&str>,
    method: &str,
    params: Json,
) -> Json {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let reply = service.request(&post(Some(key), version, &body.to_string()));
    assert_eq!(
        reply.status,
        200,
        "{method}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let answer = json_of(&reply);
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], 7);
    answer
}

const NEW: Option<&str> = Some("2025-11-25");

/// A tools/call's result at 2025-11-25 (a JSON-RPC result, not an error).
fn call(service: &TestService, key: &str, tool: &str, arguments: Json) -> Json {
    let answer = rpc(
        service,
        key,
        NEW,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    );
    assert!(answer.get("error").is_none(), "{tool}: {answer}");
    answer["result"].clone()
}

fn deliver(service: &TestService, raw: &str) -> u64 {
    match service.deliver("outside@example.com", ALICE, raw.as_bytes()) {
        router_worker::MailVerdict::Accepted(id) => id,
        other => panic!("not stored: {other:?}"),
    }
}

fn verification_mail(subject: &str, long_text: usize) -> String {
    let filler = "lorem ipsum ".repeat(long_text / 12 + 1);
    let png = STANDARD.encode(PNG);
    let pdf = STANDARD.encode(b"%PDF-1.4 not really\n");
    format!(
        "From: GitHub <noreply@github.com>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@github.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Your verification code is 482913.\r\nOr open https://github.com/verify?t=abc\r\n{filler}\r\n\
         --b\r\nContent-Type: image/png; name=dot.png\r\nContent-Disposition: attachment; filename=dot.png\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{png}\r\n\
         --b\r\nContent-Type: text/plain; name=notes.txt\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\n\
         plain notes\r\n\
         --b\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--b--\r\n"
    )
}

// ---------------------------------------------------------------- transport

#[test]
fn the_json_rpc_surface_answers_as_the_table_says() {
    let service = TestService::new();
    let key = service.signup("alice");
    let k = Some(key.as_str());
    // (what, version header, body, status, check of the answer)
    type Check = fn(&Json);
    let cases: Vec<(&str, Option<&str>, String, u16, Check)> = vec![
        ("initialize echoes 2025-03-26", None,
         json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}).to_string(),
         200, |a| {
            assert_eq!(a["result"]["protocolVersion"], "2025-03-26");
            assert_eq!(a["result"]["capabilities"]["tools"]["listChanged"], false);
            assert_eq!(a["result"]["serverInfo"]["name"], "inboxkit");
            assert!(a["result"]["serverInfo"].get("title").is_none(), "no title before 2025-06-18");
            assert!(a["result"]["instructions"].as_str().expect("instructions").contains("untrusted"));
        }),
        ("initialize echoes 2025-06-18", None,
         json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}).to_string(),
         200, |a| {
            assert_eq!(a["result"]["protocolVersion"], "2025-06-18");
            assert_eq!(a["result"]["serverInfo"]["title"], "InboxKit");
        }),
        ("initialize echoes 2025-11-25", None,
         json!({"jsonrpc":"2.0","id":"s","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}).to_string(),
         200, |a| { assert_eq!(a["id"], "s"); assert_eq!(a["result"]["protocolVersion"], "2025-11-25"); }),
        ("an unknown version gets our newest handshake", None,
         json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{}}}).to_string(),
         200, |a| assert_eq!(a["result"]["protocolVersion"], "2025-11-25")),
        ("2026-07-28 has no handshake: initialize answers the newest that has", None,
         json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2026-07-28"}}).to_string(),
         200, |a| assert_eq!(a["result"]["protocolVersion"], "2025-11-25")),
        ("initialize without a version", None,
         json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}).to_string(),
         200, |a| assert_eq!(a["error"]["code"], -32602)),
        ("a notification is accepted, unanswered", NEW,
         json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string(), 202, |_| {}),
        ("a cancellation is accepted, unanswered", NEW,
         json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}).to_string(), 202, |_| {}),
        ("a client's response is accepted, unanswered", NEW,
         json!({"jsonrpc":"2.0","id":4,"result":{}}).to_string(), 202, |_| {}),
        ("ping", NEW, json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string(),
         200, |a| assert_eq!(a["result"], json!({}))),
        ("an unknown method", NEW, json!({"jsonrpc":"2.0","id":1,"method":"resources/list"}).to_string(),
         200, |a| assert_eq!(a["error"]["code"], -32601)),
        ("no jsonrpc member", NEW, json!({"id":1,"method":"ping"}).to_string(),
         200, |a| { assert_eq!(a["error"]["code"], -32600); assert_eq!(a["id"], 1); }),
        ("a null id", NEW, json!({"jsonrpc":"2.0","id":null,"method":"ping"}).to_string(),
         200, |a| { assert_eq!(a["error"]["code"], -32600); assert_eq!(a["id"], Json::Null); }),
        ("a method that is not a string", NEW, json!({"jsonrpc":"2.0","id":1,"method":3}).to_string(),
         200, |a| assert_eq!(a["error"]["code"], -32600)),
        ("a message that is not an object", NEW, "3".to_owned(),
         200, |a| assert_eq!(a["error"]["code"], -32600)),
        ("params that are not an object", NEW, json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}).to_string(),
         200, |a| assert_eq!(a["error"]["code"], -32602)),
        ("a body that is not JSON", NEW, "{\"jsonrpc\":".to_owned(),
         400, |a| { assert_eq!(a["error"]["code"], -32700); assert_eq!(a["id"], Json::Null); }),
        ("an unknown MCP-Protocol-Version", Some("1999-01-01"),
         json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string(),
         400, |a| {
            assert_eq!(a["error"]["code"], -32022);
            assert_eq!(a["error"]["data"]["supported"], json!(["2025-03-26","2025-06-18","2025-11-25","2026-07-28"]));
        }),
        ("a batch in 2025-03-26 (no header)", None,
         json!([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"nope"}]).to_string(),
         200, |a| {
            let answers = a.as_array().expect("a batch answer");
            assert_eq!(answers.len(), 2, "the notification is not answered");
            assert_eq!(answers[0]["result"], json!({}));
            assert_eq!(answers[1]["error"]["code"], -32601);
        }),
        ("a batch of notifications only", Some("2025-03-26"),
         json!([{"jsonrpc":"2.0","method":"notifications/initialized"}]).to_string(), 202, |_| {}),
        ("an empty batch", None, "[]".to_owned(), 400, |a| assert_eq!(a["error"]["code"], -32600)),
        ("a batch of 21", None, json!(vec![json!({"jsonrpc":"2.0","id":1,"method":"ping"}); 21]).to_string(),
         400, |a| assert_eq!(a["error"]["code"], -32600)),
        ("a batch is refused from 2025-06-18 on", Some("2025-06-18"),
         json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]).to_string(),
         400, |a| assert_eq!(a["error"]["code"], -32600)),
        ("a batch is refused in 2025-11-25", NEW,
         json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]).to_string(),
         400, |a| assert_eq!(a["error"]["code"], -32600)),
        ("tools/call of an unknown tool", NEW,
         json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm_rf","arguments":{}}}).to_string(),
         200, |a| { assert_eq!(a["error"]["code"], -32602); assert!(a.get("result").is_none()); }),
        ("tools/call without a name", NEW,
         json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}).to_string(),
         200, |a| assert_eq!(a["error"]["code"], -32602)),
        ("tools/call with arguments that are not an object", NEW,
         json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":"x"}}).to_string(),
         200, |a| assert_eq!(a["error"]["code"], -32602)),
        ("tools/list with a cursor never given", NEW,
         json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"x"}}).to_string(),
         200, |a| assert_eq!(a["error"]["code"], -32602)),
        ("server/discover", None,
         json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}).to_string(),
         200, |a| {
            let r = &a["result"];
            assert_eq!(r["supportedVersions"], json!(["2025-03-26","2025-06-18","2025-11-25","2026-07-28"]));
            assert_eq!(r["resultType"], "complete");
            assert_eq!(r["cacheScope"], "private");
            assert_eq!(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "inboxkit");
            assert!(r["capabilities"]["tools"].is_object());
        }),
        ("server/discover at an unknown version", None,
         json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2031-01-01"}}}).to_string(),
         200, |a| {
            assert_eq!(a["error"]["code"], -32022);
            assert!(a["error"]["data"]["supported"].as_array().expect("supported").contains(&json!("2025-11-25")));
        }),
        ("tools/list in 2026-07-28: resultType and cache fields", Some("2026-07-28"),
         json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}).to_string(),
         200, |a| {
            assert_eq!(a["result"]["resultType"], "complete");
            assert_eq!(a["result"]["ttlMs"], 0);
            assert_eq!(a["result"]["tools"].as_array().expect("tools").len(), ToolName::ALL.len());
        }),
        ("a 2026-07-28 request known by its _meta alone", None,
         json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}).to_string(),
         200, |a| {
            assert_eq!(a["result"]["resultType"], "complete");
            assert_eq!(a["result"]["structuredContent"]["email"], ALICE);
        }),
    ];
    for (what, version, body, status, check) in cases {
        let reply = service.request(&post(k, version, &body));
        assert_eq!(
            reply.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        if status == 202 {
            assert!(reply.body.is_empty(), "{what}: a 202 has no body");
            continue;
        }
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{what}"
        );
        check(&json_of(&reply));
    }
}

#[test]
fn http_level_refusals_are_http_answers_not_json_rpc_results() {
    let service = TestService::new();
    let key = service.signup("alice");
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string();

    let get = service.request(
        &HttpRequest::new("GET", "/mcp").header("authorization", &format!("Bearer {key}")),
    );
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));

    for request in [
        post(None, NEW, &ping),
        post(Some("ik_live_not_a_key"), NEW, &ping),
    ] {
        let reply = service.request(&request);
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert!(
            json_of(&reply).get("jsonrpc").is_none(),
            "never a JSON-RPC result"
        );
    }
    // A key KV still routes that the inbox does not know (a deleted key
    // while KV is stale): the inbox's 401 is the answer's, for a tool call
    // and for tools/list alike.
    let ghost = "ik_ghost_key_that_kv_still_routes";
    service.kv().insert(
        &format!("key:{}", sha256_hex(ghost.as_bytes())),
        &object_id("alice"),
    );
    for method in ["tools/list", "tools/call"] {
        let body = json!({"jsonrpc":"2.0","id":1,"method":method,"params":{"name":"whoami"}});
        let reply = service.request(&post(Some(ghost), NEW, &body.to_string()));
        assert_eq!(reply.status, 401, "{method}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }

    // Browser pages: refused, a rebound name (its Origin naming the Host)
    // too, but for a same-origin page on loopback (local development).
    let foreign = post(Some(&key), NEW, &ping).header("origin", "https://evil.example");
    assert_eq!(service.request(&foreign).status, 403);
    let rebound = post(Some(&key), NEW, &ping).header("origin", "https://inbox.example");
    assert_eq!(service.request(&rebound).status, 403);
    let mut local = post(Some(&key), NEW, &ping).header("origin", "http://127.0.0.1:8787");
    local.headers.retain(|(name, _)| name != "host");
    let local = local.header("host", "127.0.0.1:8787");
    assert_eq!(service.request(&local).status, 200);

    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let reply = service.request(&HttpRequest::new("GET", path));
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(json_of(&reply)["code"], "not_found", "{path}");
    }
}

// -------------------------------------------------------------------- tools

fn tools(service: &TestService, key: &str, version: Option<&str>) -> Vec<Json> {
    rpc(service, key, version, "tools/list", json!({}))["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .clone()
}

fn names(tools: &[Json]) -> Vec<String> {
    tools
        .iter()
        .map(|t| t["name"].as_str().expect("a name").to_owned())
        .collect()
}

#[test]
fn tools_list_describes_each_tool_for_its_revision_and_key() {
    let service = TestService::new();
    let key = service.signup("alice");
    service.signup("bob");
    let all = tools(&service, &key, NEW);
    assert_eq!(
        names(&all),
        ToolName::ALL.map(|t| t.as_str().to_owned()).to_vec()
    );
    for tool in &all {
        let name = &tool["name"];
        assert!(tool["title"].is_string(), "{name}");
        assert!(
            tool["description"].as_str().expect("description").len() > 40,
            "{name}"
        );
        assert_eq!(tool["inputSchema"]["type"], "object", "{name}");
        assert_eq!(tool["outputSchema"]["type"], "object", "{name}");
        for schema in [&tool["inputSchema"], &tool["outputSchema"]] {
            assert!(jsonschema::meta::is_valid(schema), "{name}: {schema}");
        }
        let hints = &tool["annotations"];
        for hint in [
            "readOnlyHint",
            "destructiveHint",
            "idempotentHint",
            "openWorldHint",
        ] {
            assert!(hints[hint].is_boolean(), "{name} {hint}");
        }
    }
    let by_name = |n: &str| all.iter().find(|t| t["name"] == n).expect("listed").clone();
    assert_eq!(
        by_name("delete_message")["annotations"]["destructiveHint"],
        true
    );
    assert_eq!(by_name("get_message")["annotations"]["readOnlyHint"], true);
    assert_eq!(
        by_name("send_message")["annotations"]["openWorldHint"],
        true
    );
    assert_eq!(
        by_name("send_message")["annotations"]["readOnlyHint"],
        false
    );

    // 2025-03-26 has neither titles nor output schemas.
    for tool in tools(&service, &key, None) {
        assert!(
            tool.get("outputSchema").is_none() && tool.get("title").is_none(),
            "{tool}"
        );
        assert!(tool["annotations"]["title"].is_string());
    }

    // A read key sees the read tools only, and is refused the others.
    let (status, created) = service.call(
        "POST",
        "/api/keys",
        &key,
        Some(json!({"name": "r", "scope": "read"})),
    );
    assert_eq!(status, 201, "{created}");
    let read = created["apiKey"].as_str().expect("the new key").to_owned();
    let seen = names(&tools(&service, &read, NEW));
    let reads: Vec<String> = ToolName::ALL
        .into_iter()
        .filter(|t| t.access() == Access::Read)
        .map(|t| t.as_str().to_owned())
        .collect();
    assert_eq!(seen, reads);
    assert!(!seen.contains(&"send_message".to_owned()));
    let refused = call(
        &service,
        &read,
        "send_message",
        json!({"to": "bob@agents.test", "subject": "s", "text": "t"}),
    );
    assert_eq!(refused["isError"], true);
    let error: Json =
        serde_json::from_str(refused["content"][0]["text"].as_str().expect("text")).expect("JSON");
    assert_eq!(error["code"], "forbidden");
    assert!(service.objects().mailer().sent().is_empty());
}

fn validate(tool: &str, schema: &Json, instance: &Json) {
    let validator = jsonschema::draft202012::new(schema).unwrap_or_else(|e| panic!("{tool}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{tool}: {errors:?}\n{instance}");
}

/// A successful tool result: its structured content, checked against the
/// tool's output schema and against its text block.
fn structured(tool: &str, schema: &Json, result: &Json) -> Json {
    assert_eq!(result["isError"], false, "{tool}: {result}");
    let content = &result["structuredContent"];
    validate(tool, schema, content);
    let text: Json =
        serde_json::from_str(result["content"][0]["text"].as_str().expect("a text block"))
            .expect("the text block is JSON");
    assert_eq!(
        &text, content,
        "{tool}: the text block is the structured content"
    );
    content.clone()
}

#[test]
fn every_tool_answers_structured_content_its_output_schema_accepts() {
    let service = TestService::new();
    let key = service.signup("alice");
    let bob = service.signup("bob");
    let listed = tools(&service, &key, NEW);
    let schema = |name: &str| {
        listed.iter().find(|t| t["name"] == name).expect("listed")["outputSchema"].clone()
    };
    let id = deliver(&service, &verification_mail("first", 30_000));
    let mut seen = Vec::new();
    let mut run = |tool: &str, arguments: Json| {
        seen.push(tool.to_owned());
        let result = call(&service, &key, tool, arguments);
        structured(tool, &schema(tool), &result)
    };

    let me = run("whoami", json!({}));
    assert_eq!(me["email"], ALICE);
    assert_eq!(me["scope"], "full");
    let list = run("list_messages", json!({"limit": 5, "unread": true}));
    assert_eq!(list["messages"][0]["id"], id);
    let message = run("get_message", json!({"id": id}));
    assert_eq!(message["codes"][0]["value"], "482913");
    assert!(message["links"].to_string().contains("github.com/verify"));
    let window = &message["bodyWindow"];
    assert_eq!(window["truncated"], true, "a 30,000-character body is cut");
    assert_eq!(window["nextOffset"], 20_000);
    assert_eq!(
        message["text"].as_str().expect("text").chars().count(),
        20_000
    );
    let rest = run(
        "get_message",
        json!({"id": id, "offset": 20_000, "maxChars": 100_000}),
    );
    assert_eq!(rest["bodyWindow"]["nextOffset"], Json::Null);
    let whole = window["textChars"].as_u64().expect("textChars") as usize;
    assert_eq!(
        rest["text"].as_str().expect("text").chars().count(),
        whole - 20_000
    );
    let found = run("search_messages", json!({"q": "verification"}));
    assert_eq!(found["messages"][0]["id"], id);
    let waited = run(
        "wait_for_message",
        json!({"after": 0, "timeout": 1, "maxChars": 100}),
    );
    assert_eq!(waited["message"]["id"], id);
    assert_eq!(waited["message"]["codes"][0]["value"], "482913");
    assert_eq!(waited["message"]["bodyWindow"]["maxChars"], 100);
    let threads = run("list_threads", json!({}));
    let thread = threads["threads"][0]["id"].clone();
    let read_thread = run("get_thread", json!({"id": thread}));
    assert_eq!(read_thread["messages"][0]["id"], id);
    let marked = run("mark_read", json!({"id": id}));
    assert_eq!(marked["read"], true);
    let unmarked = run("mark_read", json!({"id": id, "read": false}));
    assert_eq!(unmarked["read"], false);
    let sent = run(
        "send_message",
        json!({"to": "bob@agents.test", "subject": "hi", "text": "hello bob",
        "idempotencyKey": "send-1"}),
    );
    assert!(sent["id"].is_u64(), "{sent}");
    let again = run(
        "send_message",
        json!({"to": "bob@agents.test", "subject": "hi", "text": "hello bob",
        "idempotencyKey": "send-1"}),
    );
    assert_eq!(again["id"], sent["id"], "an idempotent retry sends once");
    let received = |m: &&Json| m["direction"] == "inbound";
    assert_eq!(service.messages(&bob).iter().filter(received).count(), 1);
    // A reply goes to the sender: bob, an inbox here (no relay in tests).
    let (status, from_bob) = service.call(
        "POST",
        "/api/messages",
        &bob,
        Some(json!({"to": ALICE, "subject": "question", "text": "are you there?"})),
    );
    assert_eq!(status, 201, "{from_bob}");
    let bobs = service.messages(&key)[0]["id"].clone();
    let replied = run("reply_to_message", json!({"id": bobs, "text": "thanks"}));
    let bobs_thread = run("get_message", json!({"id": bobs}))["threadId"].clone();
    assert!(bobs_thread.is_u64(), "a thread id");
    let gone = run("delete_thread", json!({"id": bobs_thread}));
    assert_eq!(gone, json!({"id": bobs_thread, "deleted": true}));
    let (status, _) = service.call("GET", &format!("/api/messages/{bobs}"), &key, None);
    assert_eq!(status, 404, "the thread's messages went with it");
    assert!(replied["id"].is_u64());
    let forwarded = run(
        "forward_message",
        json!({"id": id, "to": "bob@agents.test", "text": "fyi"}),
    );
    assert!(forwarded["id"].is_u64());
    let subjects: Vec<Json> = service
        .messages(&bob)
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["subject"].clone())
        .collect();
    assert_eq!(
        subjects.len(),
        3,
        "the send, the reply and the forward: {subjects:?}"
    );
    assert!(subjects.contains(&json!("Re: question")), "{subjects:?}");

    // Attachments: an image a model sees, text as text, a file as a blob.
    let parts = message["attachments"]
        .as_array()
        .expect("attachments")
        .clone();
    let part =
        |name: &str| parts.iter().find(|p| p["name"] == name).expect("the part")["id"].clone();
    let image = call(
        &service,
        &key,
        "get_attachment",
        json!({"messageId": id, "attachmentId": part("dot.png")}),
    );
    let info = structured("get_attachment", &schema("get_attachment"), &image);
    assert_eq!(info["returnedAs"], "image");
    assert_eq!(image["content"][1]["type"], "image");
    assert_eq!(image["content"][1]["mimeType"], "image/png");
    assert_eq!(
        STANDARD
            .decode(image["content"][1]["data"].as_str().expect("data"))
            .expect("base64"),
        PNG
    );
    let text = call(
        &service,
        &key,
        "get_attachment",
        json!({"messageId": id, "attachmentId": part("notes.txt")}),
    );
    structured("get_attachment", &schema("get_attachment"), &text);
    assert_eq!(
        text["content"][1],
        json!({"type": "text", "text": "plain notes"})
    );
    let file = call(
        &service,
        &key,
        "get_attachment",
        json!({"messageId": id, "attachmentId": part("a.pdf")}),
    );
    assert_eq!(
        structured("get_attachment", &schema("get_attachment"), &file)["returnedAs"],
        "resource"
    );
    let blob = &file["content"][1]["resource"];
    assert_eq!(blob["mimeType"], "application/pdf");
    assert_eq!(
        STANDARD
            .decode(blob["blob"].as_str().expect("blob"))
            .expect("base64"),
        b"%PDF-1.4 not really\n"
    );

    let deleted = run("delete_message", json!({"id": id}));
    assert_eq!(deleted, json!({"id": id, "deleted": true}));
    seen.push("get_attachment".to_owned());
    seen.sort();
    seen.dedup();
    let mut every: Vec<String> = ToolName::ALL.map(|t| t.as_str().to_owned()).to_vec();
    every.sort();
    assert_eq!(seen, every, "every tool was called");

    // Failures are results with isError and the API's error, not protocol errors.
    for (tool, arguments, code) in [
        ("get_message", json!({"id": id}), "not_found"),
        ("delete_message", json!({"id": id}), "not_found"),
        ("get_message", json!({"id": "seven"}), "invalid_request"),
        (
            "get_message",
            json!({"id": 1, "maxChars": 0}),
            "invalid_request",
        ),
        ("list_messages", json!({"limit": 1000}), "invalid_request"),
        ("list_messages", json!({"colour": "red"}), "invalid_request"),
        ("search_messages", json!({}), "invalid_request"),
        (
            "wait_for_message",
            json!({"timeout": 61}),
            "invalid_request",
        ),
        (
            "send_message",
            json!({"to": "nobody@agents.test", "subject": "s", "text": "t"}),
            "invalid_request",
        ),
        (
            "send_message",
            json!({"to": "x@example.com", "subject": "s"}),
            "invalid_request",
        ),
        (
            "get_attachment",
            json!({"messageId": 1, "attachmentId": "../2"}),
            "invalid_request",
        ),
        ("whoami", json!({"extra": 1}), "invalid_request"),
    ] {
        let result = call(&service, &key, tool, arguments.clone());
        assert_eq!(result["isError"], true, "{tool} {arguments}: {result}");
        assert!(result.get("structuredContent").is_none());
        let error: Json =
            serde_json::from_str(result["content"][0]["text"].as_str().expect("text"))
                .expect("the API's error JSON");
        assert_eq!(error["code"], code, "{tool} {arguments}: {error}");
        assert!(error["error"].as_str().expect("a message").len() > 10);
    }
}

#[test]
fn in_2025_03_26_results_carry_the_json_as_text_only() {
    let service = TestService::new();
    let key = service.signup("alice");
    let answer = rpc(
        &service,
        &key,
        None,
        "tools/call",
        json!({"name": "whoami"}),
    );
    let result = &answer["result"];
    assert!(result.get("structuredContent").is_none(), "{result}");
    let me: Json =
        serde_json::from_str(result["content"][0]["text"].as_str().expect("text")).expect("JSON");
    assert_eq!(me["email"], ALICE);
}

// ---------------------------------------------------- the same ApiCall as REST

#[test]
fn every_tool_makes_the_api_calls_its_rest_route_makes() {
    let service = TestService::new();
    let key = service.signup("alice");
    service.signup("bob");
    let id = deliver(&service, &verification_mail("same", 10));
    let (_, message) = service.call("GET", &format!("/api/messages/{id}"), &key, None);
    let part = message["attachments"][0]["id"]
        .as_str()
        .expect("a part")
        .to_owned();
    let (_, threads) = service.call("GET", "/api/threads", &key, None);
    let thread = threads["threads"][0]["id"].as_u64().expect("a thread");
    // A thread of its own, for the deletion (REST deletes it, the tool then
    // finds it gone).
    let other = deliver(&service, &verification_mail("other", 10));
    let (_, other) = service.call("GET", &format!("/api/messages/{other}"), &key, None);
    let doomed = other["threadId"].as_u64().expect("a thread");
    assert_ne!(doomed, thread);
    let auth = format!("Bearer {key}");
    let rest = |method: &str, path: &str, body: Option<Json>, idem: Option<&str>| {
        let mut request = HttpRequest::new(method, path).header("authorization", &auth);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        if let Some(idem) = idem {
            request = request.header("idempotency-key", idem);
        }
        request
    };
    let send = json!({"to": ["bob@agents.test"], "cc": "bob+cc@agents.test", "subject": "s", "text": "t",
        "attachments": [{"filename": "a.txt", "contentType": "text/plain", "content": "aGk="}]});
    let mut with_key = send.clone();
    with_key["idempotencyKey"] = json!("k-1");
    let cases: Vec<(&str, Json, HttpRequest)> = vec![
        ("whoami", json!({}), rest("GET", "/api/me", None, None)),
        (
            "list_messages",
            json!({"limit": 3, "cursor": 99, "unread": true, "since": "2026-01-01T00:00:00Z"}),
            rest(
                "GET",
                "/api/messages?limit=3&cursor=99&unread=true&since=2026-01-01T00%3A00%3A00Z",
                None,
                None,
            ),
        ),
        (
            "get_message",
            json!({"id": id, "maxChars": 5}),
            rest("GET", &format!("/api/messages/{id}"), None, None),
        ),
        (
            "search_messages",
            json!({"q": "from:github.com code", "limit": 2}),
            rest(
                "GET",
                "/api/messages/search?q=from%3Agithub.com+code&limit=2",
                None,
                None,
            ),
        ),
        (
            "wait_for_message",
            json!({"after": 0, "timeout": 2, "q": "subject:same"}),
            rest(
                "GET",
                "/api/messages/wait?after=0&timeout=2&q=subject%3Asame",
                None,
                None,
            ),
        ),
        (
            "send_message",
            with_key,
            rest("POST", "/api/messages", Some(send), Some("k-1")),
        ),
        (
            "reply_to_message",
            json!({"id": id, "text": "r", "replyAll": true}),
            rest(
                "POST",
                &format!("/api/messages/{id}/reply"),
                Some(json!({"text": "r", "replyAll": true})),
                None,
            ),
        ),
        (
            "forward_message",
            json!({"id": id, "to": "bob@agents.test", "includeAttachments": false}),
            rest(
                "POST",
                &format!("/api/messages/{id}/forward"),
                Some(json!({"to": "bob@agents.test", "includeAttachments": false})),
                None,
            ),
        ),
        (
            "list_threads",
            json!({"limit": 4, "unread": false}),
            rest("GET", "/api/threads?limit=4&unread=false", None, None),
        ),
        (
            "get_thread",
            json!({"id": thread}),
            rest("GET", &format!("/api/threads/{thread}"), None, None),
        ),
        (
            "mark_read",
            json!({"id": id, "read": false}),
            rest(
                "PATCH",
                &format!("/api/messages/{id}"),
                Some(json!({"read": false})),
                None,
            ),
        ),
        (
            "get_attachment",
            json!({"messageId": id, "attachmentId": part}),
            rest(
                "GET",
                &format!("/api/messages/{id}/attachments/{part}"),
                None,
                None,
            ),
        ),
        (
            "delete_message",
            json!({"id": id}),
            rest("DELETE", &format!("/api/messages/{id}"), None, None),
        ),
        (
            "delete_thread",
            json!({"id": doomed}),
            rest("DELETE", &format!("/api/threads/{doomed}"), None, None),
        ),
    ];
    let mut covered = Vec::new();
    for (tool, arguments, request) in cases {
        let namespace = service.objects();
        namespace.api_calls(true);
        let via_rest = service.request(&request);
        let rest_calls = namespace.api_calls(true);
        let result = call(&service, &key, tool, arguments);
        let mcp_calls = namespace.api_calls(true);
        // tools/call asks nothing else of the inbox than the tool's calls.
        assert!(
            !rest_calls.is_empty(),
            "{tool}: REST made no call ({})",
            via_rest.status
        );
        assert_eq!(mcp_calls, rest_calls, "{tool}");
        let name = ToolName::parse(tool).expect("a tool");
        let last: ApiCall =
            serde_json::from_value(rest_calls.last().expect("a call").clone()).expect("an ApiCall");
        assert_eq!(
            last.access(),
            name.access(),
            "{tool}: the tool's access is its call's"
        );
        // The REST answer and the tool's agree on success (a delete's REST
        // call went first, so the tool's finds nothing left: 404).
        assert_eq!(
            result["isError"] == true,
            via_rest.status >= 400 || tool.starts_with("delete_"),
            "{tool}: {result} vs {}",
            via_rest.status
        );
        covered.push(name);
    }
    let mut every = ToolName::ALL.map(ToolName::as_str).to_vec();
    every.sort();
    let mut covered: Vec<&str> = covered.into_iter().map(ToolName::as_str).collect();
    covered.sort();
    assert_eq!(covered, every, "every tool");
}

#[test]
fn every_revision_negotiates_and_lists_the_same_tools() {
    let service = TestService::new();
    let key = service.signup("alice");
    for version in Version::ALL {
        let header = Some(version.as_str());
        let listed = tools(&service, &key, header);
        assert_eq!(listed.len(), ToolName::ALL.len(), "{version:?}");
        let answer = rpc(
            &service,
            &key,
            header,
            "tools/call",
            json!({"name": "whoami"}),
        );
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text");
        assert!(text.contains(ALICE), "{version:?}");
    }
}

/// A tools/call future at 2025-11-25, whose result is validated.
async fn call_async(service: &TestService, key: &str, tool: &str, arguments: Json) -> Json {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}});
    let reply = service
        .request_async(&post(Some(key), NEW, &body.to_string()))
        .await;
    assert_eq!(reply.status, 200);
    json_of(&reply)["result"].clone()
}

#[test]
fn wait_for_message_is_answered_by_mail_delivered_while_it_waits_or_by_its_timeout() {
    let service = TestService::new();
    let key = service.signup("alice");
    let listed = tools(&service, &key, NEW);
    let schema = listed
        .iter()
        .find(|t| t["name"] == "wait_for_message")
        .expect("listed")["outputSchema"]
        .clone();
    let waiting = || service.objects().waiting(&object_id("alice"));
    // The test drives both futures on one thread: each side keeps yielding
    // until the tool call has answered, so the wait is polled again after
    // a delivery or a clock tick.
    let done = Cell::new(false);
    let settled = || until("the tool call answers", || done.get());
    pollster::block_on(async {
        let wait = async {
            let result = call_async(
                &service,
                &key,
                "wait_for_message",
                json!({"timeout": 30, "q": "subject:code"}),
            )
            .await;
            done.set(true);
            result
        };
        let mail = async {
            until("the tool call waits", || waiting() == 1).await;
            let other = verification_mail("other", 10);
            service
                .deliver_async("outside@example.com", ALICE, other.as_bytes())
                .await;
            // Woken, it looked, found nothing of its own and waits again.
            until("the tool call waits again", || waiting() == 1).await;
            let code = verification_mail("code", 10);
            service
                .deliver_async("outside@example.com", ALICE, code.as_bytes())
                .await;
            settled().await;
        };
        let (result, ()) = join!(wait, mail);
        let waited = structured("wait_for_message", &schema, &result);
        assert_eq!(waited["message"]["subject"], "code");
        assert_eq!(waited["message"]["codes"][0]["value"], "482913");
    });
    assert_eq!(waiting(), 0);
    pollster::block_on(async {
        done.set(false);
        let wait = async {
            let result =
                call_async(&service, &key, "wait_for_message", json!({"timeout": 5})).await;
            done.set(true);
            result
        };
        let clock = async {
            until("the tool call waits", || waiting() == 1).await;
            service.clock.advance(4_999);
            yield_now().await;
            assert!(!done.get(), "it waits its whole timeout");
            service.clock.advance(1);
            settled().await;
        };
        let (result, ()) = join!(wait, clock);
        let nothing = structured("wait_for_message", &schema, &result);
        assert_eq!(nothing["message"], Json::Null);
    });
}

#[test]
fn an_attachment_over_the_cap_is_a_tool_error_that_says_where_to_get_it() {
    let service = TestService::new();
    let key = service.signup("alice");
    let big = STANDARD.encode(vec![7u8; router_worker::mcp::MAX_ATTACHMENT_BYTES + 1]);
    let raw = format!(
        "From: a@example.com\r\nTo: {ALICE}\r\nSubject: big\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
         --b\r\nContent-Type: application/octet-stream; name=big.bin\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{big}\r\n--b--\r\n"
    );
    let id = deliver(&service, &raw);
    let (_, message) = service.call("GET", &format!("/api/messages/{id}"), &key, None);
    let part = message["attachments"][0]["id"].clone();
    let result = call(
        &service,
        &key,
        "get_attachment",
        json!({"messageId": id, "attachmentId": part}),
    );
    assert_eq!(result["isError"], true, "{result}");
    let error: Json =
        serde_json::from_str(result["content"][0]["text"].as_str().expect("text")).expect("JSON");
    assert_eq!(error["code"], "too_large");
    let sentence = error["error"].as_str().expect("a sentence");
    assert!(
        sentence.contains(&format!("/api/messages/{id}/attachments/")),
        "{sentence}"
    );
}
