//! [`OpenstackDriver`]: Drover's driver calls as Compute API requests (Nova api-ref, at the
//! microversion `client` negotiated).
//!
//! - Discovery: `GET /os-services?binary=nova-compute`, `GET /os-hypervisors/detail`, each
//!   hypervisor's Placement inventories, `GET /servers/detail?all_tenants=True`,
//!   `GET /os-server-groups?all_projects=True`, `GET /os-aggregates` (see `nova`); each host's
//!   version from the `host_facts` command, else its hypervisor's `hypervisor_version`.
//! - Cordon: `PUT /os-services/{id}` `{"status": "disabled", "disabled_reason": "drover:
//!   cordoned …"}` (api-ref `os-services.inc`, "Update Compute Service", 2.53+), the reason
//!   naming the run; uncordon: `{"status": "enabled"}`, only when the reason is Drover's (a
//!   service someone else disabled is refused, never enabled). Maintenance: Drover's
//!   maintenance reason, which keeps the previous state so that leaving maintenance restores it;
//!   refused while the host still has servers.
//! - Migration of a running server: `POST /servers/{id}/action` `{"os-migrateLive": {"host":
//!   TO, "block_migration": "auto" | false}}` (api-ref `servers-admin-action.inc`; `"auto"`
//!   from 2.25, lets Nova block-migrate a local disk, sent only when the operator allows block
//!   migration). The call answers 202 before anything happened (2.34+: checks are asynchronous),
//!   so the outcome is the migration record, never the answer: the newest
//!   `GET /os-migrations?instance_uuid=ID&migration_type=live-migration` record (newest first
//!   from 2.59) is followed until `completed`, `failed`, `error` or `cancelled`, then the
//!   server's `OS-EXT-SRV-ATTR:host` must be TO (the recipe saw a client print "Complete" for a
//!   migration in `error`). A migration still running at `migration_timeout` is aborted with
//!   `DELETE /servers/{id}/migrations/{migration_id}` (api-ref `server-migrations.inc`: 2.24+,
//!   `queued`/`preparing` too from 2.65). A migration already under way for the server (a
//!   resumed run) is followed, not started again.
//! - Migration of a stopped server, and `start_vm` on another host: a cold migration,
//!   `{"migrate": {"host": TO}}` (2.56+ names the host), followed to `VERIFY_RESIZE`, then
//!   `{"confirmResize": null}` (api-ref `servers-actions.inc`).
//! - Shutdown / start: `{"os-stop": null}` / `{"os-start": null}`, followed to `SHUTOFF` /
//!   `ACTIVE` with no task under way.
//! - Shelve (a server whose `unmovable:` is `shelve`): `{"shelve": null}` (api-ref
//!   `servers-action-shelve.inc`: from `ACTIVE`, `SHUTOFF`, `PAUSED` or `SUSPENDED`), followed
//!   to `SHELVED` or `SHELVED_OFFLOADED` (the latter at once for a volume-backed server or with
//!   `shelved_offload_time` 0); a server left `SHELVED` still holds its host, so it is offloaded
//!   with `{"shelveOffload": null}` and followed to `SHELVED_OFFLOADED`. Unshelve:
//!   `{"unshelve": {"host": TO}}` (2.91+, for a `SHELVED_OFFLOADED` server), or
//!   `{"unshelve": null}` below 2.91, where the scheduler picks the host and the driver says
//!   so; followed to `ACTIVE` and checked by reading the server's host, never by the answer.
//! - Host facts, health check, upgrade and reboot: the operator's commands (`host_commands`); a
//!   host is back only when its `nova-compute` service reports `up` with a report newer than
//!   the command (Nova keeps a stopped service `up` for `service_down_time`).
//!
//! Every call observes first (the service's status and reason, the server's host, status and
//! migrations), so a repeated call returns at once. This module must not know the engine,
//! stores or the registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_command::Placeholder;
use drover_core::Version;
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
use drover_schema::inventory::CommandStep;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::client::OpenstackClient;
use crate::host_commands::HostCommands;
use crate::nova::{
    self, server_view, service_view, text, vm_names, DiscoveryInputs, ServerView, ServiceView,
    REASON_CORDONED, REASON_MAINTENANCE_WAS_DISABLED, REASON_MAINTENANCE_WAS_ENABLED,
};
use crate::OpenstackError;

