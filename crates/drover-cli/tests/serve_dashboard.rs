//! The web dashboard in a real browser: `drover serve` on a simulator cluster, headless Chromium
//! driven over the Chrome DevTools Protocol (a WebSocket, spoken with `tungstenite`).
//!
//! 1. `an_operator_starts_approves_and_watches_a_run_live`: the overview shows the cluster; "Start
//!    run" is clicked; the run page shows `awaiting-approval`; "Approve" is clicked; without a
//!    reload the host tiles go through at least three steps, the downtime table shows the VM
//!    with local storage while its host upgrades, and the phase reaches `completed`; the end
//!    report shows as tables (hosts, steps, VM actions).
//! 2. `two_hundred_twenty_hosts_render_quickly`: the overview, cluster and run pages of a 220-host
//!    cluster render every tile within a generous in-page time budget.
//!
//! Screenshots land in `target/test-artifacts/dashboard-*.png`. Chromium must be installed
//! (Debian: `apt-get install chromium`); without it these tests fail and say so, because a
//! silently skipped browser test would let a broken dashboard through CI.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// The browser tests run one at a time: the second one measures render times, which a
/// simultaneous run in the other test would disturb on a 2-core machine.
static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Browser window size: wide enough for the two-column tables of the run page.
const WINDOW: (u32, u32) = (1400, 1000);

/// How long the in-page renders of the 220-host pages may take (fetch included). The budget is
/// ~2 s of script time; this is a sanity check on a shared CI machine, not a benchmark.
const RENDER_BUDGET_MS: f64 = 2500.0;

