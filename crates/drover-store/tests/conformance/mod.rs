//! The store conformance suite: what every `RunStore` must do, written once against the trait
//! and instantiated unchanged for each store (`conformance_tests!` with a harness that opens
//! handles on one fresh store and moves its lease time). SQLite runs it in
//! `tests/conformance_sqlite.rs`, PostgreSQL in drover-store-postgres's tests.
//!
//! Lease time: the harness moves every handle's lease clock at once (a `ManualClock` on SQLite,
//! an offset added to the database's clock on PostgreSQL), so no test sleeps. Real time still
//! passes on a networked store, so times are asserted within bounds, never to the millisecond.
//!
//! This module must not know which store it tests, SQL, or files.

#![allow(dead_code)] // Each test binary uses the suite through its own harness.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use drover_store::{ClusterLock, Lease, NewEntry, NewRun, RunStore, StoreError};

pub const TTL: Duration = Duration::from_secs(10);

/// One fresh store for one test.
pub trait Harness: Send + Sync {
    /// A new handle on the store, as another process would open it.
    fn handle(&self) -> Arc<dyn RunStore>;
    /// Moves the lease clock of every handle forward by `by`.
    fn advance(&self, by: Duration);
}

/// Generates one `#[test]` per conformance case, each with a fresh harness from `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            a_run_is_driven_through_an_arc_dyn_run_store,
            start_run_is_all_or_nothing_and_refuses_a_held_cluster_or_a_taken_id,
            writes_to_an_unknown_run_are_refused,
            after_a_take_over_the_former_holder_can_write_nothing,
            a_live_lease_of_another_holder_is_refused_and_the_same_holder_keeps_its_token,
            an_expired_lease_nobody_took_is_still_current,
            a_lease_is_only_for_a_run_that_holds_its_cluster,
            of_two_breakers_that_saw_the_same_lease_exactly_one_wins,
            break_lease_refuses_a_lock_that_changed_runs_or_was_released,
            fencing_tokens_strictly_increase_across_released_locks_and_new_runs,
            concurrent_writers_through_separate_handles_get_a_gap_free_journal,
            the_store_serves_a_paused_runtime_and_runtimes_one_after_another,
            runs_are_listed_newest_first_per_cluster_and_limited,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let harness = $make;
                conformance::$case(&harness);
            }
        )*
    };
}

pub fn new_run(id: &str, cluster: &str, created_at_ms: u64) -> NewRun {
    NewRun {
        id: id.to_string(),
        cluster: cluster.to_string(),
        inventory_sha256: format!("sha256-of-{id}"),
        inventory_text: format!("cluster: {{name: {cluster}}}\n"),
        state: "planned".to_string(),
        created_at_ms,
        options_json: r#"{"max_unavailable":1}"#.to_string(),
    }
}

pub fn new_entry(kind: &str, at_ms: u64, payload_json: &str) -> NewEntry {
    NewEntry {
        at_ms,
        kind: kind.to_string(),
        payload_json: payload_json.to_string(),
    }
}

fn block_on<T>(work: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(work)
}

async fn start(store: &dyn RunStore, run_id: &str, cluster: &str, holder: &str) -> Lease {
    store
        .start_run(
            &new_run(run_id, cluster, 1),
            holder,
            TTL,
            &new_entry("start", 1, "{}"),
        )
        .await
        .expect("start the run")
}

async fn lock_of(store: &dyn RunStore, cluster: &str) -> ClusterLock {
    store
        .cluster_lock(cluster)
        .await
        .expect("read the lock")
        .expect("the cluster is locked")
}

