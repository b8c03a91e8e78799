//! The plan of an inventory as both front ends show it: the core's plan, the prechecks the
//! release catalog adds (paths, hotfixes, gates), its document, and whether it is safe to start.
//! The verdict is computed on the domain's prechecks (the core's and the catalog's), never by
//! filtering the document. `drover plan -o json` and the API's `POST /clusters/{c}/plans`
//! return the document.
//!
//! Plans nothing itself (the core does) and renders nothing (the CLI's plan view does).

use drover_core::{ActionKind, CheckStatus, Cluster, Plan, Precheck};
use drover_schema::document::{PlanDocument, PrecheckEntry};
use drover_schema::inventory::{DriverSection, InventoryFile};

use crate::catalog::CatalogPlan;
use crate::error::AppError;

/// An inventory's plan with what the release catalog adds.
pub struct PlannedUpgrade {
    pub cluster_name: String,
    pub plan: Plan,
    pub catalog: Option<CatalogPlan>,
    pub document: PlanDocument,
}

impl PlannedUpgrade {
    /// The prechecks that block the upgrade (the core's, then the catalog's); none: safe.
    pub fn blocking_prechecks(&self) -> Vec<&Precheck> {
        let catalog = self.catalog.iter().flat_map(|catalog| &catalog.prechecks);
        self.plan
            .prechecks
            .iter()
            .chain(catalog)
            .filter(|check| check.status == CheckStatus::Fail)
            .collect()
    }

    /// For an oVirt engine with an `engine_update_check`, runs that command (within
    /// `policy.step_timeout_secs`) and adds the warning precheck `engine-update` to the plan and
    /// its document: the Upgrade Manager "notifies" of the engine's own update, the hosts can
    /// still be rolled. Nothing for other platforms or without the command. Called where an
    /// operator looks at a plan (`drover plan`, a run's start, the API's plan), not on every
    /// re-plan (a resumed run's, a simulation's), which need not reach the engine machine.
    pub fn add_engine_update_precheck(&mut self, file: &InventoryFile) {
        let DriverSection::Ovirt(ovirt) = &file.driver else {
            return;
        };
        if ovirt.engine_update_check.is_empty() {
            return;
        }
        if let Some(update) = crate::check::manager_update(file) {
            let precheck = engine_update_precheck(&update);
            self.document.prechecks.push(PrecheckEntry::new(&precheck));
            self.plan.prechecks.push(precheck);
        }
    }

    pub fn is_safe(&self) -> bool {
        self.blocking_prechecks().is_empty()
    }

    /// `NoSafePlan` naming every blocking precheck when the plan cannot be carried out.
    pub fn check_safe(&self) -> Result<(), AppError> {
        let blocking = self.blocking_prechecks();
        if blocking.is_empty() {
            return Ok(());
        }
        let reasons: Vec<String> = blocking
            .iter()
            .map(|check| format!("{}: {}", check.id, check.message))
            .collect();
        Err(AppError::no_safe_plan(format!(
            "no safe plan for cluster {}:\n  {}",
            self.cluster_name,
            reasons.join("\n  ")
        )))
    }
}

/// The precheck `engine-update`: a warning while the engine has an update pending or could not
/// be checked, a pass when it has none; never blocking.
pub fn engine_update_precheck(update: &drover_drivers::EngineUpdate) -> Precheck {
    let status = match update {
        drover_drivers::EngineUpdate::UpToDate => CheckStatus::Pass,
        _ => CheckStatus::Warn,
    };
    Precheck {
        id: "engine-update",
        status,
        message: update.describe(),
        resolvable: false,
        subjects: vec!["engine".to_string()],
    }
}

/// The core's plan of the inventory's cluster with what the release catalog adds, and its
/// document. Asks nothing of the platform: the engine's own pending update is added by
/// [`PlannedUpgrade::add_engine_update_precheck`] where an operator looks at a plan.
pub fn plan_upgrade(file: &InventoryFile) -> Result<PlannedUpgrade, AppError> {
    let mut plan = drover_core::plan(&file.cluster);
    // A suspend or shelve the platform does not have fails the plan now, not a call mid-run.
    let driver_kind = file.driver.kind();
    if let Some(check) = dispositions_precheck(driver_kind, &file.cluster, &plan) {
        plan = plan.with_waves(Vec::new());
        plan.prechecks.push(check);
    }
    let mut document = PlanDocument::new(&file.cluster, &plan);
    let catalog = crate::catalog::plan_upgrades(file, &file.cluster)?;
    if let Some(catalog) = &catalog {
        catalog.add_to(&mut document);
    }
    Ok(PlannedUpgrade {
        cluster_name: file.cluster.name.clone(),
        plan,
        catalog,
        document,
    })
}

/// A failed precheck (`driver-dispositions`) naming every VM whose planned action the driver
/// `kind` cannot carry out; `None` when it can carry out all of them, so plans without suspends
/// or shelves list the same prechecks as before.
fn dispositions_precheck(kind: &str, cluster: &Cluster, plan: &Plan) -> Option<Precheck> {
    let refused: Vec<(String, ActionKind)> = plan
        .actions()
        .filter(|action| !drover_drivers::supports(kind, action.kind))
        .map(|action| (cluster.vm(action.vm).name.clone(), action.kind))
        .collect();
    if refused.is_empty() {
        return None;
    }
    let listed: Vec<String> = refused
        .iter()
        .map(|(vm, action)| format!("{vm} ({})", action.as_str()))
        .collect();
    Some(Precheck {
        id: "driver-dispositions",
        status: CheckStatus::Fail,
        message: format!(
            "the {kind} driver cannot carry out the planned action of VM(s) {}: change their \
             `unmovable:` to one this platform has (shutdown or restart)",
            listed.join(", ")
        ),
        resolvable: false,
        subjects: refused.into_iter().map(|(vm, _)| vm).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = r#"cluster: {name: c, target_version: "2.0"}
hosts:
  - {name: h1, version: "1.0", memory_mib: 16384, cpus: 8}
  - {name: h2, version: "1.0", memory_mib: 16384, cpus: 8}
vms:
  - {name: live, host: h1, memory_mib: 1024}
  - {name: shelf, host: h1, memory_mib: 1024, migratable: false, unmovable: shelve}
  - {name: mem, host: h2, memory_mib: 1024, local_storage: true, unmovable: suspend}
"#;

    #[test]
    fn a_disposition_the_driver_lacks_fails_the_plan_naming_the_vms() {
        let cluster = drover_schema::inventory::parse_inventory(INVENTORY, "i.yaml").unwrap();
        let plan = drover_core::plan(&cluster);
        assert!(plan.is_feasible(), "{:?}", plan.prechecks);
        let on_xapi = dispositions_precheck("xapi", &cluster, &plan).expect("xapi has no shelve");
        assert_eq!(on_xapi.status, CheckStatus::Fail);
        assert_eq!(on_xapi.subjects, vec!["shelf".to_string()]);
        assert!(
            on_xapi.message.contains("shelf (shelve)"),
            "{}",
            on_xapi.message
        );
        let on_command = dispositions_precheck("command", &cluster, &plan).unwrap();
        assert_eq!(on_command.subjects.len(), 2, "{}", on_command.message);
        assert!(dispositions_precheck("simulator", &cluster, &plan).is_none());
        let without_parks = drover_core::plan(&{
            let mut plain = cluster.clone();
            plain.vms.retain(|vm| vm.unmovable.is_none());
            plain
        });
        assert!(dispositions_precheck("command", &cluster, &without_parks).is_none());
    }
}