/// The boot id reported without a `host_facts` command: Nova does not know one.
pub const BOOT_ID_UNAVAILABLE: &str = "unavailable (no host_facts command)";
/// Nova's column for `disabled_reason` holds 255 characters.
const REASON_MAX_CHARS: usize = 255;
/// How long a migration record may take to appear after Nova accepted the request.
const MIGRATION_RECORD_WAIT: Duration = Duration::from_secs(60);
/// How long an aborted migration may take to end.
const ABORT_WAIT: Duration = Duration::from_secs(60);
/// Live-migration statuses that end a migration (nova/compute/manager.py,
/// nova/conductor/tasks/live_migrate.py).
const MIGRATION_FAILED: [&str; 3] = ["failed", "error", "cancelled"];

/// How the driver paces itself.
#[derive(Clone, Debug)]
pub struct OpenstackTimings {
    /// A live migration not finished after this is aborted and the step fails.
    pub migration_timeout: Duration,
    /// How often a migration or a server is asked again.
    pub poll: Duration,
    /// Bound of a stop, start or cold migration.
    pub action_timeout: Duration,
    /// Bound of one operator command other than upgrade and reboot.
    pub command_timeout: Duration,
    pub upgrade_timeout: Duration,
    pub reboot_timeout: Duration,
}

/// The VM actions of a Nova cloud: the basic ones and shelve/unshelve. Nova has no
/// suspend-to-disk that frees the host (`suspend` keeps the server on its host). Read by
/// `Driver::supports` and by the registry.
pub const VM_ACTIONS: &[drover_core::ActionKind] = &[
    drover_core::ActionKind::Migrate,
    drover_core::ActionKind::Restart,
    drover_core::ActionKind::Shutdown,
    drover_core::ActionKind::Shelve,
];

pub struct OpenstackDriver {
    client: Arc<OpenstackClient>,
    timings: OpenstackTimings,
    commands: Arc<HostCommands>,
    allow_block_migration: bool,
    /// Appended to Drover's reasons: which run disabled the service.
    run_label: String,
    /// Drover's VM names → server ids, from the last listing.
    server_ids: Mutex<BTreeMap<String, String>>,
}

fn error_for(error: impl Into<OpenstackError>, subject: &str) -> DriverError {
    let error = error.into();
    match &error {
        OpenstackError::Transport { detail, .. } => DriverError::Unreachable {
            host: subject.to_string(),
            detail: detail.clone(),
        },
        OpenstackError::Http { status: 404, .. } => DriverError::NotFound(error.to_string()),
        // 400 (a host Nova cannot use: unknown, down, the source itself) and 409 (the server's
        // state or task forbids it): Nova refuses this request; another destination may work.
        OpenstackError::Http {
            status: 400 | 409, ..
        } => DriverError::Refused(error.to_string()),
        _ => DriverError::Failed(error.to_string()),
    }
}

fn time_left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// `text` cut to Nova's 255 characters for a reason.
fn reason(text: String) -> String {
    text.chars().take(REASON_MAX_CHARS).collect()
}

fn list<'a>(answer: &'a Value, key: &str) -> &'a [Value] {
    answer
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

impl OpenstackDriver {
    /// `run_label` names the run in the reasons Drover writes (e.g. "cluster prod, run started
    /// 1796554398000").
    pub fn new(
        client: OpenstackClient,
        timings: OpenstackTimings,
        commands: HostCommands,
        allow_block_migration: bool,
        run_label: String,
    ) -> OpenstackDriver {
        OpenstackDriver {
            client: Arc::new(client),
            timings,
            commands: Arc::new(commands),
            allow_block_migration,
            run_label,
            server_ids: Mutex::new(BTreeMap::new()),
        }
    }

    /// API requests sent so far (Keystone's included).
    pub fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    pub fn client(&self) -> &OpenstackClient {
        &self.client
    }

    async fn compute(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        subject: &str,
    ) -> Result<Value, DriverError> {
        self.client
            .compute(method, path, body)
            .await
            .map_err(|error| error_for(error, subject))
    }

    async fn get(&self, path: &str, subject: &str) -> Result<Value, DriverError> {
        self.compute(Method::GET, path, None, subject).await
    }

    async fn services(&self) -> Result<Vec<Value>, DriverError> {
        let answer = self
            .get("/os-services?binary=nova-compute", "cloud")
            .await?;
        Ok(list(&answer, "services").to_vec())
    }

    async fn service(&self, host: &str) -> Result<ServiceView, DriverError> {
        let path = format!("/os-services?binary=nova-compute&host={}", query(host));
        let answer = self.get(&path, host).await?;
        list(&answer, "services")
            .iter()
            .map(service_view)
            .find(|service| service.host == host)
            .ok_or_else(|| DriverError::NotFound(format!("no nova-compute service on host {host}")))
    }

    async fn update_service(&self, service: &ServiceView, body: Value) -> Result<(), DriverError> {
        let path = format!("/os-services/{}", service.id);
        self.compute(Method::PUT, &path, Some(&body), &service.host)
            .await
            .map(|_| ())
    }

