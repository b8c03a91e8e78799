//! An independent checker of plans: replays a plan on a copy of the cluster and reports every
//! rule it breaks. It shares no code with the planner on purpose, so a planner bug cannot hide
//! behind the same bug here. Used by property tests, the simulator and `drover plan` itself.
//!
//! Host constraints (`Vm::allowed_hosts`): no action places a VM outside its allowed hosts. Such
//! a VM may also move a second time when its first move went to a host not yet at the target
//! (its allowed hosts may all have been old then); it never moves a third time.
//!
//! Returns (`Wave::returns`) are replayed after the wave's hosts are upgraded and their shut-down
//! VMs started again: each is a live migration of a VM that an action of the same wave moved off
//! a wave host, back to that host (upgraded now), from a host outside the wave and below the
//! target, into the headroom, among its allowed hosts and without an anti-affinity partner
//! there; it counts as a move (the VM's second: at most two).

use crate::model::{
    Cluster, HostId, HostRole, HostShare, HostState, MaxUnavailable, RestartPolicy, Unmovable, VmId,
};
use crate::plan::{Action, ActionKind, Plan, Wave, WaveKind};
use crate::version::Version;

/// The state a replay keeps: where each running VM is and what version each host runs.
struct Replay<'a> {
    cluster: &'a Cluster,
    location: Vec<Option<HostId>>,
    /// Running VMs per host, so that per-action checks look at one host only.
    on_host: Vec<Vec<VmId>>,
    version: Vec<Version>,
    memory_used: Vec<u64>,
    vcpus_used: Vec<u64>,
    violations: Vec<String>,
    moves_per_vm: Vec<u32>,
    /// Whether a VM's first move came while no compute host ran the target (a control-plane wave
    /// or the first compute wave), or took a constrained VM to a host below the target: only
    /// such a VM may move a second time.
    may_move_twice: Vec<bool>,
}

impl<'a> Replay<'a> {
    fn new(cluster: &'a Cluster) -> Self {
        let mut replay = Replay {
            cluster,
            location: cluster
                .vms
                .iter()
                .map(|vm| vm.is_running().then_some(vm.host))
                .collect(),
            on_host: vec![Vec::new(); cluster.hosts.len()],
            version: cluster.hosts.iter().map(|h| h.version.clone()).collect(),
            memory_used: vec![0; cluster.hosts.len()],
            vcpus_used: vec![0; cluster.hosts.len()],
            violations: Vec::new(),
            moves_per_vm: vec![0; cluster.vms.len()],
            may_move_twice: vec![false; cluster.vms.len()],
        };
        for (index, vm) in cluster.vms.iter().enumerate() {
            if let Some(host) = replay.location[index] {
                replay.on_host[host.index()].push(VmId(index as u32));
                replay.memory_used[host.index()] += vm.memory_mib;
                replay.vcpus_used[host.index()] += vm.vcpus as u64;
            }
        }
        replay
    }

    /// Counts a move and enforces the bound: a VM moves at most twice, and twice only when its
    /// first move came before any compute host ran the target.
    /// `to_old_host_by_constraint`: a VM with `allowed_hosts` went to a host below the target.
    fn count_move(
        &mut self,
        vm: VmId,
        before_any_compute_upgrade: bool,
        to_old_host_by_constraint: bool,
        context: &str,
    ) {
        let moves = &mut self.moves_per_vm[vm.index()];
        *moves += 1;
        match *moves {
            1 => {
                self.may_move_twice[vm.index()] =
                    before_any_compute_upgrade || to_old_host_by_constraint
            }
            2 if self.may_move_twice[vm.index()] => {}
            2 => self.fail(format!(
                "{context}: a second move for a VM first moved after a compute host was upgraded"
            )),
            count => self.fail(format!("{context}: move number {count} (at most two)")),
        }
    }

    fn host_name(&self, host: HostId) -> &str {
        &self.cluster.host(host).name
    }

    fn fail(&mut self, message: String) {
        self.violations.push(message);
    }

