//! What the checks read back from the platform: one discovery, with the lookups the checks need
//! (a host by name, where a VM is and whether it runs, the VMs running on a host), each failing
//! with a message that names what is missing.
//!
//! This module knows discovery's shape and nothing of which check asks.

use drover_core::{Host, HostState, Vm, VmState};
use drover_driver::{Discovered, Driver, HostFacts};

use crate::call::succeeds;
use crate::error::ConformanceError;
use crate::fixture::Fixture;

/// One discovery of the platform.
pub(crate) struct Seen {
    pub discovered: Discovered,
}

/// Where a VM is and whether it runs, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub host: String,
    pub state: VmState,
}

impl Placement {
    pub fn running_on(host: &str) -> Placement {
        Placement {
            host: host.to_string(),
            state: VmState::Running,
        }
    }

    pub fn stopped_on(host: &str) -> Placement {
        Placement {
            host: host.to_string(),
            state: VmState::Stopped,
        }
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        let state = match self.state {
            VmState::Running => "running",
            VmState::Stopped => "stopped",
        };
        write!(formatter, "{state} on {}", self.host)
    }
}

pub(crate) async fn discover(
    driver: &dyn Driver,
    fixture: &Fixture,
) -> Result<Seen, ConformanceError> {
    let discovered = succeeds("discover", fixture.timeouts.call, driver.discover()).await?;
    Ok(Seen { discovered })
}

pub(crate) async fn facts(
    driver: &dyn Driver,
    fixture: &Fixture,
    host: &str,
) -> Result<HostFacts, ConformanceError> {
    let call = format!("host_facts({host})");
    succeeds(&call, fixture.timeouts.call, driver.host_facts(host)).await
}

impl Seen {
    pub fn host(&self, name: &str) -> Result<&Host, ConformanceError> {
        self.discovered
            .hosts
            .iter()
            .find(|host| host.name == name)
            .ok_or_else(|| ConformanceError::WrongState(format!("discovery has no host {name}")))
    }

    fn vm(&self, name: &str) -> Result<&Vm, ConformanceError> {
        self.discovered
            .vms
            .iter()
            .find(|vm| vm.name == name)
            .ok_or_else(|| ConformanceError::WrongState(format!("discovery has no VM {name}")))
    }

    /// The name of the host a VM index points at, if it points at one.
    fn host_name_of(&self, vm: &Vm) -> Option<&str> {
        let host = self.discovered.hosts.get(vm.host.index())?;
        Some(host.name.as_str())
    }

    pub fn placement(&self, vm_name: &str) -> Result<Placement, ConformanceError> {
        let vm = self.vm(vm_name)?;
        let host = self.host_name_of(vm).ok_or_else(|| {
            ConformanceError::WrongState(format!(
                "VM {vm_name} is on host index {}, which discovery does not list",
                vm.host.index()
            ))
        })?;
        Ok(Placement {
            host: host.to_string(),
            state: vm.state,
        })
    }

    /// Fails unless discovery shows the VM as `expected`; `after` says which call should have
    /// put it there.
    pub fn require_placement(
        &self,
        vm: &str,
        expected: &Placement,
        after: &str,
    ) -> Result<(), ConformanceError> {
        let seen = self.placement(vm)?;
        match &seen == expected {
            true => Ok(()),
            false => Err(ConformanceError::WrongState(format!(
                "after {after}, discovery shows VM {vm} {seen}, expected {expected}"
            ))),
        }
    }

    /// Fails unless discovery shows the host in `expected` state; `after` names the call.
    pub fn require_host_state(
        &self,
        host: &str,
        expected: HostState,
        after: &str,
    ) -> Result<(), ConformanceError> {
        let seen = self.host(host)?.state;
        match seen == expected {
            true => Ok(()),
            false => Err(ConformanceError::WrongState(format!(
                "after {after}, discovery shows host {host} {seen:?}, expected {expected:?}"
            ))),
        }
    }

    /// The VMs discovery shows running on `host`.
    pub fn running_vms_on(&self, host: &str) -> Vec<&str> {
        self.discovered
            .vms
            .iter()
            .filter(|vm| vm.state == VmState::Running && self.host_name_of(vm) == Some(host))
            .map(|vm| vm.name.as_str())
            .collect()
    }

    /// Fails with a fixture error unless `host` runs no VM (maintenance and upgrade need that).
    pub fn require_empty(&self, host: &str, check: &str) -> Result<(), ConformanceError> {
        let running = self.running_vms_on(host);
        match running.is_empty() {
            true => Ok(()),
            false => Err(ConformanceError::Fixture(format!(
                "{check} needs host {host} to run no VM, but it runs {}",
                running.join(", ")
            ))),
        }
    }
}
