//! The operations Drover's two front ends share: the `drover` CLI and `drover serve` both open
//! drivers, plan with the release catalog, check hosts for updates, build run reports and
//! allocate run ids through this crate, so that a plan, a check or a report is the same document
//! whichever front end made it.
//!
//! This crate must not know clap, HTTP, terminals or exit codes: it returns documents and
//! `AppError`s, and each front end renders and maps them.

pub mod catalog;
pub mod check;
pub mod error;
pub mod launch;
pub mod plan;
pub mod report;
pub mod run_id;
pub mod runs;
pub mod state_migration;
pub mod stores;
pub mod time_text;

pub use error::AppError;
