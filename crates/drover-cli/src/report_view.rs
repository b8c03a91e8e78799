//! `drover report [RUN]`: the report of any run in the state file — finished, running, or driven
//! by another process — read from its journal (a read-only replay plus the journal's spans):
//! hosts with their steps and times, every VM action with its downtime, failures, restores not
//! done, timing. The same document the end of a run prints and the server's
//! `GET /api/v1/runs/{id}/report` returns. Changes nothing; knows no driver.

use crate::exit::Failure;
use crate::runs::{engine_failure, open_store, select_run, RunSelector, StateArgs};

pub fn run(args: &RunSelector, state: &StateArgs) -> Result<(), Failure> {
    let store = open_store(&state.state)?;
    let record = select_run(&store, args.run(), false)?;
    let document = drover_app::report::stored_report(&store, &record).map_err(engine_failure)?;
    crate::report::print_report(&document, args.output)
}
