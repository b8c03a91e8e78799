//! The run-level conformance scenarios (drover-conformance's `Scenario`) on REAL libvirtd + QEMU
//! hosts: the harness in `tests/libvirt/` with three hosts h1..h3 (the scenarios' world), each
//! run opened through the registry's `kind: libvirt` driver as `drover run` opens it:
//!
//! ```text
//! tests/libvirt/hosts.sh up 3
//! DROVER_LIBVIRT_HOSTS=h1=qemu+tcp://10.213.0.11/system,h2=qemu+tcp://10.213.0.12/system,h3=qemu+tcp://10.213.0.13/system \
//! DROVER_LIBVIRT_HARNESS=tests/libvirt \
//!     cargo test -p drover-libvirt --test scenarios -- --nocapture
//! tests/libvirt/hosts.sh down
//! ```
//!
//! Without both variables (or with fewer than the world's three hosts) the test says it was
//! skipped and passes. The world's VMs are real guests: `a` the harness's Linux guest (128 MiB),
//! `b` and `c` no-OS guests (64 MiB), defined afresh on h1, h2 and h3 for every scenario. Each
//! fault is staged on the real hosts, never in the driver:
//!
//! - refused migration: libvirt's `qemu` hook of every harness host (`hosts.sh` writes it)
//!   refuses the next incoming migration of `a` once (`<state>/faults/refuse-migrate-a`);
//! - hanging migration: `a` rewrites 8 MiB of its RAM continuously and its migration speed is
//!   set to 1 MiB/s on its source (`virsh migrate-setspeed`), so its first migration cannot
//!   finish before the short `migration_timeout_secs` and the driver must abort the job; a
//!   watcher here lifts the limit once that first job has ended, so the retry can finish;
//! - a host that never returns: the harness's upgrade step powers h2 off and never on again
//!   (`<state>/faults/never-returns-h2`);
//! - kill mid-wave: the suite drops the engine's process with a migration in flight.
//!
//! The platform is observed beside Drover, never through the driver under test: which host runs
//! each guest (libvirt, per host), whether each host's libvirtd answers, its version and boot
//! id (the harness's files). libvirt has no cordon or maintenance of its own: those are Drover's
//! marks, read from the run's marks file (where the libvirt driver keeps them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover_conformance::{Scenario, Stage, Staged};
use drover_core::Version;
use drover_sim::driver::{
    HistoryEvent, HistoryEventKind, HostSnapshot, PlatformHostState, VmSnapshot, WorldSnapshot,
};
use virt::connect::Connect;
use virt::domain::DomainState;
use virt::enumutil::Enum;

const HOSTS_VARIABLE: &str = "DROVER_LIBVIRT_HOSTS";
const HARNESS_VARIABLE: &str = "DROVER_LIBVIRT_HARNESS";
/// The world's hosts, as the harness names them.
const HOSTS: [&str; 3] = ["h1", "h2", "h3"];
/// The world's VMs and where each starts.
const GUESTS: [(&str, &str); 3] = [("a", "h1"), ("b", "h2"), ("c", "h3")];
/// The VM every migration fault is staged on, and the host that never returns.
const FAULTED_VM: &str = "a";
const LOST_HOST: &str = "h2";
/// `a`'s first migration runs at this speed while it rewrites `DIRTY_MIB` of its RAM: it cannot
/// converge, so only the driver's abort at `HUNG_MIGRATION_TIMEOUT_SECS` ends it.
const HUNG_MIGRATION_MIB_PER_SEC: u64 = 1;
const DIRTY_MIB: &str = "8";
const HUNG_MIGRATION_TIMEOUT_SECS: u64 = 6;
/// libvirt's own "unlimited" migration speed (`QEMU_DOMAIN_MIG_BANDWIDTH_MAX`, MiB/s).
const UNLIMITED_MIB_PER_SEC: u64 = 8_796_093_022_207;

/// `h1=URI,h2=URI` → `[(h1, URI), (h2, URI)]`.
fn hosts_from(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .filter_map(|entry| entry.split_once('='))
        .map(|(name, uri)| (name.trim().to_string(), uri.trim().to_string()))
        .collect()
}

/// The host part of a URI (`qemu+tcp://10.213.0.11/system` → `10.213.0.11`).
fn address_of(uri: &str) -> String {
    let after_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    after_scheme.split('/').next().unwrap_or("").to_string()
}

/// Runs one of the harness's scripts; its output on failure.
fn harness_does(harness: &Path, script: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(harness.join(script))
        .args(args)
        .output()
        .map_err(|error| format!("{script}: {error}"))?;
    match output.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{script} {args:?}: {}{}",
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

/// Writes a harness file the way the harness does (a temporary file renamed over it).
fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let temporary = path.with_extension("scenario-tmp");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|error| format!("{}: {error}", path.display()))
}

