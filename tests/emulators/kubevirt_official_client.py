"""Drives drover-emulator's KubeVirt front-end with the official Kubernetes Python client (PyPI
`kubernetes`), as a person's script would: list nodes, cordon one with a patch, create a
VirtualMachineInstanceMigration through CustomObjectsApi and follow it with watch.Watch() to
Succeeded, evict virt-launcher pods (one refused 429 by KubeVirt's disruption budget, one
allowed), read a missing object (404 with the Status reason), back up, empty and restore the
HyperConverged's workloadUpdateMethods with JSON patches and set its Upgradeable condition through
the status subresource, OpenShift's canary rollout through MachineConfigPools (the worker pool
paused, a custom pool unpaused, a node updated once by the emulated Machine Config Operator and
followed with a watch), and a wrong token (401).

Usage: kubevirt_official_client.py KUBECONFIG. Exits non-zero on the first broken expectation.
"""

import sys
import time

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NAMESPACE = "default"
GROUP, VERSION, MIGRATIONS = "kubevirt.io", "v1", "virtualmachineinstancemigrations"
checks = 0


def check(condition, what):
    global checks
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    checks += 1
    print(f"ok: {what}")


def vmi(custom, name):
    return custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "virtualmachineinstances", name)


def launcher_pod(core, vm_name):
    pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"vm.kubevirt.io/name={vm_name}").items
    check(len(pods) == 1, f"{vm_name} runs in one virt-launcher pod")
    return pods[0]


