//! What needs upgrading, before anyone plans: every host is asked which watched packages it
//! could update (the inventory's `upgrade.check_command`, e.g. `apt list --upgradable` or `dnf
//! check-update`, parsed for both; oVirt's `HostPackagesUpdateTimeInHours` check), each host
//! says whether updates are available, an `outdated` event is raised for a host older than the
//! target or than its peers, and the catalog's channel may offer a release newer than the
//! target. `drover check` prints this document; the server keeps the last one per cluster.
//!
//! Knows the command runner and the catalog's parsers; changes nothing on the hosts and must
//! not render the document or decide what a failed host means to a front end.

use std::time::Duration;

use drover_catalog::{PackageUpdate, WatchList};
use drover_command::{ArgvTemplate, Placeholder, PlaceholderValues, RunLimits, StepContext};
use drover_core::{Cluster, HostId, Version};
use drover_schema::inventory::{CheckFormat, DriverSection, InventoryFile};
use serde::Serialize;

use crate::error::AppError;

/// At most this many hosts are asked at once.
const MAX_CONCURRENT_CHECKS: usize = 16;
/// `dnf check-update` exits 100 when updates are available.
const DNF_UPDATES_AVAILABLE_EXIT_CODE: i32 = 100;

#[derive(Serialize)]
pub struct CheckDocument {
    pub cluster: String,
    pub target_version: String,
    /// A release of the catalog's channel newer than the target, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newer_release_available: Option<String>,
    pub hosts: Vec<HostCheck>,
    pub events: Vec<CheckEvent>,
    /// The platform's manager itself (oVirt's engine), its own row; absent for a platform
    /// Drover cannot ask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineCheck>,
}

/// The engine's own pending update (`engine_update_check`): `updates_available` is `null` when
/// nobody could say (no command, a failed check), never "no".
#[derive(Serialize)]
pub struct EngineCheck {
    pub updates_available: Option<bool>,
    /// `pending`, `up-to-date`, `not-checked` or `failed`.
    pub status: &'static str,
    pub message: String,
}

impl EngineCheck {
    pub fn of(update: &drover_drivers::EngineUpdate) -> EngineCheck {
        use drover_drivers::EngineUpdate;
        let (updates_available, status) = match update {
            EngineUpdate::Pending => (Some(true), "pending"),
            EngineUpdate::UpToDate => (Some(false), "up-to-date"),
            EngineUpdate::NotChecked => (None, "not-checked"),
            EngineUpdate::Failed(_) => (None, "failed"),
        };
        EngineCheck {
            updates_available,
            status,
            message: update.describe(),
        }
    }
}

/// Asks the platform's manager for its own pending update (on a thread of its own, so a caller
/// inside a runtime may ask too); `None` for a platform Drover cannot ask.
pub fn manager_update(file: &InventoryFile) -> Option<drover_drivers::EngineUpdate> {
    let timeout = Duration::from_secs(file.cluster.policy.step_timeout_secs);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(drover_drivers::manager_update(
                    &file.driver,
                    &file.cluster,
                    timeout,
                ))
            })
            .join()
            .ok()
            .flatten()
    })
}

