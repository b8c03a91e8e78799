//! Argv templates: rendering keeps every value one argument, shells get quoted values, and every
//! configuration mistake is found when the template is checked, naming the step and placeholder.
//! Injection attempts are run through real processes to show that nothing extra executes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::argv;
use drover_command::{
    run_argv, ArgvTemplate, CommandError, Placeholder, PlaceholderValues, RunLimits, StepContext,
};
use drover_schema::inventory::CommandStep;

/// Values an attacker who can name a VM might choose. Each tries to run `touch CANARY`.
fn hostile_values(canary: &Path) -> Vec<String> {
    let canary = canary.display();
    vec![
        format!("x; touch {canary}"),
        format!("$(touch {canary})"),
        format!("`touch {canary}`"),
        format!("' ; touch {canary} ; '"),
        format!("\" ; touch {canary} ; \""),
        format!("a\ntouch {canary}"),
        format!("a\n touch {canary} #"),
        format!("x && touch {canary} || true"),
        format!("$'\\x27'; touch {canary}"),
        "two words".to_string(),
        "it's \"quoted\"".to_string(),
        "*".to_string(),
        "-n".to_string(),
        "--help".to_string(),
        "".to_string(),
        "\\".to_string(),
        "{vm}".to_string(),
    ]
}

fn context() -> StepContext {
    StepContext::new("shutdown_vm", "vm test")
}

fn values_with_vm(vm: &str) -> PlaceholderValues {
    PlaceholderValues::new()
        .with(Placeholder::Vm, vm)
        .with(Placeholder::Host, "xs01")
        .with(Placeholder::HostAddress, "10.0.0.1")
        .with(Placeholder::GracefulTimeoutSecs, "120")
        .with(Placeholder::Cluster, "pool-a")
}

async fn stdout_of(argv: &[String]) -> String {
    let output = run_argv(argv, RunLimits::with_timeout(Duration::from_secs(10)))
        .await
        .expect("the program starts");
    assert!(output.succeeded(), "{argv:?}: {output:?}");
    output.stdout
}

fn check(step: CommandStep, parts: &[&str]) -> Result<ArgvTemplate, CommandError> {
    ArgvTemplate::for_step(step, &argv(parts))
}

#[test]
fn every_placeholder_renders_inside_its_argument() {
    let template = ArgvTemplate::parse(
        "all",
        &Placeholder::ALL,
        &argv(&[
            "tool",
            "--host={host}@{host.address}",
            "{vm}",
            "{from}->{to}:{to.address}",
            "v{target}",
            "boot={boot_id_before}",
            "{graceful_timeout_secs}s",
            "{cluster}",
            "level={level}",
            "--hops={hops}",
            "--hotfixes={hotfixes}",
            "--reboots={reboots}",
            "{{literal}} }}{{",
        ]),
    )
    .unwrap();
    let values = Placeholder::ALL
        .into_iter()
        .fold(PlaceholderValues::new(), |values, placeholder| {
            values.with(placeholder, format!("<{}>", placeholder.name()))
        });
    let rendered = template.render(&context(), &values).unwrap();
    assert_eq!(
        rendered,
        argv(&[
            "tool",
            "--host=<host>@<host.address>",
            "<vm>",
            "<from>-><to>:<to.address>",
            "v<target>",
            "boot=<boot_id_before>",
            "<graceful_timeout_secs>s",
            "<cluster>",
            "level=<level>",
            "--hops=<hops>",
            "--hotfixes=<hotfixes>",
            "--reboots=<reboots>",
            "{literal} }{",
        ])
    );
    assert_eq!(template.placeholders().len(), Placeholder::ALL.len());
}

#[test]
fn values_are_never_split_or_joined_and_stay_raw_without_a_shell() {
    let template = check(
        CommandStep::ShutdownVm,
        &["virsh", "shutdown", "{vm}", "--"],
    )
    .unwrap();
    for vm in ["x; rm -rf /", "a b  c", "$(reboot)", "l1\nl2", "'\"", ""] {
        let rendered = template.render(&context(), &values_with_vm(vm)).unwrap();
        assert_eq!(rendered, argv(&["virsh", "shutdown", vm, "--"]));
    }
}

#[tokio::test]
async fn hostile_values_reach_a_program_unchanged_and_run_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let canary = directory.path().join("CANARY");
    // Quoting is under test here, not options: `-n` and `--help` are allowed through.
    let template = check(CommandStep::ShutdownVm, &["printf", "[%s]", "{vm}"])
        .unwrap()
        .allowing_option_like_values();
    for vm in hostile_values(&canary) {
        let rendered = template.render(&context(), &values_with_vm(&vm)).unwrap();
        assert_eq!(rendered.len(), 3, "{vm:?} stayed one argument");
        assert_eq!(stdout_of(&rendered).await, format!("[{vm}]"));
    }
    assert!(!canary.exists(), "a hostile value ran a command");
}

