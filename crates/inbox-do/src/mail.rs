//! Reading an inbound message with mail-parser. Malformed mail is ordinary
//! input: whatever can be read is kept, and what cannot becomes a warning.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use protocol::Timestamp;
use protocol::api::{Attachment, HeaderField, MessageDetail};

/// Longest subject or display name kept on the listing row.
const MAX_SHORT_TEXT: usize = 16 * 1024;
/// Longest header value kept in `headers`.
const MAX_HEADER_VALUE: usize = 16 * 1024;
/// Most headers, addresses per field, references and attachments kept.
const MAX_ITEMS: usize = 1000;

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
    let texts: Vec<String> = (0..message.text_body_count())
        .filter_map(|i| message.body_text(i).map(|t| t.into_owned()))
        .collect();
    detail.text = (!texts.is_empty()).then(|| texts.join("\n"));
    // Only real HTML parts: mail-parser would otherwise render a text part as
    // HTML, which the sender never wrote.
    let htmls: Vec<String> = (0..message.html_body_count())
        .filter(|&i| {
            u32::try_from(i)
                .ok()
                .and_then(|i| message.html_part(i))
                .is_some_and(|part| part.is_text_html())
        })
        .filter_map(|i| message.body_html(i).map(|h| h.into_owned()))
        .collect();
    detail.html = (!htmls.is_empty()).then(|| htmls.join("\n"));

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

    for part in message.attachments() {
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
        has_attachments: message.attachment_count() > 0,
        detail,
    }
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
