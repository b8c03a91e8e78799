//! The objects around a guest that discovery reads besides its `VM` record: its disk
//! (`VBD` → `VDI` → `SR`), its `VM_guest_metrics` and its `VM_group`s, built from the simulator's
//! VM (`local_storage`, `migratable`, `anti_affinity`).
//!
//! Names are the datamodel's (xapi-project/xen-api `ocaml/idl/datamodel.ml`: `SR.shared`,
//! `VDI.SR`, `VBD.VM`/`VDI`/`type`/`empty` with `vbd_type` CD|Disk|Floppy,
//! `VM_guest_metrics.PV_drivers_detected`; `datamodel_vm.ml`: `VM.VBDs`, `VM.guest_metrics`,
//! `VM.groups`; `datamodel_vm_group.ml`: `VM_group.placement` (`placement_policy`
//! anti_affinity|normal) and `VM_group.VMs`, XenServer 8.4).
//!
//! The emulator's layout: SR 0 is the pool's shared SR; SR `1 + h` is host `h`'s local SR. Each
//! guest has one disk (VDI and VBD numbered as the VM); a `local_storage` VM's disk is on the local
//! SR of the host it runs on. A guest's PV drivers are detected exactly when the simulator calls
//! it migratable. Each distinct `anti_affinity` name is one anti-affinity `VM_group`.
//!
//! This module must not know HTTP, the wire encodings, sessions or tasks.

use std::collections::{BTreeMap, BTreeSet};

use drover_core::{Cluster, VmState};
use drover_driver::Discovered;

use super::refs::{record, reference, uuid, Class};
use super::wire::XapiValue;

/// The SR index of the pool's shared SR.
const SHARED_SR: u64 = 0;

fn local_sr_of_host(host_index: usize) -> u64 {
    1 + host_index as u64
}

