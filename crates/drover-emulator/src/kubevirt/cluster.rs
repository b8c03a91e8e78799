//! The emulated OpenShift Virtualization cluster: the simulator's world ([`SimDriver`]) seen as
//! Kubernetes and KubeVirt objects, with the controllers that change them (cordon, eviction,
//! live migration, the HyperConverged resource).
//!
//! Every name comes from the APIs the clients read (kubevirt/api `core/v1/types.go`,
//! kubevirt/hyperconverged-cluster-operator `api/v1beta1/hyperconverged_types.go`,
//! k8s.io/api `core/v1` and `policy/v1`):
//! - a host is a `Node`: `status.allocatable`/`capacity` (`cpu`, `memory` in `Ki`, `pods`),
//!   `status.nodeInfo` (`bootID`; `kubeletVersion` `v` + the host's version and `osImage`
//!   `Red Hat Enterprise Linux CoreOS ` + the version, where a driver reads the version),
//!   the `Ready` condition (`Unknown` while the host reboots or is down), labels
//!   `kubernetes.io/hostname` and the inventory's labels (`zone` also as
//!   `topology.kubernetes.io/zone`), `spec.unschedulable` with the
//!   `node.kubernetes.io/unschedulable:NoSchedule` taint (the simulator's allocation flag);
//! - a running VM is a `VirtualMachineInstance` (`status.nodeName`, `status.phase` Running,
//!   conditions `Ready` and `LiveMigratable`, False with reason `DisksNotLiveMigratable` for a
//!   VM on local storage and `HostDeviceNotLiveMigratable` for one that cannot move otherwise;
//!   `spec.evictionStrategy` `LiveMigrate` or `None`; `spec.affinity.nodeAffinity` for the
//!   inventory's allowed hosts, `spec.affinity.podAntiAffinity` on label `app` for its
//!   anti-affinity group; `status.migrationState` of its latest migration) owned by a
//!   `VirtualMachine` (`spec.runStrategy` Always or Manual, Halted when stopped), and runs in a
//!   `virt-launcher-NAME-XXXXX` pod owned by the VMI; every node has a `virt-handler` pod of
//!   the `virt-handler` DaemonSet (namespace `openshift-cnv`);
//! - every VMI that can live-migrate has KubeVirt's `PodDisruptionBudget`
//!   (`kubevirt-disruption-budget-…`, `minAvailable: 1`), so evicting its launcher pod is
//!   answered `429` as the eviction API answers a budget that allows no disruption
//!   (`Cannot evict pod as it would violate the pod's disruption budget.`, cause
//!   `DisruptionBudget`), and, as KubeVirt's eviction webhook does, the VMI is marked for
//!   evacuation (`status.evacuationNodeName`) and a `kubevirt-evacuation-…` migration moves it;
//!   evicting the launcher of a VMI with `evictionStrategy: None` stops it (and its VM's
//!   controller starts it again on another node when `runStrategy` is Always);
//! - `VirtualMachineInstanceMigration` (`spec.vmiName`, `spec.addedNodeSelector`): phases
//!   Pending, Scheduling, Scheduled, PreparingTarget, TargetReady, Running, then Succeeded or
//!   Failed, `status.phaseTransitionTimestamps`, `status.migrationState` (`sourceNode`,
//!   `targetNode`, `targetPod`, `startTimestamp`, `endTimestamp`, `completed`, `failed`,
//!   `abortRequested`, `abortStatus`, `failureReason`, `migrationUid`, `mode`); a migration no
//!   node can take fails after KubeVirt's 5 minutes of unschedulable target pod; deleting a
//!   running one aborts it; KubeVirt's garbage collection keeps the last five finished
//!   migrations of each VMI;
//! - `HyperConverged` `kubevirt-hyperconverged` in `openshift-cnv`: `spec.workloadUpdateStrategy`
//!   (`workloadUpdateMethods`, `batchEvictionSize`, `batchEvictionInterval`, the CRD's defaults)
//!   and the conditions `ReconcileComplete`, `Available`, `Progressing`, `Degraded`,
//!   `Upgradeable`, whose status a client may change through the `status` subresource.
//!
//! Not served: the target pod of a migration, node maintenance (the node's upgrade is the
//! emulator's own `upgrade` call, standing for a command step on the node).
//!
//! This module must not know HTTP: it answers decoded requests with JSON and a status code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use drover_core::{Cluster, Host, HostRole, RestartPolicy, Vm, VmState};
use drover_driver::{wall_now_ms, Discovered, Driver};
use drover_sim::driver::{PlatformHostState, SimDriver, WorldSnapshot};
use serde_json::{json, Map, Value};

use super::machineconfig::{self, Member, Pools, Start};
use super::store::{self, Page, Selection, Store};

/// An answer: HTTP status and JSON body.
pub type Answer = (u16, Value);

/// The namespace of the VMs, their pods and migrations.
pub const VM_NAMESPACE: &str = "default";
/// OpenShift Virtualization's namespace: the HyperConverged resource and virt-handler.
pub const CNV_NAMESPACE: &str = "openshift-cnv";
/// `HyperConvergedName` of the operator: the one HyperConverged it reconciles.
pub const HYPERCONVERGED_NAME: &str = "kubevirt-hyperconverged";
/// The label key of the anti-affinity group (the pod anti-affinity term selects on it).
pub const ANTI_AFFINITY_LABEL: &str = "app";
/// Migrations kept; the oldest finished one is forgotten past this, and a new one is refused
/// when every kept migration is still in progress.
pub const MAX_MIGRATIONS_KEPT: usize = 1_024;
/// Finished migrations kept per VMI (KubeVirt's migration garbage collection keeps five).
pub const FINISHED_MIGRATIONS_KEPT_PER_VMI: usize = 5;
/// How long a migration's target may stay unschedulable before the migration fails
/// (KubeVirt: 5 minutes), in platform milliseconds.
pub const UNSCHEDULABLE_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// How long the emulated machine-config-daemon drains a node, and waits for it to come back
/// after its reboot, before it reports Degraded (platform milliseconds; the MCO's drain
/// controller gives up after an hour and reports the pool degraded).
const MACHINE_CONFIG_DRAIN_TIMEOUT_MS: u64 = 60 * 60 * 1000;
/// How often the emulated daemon looks at a node it drains or awaits (platform milliseconds).
const MACHINE_CONFIG_POLL_MS: u64 = 5_000;
/// The platform time each preparation phase of a migration takes.
const PHASE_STEP_MS: u64 = 1_000;
/// A VMI's `terminationGracePeriodSeconds` default: the guest's time to shut down when evicted.
const VMI_TERMINATION_GRACE: Duration = Duration::from_secs(180);
/// Distinct request shapes counted.
const MAX_CALL_KEYS: usize = 512;

/// A resource the emulated API server serves, for routing and discovery documents.
#[derive(Clone, Copy, Debug)]
pub struct ResourceKind {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub verbs: &'static [&'static str],
}

const READ: &[&str] = &["get", "list", "watch"];

/// Everything served, in the API's own groups and versions.
pub const RESOURCES: [ResourceKind; 9] = [
    ResourceKind {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        verbs: &["get", "list", "watch", "patch"],
    },
    ResourceKind {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        verbs: READ,
    },
    ResourceKind {
        group: "kubevirt.io",
        version: "v1",
        plural: "virtualmachines",
        singular: "virtualmachine",
        kind: "VirtualMachine",
        namespaced: true,
        short_names: &["vm", "vms"],
        verbs: &["get", "list", "watch", "patch"],
    },
    ResourceKind {
        group: "kubevirt.io",
        version: "v1",
        plural: "virtualmachineinstances",
        singular: "virtualmachineinstance",
        kind: "VirtualMachineInstance",
        namespaced: true,
        short_names: &["vmi", "vmis"],
        verbs: READ,
    },
    ResourceKind {
        group: "kubevirt.io",
        version: "v1",
        plural: "virtualmachineinstancemigrations",
        singular: "virtualmachineinstancemigration",
        kind: "VirtualMachineInstanceMigration",
        namespaced: true,
        short_names: &["vmim", "vmims"],
        verbs: &["get", "list", "watch", "create", "delete"],
    },
    ResourceKind {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short_names: &["pdb"],
        verbs: READ,
    },
    ResourceKind {
        group: "hco.kubevirt.io",
        version: "v1beta1",
        plural: "hyperconvergeds",
        singular: "hyperconverged",
        kind: "HyperConverged",
        namespaced: true,
        short_names: &["hco", "hcos"],
        verbs: &["get", "list", "watch", "patch", "update"],
    },
    ResourceKind {
        group: "machineconfiguration.openshift.io",
        version: "v1",
        plural: "machineconfigpools",
        singular: "machineconfigpool",
        kind: "MachineConfigPool",
        namespaced: false,
        short_names: &["mcp"],
        verbs: &[
            "get", "list", "watch", "create", "patch", "update", "delete",
        ],
    },
    ResourceKind {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        verbs: READ,
    },
];

/// The resource of a group, version and plural.
pub fn resource_kind(group: &str, version: &str, plural: &str) -> Option<&'static ResourceKind> {
    RESOURCES.iter().find(|resource| {
        resource.group == group && resource.version == version && resource.plural == plural
    })
}

impl ResourceKind {
    /// `v1` or `kubevirt.io/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// One decoded request for a resource.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub method: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub query: HashMap<String, String>,
    pub content_type: String,
    pub body: String,
}

