//! The conformance suite against the kubevirt driver (kube-rs over HTTPS with a kubeconfig),
//! talking to drover-emulator's KubeVirt front-end served on a free loopback port in this process
//! (the simulator's world at 500× the wall clock). The upgrade and reboot are command steps that
//! post to the emulator's node stand-ins with curl. Prints the wall time and the API requests and
//! watch events one migrated VM costs, by the emulator's own counters.

use std::time::{Duration, Instant};

use drover_command::ArgvTemplate;
use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, Fixture, MigrationFixture, OptOut, PowerFixture,
    UpgradeFixture,
};
use drover_driver::Driver;
use drover_kubevirt::{KubevirtConnection, KubevirtDriver, KubevirtSettings};
use drover_schema::inventory::CommandStep;

/// kv1 runs only `mobile` (migrated to kv2, which empties kv1 for maintenance and the upgrade);
/// kv3 runs `steady` (stopped and started).
const WORLD: &str = r#"
cluster: {name: conformance, target_version: "4.16.3"}
hosts:
  - {name: kv1, version: "4.16.2", memory_mib: 16384, cpus: 8, labels: {zone: a}}
  - {name: kv2, version: "4.16.2", memory_mib: 16384, cpus: 8, labels: {zone: a}}
  - {name: kv3, version: "4.16.2", memory_mib: 16384, cpus: 8, labels: {zone: b}}
vms:
  - {name: mobile, host: kv1, memory_mib: 4096, vcpus: 2}
  - {name: steady, host: kv3, memory_mib: 2048, vcpus: 2}
driver: {kind: simulator, seed: 7}
"#;

const TOKEN: &str = "conformance-token";

fn fixture() -> Fixture {
    Fixture {
        platform: "the kubevirt driver (kube-rs) against drover-emulator's KubeVirt API".into(),
        healthy_hosts: vec!["kv1".into(), "kv2".into(), "kv3".into()],
        cordon_host: "kv2".into(),
        migration: MigrationFixture {
            vm: "mobile".into(),
            from: "kv1".into(),
            to: "kv2".into(),
        },
        power: PowerFixture {
            vm: "steady".into(),
            host: "kv3".into(),
            graceful_timeout: Duration::from_secs(30),
        },
        maintenance_host: "kv1".into(),
        compatibility: CompatibilityFixture {
            cluster: "conformance".into(),
            level: "4.16".into(),
        },
        upgrade: UpgradeFixture {
            host: "kv1".into(),
            target: "4.16.3".parse().unwrap(),
        },
        timeouts: CallTimeouts {
            call: Duration::from_secs(30),
            slow_call: Duration::from_secs(60),
            // A repeat is a few loopback requests.
            repeated_call: Duration::from_millis(500),
        },
        opt_outs: vec![OptOut::new(
            Check::CompatibilityLevelIsIdempotent,
            "Kubernetes has no cluster compatibility level; the driver refuses to pretend it set one",
        )],
    }
}

pub struct Served {
    pub url: String,
    pub control_plane: std::sync::Arc<drover_emulator::kubevirt::ControlPlane>,
    pub directory: tempfile::TempDir,
}

/// Serves the world in this process and writes a kubeconfig and the CA beside it.
async fn serve(world: &str) -> Served {
    let directory = tempfile::tempdir().unwrap();
    let world_path = directory.path().join("world.yaml");
    std::fs::write(&world_path, world).unwrap();
    let opened = drover_emulator::world::open(&world_path, Some(500.0)).unwrap();
    let control_plane = drover_emulator::kubevirt::ControlPlane::new(
        opened.driver,
        opened.cluster,
        opened.time_scale,
    );
    let (certificate, key) = drover_emulator::kubevirt::self_signed_certificate().unwrap();
    let ca_path = directory.path().join("ca.pem");
    std::fs::write(&ca_path, &certificate).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let served = control_plane.clone();
    tokio::spawn(async move {
        drover_emulator::kubevirt::serve(listener, served, TOKEN.to_string(), &certificate, &key)
            .await
    });
    std::fs::write(
        directory.path().join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulated\n  cluster: {{server: \"{url}\", certificate-authority: \"{}\"}}\nusers:\n- name: drover\n  user: {{token: {TOKEN}}}\ncontexts:\n- name: emulated\n  context: {{cluster: emulated, user: drover}}\ncurrent-context: emulated\n",
            ca_path.display()
        ),
    )
    .unwrap();
    Served {
        url,
        control_plane,
        directory,
    }
}

fn node_command(served: &Served, action: &str) -> ArgvTemplate {
    let argv: Vec<String> = [
        "curl",
        "-sSf",
        "-X",
        "POST",
        "--cacert",
        &served.directory.path().join("ca.pem").display().to_string(),
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &format!("{}/emulator/nodes/{{host}}/{action}", served.url),
    ]
    .iter()
    .map(|part| part.to_string())
    .collect();
    let step = match action {
        "upgrade" => CommandStep::Upgrade,
        _ => CommandStep::Reboot,
    };
    ArgvTemplate::for_step(step, &argv).expect("a valid command")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubevirt_driver_passes_every_check() {
    let served = serve(WORLD).await;
    let settings = KubevirtSettings {
        request_timeout: Duration::from_secs(10),
        migration_timeout: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(30),
        vm_power_timeout: Duration::from_secs(30),
        upgrade_timeout: Duration::from_secs(60),
        reboot_timeout: Duration::from_secs(60),
        poll_interval: Duration::from_millis(10),
        ..KubevirtSettings::default()
    };
    let driver = KubevirtDriver::new(
        KubevirtConnection {
            kubeconfig: Some(served.directory.path().join("kubeconfig")),
            context: None,
        },
        settings,
        Some(node_command(&served, "upgrade")),
        Some(node_command(&served, "reboot")),
    );

    let started = Instant::now();
    let report = drover_conformance::run_all(&driver, &fixture()).await;
    let wall_ms = started.elapsed().as_millis();
    assert_eq!(report.driver_kind, "kubevirt");
    assert_eq!(
        report.passed(),
        Check::ALL
            .iter()
            .copied()
            .filter(|check| *check != Check::CompatibilityLevelIsIdempotent)
            .collect::<Vec<_>>(),
        "{}",
        report.failures()
    );
    println!("kubevirt conformance: {} in {wall_ms} ms", report.summary());

    // API requests one migration costs, by the emulator's own counter.
    let total = || {
        let counters = served.control_plane.counters();
        let calls: u64 = counters["calls"]
            .as_object()
            .unwrap()
            .values()
            .map(|count| count.as_u64().unwrap())
            .sum();
        (calls, counters["watch_events_sent"].as_u64().unwrap())
    };
    let before = total();
    driver
        .migrate("mobile", "kv2", "kv1")
        .await
        .expect("mobile moves back to kv1");
    let after = total();
    let discovered = driver.discover().await.unwrap();
    let mobile = discovered
        .vms
        .iter()
        .find(|vm| vm.name == "mobile")
        .unwrap();
    assert_eq!(discovered.hosts[mobile.host.index()].name, "kv1");
    println!(
        "kubevirt: {} API requests and {} watch events for one migrated VM (followed by a watch, a read every 10 ms where none)",
        after.0 - before.0,
        after.1 - before.1
    );
    assert!(after.0 - before.0 >= 4, "lookups, the create and the polls");
}
