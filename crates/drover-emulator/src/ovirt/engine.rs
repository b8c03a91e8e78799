//! The emulated oVirt engine: the simulator's world ([`SimDriver`]) seen through the oVirt REST
//! API v4 model (one data center, one cluster, hosts, VMs, affinity groups, jobs, tags, events,
//! the built-in scheduling policies), with the engine's asynchronous actions. An engine of
//! several clusters is several of these parts ([`Engine::new_part`]), each numbered in the
//! second group of its objects' ids, sharing one audit log.
//!
//! Every name comes from oVirt/ovirt-engine-api-model (`src/main/java/types/*.java`,
//! `services/*.java`) as the official SDK's generated readers read them
//! (`lib/ovirtsdk4/readers.py`, `types.py` of PyPI `ovirt-engine-sdk-python` 4.6.3):
//! - `HostStatus`: up, maintenance, preparing_for_maintenance, installing, install_failed,
//!   reboot, non_responsive (the ones this world produces), `Host.update_available`,
//!   `Host.version` (`Version.major/minor/revision/build/full_version`), `Host.memory` (bytes),
//!   `Host.cpu.topology` (`CpuTopology.sockets/cores/threads`);
//! - `VmStatus`: up, down, migrating, powering_up, powering_down; `Vm.host`,
//!   `Vm.placement_policy` (`VmPlacementPolicy.affinity`: migratable, user_migratable, pinned;
//!   `hosts`), `Vm.high_availability` (`enabled`, `priority`);
//! - `Cluster.version` (the compatibility level, `major`/`minor`), `Cluster.scheduling_policy`;
//!   `DiskAttachment.disk`, `Disk.storage_domains`, `StorageDomain.storage.type` (`nfs`,
//!   `localfs`), a VM's disks inlined by `follow=disk_attachments.disk`;
//!   `AffinityGroup` (`positive`, `enforcing`, `vms_rule`, `vms`);
//! - actions (`Action`, answered with `status` = `CreationStatus` complete and the `job`):
//!   `VmService.migrate` (`host`), `cancelmigration`, `shutdown`, `stop`, `start`;
//!   `HostService.deactivate`, `activate`, `upgradecheck`, `upgrade` (`reboot`), `fence`
//!   (`fence_type` restart); `Job.status` (`JobStatus`: started, finished, failed, aborted);
//!   `AssignedTagsService` under a host; `Statistic` `boot.time` under a host.
//! - A refused action is HTTP 409 with `<action><fault><reason>Operation Failed</reason>
//!   <detail>[…]</detail></fault><status>failed</status></action>`, as the engine answers a
//!   failed validation (the SDK then raises `Error` with `Fault reason is "Operation Failed".
//!   Fault detail is "[…]". HTTP response code is 409.`); the bracketed detail texts are the
//!   emulator's wording of the engine's validation messages.
//!
//! Cordon has no oVirt equivalent: the host tag [`CORDON_TAG`] stands for it (the simulator's
//! allocation flag mirrors the tag, so the engine's own evacuation avoids cordoned hosts).
//!
//! This module must not know HTTP: it answers decoded requests with document trees.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use drover_core::{Cluster, HostState, RestartPolicy, Version, VmState};
use drover_driver::{Discovered, Driver, DriverError};
use drover_sim::driver::{PlatformHostState, SimDriver, WorldSnapshot};

use super::events::{self, EventLog, Logged, Subjects};
use super::wire::Node;
pub use super::wire::{date_text, API};

/// The host tag that stands for Drover's cordon (oVirt has no "no new VMs here" flag).
pub const CORDON_TAG: &str = "drover-cordoned";
/// Tokens kept; the oldest is forgotten past this (its holder gets 401 and logs in again).
const MAX_TOKENS: usize = 256;
/// Jobs kept; finished ones are forgotten oldest first, and an action is refused when every kept
/// job still runs.
pub const MAX_JOBS: usize = 1_024;
/// Tags kept per host besides the cordon tag.
const MAX_TAGS_PER_HOST: usize = 64;
/// How long a VM's guest may take to shut down before the platform powers it off.
const CLEAN_SHUTDOWN_WAIT: Duration = Duration::from_secs(300);
/// The engine version the API reports (`ProductInfo.version`).
const ENGINE_VERSION: (u32, u32, u32) = (4, 5, 6);
/// `SchedulingPolicy` names of the engine's built-in policies (`none` first, the default). The
/// names are the engine's built-in ones as the `cluster_upgrade` role of
/// oVirt/ovirt-ansible-collection names `cluster_maintenance` (`tasks/cluster_policy.yml`); the
/// other four are from memory of the engine's administration guide, not from the model.
pub const SCHEDULING_POLICIES: [&str; 5] = [
    "none",
    "evenly_distributed",
    "power_saving",
    "vm_evenly_distributed",
    "cluster_maintenance",
];
/// The index of `cluster_maintenance` in [`SCHEDULING_POLICIES`].
const MAINTENANCE_POLICY: usize = 4;

/// Who may log in through the SSO.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// What one request gets back: an HTTP status and a document, if any.
pub type Answer = (u16, Option<Node>);

/// The kinds of object, for ids (the first group of each uuid).
#[derive(Clone, Copy, PartialEq)]
enum Class {
    DataCenter = 1,
    Cluster = 2,
    Host = 3,
    Vm = 4,
    Job = 5,
    Tag = 6,
    AffinityGroup = 7,
    SchedulingPolicy = 8,
    Statistic = 9,
    Disk = 10,
    StorageDomain = 11,
}

/// An id: the class in the first group, the engine part (the cluster, for an engine of several)
/// in the second, the index in the last. Part 0's ids are those of a one-cluster engine.
fn uuid_in(part: u16, class: Class, index: u64) -> String {
    format!("{:08x}-{part:04x}-4000-8000-{index:012x}", class as u32)
}

fn uuid(class: Class, index: u64) -> String {
    uuid_in(0, class, index)
}

/// The part an id names (its second group), whatever its class.
pub fn part_of(id: &str) -> Option<u16> {
    let mut groups = id.split('-');
    let (_, part) = (groups.next()?, groups.next()?);
    (id.len() == 36 && part.len() == 4)
        .then(|| u16::from_str_radix(part, 16).ok())
        .flatten()
}

fn index_in_part(part: u16, class: Class, id: &str) -> Option<usize> {
    let (prefix, rest) = id.split_once('-')?;
    let index = usize::from_str_radix(rest.rsplit('-').next()?, 16).ok()?;
    (u32::from_str_radix(prefix, 16).ok()? == class as u32
        && uuid_in(part, class, index as u64) == id)
        .then_some(index)
}

#[cfg(test)]
fn index_of(class: Class, id: &str) -> Option<usize> {
    index_in_part(0, class, id)
}

/// Classes every part shares: one data center, the engine's scheduling policies.
fn is_engine_wide(class: Class) -> bool {
    matches!(class, Class::DataCenter | Class::SchedulingPolicy)
}

/// What the engine is doing to a host besides what the simulator reports.
#[derive(Clone, Copy, Debug, PartialEq)]
enum HostActivity {
    PreparingForMaintenance,
    Installing,
    /// The last upgrade failed; `activate` or another upgrade clears it.
    InstallFailed,
}

/// What the engine is doing to a VM.
#[derive(Clone, Debug)]
enum VmActivity {
    Migrating {
        job: u64,
        source: String,
        follower: Option<tokio::task::AbortHandle>,
    },
    PoweringDown,
    PoweringUp,
}

struct Job {
    description: String,
    /// `JobStatus`: started, finished, failed, aborted.
    status: &'static str,
    start_ms: u64,
    end_ms: Option<u64>,
}

#[derive(Default)]
struct EngineState {
    tokens: VecDeque<(String, Instant)>,
    next_serial: u64,
    jobs: BTreeMap<u64, Job>,
    calls: BTreeMap<String, u64>,
    hosts: HashMap<usize, HostActivity>,
    vms: HashMap<usize, VmActivity>,
    /// Per host: tag serial → name (the cordon tag lives in the simulator instead).
    tags: HashMap<usize, BTreeMap<u64, String>>,
    update_checked: HashMap<usize, bool>,
    scheduling_policy: usize,
    /// `Cluster.custom_scheduling_policy_properties` (name, value).
    policy_properties: Vec<(String, String)>,
    compatibility: Option<(u64, u64)>,
    /// `Cluster.upgrade_in_progress`, `upgrade_percent_complete`, `upgrade_correlation_id`.
    upgrade: ClusterUpgrade,
    boot_times: HashMap<(String, String), u64>,
}

