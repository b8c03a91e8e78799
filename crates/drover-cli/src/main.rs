//! `drover`: the command-line front of Drover. Parses arguments, loads inventories, calls the
//! core and the simulator, renders results; exit codes are decided here and only here.
//!
//! Exit codes: 0 success; 1 internal error; 2 bad input (inventory, flags, state file, a refused
//! operator command); 3 no safe plan (a precheck failed or no placement exists); 4 the simulator
//! caught a broken invariant; 5 the run stopped and needs an operator (halted, awaiting approval,
//! manual upgrade, paused); 6 the run was aborted; 7 `drover check` could not ask some host.

mod alloc;
mod bench;
mod catalog_view;
mod check_view;
mod closed_pipe;
mod completions;
mod demo;
mod discover;
mod drivers;
mod exit;
mod output;
mod plan_view;
mod progress;
mod report;
mod report_view;
mod reviewed_plan;
mod run_id;
mod runs;
mod serve;
mod simulate_view;
mod timeline_view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use drover_core::execution::OperatorCommand;
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
    #[command(flatten)]
    state: runs::StateArgs,
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
    /// Plan and execute a rolling upgrade, journaled in the state file.
    Run(runs::RunArgs),
    /// Where a run stands: every host's step, since when, attempts, last error; run conditions.
    Status(runs::StatusArgs),
    /// A run's report from its journal: hosts and their steps, every VM action and its
    /// downtime, failures, restores not done, timing (finished or running runs).
    Report(runs::RunSelector),
    /// Continue a run after a crash or a stop: reconcile with the platform, then go on.
    Resume(runs::ResumeArgs),
    /// Approve a run that waits for approval (policy.approval: manual).
    Approve(runs::RunSelector),
    /// Try the failed step of every failed host of a halted run again.
    Retry(runs::RunSelector),
    /// Give up on a failed host: restore it and go on without it.
    Skip(runs::HostCommandArgs),
    /// Stop a run: bring every host Drover touched back to service, restart every VM it stopped.
    Abort(runs::RunSelector),
    /// Manual mode: the host's upgrade was done by hand; go on with it.
    Continue(runs::HostCommandArgs),
    /// Start no new host until `unpause`.
    Pause(runs::RunSelector),
    /// Undo `pause`.
    Unpause(runs::RunSelector),
    /// The runs in the state file, newest first.
    History(runs::HistoryArgs),
    /// Which hosts have updates (watched packages, versions, the catalog's channel).
    Check(check_view::CheckArgs),
    /// Hosts on old versions and the VMs still running on them.
    Outdated(check_view::OutdatedArgs),
    /// Where a run's wall time went: time per kind of step, and with no call in flight.
    Timeline(timeline_view::TimelineArgs),
    /// Write the platform as the driver sees it now as an inventory (hosts and VMs discovered).
    Discover(discover::DiscoverArgs),
    /// Simulator only: run the installer by hand on a host that waits for its manual upgrade.
    SimUpgrade(runs::HostCommandArgs),
    /// Run the daemon: REST API, dashboard, metrics; drives runs of the configured clusters.
    Serve(serve::ServeArgs),
    /// Print a shell completion script: `drover completions bash > /etc/bash_completion.d/drover`.
    Completions(completions::CompletionsArgs),
    /// Write man pages (drover.1 and one per command) to a directory, or drover.1 to stdout.
    Man(completions::ManArgs),
}

impl Command {
    /// Commands that only read and print (no platform driven, no server): they may end by
    /// SIGPIPE like any Unix filter.
    fn only_reads_and_prints(&self) -> bool {
        matches!(
            self,
            Command::Plan(_)
                | Command::Simulate(_)
                | Command::Bench(_)
                | Command::Generate(_)
                | Command::Status(_)
                | Command::Report(_)
                | Command::History(_)
                | Command::Timeline(_)
                | Command::Outdated(_)
                | Command::Completions(_)
                | Command::Man(_)
        )
    }
}

/// Options shared by every command that reads an inventory.
#[derive(Args)]
struct InventoryArgs {
    /// Inventory file (YAML; JSON accepted).
    #[arg(short = 'i', long = "inventory", env = "DROVER_INVENTORY")]
    inventory: PathBuf,
    /// Override policy.max_unavailable: a number of hosts, a percentage of them ("10%"), or "auto".
    #[arg(long, env = "DROVER_MAX_UNAVAILABLE")]
    max_unavailable: Option<String>,
    /// Let Drover resolve resolvable precheck failures (shut down VMs that cannot move).
    #[arg(long)]
    resolve: bool,
    /// Upgrade only this host (repeatable); the others stay as they are.
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Upgrade this host even though it already runs the target (it has package updates).
    #[arg(long = "force-host", value_name = "HOST")]
    force_hosts: Vec<String>,
}

