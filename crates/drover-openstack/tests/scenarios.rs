//! The run-level conformance scenarios (drover-conformance's `Scenario`) on the REAL OpenStack
//! Zed control plane of `tests/openstack/controlplane.sh` (Keystone, Placement, Glance, Nova
//! API, conductor and scheduler, three `nova-compute` services with the harness's persisting
//! fake virt driver): the scenarios' world with its hosts h1..h3 as compute-1..3 and its VMs
//! `a`, `b`, `c` as Nova servers, each run opened through the registry's `kind: openstack`
//! driver as `drover run` opens it. The harness's `host_facts`, `upgrade` and `reboot` commands
//! are the host steps (a reboot restarts that compute's nova-compute).
//!
//! Each fault is staged on the control plane, never in the driver:
//!
//! - refused migration: the destination's pre-check (`check_can_live_migrate_destination` of
//!   the harness's fake driver) refuses the next incoming live migration of `a` once; Nova's
//!   conductor records the migration `error` and the server stays on its source;
//! - hanging migration: the next live migration of `a` does not end until it is aborted (the
//!   fake driver waits as Nova's own `FakeLiveMigrateDriver` does); the driver aborts it at its
//!   `migration_timeout_secs` (`DELETE /servers/ID/migrations/MID`) and Nova records it
//!   `cancelled`;
//! - a host that never returns: `controlplane.sh never-back 2`: compute-2's reboot stops its
//!   nova-compute and never starts it again;
//! - kill mid-wave: the suite drops the engine's process with a migration in flight.
//!
//! The control plane is observed beside Drover, never through the driver under test: compute
//! services (enabled or disabled with Drover's maintenance reason) and servers (status and
//! host) by Nova's API with a token of their own; versions, boot ids and whether each
//! nova-compute runs by the harness's files.
//!
//! Needs root and the running harness (`tests/openstack/controlplane.sh up` and its `env`, as
//! `.ci/run` does); without DROVER_OPENSTACK_AUTH_URL it says it was skipped and passes. The
//! test deletes every server on the control plane first (the tests take turns, one binary at a
//! time) and leaves every compute running and enabled.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover_conformance::{Scenario, ScenarioReport, Stage, Staged};
use drover_core::Version;
use drover_sim::driver::{
    HistoryEvent, HistoryEventKind, HostSnapshot, PlatformHostState, VmSnapshot, WorldSnapshot,
};
use serde_json::{json, Value};

/// The world's hosts h1..h3 are these computes.
const COMPUTES: [&str; 3] = ["compute-1", "compute-2", "compute-3"];
/// The world's VMs and the compute each starts on.
const SERVERS: [(&str, &str); 3] = [("a", "compute-1"), ("b", "compute-2"), ("c", "compute-3")];
const FAULTED_SERVER: &str = "a";
/// The world's h2.
const LOST_COMPUTE: usize = 2;
/// The driver's bound on a live migration in the hang scenario: a fake live migration through
/// Nova takes a few seconds, the hung one is aborted at this.
const HUNG_MIGRATION_TIMEOUT_SECS: u64 = 15;
/// The start of the disabled reason of a compute in Drover's maintenance (the driver's
/// `REASON_MAINTENANCE_WAS_*`).
const MAINTENANCE_REASON_PREFIX: &str = "drover: maintenance";
const MAINTENANCE_OF_AN_ENABLED_COMPUTE: &str = "drover: maintenance; was enabled";

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/openstack/controlplane.sh")
        .canonicalize()
        .expect("tests/openstack/controlplane.sh exists")
}

