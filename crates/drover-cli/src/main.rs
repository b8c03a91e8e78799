//! `drover`: the command-line front of Drover. Parses arguments and dispatches each command to
//! its module, which loads inventories, calls the core, the simulator or `drover_app`, and
//! renders results; exit codes are decided in this crate and only here (`exit`).
//!
//! Exit codes: 0 success; 1 internal error; 2 bad input (inventory, flags, state file, a refused
//! operator command); 3 no safe plan (a precheck failed or no placement exists); 4 the simulator
//! caught a broken invariant; 5 the run stopped and needs an operator (halted, awaiting approval,
//! manual upgrade, paused); 6 the run was aborted; 7 `drover check` could not ask some host.

mod alloc;
mod bench;
mod check_view;
mod closed_pipe;
mod completions;
mod demo;
mod discover;
mod exit;
mod inventory_args;
mod logs;
mod output;
mod plan_view;
mod progress;
mod report;
mod report_view;
mod reviewed_plan;
mod runs;
mod serve;
mod simulate_view;
mod state_view;
mod timeline_view;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use drover_core::execution::OperatorCommand;

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
    Plan(plan_view::PlanArgs),
    /// Plan, then execute the plan in virtual time on the simulator and report the timeline.
    Simulate(simulate_view::SimulateArgs),
    /// Plan and simulate an embedded sample pool (a master and eight hosts, ~60 VMs).
    Demo(demo::DemoArgs),
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
    /// Manage state stores: `drover state migrate --from drover.db --to postgres://…`.
    State(state_view::StateCommandArgs),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    logs::install();
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
        Command::State(args) => state_view::run(&args),
        Command::Completions(args) => completions::completions::<Cli>(&args),
        Command::Man(args) => completions::man::<Cli>(&args),
        Command::Approve(args) => runs::operate(
            OperatorCommand::Approve,
            args.run(),
            args.output,
            &cli.state,
        ),
        Command::Retry(args) => {
            runs::operate(OperatorCommand::Retry, args.run(), args.output, &cli.state)
        }
        Command::Abort(args) => {
            runs::operate(OperatorCommand::Abort, args.run(), args.output, &cli.state)
        }
        Command::Pause(args) => {
            runs::operate(OperatorCommand::Pause, args.run(), args.output, &cli.state)
        }
        Command::Unpause(args) => {
            runs::operate(OperatorCommand::Resume, args.run(), args.output, &cli.state)
        }
        Command::Skip(args) => {
            let command = OperatorCommand::Skip {
                host: args.host.clone(),
            };
            runs::operate(command, args.run(), args.output, &cli.state)
        }
        Command::Continue(args) => {
            let command = OperatorCommand::Continue {
                host: args.host.clone(),
            };
            runs::operate(command, args.run(), args.output, &cli.state)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
