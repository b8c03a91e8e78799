//! The pool settings that block a rolling pool upgrade (the prechecks of XenServer's Rolling
//! Pool Upgrade wizard, resolved as its "Resolve All" does, and put back afterwards):
//!
//! - HA: `pool.ha_enabled`; off with `pool.disable_ha`; on again with `pool.enable_ha
//!   (heartbeat_srs, configuration)` and `pool.set_ha_host_failures_to_tolerate`. What is saved
//!   to turn it on again is read from the pool as xapi keeps it: the statefile VDIs of
//!   `pool.ha_statefiles` (their SRs, `VDI.get_SR`, are the heartbeat SRs), `pool.ha_configuration`
//!   and `pool.ha_host_failures_to_tolerate` (`ocaml/idl/datamodel_pool.ml`; xapi's
//!   `Xapi_ha.enable` records both fields and `disable` leaves them, `ocaml/xapi/xapi_ha.ml`, so
//!   a resolve re-issued after a crash reads the same configuration again).
//! - WLB: `pool.wlb_enabled`, a read-write field: `pool.set_wlb_enabled`.
//! - A VM's CD/DVD: a `VBD` of `type` `CD` whose `empty` is false; `VBD.eject` empties it
//!   (`ocaml/idl/datamodel.ml`). Drover does not insert the media again.
//!
//! Errors are the datamodel's (`datamodel_errors.ml`): `HA_NOT_ENABLED []`, `HA_IS_ENABLED []`,
//! `WLB_NOT_INITIALIZED []`, `VBD_NOT_REMOVABLE_MEDIA [vbd]`, `VBD_IS_EMPTY [vbd]`. A call whose
//! work is already done answers at once (HA already off or on, an empty drive), so re-issuing it
//! is safe. This module must not know the engine, the journal or the registry.

use std::collections::BTreeMap;

use drover_core::{PlatformSetting, SettingKind};
use drover_driver::DriverError;
use serde_json::{json, Value};

use crate::client::XapiClient;
use crate::XapiError;

/// A record as XAPI answers it.
type Record = serde_json::Map<String, Value>;

fn field<'a>(record: &'a Record, name: &str) -> &'a Value {
    record.get(name).unwrap_or(&Value::Null)
}

fn text<'a>(record: &'a Record, name: &str) -> &'a str {
    field(record, name).as_str().unwrap_or("")
}

fn flag(record: &Record, name: &str) -> bool {
    field(record, name).as_bool().unwrap_or(false)
}

/// XAPI integers: numbers over JSON-RPC, strings over XML-RPC; both accepted.
fn number(record: &Record, name: &str) -> u64 {
    match field(record, name) {
        Value::Number(number) => number.as_u64().unwrap_or(0),
        Value::String(text) => text.parse().unwrap_or(0),
        _ => 0,
    }
}

fn is_guest(record: &Record) -> bool {
    !flag(record, "is_control_domain")
        && !flag(record, "is_a_template")
        && !flag(record, "is_a_snapshot")
}

/// The records of a `get_all_records` answer, ref → record.
fn records_of(value: Value, class: &str) -> Result<BTreeMap<String, Record>, DriverError> {
    let Value::Object(map) = value else {
        return Err(DriverError::Failed(format!(
            "{class}.get_all_records: not a map"
        )));
    };
    Ok(map
        .into_iter()
        .filter_map(|(reference, record)| match record {
            Value::Object(record) => Some((reference, record)),
            _ => None,
        })
        .collect())
}

/// A call, its failure as the driver contract's error (the XAPI code kept in the text, so the
/// journal records it): the platform refusing a setting change (`HA_*`, `WLB_*`, `VBD_*`) is
/// `Refused`, a ref it does not know `NotFound`, no answer `Unreachable`.
async fn call(client: &XapiClient, method: &str, params: Vec<Value>) -> Result<Value, DriverError> {
    client
        .call(method, params)
        .await
        .map_err(|error| match &error {
            XapiError::Transport { detail, .. } => DriverError::Unreachable {
                host: "pool".into(),
                detail: detail.clone(),
            },
            XapiError::Api { code, .. } if code == "HANDLE_INVALID" => {
                DriverError::NotFound(error.to_string())
            }
            XapiError::Api { code, .. }
                if ["HA_", "WLB_", "VBD_"]
                    .iter()
                    .any(|prefix| code.starts_with(prefix))
                    || code == "OPERATION_NOT_ALLOWED" =>
            {
                DriverError::Refused(error.to_string())
            }
            _ => DriverError::Failed(error.to_string()),
        })
}

/// Whether a call failed with this XAPI error code.
fn is_code(error: &DriverError, code: &str) -> bool {
    error.to_string().contains(&format!("XAPI error {code} "))
}

