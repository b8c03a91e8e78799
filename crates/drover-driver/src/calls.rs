//! One driver call: the core's command with ids resolved to names, run against a driver and
//! turned into the core's observation. Knows nothing of journals or time.

use std::time::Duration;

use drover_core::execution::{Command, CommandKind, Observation};
use drover_core::{Cluster, PlatformSetting, Version};

use crate::driver::{Driver, DriverError};

/// A command ready to run on its own task: owns the names it needs.
pub struct DriverCall {
    step: Step,
}

enum Step {
    Discover,
    HostFacts(String),
    HealthCheck(String),
    Allocation(String, bool),
    Maintenance(String, bool),
    Migrate {
        vm: String,
        from: String,
        to: String,
    },
    Shutdown {
        vm: String,
        host: String,
        graceful: Duration,
    },
    Start {
        vm: String,
        host: String,
    },
    /// Suspend, resume, shelve or unshelve: the VM, its host, and which.
    Park {
        vm: String,
        host: String,
        call: ParkCall,
    },
    Upgrade(String, Version),
    Reboot(String, String),
    /// The cluster's name and the level to set.
    CompatibilityLevel(String, String),
    ResolveSetting(PlatformSetting),
    /// The setting and what its resolve saved.
    RestoreSetting(PlatformSetting, String),
}

#[derive(Clone, Copy)]
enum ParkCall {
    Suspend,
    Resume,
    Shelve,
    Unshelve,
}

impl DriverCall {
    pub fn new(cluster: &Cluster, command: &Command) -> Self {
        let host = |id: drover_core::HostId| cluster.host(id).name.clone();
        let vm = |id: drover_core::VmId| cluster.vm(id).name.clone();
        let step = match &command.kind {
            CommandKind::Discover => Step::Discover,
            CommandKind::ReadHostFacts { host: h } => Step::HostFacts(host(*h)),
            CommandKind::HealthCheck { host: h } => Step::HealthCheck(host(*h)),
            CommandKind::Cordon { host: h } => Step::Allocation(host(*h), false),
            CommandKind::Uncordon { host: h } => Step::Allocation(host(*h), true),
            CommandKind::EnterMaintenance { host: h } => Step::Maintenance(host(*h), true),
            CommandKind::ExitMaintenance { host: h } => Step::Maintenance(host(*h), false),
            CommandKind::Migrate { vm: v, from, to } => Step::Migrate {
                vm: vm(*v),
                from: host(*from),
                to: host(*to),
            },
            CommandKind::ShutdownVm {
                vm: v,
                host: h,
                graceful_timeout_ms,
            } => Step::Shutdown {
                vm: vm(*v),
                host: host(*h),
                graceful: Duration::from_millis(*graceful_timeout_ms),
            },
            CommandKind::StartVm { vm: v, host: h } => Step::Start {
                vm: vm(*v),
                host: host(*h),
            },
            CommandKind::SuspendVm { vm: v, host: h } => park(vm(*v), host(*h), ParkCall::Suspend),
            CommandKind::ResumeVm { vm: v, host: h } => park(vm(*v), host(*h), ParkCall::Resume),
            CommandKind::ShelveVm { vm: v, host: h } => park(vm(*v), host(*h), ParkCall::Shelve),
            CommandKind::UnshelveVm { vm: v, host: h } => {
                park(vm(*v), host(*h), ParkCall::Unshelve)
            }
            CommandKind::Upgrade { host: h, target } => Step::Upgrade(host(*h), target.clone()),
            CommandKind::Reboot {
                host: h,
                boot_id_before,
            } => Step::Reboot(host(*h), boot_id_before.clone()),
            CommandKind::SetCompatibilityLevel { level } => {
                Step::CompatibilityLevel(cluster.name.clone(), level.clone())
            }
            CommandKind::ResolveSetting { setting } => Step::ResolveSetting(setting.clone()),
            CommandKind::RestoreSetting { setting, saved } => {
                Step::RestoreSetting(setting.clone(), saved.clone())
            }
        };
        DriverCall { step }
    }

    pub async fn run<D: Driver + ?Sized>(self, driver: &D) -> Result<Observation, DriverError> {
        let nothing = |result: Result<(), DriverError>| result.map(|()| Observation::Nothing);
        match self.step {
            Step::Discover => driver.discover().await.map(Observation::Discovered),
            Step::HostFacts(host) => driver.host_facts(&host).await.map(Observation::HostFacts),
            Step::HealthCheck(host) => nothing(driver.health_check(&host).await),
            Step::Allocation(host, enabled) => nothing(driver.set_allocation(&host, enabled).await),
            Step::Maintenance(host, enabled) => {
                nothing(driver.set_maintenance(&host, enabled).await)
            }
            Step::Migrate { vm, from, to } => nothing(driver.migrate(&vm, &from, &to).await),
            Step::Shutdown { vm, host, graceful } => driver
                .shutdown_vm(&vm, &host, graceful)
                .await
                .map(|observed| Observation::ShutDown {
                    forced: observed.forced,
                }),
            Step::Start { vm, host } => nothing(driver.start_vm(&vm, &host).await),
            Step::Park { vm, host, call } => nothing(match call {
                ParkCall::Suspend => driver.suspend_vm(&vm, &host).await,
                ParkCall::Resume => driver.resume_vm(&vm, &host).await,
                ParkCall::Shelve => driver.shelve_vm(&vm, &host).await,
                ParkCall::Unshelve => driver.unshelve_vm(&vm, &host).await,
            }),
            Step::Upgrade(host, target) => nothing(driver.upgrade(&host, &target).await),
            Step::Reboot(host, boot_id) => nothing(driver.reboot(&host, &boot_id).await),
            Step::CompatibilityLevel(cluster, level) => {
                nothing(driver.set_compatibility_level(&cluster, &level).await)
            }
            Step::ResolveSetting(setting) => driver
                .resolve_setting(&setting)
                .await
                .map(|saved| Observation::SettingResolved { saved }),
            Step::RestoreSetting(setting, saved) => {
                nothing(driver.restore_setting(&setting, &saved).await)
            }
        }
    }
}

fn park(vm: String, host: String, call: ParkCall) -> Step {
    Step::Park { vm, host, call }
}
