//! Release builds of both Workers, and their deploy sizes.

use crate::tools::Tools;
use crate::{Result, root, run, step};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// The two deployables: (package, its wrangler config relative to the root).
pub(crate) const WORKERS: [(&str, &str); 2] = [
    ("router-worker", "wrangler.toml"),
    ("inbox-do", "crates/inbox-do/wrangler.toml"),
];

/// Each Worker's compressed size must stay under this (the free plan allows
/// 3 MB; we keep a wide margin so start-up stays fast).
const GZIP_BUDGET_KIB: f64 = 1024.0;

/// Build time per Worker, in seconds.
#[derive(Debug)]
pub(crate) struct BuildTimes(pub(crate) Vec<(&'static str, f64)>);

/// Builds both Workers with worker-build (release), pointing it at the
/// registry-installed wasm-bindgen, wasm-opt and esbuild.
pub(crate) fn build_all(tools: &Tools) -> Result<BuildTimes> {
    build_in(tools, &root(), &root().join("target"))
}

/// As [`build_all`], for the project checked out at `project` (an earlier
/// version, for the rollout check), building into `target_dir`. (It must not
/// share this project's: the Workers' wasm files have the same names in both
/// and one version's would be taken for the other's.)
pub(crate) fn build_in(
    tools: &Tools,
    project: &std::path::Path,
    target_dir: &std::path::Path,
) -> Result<BuildTimes> {
    let _only_builder = hold(target_dir);
    let mut times = Vec::new();
    for (package, _) in WORKERS {
        step(&format!("worker-build --release ({package})"));
        let started = Instant::now();
        run(&mut worker_build(tools, project, target_dir, package))?;
        strip_names(project, target_dir, package)?;
        let seconds = started.elapsed().as_secs_f64();
        println!("built {package} in {seconds:.1}s");
        times.push((package, seconds));
    }
    Ok(BuildTimes(times))
}

/// Drops the `name` section from `package`'s built wasm, keeping the whole
/// file in `target_dir/wasm-names/` for reading a trap's stack. worker-build
/// keeps function names for stack traces (it passes wasm-opt `--debuginfo`),
/// which costs 10% of each Worker's compressed size; on Workers a panic is an
/// abort whose trace we do not log, while the kept copy maps a
/// `wasm-function[N]` of a stack back to its name (same indexes: only the
/// custom section goes).
fn strip_names(
    project: &std::path::Path,
    target_dir: &std::path::Path,
    package: &str,
) -> Result<()> {
    let built = project
        .join("crates")
        .join(package)
        .join("build")
        .join("index_bg.wasm");
    let wasm = std::fs::read(&built).map_err(|e| format!("reading {}: {e}", built.display()))?;
    let stripped = without_custom_section(&wasm, "name")?;
    if stripped.len() == wasm.len() {
        return Ok(());
    }
    let kept = target_dir.join("wasm-names");
    std::fs::create_dir_all(&kept).map_err(|e| format!("creating {}: {e}", kept.display()))?;
    let copy = kept.join(format!("{package}.wasm"));
    std::fs::write(&copy, &wasm).map_err(|e| format!("writing {}: {e}", copy.display()))?;
    std::fs::write(&built, &stripped).map_err(|e| format!("writing {}: {e}", built.display()))?;
    println!(
        "{package}: dropped its {} KiB name section (the named copy: {})",
        (wasm.len() - stripped.len()) / 1024,
        copy.display()
    );
    Ok(())
}

/// `wasm` without its custom sections called `name`; every other byte kept.
fn without_custom_section(wasm: &[u8], name: &str) -> Result<Vec<u8>> {
    fn leb(bytes: &[u8], at: &mut usize) -> Result<usize> {
        let (mut value, mut shift) = (0usize, 0u32);
        loop {
            let byte = *bytes.get(*at).ok_or("a wasm file ends inside a number")?;
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 28 {
                return Err("a wasm number is too long".to_owned());
            }
        }
    }
    if wasm.get(..4) != Some(b"\0asm") || wasm.len() < 8 {
        return Err("not a wasm module".to_owned());
    }
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at)?;
        let body = at;
        let end = body
            .checked_add(size)
            .filter(|&end| end <= wasm.len())
            .ok_or("a wasm section runs past the end")?;
        let dropped = id == 0 && {
            let mut cursor = body;
            let length = leb(wasm, &mut cursor)?;
            wasm.get(cursor..cursor + length) == Some(name.as_bytes())
        };
        if !dropped {
            out.extend_from_slice(&wasm[start..end]);
        }
        at = end;
    }
    Ok(out)
}

/// A version extracted at `project` and built in the background by
/// [`build_in_background`] (at the lowest CPU priority, so that it takes the
/// cycles the steps in the foreground leave idle; its output goes to a log).
/// Dropped unfinished, it kills the build.
#[derive(Debug)]
pub(crate) struct BackgroundBuild {
    /// What is built, for the messages ("the rollout's previous version").
    what: &'static str,
    commit: String,
    project: PathBuf,
    log: PathBuf,
    /// The build's seconds, when it succeeds.
    build: Option<JoinHandle<Result<f64>>>,
    /// The process group of the worker-build running now (0: none).
    running: Arc<AtomicU32>,
}

