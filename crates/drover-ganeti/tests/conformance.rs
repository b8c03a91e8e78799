//! The conformance suite against the ganeti driver on a REAL Ganeti 3.0 cluster: the project's
//! harness `tests/ganeti/cluster.sh` (three nodes in network namespaces, the `fake` hypervisor,
//! RAPI over HTTPS with the harness's own CA). The driver is opened through the registry from a
//! `kind: ganeti` inventory; host facts, upgrade and reboot are the harness's commands.
//!
//! Needs root and the running harness: `tests/ganeti/install.sh && tests/ganeti/cluster.sh up`,
//! then `DROVER_GANETI_RAPI=$(tests/ganeti/cluster.sh rapi-url) cargo test -p drover-ganeti`
//! (`.ci/run` does this). Without DROVER_GANETI_RAPI the test FAILS saying so: README's test
//! command leaves this crate out, as it does drover-libvirt.
//!
//! The cluster is used as it is found (earlier runs may have moved instances or upgraded
//! nodes): the test first empties gnt3 of everything but `sf3` (by the driver's own
//! migration), and upgrades gnt3 to one more than its current version.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, Fixture, MigrationFixture, OptOut, PowerFixture,
    UpgradeFixture,
};
use drover_driver::Driver;
use drover_drivers::{OpenContext, PrepareContext};

const DOMAIN: &str = "drover.test";

/// One cluster: the tests take turns (a migration to a node the suite has drained would be
/// refused).
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn node(k: u32) -> String {
    format!("gnt{k}.{DOMAIN}")
}

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/ganeti/cluster.sh")
        .canonicalize()
        .expect("tests/ganeti/cluster.sh exists")
}

