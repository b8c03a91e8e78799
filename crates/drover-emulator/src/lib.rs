//! Platform emulators: the simulator's world (`drover_sim::driver::SimDriver`, with the
//! inventory's faults) behind a real platform's wire protocol on loopback, so that a driver is
//! tested against the protocol it will meet, and the emulator itself against the platform's
//! official client. XAPI (XenServer / XCP-ng) was the first front-end; oVirt / OLVM (the
//! engine's SSO and REST API v4) the second; CloudStack (signed API requests at `/client/api`,
//! asynchronous jobs) and KubeVirt / OpenShift Virtualization (the Kubernetes API subset with
//! KubeVirt's and the HyperConverged operator's resources) came next.
//!
//! Not part of the `drover` binary. This crate must not know the engine, stores or the CLI.

pub mod cloudstack;
pub mod kubevirt;
pub mod ovirt;
pub mod world;
pub mod xapi;

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can stop an emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the inventory is not valid: {0}")]
    Inventory(String),
    #[error("the simulated world cannot be opened: {0}")]
    World(String),
    #[error("no password: set {0} or pass --password-file")]
    NoPassword(String),
    #[error("no API secret key: set {0} or pass --secret-key-file")]
    NoSecretKey(String),
    #[error("no bearer token: set {0} or pass --token-file")]
    NoToken(String),
    #[error("{0} is not a loopback address: the emulator listens on loopback only")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {address}: {message}")]
    Listen {
        address: SocketAddr,
        message: String,
    },
    #[error("serving stopped: {0}")]
    Serve(String),
}
