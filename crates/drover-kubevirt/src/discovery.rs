//! Reads the cluster's objects (Nodes, VirtualMachineInstances, VirtualMachines, as JSON) into
//! Drover's model:
//! - a Node is a host: `status.allocatable` memory and CPU (Kubernetes quantities), the version
//!   from `status.nodeInfo.osImage`'s last word (`Red Hat Enterprise Linux CoreOS 4.16.3`: what
//!   OpenShift updates) or else `kubeletVersion` without its `v`, `status.nodeInfo.bootID`,
//!   `spec.unschedulable` as cordoned, the `Ready` condition (not True: down), Drover's own
//!   maintenance annotation, `node-role.kubernetes.io/control-plane` or `master` as a
//!   management host, `topology.kubernetes.io/zone` as the host label `zone` (the fault domain);
//! - a running VMI is a VM named `NAMESPACE/NAME` (`NAME` in `default`) on `status.nodeName`, with the memory it
//!   requests (`spec.domain.resources.requests.memory`, else `spec.domain.memory.guest`), its
//!   vCPUs (`spec.domain.cpu` cores × sockets × threads), migratable when its `LiveMigratable`
//!   condition is True and its `evictionStrategy` is not `None`, on local storage when that
//!   condition's reason is `DisksNotLiveMigratable`, restarted by the platform when its owning
//!   VM's `runStrategy` is Always or RerunOnFailure, its anti-affinity group from the required
//!   pod anti-affinity terms (their `matchLabels`, as `key=value`), and its allowed hosts from
//!   `spec.nodeSelector` and the required node affinity, evaluated against the nodes' labels;
//! - a VM without a running VMI is a stopped VM, placed on the node Drover stopped it on (the VM's
//!   [`LAST_NODE_ANNOTATION`]), else on the first node.
//!
//! This module must not know HTTP or kube-rs: it reads JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use drover_core::{Host, HostId, HostRole, HostState, RestartPolicy, Version, Vm, VmState};
use drover_driver::Discovered;
use serde_json::Value;

/// The node annotation Drover sets while it holds a node in maintenance (cordoned and drained).
pub const MAINTENANCE_ANNOTATION: &str = "drover.io/maintenance";
/// The node annotation saying Drover cordoned the node (so only Drover's cordon is undone).
pub const CORDONED_ANNOTATION: &str = "drover.io/cordoned";
/// The VM annotation naming the node Drover stopped it on.
pub const LAST_NODE_ANNOTATION: &str = "drover.io/last-node";
/// The well-known zone label (k8s.io/api `core/v1` `LabelTopologyZone`).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Drover's name of a VM: `NAME` in the `default` namespace, else `NAMESPACE/NAME` (a
/// Kubernetes name has no `/`, so the two never meet).
pub fn vm_name(namespace: &str, name: &str) -> String {
    if namespace == "default" {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

/// The namespace and name of a Drover VM name (`default` when it has no namespace).
pub fn split_vm_name(vm: &str) -> (&str, &str) {
    vm.split_once('/').unwrap_or(("default", vm))
}

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut current = value;
    for part in path {
        current = &current[*part];
    }
    current.as_str().unwrap_or("")
}

/// A memory quantity (`16777216Ki`, `4Gi`, `4096Mi`, `2G`, bytes) in MiB, rounded down.
pub fn quantity_mib(quantity: &str) -> Option<u64> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(quantity.len());
    let (number, unit) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    let bytes_per_unit: f64 = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some((number * bytes_per_unit / (1024.0 * 1024.0)) as u64)
}

/// A CPU quantity (`8`, `7500m`) in whole CPUs, rounded down.
pub fn quantity_cpus(quantity: &str) -> Option<u32> {
    match quantity.strip_suffix('m') {
        Some(millis) => millis
            .parse::<u64>()
            .ok()
            .map(|millis| (millis / 1000) as u32),
        None => quantity
            .parse::<f64>()
            .ok()
            .map(|cpus| cpus.max(0.0) as u32),
    }
}

/// The node's version: `osImage`'s last word when it is a version, else `kubeletVersion`.
pub fn node_version(node: &Value) -> Option<Version> {
    let os_image = text(node, &["status", "nodeInfo", "osImage"]);
    os_image
        .split_whitespace()
        .last()
        .and_then(|word| word.parse::<Version>().ok())
        .or_else(|| {
            text(node, &["status", "nodeInfo", "kubeletVersion"])
                .trim_start_matches('v')
                .split(['+', '-'])
                .next()
                .and_then(|version| version.parse::<Version>().ok())
        })
}

