//! [`GanetiDriver`]: Drover's driver calls as RAPI requests and jobs (doc/rapi.rst).
//!
//! - Discovery: `GET /2/nodes?bulk=1`, `/2/instances?bulk=1`, `/2/groups?bulk=1` (see
//!   `cluster`), each node's version from the `host_facts` command (16 nodes at a time), else the
//!   cluster's `software_version` (`GET /2/info`).
//! - Cordon: tag `drover:cordoned` (`PUT /2/nodes/N/tags?tag=…`, lib/rapi/rlib2.py `_R_Tags`: the
//!   tags are query arguments) and, except on the master (which Ganeti never drains), role
//!   `drained` (`PUT /2/nodes/N/role?auto-promote=1` with the JSON string `"drained"`:
//!   draining demotes a master candidate, and without `auto-promote` Ganeti refuses when the
//!   candidate pool would fall short, lib/cmdlib/node.py). A candidate's candidacy is noted in a
//!   tag first, so it keeps its place in the plan while drained. Uncordon undoes only what the
//!   tags say Drover did: `POST /2/nodes/N/modify {"drained": false}`, after which Ganeti makes
//!   the node a candidate again when the pool needs one (`_DecideSelfPromotion`, the rule
//!   `gnt-node modify --drained no` follows), then the tags are removed
//!   (`DELETE /2/nodes/N/tags?tag=…`).
//! - The master: with a `master_failover` command, cordoning the master first hands its role to
//!   a master candidate (the command runs with `{host}` the new master, as `gnt-cluster
//!   master-failover` must run there), waits until RAPI names the new master in `/2/info`, then
//!   drains the old master as any other node, so its upgrade and reboot no longer take RAPI down.
//!   Ganeti moves the cluster address (and RAPI) with the role, so the driver's URL must be the
//!   cluster's name or address, not a node's. The role is not handed back: any candidate may be
//!   master. Without the command the master is only tagged, and RAPI is away while it reboots.
//! - Verify: with a `verify` command (`gnt-cluster verify`), discovery first runs it, and its
//!   failure refuses discovery, so no plan is made on a cluster Ganeti finds inconsistent; a
//!   pass stands for the same driver for `VERIFY_STANDS_FOR` (a run's start discovers 3×).
//! - Maintenance: tag `drover:maintenance`; refused while the node is primary of a running
//!   instance.
//! - Migration: `PUT /2/instances/I/migrate` with `{"mode": "live", "target_node": TO}`
//!   (`OP_INSTANCE_MIGRATE`) for externally mirrored disks; without `target_node` for DRBD (it
//!   goes to the secondary, and any other destination is refused); `PUT /2/instances/I/failover`
//!   (`OP_INSTANCE_FAILOVER`) for an instance whose `beparams.always_failover` forbids live
//!   migration. Instances with node-local disks are refused (the planner shuts them down).
//! - Shutdown / startup: `PUT /2/instances/I/shutdown {"timeout": S}` (`OP_INSTANCE_SHUTDOWN`:
//!   Ganeti powers the instance off after S seconds) and `PUT /2/instances/I/startup`.
//! - Every job is followed at `/2/jobs/ID` under `job_timeout` and cancelled at it (`jobs`).
//! - Host facts, health check, upgrade and reboot: the operator's commands (`host_commands`); a
//!   node that does not answer its master (null live fields) or is `offline` is unreachable.
//!
//! Every call observes first (the node's tags and flags, the instance's node and status), so a
//! repeated call returns at once. This module must not know the engine, stores or the registry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_command::Placeholder;
use drover_core::{Cluster, HostRole, Version};
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
use drover_schema::inventory::CommandStep;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{path_segment, RapiClient};
use crate::cluster::{
    self, has_tag, instance_view, mobility_of, node_view, DiscoveryInputs, InstanceView, Mobility,
    NodeView, TAG_CORDONED, TAG_MAINTENANCE, TAG_WAS_CANDIDATE,
};
use crate::host_commands::{ClusterCommands, HostCommands};
use crate::jobs::{self, JobPacing};
use crate::GanetiError;

