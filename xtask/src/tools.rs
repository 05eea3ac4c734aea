//! The offline toolchain: found when present at the right version, installed
//! from the package registries when not (nothing is downloaded from GitHub or
//! a vendor site, which this kind of machine cannot reach).

use crate::{Result, root, run, step};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The worker-build release matching `worker` in Cargo.toml.
const WORKER_BUILD_VERSION: &str = "0.8.7";

/// Paths of every tool the builds and the end-to-end suite use.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub(crate) worker_build: PathBuf,
    pub(crate) wasm_bindgen: PathBuf,
    pub(crate) wasm_bindgen_test_runner: PathBuf,
    /// `node_modules/.bin`: wrangler, and Node 22 as `node`.
    pub(crate) node_bin: PathBuf,
    pub(crate) wasm_opt: PathBuf,
    pub(crate) esbuild: PathBuf,
}

impl Tools {
    /// PATH with `node_modules/.bin` first, so `node` is Node 22 (wrangler
    /// refuses the machine's Node 20).
    pub(crate) fn path_with_node(&self) -> OsString {
        // Joined by hand: `join_paths` refuses a directory with a `:` in
        // it, and an empty PATH would only show later as a missing `node`.
        let mut path = self.node_bin.clone().into_os_string();
        if let Some(existing) = std::env::var_os("PATH") {
            path.push(":");
            path.push(existing);
        }
        path
    }

    /// `wrangler`, run by Node 22, offline and quiet, keeping its files in the project.
    pub(crate) fn wrangler(&self) -> Command {
        let mut command = Command::new(self.node_bin.join("wrangler"));
        command
            .current_dir(root())
            .env("PATH", self.path_with_node())
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("X_LOCAL_OBSERVABILITY", "false")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", root().join(".inboxkit").join("config"));
        command
    }
}

/// Finds or installs everything, printing what it does.
pub(crate) fn ensure_all() -> Result<Tools> {
    ensure_wasm_target()?;
    let bin = cargo_bin_dir();
    let installed = cargo_installed()?;

    let worker_build = bin.join("worker-build");
    if !installed.contains(&format!("worker-build v{WORKER_BUILD_VERSION}:"))
        || !worker_build.exists()
    {
        step(&format!(
            "installing worker-build {WORKER_BUILD_VERSION} (a few minutes, once)"
        ));
        run(Command::new("cargo").args([
            "install",
            "worker-build",
            "--version",
            WORKER_BUILD_VERSION,
            "--locked",
        ]))?;
    }

    let bindgen_version = locked_version("wasm-bindgen")?;
    let wasm_bindgen = bin.join("wasm-bindgen");
    if !installed.contains(&format!("wasm-bindgen-cli v{bindgen_version}:"))
        || !wasm_bindgen.exists()
    {
        step(&format!(
            "installing wasm-bindgen-cli {bindgen_version} (a few minutes, once)"
        ));
        // Without --locked: its lockfile pins a crate the registry no longer has.
        run(Command::new("cargo").args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            &bindgen_version,
        ]))?;
    }

    ensure_node_modules()?;
    let modules = root().join("node_modules");
    let tools = Tools {
        worker_build,
        wasm_bindgen,
        wasm_bindgen_test_runner: bin.join("wasm-bindgen-test-runner"),
        node_bin: modules.join(".bin"),
        wasm_opt: modules.join("binaryen").join("bin").join("wasm-opt"),
        esbuild: modules
            .join("@esbuild")
            .join("linux-x64")
            .join("bin")
            .join("esbuild"),
    };
    for path in [
        &tools.worker_build,
        &tools.wasm_bindgen,
        &tools.wasm_bindgen_test_runner,
        &tools.wasm_opt,
        &tools.esbuild,
        &tools.node_bin.join("node"),
        &tools.node_bin.join("wrangler"),
    ] {
        if !path.exists() {
            return Err(format!("{} is missing after set-up", path.display()));
        }
    }
    Ok(tools)
}

fn ensure_wasm_target() -> Result<()> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup is needed to add the wasm32 target: {e}"))?;
    if String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    step("adding the wasm32-unknown-unknown target");
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

fn cargo_bin_dir() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin")
}

fn cargo_installed() -> Result<String> {
    let output = Command::new("cargo")
        .args(["install", "--list"])
        .output()
        .map_err(|e| format!("cargo install --list: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The version of `package` in Cargo.lock.
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("reading Cargo.lock: {e}"))?;
    let needle = format!("name = \"{package}\"\n");
    let start = lock
        .find(&needle)
        .ok_or_else(|| format!("{package} is not in Cargo.lock"))?;
    lock[start + needle.len()..]
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .map(str::to_owned)
        .ok_or_else(|| format!("no version for {package} in Cargo.lock"))
}

/// `npm ci` when node_modules is missing or was installed from another lockfile.
fn ensure_node_modules() -> Result<()> {
    let lock = root().join("package-lock.json");
    let marker = root().join("node_modules").join(".inboxkit-installed-lock");
    let wanted = std::fs::read(&lock).map_err(|e| format!("reading package-lock.json: {e}"))?;
    if std::fs::read(&marker).is_ok_and(|had| had == wanted) {
        return Ok(());
    }
    step("npm ci (wrangler, Node 22, binaryen)");
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(root()))?;
    std::fs::write(&marker, &wanted).map_err(|e| format!("writing {}: {e}", marker.display()))
}

/// Debian's Chromium, for the console's browser check: the system package,
/// installed through apt when missing (playwright-core downloads nothing).
pub(crate) fn ensure_chromium() -> Result<PathBuf> {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if chromium.exists() {
        return Ok(chromium);
    }
    step("installing chromium from Debian's packages (a minute or two, once)");
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut command = if root_user {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    let install = ["install", "-y", "--no-install-recommends", "chromium"];
    if run(&mut apt(&install)).is_err() {
        // A stale package list: refresh it once and try again.
        run(&mut apt(&["update"]))?;
        run(&mut apt(&install))?;
    }
    if !chromium.exists() {
        return Err(format!(
            "{} is missing after apt-get install",
            chromium.display()
        ));
    }
    Ok(chromium)
}
