//! Composing a reply, a reply-all and a forward from the original message:
//! the subject, the recipients, the threading ids and the quoted bodies.
//!
//! Pure functions of their arguments (no clock, no I/O), written for bodies of
//! up to a mebibyte: every one is linear in its input and none panics, on any
//! input. The send path builds the message from what they return.

use protocol::Timestamp;
use protocol::outbound::{MAX_SUBJECT_CHARS, parse_address};
use std::borrow::Cow;
use std::collections::HashSet;

// ---------------------------------------------------------------------------
// Subjects

/// Reply prefixes, lowercased, without their colon. Full-width forms
/// (`Ｒｅ：`) are folded to these before comparing.
const REPLY_PREFIXES: &[&str] = &[
    "re",   // Latin, and what every client writes
    "aw",   // German (Antwort)
    "sv",   // Swedish, Danish, Norwegian (Svar)
    "vs",   // Finnish (Vastaus)
    "antw", // Dutch (Antwoord)
    "rif",  // Italian (Riferimento)
    "r",    // Italian (Outlook's R:)
    "réf",  // French
    "ref",  // French, without the accent
    "res",  // Portuguese (Resposta)
    "odp",  // Polish (Odpowiedź)
    "ynt",  // Turkish (Yanıt)
    "απ",   // Greek
    "σχετ", // Greek
    "回复", // Chinese, simplified
    "答复", // Chinese, simplified
    "回覆", // Chinese, traditional
    "答覆", // Chinese, traditional
    "返信", // Japanese
    "회신", // Korean
    "답장", // Korean
];

/// Forward prefixes, as [`REPLY_PREFIXES`].
const FORWARD_PREFIXES: &[&str] = &[
    "fwd",    // what every client writes
    "fw",     // Outlook
    "tr",     // French (Transféré)
    "wg",     // German (Weitergeleitet)
    "rv",     // Spanish (Reenviado)
    "enc",    // Portuguese (Encaminhado)
    "doorst", // Dutch (Doorgestuurd)
    "vb",     // Swedish (Vidarebefordrat)
    "vl",     // Finnish (Välitetty)
    "pd",     // Polish (Przekazane dalej)
    "转发",   // Chinese, simplified
    "轉寄",   // Chinese, traditional
    "轉發",   // Chinese, traditional
    "転送",   // Japanese
    "전달",   // Korean
];

/// How far into the subject a prefix's colon may be, in characters: the
/// longest prefix with a counter (`doorst[12] :`) fits, and the bound keeps
/// stripping linear.
const PREFIX_LOOKAHEAD: usize = 16;

/// The subject of a reply: `Re: <subject>`, never doubled. Any number of
/// leading reply and forward prefixes is removed first (`Re:`, `RE:`,
/// `Re[2]:`, `Re(2):`, `AW:`, `SV:`, `VS:`, `Antw:`, `RIF:`, `R:`, `Réf:`,
/// `TR:`, `WG:`, `Fwd:`, `FW:`, `RV:`, `Odp:`, `回复：`, `返信:`, `Ｒｅ：` and
/// the others in [`REPLY_PREFIXES`] and [`FORWARD_PREFIXES`], in any case,
/// with an ASCII or full-width colon, a space before the colon allowed). A
/// prefix is only such a token followed by its colon: `Reply needed`,
/// `Research: results` and `AWS: invoice` are kept whole.
///
/// Whitespace runs (CR and LF included) become one space, other control
/// characters are dropped and the ends are trimmed, so the result always
/// passes the send path's subject check; it is cut to
/// [`MAX_SUBJECT_CHARS`]. No subject, or a blank one, gives `Re:`.
/// Idempotent: a reply to a reply has the same subject.
pub(crate) fn reply_subject(original: Option<&str>) -> String {
    let clean = one_line(original.unwrap_or(""));
    let mut rest = clean.as_str();
    while let Some(after) = strip_prefix(rest, &[REPLY_PREFIXES, FORWARD_PREFIXES]) {
        rest = after;
    }
    prefixed("Re:", rest)
}

/// The subject of a forward: `Fwd: <subject>`. Only leading forward prefixes
/// are removed (`Fwd: Fwd: x` and `FW: x` give `Fwd: x`); a reply prefix, and
/// everything after it, is kept, since it says what is being forwarded: `Re:
/// x` gives `Fwd: Re: x` and `Fwd: Re: x` stays as it is. Otherwise as
/// [`reply_subject`]: one clean line, at most [`MAX_SUBJECT_CHARS`], `Fwd:`
/// alone for no subject, idempotent.
pub(crate) fn forward_subject(original: Option<&str>) -> String {
    let clean = one_line(original.unwrap_or(""));
    let mut rest = clean.as_str();
    while let Some(after) = strip_prefix(rest, &[FORWARD_PREFIXES]) {
        rest = after;
    }
    prefixed("Fwd:", rest)
}

/// `text` on one line: whitespace runs made one space, other control
/// characters dropped, the ends trimmed.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
        } else if !c.is_control() {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// `rest` (one clean line, no leading space) without its first prefix, when
/// it starts with one of `lists`'s.
fn strip_prefix<'a>(rest: &'a str, lists: &[&[&str]]) -> Option<&'a str> {
    let (at, colon) = rest
        .char_indices()
        .take(PREFIX_LOOKAHEAD)
        .find(|&(_, c)| c == ':' || c == '：')?;
    let token = fold_token(rest.get(..at)?);
    let token = strip_counter(token.trim_end()).trim_end();
    if token.is_empty() || !lists.iter().any(|list| list.contains(&token)) {
        return None;
    }
    rest.get(at + colon.len_utf8()..).map(str::trim_start)
}

