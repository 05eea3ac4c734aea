//! The new text of a message: what its author wrote, without the history it
//! quotes and without the signature under it, and a short preview of that.
//!
//! Everything here is hand-written line and tag scanning: bodies are up to
//! 1 MiB, so every pass is linear in the input (each line is looked at a
//! bounded number of times, and every look-ahead is capped), and nothing
//! slices a string anywhere but at an ASCII byte, a `char_indices` index or
//! a `floor_char_boundary`.
//!
//! Plain text is read line by line. Quoted history starts at the first
//! boundary a reader would recognise: an attribution ("On … wrote:" and its
//! translations, wrapped over up to three lines), a mail client's header
//! block (`From:` / `Sent:` / `To:` / `Subject:` and their translations), an
//! "-----Original Message-----" divider. An attribution followed by `>` lines
//! starts a quote the author may answer inline, so only the attribution and
//! the `>` lines go; any other boundary cuts everything below it. A forward
//! keeps its whole text, as does a message that is all quote. A forward is
//! known by its marker ("---------- Forwarded message ---------", "Begin
//! forwarded message:" and their translations), or by a header block whose
//! subject is forwarded (`Fwd:`, `FW:`, `WG:` …). That subject is the quoted
//! message's, so an Outlook-style reply *to* a forward also keeps its whole
//! text: over-keeping, never losing, the forwarded content.
//!
//! HTML-only mail is rendered to text twice: whole, to recognise a forward,
//! and without the containers mail clients wrap quoted history in, to read
//! the new text as above. mail-parser's `html_to_text` is not used for the
//! rendering because it ends lines only at `<br>` and `</p>`, while Gmail and
//! Apple Mail write one `<div>` per line; its entity table is used.

use mail_parser::decoders::html::add_html_token;

/// Most characters in a preview.
const PREVIEW_CHARS: usize = 200;
/// Longest attribution, in bytes over all its lines: a longer run of lines is
/// prose, and the cap keeps the look-ahead bounded.
const MAX_ATTRIBUTION: usize = 500;
/// Most lines an attribution is wrapped over (Gmail wraps long ones).
const ATTRIBUTION_LINES: usize = 3;
/// Most lines a header block's fields are read from after its `From:` line.
const HEADER_LINES: usize = 8;
/// Longest line that can be a divider, a forward marker or a mobile signature.
const MAX_MARKER: usize = 120;

/// The new text of a message: its plain text (or, when it has none, its HTML
/// rendered to text) without quoted history and without a trailing
/// signature. `None` when the message has no body.
///
/// A message that is all quote, and a forward, keep their whole text
/// (trimmed); a message that quotes nothing is its text with trailing
/// whitespace trimmed. Line endings are LF in the result whatever they are in
/// the input, and the result is never longer than the body it comes from.
pub fn extracted_text(text: Option<&str>, html: Option<&str>) -> Option<String> {
    let extracted = match text.filter(|t| !t.trim().is_empty()) {
        Some(text) => {
            let text = normalize_newlines(text);
            match scan(&text) {
                Scan::Reply(new) if !new.trim().is_empty() => new,
                Scan::Reply(_) | Scan::Forward => text.trim().to_owned(),
            }
        }
        None => {
            let html = html?;
            let whole = render_html(html, false);
            match scan(&whole) {
                Scan::Forward => whole.trim().to_owned(),
                Scan::Reply(_) => match scan(&render_html(html, true)) {
                    Scan::Reply(new) if !new.trim().is_empty() => new,
                    _ => whole.trim().to_owned(),
                },
            }
        }
    };
    (!extracted.is_empty()).then_some(extracted)
}

/// The first 200 characters of the extracted text, whitespace (newlines
/// included) collapsed to single spaces, trimmed. `None` when empty.
pub fn preview(extracted: Option<&str>) -> Option<String> {
    let mut out = String::new();
    let mut count = 0;
    'words: for word in extracted?.split_whitespace() {
        if count > 0 {
            if count >= PREVIEW_CHARS {
                break;
            }
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= PREVIEW_CHARS {
                break 'words;
            }
            out.push(c);
            count += 1;
        }
    }
    out.truncate(out.trim_end().len());
    (!out.is_empty()).then_some(out)
}

/// HTML rendered as plain text, all of it (quotes kept): what a reply quotes
/// of an original that has no text part.
pub(crate) fn html_to_text(html: &str) -> String {
    render_html(html, false)
}

/// CRLF, and a lone CR, as LF.
fn normalize_newlines(text: &str) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_owned()
    }
}

// ---------------------------------------------------------------------------
// Plain text
// ---------------------------------------------------------------------------

/// What reading a body line by line found.
enum Scan {
    /// The first boundary marks a forward: the whole text is the content.
    Forward,
    /// The new text (possibly empty: the message is all quote).
    Reply(String),
}

/// A line where quoted history begins.
enum Boundary {
    Forward,
    /// An attribution over the lines up to `end` (exclusive).
    Attribution {
        end: usize,
    },
    /// Everything from here down is history.
    Cut,
}

