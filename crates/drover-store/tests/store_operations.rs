//! Runs, the journal and locks through the public API, on in-memory stores and on files that
//! are closed and reopened.
//!
//! These tests must not reach into the SQLite file; they only use what the engine can use.

mod common;

use common::{new_entry, new_run, open, store_path};
use drover_store::{JournalEntry, LockRecord, Store, StoreError};

#[test]
fn entries_read_back_in_order_after_reopening_the_file() {
    let (_directory, path) = store_path();
    let written = [
        ("input", 1_000, r#"{"inventory":"pool-a"}"#),
        ("intent", 1_001, r#"{"action":"migrate","vm":"web-01"}"#),
        ("outcome", 1_002, r#"{"ok":true}"#),
    ];
    {
        let mut store = open(&path);
        store
            .create_run(&new_run("run-1", "pool-a", 1_000))
            .unwrap();
        for (kind, at_ms, payload) in written {
            store
                .append("run-1", &new_entry(kind, at_ms, payload))
                .unwrap();
        }
    }

    let mut reopened = open(&path);
    let expected: Vec<JournalEntry> = written
        .iter()
        .zip(1..)
        .map(|(&(kind, at_ms, payload), seq)| JournalEntry {
            seq,
            at_ms,
            kind: kind.to_string(),
            payload_json: payload.to_string(),
        })
        .collect();
    assert_eq!(reopened.entries("run-1").unwrap(), expected);
    assert_eq!(
        reopened.run("run-1").unwrap(),
        Some(drover_store::RunRecord {
            id: "run-1".to_string(),
            cluster: "pool-a".to_string(),
            inventory_sha256: "sha256-of-run-1".to_string(),
            inventory_text: "cluster: {name: pool-a}\n".to_string(),
            state: "planned".to_string(),
            created_at_ms: 1_000,
            updated_at_ms: 1_000,
            options_json: r#"{"max_unavailable":1}"#.to_string(),
        })
    );
    let next_seq = reopened
        .append(
            "run-1",
            &new_entry("operator", 2_000, r#"{"note":"resumed"}"#),
        )
        .unwrap();
    assert_eq!(next_seq, 4, "numbering continues after a reopen");
}

#[test]
fn seq_is_gap_free_and_independent_per_run() {
    let mut store = Store::open_in_memory().unwrap();
    store.create_run(&new_run("run-a", "pool-a", 1)).unwrap();
    store.create_run(&new_run("run-b", "pool-b", 2)).unwrap();
    let mut seqs_a = Vec::new();
    let mut seqs_b = Vec::new();
    for step in 0..20 {
        seqs_a.push(
            store
                .append("run-a", &new_entry("intent", step, "{}"))
                .unwrap(),
        );
        if step % 3 == 0 {
            seqs_b.push(
                store
                    .append("run-b", &new_entry("intent", step, "{}"))
                    .unwrap(),
            );
        }
    }
    assert_eq!(seqs_a, (1..=20).collect::<Vec<u64>>());
    assert_eq!(seqs_b, (1..=7).collect::<Vec<u64>>());
    let read_back: Vec<u64> = store
        .entries("run-a")
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(read_back, seqs_a);
}

#[test]
fn appending_to_an_unknown_run_fails_and_names_the_run() {
    let mut store = Store::open_in_memory().unwrap();
    let error = store
        .append("no-such-run", &new_entry("intent", 1, "{}"))
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::UnknownRun { run_id, .. } if run_id == "no-such-run"),
        "{error:?}"
    );
    assert!(error.to_string().contains("no-such-run"), "{error}");
    assert!(store.entries("no-such-run").unwrap().is_empty());
}

#[test]
fn creating_a_run_twice_fails_with_run_exists_and_keeps_the_first() {
    let mut store = Store::open_in_memory().unwrap();
    store.create_run(&new_run("run-1", "pool-a", 1)).unwrap();
    let error = store
        .create_run(&new_run("run-1", "pool-b", 2))
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::RunExists { run_id, .. } if run_id == "run-1"),
        "{error:?}"
    );
    assert!(error.to_string().contains("run-1"), "{error}");
    assert_eq!(store.run("run-1").unwrap().unwrap().cluster, "pool-a");
}

#[test]
fn an_unknown_run_reads_as_none() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.run("missing").unwrap(), None);
}

#[test]
fn runs_are_listed_newest_first_and_filtered_by_cluster() {
    let mut store = Store::open_in_memory().unwrap();
    store.create_run(&new_run("a-old", "pool-a", 100)).unwrap();
    store.create_run(&new_run("b-mid", "pool-b", 200)).unwrap();
    store.create_run(&new_run("a-new", "pool-a", 300)).unwrap();
    // Same creation time as a-new: the later-created run counts as newer.
    store.create_run(&new_run("a-tie", "pool-a", 300)).unwrap();

    let ids = |runs: Vec<drover_store::RunRecord>| -> Vec<String> {
        runs.into_iter().map(|run| run.id).collect()
    };
    assert_eq!(
        ids(store.runs(None, 10).unwrap()),
        ["a-tie", "a-new", "b-mid", "a-old"]
    );
    assert_eq!(
        ids(store.runs(Some("pool-a"), 10).unwrap()),
        ["a-tie", "a-new", "a-old"]
    );
    assert_eq!(
        ids(store.runs(Some("pool-a"), 2).unwrap()),
        ["a-tie", "a-new"]
    );
    assert_eq!(
        ids(store.runs(Some("pool-b"), usize::MAX).unwrap()),
        ["b-mid"]
    );
    assert!(store.runs(Some("pool-z"), 10).unwrap().is_empty());
    assert!(store.runs(None, 0).unwrap().is_empty());
}

