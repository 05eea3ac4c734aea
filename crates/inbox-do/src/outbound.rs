//! Building an outbound message (with mail-builder), its attachments
//! included, and the HTTP relay's request and answer.

use crate::ports::{HttpAnswer, HttpCall};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
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
    /// The files attached, in this order (inline ones are shown in the HTML).
    pub(crate) attachments: &'a [OutAttachment<'a>],
}

/// A file to attach, already checked by the router (safe file name, valid
/// media type, valid Content-ID).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutAttachment<'a> {
    pub(crate) filename: &'a str,
    /// `type/subtype`, lowercase (the router defaults it to
    /// application/octet-stream).
    pub(crate) content_type: &'a str,
    /// Without angle brackets.
    pub(crate) content_id: Option<&'a str>,
    /// `inline` (shown in the HTML, referenced by `cid:`) or not
    /// (`attachment`).
    pub(crate) inline: bool,
    pub(crate) content: &'a [u8],
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
    // A boundary must not occur in the bodies; a collision with these is
    // astronomically unlikely, but a hostile body could be written to contain
    // one, so look and move on if it does. The attachments need no look:
    // their base64 has `=` only as padding at a line's end, so it never
    // contains the `=_` every boundary starts with.
    // A forwarded message sent as it is (see `unencoded_message`) is
    // looked at too.
    let mut boundaries = Boundaries::new(&digest[32..56]);
    let mut salt = 0u32;
    let messages: Vec<&[u8]> = draft
        .attachments
        .iter()
        .filter(|a| unencoded_message(a).is_some())
        .map(|a| a.content)
        .collect();
    while [draft.text, draft.html]
        .into_iter()
        .flatten()
        .any(|body| boundaries.all().iter().any(|b| body.contains(b)))
        || messages
            .iter()
            .any(|m| boundaries.all().iter().any(|b| contains(m, b.as_bytes())))
    {
        salt += 1;
        boundaries = Boundaries::new(&sha256_hex(format!("{digest}{salt}").as_bytes())[..24]);
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
    message
        .body(body(draft, &boundaries))
        .write_to(out)
        .map_err(|e| format!("The message could not be built: {e}"))?;
    Ok(message_id)
}

/// The boundaries of a message's multiparts. They differ right after
/// `=_inboxkit_` (a letter where the alternative's has a hex digit), so none
/// is a prefix of another and no parser can mistake one for another.
struct Boundaries {
    alternative: String,
    related: String,
    mixed: String,
}

impl Boundaries {
    fn new(hex: &str) -> Self {
        Self {
            alternative: format!("=_inboxkit_{hex}"),
            related: format!("=_inboxkit_related_{hex}"),
            mixed: format!("=_inboxkit_mixed_{hex}"),
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.alternative, &self.related, &self.mixed]
    }
}

/// The message's body, shaped as Gmail and Outlook write one:
/// `mixed[related[alternative[text, html], inline…], attachment…]`, each
/// layer only when it has something to hold. The inline parts belong to the
/// HTML that shows them, so the related wraps the alternative (or the lone
/// HTML part) as its root; a message without HTML has nothing to show them
/// in, so there they travel in the mixed like the others, still marked
/// inline.
fn body<'x>(draft: &Draft<'x>, boundaries: &Boundaries) -> MimePart<'x> {
    let text_part = |text: &'x str| MimePart::new("text/plain", BodyPart::Text(text.into()));
    let html_part = |html: &'x str| MimePart::new("text/html", BodyPart::Text(html.into()));
    let content = match (draft.text, draft.html) {
        (Some(text), Some(html)) => MimePart::new(
            ContentType::new("multipart/alternative")
                .attribute("boundary", boundaries.alternative.clone()),
            vec![text_part(text), html_part(html)],
        ),
        (Some(text), None) => text_part(text),
        (None, Some(html)) => html_part(html),
        // Validation requires a body; an empty text part is the honest fallback.
        (None, None) => text_part(""),
    };
    let shows_inline = draft.html.is_some();
    let inline = || draft.attachments.iter().filter(|a| a.inline);
    let content = if shows_inline && inline().next().is_some() {
        // RFC 2387 names the root's type in the related's `type` parameter.
        let root = if draft.text.is_some() {
            "multipart/alternative"
        } else {
            "text/html"
        };
        let mut parts = vec![content];
        parts.extend(inline().map(attachment_part));
        MimePart::new(
            ContentType::new("multipart/related")
                .attribute("type", root)
                .attribute("boundary", boundaries.related.clone()),
            parts,
        )
    } else {
        content
    };
    let mut loose = draft
        .attachments
        .iter()
        .filter(|a| !(a.inline && shows_inline))
        .peekable();
    if loose.peek().is_none() {
        return content;
    }
    let mut parts = vec![content];
    parts.extend(loose.map(attachment_part));
    MimePart::new(
        ContentType::new("multipart/mixed").attribute("boundary", boundaries.mixed.clone()),
        parts,
    )
}

