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
pub(crate) struct PreviousRouter(build::BackgroundBuild);

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
        Ok(PreviousRouter(build::BackgroundBuild::start(
            tools,
            "the previous release's router",
            commit,
            project,
            &["router-worker"],
            mixed_target(),
            root().join("target").join("mixed-previous-build.log"),
        )))
    }

    /// Waits for the build; returns the project to serve the router from
    /// and how long the build took, in seconds.
    pub(crate) fn finish(self) -> Result<(PathBuf, f64)> {
        let (_, project, seconds) = self.0.finish()?;
        Ok((project, seconds))
    }
}
