//! One-time codes and links in a message: what an agent reading a
//! verification, magic-link or password-reset mail wants from it.
//!
//! **Untrusted.** Everything found here is written by the sender. A code is
//! a guess over the sender's words and a link is the sender's URL, kept
//! exactly (tracking wrappers are never unwrapped or followed): an agent must
//! treat both as it treats the body itself.
//!
//! Bounds: at most [`MAX_CODES`] codes and [`MAX_LINKS`] links; a link's URL
//! is at most [`MAX_URL`] bytes (longer ones are skipped), its text at most
//! [`MAX_LINK_TEXT`] characters, a code's context at most [`MAX_CONTEXT`]
//! characters.
//!
//! **Codes.** A code is 4–10 characters: digits (`483920`), upper-case
//! letters and digits with at least one digit (`A7K93Q`), two such groups
//! joined by a hyphen (`G-123456`, `A7K-93Q`, `123-456`), two equal digit
//! groups joined by one space (`123 456`, `1234 5678`; only with a keyword),
//! single digits joined by spaces, as an HTML table of one digit a cell
//! renders (`4 8 3 9 2 0`, listed as `483920`; only with a keyword close by),
//! or two letter groups (`ABC-DEF`; only right after a keyword). Letters
//! and digits with lower-case letters (`tPq-8vW2`) also count only right
//! after a keyword, as do years and dates. The value is kept as written
//! (but for the one-digit-a-cell form). A candidate counts when a keyword (code,
//! verification, OTP, PIN, one-time, passcode, enter, and their German,
//! French, Spanish, Portuguese, Italian, Dutch, Chinese, Japanese and Korean
//! forms) labels it on its line, before ("Your code is 483920") or after
//! ("483920 is your code"); when it stands alone on its line under or over a
//! line with a keyword, or under a keyword in the subject; or when it is the
//! only candidate of a very short mail (at most 300 characters on six lines)
//! and a 6–8 digit number ending its line. It never counts when the nearest label
//! before it names something else (order, invoice, tracking, reference,
//! customer, phone, zip, a currency, `#`, a promo code …), when its keyword
//! is prose ("code review", "code of conduct"), nor when it is part
//! of a URL, an email address, a date, a time, a phone number or a price. A
//! year (1900–2099) or a date-shaped 8-digit number counts only right after a
//! keyword. Codes are ordered most confident first, then by position
//! (subject, the HTML's text, then the text), de-duplicated by value; `context` is
//! the line around the code (with the label line above a code that stands
//! alone), whitespace collapsed.
//!
//! **Links.** `http`/`https` only (the scheme is written lower-case): the
//! `<a href>` of the HTML first (entities decoded; `text` is the anchor's
//! text, collapsed, `None` when empty), then bare URLs of the text body and
//! of the HTML's text (`text: None`; trailing `.`, `,`, `)`, `>` … trimmed as
//! mail clients do, `<https://…>` read in its angle brackets). De-duplicated
//! by exact URL, first appearance first; a later anchor gives its text to a
//! link first seen without one. A bare URL ends at whitespace or at the first
//! non-ASCII character.
//!
//! Every pass is linear in its input (bodies are up to 1 MiB each): byte
//! scanning with bounded look-around, no regex, and nothing slices a string
//! but at an ASCII byte or a checked char boundary.

use crate::quoted::{find_byte, skip_markup, skip_raw_text};
use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Most codes listed.
const MAX_CODES: usize = 10;
/// Most links listed.
const MAX_LINKS: usize = 100;
/// Longest URL listed, in bytes; a longer one is skipped.
const MAX_URL: usize = 2048;
/// Longest anchor text, in characters.
const MAX_LINK_TEXT: usize = 200;
/// Longest code context, in characters.
const MAX_CONTEXT: usize = 100;

/// The codes and links found in a message. Untrusted: written by the sender.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    /// One-time codes, most confident first.
    pub codes: Vec<FoundCode>,
    /// http(s) links, in order of first appearance (HTML anchors first).
    pub links: Vec<FoundLink>,
}

/// A one-time code and the line it was found on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundCode {
    /// The code as written (`483920`, `G-123456`, `123 456`).
    pub value: String,
    /// The line around it, whitespace collapsed, at most 100 characters.
    pub context: String,
}

/// A link and its anchor text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundLink {
    /// The URL exactly as the sender wrote it (entities decoded, scheme
    /// lower-cased); at most 2048 bytes.
    pub url: String,
    /// The anchor's text, collapsed, at most 200 characters; `None` for a
    /// bare URL or an empty anchor.
    pub text: Option<String>,
}

/// From the decoded subject, text body and html body of a message.
pub fn find(subject: Option<&str>, text: Option<&str>, html: Option<&str>) -> Findings {
    find_reading(subject, text, html, false)
}

/// [`find`], reading every line for codes when `every_line` (see
/// [`find_codes_reading`]).
fn find_reading(
    subject: Option<&str>,
    text: Option<&str>,
    html: Option<&str>,
    every_line: bool,
) -> Findings {
    let html_text = html.map(crate::quoted::html_to_text);
    // The HTML's text before the text body: when a message has no text
    // part, its "text" is mail-parser's rendering of the HTML, which keeps
    // table rows on one line; `quoted`'s rendering keeps a line per block.
    let sources = [
        subject.unwrap_or(""),
        html_text.as_deref().unwrap_or(""),
        text.unwrap_or(""),
    ];
    let codes = find_codes_reading(&sources, every_line);

    let mut links = Links::default();
    if let Some(html) = html {
        html_links(html, &mut links);
    }
    if let Some(text) = text {
        text_links(text, &mut links);
    }
    if let Some(html_text) = &html_text {
        text_links(html_text, &mut links);
    }
    Findings {
        codes,
        links: links.list,
    }
}

/// The same for a raw message, parsed the way ingest parses it.
pub fn find_in_raw(raw: &[u8]) -> Findings {
    let parsed = crate::mail::parse_mail(raw, "", None);
    find(
        parsed.subject.as_deref(),
        parsed.detail.text.as_deref(),
        parsed.detail.html.as_deref(),
    )
}

// ---------------------------------------------------------------- codes

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A word that labels a one-time code.
    Key,
    /// A word that labels some other number (order, phone, price …).
    Ref,
    /// A word of a promotion: its codes are coupons, not one-time codes.
    Promo,
    /// A word that makes a keyword before it prose ("code review", "code
    /// of conduct"): neither a keyword nor a label.
    Prose,
}

use Kind::{Key, Promo, Prose, Ref};

