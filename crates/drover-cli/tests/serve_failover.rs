//! Two `drover serve` instances on one state file (issue 14's failover, on the embedded store):
//! the run is driven by exactly one of them, the other shows who drives it; when the holder is
//! killed the other takes the run over within the lease time and completes it.
//!
//! A holder paused (SIGSTOP) past its lease is not tested here: on SQLite a process stopped
//! inside a write transaction keeps the file's write lock, so nobody can take over until it
//! wakes (about a third of the stops land there). That a superseded engine is fenced and stops
//! before touching the platform is `drover-dst/tests/engine_leases.rs`.

mod serve_common;

use std::time::{Duration, Instant};

use serve_common::*;

/// Slow enough that the holder is stopped mid-run.
const SLOW_POOL: &str = r#"
cluster: {name: slow, target_version: "2.0"}
policy: {max_unavailable: 1, upgrade_duration_secs: 1200, reboot_duration_secs: 120}
driver: {kind: simulator, time_scale: 1000}
hosts:
  - {name: w1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: w2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: w3, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: w4, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: v1, host: w1, memory_mib: 4096, vcpus: 2}
  - {name: v2, host: w2, memory_mib: 4096, vcpus: 2}
  - {name: v3, host: w3, memory_mib: 4096, vcpus: 2, local_storage: true}
"#;

const LEASE_TTL_SECS: u64 = 3;

fn holder_of(server: &Server) -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("{}@{}", server.child.id(), hostname.trim())
}

/// Starts a run on `first` and waits until a host is mid-way through its steps.
fn start_mid_run(first: &Server, second: &Server) {
    let (status, created) = post(
        first,
        "/api/v1/clusters/slow/runs",
        Some(r#"{"run_id": "f"}"#),
    );
    assert_eq!(status, 202, "{created}");
    let mid_run = wait_for_run(first, "f", None, Duration::from_secs(60), |view| {
        view["hosts_finished"].as_u64().is_some_and(|n| n >= 1)
            && view["hosts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| !matches!(h["step"].as_str(), Some("waiting" | "done")))
    });
    assert_eq!(mid_run["phase"], "running");
    // The other instance serves the run read-only and says which instance drives it.
    let (status, seen) = get(second, "/api/v1/runs/f");
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["driven_by"], holder_of(first), "{seen}");
}

fn assert_completed_everywhere(server: &Server) {
    let done = wait_for_run(
        server,
        "f",
        None,
        Duration::from_secs(120),
        phase_is("completed"),
    );
    assert_eq!(done["hosts_finished"], 4, "{done}");
    assert!(done["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["step"] == "done" && h["version"] == "2.0"));
    let (_, report) = get(server, "/api/v1/runs/f/report");
    assert_eq!(report["phase"], "completed");
    assert_eq!(report["restore_errors"], serde_json::json!([]));
}

/// Waits until `server` drives run `f` itself; returns how long that took.
fn wait_until_driven_by(server: &Server, limit: Duration) -> Duration {
    let started = Instant::now();
    let holder = holder_of(server);
    loop {
        let (_, view) = get(server, "/api/v1/runs/f");
        if view["driven_by"] == holder.as_str() || view["phase"] == "completed" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "not taken over within {limit:?}: {view}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_holder_is_taken_over_by_the_other_instance_within_the_lease_time() {
    let config = format!("lease_ttl_secs: {LEASE_TTL_SECS}\n");
    let workspace = Workspace::new(&[("slow.yaml", SLOW_POOL)], &config);
    let mut first = workspace.serve(&[]);
    let second = workspace.serve(&[]);
    start_mid_run(&first, &second);
    first.child.kill().expect("kill -9");
    first.child.wait().unwrap();
    let took = wait_until_driven_by(&second, Duration::from_secs(LEASE_TTL_SECS + 5));
    eprintln!("taken over {took:?} after kill -9");
    assert!(second.log().contains("took over run f"), "{}", second.log());
    assert_completed_everywhere(&second);
}
