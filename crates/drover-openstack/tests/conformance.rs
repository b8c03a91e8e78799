//! The conformance suite against the openstack driver on a REAL OpenStack Zed control plane: the
//! project's harness `tests/openstack/controlplane.sh` (Keystone, Placement, Glance, Nova API,
//! conductor and scheduler, three `nova-compute` services compute-1..3 with Nova's fake virt
//! driver, all from Debian's packages on 127.0.0.1). The driver is opened through the registry
//! from a `kind: openstack` inventory; host facts, upgrade and reboot are the harness's commands
//! (an "upgrade" records a version, a "reboot" restarts that compute's nova-compute).
//!
//! Needs root and the running harness: `tests/openstack/install.sh &&
//! tests/openstack/controlplane.sh up && eval "$(tests/openstack/controlplane.sh env)"`, then
//! `cargo test -p drover-openstack` (`.ci/run` does this). Without DROVER_OPENSTACK_AUTH_URL the
//! tests print that they were skipped and pass: README's test command leaves this crate out.
//!
//! The control plane is used as it is found (earlier runs may have moved servers or upgraded
//! computes): the test boots its servers if they are missing, then places them with the
//! driver's own migrations, and upgrades compute-3 to one more than its current version.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_conformance::{
    CallTimeouts, Check, CompatibilityFixture, Fixture, MigrationFixture, OptOut, PowerFixture,
    UpgradeFixture,
};
use drover_driver::{Driver, DriverError};
use drover_drivers::{OpenContext, PrepareContext};

/// One control plane: the tests take turns (a migration to a host another test cordoned would
/// be refused).
static CLOUD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn compute(k: u32) -> String {
    format!("compute-{k}")
}

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/openstack/controlplane.sh")
        .canonicalize()
        .expect("tests/openstack/controlplane.sh exists")
}

