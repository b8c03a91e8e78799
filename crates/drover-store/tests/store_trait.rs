//! The `RunStore` trait as the engine will hold it (`Arc<dyn RunStore>`, moved into tasks), and
//! the journal's numbering under concurrent writers through separate `SqliteStore` handles.
//!
//! These tests use only the public API; they must not reach into the SQLite file.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{leased, manual_clock, new_entry, new_run, store_path};
use drover_store::{RunStore, SqliteStore, StoreError};

const TTL: Duration = Duration::from_secs(30);

#[test]
fn the_store_and_its_trait_object_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<SqliteStore>();
    assert_send_sync::<dyn RunStore>();
    assert_send_sync::<Arc<dyn RunStore>>();
}

#[tokio::test]
async fn a_run_is_driven_through_an_arc_dyn_run_store() {
    let (_directory, path) = store_path();
    let store: Arc<dyn RunStore> = Arc::new(leased(&path, &manual_clock()));
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

    // The futures are Send: a spawned task appends under the lease.
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
    assert_eq!((run.state.as_str(), run.updated_at_ms), ("running", 102));
    let listed: Vec<String> = store
        .runs(Some("pool-a"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|run| run.id)
        .collect();
    assert_eq!(listed, ["run-1"]);
    assert!(store.runs(Some("pool-b"), 10).await.unwrap().is_empty());
    let entries = store.entries("run-1").await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|entry| (entry.seq, entry.kind.as_str()))
            .collect::<Vec<_>>(),
        [(1, "start"), (2, "intent")]
    );
    assert_eq!(store.entries_after("run-1", 1).await.unwrap(), entries[1..]);

    let error = store
        .start_run(
            &new_run("run-2", "pool-a", 103),
            "2@here",
            TTL,
            &new_entry("start", 103, "{}"),
        )
        .await
        .expect_err("the cluster is locked");
    assert!(
        matches!(&error, StoreError::LockHeld { run_id, .. } if run_id == "run-1"),
        "{error:?}"
    );
    let error = store
        .start_run(
            &new_run("run-1", "pool-b", 104),
            "2@here",
            TTL,
            &new_entry("start", 104, "{}"),
        )
        .await
        .expect_err("the id is taken");
    assert!(matches!(error, StoreError::RunExists { .. }), "{error:?}");
    assert_eq!(store.cluster_lock("pool-b").await.unwrap(), None);

    store
        .release_lock("pool-a", "run-1", Some(&lease))
        .await
        .unwrap();
    assert_eq!(store.cluster_lock("pool-a").await.unwrap(), None);
}

#[test]
fn concurrent_writers_through_separate_handles_get_a_gap_free_journal() {
    const WRITERS: usize = 4;
    const APPENDS_PER_WRITER: u64 = 200;
    let (_directory, path) = store_path();
    let clock = manual_clock();
    leased(&path, &clock)
        .with(|store| store.create_run(&new_run("run-1", "pool-a", 1)))
        .expect("create the run");

    let barrier = Arc::new(Barrier::new(WRITERS));
    let handles: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (path, clock, barrier) = (path.clone(), Arc::clone(&clock), Arc::clone(&barrier));
            thread::spawn(move || {
                let store: Arc<dyn RunStore> = {
                    let store = leased(&path, &clock);
                    // Numbering, not power-loss durability, is under test here.
                    store.relax_durability().expect("relax durability");
                    Arc::new(store)
                };
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a current-thread runtime");
                barrier.wait();
                runtime.block_on(async {
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
    let total = WRITERS as u64 * APPENDS_PER_WRITER;
    let distinct: BTreeSet<u64> = all_seqs.iter().copied().collect();
    assert_eq!(all_seqs.len(), distinct.len(), "a seq was handed out twice");
    assert_eq!(distinct, (1..=total).collect::<BTreeSet<u64>>());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let stored: Vec<u64> = runtime
        .block_on(leased(&path, &clock).entries("run-1"))
        .expect("read back")
        .iter()
        .map(|entry| entry.seq)
        .collect();
    assert_eq!(stored, (1..=total).collect::<Vec<u64>>());
}
