//! `drover bench --hroller`: Drover against Ganeti's `hroller` on the same generated clusters.
//! Each cluster (drover-sim's `ganeti` module) is written in Ganeti's htools text format, given
//! to `hroller -t FILE --print-moves --no-headers` under a timeout, and planned by Drover; the
//! row puts side by side the rounds, the moves as executed, the planning CPU time and whether
//! every round keeps capacity, judged for both by Drover's own plan checker.
//!
//! hroller's printed moves assume that every instance moves back home after each group, and a
//! DRBD primary fails over to its secondary without a printed move: executed, each instance on a
//! node of a group moves out and back, two moves. Its rounds are checked one by one on the home
//! placement (what hroller assumes), each as a one-wave Drover plan: the printed destination, or
//! for a DRBD instance its secondary. Knows the htools format and hroller's output; the planner
//! and the checker only through drover-core.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drover_core::check::check_plan;
use drover_core::{
    Action, ActionKind, Cluster, HostId, MaxUnavailable, Plan, Summary, VmId, Wave, WaveKind,
};
use drover_sim::{generate_ganeti, GanetiCluster, GanetiSpec};
use serde::Serialize;

use crate::exit::Failure;

/// Instances per node in the generated clusters (the measurements used about 20).
const INSTANCES_PER_NODE: usize = 20;
/// Memory utilizations of the clusters: the reference generator's 60 %, and 40 %.
const UTILIZATIONS: [f64; 2] = [0.4, 0.6];
/// Share of DRBD instances in a "mostly DRBD" cluster; the rest are on shared storage.
const MOSTLY_DRBD_FRACTION: f64 = 0.9;
const SEED: u64 = 15;

/// One cluster, both planners.
#[derive(Clone, Debug, Serialize)]
pub struct HrollerRow {
    pub nodes: usize,
    pub storage: &'static str,
    /// Memory of the instances over what nodes offer them, percent.
    pub memory_utilization_percent: u32,
    pub instances: usize,
    /// `None`: hroller gave no answer within the timeout (or failed: see `hroller_error`).
    pub hroller_rounds: Option<usize>,
    pub drover_rounds: usize,
    /// Moves that executing hroller's rounds makes: out and back for every instance that leaves.
    pub hroller_moves_executed: Option<usize>,
    /// Moves as executed: every action with a destination, and every return.
    pub drover_moves: usize,
    /// Of `drover_moves`, the returns (a DRBD instance back to its primary after its wave).
    pub drover_returns: usize,
    /// hroller's user + system CPU time (the child's rusage), also when it was stopped.
    pub hroller_cpu_secs: f64,
    /// Drover's planning CPU time (user + system).
    pub drover_cpu_secs: f64,
    /// hroller's rounds that Drover's checker refuses (capacity, a pair in one round, an
    /// instance left on a rebooted node), and the first reason.
    pub hroller_unsafe_rounds: Option<usize>,
    pub hroller_first_violation: Option<String>,
    /// Drover's plan is feasible and passes the checker.
    pub drover_safe: bool,
    pub drover_first_violation: Option<String>,
    pub hroller_error: Option<String>,
}

/// `hroller` on PATH, or why not.
pub fn find_hroller() -> Result<PathBuf, Failure> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|directory| directory.join("hroller"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            Failure::bad_input(
                "hroller is not on PATH: install Ganeti's htools (Debian/Ubuntu: apt-get install \
                 ganeti-htools-3.0) to compare with it",
            )
        })
}

/// The comparison's clusters: 50, 200 and 1,000 nodes (50 only with `quick`), shared storage and
/// mostly DRBD, 40 % and 60 % of the memory used.
pub fn rows(quick: bool, timeout: Duration) -> Result<Vec<HrollerRow>, Failure> {
    let hroller = find_hroller()?;
    let sizes: &[usize] = if quick { &[50] } else { &[50, 200, 1_000] };
    let mut rows = Vec::new();
    for nodes in sizes {
        for (storage, drbd_fraction) in [("shared", 0.0), ("mostly-drbd", MOSTLY_DRBD_FRACTION)] {
            for utilization in UTILIZATIONS {
                eprintln!(
                    "bench --hroller: {nodes} nodes, {storage}, {:.0}% memory …",
                    utilization * 100.0
                );
                let spec = GanetiSpec {
                    nodes: *nodes,
                    instances_per_node: INSTANCES_PER_NODE,
                    drbd_fraction,
                    utilization,
                    seed: SEED,
                };
                rows.push(compare(&hroller, &spec, storage, timeout)?);
            }
        }
    }
    Ok(rows)
}