fn unknown_version() -> Version {
    Version::from_str("0").unwrap_or_else(|_| unreachable!("0 is a dotted-number version"))
}

/// Whether the node's `Ready` condition is True.
pub fn node_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
}

/// Whether Drover holds the node in maintenance.
pub fn node_in_maintenance(node: &Value) -> bool {
    node["metadata"]["annotations"][MAINTENANCE_ANNOTATION] == "true"
}

/// `spec.unschedulable`.
pub fn node_cordoned(node: &Value) -> bool {
    node["spec"]["unschedulable"].as_bool().unwrap_or(false)
}

/// One node as a host.
pub fn node_host(node: &Value) -> Host {
    let labels = node["metadata"]["labels"].as_object();
    let has_label = |key: &str| labels.is_some_and(|labels| labels.contains_key(key));
    let role = if has_label("node-role.kubernetes.io/control-plane")
        || has_label("node-role.kubernetes.io/master")
    {
        HostRole::Management
    } else {
        HostRole::Compute
    };
    let mut host_labels = BTreeMap::new();
    if let Some(zone) = labels
        .and_then(|labels| labels.get(ZONE_LABEL))
        .and_then(Value::as_str)
    {
        host_labels.insert("zone".to_string(), zone.to_string());
    }
    let allocatable = &node["status"]["allocatable"];
    let state = if !node_ready(node) {
        HostState::Down
    } else if node_in_maintenance(node) {
        HostState::Maintenance
    } else {
        HostState::Up
    };
    Host {
        name: text(node, &["metadata", "name"]).to_string(),
        role,
        // A node that reports no version at all is older than any target.
        version: node_version(node).unwrap_or_else(unknown_version),
        memory_mib: quantity_mib(allocatable["memory"].as_str().unwrap_or("0")).unwrap_or(0),
        cpus: quantity_cpus(allocatable["cpu"].as_str().unwrap_or("0")).unwrap_or(0),
        state,
        cordoned: node_cordoned(node),
        labels: host_labels,
    }
}

