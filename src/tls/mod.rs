//! Server certificates: loading PEM files, choosing one by SNI, and the self-signed
//! development certificate written to `certs/` at first start. The [`CertResolver`] is what
//! rustls asks during each handshake; its table can be swapped at runtime (reload) without
//! touching open connections.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsConfig;

/// File names of the generated development certificate inside `certs_dir`.
pub const DEV_CERT: &str = "localhost.pem";
pub const DEV_KEY: &str = "localhost-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot generate the development certificate in {dir}: {message}")]
    DevCert { dir: PathBuf, message: String },
    #[error("no certificate available")]
    Empty,
}

/// One loaded certificate and the names it serves.
#[derive(Debug)]
pub struct LoadedCert {
    pub names: Vec<String>,
    pub key: Arc<CertifiedKey>,
    pub source: PathBuf,
}

/// Certificates indexed by server name.
#[derive(Debug)]
pub struct CertTable {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `example.com` for a `*.example.com` certificate.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertTable {
    /// The server names the certificates answer for (`*.example.com` for wildcards).
    pub fn names(&self) -> Vec<String> {
        self.exact
            .keys()
            .cloned()
            .chain(self.wildcard.keys().map(|parent| format!("*.{parent}")))
            .collect()
    }

    /// Index certificates; `default_index` is served when SNI is absent or unknown.
    pub fn new(certs: Vec<LoadedCert>, default_index: usize) -> Result<CertTable, TlsError> {
        let default = certs
            .get(default_index)
            .or(certs.first())
            .ok_or(TlsError::Empty)?
            .key
            .clone();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for cert in &certs {
            for name in &cert.names {
                let name = name.to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(parent) => {
                        wildcard
                            .entry(parent.to_string())
                            .or_insert_with(|| cert.key.clone());
                    }
                    None => {
                        exact.entry(name).or_insert_with(|| cert.key.clone());
                    }
                }
            }
        }
        Ok(CertTable {
            exact,
            wildcard,
            default,
        })
    }

    /// The certificate for a server name: exact match, then a wildcard one label up, then
    /// the default.
    pub fn select(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = server_name else {
            return self.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return k.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(parent) {
                return k.clone();
            }
        }
        self.default.clone()
    }
}

/// The rustls resolver; cloneable handle onto a swappable table.
#[derive(Debug, Clone)]
pub struct CertResolver {
    table: Arc<RwLock<Arc<CertTable>>>,
}

impl CertResolver {
    pub fn new(table: CertTable) -> CertResolver {
        CertResolver {
            table: Arc::new(RwLock::new(Arc::new(table))),
        }
    }

    /// Replace the certificates; handshakes already under way keep the old ones.
    pub fn replace(&self, table: CertTable) {
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
    }

    fn current(&self) -> Arc<CertTable> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().select(client_hello.server_name()))
    }
}