/// The cluster's upgrade mark (`ClusterService.upgrade`), as ovirt-engine keeps it in its
/// `cluster` table (`packaging/dbscripts/clusters_sp.sql`: `SetClusterUpgradeRunning` sets the
/// flag, the correlation id and 0 %, only when the flag is down; `ClearClusterUpgradeRunning`
/// drops the flag and the percentage and keeps the correlation id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterUpgrade {
    pub in_progress: bool,
    pub percent_complete: u32,
    pub correlation_id: String,
}

/// The engine behind the HTTP front-end. Cheap to share (`Arc`).
pub struct Engine {
    driver: SimDriver,
    cluster: Arc<Cluster>,
    credentials: Credentials,
    token_ttl: Duration,
    state: Mutex<EngineState>,
    /// Which cluster of the engine this is (the ids' second group); 0 for a one-cluster engine.
    part: u16,
    /// The audit log, shared by every cluster of one engine.
    events: Arc<Mutex<EventLog>>,
}

/// The platform as one request sees it.
struct View {
    discovered: Discovered,
    snapshot: WorldSnapshot,
}

fn bytes_of_mib(mib: u64) -> u64 {
    mib.saturating_mul(1024 * 1024)
}

/// `Version` as the model writes it: the dotted parts as major, minor, revision, build.
fn version_node(tag: &str, version: &str) -> Node {
    let parts: Vec<&str> = version.split('.').collect();
    let part = |index: usize| {
        parts
            .get(index)
            .and_then(|part| part.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Node::object(tag)
        .field(Node::text("build", part(3)))
        .field(Node::text("full_version", version))
        .field(Node::text("major", part(0)))
        .field(Node::text("minor", part(1)))
        .field(Node::text("revision", part(2)))
}

fn topology(cores: u32) -> Node {
    Node::object("cpu").field(
        Node::object("topology")
            .field(Node::text("cores", cores))
            .field(Node::text("sockets", 1))
            .field(Node::text("threads", 1)),
    )
}

/// A refused action: 409 with the fault inside the action, as the engine answers.
pub fn action_fault(detail: &str) -> Answer {
    (
        409,
        Some(
            Node::object("action")
                .field(
                    Node::object("fault")
                        .field(Node::text("reason", "Operation Failed"))
                        .field(Node::text("detail", format!("[{detail}]"))),
                )
                .field(Node::text("status", "failed")),
        ),
    )
}

/// A refused update or a request the engine cannot read: a bare fault.
pub fn fault(status: u16, reason: &str, detail: &str) -> Answer {
    (
        status,
        Some(
            Node::object("fault")
                .field(Node::text("reason", reason))
                .field(Node::text("detail", detail)),
        ),
    )
}

fn not_found() -> Answer {
    (404, None)
}

fn href(collection: &str, id: &str) -> String {
    format!("{API}/{collection}/{id}")
}

impl Engine {
    pub fn new(
        driver: SimDriver,
        cluster: Cluster,
        credentials: Credentials,
        token_ttl: Duration,
    ) -> Arc<Engine> {
        Engine::new_part(
            driver,
            cluster,
            credentials,
            token_ttl,
            0,
            Default::default(),
        )
    }

    /// One cluster of an engine of several: `part` numbers it (its objects' ids), `events` is the
    /// engine's one audit log. [`crate::ovirt::router_of`] serves the parts as one engine.
    pub fn new_part(
        driver: SimDriver,
        cluster: Cluster,
        credentials: Credentials,
        token_ttl: Duration,
        part: u16,
        events: Arc<Mutex<EventLog>>,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            driver,
            cluster: Arc::new(cluster),
            credentials,
            token_ttl,
            part,
            events,
            // An engine built here starts as a cluster an administrator already prepared for
            // maintenance, so a roll finds no policy to switch; `set_scheduling_policy` (and the
            // binary's `--scheduling-policy`, default `none`) starts it on another.
            state: Mutex::new(EngineState {
                scheduling_policy: MAINTENANCE_POLICY,
                ..EngineState::default()
            }),
        })
    }

    /// Puts the cluster on the built-in policy `name` with these custom properties; false for a
    /// name that is not one of [`SCHEDULING_POLICIES`].
    pub fn set_scheduling_policy(&self, name: &str, properties: &[(&str, &str)]) -> bool {
        let Some(index) = SCHEDULING_POLICIES.iter().position(|known| *known == name) else {
            return false;
        };
        let mut state = self.lock();
        state.scheduling_policy = index;
        state.policy_properties = properties
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        true
    }

    /// The cluster's scheduling policy name and custom properties now.
    pub fn scheduling_policy(&self) -> (String, Vec<(String, String)>) {
        let state = self.lock();
        (
            SCHEDULING_POLICIES[state.scheduling_policy].to_string(),
            state.policy_properties.clone(),
        )
    }

    /// Logs one of the engine's own events.
    fn log_event(&self, code: i64, severity: &str, description: String, subjects: Subjects) {
        self.event_log().log(
            Logged {
                code,
                severity,
                description,
                subjects,
            },
            drover_driver::wall_now_ms(),
        );
    }

    fn host_subject(&self, index: usize) -> Subjects {
        Subjects {
            host: Some(self.id(Class::Host, index as u64)),
            cluster: Some(self.id(Class::Cluster, 0)),
            vm: None,
        }
    }

    fn vm_subject(&self, vm: usize, host: Option<usize>) -> Subjects {
        Subjects {
            host: host.map(|host| self.id(Class::Host, host as u64)),
            cluster: Some(self.id(Class::Cluster, 0)),
            vm: Some(self.id(Class::Vm, vm as u64)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, EngineState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn event_log(&self) -> MutexGuard<'_, EventLog> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of this part's object (`DataCenter` and `SchedulingPolicy` ids are engine-wide).
    fn id(&self, class: Class, index: u64) -> String {
        match is_engine_wide(class) {
            true => uuid(class, index),
            false => uuid_in(self.part, class, index),
        }
    }

    fn index_in(&self, class: Class, id: &str) -> Option<usize> {
        match is_engine_wide(class) {
            true => index_in_part(0, class, id),
            false => index_in_part(self.part, class, id),
        }
    }

    /// The cluster's upgrade mark now.
    pub fn cluster_upgrade(&self) -> ClusterUpgrade {
        self.lock().upgrade.clone()
    }

    /// The simulator's world now (for the DST invariants, read beside the API).
    pub fn snapshot(&self) -> WorldSnapshot {
        self.driver.snapshot()
    }

    /// Requests answered, by `METHOD /path` with ids replaced by `{id}` (the emulator's own
    /// counter, for "API calls per migrated VM").
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    pub fn count_call(&self, method: &str, path: &str) {
        let shape: Vec<&str> = path
            .split('/')
            .map(|segment| {
                if segment.len() == 36 && segment.matches('-').count() == 4 {
                    "{id}"
                } else {
                    segment
                }
            })
            .collect();
        let key = format!("{method} {}", shape.join("/"));
        let mut state = self.lock();
        if state.calls.len() < 512 || state.calls.contains_key(&key) {
            *state.calls.entry(key).or_default() += 1;
        }
    }

    /// The SSO's password grant (`/ovirt-engine/sso/oauth/token`): the token answer, or the
    /// SSO's error (`error_code`, `error`: what `Connection._get_sso_error` reads).
    pub fn grant(&self, form: &HashMap<String, String>) -> (u16, serde_json::Value) {
        let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
        if field("grant_type") != "password" {
            return (
                400,
                serde_json::json!({"error_code": "unsupported_grant_type", "error": format!("The grant type {:?} is not supported.", field("grant_type"))}),
            );
        }
        if field("username") != self.credentials.username
            || field("password") != self.credentials.password
        {
            return (
                400,
                serde_json::json!({"error_code": "access_denied", "error": format!("Cannot authenticate user '{}': The username or password is incorrect..", field("username"))}),
            );
        }
        let mut state = self.lock();
        state.next_serial += 1;
        let token = format!(
            "emulated-{:016x}-{:08x}",
            drover_driver::wall_now_ms(),
            state.next_serial
        );
        if state.tokens.len() >= MAX_TOKENS {
            state.tokens.pop_front();
        }
        state
            .tokens
            .push_back((token.clone(), Instant::now() + self.token_ttl));
        let expires_ms = drover_driver::wall_now_ms() + self.token_ttl.as_millis() as u64;
        (
            200,
            serde_json::json!({"access_token": token, "scope": field("scope"), "exp": expires_ms.to_string(), "token_type": "bearer"}),
        )
    }

    /// `/ovirt-engine/services/sso-logout`: forgets the token.
    pub fn revoke(&self, token: &str) {
        self.lock().tokens.retain(|(known, _)| known != token);
    }

    /// Whether `token` is live (an expired one is forgotten).
    pub fn token_is_valid(&self, token: &str) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        state.tokens.retain(|(_, expires)| *expires > now);
        state.tokens.iter().any(|(known, _)| known == token)
    }

    async fn view(&self) -> Result<View, Answer> {
        let discovered = self
            .driver
            .discover()
            .await
            .map_err(|problem| fault(500, "Operation Failed", &problem.to_string()))?;
        Ok(View {
            discovered,
            snapshot: self.driver.snapshot(),
        })
    }

    /// Answers one request below `/ovirt-engine/api`.
    pub async fn handle(
        self: &Arc<Self>,
        method: &str,
        segments: &[&str],
        query: &HashMap<String, String>,
        body: Option<Node>,
    ) -> Answer {
        let body = body.unwrap_or_else(|| Node::object("action"));
        // `follow=disk_attachments.disk` inlines each VM's disks (the API's `follow` parameter).
        let follow_disks = query
            .get("follow")
            .is_some_and(|follow| follow.contains("disk_attachments"));
        let search_name = query
            .get("search")
            .and_then(|search| search.strip_prefix("name="))
            .map(str::to_string);
        match (method, segments) {
            ("GET", []) => (200, Some(self.api_root())),
            ("GET", ["hosts"]) => {
                let view = match self.view().await {
                    Ok(view) => view,
                    Err(answer) => return answer,
                };
                let hosts = (0..self.cluster.hosts.len())
                    .filter(|index| {
                        search_name
                            .as_ref()
                            .is_none_or(|name| *name == self.cluster.hosts[*index].name)
                    })
                    .map(|index| self.host_node(index, &view))
                    .collect();
                (200, Some(Node::list("hosts", "host", hosts)))
            }
            ("GET", ["hosts", id]) => match self.host_index(id) {
                Some(index) => match self.view().await {
                    Ok(view) => (200, Some(self.host_node(index, &view))),
                    Err(answer) => answer,
                },
                None => not_found(),
            },
            ("GET", ["hosts", id, "tags"]) => match self.host_index(id) {
                Some(index) => (200, Some(self.tags_node(index))),
                None => not_found(),
            },
            ("POST", ["hosts", id, "tags"]) => match self.host_index(id) {
                Some(index) => self.add_tag(index, &body).await,
                None => not_found(),
            },
            ("DELETE", ["hosts", id, "tags", tag]) => match self.host_index(id) {
                Some(index) => self.remove_tag(index, tag).await,
                None => not_found(),
            },
            ("GET", ["hosts", id, "statistics"]) => match self.host_index(id) {
                Some(index) => match self.view().await {
                    Ok(view) => (200, Some(self.statistics_node(index, &view))),
                    Err(answer) => answer,
                },
                None => not_found(),
            },
            ("POST", ["hosts", id, action]) => match self.host_index(id) {
                Some(index) => self.host_action(index, action, &body).await,
                None => not_found(),
            },
            ("GET", ["vms"]) => {
                let view = match self.view().await {
                    Ok(view) => view,
                    Err(answer) => return answer,
                };
                let vms = (0..self.cluster.vms.len())
                    .filter(|index| {
                        search_name
                            .as_ref()
                            .is_none_or(|name| *name == self.cluster.vms[*index].name)
                    })
                    .filter_map(|index| self.vm_node(index, &view, follow_disks))
                    .collect();
                (200, Some(Node::list("vms", "vm", vms)))
            }
            ("GET", ["vms", id]) => match self.vm_index(id) {
                Some(index) => match self.view().await {
                    Ok(view) => self
                        .vm_node(index, &view, follow_disks)
                        .map_or_else(not_found, |node| (200, Some(node))),
                    Err(answer) => answer,
                },
                None => not_found(),
            },
            ("GET", ["vms", id, "diskattachments"]) => match self.vm_index(id) {
                Some(index) => match self.view().await {
                    Ok(view) => self
                        .disk_attachments_node(index, &view)
                        .map_or_else(not_found, |node| (200, Some(node))),
                    Err(answer) => answer,
                },
                None => not_found(),
            },
            ("GET", ["storagedomains"]) => (200, Some(self.storage_domains_node())),
            ("POST", ["vms", id, action]) => match self.vm_index(id) {
                Some(index) => self.vm_action(index, action, &body).await,
                None => not_found(),
            },
            ("GET", ["clusters"]) => (
                200,
                Some(Node::list("clusters", "cluster", vec![self.cluster_node()])),
            ),
            ("GET", ["clusters", id]) if *id == self.id(Class::Cluster, 0) => {
                (200, Some(self.cluster_node()))
            }
            ("PUT", ["clusters", id]) if *id == self.id(Class::Cluster, 0) => {
                self.update_cluster(&body).await
            }
            ("POST", ["clusters", id, "upgrade"]) if *id == self.id(Class::Cluster, 0) => {
                self.cluster_upgrade_action(&body)
            }
            ("GET", ["clusters", id, "affinitygroups"]) if *id == self.id(Class::Cluster, 0) => {
                (200, Some(self.affinity_groups_node()))
            }
            ("GET", ["schedulingpolicies"]) => {
                let policies = (0..SCHEDULING_POLICIES.len())
                    .map(|index| self.scheduling_policy_node(index))
                    .collect();
                (
                    200,
                    Some(Node::list(
                        "scheduling_policies",
                        "scheduling_policy",
                        policies,
                    )),
                )
            }
            ("GET", ["schedulingpolicies", id]) => self
                .index_in(Class::SchedulingPolicy, id)
                .filter(|index| *index < SCHEDULING_POLICIES.len())
                .map_or_else(not_found, |index| {
                    (200, Some(self.scheduling_policy_node(index)))
                }),
            ("GET", ["events"]) => {
                let number = |name: &str| query.get(name).and_then(|text| text.parse::<u64>().ok());
                let max = number("max").map(|max| max as usize);
                (200, Some(self.event_log().list(number("from"), max)))
            }
            ("GET", ["events", id]) => id
                .parse::<u64>()
                .ok()
                .and_then(|index| self.event_log().node_of(index))
                .map_or_else(not_found, |node| (200, Some(node))),
            ("POST", ["events"]) => {
                let added = self.event_log().add(&body, drover_driver::wall_now_ms());
                match added {
                    Ok(node) => (201, Some(node)),
                    Err(detail) => fault(400, "Incomplete parameters", &detail),
                }
            }
            ("GET", ["jobs"]) => {
                let state = self.lock();
                let jobs = state
                    .jobs
                    .iter()
                    .map(|(serial, job)| job_node(self.id(Class::Job, *serial), job))
                    .collect();
                (200, Some(Node::list("jobs", "job", jobs)))
            }
            ("GET", ["jobs", id]) => {
                let state = self.lock();
                self.index_in(Class::Job, id)
                    .and_then(|serial| {
                        state
                            .jobs
                            .get(&(serial as u64))
                            .map(|job| job_node(self.id(Class::Job, serial as u64), job))
                    })
                    .map_or_else(not_found, |node| (200, Some(node)))
            }
            _ => not_found(),
        }
    }

    fn host_index(&self, id: &str) -> Option<usize> {
        self.index_in(Class::Host, id)
            .filter(|index| *index < self.cluster.hosts.len())
    }

    fn vm_index(&self, id: &str) -> Option<usize> {
        self.index_in(Class::Vm, id)
            .filter(|index| *index < self.cluster.vms.len())
    }

    fn host_by_reference(&self, reference: &Node) -> Option<usize> {
        if let Some(id) = reference.value("id") {
            return self.host_index(id);
        }
        let name = reference.value("name")?;
        self.cluster.hosts.iter().position(|host| host.name == name)
    }

    fn api_root(&self) -> Node {
        let (major, minor, revision) = ENGINE_VERSION;
        Node::object("api")
            .field(
                Node::object("product_info")
                    .field(Node::text("name", "oVirt Engine"))
                    .field(Node::text("vendor", "ovirt.org"))
                    .field(version_node(
                        "version",
                        &format!("{major}.{minor}.{revision}.0"),
                    )),
            )
            .field(Node::text("time", date_text(drover_driver::wall_now_ms())))
    }

    fn cluster_level(&self) -> (u64, u64) {
        if let Some(level) = self.lock().compatibility {
            return level;
        }
        // Before anyone raised it: the oldest host's major.minor.
        let oldest = self
            .cluster
            .hosts
            .iter()
            .map(|host| host.version.clone())
            .min()
            .map(|version| version.to_string())
            .unwrap_or_default();
        let mut parts = oldest.split('.').map(|part| part.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    fn cluster_node(&self) -> Node {
        let id = self.id(Class::Cluster, 0);
        let (major, minor) = self.cluster_level();
        let (policy, properties) = {
            let state = self.lock();
            (state.scheduling_policy, state.policy_properties.clone())
        };
        let upgrade = self.lock().upgrade.clone();
        let mut node = Node::object("cluster");
        if !properties.is_empty() {
            node = node.field(Node::list(
                "custom_scheduling_policy_properties",
                "property",
                properties
                    .iter()
                    .map(|(name, value)| {
                        Node::object("property")
                            .field(Node::text("name", name))
                            .field(Node::text("value", value))
                    })
                    .collect(),
            ));
        }
        node.attribute("href", href("clusters", &id))
            .attribute("id", &id)
            .field(Node::text("name", &self.cluster.name))
            .field(
                Node::object("version")
                    .field(Node::text("major", major))
                    .field(Node::text("minor", minor)),
            )
            .field(Node::link(
                "scheduling_policy",
                href(
                    "schedulingpolicies",
                    &self.id(Class::SchedulingPolicy, policy as u64),
                ),
                &self.id(Class::SchedulingPolicy, policy as u64),
            ))
            .field(Node::link(
                "data_center",
                href("datacenters", &self.id(Class::DataCenter, 0)),
                &self.id(Class::DataCenter, 0),
            ))
            .field(Node::text("upgrade_in_progress", upgrade.in_progress))
            .field(Node::text(
                "upgrade_percent_complete",
                upgrade.percent_complete,
            ))
            .field(Node::text(
                "upgrade_correlation_id",
                &upgrade.correlation_id,
            ))
    }

    fn scheduling_policy_node(&self, index: usize) -> Node {
        let id = self.id(Class::SchedulingPolicy, index as u64);
        Node::object("scheduling_policy")
            .attribute("href", href("schedulingpolicies", &id))
            .attribute("id", &id)
            .field(Node::text("name", SCHEDULING_POLICIES[index]))
            .field(Node::text("default_policy", index == 0))
            .field(Node::text("locked", true))
    }

    fn host_status(&self, index: usize, view: &View) -> &'static str {
        match self.lock().hosts.get(&index) {
            Some(HostActivity::PreparingForMaintenance) => return "preparing_for_maintenance",
            Some(HostActivity::Installing) => return "installing",
            Some(HostActivity::InstallFailed) => return "install_failed",
            None => {}
        }
        match view.snapshot.host(&self.cluster.hosts[index].name) {
            Some(host) => match host.state {
                PlatformHostState::Up => "up",
                PlatformHostState::Maintenance => "maintenance",
                PlatformHostState::Rebooting => "reboot",
                PlatformHostState::Down => "non_responsive",
            },
            None => "non_responsive",
        }
    }

    fn host_version(&self, index: usize, view: &View) -> Version {
        view.discovered.hosts.get(index).map_or_else(
            || self.cluster.hosts[index].version.clone(),
            |host| host.version.clone(),
        )
    }

    fn host_node(&self, index: usize, view: &View) -> Node {
        let configured = &self.cluster.hosts[index];
        let id = self.id(Class::Host, index as u64);
        let version = self.host_version(index, view);
        let update_available = {
            let checked = self.lock().update_checked.get(&index).copied();
            // The engine's daily check has run for every host before the emulator starts.
            checked.unwrap_or(true) && version < self.cluster.target_version
        };
        Node::object("host")
            .attribute("href", href("hosts", &id))
            .attribute("id", &id)
            .field(Node::text("name", &configured.name))
            .field(Node::text("address", format!("127.0.0.{}", index + 1)))
            .field(topology(configured.cpus))
            .field(Node::text("memory", bytes_of_mib(configured.memory_mib)))
            .field(Node::text("status", self.host_status(index, view)))
            .field(Node::text("type", "rhel"))
            .field(Node::text("update_available", update_available))
            .field(version_node("version", &version.to_string()))
            .field(Node::link(
                "cluster",
                href("clusters", &self.id(Class::Cluster, 0)),
                &self.id(Class::Cluster, 0),
            ))
    }

    fn statistics_node(&self, index: usize, view: &View) -> Node {
        let name = &self.cluster.hosts[index].name;
        let boot_id = view
            .snapshot
            .host(name)
            .map(|host| host.boot_id.clone())
            .unwrap_or_default();
        let boot_time = {
            let mut state = self.lock();
            if state.boot_times.len() > 4 * self.cluster.hosts.len() + 64 {
                state.boot_times.clear();
            }
            *state
                .boot_times
                .entry((name.clone(), boot_id))
                .or_insert_with(|| drover_driver::wall_now_ms() / 1000)
        };
        let host_id = self.id(Class::Host, index as u64);
        let id = self.id(Class::Statistic, index as u64);
        Node::list(
            "statistics",
            "statistic",
            vec![Node::object("statistic")
                .attribute(
                    "href",
                    format!("{}/statistics/{id}", href("hosts", &host_id)),
                )
                .attribute("id", &id)
                .field(Node::text("name", "boot.time"))
                .field(Node::text("description", "Boot time of the machine"))
                .field(Node::text("kind", "gauge"))
                .field(Node::text("type", "integer"))
                .field(Node::text("unit", "seconds"))
                .field(Node::list(
                    "values",
                    "value",
                    vec![Node::object("value").field(Node::text("datum", boot_time))],
                ))
                .field(Node::link("host", href("hosts", &host_id), &host_id))],
        )
    }

    fn vm_status(&self, index: usize, running: bool) -> &'static str {
        match self.lock().vms.get(&index) {
            Some(VmActivity::Migrating { .. }) => "migrating",
            Some(VmActivity::PoweringDown) => "powering_down",
            Some(VmActivity::PoweringUp) => "powering_up",
            None if running => "up",
            None => "down",
        }
    }

    /// The data storage domains: one shared (NFS) and one local (`localfs`) per host, where the
    /// inventory's `local_storage` VMs keep their disk (`StorageType` in the model).
    fn storage_domains_node(&self) -> Node {
        let domain = |serial: usize, name: String, storage_type: &str| {
            let id = self.id(Class::StorageDomain, serial as u64);
            Node::object("storage_domain")
                .attribute("href", href("storagedomains", &id))
                .attribute("id", &id)
                .field(Node::text("name", name))
                .field(Node::object("storage").field(Node::text("type", storage_type)))
                .field(Node::text("type", "data"))
        };
        let domains =
            std::iter::once(domain(
                0,
                match self.part {
                    0 => "shared".into(),
                    part => format!("shared-{part}"),
                },
                "nfs",
            ))
            .chain(
                self.cluster.hosts.iter().enumerate().map(|(index, host)| {
                    domain(index + 1, format!("local-{}", host.name), "localfs")
                }),
            )
            .collect();
        Node::list("storage_domains", "storage_domain", domains)
    }

    /// One disk per VM, on the shared domain, or on its host's local domain for a
    /// `local_storage` VM.
    fn disk_attachments_node(&self, index: usize, view: &View) -> Option<Node> {
        let configured = &self.cluster.vms[index];
        let vm = view
            .discovered
            .vms
            .iter()
            .find(|vm| vm.name == configured.name)?;
        let vm_id = self.id(Class::Vm, index as u64);
        let disk_id = self.id(Class::Disk, index as u64);
        let domain = match vm.local_storage {
            true => vm.host.index() + 1,
            false => 0,
        };
        let domain_id = self.id(Class::StorageDomain, domain as u64);
        let disk = Node::object("disk")
            .attribute("href", href("disks", &disk_id))
            .attribute("id", &disk_id)
            .field(Node::text("name", format!("{}_disk", vm.name)))
            .field(Node::text("provisioned_size", bytes_of_mib(10 * 1024)))
            .field(Node::list(
                "storage_domains",
                "storage_domain",
                vec![Node::link(
                    "storage_domain",
                    href("storagedomains", &domain_id),
                    &domain_id,
                )],
            ));
        let attachment = Node::object("disk_attachment")
            .attribute(
                "href",
                format!("{}/diskattachments/{disk_id}", href("vms", &vm_id)),
            )
            .attribute("id", &disk_id)
            .field(Node::text("active", true))
            .field(Node::text("bootable", true))
            .field(Node::text("interface", "virtio_scsi"))
            .field(disk)
            .field(Node::link("vm", href("vms", &vm_id), &vm_id));
        Some(Node::list(
            "disk_attachments",
            "disk_attachment",
            vec![attachment],
        ))
    }

    fn vm_node(&self, index: usize, view: &View, follow_disks: bool) -> Option<Node> {
        let configured = &self.cluster.vms[index];
        let vm = view
            .discovered
            .vms
            .iter()
            .find(|vm| vm.name == configured.name)?;
        let running = vm.state == VmState::Running;
        let id = self.id(Class::Vm, index as u64);
        let host_id = self.id(Class::Host, vm.host.index() as u64);
        // A VM that cannot move live is pinned to its host in the model (`VmAffinity.PINNED`);
        // a VM on local storage is not, but its disk is on a `localfs` domain.
        let pinned = !vm.migratable;
        let mut placement = Node::object("placement_policy").field(Node::text(
            "affinity",
            if pinned { "pinned" } else { "migratable" },
        ));
        if pinned {
            placement = placement.field(Node::list(
                "hosts",
                "host",
                vec![Node::link("host", href("hosts", &host_id), &host_id)],
            ));
        }
        let high_availability = vm.restart_policy == RestartPolicy::Always;
        let mut node = Node::object("vm")
            .attribute("href", href("vms", &id))
            .attribute("id", &id)
            .field(Node::text("name", &vm.name))
            .field(topology(vm.vcpus))
            .field(Node::text("memory", bytes_of_mib(vm.memory_mib)))
            .field(
                Node::object("high_availability")
                    .field(Node::text("enabled", high_availability))
                    .field(Node::text(
                        "priority",
                        if high_availability { 1 } else { 0 },
                    )),
            )
            .field(placement)
            .field(Node::text("status", self.vm_status(index, running)))
            .field(Node::text("type", "server"))
            .field(Node::link(
                "cluster",
                href("clusters", &self.id(Class::Cluster, 0)),
                &self.id(Class::Cluster, 0),
            ));
        if running {
            node = node.field(Node::link("host", href("hosts", &host_id), &host_id));
        }
        if follow_disks {
            node = node.field(self.disk_attachments_node(index, view)?);
        }
        Some(node)
    }

    /// The inventory's anti-affinity groups as negative, enforcing VM rules, then one group per
    /// VM with `allowed_hosts` as a positive, enforcing host rule naming those hosts.
    fn affinity_groups_node(&self) -> Node {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, vm) in self.cluster.vms.iter().enumerate() {
            if let Some(group) = &vm.anti_affinity {
                groups.entry(group.as_str()).or_default().push(index);
            }
        }
        let cluster_id = self.id(Class::Cluster, 0);
        let rule = |enabled: bool, positive: bool| {
            move |tag: &str| {
                Node::object(tag)
                    .field(Node::text("enabled", enabled))
                    .field(Node::text("enforcing", enabled))
                    .field(Node::text("positive", positive))
            }
        };
        let host_groups: Vec<Node> = self
            .cluster
            .vms
            .iter()
            .enumerate()
            .filter_map(|(index, vm)| Some((index, vm, vm.allowed_hosts.as_ref()?)))
            .enumerate()
            .map(|(serial, (index, vm, allowed))| {
                let id = self.id(Class::AffinityGroup, (groups.len() + serial) as u64);
                let vm_id = self.id(Class::Vm, index as u64);
                Node::object("affinity_group")
                    .attribute(
                        "href",
                        format!("{}/affinitygroups/{id}", href("clusters", &cluster_id)),
                    )
                    .attribute("id", &id)
                    .field(Node::text("name", format!("{}-hosts", vm.name)))
                    .field(Node::text("enforcing", true))
                    .field(Node::text("positive", true))
                    .field(rule(false, false)("vms_rule"))
                    .field(rule(true, true)("hosts_rule"))
                    .field(Node::list(
                        "vms",
                        "vm",
                        vec![Node::link("vm", href("vms", &vm_id), &vm_id)],
                    ))
                    .field(Node::list(
                        "hosts",
                        "host",
                        allowed
                            .iter()
                            .map(|host| {
                                let host_id = self.id(Class::Host, host.index() as u64);
                                Node::link("host", href("hosts", &host_id), &host_id)
                            })
                            .collect(),
                    ))
                    .field(Node::link(
                        "cluster",
                        href("clusters", &cluster_id),
                        &cluster_id,
                    ))
            })
            .collect();
        let nodes = groups
            .into_iter()
            .enumerate()
            .map(|(serial, (name, members))| {
                let id = self.id(Class::AffinityGroup, serial as u64);
                Node::object("affinity_group")
                    .attribute(
                        "href",
                        format!("{}/affinitygroups/{id}", href("clusters", &cluster_id)),
                    )
                    .attribute("id", &id)
                    .field(Node::text("name", name))
                    // Deprecated but still written by the engine beside `vms_rule`.
                    .field(Node::text("enforcing", true))
                    .field(Node::text("positive", false))
                    .field(
                        Node::object("vms_rule")
                            .field(Node::text("enabled", true))
                            .field(Node::text("enforcing", true))
                            .field(Node::text("positive", false)),
                    )
                    .field(
                        Node::object("hosts_rule")
                            .field(Node::text("enabled", false))
                            .field(Node::text("enforcing", false))
                            .field(Node::text("positive", false)),
                    )
                    .field(Node::list(
                        "vms",
                        "vm",
                        members
                            .into_iter()
                            .map(|vm| {
                                let vm_id = self.id(Class::Vm, vm as u64);
                                Node::link("vm", href("vms", &vm_id), &vm_id)
                            })
                            .collect(),
                    ))
                    .field(Node::link(
                        "cluster",
                        href("clusters", &cluster_id),
                        &cluster_id,
                    ))
            })
            .chain(host_groups)
            .collect();
        Node::list("affinity_groups", "affinity_group", nodes)
    }

    fn tag_node(&self, host: usize, serial: u64, name: &str) -> Node {
        let id = self.id(Class::Tag, serial);
        let host_id = self.id(Class::Host, host as u64);
        Node::object("tag")
            .attribute("href", format!("{}/tags/{id}", href("hosts", &host_id)))
            .attribute("id", &id)
            .field(Node::text("name", name))
            .field(Node::link("host", href("hosts", &host_id), &host_id))
    }

    /// The serial of the cordon tag (one id, whatever the host).
    const CORDON_TAG_SERIAL: u64 = 0;

    fn tags_node(&self, host: usize) -> Node {
        let cordoned = self
            .driver
            .snapshot()
            .host(&self.cluster.hosts[host].name)
            .is_some_and(|snapshot| snapshot.cordoned);
        let state = self.lock();
        let mut tags: Vec<Node> = state
            .tags
            .get(&host)
            .into_iter()
            .flatten()
            .map(|(serial, name)| self.tag_node(host, *serial, name))
            .collect();
        if cordoned {
            tags.insert(0, self.tag_node(host, Self::CORDON_TAG_SERIAL, CORDON_TAG));
        }
        Node::list("tags", "tag", tags)
    }

    async fn add_tag(&self, host: usize, body: &Node) -> Answer {
        let name = body.value("name").unwrap_or("").to_string();
        if name.is_empty() {
            return fault(400, "Incomplete parameters", "Tag [name] required for add");
        }
        if name == CORDON_TAG {
            if let Err(problem) = self
                .driver
                .set_allocation(&self.cluster.hosts[host].name, false)
                .await
            {
                return fault(409, "Operation Failed", &format!("[{problem}]"));
            }
            return (
                200,
                Some(self.tag_node(host, Self::CORDON_TAG_SERIAL, CORDON_TAG)),
            );
        }
        let mut state = self.lock();
        if let Some((serial, _)) = state
            .tags
            .get(&host)
            .and_then(|tags| tags.iter().find(|(_, known)| **known == name))
        {
            return (200, Some(self.tag_node(host, *serial, &name)));
        }
        if state
            .tags
            .get(&host)
            .is_some_and(|tags| tags.len() >= MAX_TAGS_PER_HOST)
        {
            return fault(409, "Operation Failed", "[Too many tags on this host.]");
        }
        state.next_serial += 1;
        let serial = state.next_serial;
        state
            .tags
            .entry(host)
            .or_default()
            .insert(serial, name.clone());
        (200, Some(self.tag_node(host, serial, &name)))
    }

    async fn remove_tag(&self, host: usize, tag_id: &str) -> Answer {
        let Some(serial) = self.index_in(Class::Tag, tag_id) else {
            return not_found();
        };
        if serial as u64 == Self::CORDON_TAG_SERIAL {
            return match self
                .driver
                .set_allocation(&self.cluster.hosts[host].name, true)
                .await
            {
                Ok(()) => (200, None),
                Err(problem) => fault(409, "Operation Failed", &format!("[{problem}]")),
            };
        }
        let removed = self
            .lock()
            .tags
            .get_mut(&host)
            .and_then(|tags| tags.remove(&(serial as u64)));
        match removed {
            Some(_) => (200, None),
            None => not_found(),
        }
    }

    /// Opens a job, or `None` when every kept job still runs.
    fn open_job(&self, description: String) -> Option<u64> {
        let mut state = self.lock();
        if state.jobs.len() >= MAX_JOBS {
            let finished = state
                .jobs
                .iter()
                .find(|(_, job)| job.status != "started")
                .map(|(serial, _)| *serial)?;
            state.jobs.remove(&finished);
        }
        state.next_serial += 1;
        let serial = state.next_serial;
        state.jobs.insert(
            serial,
            Job {
                description,
                status: "started",
                start_ms: drover_driver::wall_now_ms(),
                end_ms: None,
            },
        );
        Some(serial)
    }

    /// Ends a job as the engine reports it: `finished`, or `failed` when its action failed.
    fn finish_job(&self, serial: u64, succeeded: bool) {
        self.close_job(serial, if succeeded { "finished" } else { "failed" });
    }

    fn close_job(&self, serial: u64, status: &'static str) {
        let mut state = self.lock();
        if let Some(job) = state.jobs.get_mut(&serial) {
            if job.status == "started" {
                job.status = status;
                job.end_ms = Some(drover_driver::wall_now_ms());
            }
        }
    }

    /// The action's answer: complete, with the job that follows it.
    fn accepted(&self, serial: u64, extra: Vec<Node>) -> Answer {
        let id = self.id(Class::Job, serial);
        let mut action = Node::object("action");
        for field in extra {
            action = action.field(field);
        }
        let action = action
            .field(Node::link("job", href("jobs", &id), &id))
            .field(Node::text("status", "complete"));
        (200, Some(action))
    }

    fn too_many_jobs() -> Answer {
        action_fault("The engine is busy: too many jobs in progress. Try again later.")
    }

    async fn host_action(self: &Arc<Self>, index: usize, action: &str, body: &Node) -> Answer {
        let view = match self.view().await {
            Ok(view) => view,
            Err(answer) => return answer,
        };
        let name = self.cluster.hosts[index].name.clone();
        let status = self.host_status(index, &view);
        let running_vms: Vec<String> = view
            .discovered
            .vms
            .iter()
            .filter(|vm| vm.host.index() == index && vm.state == VmState::Running)
            .map(|vm| vm.name.clone())
            .collect();
        match action {
            "deactivate" => {
                if matches!(status, "maintenance" | "preparing_for_maintenance") {
                    return action_fault(&format!(
                        "Cannot switch Host to Maintenance mode. Host {name} is already in {status} status."
                    ));
                }
                if matches!(status, "installing" | "reboot") {
                    return action_fault(&format!(
                        "Cannot switch Host to Maintenance mode. Host {name} is in {status} status."
                    ));
                }
                let Some(job) = self.open_job(format!("Moving Host {name} to Maintenance")) else {
                    return Self::too_many_jobs();
                };
                self.lock()
                    .hosts
                    .insert(index, HostActivity::PreparingForMaintenance);
                let engine = Arc::clone(self);
                tokio::spawn(async move {
                    let outcome = engine.evacuate_and_enter_maintenance(index).await;
                    engine.lock().hosts.remove(&index);
                    let name = &engine.cluster.hosts[index].name;
                    let (severity, description) = match &outcome {
                        Ok(()) => (
                            "normal",
                            format!("Host {name} was switched to Maintenance Mode."),
                        ),
                        Err(problem) => (
                            "error",
                            format!("Failed to switch Host {name} to Maintenance mode. {problem}."),
                        ),
                    };
                    let code = match outcome {
                        Ok(()) => events::VDS_MAINTENANCE,
                        // VDS_MAINTENANCE_FAILED in AuditLogType.java.
                        Err(_) => 17,
                    };
                    engine.log_event(code, severity, description, engine.host_subject(index));
                    engine.finish_job(job, outcome.is_ok());
                });
                self.accepted(job, vec![])
            }
            "activate" => {
                if matches!(status, "installing" | "preparing_for_maintenance") {
                    return action_fault(&format!(
                        "Cannot activate Host. Host {name} is in {status} status."
                    ));
                }
                let Some(job) = self.open_job(format!("Activating Host {name}")) else {
                    return Self::too_many_jobs();
                };
                // Activation is quick in the engine: answered once done.
                let outcome = self.driver.set_maintenance(&name, false).await;
                if outcome.is_ok() {
                    self.lock().hosts.remove(&index);
                }
                self.close_job(
                    job,
                    if outcome.is_ok() {
                        "finished"
                    } else {
                        "failed"
                    },
                );
                if outcome.is_ok() {
                    self.log_event(
                        events::VDS_ACTIVATE,
                        "normal",
                        format!("Activation of host {name} initiated."),
                        self.host_subject(index),
                    );
                }
                match outcome {
                    Ok(()) => self.accepted(job, vec![]),
                    Err(problem) => action_fault(&format!("Cannot activate Host. {problem}")),
                }
            }
            "upgradecheck" => {
                let Some(job) =
                    self.open_job(format!("Checking for available updates on host {name}"))
                else {
                    return Self::too_many_jobs();
                };
                self.lock().update_checked.insert(index, true);
                self.close_job(job, "finished");
                self.accepted(job, vec![])
            }
            "upgrade" => {
                if !matches!(status, "up" | "maintenance" | "install_failed") {
                    return action_fault(&format!(
                        "Cannot upgrade Host. Host {name} is in {status} status."
                    ));
                }
                let version = self.host_version(index, &view);
                if version >= self.cluster.target_version {
                    return action_fault(&format!(
                        "Cannot upgrade Host. There are no available updates for host {name}."
                    ));
                }
                let Some(job) = self.open_job(format!("Upgrading Host {name}")) else {
                    return Self::too_many_jobs();
                };
                // The seed's flow: an Up host is moved to maintenance first and returns to Up.
                let origin_up = status == "up";
                let engine = Arc::clone(self);
                self.lock().hosts.insert(
                    index,
                    if origin_up {
                        HostActivity::PreparingForMaintenance
                    } else {
                        HostActivity::Installing
                    },
                );
                tokio::spawn(async move {
                    let outcome = engine.upgrade_host(index, origin_up).await;
                    let mut state = engine.lock();
                    match outcome {
                        Ok(()) => {
                            state.hosts.remove(&index);
                        }
                        Err(_) => {
                            state.hosts.insert(index, HostActivity::InstallFailed);
                        }
                    }
                    drop(state);
                    if let Err(problem) = &outcome {
                        let name = &engine.cluster.hosts[index].name;
                        engine.log_event(
                            events::HOST_UPGRADE_FAILED,
                            "error",
                            format!("Failed to upgrade Host {name}: {problem}."),
                            engine.host_subject(index),
                        );
                    }
                    engine.finish_job(job, outcome.is_ok());
                });
                self.accepted(job, vec![])
            }
            "fence" => {
                let fence_type = body.value("fence_type").unwrap_or("");
                if fence_type != "restart" {
                    return action_fault(&format!(
                        "Cannot fence Host. The emulator fences only with fence_type restart, not {fence_type:?}."
                    ));
                }
                if !running_vms.is_empty() {
                    return action_fault(&format!(
                        "Cannot restart Host. Host {name} still runs VMs: {}.",
                        running_vms.join(", ")
                    ));
                }
                let Some(job) = self.open_job(format!("Restarting Host {name}")) else {
                    return Self::too_many_jobs();
                };
                let boot_id = view
                    .snapshot
                    .host(&name)
                    .map(|host| host.boot_id.clone())
                    .unwrap_or_default();
                let engine = Arc::clone(self);
                tokio::spawn(async move {
                    let outcome = engine.driver.reboot(&name, &boot_id).await;
                    engine.finish_job(job, outcome.is_ok());
                });
                self.accepted(
                    job,
                    vec![Node::object("power_management").field(Node::text("status", "on"))],
                )
            }
            _ => not_found(),
        }
    }

    /// The engine's evacuation (what `deactivate` does to a host with VMs): each running VM to
    /// the up, uncordoned host with the most free memory, then maintenance.
    async fn evacuate_and_enter_maintenance(&self, index: usize) -> Result<(), DriverError> {
        let name = self.cluster.hosts[index].name.clone();
        loop {
            let discovered = self.driver.discover().await?;
            let Some(vm) = discovered
                .vms
                .iter()
                .find(|vm| vm.host.index() == index && vm.state == VmState::Running)
                .cloned()
            else {
                break;
            };
            let destination =
                best_destination(&discovered, index, vm.memory_mib, &[]).ok_or_else(|| {
                    DriverError::Refused(format!("no host can take VM {} from {name}", vm.name))
                })?;
            self.driver.migrate(&vm.name, &name, &destination).await?;
        }
        self.driver.set_maintenance(&name, true).await
    }

    async fn upgrade_host(&self, index: usize, origin_up: bool) -> Result<(), DriverError> {
        let name = self.cluster.hosts[index].name.clone();
        if origin_up {
            self.evacuate_and_enter_maintenance(index).await?;
            self.lock().hosts.insert(index, HostActivity::Installing);
        }
        self.driver
            .upgrade(&name, &self.cluster.target_version)
            .await?;
        self.lock().update_checked.insert(index, true);
        if origin_up {
            self.driver.set_maintenance(&name, false).await?;
        }
        Ok(())
    }

    async fn vm_action(self: &Arc<Self>, index: usize, action: &str, body: &Node) -> Answer {
        let view = match self.view().await {
            Ok(view) => view,
            Err(answer) => return answer,
        };
        let configured = &self.cluster.vms[index];
        let Some(vm) = view
            .discovered
            .vms
            .iter()
            .find(|vm| vm.name == configured.name)
            .cloned()
        else {
            return not_found();
        };
        let name = vm.name.clone();
        let running = vm.state == VmState::Running;
        let busy = self.lock().vms.get(&index).cloned();
        let host = view.discovered.hosts[vm.host.index()].name.clone();
        match action {
            "migrate" => {
                if !running {
                    return action_fault(&format!("Cannot migrate VM. VM {name} is not running."));
                }
                if busy.is_some() {
                    return action_fault(&format!(
                        "Cannot migrate VM. VM {name} is being migrated or changes its power state."
                    ));
                }
                if !vm.migratable {
                    return action_fault(&format!(
                        "Cannot migrate VM. VM {name} is pinned to Host {host} (placement_policy affinity pinned)."
                    ));
                }
                if vm.local_storage {
                    return action_fault(&format!(
                        "Cannot migrate VM. VM {name} has a disk on the local storage domain local-{host}."
                    ));
                }
                let destination = match body.get("host") {
                    Some(reference) => match self.host_by_reference(reference) {
                        Some(destination) => destination,
                        None => {
                            return fault(404, "Operation Failed", "Entity not found: host")
                        }
                    },
                    None => match best_destination(&view.discovered, vm.host.index(), vm.memory_mib, &[]) {
                        Some(destination) => self
                            .cluster
                            .hosts
                            .iter()
                            .position(|known| known.name == destination)
                            .unwrap_or(0),
                        None => {
                            return action_fault(
                                "Cannot migrate VM. There is no host that satisfies current scheduling constraints.",
                            )
                        }
                    },
                };
                let destination_name = self.cluster.hosts[destination].name.clone();
                if destination == vm.host.index() {
                    return action_fault(&format!(
                        "Cannot migrate VM. VM {name} already runs on Host {destination_name}."
                    ));
                }
                let target = &view.discovered.hosts[destination];
                let target_status = self.host_status(destination, &view);
                if target_status != "up" || target.cordoned {
                    return action_fault(&format!(
                        "Cannot migrate VM. There is no host that satisfies current scheduling constraints. The host {destination_name} did not satisfy internal filter Status because it is {}.",
                        if target.cordoned { "tagged drover-cordoned".to_string() } else { format!("in {target_status} status") }
                    ));
                }
                let allowed = self.cluster.vms[index].allowed_hosts.as_ref();
                if allowed
                    .is_some_and(|hosts| !hosts.iter().any(|host| host.index() == destination))
                {
                    // The filter's name and wording are the emulator's recollection of the
                    // engine's scheduler, not the model's.
                    return action_fault(&format!(
                        "Cannot migrate VM. There is no host that satisfies current scheduling constraints. The host {destination_name} did not satisfy internal filter VmToHostsAffinityGroups because it is not in the VM's enforcing positive host affinity group."
                    ));
                }
                let free_mib = free_memory_mib(&view.discovered, destination);
                if free_mib < vm.memory_mib {
                    return action_fault(&format!(
                        "Cannot migrate VM. There is no host that satisfies current scheduling constraints. The host {destination_name} did not satisfy internal filter Memory because its available memory is too low ({free_mib} MB) to run the VM."
                    ));
                }
                let Some(job) =
                    self.open_job(format!("Migrating VM {name} to Host {destination_name}"))
                else {
                    return Self::too_many_jobs();
                };
                let engine = Arc::clone(self);
                let (vm_name, source) = (name.clone(), host.clone());
                self.lock().vms.insert(
                    index,
                    VmActivity::Migrating {
                        job,
                        source: host.clone(),
                        follower: None,
                    },
                );
                self.log_event(
                    events::VM_MIGRATION_START,
                    "normal",
                    format!("Migration started (VM: {name}, Source: {host}, Destination: {destination_name})."),
                    self.vm_subject(index, Some(vm.host.index())),
                );
                let follower = tokio::spawn(async move {
                    let outcome = engine
                        .driver
                        .migrate(&vm_name, &source, &destination_name)
                        .await;
                    engine.lock().vms.remove(&index);
                    let (code, severity, description) = match &outcome {
                        Ok(()) => (
                            events::VM_MIGRATION_DONE,
                            "normal",
                            format!("Migration completed (VM: {vm_name}, Source: {source}, Destination: {destination_name})."),
                        ),
                        Err(problem) => (
                            events::VM_MIGRATION_FAILED,
                            "error",
                            format!("Migration failed (VM: {vm_name}, Source: {source}, Destination: {destination_name}): {problem}."),
                        ),
                    };
                    engine.log_event(
                        code,
                        severity,
                        description,
                        engine.vm_subject(index, Some(destination)),
                    );
                    engine.finish_job(job, outcome.is_ok());
                });
                if let Some(VmActivity::Migrating { follower: slot, .. }) =
                    self.lock().vms.get_mut(&index)
                {
                    *slot = Some(follower.abort_handle());
                }
                let destination_id = self.id(Class::Host, destination as u64);
                self.accepted(
                    job,
                    vec![Node::link(
                        "host",
                        href("hosts", &destination_id),
                        &destination_id,
                    )],
                )
            }
            "cancelmigration" => {
                let Some(VmActivity::Migrating {
                    job,
                    source,
                    follower,
                }) = busy
                else {
                    return action_fault("Cannot cancel migration for non migrating VM.");
                };
                if let Some(follower) = follower {
                    follower.abort();
                }
                // The simulator cancels a migration superseded by one to where the VM runs.
                let _ = self.driver.migrate(&name, &source, &source).await;
                self.lock().vms.remove(&index);
                self.close_job(job, "aborted");
                self.accepted(job, vec![])
            }
            "shutdown" | "stop" => {
                if !running {
                    return action_fault(&format!("Cannot {action} VM. VM {name} is not running."));
                }
                if busy.is_some() {
                    return action_fault(&format!(
                        "Cannot {action} VM. VM {name} is being migrated or changes its power state."
                    ));
                }
                let verb = if action == "shutdown" {
                    "Shutting down"
                } else {
                    "Stopping"
                };
                let Some(job) = self.open_job(format!("{verb} VM {name}")) else {
                    return Self::too_many_jobs();
                };
                let wait = if action == "shutdown" {
                    CLEAN_SHUTDOWN_WAIT
                } else {
                    Duration::ZERO
                };
                self.lock().vms.insert(index, VmActivity::PoweringDown);
                let engine = Arc::clone(self);
                tokio::spawn(async move {
                    let outcome = engine.driver.shutdown_vm(&name, &host, wait).await;
                    engine.lock().vms.remove(&index);
                    engine.finish_job(job, outcome.is_ok());
                });
                self.accepted(job, vec![])
            }
            "start" => {
                if running {
                    return action_fault(&format!("Cannot run VM. VM {name} is running."));
                }
                if busy.is_some() {
                    return action_fault(&format!(
                        "Cannot run VM. VM {name} changes its power state."
                    ));
                }
                let chosen = body
                    .get("vm")
                    .and_then(|vm| vm.get("placement_policy"))
                    .and_then(|policy| policy.get("hosts"))
                    .and_then(|hosts| hosts.items().first())
                    .map(|reference| self.host_by_reference(reference));
                let on = match chosen {
                    Some(Some(index)) => self.cluster.hosts[index].name.clone(),
                    Some(None) => return fault(404, "Operation Failed", "Entity not found: host"),
                    None => host,
                };
                let Some(job) = self.open_job(format!("Launching VM {name} on Host {on}")) else {
                    return Self::too_many_jobs();
                };
                self.lock().vms.insert(index, VmActivity::PoweringUp);
                let engine = Arc::clone(self);
                tokio::spawn(async move {
                    let outcome = engine.driver.start_vm(&name, &on).await;
                    engine.lock().vms.remove(&index);
                    engine.finish_job(job, outcome.is_ok());
                });
                self.accepted(job, vec![])
            }
            _ => not_found(),
        }
    }

    /// `ClusterService.upgrade`: `upgrade_action` start, update_progress (with
    /// `upgrade_percent_complete`) or finish, with an optional `correlation_id` (the REST layer,
    /// `BackendClusterResource.upgrade`, passes the action's; the `Correlation-Id` header the
    /// engine falls back to is not read here). Validations and effects are ovirt-engine's
    /// `StartClusterUpgradeCommand`, `UpdateClusterUpgradeCommand` (upgrade started, 0–100,
    /// the same correlation id) and `FinishClusterUpgradeCommand`, with their AppErrors texts.
    fn cluster_upgrade_action(&self, body: &Node) -> Answer {
        let correlation_id = body.value("correlation_id").unwrap_or("").to_string();
        let mut state = self.lock();
        match body.value("upgrade_action") {
            Some("start") => {
                if state.upgrade.in_progress {
                    // SetClusterUpgradeRunning finds no row with the flag down: the command
                    // fails in execution.
                    return action_fault(&format!(
                        "Failed to set upgrade running flag on cluster '{}'.",
                        self.id(Class::Cluster, 0)
                    ));
                }
                state.upgrade = ClusterUpgrade {
                    in_progress: true,
                    percent_complete: 0,
                    correlation_id,
                };
            }
            Some("update_progress") => {
                if !state.upgrade.in_progress {
                    return action_fault(
                        "Cannot update progress, cluster upgrade has not been started.",
                    );
                }
                let percent = body
                    .value("upgrade_percent_complete")
                    .and_then(|text| text.parse::<i64>().ok())
                    .filter(|percent| (0..=100).contains(percent));
                let Some(percent) = percent else {
                    return action_fault("Cannot update upgrade percent complete, the value needs to be in the range of 0 to 100.");
                };
                if state.upgrade.correlation_id != correlation_id {
                    return action_fault("Cannot update progress, given correlation id does not match the current update correlation id.");
                }
                state.upgrade.percent_complete = percent as u32;
            }
            Some("finish") => {
                state.upgrade.in_progress = false;
                state.upgrade.percent_complete = 0;
            }
            _ => {
                return fault(
                    400,
                    "Incomplete parameters",
                    "Action [upgradeAction] required for upgrade",
                )
            }
        }
        (
            200,
            Some(Node::object("action").field(Node::text("status", "complete"))),
        )
    }

    async fn update_cluster(&self, body: &Node) -> Answer {
        if let Some(policy) = body.get("scheduling_policy") {
            let chosen = policy
                .value("id")
                .and_then(|id| self.index_in(Class::SchedulingPolicy, id))
                .or_else(|| {
                    policy.value("name").and_then(|name| {
                        SCHEDULING_POLICIES.iter().position(|known| *known == name)
                    })
                })
                .filter(|index| *index < SCHEDULING_POLICIES.len());
            let properties = body
                .get("custom_scheduling_policy_properties")
                .map(property_pairs)
                .unwrap_or_default();
            match chosen {
                Some(index) => {
                    // A policy change takes the new policy's own properties unless the update
                    // names some (the emulator's reading of Cluster.java's note: properties come
                    // from the policy, overridden by the cluster's custom ones).
                    let mut state = self.lock();
                    state.scheduling_policy = index;
                    state.policy_properties = properties;
                }
                None => {
                    return fault(
                        404,
                        "Operation Failed",
                        "Entity not found: scheduling_policy",
                    )
                }
            }
        }
        if let Some(version) = body.get("version") {
            let part = |name: &str| {
                version
                    .value(name)
                    .and_then(|text| text.parse::<u64>().ok())
            };
            let (Some(major), Some(minor)) = (part("major"), part("minor")) else {
                return fault(
                    400,
                    "Incomplete parameters",
                    "Cluster [version.major, version.minor] required for update",
                );
            };
            let level: Version = match format!("{major}.{minor}").parse() {
                Ok(level) => level,
                Err(_) => return fault(400, "Operation Failed", "bad version"),
            };
            let discovered = match self.driver.discover().await {
                Ok(discovered) => discovered,
                Err(problem) => return fault(500, "Operation Failed", &problem.to_string()),
            };
            if discovered
                .hosts
                .iter()
                .any(|host| host.state != HostState::Down && host.version < level)
            {
                return fault(
                    409,
                    "Operation Failed",
                    "[Cannot change Cluster Compatibility Version to higher version when there are active Hosts with lower version.]",
                );
            }
            if let Err(problem) = self
                .driver
                .set_compatibility_level(&self.cluster.name, &level.to_string())
                .await
            {
                return fault(409, "Operation Failed", &format!("[{problem}]"));
            }
            self.lock().compatibility = Some((major, minor));
        }
        (200, Some(self.cluster_node()))
    }
}

/// `Property` pairs (`name`, `value`) of a `custom_scheduling_policy_properties` field, whether it
/// arrived as a collection or (one property in XML, or JSON's `{"property": […]}`) as an object:
/// every object below it with a `name` and a `value`.
fn property_pairs(node: &Node) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut visit = vec![node];
    while let Some(next) = visit.pop() {
        match next {
            Node::Object { fields, .. } => {
                if let (Some(name), Some(value)) = (next.value("name"), next.value("value")) {
                    pairs.push((name.to_string(), value.to_string()));
                    continue;
                }
                visit.extend(fields.iter().rev());
            }
            Node::List { items, .. } => visit.extend(items.iter().rev()),
            Node::Text { .. } => {}
        }
    }
    pairs
}

