//! Leases and fencing tokens through `RunStore`: who may write for a run, until when, and that a
//! superseded holder can write nothing at all.
//!
//! Time moves only through a `ManualClock` shared by every handle (as processes on one machine
//! share its clock); no test sleeps. Handles on one file stand for separate processes.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{leased, manual_clock, new_entry, new_run, open, store_path};
use drover_store::{ClusterLock, Lease, RunStore, StoreError};

const TTL: Duration = Duration::from_secs(10);

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

#[tokio::test]
async fn after_a_take_over_the_former_holder_can_write_nothing() {
    let (_directory, path) = store_path();
    let clock = manual_clock();
    let process_a = leased(&path, &clock);
    let process_b = leased(&path, &clock);
    let lease_a = start(&process_a, "run-1", "pool-a", "a@host-1").await;
    assert_eq!(
        process_a
            .append("run-1", &new_entry("intent", 2, "{}"), Some(&lease_a))
            .await
            .unwrap(),
        2
    );

    // A is paused past its lease; B sees it expired and takes the run.
    clock.advance(TTL + Duration::from_millis(1));
    let seen = lock_of(&process_b, "pool-a").await;
    assert!(!seen.lease_live, "{seen:?}");
    let lease_b = process_b
        .acquire_lease("pool-a", "run-1", "b@host-2", TTL)
        .await
        .expect("an expired lease is free");
    assert!(lease_b.fencing_token > lease_a.fencing_token);

    // A wakes up: nothing it does under its old lease is recorded.
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
    let error = process_a
        .renew_lease(&lease_a, TTL)
        .await
        .expect_err("a superseded lease cannot be renewed");
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
    let after = lock_of(&process_b, "pool-a").await;
    assert_eq!(
        (after.holder.as_str(), after.fencing_token, after.lease_live),
        ("b@host-2", lease_b.fencing_token, true)
    );
    let run = process_b.run("run-1").await.unwrap().unwrap();
    assert_eq!(run.state, "planned");
    assert_eq!(process_b.entries("run-1").await.unwrap().len(), 2);

    // B writes; an operator's request from outside any lease is accepted too.
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
}

#[tokio::test]
async fn a_live_lease_of_another_holder_is_refused_and_the_same_holder_keeps_its_token() {
    let clock = manual_clock();
    let (_directory, path) = store_path();
    let store = leased(&path, &clock);
    let lease_a = start(&store, "run-1", "pool-a", "a@host-1").await;
    assert_eq!(lease_a.expires_at_ms, clock_ms(&clock) + 10_000);

    clock.advance(Duration::from_secs(4));
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
        } => assert_eq!(
            (
                cluster.as_str(),
                run_id.as_str(),
                holder.as_str(),
                *expires_in_ms
            ),
            ("pool-a", "run-1", "a@host-1", 6_000)
        ),
        other => panic!("expected LeaseHeld, got {other:?}"),
    }
    assert!(error.to_string().contains("a@host-1"), "{error}");

    // A restarted in the same holder (or simply re-acquiring) keeps its token, extended.
    let again = store
        .acquire_lease("pool-a", "run-1", "a@host-1", TTL)
        .await
        .unwrap();
    assert_eq!(again.fencing_token, lease_a.fencing_token);
    assert_eq!(again.expires_at_ms, clock_ms(&clock) + 10_000);
    assert_eq!(
        lock_of(&store, "pool-a").await.lease_expires_at_ms,
        again.expires_at_ms
    );

    // Released: another holder gets in at once, without waiting for the expiry.
    store.release_lease(&again).await.unwrap();
    let released = lock_of(&store, "pool-a").await;
    assert!(!released.lease_live, "{released:?}");
    assert_eq!(released.run_id, "run-1", "the run keeps its cluster");
    let lease_b = store
        .acquire_lease("pool-a", "run-1", "b@host-2", TTL)
        .await
        .expect("a released lease is free");
    assert!(lease_b.fencing_token > lease_a.fencing_token);
}

