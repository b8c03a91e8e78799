//! What a guest's `VM` record alone does not say, read from the objects around it, and the
//! guest as Drover's model sees it ([`guest`]):
//! - `local_storage`: one of its disks (a `VBD` of `type` `Disk`, not `empty`) is a `VDI` on an
//!   `SR` whose `shared` is false, so it cannot move live to another host;
//! - `migratable`: a running guest moves live only when `pool_migrate` is in its
//!   `allowed_operations` and its `VM_guest_metrics.PV_drivers_detected` is true (xapi refuses a
//!   guest without PV drivers with `VM_LACKS_FEATURE`);
//! - `restart_policy`: `ha_restart_priority` `restart` or `best-effort` (HA restarts the guest
//!   elsewhere) is Drover's `always`, `""` is `manual`;
//! - `anti_affinity`: the `name_label` of a `VM_group` in its `groups` whose `placement` is
//!   `anti_affinity` (XenServer 8.4; a server without VM groups has none).
//!
//! Every class and field is named as xapi-project/xen-api names it: `ocaml/idl/datamodel.ml`
//! (`SR.shared`, `VDI.SR`, `VBD.VDI`/`type`/`empty` with `vbd_type` CD|Disk|Floppy,
//! `VM_guest_metrics.PV_drivers_detected`), `datamodel_vm.ml` (`VM.VBDs`, `VM.guest_metrics`,
//! `VM.groups`, `VM.ha_restart_priority`), `datamodel_vm_group.ml` (`VM_group.placement`,
//! `placement_policy` anti_affinity|normal).
//!
//! This module must not know the wire, sessions or the driver contract's calls: it reads records.

use std::collections::BTreeMap;

use drover_core::{HostId, RestartPolicy, Vm, VmState};
use serde_json::{Map, Value};

/// One XAPI record.
pub type Record = Map<String, Value>;

/// All records of one class, ref → record.
#[derive(Default)]
pub struct Records(pub BTreeMap<String, Record>);

impl Records {
    fn get(&self, reference: &str) -> Option<&Record> {
        self.0.get(reference)
    }
}

/// The objects around the pool's guests.
#[derive(Default)]
pub struct Surroundings {
    pub storage_repositories: Records,
    pub disk_images: Records,
    pub block_devices: Records,
    pub guest_metrics: Records,
    /// Empty on a server older than VM groups.
    pub vm_groups: Records,
}

fn field<'a>(record: &'a Record, name: &str) -> &'a Value {
    record.get(name).unwrap_or(&Value::Null)
}

fn text<'a>(record: &'a Record, name: &str) -> &'a str {
    field(record, name).as_str().unwrap_or("")
}

/// XAPI booleans: JSON booleans; also accepted as the strings some proxies turn them into.
fn flag(record: &Record, name: &str) -> bool {
    match field(record, name) {
        Value::Bool(flag) => *flag,
        Value::String(text) => text == "true" || text == "1",
        _ => false,
    }
}

fn refs<'a>(record: &'a Record, name: &str) -> impl Iterator<Item = &'a str> {
    field(record, name)
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// XAPI integers: numbers over JSON-RPC, strings over XML-RPC; both accepted.
fn number(record: &Record, name: &str) -> u64 {
    match field(record, name) {
        Value::Number(number) => number.as_u64().unwrap_or(0),
        Value::String(text) => text.parse().unwrap_or(0),
        _ => 0,
    }
}

const MIB: u64 = 1024 * 1024;

impl Surroundings {
    /// Whether one of the guest's disks is on an SR that is not shared. A disk whose VDI or SR
    /// the server does not list is taken as local: moving it live could not be promised.
    pub fn local_storage(&self, vm: &Record) -> bool {
        refs(vm, "VBDs")
            .filter_map(|vbd| self.block_devices.get(vbd))
            .filter(|vbd| text(vbd, "type") == "Disk" && !flag(vbd, "empty"))
            .any(|vbd| {
                let sr = self
                    .disk_images
                    .get(text(vbd, "VDI"))
                    .and_then(|vdi| self.storage_repositories.get(text(vdi, "SR")));
                !sr.is_some_and(|sr| flag(sr, "shared"))
            })
    }

