//! [`OvirtDriver`]: Drover's driver calls as oVirt REST API v4 requests, for one cluster of the
//! engine. Names from oVirt/ovirt-engine-api-model (`types/Host.java`, `HostStatus.java`,
//! `Vm.java`, `VmStatus.java`, `VmPlacementPolicy.java`, `VmAffinity.java`,
//! `HighAvailability.java`, `AffinityGroup.java`, `AffinityRule.java`, `Cluster.java`,
//! `services/HostService.java`, `VmService.java`, `ClusterService.java`,
//! `AssignedTagsService.java`):
//! - discovery reads `/clusters`, `/hosts`, `/storagedomains`, `/vms` (their disks inlined with
//!   `follow=disk_attachments.disk`; a disk on a `localfs` domain is local storage, as
//!   `DiskAttachment.java`, `Disk.java`, `StorageDomain.java`, `StorageType.java` name it) and the
//!   cluster's `affinitygroups`: a host's
//!   `status` up is up, maintenance, preparing_for_maintenance, installing and install_failed are
//!   maintenance, anything else (non_responsive, non_operational, down, reboot…) is down; its
//!   version is `version.full_version`; a VM whose `placement_policy.affinity` is `pinned` is not
//!   migratable (the core's `unmovable-vms` precheck names it: the `cluster_upgrade` role's
//!   "pinned VMs" safeguard); `high_availability.enabled` is restart policy always; affinity
//!   groups and `placement_policy.hosts` become anti-affinity and `allowed_hosts` (`affinity`).
//! - the cluster's scheduling policy (`Cluster.scheduling_policy`) other than
//!   `cluster_maintenance` is the blocking setting `scheduling-policy`: `resolve_setting` switches
//!   it to `cluster_maintenance` as the `cluster_upgrade` role does (after logging the policy and
//!   its `custom_scheduling_policy_properties` as an event, `EventsService.Add`, so a repeated
//!   resolve answers the same saved text), `restore_setting` puts both back.
//! - `drover check` reads each host's `update_available` (`updates_pending`); a host the engine
//!   cannot vouch for is an error for that host.
//! - a failed upgrade (install_failed) or migration carries the engine's warning and error
//!   events about its host or VM (`GET /events?from=INDEX`, the index read before the step).
//! - cordon is the host tag [`CORDON_TAG`]: oVirt has no "no new VMs here" flag, so Drover's
//!   plan (which never places a VM on a cordoned host) is what honours it; the engine does not.
//! - maintenance is `deactivate` of a host Drover has already emptied (a host that still runs VMs
//!   is refused, so the engine's own evacuation never overrides the plan), followed until
//!   `maintenance`; `activate` restores, followed until `up`.
//! - a migration is `POST /vms/{id}/migrate` with the planned `host`, followed through the VM's
//!   status until it is up on the target, and `cancelmigration` at the timeout.
//! - shutdown is `shutdown`, then `stop` after the graceful timeout; start is `start` with the
//!   host in `vm.placement_policy.hosts`.
//! - the upgrade is the engine's own (`upgradecheck`, then `upgrade` with `reboot`), watched
//!   through the host's status: back in maintenance or up at the target is done,
//!   `install_failed` is a failed step (the operator's `retry` runs `upgrade` again); or, with a
//!   `commands.upgrade`, that command. The boot id is the host statistic `boot.time`; a reboot is
//!   `fence` with `fence_type` restart. The compatibility level is the cluster's `version`
//!   (`PUT /clusters/{id}`).
//!
//! Not done: the engine's own pending update (the seed's first requirement). The REST API v4 does
//! not expose it: `types/Api.java` has `product_info`, `summary`, `time`, `engine_backup` and the
//! users, `types/ProductInfo.java` only `name`, `vendor`, `version`, `instance_id`, and no service
//! under `services/SystemService.java` checks the engine's packages (the engine machine is no
//! `Host` with an `update_available`, not even for a self-hosted engine, whose VM is a `Vm`).
//! It stays `engine-upgrade-check` on the engine machine.
//!
//! This module must not know Drover's engine, stores or the registry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drover_command::{
    run_step, ArgvTemplate, Placeholder, PlaceholderValues, RunLimits, StepContext,
};
use drover_core::{
    Cluster, Host, HostRole, HostState, PlatformSetting, RestartPolicy, SettingKind, Version, Vm,
    VmState,
};
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
use serde_json::{json, Value};

use crate::affinity::{self, VmPlacement};
use crate::client::OvirtClient;
use crate::OvirtError;

/// The host tag that stands for Drover's cordon.
pub const CORDON_TAG: &str = "drover-cordoned";
/// The scheduling policy the `cluster_upgrade` role switches a cluster to for its upgrade
/// (oVirt/ovirt-ansible-collection `roles/cluster_upgrade/tasks/cluster_policy.yml`:
/// `scheduling_policy: cluster_maintenance`).
pub const MAINTENANCE_POLICY: &str = "cluster_maintenance";
/// The `origin` of the events Drover adds to the engine's audit log (`EventsService.Add`).
pub const EVENT_ORIGIN: &str = "drover";
/// What precedes the saved policy in the description of the event Drover logs before it switches
/// a cluster's policy, so that a resolve repeated after a crash answers the same saved text.
const SAVED_POLICY_MARKER: &str = "restores afterwards: ";
/// What begins the correlation id of Drover's cluster upgrade mark (`ClusterService.upgrade`'s
/// `correlation_id`, kept by the engine as `Cluster.upgrade_correlation_id`, a VARCHAR(50) in
/// ovirt-engine's `cluster` table): a mark with it is Drover's own, to be cleared by Drover.
const UPGRADE_CORRELATION_PREFIX: &str = "drover-";
/// How many of the newest events a repeated resolve scans for Drover's own record.
const EVENTS_SCANNED: u32 = 10_000;

