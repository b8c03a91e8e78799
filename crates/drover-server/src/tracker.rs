//! What the core does not keep: when each host entered each step (the timeline of a Gantt
//! chart), since when each VM action is in its phase, and how long each driver call took. Fed
//! with the execution after every engine event (live), or rebuilt by replaying a run's journal
//! input by input (runs driven elsewhere, and a resumed run's past).
//!
//! This module knows the core's status and the journal records; it must not know HTTP.

use std::collections::BTreeMap;

use drover_core::execution::{CommandId, Execution, HostStep};
use drover_core::{HostId, VmId};
use drover_engine::{EngineError, StoredRun};

/// One step one host went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSpan {
    pub host: String,
    pub wave: Option<usize>,
    pub step: &'static str,
    pub from_ms: u64,
    pub to_ms: Option<u64>,
}

/// A host changed step (for the event stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepChange {
    pub host: String,
    pub step: &'static str,
    pub at_ms: u64,
}

/// Timeline and phase clocks of one run.
#[derive(Default)]
pub struct Tracker {
    host_steps: Vec<HostStep>,
    open_span: Vec<Option<usize>>,
    timeline: Vec<StepSpan>,
    vm_phases: BTreeMap<VmId, (&'static str, u64)>,
    calls_started_ms: BTreeMap<CommandId, u64>,
}

impl Tracker {
    /// Compares the execution with what was seen last and records every change at `at_ms`.
    pub fn observe(&mut self, execution: &Execution, at_ms: u64) -> Vec<StepChange> {
        let cluster = execution.cluster();
        if self.host_steps.len() < cluster.hosts.len() {
            self.host_steps
                .resize(cluster.hosts.len(), HostStep::Waiting);
            self.open_span.resize(cluster.hosts.len(), None);
        }
        let mut changes = Vec::new();
        for id in cluster.host_ids() {
            let status = execution.host_status(id);
            if status.step != self.host_steps[id.index()] {
                self.enter_step(execution, id, status.step, status.wave, at_ms);
                changes.push(StepChange {
                    host: cluster.host(id).name.clone(),
                    step: status.step.name(),
                    at_ms,
                });
            }
        }
        for vm in execution.status().vms {
            let entry = self.vm_phases.entry(vm.vm).or_insert((vm.phase, at_ms));
            if entry.0 != vm.phase {
                *entry = (vm.phase, at_ms);
            }
        }
        changes
    }

    fn enter_step(
        &mut self,
        execution: &Execution,
        host: HostId,
        step: HostStep,
        wave: Option<usize>,
        at_ms: u64,
    ) {
        self.host_steps[host.index()] = step;
        if let Some(open) = self.open_span[host.index()].take() {
            self.timeline[open].to_ms = Some(at_ms);
        }
        // Waiting, done and skipped are not work: they get no bar of their own.
        if matches!(step, HostStep::Waiting | HostStep::Done | HostStep::Skipped) {
            return;
        }
        self.open_span[host.index()] = Some(self.timeline.len());
        self.timeline.push(StepSpan {
            host: execution.cluster().host(host).name.clone(),
            wave,
            step: step.name(),
            from_ms: at_ms,
            to_ms: None,
        });
    }

    pub fn timeline(&self) -> &[StepSpan] {
        &self.timeline
    }

    /// Since when a VM action is in its current phase.
    pub fn vm_phase_since(&self, vm: VmId) -> Option<u64> {
        self.vm_phases.get(&vm).map(|(_, since)| *since)
    }

    /// A driver call started (platform time).
    pub fn call_started(&mut self, command: CommandId, at_ms: u64) {
        self.calls_started_ms.insert(command, at_ms);
    }

    /// A driver call answered: how long it took in platform time, if its start was seen.
    pub fn call_finished(&mut self, command: CommandId, at_ms: u64) -> Option<u64> {
        self.calls_started_ms
            .remove(&command)
            .map(|started| at_ms.saturating_sub(started))
    }
}

/// A run rebuilt from its journal, with its timeline.
pub struct Replayed {
    pub execution: Execution,
    pub tracker: Tracker,
    /// Platform time of the last journal entry.
    pub last_at_ms: u64,
}

/// Replays a run's journal input by input (read-only), recording every step change.
pub fn replay_with_timeline(stored: &StoredRun) -> Result<Replayed, EngineError> {
    let mut tracker = Tracker::default();
    let replayed = stored.replay(&mut |execution, at_ms| {
        tracker.observe(execution, at_ms);
    })?;
    Ok(Replayed {
        execution: replayed.execution,
        tracker,
        last_at_ms: replayed.last_at_ms,
    })
}
