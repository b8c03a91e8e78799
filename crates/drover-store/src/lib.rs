//! Drover's durable store: runs, an append-only journal of opaque JSON entries per run, and
//! per-cluster locks whose leases carry fencing tokens, in one embedded SQLite file.
//!
//! The engine writes every intent before a driver call and every outcome after it, and replays
//! the journal on restart, so this crate exists for durability and ordering: once `append` has
//! returned, the entry survives a SIGKILL of the process and (with `synchronous=FULL` in WAL
//! mode) an OS crash, and sequence numbers are 1-based and gap-free per run.
//!
//! Two ways in: the synchronous `Store` (one SQLite connection), and the async `RunStore` trait,
//! which every Drover store implements (here `SqliteStore`, over `Store`). The trait adds leases:
//! a run's holder writes under a lease with a fencing token, and the store refuses writes from a
//! superseded token (`StoreError::Fenced`), so a paused former holder cannot write after another
//! instance took over. Lease times are read by the store's own `LeaseClock`; on SQLite that is
//! the clock of the one machine whose processes share the file.
//!
//! This crate must not know clusters, plans, drivers or the journal's payload format: cluster
//! names, holders, run states, entry kinds and payloads are opaque strings here. Choosing the
//! file's path, naming holders and judging whether a holder is alive are the callers' business.

mod clock;
mod error;
mod journal;
mod leases;
mod lock_rows;
mod locks;
mod preflight;
mod records;
mod run_store;
mod runs;
mod schema;
mod sqlite_store;
mod store;

pub use clock::{LeaseClock, ManualClock, SystemClock};
pub use error::StoreError;
pub use records::{ClusterLock, JournalEntry, Lease, LockRecord, NewEntry, NewRun, RunRecord};
pub use run_store::RunStore;
pub use schema::SCHEMA_VERSION;
pub use sqlite_store::SqliteStore;
pub use store::{Store, BUSY_TIMEOUT};
