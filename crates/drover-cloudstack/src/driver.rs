//! [`CloudstackDriver`]: Drover's driver calls as CloudStack API commands. Names from
//! apache/cloudstack (`api/src/main/java/org/apache/cloudstack/api/command/admin/…`,
//! `api/response/HostResponse.java`, `UserVmResponse.java`, `SystemVmResponse.java`,
//! `DomainRouterResponse.java`, `VolumeResponse.java`, `ServiceOfferingResponse.java`,
//! `AffinityGroupResponse.java`, `AsyncJobResponse.java`):
//! - discovery lists the hosts of type Routing (`listHosts`, by zone and cluster when the section
//!   names them), user VMs (`listVirtualMachines listall=true`), virtual routers (`listRouters`),
//!   secondary storage and console proxy VMs (`listSystemVms`), volumes (`listVolumes`: a VM with
//!   a volume whose `storagetype` is local is on local storage, unless
//!   `allow_migrate_with_volume`) and, when a host carries host tags, the service offerings
//!   (`listServiceOfferings`: a VM whose offering has host tags may run only on the hosts
//!   carrying all of them). A host whose `resourcestate` is Maintenance, PrepareForMaintenance or
//!   ErrorInMaintenance is in maintenance, else `state` Up is up and anything else down;
//!   `resourcestate` Disabled is cordoned; the version is `hypervisorversion`. A user VM without
//!   tools (`isdynamicallyscalable` false: "true if vm contains XS/VMWare tools") is not
//!   migratable and has restart policy always, so the plan restarts it elsewhere (shut down,
//!   started with `hostid`), as the CloudStack hotfix procedure (Citrix CTX133466) does with the
//!   VMs without tools; `haenable` is restart policy always too; a `host anti-affinity` group is an anti-affinity group. System VMs (routers,
//!   secondary storage and console proxy VMs) are their own class: always migratable (with
//!   `migrateSystemVm`), restarted by CloudStack itself (restart policy always), never stopped.
//! - cordon is `updateHost allocationstate=Disable`, uncordon `Enable`.
//! - maintenance is `prepareHostForMaintenance` of a host Drover has already emptied (a host
//!   that still runs VMs is refused, so CloudStack's own evacuation never overrides the plan),
//!   followed as a job; leaving it is `cancelHostMaintenance`. CloudStack leaves the host
//!   Enabled after that, so a host that was Disabled when it entered maintenance is disabled again.
//! - a migration is `migrateVirtualMachine` to the planned host (`migrateSystemVm` for a system
//!   VM, `migrateVirtualMachineWithVolume` for a VM on local storage when allowed); stop is
//!   `stopVirtualMachine` (`forced` with no graceful time), start `startVirtualMachine` with
//!   `hostid`; each an asynchronous job followed with `queryAsyncJobResult` up to the job timeout.
//! - the upgrade (the catalog's hotfixes, `{hotfixes}`) and the reboot are the operator's
//!   commands on the hypervisor: CloudStack's API does neither. The boot id is the host's
//!   `disconnected` date (when its agent last went away), else its `created` date.
//! - every error keeps CloudStack's `errorcode` and `cserrorcode` in its text (and so in the
//!   journal): 431 / 432 / 533 / 534 / 535 / 536 are refusals, the rest failures.
//!
//! - a host Disabled when it enters maintenance carries a mark (a CloudStack annotation,
//!   [`crate::marks`]) until it has left maintenance and been disabled again, so a resumed run
//!   in another process still disables it again and reports it cordoned meanwhile.
//!
//! Not done: moving VMs back after the roll (the seed's last step).
//!
//! This module must not know Drover's engine, stores or the registry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drover_command::{
    run_step, ArgvTemplate, HostUpgradePlan, Placeholder, PlaceholderValues, RunLimits, StepContext,
};
use drover_core::{
    Cluster, Host, HostId, HostRole, HostState, RestartPolicy, Version, Vm, VmState,
};
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
use serde_json::Value;

use crate::client::CloudstackClient;
use crate::CloudstackError;

