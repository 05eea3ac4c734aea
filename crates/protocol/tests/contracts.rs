//! The public shapes as reviewed snapshots, and round-trip properties of every
//! protocol type. The `.snap` files are the contract: a change to one is a
//! change to the API and is reviewed as such.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use protocol::api::{
    AddressList, Health, Me, RecipientKind, RecipientOutcome, SendRequest, SendResponse,
    SendStatus, SignupRequest, SignupResponse, WebhookEvent, WebhookEventKind,
};
use protocol::wire::{ApiCall, InboxRequest, RoutedRecipient, SendRoute};
use protocol::{ApiError, ApiKey, ErrorCode, Handle, KeyHash, Timestamp};

fn hash(seed: u8) -> KeyHash {
    ApiKey::from_random([seed; 32]).hash()
}

#[test]
fn public_bodies() {
    let handle = Handle::parse("alice").unwrap_or_else(|e| panic!("{e}"));
    insta::assert_json_snapshot!(
        "health",
        Health {
            ok: true,
            service: "inboxkit".into(),
            version: "0.1.0".into(),
        }
    );
    insta::assert_json_snapshot!(
        "signup_request",
        SignupRequest {
            handle: Some("alice".into())
        }
    );
    insta::assert_json_snapshot!(
        "signup_response",
        SignupResponse {
            email: "alice@agents.test".into(),
            api_key: ApiKey::from_random([7; 32]).expose().into(),
        }
    );
    insta::assert_json_snapshot!(
        "me",
        Me {
            email: "alice@agents.test".into(),
            handle,
            created_at: Timestamp::from_millis(1_774_526_400_000),
            message_count: 3,
            retention_days: Some(30),
            scope: protocol::api::KeyScope::Read,
        }
    );
    insta::assert_json_snapshot!(
        "send_response",
        SendResponse {
            id: 7,
            thread_id: None,
            status: SendStatus::Failed,
            status_reason: Some("The relay answered HTTP 500.".into()),
            recipients: vec![RecipientOutcome {
                address: "carol@example.com".into(),
                kind: RecipientKind::To,
                status: SendStatus::Failed,
                status_reason: Some("The relay answered HTTP 500.".into()),
            }],
        }
    );
    insta::assert_json_snapshot!(
        "send_response_some_recipients_failed",
        SendResponse {
            id: 8,
            thread_id: Some(3),
            status: SendStatus::Sent,
            status_reason: Some("1 of 3 recipients failed; see recipients.".into()),
            recipients: vec![
                RecipientOutcome {
                    address: "bob@agents.test".into(),
                    kind: RecipientKind::To,
                    status: SendStatus::Sent,
                    status_reason: None,
                },
                RecipientOutcome {
                    address: "carol@example.com".into(),
                    kind: RecipientKind::Cc,
                    status: SendStatus::Failed,
                    status_reason: Some(
                        "The send_email binding refused the message: not verified".into()
                    ),
                },
                RecipientOutcome {
                    address: "dave@example.com".into(),
                    kind: RecipientKind::Bcc,
                    status: SendStatus::Sent,
                    status_reason: None,
                },
            ],
        }
    );
    insta::assert_json_snapshot!(
        "webhook_event",
        WebhookEvent {
            event: WebhookEventKind::Received,
            event_id: "evt_0123456789abcdef0123456789abcdef".into(),
            message_id: 42,
            from: "bob@example.com".into(),
            to: "alice+news@agents.test".into(),
            subject: Some("Hello".into()),
            received_at: Timestamp::from_millis(1_774_526_400_250),
        }
    );
    insta::assert_json_snapshot!(
        "error",
        ApiError::new(
            ErrorCode::HandleTaken,
            "The handle 'alice' is already taken."
        )
    );
}