/// Runs `controlplane.sh ARGS`; its standard output, or what it said on failure.
fn harness_says(args: &[&str]) -> Result<String, String> {
    let output = Command::new(harness())
        .args(args)
        .output()
        .map_err(|error| format!("controlplane.sh {args:?}: {error}"))?;
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).trim().to_string()),
        false => Err(format!(
            "controlplane.sh {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// Nova's API with a token of its own (Keystone v3 password), blocking: the observer runs on a
/// thread of its own, outside the engine's runtime.
struct NovaReader {
    auth_url: String,
    password: String,
    http: reqwest::blocking::Client,
    /// (token, compute endpoint), asked again when Nova says 401.
    session: Mutex<Option<(String, String)>>,
}

impl NovaReader {
    fn new(auth_url: String, password: String) -> Result<NovaReader, String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| error.to_string())?;
        Ok(NovaReader {
            auth_url,
            password,
            http,
            session: Mutex::new(None),
        })
    }

    fn log_in(&self) -> Result<(String, String), String> {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": self.password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
        let answer = self
            .http
            .post(format!(
                "{}/auth/tokens",
                self.auth_url.trim_end_matches('/')
            ))
            .json(&body)
            .send()
            .map_err(|error| format!("keystone: {error}"))?;
        let token = answer
            .headers()
            .get("X-Subject-Token")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| format!("keystone answered {} without a token", answer.status()))?
            .to_string();
        let answer: Value = answer.json().map_err(|error| error.to_string())?;
        let endpoint = answer["token"]["catalog"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|service| service["type"] == "compute")
            .flat_map(|service| service["endpoints"].as_array().into_iter().flatten())
            .find(|endpoint| endpoint["interface"] == "public")
            .and_then(|endpoint| endpoint["url"].as_str())
            .ok_or("keystone's catalog has no public compute endpoint")?
            .trim_end_matches('/')
            .to_string();
        Ok((token, endpoint))
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        for _ in 0..2 {
            let (token, endpoint) = {
                let mut session = self.session.lock().map_err(|error| error.to_string())?;
                if session.is_none() {
                    *session = Some(self.log_in()?);
                }
                session.clone().ok_or("no session")?
            };
            let answer = self
                .http
                .get(format!("{endpoint}{path}"))
                .header("X-Auth-Token", token)
                .header("OpenStack-API-Version", "compute 2.79")
                .send()
                .map_err(|error| format!("nova {path}: {error}"))?;
            if answer.status() == reqwest::StatusCode::UNAUTHORIZED {
                *self.session.lock().map_err(|error| error.to_string())? = None;
                continue;
            }
            if !answer.status().is_success() {
                return Err(format!("nova {path}: HTTP {}", answer.status()));
            }
            return answer
                .json()
                .map_err(|error| format!("nova {path}: {error}"));
        }
        Err(format!("nova {path}: the token was refused twice"))
    }
}

struct ControlPlane {
    auth_url: String,
    nova: Arc<NovaReader>,
    /// The harness's state directory (`$DROVER_OPENSTACK_STATE`).
    state: PathBuf,
}

impl ControlPlane {
    fn compute_directory(&self, compute: &str) -> PathBuf {
        self.state.join("hosts").join(compute)
    }

    /// Whether the compute's nova-compute process runs (the harness's PID file).
    fn compute_runs(&self, compute: &str) -> bool {
        let pid_file = self.state.join("run").join(format!("nova-{compute}.pid"));
        match read(&pid_file) {
            Ok(pid) => Path::new("/proc").join(pid).exists(),
            Err(_) => false,
        }
    }

    fn fault_file(&self, name: &str) -> PathBuf {
        self.state.join("faults").join(name)
    }