/// Whether a node with `labels` satisfies one node selector requirement
/// (`In`, `NotIn`, `Exists`, `DoesNotExist`; `Gt`/`Lt` compare integers).
pub(crate) fn requirement_holds(
    requirement: &Value,
    labels: &serde_json::Map<String, Value>,
) -> bool {
    let key = text(requirement, &["key"]);
    let found = labels.get(key).and_then(Value::as_str);
    let values: Vec<&str> = requirement["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match text(requirement, &["operator"]) {
        "In" => found.is_some_and(|found| values.contains(&found)),
        "NotIn" => found.is_none_or(|found| !values.contains(&found)),
        "Exists" => found.is_some(),
        "DoesNotExist" => found.is_none(),
        "Gt" | "Lt" => {
            let number = |text: Option<&str>| text.and_then(|text| text.parse::<i64>().ok());
            match (number(found), number(values.first().copied())) {
                (Some(found), Some(bound)) if text(requirement, &["operator"]) == "Gt" => {
                    found > bound
                }
                (Some(found), Some(bound)) => found < bound,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether a VMI's `spec` lets it run on a node with `labels`: `nodeSelector` and the required
/// node affinity (its terms are ORed, each term's expressions ANDed).
pub fn node_allowed(spec: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let selector_holds = spec["nodeSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"]
        .as_array();
    let affinity_holds = match terms {
        None => true,
        Some(terms) => terms.iter().any(|term| {
            term["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|requirement| requirement_holds(requirement, labels))
        }),
    };
    selector_holds && affinity_holds
}

fn has_node_constraints(spec: &Value) -> bool {
    spec["nodeSelector"]
        .as_object()
        .is_some_and(|selector| !selector.is_empty())
        || !spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            .is_null()
}

/// The anti-affinity group of a VMI: its required pod anti-affinity terms' `matchLabels` as
/// sorted `key=value` pairs joined by `,` (`None` without such a term).
pub fn anti_affinity_group(spec: &Value) -> Option<String> {
    let terms = spec["affinity"]["podAntiAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]
        .as_array()?;
    let pairs: BTreeSet<String> = terms
        .iter()
        .flat_map(|term| {
            term["labelSelector"]["matchLabels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
        })
        .collect();
    (!pairs.is_empty()).then(|| pairs.into_iter().collect::<Vec<_>>().join(","))
}

/// The `LiveMigratable` condition: whether it is True, and its reason.
pub fn live_migratable(vmi: &Value) -> (bool, String) {
    vmi["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|condition| condition["type"] == "LiveMigratable")
        .map_or((false, String::new()), |condition| {
            (
                condition["status"] == "True",
                text(condition, &["reason"]).to_string(),
            )
        })
}

fn vm_memory_mib(spec: &Value) -> u64 {
    let domain = &spec["domain"];
    [
        text(domain, &["resources", "requests", "memory"]),
        text(domain, &["memory", "guest"]),
    ]
    .into_iter()
    .find_map(quantity_mib)
    .unwrap_or(0)
}

fn vm_vcpus(spec: &Value) -> u32 {
    let cpu = &spec["domain"]["cpu"];
    let part = |name: &str| cpu[name].as_u64().unwrap_or(1).max(1);
    (part("cores") * part("sockets") * part("threads")) as u32
}

fn restart_policy(vm: Option<&Value>) -> RestartPolicy {
    let run_strategy = vm
        .map(|vm| {
            let spec = text(vm, &["spec", "runStrategy"]);
            if spec.is_empty() {
                // Before runStrategy: `spec.running: true` means Always.
                if vm["spec"]["running"] == true {
                    "Always"
                } else {
                    ""
                }
            } else {
                spec
            }
        })
        .unwrap_or("");
    match run_strategy {
        "Always" | "RerunOnFailure" => RestartPolicy::Always,
        _ => RestartPolicy::Manual,
    }
}

/// The whole cluster as Drover sees it.
pub fn discover(nodes: &[Value], vmis: &[Value], vms: &[Value]) -> Discovered {
    let hosts: Vec<Host> = nodes.iter().map(node_host).collect();
    let index_of = |name: &str| hosts.iter().position(|host| host.name == name);
    let empty = serde_json::Map::new();
    let node_labels: Vec<&serde_json::Map<String, Value>> = nodes
        .iter()
        .map(|node| node["metadata"]["labels"].as_object().unwrap_or(&empty))
        .collect();
    let vm_objects: BTreeMap<String, &Value> = vms
        .iter()
        .map(|vm| {
            (
                vm_name(
                    text(vm, &["metadata", "namespace"]),
                    text(vm, &["metadata", "name"]),
                ),
                vm,
            )
        })
        .collect();
    let mut discovered_vms = Vec::new();
    let mut running = BTreeSet::new();
    for vmi in vmis {
        if text(vmi, &["status", "phase"]) != "Running" {
            continue;
        }
        let Some(host) = index_of(text(vmi, &["status", "nodeName"])) else {
            continue;
        };
        let name = vm_name(
            text(vmi, &["metadata", "namespace"]),
            text(vmi, &["metadata", "name"]),
        );
        let spec = &vmi["spec"];
        let (migratable, reason) = live_migratable(vmi);
        let eviction_none = text(spec, &["evictionStrategy"]) == "None";
        let allowed_hosts = has_node_constraints(spec).then(|| {
            (0..hosts.len())
                .filter(|index| node_allowed(spec, node_labels[*index]))
                .map(|index| HostId(index as u32))
                .collect::<Vec<_>>()
        });
        running.insert(name.clone());
        discovered_vms.push(Vm {
            name: name.clone(),
            host: HostId(host as u32),
            memory_mib: vm_memory_mib(spec),
            vcpus: vm_vcpus(spec),
            state: VmState::Running,
            migratable: migratable && !eviction_none,
            local_storage: reason == "DisksNotLiveMigratable",
            unmovable: None,
            restart_policy: restart_policy(vm_objects.get(&name).copied()),
            anti_affinity: anti_affinity_group(spec),
            allowed_hosts,
        });
    }
    for (name, vm) in &vm_objects {
        if running.contains(name) || hosts.is_empty() {
            continue;
        }
        let spec = &vm["spec"]["template"]["spec"];
        let last_node = text(vm, &["metadata", "annotations", LAST_NODE_ANNOTATION]);
        discovered_vms.push(Vm {
            name: name.clone(),
            host: HostId(index_of(last_node).unwrap_or(0) as u32),
            memory_mib: vm_memory_mib(spec),
            vcpus: vm_vcpus(spec),
            state: VmState::Stopped,
            migratable: false,
            local_storage: false,
            unmovable: None,
            restart_policy: restart_policy(Some(vm)),
            anti_affinity: anti_affinity_group(spec),
            allowed_hosts: None,
        });
    }
    Discovered {
        hosts,
        vms: discovered_vms,
        settings: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        assert_eq!(quantity_mib("16777216Ki"), Some(16_384));
        assert_eq!(quantity_mib("4Gi"), Some(4_096));
        assert_eq!(quantity_mib("1048576"), Some(1));
        assert_eq!(quantity_mib("2G"), Some(1_907));
        assert_eq!(quantity_mib("12Zi"), None);
        assert_eq!(quantity_cpus("7500m"), Some(7));
        assert_eq!(quantity_cpus("8"), Some(8));
    }

    #[test]
    fn the_version_comes_from_the_os_image_else_the_kubelet() {
        let node = |os: &str, kubelet: &str| json!({"status": {"nodeInfo": {"osImage": os, "kubeletVersion": kubelet}}});
        assert_eq!(
            node_version(&node(
                "Red Hat Enterprise Linux CoreOS 4.16.3",
                "v1.29.8+f10c92d"
            )),
            "4.16.3".parse().ok()
        );
        assert_eq!(
            node_version(&node("Ubuntu 22.04.4 LTS", "v1.30.2")),
            "1.30.2".parse().ok()
        );
    }

    #[test]
    fn node_affinity_and_anti_affinity_become_allowed_hosts_and_a_group() {
        let nodes = vec![
            json!({"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a", ZONE_LABEL: "z1"}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"memory": "8Gi", "cpu": "4"}}}),
            json!({"metadata": {"name": "b", "labels": {"kubernetes.io/hostname": "b"}},
                "spec": {"unschedulable": true},
                "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"memory": "8Gi", "cpu": "4"}}}),
        ];
        let vmi = json!({"metadata": {"name": "web", "namespace": "apps"},
            "spec": {"domain": {"resources": {"requests": {"memory": "2Gi"}}, "cpu": {"cores": 2}},
                "evictionStrategy": "LiveMigrate",
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["b"]}]}]}},
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "etcd"}}, "topologyKey": "kubernetes.io/hostname"}]}}},
            "status": {"phase": "Running", "nodeName": "b",
                "conditions": [{"type": "LiveMigratable", "status": "True"}]}});
        let vm = json!({"metadata": {"name": "web", "namespace": "apps"}, "spec": {"runStrategy": "Always"}});
        let discovered = discover(&nodes, &[vmi], &[vm]);
        assert_eq!(
            discovered.hosts[0].labels.get("zone").map(String::as_str),
            Some("z1")
        );
        assert!(discovered.hosts[1].cordoned);
        let web = &discovered.vms[0];
        assert_eq!(web.name, "apps/web");
        assert_eq!(web.host, HostId(1));
        assert_eq!((web.memory_mib, web.vcpus), (2048, 2));
        assert!(web.migratable);
        assert_eq!(web.restart_policy, RestartPolicy::Always);
        assert_eq!(web.allowed_hosts, Some(vec![HostId(1)]));
        assert_eq!(web.anti_affinity.as_deref(), Some("app=etcd"));
    }

    #[test]
    fn eviction_strategy_none_and_local_disks_are_not_migratable() {
        let nodes = vec![json!({"metadata": {"name": "a"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}})];
        let vmi = |name: &str, strategy: &str, status: &str, reason: &str| {
            json!({"metadata": {"name": name, "namespace": "default"},
                "spec": {"evictionStrategy": strategy},
                "status": {"phase": "Running", "nodeName": "a",
                    "conditions": [{"type": "LiveMigratable", "status": status, "reason": reason}]}})
        };
        let discovered = discover(
            &nodes,
            &[
                vmi("none", "None", "True", ""),
                vmi("local", "None", "False", "DisksNotLiveMigratable"),
            ],
            &[],
        );
        assert!(!discovered.vms[0].migratable);
        assert!(!discovered.vms[0].local_storage);
        assert!(discovered.vms[1].local_storage);
        assert_eq!(discovered.vms[1].restart_policy, RestartPolicy::Manual);
    }
}