/// One attachment's part. Its headers are written here, not by
/// mail-builder's `MimePart::attachment`/`inline`: those write no `name` (and
/// mail-builder would write a non-ASCII one only in RFC 2231, which Outlook
/// does not read there), no file name on an inline part, and a quoted file
/// name of up to 78 characters on one line, past the 78 a line should keep
/// to. Nor is its transfer encoding left to mail-builder, which would send a
/// `text/*` file as 7bit or quoted-printable with its line ends rewritten to
/// CRLF, changing its bytes: every file goes as base64, byte for byte.
fn attachment_part<'x>(attachment: &OutAttachment<'x>) -> MimePart<'x> {
    let disposition = if attachment.inline {
        "inline"
    } else {
        "attachment"
    };
    let name = attachment.filename;
    let encoding = unencoded_message(attachment);
    let body = match encoding {
        Some(_) => attachment.content.to_vec(),
        None => base64_lines(attachment.content),
    };
    let part = MimePart::raw(BodyPart::Binary(body.into()))
        .header(
            "Content-Type",
            Raw::new(header_value(
                "Content-Type",
                attachment.content_type,
                &[rfc2047_parameter("name", name)],
            )),
        )
        .header(
            "Content-Disposition",
            Raw::new(header_value(
                "Content-Disposition",
                disposition,
                &rfc2231_parameters("filename", name),
            )),
        );
    let part = match attachment.content_id {
        Some(id) => part.cid(id),
        None => part,
    };
    // Given the encoding, mail-builder writes the body as it is.
    part.transfer_encoding(encoding.unwrap_or("base64"))
}

