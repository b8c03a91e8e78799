//! `drover discover` and `drover run -i examples/kubevirt-cluster.yaml` end to end against
//! drover-emulator's KubeVirt API (served by this test process on a free loopback port over
//! HTTPS, the simulator's world at 600× the wall clock): the real `drover` binary (built with
//! `--features kubevirt`) opens the `kind: kubevirt` driver through the registry with a generated
//! kubeconfig, discovers the cluster, and rolls it: cordons, VirtualMachineInstanceMigrations,
//! drains, the upgrade and reboot commands (curl to the emulator's node stand-ins), uncordons.
//! With `node_update: machine-config-pool` it rolls the same cluster through the emulated
//! Machine Config Operator instead (no command: each worker rebooted exactly once by the
//! operator, the worker pool paused during the run and unpaused at its end), and an aborted run
//! (a worker the operator reports Degraded halts the run; `drover abort`) unpauses it too, as
//! does a run killed with SIGKILL while a node is being updated and then resumed (the update in
//! progress followed, not started again).

#![cfg(feature = "kubevirt")]

mod cli_common;

use std::time::Instant;

use cli_common::{stderr, Workspace};

const TOKEN: &str = "e2e-token";

#[test]
fn drover_discovers_and_rolls_the_example_kubevirt_cluster_on_the_emulator() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/kubevirt-cluster.yaml"),
    )
    .unwrap();
    let hosts_and_vms = example.split("\ndriver:").next().unwrap();
    let workspace = Workspace::new();
    let world = workspace.path("world.yaml");
    std::fs::write(
        &world,
        format!("{hosts_and_vms}\ndriver: {{kind: simulator, seed: 7}}\n"),
    )
    .unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ca_path = workspace.path("ca.pem");
    let (url, control_plane) = runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(600.0)).unwrap();
        let control_plane = drover_emulator::kubevirt::ControlPlane::new(
            opened.driver,
            opened.cluster,
            opened.time_scale,
        );
        let (certificate, key) = drover_emulator::kubevirt::self_signed_certificate().unwrap();
        std::fs::write(&ca_path, &certificate).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let served = control_plane.clone();
        tokio::spawn(async move {
            drover_emulator::kubevirt::serve(listener, served, TOKEN.into(), &certificate, &key)
                .await
        });
        (url, control_plane)
    });
    std::fs::write(
        workspace.path("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulated\n  cluster: {{server: \"{url}\", certificate-authority: \"{}\"}}\nusers:\n- name: drover\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: emulated\n  context: {{cluster: emulated, user: drover}}\ncurrent-context: emulated\n",
            ca_path.display()
        ),
    )
    .unwrap();
    let node_command = |action: &str| {
        format!(
            "[curl, -sSf, -X, POST, --cacert, \"{}\", -H, \"Authorization: Bearer {TOKEN}\", \"{url}/emulator/nodes/{{host}}/{action}\"]",
            ca_path.display()
        )
    };
    let inventory = workspace.path("kubevirt-cluster.yaml");
    std::fs::write(
        &inventory,
        format!(
            "{hosts_and_vms}\ndriver:\n  kind: kubevirt\n  kubeconfig: kubeconfig\n  poll_ms: 20\n  commands:\n    upgrade: {}\n    reboot: {}\n",
            node_command("upgrade"),
            node_command("reboot")
        ),
    )
    .unwrap();

    let discovered = workspace
        .command(&["discover", "-i", inventory.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(discovered.status.code(), Some(0), "{}", stderr(&discovered));
    let text = String::from_utf8_lossy(&discovered.stdout);
    for expected in [
        "worker-0",
        "worker-2",
        "web-01",
        "db-01",
        "restart_policy: always",
    ] {
        assert!(
            text.contains(expected),
            "{expected} in the discovered inventory:\n{text}"
        );
    }

    let started = Instant::now();
    let output = workspace
        .command(&["run", "-i", inventory.to_str().unwrap(), "-o", "json"])
        .output()
        .unwrap();
    let wall_secs = started.elapsed().as_secs_f64();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    assert_eq!(report["phase"], "completed", "{report}");

    let counters = control_plane.counters();
    let calls = counters["calls"].as_object().unwrap();
    let count = |key: &str| calls.get(key).and_then(|count| count.as_u64()).unwrap_or(0);
    let migrations =
        count("POST /apis/kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstancemigrations");
    assert!(migrations >= 1, "{calls:?}");
    assert_eq!(count("POST /emulator/nodes/{name}/upgrade"), 3, "{calls:?}");
    let total: u64 = calls.values().filter_map(|count| count.as_u64()).sum();
    eprintln!(
        "kubevirt e2e: 3 nodes / 3 VMs rolled in {wall_secs:.1} s; report migrations {}; {total} API requests, {migrations} migrations created ({:.1} requests per migration, discovery and polling included): {calls:?}",
        report["migrations"],
        total as f64 / migrations as f64
    );
}

/// The example cluster served by this process's emulator, with a kubeconfig and an inventory
/// whose driver section updates nodes through the worker MachineConfigPool.
struct MachineConfigCluster {
    workspace: Workspace,
    inventory: std::path::PathBuf,
    control_plane: std::sync::Arc<drover_emulator::kubevirt::ControlPlane>,
    _runtime: tokio::runtime::Runtime,
}

fn machine_config_cluster(faults: &str) -> MachineConfigCluster {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/kubevirt-cluster.yaml"),
    )
    .unwrap();
    let hosts_and_vms = example.split("\ndriver:").next().unwrap();
    let workspace = Workspace::new();
    let world = workspace.path("world.yaml");
    std::fs::write(
        &world,
        format!("{hosts_and_vms}\ndriver: {{kind: simulator, seed: 7{faults}}}\n"),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ca_path = workspace.path("ca.pem");
    let (url, control_plane) = runtime.block_on(async {
        let opened = drover_emulator::world::open(&world, Some(600.0)).unwrap();
        let control_plane = drover_emulator::kubevirt::ControlPlane::new(
            opened.driver,
            opened.cluster,
            opened.time_scale,
        );
        let (certificate, key) = drover_emulator::kubevirt::self_signed_certificate().unwrap();
        std::fs::write(&ca_path, &certificate).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let served = control_plane.clone();
        tokio::spawn(async move {
            drover_emulator::kubevirt::serve(listener, served, TOKEN.into(), &certificate, &key)
                .await
        });
        (url, control_plane)
    });
    std::fs::write(
        workspace.path("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulated\n  cluster: {{server: \"{url}\", certificate-authority: \"{}\"}}\nusers:\n- name: drover\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: emulated\n  context: {{cluster: emulated, user: drover}}\ncurrent-context: emulated\n",
            ca_path.display()
        ),
    )
    .unwrap();
    // A failed step is retried after 1 s instead of the default 5 (the run is on the wall clock).
    let hosts_and_vms = hosts_and_vms.replacen(
        "policy: {max_unavailable: 1, auto_resolve: true}",
        "policy: {max_unavailable: 1, auto_resolve: true, max_step_attempts: 2, retry_backoff_initial_secs: 1}",
        1,
    );
    let inventory = workspace.path("kubevirt-cluster.yaml");
    std::fs::write(
        &inventory,
        format!(
            "{hosts_and_vms}\ndriver:\n  kind: kubevirt\n  kubeconfig: kubeconfig\n  poll_ms: 20\n  upgrade_timeout_secs: 300\n  node_update: machine-config-pool\n"
        ),
    )
    .unwrap();
    MachineConfigCluster {
        workspace,
        inventory,
        control_plane,
        _runtime: runtime,
    }
}

const WORKERS: [&str; 3] = ["worker-0", "worker-1", "worker-2"];

impl MachineConfigCluster {
    fn boot_ids(&self) -> Vec<String> {
        let snapshot = self.control_plane.snapshot();
        WORKERS
            .iter()
            .map(|name| snapshot.host(name).unwrap().boot_id.clone())
            .collect()
    }

    fn worker_pool(&self) -> serde_json::Value {
        // A request refreshes the emulator's store (the run has ended; nothing else asks).
        let _ = self.control_plane.counters();
        self._runtime
            .block_on(self.control_plane.refresh())
            .unwrap();
        self.control_plane.machine_config_pool("worker").unwrap()
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = args.to_vec();
        all.extend(["-i", self.inventory.to_str().unwrap()]);
        self.workspace.command(&all).output().unwrap()
    }
}

#[test]
fn drover_rolls_the_example_cluster_through_the_worker_machine_config_pool() {
    let cluster = machine_config_cluster("");
    let boot_ids_before = cluster.boot_ids();
    let started = Instant::now();
    let output = cluster.run(&["run", "-o", "json"]);
    let wall_secs = started.elapsed().as_secs_f64();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", stderr(&output)));
    assert_eq!(report["phase"], "completed", "{report}");
    let paused = report["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|setting| setting["setting"] == "machine-config-pool-unpaused")
        .unwrap_or_else(|| panic!("the worker pool's pause in the report: {report}"));
    assert_eq!(paused["step"], "restored", "{paused}");

    let boot_ids_after = cluster.boot_ids();
    let reboots = cluster.control_plane.machine_config_reboots();
    for (index, worker) in WORKERS.iter().enumerate() {
        assert_ne!(
            boot_ids_before[index], boot_ids_after[index],
            "{worker} rebooted"
        );
        assert_eq!(
            reboots.get(*worker),
            Some(&1),
            "{worker} was updated (and rebooted) exactly once by the Machine Config Operator: {reboots:?}"
        );
    }
    let snapshot = cluster.control_plane.snapshot();
    for worker in WORKERS {
        assert_eq!(snapshot.host(worker).unwrap().version.to_string(), "4.16.3");
    }
    let pool = cluster.worker_pool();
    assert_eq!(pool["spec"]["paused"], false, "unpaused at the end: {pool}");
    assert!(
        pool["metadata"]["annotations"]["drover.io/paused-machine-config-pool"].is_null(),
        "{pool}"
    );
    let counters = cluster.control_plane.counters();
    let calls = counters["calls"].as_object().unwrap();
    let count = |key: &str| calls.get(key).and_then(|count| count.as_u64()).unwrap_or(0);
    assert_eq!(count("POST /emulator/nodes/{name}/upgrade"), 0, "{calls:?}");
    eprintln!(
        "kubevirt e2e (node_update: machine-config-pool): 3 workers rolled in {wall_secs:.1} s, each rebooted once by the emulated Machine Config Operator; {} MachineConfigPool requests",
        calls
            .iter()
            .filter(|(key, _)| key.contains("machineconfigpools"))
            .filter_map(|(_, count)| count.as_u64())
            .sum::<u64>()
    );
}

#[test]
fn an_aborted_machine_config_pool_run_unpauses_the_worker_pool() {
    // worker-1's OS update fails every time: the Machine Config Operator reports it Degraded.
    let cluster =
        machine_config_cluster(", faults: [{fault: upgrade-fails, host: worker-1, times: 20}]");
    let boot_ids_before = cluster.boot_ids();
    let output = cluster.run(&["run", "-o", "json"]);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let halted = String::from_utf8_lossy(&output.stdout);
    assert!(halted.contains("Degraded"), "{halted}");
    assert_eq!(
        cluster.worker_pool()["spec"]["paused"],
        true,
        "paused while the run is halted"
    );
    let aborted = cluster
        .workspace
        .command(&["abort", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(aborted.status.code(), Some(6), "{}", stderr(&aborted));
    let pool = cluster.worker_pool();
    assert_eq!(
        pool["spec"]["paused"], false,
        "unpaused by the abort: {pool}"
    );
    let boot_ids_after = cluster.boot_ids();
    let reboots = cluster.control_plane.machine_config_reboots();
    for (index, worker) in WORKERS.iter().enumerate() {
        let changed = boot_ids_before[index] != boot_ids_after[index];
        assert!(
            reboots.get(*worker).copied().unwrap_or(0) <= 1,
            "{worker} at most one update: {reboots:?}"
        );
        if *worker == "worker-1" {
            assert!(!changed, "worker-1's update failed before its reboot");
        }
    }
}

#[test]
fn a_machine_config_pool_run_killed_mid_update_resumes_following_the_update() {
    let cluster = machine_config_cluster("");
    let mut child = cluster
        .workspace
        .command(&[
            "run",
            "-i",
            cluster.inventory.to_str().unwrap(),
            "--run-id",
            "crash",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed while the Machine Config Operator works on a node Drover moved into its pool.
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    let working = loop {
        let _ = cluster._runtime.block_on(cluster.control_plane.refresh());
        let store = cluster.control_plane.store();
        let working = WORKERS.iter().find(|name| {
            store.get("nodes", "", name).is_some_and(|node| {
                node["metadata"]["annotations"]["machineconfiguration.openshift.io/state"]
                    == "Working"
                    && !node["metadata"]["labels"]["node-role.kubernetes.io/drover-update"]
                        .is_null()
            })
        });
        if let Some(name) = working {
            break name.to_string();
        }
        drop(store);
        assert!(Instant::now() < deadline, "no node was handed to the pool");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        cluster.worker_pool()["spec"]["paused"],
        true,
        "the killed run left the worker pool paused"
    );
    let resumed = cluster.run(&["resume", "crash", "-o", "json"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let report: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(report["phase"], "completed", "{report}");
    let reboots = cluster.control_plane.machine_config_reboots();
    for worker in WORKERS {
        assert_eq!(
            reboots.get(worker),
            Some(&1),
            "{worker} updated exactly once ({working} was killed mid-update): {reboots:?}"
        );
    }
    let pool = cluster.worker_pool();
    assert_eq!(
        pool["spec"]["paused"], false,
        "the resumed run unpaused it: {pool}"
    );
    eprintln!(
        "kubevirt e2e: killed with SIGKILL while {working} was Working, resumed to completion"
    );
}