/// Labels, lower-case (ASCII letters are matched case-insensitively; a label
/// that starts or ends with an ASCII letter is matched only as a whole word).
const LABELS: &[(&str, Kind)] = &[
    // English
    ("code", Key),
    ("codes", Key),
    ("verification", Key),
    ("verify", Key),
    ("otp", Key),
    ("pin", Key),
    ("one-time", Key),
    ("one time", Key),
    ("passcode", Key),
    ("password", Key),
    ("2fa", Key),
    ("two-factor", Key),
    ("enter", Key),
    ("token", Key),
    // German
    ("bestätigungscode", Key),
    ("sicherheitscode", Key),
    ("einmalcode", Key),
    ("verifizierungscode", Key),
    ("anmeldecode", Key),
    ("zugangscode", Key),
    ("einmalpasswort", Key),
    ("geben sie", Key),
    ("gib", Key),
    ("tan", Key),
    ("mtan", Key),
    // French
    ("vérification", Key),
    ("sécurité", Key),
    ("saisissez", Key),
    ("entrez", Key),
    // Spanish, Portuguese
    ("código", Key),
    ("códigos", Key),
    ("verificación", Key),
    ("verificação", Key),
    ("seguridad", Key),
    ("segurança", Key),
    ("introduce", Key),
    ("ingresa", Key),
    ("insira", Key),
    ("digite", Key),
    // Italian
    ("codice", Key),
    ("verifica", Key),
    ("inserisci", Key),
    ("sicurezza", Key),
    // Dutch
    ("verificatiecode", Key),
    ("beveiligingscode", Key),
    ("inlogcode", Key),
    ("voer", Key),
    // Chinese
    ("验证码", Key),
    ("校验码", Key),
    ("动态码", Key),
    ("驗證碼", Key),
    ("动态密码", Key),
    ("确认码", Key),
    ("安全码", Key),
    // Japanese
    ("認証コード", Key),
    ("確認コード", Key),
    ("認証番号", Key),
    ("確認番号", Key),
    ("ワンタイムパスワード", Key),
    ("コード", Key),
    ("暗証番号", Key),
    // Korean
    ("인증번호", Key),
    ("인증 코드", Key),
    ("인증코드", Key),
    ("확인 코드", Key),
    ("보안 코드", Key),
    // Other numbers, English
    ("order", Ref),
    ("orders", Ref),
    ("invoice", Ref),
    ("tracking", Ref),
    ("shipment", Ref),
    ("reference", Ref),
    ("ref", Ref),
    ("account number", Ref),
    ("account no", Ref),
    ("account id", Ref),
    ("acct", Ref),
    ("customer", Ref),
    ("member", Ref),
    ("membership", Ref),
    ("booking", Ref),
    ("reservation", Ref),
    ("confirmation number", Ref),
    ("ticket", Ref),
    ("case", Ref),
    ("transaction", Ref),
    ("receipt", Ref),
    ("policy", Ref),
    ("serial", Ref),
    ("item", Ref),
    ("sku", Ref),
    ("article", Ref),
    ("product", Ref),
    ("model", Ref),
    ("phone", Ref),
    ("tel", Ref),
    ("tel.", Ref),
    ("telephone", Ref),
    ("fax", Ref),
    ("mobile", Ref),
    ("call", Ref),
    ("zip", Ref),
    ("postal", Ref),
    ("postcode", Ref),
    ("post code", Ref),
    ("area", Ref),
    ("country", Ref),
    ("source", Ref),
    ("barcode", Ref),
    ("auth", Ref),
    ("authorization", Ref),
    ("approval", Ref),
    ("suite", Ref),
    ("apt", Ref),
    ("unit", Ref),
    ("room", Ref),
    ("flight", Ref),
    ("seat", Ref),
    ("gate", Ref),
    ("page", Ref),
    ("line", Ref),
    ("version", Ref),
    ("build", Ref),
    ("pr", Ref),
    ("pull request", Ref),
    ("issue", Ref),
    ("commit", Ref),
    ("iban", Ref),
    ("bic", Ref),
    ("swift", Ref),
    ("routing", Ref),
    ("vat", Ref),
    ("tax", Ref),
    ("no.", Ref),
    ("nr.", Ref),
    ("#", Ref),
    ("total", Ref),
    ("subtotal", Ref),
    ("amount", Ref),
    ("price", Ref),
    ("copyright", Ref),
    ("©", Ref),
    // Currencies
    ("eur", Ref),
    ("usd", Ref),
    ("gbp", Ref),
    ("chf", Ref),
    ("jpy", Ref),
    ("cny", Ref),
    ("rmb", Ref),
    ("krw", Ref),
    ("brl", Ref),
    ("€", Ref),
    ("$", Ref),
    ("£", Ref),
    ("¥", Ref),
    ("₩", Ref),
    ("円", Ref),
    ("元", Ref),
    ("원", Ref),
    // German
    ("bestellnummer", Ref),
    ("bestellung", Ref),
    ("rechnungsnummer", Ref),
    ("rechnung", Ref),
    ("kundennummer", Ref),
    ("kunden-nr.", Ref),
    ("kundennr.", Ref),
    ("sendungsnummer", Ref),
    ("sendung", Ref),
    ("auftragsnummer", Ref),
    ("auftrag", Ref),
    ("referenz", Ref),
    ("telefon", Ref),
    ("plz", Ref),
    ("postleitzahl", Ref),
    ("artikelnummer", Ref),
    ("vertragsnummer", Ref),
    ("steuernummer", Ref),
    ("betrag", Ref),
    ("summe", Ref),
    // French
    ("commande", Ref),
    ("facture", Ref),
    ("référence", Ref),
    ("client", Ref),
    ("suivi", Ref),
    ("colis", Ref),
    ("téléphone", Ref),
    // Spanish, Portuguese
    ("pedido", Ref),
    ("factura", Ref),
    ("referencia", Ref),
    ("cliente", Ref),
    ("seguimiento", Ref),
    ("teléfono", Ref),
    ("encomenda", Ref),
    ("fatura", Ref),
    ("rastreamento", Ref),
    ("telefone", Ref),
    ("cep", Ref),
    // Italian
    ("ordine", Ref),
    ("fattura", Ref),
    ("spedizione", Ref),
    ("telefono", Ref),
    ("cap", Ref),
    ("fiscale", Ref),
    // Dutch
    ("bestelling", Ref),
    ("bestelnummer", Ref),
    ("factuur", Ref),
    ("factuurnummer", Ref),
    ("klantnummer", Ref),
    ("klant", Ref),
    ("zending", Ref),
    ("telefoon", Ref),
    // Chinese, Japanese, Korean
    ("订单", Ref),
    ("快递单号", Ref),
    ("运单号", Ref),
    ("电话", Ref),
    ("注文番号", Ref),
    ("注文", Ref),
    ("電話", Ref),
    ("郵便番号", Ref),
    ("〒", Ref),
    ("バーコード", Ref),
    ("주문번호", Ref),
    ("주문", Ref),
    ("전화", Ref),
    ("운송장", Ref),
    // Promotions
    ("promo", Promo),
    ("promotional", Promo),
    ("coupon", Promo),
    ("discount", Promo),
    ("voucher", Promo),
    ("checkout", Promo),
    ("off", Promo),
    ("gift", Promo),
    ("rabatt", Promo),
    ("rabattcode", Promo),
    ("gutschein", Promo),
    ("gutscheincode", Promo),
    ("réduction", Promo),
    ("remise", Promo),
    ("descuento", Promo),
    ("cupón", Promo),
    ("desconto", Promo),
    ("cupom", Promo),
    ("sconto", Promo),
    ("korting", Promo),
    ("kortingscode", Promo),
    ("优惠", Promo),
    ("折扣", Promo),
    ("割引", Promo),
    ("クーポン", Promo),
    ("할인", Promo),
    ("쿠폰", Promo),
    ("free shipping", Promo),
    // Prose after a keyword
    ("review", Prose),
    ("reviews", Prose),
    ("reviewer", Prose),
    ("reviewers", Prose),
    ("coverage", Prose),
    ("of conduct", Prose),
    ("change", Prose),
    ("changes", Prose),
    ("base", Prose),
    ("quality", Prose),
    ("path", Prose),
    ("owners", Prose),
    ("snippet", Prose),
    ("snippets", Prose),
    ("block", Prose),
    ("blocks", Prose),
    ("editor", Prose),
    ("sample", Prose),
    ("samples", Prose),
    ("style", Prose),
    ("golf", Prose),
    ("freeze", Prose),
    ("search", Prose),
    ("examples", Prose),
];

/// Words that may stand between a label and its number ("Code is: …",
/// "Order number #…", "验证码为：…").
const GLUE: &[&str] = &[
    "is",
    "are",
    "was",
    "will",
    "be",
    "ist",
    "lautet",
    "lauten",
    "est",
    "es",
    "é",
    "è",
    "e",
    "sera",
    "je",
    "uw",
    "your",
    "the",
    "this",
    "du",
    "number",
    "no",
    "nr",
    "id",
    "nummer",
    "numéro",
    "número",
    "numero",
    "n°",
    "nº",
    "号",
    "番号",
    "번호",
    "是",
    "为",
    "為",
    "は",
    "が",
    "는",
    "은",
    "이",
    "가",
    "です",
    "below",
    "here",
    "de",
    "dein",
    "deine",
    "ihr",
    "votre",
    "tu",
    "su",
    "seu",
    "sua",
    "o",
    "il",
    "tuo",
    "la",
    "le",
    "el",
    "da",
    "di",
    "van",
    "verification",
    "security",
    "sign-in",
    "login",
    "confirmation",
    "for",
    "to",
    "of",
];