#[tokio::test]
async fn an_expired_lease_nobody_took_is_still_current() {
    let clock = manual_clock();
    let (_directory, path) = store_path();
    let store = leased(&path, &clock);
    let lease = start(&store, "run-1", "pool-a", "a@host-1").await;
    clock.advance(TTL * 3);
    assert!(!lock_of(&store, "pool-a").await.lease_live);
    // The token, not the clock, decides who may write.
    store
        .append("run-1", &new_entry("outcome", 2, "{}"), Some(&lease))
        .await
        .expect("nobody took over");
    let renewed = store.renew_lease(&lease, TTL).await.expect("renew");
    assert_eq!(renewed.fencing_token, lease.fencing_token);
    assert_eq!(renewed.expires_at_ms, clock_ms(&clock) + 10_000);
    assert!(lock_of(&store, "pool-a").await.lease_live);
}

#[tokio::test]
async fn a_lease_is_only_for_a_run_that_holds_its_cluster() {
    let clock = manual_clock();
    let (_directory, path) = store_path();
    let store = leased(&path, &clock);
    let lease_1 = start(&store, "run-1", "pool-a", "a@host-1").await;

    let error = store
        .acquire_lease("pool-a", "ghost", "a@host-1", TTL)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::UnknownRun { run_id, .. } if run_id == "ghost"),
        "{error:?}"
    );
    store
        .with(|sync| sync.create_run(&new_run("run-2", "pool-a", 2)))
        .unwrap();
    let error = store
        .acquire_lease("pool-a", "run-2", "b@host-2", TTL)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::LockHeld { run_id, holder, .. } if run_id == "run-1" && holder == "a@host-1"),
        "{error:?}"
    );
    // A lease of run-1 does not cover writes to run-2.
    let error = store
        .append("run-2", &new_entry("intent", 3, "{}"), Some(&lease_1))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Fenced { .. }), "{error:?}");
    assert!(store.entries("run-2").await.unwrap().is_empty());

    // Finished: run-1 frees the cluster (a lock-less release never frees another run's lock).
    store.release_lock("pool-a", "run-2", None).await.unwrap();
    assert_eq!(lock_of(&store, "pool-a").await.run_id, "run-1");
    store
        .release_lock("pool-a", "run-1", Some(&lease_1))
        .await
        .unwrap();
    assert_eq!(store.cluster_lock("pool-a").await.unwrap(), None);
    // A free cluster is taken for an existing run that asks for its lease.
    let lease_2 = store
        .acquire_lease("pool-a", "run-2", "b@host-2", TTL)
        .await
        .unwrap();
    let lock = lock_of(&store, "pool-a").await;
    assert_eq!(
        (lock.run_id.as_str(), lock.since_ms, lock.fencing_token),
        ("run-2", clock_ms(&clock), lease_2.fencing_token)
    );
}

#[test]
fn of_two_breakers_that_saw_the_same_lease_exactly_one_wins() {
    let (_directory, path) = store_path();
    let clock = manual_clock();
    let runtime = current_thread_runtime();
    let first = leased(&path, &clock);
    let dead = runtime.block_on(start(&first, "run-1", "pool-a", "1@this-host"));
    let seen = runtime.block_on(lock_of(&first, "pool-a"));
    assert!(seen.lease_live, "the dead holder's lease has not expired");

    let breakers = 2;
    let barrier = Arc::new(Barrier::new(breakers));
    let handles: Vec<_> = (0..breakers)
        .map(|index| {
            let (path, clock, seen, barrier) = (
                path.clone(),
                Arc::clone(&clock),
                seen.clone(),
                Arc::clone(&barrier),
            );
            thread::spawn(move || {
                let store = leased(&path, &clock);
                let runtime = current_thread_runtime();
                barrier.wait();
                runtime.block_on(store.break_lease(&seen, &format!("breaker-{index}"), TTL))
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
    let lock = runtime.block_on(lock_of(&first, "pool-a"));
    assert_eq!(
        (lock.holder.as_str(), lock.fencing_token),
        (winner.holder.as_str(), winner.fencing_token)
    );
    // The same stale view cannot break the winner's lease either.
    let error = runtime
        .block_on(first.break_lease(&seen, "late@this-host", TTL))
        .unwrap_err();
    assert!(matches!(error, StoreError::LeaseHeld { .. }), "{error:?}");
}

#[tokio::test]
async fn break_lease_refuses_a_lock_that_changed_runs_or_was_released() {
    let clock = manual_clock();
    let (_directory, path) = store_path();
    let store = leased(&path, &clock);
    let lease_1 = start(&store, "run-1", "pool-a", "1@this-host").await;
    let seen = lock_of(&store, "pool-a").await;
    store
        .release_lock("pool-a", "run-1", Some(&lease_1))
        .await
        .unwrap();
    let error = store
        .break_lease(&seen, "2@this-host", TTL)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::LockHeld { .. }), "{error:?}");

    start(&store, "run-2", "pool-a", "3@this-host").await;
    let error = store
        .break_lease(&seen, "2@this-host", TTL)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::LockHeld { run_id, holder, .. } if run_id == "run-2" && holder == "3@this-host"),
        "{error:?}"
    );
}

