//! OpenShift's MachineConfigPools and the machine-config-daemon's node annotations, for
//! `node_update: machine-config-pool` (names as openshift/api `machineconfiguration/v1`
//! `types.go` and openshift/machine-config-operator `pkg/daemon/constants` spell them):
//! - `MachineConfigPool` (cluster-scoped, `machineconfiguration.openshift.io/v1`, plural
//!   `machineconfigpools`): `spec.paused` ("the machine config pool should stop applying new
//!   changes to the nodes"), `spec.nodeSelector` (a `metav1.LabelSelector`: which nodes are its
//!   machines), `spec.maxUnavailable` (`intstr.IntOrString`: how many of its machines may be
//!   updated at once), `spec.configuration.name` (the rendered MachineConfig its machines should
//!   run; `status.configuration` is the one they all run), `status.machineCount`,
//!   `updatedMachineCount`, `readyMachineCount`, `unavailableMachineCount`,
//!   `degradedMachineCount`, and the conditions `Updated`, `Updating`, `NodeDegraded`, `Degraded`;
//! - on each node, the daemon's `machineconfiguration.openshift.io/currentConfig` (the rendered
//!   config it runs), `desiredConfig` (the one the controller asked for), `state` (`Done`,
//!   `Working`, `Degraded`) and `reason` (why it is Degraded).
//!
//! Drover follows OpenShift's documented canary rollout ("Performing a canary rollout update":
//! custom pools that inherit the worker pool's MachineConfigs, nodes labelled into one, the pool
//! unpaused, the label removed afterwards so the node returns to the worker pool) with one custom
//! pool of its own, [`DROVER_POOL`], and the EUS-to-EUS sequence's pause of the worker pool.
//!
//! Pure over JSON: this module must not know HTTP or kube-rs.

use serde_json::{json, Value};

/// The worker pool when the section names none (OpenShift's default compute pool).
pub const DEFAULT_WORKER_POOL: &str = "worker";
/// Drover's custom pool: its nodes are the ones Drover has emptied and hands to the Machine
/// Config Operator.
pub const DROVER_POOL: &str = "drover-update";
/// The node-role label that puts a node into [`DROVER_POOL`] (the canary procedure's
/// `node-role.kubernetes.io/workerpool-canary=`).
pub const DROVER_POOL_LABEL: &str = "node-role.kubernetes.io/drover-update";
/// The MachineConfig label a pool selects its configs by (the custom pool inherits the worker
/// pool's configs by selecting both roles).
pub const ROLE_LABEL: &str = "machineconfiguration.openshift.io/role";
/// `CurrentMachineConfigAnnotationKey`.
pub const CURRENT_CONFIG_ANNOTATION: &str = "machineconfiguration.openshift.io/currentConfig";
/// `DesiredMachineConfigAnnotationKey`.
pub const DESIRED_CONFIG_ANNOTATION: &str = "machineconfiguration.openshift.io/desiredConfig";
/// `MachineConfigDaemonStateAnnotationKey`: `Done`, `Working` or `Degraded`.
pub const STATE_ANNOTATION: &str = "machineconfiguration.openshift.io/state";
/// `MachineConfigDaemonReasonAnnotationKey`: why the daemon is Degraded.
pub const REASON_ANNOTATION: &str = "machineconfiguration.openshift.io/reason";
/// The worker pool's annotation saying Drover paused it (so that only Drover's pause is undone,
/// and a resolve repeated after a crash answers the same saved text).
pub const PAUSED_BY_DROVER_ANNOTATION: &str = "drover.io/paused-machine-config-pool";
/// The node annotation keeping the boot id the node had when Drover moved it into
/// [`DROVER_POOL`]: a new process following the update knows which boot is the new one.
pub const BOOT_ID_BEFORE_ANNOTATION: &str = "drover.io/boot-id-before-machine-config";

fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut current = value;
    for part in path {
        current = &current[*part];
    }
    current.as_str().unwrap_or("")
}

/// `spec.paused`.
pub fn pool_paused(pool: &Value) -> bool {
    pool["spec"]["paused"].as_bool().unwrap_or(false)
}

/// `spec.configuration.name`: the rendered config the pool's machines should run (empty
/// before the controller rendered one).
pub fn pool_rendered_config(pool: &Value) -> &str {
    text(pool, &["spec", "configuration", "name"])
}

/// Whether a `metav1.LabelSelector` selects `labels` (`matchLabels`, and `matchExpressions`
/// with `In`, `NotIn`, `Exists`, `DoesNotExist`). An empty selector selects everything, as a
/// LabelSelector does.
pub fn selector_selects(selector: &Value, labels: &Value) -> bool {
    let no_labels = serde_json::Map::new();
    let labels = labels.as_object().unwrap_or(&no_labels);
    let match_labels = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, value)| labels.get(key).and_then(Value::as_str) == value.as_str());
    // A LabelSelector's requirements are a node selector's without `Gt`/`Lt` (which the API
    // refuses in a LabelSelector): the same evaluation as a VMI's node affinity.
    let expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|requirement| crate::discovery::requirement_holds(requirement, labels));
    match_labels && expressions
}

/// Whether the pool's `spec.nodeSelector` selects the node.
pub fn pool_selects_node(pool: &Value, node: &Value) -> bool {
    pool["spec"]["nodeSelector"].is_object()
        && selector_selects(&pool["spec"]["nodeSelector"], &node["metadata"]["labels"])
}

