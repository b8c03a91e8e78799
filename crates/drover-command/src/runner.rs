//! Runs one rendered argv as a child process, without a shell, under a timeout, and captures a
//! bounded amount of its output.
//!
//! The child gets a null stdin (a command that asks a question fails instead of hanging), the
//! environment and working directory of Drover, and is killed if the future running it is
//! dropped (the engine's own timeout, a crash of the run). On timeout the child is killed and
//! waited for (that wait is bounded too). Only the child itself is killed: processes it started
//! in the background and that left its process group alive are not, so scripts should `exec`
//! their long-running last command. Of stdout and stderr the last `max_captured_bytes` each are
//! kept; the last lines of them go into error messages.
//!
//! This module knows nothing of templates, steps' meanings or drivers.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;
use tokio::time::Instant;

use crate::error::{CommandError, StepContext};

/// Bytes of stdout, and of stderr, kept by default.
pub const DEFAULT_MAX_CAPTURED_BYTES: usize = 64 * 1024;
/// Lines of output quoted in an error message.
pub const MESSAGE_TAIL_LINES: usize = 20;
/// Characters of one output line quoted in an error message.
const MESSAGE_LINE_MAX_CHARS: usize = 400;
/// After the child exits, how long its output may still be read: a background process that
/// inherited the pipes would otherwise hold them open for as long as it runs.
const OUTPUT_DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for a killed child to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Bytes read from a pipe at a time.
const READ_CHUNK_BYTES: usize = 8 * 1024;

/// Bounds of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    /// The child is killed when it runs longer than this.
    pub timeout: Duration,
    /// The last this many bytes of stdout, and of stderr, are kept.
    pub max_captured_bytes: usize,
}

impl RunLimits {
    /// `timeout` with the default capture bound.
    pub fn with_timeout(timeout: Duration) -> RunLimits {
        RunLimits {
            timeout,
            max_captured_bytes: DEFAULT_MAX_CAPTURED_BYTES,
        }
    }
}

/// What one run of a program did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOutput {
    /// `None` when the program was ended by a signal (including Drover's kill on timeout).
    pub exit_code: Option<i32>,
    /// The last `max_captured_bytes` of stdout, as UTF-8 (invalid bytes replaced).
    pub stdout: String,
    pub stderr: String,
    /// Bytes of stdout dropped from the front to stay within the bound.
    pub stdout_dropped_bytes: u64,
    pub stderr_dropped_bytes: u64,
    pub duration_ms: u64,
    /// The program ran past the timeout and was killed.
    pub timed_out: bool,
    /// The signal that ended the program, on platforms that have signals.
    pub signal: Option<i32>,
}

impl StepOutput {
    /// Exited by itself with code 0.
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }

    /// "; last lines of stderr:\n  …" (stdout when stderr is empty), or "" when it printed
    /// nothing. Bounded: at most [`MESSAGE_TAIL_LINES`] lines of bounded length.
    pub fn message_tail(&self) -> String {
        let (name, text, dropped) = if has_visible_text(&self.stderr) {
            ("stderr", &self.stderr, self.stderr_dropped_bytes)
        } else {
            ("stdout", &self.stdout, self.stdout_dropped_bytes)
        };
        let lines = last_lines(text);
        if lines.is_empty() {
            return String::new();
        }
        let visible_lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        let earlier = if dropped > 0 || lines.len() < visible_lines {
            " (earlier lines left out)"
        } else {
            ""
        };
        format!("; last lines of {name}{earlier}:\n  {}", lines.join("\n  "))
    }
}

fn has_visible_text(text: &str) -> bool {
    text.lines().any(|line| !line.trim().is_empty())
}

/// The last non-blank lines, each cut to a bounded length.
fn last_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .rev()
        .filter(|line| !line.trim().is_empty())
        .take(MESSAGE_TAIL_LINES)
        .map(|line| shorten(line.trim_end()))
        .collect();
    lines.reverse();
    lines
}

fn shorten(line: &str) -> String {
    match line.char_indices().nth(MESSAGE_LINE_MAX_CHARS) {
        None => line.to_string(),
        Some((cut, _)) => format!("{}…", &line[..cut]),
    }
}

/// "250 ms", "30 s", "1.5 s".
pub fn describe_duration(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// Runs a rendered step and turns every way of not succeeding (not started, non-zero exit,
/// killed, timed out) into an error naming the step, the program and the last output lines.
pub async fn run_step(
    context: &StepContext,
    argv: &[String],
    limits: RunLimits,
) -> Result<StepOutput, CommandError> {
    let program = argv.first().cloned().unwrap_or_default();
    let output = run_argv(argv, limits)
        .await
        .map_err(|cause| CommandError::SpawnFailed {
            context: Box::new(context.clone()),
            program: program.clone(),
            cause: cause.to_string(),
        })?;
    if output.succeeded() {
        return Ok(output);
    }
    Err(failure(context, program, &output, limits))
}

fn failure(
    context: &StepContext,
    program: String,
    output: &StepOutput,
    limits: RunLimits,
) -> CommandError {
    let context = Box::new(context.clone());
    let output_tail = output.message_tail();
    let elapsed = describe_duration(Duration::from_millis(output.duration_ms));
    match (output.timed_out, output.exit_code) {
        (true, _) => CommandError::TimedOut {
            context,
            program,
            timeout: describe_duration(limits.timeout),
            output_tail,
        },
        (false, Some(exit_code)) => CommandError::NonZeroExit {
            context,
            program,
            exit_code,
            elapsed,
            output_tail,
        },
        (false, None) => CommandError::Killed {
            context,
            program,
            signal: output
                .signal
                .map_or("an unknown cause".into(), |s| format!("signal {s}")),
            elapsed,
            output_tail,
        },
    }
}

/// Runs `argv` (program first) and reports what it did; `Err` only when it could not start.
pub async fn run_argv(argv: &[String], limits: RunLimits) -> std::io::Result<StepOutput> {
    let Some((program, arguments)) = argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "empty argv",
        ));
    };
    let started = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = Capture::new(limits.max_captured_bytes);
    let mut stderr = Capture::new(limits.max_captured_bytes);
    let waited = tokio::time::timeout(
        limits.timeout,
        wait_and_capture(&mut child, &mut stdout, &mut stderr),
    )
    .await;
    let (status, timed_out) = match waited {
        Ok(status) => (status.ok(), false),
        Err(_) => (kill_and_reap(&mut child).await, true),
    };
    Ok(step_output(status, timed_out, started, stdout, stderr))
}

