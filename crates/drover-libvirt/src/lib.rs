//! Drover's libvirt driver: hosts reached through libvirt (`qemu+tcp://…/system`,
//! `qemu+ssh://…`), VMs as libvirt domains.
//!
//! - [`config`]: [`LibvirtDriverConfig`], built from an inventory's `kind: libvirt` section.
//! - [`domain_xml`]: what Drover reads from a domain's XML (disks, Drover's `<metadata>`).
//! - [`storage`]: the rule that says whether a domain's disks are on local storage.
//! - `connection`: one libvirt connection per host, reopened when it dies; every libvirt call
//!   runs on a blocking thread under a timeout.
//! - `discovery`, `migration`, `power`, `host_steps`: the driver's calls; `host_commands`: the
//!   operator's commands the host steps run.
//! - [`driver`]: [`LibvirtDriver`], the [`drover_driver::Driver`] built from them.
//!
//! libvirt has no cordon and no maintenance mode: the driver keeps Drover's own marks (in
//! memory and in the marks file its registration places, so later processes see them) and
//! reports them. Host steps libvirt cannot do (upgrade, reboot, reading a boot id) are operator
//! commands run by `drover-command`.
//!
//! This crate knows nothing of plans, journals or the engine's clock.

pub mod config;
mod connection;
mod discovery;
pub mod domain_xml;
pub mod driver;
mod error;
mod host_commands;
mod host_steps;
mod marks;
mod migration;
mod power;
pub mod storage;

pub use config::LibvirtDriverConfig;
pub use domain_xml::{DomainXml, DroverVmMetadata, DROVER_VM_METADATA_NAMESPACE};
pub use driver::LibvirtDriver;
pub use error::LibvirtError;
pub use host_steps::BOOT_ID_UNAVAILABLE;
pub use storage::{DiskSource, DomainDisk, SharedStorageRule};
