//! The pool settings that block a rolling pool upgrade, as XAPI shows them: `pool.ha_enabled`
//! with `pool.ha_statefiles`, `pool.ha_configuration` and `pool.ha_host_failures_to_tolerate`
//! (`pool.disable_ha`, `pool.enable_ha(heartbeat_srs, configuration)`,
//! `pool.set_ha_host_failures_to_tolerate`); `pool.wlb_enabled` with `pool.wlb_url`
//! (`pool.set_wlb_enabled`); and CD drives, `VBD`s of `type` `CD` whose `empty` says whether
//! media is inserted (`VBD.eject`). Names from `ocaml/idl/datamodel_pool.ml` and `datamodel.ml`,
//! errors from `datamodel_errors.ml`: `HA_IS_ENABLED []`, `HA_NOT_ENABLED []`, `HA_NOT_INSTALLED
//! [host]`, `WLB_NOT_INITIALIZED []`, `VBD_NOT_REMOVABLE_MEDIA [vbd]`, `VBD_IS_EMPTY [vbd]`.
//!
//! Whether each setting is on is the simulator's (its `cluster.settings`), so the world stays
//! the one truth: turning one off or on here resolves or restores it there. What only XAPI has
//! is kept here: the HA statefiles, configuration and failures to tolerate, which stay after
//! `disable_ha` as xapi leaves them (`ocaml/xapi/xapi_ha.ml`). A pool whose inventory lists no
//! `ha-enabled` has no HA to enable (`HA_NOT_INSTALLED`) and one with no `wlb-enabled` no WLB
//! server (`WLB_NOT_INITIALIZED`). The emulated storage is one shared heartbeat SR (with the HA
//! statefile VDI) and one ISO library (with a VDI per inserted CD); refs of classes of their own.
//!
//! This module must not know HTTP or either wire encoding.

use std::collections::BTreeMap;

use drover_core::{PlatformSetting, SettingKind};
use drover_driver::Driver;
use drover_sim::driver::WorldSnapshot;

use super::{error, record, reference_of, string_map, CallAnswer, Class, XapiPool, XapiValue};

/// Ref classes of the objects this module serves (beyond the pool module's).
const CLASS_SR: u32 = 0x20;
const CLASS_VDI_STATEFILE: u32 = 0x21;
const CLASS_VBD_CD: u32 = 0x22;
const CLASS_VDI_ISO: u32 = 0x23;
/// The heartbeat SR and the ISO library, by index in `CLASS_SR`.
const HEARTBEAT_SR: usize = 0;
const ISO_SR: usize = 1;
const WLB_URL: &str = "https://wlb.emulated.invalid:8012";

/// What XAPI keeps about HA beside `ha_enabled`.
pub(super) struct PoolSettings {
    /// Statefile VDI refs (`pool.ha_statefiles`).
    ha_statefiles: Vec<String>,
    ha_configuration: BTreeMap<String, String>,
    ha_host_failures_to_tolerate: i64,
}

impl PoolSettings {
    /// HA as configured when the emulator starts: one statefile on the heartbeat SR when the
    /// inventory has HA.
    pub(super) fn new(snapshot: &WorldSnapshot) -> PoolSettings {
        let has_ha = setting_state(snapshot, &PlatformSetting::pool(SettingKind::HaEnabled));
        PoolSettings {
            ha_statefiles: match has_ha {
                Some(_) => vec![statefile_ref()],
                None => Vec::new(),
            },
            ha_configuration: BTreeMap::from([("timeout".to_string(), "60".to_string())]),
            ha_host_failures_to_tolerate: i64::from(has_ha.is_some()),
        }
    }
}

fn reference(class: u32, index: usize) -> String {
    reference_of(class, index).unwrap_or_default()
}

fn statefile_ref() -> String {
    reference(CLASS_VDI_STATEFILE, HEARTBEAT_SR)
}

/// The class and index a ref of this module names.
fn parse(text: &str) -> Option<(u32, usize)> {
    let hex = text.strip_prefix("OpaqueRef:")?;
    let (class, rest) = hex.split_once('-')?;
    let class = u32::from_str_radix(class, 16).ok()?;
    let index = usize::from_str_radix(rest.rsplit('-').next()?, 16).ok()?;
    (reference_of(class, index)? == text).then_some((class, index))
}

/// `Some(on)` when the world has the setting, `None` when it never had it.
fn setting_state(snapshot: &WorldSnapshot, setting: &PlatformSetting) -> Option<bool> {
    snapshot
        .settings
        .iter()
        .find(|s| s.setting == *setting)
        .map(|s| s.on)
}

