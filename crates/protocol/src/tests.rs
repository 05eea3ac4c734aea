//! Checks of the protocol's rules. They run natively and, compiled to wasm32,
//! under Node with wasm-bindgen-test, so both targets are held to the same rules.

use crate::wire::{ApiCall, InboxRequest};
use crate::{ApiError, ApiKey, ErrorCode, Handle, HandleError, KeyHash, Reply, Timestamp};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn handles_follow_the_pattern() {
    let cases: &[(&str, Result<&str, HandleError>)] = &[
        ("ab", Ok("ab")),
        ("Alice", Ok("alice")),
        ("a.b_c-d9", Ok("a.b_c-d9")),
        ("0x", Ok("0x")),
        ("a", Err(HandleError::Length)),
        ("", Err(HandleError::Length)),
        ("-ab", Err(HandleError::Edge)),
        ("ab-", Err(HandleError::Edge)),
        (".ab", Err(HandleError::Edge)),
        ("a b", Err(HandleError::Character)),
        ("a+b", Err(HandleError::Character)),
        ("a@b", Err(HandleError::Character)),
        ("ä-b", Err(HandleError::Character)),
        (
            "postmaster",
            Err(HandleError::Reserved("postmaster".into())),
        ),
        (
            "PostMaster",
            Err(HandleError::Reserved("postmaster".into())),
        ),
        ("abuse", Err(HandleError::Reserved("abuse".into()))),
    ];
    for (input, expected) in cases {
        let got = Handle::parse(input);
        let got = got.as_ref().map(Handle::as_str).map_err(Clone::clone);
        assert_eq!(got, expected.clone(), "input {input:?}");
    }
    assert_eq!(
        Handle::parse(&"a".repeat(64)).map(|h| h.as_str().len()),
        Ok(64)
    );
    assert_eq!(Handle::parse(&"a".repeat(65)), Err(HandleError::Length));
}

#[test]
fn generated_handles_are_valid_and_differ() {
    let a = Handle::generated([1, 2, 3, 4, 5, 6, 7, 8]);
    let b = Handle::generated([1, 2, 3, 4, 5, 6, 7, 9]);
    assert_ne!(a, b);
    for h in [a, b] {
        assert_eq!(Handle::parse(h.as_str()).as_ref(), Ok(&h));
        assert!(h.as_str().starts_with("agent-") && h.as_str().len() == 16);
    }
}

#[test]
fn keys_have_one_spelling_and_a_known_hash() {
    let key = ApiKey::from_random([7u8; 32]);
    assert_eq!(
        key.expose(),
        "ik_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"
    );
    assert_eq!(ApiKey::parse(key.expose()).as_ref(), Some(&key));
    // sha256 of the text above, computed independently (`printf %s ... | sha256sum`).
    assert_eq!(
        key.hash().to_hex(),
        "5ff68438b28ce0a4d9c9760c6816e0f467b899ccd34fabccc50747ac328b5289"
    );
    for bad in [
        "",
        "ik_",
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
        "ik_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw",
        "ik_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH",
        "ik_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwd",
        "ik_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHB+c",
        "IK_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
    ] {
        assert_eq!(ApiKey::parse(bad), None, "accepted {bad:?}");
    }
}

#[test]
fn bearer_headers_are_read_strictly() {
    let key = ApiKey::from_random([9u8; 32]);
    let text = key.expose();
    assert_eq!(
        ApiKey::from_authorization(&format!("Bearer {text}")),
        Some(key.clone())
    );
    assert_eq!(
        ApiKey::from_authorization(&format!("bearer  {text} ")),
        Some(key.clone())
    );
    assert_eq!(ApiKey::from_authorization(text), None);
    assert_eq!(ApiKey::from_authorization(&format!("Basic {text}")), None);
    assert_eq!(
        ApiKey::from_authorization(&format!("Bearer {text}, Bearer {text}")),
        None
    );
}

#[test]
fn key_hashes_compare_by_value_and_never_print_whole() {
    let a = ApiKey::from_random([1u8; 32]).hash();
    let b = ApiKey::from_random([2u8; 32]).hash();
    assert_eq!(a, KeyHash::from_hex(&a.to_hex()).unwrap_or(b));
    assert_ne!(a, b);
    assert_eq!(KeyHash::from_hex(&a.to_hex().to_uppercase()), Some(a));
    assert_eq!(KeyHash::from_hex("zz"), None);
    assert!(!format!("{a:?}").contains(&a.to_hex()));
    assert_eq!(
        format!("{:?}", ApiKey::from_random([1u8; 32])),
        "ApiKey(<redacted>)"
    );
}

