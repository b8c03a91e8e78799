//! TLS to PostgreSQL through rustls, with libpq's meanings of `sslmode` so that a URL an operator
//! already uses with `psql` means the same thing here:
//!
//! | sslmode       | encrypted              | server certificate checked                       |
//! |---------------|------------------------|--------------------------------------------------|
//! | `disable`     | never                  | —                                                |
//! | `prefer`      | when the server offers | no (libpq's default)                             |
//! | `require`     | always                 | chain against `sslrootcert` when one is given    |
//! | `verify-ca`   | always                 | chain against `sslrootcert`                      |
//! | `verify-full` | always                 | chain against `sslrootcert`, and the host name   |
//!
//! `sslrootcert` (or `PGSSLROOTCERT`, else libpq's `~/.postgresql/root.crt`) names a PEM file of
//! CA certificates. Client certificates are not supported and are refused by name. The settings
//! come from the URL's query, else from `PGSSLMODE` / `PGSSLROOTCERT`, as libpq does.
//!
//! This module reads the CA file and builds the connector; it must not connect, and it never
//! sees a password.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The URL query keys this module owns (taken out before tokio-postgres reads the URL).
pub(crate) const TLS_KEYS: [&str; 2] = ["sslmode", "sslrootcert"];

/// Query keys of libpq's client certificates, refused by name rather than ignored.
pub(crate) const CLIENT_CERTIFICATE_KEYS: [&str; 4] =
    ["sslcert", "sslkey", "sslpassword", "sslcrl"];

/// `sslmode`, as libpq names its values (`allow` is taken as `prefer`: both may end unencrypted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    pub(crate) fn parse(value: &str) -> Result<TlsMode, String> {
        match value {
            "disable" => Ok(TlsMode::Disable),
            "allow" | "prefer" => Ok(TlsMode::Prefer),
            "require" => Ok(TlsMode::Require),
            "verify-ca" => Ok(TlsMode::VerifyCa),
            "verify-full" => Ok(TlsMode::VerifyFull),
            other => Err(format!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: whether TLS is tried, and whether it must succeed.
    pub(crate) fn ssl_mode(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }
}

/// How the server's certificate is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateCheck {
    /// Encrypted, not authenticated: libpq's `prefer`, and `require` without a CA file.
    None,
    /// Signed by a CA of the file; any name.
    Chain,
    /// Signed by a CA of the file and issued for the host the URL names.
    ChainAndHostName,
}

/// The TLS settings of one state URL, with the CA file already read.
#[derive(Clone)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub check: CertificateCheck,
    pub root_certificate_file: Option<PathBuf>,
    roots: Option<Arc<RootCertStore>>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TlsSettings")
            .field("mode", &self.mode)
            .field("check", &self.check)
            .field("root_certificate_file", &self.root_certificate_file)
            .finish()
    }
}

impl TlsSettings {
    /// Settings from the URL's values (`None`: not in the URL), else the environment, else
    /// libpq's defaults. Errors name the setting and say what to change.
    pub(crate) fn resolve(
        url_mode: Option<&str>,
        url_root_certificate: Option<&str>,
    ) -> Result<TlsSettings, String> {
        let environment = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let mode = match url_mode
            .map(str::to_string)
            .or_else(|| environment("PGSSLMODE"))
        {
            Some(value) => TlsMode::parse(&value)?,
            None => TlsMode::Prefer,
        };
        let named_file = url_root_certificate
            .map(PathBuf::from)
            .or_else(|| environment("PGSSLROOTCERT").map(PathBuf::from));
        let root_certificate_file = named_file.or_else(default_root_certificate);
        let check = match mode {
            TlsMode::Disable | TlsMode::Prefer => CertificateCheck::None,
            TlsMode::Require if root_certificate_file.is_none() => CertificateCheck::None,
            TlsMode::Require | TlsMode::VerifyCa => CertificateCheck::Chain,
            TlsMode::VerifyFull => CertificateCheck::ChainAndHostName,
        };
        if check != CertificateCheck::None && root_certificate_file.is_none() {
            return Err(format!(
                "sslmode={} checks the server's certificate and needs the CA certificates that \
                 sign it: add sslrootcert=FILE to the URL (or set PGSSLROOTCERT)",
                mode.name()
            ));
        }
        let roots = match (&root_certificate_file, check) {
            (Some(file), CertificateCheck::Chain | CertificateCheck::ChainAndHostName) => {
                Some(Arc::new(read_roots(file)?))
            }
            _ => None,
        };
        Ok(TlsSettings {
            mode,
            check,
            // A file that checks nothing (`prefer`) is not reported as used.
            root_certificate_file: root_certificate_file
                .filter(|_| check != CertificateCheck::None),
            roots,
        })
    }

