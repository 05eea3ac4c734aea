//! Project automation, in Rust (matklad's xtask pattern).
//!
//! - `cargo xtask dev [--port N] [--state DIR]`: install what is missing, build
//!   both Workers and serve the whole service on 127.0.0.1.
//! - `cargo xtask test`: everything CI runs: fmt, clippy (host and wasm32), the
//!   native tests, the wasm32 tests of the pure crates, release builds of both
//!   Workers with their sizes, and the end-to-end suite on real workerd.
//! - `cargo xtask build`: release builds of both Workers.
//! - `cargo xtask e2e`: the end-to-end suite alone (builds first).
//! - `cargo xtask rollout`: the previous version's inboxes (one migration
//!   behind, from git history) woken by this version under concurrent load
//!   (also run by `test`).
//! - `cargo xtask schemathesis`: Schemathesis (PyPI) against the OpenAPI
//!   document on wrangler dev.
//! - `cargo xtask soak`: load, a SIGKILL and concurrent signups on workerd,
//!   checking that nothing acknowledged is lost (a short profile runs in
//!   `test`).
//! - `cargo xtask bench [--workerd | --load]`: the native benchmarks (not
//!   with `--workerd` or `--load`), an end-to-end load, and the latency
//!   figures (not with `--load`; `cargo xtask latency [--stored N]` runs only
//!   those, with an inbox of 100,000 messages or N).
//! - `cargo xtask scale [--inboxes N]`: 10,000 inboxes (or N) on one
//!   `wrangler dev`, with the dev server's memory and the read latency as the
//!   count grows.
//! - `cargo xtask setup`: install the toolchain pieces only.
//! - `cargo xtask openapi`: regenerate `crates/protocol/openapi.json`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line tool

mod api;
mod bench;
mod build;
mod ci;
mod deploy;
mod e2e;
mod http;
mod latency;
mod mixed;
mod receiver;
mod rollout;
mod scale;
mod schemathesis;
mod soak;
mod tools;
mod wrangler;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

type Result<T, E = String> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("dev") => dev(&args[1..]),
        Some("test") => ci::test(),
        Some("build") => tools::ensure_all().and_then(|t| build::build_all(&t).map(drop)),
        Some("e2e") => tools::ensure_all().and_then(|t| {
            build::build_all(&t)?;
            e2e::run(&t)?.finish()
        }),
        Some("soak") => tools::ensure_all().and_then(|t| {
            let profile = match args.get(1).map(String::as_str) {
                None => soak::FULL,
                Some("--short") => soak::SHORT,
                Some(_) => return Err(USAGE.to_owned()),
            };
            build::build_all(&t)?;
            soak::run(&t, profile)
        }),
        Some("latency") => tools::ensure_all().and_then(|t| {
            let stored = count_option(&args[1..], "--stored", latency::DEFAULT_STORED)?;
            build::build_all(&t)?;
            latency::run(&t, stored)
        }),
        Some("rollout") => tools::ensure_all().and_then(|t| {
            // As `cargo xtask test` does it: the previous version builds in
            // the background while this one builds.
            let previous = rollout::PreviousBuild::start(&t)?;
            build::build_all(&t)?;
            let (built, _) = previous.finish()?;
            rollout::run(&t, Some(built))
        }),
        Some("schemathesis") => tools::ensure_all().and_then(|t| {
            build::build_all(&t)?;
            schemathesis::run_against_dev(&t)
        }),
        Some("deploy") => deploy::parse(&args[1..])
            .and_then(|plan| tools::ensure_all().and_then(|t| deploy::deploy(&t, plan))),
        Some("mixed") => tools::ensure_all().and_then(|t| {
            let (project, _) = mixed::PreviousRouter::start(&t)?.finish()?;
            e2e::run_mixed(&t, project)?.finish()
        }),
        Some("scale") => tools::ensure_all().and_then(|t| {
            let inboxes = count_option(&args[1..], "--inboxes", scale::DEFAULT_INBOXES)?;
            build::build_all(&t)?;
            scale::run(&t, inboxes)
        }),
        Some("setup") => tools::ensure_all().map(drop),
        Some("openapi") => write_openapi(),
        Some("bench") => tools::ensure_all().and_then(|t| {
            let parts = match args.get(1).map(String::as_str) {
                None => bench::Parts::All,
                Some("--workerd") if args.len() == 2 => bench::Parts::Workerd,
                Some("--load") if args.len() == 2 => bench::Parts::Load,
                Some(_) => return Err(USAGE.to_owned()),
            };
            bench::run_all(&t, parts)
        }),
        _ => Err(USAGE.to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // An empty message means the failure was already reported (the
            // end-to-end suite's summary must stay the last line).
            if !message.is_empty() {
                eprintln!("xtask: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <dev [--port N] [--state DIR] | test | build | e2e | soak [--short] | rollout | mixed | deploy [inbox|router|all] [--dry-run] | schemathesis | bench [--workerd | --load] | latency [--stored N] | scale [--inboxes N] | setup | openapi>";

/// A command's only option, `flag N`: `default` when it is absent, the usage
/// when anything else is given.
fn count_option(rest: &[String], flag: &str, default: usize) -> Result<usize> {
    match rest {
        [] => Ok(default),
        [given, n] if given == flag => n.parse().map_err(|_| USAGE.to_owned()),
        _ => Err(USAGE.to_owned()),
    }
}

/// Regenerates `crates/protocol/openapi.json` from the protocol types.
fn write_openapi() -> Result<()> {
    let path = root().join("crates").join("protocol").join("openapi.json");
    let mut text = serde_json::to_string_pretty(&protocol::openapi::document())
        .map_err(|e| format!("serializing the OpenAPI document: {e}"))?;
    text.push('\n');
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Runs `command` with inherited output; fails with its description.
fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root());
    command
}

fn step(title: &str) {
    println!("\n==> {title}");
}

fn dev(args: &[String]) -> Result<()> {
    let mut port = 8787u16;
    let mut state = root().join(".inboxkit").join("dev-state");
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--port" => {
                port = rest
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--port needs a number")?;
            }
            "--state" => {
                state = PathBuf::from(rest.next().ok_or("--state needs a directory")?);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let tools = tools::ensure_all()?;
    build::build_all(&tools)?;
    let state = std::path::absolute(&state).map_err(|e| e.to_string())?;
    wrangler::serve_foreground(&tools, port, &state)
}
