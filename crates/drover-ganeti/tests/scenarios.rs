//! The run-level conformance scenarios (drover-conformance's `Stage`) on a REAL Ganeti 3.0
//! cluster: the harness `tests/ganeti/cluster.sh` (three nodes in network namespaces, the `fake`
//! hypervisor, RAPI over HTTPS), started once by `.ci/run` (DROVER_GANETI_RAPI set; without it
//! the test FAILS saying how to start it, as `conformance.rs` does).
//!
//! The scenarios' world keeps its shape: h1, h2, h3 are gnt1 (the master), gnt2, gnt3; VMs a, b,
//! c are the harness's live-migratable `sharedfile` instances sf1, sf2, sf3, one per node, and
//! the harness's other instances (dl1, fl2, dl3) are shut down for the scenarios (and started
//! again at the end), so exactly the world's three VMs run. The world's policy is kept; its
//! sizes are what Drover plans with. Before each scenario the fixture puts the cluster back
//! (daemons, bridges, node roles and tags, instance placement) with `gnt-*` commands on the
//! master.
//!
//! Each fault is staged in the cluster itself, not in front of the driver:
//! - a refused migration: the instances' NIC bridge (`instbr0`) is removed from gnt2 and gnt3,
//!   so Ganeti refuses the first migration in its prerequisite check (`CheckInstanceBridgesExist`,
//!   lib/cmdlib/instance_migration.py: an `OpPrereqError`); the bridges are put back as soon as a
//!   failed `INSTANCE_MIGRATE` job shows in `/2/jobs`, and the retry elsewhere succeeds;
//! - a hanging migration: as soon as a node is cordoned, a `gnt-debug delay` job (`OP_TEST_DELAY`,
//!   LUTestDelay locks the nodes it runs on) holds the other two nodes' locks for longer than the
//!   driver's `job_timeout_secs`: the migration job waits for its locks, the driver cancels it at
//!   its timeout (`DELETE /2/jobs/ID` of a waiting job), and the retry runs once the delay ends;
//! - a host that never returns: the `reboot` command of gnt2 stops the node's Ganeti daemons
//!   and starts nothing (its master no longer reaches it: null live fields);
//! - a killed process: nothing on the cluster (the scenario runner drops the engine mid-wave).
//!
//! The DST invariants are checked on the cluster's own state, read beside the driver: RAPI's
//! `/2/nodes?bulk=1` and `/2/instances?bulk=1` through `curl`, the harness's version and boot-id
//! files; the history the invariants read (migrations, upgrades, a lost host) is what changed
//! between two reads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drover_conformance::{Scenario, Stage, Staged};
use drover_sim::driver::{
    HistoryEvent, HistoryEventKind, HostSnapshot, PlatformHostState, VmSnapshot, WorldSnapshot,
};
use serde_json::Value;

const DOMAIN: &str = "drover.test";
/// The world's VMs a, b, c and the instances that play them.
const WORLD_VMS: [(&str, &str); 3] = [("a", "sf1"), ("b", "sf2"), ("c", "sf3")];
/// The harness's other instances, shut down while the scenarios run.
const EXTRA_INSTANCES: [&str; 3] = ["dl1", "fl2", "dl3"];
/// The driver's job deadline: a hung migration job is cancelled after this.
const JOB_TIMEOUT_SECS: u64 = 30;
/// How long the hang's delay job holds the nodes' locks: past one job deadline, so the first
/// attempt is cancelled and the retry (after the policy's 1–2 s backoff) gets the locks.
const HANG_DELAY_SECS: u64 = JOB_TIMEOUT_SECS + 10;
/// A node's reboot (its daemons restarted; the master's brings RAPI back) and its return.
const REBOOT_TIMEOUT_SECS: u64 = 60;
/// How long an observation waits for RAPI while the master's daemons restart.
const RAPI_OUTAGE_LIMIT: Duration = Duration::from_secs(90);
/// The node whose reboot never returns in the lost-host scenario (the world's h2).
const LOST_NODE: u32 = 2;
/// One cluster: the tests of this file take turns.
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

