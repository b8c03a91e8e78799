//! The `drover serve` configuration: the YAML file (`--config`), then the environment, then the
//! flags (flags win). Validation happens here, before anything starts: a bad file, an unknown
//! key, an unreadable or bad inventory, a duplicate cluster name or a bad token hash is refused
//! with the file and the field named (`ServerError::BadConfig`).
//!
//! This module knows the file format and the inventories; it must not know HTTP or the engine.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use drover_schema::inventory::InventoryFile;
use serde::Deserialize;

use crate::ServerError;

/// The address served when neither the flags, the environment nor the file say one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// How many event streams may be open at once when the file does not say.
pub const DEFAULT_MAX_SSE_CLIENTS: usize = 64;

/// How long a run's lease lasts without renewal when the file does not say: another instance
/// takes a run over this long after its holder stopped renewing.
pub const DEFAULT_LEASE_TTL_SECS: u64 = 15;

/// How many runs one instance drives at once when the file does not say.
pub const DEFAULT_MAX_ACTIVE_RUNS: usize = 64;

/// The configuration file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<String>,
    #[serde(default)]
    clusters: Vec<ClusterEntryFile>,
    #[serde(default)]
    tokens: Vec<TokenEntryFile>,
    tls: Option<TlsFile>,
    max_sse_clients: Option<usize>,
    /// Seconds a run's lease lasts without renewal (renewed every third of it).
    lease_ttl_secs: Option<u64>,
    /// The most runs this instance drives at once (others are left to other instances).
    max_active_runs: Option<usize>,
    /// Ask every host for updates this often (oVirt's `HostPackagesUpdateTimeInHours`).
    check_interval_hours: Option<f64>,
    /// Names (or `name:port`) this server answers to besides its address and localhost.
    #[serde(default)]
    allowed_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterEntryFile {
    inventory: PathBuf,
    approval_strategy: Option<ApprovalStrategy>,
}

/// What a check does when the catalog's channel offers a release newer than the target (OLM's
/// install plan approval): start a run to it, or create one that waits for `approve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStrategy {
    Automatic,
    Manual,
}

impl ApprovalStrategy {
    pub fn name(self) -> &'static str {
        match self {
            ApprovalStrategy::Automatic => "automatic",
            ApprovalStrategy::Manual => "manual",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntryFile {
    name: String,
    role: Role,
    sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: PathBuf,
    key: PathBuf,
}

/// What a token may do: `viewer` reads, `operator` also acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// A configured token: only the SHA-256 of the secret is kept.
#[derive(Clone, Debug)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    pub sha256: [u8; 32],
}

/// A served cluster: its inventory file as read when the server started.
#[derive(Clone, Debug)]
pub struct ClusterEntry {
    pub name: String,
    pub inventory_path: PathBuf,
    pub inventory: InventoryFile,
    pub approval_strategy: Option<ApprovalStrategy>,
}

/// Certificate and key files (PEM) for HTTPS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The validated configuration the server runs with.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub listen: SocketAddr,
    pub clusters: Vec<ClusterEntry>,
    pub tokens: Vec<TokenEntry>,
    pub tls: Option<TlsFiles>,
    pub max_sse_clients: usize,
    /// How long a run's lease lasts without renewal.
    pub lease_ttl: std::time::Duration,
    /// The most runs this instance drives at once.
    pub max_active_runs: usize,
    /// Periodic update checks; `None`: only on request.
    pub check_interval: Option<std::time::Duration>,
    /// `Host` names (or `name:port`) answered besides the bound address and localhost.
    pub allowed_hosts: Vec<String>,
}

/// What the flags and the environment said (the CLI merges those two).
pub struct Overrides<'a> {
    pub config: Option<&'a Path>,
    pub listen: Option<&'a str>,
    pub tls_cert: Option<&'a Path>,
    pub tls_key: Option<&'a Path>,
}