#[test]
fn an_operator_starts_approves_and_watches_a_run_live() {
    let _serial = ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("dash.yaml"), small_inventory()).expect("write inventory");
    let server = Server::start(dir.path(), &["dash.yaml"]);
    let mut page = Browser::launch(dir.path()).open(&server.url("/"));
    page.set_server_log(server.log.clone());

    // The overview: one card with the cluster's twelve hosts, and "Start run" for the anonymous
    // operator (no tokens on a loopback address).
    page.wait_for(
        "the dash cluster card with its 12 host tiles",
        Duration::from_secs(20),
        r#"document.querySelectorAll('[data-testid="cluster-card"][data-cluster="dash"] [data-testid="host-tile"]').length === 12"#,
    );
    page.wait_for(
        "whoami to say operator",
        Duration::from_secs(10),
        r#"/operator/.test(document.querySelector('[data-testid="whoami"]').textContent)"#,
    );
    // Marks this document: if anything reloaded the page, the mark would be gone.
    page.eval("window.__droverTestMark = 'same-document'; true");

    page.click(
        r#"[data-testid="start-run"][data-cluster="dash"]"#,
        "the Start run button",
    );
    page.wait_for(
        "the run page in phase awaiting-approval",
        Duration::from_secs(30),
        r#"location.hash.startsWith('#/runs/')
           && document.querySelector('[data-testid="run-phase"]')?.dataset.phase === 'awaiting-approval'
           && document.querySelectorAll('[data-testid="run-host-grid"] [data-testid="host-tile"]').length === 12"#,
    );
    page.wait_for(
        "the Approve button",
        Duration::from_secs(10),
        r#"(() => { const b = document.querySelector('[data-testid="action-approve"]'); return !!b && !b.hidden; })()"#,
    );
    let run_id = page.eval("decodeURIComponent(location.hash.slice('#/runs/'.length))");
    let run_id = run_id.as_str().unwrap_or_default().to_string();
    assert!(!run_id.is_empty(), "the run page's address names no run");
    let shot = page.screenshot("dashboard-awaiting-approval.png");
    println!("screenshot: {}", shot.display());

    page.click(r#"[data-testid="action-approve"]"#, "the Approve button");

    // Watch the tiles live until the run completes: every step value seen on any tile, and the
    // steps each host went through, in order.
    let started = Instant::now();
    let deadline = Duration::from_secs(120);
    let mut seen_steps: Vec<String> = Vec::new();
    let mut host_paths: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut phases_seen: Vec<String> = Vec::new();
    let mut vms_seen_down: Vec<String> = Vec::new();
    let mut most_migrations = 0;
    loop {
        let snapshot = page.eval(
            r#"(() => ({
                phase: document.querySelector('[data-testid="run-phase"]')?.dataset.phase || null,
                tiles: [...document.querySelectorAll('[data-testid="run-host-grid"] [data-testid="host-tile"]')]
                    .map((t) => [t.dataset.host, t.dataset.step]),
                down: [...document.querySelectorAll('[data-testid="vms-down-table"] tbody tr')]
                    .map((row) => row.cells[0].textContent),
                migrating: document.querySelectorAll('[data-testid="migrations-table"] tbody tr').length,
            }))()"#,
        );
        let phase = snapshot["phase"].as_str().unwrap_or_default().to_string();
        for vm in snapshot["down"].as_array().into_iter().flatten() {
            let vm = vm.as_str().unwrap_or_default().to_string();
            if !vms_seen_down.contains(&vm) {
                vms_seen_down.push(vm);
            }
        }
        most_migrations = most_migrations.max(snapshot["migrating"].as_u64().unwrap_or(0));
        if phases_seen.last() != Some(&phase) {
            phases_seen.push(phase.clone());
        }
        for pair in snapshot["tiles"].as_array().into_iter().flatten() {
            let host = pair[0].as_str().unwrap_or_default().to_string();
            let step = pair[1].as_str().unwrap_or_default().to_string();
            if !seen_steps.contains(&step) {
                seen_steps.push(step.clone());
            }
            let path = host_paths.entry(host).or_default();
            if path.last() != Some(&step) {
                path.push(step);
            }
        }
        if phase == "completed" {
            break;
        }
        assert!(
            !matches!(phase.as_str(), "halted" | "aborted"),
            "the run stopped in phase {phase} instead of completing\n{}",
            page.diagnostics()
        );
        if started.elapsed() > deadline {
            panic!(
                "the run page did not reach phase completed within {deadline:?} (phases seen: {phases_seen:?}, steps seen: {seen_steps:?})\n{}",
                page.diagnostics()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "run {run_id} completed in {:?} after approval",
        started.elapsed()
    );
    println!("phases seen live: {phases_seen:?}");
    println!("steps seen live: {seen_steps:?}");
    println!("VMs seen in the downtime table: {vms_seen_down:?}; most migrations in flight at once: {most_migrations}");
    // The final render may lag the phase badge by one coalesced update.
    page.wait_for(
        "every host tile to show done",
        Duration::from_secs(10),
        r#"[...document.querySelectorAll('[data-testid="run-host-grid"] [data-testid="host-tile"]')].every((t) => t.dataset.step === 'done')"#,
    );
    let shot = page.screenshot("dashboard-completed.png");
    println!("screenshot: {}", shot.display());

    // The end report (GET /runs/{id}/report) as tables: every host, every VM action; no raw
    // JSON dump.
    page.eval(r#"document.querySelector('[data-testid="run-report"]').open = true; true"#);
    page.wait_for(
        "the end report as tables",
        Duration::from_secs(10),
        r#"document.querySelectorAll('[data-testid="report-hosts"] tbody tr').length === 12
           && document.querySelectorAll('[data-testid="report-vm-actions"] tbody tr').length > 0
           && document.querySelectorAll('[data-testid="report-steps"] tbody tr').length > 0
           && !document.querySelector('[data-testid="run-report"] pre')"#,
    );
    // The pool's HA was turned off before the first wave and put back at the end: a chip in
    // the run's header and a row of the report's settings table say so.
    page.wait_for(
        "the settings chip and the report's settings row for HA",
        Duration::from_secs(10),
        r#"document.querySelector('[data-testid="run-settings"] .chip')?.textContent === 'ha-enabled: restored'
           && document.querySelectorAll('[data-testid="report-settings"] tbody tr').length === 1"#,
    );
    let summary =
        page.eval(r#"document.querySelector('[data-testid="report-summary"]').textContent"#);
    assert!(
        summary
            .as_str()
            .is_some_and(|s| s.starts_with("completed after")),
        "the report's summary line: {summary}"
    );
    let shot = page.screenshot("dashboard-end-report.png");
    println!("screenshot: {}", shot.display());

    assert!(
        seen_steps.len() >= 3,
        "the tiles showed only {seen_steps:?} while the run went on: the page did not update live"
    );
    assert!(
        seen_steps.iter().any(|step| step == "done")
            && seen_steps
                .iter()
                .any(|step| !matches!(step.as_str(), "waiting" | "done")),
        "no in-between step was seen live (steps seen: {seen_steps:?})"
    );
    let moved = host_paths.values().filter(|path| path.len() >= 3).count();
    assert!(
        moved > 0,
        "no host tile was seen going through three steps: {host_paths:?}"
    );
    // vm052 has local storage: it is down for the whole upgrade of h05 (~2 s of wall clock), so
    // the live downtime table must have shown it.
    assert!(
        vms_seen_down.iter().any(|vm| vm == "vm052"),
        "the VMs-with-downtime table never showed vm052 (seen: {vms_seen_down:?})"
    );
    let progress =
        page.eval(r#"document.querySelector('[data-testid="run-progress"]').textContent"#);
    assert_eq!(
        progress.as_str(),
        Some("12/12 hosts finished"),
        "the progress label at the end"
    );
    let bars =
        page.eval(r#"Number(document.querySelector('[data-testid="gantt"]').dataset.bars || 0)"#);
    assert!(
        bars.as_f64().unwrap_or(0.0) >= 12.0,
        "the timeline drew {bars} bars for 12 upgraded hosts"
    );
    let mark = page.eval("window.__droverTestMark || null");
    assert_eq!(
        mark.as_str(),
        Some("same-document"),
        "the page was reloaded during the run: updates must arrive live"
    );
    page.assert_no_script_errors();
    page.close();
}

#[test]
fn two_hundred_twenty_hosts_render_quickly() {
    let _serial = ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("big.yaml"), big_inventory(220)).expect("write inventory");
    let server = Server::start(dir.path(), &["big.yaml"]);
    let mut page = Browser::launch(dir.path()).open(&server.url("/"));
    page.set_server_log(server.log.clone());

    let card_tiles = r#"document.querySelectorAll('[data-testid="cluster-card"] [data-testid="host-tile"]').length"#;
    page.wait_for(
        "the overview with 220 host tiles",
        Duration::from_secs(30),
        &format!("{card_tiles} === 220"),
    );
    // Versions are told apart by colour: target, older, newer all appear.
    let classes = page.eval(
        r#"[...new Set([...document.querySelectorAll('[data-testid="cluster-card"] [data-testid="host-tile"]')].map((t) => t.dataset.vclass))].sort()"#,
    );
    let classes: Vec<&str> = classes
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        classes.contains(&"target")
            && classes.contains(&"newer")
            && classes.iter().any(|c| c.starts_with("old-")),
        "the overview tiles should be coloured target / older / newer, got classes {classes:?}"
    );

    // Cluster page, then back to the overview: each route change measured inside the page.
    let timings = page.eval(&format!(
        r#"(async () => {{
            const until = (cond) => new Promise((resolve, reject) => {{
                const t0 = performance.now();
                const tick = () => {{
                    if (cond()) return resolve(performance.now());
                    if (performance.now() - t0 > 20000) return reject(new Error('not rendered after 20 s'));
                    setTimeout(tick, 2);
                }};
                tick();
            }});
            const count = (sel) => document.querySelectorAll(sel).length;
            const t0 = performance.now();
            location.hash = '#/clusters/big';
            const t1 = await until(() => count('[data-testid="host-grid"] [data-testid="host-tile"]') === 220
                && count('[data-testid="hosts-table"] tbody tr') === 220);
            location.hash = '#/';
            const t2 = await until(() => {card_tiles} === 220);
            return {{ cluster_ms: t1 - t0, overview_ms: t2 - t1 }};
        }})()"#
    ));
    let cluster_ms = timings["cluster_ms"].as_f64().unwrap_or(f64::MAX);
    let overview_ms = timings["overview_ms"].as_f64().unwrap_or(f64::MAX);
    println!("220 hosts: cluster page {cluster_ms:.0} ms, overview {overview_ms:.0} ms");
    let shot = page.screenshot("dashboard-220-overview.png");
    println!("screenshot: {}", shot.display());

    // The run page: started from the overview, it shows every host waiting for approval.
    page.click(
        r#"[data-testid="start-run"][data-cluster="big"]"#,
        "the Start run button",
    );
    page.wait_for(
        "the run page of 220 hosts in phase awaiting-approval",
        Duration::from_secs(60),
        r#"location.hash.startsWith('#/runs/')
           && document.querySelector('[data-testid="run-phase"]')?.dataset.phase === 'awaiting-approval'
           && document.querySelectorAll('[data-testid="run-host-grid"] [data-testid="host-tile"]').length === 220"#,
    );
    let run_hash = page.eval("location.hash");
    let run_hash = run_hash.as_str().unwrap_or_default().to_string();
    // Measured as a route change from the cluster page, so that the run page is built anew.
    page.eval("location.hash = '#/clusters/big'; true");
    page.wait_for(
        "the cluster page again",
        Duration::from_secs(20),
        r#"document.querySelectorAll('[data-testid="host-grid"] [data-testid="host-tile"]').length === 220"#,
    );
    let run_ms = page.eval(&format!(
        r#"new Promise((resolve, reject) => {{
            const t0 = performance.now();
            location.hash = {hash};
            const tick = () => {{
                const tiles = document.querySelectorAll('[data-testid="run-host-grid"] [data-testid="host-tile"][data-step]').length;
                // The timeline sets data-bars once it has drawn.
                if (tiles === 220 && document.querySelector('[data-testid="gantt"]')?.dataset.bars !== undefined) return resolve(performance.now() - t0);
                if (performance.now() - t0 > 20000) return reject(new Error('run page not rendered after 20 s'));
                setTimeout(tick, 2);
            }};
            tick();
        }})"#,
        hash = serde_json::to_string(&run_hash).expect("json string"),
    ));
    let run_ms = run_ms.as_f64().unwrap_or(f64::MAX);
    println!("220 hosts: run page {run_ms:.0} ms");
    let shot = page.screenshot("dashboard-220-run.png");
    println!("screenshot: {}", shot.display());

    for (what, ms) in [
        ("cluster page", cluster_ms),
        ("overview", overview_ms),
        ("run page", run_ms),
    ] {
        assert!(
            ms < RENDER_BUDGET_MS,
            "the {what} took {ms:.0} ms to render 220 host tiles (budget {RENDER_BUDGET_MS} ms)\n{}",
            page.diagnostics()
        );
    }
    page.assert_no_script_errors();
    page.close();
}

