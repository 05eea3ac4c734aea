//! Reading an inbound message with mail-parser. Malformed mail is ordinary
//! input: whatever can be read is kept, and what cannot becomes a warning.

use std::borrow::Cow;

use crate::decode::{Decoder, Layer, Pipeline, TransferEncoding, decoded_len};
use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use protocol::Timestamp;
use protocol::api::{Attachment, Disposition, HeaderField, MessageDetail};

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
    /// Its attachments, depth first (also listed in `detail`).
    pub(crate) attachments: Vec<PartRecord>,
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
            attachments: Vec::new(),
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
    let in_text_body: std::collections::HashSet<u32> = message.text_body.iter().copied().collect();
    for &id in body_parts.iter().filter(|id| !in_text_body.contains(id)) {
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

    let mut attachments = Vec::new();
    let mut walk = Walk {
        out: &mut attachments,
        warnings: &mut warnings,
        too_deep: false,
        too_many: false,
    };
    walk.message(&message, None, &[], raw, 0);
    detail.attachments = attachments.iter().map(PartRecord::listed).collect();

    detail.warnings = warnings;
    ParsedMail {
        from,
        from_name,
        subject,
        has_attachments: !attachments.is_empty(),
        detail,
        attachments,
    }
}

/// Nested multiparts and messages deeper than this are not listed (their
/// bytes are still in the raw message): real mail nests a few levels.
const MAX_DEPTH: usize = 24;

/// One attachment as stored: what the API lists, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartRecord {
    /// Its MIME section number, as IMAP numbers parts: the attachment id.
    pub(crate) part: String,
    pub(crate) name: Option<String>,
    /// `type/subtype`, lowercased, as declared (`application/octet-stream`
    /// when nothing is declared).
    pub(crate) content_type: String,
    /// The declared charset of a text part, when it is a plain token.
    pub(crate) charset: Option<String>,
    pub(crate) disposition: Disposition,
    pub(crate) content_id: Option<String>,
    /// Decoded size: what a download answers.
    pub(crate) size: u64,
    /// Where its encoded bytes are: a range of the raw message, or of a
    /// range decoded (a part inside a base64-encoded forwarded message).
    pub(crate) location: Vec<Layer>,
}

impl PartRecord {
    /// The API's view of it.
    pub(crate) fn listed(&self) -> Attachment {
        Attachment {
            id: self.part.clone(),
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            disposition: self.disposition,
            content_id: self.content_id.clone(),
        }
    }
}

/// The walk of a message's MIME tree that lists its attachments, numbering
/// parts as IMAP does (RFC 3501, BODY[section]): in a multipart the children
/// are `1`, `2`, …, a part of a nested multipart `2.1`, and the parts of a
/// forwarded message (`message/rfc822`, section `k`) `k.1`, `k.2`, … (its
/// single body `k.1`). A section depends only on the message's structure,
/// so an id stays the same whenever the message is read again.
///
/// The work is linear in the message: each part is visited once, and a
/// forwarded message that is itself encoded is decoded once (by our decoder,
/// as a download will) to count the sizes of the parts inside it.
struct Walk<'w> {
    out: &'w mut Vec<PartRecord>,
    warnings: &'w mut Vec<String>,
    too_deep: bool,
    too_many: bool,
}

