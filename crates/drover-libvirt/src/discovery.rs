//! Discovery: every host, and every domain defined or running on it.
//!
//! - Hosts: asked at the same time (at most `MAX_HOSTS_ASKED_AT_ONCE`). A host's memory and CPUs
//!   are libvirt's node info, its version and boot id its facts (see `host_steps`), its cordon
//!   and maintenance Drover's own marks; its role and labels come from the inventory (`compute`
//!   and none for a host the inventory does not list). A host whose libvirt or facts do not
//!   answer is reported down (with the inventory's numbers); when no host answers at all the
//!   problem is not the hosts (a wrong URI scheme, no route) and discovery fails with the first
//!   error.
//! - VMs: every domain, active or not. Memory is the domain's maximum (MiB, rounded up), vCPUs
//!   its current count, running = active (paused counts: it holds its memory). `local_storage`
//!   follows [`crate::storage`]. `migratable`, `restart_policy` and `anti_affinity` come from the
//!   domain's Drover metadata (see [`crate::domain_xml`]), unless the inventory lists the VM: then
//!   the inventory entry wins as a whole, and its `local_storage: true` adds to what the disks
//!   say; its `allowed_hosts` are renumbered into discovery's host order (the metadata has
//!   none). A domain with unreadable metadata that the inventory does not list fails discovery
//!   with a message naming it, rather than be guessed.
//! - A name defined on several hosts (a definition left behind) is reported once: where it is
//!   active, else on the first host in order.
//!
//! This module knows nothing of migrations or host commands.

use std::collections::BTreeMap;
use std::sync::Arc;

use drover_core::{Host, HostId, HostRole, HostState, Version, Vm, VmState};
use drover_driver::{Discovered, HostFacts};
use tokio::task::JoinSet;
use virt::connect::Connect;
use virt::domain::Domain;

use crate::domain_xml::{DomainXml, DroverVmMetadata};
use crate::driver::Inner;
use crate::error::LibvirtError;
use crate::host_steps::with_marks;

/// Hosts asked for their domains and facts at the same time.
const MAX_HOSTS_ASKED_AT_ONCE: usize = 16;
const KIB_PER_MIB: u64 = 1024;

/// One domain as its host reported it.
#[derive(Clone, Debug)]
pub(crate) struct ObservedDomain {
    pub name: String,
    pub active: bool,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub xml: Result<DomainXml, String>,
}

/// One host's node info and domains.
#[derive(Clone, Debug)]
pub(crate) struct HostObservation {
    pub memory_mib: u64,
    pub cpus: u32,
    pub domains: Vec<ObservedDomain>,
}

type HostSeen = Result<(HostObservation, HostFacts), LibvirtError>;

impl Inner {
    pub(crate) async fn discover(self: &Arc<Self>) -> Result<Discovered, LibvirtError> {
        let seen = self.observe_every_host().await;
        if let Some(error) = first_error_when_none_answered(&seen) {
            return Err(error);
        }
        let hosts = self
            .host_order
            .iter()
            .zip(&seen)
            .map(|(name, seen)| self.host_entry(name, seen))
            .collect();
        let vms = self.vms_of(&seen)?;
        Ok(Discovered {
            hosts,
            vms,
            settings: None,
        })
    }

    /// Every host's observation, in `host_order`.
    async fn observe_every_host(self: &Arc<Self>) -> Vec<HostSeen> {
        let mut results: Vec<Option<HostSeen>> = vec![None; self.host_order.len()];
        let mut tasks = JoinSet::new();
        for (index, name) in self.host_order.iter().cloned().enumerate() {
            if tasks.len() >= MAX_HOSTS_ASKED_AT_ONCE {
                store_next(&mut tasks, &mut results).await;
            }
            let inner = Arc::clone(self);
            tasks.spawn(async move { (index, inner.observe_host(&name).await) });
        }
        while store_next(&mut tasks, &mut results).await {}
        results
            .into_iter()
            .zip(&self.host_order)
            .map(|(result, host)| {
                result.unwrap_or_else(|| {
                    Err(LibvirtError::Unreachable {
                        host: host.clone(),
                        detail: "its discovery task did not complete".into(),
                    })
                })
            })
            .collect()
    }

    async fn observe_host(&self, host: &str) -> HostSeen {
        let (observation, facts) = tokio::join!(
            self.observe_domains(host),
            self.platform_facts(host, self.call_timeout)
        );
        Ok((observation?, with_marks(facts?, self.marks.of(host))))
    }

