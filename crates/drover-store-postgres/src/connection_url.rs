//! Reading a `postgres://USER@HOST:PORT/DB?sslmode=…` URL into a client configuration, and
//! finding its password in `PGPASSWORD` or the password file (`PGPASSFILE`, else `~/.pgpass`),
//! never in the URL: a password on a command line is visible to every user of the machine.
//!
//! This module must not connect to anything or log the password; `ConnectionUrl`'s `Debug` and
//! every message show the URL without it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use drover_store::StoreError;
use tokio_postgres::config::Host;
use tokio_postgres::Config;

use crate::tls::{TlsSettings, CLIENT_CERTIFICATE_KEYS, TLS_KEYS};

const DEFAULT_PORT: u16 = 5432;

/// Where the password came from, for messages (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Environment,
    File(PathBuf),
    None,
}

/// A parsed state URL with its password looked up.
#[derive(Clone)]
pub struct ConnectionUrl {
    config: Config,
    url_without_password: String,
    password_source: PasswordSource,
    tls: TlsSettings,
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ConnectionUrl")
            .field("url_without_password", &self.url_without_password)
            .field("password_source", &self.password_source)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Whether `state` names a PostgreSQL store (rather than an SQLite file).
pub fn is_postgres_url(state: &str) -> bool {
    state.starts_with("postgres://") || state.starts_with("postgresql://")
}

impl ConnectionUrl {
    /// Parses `url`, refusing a password in it, a URL without user, host or database, several
    /// hosts, a TLS setting that cannot be honoured (an unknown `sslmode`, an unreadable CA
    /// file, client certificates); then looks the password up in `PGPASSWORD` and the password
    /// file.
    pub fn parse(url: &str) -> Result<ConnectionUrl, StoreError> {
        let shown = redact(url);
        let invalid = |detail: String| StoreError::InvalidUrl {
            url_without_password: shown.clone(),
            detail,
        };
        if !is_postgres_url(url) {
            return Err(invalid(
                "a PostgreSQL state URL starts with postgres:// or postgresql://".to_string(),
            ));
        }
        let (client_url, tls_values) = take_tls_values(url).map_err(&invalid)?;
        let tls = TlsSettings::resolve(
            tls_values.mode.as_deref(),
            tls_values.root_certificate.as_deref(),
        )
        .map_err(&invalid)?;
        let mut config =
            Config::from_str(&client_url).map_err(|error| invalid(error.to_string()))?;
        if config.get_password().is_some() {
            return Err(invalid(
                "it contains a password; remove it from the URL and put it in PGPASSWORD or \
                 the password file (PGPASSFILE, else ~/.pgpass)"
                    .to_string(),
            ));
        }
        let user = config
            .get_user()
            .ok_or_else(|| invalid("it names no user (postgres://USER@HOST:PORT/DB)".to_string()))?
            .to_string();
        let host = match config.get_hosts() {
            [Host::Tcp(host)] => host.clone(),
            #[cfg(unix)]
            [Host::Unix(path)] => path.display().to_string(),
            [] => return Err(invalid("it names no host".to_string())),
            _ => return Err(invalid("it names several hosts; name one".to_string())),
        };
        let port = match config.get_ports() {
            [] => DEFAULT_PORT,
            [port] => *port,
            _ => return Err(invalid("it names several ports; name one".to_string())),
        };
        let database = config
            .get_dbname()
            .ok_or_else(|| {
                invalid("it names no database (postgres://USER@HOST:PORT/DB)".to_string())
            })?
            .to_string();
        config.ssl_mode(tls.mode.ssl_mode());
        let url_without_password = format!("postgres://{user}@{host}:{port}/{database}");
        let password_source = match std::env::var("PGPASSWORD") {
            Ok(password) if !password.is_empty() => {
                config.password(password);
                PasswordSource::Environment
            }
            _ => match password_file() {
                Some(file) => match password_from_file(&file, &host, port, &database, &user) {
                    Some(password) => {
                        config.password(password);
                        PasswordSource::File(file)
                    }
                    None => PasswordSource::None,
                },
                None => PasswordSource::None,
            },
        };
        Ok(ConnectionUrl {
            config,
            url_without_password,
            password_source,
            tls,
        })
    }

    /// The URL as it may be shown: `postgres://USER@HOST:PORT/DB`.
    pub fn url_without_password(&self) -> &str {
        &self.url_without_password
    }

