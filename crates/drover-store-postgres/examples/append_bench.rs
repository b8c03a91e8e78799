//! Journal appends per second, SQLite vs PostgreSQL, with one writer and with eight concurrent
//! writers (each driving its own run under its own lease, through its own store handle, as eight
//! Drover processes would), at each store's default durability. A figure, not a test:
//!
//! `DROVER_TEST_POSTGRES_URL=… PGPASSWORD=… cargo run --release -p drover-store-postgres --example append_bench`
//!
//! The PostgreSQL figures are for a fresh database named `drover_bench_PID` on that server.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use drover_store::{NewEntry, NewRun, RunStore, SqliteStore};
use drover_store_postgres::PostgresStore;

const APPENDS_PER_WRITER: u64 = 500;
const TTL: Duration = Duration::from_secs(600);

fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}

fn entry(kind: &str, at_ms: u64) -> NewEntry {
    NewEntry {
        at_ms,
        kind: kind.to_string(),
        payload_json: r#"{"step":"migrate","vm":"web-1","to":"h2"}"#.to_string(),
    }
}

/// Appends per second with `writers` writers, each on its own run and handle, and how many appends
/// failed (an SQLite writer that waited past `BUSY_TIMEOUT` for the file's write lock).
fn measure(
    label: &str,
    writers: usize,
    open: &(dyn Fn() -> Arc<dyn RunStore> + Sync),
) -> (f64, u64) {
    let barrier = Arc::new(Barrier::new(writers + 1));
    let started = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|writer| {
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    let store = open();
                    let run_id = format!("{label}-{writers}-{writer}");
                    let run = NewRun {
                        id: run_id.clone(),
                        cluster: run_id.clone(),
                        inventory_sha256: "sha".to_string(),
                        inventory_text: "{}".to_string(),
                        state: "running".to_string(),
                        created_at_ms: 1,
                        options_json: "{}".to_string(),
                    };
                    let lease = block_on(store.start_run(&run, "bench", TTL, &entry("start", 1)))
                        .expect("start");
                    barrier.wait();
                    block_on(async {
                        let mut failed = 0;
                        for step in 0..APPENDS_PER_WRITER {
                            if let Err(error) = store
                                .append(&run_id, &entry("intent", step), Some(&lease))
                                .await
                            {
                                eprintln!("{error}");
                                failed += 1;
                            }
                        }
                        failed
                    })
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let failed: u64 = handles
            .into_iter()
            .map(|handle| handle.join().expect("writer"))
            .sum();
        (started, failed)
    });
    let (started, failed) = started;
    let seconds = started.elapsed().as_secs_f64();
    let succeeded = writers as u64 * APPENDS_PER_WRITER - failed;
    (succeeded as f64 / seconds, failed)
}

fn main() {
    let directory = std::env::temp_dir().join(format!("drover-bench-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("a temporary directory");
    let sqlite_path = directory.join("bench.db");
    let sqlite = |path: &Path| -> Arc<dyn RunStore> {
        Arc::new(SqliteStore::open(path).expect("open SQLite"))
    };
    let postgres_url = std::env::var("DROVER_TEST_POSTGRES_URL")
        .ok()
        .map(|server| {
            let database = format!("drover_bench_{}", std::process::id());
            let status = std::process::Command::new("psql")
                .arg(&server)
                .args(["-q", "-c", &format!("CREATE DATABASE {database}")])
                .status()
                .expect("run psql");
            assert!(status.success(), "creating the bench database");
            format!("{}/{database}", server.rsplit_once('/').expect("a URL").0)
        });
    println!("| store | writers | appends/s | failed appends |");
    println!("| --- | --- | --- | --- |");
    for writers in [1, 8] {
        let (rate, failed) = measure("sqlite", writers, &|| sqlite(&sqlite_path));
        println!("| SQLite (WAL, synchronous=FULL) | {writers} | {rate:.0} | {failed} |");
        if let Some(url) = &postgres_url {
            let (rate, failed) = measure("postgres", writers, &|| {
                Arc::new(PostgresStore::connect(url).expect("connect")) as Arc<dyn RunStore>
            });
            println!("| PostgreSQL (synchronous_commit=on) | {writers} | {rate:.0} | {failed} |");
        }
    }
    if postgres_url.is_none() {
        println!("(PostgreSQL skipped: DROVER_TEST_POSTGRES_URL is not set)");
    }
    std::fs::remove_dir_all(&directory).ok();
}
