//! The run-level conformance scenarios on the ovirt driver: each scenario's world (with its
//! simulator faults) served by drover-emulator's oVirt front-end from this test's runtime — a
//! platform that outlives the engine's process, as an engine does — and rolled by Drover's
//! engine through the registry's `kind: ovirt` driver, the upgrade being the oVirt engine's own
//! (`upgradecheck`, `upgrade`). The DST invariants are checked on the emulator's world itself.
//! Also prints the wall time and the REST requests per migrated VM over the scenarios, by the
//! emulator's counter.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drover_conformance::emulated::{hosts_and_vms, serve_on_loopback, write_secret, write_world};
use drover_conformance::{Scenario, Stage, Staged};
use drover_emulator::ovirt::{Credentials, Engine};

/// Platform time runs this many times faster than the wall clock in the emulator.
const TIME_SCALE: f64 = 200.0;
/// The policy's upgrade timeout (wall seconds; see `stage`).
const POLICY_UPGRADE_TIMEOUT_SECS: u64 = 20;

/// The engines served so far, for the requests-per-migration figure.
#[derive(Default)]
struct Emulated {
    engines: Mutex<Vec<Arc<Engine>>>,
}

#[async_trait::async_trait]
impl Stage for Emulated {
    fn platform(&self) -> String {
        format!(
            "the ovirt driver against drover-emulator's oVirt engine (REST API v4, JSON) at {TIME_SCALE}× the wall clock"
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
        let engine = Engine::new(
            opened.driver,
            opened.cluster,
            Credentials {
                username: "admin@internal".into(),
                password: "scenario-password".into(),
            },
            Duration::from_secs(600),
        );
        let served_engine = Arc::clone(&engine);
        let (url, served) = serve_on_loopback(move |listener| {
            drover_emulator::ovirt::serve(listener, served_engine)
        })
        .await?;
        write_secret(directory, "password", "scenario-password")?;
        // Drover's engine runs on the wall clock here (a `kind: ovirt` run is not scaled) while
        // the emulator runs 200× faster. The policy's `upgrade_timeout_secs` is also how long
        // an abort keeps retrying a host's restore: a real engine refuses to `activate` a host
        // that does not answer (`host-never-returns`), so the world's 1800 s would hold the
        // abort for half an hour of wall time. 20 s is still 30× the emulated upgrade (120
        // platform seconds, 0.6 s of wall time).
        let hosts_and_vms = hosts_and_vms(world).replace(
            "upgrade_timeout_secs: 1800",
            &format!("upgrade_timeout_secs: {POLICY_UPGRADE_TIMEOUT_SECS}"),
        );
        // migration_timeout_secs: the driver cancels a hung migration (`cancelmigration`) after
        // 3 s of wall time (minutes of the emulator's time), well before the policy's own timeout;
        // its upgrade_timeout_secs stays below the policy's.
        let inventory_text = format!(
            "{hosts_and_vms}driver:\n  {{kind: ovirt, url: \"{url}\", username: admin@internal, password_file: password, poll_ms: 20,\n   request_timeout_secs: 10, migration_timeout_secs: 3, upgrade_timeout_secs: 15}}\n"
        );
        self.engines.lock().unwrap().push(Arc::clone(&engine));
        Ok(Staged {
            inventory_text,
            observe: Box::new(move |_clock| Ok(engine.snapshot())),
            keep_alive: Box::new(served),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ovirt_driver_meets_every_scenario() {
    let started = std::time::Instant::now();
    let emulated = Arc::new(Emulated::default());
    let report = drover_conformance::run_scenarios(Arc::clone(&emulated) as Arc<dyn Stage>).await;
    assert_eq!(
        report.passed(),
        drover_conformance::selected_scenarios(),
        "{report}"
    );
    let requests: u64 = emulated
        .engines
        .lock()
        .unwrap()
        .iter()
        .map(|engine| engine.calls().values().sum::<u64>())
        .sum();
    let migrations: usize = report
        .outcomes
        .iter()
        .map(|outcome| outcome.migrations)
        .sum();
    println!("{report}");
    println!(
        "ovirt scenarios in {} ms: {requests} REST requests for {migrations} migrated VMs over every scenario (whole runs: discovery, maintenance, jobs, upgrades included): {:.0} requests per migrated VM",
        started.elapsed().as_millis(),
        requests as f64 / migrations.max(1) as f64
    );
}
