//! Argv templates: a command as a list of arguments with placeholders (`{host}`, `{vm}`, …),
//! checked once when a driver is built and rendered for every call.
//!
//! Rendering substitutes values *inside* each argument and never splits or joins arguments: a
//! value with spaces, quotes, `;`, `$(…)` or newlines stays exactly one argument, so a hostile VM
//! name cannot add arguments or commands. The program (the first argument) must be fixed text.
//! `{{` and `}}` are literal braces.
//!
//! A shell reads values only where the operator asks for one: in the SCRIPT of
//! `[sh, -c, SCRIPT, ...]` (also `bash`, `dash`, `ash`, `ksh`, `mksh`, `zsh`; exactly `-c`) and in
//! every argument after `ssh` (ssh joins them into one remote command line). There values are
//! shell-quoted with `shlex::try_quote`, and a placeholder where quoting cannot protect it
//! (inside quotes, a comment, backticks, `${…}`, after a here-document) is a configuration
//! error (see the `shell` module). Drover recognises a shell or ssh only as the program itself, not behind
//! `sudo`, `env` or `timeout`: there values are passed raw, which is safe for those programs
//! but not for a shell they might start.
//!
//! Every placeholder must be known and have a value for its step ([`Placeholder::available_for`]);
//! both are checked by [`ArgvTemplate::for_step`], so a mistake is found when the driver is built,
//! not halfway through an upgrade.
//!
//! A value that starts with `-` at the start of a word (a VM named `--help`) would be read as an
//! option by most programs: rendering refuses it unless an earlier argument is exactly `--` (the
//! usual end of options) or the template was built with
//! [`ArgvTemplate::allowing_option_like_values`].
//!
//! This module knows nothing of processes, drivers or where values come from.

mod shell;
mod syntax;

use std::collections::{BTreeMap, BTreeSet};

use drover_schema::inventory::CommandStep;

use crate::error::{CommandError, StepContext};
use shell::{ShellPiece, ValueQuoting};
use syntax::RawSegment;

/// A value Drover can put into a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placeholder {
    /// `{host}`: the host's name (in `migrate`: the source host).
    Host,
    /// `{host.address}`: how to reach the host (its name unless an address is configured).
    HostAddress,
    /// `{vm}`: the VM's name.
    Vm,
    /// `{from}`: the host a VM migrates from.
    From,
    /// `{to}`: the host a VM migrates to.
    To,
    /// `{to.address}`: how to reach the destination host.
    ToAddress,
    /// `{target}`: the version to install.
    Target,
    /// `{boot_id_before}`: the boot id the host had before its upgrade; a reboot is done when
    /// the host's boot id differs from it.
    BootIdBefore,
    /// `{graceful_timeout_secs}`: whole seconds a VM gets to shut down before it is powered off.
    GracefulTimeoutSecs,
    /// `{cluster}`: the cluster's name.
    Cluster,
    /// `{level}`: the cluster compatibility level to set after the last host.
    Level,
    /// `{hops}`: the releases to install in order, comma-separated (the release catalog's path;
    /// just the target without a catalog).
    Hops,
    /// `{hotfixes}`: the hotfixes to apply after the last hop, comma-separated, prerequisites
    /// first; empty when there are none.
    Hotfixes,
    /// `{reboots}`: how many reboots the window needs by the catalog (1 without a catalog).
    Reboots,
}

impl Placeholder {
    pub const ALL: [Placeholder; 14] = [
        Placeholder::Host,
        Placeholder::HostAddress,
        Placeholder::Vm,
        Placeholder::From,
        Placeholder::To,
        Placeholder::ToAddress,
        Placeholder::Target,
        Placeholder::BootIdBefore,
        Placeholder::GracefulTimeoutSecs,
        Placeholder::Cluster,
        Placeholder::Level,
        Placeholder::Hops,
        Placeholder::Hotfixes,
        Placeholder::Reboots,
    ];

