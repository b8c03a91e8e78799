//! [`SimDriver`]: the simulator as a platform behind Drover's [`Driver`] trait, so the engine can
//! run a real rolling upgrade against it, crash, resume, and meet injected faults.
//!
//! # Model
//! - The world (hosts, VMs, operations in flight) is shared state behind a mutex that is never
//!   held across an `.await`. Every operation is recorded with its platform completion time and
//!   completes lazily: each call first settles the world to [`Clock::now_ms`], applying every
//!   operation whose time has passed. A caller only sleeps until its operation's completion time
//!   and then reads the outcome, so dropping the caller (a simulated crash, an engine timeout)
//!   does not stop the platform, exactly like a real hypervisor.
//! - Durations come from the cluster's policy (a migration takes `migration_overhead_secs +
//!   memory_mib / migration_bandwidth_mib_per_sec`; upgrade, reboot, VM shutdown and boot their
//!   own durations; maintenance changes 5 s, cordoning 2 s), with ±10% jitter drawn from a
//!   ChaCha8 stream per operation (seed 0: nominal durations) and `slow` faults.
//! - Every call observes before acting (see the calls module): what is done is answered at once,
//!   what is under way is joined, and the platform's own rules are enforced with
//!   `DriverError::Refused`. A host that does not answer is reported `Unreachable` after a 3 s
//!   connection timeout; only a hung migration (an injected fault) blocks its caller forever.
//! - With a state file, the world is saved after every change and reloaded by [`SimDriver::new`],
//!   so a new process finds the platform as the old one left it.
//!
//! This module must not know plans, journals or the engine's loop: it is a platform, and speaks
//! only the driver's language of host and VM names.

mod calls;
mod complete;
mod faults;
mod observe;
mod persist;
mod setting_state;
mod settings;
mod snapshot;
mod version_text;
mod world;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use drover_core::{Cluster, PlatformSetting, Version};
use drover_driver::{Clock, Discovered, Driver, DriverError, HostFacts, ShutdownObserved};

use crate::SimError;
use calls::Begun;
use world::{
    Completion, Durations, OperationOutcome, OperationStatus, PlatformState, SimWorld, WorldRules,
};

pub use faults::{Fault, FaultKind, RandomFaults, SlowStep};
pub use snapshot::{
    HistoryEvent, HistoryEventKind, HostSnapshot, OperationSnapshot, PlatformHostState,
    SettingSnapshot, VmSnapshot, WorldSnapshot,
};

/// A host that does not answer is noticed after this connection timeout, platform milliseconds.
pub const HOST_SILENCE_DETECTION_MS: u64 = 3_000;
/// A caller waiting on a hung operation looks again this often (platform milliseconds), so that
/// it learns when another call cancels the operation.
const HUNG_OPERATION_RECHECK_MS: u64 = 60_000;

/// The simulated platform has every disposition. A suspend or a shelve stops the VM without
/// asking the guest and frees its host's memory (as XAPI clears `resident_on` on suspend and
/// Nova offloads a shelved server); a resume or unshelve starts it on the host named. Read by
/// `Driver::supports` and by the registry.
pub const VM_ACTIONS: &[drover_core::ActionKind] = &[
    drover_core::ActionKind::Migrate,
    drover_core::ActionKind::Restart,
    drover_core::ActionKind::Shutdown,
    drover_core::ActionKind::Suspend,
    drover_core::ActionKind::Shelve,
];

/// How the simulated platform behaves beyond what the cluster describes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimDriverConfig {
    /// Seeds duration jitter and random faults; 0 means nominal durations.
    pub seed: u64,
    pub faults: Vec<Fault>,
    pub random_faults: RandomFaults,
    /// Where the platform keeps its state between processes; `None`: in memory only.
    pub state_file: Option<PathBuf>,
    /// Save the state file after every change (a platform that outlives a killed process), or
    /// only when [`SimDriver::save`] is called (virtual time: the whole run happens within one
    /// call of the engine, and rewriting the world thousands of times would dominate it).
    pub save_only_on_request: bool,
}