/// Characters that may stand between a label and its number, and around a
/// code alone on its line.
fn is_glue_char(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ':' | '：'
                | '='
                | '-'
                | '–'
                | '—'
                | '#'
                | '"'
                | '\''
                | '“'
                | '”'
                | '«'
                | '»'
                | '*'
                | '('
                | ')'
                | '['
                | ']'
                | '【'
                | '】'
                | '「'
                | '」'
                | '<'
                | '>'
                | '.'
                | ','
                | '，'
                | '、'
                | '!'
                | '\u{a0}'
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label {
    start: usize,
    end: usize,
    kind: Kind,
}

/// What a line says about the lines near it.
#[derive(Debug, Clone, Copy, Default)]
struct LineInfo {
    blank: bool,
    has_key: bool,
    /// The line ends in a label (plus glue): the kind of that label.
    label_line: Option<Kind>,
}

fn ascii_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Every label word in `lower` where it starts and ends on a word boundary,
/// by start, and at one start in the order of [`LABELS`].
fn label_matches(lower: &str, index: &LabelIndex) -> Vec<Label> {
    let b = lower.as_bytes();
    let mut out: Vec<Label> = Vec::new();
    for (i, &byte) in b.iter().enumerate() {
        let candidates = &index[usize::from(byte)];
        if candidates.is_empty() {
            continue;
        }
        let word_start = i == 0 || !ascii_word(b[i - 1]);
        if ascii_word(byte) && !word_start {
            continue;
        }
        let here = head(&b[i..]);
        for entry in candidates {
            // The first four bytes in one comparison; most candidates
            // differ there, and only the rest of a longer word is compared.
            if here & entry.mask != entry.head {
                continue;
            }
            let w = entry.word;
            if w.len() > 4 && !b[i..].starts_with(w) {
                continue;
            }
            let first = w.first().copied().unwrap_or(0);
            let last = w.last().copied().unwrap_or(0);
            if ascii_word(first) && !word_start {
                continue;
            }
            let end = i + w.len();
            if ascii_word(last) && b.get(end).copied().is_some_and(ascii_word) {
                continue;
            }
            out.push(Label {
                start: i,
                end,
                kind: entry.kind,
            });
        }
    }
    out
}

/// Every label in `lower` (the line with ASCII lower-cased), by start, each
/// with the kind its neighbours give it.
fn labels_in(lower: &str, index: &LabelIndex) -> Vec<Label> {
    let mut out = label_matches(lower, index);
    for k in 1..out.len() {
        let (prev, this) = (out[k - 1], out[k]);
        let adjacent = prev.end <= this.start
            && lower
                .get(prev.end..this.start)
                .is_some_and(|gap| gap.chars().all(|c| c == ' ' || c == '-'));
        // "promo code", "zip code", "tracking code": a code word right
        // after another label names that label's number.
        if adjacent && this.kind == Key && matches!(prev.kind, Ref | Promo) {
            out[k].kind = prev.kind;
        }
        // "code review", "code of conduct": prose, not a label.
        if adjacent && this.kind == Prose && prev.kind == Key {
            out[k - 1].kind = Prose;
        }
        // A label inside a longer one of another kind at the same end
        // ("コード" in "バーコード") takes the longer one's kind.
        if this.end == prev.end && this.start > prev.start {
            out[k].kind = prev.kind;
        }
    }
    out
}

/// Whether `gap` holds only glue: the characters and at most four words.
fn is_glue(gap: &str) -> bool {
    if gap.len() > 40 {
        return false;
    }
    let mut words = 0;
    for word in gap.split(is_glue_char).filter(|w| !w.is_empty()) {
        words += 1;
        if words > 4 || !GLUE.contains(&word) {
            return false;
        }
    }
    true
}

/// The last label of those ending at or before `at`, and not before `from`:
/// the latest end, the longest at that end.
fn last_label(labels: &[Label], from: usize, at: usize) -> Option<Label> {
    let upto = labels.partition_point(|l| l.start < at);
    let mut best: Option<Label> = None;
    for l in labels[..upto].iter().rev().take(16) {
        if l.end > at || l.start < from {
            continue;
        }
        if best.is_none_or(|b| l.end > b.end || (l.end == b.end && l.start < b.start)) {
            best = Some(*l);
        }
    }
    best
}

fn line_info(line: &str, lower: &str, labels: &[Label]) -> LineInfo {
    let blank = line.trim().is_empty();
    let has_key = labels.iter().any(|l| l.kind == Key);
    let label_line = last_label(labels, 0, lower.len())
        .filter(|l| lower.get(l.end..).is_some_and(is_glue))
        .map(|l| l.kind);
    LineInfo {
        blank,
        has_key,
        label_line,
    }
}

/// What a candidate looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Digits, or upper-case letters and digits.
    Plain,
    /// Two groups joined by a hyphen or a space.
    Group,
    /// Two letter groups joined by a hyphen: only right after a keyword.
    Letters,
    /// Single digits joined by single spaces (an HTML table of one digit a
    /// cell): the value is the digits, and it needs a keyword close by.
    Spaced,
}

/// The shape of a hyphenated or plain token, and whether it counts only
/// right after a keyword: a year or a date, or a token with lower-case
/// letters (`tPq-8vW2`; in prose such tokens are mostly hashes and names).
fn shape(token: &str) -> Option<(Shape, bool)> {
    let n = token.len();
    if !(4..=10).contains(&n) {
        return None;
    }
    let lower = token.bytes().any(|b| b.is_ascii_lowercase());
    let (shape, strict) = shape_of(token)?;
    if lower && shape == Shape::Letters {
        return None;
    }
    Some((shape, strict || lower))
}

fn shape_of(token: &str) -> Option<(Shape, bool)> {
    let groups: Vec<&str> = token.split('-').collect();
    match groups.as_slice() {
        [one] => {
            if !one.bytes().any(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((Shape::Plain, is_dateish(one)))
        }
        [a, b] => {
            let digits = token.bytes().filter(u8::is_ascii_digit).count();
            if digits == 0 {
                let ok = (3..=5).contains(&a.len()) && (3..=5).contains(&b.len());
                return ok.then_some((Shape::Letters, false));
            }
            let all_digits = |g: &str| g.bytes().all(|c| c.is_ascii_digit());
            // 2024-05, 05-2024
            let dateish = (all_digits(a) && all_digits(b))
                && ((is_year(a) && is_month(b)) || (is_month(a) && is_year(b)));
            if a.is_empty() || b.len() < 2 {
                return None;
            }
            Some((Shape::Group, dateish))
        }
        _ => None,
    }
}

fn is_year(s: &str) -> bool {
    s.len() == 4 && s.parse::<u32>().is_ok_and(|y| (1900..=2099).contains(&y))
}

fn is_month(s: &str) -> bool {
    s.len() == 2 && s.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
}

fn is_day(s: &str) -> bool {
    s.len() == 2 && s.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
}

fn is_dateish(s: &str) -> bool {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match s.len() {
        4 => is_year(s),
        8 => {
            let (y, md) = s.split_at(4);
            let (m, d) = md.split_at(2);
            let (dd, rest) = s.split_at(2);
            let (mm, yy) = rest.split_at(2);
            (is_year(y) && is_month(m) && is_day(d)) || (is_day(dd) && is_month(mm) && is_year(yy))
        }
        _ => false,
    }
}

/// A run of digits and separators that reads as a phone number or a date
/// (nothing in it is a code), or as one space-separated code.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    /// `Group` (`123 456`) or `Spaced` (`4 8 3 9 2 0`) when it is a code.
    code: Option<Shape>,
}