    /// The host's node info and every domain on it.
    pub(crate) async fn observe_domains(
        &self,
        host: &str,
    ) -> Result<HostObservation, LibvirtError> {
        let host_name = host.to_string();
        self.connections
            .call(host, "list domains", self.call_timeout, move |connect| {
                observe_host_domains(connect, &host_name)
            })
            .await
    }

    fn host_entry(&self, name: &str, seen: &HostSeen) -> Host {
        let known = self.known.hosts.iter().find(|host| host.name == name);
        let mut host = known.cloned().unwrap_or_else(|| Host {
            name: name.to_string(),
            role: HostRole::Compute,
            version: unknown_version(),
            memory_mib: 0,
            cpus: 0,
            state: HostState::Down,
            cordoned: false,
            labels: BTreeMap::new(),
        });
        match seen {
            Ok((observation, facts)) => {
                host.version = facts.version.clone();
                host.memory_mib = observation.memory_mib;
                host.cpus = observation.cpus;
                host.cordoned = facts.cordoned;
                host.state = match facts.in_maintenance {
                    true => HostState::Maintenance,
                    false => HostState::Up,
                };
            }
            Err(error) => {
                tracing::warn!(host = name, %error, "host reported down");
                host.state = HostState::Down;
                host.cordoned = self.marks.of(name).cordoned.unwrap_or(host.cordoned);
            }
        }
        host
    }

    /// One VM per domain name, `Vm::host` indexing `host_order`.
    fn vms_of(&self, seen: &[HostSeen]) -> Result<Vec<Vm>, LibvirtError> {
        let mut chosen: Vec<(usize, &ObservedDomain)> = Vec::new();
        let mut position_by_name: BTreeMap<&str, usize> = BTreeMap::new();
        for (host_index, seen) in seen.iter().enumerate() {
            let Ok((observation, _)) = seen else { continue };
            for domain in &observation.domains {
                match position_by_name.get(domain.name.as_str()) {
                    None => {
                        position_by_name.insert(&domain.name, chosen.len());
                        chosen.push((host_index, domain));
                    }
                    Some(&position) => {
                        self.settle_duplicate(&mut chosen[position], (host_index, domain))
                    }
                }
            }
        }
        chosen
            .into_iter()
            .map(|(host_index, domain)| self.vm_of(domain, host_index))
            .collect()
    }

