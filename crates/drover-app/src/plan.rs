//! The plan of an inventory as both front ends show it: the core's plan, its document with what
//! the release catalog adds (paths, hotfixes, gates as prechecks), and whether it can be carried
//! out. `drover plan -o json` and the API's `POST /clusters/{c}/plans` return this document.
//!
//! Plans nothing itself (the core does) and renders nothing (the CLI's plan view does).

use drover_core::Plan;
use drover_schema::document::{CheckStatusName, PlanDocument};
use drover_schema::inventory::InventoryFile;

use crate::error::AppError;

/// The core's plan of the inventory's cluster, and its document with what the release catalog
/// adds (paths, hotfixes, gates as prechecks).
pub fn plan_document(file: &InventoryFile) -> Result<(Plan, PlanDocument), AppError> {
    let plan = drover_core::plan(&file.cluster);
    let mut document = PlanDocument::new(&file.cluster, &plan);
    if let Some(catalog_plan) = crate::catalog::plan_upgrades(file, &file.cluster)? {
        catalog_plan.add_to(&mut document);
    }
    Ok((plan, document))
}

/// `NoSafePlan` with the blocking prechecks when the plan cannot be carried out.
pub fn feasibility(document: &PlanDocument) -> Result<(), AppError> {
    if document.feasible {
        return Ok(());
    }
    let reasons: Vec<String> = document
        .prechecks
        .iter()
        .filter(|c| c.status == CheckStatusName::Fail)
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect();
    Err(AppError::no_safe_plan(format!(
        "no safe plan for cluster {}:\n  {}",
        document.cluster,
        reasons.join("\n  ")
    )))
}
