//! `drover run --plan plan.json`: the plan an operator reviewed (`drover plan -o json|yaml`) is
//! the plan the run starts with, or the run does not start.
//!
//! The plan document is read back (JSON or YAML) and must be the plan of the inventory given
//! with it (else bad input: it was made from another file, or one of them changed). The
//! platform is then discovered and planned again, as the run itself will plan it:
//! - the same plan: the run starts;
//! - only VMs that changed on the platform since the review (stopped, started, added, removed,
//!   moved) have other actions: the run starts with those re-planned and says which;
//! - anything else (a host upgraded, down or added, other waves, other paths, a VM that did
//!   not change moving elsewhere, or no safe plan at all): refused with exit 3 and the
//!   differences, nothing changed.
//!
//! The run then executes that plan (`Execution::with_plan`): after each wave it keeps to the
//! remaining reviewed waves while the core's independent checker accepts them on what was
//! observed, and re-plans only when it does not.
//!
//! The accepted plan is kept in the run's options (`reviewed_plan`), and `resume` checks that
//! the journal still replays to it. Knows plan documents and clusters; no driver, no store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use drover_core::Cluster;
use drover_schema::document::{ActionEntry, PlanDocument};

use crate::exit::Failure;

/// The options key under which a run keeps the plan it started with.
pub const OPTIONS_KEY: &str = "reviewed_plan";

/// Reads a plan document written by `drover plan -o json` or `-o yaml`.
pub fn load(path: &Path) -> Result<PlanDocument, Failure> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Failure::bad_input(format!("{}: cannot read the plan: {error}", path.display()))
    })?;
    let name = path.display();
    if text.trim_start().starts_with('{') {
        let mut deserializer = serde_json::Deserializer::from_str(&text);
        return serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let inner = error.inner();
            Failure::bad_input(format!(
                "{name}:{}:{}: {}: {inner} (expected a document of `drover plan -o json`)",
                inner.line(),
                inner.column(),
                error.path()
            ))
        });
    }
    serde_yaml_ng::from_str(&text).map_err(|error| {
        Failure::bad_input(format!(
            "{name}: {error} (expected a document of `drover plan -o json` or `-o yaml`)"
        ))
    })
}

/// The reviewed plan must be the plan of this inventory as it is now.
pub fn check_made_from(
    reviewed: &PlanDocument,
    from_inventory: &PlanDocument,
    plan_path: &Path,
    inventory_path: &Path,
) -> Result<(), Failure> {
    if reviewed == from_inventory {
        return Ok(());
    }
    let differences = differences(reviewed, from_inventory, &BTreeSet::new()).unsafe_changes;
    Err(Failure::bad_input(format!(
        "{} is not the plan of {} (made from another inventory, or one of them changed since): plan again with `drover plan -i {} -o json`{}",
        plan_path.display(),
        inventory_path.display(),
        inventory_path.display(),
        bullet_list(&differences)
    )))
}

/// The plan a run starts with, and the VMs re-planned because they changed on the platform.
pub struct Accepted {
    pub document: PlanDocument,
    /// One line per re-planned VM (`vm web-3: no action → wave 1: migrate h1 → h2`).
    pub replanned_vms: Vec<String>,
}