    /// Every page of a paged collection (`limit` + `marker` = the last item's id; api-ref
    /// "Paginated collections").
    async fn paged(&self, path: &str, key: &str) -> Result<Vec<Value>, DriverError> {
        const PAGE: usize = 1000;
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut items: Vec<Value> = Vec::new();
        loop {
            let mut page_path = format!("{path}{separator}limit={PAGE}");
            if let Some(last) = items.last() {
                page_path.push_str(&format!("&marker={}", query(text(last, "id"))));
            }
            let answer = self.get(&page_path, "cloud").await?;
            let page = list(&answer, key);
            let full = page.len() >= PAGE;
            items.extend_from_slice(page);
            if !full {
                return Ok(items);
            }
        }
    }

    async fn hypervisors(&self) -> Result<Vec<Value>, DriverError> {
        self.paged("/os-hypervisors/detail", "hypervisors").await
    }

    async fn servers(&self) -> Result<Vec<Value>, DriverError> {
        let servers = self
            .paged("/servers/detail?all_tenants=True", "servers")
            .await?;
        let views: Vec<ServerView> = servers.iter().map(server_view).collect();
        let names = vm_names(&views);
        *self.server_ids.lock().await = names.into_iter().map(|(id, name)| (name, id)).collect();
        Ok(servers)
    }

    async fn server_id(&self, vm: &str) -> Result<String, DriverError> {
        if let Some(id) = self.server_ids.lock().await.get(vm) {
            return Ok(id.clone());
        }
        self.servers().await?;
        self.server_ids
            .lock()
            .await
            .get(vm)
            .cloned()
            .ok_or_else(|| DriverError::NotFound(format!("no server named {vm}")))
    }

    async fn server(&self, id: &str, vm: &str) -> Result<ServerView, DriverError> {
        let answer =
            self.get(&format!("/servers/{id}"), vm)
                .await
                .map_err(|error| match error {
                    DriverError::NotFound(_) => {
                        DriverError::NotFound(format!("server {vm} ({id})"))
                    }
                    other => other,
                })?;
        Ok(server_view(answer.get("server").unwrap_or(&Value::Null)))
    }

    async fn action(&self, id: &str, body: Value, subject: &str) -> Result<(), DriverError> {
        self.compute(
            Method::POST,
            &format!("/servers/{id}/action"),
            Some(&body),
            subject,
        )
        .await
        .map(|_| ())
    }

    /// Waits until the server satisfies `done`, failing on `ERROR` or at the deadline.
    async fn wait_server(
        &self,
        id: &str,
        vm: &str,
        deadline: Instant,
        expectation: &str,
        done: impl Fn(&ServerView) -> bool,
    ) -> Result<ServerView, DriverError> {
        loop {
            let server = self.server(id, vm).await?;
            if done(&server) {
                return Ok(server);
            }
            if server.status == "ERROR" {
                return Err(DriverError::Failed(format!(
                    "server {vm} went to ERROR while waiting for it to be {expectation}"
                )));
            }
            if Instant::now() + self.timings.poll >= deadline {
                return Err(DriverError::Failed(format!(
                    "server {vm} not {expectation} in time: status {}, task {:?}, host {}",
                    server.status, server.task_state, server.host
                )));
            }
            tokio::time::sleep(self.timings.poll).await;
        }
    }

    /// The server's live migrations, newest first (`GET /os-migrations`, sorted by
    /// `created_at` and `id` descending from 2.59).
    async fn live_migrations(&self, id: &str, vm: &str) -> Result<Vec<Value>, DriverError> {
        let path = format!("/os-migrations?instance_uuid={id}&migration_type=live-migration");
        Ok(list(&self.get(&path, vm).await?, "migrations").to_vec())
    }

    /// Follows the newest live migration of the server with an id above `after` until it ends;
    /// aborts it at `deadline`.
    async fn follow_live_migration(
        &self,
        id: &str,
        vm: &str,
        to: &str,
        after: u64,
        deadline: Instant,
    ) -> Result<(), DriverError> {
        let record_deadline = Instant::now() + MIGRATION_RECORD_WAIT;
        loop {
            let newest = self
                .live_migrations(id, vm)
                .await?
                .into_iter()
                .find(|migration| migration_id(migration) > after);
            match newest {
                None if Instant::now() >= record_deadline => {
                    return Err(DriverError::Failed(format!(
                        "Nova accepted the live migration of {vm} to {to} but recorded no migration in {} s",
                        MIGRATION_RECORD_WAIT.as_secs()
                    )))
                }
                None => {}
                Some(migration) => {
                    let status = text(&migration, "status");
                    let migration_number = migration_id(&migration);
                    if status == "completed" {
                        return self.check_landed(id, vm, to, migration_number).await;
                    }
                    if MIGRATION_FAILED.contains(&status) {
                        // Nova's migration ended without moving the server (a destination whose
                        // service is down, no capacity, a pre-check that failed): another
                        // destination may work.
                        // `dest_compute` stays empty when the scheduler refused the host.
                        return Err(DriverError::Refused(format!(
                            "live migration {migration_number} of {vm} from {} to {to} ended {status}",
                            text(&migration, "source_compute"),
                        )));
                    }
                    if Instant::now() >= deadline {
                        return self.abort(id, vm, migration_number, status).await;
                    }
                }
            }
            tokio::time::sleep(self.timings.poll).await;
        }
    }

