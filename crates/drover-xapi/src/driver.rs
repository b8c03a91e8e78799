//! [`XapiDriver`]: Drover's driver calls as XAPI calls. Discovery reads `pool`, `host`,
//! `host_metrics` and `VM` records (control domains, templates and snapshots skipped); cordon is
//! `host.disable`/`host.enable`; maintenance is XenCenter's and the xe CLI's convention,
//! `other_config["MAINTENANCE_MODE"]` plus `host.disable` (`ocaml/xapi-cli-server/
//! cli_operations.ml`, `host_enable`); a migration is `Async.VM.pool_migrate` followed through its
//! task and cancelled (`task.cancel`) at the migration timeout; shutdown is `clean_shutdown`
//! then `hard_shutdown` after the graceful timeout; start is `VM.start_on`; reboot is
//! `host.reboot`, and the boot id is `other_config["boot_time"]` (set by xapi at every start,
//! `ocaml/xapi/dbsync_slave.ml`).
//!
//! The upgrade is the operator's `upgrade` command (drover-command template: a XenServer
//! release installs outside XAPI, by its installer), or without one the pool's own update
//! mechanism (XenServer 8: `pool.sync_updates`, then `Async.host.apply_updates` with the synced
//! hash); either way the driver then waits for the host to report the target `product_version`.
//! [`XapiDriver::updates_pending`] reads `latest_synced_updates_applied` (and, on servers with
//! it, `pool_update.hosts`) for `drover check`. Catalog hotfix sets go through the `pool_update`
//! class (`hotfixes`, XenServer 7.1–8.2 and XCP-ng) without a command, or to the command as
//! `{hotfixes}`; XenServer 8's repositories apply every synced update at once, not by hotfix.
//!
//! Discovery also reads `SR`, `VDI`, `VBD`, `VM_guest_metrics` and `VM_group` records; what
//! they mean for a guest is `discovery`'s. The pool settings that block a roll (HA, WLB, a VM's
//! CD/DVD) are observed, resolved and restored by the `settings` module.
//!
//! Not done: a compatibility level (XAPI pools have none).
//!
//! This module must not know the engine, stores or the registry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drover_core::{Cluster, Host, HostRole, HostState, PlatformSetting, Version};
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
use serde_json::{json, Value};

use drover_command::{
    run_step, ArgvTemplate, Placeholder, PlaceholderValues, RunLimits, StepContext,
};

use crate::client::XapiClient;
use crate::discovery::{guest, is_guest, Record, Records, Surroundings};
use crate::XapiError;

mod hotfixes;

/// How the driver paces itself.
#[derive(Clone, Debug)]
pub struct XapiTimings {
    pub migration_timeout: Duration,
    pub task_poll: Duration,
    /// The upgrade command, then the host answering at the target version.
    pub upgrade_timeout: Duration,
}

/// The VM actions of a pool: the basic ones and suspend/resume (`VM.suspend` /
/// `VM.resume_on`); shelving is Nova's. Read by `Driver::supports` and by the registry.
pub const VM_ACTIONS: &[drover_core::ActionKind] = &[
    drover_core::ActionKind::Migrate,
    drover_core::ActionKind::Restart,
    drover_core::ActionKind::Shutdown,
    drover_core::ActionKind::Suspend,
];

pub struct XapiDriver {
    client: XapiClient,
    timings: XapiTimings,
    /// The operator's `upgrade` command (XAPI has no call that installs a release).
    upgrade_command: Option<ArgvTemplate>,
    cluster: String,
    /// Roles the inventory gives hosts (the pool master is always `Master`).
    roles: BTreeMap<String, HostRole>,
    /// Each host's catalog hotfix set, in the order to apply it (`hotfixes`).
    hotfixes: BTreeMap<String, Vec<String>>,
}

struct Pool {
    master: String,
    hosts: Records,
    metrics: Records,
    vms: Records,
    surroundings: Surroundings,
}