#[test]
fn router_to_inbox_wire() {
    let handle = Handle::parse("alice").unwrap_or_else(|e| panic!("{e}"));
    let requests = vec![
        InboxRequest::Claim {
            handle,
            key_hash: hash(1),
        },
        InboxRequest::Confirm {
            key_hash: hash(1),
            prefix: None,
        },
        InboxRequest::Release { key_hash: hash(1) },
        InboxRequest::Api {
            key_hash: hash(1),
            mail_domain: "agents.test".into(),
            call: ApiCall::Me,
        },
    ];
    insta::assert_json_snapshot!("inbox_requests", requests);
}

#[test]
fn a_send_travels_to_the_inbox_with_its_recipients() {
    let handle = Handle::parse("bob").unwrap_or_else(|e| panic!("{e}"));
    let direct = SendRoute::Direct {
        handle,
        object_id: "ab12".into(),
        tag: Some("news".into()),
    };
    let send = |reply_to: Vec<String>, recipients: Vec<RoutedRecipient>| InboxRequest::Api {
        key_hash: hash(1),
        mail_domain: "agents.test".into(),
        call: ApiCall::Send {
            to: "bob+news@agents.test".into(),
            subject: Some("Plans".into()),
            text: Some("See you at 5.".into()),
            html: None,
            route: direct.clone(),
            reply_to,
            recipients,
            attachments: Vec::new(),
            idempotency_key: None,
        },
    };
    let many = send(
        vec!["desk@agents.test".into()],
        vec![
            RoutedRecipient {
                address: "bob+news@agents.test".into(),
                kind: RecipientKind::To,
                route: direct.clone(),
            },
            RoutedRecipient {
                address: "carol@example.com".into(),
                kind: RecipientKind::Bcc,
                route: SendRoute::Relay,
            },
        ],
    );
    // One recipient travels in the first shape, which an InboxDO that
    // predates recipient lists reads too.
    insta::assert_json_snapshot!("send_requests", vec![send(Vec::new(), Vec::new()), many]);
}

#[test]
fn a_send_from_a_router_that_predates_recipient_lists_still_reads() {
    // Exactly what the previous router wrote.
    let old = format!(
        r#"{{"op":"api","keyHash":"{}","mailDomain":"agents.test","call":{{"call":"send","to":"carol@example.com","subject":"Hi","text":"x","html":null,"route":{{"via":"relay"}}}}}}"#,
        hash(1).to_hex()
    );
    let read: InboxRequest = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{e}"));
    let InboxRequest::Api {
        call:
            ApiCall::Send {
                to,
                route,
                reply_to,
                recipients,
                ..
            },
        ..
    } = read
    else {
        panic!("not a send: {read:?}");
    };
    assert_eq!(
        (to.as_str(), route, reply_to, recipients),
        (
            "carol@example.com",
            SendRoute::Relay,
            Vec::new(),
            Vec::new()
        )
    );
    // And a one-recipient send of today is byte for byte that shape.
    let today = InboxRequest::Api {
        key_hash: hash(1),
        mail_domain: "agents.test".into(),
        call: ApiCall::Send {
            to: "carol@example.com".into(),
            subject: Some("Hi".into()),
            text: Some("x".into()),
            html: None,
            route: SendRoute::Relay,
            reply_to: Vec::new(),
            recipients: Vec::new(),
            attachments: Vec::new(),
            idempotency_key: None,
        },
    };
    assert_eq!(serde_json::to_string(&today).ok(), Some(old));
}