/// Reads the file (if any), applies the overrides and validates everything.
pub fn resolve(overrides: &Overrides<'_>) -> Result<ServeSettings, ServerError> {
    let (file, base) = match overrides.config {
        Some(path) => (
            read_file(path)?,
            path.parent().unwrap_or(Path::new("")).to_path_buf(),
        ),
        None => (ConfigFile::default(), PathBuf::new()),
    };
    let source = overrides.config.map_or_else(
        || "the command line".to_string(),
        |p| p.display().to_string(),
    );
    let listen_text = overrides
        .listen
        .map(str::to_string)
        .or(file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen = listen_text.parse::<SocketAddr>().map_err(|error| {
        ServerError::bad_config(format!(
            "{source}: listen: {listen_text:?} is not an address:port ({error})"
        ))
    })?;
    let clusters = load_clusters(&file.clusters, &base, &source)?;
    let tokens = parse_tokens(&file.tokens, &source)?;
    let tls = tls_files(overrides, file.tls.as_ref(), &base, &source)?;
    let max_sse_clients = file.max_sse_clients.unwrap_or(DEFAULT_MAX_SSE_CLIENTS);
    if max_sse_clients == 0 {
        return Err(ServerError::bad_config(format!(
            "{source}: max_sse_clients: must be at least 1"
        )));
    }
    let lease_ttl_secs = file.lease_ttl_secs.unwrap_or(DEFAULT_LEASE_TTL_SECS);
    if !(3..=300).contains(&lease_ttl_secs) {
        return Err(ServerError::bad_config(format!(
            "{source}: lease_ttl_secs: {lease_ttl_secs} is outside 3..=300"
        )));
    }
    let max_active_runs = file.max_active_runs.unwrap_or(DEFAULT_MAX_ACTIVE_RUNS);
    if !(1..=10_000).contains(&max_active_runs) {
        return Err(ServerError::bad_config(format!(
            "{source}: max_active_runs: {max_active_runs} is outside 1..=10000"
        )));
    }
    let check_interval = check_interval(file.check_interval_hours, &source)?;
    let allowed_hosts = allowed_hosts(&file.allowed_hosts, &source)?;
    let settings = ServeSettings {
        listen,
        clusters,
        tokens,
        tls,
        max_sse_clients,
        lease_ttl: std::time::Duration::from_secs(lease_ttl_secs),
        max_active_runs,
        check_interval,
        allowed_hosts,
    };
    refuse_open_without_tokens(&settings)?;
    Ok(settings)
}

/// At most once a minute and at least once a year: a typo must not hammer the hosts.
fn check_interval(
    hours: Option<f64>,
    source: &str,
) -> Result<Option<std::time::Duration>, ServerError> {
    let Some(hours) = hours else {
        return Ok(None);
    };
    if !(1.0 / 60.0..=24.0 * 366.0).contains(&hours) {
        return Err(ServerError::bad_config(format!(
            "{source}: check_interval_hours: {hours} is outside 0.0167 (one minute) .. 8784 (a year)"
        )));
    }
    Ok(Some(std::time::Duration::from_secs_f64(hours * 3600.0)))
}

/// Host names as they appear in a `Host` header: no scheme, path, spaces or wildcards.
fn allowed_hosts(entries: &[String], source: &str) -> Result<Vec<String>, ServerError> {
    for (index, entry) in entries.iter().enumerate() {
        let valid = !entry.is_empty()
            && entry.len() <= 255
            && entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !valid {
            return Err(ServerError::bad_config(format!(
                "{source}: allowed_hosts[{index}]: {entry:?} is not a host name or name:port (no scheme, path or wildcard)"
            )));
        }
    }
    Ok(entries.to_vec())
}

fn read_file(path: &Path) -> Result<ConfigFile, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ServerError::bad_config(format!(
            "{}: cannot read the serve config: {error}",
            path.display()
        ))
    })?;
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    // Bounded before parsing: serde_yaml_ng is quadratic in the depth of `[[[…]]]`.
    if let Some(problem) = drover_schema::inventory::nesting_too_deep(&text) {
        return Err(ServerError::bad_config(format!(
            "{}:{problem}",
            path.display()
        )));
    }
    serde_yaml_ng::from_str(&text)
        .map_err(|error| ServerError::bad_config(format!("{}: {error}", path.display())))
}