// ------------------------------------------------------------------------------------------
// Inventories

/// Twelve hosts on 1.0 going to 2.0, three at a time; ~10 s of wall clock at time_scale 300.
/// One VM with local storage and one that cannot live-migrate, so the run has downtime rows.
fn small_inventory() -> String {
    let mut text = String::from(
        "cluster: {name: dash, target_version: \"2.0\", settings: [{setting: ha-enabled}]}\n\
         policy: {max_unavailable: 3, approval: manual, auto_resolve: true, upgrade_duration_secs: 600, reboot_duration_secs: 120}\n\
         driver: {kind: simulator, time_scale: 300, seed: 7}\n\
         hosts:\n",
    );
    for host in 1..=12 {
        text.push_str(&format!(
            "  - {{name: h{host:02}, version: \"1.0\", memory_mib: 131072, cpus: 32}}\n"
        ));
    }
    text.push_str("vms:\n");
    for host in 1..=12 {
        for vm in 1..=2 {
            let extra = match (host, vm) {
                (5, 2) => ", local_storage: true",
                (9, 2) => ", migratable: false, restart_policy: always",
                _ => "",
            };
            text.push_str(&format!(
                "  - {{name: vm{host:02}{vm}, host: h{host:02}, memory_mib: 8192, vcpus: 2{extra}}}\n"
            ));
        }
    }
    text
}

