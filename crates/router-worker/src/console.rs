//! The web console: a handful of static files (`crates/router-worker/console/`)
//! embedded in the router and served at `/` and `/console/...`.
//!
//! Embedded rather than served through Workers static assets so the router
//! sets every header itself: the same bytes and the same strict CSP under
//! `wrangler dev` and on Cloudflare, tested natively here, with no
//! dependence on an assets binding's `_headers` rules. The console talks to
//! the public API only; it is not an API operation (no OpenAPI entry).

use protocol::Reply;
use sha2::{Digest, Sha256};

/// One file of the console.
#[derive(PartialEq, Eq)]
pub struct Asset {
    /// The path it is served at (the index also at `/` and `/console`).
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

impl std::fmt::Debug for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Asset({})", self.path)
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_str!(concat!("../console/", $file)),
        }
    };
}

/// Every file of the console; nothing else under `/console/` exists.
pub const ASSETS: &[Asset] = &[
    asset!("/console/", "index.html", HTML),
    asset!("/console/app.js", "app.js", JS),
    asset!("/console/api.js", "api.js", JS),
    asset!("/console/dom.js", "dom.js", JS),
    asset!("/console/mail.js", "mail.js", JS),
    asset!("/console/compose.js", "compose.js", JS),
    asset!("/console/settings.js", "settings.js", JS),
    asset!("/console/console.css", "console.css", CSS),
];

/// The console's page (`/`, `/console`, `/console/`).
pub fn index() -> &'static Asset {
    &ASSETS[0]
}

/// The file at `/console/<name>`, if it is one of [`ASSETS`].
pub fn named(name: &str) -> Option<&'static Asset> {
    if name.is_empty() {
        return Some(index());
    }
    ASSETS
        .iter()
        .skip(1)
        .find(|asset| asset.path.strip_prefix("/console/") == Some(name))
}

/// The console pages' policy. Scripts and styles only from this origin and
/// no inline script; `style-src 'unsafe-inline'` because a mail's HTML
/// renders in an `srcdoc` frame, which inherits this policy and whose
/// styles are inline (the frame has its own stricter policy on top, and no
/// script can run in it: it is sandboxed without `allow-scripts`). Images
/// may be remote only inside that frame, and only once the viewer asks.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https: http:; \
     font-src 'self' data:; connect-src 'self'; frame-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The answer to a `GET` of `asset`, or a 304 when the caller's
/// `If-None-Match` names its current version.
pub fn reply(asset: &Asset, if_none_match: Option<&str>) -> Reply {
    let tag = etag(asset);
    let fresh = if_none_match.is_some_and(|header| {
        header
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == tag || t == "*")
    });
    let mut headers: Vec<(String, String)> = [
        ("content-type", asset.content_type),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        // Revalidated on every load, so a deploy is seen at once.
        ("cache-control", "no-cache"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    headers.push(("etag".to_owned(), tag));
    if fresh {
        headers.retain(|(name, _)| name != "content-type");
        return Reply {
            status: 304,
            headers,
            body: Vec::new(),
        };
    }
    Reply {
        status: 200,
        headers,
        body: asset.body.as_bytes().to_vec(),
    }
}

/// A strong validator: the first 16 bytes of the file's SHA-256.
fn etag(asset: &Asset) -> String {
    let digest = Sha256::digest(asset.body.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every `/console/...` the index and the modules refer to (an `import`
    /// from `./x.js`, a `src` or `href` starting `/console/`).
    fn references(text: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for (at, _) in text.match_indices("from \"./") {
            let rest = &text[at + "from \"./".len()..];
            let name = &rest[..rest.find('"').expect("an import ends with a quote")];
            found.insert(format!("/console/{name}"));
        }
        for (at, _) in text.match_indices("import(\"./") {
            let rest = &text[at + "import(\"./".len()..];
            let name = &rest[..rest.find('"').expect("an import ends with a quote")];
            found.insert(format!("/console/{name}"));
        }
        for (at, _) in text.match_indices("=\"/console/") {
            let rest = &text[at + 2..];
            found.insert(rest[..rest.find('"').expect("an attribute ends")].to_owned());
        }
        found
    }

    /// Whether `page` has an attribute named `on…=` (an inline handler).
    fn has_handler_attribute(page: &str) -> bool {
        page.match_indices(" on").any(|(at, _)| {
            let name: String = page[at + 1..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            page[at + 1 + name.len()..].starts_with('=')
        })
    }

    #[test]
    fn every_file_the_console_refers_to_is_served_and_every_served_file_is_used() {
        let served: BTreeSet<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        let mut used = BTreeSet::from(["/console/".to_owned()]);
        for asset in ASSETS {
            for path in references(asset.body) {
                assert!(served.contains(&path), "{} refers to {path}", asset.path);
                used.insert(path);
            }
        }
        assert_eq!(used, served, "a served file nothing loads");
        assert!(
            references(index().body).contains("/console/app.js"),
            "the page loads the app"
        );
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_no_module_writes_html() {
        let page = index().body;
        for (at, _) in page.match_indices("<script") {
            let tag = &page[at..at + page[at..].find('>').expect("a tag ends")];
            assert!(tag.contains(" src=\"/console/"), "inline script: {tag}");
        }
        assert!(!page.contains("<style"), "inline style element");
        assert!(!page.contains(" style="), "inline style attribute");
        assert!(!has_handler_attribute(page), "an inline event handler");
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            for sink in [
                "innerHTML",
                "outerHTML =",
                "outerHTML=",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setTimeout(\"",
            ] {
                assert!(!asset.body.contains(sink), "{} uses {sink}", asset.path);
            }
        }
    }

    #[test]
    fn names_resolve_only_to_the_table() {
        assert_eq!(named(""), Some(index()));
        assert_eq!(named("app.js").map(|a| a.path), Some("/console/app.js"));
        assert_eq!(
            named("console.css").map(|a| a.content_type),
            Some("text/css; charset=utf-8")
        );
        for unknown in [
            "index.html",
            "../Cargo.toml",
            "app.js/",
            "APP.JS",
            "app",
            "%2e%2e",
            "x.js",
        ] {
            assert_eq!(named(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn a_file_is_sent_with_a_strict_policy_and_revalidated() {
        let app = named("app.js").expect("the app");
        let reply = reply(app, None);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, app.body.as_bytes());
        assert_eq!(
            header(&reply, "content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(header(&reply, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&reply, "referrer-policy"), Some("no-referrer"));
        assert_eq!(header(&reply, "x-frame-options"), Some("DENY"));
        assert_eq!(header(&reply, "cache-control"), Some("no-cache"));
        let csp = header(&reply, "content-security-policy").expect("a policy");
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        for needed in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(directives.contains(&needed), "{needed} missing from {csp}");
        }
        let script = directives
            .iter()
            .find(|d| d.starts_with("script-src"))
            .expect("script-src");
        assert!(!script.contains("unsafe"), "{script}");

        let tag = header(&reply, "etag").expect("an etag").to_owned();
        assert_eq!(tag.len(), 34);
        let again = super::reply(app, Some(&format!("\"other\", W/{tag}")));
        assert_eq!(again.status, 304);
        assert!(again.body.is_empty());
        assert_eq!(header(&again, "etag"), Some(tag.as_str()));
        assert_eq!(super::reply(app, Some("\"other\"")).status, 200);
        let other = named("api.js").expect("the api module");
        assert_ne!(
            header(&super::reply(other, None), "etag"),
            Some(tag.as_str())
        );
    }
}
