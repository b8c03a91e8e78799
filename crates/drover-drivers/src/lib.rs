//! The driver registry: the one place that knows which drivers this build has. Each driver
//! registers its kind (the `kind:` of its `driver:` section, one variant of
//! [`DriverSection`]), how a new run resolves that section (relative paths, the files it keeps)
//! and its constructor, which hands out an `Arc<dyn Driver>`. The CLI, the server and `discover`
//! open drivers only through this registry; none of them names a driver.
//!
//! Adding a driver: a crate implementing `drover_driver::Driver`, its section in
//! `drover-schema`, a registration module here and one line in [`REGISTERED`] (see
//! docs/adding-a-driver.md).
//!
//! This crate must not know stores, journals, plans, HTTP or the command line.

mod cloudstack;
mod command;
mod error;
mod ganeti;
#[cfg(feature = "kubevirt")]
mod kubevirt;
#[cfg(feature = "libvirt")]
mod libvirt;
mod openstack;
mod ovirt;
mod run_driver;
mod simulator;
mod xapi;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drover_core::{ActionKind, Cluster};
use drover_driver::{Clock, Driver, BASIC_VM_ACTIONS};
use drover_schema::inventory::DriverSection;

pub use drover_ovirt::EngineUpdate;
pub use error::RegistryError;
pub use run_driver::{RunDriver, UpgradeRecipe};
pub use simulator::sim_driver_config;

/// Every driver this build has, in the order `drover --help` texts list them.
const REGISTERED: &[&Registration] = &[
    &simulator::REGISTRATION,
    &command::REGISTRATION,
    #[cfg(feature = "libvirt")]
    &libvirt::REGISTRATION,
    &xapi::REGISTRATION,
    &ovirt::REGISTRATION,
    &ganeti::REGISTRATION,
    &openstack::REGISTRATION,
    &cloudstack::REGISTRATION,
    #[cfg(feature = "kubevirt")]
    &kubevirt::REGISTRATION,
];

/// A driver's constructor: what a run recorded, and what opening needs besides.
pub type OpenDriver = fn(&RunDriver, &OpenContext) -> Result<Arc<dyn Driver>, RegistryError>;

/// One driver's entry in the registry.
pub struct Registration {
    /// The `kind:` of its `driver:` section.
    pub kind: &'static str,
    /// Resolves the inventory's section for a new run: relative paths made absolute, default
    /// places for the files the driver keeps. Returns the section the run records.
    pub prepare: fn(&DriverSection, &PrepareContext) -> Result<Prepared, RegistryError>,
    /// Opens the driver a run recorded.
    pub open: OpenDriver,
    /// The VM actions the kind's driver carries out: the driver crate's own list, which its
    /// `Driver::supports` reads too ([`BASIC_VM_ACTIONS`] for most).
    pub vm_actions: &'static [ActionKind],
}

/// What a new run is started with, for [`Registration::prepare`].
pub struct PrepareContext<'a> {
    /// The inventory file (relative paths in its `driver:` section are relative to its folder).
    pub inventory_path: &'a Path,
    /// Files a driver keeps and its section places nowhere go under this prefix
    /// (`PREFIX.CLUSTER.…`): the CLI and the server pass their state file.
    pub files_prefix: &'a Path,
    pub cluster: &'a str,
    /// Wall-clock start of the run.
    pub now_ms: u64,
    /// The simulated platform outlives the run (a server keeps one world per cluster, so a
    /// second run finds the hosts the first upgraded); else each run starts from the inventory.
    pub keep_platform_per_cluster: bool,
}

/// A resolved section and the run's time scale (0: virtual time; only the simulator has
/// another time than the wall clock).
pub struct Prepared {
    pub section: DriverSection,
    pub time_scale: f64,
}

/// What opening a driver needs besides its recorded configuration.
pub struct OpenContext<'a> {
    /// The cluster as known (names, roles, what the platform does not report itself).
    pub cluster: &'a Cluster,
    /// The run's clock (the simulator's platform runs on it).
    pub clock: Clock,
    /// Discovery only (`drover discover`, `drover run --plan`'s look before the start): the
    /// simulator then keeps no world file.
    pub read_only: bool,
}

/// The registration of a section's kind.
pub fn registration(section: &DriverSection) -> Result<&'static Registration, RegistryError> {
    registration_of_kind(section.kind())
}

