//! [`KubevirtDriver`]: Drover's calls on a KubeVirt cluster.
//! - cordon = `spec.unschedulable` by merge patch, with the node annotation
//!   [`CORDONED_ANNOTATION`] so that uncordon undoes only a cordon Drover made;
//! - maintenance = cordon, then drain like `kubectl drain` (every pod on the node but DaemonSet
//!   pods, mirror pods and finished pods evicted through the Eviction API, retried while a
//!   disruption budget answers 429, then awaited gone, within `drain_timeout`), refused while a
//!   VMI still runs there (Drover moves or stops VMs first), marked by [`MAINTENANCE_ANNOTATION`];
//! - migrate = a `VirtualMachineInstanceMigration` of the VMI with `spec.addedNodeSelector`
//!   `kubernetes.io/hostname: TARGET` (KubeVirt ≥ 1.3), labelled [`TARGET_LABEL`] so that a new
//!   process finds and follows its own migration instead of starting another, followed through
//!   `status.phase` to Succeeded or Failed with a watch (a poll where the server cannot watch)
//!   and deleted (which aborts it) at `migration_timeout`;
//!   KubeVirt keeps the last five finished migrations of each VMI. Fallback where the server
//!   prunes `addedNodeSelector` (an older KubeVirt): the migration runs where KubeVirt's
//!   scheduler places it (never on a cordoned node), and the call fails with where the VMI
//!   landed when that is not the planned node, so Drover plans again from discovery;
//! - shutdown and start = KubeVirt's `stop` and `start` subresources of the VirtualMachine
//!   (what `virtctl stop`/`start` call), so that the VM stays stopped until Drover starts it
//!   (an eviction would have its VM controller restart it at once elsewhere); shutdowns start at
//!   most `batch_eviction_size` per `batch_eviction_interval`, as OpenShift Virtualization paces
//!   its evictions; the node the VM ran on is kept in the VM annotation
//!   [`LAST_NODE_ANNOTATION`];
//! - upgrade and reboot are command steps (`upgrade_command`, `reboot_command`), awaited (watching
//!   the node, a poll where the server cannot watch) until the node reports the target version
//!   (`osImage`/`kubeletVersion`) or a new `bootID` and is Ready;
//! - or, with `machine_config_pool` set (`node_update: machine-config-pool`), the upgrade is
//!   OpenShift's Machine Config Operator's (`machineconfig`): the emptied node is labelled
//!   [`DROVER_POOL_LABEL`] into Drover's custom pool (created if absent, not paused), with its
//!   boot id kept in [`BOOT_ID_BEFORE_ANNOTATION`], followed (watch, poll fallback, within
//!   `upgrade_timeout`) until its `currentConfig` is the pool's rendered config, its daemon
//!   state `Done`, it is Ready on a new boot id and reports the target, and then labelled back
//!   into the worker pool; a daemon state `Degraded` fails the step with the node's reason and
//!   the pool's `NodeDegraded`/`Degraded` message. A node already at the target is not moved;
//!   a node found in Drover's pool (a new process after a crash) is followed, not moved again.
//!   The worker pool is the blocking setting `machine-config-pool-unpaused` while not paused:
//!   resolving pauses it (marked [`PAUSED_BY_DROVER_ANNOTATION`]), restoring unpauses it only
//!   while Drover's mark is on it;
//! - the HyperConverged resource (`hyperconverged`), where there is one: discovery is refused
//!   while its `Upgradeable` condition is False (the gate: no run starts, no wave begins, and the
//!   refusal names the condition's reason and message), and reports the blocking setting
//!   `workload-update-methods` while `workloadUpdateMethods` is not empty; resolving it saves
//!   the list (journaled by the engine, and in the resource's [`SAVED_METHODS_ANNOTATION`] for a
//!   resolve repeated after a crash) and empties it in one merge patch, restoring puts the saved
//!   list back while the list is still empty (a list someone set during the run is left).
//!
//! This module must not know the engine, stores or the registry.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use drover_command::{
    run_step, ArgvTemplate, Placeholder, PlaceholderValues, RunLimits, StepContext,
};
use drover_core::{PlatformSetting, SettingKind, Version};
use drover_driver::{Discovered, Driver, DriverError, HostFacts, ShutdownObserved};
use futures_core::Stream;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, EvictParams, GroupVersionKind, ListParams,
    Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::{json, Value};

use crate::discovery::{
    self, node_cordoned, node_in_maintenance, node_ready, node_version, split_vm_name,
    CORDONED_ANNOTATION, LAST_NODE_ANNOTATION, MAINTENANCE_ANNOTATION,
};
use crate::hyperconverged::{
    self, empty_methods_patch, methods_of_saved, restore_methods_patch, saved_methods, saved_text,
    workload_update_methods, HYPERCONVERGED_NAME, SAVED_METHODS_ANNOTATION,
};
use crate::machineconfig::{
    drover_pool, node_config, pause_patch, paused_text, pool_condition_message, pool_of_saved,
    pool_paused, pool_rendered_config, pool_selects_node, unpause_patch, BOOT_ID_BEFORE_ANNOTATION,
    DROVER_POOL, DROVER_POOL_LABEL, PAUSED_BY_DROVER_ANNOTATION,
};
use crate::KubevirtError;

/// The label on Drover's migrations naming the node it asked for.
pub const TARGET_LABEL: &str = "drover.io/target-node";
/// The label KubeVirt's migration controller puts on every migration of a VMI.
pub const VMI_NAME_LABEL: &str = "kubevirt.io/vmi-name";
/// Objects listed per request (`limit`; the rest through `continue`).
const LIST_PAGE: u32 = 500;
/// The longest one watch stays open (`timeoutSeconds`; kube-rs' own default is 290 s, under the
/// API server's 5 minutes); the object is read again after each watch, so a watch that ends
/// without news costs one GET.
const WATCH_BOUND: Duration = Duration::from_secs(290);