    /// The migration said `completed`: the server must be on `to` with no task under way.
    async fn check_landed(
        &self,
        id: &str,
        vm: &str,
        to: &str,
        migration_number: u64,
    ) -> Result<(), DriverError> {
        let deadline = Instant::now() + self.timings.action_timeout;
        let server = self
            .wait_server(id, vm, deadline, "settled after its migration", |server| {
                server.idle()
            })
            .await?;
        if server.host == to {
            return Ok(());
        }
        Err(DriverError::Failed(format!(
            "live migration {migration_number} of {vm} says completed, but the server is on {}, not {to}",
            server.host
        )))
    }

    async fn abort(
        &self,
        id: &str,
        vm: &str,
        migration_number: u64,
        status: &str,
    ) -> Result<(), DriverError> {
        let waited = self.timings.migration_timeout.as_secs();
        let path = format!("/servers/{id}/migrations/{migration_number}");
        let answer = match self.compute(Method::DELETE, &path, None, vm).await {
            Ok(_) => "abort requested".to_string(),
            Err(error) => format!("abort refused: {error}"),
        };
        let deadline = Instant::now() + ABORT_WAIT;
        let mut last = status.to_string();
        while Instant::now() < deadline {
            if let Some(migration) = self
                .live_migrations(id, vm)
                .await?
                .into_iter()
                .find(|migration| migration_id(migration) == migration_number)
            {
                last = text(&migration, "status").to_string();
                if last == "completed" || MIGRATION_FAILED.contains(&last.as_str()) {
                    break;
                }
            }
            tokio::time::sleep(self.timings.poll).await;
        }
        Err(DriverError::Failed(format!(
            "live migration {migration_number} of {vm} still {status} after {waited} s: {answer}; now {last}"
        )))
    }

    /// A cold migration to `to`, confirmed (the server keeps its power state).
    async fn cold_migrate(&self, id: &str, vm: &str, to: &str) -> Result<(), DriverError> {
        let deadline = Instant::now() + self.timings.action_timeout;
        let server = self.server(id, vm).await?;
        if server.status != "VERIFY_RESIZE" {
            self.action(id, json!({"migrate": {"host": to}}), vm)
                .await?;
            self.wait_server(id, vm, deadline, "VERIFY_RESIZE", |server| {
                server.status == "VERIFY_RESIZE" && server.idle()
            })
            .await?;
        }
        self.action(id, json!({"confirmResize": null}), vm).await?;
        let server = self
            .wait_server(id, vm, deadline, "confirmed", |server| {
                server.status != "VERIFY_RESIZE" && server.idle()
            })
            .await?;
        if server.host != to {
            return Err(DriverError::Failed(format!(
                "the cold migration of {vm} was confirmed, but the server is on {}, not {to}",
                server.host
            )));
        }
        Ok(())
    }

    /// A host's own facts, without cordon and maintenance: the command's, else its
    /// hypervisor's version and no boot id.
    async fn platform_facts(
        &self,
        host: &str,
        timeout: Duration,
    ) -> Result<HostFacts, DriverError> {
        if self.commands.is_configured(CommandStep::HostFacts) {
            let address = self.host_address(host).await.unwrap_or_default();
            return self
                .commands
                .host_facts(host, &address, timeout)
                .await
                .map_err(|error| error_for(error, host));
        }
        let hypervisors = self.hypervisors().await?;
        let hypervisor = nova::hypervisors_by_host(&hypervisors)
            .get(host)
            .map(|hypervisor| (*hypervisor).clone())
            .ok_or_else(|| DriverError::NotFound(format!("no hypervisor on host {host}")))?;
        Ok(HostFacts {
            version: hypervisor_version(&hypervisor)?,
            boot_id: BOOT_ID_UNAVAILABLE.to_string(),
            in_maintenance: false,
            cordoned: false,
        })
    }