/// The simulated platform. Clones share one world.
#[derive(Clone)]
pub struct SimDriver {
    world: Arc<Mutex<SimWorld>>,
    clock: Clock,
    /// What the platform does not track itself (roles, CPUs, labels), for discovery.
    cluster: Arc<Cluster>,
    state_file: Option<Arc<Path>>,
    save_only_on_request: bool,
}

impl SimDriver {
    /// The platform starts as the cluster describes it (or as the state file says, if it exists).
    pub fn new(
        cluster: &Cluster,
        clock: Clock,
        config: SimDriverConfig,
    ) -> Result<SimDriver, SimError> {
        check_config(cluster, &config)?;
        let state = initial_state(cluster, &config)?;
        let rules = WorldRules {
            durations: Durations::from_policy(&cluster.policy),
            faults: config.faults,
            random_faults: config.random_faults,
            seed: config.seed,
        };
        if let Some(path) = config.state_file.as_deref() {
            // Saved at once, so that a process killed before its first call leaves a platform.
            persist::save(path, &state).map_err(|message| SimError::StateFile {
                path: path.to_path_buf(),
                message,
            })?;
        }
        Ok(SimDriver {
            world: Arc::new(Mutex::new(SimWorld::new(state, rules))),
            clock,
            cluster: Arc::new(cluster.clone()),
            state_file: config.state_file.map(Arc::from),
            save_only_on_request: config.save_only_on_request,
        })
    }

    /// Writes the state file now (if there is one and something changed).
    pub fn save(&self) -> Result<(), DriverError> {
        let mut world = self.lock();
        self.write_state(&mut world)
    }

    /// The platform's time now, epoch milliseconds (a front-end's own timers run on it).
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The platform now: hosts, VMs, operations in flight and the full history.
    pub fn snapshot(&self) -> WorldSnapshot {
        let now_ms = self.clock.now_ms();
        let mut world = self.lock();
        // Settled but not saved: the saved state completes the same operations when reloaded,
        // and the next call saves.
        world.settle(now_ms);
        world.snapshot(now_ms)
    }

    fn lock(&self) -> MutexGuard<'_, SimWorld> {
        // A panic while holding the lock is a bug already reported by that panic; the world
        // itself is still consistent enough to observe.
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Settles the world to now, runs `call` on it and saves what changed, all under the lock
    /// (which is released before the caller awaits anything).
    fn with_world<T>(
        &self,
        call: impl FnOnce(&mut SimWorld, u64) -> Result<T, DriverError>,
    ) -> Result<T, DriverError> {
        let now_ms = self.clock.now_ms();
        let mut world = self.lock();
        world.settle(now_ms);
        let answer = call(&mut world, now_ms);
        self.save_if_changed(&mut world)?;
        answer
    }

    fn save_if_changed(&self, world: &mut SimWorld) -> Result<(), DriverError> {
        if self.save_only_on_request {
            return Ok(());
        }
        self.write_state(world)
    }

    fn write_state(&self, world: &mut SimWorld) -> Result<(), DriverError> {
        if !world.take_changed() {
            return Ok(());
        }
        let Some(path) = self.state_file.as_deref() else {
            return Ok(());
        };
        persist::save(path, &world.state).map_err(|message| {
            // Try again at the next call.
            world.mark_changed();
            DriverError::Failed(format!(
                "cannot save the simulated platform to {}: {message}",
                path.display()
            ))
        })
    }

    /// Turns what the platform said into the call's answer, waiting as long as it takes.
    async fn follow(&self, begun: Begun) -> Result<Completion, DriverError> {
        match begun {
            Begun::Answered(answer) => answer,
            Begun::HostSilent(host) => {
                self.clock.sleep_ms(HOST_SILENCE_DETECTION_MS).await;
                Err(host_silent(host))
            }
            Begun::Waiting(operation_id) => self.await_operation(operation_id).await,
        }
    }