#[derive(Serialize)]
pub struct HostCheck {
    pub host: String,
    pub version: String,
    /// `null` when the check command failed on a host at the target: nobody knows.
    pub updates_available: Option<bool>,
    /// Watched packages with an update (empty when no check command is configured).
    pub packages: Vec<PackageRow>,
    /// Why the check could not ask the host, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
pub struct PackageRow {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    pub available_version: String,
}

#[derive(Serialize)]
pub struct CheckEvent {
    pub host: String,
    pub event: &'static str,
    pub message: String,
}

/// Asks every host (bounded concurrency, each under `step_timeout_secs`) and assembles the
/// document. A host that cannot be asked is reported with its error, not fatal.
pub fn check_document(file: &InventoryFile) -> Result<CheckDocument, AppError> {
    let watch_list = WatchList::with_default_system(&file.upgrade.watch_packages)
        .map_err(|error| AppError::bad_input(format!("upgrade.watch_packages: {error}")))?;
    let template = check_template(file)?;
    let answers = match &template {
        Some(template) => ask_hosts(file, template)?,
        None => vec![Ok(Vec::new()); file.cluster.hosts.len()],
    };
    // Without a check command, a platform that reports its hosts' updates itself (XAPI's
    // `latest_synced_updates_applied`, oVirt's `update_available`) is asked instead.
    let reported = match &template {
        Some(_) => None,
        None => platform_updates(file)?,
    };
    let cluster = &file.cluster;
    let hosts = cluster
        .host_ids()
        .zip(answers)
        .map(|(id, answer)| {
            let mut check = host_check(cluster, id, answer, &watch_list);
            if let Some(reported) = &reported {
                apply_platform_report(
                    &mut check,
                    reported,
                    cluster.host(id).version < cluster.target_version,
                );
            }
            check
        })
        .collect();
    Ok(CheckDocument {
        cluster: cluster.name.clone(),
        target_version: cluster.target_version.to_string(),
        newer_release_available: newer_release(file)?,
        events: outdated_events(cluster),
        hosts,
        engine: manager_update(file).as_ref().map(EngineCheck::of),
    })
}

type PlatformReport = Result<drover_drivers::HostUpdates, String>;

/// The platform's own report of pending updates, if its driver has one (the registry knows).
fn platform_updates(file: &InventoryFile) -> Result<Option<PlatformReport>, AppError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AppError::internal)?;
    let reported = runtime.block_on(drover_drivers::platform_updates(
        &file.driver,
        &file.cluster,
    ));
    Ok(reported.map(|answer| answer.map_err(|error| error.to_string())))
}

/// A host's pending updates as the platform reported them: pending, none, or unknown (a host
/// below the target has updates whatever the platform says).
fn apply_platform_report(
    check: &mut HostCheck,
    reported: &PlatformReport,
    older_than_target: bool,
) {
    // A host the platform could not answer for is an error of that host, never "no updates".
    let pending = match reported.as_ref().map(|hosts| hosts.get(&check.host)) {
        Ok(Some(Ok(pending))) => *pending,
        Ok(Some(Err(error))) | Err(error) => {
            check.error = Some(error.clone());
            None
        }
        Ok(None) => None,
    };
    check.updates_available = match (pending, older_than_target) {
        (_, true) => Some(true),
        (pending, false) => pending,
    };
}

fn check_template(file: &InventoryFile) -> Result<Option<ArgvTemplate>, AppError> {
    let argv = &file.upgrade.check_command;
    if argv.is_empty() {
        return Ok(None);
    }
    let available = [
        Placeholder::Host,
        Placeholder::HostAddress,
        Placeholder::Cluster,
    ];
    ArgvTemplate::parse("upgrade.check_command", &available, argv)
        .map(Some)
        .map_err(|error| AppError::bad_input(format!("upgrade.check_command: {error}")))
}

type Answer = Result<Vec<PackageUpdate>, String>;

fn ask_hosts(file: &InventoryFile, template: &ArgvTemplate) -> Result<Vec<Answer>, AppError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AppError::internal)?;
    let ask = HostQuery {
        template: template.clone(),
        driver: file.driver.clone(),
        cluster: file.cluster.name.clone(),
        format: file.upgrade.check_format,
        timeout: Duration::from_secs(file.cluster.policy.step_timeout_secs),
    };
    let hosts: Vec<String> = file.cluster.hosts.iter().map(|h| h.name.clone()).collect();
    Ok(runtime.block_on(async {
        let mut answers = Vec::with_capacity(hosts.len());
        for chunk in hosts.chunks(MAX_CONCURRENT_CHECKS) {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, host) in chunk.iter().enumerate() {
                let (ask, host) = (ask.clone(), host.clone());
                tasks.spawn(async move { (index, ask.ask(&host).await) });
            }
            let mut chunk_answers: Vec<Option<Answer>> = vec![None; chunk.len()];
            while let Some(joined) = tasks.join_next().await {
                if let Ok((index, answer)) = joined {
                    chunk_answers[index] = Some(answer);
                }
            }
            answers.extend(
                chunk_answers
                    .into_iter()
                    .map(|a| a.unwrap_or_else(|| Err("the check task panicked".into()))),
            );
        }
        answers
    }))
}

/// What asking one host needs, owned so that hosts are asked concurrently.
#[derive(Clone)]
struct HostQuery {
    template: ArgvTemplate,
    driver: DriverSection,
    cluster: String,
    format: Option<CheckFormat>,
    timeout: Duration,
}

