//! Two `drover serve` instances on one state file (issue 14's failover, on the embedded store):
//! the run is driven by exactly one of them, the other shows who drives it; when the holder is
//! killed the other takes the run over within the lease time and completes it.
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
}
