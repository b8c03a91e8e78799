//! Drover's edge serialization: inventory files (cluster, policy and driver settings) in, plan
//! documents out.
//!
//! The core (`drover-core`) has no serde on purpose; this crate owns every file format and
//! converts between text and core types. It refuses bad input with one-line messages naming the
//! file, line, column and field path. It knows nothing of planning or platforms, performs no IO
//! beyond reading the one inventory file it is asked to load, and does not decide exit codes.

pub mod document;
pub mod inventory;

pub use document::PlanDocument;
pub use inventory::{
    inventory_to_yaml, load_inventory, load_inventory_file, parse_inventory, parse_inventory_file,
    DriverSection, InventoryDocument, InventoryError, InventoryFile,
};