struct RealHosts {
    /// (name, URI) of h1..h3.
    hosts: Vec<(String, String)>,
    harness: PathBuf,
    /// The harness's state directory (`$DROVER_LIBVIRT_STATE`, default `<harness>/.state`).
    state: PathBuf,
}

impl RealHosts {
    fn from_environment() -> Option<RealHosts> {
        let (Ok(hosts_text), Some(harness)) = (
            std::env::var(HOSTS_VARIABLE),
            std::env::var_os(HARNESS_VARIABLE),
        ) else {
            println!(
                "scenarios: skipped (set {HOSTS_VARIABLE}=h1=URI,h2=URI,h3=URI and {HARNESS_VARIABLE} to run them on real libvirt hosts)"
            );
            return None;
        };
        let named = hosts_from(&hosts_text);
        let hosts: Vec<(String, String)> = HOSTS
            .iter()
            .filter_map(|wanted| named.iter().find(|(name, _)| name == wanted).cloned())
            .collect();
        if hosts.len() < HOSTS.len() {
            println!(
                "scenarios: skipped (the scenarios' world has three hosts h1, h2, h3; {HOSTS_VARIABLE} names {named:?}: run `tests/libvirt/hosts.sh up 3`)"
            );
            return None;
        }
        let harness = std::fs::canonicalize(PathBuf::from(harness))
            .expect("DROVER_LIBVIRT_HARNESS is a directory");
        let state = std::env::var_os("DROVER_LIBVIRT_STATE")
            .map(PathBuf::from)
            .unwrap_or_else(|| harness.join(".state"));
        Some(RealHosts {
            hosts,
            harness,
            state,
        })
    }

    fn uri_of(&self, host: &str) -> &str {
        self.hosts
            .iter()
            .find(|(name, _)| name == host)
            .map(|(_, uri)| uri.as_str())
            .unwrap_or("")
    }

    fn fault_file(&self, name: &str) -> PathBuf {
        self.state.join("faults").join(name)
    }

    /// Every host up at version 1.0 with no fault left and none of the world's guests, then
    /// the guests defined afresh where the world puts them.
    fn reset(&self, scenario: Scenario) -> Result<(), String> {
        for fault in [
            format!("refuse-migrate-{FAULTED_VM}"),
            format!("never-returns-{LOST_HOST}"),
        ] {
            let _ = std::fs::remove_file(self.fault_file(&fault));
        }
        for (vm, _) in GUESTS {
            // Not defined anywhere is fine: the scenario before removed it.
            let _ = harness_does(&self.harness, "guests.sh", &["undefine", vm]);
        }
        for host in HOSTS {
            // A host the scenario before powered off comes back (a no-op for a live one).
            harness_does(&self.harness, "hosts.sh", &["start", host])?;
            write_atomically(&self.state.join(host).join("version"), "1.0\n")?;
        }
        for (vm, host) in GUESTS {
            let mut args = vec!["define", vm, host];
            match vm == FAULTED_VM {
                true => args.extend(["128", "--kind", "linux"]),
                false => args.extend(["64", "--kind", "tiny"]),
            }
            if vm == FAULTED_VM && scenario == Scenario::MigrationHangsCancelledAtTimeout {
                args.extend(["--dirty-mib", DIRTY_MIB]);
            }
            harness_does(&self.harness, "guests.sh", &args)?;
        }
        Ok(())
    }

    /// The scenarios' world as a `kind: libvirt` inventory: the world's hosts, VMs and policy
    /// with timeouts that fit real hosts (a harness reboot takes about a second), and the
    /// harness's step scripts as the host commands.
    fn inventory(&self, scenario: Scenario, world: &str) -> String {
        let migration_timeout_secs = match scenario {
            Scenario::MigrationHangsCancelledAtTimeout => HUNG_MIGRATION_TIMEOUT_SECS,
            _ => 60,
        };
        let hosts_and_vms = world.split("driver:").next().unwrap_or(world);
        let hosts_and_vms = hosts_and_vms
            .replace("step_timeout_secs: 120", "step_timeout_secs: 60")
            .replace(
                "migration_timeout_secs: 300",
                &format!("migration_timeout_secs: {migration_timeout_secs}"),
            )
            .replace("upgrade_timeout_secs: 1800", "upgrade_timeout_secs: 12")
            .replace("reboot_timeout_secs: 600", "reboot_timeout_secs: 12");
        let step = |script: &str| {
            self.harness
                .join("steps")
                .join(script)
                .display()
                .to_string()
        };
        let mut text = format!("{hosts_and_vms}driver:\n  kind: libvirt\n  hosts:\n");
        for (name, uri) in &self.hosts {
            text.push_str(&format!(
                "    {name}: {{uri: \"{uri}\", address: \"{}\"}}\n",
                address_of(uri)
            ));
        }
        text.push_str(&format!(
            "  marks_file: marks.json\n  commands:\n    host_facts: [sh, {}, \"{{host}}\"]\n    upgrade: [sh, {}, \"{{host}}\", \"{{target}}\"]\n    reboot: [sh, {}, \"{{host}}\", \"{{boot_id_before}}\"]\n",
            step("facts.sh"),
            step("upgrade.sh"),
            step("reboot.sh")
        ));
        text
    }
}

