//! The one start/resume path of both front ends (the CLI and the server): what a new run's
//! driver is (the registry resolves the inventory's section), which runtime and clock the run
//! needs (virtual time runs on a paused runtime), opening the driver, and handing store,
//! driver and clock to the engine, which creates or replays the run. What the front ends add
//! (progress bars, HTTP views, a reviewed plan) sits around these calls.
//!
//! A resumed run is reopened from what it recorded (its `RunDriver` and start entry) alone: no
//! inventory is read again.
//!
//! This module must not know clap, HTTP or terminals; it does not drive runs (the engine does).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use drover_core::execution::Execution;
use drover_core::Cluster;
use drover_driver::{Clock, Driver};
use drover_drivers::{OpenContext, PrepareContext, RunDriver, UpgradeRecipe};
use drover_engine::{Engine, EngineError, NewRunSpec, StoredRun};
use drover_schema::inventory::{DriverSection, InventoryFile};
use drover_store::{RunRecord, RunStore};

use crate::error::AppError;

/// A new run's request, from either front end.
pub struct NewRun<'a> {
    pub run_id: String,
    /// The inventory as the run starts with it (flags and API settings applied to its policy).
    pub inventory: &'a InventoryFile,
    pub inventory_path: &'a Path,
    /// The store's place, under which drivers keep the files their section places nowhere.
    pub files_prefix: &'a Path,
    /// What the release catalog tells each host's installer.
    pub upgrade_recipes: BTreeMap<String, UpgradeRecipe>,
    /// The simulated platform outlives the run (a server: one world per cluster).
    pub keep_platform_per_cluster: bool,
}

/// The driver a new run will record, resolved by the registry from the inventory's section.
pub fn new_run_driver(new: &NewRun) -> Result<RunDriver, AppError> {
    let context = PrepareContext {
        inventory_path: new.inventory_path,
        files_prefix: new.files_prefix,
        cluster: &new.inventory.cluster.name,
        now_ms: drover_driver::wall_now_ms(),
        keep_platform_per_cluster: new.keep_platform_per_cluster,
    };
    drover_drivers::prepare(&new.inventory.driver, &context, new.upgrade_recipes.clone())
        .map_err(AppError::bad_input)
}

/// The driver a stored run recorded. Runs of older drovers recorded no driver section; theirs
/// is read from the run's stored inventory (with `StoredRun`'s policy of older runs, the only
/// reads of a stored inventory).
pub fn recorded_run_driver(record: &RunRecord) -> Result<RunDriver, AppError> {
    RunDriver::from_options(&record.options_json, || earlier_section(record))
        .map_err(AppError::internal)
}

fn earlier_section(record: &RunRecord) -> Result<DriverSection, String> {
    drover_schema::inventory::parse_inventory_file(
        &record.inventory_text,
        "inventory (stored with the run)",
    )
    .map(|file| file.driver)
    .map_err(|error| error.to_string())
}

/// The runtime a run is driven on: paused (virtual time, where sleeping advances time at once
/// and the run is deterministic) or real.
pub fn runtime(run_driver: &RunDriver) -> Result<tokio::runtime::Runtime, AppError> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if run_driver.virtual_time() {
        builder.start_paused(true);
    }
    builder.build().map_err(AppError::internal)
}

/// A virtual-time run writes its journal thousands of times a second; it asks the store to
/// trade power-loss durability for speed (commits still survive a killed process).
pub fn prepare_store(store: &dyn RunStore, run_driver: &RunDriver) -> Result<(), AppError> {
    if run_driver.virtual_time() {
        store.relax_durability().map_err(AppError::internal)?;
    }
    Ok(())
}

/// A run's platform, open in this process: the driver and the run's clock. Made inside the
/// run's runtime (a virtual clock belongs to its paused runtime).
pub struct Platform {
    pub run_driver: RunDriver,
    pub driver: Arc<dyn Driver>,
    pub clock: Clock,
    /// How long the run's lease lasts without renewal (a server's `lease_ttl_secs`).
    pub lease_ttl: std::time::Duration,
}

impl Platform {
    /// The platform of a new run, on a clock starting now.
    pub fn open_new(run_driver: RunDriver, cluster: &Cluster) -> Result<Platform, AppError> {
        let clock = run_driver.new_clock();
        Platform::open(run_driver, cluster, clock)
    }

    /// The platform of a stored run, on a clock continuing its timeline from the journal's
    /// last entry; `cluster` is the cluster the run started from.
    pub fn open_recorded(
        run_driver: RunDriver,
        cluster: &Cluster,
        last_journal_ms: u64,
    ) -> Result<Platform, AppError> {
        let clock = run_driver.resumed_clock(last_journal_ms);
        Platform::open(run_driver, cluster, clock)
    }

