//! The `kind: openstack` driver: an OpenStack cloud's compute hosts through Nova's Compute API
//! (v2.1 with a negotiated microversion), authenticated by Keystone v3 (password or
//! application credential), with Placement for capacity and allocation ratios. Every resource,
//! field, action and status string it uses is OpenStack's own, cited where it is used: Nova's
//! api-ref (`api-ref/source/os-services.inc`, `os-hypervisors.inc`, `os-migrations.inc`,
//! `server-migrations.inc`, `servers-admin-action.inc`, `servers-actions.inc`,
//! `os-server-groups.inc`, `os-aggregates.inc`, `versions.inc`), Keystone's
//! `api-ref/source/v3/authenticate-v3.inc` and Placement's `resource_providers`/`inventories`.
//!
//! `auth` gets and refreshes Keystone tokens and reads the service catalog, `clouds` reads a
//! `clouds.yaml` entry, `client` speaks HTTP (token, microversion, counting), `nova` turns
//! Nova's answers into Drover's model, `host_commands` runs the operator's commands for what the
//! API cannot do (version, boot id, upgrade, reboot), `driver` maps Drover's calls onto them.
//!
//! This crate must not know the engine, stores, the registry or the command line.

pub mod auth;
pub mod client;
pub mod clouds;
pub mod driver;
pub mod host_commands;
pub mod nova;

pub use auth::{Credentials, KeystoneAuth};
pub use client::{Connection, OpenstackClient};
pub use driver::{OpenstackDriver, OpenstackTimings};

/// What a Keystone, Nova or Placement call, a migration or a host command can end in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenstackError {
    /// An API answered with an HTTP error; `message` is the `{"<kind>": {"message"}}` or
    /// `{"error": {"message"}}` text of its body.
    #[error("{service} {method} {path}: HTTP {status}: {message}")]
    Http {
        service: &'static str,
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// No answer (connection refused, timeout, TLS).
    #[error("{service} at {url} did not answer: {detail}")]
    Transport {
        service: &'static str,
        url: String,
        detail: String,
    },
    /// An answer that is not what the API reference says.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The configuration cannot work (no password, unreadable CA file, no such cloud, a bad
    /// command, a Nova too old for the calls Drover needs).
    #[error("openstack driver configuration: {0}")]
    Config(String),
    /// An operator command (host facts, health check, upgrade, reboot) failed.
    #[error("{0}")]
    Command(String),
}