impl HostQuery {
    async fn ask(&self, host: &str) -> Answer {
        let context = StepContext::new("upgrade.check_command", format!("host {host}"));
        let values = PlaceholderValues::new()
            .with(Placeholder::Host, host)
            .with(Placeholder::HostAddress, host_address(&self.driver, host))
            .with(Placeholder::Cluster, self.cluster.as_str());
        let argv = self
            .template
            .render(&context, &values)
            .map_err(|e| e.to_string())?;
        let output = drover_command::run_argv(&argv, RunLimits::with_timeout(self.timeout))
            .await
            .map_err(|error| format!("{}: {error}", argv[0]))?;
        let dnf_has_updates = !output.timed_out
            && output.exit_code == Some(DNF_UPDATES_AVAILABLE_EXIT_CODE)
            && self.format != Some(CheckFormat::Apt);
        if !output.succeeded() && !dnf_has_updates {
            let how = match (output.timed_out, output.exit_code) {
                (true, _) => format!("timed out after {}s", self.timeout.as_secs()),
                (false, Some(code)) => format!("exited with code {code}"),
                (false, None) => "was killed by a signal".to_string(),
            };
            return Err(format!("{} {how}{}", argv[0], output.message_tail()));
        }
        parse_updates(&output.stdout, self.format)
    }
}

/// The format named in the inventory, else recognised: apt prints `[upgradable from: …]` and
/// a `Listing...` header; anything else is read as dnf/yum.
fn parse_updates(stdout: &str, format: Option<CheckFormat>) -> Answer {
    let is_apt = match format {
        Some(format) => format == CheckFormat::Apt,
        None => stdout.contains("[upgradable from:") || stdout.trim_start().starts_with("Listing"),
    };
    let parsed = match is_apt {
        true => drover_catalog::parse_apt_upgradable(stdout),
        false => drover_catalog::parse_dnf_check_update(stdout),
    };
    parsed.map_err(|error| error.to_string())
}

/// Where the driver's section says the host is, else its name.
fn host_address(driver: &DriverSection, host: &str) -> String {
    driver.host_address(host).unwrap_or(host).to_string()
}

fn host_check(cluster: &Cluster, id: HostId, answer: Answer, watch_list: &WatchList) -> HostCheck {
    let host = cluster.host(id);
    let older_than_target = host.version < cluster.target_version;
    let (packages, error) = match answer {
        Ok(updates) => {
            let rows = drover_catalog::watched_updates(&updates, watch_list)
                .into_iter()
                .map(|update| PackageRow {
                    name: update.name.clone(),
                    current_version: update.current_version.clone(),
                    available_version: update.available_version.clone(),
                })
                .collect();
            (rows, None)
        }
        Err(error) => (Vec::new(), Some(error)),
    };
    // A host below the target has updates whatever its package query said; a host at the
    // target whose query failed is unknown, never "no updates".
    let updates_available = match (&error, older_than_target) {
        (_, true) => Some(true),
        (Some(_), false) => None,
        (None, false) => Some(!packages.is_empty()),
    };
    HostCheck {
        host: host.name.clone(),
        version: host.version.to_string(),
        updates_available,
        packages,
        error,
    }
}

/// An `outdated` event per host older than the target, or older than its newest peer.
pub fn outdated_events(cluster: &Cluster) -> Vec<CheckEvent> {
    let newest: Option<&Version> = cluster.hosts.iter().map(|h| &h.version).max();
    cluster
        .hosts
        .iter()
        .filter_map(|host| {
            let message = if host.version < cluster.target_version {
                format!(
                    "runs {}, older than the target {}",
                    host.version, cluster.target_version
                )
            } else if newest.is_some_and(|n| host.version < *n) {
                format!("runs {}, older than its peers ({})", host.version, newest?)
            } else {
                return None;
            };
            Some(CheckEvent {
                host: host.name.clone(),
                event: "outdated",
                message,
            })
        })
        .collect()
}

fn newer_release(file: &InventoryFile) -> Result<Option<String>, AppError> {
    let Some(catalog) = crate::catalog::load_catalog(&file.upgrade)? else {
        return Ok(None);
    };
    let Some(channel) = &file.upgrade.channel else {
        return Ok(None);
    };
    Ok(
        drover_catalog::is_newer_available(&catalog, channel, &file.cluster.target_version)
            .map(|version| version.to_string()),
    )
}