fn field<'a>(record: &'a Record, name: &str) -> &'a Value {
    record.get(name).unwrap_or(&Value::Null)
}

fn text<'a>(record: &'a Record, name: &str) -> &'a str {
    field(record, name).as_str().unwrap_or("")
}

fn flag(record: &Record, name: &str) -> bool {
    field(record, name).as_bool().unwrap_or(false)
}

/// XAPI integers: numbers over JSON-RPC, strings over XML-RPC; both accepted.
fn number(record: &Record, name: &str) -> u64 {
    match field(record, name) {
        Value::Number(number) => number.as_u64().unwrap_or(0),
        Value::String(text) => text.parse().unwrap_or(0),
        _ => 0,
    }
}

fn other_config<'a>(record: &'a Record, key: &str) -> Option<&'a str> {
    field(record, "other_config")
        .get(key)
        .and_then(Value::as_str)
}

const MIB: u64 = 1024 * 1024;

fn records_of(value: Value, class: &str) -> Result<Records, DriverError> {
    let Value::Object(map) = value else {
        return Err(DriverError::Failed(format!(
            "{class}.get_all_records: not a map"
        )));
    };
    Ok(Records(
        map.into_iter()
            .filter_map(|(reference, record)| match record {
                Value::Object(record) => Some((reference, record)),
                _ => None,
            })
            .collect(),
    ))
}

/// A XAPI failure as the driver contract's error; the XAPI code is kept in the text, so the
/// journal records it.
fn driver_error(error: XapiError, subject: &str) -> DriverError {
    match &error {
        XapiError::Transport { detail, .. } => DriverError::Unreachable {
            host: subject.to_string(),
            detail: detail.clone(),
        },
        XapiError::Api { code, .. } => match code.as_str() {
            "HANDLE_INVALID" | "UUID_INVALID" => DriverError::NotFound(error.to_string()),
            "HOST_OFFLINE" | "CANNOT_CONTACT_HOST" | "HOST_NOT_LIVE" => DriverError::Unreachable {
                host: subject.to_string(),
                detail: error.to_string(),
            },
            "HOST_NOT_ENOUGH_FREE_MEMORY"
            | "HOST_DISABLED"
            | "VM_BAD_POWER_STATE"
            | "OPERATION_NOT_ALLOWED"
            | "HOST_IN_USE"
            | "HOST_NOT_DISABLED"
            | "VM_REQUIRES_SR"
            | "VM_REQUIRES_NETWORK" => DriverError::Refused(error.to_string()),
            _ => DriverError::Failed(error.to_string()),
        },
        XapiError::Protocol(_) | XapiError::Config(_) => DriverError::Failed(error.to_string()),
    }
}

/// How a task ended.
enum TaskEnd {
    Succeeded,
    Failed(XapiError),
    /// Still pending at the deadline; it was cancelled.
    TimedOut,
}

impl XapiDriver {
    /// `upgrade_command`: the argv template of the `upgrade` step, if the section has one.
    pub fn new(
        client: XapiClient,
        timings: XapiTimings,
        cluster: &Cluster,
        upgrade_command: Option<ArgvTemplate>,
    ) -> XapiDriver {
        XapiDriver {
            client,
            timings,
            upgrade_command,
            cluster: cluster.name.clone(),
            roles: cluster
                .hosts
                .iter()
                .map(|host| (host.name.clone(), host.role))
                .collect(),
            hotfixes: BTreeMap::new(),
        }
    }

    /// Each host's hotfix set from the plan's recipes (the catalog's minimal set, prerequisites
    /// first): applied through `pool_update` when there is no `upgrade` command, else given to
    /// it as `{hotfixes}`.
    pub fn with_hotfixes(mut self, hotfixes: BTreeMap<String, Vec<String>>) -> XapiDriver {
        self.hotfixes = hotfixes;
        self
    }

    /// XAPI calls made so far.
    pub fn calls_made(&self) -> u64 {
        self.client.calls_made()
    }