/// What each host runs: VM name → its libvirt state there.
fn active_domains(uri: &str) -> Option<BTreeMap<String, DomainState>> {
    let connect = Connect::open(Some(uri)).ok()?;
    let mut found = BTreeMap::new();
    for domain in connect
        .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        .ok()?
    {
        let (Ok(name), Ok((Enum::Known(state), _))) = (domain.name(), domain.state()) else {
            continue;
        };
        found.insert(name, state);
    }
    Some(found)
}

/// The real hosts now: libvirt's answer per host, the harness's version and boot id files,
/// Drover's marks. A host powered off by the never-returns fault is `Down` and lost; a host
/// whose libvirtd does not answer otherwise is rebooting (the harness's reboot takes ~1 s).
fn observe(
    real: &RealHosts,
    marks_file: &Path,
    last_seen: &Mutex<BTreeMap<String, String>>,
) -> Result<WorldSnapshot, String> {
    let marks: serde_json::Value = match std::fs::read_to_string(marks_file) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|error| format!("{}: {error}", marks_file.display()))?,
        Err(_) => serde_json::Value::Null,
    };
    let mut hosts = Vec::new();
    let mut history = Vec::new();
    let mut running_on: BTreeMap<String, Vec<(String, DomainState)>> = BTreeMap::new();
    for host in HOSTS {
        let answered = active_domains(real.uri_of(host));
        let lost = answered.is_none() && real.fault_file(&format!("never-returns-{host}")).exists();
        if lost {
            history.push(HistoryEvent {
                at_ms: 0,
                kind: HistoryEventKind::HostLost {
                    host: host.to_string(),
                },
            });
        }
        let state = match (&answered, lost) {
            (_, true) => PlatformHostState::Down,
            (None, false) => PlatformHostState::Rebooting,
            (Some(_), false) if marks[host]["in_maintenance"] == true => {
                PlatformHostState::Maintenance
            }
            (Some(_), false) => PlatformHostState::Up,
        };
        for (vm, domain_state) in answered.into_iter().flatten() {
            running_on
                .entry(vm)
                .or_default()
                .push((host.to_string(), domain_state));
        }
        let directory = real.state.join(host);
        hosts.push(HostSnapshot {
            name: host.to_string(),
            version: read(&directory.join("version"))?
                .parse::<Version>()
                .map_err(|error| error.to_string())?,
            boot_id: read(&directory.join("boot_id"))?,
            state,
            cordoned: marks[host]["cordoned"] == true,
        });
    }
    let mut last_seen = last_seen.lock().map_err(|error| error.to_string())?;
    let mut vms = Vec::new();
    for (vm, _) in GUESTS {
        // During a live migration the guest is active on both hosts (paused on the
        // destination until the switch-over): it runs where libvirt says it is running.
        let places = running_on.remove(vm).unwrap_or_default();
        let place = places
            .iter()
            .find(|(_, state)| *state == DomainState::Running)
            .or(places.first());
        let snapshot = match place {
            Some((host, _)) => {
                last_seen.insert(vm.to_string(), host.clone());
                VmSnapshot {
                    name: vm.to_string(),
                    host: host.clone(),
                    running: true,
                }
            }
            None => VmSnapshot {
                name: vm.to_string(),
                host: last_seen.get(vm).cloned().unwrap_or_default(),
                running: false,
            },
        };
        vms.push(snapshot);
    }
    Ok(WorldSnapshot {
        now_ms: 0,
        hosts,
        vms,
        operations: Vec::new(),
        history,
        // libvirt has neither a compatibility level nor blocking settings.
        compatibility_level: None,
        settings: Vec::new(),
    })
}

/// Whether `vm` has a job in progress on the host at `uri` (`virDomainGetJobInfo`).
fn has_job(uri: &str, vm: &str) -> Option<bool> {
    let connect = Connect::open(Some(uri)).ok()?;
    let domain = connect.lookup_domain_by_name(vm).ok()?;
    let job_type = domain.job_info().ok()?.r#type;
    Some(
        job_type == virt::sys::VIR_DOMAIN_JOB_BOUNDED as i32
            || job_type == virt::sys::VIR_DOMAIN_JOB_UNBOUNDED as i32,
    )
}