/// The boot id reported without a `host_facts` command: Ganeti does not know one.
pub const BOOT_ID_UNAVAILABLE: &str = "unavailable (no host_facts command)";
/// Nodes whose `host_facts` command runs at once during discovery.
const FACTS_IN_PARALLEL: usize = 16;
/// How often a node coming back from an upgrade or a reboot is asked again.
const COMEBACK_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a passed `verify` stands for the same driver: a run's start discovers several times
/// within seconds (plan, prechecks, the engine's first look), and `gnt-cluster verify` takes
/// 13-20 s each time; a long-lived driver (`drover serve`) verifies again after this.
const VERIFY_STANDS_FOR: Duration = Duration::from_secs(300);

/// How the driver paces itself.
#[derive(Clone, Debug)]
pub struct GanetiTimings {
    /// A job not finished after this is cancelled and the step fails.
    pub job_timeout: Duration,
    pub job_poll: Duration,
    /// Bound of one operator command other than upgrade and reboot.
    pub command_timeout: Duration,
    pub upgrade_timeout: Duration,
    pub reboot_timeout: Duration,
}

pub struct GanetiDriver {
    client: Arc<RapiClient>,
    timings: GanetiTimings,
    commands: Arc<HostCommands>,
    /// `master_failover` and `verify` (none unless [`GanetiDriver::with_cluster_commands`]).
    cluster_commands: Arc<ClusterCommands>,
    /// Roles the inventory gives hosts (the master and candidates come from Ganeti).
    inventory_roles: BTreeMap<String, HostRole>,
    /// When `verify` last passed (see [`VERIFY_STANDS_FOR`]).
    verify_passed_at: Arc<std::sync::Mutex<Option<Instant>>>,
}

fn error_for(error: impl Into<GanetiError>, subject: &str) -> DriverError {
    let error = error.into();
    match &error {
        GanetiError::Transport { detail, .. } => DriverError::Unreachable {
            host: subject.to_string(),
            detail: detail.clone(),
        },
        GanetiError::Http { status: 404, .. } => DriverError::NotFound(error.to_string()),
        // Error classifications (doc/rapi.rst, `/2/jobs/[job_id]`): the entity is missing, or
        // the cluster refuses in its current state or for lack of resources.
        GanetiError::Job {
            classification: Some(classification),
            ..
        } if classification == "unknown_entity" => DriverError::NotFound(error.to_string()),
        GanetiError::Job {
            classification: Some(classification),
            ..
        } if matches!(
            classification.as_str(),
            "wrong_state"
                | "wrong_input"
                | "insufficient_resources"
                | "temp_insufficient_resources"
        ) =>
        {
            DriverError::Refused(error.to_string())
        }
        // The destination's environment failed an opcode's prerequisite check before anything
        // changed (`OpPrereqError` with `environment_error`, e.g. "Missing bridges" on the
        // target node): a refusal, so the engine rules that destination out.
        GanetiError::Job {
            error_type,
            classification: Some(classification),
            ..
        } if error_type == "OpPrereqError" && classification == "environment_error" => {
            DriverError::Refused(error.to_string())
        }
        _ => DriverError::Failed(error.to_string()),
    }
}

impl GanetiDriver {
    pub fn new(
        client: RapiClient,
        timings: GanetiTimings,
        cluster: &Cluster,
        commands: HostCommands,
    ) -> GanetiDriver {
        GanetiDriver {
            client: Arc::new(client),
            timings,
            commands: Arc::new(commands),
            cluster_commands: Arc::new(ClusterCommands::default()),
            inventory_roles: cluster
                .hosts
                .iter()
                .map(|host| (host.name.clone(), host.role))
                .collect(),
            verify_passed_at: Arc::default(),
        }
    }

    /// The same driver with the section's cluster commands (`master_failover`, `verify`).
    pub fn with_cluster_commands(mut self, cluster_commands: ClusterCommands) -> GanetiDriver {
        self.cluster_commands = Arc::new(cluster_commands);
        self
    }

