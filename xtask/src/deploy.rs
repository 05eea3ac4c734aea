//! `cargo xtask deploy [inbox|router|all] [--dry-run]`: builds both Workers,
//! runs the size check, and deploys in the safe order (the inbox script
//! before the router). A router is never put in front of an inbox script
//! older than its wire: each deploy records the wire version it put up
//! (`protocol::wire::WIRE_VERSION`) in `.inboxkit/deployed.json`, and a
//! router-only deploy whose wire is newer than the recorded inbox script's is
//! refused (deploy `inbox` or `all` first).

use crate::tools::Tools;
use crate::{Result, build, root, run, step};
use protocol::wire::WIRE_VERSION;
use serde_json::{Value as Json, json};
use std::path::PathBuf;

/// What to deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Inbox,
    Router,
    All,
}

/// The parsed command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) target: Target,
    pub(crate) dry_run: bool,
}

/// `[inbox|router|all] [--dry-run]`, in any order; `all` when none is named.
pub(crate) fn parse(args: &[String]) -> Result<Plan> {
    let mut target = None;
    let mut dry_run = false;
    for arg in args {
        let named = match arg.as_str() {
            "--dry-run" => {
                dry_run = true;
                continue;
            }
            "inbox" => Target::Inbox,
            "router" => Target::Router,
            "all" => Target::All,
            other => return Err(format!("deploy: unknown argument {other:?}")),
        };
        if target.replace(named).is_some() {
            return Err("deploy: name one of inbox, router or all".to_owned());
        }
    }
    Ok(Plan {
        target: target.unwrap_or(Target::All),
        dry_run,
    })
}

/// The scripts to deploy, in order: (package, its wrangler config).
pub(crate) fn order(target: Target) -> Vec<(&'static str, &'static str)> {
    let [router, inbox] = build::WORKERS;
    match target {
        Target::Inbox => vec![inbox],
        Target::Router => vec![router],
        // The inbox script first: the previous router keeps working in front
        // of it (the wire's compatibility rule, tests/wire.rs and the
        // mixed-version run), while a new router could send an old inbox
        // script requests it cannot read.
        Target::All => vec![inbox, router],
    }
}

/// Whether a router of wire `router_wire` may be deployed alone in front of
/// the inbox script the record says is deployed.
pub(crate) fn router_may_go_alone(record: Option<&Json>, router_wire: u32) -> Result<()> {
    let inbox = record
        .and_then(|r| r["inbox"]["wireVersion"].as_u64())
        .ok_or_else(|| {
            format!(
                "refusing a router-only deploy: {} has no record of the inbox script this \
                 deployment runs, so nothing says it reads wire version {router_wire}. \
                 Deploy `all` (inbox first), or `inbox` then `router`.",
                record_path().display()
            )
        })?;
    if inbox < u64::from(router_wire) {
        return Err(format!(
            "refusing a router-only deploy: this router speaks wire version {router_wire}, \
             the deployed inbox script only version {inbox}. Deploy `inbox` first \
             (or `all`, which does)."
        ));
    }
    Ok(())
}

fn record_path() -> PathBuf {
    root().join(".inboxkit").join("deployed.json")
}

fn read_record() -> Result<Option<Json>> {
    match std::fs::read_to_string(record_path()) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", record_path().display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", record_path().display())),
    }
}

fn write_record(record: &Json) -> Result<()> {
    let path = record_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(record).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn commit() -> String {
    crate::rollout::git(&["rev-parse", "HEAD"]).unwrap_or_else(|_| "unknown".to_owned())
}

/// Runs the plan: build, size check, the wire check, then each deploy in order.
pub(crate) fn deploy(tools: &Tools, plan: Plan) -> Result<()> {
    let times = build::build_all(tools)?;
    // The size check first: `wrangler deploy --dry-run` of both, failing over budget.
    build::dry_run_deploys(tools, &times)?;
    let mut record = read_record()?.unwrap_or_else(|| json!({}));
    if plan.target == Target::Router {
        // A record without an inbox entry reads as no record.
        router_may_go_alone(Some(&record), WIRE_VERSION)?;
    }
    for (package, config) in order(plan.target) {
        if plan.dry_run {
            println!("(dry run) would deploy {package} with wrangler deploy --config {config}");
            continue;
        }
        step(&format!("wrangler deploy ({package})"));
        run(tools.wrangler().args(["deploy", "--config", config]))?;
        let key = if package == "inbox-do" {
            "inbox"
        } else {
            "router"
        };
        record[key] = json!({"commit": commit(), "wireVersion": WIRE_VERSION});
        write_record(&record)?;
    }
    if plan.dry_run {
        println!(
            "dry run: nothing deployed; {} unchanged",
            record_path().display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_command_line_names_one_target_and_maybe_a_dry_run() {
        let plan = |list: &[&str]| parse(&args(list));
        assert_eq!(
            plan(&[]),
            Ok(Plan {
                target: Target::All,
                dry_run: false
            })
        );
        assert_eq!(
            plan(&["--dry-run", "router"]),
            Ok(Plan {
                target: Target::Router,
                dry_run: true
            })
        );
        assert!(plan(&["inbox", "router"]).is_err());
        assert!(plan(&["everything"]).is_err());
    }

    #[test]
    fn the_inbox_script_always_goes_first() {
        let names = |t| order(t).into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        assert_eq!(names(Target::All), ["inbox-do", "router-worker"]);
        assert_eq!(names(Target::Inbox), ["inbox-do"]);
        assert_eq!(names(Target::Router), ["router-worker"]);
    }

    #[test]
    fn a_router_goes_alone_only_in_front_of_an_inbox_that_reads_its_wire() {
        let record = |v: u32| json!({"inbox": {"commit": "abc", "wireVersion": v}});
        assert!(router_may_go_alone(Some(&record(3)), 3).is_ok());
        assert!(router_may_go_alone(Some(&record(4)), 3).is_ok());
        let older = router_may_go_alone(Some(&record(2)), 3).expect_err("an older inbox");
        assert!(older.contains("Deploy `inbox` first"), "{older}");
        let none = router_may_go_alone(None, 3).expect_err("no record");
        assert!(none.contains("no record"), "{none}");
        assert!(router_may_go_alone(Some(&json!({"router": {}})), 1).is_err());
    }
}