    /// Every compute running, enabled and at version 1.0; no fault left; the world's servers
    /// ACTIVE (booted on their own computes when missing; left where an earlier scenario put
    /// them otherwise: the staged inventory says where they are). Returns server → compute.
    fn reset(&self) -> Result<BTreeMap<String, String>, String> {
        for name in ["refuse-migrate-a", "hang-migrate-a"] {
            let _ = std::fs::remove_file(self.fault_file(name));
        }
        for (index, compute) in COMPUTES.iter().enumerate() {
            let number = (index + 1).to_string();
            harness_says(&["back", &number])?;
            if !self.compute_runs(compute) {
                harness_says(&["start-compute", &number])?;
            }
            harness_says(&["set-version", &number, "1.0"])?;
        }
        let services = self.nova.get("/os-services?binary=nova-compute")?;
        for service in services["services"].as_array().into_iter().flatten() {
            let reason = service["disabled_reason"].as_str().unwrap_or("");
            if service["status"] == "disabled" && reason.starts_with("drover") {
                let host = service["host"].as_str().unwrap_or("");
                harness_says(&["enable", host.trim_start_matches("compute-")])?;
            }
        }
        let placed = self.servers()?;
        for (server, home) in SERVERS {
            match placed.get(server) {
                Some((_, status)) if status == "ACTIVE" => {}
                Some(other) => return Err(format!("server {server} is not ACTIVE: {other:?}")),
                None => {
                    harness_says(&["boot", server, home])?;
                }
            }
        }
        Ok(self
            .servers()?
            .into_iter()
            .map(|(server, (host, _))| (server, host))
            .collect())
    }

    /// Server name → (host, status), every project's.
    fn servers(&self) -> Result<BTreeMap<String, (String, String)>, String> {
        let answer = self.nova.get("/servers/detail?all_tenants=True")?;
        Ok(answer["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|server| {
                let text = |key: &str| server[key].as_str().unwrap_or("").to_string();
                (text("name"), (text("OS-EXT-SRV-ATTR:host"), text("status")))
            })
            .collect())
    }

    /// The scenarios' world as a `kind: openstack` inventory: hosts h1..h3 named compute-1..3,
    /// the world's VMs and policy, the driver's bounds short enough for a lost compute to be
    /// given up on in seconds.
    fn inventory(
        &self,
        scenario: Scenario,
        world: &str,
        placed: &BTreeMap<String, String>,
    ) -> String {
        let mut hosts_and_vms = world.split("driver:").next().unwrap_or(world).to_string();
        // Each server where it is now (an earlier scenario's roll moved it).
        for (server, home) in SERVERS {
            let world_host = format!("h{}", home.trim_start_matches("compute-"));
            if let Some(host) = placed.get(server) {
                hosts_and_vms = hosts_and_vms.replace(
                    &format!("{{name: {server}, host: {world_host},"),
                    &format!("{{name: {server}, host: {host},"),
                );
            }
        }
        for (index, compute) in COMPUTES.iter().enumerate() {
            for key in ["name", "host"] {
                hosts_and_vms = hosts_and_vms.replace(
                    &format!("{key}: h{}", index + 1),
                    &format!("{key}: {compute}"),
                );
            }
        }
        let migration_timeout_secs = match scenario {
            Scenario::MigrationHangsCancelledAtTimeout => HUNG_MIGRATION_TIMEOUT_SECS,
            _ => 120,
        };
        let script = harness().display().to_string();
        format!(
            r#"{hosts_and_vms}driver:
  kind: openstack
  auth_url: "{url}"
  username: admin
  project: admin
  password_env: DROVER_OPENSTACK_PASSWORD
  region: RegionOne
  allow_block_migration: true
  poll_ms: 200
  migration_timeout_secs: {migration_timeout_secs}
  action_timeout_secs: 120
  reboot_timeout_secs: 25
  upgrade_timeout_secs: 60
  commands:
    host_facts: ["{script}", facts, "{{host}}"]
    upgrade: ["{script}", upgrade, "{{host}}", "{{target}}"]
    reboot: ["{script}", reboot, "{{host}}"]
"#,
            url = self.auth_url
        )
    }
}