#[derive(Args)]
struct PlanArgs {
    #[command(flatten)]
    inventory: InventoryArgs,
    /// Output format: table (for people), json or yaml (documents for scripts).
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
    /// Output format: table (for people), json or yaml (documents for scripts).
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
    closed_pipe::exit_quietly_on_broken_stdout();
    if cli.command.only_reads_and_prints() {
        closed_pipe::die_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Plan(args) => plan_view::run(&args),
        Command::Simulate(args) => simulate_view::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Generate(args) => bench::generate(&args),
        Command::Run(args) => runs::run(&args, &cli.state),
        Command::Status(args) => runs::status(&args, &cli.state),
        Command::Report(args) => report_view::run(&args, &cli.state),
        Command::Resume(args) => runs::resume(&args, &cli.state),
        Command::History(args) => runs::history(&args, &cli.state),
        Command::Timeline(args) => timeline_view::run(&args, &cli.state),
        Command::Check(args) => check_view::check(&args),
        Command::Outdated(args) => check_view::outdated(&args),
        Command::Discover(args) => discover::run(&args, &cli.state),
        Command::SimUpgrade(args) => runs::simulated_manual_upgrade(&args, &cli.state),
        Command::Serve(args) => serve::run(&args, &cli.state),
        Command::Completions(args) => completions::completions::<Cli>(&args),
        Command::Man(args) => completions::man::<Cli>(&args),
        Command::Approve(args) => operator(
            OperatorCommand::Approve,
            args.run(),
            args.output,
            &cli.state,
        ),
        Command::Retry(args) => {
            operator(OperatorCommand::Retry, args.run(), args.output, &cli.state)
        }
        Command::Abort(args) => {
            operator(OperatorCommand::Abort, args.run(), args.output, &cli.state)
        }
        Command::Pause(args) => {
            operator(OperatorCommand::Pause, args.run(), args.output, &cli.state)
        }
        Command::Unpause(args) => {
            operator(OperatorCommand::Resume, args.run(), args.output, &cli.state)
        }
        Command::Skip(args) => {
            let command = OperatorCommand::Skip {
                host: args.host.clone(),
            };
            operator(command, args.run(), args.output, &cli.state)
        }
        Command::Continue(args) => {
            let command = OperatorCommand::Continue {
                host: args.host.clone(),
            };
            operator(command, args.run(), args.output, &cli.state)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn operator(
    command: OperatorCommand,
    run: Option<&str>,
    output: OutputFormat,
    state: &runs::StateArgs,
) -> Result<(), Failure> {
    runs::operate(command, run, output, state)
}

/// The whole inventory file, its cluster with the command-line overrides applied (flags win
/// over the file).
fn load_file(args: &InventoryArgs) -> Result<drover_schema::inventory::InventoryFile, Failure> {
    let mut file = drover_schema::inventory::load_inventory_file(&args.inventory)
        .map_err(Failure::bad_input)?;
    let cluster = &mut file.cluster;
    if let Some(value) = &args.max_unavailable {
        cluster.policy.max_unavailable = parse_max_unavailable(value)?;
    }
    if args.resolve {
        cluster.policy.auto_resolve = true;
    }
    select_hosts(cluster, &args.hosts, &args.force_hosts)?;
    catalog_view::resolve_auto_compatibility_level(&mut file)?;
    Ok(file)
}

/// `--host` flags: the run upgrades only these hosts (they win over `policy.only_hosts`);
/// `--force-host` flags add to `policy.force_hosts`.
fn select_hosts(
    cluster: &mut drover_core::Cluster,
    hosts: &[String],
    force_hosts: &[String],
) -> Result<(), Failure> {
    for (flag, name) in hosts
        .iter()
        .map(|h| ("--host", h))
        .chain(force_hosts.iter().map(|h| ("--force-host", h)))
    {
        if cluster.host_named(name).is_none() {
            return Err(Failure::bad_input(format!(
                "{flag} {name}: no such host in cluster {}",
                cluster.name
            )));
        }
    }
    if !hosts.is_empty() {
        cluster.policy.only_hosts = Some(hosts.iter().cloned().collect());
    }
    cluster
        .policy
        .force_hosts
        .extend(force_hosts.iter().cloned());
    Ok(())
}

/// The same forms as the inventory's `policy.max_unavailable`: `3`, `10%` or `auto`.
fn parse_max_unavailable(value: &str) -> Result<drover_core::MaxUnavailable, Failure> {
    if value == "auto" {
        return Ok(drover_core::MaxUnavailable::Auto);
    }
    let parsed = match value.strip_suffix('%') {
        Some(percent) => percent
            .parse::<u32>()
            .ok()
            .filter(|percent| (1..=100).contains(percent))
            .map(drover_core::MaxUnavailable::Percent),
        None => value
            .parse::<u32>()
            .ok()
            .filter(|count| *count >= 1)
            .map(drover_core::MaxUnavailable::Count),
    };
    parsed.ok_or_else(|| {
        Failure::bad_input(format!(
            "--max-unavailable: expected a whole number >= 1, a percentage from 1% to 100%, or \"auto\", got {value:?}"
        ))
    })
}
