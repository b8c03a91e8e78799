//! Fault injection for the simulated platform: the faults a test or an operator asks for, how
//! they are matched to operations, and the seeded draws (duration jitter, random faults).
//!
//! This module knows nothing of the world's state, of time or of the driver calls: it only
//! answers "how long does this operation take, and does it go wrong?".

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Durations vary by up to this fraction either way (unless the seed is 0).
const JITTER_FRACTION: f64 = 0.10;

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The migration fails part-way; the VM stays on its source.
    MigrationFails,
    /// The platform refuses the migration outright.
    MigrationRefused,
    /// The migration never completes; the next migrate or shutdown of the VM cancels it.
    MigrationHangs,
    /// The installer fails after its full duration; the version is unchanged and the host stays
    /// in maintenance.
    UpgradeFails,
    /// The host goes down at its next reboot and never answers again.
    HostNeverReturns,
    /// The upgrade installs the version but does not reboot the host.
    UpgradeDoesNotReboot,
    /// A reboot request is accepted and takes its time, but the host never goes down: its boot
    /// id is unchanged.
    RebootIgnored,
    /// The guest ignores the graceful shutdown and is powered off after the graceful timeout.
    ShutdownIgnored,
    /// One step takes `factor` times its modeled duration.
    Slow,
    /// Setting the cluster compatibility level fails (it is about the cluster: no VM or host).
    CompatibilityLevelFails,
    /// The platform refuses to turn a blocking setting off (narrowed by `vm` to a VM's media).
    SettingResolveFails,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::MigrationFails => "migration-fails",
            FaultKind::MigrationRefused => "migration-refused",
            FaultKind::MigrationHangs => "migration-hangs",
            FaultKind::UpgradeFails => "upgrade-fails",
            FaultKind::HostNeverReturns => "host-never-returns",
            FaultKind::UpgradeDoesNotReboot => "upgrade-does-not-reboot",
            FaultKind::RebootIgnored => "reboot-ignored",
            FaultKind::ShutdownIgnored => "shutdown-ignored",
            FaultKind::Slow => "slow",
            FaultKind::CompatibilityLevelFails => "compatibility-level-fails",
            FaultKind::SettingResolveFails => "setting-resolve-fails",
        }
    }
}

/// The step a `slow` fault slows down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlowStep {
    Migrate,
    Upgrade,
    Reboot,
    Shutdown,
    Start,
    /// Entering or leaving maintenance, cordoning and uncordoning.
    Maintenance,
}

/// One injected fault. `vm` and `host` narrow it down (for a migration, `host` matches the
/// source or the destination); `times` limits it to the first that many matching operations
/// (none: every one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    #[serde(default)]
    pub vm: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub times: Option<u32>,
    /// Only for `slow`: the step it slows down.
    #[serde(default)]
    pub step: Option<SlowStep>,
    /// Only for `slow`: the multiplier of the step's duration.
    #[serde(default)]
    pub factor: Option<f64>,
}

impl Fault {
    /// A fault of `kind` on every matching operation.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            vm: None,
            host: None,
            times: None,
            step: None,
            factor: None,
        }
    }

    /// A `slow` fault: `step` takes `factor` times its modeled duration.
    pub fn slow(step: SlowStep, factor: f64) -> Fault {
        Fault {
            step: Some(step),
            factor: Some(factor),
            ..Fault::new(FaultKind::Slow)
        }
    }

    pub fn on_vm(mut self, vm: &str) -> Fault {
        self.vm = Some(vm.to_string());
        self
    }

    pub fn on_host(mut self, host: &str) -> Fault {
        self.host = Some(host.to_string());
        self
    }

    pub fn times(mut self, times: u32) -> Fault {
        self.times = Some(times);
        self
    }

    /// Why this fault cannot be used, if it cannot.
    fn problem(&self, host_names: &HashSet<&str>, vm_names: &HashSet<&str>) -> Option<String> {
        let name = self.kind.name();
        if let Some(vm) = self.vm.as_deref().filter(|vm| !vm_names.contains(vm)) {
            return Some(format!(
                "fault {name} names VM {vm:?}, which the cluster does not have"
            ));
        }
        if let Some(host) = self
            .host
            .as_deref()
            .filter(|host| !host_names.contains(host))
        {
            return Some(format!(
                "fault {name} names host {host:?}, which the cluster does not have"
            ));
        }
        let about_cluster = self.kind == FaultKind::CompatibilityLevelFails;
        if about_cluster && (self.vm.is_some() || self.host.is_some()) {
            return Some(format!(
                "fault {name} is about the cluster and takes no VM or host"
            ));
        }
        if self.kind == FaultKind::SettingResolveFails && self.host.is_some() {
            return Some(format!(
                "fault {name} is about a setting of the pool or of a VM and takes no host"
            ));
        }
        let is_slow = self.kind == FaultKind::Slow;
        match (is_slow, self.step, self.factor) {
            (true, Some(_), Some(factor)) if factor.is_finite() && factor > 0.0 => None,
            (true, _, _) => Some("fault slow needs a step and a finite factor above 0".to_string()),
            (false, None, None) => None,
            (false, _, _) => Some(format!(
                "fault {name} takes no step or factor (only slow does)"
            )),
        }
    }
}

