//! The emulated CloudStack management server: the simulator's world ([`SimDriver`]) seen through
//! the CloudStack API's commands, responses, asynchronous jobs and error responses.
//!
//! Names come from apache/cloudstack (`api/src/main/java/org/apache/cloudstack/api/…`):
//! - responses are `{"<command lower-cased>response": {…}}`; a list is `{"count": N, "<object>":
//!   […]}` and an empty list `{}` (`ListResponse`); objects and keys as `HostResponse` (`type`
//!   Routing, `state`, `resourcestate`, `hypervisor`, `hypervisorversion`, `cpunumber`,
//!   `cpuallocated`, `memorytotal`, `memoryallocated`, `hosttags`, `disconnected`, …),
//!   `UserVmResponse` (`state`, `hostid`, `memory` in MiB, `cpunumber`, `details`, `haenable`,
//!   `isdynamicallyscalable`: "true if vm contains XS/VMWare tools", `affinitygroup`),
//!   `SystemVmResponse` (`systemvmtype` consoleproxy / secondarystoragevm), `DomainRouterResponse`,
//!   `VolumeResponse` (`type` ROOT, `storagetype` local / shared), `AffinityGroupResponse`
//!   (`type` "host anti-affinity", `virtualmachineIds`), `ServiceOfferingResponse` (`hosttags`),
//!   `ZoneResponse`, `ClusterResponse`;
//! - an asynchronous command answers `{"jobid": …}` and `queryAsyncJobResult` answers
//!   `AsyncJobResponse` (`jobstatus` 0 pending / 1 succeeded / 2 failed, `jobresultcode` 0 or the
//!   error code, `jobresulttype` object, `jobresult`: the object, or `errorcode`/`errortext`);
//! - an error is `ExceptionResponse` (`uuidList`, `errorcode`, `cserrorcode`, `errortext`) under
//!   the command's response name, with the HTTP status equal to the error code
//!   (`ApiErrorCode.java`: 401 unauthorized, 431 parameter error, 432 unsupported action, 530
//!   internal error, 533 insufficient capacity, 534 resource unavailable, 536 resource in use;
//!   `cserrorcode` from `CSExceptionErrorCode.java`: 4350 InvalidParameterValueException, 4250
//!   CloudRuntimeException, 4335 InsufficientServerCapacityException, 9999 ServerApiException).
//!
//! The inventory gives the layout: a host's `zone` label is its zone (default `zone1`), its
//! `cluster` label its cluster (default `<zone>-cluster1`), its `hypervisor` label its hypervisor
//! (default XenServer). VMs named as CloudStack names system VMs (`r-N-VM` virtual routers,
//! `s-N-VM` secondary storage VMs, `v-N-VM` console proxies) are system VMs; the others are user
//! VMs. A VM that is not `migratable` is one without tools (`isdynamicallyscalable` false). A VM
//! restricted to some hosts has a service offering whose host tag only those hosts carry.
//!
//! This module must not know HTTP: it answers decoded parameters with JSON documents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use drover_core::{Cluster, HostState, RestartPolicy, VmState};
use drover_driver::{Discovered, Driver, DriverError};
use drover_sim::driver::{PlatformHostState, SimDriver, WorldSnapshot};
use serde_json::{json, Map, Value};

use super::signature;

/// Jobs kept; the oldest finished one makes room for a new one, and a command is refused
/// (530) when every kept job still runs.
pub const MAX_JOBS: usize = 1_024;
/// `default.page.size`, the page size when a list command gives `page` without `pagesize`.
pub const DEFAULT_PAGE_SIZE: usize = 500;
/// The longest `pagesize` accepted.
pub const MAX_PAGE_SIZE: usize = 5_000;
/// How long `stopVirtualMachine` waits for a guest before powering it off (`forced=true`: not).
const GRACEFUL_STOP_WAIT: Duration = Duration::from_secs(600);
/// `migratewait`, CloudStack's global setting: a migration still running after this long (platform
/// time) is given up by the server, the VM staying on its source (CloudStack has no API to
/// cancel a migration).
pub const DEFAULT_MIGRATE_WAIT: Duration = Duration::from_secs(3_600);
/// The CPU speed every emulated host reports, MHz.
const CPU_SPEED_MHZ: u64 = 2_000;

/// The one API key pair the emulated server knows.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub api_key: String,
    pub secret_key: String,
}

/// What one request gets back: the HTTP status and the JSON document.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// `ApiErrorCode` values the emulator answers with.
pub mod error_code {
    pub const UNAUTHORIZED: u16 = 401;
    pub const PARAM_ERROR: u16 = 431;
    pub const UNSUPPORTED_ACTION_ERROR: u16 = 432;
    pub const INTERNAL_ERROR: u16 = 530;
    pub const INSUFFICIENT_CAPACITY_ERROR: u16 = 533;
    pub const RESOURCE_UNAVAILABLE_ERROR: u16 = 534;
}

/// `CSExceptionErrorCode` values the emulator answers with.
pub mod cs_error_code {
    pub const CLOUD_RUNTIME_EXCEPTION: u32 = 4250;
    pub const INSUFFICIENT_SERVER_CAPACITY_EXCEPTION: u32 = 4335;
    pub const INVALID_PARAMETER_VALUE_EXCEPTION: u32 = 4350;
    pub const RESOURCE_UNAVAILABLE_EXCEPTION: u32 = 4380;
    pub const SERVER_API_EXCEPTION: u32 = 9999;
}

/// The text `ApiServlet` answers a refused signature with.
pub const UNAUTHORIZED_TEXT: &str = "unable to verify user credentials and/or request signature";

/// The kinds of object, for ids (the first group of each uuid).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Zone = 1,
    Pod = 2,
    Cluster = 3,
    Host = 4,
    Vm = 5,
    Volume = 6,
    AffinityGroup = 7,
    Job = 8,
    ServiceOffering = 9,
}

fn uuid(class: Class, index: usize) -> String {
    format!("{:08x}-0000-4000-8000-{index:012x}", class as u32)
}

fn index_of(class: Class, id: &str) -> Option<usize> {
    let (prefix, rest) = id.split_once('-')?;
    let index = usize::from_str_radix(rest.rsplit('-').next()?, 16).ok()?;
    (u32::from_str_radix(prefix, 16).ok()? == class as u32 && uuid(class, index) == id)
        .then_some(index)
}

/// What kind of VM an inventory VM is, by CloudStack's naming of system VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmKind {
    User,
    Router,
    SecondaryStorage,
    ConsoleProxy,
}

impl VmKind {
    /// `r-N-VM`, `s-N-VM`, `v-N-VM` are CloudStack's system VM names; anything else is a user VM.
    pub fn of_name(name: &str) -> VmKind {
        let parts: Vec<&str> = name.split('-').collect();
        let numbered = parts.len() == 3
            && parts[2] == "VM"
            && !parts[1].is_empty()
            && parts[1].bytes().all(|byte| byte.is_ascii_digit());
        match (numbered, parts.first().copied()) {
            (true, Some("r")) => VmKind::Router,
            (true, Some("s")) => VmKind::SecondaryStorage,
            (true, Some("v")) => VmKind::ConsoleProxy,
            _ => VmKind::User,
        }
    }

    fn system_vm_type(self) -> Option<&'static str> {
        match self {
            VmKind::SecondaryStorage => Some("secondarystoragevm"),
            VmKind::ConsoleProxy => Some("consoleproxy"),
            _ => None,
        }
    }
}

/// What the management server is doing to a host besides what the simulator reports.
#[derive(Clone, Copy, Debug, PartialEq)]
enum HostActivity {
    PrepareForMaintenance,
    /// The last `prepareHostForMaintenance` failed; `cancelHostMaintenance` clears it.
    ErrorInMaintenance,
}