fn scan(text: &str) -> Scan {
    let lines: Vec<&str> = text.split('\n').collect();
    // Each line's header field, read once: header blocks look ahead at them.
    let fields: Vec<Field> = lines.iter().map(|l| field(l)).collect();
    let mut kept: Vec<&str> = Vec::new();
    // Lines were left out since the last kept non-blank line: the blank lines
    // around the gap collapse to one.
    let mut removed = false;
    let mut cut = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_quoted(line) {
            removed = true;
            i += 1;
            continue;
        }
        match boundary(&lines, &fields, i) {
            Some(Boundary::Forward) => return Scan::Forward,
            Some(Boundary::Attribution { end }) if next_text_is_quoted(&lines, end) => {
                removed = true;
                i = end;
                continue;
            }
            Some(Boundary::Attribution { .. } | Boundary::Cut) => {
                cut = true;
                break;
            }
            None => {}
        }
        if is_blank(line) {
            if removed && kept.last().is_none_or(|l| is_blank(l)) {
                i += 1;
                continue;
            }
        } else {
            removed = false;
        }
        kept.push(line);
        i += 1;
    }
    if cut {
        // Outlook draws a rule (a line of underscores) above its header block.
        while kept.last().is_some_and(|l| is_blank(l) || is_rule(l)) {
            kept.pop();
        }
    }
    strip_signature(&mut kept);
    Scan::Reply(kept.join("\n").trim_end().to_owned())
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// A `>` line: quoted by the replying client.
fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// A line of underscores or dashes (five or more), as drawn above a header block.
fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 5 && (t.bytes().all(|b| b == b'_') || t.bytes().all(|b| b == b'-'))
}

/// Whether the first non-blank line from `from` on is a `>` line.
fn next_text_is_quoted(lines: &[&str], from: usize) -> bool {
    lines
        .get(from..)
        .unwrap_or_default()
        .iter()
        .find(|l| !is_blank(l))
        .is_some_and(|l| is_quoted(l))
}

fn boundary(lines: &[&str], fields: &[Field], i: usize) -> Option<Boundary> {
    let line = lines[i];
    if is_blank(line) {
        return None;
    }
    match marker(line) {
        Some(Marker::Forward) => return Some(Boundary::Forward),
        Some(Marker::Original) => {
            // Outlook and Samsung's mail write the same divider over replies
            // and forwards; a forwarded quoted subject is the only hint.
            return Some(if subject_is_forward(lines, fields, i + 1) {
                Boundary::Forward
            } else {
                Boundary::Cut
            });
        }
        None => {}
    }
    if run_on_attribution(line) {
        return Some(Boundary::Cut);
    }
    if let Some(forward) = header_block(lines, fields, i) {
        return Some(if forward {
            Boundary::Forward
        } else {
            Boundary::Cut
        });
    }
    attribution(lines, i).map(|end| Boundary::Attribution { end })
}

// --- Dividers and forward markers -------------------------------------------

enum Marker {
    /// Gmail's "---------- Forwarded message ---------", Apple Mail's "Begin
    /// forwarded message:", Thunderbird's "-------- Forwarded Message --------".
    Forward,
    /// "-----Original Message-----" and its translations.
    Original,
}

/// What a dashed divider says, lower case, for a forward.
const FORWARD_DIVIDERS: &[&str] = &[
    "forwarded message",
    "weitergeleitete nachricht",
    "message transféré",
    "mensaje reenviado",
    "mensagem encaminhada",
    "messaggio inoltrato",
    "doorgestuurd bericht",
    "転送されたメッセージ",
    "转发邮件",
    "已转发邮件",
    "轉寄郵件",
];

/// What a dashed divider says, lower case, above a quoted original.
const ORIGINAL_DIVIDERS: &[&str] = &[
    "original message",
    "ursprüngliche nachricht",
    "original-nachricht",
    "message d'origine",
    "message d’origine",
    "mensaje original",
    "mensagem original",
    "messaggio originale",
    "oorspronkelijk bericht",
    "元のメッセージ",
    "原始邮件",
    "原始郵件",
];

/// Apple Mail's forward line, lower case, without its colon.
const BEGIN_FORWARDED: &[&str] = &[
    "begin forwarded message",
    "anfang der weitergeleiteten nachricht",
    "début du message réexpédié",
    "inicio del mensaje reenviado",
    "início da mensagem reencaminhada",
    "inizio messaggio inoltrato",
    "begin doorgestuurd bericht",
    "転送されたメッセージ",
    "以下是转发的邮件",
    "以下为转发的邮件",
];

fn marker(line: &str) -> Option<Marker> {
    let t = line.trim();
    if let Some(rest) = t.strip_prefix("---") {
        // Yahoo runs the forwarded fields on after its divider, on one line:
        // "----- Forwarded Message ----- From: …To: …".
        let rest = rest.trim_start_matches('-');
        let head = &rest[..rest.floor_char_boundary(MAX_MARKER)];
        let inner = head.find("---").map_or(head, |end| &head[..end]);
        let inner = inner.trim().to_lowercase();
        if FORWARD_DIVIDERS.iter().any(|w| inner.contains(w)) {
            return Some(Marker::Forward);
        }
        if ORIGINAL_DIVIDERS.iter().any(|w| inner.contains(w)) {
            return Some(Marker::Original);
        }
        return None;
    }
    if t.len() > MAX_MARKER {
        return None;
    }
    let body = t.strip_suffix([':', '：'])?.trim_end().to_lowercase();
    BEGIN_FORWARDED
        .contains(&body.as_str())
        .then_some(Marker::Forward)
}

// --- Header blocks ----------------------------------------------------------

/// The sender field that opens a header block, lower case.
const FROM_KEYS: &[&str] = &[
    "from",
    "de",
    "von",
    "van",
    "da",
    "差出人",
    "发件人",
    "寄件者",
    "寄件人",
];

