//! Tests of the execution state machine against a tiny scripted "platform" in the test itself.

use super::*;
use crate::model::*;
use std::collections::BTreeMap;

fn host(name: &str, role: HostRole) -> Host {
    Host {
        name: name.into(),
        role,
        version: "1.0".parse().unwrap(),
        memory_mib: 4096,
        cpus: 4,
        state: HostState::Up,
        cordoned: false,
        labels: Default::default(),
    }
}

fn vm(name: &str, host: u32) -> Vm {
    Vm {
        name: name.into(),
        host: HostId(host),
        memory_mib: 1024,
        vcpus: 1,
        state: VmState::Running,
        migratable: true,
        local_storage: false,
        unmovable: None,
        restart_policy: RestartPolicy::Manual,
        anti_affinity: None,
        allowed_hosts: None,
    }
}

fn cluster() -> Cluster {
    let mut local = vm("local", 1);
    local.local_storage = true;
    Cluster {
        settings: Vec::new(),
        name: "c".into(),
        target_version: "2.0".parse().unwrap(),
        policy: Policy::default(),
        hosts: vec![
            host("m", HostRole::Master),
            host("a", HostRole::Compute),
            host("b", HostRole::Compute),
        ],
        vms: vec![vm("v0", 0), vm("v1", 1), local, vm("v2", 2)],
    }
}

/// A minimal platform: applies every command to a copy of the cluster and answers at once.
struct Platform {
    cluster: Cluster,
    boots: Vec<u32>,
    fail_upgrade_of: Option<HostId>,
    never_reboots: bool,
    compatibility_level: Option<String>,
    /// Raises of the compatibility level that fail before one succeeds.
    compatibility_failures_left: u32,
    /// The platform refuses to start a VM anywhere but on the host it started the run on
    /// (no memory left elsewhere).
    refuse_starts_elsewhere: bool,
    start_vm_calls: usize,
    /// Exits from maintenance refused before one works (the platform still upgrading).
    exit_maintenance_refusals_left: u32,
    /// Blocking settings that are on, and what resolving each saved.
    settings_on: Vec<PlatformSetting>,
    settings_saved: BTreeMap<PlatformSetting, String>,
    resolve_failures_left: u32,
    restore_failures_left: u32,
    /// Every call answered, by name (and setting label), in order.
    calls: Vec<String>,
    /// Migrations of this VM to this host, its home, are refused this many times.
    refuse_moving_back: Option<(VmId, HostId, u32)>,
}

impl Platform {
    fn new(cluster: &Cluster) -> Self {
        Platform {
            cluster: cluster.clone(),
            boots: vec![1; cluster.hosts.len()],
            fail_upgrade_of: None,
            never_reboots: false,
            compatibility_level: None,
            compatibility_failures_left: 0,
            refuse_starts_elsewhere: false,
            start_vm_calls: 0,
            exit_maintenance_refusals_left: 0,
            settings_on: cluster.settings.clone(),
            settings_saved: BTreeMap::new(),
            resolve_failures_left: 0,
            restore_failures_left: 0,
            calls: Vec::new(),
            refuse_moving_back: None,
        }
    }

    fn facts(&self, host: HostId) -> Observation {
        let spec = self.cluster.host(host);
        Observation::HostFacts(HostFacts {
            version: spec.version.clone(),
            boot_id: format!("boot-{}", self.boots[host.index()]),
            in_maintenance: spec.state == HostState::Maintenance,
            cordoned: spec.cordoned,
        })
    }