struct Job {
    /// The command class, as `AsyncJobResponse.cmd` names it.
    command_class: &'static str,
    instance_type: &'static str,
    instance_id: String,
    /// 0 pending, 1 succeeded, 2 failed.
    status: u8,
    result_code: u16,
    result: Option<Value>,
    created_ms: u64,
    completed_ms: Option<u64>,
}

#[derive(Default)]
struct State {
    next_job: usize,
    jobs: BTreeMap<usize, Job>,
    calls: BTreeMap<String, u64>,
    hosts: HashMap<usize, HostActivity>,
    /// Per (host, boot id): when that boot was first seen, the `disconnected` date after a reboot.
    boots: HashMap<(usize, String), u64>,
    /// The hotfixes the installer stand-in was given, per host, in order.
    hotfixes: BTreeMap<String, Vec<String>>,
    /// `migratewait` (platform time); `None`: [`DEFAULT_MIGRATE_WAIT`].
    migrate_wait: Option<Duration>,
    annotations: super::annotations::Annotations,
}

/// The zones, pods and clusters, from the inventory's labels.
struct Layout {
    zones: Vec<String>,
    /// (zone index, cluster name)
    clusters: Vec<(usize, String)>,
    host_cluster: Vec<usize>,
    hypervisors: Vec<String>,
    /// Service offerings: 0 is untagged; the others carry one host tag each.
    offerings: Vec<Option<BTreeSet<usize>>>,
    vm_offering: Vec<usize>,
    /// Affinity group names (inventory `anti_affinity`), sorted.
    affinity_groups: Vec<String>,
}

impl Layout {
    fn of(cluster: &Cluster) -> Layout {
        let mut zones: Vec<String> = Vec::new();
        let mut clusters: Vec<(usize, String)> = Vec::new();
        let mut host_cluster = Vec::new();
        let mut hypervisors = Vec::new();
        for host in &cluster.hosts {
            let zone = host
                .labels
                .get("zone")
                .cloned()
                .unwrap_or_else(|| "zone1".to_string());
            let zone_index = zones
                .iter()
                .position(|known| *known == zone)
                .unwrap_or_else(|| {
                    zones.push(zone.clone());
                    zones.len() - 1
                });
            let cluster_name = host
                .labels
                .get("cluster")
                .cloned()
                .unwrap_or_else(|| format!("{zone}-cluster1"));
            let cluster_index = clusters
                .iter()
                .position(|known| *known == (zone_index, cluster_name.clone()))
                .unwrap_or_else(|| {
                    clusters.push((zone_index, cluster_name));
                    clusters.len() - 1
                });
            host_cluster.push(cluster_index);
            hypervisors.push(
                host.labels
                    .get("hypervisor")
                    .cloned()
                    .unwrap_or_else(|| "XenServer".to_string()),
            );
        }
        let mut offerings: Vec<Option<BTreeSet<usize>>> = vec![None];
        let mut vm_offering = Vec::new();
        for vm in &cluster.vms {
            let offering = match &vm.allowed_hosts {
                None => 0,
                Some(allowed) => {
                    let set: BTreeSet<usize> = allowed.iter().map(|host| host.index()).collect();
                    offerings
                        .iter()
                        .position(|known| known.as_ref() == Some(&set))
                        .unwrap_or_else(|| {
                            offerings.push(Some(set));
                            offerings.len() - 1
                        })
                }
            };
            vm_offering.push(offering);
        }
        let affinity_groups: BTreeSet<String> = cluster
            .vms
            .iter()
            .filter_map(|vm| vm.anti_affinity.clone())
            .collect();
        Layout {
            zones,
            clusters,
            host_cluster,
            hypervisors,
            offerings,
            vm_offering,
            affinity_groups: affinity_groups.into_iter().collect(),
        }
    }

    fn host_zone(&self, host: usize) -> usize {
        self.clusters[self.host_cluster[host]].0
    }

    fn host_tags(&self, host: usize) -> Vec<String> {
        (1..self.offerings.len())
            .filter(|offering| {
                self.offerings[*offering]
                    .as_ref()
                    .is_some_and(|hosts| hosts.contains(&host))
            })
            .map(offering_tag)
            .collect()
    }
}

fn offering_tag(offering: usize) -> String {
    format!("drover-tag-{offering}")
}

/// The platform as one request sees it.
struct View {
    discovered: Discovered,
    snapshot: WorldSnapshot,
}

/// An error response under the command's response name.
fn error_reply(command: &str, code: u16, cs_code: Option<u32>, text: &str) -> Reply {
    let mut inner = Map::new();
    inner.insert("uuidList".into(), json!([]));
    inner.insert("errorcode".into(), json!(code));
    if let Some(cs_code) = cs_code {
        inner.insert("cserrorcode".into(), json!(cs_code));
    }
    inner.insert("errortext".into(), json!(text));
    Reply {
        status: code,
        body: json!({ response_name(command): Value::Object(inner) }),
    }
}

/// `InvalidParameterValueException`: 431 with cserrorcode 4350.
fn parameter_error(command: &str, text: &str) -> Reply {
    error_reply(
        command,
        error_code::PARAM_ERROR,
        Some(cs_error_code::INVALID_PARAMETER_VALUE_EXCEPTION),
        text,
    )
}

fn missing_parameter(command: &str, name: &str) -> Reply {
    // ApiDispatcher's wording for a required parameter left out.
    error_reply(
        command,
        error_code::PARAM_ERROR,
        Some(cs_error_code::SERVER_API_EXCEPTION),
        &format!(
            "Unable to execute API command {} due to missing parameter {name}",
            command.to_lowercase()
        ),
    )
}

fn response_name(command: &str) -> String {
    if command.is_empty() {
        "errorresponse".to_string()
    } else {
        format!("{}response", command.to_lowercase())
    }
}

fn ok(command: &str, inner: Value) -> Reply {
    Reply {
        status: 200,
        body: json!({ response_name(command): inner }),
    }
}

/// The CloudStack date (`2026-12-06T07:30:00+0000`) for epoch milliseconds.
pub fn date_text(epoch_ms: u64) -> String {
    jiff::Timestamp::from_millisecond(epoch_ms as i64)
        .map(|timestamp| timestamp.strftime("%Y-%m-%dT%H:%M:%S%z").to_string())
        .unwrap_or_default()
}

/// `DecimalFormat("#.##")` of a share, with `%` (how `ApiResponseHelper` writes `cpuallocated`).
fn percent_text(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".to_string();
    }
    let value = (part as f64) * 100.0 / (whole as f64);
    let rounded = (value * 100.0).round() / 100.0;
    let text = format!("{rounded:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// The emulated management server. Cheap to share (`Arc`).
pub struct Management {
    driver: SimDriver,
    cluster: Arc<Cluster>,
    credentials: Credentials,
    layout: Layout,
    start_ms: u64,
    state: Mutex<State>,
}

/// Decoded request parameters, first value per name, looked up case-insensitively as the API
/// server does.
struct Parameters<'a>(&'a [(String, String)]);

impl Parameters<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        signature::parameter(self.0, name).filter(|value| !value.is_empty())
    }
}