fn assert_fenced(error: StoreError, stale: &Lease, current: &Lease) {
    match &error {
        StoreError::Fenced {
            cluster,
            token,
            current_token,
            current_holder,
            ..
        } => assert_eq!(
            (
                cluster.as_str(),
                *token,
                *current_token,
                current_holder.as_deref()
            ),
            (
                stale.cluster.as_str(),
                stale.fencing_token,
                Some(current.fencing_token),
                Some(current.holder.as_str())
            ),
        ),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert!(error.to_string().contains("superseded"), "{error}");
}

/// A lease granted "now" for `TTL`: it ends TTL after the lock's reading of the store clock,
/// give or take the real time a networked store's calls take.
fn assert_ends_about_ttl_after(expires_at_ms: u64, store_now_ms: u64) {
    let ttl_ms = TTL.as_millis() as u64;
    assert!(
        expires_at_ms >= store_now_ms + ttl_ms - 5_000
            && expires_at_ms <= store_now_ms + ttl_ms + 5_000,
        "expires at {expires_at_ms}, store now about {store_now_ms}"
    );
}

pub fn a_run_is_driven_through_an_arc_dyn_run_store(harness: &dyn Harness) {
    let store = harness.handle();
    block_on(async {
        let lease = store
            .start_run(
                &new_run("run-1", "pool-a", 100),
                "1@here",
                TTL,
                &new_entry("start", 100, r#"{"observed":true}"#),
            )
            .await
            .expect("start");
        assert_eq!(
            (
                lease.cluster.as_str(),
                lease.run_id.as_str(),
                lease.holder.as_str()
            ),
            ("pool-a", "run-1", "1@here")
        );
        let task_store = Arc::clone(&store);
        let task_lease = lease.clone();
        let seq = tokio::spawn(async move {
            task_store
                .append("run-1", &new_entry("intent", 101, "{}"), Some(&task_lease))
                .await
        })
        .await
        .expect("the task ran")
        .expect("append");
        assert_eq!(seq, 2);
        store
            .set_run_state("run-1", "running", 102, Some(&lease))
            .await
            .unwrap();
        let run = store.run("run-1").await.unwrap().expect("the run");
        assert_eq!(run.state, "running");
        assert_eq!(run.updated_at_ms, 102);
        assert_eq!(run.created_at_ms, 100);
        assert_eq!(run, {
            let mut expected = new_run("run-1", "pool-a", 100);
            expected.state = "running".to_string();
            drover_store::RunRecord {
                id: expected.id,
                cluster: expected.cluster,
                inventory_sha256: expected.inventory_sha256,
                inventory_text: expected.inventory_text,
                state: expected.state,
                created_at_ms: 100,
                updated_at_ms: 102,
                options_json: expected.options_json,
            }
        });
        let entries = store.entries("run-1").await.unwrap();
        assert_eq!(
            entries
                .iter()
                .map(|entry| (
                    entry.seq,
                    entry.at_ms,
                    entry.kind.as_str(),
                    entry.payload_json.as_str()
                ))
                .collect::<Vec<_>>(),
            [
                (1, 100, "start", r#"{"observed":true}"#),
                (2, 101, "intent", "{}")
            ]
        );
        assert_eq!(store.entries_after("run-1", 1).await.unwrap(), entries[1..]);
        assert!(store.entries_after("run-1", 2).await.unwrap().is_empty());
        assert!(store.entries("no-such-run").await.unwrap().is_empty());
        assert_eq!(store.run("no-such-run").await.unwrap(), None);
        store
            .release_lock("pool-a", "run-1", Some(&lease))
            .await
            .unwrap();
        assert_eq!(store.cluster_lock("pool-a").await.unwrap(), None);
    });
}

pub fn start_run_is_all_or_nothing_and_refuses_a_held_cluster_or_a_taken_id(harness: &dyn Harness) {
    let store = harness.handle();
    block_on(async {
        let lease = start(&*store, "run-1", "pool-a", "1@here").await;
        let error = store
            .start_run(
                &new_run("run-2", "pool-a", 2),
                "2@here",
                TTL,
                &new_entry("start", 2, "{}"),
            )
            .await
            .expect_err("the cluster is locked");
        assert!(
            matches!(&error, StoreError::LockHeld { run_id, holder, .. } if run_id == "run-1" && holder == "1@here"),
            "{error:?}"
        );
        assert_eq!(
            store.run("run-2").await.unwrap(),
            None,
            "nothing of run-2 was written"
        );
        assert!(store.entries("run-2").await.unwrap().is_empty());

        let error = store
            .start_run(
                &new_run("run-1", "pool-b", 3),
                "2@here",
                TTL,
                &new_entry("start", 3, "{}"),
            )
            .await
            .expect_err("the id is taken");
        assert!(matches!(error, StoreError::RunExists { .. }), "{error:?}");
        assert_eq!(
            store.cluster_lock("pool-b").await.unwrap(),
            None,
            "no lock was left"
        );
        assert_eq!(
            store.entries("run-1").await.unwrap().len(),
            1,
            "no entry was added"
        );
        assert_eq!(store.run("run-1").await.unwrap().unwrap().cluster, "pool-a");

        // Once run-1 is finished, its id stays taken but the cluster is free.
        store
            .release_lock("pool-a", "run-1", Some(&lease))
            .await
            .unwrap();
        let error = store
            .start_run(
                &new_run("run-1", "pool-a", 4),
                "2@here",
                TTL,
                &new_entry("start", 4, "{}"),
            )
            .await
            .expect_err("the id is still taken");
        assert!(matches!(error, StoreError::RunExists { .. }), "{error:?}");
        assert_eq!(store.cluster_lock("pool-a").await.unwrap(), None);
        start(&*store, "run-2", "pool-a", "2@here").await;
        assert_eq!(lock_of(&*store, "pool-a").await.run_id, "run-2");
    });
}

pub fn writes_to_an_unknown_run_are_refused(harness: &dyn Harness) {
    let store = harness.handle();
    block_on(async {
        let error = store
            .append("ghost", &new_entry("intent", 1, "{}"), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::UnknownRun { run_id, .. } if run_id == "ghost"),
            "{error:?}"
        );
        let error = store
            .set_run_state("ghost", "running", 1, None)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::UnknownRun { run_id, .. } if run_id == "ghost"),
            "{error:?}"
        );
        assert!(store.runs(None, 10).await.unwrap().is_empty());
    });
}

