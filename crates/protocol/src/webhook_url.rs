//! Which webhook URLs an inbox may call: the SSRF guard.
//!
//! A URL is parsed with the WHATWG parser (the `url` crate), which is how
//! `fetch()` reads it, so `http://2130706433/`, `http://0x7f.1/` and
//! `http://[::ffff:127.0.0.1]/` are all seen as the loopback address they are.
//! In production only `https` is allowed, and never to a loopback, private,
//! link-local (the cloud metadata address among them), CGNAT, multicast,
//! reserved or unspecified address, in any spelling, nor to a name that is
//! local by definition (`localhost`, `*.localhost`, `*.local`, `*.internal`).
//! A development setting allows plain `http` to loopback, so that local tests
//! can receive webhooks.

use std::net::{Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

const LOOPBACK: &str = "a loopback address";

/// How strict to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    /// Allow `http://` to loopback addresses and `localhost` (development).
    pub allow_http_loopback: bool,
}

/// Why a URL is refused. The messages are shown to API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Not an absolute URL, or longer than [`MAX_URL_LEN`].
    #[error("is not an absolute URL of at most 2048 bytes")]
    Malformed,
    /// Not `https` (nor `http` to loopback where development allows it).
    #[error("must use https")]
    Scheme,
    /// Carries a user name or password, which would be stored and logged.
    #[error("must not contain credentials")]
    Credentials,
    /// Points at an address or name that is not on the public internet.
    #[error("must point to a public host, not {0}")]
    Host(&'static str),
}

/// Checks `text` against `policy`, returning the parsed URL when allowed.
pub fn check_webhook_url(text: &str, policy: UrlPolicy) -> Result<Url, UrlRefusal> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlRefusal::Malformed);
    }
    let url = Url::parse(text).map_err(|_| UrlRefusal::Malformed)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let host = url.host().ok_or(UrlRefusal::Malformed)?;
    let kind = classify(&host);
    match url.scheme() {
        "https" => match kind {
            None => Ok(url),
            Some(LOOPBACK) if policy.allow_http_loopback => Ok(url),
            Some(kind) => Err(UrlRefusal::Host(kind)),
        },
        "http" if policy.allow_http_loopback => match kind {
            Some(LOOPBACK) => Ok(url),
            _ => Err(UrlRefusal::Scheme),
        },
        _ => Err(UrlRefusal::Scheme),
    }
}

/// What kind of non-public destination `host` is, or `None` when public.
fn classify(host: &Host<&str>) -> Option<&'static str> {
    match host {
        Host::Ipv4(address) => classify_v4(*address),
        Host::Ipv6(address) => classify_v6(*address),
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                Some(LOOPBACK)
            } else if name.ends_with(".local") || name.ends_with(".internal") || !name.contains('.')
            {
                Some("a local name")
            } else {
                None
            }
        }
    }
}

fn classify_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    Some(match (a, b, c) {
        (127, _, _) => LOOPBACK,
        (0, _, _) => "an unspecified address",
        (10, _, _) | (192, 168, _) => "a private address",
        (172, b, _) if (16..32).contains(&b) => "a private address",
        (169, 254, _) => "a link-local or metadata address",
        (100, b, _) if (64..128).contains(&b) => "a shared (CGNAT) address",
        (192, 0, 0) => "a reserved address",
        (198, b, _) if b == 18 || b == 19 => "a reserved address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (a, _, _) if (224..240).contains(&a) => "a multicast address",
        (a, _, _) if a >= 240 => "a reserved or broadcast address",
        _ => return None,
    })
}

fn classify_v6(address: Ipv6Addr) -> Option<&'static str> {
    let segments = address.segments();
    // An IPv4 address inside IPv6: mapped (::ffff:a.b.c.d), compatible
    // (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) or 6to4 (2002:aabb:ccdd::).
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = address.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => Some("an unspecified address"),
        [0, 0, 0, 0, 0, 0, 0, 1] => Some(LOOPBACK),
        [0, 0, 0, 0, 0, 0, high, low] => classify_v4(embedded(high, low)),
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => classify_v4(embedded(high, low)),
        [0x2002, high, low, ..] => classify_v4(embedded(high, low)),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("a private (unique local) address"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("a link-local address"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("a multicast address"),
        [0x2001, 0x0db8, ..] => Some("a documentation address"),
        _ => None,
    }
}