    fn open(run_driver: RunDriver, cluster: &Cluster, clock: Clock) -> Result<Platform, AppError> {
        let context = OpenContext {
            cluster,
            clock: clock.clone(),
            read_only: false,
        };
        let driver = drover_drivers::open(&run_driver, &context).map_err(|error| match error {
            drover_drivers::RegistryError::BadConfig { .. }
            | drover_drivers::RegistryError::NotInThisBuild { .. } => AppError::bad_input(error),
            other => AppError::internal(other),
        })?;
        Ok(Platform {
            run_driver,
            driver,
            clock,
            lease_ttl: drover_engine::engine::DEFAULT_LEASE_TTL,
        })
    }

    /// Creates the run (the engine discovers, then records it in one transaction). `extra`
    /// options are recorded beside the driver's (who created it, a reviewed plan).
    pub async fn start(
        &self,
        store: Arc<dyn RunStore>,
        new: &NewRun<'_>,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Engine, EngineError> {
        let text = &new.inventory.source_text;
        let spec = NewRunSpec {
            run_id: new.run_id.clone(),
            inventory_text: text,
            inventory_sha256: crate::runs::sha256_hex(text),
            cluster: &new.inventory.cluster,
            options_json: self.run_driver.options_json(extra),
        };
        let driver: Arc<dyn Driver> = Arc::clone(&self.driver);
        let created =
            Engine::create_leased(store, driver, self.clock.clone(), spec, self.lease_ttl).await;
        self.persist_after_failure(created)
    }

    /// Opens a stored run: the engine replays its journal (`on_replayed` sees every input) and
    /// takes its lease.
    pub async fn resume(
        &self,
        store: Arc<dyn RunStore>,
        stored: StoredRun,
        on_replayed: &mut dyn FnMut(&Execution, u64),
    ) -> Result<Engine, EngineError> {
        let driver: Arc<dyn Driver> = Arc::clone(&self.driver);
        let opened = Engine::open_stored(
            store,
            driver,
            self.clock.clone(),
            stored,
            on_replayed,
            self.lease_ttl,
        )
        .await;
        self.persist_after_failure(opened)
    }

    /// Writes down what the driver keeps between processes (the simulated platform in
    /// virtual time saves only here); called when the engine stops.
    pub fn persist(&self) -> Result<(), AppError> {
        self.driver
            .persist()
            .map_err(|error| AppError::internal(format!("{}: {error}", self.driver.kind())))
    }

    fn persist_after_failure(
        &self,
        opened: Result<Engine, EngineError>,
    ) -> Result<Engine, EngineError> {
        opened.inspect_err(|_| {
            // The engine's error is what the operator must see; a platform that also fails to
            // save is secondary.
            let _ = self.driver.persist();
        })
    }
}

/// What the platform of an inventory looks like now (`drover discover`): its driver opened to
/// look only (the simulator keeps no world file then), with the policy's step timeout.
pub async fn discover(new: &NewRun<'_>) -> Result<drover_driver::Discovered, AppError> {
    let run_driver = new_run_driver(new)?;
    let context = OpenContext {
        cluster: &new.inventory.cluster,
        clock: Clock::real(),
        read_only: true,
    };
    let driver = drover_drivers::open(&run_driver, &context).map_err(AppError::bad_input)?;
    let limit = std::time::Duration::from_secs(new.inventory.cluster.policy.step_timeout_secs);
    match tokio::time::timeout(limit, driver.discover()).await {
        Ok(Ok(discovered)) => Ok(discovered),
        Ok(Err(error)) => Err(AppError::internal(format!("discovery failed: {error}"))),
        Err(_) => Err(AppError::internal(format!(
            "discovery timed out after {} s",
            limit.as_secs()
        ))),
    }
}

/// A stored run with no journal at all (an older drover crashed between recording it and its
/// start entry) is released and refused with `NeverStarted` before a driver is opened for it:
/// there is no started cluster to open one on.
pub async fn refuse_never_started(
    store: &dyn RunStore,
    stored: &StoredRun,
) -> Result<(), EngineError> {
    if !stored.never_started() {
        return Ok(());
    }
    let now_ms = drover_driver::wall_now_ms();
    drover_engine::engine::release_never_started(store, &stored.record, now_ms).await?;
    Err(EngineError::NeverStarted(stored.id().to_string()))
}

/// The run's platform time now, for "in 4h51m": the run's own clock (wall or scaled), or for
/// virtual time, where no clock runs between processes, the time of its last input.
pub fn platform_now_ms(record: &drover_store::RunRecord, execution: &Execution) -> u64 {
    match recorded_run_driver(record) {
        Ok(run_driver) if !run_driver.virtual_time() => run_driver.new_clock().now_ms(),
        Ok(_) => execution.report().now,
        Err(_) => drover_driver::wall_now_ms(),
    }
}