pub fn after_a_take_over_the_former_holder_can_write_nothing(harness: &dyn Harness) {
    let process_a = harness.handle();
    let process_b = harness.handle();
    block_on(async {
        let lease_a = start(&*process_a, "run-1", "pool-a", "a@host-1").await;
        assert_eq!(
            process_a
                .append("run-1", &new_entry("intent", 2, "{}"), Some(&lease_a))
                .await
                .unwrap(),
            2
        );
        harness.advance(TTL + Duration::from_millis(1));
        let seen = lock_of(&*process_b, "pool-a").await;
        assert!(!seen.lease_live, "{seen:?}");
        let lease_b = process_b
            .acquire_lease("pool-a", "run-1", "b@host-2", TTL)
            .await
            .expect("an expired lease is free");
        assert!(lease_b.fencing_token > lease_a.fencing_token);

        let error = process_a
            .append("run-1", &new_entry("outcome", 3, "{}"), Some(&lease_a))
            .await
            .unwrap_err();
        assert_fenced(error, &lease_a, &lease_b);
        let error = process_a
            .set_run_state("run-1", "completed", 3, Some(&lease_a))
            .await
            .unwrap_err();
        assert_fenced(error, &lease_a, &lease_b);
        let error = process_a.renew_lease(&lease_a, TTL).await.unwrap_err();
        assert_fenced(error, &lease_a, &lease_b);
        let error = process_a
            .release_lock("pool-a", "run-1", Some(&lease_a))
            .await
            .unwrap_err();
        assert_fenced(error, &lease_a, &lease_b);
        process_a
            .release_lease(&lease_a)
            .await
            .expect("releasing a superseded lease does nothing");
        let after = lock_of(&*process_b, "pool-a").await;
        assert_eq!(
            (after.holder.as_str(), after.fencing_token, after.lease_live),
            ("b@host-2", lease_b.fencing_token, true)
        );
        assert_eq!(
            process_b.run("run-1").await.unwrap().unwrap().state,
            "planned"
        );
        assert_eq!(process_b.entries("run-1").await.unwrap().len(), 2);

        assert_eq!(
            process_b
                .append("run-1", &new_entry("outcome", 4, "{}"), Some(&lease_b))
                .await
                .unwrap(),
            3
        );
        process_b
            .set_run_state("run-1", "running", 4, Some(&lease_b))
            .await
            .unwrap();
        assert_eq!(
            process_a
                .append("run-1", &new_entry("request", 5, "{}"), None)
                .await
                .unwrap(),
            4
        );
        let kinds: Vec<String> = process_a
            .entries_after("run-1", 2)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.kind)
            .collect();
        assert_eq!(kinds, ["outcome", "request"]);
        assert_eq!(
            process_a.run("run-1").await.unwrap().unwrap().state,
            "running"
        );
    });
}

