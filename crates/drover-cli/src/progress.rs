//! Progress of a run on stderr: bars on a terminal (overall hosts and one line per host in the
//! current wave), plain log lines otherwise (also with `NO_COLOR`). Every log line starts with
//! the run's time: a UTC date, or for a simulated run an offset from its start (`+1h02m03s`),
//! since its clock is not the wall clock. Host step changes and VM actions (migrations,
//! shutdowns, starts, their failures) are logged. Follows engine events; knows no driver.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use drover_app::time_text::{offset, timestamp};
use drover_core::execution::{Command, CommandKind, Execution, HostStep, Outcome};
use drover_core::HostId;
use drover_engine::EngineEvent;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Finished wave bars kept on screen.
const FINISHED_WAVES_SHOWN: usize = 4;

/// Host lines shown at once; a larger wave is summarized by the overall bar.
const HOST_LINES_MAX: usize = 12;

pub struct Progress {
    bars: Option<Bars>,
    last_step: BTreeMap<HostId, HostStep>,
    /// Times are offsets from the run's start (simulated clock), not dates.
    simulated: bool,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// The bar of the wave in progress, and its number.
    wave: Option<(usize, ProgressBar)>,
    /// Bars of the last finished waves, oldest first (a long run keeps only a few).
    finished_waves: std::collections::VecDeque<ProgressBar>,
    hosts: BTreeMap<HostId, ProgressBar>,
}

impl Progress {
    pub fn new(execution: &Execution, simulated: bool) -> Self {
        let bars = bars_wanted().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let (done, total) = execution.host_totals();
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} hosts  {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            overall.set_prefix(execution.cluster().name.clone());
            overall.set_position(done as u64);
            Bars {
                multi,
                overall,
                wave: None,
                finished_waves: std::collections::VecDeque::new(),
                hosts: BTreeMap::new(),
            }
        });
        Progress {
            bars,
            last_step: BTreeMap::new(),
            simulated,
        }
    }

    pub fn on_event(&mut self, execution: &Execution, event: &EngineEvent<'_>) {
        match event {
            EngineEvent::Calling(command) => {
                self.on_vm_call(execution, command);
                self.on_host_activity(execution, command.kind.host(), Some(&command.kind))
            }
            EngineEvent::Answered { command, outcome } => {
                self.on_vm_answer(execution, command, outcome);
                self.on_host_activity(execution, command.kind.host(), None)
            }
            EngineEvent::Operator(command) => {
                self.log(execution, &format!("operator: {}", command.name()))
            }
            EngineEvent::Phase(phase) => self.log(execution, &format!("run {}", phase.name())),
        }
    }

    /// A VM action starts: logged as a line (bars show it on the host's line instead).
    fn on_vm_call(&self, execution: &Execution, command: &Command) {
        if self.bars.is_some() || vm_of(&command.kind).is_none() {
            return;
        }
        let attempt = match command.attempt {
            0 | 1 => String::new(),
            n => format!(" (attempt {n})"),
        };
        let cluster = execution.cluster();
        let what = match &command.kind {
            CommandKind::Migrate { vm, from, to } => format!(
                "{}: migrating {} → {}",
                cluster.vm(*vm).name,
                cluster.host(*from).name,
                cluster.host(*to).name
            ),
            CommandKind::ShutdownVm { vm, host, .. } => format!(
                "{}: shutting down on {}",
                cluster.vm(*vm).name,
                cluster.host(*host).name
            ),
            CommandKind::StartVm { vm, host } => format!(
                "{}: starting on {}",
                cluster.vm(*vm).name,
                cluster.host(*host).name
            ),
            CommandKind::SuspendVm { vm, host }
            | CommandKind::ResumeVm { vm, host }
            | CommandKind::ShelveVm { vm, host }
            | CommandKind::UnshelveVm { vm, host } => format!(
                "{}: {} on {}",
                cluster.vm(*vm).name,
                park_verb(&command.kind),
                cluster.host(*host).name
            ),
            _ => return,
        };
        let line = format!("vm {what}{attempt}");
        self.log(execution, &line);
    }

    /// A VM action's outcome: failures always, successes as plain lines only.
    fn on_vm_answer(&self, execution: &Execution, command: &Command, outcome: &Outcome) {
        let Some(vm) = vm_of(&command.kind) else {
            return;
        };
        let name = &execution.cluster().vm(vm).name;
        let step = command.kind.name();
        let line = match outcome {
            Outcome::Succeeded(_) if self.bars.is_some() => return,
            Outcome::Succeeded(_) => format!("vm {name}: {step} done"),
            Outcome::Failed { error, .. } => format!("vm {name}: {step} failed: {error}"),
            Outcome::TimedOut => format!("vm {name}: {step} timed out"),
        };
        self.log(execution, &line);
    }

    /// `[+1h02m03s]` for a simulated run, `[2026-12-06T01:02:03Z]` otherwise.
    fn time_prefix(&self, execution: &Execution) -> String {
        let now = execution.now();
        if self.simulated {
            let seconds = now.saturating_sub(execution.started_at()) / 1000;
            return format!("[{}]", offset(seconds));
        }
        format!("[{}]", timestamp(now))
    }

    fn on_host_activity(
        &mut self,
        execution: &Execution,
        host: Option<HostId>,
        calling: Option<&CommandKind>,
    ) {
        let Some(host) = host else {
            return;
        };
        if host.index() >= execution.cluster().hosts.len() {
            return;
        }
        let status = execution.host_status(host);
        let name = execution.cluster().host(host).name.clone();
        let changed = self.last_step.insert(host, status.step) != Some(status.step);
        let detail = calling
            .map(|kind| describe(execution, kind))
            .unwrap_or_default();
        match &mut self.bars {
            Some(bars) => bars.show(execution, host, &name, status.step, &detail),
            None if changed => {
                let error = status
                    .last_error
                    .filter(|_| status.step == HostStep::UpgradeFailed);
                let suffix = error.map(|e| format!(": {e}")).unwrap_or_default();
                let line = format!("host {name}: {}{suffix}", status.step.name());
                eprintln!("{} {line}", self.time_prefix(execution));
            }
            None => {}
        }
    }

    fn log(&self, execution: &Execution, line: &str) {
        let prefix = self.time_prefix(execution);
        match &self.bars {
            Some(bars) => bars.multi.suspend(|| eprintln!("{prefix} {line}")),
            None => eprintln!("{prefix} {line}"),
        }
    }

    pub fn finish(&mut self) {
        if let Some(bars) = self.bars.take() {
            for bar in bars.hosts.values() {
                bar.finish_and_clear();
            }
            if let Some((_, bar)) = bars.wave {
                bar.finish();
            }
            bars.overall.finish();
        }
    }
}

