//! The emulated Machine Config Operator's bookkeeping: OpenShift's MachineConfigPools
//! (`machineconfiguration.openshift.io/v1`, cluster-scoped; fields as openshift/api
//! `machineconfiguration/v1/types.go` names them) and each node's machine-config-daemon
//! annotations (`machineconfiguration.openshift.io/currentConfig`, `desiredConfig`, `state`
//! `Done`/`Working`/`Degraded`, `reason`, as openshift/machine-config-operator
//! `pkg/daemon/constants` names them).
//!
//! - Pools `master` (nodes labelled `node-role.kubernetes.io/master`) and `worker`
//!   (`node-role.kubernetes.io/worker`) exist from the start; clients create custom pools. A node
//!   selected by a custom pool's `spec.nodeSelector` belongs to it (the first by name), else to
//!   `worker` or `master`, as OpenShift's custom pools take priority over the worker pool.
//! - Rendered configs: at the start every pool renders `rendered-POOL-HASH` with no OS change,
//!   and every node runs its pool's (state `Done`). The inventory's target is rendered into every
//!   pool (`rendered-POOL-HASH` of the target; a custom pool created later renders it too) when
//!   the `worker` pool is first paused, or on `POST /emulator/machineconfigpools/render`: the
//!   EUS-to-EUS procedure pauses the worker pools before the control-plane update renders the
//!   new worker config, so the emulated cluster never updates workers behind a client that has
//!   not paused them yet. `spec.configuration` is the controller's: a client's value is ignored.
//! - The controller ([`Pools::reconcile`]): for each pool not paused, its nodes whose
//!   `currentConfig` is not its rendered config are started (`desiredConfig` set, `Working`) up to
//!   `spec.maxUnavailable` nodes Working or unavailable at once (an integer or a percentage of
//!   the pool's machines, at least one, one by default); the update itself (cordon, drain, the OS update and
//!   reboot) is `cluster`'s, which reports back with [`Pools::finish`]: `Done` and `currentConfig`,
//!   or `Degraded` with its reason. A config that brings no OS change, or the version the node
//!   already runs, is applied without a reboot (the daemon's rebootless update). A Degraded node is
//!   not started again in the pool it degraded in; once it is in another pool (a client moved it),
//!   the emulated daemon reports `Done` on its current config again, so the next pool retries it.
//! - Status: `configuration` (the rendered config once every machine runs it), `machineCount`,
//!   `updatedMachineCount`, `readyMachineCount`, `unavailableMachineCount`,
//!   `degradedMachineCount`, `observedGeneration`, and the conditions `Updated`, `Updating`,
//!   `NodeDegraded`, `RenderDegraded`, `Degraded`. A client's status write is overwritten by the
//!   controller, as the MCO's own status sync does.
//!
//! This module must not know HTTP or the simulator: it keeps state and renders JSON.

use std::collections::BTreeMap;

use drover_core::Version;
use serde_json::{json, Map, Value};

use super::store;

/// `CurrentMachineConfigAnnotationKey`.
pub const CURRENT_CONFIG: &str = "machineconfiguration.openshift.io/currentConfig";
/// `DesiredMachineConfigAnnotationKey`.
pub const DESIRED_CONFIG: &str = "machineconfiguration.openshift.io/desiredConfig";
/// `MachineConfigDaemonStateAnnotationKey`.
pub const STATE: &str = "machineconfiguration.openshift.io/state";
/// `MachineConfigDaemonReasonAnnotationKey`.
pub const REASON: &str = "machineconfiguration.openshift.io/reason";
pub const GROUP: &str = "machineconfiguration.openshift.io";
pub const WORKER: &str = "worker";
pub const MASTER: &str = "master";

/// One pool as the API keeps it (the status is rendered).
#[derive(Clone, Debug)]
struct Pool {
    labels: Value,
    annotations: Value,
    /// The spec as clients wrote it, without `configuration` (the controller's).
    spec: Value,
    /// `spec.configuration.name`.
    rendered: String,
    /// `status.configuration.name`: the rendered config every machine last ran.
    status_rendered: String,
    generation: u64,
    created_ms: u64,
    uid: String,
}