pub fn a_live_lease_of_another_holder_is_refused_and_the_same_holder_keeps_its_token(
    harness: &dyn Harness,
) {
    let store = harness.handle();
    block_on(async {
        let lease_a = start(&*store, "run-1", "pool-a", "a@host-1").await;
        harness.advance(Duration::from_secs(4));
        let error = store
            .acquire_lease("pool-a", "run-1", "b@host-2", TTL)
            .await
            .expect_err("A's lease is live");
        match &error {
            StoreError::LeaseHeld {
                cluster,
                run_id,
                holder,
                expires_in_ms,
            } => {
                assert_eq!(
                    (cluster.as_str(), run_id.as_str(), holder.as_str()),
                    ("pool-a", "run-1", "a@host-1")
                );
                // 6 s by the store's clock, less the real time the calls took.
                assert!((1_000..=6_000).contains(expires_in_ms), "{expires_in_ms}");
            }
            other => panic!("expected LeaseHeld, got {other:?}"),
        }
        assert!(error.to_string().contains("a@host-1"), "{error}");

        let again = store
            .acquire_lease("pool-a", "run-1", "a@host-1", TTL)
            .await
            .unwrap();
        assert_eq!(again.fencing_token, lease_a.fencing_token);
        assert!(
            again.expires_at_ms >= lease_a.expires_at_ms + 4_000,
            "{again:?} {lease_a:?}"
        );
        assert_eq!(
            lock_of(&*store, "pool-a").await.lease_expires_at_ms,
            again.expires_at_ms
        );

        store.release_lease(&again).await.unwrap();
        let released = lock_of(&*store, "pool-a").await;
        assert!(!released.lease_live, "{released:?}");
        assert_eq!(released.run_id, "run-1", "the run keeps its cluster");
        let lease_b = store
            .acquire_lease("pool-a", "run-1", "b@host-2", TTL)
            .await
            .expect("a released lease is free");
        assert!(lease_b.fencing_token > lease_a.fencing_token);
    });
}

pub fn an_expired_lease_nobody_took_is_still_current(harness: &dyn Harness) {
    let store = harness.handle();
    block_on(async {
        let lease = start(&*store, "run-1", "pool-a", "a@host-1").await;
        harness.advance(TTL * 3);
        let expired = lock_of(&*store, "pool-a").await;
        assert!(!expired.lease_live);
        store
            .append("run-1", &new_entry("outcome", 2, "{}"), Some(&lease))
            .await
            .expect("nobody took over");
        let renewed = store.renew_lease(&lease, TTL).await.expect("renew");
        assert_eq!(renewed.fencing_token, lease.fencing_token);
        assert_ends_about_ttl_after(
            renewed.expires_at_ms,
            lease.expires_at_ms + 2 * TTL.as_millis() as u64,
        );
        assert!(lock_of(&*store, "pool-a").await.lease_live);
    });
}

pub fn a_lease_is_only_for_a_run_that_holds_its_cluster(harness: &dyn Harness) {
    let store = harness.handle();
    block_on(async {
        let lease_1 = start(&*store, "run-1", "pool-a", "a@host-1").await;
        let error = store
            .acquire_lease("pool-a", "ghost", "a@host-1", TTL)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::UnknownRun { run_id, .. } if run_id == "ghost"),
            "{error:?}"
        );
        // run-2 exists (started on another cluster, then that lock freed) but pool-a is run-1's.
        let lease_2b = start(&*store, "run-2", "pool-b", "b@host-2").await;
        store
            .release_lock("pool-b", "run-2", Some(&lease_2b))
            .await
            .unwrap();
        let error = store
            .acquire_lease("pool-a", "run-2", "b@host-2", TTL)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::LockHeld { run_id, holder, .. } if run_id == "run-1" && holder == "a@host-1"),
            "{error:?}"
        );
        let error = store
            .append("run-2", &new_entry("intent", 3, "{}"), Some(&lease_1))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Fenced { .. }), "{error:?}");
        assert_eq!(store.entries("run-2").await.unwrap().len(), 1);

        store.release_lock("pool-a", "run-2", None).await.unwrap();
        assert_eq!(lock_of(&*store, "pool-a").await.run_id, "run-1");
        store
            .release_lock("pool-a", "run-1", Some(&lease_1))
            .await
            .unwrap();
        assert_eq!(store.cluster_lock("pool-a").await.unwrap(), None);
        let lease_2 = store
            .acquire_lease("pool-a", "run-2", "b@host-2", TTL)
            .await
            .unwrap();
        let lock = lock_of(&*store, "pool-a").await;
        assert_eq!(
            (
                lock.run_id.as_str(),
                lock.holder.as_str(),
                lock.fencing_token,
                lock.lease_live
            ),
            ("run-2", "b@host-2", lease_2.fencing_token, true)
        );
        assert!(lease_2.fencing_token > lease_2b.fencing_token);
    });
}