    fn answer(&mut self, command: &Command) -> Outcome {
        let ok = |o| Outcome::Succeeded(o);
        let label = command.kind.setting().map(|s| format!(" {}", s.label()));
        self.calls.push(format!(
            "{}{}",
            command.kind.name(),
            label.unwrap_or_default()
        ));
        match &command.kind {
            CommandKind::Discover => ok(Observation::Discovered(Discovered {
                settings: Some(self.settings_on.clone()),
                hosts: self.cluster.hosts.clone(),
                vms: self.cluster.vms.clone(),
            })),
            CommandKind::ReadHostFacts { host } => ok(self.facts(*host)),
            CommandKind::HealthCheck { .. } => ok(Observation::Nothing),
            CommandKind::Cordon { host } => {
                self.cluster.hosts[host.index()].cordoned = true;
                ok(Observation::Nothing)
            }
            CommandKind::Uncordon { host } => {
                self.cluster.hosts[host.index()].cordoned = false;
                ok(Observation::Nothing)
            }
            CommandKind::EnterMaintenance { host } => {
                self.cluster.hosts[host.index()].state = HostState::Maintenance;
                ok(Observation::Nothing)
            }
            CommandKind::ExitMaintenance { host } => {
                if self.exit_maintenance_refusals_left > 0 {
                    self.exit_maintenance_refusals_left -= 1;
                    return Outcome::Failed {
                        error: "the upgrade is in progress".into(),
                        refused: true,
                    };
                }
                self.cluster.hosts[host.index()].state = HostState::Up;
                ok(Observation::Nothing)
            }
            CommandKind::Migrate { vm, from, to } => {
                if let Some((refused, home, left)) = self.refuse_moving_back.as_mut() {
                    if *refused == *vm && *to == *home && *from != *home && *left > 0 {
                        *left -= 1;
                        return Outcome::Failed {
                            error: "the DRBD resync is not finished".into(),
                            refused: true,
                        };
                    }
                }
                self.cluster.vms[vm.index()].host = *to;
                ok(Observation::Nothing)
            }
            CommandKind::ShutdownVm { vm, .. } => {
                self.cluster.vms[vm.index()].state = VmState::Stopped;
                ok(Observation::ShutDown { forced: false })
            }
            CommandKind::SuspendVm { vm, .. } | CommandKind::ShelveVm { vm, .. } => {
                self.cluster.vms[vm.index()].state = VmState::Stopped;
                ok(Observation::Nothing)
            }
            CommandKind::ResumeVm { vm, host } | CommandKind::UnshelveVm { vm, host } => {
                let spec = &mut self.cluster.vms[vm.index()];
                spec.state = VmState::Running;
                spec.host = *host;
                ok(Observation::Nothing)
            }
            CommandKind::StartVm { vm, host } => {
                self.start_vm_calls += 1;
                let home = self.cluster.vms[vm.index()].host;
                if self.refuse_starts_elsewhere && *host != home {
                    return Outcome::Failed {
                        error: "not enough free memory on the host".into(),
                        refused: true,
                    };
                }
                let spec = &mut self.cluster.vms[vm.index()];
                spec.state = VmState::Running;
                spec.host = *host;
                ok(Observation::Nothing)
            }
            CommandKind::Upgrade { host, target } => {
                if self.fail_upgrade_of == Some(*host) {
                    return Outcome::Failed {
                        error: "installer exited 1".into(),
                        refused: false,
                    };
                }
                self.cluster.hosts[host.index()].version = target.clone();
                ok(Observation::Nothing)
            }
            CommandKind::Reboot { host, .. } => {
                if !self.never_reboots {
                    self.boots[host.index()] += 1;
                }
                ok(Observation::Nothing)
            }
            CommandKind::SetCompatibilityLevel { level } => {
                if self.compatibility_failures_left > 0 {
                    self.compatibility_failures_left -= 1;
                    return Outcome::Failed {
                        error: "the engine refused the level".into(),
                        refused: false,
                    };
                }
                self.compatibility_level = Some(level.clone());
                ok(Observation::Nothing)
            }
            CommandKind::ResolveSetting { setting } => {
                if self.resolve_failures_left > 0 {
                    self.resolve_failures_left -= 1;
                    return Outcome::Failed {
                        error: "HA_OPERATION_WOULD_BREAK_FAILOVER_PLAN".into(),
                        refused: true,
                    };
                }
                if let Some(at) = self.settings_on.iter().position(|s| s == setting) {
                    self.settings_on.remove(at);
                    let saved = format!("saved {}", setting.label());
                    self.settings_saved.insert(setting.clone(), saved);
                }
                let saved = self.settings_saved.get(setting).cloned();
                ok(Observation::SettingResolved {
                    saved: saved.unwrap_or_default(),
                })
            }
            CommandKind::RestoreSetting { setting, saved } => {
                if self.restore_failures_left > 0 {
                    self.restore_failures_left -= 1;
                    return Outcome::Failed {
                        error: "the pool is busy".into(),
                        refused: false,
                    };
                }
                assert_eq!(
                    self.settings_saved.get(setting),
                    Some(saved),
                    "restored with what was saved"
                );
                if !self.settings_on.contains(setting) {
                    self.settings_on.push(setting.clone());
                }
                ok(Observation::Nothing)
            }
        }
    }
}

