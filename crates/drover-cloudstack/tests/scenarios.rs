//! The run-level conformance scenarios on the cloudstack driver: each scenario's world (with its
//! simulator faults) served by drover-emulator's CloudStack front-end from this test's runtime —
//! a platform that outlives the engine's process, as a management server does — and rolled by the
//! engine through the registry's `kind: cloudstack` driver. The invariants are checked on the
//! emulator's world itself. Also prints the API calls per migrated VM over the scenarios, by the
//! emulator's counter.

use std::path::Path;
use std::sync::{Arc, Mutex};

use drover_conformance::emulated::{hosts_and_vms, serve_on_loopback, write_secret, write_world};
use drover_conformance::{Scenario, Stage, Staged};
use drover_emulator::cloudstack::{Credentials, Management};

/// Platform time runs this many times faster than the wall clock in the emulator.
const TIME_SCALE: f64 = 200.0;

/// Posts its key/value arguments as JSON to the emulator's stand-in (installer or reboot).
const POST_SCRIPT: &str = "import json, sys, urllib.request; keys = sys.argv[2::2]; values = sys.argv[3::2]; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(dict(zip(keys, values))).encode(), headers=dict([('Content-Type', 'application/json')])), timeout=600)";

/// The management servers served so far, for the calls-per-migration figure.
#[derive(Default)]
struct Emulated {
    servers: Mutex<Vec<Arc<Management>>>,
}

#[async_trait::async_trait]
impl Stage for Emulated {
    fn platform(&self) -> String {
        format!(
            "the cloudstack driver against drover-emulator's CloudStack API at {TIME_SCALE}× the wall clock"
        )
    }

    fn opt_out(&self, _scenario: Scenario) -> Option<String> {
        None
    }

    async fn stage(
        &self,
        _scenario: Scenario,
        world: &str,
        directory: &Path,
    ) -> Result<Staged, String> {
        let world_path = write_world(directory, world)?;
        let opened = drover_emulator::world::open(&world_path, Some(TIME_SCALE))
            .map_err(|error| error.to_string())?;
        let management = Management::new(
            opened.driver,
            opened.cluster,
            Credentials {
                api_key: "scenario-key".into(),
                secret_key: "scenario-secret".into(),
            },
        );
        // CloudStack cannot cancel a migration: its `migratewait` (here 2 platform minutes, 0.6 s
        // of wall time) gives a hung one up, below the driver's job timeout.
        management.set_migrate_wait(std::time::Duration::from_secs(120));
        let served_management = Arc::clone(&management);
        let (url, served) = serve_on_loopback(move |listener| {
            drover_emulator::cloudstack::serve(listener, served_management)
        })
        .await?;
        for (file, text) in [
            ("api-key", "scenario-key"),
            ("secret-key", "scenario-secret"),
        ] {
            write_secret(directory, file, text)?;
        }
        let hosts_and_vms = hosts_and_vms(world);
        // job_timeout_secs: the driver gives up following a hung migration job after 3 s of wall
        // time (minutes of the emulator's time), well before the policy's own timeout.
        let inventory_text = format!(
            "{hosts_and_vms}driver:\n  {{kind: cloudstack, endpoint: \"{url}/client/api\", api_key_file: api-key, secret_key_file: secret-key, poll_ms: 20,\n   request_timeout_secs: 10, job_timeout_secs: 3, upgrade_timeout_secs: 60,\n   commands: {{upgrade: [python3, -c, \"{POST_SCRIPT}\", \"{url}/emulator/upgrade\", host, \"{{host}}\", target, \"{{target}}\", hotfixes, \"{{hotfixes}}\"],\n              reboot: [python3, -c, \"{POST_SCRIPT}\", \"{url}/emulator/reboot\", host, \"{{host}}\"]}}}}\n"
        );
        self.servers.lock().unwrap().push(Arc::clone(&management));
        let observed = Arc::clone(&management);
        Ok(Staged {
            inventory_text,
            observe: Box::new(move |_clock| Ok(observed.snapshot())),
            keep_alive: Box::new(served),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloudstack_driver_meets_every_scenario() {
    let started = std::time::Instant::now();
    let emulated = Arc::new(Emulated::default());
    let report = drover_conformance::run_scenarios(Arc::clone(&emulated) as Arc<dyn Stage>).await;
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );
    let calls: u64 = emulated
        .servers
        .lock()
        .unwrap()
        .iter()
        .map(|server| server.calls().values().sum::<u64>())
        .sum();
    let migrations: usize = report
        .outcomes
        .iter()
        .map(|outcome| outcome.migrations)
        .sum();
    println!(
        "cloudstack scenarios in {} ms: {calls} API calls for {migrations} migrated VMs over every scenario (whole runs: discovery, cordons, jobs, upgrades, reboots included): {:.0} calls per migrated VM",
        started.elapsed().as_millis(),
        calls as f64 / migrations.max(1) as f64
    );
}