/// The other fields of a header block, lower case.
const HEADER_KEYS: &[&str] = &[
    // English
    "sent",
    "date",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    // French
    "envoyé",
    "envoyé le",
    "à",
    "objet",
    // German
    "gesendet",
    "datum",
    "an",
    "betreff",
    // Spanish, Portuguese
    "enviado",
    "enviado el",
    "enviada",
    "enviada em",
    "fecha",
    "para",
    "asunto",
    "data",
    "assunto",
    // Italian
    "inviato",
    "a",
    "oggetto",
    // Dutch
    "verzonden",
    "aan",
    "onderwerp",
    // Japanese
    "送信日時",
    "日付",
    "宛先",
    "件名",
    // Chinese
    "发送时间",
    "时间",
    "日期",
    "收件人",
    "抄送",
    "主题",
    "寄件日期",
    "收件者",
    "副本",
    "主旨",
];

/// The subject field, lower case.
const SUBJECT_KEYS: &[&str] = &[
    "subject",
    "objet",
    "betreff",
    "asunto",
    "assunto",
    "oggetto",
    "onderwerp",
    "件名",
    "主题",
    "主旨",
];

/// A forwarded subject's prefix, lower case: Fwd, FW, WG (de), TR (fr), RV
/// (es), ENC (pt), I (it), Doorst (nl), 転送, 转发, 轉寄.
const FORWARD_PREFIXES: &[&str] = &[
    "fwd:",
    "fw:",
    "wg:",
    "tr:",
    "rv:",
    "enc:",
    "i:",
    "doorst:",
    "転送:",
    "転送：",
    "转发:",
    "转发：",
    "轉寄:",
    "轉寄：",
];

/// A `Key: value` line's key and its value. Outlook's plain text
/// of an HTML reply bolds keys (`*From:*`), French puts a space before the
/// colon, CJK clients write a full-width colon.
fn header_field(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start().trim_start_matches('*');
    let (pos, colon) = t
        .char_indices()
        .take(20)
        .find(|(_, c)| *c == ':' || *c == '：')?;
    let key = t[..pos].trim_matches(|c: char| c.is_whitespace() || c == '*');
    if key.is_empty() {
        return None;
    }
    let value =
        t[pos + colon.len_utf8()..].trim_start_matches(|c: char| c.is_whitespace() || c == '*');
    Some((key, value))
}

/// Whether `key` is one of `keys` (lower case), ignoring case. This runs on
/// most lines of a body, so an ASCII key (the usual one) is compared in place.
fn key_in(key: &str, keys: &[&str]) -> bool {
    if key.is_ascii() {
        keys.iter().any(|k| k.eq_ignore_ascii_case(key))
    } else {
        let key = key.to_lowercase();
        keys.contains(&key.as_str())
    }
}

/// What a line is as a header field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    /// Not a header field.
    None,
    /// The sender, which opens a header block.
    From,
    /// The subject; `forward` when it is a forwarded one.
    Subject { forward: bool },
    /// Another field: date, recipients.
    Other,
}

fn field(line: &str) -> Field {
    match header_field(line) {
        Some((key, _)) if key_in(key, FROM_KEYS) => Field::From,
        Some((key, value)) if key_in(key, SUBJECT_KEYS) => Field::Subject {
            forward: is_forward_subject(value),
        },
        Some((key, _)) if key_in(key, HEADER_KEYS) => Field::Other,
        _ => Field::None,
    }
}

/// A header block opening at line `i` (its `From:` line, then at least two
/// other fields before a blank line): `Some(forward)` where forward says
/// whether its subject is a forwarded one.
fn header_block(lines: &[&str], fields: &[Field], i: usize) -> Option<bool> {
    if fields[i] != Field::From {
        return None;
    }
    let mut count = 0;
    let mut forward = false;
    // A long address list wraps: a line without a field continues one.
    let ahead = (i + 1)..lines.len().min(i + 1 + HEADER_LINES);
    for (line, field) in lines[ahead.clone()].iter().zip(&fields[ahead]) {
        if is_blank(line) {
            break;
        }
        match field {
            Field::Subject { forward: f } => {
                count += 1;
                forward |= f;
            }
            Field::Other => count += 1,
            Field::From | Field::None => {}
        }
    }
    (count >= 2).then_some(forward)
}

/// Whether the header fields under a divider at `from` name a forwarded subject.
fn subject_is_forward(lines: &[&str], fields: &[Field], from: usize) -> bool {
    let mut seen_field = false;
    let ahead = from.min(lines.len())..lines.len().min(from + HEADER_LINES + 2);
    for (line, field) in lines[ahead.clone()].iter().zip(&fields[ahead]) {
        if is_blank(line) {
            if seen_field {
                break;
            }
            continue;
        }
        match field {
            Field::Subject { forward } => return *forward,
            Field::None => {}
            Field::From | Field::Other => seen_field = true,
        }
    }
    false
}

fn is_forward_subject(value: &str) -> bool {
    let start = value.chars().take(8).collect::<String>().to_lowercase();
    FORWARD_PREFIXES.iter().any(|p| start.starts_with(p))
}

// --- Attributions -----------------------------------------------------------

/// The attribution starting at line `i`, over one to three lines: the index
/// after its last line.
fn attribution(lines: &[&str], i: usize) -> Option<usize> {
    let mut len = 0;
    let window = &lines[i..lines.len().min(i + ATTRIBUTION_LINES)];
    for (k, line) in window.iter().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('>') {
            return None;
        }
        len += t.len() + 1;
        if len > MAX_ATTRIBUTION {
            return None;
        }
        if t.ends_with([':', '：']) {
            let window: Vec<&str> = lines[i..=i + k].iter().map(|l| l.trim()).collect();
            if is_attribution(&window.join(" "), k > 0) {
                return Some(i + k + 1);
            }
        }
    }
    None
}

