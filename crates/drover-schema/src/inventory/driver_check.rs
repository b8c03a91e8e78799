//! Rules of the `driver:` section that serde cannot check alone: which keys each fault takes,
//! faults naming VMs and hosts that exist in the inventory, positive factors, probabilities in
//! 0..=1, a finite non-negative time scale, non-empty commands.
//!
//! It reports problems by field path through `Source` (`driver.faults[2].vm`), and knows nothing
//! of YAML, of positions, or of what a driver does with its settings.

use std::collections::{BTreeMap, HashSet};

use drover_core::Cluster;

use super::driver::{
    CloudstackSection, CommandStep, DriverSection, FaultEntry, FaultName, GanetiSection,
    KubevirtSection, LibvirtSection, OpenstackSection, OvirtSection, RandomFaults,
    SimulatorSection, XapiSection,
};
use super::error::InventoryError;
use super::source::Source;
use super::value_checks::{require_positive, require_text, unknown_name_message};

/// What a fault is about, which decides the keys it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FaultSubject {
    /// `vm` is required, `host` refused.
    Vm,
    /// `host` is required, `vm` refused.
    Host,
    /// `step` and `factor` are required, `host` optional, `vm` refused.
    Step,
    /// The whole cluster: `vm` and `host` refused.
    Cluster,
}

fn fault_subject(fault: FaultName) -> FaultSubject {
    match fault {
        FaultName::MigrationFails
        | FaultName::MigrationRefused
        | FaultName::MigrationHangs
        | FaultName::ShutdownIgnored => FaultSubject::Vm,
        FaultName::UpgradeFails
        | FaultName::HostNeverReturns
        | FaultName::UpgradeDoesNotReboot
        | FaultName::RebootIgnored => FaultSubject::Host,
        FaultName::Slow => FaultSubject::Step,
        FaultName::CompatibilityLevelFails => FaultSubject::Cluster,
    }
}

/// Faults that hit only the first `times` occurrences; the others last the whole run.
fn counts_occurrences(fault: FaultName) -> bool {
    matches!(
        fault,
        FaultName::MigrationFails
            | FaultName::MigrationRefused
            | FaultName::MigrationHangs
            | FaultName::UpgradeFails
            | FaultName::CompatibilityLevelFails
    )
}

pub(crate) fn check_driver(
    driver: &DriverSection,
    cluster: &Cluster,
    source: &Source,
) -> Result<(), InventoryError> {
    match driver {
        DriverSection::Simulator(simulator) => check_simulator(simulator, cluster, source),
        DriverSection::Libvirt(libvirt) => check_libvirt(libvirt, source),
        DriverSection::Command(command) => {
            check_commands(&command.commands, "driver.commands", source)
        }
        DriverSection::Xapi(xapi) => check_xapi(xapi, source),
        DriverSection::Ovirt(ovirt) => check_ovirt(ovirt, source),
        DriverSection::Ganeti(ganeti) => check_ganeti(ganeti, source),
        DriverSection::Openstack(openstack) => check_openstack(openstack, source),
        DriverSection::Cloudstack(cloudstack) => check_cloudstack(cloudstack, source),
        DriverSection::Kubevirt(kubevirt) => check_kubevirt(kubevirt, source),
    }
}