/// `hosts` hosts of mixed versions (some already at the target, one newer) with a host in
/// maintenance, one down and one cordoned; a run on it waits for approval.
fn big_inventory(hosts: usize) -> String {
    let mut text = String::from(
        "cluster: {name: big, target_version: \"2.0\"}\n\
         policy: {max_unavailable: 10, approval: manual}\n\
         driver: {kind: simulator, time_scale: 300, seed: 3}\n\
         hosts:\n",
    );
    for host in 1..=hosts {
        let version = match host {
            h if h == hosts => "2.1",
            h if h % 10 == 0 => "2.0",
            h if h % 7 == 0 => "0.9",
            _ => "1.0",
        };
        let extra = match host {
            3 => ", state: maintenance",
            4 => ", cordoned: true",
            _ => "",
        };
        text.push_str(&format!(
            "  - {{name: hv{host:03}, version: \"{version}\", memory_mib: 262144, cpus: 64{extra}}}\n"
        ));
    }
    text.push_str("vms:\n");
    for host in 1..=hosts {
        text.push_str(&format!(
            "  - {{name: vm{host:03}, host: hv{host:03}, memory_mib: 16384, vcpus: 4}}\n"
        ));
    }
    text
}

// ------------------------------------------------------------------------------------------
// Processes

/// A child process killed (with its process group) when the test ends, passed or not.
struct Reaped {
    child: Child,
    group: bool,
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.group {
            // Chromium's renderers and zygote are in its process group (its own pid, from
            // `process_group(0)`): signal the group directly. Not through the `kill` command:
            // procps-ng 4.0's `kill -KILL -PID` without `--` signals -1, i.e. every process.
            // The process is not reaped yet, so its pid (and group id) cannot have been reused.
            let group = i32::try_from(self.child.id()).unwrap_or(0);
            if group > 1 {
                // SAFETY: kill(2) with a negative pid < -1 signals exactly that process group.
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a child's stderr on a thread into `log`, and sends the first line that `wanted` maps
/// to a value; the pipe is drained to the end so the child never blocks on it.
fn watch_stderr(
    stderr: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    wanted: impl Fn(&str) -> Option<String> + Send + 'static,
) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(value) = wanted(&line) {
                    let _ = sender.send(value);
                    sent = true;
                }
            }
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            // Keeps the tail only: Chromium can be chatty.
            if log.len() > 64 * 1024 {
                let cut = log.len() - 32 * 1024;
                let cut = (cut..log.len())
                    .find(|&i| log.is_char_boundary(i))
                    .unwrap_or(0);
                log.replace_range(..cut, "…");
            }
            log.push_str(&line);
            log.push('\n');
        }
    });
    receiver
}