    /// Sleeps until the operation's completion time, then reads its outcome (following an
    /// upgrade into its reboot).
    async fn await_operation(&self, mut operation_id: u64) -> Result<Completion, DriverError> {
        loop {
            match self.with_world(|world, _| Ok(world.status(operation_id)))? {
                OperationStatus::InFlight {
                    completes_at_ms: Some(at_ms),
                } => self.clock.sleep_until_ms(at_ms).await,
                OperationStatus::InFlight {
                    completes_at_ms: None,
                } => self.clock.sleep_ms(HUNG_OPERATION_RECHECK_MS).await,
                OperationStatus::Finished(OperationOutcome::Continued(next)) => operation_id = next,
                OperationStatus::Finished(OperationOutcome::Completed(completion)) => {
                    return Ok(completion)
                }
                OperationStatus::Finished(OperationOutcome::Failed(error)) => return Err(error),
                OperationStatus::Forgotten => {
                    let message = format!("the platform no longer knows operation {operation_id}; observe and call again");
                    return Err(DriverError::Failed(message));
                }
            }
        }
    }

    /// Reads something only the host itself can say; a silent host is given one connection
    /// timeout to come back.
    async fn ask_host<T>(
        &self,
        host: &str,
        read: impl Fn(&SimWorld) -> Result<Option<T>, DriverError> + Send,
    ) -> Result<T, DriverError> {
        if let Some(answer) = self.with_world(|world, _| read(world))? {
            return Ok(answer);
        }
        self.clock.sleep_ms(HOST_SILENCE_DETECTION_MS).await;
        self.with_world(|world, _| read(world))?
            .ok_or_else(|| host_silent(host.to_string()))
    }

    async fn begin_and_follow(
        &self,
        begin: impl FnOnce(&mut SimWorld, u64) -> Result<Begun, DriverError>,
    ) -> Result<Completion, DriverError> {
        let begun = self.with_world(begin)?;
        self.follow(begun).await
    }
}

#[async_trait::async_trait]
impl Driver for SimDriver {
    fn persist(&self) -> Result<(), DriverError> {
        self.save()
    }