fn check_cloudstack(cloudstack: &CloudstackSection, source: &Source) -> Result<(), InventoryError> {
    if !(cloudstack.endpoint.starts_with("https://") || cloudstack.endpoint.starts_with("http://"))
    {
        return Err(source.error_at(
            "driver.endpoint",
            format!(
                "{:?} is not an http:// or https:// URL",
                cloudstack.endpoint
            ),
        ));
    }
    if cloudstack.api_key_env.is_none() == cloudstack.api_key_file.is_none() {
        return Err(source.error_at("driver", "give exactly one of api_key_env and api_key_file"));
    }
    if cloudstack.secret_key_env.is_none() == cloudstack.secret_key_file.is_none() {
        return Err(source.error_at(
            "driver",
            "give exactly one of secret_key_env and secret_key_file (never the secret key itself)",
        ));
    }
    for (field, value) in [
        ("request_timeout_secs", cloudstack.request_timeout_secs),
        ("job_timeout_secs", cloudstack.job_timeout_secs),
        ("poll_ms", cloudstack.poll_ms),
        ("upgrade_timeout_secs", cloudstack.upgrade_timeout_secs),
    ] {
        if value == 0 {
            return Err(source.error_at(&format!("driver.{field}"), "must be at least 1"));
        }
    }
    if let Some(step) = cloudstack
        .commands
        .keys()
        .find(|step| !matches!(step, CommandStep::Upgrade | CommandStep::Reboot))
    {
        return Err(source.error_at(
            &format!("driver.commands.{}", step.as_str()),
            "the cloudstack driver takes only `upgrade` and `reboot` commands (the API does every other step)",
        ));
    }
    for step in [CommandStep::Upgrade, CommandStep::Reboot] {
        if !cloudstack.commands.contains_key(&step) {
            return Err(source.error_at(
                &format!("driver.commands.{}", step.as_str()),
                "required: CloudStack's API neither installs hotfixes nor reboots a hypervisor host",
            ));
        }
    }
    check_commands(&cloudstack.commands, "driver.commands", source)
}

/// The steps a Ganeti cluster's RAPI cannot do, which may therefore be commands.
pub const GANETI_COMMAND_STEPS: [CommandStep; 4] = [
    CommandStep::HostFacts,
    CommandStep::HealthCheck,
    CommandStep::Upgrade,
    CommandStep::Reboot,
];

fn check_ganeti(ganeti: &GanetiSection, source: &Source) -> Result<(), InventoryError> {
    require_text(&ganeti.username, "driver.username", source)?;
    if !ganeti.url.starts_with("https://") {
        return Err(source.error_at(
            "driver.url",
            format!(
                "{:?} is not an https:// URL (Ganeti's RAPI speaks only HTTPS)",
                ganeti.url
            ),
        ));
    }
    if ganeti.password_env.is_none() == ganeti.password_file.is_none() {
        return Err(source.error_at(
            "driver",
            "give exactly one of password_env and password_file (never the password itself)",
        ));
    }
    for (field, value) in [
        ("request_timeout_secs", ganeti.request_timeout_secs),
        ("job_timeout_secs", ganeti.job_timeout_secs),
        ("job_poll_ms", ganeti.job_poll_ms),
        ("upgrade_timeout_secs", ganeti.upgrade_timeout_secs),
        ("reboot_timeout_secs", ganeti.reboot_timeout_secs),
    ] {
        if value == 0 {
            return Err(source.error_at(&format!("driver.{field}"), "must be at least 1"));
        }
    }
    if let Some(step) = ganeti
        .commands
        .keys()
        .find(|step| !GANETI_COMMAND_STEPS.contains(step))
    {
        return Err(source.error_at(
            &format!("driver.commands.{}", step.as_str()),
            "the ganeti driver takes only host_facts, health_check, upgrade and reboot commands (RAPI does every other step)",
        ));
    }
    if ganeti.commands.contains_key(&CommandStep::Reboot)
        && !ganeti.commands.contains_key(&CommandStep::HostFacts)
    {
        return Err(source.error_at(
            "driver.commands.reboot",
            "a reboot command needs a host_facts command (the boot id says whether the node rebooted)",
        ));
    }
    for (field, argv) in [
        ("master_failover", &ganeti.master_failover),
        ("verify", &ganeti.verify),
    ] {
        if let Some(argv) = argv {
            match argv.first() {
                None => {
                    return Err(source.error_at(
                        &format!("driver.{field}"),
                        "must list the program and its arguments, such as [gnt-cluster, verify]",
                    ))
                }
                Some(program) => require_text(program, &format!("driver.{field}[0]"), source)?,
            }
        }
    }
    check_commands(&ganeti.commands, "driver.commands", source)
}

/// The steps Nova's Compute API cannot do, which may therefore be commands (the same four as
/// Ganeti's RAPI).
pub const OPENSTACK_COMMAND_STEPS: [CommandStep; 4] = GANETI_COMMAND_STEPS;