/// An English attribution with the quoted text run on after it, on one line,
/// as Yahoo Mail for Android writes it: "On Mon, 4 Mar 2024 at 9:15, Jane
/// Doe<jane@example.com> wrote:   Can you give me a ride?".
fn run_on_attribution(line: &str) -> bool {
    let t = line.trim_start();
    let head = &t[..t.floor_char_boundary(MAX_ATTRIBUTION)];
    if !head.get(..3).is_some_and(|w| w.eq_ignore_ascii_case("on ")) {
        return false;
    }
    head.find("wrote:").is_some_and(|end| {
        let end = end + "wrote:".len();
        !t[end..].trim().is_empty() && is_attribution(&head[..end], false)
    })
}

/// Whether `s` (ending with a colon) reads as a reply's attribution line.
/// Each needs a time of day (`9:15`) or an address, and the Latin-script ones
/// their opening word too unless they name an address: "Am Montag um 10 Uhr
/// schrieb er:" is prose. A wrapped one must name an address: Gmail wraps
/// only attributions made long by one.
fn is_attribution(s: &str, wrapped: bool) -> bool {
    let has_at = s.contains('@');
    if wrapped && !has_at {
        return false;
    }
    let has_time = s
        .as_bytes()
        .windows(3)
        .any(|w| w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit());
    if !has_time && !has_at && !s.contains("さんは書きました") {
        return false;
    }
    let body = s.trim_end_matches([':', '：']).trim_end();
    let lower = body.to_lowercase();
    let opens = |word: &str| lower.starts_with(word) && has_time;
    // Closing phrase, the word that opens it in that language.
    const LATIN: &[(&str, &str)] = &[
        ("wrote", "on "),
        ("a écrit", "le "),
        ("escribió", "el "),
        ("escreveu", "em "),
        ("ha scritto", "il "),
        ("schrieb", "am "),
        ("schreef", "op "),
    ];
    for (closing, opening) in LATIN {
        if lower.ends_with(closing) && (has_at || opens(opening)) {
            return true;
        }
    }
    // German and Dutch put the name after the verb: "Am … schrieb Name <a@b>:".
    if (opens("am ") && lower.contains(" schrieb "))
        || (opens("op ") && lower.contains(" schreef "))
    {
        return true;
    }
    // Chinese "…写道：", Japanese "…が書きました：", "…さんは書きました:",
    // Apple Mail's "…のメール:".
    if body.ends_with("写道") || body.ends_with("寫道") || body.ends_with("書きました") {
        return true;
    }
    if body.ends_with("のメール") {
        return has_at;
    }
    // Gmail in Japanese: "2024年3月4日(月) 9:15 山田太郎 <taro@example.jp>:".
    body.ends_with('>')
        && has_at
        && body.contains('年')
        && body.starts_with(|c: char| c.is_ascii_digit())
}

// --- Signatures -------------------------------------------------------------

/// A mobile client's signature line, lower case prefix.
const MOBILE_SIGNATURES: &[&str] = &[
    "sent from my ",
    "sent from yahoo mail",
    "sent from outlook",
    "sent from mail for windows",
    "get outlook for ios",
    "get outlook for android",
    "envoyé de mon ",
    "enviado desde mi ",
    "enviado do meu ",
    "enviado de meu ",
    "inviato da ",
    "verzonden vanaf mijn ",
    "verzonden met ",
    "iphoneから送信",
    "发自我的",
];

fn is_mobile_signature(line: &str) -> bool {
    let t = line.trim();
    if t.len() > MAX_MARKER {
        return false;
    }
    let lower = t.to_lowercase();
    MOBILE_SIGNATURES.iter().any(|p| lower.starts_with(p))
        || (lower.starts_with("von meinem ") && lower.contains("gesendet"))
}

/// Drops a signature below the last `-- ` delimiter line, then trailing
/// mobile signatures.
fn strip_signature(kept: &mut Vec<&str>) {
    if let Some(pos) = kept.iter().rposition(|l| *l == "-- " || *l == "--") {
        kept.truncate(pos);
    }
    loop {
        while kept.last().is_some_and(|l| is_blank(l)) {
            kept.pop();
        }
        match kept.last() {
            Some(line) if is_mobile_signature(line) => {
                kept.pop();
            }
            _ => break,
        }
    }
}

// ---------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------

/// An element's attributes that say whether it holds quoted history.
#[derive(Default)]
struct Attributes<'a> {
    class: &'a str,
    id: &'a str,
    kind: &'a str,
}

/// One tag, from its `<` to the byte after its `>`.
struct Tag<'a> {
    name: String,
    closing: bool,
    self_closing: bool,
    attributes: Attributes<'a>,
    end: usize,
}

/// What a start tag does to the rendering without quotes.
enum Quote {
    /// The element is quoted history: skip it.
    Element,
    /// Quoted history starts here and runs to the end of the document.
    Rest,
}

fn has_class(attributes: &Attributes<'_>, wanted: impl Fn(&str) -> bool) -> bool {
    attributes.class.split_ascii_whitespace().any(wanted)
}

