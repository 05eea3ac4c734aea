//! Tidy checks over the source tree (rust-analyzer's habit): the architecture's
//! invariants, checked as plain tests so that breaking one fails CI.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .expect("xtask lives inside the workspace")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != "build" && name != "node_modules" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("xtask"), &mut files);
    assert!(files.len() > 20, "the walk found too few files: {files:?}");
    files
        .into_iter()
        .map(|p| {
            // A file that cannot be read must fail, not pass every check empty.
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            let relative = p.strip_prefix(root()).unwrap_or(&p).display().to_string();
            (relative, text)
        })
        .collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Whether `text` names the crate `name` as a path (`name::`), not merely as
/// the end of another identifier (`router_worker::` does not count).
fn mentions_crate(text: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    text.match_indices(&needle).any(|(at, _)| {
        !text[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn the_crate_mention_check_sees_paths_only() {
    assert!(mentions_crate("use worker::Env;", "worker"));
    assert!(mentions_crate("x(worker::Date::now())", "worker"));
    assert!(!mentions_crate("use router_worker::Router;", "worker"));
}

#[test]
fn only_glue_modules_name_the_platform() {
    for (path, text) in sources() {
        let is_glue = path.ends_with("src/glue.rs");
        let is_this = path.ends_with("tests/tidy.rs");
        let names_worker = mentions_crate(&text, "worker");
        assert!(
            is_glue || is_this || !names_worker,
            "{path} names `worker::`; only the glue modules may"
        );
    }
}

#[test]
fn the_core_reads_no_clock() {
    for (path, text) in sources() {
        if path.starts_with("xtask") || path.ends_with("src/glue.rs") {
            continue;
        }
        for clock in ["SystemTime::now", "Instant::now", "Date::now", "getrandom"] {
            assert!(
                !text.contains(clock),
                "{path} uses {clock}; pass time and randomness in"
            );
        }
    }
}

#[test]
fn every_file_says_what_it_is_for() {
    for (path, text) in sources() {
        assert!(
            text.trim_start().starts_with("//!"),
            "{path} does not start with a `//!` comment"
        );
    }
}

#[test]
fn no_test_is_ignored_or_expected_to_panic() {
    let banned = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
    for (path, text) in sources() {
        for word in banned {
            assert!(!text.contains(word), "{path} contains {word}]");
        }
    }
}

/// Whether a table header (without its brackets) names a table of `kind`
/// (`dependencies`, `dev-dependencies`): `dependencies`, or a target's
/// (`target.'cfg(..)'.dependencies`). Returns the dependency it is about
/// when the header names one (`dependencies.serde`), or `Some("")` for a
/// whole table.
fn table_of(header: &str, kind: &str) -> Option<String> {
    let header = header.trim();
    let rest = match header.strip_prefix("target.") {
        Some(target) => {
            // The target's key may be quoted and may contain dots.
            let after = match target.chars().next() {
                Some(quote @ ('\'' | '"')) => {
                    let end = target[1..].find(quote)? + 2;
                    &target[end..]
                }
                _ => &target[target.find('.')?..],
            };
            after.strip_prefix('.')?
        }
        None => header,
    };
    if rest == kind {
        Some(String::new())
    } else {
        rest.strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix('.'))
            .map(|name| name.trim().trim_matches('"').to_owned())
    }
}

/// The packages a manifest depends on in every table of normal dependencies
/// (target-specific ones included; dev- and build-dependencies are not
/// dependencies of the crate's code): each entry's name, and its `package`
/// when it renames one.
fn dependencies(manifest: &str) -> std::collections::BTreeSet<String> {
    dependencies_in(manifest, "dependencies")
}

/// The packages of every `kind` table of a manifest (see [`dependencies`]).
fn dependencies_in(manifest: &str, kind: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    // None: not in a dependency table; Some(""): in a whole table; Some(name):
    // in `[dependencies.name]`.
    let mut table: Option<String> = None;
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[').trim_end_matches(']');
            table = table_of(header, kind);
            if let Some(name) = table.as_ref().filter(|n| !n.is_empty()) {
                names.insert(name.clone());
            }
            continue;
        }
        let Some(table) = &table else { continue };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim().trim_matches('"');
        if table.is_empty() {
            // `name = ..`, or a dotted `name.workspace = true`.
            let name = key
                .split('.')
                .next()
                .unwrap_or(key)
                .trim()
                .trim_matches('"');
            names.insert(name.to_owned());
        }
        // A rename: `alias = { package = "real", .. }` or `package = "real"`.
        let renamed = if key == "package" {
            Some(value)
        } else {
            value
                .split_once("package")
                .and_then(|(_, rest)| rest.trim_start().strip_prefix('='))
        };
        if let Some(real) = renamed.and_then(|v| v.split('"').nth(1)) {
            names.insert(real.to_owned());
        }
    }
    names
}

#[test]
fn the_dependency_check_reads_every_dependency_table() {
    let manifest = r#"
[package]
name = "router-worker"

[dependencies]
protocol.workspace = true
serde = { workspace = true }

[target.'cfg(target_arch = "wasm32")'.dependencies]
worker.workspace = true
inbox-do = { path = "../inbox-do" }

[target."cfg(unix)".dependencies.schema]
path = "../schema"

[target.'cfg(windows)'.dependencies]
db = { package = "testkit", path = "../testkit" } # renamed

[target.'cfg(not(target_arch = "wasm32"))'.dev-dependencies]
insta.workspace = true
"#;
    let names = dependencies(manifest);
    for expected in [
        "protocol", "serde", "worker", "inbox-do", "schema", "db", "testkit",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not found in {names:?}"
        );
    }
    assert!(
        !names.contains("insta"),
        "a dev-dependency was counted: {names:?}"
    );
    assert!(
        !names.contains("name"),
        "[package] was read as dependencies: {names:?}"
    );
}