#[tokio::test]
async fn values_in_a_shell_script_are_quoted_and_run_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let canary = directory.path().join("CANARY");
    let script = "printf '[%s]' {vm}; printf '(%s)' pre{vm}post";
    let template = check(CommandStep::ShutdownVm, &["sh", "-c", script])
        .unwrap()
        .allowing_option_like_values();
    for vm in hostile_values(&canary) {
        let rendered = template.render(&context(), &values_with_vm(&vm)).unwrap();
        assert_eq!(rendered.len(), 3);
        assert_eq!(stdout_of(&rendered).await, format!("[{vm}](pre{vm}post)"));
    }
    assert!(!canary.exists(), "a hostile value ran a command");
}

#[tokio::test]
async fn arguments_after_a_shell_script_are_raw_positional_parameters() {
    let template = check(
        CommandStep::ShutdownVm,
        &["bash", "-c", "printf '[%s]' \"$1\"", "drover", "{vm}"],
    )
    .unwrap();
    let vm = "x' \"; $(id)";
    let rendered = template.render(&context(), &values_with_vm(vm)).unwrap();
    assert_eq!(rendered[4], vm);
    assert_eq!(stdout_of(&rendered).await, format!("[{vm}]"));
}

/// ssh joins its arguments with spaces into one line for the remote shell; emulate that with a
/// local `sh -c` to show each value arrives as one word and runs nothing.
#[tokio::test]
async fn values_after_ssh_are_quoted_for_the_remote_shell() {
    let directory = tempfile::tempdir().unwrap();
    let canary = directory.path().join("CANARY");
    let template = check(
        CommandStep::ShutdownVm,
        &[
            "ssh",
            "-o",
            "BatchMode=yes",
            "{host.address}",
            "printf",
            "'[%s]'",
            "{vm}",
        ],
    )
    .unwrap()
    .allowing_option_like_values();
    for vm in hostile_values(&canary) {
        let rendered = template.render(&context(), &values_with_vm(&vm)).unwrap();
        assert_eq!(rendered[3], "10.0.0.1", "a plain address is left as it is");
        let remote_line = rendered[4..].join(" ");
        let remote = argv(&["sh", "-c", &remote_line]);
        assert_eq!(stdout_of(&remote).await, format!("[{vm}]"), "{remote_line}");
    }
    assert!(!canary.exists(), "a hostile value ran a command");
}

/// A VM named `--help` would be read as an option by `virsh start {vm}`: refused, naming the
/// value, unless `--` stands before it or the template allows such values.
#[test]
fn values_that_look_like_options_are_refused_where_a_program_reads_options() {
    for parts in [
        &["virsh", "start", "{vm}"][..],
        &["sh", "-c", "virsh start {vm}"][..],
        &["sh", "-c", "virsh start \"$1\"", "sh", "{vm}"][..],
        &["ssh", "{host.address}", "virsh", "start", "{vm}"][..],
    ] {
        let template = check(CommandStep::ShutdownVm, parts).unwrap();
        for vm in ["--help", "-n"] {
            let error = template
                .render(&context(), &values_with_vm(vm))
                .unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(&format!("{vm:?}")) && message.contains("{vm}"),
                "{parts:?}: {message}"
            );
            assert!(message.contains("`--`"), "{message}");
        }
        let allowed = template.clone().allowing_option_like_values();
        assert!(allowed
            .render(&context(), &values_with_vm("--help"))
            .is_ok());
    }
}

#[test]
fn values_after_a_double_dash_or_inside_a_word_are_passed() {
    let after_double_dash =
        check(CommandStep::ShutdownVm, &["virsh", "start", "--", "{vm}"]).unwrap();
    let rendered = after_double_dash
        .render(&context(), &values_with_vm("--help"))
        .unwrap();
    assert_eq!(rendered, ["virsh", "start", "--", "--help"]);
    let inside_a_word = check(CommandStep::ShutdownVm, &["tool", "--domain={vm}"]).unwrap();
    let rendered = inside_a_word
        .render(&context(), &values_with_vm("-x"))
        .unwrap();
    assert_eq!(rendered, ["tool", "--domain=-x"]);
    let in_a_script_word =
        check(CommandStep::ShutdownVm, &["sh", "-c", "tool --domain={vm}"]).unwrap();
    assert!(in_a_script_word
        .render(&context(), &values_with_vm("-x"))
        .is_ok());
}

#[test]
fn a_nul_byte_cannot_be_passed() {
    for parts in [&["echo", "{vm}"][..], &["sh", "-c", "echo {vm}"][..]] {
        let template = check(CommandStep::ShutdownVm, parts).unwrap();
        let error = template
            .render(&context(), &values_with_vm("a\0b"))
            .unwrap_err();
        assert!(error.to_string().contains("NUL byte"), "{error}");
    }
}

