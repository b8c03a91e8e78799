//! oVirt's placement rules as Drover's constraints, pure: the cluster's affinity groups
//! (`types/AffinityGroup.java`: `vms_rule` and `hosts_rule`, each an `AffinityRule.java` with
//! `enabled`, `positive`, `enforcing`; the deprecated group-level `positive`/`enforcing` for an
//! engine before 4.1; `vms`, `hosts`) and a VM's `placement_policy.hosts`
//! (`VmPlacementPolicy.java`).
//! - a negative, enforcing VM rule is an anti-affinity group (the planner keeps its members on
//!   different hosts);
//! - a positive, enforcing host rule: the VM may run only on the group's hosts; a negative,
//!   enforcing host rule: never on them; a VM's own `placement_policy.hosts` (the engine's
//!   "Specific Host(s)"): only on those (the engine's pin-to-host filter honours the list for a
//!   migratable VM too: that is from the engine's scheduler, not the model). Several rules
//!   intersect. These become `Vm::allowed_hosts`, which the planner and checker honour;
//! - a positive, enforcing VM rule keeps its members on one host, which no set of allowed hosts
//!   can say (it depends on where the partners are) and the engine refuses to break one VM at a
//!   time: a member with a running partner is allowed only its own host, so the
//!   `host-constraints` precheck names it and, with `auto_resolve`, Drover shuts it down for the
//!   host's upgrade and starts it there again;
//! - soft (not enforcing) and disabled rules are only the engine's preferences: ignored, as
//!   Drover's plan decides placement.
//!
//! A VM already running outside its rules keeps its own host among the allowed ones (the core's
//! model needs it there; the engine let it run there).
//!
//! This module must not know HTTP or the driver contract.

use std::collections::{BTreeSet, HashMap};

use drover_core::HostId;
use serde_json::Value;

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or("")
}

fn flag(value: &Value, name: &str) -> bool {
    match value.get(name) {
        Some(Value::String(text)) => text == "true",
        Some(Value::Bool(flag)) => *flag,
        _ => false,
    }
}

fn ids<'a>(group: &'a Value, collection: &str, item: &str) -> Vec<&'a str> {
    group
        .get(collection)
        .and_then(|list| list.get(item))
        .and_then(Value::as_array)
        .map(|entries| entries.iter().map(|entry| text(entry, "id")).collect())
        .unwrap_or_default()
}

/// Whether a rule is on and enforcing, and its sign. `enabled` absent counts as on (the
/// model: "considered to be `true` when it is not provided").
fn enforcing_rule(rule: &Value) -> Option<bool> {
    let enabled = rule.get("enabled").is_none() || flag(rule, "enabled");
    (enabled && flag(rule, "enforcing")).then(|| flag(rule, "positive"))
}

/// One VM as the rules see it.
pub struct VmPlacement<'a> {
    pub id: &'a str,
    /// Index of the host it runs on (or is placed on) in the cluster's host list.
    pub host: usize,
    pub running: bool,
    /// Its `placement_policy.hosts` ids.
    pub placement_hosts: Vec<&'a str>,
}

/// What the rules say about the cluster's VMs, by VM id.
#[derive(Debug, Default, PartialEq)]
pub struct Constraints {
    /// VM id → anti-affinity group name.
    pub anti_affinity: HashMap<String, String>,
    /// VM id → allowed hosts (sorted, its own among them); VMs absent may run anywhere.
    pub allowed_hosts: HashMap<String, Vec<HostId>>,
}