#[test]
fn a_forward_from_a_router_that_predates_attachments_still_reads_and_re_attaches() {
    let old = format!(
        r#"{{"op":"api","keyHash":"{}","mailDomain":"agents.test","call":{{"call":"forward","id":7,"text":null,"html":null,"recipients":[]}}}}"#,
        hash(1).to_hex()
    );
    let read: InboxRequest = serde_json::from_str(&old).unwrap_or_else(|e| panic!("{e}"));
    let InboxRequest::Api {
        call:
            ApiCall::Forward {
                include_attachments,
                attachments,
                ..
            },
        ..
    } = read
    else {
        panic!("not a forward: {read:?}");
    };
    assert!(
        include_attachments,
        "the original's files go with it, as the default"
    );
    assert!(attachments.is_empty());
    // A send with files names them; their bytes are the payload, not here.
    let with_files = InboxRequest::Api {
        key_hash: hash(1),
        mail_domain: "agents.test".into(),
        call: ApiCall::Send {
            to: "carol@example.com".into(),
            subject: None,
            text: Some("x".into()),
            html: None,
            route: SendRoute::Relay,
            reply_to: Vec::new(),
            recipients: Vec::new(),
            attachments: vec![protocol::wire::WireAttachment {
                filename: "a.pdf".into(),
                content_type: "application/pdf".into(),
                content_id: None,
                inline: false,
                size: 1234,
            }],
            idempotency_key: None,
        },
    };
    insta::assert_json_snapshot!("send_request_with_files", with_files);
}

