//! The ingest corpus of the native tests replayed on workerd: every fixture
//! (the ordinary ones and the malformed ones), in its LF and its CRLF form,
//! must read back as its reviewed golden file says, with its raw bytes
//! unchanged. A golden file keeps each body as its length, the SHA-256 of its
//! UTF-8 bytes and its first 240 characters, and workerd's bodies are condensed
//! the same way here, so a decoding difference anywhere in a body shows.

use super::{Suite, expect};
use crate::api::{call, deliver, refused_by_wrangler};
use crate::{Result, root};
use protocol::key::sha256_hex;
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};

/// Where the corpus may be: the crate whose tests own it (the first of these
/// that exists).
const CORPUS_HOMES: [&str; 2] = [
    "crates/testkit/tests/corpus",
    "crates/inbox-do/tests/corpus",
];

/// The ingest corpus of the native tests.
pub(crate) fn corpus_dir() -> PathBuf {
    CORPUS_HOMES
        .iter()
        .map(|home| root().join(home))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| root().join(CORPUS_HOMES[0]))
}

/// The `.eml` files of `groups` in the corpus, sorted.
fn fixtures(groups: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for group in groups {
        let dir = corpus_dir().join(group);
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        files.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml")),
        );
    }
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no fixtures in {groups:?} of {}",
            corpus_dir().display()
        ));
    }
    Ok(files)
}

/// LF line endings turned into CRLF (existing CRLFs kept), as mail travels
/// over SMTP.
pub(crate) fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut previous = 0u8;
    for &byte in raw {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        previous = byte;
    }
    out
}

/// One fixture's CRLF form, by its path in the corpus (`rfc/base64-body.eml`).
pub(super) fn fixture_crlf(relative: &str) -> Result<Vec<u8>> {
    let path = corpus_dir().join(relative);
    std::fs::read(&path)
        .map(|raw| crlf(&raw))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The LF-only form (CRLF → LF), as the golden files' `lf` side has it.
fn lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().peekable();
    while let Some(&byte) = bytes.next() {
        if byte == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(byte);
    }
    out
}

/// The reviewed snapshot of `fixture`: the file in the corpus's `snapshots`
/// sibling whose name ends in `@<group>__<file>.snap` (insta's name for a
/// glob input), whatever the test that wrote it is called.
fn snapshot_of(fixture: &Path) -> Result<PathBuf> {
    let relative = fixture
        .strip_prefix(corpus_dir())
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .replace('/', "__");
    let dir = corpus_dir()
        .parent()
        .map(|tests| tests.join("snapshots"))
        .ok_or("the corpus has no parent directory")?;
    let suffix = format!("@{relative}.snap");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
        })
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!("no snapshot *{suffix} in {}", dir.display())),
        _ => Err(format!("several snapshots *{suffix}: {found:?}")),
    }
}

/// The golden view of `fixture` in the form `side` (`lf` or `crlf`).
fn golden(fixture: &Path, side: &str) -> Result<Json> {
    let snapshot = snapshot_of(fixture)?;
    let text =
        std::fs::read_to_string(&snapshot).map_err(|e| format!("{}: {e}", snapshot.display()))?;
    let json = text
        .splitn(3, "---")
        .nth(2)
        .ok_or_else(|| format!("{}: no insta header", snapshot.display()))?;
    let value: Json =
        serde_json::from_str(json).map_err(|e| format!("{}: {e}", snapshot.display()))?;
    match &value[side] {
        Json::Object(_) => Ok(value[side].clone()),
        _ => Err(format!("{} has no {side:?} side", snapshot.display())),
    }
}

/// A body as the golden files keep it: its length in characters, the
/// SHA-256 of its UTF-8 bytes (lowercase hex) and its first 240 characters.
pub(crate) fn condensed(text: &str) -> Json {
    json!({
        "chars": text.chars().count(),
        "sha256": sha256_hex(text.as_bytes()),
        "head": text.chars().take(240).collect::<String>(),
    })
}

