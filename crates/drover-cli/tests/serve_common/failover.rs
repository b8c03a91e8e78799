//! Shared by the failover tests (`serve_failover.rs` on the embedded store,
//! `serve_failover_postgres.rs` on PostgreSQL): a pool slow enough to stop its holder mid-run,
//! starting a run on one instance, waiting for another to drive it, and checking it completed
//! with every DST invariant kept at every instant of the simulated platform's recorded history.

use std::time::{Duration, Instant};

use std::collections::BTreeSet;
use std::path::Path;

use drover_dst::{check_recorded_run, RunEnd};
use drover_engine::Clock;
use drover_sim::driver::{SimDriver, SimDriverConfig};

use super::{get, phase_is, post, wait_for_run, Server};

/// Slow enough that the holder is stopped mid-run (upgrades take 20 minutes of platform time,
/// at 1000× the wall clock).
pub const SLOW_POOL: &str = r#"
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

/// The lease time the failover tests configure (`lease_ttl_secs`).
pub const LEASE_TTL_SECS: u64 = 3;

/// The lease holder name of a server: `PID@HOST`.
pub fn holder_of(server: &Server) -> String {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    format!("{}@{}", server.child.id(), hostname.trim())
}

/// Starts run `f` on `first` and waits until a host is mid-way through its steps; `second`
/// shows the run read-only and says `first` drives it.
pub fn start_mid_run(first: &Server, second: &Server) {
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
    let (status, seen) = get(second, "/api/v1/runs/f");
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["driven_by"], holder_of(first), "{seen}");
}

/// Waits until `server` drives run `f` itself; returns how long that took.
pub fn wait_until_driven_by(server: &Server, limit: Duration) -> Duration {
    wait_until_run_driven_by(server, "f", limit)
}

/// Waits until `server` drives `run_id` itself (or the run completed); returns how long that took.
pub fn wait_until_run_driven_by(server: &Server, run_id: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let holder = holder_of(server);
    loop {
        let (_, view) = get(server, &format!("/api/v1/runs/{run_id}"));
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

/// Run `f` completed on `server`: every host done at the target, no restore left undone.
pub fn assert_completed(server: &Server) {
    assert_run_completed(server, "f");
}

/// `run_id` (of a copy of [`SLOW_POOL`]) completed on `server`: every host done at the target,
/// no restore left undone.
pub fn assert_run_completed(server: &Server, run_id: &str) {
    let done = wait_for_run(
        server,
        run_id,
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
    let (_, report) = get(server, &format!("/api/v1/runs/{run_id}/report"));
    assert_eq!(report["phase"], "completed");
    assert_eq!(report["restore_errors"], serde_json::json!([]));
}

/// The simulated platform of `pool` (an inventory text), kept in `directory` by whichever
/// instance drove last, kept every DST invariant at every instant of its history (at most one
/// host down, capacity, anti-affinity, no VM lost or moved to an older host), and the run left
/// every host upgraded and restored.
pub fn assert_invariants_kept(directory: &Path, pool: &str) {
    let cluster = drover_schema::inventory::parse_inventory(pool, "pool.yaml").expect("the pool");
    let suffix = format!(".{}.sim.json", cluster.name);
    let world_file = std::fs::read_dir(directory)
        .expect("the workspace")
        .map(|entry| entry.expect("an entry").path())
        .find(|path| path.to_string_lossy().ends_with(&suffix))
        .unwrap_or_else(|| panic!("no *{suffix} in {}", directory.display()));
    let config = |state_file| SimDriverConfig {
        seed: 0,
        faults: Vec::new(),
        random_faults: Default::default(),
        state_file,
        save_only_on_request: true,
    };
    // Time 0: reading the worlds completes nothing that is still in flight.
    let clock = Clock::virtual_from(0);
    let initial = SimDriver::new(&cluster, clock.clone(), config(None))
        .expect("the platform before the run")
        .snapshot();
    let last = SimDriver::new(&cluster, clock, config(Some(world_file)))
        .expect("the platform after the run")
        .snapshot();
    let nobody = BTreeSet::new();
    let end = RunEnd {
        completed: true,
        skipped: &nobody,
        unrestorable: &nobody,
    };
    let max_unavailable = 1;
    check_recorded_run(&cluster, &initial, &last, max_unavailable, &end)
        .unwrap_or_else(|error| panic!("a DST invariant broke: {error}"));
    assert!(!last.history.is_empty());
}
