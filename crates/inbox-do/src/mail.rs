//! Reading an inbound message with mail-parser. Malformed mail is ordinary
//! input: whatever can be read is kept, and what cannot becomes a warning.

use std::borrow::Cow;

use mail_parser::{Address, HeaderValue, MessageParser, MessagePart, MimeHeaders};
use protocol::Timestamp;
use protocol::api::{Attachment, HeaderField, MessageDetail};

/// Longest subject or display name kept on the listing row.
const MAX_SHORT_TEXT: usize = 16 * 1024;
/// Longest header value kept in `headers`.
const MAX_HEADER_VALUE: usize = 16 * 1024;
/// Most headers, addresses per field, references and attachments kept.
const MAX_ITEMS: usize = 1000;
/// Longest `text`, and longest `html`, kept in the detail: 1 MiB of UTF-8
/// each, cut on a character boundary. A message may be 25 MiB, and JSON
/// writes a control character as six bytes (`\u0001`), so an unbounded body
/// would make a 150 MiB detail against a Durable Object's 128 MB. With this
/// bound the two bodies take at most 12 MiB of JSON. The raw message keeps
/// every byte (`GET /api/messages/:id/raw`); a cut is named in `warnings`.
pub(crate) const MAX_BODY_TEXT: usize = 1024 * 1024;

/// What an inbound message says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedMail {
    pub(crate) from: String,
    pub(crate) from_name: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) has_attachments: bool,
    pub(crate) detail: MessageDetail,
}

/// Parses `raw`. Never fails: a message that does not parse at all still
/// yields the envelope's sender and a warning.
pub(crate) fn parse_mail(raw: &[u8], envelope_from: &str, tag: Option<String>) -> ParsedMail {
    let mut warnings = Vec::new();
    let mut detail = MessageDetail {
        tag,
        envelope_from: Some(envelope_from.to_owned()).filter(|f| !f.is_empty()),
        ..MessageDetail::default()
    };
    let Some(message) = MessageParser::default().parse(raw) else {
        detail.warnings.push(
            "The message could not be parsed; its raw bytes are stored unchanged.".to_owned(),
        );
        return ParsedMail {
            from: envelope_from.to_owned(),
            from_name: None,
            subject: None,
            has_attachments: false,
            detail,
        };
    };

    let first_from = message.from().and_then(Address::first);
    let (from, from_name) = match first_from.and_then(|a| a.address()) {
        Some(address) => (
            address.to_owned(),
            first_from
                .and_then(|a| a.name())
                .map(|n| clip(n, MAX_SHORT_TEXT, "the sender's name", &mut warnings)),
        ),
        None => {
            warnings.push(
                "The From header is missing or unreadable; `from` is the envelope sender."
                    .to_owned(),
            );
            (envelope_from.to_owned(), None)
        }
    };
    let subject = message
        .subject()
        .map(|s| clip(s, MAX_SHORT_TEXT, "the subject", &mut warnings));

    detail.to_addresses = addresses(message.to(), "To", &mut warnings);
    detail.cc = addresses(message.cc(), "Cc", &mut warnings);
    detail.reply_to = addresses(message.reply_to(), "Reply-To", &mut warnings);
    detail.message_id = message.message_id().map(str::to_owned);
    detail.in_reply_to = text_list(message.in_reply_to()).into_iter().next();
    detail.references = text_list(message.references());
    detail.references.truncate(MAX_ITEMS);
    detail.date = message.date().and_then(|d| {
        d.to_timestamp()
            .checked_mul(1000)
            .filter(|ms| (0..253_402_300_800_000).contains(ms))
            .map(Timestamp::from_millis)
    });
    if message.header_raw("Date").is_some() && detail.date.is_none() {
        warnings.push("The Date header could not be read.".to_owned());
    }
    // Every inline body part, in order: a multipart/mixed message may carry
    // several (a note, then a forwarded text), and none may be dropped.
    let mut texts: Vec<(u32, Cow<'_, str>)> = message
        .text_body
        .iter()
        .enumerate()
        .filter_map(|(i, &id)| message.body_text(i).map(|text| (id, text)))
        .collect();
    // A text part without a name or an `attachment` disposition is body, as
    // mail clients and Python's `email` show it, wherever the multipart ends:
    // mail-parser lists such a part as an attachment when the closing
    // boundary is missing, or when it follows an attachment.
    let body_parts: Vec<u32> = message
        .attachments
        .iter()
        .copied()
        .filter(|&id| message.part(id).is_some_and(is_unnamed_plain_text))
        .collect();
    for &id in body_parts
        .iter()
        .filter(|id| !message.text_body.contains(id))
    {
        if let Some(text) = message.part(id).and_then(|part| part.text_contents()) {
            texts.push((id, Cow::Borrowed(text)));
        }
    }
    texts.sort_by_key(|&(id, _)| id);
    let texts: Vec<Cow<'_, str>> = texts.into_iter().map(|(_, text)| text).collect();
    detail.text = joined(&texts, "the text body", &mut warnings);
    // Only real HTML parts: mail-parser would otherwise render a text part as
    // HTML, which the sender never wrote.
    let htmls: Vec<Cow<'_, str>> = (0..message.html_body_count())
        .filter(|&i| {
            u32::try_from(i)
                .ok()
                .and_then(|i| message.html_part(i))
                .is_some_and(|part| part.is_text_html())
        })
        .filter_map(|i| message.body_html(i))
        .collect();
    detail.html = joined(&htmls, "the HTML body", &mut warnings);

    for (name, value) in message.headers_raw() {
        if detail.headers.len() == MAX_ITEMS {
            warnings.push(format!("Only the first {MAX_ITEMS} headers are listed."));
            break;
        }
        let value = unfold(value);
        detail.headers.push(HeaderField {
            name: name.to_owned(),
            value: clip(
                &value,
                MAX_HEADER_VALUE,
                &format!("the {name} header"),
                &mut warnings,
            ),
        });
    }

    let attachments = message
        .attachments
        .iter()
        .filter(|id| !body_parts.contains(id))
        .filter_map(|&id| message.part(id));
    let attachment_count = message.attachment_count() - body_parts.len();
    for part in attachments {
        if detail.attachments.len() == MAX_ITEMS {
            warnings.push(format!(
                "Only the first {MAX_ITEMS} attachments are listed."
            ));
            break;
        }
        let content_type = part.content_type().map_or_else(
            || "application/octet-stream".to_owned(),
            |ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            },
        );
        detail.attachments.push(Attachment {
            name: part.attachment_name().map(str::to_owned),
            content_type,
            size: part.len() as u64,
        });
    }

    detail.warnings = warnings;
    ParsedMail {
        from,
        from_name,
        subject,
        has_attachments: attachment_count > 0,
        detail,
    }
}

