//! `drover plan`: prechecks, waves and downtime as an operator reviews them before saying yes,
//! or the plan document as JSON/YAML (exit 3 when it is not feasible). Knows rendering only;
//! planning is the core's and the document is `drover_app::plan`'s.

use clap::Args;
use drover_app::plan::plan_upgrade;
use drover_schema::document::{
    ActionKindName, CheckStatusName, PlanDocument, SkipReasonName, WaveKindName,
};

use crate::exit::Failure;
use crate::inventory_args::{load_file, InventoryArgs};
use crate::output::{print_document, print_table, status_cell, table, OutputFormat};

#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    inventory: InventoryArgs,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// In the table view, list every action of every wave.
    #[arg(long)]
    actions: bool,
}

pub fn run(args: &PlanArgs) -> Result<(), Failure> {
    let file = load_file(&args.inventory)?;
    let mut planned = plan_upgrade(&file)?;
    planned.add_engine_update_precheck(&file);
    match args.output.document() {
        Some(format) => print_document(&planned.document, format)?,
        None => print_plan_tables(&planned.document, args.actions),
    }
    Ok(planned.check_safe()?)
}

pub fn print_plan_tables(document: &PlanDocument, with_actions: bool) {
    let summary = &document.summary;
    println!(
        "Plan for cluster {} to {}: {} host(s) to upgrade in {} wave(s), batches of up to {}",
        document.cluster,
        document.target_version,
        summary.hosts_to_upgrade,
        summary.waves,
        summary.max_unavailable
    );
    println!();
    print_prechecks(document);
    if !document.waves.is_empty() {
        print_waves(document);
    }
    if with_actions {
        print_actions(document);
    }
    print_downtime(document);
    print_paths(document);
    print_skipped(document);
    print_summary(document);
}

fn print_prechecks(document: &PlanDocument) {
    let mut view = table(&["precheck", "status", "message"]);
    for check in &document.prechecks {
        let status = match check.status {
            CheckStatusName::Pass => "pass",
            CheckStatusName::Warn => "warn",
            CheckStatusName::Fail => "fail",
        };
        view.add_row(vec![
            check.id.as_str().into(),
            status_cell(status),
            check.message.as_str().into(),
        ]);
    }
    print_table(&view);
}

fn wave_kind(kind: WaveKindName) -> &'static str {
    match kind {
        WaveKindName::Master => "master",
        WaveKindName::Management => "management",
        WaveKindName::Compute => "compute",
    }
}

fn action_kind(kind: ActionKindName) -> &'static str {
    match kind {
        ActionKindName::Migrate => "migrate",
        ActionKindName::Restart => "restart",
        ActionKindName::Shutdown => "shutdown",
        ActionKindName::Suspend => "suspend",
        ActionKindName::Shelve => "shelve",
    }
}

/// The longest host list shown in one cell; the rest is counted.
const HOSTS_SHOWN_PER_WAVE: usize = 6;

fn print_waves(document: &PlanDocument) {
    // Suspend and shelve columns only when the plan has any, so other plans read as before.
    let parks = |kind| {
        document
            .waves
            .iter()
            .any(|w| w.actions.iter().any(|a| a.kind == kind))
    };
    let (suspends, shelves) = (
        parks(ActionKindName::Suspend),
        parks(ActionKindName::Shelve),
    );
    // Likewise a column of returns (migrations back home after the wave) only when there are.
    let returns = document.waves.iter().any(|w| !w.returns.is_empty());
    let mut headers = vec!["wave", "kind", "hosts", "migrate", "restart", "shutdown"];
    if suspends {
        headers.push("suspend");
    }
    if shelves {
        headers.push("shelve");
    }
    if returns {
        headers.push("return");
    }
    let mut view = table(&headers);
    for wave in &document.waves {
        let count = |kind| {
            wave.actions
                .iter()
                .filter(|a| a.kind == kind)
                .count()
                .to_string()
        };
        let mut hosts = wave
            .hosts
            .iter()
            .take(HOSTS_SHOWN_PER_WAVE)
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        if wave.hosts.len() > HOSTS_SHOWN_PER_WAVE {
            hosts.push_str(&format!(
                " +{} more",
                wave.hosts.len() - HOSTS_SHOWN_PER_WAVE
            ));
        }
        let mut row = vec![
            wave.number.to_string(),
            wave_kind(wave.kind).to_string(),
            hosts,
            count(ActionKindName::Migrate),
            count(ActionKindName::Restart),
            count(ActionKindName::Shutdown),
        ];
        if suspends {
            row.push(count(ActionKindName::Suspend));
        }
        if shelves {
            row.push(count(ActionKindName::Shelve));
        }
        if returns {
            row.push(wave.returns.len().to_string());
        }
        view.add_row(row);
    }
    print_table(&view);
}

