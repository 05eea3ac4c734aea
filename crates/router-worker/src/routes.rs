//! The route table: every path the router answers, the template the log names
//! it by and the methods it accepts, in one enum. Dispatch matches it
//! exhaustively, so a new route cannot fall through to another one's answer.

use crate::console::{self, Asset};
use crate::extract::{attachment_id, key_id, message_id, thread_id};
use protocol::ApiError;
use protocol::limits::{MAX_ATTACHMENT_BODY, MAX_JSON_BODY};

/// An HTTP method a route can accept. Methods are case-sensitive (RFC 9110):
/// `get` is not `GET`, and gets a 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// Every method a route can accept.
    pub const ALL: [Method; 6] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ];

    /// The method spelled exactly `text`, if a route can accept it.
    pub fn parse(text: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// Its name, in upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A path the router answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api/health`.
    Health,
    /// `/api/health/deep`.
    DeepHealth,
    /// `/api/openapi.json`.
    OpenApi,
    /// `/llms.txt`.
    LlmsTxt,
    /// `/api/signup`.
    Signup,
    /// `/mcp`: the MCP endpoint (see [`crate::mcp`]).
    Mcp,
    /// `/`, `/console` and `/console/<file>`: the web console (see
    /// [`crate::console`]); only the files of its table parse.
    Console(&'static Asset),
    /// A route of a key's owner: the caller is authenticated before anything
    /// else about the request is looked at.
    Owner(OwnerRoute),
}

/// The routes that act on the caller's own inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRoute {
    /// `/api/me`.
    Me,
    /// `/api/messages`.
    Messages,
    /// `/api/messages/search`.
    Search,
    /// `/api/messages/wait`.
    Wait,
    /// `/api/events` (a WebSocket).
    Events,
    /// `/api/messages/:id`.
    Message(MessageRef),
    /// `/api/messages/:id/raw`.
    MessageRaw(MessageRef),
    /// `/api/messages/:id/reply`.
    MessageReply(MessageRef),
    /// `/api/messages/:id/forward`.
    MessageForward(MessageRef),
    /// `/api/messages/:id/attachments/:attachmentId`.
    MessageAttachment(MessageRef, AttachmentRef),
    /// `/api/threads`.
    Threads,
    /// `/api/threads/:id`.
    Thread(ThreadRef),
    /// `/api/webhook`.
    Webhook,
    /// `/api/webhook/deliveries`.
    WebhookDeliveries,
    /// `/api/keys`.
    Keys,
    /// `/api/keys/:id`.
    Key(KeyRef),
    /// `/api/export`.
    Export,
}

/// A message id as the path spells it. It is checked ([`MessageRef::id`])
/// only once the caller is known, so a request without a valid key gets 401
/// whatever its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef(String);

impl MessageRef {
    /// The path segment, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id: a positive decimal integer below 2^53, or a 400.
    pub fn id(&self) -> Result<u64, ApiError> {
        message_id(&self.0)
    }
}

/// A thread id as the path spells it, checked like a [`MessageRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRef(String);

impl ThreadRef {
    /// The path segment, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id: a positive decimal integer below 2^53, or a 400.
    pub fn id(&self) -> Result<u64, ApiError> {
        thread_id(&self.0)
    }
}

/// A key id as the path spells it, checked like a [`MessageRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef(String);

impl KeyRef {
    /// The path segment, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id: a positive decimal integer below 2^53, or a 400.
    pub fn id(&self) -> Result<u64, ApiError> {
        key_id(&self.0)
    }
}

/// An attachment id as the path spells it, checked like a [`MessageRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRef(String);

impl AttachmentRef {
    /// The path segment, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id: a MIME section number (`2`, `1.2`), or a 400.
    pub fn id(&self) -> Result<String, ApiError> {
        attachment_id(&self.0)
    }
}

