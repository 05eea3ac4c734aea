//! Building an outbound message (with mail-builder) and the HTTP relay's
//! request and answer.

use crate::ports::{HttpAnswer, HttpCall};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::mime::{BodyPart, MimePart};
use protocol::Timestamp;
use protocol::key::sha256_hex;
use serde::Serialize;

/// How long a call to the HTTP relay may take, in milliseconds: the bound of
/// every hand-over, below the send job's lease.
pub(crate) const RELAY_TIMEOUT_MILLIS: u64 = crate::jobs::HANDOVER_TIMEOUT_MILLIS;

/// What an outbound message says. There is no Bcc here: blind copies are
/// never written into the message, only given to the relay as recipients.
#[derive(Debug, Clone)]
pub(crate) struct Draft<'a> {
    pub(crate) from: &'a str,
    /// The To header (at least one address).
    pub(crate) to: &'a [String],
    /// The Cc header, when not empty.
    pub(crate) cc: &'a [String],
    /// The Reply-To header, when not empty.
    pub(crate) reply_to: &'a [String],
    /// The Message-ID answered (without brackets), for In-Reply-To.
    pub(crate) in_reply_to: Option<&'a str>,
    /// The References header's ids (without brackets), oldest first.
    pub(crate) references: &'a [String],
    pub(crate) subject: Option<&'a str>,
    pub(crate) text: Option<&'a str>,
    pub(crate) html: Option<&'a str>,
    pub(crate) date: Timestamp,
}

/// A built message: its Message-ID (without brackets) and its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub(crate) message_id: String,
    pub(crate) raw: Vec<u8>,
}

/// Builds the message. `unique` makes its Message-ID unique to this send (the
/// caller passes something no other send of this inbox shares); the
/// Message-ID is on the sender's domain and the MIME boundary is derived from
/// it, so the same draft and `unique` always give the same bytes. `Err` says
/// why the message could not be written (it is then not sent).
pub(crate) fn build(draft: &Draft<'_>, unique: &str) -> Result<Built, String> {
    let mut raw = Vec::new();
    let message_id = build_into(draft, unique, &mut raw)?;
    Ok(Built { message_id, raw })
}

/// As [`build`], writing the bytes to `out`; returns the Message-ID.
fn build_into(
    draft: &Draft<'_>,
    unique: &str,
    out: &mut dyn std::io::Write,
) -> Result<String, String> {
    let domain = draft.from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let digest = sha256_hex(format!("{}\n{}\n{unique}", draft.from, draft.to.join(",")).as_bytes());
    let message_id = format!("{}@{domain}", &digest[..32]);
    // A boundary must not occur in the bodies; a collision with this one is
    // astronomically unlikely, but a hostile body could be written to contain
    // it, so look and move on if it does.
    let mut boundary = format!("=_inboxkit_{}", &digest[32..56]);
    let mut salt = 0u32;
    while [draft.text, draft.html]
        .into_iter()
        .flatten()
        .any(|body| body.contains(&boundary))
    {
        salt += 1;
        boundary = format!(
            "=_inboxkit_{}",
            &sha256_hex(format!("{digest}{salt}").as_bytes())[..24]
        );
    }

    let mut message = MessageBuilder::new()
        .from(Address::new_address(None::<&str>, draft.from))
        .to(addresses(draft.to))
        .message_id(message_id.as_str())
        .date(Date::new(draft.date.millis().div_euclid(1000)));
    if !draft.cc.is_empty() {
        message = message.cc(addresses(draft.cc));
    }
    if !draft.reply_to.is_empty() {
        message = message.reply_to(addresses(draft.reply_to));
    }
    if let Some(id) = draft.in_reply_to {
        message = message.in_reply_to(id);
    }
    if !draft.references.is_empty() {
        message = message.references(draft.references);
    }
    if let Some(subject) = draft.subject {
        message = message.subject(subject);
    }
    let text_part =
        |text: &str| MimePart::new("text/plain", BodyPart::Text(text.to_owned().into()));
    let html_part = |html: &str| MimePart::new("text/html", BodyPart::Text(html.to_owned().into()));
    let body = match (draft.text, draft.html) {
        (Some(text), Some(html)) => MimePart::new(
            ContentType::new("multipart/alternative").attribute("boundary", boundary),
            vec![text_part(text), html_part(html)],
        ),
        (Some(text), None) => text_part(text),
        (None, Some(html)) => html_part(html),
        // Validation requires a body; an empty text part is the honest fallback.
        (None, None) => text_part(""),
    };
    message
        .body(body)
        .write_to(out)
        .map_err(|e| format!("The message could not be built: {e}"))?;
    Ok(message_id)
}