fn check_openstack(openstack: &OpenstackSection, source: &Source) -> Result<(), InventoryError> {
    if openstack.cloud.is_none() && openstack.auth_url.is_none() {
        return Err(source.error_at(
            "driver",
            "give `cloud` (a clouds.yaml entry) or `auth_url` (Keystone)",
        ));
    }
    if let Some(url) = &openstack.auth_url {
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(source.error_at(
                "driver.auth_url",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
    }
    if openstack.password_env.is_some() && openstack.password_file.is_some() {
        return Err(source.error_at(
            "driver",
            "give at most one of password_env and password_file (never the password itself)",
        ));
    }
    // Without a clouds.yaml entry, everything Keystone needs must be here.
    if openstack.cloud.is_none() {
        if openstack.password_env.is_none() && openstack.password_file.is_none() {
            return Err(source.error_at(
                "driver",
                "give password_env or password_file (the password or the application credential's secret)",
            ));
        }
        if openstack.application_credential_id.is_none() {
            require_text(
                openstack.username.as_deref().unwrap_or(""),
                "driver.username",
                source,
            )?;
            require_text(
                openstack.project.as_deref().unwrap_or(""),
                "driver.project",
                source,
            )?;
        }
    }
    if let Some(interface) = &openstack.interface {
        if !["public", "internal", "admin"].contains(&interface.as_str()) {
            return Err(source.error_at(
                "driver.interface",
                format!("{interface:?} is not public, internal or admin"),
            ));
        }
    }
    for (field, value) in [
        ("request_timeout_secs", openstack.request_timeout_secs),
        ("migration_timeout_secs", openstack.migration_timeout_secs),
        ("action_timeout_secs", openstack.action_timeout_secs),
        ("poll_ms", openstack.poll_ms),
        ("upgrade_timeout_secs", openstack.upgrade_timeout_secs),
        ("reboot_timeout_secs", openstack.reboot_timeout_secs),
    ] {
        if value == 0 {
            return Err(source.error_at(&format!("driver.{field}"), "must be at least 1"));
        }
    }
    if let Some(step) = openstack
        .commands
        .keys()
        .find(|step| !OPENSTACK_COMMAND_STEPS.contains(step))
    {
        return Err(source.error_at(
            &format!("driver.commands.{}", step.as_str()),
            "the openstack driver takes only host_facts, health_check, upgrade and reboot commands (the Compute API does every other step)",
        ));
    }
    if openstack.commands.contains_key(&CommandStep::Reboot)
        && !openstack.commands.contains_key(&CommandStep::HostFacts)
    {
        return Err(source.error_at(
            "driver.commands.reboot",
            "a reboot command needs a host_facts command (the boot id says whether the host rebooted)",
        ));
    }
    check_commands(&openstack.commands, "driver.commands", source)
}

fn check_xapi(xapi: &XapiSection, source: &Source) -> Result<(), InventoryError> {
    require_text(&xapi.username, "driver.username", source)?;
    if !(xapi.url.starts_with("https://") || xapi.url.starts_with("http://")) {
        return Err(source.error_at(
            "driver.url",
            format!("{:?} is not an http:// or https:// URL", xapi.url),
        ));
    }
    if xapi.password_env.is_none() == xapi.password_file.is_none() {
        return Err(source.error_at(
            "driver",
            "give exactly one of password_env and password_file (never the password itself)",
        ));
    }
    for (field, value) in [
        ("request_timeout_secs", xapi.request_timeout_secs),
        ("migration_timeout_secs", xapi.migration_timeout_secs),
        ("task_poll_ms", xapi.task_poll_ms),
        ("upgrade_timeout_secs", xapi.upgrade_timeout_secs),
    ] {
        if value == 0 {
            return Err(source.error_at(&format!("driver.{field}"), "must be at least 1"));
        }
    }
    if let Some(step) = xapi
        .commands
        .keys()
        .find(|step| **step != CommandStep::Upgrade)
    {
        return Err(source.error_at(
            &format!("driver.commands.{}", step.as_str()),
            "the xapi driver takes only an `upgrade` command (XAPI does every other step)",
        ));
    }
    check_commands(&xapi.commands, "driver.commands", source)
}

fn check_kubevirt(kubevirt: &KubevirtSection, source: &Source) -> Result<(), InventoryError> {
    for (field, value) in [
        ("request_timeout_secs", kubevirt.request_timeout_secs),
        ("migration_timeout_secs", kubevirt.migration_timeout_secs),
        ("batch_eviction_size", kubevirt.batch_eviction_size),
        (
            "batch_eviction_interval_secs",
            kubevirt.batch_eviction_interval_secs,
        ),
        ("drain_timeout_secs", kubevirt.drain_timeout_secs),
        ("upgrade_timeout_secs", kubevirt.upgrade_timeout_secs),
        ("poll_ms", kubevirt.poll_ms),
    ] {
        if value == 0 {
            return Err(source.error_at(&format!("driver.{field}"), "must be at least 1"));
        }
    }
    if kubevirt.batch_eviction_size > u64::from(u32::MAX) {
        return Err(source.error_at("driver.batch_eviction_size", "is too large"));
    }
    if let Some(step) = kubevirt
        .commands
        .keys()
        .find(|step| !matches!(step, CommandStep::Upgrade | CommandStep::Reboot))
    {
        return Err(source.error_at(
            &format!("driver.commands.{}", step.as_str()),
            "the kubevirt driver takes only `upgrade` and `reboot` commands (the Kubernetes API does every other step)",
        ));
    }
    if let Some(pool) = &kubevirt.machine_config_pool {
        // A MachineConfigPool is cluster-scoped: its name is a DNS subdomain.
        let valid = !pool.is_empty()
            && pool.len() <= 253
            && pool
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid {
            return Err(source.error_at(
                "driver.machine_config_pool",
                format!("{pool:?} is not a MachineConfigPool name (lower-case letters, digits, '-' and '.')"),
            ));
        }
    }
    check_commands(&kubevirt.commands, "driver.commands", source)
}

/// ovirt-engine's `cluster_policies.name` is a VARCHAR(128) (`packaging/dbscripts/create_tables.sql`).
const MAX_SCHEDULING_POLICY_NAME_CHARS: usize = 128;

fn check_ovirt(ovirt: &OvirtSection, source: &Source) -> Result<(), InventoryError> {
    require_text(&ovirt.username, "driver.username", source)?;
    if !(ovirt.url.starts_with("https://") || ovirt.url.starts_with("http://")) {
        return Err(source.error_at(
            "driver.url",
            format!("{:?} is not an http:// or https:// URL", ovirt.url),
        ));
    }
    if ovirt.password_env.is_none() == ovirt.password_file.is_none() {
        return Err(source.error_at(
            "driver",
            "give exactly one of password_env and password_file (never the password itself)",
        ));
    }
    for (field, value) in [
        ("request_timeout_secs", ovirt.request_timeout_secs),
        ("migration_timeout_secs", ovirt.migration_timeout_secs),
        ("poll_ms", ovirt.poll_ms),
        ("upgrade_timeout_secs", ovirt.upgrade_timeout_secs),
    ] {
        if value == 0 {
            return Err(source.error_at(&format!("driver.{field}"), "must be at least 1"));
        }
    }
    let policy = &ovirt.maintenance_scheduling_policy;
    if policy.trim().is_empty()
        || policy.chars().count() > MAX_SCHEDULING_POLICY_NAME_CHARS
        || policy.chars().any(char::is_control)
    {
        return Err(source.error_at(
            "driver.maintenance_scheduling_policy",
            format!("{policy:?} is not a scheduling policy name (1 to {MAX_SCHEDULING_POLICY_NAME_CHARS} characters, no control characters), e.g. cluster_maintenance"),
        ));
    }
    if ovirt
        .engine_update_check
        .first()
        .is_some_and(|program| program.trim().is_empty())
    {
        return Err(source.error_at(
            "driver.engine_update_check",
            "names no program (e.g. [ssh, root@engine, engine-upgrade-check, --quiet])",
        ));
    }
    if let Some(step) = ovirt
        .commands
        .keys()
        .find(|step| **step != CommandStep::Upgrade)
    {
        return Err(source.error_at(
            &format!("driver.commands.{}", step.as_str()),
            "the ovirt driver takes only an `upgrade` command (the engine does every other step)",
        ));
    }
    check_commands(&ovirt.commands, "driver.commands", source)
}

fn check_simulator(
    simulator: &SimulatorSection,
    cluster: &Cluster,
    source: &Source,
) -> Result<(), InventoryError> {
    let time_scale = simulator.time_scale;
    if !(time_scale.is_finite() && time_scale >= 0.0) {
        let message =
            format!("must be a finite number >= 0 (0 runs in virtual time), got {time_scale}");
        return Err(source.error_at("driver.time_scale", message));
    }
    if let Some(state_file) = &simulator.state_file {
        require_text(&state_file.to_string_lossy(), "driver.state_file", source)?;
    }
    check_faults(&simulator.faults, cluster, source)?;
    check_random_faults(&simulator.random_faults, source)
}

fn check_faults(
    faults: &[FaultEntry],
    cluster: &Cluster,
    source: &Source,
) -> Result<(), InventoryError> {
    if faults.is_empty() {
        // Spares collecting the names of a large inventory for nothing.
        return Ok(());
    }
    let names = InventoryNames::of(cluster);
    for (index, fault) in faults.iter().enumerate() {
        check_fault(fault, &format!("driver.faults[{index}]"), &names, source)?;
    }
    Ok(())
}

fn check_random_faults(
    random_faults: &RandomFaults,
    source: &Source,
) -> Result<(), InventoryError> {
    for (key, probability) in random_faults.named_probabilities() {
        if !(0.0..=1.0).contains(&probability) {
            let message = format!("must be a probability between 0 and 1, got {probability}");
            return Err(source.error_at(&format!("driver.random_faults.{key}"), message));
        }
    }
    Ok(())
}

/// The VM and host names of the inventory, in file order, for faults to refer to.
struct InventoryNames<'a> {
    vm_names: Vec<&'a str>,
    host_names: Vec<&'a str>,
    vm_name_set: HashSet<&'a str>,
    host_name_set: HashSet<&'a str>,
}

impl<'a> InventoryNames<'a> {
    fn of(cluster: &'a Cluster) -> Self {
        let vm_names: Vec<&str> = cluster.vms.iter().map(|vm| vm.name.as_str()).collect();
        let host_names: Vec<&str> = cluster
            .hosts
            .iter()
            .map(|host| host.name.as_str())
            .collect();
        InventoryNames {
            vm_name_set: vm_names.iter().copied().collect(),
            host_name_set: host_names.iter().copied().collect(),
            vm_names,
            host_names,
        }
    }
}

fn check_fault(
    fault: &FaultEntry,
    fault_path: &str,
    names: &InventoryNames,
    source: &Source,
) -> Result<(), InventoryError> {
    check_fault_keys(fault, fault_path, source)?;
    if let Some(vm) = &fault.vm {
        if !names.vm_name_set.contains(vm.as_str()) {
            let message = unknown_name_message("VM", "VMs", vm, names.vm_names.iter().copied());
            return Err(source.error_at(&format!("{fault_path}.vm"), message));
        }
    }
    if let Some(host) = &fault.host {
        if !names.host_name_set.contains(host.as_str()) {
            let known = names.host_names.iter().copied();
            let message = unknown_name_message("host", "hosts", host, known);
            return Err(source.error_at(&format!("{fault_path}.host"), message));
        }
    }
    if let Some(times) = fault.times {
        require_positive(times.into(), &format!("{fault_path}.times"), source)?;
    }
    match fault.factor {
        Some(factor) if !(factor.is_finite() && factor > 0.0) => {
            let message = format!("must be a number greater than 0, got {factor}");
            Err(source.error_at(&format!("{fault_path}.factor"), message))
        }
        _ => Ok(()),
    }
}

/// Whether one optional key of a fault is written, may be written, and must be written.
struct FaultKeyRule {
    key: &'static str,
    is_present: bool,
    is_allowed: bool,
    is_required: bool,
}

/// Each key present must apply to the fault, and each key the fault needs must be present.
fn check_fault_keys(
    fault: &FaultEntry,
    fault_path: &str,
    source: &Source,
) -> Result<(), InventoryError> {
    let rules = fault_key_rules(fault);
    if let Some(rule) = rules
        .iter()
        .find(|rule| rule.is_present && !rule.is_allowed)
    {
        let message = format!("does not apply to fault `{}`", fault.fault);
        return Err(source.error_at(&format!("{fault_path}.{}", rule.key), message));
    }
    if let Some(rule) = rules
        .iter()
        .find(|rule| rule.is_required && !rule.is_present)
    {
        let message = format!("fault `{}` needs `{}`", fault.fault, rule.key);
        return Err(source.error_at(fault_path, message));
    }
    Ok(())
}

fn fault_key_rules(fault: &FaultEntry) -> [FaultKeyRule; 5] {
    let subject = fault_subject(fault.fault);
    let is_about_vm = subject == FaultSubject::Vm;
    let is_about_step = subject == FaultSubject::Step;
    [
        FaultKeyRule {
            key: "vm",
            is_present: fault.vm.is_some(),
            is_allowed: is_about_vm,
            is_required: is_about_vm,
        },
        FaultKeyRule {
            key: "host",
            is_present: fault.host.is_some(),
            is_allowed: matches!(subject, FaultSubject::Host | FaultSubject::Step),
            is_required: subject == FaultSubject::Host,
        },
        FaultKeyRule {
            key: "times",
            is_present: fault.times.is_some(),
            is_allowed: counts_occurrences(fault.fault),
            is_required: false,
        },
        FaultKeyRule {
            key: "step",
            is_present: fault.step.is_some(),
            is_allowed: is_about_step,
            is_required: is_about_step,
        },
        FaultKeyRule {
            key: "factor",
            is_present: fault.factor.is_some(),
            is_allowed: is_about_step,
            is_required: is_about_step,
        },
    ]
}

fn check_libvirt(libvirt: &LibvirtSection, source: &Source) -> Result<(), InventoryError> {
    for (host_name, host) in &libvirt.hosts {
        require_text(&host.uri, &format!("driver.hosts.{host_name}.uri"), source)?;
        require_text(
            &host.address,
            &format!("driver.hosts.{host_name}.address"),
            source,
        )?;
    }
    if libvirt.migration_bandwidth_mib_per_sec == Some(0) {
        return Err(source.error_at(
            "driver.migration_bandwidth_mib_per_sec",
            "must be at least 1 (leave it out for no limit)",
        ));
    }
    for (index, prefix) in libvirt.shared_storage_path_prefixes.iter().enumerate() {
        if !prefix.starts_with('/') {
            return Err(source.error_at(
                &format!("driver.shared_storage_path_prefixes[{index}]"),
                format!("{prefix:?} is not an absolute path"),
            ));
        }
    }
    if let Some(marks_file) = &libvirt.marks_file {
        require_text(marks_file, "driver.marks_file", source)?;
    }
    check_commands(&libvirt.commands, "driver.commands", source)
}

/// Every command is an argv list with a program name first.
fn check_commands(
    commands: &BTreeMap<CommandStep, Vec<String>>,
    commands_path: &str,
    source: &Source,
) -> Result<(), InventoryError> {
    for (step, argv) in commands {
        let argv_path = format!("{commands_path}.{}", step.as_str());
        match argv.first() {
            None => {
                let message =
                    "must list the program and its arguments, such as [/usr/local/bin/upgrade-host]";
                return Err(source.error_at(&argv_path, message));
            }
            Some(program) => require_text(program, &format!("{argv_path}[0]"), source)?,
        }
    }
    Ok(())
}
