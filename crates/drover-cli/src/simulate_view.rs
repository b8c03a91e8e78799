//! `drover simulate`: plans, executes the plan on the simulator in virtual time, and reports the
//! per-host timeline, makespan, migrations, VM downtime and peak hosts unavailable.
//! The report document defined here is an edge type; the simulator's own types carry ids only.

use clap::Args;
use drover_app::plan::plan_upgrade;
use drover_app::time_text::format_duration_secs;
use drover_core::{Cluster, Plan};
use drover_sim::SimReport;
use serde::Serialize;

use crate::exit::Failure;
use crate::inventory_args::{load_file, InventoryArgs};
use crate::output::{print_document, print_table, table, OutputFormat};

#[derive(Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    inventory: InventoryArgs,
    /// Seed of the duration jitter; the same seed gives the same timeline.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

#[derive(Serialize)]
pub struct SimulationDocument {
    pub cluster: String,
    pub target_version: String,
    pub seed: u64,
    pub makespan_secs: u64,
    pub waves: usize,
    pub migrations: usize,
    /// Migrations back home after a wave (`Wave::returns`); absent when none.
    #[serde(skip_serializing_if = "is_zero")]
    pub returns: usize,
    pub restarts: usize,
    pub shutdowns: usize,
    pub peak_hosts_unavailable: usize,
    pub total_downtime_secs: u64,
    pub hosts: Vec<HostTimelineEntry>,
    pub downtime: Vec<DowntimeEntry>,
}

#[derive(Serialize)]
pub struct HostTimelineEntry {
    pub host: String,
    /// 1-based wave number.
    pub wave: usize,
    pub evacuation_started_secs: u64,
    pub evacuation_finished_secs: u64,
    pub upgrade_started_secs: u64,
    pub reboot_finished_secs: u64,
    pub back_in_service_secs: u64,
}

#[derive(Serialize)]
pub struct DowntimeEntry {
    pub vm: String,
    pub host: String,
    pub kind: String,
    pub started_secs: u64,
    pub ended_secs: u64,
    pub duration_secs: u64,
}

impl SimulationDocument {
    pub fn new(cluster: &Cluster, plan: &Plan, report: &SimReport, seed: u64) -> Self {
        let host_name = |id: drover_core::HostId| cluster.host(id).name.clone();
        SimulationDocument {
            cluster: cluster.name.clone(),
            target_version: cluster.target_version.to_string(),
            seed,
            makespan_secs: report.makespan_secs,
            waves: plan.waves.len(),
            migrations: report.migrations,
            returns: report.returns,
            restarts: report.restarts,
            shutdowns: report.shutdowns,
            peak_hosts_unavailable: report.peak_hosts_unavailable,
            total_downtime_secs: report.total_downtime_secs(),
            hosts: report
                .hosts
                .iter()
                .map(|h| HostTimelineEntry {
                    host: host_name(h.host),
                    wave: h.wave + 1,
                    evacuation_started_secs: h.evacuation_started_secs,
                    evacuation_finished_secs: h.evacuation_finished_secs,
                    upgrade_started_secs: h.upgrade_started_secs,
                    reboot_finished_secs: h.reboot_finished_secs,
                    back_in_service_secs: h.back_in_service_secs,
                })
                .collect(),
            downtime: report
                .downtime
                .iter()
                .map(|d| DowntimeEntry {
                    vm: cluster.vm(d.vm).name.clone(),
                    host: host_name(d.host),
                    kind: d.kind.as_str().to_string(),
                    started_secs: d.started_secs,
                    ended_secs: d.ended_secs,
                    duration_secs: d.duration_secs(),
                })
                .collect(),
        }
    }
}

pub fn run(args: &SimulateArgs) -> Result<(), Failure> {
    let file = load_file(&args.inventory)?;
    let planned = plan_upgrade(&file)?;
    planned.check_safe()?;
    let plan = planned.plan;
    let cluster = file.cluster;
    let report = simulate(&cluster, &plan, args.seed)?;
    let document = SimulationDocument::new(&cluster, &plan, &report, args.seed);
    match args.output.document() {
        Some(format) => print_document(&document, format),
        None => {
            print_simulation_tables(&document);
            Ok(())
        }
    }
}

/// Runs the simulator; a broken invariant is a Drover bug and gets its own exit code and the seed.
pub fn simulate(cluster: &Cluster, plan: &Plan, seed: u64) -> Result<SimReport, Failure> {
    drover_sim::simulate(cluster, plan, seed).map_err(|error| match error {
        drover_sim::SimError::InvariantBroken { .. } => {
            Failure::invariant_broken(format!("{error} (seed {seed})"))
        }
        other => Failure::internal(other),
    })
}

pub fn print_simulation_tables(document: &SimulationDocument) {
    let mut view = table(&[
        "host",
        "wave",
        "evacuation",
        "upgrade+reboot",
        "back at",
        "out of service",
    ]);
    for host in &document.hosts {
        view.add_row(vec![
            host.host.clone(),
            host.wave.to_string(),
            format!(
                "{} → {}",
                format_duration_secs(host.evacuation_started_secs),
                format_duration_secs(host.evacuation_finished_secs)
            ),
            format!(
                "{} → {}",
                format_duration_secs(host.upgrade_started_secs),
                format_duration_secs(host.reboot_finished_secs)
            ),
            format_duration_secs(host.back_in_service_secs),
            format_duration_secs(
                host.back_in_service_secs
                    .saturating_sub(host.evacuation_finished_secs),
            ),
        ]);
    }
    print_table(&view);
    if !document.downtime.is_empty() {
        println!("VM downtime:");
        let mut view = table(&["vm", "host", "action", "from", "to", "downtime"]);
        for entry in &document.downtime {
            view.add_row(vec![
                entry.vm.clone(),
                entry.host.clone(),
                entry.kind.clone(),
                format_duration_secs(entry.started_secs),
                format_duration_secs(entry.ended_secs),
                format_duration_secs(entry.duration_secs),
            ]);
        }
        print_table(&view);
    }
    print_simulation_summary(document);
}

pub fn print_simulation_summary(document: &SimulationDocument) {
    let mut view = table(&[
        "cluster",
        "target",
        "makespan",
        "waves",
        "migrations",
        "restarts",
        "shutdowns",
        "vm downtime",
        "peak hosts down",
    ]);
    view.add_row(vec![
        document.cluster.clone(),
        document.target_version.clone(),
        format_duration_secs(document.makespan_secs),
        document.waves.to_string(),
        document.migrations.to_string(),
        document.restarts.to_string(),
        document.shutdowns.to_string(),
        format_duration_secs(document.total_downtime_secs),
        document.peak_hosts_unavailable.to_string(),
    ]);
    print_table(&view);
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}
