//! The `kind: ganeti` driver: a Ganeti cluster through its RAPI, version 2 (`/2/…` over HTTPS with
//! basic authentication). Every resource, field, body parameter and status string it uses is
//! Ganeti's own, cited where it is used: `doc/rapi.rst` and `lib/rapi/rlib2.py` (resources and
//! the fields of bulk answers, `N_FIELDS`, `I_FIELDS`, `J_FIELDS`), `src/Ganeti/Types.hs` and
//! `src/Ganeti/Constants.hs` (job statuses, instance statuses, disk templates, error
//! classifications), `lib/cmdlib/node.py` (node roles). `client` speaks HTTP, `jobs` follows
//! jobs, `cluster` reads nodes and instances into Drover's model, `host_commands` runs the
//! operator's commands for what RAPI cannot do, `driver` maps Drover's calls onto all of them.
//!
//! This crate must not know the engine, stores, the registry or the command line.

pub mod client;
pub mod cluster;
pub mod driver;
pub mod host_commands;
pub mod jobs;

pub use client::{RapiClient, RapiConnection};
pub use driver::{GanetiDriver, GanetiTimings};

/// What a RAPI call, a job or a host command can end in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GanetiError {
    /// RAPI answered with an HTTP error (`{"code", "message", "explain"}`).
    #[error("RAPI {method} {path}: HTTP {status}: {message}")]
    Http {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// No answer (connection refused, timeout, TLS).
    #[error("RAPI at {url} did not answer: {detail}")]
    Transport { url: String, detail: String },
    /// An answer that is not what the RAPI reference says.
    #[error("unexpected RAPI answer: {0}")]
    Protocol(String),
    /// A job ended in `error` or `canceled`; `error_type` and `classification` are Ganeti's
    /// (`OpPrereqError`, `wrong_state`), kept so that the journal shows them.
    #[error("Ganeti job {job_id} {status}: {error_type}: {message}{}", classification.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Job {
        job_id: u64,
        status: String,
        error_type: String,
        message: String,
        classification: Option<String>,
    },
    /// A job still not finished at its deadline; cancellation was asked for.
    #[error("Ganeti job {job_id} still {status} after {waited_secs} s: cancel requested ({cancel_answer})")]
    JobTimedOut {
        job_id: u64,
        status: String,
        waited_secs: u64,
        cancel_answer: String,
    },
    /// The configuration cannot work (no password, unreadable CA file, a bad command).
    #[error("ganeti driver configuration: {0}")]
    Config(String),
    /// An operator command (host facts, health check, upgrade, reboot) failed.
    #[error("{0}")]
    Command(String),
}