/// The control plane now. A compute whose nova-compute is stopped for good (`never-back`) is
/// `Down` and lost; one whose process is restarting is rebooting; a compute disabled with
/// Drover's maintenance reason is in maintenance; any disabled compute is cordoned.
fn observe(cloud: &ControlPlane) -> Result<WorldSnapshot, String> {
    let services = cloud.nova.get("/os-services?binary=nova-compute")?;
    let services: BTreeMap<String, &Value> = services["services"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|service| (service["host"].as_str().unwrap_or("").to_string(), service))
        .collect();
    let mut hosts = Vec::new();
    let mut history = Vec::new();
    for compute in COMPUTES {
        let directory = cloud.compute_directory(compute);
        let runs = cloud.compute_runs(compute);
        let lost = !runs && directory.join("never-back").exists();
        if lost {
            history.push(HistoryEvent {
                at_ms: 0,
                kind: HistoryEventKind::HostLost {
                    host: compute.to_string(),
                },
            });
        }
        let service = services
            .get(compute)
            .ok_or_else(|| format!("Nova has no nova-compute service on {compute}"))?;
        let disabled = service["status"] == "disabled";
        let reason = service["disabled_reason"].as_str().unwrap_or("");
        let state = match (lost, runs) {
            (true, _) => PlatformHostState::Down,
            (false, false) => PlatformHostState::Rebooting,
            _ if disabled && reason.starts_with(MAINTENANCE_REASON_PREFIX) => {
                PlatformHostState::Maintenance
            }
            _ => PlatformHostState::Up,
        };
        hosts.push(HostSnapshot {
            name: compute.to_string(),
            version: read(&directory.join("version"))?
                .parse::<Version>()
                .map_err(|error| error.to_string())?,
            boot_id: read(&directory.join("boot-id"))?,
            state,
            // A maintenance entered on an enabled compute is not a cordon; one entered on a
            // disabled compute keeps it disabled (its earlier reason follows).
            cordoned: disabled && !reason.starts_with(MAINTENANCE_OF_AN_ENABLED_COMPUTE),
        });
    }
    let servers = cloud.servers()?;
    let vms = SERVERS
        .iter()
        .map(|(server, _)| {
            let (host, status) = servers.get(*server).cloned().unwrap_or_default();
            VmSnapshot {
                name: server.to_string(),
                host,
                // A server being live-migrated runs all along.
                running: status == "ACTIVE" || status == "MIGRATING",
            }
        })
        .collect();
    Ok(WorldSnapshot {
        now_ms: 0,
        hosts,
        vms,
        operations: Vec::new(),
        history,
        // Nova has no compatibility level Drover raises, and no blocking settings here.
        compatibility_level: None,
        settings: Vec::new(),
    })
}

/// Reads the control plane on a thread of its own: the engine calls the observer from inside
/// its runtime, where a blocking HTTP client must not run.
fn observe_apart(cloud: &Arc<ControlPlane>) -> Result<WorldSnapshot, String> {
    let cloud = Arc::clone(cloud);
    std::thread::spawn(move || observe(&cloud))
        .join()
        .map_err(|_| "the observer panicked".to_string())?
}

struct RealControlPlane {
    cloud: Arc<ControlPlane>,
    staging: Mutex<Vec<(Scenario, Duration)>>,
}

#[async_trait::async_trait]
impl Stage for RealControlPlane {
    fn platform(&self) -> String {
        "the openstack driver on a real OpenStack Zed control plane (3 nova-compute, the harness's fake virt driver)".into()
    }

    fn opt_out(&self, _scenario: Scenario) -> Option<String> {
        None
    }

