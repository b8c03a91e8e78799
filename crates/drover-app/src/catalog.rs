//! What the release catalog (`upgrade.catalog`) says about a plan: each upgraded host's path to
//! the target (hops installed in one maintenance window, reboots shared where the catalog allows),
//! the hotfixes to apply after it, the control-plane gate, and the cluster compatibility level
//! every host supports afterwards. Failures become prechecks, so an impossible target makes the
//! plan infeasible (no safe plan: `drover plan`, `drover run` and the API refuse it) with the
//! missing edge named.
//!
//! Knows the catalog crate and the plan document; plans nothing itself (waves are the core's)
//! and prints nothing (the CLI's plan view shows the paths).

use std::collections::BTreeMap;

use drover_catalog::{Catalog, UpgradePath};
use drover_core::{CheckStatus, Cluster, HostId, HostRole, Precheck, Version};
use drover_schema::document::{PlanDocument, PrecheckEntry, UpgradePathEntry};
use drover_schema::inventory::{InventoryFile, UpgradeSection};

use crate::error::AppError;

pub use drover_drivers::UpgradeRecipe;

/// The catalog's contribution to a plan.
pub struct CatalogPlan {
    pub paths: Vec<UpgradePathEntry>,
    pub prechecks: Vec<Precheck>,
    pub compatibility_level_after: Option<String>,
}

impl CatalogPlan {
    /// Adds the paths and prechecks to a plan document; a failed precheck makes it infeasible.
    pub fn add_to(&self, document: &mut PlanDocument) {
        if self.prechecks.iter().any(|c| c.status == CheckStatus::Fail) {
            document.feasible = false;
            document.waves.clear();
        }
        document
            .prechecks
            .extend(self.prechecks.iter().map(PrecheckEntry::new));
        document.upgrade_paths = self.paths.clone();
        document.compatibility_level_after = self.compatibility_level_after.clone();
    }
}

/// The recipe of every host the plan document gives a path, and of every forced host.
pub fn recipes_of(document: &PlanDocument, cluster: &Cluster) -> BTreeMap<String, UpgradeRecipe> {
    let mut recipes: BTreeMap<String, UpgradeRecipe> = document
        .upgrade_paths
        .iter()
        .map(|entry| {
            let recipe = UpgradeRecipe {
                hops: entry.hops.clone(),
                hotfixes: entry.hotfixes.clone(),
                reboots: entry.reboots,
                even_at_target: false,
            };
            (entry.host.clone(), recipe)
        })
        .collect();
    for host in &cluster.policy.force_hosts {
        let recipe = recipes
            .entry(host.clone())
            .or_insert_with(|| UpgradeRecipe {
                reboots: 1,
                ..UpgradeRecipe::default()
            });
        recipe.even_at_target = true;
    }
    recipes
}

/// `policy.raise_compatibility_level_to: auto`: the highest level every host supports once the
/// upgrade is done, by the release catalog (which the inventory must name).
pub fn resolve_auto_compatibility_level(file: &mut InventoryFile) -> Result<(), AppError> {
    if file.cluster.policy.raise_compatibility_level_to.as_deref() != Some("auto") {
        return Ok(());
    }
    let catalog = load_catalog(&file.upgrade)?.ok_or_else(|| {
        AppError::bad_input(
            "policy.raise_compatibility_level_to: auto needs a release catalog (upgrade.catalog)",
        )
    })?;
    let level = level_after(&catalog, &file.cluster).ok_or_else(|| {
        AppError::bad_input(format!(
            "policy.raise_compatibility_level_to: auto: the catalog gives no compatibility level that every host supports at {}",
            file.cluster.target_version
        ))
    })?;
    file.cluster.policy.raise_compatibility_level_to = Some(level);
    Ok(())
}

/// Reads the catalog named by the inventory; `None` when it names none.
pub fn load_catalog(upgrade: &UpgradeSection) -> Result<Option<Catalog>, AppError> {
    let Some(path) = &upgrade.catalog else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|error| {
        AppError::bad_input(format!("{path}: cannot read the release catalog: {error}"))
    })?;
    drover_catalog::parse_catalog(&text, path)
        .map(Some)
        .map_err(AppError::bad_input)
}

