//! The cluster a run starts from: the inventory (target, policy, and VM properties a platform
//! may not report, like restart policy or anti-affinity) merged with what the driver discovered
//! (host versions and states, where each VM runs, the blocking settings that are on, when the
//! driver observes them). Drift is taken from the platform. A VM's `allowed_hosts` is the
//! inventory's, else the driver's, renumbered into the run's host ids.

use drover_core::execution::Discovered;
use drover_core::{Cluster, HostId, HostState, Vm};

pub fn merge_inventory_with_discovery(inventory: &Cluster, discovered: &Discovered) -> Cluster {
    let mut cluster = inventory.clone();
    for host in &mut cluster.hosts {
        match discovered.hosts.iter().find(|h| h.name == host.name) {
            Some(seen) => {
                host.version = seen.version.clone();
                host.state = seen.state;
                host.cordoned = seen.cordoned;
            }
            // Listed but not seen: the platform does not know it, so it cannot be upgraded.
            None => host.state = HostState::Down,
        }
    }
    for seen in &discovered.hosts {
        if cluster.host_named(&seen.name).is_none() {
            cluster.hosts.push(seen.clone());
        }
    }
    let host_id = |cluster: &Cluster, index: usize| {
        cluster
            .host_named(&discovered.hosts[index].name)
            .unwrap_or(HostId(0))
    };
    for seen in &discovered.vms {
        let on = host_id(&cluster, seen.host.index());
        // The driver's host constraint is in its own host numbering: renumbered by name.
        let seen_allowed_hosts = seen.allowed_hosts.as_ref().map(|allowed| {
            let mut ids: Vec<HostId> = allowed
                .iter()
                .map(|host| host_id(&cluster, host.index()))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        });
        match cluster.vms.iter_mut().find(|v| v.name == seen.name) {
            Some(vm) => {
                vm.host = on;
                vm.state = seen.state;
                // The inventory's constraint wins; a platform's (Ganeti's DRBD nodes) fills in.
                if vm.allowed_hosts.is_none() {
                    vm.allowed_hosts = seen_allowed_hosts;
                }
            }
            None => cluster.vms.push(Vm {
                host: on,
                allowed_hosts: seen_allowed_hosts,
                ..seen.clone()
            }),
        }
    }
    // A driver that observes settings says which are on; one that does not leaves the
    // inventory's (so a precheck still names them and the run asks the driver, which refuses).
    if let Some(settings) = &discovered.settings {
        cluster.settings = settings.clone();
    }
    cluster
}

#[cfg(test)]
mod tests {
    use drover_core::{HostRole, RestartPolicy, VmState};

    use super::*;

    fn host(name: &str) -> drover_core::Host {
        drover_core::Host {
            name: name.into(),
            role: HostRole::Compute,
            version: "1.0".parse().unwrap(),
            memory_mib: 4096,
            cpus: 4,
            state: HostState::Up,
            cordoned: false,
            labels: Default::default(),
        }
    }

    fn vm(name: &str, host: u32, allowed: Option<Vec<u32>>) -> Vm {
        Vm {
            name: name.into(),
            host: HostId(host),
            memory_mib: 512,
            vcpus: 1,
            state: VmState::Running,
            migratable: true,
            local_storage: false,
            unmovable: None,
            restart_policy: RestartPolicy::Manual,
            anti_affinity: None,
            allowed_hosts: allowed.map(|ids| ids.into_iter().map(HostId).collect()),
        }
    }

    #[test]
    fn allowed_hosts_come_from_the_inventory_else_from_the_driver_renumbered() {
        let inventory = Cluster {
            name: "c".into(),
            target_version: "2.0".parse().unwrap(),
            policy: Default::default(),
            hosts: vec![host("a"), host("b"), host("c")],
            vms: vec![vm("listed", 0, Some(vec![0, 1])), vm("plain", 1, None)],
            settings: Vec::new(),
        };
        // The driver numbers its hosts c, b, a.
        let discovered = Discovered {
            hosts: vec![host("c"), host("b"), host("a")],
            vms: vec![
                vm("listed", 2, Some(vec![0, 2])),
                vm("plain", 1, Some(vec![0, 1])),
                vm("new", 0, Some(vec![0, 2])),
            ],
            settings: None,
        };
        let merged = merge_inventory_with_discovery(&inventory, &discovered);
        let allowed = |name: &str| {
            let vm = merged.vms.iter().find(|vm| vm.name == name).unwrap();
            vm.allowed_hosts.clone()
        };
        assert_eq!(allowed("listed"), Some(vec![HostId(0), HostId(1)]));
        assert_eq!(allowed("plain"), Some(vec![HostId(1), HostId(2)]));
        assert_eq!(allowed("new"), Some(vec![HostId(0), HostId(2)]));
    }
}