/// Runs until finished or stuck; returns the number of commands answered.
fn drive(execution: &mut Execution, platform: &mut Platform, now: &mut Millis) -> usize {
    drive_recording(execution, platform, now).len()
}

/// Runs until finished or stuck, recording every command in the order it was issued.
fn drive_recording(
    execution: &mut Execution,
    platform: &mut Platform,
    now: &mut Millis,
) -> Vec<CommandKind> {
    let mut issued = Vec::new();
    for _ in 0..10_000 {
        if let Some(command) = execution.poll_command() {
            issued.push(command.kind.clone());
            let outcome = platform.answer(&command);
            *now += 1_000;
            execution.handle(
                *now,
                Input::Outcome {
                    command: command.id,
                    outcome,
                },
            );
            continue;
        }
        match execution.next_wakeup() {
            Some(at) if !execution.is_finished() => {
                *now = at;
                execution.handle(at, Input::Tick);
            }
            _ => break,
        }
    }
    issued
}

#[test]
fn a_clean_run_upgrades_every_host_and_restores_everything() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    let mut now = 1_000_000;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
    let report = execution.report();
    assert_eq!(report.hosts_upgraded.len(), 3);
    assert!(platform
        .cluster
        .hosts
        .iter()
        .all(|h| h.version == "2.0".parse().unwrap()));
    assert!(platform
        .cluster
        .hosts
        .iter()
        .all(|h| !h.cordoned && h.state == HostState::Up));
    assert!(platform
        .cluster
        .vms
        .iter()
        .all(|v| v.state == VmState::Running));
    // Every host rebooted (the platform's upgrade does not reboot by itself).
    assert!(platform.boots.iter().all(|b| *b == 2));
    assert_eq!(report.shutdowns, 1);
    assert_eq!(
        platform.cluster.vms[2].host,
        HostId(1),
        "the local VM came back on its own host"
    );
}

#[test]
fn a_failed_upgrade_halts_and_abort_restores_service() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    platform.fail_upgrade_of = Some(HostId(0));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert!(
        matches!(execution.phase(), RunPhase::Halted { .. }),
        "{:?}",
        execution.phase()
    );
    let status = execution.status();
    let master = status.hosts.iter().find(|h| h.host == HostId(0)).unwrap();
    assert_eq!(master.step, HostStep::UpgradeFailed);
    assert_eq!(master.attempts, 3, "retried up to the cap");
    assert!(status
        .conditions
        .iter()
        .any(|c| c.kind == "Degraded" && c.status));
    // Nothing else started while the master is down.
    assert!(status
        .hosts
        .iter()
        .all(|h| h.host == HostId(0) || h.step == HostStep::Waiting));
    assert!(execution
        .check_operator(&OperatorCommand::Skip { host: "a".into() })
        .is_err());
    execution.handle(now, Input::Operator(OperatorCommand::Abort));
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Aborted);
    let master = &platform.cluster.hosts[0];
    assert!(
        !master.cordoned && master.state == HostState::Up,
        "abort brought the master back"
    );
}

#[test]
fn skip_goes_on_without_the_failed_host() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    platform.fail_upgrade_of = Some(HostId(1));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    execution.handle(
        now,
        Input::Operator(OperatorCommand::Skip { host: "a".into() }),
    );
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(
        execution.phase(),
        &RunPhase::Completed,
        "{:?}",
        execution.status()
    );
    let report = execution.report();
    assert_eq!(report.hosts_skipped.len(), 1);
    assert_eq!(report.hosts_upgraded.len(), 2);
    assert!(platform
        .cluster
        .vms
        .iter()
        .all(|v| v.state == VmState::Running));
    assert!(platform
        .cluster
        .hosts
        .iter()
        .all(|h| !h.cordoned && h.state == HostState::Up));
}

#[test]
fn a_host_that_never_reboots_fails_after_drover_reboots_it() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    platform.never_reboots = true;
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    let status = execution.status();
    let master = status.hosts.iter().find(|h| h.host == HostId(0)).unwrap();
    assert_eq!(master.step, HostStep::UpgradeFailed);
    assert!(
        master
            .last_error
            .as_deref()
            .unwrap()
            .contains("did not reboot"),
        "{master:?}"
    );
}

