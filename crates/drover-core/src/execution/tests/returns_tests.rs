//! Returns in a run (`Wave::returns`): after a wave's hosts are done, constrained VMs migrate
//! back home before the re-plan and the next wave; a kill mid-return resumes by replay; a return
//! that fails for good leaves the VM where it is and the run goes on.

use super::*;
use crate::plan::{Action, ActionKind};

/// Three compute hosts in a DRBD ring: d{i} runs on host i and may go only to host i+1. One host
/// per wave, so the first wave's VM waits on an old host and comes back.
fn drbd_ring() -> Cluster {
    let mut cluster = cluster();
    cluster.hosts = vec![
        host("a", HostRole::Compute),
        host("b", HostRole::Compute),
        host("c", HostRole::Compute),
    ];
    cluster.vms = (0..3u32)
        .map(|i| {
            let mut vm = vm(&format!("d{i}"), i);
            let mut allowed = vec![HostId(i), HostId((i + 1) % 3)];
            allowed.sort();
            vm.allowed_hosts = Some(allowed);
            vm
        })
        .collect();
    cluster.policy.max_unavailable = MaxUnavailable::Count(1);
    cluster
}

fn first_return(cluster: &Cluster) -> Action {
    let plan = crate::planner::plan(cluster);
    assert!(
        plan.summary.returns > 0,
        "the ring plan has returns: {plan:?}"
    );
    plan.waves[0].returns[0]
}

#[test]
fn a_return_runs_after_its_wave_is_uncordoned_and_before_the_next_discovery() {
    let cluster = drbd_ring();
    let back = first_return(&cluster);
    let home = back.to.unwrap();
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    let issued = drive_recording(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed);
    let position = |wanted: &CommandKind| issued.iter().position(|kind| kind == wanted);
    let return_call = position(&CommandKind::Migrate {
        vm: back.vm,
        from: back.from,
        to: home,
    })
    .expect("the return was issued");
    let uncordon_home = position(&CommandKind::Uncordon { host: home }).unwrap();
    assert!(uncordon_home < return_call, "{issued:?}");
    let next_discovery = issued[return_call..]
        .iter()
        .position(|kind| *kind == CommandKind::Discover)
        .expect("a discovery follows the return");
    let next_cordon = issued[return_call..]
        .iter()
        .position(|kind| matches!(kind, CommandKind::Cordon { .. }))
        .expect("a later wave cordons its host");
    assert!(next_discovery < next_cordon, "{issued:?}");
    let report = execution.report();
    assert!(report.returns >= 1, "{report:?}");
    assert_eq!(report.returns_failed, 0);
    let listed = report
        .vm_actions
        .iter()
        .find(|action| action.is_return && action.vm == back.vm)
        .expect("the report lists the return");
    assert_eq!(
        (listed.kind, listed.phase, listed.from, listed.to),
        (ActionKind::Migrate, "done", back.from, Some(home))
    );
    assert!(platform
        .cluster
        .vms
        .iter()
        .all(|v| v.state == VmState::Running));
}

#[test]
fn a_run_killed_mid_return_resumes_by_replay_and_reissues_the_return() {
    let cluster = drbd_ring();
    let back = first_return(&cluster);
    let mut platform = Platform::new(&cluster);
    let mut now = 0;
    let mut execution = Execution::new(cluster.clone(), now);
    let return_call = CommandKind::Migrate {
        vm: back.vm,
        from: back.from,
        to: back.to.unwrap(),
    };
    let mut inputs = Vec::new();
    // Answer everything until the return is issued, then "kill" the process before its answer.
    loop {
        let command = execution.poll_command().expect("the run goes on");
        if command.kind == return_call {
            break;
        }
        let outcome = platform.answer(&command);
        now += 500;
        let input = Input::Outcome {
            command: command.id,
            outcome,
        };
        inputs.push((now, input.clone()));
        execution.handle(now, input);
    }
    let mut resumed = Execution::new(cluster, 0);
    for (at, input) in inputs {
        while resumed.poll_command().is_some() {}
        resumed.handle(at, input);
    }
    assert_eq!(resumed.status(), execution.status());
    let reissued: Vec<Command> = std::iter::from_fn(|| resumed.poll_command()).collect();
    assert!(
        reissued.iter().any(|command| command.kind == return_call),
        "{reissued:?}"
    );
    let return_status = resumed
        .status()
        .vms
        .into_iter()
        .find(|vm| vm.is_return)
        .expect("the return is in flight");
    assert_eq!(return_status.phase, "migration");
    // The resumed run answers the re-issued calls and finishes.
    for command in reissued {
        let outcome = platform.answer(&command);
        now += 500;
        resumed.handle(
            now,
            Input::Outcome {
                command: command.id,
                outcome,
            },
        );
    }
    drive(&mut resumed, &mut platform, &mut now);
    assert_eq!(resumed.phase(), &RunPhase::Completed);
    assert!(resumed.report().returns >= 1);
}

#[test]
fn a_failed_return_leaves_the_vm_where_it_is_and_the_run_completes() {
    let cluster = drbd_ring();
    let back = first_return(&cluster);
    let mut platform = Platform::new(&cluster);
    platform.refuse_moving_back = Some((back.vm, back.to.unwrap(), 3));
    let mut now = 0;
    let mut execution = Execution::new(cluster, now);
    let issued = drive_recording(&mut execution, &mut platform, &mut now);
    assert_eq!(execution.phase(), &RunPhase::Completed, "{issued:?}");
    let report = execution.report();
    assert_eq!(report.returns_failed, 1, "{report:?}");
    assert!(report.hosts_failed.is_empty());
    assert_eq!(report.hosts_upgraded.len(), 3);
    let failed = report
        .vm_actions
        .iter()
        .find(|action| action.is_return && action.vm == back.vm)
        .expect("the report lists the failed return");
    assert_eq!(failed.phase, "failed");
    assert!(failed.failed_attempts >= 1);
    // The VM never stopped; its old host's own wave moved it on.
    assert_eq!(
        platform.cluster.vms[back.vm.index()].state,
        VmState::Running
    );
    assert_eq!(report.downtime, Vec::new());
}