fn harness_does(args: &[&str]) {
    let output = Command::new(harness()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "controlplane.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Keystone's URL, or `None` (the test is skipped, saying how to run it).
fn auth_url() -> Option<String> {
    let url = std::env::var("DROVER_OPENSTACK_AUTH_URL").ok();
    if url.is_none() {
        println!(
            "SKIPPED: DROVER_OPENSTACK_AUTH_URL is not set. These tests need a real OpenStack \
             control plane: run (as root) `tests/openstack/install.sh && \
             tests/openstack/controlplane.sh up && eval \"$(tests/openstack/controlplane.sh env)\"`, \
             then `cargo test -p drover-openstack` (.ci/run does this)"
        );
    }
    url
}

fn inventory(url: &str) -> String {
    let script = harness().display().to_string();
    let hosts: String = (1..=3)
        .map(|k| {
            format!(
                "  - {{name: {}, version: \"26.2.2\", memory_mib: 16384, cpus: 8}}\n",
                compute(k)
            )
        })
        .collect();
    format!(
        r#"cluster: {{name: openstack-conformance, target_version: "99"}}
hosts:
{hosts}
driver:
  kind: openstack
  auth_url: "{url}"
  username: admin
  project: admin
  password_env: DROVER_OPENSTACK_PASSWORD
  region: RegionOne
  allow_block_migration: true
  poll_ms: 200
  migration_timeout_secs: 120
  action_timeout_secs: 120
  reboot_timeout_secs: 150
  upgrade_timeout_secs: 60
  commands:
    host_facts: ["{script}", facts, "{{host}}"]
    upgrade: ["{script}", upgrade, "{{host}}", "{{target}}"]
    reboot: ["{script}", reboot, "{{host}}"]
"#
    )
}

fn open_driver(directory: &std::path::Path, url: &str) -> Arc<dyn Driver> {
    let text = inventory(url);
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

/// Where each server runs, by discovery.
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

/// Boots the conformance servers if missing, then places `mig1` alone on compute-3 and `pow1`
/// on compute-1 with the driver's own migrations; every compute service enabled.
async fn set_up(driver: &dyn Driver) {
    for k in 1..=3 {
        // Enable only what Drover disabled; an earlier run may have stopped midway.
        let _ = driver.set_maintenance(&compute(k), false).await;
        let _ = driver.set_allocation(&compute(k), true).await;
    }
    let where_now = placement(driver).await;
    for (vm, host) in [("mig1", compute(3)), ("pow1", compute(1))] {
        if !where_now.contains_key(vm) {
            harness_does(&["boot", vm, &host]);
        }
    }
    let where_now = placement(driver).await;
    for (vm, host) in [("mig1", compute(3)), ("pow1", compute(1))] {
        if where_now[vm] != host {
            driver
                .migrate(vm, &where_now[vm], &host)
                .await
                .expect("setup migration");
        }
    }
    for (vm, host) in placement(driver).await {
        if host == compute(3) && vm != "mig1" {
            driver
                .migrate(&vm, &host, &compute(1))
                .await
                .expect("setup: empty compute-3");
        }
    }
    driver
        .start_vm("pow1", &compute(1))
        .await
        .expect("setup: pow1 runs");
}

fn fixture(target: drover_core::Version) -> Fixture {
    Fixture {
        platform: "the openstack driver against a real OpenStack Zed control plane (Debian packages, 3 nova-compute with the fake virt driver)".into(),
        healthy_hosts: (1..=3).map(compute).collect(),
        cordon_host: compute(2),
        migration: MigrationFixture {
            vm: "mig1".into(),
            from: compute(3),
            to: compute(2),
        },
        power: PowerFixture {
            vm: "pow1".into(),
            host: compute(1),
            graceful_timeout: Duration::from_secs(30),
        },
        maintenance_host: compute(3),
        compatibility: CompatibilityFixture {
            cluster: "openstack-conformance".into(),
            level: "1".into(),
        },
        upgrade: UpgradeFixture {
            host: compute(3),
            target,
        },
        timeouts: CallTimeouts {
            call: Duration::from_secs(90),
            // A reboot restarts nova-compute and waits for its next report (every 10 s).
            slow_call: Duration::from_secs(180),
            // A repeat is a few API requests and maybe the host_facts command.
            repeated_call: Duration::from_secs(10),
        },
        opt_outs: vec![OptOut::new(
            Check::CompatibilityLevelIsIdempotent,
            "Nova has no cloud compatibility level Drover could raise (compute RPC versions follow [upgrade_levels] in nova.conf); the driver refuses to pretend it set one",
        )],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openstack_driver_passes_every_check_it_does_not_opt_out_of_on_a_real_control_plane() {
    let Some(url) = auth_url() else { return };
    let _turn = CLOUD.lock().await;
    let directory = tempfile::tempdir().unwrap();
    let driver = open_driver(directory.path(), &url);
    let setup_started = Instant::now();
    set_up(driver.as_ref()).await;
    let facts = driver
        .host_facts(&compute(3))
        .await
        .expect("facts of compute-3");
    let major: u64 = facts
        .version
        .as_str()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let target: drover_core::Version = format!("{}.0", major + 1).parse().unwrap();
    let setup = setup_started.elapsed();

    let started = Instant::now();
    let report = drover_conformance::run_all(driver.as_ref(), &fixture(target.clone())).await;
    let wall = started.elapsed();
    assert_eq!(report.driver_kind, "openstack");
    let expected: Vec<Check> = Check::ALL
        .iter()
        .copied()
        .filter(|check| fixture(target.clone()).opt_out(*check).is_none())
        .collect();
    assert_eq!(report.passed(), expected, "{}", report.failures());
    println!(
        "openstack conformance: {} in {:.1} s (setup {:.1} s)",
        report.summary(),
        wall.as_secs_f64(),
        setup.as_secs_f64()
    );
}

/// API requests one live migration costs (server read, migrations before, the action, its
/// polls, the check after), by the driver's own counter; and what a repeat and a refusal cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_migration_is_followed_through_novas_migration_record() {
    let Some(url) = auth_url() else { return };
    let _turn = CLOUD.lock().await;
    let directory = tempfile::tempdir().unwrap();
    let inventory_path = directory.path().join("inventory.yaml");
    std::fs::write(&inventory_path, inventory(&url)).unwrap();
    let password = std::env::var("DROVER_OPENSTACK_PASSWORD").expect("DROVER_OPENSTACK_PASSWORD");
    let client = drover_openstack::OpenstackClient::new(drover_openstack::Connection {
        auth: drover_openstack::KeystoneAuth {
            auth_url: url,
            credentials: drover_openstack::Credentials::Password {
                username: "admin".into(),
                user_domain: "Default".into(),
                password,
                project: "admin".into(),
                project_domain: "Default".into(),
            },
            region: Some("RegionOne".into()),
            interface: "public".into(),
        },
        ca_file: None,
        insecure: false,
        request_timeout: Duration::from_secs(30),
    })
    .unwrap();
    let commands = drover_openstack::host_commands::HostCommands::new(
        drover_openstack::host_commands::PLATFORM,
        &BTreeMap::new(),
        "openstack-migration",
        BTreeMap::new(),
    )
    .unwrap();
    let timings = drover_openstack::OpenstackTimings {
        migration_timeout: Duration::from_secs(120),
        poll: Duration::from_millis(200),
        action_timeout: Duration::from_secs(120),
        command_timeout: Duration::from_secs(30),
        upgrade_timeout: Duration::from_secs(60),
        reboot_timeout: Duration::from_secs(60),
    };
    let driver = drover_openstack::OpenstackDriver::new(
        client,
        timings,
        commands,
        true,
        "openstack-migration test".into(),
    );
    if !placement(&driver).await.contains_key("mig2") {
        harness_does(&["boot", "mig2", &compute(1)]);
    }
    let where_now = placement(&driver).await;
    let from = where_now["mig2"].clone();
    let to = if from == compute(1) {
        compute(2)
    } else {
        compute(1)
    };
    let before = driver.requests_sent();
    let started = Instant::now();
    driver
        .migrate("mig2", &from, &to)
        .await
        .expect("mig2 migrates live");
    let requests = driver.requests_sent() - before;
    let took = started.elapsed();
    assert_eq!(placement(&driver).await["mig2"], to);
    println!(
        "openstack: {requests} API requests for one migrated server ({:.1} s, migration polled every 200 ms); microversion 2.{}",
        took.as_secs_f64(),
        driver.client().compute_minor().await.unwrap()
    );
    assert!(
        requests >= 5,
        "migrations in progress, server read, migrations before, the action, the record, the check"
    );

    // Repeating it observes and returns at once: the migrations and the server, read.
    let before = driver.requests_sent();
    driver.migrate("mig2", &from, &to).await.unwrap();
    assert_eq!(driver.requests_sent() - before, 2);

    // A destination whose service is disabled by an operator: the scheduler refuses it, and the
    // migration record says so; the server stays where it is.
    let back = from.clone();
    let refused_started = Instant::now();
    driver.set_allocation(&back, false).await.unwrap();
    let refused = driver.migrate("mig2", &to, &back).await;
    driver.set_allocation(&back, true).await.unwrap();
    let error = refused.expect_err("a disabled destination is refused");
    assert!(
        matches!(&error, DriverError::Refused(text) if text.contains("ended error") || text.contains("HTTP 400")),
        "{error}"
    );
    assert_eq!(placement(&driver).await["mig2"], to);
    println!(
        "openstack: a migration to a disabled destination refused in {:.1} s: {error}",
        refused_started.elapsed().as_secs_f64()
    );
}

/// A destination whose `nova-compute` is stopped (and forced down, as an operator marks a dead
/// host): Nova records the live migration as `error`, the driver says `Refused` (so the planner
/// tries another destination), the server stays put, and the same server then migrates to
/// another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_to_a_stopped_compute_is_refused_and_succeeds_elsewhere() {
    let Some(url) = auth_url() else { return };
    let _turn = CLOUD.lock().await;
    let directory = tempfile::tempdir().unwrap();
    let driver = open_driver(directory.path(), &url);
    set_up(driver.as_ref()).await;
    // mig1 is alone on compute-3; compute-2 stops.
    harness_does(&["stop-compute", "2"]);
    harness_does(&["force-down", "2"]);
    let started = Instant::now();
    let refused = driver.migrate("mig1", &compute(3), &compute(2)).await;
    let refused_after = started.elapsed();
    harness_does(&["force-up", "2"]);
    harness_does(&["start-compute", "2"]);
    let error = refused.expect_err("a stopped destination is refused");
    assert!(matches!(error, DriverError::Refused(_)), "{error}");
    assert_eq!(placement(driver.as_ref()).await["mig1"], compute(3));
    driver
        .migrate("mig1", &compute(3), &compute(1))
        .await
        .expect("another destination works");
    assert_eq!(placement(driver.as_ref()).await["mig1"], compute(1));
    println!(
        "openstack: a migration to a stopped compute refused in {:.1} s ({error}), then done elsewhere",
        refused_after.as_secs_f64()
    );
}

/// `NAME STATUS HOST` of a server, by the harness (`openstack server list`), not the driver.
fn server_line(name: &str) -> Option<(String, String)> {
    let output = Command::new(harness()).arg("servers").output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(name)).then(|| {
                let status = words.next().unwrap_or("").to_string();
                let host = words.next().unwrap_or("").to_string();
                (status, host)
            })
        })
}