/// A migration as the emulated virt-controller keeps it.
#[derive(Clone, Debug)]
struct Migration {
    namespace: String,
    name: String,
    uid: String,
    serial: u64,
    vmi: String,
    created_ms: u64,
    labels: Value,
    annotations: Value,
    spec: Value,
    phase: &'static str,
    transitions: Vec<(&'static str, u64)>,
    source: Option<String>,
    target: Option<String>,
    target_pod: Option<String>,
    start_ms: Option<u64>,
    end_ms: Option<u64>,
    abort_requested: bool,
    abort_status: Option<&'static str>,
    failure_reason: Option<String>,
    follower: Option<tokio::task::AbortHandle>,
}

impl Migration {
    fn finished(&self) -> bool {
        matches!(self.phase, "Succeeded" | "Failed")
    }
}

/// Where a VM's launcher pod runs and how many pods it had before (its name changes with each).
#[derive(Clone, Debug, Default)]
struct Launcher {
    node: String,
    generation: u64,
    stopped: bool,
}

#[derive(Default)]
struct State {
    calls: BTreeMap<String, u64>,
    watch_events_sent: u64,
    node_labels: HashMap<String, BTreeMap<String, String>>,
    node_annotations: HashMap<String, BTreeMap<String, String>>,
    launchers: HashMap<String, Launcher>,
    handler_generations: HashMap<String, u64>,
    migrations: BTreeMap<(String, String), Migration>,
    serial: u64,
    /// VMs whose launcher pod was evicted and who are shutting down: when it began.
    evicting: HashMap<String, u64>,
    /// VMIs marked for evacuation: the node they leave.
    evacuating: HashMap<String, String>,
    /// VMs stopped through the `stop` subresource (runStrategy Halted): not restarted.
    halted: std::collections::HashSet<String>,
    /// Where each stopped VM last ran (its `start` puts it back there when it can).
    last_nodes: HashMap<String, String>,
    /// Annotations clients set on VirtualMachines.
    vm_annotations: HashMap<String, BTreeMap<String, String>>,
    hyperconverged_metadata: Value,
    hyperconverged_spec: Value,
    hyperconverged_conditions: Vec<Value>,
    /// Each VM's fingerprint at the last rendering ([`vm_fingerprint`]).
    fingerprints: HashMap<String, u64>,
    /// Each migration's fingerprint at the last rendering ([`migration_fingerprint`]).
    migration_fingerprints: HashMap<(String, String), u64>,
    /// The emulated Machine Config Operator's pools and node daemons.
    machine_config: Pools,
    /// Updates the controller started at the last rendering, for `refresh` to carry out.
    machine_config_starts: Vec<Start>,
}

/// What a migration's object is made of, hashed (everything [`render_migration`] reads that
/// changes after its creation).
fn migration_fingerprint(migration: &Migration) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        migration.phase,
        migration.transitions.len(),
        &migration.source,
        &migration.target,
        &migration.target_pod,
        migration.start_ms,
        migration.end_ms,
        migration.abort_requested,
        migration.abort_status,
        &migration.failure_reason,
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// One resource's rendering: the objects rendered again, and the keys of all it has now.
struct Rendered {
    resource: &'static str,
    present: BTreeSet<(String, String)>,
    changed: Vec<Value>,
}

impl Rendered {
    fn new(resource: &'static str) -> Rendered {
        Rendered {
            resource,
            present: BTreeSet::new(),
            changed: Vec::new(),
        }
    }

    /// Every object of the resource, rendered.
    fn whole(resource: &'static str, objects: Vec<Value>) -> Rendered {
        Rendered {
            resource,
            present: objects.iter().map(store::object_key).collect(),
            changed: objects,
        }
    }
}

/// What a VM's objects are made of, hashed: the VM as the world has it, its node, whether it is
/// halted, its annotations, its launcher pod, whether it is being evicted or evacuated, and its
/// latest migration. Equal fingerprints: the objects would render the same.
fn vm_fingerprint(state: &State, vm: &Vm, node: &str, latest: Option<&Migration>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    format!("{vm:?}").hash(&mut hasher);
    node.hash(&mut hasher);
    state.halted.contains(&vm.name).hash(&mut hasher);
    state.vm_annotations.get(&vm.name).hash(&mut hasher);
    if let Some(launcher) = state.launchers.get(&vm.name) {
        (&launcher.node, launcher.generation, launcher.stopped).hash(&mut hasher);
    }
    state.evicting.get(&vm.name).hash(&mut hasher);
    state.evacuating.get(&vm.name).hash(&mut hasher);
    if let Some(migration) = latest {
        migration_state(migration).to_string().hash(&mut hasher);
    }
    hasher.finish()
}

/// The emulated cluster behind the HTTP front-end. Cheap to share (`Arc`).
pub struct ControlPlane {
    driver: SimDriver,
    cluster: Arc<Cluster>,
    time_scale: f64,
    started_ms: u64,
    state: Mutex<State>,
    store: Mutex<Store>,
    /// Serializes renderings so that an older one never overwrites a newer one.
    refreshing: tokio::sync::Mutex<()>,
    /// Renderings begun (numbered as they take their view of the world), and the number of the
    /// last one finished: a request that waited while a rendering begun after its arrival
    /// finished needs no rendering of its own (concurrent requests share one).
    renderings_begun: std::sync::atomic::AtomicU64,
    last_rendering_finished: std::sync::atomic::AtomicU64,
    /// The control plane itself, for the Machine Config Operator's update tasks.
    myself: std::sync::Weak<ControlPlane>,
}

/// The world as one request sees it.
struct View {
    discovered: Discovered,
    snapshot: WorldSnapshot,
}

/// RFC 3339 seconds in UTC, as `metav1.Time` is written.
pub fn timestamp(epoch_ms: u64) -> String {
    let text = crate::ovirt::engine::date_text(epoch_ms);
    format!("{}Z", &text[..19])
}

/// FNV-1a: stable ids and name suffixes from names.
fn hash(parts: &[&str]) -> u64 {
    let mut value: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            value ^= u64::from(byte);
            value = value.wrapping_mul(0x0100_0000_01b3);
        }
    }
    value
}

fn uid(parts: &[&str]) -> String {
    let value = hash(parts);
    let more = hash(&[&value.to_string()]);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        value >> 32,
        (value >> 16) & 0xffff,
        value & 0xfff,
        more >> 52,
        more & 0xffff_ffff_ffff
    )
}

/// The five-character suffix Kubernetes' generateName appends, made stable here.
fn suffix(parts: &[&str]) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut value = hash(parts);
    (0..5)
        .map(|_| {
            let character = ALPHABET[(value % ALPHABET.len() as u64) as usize] as char;
            value /= ALPHABET.len() as u64;
            character
        })
        .collect()
}

fn live_migratable(vm: &Vm) -> bool {
    vm.migratable && !vm.local_storage
}

/// The `LiveMigratable` condition's reason and message for a VM that cannot move.
fn not_migratable_reason(vm: &Vm) -> Option<(&'static str, String)> {
    if vm.local_storage {
        Some((
            "DisksNotLiveMigratable",
            format!(
                "cannot migrate VMI: PVC {}-rootdisk is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)",
                vm.name
            ),
        ))
    } else if !vm.migratable {
        Some((
            "HostDeviceNotLiveMigratable",
            "VMI uses a PCI host device".to_string(),
        ))
    } else {
        None
    }
}

fn host_labels(host: &Host, overlay: Option<&BTreeMap<String, String>>) -> Map<String, Value> {
    let mut labels = Map::new();
    labels.insert("kubernetes.io/hostname".into(), json!(host.name));
    labels.insert("kubernetes.io/os".into(), json!("linux"));
    labels.insert("kubernetes.io/arch".into(), json!("amd64"));
    match host.role {
        HostRole::Master | HostRole::Management => {
            labels.insert("node-role.kubernetes.io/control-plane".into(), json!(""));
            labels.insert("node-role.kubernetes.io/master".into(), json!(""));
        }
        HostRole::Compute => {
            labels.insert("node-role.kubernetes.io/worker".into(), json!(""));
        }
    }
    for (key, value) in &host.labels {
        if key == "zone" {
            labels.insert("topology.kubernetes.io/zone".into(), json!(value));
        }
        labels.insert(key.clone(), json!(value));
    }
    for (key, value) in overlay.into_iter().flatten() {
        labels.insert(key.clone(), json!(value));
    }
    labels
}

fn running_memory_mib(discovered: &Discovered, host: usize) -> u64 {
    discovered
        .vms
        .iter()
        .filter(|vm| vm.host.index() == host && vm.state == VmState::Running)
        .map(|vm| vm.memory_mib)
        .sum()
}

