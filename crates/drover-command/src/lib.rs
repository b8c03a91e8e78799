//! Drover's command driver: drives any platform through the operator's own tools
//! (`ssh {host.address} dnf -y upgrade`, `pca-admin update compute-node {host}`,
//! `xe-install-update`, `virsh …`), and the pieces other drivers reuse for their host steps.
//!
//! - [`template`]: argv templates with placeholders, checked when a driver is built and rendered
//!   without ever splitting or joining arguments; shell-quoted only where a shell reads them.
//! - [`runner`]: runs one rendered argv without a shell, under a timeout, with bounded capture.
//! - [`output`]: the output contracts of `host_facts`, `discover` and `shutdown_vm`.
//! - [`host_commands`]: the host steps of drivers whose platform API cannot do them
//!   (Ganeti, OpenStack).
//! - [`driver`]: [`CommandDriver`], the [`drover_driver::Driver`] built from them.
//!
//! This crate knows nothing of plans, journals or the clock; it never runs a shell on its own.

pub mod driver;
mod error;
pub mod host_commands;
pub mod output;
pub mod runner;
pub mod template;

pub use driver::{CommandDriver, CommandDriverConfig, HostUpgradePlan};
pub use error::{CommandError, StepContext};
pub use runner::{run_argv, run_step, RunLimits, StepOutput};
pub use template::{ArgvTemplate, Placeholder, PlaceholderValues};
