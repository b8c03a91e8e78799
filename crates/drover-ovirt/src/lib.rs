//! The `kind: ovirt` driver: one cluster of an oVirt / Oracle Linux Virtualization Manager engine
//! through its REST API v4 (`URL/ovirt-engine/api`, `Version: 4`, JSON), logged in through the
//! engine's SSO. Every service, field, status and action it uses is named as the
//! oVirt/ovirt-engine-api-model names it (`src/main/java/types`, `src/main/java/services`), as the
//! official SDK (PyPI `ovirt-engine-sdk-python`) reads them; `client` speaks HTTP and the SSO,
//! `driver` maps Drover's calls onto the engine's hosts, VMs, cluster and actions;
//! `engine_update` asks the engine machine for its own pending update (the API cannot).
//!
//! This crate must not know the engine (Drover's), stores, the registry or the command line.

pub mod affinity;
pub mod client;
pub mod driver;
pub mod engine_update;

pub use client::{OvirtClient, OvirtConnection};
pub use driver::{OvirtDriver, OvirtTimings};
pub use engine_update::{check_engine_update, engine_update_template, EngineUpdate};

/// What an engine request can end in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OvirtError {
    /// The engine answered with an HTTP error, and its fault when it sent one.
    #[error("oVirt engine answered HTTP {status}: {reason} {detail}")]
    Api {
        status: u16,
        reason: String,
        detail: String,
    },
    /// The SSO refused the login (`error_code`, `error`).
    #[error("oVirt SSO refused the login: {code}: {message}")]
    Login { code: String, message: String },
    /// No answer (connection refused, timeout, TLS).
    #[error("oVirt engine {url} did not answer: {detail}")]
    Transport { url: String, detail: String },
    /// An answer that is not the engine's JSON, or a document without a field the driver needs.
    #[error("unexpected oVirt answer: {0}")]
    Protocol(String),
    /// The configuration cannot work (unreadable CA file).
    #[error("ovirt driver configuration: {0}")]
    Config(String),
}
