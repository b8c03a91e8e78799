//! CLI conventions through the real binary: a closed stdout ends quietly (no "Broken pipe"
//! panic), shell completions and man pages, help for `-o`, the run id as a positional argument,
//! `status` listing every host with `--watch`, simulated runs shown as offsets from their start,
//! timestamped log lines with VM events, `NO_COLOR` on a terminal, and no Rust debug text.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod cli_common;

use cli_common::{stderr, stdout, testdata, Workspace};

#[test]
fn a_closed_stdout_ends_quietly_without_a_panic() {
    let workspace = Workspace::new();
    let inventory = workspace.directory.path().join("big.yaml");
    let generated = workspace.drover(&["generate", "--hosts", "300"]);
    assert_eq!(generated.status.code(), Some(0), "{}", stderr(&generated));
    std::fs::write(&inventory, &generated.stdout).unwrap();
    // More than a pipe buffer of JSON, so the writer meets the closed pipe.
    let mut child = workspace
        .command(&["plan", "-i", inventory.to_str().unwrap(), "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "{");
    drop(reader);
    let output = child.wait_with_output().unwrap();
    let message = stderr(&output);
    assert!(!message.contains("panicked"), "{message}");
    assert!(!message.contains("Broken pipe"), "{message}");
    let by_sigpipe = output.status.signal() == Some(13);
    assert!(
        by_sigpipe || output.status.code() == Some(141),
        "{:?}",
        output.status
    );
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Workspace::new().drover(&["completions", shell]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let script = stdout(&output);
        for command in ["plan", "report", "status", "completions"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
    let refused = Workspace::new().drover(&["completions", "cmd.exe"]);
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn man_pages_go_to_a_directory_or_to_stdout() {
    let workspace = Workspace::new();
    let directory = workspace.directory.path().join("man1");
    let output = workspace.drover(&["man", "--dir", directory.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for page in [
        "drover.1",
        "drover-plan.1",
        "drover-report.1",
        "drover-status.1",
    ] {
        let text = std::fs::read_to_string(directory.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let status_page = std::fs::read_to_string(directory.join("drover-status.1")).unwrap();
    assert!(status_page.contains("watch"), "{status_page}");
    let top = workspace.drover(&["man"]);
    assert_eq!(top.status.code(), Some(0));
    assert!(stdout(&top).contains(".TH drover 1"), "{}", stdout(&top));
}

#[test]
fn every_output_flag_has_help_text() {
    for command in [
        "plan", "simulate", "run", "status", "report", "history", "timeline", "check", "retry",
        "skip", "abort", "approve",
    ] {
        let output = Workspace::new().drover(&[command, "--help"]);
        let help = stdout(&output);
        let lines: Vec<&str> = help.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.contains("--output"))
            .unwrap_or_else(|| panic!("{command}: no --output in {help}"));
        // Long help puts the text on the next line.
        let entry = lines[at..(at + 2).min(lines.len())].join(" ");
        assert!(
            entry.contains("Output format"),
            "{command}: `-o` without help: {entry}"
        );
    }
}

#[test]
fn the_run_id_is_positional_on_every_command_that_takes_one() {
    let workspace = Workspace::new();
    let inventory = testdata("runs/upgrade-fails.yaml");
    // An older run, so that "the newest" would pick the wrong one.
    assert_eq!(
        workspace
            .drover(&["run", "-i", &inventory, "--run-id", "r1"])
            .status
            .code(),
        Some(5)
    );
    let halted = workspace.drover(&["run", "-i", &inventory, "--run-id", "r2"]);
    assert_eq!(
        halted.status.code(),
        Some(2),
        "one run per cluster: {}",
        stderr(&halted)
    );
    for (args, code) in [
        (vec!["status", "r1"], 0),
        (vec!["report", "r1"], 0),
        (vec!["timeline", "r1"], 0),
        // Pausing a halted run is accepted; it stays halted (5) until retried.
        (vec!["pause", "r1"], 5),
        (vec!["unpause", "--run", "r1"], 5),
        (vec!["retry", "r1"], 0),
    ] {
        let output = workspace.drover(&args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        workspace.json(&["status", "r1", "-o", "json"])["phase"],
        "completed"
    );
    // skip HOST RUN and the older `--run RUN` both name the run.
    let other = Workspace::new();
    assert_eq!(
        other
            .drover(&[
                "run",
                "-i",
                &testdata("runs/host-never-returns.yaml"),
                "--run-id",
                "n1"
            ])
            .status
            .code(),
        Some(5)
    );
    let skipped = other.drover(&["skip", "h2", "n1", "-o", "json"]);
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    let both = other.drover(&["skip", "h2", "n1", "--run", "n1"]);
    assert_eq!(both.status.code(), Some(2), "positional and --run conflict");
}

#[test]
fn status_lists_every_host_and_shows_simulated_times_as_offsets() {
    let workspace = Workspace::new();
    let run = workspace.drover(&[
        "run",
        "-i",
        &testdata("runs/approval.yaml"),
        "--run-id",
        "a1",
    ]);
    assert_eq!(run.status.code(), Some(5), "{}", stderr(&run));
    let status = workspace.json(&["status", "a1", "-o", "json"]);
    let hosts: Vec<(&str, &str)> = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["step"].as_str().unwrap()))
        .collect();
    assert_eq!(hosts.len(), 2, "hosts not started yet are listed: {status}");
    assert!(
        hosts.iter().all(|(_, step)| *step == "planned"),
        "{hosts:?}"
    );
    let table = stdout(&workspace.drover(&["status", "a1"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("h2") && l.contains("planned")),
        "{table}"
    );

    let done = Workspace::new();
    let run = done.drover(&[
        "run",
        "-i",
        &testdata("runs/small-pool.yaml"),
        "--run-id",
        "s1",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let status = done.json(&["status", "s1", "-o", "json"]);
    for host in status["hosts"].as_array().unwrap() {
        let since = host["since"].as_str().unwrap();
        assert!(
            since.starts_with('+'),
            "a simulated time is an offset: {host}"
        );
    }
}

#[test]
fn status_watch_redraws_until_the_run_stops_and_is_bounded() {
    let workspace = Workspace::new();
    let run = workspace.drover(&[
        "run",
        "-i",
        &testdata("runs/small-pool.yaml"),
        "--run-id",
        "w1",
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    // A finished run: one drawing, then it returns at once.
    let started = Instant::now();
    let watched = workspace.drover(&["status", "w1", "--watch", "1"]);
    assert_eq!(watched.status.code(), Some(0), "{}", stderr(&watched));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(stdout(&watched).matches("Run w1 of cluster").count(), 1);
    // Refused: a zero interval, and a bound without --watch.
    assert_eq!(
        workspace.drover(&["status", "--watch", "0"]).status.code(),
        Some(2)
    );
    assert_eq!(
        workspace
            .drover(&["status", "--watch-max-secs", "5"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn log_lines_carry_times_and_vm_events() {
    let workspace = Workspace::new();
    let run = workspace.drover(&["run", "-i", &testdata("runs/small-pool.yaml")]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let log = stderr(&run);
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with('[')).collect();
    assert!(lines.len() > 20, "{log}");
    assert!(lines.iter().all(|l| l.starts_with("[+")), "offsets: {log}");
    assert!(log.contains("] host h1: upgrading"), "{log}");
    assert!(log.contains("] vm web-1: migrating m1 →"), "{log}");
    assert!(log.contains("] vm legacy: shutting down on h4"), "{log}");
    assert!(log.contains("] vm legacy: starting on"), "{log}");
}

/// Runs `drover ARGS` on a pseudo-terminal (util-linux `script`), returning what it printed.
fn on_a_terminal(workspace: &Workspace, args: &str, no_color: Option<&str>) -> Option<String> {
    let state = workspace.directory.path().join("tty.db");
    let line = format!(
        "{} --state {} {args}",
        env!("CARGO_BIN_EXE_drover"),
        state.display()
    );
    let mut command = Command::new("script");
    command
        .args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let output = command.output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn no_color_turns_off_colours_and_progress_bars_on_a_terminal() {
    let workspace = Workspace::new();
    let args = format!("run -i {} --run-id tty", testdata("runs/small-pool.yaml"));
    let Some(coloured) = on_a_terminal(&workspace, &args, None) else {
        eprintln!("no `script` command: this machine cannot give drover a terminal");
        return;
    };
    assert!(
        coloured.contains('\u{1b}'),
        "bars or colours on a terminal: {coloured}"
    );
    let other = Workspace::new();
    let plain = on_a_terminal(&other, &args, Some("1")).unwrap();
    assert!(!plain.contains('\u{1b}'), "NO_COLOR: {plain}");
    assert!(
        plain.contains("] host h1: upgrading"),
        "plain log lines instead: {plain}"
    );
    // An empty NO_COLOR counts as unset (no-color.org).
    let empty = on_a_terminal(&Workspace::new(), &args, Some("")).unwrap();
    assert!(empty.contains('\u{1b}'), "{empty}");
}

#[test]
fn no_rust_debug_text_reaches_the_operator() {
    let workspace = Workspace::new();
    let bench = workspace.drover(&["bench", "--quick"]);
    assert_eq!(bench.status.code(), Some(0), "{}", stderr(&bench));
    let text = format!("{}{}", stdout(&bench), stderr(&bench));
    for debug in ["Count(", "Some(", "None", "Auto"] {
        assert!(!text.contains(debug), "{debug} in: {text}");
    }
}

#[test]
fn status_watch_follows_a_run_another_process_drives_until_it_stops() {
    let workspace = Workspace::new();
    let mut child = workspace
        .command(&[
            "run",
            "-i",
            &testdata("runs/wall-clock.yaml"),
            "--run-id",
            "live",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = workspace.directory.path().join("state.db");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !state.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let watched = workspace.drover(&["status", "live", "--watch", "1", "--watch-max-secs", "60"]);
    let waited = started.elapsed();
    let _ = child.wait();
    assert_eq!(watched.status.code(), Some(0), "{}", stderr(&watched));
    let drawings = stdout(&watched).matches("Run live of cluster").count();
    assert!(
        drawings >= 2,
        "redrawn while the run went on: {}",
        stdout(&watched)
    );
    assert!(waited < Duration::from_secs(60), "{waited:?}");
    assert!(
        stdout(&watched).contains("driven by"),
        "{}",
        stdout(&watched)
    );
}
