//! Catalog hotfix sets applied through the pool's own update mechanism of XenServer 7.1 to 8.2
//! and XCP-ng 8.x: the `pool_update` class (`ocaml/idl/datamodel.ml`, class `pool_update`:
//! `name_label`, `version`, `after_apply_guidance`, `hosts` — the hosts that have applied it;
//! `pool_update.apply(self, host)`; error `UPDATE_ALREADY_APPLIED`, which XenCenter also takes as
//! done). Hotfixes are applied in the order the plan's minimal set gives (prerequisites first),
//! each skipped when the host already lists it, so a retried or resumed step is idempotent.
//!
//! An update must have been uploaded to the pool first (`pool_update.introduce`, `xe
//! update-upload`): uploading ISO images is not Drover's job, and a missing one is a failed step
//! that names it. Only used without an `upgrade` command: a command installs what it is given
//! (`{hotfixes}`) itself.
//!
//! This module must not know the engine, the catalog's rules or other XAPI classes.

use serde_json::{json, Value};

use drover_driver::DriverError;

use super::{driver_error, records_of, text, TaskEnd, XapiDriver};
use crate::discovery::{Record, Records};

/// Whether `record` (a `pool_update`) lists `host_ref` among the hosts that applied it.
fn applied_on(record: &Record, host_ref: &str) -> bool {
    record
        .get("hosts")
        .and_then(Value::as_array)
        .is_some_and(|hosts| hosts.iter().any(|host| host.as_str() == Some(host_ref)))
}

impl XapiDriver {
    /// The pool's `pool_update` records; `None` from a server without the class.
    async fn pool_updates(&self, subject: &str) -> Result<Option<Records>, DriverError> {
        match self
            .client
            .call("pool_update.get_all_records", Vec::new())
            .await
        {
            Ok(records) => records_of(records, "pool_update").map(Some),
            Err(error) if error.code() == Some("MESSAGE_METHOD_UNKNOWN") => Ok(None),
            Err(error) => Err(driver_error(error, subject)),
        }
    }

    /// Applies the plan's hotfixes for `host` that it does not have yet, in order.
    pub(super) async fn apply_hotfixes(&self, host: &str) -> Result<(), DriverError> {
        let Some(hotfixes) = self.hotfixes.get(host).filter(|list| !list.is_empty()) else {
            return Ok(());
        };
        let (host_ref, _) = self.host_ref(host).await?;
        let Some(updates) = self.pool_updates(host).await? else {
            return Err(DriverError::Failed(format!(
                "host {host}: the server has no pool_update class to apply hotfixes {} with; give them to an `upgrade` command ({{hotfixes}})",
                hotfixes.join(", ")
            )));
        };
        for hotfix in hotfixes {
            let Some((update_ref, record)) = updates
                .0
                .iter()
                .find(|(_, record)| text(record, "name_label") == hotfix)
            else {
                return Err(DriverError::Failed(format!(
                    "host {host}: hotfix {hotfix} is not uploaded to the pool (pool_update.introduce, `xe update-upload`)"
                )));
            };
            if applied_on(record, &host_ref) {
                continue;
            }
            tracing::info!(host, hotfix, "xapi: applying a hotfix (pool_update.apply)");
            let params = vec![json!(update_ref), json!(host_ref)];
            let timeout = self.timings.upgrade_timeout;
            match self
                .run_task("pool_update.apply", params, timeout, host)
                .await?
            {
                TaskEnd::Succeeded => {}
                TaskEnd::Failed(error) if error.code() == Some("UPDATE_ALREADY_APPLIED") => {}
                TaskEnd::Failed(error) => return Err(driver_error(error, host)),
                TaskEnd::TimedOut => {
                    return Err(DriverError::Failed(format!(
                        "host {host}: pool_update.apply of {hotfix} still pending after {} s: cancelled",
                        timeout.as_secs()
                    )))
                }
            }
        }
        Ok(())
    }

    /// Hosts that lack an update uploaded to the pool (for `drover check`); empty on a server
    /// without the `pool_update` class.
    pub(super) async fn hosts_missing_pool_updates(
        &self,
        host_names_by_ref: &std::collections::BTreeMap<String, String>,
    ) -> Result<std::collections::BTreeSet<String>, DriverError> {
        let Some(updates) = self.pool_updates("pool").await? else {
            return Ok(Default::default());
        };
        Ok(host_names_by_ref
            .iter()
            .filter(|(host_ref, _)| {
                updates
                    .0
                    .values()
                    .any(|record| !applied_on(record, host_ref))
            })
            .map(|(_, name)| name.clone())
            .collect())
    }
}