impl Management {
    pub fn new(driver: SimDriver, cluster: Cluster, credentials: Credentials) -> Arc<Management> {
        let layout = Layout::of(&cluster);
        Arc::new(Management {
            driver,
            cluster: Arc::new(cluster),
            credentials,
            layout,
            start_ms: drover_driver::wall_now_ms(),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests answered, by command (the emulator's own counter, for "API calls per migrated
    /// VM"); refused signatures count under `unauthorized`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    fn count_call(&self, key: &str) {
        let mut state = self.lock();
        if state.calls.len() < 256 || state.calls.contains_key(key) {
            *state.calls.entry(key.to_string()).or_default() += 1;
        }
    }

    /// The hypervisor's own installer (not CloudStack: hotfixes are applied on the host), for a
    /// test's `upgrade` command: installs `target` on `host` and records the `hotfixes` given.
    pub async fn install_on_host(
        &self,
        host: &str,
        target: &str,
        hotfixes: &[String],
    ) -> Result<(), String> {
        let target: drover_core::Version = target
            .parse()
            .map_err(|_| format!("{target:?} is not a version"))?;
        if !self.cluster.hosts.iter().any(|known| known.name == host) {
            return Err(format!("no host {host}"));
        }
        {
            let mut state = self.lock();
            if state.hotfixes.len() < 4 * self.cluster.hosts.len() + 64 {
                let applied = state.hotfixes.entry(host.to_string()).or_default();
                if applied.len() < 1_024 {
                    applied.extend(hotfixes.iter().cloned());
                }
            }
        }
        self.driver
            .upgrade(host, &target)
            .await
            .map_err(|problem| problem.to_string())
    }

    /// Sets `migratewait` (platform time), as an operator sets the global setting.
    pub fn set_migrate_wait(&self, wait: Duration) {
        self.lock().migrate_wait = Some(wait);
    }

    fn migrate_wait_ms(&self) -> u64 {
        self.lock()
            .migrate_wait
            .unwrap_or(DEFAULT_MIGRATE_WAIT)
            .as_millis() as u64
    }

    /// The simulated world behind the API (for tests that check invariants on the platform).
    pub fn snapshot(&self) -> WorldSnapshot {
        self.driver.snapshot()
    }

    /// The hotfixes the installer stand-in applied, per host.
    pub fn hotfixes_applied(&self) -> BTreeMap<String, Vec<String>> {
        self.lock().hotfixes.clone()
    }

    /// The hypervisor's own reboot (not CloudStack, which has no host reboot for a hypervisor
    /// host), for a test's `reboot` command: reboots `host` unless it already has another boot.
    pub async fn reboot_host(&self, host: &str) -> Result<(), String> {
        let boot_id = self
            .driver
            .snapshot()
            .host(host)
            .map(|snapshot| snapshot.boot_id.clone())
            .ok_or_else(|| format!("no host {host}"))?;
        self.driver
            .reboot(host, &boot_id)
            .await
            .map_err(|problem| problem.to_string())
    }

    async fn view(&self, command: &str) -> Result<View, Reply> {
        let discovered = self.driver.discover().await.map_err(|problem| {
            error_reply(
                command,
                error_code::INTERNAL_ERROR,
                Some(cs_error_code::CLOUD_RUNTIME_EXCEPTION),
                &problem.to_string(),
            )
        })?;
        Ok(View {
            discovered,
            snapshot: self.driver.snapshot(),
        })
    }

    /// Answers one request to `/client/api` (its decoded query and form parameters).
    pub async fn handle(self: &Arc<Self>, parameters: &[(String, String)]) -> Reply {
        let command = signature::parameter(parameters, "command")
            .unwrap_or("")
            .to_string();
        if let Err(refusal) = signature::verify(
            parameters,
            &self.credentials.api_key,
            &self.credentials.secret_key,
            drover_driver::wall_now_ms(),
        ) {
            tracing::debug!(?refusal, "signature refused");
            self.count_call("unauthorized");
            return error_reply(&command, error_code::UNAUTHORIZED, None, UNAUTHORIZED_TEXT);
        }
        self.count_call(&command);
        let parameters = Parameters(parameters);
        if parameters.get("response") != Some("json") {
            return parameter_error(
                &command,
                "The emulator answers response=json only; XML is not served",
            );
        }
        match command.as_str() {
            "listZones" => self.list_zones(&command, &parameters),
            "listClusters" => self.list_clusters(&command, &parameters),
            "listHosts" => self.list_hosts(&command, &parameters).await,
            "listVirtualMachines" => {
                self.list_vms(&command, &parameters, &[VmKind::User], "virtualmachine")
                    .await
            }
            "listSystemVms" => {
                self.list_vms(
                    &command,
                    &parameters,
                    &[VmKind::SecondaryStorage, VmKind::ConsoleProxy],
                    "systemvm",
                )
                .await
            }
            "listRouters" => {
                self.list_vms(&command, &parameters, &[VmKind::Router], "router")
                    .await
            }
            "listVolumes" => self.list_volumes(&command, &parameters).await,
            "listAffinityGroups" => self.list_affinity_groups(&command, &parameters),
            "listServiceOfferings" => self.list_service_offerings(&command, &parameters),
            "updateHost" => self.update_host(&command, &parameters).await,
            "migrateVirtualMachine"
            | "migrateVirtualMachineWithVolume"
            | "migrateSystemVm" => self.migrate(&command, &parameters).await,
            "stopVirtualMachine" => self.stop_vm(&command, &parameters).await,
            "startVirtualMachine" => self.start_vm(&command, &parameters).await,
            "prepareHostForMaintenance" => self.prepare_maintenance(&command, &parameters).await,
            "cancelHostMaintenance" => self.cancel_maintenance(&command, &parameters).await,
            "queryAsyncJobResult" => self.query_job(&command, &parameters),
            "addAnnotation" | "listAnnotations" | "removeAnnotation" => {
                self.annotation_command(&command, &parameters)
            }
            // Known to CloudStack but not emulated: 432, as for a command not available.
            _ => error_reply(
                &command,
                error_code::UNSUPPORTED_ACTION_ERROR,
                Some(4555),
                &format!(
                    "The given command {command} either does not exist or is not emulated by drover-emulator"
                ),
            ),
        }
    }

    // --- Objects -------------------------------------------------------------------------

    fn zone_json(&self, zone: usize) -> Value {
        json!({
            "id": uuid(Class::Zone, zone),
            "name": self.layout.zones[zone],
            "allocationstate": "Enabled",
            "networktype": "Advanced",
            "localstorageenabled": true,
        })
    }

    fn cluster_json(&self, cluster: usize) -> Value {
        let (zone, name) = &self.layout.clusters[cluster];
        let hypervisor = (0..self.cluster.hosts.len())
            .find(|host| self.layout.host_cluster[*host] == cluster)
            .map(|host| self.layout.hypervisors[host].clone())
            .unwrap_or_else(|| "XenServer".to_string());
        json!({
            "id": uuid(Class::Cluster, cluster),
            "name": name,
            "zoneid": uuid(Class::Zone, *zone),
            "zonename": self.layout.zones[*zone],
            "podid": uuid(Class::Pod, *zone),
            "podname": format!("{}-pod1", self.layout.zones[*zone]),
            "hypervisortype": hypervisor,
            "clustertype": "CloudManaged",
            "allocationstate": "Enabled",
            "managedstate": "Managed",
        })
    }

    /// (`state`, `resourcestate`) of a host.
    fn host_states(&self, host: usize, view: &View) -> (&'static str, &'static str) {
        let activity = self.lock().hosts.get(&host).copied();
        let snapshot = view.snapshot.host(&self.cluster.hosts[host].name);
        let state = match snapshot.map(|host| host.state) {
            Some(PlatformHostState::Up) | Some(PlatformHostState::Maintenance) => "Up",
            // The agent is away while the host reboots.
            Some(PlatformHostState::Rebooting) => "Disconnected",
            Some(PlatformHostState::Down) | None => "Down",
        };
        let resource_state = match activity {
            Some(HostActivity::PrepareForMaintenance) => "PrepareForMaintenance",
            Some(HostActivity::ErrorInMaintenance) => "ErrorInMaintenance",
            None => match snapshot {
                Some(snapshot) if snapshot.state == PlatformHostState::Maintenance => "Maintenance",
                Some(snapshot) if snapshot.cordoned => "Disabled",
                _ => "Enabled",
            },
        };
        (state, resource_state)
    }

    fn disconnected_ms(&self, host: usize, view: &View) -> Option<u64> {
        let boot_id = view
            .snapshot
            .host(&self.cluster.hosts[host].name)?
            .boot_id
            .clone();
        let mut state = self.lock();
        if state.boots.len() > 4 * self.cluster.hosts.len() + 64 {
            state.boots.clear();
        }
        let first_seen = match state.boots.get(&(host, boot_id.clone())) {
            Some(first_seen) => *first_seen,
            None => {
                // Dates are whole seconds: a later boot gets a later `disconnected` date.
                let latest = state
                    .boots
                    .iter()
                    .filter(|((known, _), _)| *known == host)
                    .map(|(_, seen)| *seen)
                    .max()
                    .unwrap_or(0);
                let now_ms = drover_driver::wall_now_ms();
                let seen = if latest == 0 {
                    now_ms
                } else {
                    now_ms.max(latest / 1000 * 1000 + 1000)
                };
                state.boots.insert((host, boot_id), seen);
                seen
            }
        };
        // The boot the emulator started with has no disconnection yet.
        (first_seen > self.start_ms + 1_000).then_some(first_seen)
    }

    fn host_json(&self, host: usize, view: &View) -> Value {
        let configured = &self.cluster.hosts[host];
        let cluster = self.layout.host_cluster[host];
        let zone = self.layout.host_zone(host);
        let (state, resource_state) = self.host_states(host, view);
        let version = view
            .discovered
            .hosts
            .get(host)
            .map_or_else(|| configured.version.clone(), |host| host.version.clone());
        let running: Vec<&drover_core::Vm> = view
            .discovered
            .vms
            .iter()
            .filter(|vm| vm.host.index() == host && vm.state == VmState::Running)
            .collect();
        let memory_total = configured.memory_mib * 1024 * 1024;
        let memory_allocated: u64 = running.iter().map(|vm| vm.memory_mib * 1024 * 1024).sum();
        let cpu_total = u64::from(configured.cpus) * CPU_SPEED_MHZ;
        let cpu_allocated: u64 = running
            .iter()
            .map(|vm| u64::from(vm.vcpus) * CPU_SPEED_MHZ)
            .sum();
        let mut object = json!({
            "id": uuid(Class::Host, host),
            "name": configured.name,
            "state": state,
            "type": "Routing",
            "resourcestate": resource_state,
            "ipaddress": format!("127.0.{}.{}", host / 250, host % 250 + 1),
            "zoneid": uuid(Class::Zone, zone),
            "zonename": self.layout.zones[zone],
            "podid": uuid(Class::Pod, zone),
            "podname": format!("{}-pod1", self.layout.zones[zone]),
            "clusterid": uuid(Class::Cluster, cluster),
            "clustername": self.layout.clusters[cluster].1,
            "clustertype": "CloudManaged",
            "hypervisor": self.layout.hypervisors[host],
            "hypervisorversion": version.to_string(),
            "cpunumber": configured.cpus,
            "cpuspeed": CPU_SPEED_MHZ,
            "cpuallocated": percent_text(cpu_allocated, cpu_total),
            "cpuallocatedvalue": cpu_allocated,
            "cpuallocatedpercentage": percent_text(cpu_allocated, cpu_total),
            "memorytotal": memory_total,
            "memoryallocated": memory_allocated,
            "memoryallocatedbytes": memory_allocated,
            "memoryallocatedpercentage": percent_text(memory_allocated, memory_total),
            "memoryused": memory_allocated,
            "islocalstorageactive": true,
            "created": date_text(self.start_ms),
        });
        let tags = self.layout.host_tags(host);
        if !tags.is_empty() {
            object["hosttags"] = json!(tags.join(","));
        }
        if let Some(disconnected_ms) = self.disconnected_ms(host, view) {
            object["disconnected"] = json!(date_text(disconnected_ms));
        }
        object
    }

    /// A VM's state as `VirtualMachine.State` names it, from the simulator's operations in flight.
    fn vm_state(&self, vm: usize, view: &View) -> &'static str {
        let name = &self.cluster.vms[vm].name;
        let operation = view
            .snapshot
            .operations
            .iter()
            .find(|operation| operation.vm.as_deref() == Some(name.as_str()));
        match operation.map(|operation| operation.kind) {
            Some("migrate") => "Migrating",
            Some("shutdown") => "Stopping",
            Some("start") => "Starting",
            _ => match view.discovered.vms.get(vm).map(|vm| vm.state) {
                Some(VmState::Running) => "Running",
                _ => "Stopped",
            },
        }
    }

    fn vm_json(&self, vm: usize, view: &View) -> Value {
        let configured = &self.cluster.vms[vm];
        let kind = VmKind::of_name(&configured.name);
        let discovered = view.discovered.vms.get(vm).unwrap_or(configured);
        let host = discovered.host.index();
        let zone = self.layout.host_zone(host);
        let state = self.vm_state(vm, view);
        let mut object = json!({
            "id": uuid(Class::Vm, vm),
            "name": configured.name,
            "displayname": configured.name,
            "state": state,
            "zoneid": uuid(Class::Zone, zone),
            "zonename": self.layout.zones[zone],
            "hypervisor": self.layout.hypervisors[host],
            "account": if kind == VmKind::User { "admin" } else { "system" },
            "domain": "ROOT",
            "created": date_text(self.start_ms),
        });
        // A stopped VM has no host in CloudStack's responses.
        if state != "Stopped" {
            object["hostid"] = json!(uuid(Class::Host, host));
            object["hostname"] = json!(self.cluster.hosts[host].name);
        }
        match kind {
            VmKind::User => {
                let offering = self.layout.vm_offering[vm];
                object["instancename"] = json!(format!("i-2-{}-VM", vm + 1));
                object["memory"] = json!(configured.memory_mib);
                object["cpunumber"] = json!(configured.vcpus);
                object["cpuspeed"] = json!(CPU_SPEED_MHZ);
                object["serviceofferingid"] = json!(uuid(Class::ServiceOffering, offering));
                object["serviceofferingname"] = json!(offering_name(offering));
                object["haenable"] = json!(configured.restart_policy == RestartPolicy::Always);
                object["isdynamicallyscalable"] = json!(configured.migratable);
                object["details"] = json!({});
                let groups: Vec<Value> = configured
                    .anti_affinity
                    .iter()
                    .filter_map(|group| {
                        let index = self
                            .layout
                            .affinity_groups
                            .iter()
                            .position(|known| known == group)?;
                        Some(json!({
                            "id": uuid(Class::AffinityGroup, index),
                            "name": group,
                            "type": "host anti-affinity",
                        }))
                    })
                    .collect();
                object["affinitygroup"] = json!(groups);
            }
            VmKind::Router => {
                object["role"] = json!("VIRTUAL_ROUTER");
                object["requiresupgrade"] = json!(false);
                object["podid"] = json!(uuid(Class::Pod, zone));
            }
            VmKind::SecondaryStorage | VmKind::ConsoleProxy => {
                object["systemvmtype"] = json!(kind.system_vm_type());
                object["podid"] = json!(uuid(Class::Pod, zone));
            }
        }
        object
    }

    fn volume_json(&self, vm: usize, view: &View) -> Value {
        let configured = &self.cluster.vms[vm];
        let host = view
            .discovered
            .vms
            .get(vm)
            .map_or(configured.host.index(), |vm| vm.host.index());
        let zone = self.layout.host_zone(host);
        let (storage_type, storage) = if configured.local_storage {
            (
                "local",
                format!("{} Local Storage", self.cluster.hosts[host].name),
            )
        } else {
            ("shared", format!("{}-primary", self.layout.zones[zone]))
        };
        json!({
            "id": uuid(Class::Volume, vm),
            "name": format!("ROOT-{}", vm + 1),
            "type": "ROOT",
            "state": "Ready",
            "zoneid": uuid(Class::Zone, zone),
            "zonename": self.layout.zones[zone],
            "virtualmachineid": uuid(Class::Vm, vm),
            "vmname": configured.name,
            "storagetype": storage_type,
            "storage": storage,
            "size": 10u64 * 1024 * 1024 * 1024,
        })
    }

    // --- Lists ---------------------------------------------------------------------------

    /// The list answer, paged by `page` (1-based) and `pagesize`.
    fn list_reply(
        &self,
        command: &str,
        parameters: &Parameters,
        key: &str,
        objects: Vec<Value>,
    ) -> Reply {
        let page_size = match parameters.get("pagesize").map(str::parse::<usize>) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(size)) if (1..=MAX_PAGE_SIZE).contains(&size) => size,
            Some(_) => {
                return parameter_error(
                    command,
                    &format!("Page size can't exceed max allowed page size value: {MAX_PAGE_SIZE}"),
                )
            }
        };
        let page = match parameters.get("page").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(page)) if page >= 1 => page,
            Some(_) => return parameter_error(command, "Page must be a positive number"),
        };
        let count = objects.len();
        let paged: Vec<Value> = objects
            .into_iter()
            .skip((page - 1).saturating_mul(page_size))
            .take(page_size)
            .collect();
        if count == 0 {
            return ok(command, json!({}));
        }
        ok(command, json!({ "count": count, key: paged }))
    }

    fn list_zones(&self, command: &str, parameters: &Parameters) -> Reply {
        let zones = (0..self.layout.zones.len())
            .filter(|zone| {
                parameters
                    .get("id")
                    .is_none_or(|id| id == uuid(Class::Zone, *zone))
            })
            .filter(|zone| {
                parameters
                    .get("name")
                    .is_none_or(|name| name == self.layout.zones[*zone])
            })
            .map(|zone| self.zone_json(zone))
            .collect();
        self.list_reply(command, parameters, "zone", zones)
    }

    fn list_clusters(&self, command: &str, parameters: &Parameters) -> Reply {
        let clusters = (0..self.layout.clusters.len())
            .filter(|cluster| {
                parameters
                    .get("id")
                    .is_none_or(|id| id == uuid(Class::Cluster, *cluster))
                    && parameters
                        .get("zoneid")
                        .is_none_or(|id| id == uuid(Class::Zone, self.layout.clusters[*cluster].0))
                    && parameters
                        .get("name")
                        .is_none_or(|name| name == self.layout.clusters[*cluster].1)
            })
            .map(|cluster| self.cluster_json(cluster))
            .collect();
        self.list_reply(command, parameters, "cluster", clusters)
    }

    async fn list_hosts(&self, command: &str, parameters: &Parameters<'_>) -> Reply {
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        let hosts = (0..self.cluster.hosts.len())
            .map(|host| self.host_json(host, &view))
            .filter(|host| {
                [
                    ("id", "id"),
                    ("name", "name"),
                    ("zoneid", "zoneid"),
                    ("clusterid", "clusterid"),
                    ("type", "type"),
                    ("resourcestate", "resourcestate"),
                    ("state", "state"),
                    ("hypervisor", "hypervisor"),
                ]
                .iter()
                .all(|(parameter, key)| {
                    parameters.get(parameter).is_none_or(|wanted| {
                        host[*key]
                            .as_str()
                            .is_some_and(|value| value.eq_ignore_ascii_case(wanted))
                    })
                })
            })
            .collect();
        self.list_reply(command, parameters, "host", hosts)
    }

    async fn list_vms(
        &self,
        command: &str,
        parameters: &Parameters<'_>,
        kinds: &[VmKind],
        key: &str,
    ) -> Reply {
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        let vms = (0..self.cluster.vms.len())
            .filter(|vm| kinds.contains(&VmKind::of_name(&self.cluster.vms[*vm].name)))
            .map(|vm| self.vm_json(vm, &view))
            .filter(|vm| {
                [
                    ("id", "id"),
                    ("name", "name"),
                    ("hostid", "hostid"),
                    ("zoneid", "zoneid"),
                    ("state", "state"),
                    ("systemvmtype", "systemvmtype"),
                ]
                .iter()
                .all(|(parameter, field)| {
                    parameters.get(parameter).is_none_or(|wanted| {
                        vm[*field]
                            .as_str()
                            .is_some_and(|value| value.eq_ignore_ascii_case(wanted))
                    })
                })
            })
            .collect();
        self.list_reply(command, parameters, key, vms)
    }

    async fn list_volumes(&self, command: &str, parameters: &Parameters<'_>) -> Reply {
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        let volumes = (0..self.cluster.vms.len())
            .map(|vm| self.volume_json(vm, &view))
            .filter(|volume| {
                [
                    ("id", "id"),
                    ("virtualmachineid", "virtualmachineid"),
                    ("zoneid", "zoneid"),
                    ("type", "type"),
                ]
                .iter()
                .all(|(parameter, field)| {
                    parameters.get(parameter).is_none_or(|wanted| {
                        volume[*field]
                            .as_str()
                            .is_some_and(|value| value.eq_ignore_ascii_case(wanted))
                    })
                })
            })
            .collect();
        self.list_reply(command, parameters, "volume", volumes)
    }

    fn list_affinity_groups(&self, command: &str, parameters: &Parameters) -> Reply {
        let groups = self
            .layout
            .affinity_groups
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let members: Vec<String> = (0..self.cluster.vms.len())
                    .filter(|vm| self.cluster.vms[*vm].anti_affinity.as_deref() == Some(name))
                    .map(|vm| uuid(Class::Vm, vm))
                    .collect();
                json!({
                    "id": uuid(Class::AffinityGroup, index),
                    "name": name,
                    "type": "host anti-affinity",
                    "account": "admin",
                    "domain": "ROOT",
                    "virtualmachineIds": members,
                })
            })
            .filter(|group| {
                parameters
                    .get("id")
                    .is_none_or(|id| group["id"].as_str() == Some(id))
                    && parameters
                        .get("name")
                        .is_none_or(|name| group["name"].as_str() == Some(name))
                    && parameters
                        .get("type")
                        .is_none_or(|kind| group["type"].as_str() == Some(kind))
                    && parameters.get("virtualmachineid").is_none_or(|vm| {
                        group["virtualmachineIds"]
                            .as_array()
                            .is_some_and(|members| members.iter().any(|member| member == vm))
                    })
            })
            .collect();
        self.list_reply(command, parameters, "affinitygroup", groups)
    }

    fn list_service_offerings(&self, command: &str, parameters: &Parameters) -> Reply {
        let offerings = (0..self.layout.offerings.len())
            .map(|offering| {
                let mut object = json!({
                    "id": uuid(Class::ServiceOffering, offering),
                    "name": offering_name(offering),
                    "issystem": false,
                });
                if offering > 0 {
                    object["hosttags"] = json!(offering_tag(offering));
                }
                object
            })
            .filter(|offering| {
                parameters
                    .get("id")
                    .is_none_or(|id| offering["id"].as_str() == Some(id))
            })
            .collect();
        self.list_reply(command, parameters, "serviceoffering", offerings)
    }

    // --- Actions -------------------------------------------------------------------------

    fn host_parameter(
        &self,
        command: &str,
        parameters: &Parameters,
        name: &str,
    ) -> Result<usize, Reply> {
        let id = parameters
            .get(name)
            .ok_or_else(|| missing_parameter(command, name))?;
        index_of(Class::Host, id)
            .filter(|host| *host < self.cluster.hosts.len())
            .ok_or_else(|| parameter_error(command, &format!("Unable to find host by id {id}")))
    }

    fn vm_parameter(
        &self,
        command: &str,
        parameters: &Parameters,
        name: &str,
    ) -> Result<usize, Reply> {
        let id = parameters
            .get(name)
            .ok_or_else(|| missing_parameter(command, name))?;
        index_of(Class::Vm, id)
            .filter(|vm| *vm < self.cluster.vms.len())
            .ok_or_else(|| {
                parameter_error(
                    command,
                    &format!("Unable to find virtual machine with specified id {id}"),
                )
            })
    }

    async fn update_host(&self, command: &str, parameters: &Parameters<'_>) -> Reply {
        let host = match self.host_parameter(command, parameters, "id") {
            Ok(host) => host,
            Err(reply) => return reply,
        };
        let name = self.cluster.hosts[host].name.clone();
        if let Some(allocation) = parameters.get("allocationstate") {
            // `UpdateHostCmd`: Enable or Disable (case-insensitive, as `ResourceState.Event`).
            let enabled = match allocation.to_ascii_lowercase().as_str() {
                "enable" => true,
                "disable" => false,
                _ => {
                    return parameter_error(
                        command,
                        &format!("Invalid allocation state: {allocation}, allowed values are Enable and Disable"),
                    )
                }
            };
            let activity = self.lock().hosts.get(&host).copied();
            if activity == Some(HostActivity::PrepareForMaintenance) {
                return parameter_error(
                    command,
                    &format!("Cannot change the allocation state of host {name}: it is in PrepareForMaintenance"),
                );
            }
            if let Err(problem) = self.driver.set_allocation(&name, enabled).await {
                return internal_error(command, &problem);
            }
        }
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        ok(command, json!({ "host": self.host_json(host, &view) }))
    }

    /// `addAnnotation`, `listAnnotations` and `removeAnnotation` (synchronous commands).
    fn annotation_command(&self, command: &str, parameters: &Parameters) -> Reply {
        let mut state = self.lock();
        let answer = match command {
            "addAnnotation" => state
                .annotations
                .add(
                    parameters.get("entitytype"),
                    parameters.get("entityid"),
                    parameters.get("annotation"),
                    parameters
                        .get("adminsonly")
                        .is_some_and(|value| value.eq_ignore_ascii_case("true")),
                    date_text(drover_driver::wall_now_ms()),
                )
                .map(|annotation| json!({ "annotation": annotation })),
            "listAnnotations" => {
                let listed = state.annotations.list(
                    parameters.get("id"),
                    parameters.get("entitytype"),
                    parameters.get("entityid"),
                    parameters.get("keyword"),
                );
                drop(state);
                return match listed {
                    Ok(annotations) => {
                        self.list_reply(command, parameters, "annotation", annotations)
                    }
                    Err(refusal) => annotation_refusal(command, refusal),
                };
            }
            _ => match parameters.get("id") {
                None => return missing_parameter(command, "id"),
                Some(id) => state
                    .annotations
                    .remove(id)
                    .map(|annotation| json!({ "annotation": annotation })),
            },
        };
        match answer {
            Ok(inner) => ok(command, inner),
            Err(refusal) => annotation_refusal(command, refusal),
        }
    }

    /// Opens a job, or `None` when every kept job still runs.
    fn open_job(
        &self,
        command_class: &'static str,
        instance_type: &'static str,
        instance_id: String,
    ) -> Option<usize> {
        let mut state = self.lock();
        if state.jobs.len() >= MAX_JOBS {
            let finished = state
                .jobs
                .iter()
                .find(|(_, job)| job.status != 0)
                .map(|(serial, _)| *serial)?;
            state.jobs.remove(&finished);
        }
        state.next_job += 1;
        let serial = state.next_job;
        state.jobs.insert(
            serial,
            Job {
                command_class,
                instance_type,
                instance_id,
                status: 0,
                result_code: 0,
                result: None,
                created_ms: drover_driver::wall_now_ms(),
                completed_ms: None,
            },
        );
        Some(serial)
    }

    fn close_job(&self, serial: usize, outcome: Result<Value, (u16, u32, String)>) {
        let mut state = self.lock();
        if let Some(job) = state.jobs.get_mut(&serial) {
            match outcome {
                Ok(result) => {
                    job.status = 1;
                    job.result = Some(result);
                }
                Err((code, cs_code, text)) => {
                    job.status = 2;
                    job.result_code = code;
                    job.result =
                        Some(json!({"errorcode": code, "cserrorcode": cs_code, "errortext": text}));
                }
            }
            job.completed_ms = Some(drover_driver::wall_now_ms());
        }
    }

    fn job_started(command: &str, serial: usize, instance_id: Option<String>) -> Reply {
        let mut inner = json!({ "jobid": uuid(Class::Job, serial) });
        if let Some(id) = instance_id {
            inner["id"] = json!(id);
        }
        ok(command, inner)
    }

    fn too_many_jobs(command: &str) -> Reply {
        error_reply(
            command,
            error_code::INTERNAL_ERROR,
            Some(cs_error_code::SERVER_API_EXCEPTION),
            "The emulated management server keeps too many running jobs; try again later",
        )
    }

    /// Runs `work` as an asynchronous job; its result is the VM (`key`) or host once done.
    fn spawn_job<F>(
        self: &Arc<Self>,
        command: &str,
        command_class: &'static str,
        instance: (&'static str, String),
        work: F,
    ) -> Reply
    where
        F: std::future::Future<Output = Result<Value, (u16, u32, String)>> + Send + 'static,
    {
        let Some(serial) = self.open_job(command_class, instance.0, instance.1) else {
            return Self::too_many_jobs(command);
        };
        let management = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = work.await;
            management.close_job(serial, outcome);
        });
        Self::job_started(command, serial, None)
    }

    async fn object_after(
        self: &Arc<Self>,
        key: &'static str,
        vm: Option<usize>,
        host: Option<usize>,
    ) -> Result<Value, (u16, u32, String)> {
        let view = self.view("").await.map_err(|_| {
            (
                error_code::INTERNAL_ERROR,
                cs_error_code::CLOUD_RUNTIME_EXCEPTION,
                "cannot read the platform".to_string(),
            )
        })?;
        let object = match (vm, host) {
            (Some(vm), _) => self.vm_json(vm, &view),
            (None, Some(host)) => self.host_json(host, &view),
            (None, None) => json!({}),
        };
        Ok(json!({ key: object }))
    }

    async fn migrate(self: &Arc<Self>, command: &str, parameters: &Parameters<'_>) -> Reply {
        let vm = match self.vm_parameter(command, parameters, "virtualmachineid") {
            Ok(vm) => vm,
            Err(reply) => return reply,
        };
        let system = command == "migrateSystemVm";
        let kind = VmKind::of_name(&self.cluster.vms[vm].name);
        if system != (kind != VmKind::User) {
            return parameter_error(
                command,
                &format!(
                    "Unable to find the {} VM by id {}",
                    if system { "system" } else { "user" },
                    uuid(Class::Vm, vm)
                ),
            );
        }
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        let vm_name = self.cluster.vms[vm].name.clone();
        if self.vm_state(vm, &view) != "Running" {
            return parameter_error(
                command,
                &format!("VM is not Running, unable to migrate the vm {vm_name}"),
            );
        }
        let source = view.discovered.vms[vm].host.index();
        let with_volume = command == "migrateVirtualMachineWithVolume";
        if self.cluster.vms[vm].local_storage && !with_volume {
            return parameter_error(
                command,
                &format!("VM {vm_name} uses local storage: migrate it with migrateVirtualMachineWithVolume"),
            );
        }
        let destination = match parameters.get("hostid") {
            Some(_) => match self.host_parameter(command, parameters, "hostid") {
                Ok(host) => host,
                Err(reply) => return reply,
            },
            None if with_volume || system => {
                return missing_parameter(command, "hostid");
            }
            // `autoselect`: the management server picks a host.
            None => {
                match best_destination(&view.discovered, source, view.discovered.vms[vm].memory_mib)
                {
                    Some(host) => host,
                    None => {
                        return error_reply(
                            command,
                            error_code::INSUFFICIENT_CAPACITY_ERROR,
                            Some(cs_error_code::INSUFFICIENT_SERVER_CAPACITY_EXCEPTION),
                            &format!("No host is suitable to migrate VM {vm_name} to"),
                        )
                    }
                }
            }
        };
        if destination == source {
            return parameter_error(
                command,
                &format!("Cannot migrate VM {vm_name}: it is already on the destination host"),
            );
        }
        let (destination_state, destination_resource) = self.host_states(destination, &view);
        if destination_state != "Up" || destination_resource != "Enabled" {
            // `UserVmManagerImpl.migrateVirtualMachine`'s check of the destination.
            return parameter_error(
                command,
                &format!(
                    "Cannot migrate VM, destination host is not in correct state, has status: {destination_state}, state: {destination_resource}"
                ),
            );
        }
        if self.layout.host_zone(destination) != self.layout.host_zone(source) {
            return parameter_error(
                command,
                "Cannot migrate VM, the destination host is in another zone",
            );
        }
        let source_name = self.cluster.hosts[source].name.clone();
        let destination_name = self.cluster.hosts[destination].name.clone();
        let class = match command {
            "migrateSystemVm" => {
                "org.apache.cloudstack.api.command.admin.systemvm.MigrateSystemVMCmd"
            }
            "migrateVirtualMachineWithVolume" => {
                "org.apache.cloudstack.api.command.admin.vm.MigrateVirtualMachineWithVolumeCmd"
            }
            _ => "org.apache.cloudstack.api.command.admin.vm.MigrateVMCmd",
        };
        let key = if system { "systemvm" } else { "virtualmachine" };
        let management = Arc::clone(self);
        self.spawn_job(
            command,
            class,
            ("VirtualMachine", uuid(Class::Vm, vm)),
            async move {
                let wait_ms = management.migrate_wait_ms();
                let started_ms = management.driver.now_ms();
                let timed_out = {
                    let migration =
                        management
                            .driver
                            .migrate(&vm_name, &source_name, &destination_name);
                    tokio::pin!(migration);
                    loop {
                        tokio::select! {
                            outcome = &mut migration => break outcome.map(|()| false),
                            () = tokio::time::sleep(Duration::from_millis(20)) => {
                                if management.driver.now_ms().saturating_sub(started_ms) >= wait_ms {
                                    break Ok(true);
                                }
                            }
                        }
                    }
                }
                .map_err(failed)?;
                if timed_out {
                    // The simulator cancels a migration superseded by one to where the VM runs.
                    let _ = management
                        .driver
                        .migrate(&vm_name, &source_name, &source_name)
                        .await;
                    return Err((
                        error_code::INTERNAL_ERROR,
                        cs_error_code::CLOUD_RUNTIME_EXCEPTION,
                        format!(
                            "Migration of VM {vm_name} to {destination_name} timed out after migratewait ({} s); it stays on {source_name}",
                            wait_ms / 1000
                        ),
                    ));
                }
                management.object_after(key, Some(vm), None).await
            },
        )
    }

    async fn stop_vm(self: &Arc<Self>, command: &str, parameters: &Parameters<'_>) -> Reply {
        let vm = match self.vm_parameter(command, parameters, "id") {
            Ok(vm) => vm,
            Err(reply) => return reply,
        };
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        let vm_name = self.cluster.vms[vm].name.clone();
        let host_name = self.cluster.hosts[view.discovered.vms[vm].host.index()]
            .name
            .clone();
        let forced = parameters
            .get("forced")
            .is_some_and(|forced| forced.eq_ignore_ascii_case("true"));
        let wait = if forced {
            Duration::ZERO
        } else {
            GRACEFUL_STOP_WAIT
        };
        let already_stopped = self.vm_state(vm, &view) == "Stopped";
        let management = Arc::clone(self);
        self.spawn_job(
            command,
            "org.apache.cloudstack.api.command.admin.vm.StopVMCmdByAdmin",
            ("VirtualMachine", uuid(Class::Vm, vm)),
            async move {
                // Stopping a stopped VM succeeds in CloudStack (the state machine is idempotent).
                if !already_stopped {
                    management
                        .driver
                        .shutdown_vm(&vm_name, &host_name, wait)
                        .await
                        .map_err(failed)?;
                }
                management
                    .object_after("virtualmachine", Some(vm), None)
                    .await
            },
        )
    }

    async fn start_vm(self: &Arc<Self>, command: &str, parameters: &Parameters<'_>) -> Reply {
        let vm = match self.vm_parameter(command, parameters, "id") {
            Ok(vm) => vm,
            Err(reply) => return reply,
        };
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        let vm_name = self.cluster.vms[vm].name.clone();
        if self.vm_state(vm, &view) != "Stopped" {
            return parameter_error(
                command,
                &format!(
                    "VM {vm_name} is not in a state to be started: {}",
                    self.vm_state(vm, &view)
                ),
            );
        }
        let host = match parameters.get("hostid") {
            Some(_) => match self.host_parameter(command, parameters, "hostid") {
                Ok(host) => host,
                Err(reply) => return reply,
            },
            None => view.discovered.vms[vm].host.index(),
        };
        let (host_state, host_resource) = self.host_states(host, &view);
        if host_state != "Up" || !matches!(host_resource, "Enabled" | "Disabled") {
            return error_reply(
                command,
                error_code::INSUFFICIENT_CAPACITY_ERROR,
                Some(cs_error_code::INSUFFICIENT_SERVER_CAPACITY_EXCEPTION),
                &format!(
                    "Unable to start VM {vm_name} on host {}: the host is {host_state}, {host_resource}",
                    self.cluster.hosts[host].name
                ),
            );
        }
        let host_name = self.cluster.hosts[host].name.clone();
        let management = Arc::clone(self);
        self.spawn_job(
            command,
            "org.apache.cloudstack.api.command.admin.vm.StartVMCmdByAdmin",
            ("VirtualMachine", uuid(Class::Vm, vm)),
            async move {
                management
                    .driver
                    .start_vm(&vm_name, &host_name)
                    .await
                    .map_err(failed)?;
                management
                    .object_after("virtualmachine", Some(vm), None)
                    .await
            },
        )
    }

    async fn prepare_maintenance(
        self: &Arc<Self>,
        command: &str,
        parameters: &Parameters<'_>,
    ) -> Reply {
        let host = match self.host_parameter(command, parameters, "id") {
            Ok(host) => host,
            Err(reply) => return reply,
        };
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        let name = self.cluster.hosts[host].name.clone();
        let (state, resource) = self.host_states(host, &view);
        if state != "Up" || !matches!(resource, "Enabled" | "Disabled" | "ErrorInMaintenance") {
            return parameter_error(
                command,
                &format!(
                    "Cannot perform maintain when resource state is {resource}, host = {name}"
                ),
            );
        }
        self.lock()
            .hosts
            .insert(host, HostActivity::PrepareForMaintenance);
        let management = Arc::clone(self);
        self.spawn_job(
            command,
            "org.apache.cloudstack.api.command.admin.host.PrepareForMaintenanceCmd",
            ("Host", uuid(Class::Host, host)),
            async move {
                let outcome = management.evacuate_and_enter_maintenance(host).await;
                match &outcome {
                    Ok(()) => {
                        management.lock().hosts.remove(&host);
                    }
                    Err(_) => {
                        management
                            .lock()
                            .hosts
                            .insert(host, HostActivity::ErrorInMaintenance);
                    }
                }
                outcome.map_err(failed)?;
                management.object_after("host", None, Some(host)).await
            },
        )
    }

    /// What CloudStack does to a host entering maintenance: live-migrates its running VMs to
    /// other enabled hosts of its cluster; a VM that cannot move makes it ErrorInMaintenance.
    async fn evacuate_and_enter_maintenance(&self, host: usize) -> Result<(), DriverError> {
        let name = self.cluster.hosts[host].name.clone();
        loop {
            let discovered = self.driver.discover().await?;
            let Some(vm) = discovered
                .vms
                .iter()
                .find(|vm| vm.host.index() == host && vm.state == VmState::Running)
                .cloned()
            else {
                break;
            };
            if !vm.migratable || vm.local_storage {
                return Err(DriverError::Refused(format!(
                    "Unable to prepare host {name} for maintenance: VM {} cannot be migrated",
                    vm.name
                )));
            }
            let destination = best_destination(&discovered, host, vm.memory_mib)
                .filter(|destination| {
                    self.layout.host_cluster[*destination] == self.layout.host_cluster[host]
                })
                .ok_or_else(|| {
                    DriverError::Refused(format!("No host can take VM {} from {name}", vm.name))
                })?;
            self.driver
                .migrate(&vm.name, &name, &self.cluster.hosts[destination].name)
                .await?;
        }
        self.driver.set_maintenance(&name, true).await
    }

    async fn cancel_maintenance(
        self: &Arc<Self>,
        command: &str,
        parameters: &Parameters<'_>,
    ) -> Reply {
        let host = match self.host_parameter(command, parameters, "id") {
            Ok(host) => host,
            Err(reply) => return reply,
        };
        let view = match self.view(command).await {
            Ok(view) => view,
            Err(reply) => return reply,
        };
        let name = self.cluster.hosts[host].name.clone();
        let (_, resource) = self.host_states(host, &view);
        if !matches!(
            resource,
            "Maintenance" | "PrepareForMaintenance" | "ErrorInMaintenance"
        ) {
            return parameter_error(
                command,
                &format!(
                    "Cannot cancel maintenance of host {name}: its resource state is {resource}"
                ),
            );
        }
        let management = Arc::clone(self);
        self.spawn_job(
            command,
            "org.apache.cloudstack.api.command.admin.host.CancelMaintenanceCmd",
            ("Host", uuid(Class::Host, host)),
            async move {
                management.lock().hosts.remove(&host);
                management
                    .driver
                    .set_maintenance(&name, false)
                    .await
                    .map_err(failed)?;
                // Cancelling maintenance leaves the host Enabled (`ResourceState`'s transition
                // on AdminCancelMaintenance), whatever its allocation state was before.
                management
                    .driver
                    .set_allocation(&name, true)
                    .await
                    .map_err(failed)?;
                management.object_after("host", None, Some(host)).await
            },
        )
    }

    fn query_job(&self, command: &str, parameters: &Parameters) -> Reply {
        let Some(id) = parameters.get("jobid") else {
            return missing_parameter(command, "jobid");
        };
        let state = self.lock();
        let Some(job) = index_of(Class::Job, id).and_then(|serial| state.jobs.get(&serial)) else {
            return parameter_error(command, &format!("Unable to find a job by id {id}"));
        };
        let mut inner = json!({
            "jobid": id,
            "cmd": job.command_class,
            "userid": uuid(Class::Job, 0),
            "accountid": uuid(Class::Job, 0),
            "jobstatus": job.status,
            "jobprocstatus": 0,
            "jobresultcode": job.result_code,
            "jobinstancetype": job.instance_type,
            "jobinstanceid": job.instance_id,
            "created": date_text(job.created_ms),
        });
        if let Some(result) = &job.result {
            inner["jobresulttype"] = json!("object");
            inner["jobresult"] = result.clone();
        }
        if let Some(completed_ms) = job.completed_ms {
            inner["completed"] = json!(date_text(completed_ms));
        }
        ok(command, inner)
    }
}