/// The reviewed plan with only the VMs that changed on the platform re-planned (their actions
/// from `fresh`, the plan of the discovered cluster), if the waves are the same and the
/// independent checker finds the result safe on the discovered cluster; else refused (exit 3).
pub fn accept(
    reviewed: &PlanDocument,
    fresh: &drover_app::plan::PlannedUpgrade,
    inventory: &Cluster,
    observed: &Cluster,
) -> Result<Accepted, Failure> {
    let (fresh_plan, fresh_document) = (&fresh.plan, &fresh.document);
    if let Err(unsafe_plan) = fresh.check_safe() {
        return Err(refusal(reviewed, &[unsafe_plan.to_string()]));
    }
    let changed = changed_vms(inventory, observed);
    let structure = differences(reviewed, fresh_document, &changed);
    let structural: Vec<String> = structure
        .unsafe_changes
        .into_iter()
        .filter(|line| !line.starts_with("vm "))
        .collect();
    if !structural.is_empty() {
        return Err(refusal(reviewed, &structural));
    }
    let mut patched = fresh_document.clone();
    patched.waves = patched_waves(reviewed, fresh_document, &changed);
    let waves = patched
        .waves_on(observed)
        .map_err(|error| refusal(reviewed, &[error]))?;
    let plan = fresh_plan.with_waves(waves);
    let violations = drover_core::check::check_plan(observed, &plan);
    if !violations.is_empty() {
        let mut lines = differences(reviewed, fresh_document, &changed).replanned_vms;
        lines.extend(
            violations
                .into_iter()
                .map(|v| format!("re-planning only the changed VMs breaks a rule: {v}")),
        );
        return Err(refusal(reviewed, &lines));
    }
    let mut document = PlanDocument::new(observed, &plan);
    document.upgrade_paths = fresh_document.upgrade_paths.clone();
    document.compatibility_level_after = fresh_document.compatibility_level_after.clone();
    let replanned_vms = differences(reviewed, &document, &changed).replanned_vms;
    Ok(Accepted {
        document,
        replanned_vms,
    })
}

/// Per wave: the reviewed actions of VMs that did not change, then the fresh actions of those
/// that did.
fn patched_waves(
    reviewed: &PlanDocument,
    fresh: &PlanDocument,
    changed: &BTreeSet<String>,
) -> Vec<drover_schema::document::WaveEntry> {
    fresh
        .waves
        .iter()
        .zip(&reviewed.waves)
        .map(|(fresh_wave, reviewed_wave)| {
            let mut wave = fresh_wave.clone();
            wave.actions = reviewed_wave
                .actions
                .iter()
                .filter(|a| !changed.contains(&a.vm))
                .chain(
                    fresh_wave
                        .actions
                        .iter()
                        .filter(|a| changed.contains(&a.vm)),
                )
                .cloned()
                .collect();
            // Returns follow the actions: the reviewed ones of VMs that did not change, the
            // fresh ones of those that did.
            wave.returns = reviewed_wave
                .returns
                .iter()
                .filter(|a| !changed.contains(&a.vm))
                .chain(
                    fresh_wave
                        .returns
                        .iter()
                        .filter(|a| changed.contains(&a.vm)),
                )
                .cloned()
                .collect();
            wave
        })
        .collect()
}

fn refusal(reviewed: &PlanDocument, lines: &[String]) -> Failure {
    Failure::no_safe_plan(format!(
        "the cluster {} changed since the plan was reviewed, and the reviewed plan is no longer the safe one; nothing was changed. Review the new plan (`drover plan` on a fresh `drover discover`). Differences (reviewed → now):{}",
        reviewed.cluster,
        bullet_list(lines)
    ))
}

fn bullet_list(lines: &[String]) -> String {
    lines.iter().map(|l| format!("\n  - {l}")).collect()
}

#[derive(Default)]
struct Differences {
    unsafe_changes: Vec<String>,
    replanned_vms: Vec<String>,
}

/// Waves, the final level and upgrade paths must match; VM actions may differ only for VMs in
/// `changed_vms`.
fn differences(
    reviewed: &PlanDocument,
    fresh: &PlanDocument,
    changed_vms: &BTreeSet<String>,
) -> Differences {
    let mut found = Differences::default();
    if reviewed.cluster != fresh.cluster || reviewed.target_version != fresh.target_version {
        found.unsafe_changes.push(format!(
            "cluster {} to {} → cluster {} to {}",
            reviewed.cluster, reviewed.target_version, fresh.cluster, fresh.target_version
        ));
    }
    compare_waves(reviewed, fresh, &mut found);
    if reviewed.final_compatibility_level != fresh.final_compatibility_level {
        found.unsafe_changes.push(format!(
            "final compatibility level {} → {}",
            reviewed
                .final_compatibility_level
                .as_deref()
                .unwrap_or("none"),
            fresh.final_compatibility_level.as_deref().unwrap_or("none")
        ));
    }
    if reviewed.upgrade_paths != fresh.upgrade_paths {
        found
            .unsafe_changes
            .push("the hosts' upgrade paths from the release catalog differ".into());
    }
    compare_vm_actions(reviewed, fresh, changed_vms, &mut found);
    found
}