    fn group_on(&self, vm: VmId, host: HostId) -> Option<VmId> {
        let group = self.cluster.vm(vm).anti_affinity.as_deref()?;
        self.on_host[host.index()].iter().copied().find(|other| {
            *other != vm && self.cluster.vm(*other).anti_affinity.as_deref() == Some(group)
        })
    }

    /// Moves a running VM's bookkeeping from one host to another (`None`: not running).
    fn relocate(&mut self, vm: VmId, from: Option<HostId>, to: Option<HostId>) {
        let spec = self.cluster.vm(vm);
        if let Some(from) = from {
            self.memory_used[from.index()] -= spec.memory_mib;
            self.vcpus_used[from.index()] -= spec.vcpus as u64;
            self.on_host[from.index()].retain(|other| *other != vm);
        }
        if let Some(to) = to {
            self.memory_used[to.index()] += spec.memory_mib;
            self.vcpus_used[to.index()] += spec.vcpus as u64;
            self.on_host[to.index()].push(vm);
        }
        self.location[vm.index()] = to;
    }

    /// Capacity after a VM came to `host`: a VM Drover moved there (`placed`) must fit within
    /// the headroom (fill percent and reserve); one started again on its own host within the host.
    fn check_capacity(&mut self, host: HostId, context: &str, placed: bool) {
        let spec = self.cluster.host(host);
        let policy = &self.cluster.policy;
        let vcpu_limit = (spec.cpus as f64 * policy.cpu_overcommit).floor() as u64;
        let memory_limit = if placed {
            let fill = spec.memory_mib as u128 * policy.host_memory_max_fill_percent as u128 / 100;
            (fill as u64).min(
                spec.memory_mib
                    .saturating_sub(policy.host_memory_reserve_mib),
            )
        } else {
            spec.memory_mib
        };
        if self.memory_used[host.index()] > memory_limit {
            let used = self.memory_used[host.index()];
            let what = if placed {
                "its headroom limit"
            } else {
                "its memory"
            };
            self.fail(format!(
                "{context}: host {} memory {used} MiB > {memory_limit} MiB ({what})",
                spec.name
            ));
        }
        if self.vcpus_used[host.index()] > vcpu_limit {
            let used = self.vcpus_used[host.index()];
            self.fail(format!(
                "{context}: host {} vCPUs {used} > limit {vcpu_limit}",
                spec.name
            ));
        }
    }
}

/// Replays `plan` on `cluster` and returns every broken rule, in order. Empty means the plan is safe.
pub fn check_plan(cluster: &Cluster, plan: &Plan) -> Vec<String> {
    let mut replay = Replay::new(cluster);
    check_wave_shapes(cluster, plan, &mut replay);
    check_host_coverage(cluster, plan, &mut replay);
    for (index, wave) in plan.waves.iter().enumerate() {
        replay_wave(&mut replay, index + 1, wave);
    }
    check_summary(plan, &mut replay);
    replay.violations
}

/// How many times each VM moved (migrations and restarts) when the plan is replayed.
pub fn moves_per_vm(cluster: &Cluster, plan: &Plan) -> Vec<u32> {
    let mut replay = Replay::new(cluster);
    for (index, wave) in plan.waves.iter().enumerate() {
        replay_wave(&mut replay, index + 1, wave);
    }
    replay.moves_per_vm
}

