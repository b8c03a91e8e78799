//! Two `drover serve` instances on one state file (issue 14's failover, on the embedded store):
//! the run is driven by exactly one of them, the other shows who drives it; when the holder is
//! killed the other takes the run over within the lease time and completes it.
//!
//! With `max_active_runs: 1`, a run posted to the instance that already drives one is created
//! there and handed over, and the instance with room drives it.
//!
//! A holder paused (SIGSTOP) past its lease is not tested here: on SQLite a process stopped
//! inside a write transaction keeps the file's write lock, so nobody can take over until it
//! wakes (about a third of the stops land there). That a superseded engine is fenced and stops
//! before touching the platform is `drover-dst/tests/engine_leases.rs`.

mod serve_common;

use std::time::Duration;

use serve_common::failover::*;
use serve_common::*;

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
    assert_completed(&second);
    assert_invariants_kept(workspace.dir.path(), SLOW_POOL);
}

#[test]
fn a_run_posted_to_a_full_instance_is_driven_by_an_instance_with_room() {
    let second_pool = SLOW_POOL.replace("name: slow,", "name: slow2,");
    let config = format!("lease_ttl_secs: {LEASE_TTL_SECS}\nmax_active_runs: 1\n");
    let workspace = Workspace::new(
        &[("slow.yaml", SLOW_POOL), ("slow2.yaml", &second_pool)],
        &config,
    );
    let first = workspace.serve(&[]);
    let second = workspace.serve(&[]);
    let (status, created) = post(
        &first,
        "/api/v1/clusters/slow/runs",
        Some(r#"{"run_id": "f"}"#),
    );
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["driven_by"], holder_of(&first), "{created}");

    let (status, created) = post(
        &first,
        "/api/v1/clusters/slow2/runs",
        Some(r#"{"run_id": "g"}"#),
    );
    assert_eq!(
        status, 202,
        "a full instance still takes the run: {created}"
    );
    assert!(
        created["driven_by"].is_null(),
        "handed over at once: {created}"
    );
    assert!(first.log().contains("run g handed over"), "{}", first.log());
    let took = wait_until_run_driven_by(&second, "g", Duration::from_secs(LEASE_TTL_SECS + 5));
    eprintln!("run g adopted by the instance with room {took:?} after it was posted");
    let (_, driving_f) = get(&second, "/api/v1/runs/f");
    assert_eq!(
        driving_f["driven_by"],
        holder_of(&first),
        "f stays where it is: {driving_f}"
    );

    assert_run_completed(&first, "f");
    assert_run_completed(&second, "g");
    assert!(second.log().contains("took over run g"), "{}", second.log());
    assert_invariants_kept(workspace.dir.path(), SLOW_POOL);
    assert_invariants_kept(workspace.dir.path(), &second_pool);
}
