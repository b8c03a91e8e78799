//! Blocking platform settings (HA, WLB, a VM's CD/DVD) in a run: resolved before the first host,
//! put back when the run completes or is aborted, rebuilt by replay.

use super::*;
use crate::plan::CheckStatus;

fn settings_cluster(auto_resolve: bool) -> Cluster {
    let mut cluster = cluster();
    cluster.policy.auto_resolve = auto_resolve;
    cluster.settings = vec![
        PlatformSetting::pool(SettingKind::HaEnabled),
        PlatformSetting::pool(SettingKind::WlbEnabled),
        PlatformSetting::of_vm(SettingKind::VmMediaInserted, "v1"),
    ];
    cluster
}

/// Index of the first call whose name starts with `prefix`.
fn first_call(platform: &Platform, prefix: &str) -> usize {
    platform
        .calls
        .iter()
        .position(|call| call.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} call in {:?}", platform.calls))
}

fn last_call(platform: &Platform, prefix: &str) -> usize {
    platform
        .calls
        .iter()
        .rposition(|call| call.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} call in {:?}", platform.calls))
}

/// Calls that change a host or a VM.
const HOST_CALLS: [&str; 5] = [
    "cordon",
    "enter-maintenance",
    "migrate",
    "shutdown-vm",
    "upgrade",
];

#[test]
fn without_auto_resolve_each_kind_of_setting_fails_its_precheck_and_nothing_is_planned() {
    let plan = crate::planner::plan(&settings_cluster(false));
    assert!(plan.waves.is_empty());
    let ha = plan
        .prechecks
        .iter()
        .find(|c| c.id == "ha-enabled")
        .unwrap();
    assert_eq!(ha.status, CheckStatus::Fail);
    assert!(ha.resolvable);
    assert_eq!(ha.subjects, vec!["c".to_string()]);
    assert!(ha.message.contains("auto_resolve"), "{}", ha.message);
    let media = plan
        .prechecks
        .iter()
        .find(|c| c.id == "vm-media-inserted")
        .unwrap();
    assert_eq!(media.subjects, vec!["v1".to_string()]);
    assert!(plan.prechecks.iter().any(|c| c.id == "wlb-enabled"));
}

#[test]
fn with_auto_resolve_the_prechecks_warn_what_drover_changes_and_puts_back() {
    let plan = crate::planner::plan(&settings_cluster(true));
    assert!(plan.is_feasible());
    let ha = plan
        .prechecks
        .iter()
        .find(|c| c.id == "ha-enabled")
        .unwrap();
    assert_eq!(ha.status, CheckStatus::Warn);
    assert!(ha.message.contains("enables it again"), "{}", ha.message);
    let media = plan
        .prechecks
        .iter()
        .find(|c| c.id == "vm-media-inserted")
        .unwrap();
    assert_eq!(media.status, CheckStatus::Warn);
    assert!(
        media.message.contains("does not insert it again"),
        "{}",
        media.message
    );
}

#[test]
fn a_cluster_without_settings_gets_no_setting_precheck() {
    let plan = crate::planner::plan(&cluster());
    let ids = ["ha-enabled", "wlb-enabled", "vm-media-inserted"];
    assert!(plan.prechecks.iter().all(|c| !ids.contains(&c.id)));
}

#[test]
fn settings_are_resolved_before_the_first_host_and_put_back_after_the_last() {
    let cluster = settings_cluster(true);
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
    let last_resolve = last_call(&platform, "resolve-setting");
    for name in HOST_CALLS {
        assert!(
            first_call(&platform, name) > last_resolve,
            "{:?}",
            platform.calls
        );
    }
    let first_restore = first_call(&platform, "restore-setting");
    for name in HOST_CALLS {
        assert!(
            last_call(&platform, name) < first_restore,
            "{:?}",
            platform.calls
        );
    }
    // HA and WLB are back, the CD stays ejected (no restore call for it).
    assert_eq!(
        platform.settings_on,
        vec![
            PlatformSetting::pool(SettingKind::HaEnabled),
            PlatformSetting::pool(SettingKind::WlbEnabled),
        ]
    );
    let restores: Vec<&String> = platform
        .calls
        .iter()
        .filter(|c| c.starts_with("restore-setting"))
        .collect();
    assert_eq!(restores.len(), 2, "each restorable setting restored once");
    let report = execution.report();
    let steps: Vec<(String, SettingStep)> = report
        .settings
        .iter()
        .map(|s| (s.setting.label(), s.step))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("ha-enabled".to_string(), SettingStep::Restored),
            ("wlb-enabled".to_string(), SettingStep::Restored),
            ("vm-media-inserted on v1".to_string(), SettingStep::Resolved),
        ]
    );
    assert_eq!(
        report.settings[0].saved.as_deref(),
        Some("saved ha-enabled")
    );
}