fn step_output(
    status: Option<ExitStatus>,
    timed_out: bool,
    started: Instant,
    stdout: Capture,
    stderr: Capture,
) -> StepOutput {
    let (stdout, stdout_dropped_bytes) = stdout.finish();
    let (stderr, stderr_dropped_bytes) = stderr.finish();
    StepOutput {
        exit_code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        stdout_dropped_bytes,
        stderr_dropped_bytes,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        timed_out,
        signal: status.and_then(signal_of),
    }
}

/// Waits for the child to exit while reading both pipes, then reads what is left for a short
/// grace only.
async fn wait_and_capture(
    child: &mut Child,
    stdout: &mut Capture,
    stderr: &mut Capture,
) -> std::io::Result<ExitStatus> {
    let stdout_pipe = child.stdout.take();
    let stderr_pipe = child.stderr.take();
    let reading = async {
        tokio::join!(stdout.read_all(stdout_pipe), stderr.read_all(stderr_pipe));
    };
    let mut reading = std::pin::pin!(reading);
    let mut reading_done = false;
    let status = tokio::select! {
        status = child.wait() => status,
        () = &mut reading => {
            reading_done = true;
            child.wait().await
        }
    };
    if !reading_done {
        // Output already in the pipes comes through within the grace; a background process
        // that keeps them open does not keep Drover waiting.
        let _ = tokio::time::timeout(OUTPUT_DRAIN_GRACE, reading).await;
    }
    status
}

/// Kills the child and waits (boundedly) for it to be reaped; its status if it was.
async fn kill_and_reap(child: &mut Child) -> Option<ExitStatus> {
    // Fails only when the child has already exited, which is what we want anyway.
    let _ = child.start_kill();
    match tokio::time::timeout(KILL_WAIT, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => None,
    }
}

#[cfg(unix)]
fn signal_of(status: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

#[cfg(not(unix))]
fn signal_of(_status: ExitStatus) -> Option<i32> {
    None
}

/// The last `limit` bytes of a stream.
struct Capture {
    kept: Vec<u8>,
    dropped_bytes: u64,
    limit: usize,
}

impl Capture {
    fn new(limit: usize) -> Capture {
        Capture {
            kept: Vec::new(),
            dropped_bytes: 0,
            limit,
        }
    }

    /// Reads until end of stream or a read error (a closed pipe is the end, not a failure).
    async fn read_all(&mut self, pipe: Option<impl AsyncRead + Unpin>) {
        let Some(mut pipe) = pipe else {
            return;
        };
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        while let Ok(read @ 1..) = pipe.read(&mut chunk).await {
            self.push(&chunk[..read]);
        }
    }

    /// Keeps up to twice the limit between trims, so trimming costs O(1) per byte on average.
    fn push(&mut self, bytes: &[u8]) {
        self.kept.extend_from_slice(bytes);
        if self.kept.len() > self.limit.saturating_mul(2).max(READ_CHUNK_BYTES) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        let excess = self.kept.len().saturating_sub(self.limit);
        self.kept.drain(..excess);
        self.dropped_bytes += excess as u64;
    }

    fn finish(mut self) -> (String, u64) {
        self.trim();
        (
            String::from_utf8_lossy(&self.kept).into_owned(),
            self.dropped_bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_last_bytes() {
        let mut capture = Capture::new(10);
        for _ in 0..10_000 {
            capture.push(b"0123456789abc\n");
        }
        assert!(capture.kept.len() <= READ_CHUNK_BYTES + 14);
        let (text, dropped) = capture.finish();
        assert_eq!(text, "456789abc\n");
        assert_eq!(dropped, 10_000 * 14 - 10);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(describe_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(describe_duration(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn message_tail_prefers_stderr_and_is_bounded() {
        let many_lines: String = (1..=50).map(|n| format!("line {n}\n")).collect();
        let output = StepOutput {
            exit_code: Some(1),
            stdout: "out\n".into(),
            stderr: many_lines,
            stdout_dropped_bytes: 0,
            stderr_dropped_bytes: 0,
            duration_ms: 5,
            timed_out: false,
            signal: None,
        };
        let tail = output.message_tail();
        assert!(tail.starts_with("; last lines of stderr (earlier lines left out):\n  line 31\n"));
        assert!(tail.ends_with("line 50"));
        assert_eq!(tail.lines().count(), 1 + MESSAGE_TAIL_LINES);
        let quiet = StepOutput {
            stderr: "  \n".into(),
            ..output
        };
        assert_eq!(quiet.message_tail(), "; last lines of stdout:\n  out");
    }

    #[test]
    fn long_lines_are_cut() {
        let line = "x".repeat(MESSAGE_LINE_MAX_CHARS + 10);
        assert_eq!(shorten(&line).chars().count(), MESSAGE_LINE_MAX_CHARS + 1);
    }
}