/// How the driver paces itself.
#[derive(Clone, Debug)]
pub struct OvirtTimings {
    pub migration_timeout: Duration,
    pub poll: Duration,
    /// The upgrade (the engine's or the command), then the host back at the target version.
    pub upgrade_timeout: Duration,
    /// Whether the engine's `upgrade` reboots the host.
    pub upgrade_reboot: bool,
}

pub struct OvirtDriver {
    client: OvirtClient,
    timings: OvirtTimings,
    /// The engine's cluster name.
    cluster: String,
    /// The operator's `upgrade` command, replacing the engine's `upgrade` action.
    upgrade_command: Option<ArgvTemplate>,
    roles: BTreeMap<String, HostRole>,
    /// Whether the roll marks the cluster as upgrading (the setting `cluster-upgrade-unmarked`).
    mark_cluster_upgrade: bool,
    /// The scheduling policy the roll switches the cluster to (the setting `scheduling-policy`).
    maintenance_policy: String,
    /// Where each VM last ran: a down VM has no `host` in the model, yet Drover places it.
    last_hosts: Mutex<HashMap<String, String>>,
}

fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The engine's JSON writes numbers and booleans as strings.
fn number(value: &Value, name: &str) -> u64 {
    match value.get(name) {
        Some(Value::String(text)) => text.parse().unwrap_or(0),
        Some(Value::Number(number)) => number.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn flag(value: &Value, name: &str) -> bool {
    match value.get(name) {
        Some(Value::String(text)) => text == "true",
        Some(Value::Bool(flag)) => *flag,
        _ => false,
    }
}

/// The items of a collection (`{"host": […]}`), empty when the engine left it out.
fn items<'a>(collection: &'a Value, item: &str) -> &'a [Value] {
    collection
        .get(item)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

const MIB: u64 = 1024 * 1024;

fn driver_error(error: OvirtError, subject: &str) -> DriverError {
    match &error {
        OvirtError::Transport { detail, .. } => DriverError::Unreachable {
            host: subject.to_string(),
            detail: detail.clone(),
        },
        OvirtError::Api { status: 404, .. } => DriverError::NotFound(error.to_string()),
        OvirtError::Api { status: 409, .. } => DriverError::Refused(error.to_string()),
        _ => DriverError::Failed(error.to_string()),
    }
}

fn host_state(status: &str) -> HostState {
    match status {
        "up" => HostState::Up,
        "maintenance" | "preparing_for_maintenance" | "installing" | "install_failed" => {
            HostState::Maintenance
        }
        _ => HostState::Down,
    }
}

fn host_version(host: &Value) -> Result<Version, DriverError> {
    let full = host
        .get("version")
        .map(|version| text(version, "full_version"))
        .unwrap_or("");
    full.parse().map_err(|_| {
        DriverError::Failed(format!(
            "host {}: version.full_version {full:?} is not a version",
            text(host, "name")
        ))
    })
}

fn vm_running(vm: &Value) -> bool {
    !matches!(
        text(vm, "status"),
        "down" | "suspended" | "image_locked" | ""
    )
}

fn vm_host_id(vm: &Value) -> Option<&str> {
    vm.get("host")
        .map(|host| text(host, "id"))
        .filter(|id| !id.is_empty())
}

impl OvirtDriver {
    pub fn new(
        client: OvirtClient,
        timings: OvirtTimings,
        inventory: &Cluster,
        engine_cluster: Option<String>,
        upgrade_command: Option<ArgvTemplate>,
    ) -> OvirtDriver {
        OvirtDriver {
            client,
            timings,
            cluster: engine_cluster.unwrap_or_else(|| inventory.name.clone()),
            upgrade_command,
            roles: inventory
                .hosts
                .iter()
                .map(|host| (host.name.clone(), host.role))
                .collect(),
            last_hosts: Mutex::new(HashMap::new()),
            mark_cluster_upgrade: false,
            maintenance_policy: MAINTENANCE_POLICY.to_string(),
        }
    }

    /// Switches the cluster to `policy` for the roll instead of [`MAINTENANCE_POLICY`] (the
    /// section's `maintenance_scheduling_policy`).
    pub fn switching_to_policy(mut self, policy: &str) -> OvirtDriver {
        self.maintenance_policy = policy.to_string();
        self
    }

    /// Marks the cluster as upgrading for the roll (off as built by [`OvirtDriver::new`]; the
    /// registry turns it on from the section's `mark_cluster_upgrade`, on by default).
    pub fn marking_cluster_upgrade(mut self, mark: bool) -> OvirtDriver {
        self.mark_cluster_upgrade = mark;
        self
    }

    /// Requests made so far.
    pub fn requests_made(&self) -> u64 {
        self.client.requests_made()
    }

    async fn get(&self, path: &str, subject: &str) -> Result<Value, DriverError> {
        self.client
            .get(path)
            .await
            .map_err(|error| driver_error(error, subject))
    }

    async fn post(&self, path: &str, body: Value, subject: &str) -> Result<Value, DriverError> {
        self.client
            .post(path, body)
            .await
            .map_err(|error| driver_error(error, subject))
    }

    async fn cluster_record(&self) -> Result<Value, DriverError> {
        let clusters = self.get("/clusters", "engine").await?;
        let all = items(&clusters, "cluster");
        all.iter()
            .find(|cluster| text(cluster, "name") == self.cluster)
            .or(if all.len() == 1 { all.first() } else { None })
            .cloned()
            .ok_or_else(|| {
                DriverError::Failed(format!("the engine has no cluster {}", self.cluster))
            })
    }

    /// The hosts of the cluster.
    async fn hosts(&self, cluster_id: &str) -> Result<Vec<Value>, DriverError> {
        let hosts = self.get("/hosts", "engine").await?;
        Ok(items(&hosts, "host")
            .iter()
            .filter(|host| host.get("cluster").map(|c| text(c, "id")) == Some(cluster_id))
            .cloned()
            .collect())
    }

    async fn host_by_name(&self, name: &str) -> Result<Value, DriverError> {
        let found = self
            .get(&format!("/hosts?search=name%3D{}", encode(name)), name)
            .await?;
        items(&found, "host")
            .iter()
            .find(|host| text(host, "name") == name)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(format!("host {name}")))
    }

    async fn vm_by_name(&self, name: &str) -> Result<Value, DriverError> {
        let found = self
            .get(&format!("/vms?search=name%3D{}", encode(name)), name)
            .await?;
        items(&found, "vm")
            .iter()
            .find(|vm| text(vm, "name") == name)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(format!("VM {name}")))
    }

    async fn cordoned(&self, host_id: &str, subject: &str) -> Result<Option<String>, DriverError> {
        let tags = self.get(&format!("/hosts/{host_id}/tags"), subject).await?;
        Ok(items(&tags, "tag")
            .iter()
            .find(|tag| text(tag, "name") == CORDON_TAG)
            .map(|tag| text(tag, "id").to_string()))
    }

    async fn boot_id(&self, host_id: &str, subject: &str) -> Result<String, DriverError> {
        let statistics = self
            .get(&format!("/hosts/{host_id}/statistics"), subject)
            .await?;
        Ok(items(&statistics, "statistic")
            .iter()
            .find(|statistic| text(statistic, "name") == "boot.time")
            .and_then(|statistic| {
                statistic
                    .get("values")
                    .map(|values| items(values, "value"))
                    .and_then(|values| values.first())
                    .map(|value| text(value, "datum").to_string())
            })
            .unwrap_or_default())
    }

    /// Polls the host until `done` says so, up to `timeout`.
    async fn wait_for_host(
        &self,
        host_id: &str,
        name: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&Value) -> Result<bool, DriverError>,
    ) -> Result<Value, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            let host = self.get(&format!("/hosts/{host_id}"), name).await?;
            if done(&host)? {
                return Ok(host);
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Failed(format!(
                    "host {name} is {} after {} s, not {what}",
                    text(&host, "status"),
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(self.timings.poll).await;
        }
    }

    /// Polls the VM until it is up (or down, `want_up` false) on `host_id` (any host when `None`).
    async fn wait_for_vm(
        &self,
        vm_id: &str,
        name: &str,
        want_up: bool,
        host_id: Option<&str>,
        timeout: Duration,
    ) -> Result<bool, DriverError> {
        let deadline = Instant::now() + timeout;
        loop {
            let vm = self.get(&format!("/vms/{vm_id}"), name).await?;
            let status = text(&vm, "status");
            let arrived = match want_up {
                true => status == "up" && host_id.is_none_or(|id| vm_host_id(&vm) == Some(id)),
                false => status == "down",
            };
            if arrived {
                return Ok(true);
            }
            // Up elsewhere: the migration ended without moving the VM.
            if want_up && status == "up" && host_id.is_some() {
                return Err(DriverError::Failed(format!(
                    "VM {name} is up on another host than the one asked for: the migration failed"
                )));
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(self.timings.poll).await;
        }
    }

    fn remember_host(&self, vm: &str, host: &str) {
        let mut last = self.last_hosts.lock().unwrap_or_else(|e| e.into_inner());
        if last.len() > 100_000 {
            last.clear();
        }
        last.insert(vm.to_string(), host.to_string());
    }

    /// Each inventory host's pending update as the engine reports it, for `drover check`: the
    /// host's `update_available` (`types/Host.java`: "Indicates if there is an update available
    /// for the host", filled by the engine's periodic check, `HostPackagesUpdateTimeInHours`, or
    /// the `upgradecheck` action of `services/HostService.java`). A host whose value cannot be
    /// trusted is an error for that host, never "no updates": one the engine does not have in
    /// the cluster, one without the field, and one whose `status` is neither up, maintenance nor
    /// install_failed (the engine's check runs on the host's VDSM, so for a host it cannot reach
    /// the value is its last answer, of unknown age; this status rule is Drover's, not the
    /// model's).
    pub async fn updates_pending(
        &self,
        inventory_hosts: &[String],
    ) -> Result<BTreeMap<String, Result<bool, String>>, DriverError> {
        let cluster = self.cluster_record().await?;
        let records = self.hosts(text(&cluster, "id")).await?;
        Ok(inventory_hosts
            .iter()
            .map(|name| {
                let answer = match records.iter().find(|record| text(record, "name") == name) {
                    None => Err(format!(
                        "the engine has no host {name} in cluster {}",
                        self.cluster
                    )),
                    Some(record) => match (text(record, "status"), record.get("update_available")) {
                        ("up" | "maintenance" | "install_failed", Some(_)) => {
                            Ok(flag(record, "update_available"))
                        }
                        (_, None) => Err(format!(
                            "the engine reports no update_available for host {name}"
                        )),
                        (status, Some(_)) => Err(format!(
                            "the engine reports host {name} {status}: it cannot check the host's updates"
                        )),
                    },
                };
                (name.clone(), answer)
            })
            .collect())
    }

    /// The engine's scheduling policies, id → name (`services/SchedulingPoliciesService.java`).
    async fn scheduling_policies(&self) -> Result<HashMap<String, String>, DriverError> {
        let policies = self.get("/schedulingpolicies", "engine").await?;
        Ok(items(&policies, "scheduling_policy")
            .iter()
            .map(|policy| {
                (
                    text(policy, "id").to_string(),
                    text(policy, "name").to_string(),
                )
            })
            .collect())
    }

    /// The blocking settings of the cluster: its scheduling policy when it is not the maintenance
    /// policy (`Cluster.scheduling_policy`, a link to a `SchedulingPolicy`). An engine without a
    /// `cluster_maintenance` policy (before 4.1.4, as the role's version check says) has nothing
    /// to switch to, so nothing is reported.
    async fn observed_settings(
        &self,
        cluster: &Value,
    ) -> Result<Vec<PlatformSetting>, DriverError> {
        let policies = self.scheduling_policies().await?;
        let maintenance_policy = self.maintenance_policy.as_str();
        if !policies.values().any(|name| name == maintenance_policy) {
            tracing::warn!(
                cluster = %self.cluster,
                "ovirt: the engine has no {maintenance_policy} scheduling policy; the cluster keeps its own during the roll"
            );
            return Ok(self.upgrade_mark_setting(cluster).into_iter().collect());
        }
        let current = cluster
            .get("scheduling_policy")
            .map(|policy| text(policy, "id"))
            .unwrap_or("");
        let mut settings = match policies.get(current).map(String::as_str) {
            Some(name) if name == maintenance_policy => Vec::new(),
            _ => vec![PlatformSetting::pool(SettingKind::SchedulingPolicy)],
        };
        settings.extend(self.upgrade_mark_setting(cluster));
        Ok(settings)
    }

    /// The upgrade mark as a blocking setting: a cluster whose record has `upgrade_in_progress`
    /// (`types/Cluster.java`, since 4.5.0) down, when this driver marks clusters. An engine
    /// before 4.5 reports no such field and gets no mark.
    fn upgrade_mark_setting(&self, cluster: &Value) -> Option<PlatformSetting> {
        (self.mark_cluster_upgrade
            && cluster.get("upgrade_in_progress").is_some()
            && !flag(cluster, "upgrade_in_progress"))
        .then(|| PlatformSetting::pool(SettingKind::ClusterUpgradeUnmarked))
    }

    /// Marks the cluster as upgrading (`POST /clusters/{id}/upgrade` with `upgrade_action`
    /// start and Drover's `correlation_id`, as the `cluster_upgrade` role's "Set cluster upgrade
    /// status to running") and answers the correlation id, which `restore_setting` finishes. A
    /// cluster already marked with Drover's prefix is this run's mark from before a crash (the
    /// journal did not record the answer): the same id is answered. One marked by someone else
    /// is left alone (`{}`: nothing to finish) — the engine would refuse a second start anyway
    /// (`SetClusterUpgradeRunning` only sets a flag that is down).
    async fn mark_cluster_upgrading(&self) -> Result<String, DriverError> {
        let cluster = self.cluster_record().await?;
        let cluster_id = text(&cluster, "id").to_string();
        let current = text(&cluster, "upgrade_correlation_id");
        if flag(&cluster, "upgrade_in_progress") {
            return Ok(match current.starts_with(UPGRADE_CORRELATION_PREFIX) {
                true => json!({"correlation_id": current}).to_string(),
                false => "{}".to_string(),
            });
        }
        let correlation_id = format!(
            "{UPGRADE_CORRELATION_PREFIX}{}",
            drover_driver::wall_now_ms()
        );
        self.post(
            &format!("/clusters/{cluster_id}/upgrade"),
            json!({"upgrade_action": "start", "correlation_id": correlation_id}),
            "engine",
        )
        .await?;
        Ok(json!({"correlation_id": correlation_id}).to_string())
    }

    /// Clears the mark `saved` names (`upgrade_action` finish, as the role's `always:` block
    /// does), if the cluster still carries it; a mark that is gone or someone else's is left.
    async fn finish_cluster_upgrade(&self, saved: &str) -> Result<(), DriverError> {
        let saved: Value = serde_json::from_str(saved).map_err(|error| {
            DriverError::Failed(format!("the saved upgrade mark does not read: {error}"))
        })?;
        let Some(correlation_id) = saved
            .get("correlation_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        else {
            return Ok(());
        };
        let cluster = self.cluster_record().await?;
        if !flag(&cluster, "upgrade_in_progress")
            || text(&cluster, "upgrade_correlation_id") != correlation_id
        {
            return Ok(());
        }
        self.post(
            &format!("/clusters/{}/upgrade", text(&cluster, "id")),
            json!({"upgrade_action": "finish", "correlation_id": correlation_id}),
            "engine",
        )
        .await
        .map(|_| ())
    }

    /// After a host's upgrade: the share of the cluster's hosts at `target`, as the mark's
    /// `upgrade_percent_complete` (`upgrade_action` update_progress, engine 4.5 and later, with
    /// the mark's correlation id, which the engine requires: `UpdateClusterUpgradeCommand`).
    /// Only on Drover's own mark; a progress the engine refuses is logged, never a failed step.
    async fn report_upgrade_progress(&self, target: &Version) {
        let progress = async {
            let cluster = self.cluster_record().await?;
            let correlation_id = text(&cluster, "upgrade_correlation_id");
            if !flag(&cluster, "upgrade_in_progress")
                || !correlation_id.starts_with(UPGRADE_CORRELATION_PREFIX)
            {
                return Ok(());
            }
            let hosts = self.hosts(text(&cluster, "id")).await?;
            let upgraded = hosts
                .iter()
                .filter(|host| host_version(host).is_ok_and(|version| version >= *target))
                .count();
            let percent = (upgraded * 100).checked_div(hosts.len()).unwrap_or(0);
            self.post(
                &format!("/clusters/{}/upgrade", text(&cluster, "id")),
                json!({
                    "upgrade_action": "update_progress",
                    "upgrade_percent_complete": percent.to_string(),
                    "correlation_id": correlation_id,
                }),
                "engine",
            )
            .await
            .map(|_| ())
        };
        if let Err(error) = progress.await {
            tracing::warn!(cluster = %self.cluster, %error, "ovirt: the cluster's upgrade progress was not updated");
        }
    }

    /// Switches the cluster to `cluster_maintenance`, as the `cluster_upgrade` role does, and
    /// answers what puts it back: the policy's id and name and the cluster's
    /// `custom_scheduling_policy_properties` (the role restores both). Before the switch the
    /// saved text is logged as an event of the cluster (`EventsService.Add`, origin
    /// [`EVENT_ORIGIN`]), so a resolve repeated after a crash between the switch and the
    /// journal's record finds it and answers the same text; a cluster already on the maintenance
    /// policy without such an event was switched by someone else, and Drover restores nothing
    /// (an empty object).
    async fn switch_to_maintenance_policy(&self) -> Result<String, DriverError> {
        let cluster = self.cluster_record().await?;
        let cluster_id = text(&cluster, "id").to_string();
        let policies = self.scheduling_policies().await?;
        let Some(maintenance_id) = policies
            .iter()
            .find(|(_, name)| **name == self.maintenance_policy)
            .map(|(id, _)| id.clone())
        else {
            return Err(DriverError::Refused(format!(
                "the engine has no {} scheduling policy",
                self.maintenance_policy
            )));
        };
        let current = cluster
            .get("scheduling_policy")
            .map(|policy| text(policy, "id").to_string())
            .unwrap_or_default();
        if current == maintenance_id {
            return self.saved_policy_from_events(&cluster_id).await;
        }
        let properties: Vec<Value> = cluster
            .get("custom_scheduling_policy_properties")
            .map(|properties| items(properties, "property"))
            .unwrap_or(&[])
            .iter()
            .map(|property| json!({"name": text(property, "name"), "value": text(property, "value")}))
            .collect();
        let saved = json!({
            "scheduling_policy": {
                "id": current,
                "name": policies.get(&current).cloned().unwrap_or_default(),
            },
            "custom_scheduling_policy_properties": properties,
        })
        .to_string();
        let custom_id = (drover_driver::wall_now_ms() % i32::MAX as u64).to_string();
        self.post(
            "/events",
            json!({
                "description": format!(
                    "Drover switches cluster {} to the {} scheduling policy for its rolling upgrade and {SAVED_POLICY_MARKER}{saved}",
                    self.cluster, self.maintenance_policy
                ),
                "severity": "normal",
                "origin": EVENT_ORIGIN,
                "custom_id": custom_id,
                "cluster": {"id": cluster_id},
            }),
            "engine",
        )
        .await?;
        self.client
            .put(
                &format!("/clusters/{cluster_id}"),
                json!({"scheduling_policy": {"id": maintenance_id}}),
            )
            .await
            .map_err(|error| driver_error(error, &self.cluster))?;
        Ok(saved)
    }

    /// The newest saved policy Drover logged for the cluster, else `{}` (nothing of Drover's).
    async fn saved_policy_from_events(&self, cluster_id: &str) -> Result<String, DriverError> {
        let events = self
            .get(&format!("/events?max={EVENTS_SCANNED}"), "engine")
            .await?;
        // Newest first (EventsService.List: sorted by id, highest first).
        let saved = items(&events, "event").iter().find_map(|event| {
            let ours = text(event, "origin") == EVENT_ORIGIN
                && event.get("cluster").map(|cluster| text(cluster, "id")) == Some(cluster_id);
            ours.then(|| text(event, "description"))
                .and_then(|description| description.split_once(SAVED_POLICY_MARKER))
                .map(|(_, saved)| saved.to_string())
        });
        Ok(saved.unwrap_or_else(|| "{}".to_string()))
    }

    /// Puts back the policy `saved` names, with its properties, if the cluster is still on the
    /// maintenance policy (one moved elsewhere meanwhile is the operator's choice and is left).
    async fn restore_policy(&self, saved: &str) -> Result<(), DriverError> {
        let saved: Value = serde_json::from_str(saved).map_err(|error| {
            DriverError::Failed(format!(
                "the saved scheduling policy does not read: {error}"
            ))
        })?;
        let Some(policy_id) = saved
            .get("scheduling_policy")
            .map(|policy| text(policy, "id"))
            .filter(|id| !id.is_empty())
        else {
            return Ok(());
        };
        let cluster = self.cluster_record().await?;
        let current = cluster
            .get("scheduling_policy")
            .map(|policy| text(policy, "id"))
            .unwrap_or("");
        if current == policy_id {
            return Ok(());
        }
        let policies = self.scheduling_policies().await?;
        if policies.get(current) != Some(&self.maintenance_policy) {
            tracing::warn!(
                cluster = %self.cluster,
                policy = policies.get(current).map(String::as_str).unwrap_or(current),
                "ovirt: the cluster left the maintenance policy during the run; Drover leaves it there"
            );
            return Ok(());
        }
        let mut body = json!({"scheduling_policy": {"id": policy_id}});
        let properties = saved
            .get("custom_scheduling_policy_properties")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !properties.is_empty() {
            body["custom_scheduling_policy_properties"] = json!({"property": properties});
        }
        self.client
            .put(&format!("/clusters/{}", text(&cluster, "id")), body)
            .await
            .map(|_| ())
            .map_err(|error| driver_error(error, &self.cluster))
    }

    /// The newest event index, to read a step's events from (`None` when the engine has none or
    /// does not answer: the step does not depend on it).
    async fn latest_event_index(&self) -> Option<u64> {
        let events = self.client.get("/events?max=1").await.ok()?;
        items(&events, "event")
            .first()
            .map(|event| number(event, "index"))
    }

    /// The engine's warnings and errors about one host or VM (`subject` "host" or "vm", its id),
    /// after `since` (else among the newest 100), newest first, as a text for a failed step's
    /// detail; empty when there are none or the engine does not answer.
    async fn events_about(&self, since: Option<u64>, subject: &str, id: &str) -> String {
        let path = match since {
            Some(index) => format!("/events?from={index}"),
            None => "/events?max=100".to_string(),
        };
        let Ok(events) = self.client.get(&path).await else {
            return String::new();
        };
        let texts: Vec<String> = items(&events, "event")
            .iter()
            .filter(|event| {
                event.get(subject).map(|about| text(about, "id")) == Some(id)
                    && matches!(text(event, "severity"), "warning" | "error" | "alert")
            })
            .take(3)
            .map(|event| {
                format!(
                    "event {} code {}: {}",
                    text(event, "index"),
                    text(event, "code"),
                    text(event, "description")
                )
            })
            .collect();
        match texts.is_empty() {
            true => String::new(),
            false => format!(" (the engine's events: {})", texts.join("; ")),
        }
    }

    async fn upgrade_by_command(
        &self,
        template: &ArgvTemplate,
        host: &Value,
        name: &str,
        target: &Version,
    ) -> Result<(), DriverError> {
        let values = PlaceholderValues::new()
            .with(Placeholder::Host, name)
            .with(Placeholder::HostAddress, text(host, "address"))
            .with(Placeholder::Target, target.to_string())
            .with(Placeholder::Cluster, self.cluster.as_str());
        let context = StepContext::new("upgrade", format!("host {name}"));
        let failed = |error: drover_command::CommandError| DriverError::Failed(error.to_string());
        let argv = template.render(&context, &values).map_err(failed)?;
        let output = run_step(
            &context,
            &argv,
            RunLimits::with_timeout(self.timings.upgrade_timeout),
        )
        .await
        .map_err(failed)?;
        if !output.succeeded() {
            return Err(DriverError::Failed(format!(
                "host {name}: the upgrade command failed (exit {:?}){}",
                output.exit_code,
                output.message_tail()
            )));
        }
        Ok(())
    }
}

/// Whether one of the VM's disks (inlined by `follow=disk_attachments.disk`) is on a local
/// storage domain.
fn on_local_storage(vm: &Value, local_domains: &[&str]) -> bool {
    let attachments = vm
        .get("disk_attachments")
        .map(|attachments| items(attachments, "disk_attachment"))
        .unwrap_or(&[]);
    attachments.iter().any(|attachment| {
        attachment
            .get("disk")
            .and_then(|disk| disk.get("storage_domains"))
            .map(|domains| items(domains, "storage_domain"))
            .unwrap_or(&[])
            .iter()
            .any(|domain| local_domains.contains(&text(domain, "id")))
    })
}

/// Percent-encodes a search value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[async_trait::async_trait]
impl Driver for OvirtDriver {
    fn kind(&self) -> &'static str {
        "ovirt"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        let cluster = self.cluster_record().await?;
        let cluster_id = text(&cluster, "id").to_string();
        let host_records = self.hosts(&cluster_id).await?;
        let mut hosts = Vec::new();
        let mut index_of_id = HashMap::new();
        for record in &host_records {
            let name = text(record, "name").to_string();
            let id = text(record, "id");
            let cordoned = self.cordoned(id, &name).await?.is_some();
            let topology = record
                .get("cpu")
                .and_then(|cpu| cpu.get("topology"))
                .cloned()
                .unwrap_or(Value::Null);
            let cpus = number(&topology, "sockets").max(1)
                * number(&topology, "cores").max(1)
                * number(&topology, "threads").max(1);
            index_of_id.insert(id.to_string(), hosts.len());
            hosts.push(Host {
                role: self.roles.get(&name).copied().unwrap_or(HostRole::Compute),
                version: host_version(record)?,
                memory_mib: number(record, "memory") / MIB,
                cpus: u32::try_from(cpus).unwrap_or(u32::MAX),
                state: host_state(text(record, "status")),
                cordoned,
                labels: BTreeMap::new(),
                name,
            });
        }
        // Affinity groups (anti-affinity, host rules, positive VM rules: `affinity`).
        let groups = self
            .get(&format!("/clusters/{cluster_id}/affinitygroups"), "engine")
            .await?;
        // Local storage: a disk on a `localfs` storage domain (StorageType in the model); the
        // VMs' disks come inlined with `follow`, one request for the whole cluster.
        let domains = self.get("/storagedomains", "engine").await?;
        let local_domains: Vec<&str> = items(&domains, "storage_domain")
            .iter()
            .filter(|domain| {
                domain
                    .get("storage")
                    .is_some_and(|storage| text(storage, "type") == "localfs")
            })
            .map(|domain| text(domain, "id"))
            .collect();
        let vm_records = self
            .get("/vms?follow=disk_attachments.disk", "engine")
            .await?;
        let mut vms = Vec::new();
        let mut placements = Vec::new();
        for record in items(&vm_records, "vm") {
            if record.get("cluster").map(|c| text(c, "id")) != Some(cluster_id.as_str()) {
                continue;
            }
            let name = text(record, "name").to_string();
            let running = vm_running(record);
            let placement = record
                .get("placement_policy")
                .cloned()
                .unwrap_or(Value::Null);
            let pinned_host = placement
                .get("hosts")
                .map(|hosts| items(hosts, "host"))
                .and_then(|hosts| hosts.first())
                .map(|host| text(host, "id").to_string());
            let remembered = self
                .last_hosts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&name)
                .cloned();
            let placed = vm_host_id(record)
                .and_then(|id| index_of_id.get(id).copied())
                .or_else(|| {
                    remembered.and_then(|host| hosts.iter().position(|known| known.name == host))
                })
                .or_else(|| pinned_host.and_then(|id| index_of_id.get(&id).copied()));
            let Some(host_index) = placed.or(if hosts.is_empty() { None } else { Some(0) }) else {
                continue;
            };
            if running {
                self.remember_host(&name, &hosts[host_index].name);
            }
            let topology = record
                .get("cpu")
                .and_then(|cpu| cpu.get("topology"))
                .cloned()
                .unwrap_or(Value::Null);
            let vcpus = number(&topology, "sockets").max(1)
                * number(&topology, "cores").max(1)
                * number(&topology, "threads").max(1);
            let high_availability = record
                .get("high_availability")
                .is_some_and(|ha| flag(ha, "enabled"));
            placements.push(VmPlacement {
                id: text(record, "id"),
                host: host_index,
                running,
                placement_hosts: record
                    .get("placement_policy")
                    .and_then(|policy| policy.get("hosts"))
                    .map(|hosts| items(hosts, "host"))
                    .unwrap_or(&[])
                    .iter()
                    .map(|host| text(host, "id"))
                    .collect(),
            });
            vms.push(Vm {
                host: drover_core::HostId(host_index as u32),
                memory_mib: number(record, "memory") / MIB,
                vcpus: u32::try_from(vcpus).unwrap_or(u32::MAX),
                state: if running {
                    VmState::Running
                } else {
                    VmState::Stopped
                },
                // `user_migratable` VMs move only when a user asks (VmAffinity), and Drover's
                // migration is such a request, as the `cluster_upgrade` role's `force_migrate`.
                migratable: text(&placement, "affinity") != "pinned",
                local_storage: on_local_storage(record, &local_domains),
                unmovable: None,
                restart_policy: if high_availability {
                    RestartPolicy::Always
                } else {
                    RestartPolicy::Manual
                },
                // Filled in below from the affinity groups and placement hosts.
                anti_affinity: None,
                allowed_hosts: None,
                name,
            });
        }
        let host_ids: Vec<&str> = host_records.iter().map(|host| text(host, "id")).collect();
        let found = affinity::constraints(items(&groups, "affinity_group"), &placements, &host_ids);
        for (vm, placement) in vms.iter_mut().zip(&placements) {
            vm.anti_affinity = found.anti_affinity.get(placement.id).cloned();
            vm.allowed_hosts = found.allowed_hosts.get(placement.id).cloned();
        }
        let settings = self.observed_settings(&cluster).await?;
        Ok(Discovered {
            hosts,
            vms,
            settings: Some(settings),
        })
    }

    async fn resolve_setting(&self, setting: &PlatformSetting) -> Result<String, DriverError> {
        match setting.kind {
            SettingKind::SchedulingPolicy => self.switch_to_maintenance_policy().await,
            SettingKind::ClusterUpgradeUnmarked => self.mark_cluster_upgrading().await,
            _ => Err(DriverError::Refused(format!(
                "{}: oVirt clusters have no such setting",
                setting.label()
            ))),
        }
    }

    async fn restore_setting(
        &self,
        setting: &PlatformSetting,
        saved: &str,
    ) -> Result<(), DriverError> {
        match setting.kind {
            SettingKind::SchedulingPolicy => self.restore_policy(saved).await,
            SettingKind::ClusterUpgradeUnmarked => self.finish_cluster_upgrade(saved).await,
            _ => Err(DriverError::Refused(format!(
                "{}: oVirt clusters have no such setting",
                setting.label()
            ))),
        }
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        let record = self.host_by_name(host).await?;
        let id = text(&record, "id");
        let state = host_state(text(&record, "status"));
        if state == HostState::Down {
            return Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: format!("the engine reports status {}", text(&record, "status")),
            });
        }
        Ok(HostFacts {
            version: host_version(&record)?,
            boot_id: self.boot_id(id, host).await?,
            in_maintenance: state == HostState::Maintenance,
            cordoned: self.cordoned(id, host).await?.is_some(),
        })
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        match text(&record, "status") {
            "up" | "maintenance" => Ok(()),
            status => Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: format!("the engine reports status {status}"),
            }),
        }
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        let id = text(&record, "id");
        let tag = self.cordoned(id, host).await?;
        match (enabled, tag) {
            (true, Some(tag)) => self
                .client
                .delete(&format!("/hosts/{id}/tags/{tag}"))
                .await
                .map(|_| ())
                .map_err(|error| driver_error(error, host)),
            (false, None) => self
                .post(
                    &format!("/hosts/{id}/tags"),
                    json!({"name": CORDON_TAG}),
                    host,
                )
                .await
                .map(|_| ()),
            _ => Ok(()),
        }
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        let id = text(&record, "id").to_string();
        let status = text(&record, "status").to_string();
        if enabled {
            if matches!(status.as_str(), "maintenance" | "install_failed") {
                return Ok(());
            }
            if status != "preparing_for_maintenance" {
                // Drover empties the host itself, following its plan; the engine's evacuation
                // would place the VMs by its own scheduling.
                let vms = self.get("/vms", host).await?;
                let still: Vec<&str> = items(&vms, "vm")
                    .iter()
                    .filter(|vm| vm_running(vm) && vm_host_id(vm) == Some(id.as_str()))
                    .map(|vm| text(vm, "name"))
                    .collect();
                if !still.is_empty() {
                    return Err(DriverError::Refused(format!(
                        "host {host} still runs {}: Drover migrates them before deactivating the host",
                        still.join(", ")
                    )));
                }
                self.post(&format!("/hosts/{id}/deactivate"), json!({}), host)
                    .await?;
            }
            self.wait_for_host(
                &id,
                host,
                self.timings.migration_timeout,
                "maintenance",
                |record| Ok(text(record, "status") == "maintenance"),
            )
            .await
            .map(|_| ())
        } else {
            if status == "up" {
                return Ok(());
            }
            self.post(&format!("/hosts/{id}/activate"), json!({}), host)
                .await?;
            self.wait_for_host(&id, host, self.timings.migration_timeout, "up", |record| {
                Ok(text(record, "status") == "up")
            })
            .await
            .map(|_| ())
        }
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        let record = self.vm_by_name(vm).await?;
        let vm_id = text(&record, "id").to_string();
        let target = self.host_by_name(to).await?;
        let target_id = text(&target, "id").to_string();
        if text(&record, "status") == "up" && vm_host_id(&record) == Some(target_id.as_str()) {
            self.remember_host(vm, to);
            return Ok(());
        }
        let subject = format!("{vm} ({from} → {to})");
        if text(&record, "status") != "migrating" {
            self.post(
                &format!("/vms/{vm_id}/migrate"),
                json!({"host": {"id": target_id}}),
                &subject,
            )
            .await?;
        }
        let arrived = match self
            .wait_for_vm(
                &vm_id,
                vm,
                true,
                Some(&target_id),
                self.timings.migration_timeout,
            )
            .await
        {
            Err(DriverError::Failed(detail)) => {
                return Err(DriverError::Failed(format!(
                    "{detail}{}",
                    self.events_about(None, "vm", &vm_id).await
                )))
            }
            other => other?,
        };
        if arrived {
            self.remember_host(vm, to);
            return Ok(());
        }
        // Best effort: a migration that ends meanwhile cannot be cancelled.
        let _ = self
            .post(
                &format!("/vms/{vm_id}/cancelmigration"),
                json!({}),
                &subject,
            )
            .await;
        Err(DriverError::Failed(format!(
            "migration of {vm} to {to} still running after {} s: cancelled (cancelmigration){}",
            self.timings.migration_timeout.as_secs(),
            self.events_about(None, "vm", &vm_id).await
        )))
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        let record = self.vm_by_name(vm).await?;
        let vm_id = text(&record, "id").to_string();
        if text(&record, "status") == "down" {
            return Ok(ShutdownObserved { forced: false });
        }
        self.remember_host(vm, host);
        if text(&record, "status") != "powering_down" {
            self.post(&format!("/vms/{vm_id}/shutdown"), json!({}), host)
                .await?;
        }
        if self
            .wait_for_vm(&vm_id, vm, false, None, graceful_timeout)
            .await?
        {
            return Ok(ShutdownObserved { forced: false });
        }
        tracing::warn!(vm, "ovirt: the guest did not shut down in time; stop");
        match self
            .post(&format!("/vms/{vm_id}/stop"), json!({}), host)
            .await
        {
            Ok(_) | Err(DriverError::Refused(_)) => {}
            Err(error) => return Err(error),
        }
        if self
            .wait_for_vm(&vm_id, vm, false, None, self.timings.migration_timeout)
            .await?
        {
            return Ok(ShutdownObserved { forced: true });
        }
        Err(DriverError::Failed(format!("VM {vm} did not stop")))
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let record = self.vm_by_name(vm).await?;
        let vm_id = text(&record, "id").to_string();
        let target = self.host_by_name(host).await?;
        let target_id = text(&target, "id").to_string();
        if vm_running(&record) {
            if vm_host_id(&record) == Some(target_id.as_str()) {
                return Ok(());
            }
            return Err(DriverError::Refused(format!(
                "VM {vm} already runs on another host"
            )));
        }
        self.post(
            &format!("/vms/{vm_id}/start"),
            json!({"vm": {"placement_policy": {"hosts": {"host": [{"id": target_id}]}}}}),
            host,
        )
        .await?;
        if self
            .wait_for_vm(
                &vm_id,
                vm,
                true,
                Some(&target_id),
                self.timings.migration_timeout,
            )
            .await?
        {
            self.remember_host(vm, host);
            return Ok(());
        }
        Err(DriverError::Failed(format!(
            "VM {vm} is not up on {host} after its start"
        )))
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        let id = text(&record, "id").to_string();
        if host_version(&record)? >= *target {
            return Ok(());
        }
        let reports_target = |record: &Value| -> Result<bool, DriverError> {
            match text(record, "status") {
                "install_failed" => Err(DriverError::Failed(format!(
                    "host {host}: the engine's upgrade ended in install_failed (see the engine's events; `drover retry` upgrades it again)"
                ))),
                "maintenance" | "up" => Ok(host_version(record)? >= *target),
                _ => Ok(false),
            }
        };
        // The step's events start here: an install_failed is explained by what the engine logged.
        let since = self.latest_event_index().await;
        match &self.upgrade_command {
            Some(template) => {
                self.upgrade_by_command(template, &record, host, target)
                    .await?
            }
            None => {
                if text(&record, "status") != "installing" {
                    // upgradecheck first, so the engine knows what there is to install.
                    self.post(&format!("/hosts/{id}/upgradecheck"), json!({}), host)
                        .await?;
                    let reboot = self.timings.upgrade_reboot.to_string();
                    self.post(
                        &format!("/hosts/{id}/upgrade"),
                        json!({"reboot": reboot}),
                        host,
                    )
                    .await?;
                }
            }
        }
        let watched = self
            .wait_for_host(
                &id,
                host,
                self.timings.upgrade_timeout,
                &format!("at {target}"),
                |record| {
                    // Right after the action the host may still report its origin status.
                    reports_target(record)
                },
            )
            .await;
        match watched {
            Ok(_) => {
                self.report_upgrade_progress(target).await;
                Ok(())
            }
            Err(DriverError::Failed(detail)) => Err(DriverError::Failed(format!(
                "{detail}{}",
                self.events_about(since, "host", &id).await
            ))),
            Err(other) => Err(other),
        }
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        let record = self.host_by_name(host).await?;
        let id = text(&record, "id").to_string();
        if self.boot_id(&id, host).await? != boot_id_before {
            return Ok(());
        }
        self.post(
            &format!("/hosts/{id}/fence"),
            json!({"fence_type": "restart"}),
            host,
        )
        .await?;
        let deadline = Instant::now() + self.timings.migration_timeout;
        loop {
            let record = self.get(&format!("/hosts/{id}"), host).await?;
            if matches!(text(&record, "status"), "up" | "maintenance")
                && self.boot_id(&id, host).await? != boot_id_before
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Unreachable {
                    host: host.to_string(),
                    detail: "no new boot.time after fence restart".into(),
                });
            }
            tokio::time::sleep(self.timings.poll).await;
        }
    }

    async fn set_compatibility_level(&self, cluster: &str, level: &str) -> Result<(), DriverError> {
        let record = self.cluster_record().await?;
        let mut parts = level.split('.');
        let (major, minor) = (parts.next().unwrap_or(""), parts.next().unwrap_or("0"));
        if major.parse::<u64>().is_err() || minor.parse::<u64>().is_err() {
            return Err(DriverError::Refused(format!(
                "{level:?} is not an oVirt compatibility level (major.minor)"
            )));
        }
        let version = record.get("version").cloned().unwrap_or(Value::Null);
        if text(&version, "major") == major && text(&version, "minor") == minor {
            return Ok(());
        }
        let id = text(&record, "id");
        self.client
            .put(
                &format!("/clusters/{id}"),
                json!({"version": {"major": major, "minor": minor}}),
            )
            .await
            .map(|_| ())
            .map_err(|error| driver_error(error, cluster))
    }
}
