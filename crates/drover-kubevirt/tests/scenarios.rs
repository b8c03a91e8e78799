//! The run-level conformance scenarios on the kubevirt driver: each scenario's world (with its
//! simulator faults) served by drover-emulator's KubeVirt front-end over HTTPS from this test's
//! runtime — a cluster that outlives the engine's process — and rolled by the engine through the
//! registry's `kind: kubevirt` driver with a generated kubeconfig. The DST invariants are checked
//! on the emulator's world itself (`ControlPlane::snapshot`), not through the driver.
//!
//! The HyperConverged resource starts with OpenShift Virtualization's workload update methods
//! (`LiveMigrate`, `Evict`), a blocking setting: the staged inventory sets `auto_resolve`, so
//! every scenario also empties them before the first node and puts them back at the end (after
//! a completion or an abort), which the test checks on the emulator after the scenarios. Prints
//! the wall time of each scenario and the API requests and watch events per migrated VM.

use std::path::Path;
use std::sync::{Arc, Mutex};

use drover_conformance::{Scenario, Stage, Staged};
use drover_emulator::kubevirt::ControlPlane;
use serde_json::json;

/// Platform time runs this many times faster than the wall clock in the emulator.
const TIME_SCALE: f64 = 200.0;
const TOKEN: &str = "scenario-token";

/// The control planes served so far, for the figures and the HyperConverged check at the end.
#[derive(Default)]
struct Emulated {
    control_planes: Mutex<Vec<(Scenario, Arc<ControlPlane>)>>,
}

/// The world's inventory with `auto_resolve` on: the HyperConverged's workload update methods
/// are the only blocking setting the emulated cluster has.
fn with_auto_resolve(hosts_and_vms: &str) -> String {
    hosts_and_vms.replacen("policy:\n", "policy:\n  auto_resolve: true\n", 1)
}

#[async_trait::async_trait]
impl Stage for Emulated {
    fn platform(&self) -> String {
        format!(
            "the kubevirt driver (kube-rs) against drover-emulator's KubeVirt API at {TIME_SCALE}× the wall clock"
        )
    }

    fn opt_out(&self, _scenario: Scenario) -> Option<String> {
        None
    }

    async fn stage(
        &self,
        scenario: Scenario,
        world: &str,
        directory: &Path,
    ) -> Result<Staged, String> {
        let world_path = directory.join("world.yaml");
        std::fs::write(&world_path, world).map_err(|error| error.to_string())?;
        let opened = drover_emulator::world::open(&world_path, Some(TIME_SCALE))
            .map_err(|error| error.to_string())?;
        let control_plane = ControlPlane::new(opened.driver, opened.cluster, opened.time_scale);
        let (certificate, key) = drover_emulator::kubevirt::self_signed_certificate()
            .map_err(|error| error.to_string())?;
        let ca_path = directory.join("ca.pem");
        std::fs::write(&ca_path, &certificate).map_err(|error| error.to_string())?;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let url = format!(
            "https://{}",
            listener.local_addr().map_err(|error| error.to_string())?
        );
        let served_plane = Arc::clone(&control_plane);
        let served = tokio::spawn(async move {
            drover_emulator::kubevirt::serve(
                listener,
                served_plane,
                TOKEN.to_string(),
                &certificate,
                &key,
            )
            .await
        });
        std::fs::write(
            directory.join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: emulated\n  cluster: {{server: \"{url}\", certificate-authority: \"{}\"}}\nusers:\n- name: drover\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: emulated\n  context: {{cluster: emulated, user: drover}}\ncurrent-context: emulated\n",
                ca_path.display()
            ),
        )
        .map_err(|error| error.to_string())?;
        let node_command = |action: &str| {
            format!(
                "[curl, -sSf, -X, POST, --cacert, \"{}\", -H, \"Authorization: Bearer {TOKEN}\", \"{url}/emulator/nodes/{{host}}/{action}\"]",
                ca_path.display()
            )
        };
        let hosts_and_vms = world.split("driver:").next().unwrap_or(world);
        // migration_timeout_secs: the driver deletes (aborts) a hung migration after 3 s of wall
        // time (10 minutes of the emulator's), well before the policy's own timeout.
        let inventory_text = format!(
            "{}driver:\n  kind: kubevirt\n  kubeconfig: kubeconfig\n  poll_ms: 20\n  request_timeout_secs: 10\n  migration_timeout_secs: 3\n  drain_timeout_secs: 30\n  upgrade_timeout_secs: 60\n  commands:\n    upgrade: {}\n    reboot: {}\n",
            with_auto_resolve(hosts_and_vms),
            node_command("upgrade"),
            node_command("reboot")
        );
        self.control_planes
            .lock()
            .unwrap()
            .push((scenario, Arc::clone(&control_plane)));
        let observed = Arc::clone(&control_plane);
        Ok(Staged {
            inventory_text,
            observe: Box::new(move |_clock| Ok(observed.snapshot())),
            keep_alive: Box::new(AbortOnDrop(served)),
        })
    }
}

/// Stops serving the scenario's cluster when the scenario is over.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubevirt_driver_meets_every_scenario() {
    let emulated = Arc::new(Emulated::default());
    let report = drover_conformance::run_scenarios(Arc::clone(&emulated) as Arc<dyn Stage>).await;
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );

    let control_planes = emulated.control_planes.lock().unwrap();
    let (mut calls, mut watch_events) = (0, 0);
    for (scenario, control_plane) in control_planes.iter() {
        let counters = control_plane.counters();
        calls += counters["calls"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|count| count.as_u64())
            .sum::<u64>();
        watch_events += counters["watch_events_sent"].as_u64().unwrap();
        // Drover emptied the workload update methods for the roll and put them back.
        let hyperconverged = control_plane.hyperconverged();
        assert_eq!(
            hyperconverged["spec"]["workloadUpdateStrategy"]["workloadUpdateMethods"],
            json!(["LiveMigrate", "Evict"]),
            "{scenario}: the workload update methods are restored: {hyperconverged}"
        );
        let calls_by_shape = &counters["calls"];
        assert!(
            calls_by_shape["PATCH /apis/hco.kubevirt.io/v1beta1/namespaces/{namespace}/hyperconvergeds/{name}"]
                .as_u64()
                .unwrap_or(0)
                >= 2,
            "{scenario}: one PATCH empties the methods and one restores them: {calls_by_shape}"
        );
    }
    let migrations: usize = report
        .outcomes
        .iter()
        .map(|outcome| outcome.migrations)
        .sum();
    let wall: Vec<String> = report
        .outcomes
        .iter()
        .map(|outcome| format!("{} {:.1} s", outcome.scenario, outcome.wall.as_secs_f64()))
        .collect();
    println!("kubevirt scenarios wall time: {}", wall.join(", "));
    println!(
        "kubevirt scenarios: {calls} API requests and {watch_events} watch events for {migrations} migrated VMs over every scenario (whole runs: discovery, cordons, drains, upgrades, reboots, polling included): {:.0} requests per migrated VM",
        calls as f64 / migrations.max(1) as f64
    );
}