    async fn call(
        &self,
        method: &str,
        params: Vec<Value>,
        subject: &str,
    ) -> Result<Value, DriverError> {
        self.client
            .call(method, params)
            .await
            .map_err(|error| driver_error(error, subject))
    }

    async fn read_pool(&self) -> Result<Pool, DriverError> {
        let pools = records_of(
            self.call("pool.get_all_records", vec![], "pool").await?,
            "pool",
        )?;
        let master = pools
            .0
            .values()
            .next()
            .map(|pool| text(pool, "master").to_string())
            .ok_or_else(|| DriverError::Failed("the server has no pool".into()))?;
        let hosts = records_of(
            self.call("host.get_all_records", vec![], "pool").await?,
            "host",
        )?;
        let metrics = records_of(
            self.call("host_metrics.get_all_records", vec![], "pool")
                .await?,
            "host_metrics",
        )?;
        let vms = records_of(self.call("VM.get_all_records", vec![], "pool").await?, "VM")?;
        let mut surroundings = Surroundings::default();
        for (class, records) in [
            ("SR", &mut surroundings.storage_repositories),
            ("VDI", &mut surroundings.disk_images),
            ("VBD", &mut surroundings.block_devices),
            ("VM_guest_metrics", &mut surroundings.guest_metrics),
            ("VM_group", &mut surroundings.vm_groups),
        ] {
            let method = format!("{class}.get_all_records");
            match self.client.call(&method, vec![]).await {
                Ok(answer) => *records = records_of(answer, class)?,
                // VM groups came with XenServer 8.4: an older server has none to read.
                Err(XapiError::Api { code, .. })
                    if class == "VM_group" && code == "MESSAGE_METHOD_UNKNOWN" => {}
                Err(error) => return Err(driver_error(error, "pool")),
            }
        }
        Ok(Pool {
            master,
            hosts,
            metrics,
            vms,
            surroundings,
        })
    }

    async fn host_ref(&self, host: &str) -> Result<(String, Record), DriverError> {
        let refs = self
            .call("host.get_by_name_label", vec![json!(host)], host)
            .await?;
        let reference = refs
            .as_array()
            .and_then(|refs| refs.first())
            .and_then(Value::as_str)
            .ok_or_else(|| DriverError::NotFound(format!("host {host}")))?
            .to_string();
        let record = self
            .call("host.get_record", vec![json!(reference)], host)
            .await?;
        let Value::Object(record) = record else {
            return Err(DriverError::Failed(format!(
                "host.get_record of {host}: not a record"
            )));
        };
        Ok((reference, record))
    }