impl ControlPlane {
    pub fn new(driver: SimDriver, cluster: Cluster, time_scale: f64) -> Arc<ControlPlane> {
        let started_ms = wall_now_ms();
        let host_labels: Vec<Map<String, Value>> = cluster
            .hosts
            .iter()
            .map(|host| host_labels(host, None))
            .collect();
        let members: Vec<Member> = cluster
            .hosts
            .iter()
            .zip(&host_labels)
            .map(|(host, labels)| Member {
                name: &host.name,
                labels,
                ready: true,
                unschedulable: host.cordoned,
                version: &host.version,
            })
            .collect();
        let machine_config = Pools::new(&members, started_ms);
        let state = State {
            machine_config,
            hyperconverged_metadata: json!({}),
            // The CRD's default (`+kubebuilder:default` on WorkloadUpdateStrategy), with Evict
            // as OpenShift Virtualization's documentation sets it for VMs that cannot migrate.
            hyperconverged_spec: json!({
                "workloadUpdateStrategy": {
                    "workloadUpdateMethods": ["LiveMigrate", "Evict"],
                    "batchEvictionSize": 10,
                    "batchEvictionInterval": "1m0s",
                },
            }),
            hyperconverged_conditions: ["ReconcileComplete", "Available", "Upgradeable"]
                .into_iter()
                .map(|kind| (kind, "True"))
                .chain([("Progressing", "False"), ("Degraded", "False")])
                .map(|(kind, status)| {
                    json!({"type": kind, "status": status, "reason": "ReconcileCompleted",
                        "message": "Reconcile completed successfully",
                        "lastTransitionTime": timestamp(wall_now_ms())})
                })
                .collect(),
            ..State::default()
        };
        Arc::new_cyclic(|myself| ControlPlane {
            driver,
            cluster: Arc::new(cluster),
            time_scale: if time_scale > 0.0 { time_scale } else { 1.0 },
            started_ms,
            myself: myself.clone(),
            state: Mutex::new(state),
            store: Mutex::new(Store::new()),
            refreshing: tokio::sync::Mutex::new(()),
            renderings_begun: std::sync::atomic::AtomicU64::new(0),
            last_rendering_finished: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A MachineConfigPool as the API serves it now (without its `resourceVersion`).
    pub fn machine_config_pool(&self, name: &str) -> Option<Value> {
        self.store().get("machineconfigpools", "", name)
    }

    /// How many updates with a reboot the emulated Machine Config Operator gave each node.
    pub fn machine_config_reboots(&self) -> BTreeMap<String, u64> {
        self.lock().machine_config.reboots()
    }

    /// Renders the inventory's target into every MachineConfigPool (the cluster's update
    /// rendered the new configs); `false` when it already was.
    pub async fn render_machine_config_target(&self) -> bool {
        let rendered = {
            let target = self.cluster.target_version.clone();
            self.lock().machine_config.render_target(&target)
        };
        let _ = self.refresh().await;
        rendered
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The world itself (the simulator's own state), for tests that check invariants on it
    /// beside the API.
    pub fn snapshot(&self) -> WorldSnapshot {
        self.driver.snapshot()
    }

    /// The HyperConverged resource as the API serves it now (without its `resourceVersion`).
    pub fn hyperconverged(&self) -> Value {
        let state = self.lock();
        self.render_hyperconverged(&state)
    }

    /// The object store (for lists, gets and watches).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one request by `METHOD /path` with namespaces and names as `{namespace}`/`{name}`.
    pub fn count_call(&self, method: &str, shape: &str) {
        let key = format!("{method} {shape}");
        let mut state = self.lock();
        if state.calls.len() < MAX_CALL_KEYS || state.calls.contains_key(&key) {
            *state.calls.entry(key).or_default() += 1;
        }
    }

    /// Counts watch events sent to clients.
    pub fn count_watch_events(&self, events: u64) {
        self.lock().watch_events_sent += events;
    }

    /// The emulator's own counters: requests by shape and watch events sent.
    pub fn counters(&self) -> Value {
        let state = self.lock();
        json!({"calls": state.calls, "watch_events_sent": state.watch_events_sent})
    }

    fn platform_sleep(&self, platform_ms: u64) -> tokio::time::Sleep {
        tokio::time::sleep(Duration::from_secs_f64(
            platform_ms as f64 / 1000.0 / self.time_scale,
        ))
    }

    async fn view(&self) -> Result<View, Answer> {
        let discovered = self.driver.discover().await.map_err(|problem| {
            (
                500,
                store::status_failure(500, "InternalError", &problem.to_string(), None),
            )
        })?;
        Ok(View {
            discovered,
            snapshot: self.driver.snapshot(),
        })
    }

    /// Renders every object from the world and the controllers' state into the store.
    pub async fn refresh(&self) -> Result<(), Answer> {
        use std::sync::atomic::Ordering;
        let begun_before_arrival = self.renderings_begun.load(Ordering::SeqCst);
        let _serial = self.refreshing.lock().await;
        if self.last_rendering_finished.load(Ordering::SeqCst) > begun_before_arrival {
            // A rendering that began after this request arrived has finished: it is current.
            return Ok(());
        }
        let number = self.renderings_begun.fetch_add(1, Ordering::SeqCst) + 1;
        let view = self.view().await?;
        let rendered = {
            let mut state = self.lock();
            self.render(&mut state, &view)
        };
        {
            let mut store = self.store();
            for rendered in rendered {
                store.sync_changed(rendered.resource, &rendered.present, rendered.changed);
            }
        }
        self.last_rendering_finished
            .store(number, std::sync::atomic::Ordering::SeqCst);
        let starts = std::mem::take(&mut self.lock().machine_config_starts);
        if let Some(control_plane) = self.myself.upgrade() {
            for start in starts {
                let control_plane = Arc::clone(&control_plane);
                tokio::spawn(control_plane.machine_config_update(start));
            }
        }
        Ok(())
    }

    fn metadata(&self, name: &str, namespace: Option<&str>, kind: &str) -> Map<String, Value> {
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(name));
        if let Some(namespace) = namespace {
            metadata.insert("namespace".into(), json!(namespace));
        }
        metadata.insert(
            "uid".into(),
            json!(uid(&[kind, namespace.unwrap_or(""), name])),
        );
        metadata.insert(
            "creationTimestamp".into(),
            json!(timestamp(self.started_ms)),
        );
        metadata
    }

    /// Renders the objects whose inputs changed since the last rendering: a VM's four objects
    /// (VirtualMachine, VMI, virt-launcher pod, disruption budget) are rendered again only when
    /// the fingerprint of what they are made of changed ([`vm_fingerprint`]); nodes, virt-handler
    /// pods, migrations and the HyperConverged (few, or changing often) every time. Each resource
    /// comes with the keys of every object it has now, so the store removes the others.
    fn render(&self, state: &mut State, view: &View) -> Vec<Rendered> {
        let discovered = &view.discovered;
        let labels: Vec<Map<String, Value>> = discovered
            .hosts
            .iter()
            .map(|host| host_labels(host, state.node_labels.get(&host.name)))
            .collect();
        let members: Vec<Member> = discovered
            .hosts
            .iter()
            .zip(&labels)
            .map(|(host, labels)| Member {
                name: &host.name,
                labels,
                ready: view.snapshot.host(&host.name).is_some_and(|snapshot| {
                    matches!(
                        snapshot.state,
                        PlatformHostState::Up | PlatformHostState::Maintenance
                    )
                }),
                unschedulable: host.cordoned,
                version: &host.version,
            })
            .collect();
        let starts = state.machine_config.reconcile(&members);
        state.machine_config_starts.extend(starts);
        let mut machine_config_pools = Vec::new();
        for name in state.machine_config.names() {
            let started_ms = self.started_ms;
            let stamp = move |epoch_ms: u64| timestamp(epoch_ms.max(started_ms));
            if let Some(pool) = state.machine_config.render(&name, &members, &stamp) {
                machine_config_pools.push(pool);
            }
        }
        let nodes: Vec<Value> = discovered
            .hosts
            .iter()
            .enumerate()
            .map(|(index, host)| self.render_node(state, view, index, host))
            .collect();
        let mut vms = Rendered::new("virtualmachines");
        let mut vmis = Rendered::new("virtualmachineinstances");
        let mut pods = Rendered::new("pods");
        let mut budgets = Rendered::new("poddisruptionbudgets");
        // The latest started migration of each VMI (its `status.migrationState`), found once.
        let mut latest: HashMap<String, (u64, (String, String))> = HashMap::new();
        for (key, migration) in &state.migrations {
            if migration.start_ms.is_none() {
                continue;
            }
            let entry = latest
                .entry(migration.vmi.clone())
                .or_insert((migration.serial, key.clone()));
            if migration.serial > entry.0 {
                *entry = (migration.serial, key.clone());
            }
        }
        let mut fingerprints = std::mem::take(&mut state.fingerprints);
        let mut kept = HashMap::with_capacity(discovered.vms.len());
        for vm in &discovered.vms {
            let running = vm.state == VmState::Running;
            let halted = state.halted.contains(&vm.name);
            let node = discovered.hosts[vm.host.index()].name.clone();
            state.last_nodes.insert(vm.name.clone(), node.clone());
            let launcher = state.launchers.entry(vm.name.clone()).or_default();
            if !running {
                launcher.stopped = true;
            } else if launcher.node != node || launcher.stopped {
                if !launcher.node.is_empty() {
                    launcher.generation += 1;
                }
                launcher.node = node.clone();
                launcher.stopped = false;
            }
            let generation = launcher.generation;
            let latest_migration = latest
                .get(&vm.name)
                .and_then(|(_, key)| state.migrations.get(key));
            let fingerprint = vm_fingerprint(state, vm, &node, latest_migration);
            let unchanged = fingerprints.remove(&vm.name) == Some(fingerprint);
            kept.insert(vm.name.clone(), fingerprint);
            let key = (VM_NAMESPACE.to_string(), vm.name.clone());
            vms.present.insert(key.clone());
            if running {
                vmis.present.insert(key);
                pods.present.insert((
                    VM_NAMESPACE.to_string(),
                    Self::launcher_name(&vm.name, generation),
                ));
                if live_migratable(vm) {
                    budgets
                        .present
                        .insert((VM_NAMESPACE.to_string(), Self::budget_name(&vm.name)));
                }
            }
            if unchanged {
                continue;
            }
            vms.changed.push(self.render_vm(
                vm,
                discovered,
                running,
                halted,
                state.vm_annotations.get(&vm.name),
            ));
            if !running {
                continue;
            }
            vmis.changed
                .push(self.render_vmi(state, vm, discovered, &node, latest_migration));
            pods.changed
                .push(self.render_launcher(state, vm, &node, generation));
            if live_migratable(vm) {
                budgets.changed.push(self.render_budget(vm));
            }
        }
        state.fingerprints = kept;
        for host in &discovered.hosts {
            let generation = state
                .handler_generations
                .get(&host.name)
                .copied()
                .unwrap_or(0);
            let handler = self.render_handler(&host.name, generation);
            pods.present.insert(store::object_key(&handler));
            pods.changed.push(handler);
        }
        let mut migrations = Rendered::new("virtualmachineinstancemigrations");
        let mut migration_fingerprints = HashMap::with_capacity(state.migrations.len());
        for (key, migration) in &state.migrations {
            let fingerprint = migration_fingerprint(migration);
            migrations.present.insert(key.clone());
            if state.migration_fingerprints.get(key) != Some(&fingerprint) {
                migrations.changed.push(render_migration(migration));
            }
            migration_fingerprints.insert(key.clone(), fingerprint);
        }
        state.migration_fingerprints = migration_fingerprints;
        let daemonset = self.render_daemonset(discovered.hosts.len());
        let hyperconverged = self.render_hyperconverged(state);
        vec![
            Rendered::whole("nodes", nodes),
            vms,
            vmis,
            pods,
            budgets,
            migrations,
            Rendered::whole("daemonsets", vec![daemonset]),
            Rendered::whole("hyperconvergeds", vec![hyperconverged]),
            Rendered::whole("machineconfigpools", machine_config_pools),
        ]
    }

    fn render_node(&self, state: &State, view: &View, index: usize, host: &Host) -> Value {
        let snapshot = view.snapshot.host(&host.name);
        let platform_state = snapshot.map_or(PlatformHostState::Down, |host| host.state);
        let boot_id = snapshot
            .map(|host| host.boot_id.clone())
            .unwrap_or_default();
        let mut metadata = self.metadata(&host.name, None, "Node");
        metadata.insert(
            "labels".into(),
            Value::Object(host_labels(host, state.node_labels.get(&host.name))),
        );
        let mut annotations = state
            .node_annotations
            .get(&host.name)
            .cloned()
            .unwrap_or_default();
        // The machine-config-daemon's own annotations win over what clients wrote.
        for (key, value) in state.machine_config.node_annotations(&host.name) {
            annotations.insert(key.to_string(), value);
        }
        if !annotations.is_empty() {
            metadata.insert("annotations".into(), json!(annotations));
        }
        let ready = match platform_state {
            PlatformHostState::Up | PlatformHostState::Maintenance => json!({
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": timestamp(self.started_ms),
                "lastTransitionTime": timestamp(self.started_ms),
            }),
            PlatformHostState::Rebooting | PlatformHostState::Down => json!({
                "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastHeartbeatTime": timestamp(self.started_ms),
                "lastTransitionTime": timestamp(self.started_ms),
            }),
        };
        let mut spec = Map::new();
        if host.cordoned {
            spec.insert("unschedulable".into(), json!(true));
            spec.insert(
                "taints".into(),
                json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                    "timeAdded": timestamp(self.started_ms)}]),
            );
        }
        let resources = json!({
            "cpu": host.cpus.to_string(),
            "memory": format!("{}Ki", host.memory_mib * 1024),
            "pods": "250",
        });
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": metadata,
            "spec": spec,
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": [ready],
                "addresses": [
                    {"type": "InternalIP", "address": format!("127.0.0.{}", index % 250 + 2)},
                    {"type": "Hostname", "address": host.name},
                ],
                "nodeInfo": {
                    "bootID": boot_id,
                    "machineID": uid(&["machine", &host.name]).replace('-', ""),
                    "systemUUID": uid(&["system", &host.name]),
                    "kernelVersion": "5.14.0-427.el9_4.x86_64",
                    "osImage": format!("Red Hat Enterprise Linux CoreOS {}", host.version),
                    "containerRuntimeVersion": "cri-o://1.29.0",
                    "kubeletVersion": format!("v{}", host.version),
                    "kubeProxyVersion": "",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        })
    }