impl Bars {
    fn show(
        &mut self,
        execution: &Execution,
        host: HostId,
        name: &str,
        step: HostStep,
        detail: &str,
    ) {
        let (done, total) = execution.host_totals();
        self.overall.set_length(total as u64);
        self.overall.set_position(done as u64);
        self.show_wave(execution);
        if matches!(step, HostStep::Done | HostStep::Skipped) {
            if let Some(bar) = self.hosts.remove(&host) {
                bar.finish_and_clear();
            }
            return;
        }
        if !self.hosts.contains_key(&host) && self.hosts.len() >= HOST_LINES_MAX {
            return;
        }
        let bar = self.hosts.entry(host).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} {spinner} {msg}")
                    .expect("static template"),
            );
            bar.set_prefix(name.to_string());
            bar
        });
        bar.set_message(format!("{} {detail}", step.name()));
        bar.tick();
    }
}

impl Bars {
    /// One bar per wave: its hosts done out of its hosts; a finished wave's bar stays.
    fn show_wave(&mut self, execution: &Execution) {
        let (number, hosts) = execution.current_wave();
        if hosts.is_empty() {
            return;
        }
        if self.wave.as_ref().is_none_or(|(shown, _)| *shown != number) {
            if let Some((_, finished)) = self.wave.take() {
                finished.finish();
                self.finished_waves.push_back(finished);
                if self.finished_waves.len() > FINISHED_WAVES_SHOWN {
                    if let Some(oldest) = self.finished_waves.pop_front() {
                        oldest.finish_and_clear();
                        self.multi.remove(&oldest);
                    }
                }
            }
            // Below the overall bar and the finished waves, above the host lines.
            let position = 1 + self.finished_waves.len();
            let bar = self
                .multi
                .insert(position, ProgressBar::new(hosts.len() as u64));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:40}] {pos}/{len} hosts of this wave",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("wave {number}"));
            self.wave = Some((number, bar));
        }
        let finished = hosts
            .iter()
            .filter(|h| {
                matches!(
                    execution.host_status(**h).step,
                    HostStep::Done | HostStep::Skipped
                )
            })
            .count();
        if let Some((_, bar)) = &self.wave {
            bar.set_position(finished as u64);
        }
    }
}

/// Bars only on a terminal, and not with `NO_COLOR` (README: no bars and no colours then).
fn bars_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn vm_of(kind: &CommandKind) -> Option<drover_core::VmId> {
    match kind {
        CommandKind::Migrate { vm, .. }
        | CommandKind::ShutdownVm { vm, .. }
        | CommandKind::StartVm { vm, .. }
        | CommandKind::SuspendVm { vm, .. }
        | CommandKind::ResumeVm { vm, .. }
        | CommandKind::ShelveVm { vm, .. }
        | CommandKind::UnshelveVm { vm, .. } => Some(*vm),
        _ => None,
    }
}

/// The progress word of a suspend, resume, shelve or unshelve.
fn park_verb(kind: &CommandKind) -> &'static str {
    match kind {
        CommandKind::SuspendVm { .. } => "suspending",
        CommandKind::ResumeVm { .. } => "resuming",
        CommandKind::ShelveVm { .. } => "shelving",
        _ => "unshelving",
    }
}

fn describe(execution: &Execution, kind: &CommandKind) -> String {
    let cluster = execution.cluster();
    match kind {
        CommandKind::Migrate { vm, to, .. } => format!(
            "· migrating {} → {}",
            cluster.vm(*vm).name,
            cluster.host(*to).name
        ),
        CommandKind::ShutdownVm { vm, .. } => format!("· shutting down {}", cluster.vm(*vm).name),
        CommandKind::StartVm { vm, host } => format!(
            "· starting {} on {}",
            cluster.vm(*vm).name,
            cluster.host(*host).name
        ),
        CommandKind::SuspendVm { vm, .. } | CommandKind::ShelveVm { vm, .. } => {
            format!("· {} {}", park_verb(kind), cluster.vm(*vm).name)
        }
        CommandKind::ResumeVm { vm, host } | CommandKind::UnshelveVm { vm, host } => format!(
            "· {} {} on {}",
            park_verb(kind),
            cluster.vm(*vm).name,
            cluster.host(*host).name
        ),
        other => format!("· {}", other.name()),
    }
}
