//! The staged deploy's window, on workerd: the previous release's router in
//! front of this version's inbox script (the inbox script is deployed first;
//! for the minutes until the router follows, the old router sends the old
//! wire to the new objects). The previous release is the one whose wire the
//! newest fixture file in `crates/testkit/tests/wire/` records: the commit
//! that added that file. Its router is built (router-worker only, in the
//! background, into the rollout's target directory, whose dependencies it
//! shares) and the end-to-end suite runs through it.

use crate::rollout::{extract, git, history_available};
use crate::tools::Tools;
use crate::{Result, build, root};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

/// The previous router's own target directory (kept between runs). Not the
/// rollout's: its previous version is another commit, and cargo would take
/// that build's `protocol` for this one's (the same crate name and hash,
/// whose sources `git archive` dates to their commit, older than the other's
/// build), compiling the router against the wrong wire.
fn mixed_target() -> PathBuf {
    root().join("target").join("mixed-target")
}

/// The newest wire fixture file, relative to the root.
pub(crate) fn newest_fixture() -> Result<String> {
    let dir = root().join("crates/testkit/tests/wire");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("requests-") && name.ends_with(".json"))
        .collect();
    files.sort();
    files
        .pop()
        .map(|name| format!("crates/testkit/tests/wire/{name}"))
        .ok_or_else(|| format!("no requests-*.json in {}", dir.display()))
}

/// The commit that added the newest fixture file: the previous release,
/// whose router encodes requests as that file says.
pub(crate) fn previous_release() -> Result<String> {
    let fixture = newest_fixture()?;
    let commit = git(&[
        "log",
        "--diff-filter=A",
        "--format=%H",
        "-1",
        "--",
        &fixture,
    ])?;
    if commit.is_empty() {
        return Err(format!(
            "{fixture} is not in git history yet: commit it first"
        ));
    }
    Ok(commit)
}

/// The previous release's router, extracted and built in the background.
#[derive(Debug)]
pub(crate) struct PreviousRouter {
    commit: String,
    project: PathBuf,
    log: PathBuf,
    build: Option<JoinHandle<Result<f64>>>,
    running: Arc<AtomicU32>,
}

impl PreviousRouter {
    /// Extracts the previous release and starts building its router.
    pub(crate) fn start(tools: &Tools) -> Result<PreviousRouter> {
        if !history_available() {
            return Err(
                "the mixed-version run needs git history (the previous router is built from it)"
                    .to_owned(),
            );
        }
        let commit = previous_release()?;
        let project = root().join("target").join("mixed-previous");
        extract(&commit, &project)?;
        let log = root().join("target").join("mixed-previous-build.log");
        let running = Arc::new(AtomicU32::new(0));
        let (tools, dir, out, group) = (
            tools.clone(),
            project.clone(),
            log.clone(),
            Arc::clone(&running),
        );
        let build = std::thread::spawn(move || {
            let started = Instant::now();
            build::build_in_background(
                &tools,
                &dir,
                &["router-worker"],
                &mixed_target(),
                &out,
                &group,
            )
            .map(|()| started.elapsed().as_secs_f64())
        });
        println!(
            "(the previous release's router {} builds in the background; output in {})",
            &commit[..12],
            log.display()
        );
        Ok(PreviousRouter {
            commit,
            project,
            log,
            build: Some(build),
            running,
        })
    }

    /// Waits for the build; returns the project to serve the router from
    /// and how long the build took, in seconds.
    pub(crate) fn finish(mut self) -> Result<(PathBuf, f64)> {
        let seconds = self
            .build
            .take()
            .ok_or("the build was already awaited")?
            .join()
            .unwrap_or_else(|_| Err("the build thread panicked".to_owned()))?;
        println!(
            "the previous release's router ({}) was built in {seconds:.0}s (output in {})",
            &self.commit[..12],
            self.log.display()
        );
        Ok((self.project.clone(), seconds))
    }
}

impl Drop for PreviousRouter {
    fn drop(&mut self) {
        if let Some(build) = self.build.take() {
            let group = self.running.load(Ordering::SeqCst);
            if group != 0 && !build.is_finished() {
                crate::wrangler::signal_group(group, "KILL");
            }
        }
    }
}
