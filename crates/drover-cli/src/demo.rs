//! `drover demo`: the first thing a new user runs. Plans the embedded sample pool, replays the
//! simulated rolling upgrade as a live progress display (only on a terminal), and ends with the
//! summary tables. Needs nothing but the binary.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use drover_app::time_text::format_duration_secs;
use drover_sim::{SimEvent, SimEventKind, SimReport};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exit::Failure;
use crate::simulate_view::{print_simulation_tables, simulate, SimulationDocument};

#[derive(Args)]
pub struct DemoArgs {
    /// Seed of the duration jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds of wall time the animated simulation takes on a terminal.
    #[arg(long, default_value_t = 8)]
    animation_secs: u64,
}

/// The sample pool: a XenServer-style master and eight hosts with ~60 VMs of every kind.
const DEMO_POOL_YAML: &str = include_str!("demo-pool.yaml");

pub fn run(args: &DemoArgs) -> Result<(), Failure> {
    let cluster = drover_schema::inventory::parse_inventory(DEMO_POOL_YAML, "demo-pool.yaml")
        .map_err(Failure::internal)?;
    let plan = drover_core::plan(&cluster);
    let document = drover_schema::document::PlanDocument::new(&cluster, &plan);
    crate::plan_view::print_plan_tables(&document, false);
    let planned = drover_app::plan::PlannedUpgrade {
        cluster_name: cluster.name.clone(),
        plan: plan.clone(),
        catalog: None,
        document,
    };
    planned.check_safe()?;
    let report = simulate(&cluster, &plan, args.seed)?;
    if std::io::stderr().is_terminal() {
        animate(&cluster, &report, Duration::from_secs(args.animation_secs));
    } else {
        eprintln!("simulated {} wave(s) in virtual time", plan.waves.len());
    }
    println!(
        "Simulated rolling upgrade (virtual time, seed {}):",
        args.seed
    );
    println!();
    print_simulation_tables(&SimulationDocument::new(
        &cluster, &plan, &report, args.seed,
    ));
    Ok(())
}

/// Replays the simulator's events on stderr, compressing the virtual makespan into `wall_time`.
fn animate(cluster: &drover_core::Cluster, report: &SimReport, wall_time: Duration) {
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let hosts_total = report.hosts.len() as u64;
    let overall = bars.add(ProgressBar::new(hosts_total));
    overall.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:40.green/white}] {pos}/{len} hosts upgraded",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    overall.set_prefix("pool");
    let activity = bars.add(ProgressBar::new_spinner());
    activity
        .set_style(ProgressStyle::with_template("{prefix:>10} {msg}").expect("static template"));
    activity.set_prefix("now");
    let makespan = report.makespan_secs.max(1) as f64;
    let mut shown_until = 0.0;
    for event in &report.events {
        let due = wall_time.as_secs_f64() * event.at_secs as f64 / makespan;
        if due > shown_until {
            std::thread::sleep(Duration::from_secs_f64(due - shown_until));
            shown_until = due;
        }
        if event.kind == SimEventKind::HostBackInService
            || event.kind == SimEventKind::HostReturnedToMaintenance
        {
            overall.inc(1);
        }
        activity.set_message(describe(cluster, event));
    }
    overall.finish();
    activity.finish_with_message(format!(
        "done in {} of virtual time",
        format_duration_secs(report.makespan_secs)
    ));
}

fn describe(cluster: &drover_core::Cluster, event: &SimEvent) -> String {
    let host = event
        .host
        .map(|h| cluster.host(h).name.as_str())
        .unwrap_or("-");
    let vm = event.vm.map(|v| cluster.vm(v).name.as_str()).unwrap_or("-");
    let destination = event
        .destination
        .map(|h| cluster.host(h).name.as_str())
        .unwrap_or("-");
    let clock = format_duration_secs(event.at_secs);
    let what = match event.kind {
        SimEventKind::MigrationStarted => format!("migrating {vm} {host} → {destination}"),
        SimEventKind::MigrationFinished => format!("migrated {vm} to {destination}"),
        SimEventKind::VmShutdownStarted => format!("shutting down {vm} on {host}"),
        SimEventKind::VmBootStarted => format!("booting {vm}"),
        SimEventKind::HostUpgradeStarted => format!("upgrading {host}"),
        SimEventKind::HostRebootStarted => format!("rebooting {host}"),
        other => format!("{} {host}", other.as_str().replace('-', " ")),
    };
    format!("[{clock:>9}] wave {} · {what}", event.wave + 1)
}