/// The registration of a kind by name.
pub fn registration_of_kind(kind: &str) -> Result<&'static Registration, RegistryError> {
    REGISTERED
        .iter()
        .copied()
        .find(|registration| registration.kind == kind)
        .ok_or_else(|| RegistryError::NotInThisBuild {
            kind: kind.to_string(),
            hint: build_hint(kind),
        })
}

/// Whether a driver kind carries out a VM action, from its registration (a kind this build
/// lacks: the basic actions). Answered before any driver is opened, so a plan is checked when it
/// is made.
pub fn supports(kind: &str, action: ActionKind) -> bool {
    registration_of_kind(kind)
        .map_or(BASIC_VM_ACTIONS, |registration| registration.vm_actions)
        .contains(&action)
}

/// The kinds this build has.
pub fn kinds() -> Vec<&'static str> {
    REGISTERED
        .iter()
        .map(|registration| registration.kind)
        .collect()
}

fn build_hint(kind: &str) -> String {
    match kind {
        "libvirt" => {
            "it needs a drover built with `--features libvirt` (and libvirt-dev installed)"
                .to_string()
        }
        "kubevirt" => "it needs a drover built with `--features kubevirt`".to_string(),
        _ => format!("this drover has the drivers {}", kinds().join(", ")),
    }
}

/// The driver a new run will use: the inventory's section resolved for this run, on a
/// timeline starting now.
pub fn prepare(
    section: &DriverSection,
    context: &PrepareContext,
    upgrade_recipes: BTreeMap<String, UpgradeRecipe>,
) -> Result<RunDriver, RegistryError> {
    let prepared = (registration(section)?.prepare)(section, context)?;
    Ok(RunDriver {
        kind: section.kind().to_string(),
        section: prepared.section,
        time_scale: prepared.time_scale,
        wall_anchor_ms: context.now_ms,
        platform_anchor_ms: context.now_ms,
        upgrade_recipes,
    })
}

/// Each host's pending updates as the platform itself reports them, for `drover check`: host
/// name → whether updates are pending (`Ok(None)`: the platform does not know; `Err`: asking
/// about this host failed, never to be read as "no updates"). `None` for a driver whose
/// platform reports no updates (its hosts are asked by `upgrade.check_command`).
pub async fn platform_updates(
    section: &DriverSection,
    cluster: &Cluster,
) -> Option<Result<HostUpdates, RegistryError>> {
    match section {
        DriverSection::Xapi(xapi) => Some(xapi::pending_updates(xapi, cluster).await),
        DriverSection::Ovirt(ovirt) => Some(ovirt::pending_updates(ovirt, cluster).await),
        _ => None,
    }
}

/// The platform's manager's own pending update, for the drivers that can ask it (oVirt's engine,
/// through the section's `engine_update_check`); `None` for the others.
pub async fn manager_update(
    section: &DriverSection,
    cluster: &Cluster,
    timeout: std::time::Duration,
) -> Option<drover_ovirt::EngineUpdate> {
    match section {
        DriverSection::Ovirt(ovirt) => Some(ovirt::engine_update(ovirt, cluster, timeout).await),
        _ => None,
    }
}

/// Host name → its pending updates (`Ok(None)`: unknown) or why the platform could not say.
pub type HostUpdates = BTreeMap<String, Result<Option<bool>, String>>;

/// Opens the driver a run recorded.
pub fn open(
    run_driver: &RunDriver,
    context: &OpenContext,
) -> Result<Arc<dyn Driver>, RegistryError> {
    (registration(&run_driver.section)?.open)(run_driver, context)
}

/// `path` relative to the inventory's folder, made absolute.
fn beside_inventory(inventory_path: &Path, path: &Path) -> PathBuf {
    absolute(&inventory_path.parent().unwrap_or(Path::new(".")).join(path))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `PREFIX.SUFFIX`: a file kept beside the caller's files (`drover.db.pool-a.sim.json`).
fn beside_prefix(prefix: &Path, suffix: &str) -> PathBuf {
    let name = prefix.file_name().map_or("drover.db".into(), |name| {
        name.to_string_lossy().into_owned()
    });
    absolute(&prefix.with_file_name(format!("{name}.{suffix}")))
}

/// What each host's installer is told (catalog paths, forced hosts), for the drivers that run
/// installers through `drover-command`'s templates.
fn upgrade_plans(run_driver: &RunDriver) -> BTreeMap<String, drover_command::HostUpgradePlan> {
    run_driver
        .upgrade_recipes
        .iter()
        .map(|(host, recipe)| (host.clone(), recipe.to_plan()))
        .collect()
}
