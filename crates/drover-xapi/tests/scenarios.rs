//! The run-level conformance scenarios on the xapi driver: each scenario's world (with its
//! simulator faults) served by drover-emulator's XAPI front-end from this test's runtime — a
//! platform that outlives the engine's process, as a pool does — and rolled by the engine through
//! the registry's `kind: xapi` driver. The invariants are checked on the emulator's world itself.
//! Also prints the XAPI calls per migrated VM over the scenarios, by the emulator's counter.

use std::path::Path;
use std::sync::{Arc, Mutex};

use drover_conformance::emulated::{hosts_and_vms, serve_on_loopback, write_secret, write_world};
use drover_conformance::{Scenario, Stage, Staged};
use drover_emulator::xapi::{Credentials, XapiPool};

/// Platform time runs this many times faster than the wall clock in the emulator.
const TIME_SCALE: f64 = 200.0;

/// The `upgrade` command: the emulator's installer stand-in (`POST /emulator/upgrade`).
const UPGRADE_SCRIPT: &str = "import json, sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=json.dumps(dict(host=sys.argv[2], target=sys.argv[3])).encode(), headers=dict([('Content-Type', 'application/json')])))";

/// The pools served so far, for the calls-per-migration figure.
#[derive(Default)]
struct Emulated {
    pools: Mutex<Vec<Arc<XapiPool>>>,
}

#[async_trait::async_trait]
impl Stage for Emulated {
    fn platform(&self) -> String {
        format!("the xapi driver against drover-emulator's XAPI at {TIME_SCALE}× the wall clock")
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
        let pool = XapiPool::new(
            opened.driver,
            opened.cluster,
            Credentials {
                username: "root".into(),
                password: "scenario-password".into(),
            },
        );
        let served_pool = Arc::clone(&pool);
        let (url, served) =
            serve_on_loopback(move |listener| drover_emulator::xapi::serve(listener, served_pool))
                .await?;
        write_secret(directory, "password", "scenario-password")?;
        let hosts_and_vms = hosts_and_vms(world);
        // migration_timeout_secs: the driver cancels a hung migration task after 3 s of wall
        // time (minutes of the emulator's time), well before the policy's own timeout.
        let inventory_text = format!(
            "{hosts_and_vms}driver:\n  {{kind: xapi, url: \"{url}\", username: root, password_file: password, task_poll_ms: 20,\n   request_timeout_secs: 10, migration_timeout_secs: 3, upgrade_timeout_secs: 60,\n   commands: {{upgrade: [python3, -c, \"{UPGRADE_SCRIPT}\", \"{url}/emulator/upgrade\", \"{{host}}\", \"{{target}}\"]}}}}\n"
        );
        self.pools.lock().unwrap().push(Arc::clone(&pool));
        let observed = Arc::clone(&pool);
        Ok(Staged {
            inventory_text,
            observe: Box::new(move |_clock| Ok(observed.snapshot())),
            keep_alive: Box::new(served),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_xapi_driver_meets_every_scenario() {
    let emulated = Arc::new(Emulated::default());
    let report = drover_conformance::run_scenarios(Arc::clone(&emulated) as Arc<dyn Stage>).await;
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );
    let calls: u64 = emulated
        .pools
        .lock()
        .unwrap()
        .iter()
        .map(|pool| pool.calls_by_method().values().sum::<u64>())
        .sum();
    let migrations: usize = report
        .outcomes
        .iter()
        .map(|outcome| outcome.migrations)
        .sum();
    println!(
        "xapi scenarios: {calls} XAPI calls for {migrations} migrated VMs over every scenario (whole runs: discovery, cordons, upgrades, reboots included): {:.0} calls per migrated VM",
        calls as f64 / migrations.max(1) as f64
    );
}