    async fn stage(
        &self,
        scenario: Scenario,
        world: &str,
        _directory: &Path,
    ) -> Result<Staged, String> {
        let started = Instant::now();
        let cloud = Arc::clone(&self.cloud);
        let placed = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let placed = cloud.reset()?;
            std::fs::create_dir_all(cloud.state.join("faults"))
                .map_err(|error| error.to_string())?;
            let fault =
                |name: &str| std::fs::write(cloud.fault_file(name), "").map_err(|e| e.to_string());
            match scenario {
                Scenario::MigrationRefusedRetriedElsewhere => {
                    fault(&format!("refuse-migrate-{FAULTED_SERVER}"))
                }
                Scenario::MigrationHangsCancelledAtTimeout => {
                    fault(&format!("hang-migrate-{FAULTED_SERVER}"))
                }
                Scenario::HostNeverReturnsAbortRestores => {
                    harness_says(&["never-back", &LOST_COMPUTE.to_string()]).map(|_| ())
                }
                Scenario::FullRollingUpgrade | Scenario::KilledMidWaveResumes => Ok(()),
            }?;
            Ok(placed)
        })
        .await
        .map_err(|error| error.to_string())??;
        self.staging
            .lock()
            .unwrap()
            .push((scenario, started.elapsed()));
        let cloud = Arc::clone(&self.cloud);
        Ok(Staged {
            inventory_text: self.cloud.inventory(scenario, world, &placed),
            observe: Box::new(move |_clock| observe_apart(&cloud)),
            keep_alive: Box::new(()),
        })
    }
}

/// Leaves the control plane usable by the next test: no fault, every compute back and running,
/// enabled, and none of the world's servers (the next test's roll would move them too).
struct Cleanup(Arc<ControlPlane>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in ["refuse-migrate-a", "hang-migrate-a"] {
            let _ = std::fs::remove_file(self.0.fault_file(name));
        }
        for (index, compute) in COMPUTES.iter().enumerate() {
            let number = (index + 1).to_string();
            let _ = harness_says(&["back", &number]);
            if !self.0.compute_runs(compute) {
                let _ = harness_says(&["start-compute", &number]);
            }
        }
        let _ = harness_says(&["clean-servers"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openstack_driver_on_a_real_control_plane_meets_every_scenario() {
    let Ok(auth_url) = std::env::var("DROVER_OPENSTACK_AUTH_URL") else {
        println!(
            "SKIPPED: DROVER_OPENSTACK_AUTH_URL is not set. The scenarios need a real OpenStack \
             control plane: run (as root) `tests/openstack/install.sh && \
             tests/openstack/controlplane.sh up && eval \"$(tests/openstack/controlplane.sh env)\"`, \
             then `cargo test -p drover-openstack --test scenarios` (.ci/run does this)"
        );
        return;
    };
    let password = std::env::var("DROVER_OPENSTACK_PASSWORD").expect("DROVER_OPENSTACK_PASSWORD");
    let state = std::env::var_os("DROVER_OPENSTACK_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| harness().parent().unwrap().join(".state"));
    let reader_url = auth_url.clone();
    let nova = tokio::task::spawn_blocking(move || NovaReader::new(reader_url, password))
        .await
        .unwrap()
        .expect("an HTTP client");
    let cloud = Arc::new(ControlPlane {
        auth_url,
        nova: Arc::new(nova),
        state,
    });
    let _cleanup = Cleanup(Arc::clone(&cloud));
    // Only the world's servers: another test's would be rolled too, outside the world.
    tokio::task::spawn_blocking(|| harness_says(&["clean-servers"]))
        .await
        .unwrap()
        .expect("clean-servers");
    let stage = Arc::new(RealControlPlane {
        cloud,
        staging: Mutex::new(Vec::new()),
    });
    // One at a time, each printed when it ends: a whole roll here takes minutes.
    let mut outcomes = Vec::new();
    for scenario in drover_conformance::selected_scenarios() {
        let outcome =
            drover_conformance::run_scenario(Arc::clone(&stage) as Arc<dyn Stage>, scenario).await;
        println!(
            "scenarios: {scenario}: {:?} in {} ms ({} migrations, {} failed attempts, {} restores)",
            outcome.verdict,
            outcome.wall.as_millis(),
            outcome.migrations,
            outcome.migrations_failed,
            outcome.restores
        );
        outcomes.push(outcome);
    }
    let report = ScenarioReport {
        platform: stage.platform(),
        outcomes,
    };
    println!("{report}");
    for (scenario, wall) in stage.staging.lock().unwrap().iter() {
        println!(
            "scenarios: staging {scenario} (computes reset, servers placed): {} ms",
            wall.as_millis()
        );
    }
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );
}