    /// The connector for the pool: rustls with the ring provider and this module's checks.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (self.check, &self.roots) {
            (CertificateCheck::None, _) | (_, None) => {
                Arc::new(UncheckedCertificate(Arc::clone(&provider)))
            }
            (check, Some(roots)) => {
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::clone(roots),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|error| format!("sslrootcert: {error}"))?;
                Arc::new(CheckedCertificate {
                    webpki,
                    check_host_name: check == CertificateCheck::ChainAndHostName,
                })
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS: {error}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

/// libpq's default CA file, when it exists.
fn default_root_certificate() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let file = Path::new(&home).join(".postgresql/root.crt");
    file.is_file().then_some(file)
}

fn read_roots(file: &Path) -> Result<RootCertStore, String> {
    let shown = file.display();
    let text = std::fs::read(file).map_err(|error| format!("sslrootcert {shown}: {error}"))?;
    let mut roots = RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut text.as_slice()) {
        let certificate =
            certificate.map_err(|error| format!("sslrootcert {shown}: not PEM: {error}"))?;
        roots
            .add(certificate)
            .map_err(|error| format!("sslrootcert {shown}: {error}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "sslrootcert {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(roots)
}

/// Accepts any certificate but still checks the handshake's signatures: encryption against a
/// passive listener, as libpq's `prefer` and `require` give without a CA file.
#[derive(Debug)]
struct UncheckedCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for UncheckedCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// webpki's check against the CA file; `verify-ca` forgives only a name mismatch (webpki checks
/// the chain before the name, so a name error means the chain was good).
#[derive(Debug)]
struct CheckedCertificate {
    webpki: Arc<WebPkiServerVerifier>,
    check_host_name: bool,
}

impl ServerCertVerifier for CheckedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_host_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_their_checks_follow_libpq() {
        let settings = |mode: &str| TlsSettings::resolve(Some(mode), None);
        assert_eq!(settings("disable").unwrap().check, CertificateCheck::None);
        assert_eq!(settings("prefer").unwrap().mode, TlsMode::Prefer);
        assert_eq!(settings("allow").unwrap().mode, TlsMode::Prefer);
        let require = settings("require").unwrap();
        assert_eq!(require.mode.ssl_mode(), SslMode::Require);
        if default_root_certificate().is_none() {
            assert_eq!(require.check, CertificateCheck::None);
            let error = settings("verify-full").unwrap_err();
            assert!(error.contains("sslrootcert=FILE"), "{error}");
        }
        let error = settings("on").unwrap_err();
        assert!(error.contains("sslmode=on is not one of"), "{error}");
    }

    #[test]
    fn a_root_certificate_file_that_holds_no_certificate_is_named() {
        let directory = std::env::temp_dir().join(format!("drover-tls-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let file = directory.join("not-a-ca.pem");
        std::fs::write(&file, "hello\n").unwrap();
        let error =
            TlsSettings::resolve(Some("verify-ca"), Some(file.to_str().unwrap())).unwrap_err();
        assert!(error.contains("holds no PEM certificate"), "{error}");
        let missing = directory.join("missing.pem");
        let error =
            TlsSettings::resolve(Some("verify-full"), Some(missing.to_str().unwrap())).unwrap_err();
        assert!(error.starts_with("sslrootcert "), "{error}");
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
