//! `drover`: the command-line front of Drover. Parses arguments, loads inventories, calls the
//! core and the simulator, renders results; exit codes are decided here and only here.
//!
//! Exit codes: 0 success; 1 internal error; 2 bad input (inventory, flags); 3 no safe plan
//! (a precheck failed or no placement exists); 4 the simulator caught a broken invariant.

mod alloc;
mod bench;
mod demo;
mod exit;
mod output;
mod plan_view;
mod simulate_view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use exit::Failure;
use output::OutputFormat;

#[global_allocator]
static ALLOCATOR: alloc::CountingAllocator = alloc::CountingAllocator;

#[derive(Parser)]
#[command(
    name = "drover",
    version,
    about = "Rolling upgrades of virtualization clusters without losing a VM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Plan the rolling upgrade of a cluster: prechecks, waves, one action per VM.
    Plan(PlanArgs),
    /// Plan, then execute the plan in virtual time on the simulator and report the timeline.
    Simulate(SimulateArgs),
    /// Plan and simulate an embedded sample pool (a master and eight hosts, ~60 VMs).
    Demo(DemoArgs),
    /// Measure the planner on generated clusters against two baseline strategies.
    Bench(bench::BenchArgs),
    /// Write a generated cluster as an inventory file (for rehearsals and benchmarks).
    Generate(bench::GenerateArgs),
}

/// Options shared by every command that reads an inventory.
#[derive(Args)]
struct InventoryArgs {
    /// Inventory file (YAML; JSON accepted).
    #[arg(short = 'i', long = "inventory", env = "DROVER_INVENTORY")]
    inventory: PathBuf,
    /// Override policy.max_unavailable: a number of hosts, or "auto".
    #[arg(long, env = "DROVER_MAX_UNAVAILABLE")]
    max_unavailable: Option<String>,
    /// Let Drover resolve resolvable precheck failures (shut down VMs that cannot move).
    #[arg(long)]
    resolve: bool,
}

#[derive(Args)]
struct PlanArgs {
    #[command(flatten)]
    inventory: InventoryArgs,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// In the table view, list every action of every wave.
    #[arg(long)]
    actions: bool,
}

#[derive(Args)]
struct SimulateArgs {
    #[command(flatten)]
    inventory: InventoryArgs,
    /// Seed of the duration jitter; the same seed gives the same timeline.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

#[derive(Args)]
struct DemoArgs {
    /// Seed of the duration jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds of wall time the animated simulation takes on a terminal.
    #[arg(long, default_value_t = 8)]
    animation_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => plan_view::run(&args),
        Command::Simulate(args) => simulate_view::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Generate(args) => bench::generate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Loads the inventory and applies command-line overrides (flags win over the file).
fn load_cluster(args: &InventoryArgs) -> Result<drover_core::Cluster, Failure> {
    let mut cluster =
        drover_schema::inventory::load_inventory(&args.inventory).map_err(Failure::bad_input)?;
    if let Some(value) = &args.max_unavailable {
        cluster.policy.max_unavailable = parse_max_unavailable(value)?;
    }
    if args.resolve {
        cluster.policy.auto_resolve = true;
    }
    Ok(cluster)
}

fn parse_max_unavailable(value: &str) -> Result<drover_core::MaxUnavailable, Failure> {
    if value == "auto" {
        return Ok(drover_core::MaxUnavailable::Auto);
    }
    match value.parse::<u32>() {
        Ok(count) if count >= 1 => Ok(drover_core::MaxUnavailable::Count(count)),
        _ => Err(Failure::bad_input(format!(
            "--max-unavailable: expected a whole number >= 1 or \"auto\", got {value:?}"
        ))),
    }
}