/// What the machine-config-daemon of one node reports.
#[derive(Clone, Debug, Default)]
struct Daemon {
    current: String,
    desired: String,
    state: &'static str,
    reason: String,
    /// The pool it went Degraded in.
    degraded_in: Option<String>,
}

/// A node as the controller sees it.
pub struct Member<'a> {
    pub name: &'a str,
    pub labels: &'a Map<String, Value>,
    pub ready: bool,
    pub unschedulable: bool,
    pub version: &'a Version,
}

/// An update the controller starts: `cluster` carries it out and calls [`Pools::finish`].
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub node: String,
    pub pool: String,
    pub config: String,
    /// The OS version the config brings; `None`: no OS change (a rebootless update).
    pub version: Option<Version>,
}

/// The pools, the rendered configs and the nodes' daemons.
#[derive(Clone, Debug, Default)]
pub struct Pools {
    pools: BTreeMap<String, Pool>,
    /// Each rendered config's OS version (`None`: the one the cluster started with).
    rendered: BTreeMap<String, Option<Version>>,
    daemons: BTreeMap<String, Daemon>,
    /// The target rendered into the pools, once it is.
    target: Option<Version>,
    /// Updates with a reboot each node went through.
    reboots: BTreeMap<String, u64>,
}

/// `rendered-POOL-HASH` (the MCO names rendered configs by pool and a hash of their content).
fn rendered_name(pool: &str, version: Option<&Version>) -> String {
    let content = version
        .map(|version| version.to_string())
        .unwrap_or_default();
    let mut value: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in pool.bytes().chain([0]).chain(content.bytes()) {
        value ^= u64::from(byte);
        value = value.wrapping_mul(0x0100_0000_01b3);
    }
    format!("rendered-{pool}-{value:016x}")
}

fn selects(selector: &Value, labels: &Map<String, Value>) -> bool {
    if !selector.is_object() {
        return false;
    }
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let match_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, value)| label(key) == value.as_str());
    let expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|expression| {
            let key = expression["key"].as_str().unwrap_or("");
            let values: Vec<&str> = expression["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match expression["operator"].as_str().unwrap_or("") {
                "In" => label(key).is_some_and(|found| values.contains(&found)),
                "NotIn" => label(key).is_none_or(|found| !values.contains(&found)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                _ => false,
            }
        });
    match_labels && expressions
}

/// `spec.maxUnavailable` of a pool of `machines`: an integer, or a percentage rounded down;
/// at least 1 (the MCO treats 0 as 1), 1 when absent.
fn max_unavailable(spec: &Value, machines: usize) -> usize {
    let value = &spec["maxUnavailable"];
    let count = if let Some(number) = value.as_u64() {
        number as usize
    } else if let Some(percent) = value.as_str().and_then(|text| text.strip_suffix('%')) {
        percent.trim().parse::<usize>().unwrap_or(0) * machines / 100
    } else {
        value
            .as_str()
            .and_then(|text| text.parse::<usize>().ok())
            .unwrap_or(1)
    };
    count.max(1)
}

impl Pools {
    /// The `master` and `worker` pools; every node runs its pool's config.
    pub fn new(members: &[Member], now_ms: u64) -> Pools {
        let mut pools = Pools::default();
        for (name, role) in [
            (MASTER, "node-role.kubernetes.io/master"),
            (WORKER, "node-role.kubernetes.io/worker"),
        ] {
            let spec = json!({
                "machineConfigSelector": {"matchLabels": {"machineconfiguration.openshift.io/role": name}},
                "nodeSelector": {"matchLabels": {role: ""}},
                "maxUnavailable": 1,
                "paused": false,
            });
            pools.insert(name, json!({}), json!({}), spec, now_ms);
        }
        for member in members {
            let pool = pools.pool_of(member.labels).unwrap_or_default();
            let current = pools
                .pools
                .get(&pool)
                .map(|pool| pool.rendered.clone())
                .unwrap_or_default();
            pools.daemons.insert(
                member.name.to_string(),
                Daemon {
                    desired: current.clone(),
                    current,
                    state: "Done",
                    ..Daemon::default()
                },
            );
        }
        pools
    }