/// Whether a golden body is in the condensed form (or absent).
fn is_condensed(body: &Json) -> bool {
    match body {
        Json::Null => true,
        Json::Object(fields) => {
            fields.len() == 3
                && fields["chars"].is_u64()
                && fields["head"].is_string()
                && fields["sha256"].as_str().is_some_and(|h| {
                    h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                })
        }
        _ => false,
    }
}

/// The fields of a message detail compared between workerd and the golden
/// files (not the id, the envelope or the times, which differ by run).
const COMPARED: [&str; 15] = [
    "from",
    "fromName",
    "subject",
    "toAddresses",
    "cc",
    "replyTo",
    "messageId",
    "inReplyTo",
    "references",
    "date",
    "attachments",
    "hasAttachments",
    "warnings",
    "size",
    "preview",
];

/// The long text fields, compared condensed (`{chars, sha256, head}`).
const BODIES: [&str; 3] = ["text", "html", "extractedText"];

/// The compared view of workerd's answer, its bodies condensed.
fn served_view(message: &Json) -> Json {
    let mut view = serde_json::Map::new();
    for field in COMPARED {
        view.insert(field.to_owned(), message[field].clone());
    }
    for field in BODIES {
        let body = match &message[field] {
            Json::String(text) => condensed(text),
            other => other.clone(),
        };
        view.insert(field.to_owned(), body);
    }
    Json::Object(view)
}

/// The compared view of a golden file's side; its bodies must be condensed
/// with their SHA-256 (an older golden file without it fails).
fn golden_view(golden: &Json, name: &str) -> Result<Json> {
    let mut view = serde_json::Map::new();
    for field in COMPARED {
        view.insert(field.to_owned(), golden[field].clone());
    }
    for field in BODIES {
        let body = &golden[field];
        expect(is_condensed(body), || {
            format!("{name}: the golden {field} is not {{chars, sha256, head}}: {body}")
        })?;
        view.insert(field.to_owned(), body.clone());
    }
    Ok(Json::Object(view))
}

/// What a replay of some fixtures came to.
#[derive(Debug, Default)]
struct Replayed {
    compared: usize,
    /// Forms that wrangler's own endpoint refused before any Worker ran.
    refused_by_wrangler: Vec<String>,
}

/// Delivers each fixture of `groups` in both forms to a new inbox `handle`
/// and compares what workerd serves with the golden file, and the raw bytes.
fn replay(suite: &Suite, handle: &str, groups: &[&str]) -> Result<Replayed> {
    let client = suite.client();
    let key = suite.inbox(handle)?;
    let to = suite.address(&format!("{handle}+corpus"));
    let mut replayed = Replayed::default();
    let mut last_id = 0;
    for fixture in fixtures(groups)? {
        let file = std::fs::read(&fixture).map_err(|e| format!("{}: {e}", fixture.display()))?;
        let (lf_form, crlf_form) = (lf(&file), crlf(&file));
        let mut forms = vec![("crlf", crlf_form)];
        // A file without line breaks has one form only (the second would be
        // a redelivery).
        if lf_form != forms[0].1 {
            forms.push(("lf", lf_form));
        }
        let relative = fixture
            .strip_prefix(corpus_dir())
            .map_err(|e| e.to_string())?
            .display()
            .to_string();
        for (side, raw) in forms {
            let name = format!("{relative} ({side})");
            let delivered = deliver(&client, "sender@example.net", &to, &raw)?;
            if refused_by_wrangler(&delivered) {
                replayed.refused_by_wrangler.push(name);
                continue;
            }
            expect(delivered.status == 200, || {
                format!(
                    "{name}: delivery answered {} {}",
                    delivered.status, delivered.body
                )
            })?;
            // Ids are given in order: the newest message is this one.
            let listed = call(&client, &key, "GET", "/api/messages?limit=1", None)?;
            let id = listed.parsed()?["messages"][0]["id"]
                .as_u64()
                .ok_or_else(|| format!("{name}: the listing shows no id: {}", listed.body))?;
            expect(id == last_id + 1, || {
                format!("{name}: stored as message {id} after {last_id}")
            })?;
            last_id = id;
            let message = call(&client, &key, "GET", &format!("/api/messages/{id}"), None)?;
            expect(message.status == 200, || {
                format!("{name}: GET answered {} {}", message.status, message.body)
            })?;
            let got = served_view(&message.parsed()?);
            let want = golden_view(&golden(&fixture, side)?, &name)?;
            expect(got == want, || {
                format!("{name}: workerd answered\n{got}\nthe golden file says\n{want}")
            })?;
            let stored = call(
                &client,
                &key,
                "GET",
                &format!("/api/messages/{id}/raw"),
                None,
            )?;
            expect(
                stored.bytes == raw && stored.content_type == "message/rfc822",
                || {
                    format!(
                        "{name}: the raw bytes came back different ({} vs {} bytes)",
                        stored.bytes.len(),
                        raw.len()
                    )
                },
            )?;
            replayed.compared += 1;
        }
    }
    Ok(replayed)
}