fn harness_says(args: &[&str]) -> String {
    let output = Command::new(harness()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "cluster.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// The RAPI URL, or a failure saying how to start the harness.
fn rapi_url() -> String {
    std::env::var("DROVER_GANETI_RAPI").unwrap_or_else(|_| {
        panic!(
            "DROVER_GANETI_RAPI is not set. These tests need a real Ganeti cluster: run (as root) \
             `tests/ganeti/install.sh && tests/ganeti/cluster.sh up`, then \
             `DROVER_GANETI_RAPI=$(tests/ganeti/cluster.sh rapi-url) cargo test -p drover-ganeti` \
             (.ci/run does this; README's test command leaves this crate out)"
        )
    })
}

fn inventory(url: &str, hosts: &str) -> String {
    let script = harness().display().to_string();
    format!(
        r#"cluster: {{name: ganeti-conformance, target_version: "99"}}
hosts:
{hosts}
driver:
  kind: ganeti
  url: "{url}"
  username: {user}
  password_file: "{password}"
  ca_file: "{ca}"
  job_poll_ms: 200
  job_timeout_secs: 120
  reboot_timeout_secs: 120
  upgrade_timeout_secs: 120
  commands:
    host_facts: ["{script}", facts, "{{host}}"]
    upgrade: ["{script}", upgrade, "{{host}}", "{{target}}"]
    reboot: ["{script}", reboot, "{{host}}"]
"#,
        user = harness_says(&["rapi-user"]),
        password = harness_says(&["password-file"]),
        ca = harness_says(&["ca-file"]),
    )
}

fn host_lines() -> String {
    (1..=3)
        .map(|k| {
            format!(
                "  - {{name: {}, version: \"1.0\", memory_mib: 16384, cpus: 2}}\n",
                node(k)
            )
        })
        .collect()
}

fn open_driver(directory: &std::path::Path, url: &str) -> std::sync::Arc<dyn Driver> {
    let text = inventory(url, &host_lines());
    let path = directory.join("inventory.yaml");
    std::fs::write(&path, &text).unwrap();
    let file = drover_schema::parse_inventory_file(&text, "inventory.yaml")
        .expect("the test inventory is valid");
    let prefix = directory.join("drover.db");
    let context = PrepareContext {
        inventory_path: &path,
        files_prefix: &prefix,
        cluster: &file.cluster.name,
        now_ms: 1_000,
        keep_platform_per_cluster: false,
    };
    let run_driver = drover_drivers::prepare(&file.driver, &context, BTreeMap::new())
        .expect("the registry prepares the driver");
    let open = OpenContext {
        cluster: &file.cluster,
        clock: run_driver.new_clock(),
        read_only: false,
    };
    drover_drivers::open(&run_driver, &open).expect("the registry opens the driver")
}

/// Where each instance runs, by discovery.
async fn placement(driver: &dyn Driver) -> BTreeMap<String, String> {
    let discovered = driver.discover().await.expect("discovery");
    discovered
        .vms
        .iter()
        .map(|vm| {
            (
                vm.name.clone(),
                discovered.hosts[vm.host.index()].name.clone(),
            )
        })
        .collect()
}

fn fixture(target: drover_core::Version) -> Fixture {
    Fixture {
        platform: "the ganeti driver against a real 3-node Ganeti 3.0 cluster (fake hypervisor, RAPI over HTTPS)".into(),
        healthy_hosts: (1..=3).map(node).collect(),
        // A master candidate: draining demotes it, and uncordon must make it one again.
        cordon_host: node(2),
        migration: MigrationFixture {
            vm: "sf3".into(),
            from: node(3),
            to: node(2),
        },
        power: PowerFixture {
            vm: "dl1".into(),
            host: node(1),
            graceful_timeout: Duration::from_secs(30),
        },
        maintenance_host: node(3),
        compatibility: CompatibilityFixture {
            cluster: "ganeti-conformance".into(),
            level: "1".into(),
        },
        upgrade: UpgradeFixture {
            host: node(3),
            target,
        },
        timeouts: CallTimeouts {
            call: Duration::from_secs(60),
            slow_call: Duration::from_secs(150),
            // A repeat is a few RAPI requests (ganeti-rapi forks per request) and maybe the
            // host_facts command.
            repeated_call: Duration::from_secs(5),
        },
        opt_outs: vec![OptOut::new(
            Check::CompatibilityLevelIsIdempotent,
            "Ganeti has no cluster compatibility level Drover could raise; the driver refuses to pretend it set one",
        )],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ganeti_driver_passes_every_check_it_does_not_opt_out_of_on_a_real_cluster() {
    let url = rapi_url();
    let _turn = CLUSTER.lock().await;
    let directory = tempfile::tempdir().unwrap();
    let driver = open_driver(directory.path(), &url);

    // Setup through the driver itself: sf3 runs on gnt3 alone, dl1 runs on gnt1.
    let mut where_now = placement(driver.as_ref()).await;
    for (vm, host) in [("sf3", node(3)), ("dl1", node(1))] {
        if where_now[vm] != host {
            driver
                .migrate(vm, &where_now[vm], &host)
                .await
                .expect("setup migration");
        }
    }
    where_now = placement(driver.as_ref()).await;
    for (vm, host) in where_now.clone() {
        if host == node(3) && vm != "sf3" {
            let to = if vm.starts_with("fl") {
                None
            } else {
                Some(node(2))
            };
            let to =
                to.unwrap_or_else(|| panic!("{vm} has local disks on gnt3: recreate the cluster"));
            driver
                .migrate(&vm, &host, &to)
                .await
                .expect("setup: empty gnt3");
        }
    }
    let facts = driver.host_facts(&node(3)).await.expect("facts of gnt3");
    let major: u64 = facts
        .version
        .as_str()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let target: drover_core::Version = format!("{}.0", major + 1).parse().unwrap();

    let started = Instant::now();
    let report = drover_conformance::run_all(driver.as_ref(), &fixture(target.clone())).await;
    let wall = started.elapsed();
    assert_eq!(report.driver_kind, "ganeti");
    let expected: Vec<Check> = Check::ALL
        .iter()
        .copied()
        .filter(|check| fixture(target.clone()).opt_out(*check).is_none())
        .collect();
    assert_eq!(report.passed(), expected, "{}", report.failures());
    println!(
        "ganeti conformance: {} in {:.1} s",
        report.summary(),
        wall.as_secs_f64()
    );
}

/// RAPI requests one live migration costs (the instance read, the job, its polls, the check
/// after), by the driver's own counter; printed for the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_migration_is_one_job_followed_to_its_end() {
    let url = rapi_url();
    let _turn = CLUSTER.lock().await;
    let connection = drover_ganeti::RapiConnection {
        url,
        username: harness_says(&["rapi-user"]),
        password: std::fs::read_to_string(harness_says(&["password-file"]))
            .unwrap()
            .trim()
            .to_string(),
        ca_file: Some(harness_says(&["ca-file"]).into()),
        insecure: false,
        request_timeout: Duration::from_secs(30),
    };
    let client = drover_ganeti::RapiClient::new(connection).unwrap();
    let cluster = drover_core::Cluster {
        name: "ganeti-migration".into(),
        target_version: "1".parse().unwrap(),
        policy: drover_core::Policy::default(),
        hosts: Vec::new(),
        vms: Vec::new(),
        settings: Vec::new(),
    };
    let commands = drover_ganeti::host_commands::HostCommands::new(
        drover_ganeti::host_commands::PLATFORM,
        &BTreeMap::new(),
        "ganeti-migration",
        BTreeMap::new(),
    )
    .unwrap();
    let timings = drover_ganeti::GanetiTimings {
        job_timeout: Duration::from_secs(120),
        job_poll: Duration::from_millis(200),
        command_timeout: Duration::from_secs(30),
        upgrade_timeout: Duration::from_secs(60),
        reboot_timeout: Duration::from_secs(60),
    };
    let driver = drover_ganeti::GanetiDriver::new(client, timings, &cluster, commands);
    let where_now = placement(&driver).await;
    let from = where_now["sf1"].clone();
    let to = if from == node(1) { node(2) } else { node(1) };
    let before = driver.requests_sent();
    let started = Instant::now();
    driver
        .migrate("sf1", &from, &to)
        .await
        .expect("sf1 migrates live");
    let requests = driver.requests_sent() - before;
    let took = started.elapsed();
    assert_eq!(placement(&driver).await["sf1"], to);
    println!(
        "ganeti: {requests} RAPI requests for one migrated instance ({:.1} s, job polled every 200 ms)",
        took.as_secs_f64()
    );
    assert!(
        requests >= 4,
        "instance read, job submit, job poll(s), instance read"
    );

    // Repeating it observes and returns at once: one request.
    let before = driver.requests_sent();
    driver.migrate("sf1", &from, &to).await.unwrap();
    assert_eq!(driver.requests_sent() - before, 1);

    // A node-local instance is refused with Ganeti's reason, and nothing moves.
    let local = where_now
        .iter()
        .find(|(vm, _)| vm.starts_with("fl"))
        .map(|(vm, host)| (vm.clone(), host.clone()))
        .expect("the harness has a `file` instance");
    let other = if local.1 == node(1) { node(2) } else { node(1) };
    let refused = driver
        .migrate(&local.0, &local.1, &other)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, drover_driver::DriverError::Refused(text) if text.contains("file")),
        "{refused}"
    );
}