/// VMs with a CD drive (those the inventory lists with media inserted), by index, with whether
/// the drive still holds the media.
fn cd_drives(pool: &XapiPool, snapshot: &WorldSnapshot) -> Vec<(usize, bool)> {
    pool.cluster
        .vms
        .iter()
        .enumerate()
        .filter_map(|(index, vm)| {
            let media = PlatformSetting::of_vm(SettingKind::VmMediaInserted, &vm.name);
            setting_state(snapshot, &media).map(|inserted| (index, inserted))
        })
        .collect()
}

impl XapiPool {
    /// The ref of the CD drive of guest `vm`, when it has one (the inventory lists its media).
    pub(super) fn cd_vbd_of(&self, vm: usize, snapshot: &WorldSnapshot) -> Option<String> {
        cd_drives(self, snapshot)
            .into_iter()
            .any(|(index, _)| index == vm)
            .then(|| reference(CLASS_VBD_CD, vm))
    }

    fn pool_settings(&self) -> std::sync::MutexGuard<'_, PoolSettings> {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pool record's HA and WLB fields.
    pub(super) fn settings_pool_fields(
        &self,
        snapshot: &WorldSnapshot,
    ) -> Vec<(&'static str, XapiValue)> {
        let ha = setting_state(snapshot, &PlatformSetting::pool(SettingKind::HaEnabled));
        let wlb = setting_state(snapshot, &PlatformSetting::pool(SettingKind::WlbEnabled));
        let settings = self.pool_settings();
        vec![
            ("ha_enabled", XapiValue::Bool(ha == Some(true))),
            (
                "ha_configuration",
                string_map(
                    settings
                        .ha_configuration
                        .iter()
                        .map(|(key, value)| (key.as_str(), value.clone()))
                        .collect(),
                ),
            ),
            (
                "ha_statefiles",
                XapiValue::strings(settings.ha_statefiles.clone()),
            ),
            (
                "ha_host_failures_to_tolerate",
                XapiValue::Int(settings.ha_host_failures_to_tolerate),
            ),
            ("wlb_enabled", XapiValue::Bool(wlb == Some(true))),
            (
                "wlb_url",
                XapiValue::string(if wlb.is_some() { WLB_URL } else { "" }),
            ),
        ]
    }

