//! A `clouds.yaml` entry, as OpenStack users keep them (openstacksdk's "Configuring
//! os-client-config": `clouds: {NAME: {auth: {auth_url, username, password, project_name,
//! user_domain_name, project_domain_name, application_credential_id,
//! application_credential_secret}, auth_type, region_name, interface, cacert, verify}}`), read
//! from the file the section names, else from openstacksdk's search path: `./clouds.yaml`,
//! `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`.
//!
//! This module knows the file's format, and nothing of HTTP or Drover's model.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::OpenstackError;

/// What one cloud entry says (every field optional: the section may fill or override it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloudEntry {
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub project_name: Option<String>,
    pub user_domain_name: Option<String>,
    pub project_domain_name: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_secret: Option<String>,
    pub region_name: Option<String>,
    pub interface: Option<String>,
    pub cacert: Option<String>,
    /// `verify: false` (no certificate check).
    pub insecure: bool,
    /// The file it came from.
    pub file: PathBuf,
}

/// openstacksdk's search path for `clouds.yaml`.
pub fn search_path() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("clouds.yaml")];
    if let Some(home) = std::env::var_os("HOME") {
        paths.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    paths.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    paths
}

/// Reads cloud `name` from `file`, else from the first file of the search path that exists.
pub fn load(name: &str, file: Option<&Path>) -> Result<CloudEntry, OpenstackError> {
    let path = match file {
        Some(file) => file.to_path_buf(),
        None => search_path()
            .into_iter()
            .find(|path| path.is_file())
            .ok_or_else(|| {
                OpenstackError::Config(format!(
                    "cloud {name:?}: no clouds.yaml in {}",
                    search_path()
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
    };
    let text = std::fs::read_to_string(&path).map_err(|error| {
        OpenstackError::Config(format!("cannot read {}: {error}", path.display()))
    })?;
    parse(name, &text, &path)
}

pub fn parse(name: &str, text: &str, path: &Path) -> Result<CloudEntry, OpenstackError> {
    let document: Value = serde_yaml_ng::from_str(text).map_err(|error| {
        OpenstackError::Config(format!("{}: not YAML: {error}", path.display()))
    })?;
    let cloud = document
        .get("clouds")
        .and_then(|clouds| clouds.get(name))
        .ok_or_else(|| {
            OpenstackError::Config(format!("{} has no cloud {name:?}", path.display()))
        })?;
    let auth = cloud.get("auth").unwrap_or(&Value::Null);
    let field = |record: &Value, key: &str| -> Option<String> {
        match record.get(key)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    };
    // `user_domain_name`/`project_domain_name` may also be given once as `domain_name`.
    let domain = field(auth, "domain_name");
    Ok(CloudEntry {
        auth_url: field(auth, "auth_url"),
        username: field(auth, "username"),
        password: field(auth, "password"),
        project_name: field(auth, "project_name"),
        user_domain_name: field(auth, "user_domain_name").or_else(|| domain.clone()),
        project_domain_name: field(auth, "project_domain_name").or(domain),
        application_credential_id: field(auth, "application_credential_id"),
        application_credential_secret: field(auth, "application_credential_secret"),
        region_name: field(cloud, "region_name"),
        interface: field(cloud, "interface"),
        cacert: field(cloud, "cacert"),
        insecure: cloud.get("verify").and_then(Value::as_bool) == Some(false),
        file: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clouds_yaml_entry_is_read_as_openstacksdk_writes_it() {
        let text = r#"
clouds:
  prod:
    auth:
      auth_url: https://keystone.example:5000/v3
      username: drover
      project_name: admin
      domain_name: Default
    region_name: RegionOne
    interface: internal
    cacert: /etc/ssl/cloud-ca.pem
  lab:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000/v3
      application_credential_id: abc
      application_credential_secret: s
    verify: false
"#;
        let prod = parse("prod", text, Path::new("clouds.yaml")).unwrap();
        assert_eq!(prod.username.as_deref(), Some("drover"));
        assert_eq!(prod.user_domain_name.as_deref(), Some("Default"));
        assert_eq!(prod.project_domain_name.as_deref(), Some("Default"));
        assert_eq!(prod.interface.as_deref(), Some("internal"));
        assert!(!prod.insecure && prod.password.is_none());
        let lab = parse("lab", text, Path::new("clouds.yaml")).unwrap();
        assert_eq!(lab.application_credential_id.as_deref(), Some("abc"));
        assert!(lab.insecure);
        assert!(matches!(
            parse("none", text, Path::new("clouds.yaml")),
            Err(OpenstackError::Config(text)) if text.contains("no cloud \"none\"")
        ));
    }
}
