//! The router alone, over fakes of its ports that record what it asks and
//! answer what each test scripts: the route table against what dispatch
//! answers, API answers passed through unread, and how the router relays an
//! inbox that answers 503. (The whole system, router and real InboxDO, is
//! tested through testkit.)

use protocol::key::KEY_RANDOM_BYTES;
use protocol::wire::InboxRequest;
use protocol::{ApiError, ApiKey, ErrorCode, Reply};
use router_worker::{
    Directory, Entropy, HttpRequest, InboxNamespace, Method, Outgoing, PortError, Route, Router,
    RouterConfig, Trace, key_index_key,
};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Runs a future of the router over these fakes, which never wait.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the fakes never wait"),
    }
}

#[derive(Debug, Default)]
struct FakeDirectory(RefCell<HashMap<String, String>>);

impl Directory for FakeDirectory {
    async fn get(&self, key: &str) -> Result<Option<String>, PortError> {
        Ok(self.0.borrow().get(key).cloned())
    }
    async fn put(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.0.borrow_mut().insert(key.to_owned(), value.to_owned());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), PortError> {
        self.0.borrow_mut().remove(key);
        Ok(())
    }
}

/// An answer as the fake platform holds it: a distinct type, so a test sees
/// whether the router handed it on or read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer(Reply);

/// A namespace whose every object answers API calls with `api` and the
/// router's protocol calls with `protocol`, recording the ops sent.
#[derive(Debug)]
struct ScriptedNamespace {
    api: Reply,
    protocol: Reply,
    sent: RefCell<Vec<String>>,
}

thread_local! {
    /// Answers read on this thread (`read` has no `self`; each test runs on
    /// its own thread).
    static READS: Cell<usize> = const { Cell::new(0) };
}

impl ScriptedNamespace {
    fn new(api: Reply, protocol: Reply) -> Self {
        READS.with(|reads| reads.set(0));
        ScriptedNamespace {
            api,
            protocol,
            sent: RefCell::new(Vec::new()),
        }
    }

    fn reads(&self) -> usize {
        READS.with(Cell::get)
    }
}

impl InboxNamespace for ScriptedNamespace {
    type Payload = Vec<u8>;
    type Answer = Answer;

    fn payload_of(bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    fn id_for_handle(&self, handle: &str) -> Result<String, PortError> {
        Ok(format!("object-of-{handle}"))
    }

    async fn send(
        &self,
        _id: &str,
        request: &InboxRequest,
        _payload: Option<Vec<u8>>,
    ) -> Result<Answer, PortError> {
        let op = serde_json::to_value(request).expect("a request serializes")["op"]
            .as_str()
            .expect("an op")
            .to_owned();
        self.sent.borrow_mut().push(op);
        Ok(Answer(match request {
            InboxRequest::Api { .. } => self.api.clone(),
            _ => self.protocol.clone(),
        }))
    }

    fn status(answer: &Answer) -> u16 {
        answer.0.status
    }

    async fn read(answer: Answer) -> Result<Reply, PortError> {
        READS.with(|reads| reads.set(reads.get() + 1));
        Ok(answer.0)
    }
}

#[derive(Debug)]
struct Counter(u8);

impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), PortError> {
        for byte in buf {
            self.0 = self.0.wrapping_add(1);
            *byte = self.0;
        }
        Ok(())
    }
}

/// A router whose KV knows one key, and that key.
fn router(namespace: ScriptedNamespace) -> (Router<FakeDirectory, ScriptedNamespace>, String) {
    let key = ApiKey::from_random([7; KEY_RANDOM_BYTES]);
    let directory = FakeDirectory::default();
    block_on(directory.put(&key_index_key(&key.hash()), "object-of-owner")).expect("put");
    let config = RouterConfig::from_mail_domain_var(Some("agents.test"));
    (
        Router::new(directory, namespace, config),
        key.expose().to_owned(),
    )
}

/// The answer to `request` as the client gets it, and the log line's status.
fn answer(
    router: &Router<FakeDirectory, ScriptedNamespace>,
    request: &HttpRequest,
) -> (Outgoing<Answer>, u16) {
    let trace = Trace::default();
    let outgoing = block_on(router.handle_traced(request, &mut Counter(0), &trace));
    let line = router_worker::log::request_line(
        &request.method,
        &request.path,
        outgoing.status::<ScriptedNamespace>(),
        0,
        &trace,
    );
    let line: Value = serde_json::from_str(&line).expect("a JSON line");
    let status = line["status"].as_u64().expect("a status") as u16;
    (outgoing, status)
}

fn reply_of(outgoing: Outgoing<Answer>) -> Reply {
    match outgoing {
        Outgoing::Reply(reply) => reply,
        Outgoing::Inbox(Answer(reply)) => reply,
    }
}

fn json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("a JSON body")
}

/// Every route's path, with message id 1.
const PATHS: [&str; 11] = [
    "/api/health",
    "/api/health/deep",
    "/api/openapi.json",
    "/llms.txt",
    "/api/signup",
    "/api/me",
    "/api/messages",
    "/api/messages/1",
    "/api/messages/1/raw",
    "/api/webhook",
    "/api/webhook/deliveries",
];

