//! The plan of an inventory as both front ends show it: the core's plan, the prechecks the
//! release catalog adds (paths, hotfixes, gates), its document, and whether it is safe to start.
//! The verdict is computed on the domain's prechecks (the core's and the catalog's), never by
//! filtering the document. `drover plan -o json` and the API's `POST /clusters/{c}/plans`
//! return the document.
//!
//! Plans nothing itself (the core does) and renders nothing (the CLI's plan view does).

use drover_core::{CheckStatus, Plan, Precheck};
use drover_schema::document::PlanDocument;
use drover_schema::inventory::InventoryFile;

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

/// The core's plan of the inventory's cluster with what the release catalog adds, and its
/// document.
pub fn plan_upgrade(file: &InventoryFile) -> Result<PlannedUpgrade, AppError> {
    let mut plan = drover_core::plan(&file.cluster);
    // A suspend or shelve the platform does not have fails the plan now, not a call mid-run.
    let driver_kind = file.driver.kind();
    if let Some(check) = drover_drivers::dispositions_precheck(driver_kind, &file.cluster, &plan) {
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
