//! CloudStack's annotations (`addAnnotation`, `listAnnotations`, `removeAnnotation`, API
//! since 4.11) as the emulated management server keeps them: free text on an entity named by
//! its type and uuid. Drover's CloudStack driver marks a host here so that a host that was
//! Disabled when it entered maintenance is disabled again after it, even by another process.
//!
//! Parameters, entity types and the answers follow apache/cloudstack's `AddAnnotationCmd`,
//! `ListAnnotationsCmd`, `RemoveAnnotationCmd`, `AnnotationResponse` and
//! `AnnotationManagerImpl` (`annotationfilter` defaults to `all`; an entity is not looked up
//! when annotated). Bounded: [`MAX_ANNOTATIONS`] kept at once.
//!
//! This module must not know HTTP, signatures or the simulator: it answers with JSON objects
//! or a [`Refusal`] that the management server turns into its error reply.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// `AnnotationService.EntityType`, the types `addAnnotation` accepts.
pub const ENTITY_TYPES: [&str; 28] = [
    "VM",
    "VOLUME",
    "SNAPSHOT",
    "VM_SNAPSHOT",
    "INSTANCE_GROUP",
    "SSH_KEYPAIR",
    "USER_DATA",
    "NETWORK",
    "VPC",
    "PUBLIC_IP_ADDRESS",
    "VPN_CUSTOMER_GATEWAY",
    "TEMPLATE",
    "ISO",
    "KUBERNETES_CLUSTER",
    "SERVICE_OFFERING",
    "DISK_OFFERING",
    "NETWORK_OFFERING",
    "ZONE",
    "POD",
    "CLUSTER",
    "HOST",
    "DOMAIN",
    "PRIMARY_STORAGE",
    "SECONDARY_STORAGE",
    "VR",
    "SYSTEM_VM",
    "AUTOSCALE_VM_GROUP",
    "MANAGEMENT_SERVER",
];

/// Annotations kept at once; a further `addAnnotation` is refused rather than growing without
/// bound (the real server keeps them in its database).
pub const MAX_ANNOTATIONS: usize = 10_000;

/// Why a request was refused: a bad parameter (431) or what the server's manager throws (530).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Parameter(String),
    Internal(String),
}

struct Annotation {
    entity_type: String,
    entity_id: String,
    text: String,
    admins_only: bool,
    created: String,
}

/// The annotations, by their uuid (a serial in a uuid's shape).
#[derive(Default)]
pub struct Annotations {
    next_serial: u64,
    by_id: BTreeMap<String, Annotation>,
}

fn annotation_id(serial: u64) -> String {
    format!("0000000a-0000-4000-8000-{serial:012x}")
}

impl Annotations {
    /// `addAnnotation`: `entitytype` must be one of [`ENTITY_TYPES`] (the command's
    /// `EntityType.valueOf`), `entityid` is required; `created` is the server's date text.
    pub fn add(
        &mut self,
        entity_type: Option<&str>,
        entity_id: Option<&str>,
        text: Option<&str>,
        admins_only: bool,
        created: String,
    ) -> Result<Value, Refusal> {
        let Some(entity_id) = entity_id else {
            return Err(Refusal::Internal(
                "I need to have an entity to set an annotation on!".into(),
            ));
        };
        let entity_type = entity_type.unwrap_or("");
        // `Preconditions.checkState`: an IllegalStateException, which ApiServer answers 530.
        if !ENTITY_TYPES.contains(&entity_type) {
            return Err(Refusal::Internal(format!(
                "'{entity_type}' is not a valid EntityType to put annotations on"
            )));
        }
        if self.by_id.len() >= MAX_ANNOTATIONS {
            return Err(Refusal::Internal(format!(
                "the emulator keeps at most {MAX_ANNOTATIONS} annotations"
            )));
        }
        self.next_serial += 1;
        let id = annotation_id(self.next_serial);
        let annotation = Annotation {
            entity_type: entity_type.to_string(),
            entity_id: entity_id.to_string(),
            text: text.unwrap_or("").to_string(),
            admins_only,
            created,
        };
        let answer = json_of(&id, &annotation);
        self.by_id.insert(id, annotation);
        Ok(answer)
    }

