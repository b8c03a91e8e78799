//! The limits an execution runs under: timeouts, retry caps and backoff, concurrency, batched
//! eviction, modes. Derived from the cluster's policy; every wait here has a bound.

use crate::model::{ApprovalMode, Policy, UpgradeMode};

#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionSettings {
    pub mode: UpgradeMode,
    pub approval: ApprovalMode,
    /// Attempts of one step (the first try included) before the host fails.
    pub max_step_attempts: u32,
    pub retry_backoff_initial_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub step_timeout_ms: u64,
    pub migration_timeout_ms: u64,
    pub upgrade_timeout_ms: u64,
    pub reboot_timeout_ms: u64,
    pub vm_shutdown_graceful_ms: u64,
    pub vm_start_timeout_ms: u64,
    /// A migration waiting because no host can take it fails after this long (KubeVirt: 5 min).
    pub unschedulable_timeout_ms: u64,
    /// Any other action still waiting after this long fails its host (KubeVirt: 15 min).
    pub pending_timeout_ms: u64,
    pub max_concurrent_migrations_per_host: u32,
    pub max_concurrent_migrations_per_cluster: u32,
    /// Restarts (evictions) started per interval (OpenShift: 10 per minute).
    pub batch_eviction_size: u32,
    pub batch_eviction_interval_ms: u64,
    /// Failed attempts remembered per VM (KubeVirt keeps the last five).
    pub attempts_kept_per_vm: usize,
    /// The cluster compatibility level to set after the last host, if any.
    pub raise_compatibility_level_to: Option<String>,
}

impl ExecutionSettings {
    pub fn from_policy(policy: &Policy) -> Self {
        let secs = |s: u64| s.saturating_mul(1000);
        ExecutionSettings {
            mode: policy.mode,
            approval: policy.approval,
            max_step_attempts: policy.max_step_attempts.max(1),
            retry_backoff_initial_ms: secs(policy.retry_backoff_initial_secs),
            retry_backoff_max_ms: secs(policy.retry_backoff_max_secs),
            step_timeout_ms: secs(policy.step_timeout_secs),
            migration_timeout_ms: secs(policy.migration_timeout_secs),
            upgrade_timeout_ms: secs(policy.upgrade_timeout_secs),
            reboot_timeout_ms: secs(policy.reboot_timeout_secs),
            vm_shutdown_graceful_ms: secs(policy.vm_shutdown_timeout_secs),
            vm_start_timeout_ms: secs(policy.step_timeout_secs),
            unschedulable_timeout_ms: secs(policy.unschedulable_timeout_secs),
            pending_timeout_ms: secs(policy.pending_timeout_secs),
            max_concurrent_migrations_per_host: policy.max_concurrent_migrations_per_host.max(1),
            max_concurrent_migrations_per_cluster: policy
                .max_concurrent_migrations_per_cluster
                .max(1),
            batch_eviction_size: policy.batch_eviction_size.max(1),
            batch_eviction_interval_ms: secs(policy.batch_eviction_interval_secs),
            attempts_kept_per_vm: 5,
            raise_compatibility_level_to: policy.raise_compatibility_level_to.clone(),
        }
    }

    /// Exponential backoff before attempt `attempt + 1`, capped.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let factor = 1u64 << attempt.saturating_sub(1).min(20);
        self.retry_backoff_initial_ms
            .saturating_mul(factor)
            .min(self.retry_backoff_max_ms)
    }
}
