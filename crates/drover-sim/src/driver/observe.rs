//! What callers read without changing anything: host facts, discovery, snapshots.
//!
//! This module knows nothing of async code: a host that does not answer is reported as `None`,
//! and the caller models the connection timeout.

use drover_core::{Cluster, Host, HostId, HostState, Vm, VmState};
use drover_driver::{Discovered, DriverError, HostFacts};

use super::snapshot::{
    HostSnapshot, OperationSnapshot, PlatformHostState, VmSnapshot, WorldSnapshot,
};
use super::world::{OperationKind, Power, SimWorld};

impl SimWorld {
    /// What the host says about itself, or `None` when it does not answer.
    pub fn host_facts(&self, host: &str) -> Result<Option<HostFacts>, DriverError> {
        let index = self.host_index(host)?;
        let record = &self.state.hosts[index];
        let facts = HostFacts {
            version: record.version.clone(),
            boot_id: self.boot_id(index),
            in_maintenance: record.in_maintenance,
            cordoned: record.cordoned,
        };
        Ok(self.host_answers(index).then_some(facts))
    }

    /// Every host and VM; what the platform does not track (roles, CPUs, labels, anti-affinity)
    /// is taken from the cluster the platform was built from.
    pub fn discover(&self, cluster: &Cluster) -> Discovered {
        let hosts = cluster
            .hosts
            .iter()
            .zip(&self.state.hosts)
            .map(|(described, platform)| Host {
                version: platform.version.clone(),
                state: match (platform.power, platform.in_maintenance) {
                    (Power::Up, false) => HostState::Up,
                    (Power::Up, true) => HostState::Maintenance,
                    (Power::Rebooting | Power::Down, _) => HostState::Down,
                },
                cordoned: platform.cordoned,
                ..described.clone()
            });
        let vms = cluster
            .vms
            .iter()
            .zip(&self.state.vms)
            .map(|(described, platform)| Vm {
                host: HostId(platform.host as u32),
                state: if platform.running {
                    VmState::Running
                } else {
                    VmState::Stopped
                },
                ..described.clone()
            });
        Discovered {
            hosts: hosts.collect(),
            vms: vms.collect(),
            settings: Some(self.settings_on()),
        }
    }

    pub fn snapshot(&self, now_ms: u64) -> WorldSnapshot {
        let hosts = (0..self.state.hosts.len()).map(|index| self.host_snapshot(index));
        let vms = self.state.vms.iter().map(|vm| VmSnapshot {
            name: vm.name.clone(),
            host: self.host_name(vm.host),
            running: vm.running,
        });
        let operations = self
            .state
            .operations
            .values()
            .map(|operation| OperationSnapshot {
                id: operation.id,
                kind: operation.kind.name(),
                vm: operation.kind.vm().map(|vm| self.vm_name(vm)),
                host: self.host_name(operation.kind.host()),
                destination: match operation.kind {
                    OperationKind::Migrate { to, .. } => Some(self.host_name(to)),
                    _ => None,
                },
                started_at_ms: operation.started_at_ms,
                completes_at_ms: operation.completes_at_ms,
            });
        WorldSnapshot {
            now_ms,
            hosts: hosts.collect(),
            vms: vms.collect(),
            operations: operations.collect(),
            history: self.state.history.clone(),
            compatibility_level: self.state.compatibility_level.clone(),
            settings: self.setting_snapshots(),
        }
    }

    fn host_snapshot(&self, index: usize) -> HostSnapshot {
        let record = &self.state.hosts[index];
        HostSnapshot {
            name: record.name.clone(),
            version: record.version.clone(),
            boot_id: self.boot_id(index),
            state: match (record.power, record.in_maintenance) {
                (Power::Down, _) => PlatformHostState::Down,
                (Power::Rebooting, _) => PlatformHostState::Rebooting,
                (Power::Up, true) => PlatformHostState::Maintenance,
                (Power::Up, false) => PlatformHostState::Up,
            },
            cordoned: record.cordoned,
        }
    }
}