fn quote_kind(tag: &Tag<'_>) -> Option<Quote> {
    let a = &tag.attributes;
    // Outlook on the web: an empty `div#appendonsend`, a rule, then the
    // header block in `div#divRplyFwdMsg` and the quoted message after it.
    if a.id.eq_ignore_ascii_case("appendonsend") || a.id.eq_ignore_ascii_case("divRplyFwdMsg") {
        return Some(Quote::Rest);
    }
    let quoted = match tag.name.as_str() {
        // Gmail (`gmail_quote`, also `gmail_quote_container`), Yahoo
        // (`yahoo_quoted`, prefixed `ydp…yahoo_quoted` in replies to replies),
        // Thunderbird's attribution, new Outlook's quoted message.
        "div" => {
            has_class(a, |c| {
                c.eq_ignore_ascii_case("gmail_quote")
                    || c.eq_ignore_ascii_case("gmail_quote_container")
                    || c.to_ascii_lowercase().ends_with("yahoo_quoted")
                    || c.eq_ignore_ascii_case("moz-cite-prefix")
            }) || a.id.to_ascii_lowercase().starts_with("yahoo_quoted")
                || a.id
                    .eq_ignore_ascii_case("mail-editor-reference-message-container")
        }
        // Apple Mail and Thunderbird (`type="cite"`), Gmail.
        "blockquote" => {
            a.kind.eq_ignore_ascii_case("cite")
                || has_class(a, |c| c.eq_ignore_ascii_case("gmail_quote"))
        }
        _ => false,
    };
    quoted.then_some(Quote::Element)
}

/// Reads the tag whose `<` is at `i`, or `None` when that `<` opens no tag.
fn parse_tag<'a>(html: &'a str, i: usize) -> Option<Tag<'a>> {
    let mut attributes = Attributes::default();
    let scanned = scan_tag(html, i, |attr, value| {
        if attr.eq_ignore_ascii_case("class") {
            attributes.class = value;
        } else if attr.eq_ignore_ascii_case("id") {
            attributes.id = value;
        } else if attr.eq_ignore_ascii_case("type") {
            attributes.kind = value;
        }
    })?;
    Some(Tag {
        name: scanned.name,
        closing: scanned.closing,
        self_closing: scanned.self_closing,
        attributes,
        end: scanned.end,
    })
}

/// A tag as [`scan_tag`] reads it.
#[derive(Debug)]
pub(crate) struct ScannedTag {
    /// Its name, lowercased.
    pub(crate) name: String,
    /// `</name ...>`.
    pub(crate) closing: bool,
    /// It ends with `/>`.
    pub(crate) self_closing: bool,
    /// Its `>` was found (an unclosed tag at the end of the HTML is not).
    pub(crate) closed: bool,
    /// The index after it.
    pub(crate) end: usize,
}

/// Scans the tag whose `<` is at `i`, giving each attribute's name and
/// (unquoted, undecoded) value to `attribute`; `None` when that `<` opens
/// no tag. Linear in the tag's length. The one tag scanner of the crate:
/// the quote rules here and the links of `findings` both read tags with it.
pub(crate) fn scan_tag<'a>(
    html: &'a str,
    i: usize,
    mut attribute: impl FnMut(&'a str, &'a str),
) -> Option<ScannedTag> {
    let b = html.as_bytes();
    let mut j = i + 1;
    let closing = b.get(j) == Some(&b'/');
    if closing {
        j += 1;
    }
    if !b.get(j).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let name_start = j;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-' || b[j] == b':') {
        j += 1;
    }
    let name = html[name_start..j].to_ascii_lowercase();
    let mut self_closing = false;
    let mut closed = false;
    loop {
        while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b'/') {
            self_closing = b[j] == b'/';
            j += 1;
        }
        if j >= b.len() {
            break;
        }
        if b[j] == b'>' {
            j += 1;
            closed = true;
            break;
        }
        self_closing = false;
        let attr_start = j;
        while j < b.len() && !b[j].is_ascii_whitespace() && !matches!(b[j], b'=' | b'>' | b'/') {
            j += 1;
        }
        let attr_end = j;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let mut value = "";
        if b.get(j) == Some(&b'=') {
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let (start, end) = match b.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    let start = j + 1;
                    let end = find_byte(b, start, q).unwrap_or(b.len());
                    j = (end + 1).min(b.len());
                    (start, end)
                }
                _ => {
                    let start = j;
                    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                        j += 1;
                    }
                    (start, j)
                }
            };
            value = html.get(start..end).unwrap_or("");
        }
        attribute(html.get(attr_start..attr_end).unwrap_or(""), value);
    }
    Some(ScannedTag {
        name,
        closing,
        self_closing,
        closed,
        end: j,
    })
}

pub(crate) fn find_byte(b: &[u8], from: usize, byte: u8) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| c == byte)
        .map(|p| p + from)
}

/// The index after the end tag of the raw-text element `name` (style,
/// script, title) whose content starts at `from`.
pub(crate) fn skip_raw_text(b: &[u8], from: usize, name: &str) -> usize {
    let mut j = from;
    while let Some(p) = find_byte(b, j, b'<') {
        let after = p + 2 + name.len();
        if b.get(p + 1) == Some(&b'/')
            && b.get(p + 2..after)
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        {
            return find_byte(b, after, b'>').map_or(b.len(), |q| q + 1);
        }
        j = p + 1;
    }
    b.len()
}

/// The index after a comment, `<!…>` or `<?…>` at `i`, if one starts there.
pub(crate) fn skip_markup(html: &str, i: usize) -> Option<usize> {
    let b = html.as_bytes();
    if b[i..].starts_with(b"<!--") {
        return Some(html[i + 4..].find("-->").map_or(b.len(), |p| i + 4 + p + 3));
    }
    if matches!(b.get(i + 1), Some(b'!' | b'?')) {
        return Some(find_byte(b, i, b'>').map_or(b.len(), |p| p + 1));
    }
    None
}

