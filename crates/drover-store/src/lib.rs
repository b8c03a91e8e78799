//! Drover's durable store: runs, an append-only journal of opaque JSON entries per run, and
//! per-cluster locks, in one embedded SQLite file.
//!
//! The engine writes every intent before a driver call and every outcome after it, and replays
//! the journal on restart, so this crate exists for durability and ordering: once `append` has
//! returned, the entry survives a SIGKILL of the process and (with `synchronous=FULL` in WAL
//! mode) an OS crash, and sequence numbers are 1-based and gap-free per run.
//!
//! This crate must not know clusters, plans, drivers or the journal's payload format: cluster
//! names, run states, entry kinds and payloads are opaque strings here. Choosing the file's path
//! is the CLI's business.

mod error;
mod journal;
mod locks;
mod preflight;
mod records;
mod runs;
mod schema;
mod store;

pub use error::StoreError;
pub use records::{JournalEntry, LockRecord, NewEntry, NewRun, RunRecord};
pub use schema::SCHEMA_VERSION;
pub use store::{Store, BUSY_TIMEOUT};
