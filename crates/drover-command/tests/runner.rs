//! The runner with real processes: exit codes, timeouts that kill, bounded output, programs that
//! cannot start, and the messages that end up in Drover's journal.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::argv;
use drover_command::runner::DEFAULT_MAX_CAPTURED_BYTES;
use drover_command::{run_argv, run_step, CommandError, RunLimits, StepContext};

fn limits_secs(secs: u64) -> RunLimits {
    RunLimits::with_timeout(Duration::from_secs(secs))
}

fn context() -> StepContext {
    StepContext::new("upgrade", "host xs01")
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Running, not merely a zombie waiting to be reaped.
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses.
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    !state.starts_with('Z')
}

async fn wait_for_file(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} was never written", path.display());
}

#[tokio::test]
async fn a_successful_program_reports_its_output() {
    let output = run_step(
        &context(),
        &argv(&["sh", "-c", "echo out; echo err >&2"]),
        limits_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(output.exit_code, Some(0));
    assert_eq!(output.stdout, "out\n");
    assert_eq!(output.stderr, "err\n");
    assert!(!output.timed_out);
    assert!(output.duration_ms < 10_000);
}

#[tokio::test]
async fn true_succeeds_and_false_fails() {
    assert!(run_step(&context(), &argv(&["true"]), limits_secs(10))
        .await
        .is_ok());
    let error = run_step(&context(), &argv(&["false"]), limits_secs(10))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string().split(" after ").next().unwrap(),
        "upgrade (host xs01): program \"false\" exited with code 1"
    );
}

#[tokio::test]
async fn a_non_zero_exit_quotes_the_last_lines_of_stderr() {
    let script =
        "for n in $(seq 1 30); do echo \"progress $n\"; echo \"problem $n\" >&2; done; exit 3";
    let error = run_step(&context(), &argv(&["sh", "-c", script]), limits_secs(10))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(
        error,
        CommandError::NonZeroExit { exit_code: 3, .. }
    ));
    assert!(
        message.starts_with("upgrade (host xs01): program \"sh\" exited with code 3 after "),
        "{message}"
    );
    assert!(message.contains("last lines of stderr"), "{message}");
    assert!(
        message.contains("problem 11\n") && message.ends_with("problem 30"),
        "{message}"
    );
    assert!(
        !message.contains("problem 10\n") && !message.contains("progress"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failure_without_stderr_quotes_stdout() {
    let error = run_step(
        &context(),
        &argv(&["sh", "-c", "echo 'dnf: no space left'; exit 1"]),
        limits_secs(10),
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("; last lines of stdout:\n  dnf: no space left"),
        "{error}"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_child_and_says_so() {
    let directory = tempfile::tempdir().unwrap();
    let pid_file = directory.path().join("pid");
    let script = format!(
        "echo started >&2; echo $$ > {}; exec sleep 30",
        pid_file.display()
    );
    let started = Instant::now();
    let run = tokio::spawn(async move {
        run_step(&context(), &argv(&["sh", "-c", &script]), limits_secs(1)).await
    });
    let pid: u32 = wait_for_file(&pid_file).await.trim().parse().unwrap();
    assert!(process_exists(pid));
    let error = run.await.unwrap().unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        !process_exists(pid),
        "the child {pid} was killed and reaped"
    );
    assert_eq!(
        error.to_string(),
        "upgrade (host xs01): program \"sh\" timed out after 1 s and was killed; last lines of stderr:\n  started"
    );
}

#[tokio::test]
async fn a_timed_out_output_is_reported_as_such() {
    let output = run_argv(
        &argv(&["sleep", "30"]),
        RunLimits::with_timeout(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    assert!(output.timed_out && !output.succeeded());
    assert_eq!(output.exit_code, None);
    assert_eq!(output.signal, Some(9));
}

#[tokio::test]
async fn dropping_the_run_kills_the_child() {
    let directory = tempfile::tempdir().unwrap();
    let pid_file = directory.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
    let run =
        tokio::spawn(async move { run_argv(&argv(&["sh", "-c", &script]), limits_secs(60)).await });
    let pid: u32 = wait_for_file(&pid_file).await.trim().parse().unwrap();
    run.abort();
    for _ in 0..500 {
        if !process_alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the child {pid} outlived the dropped run");
}

#[tokio::test]
async fn a_signal_is_reported() {
    let error = run_step(
        &context(),
        &argv(&["sh", "-c", "kill -9 $$"]),
        limits_secs(10),
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("was killed by signal 9"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_program_is_a_clear_failure() {
    let error = run_step(
        &context(),
        &argv(&["/nonexistent/pca-admin", "update"]),
        limits_secs(10),
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, CommandError::SpawnFailed { .. }));
    assert!(
        message.starts_with(
            "upgrade (host xs01): program \"/nonexistent/pca-admin\" could not be started: "
        ) && message.contains("No such file"),
        "{message}"
    );
}

#[tokio::test]
async fn output_is_bounded_to_its_last_bytes() {
    let script = "head -c 300000 /dev/zero | tr '\\0' a; echo; echo the-end";
    let output = run_argv(&argv(&["sh", "-c", script]), limits_secs(10))
        .await
        .unwrap();
    assert_eq!(output.stdout.len(), DEFAULT_MAX_CAPTURED_BYTES);
    assert_eq!(
        output.stdout_dropped_bytes,
        (300_000 + 1 + 8 - DEFAULT_MAX_CAPTURED_BYTES) as u64
    );
    assert!(output.stdout.ends_with("a\nthe-end\n"));
    let small = RunLimits {
        max_captured_bytes: 4,
        ..limits_secs(10)
    };
    let output = run_argv(&argv(&["printf", "0123456789"]), small)
        .await
        .unwrap();
    assert_eq!(
        (output.stdout.as_str(), output.stdout_dropped_bytes),
        ("6789", 6)
    );
}

#[tokio::test]
async fn stdin_is_empty() {
    let output = run_argv(&argv(&["cat"]), limits_secs(10)).await.unwrap();
    assert!(output.succeeded());
    assert_eq!(output.stdout, "");
}

/// A background process that keeps the output pipes open does not hold the step until the
/// timeout: its output is read for a short grace after the child exits.
#[tokio::test]
async fn a_background_process_holding_the_pipes_does_not_hold_the_step() {
    let started = Instant::now();
    let output = run_argv(&argv(&["sh", "-c", "sleep 30 & echo $!"]), limits_secs(20))
        .await
        .unwrap();
    assert!(output.succeeded());
    assert!(started.elapsed() < Duration::from_secs(10));
    let background: u32 = output.stdout.trim().parse().unwrap();
    let _ = std::process::Command::new("kill")
        .arg(background.to_string())
        .status();
}
