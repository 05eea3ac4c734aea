//! The corpus of real-shaped mails under `tests/findings/`: each `.eml`'s
//! codes and links (`find_in_raw`) against the golden `.json` beside it.
//! `INBOXKIT_BLESS=1` rewrites a golden that differs; read the diff before
//! committing it.
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

use inbox_do::{Findings, find_in_raw};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/findings");
    let mut mails: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    mails.sort();
    mails
}

/// The code a verification mail's `X-Expected-Code` header names.
fn expected_code(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .find_map(|line| line.strip_prefix("X-Expected-Code: "))
        .map(str::to_owned)
}

/// The lines of `want` and `got` that differ, marked `-` and `+`.
fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        match (w.get(i), g.get(i)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => {
                if let Some(a) = a {
                    out.push_str(&format!("{:4} - {a}\n", i + 1));
                }
                if let Some(b) = b {
                    out.push_str(&format!("{:4} + {b}\n", i + 1));
                }
            }
        }
    }
    out
}

#[test]
fn every_mail_in_the_corpus() {
    let mails = corpus();
    assert!(mails.len() >= 60, "only {} mails", mails.len());
    let bless = std::env::var("INBOXKIT_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut ordinary = 0;
    for path in &mails {
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 file name")
            .to_owned();
        let raw = std::fs::read(path).expect("a readable fixture");
        assert!(
            raw.windows(2).filter(|w| w == b"\r\n").count()
                == raw.iter().filter(|&&b| b == b'\n').count(),
            "{name}: fixtures are stored with CRLF line ends"
        );
        let found = find_in_raw(&raw);

        let category = name.split('-').next().unwrap_or("");
        match category {
            "ordinary" => {
                ordinary += 1;
                assert!(found.codes.is_empty(), "{name}: codes {:?}", found.codes);
            }
            "verify" | "2fa" => {
                let want = expected_code(&raw)
                    .unwrap_or_else(|| panic!("{name}: no X-Expected-Code header"));
                assert_eq!(
                    found.codes.first().map(|c| c.value.as_str()),
                    Some(want.as_str()),
                    "{name}: {:?}",
                    found.codes
                );
            }
            "magic" | "reset" => {
                assert!(!found.links.is_empty(), "{name}: no links");
                if let Some(want) = expected_code(&raw) {
                    assert_eq!(found.codes.first().map(|c| c.value.as_str()), Some(&*want));
                }
            }
            other => panic!("{name}: unknown category {other:?}"),
        }

        let got = serde_json::to_string_pretty(&found).expect("JSON") + "\n";
        let golden = path.with_extension("json");
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want != got {
            if bless {
                std::fs::write(&golden, &got).expect("writing the golden");
            } else {
                failures.push(format!("{name}:\n{}", diff(&want, &got)));
            }
        }
        if !want.is_empty() {
            let parsed: Findings = serde_json::from_str(&want).expect("a golden parses");
            assert_eq!(parsed == found, want == got, "{name}: JSON round trip");
        }
    }
    assert!(ordinary >= 20, "only {ordinary} ordinary mails");
    assert!(
        failures.is_empty(),
        "{} golden(s) differ (INBOXKIT_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
