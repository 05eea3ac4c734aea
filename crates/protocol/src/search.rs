//! The search query language (`q` of a search), parsed into a [`Query`] and
//! turned into an FTS5 `MATCH` expression in which no text of the user's
//! reaches FTS5's own syntax unescaped.
//!
//! # The language
//!
//! As in mail clients:
//!
//! - `word`: every word must match; `word*` matches words starting with `word`.
//! - `"a phrase"`: the words next to each other, in that order; `"a phr"*`
//!   makes the last word a prefix.
//! - `-word`, `-"a phrase"`, `-from:x`: must not match.
//! - `a OR b`: either. `OR` binds tighter than the implicit AND, so `a OR b c`
//!   is `(a OR b) AND c`. Only uppercase `OR` is the operator; `or` is a word.
//! - `from:`, `to:`, `subject:` with a word, a prefix word or a quoted phrase
//!   (`from:alice`, `subject:invoice*`, `from:"Alice Smith"`): only that column
//!   (`sender`, `recipients`, `subject`, see [`Field::column`]).
//! - Filters: `has:attachment`, `is:unread`, `is:read`, `in:inbox`, `in:sent`,
//!   `before:YYYY-MM-DD`, `after:YYYY-MM-DD`, `thread:N`. A date is UTC
//!   midnight at the start of that day, as a [`Timestamp`]. `after:` includes
//!   that day (`received_at >= midnight`); `before:` excludes it
//!   (`received_at < midnight`). So `after:2024-03-01 before:2024-03-02` is
//!   exactly the 1st of March (UTC). `thread:N` takes a positive integer up to
//!   2^53-1 (the largest integer a JSON number carries exactly).
//!
//! Operator names are case-insensitive (`FROM:`, `Is:Unread`), and so are the
//! values of `has:`, `is:` and `in:`. A `name:value` whose name is not an
//! operator is plain text: `https://x.example/a` is a word. A filter's value
//! may be quoted (`is:"unread"`).
//!
//! # Decisions
//!
//! - Every term becomes an FTS5 string: `"` + [`index_text`] of its text with
//!   each `"` doubled + `"`. A prefix appends ` *` after the closing quote; a
//!   field term is `column : "..."`; an OR group is `("a" OR "b")`; the groups
//!   are joined with ` AND `, and each negated term follows as ` NOT term`.
//!   Nothing else of the user's text ever reaches the expression. FTS5
//!   tokenizes inside a string, so `foo-bar` is the phrase `foo bar`, and
//!   `NEAR(`, `^`, `:`, `*`, `{col}`, `AND` and `NOT` are harmless text there.
//! - Separators are whitespace and control characters (NUL included). Inside a
//!   quoted phrase a control character is kept in the term's text as a space.
//! - A term with no token character (no [`char::is_alphanumeric`] character:
//!   unicode61 splits on everything else) is dropped: `*`, `^`, `-`, `---`,
//!   `""`, an emoji. A dropped term leaves its OR group (`"" OR x` is `x`). If
//!   nothing is left, neither a term nor a filter, the query is refused.
//! - A lone `-` (followed by a separator) is the word `-`, so it is dropped;
//!   `--x` is the negated word `-x` (FTS5 reads it as `x`).
//! - `from:`/`to:`/`subject:` with nothing searchable (`from:`, `from:""`,
//!   `from:*`, and `subject: x` with a space after the colon) is refused
//!   rather than dropped: the user asked for a column and gave it nothing.
//! - A quoted string ends a token: `"a"b` is the phrase `a` then the word `b`,
//!   and `ab"c d"` is the word `ab` then the phrase `c d`.
//! - The trailing `*`s of a prefix are not part of the term's text; a `*`
//!   anywhere else is kept (FTS5 splits on it). Case and diacritics are kept as
//!   typed: unicode61 with `remove_diacritics 2` folds them, so `Muller` finds
//!   `Müller`.
//! - Filters cannot be negated (`-is:unread` is refused and points at
//!   `is:read`): there is no negated form of every filter, and a silent
//!   misreading would be worse than a 400.
//! - Repeated and contradicting filters (`is:read is:unread`,
//!   `in:inbox in:sent`, two `thread:`) are allowed and kept as given: they
//!   are all ANDed by the caller, so a contradiction simply matches nothing.
//! - [`MAX_TERMS`] counts the terms that are kept (dropped ones cost nothing);
//!   filters are not counted (at most [`MAX_QUERY_BYTES`] bytes bounds them).
//! - CJK text is indexed with a space between each CJK character and its
//!   neighbours ([`index_text`]), and so is every term, so a CJK word is a
//!   phrase of single characters that must be adjacent. A prefix on a term
//!   whose last character is CJK is a prefix of that one character, which in
//!   the index is always a token of its own: it adds nothing.

use std::borrow::Cow;

use crate::Timestamp;

/// The longest `q` accepted, in bytes of UTF-8.
pub const MAX_QUERY_BYTES: usize = crate::limits::MAX_QUERY_BYTES;

/// The most terms a query may keep: words, phrases and field terms, negated
/// ones included; filters are not counted.
pub const MAX_TERMS: usize = 32;

/// The largest `thread:` id: 2^53-1, the largest integer a JSON number holds
/// exactly.
const MAX_THREAD: u64 = (1 << 53) - 1;

/// A parsed search query: what must match, what must not, and the filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Groups that must all match (ANDed); each group is an OR of terms.
    pub must: Vec<Group>,
    /// Terms none of which may match.
    pub must_not: Vec<Term>,
    /// Filters on the message's metadata, all of which must hold, in the
    /// order given (repeats and contradictions included).
    pub filters: Vec<Filter>,
}

/// Terms joined by OR; a group of one is a plain term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group(pub Vec<Term>);

/// One word or phrase, perhaps limited to one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The column it is limited to (`from:`, `to:`, `subject:`), if any.
    pub field: Option<Field>,
    /// The text as the user typed it, unescaped: a phrase's inner text, a
    /// word without its prefix `*`s. Control characters inside a phrase are
    /// spaces here.
    pub text: String,
    /// Whether the last word is a prefix (`word*`, `"a phr"*`).
    pub prefix: bool,
}

/// A column a term may be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `subject:`
    Subject,
    /// `from:`
    From,
    /// `to:`
    To,
}