#[test]
fn manual_mode_waits_for_continue_and_approval_gates_the_start() {
    let mut cluster = cluster();
    cluster.policy.mode = UpgradeMode::Manual;
    cluster.policy.approval = ApprovalMode::Manual;
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    assert_eq!(
        drive(&mut execution, &mut platform, &mut now),
        0,
        "nothing before approval"
    );
    execution.handle(now, Input::Operator(OperatorCommand::Approve));
    drive(&mut execution, &mut platform, &mut now);
    let status = execution.status();
    assert!(status
        .hosts
        .iter()
        .any(|h| h.step == HostStep::AwaitingManualUpgrade));
    // The operator "runs the installer" and says continue, host by host.
    for _ in 0..3 {
        let waiting = execution
            .status()
            .hosts
            .iter()
            .find(|h| h.step == HostStep::AwaitingManualUpgrade)
            .map(|h| h.host);
        let host = waiting.expect("a host waits for its manual upgrade");
        platform.cluster.hosts[host.index()].version = "2.0".parse().unwrap();
        platform.boots[host.index()] += 1;
        let name = platform.cluster.hosts[host.index()].name.clone();
        execution.handle(
            now,
            Input::Operator(OperatorCommand::Continue { host: name }),
        );
        drive(&mut execution, &mut platform, &mut now);
    }
    assert_eq!(execution.phase(), &RunPhase::Completed);
}

#[test]
fn replaying_the_inputs_rebuilds_the_same_state() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster.clone(), now);
    let mut inputs = Vec::new();
    for _ in 0..12 {
        let command = execution.poll_command().unwrap();
        let outcome = platform.answer(&command);
        now += 500;
        let input = Input::Outcome {
            command: command.id,
            outcome,
        };
        inputs.push((now, input.clone()));
        execution.handle(now, input);
    }
    let mut replayed = Execution::new(cluster, 0);
    for (at, input) in inputs {
        while replayed.poll_command().is_some() {}
        replayed.handle(at, input);
    }
    assert_eq!(replayed.status(), execution.status());
    let pending: Vec<Command> = std::iter::from_fn(|| execution.poll_command()).collect();
    let replayed_pending: Vec<Command> = std::iter::from_fn(|| replayed.poll_command()).collect();
    assert_eq!(pending, replayed_pending);
}

#[test]
fn no_new_host_starts_outside_a_maintenance_window() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    // The first wave started at once; close the window and let it finish.
    execution.handle(
        now,
        Input::WindowChanged {
            open: false,
            next_opening_at: None,
        },
    );
    drive(&mut execution, &mut platform, &mut now);
    let status = execution.status();
    assert_eq!(
        status.waves_started, 1,
        "nothing new while the window is closed"
    );
    assert!(status
        .conditions
        .iter()
        .any(|c| c.kind == "Paused" && c.status && c.message.contains("window")));
    execution.handle(
        now,
        Input::WindowChanged {
            open: true,
            next_opening_at: None,
        },
    );
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
}

#[test]
fn restarts_are_evicted_in_batches() {
    let mut cluster = cluster();
    cluster.policy.batch_eviction_size = 2;
    cluster.policy.batch_eviction_interval_secs = 600;
    cluster.policy.max_unavailable = MaxUnavailable::Count(1);
    // Five VMs without tools on host b, restarted elsewhere.
    for index in 0..5 {
        let mut no_tools = vm(&format!("nt{index}"), 2);
        no_tools.migratable = false;
        no_tools.restart_policy = RestartPolicy::Always;
        no_tools.memory_mib = 256;
        cluster.vms.push(no_tools);
    }
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    let mut shutdown_times = Vec::new();
    for _ in 0..10_000 {
        if let Some(command) = execution.poll_command() {
            if let CommandKind::ShutdownVm { vm, .. } = command.kind {
                if platform.cluster.vm(vm).name.starts_with("nt") {
                    shutdown_times.push(now);
                }
            }
            let outcome = platform.answer(&command);
            now += 1_000;
            execution.handle(
                now,
                Input::Outcome {
                    command: command.id,
                    outcome,
                },
            );
        } else if let Some(at) = execution.next_wakeup() {
            now = at;
            execution.handle(at, Input::Tick);
        } else {
            break;
        }
    }
    assert_eq!(execution.phase(), &RunPhase::Completed);
    // Five restarts in batches of two: three batches, each a full interval after the last.
    assert_eq!(shutdown_times.len(), 5, "{shutdown_times:?}");
    let batch_starts: Vec<u64> = shutdown_times.chunks(2).map(|batch| batch[0]).collect();
    for pair in batch_starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 600_000 - 5_000,
            "batches too close: {shutdown_times:?}"
        );
    }
}