fn tail(log: &Mutex<String>, chars: usize) -> String {
    let log = log.lock().unwrap_or_else(|p| p.into_inner());
    let start = log.len().saturating_sub(chars);
    let start = (start..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(0);
    log[start..].to_string()
}

/// `drover serve` on a config listing the given inventories, on a free loopback port.
struct Server {
    _process: Reaped,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(dir: &Path, inventories: &[&str]) -> Server {
        let mut config = String::from("listen: \"127.0.0.1:0\"\nclusters:\n");
        for inventory in inventories {
            config.push_str(&format!("  - inventory: {inventory}\n"));
        }
        let config_path = dir.join("serve.yaml");
        std::fs::write(&config_path, config).expect("write serve config");
        let state = dir.join("drover.db");
        let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
            .arg("--state")
            .arg(&state)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir)
            .env_remove("DROVER_INVENTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn drover serve");
        let stderr = child.stderr.take().expect("server stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let address = watch_stderr(stderr, Arc::clone(&log), |line| {
            line.split_once("listening on http://")
                .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_string())
        });
        let process = Reaped {
            child,
            group: false,
        };
        let address = match address.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => address,
            Err(_) => panic!(
                "drover serve did not print `listening on http://ADDR` within 60 s; its stderr:\n{}",
                tail(&log, 4000)
            ),
        };
        Server {
            _process: process,
            base: format!("http://{address}"),
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Chromium found on PATH, or a failure that says how to install it.
fn chromium_binary() -> PathBuf {
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Chromium on PATH (looked for {names:?}): the dashboard browser tests need it. \
         Install it, e.g. `apt-get install -y chromium` on Debian/Ubuntu"
    );
}