#[test]
fn send_requests_take_an_address_or_a_list() {
    let read = |json: &str| serde_json::from_str::<SendRequest>(json).map_err(|e| e.to_string());
    let one = read(r#"{"to":"a@example.com","text":"x"}"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one.to, AddressList::One("a@example.com".into()));
    let many = read(r#"{"to":["a@example.com"],"cc":"b@example.com","bcc":[],"replyTo":["c@example.com"],"text":"x"}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(many.to, AddressList::Many(vec!["a@example.com".into()]));
    assert_eq!(many.cc, Some(AddressList::One("b@example.com".into())));
    assert_eq!(many.bcc, Some(AddressList::Many(Vec::new())));
    assert_eq!(
        many.reply_to,
        Some(AddressList::Many(vec!["c@example.com".into()]))
    );
    let wrong = read(r#"{"to":5,"text":"x"}"#).err().unwrap_or_default();
    assert!(
        wrong.contains("an address or a list of addresses"),
        "{wrong}"
    );
    assert!(read(r#"{"to":["a@example.com",5],"text":"x"}"#).is_err());
    assert!(read(r#"{"to":"a@example.com","reply_to":"b@example.com","text":"x"}"#).is_err());
}

#[test]
fn signup_refuses_unknown_fields() {
    let error = serde_json::from_str::<SignupRequest>(r#"{"handel":"x"}"#)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("unknown field `handel`, expected `handle` at line 1 column 9")
    );
    assert_eq!(
        serde_json::from_str::<SignupRequest>(r#"{"handle":null}"#).ok(),
        Some(SignupRequest { handle: None })
    );
}

fn handle_strategy() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}[a-zA-Z0-9]"
}

proptest! {
    #[test]
    fn valid_handles_round_trip(raw in handle_strategy()) {
        match Handle::parse(&raw) {
            Ok(handle) => {
                prop_assert_eq!(handle.as_str(), raw.to_ascii_lowercase());
                let json = serde_json::to_string(&handle).expect("a handle serializes");
                prop_assert_eq!(serde_json::from_str::<Handle>(&json).ok(), Some(handle));
            }
            // Only the reserved list may refuse a string of this shape.
            Err(error) => prop_assert!(matches!(error, protocol::HandleError::Reserved(_))),
        }
    }

    #[test]
    fn any_string_parses_or_is_refused_without_panic(raw in any::<String>()) {
        if let Ok(handle) = Handle::parse(&raw) {
            prop_assert!(handle.as_str().len() >= 2 && handle.as_str().len() <= 64);
            prop_assert!(handle.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)));
        }
        let _ = ApiKey::parse(&raw);
        let _ = ApiKey::from_authorization(&raw);
        let _ = Timestamp::parse_rfc3339(&raw);
    }

    #[test]
    fn keys_round_trip(random in any::<[u8; 32]>()) {
        let key = ApiKey::from_random(random);
        prop_assert_eq!(key.expose().len(), protocol::key::KEY_LEN);
        prop_assert_eq!(ApiKey::parse(key.expose()), Some(key.clone()));
        let hash = key.hash();
        prop_assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash));
    }

    #[test]
    fn timestamps_round_trip_exactly(millis in -62_135_596_800_000i64..253_402_300_799_999) {
        let t = Timestamp::from_millis(millis);
        prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }

    #[test]
    fn inbox_requests_round_trip(seed in any::<u8>(), raw in handle_strategy(), domain in "[a-z]{1,10}\\.[a-z]{2,5}", which in 0..4u8) {
        let Ok(handle) = Handle::parse(&raw) else { return Ok(()); };
        let key_hash = hash(seed);
        let request = match which {
            0 => InboxRequest::Claim { handle, key_hash },
            1 => InboxRequest::Confirm { key_hash, prefix: None },
            2 => InboxRequest::Release { key_hash },
            _ => InboxRequest::Api { key_hash, mail_domain: domain, call: ApiCall::Me },
        };
        let bytes = serde_json::to_vec(&request).expect("a request serializes");
        prop_assert_eq!(serde_json::from_slice::<InboxRequest>(&bytes).ok(), Some(request));
    }

    #[test]
    fn public_bodies_round_trip(email in "[a-z]{2,8}@[a-z]{2,8}\\.test", count in any::<u64>(), seconds in 0i64..4_000_000_000, raw in handle_strategy()) {
        let Ok(handle) = Handle::parse(&raw) else { return Ok(()); };
        let me = Me { email: email.clone(), handle, created_at: Timestamp::from_millis(seconds * 1000), message_count: count, retention_days: None, scope: protocol::api::KeyScope::Full };
        let json = serde_json::to_string(&me).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<Me>(&json).ok(), Some(me));
        let signup = SignupResponse { email, api_key: ApiKey::from_random([1; 32]).expose().into() };
        let json = serde_json::to_string(&signup).expect("serializes");
        prop_assert_eq!(serde_json::from_str::<SignupResponse>(&json).ok(), Some(signup));
    }
}

mod webhook_urls {
    use proptest::prelude::*;
    use protocol::webhook_url::{UrlPolicy, check_webhook_url};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Addresses in every blocked IPv4 range.
    fn blocked_v4() -> impl Strategy<Value = Ipv4Addr> {
        prop_oneof![
            any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(127, b, c, d)),
            any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(10, b, c, d)),
            any::<[u8; 3]>().prop_map(|[b, c, d]| Ipv4Addr::new(0, b, c, d)),
            (16u8..32, any::<[u8; 2]>()).prop_map(|(b, [c, d])| Ipv4Addr::new(172, b, c, d)),
            any::<[u8; 2]>().prop_map(|[c, d]| Ipv4Addr::new(192, 168, c, d)),
            any::<[u8; 2]>().prop_map(|[c, d]| Ipv4Addr::new(169, 254, c, d)),
            (64u8..128, any::<[u8; 2]>()).prop_map(|(b, [c, d])| Ipv4Addr::new(100, b, c, d)),
            (224u8..=255, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d)),
        ]
    }

    /// Every spelling of `address` that a WHATWG parser reads as it.
    fn spellings(address: Ipv4Addr) -> Vec<String> {
        let [a, b, c, d] = address.octets();
        let n = u32::from(address);
        vec![
            format!("{a}.{b}.{c}.{d}"),
            format!("{n}"),
            format!("0x{n:x}"),
            format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
            format!("{a}.{b}.{}", u32::from(c) * 256 + u32::from(d)),
            format!("{a}.{}", n & 0x00ff_ffff),
            format!("[::ffff:{a}.{b}.{c}.{d}]"),
            format!("[::ffff:{:x}:{:x}]", n >> 16, n & 0xffff),
            format!("[64:ff9b::{a}.{b}.{c}.{d}]"),
            format!("[::ffff:0:{a}.{b}.{c}.{d}]"),
            format!("[2002:{:x}:{:x}::1]", n >> 16, n & 0xffff),
        ]
    }

    /// Addresses in every blocked IPv6 range that embeds no IPv4 address.
    fn blocked_v6() -> impl Strategy<Value = Ipv6Addr> {
        // An address whose first `bits` bits are those of `prefix`, the rest random.
        fn within(prefix: u128, bits: u32) -> impl Strategy<Value = Ipv6Addr> {
            any::<u128>().prop_map(move |random| {
                let host = if bits == 0 {
                    random
                } else {
                    random & (u128::MAX >> bits)
                };
                Ipv6Addr::from(prefix | host)
            })
        }
        prop_oneof![
            within(0x2001_0000 << 96, 32),      // Teredo
            within(0xfec0 << 112, 10),          // site-local
            within(0x0064_ff9b_0001 << 80, 48), // local-use NAT64
            within(0xfc00 << 112, 7),           // unique local
            within(0xfe80 << 112, 10),          // link-local
            within(0xff00 << 112, 8),           // multicast
            within(0x2001_0db8 << 96, 32),      // documentation
            within(0x3fff << 112, 20),          // documentation (RFC 9637)
            within(0x0100 << 112, 64),          // discard-only
            within(0x4000 << 112, 2),           // not global unicast
            within(0x8000 << 112, 2),           // not global unicast
        ]
    }

    /// Whether `address` is global unicast (2000::/3) outside every range
    /// carved out of it that is not public.
    fn public_v6(address: Ipv6Addr) -> bool {
        let [a, b, ..] = address.segments();
        a & 0xe000 == 0x2000
            && !(a == 0x2001 && b == 0)
            && !(a == 0x2001 && b == 0x0db8)
            && !(a == 0x2001 && b & 0xfff0 == 0x0010)
            && !(a == 0x2001 && b == 0x0002 && address.segments()[2] == 0)
            && a & 0xfff0 != 0x3ff0
            && a != 0x2002
    }

    proptest! {
        #[test]
        fn no_blocked_v6_address_is_allowed(address in blocked_v6(), path in "[a-z/]{0,12}") {
            for policy in [UrlPolicy::default(), UrlPolicy { allow_http_loopback: true }] {
                let https = format!("https://[{address}]/{path}");
                prop_assert!(check_webhook_url(&https, policy).is_err(), "{}", https);
                let http = format!("http://[{address}]/{path}");
                prop_assert!(check_webhook_url(&http, policy).is_err(), "{}", http);
            }
        }

        #[test]
        fn v6_outside_public_global_unicast_is_refused(bits in any::<u128>()) {
            let address = Ipv6Addr::from(bits);
            // IPv4 inside IPv6 is judged by its IPv4 address, elsewhere.
            let [a, b, c, d, e, f, ..] = address.segments();
            let embeds_v4 = (a, b, c, d) == (0, 0, 0, 0) && ((e, f) == (0, 0) || (e, f) == (0, 0xffff) || (e, f) == (0xffff, 0))
                || (a, b, c, d, e, f) == (0x64, 0xff9b, 0, 0, 0, 0)
                || a == 0x2002;
            prop_assume!(!embeds_v4);
            let https = format!("https://[{address}]/hook");
            prop_assert_eq!(check_webhook_url(&https, UrlPolicy::default()).is_ok(), public_v6(address), "{}", https);
        }

        #[test]
        fn public_v4_through_the_nat64_well_known_prefix_is_allowed(octets in any::<[u8; 4]>()) {
            let v4 = Ipv4Addr::from(octets);
            let plain = check_webhook_url(&format!("https://{v4}/"), UrlPolicy::default()).is_ok();
            let nat64 = check_webhook_url(&format!("https://[64:ff9b::{v4}]/"), UrlPolicy::default()).is_ok();
            prop_assert_eq!(plain, nat64, "{}", v4);
        }

        #[test]
        fn no_spelling_of_a_blocked_address_is_allowed(address in blocked_v4(), path in "[a-z/]{0,12}") {
            for host in spellings(address) {
                for policy in [UrlPolicy::default(), UrlPolicy { allow_http_loopback: true }] {
                    let https = format!("https://{host}/{path}");
                    let allowed_loopback = policy.allow_http_loopback && address.is_loopback();
                    prop_assert_eq!(check_webhook_url(&https, policy).is_ok(), allowed_loopback, "{}", https);
                    let http = format!("http://{host}/{path}");
                    prop_assert_eq!(check_webhook_url(&http, policy).is_ok(), allowed_loopback, "{}", http);
                }
            }
        }

        #[test]
        fn public_addresses_are_allowed_over_https_only(octets in any::<[u8; 4]>()) {
            let address = Ipv4Addr::from(octets);
            let [a, b, c, _] = octets;
            let public = !(address.is_loopback() || address.is_private() || address.is_link_local()
                || address.is_multicast() || a == 0 || a >= 240 || (a == 100 && (64..128).contains(&b))
                || (a, b, c) == (192, 0, 0) || (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100)
                || (a, b, c) == (203, 0, 113) || (a == 198 && (b == 18 || b == 19)));
            prop_assert_eq!(check_webhook_url(&format!("https://{address}/hook"), UrlPolicy::default()).is_ok(), public);
            let http = format!("http://{address}/hook");
            prop_assert!(check_webhook_url(&http, UrlPolicy::default()).is_err());
        }

        #[test]
        fn any_text_is_judged_without_panic(text in any::<String>()) {
            let _ = check_webhook_url(&text, UrlPolicy::default());
            let _ = check_webhook_url(&format!("https://{text}"), UrlPolicy { allow_http_loopback: true });
        }

        #[test]
        fn any_ascii_host_is_judged_without_panic(text in "[ -~]{0,64}") {
            // ASCII reaches the URL parser's host rules (upper case, dots,
            // xn-- labels, digits); anything else is refused before them.
            let _ = check_webhook_url(&format!("https://{text}/"), UrlPolicy::default());
            let _ = check_webhook_url(&format!("https://xn--{text}.example/"), UrlPolicy::default());
        }
    }
}