/// The encoding a forwarded message (`message/rfc822`) goes as when it can
/// go as it is, as RFC 2046 wants (7bit, never base64): ASCII, every line
/// break a CRLF, no line over 998 bytes, no NUL. `None` otherwise, and for
/// any other file: base64.
fn unencoded_message(attachment: &OutAttachment<'_>) -> Option<&'static str> {
    if attachment.content_type != "message/rfc822" || attachment.content.is_empty() {
        return None;
    }
    let content = attachment.content;
    let mut line = 0usize;
    for (i, &byte) in content.iter().enumerate() {
        match byte {
            0 => return None,
            b'\r' if content.get(i + 1) != Some(&b'\n') => return None,
            b'\n' if i == 0 || content[i - 1] != b'\r' => return None,
            b'\n' => line = 0,
            b'\r' => {}
            _ => {
                line += 1;
                if line > 998 {
                    return None;
                }
            }
        }
    }
    // 8-bit octets would make every enclosing multipart 8bit too, and a
    // relay without 8BITMIME could not downgrade them: only ASCII goes as
    // it is.
    content.is_ascii().then_some("7bit")
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A line's length a header keeps to (RFC 5322 section 2.1.1).
const LINE: usize = 78;

/// The longest word [`header_value`] is given: a line holds it after the
/// fold's space, with room for a `;` after it.
const WORD: usize = LINE - 2;

/// One parameter's words: written separated by spaces, and folded between
/// them when a line would grow too long.
type Parameter = Vec<String>;

/// A header's value: `head`, then each parameter after a `;`, folded before
/// any word that would take its line past [`LINE`] characters (mail-builder
/// keeps these folds and, every line fitting, adds none of its own).
fn header_value(name: &str, head: &str, parameters: &[Parameter]) -> String {
    let mut value = head.to_owned();
    let mut column = name.len() + 2 + head.len();
    for words in parameters {
        value.push(';');
        column += 1;
        for word in words {
            // Room for the `;` that may follow.
            if column + 1 + word.len() + 1 > LINE {
                value.push_str("\r\n ");
                column = 1;
            } else {
                value.push(' ');
                column += 1;
            }
            value.push_str(word);
            column += word.len();
        }
    }
    value
}

/// Whether `value` can go as it is in a quoted string, read the same by
/// every client: printable ASCII, without the `"` and `\` that would need
/// escaping.
fn is_plain(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// `key="value"`, or, when `value` is not plain or too long for a line, the
/// value as RFC 2047 encoded words inside the quotes. RFC 2047 does not
/// allow encoded words in a quoted string, but this is the `name` Outlook
/// reads (it does not read RFC 2231 there), so Gmail and Thunderbird write
/// it too; the standard RFC 2231 form goes in the Content-Disposition's
/// `filename`, which clients (and mail-parser) read first.
fn rfc2047_parameter(key: &str, value: &str) -> Parameter {
    let quoted = format!("{key}=\"{value}\"");
    if is_plain(value) && quoted.len() <= WORD {
        return vec![quoted];
    }
    // 36 bytes are 48 base64 characters: an encoded word of 60, under
    // RFC 2047's 75, and each word whole characters, as it requires.
    let pieces = split_within(value, |_| 36, char::len_utf8);
    let last = pieces.len().saturating_sub(1);
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut word = if i == 0 {
                format!("{key}=\"")
            } else {
                String::new()
            };
            word.push_str("=?utf-8?B?");
            base64_push(piece.as_bytes(), &mut word);
            word.push_str("?=");
            if i == last {
                word.push('"');
            }
            word
        })
        .collect()
}

/// `key="value"` when `value` is plain and fits a line, otherwise RFC 2231's
/// percent-encoded UTF-8 (`key*=utf-8''…`), and when that does not fit
/// either, RFC 2231 continuations (`key*0*=utf-8''…; key*1*=…`), each
/// section whole characters (readers decode each section by itself).
fn rfc2231_parameters(key: &str, value: &str) -> Vec<Parameter> {
    let quoted = format!("{key}=\"{value}\"");
    if is_plain(value) && quoted.len() <= WORD {
        return vec![vec![quoted]];
    }
    let whole = format!("{key}*=utf-8''{}", percent_encoded(value));
    if whole.len() <= WORD {
        return vec![vec![whole]];
    }
    let prefix = |section: usize| {
        let charset = if section == 0 { "utf-8''" } else { "" };
        format!("{key}*{section}*={charset}")
    };
    split_within(
        value,
        |section| WORD.saturating_sub(prefix(section).len()),
        |c| {
            let mut buffer = [0; 4];
            c.encode_utf8(&mut buffer).bytes().map(percent_len).sum()
        },
    )
    .into_iter()
    .enumerate()
    .map(|(section, piece)| vec![prefix(section) + &percent_encoded(piece)])
    .collect()
}

/// Splits `text` at character boundaries into pieces whose summed `cost`
/// stays within `budget(piece index)`; a piece holds at least one character.
fn split_within(
    text: &str,
    budget: impl Fn(usize) -> usize,
    cost: impl Fn(char) -> usize,
) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (at, c) in text.char_indices() {
        let c = cost(c);
        if at > start && used + c > budget(pieces.len()) {
            pieces.push(&text[start..at]);
            start = at;
            used = 0;
        }
        used += c;
    }
    if start < text.len() || pieces.is_empty() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Whether RFC 2231 needs `byte` percent-encoded: all but letters, digits
/// and `-._~` (a subset of its attribute-char, easy to read).
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn percent_len(byte: u8) -> usize {
    if is_unreserved(byte) { 1 } else { 3 }
}

fn percent_encoded(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
    }
    out
}