impl Route {
    /// The route at `path` (still percent-encoded, starting with `/`), if any.
    pub fn parse(path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        let owner = |route| Some(Route::Owner(route));
        let message = |id: &str| MessageRef(id.to_owned());
        match segments.as_slice() {
            ["api", "health"] => Some(Route::Health),
            ["api", "health", "deep"] => Some(Route::DeepHealth),
            ["api", "openapi.json"] => Some(Route::OpenApi),
            ["llms.txt"] => Some(Route::LlmsTxt),
            ["api", "signup"] => Some(Route::Signup),
            ["mcp"] => Some(Route::Mcp),
            [""] | ["console"] => Some(Route::Console(console::index())),
            ["console", name] => console::named(name).map(Route::Console),
            ["api", "me"] => owner(OwnerRoute::Me),
            ["api", "messages"] => owner(OwnerRoute::Messages),
            // (Before `:id`: neither is a message id.)
            ["api", "messages", "search"] => owner(OwnerRoute::Search),
            ["api", "messages", "wait"] => owner(OwnerRoute::Wait),
            ["api", "messages", id] => owner(OwnerRoute::Message(message(id))),
            ["api", "messages", id, "raw"] => owner(OwnerRoute::MessageRaw(message(id))),
            ["api", "messages", id, "reply"] => owner(OwnerRoute::MessageReply(message(id))),
            ["api", "messages", id, "forward"] => owner(OwnerRoute::MessageForward(message(id))),
            ["api", "messages", id, "attachments", part] => owner(OwnerRoute::MessageAttachment(
                message(id),
                AttachmentRef((*part).to_owned()),
            )),
            ["api", "events"] => owner(OwnerRoute::Events),
            ["api", "threads"] => owner(OwnerRoute::Threads),
            ["api", "threads", id] => owner(OwnerRoute::Thread(ThreadRef((*id).to_owned()))),
            ["api", "webhook"] => owner(OwnerRoute::Webhook),
            ["api", "webhook", "deliveries"] => owner(OwnerRoute::WebhookDeliveries),
            ["api", "keys"] => owner(OwnerRoute::Keys),
            ["api", "keys", id] => owner(OwnerRoute::Key(KeyRef((*id).to_owned()))),
            ["api", "export"] => owner(OwnerRoute::Export),
            _ => None,
        }
    }

    /// The route's template (`/api/messages/:id`): what the log names it by,
    /// never the path with its ids.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Health => "/api/health",
            Route::DeepHealth => "/api/health/deep",
            Route::OpenApi => "/api/openapi.json",
            Route::LlmsTxt => "/llms.txt",
            Route::Signup => "/api/signup",
            Route::Mcp => "/mcp",
            Route::Console(asset) if *asset == console::index() => "/",
            Route::Console(asset) => asset.path,
            Route::Owner(route) => route.template(),
        }
    }

    /// The methods the route accepts; a 405 lists them in `Allow`.
    pub fn methods(&self) -> &'static [Method] {
        use Method::{Get, Head, Post};
        match self {
            Route::Health
            | Route::DeepHealth
            | Route::OpenApi
            | Route::LlmsTxt
            | Route::Console(_) => &[Get, Head],
            Route::Signup | Route::Mcp => &[Post],
            Route::Owner(route) => route.methods(),
        }
    }

    /// The largest request body the route takes with `method` (as sent):
    /// 10 MiB where a message may carry attachments (a POST of a send,
    /// reply or forward), 64 KiB everywhere else.
    pub fn body_limit(&self, method: &str) -> usize {
        let post = Method::parse(method) == Some(Method::Post);
        match self {
            Route::Owner(
                OwnerRoute::Messages | OwnerRoute::MessageReply(_) | OwnerRoute::MessageForward(_),
            ) if post => MAX_ATTACHMENT_BODY,
            // A tool call may send a message with its attachments.
            Route::Mcp if post => MAX_ATTACHMENT_BODY,
            _ => MAX_JSON_BODY,
        }
    }

    /// The path this route was parsed from: its template with the id as sent.
    pub fn path(&self) -> String {
        match self {
            Route::Owner(OwnerRoute::MessageAttachment(id, part)) => self
                .template()
                .replace(":id", id.as_str())
                .replace(":attachmentId", part.as_str()),
            Route::Owner(
                OwnerRoute::Message(id)
                | OwnerRoute::MessageRaw(id)
                | OwnerRoute::MessageReply(id)
                | OwnerRoute::MessageForward(id),
            ) => self.template().replace(":id", id.as_str()),
            Route::Owner(OwnerRoute::Thread(id)) => self.template().replace(":id", id.as_str()),
            Route::Owner(OwnerRoute::Key(id)) => self.template().replace(":id", id.as_str()),
            route => route.template().to_owned(),
        }
    }
}