struct Browser {
    _process: Reaped,
    log: Arc<Mutex<String>>,
    ws_url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(scratch: &Path) -> Browser {
        use std::os::unix::process::CommandExt;
        let binary = chromium_binary();
        let profile = tempfile::tempdir_in(scratch).expect("chromium profile dir");
        let mut child = Command::new(&binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--mute-audio",
            ])
            .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so the guard can kill the renderers with it.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let stderr = child.stderr.take().expect("chromium stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let ws = watch_stderr(stderr, Arc::clone(&log), |line| {
            line.split_once("DevTools listening on ")
                .map(|(_, url)| url.trim().to_string())
        });
        let process = Reaped { child, group: true };
        let ws_url = match ws.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => panic!(
                "{} did not print `DevTools listening on ws://…` within 60 s; its stderr:\n{}",
                binary.display(),
                tail(&log, 4000)
            ),
        };
        Browser {
            _process: process,
            log,
            ws_url,
            _profile: profile,
        }
    }

    /// A new tab attached over one flattened CDP session, navigated to `url`.
    fn open(self, url: &str) -> Page {
        let authority = self
            .ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected DevTools address {}", self.ws_url))
            .to_string();
        let stream = TcpStream::connect(&authority)
            .unwrap_or_else(|error| panic!("cannot connect to DevTools at {authority}: {error}"));
        // Every CDP answer comes within seconds; a minute without one means Chromium hung.
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let (socket, _) = tungstenite::client(self.ws_url.as_str(), stream)
            .unwrap_or_else(|error| panic!("DevTools WebSocket handshake failed: {error}"));
        let mut page = Page {
            socket,
            next_id: 0,
            session: None,
            errors: Vec::new(),
            server_log: None,
            browser: self,
        };
        let target = page
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .unwrap_or_else(|error| panic!("Target.createTarget: {error}"));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = page
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .unwrap_or_else(|error| panic!("Target.attachToTarget: {error}"));
        page.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_string(),
        );
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(domain, json!({}))
                .unwrap_or_else(|error| panic!("{domain}: {error}"));
        }
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WINDOW.0, "height": WINDOW.1, "deviceScaleFactor": 1, "mobile": false}),
        )
        .unwrap_or_else(|error| panic!("Emulation.setDeviceMetricsOverride: {error}"));
        page.call("Page.navigate", json!({"url": url}))
            .unwrap_or_else(|error| panic!("Page.navigate {url}: {error}"));
        page
    }
}

// ------------------------------------------------------------------------------------------
// A minimal CDP client

struct Page {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    session: Option<String>,
    /// Uncaught exceptions and console errors the page reported.
    errors: Vec<String>,
    server_log: Option<Arc<Mutex<String>>>,
    browser: Browser,
}

impl Page {
    fn set_server_log(&mut self, log: Arc<Mutex<String>>) {
        self.server_log = Some(log);
    }