fn compare(
    hroller: &Path,
    spec: &GanetiSpec,
    storage: &'static str,
    timeout: Duration,
) -> Result<HrollerRow, Failure> {
    let ganeti = generate_ganeti(spec);
    let cluster = ganeti.to_cluster();
    let data_path = std::env::temp_dir().join(format!(
        "drover-hroller-{}-{}-{storage}-{}.data",
        std::process::id(),
        spec.nodes,
        (spec.utilization * 100.0).round()
    ));
    std::fs::write(&data_path, htools_text(&ganeti)).map_err(Failure::internal)?;
    let outcome = run_hroller(hroller, &data_path, timeout);
    let _ = std::fs::remove_file(&data_path);
    let outcome = outcome?;

    let cpu_before = own_cpu_secs();
    let plan = drover_core::plan(&cluster);
    let drover_cpu_secs = own_cpu_secs() - cpu_before;
    let drover_violations = check_plan(&cluster, &plan);
    let drover_first_violation = if plan.is_feasible() {
        drover_violations.first().cloned()
    } else {
        plan.failed_prechecks().next().map(|c| c.message.clone())
    };

    let mut row = HrollerRow {
        nodes: spec.nodes,
        storage,
        memory_utilization_percent: (spec.utilization * 100.0).round() as u32,
        instances: cluster.vms.len(),
        hroller_rounds: None,
        drover_rounds: plan.waves.len(),
        hroller_moves_executed: None,
        drover_moves: plan.actions().filter(|a| a.to.is_some()).count() + plan.returns().count(),
        drover_returns: plan.returns().count(),
        hroller_cpu_secs: outcome.cpu_secs,
        drover_cpu_secs,
        hroller_unsafe_rounds: None,
        hroller_first_violation: None,
        drover_safe: plan.is_feasible() && drover_violations.is_empty(),
        drover_first_violation,
        hroller_error: outcome.error.clone(),
    };
    if let Some(stdout) = &outcome.stdout {
        match parse_rounds(stdout) {
            Ok(rounds) => {
                let judged = judge_rounds(&cluster, &rounds);
                row.hroller_rounds = Some(rounds.len());
                row.hroller_moves_executed = Some(judged.moves_executed);
                row.hroller_unsafe_rounds = Some(judged.unsafe_rounds);
                row.hroller_first_violation = judged.first_violation;
            }
            Err(problem) => row.hroller_error = Some(problem),
        }
    }
    Ok(row)
}

/// Ganeti's htools text format (htools(1), "-t datafile"): groups, nodes, instances, cluster
/// tags and instance policies, separated by one empty line. Memory and disk in MiB.
pub fn htools_text(cluster: &GanetiCluster) -> String {
    let mut text = String::from("default|uuid-default|preferred||\n\n");
    for (index, node) in cluster.nodes.iter().enumerate() {
        let role = if node.master { "M" } else { "N" };
        text.push_str(&format!(
            "{}|{}|{}|{}|{}|{}|{}|{role}|uuid-default|1\n",
            node.name,
            node.memory_total_mib,
            drover_sim::ganeti::NODE_OWN_MEMORY_MIB,
            cluster.memory_free_mib(index),
            drover_sim::ganeti::NODE_DISK_MIB,
            node.disk_free_mib,
            drover_sim::ganeti::NODE_CPUS,
        ));
    }
    text.push('\n');
    for instance in &cluster.instances {
        let secondary = instance
            .secondary
            .map_or("", |node| cluster.nodes[node].name.as_str());
        text.push_str(&format!(
            "{}|{}|{}|{}|running|Y|{}|{secondary}|{}||1\n",
            instance.name,
            instance.memory_mib,
            instance.disk_mib,
            instance.vcpus,
            cluster.nodes[instance.primary].name,
            instance.template.ganeti_name(),
        ));
    }
    // No cluster tags: an empty section.
    text.push_str("\n\n");
    let spec = "128,1,1024,1,1,1";
    let min_max = "128,1,1024,1,1,1;65536,16,1048576,16,8,12";
    let templates = "diskless,file,sharedfile,plain,blockdev,drbd,rbd,ext";
    text.push_str(&format!("|{spec}|{min_max}|{templates}|4.0|32.0\n"));
    text.push_str(&format!("default|{spec}|{min_max}|{templates}|4.0|32.0\n"));
    text
}