fn run_harness(args: &[&str]) -> Result<String, String> {
    let output = Command::new(harness())
        .args(args)
        .output()
        .map_err(|error| format!("cluster.sh {args:?}: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "cluster.sh {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A command on the current master node (`gnt-*`; the scenarios hand the role around).
fn on_master(args: &[&str]) -> Result<String, String> {
    let mut full = vec!["gnt"];
    full.extend_from_slice(args);
    run_harness(&full)
}

/// A command on the current master; what it printed on stdout and stderr.
fn on_master_with_stderr(args: &[&str]) -> Result<String, String> {
    let output = Command::new(harness())
        .arg("gnt")
        .args(args)
        .output()
        .map_err(|error| format!("cluster.sh gnt {args:?}: {error}"))?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.success() {
        true => Ok(printed),
        false => Err(format!("cluster.sh gnt {args:?}: {printed}")),
    }
}

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

/// What the fixture needs to reach the cluster beside the driver.
#[derive(Clone)]
struct Access {
    url: String,
    user: String,
    password_file: String,
    ca_file: String,
    state_dir: PathBuf,
}

impl Access {
    fn new() -> Access {
        Access {
            url: rapi_url(),
            user: run_harness(&["rapi-user"]).unwrap(),
            password_file: run_harness(&["password-file"]).unwrap(),
            ca_file: run_harness(&["ca-file"]).unwrap(),
            state_dir: run_harness(&["state-dir"]).unwrap().into(),
        }
    }

    /// One RAPI GET through curl (the password on its stdin, never on a command line).
    fn get_once(&self, path: &str) -> Result<Value, String> {
        let password =
            std::fs::read_to_string(&self.password_file).map_err(|error| error.to_string())?;
        let mut child = Command::new("curl")
            .args([
                "-sS",
                "--fail",
                "--config",
                "-",
                "--max-time",
                "20",
                "--cacert",
            ])
            .arg(&self.ca_file)
            .arg(format!("{}{path}", self.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("curl: {error}"))?;
        writeln!(
            child.stdin.take().expect("piped"),
            "user = \"{}:{}\"",
            self.user,
            password.trim()
        )
        .map_err(|error| error.to_string())?;
        let output = child
            .wait_with_output()
            .map_err(|error| error.to_string())?;
        if !output.status.success() {
            return Err(format!(
                "GET {path}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        serde_json::from_slice(&output.stdout).map_err(|error| format!("GET {path}: {error}"))
    }

    /// A RAPI GET that waits out the master's own reboot (its daemons, RAPI among them, restart).
    fn get(&self, path: &str) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            match self.get_once(path) {
                Ok(value) => return Ok(value),
                Err(problem) if started.elapsed() > RAPI_OUTAGE_LIMIT => return Err(problem),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    fn node_file(&self, k: u32, file: &str) -> Result<String, String> {
        let path = self.state_dir.join(format!("n{k}")).join(file);
        std::fs::read_to_string(&path)
            .map(|text| text.trim().to_string())
            .map_err(|error| format!("{}: {error}", path.display()))
    }
}

fn text<'a>(record: &'a Value, field: &str) -> &'a str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

fn tags(record: &Value) -> Vec<String> {
    record
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Where the fixture keeps one scenario's markers.
struct Markers {
    directory: PathBuf,
}

impl Markers {
    /// Written by the reboot wrapper once it has stopped the lost node's daemons.
    fn lost(&self) -> PathBuf {
        self.directory.join("lost")
    }
}

/// What one scenario's observer remembers between two reads.
#[derive(Default)]
struct Observed {
    previous: Option<WorldSnapshot>,
    history: Vec<HistoryEvent>,
    /// The refused-migration fault: bridges removed, waiting for the first refused job (jobs
    /// after this id count).
    refusal_armed_after_job: Option<u64>,
    /// The hang fault: waiting for a node to be cordoned.
    hang_armed: bool,
}

/// The cluster's own state (see the module doc), plus the history since the last read.
fn read_world(
    access: &Access,
    markers: &Markers,
    observed: &mut Observed,
) -> Result<WorldSnapshot, String> {
    let nodes = access.get("/2/nodes?bulk=1")?;
    let instances = access.get("/2/instances?bulk=1")?;
    let lost = std::fs::read_to_string(markers.lost()).ok();
    let mut hosts = Vec::new();
    for record in nodes.as_array().ok_or("/2/nodes is not a list")? {
        let name = text(record, "name").to_string();
        let k: u32 = name
            .trim_start_matches("gnt")
            .split('.')
            .next()
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| format!("node {name} is not the harness's"))?;
        let node_tags = tags(record);
        let answers = !record.get("mfree").unwrap_or(&Value::Null).is_null();
        let offline = record.get("offline").and_then(Value::as_bool) == Some(true);
        let drained = record.get("drained").and_then(Value::as_bool) == Some(true);
        let state = if lost.as_deref().map(str::trim) == Some(name.as_str()) {
            PlatformHostState::Down
        } else if !answers || offline {
            // Not answering its master, and not the staged lost node: restarting.
            PlatformHostState::Rebooting
        } else if node_tags.iter().any(|tag| tag == "drover:maintenance") {
            PlatformHostState::Maintenance
        } else {
            PlatformHostState::Up
        };
        hosts.push(HostSnapshot {
            version: access
                .node_file(k, "version")?
                .parse()
                .map_err(|error| format!("{name}'s version: {error}"))?,
            boot_id: access.node_file(k, "boot-id")?,
            state,
            cordoned: drained || node_tags.iter().any(|tag| tag == "drover:cordoned"),
            name,
        });
    }
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut vms: Vec<VmSnapshot> = instances
        .as_array()
        .ok_or("/2/instances is not a list")?
        .iter()
        .map(|record| VmSnapshot {
            name: text(record, "name").to_string(),
            host: text(record, "pnode").to_string(),
            running: text(record, "status") == "running",
        })
        .collect();
    vms.sort_by(|a, b| a.name.cmp(&b.name));
    // The history: migrations first (a VM leaves a node before that node's upgrade), then
    // upgrades, then a node lost.
    if let Some(previous) = &observed.previous {
        for vm in &vms {
            if let Some(before) = previous.vm(&vm.name) {
                if before.host != vm.host {
                    observed.history.push(HistoryEvent {
                        at_ms: 0,
                        kind: HistoryEventKind::VmMigrated {
                            vm: vm.name.clone(),
                            from: before.host.clone(),
                            to: vm.host.clone(),
                            started_at_ms: 0,
                        },
                    });
                }
            }
        }
        for host in &hosts {
            if let Some(before) = previous.host(&host.name) {
                if before.version != host.version {
                    observed.history.push(HistoryEvent {
                        at_ms: 0,
                        kind: HistoryEventKind::HostUpgraded {
                            host: host.name.clone(),
                            from_version: before.version.to_string(),
                            to_version: host.version.to_string(),
                            started_at_ms: 0,
                        },
                    });
                }
            }
        }
    }
    for host in &hosts {
        let newly_lost = host.state == PlatformHostState::Down
            && !observed.history.iter().any(|event| {
                matches!(&event.kind, HistoryEventKind::HostLost { host: lost } if *lost == host.name)
            });
        if newly_lost {
            observed.history.push(HistoryEvent {
                at_ms: 0,
                kind: HistoryEventKind::HostLost {
                    host: host.name.clone(),
                },
            });
        }
    }
    let snapshot = WorldSnapshot {
        now_ms: 0,
        hosts,
        vms,
        operations: Vec::new(),
        history: observed.history.clone(),
        // Ganeti has neither a compatibility level nor blocking settings Drover changes.
        compatibility_level: None,
        settings: Vec::new(),
    };
    observed.previous = Some(snapshot.clone());
    Ok(snapshot)
}

/// The newest job id Ganeti knows (`GET /2/jobs`: `[{"id", "uri"}]`).
fn newest_job(access: &Access) -> Result<u64, String> {
    Ok(access
        .get("/2/jobs")?
        .as_array()
        .ok_or("/2/jobs is not a list")?
        .iter()
        .filter_map(|job| match job.get("id") {
            Some(Value::Number(id)) => id.as_u64(),
            Some(Value::String(id)) => id.parse().ok(),
            _ => None,
        })
        .max()
        .unwrap_or(0))
}

/// A failed `INSTANCE_MIGRATE` job newer than `after`, if Ganeti has one.
fn refused_migration_since(access: &Access, after: u64) -> Result<Option<String>, String> {
    let jobs = access.get("/2/jobs?bulk=1")?;
    Ok(jobs.as_array().into_iter().flatten().find_map(|job| {
        let id = job.get("id").and_then(Value::as_u64).unwrap_or(0);
        let summary = job.get("summary").map(Value::to_string).unwrap_or_default();
        (id > after && text(job, "status") == "error" && summary.contains("INSTANCE_MIGRATE"))
            .then_some(summary)
    }))
}

/// Puts back a node's instance bridge (removed by the refused-migration fault).
fn bridge_back(k: u32) -> Result<(), String> {
    run_harness(&[
        "exec",
        &k.to_string(),
        "sh",
        "-c",
        "ip link show instbr0 >/dev/null 2>&1 || { ip link add instbr0 type bridge && ip link set instbr0 up; }",
    ])
    .map(|_| ())
}

/// The faults that wait for the run: called before every observation.
fn advance_faults(access: &Access, observed: &mut Observed) -> Result<(), String> {
    if let Some(after) = observed.refusal_armed_after_job {
        if refused_migration_since(access, after)?.is_some() {
            for k in 2..=3 {
                bridge_back(k)?;
            }
            observed.refusal_armed_after_job = None;
        }
    }
    if observed.hang_armed {
        let nodes = access.get("/2/nodes?bulk=1")?;
        let cordoned: Option<String> = nodes.as_array().into_iter().flatten().find_map(|node| {
            (tags(node).iter().any(|tag| tag == "drover:cordoned"))
                .then(|| text(node, "name").to_string())
        });
        if let Some(cordoned) = cordoned {
            let mut args = vec!["gnt-debug".to_string(), "delay".into(), "--submit".into()];
            for k in 1..=3 {
                if node(k) != cordoned {
                    args.push("-n".into());
                    args.push(node(k));
                }
            }
            args.push(HANG_DELAY_SECS.to_string());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            // `--submit` prints "JobID: N" on stderr.
            let submitted = on_master_with_stderr(&args)?;
            let job_id = submitted
                .lines()
                .find_map(|line| line.trim().strip_prefix("JobID:"))
                .map(|id| id.trim().to_string())
                .ok_or_else(|| {
                    format!("gnt-debug delay --submit printed no job id: {submitted}")
                })?;
            // Running means LUTestDelay holds its node locks: the migration cannot have them.
            let started = Instant::now();
            loop {
                let status =
                    on_master(&["gnt-job", "list", "--no-headers", "-o", "status", &job_id])?;
                if status.trim() == "running" {
                    break;
                }
                if started.elapsed() > Duration::from_secs(30) {
                    return Err(format!("the delay job {job_id} is {status}, not running"));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            observed.hang_armed = false;
        }
    }
    Ok(())
}

/// Puts the cluster back as the world starts: every node's daemons and bridge up, no drover
/// tag, nothing drained, every node a master candidate; the world's VMs running one per node,
/// the others shut down (`extras_running`: or running again, at the end).
fn put_cluster_back(access: &Access, extras_running: bool) -> Result<(), String> {
    for k in 1..=3 {
        bridge_back(k)?;
    }

    let nodes = access.get("/2/nodes?bulk=1")?;
    for record in nodes.as_array().ok_or("/2/nodes is not a list")? {
        let name = text(record, "name").to_string();
        if record.get("mfree").unwrap_or(&Value::Null).is_null() {
            let k = name.trim_start_matches("gnt").chars().next().unwrap_or('0');
            run_harness(&[
                "exec",
                &k.to_string(),
                "/usr/lib/ganeti/daemon-util",
                "start-all",
            ])?;
        }
    }
    // Wait until every node answers its master again.
    let started = Instant::now();
    loop {
        let nodes = access.get("/2/nodes?bulk=1")?;
        let silent: Vec<&str> = nodes
            .as_array()
            .into_iter()
            .flatten()
            .filter(|node| node.get("mfree").unwrap_or(&Value::Null).is_null())
            .map(|node| text(node, "name"))
            .collect();
        if silent.is_empty() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("nodes still not answering: {silent:?}"));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let nodes = access.get("/2/nodes?bulk=1")?;
    for record in nodes.as_array().ok_or("/2/nodes is not a list")? {
        let name = text(record, "name");
        let ours: Vec<String> = tags(record)
            .into_iter()
            .filter(|tag| tag.starts_with("drover:"))
            .collect();
        if !ours.is_empty() {
            let mut args = vec!["gnt-node", "remove-tags", name];
            args.extend(ours.iter().map(String::as_str));
            on_master(&args)?;
        }
        if record.get("drained").and_then(Value::as_bool) == Some(true) {
            on_master(&["gnt-node", "modify", "--drained=no", name])?;
        }
    }
    let nodes = access.get("/2/nodes?bulk=1")?;
    for record in nodes.as_array().ok_or("/2/nodes is not a list")? {
        if text(record, "role") == "R" {
            on_master(&[
                "gnt-node",
                "modify",
                "--master-candidate=yes",
                text(record, "name"),
            ])?;
        }
    }
    // The world's master is gnt1; a roll hands the role to a candidate before gnt1's upgrade.
    // Only a master candidate can take it back, hence after the roles above.
    run_harness(&["master-failover", "1"])?;
    let instances = access.get("/2/instances?bulk=1")?;
    let list = instances.as_array().ok_or("/2/instances is not a list")?;
    let find = |name: &str| {
        list.iter()
            .find(|record| text(record, "name") == name)
            .ok_or_else(|| format!("the harness's instance {name} is missing"))
    };
    for (k, (_, instance)) in (1..=3).zip(WORLD_VMS) {
        let record = find(instance)?;
        let home = node(k);
        let running = text(record, "status") == "running";
        if text(record, "pnode") != home {
            let verb = if running { "migrate" } else { "failover" };
            let mut args = vec!["gnt-instance", verb, "-f", "-n", &home, instance];
            if !running {
                args.insert(3, "--ignore-consistency");
            }
            on_master(&args)?;
        }
        if !running || text(record, "pnode") != home {
            let after = access.get(&format!("/2/instances/{instance}"))?;
            if text(&after, "status") != "running" {
                on_master(&["gnt-instance", "startup", instance])?;
            }
        }
    }
    for instance in EXTRA_INSTANCES {
        let running = text(find(instance)?, "status") == "running";
        if running && !extras_running {
            on_master(&["gnt-instance", "shutdown", "--timeout=0", instance])?;
        }
        if !running && extras_running {
            on_master(&["gnt-instance", "startup", instance])?;
        }
    }
    Ok(())
}

/// The world's inventory on the cluster: its hosts and VMs renamed, its policy kept, the
/// target one more than the newest version a node runs, a `kind: ganeti` section.
fn inventory(access: &Access, world: &str, reboot_command: &Path) -> Result<String, String> {
    let newest = (1..=3)
        .map(|k| {
            access.node_file(k, "version").map(|version| {
                version
                    .split('.')
                    .next()
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .collect::<Result<Vec<u64>, String>>()?
        .into_iter()
        .max()
        .unwrap_or(0);
    let target = format!("{}.0", newest + 1);
    let hosts_and_vms = world.split("driver:").next().unwrap_or(world);
    let mut text = hosts_and_vms.replace(
        "target_version: \"2.0\"",
        &format!("target_version: \"{target}\""),
    );
    for k in 1..=3 {
        text = text
            .replace(&format!("name: h{k},"), &format!("name: {},", node(k)))
            .replace(&format!("host: h{k},"), &format!("host: {},", node(k)));
    }
    for (world_vm, instance) in WORLD_VMS {
        text = text.replace(&format!("name: {world_vm},"), &format!("name: {instance},"));
    }
    if text.contains(" h1,") || text.contains("name: a,") || !text.contains(&target) {
        return Err(format!("the world's names were not all mapped:\n{text}"));
    }
    let script = harness().display().to_string();
    // No `master_failover` here: its own test below covers it, and with it every scenario also
    // moves the master role away and back (about twice the wall time of a roll without it).
    text.push_str(&format!(
        "driver:\n  kind: ganeti\n  url: \"{url}\"\n  username: {user}\n  password_file: \"{password}\"\n  ca_file: \"{ca}\"\n  job_poll_ms: 200\n  job_timeout_secs: {JOB_TIMEOUT_SECS}\n  reboot_timeout_secs: {REBOOT_TIMEOUT_SECS}\n  upgrade_timeout_secs: 60\n  commands:\n    host_facts: [\"{script}\", facts, \"{{host}}\"]\n    upgrade: [\"{script}\", upgrade, \"{{host}}\", \"{{target}}\"]\n    reboot: [\"{reboot}\", \"{{host}}\"]\n",
        url = access.url,
        user = access.user,
        password = access.password_file,
        ca = access.ca_file,
        reboot = reboot_command.display(),
    ));
    Ok(text)
}

/// `reboot.sh HOST`: the harness's reboot, except for a node staged never to return (its marker
/// file exists): its daemons are stopped and nothing starts them, at every attempt.
fn reboot_wrapper(lost_node: Option<u32>, markers: &Markers) -> String {
    let harness = harness().display().to_string();
    let lost_case = match lost_node {
        Some(k) => format!(
            "if [ \"$1\" = \"{name}\" ]; then\n    echo \"{name}\" >\"{marker}\"\n    exec \"{harness}\" exec {k} /usr/lib/ganeti/daemon-util stop-all\nfi\n",
            name = node(k),
            marker = markers.lost().display(),
        ),
        None => String::new(),
    };
    format!("#!/bin/sh\nset -eu\n{lost_case}exec \"{harness}\" reboot \"$1\"\n")
}

/// Writes `reboot.sh` (see [`reboot_wrapper`]) in the markers' directory, executable.
fn write_reboot_wrapper(lost_node: Option<u32>, markers: &Markers) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = markers.directory.join("reboot.sh");
    std::fs::write(&wrapper, reboot_wrapper(lost_node, markers))
        .map_err(|error| error.to_string())?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .map_err(|error| error.to_string())?;
    Ok(wrapper)
}

struct RealCluster {
    access: Access,
}

#[async_trait::async_trait]
impl Stage for RealCluster {
    fn platform(&self) -> String {
        "the ganeti driver against a real 3-node Ganeti 3.0 cluster (fake hypervisor, RAPI over HTTPS; faults staged in the cluster)".into()
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
        let access = self.access.clone();
        let directory = directory.to_path_buf();
        // Blocking: gnt-* commands and curl.
        let world = world.to_string();
        tokio::task::spawn_blocking(move || stage_blocking(access, scenario, world, &directory))
            .await
            .map_err(|error| format!("staging panicked: {error}"))?
    }
}

fn stage_blocking(
    access: Access,
    scenario: Scenario,
    world: String,
    directory: &Path,
) -> Result<Staged, String> {
    put_cluster_back(&access, false)?;
    let markers = Markers {
        directory: directory.to_path_buf(),
    };
    let lost_node = (scenario == Scenario::HostNeverReturnsAbortRestores).then_some(LOST_NODE);
    let wrapper = write_reboot_wrapper(lost_node, &markers)?;
    let inventory_text = inventory(&access, &world, &wrapper)?;
    let mut observed = Observed::default();
    match scenario {
        Scenario::MigrationRefusedRetriedElsewhere => {
            observed.refusal_armed_after_job = Some(newest_job(&access)?);
            for k in 2..=3 {
                run_harness(&["exec", &k.to_string(), "ip", "link", "del", "instbr0"])?;
            }
        }
        Scenario::MigrationHangsCancelledAtTimeout => observed.hang_armed = true,
        Scenario::FullRollingUpgrade
        | Scenario::HostNeverReturnsAbortRestores
        | Scenario::KilledMidWaveResumes => {}
    }
    let observed = Arc::new(Mutex::new(observed));
    let observe_access = access.clone();
    Ok(Staged {
        inventory_text,
        observe: Box::new(move |_clock| {
            let mut observed = observed.lock().map_err(|_| "observer poisoned")?;
            advance_faults(&observe_access, &mut observed)?;
            read_world(&observe_access, &markers, &mut observed)
        }),
        keep_alive: Box::new(()),
    })
}

/// Leaves the cluster as the other tests expect it, however the scenarios ended.
struct PutBackAtTheEnd(Access);

impl Drop for PutBackAtTheEnd {
    fn drop(&mut self) {
        if let Err(problem) = put_cluster_back(&self.0, true) {
            eprintln!("putting the cluster back after the scenarios: {problem}");
        }
    }
}

/// The driver opened through the registry from a staged inventory's text.
fn open_driver(directory: &Path, text: &str) -> Arc<dyn drover_driver::Driver> {
    let path = directory.join("inventory.yaml");
    std::fs::write(&path, text).unwrap();
    let file = drover_schema::parse_inventory_file(text, "inventory.yaml")
        .expect("the staged inventory is valid");
    let prefix = directory.join("drover.db");
    let context = drover_drivers::PrepareContext {
        inventory_path: &path,
        files_prefix: &prefix,
        cluster: &file.cluster.name,
        now_ms: 1_000,
        keep_platform_per_cluster: false,
    };
    let run_driver =
        drover_drivers::prepare(&file.driver, &context, std::collections::BTreeMap::new())
            .expect("the registry prepares the driver");
    let open = drover_drivers::OpenContext {
        cluster: &file.cluster,
        clock: run_driver.new_clock(),
        read_only: false,
    };
    drover_drivers::open(&run_driver, &open).expect("the registry opens the driver")
}

/// The master's upgrade without losing RAPI: cordoning gnt1 (the master) through the driver
/// runs `master_failover` for gnt2, RAPI at the same URL names gnt2 master, and gnt1 is drained
/// like any other node; its reboot then leaves RAPI up. Uncordoning undoes the drain only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordoning_the_master_hands_its_role_to_a_candidate_first() {
    let access = Access::new();
    let _turn = CLUSTER.lock().await;
    let _put_back = PutBackAtTheEnd(access.clone());
    let directory = tempfile::tempdir().unwrap();
    let setup = access.clone();
    tokio::task::spawn_blocking(move || put_cluster_back(&setup, true))
        .await
        .unwrap()
        .expect("the cluster is put back");
    let markers = Markers {
        directory: directory.path().into(),
    };
    let wrapper = write_reboot_wrapper(None, &markers).unwrap();
    // The scenarios' inventory plus the failover command (its driver section comes last).
    let text = format!(
        "{}  master_failover: [\"{}\", master-failover, \"{{host}}\"]\n",
        inventory(&access, drover_conformance::scenarios::WORLD, &wrapper).unwrap(),
        harness().display()
    );
    let driver = open_driver(directory.path(), &text);
    let started = Instant::now();
    driver
        .set_allocation(&node(1), false)
        .await
        .expect("cordon the master");
    let handed_over = started.elapsed();
    let info = access.get("/2/info").unwrap();
    assert_eq!(
        text_of(&info, "master"),
        node(2),
        "RAPI at the same URL names the new master"
    );
    let gnt1 = access.get(&format!("/2/nodes/{}", node(1))).unwrap();
    assert_eq!(
        gnt1.get("drained").and_then(Value::as_bool),
        Some(true),
        "{gnt1}"
    );
    let facts = driver.host_facts(&node(1)).await.unwrap();
    assert!(facts.cordoned);
    // The old master reboots; RAPI stays (the driver's reboot needs it throughout).
    driver
        .reboot(&node(1), &facts.boot_id)
        .await
        .expect("the old master reboots while RAPI answers from gnt2");
    driver
        .set_allocation(&node(1), true)
        .await
        .expect("uncordon");
    let gnt1 = access.get(&format!("/2/nodes/{}", node(1))).unwrap();
    assert_eq!(
        gnt1.get("drained").and_then(Value::as_bool),
        Some(false),
        "{gnt1}"
    );
    assert!(
        tags(&gnt1).iter().all(|tag| !tag.starts_with("drover:")),
        "{gnt1}"
    );
    println!(
        "ganeti: the master handed to gnt2 and gnt1 drained in {:.1} s",
        handed_over.as_secs_f64()
    );
}

/// `gnt-cluster verify` as the precheck command: on the harness it reports ENODESETUP on
/// every node (the namespaces' /proc lacks /proc/sys and /proc/sysrq-trigger), so discovery is
/// refused with Ganeti's own finding and no plan is made. The scenarios' inventories leave
/// `verify` out: it rightly finds their staged faults (a missing bridge is an error of its
/// own) and what a lost node leaves (a candidate without a certificate entry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_verify_refuses_discovery_with_ganetis_finding() {
    let access = Access::new();
    let _turn = CLUSTER.lock().await;
    let directory = tempfile::tempdir().unwrap();
    let markers = Markers {
        directory: directory.path().into(),
    };
    let wrapper = write_reboot_wrapper(None, &markers).unwrap();
    let text = format!(
        "{}  verify: [\"{}\", verify]\n",
        inventory(&access, drover_conformance::scenarios::WORLD, &wrapper).unwrap(),
        harness().display()
    );
    let driver = open_driver(directory.path(), &text);
    let refused = driver
        .discover()
        .await
        .expect_err("verify fails on the harness");
    assert!(
        matches!(&refused, drover_driver::DriverError::Refused(detail) if detail.contains("verify")),
        "{refused}"
    );
    println!("ganeti: discovery refused: {refused}");
}

fn text_of(record: &Value, field: &str) -> String {
    text(record, field).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ganeti_driver_meets_every_scenario_on_a_real_cluster() {
    let access = Access::new();
    let _turn = CLUSTER.lock().await;
    let _put_back = PutBackAtTheEnd(access.clone());
    let started = Instant::now();
    let report = drover_conformance::run_scenarios(Arc::new(RealCluster {
        access: access.clone(),
    }))
    .await;
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );
    println!(
        "ganeti scenarios: every scenario passed in {:.1} s of wall time",
        started.elapsed().as_secs_f64()
    );
}