fn raising_cluster(level: &str) -> Cluster {
    let mut cluster = cluster();
    cluster.policy.raise_compatibility_level_to = Some(level.into());
    cluster
}

#[test]
fn the_compatibility_level_is_raised_after_the_last_host() {
    let cluster = raising_cluster("4.14");
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    assert_eq!(
        execution
            .initial_plan()
            .final_compatibility_level
            .as_deref(),
        Some("4.14")
    );
    let mut kinds = Vec::new();
    while let Some(command) = execution.poll_command() {
        kinds.push(command.kind.name());
        if let CommandKind::SetCompatibilityLevel { .. } = command.kind {
            let status = execution.status();
            assert!(
                status.hosts.iter().all(|h| h.step == HostStep::Done),
                "raised before every host was done: {status:?}"
            );
        }
        let outcome = platform.answer(&command);
        now += 1_000;
        let input = Input::Outcome {
            command: command.id,
            outcome,
        };
        execution.handle(now, input);
    }
    assert_eq!(kinds.last(), Some(&"set-compatibility-level"));
    assert_eq!(execution.phase(), &RunPhase::Completed);
    assert_eq!(platform.compatibility_level.as_deref(), Some("4.14"));
    let report = execution.report();
    assert_eq!(report.compatibility_level_raised.as_deref(), Some("4.14"));
    let completed = execution.status().conditions.pop().unwrap();
    assert!(
        completed
            .message
            .contains("compatibility level raised to 4.14"),
        "{completed:?}"
    );
}

#[test]
fn a_failed_raise_halts_refuses_skip_and_retry_raises_it() {
    let cluster = raising_cluster("4.14");
    let mut platform = Platform::new(&cluster);
    platform.compatibility_failures_left = 4;
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    let RunPhase::Halted { reason } = execution.phase().clone() else {
        panic!("not halted: {:?}", execution.phase());
    };
    assert_eq!(
        reason,
        "raising the cluster compatibility level to 4.14 failed: the engine refused the level"
    );
    assert_eq!(platform.compatibility_failures_left, 1, "three attempts");
    let refused = execution.check_operator(&OperatorCommand::Skip { host: "a".into() });
    assert!(
        matches!(refused, Err(OperatorError::CompatibilityRaiseNotSkippable { ref level }) if level == "4.14"),
        "{refused:?}"
    );
    execution.handle(now, Input::Operator(OperatorCommand::Retry));
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
    assert_eq!(platform.compatibility_level.as_deref(), Some("4.14"));
}

#[test]
fn abort_after_a_failed_raise_finishes_without_raising() {
    let cluster = raising_cluster("4.14");
    let mut platform = Platform::new(&cluster);
    platform.compatibility_failures_left = 3;
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert!(matches!(execution.phase(), RunPhase::Halted { .. }));
    execution.handle(now, Input::Operator(OperatorCommand::Abort));
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Aborted);
    assert_eq!(platform.compatibility_level, None);
    assert_eq!(execution.report().compatibility_level_raised, None);
}

#[test]
fn a_raise_in_flight_when_abort_comes_completes_the_run() {
    let cluster = raising_cluster("4.14");
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    while let Some(command) = execution.poll_command() {
        if let CommandKind::SetCompatibilityLevel { .. } = command.kind {
            execution.handle(now, Input::Operator(OperatorCommand::Abort));
        }
        let outcome = platform.answer(&command);
        now += 1_000;
        let input = Input::Outcome {
            command: command.id,
            outcome,
        };
        execution.handle(now, input);
    }
    assert_eq!(execution.phase(), &RunPhase::Completed);
    assert_eq!(
        execution.report().compatibility_level_raised.as_deref(),
        Some("4.14")
    );
}