fn set_migration_speed(uri: &str, vm: &str, mib_per_sec: u64) -> Result<(), String> {
    let connect = Connect::open(Some(uri)).map_err(|error| error.to_string())?;
    let domain = connect
        .lookup_domain_by_name(vm)
        .map_err(|error| error.to_string())?;
    domain
        .migrate_set_max_speed(mib_per_sec, 0)
        .map_err(|error| error.to_string())
}

/// Makes the hang last one migration: once `vm`'s first migration job on `source` has ended
/// (the driver aborted it), the speed limit is lifted, so the retry finishes. Stops with the
/// scenario.
struct OneHungMigration {
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl OneHungMigration {
    fn stage(source_uri: &str, vm: &str) -> Result<OneHungMigration, String> {
        set_migration_speed(source_uri, vm, HUNG_MIGRATION_MIB_PER_SEC)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (uri, vm, stopping) = (source_uri.to_string(), vm.to_string(), Arc::clone(&stop));
        let watcher = std::thread::spawn(move || {
            let mut job_seen = false;
            while !stopping.load(Ordering::Relaxed) {
                match has_job(&uri, &vm) {
                    Some(true) => job_seen = true,
                    Some(false) if job_seen => {
                        if let Err(problem) = set_migration_speed(&uri, &vm, UNLIMITED_MIB_PER_SEC)
                        {
                            println!("scenarios: lifting {vm}'s migration speed: {problem}");
                        }
                        return;
                    }
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(OneHungMigration {
            stop,
            watcher: Some(watcher),
        })
    }
}

impl Drop for OneHungMigration {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

struct LibvirtStage {
    real: Arc<RealHosts>,
    /// Wall time of each scenario's staging (hosts reset, guests defined).
    staging: Mutex<Vec<(Scenario, Duration)>>,
}

#[async_trait::async_trait]
impl Stage for LibvirtStage {
    fn platform(&self) -> String {
        "the libvirt driver on 3 real libvirtd + QEMU hosts (tests/libvirt harness)".into()
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
        let started = Instant::now();
        let real = Arc::clone(&self.real);
        let staged_real = Arc::clone(&real);
        let hang = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let real = staged_real;
            real.reset(scenario)?;
            std::fs::create_dir_all(real.state.join("faults"))
                .map_err(|error| error.to_string())?;
            let fault = |name: String| {
                std::fs::write(real.fault_file(&name), "").map_err(|error| error.to_string())
            };
            match scenario {
                Scenario::MigrationRefusedRetriedElsewhere => {
                    fault(format!("refuse-migrate-{FAULTED_VM}"))?
                }
                Scenario::HostNeverReturnsAbortRestores => {
                    fault(format!("never-returns-{LOST_HOST}"))?
                }
                Scenario::MigrationHangsCancelledAtTimeout => {
                    let source = real.uri_of(GUESTS[0].1).to_string();
                    return OneHungMigration::stage(&source, FAULTED_VM).map(Some);
                }
                Scenario::FullRollingUpgrade | Scenario::KilledMidWaveResumes => {}
            }
            Ok(None)
        })
        .await
        .map_err(|error| error.to_string())??;
        self.staging
            .lock()
            .unwrap()
            .push((scenario, started.elapsed()));
        let inventory_text = real.inventory(scenario, world);
        let marks_file = directory.join("marks.json");
        let last_seen = Mutex::new(BTreeMap::new());
        Ok(Staged {
            inventory_text,
            observe: Box::new(move |_clock| observe(&real, &marks_file, &last_seen)),
            keep_alive: Box::new(hang),
        })
    }
}

/// Leaves the hosts as the test found them: no guest of the world, no fault, every host up.
struct Cleanup(Arc<RealHosts>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let real = &self.0;
        for fault in [
            format!("refuse-migrate-{FAULTED_VM}"),
            format!("never-returns-{LOST_HOST}"),
        ] {
            let _ = std::fs::remove_file(real.fault_file(&fault));
        }
        for (vm, _) in GUESTS {
            let _ = harness_does(&real.harness, "guests.sh", &["undefine", vm]);
        }
        for host in HOSTS {
            let _ = harness_does(&real.harness, "hosts.sh", &["start", host]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_libvirt_driver_on_real_hosts_meets_every_scenario() {
    // RUST_LOG=drover_libvirt=info shows the driver's progress lines.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let Some(real) = RealHosts::from_environment() else {
        return;
    };
    let real = Arc::new(real);
    let _cleanup = Cleanup(Arc::clone(&real));
    let stage = Arc::new(LibvirtStage {
        real,
        staging: Mutex::new(Vec::new()),
    });
    let report = drover_conformance::run_scenarios(Arc::clone(&stage) as Arc<dyn Stage>).await;
    for (scenario, wall) in stage.staging.lock().unwrap().iter() {
        println!(
            "scenarios: staging {scenario} (hosts reset, guests defined): {} ms",
            wall.as_millis()
        );
    }
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );
}