    fn insert(&mut self, name: &str, labels: Value, annotations: Value, spec: Value, now_ms: u64) {
        let rendered = rendered_name(name, self.target.as_ref());
        self.rendered.insert(rendered.clone(), self.target.clone());
        let mut spec = spec;
        if let Some(fields) = spec.as_object_mut() {
            fields.remove("configuration");
        }
        self.pools.insert(
            name.to_string(),
            Pool {
                labels,
                annotations,
                spec,
                status_rendered: rendered.clone(),
                rendered,
                generation: 1,
                created_ms: now_ms,
                uid: format!("{:016x}", now_ms ^ name.len() as u64),
            },
        );
    }

    /// The pool a node with `labels` belongs to: the first custom pool selecting it, else
    /// `worker`, else `master`.
    pub fn pool_of(&self, labels: &Map<String, Value>) -> Option<String> {
        let custom = self
            .pools
            .iter()
            .filter(|(name, _)| *name != WORKER && *name != MASTER)
            .find(|(_, pool)| selects(&pool.spec["nodeSelector"], labels));
        if let Some((name, _)) = custom {
            return Some(name.clone());
        }
        [WORKER, MASTER]
            .into_iter()
            .find(|name| {
                self.pools
                    .get(*name)
                    .is_some_and(|pool| selects(&pool.spec["nodeSelector"], labels))
            })
            .map(str::to_string)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.pools.contains_key(name)
    }

    pub fn paused(&self, name: &str) -> bool {
        self.pools
            .get(name)
            .is_some_and(|pool| pool.spec["paused"].as_bool().unwrap_or(false))
    }

    /// Renders `target` into every pool (the cluster's update rendered the new configs); once.
    pub fn render_target(&mut self, target: &Version) -> bool {
        if self.target.is_some() {
            return false;
        }
        self.target = Some(target.clone());
        for (name, pool) in &mut self.pools {
            pool.rendered = rendered_name(name, Some(target));
            self.rendered
                .insert(pool.rendered.clone(), Some(target.clone()));
        }
        true
    }

    /// Creates a pool from a client's object (`Err`: the API's answer).
    pub fn create(&mut self, body: &Value, now_ms: u64) -> Result<String, (u16, Value)> {
        let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
        if name.is_empty() {
            return Err(store::invalid(
                GROUP,
                "MachineConfigPool",
                "",
                &[(
                    "FieldValueRequired",
                    "metadata.name",
                    "name or generateName is required".into(),
                )],
            ));
        }
        if self.pools.contains_key(&name) {
            return Err(store::already_exists(GROUP, "machineconfigpools", &name));
        }
        self.insert(
            &name,
            body["metadata"]["labels"].clone(),
            body["metadata"]["annotations"].clone(),
            body["spec"].clone(),
            now_ms,
        );
        Ok(name)
    }

    /// Takes a client's update of the main resource: labels, annotations and the spec (but
    /// `configuration`); the generation counts spec changes. Answers whether the pool went from
    /// unpaused to paused.
    pub fn update(&mut self, name: &str, updated: &Value) -> bool {
        let Some(pool) = self.pools.get_mut(name) else {
            return false;
        };
        let was_paused = pool.spec["paused"].as_bool().unwrap_or(false);
        let mut spec = updated["spec"].clone();
        if let Some(fields) = spec.as_object_mut() {
            fields.remove("configuration");
        }
        if spec != pool.spec {
            pool.spec = spec;
            pool.generation += 1;
        }
        pool.labels = updated["metadata"]["labels"].clone();
        pool.annotations = updated["metadata"]["annotations"].clone();
        !was_paused && pool.spec["paused"].as_bool().unwrap_or(false)
    }

