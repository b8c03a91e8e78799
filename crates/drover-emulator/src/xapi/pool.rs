//! The emulated XAPI pool: the simulator's world ([`SimDriver`]) seen through XAPI's object model
//! (opaque refs, records named as the datamodel names them, sessions, async tasks, error arrays).
//!
//! Every name below comes from the xapi-project/xen-api datamodel: classes and fields from
//! `ocaml/idl/datamodel.ml` (task, `task_status_type`), `datamodel_host.ml`, `datamodel_vm.ml`,
//! `datamodel_pool.ml`; error codes and their parameters from `ocaml/idl/datamodel_errors.ml`
//! (`SESSION_AUTHENTICATION_FAILED []`, `SESSION_INVALID [handle]`, `HANDLE_INVALID [class;
//! handle]`, `VM_BAD_POWER_STATE [vm; expected; actual]`, `HOST_NOT_ENOUGH_FREE_MEMORY [needed;
//! available]`, `HOST_DISABLED [host]`, `HOST_NOT_DISABLED []`, `HOST_IN_USE [host; type; ref]`,
//! `HOST_OFFLINE [host]`, `VM_MIGRATE_FAILED [vm; source; destination; msg]`, `TASK_CANCELLED
//! [task]`, `MESSAGE_METHOD_UNKNOWN [method]`, `MESSAGE_PARAMETER_COUNT_MISMATCH [method;
//! expected; received]`, `OPERATION_NOT_ALLOWED [reason]`, `TOO_MANY_PENDING_TASKS []`).
//! A host's boot is `other_config["boot_time"]` (set by xapi at start, `ocaml/xapi/dbsync_slave.ml`)
//! and maintenance is `other_config["MAINTENANCE_MODE"]` (XenCenter's and the CLI's convention,
//! `ocaml/xapi-cli-server/cli_operations.ml` `host_enable`).
//!
//! This module must not know HTTP or either wire encoding: it answers decoded calls.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use drover_core::{Cluster, HostState, RestartPolicy, VmState};
use drover_driver::{Discovered, Driver, DriverError};
use drover_sim::driver::{SimDriver, WorldSnapshot};

use super::refs::{record, reference, uuid, Class};
use super::vm_objects;
use super::wire::{CallAnswer, XapiValue};

mod settings;
pub mod updates;

/// The null reference (`Ref.null` in xapi).
pub const NULL_REF: &str = "OpaqueRef:NULL";
/// Sessions kept; the oldest is forgotten past this (its holder gets `SESSION_INVALID`).
const MAX_SESSIONS: usize = 256;
/// Tasks kept; finished ones are forgotten oldest first, and a new async call is refused with
/// `TOO_MANY_PENDING_TASKS` when every kept task is still pending.
pub const MAX_TASKS: usize = 1_024;
/// How long `VM.clean_shutdown` lets the guest take before the platform powers it off: xapi's
/// own clean-shutdown wait is 20 minutes (platform time here).
const CLEAN_SHUTDOWN_WAIT: Duration = Duration::from_secs(1_200);
/// The XAPI version a host reports (`API_version_major`/`_minor`); XenServer 8 reports 2.21.
const API_VERSION: (i64, i64) = (2, 21);

/// Who may log in.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// The pool behind the wire front-ends. Cheap to share (`Arc`).
pub struct XapiPool {
    driver: SimDriver,
    cluster: Arc<Cluster>,
    credentials: Credentials,
    state: Mutex<PoolState>,
    /// HA's statefiles and configuration (the `settings` module).
    settings: Mutex<settings::PoolSettings>,
    /// Updates uploaded to the pool (the `updates` module).
    updates: Mutex<Vec<updates::UploadedUpdate>>,
}

#[derive(Default)]
struct PoolState {
    sessions: VecDeque<String>,
    next_serial: u64,
    /// Task ref → task, in creation order of their serials.
    tasks: BTreeMap<String, Task>,
    task_order: VecDeque<String>,
    calls_by_method: BTreeMap<String, u64>,
    /// (host, simulator boot id) → the boot time xapi would report, seconds since the epoch.
    boot_times: HashMap<(String, String), f64>,
    /// The hash `pool.sync_updates` answered last; `None` before the first sync.
    update_hash: Option<String>,
    /// VMs suspended through `VM.suspend`, by name: the simulator's world holds them stopped
    /// (their memory freed, as xapi clears `resident_on` on suspend), this front-end reports
    /// them `Suspended` until `VM.resume_on` (or `VM.hard_shutdown`).
    suspended: BTreeSet<String>,
}

struct Task {
    uuid: String,
    name_label: String,
    created: String,
    finished: Option<String>,
    /// `task_status_type`: pending, success, failure, cancelling, cancelled.
    status: &'static str,
    result: String,
    error_info: Vec<String>,
    /// The VM a migration task moves, to read its progress from the platform.
    migrating_vm: Option<String>,
    follower: Option<tokio::task::AbortHandle>,
}

/// The classes whose records the pool serves with `get_all`, `get_all_records`, `get_record`,
/// `get_by_name_label` and field getters.
const RECORD_CLASSES: [&str; 10] = [
    "pool",
    "pool_update",
    "host",
    "VM",
    "host_metrics",
    "SR",
    "VDI",
    "VBD",
    "VM_guest_metrics",
    "VM_group",
];

/// What a ref names.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Object {
    Pool,
    Host(usize),
    Vm(usize),
    HostMetrics(usize),
    ControlDomain(usize),
    Template,
}

fn parse_ref(text: &str) -> Option<Object> {
    let hex = text.strip_prefix("OpaqueRef:")?;
    let (class, rest) = hex.split_once('-')?;
    let index = rest.rsplit('-').next()?;
    let class = u32::from_str_radix(class, 16).ok()?;
    let index = usize::from_str_radix(index, 16).ok()?;
    if reference_of(class, index)? != text {
        return None;
    }
    match class {
        1 => Some(Object::Pool),
        2 => Some(Object::Host(index)),
        3 => Some(Object::Vm(index)),
        4 => Some(Object::HostMetrics(index)),
        5 => Some(Object::ControlDomain(index)),
        6 => Some(Object::Template),
        _ => None,
    }
}

fn reference_of(class: u32, index: usize) -> Option<String> {
    Some(format!(
        "OpaqueRef:{class:08x}-0000-4000-8000-{:012x}",
        u64::try_from(index).ok()?
    ))
}

