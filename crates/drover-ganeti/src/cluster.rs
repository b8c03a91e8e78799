//! Ganeti's nodes and instances as Drover's hosts and VMs: pure functions over the bulk answers
//! of `GET /2/nodes?bulk=1` (fields `N_FIELDS`, lib/rapi/rlib2.py), `GET /2/instances?bulk=1`
//! (`I_FIELDS`) and `GET /2/groups?bulk=1` (`G_FIELDS`).
//!
//! - A node's `role` is `M` (master), `C` (master candidate), `R`, `D` (drained) or `O` (offline)
//!   (`NodeRole`, src/Ganeti/Types.hs). The master is Drover's `Master`; a master candidate (or a
//!   node Drover drained that was one, tag [`TAG_WAS_CANDIDATE`]) is `Management`: candidates
//!   hold the cluster's configuration, so they go one at a time; any other node keeps the role
//!   the inventory gives it (else `Compute`).
//! - Memory is `mtotal` (MiB), CPUs `ctotal`. A node whose live fields are null did not answer
//!   its master (`mfree` is null) and is `Down`, as is an `offline` one.
//! - Cordoned = `drained`, or Drover's tag [`TAG_CORDONED`] (the master cannot be drained:
//!   "The master role can be changed only via master-failover"). In maintenance = tag
//!   [`TAG_MAINTENANCE`] (Ganeti has no maintenance state of its own).
//! - The node group is the fault domain: label `ganeti.group`.
//! - An instance runs when its `status` is `running` (`InstanceStatus`, src/Ganeti/Types.hs);
//!   memory is `beparams.maxmem`, vCPUs `beparams.vcpus`. Disk templates (`DiskTemplate`):
//!   externally mirrored ones (`dtsExtMirror`: diskless, blockdev, ext, sharedfile, rbd, gluster)
//!   migrate live to any node; `drbd` (`dtsIntMirror`) only to its secondary node; the others
//!   (`file`, `plain`) cannot move and are `local_storage` (shut down for the upgrade).
//!
//! This module knows RAPI's fields and Drover's model, and nothing of HTTP or jobs.

use std::collections::{BTreeMap, BTreeSet};

use drover_core::{Host, HostId, HostRole, HostState, RestartPolicy, Version, Vm, VmState};
use drover_driver::Discovered;
use serde_json::Value;

/// Node tag: Drover cordoned this node (and drained it, unless it is the master).
pub const TAG_CORDONED: &str = "drover:cordoned";
/// Node tag: the node was a master candidate when Drover drained it (draining demotes it).
pub const TAG_WAS_CANDIDATE: &str = "drover:was-master-candidate";
/// Node tag: Drover put the node in maintenance.
pub const TAG_MAINTENANCE: &str = "drover:maintenance";
/// The host label carrying the node group (the fault domain).
pub const GROUP_LABEL: &str = "ganeti.group";

/// Disk templates whose disks every node can reach (`dtsExtMirror`, src/Ganeti/Constants.hs).
const EXTERNALLY_MIRRORED: [&str; 6] = [
    "diskless",
    "blockdev",
    "ext",
    "sharedfile",
    "rbd",
    "gluster",
];
/// The internally mirrored template (`dtsIntMirror`): migrates to its secondary only.
pub const DRBD: &str = "drbd";

/// How an instance can leave its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mobility {
    /// Live migration to any node (`target_node` given).
    AnyNode,
    /// Live migration to its secondary node only (DRBD; no `target_node`).
    SecondaryOnly,
    /// Its disks are on its node: it cannot move.
    Fixed,
}

pub fn mobility_of(disk_template: &str) -> Mobility {
    if EXTERNALLY_MIRRORED.contains(&disk_template) {
        Mobility::AnyNode
    } else if disk_template == DRBD {
        Mobility::SecondaryOnly
    } else {
        Mobility::Fixed
    }
}

pub fn field<'a>(record: &'a Value, name: &str) -> &'a Value {
    record.get(name).unwrap_or(&Value::Null)
}

pub fn text<'a>(record: &'a Value, name: &str) -> &'a str {
    field(record, name).as_str().unwrap_or("")
}