fn check_wave_shapes(cluster: &Cluster, plan: &Plan, replay: &mut Replay<'_>) {
    let host_count = cluster.hosts.len();
    let share_of_hosts = |percent: u32| (host_count * percent as usize / 100).max(1);
    let limit = match cluster.policy.max_unavailable {
        // A platform whose upgrade tool refuses concurrent upgrades (Oracle PCA).
        _ if cluster.policy.one_host_at_a_time => 1,
        MaxUnavailable::Count(count) => count.max(1) as usize,
        MaxUnavailable::Percent(percent) => share_of_hosts(percent),
        MaxUnavailable::Auto => {
            let ceiling = match cluster.policy.max_unavailable_auto_ceiling {
                HostShare::Hosts(count) => count.max(1) as usize,
                HostShare::Percent(percent) => share_of_hosts(percent),
            };
            (plan.summary.max_unavailable.max(1) as usize).min(ceiling)
        }
    };
    let mut last_stage = 0;
    for (index, wave) in plan.waves.iter().enumerate() {
        let number = index + 1;
        if wave.hosts.is_empty() || wave.hosts.len() > limit {
            replay.fail(format!(
                "wave {number}: {} hosts, allowed 1..={limit}",
                wave.hosts.len()
            ));
        }
        let stage = match wave.kind {
            WaveKind::Master => 0,
            WaveKind::Management => 1,
            WaveKind::Compute => 2,
        };
        if stage < last_stage {
            replay.fail(format!(
                "wave {number}: {} wave after a later stage",
                wave.kind.as_str()
            ));
        }
        last_stage = stage;
        if stage < 2 && wave.hosts.len() != 1 {
            replay.fail(format!("wave {number}: control-plane waves hold one host"));
        }
        for host in &wave.hosts {
            let role = cluster.host(*host).role;
            let expected = match role {
                HostRole::Master => WaveKind::Master,
                HostRole::Management => WaveKind::Management,
                HostRole::Compute => WaveKind::Compute,
            };
            if expected != wave.kind {
                let name = replay.host_name(*host).to_string();
                replay.fail(format!(
                    "wave {number}: host {name} ({role:?}) in a {} wave",
                    wave.kind.as_str()
                ));
            }
        }
    }
}

fn check_host_coverage(cluster: &Cluster, plan: &Plan, replay: &mut Replay<'_>) {
    if !plan.is_feasible() {
        if !plan.waves.is_empty() {
            replay.fail("an infeasible plan carries waves".into());
        }
        return;
    }
    let mut seen = vec![0u32; cluster.hosts.len()];
    for host in plan.waves.iter().flat_map(|w| &w.hosts) {
        seen[host.index()] += 1;
    }
    for host in cluster.host_ids() {
        let spec = cluster.host(host);
        let selected =
            (cluster.policy.only_hosts.as_ref()).is_none_or(|names| names.contains(&spec.name));
        let forced = spec.version == cluster.target_version
            && cluster.policy.force_hosts.contains(&spec.name);
        let should = spec.state != HostState::Down
            && (spec.version < cluster.target_version || forced)
            && selected;
        let count = seen[host.index()];
        if should && count != 1 {
            replay.fail(format!(
                "host {} needs upgrading but appears {count} times",
                spec.name
            ));
        }
        if !should && count != 0 {
            replay.fail(format!(
                "host {} must not be touched but is in a wave",
                spec.name
            ));
        }
    }
}

