//! The `kind: xapi` driver: a XenServer / XCP-ng pool through XAPI's JSON-RPC (`URL/jsonrpc`) or
//! XML-RPC (`URL/`, `xmlrpc`) where a server lacks JSON-RPC. Every method, field and error code
//! it uses is named as the xapi-project/xen-api datamodel names it (`ocaml/idl/datamodel*.ml`,
//! `datamodel_errors.ml`); `client` speaks the wire, `discovery` reads guests from records,
//! `driver` maps Drover's calls onto XAPI's objects, `settings` the pool settings that block a
//! roll (HA, WLB, CD/DVD media).
//!
//! This crate must not know the engine, stores, the registry or the command line.

pub mod client;
pub mod discovery;
pub mod driver;
mod settings;
pub mod xmlrpc;

pub use client::{Transport, XapiClient, XapiConnection};
pub use driver::XapiDriver;

/// What a XAPI call can end in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum XapiError {
    /// The server answered with XAPI's error array (`[CODE, params…]`).
    #[error("XAPI error {code} {params:?}")]
    Api { code: String, params: Vec<String> },
    /// No answer (connection refused, timeout, TLS).
    #[error("XAPI server {url} did not answer: {detail}")]
    Transport { url: String, detail: String },
    /// An answer that is not XAPI's JSON-RPC, or a record without a field the driver needs.
    #[error("unexpected XAPI answer: {0}")]
    Protocol(String),
    /// The configuration cannot work (no password, unreadable CA file).
    #[error("xapi driver configuration: {0}")]
    Config(String),
}

impl XapiError {
    /// The XAPI error code, if the server gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            XapiError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