    /// `VM_guest_metrics.PV_drivers_detected` of the guest; false without guest metrics.
    pub fn pv_drivers_detected(&self, vm: &Record) -> bool {
        self.guest_metrics
            .get(text(vm, "guest_metrics"))
            .is_some_and(|metrics| flag(metrics, "PV_drivers_detected"))
    }

    /// The first of the guest's VM groups with the anti-affinity placement.
    pub fn anti_affinity_group(&self, vm: &Record) -> Option<String> {
        refs(vm, "groups")
            .filter_map(|group| self.vm_groups.get(group))
            .find(|group| text(group, "placement") == "anti_affinity")
            .map(|group| text(group, "name_label").to_string())
    }
}

/// A guest VM (not a control domain, template or snapshot).
pub fn is_guest(record: &Record) -> bool {
    !flag(record, "is_control_domain")
        && !flag(record, "is_a_template")
        && !flag(record, "is_a_snapshot")
}

/// The guest `record` as Drover's VM, placed on `host`.
pub fn guest(record: &Record, host: HostId, surroundings: &Surroundings) -> Vm {
    let running = text(record, "power_state") == "Running";
    let may_pool_migrate = refs(record, "allowed_operations").any(|op| op == "pool_migrate");
    Vm {
        name: text(record, "name_label").to_string(),
        host,
        memory_mib: number(record, "memory_static_max") / MIB,
        vcpus: u32::try_from(number(record, "VCPUs_max")).unwrap_or(u32::MAX),
        state: if running {
            VmState::Running
        } else {
            VmState::Stopped
        },
        // A halted VM's allowed_operations never list pool_migrate and its guest metrics are
        // stale: only a running VM's say whether it can move live.
        migratable: !running || (may_pool_migrate && surroundings.pv_drivers_detected(record)),
        local_storage: surroundings.local_storage(record),
        unmovable: None,
        restart_policy: match text(record, "ha_restart_priority") {
            "restart" | "best-effort" => RestartPolicy::Always,
            _ => RestartPolicy::Manual,
        },
        anti_affinity: surroundings.anti_affinity_group(record),
        allowed_hosts: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records(value: Value) -> Records {
        let Value::Object(map) = value else {
            panic!("a map")
        };
        Records(
            map.into_iter()
                .map(|(reference, record)| match record {
                    Value::Object(record) => (reference, record),
                    _ => panic!("a record"),
                })
                .collect(),
        )
    }

    fn record(value: Value) -> Record {
        match value {
            Value::Object(record) => record,
            _ => panic!("a record"),
        }
    }

    /// `local` has a disk on a host's local SR and an empty CD drive; `shared` its disk on the
    /// pool's SR and an ISO from a local ISO SR (a CD, which is not a disk).
    fn surroundings() -> Surroundings {
        Surroundings {
            storage_repositories: records(json!({
                "OpaqueRef:sr-nfs": {"shared": true, "type": "nfs"},
                "OpaqueRef:sr-local": {"shared": false, "type": "ext"},
                "OpaqueRef:sr-iso": {"shared": false, "type": "iso"},
            })),
            disk_images: records(json!({
                "OpaqueRef:vdi-local": {"SR": "OpaqueRef:sr-local"},
                "OpaqueRef:vdi-shared": {"SR": "OpaqueRef:sr-nfs"},
                "OpaqueRef:vdi-iso": {"SR": "OpaqueRef:sr-iso"},
            })),
            block_devices: records(json!({
                "OpaqueRef:vbd-1": {"type": "Disk", "empty": false, "VDI": "OpaqueRef:vdi-local"},
                "OpaqueRef:vbd-2": {"type": "CD", "empty": true, "VDI": "OpaqueRef:NULL"},
                "OpaqueRef:vbd-3": {"type": "Disk", "empty": false, "VDI": "OpaqueRef:vdi-shared"},
                "OpaqueRef:vbd-4": {"type": "CD", "empty": false, "VDI": "OpaqueRef:vdi-iso"},
            })),
            guest_metrics: records(json!({
                "OpaqueRef:gm-tools": {"PV_drivers_detected": true},
                "OpaqueRef:gm-none": {"PV_drivers_detected": false},
            })),
            vm_groups: records(json!({
                "OpaqueRef:group-etcd": {"name_label": "etcd", "placement": "anti_affinity"},
                "OpaqueRef:group-plain": {"name_label": "plain", "placement": "normal"},
            })),
        }
    }

    fn running_vm(extra: Value) -> Record {
        let mut vm = record(json!({
            "name_label": "vm",
            "power_state": "Running",
            "memory_static_max": "4294967296",
            "VCPUs_max": 2,
            "allowed_operations": ["pool_migrate", "clean_shutdown"],
            "guest_metrics": "OpaqueRef:gm-tools",
            "VBDs": ["OpaqueRef:vbd-3"],
            "groups": [],
            "ha_restart_priority": "",
        }));
        vm.extend(record(extra));
        vm
    }

    #[test]
    fn a_disk_on_an_sr_that_is_not_shared_makes_the_vm_local_storage() {
        let around = surroundings();
        let local = guest(
            &running_vm(json!({"VBDs": ["OpaqueRef:vbd-1", "OpaqueRef:vbd-2"]})),
            HostId(0),
            &around,
        );
        assert!(local.local_storage);
        let shared = guest(
            &running_vm(json!({"VBDs": ["OpaqueRef:vbd-3", "OpaqueRef:vbd-4"]})),
            HostId(0),
            &around,
        );
        assert!(
            !shared.local_storage,
            "a CD on a local ISO SR is not a disk"
        );
        assert_eq!((shared.memory_mib, shared.vcpus), (4096, 2));
        let unknown = guest(
            &running_vm(json!({"VBDs": ["OpaqueRef:vbd-unlisted"]})),
            HostId(0),
            &around,
        );
        assert!(
            !unknown.local_storage,
            "a VBD the server does not list is no disk"
        );
    }

    #[test]
    fn a_guest_moves_live_only_with_pool_migrate_allowed_and_pv_drivers() {
        let around = surroundings();
        assert!(guest(&running_vm(json!({})), HostId(0), &around).migratable);
        let no_drivers = running_vm(json!({"guest_metrics": "OpaqueRef:gm-none"}));
        assert!(!guest(&no_drivers, HostId(0), &around).migratable);
        let no_metrics = running_vm(json!({"guest_metrics": "OpaqueRef:NULL"}));
        assert!(!guest(&no_metrics, HostId(0), &around).migratable);
        let not_allowed = running_vm(json!({"allowed_operations": ["clean_shutdown"]}));
        assert!(!guest(&not_allowed, HostId(0), &around).migratable);
        let halted = running_vm(
            json!({"power_state": "Halted", "allowed_operations": ["start"], "guest_metrics": "OpaqueRef:NULL"}),
        );
        let halted = guest(&halted, HostId(0), &around);
        assert_eq!(halted.state, VmState::Stopped);
        assert!(
            halted.migratable,
            "a halted VM is not held back by live-migration checks"
        );
    }

    #[test]
    fn ha_restart_priority_and_anti_affinity_groups_are_read() {
        let around = surroundings();
        for (priority, policy) in [
            ("restart", RestartPolicy::Always),
            ("best-effort", RestartPolicy::Always),
            ("", RestartPolicy::Manual),
        ] {
            let vm = running_vm(json!({"ha_restart_priority": priority}));
            assert_eq!(guest(&vm, HostId(0), &around).restart_policy, policy);
        }
        let grouped =
            running_vm(json!({"groups": ["OpaqueRef:group-plain", "OpaqueRef:group-etcd"]}));
        assert_eq!(
            guest(&grouped, HostId(0), &around).anti_affinity.as_deref(),
            Some("etcd")
        );
        let plain = running_vm(json!({"groups": ["OpaqueRef:group-plain"]}));
        assert_eq!(guest(&plain, HostId(0), &around).anti_affinity, None);
    }
}