fn compare_waves(reviewed: &PlanDocument, fresh: &PlanDocument, found: &mut Differences) {
    let count = reviewed.waves.len().max(fresh.waves.len());
    for index in 0..count {
        let describe = |plan: &PlanDocument| {
            plan.waves.get(index).map_or("no wave".to_string(), |w| {
                format!("{} {}", wire_name(&w.kind), w.hosts.join(", "))
            })
        };
        let (before, now) = (describe(reviewed), describe(fresh));
        if before != now {
            found
                .unsafe_changes
                .push(format!("wave {}: {before} → {now}", index + 1));
        }
    }
}

/// Per VM, its actions in plan order as text (`wave 1: migrate h1 → h2`).
fn actions_by_vm(plan: &PlanDocument) -> BTreeMap<&str, Vec<String>> {
    let mut by_vm: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for wave in &plan.waves {
        for action in &wave.actions {
            by_vm
                .entry(action.vm.as_str())
                .or_default()
                .push(describe_action(wave.number, action));
        }
        for back in &wave.returns {
            by_vm
                .entry(back.vm.as_str())
                .or_default()
                .push(format!("{} (return)", describe_action(wave.number, back)));
        }
    }
    by_vm
}

fn describe_action(wave: usize, action: &ActionEntry) -> String {
    let kind = wire_name(&action.kind);
    match &action.to {
        Some(to) => format!("wave {wave}: {kind} {} → {to}", action.from),
        None => format!("wave {wave}: {kind} on {}", action.from),
    }
}

fn compare_vm_actions(
    reviewed: &PlanDocument,
    fresh: &PlanDocument,
    changed_vms: &BTreeSet<String>,
    found: &mut Differences,
) {
    let (before, now) = (actions_by_vm(reviewed), actions_by_vm(fresh));
    let names: BTreeSet<&str> = before.keys().chain(now.keys()).copied().collect();
    let none = Vec::new();
    for vm in names {
        let (was, is) = (
            before.get(vm).unwrap_or(&none),
            now.get(vm).unwrap_or(&none),
        );
        if was == is {
            continue;
        }
        let text = |list: &Vec<String>| match list.is_empty() {
            true => "no action".to_string(),
            false => list.join("; "),
        };
        let line = format!("vm {vm}: {} → {}", text(was), text(is));
        match changed_vms.contains(vm) {
            true => found.replanned_vms.push(line),
            false => found.unsafe_changes.push(line),
        }
    }
}

/// A document enum as the plan document spells it (`compute`, `migrate`).
fn wire_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// VMs whose presence, state or host differs between the inventory and the platform.
fn changed_vms(inventory: &Cluster, observed: &Cluster) -> BTreeSet<String> {
    let describe = |cluster: &Cluster| -> BTreeMap<String, String> {
        cluster
            .vms
            .iter()
            .map(|vm| {
                let state = if vm.is_running() {
                    "running"
                } else {
                    "stopped"
                };
                (
                    vm.name.clone(),
                    format!("{state} on {}", cluster.host(vm.host).name),
                )
            })
            .collect()
    };
    let (before, now) = (describe(inventory), describe(observed));
    before
        .keys()
        .chain(now.keys())
        .filter(|name| before.get(*name) != now.get(*name))
        .cloned()
        .collect()
}

/// The run's options with the accepted plan added.
pub fn options_with_plan(
    mut options: serde_json::Map<String, serde_json::Value>,
    plan: &PlanDocument,
) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
    let plan = serde_json::to_value(plan).map_err(Failure::internal)?;
    options.insert(OPTIONS_KEY.to_string(), plan);
    Ok(options)
}

/// The plan a run was started with by `--plan`, if it was.
pub fn stored_plan(options_json: &str) -> Option<PlanDocument> {
    let options: serde_json::Value = serde_json::from_str(options_json).ok()?;
    serde_json::from_value(options.get(OPTIONS_KEY)?.clone()).ok()
}

/// Waves and VM actions of two plan documents are the same (prechecks and counts aside).
pub fn same_waves(a: &PlanDocument, b: &PlanDocument) -> bool {
    a.waves == b.waves && a.final_compatibility_level == b.final_compatibility_level
}
