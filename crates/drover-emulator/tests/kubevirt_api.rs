//! The KubeVirt front-end over HTTPS, served in-process on a loopback port (kubectl and the
//! official Python client are proven by tests/emulators/kubevirt_official_client.sh): 401 with
//! the Status body, discovery with the eviction subresource, list paging, cordon by merge patch
//! and the optimistic-concurrency conflict, a migration followed through a watch from a
//! `resourceVersion` to Succeeded, an in-flight migration cancelled by its deletion, the five
//! finished migrations kept per VMI, eviction answers (429 with the budget cause, 201), the
//! HyperConverged spec and status subresource, the Status bodies of 404 and 422, and incremental
//! rendering (a migration leaves the objects of the VMs it did not move as they were).

use std::io::Write;
use std::time::{Duration, Instant};

use drover_emulator::{kubevirt, world};
use serde_json::{json, Value};

const INVENTORY: &str = r#"
cluster: {name: api, target_version: "4.16.3"}
hosts:
  - {name: n1, version: "4.16.2", memory_mib: 16384, cpus: 8, labels: {zone: a}}
  - {name: n2, version: "4.16.2", memory_mib: 16384, cpus: 8, labels: {zone: b}}
  - {name: n3, version: "4.16.2", memory_mib: 16384, cpus: 8, labels: {zone: b}}
vms:
  - {name: web, host: n1, memory_mib: 2048, vcpus: 2}
  - {name: slow, host: n1, memory_mib: 1024, vcpus: 1}
  - {name: pinned, host: n2, memory_mib: 1024, vcpus: 1, migratable: false, restart_policy: always}
driver:
  kind: simulator
  seed: 7
  faults:
    - {fault: migration-hangs, vm: slow, times: 1}
"#;

const TOKEN: &str = "test-token";

struct Emulator {
    url: String,
    client: reqwest::Client,
}

impl Emulator {
    async fn start() -> Emulator {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(INVENTORY.as_bytes()).unwrap();
        let opened = world::open(file.path(), Some(200.0)).expect("the inventory opens");
        let control_plane =
            kubevirt::ControlPlane::new(opened.driver, opened.cluster, opened.time_scale);
        let (certificate, key) = kubevirt::self_signed_certificate().expect("certificate");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let served_certificate = certificate.clone();
        tokio::spawn(async move {
            kubevirt::serve(
                listener,
                control_plane,
                TOKEN.to_string(),
                &served_certificate,
                &key,
            )
            .await
        });
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(certificate.as_bytes()).unwrap())
            .build()
            .unwrap();
        let emulator = Emulator { url, client };
        let deadline = Instant::now() + Duration::from_secs(10);
        while emulator.get("/version").await.0 != 200 {
            assert!(Instant::now() < deadline, "the emulator answers");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        emulator
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("the emulator answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(
            self.client
                .get(format!("{}{path}", self.url))
                .bearer_auth(TOKEN),
        )
        .await
    }

    async fn write(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Value,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.send(
            self.client
                .request(method, format!("{}{path}", self.url))
                .bearer_auth(TOKEN)
                .header("Content-Type", content_type)
                .body(body.to_string()),
        )
        .await
    }

