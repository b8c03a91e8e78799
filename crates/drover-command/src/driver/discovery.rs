//! Discovery without a discover command: the inventory's hosts and VMs, with each host's version,
//! maintenance and cordon refreshed by its `host_facts` command (when there is one) and VMs put
//! where this driver last moved them.
//!
//! Facts are asked of a bounded number of hosts at a time so a large cluster neither starts
//! hundreds of ssh sessions at once nor takes one timeout per host in a row. A host whose facts
//! fail is reported down (the planner leaves it out); when every host fails, the problem is not
//! the hosts (a missing ssh key, a wrong script path) and discovery fails with the first error.
//!
//! This module knows nothing of how commands are run.

use std::sync::Arc;

use drover_core::execution::{Discovered, HostFacts};
use drover_core::{Host, HostState};
use drover_schema::inventory::CommandStep;
use tokio::task::JoinSet;

use super::Inner;
use crate::error::CommandError;

/// Hosts asked for their facts at the same time.
const MAX_CONCURRENT_FACTS: usize = 16;

pub(super) async fn from_inventory(inner: &Arc<Inner>) -> Result<Discovered, CommandError> {
    let mut hosts = inner.known.hosts.clone();
    if inner.is_configured(CommandStep::HostFacts) {
        let names = hosts.iter().map(|h| h.name.clone()).collect();
        let facts = facts_of_all(inner, names).await;
        refuse_when_all_failed(&facts)?;
        for (host, facts) in hosts.iter_mut().zip(facts) {
            refresh(host, facts.and_then(Result::ok));
        }
    } else {
        inner.remembered.apply_cordons(&mut hosts);
    }
    let vms = inner.remembered.vms_of(&inner.known);
    Ok(Discovered {
        settings: None,
        hosts,
        vms,
    })
}

/// A task that panicked left its slot empty; its host counts as failed.
type FactsSlot = Option<Result<HostFacts, CommandError>>;

fn refuse_when_all_failed(facts: &[FactsSlot]) -> Result<(), CommandError> {
    if facts.iter().any(|slot| matches!(slot, Some(Ok(_)))) {
        return Ok(());
    }
    match facts.iter().find_map(|slot| slot.as_ref()?.as_ref().err()) {
        Some(first_error) => Err(first_error.clone()),
        None => Ok(()),
    }
}

/// `host_facts` already carries this driver's own cordons.
fn refresh(host: &mut Host, facts: Option<HostFacts>) {
    let Some(facts) = facts else {
        host.state = HostState::Down;
        return;
    };
    host.version = facts.version;
    host.cordoned = facts.cordoned;
    host.state = match facts.in_maintenance {
        true => HostState::Maintenance,
        false => HostState::Up,
    };
}

/// Every host's facts, in the order of `names`, at most `MAX_CONCURRENT_FACTS` at a time. The
/// tasks are aborted (and their commands killed) if this future is dropped.
async fn facts_of_all(inner: &Arc<Inner>, names: Vec<String>) -> Vec<FactsSlot> {
    let mut results: Vec<FactsSlot> = vec![None; names.len()];
    let mut tasks = JoinSet::new();
    for (index, name) in names.into_iter().enumerate() {
        if tasks.len() >= MAX_CONCURRENT_FACTS {
            collect_one(&mut tasks, &mut results).await;
        }
        let inner = Arc::clone(inner);
        tasks.spawn(async move { (index, inner.host_facts(&name).await) });
    }
    while collect_one(&mut tasks, &mut results).await {}
    results
}

type FactsTask = (usize, Result<HostFacts, CommandError>);

/// Stores the next finished task's result; false when no task is left.
async fn collect_one(tasks: &mut JoinSet<FactsTask>, results: &mut [FactsSlot]) -> bool {
    match tasks.join_next().await {
        None => false,
        Some(Err(_panicked)) => true,
        Some(Ok((index, result))) => {
            results[index] = Some(result);
            true
        }
    }
}