pub(super) fn fixtures_read_back(suite: &mut Suite) -> Result<()> {
    let replayed = replay(suite, "e2e-corpus", &["rfc", "real-world"])?;
    // Well-formed mail gets past wrangler's endpoint, every time.
    expect(replayed.refused_by_wrangler.is_empty(), || {
        format!(
            "wrangler's endpoint refused {:?}",
            replayed.refused_by_wrangler
        )
    })?;
    println!("        ({} forms compared)", replayed.compared);
    Ok(())
}

pub(super) fn malformed_read_back(suite: &mut Suite) -> Result<()> {
    let replayed = replay(suite, "e2e-malformed", &["malformed"])?;
    expect(replayed.compared > 0, || {
        "wrangler's endpoint refused every malformed fixture".to_owned()
    })?;
    println!(
        "        ({} forms compared; refused by wrangler's own endpoint, before any Worker: {:?})",
        replayed.compared, replayed.refused_by_wrangler
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_condensed_as_the_golden_files_keep_it() {
        let body = "é".repeat(300);
        let view = condensed(&body);
        assert_eq!(view["chars"], 300);
        assert_eq!(view["head"].as_str().map(|h| h.chars().count()), Some(240));
        // `printf 'abc' | sha256sum`
        assert_eq!(
            condensed("abc")["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_condensed(&view));
    }

    #[test]
    fn an_old_golden_body_without_its_sha256_is_refused() {
        let old = json!({ "text": { "chars": 3, "head": "abc" }, "html": null });
        let error = golden_view(&old, "x.eml").expect_err("an old golden file must fail");
        assert!(error.contains("sha256"), "{error}");
    }

    #[test]
    fn a_difference_after_the_head_shows() {
        let golden = json!({ "text": condensed(&format!("{}a", "x".repeat(300))), "html": null });
        let served = json!({ "text": format!("{}b", "x".repeat(300)), "html": null });
        let want = golden_view(&golden, "x.eml").expect("a condensed golden file");
        assert_ne!(served_view(&served), want);
        let same = json!({ "text": format!("{}a", "x".repeat(300)), "html": null });
        assert_eq!(served_view(&same), want);
    }

    #[test]
    fn line_endings_convert_both_ways() {
        assert_eq!(crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc");
        assert_eq!(lf(b"a\r\nb\nc\r"), b"a\nb\nc\r");
    }

    #[test]
    fn the_corpus_is_found_with_its_snapshots() {
        let first = fixtures(&["rfc"]).expect("the rfc fixtures");
        let snapshot = snapshot_of(&first[0]).expect("its snapshot");
        assert!(snapshot.exists());
        let malformed = fixtures(&["malformed"]).expect("the malformed fixtures");
        for fixture in malformed {
            golden(&fixture, "crlf").expect("a golden file for each malformed fixture");
        }
    }
}
