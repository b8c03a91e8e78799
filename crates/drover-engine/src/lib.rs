//! Drover's engine: the driver trait, the clock, the journal records and the thin async loop
//! between the pure core and a driver.

pub mod calls;
pub mod clock;
pub mod driver;
pub mod engine;
mod error;
pub mod merge;
pub mod records;
pub mod timeline;
pub mod windows;

pub use clock::Clock;
pub use driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
pub use engine::{DriveEnd, Engine, EngineEvent, NewRunSpec};
pub use error::EngineError;