impl Walk<'_> {
    /// A message (the whole mail, or one forwarded inside it) whose parts'
    /// offsets are in `buffer`, the bytes `prefix` decodes to (the raw
    /// message when `prefix` is empty), numbered under `base`.
    fn message(
        &mut self,
        message: &Message<'_>,
        base: Option<&str>,
        prefix: &[Layer],
        buffer: &[u8],
        depth: usize,
    ) {
        let section = |n: usize| match base {
            Some(base) => format!("{base}.{n}"),
            None => n.to_string(),
        };
        // Unnamed plain text is body, wherever mail-parser put it.
        let mut listed = vec![false; message.parts.len()];
        for &id in &message.attachments {
            if message
                .part(id)
                .is_some_and(|part| !is_unnamed_plain_text(part))
                && let Some(slot) = listed.get_mut(id as usize)
            {
                *slot = true;
            }
        }
        let Some(root) = message.part(0) else {
            return;
        };
        let level = Level {
            message,
            listed: &listed,
            prefix,
            buffer,
        };
        match &root.body {
            PartType::Multipart(children) => {
                for (i, &child) in children.iter().enumerate() {
                    self.part(&level, child, section(i + 1), depth + 1);
                }
            }
            _ => self.part(&level, 0, section(1), depth + 1),
        }
    }

    fn part(&mut self, level: &Level<'_, '_>, id: u32, section: String, depth: usize) {
        let Some(part) = level.message.part(id) else {
            return;
        };
        if self.too_many {
            return;
        }
        if depth > MAX_DEPTH {
            if !self.too_deep {
                self.too_deep = true;
                self.warnings.push(format!(
                    "Parts nested more than {MAX_DEPTH} levels deep are not listed."
                ));
            }
            return;
        }
        let encoding = match &part.body {
            // mail-parser parses a forwarded message from its decoded bytes
            // only when it was base64 or quoted-printable; any other
            // encoding it reads in place, so the offsets inside are in this
            // same buffer.
            PartType::Message(_) => match part.encoding {
                mail_parser::Encoding::Base64 => TransferEncoding::Base64,
                mail_parser::Encoding::QuotedPrintable => TransferEncoding::QuotedPrintable,
                mail_parser::Encoding::None => TransferEncoding::Identity,
            },
            _ => TransferEncoding::from_header(part.content_transfer_encoding()),
        };
        let len = level.buffer.len() as u64;
        let layer = Layer {
            start: u64::from(part.offset_body).min(len),
            end: u64::from(part.offset_end.max(part.offset_body)).min(len),
            encoding,
        };
        let mut location = level.prefix.to_vec();
        location.push(layer);
        let listed = level.listed.get(id as usize).copied().unwrap_or(false);
        let encoded = &level.buffer[layer.start as usize..layer.end as usize];
        match &part.body {
            PartType::Multipart(children) => {
                for (i, &child) in children.iter().enumerate() {
                    let child_section = format!("{section}.{}", i + 1);
                    self.part(level, child, child_section, depth + 1);
                }
            }
            PartType::Message(nested) => {
                if encoding == TransferEncoding::Identity {
                    if listed {
                        let size = encoded.len() as u64;
                        self.record(level.message, part, &section, location, size);
                    }
                    self.message(
                        nested,
                        Some(&section),
                        level.prefix,
                        level.buffer,
                        depth + 1,
                    );
                } else {
                    // Decoded once, here, for the message itself and every
                    // part inside it. mail-parser found the parts inside in
                    // its own decoding of it: their offsets hold in ours only
                    // when the two are the same bytes (they are for valid
                    // base64; quoted-printable with stray CRs, say, differs),
                    // and a part listed at the wrong offsets would download
                    // the wrong bytes, so then only the message is listed.
                    let decoded = decode_all(encoding, encoded);
                    if listed {
                        let size = decoded.len() as u64;
                        self.record(level.message, part, &section, location.clone(), size);
                    }
                    if decoded.as_slice() == nested.raw_message() {
                        drop(decoded);
                        let inner = nested.raw_message();
                        self.message(nested, Some(&section), &location, inner, depth + 1);
                    } else {
                        self.warnings.push(format!(
                            "The parts of the forwarded message {section} are not listed: its \
                             encoding could not be read unambiguously (download it whole)."
                        ));
                    }
                }
            }
            _ => {
                if listed {
                    let size = decoded_len(encoding, encoded);
                    self.record(level.message, part, &section, location, size);
                }
            }
        }
    }

    fn record(
        &mut self,
        message: &Message<'_>,
        part: &MessagePart<'_>,
        section: &str,
        location: Vec<Layer>,
        size: u64,
    ) {
        if self.out.len() == MAX_ITEMS {
            if !self.too_many {
                self.too_many = true;
                self.warnings.push(format!(
                    "Only the first {MAX_ITEMS} attachments are listed."
                ));
            }
            return;
        }
        let content_type = part.content_type();
        // As declared, lowercased; a type without a subtype says nothing.
        let declared = content_type
            .and_then(|ct| {
                ct.subtype()
                    .map(|sub| format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase())
            })
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let charset = content_type
            .and_then(|ct| ct.attribute("charset"))
            .filter(|c| {
                !c.is_empty()
                    && c.len() <= 40
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:+()".contains(&b))
            })
            .map(str::to_ascii_lowercase);
        let content_id = part
            .content_id()
            .map(|id| {
                id.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
            .filter(|id| !id.is_empty());
        let disposition = match part.content_disposition().map(|cd| cd.ctype()) {
            Some(d) if d.eq_ignore_ascii_case("inline") => Disposition::Inline,
            Some(d) if d.eq_ignore_ascii_case("attachment") => Disposition::Attachment,
            _ if content_id.is_some() => Disposition::Inline,
            _ => Disposition::Attachment,
        };
        self.out.push(PartRecord {
            part: section.to_owned(),
            name: continued_name(part, message.raw_message())
                .as_deref()
                .or_else(|| part.attachment_name())
                .map(|n| clip(n, MAX_SHORT_TEXT, "an attachment's name", self.warnings)),
            content_type: declared,
            charset,
            disposition,
            content_id: content_id
                .map(|id| clip(&id, MAX_SHORT_TEXT, "a Content-ID", self.warnings)),
            size,
            location,
        });
    }
}

/// One message of the walk: its parts, which of them are listed, and the
/// bytes their offsets are in (and the layers that decode to them).
struct Level<'l, 'm> {
    message: &'l Message<'m>,
    listed: &'l [bool],
    prefix: &'l [Layer],
    buffer: &'l [u8],
}

/// `input` decoded whole with `encoding`.
fn decode_all(encoding: TransferEncoding, input: &[u8]) -> Vec<u8> {
    let mut decoder = Decoder::new(encoding);
    let mut out = Vec::with_capacity(input.len());
    decoder.feed(input, &mut out);
    decoder.finish(&mut out);
    out
}

/// A file name given in RFC 2231 continuations (`filename*0*=utf-8''%E5%B9`,
/// `filename*1*=%B4...`), decoded whole: the segments' bytes are joined
/// before the charset is applied, so a character split between two segments
/// survives (mail-parser decodes each segment alone). `None` when the name
/// the part uses (its Content-Disposition `filename`, else its Content-Type
/// `name`, as [`MimeHeaders::attachment_name`] chooses) is not continued, or
/// its charset is not UTF-8, ASCII or Latin-1: mail-parser's reading stands.
fn continued_name(part: &MessagePart<'_>, buffer: &[u8]) -> Option<String> {
    let in_disposition = part
        .content_disposition()
        .is_some_and(|cd| cd.attribute("filename").is_some());
    let (wanted, param) = if in_disposition {
        (HeaderName::ContentDisposition, "filename")
    } else {
        (HeaderName::ContentType, "name")
    };
    let header = part.headers.iter().find(|h| h.name == wanted)?;
    let raw = buffer.get(header.offset_start as usize..header.offset_end as usize)?;
    rfc2231_continuations(&String::from_utf8_lossy(raw), param)
}

/// The value of parameter `param` of a header value, when it is given in two
/// or more RFC 2231 segments (`param*0`, `param*1*`, ...), joined and decoded.
fn rfc2231_continuations(value: &str, param: &str) -> Option<String> {
    let mut segments: Vec<(u32, bool, String)> = Vec::new();
    for item in split_parameters(value) {
        let Some((key, text)) = item.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let Some(rest) = key
            .get(..param.len() + 1)
            .filter(|head| head.eq_ignore_ascii_case(&format!("{param}*")))
            .map(|_| &key[param.len() + 1..])
        else {
            continue;
        };
        let (index, encoded) = match rest.strip_suffix('*') {
            Some(index) => (index, true),
            None => (rest, false),
        };
        let Ok(index) = index.parse::<u32>() else {
            continue;
        };
        let text = text.trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        segments.push((index, encoded, text.to_owned()));
    }
    if segments.len() < 2 {
        return None;
    }
    segments.sort_by_key(|(index, _, _)| *index);
    if segments
        .iter()
        .enumerate()
        .any(|(i, (index, _, _))| *index as usize != i)
    {
        return None;
    }
    let mut charset = None;
    let mut bytes = Vec::new();
    for (index, encoded, text) in &segments {
        let mut text = text.as_str();
        if *index == 0 && *encoded {
            let mut pieces = text.splitn(3, '\'');
            let (Some(set), Some(_language), Some(rest)) =
                (pieces.next(), pieces.next(), pieces.next())
            else {
                return None;
            };
            charset = Some(set.to_ascii_lowercase());
            text = rest;
        }
        if *encoded {
            bytes.extend(percent_decoded(text));
        } else {
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    match charset.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "") => {
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Some("iso-8859-1" | "latin1" | "latin-1") => {
            Some(bytes.iter().map(|&b| char::from(b)).collect())
        }
        Some(_) => None,
    }
}

/// A header value's `;`-separated items, a quoted string's `;` kept.
fn split_parameters(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
}

/// `%XX` decoded; anything else as it is.
fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// The decoded bytes of the part at `location` in `raw`.
pub(crate) fn decoded(raw: &[u8], location: &[Layer]) -> Vec<u8> {
    let mut bytes = Vec::new();
    decode_in_blocks(raw, location, &mut |block| bytes.extend_from_slice(block));
    bytes
}

fn decode_in_blocks(raw: &[u8], location: &[Layer], sink: &mut dyn FnMut(&[u8])) {
    const BLOCK: usize = 256 * 1024;
    let Some(outer) = location.first() else {
        return;
    };
    let len = raw.len() as u64;
    let (start, end) = (outer.start.min(len), outer.end.min(len));
    let mut pipeline = Pipeline::new(location);
    let mut out = Vec::new();
    let mut offset = start;
    for block in raw[start as usize..end as usize].chunks(BLOCK) {
        pipeline.feed(offset, block, &mut out);
        offset += block.len() as u64;
        sink(&out);
        out.clear();
        if pipeline.done() {
            break;
        }
    }
    pipeline.finish(&mut out);
    sink(&out);
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