    /// `listAnnotations`: one by `id`, or those of an entity type (and id), or all;
    /// `keyword` matches the text. Asking by `id` and by entity at once is refused, as the
    /// command's preconditions refuse it.
    pub fn list(
        &self,
        id: Option<&str>,
        entity_type: Option<&str>,
        entity_id: Option<&str>,
        keyword: Option<&str>,
    ) -> Result<Vec<Value>, Refusal> {
        // `Preconditions.checkArgument`: an IllegalArgumentException, which ApiServer answers 431.
        if id.is_some() && (entity_type.is_some() || entity_id.is_some()) {
            return Err(Refusal::Parameter(
                "I will either search for a specific annotation or for annotations on an entity, not both"
                    .into(),
            ));
        }
        Ok(self
            .by_id
            .iter()
            .filter(|(key, _)| id.is_none_or(|id| id == key.as_str()))
            .filter(|(_, a)| entity_type.is_none_or(|t| t == a.entity_type))
            .filter(|(_, a)| entity_id.is_none_or(|e| e == a.entity_id))
            .filter(|(_, a)| keyword.is_none_or(|k| a.text.contains(k)))
            .map(|(key, annotation)| json_of(key, annotation))
            .collect())
    }

    /// `removeAnnotation` (its required `id` checked by the caller, as the API dispatcher
    /// does): answers the removed annotation. An unknown id fails as on the real server, whose
    /// permission check finds no annotation (530).
    pub fn remove(&mut self, id: &str) -> Result<Value, Refusal> {
        match self.by_id.remove(id) {
            Some(annotation) => Ok(json_of(id, &annotation)),
            None => Err(Refusal::Internal(format!(
                "Only administrators or entity owner users can delete annotations, cannot remove annotation with uuid: {id}"
            ))),
        }
    }
}

/// `AnnotationResponse`'s fields.
fn json_of(id: &str, annotation: &Annotation) -> Value {
    json!({
        "id": id,
        "entitytype": annotation.entity_type,
        "entityid": annotation.entity_id,
        "annotation": annotation.text,
        "adminsonly": annotation.admins_only,
        "created": annotation.created,
        "username": "admin",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_annotation_is_added_listed_by_entity_and_removed() {
        let mut annotations = Annotations::default();
        let added = annotations
            .add(Some("HOST"), Some("h-1"), Some("note"), false, "t".into())
            .unwrap();
        annotations
            .add(Some("VM"), Some("v-1"), Some("other"), false, "t".into())
            .unwrap();
        let listed = annotations
            .list(None, Some("HOST"), Some("h-1"), None)
            .unwrap();
        assert_eq!(listed, vec![added.clone()]);
        let id = added["id"].as_str().unwrap();
        assert_eq!(annotations.remove(id).unwrap(), added);
        assert!(annotations
            .list(None, Some("HOST"), None, None)
            .unwrap()
            .is_empty());
        assert!(matches!(annotations.remove(id), Err(Refusal::Internal(_))));
    }

    #[test]
    fn a_bad_entity_type_or_a_missing_entity_is_refused() {
        let mut annotations = Annotations::default();
        assert!(matches!(
            annotations.add(Some("HOSTS"), Some("x"), None, false, "t".into()),
            Err(Refusal::Internal(_))
        ));
        assert!(matches!(
            annotations.add(Some("HOST"), None, None, false, "t".into()),
            Err(Refusal::Internal(_))
        ));
        assert!(matches!(
            annotations.list(Some("a"), Some("HOST"), None, None),
            Err(Refusal::Parameter(_))
        ));
    }
}