/// What the machine-config-daemon says of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeConfig {
    pub current: String,
    pub desired: String,
    pub state: String,
    pub reason: String,
}

pub fn node_config(node: &Value) -> NodeConfig {
    let annotation = |key: &str| text(node, &["metadata", "annotations", key]).to_string();
    NodeConfig {
        current: annotation(CURRENT_CONFIG_ANNOTATION),
        desired: annotation(DESIRED_CONFIG_ANNOTATION),
        state: annotation(STATE_ANNOTATION),
        reason: annotation(REASON_ANNOTATION),
    }
}

/// The message of the pool's first condition of `types` whose status is True, if any.
pub fn pool_condition_message(pool: &Value, types: &[&str]) -> Option<String> {
    let conditions = pool["status"]["conditions"].as_array()?;
    types.iter().find_map(|kind| {
        conditions
            .iter()
            .find(|condition| condition["type"] == *kind && condition["status"] == "True")
            .map(|condition| {
                format!(
                    "{kind}: {}",
                    condition["message"]
                        .as_str()
                        .or(condition["reason"].as_str())
                        .unwrap_or("")
                )
            })
    })
}

/// Drover's custom pool as the canary procedure writes one: it selects the worker pool's
/// MachineConfigs and its own (`machineConfigSelector` on [`ROLE_LABEL`] In [worker, custom]),
/// its nodes by [`DROVER_POOL_LABEL`], is not paused, and updates all its machines at once
/// (`maxUnavailable: 100%`): only the nodes of the wave Drover emptied are in it, so its size is
/// the wave's size and Drover, not the pool, decides which node goes when.
pub fn drover_pool(worker_pool: &str) -> Value {
    json!({
        "apiVersion": "machineconfiguration.openshift.io/v1",
        "kind": "MachineConfigPool",
        "metadata": {"name": DROVER_POOL, "labels": {"drover.io/owned": "true"}},
        "spec": {
            "machineConfigSelector": {"matchExpressions": [
                {"key": ROLE_LABEL, "operator": "In", "values": [worker_pool, DROVER_POOL]}]},
            "nodeSelector": {"matchLabels": {DROVER_POOL_LABEL: ""}},
            "maxUnavailable": "100%",
            "paused": false,
        },
    })
}

/// The text Drover journals for a pool it paused.
pub fn paused_text(pool: &str) -> String {
    json!({"machineConfigPool": pool, "paused": false}).to_string()
}

/// The pool a saved text names (`Err` with why when it is not one of [`paused_text`]).
pub fn pool_of_saved(saved: &str) -> Result<String, String> {
    let value: Value = serde_json::from_str(saved)
        .map_err(|error| format!("the saved MachineConfigPool state does not read: {error}"))?;
    value["machineConfigPool"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no machineConfigPool in the saved text {saved}"))
}

/// The merge patch that pauses a pool and marks the pause as Drover's, in one request.
pub fn pause_patch() -> Value {
    json!({"metadata": {"annotations": {PAUSED_BY_DROVER_ANNOTATION: "true"}},
        "spec": {"paused": true}})
}

/// The merge patch that unpauses a pool Drover paused (`unpause` false: only drop the mark,
/// the pool was unpaused or paused again by someone else during the run).
pub fn unpause_patch(unpause: bool) -> Value {
    let mut patch = json!({"metadata": {"annotations": {PAUSED_BY_DROVER_ANNOTATION: null}}});
    if unpause {
        patch["spec"] = json!({"paused": false});
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = json!({"node-role.kubernetes.io/worker": "", "zone": "a"});
        assert!(selector_selects(
            &json!({"matchLabels": {"node-role.kubernetes.io/worker": ""}}),
            &labels
        ));
        assert!(!selector_selects(
            &json!({"matchLabels": {DROVER_POOL_LABEL: ""}}),
            &labels
        ));
        assert!(selector_selects(
            &json!({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}),
            &labels
        ));
        assert!(!selector_selects(
            &json!({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}),
            &labels
        ));
        let pool = drover_pool("worker");
        let mut node = json!({"metadata": {"labels": labels}});
        assert!(!pool_selects_node(&pool, &node));
        node["metadata"]["labels"][DROVER_POOL_LABEL] = json!("");
        assert!(pool_selects_node(&pool, &node));
    }

    #[test]
    fn the_paused_text_names_its_pool_and_the_patches_mark_the_pause() {
        assert_eq!(pool_of_saved(&paused_text("worker")), Ok("worker".into()));
        assert!(pool_of_saved("{}").is_err());
        assert_eq!(pause_patch()["spec"]["paused"], json!(true));
        assert_eq!(unpause_patch(true)["spec"]["paused"], json!(false));
        assert!(unpause_patch(false).get("spec").is_none());
        let pool = json!({"spec": {"paused": true, "configuration": {"name": "rendered-worker-1"}},
            "status": {"conditions": [
                {"type": "Updated", "status": "False"},
                {"type": "NodeDegraded", "status": "True", "message": "Node a is reporting: \"boom\""}]}});
        assert!(pool_paused(&pool));
        assert_eq!(pool_rendered_config(&pool), "rendered-worker-1");
        let message = pool_condition_message(&pool, &["NodeDegraded", "Degraded"]).unwrap();
        assert!(message.contains("boom"), "{message}");
        assert_eq!(pool_condition_message(&pool, &["Degraded"]), None);
    }
}
