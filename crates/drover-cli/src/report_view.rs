//! `drover report [RUN]`: the report of any run in the state file — finished, running, or driven
//! by another process — read from its journal (a read-only replay plus the journal's spans):
//! hosts with their steps and times, every VM action with its downtime, failures, restores not
//! done, timing. The same document the end of a run prints and the server's
//! `GET /api/v1/runs/{id}/report` returns. Changes nothing; knows no driver.

use crate::exit::Failure;
use crate::runs::{block_on, engine_failure, open_store, select_run, RunSelector, StateArgs};

pub fn run(args: &RunSelector, state: &StateArgs) -> Result<(), Failure> {
    let stored = block_on(async {
        let store = open_store(&state.state)?;
        let record = select_run(store.as_ref(), args.run(), false).await?;
        drover_engine::StoredRun::load(store.as_ref(), &record.id)
            .await
            .map_err(engine_failure)
    })?;
    let document = drover_app::report::stored_report(&stored).map_err(engine_failure)?;
    crate::report::print_report(&document, args.output)
}