/// Renders `html` to plain text, one line per block, whitespace collapsed as
/// a browser would. With `drop_quotes`, the quote containers of Gmail,
/// Outlook, Apple Mail, Yahoo and Thunderbird are left out. The text is never
/// longer than `html`: every tag writes at most two bytes, and an entity
/// decodes to fewer bytes than it is written in.
fn render_html(html: &str, drop_quotes: bool) -> String {
    let b = html.as_bytes();
    let mut text = Text::default();
    // The quote element being skipped and how deep inside it we are.
    let mut skipping: Option<(String, usize)> = None;
    let mut in_head = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            let end = find_byte(b, i, b'<').unwrap_or(b.len());
            if skipping.is_none() && !in_head {
                text.write(&html[i..end]);
            }
            i = end;
            continue;
        }
        if let Some(end) = skip_markup(html, i) {
            i = end;
            continue;
        }
        let Some(tag) = parse_tag(html, i) else {
            if skipping.is_none() && !in_head {
                text.write("<");
            }
            i += 1;
            continue;
        };
        i = tag.end;
        if !tag.closing
            && !tag.self_closing
            && matches!(tag.name.as_str(), "style" | "script" | "title" | "textarea")
        {
            i = skip_raw_text(b, i, &tag.name);
            continue;
        }
        if let Some((name, depth)) = &mut skipping {
            if *name == tag.name {
                if tag.closing {
                    *depth -= 1;
                } else if !tag.self_closing {
                    *depth += 1;
                }
                if *depth == 0 {
                    skipping = None;
                }
            }
            continue;
        }
        match (tag.name.as_str(), tag.closing) {
            ("head", closing) => {
                in_head = !closing;
                continue;
            }
            ("body", false) => {
                in_head = false;
                continue;
            }
            _ => {}
        }
        if in_head {
            continue;
        }
        if drop_quotes && !tag.closing {
            match quote_kind(&tag) {
                Some(Quote::Rest) => break,
                Some(Quote::Element) if !tag.self_closing => {
                    skipping = Some((tag.name, 1));
                    continue;
                }
                Some(Quote::Element) => continue,
                None => {}
            }
        }
        text.tag(&tag);
    }
    let mut out = text.out;
    out.truncate(out.trim_end().len());
    out
}

/// Text being rendered from HTML.
#[derive(Default)]
struct Text {
    out: String,
    /// The current line has something on it.
    content: bool,
    /// Whitespace was seen since the last character on the line.
    space: bool,
    /// Inside `<pre>`: whitespace is kept.
    pre: usize,
    /// The open `<p>` is Outlook's one-line paragraph (`p.MsoNormal`).
    line_paragraph: bool,
}