fn load_clusters(
    entries: &[ClusterEntryFile],
    base: &Path,
    source: &str,
) -> Result<Vec<ClusterEntry>, ServerError> {
    let mut names = BTreeSet::new();
    let mut clusters = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let path = base.join(&entry.inventory);
        let inventory = drover_schema::inventory::load_inventory_file(&path).map_err(|error| {
            ServerError::bad_config(format!("{source}: clusters[{index}].inventory: {error}"))
        })?;
        let name = inventory.cluster.name.clone();
        if !names.insert(name.clone()) {
            return Err(ServerError::bad_config(format!(
                "{source}: clusters[{index}].inventory: cluster name {name:?} ({}) is already served by an earlier entry",
                path.display()
            )));
        }
        clusters.push(ClusterEntry {
            name,
            inventory_path: std::path::absolute(&path).unwrap_or(path),
            inventory,
            approval_strategy: entry.approval_strategy,
        });
    }
    Ok(clusters)
}

fn parse_tokens(entries: &[TokenEntryFile], source: &str) -> Result<Vec<TokenEntry>, ServerError> {
    let mut names = BTreeSet::new();
    let mut tokens = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if entry.name.trim().is_empty() {
            return Err(ServerError::bad_config(format!(
                "{source}: tokens[{index}].name: must not be empty"
            )));
        }
        if !names.insert(entry.name.clone()) {
            return Err(ServerError::bad_config(format!(
                "{source}: tokens[{index}].name: {:?} appears twice",
                entry.name
            )));
        }
        let sha256 = parse_sha256_hex(&entry.sha256).ok_or_else(|| {
            ServerError::bad_config(format!(
                "{source}: tokens[{index}].sha256: expected 64 hexadecimal digits (the output of `drover serve --hash-token`)"
            ))
        })?;
        tokens.push(TokenEntry {
            name: entry.name.clone(),
            role: entry.role,
            sha256,
        });
    }
    Ok(tokens)
}

fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut digest = [0u8; 32];
    for (index, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    Some(digest)
}

fn tls_files(
    overrides: &Overrides<'_>,
    file: Option<&TlsFile>,
    base: &Path,
    source: &str,
) -> Result<Option<TlsFiles>, ServerError> {
    let files = match (overrides.tls_cert, overrides.tls_key, file) {
        (Some(cert), Some(key), _) => TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        },
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err(ServerError::bad_config(
                "--tls-cert and --tls-key go together: give both or neither",
            ))
        }
        (None, None, Some(tls)) => TlsFiles {
            cert: base.join(&tls.cert),
            key: base.join(&tls.key),
        },
        (None, None, None) => return Ok(None),
    };
    for (field, path) in [("tls.cert", &files.cert), ("tls.key", &files.key)] {
        if !path.is_file() {
            return Err(ServerError::bad_config(format!(
                "{source}: {field}: {} is not a readable file",
                path.display()
            )));
        }
    }
    if !cfg!(feature = "tls") {
        return Err(ServerError::bad_config(
            "TLS needs a drover built with `--features tls`",
        ));
    }
    Ok(Some(files))
}

/// Without tokens every caller is an operator: acceptable only when no other machine can
/// connect.
fn refuse_open_without_tokens(settings: &ServeSettings) -> Result<(), ServerError> {
    if settings.tokens.is_empty() && !settings.listen.ip().is_loopback() {
        return Err(ServerError::bad_config(format!(
            "refusing to listen on {} without tokens: anyone who can reach it could start and abort upgrades; configure `tokens:` (see `drover serve --hash-token`) or listen on a loopback address",
            settings.listen
        )));
    }
    Ok(())
}

/// The hex SHA-256 of a token, as the config file stores it.
pub fn token_sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hash_round_trips_through_hex() {
        let hex = token_sha256_hex("s3cret");
        let parsed = parse_sha256_hex(&hex).expect("64 hex digits");
        use sha2::Digest;
        assert_eq!(
            parsed.as_slice(),
            sha2::Sha256::digest(b"s3cret").as_slice()
        );
    }

    #[test]
    fn a_short_or_non_hex_hash_is_refused() {
        assert!(parse_sha256_hex("abc").is_none());
        assert!(parse_sha256_hex(&"zz".repeat(32)).is_none());
    }
}