    async fn vm_ref(&self, vm: &str) -> Result<(String, Record), DriverError> {
        let refs = self
            .call("VM.get_by_name_label", vec![json!(vm)], vm)
            .await?;
        for reference in refs
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if let Value::Object(record) = self
                .call("VM.get_record", vec![json!(reference)], vm)
                .await?
            {
                if is_guest(&record) {
                    return Ok((reference.to_string(), record));
                }
            }
        }
        Err(DriverError::NotFound(format!("VM {vm}")))
    }

    fn facts_of(&self, record: &Record, live: bool) -> Result<HostFacts, DriverError> {
        let name = text(record, "name_label");
        let version_text = field(record, "software_version")
            .get("product_version")
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = version_text.parse::<Version>().map_err(|_| {
            DriverError::Failed(format!(
                "host {name}: product_version {version_text:?} is not a version"
            ))
        })?;
        if !live {
            return Err(DriverError::Unreachable {
                host: name.to_string(),
                detail: "host_metrics.live is false".into(),
            });
        }
        let in_maintenance = other_config(record, "MAINTENANCE_MODE") == Some("true");
        Ok(HostFacts {
            version,
            boot_id: other_config(record, "boot_time").unwrap_or("").to_string(),
            in_maintenance,
            // In maintenance the host is disabled as part of it, not cordoned on its own.
            cordoned: !flag(record, "enabled") && !in_maintenance,
        })
    }

    async fn live(&self, host_record: &Record, host: &str) -> Result<bool, DriverError> {
        let metrics = text(host_record, "metrics");
        let live = self
            .call("host_metrics.get_live", vec![json!(metrics)], host)
            .await?;
        Ok(live.as_bool().unwrap_or(false))
    }

    /// Follows a task to its end, cancelling it at `deadline`; destroys it afterwards.
    async fn follow_task(
        &self,
        task: &str,
        timeout: Duration,
        subject: &str,
    ) -> Result<TaskEnd, DriverError> {
        let deadline = Instant::now() + timeout;
        let end = loop {
            let record = self
                .call("task.get_record", vec![json!(task)], subject)
                .await?;
            let Value::Object(record) = record else {
                return Err(DriverError::Failed("task.get_record: not a record".into()));
            };
            match text(&record, "status") {
                "pending" | "cancelling" if Instant::now() < deadline => {
                    tokio::time::sleep(self.timings.task_poll).await;
                }
                "pending" | "cancelling" => {
                    // Best effort: a task that finishes meanwhile cannot be cancelled.
                    let _ = self.call("task.cancel", vec![json!(task)], subject).await;
                    break TaskEnd::TimedOut;
                }
                "success" => break TaskEnd::Succeeded,
                _ => {
                    let info: Vec<String> = field(&record, "error_info")
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect();
                    let code = info
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "UNKNOWN_ERROR".into());
                    break TaskEnd::Failed(XapiError::Api {
                        code,
                        params: info.into_iter().skip(1).collect(),
                    });
                }
            }
        };
        let _ = self.call("task.destroy", vec![json!(task)], subject).await;
        Ok(end)
    }

    /// Waits until `host` answers at `target` (or newer), up to the upgrade timeout from
    /// `started`.
    async fn wait_for_version(
        &self,
        host: &str,
        target: &Version,
        started: Instant,
    ) -> Result<(), DriverError> {
        let deadline = started + self.timings.upgrade_timeout;
        loop {
            if let Ok((_, record)) = self.host_ref(host).await {
                let version = field(&record, "software_version")
                    .get("product_version")
                    .and_then(Value::as_str)
                    .and_then(|text| text.parse::<Version>().ok());
                if version.is_some_and(|version| version >= *target)
                    && self.live(&record, host).await.unwrap_or(false)
                {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Failed(format!(
                    "host {host} does not report {target} after its upgrade"
                )));
            }
            tokio::time::sleep(self.timings.task_poll).await;
        }
    }

    /// Without an `upgrade` command: the pool's own update mechanism (XenServer 8,
    /// datamodel_pool.ml `sync_updates`, datamodel_host.ml `apply_updates`): sync the enabled
    /// repository, then apply what it synced to the host, as a task under the upgrade timeout.
    /// A server without it (`MESSAGE_METHOD_UNKNOWN`) or without a repository
    /// (`NO_REPOSITORY_ENABLED`) needs the command.
    async fn apply_synced_updates(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        let no_mechanism = |detail: String| {
            DriverError::Failed(format!(
                "host {host}: no `upgrade` command in the xapi section and the pool cannot update itself ({detail}); XenServer releases install outside XAPI: give the installer as the command"
            ))
        };
        let pools = self.call("pool.get_all", vec![], host).await?;
        let pool = pools
            .as_array()
            .and_then(|refs| refs.first())
            .and_then(Value::as_str)
            .ok_or_else(|| DriverError::Failed("the server has no pool".into()))?
            .to_string();
        // self, force, token, token_id: the parameters every server with sync_updates takes.
        let sync = vec![json!(pool), json!(false), json!(""), json!("")];
        let hash = match self.client.call("pool.sync_updates", sync).await {
            Ok(Value::String(hash)) => hash,
            Ok(other) => return Err(no_mechanism(format!("sync_updates answered {other}"))),
            Err(error @ XapiError::Api { .. })
                if matches!(
                    error.code(),
                    Some("MESSAGE_METHOD_UNKNOWN" | "NO_REPOSITORY_ENABLED")
                ) =>
            {
                return Err(no_mechanism(error.to_string()))
            }
            Err(error) => return Err(driver_error(error, host)),
        };
        let (host_ref, _) = self.host_ref(host).await?;
        tracing::info!(host, %target, "xapi: applying the pool's synced updates (host.apply_updates)");
        let params = vec![json!(host_ref), json!(hash)];
        match self
            .run_task(
                "host.apply_updates",
                params,
                self.timings.upgrade_timeout,
                host,
            )
            .await?
        {
            TaskEnd::Succeeded => Ok(()),
            TaskEnd::Failed(error) => Err(driver_error(error, host)),
            TaskEnd::TimedOut => Err(DriverError::Failed(format!(
                "host {host}: host.apply_updates still pending after {} s: cancelled",
                self.timings.upgrade_timeout.as_secs()
            ))),
        }
    }

    /// Each host's `latest_synced_updates_applied` (datamodel_host.ml): `Some(true)` when the
    /// host lacks updates the pool synced ("no"), `Some(false)` when it has them ("yes"), `None`
    /// when unknown (no sync yet, or a server without the field). A host that has not applied
    /// an update uploaded to the pool (`pool_update.hosts`, XenServer 7.1–8.2) lacks updates too.
    pub async fn updates_pending(&self) -> Result<BTreeMap<String, Option<bool>>, DriverError> {
        let hosts = records_of(
            self.call("host.get_all_records", vec![], "pool").await?,
            "host",
        )?;
        let names_by_ref: BTreeMap<String, String> = hosts
            .0
            .iter()
            .map(|(reference, record)| (reference.clone(), text(record, "name_label").to_string()))
            .collect();
        let missing_pool_updates = self.hosts_missing_pool_updates(&names_by_ref).await?;
        Ok(hosts
            .0
            .values()
            .map(|record| {
                let name = text(record, "name_label");
                let pending = match text(record, "latest_synced_updates_applied") {
                    _ if missing_pool_updates.contains(name) => Some(true),
                    "no" => Some(true),
                    "yes" => Some(false),
                    _ => None,
                };
                (name.to_string(), pending)
            })
            .collect())
    }

    async fn run_task(
        &self,
        method: &str,
        params: Vec<Value>,
        timeout: Duration,
        subject: &str,
    ) -> Result<TaskEnd, DriverError> {
        let task = self
            .call(&format!("Async.{method}"), params, subject)
            .await?;
        let task = task
            .as_str()
            .ok_or_else(|| DriverError::Failed(format!("Async.{method}: no task ref")))?
            .to_string();
        self.follow_task(&task, timeout, subject).await
    }
}