fn error(code: &str, params: &[&str]) -> Vec<String> {
    std::iter::once(code)
        .chain(params.iter().copied())
        .map(str::to_string)
        .collect()
}

fn string_map(pairs: Vec<(&str, String)>) -> XapiValue {
    XapiValue::Struct(
        pairs
            .into_iter()
            .map(|(key, value)| (key.to_string(), XapiValue::String(value)))
            .collect(),
    )
}

fn bytes_of_mib(mib: u64) -> i64 {
    i64::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)
}

/// XAPI's `DateTime` text (ISO 8601 basic, UTC) for epoch milliseconds.
fn date_time(epoch_ms: u64) -> String {
    let seconds = epoch_ms / 1000;
    let days = seconds / 86_400;
    let (hour, minute, second) = (seconds % 86_400 / 3600, seconds % 3600 / 60, seconds % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// The platform as one call sees it.
struct View {
    discovered: Discovered,
    snapshot: WorldSnapshot,
}

impl XapiPool {
    pub fn new(driver: SimDriver, cluster: Cluster, credentials: Credentials) -> Arc<XapiPool> {
        let settings = Mutex::new(settings::PoolSettings::new(&driver.snapshot()));
        Arc::new(XapiPool {
            settings,
            updates: Mutex::new(Vec::new()),
            driver,
            cluster: Arc::new(cluster),
            credentials,
            state: Mutex::new(PoolState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The platform's own state now (not XAPI: for tests that check invariants on the world
    /// behind the API, as the conformance scenarios do).
    pub fn snapshot(&self) -> WorldSnapshot {
        self.driver.snapshot()
    }

    /// How many calls of each method the pool answered (the emulator's own counter).
    pub fn calls_by_method(&self) -> BTreeMap<String, u64> {
        self.lock().calls_by_method.clone()
    }

    /// Installs `target` on `host` as the platform's installer would (the simulator's upgrade,
    /// its reboot included). Not XAPI: XenServer upgrades outside the API, so this is what a
    /// test's `upgrade` command calls (`POST /emulator/upgrade`).
    pub async fn upgrade_host(&self, host: &str, target: &str) -> Result<(), String> {
        let target: drover_core::Version = target
            .parse()
            .map_err(|_| format!("{target:?} is not a version"))?;
        self.driver
            .upgrade(host, &target)
            .await
            .map_err(|problem| problem.to_string())
    }

    /// Answers one decoded call.
    pub async fn call(self: &Arc<Self>, method: &str, params: Vec<XapiValue>) -> CallAnswer {
        {
            let mut state = self.lock();
            if state.calls_by_method.len() < 512 || state.calls_by_method.contains_key(method) {
                *state.calls_by_method.entry(method.to_string()).or_default() += 1;
            }
        }
        match method {
            "session.login_with_password" => return self.login(&params),
            "session.logout" => return self.logout(&params),
            _ => {}
        }
        let Some(session) = params.first().and_then(XapiValue::as_str) else {
            return Err(error("SESSION_INVALID", &[""]));
        };
        if !self.lock().sessions.iter().any(|known| known == session) {
            return Err(error("SESSION_INVALID", &[session]));
        }
        let arguments = &params[1..];
        if let Some(synchronous) = method.strip_prefix("Async.") {
            return self.begin_task(synchronous, params.clone());
        }
        self.answer(method, arguments).await
    }

    fn login(&self, params: &[XapiValue]) -> CallAnswer {
        let text = |index: usize| params.get(index).and_then(XapiValue::as_str);
        if params.len() < 2 {
            let received = params.len().to_string();
            return Err(error(
                "MESSAGE_PARAMETER_COUNT_MISMATCH",
                &["session.login_with_password", "2", &received],
            ));
        }
        if text(0) != Some(self.credentials.username.as_str())
            || text(1) != Some(self.credentials.password.as_str())
        {
            return Err(error("SESSION_AUTHENTICATION_FAILED", &[]));
        }
        let mut state = self.lock();
        state.next_serial += 1;
        let session = reference(Class::Session, state.next_serial);
        if state.sessions.len() >= MAX_SESSIONS {
            state.sessions.pop_front();
        }
        state.sessions.push_back(session.clone());
        Ok(XapiValue::String(session))
    }

    fn logout(&self, params: &[XapiValue]) -> CallAnswer {
        let session = params.first().and_then(XapiValue::as_str).unwrap_or("");
        let mut state = self.lock();
        let before = state.sessions.len();
        state.sessions.retain(|known| known != session);
        if state.sessions.len() == before {
            return Err(error("SESSION_INVALID", &[session]));
        }
        Ok(XapiValue::string(""))
    }

    async fn view(&self) -> Result<View, Vec<String>> {
        let discovered = self
            .driver
            .discover()
            .await
            .map_err(|problem| error("INTERNAL_ERROR", &[&problem.to_string()]))?;
        Ok(View {
            discovered,
            snapshot: self.driver.snapshot(),
        })
    }

    async fn answer(self: &Arc<Self>, method: &str, args: &[XapiValue]) -> CallAnswer {
        let (class, message) = method.split_once('.').unwrap_or((method, ""));
        let arg = |index: usize| args.get(index).and_then(XapiValue::as_str).unwrap_or("");
        let expect = |count: usize| -> Result<(), Vec<String>> {
            // The session counts as a parameter in xapi's message.
            if args.len() == count {
                return Ok(());
            }
            Err(error(
                "MESSAGE_PARAMETER_COUNT_MISMATCH",
                &[
                    method,
                    &(count + 1).to_string(),
                    &(args.len() + 1).to_string(),
                ],
            ))
        };
        match (class, message) {
            (_, "get_all") if RECORD_CLASSES.contains(&class) => {
                expect(0)?;
                let view = self.view().await?;
                let refs = self.all_records(class, &view).into_keys();
                Ok(XapiValue::strings(refs))
            }
            (_, "get_all_records") if RECORD_CLASSES.contains(&class) => {
                expect(0)?;
                let view = self.view().await?;
                Ok(XapiValue::Struct(self.all_records(class, &view)))
            }
            (_, "get_record") if RECORD_CLASSES.contains(&class) => {
                expect(1)?;
                let view = self.view().await?;
                self.all_records(class, &view)
                    .remove(arg(0))
                    .ok_or_else(|| error("HANDLE_INVALID", &[class, arg(0)]))
            }
            ("host" | "VM" | "SR" | "VDI" | "VM_group" | "pool_update", "get_by_name_label") => {
                expect(1)?;
                let view = self.view().await?;
                let refs = self
                    .all_records(class, &view)
                    .into_iter()
                    .filter(|(_, fields)| field(fields, "name_label") == Some(arg(0)))
                    .map(|(reference, _)| reference);
                Ok(XapiValue::strings(refs))
            }
            (_, getter) if getter.starts_with("get_") && RECORD_CLASSES.contains(&class) => {
                expect(1)?;
                let view = self.view().await?;
                let fields = self
                    .all_records(class, &view)
                    .remove(arg(0))
                    .ok_or_else(|| error("HANDLE_INVALID", &[class, arg(0)]))?;
                let name = &getter["get_".len()..];
                match fields {
                    XapiValue::Struct(mut map) => map
                        .remove(name)
                        .ok_or_else(|| error("MESSAGE_METHOD_UNKNOWN", &[method])),
                    _ => Err(error("MESSAGE_METHOD_UNKNOWN", &[method])),
                }
            }
            ("host", "disable") | ("host", "enable") => {
                expect(1)?;
                let host = self.host_name(arg(0))?;
                self.driver
                    .set_allocation(&host, message == "enable")
                    .await
                    .map_err(|problem| self.platform_error(problem, arg(0)))?;
                Ok(XapiValue::string(""))
            }
            ("host", "add_to_other_config") | ("host", "remove_from_other_config") => {
                expect(if message == "add_to_other_config" {
                    3
                } else {
                    2
                })?;
                let host = self.host_name(arg(0))?;
                if arg(1) == "MAINTENANCE_MODE" {
                    let entering = message == "add_to_other_config" && arg(2) == "true";
                    self.driver
                        .set_maintenance(&host, entering)
                        .await
                        .map_err(|problem| self.platform_error(problem, arg(0)))?;
                }
                Ok(XapiValue::string(""))
            }
            // XenServer 8's update mechanism (datamodel_pool.ml `sync_updates`: self, force,
            // token, token_id since 1.329.0, username and password since 25.7.0; it answers the
            // SHA256 of updateinfo.xml.gz), and datamodel_host.ml `apply_updates(self, hash)`.
            ("pool", "sync_updates") => {
                if !(4..=6).contains(&args.len()) {
                    let received = (args.len() + 1).to_string();
                    return Err(error(
                        "MESSAGE_PARAMETER_COUNT_MISMATCH",
                        &[method, "5", &received],
                    ));
                }
                if parse_ref(arg(0)) != Some(Object::Pool) {
                    return Err(error("HANDLE_INVALID", &["pool", arg(0)]));
                }
                Ok(XapiValue::String(self.sync_updates()))
            }
            ("host", "apply_updates") => {
                expect(2)?;
                self.apply_updates(arg(0), arg(1)).await
            }
            // datamodel.ml, class pool_update: apply(self, host).
            ("pool_update", "apply") => {
                expect(2)?;
                self.apply_update(arg(0), arg(1))
            }
            ("host", "reboot") => {
                expect(1)?;
                self.reboot(arg(0)).await
            }
            ("VM", "pool_migrate") => {
                expect(3)?;
                self.pool_migrate(arg(0), arg(1)).await
            }
            ("VM", "clean_shutdown") | ("VM", "hard_shutdown") => {
                expect(1)?;
                let wait = match message {
                    "clean_shutdown" => CLEAN_SHUTDOWN_WAIT,
                    _ => Duration::ZERO,
                };
                self.shutdown(arg(0), wait).await
            }
            ("VM", "start_on") => {
                expect(4)?;
                self.start_on(arg(0), arg(1)).await
            }
            // datamodel_vm.ml: suspend(vm); resume_on(vm, host, start_paused, force).
            ("VM", "suspend") => {
                expect(1)?;
                self.suspend(arg(0)).await
            }
            ("VM", "resume_on") => {
                expect(4)?;
                self.resume_on(arg(0), arg(1)).await
            }
            ("task", _) => self.task_call(method, message, args),
            _ => match self.settings_call(class, message, args).await {
                Some(answer) => answer,
                None => Err(error("MESSAGE_METHOD_UNKNOWN", &[method])),
            },
        }
    }

    /// A sync finds the updates of the cluster's target release: hosts below it are behind.
    fn sync_updates(&self) -> String {
        let mut state = self.lock();
        state.next_serial += 1;
        let hash = format!("{:064x}", state.next_serial);
        state.update_hash = Some(hash.clone());
        hash
    }

    /// Installs the synced updates on a host: the cluster's target, as the simulator upgrades
    /// (the host must be ready for it: evacuated and in maintenance, as Drover leaves it).
    async fn apply_updates(&self, host_ref: &str, hash: &str) -> CallAnswer {
        let host = self.host_name(host_ref)?;
        if self.lock().update_hash.as_deref() != Some(hash) {
            // repository.ml: a hash other than the last sync's is refused.
            return Err(error("UPDATEINFO_HASH_MISMATCH", &[]));
        }
        let target = self.cluster.target_version.clone();
        self.driver
            .upgrade(&host, &target)
            .await
            .map_err(|problem| self.platform_error(problem, host_ref))?;
        // Set (Set String): livepatch failures and recommended guidances; none here.
        Ok(XapiValue::Array(Vec::new()))
    }

    fn host_name(&self, reference: &str) -> Result<String, Vec<String>> {
        match parse_ref(reference) {
            Some(Object::Host(index)) if index < self.cluster.hosts.len() => {
                Ok(self.cluster.hosts[index].name.clone())
            }
            _ => Err(error("HANDLE_INVALID", &["host", reference])),
        }
    }

    fn vm_index(&self, reference: &str) -> Result<usize, Vec<String>> {
        match parse_ref(reference) {
            Some(Object::Vm(index)) if index < self.cluster.vms.len() => Ok(index),
            Some(Object::ControlDomain(_) | Object::Template) => Err(error(
                "OPERATION_NOT_ALLOWED",
                &["the emulator drives only guest VMs"],
            )),
            _ => Err(error("HANDLE_INVALID", &["VM", reference])),
        }
    }

    fn host_ref_of(&self, name: &str) -> String {
        self.cluster
            .hosts
            .iter()
            .position(|host| host.name == name)
            .map_or_else(
                || NULL_REF.to_string(),
                |index| reference(Class::Host, index as u64),
            )
    }

    /// A platform failure as XAPI reports it; `subject` is the ref the call named.
    fn platform_error(&self, problem: DriverError, subject: &str) -> Vec<String> {
        match problem {
            DriverError::Unreachable { host, .. } => {
                error("HOST_OFFLINE", &[&self.host_ref_of(&host)])
            }
            DriverError::NotFound(_) => error("HANDLE_INVALID", &["host", subject]),
            DriverError::Refused(reason) => error("OPERATION_NOT_ALLOWED", &[&reason]),
            DriverError::Failed(reason) => error("INTERNAL_ERROR", &[&reason]),
        }
    }

    async fn reboot(&self, host_ref: &str) -> CallAnswer {
        let host = self.host_name(host_ref)?;
        let view = self.view().await?;
        let discovered = view
            .discovered
            .hosts
            .iter()
            .find(|known| known.name == host)
            .ok_or_else(|| error("HANDLE_INVALID", &["host", host_ref]))?;
        // datamodel_host.ml: reboot "can only be called if there are no currently running VMs on
        // the host and it is disabled".
        if !discovered.cordoned && discovered.state != HostState::Maintenance {
            return Err(error("HOST_NOT_DISABLED", &[]));
        }
        let host_id = view
            .discovered
            .hosts
            .iter()
            .position(|known| known.name == host);
        if let Some((index, _)) = view
            .discovered
            .vms
            .iter()
            .enumerate()
            .find(|(_, vm)| Some(vm.host.index()) == host_id && vm.state == VmState::Running)
        {
            let vm_ref = self.vm_ref_by_name(&view.discovered.vms[index].name);
            return Err(error("HOST_IN_USE", &[host_ref, "vm", &vm_ref]));
        }
        let boot_id = view
            .snapshot
            .host(&host)
            .map(|snapshot| snapshot.boot_id.clone())
            .unwrap_or_default();
        self.driver
            .reboot(&host, &boot_id)
            .await
            .map_err(|problem| self.platform_error(problem, host_ref))?;
        Ok(XapiValue::string(""))
    }

    fn vm_ref_by_name(&self, name: &str) -> String {
        self.cluster
            .vms
            .iter()
            .position(|vm| vm.name == name)
            .map_or_else(
                || NULL_REF.to_string(),
                |index| reference(Class::Vm, index as u64),
            )
    }

    async fn pool_migrate(&self, vm_ref: &str, host_ref: &str) -> CallAnswer {
        let index = self.vm_index(vm_ref)?;
        let destination = self.host_name(host_ref)?;
        let view = self.view().await?;
        let vm = view
            .discovered
            .vms
            .iter()
            .find(|vm| vm.name == self.cluster.vms[index].name)
            .ok_or_else(|| error("HANDLE_INVALID", &["VM", vm_ref]))?;
        if vm.state != VmState::Running {
            return Err(error("VM_BAD_POWER_STATE", &[vm_ref, "running", "halted"]));
        }
        let source = view.discovered.hosts[vm.host.index()].name.clone();
        let source_ref = self.host_ref_of(&source);
        if source == destination {
            return Ok(XapiValue::string(""));
        }
        if !vm.migratable {
            // Without PV drivers xapi refuses live migration (VM_LACKS_FEATURE [vm]).
            return Err(error("VM_LACKS_FEATURE", &[vm_ref]));
        }
        if vm.local_storage {
            // A disk on the source's local SR, which the destination cannot reach.
            let sr = vm_objects::all_records("VDI", &self.cluster, &view.discovered)
                .and_then(|vdis| vdis.get(&reference(Class::Vdi, index as u64)).cloned())
                .and_then(|vdi| field(&vdi, "SR").map(str::to_string))
                .unwrap_or_else(|| NULL_REF.to_string());
            return Err(error("VM_REQUIRES_SR", &[vm_ref, &sr]));
        }
        let target = view
            .discovered
            .hosts
            .iter()
            .position(|host| host.name == destination)
            .map(|position| &view.discovered.hosts[position])
            .ok_or_else(|| error("HANDLE_INVALID", &["host", host_ref]))?;
        if target.cordoned || target.state == HostState::Maintenance {
            return Err(error("HOST_DISABLED", &[host_ref]));
        }
        let free_mib = free_memory_mib(&view.discovered, &destination);
        if free_mib < vm.memory_mib {
            let needed = bytes_of_mib(vm.memory_mib).to_string();
            let available = bytes_of_mib(free_mib).to_string();
            return Err(error("HOST_NOT_ENOUGH_FREE_MEMORY", &[&needed, &available]));
        }
        let vm_name = vm.name.clone();
        match self.driver.migrate(&vm_name, &source, &destination).await {
            Ok(()) => Ok(XapiValue::string("")),
            Err(DriverError::Unreachable { host, .. }) => {
                Err(error("HOST_OFFLINE", &[&self.host_ref_of(&host)]))
            }
            // The platform said no before moving anything: xapi's refusal of an operation.
            Err(DriverError::Refused(message)) => Err(error("OPERATION_NOT_ALLOWED", &[&message])),
            Err(DriverError::Failed(message)) => Err(error(
                "VM_MIGRATE_FAILED",
                &[vm_ref, &source_ref, host_ref, &message],
            )),
            Err(DriverError::NotFound(_)) => Err(error("HANDLE_INVALID", &["VM", vm_ref])),
        }
    }

    async fn shutdown(&self, vm_ref: &str, wait: Duration) -> CallAnswer {
        let index = self.vm_index(vm_ref)?;
        let view = self.view().await?;
        let name = &self.cluster.vms[index].name;
        let vm = view
            .discovered
            .vms
            .iter()
            .find(|vm| &vm.name == name)
            .ok_or_else(|| error("HANDLE_INVALID", &["VM", vm_ref]))?;
        if self.is_suspended(name) && wait.is_zero() {
            // hard_shutdown is allowed from Suspended: the image is discarded, the VM halted.
            self.lock().suspended.remove(name);
            return Ok(XapiValue::string(""));
        }
        if vm.state != VmState::Running {
            let actual = if self.is_suspended(name) {
                "suspended"
            } else {
                "halted"
            };
            return Err(error("VM_BAD_POWER_STATE", &[vm_ref, "running", actual]));
        }
        let host = view.discovered.hosts[vm.host.index()].name.clone();
        self.driver
            .shutdown_vm(name, &host, wait)
            .await
            .map_err(|problem| self.platform_error(problem, vm_ref))?;
        Ok(XapiValue::string(""))
    }

    fn is_suspended(&self, name: &str) -> bool {
        self.lock().suspended.contains(name)
    }

    /// xapi_vm_lifecycle.ml: `suspend` needs the `Running` state and, like `pool_migrate`, the
    /// guest's `feature-suspend` (PV drivers; `VM_LACKS_FEATURE [vm]` without them). A local
    /// disk does not stop a suspend: the image goes to the suspend SR and the VM resumes where
    /// its disk is.
    async fn suspend(&self, vm_ref: &str) -> CallAnswer {
        let index = self.vm_index(vm_ref)?;
        let view = self.view().await?;
        let name = &self.cluster.vms[index].name;
        let vm = view
            .discovered
            .vms
            .iter()
            .find(|vm| &vm.name == name)
            .ok_or_else(|| error("HANDLE_INVALID", &["VM", vm_ref]))?;
        if vm.state != VmState::Running {
            let actual = if self.is_suspended(name) {
                "suspended"
            } else {
                "halted"
            };
            return Err(error("VM_BAD_POWER_STATE", &[vm_ref, "running", actual]));
        }
        if !vm.migratable {
            return Err(error("VM_LACKS_FEATURE", &[vm_ref]));
        }
        let host = view.discovered.hosts[vm.host.index()].name.clone();
        self.driver
            .suspend_vm(name, &host)
            .await
            .map_err(|problem| self.platform_error(problem, vm_ref))?;
        self.lock().suspended.insert(name.clone());
        Ok(XapiValue::string(""))
    }

    /// `resume_on` needs the `Suspended` state (xapi_vm_lifecycle.ml).
    async fn resume_on(&self, vm_ref: &str, host_ref: &str) -> CallAnswer {
        let index = self.vm_index(vm_ref)?;
        let host = self.host_name(host_ref)?;
        let view = self.view().await?;
        let name = &self.cluster.vms[index].name;
        let vm = view
            .discovered
            .vms
            .iter()
            .find(|vm| &vm.name == name)
            .ok_or_else(|| error("HANDLE_INVALID", &["VM", vm_ref]))?;
        if vm.state == VmState::Running || !self.is_suspended(name) {
            let actual = if vm.state == VmState::Running {
                "running"
            } else {
                "halted"
            };
            return Err(error("VM_BAD_POWER_STATE", &[vm_ref, "suspended", actual]));
        }
        self.driver
            .resume_vm(name, &host)
            .await
            .map_err(|problem| self.platform_error(problem, host_ref))?;
        self.lock().suspended.remove(name);
        Ok(XapiValue::string(""))
    }

    async fn start_on(&self, vm_ref: &str, host_ref: &str) -> CallAnswer {
        let index = self.vm_index(vm_ref)?;
        let host = self.host_name(host_ref)?;
        let view = self.view().await?;
        let name = &self.cluster.vms[index].name;
        if self.is_suspended(name) {
            // start_on needs `Halted`: a suspended VM is resumed, not started.
            return Err(error(
                "VM_BAD_POWER_STATE",
                &[vm_ref, "halted", "suspended"],
            ));
        }
        let vm = view
            .discovered
            .vms
            .iter()
            .find(|vm| &vm.name == name)
            .ok_or_else(|| error("HANDLE_INVALID", &["VM", vm_ref]))?;
        if vm.state == VmState::Running {
            return Err(error("VM_BAD_POWER_STATE", &[vm_ref, "halted", "running"]));
        }
        self.driver
            .start_vm(name, &host)
            .await
            .map_err(|problem| self.platform_error(problem, host_ref))?;
        Ok(XapiValue::string(""))
    }

    /// Every object of a class, ref → record.
    fn all_records(&self, class: &str, view: &View) -> BTreeMap<String, XapiValue> {
        match class {
            "pool" => {
                BTreeMap::from([(reference(Class::Pool, 0), self.pool_record(&view.snapshot))])
            }
            "host" => (0..self.cluster.hosts.len())
                .map(|index| {
                    (
                        reference(Class::Host, index as u64),
                        self.host_record(index, view),
                    )
                })
                .collect(),
            "host_metrics" => (0..self.cluster.hosts.len())
                .map(|index| {
                    (
                        reference(Class::HostMetrics, index as u64),
                        self.host_metrics_record(index, view),
                    )
                })
                .collect(),
            "VM" => {
                let mut records: BTreeMap<String, XapiValue> = (0..self.cluster.vms.len())
                    .filter_map(|index| {
                        self.vm_record(index, view)
                            .map(|fields| (reference(Class::Vm, index as u64), fields))
                    })
                    .collect();
                for index in 0..self.cluster.hosts.len() {
                    records.insert(
                        reference(Class::ControlDomain, index as u64),
                        self.control_domain_record(index, view),
                    );
                }
                records.insert(reference(Class::Template, 0), template_record());
                records
            }
            "pool_update" => self.update_records(),
            _ => {
                let mut records = vm_objects::all_records(class, &self.cluster, &view.discovered)
                    .unwrap_or_default();
                // The heartbeat and ISO SRs, the statefile and ISO VDIs, the CD drives.
                records.extend(self.settings_records(class, &view.snapshot));
                records
            }
        }
    }

    fn master_index(&self) -> usize {
        self.cluster
            .hosts
            .iter()
            .position(|host| host.role == drover_core::HostRole::Master)
            .unwrap_or(0)
    }

    fn pool_record(&self, snapshot: &WorldSnapshot) -> XapiValue {
        let mut fields = vec![
            ("uuid", XapiValue::string(uuid(Class::Pool, 0))),
            ("name_label", XapiValue::string(self.cluster.name.clone())),
            ("name_description", XapiValue::string("")),
            (
                "master",
                XapiValue::string(reference(Class::Host, self.master_index() as u64)),
            ),
            ("default_SR", XapiValue::string(NULL_REF)),
            ("other_config", XapiValue::Struct(BTreeMap::new())),
            ("allowed_operations", XapiValue::Array(Vec::new())),
            ("current_operations", XapiValue::Struct(BTreeMap::new())),
        ];
        fields.extend(self.settings_pool_fields(snapshot));
        record(fields)
    }

    fn boot_time(&self, host: &str, boot_id: &str) -> f64 {
        let mut state = self.lock();
        if state.boot_times.len() > 4 * self.cluster.hosts.len() + 64 {
            state.boot_times.clear();
        }
        *state
            .boot_times
            .entry((host.to_string(), boot_id.to_string()))
            .or_insert_with(|| drover_driver::wall_now_ms() as f64 / 1000.0)
    }

    fn host_record(&self, index: usize, view: &View) -> XapiValue {
        let configured = &self.cluster.hosts[index];
        let discovered = view.discovered.hosts.get(index);
        let snapshot = view.snapshot.host(&configured.name);
        let version = discovered.map_or_else(
            || configured.version.to_string(),
            |host| host.version.to_string(),
        );
        let maintenance = discovered.is_some_and(|host| host.state == HostState::Maintenance);
        let enabled = discovered.is_some_and(|host| !host.cordoned && !maintenance);
        let resident: Vec<String> = view
            .discovered
            .vms
            .iter()
            .enumerate()
            .filter(|(_, vm)| vm.host.index() == index && vm.state == VmState::Running)
            .map(|(vm_index, _)| reference(Class::Vm, vm_index as u64))
            .chain(std::iter::once(reference(
                Class::ControlDomain,
                index as u64,
            )))
            .collect();
        let mut other_config = Vec::new();
        if let Some(snapshot) = snapshot {
            let boot_time = self.boot_time(&configured.name, &snapshot.boot_id);
            other_config.push(("boot_time", format!("{boot_time:.3}")));
        }
        if maintenance {
            other_config.push(("MAINTENANCE_MODE", "true".to_string()));
        }
        let (major, minor) = API_VERSION;
        // latest_synced_updates_applied_state: unknown until a sync, then whether the host has
        // the synced updates (the cluster's target release).
        let synced = self.lock().update_hash.clone();
        let updates_applied = match &synced {
            None => "unknown",
            Some(_)
                if version.parse::<drover_core::Version>().ok()
                    >= Some(self.cluster.target_version.clone()) =>
            {
                "yes"
            }
            Some(_) => "no",
        };
        record(vec![
            (
                "latest_synced_updates_applied",
                XapiValue::string(updates_applied),
            ),
            (
                "last_update_hash",
                XapiValue::string(synced.unwrap_or_default()),
            ),
            ("uuid", XapiValue::string(uuid(Class::Host, index as u64))),
            ("name_label", XapiValue::string(configured.name.clone())),
            ("name_description", XapiValue::string("")),
            ("hostname", XapiValue::string(configured.name.clone())),
            (
                "address",
                XapiValue::string(format!("127.0.0.{}", index + 1)),
            ),
            ("enabled", XapiValue::Bool(enabled)),
            (
                "software_version",
                string_map(vec![
                    ("product_version", version.clone()),
                    ("platform_version", version),
                    ("product_brand", "XenServer".to_string()),
                    ("platform_name", "XCP".to_string()),
                ]),
            ),
            ("API_version_major", XapiValue::Int(major)),
            ("API_version_minor", XapiValue::Int(minor)),
            ("resident_VMs", XapiValue::strings(resident)),
            (
                "control_domain",
                XapiValue::string(reference(Class::ControlDomain, index as u64)),
            ),
            (
                "metrics",
                XapiValue::string(reference(Class::HostMetrics, index as u64)),
            ),
            (
                "cpu_info",
                string_map(vec![("cpu_count", configured.cpus.to_string())]),
            ),
            ("memory_overhead", XapiValue::Int(0)),
            (
                "allowed_operations",
                XapiValue::strings(["provision", "evacuate", "reboot", "shutdown"]),
            ),
            ("current_operations", XapiValue::Struct(BTreeMap::new())),
            ("other_config", string_map(other_config)),
        ])
    }

    fn host_metrics_record(&self, index: usize, view: &View) -> XapiValue {
        let configured = &self.cluster.hosts[index];
        let live = view
            .discovered
            .hosts
            .get(index)
            .is_some_and(|host| host.state != HostState::Down);
        let free_mib = free_memory_mib(&view.discovered, &configured.name);
        record(vec![
            (
                "uuid",
                XapiValue::string(uuid(Class::HostMetrics, index as u64)),
            ),
            (
                "memory_total",
                XapiValue::Int(bytes_of_mib(configured.memory_mib)),
            ),
            ("memory_free", XapiValue::Int(bytes_of_mib(free_mib))),
            ("live", XapiValue::Bool(live)),
            (
                "last_updated",
                XapiValue::DateTime(date_time(drover_driver::wall_now_ms())),
            ),
            ("other_config", XapiValue::Struct(BTreeMap::new())),
        ])
    }

    fn vm_record(&self, index: usize, view: &View) -> Option<XapiValue> {
        let configured = &self.cluster.vms[index];
        let vm = view
            .discovered
            .vms
            .iter()
            .find(|vm| vm.name == configured.name)?;
        let running = vm.state == VmState::Running;
        let suspended = !running && self.is_suspended(&vm.name);
        let host_ref = reference(Class::Host, vm.host.index() as u64);
        // vm_operations in datamodel_vm.ml; a halted VM can be started, a running one moved or
        // stopped. pool_migrate is absent when the guest lacks PV drivers (xapi's allowed
        // operations check the live-migrate feature); a local disk does not remove it — the
        // migration itself fails then, with VM_REQUIRES_SR.
        let allowed: Vec<&str> = match (running, vm.migratable) {
            (true, true) => vec![
                "pool_migrate",
                "migrate_send",
                "clean_shutdown",
                "hard_shutdown",
                "clean_reboot",
                "hard_reboot",
                "suspend",
            ],
            (true, false) => vec![
                "clean_shutdown",
                "hard_shutdown",
                "clean_reboot",
                "hard_reboot",
            ],
            (false, _) if suspended => vec!["resume", "resume_on", "hard_shutdown", "export"],
            (false, _) => vec!["start", "start_on", "clone", "copy", "export", "destroy"],
        };
        let memory = XapiValue::Int(bytes_of_mib(vm.memory_mib));
        let vcpus = XapiValue::Int(i64::from(vm.vcpus));
        let restart = match vm.restart_policy {
            // ha_restart_priority: "restart" (protected), "best-effort" or "" (unprotected).
            RestartPolicy::Always => "restart",
            RestartPolicy::Manual => "",
        };
        Some(record(
            vec![
                ("uuid", XapiValue::string(uuid(Class::Vm, index as u64))),
                ("name_label", XapiValue::string(vm.name.clone())),
                ("name_description", XapiValue::string("")),
                (
                    "power_state",
                    XapiValue::string(match (running, suspended) {
                        (true, _) => "Running",
                        (false, true) => "Suspended",
                        (false, false) => "Halted",
                    }),
                ),
                (
                    "resident_on",
                    XapiValue::string(if running {
                        host_ref.clone()
                    } else {
                        NULL_REF.to_string()
                    }),
                ),
                ("affinity", XapiValue::string(host_ref)),
                ("memory_static_max", memory.clone()),
                ("memory_dynamic_max", memory.clone()),
                ("memory_dynamic_min", memory.clone()),
                ("memory_target", memory),
                ("VCPUs_max", vcpus.clone()),
                ("VCPUs_at_startup", vcpus),
                ("allowed_operations", XapiValue::strings(allowed)),
                ("current_operations", XapiValue::Struct(BTreeMap::new())),
                ("is_a_template", XapiValue::Bool(false)),
                ("is_a_snapshot", XapiValue::Bool(false)),
                ("is_control_domain", XapiValue::Bool(false)),
                ("ha_restart_priority", XapiValue::string(restart)),
                (
                    "domid",
                    XapiValue::Int(if running { index as i64 + 1 } else { -1 }),
                ),
                ("other_config", XapiValue::Struct(BTreeMap::new())),
            ]
            .into_iter()
            .chain(self.vm_links_with_cd(index, &view.snapshot))
            .collect(),
        ))
    }

    /// The guest's links (`vm_objects::vm_links`) with its CD drive, if it has one, listed in
    /// `VBDs` beside its disk as XAPI lists every VBD of a VM (datamodel_vm.ml `VM.VBDs`).
    fn vm_links_with_cd(
        &self,
        index: usize,
        snapshot: &WorldSnapshot,
    ) -> Vec<(&'static str, XapiValue)> {
        let mut links = vm_objects::vm_links(&self.cluster, index);
        if let Some(cd) = self.cd_vbd_of(index, snapshot) {
            for (name, value) in links.iter_mut() {
                if let (&mut "VBDs", XapiValue::Array(refs)) = (name, value) {
                    refs.push(XapiValue::string(cd.clone()));
                }
            }
        }
        links
    }

    fn control_domain_record(&self, index: usize, view: &View) -> XapiValue {
        let host = &self.cluster.hosts[index];
        let live = view
            .discovered
            .hosts
            .get(index)
            .is_some_and(|known| known.state != HostState::Down);
        record(vec![
            (
                "uuid",
                XapiValue::string(uuid(Class::ControlDomain, index as u64)),
            ),
            (
                "name_label",
                XapiValue::string(format!("Control domain on host: {}", host.name)),
            ),
            (
                "power_state",
                XapiValue::string(if live { "Running" } else { "Halted" }),
            ),
            (
                "resident_on",
                XapiValue::string(reference(Class::Host, index as u64)),
            ),
            ("memory_static_max", XapiValue::Int(bytes_of_mib(1024))),
            ("VCPUs_max", XapiValue::Int(4)),
            ("allowed_operations", XapiValue::Array(Vec::new())),
            ("is_a_template", XapiValue::Bool(false)),
            ("is_a_snapshot", XapiValue::Bool(false)),
            ("is_control_domain", XapiValue::Bool(true)),
            ("ha_restart_priority", XapiValue::string("")),
            ("other_config", XapiValue::Struct(BTreeMap::new())),
        ])
    }

    /// Starts `method` (the synchronous name) as a task and answers the task's ref at once.
    fn begin_task(self: &Arc<Self>, method: &str, params: Vec<XapiValue>) -> CallAnswer {
        let task_ref = {
            let mut state = self.lock();
            if state.tasks.len() >= MAX_TASKS {
                let finished = state.task_order.iter().position(|reference| {
                    state
                        .tasks
                        .get(reference)
                        .is_some_and(|task| task.status != "pending")
                });
                let Some(position) = finished else {
                    return Err(error("TOO_MANY_PENDING_TASKS", &[]));
                };
                if let Some(forgotten) = state.task_order.remove(position) {
                    state.tasks.remove(&forgotten);
                }
            }
            state.next_serial += 1;
            let serial = state.next_serial;
            let task_ref = reference(Class::Task, serial);
            let migrating_vm = (method == "VM.pool_migrate")
                .then(|| params.get(1).and_then(XapiValue::as_str))
                .flatten()
                .and_then(|vm_ref| self.vm_index(vm_ref).ok())
                .map(|index| self.cluster.vms[index].name.clone());
            state.tasks.insert(
                task_ref.clone(),
                Task {
                    uuid: uuid(Class::Task, serial),
                    name_label: format!("Async.{method}"),
                    created: date_time(drover_driver::wall_now_ms()),
                    finished: None,
                    status: "pending",
                    result: String::new(),
                    error_info: Vec::new(),
                    migrating_vm,
                    follower: None,
                },
            );
            state.task_order.push_back(task_ref.clone());
            task_ref
        };
        let pool = Arc::clone(self);
        let method = method.to_string();
        let finishing_ref = task_ref.clone();
        let follower = tokio::spawn(async move {
            let answer = pool.answer(&method, &params[1..]).await;
            pool.finish_task(&finishing_ref, answer);
        });
        if let Some(task) = self.lock().tasks.get_mut(&task_ref) {
            task.follower = Some(follower.abort_handle());
        }
        Ok(XapiValue::String(task_ref))
    }

    fn finish_task(&self, task_ref: &str, answer: CallAnswer) {
        let mut state = self.lock();
        let Some(task) = state.tasks.get_mut(task_ref) else {
            return;
        };
        if task.status != "pending" {
            return;
        }
        task.finished = Some(date_time(drover_driver::wall_now_ms()));
        task.follower = None;
        match answer {
            Ok(value) => {
                task.status = "success";
                // A task's result is the XML-RPC text of the value; void methods leave it empty.
                task.result = value.as_str().unwrap_or_default().to_string();
            }
            Err(description) => {
                task.status = "failure";
                task.error_info = description;
            }
        }
    }

    fn task_progress(&self, task: &Task, snapshot: &WorldSnapshot) -> f64 {
        if task.status != "pending" {
            return 1.0;
        }
        let Some(vm) = &task.migrating_vm else {
            return 0.0;
        };
        snapshot
            .operations
            .iter()
            .find(|operation| operation.kind == "migrate" && operation.vm.as_deref() == Some(vm))
            .and_then(|operation| {
                let end = operation.completes_at_ms?;
                let total = end.saturating_sub(operation.started_at_ms).max(1) as f64;
                let done = snapshot.now_ms.saturating_sub(operation.started_at_ms) as f64;
                Some((done / total).clamp(0.0, 0.99))
            })
            .unwrap_or(0.0)
    }

    fn task_record(&self, task_ref: &str, task: &Task, snapshot: &WorldSnapshot) -> XapiValue {
        let allowed: Vec<&str> = match task.status {
            "pending" => vec!["cancel"],
            _ => vec!["destroy"],
        };
        record(vec![
            ("uuid", XapiValue::string(task.uuid.clone())),
            ("name_label", XapiValue::string(task.name_label.clone())),
            ("name_description", XapiValue::string("")),
            ("allowed_operations", XapiValue::strings(allowed)),
            ("current_operations", XapiValue::Struct(BTreeMap::new())),
            ("created", XapiValue::DateTime(task.created.clone())),
            (
                "finished",
                // Datamodel: meaningless while pending; xapi sends the epoch then.
                XapiValue::DateTime(task.finished.clone().unwrap_or_else(|| date_time(0))),
            ),
            ("status", XapiValue::string(task.status)),
            (
                "resident_on",
                XapiValue::string(reference(Class::Host, self.master_index() as u64)),
            ),
            (
                "progress",
                XapiValue::Float(self.task_progress(task, snapshot)),
            ),
            ("type", XapiValue::string("<none/>")),
            ("result", XapiValue::string(task.result.clone())),
            ("error_info", XapiValue::strings(task.error_info.clone())),
            ("other_config", XapiValue::Struct(BTreeMap::new())),
            ("subtask_of", XapiValue::string(NULL_REF)),
            ("subtasks", XapiValue::Array(Vec::new())),
            ("backtrace", XapiValue::string("()")),
            ("task_ref", XapiValue::string(task_ref)),
        ])
    }

    fn task_call(&self, method: &str, message: &str, args: &[XapiValue]) -> CallAnswer {
        let snapshot = self.driver.snapshot();
        let mut state = self.lock();
        let task_ref = args.first().and_then(XapiValue::as_str).unwrap_or("");
        if message == "get_all" || message == "get_all_records" {
            let all = state.tasks.iter().map(|(reference, task)| {
                let mut fields = self.task_record(reference, task, &snapshot);
                if let XapiValue::Struct(map) = &mut fields {
                    map.remove("task_ref");
                }
                (reference.clone(), fields)
            });
            return Ok(match message {
                "get_all" => XapiValue::strings(state.tasks.keys().cloned()),
                _ => XapiValue::Struct(all.collect()),
            });
        }
        if args.len() != 1 {
            return Err(error(
                "MESSAGE_PARAMETER_COUNT_MISMATCH",
                &[method, "2", &(args.len() + 1).to_string()],
            ));
        }
        let Some(task) = state.tasks.get_mut(task_ref) else {
            return Err(error("HANDLE_INVALID", &["task", task_ref]));
        };
        match message {
            "cancel" => {
                if task.status == "pending" {
                    if let Some(follower) = task.follower.take() {
                        follower.abort();
                    }
                    // The platform's operation is left as it is: the next migration of the VM
                    // supersedes it (the simulator cancels an abandoned migration then).
                    task.status = "cancelled";
                    task.finished = Some(date_time(drover_driver::wall_now_ms()));
                    task.error_info = error("TASK_CANCELLED", &[task_ref]);
                }
                Ok(XapiValue::string(""))
            }
            "destroy" => {
                if let Some(follower) = task.follower.take() {
                    follower.abort();
                }
                state.tasks.remove(task_ref);
                state.task_order.retain(|reference| reference != task_ref);
                Ok(XapiValue::string(""))
            }
            _ => {
                let mut fields = match self.task_record(task_ref, task, &snapshot) {
                    XapiValue::Struct(map) => map,
                    _ => BTreeMap::new(),
                };
                fields.remove("task_ref");
                if message == "get_record" {
                    return Ok(XapiValue::Struct(fields));
                }
                let name = message.strip_prefix("get_").unwrap_or("");
                fields
                    .remove(name)
                    .ok_or_else(|| error("MESSAGE_METHOD_UNKNOWN", &[method]))
            }
        }
    }
}

fn field<'a>(fields: &'a XapiValue, name: &str) -> Option<&'a str> {
    match fields {
        XapiValue::Struct(map) => map.get(name).and_then(XapiValue::as_str),
        _ => None,
    }
}

fn free_memory_mib(discovered: &Discovered, host: &str) -> u64 {
    let Some(index) = discovered.hosts.iter().position(|known| known.name == host) else {
        return 0;
    };
    let used: u64 = discovered
        .vms
        .iter()
        .filter(|vm| vm.host.index() == index && vm.state == VmState::Running)
        .map(|vm| vm.memory_mib)
        .sum();
    discovered.hosts[index].memory_mib.saturating_sub(used)
}

/// One template, so that a client sees what discovery must skip.
fn template_record() -> XapiValue {
    record(vec![
        ("uuid", XapiValue::string(uuid(Class::Template, 0))),
        ("name_label", XapiValue::string("Other install media")),
        ("power_state", XapiValue::string("Halted")),
        ("resident_on", XapiValue::string(NULL_REF)),
        ("memory_static_max", XapiValue::Int(bytes_of_mib(1024))),
        ("VCPUs_max", XapiValue::Int(1)),
        (
            "allowed_operations",
            XapiValue::strings(["clone", "copy", "export"]),
        ),
        ("is_a_template", XapiValue::Bool(true)),
        ("is_a_snapshot", XapiValue::Bool(false)),
        ("is_control_domain", XapiValue::Bool(false)),
        ("ha_restart_priority", XapiValue::string("")),
        ("other_config", XapiValue::Struct(BTreeMap::new())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_name_what_they_were_made_for_and_nothing_else() {
        assert_eq!(parse_ref(&reference(Class::Host, 3)), Some(Object::Host(3)));
        assert_eq!(parse_ref(&reference(Class::Vm, 0)), Some(Object::Vm(0)));
        assert_eq!(parse_ref(&reference(Class::Task, 1)), None);
        assert_eq!(parse_ref("OpaqueRef:NULL"), None);
        assert_eq!(
            parse_ref("OpaqueRef:00000002-0000-4000-8000-0000000000zz"),
            None
        );
    }

    #[test]
    fn date_times_are_xapi_basic_iso_8601() {
        assert_eq!(date_time(0), "19700101T00:00:00Z");
        assert_eq!(date_time(1_796_529_600_000), "20261206T04:00:00Z");
    }
}