/// How the driver is set up besides its connection.
#[derive(Clone, Debug)]
pub struct CloudstackOptions {
    /// Only this zone's hosts (by name).
    pub zone: Option<String>,
    /// Only this cluster's hosts (by name).
    pub cluster: Option<String>,
    pub job_timeout: Duration,
    pub poll: Duration,
    pub upgrade_timeout: Duration,
    pub allow_migrate_with_volume: bool,
    pub upgrade_command: ArgvTemplate,
    pub reboot_command: ArgvTemplate,
    /// What each host's installer is told (the catalog's hotfix set).
    pub upgrade_plans: BTreeMap<String, HostUpgradePlan>,
}

/// The class of a VM in CloudStack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmClass {
    User,
    /// A virtual router (`listRouters`).
    Router,
    /// A secondary storage or console proxy VM (`listSystemVms`).
    System,
}

const MIB: u64 = 1024 * 1024;
const MAINTENANCE_STATES: [&str; 3] =
    ["Maintenance", "PrepareForMaintenance", "ErrorInMaintenance"];

pub struct CloudstackDriver {
    client: CloudstackClient,
    options: CloudstackOptions,
    /// The inventory's cluster name (for `{cluster}`).
    cluster_name: String,
    roles: BTreeMap<String, HostRole>,
    /// Inventory facts the API does not give: system VMs' sizes, where a stopped VM was.
    inventory_vms: HashMap<String, (String, u64, u32)>,
    /// Hosts Disabled when they entered maintenance (CloudStack enables them on leaving it).
    disabled_in_maintenance: Mutex<BTreeSet<String>>,
    /// Where each VM last ran: a stopped VM has no `hostid`, yet Drover places it.
    last_hosts: Mutex<HashMap<String, String>>,
    /// The zone and cluster ids of the section's names, once looked up.
    scope: tokio::sync::Mutex<Option<Vec<(&'static str, String)>>>,
}

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or("")
}

fn number(value: &Value, name: &str) -> u64 {
    match value.get(name) {
        Some(Value::Number(number)) => number.as_u64().unwrap_or(0),
        Some(Value::String(text)) => text.parse().unwrap_or(0),
        _ => 0,
    }
}

fn flag(value: &Value, name: &str) -> Option<bool> {
    match value.get(name) {
        Some(Value::Bool(flag)) => Some(*flag),
        Some(Value::String(text)) => Some(text == "true"),
        _ => None,
    }
}

/// A CloudStack error as the driver contract's error, the codes kept in the text.
fn driver_error(error: CloudstackError, subject: &str) -> DriverError {
    match &error {
        CloudstackError::Transport { detail, .. } => DriverError::Unreachable {
            host: subject.to_string(),
            detail: detail.clone(),
        },
        CloudstackError::Api {
            error_code: 431 | 432 | 533 | 534 | 535 | 536,
            ..
        }
        | CloudstackError::JobFailed {
            error_code: 431 | 533 | 534 | 535 | 536,
            ..
        } => DriverError::Refused(error.to_string()),
        _ => DriverError::Failed(error.to_string()),
    }
}

/// A mark that could not be read or written (a server before 4.11 has no annotations): the
/// process's own set still holds it; a resumed run in another process would not know.
fn marks_unavailable(what: &str, error: &CloudstackError) {
    tracing::warn!(
        "could not {what} Drover's maintenance mark on a CloudStack host ({error}); kept in this process only"
    );
}

fn host_state(record: &Value) -> HostState {
    if MAINTENANCE_STATES.contains(&text(record, "resourcestate")) {
        HostState::Maintenance
    } else if text(record, "state") == "Up" {
        HostState::Up
    } else {
        HostState::Down
    }
}

fn host_version(record: &Value) -> Result<Version, DriverError> {
    let version = text(record, "hypervisorversion");
    version.parse().map_err(|_| {
        DriverError::Failed(format!(
            "host {}: hypervisorversion {version:?} is not a version",
            text(record, "name")
        ))
    })
}

/// The host's boot as the API shows it: when its agent last disconnected, else when it was added.
fn boot_id(record: &Value) -> String {
    match text(record, "disconnected") {
        "" => format!("created {}", text(record, "created")),
        disconnected => format!("disconnected {disconnected}"),
    }
}

fn vm_running(record: &Value) -> bool {
    matches!(text(record, "state"), "Running" | "Migrating" | "Stopping")
}