/// The guest named `vm` (control domains, templates and snapshots are not guests).
async fn guest_ref(client: &XapiClient, vm: &str) -> Result<String, DriverError> {
    let vms = records_of(call(client, "VM.get_all_records", vec![]).await?, "VM")?;
    vms.into_iter()
        .find(|(_, record)| is_guest(record) && text(record, "name_label") == vm)
        .map(|(reference, _)| reference)
        .ok_or_else(|| DriverError::NotFound(format!("VM {vm}")))
}

/// What `pool.enable_ha` needs to turn HA on again as it was (the saved text, as JSON).
#[derive(Debug, PartialEq)]
struct SavedHa {
    heartbeat_srs: Vec<String>,
    configuration: BTreeMap<String, String>,
    host_failures_to_tolerate: u64,
}

impl SavedHa {
    fn to_text(&self) -> String {
        json!({
            "heartbeat_srs": self.heartbeat_srs,
            "configuration": self.configuration,
            "host_failures_to_tolerate": self.host_failures_to_tolerate,
        })
        .to_string()
    }

    fn from_text(text: &str) -> Result<SavedHa, DriverError> {
        let bad = |what: &str| {
            DriverError::Failed(format!(
                "the saved HA configuration {text:?} is not what the xapi driver saves: {what}"
            ))
        };
        let value: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
        let heartbeat_srs = value["heartbeat_srs"]
            .as_array()
            .ok_or_else(|| bad("no heartbeat_srs"))?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let configuration = value["configuration"]
            .as_object()
            .ok_or_else(|| bad("no configuration"))?
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
            .collect();
        let host_failures_to_tolerate = value["host_failures_to_tolerate"]
            .as_u64()
            .ok_or_else(|| bad("no host_failures_to_tolerate"))?;
        Ok(SavedHa {
            heartbeat_srs,
            configuration,
            host_failures_to_tolerate,
        })
    }
}

/// The pool's ref and record.
async fn pool_record(client: &XapiClient) -> Result<(String, Record), DriverError> {
    let pools = records_of(call(client, "pool.get_all_records", vec![]).await?, "pool")?;
    pools
        .into_iter()
        .next()
        .ok_or_else(|| DriverError::Failed("the server has no pool".into()))
}

/// CD drives that hold media: (VBD ref, VM ref).
async fn inserted_cds(client: &XapiClient) -> Result<Vec<(String, String)>, DriverError> {
    let vbds = records_of(call(client, "VBD.get_all_records", vec![]).await?, "VBD")?;
    Ok(vbds
        .into_iter()
        .filter(|(_, record)| text(record, "type") == "CD" && !flag(record, "empty"))
        .map(|(reference, record)| (reference, text(&record, "VM").to_string()))
        .collect())
}

/// The blocking settings that are on: HA, WLB, and a setting per guest with a CD inserted.
/// `vms` are the VM records discovery read (ref → record).
pub(crate) async fn observe(
    client: &XapiClient,
    vms: &BTreeMap<String, Record>,
) -> Result<Vec<PlatformSetting>, DriverError> {
    let (_, pool) = pool_record(client).await?;
    let mut settings = Vec::new();
    if flag(&pool, "ha_enabled") {
        settings.push(PlatformSetting::pool(SettingKind::HaEnabled));
    }
    if flag(&pool, "wlb_enabled") {
        settings.push(PlatformSetting::pool(SettingKind::WlbEnabled));
    }
    let mut media: Vec<String> = Vec::new();
    for (_, vm_ref) in inserted_cds(client).await? {
        let Some(vm) = vms.get(&vm_ref).filter(|vm| is_guest(vm)) else {
            continue;
        };
        let name = text(vm, "name_label").to_string();
        if !media.contains(&name) {
            media.push(name);
        }
    }
    media.sort();
    settings.extend(
        media
            .iter()
            .map(|vm| PlatformSetting::of_vm(SettingKind::VmMediaInserted, vm)),
    );
    Ok(settings)
}

pub(crate) async fn resolve(
    client: &XapiClient,
    setting: &PlatformSetting,
) -> Result<String, DriverError> {
    match setting.kind {
        SettingKind::HaEnabled => disable_ha(client).await,
        SettingKind::WlbEnabled => {
            let (pool_ref, pool) = pool_record(client).await?;
            if flag(&pool, "wlb_enabled") {
                let params = vec![json!(pool_ref), json!(false)];
                call(client, "pool.set_wlb_enabled", params).await?;
            }
            Ok(String::new())
        }
        SettingKind::VmMediaInserted => {
            let vm = setting.vm.as_deref().unwrap_or_default();
            let vm_ref = guest_ref(client, vm).await?;
            for (vbd, _) in inserted_cds(client)
                .await?
                .into_iter()
                .filter(|(_, owner)| *owner == vm_ref)
            {
                match call(client, "VBD.eject", vec![json!(vbd)]).await {
                    // Emptied meanwhile: the work is done.
                    Err(error) if is_code(&error, "VBD_IS_EMPTY") => {}
                    other => {
                        other?;
                    }
                }
            }
            Ok(String::new())
        }
        SettingKind::SchedulingPolicy
        | SettingKind::ClusterUpgradeUnmarked
        | SettingKind::WorkloadUpdateMethods
        | SettingKind::MachineConfigPoolUnpaused => Err(not_a_pool_setting(setting)),
    }
}