/// The catalog's view of the plan for `cluster` (the inventory's cluster with any command-line
/// overrides), or `None` without a catalog.
pub fn plan_upgrades(
    file: &InventoryFile,
    cluster: &Cluster,
) -> Result<Option<CatalogPlan>, AppError> {
    let Some(catalog) = load_catalog(&file.upgrade)? else {
        return Ok(None);
    };
    let channel = file.upgrade.channel.as_deref();
    if let Some(name) = channel.filter(|name| !catalog.has_channel(name)) {
        return Err(AppError::bad_input(format!(
            "upgrade.channel: the catalog has no channel {name:?} (it has {})",
            catalog.channels().join(", ")
        )));
    }
    let control_plane = control_plane_version(file, cluster)?;
    let mut paths = Vec::new();
    let mut path_failures = Vec::new();
    let mut gate_failures = Vec::new();
    let mut hotfix_failures = Vec::new();
    for id in cluster.host_ids().filter(|id| cluster.needs_upgrade(*id)) {
        let host = cluster.host(id);
        let path = match drover_catalog::solve_path(
            &catalog,
            &host.version,
            &cluster.target_version,
            channel,
        ) {
            Ok(path) => path,
            Err(error) => {
                path_failures.push(format!("{}: {error}", host.name));
                continue;
            }
        };
        if let Err(error) =
            drover_catalog::control_plane_gate(&catalog, &path, control_plane.as_ref())
        {
            gate_failures.push(format!("{}: {error}", host.name));
        }
        let installed = installed_hotfixes(file, &host.name);
        match drover_catalog::select_hotfixes(&catalog, &cluster.target_version, &installed) {
            Ok(hotfixes) => paths.push(path_entry(cluster, id, &path, hotfixes)),
            Err(error) => hotfix_failures.push(format!("{}: {error}", host.name)),
        }
    }
    let prechecks = vec![
        precheck(
            "upgrade-path",
            &path_failures,
            "every host has an allowed path to the target",
        ),
        precheck(
            "control-plane",
            &gate_failures,
            &control_plane_pass_message(control_plane.as_ref()),
        ),
        precheck(
            "hotfixes",
            &hotfix_failures,
            "the hotfixes of the target are consistent",
        ),
    ];
    Ok(Some(CatalogPlan {
        paths,
        prechecks,
        compatibility_level_after: level_after(&catalog, cluster),
    }))
}

fn installed_hotfixes(file: &InventoryFile, host: &str) -> Vec<String> {
    file.upgrade
        .installed_hotfixes
        .get(host)
        .cloned()
        .unwrap_or_default()
}

fn path_entry(
    cluster: &Cluster,
    id: HostId,
    path: &UpgradePath,
    hotfixes: Vec<drover_catalog::HotfixSelection>,
) -> UpgradePathEntry {
    let host = cluster.host(id);
    let mut hops: Vec<String> = path
        .hops()
        .iter()
        .map(|hop| hop.release_version.to_string())
        .collect();
    // A forced host at the target has no hop; its installer still gets the target.
    if hops.is_empty() {
        hops.push(cluster.target_version.to_string());
    }
    // Hotfixes go on after the last hop, before its reboot; one that needs a reboot adds one
    // only when the path does not end with a reboot anyway.
    let ends_with_reboot = path.hops().last().is_some_and(|hop| hop.reboot_after_hop);
    let hotfix_reboot = hotfixes.iter().any(|h| h.reboot_required) && !ends_with_reboot;
    let reboots = path.reboots_needed() as u32 + u32::from(hotfix_reboot);
    UpgradePathEntry {
        host: host.name.clone(),
        from: host.version.to_string(),
        hops,
        reboots,
        hotfixes: hotfixes.into_iter().map(|h| h.id).collect(),
    }
}

/// The control plane's version: the inventory's `upgrade.control_plane_version`, else the
/// management hosts' (Drover upgrades them first, so they count at the version they will run).
fn control_plane_version(
    file: &InventoryFile,
    cluster: &Cluster,
) -> Result<Option<Version>, AppError> {
    if let Some(text) = &file.upgrade.control_plane_version {
        return text.parse().map(Some).map_err(AppError::bad_input);
    }
    Ok(cluster
        .host_ids()
        .filter(|id| cluster.host(*id).role != HostRole::Compute)
        .map(|id| version_after(cluster, id))
        .min())
}

fn control_plane_pass_message(version: Option<&Version>) -> String {
    match version {
        Some(version) => format!("the control plane ({version}) is recent enough for every path"),
        None => "no release on the paths requires a control plane version".into(),
    }
}

/// Versions every host runs once the plan is done, and the level they all support.
fn level_after(catalog: &Catalog, cluster: &Cluster) -> Option<String> {
    let versions: Vec<Version> = cluster
        .host_ids()
        .map(|id| version_after(cluster, id))
        .collect();
    drover_catalog::compatibility_level_after_upgrade(catalog, &versions)
}

/// The version a host runs once the plan is done: the target if the plan upgrades it.
fn version_after(cluster: &Cluster, id: HostId) -> Version {
    match cluster.needs_upgrade(id) {
        true => cluster.target_version.clone(),
        false => cluster.host(id).version.clone(),
    }
}

fn precheck(id: &'static str, failures: &[String], pass_message: &str) -> Precheck {
    let (status, message) = match failures {
        [] => (CheckStatus::Pass, pass_message.to_string()),
        _ => (CheckStatus::Fail, failures.join("; ")),
    };
    Precheck {
        id,
        status,
        message,
        resolvable: false,
        subjects: failures
            .iter()
            .filter_map(|f| f.split(':').next().map(str::to_string))
            .collect(),
    }
}