/// The digit runs of a line: maximal runs over digits, `+`, `(`, `)`, `-`,
/// `.`, `/` and single spaces, from a digit, `+` or `(` to a digit.
fn digit_runs(b: &[u8]) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut i = 0;
    let in_run = |c: u8| c.is_ascii_digit() || matches!(c, b'+' | b'(' | b')' | b'-' | b'.' | b'/');
    while i < b.len() {
        let c = b[i];
        let starts = (c.is_ascii_digit() || c == b'+' || c == b'(')
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        let mut last_digit = None;
        while j < b.len() {
            let c = b[j];
            if c == b' ' && b.get(j + 1).copied().is_some_and(in_run) {
                // "104477 (3分 …)": a parenthesis after a space opens an
                // aside, unless the run is an international number.
                if b.get(j + 1) == Some(&b'(') && b[start] != b'+' {
                    break;
                }
                j += 1;
                continue;
            }
            if !in_run(c) {
                break;
            }
            if c.is_ascii_digit() {
                last_digit = Some(j);
            }
            j += 1;
        }
        let Some(last) = last_digit else {
            i = j.max(i + 1);
            continue;
        };
        let end = last + 1;
        let text = &b[start..end];
        let groups: Vec<&[u8]> = text
            .split(|c| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .collect();
        let digits: usize = groups.iter().map(|g| g.len()).sum();
        let plus_or_paren = text.iter().any(|&c| c == b'+' || c == b'(' || c == b')');
        let spaced = text.contains(&b' ');
        let two_equal = groups.len() == 2
            && groups[0].len() == groups[1].len()
            && matches!(groups[0].len(), 3 | 4)
            && !plus_or_paren;
        let group = two_equal
            && spaced
            && text.len() == digits + 1
            && !b.get(end).copied().is_some_and(ascii_word);
        // One digit a cell: `<td>4</td><td>8</td>…` rendered as text.
        let spaced_digits = (4..=8).contains(&groups.len())
            && groups.iter().all(|g| g.len() == 1)
            && text.len() == 2 * groups.len() - 1
            && !b.get(end).copied().is_some_and(ascii_word);
        let phone = !two_equal
            && !spaced_digits
            && groups.len() >= 2
            && (plus_or_paren
                || groups.len() >= 3
                || (digits >= 7 && groups.iter().all(|g| g.len() >= 3)));
        let code = if group {
            Some(Shape::Group)
        } else if spaced_digits {
            Some(Shape::Spaced)
        } else {
            None
        };
        if phone || code.is_some() {
            runs.push(Run { start, end, code });
        }
        i = end.max(i + 1);
    }
    runs
}

/// A code candidate, before it is scored.
#[derive(Debug, Clone, Copy)]
struct Cand {
    start: usize,
    end: usize,
    shape: Shape,
    /// Counts only right after a keyword (see [`shape`]).
    strict: bool,
}

/// The candidates of one line, without those inside URLs, email addresses,
/// numbers with decimals or times, and phone numbers.
fn candidates(line: &str) -> Vec<Cand> {
    let b = line.as_bytes();
    let runs = digit_runs(b);
    let mut out = Vec::new();
    let mut r = 0;
    let mut i = 0;
    // The ASCII chunk (run of visible ASCII) being read, and whether it is
    // a URL or an address.
    let mut chunk_end = 0;
    let mut chunk_bad = false;
    while i < b.len() {
        let c = b[i];
        if i >= chunk_end && c.is_ascii_graphic() {
            let end = b[i..]
                .iter()
                .position(|c| !c.is_ascii_graphic())
                .map_or(b.len(), |p| i + p);
            let chunk = &line[i..end];
            chunk_bad = chunk.contains("://")
                || chunk.contains('@')
                || chunk
                    .get(..4)
                    .is_some_and(|s| s.eq_ignore_ascii_case("www."));
            chunk_end = end;
        }
        while r < runs.len() && runs[r].end <= i {
            r += 1;
        }
        if let Some(run) = runs.get(r).filter(|run| run.start <= i)
            && i < run.end
        {
            if let Some(shape) = run.code
                && i == run.start
                && !(chunk_bad && i < chunk_end)
            {
                out.push(Cand {
                    start: run.start,
                    end: run.end,
                    shape,
                    strict: false,
                });
            }
            i = run.end;
            continue;
        }
        if !c.is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i;
        loop {
            while j < b.len() && b[j].is_ascii_alphanumeric() {
                j += 1;
            }
            if j + 1 < b.len() && b[j] == b'-' && b[j + 1].is_ascii_alphanumeric() {
                j += 1;
                continue;
            }
            break;
        }
        i = j;
        if chunk_bad && start < chunk_end {
            continue;
        }
        let Some((shape, strict)) = shape(&line[start..j]) else {
            continue;
        };
        let before = start.checked_sub(1).map(|k| b[k]);
        let before2 = start.checked_sub(2).map(|k| b[k]);
        let after = b.get(j).copied();
        let after2 = b.get(j + 1).copied();
        // 12.5, 1,234, 12:30, v1.2345, example.1234
        let numberish = |sep: Option<u8>, other: Option<u8>| match sep {
            Some(b'.') => other.is_some_and(ascii_word),
            Some(b',' | b':') => other.is_some_and(|c| c.is_ascii_digit()),
            _ => false,
        };
        if numberish(before, before2)
            || numberish(after, after2)
            || matches!(
                before,
                Some(b'/' | b'\\' | b'@' | b'_' | b'=' | b'&' | b'?' | b'%' | b'$' | b'+' | b'~')
            )
            || matches!(after, Some(b'/' | b'\\' | b'@' | b'_' | b'=' | b'%'))
        {
            continue;
        }
        out.push(Cand {
            start,
            end: j,
            shape,
            strict,
        });
    }
    out
}

/// A zip code: 4–5 digits at the start of the line or after ", " and
/// followed by a capitalised word ("10115 Berlin"), or after a US state
/// ("CA 94105").
fn is_zip(line: &str, c: &Cand) -> bool {
    let b = line.as_bytes();
    let len = c.end - c.start;
    if !(4..=5).contains(&len) || !b[c.start..c.end].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let head = line[..c.start].trim_end_matches(' ');
    let city_after = b.get(c.end) == Some(&b' ')
        && b.get(c.end + 1)
            .copied()
            .is_some_and(|c| c.is_ascii_uppercase())
        && b.get(c.end + 2)
            .copied()
            .is_some_and(|c| c.is_ascii_lowercase());
    let at_start = head.is_empty() || head.ends_with(',') || head.ends_with("D-");
    let hb = head.as_bytes();
    let state = hb.len() >= 2
        && hb[hb.len() - 2..].iter().all(u8::is_ascii_uppercase)
        && (hb.len() == 2 || matches!(hb[hb.len() - 3], b' ' | b','));
    (at_start && city_after) || (state && c.start > head.len())
}

/// The char boundary at or before `i`.
fn floor(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The char boundary at or after `i`.
fn ceil(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Where a sentence before `at` (and after `from`) ends, if it does.
fn sentence_start(s: &str, from: usize, at: usize) -> usize {
    let window = &s[from..at];
    let mut start = from;
    for (i, c) in window.char_indices() {
        let ends = match c {
            '.' | '!' | '?' | ';' => window[i + 1..].starts_with(' '),
            '。' | '！' | '？' | '；' | '|' => true,
            _ => false,
        };
        if ends {
            start = from + i + c.len_utf8();
        }
    }
    start
}

/// Where a sentence after `from` (and before `to`) ends.
fn sentence_end(s: &str, from: usize, to: usize) -> usize {
    let window = &s[from..to];
    for (i, c) in window.char_indices() {
        let ends = match c {
            '.' | '!' | '?' | ';' => window[i + 1..].starts_with(' ') || window.len() == i + 1,
            '。' | '！' | '？' | '；' | '|' => true,
            _ => false,
        };
        if ends {
            return from + i;
        }
    }
    to
}

/// A scored code.
#[derive(Debug, Clone)]
struct Scored {
    score: u8,
    /// Source, line, byte range: where it was found, for ordering and context.
    source: usize,
    line: usize,
    start: usize,
    end: usize,
    /// The label line above a code alone on its line.
    label_above: Option<usize>,
}

/// Whether the line holds only the candidate (and decoration).
fn alone(line: &str, c: &Cand) -> bool {
    line[..c.start].chars().all(is_glue_char) && line[c.end..].chars().all(is_glue_char)
}

/// One of the [`LABELS`], with its first (up to) four bytes as a number
/// and the mask that keeps as many bytes of another: see [`head`].
#[derive(Debug, Clone, Copy)]
struct LabelEntry {
    word: &'static [u8],
    kind: Kind,
    head: u32,
    mask: u32,
}

/// The [`LABELS`] by their first byte, each list in the order of [`LABELS`].
type LabelIndex = [Vec<LabelEntry>; 256];

/// The first four bytes of `bytes` (zeros past its end) as a little-endian
/// number. No label holds a zero byte, so a label longer than what is left
/// never matches its zeros.
fn head(bytes: &[u8]) -> u32 {
    let mut four = [0u8; 4];
    let n = bytes.len().min(4);
    four[..n].copy_from_slice(&bytes[..n]);
    u32::from_le_bytes(four)
}

/// The [`LABELS`] by their first byte, built once per process.
fn label_index() -> &'static LabelIndex {
    static INDEX: std::sync::OnceLock<LabelIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index: LabelIndex = std::array::from_fn(|_| Vec::new());
        for &(word, kind) in LABELS {
            let word = word.as_bytes();
            let Some(&first) = word.first() else {
                continue;
            };
            let mask = match word.len() {
                1 => 0xff,
                2 => 0xffff,
                3 => 0xff_ffff,
                _ => u32::MAX,
            };
            index[usize::from(first)].push(LabelEntry {
                word,
                kind,
                head: head(word),
                mask,
            });
        }
        index
    })
}