    async fn host_address(&self, host: &str) -> Result<String, DriverError> {
        let hypervisors = self.hypervisors().await?;
        Ok(nova::hypervisors_by_host(&hypervisors)
            .get(host)
            .map(|hypervisor| text(hypervisor, "host_ip").to_string())
            .unwrap_or_default())
    }

    async fn versions(
        &self,
        services: &[Value],
        hypervisors: &[Value],
    ) -> Result<BTreeMap<String, Version>, DriverError> {
        let by_host = nova::hypervisors_by_host(hypervisors);
        let mut versions = BTreeMap::new();
        for service in services.iter().map(service_view) {
            let hypervisor = by_host.get(&service.host);
            let version = if self.commands.is_configured(CommandStep::HostFacts) {
                let address = hypervisor.map(|h| text(h, "host_ip")).unwrap_or("");
                match self
                    .commands
                    .host_facts(&service.host, address, self.timings.command_timeout)
                    .await
                {
                    Ok(facts) => facts.version,
                    // A host that is down has no facts; it is planned as down, at any version.
                    Err(_) if !service.answers() => "0".parse().expect("0 is a version"),
                    Err(error) => return Err(error_for(error, &service.host)),
                }
            } else {
                match hypervisor {
                    Some(hypervisor) => hypervisor_version(hypervisor)?,
                    None => "0".parse().expect("0 is a version"),
                }
            };
            versions.insert(service.host, version);
        }
        Ok(versions)
    }

    /// Waits until the host's facts satisfy `is_back` and its `nova-compute` service reports
    /// `up` with a report newer than the one seen when the wait began.
    async fn wait_until_back(
        &self,
        host: &str,
        deadline: Instant,
        expectation: &str,
        is_back: impl Fn(&HostFacts) -> bool,
    ) -> Result<(), DriverError> {
        let report_before = self
            .service(host)
            .await
            .map(|service| service.updated_at)
            .unwrap_or_default();
        loop {
            let last_seen = match self.service(host).await {
                Ok(service) if service.answers() && service.updated_at != report_before => {
                    match self
                        .platform_facts(host, self.timings.command_timeout)
                        .await
                    {
                        Ok(facts) if is_back(&facts) => return Ok(()),
                        Ok(facts) => {
                            format!("version {}, boot id {}", facts.version, facts.boot_id)
                        }
                        Err(error) => error.to_string(),
                    }
                }
                Ok(service) => format!(
                    "nova-compute state {}, last report {}",
                    if service.answers() { "up" } else { "down" },
                    service.updated_at
                ),
                Err(error) => error.to_string(),
            };
            if Instant::now() + self.timings.poll >= deadline {
                return Err(DriverError::Unreachable {
                    host: host.to_string(),
                    detail: format!("not back {expectation} in time; last seen: {last_seen}"),
                });
            }
            tokio::time::sleep(self.timings.poll).await;
        }
    }
}

/// A hypervisor's `hypervisor_version` (an integer such as 8002001 for libvirt 8.2.1) as a version.
fn hypervisor_version(hypervisor: &Value) -> Result<Version, DriverError> {
    let text = match hypervisor.get("hypervisor_version") {
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::String(text)) => text.clone(),
        _ => "0".to_string(),
    };
    text.parse()
        .map_err(|_| DriverError::Failed(format!("hypervisor_version {text:?} is not a version")))
}

/// A migration record's integer `id`.
fn migration_id(migration: &Value) -> u64 {
    migration.get("id").and_then(Value::as_u64).unwrap_or(0)
}