/// Whether `part` is plain text that names no file and is not marked as an
/// attachment: body, wherever it sits.
fn is_unnamed_plain_text(part: &MessagePart<'_>) -> bool {
    let plain = part.content_type().is_none_or(|ct| {
        ct.ctype().eq_ignore_ascii_case("text")
            && ct
                .subtype()
                .is_none_or(|sub| sub.eq_ignore_ascii_case("plain"))
    });
    let attachment = part
        .content_disposition()
        .is_some_and(|cd| cd.ctype().eq_ignore_ascii_case("attachment"));
    part.is_text()
        && !part.is_text_html()
        && plain
        && !attachment
        && part.attachment_name().is_none()
}

fn addresses(field: Option<&Address<'_>>, header: &str, warnings: &mut Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = field
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if out.len() > MAX_ITEMS {
        out.truncate(MAX_ITEMS);
        warnings.push(format!(
            "Only the first {MAX_ITEMS} {header} addresses are listed."
        ));
    }
    out
}

fn text_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(text) => vec![text.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Joins folded header lines: CRLF (or a bare LF) followed by white space
/// becomes that white space; the result is trimmed.
fn unfold(value: &str) -> String {
    value
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect::<Vec<_>>()
        .join("")
        .trim()
        .to_owned()
}

/// `parts` joined by newlines and cut to at most [`MAX_BODY_TEXT`] bytes on
/// a character boundary, with a warning naming `what` when cut; `None` when
/// there are no parts. Only what is kept is copied, so a 25 MiB body costs
/// 1 MiB here, not two more copies of itself.
fn joined(parts: &[Cow<'_, str>], what: &str, warnings: &mut Vec<String>) -> Option<String> {
    let first = parts.first()?;
    let mut out = String::with_capacity(first.len().min(MAX_BODY_TEXT));
    for (i, part) in parts.iter().enumerate() {
        let separator = if i == 0 { "" } else { "\n" };
        if out.len() + separator.len() + part.len() > MAX_BODY_TEXT {
            let whole = format!("{separator}{}", prefix(part, MAX_BODY_TEXT - out.len()));
            out.push_str(prefix(&whole, MAX_BODY_TEXT - out.len()));
            warnings.push(format!(
                "{} was cut to {MAX_BODY_TEXT} bytes; the raw message has it whole.",
                capital(what)
            ));
            break;
        }
        out.push_str(separator);
        out.push_str(part);
    }
    Some(out)
}

/// The longest prefix of `text` of at most `max` bytes ending on a character
/// boundary.
fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` cut to at most `max` bytes on a character boundary, with a warning
/// naming `what` when it was cut.
fn clip(text: &str, max: usize, what: &str, warnings: &mut Vec<String>) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    warnings.push(format!(
        "{} was cut to {max} bytes; the raw message has it whole.",
        capital(what)
    ));
    text[..end].to_owned()
}

fn capital(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{MAX_BODY_TEXT, parse_mail};

    fn multipart(parts: &str, closed: bool) -> Vec<u8> {
        let mut raw = String::from(
            "From: a@example.com\r\nTo: b@agents.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n",
        );
        raw.push_str(parts);
        if closed {
            raw.push_str("\r\n--b1--\r\n");
        }
        raw.into_bytes()
    }

    #[test]
    fn an_unterminated_only_text_part_is_the_body() {
        let raw = multipart(
            "--b1\r\nContent-Type: text/plain\r\n\r\nHello there.\r\n",
            false,
        );
        let mail = parse_mail(&raw, "a@example.com", None);
        assert_eq!(mail.detail.text.as_deref(), Some("Hello there.\r\n"));
        assert_eq!(mail.detail.attachments, vec![]);
        assert!(!mail.has_attachments);
    }

    #[test]
    fn an_unterminated_last_text_part_is_body_after_an_attachment() {
        let parts = "--b1\r\nContent-Type: text/plain\r\n\r\nNote.\r\n\
                     --b1\r\nContent-Type: application/pdf\r\n\
                     Content-Disposition: attachment; filename=\"r.pdf\"\r\n\r\n%PDF\r\n\
                     --b1\r\nContent-Type: text/plain\r\n\r\nPostscript.\r\n";
        let mail = parse_mail(&multipart(parts, false), "a@example.com", None);
        let text = mail.detail.text.expect("a text body");
        assert!(
            text.starts_with("Note.") && text.ends_with("Postscript.\r\n"),
            "{text:?}"
        );
        let names: Vec<_> = mail
            .detail
            .attachments
            .iter()
            .map(|a| a.name.as_deref())
            .collect();
        assert_eq!(names, vec![Some("r.pdf")]);
        assert!(mail.has_attachments);
    }

    #[test]
    fn named_or_attachment_text_parts_stay_attachments() {
        let parts = "--b1\r\nContent-Type: text/plain\r\n\r\nBody.\r\n\
                     --b1\r\nContent-Type: text/plain; name=\"n.txt\"\r\n\r\nA file.\r\n\
                     --b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nAnother.\r\n";
        for closed in [true, false] {
            let mail = parse_mail(&multipart(parts, closed), "a@example.com", None);
            assert_eq!(
                mail.detail.text.as_deref().map(str::trim_end),
                Some("Body."),
                "closed: {closed}"
            );
            assert_eq!(mail.detail.attachments.len(), 2, "closed: {closed}");
        }
    }

    #[test]
    fn bodies_are_clipped_to_the_bound_with_a_warning() {
        // Control characters: the worst case for JSON escaping.
        let body = "\u{1}".repeat(MAX_BODY_TEXT + 10);
        let raw =
            format!("From: a@example.com\r\nSubject: s\r\nContent-Type: text/plain\r\n\r\n{body}");
        let mail = parse_mail(raw.as_bytes(), "a@example.com", None);
        let text = mail.detail.text.expect("a text body");
        assert_eq!(text.len(), MAX_BODY_TEXT);
        assert!(
            mail.detail
                .warnings
                .iter()
                .any(|w| w.starts_with("The text body was cut")),
            "{:?}",
            mail.detail.warnings
        );
        let html = format!("<p>{}</p>", "é".repeat(MAX_BODY_TEXT));
        let raw = format!(
            "From: a@example.com\r\nSubject: s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}"
        );
        let mail = parse_mail(raw.as_bytes(), "a@example.com", None);
        let kept = mail.detail.html.expect("an html body");
        // Cut on a character boundary: `é` is two bytes, after a three-byte `<p>`.
        assert_eq!(kept.len(), MAX_BODY_TEXT - 1);
        assert!(
            mail.detail
                .warnings
                .iter()
                .any(|w| w.starts_with("The HTML body was cut"))
        );
    }
}
