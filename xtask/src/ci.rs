//! `cargo xtask test`: everything CI runs, phase by phase, with each phase's
//! duration printed at the end (before the end-to-end suite's summary, which
//! stays the last line). The rollout's previous version builds beside the
//! phases, in its own target directory.

use crate::{Result, build, cargo, e2e, mixed, rollout, run, soak, step, tools};
use std::time::Instant;

/// The phases of `cargo xtask test`, each with how long it took.
#[derive(Debug)]
struct Phases {
    started: Instant,
    rows: Vec<(&'static str, f64)>,
    /// Work done beside the phases (not part of the total's sum).
    beside: Vec<(&'static str, f64)>,
}

impl Phases {
    fn new() -> Phases {
        Phases {
            started: Instant::now(),
            rows: Vec::new(),
            beside: Vec::new(),
        }
    }

    /// Runs `phase`, recording its duration under `name` (failed or not).
    fn time<T>(&mut self, name: &'static str, phase: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let outcome = phase();
        self.rows.push((name, started.elapsed().as_secs_f64()));
        outcome
    }

    fn print(&self) {
        println!("\nphase durations:");
        for (name, seconds) in &self.rows {
            println!("  {name:<28} {:>7}", minutes(*seconds));
        }
        println!(
            "  {:<28} {:>7}",
            "total",
            minutes(self.started.elapsed().as_secs_f64())
        );
        for (name, seconds) in &self.beside {
            println!("  ({name}: {}, beside the phases above)", minutes(*seconds));
        }
    }
}

/// `m:ss`.
fn minutes(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    format!("{}:{:02}", whole / 60, whole % 60)
}

/// Everything CI runs; the table of phase durations, then the end-to-end
/// suite's summary, are the last lines printed.
pub(crate) fn test() -> Result<()> {
    let mut phases = Phases::new();
    let outcome = test_phases(&mut phases);
    phases.print();
    outcome?.finish()
}

fn test_phases(phases: &mut Phases) -> Result<e2e::Summary> {
    let tools = phases.time("tools (found or installed)", tools::ensure_all)?;
    // The rollout's previous version builds in its own target directory, so
    // it runs beside everything up to the rollout (at the lowest priority).
    let previous = if rollout::history_available() {
        Some(rollout::PreviousBuild::start(&tools)?)
    } else {
        None
    };

    // So does the previous release's router, for the mixed-version run.
    let previous_router = if rollout::history_available() {
        Some(mixed::PreviousRouter::start(&tools)?)
    } else {
        None
    };

    phases.time("fmt", || {
        step("cargo fmt --check");
        run(cargo().args(["fmt", "--all", "--check"]))
    })?;

    phases.time("clippy host", || {
        step("clippy (host)");
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))
    })?;

    phases.time("clippy wasm32", || {
        step("clippy (wasm32)");
        run(cargo().args([
            "clippy",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "protocol",
            "-p",
            "schema",
            "-p",
            "router-worker",
            "-p",
            "inbox-do",
            "-p",
            "floor-do",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))
    })?;

    phases.time("native tests", || {
        step("native tests");
        run(cargo().args(["test", "--workspace", "--locked"]))
    })?;

    phases.time("wasm32 tests", || {
        step("wasm32 tests of the pure crates (wasm-bindgen-test under Node)");
        run(cargo()
            .args([
                "test",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                "protocol",
                "-p",
                "schema",
                "--lib",
                "--locked",
            ])
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                &tools.wasm_bindgen_test_runner,
            )
            .env("PATH", tools.path_with_node()))
    })?;

    let sizes = phases.time("builds", || build::build_all(&tools))?;
    phases.time("dry-run deploys", || build::dry_run_deploys(&tools, &sizes))?;

    phases.time("soak (short)", || soak::run(&tools, soak::SHORT))?;
    match previous {
        Some(previous) => {
            let mut built_in = None;
            let outcome = phases.time("rollout", || {
                let (built, seconds) = previous.finish()?;
                built_in = Some(seconds);
                rollout::run(&tools, Some(built))
            });
            if let Some(seconds) = built_in {
                phases
                    .beside
                    .push(("rollout: the previous version's build", seconds));
            }
            outcome?;
        }
        None => {
            // Said loudly: a clone without history cannot build the previous
            // version. `cargo xtask rollout` fails outright in that case.
            println!(
                "\n!!! rollout check NOT RUN: this clone has no git history to build the previous version from"
            );
        }
    }

    let summary = phases.time("e2e", || e2e::run(&tools))?;
    let Some(previous_router) = previous_router else {
        println!(
            "\n!!! mixed-version run NOT RUN: this clone has no git history to build the previous router from"
        );
        return Ok(summary);
    };
    let mut built_in = None;
    let mixed = phases.time("e2e via the previous router", || {
        let (project, seconds) = previous_router.finish()?;
        built_in = Some(seconds);
        e2e::run_mixed(&tools, project)
    });
    if let Some(seconds) = built_in {
        phases
            .beside
            .push(("mixed: the previous router's build", seconds));
    }
    Ok(summary.and(mixed?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_minutes_and_seconds() {
        assert_eq!(minutes(0.4), "0:00");
        assert_eq!(minutes(59.6), "1:00");
        assert_eq!(minutes(125.2), "2:05");
        assert_eq!(minutes(3600.0), "60:00");
    }

    #[test]
    fn a_failed_phase_is_timed_too() {
        let mut phases = Phases::new();
        let failed: Result<()> = phases.time("clippy host", || Err("lint".to_owned()));
        assert_eq!(failed, Err("lint".to_owned()));
        assert_eq!(phases.time("fmt", || Ok(7)), Ok(7));
        let names: Vec<&str> = phases.rows.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["clippy host", "fmt"]);
    }
}