pub fn of_two_breakers_that_saw_the_same_lease_exactly_one_wins(harness: &dyn Harness) {
    let first = harness.handle();
    let (dead, seen) = block_on(async {
        let dead = start(&*first, "run-1", "pool-a", "1@this-host").await;
        (dead, lock_of(&*first, "pool-a").await)
    });
    assert!(seen.lease_live, "the dead holder's lease has not expired");
    let breakers = 2;
    let barrier = Arc::new(Barrier::new(breakers));
    let handles: Vec<_> = (0..breakers)
        .map(|index| {
            let (store, seen, barrier) = (harness.handle(), seen.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                block_on(store.break_lease(&seen, &format!("breaker-{index}"), TTL))
            })
        })
        .collect();
    let results: Vec<Result<Lease, StoreError>> = handles
        .into_iter()
        .map(|handle| handle.join().expect("breaker thread"))
        .collect();
    let winners: Vec<&Lease> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0];
    assert!(winner.fencing_token > dead.fencing_token);
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(error, StoreError::LeaseHeld { holder, .. } if *holder == winner.holder),
            "{error:?}"
        );
    }
    block_on(async {
        let lock = lock_of(&*first, "pool-a").await;
        assert_eq!(
            (lock.holder.as_str(), lock.fencing_token),
            (winner.holder.as_str(), winner.fencing_token)
        );
        let error = first
            .break_lease(&seen, "late@this-host", TTL)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::LeaseHeld { .. }), "{error:?}");
    });
}

pub fn break_lease_refuses_a_lock_that_changed_runs_or_was_released(harness: &dyn Harness) {
    let store = harness.handle();
    block_on(async {
        let lease_1 = start(&*store, "run-1", "pool-a", "1@this-host").await;
        let seen = lock_of(&*store, "pool-a").await;
        store
            .release_lock("pool-a", "run-1", Some(&lease_1))
            .await
            .unwrap();
        let error = store
            .break_lease(&seen, "2@this-host", TTL)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::LockHeld { .. }), "{error:?}");
        start(&*store, "run-2", "pool-a", "3@this-host").await;
        let error = store
            .break_lease(&seen, "2@this-host", TTL)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::LockHeld { run_id, holder, .. } if run_id == "run-2" && holder == "3@this-host"),
            "{error:?}"
        );
    });
}

pub fn fencing_tokens_strictly_increase_across_released_locks_and_new_runs(harness: &dyn Harness) {
    let mut tokens = Vec::new();
    {
        let store = harness.handle();
        block_on(async {
            let lease_1 = start(&*store, "run-1", "pool-a", "a@host-1").await;
            tokens.push(lease_1.fencing_token);
            harness.advance(TTL * 2);
            let lease_1b = store
                .acquire_lease("pool-a", "run-1", "b@host-2", TTL)
                .await
                .unwrap();
            tokens.push(lease_1b.fencing_token);
            store
                .release_lock("pool-a", "run-1", Some(&lease_1b))
                .await
                .unwrap();
            let lease_2 = start(&*store, "run-2", "pool-a", "a@host-1").await;
            tokens.push(lease_2.fencing_token);
            let error = store
                .append("run-1", &new_entry("outcome", 9, "{}"), Some(&lease_1b))
                .await
                .unwrap_err();
            assert_fenced(error, &lease_1b, &lease_2);
            store
                .release_lock("pool-a", "run-2", Some(&lease_2))
                .await
                .unwrap();
            // Another cluster draws from the same store-wide counter.
            tokens.push(
                start(&*store, "run-3", "pool-b", "c@host-3")
                    .await
                    .fencing_token,
            );
        });
    }
    // Through a handle opened afterwards (another process, or this one restarted), too.
    let reopened = harness.handle();
    block_on(async {
        tokens.push(
            start(&*reopened, "run-4", "pool-a", "a@host-1")
                .await
                .fencing_token,
        );
        let seen = lock_of(&*reopened, "pool-a").await;
        tokens.push(
            reopened
                .break_lease(&seen, "d@host-4", TTL)
                .await
                .unwrap()
                .fencing_token,
        );
    });
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "tokens not strictly increasing: {tokens:?}"
    );
}

