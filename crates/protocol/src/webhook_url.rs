//! Which webhook URLs an inbox may call: the SSRF guard.
//!
//! A URL is parsed with the WHATWG parser (the `url` crate), which is how
//! `fetch()` reads it, so `http://2130706433/`, `http://0x7f.1/` and
//! `http://[::ffff:127.0.0.1]/` are all seen as the loopback address they are.
//! In production only `https` is allowed, and never to a loopback, private,
//! link-local (the cloud metadata address among them), CGNAT, multicast,
//! reserved or unspecified address, in any spelling, nor to a name that is
//! local by definition (`localhost`, `*.localhost`, `*.local`, `*.internal`).
//! An IPv6 address is public only inside global unicast (`2000::/3`) and
//! outside the ranges carved out of it (Teredo `2001::/32`, documentation,
//! benchmarking, ORCHID); an IPv4 address carried inside IPv6 (mapped,
//! compatible, SIIT, NAT64 `64:ff9b::/96`, 6to4) is judged as that IPv4
//! address, and the local-use NAT64 prefix `64:ff9b:1::/48` is never public.
//! A development setting allows plain `http` to loopback, so that local tests
//! can receive webhooks.

use std::net::{Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

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
    /// Holds a character outside ASCII, or a percent-encoded host. An
    /// international host must be given in its `xn--` form (as send
    /// addresses are), the path and query percent-encoded: the host is then
    /// judged as written, and the Workers need no Unicode mapping tables
    /// (see BENCHMARKS.md, size).
    #[error(
        "must be written in ASCII, its host without percent-encoding (an international host in its xn-- form)"
    )]
    NotAscii,
    /// Carries a user name or password, which would be stored and logged.
    #[error("must not contain credentials")]
    Credentials,
    /// Points at an address or name that is not on the public internet.
    #[error("must point to a public host, not {0}")]
    Host(HostClass),
}

/// Where a URL's host is, as far as the guard is concerned. Its `Display`
/// is the phrase shown to API clients ("a loopback address").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum HostClass {
    /// On the public internet: the only class a webhook may call.
    #[error("a public host")]
    Public,
    /// `127.0.0.0/8`, `::1`, `localhost` and `*.localhost`.
    #[error("a loopback address")]
    Loopback,
    /// `0.0.0.0/8` and `::`.
    #[error("an unspecified address")]
    Unspecified,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    #[error("a private address")]
    Private,
    /// IPv6 unique local addresses, `fc00::/7`.
    #[error("a private (unique local) address")]
    UniqueLocal,
    /// IPv6 site-local addresses, `fec0::/10` (deprecated, still routed by some).
    #[error("a site-local address")]
    SiteLocal,
    /// `169.254.0.0/16`, where cloud metadata services answer.
    #[error("a link-local or metadata address")]
    LinkLocalOrMetadata,
    /// IPv6 link-local addresses, `fe80::/10`.
    #[error("a link-local address")]
    LinkLocal,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    #[error("a shared (CGNAT) address")]
    SharedCgnat,
    /// `224.0.0.0/4` and `ff00::/8`.
    #[error("a multicast address")]
    Multicast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    #[error("a documentation address")]
    Documentation,
    /// Teredo, `2001::/32`: a tunnel to an IPv4 address the guard cannot judge.
    #[error("a Teredo (tunnelled) address")]
    Teredo,
    /// Local-use NAT64, `64:ff9b:1::/48` (RFC 8215): translated to an IPv4
    /// address of the operator's own network.
    #[error("a local-use NAT64 address")]
    LocalNat64,
    /// Reserved for special use: `192.0.0/24`, benchmarking, ORCHID, and all
    /// of IPv6 outside global unicast.
    #[error("a reserved address")]
    Reserved,
    /// `240.0.0.0/4` and `255.255.255.255`.
    #[error("a reserved or broadcast address")]
    ReservedOrBroadcast,
    /// A name that is local by definition: no dot, `*.local`, `*.internal`.
    #[error("a local name")]
    LocalName,
}

