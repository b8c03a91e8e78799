//! Drover's engine: the driver trait, the clock, and the thin async loop between the pure core
//! and a driver.

pub mod clock;
pub mod driver;

pub use clock::Clock;
pub use driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