def main():
    config.load_kube_config(config_file=sys.argv[1])
    core = client.CoreV1Api()
    custom = client.CustomObjectsApi()

    nodes = core.list_node().items
    names = sorted(node.metadata.name for node in nodes)
    check(names == ["kv1", "kv2", "kv3"], f"list_node() returns the three nodes: {names}")
    first = nodes[0]
    check(first.status.allocatable["memory"].endswith("Ki"), "allocatable memory is a quantity in Ki")
    check(first.status.node_info.boot_id != "", "nodeInfo.bootID is set")
    check(first.metadata.labels.get("topology.kubernetes.io/zone") == "zone-a", "the zone label is there")
    check(int(first.metadata.resource_version) > 0, "objects carry a resourceVersion")

    page = core.list_node(limit=2)
    check(len(page.items) == 2 and page.metadata._continue, "list with limit gives a continue token")
    rest = core.list_node(limit=2, _continue=page.metadata._continue)
    check([node.metadata.name for node in rest.items] == ["kv3"], "the continue token gives the rest")

    patched = core.patch_node("kv2", {"spec": {"unschedulable": True}})
    check(patched.spec.unschedulable is True, "patch_node cordons kv2 (spec.unschedulable)")
    check(any(taint.key == "node.kubernetes.io/unschedulable" for taint in patched.spec.taints),
          "a cordoned node has the unschedulable taint")

    web = vmi(custom, "web")
    source = web["status"]["nodeName"]
    check(source == "kv1", "web runs on kv1")
    conditions = {condition["type"]: condition["status"] for condition in web["status"]["conditions"]}
    check(conditions.get("LiveMigratable") == "True", "web is LiveMigratable")
    check(web["spec"]["evictionStrategy"] == "LiveMigrate", "web's evictionStrategy is LiveMigrate")

    migration = custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, MIGRATIONS, {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {"name": "move-web"},
        "spec": {"vmiName": "web", "addedNodeSelector": {"kubernetes.io/hostname": "kv3"}},
    })
    check(migration["status"]["phase"] == "Pending", "a created migration starts Pending")
    phases = []
    stream = watch.Watch()
    for event in stream.stream(custom.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, MIGRATIONS,
                               field_selector="metadata.name=move-web", timeout_seconds=60):
        phase = event["object"]["status"]["phase"]
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if phase in ("Succeeded", "Failed"):
            stream.stop()
    print(f"  phases seen through watch.Watch(): {phases}")
    check(phases[-1] == "Succeeded", "the migration is followed to Succeeded")
    check("Running" in phases, "the watch saw the Running phase")
    done = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, MIGRATIONS, "move-web")
    state = done["status"]["migrationState"]
    check(state["sourceNode"] == "kv1" and state["targetNode"] == "kv3" and state["completed"],
          "status.migrationState names source kv1, target kv3 (addedNodeSelector), completed")
    check(vmi(custom, "web")["status"]["nodeName"] == "kv3", "the VMI now runs on kv3")

    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, MIGRATIONS, {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": "move-web"}, "spec": {"vmiName": "web"}})
        check(False, "a second migration of the same name is refused")
    except ApiException as error:
        check(error.status == 409 and '"AlreadyExists"' in error.body, "the same name again is 409 AlreadyExists")

    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, MIGRATIONS, {
            "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
            "metadata": {"name": "move-scratch"}, "spec": {"vmiName": "scratch"}})
        check(False, "a VMI on local storage cannot be migrated")
    except ApiException as error:
        check(error.status == 422 and "DisksNotLiveMigratable" in error.body,
              "a migration of a VMI on local storage is 422 (DisksNotLiveMigratable)")

    pod = launcher_pod(core, "web")
    try:
        core.create_namespaced_pod_eviction(pod.metadata.name, NAMESPACE, client.V1Eviction(
            metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=NAMESPACE)))
        check(False, "evicting a LiveMigrate VMI's launcher is refused")
    except ApiException as error:
        check(error.status == 429 and "disruption budget" in error.body,
              "evicting web's virt-launcher is 429: the disruption budget forbids it")

    license_pod = launcher_pod(core, "license")
    license_node = license_pod.spec.node_name
    core.create_namespaced_pod_eviction(license_pod.metadata.name, NAMESPACE, client.V1Eviction(
        metadata=client.V1ObjectMeta(name=license_pod.metadata.name, namespace=NAMESPACE)))
    check(True, "evicting license's virt-launcher (evictionStrategy None) is accepted")
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            core.read_namespaced_pod(license_pod.metadata.name, NAMESPACE)
            time.sleep(0.2)
        except ApiException as error:
            check(error.status == 404, "the evicted pod is gone")
            break
    else:
        check(False, "the evicted pod goes away within 30 s")

    try:
        core.read_node("no-such-node")
        check(False, "a missing node is not found")
    except ApiException as error:
        check(error.status == 404 and '"reason":"NotFound"' in error.body.replace(" ", ""),
              f"read_node of a missing node is 404 with Status reason NotFound ({error.reason})")

    core.patch_node("kv2", {"spec": {"unschedulable": None}})
    check(not core.read_node("kv2").spec.unschedulable, "patch_node uncordons kv2")

    # The HyperConverged resource and the EUS-to-EUS steps of OpenShift Virtualization's
    # documentation: back up workloadUpdateMethods, empty it with a JSON patch, put it back.
    hco = ("hco.kubevirt.io", "v1beta1", "openshift-cnv", "hyperconvergeds", "kubevirt-hyperconverged")
    resource = custom.get_namespaced_custom_object(*hco)
    methods = resource["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"]
    check(methods == ["LiveMigrate", "Evict"], f"the HyperConverged's workloadUpdateMethods are {methods}")
    conditions = {condition["type"]: condition for condition in resource["status"]["conditions"]}
    check(conditions["Upgradeable"]["status"] == "True", "the HyperConverged is Upgradeable")
    def json_patch(operations):
        # CustomObjectsApi sends every patch as a merge patch; a JSON patch (what `oc patch
        # --type json` sends) goes through the client's own call_api with its media type.
        group, version, namespace, plural, name = hco
        return custom.api_client.call_api(
            f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}", "PATCH",
            header_params={"Content-Type": "application/json-patch+json", "Accept": "application/json"},
            body=operations, response_type="object", auth_settings=["BearerToken"],
            _return_http_data_only=True)

    try:
        custom.patch_namespaced_custom_object(*hco, [
            {"op": "replace", "path": "/spec/workloadUpdateStrategy/workloadUpdateMethods", "value": []}])
        check(False, "a list sent as a merge patch is refused")
    except ApiException as error:
        check(error.status == 400, "a list sent as a merge patch is 400 BadRequest")
    emptied = json_patch([
        {"op": "replace", "path": "/spec/workloadUpdateStrategy/workloadUpdateMethods", "value": []}])
    check(emptied["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"] == [],
          "a JSON patch empties workloadUpdateMethods")
    check(int(emptied["metadata"]["resourceVersion"]) > int(resource["metadata"]["resourceVersion"]),
          "the patch gives the HyperConverged a new resourceVersion")
    restored = json_patch([
        {"op": "add", "path": "/spec/workloadUpdateStrategy/workloadUpdateMethods", "value": methods}])
    check(restored["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"] == methods,
          "a JSON patch puts the backed-up methods back")
    not_upgradeable = [dict(condition, status="False", reason="UpgradeInProgress", message="HCO is upgrading")
                       if condition["type"] == "Upgradeable" else condition
                       for condition in resource["status"]["conditions"]]
    custom.patch_namespaced_custom_object_status(*hco, {"status": {"conditions": not_upgradeable}})
    read_back = custom.get_namespaced_custom_object_status(*hco)
    upgradeable = [condition for condition in read_back["status"]["conditions"] if condition["type"] == "Upgradeable"][0]
    check(upgradeable["status"] == "False" and upgradeable["reason"] == "UpgradeInProgress",
          "the status subresource sets Upgradeable False with its reason")
    check(read_back["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"] == methods,
          "a status patch leaves the spec alone")
    custom.patch_namespaced_custom_object_status(*hco, {"status": {"conditions": resource["status"]["conditions"]}})
    check(custom.get_namespaced_custom_object(*hco)["status"]["conditions"] == resource["status"]["conditions"],
          "the status subresource puts the conditions back")

    machine_config_pools(core, custom)

    wrong = client.Configuration.get_default_copy()
    wrong.api_key = {"authorization": "Bearer wrong-token"}
    wrong.refresh_api_key_hook = None  # the kubeconfig loader would put the right token back
    try:
        client.CoreV1Api(client.ApiClient(wrong)).list_node()
        check(False, "a wrong token is refused")
    except ApiException as error:
        check(error.status == 401, "a wrong bearer token is 401 Unauthorized")

    print(f"{checks} passed, 0 failed (license ran on {license_node} before its eviction)")


