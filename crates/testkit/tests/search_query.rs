//! The search query language against a real FTS5 table (the bundled SQLite),
//! created exactly as the inbox creates `message_search`: no parsed query
//! gives FTS5 a syntax error, and the expressions find what they should.

use proptest::prelude::*;
use protocol::search::{Query, index_text, readable};
use rusqlite::Connection;

const CREATE: &str = "CREATE VIRTUAL TABLE message_search USING fts5(subject, sender, recipients, body, attachments, tokenize = 'unicode61 remove_diacritics 2')";

/// (id, subject, sender, recipients, body, attachments)
type Row = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const ROWS: &[Row] = &[
    (
        1,
        "Invoice 2024-03 for March",
        "Alice Smith <alice@example.com>",
        "bob@example.com",
        "Please find the invoice attached. Payment is due in thirty days.",
        "invoice-2024-03.pdf",
    ),
    (
        2,
        "Lunch tomorrow?",
        "Bob Jones <bob@example.com>",
        "alice@example.com",
        "Shall we have lunch with Alice tomorrow? The quick brown fox says hi.",
        "",
    ),
    (
        3,
        "Re: Projekt Müller",
        "Jürgen Müller <juergen@example.de>",
        "team@example.de",
        "Die Donaudampfschifffahrtsgesellschaft hat geantwortet. Grüße aus München.",
        "",
    ),
    (
        4,
        "請求書の送付について",
        "田中太郎 <tanaka@example.jp>",
        "sato@example.jp",
        "いつもお世話になっております。請求書を送付いたしますので、ご確認ください。来週の会議で詳細を説明します。",
        "請求書.pdf",
    ),
    (
        5,
        "您的验证码",
        "service@example.cn",
        "user@example.cn",
        "您的验证码是123456，请在五分钟内输入。",
        "",
    ),
    (
        6,
        "회의 일정 안내",
        "김민수 <minsu@example.kr>",
        "team@example.kr",
        "다음 주 회의는 월요일 오전 10시입니다.",
        "",
    ),
    (
        7,
        "New iPhone用ケース",
        "shop@example.jp",
        "customer@example.com",
        "iPhone用のケースが入荷しました。",
        "",
    ),
    (
        8,
        "Brown fox report",
        "carol@example.org",
        "dave@example.org",
        "A brown dog and a quick fox.",
        "",
    ),
    (
        9,
        "Meeting notes",
        "dave@example.org",
        "carol@example.org",
        "Notes: invoice reminders, quarterly numbers, quarterly planning.",
        "",
    ),
    (
        10,
        "码已验证",
        "x@example.cn",
        "y@example.cn",
        "会社の議事録です。",
        "",
    ),
    (
        11,
        "Quarterly planning",
        "erin@example.org",
        "team@example.org",
        "See you there.",
        "",
    ),
];

fn seeded() -> Connection {
    let db = Connection::open_in_memory().expect("an in-memory database");
    db.execute(CREATE, []).expect("the FTS5 table");
    for &(id, subject, sender, recipients, body, attachments) in ROWS {
        db.execute(
            "INSERT INTO message_search (rowid, subject, sender, recipients, body, attachments) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                id,
                index_text(subject),
                index_text(sender),
                index_text(recipients),
                index_text(body),
                index_text(attachments),
            ],
        )
        .expect("a row");
    }
    db
}

/// The ids `expression` matches (in rowid order), or FTS5's error.
fn matching(db: &Connection, expression: &str) -> rusqlite::Result<Vec<i64>> {
    let mut statement =
        db.prepare("SELECT rowid FROM message_search WHERE message_search MATCH ? ORDER BY rowid")?;
    let ids = statement.query_map([expression], |row| row.get(0))?;
    ids.collect()
}