    /// The name written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Host => "host",
            Placeholder::HostAddress => "host.address",
            Placeholder::Vm => "vm",
            Placeholder::From => "from",
            Placeholder::To => "to",
            Placeholder::ToAddress => "to.address",
            Placeholder::Target => "target",
            Placeholder::BootIdBefore => "boot_id_before",
            Placeholder::GracefulTimeoutSecs => "graceful_timeout_secs",
            Placeholder::Cluster => "cluster",
            Placeholder::Level => "level",
            Placeholder::Hops => "hops",
            Placeholder::Hotfixes => "hotfixes",
            Placeholder::Reboots => "reboots",
        }
    }

    pub fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The placeholders that have a value in a step's command.
    pub fn available_for(step: CommandStep) -> &'static [Placeholder] {
        use Placeholder::*;
        match step {
            CommandStep::Discover => &[Cluster],
            CommandStep::HostFacts
            | CommandStep::HealthCheck
            | CommandStep::Cordon
            | CommandStep::Uncordon
            | CommandStep::EnterMaintenance
            | CommandStep::ExitMaintenance => &[Host, HostAddress, Cluster],
            CommandStep::Upgrade => &[Host, HostAddress, Target, Hops, Hotfixes, Reboots, Cluster],
            CommandStep::Reboot => &[Host, HostAddress, BootIdBefore, Cluster],
            CommandStep::Migrate => &[Vm, From, To, ToAddress, Host, HostAddress, Cluster],
            CommandStep::ShutdownVm => &[Vm, Host, HostAddress, GracefulTimeoutSecs, Cluster],
            CommandStep::StartVm => &[Vm, Host, HostAddress, Cluster],
            CommandStep::SetCompatibilityLevel => &[Level, Cluster],
        }
    }
}

/// `{a}, {b}, …` for messages.
fn braced_names(placeholders: &[Placeholder]) -> String {
    let names: Vec<String> = placeholders
        .iter()
        .map(|p| format!("{{{}}}", p.name()))
        .collect();
    names.join(", ")
}

/// The values of one call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlaceholderValues {
    values: BTreeMap<Placeholder, String>,
}

impl PlaceholderValues {
    pub fn new() -> Self {
        PlaceholderValues::default()
    }

    pub fn with(mut self, placeholder: Placeholder, value: impl Into<String>) -> Self {
        self.values.insert(placeholder, value.into());
        self
    }

    pub fn get(&self, placeholder: Placeholder) -> Option<&str> {
        self.values.get(&placeholder).map(String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Value(Placeholder),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ArgumentTemplate {
    segments: Vec<Segment>,
    quoting: ValueQuoting,
}

impl ArgumentTemplate {
    fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Value(placeholder) => Some(*placeholder),
            Segment::Literal(_) => None,
        })
    }
}

/// A checked command template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgvTemplate {
    step: String,
    program: String,
    arguments: Vec<ArgumentTemplate>,
    /// Whether values starting with `-` may stand where a program reads options.
    option_like_values_allowed: bool,
}

impl ArgvTemplate {
    /// Checks `argv` as the command of an inventory step.
    pub fn for_step(step: CommandStep, argv: &[String]) -> Result<ArgvTemplate, CommandError> {
        ArgvTemplate::parse(step.as_str(), Placeholder::available_for(step), argv)
    }

    /// Checks `argv` as a command that will get values for `available` only; `step` names it in
    /// messages. For callers with steps of their own (hooks of another driver).
    pub fn parse(
        step: &str,
        available: &[Placeholder],
        argv: &[String],
    ) -> Result<ArgvTemplate, CommandError> {
        let Some(program) = argv.first() else {
            return Err(CommandError::EmptyArgv { step: step.into() });
        };
        let parsed = argv
            .iter()
            .enumerate()
            .map(|(index, argument)| parse_argument(step, index, argument))
            .collect::<Result<Vec<_>, _>>()?;
        if parsed[0].iter().any(|s| matches!(s, Segment::Value(_))) {
            return Err(CommandError::PlaceholderInProgram {
                step: step.into(),
                program: program.clone(),
            });
        }
        check_available(step, available, &parsed)?;
        let quoting = value_quoting(step, argv, &parsed)?;
        let arguments = parsed
            .into_iter()
            .zip(quoting)
            .map(|(segments, quoting)| ArgumentTemplate { segments, quoting })
            .collect();
        let template = ArgvTemplate {
            step: step.into(),
            program: program.clone(),
            arguments,
            option_like_values_allowed: false,
        };
        template.check_shell_places()?;
        Ok(template)
    }