/// The constraints of `vms` under `groups` (the cluster's affinity groups); `host_ids` are the
/// cluster's hosts in order.
pub fn constraints(groups: &[Value], vms: &[VmPlacement], host_ids: &[&str]) -> Constraints {
    let index_of: HashMap<&str, usize> = host_ids
        .iter()
        .enumerate()
        .map(|(index, id)| (*id, index))
        .collect();
    let vm_of: HashMap<&str, &VmPlacement> = vms.iter().map(|vm| (vm.id, vm)).collect();
    let mut result = Constraints::default();
    // VM id → the allowed set so far (`None`: any host).
    let mut allowed: HashMap<String, BTreeSet<usize>> = HashMap::new();
    let all: BTreeSet<usize> = (0..host_ids.len()).collect();
    let mut restrict = |vm: &str, keep: &dyn Fn(usize) -> bool| {
        let current = allowed.entry(vm.to_string()).or_insert_with(|| all.clone());
        current.retain(|host| keep(*host));
    };
    for vm in vms {
        if !vm.placement_hosts.is_empty() {
            let pinned: BTreeSet<usize> = vm
                .placement_hosts
                .iter()
                .filter_map(|id| index_of.get(id).copied())
                .collect();
            restrict(vm.id, &|host| pinned.contains(&host));
        }
    }
    for group in groups {
        let members = ids(group, "vms", "vm");
        // `vms_rule`, else the deprecated group-level fields of an engine before 4.1.
        let vms_rule = group.get("vms_rule").unwrap_or(group);
        match enforcing_rule(vms_rule) {
            Some(false) => {
                for member in &members {
                    result
                        .anti_affinity
                        .entry(member.to_string())
                        .or_insert_with(|| text(group, "name").to_string());
                }
            }
            Some(true) => {
                for member in &members {
                    let Some(vm) = vm_of.get(member) else {
                        continue;
                    };
                    let partner_runs = members.iter().any(|other| {
                        other != member && vm_of.get(other).is_some_and(|partner| partner.running)
                    });
                    if partner_runs {
                        let own = vm.host;
                        restrict(member, &|host| host == own);
                    }
                }
            }
            None => {}
        }
        if let Some(sign) = group.get("hosts_rule").and_then(enforcing_rule) {
            let hosts: BTreeSet<usize> = ids(group, "hosts", "host")
                .iter()
                .filter_map(|id| index_of.get(id).copied())
                .collect();
            for member in &members {
                if vm_of.contains_key(member) {
                    restrict(member, &|host| hosts.contains(&host) == sign);
                }
            }
        }
    }
    for (vm, mut hosts) in allowed {
        let Some(placement) = vm_of.get(vm.as_str()) else {
            continue;
        };
        hosts.insert(placement.host);
        if hosts.len() < host_ids.len() {
            result.allowed_hosts.insert(
                vm,
                hosts.into_iter().map(|host| HostId(host as u32)).collect(),
            );
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(
        name: &str,
        vms_rule: Value,
        hosts_rule: Value,
        vms: &[&str],
        hosts: &[&str],
    ) -> Value {
        json!({
            "name": name,
            "vms_rule": vms_rule,
            "hosts_rule": hosts_rule,
            "vms": {"vm": vms.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()},
            "hosts": {"host": hosts.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()},
        })
    }

    fn rule(positive: bool, enforcing: bool) -> Value {
        json!({"enabled": "true", "positive": positive.to_string(), "enforcing": enforcing.to_string()})
    }

    fn vm(id: &'static str, host: usize) -> VmPlacement<'static> {
        VmPlacement {
            id,
            host,
            running: true,
            placement_hosts: Vec::new(),
        }
    }

    #[test]
    fn host_rules_and_placement_hosts_intersect_and_keep_the_own_host() {
        let hosts = ["h0", "h1", "h2", "h3", "h4"];
        let off = json!({"enabled": "false"});
        let groups = [
            group(
                "on-0-1-2",
                off.clone(),
                rule(true, true),
                &["a", "b"],
                &["h0", "h1", "h2"],
            ),
            group("not-on-2", off.clone(), rule(false, true), &["a"], &["h2"]),
            group("soft", off.clone(), rule(true, false), &["c"], &["h3"]),
        ];
        let mut pinned = vm("d", 3);
        pinned.placement_hosts = vec!["h1", "h3"];
        let vms = [vm("a", 0), vm("b", 3), vm("c", 1), pinned];
        let found = constraints(&groups, &vms, &hosts);
        let ids = |list: &[u32]| list.iter().map(|index| HostId(*index)).collect::<Vec<_>>();
        assert_eq!(found.allowed_hosts["a"], ids(&[0, 1]));
        // b already runs outside its rule (on h3): it keeps h3.
        assert_eq!(found.allowed_hosts["b"], ids(&[0, 1, 2, 3]));
        assert!(
            !found.allowed_hosts.contains_key("c"),
            "a soft rule is a preference"
        );
        assert_eq!(found.allowed_hosts["d"], ids(&[1, 3]));
        assert!(found.anti_affinity.is_empty());
    }

    #[test]
    fn vm_rules_become_anti_affinity_or_a_stay_on_the_own_host() {
        let hosts = ["h0", "h1", "h2"];
        let off = json!({"enabled": "false"});
        let groups = [
            group("etcd", rule(false, true), off.clone(), &["e1", "e2"], &[]),
            group("pair", rule(true, true), off.clone(), &["p1", "p2"], &[]),
            group(
                "lonely",
                rule(true, true),
                off.clone(),
                &["l1", "gone"],
                &[],
            ),
        ];
        let vms = [
            vm("e1", 0),
            vm("e2", 1),
            vm("p1", 2),
            vm("p2", 2),
            vm("l1", 1),
        ];
        let found = constraints(&groups, &vms, &hosts);
        assert_eq!(found.anti_affinity["e1"], "etcd");
        assert_eq!(found.anti_affinity["e2"], "etcd");
        assert_eq!(found.allowed_hosts["p1"], vec![HostId(2)]);
        assert_eq!(found.allowed_hosts["p2"], vec![HostId(2)]);
        assert!(
            !found.allowed_hosts.contains_key("l1"),
            "no running partner"
        );
    }

    #[test]
    fn an_engine_before_4_1_writes_the_vm_rule_on_the_group() {
        let groups = [json!({
            "name": "old", "positive": "false", "enforcing": "true",
            "vms": {"vm": [{"id": "x"}, {"id": "y"}]}
        })];
        let found = constraints(&groups, &[vm("x", 0), vm("y", 1)], &["h0", "h1"]);
        assert_eq!(found.anti_affinity.len(), 2);
        assert!(found.allowed_hosts.is_empty());
    }
}