/// An address header's value: one address, or a list.
fn addresses(list: &[String]) -> Address<'_> {
    match list {
        [one] => Address::new_address(None::<&str>, one.as_str()),
        many => Address::new_list(
            many.iter()
                .map(|a| Address::new_address(None::<&str>, a.as_str()))
                .collect(),
        ),
    }
}

/// The recipients the HTTP relay delivers to, by kind. Resend writes its
/// own To and Cc headers from these, so they name only the recipients it
/// delivers to (not those of this deployment, delivered directly).
#[derive(Debug, Clone, Default)]
pub(crate) struct RelayRecipients<'a> {
    pub(crate) to: Vec<&'a str>,
    pub(crate) cc: Vec<&'a str>,
    pub(crate) bcc: Vec<&'a str>,
}

/// Resend's request body.
#[derive(Serialize)]
struct ResendEmail<'a> {
    from: &'a str,
    to: &'a [&'a str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cc: &'a [&'a str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    bcc: &'a [&'a str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    reply_to: &'a [String],
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<&'a str>,
    headers: ResendHeaders<'a>,
}

#[derive(Serialize)]
struct ResendHeaders<'a> {
    #[serde(rename = "Message-ID")]
    message_id: String,
    #[serde(rename = "X-Entity-Ref-ID")]
    entity_ref: &'a str,
    #[serde(rename = "In-Reply-To", skip_serializing_if = "Option::is_none")]
    in_reply_to: Option<String>,
    #[serde(rename = "References", skip_serializing_if = "Option::is_none")]
    references: Option<String>,
}

/// Message-IDs as a header writes them: each in angle brackets.
fn bracketed<'i>(ids: impl IntoIterator<Item = &'i str>) -> Option<String> {
    let joined = ids
        .into_iter()
        .map(|id| format!("<{id}>"))
        .collect::<Vec<_>>()
        .join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// The HTTP relay's request for `draft`, as Resend's API takes it, in one
/// call for all of `recipients`: the relay builds its own MIME, so the fields
/// are sent, with our Message-ID (the draft's To and Cc give way to
/// `recipients`). The relay deduplicates on `idempotency_key` for a day, so a
/// call repeated after an interruption delivers once. `Err` says why the
/// request could not be written (the send then fails).
pub(crate) fn relay_call(
    draft: &Draft<'_>,
    recipients: &RelayRecipients<'_>,
    message_id: &str,
    idempotency_key: &str,
    url: &str,
    api_key: &str,
) -> Result<HttpCall, String> {
    let body = ResendEmail {
        from: draft.from,
        to: &recipients.to,
        cc: &recipients.cc,
        bcc: &recipients.bcc,
        reply_to: draft.reply_to,
        // Resend requires a subject; an empty one is what we stored.
        subject: draft.subject.unwrap_or(""),
        text: draft.text,
        html: draft.html,
        headers: ResendHeaders {
            message_id: format!("<{message_id}>"),
            entity_ref: message_id,
            in_reply_to: bracketed(draft.in_reply_to),
            references: bracketed(draft.references.iter().map(String::as_str)),
        },
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| format!("The relay's request could not be built: {e}"))?;
    Ok(HttpCall {
        url: url.to_owned(),
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), format!("Bearer {api_key}")),
            ("user-agent".to_owned(), user_agent()),
            ("idempotency-key".to_owned(), idempotency_key.to_owned()),
        ],
        body,
        timeout_millis: RELAY_TIMEOUT_MILLIS,
    })
}