    /// Sends one command and reads until its answer; events read meanwhile are noted.
    fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .map_err(|error| format!("sending {method}: {error}"))?;
        loop {
            let frame = self
                .socket
                .read()
                .map_err(|error| format!("waiting for the answer to {method}: {error}"))?;
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(text.as_str())
                .map_err(|error| format!("bad CDP message ({error}): {text}"))?;
            if value["id"].as_u64() == Some(id) {
                if let Some(error) = value.get("error") {
                    return Err(format!("{method} failed: {error}"));
                }
                return Ok(value["result"].clone());
            }
            self.note_event(&value);
        }
    }

    fn note_event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("an exception");
                self.errors.push(format!("uncaught: {text}"));
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|arg| {
                        arg["value"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| arg["description"].to_string())
                    })
                    .collect();
                self.errors
                    .push(format!("console.error: {}", args.join(" ")));
            }
            _ => {}
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its JSON value.
    fn try_eval(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            let text = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("exception");
            return Err(format!("evaluating in the page threw: {text}"));
        }
        Ok(result["result"]["value"].clone())
    }

    fn eval(&mut self, expression: &str) -> Value {
        match self.try_eval(expression) {
            Ok(value) => value,
            Err(error) => panic!("{error}\nexpression: {expression}\n{}", self.diagnostics()),
        }
    }

    /// Polls `condition` until it yields something other than false/null/undefined.
    fn wait_for(&mut self, what: &str, timeout: Duration, condition: &str) -> Value {
        let started = Instant::now();
        let mut last_error = String::new();
        loop {
            match self.try_eval(condition) {
                Ok(Value::Null) | Ok(Value::Bool(false)) => {}
                Ok(value) => return value,
                Err(error) => last_error = error,
            }
            if started.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}{}\n{}",
                    if last_error.is_empty() {
                        String::new()
                    } else {
                        format!(" (last error: {last_error})")
                    },
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A real mouse click at the centre of the element, once it is visible, enabled and not
    /// covered by anything else.
    fn click(&mut self, selector: &str, what: &str) {
        let locate = format!(
            r#"(() => {{
                const el = document.querySelector({selector});
                if (!el || el.hidden || el.disabled) return null;
                el.scrollIntoView({{ block: 'center', inline: 'center' }});
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return null;
                const x = r.left + r.width / 2;
                const y = r.top + r.height / 2;
                const top = document.elementFromPoint(x, y);
                if (!top || !(top === el || el.contains(top))) return null;
                return [x, y];
            }})()"#,
            selector = serde_json::to_string(selector).expect("json string")
        );
        let point = self.wait_for(
            &format!("{what} to be clickable"),
            Duration::from_secs(20),
            &locate,
        );
        let (x, y) = (
            point[0].as_f64().unwrap_or(0.0),
            point[1].as_f64().unwrap_or(0.0),
        );
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            let mut event = json!({"type": kind, "x": x, "y": y});
            if kind != "mouseMoved" {
                event["button"] = json!("left");
                event["clickCount"] = json!(1);
            }
            if let Err(error) = self.call("Input.dispatchMouseEvent", event) {
                panic!("clicking {what}: {error}\n{}", self.diagnostics());
            }
        }
    }

    /// A full-page PNG in target/test-artifacts.
    fn screenshot(&mut self, name: &str) -> PathBuf {
        // Tiles and the progress bar fade between colours (0.4 s): let them settle.
        std::thread::sleep(Duration::from_millis(600));
        let metrics = self
            .call("Page.getLayoutMetrics", json!({}))
            .unwrap_or_else(|error| panic!("Page.getLayoutMetrics: {error}"));
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(f64::from(WINDOW.0));
        let height = size["height"]
            .as_f64()
            .unwrap_or(f64::from(WINDOW.1))
            .min(8000.0);
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                }),
            )
            .unwrap_or_else(|error| panic!("Page.captureScreenshot: {error}"));
        let png = data_encoding::BASE64
            .decode(shot["data"].as_str().unwrap_or_default().as_bytes())
            .expect("screenshot is base64");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
        std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write screenshot");
        path.canonicalize().unwrap_or(path)
    }

    /// The page's text, its script errors and the tails of the server's and browser's logs: what a
    /// failure message needs to be understood without re-running.
    fn diagnostics(&mut self) -> String {
        let text = match self.try_eval("document.body ? document.body.innerText : '(no body)'") {
            Ok(Value::String(text)) => text,
            Ok(other) => other.to_string(),
            Err(error) => format!("(cannot read the page: {error})"),
        };
        let url = self
            .try_eval("location.href")
            .map(|v| v.to_string())
            .unwrap_or_default();
        let text: String = text.chars().take(4000).collect();
        let server = self
            .server_log
            .as_ref()
            .map(|log| tail(log, 3000))
            .unwrap_or_default();
        format!(
            "--- page {url} ---\n{text}\n--- script errors ---\n{:?}\n--- drover serve stderr (tail) ---\n{server}\n--- chromium stderr (tail) ---\n{}",
            self.errors,
            tail(&self.browser.log, 1500)
        )
    }

    fn assert_no_script_errors(&mut self) {
        // Drains events that arrived since the last call.
        let _ = self.try_eval("true");
        assert!(
            self.errors.is_empty(),
            "the dashboard reported script errors: {:#?}",
            self.errors
        );
    }

    /// Closes the browser politely; the guard kills whatever is left.
    fn close(mut self) {
        self.session = None;
        let _ = self.call("Browser.close", json!({}));
    }
}