impl BackgroundBuild {
    /// Starts building `packages` of `project` (the files of `commit`) into
    /// `target_dir`, its output written to `log`.
    pub(crate) fn start(
        tools: &Tools,
        what: &'static str,
        commit: String,
        project: PathBuf,
        packages: &[&'static str],
        target_dir: PathBuf,
        log: PathBuf,
    ) -> BackgroundBuild {
        let running = Arc::new(AtomicU32::new(0));
        let (tools, dir, packages, out, group) = (
            tools.clone(),
            project.clone(),
            packages.to_vec(),
            log.clone(),
            Arc::clone(&running),
        );
        let build = std::thread::spawn(move || {
            let started = Instant::now();
            build_in_background(&tools, &dir, &packages, &target_dir, &out, &group)
                .map(|()| started.elapsed().as_secs_f64())
        });
        println!(
            "({what} {} builds in the background; output in {})",
            &commit[..12],
            log.display()
        );
        BackgroundBuild {
            what,
            commit,
            project,
            log,
            build: Some(build),
            running,
        }
    }

    /// Waits for the build; returns the commit, the project it was built in
    /// and how long its build took, in seconds.
    pub(crate) fn finish(mut self) -> Result<(String, PathBuf, f64)> {
        let waited = Instant::now();
        let seconds = self
            .build
            .take()
            .ok_or("the build was already awaited")?
            .join()
            .unwrap_or_else(|_| Err("the build thread panicked".to_owned()))?;
        println!(
            "{} ({}) was built in the background in {seconds:.0}s (output in {}); waited {:.0}s for it",
            self.what,
            &self.commit[..12],
            self.log.display(),
            waited.elapsed().as_secs_f64()
        );
        Ok((
            std::mem::take(&mut self.commit),
            std::mem::take(&mut self.project),
            seconds,
        ))
    }
}

impl Drop for BackgroundBuild {
    fn drop(&mut self) {
        if let Some(build) = self.build.take() {
            // Unfinished (an earlier step failed): stop it rather than leave
            // it running after we exit.
            let group = self.running.load(Ordering::SeqCst);
            if group != 0 && !build.is_finished() {
                crate::wrangler::signal_group(group, "KILL");
            }
        }
    }
}

/// One lock per target directory, held by a build (of all its packages)
/// into it. Two builds into one directory at once would race on the wasm
/// files of the same names: cargo's own lock covers only its compile step,
/// and one build's wasm-bindgen would read the file the other's cargo is
/// writing. (Two versions must not share a directory at all: see
/// `mixed::mixed_target`.)
fn hold(target_dir: &std::path::Path) -> std::sync::MutexGuard<'static, ()> {
    static LOCKS: Mutex<BTreeMap<PathBuf, &'static Mutex<()>>> = Mutex::new(BTreeMap::new());
    let lock: &'static Mutex<()> = {
        let mut locks = LOCKS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks
            .entry(target_dir.to_path_buf())
            .or_insert_with(|| Box::leak(Box::new(Mutex::new(()))))
    };
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last `lines` lines of a build's log, to say why it failed where only
/// the suite's output is kept (CI).
fn tail(log: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `worker-build --release` of `package` in `project`, into `target_dir`.
fn worker_build(
    tools: &Tools,
    project: &std::path::Path,
    target_dir: &std::path::Path,
    package: &str,
) -> Command {
    worker_build_of(tools, &project.join("crates").join(package), target_dir)
}

/// `worker-build --release` of the crate in `crate_dir`, into `target_dir`.
fn worker_build_of(
    tools: &Tools,
    crate_dir: &std::path::Path,
    target_dir: &std::path::Path,
) -> Command {
    let mut command = Command::new(&tools.worker_build);
    command
        .arg("--release")
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("PATH", tools.path_with_node())
        .env("WASM_BINDGEN_BIN", &tools.wasm_bindgen)
        .env("WASM_OPT_BIN", &tools.wasm_opt)
        .env("ESBUILD_BIN", &tools.esbuild);
    command
}

/// The cold-wake floor of the latency bench (`xtask/floor-do`, never
/// deployed), built into this project's target directory; returns the
/// directory holding its `wrangler.toml`.
pub(crate) fn build_floor(tools: &Tools) -> Result<PathBuf> {
    let target_dir = root().join("target");
    let _only_builder = hold(&target_dir);
    let crate_dir = root().join("xtask").join("floor-do");
    step("worker-build --release (floor-do, the cold-wake floor)");
    let started = Instant::now();
    run(&mut worker_build_of(tools, &crate_dir, &target_dir))?;
    println!("built floor-do in {:.1}s", started.elapsed().as_secs_f64());
    Ok(crate_dir)
}

/// As [`build_in`], of `packages` only, for running beside other steps: at
/// the lowest CPU priority (`nice -n 19`, so it takes the cycles they leave
/// idle and barely slows them), silently, its output written to `log`.
pub(crate) fn build_in_background(
    tools: &Tools,
    project: &std::path::Path,
    packages: &[&str],
    target_dir: &std::path::Path,
    log: &std::path::Path,
    running: &AtomicU32,
) -> Result<()> {
    let out = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let _only_builder = hold(target_dir);
    for &package in packages {
        let build = worker_build(tools, project, target_dir, package);
        let mut command = Command::new("nice");
        command
            .args(["-n", "19"])
            .arg(build.get_program())
            .args(build.get_args())
            .current_dir(project.join("crates").join(package))
            .envs(
                build
                    .get_envs()
                    .filter_map(|(name, value)| Some((name, value?))),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out.try_clone().map_err(|e| e.to_string())?)
            // Its own process group, so that it can be stopped whole.
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|e| format!("starting worker-build for {package}: {e}"))?;
        running.store(child.id(), Ordering::SeqCst);
        let status = child.wait().map_err(|e| e.to_string());
        running.store(0, Ordering::SeqCst);
        let status = status?;
        if !status.success() {
            return Err(format!(
                "worker-build --release ({package}) of {} failed ({status}); its output is in {}, ending:\n{}",
                project.display(),
                log.display(),
                tail(log, 30)
            ));
        }
    }
    Ok(())
}