    /// The same template, passing values that start with `-` anywhere (the operator said the
    /// program reads them as values).
    pub fn allowing_option_like_values(mut self) -> ArgvTemplate {
        self.option_like_values_allowed = true;
        self
    }

    /// The step name given when the template was checked.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// The program, as written (fixed text).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Every placeholder the template uses.
    pub fn placeholders(&self) -> BTreeSet<Placeholder> {
        self.arguments
            .iter()
            .flat_map(ArgumentTemplate::placeholders)
            .collect()
    }

    /// The argv for one call: each argument with its values substituted (shell-quoted where a
    /// shell reads them), never split or joined.
    pub fn render(
        &self,
        context: &StepContext,
        values: &PlaceholderValues,
    ) -> Result<Vec<String>, CommandError> {
        let end_of_options = self
            .arguments
            .iter()
            .position(|argument| argument.segments == [Segment::Literal("--".to_string())]);
        self.arguments
            .iter()
            .enumerate()
            .map(|(index, argument)| {
                let values_are_options = !self.option_like_values_allowed
                    && end_of_options.is_none_or(|end| index < end);
                if values_are_options {
                    self.refuse_option_like_value(argument, context, values)?;
                }
                render_argument(argument, context, values)
            })
            .collect()
    }

    /// Fails when a value starting with `-` begins a word of `argument`: the argument itself
    /// (the program reads each argument as a word) or, in shell text, a word after blanks.
    fn refuse_option_like_value(
        &self,
        argument: &ArgumentTemplate,
        context: &StepContext,
        values: &PlaceholderValues,
    ) -> Result<(), CommandError> {
        let mut at_word_start = true;
        for segment in &argument.segments {
            match segment {
                Segment::Literal(text) => {
                    at_word_start = argument.quoting == ValueQuoting::ShellQuoted
                        && text.ends_with(|c: char| c.is_ascii_whitespace());
                }
                Segment::Value(placeholder) => {
                    let value = value_of(*placeholder, context, values)?;
                    if at_word_start && value.starts_with('-') {
                        return Err(CommandError::OptionLikeValue {
                            context: Box::new(context.clone()),
                            program: self.program.clone(),
                            placeholder: placeholder.name().into(),
                            value: value.to_string(),
                        });
                    }
                    at_word_start = false;
                }
            }
        }
        Ok(())
    }

    /// Refuses a placeholder in shell text where quoting would not protect its value.
    fn check_shell_places(&self) -> Result<(), CommandError> {
        let shell_read: Vec<&ArgumentTemplate> = self
            .arguments
            .iter()
            .filter(|a| a.quoting == ValueQuoting::ShellQuoted)
            .collect();
        let values: Vec<Placeholder> = shell_read.iter().flat_map(|a| a.placeholders()).collect();
        // ssh joins its arguments with spaces; so does this scan.
        let pieces = shell_read.iter().enumerate().flat_map(|(index, argument)| {
            let separator = (index > 0).then_some(ShellPiece::Text(" "));
            separator
                .into_iter()
                .chain(argument.segments.iter().map(|segment| match segment {
                    Segment::Literal(text) => ShellPiece::Text(text),
                    Segment::Value(_) => ShellPiece::Value,
                }))
        });
        match shell::first_unsafe_value(pieces) {
            None => Ok(()),
            Some((value_index, place)) => {
                let placeholder = values[value_index].name();
                Err(CommandError::UnsafeShellPlaceholder {
                    step: self.step.clone(),
                    placeholder: placeholder.into(),
                    problem: place
                        .explanation()
                        .replace("{placeholder}", &format!("{{{placeholder}}}")),
                })
            }
        }
    }
}