fn job_node(id: String, job: &Job) -> Node {
    let mut node = Node::object("job")
        .attribute("href", href("jobs", &id))
        .attribute("id", &id)
        .field(Node::text("auto_cleared", true))
        .field(Node::text("description", &job.description))
        .field(Node::text("external", false))
        .field(Node::text(
            "last_updated",
            date_text(job.end_ms.unwrap_or(job.start_ms)),
        ))
        .field(Node::text("start_time", date_text(job.start_ms)))
        .field(Node::text("status", job.status));
    if let Some(end_ms) = job.end_ms {
        node = node.field(Node::text("end_time", date_text(end_ms)));
    }
    node
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

/// The engine's own pick: an up, uncordoned host other than `source` with room, most free first.
fn best_destination(
    discovered: &Discovered,
    source: usize,
    memory_mib: u64,
    excluded: &[usize],
) -> Option<String> {
    (0..discovered.hosts.len())
        .filter(|index| *index != source && !excluded.contains(index))
        .filter(|index| {
            let host = &discovered.hosts[*index];
            host.state == HostState::Up
                && !host.cordoned
                && host.version >= discovered.hosts[source].version
        })
        .map(|index| (free_memory_mib(discovered, index), index))
        .filter(|(free, _)| *free >= memory_mib)
        .max()
        .map(|(_, index)| discovered.hosts[index].name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_what_they_were_made_for_and_nothing_else() {
        assert_eq!(index_of(Class::Host, &uuid(Class::Host, 3)), Some(3));
        assert_eq!(index_of(Class::Vm, &uuid(Class::Host, 3)), None);
        assert_eq!(index_of(Class::Host, "not-an-id"), None);
    }

    #[test]
    fn a_part_numbers_its_ids_and_shares_the_engine_wide_ones() {
        let id = uuid_in(2, Class::Host, 3);
        assert_eq!(part_of(&id), Some(2));
        assert_eq!(index_in_part(2, Class::Host, &id), Some(3));
        assert_eq!(index_in_part(0, Class::Host, &id), None);
        assert_eq!(part_of(&uuid(Class::Vm, 1)), Some(0));
        assert_eq!(part_of("42"), None);
        assert!(is_engine_wide(Class::SchedulingPolicy) && !is_engine_wide(Class::Cluster));
    }
}