pub fn concurrent_writers_through_separate_handles_get_a_gap_free_journal(harness: &dyn Harness) {
    const WRITERS: usize = 4;
    const APPENDS_PER_WRITER: u64 = 200;
    let first = harness.handle();
    block_on(start(&*first, "run-1", "pool-a", "starter")); // entry 1
    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, barrier) = (harness.handle(), Arc::clone(&barrier));
            thread::spawn(move || {
                // Numbering, not power-loss durability, is under test here.
                store.relax_durability().expect("relax durability");
                barrier.wait();
                block_on(async {
                    let mut seqs = Vec::new();
                    for step in 0..APPENDS_PER_WRITER {
                        let payload = format!(r#"{{"writer":{writer},"step":{step}}}"#);
                        let seq = store
                            .append("run-1", &new_entry("intent", step, &payload), None)
                            .await
                            .expect("append");
                        seqs.push(seq);
                    }
                    seqs
                })
            })
        })
        .collect();
    let mut all_seqs = Vec::new();
    for handle in handles {
        let seqs = handle.join().expect("writer thread");
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "one writer's seqs went backwards: {seqs:?}"
        );
        all_seqs.extend(seqs);
    }
    let total = WRITERS as u64 * APPENDS_PER_WRITER + 1;
    let distinct: BTreeSet<u64> = all_seqs.iter().copied().collect();
    assert_eq!(all_seqs.len(), distinct.len(), "a seq was handed out twice");
    assert_eq!(distinct, (2..=total).collect::<BTreeSet<u64>>());
    let stored: Vec<u64> = block_on(harness.handle().entries("run-1"))
        .expect("read back")
        .iter()
        .map(|entry| entry.seq)
        .collect();
    assert_eq!(stored, (1..=total).collect::<Vec<u64>>());
}

/// Drover calls its store from a paused runtime (the simulator's virtual time) and from
/// short-lived runtimes one after another (the CLI); neither may break or stall the store.
pub fn the_store_serves_a_paused_runtime_and_runtimes_one_after_another(harness: &dyn Harness) {
    let store = harness.handle();
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    let lease = paused.block_on(async {
        // In a paused runtime an idle wait makes tokio jump to the next timer: a store that put
        // a timeout of the caller's runtime around its I/O would time out at once (virtual time
        // leaping by the timeout). The store's waits must involve no timer of the caller's.
        let virtual_start = tokio::time::Instant::now();
        let lease = start(&*store, "run-1", "pool-a", "sim").await;
        for step in 0..20 {
            let seq = store
                .append("run-1", &new_entry("intent", step, "{}"), Some(&lease))
                .await
                .expect("append from a paused runtime");
            assert_eq!(seq, step + 2);
        }
        assert!(
            virtual_start.elapsed() < Duration::from_secs(1),
            "the caller's virtual clock moved by {:?}",
            virtual_start.elapsed()
        );
        lease
    });
    drop(paused);
    for round in 0..2u64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let seq = runtime
            .block_on(store.append(
                "run-1",
                &new_entry("outcome", 100 + round, "{}"),
                Some(&lease),
            ))
            .expect("append from a later runtime");
        assert_eq!(seq, 22 + round);
        drop(runtime);
    }
    assert_eq!(block_on(store.entries("run-1")).unwrap().len(), 23);
}

pub fn runs_are_listed_newest_first_per_cluster_and_limited(harness: &dyn Harness) {
    let store = harness.handle();
    block_on(async {
        for (run_id, cluster, created_at_ms) in [
            ("run-a1", "pool-a", 10),
            ("run-b1", "pool-b", 20),
            ("run-a2", "pool-a", 30),
            ("run-a3", "pool-a", 30),
        ] {
            let lease = store
                .start_run(
                    &new_run(run_id, cluster, created_at_ms),
                    "h",
                    TTL,
                    &new_entry("start", 1, "{}"),
                )
                .await
                .unwrap();
            store
                .release_lock(cluster, run_id, Some(&lease))
                .await
                .unwrap();
        }
        let ids = |runs: Vec<drover_store::RunRecord>| {
            runs.into_iter().map(|run| run.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(store.runs(None, 10).await.unwrap()),
            ["run-a3", "run-a2", "run-b1", "run-a1"]
        );
        assert_eq!(
            ids(store.runs(Some("pool-a"), 2).await.unwrap()),
            ["run-a3", "run-a2"]
        );
        assert_eq!(
            ids(store.runs(Some("pool-c"), 10).await.unwrap()),
            Vec::<String>::new()
        );
        assert!(store.runs(None, 0).await.unwrap().is_empty());
    });
}