impl CloudstackDriver {
    pub fn new(
        client: CloudstackClient,
        options: CloudstackOptions,
        inventory: &Cluster,
    ) -> CloudstackDriver {
        CloudstackDriver {
            client,
            options,
            cluster_name: inventory.name.clone(),
            roles: inventory
                .hosts
                .iter()
                .map(|host| (host.name.clone(), host.role))
                .collect(),
            inventory_vms: inventory
                .vms
                .iter()
                .map(|vm| {
                    (
                        vm.name.clone(),
                        (
                            inventory.host(vm.host).name.clone(),
                            vm.memory_mib,
                            vm.vcpus,
                        ),
                    )
                })
                .collect(),
            disabled_in_maintenance: Mutex::new(BTreeSet::new()),
            last_hosts: Mutex::new(HashMap::new()),
            scope: tokio::sync::Mutex::new(None),
        }
    }

    /// API requests made so far.
    pub fn requests_made(&self) -> u64 {
        self.client.requests_made()
    }

    /// `zoneid` / `clusterid` of the section's names.
    async fn scope(&self) -> Result<Vec<(&'static str, String)>, DriverError> {
        let mut known = self.scope.lock().await;
        if let Some(scope) = known.as_ref() {
            return Ok(scope.clone());
        }
        let mut scope = Vec::new();
        if let Some(zone) = &self.options.zone {
            let zones = self
                .client
                .list("listZones", &[("name", zone.clone())], "zone")
                .await
                .map_err(|error| driver_error(error, zone))?;
            let id = zones
                .iter()
                .find(|record| text(record, "name") == zone)
                .map(|record| text(record, "id").to_string())
                .ok_or_else(|| DriverError::NotFound(format!("CloudStack has no zone {zone}")))?;
            scope.push(("zoneid", id));
        }
        if let Some(cluster) = &self.options.cluster {
            let mut arguments = scope.clone();
            arguments.push(("name", cluster.clone()));
            let clusters = self
                .client
                .list("listClusters", &arguments, "cluster")
                .await
                .map_err(|error| driver_error(error, cluster))?;
            let id = clusters
                .iter()
                .find(|record| text(record, "name") == cluster)
                .map(|record| text(record, "id").to_string())
                .ok_or_else(|| {
                    DriverError::NotFound(format!("CloudStack has no cluster {cluster}"))
                })?;
            scope.push(("clusterid", id));
        }
        *known = Some(scope.clone());
        Ok(scope)
    }

    fn zone_scope(scope: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        scope
            .iter()
            .filter(|(name, _)| *name == "zoneid")
            .cloned()
            .collect()
    }

    async fn hosts(&self) -> Result<Vec<Value>, DriverError> {
        let mut arguments = self.scope().await?;
        arguments.push(("type", "Routing".into()));
        self.client
            .list("listHosts", &arguments, "host")
            .await
            .map_err(|error| driver_error(error, "management server"))
    }

    async fn host_by_name(&self, name: &str) -> Result<Value, DriverError> {
        let mut arguments = self.scope().await?;
        arguments.push(("type", "Routing".into()));
        arguments.push(("name", name.to_string()));
        let hosts = self
            .client
            .list("listHosts", &arguments, "host")
            .await
            .map_err(|error| driver_error(error, name))?;
        hosts
            .into_iter()
            .find(|record| text(record, "name") == name)
            .ok_or_else(|| DriverError::NotFound(format!("CloudStack has no host {name}")))
    }

