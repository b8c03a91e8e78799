//! Starting a run is one transaction (run, lock, first entry), and taking a run over is a
//! compare-and-swap on its lock: no start leaves a locked cluster without a journal, and no two
//! processes can hold one run.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::{new_entry, new_run, open, store_path};
use drover_store::StoreError;

#[test]
fn a_started_run_has_its_lock_and_first_entry() {
    let (_directory, path) = store_path();
    let mut store = open(&path);
    store
        .start_run(
            &new_run("run-1", "pool-a", 5),
            "1@here",
            &new_entry("start", 5, "{}"),
        )
        .expect("start");
    let lock = store.lock_holder("pool-a").unwrap().expect("locked");
    assert_eq!(
        (lock.run_id.as_str(), lock.holder.as_str(), lock.since_ms),
        ("run-1", "1@here", 5)
    );
    let entries = store.entries("run-1").unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].seq, entries[0].kind.as_str()), (1, "start"));
}

#[test]
fn a_start_on_a_locked_cluster_writes_nothing_even_with_the_same_run_id() {
    let (_directory, path) = store_path();
    let mut store = open(&path);
    store
        .start_run(
            &new_run("run-1", "pool-a", 5),
            "1@here",
            &new_entry("start", 5, "{}"),
        )
        .expect("first start");
    for run_id in ["run-1", "run-2"] {
        let error = store
            .start_run(
                &new_run(run_id, "pool-a", 6),
                "2@here",
                &new_entry("start", 6, "{}"),
            )
            .expect_err("the cluster is locked");
        assert!(
            matches!(&error, StoreError::LockHeld { run_id, holder, .. } if run_id == "run-1" && holder == "1@here"),
            "{error:?}"
        );
    }
    assert!(store.run("run-2").unwrap().is_none());
    assert_eq!(store.entries("run-1").unwrap().len(), 1);
    assert_eq!(
        store.lock_holder("pool-a").unwrap().unwrap().holder,
        "1@here"
    );
}

#[test]
fn a_start_with_a_taken_id_leaves_no_lock_behind() {
    let (_directory, path) = store_path();
    let mut store = open(&path);
    store.create_run(&new_run("run-1", "pool-b", 1)).unwrap();
    let error = store
        .start_run(
            &new_run("run-1", "pool-a", 5),
            "1@here",
            &new_entry("start", 5, "{}"),
        )
        .expect_err("the id is taken");
    assert!(matches!(error, StoreError::RunExists { .. }), "{error:?}");
    assert!(store.lock_holder("pool-a").unwrap().is_none());
    assert!(store.entries("run-1").unwrap().is_empty());
}

#[test]
fn of_many_simultaneous_starts_on_one_cluster_exactly_one_wins() {
    let (_directory, path) = store_path();
    drop(open(&path));
    let starters = 8;
    let barrier = Arc::new(Barrier::new(starters));
    let handles: Vec<_> = (0..starters)
        .map(|index| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut store = open(&path);
                barrier.wait();
                // Half of them race with one shared id, as two starts in the same second did.
                let run_id = if index % 2 == 0 {
                    "pool-a-same-second".to_string()
                } else {
                    format!("run-{index}")
                };
                store.start_run(
                    &new_run(&run_id, "pool-a", 1),
                    &format!("{index}@here"),
                    &new_entry("start", 1, "{}"),
                )
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(winners, 1, "{results:?}");
    for result in results.iter().filter_map(|result| result.as_ref().err()) {
        assert!(matches!(result, StoreError::LockHeld { .. }), "{result:?}");
    }
}

#[test]
fn a_take_over_succeeds_only_from_the_holder_the_caller_saw() {
    let (_directory, path) = store_path();
    let mut store = open(&path);
    store
        .start_run(
            &new_run("run-1", "pool-a", 5),
            "1@dead",
            &new_entry("start", 5, "{}"),
        )
        .unwrap();
    store
        .take_over_lock("pool-a", "run-1", Some("1@dead"), "2@here", 9)
        .expect("take over from the dead holder");
    // A second resumer that also saw the dead holder loses.
    let error = store
        .take_over_lock("pool-a", "run-1", Some("1@dead"), "3@here", 9)
        .expect_err("already taken over");
    assert!(
        matches!(&error, StoreError::LockHeld { holder, .. } if holder == "2@here"),
        "{error:?}"
    );
    let lock = store.lock_holder("pool-a").unwrap().unwrap();
    assert_eq!((lock.holder.as_str(), lock.since_ms), ("2@here", 5));
    // A free cluster is taken only if it is still free.
    store.release_lock("pool-a", "run-1").unwrap();
    store
        .take_over_lock("pool-a", "run-1", None, "4@here", 11)
        .expect("free");
    assert!(store
        .take_over_lock("pool-a", "run-1", None, "5@here", 12)
        .is_err());
}