/// The length of `n` bytes in base64: `4 * ceil(n / 3)`.
const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Appends the base64 (RFC 4648, standard alphabet, padded) of `bytes`.
fn base64_push(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(base64_len(bytes.len()));
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
}

/// `bytes` in base64, as MIME carries it: lines of 76 characters (57 bytes
/// each, RFC 2045 section 6.8), CRLF between them.
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let mut out = String::with_capacity(base64_len(bytes.len()) + bytes.len() / 57 * 2);
    for (i, line) in bytes.chunks(57).enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        base64_push(line, &mut out);
    }
    out.into_bytes()
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<ResendAttachment<'a>>,
}

/// An attachment as Resend takes it: the content in base64 without line
/// breaks. Resend makes an attachment with a `content_id` inline.
#[derive(Serialize)]
struct ResendAttachment<'a> {
    filename: &'a str,
    content: String,
    content_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_id: Option<&'a str>,
}

/// The largest email Resend takes: "Emails can be no larger than 40MB
/// (including attachments after Base64 encoding)"
/// (<https://resend.com/docs/dashboard/emails/attachments>).
pub(crate) const RESEND_MAX_EMAIL_BYTES: usize = 40 * 1000 * 1000;

/// Resend's Content-IDs are "less than 128 characters"
/// (<https://resend.com/docs/dashboard/emails/embed-inline-images>).
const RESEND_MAX_CONTENT_ID_CHARS: usize = 127;