/// Load one PEM certificate chain and key. When `names` is empty, the names come from the
/// certificate's subject alternative names (or its common name).
pub fn load_cert(
    cert_path: &Path,
    key_path: &Path,
    names: &[String],
) -> Result<LoadedCert, TlsError> {
    let file_error = |path: &Path, message: String| TlsError::File {
        path: path.to_path_buf(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| file_error(cert_path, format!("cannot read certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert_path, format!("invalid PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(file_error(
            cert_path,
            "no certificate found in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| file_error(key_path, format!("no usable private key: {e}")))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| file_error(key_path, format!("unsupported private key: {e}")))?;
    let names = if names.is_empty() {
        names_in_certificate(&chain[0]).map_err(|m| file_error(cert_path, m))?
    } else {
        names.to_vec()
    };
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        file_error(
            key_path,
            format!("the key does not match the certificate: {e}"),
        )
    })?;
    Ok(LoadedCert {
        names,
        key: Arc::new(certified),
        source: cert_path.to_path_buf(),
    })
}

fn names_in_certificate(cert: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    use x509_parser::prelude::*;
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| format!("cannot parse certificate: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        for cn in parsed.subject().iter_common_name() {
            if let Ok(s) = cn.as_str() {
                names.push(s.to_ascii_lowercase());
            }
        }
    }
    Ok(names)
}

/// Build the certificate table the configuration asks for:
/// - `[[tls.certificate]]` entries when there are any (the one marked `default`, else the
///   first, is the default);
/// - otherwise every `NAME.pem` + `NAME-key.pem` (or `NAME.crt` + `NAME.key`) pair in
///   `certs_dir`, `localhost` first as the default;
/// - otherwise a freshly generated self-signed certificate for `localhost`, written to
///   `certs_dir` (returned `true` so the caller can say so in the log).
pub fn load_table(config: &TlsConfig) -> Result<(CertTable, bool), TlsError> {
    if !config.certificates.is_empty() {
        let mut loaded = Vec::new();
        let mut default = 0;
        for (i, c) in config.certificates.iter().enumerate() {
            loaded.push(load_cert(&c.cert, &c.key, &c.names)?);
            if c.default {
                default = i;
            }
        }
        return Ok((CertTable::new(loaded, default)?, false));
    }
    let mut loaded = pairs_in_dir(&config.certs_dir)?;
    let generated = loaded.is_empty();
    if generated {
        generate_dev_cert(&config.certs_dir)?;
        loaded = pairs_in_dir(&config.certs_dir)?;
    }
    let default = loaded
        .iter()
        .position(|c| c.source.file_stem().is_some_and(|s| s == "localhost"))
        .unwrap_or(0);
    Ok((CertTable::new(loaded, default)?, generated))
}

fn pairs_in_dir(dir: &Path) -> Result<Vec<LoadedCert>, TlsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(TlsError::File {
                path: dir.to_path_buf(),
                message: format!("cannot list certificates: {e}"),
            })
        }
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut out = Vec::new();
    for cert in &files {
        let name = cert.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let key = if let Some(stem) = name.strip_suffix(".pem").filter(|s| !s.ends_with("-key")) {
            dir.join(format!("{stem}-key.pem"))
        } else if let Some(stem) = name.strip_suffix(".crt") {
            dir.join(format!("{stem}.key"))
        } else {
            continue;
        };
        if key.is_file() {
            out.push(load_cert(cert, &key, &[])?);
        }
    }
    Ok(out)
}

/// Write a self-signed certificate for localhost (and its loopback addresses).
pub fn generate_dev_cert(dir: &Path) -> Result<(), TlsError> {
    let fail = |message: String| TlsError::DevCert {
        dir: dir.to_path_buf(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| fail(e.to_string()))?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::from([
            127, 0, 0, 1,
        ])));
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::from([
            0u16, 0, 0, 0, 0, 0, 0, 1,
        ])));
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "Portcullis development certificate",
    );
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| fail(e.to_string()))?;
    let cert = params.self_signed(&key).map_err(|e| fail(e.to_string()))?;
    write_private(&dir.join(DEV_KEY), key.serialize_pem().as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    std::fs::write(dir.join(DEV_CERT), cert.pem()).map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Write a file only its owner can read (private keys).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Complete a TLS handshake with the listener at `addr`, sending `server_name` as SNI, and
/// return the certificate chain it presented. The chain is not verified: this is for our
/// own readiness check (a bare TCP connect would make the listener log a failed handshake)
/// and for tests that ask which certificate SNI selected. No data is sent.
pub async fn handshake(
    addr: std::net::SocketAddr,
    server_name: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let config = probe_client_config().map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| e.to_string())?;
    let mut stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let chain = stream
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    use tokio::io::AsyncWriteExt;
    let _ = stream.shutdown().await;
    Ok(chain)
}

/// A TLS client configuration that accepts any server certificate: for probing our own
/// listener (readiness) and for the benchmarks' handshake loop, never for real peers.
pub fn probe_client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCertificate))
    .with_no_client_auth())
}

/// Accepts any server certificate; used only by [`probe_client_config`].
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(dir: &Path, stem: &str, names: &[&str]) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap()
                .self_signed(&key)
                .unwrap();
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{stem}-key.pem")), key.serialize_pem()).unwrap();
    }

    fn config(dir: &Path) -> TlsConfig {
        TlsConfig {
            certs_dir: dir.to_path_buf(),
            certificates: vec![],
        }
    }

    #[test]
    fn generates_a_dev_cert_once() {
        let dir = tempfile::tempdir().unwrap();
        let (table, generated) = load_table(&config(dir.path())).unwrap();
        assert!(generated);
        assert!(dir.path().join(DEV_CERT).is_file());
        let mode = std::fs::metadata(dir.path().join(DEV_KEY)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        let (_, generated) = load_table(&config(dir.path())).unwrap();
        assert!(!generated);
        assert!(Arc::ptr_eq(
            &table.select(Some("localhost")),
            &table.select(None)
        ));
    }

    #[test]
    fn selects_by_sni_with_wildcards_and_default() {
        let dir = tempfile::tempdir().unwrap();
        cert_for(dir.path(), "localhost", &["localhost"]);
        cert_for(dir.path(), "a", &["a.example.com"]);
        cert_for(dir.path(), "wild", &["*.apps.example.com"]);
        let (table, generated) = load_table(&config(dir.path())).unwrap();
        assert!(!generated);
        let a = table.select(Some("A.example.com"));
        let w = table.select(Some("x.apps.example.com"));
        let d = table.select(Some("unknown.test"));
        assert!(!Arc::ptr_eq(&a, &w));
        assert!(Arc::ptr_eq(&d, &table.select(Some("localhost"))));
        // A wildcard covers exactly one label.
        assert!(Arc::ptr_eq(&table.select(Some("y.x.apps.example.com")), &d));
    }

    #[test]
    fn a_key_that_does_not_match_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        cert_for(dir.path(), "one", &["one.test"]);
        cert_for(dir.path(), "two", &["two.test"]);
        let e = load_cert(
            &dir.path().join("one.pem"),
            &dir.path().join("two-key.pem"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let e = load_cert(
            &dir.path().join("missing.pem"),
            &dir.path().join("two-key.pem"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}
