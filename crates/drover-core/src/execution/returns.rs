//! The returns of a wave (`Wave::returns`): once every host of the wave is done or skipped, each
//! planned return whose home host was upgraded (not skipped) and whose VM still runs where the
//! wave's action left it becomes a live migration back home, run like any migration (limits,
//! timeouts, retries, journaled commands). A return that cannot run or fails for good leaves the
//! VM where it is: no halt, the report says so, and the re-plan starts from what is observed.
//!
//! Must not know how the planner chose the returns: it reads the plan's data only.

use super::vms::{VmPhase, VmRun};
use super::{Execution, HostStep};

impl Execution {
    /// Turns the wave's planned returns into VM runs (pending; `advance_vms` starts them).
    pub(super) fn start_returns(&mut self) {
        let returns = std::mem::take(&mut self.wave_returns);
        for action in &returns {
            let Some(home) = action.to else { continue };
            let home_upgraded = self.hosts[home.index()].step == HostStep::Done;
            let out_move_done = self.vms.get(&action.vm).is_some_and(|run| {
                !run.is_return()
                    && run.phase == VmPhase::Done
                    && run.from == home
                    && run.to == Some(action.from)
            });
            if !home_upgraded || !out_move_done {
                continue;
            }
            let run = VmRun::new_return(action, self.waves_started, self.now);
            if let Some(out_move) = self.vms.insert(action.vm, run) {
                self.replaced_vm_actions.push((action.vm, out_move));
            }
        }
        self.wave_returns = returns;
        self.advance_vms();
    }

    /// Whether a return of this wave is still pending or migrating.
    pub(super) fn returns_running(&self) -> bool {
        self.vms.values().any(|run| {
            run.is_return() && matches!(run.phase, VmPhase::Pending | VmPhase::Migrating)
        })
    }

    /// Moves the finished returns out of the per-VM map into the report's list, so that no later
    /// wave mistakes one for an action of its own hosts (a return's source is a host not
    /// upgraded yet).
    pub(super) fn finish_returns(&mut self) {
        let finished: Vec<_> = self
            .vms
            .iter()
            .filter(|(_, run)| run.is_return())
            .map(|(vm, _)| *vm)
            .collect();
        for vm in finished {
            if let Some(run) = self.vms.remove(&vm) {
                self.replaced_vm_actions.push((vm, run));
            }
        }
        self.wave_returns.clear();
    }
}
