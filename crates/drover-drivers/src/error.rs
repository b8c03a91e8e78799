//! `RegistryError`, the one error type of the registry. Messages name the driver kind and what
//! to do; this module must not know any driver's configuration.

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The inventory names a driver this build does not have.
    #[error("driver kind {kind} is not in this drover: {hint}")]
    NotInThisBuild { kind: String, hint: String },
    /// The driver refused its configuration (bad input: the inventory's fault).
    #[error("{kind} driver: {detail}")]
    BadConfig { kind: &'static str, detail: String },
    /// The driver could not be opened for another reason.
    #[error("{kind} driver: {detail}")]
    Unavailable { kind: &'static str, detail: String },
    /// A run's recorded driver options do not read back.
    #[error("the run's driver options do not parse: {0}")]
    Recorded(String),
}