#[test]
fn neither_deployable_dev_depends_on_the_other() {
    let manifest = "[dev-dependencies]\nrouter-worker.workspace = true\n\
                    [target.'cfg(unix)'.dev-dependencies]\ninsta = \"1\"\n";
    let dev = dependencies_in(manifest, "dev-dependencies");
    assert!(
        dev.contains("router-worker") && dev.contains("insta"),
        "{dev:?}"
    );
    let router = dependencies_in(&read("crates/router-worker/Cargo.toml"), "dev-dependencies");
    assert!(
        !router.contains("inbox-do"),
        "router-worker dev-depends on inbox-do"
    );
    let inbox = dependencies_in(&read("crates/inbox-do/Cargo.toml"), "dev-dependencies");
    assert!(
        inbox.contains("testkit"),
        "the dev tables were not read: {inbox:?}"
    );
    assert!(
        !inbox.contains("router-worker"),
        "inbox-do dev-depends on router-worker"
    );
}

#[test]
fn router_and_inbox_meet_only_in_protocol() {
    let router = dependencies(&read("crates/router-worker/Cargo.toml"));
    assert!(router.contains("protocol"), "{router:?}");
    assert!(
        router.contains("worker"),
        "the target-specific table was not read: {router:?}"
    );
    for forbidden in ["inbox-do", "schema", "testkit"] {
        assert!(
            !router.contains(forbidden),
            "router-worker depends on {forbidden}"
        );
    }
    let inbox = dependencies(&read("crates/inbox-do/Cargo.toml"));
    assert!(inbox.contains("protocol"), "{inbox:?}");
    assert!(
        inbox.contains("worker"),
        "the target-specific table was not read: {inbox:?}"
    );
    for forbidden in ["router-worker", "testkit"] {
        assert!(
            !inbox.contains(forbidden),
            "inbox-do depends on {forbidden}"
        );
    }
}

#[test]
fn wrangler_configs_use_the_protocol_names() {
    use protocol::bindings::*;
    let router = read("wrangler.toml");
    let inbox = read("crates/inbox-do/wrangler.toml");
    let line = |text: &str, key: &str, value: &str| {
        text.lines().any(|l| {
            l.split_once('=')
                .is_some_and(|(k, v)| k.trim() == key && v.trim() == format!("\"{value}\""))
        })
    };
    assert!(line(&router, "name", ROUTER_SCRIPT));
    assert!(line(&router, "binding", DIRECTORY_KV));
    assert!(line(&router, "name", INBOX_NAMESPACE));
    assert!(line(&router, "class_name", INBOX_CLASS));
    assert!(line(&router, "script_name", INBOX_SCRIPT));
    assert!(
        router
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{MAIL_DOMAIN_VAR} =")))
    );
    assert!(line(&inbox, "name", INBOX_SCRIPT));
    assert!(line(&inbox, "class_name", INBOX_CLASS));
    assert!(inbox.contains(&format!("new_sqlite_classes = [\"{INBOX_CLASS}\"]")));
    // The glue exports the class under the same name.
    assert!(read("crates/inbox-do/src/glue.rs").contains(&format!("pub struct {INBOX_CLASS} ")));
}

#[test]
fn the_wasm_bindgen_pin_matches_the_lockfile() {
    let manifest = read("Cargo.toml");
    let pinned = manifest
        .lines()
        .find_map(|l| l.strip_prefix("wasm-bindgen = \"="))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("wasm-bindgen must be pinned with = in Cargo.toml"));
    let lock = read("Cargo.lock");
    assert!(
        lock.contains(&format!("name = \"wasm-bindgen\"\nversion = \"{pinned}\"")),
        "Cargo.lock's wasm-bindgen differs from the pin {pinned}: the CLI would not match"
    );
}