fn parse_argument(step: &str, index: usize, argument: &str) -> Result<Vec<Segment>, CommandError> {
    let raw = syntax::split_argument(argument).map_err(|problem| CommandError::BraceSyntax {
        step: step.into(),
        argument_index: index,
        argument: argument.into(),
        problem,
    })?;
    raw.into_iter()
        .map(|segment| match segment {
            RawSegment::Literal(text) => Ok(Segment::Literal(text)),
            RawSegment::Placeholder(name) => Placeholder::from_name(&name)
                .map(Segment::Value)
                .ok_or_else(|| CommandError::UnknownPlaceholder {
                    step: step.into(),
                    placeholder: name,
                    known: braced_names(&Placeholder::ALL),
                }),
        })
        .collect()
}

fn check_available(
    step: &str,
    available: &[Placeholder],
    arguments: &[Vec<Segment>],
) -> Result<(), CommandError> {
    let unavailable = arguments
        .iter()
        .flatten()
        .find_map(|segment| match segment {
            Segment::Value(placeholder) if !available.contains(placeholder) => Some(*placeholder),
            _ => None,
        });
    match unavailable {
        None => Ok(()),
        Some(placeholder) => Err(CommandError::PlaceholderNotAvailable {
            step: step.into(),
            placeholder: placeholder.name().into(),
            available: braced_names(available),
        }),
    }
}

/// How each argument's values are substituted: shell-quoted where a shell will read them.
fn value_quoting(
    step: &str,
    argv: &[String],
    arguments: &[Vec<Segment>],
) -> Result<Vec<ValueQuoting>, CommandError> {
    let program = argv[0].as_str();
    let quoted_from = |first: usize, last: usize| {
        (0..argv.len())
            .map(|index| match index >= first && index <= last {
                true => ValueQuoting::ShellQuoted,
                false => ValueQuoting::Raw,
            })
            .collect()
    };
    if shell::is_ssh(program) {
        return Ok(quoted_from(1, argv.len()));
    }
    if shell::is_shell(program) {
        if argv.len() >= 3 && argv[1] == "-c" {
            return Ok(quoted_from(2, 2));
        }
        refuse_hidden_script(step, argv, arguments)?;
    }
    Ok(vec![ValueQuoting::Raw; argv.len()])
}

/// A shell given `-ec` or `-o x -c`: Drover cannot be sure which argument is the script, so it
/// refuses placeholders rather than pass them raw into shell text.
fn refuse_hidden_script(
    step: &str,
    argv: &[String],
    arguments: &[Vec<Segment>],
) -> Result<(), CommandError> {
    let has_values = arguments
        .iter()
        .flatten()
        .any(|s| matches!(s, Segment::Value(_)));
    let option = argv[1..].iter().find(|a| shell::is_command_option(a));
    match (has_values, option) {
        (true, Some(option)) => Err(CommandError::AmbiguousShellInvocation {
            step: step.into(),
            program: argv[0].clone(),
            option: option.clone(),
        }),
        _ => Ok(()),
    }
}

fn render_argument(
    argument: &ArgumentTemplate,
    context: &StepContext,
    values: &PlaceholderValues,
) -> Result<String, CommandError> {
    let mut rendered = String::new();
    for segment in &argument.segments {
        match segment {
            Segment::Literal(text) => rendered.push_str(text),
            Segment::Value(placeholder) => {
                let value = value_of(*placeholder, context, values)?;
                match argument.quoting {
                    ValueQuoting::Raw => rendered.push_str(value),
                    ValueQuoting::ShellQuoted => rendered.push_str(
                        &shlex::try_quote(value).map_err(|_| unpassable(*placeholder, context))?,
                    ),
                }
            }
        }
    }
    Ok(rendered)
}

/// A value that can be passed at all: an argument cannot hold a NUL byte.
fn value_of<'a>(
    placeholder: Placeholder,
    context: &StepContext,
    values: &'a PlaceholderValues,
) -> Result<&'a str, CommandError> {
    let value = values
        .get(placeholder)
        .ok_or_else(|| CommandError::MissingValue {
            context: Box::new(context.clone()),
            placeholder: placeholder.name().into(),
        })?;
    if value.contains('\0') {
        return Err(unpassable(placeholder, context));
    }
    Ok(value)
}

fn unpassable(placeholder: Placeholder, context: &StepContext) -> CommandError {
    CommandError::UnpassableValue {
        context: Box::new(context.clone()),
        placeholder: placeholder.name().into(),
    }
}