#[test]
fn a_resolve_that_keeps_failing_halts_before_any_host_naming_the_precheck_and_retry_goes_on() {
    let cluster = settings_cluster(true);
    let mut platform = Platform::new(&cluster);
    platform.resolve_failures_left = 1_000;
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    let RunPhase::Halted { reason } = execution.phase().clone() else {
        panic!("not halted: {:?}", execution.phase());
    };
    assert!(reason.starts_with("precheck ha-enabled:"), "{reason}");
    assert!(reason.contains("no host was touched"), "{reason}");
    assert!(
        platform
            .calls
            .iter()
            .all(|c| !HOST_CALLS.iter().any(|h| c.starts_with(h))
                && !c.starts_with("read-host-facts")),
        "{:?}",
        platform.calls
    );
    platform.resolve_failures_left = 0;
    execution.handle(now, Input::Operator(OperatorCommand::Retry));
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(
        execution.phase(),
        &RunPhase::Completed,
        "{:?}",
        execution.phase()
    );
    assert!(platform
        .settings_on
        .contains(&PlatformSetting::pool(SettingKind::HaEnabled)));
}

#[test]
fn abort_puts_back_what_was_resolved_even_when_one_setting_could_not_be() {
    let mut cluster = settings_cluster(true);
    // WLB resolves first here, then HA keeps failing.
    cluster.settings.swap(0, 1);
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    // The first resolve (WLB) succeeds; every later one fails.
    let wlb = execution.poll_command().unwrap();
    let outcome = platform.answer(&wlb);
    platform.resolve_failures_left = 100;
    now += 1_000;
    execution.handle(
        now,
        Input::Outcome {
            command: wlb.id,
            outcome,
        },
    );
    drive(&mut execution, &mut platform, &mut now);
    assert!(matches!(execution.phase(), RunPhase::Halted { .. }));
    assert!(!platform
        .settings_on
        .contains(&PlatformSetting::pool(SettingKind::WlbEnabled)));
    execution.handle(now, Input::Operator(OperatorCommand::Abort));
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Aborted);
    assert!(platform
        .settings_on
        .contains(&PlatformSetting::pool(SettingKind::WlbEnabled)));
    let restores = platform
        .calls
        .iter()
        .filter(|c| c.starts_with("restore-setting"))
        .count();
    assert_eq!(restores, 1, "only WLB was changed: {:?}", platform.calls);
}

#[test]
fn abort_mid_run_restores_the_hosts_and_the_settings() {
    let cluster = settings_cluster(true);
    let mut platform = Platform::new(&cluster);
    platform.fail_upgrade_of = Some(HostId(0));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert!(matches!(execution.phase(), RunPhase::Halted { .. }));
    execution.handle(now, Input::Operator(OperatorCommand::Abort));
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Aborted);
    assert!(platform
        .settings_on
        .contains(&PlatformSetting::pool(SettingKind::HaEnabled)));
    assert!(platform
        .settings_on
        .contains(&PlatformSetting::pool(SettingKind::WlbEnabled)));
    assert!(!platform.cluster.hosts[0].cordoned);
}

#[test]
fn a_failing_restore_is_retried_and_the_run_completes_only_once_it_is_back() {
    let cluster = settings_cluster(true);
    let mut platform = Platform::new(&cluster);
    platform.restore_failures_left = 4;
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
    assert!(platform
        .settings_on
        .contains(&PlatformSetting::pool(SettingKind::HaEnabled)));
    assert!(platform
        .settings_on
        .contains(&PlatformSetting::pool(SettingKind::WlbEnabled)));
}