/// How many lines above and below a candidate's own [`score`] reads.
const LINES_ABOVE: usize = 8;
const LINES_BELOW: usize = 3;

/// Whether `line` can hold a candidate: every one has a digit, or is two
/// letter groups joined by a hyphen (see [`candidates`]).
fn may_hold_code(line: &str) -> bool {
    line.bytes().any(|b| b.is_ascii_digit() || b == b'-')
}

/// The codes of `sources`. Most lines of a mail hold no candidate and are
/// far from any: their labels are read only for the subject (whose keyword
/// counts for every line) and for the lines [`score`] looks at. With
/// `every_line`, every line is read, as it was before; tests hold the two to
/// the same answer.
fn find_codes_reading(sources: &[&str], every_line: bool) -> Vec<FoundCode> {
    let index = label_index();
    let mut lines_of: Vec<Vec<&str>> = Vec::with_capacity(sources.len());
    for s in sources {
        lines_of.push(
            s.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .collect(),
        );
    }
    let mut found_of: Vec<Vec<(Cand, usize)>> = Vec::with_capacity(sources.len());
    let mut labels_of: Vec<Vec<Vec<Label>>> = Vec::with_capacity(sources.len());
    let mut infos_of: Vec<Vec<LineInfo>> = Vec::with_capacity(sources.len());
    for (source, lines) in lines_of.iter().enumerate() {
        let mut found: Vec<(Cand, usize)> = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            if every_line || may_hold_code(line) {
                found.extend(candidates(line).into_iter().map(|c| (c, n)));
            }
        }
        // The lines whose labels count: all of the subject's, and those
        // around each candidate.
        let mut read = vec![every_line || source == 0; lines.len()];
        for &(_, n) in &found {
            let to = (n + LINES_BELOW).min(lines.len() - 1);
            read[n.saturating_sub(LINES_ABOVE)..=to].fill(true);
        }
        let mut labels = Vec::with_capacity(lines.len());
        let mut infos = Vec::with_capacity(lines.len());
        for (line, read) in lines.iter().zip(read) {
            if !read {
                labels.push(Vec::new());
                infos.push(LineInfo {
                    blank: line.trim().is_empty(),
                    ..LineInfo::default()
                });
                continue;
            }
            let lower = line.to_ascii_lowercase();
            let found = labels_in(&lower, index);
            infos.push(line_info(line, &lower, &found));
            labels.push(found);
        }
        found_of.push(found);
        labels_of.push(labels);
        infos_of.push(infos);
    }
    let subject_has_key = infos_of
        .first()
        .is_some_and(|i| i.iter().any(|l| l.has_key));

    let mut best: HashMap<Cow<'_, str>, Scored> = HashMap::new();
    let mut order: Vec<Cow<'_, str>> = Vec::new();
    for (source, lines) in lines_of.iter().enumerate() {
        let infos = &infos_of[source];
        let found = std::mem::take(&mut found_of[source]);
        // A very short mail whose only candidate is a number.
        let short = source > 0 && {
            let body = sources[source].trim();
            body.chars().count() <= 300
                && infos.iter().filter(|i| !i.blank).count() <= 6
                && found.len() == 1
        };
        for (c, n) in found {
            let line = lines[n];
            let labels = &labels_of[source][n];
            let Some((score, label_above)) =
                score(line, labels, &c, infos, n, short, subject_has_key)
            else {
                continue;
            };
            let written = &line[c.start..c.end];
            let value = if c.shape == Shape::Spaced {
                Cow::Owned(written.replace(' ', ""))
            } else {
                Cow::Borrowed(written)
            };
            let scored = Scored {
                score,
                source,
                line: n,
                start: c.start,
                end: c.end,
                label_above,
            };
            match best.get_mut(&value) {
                Some(old) if old.score >= score => {}
                Some(old) => *old = scored,
                None => {
                    order.push(value.clone());
                    best.insert(value, scored);
                }
            }
        }
    }
    let mut ranked: Vec<(&str, &Scored)> = order
        .iter()
        .filter_map(|v| best.get(v).map(|s| (v.as_ref(), s)))
        .collect();
    ranked.sort_by_key(|(_, s)| std::cmp::Reverse(s.score));
    ranked
        .into_iter()
        .take(MAX_CODES)
        .map(|(value, s)| {
            let lines = &lines_of[s.source];
            FoundCode {
                value: value.to_owned(),
                context: context(lines, s),
            }
        })
        .collect()
}

/// Whether `gap` is a few words between a keyword and its code, with no
/// other number in it.
fn is_short_gap(gap: &str) -> bool {
    gap.len() <= 40
        && !gap.bytes().any(|b| b.is_ascii_digit())
        && gap.split_whitespace().count() <= 5
}

/// The labels that start in `from..to` (labels are sorted by start).
fn near(labels: &[Label], from: usize, to: usize) -> &[Label] {
    let lo = labels.partition_point(|l| l.start < from);
    let hi = labels.partition_point(|l| l.start < to);
    labels.get(lo..hi).unwrap_or(&[])
}

/// How sure a candidate is a code (3 labelled, 2 near a keyword, 1 alone
/// under a keyword further up or in a short mail), or `None`.
fn score(
    line: &str,
    labels: &[Label],
    c: &Cand,
    infos: &[LineInfo],
    n: usize,
    short: bool,
    subject_has_key: bool,
) -> Option<(u8, Option<usize>)> {
    let from = floor(line, c.start.saturating_sub(64));
    let from = sentence_start(line, from, c.start);
    let to = ceil(line, c.end + 48);
    let to = sentence_end(line, c.end, to);
    // A promotion anywhere in the sentence: a coupon.
    let near = near(labels, from, to);
    if near.iter().any(|l| l.kind == Promo) {
        return None;
    }
    let mut score = 0;
    if let Some(l) = last_label(labels, from, c.start) {
        let gap = line.get(l.end..c.start)?;
        match (l.kind, is_glue(&gap.to_ascii_lowercase())) {
            (Ref | Promo, true) => return None,
            (Key, true) => score = 3,
            // "Your code for Acme is 483920": a few words, no other number.
            (Key, false) if is_short_gap(gap) => score = 2,
            _ => {}
        }
    }
    if score < 3 {
        let next = near.iter().find(|l| l.start >= c.end);
        if let Some(l) = next {
            let gap = line.get(c.end..l.start)?;
            match l.kind {
                // "483920 is your code"; but "2024 Code Inc." is no code.
                Key if is_short_gap(gap) => score = if c.strict { 2 } else { 3 },
                Ref | Promo if is_glue(&gap.to_ascii_lowercase()) && score < 2 => return None,
                _ => {}
            }
        }
    }
    if is_zip(line, c) && score < 3 {
        return None;
    }
    let mut label_above = None;
    if score < 2 && alone(line, c) {
        // The nearest lines with text above and below.
        let above: Vec<usize> = (0..n)
            .rev()
            .take(LINES_ABOVE)
            .filter(|&k| !infos[k].blank)
            .take(5)
            .collect();
        let below = (n + 1..infos.len())
            .take(LINES_BELOW)
            .find(|&k| !infos[k].blank);
        if let Some(&k) = above.first() {
            match infos[k].label_line {
                Some(Ref | Promo) => return None,
                Some(Key) => {
                    score = 3;
                    label_above = Some(k);
                }
                None | Some(Prose) if infos[k].has_key => {
                    score = 2;
                    label_above = Some(k);
                }
                None | Some(Prose) => {}
            }
        }
        if score < 2 && below.is_some_and(|k| infos[k].has_key) {
            score = 2;
        }
        if score < 1 && (subject_has_key || above.iter().any(|&k| infos[k].has_key)) {
            score = 1;
        }
    }
    // "Sure, it's 583920": 6–8 digits ending a line of a short mail.
    if score < 1 && short && c.shape == Shape::Plain {
        let v = &line[c.start..c.end];
        let ends = line[c.end..]
            .trim_start_matches(['.', '!', ')', '。', '！'])
            .trim()
            .is_empty();
        if (6..=8).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) && ends {
            score = 1;
        }
    }
    let needed = match c.shape {
        _ if c.strict => 3,
        Shape::Letters => 3,
        Shape::Spaced => 2,
        Shape::Plain | Shape::Group => 1,
    };
    (score >= needed).then_some((score, label_above))
}