impl HostClass {
    /// Classifies `host` as the WHATWG parser read it.
    pub fn of(host: &Host<&str>) -> HostClass {
        match host {
            Host::Ipv4(address) => HostClass::of_v4(*address),
            Host::Ipv6(address) => HostClass::of_v6(*address),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost" || name.ends_with(".localhost") {
                    HostClass::Loopback
                } else if name.ends_with(".local")
                    || name.ends_with(".internal")
                    || !name.contains('.')
                {
                    HostClass::LocalName
                } else {
                    HostClass::Public
                }
            }
        }
    }

    /// Classifies an IPv4 address.
    pub fn of_v4(address: Ipv4Addr) -> HostClass {
        let [a, b, c, _] = address.octets();
        match (a, b, c) {
            (127, _, _) => HostClass::Loopback,
            (0, _, _) => HostClass::Unspecified,
            (10, _, _) | (192, 168, _) => HostClass::Private,
            (172, b, _) if (16..32).contains(&b) => HostClass::Private,
            (169, 254, _) => HostClass::LinkLocalOrMetadata,
            (100, b, _) if (64..128).contains(&b) => HostClass::SharedCgnat,
            (192, 0, 0) => HostClass::Reserved,
            (198, b, _) if b == 18 || b == 19 => HostClass::Reserved,
            (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => HostClass::Documentation,
            (a, _, _) if (224..240).contains(&a) => HostClass::Multicast,
            (a, _, _) if a >= 240 => HostClass::ReservedOrBroadcast,
            _ => HostClass::Public,
        }
    }

    /// Classifies an IPv6 address; one carrying an IPv4 address is judged
    /// as that address.
    pub fn of_v6(address: Ipv6Addr) -> HostClass {
        let embedded = |high: u16, low: u16| {
            let [a, b] = high.to_be_bytes();
            let [c, d] = low.to_be_bytes();
            Ipv4Addr::new(a, b, c, d)
        };
        match address.segments() {
            [0, 0, 0, 0, 0, 0, 0, 0] => HostClass::Unspecified,
            [0, 0, 0, 0, 0, 0, 0, 1] => HostClass::Loopback,
            // Compatible (::a.b.c.d), mapped (::ffff:a.b.c.d), SIIT (::ffff:0:a.b.c.d).
            [0, 0, 0, 0, 0, 0, high, low]
            | [0, 0, 0, 0, 0, 0xffff, high, low]
            | [0, 0, 0, 0, 0xffff, 0, high, low] => HostClass::of_v4(embedded(high, low)),
            // NAT64's well-known prefix, RFC 6052.
            [0x64, 0xff9b, 0, 0, 0, 0, high, low] => HostClass::of_v4(embedded(high, low)),
            [0x64, 0xff9b, 1, ..] => HostClass::LocalNat64,
            // 6to4, 2002:aabb:ccdd::/48.
            [0x2002, high, low, ..] => HostClass::of_v4(embedded(high, low)),
            [0x2001, 0, ..] => HostClass::Teredo,
            [0x2001, 0x0db8, ..] => HostClass::Documentation,
            [first, ..] if first & 0xfff0 == 0x3ff0 => HostClass::Documentation,
            [0x2001, 0x0002, 0, ..] => HostClass::Reserved,
            [0x2001, second, ..] if second & 0xfff0 == 0x0010 => HostClass::Reserved,
            [first, ..] if first & 0xe000 == 0x2000 => HostClass::Public,
            [first, ..] if first & 0xfe00 == 0xfc00 => HostClass::UniqueLocal,
            [first, ..] if first & 0xffc0 == 0xfe80 => HostClass::LinkLocal,
            [first, ..] if first & 0xffc0 == 0xfec0 => HostClass::SiteLocal,
            [first, ..] if first & 0xff00 == 0xff00 => HostClass::Multicast,
            _ => HostClass::Reserved,
        }
    }
}

/// What the WHATWG parser can read as `text`'s authority, or more of it:
/// after the scheme's colon and any slashes or backslashes, up to the next
/// `/`, `\`, `?` or `#`. (A percent-encoded host would be decoded by the
/// parser into text it then maps through IDNA; we refuse it instead.)
fn authority(text: &str) -> &str {
    let after_scheme = text.split_once(':').map_or(text, |(_, rest)| rest);
    let start = after_scheme.trim_start_matches(['/', '\\', '\t', '\n', '\r']);
    start.split(['/', '\\', '?', '#']).next().unwrap_or(start)
}

/// Checks `text` against `policy`, returning the parsed URL when allowed.
pub fn check_webhook_url(text: &str, policy: UrlPolicy) -> Result<Url, UrlRefusal> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlRefusal::Malformed);
    }
    if !text.is_ascii() || authority(text).contains('%') {
        return Err(UrlRefusal::NotAscii);
    }
    let url = Url::parse(text).map_err(|_| UrlRefusal::Malformed)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let host = url.host().ok_or(UrlRefusal::Malformed)?;
    let class = HostClass::of(&host);
    match (url.scheme(), class) {
        ("https", HostClass::Public) => Ok(url),
        ("https" | "http", HostClass::Loopback) if policy.allow_http_loopback => Ok(url),
        ("https", class) => Err(UrlRefusal::Host(class)),
        _ => Err(UrlRefusal::Scheme),
    }
}
