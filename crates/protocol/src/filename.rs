//! File names and media types of attachments, both ways: what a sender may
//! attach (checked, refused with a reason) and what a download says (made safe,
//! never refused). The router checks outbound names and Content-IDs with these;
//! the inbox builds a download's `Content-Disposition` and `Content-Type`.
//!
//! A received name is whatever the sender wrote, already decoded from RFC 2231
//! or RFC 2047 by the parser, so it may hold anything: path separators meant
//! to climb out of a download folder, CR/LF meant to end a header, or a
//! right-to-left override that makes `exe.pdf` read as `fdp.exe`.

/// The longest download name, in bytes of UTF-8 (well inside the 255 bytes
/// most file systems allow, leaving room for a "(1)" a browser adds).
pub const MAX_DOWNLOAD_NAME_BYTES: usize = 200;
/// The name a download is saved under when the attachment has none left.
pub const FALLBACK_NAME: &str = "attachment";
/// The longest file name a sender may attach, in bytes of UTF-8.
pub const MAX_OUTBOUND_NAME_BYTES: usize = 255;
/// The longest Content-ID a sender may give, in characters (all ASCII).
pub const MAX_CONTENT_ID_CHARS: usize = 127;
/// The longest type or subtype of a media type (RFC 6838's restricted-name).
const MAX_MEDIA_NAME_CHARS: usize = 127;
/// The longest extension [`download_name`] keeps when it cuts a long name.
const MAX_KEPT_EXTENSION_BYTES: usize = 16;

/// The characters of Unicode's Bidi_Control property: invisible, and able to
/// reorder what a name shows.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// What a download name never contains: a control character (Unicode Cc),
/// a bidi control, or a path separator of any platform.
fn is_removed(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || c == '/' || c == '\\'
}

fn is_dot_or_space(c: char) -> bool {
    c == '.' || c.is_whitespace()
}

/// The name a download is saved under, from the attachment's decoded name:
/// every control character (U+0000–U+001F, U+007F–U+009F), every bidi control
/// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and every `/` and
/// `\` removed; then leading dots and white space, and trailing white space
/// and dots, stripped; then cut to at most [`MAX_DOWNLOAD_NAME_BYTES`] on a
/// character boundary. A cut keeps the extension (the text after the last
/// dot, when it is at most 16 bytes and has no white space), so
/// `<long>.pdf` stays a PDF. [`FALLBACK_NAME`] when nothing is left or there
/// was no name.
pub fn download_name(name: Option<&str>) -> String {
    let kept: String = name
        .unwrap_or("")
        .chars()
        .filter(|&c| !is_removed(c))
        .collect();
    let trimmed = kept
        .trim_start_matches(is_dot_or_space)
        .trim_end_matches(is_dot_or_space);
    let cut = cut_keeping_extension(trimmed);
    if cut.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        cut
    }
}