    pub fn password_source(&self) -> &PasswordSource {
        &self.password_source
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// How the connection is encrypted and the server's certificate checked.
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }
}

/// The TLS values of a URL's query (percent-decoded), which this crate handles itself.
#[derive(Default)]
struct TlsValues {
    mode: Option<String>,
    root_certificate: Option<String>,
}

/// `url` without its `sslmode` and `sslrootcert` query values (tokio-postgres knows neither
/// `verify-ca`/`verify-full` nor CA files), and those values. Client-certificate keys are
/// refused by name: silently connecting without the certificate asked for would surprise.
fn take_tls_values(url: &str) -> Result<(String, TlsValues), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), TlsValues::default()));
    };
    let mut values = TlsValues::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if CLIENT_CERTIFICATE_KEYS.contains(&key) {
            return Err(format!(
                "{key}: client certificates are not supported; authenticate with a password \
                 (PGPASSWORD or the password file)"
            ));
        }
        if !TLS_KEYS.contains(&key) {
            kept.push(pair);
            continue;
        }
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("{key}: not UTF-8 once percent-decoded"))?
            .into_owned();
        match key {
            "sslmode" => values.mode = Some(value),
            _ => values.root_certificate = Some(value),
        }
    }
    let client_url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((client_url, values))
}

/// `url` with any `:password@` part replaced, for messages about a URL that could not be parsed.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

fn password_file() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(file) if !file.is_empty() => Some(PathBuf::from(file)),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")),
    }
}

/// The password of the first matching line of a libpq password file
/// (`host:port:database:user:password`, `*` matching anything, `\` escaping `:` and `\`). As libpq
/// does, a file that others may read is ignored.
fn password_from_file(
    file: &Path,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(split_password_line)
        .find(|fields| {
            fields.len() == 5
                && [host, port.as_str(), database, user]
                    .iter()
                    .zip(&fields[..4])
                    .all(|(wanted, field)| field == "*" || field == wanted)
        })
        .map(|mut fields| fields.swap_remove(4))
}

fn split_password_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        match character {
            '\\' => {
                if let Some(escaped) = characters.next() {
                    fields.last_mut().expect("one field").push(escaped);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            other => fields.last_mut().expect("one field").push(other),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused_and_never_shown() {
        let error = ConnectionUrl::parse("postgres://drover:s3cret@db.example:5433/fleet")
            .expect_err("a password in the URL");
        let message = error.to_string();
        assert!(message.contains("PGPASSWORD"), "{message}");
        assert!(message.contains("--state"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn malformed_urls_and_tls_modes_are_refused_with_the_setting_named() {
        for url in [
            "postgres://db.example/fleet",
            "postgres://drover@db.example",
            "postgres://drover@db.example:notaport/fleet",
            "postgres://drover@db.example/fleet?sslmode=on",
            "postgres://drover@db.example/fleet?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "postgres://drover@db.example/fleet?sslmode=require&sslcert=client.pem",
            "mysql://drover@db.example/fleet",
        ] {
            let error = ConnectionUrl::parse(url).expect_err(url);
            assert!(
                matches!(error, StoreError::InvalidUrl { .. }),
                "{url}: {error:?}"
            );
            assert!(error.to_string().contains("DROVER_STATE"), "{error}");
        }
    }

    #[test]
    fn tls_values_are_taken_out_of_the_query_and_the_rest_kept() {
        let (client_url, values) = take_tls_values(
            "postgres://drover@db/fleet?application_name=x&sslmode=verify-ca&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(client_url, "postgres://drover@db/fleet?application_name=x");
        assert_eq!(values.mode.as_deref(), Some("verify-ca"));
        assert_eq!(values.root_certificate.as_deref(), Some("/tmp/ca.pem"));
    }

    #[test]
    fn a_good_url_is_shown_with_its_default_port() {
        let url = ConnectionUrl::parse("postgresql://drover@db.example/fleet?sslmode=disable")
            .expect("a good URL");
        assert_eq!(
            url.url_without_password(),
            "postgres://drover@db.example:5432/fleet"
        );
    }

    #[test]
    fn password_file_lines_match_with_wildcards_and_escapes() {
        let directory = std::env::temp_dir().join(format!("drover-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let file = directory.join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:drover:wrong\n*:5433:fleet:drover:pa\\:ss\\\\word\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert_eq!(
            password_from_file(&file, "db.example", 5433, "fleet", "drover").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            password_from_file(&file, "db.example", 5432, "fleet", "drover"),
            None
        );
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
