//! The plan as data: prechecks, ordered waves, per-VM actions, and the summary an operator reviews.
//!
//! A plan only names hosts and VMs by id; rendering to tables, JSON or YAML happens at the edges.

use crate::model::{HostId, VmId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

/// One precheck result. `resolvable` says whether Drover can fix the problem itself
/// (with `policy.auto_resolve` / `--resolve`), as XenServer's "Resolve All" does.
#[derive(Clone, Debug, PartialEq)]
pub struct Precheck {
    pub id: &'static str,
    pub status: CheckStatus,
    pub message: String,
    pub resolvable: bool,
    /// Hosts and VMs this result is about, by name, so a failure says what blocks it.
    pub subjects: Vec<String>,
}

/// What happens to one VM so that its host can be upgraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Live migration to another host; no downtime.
    Migrate,
    /// Shut down, then started on another host (VM without tools / KubeVirt `Evict` with runStrategy Always).
    Restart,
    /// Shut down, then started again on its own host after that host's upgrade (local storage, Oracle PCA).
    Shutdown,
    /// Memory state saved to disk, resumed on its own host after that host's upgrade (XAPI
    /// `VM.suspend` / `VM.resume_on`): no boot; the downtime is the host's upgrade.
    Suspend,
    /// Stopped and offloaded by the platform, which keeps its disk and identity, then brought back
    /// on the planned host (Nova `shelve` / `unshelve` with `host`); placed like a restart.
    Shelve,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Migrate => "migrate",
            ActionKind::Restart => "restart",
            ActionKind::Shutdown => "shutdown",
            ActionKind::Suspend => "suspend",
            ActionKind::Shelve => "shelve",
        }
    }

    /// Whether the VM waits on its own host and comes back there after the upgrade (no
    /// destination): a shutdown or a suspend.
    pub fn stays_on_own_host(self) -> bool {
        matches!(self, ActionKind::Shutdown | ActionKind::Suspend)
    }

    /// Whether the VM stops and then starts on another host (its destination): a restart or a
    /// shelve.
    pub fn starts_elsewhere(self) -> bool {
        matches!(self, ActionKind::Restart | ActionKind::Shelve)
    }

    /// Whether the VM's guest stops during this action.
    pub fn has_downtime(self) -> bool {
        !matches!(self, ActionKind::Migrate)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    pub vm: VmId,
    pub kind: ActionKind,
    pub from: HostId,
    /// The destination; `None` for [`ActionKind::Shutdown`] and [`ActionKind::Suspend`], which
    /// come back on `from`.
    pub to: Option<HostId>,
}

/// Why a wave exists; control-plane waves come first and hold control-plane hosts only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaveKind {
    Master,
    Management,
    Compute,
}

impl WaveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WaveKind::Master => "master",
            WaveKind::Management => "management",
            WaveKind::Compute => "compute",
        }
    }
}

/// Hosts taken down together, the actions that empty them, in order, and the returns that
/// follow once they are all upgraded and back.
#[derive(Clone, Debug, PartialEq)]
pub struct Wave {
    pub kind: WaveKind,
    pub hosts: Vec<HostId>,
    pub actions: Vec<Action>,
    /// Live migrations back home, run after every host of the wave is upgraded and uncordoned:
    /// a VM with `allowed_hosts` that an action of this wave moved off one of its hosts goes
    /// back to that host (`to`, now upgraded) from where it waited (`from`). From a host not
    /// upgraded yet this only brings forward the move its host's own wave would have made; from
    /// an upgraded host it gives that host back the room its own pair VMs will need. Empty for
    /// VMs without a host constraint, so shared-storage plans have none.
    pub returns: Vec<Action>,
}

/// A host that the plan deliberately leaves alone, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedHost {
    pub host: HostId,
    pub reason: SkipReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    Down,
    AtTarget,
    NewerThanTarget,
    /// Older than the target but left out of the policy's host selection.
    NotSelected,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Down => "down",
            SkipReason::AtTarget => "at-target",
            SkipReason::NotSelected => "not-selected",
            SkipReason::NewerThanTarget => "newer-than-target",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub waves: usize,
    pub hosts_to_upgrade: usize,
    pub migrations: usize,
    pub restarts: usize,
    pub shutdowns: usize,
    pub suspends: usize,
    pub shelves: usize,
    /// Returns (`Wave::returns`): live migrations back home after a wave, counted apart from
    /// `migrations` (the actions that empty the waves' hosts); moves as executed are
    /// `migrations + restarts + shelves + returns`.
    pub returns: usize,
    /// Every running migratable VM on a host being upgraded must move at least once (returns
    /// are not needed for that, so they are not compared with this bound).
    pub migrations_lower_bound: usize,
    /// Fewest waves possible for this batch size: control-plane waves plus ⌈compute hosts / batch⌉.
    pub waves_lower_bound: usize,
    /// The batch size used (resolves `max_unavailable: auto`).
    pub max_unavailable: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub prechecks: Vec<Precheck>,
    pub waves: Vec<Wave>,
    pub skipped: Vec<SkippedHost>,
    pub summary: Summary,
    /// The final step after the last host: raise the cluster compatibility level to this. Set
    /// when the plan is feasible, the policy asks for it and no host is left below the target.
    pub final_compatibility_level: Option<String>,
}

impl Plan {
    /// A plan is feasible when no precheck failed; an infeasible plan carries no waves.
    pub fn is_feasible(&self) -> bool {
        self.prechecks.iter().all(|c| c.status != CheckStatus::Fail)
    }

    pub fn failed_prechecks(&self) -> impl Iterator<Item = &Precheck> {
        self.prechecks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
    }

    /// The actions that empty the waves' hosts, wave by wave (returns not included).
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.waves.iter().flat_map(|w| w.actions.iter())
    }

    /// The returns of every wave, wave by wave.
    pub fn returns(&self) -> impl Iterator<Item = &Action> {
        self.waves.iter().flat_map(|w| w.returns.iter())
    }

    /// This plan with other waves (a reviewed plan, or what is left of one), its summary's
    /// counts recounted; prechecks and bounds stay. Whether the waves are safe is for
    /// [`crate::check::check_plan`] to say.
    pub fn with_waves(&self, waves: Vec<Wave>) -> Plan {
        let mut plan = self.clone();
        plan.waves = waves;
        let count = |plan: &Plan, kind| plan.actions().filter(|a| a.kind == kind).count();
        plan.summary.migrations = count(&plan, ActionKind::Migrate);
        plan.summary.restarts = count(&plan, ActionKind::Restart);
        plan.summary.shutdowns = count(&plan, ActionKind::Shutdown);
        plan.summary.suspends = count(&plan, ActionKind::Suspend);
        plan.summary.shelves = count(&plan, ActionKind::Shelve);
        plan.summary.returns = plan.returns().count();
        plan.summary.waves = plan.waves.len();
        plan.summary.hosts_to_upgrade = plan.waves.iter().map(|w| w.hosts.len()).sum();
        plan
    }
}