/// The line around a code (after its label line, when it stands alone),
/// whitespace collapsed, at most [`MAX_CONTEXT`] characters around the code.
fn context(lines: &[&str], s: &Scored) -> String {
    let line = lines.get(s.line).copied().unwrap_or("");
    let from = floor(line, s.start.saturating_sub(4 * MAX_CONTEXT));
    let to = ceil(line, s.end + 4 * MAX_CONTEXT);
    let mut text = String::new();
    if let Some(k) = s.label_above {
        let above = lines.get(k).copied().unwrap_or("");
        let tail = &above[floor(above, above.len().saturating_sub(4 * MAX_CONTEXT))..];
        collapse_into(&mut text, tail);
        text.push(' ');
    }
    collapse_into(&mut text, &line[from..s.start]);
    let code_at = text.len();
    text.push_str(&line[s.start..s.end]);
    let code_end = text.len();
    collapse_into(&mut text, &line[s.end..to]);
    cut_around(text.trim_end(), code_at, code_end)
}

/// Appends `s` with every run of whitespace as one space.
fn collapse_into(out: &mut String, s: &str) {
    let mut space = out.ends_with(' ') || out.is_empty();
    for c in s.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
                space = true;
            }
        } else {
            out.push(c);
            space = false;
        }
    }
}

/// At most [`MAX_CONTEXT`] characters of `text`, keeping `start..end` (the
/// code's bytes) in view.
fn cut_around(text: &str, start: usize, end: usize) -> String {
    let chars = text.chars().count();
    if chars <= MAX_CONTEXT {
        return text.to_owned();
    }
    let start = floor(text, start.min(text.len()));
    let end = ceil(text, end.min(text.len()));
    let code_chars = text[start..end].chars().count();
    let room = MAX_CONTEXT.saturating_sub(code_chars);
    let before_chars = text[..start].chars().count();
    let take_before = (room / 2).min(before_chars);
    let skip = before_chars - take_before;
    let out: String = text.chars().skip(skip).take(MAX_CONTEXT).collect();
    // Whole words only at a cut (the code itself is never cut).
    let code = &text[start..end];
    let mut out = out.as_str();
    if skip > 0
        && let Some(space) = out.find(' ')
        && out[space..].contains(code)
    {
        out = &out[space..];
    }
    if skip + MAX_CONTEXT < chars
        && let Some(space) = out.rfind(' ')
        && out[..space].contains(code)
    {
        out = &out[..space];
    }
    out.trim().to_owned()
}

// ---------------------------------------------------------------- links

#[derive(Debug, Default)]
struct Links {
    list: Vec<FoundLink>,
    seen: HashMap<String, usize>,
}

impl Links {
    fn add(&mut self, url: &str, text: Option<String>) {
        let Some(url) = http_url(url) else {
            return;
        };
        if let Some(&i) = self.seen.get(&url) {
            if let Some(link) = self.list.get_mut(i)
                && link.text.is_none()
            {
                link.text = text;
            }
            return;
        }
        if self.list.len() >= MAX_LINKS {
            return;
        }
        self.seen.insert(url.clone(), self.list.len());
        self.list.push(FoundLink { url, text });
    }
}

/// `url` with its scheme lower-cased, when it is an http(s) URL with a host
/// and at most [`MAX_URL`] bytes.
fn http_url(url: &str) -> Option<String> {
    if url.len() > MAX_URL {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || rest.chars().any(char::is_control) {
        return None;
    }
    Some(format!("{scheme}://{rest}"))
}

/// Bare URLs of a text, in order.
fn text_links(text: &str, links: &mut Links) {
    let b = text.as_bytes();
    let lower_at = |i: usize, word: &[u8]| {
        b.get(i..i + word.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(word))
    };
    let mut i = 0;
    while i < b.len() {
        let starts = (b[i] == b'h' || b[i] == b'H')
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && (lower_at(i, b"http://") || lower_at(i, b"https://"));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_graphic() && !matches!(b[j], b'<' | b'>' | b'"' | b'`') {
            j += 1;
        }
        let url = trim_url(&text[i..j]);
        links.add(url, None);
        i = j.max(i + 1);
    }
}

/// A URL without the punctuation a sentence puts after it; a `)` or `]` is
/// kept when the URL opens one.
fn trim_url(mut url: &str) -> &str {
    loop {
        let Some(last) = url.bytes().last() else {
            return url;
        };
        let strip = match last {
            b'.' | b',' | b';' | b':' | b'!' | b'?' | b'\'' | b'"' | b'*' | b'_' | b'}' => true,
            b')' => url.matches('(').count() < url.matches(')').count(),
            b']' => url.matches('[').count() < url.matches(']').count(),
            _ => false,
        };
        if !strip {
            return url;
        }
        url = &url[..url.len() - 1];
    }
}

/// One tag, from its `<` to the byte after its `>`.
struct Tag<'a> {
    name: String,
    closing: bool,
    href: Option<&'a str>,
    /// Its `>` was found (an unclosed tag at the end is text).
    closed: bool,
    end: usize,
}

/// Reads the tag whose `<` is at `i`, or `None` when that `<` opens no tag
/// (with the scanner of `quoted.rs`, keeping the first `href`).
fn parse_tag(html: &str, i: usize) -> Option<Tag<'_>> {
    let mut href = None;
    let scanned = crate::quoted::scan_tag(html, i, |attr, value| {
        if attr.eq_ignore_ascii_case("href") && href.is_none() {
            href = Some(value);
        }
    })?;
    Some(Tag {
        name: scanned.name,
        closing: scanned.closing,
        href,
        closed: scanned.closed,
        end: scanned.end,
    })
}

