//! The engine's one error type. A failed driver step is not an error here: it is an outcome in
//! the journal. These are the reasons the engine itself cannot go on.

use drover_core::execution::OperatorError;
use drover_store::StoreError;

use crate::records::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("journal: {0}")]
    Journal(String),
    #[error("refused: {0}")]
    Operator(#[from] OperatorError),
    #[error("no run {0:?} in the state file")]
    UnknownRun(String),
    #[error("run {run_id} is being driven by another drover process ({holder}); use operator commands (retry, skip, abort, approve, continue) to steer it")]
    RunBusy { run_id: String, holder: String },
    #[error("cluster {cluster} is locked by unfinished run {run_id} (holder {holder}); `drover resume {run_id}` or `drover abort {run_id}` it first")]
    ClusterLocked {
        cluster: String,
        run_id: String,
        holder: String,
    },
    #[error("run {0} never started (its process stopped before the run's first journal entry); it was marked never-started and its cluster lock released: start a new run")]
    NeverStarted(String),
    #[error("driver: {0}")]
    Driver(String),
    #[error("another drover process took this run over (its lease was superseded), so this one stopped driving it: {0}")]
    Fenced(String),
    #[error("the run stalled with nothing in flight and nothing to wait for (a bug; please report it): {0}")]
    Stalled(String),
}

impl From<RecordError> for EngineError {
    fn from(error: RecordError) -> Self {
        EngineError::Journal(error.to_string())
    }
}
