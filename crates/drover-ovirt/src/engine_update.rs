//! The engine's own pending update (the oVirt Upgrade Manager's first requirement: "Notify the
//! user that an update for the engine is available"). The REST API v4 has no field or service for
//! it (`types/Api.java`, `types/ProductInfo.java`, `services/SystemService.java`), so the ovirt
//! section's `engine_update_check` names a command that asks the engine machine, typically
//! `[ssh, root@engine, engine-upgrade-check, --quiet]`, run as the command driver runs its steps
//! (an argv template, `{cluster}` the only placeholder, no shell, bounded in time and output).
//!
//! Its exit code is read as ovirt-engine's `packaging/setup/bin/ovirt-engine-upgrade-check.in`
//! sets it (and `packaging/man/man8/engine-upgrade-check.8` documents it): 0 when the setup
//! packages have an update (`mpm.buildTransaction()` found one), 1 when none, 2 on an error (any
//! exception); anything else (ssh's 255, a signal, a timeout) is a failed check too. A failed or
//! absent check is never "up to date".
//!
//! This module must not know Drover's engine, stores, the registry or how the answer is shown.

use std::time::Duration;

use drover_command::{
    run_argv, ArgvTemplate, CommandError, Placeholder, PlaceholderValues, RunLimits, StepContext,
};

/// `engine-upgrade-check`'s exit code when the engine's setup packages have an update.
pub const ENGINE_UPGRADE_AVAILABLE_EXIT_CODE: i32 = 0;
/// `engine-upgrade-check`'s exit code when they have none.
pub const ENGINE_UP_TO_DATE_EXIT_CODE: i32 = 1;
/// The name of the command in messages (the section's field).
pub const ENGINE_UPDATE_CHECK_FIELD: &str = "engine_update_check";

/// What the engine's own update check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineUpdate {
    /// No `engine_update_check` command: nobody asked the engine machine.
    NotChecked,
    /// The engine has an update pending (exit 0).
    Pending,
    /// No update for the engine's setup packages (exit 1).
    UpToDate,
    /// The check could not say (exit 2 or another code, a timeout, a program that did not start).
    Failed(String),
}

impl EngineUpdate {
    /// One line for a person.
    pub fn describe(&self) -> String {
        match self {
            EngineUpdate::NotChecked => format!(
                "not checked: the ovirt section has no {ENGINE_UPDATE_CHECK_FIELD} command (e.g. [ssh, root@engine, engine-upgrade-check, --quiet])"
            ),
            EngineUpdate::Pending => {
                "the engine has an update pending (engine-upgrade-check): upgrade the engine (engine-setup) before its hosts".to_string()
            }
            EngineUpdate::UpToDate => "the engine has no update pending".to_string(),
            EngineUpdate::Failed(why) => format!("the engine's update check failed: {why}"),
        }
    }
}

/// Checks `argv` as the `engine_update_check` command (only `{cluster}` is given a value).
pub fn engine_update_template(argv: &[String]) -> Result<ArgvTemplate, CommandError> {
    ArgvTemplate::parse(ENGINE_UPDATE_CHECK_FIELD, &[Placeholder::Cluster], argv)
}

/// Runs the check (when there is one) for the engine of `cluster`, bounded by `timeout`.
pub async fn check_engine_update(
    template: Option<&ArgvTemplate>,
    cluster: &str,
    timeout: Duration,
) -> EngineUpdate {
    let Some(template) = template else {
        return EngineUpdate::NotChecked;
    };
    let context = StepContext::new(
        ENGINE_UPDATE_CHECK_FIELD,
        format!("the engine of {cluster}"),
    );
    let values = PlaceholderValues::new().with(Placeholder::Cluster, cluster);
    let argv = match template.render(&context, &values) {
        Ok(argv) => argv,
        Err(error) => return EngineUpdate::Failed(error.to_string()),
    };
    let output = match run_argv(&argv, RunLimits::with_timeout(timeout)).await {
        Ok(output) => output,
        Err(error) => return EngineUpdate::Failed(format!("{}: {error}", argv[0])),
    };
    match (output.timed_out, output.exit_code) {
        (true, _) => EngineUpdate::Failed(format!(
            "{} timed out after {} s",
            argv[0],
            timeout.as_secs()
        )),
        (false, Some(ENGINE_UPGRADE_AVAILABLE_EXIT_CODE)) => EngineUpdate::Pending,
        (false, Some(ENGINE_UP_TO_DATE_EXIT_CODE)) => EngineUpdate::UpToDate,
        (false, Some(code)) => EngineUpdate::Failed(format!(
            "{} exited with code {code}{}",
            argv[0],
            output.message_tail()
        )),
        (false, None) => EngineUpdate::Failed(format!("{} was killed by a signal", argv[0])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(script: &str) -> ArgvTemplate {
        engine_update_template(&[
            "sh".to_string(),
            "-c".to_string(),
            script.to_string(),
            "check".to_string(),
            "{cluster}".to_string(),
        ])
        .unwrap()
    }

    async fn check(script: &str) -> EngineUpdate {
        check_engine_update(Some(&fake(script)), "prod", Duration::from_secs(10)).await
    }

    #[tokio::test]
    async fn exit_codes_read_as_engine_upgrade_check_sets_them() {
        assert_eq!(check("exit 0").await, EngineUpdate::Pending);
        assert_eq!(check("exit 1").await, EngineUpdate::UpToDate);
        let failed = check("echo 'Error: Unsupported distribution' >&2; exit 2").await;
        assert!(
            matches!(&failed, EngineUpdate::Failed(why) if why.contains("code 2") && why.contains("Unsupported distribution")),
            "{failed:?}"
        );
        assert!(matches!(check("exit 255").await, EngineUpdate::Failed(_)));
    }

    #[tokio::test]
    async fn the_cluster_is_the_only_placeholder_and_an_absent_command_is_not_checked() {
        assert_eq!(
            check("test \"$1\" = prod && exit 0; exit 1").await,
            EngineUpdate::Pending
        );
        assert!(engine_update_template(&["ssh".into(), "{host}".into()]).is_err());
        assert!(engine_update_template(&[]).is_err());
        let absent = check_engine_update(None, "prod", Duration::from_secs(1)).await;
        assert_eq!(absent, EngineUpdate::NotChecked);
        assert!(absent.describe().starts_with("not checked"));
    }

    #[tokio::test]
    async fn a_check_that_hangs_is_failed_at_its_timeout() {
        let hung =
            check_engine_update(Some(&fake("sleep 5")), "prod", Duration::from_millis(200)).await;
        assert!(
            matches!(&hung, EngineUpdate::Failed(why) if why.contains("timed out")),
            "{hung:?}"
        );
    }
}