/// The VM groups: distinct `anti_affinity` names, sorted, numbered from 0.
pub(super) fn group_names(cluster: &Cluster) -> Vec<String> {
    cluster
        .vms
        .iter()
        .filter_map(|vm| vm.anti_affinity.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The refs a guest's `VM` record points to: `VBDs`, `guest_metrics`, `groups`.
pub(super) fn vm_links(cluster: &Cluster, vm_index: usize) -> Vec<(&'static str, XapiValue)> {
    let group = cluster.vms[vm_index]
        .anti_affinity
        .as_ref()
        .and_then(|name| group_names(cluster).iter().position(|known| known == name));
    vec![
        (
            "VBDs",
            XapiValue::strings([reference(Class::Vbd, vm_index as u64)]),
        ),
        (
            "guest_metrics",
            XapiValue::string(reference(Class::GuestMetrics, vm_index as u64)),
        ),
        (
            "groups",
            XapiValue::strings(group.map(|index| reference(Class::VmGroup, index as u64))),
        ),
    ]
}

/// Every object of `class` (one of `SR`, `VDI`, `VBD`, `VM_guest_metrics`, `VM_group`), ref →
/// record; `None` for another class.
pub(super) fn all_records(
    class: &str,
    cluster: &Cluster,
    discovered: &Discovered,
) -> Option<BTreeMap<String, XapiValue>> {
    let guests = 0..cluster.vms.len();
    let records = match class {
        "SR" => std::iter::once((reference(Class::Sr, SHARED_SR), shared_sr()))
            .chain((0..cluster.hosts.len()).map(|host_index| {
                let sr = local_sr_of_host(host_index);
                (
                    reference(Class::Sr, sr),
                    local_sr(cluster, host_index, discovered),
                )
            }))
            .collect(),
        "VDI" => guests
            .map(|index| {
                (
                    reference(Class::Vdi, index as u64),
                    vdi(cluster, index, discovered),
                )
            })
            .collect(),
        "VBD" => guests
            .map(|index| (reference(Class::Vbd, index as u64), vbd(index)))
            .collect(),
        "VM_guest_metrics" => guests
            .map(|index| {
                (
                    reference(Class::GuestMetrics, index as u64),
                    guest_metrics(cluster, index, discovered),
                )
            })
            .collect(),
        "VM_group" => group_names(cluster)
            .iter()
            .enumerate()
            .map(|(index, name)| {
                (
                    reference(Class::VmGroup, index as u64),
                    vm_group(cluster, index, name),
                )
            })
            .collect(),
        _ => return None,
    };
    Some(records)
}

/// Where a guest runs now (discovery's view), else where the inventory put it.
fn host_index_of(cluster: &Cluster, vm_index: usize, discovered: &Discovered) -> usize {
    let configured = &cluster.vms[vm_index];
    discovered
        .vms
        .iter()
        .find(|vm| vm.name == configured.name)
        .map_or(configured.host.index(), |vm| vm.host.index())
}

/// The SR a guest's disk is on.
fn sr_of_vm(cluster: &Cluster, vm_index: usize, discovered: &Discovered) -> u64 {
    if cluster.vms[vm_index].local_storage {
        local_sr_of_host(host_index_of(cluster, vm_index, discovered))
    } else {
        SHARED_SR
    }
}

fn sr_record(
    index: u64,
    name: String,
    sr_type: &str,
    shared: bool,
    vdis: Vec<String>,
) -> XapiValue {
    record(vec![
        ("uuid", XapiValue::string(uuid(Class::Sr, index))),
        ("name_label", XapiValue::string(name)),
        ("name_description", XapiValue::string("")),
        ("type", XapiValue::string(sr_type)),
        ("content_type", XapiValue::string("user")),
        ("shared", XapiValue::Bool(shared)),
        ("VDIs", XapiValue::strings(vdis)),
        ("PBDs", XapiValue::Array(Vec::new())),
        ("allowed_operations", XapiValue::Array(Vec::new())),
        ("current_operations", XapiValue::Struct(BTreeMap::new())),
        ("other_config", XapiValue::Struct(BTreeMap::new())),
    ])
}

fn shared_sr() -> XapiValue {
    sr_record(SHARED_SR, "Pool storage".into(), "nfs", true, Vec::new())
}

fn local_sr(cluster: &Cluster, host_index: usize, discovered: &Discovered) -> XapiValue {
    let sr = local_sr_of_host(host_index);
    let vdis = (0..cluster.vms.len())
        .filter(|index| sr_of_vm(cluster, *index, discovered) == sr)
        .map(|index| reference(Class::Vdi, index as u64))
        .collect();
    let name = format!("Local storage on {}", cluster.hosts[host_index].name);
    sr_record(sr, name, "ext", false, vdis)
}

fn vdi(cluster: &Cluster, vm_index: usize, discovered: &Discovered) -> XapiValue {
    let vm = &cluster.vms[vm_index];
    record(vec![
        ("uuid", XapiValue::string(uuid(Class::Vdi, vm_index as u64))),
        (
            "name_label",
            XapiValue::string(format!("{} disk 0", vm.name)),
        ),
        ("name_description", XapiValue::string("")),
        (
            "SR",
            XapiValue::string(reference(
                Class::Sr,
                sr_of_vm(cluster, vm_index, discovered),
            )),
        ),
        (
            "VBDs",
            XapiValue::strings([reference(Class::Vbd, vm_index as u64)]),
        ),
        ("type", XapiValue::string("user")),
        ("virtual_size", XapiValue::Int(20 * 1024 * 1024 * 1024)),
        ("sharable", XapiValue::Bool(false)),
        ("read_only", XapiValue::Bool(false)),
        ("is_a_snapshot", XapiValue::Bool(false)),
        ("other_config", XapiValue::Struct(BTreeMap::new())),
    ])
}

fn vbd(vm_index: usize) -> XapiValue {
    record(vec![
        ("uuid", XapiValue::string(uuid(Class::Vbd, vm_index as u64))),
        (
            "VM",
            XapiValue::string(reference(Class::Vm, vm_index as u64)),
        ),
        (
            "VDI",
            XapiValue::string(reference(Class::Vdi, vm_index as u64)),
        ),
        ("userdevice", XapiValue::string("0")),
        ("bootable", XapiValue::Bool(true)),
        ("mode", XapiValue::string("RW")),
        ("type", XapiValue::string("Disk")),
        ("empty", XapiValue::Bool(false)),
        ("other_config", XapiValue::Struct(BTreeMap::new())),
    ])
}

fn guest_metrics(cluster: &Cluster, vm_index: usize, discovered: &Discovered) -> XapiValue {
    let configured = &cluster.vms[vm_index];
    let running = discovered
        .vms
        .iter()
        .find(|vm| vm.name == configured.name)
        .is_some_and(|vm| vm.state == VmState::Running);
    let detected = configured.migratable;
    let pv_version = if detected {
        vec![
            ("major", "9".to_string()),
            ("minor", "4".to_string()),
            ("micro", "0".to_string()),
        ]
    } else {
        Vec::new()
    };
    record(vec![
        (
            "uuid",
            XapiValue::string(uuid(Class::GuestMetrics, vm_index as u64)),
        ),
        (
            "PV_drivers_version",
            XapiValue::Struct(
                pv_version
                    .into_iter()
                    .map(|(key, value)| (key.to_string(), XapiValue::String(value)))
                    .collect(),
            ),
        ),
        ("PV_drivers_detected", XapiValue::Bool(detected)),
        // Deprecated in favour of PV_drivers_detected, and "logically equivalent" to it.
        ("PV_drivers_up_to_date", XapiValue::Bool(detected)),
        ("live", XapiValue::Bool(running && detected)),
        ("other_config", XapiValue::Struct(BTreeMap::new())),
    ])
}

fn vm_group(cluster: &Cluster, index: usize, name: &str) -> XapiValue {
    let members = cluster
        .vms
        .iter()
        .enumerate()
        .filter(|(_, vm)| vm.anti_affinity.as_deref() == Some(name))
        .map(|(vm_index, _)| reference(Class::Vm, vm_index as u64));
    record(vec![
        (
            "uuid",
            XapiValue::string(uuid(Class::VmGroup, index as u64)),
        ),
        ("name_label", XapiValue::string(name)),
        ("name_description", XapiValue::string("")),
        ("placement", XapiValue::string("anti_affinity")),
        ("VMs", XapiValue::strings(members)),
    ])
}
