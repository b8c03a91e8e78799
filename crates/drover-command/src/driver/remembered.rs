//! What the command driver remembers of its own successful calls, for platforms whose commands
//! cannot report it: cordons done without a cordon command, and where VMs went (for discovery
//! without a discover command).
//!
//! It lives in memory only and is lost when Drover stops; the engine's journal is the durable
//! record of what Drover changed (it restores cordons it set from there). This module knows
//! nothing of commands or processes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use drover_core::{Cluster, Host, Vm, VmState};

/// Where a VM was last put by this driver.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Whereabouts {
    host: String,
    running: bool,
}

#[derive(Debug, Default)]
struct Memory {
    /// Host name → cordoned, for hosts this driver (un)cordoned without a command.
    cordoned: BTreeMap<String, bool>,
    /// VM name → where this driver last migrated, stopped or started it.
    vms: BTreeMap<String, Whereabouts>,
}

/// Shared between calls; the lock is never held across an await.
#[derive(Debug, Default)]
pub(crate) struct Remembered {
    memory: Mutex<Memory>,
}

impl Remembered {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        // A panic while holding this lock cannot leave the maps half-updated (each update is
        // one insert), so a poisoned lock is still good to use.
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut memory)
    }

    pub(crate) fn set_cordoned(&self, host: &str, cordoned: bool) {
        self.with(|m| m.cordoned.insert(host.to_string(), cordoned));
    }

    /// This driver's own cordon state of a host, when it set one.
    pub(crate) fn cordoned(&self, host: &str) -> Option<bool> {
        self.with(|m| m.cordoned.get(host).copied())
    }

    pub(crate) fn apply_cordons(&self, hosts: &mut [Host]) {
        for host in hosts {
            if let Some(cordoned) = self.cordoned(&host.name) {
                host.cordoned = cordoned;
            }
        }
    }

    pub(crate) fn set_vm(&self, vm: &str, host: &str, running: bool) {
        let whereabouts = Whereabouts {
            host: host.to_string(),
            running,
        };
        self.with(|m| m.vms.insert(vm.to_string(), whereabouts));
    }

    /// The inventory's VMs, moved, stopped and started as this driver did; `known` indexes the
    /// hosts. A remembered host the inventory does not list is ignored.
    pub(crate) fn vms_of(&self, known: &Cluster) -> Vec<Vm> {
        let remembered = self.with(|m| m.vms.clone());
        let mut vms = known.vms.clone();
        for vm in &mut vms {
            let Some(whereabouts) = remembered.get(&vm.name) else {
                continue;
            };
            if let Some(host) = known.host_named(&whereabouts.host) {
                vm.host = host;
            }
            vm.state = match whereabouts.running {
                true => VmState::Running,
                false => VmState::Stopped,
            };
        }
        vms
    }
}