/// Probabilities (0 to 1) of faults drawn at random for each operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomFaults {
    /// Each migration fails part-way with this probability.
    pub migration_failure: f64,
    /// Each upgrade fails with this probability.
    pub upgrade_failure: f64,
    /// Each guest ignores its graceful shutdown with this probability.
    pub shutdown_ignored: f64,
    /// Each reboot leaves its host down for good with this probability.
    pub host_never_returns: f64,
}

impl RandomFaults {
    fn problem(&self) -> Option<String> {
        let probabilities = [
            ("migration_failure", self.migration_failure),
            ("upgrade_failure", self.upgrade_failure),
            ("shutdown_ignored", self.shutdown_ignored),
            ("host_never_returns", self.host_never_returns),
        ];
        probabilities
            .iter()
            .find(|(_, probability)| !(0.0..=1.0).contains(probability))
            .map(|(name, probability)| {
                format!("random fault {name} is {probability}, not a probability between 0 and 1")
            })
    }
}

/// Checks faults against the cluster's names, so that a typo does not silently inject nothing.
pub(super) fn check_faults(
    faults: &[Fault],
    random: &RandomFaults,
    host_names: &HashSet<&str>,
    vm_names: &HashSet<&str>,
) -> Result<(), String> {
    let problem = faults
        .iter()
        .find_map(|fault| fault.problem(host_names, vm_names))
        .or_else(|| random.problem());
    problem.map_or(Ok(()), Err)
}

/// Whom an operation concerns, to match faults against.
pub(super) struct Subject<'a> {
    pub vm: Option<&'a str>,
    pub hosts: &'a [&'a str],
}

/// The configured faults with how often each has struck so far (`uses` is persisted with the
/// world, so that "the first 2 migrations" stays true across a restart).
pub(super) struct FaultBook<'a> {
    pub faults: &'a [Fault],
    pub uses: &'a mut [u32],
}

impl FaultBook<'_> {
    /// Whether a fault of `kind` strikes this operation; counts the strike if so.
    pub fn strikes(&mut self, kind: FaultKind, subject: &Subject) -> bool {
        let found = (0..self.faults.len()).find(|&index| self.applies(index, kind, subject));
        if let Some(index) = found {
            self.uses[index] += 1;
        }
        found.is_some()
    }

    /// The product of the factors of every `slow` fault on `step` that strikes this operation.
    pub fn slow_factor(&mut self, step: SlowStep, subject: &Subject) -> f64 {
        let mut factor = 1.0;
        for index in 0..self.faults.len() {
            if self.applies(index, FaultKind::Slow, subject)
                && self.faults[index].step == Some(step)
            {
                self.uses[index] += 1;
                factor *= self.faults[index].factor.unwrap_or(1.0);
            }
        }
        factor
    }

    fn applies(&self, index: usize, kind: FaultKind, subject: &Subject) -> bool {
        let fault = &self.faults[index];
        let vm_matches = fault.vm.as_deref().is_none_or(|vm| subject.vm == Some(vm));
        let host_matches = fault
            .host
            .as_deref()
            .is_none_or(|host| subject.hosts.contains(&host));
        let uses_left = fault.times.is_none_or(|times| self.uses[index] < times);
        fault.kind == kind && vm_matches && host_matches && uses_left
    }
}

/// The seeded random draws of one operation. Each operation has its own ChaCha8 stream (the
/// seed, stream = the operation's number), so the draws depend only on the seed and the order
/// of the calls, and a world reloaded from its state file re-derives them from its counter.
pub(super) struct Dice {
    rng: ChaCha8Rng,
    jitter: bool,
}

impl Dice {
    pub fn for_operation(seed: u64, operation_id: u64) -> Dice {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(operation_id);
        // Seed 0 means nominal durations, as in the plan simulator, so tests can state exact times.
        Dice {
            rng,
            jitter: seed != 0,
        }
    }

    /// `nominal_secs × slow_factor` with ±10% jitter, in platform milliseconds.
    pub fn duration_ms(&mut self, nominal_secs: f64, slow_factor: f64) -> u64 {
        let jitter_factor = match self.jitter {
            true => self
                .rng
                .random_range(1.0 - JITTER_FRACTION..=1.0 + JITTER_FRACTION),
            false => 1.0,
        };
        (nominal_secs * 1000.0 * jitter_factor * slow_factor)
            .round()
            .max(0.0) as u64
    }

    /// True with `probability`. Always draws, so the stream does not depend on the probability.
    pub fn chance(&mut self, probability: f64) -> bool {
        self.rng.random::<f64>() < probability
    }
}