#[test]
fn a_skipped_host_below_the_target_keeps_the_level_unraised() {
    let cluster = raising_cluster("4.14");
    let mut platform = Platform::new(&cluster);
    platform.fail_upgrade_of = Some(HostId(1));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    execution.handle(
        now,
        Input::Operator(OperatorCommand::Skip { host: "a".into() }),
    );
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
    assert_eq!(platform.compatibility_level, None);
    let completed = execution.status().conditions.pop().unwrap();
    assert!(
        completed
            .message
            .contains("not raised to 4.14: hosts below the target: a"),
        "{completed:?}"
    );
}

#[test]
fn a_host_left_out_of_the_selection_drops_the_final_step_with_a_warning() {
    let mut cluster = raising_cluster("4.14");
    cluster.policy.only_hosts = Some(["a".to_string()].into());
    let plan = crate::planner::plan(&cluster);
    assert!(plan.is_feasible());
    assert_eq!(plan.final_compatibility_level, None);
    let warning = plan
        .prechecks
        .iter()
        .find(|c| c.id == "compatibility-level")
        .expect("a compatibility-level precheck");
    assert_eq!(warning.status, crate::plan::CheckStatus::Warn);
    assert_eq!(warning.subjects, vec!["m".to_string(), "b".to_string()]);
}

#[test]
fn replaying_a_run_halted_on_the_raise_rebuilds_it_and_retry_goes_on() {
    let cluster = raising_cluster("4.14");
    let mut platform = Platform::new(&cluster);
    platform.compatibility_failures_left = 3;
    let mut now = 0;
    let mut execution = Execution::new(cluster.clone(), now);
    let mut inputs = Vec::new();
    while let Some(command) = execution.poll_command() {
        let outcome = platform.answer(&command);
        now += 1_000;
        let input = Input::Outcome {
            command: command.id,
            outcome,
        };
        inputs.push((now, input.clone()));
        execution.handle(now, input);
        if let Some(at) = execution
            .next_wakeup()
            .filter(|_| execution.commands_in_flight() == 0)
        {
            now = at;
            inputs.push((now, Input::Tick));
            execution.handle(now, Input::Tick);
        }
    }
    assert!(matches!(execution.phase(), RunPhase::Halted { .. }));
    let mut replayed = Execution::new(cluster, 0);
    for (at, input) in inputs {
        while replayed.poll_command().is_some() {}
        replayed.handle(at, input);
    }
    assert_eq!(replayed.status(), execution.status());
    replayed.handle(now, Input::Operator(OperatorCommand::Retry));
    let retried = replayed.poll_command().expect("retry raises again");
    assert_eq!(
        retried.kind,
        CommandKind::SetCompatibilityLevel {
            level: "4.14".into()
        }
    );
    assert_eq!(
        retried.attempt, 1,
        "fresh attempts after the operator's retry"
    );
}

/// A cluster whose host b runs one VM that cannot live-migrate and is restarted elsewhere.
fn restarting_cluster() -> Cluster {
    let mut cluster = cluster();
    let mut no_tools = vm("no-tools", 2);
    no_tools.migratable = false;
    no_tools.restart_policy = RestartPolicy::Always;
    cluster.vms.push(no_tools);
    cluster
}

#[test]
fn a_refused_start_is_retried_with_backoff_and_a_cap_then_comes_back_on_its_own_host() {
    let mut cluster = restarting_cluster();
    cluster.policy.max_step_attempts = 2;
    let mut platform = Platform::new(&cluster);
    platform.refuse_starts_elsewhere = true;
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    let mut start_times = Vec::new();
    for _ in 0..10_000 {
        if let Some(command) = execution.poll_command() {
            if matches!(command.kind, CommandKind::StartVm { vm, .. } if vm == VmId(4)) {
                start_times.push(now);
            }
            let outcome = platform.answer(&command);
            now += 1_000;
            execution.handle(
                now,
                Input::Outcome {
                    command: command.id,
                    outcome,
                },
            );
        } else if let Some(at) = execution.next_wakeup() {
            now = at;
            execution.handle(at, Input::Tick);
        } else {
            break;
        }
    }
    assert_eq!(
        execution.phase(),
        &RunPhase::Completed,
        "{:?}",
        execution.status()
    );
    // Two refused starts elsewhere (the cap), a backoff between them, then one start at home.
    assert_eq!(start_times.len(), 3, "{start_times:?}");
    assert!(
        start_times[1] - start_times[0] >= 5_000,
        "no backoff between refused starts: {start_times:?}"
    );
    let no_tools = &platform.cluster.vms[4];
    assert_eq!(no_tools.state, VmState::Running);
    assert_eq!(no_tools.host, HostId(2), "re-planned onto its own host");
}