/// Reads the relay's answer: `Ok` when it accepted the message, otherwise the
/// reason to record (its own message when it gave one).
pub(crate) fn relay_outcome(answer: &HttpAnswer) -> Result<(), String> {
    if (200..300).contains(&answer.status) {
        return Ok(());
    }
    let said = serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .map(|m| m.chars().take(300).collect::<String>());
    Err(match said {
        Some(message) => format!(
            "The relay refused the message ({}): {message}",
            answer.status
        ),
        None => format!("The relay answered HTTP {}.", answer.status),
    })
}

/// `User-Agent` of every outbound HTTP request.
pub(crate) fn user_agent() -> String {
    format!("InboxKit/{}", protocol::VERSION)
}

// Native only: the test tools (insta, mail-parser's reading) run on the host.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn make(draft: &Draft<'_>, unique: &str) -> Built {
        build(draft, unique).expect("a message builds")
    }

    /// A writer that fails, as no Vec does.
    struct Broken;

    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_message_that_cannot_be_written_is_an_error_not_an_empty_message() {
        let plain = draft(Some("x"), None);
        let failed = build_into(&plain, "u", &mut Broken).expect_err("the writer fails");
        assert!(failed.contains("could not be built"), "{failed}");
    }

    const NONE: &[String] = &[];

    fn draft<'a>(text: Option<&'a str>, html: Option<&'a str>) -> Draft<'a> {
        static TO: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["bob@example.com".to_owned()]);
        Draft {
            from: "alice@agents.test",
            to: &TO,
            cc: NONE,
            reply_to: NONE,
            in_reply_to: None,
            references: NONE,
            subject: Some(
                "Grüße, and a long subject that has to be folded because it goes on and on past the line",
            ),
            text,
            html,
            date: Timestamp::from_millis(1_774_526_400_000),
        }
    }

    #[test]
    fn a_message_is_a_pure_function_of_its_draft() {
        let both = draft(
            Some("Hello,\nsee you at 5.\n"),
            Some("<p>Hello, see you at <b>5</b>.</p>"),
        );
        let built = make(&both, "1774526400000:41");
        // No clock and no random source: the same draft gives the same bytes.
        assert_eq!(make(&both, "1774526400000:41").raw, built.raw);
        assert_ne!(make(&both, "1774526400000:42").raw, built.raw);
        // Lines end in CRLF, as RFC 5322 requires, even where the body had LF.
        let bare_lf = built
            .raw
            .windows(2)
            .filter(|w| w[1] == b'\n' && w[0] != b'\r')
            .count();
        assert_eq!(bare_lf, 0);
        assert!(built.raw.starts_with(b"From: <alice@agents.test>\r\n"));
        insta::assert_snapshot!(String::from_utf8_lossy(&built.raw));
    }

    #[test]
    fn a_boundary_never_occurs_in_a_body() {
        let plain = draft(Some("x"), Some("y"));
        let text = String::from_utf8_lossy(&make(&plain, "u").raw).into_owned();
        let boundary = text
            .split("boundary=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned();
        assert!(boundary.starts_with("=_inboxkit_"), "{text}");
        // A body that contains the boundary it would get moves it elsewhere.
        let hostile = format!("--{boundary}\r\nContent-Type: text/html\r\n\r\nforged");
        let attacked = draft(Some(&hostile), Some("y"));
        let text = String::from_utf8_lossy(&make(&attacked, "u").raw).into_owned();
        assert!(!text.contains(&format!("boundary=\"{boundary}\"")));
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap_or_default();
        assert_eq!(parsed.body_text(0).as_deref(), Some(hostile.as_str()));
        assert_eq!(parsed.body_html(0).as_deref(), Some("y"));
    }

    #[test]
    fn cc_reply_to_and_the_thread_headers_are_written_and_bcc_cannot_be() {
        let to = vec!["bob@example.com".to_owned(), "carol@example.com".to_owned()];
        let cc = vec!["dave@example.com".to_owned()];
        let reply_to = vec!["desk@agents.test".to_owned()];
        let references = vec![
            "first-0123456789abcdef0123456789abcdef@example.com".to_owned(),
            "second-0123456789abcdef0123456789abcdef@example.com".to_owned(),
        ];
        let reply = Draft {
            to: &to,
            cc: &cc,
            reply_to: &reply_to,
            in_reply_to: Some("second-0123456789abcdef0123456789abcdef@example.com"),
            references: &references,
            ..draft(Some("x"), None)
        };
        let built = make(&reply, "u");
        let text = String::from_utf8_lossy(&built.raw).into_owned();
        assert!(
            text.contains("To: <bob@example.com>, <carol@example.com>\r\n"),
            "{text}"
        );
        assert!(text.contains("Cc: <dave@example.com>\r\n"), "{text}");
        assert!(text.contains("Reply-To: <desk@agents.test>\r\n"), "{text}");
        assert!(
            text.contains("In-Reply-To: <second-0123456789abcdef0123456789abcdef@example.com>\r\n"),
            "{text}"
        );
        // Two long ids do not fit one line: folded between them.
        assert!(
            text.contains(
                "References: <first-0123456789abcdef0123456789abcdef@example.com>\r\n \
                 <second-0123456789abcdef0123456789abcdef@example.com>\r\n"
            ),
            "{text}"
        );
        assert!(!text.to_ascii_lowercase().contains("bcc"), "{text}");
        // Read back as a reader would.
        let parsed = mail_parser::MessageParser::default()
            .parse(&built.raw)
            .expect("a message");
        assert_eq!(
            parsed.in_reply_to().as_text(),
            Some("second-0123456789abcdef0123456789abcdef@example.com")
        );
        let refs: Vec<&str> = parsed
            .references()
            .as_text_list()
            .unwrap_or_default()
            .iter()
            .map(|id| id.as_ref())
            .collect();
        assert_eq!(
            refs,
            references.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_http_relay_gets_every_recipient_list_and_the_thread_headers() {
        let reply_to = vec!["desk@agents.test".to_owned()];
        let references = vec!["a@x".to_owned(), "b@x".to_owned()];
        let reply = Draft {
            reply_to: &reply_to,
            in_reply_to: Some("b@x"),
            references: &references,
            ..draft(Some("x"), None)
        };
        let recipients = RelayRecipients {
            to: vec!["bob@example.com"],
            cc: vec!["carol@example.com"],
            bcc: vec!["dave@example.com", "erin@example.com"],
        };
        let call = relay_call(
            &reply,
            &recipients,
            "m@agents.test",
            "m@agents.test",
            "https://r",
            "k",
        )
        .expect("a call");
        let body: serde_json::Value = serde_json::from_slice(&call.body).expect("JSON");
        assert_eq!(body["to"], serde_json::json!(["bob@example.com"]));
        assert_eq!(body["cc"], serde_json::json!(["carol@example.com"]));
        assert_eq!(
            body["bcc"],
            serde_json::json!(["dave@example.com", "erin@example.com"])
        );
        assert_eq!(body["reply_to"], serde_json::json!(["desk@agents.test"]));
        assert_eq!(body["headers"]["In-Reply-To"], "<b@x>");
        assert_eq!(body["headers"]["References"], "<a@x> <b@x>");
        // Without them, nothing empty is sent.
        let plain = relay_call(
            &draft(Some("x"), None),
            &RelayRecipients {
                to: vec!["bob@example.com"],
                ..RelayRecipients::default()
            },
            "m@agents.test",
            "m@agents.test",
            "https://r",
            "k",
        )
        .expect("a call");
        let body: serde_json::Value = serde_json::from_slice(&plain.body).expect("JSON");
        for absent in ["cc", "bcc", "reply_to"] {
            assert!(body.get(absent).is_none(), "{body}");
        }
        assert!(body["headers"].get("In-Reply-To").is_none(), "{body}");
    }
}