    /// Deletes a custom pool (`Err` for `master` and `worker`, which the MCO owns).
    pub fn delete(&mut self, name: &str) -> Result<(), (u16, Value)> {
        if name == WORKER || name == MASTER {
            return Err(store::invalid(
                GROUP,
                "MachineConfigPool",
                name,
                &[(
                    "FieldValueForbidden",
                    "metadata.name",
                    "the emulator keeps the master and worker pools".into(),
                )],
            ));
        }
        self.pools
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| store::not_found(GROUP, "machineconfigpools", name))
    }

    /// The controller's pass: the updates to start now (each node marked Working).
    pub fn reconcile(&mut self, members: &[Member]) -> Vec<Start> {
        let mut by_pool: BTreeMap<String, Vec<&Member>> = BTreeMap::new();
        for member in members {
            if let Some(pool) = self.pool_of(member.labels) {
                by_pool.entry(pool).or_default().push(member);
            }
        }
        let mut starts = Vec::new();
        for (pool_name, members) in by_pool {
            // A node that degraded in another pool is reported Done on its config again.
            for member in &members {
                if let Some(daemon) = self.daemons.get_mut(member.name) {
                    if daemon.state == "Degraded"
                        && daemon.degraded_in.as_deref() != Some(pool_name.as_str())
                    {
                        daemon.state = "Done";
                        daemon.reason.clear();
                        daemon.desired = daemon.current.clone();
                        daemon.degraded_in = None;
                    }
                }
            }
            let Some(pool) = self.pools.get(&pool_name) else {
                continue;
            };
            if pool.spec["paused"].as_bool().unwrap_or(false) {
                continue;
            }
            let rendered = pool.rendered.clone();
            let limit = max_unavailable(&pool.spec, members.len());
            let daemon = |name: &str| self.daemons.get(name).cloned().unwrap_or_default();
            let busy = members
                .iter()
                .filter(|member| daemon(member.name).state == "Working" || !member.ready)
                .count();
            let waiting: Vec<String> = members
                .iter()
                .filter(|member| {
                    let daemon = daemon(member.name);
                    daemon.current != rendered
                        && daemon.state != "Working"
                        && daemon.state != "Degraded"
                })
                .map(|member| member.name.to_string())
                .collect();
            for node in waiting.into_iter().take(limit.saturating_sub(busy)) {
                let entry = self.daemons.entry(node.clone()).or_default();
                entry.desired = rendered.clone();
                entry.state = "Working";
                entry.reason.clear();
                starts.push(Start {
                    node,
                    pool: pool_name.clone(),
                    config: rendered.clone(),
                    version: self.rendered.get(&rendered).cloned().flatten(),
                });
            }
        }
        starts
    }

    /// The end of a started update: `Ok(rebooted)` (the node runs the config) or `Err(reason)`
    /// (Degraded).
    pub fn finish(&mut self, start: &Start, outcome: Result<bool, String>) {
        let daemon = self.daemons.entry(start.node.clone()).or_default();
        match outcome {
            Ok(rebooted) => {
                daemon.current = start.config.clone();
                daemon.desired = start.config.clone();
                daemon.state = "Done";
                daemon.reason.clear();
                daemon.degraded_in = None;
                if rebooted {
                    *self.reboots.entry(start.node.clone()).or_default() += 1;
                }
            }
            Err(reason) => {
                daemon.state = "Degraded";
                daemon.reason = reason;
                daemon.degraded_in = Some(start.pool.clone());
            }
        }
    }

    /// Updates with a reboot each node went through.
    pub fn reboots(&self) -> BTreeMap<String, u64> {
        self.reboots.clone()
    }

    /// The daemon's annotations on a node.
    pub fn node_annotations(&self, node: &str) -> Vec<(&'static str, String)> {
        let Some(daemon) = self.daemons.get(node) else {
            return Vec::new();
        };
        let mut annotations = vec![
            (CURRENT_CONFIG, daemon.current.clone()),
            (DESIRED_CONFIG, daemon.desired.clone()),
            (STATE, daemon.state.to_string()),
        ];
        if daemon.state == "Degraded" {
            annotations.push((REASON, daemon.reason.clone()));
        }
        annotations
    }

    pub fn names(&self) -> Vec<String> {
        self.pools.keys().cloned().collect()
    }

    /// One pool as the API serves it; `members` are all nodes. Also moves
    /// `status.configuration` to the rendered config once every machine runs it.
    pub fn render(
        &mut self,
        name: &str,
        members: &[Member],
        timestamp: &dyn Fn(u64) -> String,
    ) -> Option<Value> {
        let machines: Vec<&Member> = members
            .iter()
            .filter(|member| self.pool_of(member.labels).as_deref() == Some(name))
            .collect();
        let pool = self.pools.get(name)?;
        let daemon = |node: &str| self.daemons.get(node).cloned().unwrap_or_default();
        let updated: Vec<&&Member> = machines
            .iter()
            .filter(|member| {
                let daemon = daemon(member.name);
                daemon.current == pool.rendered && daemon.state == "Done"
            })
            .collect();
        let ready = updated
            .iter()
            .filter(|member| member.ready && !member.unschedulable)
            .count();
        let unavailable = machines
            .iter()
            .filter(|member| {
                daemon(member.name).state == "Working" || !member.ready || member.unschedulable
            })
            .count();
        let degraded: Vec<(String, String)> = machines
            .iter()
            .filter_map(|member| {
                let daemon = daemon(member.name);
                (daemon.state == "Degraded").then(|| (member.name.to_string(), daemon.reason))
            })
            .collect();
        let all_updated = updated.len() == machines.len();
        let status_rendered = if all_updated {
            pool.rendered.clone()
        } else {
            pool.status_rendered.clone()
        };
        let paused = pool.spec["paused"].as_bool().unwrap_or(false);
        let condition = |kind: &str, status: bool, reason: &str, message: String| {
            json!({"type": kind, "status": if status { "True" } else { "False" },
                "reason": reason, "message": message,
                "lastTransitionTime": timestamp(pool.created_ms)})
        };
        let degraded_message = degraded
            .first()
            .map(|(node, reason)| {
                format!(
                    "Node {node} is reporting: {reason:?}{}",
                    if degraded.len() > 1 {
                        format!(" ({} nodes degraded)", degraded.len())
                    } else {
                        String::new()
                    }
                )
            })
            .unwrap_or_default();
        let conditions = vec![
            condition(
                "Updated",
                all_updated,
                "",
                if all_updated {
                    format!("All nodes are updated with {}", pool.rendered)
                } else {
                    String::new()
                },
            ),
            condition(
                "Updating",
                !all_updated && !paused && degraded.is_empty(),
                "",
                if all_updated {
                    String::new()
                } else {
                    format!("All nodes are updating to {}", pool.rendered)
                },
            ),
            condition(
                "NodeDegraded",
                !degraded.is_empty(),
                if degraded.is_empty() {
                    ""
                } else {
                    "1 nodes are reporting degraded status on sync"
                },
                degraded_message.clone(),
            ),
            condition("RenderDegraded", false, "", String::new()),
            condition("Degraded", !degraded.is_empty(), "", degraded_message),
        ];
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(name));
        metadata.insert("uid".into(), json!(pool.uid));
        metadata.insert("generation".into(), json!(pool.generation));
        metadata.insert(
            "creationTimestamp".into(),
            json!(timestamp(pool.created_ms)),
        );
        for (field, value) in [("labels", &pool.labels), ("annotations", &pool.annotations)] {
            if value.as_object().is_some_and(|fields| !fields.is_empty()) {
                metadata.insert(field.into(), value.clone());
            }
        }
        let mut spec = pool.spec.clone();
        if let Some(fields) = spec.as_object_mut() {
            fields.insert(
                "configuration".into(),
                json!({"name": pool.rendered, "source": [
                    {"apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfig",
                     "name": format!("00-{name}")}]}),
            );
        }
        let object = json!({
            "apiVersion": "machineconfiguration.openshift.io/v1",
            "kind": "MachineConfigPool",
            "metadata": metadata,
            "spec": spec,
            "status": {
                "observedGeneration": pool.generation,
                "configuration": {"name": status_rendered},
                "machineCount": machines.len(),
                "updatedMachineCount": updated.len(),
                "readyMachineCount": ready,
                "unavailableMachineCount": unavailable,
                "degradedMachineCount": degraded.len(),
                "conditions": conditions,
            },
        });
        if let Some(pool) = self.pools.get_mut(name) {
            pool.status_rendered = status_rendered;
        }
        Some(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn labels(pairs: &[&str]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|key| (key.to_string(), json!("")))
            .collect()
    }

    #[test]
    fn a_paused_worker_pool_waits_and_a_custom_pool_updates_its_nodes() {
        let version = Version::from_str("4.16.2").unwrap();
        let target = Version::from_str("4.16.3").unwrap();
        let worker = labels(&["node-role.kubernetes.io/worker"]);
        let mut canary = worker.clone();
        canary.insert("node-role.kubernetes.io/canary".into(), json!(""));
        let member = |name, labels| Member {
            name,
            labels,
            ready: true,
            unschedulable: false,
            version: &version,
        };
        let members = [member("a", &worker), member("b", &worker)];
        let mut pools = Pools::new(&members, 0);
        assert!(pools.reconcile(&members).is_empty(), "nothing to update");
        assert!(pools.update(
            WORKER,
            &json!({"spec": {"paused": true, "nodeSelector": {"matchLabels": {"node-role.kubernetes.io/worker": ""}}}})
        ));
        assert!(pools.render_target(&target));
        assert!(pools.reconcile(&members).is_empty(), "paused");
        pools
            .create(
                &json!({"metadata": {"name": "canary"}, "spec": {
                    "nodeSelector": {"matchLabels": {"node-role.kubernetes.io/canary": ""}},
                    "maxUnavailable": "100%"}}),
                0,
            )
            .unwrap();
        let moved = [member("a", &canary), member("b", &worker)];
        let starts = pools.reconcile(&moved);
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].node, "a");
        assert_eq!(starts[0].version, Some(target.clone()));
        assert!(pools.reconcile(&moved).is_empty(), "a is Working");
        pools.finish(&starts[0], Ok(true));
        let pool = pools.render("canary", &moved, &|_| String::new()).unwrap();
        assert_eq!(pool["status"]["updatedMachineCount"], json!(1));
        assert_eq!(
            pool["status"]["configuration"]["name"],
            pool["spec"]["configuration"]["name"]
        );
        assert_eq!(pools.reboots().get("a"), Some(&1));
        let worker_pool = pools.render(WORKER, &moved, &|_| String::new()).unwrap();
        assert_eq!(worker_pool["status"]["machineCount"], json!(1));
        assert_eq!(worker_pool["spec"]["paused"], json!(true));
    }

    #[test]
    fn a_degraded_node_is_reported_and_retried_in_another_pool() {
        let version = Version::from_str("1").unwrap();
        let worker = labels(&["node-role.kubernetes.io/worker"]);
        let members = [Member {
            name: "a",
            labels: &worker,
            ready: true,
            unschedulable: false,
            version: &version,
        }];
        let mut pools = Pools::new(&members, 0);
        pools.render_target(&Version::from_str("2").unwrap());
        let starts = pools.reconcile(&members);
        pools.finish(&starts[0], Err("boom".into()));
        let pool = pools.render(WORKER, &members, &|_| String::new()).unwrap();
        assert_eq!(pool["status"]["degradedMachineCount"], json!(1));
        let degraded = pool["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|condition| condition["type"] == "NodeDegraded")
            .unwrap();
        assert_eq!(degraded["status"], "True");
        assert!(degraded["message"].as_str().unwrap().contains("boom"));
        assert!(pools.reconcile(&members).is_empty(), "not retried in place");
        assert_eq!(max_unavailable(&json!({"maxUnavailable": "50%"}), 5), 2);
        assert_eq!(max_unavailable(&json!({"maxUnavailable": 0}), 5), 1);
        assert_eq!(max_unavailable(&json!({}), 5), 1);
    }
}