/// Whether the `<` at `i` opens an `a` start tag.
fn opens_anchor(b: &[u8], i: usize) -> bool {
    b.get(i + 1).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'))
        && b.get(i + 2)
            .is_some_and(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
}

/// The `<a href>` links of an HTML body, in order.
fn html_links(html: &str, links: &mut Links) {
    let b = html.as_bytes();
    let mut i = 0;
    while let Some(lt) = find_byte(b, i, b'<') {
        if let Some(next) = skip_markup(html, lt) {
            i = next;
            continue;
        }
        let Some(tag) = parse_tag(html, lt) else {
            i = lt + 1;
            continue;
        };
        i = tag.end;
        if tag.closing {
            continue;
        }
        if matches!(tag.name.as_str(), "style" | "script" | "title" | "textarea") {
            i = skip_raw_text(b, i, &tag.name);
            continue;
        }
        if tag.name != "a" || !tag.closed {
            continue;
        }
        // The anchor's text: up to its end tag, or up to the next anchor
        // (anchors do not nest), so every byte is read once.
        let mut raw = String::new();
        let mut j = i;
        loop {
            let Some(p) = find_byte(b, j, b'<') else {
                push_capped(&mut raw, &html[j..]);
                j = b.len();
                break;
            };
            push_capped(&mut raw, &html[j..p]);
            if opens_anchor(b, p) {
                j = p;
                break;
            }
            if let Some(next) = skip_markup(html, p) {
                j = next;
                continue;
            }
            match parse_tag(html, p) {
                Some(inner) if inner.closing && inner.name == "a" => {
                    j = inner.end;
                    break;
                }
                Some(inner) => {
                    push_capped(&mut raw, " ");
                    j = inner.end;
                }
                None => {
                    push_capped(&mut raw, "<");
                    j = p + 1;
                }
            }
        }
        i = j;
        let Some(href) = tag.href else {
            continue;
        };
        let href: String = decode_entities(href)
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect();
        let text = anchor_text(&raw);
        links.add(href.trim(), text);
    }
}

/// Appends to an anchor's raw text, up to a bound well past what is kept.
fn push_capped(raw: &mut String, s: &str) {
    let room = (8 * MAX_LINK_TEXT).saturating_sub(raw.len());
    if room > 0 {
        raw.push_str(&s[..floor(s, room)]);
    }
}

fn anchor_text(raw: &str) -> Option<String> {
    let decoded = decode_entities(raw);
    let mut text = String::new();
    collapse_into(&mut text, &decoded.replace('\u{a0}', " "));
    let text: String = text.trim().chars().take(MAX_LINK_TEXT).collect();
    let text = text.trim_end();
    (!text.is_empty()).then(|| text.to_owned())
}

/// `s` with its character references decoded.
fn decode_entities(mut s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    while let Some(amp) = s.find('&') {
        out.push_str(&s[..amp]);
        let rest = &s[amp..];
        let name_len = rest
            .bytes()
            .skip(1)
            .take(32)
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'#')
            .count();
        if name_len > 0 && rest.as_bytes().get(1 + name_len) == Some(&b';') {
            crate::quoted::add_entity(&mut out, &rest.as_bytes()[..name_len + 2]);
            s = &rest[name_len + 2..];
        } else {
            out.push('&');
            s = &rest[1..];
        }
    }
    out.push_str(s);
    out
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codes(text: &str) -> Vec<String> {
        find(None, Some(text), None)
            .codes
            .into_iter()
            .map(|c| c.value)
            .collect()
    }

    #[test]
    fn codes_next_to_a_keyword_in_every_language() {
        let cases: &[(&str, &str)] = &[
            ("Your verification code is 483920.", "483920"),
            ("483920 is your Google verification code.", "483920"),
            ("G-123456 is your Google verification code.", "G-123456"),
            ("Your one-time passcode: A7K-93Q", "A7K-93Q"),
            ("Your confirmation code: ABC-DEF", "ABC-DEF"),
            ("Enter 771204 to sign in.", "771204"),
            ("Your security code is 123 456", "123 456"),
            ("OTP: 9031", "9031"),
            ("Your PIN is 4821", "4821"),
            ("Ihr Bestätigungscode lautet: 583021", "583021"),
            ("Dein Sicherheitscode: 204711", "204711"),
            ("Ihr Einmalcode 662910", "662910"),
            ("Votre code de vérification est : 318274", "318274"),
            ("Votre code de sécurité : 550127", "550127"),
            ("Tu código de verificación es 746201", "746201"),
            ("Seu código de verificação é 390415", "390415"),
            ("Il tuo codice di verifica è 815530", "815530"),
            ("Je verificatiecode is 274019", "274019"),
            ("您的验证码是：682301，5分钟内有效。", "682301"),
            ("校验码 551920", "551920"),
            ("动态码：640218", "640218"),
            ("您的驗證碼為 930142", "930142"),
            ("認証コード：527394", "527394"),
            ("確認コードは 218830 です。", "218830"),
            ("認証番号 774012", "774012"),
            ("ワンタイムパスワード：401928", "401928"),
            ("인증번호는 [582910] 입니다.", "582910"),
            ("인증 코드: 104477", "104477"),
            ("Your code:\n\n  483920\n", "483920"),
            ("Use the code below to sign in.\n\n<b>\n740215\n", "740215"),
            ("Your verification code\n\n4 8 3 9 2 0", "483920"),
            ("Your code: 4821-7733", "4821-7733"),
            ("Use this code to verify your account: 483920", "483920"),
            ("인증번호: 104477 (3분 이내 입력)", "104477"),
            ("Your one-time password for login: x7Rt92Lk", "x7Rt92Lk"),
            ("Dein Code 123456 gilt 10 Minuten", "123456"),
            ("Your code is 483920\n\nHelp: +44 20 7946 0958", "483920"),
        ];
        for (text, want) in cases {
            assert_eq!(codes(text), vec![want.to_string()], "{text:?}");
        }
    }

    #[test]
    fn no_code_in_other_numbers() {
        let cases: &[&str] = &[
            "Your verification code: CODE",
            "Enter the code HELLO",
            "Code review for 2024: please look",
            "Your code expires on 2024-05-01.",
            "Your code expires on 01/05/2024.",
            "Your code expires on 5.1.2024.",
            "Your code meeting is at 12:30.",
            "Code questions? Call +1 415 555 0100",
            "Code questions? Call (030) 1234567",
            "Verification fee: $12.99",
            "Verification fee: 12,99 €",
            "Verification fee: EUR 1234",
            "Your code for Order #123456",
            "Verify: Bestellnummer 123456",
            "Verify tracking: 1Z999AA10123456784",
            "Verification of reference 845512",
            "Verify your account number: 12345678",
            "Verify your customer number 445190",
            "Code Inc., Main St 1, 10115 Berlin",
            "Code Inc., Market St, San Francisco, CA 94105",
            "Verify at https://example.com/verify?code=483920",
            "Code from user483920@example.com",
            "Use promo code SAVE20 at checkout for 20% off",
            "Your code review: commit a1b2c3d",
            "Code of conduct, version 2024",
            "Fix the code in PR 4821",
            "Card authorization code: 048213",
            "Zip code 94105",
            "Copyright 2024 Code Inc.",
            "© 2024 Code Inc.",
            "Steps: 1 2 3 4 5",
            "Your verification code is in the app. Invoice INV-20481",
            "Hi,\n\nYour code review is ready.\n\n2417\n",
            "Our code of conduct 2024 edition",
            "Please verify your email by 31 May. 5000 users already did.",
            "Enter the draw! 12345 prizes",
            "Use code A1B2 for free shipping",
        ];
        for text in cases {
            assert_eq!(codes(text), Vec::<String>::new(), "{text:?}");
        }
    }

    #[test]
    fn a_short_mail_needs_no_keyword() {
        assert_eq!(codes("Hi! Here you go: 583920\n"), vec!["583920"]);
        // Two numbers, no keyword: nothing.
        assert!(codes("Meet at 4 pm, room 3312 or 3314.").is_empty());
        // A long mail with a lone number and no keyword: nothing.
        let long = format!("{}\n\n583920\n", "Lorem ipsum dolor sit amet. ".repeat(20));
        assert!(codes(&long).is_empty());
    }

    #[test]
    fn the_subject_and_the_html_are_read() {
        let f = find(Some("483920 is your login code"), None, None);
        assert_eq!(f.codes[0].value, "483920");
        assert_eq!(f.codes[0].context, "483920 is your login code");
        let html = "<p>Your verification code</p><p><span style=\"x\">550231</span></p>";
        let f = find(None, None, Some(html));
        assert_eq!(f.codes[0].value, "550231");
        assert_eq!(f.codes[0].context, "Your verification code 550231");
    }

    #[test]
    fn codes_are_ranked_and_unique() {
        let text = "Your code is 111222.\nRef: 998877\n\nYour code is 111222.\n";
        assert_eq!(codes(text), vec!["111222"]);
        let text = "Your code is below.\n\nThanks!\n\n550123\n\nOr: your code is 483920";
        assert_eq!(codes(text), vec!["483920", "550123"]);
        let text = "Backup codes:\n\n1111 2222\n\nYour code is 483920";
        assert_eq!(codes(text), vec!["1111 2222", "483920"]);
    }

    #[test]
    fn a_long_context_is_cut_around_the_code() {
        let text = format!(
            "{} your code is 483920 {}",
            "a ".repeat(200),
            "b ".repeat(200)
        );
        let f = find(None, Some(&text), None);
        let context = &f.codes[0].context;
        assert!(context.chars().count() <= MAX_CONTEXT, "{context}");
        assert!(context.contains("your code is 483920"), "{context}");
    }

    #[test]
    fn links_from_html_and_text() {
        let html = concat!(
            "<a href=\"https://click.example.com/ls/click?upn=a&amp;b=1\">Verify <b>email</b></a>",
            "<a href='javascript:alert(1)'>x</a><a href=\"mailto:a@example.com\">m</a>",
            "<a HREF=HTTPS://example.com/a><img alt=\"\"></a>",
            "<a href=\"https://example.com/a\">Again</a>",
            "<!-- <a href=\"https://example.com/hidden\">h</a> -->",
            "<a href=\"data:text/html,x\">d</a><a href=\" https://example.com/b \">B</a>",
        );
        let text = "See https://example.com/t. Or (https://example.com/p) or <https://example.com/q>, \
                    and https://en.example.org/wiki/A_(b), ftp://example.com/x, https://";
        let f = find(None, Some(text), Some(html));
        let got: Vec<(&str, Option<&str>)> = f
            .links
            .iter()
            .map(|l| (l.url.as_str(), l.text.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "https://click.example.com/ls/click?upn=a&b=1",
                    Some("Verify email")
                ),
                ("https://example.com/a", Some("Again")),
                ("https://example.com/b", Some("B")),
                ("https://example.com/t", None),
                ("https://example.com/p", None),
                ("https://example.com/q", None),
                ("https://en.example.org/wiki/A_(b)", None),
            ]
        );
    }

    #[test]
    fn link_bounds() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        let text = format!("{long} https://example.com/ok");
        let f = find(None, Some(&text), None);
        assert_eq!(f.links.len(), 1);
        let many: String = (0..150)
            .map(|i| format!("https://example.com/{i}\n"))
            .collect();
        assert_eq!(find(None, Some(&many), None).links.len(), MAX_LINKS);
        let html = format!(
            "<a href=\"https://example.com/\">{}</a>",
            "word ".repeat(100)
        );
        let f = find(None, None, Some(&html));
        let text = f.links[0].text.as_deref().unwrap_or("");
        assert!(text.chars().count() <= MAX_LINK_TEXT);
        let many: String = (0..30)
            .map(|i| format!("code: {}\n", 100_000 + i))
            .collect();
        assert_eq!(find(None, Some(&many), None).codes.len(), MAX_CODES);
    }

    #[test]
    fn unclosed_markup_is_read_in_one_pass() {
        let html = "<a href=\"https://example.com/1\">one<a href=\"https://example.com/2\">two";
        let f = find(None, None, Some(html));
        assert_eq!(f.links.len(), 2);
        assert_eq!(f.links[1].text.as_deref(), Some("two"));
        let html = "<a href=\"https://example.com/1";
        assert!(find(None, None, Some(html)).links.is_empty());
        // Large adversarial inputs finish (linear scans).
        let big = "<a href=x>".repeat(50_000);
        assert!(find(None, None, Some(&big)).links.is_empty());
        let big = "code 123456 ".repeat(50_000);
        assert_eq!(find(None, Some(&big), None).codes.len(), 1);
        let big = "1 ".repeat(200_000);
        assert!(find(None, Some(&big), None).codes.is_empty());
    }

    fn valid_code(value: &str) -> bool {
        let n = value.chars().count();
        let digit = value.bytes().any(|b| b.is_ascii_digit());
        let group = value.split('-').count() == 2
            && value.bytes().all(|b| b.is_ascii_uppercase() || b == b'-');
        (4..=10).contains(&n) && (digit || group)
    }

    fn check(f: &Findings) {
        assert!(f.codes.len() <= MAX_CODES);
        assert!(f.links.len() <= MAX_LINKS);
        let mut values = std::collections::HashSet::new();
        for c in &f.codes {
            assert!(valid_code(&c.value), "{c:?}");
            assert!(c.context.chars().count() <= MAX_CONTEXT, "{c:?}");
            assert!(values.insert(c.value.clone()), "duplicate {c:?}");
        }
        let mut urls = std::collections::HashSet::new();
        for l in &f.links {
            assert!(
                l.url.starts_with("http://") || l.url.starts_with("https://"),
                "{l:?}"
            );
            assert!(l.url.len() <= MAX_URL);
            assert!(
                l.text
                    .as_ref()
                    .is_none_or(|t| t.chars().count() <= MAX_LINK_TEXT && !t.is_empty())
            );
            assert!(urls.insert(l.url.clone()), "duplicate {l:?}");
        }
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("code ".to_owned()),
            Just("验证码：".to_owned()),
            Just("Order #".to_owned()),
            Just("\n".to_owned()),
            Just("<a href=\"".to_owned()),
            Just("https://".to_owned()),
            Just("&amp;".to_owned()),
            Just("</a>".to_owned()),
            Just("-".to_owned()),
            Just(" ".to_owned()),
            Just("é".to_owned()),
            "[0-9]{1,8}",
            "[A-Z0-9]{1,6}",
            any::<String>(),
        ]
    }

    /// [`label_matches`] as it was written first: every label starting
    /// with the byte, compared whole.
    fn label_matches_by_comparing_every_label(lower: &str) -> Vec<Label> {
        let b = lower.as_bytes();
        let mut out = Vec::new();
        for i in 0..b.len() {
            let word_start = i == 0 || !ascii_word(b[i - 1]);
            for &(word, kind) in LABELS {
                let w = word.as_bytes();
                if !b[i..].starts_with(w) {
                    continue;
                }
                let (first, last) = (w[0], w[w.len() - 1]);
                let end = i + w.len();
                if (ascii_word(first) && !word_start)
                    || (ascii_word(last) && b.get(end).copied().is_some_and(ascii_word))
                {
                    continue;
                }
                out.push(Label {
                    start: i,
                    end,
                    kind,
                });
            }
        }
        out
    }

    /// Text made of label words (whole, cut short, run together) and glue.
    fn label_text() -> impl Strategy<Value = String> {
        let word = (0..LABELS.len(), 0usize..6).prop_map(|(l, cut)| {
            let word = LABELS[l].0;
            // Cut at a character boundary: a prefix of the label, or all.
            let keep = word
                .char_indices()
                .map(|(i, _)| i)
                .chain([word.len()])
                .rev()
                .nth(cut)
                .filter(|&keep| keep > 0)
                .unwrap_or(word.len());
            word[..keep].to_owned()
        });
        let glue = prop_oneof![
            Just(String::new()),
            Just(" ".to_owned()),
            Just("-".to_owned()),
            Just(":".to_owned()),
            "[a-z0-9]{1,3}",
            any::<String>().prop_map(|s| s.to_ascii_lowercase()),
        ];
        proptest::collection::vec((word, glue), 0..12)
            .prop_map(|parts| parts.into_iter().map(|(w, g)| w + &g).collect())
    }

    /// Lines of label words, numbers, codes and glue, some far apart.
    fn mail_lines() -> impl Strategy<Value = String> {
        let part = prop_oneof![
            3 => piece(),
            3 => label_text(),
            2 => Just("\r\n".to_owned()),
            1 => "(\r\n){4,9}",
            1 => "[A-Z]{3,5}-[A-Z]{3,5}",
            // A code alone on its line, and a keyword's line.
            2 => "\r\n[0-9]{4,8}\r\n",
            2 => Just("\r\nuse this code\r\n".to_owned()),
        ];
        proptest::collection::vec(part, 0..64).prop_map(|parts| parts.concat())
    }

    #[test]
    fn the_corpus_reads_the_same_from_the_lines_near_candidates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/findings");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
            let path = entry.expect("a corpus entry").path();
            if path.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let raw = std::fs::read(&path).expect("a readable fixture");
            let parsed = crate::mail::parse_mail(&raw, "", None);
            let (subject, text, html) = (
                parsed.subject.as_deref(),
                parsed.detail.text.as_deref(),
                parsed.detail.html.as_deref(),
            );
            assert_eq!(
                find_reading(subject, text, html, false),
                find_reading(subject, text, html, true),
                "{}",
                path.display()
            );
            read += 1;
        }
        assert!(read >= 60, "only {read} mails");
    }

    proptest! {
        /// Skipping the lines no candidate is near changes no code found.
        #[test]
        fn reading_the_lines_near_candidates_finds_what_reading_all_finds(
            subject in mail_lines(),
            text in mail_lines(),
            html in mail_lines(),
        ) {
            prop_assert_eq!(
                find_reading(Some(&subject), Some(&text), Some(&html), false),
                find_reading(Some(&subject), Some(&text), Some(&html), true)
            );
            prop_assert_eq!(
                find_reading(None, Some(&text), None, false),
                find_reading(None, Some(&text), None, true)
            );
        }

        /// The first four bytes compared as one number find exactly what
        /// comparing every label whole finds.
        #[test]
        fn the_label_index_finds_what_comparing_every_label_finds(text in label_text()) {
            prop_assert_eq!(
                label_matches(&text, label_index()),
                label_matches_by_comparing_every_label(&text)
            );
        }

        #[test]
        fn any_input_keeps_the_invariants(
            subject in any::<String>(),
            pieces in proptest::collection::vec(piece(), 0..24),
        ) {
            let body = pieces.concat();
            check(&find(Some(&subject), Some(&body), Some(&body)));
            check(&find(None, None, Some(&body)));
        }
    }
}
