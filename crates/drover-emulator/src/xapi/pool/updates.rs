//! XAPI's `pool_update` class as XenServer 7.1–8.2 and XCP-ng 8.x serve it: updates uploaded
//! to the pool (`pool_update.introduce` of an ISO; here: the hotfixes of the inventory's release
//! catalog), each record with `name_label`, `version`, `after_apply_guidance` (`restartHost`
//! for a hotfix that needs a reboot), `vdi` and `hosts` — the hosts that applied it (the
//! inventory's `upgrade.installed_hotfixes` at the start); `pool_update.apply(self, host)` adds
//! the host, refused with `UPDATE_ALREADY_APPLIED [update]` when it is there already. Names from
//! `ocaml/idl/datamodel.ml` (class `pool_update`) and `datamodel_errors.ml`.
//!
//! What the update installs is not modelled: the simulator's hosts have versions, not hotfix
//! lists, so applying one changes only this record (Drover's reboot step follows anyway).
//!
//! This module must not know HTTP or either wire encoding.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{error, record, reference_of, CallAnswer, XapiPool, XapiValue, NULL_REF};
use crate::EmulatorError;

/// The ref class of `pool_update` objects (beyond the pool module's and the settings').
const CLASS_POOL_UPDATE: u32 = 0x30;

/// One update uploaded to the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedUpdate {
    /// The hotfix id, XAPI's `name_label` (`XS82E031`).
    pub name: String,
    pub reboot_required: bool,
    /// Hosts that have applied it, by name.
    pub applied_on: BTreeSet<String>,
}

/// The hotfixes of the catalog the inventory names (`upgrade.catalog`, relative to the
/// inventory), as uploaded updates; none when it names no catalog.
pub fn uploaded_updates(inventory: &Path) -> Result<Vec<UploadedUpdate>, EmulatorError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|error| EmulatorError::Read {
            path: path.to_path_buf(),
            message: error.to_string(),
        })
    };
    let text = read(inventory)?;
    let file = drover_schema::parse_inventory_file(&text, &inventory.display().to_string())
        .map_err(|problem| EmulatorError::Inventory(problem.to_string()))?;
    let Some(catalog_path) = &file.upgrade.catalog else {
        return Ok(Vec::new());
    };
    let catalog_path = inventory
        .parent()
        .unwrap_or(Path::new("."))
        .join(catalog_path);
    let catalog_text = read(&catalog_path)?;
    let catalog = drover_catalog::parse_catalog(&catalog_text, &catalog_path.display().to_string())
        .map_err(|problem| EmulatorError::Inventory(problem.to_string()))?;
    Ok(catalog
        .hotfixes()
        .iter()
        .map(|hotfix| UploadedUpdate {
            name: hotfix.id.clone(),
            reboot_required: hotfix.reboot_required,
            applied_on: file
                .upgrade
                .installed_hotfixes
                .iter()
                .filter(|(_, installed)| installed.contains(&hotfix.id))
                .map(|(host, _)| host.clone())
                .collect(),
        })
        .collect())
}

fn update_ref(index: usize) -> String {
    reference_of(CLASS_POOL_UPDATE, index).unwrap_or_default()
}

fn update_index(reference: &str, count: usize) -> Option<usize> {
    (0..count).find(|index| update_ref(*index) == reference)
}

impl XapiPool {
    /// Uploads updates to the pool (what `pool_update.introduce` does with an ISO's VDI).
    pub fn introduce_updates(&self, updates: Vec<UploadedUpdate>) {
        self.lock_updates().extend(updates);
    }

    fn lock_updates(&self) -> std::sync::MutexGuard<'_, Vec<UploadedUpdate>> {
        self.updates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Which hotfixes each host has applied, by host name (for tests beside the API).
    pub fn applied_updates(&self) -> BTreeMap<String, Vec<String>> {
        let mut applied: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for update in self.lock_updates().iter() {
            for host in &update.applied_on {
                applied
                    .entry(host.clone())
                    .or_default()
                    .push(update.name.clone());
            }
        }
        applied
    }

    /// The `pool_update` records, ref → record.
    pub(super) fn update_records(&self) -> BTreeMap<String, XapiValue> {
        let host_ref = |name: &String| {
            self.cluster
                .hosts
                .iter()
                .position(|host| &host.name == name)
                .map(|index| super::reference(super::Class::Host, index as u64))
        };
        self.lock_updates()
            .iter()
            .enumerate()
            .map(|(index, update)| {
                let guidance = match update.reboot_required {
                    true => XapiValue::strings(["restartHost"]),
                    false => XapiValue::Array(Vec::new()),
                };
                let fields = vec![
                    (
                        "uuid",
                        XapiValue::string(update_ref(index).trim_start_matches("OpaqueRef:")),
                    ),
                    ("name_label", XapiValue::string(update.name.clone())),
                    ("name_description", XapiValue::string("")),
                    ("version", XapiValue::string("1.0")),
                    ("installation_size", XapiValue::Int(0)),
                    ("key", XapiValue::string("")),
                    ("after_apply_guidance", guidance),
                    ("vdi", XapiValue::string(NULL_REF)),
                    (
                        "hosts",
                        XapiValue::strings(update.applied_on.iter().filter_map(host_ref)),
                    ),
                    ("other_config", XapiValue::Struct(BTreeMap::new())),
                    ("enforce_homogeneity", XapiValue::Bool(false)),
                ];
                (update_ref(index), record(fields))
            })
            .collect()
    }

    /// `pool_update.apply(self, host)`: records the host as having applied the update.
    pub(super) fn apply_update(&self, update: &str, host: &str) -> CallAnswer {
        let host_name = self.host_name(host)?;
        let mut updates = self.lock_updates();
        let index = update_index(update, updates.len())
            .ok_or_else(|| error("HANDLE_INVALID", &["pool_update", update]))?;
        if !updates[index].applied_on.insert(host_name) {
            return Err(error("UPDATE_ALREADY_APPLIED", &[update]));
        }
        Ok(XapiValue::string(""))
    }
}