/// The ids `q` finds, as the integrator will query: `match_expression`, or
/// every row but those `excluded_expression` matches.
fn search(db: &Connection, q: &str) -> Vec<i64> {
    let query = Query::parse(q).unwrap_or_else(|e| panic!("{q:?}: {}", e.message));
    if let Some(expression) = query.match_expression() {
        return matching(db, &expression).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
    let expression = query
        .excluded_expression()
        .unwrap_or_else(|| panic!("{q:?} has no text"));
    let mut statement = db
        .prepare(
            "SELECT rowid FROM message_search WHERE rowid NOT IN \
             (SELECT rowid FROM message_search WHERE message_search MATCH ?) ORDER BY rowid",
        )
        .expect("the exclusion");
    let ids = statement
        .query_map([expression], |row| row.get(0))
        .expect("the exclusion runs");
    ids.collect::<rusqlite::Result<_>>()
        .unwrap_or_else(|e| panic!("{q:?}: {e}"))
}

#[test]
fn words_prefixes_phrases_or_and_not() {
    let db = seeded();
    let cases: &[(&str, &[i64])] = &[
        ("invoice", &[1, 9]),
        ("invoice payment", &[1]),
        ("INVOICE Payment", &[1]),
        ("invoice lunch", &[]),
        ("invo*", &[1, 9]),
        ("lunc*", &[2]),
        ("quarter*", &[9, 11]),
        ("\"quick brown fox\"", &[2]),
        ("\"brown fox\"", &[2, 8]),
        ("\"quick fox\"", &[8]),
        ("\"fox brown\"", &[]),
        ("\"quick bro\"*", &[2]),
        ("lunch OR quarterly", &[2, 9, 11]),
        ("lunch OR quarterly notes", &[9]),
        ("fox -lunch", &[8]),
        ("fox -\"quick brown\"", &[8]),
        ("-invoice", &[2, 3, 4, 5, 6, 7, 8, 10, 11]),
        ("-invoice -fox -from:example", &[]),
        // FTS5's syntax is only text: `NEAR(quick` is the phrase "near quick",
        // which no row has.
        ("NEAR(quick fox)", &[]),
        ("quick NEAR", &[]),
        // `AND` is the word "and", which only row 8 has beside fox.
        ("fox AND", &[8]),
        ("\"\" OR lunch", &[2]),
        ("invoice-2024-03", &[1]),
        ("alice@example.com", &[1, 2]),
    ];
    for &(q, want) in cases {
        assert_eq!(search(&db, q), want, "{q:?}");
    }
}

#[test]
fn field_terms_match_only_their_column() {
    let db = seeded();
    let cases: &[(&str, &[i64])] = &[
        // Row 2's body and recipients say alice; only row 1 is from her.
        ("from:alice", &[1]),
        ("to:alice", &[2]),
        ("alice", &[1, 2]),
        ("subject:invoice", &[1]),
        ("subject:quarter*", &[11]),
        ("from:\"Alice Smith\"", &[1]),
        ("from:\"Alice Jones\"", &[]),
        ("from:alice OR to:alice", &[1, 2]),
        ("fox -subject:fox", &[2]),
        ("-from:example", &[]),
        ("subject:請求書", &[4]),
        ("from:田中", &[4]),
    ];
    for &(q, want) in cases {
        assert_eq!(search(&db, q), want, "{q:?}");
    }
}

#[test]
fn unicode_as_typed() {
    let db = seeded();
    let cases: &[(&str, &[i64])] = &[
        // remove_diacritics 2 folds both ways.
        ("Muller", &[3]),
        ("Müller", &[3]),
        ("MÜLLER", &[3]),
        ("Munchen", &[3]),
        ("Jurgen", &[3]),
        // A German compound is one token: found as typed, not by its parts.
        ("Donaudampfschifffahrtsgesellschaft", &[3]),
        ("Dampf", &[]),
        ("Donau*", &[3]),
        // Japanese, in unspaced sentences.
        ("請求書", &[4]),
        ("会議", &[4]),
        ("お世話", &[4]),
        ("請求*", &[4]),
        // Chinese: 验证码 is in row 5; row 10 has its characters, not adjacent.
        ("验证码", &[5]),
        ("验证", &[5, 10]),
        // Korean.
        ("회의", &[6]),
        ("월요일", &[6]),
        // Mixed scripts.
        ("iPhone用", &[7]),
        ("iphone", &[7]),
        ("ケース", &[7]),
        // Present, but not adjacent: 会社の議事録 has 会 and 議, and 社 and 議.
        ("社議", &[]),
        ("会議 -請求書", &[]),
    ];
    for &(q, want) in cases {
        assert_eq!(search(&db, q), want, "{q:?}");
    }
}

#[test]
fn subject_matches_rank_above_body_matches() {
    let db = seeded();
    let query = Query::parse("quarterly").expect("a word");
    let expression = query.match_expression().expect("an expression");
    let mut statement = db
        .prepare(
            "SELECT rowid FROM message_search WHERE message_search MATCH ? \
             ORDER BY bm25(message_search, 10.0, 5.0, 2.0, 1.0, 2.0)",
        )
        .expect("a ranked search");
    let ids: Vec<i64> = statement
        .query_map([expression], |row| row.get(0))
        .expect("it runs")
        .collect::<rusqlite::Result<_>>()
        .expect("ids");
    // Row 9 says quarterly twice in its body; row 11 once, in its subject.
    assert_eq!(ids, [11, 9]);
}

#[test]
fn what_fts5_does_with_edge_expressions() {
    let db = seeded();
    // A phrase of no token is no syntax error: it matches nothing, and
    // excludes nothing. A character that Rust calls alphanumeric but this
    // SQLite's unicode61 does not (Nag Mundari, Unicode 15) gives one.
    for expression in [
        "\"\"",
        "\"\" *",
        "sender : \"\" *",
        "\"fox\" AND \"\"",
        "(\"\" OR \"fox\")",
    ] {
        let ids = matching(&db, expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
        let fox_only = expression.contains("OR");
        assert_eq!(ids.is_empty(), !fox_only, "{expression}");
    }
    assert_eq!(matching(&db, "\"fox\" NOT \"\"").expect("runs"), [2, 8]);
    let q = Query::parse("\u{1E4D0}\u{1E4D1}*").expect("alphanumeric to Rust");
    let expression = q.match_expression().expect("an expression");
    assert_eq!(
        matching(&db, &expression).expect("no syntax error"),
        [0i64; 0]
    );
    // What the quotes protect against: the same text unquoted is an error.
    for raw in ["NEAR(a", "a OR", "^", "{subject body}:", "\"", "*", "-x"] {
        assert!(matching(&db, raw).is_err(), "{raw} unquoted");
    }
}

#[test]
fn snippets_read_back() {
    let db = seeded();
    let query = Query::parse("会議").expect("a word");
    let expression = query.match_expression().expect("an expression");
    let snippet: String = db
        .query_row(
            "SELECT snippet(message_search, 3, '', '', '…', 8) FROM message_search \
             WHERE message_search MATCH ?",
            [expression],
            |row| row.get(0),
        )
        .expect("a snippet");
    let shown = readable(&snippet);
    assert!(shown.contains("来週の会議で"), "{snippet:?} → {shown:?}");
}

/// Pieces that mean something to the parser or to FTS5, and noise.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("OR".to_owned()),
        Just("AND".to_owned()),
        Just("NOT".to_owned()),
        Just("\"".to_owned()),
        Just("\"\"".to_owned()),
        Just("-".to_owned()),
        Just("*".to_owned()),
        Just(" ".to_owned()),
        Just("from:".to_owned()),
        Just("to:".to_owned()),
        Just("subject:".to_owned()),
        Just("is:unread".to_owned()),
        Just("NEAR(".to_owned()),
        Just(")".to_owned()),
        Just("^".to_owned()),
        Just(":".to_owned()),
        Just("{subject body}:".to_owned()),
        Just("会議".to_owned()),
        Just("iPhone用".to_owned()),
        Just("\u{1E4D0}".to_owned()),
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
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn no_parsed_query_is_an_fts5_syntax_error(q in queries()) {
        let db = seeded();
        if let Ok(query) = Query::parse(&q) {
            for expression in [query.match_expression(), query.excluded_expression()]
                .into_iter()
                .flatten()
            {
                let result = matching(&db, &expression);
                prop_assert!(result.is_ok(), "{:?} → {:?}: {:?}", q, expression, result);
            }
        }
    }
}