#[tokio::test]
async fn fencing_tokens_strictly_increase_across_released_locks_and_new_runs() {
    let clock = manual_clock();
    let (_directory, path) = store_path();
    let mut tokens = Vec::new();
    {
        let store = leased(&path, &clock);
        let lease_1 = start(&store, "run-1", "pool-a", "a@host-1").await;
        tokens.push(lease_1.fencing_token);
        clock.advance(TTL * 2);
        let lease_1b = store
            .acquire_lease("pool-a", "run-1", "b@host-2", TTL)
            .await
            .unwrap();
        tokens.push(lease_1b.fencing_token);
        store
            .release_lock("pool-a", "run-1", Some(&lease_1b))
            .await
            .unwrap();
        // The row is gone; the next run on the cluster must still get a larger token.
        let lease_2 = start(&store, "run-2", "pool-a", "a@host-1").await;
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
    }
    // Through the synchronous API and after reopening the file, too.
    open(&path)
        .start_run(
            &new_run("run-3", "pool-a", 3),
            "c@host-3",
            &new_entry("start", 3, "{}"),
        )
        .unwrap();
    let reopened = leased(&path, &clock);
    tokens.push(lock_of(&reopened, "pool-a").await.fencing_token);
    reopened
        .release_lock("pool-a", "run-3", None)
        .await
        .unwrap();
    tokens.push(
        start(&reopened, "run-4", "pool-a", "a@host-1")
            .await
            .fencing_token,
    );

    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "tokens not strictly increasing: {tokens:?}"
    );
}

#[tokio::test]
async fn a_lock_taken_through_the_synchronous_api_never_expires_and_can_be_broken() {
    let clock = manual_clock();
    let (_directory, path) = store_path();
    open(&path)
        .start_run(
            &new_run("run-1", "pool-a", 1),
            "10@this-host",
            &new_entry("start", 1, "{}"),
        )
        .unwrap();
    let store = leased(&path, &clock);
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    let seen = lock_of(&store, "pool-a").await;
    assert!(seen.lease_live, "a holder that never renews keeps its lock");
    assert!(seen.fencing_token > 0);
    let error = store
        .acquire_lease("pool-a", "run-1", "11@this-host", TTL)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::LeaseHeld { .. }), "{error:?}");

    // The caller proved 10@this-host dead: break it.
    let lease = store.break_lease(&seen, "11@this-host", TTL).await.unwrap();
    assert!(lease.fencing_token > seen.fencing_token);
    assert_eq!(lease.expires_at_ms, clock_ms(&clock) + 10_000);
    let record = store
        .with(|sync| sync.lock_holder("pool-a"))
        .unwrap()
        .unwrap();
    assert_eq!(record, lock_of(&store, "pool-a").await.record());
    assert_eq!(
        (record.holder.as_str(), record.since_ms),
        ("11@this-host", 1)
    );
}

fn clock_ms(clock: &drover_store::ManualClock) -> u64 {
    use drover_store::LeaseClock;
    clock.now_ms()
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}