impl Field {
    /// The `message_search` column this field searches.
    pub fn column(self) -> &'static str {
        match self {
            Field::Subject => "subject",
            Field::From => "sender",
            Field::To => "recipients",
        }
    }
}

/// A condition on a message's metadata rather than its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `has:attachment`: the message has at least one attachment.
    HasAttachment,
    /// `is:unread`
    Unread,
    /// `is:read`
    Read,
    /// `in:inbox`: received messages.
    Inbox,
    /// `in:sent`: messages this inbox sent.
    Sent,
    /// `before:YYYY-MM-DD`: received before UTC midnight at the start of that
    /// day (exclusive: `received_at < midnight`).
    Before(Timestamp),
    /// `after:YYYY-MM-DD`: received at or after UTC midnight at the start of
    /// that day (inclusive of that day: `received_at >= midnight`).
    After(Timestamp),
    /// `thread:N`: messages of thread `N` (1 ..= 2^53-1).
    Thread(u64),
}

/// Why a `q` is refused: a sentence for a 400 that says what is wrong,
/// quoting at most a short piece of the query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// The sentence.
    pub message: String,
}

fn error(message: impl Into<String>) -> QueryError {
    QueryError {
        message: message.into(),
    }
}

/// The message when no term and no filter is left.
const NOTHING: &str =
    "There is nothing to search for in q: give a word, a phrase or a filter such as is:unread.";

/// What every message about a misplaced OR says.
const OR_JOINS: &str = "OR joins two words, phrases or from:/to:/subject: terms";

/// At most a short piece of the user's text, to quote in a message.
fn piece(text: &str) -> String {
    const MAX_CHARS: usize = 24;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX_CHARS).collect();
        short.push('…');
        short
    }
}

/// Whether `c` separates tokens of the query.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// Whether `text` has a character unicode61 keeps in a token.
fn has_token_char(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// One lexical item of the query.
enum Item {
    Term { term: Term, negated: bool },
    Filter(Filter),
    Or,
}

/// What `name:` means.
enum Operator {
    Field(Field),
    Filter(FilterOperator),
}

/// The operators whose value is a filter's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FilterOperator {
    Has,
    Is,
    In,
    Before,
    After,
    Thread,
}

/// The operator called `name` (case-insensitive), if it is one.
fn operator(name: &str) -> Option<Operator> {
    use FilterOperator::*;
    Some(match name.to_ascii_lowercase().as_str() {
        "from" => Operator::Field(Field::From),
        "to" => Operator::Field(Field::To),
        "subject" => Operator::Field(Field::Subject),
        "has" => Operator::Filter(Has),
        "is" => Operator::Filter(Is),
        "in" => Operator::Filter(In),
        "before" => Operator::Filter(Before),
        "after" => Operator::Filter(After),
        "thread" => Operator::Filter(Thread),
        _ => return None,
    })
}

/// Reads the query item by item.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// A quoted phrase, at its opening `"`: its text and whether a `*`
    /// follows the closing quote.
    fn phrase(&mut self) -> Result<(String, bool), QueryError> {
        self.pos += 1;
        let start = self.pos;
        let Some(len) = self.chars[start..].iter().position(|&c| c == '"') else {
            return Err(error(r#"A quote (") in q is not closed."#));
        };
        let text = self.chars[start..start + len]
            .iter()
            .map(|&c| if c.is_control() { ' ' } else { c })
            .collect();
        self.pos = start + len + 1;
        let mut prefix = false;
        while self.peek() == Some('*') {
            prefix = true;
            self.pos += 1;
        }
        Ok((text, prefix))
    }

    /// An unquoted run, up to a separator or a quote.
    fn bare(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is_separator(c) || c == '"' {
                break;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn next_item(&mut self) -> Result<Option<Item>, QueryError> {
        while self.peek().is_some_and(is_separator) {
            self.pos += 1;
        }
        let Some(first) = self.peek() else {
            return Ok(None);
        };
        let negated = first == '-'
            && self
                .chars
                .get(self.pos + 1)
                .is_some_and(|&c| !is_separator(c));
        if negated {
            self.pos += 1;
        }
        if self.peek() == Some('"') {
            let (text, prefix) = self.phrase()?;
            let term = Term {
                field: None,
                text,
                prefix,
            };
            return Ok(Some(Item::Term { term, negated }));
        }
        let word = self.bare();
        if word == "OR" && !negated {
            return Ok(Some(Item::Or));
        }
        if let Some((name, value)) = word.split_once(':')
            && let Some(operator) = operator(name)
        {
            let (value, prefix) = if value.is_empty() && self.peek() == Some('"') {
                self.phrase()?
            } else {
                let text = value.trim_end_matches('*');
                (text.to_owned(), text.len() < value.len())
            };
            let shown = if negated {
                format!("-{}", piece(&word))
            } else {
                piece(&word)
            };
            return match operator {
                Operator::Field(field) => {
                    if !has_token_char(&value) {
                        let name = name.to_ascii_lowercase();
                        return Err(error(format!(
                            "{name}: needs a word or a quoted phrase right after the colon, \
                             as in {name}:alice or {name}:\"Alice Smith\"."
                        )));
                    }
                    let term = Term {
                        field: Some(field),
                        text: value,
                        prefix,
                    };
                    Ok(Some(Item::Term { term, negated }))
                }
                Operator::Filter(_) if negated => Err(error(format!(
                    "A filter cannot be negated ('{shown}'): only words, phrases and \
                     from:/to:/subject: terms can. Use is:read for the opposite of is:unread."
                ))),
                Operator::Filter(operator) => {
                    let value = if prefix { format!("{value}*") } else { value };
                    filter(operator, &value).map(|filter| Some(Item::Filter(filter)))
                }
            };
        }
        let text = word.trim_end_matches('*');
        let term = Term {
            field: None,
            text: text.to_owned(),
            prefix: text.len() < word.len(),
        };
        Ok(Some(Item::Term { term, negated }))
    }
}

/// A filter operator's value, checked.
fn filter(operator: FilterOperator, value: &str) -> Result<Filter, QueryError> {
    let lower = value.to_ascii_lowercase();
    let shown = if value.is_empty() {
        "nothing".to_owned()
    } else {
        format!("'{}'", piece(value))
    };
    match operator {
        FilterOperator::Has => match lower.as_str() {
            "attachment" => Ok(Filter::HasAttachment),
            _ => Err(error(format!(
                "has: takes attachment (has:attachment), not {shown}."
            ))),
        },
        FilterOperator::Is => match lower.as_str() {
            "unread" => Ok(Filter::Unread),
            "read" => Ok(Filter::Read),
            _ => Err(error(format!(
                "is: takes unread or read (is:unread), not {shown}."
            ))),
        },
        FilterOperator::In => match lower.as_str() {
            "inbox" => Ok(Filter::Inbox),
            "sent" => Ok(Filter::Sent),
            _ => Err(error(format!(
                "in: takes inbox or sent (in:inbox), not {shown}."
            ))),
        },
        FilterOperator::Before | FilterOperator::After => {
            let name = if operator == FilterOperator::Before {
                "before"
            } else {
                "after"
            };
            let Some(at) = date(value) else {
                return Err(error(format!(
                    "{name}: takes a date as YYYY-MM-DD ({name}:2024-03-01), not {shown}."
                )));
            };
            Ok(if name == "before" {
                Filter::Before(at)
            } else {
                Filter::After(at)
            })
        }
        FilterOperator::Thread => {
            let id = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                value.parse::<u64>().ok()
            } else {
                None
            };
            match id {
                Some(id @ 1..=MAX_THREAD) => Ok(Filter::Thread(id)),
                _ => Err(error(format!(
                    "thread: takes a thread id, a positive integer up to {MAX_THREAD} \
                     (thread:42), not {shown}."
                ))),
            }
        }
    }
}

/// UTC midnight at the start of `YYYY-MM-DD`, if it is a real date.
fn date(value: &str) -> Option<Timestamp> {
    let bytes = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |n, &b| n * 10 + u32::from(b - b'0')))
    };
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let seconds = date.midnight().assume_utc().unix_timestamp();
    Some(Timestamp::from_millis(seconds.checked_mul(1000)?))
}