fn offering_name(offering: usize) -> String {
    if offering == 0 {
        "Medium Instance".to_string()
    } else {
        format!("Tagged Instance {offering}")
    }
}

fn annotation_refusal(command: &str, refusal: super::annotations::Refusal) -> Reply {
    match refusal {
        super::annotations::Refusal::Parameter(text) => parameter_error(command, &text),
        super::annotations::Refusal::Internal(text) => error_reply(
            command,
            error_code::INTERNAL_ERROR,
            Some(cs_error_code::CLOUD_RUNTIME_EXCEPTION),
            &text,
        ),
    }
}

fn internal_error(command: &str, problem: &DriverError) -> Reply {
    error_reply(
        command,
        error_code::INTERNAL_ERROR,
        Some(cs_error_code::CLOUD_RUNTIME_EXCEPTION),
        &problem.to_string(),
    )
}

/// A job's failure: 530 for what went wrong on the platform, 534 for a refusal.
fn failed(problem: DriverError) -> (u16, u32, String) {
    match problem {
        DriverError::Refused(text) => (
            error_code::RESOURCE_UNAVAILABLE_ERROR,
            cs_error_code::RESOURCE_UNAVAILABLE_EXCEPTION,
            text,
        ),
        other => (
            error_code::INTERNAL_ERROR,
            cs_error_code::CLOUD_RUNTIME_EXCEPTION,
            other.to_string(),
        ),
    }
}

