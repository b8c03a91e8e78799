//! The `kind: cloudstack` driver: the hypervisor hosts (type Routing) of an Apache CloudStack
//! management server, of one zone and cluster or all of them, through the CloudStack API
//! (`/client/api`, signed requests, `response=json`, asynchronous jobs followed with
//! `queryAsyncJobResult`). Every command, parameter, response key, state and error code it uses
//! is named as apache/cloudstack names it (`api/src/main/java/org/apache/cloudstack/api/…`,
//! `ApiErrorCode.java`, `server/src/main/java/com/cloud/api/ApiServer.java`), as the PyPI `cs`
//! client (exoscale/cs) sends and reads them; `client` signs and sends, `driver` maps Drover's
//! calls onto hosts, VMs, system VMs, routers, volumes, affinity groups and jobs.
//!
//! This crate must not know the engine (Drover's), stores, the registry or the command line.

pub mod client;
pub mod driver;
pub mod marks;

pub use client::{CloudstackClient, CloudstackConnection};
pub use driver::{CloudstackDriver, CloudstackOptions};

/// What a CloudStack request can end in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudstackError {
    /// The API answered with an error response (`errorcode`, `cserrorcode`, `errortext`).
    #[error("CloudStack {command} answered errorcode {error_code} (cserrorcode {cs_error_code}): {text}")]
    Api {
        command: String,
        error_code: u16,
        cs_error_code: i64,
        text: String,
    },
    /// An asynchronous job ended in failure (`jobstatus` 2, `jobresultcode`, its `jobresult`).
    #[error("CloudStack job {job_id} of {command} failed: jobresultcode {error_code} (cserrorcode {cs_error_code}): {text}")]
    JobFailed {
        command: String,
        job_id: String,
        error_code: u16,
        cs_error_code: i64,
        text: String,
    },
    /// A job still pending at the driver's bound.
    #[error("CloudStack job {job_id} of {command} still pending after {waited_secs} s")]
    JobTimeout {
        command: String,
        job_id: String,
        waited_secs: u64,
    },
    /// No answer (connection refused, timeout, TLS).
    #[error("CloudStack endpoint {endpoint} did not answer: {detail}")]
    Transport { endpoint: String, detail: String },
    /// An answer that is not the API's JSON, or without a field the driver needs.
    #[error("unexpected CloudStack answer: {0}")]
    Protocol(String),
}

impl CloudstackError {
    /// The CloudStack error code (`errorcode` / `jobresultcode`), when the API gave one.
    pub fn error_code(&self) -> Option<u16> {
        match self {
            CloudstackError::Api { error_code, .. }
            | CloudstackError::JobFailed { error_code, .. } => Some(*error_code),
            _ => None,
        }
    }
}