fn replay_wave(replay: &mut Replay<'_>, number: usize, wave: &Wave) {
    let (hosts, actions) = (&wave.hosts[..], &wave.actions[..]);
    let cluster = replay.cluster;
    let in_wave = |host: HostId| hosts.contains(&host);
    let mut shut_down = Vec::new();
    let before_any_compute_upgrade = hosts
        .iter()
        .any(|h| cluster.host(*h).role != HostRole::Compute)
        || !cluster.host_ids().any(|h| {
            cluster.host(h).role == HostRole::Compute
                && replay.version[h.index()] >= cluster.target_version
        });
    for action in actions {
        let vm = cluster.vm(action.vm);
        let context = format!("wave {number}: {} {}", action.kind.as_str(), vm.name);
        if replay.location[action.vm.index()] != Some(action.from) {
            replay.fail(format!(
                "{context}: VM is not running on {}",
                replay.host_name(action.from)
            ));
            continue;
        }
        if !in_wave(action.from) {
            replay.fail(format!("{context}: source host is not in this wave"));
        }
        let cannot_live_migrate = !vm.migratable || vm.local_storage;
        // The operator's `unmovable:` choice, for a VM that cannot live-migrate.
        let asked = |choice: Unmovable| cannot_live_migrate && vm.unmovable == Some(choice);
        let allowed_kind = match action.kind {
            ActionKind::Migrate => vm.migratable && !vm.local_storage,
            ActionKind::Suspend => asked(Unmovable::Suspend),
            ActionKind::Shelve => asked(Unmovable::Shelve),
            ActionKind::Restart if asked(Unmovable::Restart) => !vm.local_storage,
            ActionKind::Shutdown if asked(Unmovable::Shutdown) => true,
            ActionKind::Restart => {
                !vm.migratable && !vm.local_storage && vm.restart_policy == RestartPolicy::Always
            }
            ActionKind::Shutdown => {
                // A VM whose allowed hosts hold no other host up and not cordoned cannot leave.
                let no_allowed_other_host = vm.allowed_hosts.as_ref().is_some_and(|allowed| {
                    allowed.iter().all(|host| {
                        let spec = cluster.host(*host);
                        *host == action.from || spec.state != HostState::Up || spec.cordoned
                    })
                });
                let nowhere_to_go =
                    !vm.migratable || cluster.hosts.len() == 1 || no_allowed_other_host;
                vm.local_storage || (nowhere_to_go && cluster.policy.auto_resolve)
            }
        };
        if !allowed_kind {
            replay.fail(format!("{context}: action kind does not suit this VM"));
        }
        let from = action.from;
        match (action.kind, action.to) {
            (ActionKind::Shutdown | ActionKind::Suspend, None) => {
                shut_down.push((action.vm, from));
                replay.relocate(action.vm, Some(from), None);
            }
            (ActionKind::Shutdown, Some(_)) => {
                replay.fail(format!("{context}: a shutdown has no destination"))
            }
            (ActionKind::Suspend, Some(_)) => {
                replay.fail(format!("{context}: a suspend has no destination"))
            }
            (_, None) => replay.fail(format!("{context}: no destination")),
            (_, Some(to)) => {
                let target = cluster.host(to);
                if in_wave(to) || target.state != HostState::Up || target.cordoned {
                    replay.fail(format!(
                        "{context}: destination {} is unavailable",
                        target.name
                    ));
                }
                if replay.version[to.index()] < replay.version[from.index()] {
                    replay.fail(format!(
                        "{context}: destination {} runs {} < source {}",
                        target.name,
                        replay.version[to.index()],
                        replay.version[from.index()]
                    ));
                }
                if let Some(allowed) = &vm.allowed_hosts {
                    if !allowed.contains(&to) {
                        let names: Vec<&str> = allowed
                            .iter()
                            .map(|host| cluster.host(*host).name.as_str())
                            .collect();
                        replay.fail(format!(
                            "{context}: destination {} is not among its allowed hosts ({})",
                            target.name,
                            names.join(", ")
                        ));
                    }
                }
                let to_old_host_by_constraint = vm.allowed_hosts.is_some()
                    && replay.version[to.index()] < cluster.target_version;
                if let Some(other) = replay.group_on(action.vm, to) {
                    let other = cluster.vm(other).name.clone();
                    replay.fail(format!(
                        "{context}: anti-affinity with {other} on {}",
                        target.name
                    ));
                }
                replay.relocate(action.vm, Some(from), Some(to));
                replay.count_move(
                    action.vm,
                    before_any_compute_upgrade,
                    to_old_host_by_constraint,
                    &context,
                );
                replay.check_capacity(to, &context, true);
            }
        }
    }
    for host in hosts {
        if let Some(vm) = replay.on_host[host.index()].first() {
            let name = &cluster.vm(*vm).name;
            replay.violations.push(format!(
                "wave {number}: VM {name} still running on {}",
                cluster.host(*host).name
            ));
        }
        replay.version[host.index()] = cluster.target_version.clone();
    }
    // A shut-down VM comes back on the host it was shut down on, after that host's upgrade; so
    // does a suspended one, whose memory XAPI does not keep reserved there meanwhile
    // (`resident_on` and `scheduled_to_be_resident_on` are cleared on suspend), so its resume
    // needs room like a start.
    for (vm, host) in shut_down {
        replay.relocate(vm, None, Some(host));
        let name = cluster.vm(vm).name.clone();
        replay.check_capacity(host, &format!("wave {number}: start {name} again"), false);
    }
    for action in &wave.returns {
        replay_return(replay, number, wave, action);
    }
}

