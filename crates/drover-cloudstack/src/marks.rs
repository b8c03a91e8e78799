//! The host mark that outlives a Drover process: a CloudStack annotation (`addAnnotation`,
//! `listAnnotations`, `removeAnnotation`, entity type `HOST`, API since 4.11; fields from
//! apache/cloudstack's `AddAnnotationCmd` and `AnnotationResponse`) saying that the host was
//! Disabled when it entered maintenance. CloudStack enables a host when its maintenance is
//! cancelled, so the driver disables it again then; with the mark on the platform a resumed
//! run (another process) still knows to, and reports the host as cordoned meanwhile.
//!
//! A server without annotations (before 4.11) answers 432: the mark is then kept in the
//! process only, as before, and the log says so once per call.
//!
//! This module must not know Drover's engine or the driver trait: it speaks CloudStack.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::client::CloudstackClient;
use crate::CloudstackError;

/// The annotation's text; its first word is what the driver looks for.
pub const DISABLED_MARK: &str = "drover.io/disabled-before-maintenance: this host was Disabled \
     when Drover put it into maintenance; Drover disables it again when it leaves maintenance";

/// The word a mark starts with (also the `keyword` the listing filters by).
const MARK_KEYWORD: &str = "drover.io/disabled-before-maintenance";

fn is_mark(annotation: &Value) -> bool {
    annotation
        .get("annotation")
        .and_then(Value::as_str)
        .is_some_and(|text| text.starts_with(MARK_KEYWORD))
}

fn id_of(annotation: &Value, key: &str) -> Option<String> {
    annotation
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The marks on hosts: (annotation id, host id) pairs, for one host or for all.
async fn marks(
    client: &CloudstackClient,
    host_id: Option<&str>,
) -> Result<Vec<(String, String)>, CloudstackError> {
    let mut arguments = vec![
        ("entitytype", "HOST".to_string()),
        ("keyword", MARK_KEYWORD.to_string()),
    ];
    if let Some(host_id) = host_id {
        arguments.push(("entityid", host_id.to_string()));
    }
    let annotations = client
        .list("listAnnotations", &arguments, "annotation")
        .await?;
    Ok(annotations
        .iter()
        .filter(|annotation| is_mark(annotation))
        .filter_map(|annotation| Some((id_of(annotation, "id")?, id_of(annotation, "entityid")?)))
        .filter(|(_, entity)| host_id.is_none_or(|host_id| host_id == entity))
        .collect())
}

/// The ids of the hosts that carry a mark (one call for all hosts).
pub async fn marked_hosts(client: &CloudstackClient) -> Result<BTreeSet<String>, CloudstackError> {
    Ok(marks(client, None)
        .await?
        .into_iter()
        .map(|(_, host_id)| host_id)
        .collect())
}

/// Whether `host_id` carries a mark.
pub async fn is_marked(client: &CloudstackClient, host_id: &str) -> Result<bool, CloudstackError> {
    Ok(!marks(client, Some(host_id)).await?.is_empty())
}

/// Marks `host_id` unless it already carries a mark (so a repeated call adds nothing).
pub async fn mark(client: &CloudstackClient, host_id: &str) -> Result<(), CloudstackError> {
    if is_marked(client, host_id).await? {
        return Ok(());
    }
    client
        .call(
            "addAnnotation",
            &[
                ("entitytype", "HOST".to_string()),
                ("entityid", host_id.to_string()),
                ("annotation", DISABLED_MARK.to_string()),
                ("adminsonly", "true".to_string()),
            ],
        )
        .await
        .map(|_| ())
}

/// Removes every mark of `host_id`.
pub async fn unmark(client: &CloudstackClient, host_id: &str) -> Result<(), CloudstackError> {
    for (annotation_id, _) in marks(client, Some(host_id)).await? {
        client
            .call("removeAnnotation", &[("id", annotation_id)])
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_drovers_own_text_is_a_mark() {
        assert!(is_mark(&json!({ "annotation": DISABLED_MARK })));
        assert!(!is_mark(
            &json!({ "annotation": "see drover.io/disabled-before-maintenance" })
        ));
        assert!(!is_mark(&json!({ "annotation": 3 })));
    }
}
