//! `drover report [RUN]`: the report of any run in the state file — finished, running, or driven
//! by another process — read from its journal (a read-only replay plus the journal's spans):
//! hosts with their steps and times, every VM action with its downtime, failures, restores not
//! done, timing. The same document the end of a run prints and the server's
//! `GET /api/v1/runs/{id}/report` returns. Changes nothing; knows no driver.

use clap::Args;

use crate::exit::Failure;
use crate::output::OutputFormat;
use crate::runs::{engine_failure, open_store, select_run, StateArgs};

#[derive(Args)]
pub struct ReportArgs {
    /// Run id (default: the newest run).
    run: Option<String>,
    /// Output format: table (for people), json or yaml (documents for scripts).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

pub fn run(args: &ReportArgs, state: &StateArgs) -> Result<(), Failure> {
    let store = open_store(&state.state)?;
    let record = select_run(&store, args.run.as_deref(), false)?;
    let document = crate::report::stored_report(&store, &record).map_err(engine_failure)?;
    crate::report::print_report(&document, args.output)
}