#[test]
fn every_route_answers_its_methods_and_refuses_the_others_with_allow() {
    let ok = Reply::json(200, &serde_json::json!({}));
    let (router, key) = router(ScriptedNamespace::new(ok, Reply::no_content()));
    let templates: Vec<&str> = PATHS
        .iter()
        .map(|path| Route::parse(path).expect("a route").template())
        .collect();
    assert_eq!(
        templates.len(),
        templates
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    let other_methods = ["OPTIONS", "QUERY", "get", "Post", ""];
    for path in PATHS {
        let route = Route::parse(path).expect("a route");
        let allowed = route.methods();
        let names: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
        let methods = Method::ALL.iter().map(|m| m.as_str()).chain(other_methods);
        for method in methods {
            let request = HttpRequest::new(method, path)
                .header("authorization", &format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body("{}");
            let (outgoing, logged) = answer(&router, &request);
            let reply = reply_of(outgoing);
            assert_eq!(logged, reply.status, "{method} {path}");
            if names.contains(&method) {
                assert!(
                    reply.status != 405 && reply.status != 404,
                    "{method} {path} is in the table but answered {}",
                    reply.status
                );
                assert_eq!(reply.header("allow"), None, "{method} {path}");
            } else {
                assert_eq!(reply.status, 405, "{method} {path}");
                assert_eq!(
                    reply.header("allow"),
                    Some(names.join(", ").as_str()),
                    "{method} {path}"
                );
                assert_eq!(json(&reply)["code"], "method_not_allowed");
            }
        }
    }
}

#[test]
fn an_api_answer_is_passed_through_unread_and_protocol_answers_are_read() {
    let inbox = Reply {
        status: 200,
        headers: vec![("content-type".into(), "message/rfc822".into())],
        body: b"From: a@b\r\n\r\nraw bytes".to_vec(),
    };
    let (router, key) = router(ScriptedNamespace::new(inbox.clone(), Reply::no_content()));
    let request = HttpRequest::new("GET", "/api/messages/1/raw")
        .header("authorization", &format!("Bearer {key}"));
    let (outgoing, logged) = answer(&router, &request);
    match outgoing {
        Outgoing::Inbox(answer) => assert_eq!(answer, Answer(inbox)),
        Outgoing::Reply(reply) => panic!("the router answered itself: {reply:?}"),
    }
    assert_eq!(logged, 200);
    assert_eq!(router.namespace().reads(), 0, "the API answer was read");
    assert_eq!(*router.namespace().sent.borrow(), ["api"]);

    // Signup's own calls (throttle, claim, confirm) are read whole.
    let (outgoing, logged) = answer(&router, &HttpRequest::new("POST", "/api/signup"));
    let reply = reply_of(outgoing);
    assert_eq!((reply.status, logged), (201, 201), "{reply:?}");
    assert_eq!(router.namespace().reads(), 3);
    assert_eq!(
        *router.namespace().sent.borrow(),
        ["api", "throttle", "claim", "confirm"]
    );
}

/// An InboxDO that could not read the router's request (a version skew
/// between the two scripts) answers 503 `unavailable`: the client gets that
/// 503, never a 400, and the log line shows a 5xx.
#[test]
fn an_inbox_that_cannot_read_the_request_is_a_503_for_the_client_and_the_log() {
    let skew = Reply::error(&ApiError::unavailable(
        "The inbox could not read this request. Retry shortly.",
    ));
    let (router, key) = router(ScriptedNamespace::new(skew.clone(), skew.clone()));
    let authorized = |method: &str, path: &str| {
        HttpRequest::new(method, path).header("authorization", &format!("Bearer {key}"))
    };
    for request in [
        authorized("GET", "/api/me"),
        authorized("GET", "/api/messages/1"),
        authorized("DELETE", "/api/webhook"),
        HttpRequest::new("POST", "/api/signup"),
        HttpRequest::new("GET", "/api/health/deep"),
    ] {
        let (outgoing, logged) = answer(&router, &request);
        let reply = reply_of(outgoing);
        let what = format!("{} {}", request.method, request.path);
        assert_eq!((reply.status, logged), (503, 503), "{what}: {reply:?}");
        assert_eq!(json(&reply)["code"], "unavailable", "{what}");
    }
    // The API call's answer is the inbox's own, byte for byte.
    let (outgoing, _) = answer(&router, &authorized("GET", "/api/me"));
    assert_eq!(reply_of(outgoing), skew);
}

/// The limiter's 429 reaches the client as the limiter gave it: its body
/// and its `Retry-After`.
#[test]
fn a_throttled_signup_answers_the_limiters_429_with_retry_after() {
    let limited = Reply::error(&ApiError::new(
        ErrorCode::RateLimited,
        "Too many requests from here: 20 per 3600 s. Retry in 42 s.",
    ))
    .with_header("retry-after", "42");
    let (router, _) = router(ScriptedNamespace::new(Reply::no_content(), limited.clone()));
    let (outgoing, logged) = answer(&router, &HttpRequest::new("POST", "/api/signup"));
    let reply = reply_of(outgoing);
    assert_eq!(logged, 429);
    assert_eq!(reply, limited);
    assert_eq!(*router.namespace().sent.borrow(), ["throttle"]);
}