impl OwnerRoute {
    /// See [`Route::template`].
    pub fn template(&self) -> &'static str {
        match self {
            OwnerRoute::Me => "/api/me",
            OwnerRoute::Messages => "/api/messages",
            OwnerRoute::Search => "/api/messages/search",
            OwnerRoute::Wait => "/api/messages/wait",
            OwnerRoute::Events => "/api/events",
            OwnerRoute::Message(_) => "/api/messages/:id",
            OwnerRoute::MessageRaw(_) => "/api/messages/:id/raw",
            OwnerRoute::MessageReply(_) => "/api/messages/:id/reply",
            OwnerRoute::MessageForward(_) => "/api/messages/:id/forward",
            OwnerRoute::MessageAttachment(..) => "/api/messages/:id/attachments/:attachmentId",
            OwnerRoute::Threads => "/api/threads",
            OwnerRoute::Thread(_) => "/api/threads/:id",
            OwnerRoute::Webhook => "/api/webhook",
            OwnerRoute::WebhookDeliveries => "/api/webhook/deliveries",
            OwnerRoute::Keys => "/api/keys",
            OwnerRoute::Key(_) => "/api/keys/:id",
            OwnerRoute::Export => "/api/export",
        }
    }

    /// See [`Route::methods`].
    pub fn methods(&self) -> &'static [Method] {
        use Method::{Delete, Get, Patch, Post, Put};
        match self {
            OwnerRoute::Search
            | OwnerRoute::Wait
            | OwnerRoute::Events
            | OwnerRoute::MessageRaw(_)
            | OwnerRoute::MessageAttachment(..)
            | OwnerRoute::Threads
            | OwnerRoute::WebhookDeliveries
            | OwnerRoute::Export => &[Get],
            OwnerRoute::Thread(_) => &[Get, Delete],
            OwnerRoute::MessageReply(_) | OwnerRoute::MessageForward(_) => &[Post],
            OwnerRoute::Messages | OwnerRoute::Keys => &[Get, Post],
            OwnerRoute::Me | OwnerRoute::Message(_) => &[Get, Patch, Delete],
            OwnerRoute::Webhook => &[Get, Put, Delete],
            OwnerRoute::Key(_) => &[Delete],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every route, with `id` as its message id where it has one.
    fn every_route(id: &str) -> Vec<Route> {
        let id = MessageRef(id.to_owned());
        vec![
            Route::Health,
            Route::DeepHealth,
            Route::OpenApi,
            Route::LlmsTxt,
            Route::Signup,
            Route::Owner(OwnerRoute::Me),
            Route::Owner(OwnerRoute::Messages),
            Route::Owner(OwnerRoute::Search),
            Route::Owner(OwnerRoute::Wait),
            Route::Owner(OwnerRoute::Events),
            Route::Owner(OwnerRoute::Message(id.clone())),
            Route::Owner(OwnerRoute::MessageRaw(id.clone())),
            Route::Owner(OwnerRoute::MessageReply(id.clone())),
            Route::Owner(OwnerRoute::MessageForward(id.clone())),
            Route::Owner(OwnerRoute::MessageAttachment(
                id.clone(),
                AttachmentRef(id.as_str().to_owned()),
            )),
            Route::Owner(OwnerRoute::Threads),
            Route::Owner(OwnerRoute::Thread(ThreadRef(id.as_str().to_owned()))),
            Route::Owner(OwnerRoute::Webhook),
            Route::Owner(OwnerRoute::WebhookDeliveries),
            Route::Owner(OwnerRoute::Keys),
            Route::Owner(OwnerRoute::Key(KeyRef(id.as_str().to_owned()))),
            Route::Owner(OwnerRoute::Export),
            Route::Mcp,
            Route::Console(console::index()),
        ]
        .into_iter()
        .chain(console::ASSETS.iter().skip(1).map(Route::Console))
        .collect()
    }

    /// A route's place in the table. This match has no catch-all, so a new
    /// route does not compile until it is given a place here, and the test
    /// below then fails until `every_route` lists it.
    fn place(route: &Route) -> usize {
        match route {
            Route::Health => 0,
            Route::DeepHealth => 1,
            Route::OpenApi => 2,
            Route::LlmsTxt => 3,
            Route::Signup => 4,
            Route::Owner(route) => match route {
                OwnerRoute::Me => 5,
                OwnerRoute::Messages => 6,
                OwnerRoute::Search => 7,
                OwnerRoute::Wait => 8,
                OwnerRoute::Events => 9,
                OwnerRoute::Message(_) => 10,
                OwnerRoute::MessageRaw(_) => 11,
                OwnerRoute::MessageReply(_) => 12,
                OwnerRoute::MessageForward(_) => 13,
                OwnerRoute::MessageAttachment(..) => 14,
                OwnerRoute::Threads => 15,
                OwnerRoute::Thread(_) => 16,
                OwnerRoute::Webhook => 17,
                OwnerRoute::WebhookDeliveries => 18,
                OwnerRoute::Keys => 19,
                OwnerRoute::Key(_) => 20,
                OwnerRoute::Export => 21,
            },
            Route::Mcp => 22,
            Route::Console(asset) => {
                23 + console::ASSETS
                    .iter()
                    .position(|a| a == *asset)
                    .expect("a console file is in the table")
            }
        }
    }

    #[test]
    fn every_route_is_listed_once() {
        let places: Vec<usize> = every_route("1").iter().map(place).collect();
        let last = 22 + console::ASSETS.len();
        assert_eq!(places, (0..=last).collect::<Vec<_>>());
    }

    #[test]
    fn each_route_has_its_template_and_methods() {
        use Method::{Delete, Get, Head, Patch, Post, Put};
        let table: Vec<(&str, &[Method])> = every_route("7")
            .iter()
            .map(|r| (r.template(), r.methods()))
            .collect();
        let expected: Vec<(&str, &[Method])> = vec![
            ("/api/health", &[Get, Head]),
            ("/api/health/deep", &[Get, Head]),
            ("/api/openapi.json", &[Get, Head]),
            ("/llms.txt", &[Get, Head]),
            ("/api/signup", &[Post]),
            ("/api/me", &[Get, Patch, Delete]),
            ("/api/messages", &[Get, Post]),
            ("/api/messages/search", &[Get]),
            ("/api/messages/wait", &[Get]),
            ("/api/events", &[Get]),
            ("/api/messages/:id", &[Get, Patch, Delete]),
            ("/api/messages/:id/raw", &[Get]),
            ("/api/messages/:id/reply", &[Post]),
            ("/api/messages/:id/forward", &[Post]),
            ("/api/messages/:id/attachments/:attachmentId", &[Get]),
            ("/api/threads", &[Get]),
            ("/api/threads/:id", &[Get, Delete]),
            ("/api/webhook", &[Get, Put, Delete]),
            ("/api/webhook/deliveries", &[Get]),
            ("/api/keys", &[Get, Post]),
            ("/api/keys/:id", &[Delete]),
            ("/api/export", &[Get]),
            ("/mcp", &[Post]),
            ("/", &[Get, Head]),
            ("/console/app.js", &[Get, Head]),
            ("/console/api.js", &[Get, Head]),
            ("/console/dom.js", &[Get, Head]),
            ("/console/mail.js", &[Get, Head]),
            ("/console/compose.js", &[Get, Head]),
            ("/console/settings.js", &[Get, Head]),
            ("/console/console.css", &[Get, Head]),
        ];
        assert_eq!(table, expected);
        let templates: BTreeSet<&str> = table.iter().map(|(t, _)| *t).collect();
        assert_eq!(templates.len(), table.len(), "two routes share a template");
    }

    #[test]
    fn a_template_instantiated_parses_back_to_its_route() {
        for id in ["1", "9007199254740991", "0", "abc", "-1", "%31", ""] {
            for route in every_route(id) {
                let path = route
                    .template()
                    .replace(":id", id)
                    .replace(":attachmentId", id);
                assert_eq!(path, route.path());
                assert_eq!(Route::parse(&path), Some(route.clone()), "{path}");
            }
        }
    }

    #[test]
    fn ids_are_checked_as_before_once_parsed() {
        let id = |text: &str| MessageRef(text.to_owned()).id().ok();
        assert_eq!(id("42"), Some(42));
        assert_eq!(id("9007199254740991"), Some((1 << 53) - 1));
        for bad in ["0", "+1", "-1", "abc", "", "9007199254740992", " 1"] {
            assert_eq!(id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn other_paths_are_no_route() {
        for path in [
            "",
            "api/health",
            "//",
            "/console/x.js",
            "/console/app.js/",
            "/console/index.html",
            "/console/%61pp.js",
            "/console//app.js",
            "/api",
            "/api/",
            "/api/health/",
            "//api/health",
            "/API/health",
            "/api/messages/1/raw/x",
            "/api/messages/1/2",
            "/api/messages/1/attachments",
            "/api/messages/1/attachments/2/x",
            "/api/webhook/x",
            "/api/threads/1/x",
            "/api/keys/1/x",
            "/llms.txt/",
        ] {
            assert_eq!(Route::parse(path), None, "{path:?}");
        }
    }

    #[test]
    fn methods_are_matched_as_sent() {
        for method in Method::ALL {
            assert_eq!(Method::parse(method.as_str()), Some(method));
            assert_eq!(
                Method::parse(&method.as_str().to_ascii_lowercase()),
                None,
                "{method:?}"
            );
        }
        assert_eq!(Method::parse("OPTIONS"), None);
        assert_eq!(Method::parse("QUERY"), None);
    }
}

/// Properties over arbitrary paths (proptest does not build for wasm32).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("api".to_owned()),
            Just("messages".to_owned()),
            Just("webhook".to_owned()),
            Just("health".to_owned()),
            Just("raw".to_owned()),
            Just("reply".to_owned()),
            Just("forward".to_owned()),
            Just("threads".to_owned()),
            Just("attachments".to_owned()),
            Just(String::new()),
            "[0-9]{1,17}",
            "[ -~]{0,8}",
        ]
    }

    proptest! {
        /// A path either is no route or is exactly its route's path: parse
        /// loses nothing and invents nothing.
        #[test]
        fn parse_round_trips(segments in prop::collection::vec(segment(), 0..6)) {
            let path = format!("/{}", segments.join("/"));
            if let Some(route) = Route::parse(&path) {
                prop_assert_eq!(route.path(), path.clone());
                let instantiated = route.path();
                prop_assert_eq!(Route::parse(&instantiated), Some(route));
            }
        }

        /// Any id text in an id's place gives the route with that id.
        #[test]
        fn any_id_segment_is_kept(id in "[^/]{0,24}", raw in any::<bool>()) {
            let path = format!("/api/messages/{id}{}", if raw { "/raw" } else { "" });
            let route = Route::parse(&path).expect("a message route");
            let expected = if raw { "/api/messages/:id/raw" } else { "/api/messages/:id" };
            prop_assert_eq!(route.template(), expected);
            prop_assert_eq!(route.path(), path);
        }
    }
}