/// A setting of another platform (an oVirt cluster's scheduling policy, KubeVirt's workload
/// update methods): XAPI has none.
fn not_a_pool_setting(setting: &PlatformSetting) -> DriverError {
    DriverError::Refused(format!(
        "{}: XAPI pools have no such setting",
        setting.label()
    ))
}

/// Reads what HA runs with, then turns it off (if it is on); answers what was read.
async fn disable_ha(client: &XapiClient) -> Result<String, DriverError> {
    let (_, pool) = pool_record(client).await?;
    let mut heartbeat_srs = Vec::new();
    for statefile in field(&pool, "ha_statefiles")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let sr = call(client, "VDI.get_SR", vec![json!(statefile)]).await?;
        if let Some(sr) = sr
            .as_str()
            .filter(|sr| !heartbeat_srs.iter().any(|s| s == sr))
        {
            heartbeat_srs.push(sr.to_string());
        }
    }
    let configuration = field(&pool, "ha_configuration")
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
        .collect();
    let saved = SavedHa {
        heartbeat_srs,
        configuration,
        host_failures_to_tolerate: number(&pool, "ha_host_failures_to_tolerate"),
    };
    if flag(&pool, "ha_enabled") {
        if saved.heartbeat_srs.is_empty() {
            // Without its heartbeat SRs HA could not be turned on again: better not to start.
            return Err(DriverError::Refused(
                "HA is enabled but pool.ha_statefiles names no statefile VDI, so its heartbeat SRs are unknown and HA could not be enabled again".into(),
            ));
        }
        match call(client, "pool.disable_ha", vec![]).await {
            Ok(_) => {}
            // Turned off meanwhile (a re-issued call, or an operator): the work is done.
            Err(error) if is_code(&error, "HA_NOT_ENABLED") => {}
            Err(error) => return Err(error),
        }
    }
    Ok(saved.to_text())
}

pub(crate) async fn restore(
    client: &XapiClient,
    setting: &PlatformSetting,
    saved: &str,
) -> Result<(), DriverError> {
    match setting.kind {
        SettingKind::HaEnabled => {
            let (pool_ref, pool) = pool_record(client).await?;
            if flag(&pool, "ha_enabled") {
                return Ok(());
            }
            let saved = SavedHa::from_text(saved)?;
            let params = vec![json!(saved.heartbeat_srs), json!(saved.configuration)];
            match call(client, "pool.enable_ha", params).await {
                Ok(_) => {}
                Err(error) if is_code(&error, "HA_IS_ENABLED") => {}
                Err(error) => return Err(error),
            }
            if saved.host_failures_to_tolerate > 0 {
                // An int64 is a string over XML-RPC and a number over JSON-RPC; the client sends
                // JSON-RPC.
                let params = vec![json!(pool_ref), json!(saved.host_failures_to_tolerate)];
                call(client, "pool.set_ha_host_failures_to_tolerate", params).await?;
            }
            Ok(())
        }
        SettingKind::WlbEnabled => {
            let (pool_ref, pool) = pool_record(client).await?;
            if !flag(&pool, "wlb_enabled") {
                let params = vec![json!(pool_ref), json!(true)];
                call(client, "pool.set_wlb_enabled", params).await?;
            }
            Ok(())
        }
        SettingKind::VmMediaInserted => Err(DriverError::Refused(format!(
            "{}: Drover ejects media but does not insert it again",
            setting.label()
        ))),
        SettingKind::SchedulingPolicy
        | SettingKind::ClusterUpgradeUnmarked
        | SettingKind::WorkloadUpdateMethods
        | SettingKind::MachineConfigPoolUnpaused => Err(not_a_pool_setting(setting)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saved_ha_configuration_reads_back_as_written() {
        let saved = SavedHa {
            heartbeat_srs: vec!["OpaqueRef:sr".into()],
            configuration: BTreeMap::from([("timeout".to_string(), "60".to_string())]),
            host_failures_to_tolerate: 1,
        };
        assert_eq!(SavedHa::from_text(&saved.to_text()).unwrap(), saved);
        assert!(SavedHa::from_text("{}").is_err());
    }
}