    fn vmi_spec(&self, vm: &Vm, discovered: &Discovered) -> Value {
        let mut spec = json!({
            "domain": {
                "cpu": {"cores": vm.vcpus, "sockets": 1, "threads": 1},
                "resources": {"requests": {"memory": format!("{}Mi", vm.memory_mib)}},
                "devices": {},
            },
            "evictionStrategy": if live_migratable(vm) { "LiveMigrate" } else { "None" },
            "terminationGracePeriodSeconds": VMI_TERMINATION_GRACE.as_secs(),
            "volumes": [{"name": "rootdisk", "persistentVolumeClaim": {"claimName": format!("{}-rootdisk", vm.name)}}],
        });
        let mut affinity = Map::new();
        if let Some(allowed) = &vm.allowed_hosts {
            let names: Vec<&str> = allowed
                .iter()
                .filter_map(|host| discovered.hosts.get(host.index()))
                .map(|host| host.name.as_str())
                .collect();
            affinity.insert(
                "nodeAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": names}]}
                ]}}),
            );
        }
        if let Some(group) = &vm.anti_affinity {
            affinity.insert(
                "podAntiAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {ANTI_AFFINITY_LABEL: group}},
                     "topologyKey": "kubernetes.io/hostname"}
                ]}),
            );
        }
        if !affinity.is_empty() {
            spec["affinity"] = Value::Object(affinity);
        }
        spec
    }

    fn vm_labels(vm: &Vm) -> Value {
        let mut labels = Map::new();
        labels.insert("kubevirt.io/domain".into(), json!(vm.name));
        if let Some(group) = &vm.anti_affinity {
            labels.insert(ANTI_AFFINITY_LABEL.into(), json!(group));
        }
        Value::Object(labels)
    }

    fn render_vm(
        &self,
        vm: &Vm,
        discovered: &Discovered,
        running: bool,
        halted: bool,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Value {
        let mut metadata = self.metadata(&vm.name, Some(VM_NAMESPACE), "VirtualMachine");
        metadata.insert("labels".into(), Self::vm_labels(vm));
        if let Some(annotations) = annotations.filter(|annotations| !annotations.is_empty()) {
            metadata.insert("annotations".into(), json!(annotations));
        }
        let run_strategy = match (running && !halted, vm.restart_policy) {
            (false, _) => "Halted",
            (true, RestartPolicy::Always) => "Always",
            (true, RestartPolicy::Manual) => "Manual",
        };
        json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": metadata,
            "spec": {
                "runStrategy": run_strategy,
                "template": {
                    "metadata": {"labels": Self::vm_labels(vm)},
                    "spec": self.vmi_spec(vm, discovered),
                },
            },
            "status": {
                "created": running,
                "ready": running,
                "printableStatus": if running { "Running" } else { "Stopped" },
                "runStrategy": run_strategy,
            },
        })
    }

    fn render_vmi(
        &self,
        state: &State,
        vm: &Vm,
        discovered: &Discovered,
        node: &str,
        latest: Option<&Migration>,
    ) -> Value {
        let mut metadata = self.metadata(&vm.name, Some(VM_NAMESPACE), "VirtualMachineInstance");
        let mut labels = Self::vm_labels(vm);
        labels["kubevirt.io/nodeName"] = json!(node);
        metadata.insert("labels".into(), labels);
        metadata.insert(
            "ownerReferences".into(),
            json!([{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "name": vm.name,
                "uid": uid(&["VirtualMachine", VM_NAMESPACE, &vm.name]),
                "controller": true, "blockOwnerDeletion": true}]),
        );
        let migratable = match not_migratable_reason(vm) {
            None => json!({"type": "LiveMigratable", "status": "True"}),
            Some((reason, message)) => {
                json!({"type": "LiveMigratable", "status": "False", "reason": reason, "message": message})
            }
        };
        let mut status = json!({
            "phase": "Running",
            "nodeName": node,
            "conditions": [
                {"type": "Ready", "status": "True"},
                migratable,
            ],
            "guestOSInfo": {},
        });
        if let Some(migration) = latest {
            status["migrationState"] = migration_state(migration);
        }
        if let Some(leaving) = state.evacuating.get(&vm.name) {
            status["evacuationNodeName"] = json!(leaving);
        }
        json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance",
            "metadata": metadata,
            "spec": self.vmi_spec(vm, discovered),
            "status": status,
        })
    }

    fn launcher_name(vm: &str, generation: u64) -> String {
        format!(
            "virt-launcher-{vm}-{}",
            suffix(&[vm, &generation.to_string()])
        )
    }

    fn render_launcher(&self, state: &State, vm: &Vm, node: &str, generation: u64) -> Value {
        let name = Self::launcher_name(&vm.name, generation);
        let mut metadata = self.metadata(&name, Some(VM_NAMESPACE), "Pod");
        let vmi_uid = uid(&["VirtualMachineInstance", VM_NAMESPACE, &vm.name]);
        metadata.insert(
            "labels".into(),
            json!({"kubevirt.io": "virt-launcher", "kubevirt.io/created-by": vmi_uid,
                "vm.kubevirt.io/name": vm.name}),
        );
        metadata.insert(
            "ownerReferences".into(),
            json!([{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                "name": vm.name, "uid": vmi_uid, "controller": true, "blockOwnerDeletion": true}]),
        );
        if let Some(since) = state.evicting.get(&vm.name) {
            metadata.insert("deletionTimestamp".into(), json!(timestamp(*since)));
            metadata.insert(
                "deletionGracePeriodSeconds".into(),
                json!(VMI_TERMINATION_GRACE.as_secs()),
            );
        }
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {
                "nodeName": node,
                "containers": [{"name": "compute", "image": "registry.redhat.io/container-native-virtualization/virt-launcher-rhel9:v4.16",
                    "resources": {"requests": {"memory": format!("{}Mi", vm.memory_mib)}}}],
                "volumes": [{"name": "private", "emptyDir": {}}],
                "terminationGracePeriodSeconds": VMI_TERMINATION_GRACE.as_secs(),
            },
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        })
    }

    fn handler_name(node: &str, generation: u64) -> String {
        format!("virt-handler-{}", suffix(&[node, &generation.to_string()]))
    }

    fn render_handler(&self, node: &str, generation: u64) -> Value {
        let name = Self::handler_name(node, generation);
        let mut metadata = self.metadata(&name, Some(CNV_NAMESPACE), "Pod");
        metadata.insert("labels".into(), json!({"kubevirt.io": "virt-handler"}));
        metadata.insert(
            "ownerReferences".into(),
            json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "virt-handler",
                "uid": uid(&["DaemonSet", CNV_NAMESPACE, "virt-handler"]),
                "controller": true, "blockOwnerDeletion": true}]),
        );
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {"nodeName": node, "containers": [{"name": "virt-handler", "image": "registry.redhat.io/container-native-virtualization/virt-handler-rhel9:v4.16"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        })
    }

    fn render_daemonset(&self, nodes: usize) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": self.metadata("virt-handler", Some(CNV_NAMESPACE), "DaemonSet"),
            "spec": {"selector": {"matchLabels": {"kubevirt.io": "virt-handler"}}},
            "status": {"desiredNumberScheduled": nodes, "currentNumberScheduled": nodes, "numberReady": nodes},
        })
    }

    fn budget_name(vm: &str) -> String {
        format!("kubevirt-disruption-budget-{}", suffix(&["pdb", vm]))
    }

    fn render_budget(&self, vm: &Vm) -> Value {
        let name = Self::budget_name(&vm.name);
        let mut metadata = self.metadata(&name, Some(VM_NAMESPACE), "PodDisruptionBudget");
        metadata.insert(
            "ownerReferences".into(),
            json!([{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
                "name": vm.name, "uid": uid(&["VirtualMachineInstance", VM_NAMESPACE, &vm.name]),
                "controller": true, "blockOwnerDeletion": true}]),
        );
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata,
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {
                "kubevirt.io/created-by": uid(&["VirtualMachineInstance", VM_NAMESPACE, &vm.name])}}},
            "status": {"currentHealthy": 1, "desiredHealthy": 1, "disruptionsAllowed": 0, "expectedPods": 1},
        })
    }

    fn render_hyperconverged(&self, state: &State) -> Value {
        let mut metadata =
            self.metadata(HYPERCONVERGED_NAME, Some(CNV_NAMESPACE), "HyperConverged");
        for field in ["labels", "annotations"] {
            if let Some(value) = state.hyperconverged_metadata.get(field) {
                metadata.insert(field.into(), value.clone());
            }
        }
        json!({
            "apiVersion": "hco.kubevirt.io/v1beta1",
            "kind": "HyperConverged",
            "metadata": metadata,
            "spec": state.hyperconverged_spec,
            "status": {
                "conditions": state.hyperconverged_conditions,
                "versions": [{"name": "operator", "version": self.cluster.target_version.to_string()}],
            },
        })
    }

    /// Answers one request for a resource that changes something (reads are the store's).
    pub async fn handle(self: &Arc<Self>, resource: &ResourceKind, request: Request) -> Answer {
        let answer = match (
            request.method.as_str(),
            resource.plural,
            request.subresource.as_deref(),
        ) {
            ("PATCH" | "PUT", "nodes", None) => self.update_node(&request).await,
            ("PATCH", "virtualmachines", None) => self.update_vm(&request).await,
            ("POST", "pods", Some("eviction")) => self.evict(&request).await,
            ("POST", "virtualmachineinstancemigrations", None) => {
                self.create_migration(&request).await
            }
            ("DELETE", "virtualmachineinstancemigrations", None) => {
                self.delete_migration(&request).await
            }
            ("PATCH" | "PUT", "hyperconvergeds", subresource) => {
                self.update_hyperconverged(&request, subresource == Some("status"))
                    .await
            }
            ("POST", "machineconfigpools", None) => self.create_machine_config_pool(&request).await,
            ("PATCH" | "PUT", "machineconfigpools", subresource) => {
                self.update_machine_config_pool(&request, subresource == Some("status"))
                    .await
            }
            ("DELETE", "machineconfigpools", None) => {
                let name = request.name.clone().unwrap_or_default();
                let deleted = self.lock().machine_config.delete(&name);
                match deleted {
                    Ok(()) => (
                        200,
                        store::status_success(
                            200,
                            Some(json!({"name": name, "group": machineconfig::GROUP,
                                "kind": "machineconfigpools"})),
                        ),
                    ),
                    Err(answer) => answer,
                }
            }
            (method, plural, _) => store::method_not_allowed(&format!(
                "the server does not allow this method on the requested resource: {method} {plural}"
            )),
        };
        let _ = self.refresh().await;
        answer
    }

    /// The current stored object, refreshed.
    async fn current(&self, plural: &str, namespace: &str, name: &str) -> Result<Value, Answer> {
        self.refresh().await?;
        let group = RESOURCES
            .iter()
            .find(|resource| resource.plural == plural)
            .map_or("", |resource| resource.group);
        self.store()
            .get(plural, namespace, name)
            .ok_or_else(|| store::not_found(group, plural, name))
    }

    /// The patched or replaced object a PATCH or PUT asks for, checked against the current
    /// one's `resourceVersion`.
    fn updated(
        request: &Request,
        current: &Value,
        group: &str,
        plural: &str,
    ) -> Result<Value, Answer> {
        let name = request.name.clone().unwrap_or_default();
        let updated = if request.method == "PUT" {
            serde_json::from_str(&request.body).map_err(|error| {
                store::bad_request(&format!(
                    "the body of the request could not be read: {error}"
                ))
            })?
        } else {
            let patch: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            // A patch that names a resourceVersion is checked like an update.
            if patch.is_object() && store::stale(&patch, current) {
                return Err(store::conflict(group, plural, &name));
            }
            store::apply_patch(&request.content_type, current, &request.body)?
        };
        if request.method == "PUT" && store::stale(&updated, current) {
            return Err(store::conflict(group, plural, &name));
        }
        Ok(updated)
    }

    async fn update_node(&self, request: &Request) -> Answer {
        let name = request.name.clone().unwrap_or_default();
        let current = match self.current("nodes", "", &name).await {
            Ok(current) => current,
            Err(answer) => return answer,
        };
        let updated = match Self::updated(request, &current, "", "nodes") {
            Ok(updated) => updated,
            Err(answer) => return answer,
        };
        let without = |object: &Value| {
            let mut spec = object["spec"].clone();
            if let Some(fields) = spec.as_object_mut() {
                fields.remove("unschedulable");
                fields.remove("taints");
            }
            spec
        };
        if without(&updated) != without(&current) {
            return store::invalid(
                "",
                "Node",
                &name,
                &[(
                    "FieldValueForbidden",
                    "spec",
                    "the emulator changes only spec.unschedulable of a node".to_string(),
                )],
            );
        }
        let text_map = |value: &Value| -> BTreeMap<String, String> {
            value
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_string()))
                .collect()
        };
        {
            let mut state = self.lock();
            let labels = text_map(&updated["metadata"]["labels"]);
            if labels != text_map(&current["metadata"]["labels"]) {
                state.node_labels.insert(name.clone(), labels);
            }
            state
                .node_annotations
                .insert(name.clone(), text_map(&updated["metadata"]["annotations"]));
        }
        let unschedulable = updated["spec"]["unschedulable"].as_bool().unwrap_or(false);
        let was = current["spec"]["unschedulable"].as_bool().unwrap_or(false);
        if unschedulable != was {
            if let Err(problem) = self.driver.set_allocation(&name, !unschedulable).await {
                return (
                    500,
                    store::status_failure(500, "InternalError", &problem.to_string(), None),
                );
            }
        }
        match self.current("nodes", "", &name).await {
            Ok(node) => (200, node),
            Err(answer) => answer,
        }
    }

    /// A VM's metadata (labels and annotations kept as annotations overlay); its spec is the
    /// inventory's (start and stop go through the subresources).
    async fn update_vm(&self, request: &Request) -> Answer {
        let namespace = request.namespace.clone().unwrap_or_default();
        let name = request.name.clone().unwrap_or_default();
        let current = match self.current("virtualmachines", &namespace, &name).await {
            Ok(current) => current,
            Err(answer) => return answer,
        };
        let updated = match Self::updated(request, &current, "kubevirt.io", "virtualmachines") {
            Ok(updated) => updated,
            Err(answer) => return answer,
        };
        if updated["spec"] != current["spec"] {
            return store::invalid(
                "kubevirt.io",
                "VirtualMachine",
                &name,
                &[(
                    "FieldValueForbidden",
                    "spec",
                    "the emulator changes only a VM's annotations; start and stop it through its subresources".to_string(),
                )],
            );
        }
        let annotations: BTreeMap<String, String> = updated["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_string()))
            .collect();
        self.lock().vm_annotations.insert(name.clone(), annotations);
        match self.current("virtualmachines", &namespace, &name).await {
            Ok(object) => (200, object),
            Err(answer) => answer,
        }
    }

    async fn update_hyperconverged(&self, request: &Request, status: bool) -> Answer {
        let namespace = request.namespace.clone().unwrap_or_default();
        let name = request.name.clone().unwrap_or_default();
        let current = match self.current("hyperconvergeds", &namespace, &name).await {
            Ok(current) => current,
            Err(answer) => return answer,
        };
        let updated = match Self::updated(request, &current, "hco.kubevirt.io", "hyperconvergeds") {
            Ok(updated) => updated,
            Err(answer) => return answer,
        };
        {
            let mut state = self.lock();
            if status {
                // The status subresource changes the status only.
                if let Some(conditions) = updated["status"]["conditions"].as_array() {
                    state.hyperconverged_conditions = conditions.clone();
                }
            } else {
                // The main resource ignores status changes, as for every resource with a
                // status subresource.
                state.hyperconverged_spec = updated["spec"].clone();
                state.hyperconverged_metadata = json!({
                    "labels": updated["metadata"]["labels"],
                    "annotations": updated["metadata"]["annotations"],
                });
                if let Some(fields) = state.hyperconverged_metadata.as_object_mut() {
                    fields.retain(|_, value| !value.is_null());
                }
            }
        }
        match self.current("hyperconvergeds", &namespace, &name).await {
            Ok(object) => (200, object),
            Err(answer) => answer,
        }
    }

    async fn create_machine_config_pool(&self, request: &Request) -> Answer {
        let body: Value = match serde_json::from_str(&request.body) {
            Ok(body) => body,
            Err(error) => {
                return store::bad_request(&format!(
                    "the body of the request could not be read: {error}"
                ))
            }
        };
        let created = self.lock().machine_config.create(&body, wall_now_ms());
        match created {
            Ok(name) => match self.current("machineconfigpools", "", &name).await {
                Ok(object) => (201, object),
                Err(answer) => answer,
            },
            Err(answer) => answer,
        }
    }

    /// A client's change of a pool: the main resource takes labels, annotations and the spec
    /// (the controller keeps `spec.configuration`); the `status` subresource is answered with
    /// the controller's status, which overwrites any client's. The first pause of `worker`
    /// renders the target (the module doc of `machineconfig` says why).
    async fn update_machine_config_pool(&self, request: &Request, status: bool) -> Answer {
        let name = request.name.clone().unwrap_or_default();
        let current = match self.current("machineconfigpools", "", &name).await {
            Ok(current) => current,
            Err(answer) => return answer,
        };
        let updated = match Self::updated(
            request,
            &current,
            machineconfig::GROUP,
            "machineconfigpools",
        ) {
            Ok(updated) => updated,
            Err(answer) => return answer,
        };
        if !status {
            let target = self.cluster.target_version.clone();
            let mut state = self.lock();
            let paused_now = state.machine_config.update(&name, &updated);
            if paused_now && name == machineconfig::WORKER {
                state.machine_config.render_target(&target);
            }
        }
        match self.current("machineconfigpools", "", &name).await {
            Ok(object) => (200, object),
            Err(answer) => answer,
        }
    }

    /// The emulated machine-config-daemon's update of one node to a rendered config: a config
    /// that changes no OS version is applied in place; otherwise the node is cordoned, drained
    /// (its VMs' launcher pods evicted: live-migratable VMIs are evacuated by KubeVirt, the
    /// others stopped), its OS updated and rebooted (the simulator's upgrade, which reboots: the
    /// node is NotReady meanwhile, then Ready on a new boot id at the new version) and
    /// uncordoned. A failure is the node's `Degraded` state with the failure as its reason.
    ///
    /// Boxed as a `Send` future: the update evicts, whose own task refreshes, which spawns
    /// updates; the compiler cannot see through that cycle of opaque futures.
    fn machine_config_update(
        self: Arc<Self>,
        start: Start,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let outcome = self.machine_config_apply(&start).await;
            self.lock().machine_config.finish(&start, outcome);
            let _ = self.refresh().await;
        })
    }

    async fn machine_config_apply(self: &Arc<Self>, start: &Start) -> Result<bool, String> {
        let node = start.node.as_str();
        let Some(version) = &start.version else {
            return Ok(false);
        };
        let snapshot = self
            .driver
            .snapshot()
            .host(node)
            .cloned()
            .ok_or_else(|| format!("node {node} is gone"))?;
        if snapshot.version == *version {
            return Ok(false);
        }
        let cordoned_here = !snapshot.cordoned;
        if cordoned_here {
            self.driver
                .set_allocation(node, false)
                .await
                .map_err(|error| format!("failed to cordon node {node}: {error}"))?;
        }
        let _ = self.refresh().await;
        // The daemon's drain: evict every VM's launcher pod until none runs there (the
        // Eviction API's 429 while KubeVirt evacuates a VMI is retried, as `oc adm drain` does).
        let drain_deadline_ms = MACHINE_CONFIG_DRAIN_TIMEOUT_MS;
        let mut waited_ms = 0;
        loop {
            let view = self
                .view()
                .await
                .map_err(|(_, status)| status.to_string())?;
            let running: Vec<Vm> = view
                .discovered
                .vms
                .iter()
                .filter(|vm| {
                    vm.state == VmState::Running
                        && view.discovered.hosts[vm.host.index()].name == node
                })
                .cloned()
                .collect();
            if running.is_empty() {
                break;
            }
            if waited_ms >= drain_deadline_ms {
                let names: Vec<&str> = running.iter().map(|vm| vm.name.as_str()).collect();
                return Err(format!(
                    "failed to drain node {node} after {} s: VMs still running: {}",
                    drain_deadline_ms / 1000,
                    names.join(", ")
                ));
            }
            for vm in &running {
                let generation = self
                    .lock()
                    .launchers
                    .get(&vm.name)
                    .map_or(0, |launcher| launcher.generation);
                let request = Request {
                    method: "POST".into(),
                    namespace: Some(VM_NAMESPACE.to_string()),
                    name: Some(Self::launcher_name(&vm.name, generation)),
                    subresource: Some("eviction".into()),
                    ..Request::default()
                };
                let _ = self.evict(&request).await;
            }
            self.platform_sleep(MACHINE_CONFIG_POLL_MS).await;
            waited_ms += MACHINE_CONFIG_POLL_MS;
        }
        let updated = async {
            self.driver.set_maintenance(node, true).await?;
            let upgraded = self.driver.upgrade(node, version).await;
            let left = self.driver.set_maintenance(node, false).await;
            upgraded.and(left)
        }
        .await;
        if let Err(error) = updated {
            let _ = self.refresh().await;
            return Err(format!("failed to update the OS of node {node}: {error}"));
        }
        // The daemon reports Done only once the node is back: Ready on its new boot.
        let mut waited_ms = 0;
        loop {
            let back = self.driver.snapshot().host(node).is_some_and(|host| {
                host.state == PlatformHostState::Up && host.boot_id != snapshot.boot_id
            });
            if back {
                break;
            }
            if waited_ms >= MACHINE_CONFIG_DRAIN_TIMEOUT_MS {
                return Err(format!("node {node} did not come back after its reboot"));
            }
            self.platform_sleep(MACHINE_CONFIG_POLL_MS).await;
            waited_ms += MACHINE_CONFIG_POLL_MS;
        }
        if cordoned_here {
            let _ = self.driver.set_allocation(node, true).await;
        }
        Ok(true)
    }

    /// The node a VM may move to now: up, schedulable, allowed, with room and no VM of its
    /// anti-affinity group, matching `node_selector`; the one with the most free memory.
    fn pick_node(
        &self,
        view: &View,
        vm: &Vm,
        node_selector: &Map<String, Value>,
    ) -> Option<String> {
        let discovered = &view.discovered;
        let state = self.lock();
        discovered
            .hosts
            .iter()
            .enumerate()
            .filter(|(index, host)| {
                let up = view
                    .snapshot
                    .host(&host.name)
                    .is_some_and(|snapshot| snapshot.state == PlatformHostState::Up);
                let labels = host_labels(host, state.node_labels.get(&host.name));
                let selected = node_selector
                    .iter()
                    .all(|(key, value)| labels.get(key) == Some(value));
                let group_clear = vm.anti_affinity.as_ref().is_none_or(|group| {
                    !discovered.vms.iter().any(|other| {
                        other.name != vm.name
                            && other.state == VmState::Running
                            && other.host.index() == *index
                            && other.anti_affinity.as_ref() == Some(group)
                    })
                });
                up && !host.cordoned
                    && *index != vm.host.index()
                    && vm.may_run_on(drover_core::HostId(*index as u32))
                    && selected
                    && group_clear
                    && host
                        .memory_mib
                        .saturating_sub(running_memory_mib(discovered, *index))
                        >= vm.memory_mib
            })
            .max_by_key(|(index, host)| {
                host.memory_mib
                    .saturating_sub(running_memory_mib(discovered, *index))
            })
            .map(|(_, host)| host.name.clone())
    }

    fn running_vm<'a>(view: &'a View, name: &str) -> Option<&'a Vm> {
        view.discovered
            .vms
            .iter()
            .find(|vm| vm.name == name && vm.state == VmState::Running)
    }

    async fn evict(self: &Arc<Self>, request: &Request) -> Answer {
        let namespace = request.namespace.clone().unwrap_or_default();
        let name = request.name.clone().unwrap_or_default();
        let pod = match self.current("pods", &namespace, &name).await {
            Ok(pod) => pod,
            Err(answer) => return answer,
        };
        let owner = &pod["metadata"]["ownerReferences"][0];
        let created = (
            201,
            store::status_success(201, Some(json!({"name": name, "kind": "pods"}))),
        );
        if owner["kind"] == "DaemonSet" {
            // The DaemonSet controller starts a new pod in its place.
            let node = pod["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            *self.lock().handler_generations.entry(node).or_default() += 1;
            return created;
        }
        let vm_name = owner["name"].as_str().unwrap_or_default().to_string();
        let view = match self.view().await {
            Ok(view) => view,
            Err(answer) => return answer,
        };
        let Some(vm) = Self::running_vm(&view, &vm_name).cloned() else {
            return store::not_found("", "pods", &name);
        };
        let node = view.discovered.hosts[vm.host.index()].name.clone();
        if live_migratable(&vm) {
            // KubeVirt's eviction webhook marks the VMI for evacuation; virt-controller's
            // evacuation controller then migrates it. The budget keeps the pod meanwhile.
            let in_flight = self
                .lock()
                .migrations
                .values()
                .any(|migration| migration.vmi == vm_name && !migration.finished());
            if !in_flight {
                self.lock().evacuating.insert(vm_name.clone(), node.clone());
                let evacuation = json!({
                    "metadata": {"generateName": "kubevirt-evacuation-",
                        "annotations": {"kubevirt.io/evacuationMigration": node}},
                    "spec": {"vmiName": vm_name},
                });
                let _ = self.start_migration(&namespace, &evacuation).await;
            }
            let budget = Self::budget_name(&vm_name);
            return (
                429,
                store::status_failure(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    Some(json!({"causes": [{"reason": "DisruptionBudget",
                        "message": format!("The disruption budget {budget} needs 1 healthy pods and has 1 currently")}]})),
                ),
            );
        }
        {
            let mut state = self.lock();
            if state.evicting.contains_key(&vm_name) {
                return created;
            }
            state.evicting.insert(vm_name.clone(), wall_now_ms());
        }
        let control_plane = Arc::clone(self);
        tokio::spawn(async move {
            let stopped = control_plane
                .driver
                .shutdown_vm(&vm.name, &node, VMI_TERMINATION_GRACE)
                .await;
            {
                let mut state = control_plane.lock();
                state.evicting.remove(&vm.name);
                if let Some(launcher) = state.launchers.get_mut(&vm.name) {
                    launcher.generation += 1;
                    launcher.stopped = true;
                }
            }
            let halted = control_plane.lock().halted.contains(&vm.name);
            if stopped.is_ok() && vm.restart_policy == RestartPolicy::Always && !halted {
                // The VM controller starts a new VMI; the scheduler places its pod.
                if let Ok(view) = control_plane.view().await {
                    let mut moved = vm.clone();
                    moved.state = VmState::Running;
                    if let Some(target) = control_plane.pick_node(&view, &moved, &Map::new()) {
                        let _ = control_plane.driver.start_vm(&vm.name, &target).await;
                    } else {
                        let _ = control_plane.driver.start_vm(&vm.name, &node).await;
                    }
                }
            }
            let _ = control_plane.refresh().await;
        });
        created
    }

    async fn create_migration(self: &Arc<Self>, request: &Request) -> Answer {
        let namespace = request.namespace.clone().unwrap_or_default();
        let body: Value = match serde_json::from_str(&request.body) {
            Ok(body) => body,
            Err(error) => {
                return store::bad_request(&format!(
                    "the body of the request could not be read: {error}"
                ))
            }
        };
        if body["metadata"]["namespace"]
            .as_str()
            .is_some_and(|given| given != namespace)
        {
            return store::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            );
        }
        self.start_migration(&namespace, &body).await
    }

    /// Creates and starts a migration (a client's or an evacuation).
    async fn start_migration(self: &Arc<Self>, namespace: &str, body: &Value) -> Answer {
        let group = "kubevirt.io";
        let kind = "VirtualMachineInstanceMigration";
        let given_name = body["metadata"]["name"].as_str().unwrap_or_default();
        let generate_name = body["metadata"]["generateName"]
            .as_str()
            .unwrap_or_default();
        let vmi = body["spec"]["vmiName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if given_name.is_empty() && generate_name.is_empty() {
            return store::invalid(
                group,
                kind,
                "",
                &[(
                    "FieldValueRequired",
                    "metadata.name",
                    "name or generateName is required".to_string(),
                )],
            );
        }
        if vmi.is_empty() {
            return store::invalid(
                group,
                kind,
                given_name,
                &[(
                    "FieldValueRequired",
                    "spec.vmiName",
                    "Required value".to_string(),
                )],
            );
        }
        let webhook_denial = |message: String| {
            (
                422,
                store::status_failure(
                    422,
                    "Invalid",
                    &format!(
                        "admission webhook \"migration-create-validator.kubevirt.io\" denied the request: {message}"
                    ),
                    Some(json!({"causes": [{"reason": "FieldValueInvalid", "message": message, "field": "spec.vmiName"}]})),
                ),
            )
        };
        let view = match self.view().await {
            Ok(view) => view,
            Err(answer) => return answer,
        };
        let Some(vm) = Self::running_vm(&view, &vmi).filter(|_| namespace == VM_NAMESPACE) else {
            return webhook_denial(format!(
                "the VMI \"{namespace}/{vmi}\" does not exist under the cache"
            ));
        };
        if let Some((reason, message)) = not_migratable_reason(vm) {
            return webhook_denial(format!(
                "Cannot migrate VMI, Reason: {reason}, Message: {message}"
            ));
        }
        let source = view.discovered.hosts[vm.host.index()].name.clone();
        let now = wall_now_ms();
        let (key, object) = {
            let mut state = self.lock();
            if let Some(running) = state
                .migrations
                .values()
                .find(|migration| migration.vmi == vmi && !migration.finished())
            {
                return webhook_denial(format!(
                    "in-flight migration detected. Active migration job ({}) is currently already in progress for VMI {vmi}.",
                    running.uid
                ));
            }
            state.serial += 1;
            let serial = state.serial;
            let name = if given_name.is_empty() {
                format!(
                    "{generate_name}{}",
                    suffix(&[generate_name, &serial.to_string()])
                )
            } else {
                given_name.to_string()
            };
            let key = (namespace.to_string(), name.clone());
            if state.migrations.contains_key(&key) {
                return store::already_exists(group, "virtualmachineinstancemigrations", &name);
            }
            if state.migrations.len() >= MAX_MIGRATIONS_KEPT {
                let oldest_finished = state
                    .migrations
                    .iter()
                    .filter(|(_, migration)| migration.finished())
                    .min_by_key(|(_, migration)| migration.serial)
                    .map(|(key, _)| key.clone());
                match oldest_finished {
                    Some(oldest) => {
                        state.migrations.remove(&oldest);
                    }
                    None => {
                        return (
                            429,
                            store::status_failure(
                                429,
                                "TooManyRequests",
                                "too many migrations in progress in the emulator",
                                None,
                            ),
                        )
                    }
                }
            }
            let mut labels = body["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            labels["kubevirt.io/vmi-name"] = json!(vmi);
            let migration = Migration {
                namespace: namespace.to_string(),
                name: name.clone(),
                uid: uid(&[kind, namespace, &name, &serial.to_string()]),
                serial,
                vmi: vmi.clone(),
                created_ms: now,
                labels,
                annotations: body["metadata"]["annotations"].clone(),
                spec: body["spec"].clone(),
                phase: "Pending",
                transitions: vec![("Pending", now)],
                source: Some(source),
                target: None,
                target_pod: None,
                start_ms: None,
                end_ms: None,
                abort_requested: false,
                abort_status: None,
                failure_reason: None,
                follower: None,
            };
            let object = render_migration(&migration);
            state.migrations.insert(key.clone(), migration);
            (key, object)
        };
        let stored = self.store().put("virtualmachineinstancemigrations", object);
        let control_plane = Arc::clone(self);
        let follow_key = key.clone();
        let follower = tokio::spawn(async move {
            control_plane.follow_migration(follow_key).await;
        });
        if let Some(migration) = self.lock().migrations.get_mut(&key) {
            migration.follower = Some(follower.abort_handle());
        }
        (201, stored)
    }

    fn set_phase(&self, key: &(String, String), phase: &'static str) {
        let mut state = self.lock();
        if let Some(migration) = state.migrations.get_mut(key) {
            migration.phase = phase;
            migration.transitions.push((phase, wall_now_ms()));
        }
    }

    fn finish(&self, key: &(String, String), failure: Option<String>) {
        let mut state = self.lock();
        let Some(migration) = state.migrations.get_mut(key) else {
            return;
        };
        let now = wall_now_ms();
        migration.end_ms = Some(now);
        migration.follower = None;
        let vmi = migration.vmi.clone();
        match failure {
            None => {
                migration.phase = "Succeeded";
            }
            Some(reason) => {
                migration.phase = "Failed";
                migration.failure_reason = Some(reason);
            }
        }
        let phase = migration.phase;
        migration.transitions.push((phase, now));
        state.evacuating.remove(&vmi);
        // KubeVirt's garbage collection: the last five finished migrations of each VMI.
        let mut finished: Vec<(u64, (String, String))> = state
            .migrations
            .iter()
            .filter(|(_, migration)| migration.vmi == vmi && migration.finished())
            .map(|(key, migration)| (migration.serial, key.clone()))
            .collect();
        finished.sort();
        while finished.len() > FINISHED_MIGRATIONS_KEPT_PER_VMI {
            let (_, oldest) = finished.remove(0);
            state.migrations.remove(&oldest);
        }
    }

    async fn follow_migration(self: Arc<Self>, key: (String, String)) {
        let Some((vmi, selector)) = self.lock().migrations.get(&key).map(|migration| {
            (
                migration.vmi.clone(),
                migration.spec["addedNodeSelector"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
        }) else {
            return;
        };
        self.platform_sleep(PHASE_STEP_MS).await;
        self.set_phase(&key, "Scheduling");
        let _ = self.refresh().await;
        let mut waited_ms = 0;
        let (source, target) = loop {
            let view = match self.view().await {
                Ok(view) => view,
                Err((_, status)) => {
                    self.finish(&key, Some(status["message"].to_string()));
                    let _ = self.refresh().await;
                    return;
                }
            };
            let Some(vm) = Self::running_vm(&view, &vmi) else {
                self.finish(&key, Some(format!("the VMI {vmi} is no longer running")));
                let _ = self.refresh().await;
                return;
            };
            let source = view.discovered.hosts[vm.host.index()].name.clone();
            if let Some(target) = self.pick_node(&view, vm, &selector) {
                break (source, target);
            }
            if waited_ms >= UNSCHEDULABLE_TIMEOUT_MS {
                self.finish(
                    &key,
                    Some(format!(
                        "target pod for the migration of {vmi} was unschedulable for more than {} seconds",
                        UNSCHEDULABLE_TIMEOUT_MS / 1000
                    )),
                );
                let _ = self.refresh().await;
                return;
            }
            self.platform_sleep(PHASE_STEP_MS * 5).await;
            waited_ms += PHASE_STEP_MS * 5;
        };
        {
            let mut state = self.lock();
            let generation = state
                .launchers
                .get(&vmi)
                .map_or(0, |launcher| launcher.generation);
            if let Some(migration) = state.migrations.get_mut(&key) {
                migration.source = Some(source.clone());
                migration.target = Some(target.clone());
                migration.target_pod = Some(Self::launcher_name(&vmi, generation + 1));
            }
        }
        for phase in ["Scheduled", "PreparingTarget", "TargetReady"] {
            self.set_phase(&key, phase);
            let _ = self.refresh().await;
            self.platform_sleep(PHASE_STEP_MS).await;
        }
        if let Some(migration) = self.lock().migrations.get_mut(&key) {
            migration.start_ms = Some(wall_now_ms());
        }
        self.set_phase(&key, "Running");
        let _ = self.refresh().await;
        let outcome = self.driver.migrate(&vmi, &source, &target).await;
        self.finish(&key, outcome.err().map(|problem| problem.to_string()));
        let _ = self.refresh().await;
    }

    async fn delete_migration(self: &Arc<Self>, request: &Request) -> Answer {
        let namespace = request.namespace.clone().unwrap_or_default();
        let name = request.name.clone().unwrap_or_default();
        let key = (namespace.clone(), name.clone());
        let Some(migration) = self.lock().migrations.get(&key).cloned() else {
            return store::not_found("kubevirt.io", "virtualmachineinstancemigrations", &name);
        };
        if !migration.finished() {
            if let Some(follower) = &migration.follower {
                follower.abort();
            }
            if migration.phase == "Running" {
                if let Some(source) = &migration.source {
                    // The simulator cancels a migration superseded by one to where the VM runs.
                    let _ = self.driver.migrate(&migration.vmi, source, source).await;
                }
            }
            let mut state = self.lock();
            state.evacuating.remove(&migration.vmi);
            if let Some(kept) = state.migrations.get_mut(&key) {
                kept.abort_requested = true;
                kept.abort_status = Some("Succeeded");
                kept.phase = "Failed";
                kept.end_ms = Some(wall_now_ms());
                kept.failure_reason = Some("Migration aborted".to_string());
            }
        }
        let last = self
            .lock()
            .migrations
            .remove(&key)
            .map(|migration| render_migration(&migration));
        let _ = self
            .store()
            .remove("virtualmachineinstancemigrations", &namespace, &name);
        (
            200,
            last.unwrap_or_else(|| store::status_success(200, None)),
        )
    }

    /// KubeVirt's `virtualmachines/NAME/start` and `stop` subresources
    /// (`subresources.kubevirt.io/v1`, PUT, answered 202 as virt-api answers them): stop sets
    /// the VM halted and shuts its VMI down with its grace period; start runs it again, on the
    /// node it last ran on when that node can take it (the emulator's scheduler), else on the
    /// node with the most room. Stopping a stopped VM or starting a running one is 409.
    pub async fn vm_power(self: &Arc<Self>, namespace: &str, name: &str, action: &str) -> Answer {
        let view = match self.view().await {
            Ok(view) => view,
            Err(answer) => return answer,
        };
        let Some(vm) = view
            .discovered
            .vms
            .iter()
            .find(|vm| vm.name == name && namespace == VM_NAMESPACE)
            .cloned()
        else {
            return store::not_found("kubevirt.io", "virtualmachines", name);
        };
        let running = vm.state == VmState::Running;
        let refused = |message: &str| {
            (
                409,
                store::status_failure(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on virtualmachine.kubevirt.io \"{name}\": {message}"
                    ),
                    None,
                ),
            )
        };
        let node = view.discovered.hosts[vm.host.index()].name.clone();
        match action {
            "stop" => {
                if !running || self.lock().halted.contains(name) {
                    return refused("VM is not running");
                }
                self.lock().halted.insert(name.to_string());
                let control_plane = Arc::clone(self);
                tokio::spawn(async move {
                    let _ = control_plane
                        .driver
                        .shutdown_vm(&vm.name, &node, VMI_TERMINATION_GRACE)
                        .await;
                    let _ = control_plane.refresh().await;
                });
            }
            "start" => {
                if running && !self.lock().halted.contains(name) {
                    return refused("VM is already running");
                }
                if running {
                    return refused("VM is still stopping");
                }
                self.lock().halted.remove(name);
                let last = self.lock().last_nodes.get(name).cloned();
                let fits = last.as_ref().is_some_and(|last| {
                    view.discovered
                        .hosts
                        .iter()
                        .enumerate()
                        .any(|(index, host)| {
                            host.name == *last
                                && !host.cordoned
                                && host
                                    .memory_mib
                                    .saturating_sub(running_memory_mib(&view.discovered, index))
                                    >= vm.memory_mib
                        })
                });
                let target = if fits {
                    last
                } else {
                    let mut placed = vm.clone();
                    placed.host = drover_core::HostId(u32::MAX);
                    self.pick_node(&view, &placed, &Map::new())
                };
                let Some(target) = target else {
                    return refused("no node can run the VM");
                };
                let control_plane = Arc::clone(self);
                tokio::spawn(async move {
                    let _ = control_plane.driver.start_vm(&vm.name, &target).await;
                    let _ = control_plane.refresh().await;
                });
            }
            _ => return store::not_found("subresources.kubevirt.io", "virtualmachines", action),
        }
        (202, json!({}))
    }

    /// The emulator's stand-in for a node's upgrade (a command step on a real node): the node,
    /// which must run no VM, is upgraded to the cluster's target and rebooted.
    pub async fn upgrade_node(&self, name: &str) -> Answer {
        if !self.cluster.hosts.iter().any(|host| host.name == name) {
            return store::not_found("", "nodes", name);
        }
        let target = self.cluster.target_version.clone();
        let outcome = async {
            self.driver.set_maintenance(name, true).await?;
            self.driver.upgrade(name, &target).await?;
            self.driver.set_maintenance(name, false).await
        }
        .await;
        let _ = self.refresh().await;
        match outcome {
            Ok(()) => (200, json!({"node": name, "version": target.to_string()})),
            Err(problem) => (
                409,
                store::status_failure(409, "Conflict", &problem.to_string(), None),
            ),
        }
    }

    /// The emulator's stand-in for a node's reboot command: the node restarts (a new boot id).
    pub async fn reboot_node(&self, name: &str) -> Answer {
        let Some(boot_id) = self
            .driver
            .snapshot()
            .host(name)
            .map(|host| host.boot_id.clone())
        else {
            return store::not_found("", "nodes", name);
        };
        let outcome = self.driver.reboot(name, &boot_id).await;
        let _ = self.refresh().await;
        match outcome {
            Ok(()) => (200, json!({"node": name})),
            Err(problem) => (
                409,
                store::status_failure(409, "Conflict", &problem.to_string(), None),
            ),
        }
    }

    /// Lists the `resource` objects a list request selects (refreshed first).
    pub async fn list(
        &self,
        resource: &ResourceKind,
        namespace: Option<&str>,
        selection: &Selection,
        page: &Page,
    ) -> Result<(Vec<Value>, Option<String>, u64), Answer> {
        self.refresh().await?;
        let store = self.store();
        let (items, next) = store.list(resource.plural, namespace, selection, page);
        Ok((items, next, store.revision()))
    }

    /// One object (refreshed first).
    pub async fn get(
        &self,
        resource: &ResourceKind,
        namespace: &str,
        name: &str,
    ) -> Result<Value, Answer> {
        self.refresh().await?;
        self.store()
            .get(resource.plural, namespace, name)
            .ok_or_else(|| store::not_found(resource.group, resource.plural, name))
    }
}

fn migration_state(migration: &Migration) -> Value {
    let mut state = Map::new();
    let mut put = |key: &str, value: Value| {
        state.insert(key.to_string(), value);
    };
    put("migrationUid", json!(migration.uid));
    put("mode", json!("PreCopy"));
    if let Some(start) = migration.start_ms {
        put("startTimestamp", json!(timestamp(start)));
    }
    if let Some(end) = migration.end_ms {
        put("endTimestamp", json!(timestamp(end)));
    }
    if let Some(source) = &migration.source {
        put("sourceNode", json!(source));
    }
    if let Some(target) = &migration.target {
        put("targetNode", json!(target));
    }
    if let Some(pod) = &migration.target_pod {
        put("targetPod", json!(pod));
    }
    if migration.phase == "Succeeded" {
        put("completed", json!(true));
    }
    if migration.phase == "Failed" {
        put("completed", json!(true));
        put("failed", json!(true));
    }
    if migration.abort_requested {
        put("abortRequested", json!(true));
    }
    if let Some(status) = migration.abort_status {
        put("abortStatus", json!(status));
    }
    if let Some(reason) = &migration.failure_reason {
        put("failureReason", json!(reason));
    }
    Value::Object(state)
}

fn render_migration(migration: &Migration) -> Value {
    let mut metadata = json!({
        "name": migration.name,
        "namespace": migration.namespace,
        "uid": migration.uid,
        "creationTimestamp": timestamp(migration.created_ms),
        "labels": migration.labels,
    });
    if migration.annotations.is_object() {
        metadata["annotations"] = migration.annotations.clone();
    }
    let transitions: Vec<Value> = migration
        .transitions
        .iter()
        .map(|(phase, at)| json!({"phase": phase, "phaseTransitionTimestamp": timestamp(*at)}))
        .collect();
    let mut status = json!({"phase": migration.phase, "phaseTransitionTimestamps": transitions});
    if migration.target.is_some() || migration.finished() {
        status["migrationState"] = migration_state(migration);
    }
    json!({
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": metadata,
        "spec": migration.spec,
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc_3339_seconds_in_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(1_796_543_999_000), "2026-12-06T07:59:59Z");
    }

    #[test]
    fn generated_names_look_like_kubernetes_suffixes_and_are_stable() {
        let first = suffix(&["web-01", "0"]);
        assert_eq!(first.len(), 5);
        assert_eq!(first, suffix(&["web-01", "0"]));
        assert_ne!(first, suffix(&["web-01", "1"]));
        assert_eq!(uid(&["Node", "", "a"]).len(), 36);
    }

    #[test]
    fn every_served_resource_is_found_by_group_version_and_plural() {
        for resource in &RESOURCES {
            assert!(resource_kind(resource.group, resource.version, resource.plural).is_some());
        }
        assert!(resource_kind("kubevirt.io", "v1", "nodes").is_none());
    }
}
