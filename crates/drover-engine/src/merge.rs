//! The cluster a run starts from: the inventory (target, policy, and VM properties a platform
//! may not report, like restart policy or anti-affinity) merged with what the driver discovered
//! (host versions and states, where each VM runs, the blocking settings that are on, when the
//! driver observes them). Drift is taken from the platform.

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
        match cluster.vms.iter_mut().find(|v| v.name == seen.name) {
            Some(vm) => {
                vm.host = on;
                vm.state = seen.state;
            }
            None => cluster.vms.push(Vm {
                host: on,
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