/// A prefix token folded for comparison: full-width ASCII (U+FF01–U+FF5E)
/// made ASCII, then lowercased.
fn fold_token(token: &str) -> String {
    token
        .chars()
        .map(|c| match u32::from(c) {
            code @ 0xFF01..=0xFF5E => char::from_u32(code - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// `re[2]` and `re(2)` without their counter.
fn strip_counter(token: &str) -> &str {
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = token.strip_suffix(close)
            && let Some((base, count)) = inner.rsplit_once(open)
            && !count.is_empty()
            && count.bytes().all(|b| b.is_ascii_digit())
        {
            return base;
        }
    }
    token
}

/// `prefix rest`, cut to [`MAX_SUBJECT_CHARS`]; `prefix` alone when `rest` is
/// empty.
fn prefixed(prefix: &str, rest: &str) -> String {
    if rest.is_empty() {
        return prefix.to_owned();
    }
    let room = MAX_SUBJECT_CHARS.saturating_sub(prefix.chars().count() + 1);
    let cut = rest
        .char_indices()
        .nth(room)
        .map_or(rest, |(at, _)| &rest[..at]);
    format!("{prefix} {}", cut.trim_end())
}

// ---------------------------------------------------------------------------
// Threading

/// At most this many ids in a reply's References: the thread's root and the
/// newest others.
pub(crate) const MAX_REFERENCES: usize = 20;
/// At most this many bytes in a reply's References, written `<id> <id>`.
pub(crate) const MAX_REFERENCES_BYTES: usize = 2_000;
/// A longer id is not one we repeat.
pub(crate) const MAX_ID_BYTES: usize = 250;

/// A reply's References (ids without angle brackets, oldest first): the
/// original's References and then its Message-ID (which is also the reply's
/// In-Reply-To), each once. Ids that could not be written back as they were
/// read (empty, longer than [`MAX_ID_BYTES`], or with whitespace, a control
/// character, `<` or `>`) are left out, never failing the reply. A long
/// chain keeps its first id, the thread's root, and the newest others, at
/// most [`MAX_REFERENCES`] ids and [`MAX_REFERENCES_BYTES`] bytes: RFC 5322
/// §3.6.4 says how References grows but sets no limit, and dropping ids from
/// the second on is what common clients (and Usenet's RFC 5537) do.
/// Folding the header's lines is the builder's business.
pub(crate) fn references_for_reply(
    original_references: &[String],
    original_message_id: Option<&str>,
) -> Vec<String> {
    let message_id = original_message_id.filter(|id| usable_id(id));
    let mut seen = HashSet::new();
    let chain: Vec<&str> = original_references
        .iter()
        .map(String::as_str)
        .filter(|id| usable_id(id) && Some(*id) != message_id && seen.insert(*id))
        .chain(message_id)
        .collect();
    let Some((root, others)) = chain.split_first() else {
        return Vec::new();
    };
    // `<root>`, then ` <id>` for each other kept, newest first.
    let mut budget = MAX_REFERENCES_BYTES.saturating_sub(root.len() + 2);
    let mut newest = Vec::new();
    for id in others.iter().rev() {
        let cost = id.len() + 3;
        if newest.len() + 1 >= MAX_REFERENCES || cost > budget {
            break;
        }
        budget -= cost;
        newest.push(*id);
    }
    std::iter::once(*root)
        .chain(newest.into_iter().rev())
        .map(str::to_owned)
        .collect()
}

/// Whether `id` can be written back inside `<…>` as it is.
fn usable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

// ---------------------------------------------------------------------------
// Recipients

/// The addresses of the message replied to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OriginalAddrs<'a> {
    /// Its From.
    pub(crate) from: &'a str,
    /// Its Reply-To, if any.
    pub(crate) reply_to: &'a [String],
    /// Its To.
    pub(crate) to: &'a [String],
    /// Its Cc.
    pub(crate) cc: &'a [String],
}

/// Whom a reply goes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Recipients {
    /// The To addresses.
    pub(crate) to: Vec<String>,
    /// The Cc addresses.
    pub(crate) cc: Vec<String>,
}

impl Recipients {
    /// Nobody to reply to: the caller answers 400 rather than send.
    pub(crate) fn is_empty(&self) -> bool {
        self.to.is_empty() && self.cc.is_empty()
    }
}

/// Whom a reply (or, with `reply_all`, a reply-all) to `original` goes to,
/// from the inbox `own_address`, as Gmail and Thunderbird do it:
///
/// - To is the original's Reply-To when it has one, else its From; reply-all
///   adds the original's To, and its Cc becomes the Cc.
/// - A message the inbox sent itself (its From is the inbox) is answered to
///   its To; reply-all adds its Cc as the Cc.
///
/// The inbox itself is never a recipient: compared case-insensitively and
/// with any `+tag` ignored, on both sides (`agent+x@d` is `agent@d`). No
/// address is there twice, across To and Cc (case-insensitively, the whole
/// address; the first place it had wins), and the order is kept. Addresses
/// the send path could not write (those [`parse_address`] refuses, such as a
/// group or a display name left in) are left out; those kept are as
/// `parse_address` gives them (domain lowercased).
///
/// When nothing is left (a message the inbox sent to itself, say) the
/// answer [`Recipients::is_empty`]: the caller answers 400, "nobody to reply
/// to", rather than send.
pub(crate) fn reply_recipients(
    own_address: &str,
    original: &OriginalAddrs<'_>,
    reply_all: bool,
) -> Recipients {
    let own = untagged(own_address);
    let is_self = |address: &str| untagged(address) == own;
    let (to, cc, reply_to) = (
        strs(original.to),
        strs(original.cc),
        strs(original.reply_to),
    );
    let none: &[&str] = &[];
    let copied = if reply_all { cc.as_slice() } else { none };
    let author = [original.from];
    let (first, also): (&[&str], &[&str]) = if is_self(original.from) {
        (&to, none)
    } else {
        // The Reply-To when it names someone the reply can go to, else the From.
        let answerable = reply_to.iter().any(|address| {
            parse_address(unbracketed(address)).is_ok_and(|address| !is_self(&address))
        });
        let first: &[&str] = if answerable { &reply_to } else { &author };
        (first, if reply_all { to.as_slice() } else { none })
    };

    let mut seen = HashSet::new();
    let mut keep = |lists: &[&[&str]]| -> Vec<String> {
        lists
            .iter()
            .flat_map(|list| list.iter())
            .filter_map(|address| parse_address(unbracketed(address)).ok())
            .filter(|address| !is_self(address) && seen.insert(address.to_lowercase()))
            .collect()
    };
    let to = keep(&[first, also]);
    let cc = keep(&[copied]);
    Recipients { to, cc }
}

fn strs(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// `address` trimmed and without the angle brackets around it, if any.
fn unbracketed(address: &str) -> &str {
    let address = address.trim();
    address
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(address)
        .trim()
}

/// `address` lowercased, without a `+tag` on its local part: the mailbox it
/// names.
fn untagged(address: &str) -> String {
    let address = unbracketed(address).to_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let base = local.split_once('+').map_or(local, |(base, _)| base);
            format!("{base}@{domain}")
        }
        None => address,
    }
}

// ---------------------------------------------------------------------------
// Dates and attributions

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `at` as mail clients write it in an attribution, in UTC: `Tue, 1 Dec 2026
/// at 23:25`. Any instant formats (the year of a far one may be large or
/// negative).
pub(crate) fn mail_date(at: Timestamp) -> String {
    let seconds = at.millis().div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01, day 0, was a Thursday.
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(month - 1) as usize];
    let (hour, minute) = (of_day / 3600, of_day % 3600 / 60);
    format!("{weekday}, {day} {month} {year} at {hour:02}:{minute:02}")
}

/// The proleptic Gregorian date (year, month 1–12, day 1–31) of `days` since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // March is 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The sender as quoted: `Name <addr>`, or `addr` alone when there is no
/// name (or the name is the address). Both on one line.
fn sender(from_name: Option<&str>, from: &str) -> String {
    let from = one_line(from);
    match from_name.map(one_line) {
        Some(name) if !name.is_empty() && !name.eq_ignore_ascii_case(&from) => {
            format!("{name} <{from}>")
        }
        _ => from,
    }
}