/// How following one object ended.
enum Followed {
    /// The condition holds: the object as it was then.
    Done(Value),
    /// The object is gone.
    Gone,
    /// The deadline passed: the object as last seen.
    TimedOut(Value),
}

/// The driver's knobs (the `kind: kubevirt` section's numbers).
#[derive(Clone, Debug)]
pub struct KubevirtSettings {
    /// Bound of one API request.
    pub request_timeout: Duration,
    /// A migration still running after this is deleted (aborted).
    pub migration_timeout: Duration,
    /// A drain whose pods are not all gone by then fails.
    pub drain_timeout: Duration,
    /// How long a started VM may take to run, and a stopped one beyond its grace period.
    pub vm_power_timeout: Duration,
    pub upgrade_timeout: Duration,
    pub reboot_timeout: Duration,
    /// How often a migration, VM or node is looked at while Drover waits for it.
    pub poll_interval: Duration,
    /// Shutdowns started per interval (OpenShift Virtualization: 10 per minute).
    pub batch_eviction_size: u32,
    pub batch_eviction_interval: Duration,
    /// Where the HyperConverged resource `kubevirt-hyperconverged` is (`openshift-cnv` on
    /// OpenShift; a cluster without one is plain KubeVirt: no gate, no setting).
    pub hyperconverged_namespace: String,
    /// `Some(worker pool)`: nodes are updated by OpenShift's Machine Config Operator through
    /// Drover's custom MachineConfigPool, the worker pool paused during the roll; `None`: by the
    /// upgrade and reboot commands.
    pub machine_config_pool: Option<String>,
}

impl Default for KubevirtSettings {
    fn default() -> Self {
        KubevirtSettings {
            request_timeout: Duration::from_secs(30),
            // KubeVirt's own bound of a migration stuck pending is 15 minutes.
            migration_timeout: Duration::from_secs(900),
            drain_timeout: Duration::from_secs(600),
            vm_power_timeout: Duration::from_secs(300),
            upgrade_timeout: Duration::from_secs(7200),
            reboot_timeout: Duration::from_secs(1200),
            poll_interval: Duration::from_secs(2),
            batch_eviction_size: 10,
            batch_eviction_interval: Duration::from_secs(60),
            hyperconverged_namespace: hyperconverged::DEFAULT_HYPERCONVERGED_NAMESPACE.to_string(),
            machine_config_pool: None,
        }
    }
}

/// Where the cluster is: a kubeconfig file (and context), or the in-cluster service account.
#[derive(Clone, Debug, Default)]
pub struct KubevirtConnection {
    /// `None`: in-cluster (the pod's service account token and CA).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig's context; `None`: its `current-context`.
    pub context: Option<String>,
}