/// Shelve (offloaded, off its compute) and unshelve onto a named compute (2.91), each followed
/// by reading the server, as a `unmovable: shelve` VM goes through a roll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shelve_offloads_the_server_and_unshelve_starts_it_on_the_named_host() {
    let Some(url) = auth_url() else { return };
    let _turn = CLOUD.lock().await;
    let directory = tempfile::tempdir().unwrap();
    let driver = open_driver(directory.path(), &url);
    set_up(driver.as_ref()).await;
    assert!(driver.supports(drover_core::ActionKind::Shelve));
    assert!(!driver.supports(drover_core::ActionKind::Suspend));
    let where_now = placement(driver.as_ref()).await;
    let from = match where_now.get("shelf1") {
        Some(host) => host.clone(),
        None => {
            harness_does(&["boot", "shelf1", &compute(1)]);
            compute(1)
        }
    };
    // A server an earlier run left shelved comes back first.
    if let Some((status, _)) = server_line("shelf1") {
        if status.starts_with("SHELVED") {
            driver
                .unshelve_vm("shelf1", &from)
                .await
                .expect("unshelve the leftover");
        }
    }
    let from = placement(driver.as_ref()).await["shelf1"].clone();
    let to = if from == compute(1) {
        compute(2)
    } else {
        compute(1)
    };
    let started = Instant::now();
    driver.shelve_vm("shelf1", &from).await.expect("shelve");
    let shelved = server_line("shelf1").expect("the server still exists");
    assert_eq!(
        shelved.0, "SHELVED_OFFLOADED",
        "offloaded, off its host: {shelved:?}"
    );
    driver
        .shelve_vm("shelf1", &from)
        .await
        .expect("shelving a shelved server succeeds at once");
    driver.unshelve_vm("shelf1", &to).await.expect("unshelve");
    let back = server_line("shelf1").expect("the server still exists");
    assert_eq!(back, ("ACTIVE".to_string(), to.clone()));
    driver
        .unshelve_vm("shelf1", &to)
        .await
        .expect("unshelving a running server on its host succeeds at once");
    println!(
        "openstack shelve + unshelve {from} → {to}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