pub fn flag(record: &Value, name: &str) -> bool {
    field(record, name).as_bool().unwrap_or(false)
}

pub fn has_tag(record: &Value, tag: &str) -> bool {
    field(record, "tags")
        .as_array()
        .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag)))
}

/// The state of one node as RAPI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    pub is_master: bool,
    pub is_candidate: bool,
    pub drained: bool,
    pub offline: bool,
    /// The node's daemon answered the master (its live fields are not null).
    pub answers: bool,
    pub cordoned: bool,
    pub in_maintenance: bool,
    pub primary_ip: String,
}

pub fn node_view(record: &Value) -> NodeView {
    let role = text(record, "role");
    let drained = flag(record, "drained");
    NodeView {
        name: text(record, "name").to_string(),
        is_master: role == "M",
        is_candidate: role == "M"
            || flag(record, "master_candidate")
            || has_tag(record, TAG_WAS_CANDIDATE),
        drained,
        offline: flag(record, "offline"),
        answers: !field(record, "mfree").is_null(),
        cordoned: drained || has_tag(record, TAG_CORDONED),
        in_maintenance: has_tag(record, TAG_MAINTENANCE),
        primary_ip: text(record, "pip").to_string(),
    }
}

/// The node that takes the master role from `master` before it is drained: the first master
/// candidate by name that answers its master and is neither drained, offline nor cordoned.
pub fn next_master(nodes: &[Value], master: &str) -> Option<NodeView> {
    let mut candidates: Vec<NodeView> = nodes
        .iter()
        .map(node_view)
        .filter(|node| {
            node.name != master
                && node.is_candidate
                && !node.is_master
                && !node.cordoned
                && !node.offline
                && node.answers
        })
        .collect();
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    candidates.into_iter().next()
}

/// The state of one instance as RAPI shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceView {
    pub name: String,
    pub primary: String,
    pub secondaries: Vec<String>,
    pub disk_template: String,
    pub running: bool,
    /// `admin_state` is `up`: Ganeti keeps (or restarts) it running.
    pub admin_up: bool,
    /// `beparams.always_failover`: the instance must not be live-migrated (a failover moves it).
    pub always_failover: bool,
    pub memory_mib: u64,
    pub vcpus: u32,
}

pub fn instance_view(record: &Value) -> InstanceView {
    let beparams = field(record, "beparams");
    let number = |name: &str| beparams.get(name).and_then(Value::as_u64);
    InstanceView {
        name: text(record, "name").to_string(),
        primary: text(record, "pnode").to_string(),
        secondaries: field(record, "snodes")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        disk_template: text(record, "disk_template").to_string(),
        running: text(record, "status") == "running",
        admin_up: text(record, "admin_state") == "up",
        always_failover: beparams
            .get("always_failover")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        memory_mib: number("maxmem").or_else(|| number("memory")).unwrap_or(0),
        vcpus: number("vcpus").map_or(1, |vcpus| u32::try_from(vcpus).unwrap_or(u32::MAX)),
    }
}

/// What discovery needs besides the bulk answers.
pub struct DiscoveryInputs<'a> {
    pub nodes: &'a [Value],
    pub instances: &'a [Value],
    pub groups: &'a [Value],
    /// Each node's version, from the `host_facts` command or the cluster's software version.
    pub versions: &'a BTreeMap<String, Version>,
    /// Roles the inventory gives hosts (used for nodes that are neither master nor candidate).
    pub inventory_roles: &'a BTreeMap<String, HostRole>,
}