    fn kind(&self) -> &'static str {
        "simulator"
    }

    async fn discover(&self) -> Result<Discovered, DriverError> {
        self.with_world(|world, _| Ok(world.discover(&self.cluster)))
    }

    async fn host_facts(&self, host: &str) -> Result<HostFacts, DriverError> {
        self.ask_host(host, |world| world.host_facts(host)).await
    }

    /// A host that answers is healthy: the simulator has no services to fail.
    async fn health_check(&self, host: &str) -> Result<(), DriverError> {
        self.ask_host(host, |world| Ok(world.host_facts(host)?.map(|_| ())))
            .await
    }

    async fn set_allocation(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        self.begin_and_follow(|world, now_ms| world.begin_allocation(host, enabled, now_ms))
            .await
            .map(|_| ())
    }

    async fn set_maintenance(&self, host: &str, enabled: bool) -> Result<(), DriverError> {
        self.begin_and_follow(|world, now_ms| world.begin_maintenance(host, enabled, now_ms))
            .await
            .map(|_| ())
    }

    async fn migrate(&self, vm: &str, from: &str, to: &str) -> Result<(), DriverError> {
        self.begin_and_follow(|world, now_ms| world.begin_migration(vm, from, to, now_ms))
            .await
            .map(|_| ())
    }

    /// `graceful_timeout` is platform time, like every duration the core hands out.
    async fn shutdown_vm(
        &self,
        vm: &str,
        host: &str,
        graceful_timeout: Duration,
    ) -> Result<ShutdownObserved, DriverError> {
        let graceful_timeout_ms = u64::try_from(graceful_timeout.as_millis()).unwrap_or(u64::MAX);
        let begin = |world: &mut SimWorld, now_ms| {
            world.begin_shutdown(vm, host, graceful_timeout_ms, now_ms)
        };
        match self.begin_and_follow(begin).await? {
            Completion::ShutDown { forced } => Ok(ShutdownObserved { forced }),
            Completion::Done => Ok(ShutdownObserved { forced: false }),
        }
    }

    async fn start_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        self.begin_and_follow(|world, now_ms| world.begin_start(vm, host, now_ms))
            .await
            .map(|_| ())
    }

    fn supports(&self, action: drover_core::ActionKind) -> bool {
        VM_ACTIONS.contains(&action)
    }

    async fn suspend_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        self.begin_and_follow(|world, now_ms| world.begin_shutdown(vm, host, 0, now_ms))
            .await
            .map(|_| ())
    }

    async fn resume_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        self.start_vm(vm, host).await
    }

    async fn shelve_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        self.suspend_vm(vm, host).await
    }

    async fn unshelve_vm(&self, vm: &str, host: &str) -> Result<(), DriverError> {
        self.start_vm(vm, host).await
    }

    async fn upgrade(&self, host: &str, target: &Version) -> Result<(), DriverError> {
        self.begin_and_follow(|world, now_ms| world.begin_upgrade(host, target, now_ms))
            .await
            .map(|_| ())
    }

    async fn reboot(&self, host: &str, boot_id_before: &str) -> Result<(), DriverError> {
        self.begin_and_follow(|world, now_ms| world.begin_reboot(host, boot_id_before, now_ms))
            .await
            .map(|_| ())
    }

    async fn set_compatibility_level(&self, cluster: &str, level: &str) -> Result<(), DriverError> {
        if cluster != self.cluster.name {
            let known = &self.cluster.name;
            return Err(DriverError::NotFound(format!(
                "cluster {cluster} (this platform is cluster {known})"
            )));
        }
        self.with_world(|world, now_ms| world.set_compatibility_level(cluster, level, now_ms))
    }

    async fn resolve_setting(&self, setting: &PlatformSetting) -> Result<String, DriverError> {
        self.with_world(|world, now_ms| world.resolve_setting(setting, now_ms))
    }

    async fn restore_setting(
        &self,
        setting: &PlatformSetting,
        saved: &str,
    ) -> Result<(), DriverError> {
        self.with_world(|world, now_ms| world.restore_setting(setting, saved, now_ms))
    }
}

fn host_silent(host: String) -> DriverError {
    let detail = format!("no answer within {} s", HOST_SILENCE_DETECTION_MS / 1000);
    DriverError::Unreachable { host, detail }
}

fn check_config(cluster: &Cluster, config: &SimDriverConfig) -> Result<(), SimError> {
    let host_names: HashSet<&str> = cluster
        .hosts
        .iter()
        .map(|host| host.name.as_str())
        .collect();
    let vm_names: HashSet<&str> = cluster.vms.iter().map(|vm| vm.name.as_str()).collect();
    faults::check_faults(
        &config.faults,
        &config.random_faults,
        &host_names,
        &vm_names,
    )
    .map_err(|message| SimError::InvalidDriverConfig { message })
}

/// The saved platform if the state file exists, else the platform the cluster describes.
fn initial_state(cluster: &Cluster, config: &SimDriverConfig) -> Result<PlatformState, SimError> {
    let fault_count = config.faults.len();
    let Some(path) = config.state_file.as_deref() else {
        return Ok(PlatformState::from_cluster(cluster, fault_count));
    };
    let state_file_error = |message: String| SimError::StateFile {
        path: path.to_path_buf(),
        message,
    };
    match persist::load(path).map_err(state_file_error)? {
        Some(state) => {
            state
                .check_matches(cluster, fault_count)
                .map_err(state_file_error)?;
            Ok(state)
        }
        None => Ok(PlatformState::from_cluster(cluster, fault_count)),
    }
}