/// Drives like `drive`, checking after every answer that no more hosts are in maintenance
/// than `max_unavailable` allows.
fn drive_within_unavailable(
    execution: &mut Execution,
    platform: &mut Platform,
    now: &mut Millis,
    max_unavailable: usize,
) {
    for _ in 0..10_000 {
        if let Some(command) = execution.poll_command() {
            let outcome = platform.answer(&command);
            let in_maintenance: Vec<&str> = platform
                .cluster
                .hosts
                .iter()
                .filter(|h| h.state == HostState::Maintenance)
                .map(|h| h.name.as_str())
                .collect();
            assert!(
                in_maintenance.len() <= max_unavailable,
                "hosts in maintenance at once: {in_maintenance:?}"
            );
            *now += 1_000;
            execution.handle(
                *now,
                Input::Outcome {
                    command: command.id,
                    outcome,
                },
            );
        } else if let Some(at) = execution.next_wakeup().filter(|_| !execution.is_finished()) {
            *now = at;
            execution.handle(at, Input::Tick);
        } else {
            break;
        }
    }
}

#[test]
fn a_skipped_host_still_in_maintenance_holds_the_next_wave_until_it_is_back() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    platform.fail_upgrade_of = Some(HostId(2));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert!(matches!(execution.phase(), RunPhase::Halted { .. }));
    // The platform keeps upgrading host a: its exit from maintenance is refused a few times.
    platform.fail_upgrade_of = None;
    platform.exit_maintenance_refusals_left = 3;
    execution.handle(
        now,
        Input::Operator(OperatorCommand::Skip { host: "b".into() }),
    );
    drive_within_unavailable(&mut execution, &mut platform, &mut now, 1);
    assert_eq!(
        execution.phase(),
        &RunPhase::Completed,
        "{:?}",
        execution.status()
    );
    assert!(platform
        .cluster
        .hosts
        .iter()
        .all(|h| h.state == HostState::Up));
    assert!(execution.report().restore_errors.is_empty());
}

#[test]
fn a_skipped_host_that_cannot_leave_maintenance_halts_the_run_and_is_reported() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    platform.fail_upgrade_of = Some(HostId(2));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    platform.exit_maintenance_refusals_left = u32::MAX;
    execution.handle(
        now,
        Input::Operator(OperatorCommand::Skip { host: "b".into() }),
    );
    drive_within_unavailable(&mut execution, &mut platform, &mut now, 1);
    let RunPhase::Halted { reason } = execution.phase() else {
        panic!("the run went on: {:?}", execution.status());
    };
    assert!(
        reason.contains("host b was skipped but is still in maintenance"),
        "{reason}"
    );
    let report = execution.report();
    assert_eq!(report.restore_errors.len(), 1, "{report:?}");
    // Once the platform lets it go, `retry` brings it back and the run completes.
    platform.exit_maintenance_refusals_left = 0;
    execution.handle(now, Input::Operator(OperatorCommand::Retry));
    drive_within_unavailable(&mut execution, &mut platform, &mut now, 1);
    assert_eq!(
        execution.phase(),
        &RunPhase::Completed,
        "{:?}",
        execution.status()
    );
    assert!(platform
        .cluster
        .hosts
        .iter()
        .all(|h| h.state == HostState::Up));
}

#[test]
fn with_windows_nothing_starts_before_the_engine_says_one_is_open_and_it_wakes_at_the_opening() {
    let mut cluster = cluster();
    cluster.policy.windows = vec![MaintenanceWindow {
        days: vec![6],
        start_minute: 3 * 60,
        end_minute: 4 * 60,
    }];
    let mut platform = Platform::new(&cluster);
    let mut now = 1_000;
    let mut execution = Execution::new(cluster, now);
    assert_eq!(
        execution.poll_command(),
        None,
        "a host started before the window opened"
    );
    let opening = 5 * 3600 * 1000;
    execution.handle(
        now,
        Input::WindowChanged {
            open: false,
            next_opening_at: Some(opening),
        },
    );
    assert_eq!(execution.poll_command(), None);
    assert_eq!(
        execution.next_wakeup(),
        Some(opening),
        "asks to be woken at the opening"
    );
    assert_eq!(execution.status().waiting_for_window, Some(Some(opening)));
    now = opening;
    execution.handle(
        now,
        Input::WindowChanged {
            open: true,
            next_opening_at: None,
        },
    );
    assert_eq!(execution.status().waiting_for_window, None);
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
}

