//! The HyperConverged resource of OpenShift Virtualization (`hco.kubevirt.io/v1beta1`,
//! kubevirt/hyperconverged-cluster-operator `api/v1beta1/hyperconverged_types.go`): the one the
//! operator reconciles is named `kubevirt-hyperconverged` (`HyperConvergedName`), in
//! `openshift-cnv` on OpenShift. Two things in it concern a roll:
//! - the gate: the `Upgradeable` condition (`ConditionUpgradeable`: "when False, the resources
//!   maintained by the operator should not be upgraded and the message field should contain a
//!   human-readable description of what the administrator should do"), read from
//!   `status.conditions` (`metav1.Condition`: `type`, `status`, `reason`, `message`);
//! - the blocking setting of the EUS-to-EUS sequence (OpenShift Virtualization 4.x
//!   documentation, "Preventing workload updates during an EUS-to-EUS update"): back up
//!   `spec.workloadUpdateStrategy.workloadUpdateMethods` (`[]string`, `+listType=atomic`, CRD
//!   default `["LiveMigrate"]`; "an empty list defaults to no automated workload updating"),
//!   empty it before the update, and put the backed-up list back afterwards.
//!
//! Pure over JSON: this module must not know HTTP or kube-rs.

use serde_json::{json, Value};

/// `HyperConvergedName`: the only HyperConverged the operator reconciles.
pub const HYPERCONVERGED_NAME: &str = "kubevirt-hyperconverged";
/// OpenShift Virtualization's namespace (where the operator keeps its HyperConverged).
pub const DEFAULT_HYPERCONVERGED_NAMESPACE: &str = "openshift-cnv";
/// The HyperConverged annotation holding the methods Drover emptied, so that a resolve repeated
/// after a crash (between the change and the journal's record of it) answers the same saved
/// list, and a restore knows the list is Drover's to put back.
pub const SAVED_METHODS_ANNOTATION: &str = "drover.io/saved-workload-update-methods";

/// `spec.workloadUpdateStrategy.workloadUpdateMethods` (an absent field: none).
pub fn workload_update_methods(hyperconverged: &Value) -> Vec<String> {
    hyperconverged["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The methods a previous resolve saved on the resource, if it did.
pub fn saved_methods(hyperconverged: &Value) -> Option<Vec<String>> {
    let text = hyperconverged["metadata"]["annotations"][SAVED_METHODS_ANNOTATION].as_str()?;
    methods_of_saved(text).ok()
}

/// The saved text Drover journals: `{"workloadUpdateMethods": [...]}`.
pub fn saved_text(methods: &[String]) -> String {
    json!({"workloadUpdateMethods": methods}).to_string()
}

/// The methods in a saved text (`Err` with why when it is not one).
pub fn methods_of_saved(saved: &str) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_str(saved)
        .map_err(|error| format!("the saved workload update methods do not read: {error}"))?;
    value["workloadUpdateMethods"]
        .as_array()
        .ok_or_else(|| format!("no workloadUpdateMethods list in the saved text {saved}"))?
        .iter()
        .map(|method| {
            method
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("a method that is not a string in {saved}"))
        })
        .collect()
}

/// The merge patch that saves `methods` in the annotation and empties the list, in one request
/// (a merge patch replaces a list whole, as `workloadUpdateMethods`' `listType=atomic` wants).
pub fn empty_methods_patch(methods: &[String]) -> Value {
    json!({
        "metadata": {"annotations": {SAVED_METHODS_ANNOTATION: saved_text(methods)}},
        "spec": {"workloadUpdateStrategy": {"workloadUpdateMethods": []}},
    })
}

/// The merge patch that puts `methods` back and removes the annotation; `None` for the methods
/// means leave the list as it is (someone set it during the run) and only drop the annotation.
pub fn restore_methods_patch(methods: Option<&[String]>) -> Value {
    let mut patch = json!({"metadata": {"annotations": {SAVED_METHODS_ANNOTATION: null}}});
    if let Some(methods) = methods {
        patch["spec"] = json!({"workloadUpdateStrategy": {"workloadUpdateMethods": methods}});
    }
    patch
}

/// The `Upgradeable` gate: `Err` naming the condition's reason and message when its status is
/// `False`. An absent condition (an operator that does not report it) does not block.
pub fn upgradeable_gate(hyperconverged: &Value, namespace: &str) -> Result<(), String> {
    let Some(condition) = hyperconverged["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|condition| condition["type"] == "Upgradeable")
    else {
        return Ok(());
    };
    if condition["status"] != "False" {
        return Ok(());
    }
    let text = |field: &str| condition[field].as_str().unwrap_or("").to_string();
    Err(format!(
        "HyperConverged {namespace}/{HYPERCONVERGED_NAME} is not Upgradeable (reason {}): {}",
        text("reason"),
        text("message")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(methods: Value, upgradeable: &str) -> Value {
        json!({"metadata": {"name": HYPERCONVERGED_NAME},
            "spec": {"workloadUpdateStrategy": {"workloadUpdateMethods": methods}},
            "status": {"conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Upgradeable", "status": upgradeable, "reason": "UpgradeInProgress",
                 "message": "HCO is upgrading"}]}})
    }

    #[test]
    fn the_methods_are_read_saved_and_read_back() {
        let hyperconverged = resource(json!(["LiveMigrate", "Evict"]), "True");
        let methods = workload_update_methods(&hyperconverged);
        assert_eq!(methods, vec!["LiveMigrate", "Evict"]);
        let saved = saved_text(&methods);
        assert_eq!(methods_of_saved(&saved), Ok(methods.clone()));
        assert!(methods_of_saved("{}").is_err());
        let patch = empty_methods_patch(&methods);
        assert_eq!(
            patch["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"],
            json!([])
        );
        let mut emptied = hyperconverged.clone();
        emptied["metadata"]["annotations"] = patch["metadata"]["annotations"].clone();
        assert_eq!(saved_methods(&emptied), Some(methods.clone()));
        assert!(workload_update_methods(&json!({"spec": {}})).is_empty());
        let restore = restore_methods_patch(Some(&methods));
        assert_eq!(
            restore["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"],
            json!(["LiveMigrate", "Evict"])
        );
        assert!(restore_methods_patch(None).get("spec").is_none());
    }

    #[test]
    fn upgradeable_false_is_a_gate_naming_its_reason_and_message() {
        assert_eq!(
            upgradeable_gate(&resource(json!([]), "True"), "openshift-cnv"),
            Ok(())
        );
        let refused = upgradeable_gate(&resource(json!([]), "False"), "openshift-cnv")
            .expect_err("False blocks");
        assert!(refused.contains("UpgradeInProgress"), "{refused}");
        assert!(refused.contains("HCO is upgrading"), "{refused}");
        assert_eq!(upgradeable_gate(&json!({"status": {}}), "x"), Ok(()));
    }
}