#[test]
fn replay_after_a_crash_between_resolve_and_restore_restores_exactly_once() {
    let cluster = settings_cluster(true);
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster.clone(), now);
    let mut inputs = Vec::new();
    // Run until the first restore is issued, recording inputs like the journal; the process
    // dies with the restore's intent unanswered.
    let restore = loop {
        let command = execution.poll_command().expect("the run goes on");
        if matches!(command.kind, CommandKind::RestoreSetting { .. }) {
            break command;
        }
        let outcome = platform.answer(&command);
        now += 1_000;
        let input = Input::Outcome {
            command: command.id,
            outcome,
        };
        inputs.push((now, input.clone()));
        execution.handle(now, input);
    };
    let mut replayed = Execution::new(cluster, 0);
    let mut reissued = Vec::new();
    for (at, input) in inputs {
        while replayed.poll_command().is_some() {}
        replayed.handle(at, input);
    }
    reissued.extend(std::iter::from_fn(|| replayed.poll_command()));
    assert_eq!(replayed.status(), execution.status());
    assert_eq!(
        reissued.first(),
        Some(&restore),
        "the unanswered restore, with its saved text"
    );
    let CommandKind::RestoreSetting { saved, .. } = &restore.kind else {
        unreachable!()
    };
    assert_eq!(
        saved, "saved ha-enabled",
        "the saved text came from the journal"
    );
    // The resumed process answers the re-issued intents; the run ends with each setting back
    // and one restore call per restorable setting.
    for command in reissued {
        let outcome = platform.answer(&command);
        now += 1_000;
        replayed.handle(
            now,
            Input::Outcome {
                command: command.id,
                outcome,
            },
        );
    }
    drive(&mut replayed, &mut platform, &mut now);
    assert_eq!(replayed.phase(), &RunPhase::Completed);
    let restores = platform
        .calls
        .iter()
        .filter(|c| c.starts_with("restore-setting"))
        .count();
    assert_eq!(restores, 2, "{:?}", platform.calls);
}

#[test]
fn a_setting_on_again_at_a_later_wave_is_resolved_again_and_restored_once() {
    let cluster = settings_cluster(true);
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    let mut turned_on_again = false;
    for _ in 0..10_000 {
        let Some(command) = execution.poll_command() else {
            break;
        };
        // Someone turns HA back on while the first wave runs.
        if !turned_on_again && matches!(command.kind, CommandKind::Upgrade { .. }) {
            platform
                .settings_on
                .push(PlatformSetting::pool(SettingKind::HaEnabled));
            turned_on_again = true;
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
    }
    assert_eq!(execution.phase(), &RunPhase::Completed);
    let resolves_of_ha = platform
        .calls
        .iter()
        .filter(|c| *c == "resolve-setting ha-enabled")
        .count();
    assert_eq!(resolves_of_ha, 2);
    let restores_of_ha = platform
        .calls
        .iter()
        .filter(|c| *c == "restore-setting ha-enabled")
        .count();
    assert_eq!(restores_of_ha, 1);
}

#[test]
fn nothing_is_resolved_before_approval_or_while_the_window_is_closed() {
    let mut cluster = settings_cluster(true);
    cluster.policy.approval = ApprovalMode::Manual;
    cluster.policy.windows = vec![MaintenanceWindow {
        days: vec![6],
        start_minute: 0,
        end_minute: 60,
    }];
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    drive(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::AwaitingApproval);
    assert!(platform.calls.is_empty(), "{:?}", platform.calls);
    execution.handle(now, Input::Operator(OperatorCommand::Approve));
    drive(&mut execution, &mut platform, &mut now);
    assert!(
        platform.calls.is_empty(),
        "window closed: {:?}",
        platform.calls
    );
    execution.handle(
        now,
        Input::WindowChanged {
            open: true,
            next_opening_at: None,
        },
    );
    let first = execution.poll_command().expect("the window is open");
    assert_eq!(first.kind.name(), "resolve-setting");
}