#[test]
fn unknown_placeholders_name_the_step_and_the_placeholder() {
    let error = check(CommandStep::Upgrade, &["upgrade-host", "{hostname}"]).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("step upgrade") && message.contains("{hostname}"),
        "{message}"
    );
    assert!(
        message.contains("{host.address}"),
        "lists the known ones: {message}"
    );
}

#[test]
fn placeholders_without_a_value_for_the_step_are_refused() {
    let cases = [
        (CommandStep::Upgrade, "{vm}"),
        (CommandStep::Discover, "{host}"),
        (CommandStep::HostFacts, "{target}"),
        (CommandStep::Reboot, "{target}"),
        (CommandStep::Migrate, "{boot_id_before}"),
        (CommandStep::StartVm, "{graceful_timeout_secs}"),
        (CommandStep::Cordon, "{to}"),
        (CommandStep::SetCompatibilityLevel, "{host}"),
        (CommandStep::Upgrade, "{level}"),
    ];
    for (step, placeholder) in cases {
        let error = check(step, &["tool", placeholder]).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, CommandError::PlaceholderNotAvailable { .. })
                && message.contains(&format!("step {}", step.as_str()))
                && message.contains(placeholder),
            "{message}"
        );
    }
}

#[test]
fn every_step_accepts_its_own_placeholders() {
    for step in [
        CommandStep::Discover,
        CommandStep::HostFacts,
        CommandStep::HealthCheck,
        CommandStep::Cordon,
        CommandStep::Uncordon,
        CommandStep::EnterMaintenance,
        CommandStep::ExitMaintenance,
        CommandStep::Migrate,
        CommandStep::ShutdownVm,
        CommandStep::StartVm,
        CommandStep::Upgrade,
        CommandStep::Reboot,
        CommandStep::SetCompatibilityLevel,
    ] {
        let mut parts = vec!["tool".to_string()];
        parts.extend(
            Placeholder::available_for(step)
                .iter()
                .map(|p| format!("{{{}}}", p.name())),
        );
        ArgvTemplate::for_step(step, &parts).unwrap();
    }
}

#[test]
fn brace_mistakes_are_refused_with_the_argument() {
    for (argument, expected) in [
        ("{host", "not closed"),
        ("host}", "lone }"),
        ("${HOME}", "unknown placeholder {HOME}"),
    ] {
        let error = check(CommandStep::HealthCheck, &["tool", argument]).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("step health_check") && message.contains(expected),
            "{message}"
        );
    }
}

#[test]
fn the_program_must_be_fixed_text_and_present() {
    let error = check(CommandStep::HealthCheck, &["{host}", "check"]).unwrap_err();
    assert!(
        matches!(error, CommandError::PlaceholderInProgram { .. }),
        "{error}"
    );
    let error = check(CommandStep::HealthCheck, &[]).unwrap_err();
    assert!(
        error.to_string().contains("step health_check is empty"),
        "{error}"
    );
}

#[test]
fn placeholders_where_shell_quoting_cannot_protect_them_are_refused() {
    let cases = [
        ("virsh shutdown \"{vm}\"", "inside double quotes"),
        ("virsh shutdown '{vm}'", "inside single quotes"),
        ("echo `echo {vm}`", "inside backticks"),
        ("true # {vm}", "inside a shell comment"),
        ("echo ${{x:-{vm}}}", "inside ${…}"),
        ("cat <<EOF\n{vm}\nEOF", "here-document"),
        ("echo \\{vm}", "follows a backslash"),
        ("echo ${vm}", "follows a $"),
    ];
    for (script, expected) in cases {
        let error = check(CommandStep::ShutdownVm, &["sh", "-c", script]).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("step shutdown_vm")
                && message.contains("{vm}")
                && message.contains(expected),
            "{script:?}: {message}"
        );
    }
    let error = check(
        CommandStep::ShutdownVm,
        &["ssh", "xs01", "virsh shutdown \"{vm}\""],
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("inside double quotes"),
        "{error}"
    );
}

#[test]
fn a_shell_with_options_around_its_script_must_use_the_plain_form() {
    for parts in [
        &["sh", "-ec", "virsh shutdown {vm}"][..],
        &["bash", "-o", "pipefail", "-c", "virsh shutdown {vm}"][..],
        &["/bin/bash", "-lc", "virsh shutdown {vm}"][..],
    ] {
        let error = check(CommandStep::ShutdownVm, parts).unwrap_err();
        assert!(
            matches!(error, CommandError::AmbiguousShellInvocation { .. }),
            "{parts:?}: {error}"
        );
    }
    // Without placeholders there is nothing to quote.
    check(CommandStep::ShutdownVm, &["sh", "-ec", "true"]).unwrap();
    // A script file with values as arguments reads them as positional parameters.
    check(CommandStep::ShutdownVm, &["sh", "/opt/stop-vm.sh", "{vm}"]).unwrap();
}