/// What the previous item was, for placing OR.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Nothing,
    Term,
    Negated,
    Filter,
    Or,
}

impl Query {
    /// Parses `q`. Refuses it, with a sentence that says why, when it is
    /// empty, too long, has too many terms, an unclosed quote, a misplaced
    /// `OR`, a filter with a bad value, a field with no value, or nothing to
    /// search for. Never panics.
    pub fn parse(q: &str) -> Result<Query, QueryError> {
        if q.len() > MAX_QUERY_BYTES {
            return Err(error(format!(
                "q is too long: {} bytes, and at most {MAX_QUERY_BYTES} are accepted.",
                q.len()
            )));
        }
        if q.chars().all(is_separator) {
            return Err(error(
                "q is empty: give a word, a phrase or a filter such as is:unread.",
            ));
        }
        let mut lexer = Lexer {
            chars: q.chars().collect(),
            pos: 0,
        };
        let mut must: Vec<Vec<Term>> = Vec::new();
        let mut must_not = Vec::new();
        let mut filters = Vec::new();
        let mut last = Last::Nothing;
        while let Some(item) = lexer.next_item()? {
            if last == Last::Or && !matches!(item, Item::Term { negated: false, .. }) {
                return Err(error(match item {
                    Item::Or => format!("{OR_JOINS}, and q has OR twice in a row."),
                    Item::Filter(_) => format!("{OR_JOINS}; it cannot stand next to a filter."),
                    _ => format!("{OR_JOINS}; it cannot stand next to a negated (-) term."),
                }));
            }
            last = match item {
                Item::Or => {
                    or_may_follow(last)?;
                    Last::Or
                }
                Item::Term {
                    term,
                    negated: false,
                } => {
                    match must.last_mut() {
                        Some(group) if last == Last::Or => group.push(term),
                        _ => must.push(vec![term]),
                    }
                    Last::Term
                }
                Item::Term {
                    term,
                    negated: true,
                } => {
                    must_not.push(term);
                    Last::Negated
                }
                Item::Filter(filter) => {
                    filters.push(filter);
                    Last::Filter
                }
            };
        }
        if last == Last::Or {
            return Err(error(format!("{OR_JOINS}, and q ends with OR.")));
        }
        let must: Vec<Group> = must
            .into_iter()
            .map(|terms| {
                Group(
                    terms
                        .into_iter()
                        .filter(|t| has_token_char(&t.text))
                        .collect(),
                )
            })
            .filter(|group| !group.0.is_empty())
            .collect();
        must_not.retain(|t: &Term| has_token_char(&t.text));
        let terms = must.iter().map(|g| g.0.len()).sum::<usize>() + must_not.len();
        if terms > MAX_TERMS {
            return Err(error(format!(
                "q has {terms} words, phrases and from:/to:/subject: terms, \
                 and at most {MAX_TERMS} are accepted."
            )));
        }
        if terms == 0 && filters.is_empty() {
            return Err(error(NOTHING));
        }
        Ok(Query {
            must,
            must_not,
            filters,
        })
    }

    /// The FTS5 MATCH expression of `must` (ANDed) with `must_not` (each
    /// ` NOT term`), when `must` is not empty. Bind it as a parameter.
    pub fn match_expression(&self) -> Option<String> {
        if self.must.is_empty() {
            return None;
        }
        let mut out = String::new();
        for (i, group) in self.must.iter().enumerate() {
            if i > 0 {
                out.push_str(" AND ");
            }
            match group.0.as_slice() {
                [term] => push_term(&mut out, term),
                terms => {
                    out.push('(');
                    for (j, term) in terms.iter().enumerate() {
                        if j > 0 {
                            out.push_str(" OR ");
                        }
                        push_term(&mut out, term);
                    }
                    out.push(')');
                }
            }
        }
        for term in &self.must_not {
            out.push_str(" NOT ");
            push_term(&mut out, term);
        }
        Some(out)
    }

    /// When `must` is empty but `must_not` is not: the expression (the
    /// negated terms ORed) whose matches are excluded (the integrator uses
    /// `id NOT IN (SELECT rowid FROM message_search WHERE message_search
    /// MATCH ?)`).
    pub fn excluded_expression(&self) -> Option<String> {
        if !self.must.is_empty() || self.must_not.is_empty() {
            return None;
        }
        let mut out = String::new();
        for (i, term) in self.must_not.iter().enumerate() {
            if i > 0 {
                out.push_str(" OR ");
            }
            push_term(&mut out, term);
        }
        Some(out)
    }
}