/// A query-string value, percent-encoded (host and server names may hold any character).
fn query(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[async_trait::async_trait]
impl Driver for OpenstackDriver {
    fn kind(&self) -> &'static str {
        "openstack"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        let services = self.services().await?;
        let hypervisors = self.hypervisors().await?;
        let mut inventories = BTreeMap::new();
        for hypervisor in &hypervisors {
            let provider = text(hypervisor, "id");
            // A provider Placement does not know yet (a compute just added) has no capacity.
            if let Ok(inventory) = self
                .client
                .placement(&format!("/resource_providers/{provider}/inventories"))
                .await
            {
                inventories.insert(provider.to_string(), inventory);
            }
        }
        let servers = self.servers().await?;
        let groups = self
            .get("/os-server-groups?all_projects=True", "cloud")
            .await?;
        let aggregates = self.get("/os-aggregates", "cloud").await?;
        let versions = self.versions(&services, &hypervisors).await?;
        nova::discovered(&DiscoveryInputs {
            services: &services,
            hypervisors: &hypervisors,
            inventories: &inventories,
            servers: &servers,
            server_groups: list(&groups, "server_groups"),
            aggregates: list(&aggregates, "aggregates"),
            versions: &versions,
            allow_block_migration: self.allow_block_migration,
        })
        .map_err(DriverError::Failed)
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        let service = self.service(host).await?;
        if !service.answers() {
            return Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: "its nova-compute service is down".into(),
            });
        }
        let mut facts = self
            .platform_facts(host, self.timings.command_timeout)
            .await?;
        facts.cordoned = service.cordoned();
        facts.in_maintenance = service.in_maintenance();
        Ok(facts)
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        let service = self.service(host).await?;
        if !service.answers() {
            return Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: "its nova-compute service is down".into(),
            });
        }
        if self.commands.is_configured(CommandStep::HealthCheck) {
            let address = self.host_address(host).await.unwrap_or_default();
            self.commands
                .run(
                    CommandStep::HealthCheck,
                    host,
                    &address,
                    &[],
                    self.timings.command_timeout,
                )
                .await
                .map_err(|error| error_for(error, host))?;
        }
        Ok(())
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let service = self.service(host).await?;
        if !enabled {
            // Disabled already (by Drover or by an operator): nothing to add.
            if !service.enabled {
                return Ok(());
            }
            let reason = reason(format!("{REASON_CORDONED} ({})", self.run_label));
            return self
                .update_service(
                    &service,
                    json!({"status": "disabled", "disabled_reason": reason}),
                )
                .await;
        }
        if service.enabled {
            return Ok(());
        }
        if service.in_maintenance() {
            return Err(DriverError::Refused(format!(
                "host {host} is in Drover's maintenance; leave it first"
            )));
        }
        if !service.disabled_by_drover() {
            return Err(DriverError::Refused(format!(
                "the nova-compute service of {host} was disabled outside Drover ({:?}); enable it yourself",
                service.disabled_reason
            )));
        }
        self.update_service(&service, json!({"status": "enabled"}))
            .await
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let service = self.service(host).await?;
        if service.in_maintenance() == enabled {
            return Ok(());
        }
        if !enabled {
            let reason = &service.disabled_reason;
            if reason.starts_with(REASON_MAINTENANCE_WAS_ENABLED) {
                return self
                    .update_service(&service, json!({"status": "enabled"}))
                    .await;
            }
            let before = reason
                .strip_prefix(REASON_MAINTENANCE_WAS_DISABLED)
                .unwrap_or("");
            return self
                .update_service(
                    &service,
                    json!({"status": "disabled", "disabled_reason": before}),
                )
                .await;
        }
        let path = format!("/servers/detail?all_tenants=True&host={}", query(host));
        let answer = self.get(&path, host).await?;
        let mut left: Vec<String> = list(&answer, "servers")
            .iter()
            .map(server_view)
            .filter(|server| server.host == host)
            .map(|server| server.name)
            .collect();
        if !left.is_empty() {
            left.sort();
            return Err(DriverError::Refused(format!(
                "host {host} still has servers: {}",
                left.join(", ")
            )));
        }
        let reason = if service.enabled {
            format!("{REASON_MAINTENANCE_WAS_ENABLED} ({})", self.run_label)
        } else {
            format!(
                "{REASON_MAINTENANCE_WAS_DISABLED}{}",
                service.disabled_reason
            )
        };
        if reason.chars().count() > REASON_MAX_CHARS {
            return Err(DriverError::Refused(format!(
                "host {host}: its disabled reason is too long to keep during maintenance"
            )));
        }
        self.update_service(
            &service,
            json!({"status": "disabled", "disabled_reason": reason}),
        )
        .await
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        let id = self.server_id(vm).await?;
        let deadline = Instant::now() + self.timings.migration_timeout;
        let subject = format!("{vm} ({from} → {to})");
        // A live migration already under way (a resumed run) is followed, not started again.
        let under_way = self
            .live_migrations(&id, vm)
            .await?
            .into_iter()
            .find(|migration| {
                let status = text(migration, "status");
                status != "completed" && !MIGRATION_FAILED.contains(&status)
            });
        if let Some(migration) = under_way {
            let number = migration_id(&migration);
            let followed = self
                .follow_live_migration(&id, vm, to, number.saturating_sub(1), deadline)
                .await;
            if text(&migration, "dest_compute") == to {
                return followed;
            }
        }
        let server = self.server(&id, vm).await?;
        if server.host == to && server.idle() {
            return Ok(());
        }
        if server.status == "SHUTOFF" || server.status == "VERIFY_RESIZE" {
            return self.cold_migrate(&id, vm, to).await;
        }
        if server.status != "ACTIVE" {
            return Err(DriverError::Refused(format!(
                "server {vm} is {} (task {:?}): not live-migratable now",
                server.status, server.task_state
            )));
        }
        if server.local_disk && !self.allow_block_migration {
            return Err(DriverError::Refused(format!(
                "server {vm} has a local disk and the section does not allow block migration"
            )));
        }
        let after = self
            .live_migrations(&id, vm)
            .await?
            .first()
            .map(migration_id)
            .unwrap_or(0);
        // "auto" (2.25+) lets Nova choose block migration for a local disk; false otherwise, so
        // that a server on shared storage is never copied.
        let block_migration = if self.allow_block_migration {
            json!("auto")
        } else {
            json!(false)
        };
        self.action(
            &id,
            json!({"os-migrateLive": {"host": to, "block_migration": block_migration}}),
            &subject,
        )
        .await?;
        self.follow_live_migration(&id, vm, to, after, deadline)
            .await
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        _host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        let id = self.server_id(vm).await?;
        let server = self.server(&id, vm).await?;
        if server.status == "SHUTOFF" && server.idle() {
            return Ok(ShutdownObserved { forced: false });
        }
        let started = Instant::now();
        if server.task_state != "powering-off" {
            self.action(&id, json!({"os-stop": null}), vm).await?;
        }
        let deadline = started + self.timings.action_timeout.max(graceful_timeout);
        self.wait_server(&id, vm, deadline, "SHUTOFF", |server| {
            server.status == "SHUTOFF" && server.idle()
        })
        .await?;
        // Nova does not say whether the guest ignored the ACPI shutdown and was powered off
        // (its `shutdown_timeout`); a stop that lasted the whole graceful timeout was.
        Ok(ShutdownObserved {
            forced: started.elapsed() >= graceful_timeout,
        })
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let id = self.server_id(vm).await?;
        let server = self.server(&id, vm).await?;
        if server.host != host {
            if server.running() {
                return Err(DriverError::Refused(format!(
                    "server {vm} already runs on {}, not {host}",
                    server.host
                )));
            }
            self.cold_migrate(&id, vm, host).await?;
        }
        let server = self.server(&id, vm).await?;
        if server.status == "ACTIVE" && server.idle() {
            return Ok(());
        }
        if server.task_state != "powering-on" {
            self.action(&id, json!({"os-start": null}), vm).await?;
        }
        let deadline = Instant::now() + self.timings.action_timeout;
        self.wait_server(&id, vm, deadline, "ACTIVE", |server| {
            server.status == "ACTIVE" && server.idle()
        })
        .await
        .map(|_| ())
    }

    fn supports(&self, action: drover_core::ActionKind) -> bool {
        VM_ACTIONS.contains(&action)
    }

    async fn shelve_vm(&self, vm: &str, _host: &str) -> Result<(), DriverError> {
        let id = self.server_id(vm).await?;
        let deadline = Instant::now() + self.timings.action_timeout;
        let server = self.server(&id, vm).await?;
        if server.status == "SHELVED_OFFLOADED" && server.idle() {
            return Ok(());
        }
        let shelved = |server: &ServerView| {
            matches!(server.status.as_str(), "SHELVED" | "SHELVED_OFFLOADED") && server.idle()
        };
        // A shelve already under way (a resumed run) is followed, not asked again.
        if server.status != "SHELVED" && !server.task_state.starts_with("shelving") {
            self.action(&id, json!({"shelve": null}), vm).await?;
        }
        let server = self
            .wait_server(&id, vm, deadline, "shelved", shelved)
            .await?;
        if server.status == "SHELVED" {
            // `shelved_offload_time` keeps it on its host, which must be emptied: offload now.
            // Nova may be offloading it itself meanwhile (409); the server's status decides.
            if let Err(error) = self.action(&id, json!({"shelveOffload": null}), vm).await {
                let now = self.server(&id, vm).await?;
                if now.status != "SHELVED_OFFLOADED" && !now.task_state.starts_with("shelving") {
                    return Err(error);
                }
            }
            self.wait_server(&id, vm, deadline, "SHELVED_OFFLOADED", |server| {
                server.status == "SHELVED_OFFLOADED" && server.idle()
            })
            .await?;
        }
        Ok(())
    }

    async fn unshelve_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let id = self.server_id(vm).await?;
        let server = self.server(&id, vm).await?;
        if server.status == "ACTIVE" && server.idle() {
            if server.host == host {
                return Ok(());
            }
            return Err(DriverError::Refused(format!(
                "server {vm} already runs on {}, not {host}",
                server.host
            )));
        }
        let minor = self
            .client
            .compute_minor()
            .await
            .map_err(|error| error_for(error, vm))?;
        let names_host = minor >= 91 && server.status == "SHELVED_OFFLOADED";
        if server.task_state != "unshelving" {
            let body = if names_host {
                json!({"unshelve": {"host": host}})
            } else {
                tracing::warn!(
                    vm,
                    host,
                    microversion = format!("2.{minor}"),
                    status = server.status.as_str(),
                    "openstack: unshelve cannot name the host (2.91+ and SHELVED_OFFLOADED only); the scheduler picks it"
                );
                json!({"unshelve": null})
            };
            self.action(&id, body, vm).await?;
        }
        let deadline = Instant::now() + self.timings.action_timeout;
        let server = self
            .wait_server(&id, vm, deadline, "ACTIVE", |server| {
                server.status == "ACTIVE" && server.idle()
            })
            .await?;
        if server.host != host {
            if names_host {
                return Err(DriverError::Failed(format!(
                    "server {vm} was unshelved on {}, not on {host} as asked",
                    server.host
                )));
            }
            tracing::warn!(
                vm,
                planned = host,
                actual = server.host.as_str(),
                "openstack: unshelved where the scheduler chose (microversion below 2.91)"
            );
        }
        Ok(())
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        let deadline = Instant::now() + self.timings.upgrade_timeout;
        self.service(host).await?;
        if !self.commands.is_configured(CommandStep::Upgrade) {
            return Err(DriverError::Failed(format!(
                "host {host}: no `upgrade` command in the openstack section (Nova installs nothing)"
            )));
        }
        let forced = self
            .commands
            .upgrade_plan(host)
            .is_some_and(|plan| plan.even_at_target);
        if self.commands.is_configured(CommandStep::HostFacts) && !forced {
            let facts = self.platform_facts(host, time_left(deadline)).await;
            if matches!(facts, Ok(facts) if facts.version >= *target) {
                return Ok(());
            }
        }
        let address = self.host_address(host).await.unwrap_or_default();
        let values = self.commands.upgrade_values(host, target.as_str());
        self.commands
            .run(
                CommandStep::Upgrade,
                host,
                &address,
                &values,
                time_left(deadline),
            )
            .await
            .map_err(|error| error_for(error, host))?;
        self.wait_until_back(host, deadline, "answering", |_| true)
            .await
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        if !self.commands.is_configured(CommandStep::Reboot) {
            return Err(DriverError::Failed(format!(
                "host {host}: no `reboot` command in the openstack section (Nova cannot reboot a compute host)"
            )));
        }
        let deadline = Instant::now() + self.timings.reboot_timeout;
        self.service(host).await?;
        let facts = self.platform_facts(host, time_left(deadline)).await;
        // A host that does not answer has not been seen rebooted: the command decides.
        let already_rebooted = matches!(&facts, Ok(facts) if facts.boot_id != boot_id_before);
        if !already_rebooted {
            let address = self.host_address(host).await.unwrap_or_default();
            let values = [(Placeholder::BootIdBefore, boot_id_before.to_string())];
            self.commands
                .run(
                    CommandStep::Reboot,
                    host,
                    &address,
                    &values,
                    time_left(deadline),
                )
                .await
                .map_err(|error| error_for(error, host))?;
        }
        self.wait_until_back(host, deadline, "with a new boot id", |facts| {
            facts.boot_id != boot_id_before
        })
        .await
    }

    async fn set_compatibility_level(
        &self,
        cluster: &str,
        _level: &str,
    ) -> Result<(), DriverError> {
        Err(DriverError::Refused(format!(
            "cluster {cluster}: Nova has no compatibility level Drover could raise (compute RPC versions follow [upgrade_levels] in nova.conf)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_answers_map_onto_the_driver_contract() {
        let http = |status: u16| OpenstackError::Http {
            service: "nova",
            method: "POST".into(),
            path: "/servers/x/action".into(),
            status,
            message: "m".into(),
        };
        assert!(matches!(
            error_for(http(404), "x"),
            DriverError::NotFound(_)
        ));
        assert!(matches!(error_for(http(409), "x"), DriverError::Refused(_)));
        assert!(matches!(error_for(http(400), "x"), DriverError::Refused(_)));
        assert!(matches!(error_for(http(403), "x"), DriverError::Failed(_)));
        let silent = OpenstackError::Transport {
            service: "nova",
            url: "http://n:8774".into(),
            detail: "connection refused".into(),
        };
        assert!(matches!(
            error_for(silent, "compute-1"),
            DriverError::Unreachable { host, .. } if host == "compute-1"
        ));
    }

    #[test]
    fn reasons_fit_novas_column_and_queries_are_encoded() {
        assert_eq!(reason("x".repeat(300)).chars().count(), REASON_MAX_CHARS);
        assert_eq!(query("compute-1"), "compute-1");
        assert_eq!(query("a b&c"), "a%20b%26c");
        assert_eq!(
            hypervisor_version(&json!({"hypervisor_version": 1000})).unwrap(),
            "1000".parse().unwrap()
        );
    }
}