#[async_trait::async_trait]
impl Driver for XapiDriver {
    fn kind(&self) -> &'static str {
        "xapi"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        let pool = self.read_pool().await?;
        let mut hosts = Vec::new();
        let mut index_of_ref = BTreeMap::new();
        for (reference, record) in &pool.hosts.0 {
            let name = text(record, "name_label").to_string();
            let live = pool
                .metrics
                .0
                .get(text(record, "metrics"))
                .is_some_and(|metrics| flag(metrics, "live"));
            let in_maintenance = other_config(record, "MAINTENANCE_MODE") == Some("true");
            let version_text = field(record, "software_version")
                .get("product_version")
                .and_then(Value::as_str)
                .unwrap_or("");
            let version = version_text.parse::<Version>().map_err(|_| {
                DriverError::Failed(format!(
                    "host {name}: product_version {version_text:?} is not a version"
                ))
            })?;
            let memory_bytes = pool
                .metrics
                .0
                .get(text(record, "metrics"))
                .map_or(0, |metrics| number(metrics, "memory_total"));
            let cpus = field(record, "cpu_info")
                .get("cpu_count")
                .and_then(Value::as_str)
                .and_then(|count| count.parse().ok())
                .unwrap_or(0);
            let role = if *reference == pool.master {
                HostRole::Master
            } else {
                match self.roles.get(&name) {
                    Some(HostRole::Master) | None => HostRole::Compute,
                    Some(role) => *role,
                }
            };
            index_of_ref.insert(reference.clone(), hosts.len());
            hosts.push(Host {
                name,
                role,
                version,
                memory_mib: memory_bytes / MIB,
                cpus,
                state: match (live, in_maintenance) {
                    (false, _) => HostState::Down,
                    (true, true) => HostState::Maintenance,
                    (true, false) => HostState::Up,
                },
                cordoned: !flag(record, "enabled") && !in_maintenance,
                labels: BTreeMap::new(),
            });
        }
        let mut vms = Vec::new();
        for record in pool.vms.0.values().filter(|record| is_guest(record)) {
            // A halted VM is placed where it last ran (affinity), else on the master.
            let placed = [
                text(record, "resident_on"),
                text(record, "affinity"),
                &pool.master,
            ]
            .into_iter()
            .find_map(|reference| index_of_ref.get(reference).copied());
            let Some(host_index) = placed else { continue };
            let host = drover_core::HostId(host_index as u32);
            vms.push(guest(record, host, &pool.surroundings));
        }
        let settings = crate::settings::observe(&self.client, &pool.vms.0).await?;
        Ok(Discovered {
            hosts,
            vms,
            settings: Some(settings),
        })
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        let (_, record) = self.host_ref(host).await?;
        let live = self.live(&record, host).await?;
        self.facts_of(&record, live)
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        let (_, record) = self.host_ref(host).await?;
        match self.live(&record, host).await? {
            true => Ok(()),
            false => Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: "host_metrics.live is false".into(),
            }),
        }
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let (reference, record) = self.host_ref(host).await?;
        if flag(&record, "enabled") == enabled {
            return Ok(());
        }
        let method = if enabled {
            "host.enable"
        } else {
            "host.disable"
        };
        self.call(method, vec![json!(reference)], host)
            .await
            .map(|_| ())
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let (reference, record) = self.host_ref(host).await?;
        let in_maintenance = other_config(&record, "MAINTENANCE_MODE") == Some("true");
        if enabled {
            if flag(&record, "enabled") {
                self.call("host.disable", vec![json!(reference)], host)
                    .await?;
            }
            if !in_maintenance {
                let params = vec![json!(reference), json!("MAINTENANCE_MODE"), json!("true")];
                self.call("host.add_to_other_config", params, host).await?;
            }
        } else {
            if in_maintenance {
                let params = vec![json!(reference), json!("MAINTENANCE_MODE")];
                self.call("host.remove_from_other_config", params, host)
                    .await?;
            }
            // As `xe host-enable` does: leaving maintenance enables the host.
            let (_, record) = self.host_ref(host).await?;
            if !flag(&record, "enabled") {
                self.call("host.enable", vec![json!(reference)], host)
                    .await?;
            }
        }
        Ok(())
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        let (vm_ref, record) = self.vm_ref(vm).await?;
        let (to_ref, _) = self.host_ref(to).await?;
        let running = text(&record, "power_state") == "Running";
        if running && text(&record, "resident_on") == to_ref {
            return Ok(());
        }
        let params = vec![json!(vm_ref), json!(to_ref), json!({"live": "true"})];
        let subject = format!("{vm} ({from} → {to})");
        match self
            .run_task(
                "VM.pool_migrate",
                params,
                self.timings.migration_timeout,
                &subject,
            )
            .await?
        {
            TaskEnd::Succeeded => Ok(()),
            TaskEnd::Failed(error) => Err(driver_error(error, from)),
            TaskEnd::TimedOut => Err(DriverError::Failed(format!(
                "migration of {vm} to {to} still pending after {} s: cancelled (task.cancel)",
                self.timings.migration_timeout.as_secs()
            ))),
        }
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        let (vm_ref, record) = self.vm_ref(vm).await?;
        if text(&record, "power_state") == "Halted" {
            return Ok(ShutdownObserved { forced: false });
        }
        let clean = self
            .run_task(
                "VM.clean_shutdown",
                vec![json!(vm_ref)],
                graceful_timeout,
                host,
            )
            .await?;
        if let TaskEnd::Succeeded = clean {
            return Ok(ShutdownObserved { forced: false });
        }
        tracing::warn!(
            vm,
            "xapi: clean shutdown did not finish in time; hard_shutdown"
        );
        match self
            .run_task(
                "VM.hard_shutdown",
                vec![json!(vm_ref)],
                self.timings.migration_timeout,
                host,
            )
            .await?
        {
            TaskEnd::Succeeded => Ok(ShutdownObserved { forced: true }),
            TaskEnd::Failed(error) => Err(driver_error(error, host)),
            TaskEnd::TimedOut => Err(DriverError::Failed(format!(
                "hard_shutdown of {vm} did not finish"
            ))),
        }
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let (vm_ref, record) = self.vm_ref(vm).await?;
        let (host_ref, _) = self.host_ref(host).await?;
        if text(&record, "power_state") == "Running" {
            if text(&record, "resident_on") == host_ref {
                return Ok(());
            }
            return Err(DriverError::Refused(format!(
                "VM {vm} already runs on another host"
            )));
        }
        // start_on(vm, host, start_paused, force): datamodel_vm.ml.
        let params = vec![json!(vm_ref), json!(host_ref), json!(false), json!(false)];
        match self
            .run_task("VM.start_on", params, self.timings.migration_timeout, host)
            .await?
        {
            TaskEnd::Succeeded => Ok(()),
            TaskEnd::Failed(error) => Err(driver_error(error, host)),
            TaskEnd::TimedOut => Err(DriverError::Failed(format!(
                "start of {vm} on {host} did not finish"
            ))),
        }
    }

    fn supports(&self, action: drover_core::ActionKind) -> bool {
        VM_ACTIONS.contains(&action)
    }

    /// `Async.VM.suspend` (datamodel_vm.ml: "Suspend the specified VM to disk. This can only be
    /// called when the specified VM is in the Running state"), followed as a task and cancelled
    /// at the migration timeout (it writes the VM's memory out); its error code is kept.
    async fn suspend_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let (vm_ref, record) = self.vm_ref(vm).await?;
        if text(&record, "power_state") == "Suspended" {
            return Ok(());
        }
        match self
            .run_task(
                "VM.suspend",
                vec![json!(vm_ref)],
                self.timings.migration_timeout,
                host,
            )
            .await?
        {
            TaskEnd::Succeeded => Ok(()),
            TaskEnd::Failed(error) => Err(driver_error(error, host)),
            TaskEnd::TimedOut => Err(DriverError::Failed(format!(
                "suspend of {vm} still pending after {} s: cancelled (task.cancel)",
                self.timings.migration_timeout.as_secs()
            ))),
        }
    }

    /// `Async.VM.resume_on(vm, host, start_paused = false, force = false)` (datamodel_vm.ml);
    /// a VM already running on `host` succeeds at once.
    async fn resume_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let (vm_ref, record) = self.vm_ref(vm).await?;
        let (host_ref, _) = self.host_ref(host).await?;
        match text(&record, "power_state") {
            "Running" if text(&record, "resident_on") == host_ref => return Ok(()),
            "Suspended" => {}
            state => {
                return Err(DriverError::Refused(format!(
                    "VM {vm} is {state}, not Suspended: nothing to resume"
                )))
            }
        }
        let params = vec![json!(vm_ref), json!(host_ref), json!(false), json!(false)];
        match self
            .run_task("VM.resume_on", params, self.timings.migration_timeout, host)
            .await?
        {
            TaskEnd::Succeeded => Ok(()),
            TaskEnd::Failed(error) => Err(driver_error(error, host)),
            TaskEnd::TimedOut => Err(DriverError::Failed(format!(
                "resume of {vm} on {host} still pending after {} s: cancelled (task.cancel)",
                self.timings.migration_timeout.as_secs()
            ))),
        }
    }

    /// The operator's `upgrade` command (skipped when the host already reports the target),
    /// then waiting until the host answers at the target version.
    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        let (_, record) = self.host_ref(host).await?;
        let reports_target = |record: &Record| {
            field(record, "software_version")
                .get("product_version")
                .and_then(Value::as_str)
                .and_then(|text| text.parse::<Version>().ok())
                .is_some_and(|version| version >= *target)
        };
        let started = Instant::now();
        let Some(template) = &self.upgrade_command else {
            // The pool's own mechanisms: synced updates to reach the release, then the
            // catalog's hotfixes (a host at the target may still lack some).
            if !reports_target(&record) {
                self.apply_synced_updates(host, target).await?;
                self.wait_for_version(host, target, started).await?;
            }
            return self.apply_hotfixes(host).await;
        };
        let has_hotfixes = self.hotfixes.get(host).is_some_and(|list| !list.is_empty());
        if reports_target(&record) && !has_hotfixes {
            return Ok(());
        }
        let hotfixes = self.hotfixes.get(host).map(|list| list.join(","));
        let values = PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(Placeholder::HostAddress, text(&record, "address"))
            .with(Placeholder::Target, target.to_string())
            .with(Placeholder::Hotfixes, hotfixes.unwrap_or_default())
            .with(Placeholder::Cluster, self.cluster.as_str());
        let context = StepContext::new("upgrade", format!("host {host}"));
        let command_failed =
            |error: drover_command::CommandError| DriverError::Failed(error.to_string());
        let argv = template.render(&context, &values).map_err(command_failed)?;
        let output = run_step(
            &context,
            &argv,
            RunLimits::with_timeout(self.timings.upgrade_timeout),
        )
        .await
        .map_err(command_failed)?;
        if !output.succeeded() {
            return Err(DriverError::Failed(format!(
                "host {host}: the upgrade command failed (exit {:?}){}",
                output.exit_code,
                output.message_tail()
            )));
        }
        self.wait_for_version(host, target, started).await
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        let (reference, record) = self.host_ref(host).await?;
        if other_config(&record, "boot_time").unwrap_or("") != boot_id_before {
            return Ok(());
        }
        match self
            .run_task(
                "host.reboot",
                vec![json!(reference)],
                self.timings.migration_timeout,
                host,
            )
            .await?
        {
            TaskEnd::Succeeded => {}
            TaskEnd::Failed(error) => return Err(driver_error(error, host)),
            TaskEnd::TimedOut => {
                return Err(DriverError::Failed(format!(
                    "reboot of {host} did not finish"
                )))
            }
        }
        // Returns once the host answers with a new boot.
        let deadline = Instant::now() + self.timings.migration_timeout;
        loop {
            if let Ok((_, record)) = self.host_ref(host).await {
                let booted = other_config(&record, "boot_time").unwrap_or("") != boot_id_before;
                if booted && self.live(&record, host).await.unwrap_or(false) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Unreachable {
                    host: host.to_string(),
                    detail: "no new boot after host.reboot".into(),
                });
            }
            tokio::time::sleep(self.timings.task_poll).await;
        }
    }

    async fn resolve_setting(&self, setting: &PlatformSetting) -> Result<String, DriverError> {
        crate::settings::resolve(&self.client, setting).await
    }

    async fn restore_setting(
        &self,
        setting: &PlatformSetting,
        saved: &str,
    ) -> Result<(), DriverError> {
        crate::settings::restore(&self.client, setting, saved).await
    }

    async fn set_compatibility_level(
        &self,
        cluster: &str,
        _level: &str,
    ) -> Result<(), DriverError> {
        Err(DriverError::Refused(format!(
            "pool {cluster}: XAPI pools have no compatibility level"
        )))
    }
}