MCO = ("machineconfiguration.openshift.io", "v1", "machineconfigpools")
STATE = "machineconfiguration.openshift.io/state"
CURRENT = "machineconfiguration.openshift.io/currentConfig"


def machine_config_pools(core, custom):
    """OpenShift's canary rollout with the emulated Machine Config Operator: the worker pool
    paused (as the EUS-to-EUS procedure pauses it), a custom pool created paused, a node labelled
    into it, nothing done while it is paused, the pool unpaused, the node followed with a watch
    until it runs the pool's rendered config (state Done, one new boot id), labelled back."""
    pools = custom.list_cluster_custom_object(*MCO)["items"]
    names = sorted(pool["metadata"]["name"] for pool in pools)
    check(names == ["master", "worker"], f"list_cluster_custom_object lists the MachineConfigPools {names}")
    worker = custom.get_cluster_custom_object(*MCO, "worker")
    check(worker["spec"]["paused"] is False and worker["status"]["machineCount"] == 3,
          "the worker pool is not paused and has the three nodes")
    paused = custom.patch_cluster_custom_object(*MCO, "worker", {"spec": {"paused": True}})
    check(paused["spec"]["paused"] is True, "a merge patch pauses the worker pool")
    worker_config = paused["spec"]["configuration"]["name"]
    check(worker_config.startswith("rendered-worker-"), f"the worker pool renders {worker_config}")
    canary = custom.create_cluster_custom_object(*MCO, {
        "apiVersion": "machineconfiguration.openshift.io/v1", "kind": "MachineConfigPool",
        "metadata": {"name": "canary"},
        "spec": {"machineConfigSelector": {"matchExpressions": [
                     {"key": "machineconfiguration.openshift.io/role", "operator": "In",
                      "values": ["worker", "canary"]}]},
                 "nodeSelector": {"matchLabels": {"node-role.kubernetes.io/canary": ""}},
                 "paused": True}})
    rendered = canary["spec"]["configuration"]["name"]
    check(rendered.startswith("rendered-canary-"), f"the custom pool is created with its rendered config {rendered}")
    before = core.read_node("kv3")
    core.patch_node("kv3", {"metadata": {"labels": {"node-role.kubernetes.io/canary": ""}}})
    time.sleep(1)
    held = core.read_node("kv3")
    check(held.metadata.annotations[STATE] == "Done" and held.metadata.annotations[CURRENT] != rendered
          and held.status.node_info.boot_id == before.status.node_info.boot_id,
          "nothing happens to kv3 while its pool is paused")
    check(custom.get_cluster_custom_object(*MCO, "canary")["status"]["machineCount"] == 1,
          "kv3 is the custom pool's machine")
    custom.patch_cluster_custom_object(*MCO, "canary", {"spec": {"paused": False}})
    boot_ids, states = [before.status.node_info.boot_id], []
    stream = watch.Watch()
    for event in stream.stream(core.list_node, field_selector="metadata.name=kv3", timeout_seconds=120):
        node = event["object"]
        annotations = node.metadata.annotations or {}
        if boot_ids[-1] != node.status.node_info.boot_id:
            boot_ids.append(node.status.node_info.boot_id)
        if not states or states[-1] != annotations.get(STATE):
            states.append(annotations.get(STATE))
        ready = [c.status for c in node.status.conditions if c.type == "Ready"] == ["True"]
        if annotations.get(CURRENT) == rendered and annotations.get(STATE) == "Done" and ready:
            stream.stop()
    print(f"  kv3's daemon states seen through watch.Watch(): {states}")
    check("Working" in states and states[-1] == "Done", "the watch saw kv3 Working, then Done")
    check(len(boot_ids) == 2, f"kv3 rebooted exactly once (boot ids {len(boot_ids)})")
    check(core.read_node("kv3").status.node_info.os_image.endswith("4.16.3"),
          "kv3 runs the rendered config's version 4.16.3")
    status = custom.get_cluster_custom_object_status(*MCO, "canary")["status"]
    check(status["updatedMachineCount"] == 1 and status["configuration"]["name"] == rendered,
          "the custom pool reports its machine updated (status.configuration is its rendered config)")
    core.patch_node("kv3", {"metadata": {"labels": {"node-role.kubernetes.io/canary": None}}})
    check(custom.get_cluster_custom_object(*MCO, "worker")["status"]["machineCount"] == 3,
          "kv3 is back in the worker pool")
    try:
        custom.get_cluster_custom_object(*MCO, "no-such-pool")
        check(False, "a missing pool is not found")
    except ApiException as error:
        check(error.status == 404, "a missing MachineConfigPool is 404")


if __name__ == "__main__":
    main()
