//! Drover's engine: the journal records and the thin async loop between the pure core and a
//! driver (the driver trait and the clock are `drover-driver`'s).

pub mod engine;
mod error;
pub mod merge;
pub mod records;
pub mod stored_run;
pub mod timeline;
pub mod windows;

// The driver boundary lives in `drover-driver` (drivers depend on it, not on the engine); it is
// re-exported here for the engine's callers.
pub use drover_driver::{
    async_trait, clock, Clock, Discovered, Driver, DriverError, HostFacts, ShutdownObserved,
};
pub use engine::{DriveEnd, Engine, EngineEvent, NewRunSpec};
pub use error::EngineError;
pub use stored_run::{replay, Replayed, StoredRun};