/// The bytes `attachments` take in the relay's request, after base64.
pub(crate) fn relay_attachments_bytes(attachments: &[OutAttachment<'_>]) -> usize {
    attachments
        .iter()
        .map(|a| base64_len(a.content.len()))
        .sum()
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
/// request could not be written (the send then fails): also when the email is
/// larger than [`RESEND_MAX_EMAIL_BYTES`], or an inline attachment's
/// Content-ID longer than Resend takes, which it would refuse anyway.
pub(crate) fn relay_call(
    draft: &Draft<'_>,
    recipients: &RelayRecipients<'_>,
    message_id: &str,
    idempotency_key: &str,
    url: &str,
    api_key: &str,
) -> Result<HttpCall, String> {
    // Checked before anything is encoded, so an email too large costs nothing.
    let size = [draft.text, draft.html]
        .into_iter()
        .flatten()
        .map(str::len)
        .sum::<usize>()
        + relay_attachments_bytes(draft.attachments);
    if size > RESEND_MAX_EMAIL_BYTES {
        return Err(format!(
            "The message takes {size} bytes with its attachments in base64; the relay takes at most {RESEND_MAX_EMAIL_BYTES}."
        ));
    }
    let mut attachments = Vec::with_capacity(draft.attachments.len());
    for attachment in draft.attachments {
        // Only an inline attachment gets its Content-ID: given one, Resend
        // makes any attachment inline.
        let content_id = attachment.content_id.filter(|_| attachment.inline);
        if let Some(id) = content_id
            && id.chars().count() > RESEND_MAX_CONTENT_ID_CHARS
        {
            return Err(format!(
                "The relay takes Content-IDs of at most {RESEND_MAX_CONTENT_ID_CHARS} characters; {:?} has more.",
                attachment.filename
            ));
        }
        let mut content = String::new();
        base64_push(attachment.content, &mut content);
        attachments.push(ResendAttachment {
            filename: attachment.filename,
            content,
            content_type: attachment.content_type,
            content_id,
        });
    }
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
        attachments,
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
            attachments: &[],
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
        for absent in ["cc", "bcc", "reply_to", "attachments"] {
            assert!(body.get(absent).is_none(), "{body}");
        }
        assert!(body["headers"].get("In-Reply-To").is_none(), "{body}");
    }

    /// `len` bytes of a file that starts with `head`: fixed, and every byte
    /// value likely, so the base64 is not a run of one letter.
    fn file(head: &[u8], len: usize) -> Vec<u8> {
        let mut bytes = head.to_vec();
        bytes.extend(
            (0u8..=255)
                .cycle()
                .map(|b| b.wrapping_mul(37))
                .take(len - head.len()),
        );
        bytes
    }

    /// The MIME tree of `parsed` from part `id`: each part by its subtype,
    /// a multipart's parts in brackets.
    fn shape(parsed: &mail_parser::Message<'_>, id: usize) -> String {
        use mail_parser::{MimeHeaders as _, PartType};
        let part = &parsed.parts[id];
        let subtype = part
            .content_type()
            .and_then(|ct| ct.subtype())
            .unwrap_or("?")
            .to_owned();
        match &part.body {
            PartType::Multipart(ids) => format!(
                "{subtype}[{}]",
                ids.iter()
                    .map(|&id| shape(parsed, id as usize))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => subtype,
        }
    }

    /// Reads `built` back as a mail client would and checks that it carries
    /// `draft` unchanged: the bodies, and each file with its bytes, name,
    /// type, Content-ID and disposition; and that every line is a proper
    /// one. Returns the tree's shape.
    fn read_back(built: &Built, draft: &Draft<'_>) -> String {
        use mail_parser::{Encoding, MimeHeaders as _};
        let text = String::from_utf8_lossy(&built.raw);
        for line in text.split("\r\n") {
            assert!(line.len() <= 78, "a line of {}: {line:?}", line.len());
            assert!(!line.contains(['\r', '\n']), "a bare CR or LF: {line:?}");
        }
        let parsed = mail_parser::MessageParser::default()
            .parse(&built.raw)
            .expect("a message");
        if let Some(body) = draft.text {
            assert_eq!(parsed.body_text(0).as_deref(), Some(body));
        }
        if let Some(body) = draft.html {
            assert_eq!(parsed.body_html(0).as_deref(), Some(body));
        }
        for sent in draft.attachments {
            let named = parsed
                .parts
                .iter()
                .filter(|p| p.attachment_name() == Some(sent.filename))
                .collect::<Vec<_>>();
            let [part] = named[..] else {
                panic!("{} parts named {:?}:\n{text}", named.len(), sent.filename);
            };
            assert!(
                part.contents() == sent.content,
                "{:?}'s bytes",
                sent.filename
            );
            assert!(matches!(part.encoding, Encoding::Base64));
            let content_type = part.content_type().expect("a Content-Type");
            let media_type = format!(
                "{}/{}",
                content_type.ctype(),
                content_type.subtype().unwrap_or_default()
            );
            assert_eq!(media_type, sent.content_type);
            // The name Outlook reads says the same as the file name.
            assert_eq!(content_type.attribute("name"), Some(sent.filename));
            assert_eq!(part.content_id(), sent.content_id);
            let disposition = part.content_disposition().expect("a Content-Disposition");
            let expected = if sent.inline { "inline" } else { "attachment" };
            assert_eq!(disposition.ctype(), expected);
        }
        shape(&parsed, 0)
    }

    /// The boundaries a built message declares, in order.
    fn boundaries_of(built: &Built) -> Vec<String> {
        String::from_utf8_lossy(&built.raw)
            .split("boundary=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    }

    const TEXT: &str = "Hello,\r\nthe report is attached.\r\n";
    const HTML: &str = "<p>Hello, the report is attached.</p><img src=\"cid:logo@agents.test\">";

    fn report_pdf() -> Vec<u8> {
        file(b"%PDF-1.7\n", 100)
    }

    fn logo_png() -> Vec<u8> {
        file(b"\x89PNG\r\n\x1a\n", 100)
    }

    fn pdf(content: &[u8]) -> OutAttachment<'_> {
        OutAttachment {
            filename: "report.pdf",
            content_type: "application/pdf",
            content_id: None,
            inline: false,
            content,
        }
    }

    fn png(content: &[u8]) -> OutAttachment<'_> {
        OutAttachment {
            filename: "logo.png",
            content_type: "image/png",
            content_id: Some("logo@agents.test"),
            inline: true,
            content,
        }
    }

    #[test]
    fn a_forwarded_message_goes_as_it_is_when_it_can_and_in_base64_when_not() {
        use mail_parser::{MimeHeaders as _, PartType};
        let inner = b"From: a@example.com\r\nSubject: inner\r\n\r\nHello from inside.\r\n".to_vec();
        let grusse = "From: a@example.com\r\nSubject: Gr\u{fc}\u{df}e\r\n\r\nGr\u{fc}\u{df}e\r\n"
            .as_bytes()
            .to_vec();
        let bare_lf = b"From: a@example.com\nSubject: lf\n\nbare LF\n".to_vec();
        let long_line = [b"From: a@example.com\r\n\r\n".to_vec(), vec![b'x'; 1200]].concat();
        for (content, encoding) in [
            (&inner, "7bit"),
            (&grusse, "base64"),
            (&bare_lf, "base64"),
            (&long_line, "base64"),
        ] {
            let files = [OutAttachment {
                filename: "forwarded.eml",
                content_type: "message/rfc822",
                content_id: None,
                inline: false,
                content,
            }];
            let message = Draft {
                attachments: &files,
                ..draft(Some(TEXT), None)
            };
            let built = make(&message, "u");
            let parsed = mail_parser::MessageParser::default()
                .parse(&built.raw)
                .expect("a message");
            let part = parsed
                .parts
                .iter()
                .find(|p| p.attachment_name() == Some("forwarded.eml"))
                .expect("the forwarded part");
            assert_eq!(
                part.content_transfer_encoding().unwrap_or("7bit"),
                encoding,
                "{}",
                String::from_utf8_lossy(content)
            );
            let text = String::from_utf8_lossy(&built.raw);
            let start = text.find("forwarded.eml").expect("named");
            if encoding != "base64" {
                // Sent as it is: the inner message is read as a message,
                // and its bytes are the part's, exactly.
                assert!(matches!(part.body, PartType::Message(_)));
                let body = &built.raw[part.offset_body as usize..part.offset_end as usize];
                assert_eq!(body, content.as_slice(), "{}", &text[start..]);
            }
        }
    }

    #[test]
    fn a_file_and_an_inline_image_are_mixed_around_related_around_alternative() {
        let (report, logo) = (report_pdf(), logo_png());
        let files = [pdf(&report), png(&logo)];
        let message = Draft {
            attachments: &files,
            ..draft(Some(TEXT), Some(HTML))
        };
        let built = make(&message, "1774526400000:41");
        assert_eq!(make(&message, "1774526400000:41").raw, built.raw);
        assert_eq!(
            read_back(&built, &message),
            "mixed[related[alternative[plain, html], png], pdf]"
        );
        let boundaries = boundaries_of(&built);
        assert_eq!(boundaries.len(), 3);
        assert!(
            boundaries.iter().all(|b| boundaries
                .iter()
                .filter(|o| o.starts_with(b.as_str()))
                .count()
                == 1),
            "{boundaries:?}"
        );
        insta::assert_snapshot!(String::from_utf8_lossy(&built.raw));
    }

    #[test]
    fn a_long_non_ascii_file_name_goes_in_rfc_2231_continuations() {
        let (notes, short) = (file(b"", 100), file(b"", 3));
        let long_name =
            "Grüße aus Köln – Protokoll der Jahresversammlung 2026 (endgültige Fassung).pdf";
        let files = [
            OutAttachment {
                filename: long_name,
                ..pdf(&notes)
            },
            OutAttachment {
                filename: "Grüße.pdf",
                ..pdf(&short)
            },
        ];
        let message = Draft {
            attachments: &files,
            ..draft(Some(TEXT), None)
        };
        let built = make(&message, "1774526400000:41");
        assert_eq!(read_back(&built, &message), "mixed[plain, pdf, pdf]");
        let text = String::from_utf8_lossy(&built.raw);
        assert!(
            text.contains(" filename*0*=utf-8''Gr%C3%BC%C3%9Fe%20aus%20K%C3%B6ln"),
            "{text}"
        );
        assert!(text.contains(" filename*1*="), "{text}");
        assert!(
            text.contains(" filename*=utf-8''Gr%C3%BC%C3%9Fe.pdf\r\n"),
            "{text}"
        );
        assert!(text.contains(" name=\"=?utf-8?B?"), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn an_html_only_message_relates_its_inline_image_to_the_html() {
        let logo = logo_png();
        let files = [png(&logo)];
        let message = Draft {
            attachments: &files,
            ..draft(None, Some(HTML))
        };
        let built = make(&message, "1774526400000:41");
        assert_eq!(read_back(&built, &message), "related[html, png]");
        let text = String::from_utf8_lossy(&built.raw);
        assert!(
            text.contains("multipart/related; type=\"text/html\";"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn without_html_an_inline_image_travels_in_the_mixed_still_inline() {
        let (report, logo) = (report_pdf(), logo_png());
        let files = [png(&logo), pdf(&report)];
        let message = Draft {
            attachments: &files,
            ..draft(Some(TEXT), None)
        };
        assert_eq!(
            read_back(&make(&message, "u"), &message),
            "mixed[plain, png, pdf]"
        );
        // Only files to attach: no related, the HTML in the alternative.
        let files = [pdf(&report)];
        let message = Draft {
            attachments: &files,
            ..draft(Some(TEXT), Some("<p>Hello</p>"))
        };
        assert_eq!(
            read_back(&make(&message, "u"), &message),
            "mixed[alternative[plain, html], pdf]"
        );
        // Only inline images: no mixed.
        let files = [png(&logo)];
        let message = Draft {
            attachments: &files,
            ..draft(Some(TEXT), Some(HTML))
        };
        assert_eq!(
            read_back(&make(&message, "u"), &message),
            "related[alternative[plain, html], png]"
        );
    }

    #[test]
    fn a_text_file_goes_in_base64_with_its_line_ends_as_they_were() {
        // LF line ends, which a 7bit part would have turned into CRLF.
        let csv = "a,b\nGrüße,2\n".as_bytes();
        let files = [OutAttachment {
            filename: "table.csv",
            content_type: "text/csv",
            ..pdf(csv)
        }];
        let message = Draft {
            attachments: &files,
            ..draft(Some(TEXT), None)
        };
        let built = make(&message, "u");
        assert_eq!(read_back(&built, &message), "mixed[plain, csv]");
        let mut encoded = String::from("Content-Transfer-Encoding: base64\r\n\r\n");
        base64_push(csv, &mut encoded);
        assert!(String::from_utf8_lossy(&built.raw).contains(&format!("{encoded}\r\n--")));
    }

    #[test]
    fn no_boundary_of_a_message_with_files_occurs_in_a_body() {
        let (report, logo) = (report_pdf(), logo_png());
        let files = [pdf(&report), png(&logo)];
        let message = Draft {
            attachments: &files,
            ..draft(Some(TEXT), Some(HTML))
        };
        let first = boundaries_of(&make(&message, "u"));
        for forged in &first {
            let hostile = format!("{HTML}\r\n--{forged}\r\nContent-Type: text/html\r\n\r\nforged");
            let attacked = Draft {
                html: Some(&hostile),
                ..message.clone()
            };
            let built = make(&attacked, "u");
            let moved = boundaries_of(&built);
            assert!(
                moved.iter().all(|b| !hostile.contains(b.as_str())),
                "{moved:?}"
            );
            read_back(&built, &attacked);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_file_comes_back_byte_for_byte_with_its_name(
            content in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            filename in "[A-Za-z0-9 ._()'+,-äöüÄÖÜßéèñçøåłžčœæ€漢字テスト]{1,120}",
            inline in proptest::prelude::any::<bool>(),
        ) {
            let files = [OutAttachment {
                filename: &filename,
                content_type: "application/octet-stream",
                content_id: Some("part1@agents.test"),
                inline,
                content: &content,
            }];
            let message = Draft { attachments: &files, ..draft(Some(TEXT), Some(HTML)) };
            read_back(&make(&message, "u"), &message);
            let mut ours = String::new();
            base64_push(&content, &mut ours);
            use base64::Engine as _;
            proptest::prop_assert_eq!(ours, base64::engine::general_purpose::STANDARD.encode(&content));
        }
    }

    #[test]
    fn the_http_relay_gets_each_file_in_base64_and_the_inline_ones_by_content_id() {
        use base64::Engine as _;
        let (report, logo) = (report_pdf(), logo_png());
        let files = [
            // A Content-ID on a file not inline: Resend would make it inline.
            OutAttachment {
                content_id: Some("report@agents.test"),
                ..pdf(&report)
            },
            png(&logo),
        ];
        let message = Draft {
            attachments: &files,
            ..draft(Some(TEXT), Some(HTML))
        };
        let recipients = RelayRecipients {
            to: vec!["bob@example.com"],
            ..RelayRecipients::default()
        };
        let call = |message: &Draft<'_>| {
            relay_call(
                message,
                &recipients,
                "m@agents.test",
                "m@agents.test",
                "https://r",
                "k",
            )
        };
        let sent = call(&message).expect("a call");
        let body: serde_json::Value = serde_json::from_slice(&sent.body).expect("JSON");
        let attachments = body["attachments"].as_array().expect("attachments");
        assert_eq!(attachments.len(), 2, "{body}");
        for (json, file) in attachments.iter().zip(&files) {
            let content = json["content"].as_str().expect("content");
            assert!(!content.contains(['\r', '\n']), "{content}");
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(content)
                .expect("base64");
            assert_eq!(decoded, file.content);
            assert_eq!(json["filename"], file.filename);
            assert_eq!(json["content_type"], file.content_type);
        }
        assert!(attachments[0].get("content_id").is_none(), "{body}");
        assert_eq!(attachments[1]["content_id"], "logo@agents.test");
        assert_eq!(
            relay_attachments_bytes(&files),
            attachments
                .iter()
                .map(|a| a["content"].as_str().map_or(0, str::len))
                .sum::<usize>()
        );

        // What Resend would refuse is not sent.
        let id = "x".repeat(RESEND_MAX_CONTENT_ID_CHARS);
        let long_id = format!("{id}y");
        for (id, fits) in [(&id, true), (&long_id, false)] {
            let files = [OutAttachment {
                content_id: Some(id.as_str()),
                ..png(&logo)
            }];
            let message = Draft {
                attachments: &files,
                ..draft(Some(TEXT), Some(HTML))
            };
            assert_eq!(call(&message).is_ok(), fits, "{} characters", id.len());
        }
        let big = vec![0u8; RESEND_MAX_EMAIL_BYTES / 4 * 3 / 2];
        let files = [pdf(&big), pdf(&big)];
        let at_most = Draft {
            attachments: &files,
            ..draft(None, None)
        };
        assert_eq!(relay_attachments_bytes(&files), RESEND_MAX_EMAIL_BYTES);
        assert!(call(&at_most).is_ok());
        let over = Draft {
            text: Some("x"),
            ..at_most
        };
        let refused = call(&over).expect_err("too large");
        assert!(refused.contains("40000000"), "{refused}");
    }

    #[test]
    fn base64_takes_four_characters_for_every_three_bytes_begun() {
        let sizes = [0, 1, 2, 3, 4, 57, 58].map(base64_len);
        assert_eq!(sizes, [0, 4, 4, 4, 8, 76, 80]);
        assert_eq!(
            base64_lines(&[0; 58]),
            [&b"A".repeat(76)[..], b"\r\nAA=="].concat()
        );
    }
}
