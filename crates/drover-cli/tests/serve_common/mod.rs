//! Shared by the `drover serve` tests: writes inventories and a config to a tempdir, starts the
//! real binary on 127.0.0.1 port 0, reads the port from its `listening on` line, and talks
//! HTTP to it. The server is killed when the handle drops.

#![allow(dead_code)]

pub mod failover;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A pool that waits for approval; upgrades are short in platform time and the clock runs
/// 1000× faster than the wall clock, so a run takes about a second.
pub const GATED_POOL: &str = r#"
cluster: {name: gated, target_version: "2.0"}
policy: {max_unavailable: 1, approval: manual, upgrade_duration_secs: 300, reboot_duration_secs: 60}
driver: {kind: simulator, time_scale: 1000}
hosts:
  - {name: h1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: h2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: h3, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: a, host: h1, memory_mib: 4096, vcpus: 2}
  - {name: b, host: h2, memory_mib: 8192, vcpus: 2}
  - {name: c, host: h3, memory_mib: 2048, vcpus: 1}
"#;

/// Starts at once (no approval).
pub const OPEN_POOL: &str = r#"
cluster: {name: open, target_version: "2.0"}
policy: {max_unavailable: 1, upgrade_duration_secs: 300, reboot_duration_secs: 60}
driver: {kind: simulator, time_scale: 1000}
hosts:
  - {name: n1, version: "1.0", memory_mib: 65536, cpus: 16, labels: {rack: r1}}
  - {name: n2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: n3, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: x, host: n1, memory_mib: 4096, vcpus: 2}
  - {name: y, host: n2, memory_mib: 8192, vcpus: 2}
"#;

/// f2's upgrade fails once; with one attempt per step the run halts on it.
pub const FLAKY_POOL: &str = r#"
cluster: {name: flaky, target_version: "2.0"}
policy: {max_unavailable: 1, max_step_attempts: 1, upgrade_duration_secs: 300, reboot_duration_secs: 60}
driver:
  kind: simulator
  time_scale: 1000
  faults:
    - {fault: upgrade-fails, host: f2, times: 1}
hosts:
  - {name: f1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: f2, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: f3, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: p, host: f1, memory_mib: 4096, vcpus: 2}
"#;

/// A VM that can neither move nor be restarted elsewhere: no safe plan.
pub const STUCK_POOL: &str = r#"
cluster: {name: stuck, target_version: "2.0"}
policy: {max_unavailable: 1}
driver: {kind: simulator, time_scale: 1000}
hosts:
  - {name: s1, version: "1.0", memory_mib: 65536, cpus: 16}
  - {name: s2, version: "1.0", memory_mib: 65536, cpus: 16}
vms:
  - {name: pinned, host: s1, memory_mib: 4096, vcpus: 2, migratable: false, restart_policy: manual}
"#;

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// A tempdir with the given inventories (file name, text) and a config serving them all.
    pub fn new(inventories: &[(&str, &str)], extra_config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = String::from("clusters:\n");
        for (name, text) in inventories {
            std::fs::write(dir.path().join(name), text).expect("write inventory");
            config.push_str(&format!("  - inventory: {name}\n"));
        }
        config.push_str(extra_config);
        std::fs::write(dir.path().join("serve.yaml"), config).expect("write config");
        Workspace { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state.db")
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_drover"));
        command
            .arg("--state")
            .arg(self.state())
            .env_remove("DROVER_STATE")
            .env_remove("DROVER_SERVE_CONFIG")
            .env_remove("DROVER_LISTEN")
            .env("NO_COLOR", "1");
        command
    }

    /// `drover serve --config serve.yaml --listen 127.0.0.1:0` plus `extra` arguments.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut command = self.command();
        command
            .args(["serve", "--config"])
            .arg(self.path("serve.yaml"))
            .args(["--listen", "127.0.0.1:0"])
            .args(extra);
        Server::start(command, "http")
    }

    /// Journal payloads of a run, read straight from the state file.
    pub fn journal(&self, run_id: &str) -> Vec<String> {
        let connection = rusqlite::Connection::open(self.state()).expect("open state");
        let mut statement = connection
            .prepare("SELECT payload_json FROM journal WHERE run_id = ?1 ORDER BY seq")
            .expect("journal query");
        statement
            .query_map([run_id], |row| row.get::<_, String>(0))
            .expect("journal rows")
            .map(|row| row.expect("row"))
            .collect()
    }
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(mut command: Command, scheme: &str) -> Server {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start drover serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (address_sender, address) = mpsc::channel();
        let reader = BufReader::new(child.stderr.take().expect("stderr"));
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = address_sender.send(rest.trim().to_string());
                }
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let base = match address.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("drover serve did not start:\n{}", stderr.lock().unwrap());
            }
        };
        assert!(base.starts_with(&format!("{scheme}://")), "{base}");
        Server {
            child,
            base,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Status and JSON body (Null when the body is not JSON).
pub fn call(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client().request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn get(server: &Server, path: &str) -> (u16, Value) {
    call(server, "GET", path, None, None)
}

pub fn post(server: &Server, path: &str, body: Option<&str>) -> (u16, Value) {
    call(server, "POST", path, None, body)
}

/// Polls a run until `done` says so, failing with its last view after `limit`.
pub fn wait_for_run(
    server: &Server,
    run_id: &str,
    token: Option<&str>,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, view) = call(
            server,
            "GET",
            &format!("/api/v1/runs/{run_id}"),
            token,
            None,
        );
        if status == 200 && done(&view) {
            return view;
        }
        if Instant::now() > deadline {
            panic!(
                "run {run_id} did not get there in {limit:?}: {view}\nserver log:\n{}",
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn phase_is(phase: &'static str) -> impl Fn(&Value) -> bool {
    move |view| view["phase"] == phase
}