    /// Every object of `class` this module serves, ref → record (joined with the guests' own
    /// disks in `XapiPool::all_records`).
    pub(super) fn settings_records(
        &self,
        class: &str,
        snapshot: &WorldSnapshot,
    ) -> BTreeMap<String, XapiValue> {
        match class {
            "SR" => [HEARTBEAT_SR, ISO_SR]
                .into_iter()
                .map(|index| (reference(CLASS_SR, index), self.sr_record(index, snapshot)))
                .collect(),
            "VDI" => {
                let mut records = BTreeMap::from([(statefile_ref(), statefile_record())]);
                for (vm, _) in cd_drives(self, snapshot) {
                    records.insert(reference(CLASS_VDI_ISO, vm), self.iso_record(vm));
                }
                records
            }
            "VBD" => cd_drives(self, snapshot)
                .into_iter()
                .map(|(vm, inserted)| {
                    let running = snapshot
                        .vm(&self.cluster.vms[vm].name)
                        .is_some_and(|v| v.running);
                    (
                        reference(CLASS_VBD_CD, vm),
                        cd_record(vm, inserted, running),
                    )
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    fn sr_record(&self, index: usize, snapshot: &WorldSnapshot) -> XapiValue {
        let (name, kind, content, vdis) = match index {
            HEARTBEAT_SR => ("heartbeat SR", "nfs", "user", vec![statefile_ref()]),
            _ => (
                "ISO library",
                "iso",
                "iso",
                cd_drives(self, snapshot)
                    .into_iter()
                    .map(|(vm, _)| reference(CLASS_VDI_ISO, vm))
                    .collect(),
            ),
        };
        record(vec![
            ("uuid", XapiValue::string(uuid_of(CLASS_SR, index))),
            ("name_label", XapiValue::string(name)),
            ("type", XapiValue::string(kind)),
            ("content_type", XapiValue::string(content)),
            ("shared", XapiValue::Bool(true)),
            ("VDIs", XapiValue::strings(vdis)),
            ("other_config", XapiValue::Struct(BTreeMap::new())),
        ])
    }

    fn iso_record(&self, vm: usize) -> XapiValue {
        record(vec![
            ("uuid", XapiValue::string(uuid_of(CLASS_VDI_ISO, vm))),
            (
                "name_label",
                XapiValue::string(format!("{}-tools.iso", self.cluster.vms[vm].name)),
            ),
            ("SR", XapiValue::string(reference(CLASS_SR, ISO_SR))),
            ("type", XapiValue::string("user")),
            ("read_only", XapiValue::Bool(true)),
            ("sharable", XapiValue::Bool(true)),
        ])
    }

    /// Answers the calls this module serves; `None` for any other method.
    pub(super) async fn settings_call(
        &self,
        class: &str,
        message: &str,
        args: &[XapiValue],
    ) -> Option<CallAnswer> {
        let arg = |index: usize| args.get(index).and_then(XapiValue::as_str).unwrap_or("");
        let method = format!("{class}.{message}");
        let expect = |count: usize| -> Result<(), Vec<String>> {
            if args.len() == count {
                return Ok(());
            }
            let (expected, received) = ((count + 1).to_string(), (args.len() + 1).to_string());
            Err(error(
                "MESSAGE_PARAMETER_COUNT_MISMATCH",
                &[&method, &expected, &received],
            ))
        };
        let snapshot = self.driver.snapshot();
        let answer = match (class, message) {
            ("SR" | "VDI" | "VBD", "get_all") => expect(0)
                .map(|()| XapiValue::strings(self.settings_records(class, &snapshot).into_keys())),
            ("SR" | "VDI" | "VBD", "get_all_records") => {
                expect(0).map(|()| XapiValue::Struct(self.settings_records(class, &snapshot)))
            }
            ("SR" | "VDI" | "VBD", getter) if getter.starts_with("get_") => {
                expect(1).and_then(|()| {
                    let fields = self
                        .settings_records(class, &snapshot)
                        .remove(arg(0))
                        .ok_or_else(|| error("HANDLE_INVALID", &[class, arg(0)]))?;
                    match (getter, fields) {
                        ("get_record", fields) => Ok(fields),
                        (getter, XapiValue::Struct(mut map)) => map
                            .remove(&getter["get_".len()..])
                            .ok_or_else(|| error("MESSAGE_METHOD_UNKNOWN", &[&method])),
                        _ => Err(error("MESSAGE_METHOD_UNKNOWN", &[&method])),
                    }
                })
            }
            ("VBD", "eject") => match expect(1) {
                Ok(()) => self.eject(arg(0), &snapshot).await,
                Err(problem) => Err(problem),
            },
            ("pool", "disable_ha") => match expect(0) {
                Ok(()) => self.disable_ha(&snapshot).await,
                Err(problem) => Err(problem),
            },
            ("pool", "enable_ha") => match expect(2) {
                Ok(()) => self.enable_ha(&args[0], &args[1], &snapshot).await,
                Err(problem) => Err(problem),
            },
            ("pool", "set_ha_host_failures_to_tolerate") => expect(2).and_then(|()| {
                let value = match &args[1] {
                    XapiValue::Int(value) => Some(*value),
                    XapiValue::String(text) => text.parse().ok(),
                    _ => None,
                };
                let value = value.ok_or_else(|| error("FIELD_TYPE_ERROR", &["value"]))?;
                self.pool_settings().ha_host_failures_to_tolerate = value;
                Ok(XapiValue::string(""))
            }),
            ("pool", "set_wlb_enabled") => match expect(2) {
                Ok(()) => self.set_wlb_enabled(&args[1], &snapshot).await,
                Err(problem) => Err(problem),
            },
            _ => return None,
        };
        Some(answer)
    }

    async fn eject(&self, vbd: &str, snapshot: &WorldSnapshot) -> CallAnswer {
        let drive = parse(vbd)
            .filter(|(class, _)| *class == CLASS_VBD_CD)
            .and_then(|(_, vm)| {
                cd_drives(self, snapshot)
                    .into_iter()
                    .find(|(v, _)| *v == vm)
            });
        let Some((vm, inserted)) = drive else {
            return Err(error("HANDLE_INVALID", &["VBD", vbd]));
        };
        if !inserted {
            return Err(error("VBD_IS_EMPTY", &[vbd]));
        }
        let media =
            PlatformSetting::of_vm(SettingKind::VmMediaInserted, &self.cluster.vms[vm].name);
        self.driver
            .resolve_setting(&media)
            .await
            .map_err(|problem| error("INTERNAL_ERROR", &[&problem.to_string()]))?;
        Ok(XapiValue::string(""))
    }

    async fn disable_ha(&self, snapshot: &WorldSnapshot) -> CallAnswer {
        let ha = PlatformSetting::pool(SettingKind::HaEnabled);
        if setting_state(snapshot, &ha) != Some(true) {
            return Err(error("HA_NOT_ENABLED", &[]));
        }
        self.driver
            .resolve_setting(&ha)
            .await
            .map_err(|problem| error("INTERNAL_ERROR", &[&problem.to_string()]))?;
        Ok(XapiValue::string(""))
    }

    async fn enable_ha(
        &self,
        heartbeat_srs: &XapiValue,
        configuration: &XapiValue,
        snapshot: &WorldSnapshot,
    ) -> CallAnswer {
        let ha = PlatformSetting::pool(SettingKind::HaEnabled);
        match setting_state(snapshot, &ha) {
            Some(true) => return Err(error("HA_IS_ENABLED", &[])),
            None => {
                let master = super::reference(Class::Host, self.master_index() as u64);
                return Err(error("HA_NOT_INSTALLED", &[&master]));
            }
            Some(false) => {}
        }
        let XapiValue::Array(srs) = heartbeat_srs else {
            return Err(error("FIELD_TYPE_ERROR", &["heartbeat_srs"]));
        };
        let mut statefiles = Vec::new();
        for sr in srs {
            let text = sr.as_str().unwrap_or("");
            match parse(text) {
                Some((CLASS_SR, HEARTBEAT_SR)) => statefiles.push(statefile_ref()),
                Some((CLASS_SR, _)) => {
                    return Err(error("HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", &[text]))
                }
                _ => return Err(error("HANDLE_INVALID", &["SR", text])),
            }
        }
        let XapiValue::Struct(configuration) = configuration else {
            return Err(error("FIELD_TYPE_ERROR", &["configuration"]));
        };
        // The world wants back what it saved when HA went off; asking it to resolve again
        // answers that (resolving is idempotent).
        let world_error =
            |problem: drover_driver::DriverError| error("INTERNAL_ERROR", &[&problem.to_string()]);
        let saved = self
            .driver
            .resolve_setting(&ha)
            .await
            .map_err(world_error)?;
        self.driver
            .restore_setting(&ha, &saved)
            .await
            .map_err(world_error)?;
        let mut settings = self.pool_settings();
        settings.ha_statefiles = statefiles;
        settings.ha_configuration = configuration
            .iter()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_string()))
            .collect();
        Ok(XapiValue::string(""))
    }

    async fn set_wlb_enabled(&self, value: &XapiValue, snapshot: &WorldSnapshot) -> CallAnswer {
        let wlb = PlatformSetting::pool(SettingKind::WlbEnabled);
        let enable = match value {
            XapiValue::Bool(value) => *value,
            _ => return Err(error("FIELD_TYPE_ERROR", &["value"])),
        };
        let world_error =
            |problem: drover_driver::DriverError| error("INTERNAL_ERROR", &[&problem.to_string()]);
        match (setting_state(snapshot, &wlb), enable) {
            (None, true) => Err(error("WLB_NOT_INITIALIZED", &[])),
            (Some(true), false) => {
                self.driver
                    .resolve_setting(&wlb)
                    .await
                    .map_err(world_error)?;
                Ok(XapiValue::string(""))
            }
            (Some(false), true) => {
                let saved = self
                    .driver
                    .resolve_setting(&wlb)
                    .await
                    .map_err(world_error)?;
                self.driver
                    .restore_setting(&wlb, &saved)
                    .await
                    .map_err(world_error)?;
                Ok(XapiValue::string(""))
            }
            _ => Ok(XapiValue::string("")),
        }
    }
}

fn uuid_of(class: u32, index: usize) -> String {
    format!("{class:08x}-0000-4000-8000-{index:012x}")
}

fn statefile_record() -> XapiValue {
    record(vec![
        ("uuid", XapiValue::string(uuid_of(CLASS_VDI_STATEFILE, 0))),
        ("name_label", XapiValue::string("Statefile for HA")),
        ("SR", XapiValue::string(reference(CLASS_SR, HEARTBEAT_SR))),
        ("type", XapiValue::string("ha_statefile")),
        ("read_only", XapiValue::Bool(false)),
        ("sharable", XapiValue::Bool(true)),
    ])
}

fn cd_record(vm: usize, inserted: bool, running: bool) -> XapiValue {
    let vdi = match inserted {
        true => reference(CLASS_VDI_ISO, vm),
        false => super::NULL_REF.to_string(),
    };
    let allowed = if inserted {
        vec!["eject"]
    } else {
        vec!["insert"]
    };
    record(vec![
        ("uuid", XapiValue::string(uuid_of(CLASS_VBD_CD, vm))),
        (
            "VM",
            XapiValue::string(super::reference(Class::Vm, vm as u64)),
        ),
        ("VDI", XapiValue::string(vdi)),
        ("userdevice", XapiValue::string("3")),
        ("bootable", XapiValue::Bool(false)),
        ("mode", XapiValue::string("RO")),
        ("type", XapiValue::string("CD")),
        ("unpluggable", XapiValue::Bool(true)),
        ("empty", XapiValue::Bool(!inserted)),
        ("currently_attached", XapiValue::Bool(running)),
        ("allowed_operations", XapiValue::strings(allowed)),
        ("current_operations", XapiValue::Struct(BTreeMap::new())),
        ("other_config", XapiValue::Struct(BTreeMap::new())),
    ])
}