/// The line above a quoted original: `On Tue, 1 Dec 2026 at 23:25, Alice
/// <alice@example.com> wrote:`; without a date, `Alice <alice@example.com>
/// wrote:`.
pub(crate) fn attribution(date: Option<Timestamp>, from_name: Option<&str>, from: &str) -> String {
    let who = sender(from_name, from);
    match date {
        Some(date) => format!("On {}, {who} wrote:", mail_date(date)),
        None => format!("{who} wrote:"),
    }
}

// ---------------------------------------------------------------------------
// Plain-text bodies

/// `text` with CRLF (and a lone CR) made LF.
fn lf_only(text: &str) -> Cow<'_, str> {
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The lines of `text` (LF only), without the empty one after a final LF.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut pieces = text.split('\n');
    if text.is_empty() {
        pieces.next();
    }
    pieces
}

/// The new text of a reply or a forward with its final line breaks removed;
/// `None` when there is nothing to say.
fn new_part(new_text: Option<&str>) -> Option<Cow<'_, str>> {
    let text = lf_only(new_text?);
    let end = text.trim_end_matches('\n').len();
    if text.trim().is_empty() {
        return None;
    }
    Some(match text {
        Cow::Borrowed(text) => Cow::Borrowed(&text[..end]),
        Cow::Owned(mut text) => {
            text.truncate(end);
            Cow::Owned(text)
        }
    })
}