pub fn discovered(inputs: &DiscoveryInputs) -> Result<Discovered, String> {
    let group_names: BTreeMap<&str, &str> = inputs
        .groups
        .iter()
        .map(|group| (text(group, "uuid"), text(group, "name")))
        .collect();
    let mut hosts = Vec::new();
    let mut index_of = BTreeMap::new();
    for record in inputs.nodes {
        let node = node_view(record);
        let version = inputs
            .versions
            .get(&node.name)
            .cloned()
            .ok_or_else(|| format!("node {}: no version", node.name))?;
        let role = if node.is_master {
            HostRole::Master
        } else if node.is_candidate {
            HostRole::Management
        } else {
            match inputs.inventory_roles.get(&node.name) {
                Some(HostRole::Master) | None => HostRole::Compute,
                Some(role) => *role,
            }
        };
        let mut labels = BTreeMap::new();
        if let Some(group) = group_names.get(text(record, "group.uuid")) {
            labels.insert(GROUP_LABEL.to_string(), group.to_string());
        }
        index_of.insert(node.name.clone(), hosts.len());
        hosts.push(Host {
            name: node.name.clone(),
            role,
            version,
            memory_mib: field(record, "mtotal").as_u64().unwrap_or(0),
            cpus: field(record, "ctotal")
                .as_u64()
                .map_or(0, |cpus| u32::try_from(cpus).unwrap_or(u32::MAX)),
            state: if node.offline || !node.answers {
                HostState::Down
            } else if node.in_maintenance {
                HostState::Maintenance
            } else {
                HostState::Up
            },
            cordoned: node.cordoned,
            labels,
        });
    }
    let mut vms = Vec::new();
    let mut seen = BTreeSet::new();
    for record in inputs.instances {
        let instance = instance_view(record);
        let Some(&host_index) = index_of.get(&instance.primary) else {
            continue;
        };
        if !seen.insert(instance.name.clone()) {
            continue;
        }
        let mobility = mobility_of(&instance.disk_template);
        let allowed_hosts = allowed_hosts(&instance, mobility, &index_of);
        vms.push(Vm {
            name: instance.name,
            host: HostId(host_index as u32),
            memory_mib: instance.memory_mib,
            vcpus: instance.vcpus,
            state: if instance.running {
                VmState::Running
            } else {
                VmState::Stopped
            },
            migratable: mobility != Mobility::Fixed,
            local_storage: mobility == Mobility::Fixed,
            unmovable: None,
            restart_policy: RestartPolicy::Manual,
            anti_affinity: None,
            allowed_hosts,
        });
    }
    Ok(Discovered {
        hosts,
        vms,
        // Ganeti has no pool setting that blocks a roll.
        settings: None,
    })
}