impl Text {
    /// Writes a text node: entities decoded, whitespace collapsed.
    fn write(&mut self, mut s: &str) {
        while let Some(amp) = s.find('&') {
            self.chars(&s[..amp]);
            let rest = &s[amp..];
            let name_len = rest
                .bytes()
                .skip(1)
                .take(32)
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'#')
                .count();
            if name_len > 0 && rest.as_bytes().get(1 + name_len) == Some(&b';') {
                let mut decoded = String::new();
                add_entity(&mut decoded, &rest.as_bytes()[..name_len + 2]);
                self.chars(&decoded);
                s = &rest[name_len + 2..];
            } else {
                self.chars("&");
                s = &rest[1..];
            }
        }
        self.chars(s);
    }

    fn chars(&mut self, s: &str) {
        for c in s.chars() {
            if self.pre > 0 {
                match c {
                    '\n' => self.newline(),
                    '\r' => {}
                    c => self.push(c),
                }
            } else if c.is_ascii_whitespace() {
                self.space = self.content;
            } else {
                self.push(c);
            }
        }
    }

    fn push(&mut self, c: char) {
        if self.space {
            self.out.push(' ');
            self.space = false;
        }
        // A non-breaking space is a space to a reader (and to the line rules).
        self.out.push(if c == '\u{a0}' { ' ' } else { c });
        self.content = true;
    }

    fn newline(&mut self) {
        self.out.truncate(self.out.trim_end_matches(' ').len());
        self.out.push('\n');
        self.content = false;
        self.space = false;
    }

    /// Ends the current line, if it has anything on it.
    fn block(&mut self) {
        if self.content {
            self.newline();
        }
        self.space = false;
    }

    /// Ends the current line and leaves a blank one.
    fn paragraph(&mut self) {
        self.block();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn tag(&mut self, tag: &Tag<'_>) {
        match tag.name.as_str() {
            "br" => self.newline(),
            // Outlook writes one `p.MsoNormal` per line, with no margin. A `p`
            // cannot hold another, so the open one is the one an end tag ends.
            "p" => {
                if !tag.closing {
                    self.line_paragraph =
                        has_class(&tag.attributes, |c| c.eq_ignore_ascii_case("MsoNormal"));
                }
                if self.line_paragraph {
                    self.block();
                } else {
                    self.paragraph();
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => self.paragraph(),
            "pre" => {
                self.block();
                if tag.closing {
                    self.pre = self.pre.saturating_sub(1);
                } else if !tag.self_closing {
                    self.pre += 1;
                }
            }
            "li" => {
                self.block();
                if !tag.closing {
                    self.push('-');
                    self.space = true;
                }
            }
            "td" | "th" if tag.closing => self.space = self.content,
            "div" | "tr" | "ul" | "ol" | "table" | "blockquote" | "hr" | "dl" | "dt" | "dd"
            | "section" | "article" | "header" | "footer" | "address" | "center" | "form"
            | "fieldset" | "figure" | "figcaption" | "main" | "nav" | "aside" => self.block(),
            _ => {}
        }
    }
}

/// Appends the character an HTML character reference (`&amp;`, `&#38;`,
/// `&#x26;`, the whole token) stands for. The references mail uses most
/// (numeric ones, and `amp`, `lt`, `gt`, `quot`, `apos`, `nbsp`) are
/// decoded here: mail-parser's table of named ones, a perfect hash, finds
/// none of them once compiled for wasm32 (seen on workerd: `&amp;` in an
/// href stayed as it was), so it is asked only for the rest.
pub(crate) fn add_entity(out: &mut String, token: &[u8]) {
    let name = token
        .strip_prefix(b"&")
        .and_then(|t| t.strip_suffix(b";"))
        .unwrap_or(&[]);
    let known = match name {
        b"amp" | b"AMP" => Some('&'),
        b"lt" | b"LT" => Some('<'),
        b"gt" | b"GT" => Some('>'),
        b"quot" | b"QUOT" => Some('"'),
        b"apos" => Some('\''),
        b"nbsp" => Some('\u{a0}'),
        [b'#', b'x' | b'X', hex @ ..] => numeric(hex, 16),
        [b'#', decimal @ ..] => numeric(decimal, 10),
        _ => None,
    };
    match known {
        Some(c) => out.push(c),
        None => add_html_token(out, token, false),
    }
}

fn numeric(digits: &[u8], radix: u32) -> Option<char> {
    let code = u32::from_str_radix(std::str::from_utf8(digits).ok()?, radix).ok()?;
    Some(
        char::from_u32(code)
            .filter(|c| *c != '\0')
            .unwrap_or('\u{fffd}'),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_references_mail_uses_decode_without_the_named_table() {
        let decode = |token: &str| {
            let mut out = String::new();
            add_entity(&mut out, token.as_bytes());
            out
        };
        for (token, want) in [
            ("&amp;", "&"),
            ("&AMP;", "&"),
            ("&lt;", "<"),
            ("&gt;", ">"),
            ("&quot;", "\""),
            ("&apos;", "'"),
            ("&nbsp;", "\u{a0}"),
            ("&#38;", "&"),
            ("&#x26;", "&"),
            ("&#X1F600;", "\u{1F600}"),
            ("&#0;", "\u{fffd}"),
            ("&#xD800;", "\u{fffd}"),
            ("&#99999999999;", "&#99999999999;"),
            ("&eacute;", "\u{e9}"),
        ] {
            assert_eq!(decode(token), want, "{token}");
        }
    }

    fn text(body: &str) -> Option<String> {
        extracted_text(Some(body), None)
    }

    #[test]
    fn no_body_is_none() {
        assert_eq!(extracted_text(None, None), None);
        assert_eq!(extracted_text(Some(""), None), None);
        assert_eq!(extracted_text(Some(" \r\n\t\n"), None), None);
        assert_eq!(extracted_text(None, Some("")), None);
        assert_eq!(
            extracted_text(
                None,
                Some("<html><head><title>x</title></head><body> </body></html>")
            ),
            None
        );
    }

    #[test]
    fn nothing_quoted_is_the_text_trimmed_at_the_end() {
        let body = "\nHi Jane,\n\n\n  Indented line.\nOn the train: 3 stops.\n\nBob  \n\n";
        assert_eq!(text(body).as_deref(), Some(body.trim_end()));
        let crlf = body.replace('\n', "\r\n");
        assert_eq!(text(&crlf).as_deref(), Some(body.trim_end()));
    }

    #[test]
    fn the_text_part_wins_over_the_html() {
        assert_eq!(
            extracted_text(Some("plain"), Some("<p>html</p>")).as_deref(),
            Some("plain")
        );
        assert_eq!(
            extracted_text(Some("  \n"), Some("<p>html</p>")).as_deref(),
            Some("html")
        );
    }

    #[test]
    fn a_quote_is_dropped_and_the_blank_lines_around_it_collapse() {
        let body = "Yes.\n\n> Tuesday?\n\n> Really?\n\nSure.\n";
        assert_eq!(text(body).as_deref(), Some("Yes.\n\nSure."));
    }

    #[test]
    fn all_quote_keeps_the_whole_text() {
        let body = "\n> Only a quote\n> here\n\n";
        assert_eq!(text(body).as_deref(), Some("> Only a quote\n> here"));
    }

    #[test]
    fn an_attribution_needs_a_date_or_an_address() {
        assert_eq!(
            text("On reflection, I wrote:\n> x").as_deref(),
            Some("On reflection, I wrote:")
        );
        assert_eq!(
            text("Hi\nOn 3 May, Jo wrote:\nquoted").as_deref(),
            Some("Hi\nOn 3 May, Jo wrote:\nquoted")
        );
        assert_eq!(
            text("Hi\nOn 3 May 2024, at 10:02, Jo wrote:\nquoted").as_deref(),
            Some("Hi")
        );
    }

    #[test]
    fn html_blocks_become_lines() {
        let html = "<div dir=\"ltr\">Hi&nbsp;Jane,<div><br></div><div>A &amp; B</div></div>\
                    <p>Para one</p><p>Para&#32;two</p><ul><li>x</li><li>y</li></ul>";
        assert_eq!(
            extracted_text(None, Some(html)).as_deref(),
            Some("Hi Jane,\n\nA & B\n\nPara one\n\nPara two\n\n- x\n- y")
        );
    }

    /// A mebibyte of what each rule looks at, as text and as HTML: a rule
    /// that looked back or ahead without bound would not finish.
    #[test]
    fn a_mebibyte_of_anything_is_read_in_one_pass() {
        let mib = 1 << 20;
        let bodies = [
            "On Mon, 4 Mar 2024 at 9:15 Jane <j@x.com> wrote:\n\n".repeat(mib / 51),
            "On Mon, 4 Mar 2024 at 9:15 Jane <j@x.com>\n".repeat(mib / 43),
            "From: x\n".repeat(mib / 8),
            "-----Original Message-----\n".repeat(mib / 27),
            " ".repeat(mib) + "\n",
            "<div class=\"gmail_quote\">".repeat(mib / 25),
            "<".repeat(mib),
            "&amp".repeat(mib / 4),
            format!("<div class=\"{}", "x ".repeat(mib / 2)),
        ];
        for body in &bodies {
            for out in [
                extracted_text(Some(body), None),
                extracted_text(None, Some(body)),
            ] {
                assert!(out.is_none_or(|out| out.len() <= body.len()));
            }
        }
    }

    #[test]
    fn preview_collapses_whitespace() {
        assert_eq!(
            preview(Some("  Hi\r\n\n  there,\tfriend \n")).as_deref(),
            Some("Hi there, friend")
        );
        assert_eq!(preview(None), None);
        assert_eq!(preview(Some("")), None);
        assert_eq!(preview(Some(" \n\t ")), None);
    }

    #[test]
    fn preview_cuts_at_200_characters_on_a_char_boundary() {
        let long = "é".repeat(150) + " " + &"日本".repeat(100);
        let p = preview(Some(&long)).expect("a preview");
        assert_eq!(p.chars().count(), 200);
        assert!(p.starts_with(&"é".repeat(150)));
        assert!(p.ends_with(&("日本".repeat(24) + "日")));
        // A cut right after a space leaves no trailing space.
        let spaced = "a".repeat(199) + "  b";
        assert_eq!(preview(Some(&spaced)), Some("a".repeat(199)));
        let short = "x".repeat(200);
        assert_eq!(preview(Some(&short)), Some(short.clone()));
        // A word ending right at the cut is not followed by more.
        assert_eq!(preview(Some(&(short.clone() + " more words"))), Some(short));
    }
}

/// Properties over arbitrary bodies (proptest does not build for wasm32).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Bodies made of the pieces the rules look at, so that the rules fire.
    fn mail_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just("\r".to_owned()),
            Just("> ".to_owned()),
            Just("-- \n".to_owned()),
            Just("On Mon, 4 Mar 2024 at 09:15, Jane <jane@example.com> wrote:".to_owned()),
            Just("On 4 Mar".to_owned()),
            Just("wrote:".to_owned()),
            Just("Am 4. März schrieb Hans <h@x.de>:".to_owned()),
            Just("张伟 写道：".to_owned()),
            Just("2024年3月4日 山田 <t@x.jp>:".to_owned()),
            Just("From: Jane\nSent: Monday\nTo: Bob\nSubject: FW: x\n".to_owned()),
            Just("De : Jean\nEnvoyé : lundi\nÀ : Bob\nObjet : RE: x\n".to_owned()),
            Just("-----Original Message-----".to_owned()),
            Just("---------- Forwarded message ---------".to_owned()),
            Just("Begin forwarded message:".to_owned()),
            Just("________________________________".to_owned()),
            Just("Sent from my iPhone".to_owned()),
            Just("<div class=\"gmail_quote\">".to_owned()),
            Just("<blockquote type=\"cite\">".to_owned()),
            Just("</div>".to_owned()),
            Just("</blockquote>".to_owned()),
            Just("<div id=\"divRplyFwdMsg\">".to_owned()),
            Just("<br>".to_owned()),
            Just("<p>".to_owned()),
            Just("<li>".to_owned()),
            Just("<pre>".to_owned()),
            Just("<style>".to_owned()),
            Just("<!--".to_owned()),
            Just("&nbsp;".to_owned()),
            Just("&#x1F600;".to_owned()),
            Just("&#xD800;".to_owned()),
            Just("&amp".to_owned()),
            Just("<a href='x".to_owned()),
            "[ a-z<>/=\"'&;#:\u{a0}é日]{0,12}",
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn check(body: &str) -> Result<(), TestCaseError> {
        if let Some(out) = extracted_text(Some(body), None) {
            prop_assert!(out.len() <= body.len(), "text {:?} gave {:?}", body, out);
            prop_assert!(!out.contains('\r'));
            let crlf = body
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .replace('\n', "\r\n");
            prop_assert_eq!(extracted_text(Some(&crlf), None), Some(out.clone()));
            let p = preview(Some(&out));
            prop_assert!(p.is_some_and(|p| p.chars().count() <= PREVIEW_CHARS));
        }
        if let Some(out) = extracted_text(None, Some(body)) {
            prop_assert!(out.len() <= body.len(), "html {:?} gave {:?}", body, out);
            prop_assert!(!out.contains('\r'));
        }
        Ok(())
    }

    proptest! {
        /// Arbitrary strings: no panic, and never more text than was given.
        #[test]
        fn any_string(body in any::<String>()) {
            check(&body)?;
        }

        /// Strings built from what the rules look for.
        #[test]
        fn mail_like_strings(body in mail_like()) {
            check(&body)?;
        }
    }
}