fn free_memory_mib(discovered: &Discovered, host: usize) -> u64 {
    let used: u64 = discovered
        .vms
        .iter()
        .filter(|vm| vm.host.index() == host && vm.state == VmState::Running)
        .map(|vm| vm.memory_mib)
        .sum();
    discovered.hosts[host].memory_mib.saturating_sub(used)
}

/// The server's own pick: an up, enabled host other than `source` with room, most free first.
fn best_destination(discovered: &Discovered, source: usize, memory_mib: u64) -> Option<usize> {
    (0..discovered.hosts.len())
        .filter(|index| *index != source)
        .filter(|index| {
            let host = &discovered.hosts[*index];
            host.state == HostState::Up && !host.cordoned
        })
        .map(|index| (free_memory_mib(discovered, index), index))
        .filter(|(free, _)| *free >= memory_mib)
        .max()
        .map(|(_, index)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_vms_are_recognised_by_cloudstacks_names() {
        assert_eq!(VmKind::of_name("r-12-VM"), VmKind::Router);
        assert_eq!(VmKind::of_name("s-1-VM"), VmKind::SecondaryStorage);
        assert_eq!(VmKind::of_name("v-2-VM"), VmKind::ConsoleProxy);
        assert_eq!(VmKind::of_name("r-web-VM"), VmKind::User);
        assert_eq!(VmKind::of_name("web"), VmKind::User);
    }

    #[test]
    fn ids_round_trip_within_their_class_only() {
        let id = uuid(Class::Host, 7);
        assert_eq!(index_of(Class::Host, &id), Some(7));
        assert_eq!(index_of(Class::Vm, &id), None);
        assert_eq!(index_of(Class::Host, "not-an-id"), None);
    }

    #[test]
    fn percentages_are_written_as_decimal_format_does() {
        assert_eq!(percent_text(1, 4), "25%");
        assert_eq!(percent_text(1, 3), "33.33%");
        assert_eq!(percent_text(0, 0), "0%");
    }

    #[test]
    fn dates_carry_a_numeric_offset() {
        assert_eq!(date_text(0), "1970-01-01T00:00:00+0000");
    }

    #[test]
    fn errors_sit_under_the_commands_response_name_with_the_code_as_status() {
        let reply = parameter_error("listHosts", "bad");
        assert_eq!(reply.status, 431);
        assert_eq!(reply.body["listhostsresponse"]["errorcode"], 431);
        assert_eq!(reply.body["listhostsresponse"]["cserrorcode"], 4350);
        assert_eq!(reply.body["listhostsresponse"]["errortext"], "bad");
    }
}