/// The hosts a DRBD instance may run on: its primary and its secondary (a move swaps them); any
/// host for the other templates. `None` when a node of the pair is not in the cluster's view.
fn allowed_hosts(
    instance: &InstanceView,
    mobility: Mobility,
    index_of: &BTreeMap<String, usize>,
) -> Option<Vec<HostId>> {
    if mobility != Mobility::SecondaryOnly {
        return None;
    }
    let mut pair: Vec<HostId> = std::iter::once(&instance.primary)
        .chain(&instance.secondaries)
        .map(|node| index_of.get(node).map(|&index| HostId(index as u32)))
        .collect::<Option<_>>()?;
    pair.sort();
    pair.dedup();
    Some(pair)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, role: &str, extra: Value) -> Value {
        let mut record = json!({
            "name": name, "role": role, "offline": false, "drained": role == "D",
            "master_candidate": role == "C" || role == "M", "mtotal": 4096, "mfree": 3000,
            "ctotal": 4, "pip": "10.0.0.1", "group.uuid": "g1", "tags": []
        });
        if let (Value::Object(record), Value::Object(extra)) = (&mut record, extra) {
            record.extend(extra);
        }
        record
    }

    fn instance(name: &str, pnode: &str, template: &str, status: &str) -> Value {
        json!({
            "name": name, "pnode": pnode, "snodes": [], "disk_template": template,
            "status": status, "admin_state": "up",
            "beparams": {"maxmem": 256, "memory": 256, "vcpus": 2, "always_failover": false}
        })
    }

    #[test]
    fn the_master_role_goes_to_the_first_candidate_that_answers_and_is_not_cordoned() {
        let nodes = vec![
            node("n1", "M", json!({})),
            node("n2", "C", json!({"mfree": null})),
            node("n3", "C", json!({"tags": [TAG_CORDONED]})),
            node(
                "n4",
                "D",
                json!({"tags": [TAG_CORDONED, TAG_WAS_CANDIDATE]}),
            ),
            node("n5", "R", json!({})),
            node("n7", "C", json!({})),
            node("n6", "C", json!({})),
        ];
        assert_eq!(
            next_master(&nodes, "n1").map(|node| node.name),
            Some("n6".into())
        );
        // Without an eligible candidate, nobody: the master keeps its role (and is only tagged).
        assert_eq!(next_master(&nodes[..5], "n1"), None);
    }

    #[test]
    fn roles_states_and_templates_map_onto_the_model() {
        let nodes = vec![
            node("n1", "M", json!({})),
            node("n2", "C", json!({})),
            node("n3", "R", json!({"tags": [TAG_MAINTENANCE]})),
            node(
                "n4",
                "D",
                json!({"tags": [TAG_CORDONED, TAG_WAS_CANDIDATE]}),
            ),
            node("n5", "O", json!({"offline": true, "mfree": null})),
        ];
        let instances = vec![
            instance("a", "n1", "sharedfile", "running"),
            instance("b", "n2", "file", "running"),
            instance("c", "n2", "drbd", "ADMIN_down"),
        ];
        let groups = vec![json!({"uuid": "g1", "name": "rack1"})];
        let versions = ["n1", "n2", "n3", "n4", "n5"]
            .iter()
            .map(|name| (name.to_string(), "1.0".parse().unwrap()))
            .collect();
        let discovered = discovered(&DiscoveryInputs {
            nodes: &nodes,
            instances: &instances,
            groups: &groups,
            versions: &versions,
            inventory_roles: &BTreeMap::new(),
        })
        .unwrap();
        let roles: Vec<HostRole> = discovered.hosts.iter().map(|h| h.role).collect();
        assert_eq!(
            roles,
            [
                HostRole::Master,
                HostRole::Management,
                HostRole::Compute,
                HostRole::Management,
                HostRole::Compute
            ]
        );
        let states: Vec<HostState> = discovered.hosts.iter().map(|h| h.state).collect();
        assert_eq!(
            states,
            [
                HostState::Up,
                HostState::Up,
                HostState::Maintenance,
                HostState::Up,
                HostState::Down
            ]
        );
        assert!(discovered.hosts[3].cordoned && !discovered.hosts[1].cordoned);
        assert_eq!(discovered.hosts[0].labels[GROUP_LABEL], "rack1");
        let a = &discovered.vms[0];
        assert!(a.migratable && !a.local_storage && a.memory_mib == 256 && a.vcpus == 2);
        let b = &discovered.vms[1];
        assert!(!b.migratable && b.local_storage && b.state == VmState::Running);
        let c = &discovered.vms[2];
        assert!(c.migratable && c.state == VmState::Stopped);
    }

    #[test]
    fn templates_are_ganetis_mirroring_classes() {
        assert_eq!(mobility_of("diskless"), Mobility::AnyNode);
        assert_eq!(mobility_of("sharedfile"), Mobility::AnyNode);
        assert_eq!(mobility_of("drbd"), Mobility::SecondaryOnly);
        assert_eq!(mobility_of("plain"), Mobility::Fixed);
        assert_eq!(mobility_of("file"), Mobility::Fixed);
    }

    #[test]
    fn a_drbd_instance_may_run_on_its_primary_and_secondary_only() {
        let index_of = BTreeMap::from([
            ("n1".to_string(), 0),
            ("n2".to_string(), 1),
            ("n3".to_string(), 2),
        ]);
        let mut drbd = instance_view(&instance("d", "n3", "drbd", "running"));
        drbd.secondaries = vec!["n1".to_string()];
        assert_eq!(
            allowed_hosts(&drbd, Mobility::SecondaryOnly, &index_of),
            Some(vec![HostId(0), HostId(2)])
        );
        let shared = instance_view(&instance("s", "n1", "sharedfile", "running"));
        assert_eq!(allowed_hosts(&shared, Mobility::AnyNode, &index_of), None);
        drbd.secondaries = vec!["gone".to_string()];
        assert_eq!(
            allowed_hosts(&drbd, Mobility::SecondaryOnly, &index_of),
            None
        );
    }
}