    async fn create_migration(&self, name: &str, vmi: &str) -> (u16, Value) {
        self.write(
            "POST",
            MIGRATIONS,
            "application/json",
            json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstanceMigration",
                "metadata": {"name": name}, "spec": {"vmiName": vmi}}),
        )
        .await
    }

    async fn phase(&self, name: &str) -> String {
        let (_, migration) = self.get(&format!("{MIGRATIONS}/{name}")).await;
        migration["status"]["phase"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    async fn wait_for_phase(&self, name: &str, wanted: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.phase(name).await != wanted {
            assert!(Instant::now() < deadline, "{name} reaches {wanted}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

const MIGRATIONS: &str = "/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstancemigrations";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_401_and_discovery_names_the_eviction_subresource() {
    let emulator = Emulator::start().await;
    let (status, body) = emulator
        .send(
            emulator
                .client
                .get(format!("{}/api/v1/nodes", emulator.url))
                .bearer_auth("wrong"),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Unauthorized");

    let (_, core) = emulator.get("/api/v1").await;
    let eviction = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|resource| resource["name"] == "pods/eviction")
        .expect("pods/eviction is listed");
    assert_eq!(
        (&eviction["group"], &eviction["version"], &eviction["kind"]),
        (&json!("policy"), &json!("v1"), &json!("Eviction"))
    );
    let (_, groups) = emulator.get("/apis").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["name"].as_str().unwrap())
        .collect();
    for wanted in ["kubevirt.io", "policy", "hco.kubevirt.io"] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let (_, kubevirt) = emulator.get("/apis/kubevirt.io/v1").await;
    assert!(kubevirt["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|resource| resource["shortNames"] == json!(["vmim", "vmims"])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_and_a_stale_patch_conflicts() {
    let emulator = Emulator::start().await;
    let (_, first) = emulator.get("/api/v1/nodes?limit=2").await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let (_, rest) = emulator
        .get(&format!("/api/v1/nodes?limit=2&continue={token}"))
        .await;
    assert_eq!(rest["items"][0]["metadata"]["name"], "n3");
    assert!(rest["metadata"].get("continue").is_none());

    let (_, node) = emulator.get("/api/v1/nodes/n2").await;
    let version = node["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, cordoned) = emulator
        .write(
            "PATCH",
            "/api/v1/nodes/n2",
            "application/merge-patch+json",
            json!({"metadata": {"resourceVersion": version}, "spec": {"unschedulable": true}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(cordoned["spec"]["unschedulable"], true);
    let (status, conflict) = emulator
        .write(
            "PATCH",
            "/api/v1/nodes/n2",
            "application/merge-patch+json",
            json!({"metadata": {"resourceVersion": version}, "spec": {"unschedulable": null}}),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(conflict["reason"], "Conflict");
    let (status, invalid) = emulator
        .write(
            "PATCH",
            "/api/v1/nodes/n2",
            "application/strategic-merge-patch+json",
            json!({"spec": {"podCIDR": "10.0.0.0/24"}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(invalid["reason"], "Invalid");
    let (status, missing) = emulator.get("/api/v1/nodes/nope").await;
    assert_eq!(status, 404);
    assert_eq!(missing["reason"], "NotFound");
    assert_eq!(missing["message"], "nodes \"nope\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_resource_version_follows_a_migration_to_succeeded() {
    let emulator = Emulator::start().await;
    let (_, list) = emulator.get(MIGRATIONS).await;
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut watch = emulator
        .client
        .get(format!(
            "{}{MIGRATIONS}?watch=true&resourceVersion={version}&timeoutSeconds=20",
            emulator.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, created) = emulator.create_migration("move-web", "web").await;
    assert_eq!(status, 201);
    assert_eq!(created["status"]["phase"], "Pending");
    let mut buffered = String::new();
    let mut phases: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while phases.last().map(String::as_str) != Some("Succeeded") {
        assert!(
            Instant::now() < deadline,
            "the watch shows Succeeded: {phases:?}"
        );
        let chunk = tokio::time::timeout(Duration::from_secs(20), watch.chunk())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the watch stays open");
        buffered.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffered.find('\n') {
            let line: String = buffered.drain(..=end).collect();
            let event: Value = serde_json::from_str(&line).unwrap();
            let phase = event["object"]["status"]["phase"]
                .as_str()
                .unwrap()
                .to_string();
            if phases.last() != Some(&phase) {
                phases.push(phase);
            }
        }
    }
    assert_eq!(
        phases,
        [
            "Pending",
            "Scheduling",
            "Scheduled",
            "PreparingTarget",
            "TargetReady",
            "Running",
            "Succeeded"
        ]
    );
    let (_, done) = emulator.get(&format!("{MIGRATIONS}/move-web")).await;
    let state = &done["status"]["migrationState"];
    assert_eq!(state["sourceNode"], "n1");
    assert_eq!(state["completed"], true);
    let (_, vmi) = emulator
        .get("/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/web")
        .await;
    assert_eq!(vmi["status"]["nodeName"], state["targetNode"]);
    assert_eq!(
        vmi["status"]["migrationState"]["migrationUid"],
        done["metadata"]["uid"]
    );

    let (status, counters) = emulator.get("/emulator/calls").await;
    assert_eq!(status, 200);
    assert!(counters["watch_events_sent"].as_u64().unwrap() >= 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_running_migration_aborts_it_and_five_finished_ones_are_kept() {
    let emulator = Emulator::start().await;
    emulator.create_migration("move-slow", "slow").await;
    emulator.wait_for_phase("move-slow", "Running").await;
    let (status, deleted) = emulator
        .write(
            "DELETE",
            &format!("{MIGRATIONS}/move-slow"),
            "application/json",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["status"]["migrationState"]["abortRequested"], true);
    assert_eq!(
        deleted["status"]["migrationState"]["abortStatus"],
        "Succeeded"
    );
    let (status, _) = emulator.get(&format!("{MIGRATIONS}/move-slow")).await;
    assert_eq!(status, 404);
    let (_, vmi) = emulator
        .get("/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/slow")
        .await;
    assert_eq!(
        vmi["status"]["nodeName"], "n1",
        "an aborted migration leaves the VM"
    );

    for attempt in 0..7 {
        let name = format!("web-{attempt}");
        let (status, _) = emulator.create_migration(&name, "web").await;
        assert_eq!(status, 201);
        emulator.wait_for_phase(&name, "Succeeded").await;
    }
    let (_, kept) = emulator
        .get(&format!(
            "{MIGRATIONS}?labelSelector=kubevirt.io/vmi-name%3Dweb"
        ))
        .await;
    let names: Vec<&str> = kept["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-2", "web-3", "web-4", "web-5", "web-6"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_answer_429_for_a_budget_and_201_otherwise() {
    let emulator = Emulator::start().await;
    let pod_of = |vm: &'static str| {
        let emulator = &emulator;
        async move {
            let (_, pods) = emulator
                .get(&format!(
                    "/api/v1/namespaces/default/pods?labelSelector=vm.kubevirt.io/name%3D{vm}"
                ))
                .await;
            pods["items"][0]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let web_pod = pod_of("web").await;
    let eviction = |pod: &str| {
        json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod, "namespace": "default"}})
    };
    let (status, refused) = emulator
        .write(
            "POST",
            &format!("/api/v1/namespaces/default/pods/{web_pod}/eviction"),
            "application/json",
            eviction(&web_pod),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(refused["reason"], "TooManyRequests");
    assert_eq!(
        refused["details"]["causes"][0]["reason"],
        "DisruptionBudget"
    );
    // KubeVirt evacuates the VMI the eviction was for.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, vmi) = emulator
            .get("/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/web")
            .await;
        if vmi["status"]["nodeName"] != "n1" {
            break;
        }
        assert!(Instant::now() < deadline, "web is evacuated from n1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pinned_pod = pod_of("pinned").await;
    let (status, accepted) = emulator
        .write(
            "POST",
            &format!("/api/v1/namespaces/default/pods/{pinned_pod}/eviction"),
            "application/json",
            eviction(&pinned_pod),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(accepted["status"], "Success");
    let deadline = Instant::now() + Duration::from_secs(20);
    while emulator
        .get(&format!("/api/v1/namespaces/default/pods/{pinned_pod}"))
        .await
        .0
        != 404
    {
        assert!(Instant::now() < deadline, "the evicted pod goes away");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, invalid) = emulator.create_migration("no-vmi", "").await;
    assert_eq!(status, 422);
    assert_eq!(invalid["details"]["causes"][0]["field"], "spec.vmiName");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hyperconverged_spec_and_its_status_subresource_change_apart() {
    let emulator = Emulator::start().await;
    let path = "/apis/hco.kubevirt.io/v1beta1/namespaces/openshift-cnv/hyperconvergeds/kubevirt-hyperconverged";
    let (_, before) = emulator.get(path).await;
    assert_eq!(
        before["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"],
        json!(["LiveMigrate", "Evict"])
    );
    let (status, emptied) = emulator
        .write(
            "PATCH",
            path,
            "application/merge-patch+json",
            json!({"spec": {"workloadUpdateStrategy": {"workloadUpdateMethods": []}},
                "status": {"conditions": []}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        emptied["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"],
        json!([])
    );
    assert_eq!(
        emptied["spec"]["workloadUpdateStrategy"]["batchEvictionSize"],
        10
    );
    assert_eq!(
        emptied["status"]["conditions"].as_array().unwrap().len(),
        5,
        "the main resource ignores status"
    );
    let mut conditions = emptied["status"]["conditions"].clone();
    for condition in conditions.as_array_mut().unwrap() {
        if condition["type"] == "Upgradeable" {
            condition["status"] = json!("False");
        }
    }
    let (status, changed) = emulator
        .write(
            "PATCH",
            &format!("{path}/status"),
            "application/merge-patch+json",
            json!({"status": {"conditions": conditions}}),
        )
        .await;
    assert_eq!(status, 200);
    let upgradeable = changed["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|condition| condition["type"] == "Upgradeable")
        .unwrap()
        .clone();
    assert_eq!(upgradeable["status"], "False");
}

/// Incremental rendering: a migration gives the moved VM's objects new versions, and leaves the
/// objects of a VM nothing happened to with the versions they had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_changes_only_the_moved_vms_objects() {
    let emulator = Emulator::start().await;
    let vmi = |name: &str| {
        format!("/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/{name}")
    };
    let version = |object: &Value| {
        object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (_, web_before) = emulator.get(&vmi("web")).await;
    let (_, pinned_before) = emulator.get(&vmi("pinned")).await;
    let (_, pinned_vm_before) = emulator
        .get("/apis/kubevirt.io/v1/namespaces/default/virtualmachines/pinned")
        .await;
    let (status, _) = emulator.create_migration("move-web", "web").await;
    assert_eq!(status, 201);
    emulator.wait_for_phase("move-web", "Succeeded").await;
    let (_, web_after) = emulator.get(&vmi("web")).await;
    let (_, pinned_after) = emulator.get(&vmi("pinned")).await;
    let (_, pinned_vm_after) = emulator
        .get("/apis/kubevirt.io/v1/namespaces/default/virtualmachines/pinned")
        .await;
    assert_ne!(version(&web_after), version(&web_before));
    assert_ne!(
        web_after["status"]["nodeName"],
        web_before["status"]["nodeName"]
    );
    assert_eq!(version(&pinned_after), version(&pinned_before));
    assert_eq!(pinned_after, pinned_before);
    assert_eq!(version(&pinned_vm_after), version(&pinned_vm_before));
    // The launcher pod of the moved VMI is a new pod; the old one is gone.
    let (_, pods) = emulator
        .get("/api/v1/namespaces/default/pods?labelSelector=vm.kubevirt.io/name=web")
        .await;
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["spec"]["nodeName"], web_after["status"]["nodeName"]);
}