/// Refuses an OR that has no term before it.
fn or_may_follow(last: Last) -> Result<(), QueryError> {
    match last {
        Last::Term => Ok(()),
        Last::Nothing => Err(error(format!("{OR_JOINS}, and q starts with OR."))),
        Last::Or => Err(error(format!("{OR_JOINS}, and q has OR twice in a row."))),
        Last::Filter => Err(error(format!(
            "{OR_JOINS}; it cannot stand next to a filter."
        ))),
        Last::Negated => Err(error(format!(
            "{OR_JOINS}; it cannot stand next to a negated (-) term."
        ))),
    }
}

/// Appends one term as FTS5 syntax: `column : "text" *`.
fn push_term(out: &mut String, term: &Term) {
    if let Some(field) = term.field {
        out.push_str(field.column());
        out.push_str(" : ");
    }
    out.push('"');
    out.push_str(&index_text(&term.text).replace('"', "\"\""));
    out.push('"');
    if term.prefix {
        out.push_str(" *");
    }
}

/// Whether `text` may hold a CJK character: every one is at U+1100 or above,
/// whose UTF-8 begins with a byte of 0xE1 or more, so text without such a
/// byte (most mail) holds none. A byte scan, far quicker than decoding.
fn may_hold_cjk(text: &str) -> bool {
    text.bytes().any(|b| b >= 0xE1)
}

/// Whether `c` is a CJK character that is indexed on its own: Han (with
/// 々 〆 〇 and the Hangzhou numerals), Hiragana, Katakana (half-width
/// included, with the prolonged sound mark ー), Hangul syllables and jamo.
/// CJK punctuation (`、。「」・` and the like) is not.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3005}'..='\u{3007}' // 々 〆 〇
        | '\u{3021}'..='\u{3029}' // Hangzhou numerals
        | '\u{3038}'..='\u{303B}' // more Hangzhou numerals, 〻
        | '\u{3041}'..='\u{3096}' // Hiragana
        | '\u{309D}'..='\u{309F}' // Hiragana iteration marks, ゟ
        | '\u{30A1}'..='\u{30FA}' // Katakana
        | '\u{30FC}'..='\u{30FF}' // ー, Katakana iteration marks, ヿ
        | '\u{31F0}'..='\u{31FF}' // Katakana phonetic extensions
        | '\u{3400}'..='\u{4DBF}' // CJK extension A
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
        | '\u{FF66}'..='\u{FF9F}' // half-width Katakana
        | '\u{1100}'..='\u{11FF}' // Hangul jamo
        | '\u{3131}'..='\u{318E}' // Hangul compatibility jamo
        | '\u{A960}'..='\u{A97F}' // Hangul jamo extended A
        | '\u{AC00}'..='\u{D7A3}' // Hangul syllables
        | '\u{D7B0}'..='\u{D7FF}' // Hangul jamo extended B
        | '\u{FFA0}'..='\u{FFDC}' // half-width Hangul
        | '\u{1AFF0}'..='\u{1B16F}' // Kana extended and supplement
        | '\u{20000}'..='\u{2FA1F}' // CJK extensions B to F, compatibility supplement
        | '\u{30000}'..='\u{323AF}' // CJK extensions G and H
    )
}

/// Text as it is indexed: a space on each side of every CJK character
/// (collapse nothing else). Applied by the integrator to every indexed
/// column, and by the parser to every term.
///
/// Precisely: a single space is inserted between every two adjacent
/// characters of which at least one is CJK, whatever the other is (a space
/// too); none is added at the start or the end of the text. So `会议` becomes
/// `会 议`, `iPhone用` becomes `iPhone 用`, and `会 x` becomes `会  x`. Then
/// unicode61 (which would keep an unspaced run of CJK as one token) sees each
/// CJK character as a token, and [`readable`] can undo it exactly. Text with
/// no CJK character is returned as it is, borrowed.
pub fn index_text(text: &str) -> Cow<'_, str> {
    if !may_hold_cjk(text) || !text.chars().any(is_cjk) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut previous: Option<char> = None;
    for c in text.chars() {
        if let Some(p) = previous
            && (is_cjk(p) || is_cjk(c))
        {
            out.push(' ');
        }
        out.push(c);
        previous = Some(c);
    }
    Cow::Owned(out)
}