/// One return of wave `number`, after its hosts are upgraded (see the module doc).
fn replay_return(replay: &mut Replay<'_>, number: usize, wave: &Wave, action: &Action) {
    let cluster = replay.cluster;
    let vm = cluster.vm(action.vm);
    let context = format!("wave {number}: return {}", vm.name);
    if action.kind != ActionKind::Migrate || !vm.migratable || vm.local_storage {
        replay.fail(format!("{context}: a return is a live migration"));
    }
    if replay.location[action.vm.index()] != Some(action.from) {
        replay.fail(format!(
            "{context}: VM is not running on {}",
            replay.host_name(action.from)
        ));
        return;
    }
    if wave.hosts.contains(&action.from) {
        replay.fail(format!(
            "{context}: source host {} is in the wave",
            replay.host_name(action.from)
        ));
    } else if replay.version[action.from.index()] >= cluster.target_version {
        // From an upgraded host the VM would never have moved again: a return there is a move
        // the rules do not allow (at most two, the second only from a host below the target).
        replay.fail(format!(
            "{context}: source host {} is upgraded already",
            replay.host_name(action.from)
        ));
    }
    let Some(to) = action.to else {
        replay.fail(format!("{context}: no destination"));
        return;
    };
    let left_it_in_this_wave = wave
        .actions
        .iter()
        .any(|out| out.vm == action.vm && out.from == to && out.kind == ActionKind::Migrate);
    if !left_it_in_this_wave {
        replay.fail(format!(
            "{context}: the VM did not leave {} in this wave",
            replay.host_name(to)
        ));
    }
    let target = cluster.host(to);
    if target.state != HostState::Up || target.cordoned {
        replay.fail(format!(
            "{context}: destination {} is unavailable",
            target.name
        ));
    }
    if replay.version[to.index()] < cluster.target_version {
        replay.fail(format!(
            "{context}: destination {} is not upgraded",
            target.name
        ));
    }
    if let Some(allowed) = &vm.allowed_hosts {
        if !allowed.contains(&to) {
            replay.fail(format!(
                "{context}: destination {} is not among its allowed hosts",
                target.name
            ));
        }
    }
    if let Some(other) = replay.group_on(action.vm, to) {
        let other = cluster.vm(other).name.clone();
        replay.fail(format!(
            "{context}: anti-affinity with {other} on {}",
            target.name
        ));
    }
    replay.relocate(action.vm, Some(action.from), Some(to));
    let moves = &mut replay.moves_per_vm[action.vm.index()];
    *moves += 1;
    let moves = *moves;
    if moves > 2 {
        replay.fail(format!("{context}: move number {moves} (at most two)"));
    }
    replay.check_capacity(to, &context, true);
}

fn check_summary(plan: &Plan, replay: &mut Replay<'_>) {
    let count = |kind| plan.actions().filter(|a| a.kind == kind).count();
    let summary = &plan.summary;
    let expected = (
        count(ActionKind::Migrate),
        count(ActionKind::Restart),
        count(ActionKind::Shutdown),
    );
    let expected_parked = (count(ActionKind::Suspend), count(ActionKind::Shelve));
    if (summary.migrations, summary.restarts, summary.shutdowns) != expected
        || (summary.suspends, summary.shelves) != expected_parked
        || summary.waves != plan.waves.len()
        || summary.returns != plan.returns().count()
    {
        replay.fail(format!(
            "summary counts {:?} do not match the waves",
            (summary.migrations, summary.restarts, summary.shutdowns)
        ));
    }
    if summary.migrations < summary.migrations_lower_bound && plan.is_feasible() {
        replay.fail("fewer migrations than the lower bound: some VM was never moved".into());
    }
}