/// What one hroller run gave.
struct HrollerOutcome {
    /// Its output when it finished successfully.
    stdout: Option<String>,
    cpu_secs: f64,
    /// "no answer within N s", or its exit status and error output.
    error: Option<String>,
}

/// Runs hroller on a data file, stopped (SIGKILL) at the timeout; CPU time from its rusage.
fn run_hroller(
    hroller: &Path,
    data_path: &Path,
    timeout: Duration,
) -> Result<HrollerOutcome, Failure> {
    let mut child = std::process::Command::new(hroller)
        .arg("-t")
        .arg(data_path)
        .args(["--print-moves", "--no-headers"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| Failure::internal(format!("starting {}: {error}", hroller.display())))?;
    // Both pipes are drained on threads, so a large output never blocks hroller.
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut timed_out = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not reaped yet (std's Child never waited on it).
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            break (status, usage);
        }
        if reaped < 0 {
            return Err(Failure::internal(format!(
                "waiting for hroller: {}",
                std::io::Error::last_os_error()
            )));
        }
        if !timed_out && started.elapsed() >= timeout {
            timed_out = true;
            // SAFETY: sending a signal to our own, not yet reaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    let cpu_secs = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    let exited_well = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok(if timed_out {
        HrollerOutcome {
            stdout: None,
            cpu_secs,
            error: Some(format!("no answer within {} s", timeout.as_secs())),
        }
    } else if exited_well {
        HrollerOutcome {
            stdout: Some(stdout),
            cpu_secs,
            error: None,
        }
    } else {
        let last_line = stderr.lines().last().unwrap_or("").to_string();
        HrollerOutcome {
            stdout: None,
            cpu_secs,
            error: Some(format!("hroller failed (status {status}): {last_line}")),
        }
    })
}

/// One reboot group of hroller's answer and its printed moves (instance, new primary).
#[derive(Clone, Debug, PartialEq)]
pub struct Round {
    pub nodes: Vec<String>,
    pub moves: Vec<(String, String)>,
}

/// `--print-moves --no-headers` output: a line of comma-separated node names per group, then
/// one indented line per move (`instance new-primary [new-secondary]`).
pub fn parse_rounds(text: &str) -> Result<Vec<Round>, String> {
    let mut rounds: Vec<Round> = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if line.starts_with(char::is_whitespace) {
            let mut fields = line.split_whitespace();
            let (Some(instance), Some(node)) = (fields.next(), fields.next()) else {
                return Err(format!("hroller printed a move without a node: {line:?}"));
            };
            let Some(round) = rounds.last_mut() else {
                return Err(format!("hroller printed a move before any group: {line:?}"));
            };
            round.moves.push((instance.to_string(), node.to_string()));
        } else {
            rounds.push(Round {
                nodes: line.trim().split(',').map(str::to_string).collect(),
                moves: Vec::new(),
            });
        }
    }
    Ok(rounds)
}

/// hroller's rounds as executed and as Drover's checker sees them.
#[derive(Debug, PartialEq)]
pub struct JudgedRounds {
    pub moves_executed: usize,
    pub unsafe_rounds: usize,
    pub first_violation: Option<String>,
}

