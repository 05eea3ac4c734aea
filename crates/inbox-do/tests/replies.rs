//! The corpus of real-shaped replies under `tests/replies/`: each one's new
//! text (`extracted_text`) against its golden output in `tests/snapshots/`.
//! A `.txt` fixture is a plain-text body, a `.html` fixture an HTML-only one;
//! each is read with LF and with CRLF line endings, which must agree.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;

use inbox_do::{extracted_text, preview};

fn extract(body: &str, html: bool) -> Option<String> {
    if html {
        extracted_text(None, Some(body))
    } else {
        extracted_text(Some(body), None)
    }
}

#[test]
fn every_reply_in_the_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replies");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus directory")
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 40, "only {} fixtures", fixtures.len());

    for path in fixtures {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 file name")
            .to_owned();
        let html = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => true,
            Some("txt") => false,
            _ => panic!("{name}: a fixture is .txt or .html"),
        };
        let body = std::fs::read_to_string(&path).expect("a UTF-8 fixture");
        assert!(!body.contains('\r'), "{name}: fixtures are stored with LF");

        let lf = extract(&body, html);
        let crlf = extract(&body.replace('\n', "\r\n"), html);
        assert_eq!(lf, crlf, "{name}: CRLF and LF disagree");
        let text = lf.unwrap_or_else(|| panic!("{name}: no extracted text"));
        assert!(text.len() <= body.len(), "{name}: longer than its body");
        assert_eq!(text, text.trim_end(), "{name}: trailing whitespace");
        let preview = preview(Some(&text)).unwrap_or_else(|| panic!("{name}: no preview"));
        assert!(preview.chars().count() <= 200, "{name}: preview too long");

        insta::assert_snapshot!(name, text);
    }
}
