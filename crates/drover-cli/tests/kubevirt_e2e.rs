//! `drover discover` and `drover run -i examples/kubevirt-cluster.yaml` end to end against
//! drover-emulator's KubeVirt API (served by this test process on a free loopback port over
//! HTTPS, the simulator's world at 600× the wall clock): the real `drover` binary (built with
//! `--features kubevirt`) opens the `kind: kubevirt` driver through the registry with a generated
//! kubeconfig, discovers the cluster, and rolls it: cordons, VirtualMachineInstanceMigrations,
//! drains, the upgrade and reboot commands (curl to the emulator's node stand-ins), uncordons.

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
