//! Small hand-built clusters shared by the integration tests.

#![allow(dead_code)]

use drover_core::{Cluster, Host, HostId, HostRole, HostState, Policy, RestartPolicy, Vm, VmState};

pub fn host(name: &str, version: &str, memory_mib: u64) -> Host {
    Host {
        name: name.into(),
        role: HostRole::Compute,
        version: version.parse().unwrap(),
        memory_mib,
        cpus: 16,
        state: HostState::Up,
        cordoned: false,
        labels: Default::default(),
    }
}

pub fn vm(name: &str, host: u32, memory_mib: u64) -> Vm {
    Vm {
        name: name.into(),
        host: HostId(host),
        memory_mib,
        vcpus: 2,
        state: VmState::Running,
        migratable: true,
        local_storage: false,
        unmovable: None,
        restart_policy: RestartPolicy::Manual,
        anti_affinity: None,
        allowed_hosts: None,
    }
}

pub fn cluster(hosts: Vec<Host>, vms: Vec<Vm>) -> Cluster {
    Cluster {
        settings: Vec::new(),
        name: "test".into(),
        target_version: "2.0".parse().unwrap(),
        policy: Policy::default(),
        hosts,
        vms,
    }
}