mod send_addresses {
    use proptest::prelude::*;
    use protocol::outbound::parse_address;

    #[test]
    fn plain_addresses_are_accepted_and_their_domain_lowercased() {
        for (given, kept) in [
            ("bob@example.com", "bob@example.com"),
            (
                "Bob.Smith+tag@Mail.Example.COM",
                "Bob.Smith+tag@mail.example.com",
            ),
            (
                "o'hara@xn--bcher-kva.example",
                "o'hara@xn--bcher-kva.example",
            ),
        ] {
            assert_eq!(parse_address(given).as_deref(), Ok(kept));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "bob",
            "@example.com",
            "bob@",
            "Bob <bob@example.com>",
            "bob@example.com, eve@example.com",
            "bob@example.com\r\nBcc: eve@example.com",
            "\"bob smith\"@example.com",
            "bob..smith@example.com",
            ".bob@example.com",
            "bob@localhost",
            "bob@[127.0.0.1]",
            "bob@10.0.0.1",
            "bob@-example.com",
            "bob@exa_mple.com",
            "bob@bücher.example",
        ] {
            assert!(parse_address(text).is_err(), "{text:?} was accepted");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(parse_address(&long_local).is_err());
    }

    proptest! {
        #[test]
        fn nothing_accepted_can_break_a_header_line(text in any::<String>()) {
            if let Ok(address) = parse_address(&text) {
                prop_assert!(!address.contains(['\r', '\n', ' ', ',', '<', '>', '"', '(', ')', ';', ':']));
                prop_assert_eq!(address.matches('@').count(), 1);
            }
        }

        #[test]
        fn dot_atoms_at_names_are_accepted(local in "[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[a-z0-9_-]{1,10}){0,2}", domain in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,2}\\.[a-z]{2,6}") {
            let address = format!("{local}@{domain}");
            prop_assert_eq!(parse_address(&address), Ok(address.clone()));
        }
    }
}