#[test]
fn every_code_has_its_status() {
    let cases = [
        (ErrorCode::InvalidRequest, 400, "invalid_request"),
        (ErrorCode::Unauthorized, 401, "unauthorized"),
        (ErrorCode::Forbidden, 403, "forbidden"),
        (ErrorCode::NotFound, 404, "not_found"),
        (ErrorCode::MethodNotAllowed, 405, "method_not_allowed"),
        (ErrorCode::HandleTaken, 409, "handle_taken"),
        (ErrorCode::Conflict, 409, "conflict"),
        (ErrorCode::TooLarge, 413, "too_large"),
        (
            ErrorCode::UnsupportedMediaType,
            415,
            "unsupported_media_type",
        ),
        (ErrorCode::RateLimited, 429, "rate_limited"),
        (ErrorCode::StorageFull, 507, "storage_full"),
        (ErrorCode::Internal, 500, "internal"),
        (ErrorCode::NotConfigured, 503, "not_configured"),
        (ErrorCode::Unavailable, 503, "unavailable"),
    ];
    for (code, status, name) in cases {
        let reply = Reply::error(&ApiError::new(code, "why"));
        assert_eq!(reply.status, status);
        let body = String::from_utf8(reply.body).expect("a UTF-8 body");
        assert_eq!(body, format!(r#"{{"error":"why","code":"{name}"}}"#));
        assert_eq!(reply.headers[0].1, crate::reply::JSON);
    }
}

#[test]
fn timestamps_are_rfc3339_utc_with_milliseconds_unless_whole() {
    let t = Timestamp::from_millis(1_774_526_400_000);
    assert_eq!(t.to_rfc3339(), "2026-03-26T12:00:00Z");
    assert_eq!(t.plus_millis(5).to_rfc3339(), "2026-03-26T12:00:00.005Z");
    assert_eq!(t.plus_millis(250).to_rfc3339(), "2026-03-26T12:00:00.250Z");
    assert_eq!(
        Timestamp::from_millis(0).to_rfc3339(),
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(
        Timestamp::from_millis(-1).to_rfc3339(),
        "1969-12-31T23:59:59.999Z"
    );
    assert_eq!(
        Timestamp::parse_rfc3339("2026-03-26T14:00:00.5+02:00"),
        Some(Timestamp::from_millis(1_774_526_400_500))
    );
    assert_eq!(Timestamp::parse_rfc3339("2026-03-26"), None);
    assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
}

#[test]
fn the_wire_speaks_camel_case_json() {
    let hash = ApiKey::from_random([3u8; 32]).hash();
    let request = InboxRequest::Api {
        key_hash: hash,
        mail_domain: "agents.test".into(),
        call: ApiCall::Me,
    };
    let text = serde_json::to_string(&request).expect("serializes");
    assert_eq!(
        text,
        format!(
            r#"{{"op":"api","keyHash":"{}","mailDomain":"agents.test","call":{{"call":"me"}}}}"#,
            hash.to_hex()
        )
    );
    assert_eq!(
        serde_json::from_str::<InboxRequest>(&text).ok(),
        Some(request)
    );
    // The DO re-validates what it is sent: a bad handle or hash does not parse.
    assert!(
        serde_json::from_str::<InboxRequest>(r#"{"op":"claim","handle":"-x","keyHash":"00"}"#)
            .is_err()
    );
}

#[test]
fn webhook_urls_must_be_public_https() {
    use crate::webhook_url::{HostClass, UrlPolicy, UrlRefusal, check_webhook_url};
    let production = UrlPolicy::default();
    let development = UrlPolicy {
        allow_http_loopback: true,
    };
    let allowed = [
        "https://hooks.example.com/inbox",
        "https://203.0.114.7:8443/x?y=1",
        "https://[2606:4700::1111]/hook",
        "https://8.8.8.8/",
        // NAT64's well-known prefix carries a public IPv4 address.
        "https://[64:ff9b::808:808]/",
        "https://[2002:808:808::1]/",
        "https://[2001:4860:4860::8888]/",
        // An international host in the form it is fetched by.
        "https://xn--bcher-kva.example/hook",
        "https://Hooks.Example.COM/Path%C3%A4",
    ];
    for url in allowed {
        assert!(check_webhook_url(url, production).is_ok(), "{url}");
    }
    let refused: &[(&str, UrlRefusal)] = &[
        ("http://hooks.example.com/", UrlRefusal::Scheme),
        ("ftp://hooks.example.com/", UrlRefusal::Scheme),
        ("hooks.example.com/inbox", UrlRefusal::Malformed),
        ("https://bücher.example/hook", UrlRefusal::NotAscii),
        // Fullwidth digits that IDNA would map to 127.0.0.1.
        ("https://１２７.０.０.１/", UrlRefusal::NotAscii),
        ("https://hooks.example.com/päth", UrlRefusal::NotAscii),
        // A percent-encoded host (here 127.0.0.1), however slashed.
        ("https://%31%32%37.0.0.1/", UrlRefusal::NotAscii),
        ("https:\\\\hooks.ex%41mple.com/", UrlRefusal::NotAscii),
        ("https:/\thooks%2eexample.com?q", UrlRefusal::NotAscii),
        (
            "https://user:pw@hooks.example.com/",
            UrlRefusal::Credentials,
        ),
        ("https://127.0.0.1/", UrlRefusal::Host(HostClass::Loopback)),
        ("https://2130706433/", UrlRefusal::Host(HostClass::Loopback)),
        ("https://0x7f.1/", UrlRefusal::Host(HostClass::Loopback)),
        ("https://0177.0.0.1/", UrlRefusal::Host(HostClass::Loopback)),
        ("https://[::1]/", UrlRefusal::Host(HostClass::Loopback)),
        (
            "https://[::ffff:127.0.0.1]/",
            UrlRefusal::Host(HostClass::Loopback),
        ),
        (
            "https://[::ffff:a9fe:a9fe]/",
            UrlRefusal::Host(HostClass::LinkLocalOrMetadata),
        ),
        (
            "https://169.254.169.254/latest/meta-data",
            UrlRefusal::Host(HostClass::LinkLocalOrMetadata),
        ),
        ("https://10.1.2.3/", UrlRefusal::Host(HostClass::Private)),
        (
            "https://172.31.255.255/",
            UrlRefusal::Host(HostClass::Private),
        ),
        ("https://192.168.0.1/", UrlRefusal::Host(HostClass::Private)),
        (
            "https://100.64.0.1/",
            UrlRefusal::Host(HostClass::SharedCgnat),
        ),
        ("https://224.0.0.1/", UrlRefusal::Host(HostClass::Multicast)),
        ("https://0.0.0.0/", UrlRefusal::Host(HostClass::Unspecified)),
        (
            "https://[fd00::1]/",
            UrlRefusal::Host(HostClass::UniqueLocal),
        ),
        ("https://[fe80::1]/", UrlRefusal::Host(HostClass::LinkLocal)),
        (
            "https://[64:ff9b::10.0.0.1]/",
            UrlRefusal::Host(HostClass::Private),
        ),
        (
            "https://[2002:c0a8:0101::]/",
            UrlRefusal::Host(HostClass::Private),
        ),
        ("https://localhost/", UrlRefusal::Host(HostClass::Loopback)),
        (
            "https://api.localhost/",
            UrlRefusal::Host(HostClass::Loopback),
        ),
        (
            "https://metadata.google.internal/",
            UrlRefusal::Host(HostClass::LocalName),
        ),
        (
            "https://printer.local/",
            UrlRefusal::Host(HostClass::LocalName),
        ),
        ("https://intranet/", UrlRefusal::Host(HostClass::LocalName)),
        // Teredo tunnels to an IPv4 address of anyone's choosing.
        ("https://[2001::1]/", UrlRefusal::Host(HostClass::Teredo)),
        (
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            UrlRefusal::Host(HostClass::Teredo),
        ),
        ("https://[fec0::1]/", UrlRefusal::Host(HostClass::SiteLocal)),
        (
            "https://[feff:ffff::1]/",
            UrlRefusal::Host(HostClass::SiteLocal),
        ),
        (
            "https://[64:ff9b:1::a00:1]/",
            UrlRefusal::Host(HostClass::LocalNat64),
        ),
        (
            "https://[64:ff9b:1:ffff::8.8.8.8]/",
            UrlRefusal::Host(HostClass::LocalNat64),
        ),
        (
            "https://[64:ff9b::127.0.0.1]/",
            UrlRefusal::Host(HostClass::Loopback),
        ),
        (
            "https://[64:ff9b::a9fe:a9fe]/",
            UrlRefusal::Host(HostClass::LinkLocalOrMetadata),
        ),
        (
            "https://[::ffff:0:10.0.0.1]/",
            UrlRefusal::Host(HostClass::Private),
        ),
        (
            "https://[2001:db8::1]/",
            UrlRefusal::Host(HostClass::Documentation),
        ),
        (
            "https://[3fff::1]/",
            UrlRefusal::Host(HostClass::Documentation),
        ),
        (
            "https://[2001:2::1]/",
            UrlRefusal::Host(HostClass::Reserved),
        ),
        (
            "https://[2001:10::1]/",
            UrlRefusal::Host(HostClass::Reserved),
        ),
        ("https://[100::1]/", UrlRefusal::Host(HostClass::Reserved)),
        ("https://[::1:0:0]/", UrlRefusal::Host(HostClass::Reserved)),
        ("https://[4000::1]/", UrlRefusal::Host(HostClass::Reserved)),
        ("https://192.0.0.8/", UrlRefusal::Host(HostClass::Reserved)),
        (
            "https://255.255.255.255/",
            UrlRefusal::Host(HostClass::ReservedOrBroadcast),
        ),
    ];
    for (url, why) in refused {
        assert_eq!(
            check_webhook_url(url, production).err().as_ref(),
            Some(why),
            "{url}"
        );
    }
    // The messages API clients read keep their shape.
    assert_eq!(
        UrlRefusal::Host(HostClass::LinkLocalOrMetadata).to_string(),
        "must point to a public host, not a link-local or metadata address"
    );
    assert_eq!(
        UrlRefusal::Host(HostClass::Teredo).to_string(),
        "must point to a public host, not a Teredo (tunnelled) address"
    );
    // Development: plain http to loopback only.
    assert!(check_webhook_url("http://127.0.0.1:9000/hook", development).is_ok());
    assert!(check_webhook_url("http://localhost:9000/hook", development).is_ok());
    assert_eq!(
        check_webhook_url("http://10.0.0.1/hook", development).err(),
        Some(UrlRefusal::Scheme)
    );
    assert_eq!(
        check_webhook_url("http://hooks.example.com/", development).err(),
        Some(UrlRefusal::Scheme)
    );
    let long = format!("https://hooks.example.com/{}", "a".repeat(2048));
    assert_eq!(
        check_webhook_url(&long, production).err(),
        Some(UrlRefusal::Malformed)
    );
}

#[test]
fn webhook_signatures_match_independent_implementations() {
    use crate::webhook_signature::WebhookSecret;
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = i as u8 + 1;
    }
    let secret = WebhookSecret::from_random(key);
    assert_eq!(
        secret.expose(),
        "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    );
    assert_eq!(WebhookSecret::parse(&secret.expose()), Some(secret.clone()));
    assert_eq!(WebhookSecret::parse("whsec_AQID"), None);
    assert_eq!(
        WebhookSecret::parse("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="),
        None
    );
    assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");

    let body = br#"{"event":"message.received","messageId":7}"#;
    let headers = secret.sign("msg_2Q3", 1_774_526_400, body);
    // Python's hmac module (`hmac.new(key, body, sha256).hexdigest()`).
    assert_eq!(
        headers.inboxkit,
        "sha256=0b6b3142f139b25bef14722924bf46c5ac1a3d2abdd2cae484b2544e69a90cb7"
    );
    // The `standardwebhooks` package from PyPI: Webhook(secret).sign(id, ts, body).
    assert_eq!(
        headers.webhook_signature,
        "v1,e8KI6XUKVsuvpF/5VZnllJzmbIfil020Y+Lf6s1MR+A="
    );
    assert_eq!(
        (
            headers.webhook_id.as_str(),
            headers.webhook_timestamp.as_str()
        ),
        ("msg_2Q3", "1774526400")
    );
}