/// A KubeVirt cluster. Cheap to share behind an `Arc`. The client is made at the first call
/// (reading a kubeconfig may run its credential plugin, which is asynchronous).
pub struct KubevirtDriver {
    connection: KubevirtConnection,
    client: tokio::sync::OnceCell<kube::Client>,
    settings: KubevirtSettings,
    upgrade_command: Option<ArgvTemplate>,
    reboot_command: Option<ArgvTemplate>,
    /// When each recent shutdown started (the batch pacing).
    shutdown_starts: tokio::sync::Mutex<VecDeque<Instant>>,
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn nodes() -> ApiResource {
    resource("", "v1", "Node", "nodes")
}

fn pods() -> ApiResource {
    resource("", "v1", "Pod", "pods")
}

fn vmis() -> ApiResource {
    resource(
        "kubevirt.io",
        "v1",
        "VirtualMachineInstance",
        "virtualmachineinstances",
    )
}

fn vms() -> ApiResource {
    resource("kubevirt.io", "v1", "VirtualMachine", "virtualmachines")
}

fn hyperconvergeds() -> ApiResource {
    resource(
        "hco.kubevirt.io",
        "v1beta1",
        "HyperConverged",
        "hyperconvergeds",
    )
}

fn machine_config_pools() -> ApiResource {
    resource(
        "machineconfiguration.openshift.io",
        "v1",
        "MachineConfigPool",
        "machineconfigpools",
    )
}

fn migrations() -> ApiResource {
    resource(
        "kubevirt.io",
        "v1",
        "VirtualMachineInstanceMigration",
        "virtualmachineinstancemigrations",
    )
}

/// A Kubernetes error as a driver error: 404 is `NotFound`; what the API or an admission
/// webhook refuses (403, 409, 422, 429) is `Refused`; anything else `Failed`.
fn driver_error(error: kube::Error, subject: &str) -> DriverError {
    match error {
        kube::Error::Api(status) => match status.code {
            404 => DriverError::NotFound(format!("{subject}: {}", status.message)),
            403 | 409 | 422 | 429 => DriverError::Refused(format!("{subject}: {}", status.message)),
            code => DriverError::Failed(format!(
                "{subject}: Kubernetes API answered {code} {}: {}",
                status.reason, status.message
            )),
        },
        other => DriverError::Failed(format!("{subject}: Kubernetes API: {other}")),
    }
}

fn to_value(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut current = value;
    for part in path {
        current = &current[*part];
    }
    current.as_str().unwrap_or("")
}

impl KubevirtDriver {
    pub fn new(
        connection: KubevirtConnection,
        settings: KubevirtSettings,
        upgrade_command: Option<ArgvTemplate>,
        reboot_command: Option<ArgvTemplate>,
    ) -> KubevirtDriver {
        KubevirtDriver {
            connection,
            client: tokio::sync::OnceCell::new(),
            settings,
            upgrade_command,
            reboot_command,
            shutdown_starts: tokio::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// Makes the client from the connection.
    pub async fn connect(
        connection: &KubevirtConnection,
        request_timeout: Duration,
    ) -> Result<kube::Client, KubevirtError> {
        let mut config = match &connection.kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|error| {
                    KubevirtError::Config(format!("{}: {error}", path.display()))
                })?;
                let options = kube::config::KubeConfigOptions {
                    context: connection.context.clone(),
                    ..Default::default()
                };
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|error| {
                        KubevirtError::Config(format!("{}: {error}", path.display()))
                    })?
            }
            None => kube::Config::incluster()
                .map_err(|error| KubevirtError::Config(format!("in-cluster: {error}")))?,
        };
        config.connect_timeout = Some(request_timeout);
        config.read_timeout = Some(request_timeout);
        config.write_timeout = Some(request_timeout);
        kube::Client::try_from(config).map_err(|error| KubevirtError::Config(error.to_string()))
    }

    async fn client(&self) -> Result<kube::Client, DriverError> {
        self.client
            .get_or_try_init(|| Self::connect(&self.connection, self.settings.request_timeout))
            .await
            .cloned()
            .map_err(|error| DriverError::Failed(error.to_string()))
    }

    async fn all(&self, api_resource: &ApiResource) -> Result<Api<DynamicObject>, DriverError> {
        Ok(Api::all_with(self.client().await?, api_resource))
    }

    async fn namespaced(
        &self,
        namespace: &str,
        api_resource: &ApiResource,
    ) -> Result<Api<DynamicObject>, DriverError> {
        Ok(Api::namespaced_with(
            self.client().await?,
            namespace,
            api_resource,
        ))
    }

    async fn get(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        subject: &str,
    ) -> Result<Option<Value>, DriverError> {
        match api.get_opt(name).await {
            Ok(object) => Ok(object.as_ref().map(to_value)),
            Err(error) => Err(driver_error(error, subject)),
        }
    }

    async fn list(
        &self,
        api: &Api<DynamicObject>,
        params: ListParams,
        subject: &str,
    ) -> Result<Vec<Value>, DriverError> {
        let mut items = Vec::new();
        let mut params = params.limit(LIST_PAGE);
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(|error| driver_error(error, subject))?;
            items.extend(page.items.iter().map(to_value));
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(items),
            }
        }
    }

    async fn node(&self, host: &str) -> Result<Value, DriverError> {
        self.get(&self.all(&nodes()).await?, host, &format!("node {host}"))
            .await?
            .ok_or_else(|| DriverError::NotFound(format!("node {host}")))
    }

    async fn patch_node(&self, host: &str, patch: Value) -> Result<(), DriverError> {
        self.all(&nodes())
            .await?
            .patch(host, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|error| driver_error(error, &format!("node {host}")))
    }

    async fn vmi(&self, vm: &str) -> Result<Option<Value>, DriverError> {
        let (namespace, name) = split_vm_name(vm);
        self.get(
            &self.namespaced(namespace, &vmis()).await?,
            name,
            &format!("VMI {vm}"),
        )
        .await
    }

    /// The HyperConverged resource, `None` where there is none (plain KubeVirt: the resource
    /// or its kind does not exist).
    async fn hyperconverged(&self) -> Result<Option<Value>, DriverError> {
        let namespace = &self.settings.hyperconverged_namespace;
        self.get(
            &self.namespaced(namespace, &hyperconvergeds()).await?,
            HYPERCONVERGED_NAME,
            &format!("HyperConverged {namespace}/{HYPERCONVERGED_NAME}"),
        )
        .await
    }

    async fn patch_hyperconverged(&self, patch: Value) -> Result<(), DriverError> {
        let namespace = &self.settings.hyperconverged_namespace;
        self.namespaced(namespace, &hyperconvergeds())
            .await?
            .patch(
                HYPERCONVERGED_NAME,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
            .map_err(|error| {
                driver_error(
                    error,
                    &format!("HyperConverged {namespace}/{HYPERCONVERGED_NAME}"),
                )
            })
    }

    /// Saves and empties `workloadUpdateMethods`; answers the saved text (empty when someone
    /// else emptied the list: nothing for Drover to put back).
    async fn empty_workload_update_methods(&self) -> Result<String, DriverError> {
        let namespace = &self.settings.hyperconverged_namespace;
        let Some(resource) = self.hyperconverged().await? else {
            return Err(DriverError::NotFound(format!(
                "HyperConverged {namespace}/{HYPERCONVERGED_NAME}"
            )));
        };
        let methods = workload_update_methods(&resource);
        if methods.is_empty() {
            // Emptied by an earlier resolve of this run (its annotation says what it saved),
            // or by someone else (nothing to put back).
            return Ok(saved_methods(&resource)
                .map(|methods| saved_text(&methods))
                .unwrap_or_default());
        }
        self.patch_hyperconverged(empty_methods_patch(&methods))
            .await?;
        Ok(saved_text(&methods))
    }

    /// Puts the saved `workloadUpdateMethods` back while the list is still empty.
    async fn restore_workload_update_methods(&self, saved: &str) -> Result<(), DriverError> {
        if saved.is_empty() {
            return Ok(());
        }
        let methods = methods_of_saved(saved).map_err(DriverError::Failed)?;
        let namespace = &self.settings.hyperconverged_namespace;
        let Some(resource) = self.hyperconverged().await? else {
            return Err(DriverError::NotFound(format!(
                "HyperConverged {namespace}/{HYPERCONVERGED_NAME}"
            )));
        };
        let current = workload_update_methods(&resource);
        let annotated = !resource["metadata"]["annotations"][SAVED_METHODS_ANNOTATION].is_null();
        if current == methods && !annotated {
            return Ok(());
        }
        let put_back = if current.is_empty() {
            Some(methods.as_slice())
        } else {
            if current != methods {
                tracing::warn!(
                    ?current,
                    saved = ?methods,
                    "kubevirt: workloadUpdateMethods were set during the run; Drover leaves them"
                );
            }
            None
        };
        self.patch_hyperconverged(restore_methods_patch(put_back))
            .await
    }

    async fn machine_config_pool(&self, name: &str) -> Result<Option<Value>, DriverError> {
        self.get(
            &self.all(&machine_config_pools()).await?,
            name,
            &format!("MachineConfigPool {name}"),
        )
        .await
    }

    async fn patch_machine_config_pool(&self, name: &str, patch: Value) -> Result<(), DriverError> {
        self.all(&machine_config_pools())
            .await?
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|error| driver_error(error, &format!("MachineConfigPool {name}")))
    }

    /// The worker pool of `node_update: machine-config-pool` (`NotFound` when the cluster has
    /// none: no Machine Config Operator, not OpenShift).
    async fn worker_pool(&self, worker: &str) -> Result<Value, DriverError> {
        self.machine_config_pool(worker).await?.ok_or_else(|| {
            DriverError::NotFound(format!(
                "MachineConfigPool {worker} (node_update: machine-config-pool needs OpenShift's Machine Config Operator)"
            ))
        })
    }

    /// Pauses the worker pool; answers the saved text (empty when someone else paused it:
    /// nothing for Drover to unpause).
    async fn pause_worker_pool(&self) -> Result<String, DriverError> {
        let Some(worker) = self.settings.machine_config_pool.clone() else {
            return Err(DriverError::Refused(
                "machine-config-pool-unpaused: this kubevirt driver updates nodes by commands (node_update: commands)".into(),
            ));
        };
        let pool = self.worker_pool(&worker).await?;
        if pool_paused(&pool) {
            // Paused by an earlier resolve of this run (its mark says so), or by someone else
            // (the EUS-to-EUS procedure's own pause: theirs to lift).
            let ours = !pool["metadata"]["annotations"][PAUSED_BY_DROVER_ANNOTATION].is_null();
            return Ok(if ours {
                paused_text(&worker)
            } else {
                String::new()
            });
        }
        self.patch_machine_config_pool(&worker, pause_patch())
            .await?;
        Ok(paused_text(&worker))
    }

    /// Unpauses the pool a saved text names while Drover's mark is on it.
    async fn unpause_worker_pool(&self, saved: &str) -> Result<(), DriverError> {
        if saved.is_empty() {
            return Ok(());
        }
        let worker = pool_of_saved(saved).map_err(DriverError::Failed)?;
        let pool = self.worker_pool(&worker).await?;
        if pool["metadata"]["annotations"][PAUSED_BY_DROVER_ANNOTATION].is_null() {
            // Already restored (a restore repeated after a crash), or the mark was taken off.
            return Ok(());
        }
        let unpause = pool_paused(&pool);
        if !unpause {
            tracing::warn!(
                pool = worker,
                "kubevirt: the MachineConfigPool was unpaused during the run; Drover leaves it"
            );
        }
        self.patch_machine_config_pool(&worker, unpause_patch(unpause))
            .await
    }

    /// Drover's custom pool, created when absent (an `AlreadyExists` from a concurrent creation
    /// of another node's step is the pool).
    async fn ensure_drover_pool(&self, worker: &str) -> Result<Value, DriverError> {
        if let Some(pool) = self.machine_config_pool(DROVER_POOL).await? {
            return Ok(pool);
        }
        let request: DynamicObject = serde_json::from_value(drover_pool(worker))
            .map_err(|error| DriverError::Failed(error.to_string()))?;
        match self
            .all(&machine_config_pools())
            .await?
            .create(&PostParams::default(), &request)
            .await
        {
            Ok(created) => Ok(to_value(&created)),
            Err(kube::Error::Api(status)) if status.code == 409 => self
                .machine_config_pool(DROVER_POOL)
                .await?
                .ok_or_else(|| DriverError::NotFound(format!("MachineConfigPool {DROVER_POOL}"))),
            Err(error) => Err(driver_error(
                error,
                &format!("MachineConfigPool {DROVER_POOL}"),
            )),
        }
    }

    /// The node's update by the Machine Config Operator (the module's doc says how).
    async fn update_through_pool(
        &self,
        host: &str,
        target: &Version,
        worker: &str,
    ) -> Result<(), DriverError> {
        let node = self.node(host).await?;
        let in_drover_pool = !node["metadata"]["labels"][DROVER_POOL_LABEL].is_null();
        let at_target = |node: &Value| node_version(node).is_some_and(|version| version >= *target);
        if at_target(&node) && !in_drover_pool {
            // Nothing for the operator to do: the node only has to be Ready.
            return self
                .follow_node(host, self.settings.upgrade_timeout, node_ready)
                .await
                .map_err(|problem| {
                    DriverError::Failed(format!(
                        "node {host} runs {target} but is not Ready {problem}"
                    ))
                });
        }
        if !in_drover_pool {
            let worker_pool = self.worker_pool(worker).await?;
            if !pool_selects_node(&worker_pool, &node) {
                return Err(DriverError::Refused(format!(
                    "node {host} is not a machine of MachineConfigPool {worker}: Drover moves only worker nodes through the Machine Config Operator (control-plane nodes are updated by the cluster's own update)"
                )));
            }
        }
        let pool = self.ensure_drover_pool(worker).await?;
        if pool_paused(&pool) {
            return Err(DriverError::Refused(format!(
                "MachineConfigPool {DROVER_POOL} is paused: unpause it (spec.paused: false) for Drover to update node {host}"
            )));
        }
        let boot_id_before = if in_drover_pool {
            // Moved by an earlier process: follow its update, do not start another.
            text(
                &node,
                &["metadata", "annotations", BOOT_ID_BEFORE_ANNOTATION],
            )
            .to_string()
        } else {
            let boot_id = text(&node, &["status", "nodeInfo", "bootID"]).to_string();
            self.patch_node(
                host,
                json!({"metadata": {"labels": {DROVER_POOL_LABEL: ""},
                    "annotations": {BOOT_ID_BEFORE_ANNOTATION: boot_id}}}),
            )
            .await?;
            boot_id
        };
        // The pool's rendered config is read once the node is in it; the controller may render
        // the custom pool's first config only now.
        let deadline = Instant::now() + self.settings.upgrade_timeout;
        let rendered = loop {
            let pool = self
                .machine_config_pool(DROVER_POOL)
                .await?
                .ok_or_else(|| DriverError::NotFound(format!("MachineConfigPool {DROVER_POOL}")))?;
            let rendered = pool_rendered_config(&pool).to_string();
            if !rendered.is_empty() {
                break rendered;
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Failed(format!(
                    "MachineConfigPool {DROVER_POOL} has no rendered config (spec.configuration) after {} s",
                    self.settings.upgrade_timeout.as_secs()
                )));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        };
        let finished = |node: &Value| {
            let config = node_config(node);
            config.state == "Degraded"
                || (config.current == rendered
                    && config.state == "Done"
                    && node_ready(node)
                    && text(node, &["status", "nodeInfo", "bootID"]) != boot_id_before)
        };
        let api = self.all(&nodes()).await?;
        let followed = self
            .follow(&api, host, &format!("node {host}"), deadline, finished)
            .await?;
        let node = match followed {
            Followed::Done(node) => node,
            Followed::Gone => return Err(DriverError::NotFound(format!("node {host}"))),
            Followed::TimedOut(node) => {
                let config = node_config(&node);
                return Err(DriverError::Failed(format!(
                    "node {host} was not updated by MachineConfigPool {DROVER_POOL} within {} s (last seen: currentConfig {}, desiredConfig {}, state {}, boot id {}, Ready {}; the pool's rendered config {rendered}): it stays in the pool",
                    self.settings.upgrade_timeout.as_secs(),
                    config.current,
                    config.desired,
                    config.state,
                    text(&node, &["status", "nodeInfo", "bootID"]),
                    node_ready(&node)
                )));
            }
        };
        let config = node_config(&node);
        // Back to the worker pool in every outcome: a retry moves it in again, which is a
        // new attempt of the Machine Config Operator.
        let back = json!({"metadata": {"labels": {DROVER_POOL_LABEL: null},
            "annotations": {BOOT_ID_BEFORE_ANNOTATION: null}}});
        if config.state == "Degraded" {
            let pool = self
                .machine_config_pool(DROVER_POOL)
                .await?
                .unwrap_or_default();
            let pool_message = pool_condition_message(&pool, &["NodeDegraded", "Degraded"])
                .unwrap_or_else(|| "no Degraded condition".into());
            self.patch_node(host, back).await?;
            return Err(DriverError::Failed(format!(
                "node {host}: the Machine Config Operator reports it Degraded updating to {rendered}: {} (MachineConfigPool {DROVER_POOL} {pool_message}); moved back to MachineConfigPool {worker}",
                config.reason
            )));
        }
        self.patch_node(host, back).await?;
        if !at_target(&node) {
            return Err(DriverError::Failed(format!(
                "node {host} runs {} after MachineConfigPool {DROVER_POOL}'s rendered config {rendered}, not the target {target}: the cluster's update has not rendered the target's config yet",
                node_version(&node)
                    .map(|version| version.to_string())
                    .unwrap_or_default()
            )));
        }
        Ok(())
    }

    fn running_on(vmi: &Option<Value>) -> Option<String> {
        vmi.as_ref()
            .filter(|vmi| text(vmi, &["status", "phase"]) == "Running")
            .map(|vmi| text(vmi, &["status", "nodeName"]).to_string())
    }

    /// Follows object `name` of `api` until `done` holds, it is gone, or `deadline` passes: it is
    /// read, then watched (`?watch=true&fieldSelector=metadata.name=NAME` from its
    /// `resourceVersion`, each watch bounded by [`WATCH_BOUND`], the deadline and the request
    /// timeout, so the client's read timeout never ends a quiet watch), and read again whenever a
    /// watch ends. A watch the server refuses or breaks is replaced by a poll every
    /// `poll_interval` (the fallback), so a server without watches is still followed.
    async fn follow(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        subject: &str,
        deadline: Instant,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Followed, DriverError> {
        loop {
            let Some(object) = self.get(api, name, subject).await? else {
                return Ok(Followed::Gone);
            };
            if done(&object) {
                return Ok(Followed::Done(object));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Followed::TimedOut(object));
            }
            let bound = (deadline - now).min(WATCH_BOUND).min(
                self.settings
                    .request_timeout
                    .saturating_sub(Duration::from_secs(1)),
            );
            let version = text(&object, &["metadata", "resourceVersion"]).to_string();
            let params = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(bound.as_secs().max(1) as u32);
            // `true`: the watch saw the object done or gone, read it now; `false`: the watch
            // ended without news, failed or was refused (also a 410 for a version the server
            // no longer has): read it again after `poll_interval`, the poll fallback.
            let news = tokio::time::timeout(bound + Duration::from_secs(1), async {
                let Ok(stream) = api.watch(&params, &version).await else {
                    return false;
                };
                let mut stream = std::pin::pin!(stream);
                while let Some(event) =
                    std::future::poll_fn(|context| stream.as_mut().poll_next(context)).await
                {
                    match event {
                        Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                            if done(&to_value(&object)) {
                                return true;
                            }
                        }
                        Ok(WatchEvent::Deleted(_)) => return true,
                        Ok(WatchEvent::Bookmark(_)) => {}
                        Ok(WatchEvent::Error(_)) | Err(_) => return false,
                    }
                }
                false
            })
            .await;
            if !matches!(news, Ok(true)) {
                tokio::time::sleep(self.settings.poll_interval).await;
            }
        }
    }

    /// Follows node `host` until `done` holds, within `timeout`; `Err` with what it last saw.
    async fn follow_node(
        &self,
        host: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<(), String> {
        let api = self
            .all(&nodes())
            .await
            .map_err(|error| error.to_string())?;
        let followed = self
            .follow(
                &api,
                host,
                &format!("node {host}"),
                Instant::now() + timeout,
                done,
            )
            .await;
        match followed {
            Ok(Followed::Done(_)) => Ok(()),
            Ok(Followed::Gone) => Err(format!("(node {host} is gone)")),
            Ok(Followed::TimedOut(node)) => Err(format!(
                "(last seen: version {}, boot id {}, Ready {})",
                node_version(&node)
                    .map(|version| version.to_string())
                    .unwrap_or_default(),
                text(&node, &["status", "nodeInfo", "bootID"]),
                node_ready(&node)
            )),
            Err(error) => Err(error.to_string()),
        }
    }

    /// Waits until `check` says done, polling; `Err` with the last state at `timeout`.
    async fn wait_until<F, Fut>(&self, timeout: Duration, mut check: F) -> Result<(), String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, DriverError>>,
    {
        let deadline = Instant::now() + timeout;
        let mut last_problem = String::new();
        loop {
            match check().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(problem) => last_problem = problem.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(last_problem);
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// Waits for a shutdown slot: at most `batch_eviction_size` per `batch_eviction_interval`.
    async fn pace_shutdown(&self) {
        let size = self.settings.batch_eviction_size.max(1) as usize;
        loop {
            let wait = {
                let mut starts = self.shutdown_starts.lock().await;
                let now = Instant::now();
                while starts.front().is_some_and(|start| {
                    now.duration_since(*start) >= self.settings.batch_eviction_interval
                }) {
                    starts.pop_front();
                }
                if starts.len() < size {
                    starts.push_back(now);
                    return;
                }
                starts
                    .front()
                    .map(|first| self.settings.batch_eviction_interval - now.duration_since(*first))
                    .unwrap_or_default()
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn vm_subresource(&self, vm: &str, action: &str) -> Result<(), DriverError> {
        let (namespace, name) = split_vm_name(vm);
        let path = format!(
            "/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachines/{name}/{action}"
        );
        let request = http::Request::put(path)
            .header("Content-Type", "application/json")
            .body(b"{}".to_vec())
            .map_err(|error| DriverError::Failed(error.to_string()))?;
        self.client()
            .await?
            .request_text(request)
            .await
            .map(|_| ())
            .map_err(|error| driver_error(error, &format!("VM {vm} {action}")))
    }

    /// Evicts the pods of a node as `kubectl drain` does, and waits until they are gone.
    async fn drain(&self, host: &str) -> Result<(), DriverError> {
        let on_node = ListParams::default().fields(&format!("spec.nodeName={host}"));
        let pods_on_node = self
            .list(
                &self.all(&pods()).await?,
                on_node,
                &format!("pods on {host}"),
            )
            .await?;
        let evictable: Vec<(String, String, String)> = pods_on_node
            .iter()
            .filter(|pod| {
                let owner = &pod["metadata"]["ownerReferences"];
                let daemon = owner.as_array().into_iter().flatten().any(|reference| {
                    reference["kind"] == "DaemonSet" && reference["controller"] == true
                });
                let mirror =
                    !pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_null();
                let finished = matches!(text(pod, &["status", "phase"]), "Succeeded" | "Failed");
                !daemon && !mirror && !finished
            })
            .map(|pod| {
                (
                    text(pod, &["metadata", "namespace"]).to_string(),
                    text(pod, &["metadata", "name"]).to_string(),
                    text(pod, &["metadata", "uid"]).to_string(),
                )
            })
            .collect();
        let deadline = Instant::now() + self.settings.drain_timeout;
        for (namespace, name, _) in &evictable {
            let api: Api<Pod> = Api::namespaced(self.client().await?, namespace);
            loop {
                match api.evict(name, &EvictParams::default()).await {
                    Ok(_) => break,
                    Err(kube::Error::Api(status)) if status.code == 404 => break,
                    // A disruption budget forbids it for now: kubectl drain retries every 5 s.
                    Err(kube::Error::Api(status)) if status.code == 429 => {
                        if Instant::now() >= deadline {
                            return Err(DriverError::Failed(format!(
                                "drain of {host}: pod {namespace}/{name} could not be evicted within {} s: {}",
                                self.settings.drain_timeout.as_secs(),
                                status.message
                            )));
                        }
                        tokio::time::sleep(self.settings.poll_interval).await;
                    }
                    Err(error) => {
                        return Err(driver_error(
                            error,
                            &format!("eviction of pod {namespace}/{name}"),
                        ))
                    }
                }
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.wait_until(remaining, || async {
            for (namespace, name, uid) in &evictable {
                let still = self
                    .get(&self.namespaced(namespace, &pods()).await?, name, "pod")
                    .await?
                    .is_some_and(|pod| text(&pod, &["metadata", "uid"]) == uid);
                if still {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
        .map_err(|_| {
            DriverError::Failed(format!(
                "drain of {host}: evicted pods still there after {} s",
                self.settings.drain_timeout.as_secs()
            ))
        })
    }

    /// The migration Drover started for `name` towards `to` and that still runs, if any, and
    /// any other migration of it that still runs.
    async fn running_migrations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<Value>, DriverError> {
        let selector = ListParams::default().labels(&format!("{VMI_NAME_LABEL}={name}"));
        let all = self
            .list(
                &self.namespaced(namespace, &migrations()).await?,
                selector,
                &format!("migrations of {namespace}/{name}"),
            )
            .await?;
        Ok(all
            .into_iter()
            .filter(|migration| {
                !matches!(
                    text(migration, &["status", "phase"]),
                    "Succeeded" | "Failed"
                )
            })
            .collect())
    }

    async fn run_command(
        &self,
        step: &str,
        template: &ArgvTemplate,
        host: &str,
        target: Option<&Version>,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let mut values = PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(Placeholder::HostAddress, host);
        if let Some(target) = target {
            values = values.with(Placeholder::Target, target.to_string());
        }
        let context = StepContext::new(step, format!("host {host}"));
        let failed = |error: drover_command::CommandError| DriverError::Failed(error.to_string());
        let argv = template.render(&context, &values).map_err(failed)?;
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
impl Driver for KubevirtDriver {
    fn kind(&self) -> &'static str {
        "kubevirt"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        let nodes = self
            .list(&self.all(&nodes()).await?, ListParams::default(), "nodes")
            .await?;
        let vmis = self
            .list(&self.all(&vmis()).await?, ListParams::default(), "VMIs")
            .await?;
        let vms = self
            .list(&self.all(&vms()).await?, ListParams::default(), "VMs")
            .await?;
        let mut discovered = discovery::discover(&nodes, &vmis, &vms);
        let mut settings = Vec::new();
        if let Some(worker) = &self.settings.machine_config_pool {
            if !pool_paused(&self.worker_pool(worker).await?) {
                settings.push(PlatformSetting::pool(
                    SettingKind::MachineConfigPoolUnpaused,
                ));
            }
        }
        if let Some(resource) = self.hyperconverged().await? {
            hyperconverged::upgradeable_gate(&resource, &self.settings.hyperconverged_namespace)
                .map_err(DriverError::Refused)?;
            if !workload_update_methods(&resource).is_empty() {
                settings.push(PlatformSetting::pool(SettingKind::WorkloadUpdateMethods));
            }
        }
        discovered.settings = Some(settings);
        Ok(discovered)
    }

    async fn resolve_setting(&self, setting: &PlatformSetting) -> Result<String, DriverError> {
        match setting.kind {
            SettingKind::WorkloadUpdateMethods => self.empty_workload_update_methods().await,
            SettingKind::MachineConfigPoolUnpaused => self.pause_worker_pool().await,
            _ => Err(DriverError::Refused(format!(
                "{}: KubeVirt clusters have no such setting",
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
            SettingKind::WorkloadUpdateMethods => self.restore_workload_update_methods(saved).await,
            SettingKind::MachineConfigPoolUnpaused => self.unpause_worker_pool(saved).await,
            _ => Err(DriverError::Refused(format!(
                "{}: KubeVirt clusters have no such setting",
                setting.label()
            ))),
        }
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        let node = self.node(host).await?;
        Ok(HostFacts {
            version: node_version(&node).ok_or_else(|| {
                DriverError::Failed(format!("node {host} reports no version in nodeInfo"))
            })?,
            boot_id: text(&node, &["status", "nodeInfo", "bootID"]).to_string(),
            in_maintenance: node_in_maintenance(&node),
            cordoned: node_cordoned(&node),
        })
    }

    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        let node = self.node(host).await?;
        if node_ready(&node) {
            Ok(())
        } else {
            Err(DriverError::Failed(format!("node {host} is not Ready")))
        }
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let node = self.node(host).await?;
        let cordoned = node_cordoned(&node);
        let ours = node["metadata"]["annotations"][CORDONED_ANNOTATION] == "true";
        match (enabled, cordoned) {
            (false, true) => Ok(()),
            (false, false) => {
                self.patch_node(
                    host,
                    json!({"metadata": {"annotations": {CORDONED_ANNOTATION: "true"}},
                        "spec": {"unschedulable": true}}),
                )
                .await
            }
            // Someone else's cordon stays: Drover restores only what it changed.
            (true, true) if !ours => Ok(()),
            (true, true) => {
                self.patch_node(
                    host,
                    json!({"metadata": {"annotations": {CORDONED_ANNOTATION: null}},
                        "spec": {"unschedulable": null}}),
                )
                .await
            }
            (true, false) if ours => {
                self.patch_node(
                    host,
                    json!({"metadata": {"annotations": {CORDONED_ANNOTATION: null}}}),
                )
                .await
            }
            (true, false) => Ok(()),
        }
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        let node = self.node(host).await?;
        if node_in_maintenance(&node) == enabled {
            return Ok(());
        }
        if !enabled {
            self.patch_node(
                host,
                json!({"metadata": {"annotations": {MAINTENANCE_ANNOTATION: null}}}),
            )
            .await?;
            return self.set_allocation(host, true).await;
        }
        self.set_allocation(host, false).await?;
        let vmis = self
            .list(&self.all(&vmis()).await?, ListParams::default(), "VMIs")
            .await?;
        let running: Vec<String> = vmis
            .iter()
            .filter(|vmi| Self::running_on(&Some((*vmi).clone())).as_deref() == Some(host))
            .map(|vmi| {
                discovery::vm_name(
                    text(vmi, &["metadata", "namespace"]),
                    text(vmi, &["metadata", "name"]),
                )
            })
            .collect();
        if !running.is_empty() {
            return Err(DriverError::Refused(format!(
                "node {host} still runs VMIs {}: move or stop them first",
                running.join(", ")
            )));
        }
        self.drain(host).await?;
        self.patch_node(
            host,
            json!({"metadata": {"annotations": {MAINTENANCE_ANNOTATION: "true"}}}),
        )
        .await
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        let (namespace, name) = split_vm_name(vm);
        let vmi = self.vmi(vm).await?;
        let Some(node) = Self::running_on(&vmi) else {
            return Err(if vmi.is_none() {
                DriverError::NotFound(format!("VMI {vm}"))
            } else {
                DriverError::Refused(format!("VMI {vm} is not running"))
            });
        };
        if node == to {
            return Ok(());
        }
        let in_flight = self.running_migrations(namespace, name).await?;
        let ours = in_flight
            .iter()
            .find(|migration| migration["metadata"]["labels"][TARGET_LABEL] == to);
        let migration_name = match ours {
            // A new process follows the migration an earlier one started.
            Some(migration) => text(migration, &["metadata", "name"]).to_string(),
            None if !in_flight.is_empty() => {
                return Err(DriverError::Refused(format!(
                    "another migration of {vm} is in progress: {}",
                    text(&in_flight[0], &["metadata", "name"])
                )))
            }
            None if node != from => {
                return Err(DriverError::Refused(format!(
                    "VMI {vm} runs on {node}, not on {from}"
                )))
            }
            None => {
                let request: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachineInstanceMigration",
                    "metadata": {"generateName": "drover-", "namespace": namespace,
                        "labels": {TARGET_LABEL: to}},
                    "spec": {"vmiName": name,
                        "addedNodeSelector": {"kubernetes.io/hostname": to}},
                }))
                .map_err(|error| DriverError::Failed(error.to_string()))?;
                let created = self
                    .namespaced(namespace, &migrations())
                    .await?
                    .create(&PostParams::default(), &request)
                    .await
                    .map_err(|error| driver_error(error, &format!("migration of {vm}")))?;
                if to_value(&created)["spec"]["addedNodeSelector"].is_null() {
                    tracing::warn!(
                        vm,
                        to,
                        "the server pruned spec.addedNodeSelector (KubeVirt before 1.3): the VMI goes where KubeVirt places it"
                    );
                }
                created.metadata.name.unwrap_or_default()
            }
        };
        let api = self.namespaced(namespace, &migrations()).await?;
        let deadline = Instant::now() + self.settings.migration_timeout;
        let finished = |migration: &Value| {
            matches!(
                text(migration, &["status", "phase"]),
                "Succeeded" | "Failed"
            )
        };
        let followed = self
            .follow(
                &api,
                &migration_name,
                &format!("migration {migration_name}"),
                deadline,
                finished,
            )
            .await?;
        let migration = match followed {
            Followed::Done(migration) => migration,
            Followed::Gone => {
                return Err(DriverError::Failed(format!(
                    "migration {migration_name} of {vm} was deleted before it finished"
                )))
            }
            Followed::TimedOut(_) => {
                // Deleting a running migration aborts it (KubeVirt's cancellation).
                let _ = api.delete(&migration_name, &DeleteParams::default()).await;
                return Err(DriverError::Failed(format!(
                    "migration {migration_name} of {vm} did not finish within its timeout ({} s): deleted (aborted)",
                    self.settings.migration_timeout.as_secs()
                )));
            }
        };
        if text(&migration, &["status", "phase"]) == "Succeeded" {
            let landed = Self::running_on(&self.vmi(vm).await?).unwrap_or_default();
            return if landed == to {
                Ok(())
            } else {
                Err(DriverError::Failed(format!(
                    "migration {migration_name} moved {vm} to {landed}, not to {to}"
                )))
            };
        }
        let reason = text(&migration, &["status", "migrationState", "failureReason"]);
        let message = format!("migration {migration_name} of {vm} to {to} failed: {reason}");
        Err(if reason.contains("unschedulable") {
            DriverError::Refused(message)
        } else {
            DriverError::Failed(message)
        })
    }

    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        let (namespace, name) = split_vm_name(vm);
        if Self::running_on(&self.vmi(vm).await?).is_none() {
            return Ok(ShutdownObserved { forced: false });
        }
        self.pace_shutdown().await;
        self.namespaced(namespace, &vms())
            .await?
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"annotations": {LAST_NODE_ANNOTATION: host}}})),
            )
            .await
            .map_err(|error| driver_error(error, &format!("VM {vm}")))?;
        match self.vm_subresource(vm, "stop").await {
            // Already stopping or stopped: the wait below tells.
            Ok(()) | Err(DriverError::Refused(_)) => {}
            Err(other) => return Err(other),
        }
        self.wait_until(
            graceful_timeout + self.settings.vm_power_timeout,
            || async { Ok(Self::running_on(&self.vmi(vm).await?).is_none()) },
        )
        .await
        .map_err(|problem| {
            DriverError::Failed(format!("VM {vm} still runs after its stop {problem}"))
        })?;
        Ok(ShutdownObserved { forced: false })
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        if Self::running_on(&self.vmi(vm).await?).is_some() {
            return Ok(());
        }
        match self.vm_subresource(vm, "start").await {
            Ok(()) | Err(DriverError::Refused(_)) => {}
            Err(other) => return Err(other),
        }
        self.wait_until(self.settings.vm_power_timeout, || async {
            Ok(Self::running_on(&self.vmi(vm).await?).is_some())
        })
        .await
        .map_err(|problem| {
            DriverError::Failed(format!("VM {vm} does not run after its start {problem}"))
        })?;
        let landed = Self::running_on(&self.vmi(vm).await?).unwrap_or_default();
        if landed != host {
            // KubeVirt's scheduler places a started VM; Drover's next discovery shows where.
            tracing::info!(vm, host, landed, "the VM started on another node");
        }
        Ok(())
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        if let Some(worker) = self.settings.machine_config_pool.clone() {
            return self.update_through_pool(host, target, &worker).await;
        }
        let at_target = |node: &Value| node_version(node).is_some_and(|version| version >= *target);
        if at_target(&self.node(host).await?) {
            return Ok(());
        }
        let Some(template) = &self.upgrade_command else {
            return Err(DriverError::Refused(format!(
                "node {host}: no upgrade_command in the kubevirt section (the node's upgrade is a command step; or run in manual mode)"
            )));
        };
        self.run_command(
            "upgrade",
            template,
            host,
            Some(target),
            self.settings.upgrade_timeout,
        )
        .await?;
        self.follow_node(host, self.settings.upgrade_timeout, |node| {
            at_target(node) && node_ready(node)
        })
        .await
        .map_err(|problem| {
            DriverError::Failed(format!(
                "node {host} does not report {target} after its upgrade {problem}"
            ))
        })
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        let booted = |node: &Value| text(node, &["status", "nodeInfo", "bootID"]) != boot_id_before;
        if booted(&self.node(host).await?) {
            return Ok(());
        }
        let Some(template) = &self.reboot_command else {
            return Err(DriverError::Refused(format!(
                "node {host}: no reboot_command in the kubevirt section"
            )));
        };
        self.run_command("reboot", template, host, None, self.settings.reboot_timeout)
            .await?;
        self.follow_node(host, self.settings.reboot_timeout, |node| {
            booted(node) && node_ready(node)
        })
        .await
        .map_err(|problem| DriverError::Unreachable {
            host: host.to_string(),
            detail: format!("no new boot within the reboot timeout {problem}"),
        })
    }

    async fn set_compatibility_level(&self, cluster: &str, level: &str) -> Result<(), DriverError> {
        Err(DriverError::Refused(format!(
            "cluster {cluster}: Kubernetes has no cluster compatibility level (asked for {level})"
        )))
    }
}