/// Undoes [`index_text`] for display (a snippet): drops a single space
/// between two CJK characters, and between a CJK character and a non-CJK one
/// only where [`index_text`] added it.
///
/// Since [`index_text`] adds exactly one space at every boundary that touches
/// a CJK character, the added spaces can be told from the original ones:
/// after a kept CJK character, the first space is the added one; before a
/// CJK character, a space is the added one unless one was already dropped at
/// that boundary. So `readable(&index_text(t)) == t` for every `t`, spaces
/// next to CJK included. On text that is not wholly the output of
/// [`index_text`] (a snippet cut mid-boundary, or with highlight markers
/// between a CJK character and its space) it is a best effort: at most one
/// space is dropped per boundary, and only one next to a CJK character.
pub fn readable(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<char> = None;
    let mut dropped = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' '
            && !dropped
            && let Some(p) = previous
            && (is_cjk(p) || chars.get(i + 1).is_some_and(|&n| is_cjk(n)))
        {
            dropped = true;
            continue;
        }
        out.push(c);
        previous = Some(c);
        dropped = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn word(text: &str) -> Term {
        Term {
            field: None,
            text: text.to_owned(),
            prefix: false,
        }
    }

    fn prefix(text: &str) -> Term {
        Term {
            prefix: true,
            ..word(text)
        }
    }

    fn field(field: Field, text: &str) -> Term {
        Term {
            field: Some(field),
            ..word(text)
        }
    }

    fn field_prefix(field: Field, text: &str) -> Term {
        Term {
            prefix: true,
            ..self::field(field, text)
        }
    }

    fn query(must: Vec<Vec<Term>>, must_not: Vec<Term>, filters: Vec<Filter>) -> Query {
        Query {
            must: must.into_iter().map(Group).collect(),
            must_not,
            filters,
        }
    }

    /// Only words, ANDed.
    fn words(texts: &[&str]) -> Query {
        query(
            texts.iter().map(|t| vec![word(t)]).collect(),
            vec![],
            vec![],
        )
    }

    fn filters(filters: Vec<Filter>) -> Query {
        query(vec![], vec![], filters)
    }

    fn day(millis: i64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    /// What a case expects: the AST with its two expressions, or an error
    /// containing a piece of text.
    enum Want {
        Ok(Query, Option<&'static str>, Option<&'static str>),
        Err(&'static str),
    }

    use Field::{From, Subject, To};
    use Want::{Err as Fails, Ok as Parses};

    fn cases() -> Vec<(String, Want)> {
        let or_joins = "OR joins two words, phrases or from:/to:/subject: terms";
        let nothing = NOTHING;
        let c = |q: &str, want: Want| (q.to_owned(), want);
        vec![
            // Words, prefixes, phrases.
            c(
                "hello world",
                Parses(
                    words(&["hello", "world"]),
                    Some(r#""hello" AND "world""#),
                    None,
                ),
            ),
            c(
                "invoice*",
                Parses(
                    query(vec![vec![prefix("invoice")]], vec![], vec![]),
                    Some(r#""invoice" *"#),
                    None,
                ),
            ),
            c(
                "invoice**",
                Parses(
                    query(vec![vec![prefix("invoice")]], vec![], vec![]),
                    Some(r#""invoice" *"#),
                    None,
                ),
            ),
            c(
                "foo*bar",
                Parses(words(&["foo*bar"]), Some(r#""foo*bar""#), None),
            ),
            c(
                r#""a phrase""#,
                Parses(words(&["a phrase"]), Some(r#""a phrase""#), None),
            ),
            c(
                r#""a phr"*"#,
                Parses(
                    query(vec![vec![prefix("a phr")]], vec![], vec![]),
                    Some(r#""a phr" *"#),
                    None,
                ),
            ),
            c(
                r#""a"b"#,
                Parses(words(&["a", "b"]), Some(r#""a" AND "b""#), None),
            ),
            c(
                r#"ab"c d""#,
                Parses(words(&["ab", "c d"]), Some(r#""ab" AND "c d""#), None),
            ),
            // Negation.
            c(
                "-word",
                Parses(
                    query(vec![], vec![word("word")], vec![]),
                    None,
                    Some(r#""word""#),
                ),
            ),
            c(
                r#"-"a phrase""#,
                Parses(
                    query(vec![], vec![word("a phrase")], vec![]),
                    None,
                    Some(r#""a phrase""#),
                ),
            ),
            c(
                "-from:x",
                Parses(
                    query(vec![], vec![field(From, "x")], vec![]),
                    None,
                    Some(r#"sender : "x""#),
                ),
            ),
            c(
                "-a -to:b",
                Parses(
                    query(vec![], vec![word("a"), field(To, "b")], vec![]),
                    None,
                    Some(r#""a" OR recipients : "b""#),
                ),
            ),
            c(
                "a -b",
                Parses(
                    query(vec![vec![word("a")]], vec![word("b")], vec![]),
                    Some(r#""a" NOT "b""#),
                    None,
                ),
            ),
            c(
                "a -b -from:c d OR e",
                Parses(
                    query(
                        vec![vec![word("a")], vec![word("d"), word("e")]],
                        vec![word("b"), field(From, "c")],
                        vec![],
                    ),
                    Some(r#""a" AND ("d" OR "e") NOT "b" NOT sender : "c""#),
                    None,
                ),
            ),
            c(
                "--x",
                Parses(
                    query(vec![], vec![word("-x")], vec![]),
                    None,
                    Some(r#""-x""#),
                ),
            ),
            c(
                "-OR",
                Parses(
                    query(vec![], vec![word("OR")], vec![]),
                    None,
                    Some(r#""OR""#),
                ),
            ),
            c("a -*", Parses(words(&["a"]), Some(r#""a""#), None)),
            c("-", Fails(nothing)),
            c("-*", Fails(nothing)),
            c("---", Fails(nothing)),
            c("- -", Fails(nothing)),
            // OR.
            c(
                "a OR b c",
                Parses(
                    query(
                        vec![vec![word("a"), word("b")], vec![word("c")]],
                        vec![],
                        vec![],
                    ),
                    Some(r#"("a" OR "b") AND "c""#),
                    None,
                ),
            ),
            c(
                "c a OR b",
                Parses(
                    query(
                        vec![vec![word("c")], vec![word("a"), word("b")]],
                        vec![],
                        vec![],
                    ),
                    Some(r#""c" AND ("a" OR "b")"#),
                    None,
                ),
            ),
            c(
                "a OR b OR c",
                Parses(
                    query(vec![vec![word("a"), word("b"), word("c")]], vec![], vec![]),
                    Some(r#"("a" OR "b" OR "c")"#),
                    None,
                ),
            ),
            c(
                "from:x OR subject:y*",
                Parses(
                    query(
                        vec![vec![field(From, "x"), field_prefix(Subject, "y")]],
                        vec![],
                        vec![],
                    ),
                    Some(r#"(sender : "x" OR subject : "y" *)"#),
                    None,
                ),
            ),
            c(
                "a or b",
                Parses(
                    words(&["a", "or", "b"]),
                    Some(r#""a" AND "or" AND "b""#),
                    None,
                ),
            ),
            c(r#""" OR x"#, Parses(words(&["x"]), Some(r#""x""#), None)),
            c(r#"a OR """#, Parses(words(&["a"]), Some(r#""a""#), None)),
            c("* OR ^", Fails(nothing)),
            c("OR", Fails(or_joins)),
            c("OR", Fails("starts with OR")),
            c("a OR", Fails(or_joins)),
            c("a OR", Fails("ends with OR")),
            c("OR b", Fails(or_joins)),
            c("a OR OR b", Fails(or_joins)),
            c("a OR OR b", Fails("twice in a row")),
            c("is:unread OR a", Fails("next to a filter")),
            c("a OR is:unread", Fails("next to a filter")),
            c("-a OR b", Fails("next to a negated")),
            c("a OR -b", Fails("next to a negated")),
            c("a OR -b", Fails(or_joins)),
            // Fields.
            c(
                "from:alice",
                Parses(
                    query(vec![vec![field(From, "alice")]], vec![], vec![]),
                    Some(r#"sender : "alice""#),
                    None,
                ),
            ),
            c(
                "FROM:Alice",
                Parses(
                    query(vec![vec![field(From, "Alice")]], vec![], vec![]),
                    Some(r#"sender : "Alice""#),
                    None,
                ),
            ),
            c(
                "to:bob@example.com",
                Parses(
                    query(vec![vec![field(To, "bob@example.com")]], vec![], vec![]),
                    Some(r#"recipients : "bob@example.com""#),
                    None,
                ),
            ),
            c(
                "subject:invoice*",
                Parses(
                    query(vec![vec![field_prefix(Subject, "invoice")]], vec![], vec![]),
                    Some(r#"subject : "invoice" *"#),
                    None,
                ),
            ),
            c(
                r#"from:"Alice Smith""#,
                Parses(
                    query(vec![vec![field(From, "Alice Smith")]], vec![], vec![]),
                    Some(r#"sender : "Alice Smith""#),
                    None,
                ),
            ),
            c(
                r#"Subject:"Q3 rep"*"#,
                Parses(
                    query(vec![vec![field_prefix(Subject, "Q3 rep")]], vec![], vec![]),
                    Some(r#"subject : "Q3 rep" *"#),
                    None,
                ),
            ),
            c(
                "from:a:b",
                Parses(
                    query(vec![vec![field(From, "a:b")]], vec![], vec![]),
                    Some(r#"sender : "a:b""#),
                    None,
                ),
            ),
            c("from:", Fails("from: needs a word or a quoted phrase")),
            c(r#"from:"""#, Fails("from: needs")),
            c("to:*", Fails("to: needs")),
            c("a TO:", Fails("to: needs")),
            // FTS5's own column filter syntax is text here, and `subject: x`
            // (with a space) is a field with no value.
            c("subject: x", Fails("subject: needs")),
            c(
                "subject:foo",
                Parses(
                    query(vec![vec![field(Subject, "foo")]], vec![], vec![]),
                    Some(r#"subject : "foo""#),
                    None,
                ),
            ),
            c(
                "{subject body}: x",
                Parses(
                    words(&["{subject", "body}:", "x"]),
                    Some(r#""{subject" AND "body}:" AND "x""#),
                    None,
                ),
            ),
            c(
                "subject : x",
                Parses(words(&["subject", "x"]), Some(r#""subject" AND "x""#), None),
            ),
            // Filters.
            c(
                "has:attachment",
                Parses(filters(vec![Filter::HasAttachment]), None, None),
            ),
            c(
                "HAS:Attachment",
                Parses(filters(vec![Filter::HasAttachment]), None, None),
            ),
            c(
                "is:unread",
                Parses(filters(vec![Filter::Unread]), None, None),
            ),
            c(
                "Is:Unread",
                Parses(filters(vec![Filter::Unread]), None, None),
            ),
            c(
                r#"is:"unread""#,
                Parses(filters(vec![Filter::Unread]), None, None),
            ),
            c("is:read", Parses(filters(vec![Filter::Read]), None, None)),
            c("in:inbox", Parses(filters(vec![Filter::Inbox]), None, None)),
            c("IN:SENT", Parses(filters(vec![Filter::Sent]), None, None)),
            c(
                "is:read is:unread",
                Parses(filters(vec![Filter::Read, Filter::Unread]), None, None),
            ),
            c(
                "in:inbox in:sent",
                Parses(filters(vec![Filter::Inbox, Filter::Sent]), None, None),
            ),
            c(
                "before:2024-03-01",
                Parses(
                    filters(vec![Filter::Before(day(1_709_251_200_000))]),
                    None,
                    None,
                ),
            ),
            c(
                "after:2024-02-29",
                Parses(
                    filters(vec![Filter::After(day(1_709_164_800_000))]),
                    None,
                    None,
                ),
            ),
            c(
                "AFTER:1970-01-01 before:9999-12-31",
                Parses(
                    filters(vec![
                        Filter::After(day(0)),
                        Filter::Before(day(253_402_214_400_000)),
                    ]),
                    None,
                    None,
                ),
            ),
            c(
                "thread:42",
                Parses(filters(vec![Filter::Thread(42)]), None, None),
            ),
            c(
                "thread:007",
                Parses(filters(vec![Filter::Thread(7)]), None, None),
            ),
            c(
                "thread:9007199254740991",
                Parses(
                    filters(vec![Filter::Thread(9_007_199_254_740_991)]),
                    None,
                    None,
                ),
            ),
            c(
                "invoice is:unread has:attachment",
                Parses(
                    query(
                        vec![vec![word("invoice")]],
                        vec![],
                        vec![Filter::Unread, Filter::HasAttachment],
                    ),
                    Some(r#""invoice""#),
                    None,
                ),
            ),
            c(
                "-spam in:inbox",
                Parses(
                    query(vec![], vec![word("spam")], vec![Filter::Inbox]),
                    None,
                    Some(r#""spam""#),
                ),
            ),
            c("is:starred", Fails("is: takes unread or read")),
            c("is:starred", Fails("'starred'")),
            c(
                "is:",
                Fails("is: takes unread or read (is:unread), not nothing."),
            ),
            c("is:unread*", Fails("is: takes")),
            c("has:pdf", Fails("has: takes attachment")),
            c("in:trash", Fails("in: takes inbox or sent")),
            c(
                "before:2024-13-01",
                Fails("before: takes a date as YYYY-MM-DD"),
            ),
            c("before:2023-02-29", Fails("before: takes a date")),
            c("before:yesterday", Fails("before: takes a date")),
            c("after:2024-1-01", Fails("after: takes a date")),
            c("after:2024-03-01*", Fails("after: takes a date")),
            c("after:", Fails("after: takes a date")),
            c("after:２０２４-03-01", Fails("after: takes a date")),
            c(
                "thread:0",
                Fails("thread: takes a thread id, a positive integer"),
            ),
            c("thread:abc", Fails("thread: takes")),
            c("thread:+5", Fails("thread: takes")),
            c("thread:-1", Fails("thread: takes")),
            c("thread:9007199254740992", Fails("up to 9007199254740991")),
            c("thread:99999999999999999999999", Fails("thread: takes")),
            c(
                "-is:unread",
                Fails("A filter cannot be negated ('-is:unread')"),
            ),
            c("-has:attachment", Fails("cannot be negated")),
            // Quotes.
            c(r#""unclosed"#, Fails(r#"A quote (") in q is not closed."#)),
            c(r#"a "b c"#, Fails("is not closed")),
            c(r#""a" "b"#, Fails("is not closed")),
            c(r#"from:"Alice"#, Fails("is not closed")),
            c(r#"""""#, Fails("is not closed")),
            c(r#""""#, Fails(nothing)),
            // Nothing to search for.
            c("", Fails("q is empty")),
            c("   ", Fails("q is empty")),
            c("\t\n\r", Fails("q is empty")),
            c("\0", Fails("q is empty")),
            c("*", Fails(nothing)),
            c("^", Fails(nothing)),
            c("🎉", Fails(nothing)),
            c("!!! ... ???", Fails(nothing)),
            // Hostile text is only ever text inside a string.
            c("^foo", Parses(words(&["^foo"]), Some(r#""^foo""#), None)),
            c(
                "NEAR(a b)",
                Parses(words(&["NEAR(a", "b)"]), Some(r#""NEAR(a" AND "b)""#), None),
            ),
            c(
                r#""NEAR(a b)""#,
                Parses(words(&["NEAR(a b)"]), Some(r#""NEAR(a b)""#), None),
            ),
            c(
                "AND NOT near",
                Parses(
                    words(&["AND", "NOT", "near"]),
                    Some(r#""AND" AND "NOT" AND "near""#),
                    None,
                ),
            ),
            c(
                "a AND b",
                Parses(
                    words(&["a", "AND", "b"]),
                    Some(r#""a" AND "AND" AND "b""#),
                    None,
                ),
            ),
            c(
                "https://x.example/a?b=c#d",
                Parses(
                    words(&["https://x.example/a?b=c#d"]),
                    Some(r#""https://x.example/a?b=c#d""#),
                    None,
                ),
            ),
            c(
                "alice@example.com",
                Parses(
                    words(&["alice@example.com"]),
                    Some(r#""alice@example.com""#),
                    None,
                ),
            ),
            c(
                "mailto:alice@example.com",
                Parses(
                    words(&["mailto:alice@example.com"]),
                    Some(r#""mailto:alice@example.com""#),
                    None,
                ),
            ),
            c(
                "a\0b\u{7}c\u{1b}[31md\u{7f}e",
                Parses(
                    words(&["a", "b", "c", "[31md", "e"]),
                    Some(r#""a" AND "b" AND "c" AND "[31md" AND "e""#),
                    None,
                ),
            ),
            c("\"a\0b\"", Parses(words(&["a b"]), Some(r#""a b""#), None)),
            c(
                "🎉 party🎉",
                Parses(words(&["party🎉"]), Some(r#""party🎉""#), None),
            ),
            c(
                "שלום עולם",
                Parses(words(&["שלום", "עולם"]), Some(r#""שלום" AND "עולם""#), None),
            ),
            c(
                "\u{202e}مرحبا\u{202c}",
                Parses(
                    words(&["\u{202e}مرحبا\u{202c}"]),
                    Some("\"\u{202e}مرحبا\u{202c}\""),
                    None,
                ),
            ),
            c(
                "Müller Straße",
                Parses(
                    words(&["Müller", "Straße"]),
                    Some(r#""Müller" AND "Straße""#),
                    None,
                ),
            ),
            // CJK: a word is a phrase of single characters.
            c(
                "請求書",
                Parses(words(&["請求書"]), Some(r#""請 求 書""#), None),
            ),
            c(
                "会議 from:田中",
                Parses(
                    query(
                        vec![vec![word("会議")], vec![field(From, "田中")]],
                        vec![],
                        vec![],
                    ),
                    Some(r#""会 議" AND sender : "田 中""#),
                    None,
                ),
            ),
            c(
                "验证码",
                Parses(words(&["验证码"]), Some(r#""验 证 码""#), None),
            ),
            c(
                "회의록",
                Parses(words(&["회의록"]), Some(r#""회 의 록""#), None),
            ),
            c("ｶﾀｶﾅ", Parses(words(&["ｶﾀｶﾅ"]), Some(r#""ｶ ﾀ ｶ ﾅ""#), None)),
            c(
                "iPhone用",
                Parses(words(&["iPhone用"]), Some(r#""iPhone 用""#), None),
            ),
            c(
                "iPhone用*",
                Parses(
                    query(vec![vec![prefix("iPhone用")]], vec![], vec![]),
                    Some(r#""iPhone 用" *"#),
                    None,
                ),
            ),
            c(
                "会議、資料",
                Parses(words(&["会議、資料"]), Some(r#""会 議 、 資 料""#), None),
            ),
            c(
                "-会議",
                Parses(
                    query(vec![], vec![word("会議")], vec![]),
                    None,
                    Some(r#""会 議""#),
                ),
            ),
            c("、。", Fails(nothing)),
        ]
    }

    #[test]
    fn the_table_of_queries() {
        for (q, want) in cases() {
            let got = Query::parse(&q);
            match (want, got) {
                (Parses(ast, matching, excluded), Ok(query)) => {
                    assert_eq!(query, ast, "{q:?}");
                    assert_eq!(query.match_expression().as_deref(), matching, "{q:?}");
                    assert_eq!(query.excluded_expression().as_deref(), excluded, "{q:?}");
                }
                (Fails(part), Err(e)) => {
                    assert!(
                        e.message.contains(part),
                        "{q:?}: {:?} lacks {part:?}",
                        e.message
                    );
                    assert_eq!(e.to_string(), e.message);
                }
                (Parses(..), Err(e)) => panic!("{q:?} was refused: {}", e.message),
                (Fails(part), Ok(query)) => panic!("{q:?} parsed, expected {part:?}: {query:?}"),
            }
        }
    }

    #[test]
    fn limits_are_named_and_enforced() {
        let many = "a ".repeat(10_000);
        let e = Query::parse(&many).expect_err("10,000 terms");
        assert!(e.message.contains("1024"), "{}", e.message);
        assert!(e.message.contains("20000 bytes"), "{}", e.message);
        let long = "x".repeat(2_000);
        let e = Query::parse(&long).expect_err("2,000 bytes");
        assert!(e.message.contains("at most 1024"), "{}", e.message);
        assert!(
            !e.message
                .contains("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
        );

        let exactly = "x".repeat(MAX_QUERY_BYTES);
        assert!(Query::parse(&exactly).is_ok());
        let one_more = "x".repeat(MAX_QUERY_BYTES + 1);
        assert!(Query::parse(&one_more).is_err());

        let terms = |n: usize, sign: &str| {
            (0..n)
                .map(|i| format!("{sign}w{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let ok = Query::parse(&terms(MAX_TERMS, "")).expect("32 terms");
        assert_eq!(ok.must.len(), MAX_TERMS);
        for sign in ["", "-", "from:"] {
            let e = Query::parse(&terms(MAX_TERMS + 1, sign)).expect_err("33 terms");
            assert!(e.message.contains("at most 32"), "{}", e.message);
        }
        let mixed = format!("{} -x", terms(MAX_TERMS, ""));
        assert!(Query::parse(&mixed).is_err());
        let or = (0..=MAX_TERMS)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert!(Query::parse(&or).is_err());
        // Dropped terms cost nothing, and filters are not terms.
        let dropped = format!("{} {}", "* ".repeat(100), terms(MAX_TERMS, ""));
        assert!(Query::parse(&dropped).is_ok());
        let many_filters = format!("{} {}", "is:unread ".repeat(50), terms(MAX_TERMS, ""));
        assert!(Query::parse(&many_filters).is_ok());
    }

    #[test]
    fn errors_quote_only_a_short_piece() {
        let value = "s".repeat(200);
        let e = Query::parse(&format!("is:{value}")).expect_err("bad value");
        assert!(e.message.len() < 120, "{}", e.message);
        assert!(e.message.contains('…'), "{}", e.message);
    }

    #[test]
    fn a_quote_inside_a_term_is_doubled() {
        // The language cannot put a quote inside a term, but an AST built by
        // hand can: it is still only text.
        let q = query(
            vec![vec![word(r#"say "hi" ) OR x"#)]],
            vec![field_prefix(To, r#"""#)],
            vec![],
        );
        assert_eq!(
            q.match_expression().as_deref(),
            Some(r#""say ""hi"" ) OR x" NOT recipients : """" *"#)
        );
    }

    #[test]
    fn fields_name_their_columns() {
        assert_eq!(Field::Subject.column(), "subject");
        assert_eq!(Field::From.column(), "sender");
        assert_eq!(Field::To.column(), "recipients");
    }

    /// The byte scan that lets most text skip the CJK pass misses no CJK
    /// character: checked for every character there is.
    #[test]
    fn the_quick_scan_sees_every_cjk_character() {
        let mut cjk = 0;
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if is_cjk(c) {
                cjk += 1;
                assert!(may_hold_cjk(c.encode_utf8(&mut [0; 4])), "{c:?}");
            }
        }
        assert!(cjk > 100_000, "{cjk}");
        assert!(!may_hold_cjk("plain text, and é ü ß"));
        assert!(may_hold_cjk("会"));
    }

    #[test]
    fn index_text_spaces_cjk_and_readable_undoes_it() {
        let cases = [
            ("plain text", "plain text"),
            ("", ""),
            ("請求書", "請 求 書"),
            ("請求書を送ります", "請 求 書 を 送 り ま す"),
            ("iPhone用ケース", "iPhone 用 ケ ー ス"),
            ("会 x", "会  x"),
            ("x 会", "x  会"),
            ("会 议", "会   议"),
            (" 会 ", "  会  "),
            ("회의록입니다", "회 의 록 입 니 다"),
            ("ｶﾀｶﾅ", "ｶ ﾀ ｶ ﾅ"),
            ("会議、資料。", "会 議 、 資 料 。"),
            ("「はい」", "「 は い 」"),
            ("a𠀀b", "a 𠀀 b"),
        ];
        for (text, indexed) in cases {
            assert_eq!(index_text(text), indexed, "{text:?}");
            assert_eq!(readable(indexed), text, "{indexed:?}");
        }
        assert!(matches!(index_text("no cjk here"), Cow::Borrowed(_)));
        // Best effort on text index_text did not make: at most one space per
        // boundary goes.
        assert_eq!(readable("会 <b>议</b> x"), "会<b>议</b> x");
        assert_eq!(readable("会    议"), "会  议");
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Pieces that mean something to the parser or to FTS5, and noise.
        fn fragment() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("OR".to_owned()),
                Just("\"".to_owned()),
                Just("-".to_owned()),
                Just("*".to_owned()),
                Just(" ".to_owned()),
                Just("from:".to_owned()),
                Just("subject:".to_owned()),
                Just("is:".to_owned()),
                Just("thread:".to_owned()),
                Just("before:2024-03-01".to_owned()),
                Just("NEAR(".to_owned()),
                Just("^".to_owned()),
                Just("{subject body}:".to_owned()),
                Just("会議".to_owned()),
                Just("\0".to_owned()),
                "[a-zA-Z0-9]{1,6}",
                any::<char>().prop_map(String::from),
            ]
        }

        fn queries() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                prop::collection::vec(fragment(), 0..24).prop_map(|parts| parts.concat()),
                prop::collection::vec(fragment(), 0..24).prop_map(|parts| parts.join(" ")),
            ]
        }

        proptest! {
            #[test]
            fn any_string_parses_or_is_refused(q in queries()) {
                match Query::parse(&q) {
                    Ok(query) => {
                        prop_assert!(q.len() <= MAX_QUERY_BYTES);
                        let terms: Vec<&Term> = query
                            .must
                            .iter()
                            .flat_map(|g| &g.0)
                            .chain(&query.must_not)
                            .collect();
                        prop_assert!(terms.len() <= MAX_TERMS);
                        prop_assert!(!terms.is_empty() || !query.filters.is_empty());
                        for term in terms {
                            prop_assert!(term.text.chars().any(char::is_alphanumeric));
                        }
                        prop_assert!(query.must.iter().all(|g| !g.0.is_empty()));
                        prop_assert_eq!(query.match_expression().is_some(), !query.must.is_empty());
                        prop_assert_eq!(
                            query.excluded_expression().is_some(),
                            query.must.is_empty() && !query.must_not.is_empty()
                        );
                    }
                    Err(e) => prop_assert!(!e.message.is_empty()),
                }
            }

            #[test]
            fn readable_undoes_index_text_for_any_text(text in any::<String>()) {
                prop_assert_eq!(readable(&index_text(&text)), text);
            }

            #[test]
            fn readable_undoes_index_text_without_whitespace_next_to_cjk(
                text in "[a-zA-Z0-9.,!?@ 会議請求書验证码회의ｶﾀあいうアイウー、。「」🎉]{0,40}"
            ) {
                let chars: Vec<char> = text.chars().collect();
                let near_space = chars.windows(2).any(|w| {
                    (is_cjk(w[0]) && w[1].is_whitespace()) || (w[0].is_whitespace() && is_cjk(w[1]))
                });
                prop_assume!(!near_space);
                prop_assert_eq!(readable(&index_text(&text)), text);
            }
        }
    }
}