#[test]
fn a_skipped_last_host_left_in_maintenance_completes_with_its_restore_error_reported() {
    let cluster = cluster();
    let mut platform = Platform::new(&cluster);
    // Host a is the last wave: nothing waits behind it.
    platform.fail_upgrade_of = Some(HostId(1));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    platform.exit_maintenance_refusals_left = u32::MAX;
    execution.handle(
        now,
        Input::Operator(OperatorCommand::Skip { host: "a".into() }),
    );
    drive_within_unavailable(&mut execution, &mut platform, &mut now, 1);
    assert_eq!(execution.phase(), &RunPhase::Completed);
    let report = execution.report();
    assert_eq!(
        report.restore_errors.len(),
        1,
        "never silently dropped: {report:?}"
    );
}

mod blocking_settings_tests;

mod returns_tests;

/// The three-host cluster with a VM to suspend on `a` and one to shelve on `b`, neither able to
/// live-migrate.
fn cluster_with_suspend_and_shelve() -> Cluster {
    let mut c = cluster();
    let mut suspend = vm("keeps-memory", 1);
    suspend.migratable = false;
    suspend.unmovable = Some(Unmovable::Suspend);
    let mut shelve = vm("shelved", 2);
    shelve.migratable = false;
    shelve.unmovable = Some(Unmovable::Shelve);
    c.vms.push(suspend);
    c.vms.push(shelve);
    c
}

#[test]
fn a_suspend_resumes_on_its_own_host_and_a_shelve_unshelves_elsewhere() {
    let cluster = cluster_with_suspend_and_shelve();
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
    let report = execution.report();
    assert_eq!((report.suspends, report.shelves), (1, 1));
    assert_eq!(report.shutdowns, 1, "the local VM is still shut down");
    for call in ["suspend-vm", "resume-vm", "shelve-vm", "unshelve-vm"] {
        assert_eq!(
            platform.calls.iter().filter(|c| *c == call).count(),
            1,
            "{call} once in {:?}",
            platform.calls
        );
    }
    let suspended = &platform.cluster.vms[4];
    assert_eq!(suspended.host, HostId(1), "resumed on its own host");
    assert_eq!(suspended.state, VmState::Running);
    let shelved = &platform.cluster.vms[5];
    assert_ne!(shelved.host, HostId(2), "unshelved on another host");
    assert_eq!(shelved.state, VmState::Running);
    let suspend_at = platform.calls.iter().position(|c| c == "suspend-vm");
    let resume_at = platform.calls.iter().position(|c| c == "resume-vm");
    let upgrades_before_resume = platform.calls[..resume_at.unwrap()]
        .iter()
        .filter(|c| *c == "upgrade")
        .count();
    assert!(suspend_at < resume_at);
    assert!(
        upgrades_before_resume >= 2,
        "resumed only after its host's upgrade: {:?}",
        platform.calls
    );
}

#[test]
fn abort_resumes_a_suspended_vm_rather_than_booting_it() {
    let cluster = cluster_with_suspend_and_shelve();
    let mut platform = Platform::new(&cluster);
    platform.fail_upgrade_of = Some(HostId(1));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert!(matches!(execution.phase(), RunPhase::Halted { .. }));
    assert_eq!(platform.cluster.vms[4].state, VmState::Stopped);
    execution.handle(now, Input::Operator(OperatorCommand::Abort));
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(platform.cluster.vms[4].state, VmState::Running);
    assert_eq!(platform.cluster.vms[4].host, HostId(1));
    assert_eq!(
        platform.calls.iter().filter(|c| *c == "resume-vm").count(),
        1
    );
    // The one start is the local VM's, shut down on the same host; the suspended VM is resumed.
    assert_eq!(
        platform.calls.iter().filter(|c| *c == "start-vm").count(),
        1,
        "{:?}",
        platform.calls
    );
}