/// `name` (which starts with neither a dot nor white space) in at most
/// [`MAX_DOWNLOAD_NAME_BYTES`], its extension kept when it has a short one.
fn cut_keeping_extension(name: &str) -> String {
    if name.len() <= MAX_DOWNLOAD_NAME_BYTES {
        return name.to_owned();
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|ext| ext.len() <= MAX_KEPT_EXTENSION_BYTES && !ext.contains(char::is_whitespace));
    let extension = extension.unwrap_or("");
    let stem = &name[..name.len() - extension.len()];
    // The cut may end in the middle of a run of dots or spaces, which the
    // name as a whole was stripped of; strip them again. The stem's first
    // character is neither, so something is always left.
    let stem = prefix_within(stem, MAX_DOWNLOAD_NAME_BYTES - extension.len())
        .trim_end_matches(is_dot_or_space);
    format!("{stem}{extension}")
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn prefix_within(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// RFC 5987's attr-char: what `filename*` may hold without percent-encoding.
fn is_attr_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// A download's `Content-Disposition` (RFC 6266):
/// `attachment; filename="<fallback>"; filename*=UTF-8''<percent-encoded>`.
/// The quoted fallback, for clients that do not read `filename*`, is `name`
/// with every non-ASCII character, `"`, `\`, `%`, `;` (and any ASCII control
/// character) replaced by `_`; `filename*` is `name`'s UTF-8 with every byte
/// that is not an RFC 5987 attr-char written `%XX` (uppercase). `name` is a
/// [`download_name`]; the value is a safe header line whatever it is.
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if !c.is_ascii() || c.is_ascii_control() || matches!(c, '"' | '\\' | '%' | ';') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut value = format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''");
    for &byte in name.as_bytes() {
        if is_attr_char(byte) {
            value.push(char::from(byte));
        } else {
            value.push_str(&format!("%{byte:02X}"));
        }
    }
    value
}

/// RFC 6838's restricted-name: 1 to 127 characters, the first a letter or
/// digit, the others letters, digits or `!#$&-^_.+`.
fn is_restricted_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_MEDIA_NAME_CHARS
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '!' | '#' | '$' | '&' | '-' | '^' | '_' | '.' | '+')
        })
}

/// A declared media type (`type/subtype`, without parameters), lowercased,
/// when both names are RFC 6838 restricted-names; `None` otherwise, and the
/// download says `application/octet-stream`. White space around the whole
/// is ignored; inside it, it makes the type invalid.
pub fn media_type(declared: &str) -> Option<String> {
    let (kind, subtype) = declared.trim().split_once('/')?;
    (is_restricted_name(kind) && is_restricted_name(subtype)).then(|| {
        format!(
            "{}/{}",
            kind.to_ascii_lowercase(),
            subtype.to_ascii_lowercase()
        )
    })
}

/// Why a file name a sender attaches cannot be sent, or `Ok`. The reason is
/// a short phrase for an error message ("must not be empty").
///
/// Refused: an empty name, one longer than [`MAX_OUTBOUND_NAME_BYTES`], one
/// with a control character or a bidi control (see [`download_name`]), a `/`
/// or `\`, a leading `.`, or nothing but dots and white space. We refuse
/// rather than clean what we send, so the sender learns the name the
/// recipient will see.
pub fn check_outbound_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("must not be empty")
    } else if name.len() > MAX_OUTBOUND_NAME_BYTES {
        Err("must be at most 255 bytes")
    } else if name.chars().any(char::is_control) {
        Err("must not contain control characters")
    } else if name.chars().any(is_bidi_control) {
        Err("must not contain bidirectional control characters")
    } else if name.contains(['/', '\\']) {
        Err("must not contain a slash or backslash")
    } else if name.starts_with('.') {
        Err("must not start with a dot")
    } else if name.chars().all(is_dot_or_space) {
        Err("must not be only dots and spaces")
    } else {
        Ok(())
    }
}

/// The characters of a Content-ID we accept: RFC 5322's atext, `.` and `@`.
fn is_content_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.@-".contains(c)
}