/// Checks each round on the home placement, as a one-wave Drover plan in a copy of the cluster
/// where only the round's nodes are below the target: printed moves go where hroller said, a DRBD
/// instance that hroller did not move goes to its other node, any other instance stays (and the
/// checker reports it). Every instance that leaves comes back: two moves executed.
pub fn judge_rounds(cluster: &Cluster, rounds: &[Round]) -> JudgedRounds {
    let mut judged = JudgedRounds {
        moves_executed: 0,
        unsafe_rounds: 0,
        first_violation: None,
    };
    for (number, round) in rounds.iter().enumerate() {
        let hosts: Vec<HostId> = round
            .nodes
            .iter()
            .filter_map(|name| cluster.host_named(name))
            .collect();
        let mut round_cluster = cluster.clone();
        for (index, host) in round_cluster.hosts.iter_mut().enumerate() {
            if !hosts.contains(&HostId(index as u32)) {
                host.version = cluster.target_version.clone();
            }
        }
        round_cluster.policy.max_unavailable = MaxUnavailable::Count(hosts.len().max(1) as u32);
        let mut actions = Vec::new();
        for (index, vm) in cluster.vms.iter().enumerate() {
            if !vm.is_running() || !hosts.contains(&vm.host) {
                continue;
            }
            let printed = round
                .moves
                .iter()
                .find(|(instance, _)| *instance == vm.name)
                .and_then(|(_, node)| cluster.host_named(node));
            let other_node = vm
                .allowed_hosts
                .iter()
                .flatten()
                .copied()
                .find(|host| *host != vm.host);
            if let Some(to) = printed.or(other_node) {
                actions.push(Action {
                    vm: VmId(index as u32),
                    kind: ActionKind::Migrate,
                    from: vm.host,
                    to: Some(to),
                });
            }
        }
        judged.moves_executed += 2 * actions.len();
        let plan = Plan {
            prechecks: Vec::new(),
            summary: Summary {
                waves: 1,
                hosts_to_upgrade: hosts.len(),
                migrations: actions.len(),
                max_unavailable: hosts.len() as u32,
                ..Summary::default()
            },
            waves: vec![Wave {
                kind: WaveKind::Compute,
                hosts,
                actions,
                returns: Vec::new(),
            }],
            skipped: Vec::new(),
            final_compatibility_level: None,
        };
        let violations = check_plan(&round_cluster, &plan);
        if let Some(first) = violations.first() {
            judged.unsafe_rounds += 1;
            judged
                .first_violation
                .get_or_insert_with(|| format!("round {}: {first}", number + 1));
        }
    }
    judged
}

/// This process's CPU time so far (user + system), seconds.
fn own_cpu_secs() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_cluster(drbd_fraction: f64) -> (GanetiCluster, Cluster) {
        let ganeti = generate_ganeti(&GanetiSpec {
            nodes: 6,
            instances_per_node: 4,
            drbd_fraction,
            utilization: 0.5,
            seed: 3,
        });
        let cluster = ganeti.to_cluster();
        (ganeti, cluster)
    }

    #[test]
    fn groups_and_their_moves_are_parsed() {
        let text = "node-0001,node-0002\n  inst-00003 node-0000\n  inst-00004 node-0003 node-0005\nnode-0000\n";
        let rounds = parse_rounds(text).unwrap();
        assert_eq!(rounds.len(), 2);
        assert_eq!(rounds[0].nodes, vec!["node-0001", "node-0002"]);
        assert_eq!(
            rounds[0].moves,
            vec![
                ("inst-00003".to_string(), "node-0000".to_string()),
                ("inst-00004".to_string(), "node-0003".to_string())
            ]
        );
        assert!(rounds[1].moves.is_empty());
        assert!(parse_rounds("  inst-1 node-0000\n").is_err());
    }

    #[test]
    fn the_htools_text_has_five_sections_and_one_line_per_node_and_instance() {
        let (ganeti, _) = small_cluster(0.5);
        let text = htools_text(&ganeti);
        // The fourth section (cluster tags) is empty: three newlines in a row, so splitting at
        // empty lines gives four pieces, the last one the policies after the empty tags.
        let sections: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(sections.len(), 4, "{text}");
        assert_eq!(sections[3].lines().filter(|l| !l.is_empty()).count(), 2);
        assert_eq!(sections[1].lines().count(), 6);
        assert_eq!(sections[2].lines().count(), 24);
        assert!(sections[2].contains("|drbd||1"));
    }

    #[test]
    fn a_round_with_both_nodes_of_a_drbd_pair_is_unsafe_and_moves_count_out_and_back() {
        let (_, cluster) = small_cluster(1.0);
        let vm = &cluster.vms[0];
        let pair: Vec<String> = vm
            .allowed_hosts
            .iter()
            .flatten()
            .map(|host| cluster.host(*host).name.clone())
            .collect();
        let both = [Round {
            nodes: pair.clone(),
            moves: Vec::new(),
        }];
        let judged = judge_rounds(&cluster, &both);
        assert_eq!(judged.unsafe_rounds, 1, "{judged:?}");
        let one_by_one: Vec<Round> = cluster
            .hosts
            .iter()
            .map(|host| Round {
                nodes: vec![host.name.clone()],
                moves: Vec::new(),
            })
            .collect();
        let judged = judge_rounds(&cluster, &one_by_one);
        assert_eq!(judged.moves_executed, 2 * cluster.vms.len());
    }
}