    /// RAPI requests sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.client.requests_sent()
    }

    fn pacing(&self) -> JobPacing {
        JobPacing {
            timeout: self.timings.job_timeout,
            poll: self.timings.job_poll,
        }
    }

    async fn get(&self, path: &str, subject: &str) -> Result<Value, DriverError> {
        self.client
            .get(path)
            .await
            .map_err(|error| error_for(error, subject))
    }

    async fn job(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        subject: &str,
    ) -> Result<Value, DriverError> {
        jobs::run(&self.client, method, path, body, self.pacing())
            .await
            .map_err(|error| error_for(error, subject))
    }

    async fn node(&self, host: &str) -> Result<(Value, NodeView), DriverError> {
        let record = self
            .get(&format!("/2/nodes/{}", path_segment(host)), host)
            .await
            .map_err(|error| match error {
                DriverError::NotFound(_) => DriverError::NotFound(format!("node {host}")),
                other => other,
            })?;
        let view = node_view(&record);
        Ok((record, view))
    }

    async fn instance(&self, vm: &str) -> Result<InstanceView, DriverError> {
        let record = self
            .get(&format!("/2/instances/{}", path_segment(vm)), vm)
            .await
            .map_err(|error| match error {
                DriverError::NotFound(_) => DriverError::NotFound(format!("instance {vm}")),
                other => other,
            })?;
        Ok(instance_view(&record))
    }

    async fn instances(&self) -> Result<Vec<Value>, DriverError> {
        match self.get("/2/instances?bulk=1", "cluster").await? {
            Value::Array(items) => Ok(items),
            other => Err(DriverError::Failed(format!(
                "GET /2/instances?bulk=1 answered {other:.200}"
            ))),
        }
    }

    /// Adds (`PUT`) or removes (`DELETE`) node tags in one job.
    async fn node_tags(
        &self,
        host: &str,
        method: Method,
        tags: &[&str],
    ) -> Result<(), DriverError> {
        if tags.is_empty() {
            return Ok(());
        }
        let query: Vec<String> = tags
            .iter()
            .map(|tag| format!("tag={}", path_segment(tag)))
            .collect();
        let path = format!("/2/nodes/{}/tags?{}", path_segment(host), query.join("&"));
        self.job(method, &path, None, host).await.map(|_| ())
    }

    /// The cluster's own version (`/2/info` `software_version`), used when no `host_facts`
    /// command says what a node runs.
    async fn cluster_version(&self) -> Result<Version, DriverError> {
        let info = self.get("/2/info", "cluster").await?;
        let text = cluster::text(&info, "software_version");
        text.parse().map_err(|_| {
            DriverError::Failed(format!(
                "/2/info software_version {text:?} is not a version"
            ))
        })
    }

    /// A node's own facts, without cordon and maintenance: the command's, else the cluster's
    /// version and no boot id.
    async fn platform_facts(
        &self,
        node: &NodeView,
        timeout: Duration,
    ) -> Result<HostFacts, DriverError> {
        if self.commands.is_configured(CommandStep::HostFacts) {
            return self
                .commands
                .host_facts(&node.name, &node.primary_ip, timeout)
                .await
                .map_err(|error| error_for(error, &node.name));
        }
        Ok(HostFacts {
            version: self.cluster_version().await?,
            boot_id: BOOT_ID_UNAVAILABLE.to_string(),
            in_maintenance: false,
            cordoned: false,
        })
    }

    async fn versions(&self, nodes: &[Value]) -> Result<BTreeMap<String, Version>, DriverError> {
        let views: Vec<NodeView> = nodes.iter().map(node_view).collect();
        if !self.commands.is_configured(CommandStep::HostFacts) {
            let version = self.cluster_version().await?;
            return Ok(views
                .into_iter()
                .map(|node| (node.name, version.clone()))
                .collect());
        }
        let mut versions = BTreeMap::new();
        for chunk in views.chunks(FACTS_IN_PARALLEL) {
            let mut tasks = tokio::task::JoinSet::new();
            for node in chunk.iter().cloned() {
                let commands = Arc::clone(&self.commands);
                let timeout = self.timings.command_timeout;
                tasks.spawn(async move {
                    let facts = commands
                        .host_facts(&node.name, &node.primary_ip, timeout)
                        .await;
                    (node, facts)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                let (node, facts) = joined
                    .map_err(|error| DriverError::Failed(format!("host_facts task: {error}")))?;
                match facts {
                    Ok(facts) => {
                        versions.insert(node.name, facts.version);
                    }
                    // A node that is down has no facts; it is planned as down, at any version.
                    Err(_) if node.offline || !node.answers => {
                        versions.insert(node.name, "0".parse().expect("0 is a version"));
                    }
                    Err(error) => return Err(error_for(error, &node.name)),
                }
            }
        }
        Ok(versions)
    }

    /// Hands the master role from `master` to a master candidate: the `master_failover` command
    /// with `{host}` the new master (Ganeti's `gnt-cluster master-failover` runs there), then
    /// waits until RAPI — which moves with the cluster address to the new master — names it in
    /// `/2/info` (`master`). The candidate is `cluster::next_master`'s.
    async fn hand_over_master(&self, master: &str) -> Result<(), DriverError> {
        let nodes = match self.get("/2/nodes?bulk=1", "cluster").await? {
            Value::Array(items) => items,
            other => {
                return Err(DriverError::Failed(format!(
                    "GET /2/nodes?bulk=1 answered {other:.200}"
                )))
            }
        };
        let Some(new_master) = cluster::next_master(&nodes, master) else {
            // As without the command: the master is only tagged, and RAPI is away while it
            // reboots (the driver waits for it), which a one-node cluster cannot avoid.
            tracing::warn!(
                master,
                "no other master candidate (answering, not drained or cordoned) can take the master role: the master stays, RAPI will be away while it reboots"
            );
            return Ok(());
        };
        // RAPI is away while the role moves, as while a master reboots: the same bound.
        let deadline = Instant::now()
            + self
                .timings
                .reboot_timeout
                .max(self.timings.command_timeout);
        self.cluster_commands
            .master_failover(
                &new_master.name,
                &new_master.primary_ip,
                time_left(deadline),
            )
            .await
            .map_err(|error| error_for(error, &new_master.name))?;
        loop {
            let last_seen = match self.get("/2/info", "cluster").await {
                Ok(info) if cluster::text(&info, "master") == new_master.name => return Ok(()),
                Ok(info) => format!("master {}", cluster::text(&info, "master")),
                Err(error) => error.to_string(),
            };
            if Instant::now() + COMEBACK_POLL_INTERVAL >= deadline {
                return Err(DriverError::Failed(format!(
                    "after master_failover to {}, RAPI did not name it master in time; last seen: {last_seen}",
                    new_master.name
                )));
            }
            tokio::time::sleep(COMEBACK_POLL_INTERVAL).await;
        }
    }

    /// The cluster's own check (`verify` command, e.g. `gnt-cluster verify`) before discovery
    /// answers, when no run is under way: a failure refuses discovery, so no plan is made on a
    /// cluster Ganeti itself finds inconsistent.
    async fn verify(&self, nodes: &[Value]) -> Result<(), DriverError> {
        if !self.cluster_commands.has_verify() {
            return Ok(());
        }
        // A node carrying a Drover tag is in the middle of a run (a resume discovers too):
        // drained nodes and instances away from home are then Drover's doing, not a finding.
        if nodes.iter().any(|node| {
            [TAG_CORDONED, TAG_MAINTENANCE]
                .iter()
                .any(|tag| has_tag(node, tag))
        }) {
            return Ok(());
        }
        let passed_recently = self
            .verify_passed_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some_and(|passed_at| passed_at.elapsed() < VERIFY_STANDS_FOR);
        if passed_recently {
            return Ok(());
        }
        self.cluster_commands
            .verify(self.timings.job_timeout.max(self.timings.command_timeout))
            .await
            .map_err(|error| {
                DriverError::Refused(format!("the cluster's verify command failed: {error}"))
            })?;
        *self
            .verify_passed_at
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// Waits until the node's facts satisfy `is_back` and it answers its master again.
    async fn wait_until_back(
        &self,
        host: &str,
        deadline: Instant,
        expectation: &str,
        is_back: impl Fn(&HostFacts) -> bool,
    ) -> Result<(), DriverError> {
        loop {
            let last_seen = match self.node(host).await {
                Ok((_, node)) if node.answers && !node.offline => {
                    match self
                        .platform_facts(&node, self.timings.command_timeout)
                        .await
                    {
                        Ok(facts) if is_back(&facts) => return Ok(()),
                        Ok(facts) => {
                            format!("version {}, boot id {}", facts.version, facts.boot_id)
                        }
                        Err(error) => error.to_string(),
                    }
                }
                Ok(_) => "the node does not answer its master yet".to_string(),
                Err(error) => error.to_string(),
            };
            if Instant::now() + COMEBACK_POLL_INTERVAL >= deadline {
                return Err(DriverError::Unreachable {
                    host: host.to_string(),
                    detail: format!("not back {expectation} in time; last seen: {last_seen}"),
                });
            }
            tokio::time::sleep(COMEBACK_POLL_INTERVAL).await;
        }
    }
}

fn time_left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

#[async_trait::async_trait]
impl Driver for GanetiDriver {
    fn kind(&self) -> &'static str {
        "ganeti"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        let nodes = match self.get("/2/nodes?bulk=1", "cluster").await? {
            Value::Array(items) => items,
            other => {
                return Err(DriverError::Failed(format!(
                    "GET /2/nodes?bulk=1 answered {other:.200}"
                )))
            }
        };
        self.verify(&nodes).await?;
        let instances = self.instances().await?;
        let groups = match self.get("/2/groups?bulk=1", "cluster").await? {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        let versions = self.versions(&nodes).await?;
        cluster::discovered(&DiscoveryInputs {
            nodes: &nodes,
            instances: &instances,
            groups: &groups,
            versions: &versions,
            inventory_roles: &self.inventory_roles,
        })
        .map_err(DriverError::Failed)
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        let (_, node) = self.node(host).await?;
        if node.offline || !node.answers {
            return Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: "the node is offline or does not answer its master".into(),
            });
        }
        let mut facts = self
            .platform_facts(&node, self.timings.command_timeout)
            .await?;
        facts.cordoned = node.cordoned;
        facts.in_maintenance = node.in_maintenance;
        Ok(facts)
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        let (_, node) = self.node(host).await?;
        if node.offline || !node.answers {
            return Err(DriverError::Unreachable {
                host: host.to_string(),
                detail: "the node is offline or does not answer its master".into(),
            });
        }
        if self.commands.is_configured(CommandStep::HealthCheck) {
            self.commands
                .run(
                    CommandStep::HealthCheck,
                    host,
                    &node.primary_ip,
                    &[],
                    self.timings.command_timeout,
                )
                .await
                .map_err(|error| error_for(error, host))?;
        }
        Ok(())
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let (mut record, mut node) = self.node(host).await?;
        let hand_over = !enabled && node.is_master && self.cluster_commands.has_master_failover();
        if hand_over {
            // The master cannot be drained, and its reboot takes RAPI down: with a
            // `master_failover` command a master candidate takes the role first (what an
            // operator does before the master's upgrade), then the node drains as any other.
            if !has_tag(&record, TAG_CORDONED) {
                self.node_tags(host, Method::PUT, &[TAG_CORDONED]).await?;
            }
            self.hand_over_master(host).await?;
            (record, node) = self.node(host).await?;
        }
        let tagged = has_tag(&record, TAG_CORDONED);
        let was_candidate = has_tag(&record, TAG_WAS_CANDIDATE);
        if !enabled {
            // Done when the master carries the tag (it cannot be drained), or another node is
            // drained (by Drover, or by an operator: then there is nothing to add).
            let complete = if node.is_master { tagged } else { node.drained };
            if complete {
                return Ok(());
            }
            // Tags first: whatever happens next, they say what Drover is changing.
            let mut tags = Vec::new();
            if !tagged {
                tags.push(TAG_CORDONED);
            }
            if node.is_candidate && !node.is_master && !was_candidate {
                tags.push(TAG_WAS_CANDIDATE);
            }
            self.node_tags(host, Method::PUT, &tags).await?;
            if !node.is_master && !node.drained {
                let path = format!("/2/nodes/{}/role?auto-promote=1", path_segment(host));
                self.job(Method::PUT, &path, Some(&json!("drained")), host)
                    .await?;
            }
            return Ok(());
        }
        if !node.cordoned {
            return Ok(());
        }
        if !tagged && node.drained {
            // Drained by someone else: not Drover's to undo.
            return Err(DriverError::Refused(format!(
                "node {host} was drained outside Drover (no {TAG_CORDONED} tag); undrain it yourself"
            )));
        }
        if node.drained {
            let path = format!("/2/nodes/{}/modify", path_segment(host));
            self.job(Method::POST, &path, Some(&json!({"drained": false})), host)
                .await?;
        }
        let mut tags = vec![TAG_CORDONED];
        if was_candidate {
            tags.push(TAG_WAS_CANDIDATE);
        }
        self.node_tags(host, Method::DELETE, &tags).await
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let (_, node) = self.node(host).await?;
        if node.in_maintenance == enabled {
            return Ok(());
        }
        if !enabled {
            return self
                .node_tags(host, Method::DELETE, &[TAG_MAINTENANCE])
                .await;
        }
        let mut running: Vec<String> = self
            .instances()
            .await?
            .iter()
            .map(instance_view)
            .filter(|instance| instance.primary == host && instance.running)
            .map(|instance| instance.name)
            .collect();
        if !running.is_empty() {
            running.sort();
            return Err(DriverError::Refused(format!(
                "node {host} is still primary of running instances: {}",
                running.join(", ")
            )));
        }
        self.node_tags(host, Method::PUT, &[TAG_MAINTENANCE]).await
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        let instance = self.instance(vm).await?;
        if instance.primary == to && instance.running {
            return Ok(());
        }
        if !instance.running {
            return Err(DriverError::Refused(format!(
                "instance {vm} is not running (status on {}): nothing to migrate live",
                instance.primary
            )));
        }
        let subject = format!("{vm} ({from} → {to})");
        let path_of = |action: &str| format!("/2/instances/{}/{action}", path_segment(vm));
        let (path, body) = match mobility_of(&instance.disk_template) {
            Mobility::Fixed => {
                return Err(DriverError::Refused(format!(
                    "instance {vm} has {} disks on its node: Ganeti can neither migrate nor fail it over",
                    instance.disk_template
                )))
            }
            Mobility::SecondaryOnly => {
                if !instance.secondaries.iter().any(|node| node == to) {
                    return Err(DriverError::Refused(format!(
                        "instance {vm} uses DRBD: it can only move to its secondary node {}, not {to}",
                        instance.secondaries.join(", ")
                    )));
                }
                // Without target_node, a DRBD instance goes to its secondary (OP_INSTANCE_MIGRATE).
                match instance.always_failover {
                    true => (path_of("failover"), json!({})),
                    false => (path_of("migrate"), json!({"mode": "live"})),
                }
            }
            Mobility::AnyNode => match instance.always_failover {
                true => (path_of("failover"), json!({"target_node": to})),
                false => (path_of("migrate"), json!({"mode": "live", "target_node": to})),
            },
        };
        self.job(Method::PUT, &path, Some(&body), &subject).await?;
        let after = self.instance(vm).await?;
        match after.primary == to {
            true => Ok(()),
            false => Err(DriverError::Failed(format!(
                "the job for {vm} succeeded but its primary node is {}, not {to}",
                after.primary
            ))),
        }
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        let instance = self.instance(vm).await?;
        if !instance.running && !instance.admin_up {
            return Ok(ShutdownObserved { forced: false });
        }
        // OP_INSTANCE_SHUTDOWN's `timeout`: seconds before Ganeti powers the instance off.
        let timeout_secs = graceful_timeout.as_secs().max(1);
        let started = Instant::now();
        let path = format!("/2/instances/{}/shutdown", path_segment(vm));
        self.job(
            Method::PUT,
            &path,
            Some(&json!({"timeout": timeout_secs})),
            host,
        )
        .await?;
        // Ganeti does not say whether it had to power off; a shutdown that lasted the whole
        // graceful timeout did.
        Ok(ShutdownObserved {
            forced: started.elapsed() >= Duration::from_secs(timeout_secs),
        })
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        let instance = self.instance(vm).await?;
        if instance.primary != host {
            return Err(DriverError::Refused(format!(
                "instance {vm}'s primary node is {}: Ganeti starts an instance only there, not on {host}",
                instance.primary
            )));
        }
        if instance.running {
            return Ok(());
        }
        let path = format!("/2/instances/{}/startup", path_segment(vm));
        self.job(Method::PUT, &path, None, host).await.map(|_| ())
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        let deadline = Instant::now() + self.timings.upgrade_timeout;
        let (_, node) = self.node(host).await?;
        let forced = self
            .commands
            .upgrade_plan(host)
            .is_some_and(|plan| plan.even_at_target);
        if !self.commands.is_configured(CommandStep::Upgrade) {
            return Err(DriverError::Failed(format!(
                "node {host}: no `upgrade` command in the ganeti section (RAPI installs nothing)"
            )));
        }
        if self.commands.is_configured(CommandStep::HostFacts) && !forced {
            let facts = self.platform_facts(&node, time_left(deadline)).await;
            if matches!(facts, Ok(facts) if facts.version >= *target) {
                return Ok(());
            }
        }
        let values = self.commands.upgrade_values(host, target.as_str());
        self.commands
            .run(
                CommandStep::Upgrade,
                host,
                &node.primary_ip,
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
                "node {host}: no `reboot` command in the ganeti section (RAPI's powercycle needs out-of-band management)"
            )));
        }
        let deadline = Instant::now() + self.timings.reboot_timeout;
        let (_, node) = self.node(host).await?;
        let facts = self.platform_facts(&node, time_left(deadline)).await;
        // A node that does not answer has not been seen rebooted: the command decides.
        let already_rebooted = matches!(&facts, Ok(facts) if facts.boot_id != boot_id_before);
        if !already_rebooted {
            let values = [(Placeholder::BootIdBefore, boot_id_before.to_string())];
            self.commands
                .run(
                    CommandStep::Reboot,
                    host,
                    &node.primary_ip,
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
            "cluster {cluster}: Ganeti has no compatibility level Drover could raise"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_error(classification: &str) -> GanetiError {
        GanetiError::Job {
            job_id: 1,
            status: "error".into(),
            error_type: "OpPrereqError".into(),
            message: "m".into(),
            classification: Some(classification.into()),
        }
    }

    #[test]
    fn ganeti_error_classifications_map_onto_the_driver_contract() {
        assert!(matches!(
            error_for(job_error("unknown_entity"), "x"),
            DriverError::NotFound(_)
        ));
        for refused in ["wrong_state", "wrong_input", "insufficient_resources"] {
            let error = error_for(job_error(refused), "x");
            assert!(
                matches!(&error, DriverError::Refused(text) if text.contains(refused)),
                "{error}"
            );
        }
        assert!(matches!(
            error_for(job_error("internal_error"), "x"),
            DriverError::Failed(_)
        ));
        // A destination's environment failing a prerequisite check (a missing bridge) changed
        // nothing: refused; the same classification while executing is a failure.
        assert!(matches!(
            error_for(job_error("environment_error"), "x"),
            DriverError::Refused(text) if text.contains("environment_error")
        ));
        let mut while_executing = job_error("environment_error");
        if let GanetiError::Job { error_type, .. } = &mut while_executing {
            *error_type = "OpExecError".into();
        }
        assert!(matches!(
            error_for(while_executing, "x"),
            DriverError::Failed(_)
        ));
        let not_found = GanetiError::Http {
            method: "GET".into(),
            path: "/2/nodes/x".into(),
            status: 404,
            message: "Not Found".into(),
        };
        assert!(matches!(
            error_for(not_found, "x"),
            DriverError::NotFound(_)
        ));
        let silent = GanetiError::Transport {
            url: "https://c:5080".into(),
            detail: "connection refused".into(),
        };
        assert!(matches!(
            error_for(silent, "gnt1"),
            DriverError::Unreachable { host, .. } if host == "gnt1"
        ));
        let late = GanetiError::JobTimedOut {
            job_id: 9,
            status: "running".into(),
            waited_secs: 60,
            cancel_answer: "not cancelled: Job 9 is running".into(),
        };
        let error = error_for(late, "x");
        assert!(
            matches!(&error, DriverError::Failed(text) if text.contains("job 9 still running")),
            "{error}"
        );
    }
}