/// `attribution` and then the original text quoted: every line behind `> `,
/// an empty line as `>` alone, and a line already quoted behind `>` alone
/// (`> x` becomes `>> x`). Line breaks are LF; the result ends in one.
pub(crate) fn quote_text(original_text: Option<&str>, attribution: &str) -> String {
    let original = lf_only(original_text.unwrap_or(""));
    let mut out =
        String::with_capacity(attribution.len() + original.len() + original.len() / 8 + 8);
    out.push_str(attribution);
    out.push('\n');
    for line in lines(&original) {
        out.push('>');
        if !line.is_empty() && !line.starts_with('>') {
            out.push(' ');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A reply's text: the new text, a blank line, the attribution (see
/// [`attribution`]) and the original quoted (see [`quote_text`]). Without new
/// text, the quote alone. LF line breaks.
pub(crate) fn reply_text(
    new_text: Option<&str>,
    original_text: Option<&str>,
    date: Option<Timestamp>,
    from_name: Option<&str>,
    from: &str,
) -> String {
    let quote = quote_text(original_text, &attribution(date, from_name, from));
    match new_part(new_text) {
        Some(new) => {
            let mut out = String::with_capacity(new.len() + 2 + quote.len());
            out.push_str(&new);
            out.push_str("\n\n");
            out.push_str(&quote);
            out
        }
        None => quote,
    }
}

// ---------------------------------------------------------------------------
// HTML bodies

/// `text` safe inside HTML text and attribute values: `&`, `<`, `>`, `"` and
/// `'` escaped.
#[cfg(all(test, not(target_arch = "wasm32")))]
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    escape_into(text, &mut out);
    out
}

fn escape_into(text: &str, out: &mut String) {
    let mut plain = 0;
    for (at, c) in text.char_indices() {
        let escaped = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        out.push_str(escaped);
        plain = at + 1;
    }
    out.push_str(&text[plain..]);
}

/// Plain text as HTML: escaped, its lines joined by `<br>`.
fn text_into_html(text: &str, out: &mut String) {
    let text = lf_only(text);
    for (n, line) in lines(&text).enumerate() {
        if n > 0 {
            out.push_str("<br>\n");
        }
        escape_into(line, out);
    }
}

/// The inside of an HTML document's `<body>`: what is between `<body …>` and
/// the last `</body>`, or without a body tag, the document without its
/// doctype, `<html …>`, `<head>…</head>` and `</html>`. Tags are found
/// case-insensitively; a document with none of them is returned whole.
pub(crate) fn body_content(html: &str) -> &str {
    // ASCII lowercasing keeps every byte where it was.
    let lower = html.to_ascii_lowercase();
    let after_tag = |open: usize| {
        lower
            .get(open..)
            .and_then(|tail| tail.find('>'))
            .map_or(html.len(), |gt| open + gt + 1)
    };
    let start = if let Some(open) = find_tag(&lower, "<body") {
        after_tag(open)
    } else if let Some(head_end) = lower.find("</head>") {
        head_end + "</head>".len()
    } else if let Some(open) = find_tag(&lower, "<html") {
        after_tag(open)
    } else if lower.trim_start().starts_with("<!doctype") {
        after_tag(html.len() - html.trim_start().len())
    } else {
        0
    };
    let tail = lower.get(start..).unwrap_or("");
    let end = rfind_tag(tail, "</body")
        .or_else(|| rfind_tag(tail, "</html"))
        .map_or(html.len(), |at| start + at);
    html.get(start..end).unwrap_or("")
}

/// Where the first tag `open` (`<body`, lowercase) is in `lower` (a
/// lowercased document): `open` followed by `>`, `/`, whitespace or the end,
/// so `<bodyguard>` is not `<body`.
fn find_tag(lower: &str, open: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = lower.get(from..).and_then(|tail| tail.find(open)) {
        let at = from + found;
        if ends_tag_name(lower, at + open.len()) {
            return Some(at);
        }
        from = at + open.len();
    }
    None
}

/// Where the last tag `close` (`</body`, lowercase) is in `lower`, with the
/// same care as [`find_tag`].
fn rfind_tag(lower: &str, close: &str) -> Option<usize> {
    let mut until = lower.len();
    while let Some(at) = lower.get(..until).and_then(|head| head.rfind(close)) {
        if ends_tag_name(lower, at + close.len()) {
            return Some(at);
        }
        // The match's own bytes cannot start an earlier one ending later.
        until = at + close.len() - 1;
    }
    None
}

/// Whether a tag's name ends at `at`.
fn ends_tag_name(lower: &str, at: usize) -> bool {
    match lower.as_bytes().get(at) {
        None | Some(b'>' | b'/') => true,
        Some(b) => b.is_ascii_whitespace(),
    }
}

/// The new part of an HTML reply or forward: the new HTML, or (when that is
/// absent or blank) the new text escaped, lines joined by `<br>`, in a
/// `<div>`; nothing without either.
fn new_html_part(new_html: Option<&str>, new_text: Option<&str>, out: &mut String) {
    if let Some(html) = new_html.filter(|html| !html.trim().is_empty()) {
        out.push_str(html);
        out.push_str("\n<br>\n");
    } else if let Some(text) = new_part(new_text) {
        out.push_str("<div>");
        text_into_html(&text, out);
        out.push_str("</div>\n<br>\n");
    }
}

/// The original as HTML: its body's content (see [`body_content`]), or its
/// text escaped.
fn original_html_part(html: Option<&str>, text: Option<&str>, out: &mut String) {
    match (html, text) {
        (Some(html), _) => out.push_str(body_content(html)),
        (None, Some(text)) => text_into_html(text, out),
        (None, None) => {}
    }
}

/// A reply's HTML, when the reply or the original has HTML (`None`
/// otherwise: the reply is plain text): the new part (the new HTML, else the
/// new text escaped), then Gmail's quote, which other clients recognise and
/// fold:
///
/// ```text
/// <div class="gmail_quote"><div class="gmail_attr">ATTRIBUTION</div>
/// <blockquote class="gmail_quote" style="…">ORIGINAL</blockquote></div>
/// ```
///
/// ORIGINAL is the inside of the original HTML's body (its `<head>` and
/// wrappers removed; the rest is kept as it was, not sanitised), else its
/// text escaped.
pub(crate) fn reply_html(
    new_html: Option<&str>,
    new_text: Option<&str>,
    original_html: Option<&str>,
    original_text: Option<&str>,
    attribution: &str,
) -> Option<String> {
    if new_html.is_none() && original_html.is_none() {
        return None;
    }
    let mut out = String::with_capacity(
        new_html.or(new_text).map_or(0, str::len)
            + original_html.or(original_text).map_or(0, str::len)
            + attribution.len()
            + 256,
    );
    new_html_part(new_html, new_text, &mut out);
    out.push_str("<div class=\"gmail_quote\"><div class=\"gmail_attr\">");
    escape_into(attribution, &mut out);
    out.push_str(
        "</div>\n<blockquote class=\"gmail_quote\" \
         style=\"margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex\">\n",
    );
    original_html_part(original_html, original_text, &mut out);
    out.push_str("\n</blockquote></div>\n");
    Some(out)
}

// ---------------------------------------------------------------------------
// Forwards

/// What a forward repeats of the original.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ForwardedFacts<'a> {
    /// Its From address.
    pub(crate) from: &'a str,
    /// Its sender's display name, if given.
    pub(crate) from_name: Option<&'a str>,
    /// Its Date.
    pub(crate) date: Option<Timestamp>,
    /// Its subject.
    pub(crate) subject: Option<&'a str>,
    /// Its To addresses.
    pub(crate) to: &'a [String],
    /// Its Cc addresses.
    pub(crate) cc: &'a [String],
    /// Its text body.
    pub(crate) text: Option<&'a str>,
    /// Its HTML body.
    pub(crate) html: Option<&'a str>,
}

/// The line that opens a forwarded message, as Gmail writes it.
const FORWARDED: &str = "---------- Forwarded message ---------";

/// The forwarded message's header lines: From always; Date, Subject, To and
/// Cc when it had them. Each value on one line.
fn forwarded_headers(original: &ForwardedFacts<'_>) -> Vec<(&'static str, String)> {
    let list = |addresses: &[String]| {
        addresses
            .iter()
            .map(|a| one_line(a))
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut headers = vec![("From", sender(original.from_name, original.from))];
    if let Some(date) = original.date {
        headers.push(("Date", mail_date(date)));
    }
    let subject = one_line(original.subject.unwrap_or(""));
    let (to, cc) = (list(original.to), list(original.cc));
    for (name, value) in [("Subject", subject), ("To", to), ("Cc", cc)] {
        if !value.is_empty() {
            headers.push((name, value));
        }
    }
    headers
}

/// A forward's text, as Gmail writes it: the new text and a blank line (when
/// there is new text), `---------- Forwarded message ---------`, the
/// original's `From:`, `Date:`, `Subject:`, `To:` and `Cc:` lines (those it
/// had), a blank line and its text as it was (not quoted). LF line breaks;
/// the result ends in one.
pub(crate) fn forward_text(new_text: Option<&str>, original: &ForwardedFacts<'_>) -> String {
    let body = lf_only(original.text.unwrap_or(""));
    let mut out = String::with_capacity(new_text.map_or(0, str::len) + body.len() + 512);
    if let Some(new) = new_part(new_text) {
        out.push_str(&new);
        out.push_str("\n\n");
    }
    out.push_str(FORWARDED);
    out.push('\n');
    for (name, value) in forwarded_headers(original) {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&body);
    if !body.is_empty() && !body.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// A forward's HTML, when the forward or the original has HTML (`None`
/// otherwise): the new part (as in [`reply_html`]), then the forwarded
/// message's header lines, escaped, and the original's body content (or its
/// text escaped), not indented, in Gmail's `<div class="gmail_quote">`.
pub(crate) fn forward_html(
    new_html: Option<&str>,
    new_text: Option<&str>,
    original: &ForwardedFacts<'_>,
) -> Option<String> {
    if new_html.is_none() && original.html.is_none() {
        return None;
    }
    let mut out = String::with_capacity(
        new_html.or(new_text).map_or(0, str::len)
            + original.html.or(original.text).map_or(0, str::len)
            + 512,
    );
    new_html_part(new_html, new_text, &mut out);
    out.push_str("<div class=\"gmail_quote\"><div class=\"gmail_attr\">");
    out.push_str(FORWARDED);
    out.push_str("<br>\n");
    for (name, value) in forwarded_headers(original) {
        out.push_str(name);
        out.push_str(": ");
        escape_into(&value, &mut out);
        out.push_str("<br>\n");
    }
    out.push_str("</div>\n<br>\n");
    original_html_part(original.html, original.text, &mut out);
    out.push_str("\n</div>\n");
    Some(out)
}

// Native only: insta and proptest run on the host.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owned(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// 2026-12-01T23:25:40Z, a Tuesday.
    const DEC_1: Timestamp = Timestamp::from_millis(1_796_167_540_000);

    // --- Subjects -------------------------------------------------------

    #[test]
    fn a_reply_subject_is_re_once_whatever_the_prefixes_were() {
        let cases = [
            ("Lunch", "Re: Lunch"),
            ("Re: Lunch", "Re: Lunch"),
            ("RE: Lunch", "Re: Lunch"),
            ("re: Lunch", "Re: Lunch"),
            ("rE:Lunch", "Re: Lunch"),
            ("Re: Re: RE: Lunch", "Re: Lunch"),
            ("Re[2]: Lunch", "Re: Lunch"),
            ("Re(3): Lunch", "Re: Lunch"),
            ("RE [12] : Lunch", "Re: Lunch"),
            ("Re : Lunch", "Re: Lunch"),
            ("AW: Lunch", "Re: Lunch"),
            ("Aw: AW: Lunch", "Re: Lunch"),
            ("SV: Lunch", "Re: Lunch"),
            ("VS: Lunch", "Re: Lunch"),
            ("Antw: Lunch", "Re: Lunch"),
            ("RIF: Lunch", "Re: Lunch"),
            ("R: Lunch", "Re: Lunch"),
            ("Réf: Lunch", "Re: Lunch"),
            ("RÉF : Lunch", "Re: Lunch"),
            ("REF: Lunch", "Re: Lunch"),
            ("TR: Lunch", "Re: Lunch"),
            ("WG: Lunch", "Re: Lunch"),
            ("Fwd: Lunch", "Re: Lunch"),
            ("FW: Lunch", "Re: Lunch"),
            ("Fw: Lunch", "Re: Lunch"),
            ("RV: Lunch", "Re: Lunch"),
            ("Odp: Lunch", "Re: Lunch"),
            ("RES: Lunch", "Re: Lunch"),
            ("ΑΠ: Lunch", "Re: Lunch"),
            ("回复: 午餐", "Re: 午餐"),
            ("回复：午餐", "Re: 午餐"),
            ("答复：午餐", "Re: 午餐"),
            ("转发：午餐", "Re: 午餐"),
            ("返信: 昼食", "Re: 昼食"),
            ("Ｒｅ：昼食", "Re: 昼食"),
            ("ＲＥ［２］：昼食", "Re: 昼食"),
            ("Re: Fwd: AW: 回复：SV: Lunch", "Re: Lunch"),
            ("Fwd: Re: Lunch", "Re: Lunch"),
        ];
        for (original, want) in cases {
            assert_eq!(reply_subject(Some(original)), want, "{original:?}");
        }
    }

    #[test]
    fn a_word_that_only_starts_like_a_prefix_is_kept() {
        let cases = [
            ("Reply needed", "Re: Reply needed"),
            ("Reply needed: today", "Re: Reply needed: today"),
            ("Research: results", "Re: Research: results"),
            ("Recap: week 3", "Re: Recap: week 3"),
            ("Refund: order 12", "Re: Refund: order 12"),
            ("AWS: invoice", "Re: AWS: invoice"),
            ("Trip: Lisbon", "Re: Trip: Lisbon"),
            ("Forward planning", "Re: Forward planning"),
            ("R&D: plan", "Re: R&D: plan"),
            ("Re-org: teams", "Re: Re-org: teams"),
            ("Re[x]: odd", "Re: Re[x]: odd"),
            ("Re[]: odd", "Re: Re[]: odd"),
            ("Meeting re: budget", "Re: Meeting re: budget"),
            // A prefix's colon is its own: a time is not one.
            ("10:30 call", "Re: 10:30 call"),
            (": nothing before", "Re: : nothing before"),
            ("Re:: twice", "Re: : twice"),
        ];
        for (original, want) in cases {
            assert_eq!(reply_subject(Some(original)), want, "{original:?}");
        }
    }

    #[test]
    fn no_subject_gives_a_bare_re_and_whitespace_is_collapsed() {
        assert_eq!(reply_subject(None), "Re:");
        assert_eq!(reply_subject(Some("")), "Re:");
        assert_eq!(reply_subject(Some(" \t \r\n ")), "Re:");
        assert_eq!(reply_subject(Some("Re:")), "Re:");
        assert_eq!(reply_subject(Some("RE: FW:  ")), "Re:");
        assert_eq!(
            reply_subject(Some("  Re:\t  hello \r\n  world  ")),
            "Re: hello world"
        );
        // Control characters other than whitespace are dropped: the subject
        // must pass the send path's check.
        assert_eq!(reply_subject(Some("a\u{0}b\u{7f}c")), "Re: abc");
        assert_eq!(forward_subject(None), "Fwd:");
        assert_eq!(forward_subject(Some("  ")), "Fwd:");
    }

    #[test]
    fn a_long_subject_is_cut_to_the_limit_on_a_character() {
        let long = "é".repeat(2 * MAX_SUBJECT_CHARS);
        let reply = reply_subject(Some(&long));
        assert_eq!(reply.chars().count(), MAX_SUBJECT_CHARS);
        assert!(reply.starts_with("Re: éé"));
        assert_eq!(reply_subject(Some(&reply)), reply);
        let forward = forward_subject(Some(&long));
        assert_eq!(forward.chars().count(), MAX_SUBJECT_CHARS);
        // A cut that ends on a space does not leave it.
        let spaced = "ab ".repeat(MAX_SUBJECT_CHARS);
        let reply = reply_subject(Some(&spaced));
        assert!(!reply.ends_with(' '), "{reply:?}");
        assert_eq!(reply_subject(Some(&reply)), reply);
    }

    #[test]
    fn a_forward_subject_strips_only_leading_forward_prefixes() {
        let cases = [
            ("Lunch", "Fwd: Lunch"),
            ("Fwd: Lunch", "Fwd: Lunch"),
            ("FW: FWD: fw: Lunch", "Fwd: Lunch"),
            ("TR: Lunch", "Fwd: Lunch"),
            ("WG: Lunch", "Fwd: Lunch"),
            ("RV: Lunch", "Fwd: Lunch"),
            ("转发：午餐", "Fwd: 午餐"),
            ("Re: Lunch", "Fwd: Re: Lunch"),
            ("Fwd: Re: Lunch", "Fwd: Re: Lunch"),
            ("Fwd: Re: Fwd: Lunch", "Fwd: Re: Fwd: Lunch"),
            ("AW: Lunch", "Fwd: AW: Lunch"),
            ("Forward planning", "Fwd: Forward planning"),
        ];
        for (original, want) in cases {
            assert_eq!(forward_subject(Some(original)), want, "{original:?}");
        }
    }

    // --- Threading ------------------------------------------------------

    #[test]
    fn references_are_the_originals_and_its_message_id_once_each() {
        let refs = owned(&["root@a", "b@a", "root@a", "c@a"]);
        assert_eq!(
            references_for_reply(&refs, Some("m@a")),
            owned(&["root@a", "b@a", "c@a", "m@a"])
        );
        // The Message-ID is last even if the References named it already.
        let refs = owned(&["root@a", "m@a", "c@a"]);
        assert_eq!(
            references_for_reply(&refs, Some("m@a")),
            owned(&["root@a", "c@a", "m@a"])
        );
        assert_eq!(references_for_reply(&[], Some("m@a")), owned(&["m@a"]));
        assert_eq!(references_for_reply(&[], None), Vec::<String>::new());
        assert_eq!(
            references_for_reply(&owned(&["root@a"]), None),
            owned(&["root@a"])
        );
    }

    #[test]
    fn malformed_ids_are_skipped_never_failing_the_reply() {
        let too_long = format!("{}@a", "x".repeat(MAX_ID_BYTES));
        let just_fits = format!("{}@a", "x".repeat(MAX_ID_BYTES - 2));
        let refs = owned(&[
            "",
            "with space@a",
            "<bracketed@a>",
            "half>@a",
            "cr\r@a",
            "lf\n@a",
            "tab\t@a",
            "nul\u{0}@a",
            &too_long,
            &just_fits,
            "good@a",
        ]);
        assert_eq!(
            references_for_reply(&refs, Some("bad id")),
            vec![just_fits, "good@a".to_owned()]
        );
    }

    #[test]
    fn a_long_chain_keeps_its_root_and_the_newest_ids() {
        let refs: Vec<String> = (0..50).map(|n| format!("{n}@a")).collect();
        let kept = references_for_reply(&refs, Some("m@a"));
        assert_eq!(kept.len(), MAX_REFERENCES);
        assert_eq!(kept[0], "0@a", "the root");
        let mut want: Vec<String> = (32..50).map(|n| format!("{n}@a")).collect();
        want.push("m@a".to_owned());
        assert_eq!(kept[1..], want[..]);
    }

    #[test]
    fn a_chain_of_long_ids_is_kept_within_its_byte_budget() {
        let id = |n: usize| format!("{n:03}{}@example.com", "x".repeat(200));
        let refs: Vec<String> = (0..15).map(id).collect();
        let kept = references_for_reply(&refs, Some("m@a"));
        let written = kept
            .iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(written.len() <= MAX_REFERENCES_BYTES, "{}", written.len());
        // Root, then the newest that fit, contiguous, then the Message-ID.
        assert_eq!(kept[0], id(0));
        assert_eq!(kept.last().map(String::as_str), Some("m@a"));
        let newest: Vec<String> = (15 - (kept.len() - 2)..15).map(id).collect();
        assert_eq!(kept[1..kept.len() - 1], newest[..]);
        // Another id would not have fitted.
        assert!(written.len() + id(99).len() + 3 > MAX_REFERENCES_BYTES);
    }

    // --- Recipients -----------------------------------------------------

    const OWN: &str = "agent@inbox.test";

    fn recipients(to: &[&str], cc: &[&str]) -> Recipients {
        Recipients {
            to: owned(to),
            cc: owned(cc),
        }
    }

    #[test]
    fn a_reply_goes_to_the_reply_to_else_the_from() {
        let (to, cc) = (owned(&[OWN, "bob@b.test"]), owned(&["carol@c.test"]));
        let plain = OriginalAddrs {
            from: "alice@a.test",
            reply_to: &[],
            to: &to,
            cc: &cc,
        };
        assert_eq!(
            reply_recipients(OWN, &plain, false),
            recipients(&["alice@a.test"], &[])
        );
        let list = owned(&["list@l.test", "alice@a.test"]);
        let with_reply_to = OriginalAddrs {
            reply_to: &list,
            ..plain
        };
        assert_eq!(
            reply_recipients(OWN, &with_reply_to, false),
            recipients(&["list@l.test", "alice@a.test"], &[])
        );
    }

    #[test]
    fn a_reply_all_adds_the_to_and_the_cc_never_the_inbox_nor_twice() {
        let to = owned(&[
            "Agent@Inbox.TEST",
            "bob@b.test",
            "agent+sales@inbox.test",
            "ALICE@a.test",
            "dave@d.test",
        ]);
        let cc = owned(&[
            "carol@c.test",
            "Bob@B.test",
            "agent@INBOX.test",
            "erin@e.test",
        ]);
        let original = OriginalAddrs {
            from: "alice@a.test",
            reply_to: &[],
            to: &to,
            cc: &cc,
        };
        assert_eq!(
            reply_recipients(OWN, &original, true),
            recipients(
                &["alice@a.test", "bob@b.test", "dave@d.test"],
                &["carol@c.test", "erin@e.test"]
            )
        );
        // A +tag on someone else's address is another address.
        let to = owned(&["bob+x@b.test", "bob@b.test"]);
        let tagged = OriginalAddrs {
            to: &to,
            cc: &[],
            ..original
        };
        assert_eq!(
            reply_recipients(OWN, &tagged, true),
            recipients(&["alice@a.test", "bob+x@b.test", "bob@b.test"], &[])
        );
    }

    #[test]
    fn our_own_address_with_a_tag_is_still_us() {
        let to = owned(&["agent+x@inbox.test"]);
        let original = OriginalAddrs {
            from: "alice@a.test",
            reply_to: &[],
            to: &to,
            cc: &[],
        };
        assert_eq!(
            reply_recipients(OWN, &original, true),
            recipients(&["alice@a.test"], &[])
        );
        // And the inbox's own address given with a tag is the inbox too.
        assert_eq!(
            reply_recipients("agent+y@inbox.test", &original, true),
            recipients(&["alice@a.test"], &[])
        );
    }

    #[test]
    fn a_reply_to_our_own_message_goes_to_its_recipients() {
        let (to, cc) = (
            owned(&["bob@b.test", "carol@c.test"]),
            owned(&["dave@d.test"]),
        );
        let sent = OriginalAddrs {
            from: "Agent+x@inbox.test",
            reply_to: &[],
            to: &to,
            cc: &cc,
        };
        assert_eq!(
            reply_recipients(OWN, &sent, false),
            recipients(&["bob@b.test", "carol@c.test"], &[])
        );
        assert_eq!(
            reply_recipients(OWN, &sent, true),
            recipients(&["bob@b.test", "carol@c.test"], &["dave@d.test"])
        );
    }

    #[test]
    fn a_message_to_ourselves_leaves_nobody_to_reply_to() {
        let to = owned(&[OWN]);
        let to_self = OriginalAddrs {
            from: OWN,
            reply_to: &[],
            to: &to,
            cc: &[],
        };
        let nobody = reply_recipients(OWN, &to_self, true);
        assert!(nobody.is_empty(), "{nobody:?}");
        assert!(!recipients(&["a@b.test"], &[]).is_empty());
        assert!(!recipients(&[], &["a@b.test"]).is_empty());
    }

    #[test]
    fn a_reply_to_naming_only_us_or_nothing_sendable_falls_back_to_the_from() {
        for reply_to in [
            owned(&["agent+bounce@inbox.test"]),
            owned(&["not an address"]),
        ] {
            let original = OriginalAddrs {
                from: "alice@a.test",
                reply_to: &reply_to,
                to: &[],
                cc: &[],
            };
            assert_eq!(
                reply_recipients(OWN, &original, false),
                recipients(&["alice@a.test"], &[]),
                "{reply_to:?}"
            );
        }
    }

    #[test]
    fn unsendable_addresses_are_left_out_and_kept_ones_normalised() {
        let to = owned(&[
            "undisclosed-recipients:;",
            "Bob <bob@b.test>",
            "",
            " <Carol@C.TEST> ",
        ]);
        let original = OriginalAddrs {
            from: "Alice@A.Test",
            reply_to: &[],
            to: &to,
            cc: &[],
        };
        assert_eq!(
            reply_recipients(OWN, &original, true),
            recipients(&["Alice@a.test", "Carol@c.test"], &[])
        );
        // A From we cannot answer leaves nobody.
        let broken = OriginalAddrs {
            from: "not an address",
            ..original
        };
        assert!(reply_recipients(OWN, &broken, false).is_empty());
    }

    // --- Dates and attributions -----------------------------------------

    #[test]
    fn a_date_is_written_as_mail_clients_write_it() {
        assert_eq!(mail_date(DEC_1), "Tue, 1 Dec 2026 at 23:25");
        assert_eq!(
            mail_date(Timestamp::from_millis(0)),
            "Thu, 1 Jan 1970 at 00:00"
        );
        assert_eq!(
            mail_date(Timestamp::from_millis(-1)),
            "Wed, 31 Dec 1969 at 23:59"
        );
        assert_eq!(
            mail_date(Timestamp::from_millis(951_782_400_000)),
            "Tue, 29 Feb 2000 at 00:00"
        );
        // Far instants format rather than panic.
        for millis in [i64::MIN, i64::MAX] {
            assert!(mail_date(Timestamp::from_millis(millis)).contains(" at "));
        }
    }

    #[test]
    fn an_attribution_names_the_date_and_the_sender() {
        assert_eq!(
            attribution(Some(DEC_1), Some("Alice Example"), "alice@a.test"),
            "On Tue, 1 Dec 2026 at 23:25, Alice Example <alice@a.test> wrote:"
        );
        assert_eq!(
            attribution(Some(DEC_1), None, "alice@a.test"),
            "On Tue, 1 Dec 2026 at 23:25, alice@a.test wrote:"
        );
        assert_eq!(
            attribution(None, Some(" "), "alice@a.test"),
            "alice@a.test wrote:"
        );
        assert_eq!(
            attribution(None, Some("ALICE@a.test"), "alice@a.test"),
            "alice@a.test wrote:"
        );
        // A name cannot add a line.
        assert_eq!(
            attribution(None, Some("Eve\r\nX-Forged: 1"), "eve@e.test"),
            "Eve X-Forged: 1 <eve@e.test> wrote:"
        );
    }

    // --- Plain-text bodies ----------------------------------------------

    #[test]
    fn quoting_prefixes_every_line_once() {
        let original = "Hello,\r\n\r\n> earlier\r\n>> older\nlast\r\n";
        assert_eq!(
            quote_text(Some(original), "A wrote:"),
            "A wrote:\n> Hello,\n>\n>> earlier\n>>> older\n> last\n"
        );
        // No final line break: the last line is still quoted, once.
        assert_eq!(quote_text(Some("a\nb"), "A:"), "A:\n> a\n> b\n");
        // A lone CR is a line break too.
        assert_eq!(quote_text(Some("a\rb"), "A:"), "A:\n> a\n> b\n");
        // Blank lines inside and at the end are kept.
        assert_eq!(quote_text(Some("a\n\n\n"), "A:"), "A:\n> a\n>\n>\n");
        assert_eq!(quote_text(Some(""), "A:"), "A:\n");
        assert_eq!(quote_text(None, "A:"), "A:\n");
    }

    #[test]
    fn a_reply_text_is_the_new_text_then_the_quote() {
        assert_eq!(
            reply_text(Some("Yes.\r\n\r\n"), Some("Lunch?"), None, None, "a@a.test"),
            "Yes.\n\na@a.test wrote:\n> Lunch?\n"
        );
        for nothing in [None, Some(""), Some("\n \n")] {
            assert_eq!(
                reply_text(nothing, Some("Lunch?"), None, None, "a@a.test"),
                "a@a.test wrote:\n> Lunch?\n"
            );
        }
    }

    // --- HTML bodies ----------------------------------------------------

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape_html("plain é"), "plain é");
        assert_eq!(escape_html(""), "");
    }

    #[test]
    fn the_body_content_is_found_without_its_wrappers() {
        let cases = [
            (
                "<!DOCTYPE html><HTML><Head><title>t</title></HEAD><BODY class=\"x\">\n<p>Hi</p>\n</Body></html>",
                "\n<p>Hi</p>\n",
            ),
            (
                "<html><head><style>p{}</style></head><p>Hi</p></html>",
                "<p>Hi</p>",
            ),
            ("<html lang=\"en\"><p>Hi</p></html>", "<p>Hi</p>"),
            ("<!doctype html><p>Hi</p>", "<p>Hi</p>"),
            ("<p>Hi</p>", "<p>Hi</p>"),
            ("<body><p>Hi</p>", "<p>Hi</p>"),
            ("<bodyguard>x</bodyguard>", "<bodyguard>x</bodyguard>"),
            ("<body/><p>Hi</p></body>", "<p>Hi</p>"),
            ("<body", ""),
            ("", ""),
            ("<body>é</body>ü", "é"),
        ];
        for (html, want) in cases {
            assert_eq!(body_content(html), want, "{html:?}");
        }
    }

    #[test]
    fn a_reply_has_html_only_when_one_side_has() {
        assert_eq!(reply_html(None, Some("x"), None, Some("y"), "A:"), None);
        let from_text = reply_html(None, Some("a < b\nc"), Some("<p>y</p>"), None, "A & B:")
            .expect("the original has html");
        assert!(
            from_text.starts_with("<div>a &lt; b<br>\nc</div>\n<br>\n<div class=\"gmail_quote\">"),
            "{from_text}"
        );
        assert!(from_text.contains("<div class=\"gmail_attr\">A &amp; B:</div>"));
        assert!(from_text.contains("\n<p>y</p>\n</blockquote></div>\n"));
        let to_text = reply_html(Some("<p>ok</p>"), None, None, Some("1 < 2\n\nbye"), "A:")
            .expect("the reply has html");
        assert!(to_text.starts_with("<p>ok</p>\n<br>\n"), "{to_text}");
        assert!(
            to_text.contains(">\n1 &lt; 2<br>\n<br>\nbye\n</blockquote>"),
            "{to_text}"
        );
    }

    // --- Forwards -------------------------------------------------------

    fn forwarded<'a>(to: &'a [String], cc: &'a [String]) -> ForwardedFacts<'a> {
        ForwardedFacts {
            from: "alice@a.test",
            from_name: Some("Alice Example"),
            date: Some(DEC_1),
            subject: Some("Quarterly numbers"),
            to,
            cc,
            text: Some("Numbers attached.\r\n> not a quote of ours\r\n\r\nAlice\r\n"),
            html: Some(
                "<html><head><meta charset=\"utf-8\"></head><body><p>Numbers <b>attached</b>.</p><p>Alice</p></body></html>",
            ),
        }
    }

    #[test]
    fn a_forward_repeats_only_the_headers_it_had() {
        let bare = ForwardedFacts {
            from: "alice@a.test",
            from_name: None,
            date: None,
            subject: None,
            to: &[],
            cc: &[],
            text: Some("x"),
            html: None,
        };
        assert_eq!(
            forward_text(None, &bare),
            "---------- Forwarded message ---------\nFrom: alice@a.test\n\nx\n"
        );
        assert_eq!(forward_html(None, Some("see below"), &bare), None);
        let html = forward_html(Some("<p>fyi</p>"), None, &bare).expect("the forward has html");
        assert!(
            html.contains("From: alice@a.test<br>\n</div>\n<br>\nx\n</div>\n"),
            "{html}"
        );
    }

    #[test]
    fn a_mebibyte_of_hostile_input_is_composed_in_linear_time() {
        // Quadratic work on any of these would not finish.
        const MIB: usize = 1 << 20;
        let subject = "Re:".repeat(MIB / 3);
        assert_eq!(reply_subject(Some(&subject)), "Re:");
        let subject = "ＦＷ［２］：".repeat(MIB / 18);
        assert_eq!(reply_subject(Some(&subject)), "Re:");
        assert_eq!(forward_subject(Some(&subject)), "Fwd:");
        let html = "<bodyx></bodyx><htmlx></htmlx>".repeat(MIB / 30);
        assert_eq!(body_content(&html), html);
        let text = ">\r\n\r".repeat(MIB / 4);
        let quoted = quote_text(Some(&text), "A:");
        assert!(quoted.len() > MIB);
        let reply = reply_html(None, Some(&text), Some(&html), None, "A:").expect("html");
        assert!(reply.len() > MIB);
        let refs: Vec<String> = (0..MIB / 8).map(|n| format!("{n}@a")).collect();
        assert_eq!(references_for_reply(&refs, None).len(), MAX_REFERENCES);
        let many: Vec<String> = (0..MIB / 16).map(|n| format!("p{n}@b.test")).collect();
        let original = OriginalAddrs {
            from: "alice@a.test",
            reply_to: &[],
            to: &many,
            cc: &many,
        };
        let all = reply_recipients(OWN, &original, true);
        assert_eq!((all.to.len(), all.cc.len()), (many.len() + 1, 0));
    }

    // --- Snapshots: whole composed bodies ---------------------------------

    #[test]
    fn a_composed_reply_text() {
        let text = reply_text(
            Some("Thursday works.\nSee you then."),
            Some(
                "Hi,\r\n\r\nCan we meet on Thursday?\r\n> You said Wednesday before.\r\n\r\nAlice\r\n",
            ),
            Some(DEC_1),
            Some("Alice Example"),
            "alice@a.test",
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_composed_reply_html() {
        let said = attribution(Some(DEC_1), Some("Alice <& Co>"), "alice@a.test");
        let html = reply_html(
            None,
            Some("Thursday works.\nSee you <then>."),
            Some(
                "<!DOCTYPE html><html><head><style>p{color:red}</style></head><body dir=\"ltr\"><p>Can we meet on <b>Thursday</b>?</p></body></html>",
            ),
            Some("Can we meet on Thursday?"),
            &said,
        )
        .expect("the original has html");
        insta::assert_snapshot!(html);
    }

    #[test]
    fn a_composed_forward_text() {
        let (to, cc) = (
            owned(&["agent@inbox.test", "bob@b.test"]),
            owned(&["carol@c.test"]),
        );
        insta::assert_snapshot!(forward_text(Some("FYI, see below."), &forwarded(&to, &cc)));
    }

    #[test]
    fn a_composed_forward_html() {
        let (to, cc) = (
            owned(&["agent@inbox.test", "bob@b.test"]),
            owned(&["carol@c.test"]),
        );
        let html = forward_html(Some("<p>FYI, see below.</p>"), None, &forwarded(&to, &cc))
            .expect("both have html");
        insta::assert_snapshot!(html);
    }

    // --- Properties -----------------------------------------------------

    /// Subjects made of prefixes, separators and arbitrary text, so that the
    /// stripping is exercised and not only the plain path.
    fn subjects() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("Re:".to_owned()),
            Just("RE".to_owned()),
            Just("Fwd".to_owned()),
            Just("ＲＥ".to_owned()),
            Just("回复".to_owned()),
            Just("[2]".to_owned()),
            Just("(".to_owned()),
            Just(":".to_owned()),
            Just("：".to_owned()),
            Just(" ".to_owned()),
            Just("\t\r\n".to_owned()),
            Just("\u{0}".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat()),
            any::<String>(),
            "\\PC{0,1200}",
        ]
    }

    proptest! {
        #[test]
        fn reply_subject_is_idempotent_and_clean(subject in subjects()) {
            let once = reply_subject(Some(&subject));
            prop_assert_eq!(&reply_subject(Some(&once)), &once);
            prop_assert!(once.starts_with("Re:"));
            prop_assert!(once.chars().count() <= MAX_SUBJECT_CHARS);
            prop_assert!(!once.chars().any(|c| c.is_control()));
            prop_assert_eq!(once.trim(), once.as_str());
        }

        #[test]
        fn forward_subject_is_idempotent_and_clean(subject in subjects()) {
            let once = forward_subject(Some(&subject));
            prop_assert_eq!(&forward_subject(Some(&once)), &once);
            prop_assert!(once.starts_with("Fwd:"));
            prop_assert!(once.chars().count() <= MAX_SUBJECT_CHARS);
            prop_assert!(!once.chars().any(|c| c.is_control()));
        }

        #[test]
        fn bodies_compose_from_any_input(
            new in proptest::option::of(any::<String>()),
            text in proptest::option::of(any::<String>()),
            html in proptest::option::of(any::<String>()),
            name in proptest::option::of(any::<String>()),
            from in any::<String>(),
            millis in any::<i64>(),
        ) {
            let date = Some(Timestamp::from_millis(millis));
            let said = attribution(date, name.as_deref(), &from);
            let reply = reply_text(new.as_deref(), text.as_deref(), date, name.as_deref(), &from);
            prop_assert!(!reply.contains('\r'));
            prop_assert!(reply.ends_with('\n'));
            let quoted = reply_html(None, new.as_deref(), html.as_deref(), text.as_deref(), &said);
            prop_assert_eq!(quoted.is_some(), html.is_some());
            let facts = ForwardedFacts {
                from: &from,
                from_name: name.as_deref(),
                date,
                subject: new.as_deref(),
                to: &[],
                cc: &[],
                text: text.as_deref(),
                html: html.as_deref(),
            };
            prop_assert!(!forward_text(new.as_deref(), &facts).contains('\r'));
            let _ = forward_html(new.as_deref(), None, &facts);
            let _ = body_content(&html.unwrap_or_default());
        }

        #[test]
        fn ids_kept_are_usable_and_within_limits(
            refs in proptest::collection::vec("[ -~]{0,40}|x{240,260}", 0..60),
            id in proptest::option::of("[ -~]{0,40}"),
        ) {
            let kept = references_for_reply(&refs, id.as_deref());
            prop_assert!(kept.len() <= MAX_REFERENCES);
            prop_assert!(kept.iter().all(|id| usable_id(id)));
            let bytes: usize = kept.iter().map(|id| id.len() + 3).sum();
            prop_assert!(bytes <= MAX_REFERENCES_BYTES + 1);
            let unique: HashSet<&String> = kept.iter().collect();
            prop_assert_eq!(unique.len(), kept.len());
            if let Some(id) = id.filter(|id| usable_id(id)) {
                prop_assert_eq!(kept.last(), Some(&id));
            }
        }

        #[test]
        fn mail_date_agrees_with_rfc3339(millis in -62_135_596_800_000i64..253_402_300_799_000) {
            // Years 1 to 9999, where `time` formats.
            let at = Timestamp::from_millis(millis);
            let rfc = at.to_rfc3339();
            let (y, rest) = rfc.split_at(4);
            let (mo, d, hm) = (&rest[1..3], &rest[4..6], &rest[7..12]);
            let ours = mail_date(at);
            let month = MONTHS[mo.parse::<usize>().unwrap_or(1) - 1];
            let want = format!(
                ", {} {month} {} at {hm}",
                d.trim_start_matches('0'),
                y.trim_start_matches('0'),
            );
            prop_assert!(ours.ends_with(&want), "{} vs {}", ours, rfc);
        }
    }
}
