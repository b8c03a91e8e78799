//! The one boundary between Drover and a platform: the [`Driver`] trait (dyn-compatible, so a
//! registry can hand out `Arc<dyn Driver>`), its call and outcome types, [`DriverError`], and
//! the [`Clock`] drivers and the engine share.
//!
//! A driver crate depends on this crate and on `drover-core`, never on the engine or a store:
//! this crate must not know journals, stores, plans, inventories or which drivers exist.

pub mod calls;
pub mod clock;
pub mod driver;

pub use async_trait::async_trait;
pub use calls::DriverCall;
pub use clock::{wall_now_ms, Clock};
pub use driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved, BASIC_VM_ACTIONS};