/// Why a Content-ID a sender gives cannot be used, or `Ok`: it must be 1 to
/// [`MAX_CONTENT_ID_CHARS`] characters of `[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]`,
/// without angle brackets (we add them), and not start or end with `.`.
pub fn check_content_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        Err("must not be empty")
    } else if id.chars().count() > MAX_CONTENT_ID_CHARS {
        Err("must be at most 127 characters")
    } else if id.contains(['<', '>']) {
        Err("must be given without angle brackets")
    } else if !id.chars().all(is_content_id_char) {
        Err("may contain only letters, digits and !#$%&'*+/=?^_`{|}~.@-")
    } else if id.starts_with('.') || id.ends_with('.') {
        Err("must not start or end with a dot")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_name_loses_separators_controls_and_bidi_and_keeps_the_rest() {
        let cases: &[(Option<&str>, &str)] = &[
            (None, "attachment"),
            (Some(""), "attachment"),
            (Some("report.pdf"), "report.pdf"),
            (Some("Grüße.pdf"), "Grüße.pdf"),
            (Some("../../etc/passwd"), "etcpasswd"),
            (Some("..\\..\\boot.ini"), "boot.ini"),
            (Some("C:\\Windows\\x.dll"), "C:Windowsx.dll"),
            (Some("\u{202E}gpj.exe"), "gpj.exe"),
            (Some("invoice\u{202E}fdp.exe"), "invoicefdp.exe"),
            (
                Some("a\u{200E}b\u{200F}c\u{2066}d\u{2069}e\u{061C}f"),
                "abcdef",
            ),
            (Some("\r\nX-Evil: 1.txt"), "X-Evil: 1.txt"),
            (Some("tab\there\u{0}.txt"), "tabhere.txt"),
            (Some("\u{7F}\u{85}\u{9F}x"), "x"),
            (Some("  .hidden  "), "hidden"),
            (Some(".bashrc"), "bashrc"),
            (Some("name.txt. . "), "name.txt"),
            (Some("\u{3000}wide space\u{A0}"), "wide space"),
            (Some("...."), "attachment"),
            (Some(" / \\ . "), "attachment"),
            (Some("\u{202E}"), "attachment"),
        ];
        for &(name, expected) in cases {
            assert_eq!(download_name(name), expected, "{name:?}");
        }
    }

    #[test]
    fn a_long_download_name_is_cut_on_a_character_boundary_keeping_its_extension() {
        let long = "a".repeat(300) + ".pdf";
        let cut = download_name(Some(&long));
        assert_eq!(cut, "a".repeat(196) + ".pdf");

        // 'ü' is two bytes: 100 of them fill the 200; with ".pdf", 98 do.
        let umlauts = "ü".repeat(150);
        assert_eq!(download_name(Some(&umlauts)), "ü".repeat(100));
        let umlauts_pdf = "ü".repeat(150) + ".pdf";
        assert_eq!(download_name(Some(&umlauts_pdf)), "ü".repeat(98) + ".pdf");

        // No extension, or one too long or with spaces to be one: a plain cut.
        let plain = "b".repeat(250);
        assert_eq!(download_name(Some(&plain)), "b".repeat(200));
        let sentence = "c".repeat(250) + ". and then some words";
        assert_eq!(download_name(Some(&sentence)), "c".repeat(200));

        // The cut strips the dots and spaces it ends on.
        let spaced = "d".repeat(195) + "          e.txt";
        assert_eq!(download_name(Some(&spaced)), "d".repeat(195) + ".txt");
        let exactly = "e".repeat(196) + ".txt";
        assert_eq!(download_name(Some(&exactly)), exactly);
    }

    #[test]
    fn a_content_disposition_quotes_an_ascii_fallback_and_encodes_the_name() {
        let cases = [
            (
                "report.pdf",
                r#"attachment; filename="report.pdf"; filename*=UTF-8''report.pdf"#,
            ),
            (
                "Grüße.pdf",
                r#"attachment; filename="Gr__e.pdf"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.pdf"#,
            ),
            (
                r#"a "b" \c; 100%.txt"#,
                r#"attachment; filename="a _b_ _c_ 100_.txt"; filename*=UTF-8''a%20%22b%22%20%5Cc%3B%20100%25.txt"#,
            ),
            (
                "!#$&+-.^_`|~*'(),=",
                r#"attachment; filename="!#$&+-.^_`|~*'(),="; filename*=UTF-8''!#$&+-.^_`|~%2A%27%28%29%2C%3D"#,
            ),
            (
                "日本.txt",
                r#"attachment; filename="__.txt"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"#,
            ),
            (
                "😀",
                r#"attachment; filename="_"; filename*=UTF-8''%F0%9F%98%80"#,
            ),
            // Not a download name, but still one safe header line.
            (
                "a\r\nb",
                r#"attachment; filename="a__b"; filename*=UTF-8''a%0D%0Ab"#,
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(content_disposition(name), expected, "{name:?}");
        }
    }

    #[test]
    fn a_media_type_is_two_restricted_names_lowercased() {
        let cases = [
            ("application/pdf", Some("application/pdf")),
            ("Image/PNG", Some("image/png")),
            (" text/plain ", Some("text/plain")),
            (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            ),
            ("application/x-tar+gzip", Some("application/x-tar+gzip")),
            ("a/b!#$&-^_.+", Some("a/b!#$&-^_.+")),
            ("3d/x", Some("3d/x")),
            ("", None),
            ("text", None),
            ("text/", None),
            ("/plain", None),
            ("text/plain/x", None),
            ("text/plain; charset=utf-8", None),
            ("text /plain", None),
            (".text/plain", None),
            ("text/-plain", None),
            ("text/pl ain", None),
            ("text/plain\r\nX-Evil: 1", None),
            ("tëxt/plain", None),
            ("text/html\"", None),
        ];
        for (declared, expected) in cases {
            assert_eq!(media_type(declared).as_deref(), expected, "{declared:?}");
        }
        let longest = format!("{}/{}", "a".repeat(127), "b".repeat(127));
        assert_eq!(media_type(&longest).as_deref(), Some(longest.as_str()));
        assert_eq!(media_type(&format!("{}/b", "a".repeat(128))), None);
        assert_eq!(media_type(&format!("a/{}", "b".repeat(128))), None);
    }

    #[test]
    fn an_outbound_name_is_refused_with_its_reason() {
        let long = "x".repeat(256);
        let longest = "x".repeat(255);
        let cases: &[(&str, Result<(), &str>)] = &[
            ("report.pdf", Ok(())),
            ("Grüße 2024.pdf", Ok(())),
            ("no extension", Ok(())),
            ("trailing.dot.", Ok(())),
            (&longest, Ok(())),
            ("", Err("must not be empty")),
            (&long, Err("must be at most 255 bytes")),
            ("a\r\nb.txt", Err("must not contain control characters")),
            ("a\u{0}.txt", Err("must not contain control characters")),
            ("a\u{85}.txt", Err("must not contain control characters")),
            (
                "\u{202E}gpj.exe",
                Err("must not contain bidirectional control characters"),
            ),
            (
                "a\u{2067}.txt",
                Err("must not contain bidirectional control characters"),
            ),
            ("../passwd", Err("must not contain a slash or backslash")),
            ("a\\b.txt", Err("must not contain a slash or backslash")),
            (".env", Err("must not start with a dot")),
            ("..", Err("must not start with a dot")),
            (" ", Err("must not be only dots and spaces")),
            (" . .", Err("must not be only dots and spaces")),
        ];
        for &(name, expected) in cases {
            assert_eq!(check_outbound_name(name), expected, "{name:?}");
        }
        // 'ü' is two bytes: 128 of them are 256 bytes, though 128 characters.
        assert_eq!(
            check_outbound_name(&"ü".repeat(128)),
            Err("must be at most 255 bytes")
        );
    }

    #[test]
    fn a_content_id_is_refused_with_its_reason() {
        let longest = "c".repeat(127);
        let long = "c".repeat(128);
        let cases: &[(&str, Result<(), &str>)] = &[
            ("logo", Ok(())),
            ("logo.png@example.com", Ok(())),
            ("part1.2/3=x+y", Ok(())),
            ("!#$%&'*+/=?^_`{|}~.@-", Ok(())),
            (&longest, Ok(())),
            ("", Err("must not be empty")),
            (&long, Err("must be at most 127 characters")),
            ("<logo@x>", Err("must be given without angle brackets")),
            ("logo>", Err("must be given without angle brackets")),
            (
                "lo go",
                Err("may contain only letters, digits and !#$%&'*+/=?^_`{|}~.@-"),
            ),
            (
                "logo\r\n",
                Err("may contain only letters, digits and !#$%&'*+/=?^_`{|}~.@-"),
            ),
            (
                "lögo",
                Err("may contain only letters, digits and !#$%&'*+/=?^_`{|}~.@-"),
            ),
            (
                "a\"b",
                Err("may contain only letters, digits and !#$%&'*+/=?^_`{|}~.@-"),
            ),
            (".logo", Err("must not start or end with a dot")),
            ("logo.", Err("must not start or end with a dot")),
        ];
        for &(id, expected) in cases {
            assert_eq!(check_content_id(id), expected, "{id:?}");
        }
    }
}

/// Properties over arbitrary names (proptest does not build for wasm32).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Names made mostly of what the rules look at, so that they fire.
    fn hostile_name() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(".".to_owned()),
            Just(" ".to_owned()),
            Just("/".to_owned()),
            Just("\\".to_owned()),
            Just("\r\n".to_owned()),
            Just("\u{202E}".to_owned()),
            Just("\u{2066}".to_owned()),
            Just("\u{85}".to_owned()),
            Just("\u{3000}".to_owned()),
            Just("\"%;".to_owned()),
            Just("ü".to_owned()),
            Just("😀".to_owned()),
            Just(".pdf".to_owned()),
            "[a-z]{1,40}",
            any::<String>(),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn percent_decode(text: &str) -> Option<Vec<u8>> {
        let bytes = text.as_bytes();
        let mut decoded = Vec::new();
        let mut i = 0;
        while let Some(&byte) = bytes.get(i) {
            if byte == b'%' {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                decoded.push(byte);
                i += 1;
            }
        }
        Some(decoded)
    }

    proptest! {
        #[test]
        fn download_name_is_always_safe_and_its_disposition_reads_back(
            name in prop_oneof![hostile_name(), any::<String>()],
        ) {
            let safe = download_name(Some(&name));
            prop_assert!(!safe.is_empty());
            prop_assert!(safe.len() <= MAX_DOWNLOAD_NAME_BYTES);
            prop_assert!(!safe.chars().any(is_removed), "{safe:?}");
            prop_assert!(!safe.starts_with(is_dot_or_space), "{safe:?}");
            prop_assert!(!safe.ends_with(is_dot_or_space), "{safe:?}");
            // A safe name is its own safe name.
            prop_assert_eq!(download_name(Some(&safe)), safe.clone());

            let header = content_disposition(&safe);
            prop_assert!(header.is_ascii(), "{header:?}");
            prop_assert!(!header.contains(['\r', '\n']), "{header:?}");
            let (quoted, encoded) = header
                .strip_prefix("attachment; filename=\"")
                .and_then(|rest| rest.split_once("\"; filename*=UTF-8''"))
                .ok_or_else(|| TestCaseError::fail(format!("unexpected shape: {header:?}")))?;
            prop_assert!(!quoted.contains(['"', '\\']), "{quoted:?}");
            prop_assert_eq!(quoted.chars().count(), safe.chars().count());
            prop_assert!(encoded.bytes().all(|b| b == b'%' || is_attr_char(b)), "{encoded:?}");
            let decoded = percent_decode(encoded)
                .ok_or_else(|| TestCaseError::fail(format!("bad escape: {encoded:?}")))?;
            prop_assert_eq!(String::from_utf8(decoded).ok(), Some(safe));
        }

        #[test]
        fn an_outbound_name_that_passes_is_its_own_download_name(
            name in prop_oneof![hostile_name(), any::<String>()],
        ) {
            // What we let a sender attach arrives under the same name,
            // unless it was one the download rules strip at the end or cut.
            if check_outbound_name(&name).is_ok()
                && name.len() <= MAX_DOWNLOAD_NAME_BYTES
                && !name.starts_with(is_dot_or_space)
                && !name.ends_with(is_dot_or_space)
            {
                prop_assert_eq!(download_name(Some(&name)), name);
            }
        }
    }
}