#[test]
fn set_run_state_updates_state_and_time_only() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .create_run(&new_run("run-1", "pool-a", 1_000))
        .unwrap();
    store.set_run_state("run-1", "running", 5_000).unwrap();

    let run = store.run("run-1").unwrap().unwrap();
    assert_eq!((run.state.as_str(), run.updated_at_ms), ("running", 5_000));
    assert_eq!(run.created_at_ms, 1_000);
    assert_eq!(run.cluster, "pool-a");

    let error = store.set_run_state("ghost", "running", 1).unwrap_err();
    assert!(
        matches!(&error, StoreError::UnknownRun { run_id, .. } if run_id == "ghost"),
        "{error:?}"
    );
}

#[test]
fn timestamps_beyond_sqlite_integers_are_refused() {
    let mut store = Store::open_in_memory().unwrap();
    store.create_run(&new_run("run-1", "pool-a", 1)).unwrap();
    let error = store
        .append("run-1", &new_entry("intent", u64::MAX, "{}"))
        .unwrap_err();
    assert!(
        matches!(error, StoreError::ValueOutOfRange { field: "at_ms", .. }),
        "{error:?}"
    );
    assert!(store.entries("run-1").unwrap().is_empty());
    // The largest representable time is fine.
    let largest_ms = i64::MAX as u64;
    store
        .append("run-1", &new_entry("intent", largest_ms, "{}"))
        .unwrap();
    assert_eq!(store.entries("run-1").unwrap()[0].at_ms, largest_ms);
}

#[test]
fn a_lock_held_by_another_run_is_refused() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .acquire_lock("pool-a", "run-1", "host-a:pid-10", 1_000)
        .unwrap();

    let error = store
        .acquire_lock("pool-a", "run-2", "host-b:pid-20", 2_000)
        .unwrap_err();
    match &error {
        StoreError::LockHeld {
            cluster,
            run_id,
            holder,
            since_ms,
        } => {
            assert_eq!(
                (
                    cluster.as_str(),
                    run_id.as_str(),
                    holder.as_str(),
                    *since_ms
                ),
                ("pool-a", "run-1", "host-a:pid-10", 1_000)
            );
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("pool-a") && message.contains("run-1"),
        "{message}"
    );
    // Other clusters are independent.
    store
        .acquire_lock("pool-b", "run-2", "host-b:pid-20", 2_000)
        .unwrap();
}

#[test]
fn the_same_run_may_reacquire_its_lock_with_a_new_holder() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .acquire_lock("pool-a", "run-1", "pid-10", 1_000)
        .unwrap();
    store
        .acquire_lock("pool-a", "run-1", "pid-11", 9_000)
        .unwrap();
    assert_eq!(
        store.lock_holder("pool-a").unwrap(),
        Some(LockRecord {
            cluster: "pool-a".to_string(),
            run_id: "run-1".to_string(),
            holder: "pid-11".to_string(),
            since_ms: 1_000,
        })
    );
}

#[test]
fn after_release_another_run_may_lock() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .acquire_lock("pool-a", "run-1", "pid-10", 1_000)
        .unwrap();

    // Releasing as the wrong run, or an unlocked cluster, changes nothing.
    store.release_lock("pool-a", "run-2").unwrap();
    store.release_lock("pool-z", "run-1").unwrap();
    assert_eq!(
        store.lock_holder("pool-a").unwrap().unwrap().run_id,
        "run-1"
    );

    store.release_lock("pool-a", "run-1").unwrap();
    assert_eq!(store.lock_holder("pool-a").unwrap(), None);
    store
        .acquire_lock("pool-a", "run-2", "pid-20", 2_000)
        .unwrap();
    assert_eq!(
        store.lock_holder("pool-a").unwrap().unwrap().run_id,
        "run-2"
    );
}

#[test]
fn two_handles_on_one_file_see_each_others_lock_and_entries() {
    let (_directory, path) = store_path();
    let mut first = open(&path);
    let mut second = open(&path);

    first
        .acquire_lock("pool-a", "run-1", "first", 1_000)
        .unwrap();
    assert_eq!(
        second.lock_holder("pool-a").unwrap().unwrap().holder,
        "first"
    );
    let error = second
        .acquire_lock("pool-a", "run-2", "second", 2_000)
        .unwrap_err();
    assert!(matches!(error, StoreError::LockHeld { .. }), "{error:?}");

    first.release_lock("pool-a", "run-1").unwrap();
    second
        .acquire_lock("pool-a", "run-2", "second", 3_000)
        .unwrap();
    let error = first
        .acquire_lock("pool-a", "run-1", "first", 4_000)
        .unwrap_err();
    assert!(matches!(error, StoreError::LockHeld { .. }), "{error:?}");

    // Appends interleaved from both handles share one gap-free numbering.
    first
        .create_run(&new_run("run-1", "pool-a", 1_000))
        .unwrap();
    assert_eq!(
        first
            .append("run-1", &new_entry("intent", 1, "{}"))
            .unwrap(),
        1
    );
    assert_eq!(
        second
            .append("run-1", &new_entry("outcome", 2, "{}"))
            .unwrap(),
        2
    );
    assert_eq!(
        first
            .append("run-1", &new_entry("intent", 3, "{}"))
            .unwrap(),
        3
    );
    assert_eq!(second.entries("run-1").unwrap().len(), 3);
}