    /// Keeps the active one of two domains of the same name.
    fn settle_duplicate<'a>(
        &self,
        kept: &mut (usize, &'a ObservedDomain),
        other: (usize, &'a ObservedDomain),
    ) {
        let host_name = |index: usize| self.host_order[index].as_str();
        tracing::warn!(
            vm = %other.1.name,
            hosts = %format!("{}, {}", host_name(kept.0), host_name(other.0)),
            "domain defined on more than one host; reporting the active one"
        );
        if other.1.active && !kept.1.active {
            *kept = other;
        }
    }

    /// The inventory's `allowed_hosts` of a VM it lists, renumbered in discovery's host order
    /// (hosts discovery does not know are left out).
    fn allowed_hosts_of(&self, known: &Vm) -> Option<Vec<HostId>> {
        let allowed = known.allowed_hosts.as_ref()?;
        let mut ids: Vec<HostId> = allowed
            .iter()
            .filter_map(|id| {
                let name = &self.known.host(*id).name;
                self.host_order.iter().position(|other| other == name)
            })
            .map(|index| HostId(index as u32))
            .collect();
        ids.sort_unstable();
        Some(ids)
    }

    fn vm_of(&self, domain: &ObservedDomain, host_index: usize) -> Result<Vm, LibvirtError> {
        let host = &self.host_order[host_index];
        let bad = |problem: String| LibvirtError::BadDomain {
            vm: domain.name.clone(),
            host: host.clone(),
            problem,
        };
        let xml = domain
            .xml
            .as_ref()
            .map_err(|problem| bad(problem.clone()))?;
        let known = self.known.vms.iter().find(|vm| vm.name == domain.name);
        let settings = match known {
            Some(known) => DroverVmMetadata {
                restart_policy: known.restart_policy,
                anti_affinity: known.anti_affinity.clone(),
                migratable: known.migratable,
            },
            None => xml.drover_metadata.clone().map_err(|problem| {
                bad(format!(
                    "{problem} (fix the domain's metadata, or list the VM in the inventory)"
                ))
            })?,
        };
        let local_storage = self.storage_rule.has_local_storage(&xml.disks)
            || known.is_some_and(|known| known.local_storage);
        Ok(Vm {
            name: domain.name.clone(),
            host: HostId(host_index as u32),
            memory_mib: domain.memory_mib,
            vcpus: domain.vcpus,
            state: match domain.active {
                true => VmState::Running,
                false => VmState::Stopped,
            },
            migratable: settings.migratable,
            local_storage,
            // The disposition the operator asked for in the inventory (a domain's metadata names
            // none: it is the operator's call about the workload, not the domain's).
            unmovable: known.and_then(|known| known.unmovable),
            restart_policy: settings.restart_policy,
            anti_affinity: settings.anti_affinity,
            allowed_hosts: known.and_then(|known| self.allowed_hosts_of(known)),
        })
    }
}

/// The version of a host that never answered and that the inventory does not list.
fn unknown_version() -> Version {
    "0".parse().expect("0 is a version")
}

/// Stores the next finished task's result; false when no task is left.
async fn store_next(
    tasks: &mut JoinSet<(usize, HostSeen)>,
    results: &mut [Option<HostSeen>],
) -> bool {
    match tasks.join_next().await {
        None => false,
        // A task that panicked leaves its slot empty: its host is reported down.
        Some(Err(_)) => true,
        Some(Ok((index, seen))) => {
            results[index] = Some(seen);
            true
        }
    }
}

fn first_error_when_none_answered(seen: &[HostSeen]) -> Option<LibvirtError> {
    if seen.iter().any(Result::is_ok) {
        return None;
    }
    seen.iter()
        .find_map(|result| result.as_ref().err().cloned())
}

/// Runs on a blocking thread: the node info and every domain.
fn observe_host_domains(connect: &Connect, host: &str) -> Result<HostObservation, LibvirtError> {
    let failed = |operation: &'static str| {
        move |error: virt::error::Error| LibvirtError::from_libvirt(host, operation, &error)
    };
    let node = connect.node_info().map_err(failed("read the node info"))?;
    let domains = connect
        .list_all_domains(0)
        .map_err(failed("list domains"))?;
    let mut observed = Vec::with_capacity(domains.len());
    for domain in &domains {
        if let Some(seen) = observe_domain(domain, host)? {
            observed.push(seen);
        }
    }
    observed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(HostObservation {
        memory_mib: node.memory / KIB_PER_MIB,
        cpus: node.cpus,
        domains: observed,
    })
}

/// One domain; `None` when it vanished after the listing (a migration away finished, a
/// transient domain stopped).
fn observe_domain(domain: &Domain, host: &str) -> Result<Option<ObservedDomain>, LibvirtError> {
    let name = domain
        .name()
        .map_err(|e| LibvirtError::from_libvirt(host, "read a domain's name", &e))?;
    let read = || -> Result<_, virt::error::Error> {
        Ok((domain.is_active()?, domain.info()?, domain.xml_desc(0)?))
    };
    match read() {
        Err(error) if LibvirtError::is_no_such_domain(&error) => Ok(None),
        Err(error) => Err(LibvirtError::from_libvirt(
            host,
            &format!("read domain {name}"),
            &error,
        )),
        Ok((active, info, xml)) => Ok(Some(ObservedDomain {
            name,
            active,
            memory_mib: info.max_mem.div_ceil(KIB_PER_MIB),
            vcpus: info.nr_virt_cpu,
            xml: DomainXml::parse(&xml),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_fails_only_when_no_host_answers() {
        let down = || -> HostSeen {
            Err(LibvirtError::Unreachable {
                host: "h1".into(),
                detail: "refused".into(),
            })
        };
        let up = || -> HostSeen {
            let observation = HostObservation {
                memory_mib: 1,
                cpus: 1,
                domains: Vec::new(),
            };
            let facts = HostFacts {
                version: "1".parse().unwrap(),
                boot_id: "b".into(),
                in_maintenance: false,
                cordoned: false,
            };
            Ok((observation, facts))
        };
        assert!(first_error_when_none_answered(&[down(), up()]).is_none());
        assert!(matches!(
            first_error_when_none_answered(&[down(), down()]),
            Some(LibvirtError::Unreachable { .. })
        ));
        assert!(first_error_when_none_answered(&[]).is_none());
    }
}
