//! An entry whose `append` has returned survives the process being SIGKILLed.
//!
//! The test re-executes its own binary as a child that appends entries and prints each sequence
//! number once `append` returns; the parent kills it mid-stream and checks that every printed
//! number is in the reopened store. The test must not rely on the child closing anything.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{new_entry, new_run, open, store_path};
use drover_store::Store;

/// Set (to the store's path) only in the child process.
const CHILD_STORE_PATH_ENV: &str = "DROVER_STORE_CRASH_CHILD_STORE_PATH";
const CHILD_TEST_NAME: &str = "crash_child_appends_until_killed";
const ACKNOWLEDGED_PREFIX: &str = "appended seq=";
const RUN_ID: &str = "crash-run";

/// How many acknowledgements the parent waits for before killing the child.
const ACKNOWLEDGEMENTS_BEFORE_KILL: usize = 100;
/// Bounds on the child, in case the parent never kills it; far beyond what the parent needs.
const CHILD_MAX_APPENDS: u64 = 1_000_000;
const CHILD_MAX_DURATION: Duration = Duration::from_secs(60);

/// The child's side; does nothing in a normal test run, where the variable is unset.
#[test]
fn crash_child_appends_until_killed() {
    let Some(path) = std::env::var_os(CHILD_STORE_PATH_ENV) else {
        return;
    };
    let mut store = Store::open(Path::new(&path)).expect("child opens the store");
    let deadline = Instant::now() + CHILD_MAX_DURATION;
    // Straight to the file descriptor, past the test harness's output capture.
    let mut stdout = std::io::stdout().lock();
    for step in 0..CHILD_MAX_APPENDS {
        if Instant::now() > deadline {
            break;
        }
        let payload = format!(r#"{{"step":{step},"padding":"{}"}}"#, "p".repeat(200));
        let seq = store
            .append(RUN_ID, &new_entry("intent", step, &payload))
            .expect("child appends");
        writeln!(stdout, "{ACKNOWLEDGED_PREFIX}{seq}").expect("child reports");
        stdout.flush().expect("child flushes");
    }
}

#[test]
fn entries_acknowledged_before_sigkill_survive() {
    if std::env::var_os(CHILD_STORE_PATH_ENV).is_some() {
        return;
    }
    let (_directory, path) = store_path();
    open(&path)
        .create_run(&new_run(RUN_ID, "pool-a", 1))
        .expect("create the run");

    let mut child = Command::new(std::env::current_exe().expect("path of this test binary"))
        .args([
            CHILD_TEST_NAME,
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_STORE_PATH_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let child_stdout = child.stdout.take().expect("child stdout is piped");
    let mut lines = BufReader::new(child_stdout).lines();

    let mut acknowledged_seqs: Vec<u64> = Vec::new();
    for line in lines.by_ref() {
        acknowledged_seqs.extend(acknowledged_seq(line));
        if acknowledged_seqs.len() >= ACKNOWLEDGEMENTS_BEFORE_KILL {
            break;
        }
    }
    child.kill().expect("SIGKILL the child");
    // Whatever the child printed before it died was acknowledged too.
    acknowledged_seqs.extend(lines.filter_map(acknowledged_seq));
    let status = child.wait().expect("reap the child");

    assert!(
        acknowledged_seqs.len() >= ACKNOWLEDGEMENTS_BEFORE_KILL,
        "the child stopped early ({status}) after {} appends",
        acknowledged_seqs.len()
    );
    assert!(
        !status.success(),
        "the child finished instead of being killed"
    );
    let stored_seqs: Vec<u64> = open(&path)
        .entries(RUN_ID)
        .expect("read the journal after the crash")
        .iter()
        .map(|entry| entry.seq)
        .collect();
    let gap_free: Vec<u64> = (1..=stored_seqs.len() as u64).collect();
    assert_eq!(
        stored_seqs, gap_free,
        "the journal has gaps after the crash"
    );
    let lost_seqs: Vec<u64> = acknowledged_seqs
        .iter()
        .filter(|seq| !stored_seqs.contains(seq))
        .copied()
        .collect();
    assert!(
        lost_seqs.is_empty(),
        "acknowledged entries lost: {lost_seqs:?}"
    );
    assert_eq!(
        acknowledged_seqs,
        (1..=acknowledged_seqs.len() as u64).collect::<Vec<u64>>(),
        "the child acknowledged out of order"
    );
}

/// The sequence number in one line of the child's output, if the line is an acknowledgement.
/// The harness's own chatter ("test … ") may precede the first one on the same line.
fn acknowledged_seq(line: std::io::Result<String>) -> Option<u64> {
    let line = line.expect("read the child's output");
    let (_, seq) = line.split_once(ACKNOWLEDGED_PREFIX)?;
    Some(seq.trim().parse().expect("a sequence number"))
}