fn print_actions(document: &PlanDocument) {
    let mut view = table(&["wave", "vm", "action", "from", "to"]);
    for wave in &document.waves {
        for action in &wave.actions {
            view.add_row(vec![
                wave.number.to_string(),
                action.vm.clone(),
                action_kind(action.kind).to_string(),
                action.from.clone(),
                action
                    .to
                    .clone()
                    .unwrap_or_else(|| format!("{} (after upgrade)", action.from)),
            ]);
        }
        for back in &wave.returns {
            view.add_row(vec![
                wave.number.to_string(),
                back.vm.clone(),
                format!("{} (return)", action_kind(back.kind)),
                back.from.clone(),
                back.to.clone().unwrap_or_default(),
            ]);
        }
    }
    print_table(&view);
}

fn print_downtime(document: &PlanDocument) {
    if document.downtime.is_empty() {
        println!("No VM sees downtime: every running VM live-migrates.");
        println!();
        return;
    }
    println!("VMs that will see downtime:");
    let mut view = table(&["vm", "host", "action", "why"]);
    for entry in &document.downtime {
        view.add_row(vec![
            entry.vm.clone(),
            entry.host.clone(),
            action_kind(entry.kind).to_string(),
            entry.reason.clone(),
        ]);
    }
    print_table(&view);
}

/// The release catalog's paths, hotfixes and reboots per host.
fn print_paths(document: &PlanDocument) {
    if document.upgrade_paths.is_empty() {
        return;
    }
    let mut view = table(&["host", "from", "path", "reboots", "hotfixes"]);
    for entry in &document.upgrade_paths {
        let hotfixes = match entry.hotfixes.is_empty() {
            true => "-".to_string(),
            false => entry.hotfixes.join(", "),
        };
        view.add_row(vec![
            entry.host.clone(),
            entry.from.clone(),
            entry.hops.join(" → "),
            entry.reboots.to_string(),
            hotfixes,
        ]);
    }
    println!("Upgrade paths (one maintenance window per host):");
    print_table(&view);
    if let Some(level) = &document.compatibility_level_after {
        println!("Afterwards every host supports cluster compatibility level {level}.");
        println!();
    }
}

fn print_skipped(document: &PlanDocument) {
    if document.skipped.is_empty() {
        return;
    }
    let names: Vec<String> = document
        .skipped
        .iter()
        .map(|s| {
            let reason = match s.reason {
                SkipReasonName::Down => "down",
                SkipReasonName::AtTarget => "at target",
                SkipReasonName::NewerThanTarget => "newer than target",
                SkipReasonName::NotSelected => "not selected",
            };
            format!("{} ({reason})", s.host)
        })
        .collect();
    println!("Not touched: {}", names.join(", "));
    println!();
}

fn print_summary(document: &PlanDocument) {
    let summary = &document.summary;
    let ratio = if summary.migrations_lower_bound == 0 {
        String::from("-")
    } else {
        format!(
            "{:.3}x",
            summary.migrations as f64 / summary.migrations_lower_bound as f64
        )
    };
    println!(
        "Summary: {} wave(s) (fewest possible {}), {} migration(s) (lower bound {}, {ratio}), {} restart(s), {} shutdown(s)",
        summary.waves,
        summary.waves_lower_bound,
        summary.migrations,
        summary.migrations_lower_bound,
        summary.restarts,
        summary.shutdowns
    );
    if summary.suspends + summary.shelves > 0 {
        println!(
            "  and {} suspend(s) (resumed on their own host), {} shelve(s) (unshelved on another host)",
            summary.suspends, summary.shelves
        );
    }
    if summary.returns > 0 {
        println!(
            "  and {} return(s): live migrations back to a VM's upgraded home host after its wave (not counted above)",
            summary.returns
        );
    }
    if let Some(level) = &document.final_compatibility_level {
        println!("After the last host: raise the cluster compatibility level to {level}");
    }
    if !document.feasible {
        println!("NOT FEASIBLE: see the failed prechecks above.");
    }
}