    /// The VMs of one class (in the section's zone).
    async fn vms_of(
        &self,
        class: VmClass,
        extra: &[(&'static str, String)],
    ) -> Result<Vec<Value>, DriverError> {
        let mut arguments = Self::zone_scope(&self.scope().await?);
        arguments.extend(extra.iter().cloned());
        let (command, key) = match class {
            VmClass::User => ("listVirtualMachines", "virtualmachine"),
            VmClass::Router => ("listRouters", "router"),
            VmClass::System => ("listSystemVms", "systemvm"),
        };
        if class != VmClass::System {
            arguments.push(("listall", "true".into()));
        }
        self.client
            .list(command, &arguments, key)
            .await
            .map_err(|error| driver_error(error, "management server"))
    }

    /// A VM by name, whatever its class.
    async fn vm_by_name(&self, name: &str) -> Result<(VmClass, Value), DriverError> {
        for class in [VmClass::User, VmClass::Router, VmClass::System] {
            let found = self
                .vms_of(class, &[("name", name.to_string())])
                .await?
                .into_iter()
                .find(|record| text(record, "name") == name);
            if let Some(record) = found {
                return Ok((class, record));
            }
        }
        Err(DriverError::NotFound(format!(
            "CloudStack has no VM {name}"
        )))
    }

    async fn job(
        &self,
        command: &str,
        arguments: &[(&str, String)],
        timeout: Duration,
        subject: &str,
    ) -> Result<Value, DriverError> {
        self.client
            .run_job(command, arguments, timeout, self.options.poll)
            .await
            .map_err(|error| driver_error(error, subject))
    }

    fn remember_host(&self, vm: &str, host: &str) {
        let mut last = self.last_hosts.lock().unwrap_or_else(|e| e.into_inner());
        if last.len() > 100_000 {
            last.clear();
        }
        last.insert(vm.to_string(), host.to_string());
    }

    fn disabled_in_maintenance(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.disabled_in_maintenance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Learns from the platform which of these hosts in maintenance carry a mark (a process
    /// that did not put them there does not remember it): one `listAnnotations`, and only when
    /// some host is in maintenance.
    async fn learn_marks(&self, records: &[Value]) {
        let in_maintenance =
            |record: &&Value| MAINTENANCE_STATES.contains(&text(record, "resourcestate"));
        if !records.iter().any(|record| in_maintenance(&record)) {
            return;
        }
        match crate::marks::marked_hosts(&self.client).await {
            Ok(marked) => {
                let mut disabled = self.disabled_in_maintenance();
                for record in records.iter().filter(in_maintenance) {
                    if marked.contains(text(record, "id")) {
                        disabled.insert(text(record, "name").to_string());
                    }
                }
            }
            Err(error) => marks_unavailable("read", &error),
        }
    }

    /// Marks (or unmarks) `host` on the platform as Disabled before its maintenance, beside
    /// the process's own set.
    async fn remember_disabled(&self, host: &str, host_id: &str, disabled: bool) {
        let outcome = if disabled {
            self.disabled_in_maintenance().insert(host.to_string());
            crate::marks::mark(&self.client, host_id).await
        } else {
            self.disabled_in_maintenance().remove(host);
            crate::marks::unmark(&self.client, host_id).await
        };
        if let Err(error) = outcome {
            marks_unavailable(if disabled { "set" } else { "remove" }, &error);
        }
    }

    /// Whether `host` is to be disabled again when it leaves maintenance: this process's set
    /// or the platform's mark.
    async fn was_disabled(&self, host: &str, host_id: &str) -> bool {
        if self.disabled_in_maintenance().contains(host) {
            return true;
        }
        crate::marks::is_marked(&self.client, host_id)
            .await
            .unwrap_or_else(|error| {
                marks_unavailable("read", &error);
                false
            })
    }

    fn cordoned(&self, record: &Value) -> bool {
        let resource_state = text(record, "resourcestate");
        resource_state == "Disabled"
            || (MAINTENANCE_STATES.contains(&resource_state)
                && self
                    .disabled_in_maintenance()
                    .contains(text(record, "name")))
    }

    /// Waits until `host` satisfies `done` (answering an error ends the wait with it).
    async fn wait_for_host(
        &self,
        host: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> Result<bool, DriverError>,
    ) -> Result<Value, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            let record = self.host_by_name(host).await?;
            if done(&record)? {
                return Ok(record);
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Failed(format!(
                    "host {host} not {what} after {} s (resourcestate {}, state {})",
                    timeout.as_secs(),
                    text(&record, "resourcestate"),
                    text(&record, "state")
                )));
            }
            tokio::time::sleep(self.options.poll).await;
        }
    }

    async fn run_command(
        &self,
        step: &str,
        template: &ArgvTemplate,
        values: &PlaceholderValues,
        host: &str,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let context = StepContext::new(step, format!("host {host}"));
        let failed = |error: drover_command::CommandError| DriverError::Failed(error.to_string());
        let argv = template.render(&context, values).map_err(failed)?;
        let output = run_step(&context, &argv, RunLimits::with_timeout(timeout))
            .await
            .map_err(failed)?;
        if !output.succeeded() {
            return Err(DriverError::Failed(format!(
                "host {host}: the {step} command failed (exit {:?}){}",
                output.exit_code,
                output.message_tail()
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Driver for CloudstackDriver {
    fn kind(&self) -> &'static str {
        "cloudstack"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        let host_records = self.hosts().await?;
        self.learn_marks(&host_records).await;
        let mut hosts = Vec::new();
        let mut index_of_id: HashMap<String, usize> = HashMap::new();
        let mut index_of_name: HashMap<String, usize> = HashMap::new();
        let mut tags_of_host: Vec<BTreeSet<String>> = Vec::new();
        let mut cluster_of_host: Vec<String> = Vec::new();
        for record in &host_records {
            cluster_of_host.push(text(record, "clusterid").to_string());
            let name = text(record, "name").to_string();
            index_of_id.insert(text(record, "id").to_string(), hosts.len());
            index_of_name.insert(name.clone(), hosts.len());
            tags_of_host.push(
                text(record, "hosttags")
                    .split(',')
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
            let labels = [
                ("zone", text(record, "zonename")),
                ("cluster", text(record, "clustername")),
                ("hypervisor", text(record, "hypervisor")),
            ]
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
            hosts.push(Host {
                role: self.roles.get(&name).copied().unwrap_or(HostRole::Compute),
                version: host_version(record)?,
                memory_mib: number(record, "memorytotal") / MIB,
                cpus: number(record, "cpunumber") as u32,
                state: host_state(record),
                cordoned: self.cordoned(record),
                labels,
                name,
            });
        }
        let scope = Self::zone_scope(&self.scope().await?);
        let mut volume_arguments = scope.clone();
        volume_arguments.push(("listall", "true".into()));
        let local_vm_ids: BTreeSet<String> = self
            .client
            .list("listVolumes", &volume_arguments, "volume")
            .await
            .map_err(|error| driver_error(error, "management server"))?
            .iter()
            .filter(|volume| text(volume, "storagetype") == "local")
            .map(|volume| text(volume, "virtualmachineid").to_string())
            .collect();
        // Host tags restrict VMs only when some host carries one: then the offerings say which.
        let offering_tags: HashMap<String, BTreeSet<String>> =
            if tags_of_host.iter().any(|tags| !tags.is_empty()) {
                self.client
                    .list("listServiceOfferings", &[], "serviceoffering")
                    .await
                    .map_err(|error| driver_error(error, "management server"))?
                    .iter()
                    .map(|offering| {
                        (
                            text(offering, "id").to_string(),
                            text(offering, "hosttags")
                                .split(',')
                                .map(str::trim)
                                .filter(|tag| !tag.is_empty())
                                .map(str::to_string)
                                .collect(),
                        )
                    })
                    .collect()
            } else {
                HashMap::new()
            };
        let mut vms = Vec::new();
        for class in [VmClass::User, VmClass::Router, VmClass::System] {
            for record in self.vms_of(class, &[]).await? {
                let name = text(&record, "name").to_string();
                let inventory = self.inventory_vms.get(&name);
                let host = match index_of_id.get(text(&record, "hostid")) {
                    Some(index) => {
                        self.remember_host(&name, &hosts[*index].name);
                        *index
                    }
                    None if !text(&record, "hostid").is_empty() => continue, // another cluster
                    None => {
                        let last = self
                            .last_hosts
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(&name)
                            .cloned()
                            .or_else(|| inventory.map(|(host, _, _)| host.clone()));
                        match last.and_then(|host| index_of_name.get(&host).copied()) {
                            Some(index) => index,
                            None => continue,
                        }
                    }
                };
                let local = local_vm_ids.contains(text(&record, "id"));
                let tags = offering_tags
                    .get(text(&record, "serviceofferingid"))
                    .filter(|tags| !tags.is_empty());
                // A VM moves within its cluster (its primary storage) and onto hosts carrying
                // all of its offering's host tags.
                let one_cluster = cluster_of_host
                    .iter()
                    .all(|cluster| *cluster == cluster_of_host[host]);
                let allowed_hosts = (tags.is_some() || !one_cluster).then(|| {
                    (0..hosts.len())
                        .filter(|index| cluster_of_host[*index] == cluster_of_host[host])
                        .filter(|index| {
                            tags.is_none_or(|tags| tags.is_subset(&tags_of_host[*index]))
                        })
                        .map(|index| HostId(index as u32))
                        .collect::<Vec<_>>()
                });
                let anti_affinity = record
                    .get("affinitygroup")
                    .and_then(Value::as_array)
                    .and_then(|groups| {
                        groups
                            .iter()
                            .find(|group| text(group, "type") == "host anti-affinity")
                    })
                    .map(|group| text(group, "name").to_string());
                let (memory_mib, vcpus) = match class {
                    VmClass::User => (
                        number(&record, "memory"),
                        number(&record, "cpunumber") as u32,
                    ),
                    // System VM responses carry no size: the inventory's, else CloudStack's
                    // default system offerings (256 MiB routers, 512 MiB others).
                    _ => inventory.map_or(
                        (if class == VmClass::Router { 256 } else { 512 }, 1),
                        |(_, memory, vcpus)| (*memory, *vcpus),
                    ),
                };
                vms.push(Vm {
                    host: HostId(host as u32),
                    memory_mib,
                    vcpus: vcpus.max(1),
                    state: if vm_running(&record) {
                        VmState::Running
                    } else {
                        VmState::Stopped
                    },
                    migratable: match class {
                        VmClass::User => flag(&record, "isdynamicallyscalable").unwrap_or(true),
                        _ => true,
                    },
                    local_storage: local && !self.options.allow_migrate_with_volume,
                    // The hotfix procedure (CTX133466) restarts the VMs without tools on another
                    // host, so Drover may; an HA VM is restarted by CloudStack itself.
                    unmovable: None,
                    restart_policy: match class {
                        VmClass::User
                            if flag(&record, "haenable") != Some(true)
                                && flag(&record, "isdynamicallyscalable") != Some(false) =>
                        {
                            RestartPolicy::Manual
                        }
                        _ => RestartPolicy::Always,
                    },
                    anti_affinity,
                    allowed_hosts,
                    name,
                });
            }
        }
        Ok(Discovered {
            hosts,
            vms,
            settings: None,
        })
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        let record = self.host_by_name(host).await?;
        self.learn_marks(std::slice::from_ref(&record)).await;
        if host_state(&record) == HostState::Down {
            return Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: format!("CloudStack reports state {}", text(&record, "state")),
            });
        }
        Ok(HostFacts {
            version: host_version(&record)?,
            boot_id: boot_id(&record),
            in_maintenance: host_state(&record) == HostState::Maintenance,
            cordoned: self.cordoned(&record),
        })
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        match text(&record, "state") {
            "Up" => Ok(()),
            state => Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: format!("CloudStack reports state {state}"),
            }),
        }
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        let resource_state = text(&record, "resourcestate");
        if MAINTENANCE_STATES.contains(&resource_state) {
            // Applied when the host leaves maintenance (CloudStack enables it then).
            self.remember_disabled(host, text(&record, "id"), !enabled)
                .await;
            return Ok(());
        }
        let wanted = if enabled { "Enable" } else { "Disable" };
        let disabled = resource_state == "Disabled";
        if disabled != enabled {
            // Already as asked: Disabled for a cordon, anything else for an uncordon.
            return Ok(());
        }
        self.client
            .call(
                "updateHost",
                &[
                    ("id", text(&record, "id").to_string()),
                    ("allocationstate", wanted.to_string()),
                ],
            )
            .await
            .map(|_| ())
            .map_err(|error| driver_error(error, host))
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        let id = text(&record, "id").to_string();
        let resource_state = text(&record, "resourcestate").to_string();
        let in_maintenance = |record: &Value| -> Result<bool, DriverError> {
            match text(record, "resourcestate") {
                "Maintenance" => Ok(true),
                "ErrorInMaintenance" => Err(DriverError::Failed(format!(
                    "host {host}: CloudStack reports ErrorInMaintenance"
                ))),
                _ => Ok(false),
            }
        };
        if enabled {
            match resource_state.as_str() {
                "Maintenance" => return Ok(()),
                "PrepareForMaintenance" => {
                    self.wait_for_host(
                        host,
                        self.options.job_timeout,
                        "in maintenance",
                        in_maintenance,
                    )
                    .await?;
                    return Ok(());
                }
                _ => {}
            }
            let mut running = Vec::new();
            for class in [VmClass::User, VmClass::Router, VmClass::System] {
                running.extend(
                    self.vms_of(class, &[("hostid", id.clone())])
                        .await?
                        .iter()
                        .filter(|vm| vm_running(vm))
                        .map(|vm| text(vm, "name").to_string()),
                );
            }
            if !running.is_empty() {
                return Err(DriverError::Refused(format!(
                    "host {host} still runs {}: Drover moves VMs itself before maintenance",
                    running.join(", ")
                )));
            }
            if resource_state == "Disabled" {
                self.remember_disabled(host, &id, true).await;
            }
            self.job(
                "prepareHostForMaintenance",
                &[("id", id)],
                self.options.job_timeout,
                host,
            )
            .await?;
            self.wait_for_host(
                host,
                self.options.job_timeout,
                "in maintenance",
                in_maintenance,
            )
            .await?;
            return Ok(());
        }
        let disable_again = self.was_disabled(host, &id).await;
        if MAINTENANCE_STATES.contains(&resource_state.as_str()) {
            self.job(
                "cancelHostMaintenance",
                &[("id", id.clone())],
                self.options.job_timeout,
                host,
            )
            .await?;
        } else if !disable_again {
            return Ok(());
        }
        // Also reached out of maintenance when a process stopped between the cancel and this
        // (the mark still there): the host is disabled again, then the mark goes.
        if disable_again {
            let record = self.host_by_name(host).await?;
            if text(&record, "resourcestate") != "Disabled" {
                self.client
                    .call(
                        "updateHost",
                        &[
                            ("id", id.clone()),
                            ("allocationstate", "Disable".to_string()),
                        ],
                    )
                    .await
                    .map_err(|error| driver_error(error, host))?;
            }
            self.remember_disabled(host, &id, false).await;
        }
        Ok(())
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        let (class, mut record) = self.vm_by_name(vm).await?;
        // A migration still in flight (an earlier call given up by Drover): CloudStack cannot
        // cancel it, so its end (or `migratewait`) is waited for, up to the job timeout.
        let deadline = Instant::now() + self.options.job_timeout;
        while text(&record, "state") == "Migrating" && Instant::now() < deadline {
            tokio::time::sleep(self.options.poll).await;
            record = self.vm_by_name(vm).await?.1;
        }
        if vm_running(&record)
            && text(&record, "hostname") == to
            && text(&record, "state") == "Running"
        {
            return Ok(());
        }
        if text(&record, "state") != "Running" {
            return Err(DriverError::Refused(format!(
                "VM {vm} is {}, not Running: it cannot be migrated",
                text(&record, "state")
            )));
        }
        if text(&record, "hostname") != from {
            return Err(DriverError::Refused(format!(
                "VM {vm} runs on {}, not on {from}",
                text(&record, "hostname")
            )));
        }
        let destination = self.host_by_name(to).await?;
        let vm_id = text(&record, "id").to_string();
        let host_id = text(&destination, "id").to_string();
        let command = match class {
            VmClass::Router | VmClass::System => "migrateSystemVm",
            VmClass::User if self.options.allow_migrate_with_volume => {
                let volumes = self
                    .client
                    .list(
                        "listVolumes",
                        &[
                            ("virtualmachineid", vm_id.clone()),
                            ("listall", "true".into()),
                        ],
                        "volume",
                    )
                    .await
                    .map_err(|error| driver_error(error, vm))?;
                if volumes
                    .iter()
                    .any(|volume| text(volume, "storagetype") == "local")
                {
                    "migrateVirtualMachineWithVolume"
                } else {
                    "migrateVirtualMachine"
                }
            }
            VmClass::User => "migrateVirtualMachine",
        };
        self.job(
            command,
            &[("virtualmachineid", vm_id), ("hostid", host_id)],
            self.options.job_timeout,
            from,
        )
        .await?;
        let (_, after) = self.vm_by_name(vm).await?;
        if text(&after, "hostname") != to {
            return Err(DriverError::Failed(format!(
                "{command} of {vm} ended, yet CloudStack shows it on {:?}",
                text(&after, "hostname")
            )));
        }
        self.remember_host(vm, to);
        Ok(())
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        let (class, record) = self.vm_by_name(vm).await?;
        if text(&record, "state") == "Stopped" {
            return Ok(ShutdownObserved { forced: false });
        }
        if class != VmClass::User {
            return Err(DriverError::Refused(format!(
                "{vm} is a system VM: CloudStack keeps it running, Drover migrates it"
            )));
        }
        let forced = graceful_timeout.is_zero();
        self.remember_host(vm, host);
        self.job(
            "stopVirtualMachine",
            &[
                ("id", text(&record, "id").to_string()),
                ("forced", forced.to_string()),
            ],
            graceful_timeout + self.options.job_timeout,
            host,
        )
        .await?;
        Ok(ShutdownObserved { forced })
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let (class, record) = self.vm_by_name(vm).await?;
        if vm_running(&record) {
            return if text(&record, "hostname") == host {
                Ok(())
            } else {
                Err(DriverError::Refused(format!(
                    "VM {vm} already runs on {}",
                    text(&record, "hostname")
                )))
            };
        }
        if class != VmClass::User {
            return Err(DriverError::Refused(format!(
                "{vm} is a system VM: CloudStack starts it itself"
            )));
        }
        let destination = self.host_by_name(host).await?;
        self.job(
            "startVirtualMachine",
            &[
                ("id", text(&record, "id").to_string()),
                ("hostid", text(&destination, "id").to_string()),
            ],
            self.options.job_timeout,
            host,
        )
        .await?;
        self.remember_host(vm, host);
        Ok(())
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        if host_version(&record)? >= *target {
            return Ok(());
        }
        let mut values = PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(Placeholder::HostAddress, text(&record, "ipaddress"))
            .with(Placeholder::Cluster, self.cluster_name.as_str());
        for (placeholder, value) in
            HostUpgradePlan::values(self.options.upgrade_plans.get(host), &target.to_string())
        {
            values = values.with(placeholder, value);
        }
        self.run_command(
            "upgrade",
            &self.options.upgrade_command,
            &values,
            host,
            self.options.upgrade_timeout,
        )
        .await?;
        self.wait_for_host(
            host,
            self.options.upgrade_timeout,
            &format!("at {target}"),
            |record| Ok(host_version(record)? >= *target),
        )
        .await?;
        Ok(())
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        if boot_id(&record) != boot_id_before {
            return Ok(());
        }
        let values = PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(Placeholder::HostAddress, text(&record, "ipaddress"))
            .with(Placeholder::BootIdBefore, boot_id_before);
        self.run_command(
            "reboot",
            &self.options.reboot_command,
            &values,
            host,
            self.options.upgrade_timeout,
        )
        .await?;
        self.wait_for_host(
            host,
            self.options.upgrade_timeout,
            "back with a new boot",
            |record| Ok(text(record, "state") == "Up" && boot_id(record) != boot_id_before),
        )
        .await?;
        Ok(())
    }

    async fn set_compatibility_level(
        &self,
        cluster: &str,
        _level: &str,
    ) -> Result<(), DriverError> {
        Err(DriverError::Refused(format!(
            "cluster {cluster}: CloudStack clusters have no compatibility level"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maintenance_states_win_over_the_agent_state() {
        assert_eq!(
            host_state(&json!({"state": "Disconnected", "resourcestate": "Maintenance"})),
            HostState::Maintenance
        );
        assert_eq!(
            host_state(&json!({"state": "Up", "resourcestate": "Disabled"})),
            HostState::Up
        );
        assert_eq!(
            host_state(&json!({"state": "Alert", "resourcestate": "Enabled"})),
            HostState::Down
        );
    }

    #[test]
    fn refusals_and_failures_keep_the_cloudstack_codes() {
        let refused = driver_error(
            CloudstackError::Api {
                command: "migrateVirtualMachine".into(),
                error_code: 431,
                cs_error_code: 4350,
                text: "destination host is not in correct state".into(),
            },
            "h1",
        );
        assert!(
            matches!(&refused, DriverError::Refused(text) if text.contains("errorcode 431") && text.contains("4350")),
            "{refused:?}"
        );
        let failed = driver_error(
            CloudstackError::JobFailed {
                command: "migrateVirtualMachine".into(),
                job_id: "j".into(),
                error_code: 530,
                cs_error_code: 4250,
                text: "boom".into(),
            },
            "h1",
        );
        assert!(
            matches!(&failed, DriverError::Failed(text) if text.contains("530")),
            "{failed:?}"
        );
    }

    #[test]
    fn the_boot_id_follows_the_last_disconnection() {
        assert_eq!(
            boot_id(&json!({"created": "2026-01-01T00:00:00+0000"})),
            "created 2026-01-01T00:00:00+0000"
        );
        assert_eq!(
            boot_id(&json!({"created": "c", "disconnected": "2026-01-02T00:00:00+0000"})),
            "disconnected 2026-01-02T00:00:00+0000"
        );
    }
}