/// `wrangler deploy --dry-run` of both Workers (offline), printing each one's
/// upload size and failing when one exceeds the budget.
pub(crate) fn dry_run_deploys(tools: &Tools, times: &BuildTimes) -> Result<()> {
    let mut report = Vec::new();
    for (package, config) in WORKERS {
        step(&format!("wrangler deploy --dry-run ({package})"));
        let outdir = root().join("target").join("dry-run").join(package);
        let output = tools
            .wrangler()
            .args(["deploy", "--dry-run", "--config", config, "--outdir"])
            .arg(&outdir)
            .output()
            .map_err(|e| format!("starting wrangler: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "wrangler deploy --dry-run for {package} failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let line = stdout
            .lines()
            .find(|l| l.contains("Total Upload"))
            .ok_or_else(|| format!("no size in wrangler's output for {package}:\n{stdout}"))?;
        let gzip_kib = line
            .split("gzip:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .ok_or_else(|| format!("cannot read the gzip size in {line:?}"))?;
        report.push((package, line.trim().to_owned(), gzip_kib));
    }
    println!("\nWorker sizes (wrangler deploy --dry-run):");
    for (package, line, gzip_kib) in &report {
        let built = times
            .0
            .iter()
            .find(|(p, _)| p == package)
            .map_or(0.0, |(_, s)| *s);
        println!("  {package:<14} {line}  (build {built:.1}s)");
        if *gzip_kib > GZIP_BUDGET_KIB {
            return Err(format!(
                "{package} is {gzip_kib} KiB gzipped, over the budget of {GZIP_BUDGET_KIB} KiB"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{hold, without_custom_section};

    #[test]
    fn only_the_name_section_is_dropped() {
        let header = b"\0asm\x01\0\0\0";
        let types = [1u8, 4, 1, 0x60, 0, 0]; // one type: () -> ()
        let custom = |name: &str, payload: &[u8]| {
            let mut body = vec![u8::try_from(name.len()).expect("short")];
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(payload);
            let mut section = vec![0u8, u8::try_from(body.len()).expect("short")];
            section.extend(body);
            section
        };
        let names = custom("name", &[1, 2, 3]);
        let producers = custom("producers", &[9]);
        let module = [&header[..], &types, &names, &producers].concat();
        let stripped = without_custom_section(&module, "name").expect("a module");
        assert_eq!(stripped, [&header[..], &types, &producers].concat());
        // Nothing to drop: the same bytes.
        assert_eq!(
            without_custom_section(&stripped, "name").expect("a module"),
            stripped
        );
        // A section that claims more than is there is an error, not a panic.
        let broken = [&header[..], &[1u8, 0x7f, 1]].concat();
        assert!(without_custom_section(&broken, "name").is_err());
        assert!(without_custom_section(b"MZ", "name").is_err());
    }
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn builds_into_one_target_directory_take_turns_and_others_do_not_wait() {
        let shared = std::env::temp_dir().join("xtask-hold-test-shared");
        let other = std::env::temp_dir().join("xtask-hold-test-other");
        let first = hold(&shared);
        let second_holds = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&second_holds);
        let dir = shared.clone();
        let second = std::thread::spawn(move || {
            let _turn = hold(&dir);
            flag.store(true, Ordering::SeqCst);
        });
        // Another directory is not held up by the first.
        drop(hold(&other));
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !second_holds.load(Ordering::SeqCst),
            "a second build into the same directory went ahead"
        );
        drop(first);
        second.join().expect("the second builder");
        assert!(second_holds.load(Ordering::SeqCst));
    }
}
